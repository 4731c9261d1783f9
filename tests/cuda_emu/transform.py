# tests/cuda_emu/transform.py — rewrites a .cu file for the emulator:
# `kern<<<grid, block, smem, stream>>>(args);` becomes an emu_launch call and
# `extern __shared__ T name[];` a pointer to the block's dynamic shared memory.
#   transform.py IN.cu OUT.cc
import re, sys
src = open(sys.argv[1]).read()
src = re.sub(r'extern __shared__ (\w+) (\w+)\[\];', r'\1 *\2 = (\1 *)emu_dyn_smem;', src)
out, i = [], 0
pat = re.compile(r'<<<')
while True:
    m = pat.search(src, i)
    if not m: out.append(src[i:]); break
    # kernel name (with template args) ends at m.start()
    j = m.start(); depth = 0; k = j - 1
    while k >= 0:
        ch = src[k]
        if ch == '>': depth += 1
        elif ch == '<': depth -= 1
        elif depth == 0 and not (ch.isalnum() or ch == '_'): break
        k -= 1
    name = src[k + 1:j]
    e = src.index('>>>', j)
    cfg = src[j + 3:e]
    # args: balanced parens after >>>
    assert src[e + 3] == '(', src[e:e+20]
    p = e + 3; depth = 0
    while True:
        if src[p] == '(': depth += 1
        elif src[p] == ')':
            depth -= 1
            if depth == 0: break
        p += 1
    args = src[e + 4:p]
    parts, d0, cur = [], 0, ''
    for ch in cfg:
        if ch in '([': d0 += 1
        if ch in ')]': d0 -= 1
        if ch == ',' and d0 == 0: parts.append(cur); cur = ''
        else: cur += ch
    parts.append(cur)
    out.append(src[i:k + 1])
    out.append('emu_launch(%s, %s, %s, [&]() { %s(%s); })' % (parts[0], parts[1], parts[2], name, args))
    i = p + 1
open(sys.argv[2], 'w').write(''.join(out))
