# tests/cuda_emu/transform.py — rewrites a preprocessed .cu file (g++ -E with
# include/emu_device.h force-included) into C++ the emulator runs:
#   kern<<<grid, block, smem, stream>>>(a, b)
#       -> emu_launch(EmuSite{"kern", "file.cu", line}, key, grid, block, smem, stream,
#                     [=, emu_a0 = (a), emu_a1 = (b)]() { kern(emu_a0, emu_a1); })
#      (arguments evaluated once, at the launch, and copied, as CUDA does; key
#       is the kernel's address where the launch can name it, for
#       cudaFuncSetAttribute);
#   extern __shared__ T name[];  -> T *name = (T *)emu_dyn_smem();
#   __shared__ T a[N], b;        -> references into the block's shared memory
#                                   (emu_static_smem: poisoned, bounds-checked);
#   __launch_bounds__(N) kern(...) { -> kern(...) { emu_launch_bounds(N, "kern");
# Launch sites keep their original file and line (from the line markers), and
# every rewrite keeps the number of newlines, so debug line info stays right.
#   usage: transform.py IN.ii OUT.cc
import re
import sys
import zlib


def balanced(src, i, open_ch='(', close_ch=')'):
    """src[i] == open_ch; returns the index of the matching close_ch."""
    depth = 0
    j = i
    while j < len(src):
        c = src[j]
        if c == '"' or c == "'":
            j = skip_literal(src, j)
            continue
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
            if depth == 0:
                assert c == close_ch, (src[i:j + 1][:200])
                return j
        j += 1
    raise SystemExit('transform.py: unbalanced %s at offset %d' % (open_ch, i))


def skip_literal(src, j):
    q = src[j]
    j += 1
    while src[j] != q:
        j += 2 if src[j] == '\\' else 1
    return j + 1


def literal_spans(src):
    """Start offsets -> end offsets of string and character literals."""
    spans, j = [], 0
    pat = re.compile(r'["\']|^#[^\n]*', re.M)
    while True:
        m = pat.search(src, j)
        if not m:
            return spans
        if m.group(0).startswith('#'):  # line markers hold file names in quotes
            j = m.end()
            continue
        k = skip_literal(src, m.start())
        spans.append((m.start(), k))
        j = k


def in_literal(spans, pos):
    lo, hi = 0, len(spans)
    while lo < hi:
        mid = (lo + hi) // 2
        if spans[mid][1] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(spans) and spans[lo][0] <= pos


def split_top(text):
    """Splits on commas outside (), [], {} and literals."""
    parts, depth, cur, j = [], 0, '', 0
    while j < len(text):
        c = text[j]
        if c == '"' or c == "'":
            k = skip_literal(text, j)
            cur += text[j:k]
            j = k
            continue
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        if c == ',' and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += c
        j += 1
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


class Lines:
    """Original (file, line) of an offset, from the # line markers."""

    def __init__(self, src):
        self.src = src
        self.marks = [(m.end(), m.group(2), int(m.group(1)))
                      for m in re.finditer(r'^# (\d+) "([^"]*)".*\n', src, re.M)]

    def at(self, pos):
        best = (0, '?', 1)
        for m in self.marks:
            if m[0] > pos:
                break
            best = m
        return best[1], best[2] + self.src.count('\n', best[0], pos)


MARKER = re.compile(r'\n#\s*\d+\s+"[^"]*"[^\n]*\n')


def keep_newlines(old, new):
    return new + '\n' * (old.count('\n') - new.count('\n'))


def template_kernels(src):
    pat = r'template\s*<[^{};]*?>\s*(?:static\s+)?(?:inline\s+)?void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\('
    return set(re.findall(pat, src))


def rewrite_launches(src, lines, templates):
    out, i = [], 0
    spans = literal_spans(src)
    for m in re.finditer(r'<<<', src):
        if m.start() < i or in_literal(spans, m.start()):
            continue
        j = m.start()
        # the kernel expression ends at <<<: a name, maybe with template arguments
        k, depth = j - 1, 0
        while k >= 0 and src[k].isspace():
            k -= 1
        while k >= 0:
            c = src[k]
            if c == '>':
                depth += 1
            elif c == '<':
                depth -= 1
            elif depth == 0 and not (c.isalnum() or c == '_' or c == ':'):
                break
            k -= 1
        kern = src[k + 1:j].strip()
        e = src.index('>>>', j)
        cfg = split_top(MARKER.sub(' ', src[j + 3:e]))
        p = e + 3
        while src[p].isspace():
            p += 1
        assert src[p] == '(', src[e:e + 40]
        q = balanced(src, p)
        args = split_top(MARKER.sub(' ', src[p + 1:q]))
        # NULL would be captured as a long: keep it a null pointer
        args = ['nullptr' if a in ('__null', 'NULL') else a for a in args]
        while len(cfg) < 4:
            cfg.append('0')
        fname, line = lines.at(j)
        if '<' in kern:
            key = '(const void *)&%s' % kern
        elif kern in templates:
            key = 'nullptr'
        else:
            key = '(const void *)%s' % kern
        caps = ''.join(', emu_a%d = (%s)' % (n, a) for n, a in enumerate(args))
        call = '%s(%s)' % (kern, ', '.join('emu_a%d' % n for n in range(len(args))))
        new = ('emu_launch(EmuSite{"%s", "%s", %d}, %s, %s, %s, %s, %s, [=%s]() { %s; })'
               % (kern.replace('"', ''), fname, line, key, cfg[0], cfg[1], cfg[2], cfg[3], caps, call))
        out.append(src[i:k + 1])
        if MARKER.search(src[k + 1:q + 1]):
            # a macro from a system header inside the launch: resynchronise the line numbers after it
            after_file, after_line = lines.at(q + 1)
            out.append('%s\n# %d "%s"\n' % (new, after_line, after_file))
        else:
            out.append(keep_newlines(src[k + 1:q + 1], new))
        i = q + 1
    out.append(src[i:])
    return ''.join(out)


def rewrite_dynamic_shared(src):
    def rep(m):
        t = re.sub(r'__align__\s*\(\s*\d+\s*\)', '', m.group(1)).strip()
        return keep_newlines(m.group(0), '%s *%s = (%s *)emu_dyn_smem();' % (t, m.group(2), t))
    return re.sub(r'extern\s+__shared__\s+([^;]+?)\s+(\w+)\s*\[\s*\]\s*;', rep, src)


def rewrite_static_shared(src, path):
    base = (zlib.crc32(path.encode()) & 0x7fff) << 16
    out, i, n = [], 0, 0
    spans = literal_spans(src)
    for m in re.finditer(r'\b__shared__\b', src):
        if m.start() < i or in_literal(spans, m.start()):
            continue
        end = src.index(';', m.end())
        decl = src[m.end():end]
        decl = re.sub(r'__align__\s*\(\s*\d+\s*\)', '', decl)
        parts = split_top(decl)
        first = re.match(r'(.*?)\b(\w+)\s*((?:\[[^\]]*\]\s*)*)$', parts[0], re.S)
        if not first:
            raise SystemExit('transform.py: cannot parse __shared__ declaration: %s' % decl)
        typ = first.group(1).strip()
        decls = [(first.group(2), first.group(3).strip())]
        for p in parts[1:]:
            d = re.match(r'(\w+)\s*((?:\[[^\]]*\]\s*)*)$', p, re.S)
            if not d:
                raise SystemExit('transform.py: cannot parse __shared__ declarator: %s' % p)
            decls.append((d.group(1), d.group(2).strip()))
        new = []
        for name, dims in decls:
            n += 1
            dims = re.sub(r'\s+', '', dims)
            if dims:
                new.append('%s (&%s)%s = *reinterpret_cast<%s (*)%s>(emu_static_smem(%d, sizeof(%s%s), alignof(%s), "%s"));'
                           % (typ, name, dims, typ, dims, base + n, typ, dims, typ, name))
            else:
                new.append('%s &%s = *reinterpret_cast<%s *>(emu_static_smem(%d, sizeof(%s), alignof(%s), "%s"));'
                           % (typ, name, typ, base + n, typ, typ, name))
        out.append(src[i:m.start()])
        out.append(keep_newlines(src[m.start():end + 1], ' '.join(new)))
        i = end + 1
    out.append(src[i:])
    return ''.join(out)


def rewrite_launch_bounds(src):
    out, i = [], 0
    spans = literal_spans(src)
    for m in re.finditer(r'__launch_bounds__\s*\(', src):
        if m.start() < i or in_literal(spans, m.start()):
            continue
        close = balanced(src, m.end() - 1)
        bound = split_top(src[m.end():close])[0]
        nm = re.match(r'\s*(\w+)\s*\(', src[close + 1:])
        if not nm:
            raise SystemExit('transform.py: no kernel name after __launch_bounds__')
        name = nm.group(1)
        params_open = close + 1 + nm.end() - 1
        params_close = balanced(src, params_open)
        rest = re.match(r'\s*([{;])', src[params_close + 1:])
        out.append(src[i:m.start()])
        out.append(keep_newlines(src[m.start():close + 1], ''))
        if rest and rest.group(1) == '{':
            brace = params_close + 1 + rest.end()
            out.append(src[close + 1:brace])
            out.append(' emu_launch_bounds((unsigned)(%s), "%s");' % (bound, name))
            i = brace
        else:
            i = close + 1
    out.append(src[i:])
    return ''.join(out)


def main():
    path_in, path_out = sys.argv[1], sys.argv[2]
    src = open(path_in).read()
    templates = template_kernels(src)
    src = rewrite_launch_bounds(src)
    src = rewrite_dynamic_shared(src)
    src = rewrite_static_shared(src, path_in)
    src = rewrite_launches(src, Lines(src), templates)
    open(path_out, 'w').write(src)


main()
