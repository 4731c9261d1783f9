/* io/npz.c — .npz (zip of .npy) reading and writing (see npz.h). The file is
 * read whole (a 2048x2048 float64 covariance is 32 MiB); every offset and
 * length taken from it is checked against its size before use. */
#include "io/npz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"
#include "io/fsutil.h"

#define NPZ_MAX_FILE ((size_t)1 << 32) /* far above any statistics file */

static int npz_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int npz_err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int npz_slurp(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen) {
    FILE *f = io_fopen_regular(path, "the statistics file", err, errlen);
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0) return fclose(f), npz_err(err, errlen, "%s: cannot seek: %s", path, strerror(errno));
    long sz = ftell(f);
    if (sz < 0 || (size_t)sz > NPZ_MAX_FILE)
        return fclose(f), npz_err(err, errlen, "%s: size %ld is not that of a statistics file", path, sz);
    rewind(f);
    *buf = core_malloc((size_t)sz + 1);
    *len = fread(*buf, 1, (size_t)sz, f);
    fclose(f);
    if (*len != (size_t)sz) {
        core_free(*buf);
        return npz_err(err, errlen, "%s: read %zu of %ld bytes", path, *len, sz);
    }
    return 0;
}

/* The member's data (inflated when deflated) in a core_malloc'ed buffer. */
static int npz_member(const char *path, const unsigned char *z, size_t zlen, const char *name, unsigned char **out,
                      size_t *outlen, char *err, size_t errlen) {
    /* End of central directory: the last "PK\5\6" within 64 KiB + 22 of the end. */
    if (zlen < 22) return npz_err(err, errlen, "%s: not a zip archive (.npz): %zu bytes", path, zlen);
    size_t eocd = (size_t)-1;
    for (size_t i = zlen - 22 + 1; i-- > 0 && zlen - i <= 65557;)
        if (rd32(z + i) == 0x06054b50u) {
            eocd = i;
            break;
        }
    if (eocd == (size_t)-1) return npz_err(err, errlen, "%s: not a zip archive (.npz): no end-of-directory record", path);
    uint64_t entries = rd16(z + eocd + 10), cd_off = rd32(z + eocd + 16), cd_size = rd32(z + eocd + 12);
    if (cd_off == 0xffffffffu || entries == 0xffffu) { /* ZIP64: locator just before */
        if (eocd < 20 || rd32(z + eocd - 20) != 0x07064b50u)
            return npz_err(err, errlen, "%s: ZIP64 archive without its locator", path);
        uint64_t z64 = rd64(z + eocd - 20 + 8);
        if (z64 > zlen - 56 || rd32(z + z64) != 0x06064b50u)
            return npz_err(err, errlen, "%s: damaged ZIP64 end-of-directory record", path);
        entries = rd64(z + z64 + 32), cd_size = rd64(z + z64 + 40), cd_off = rd64(z + z64 + 48);
    }
    if (cd_off > zlen || cd_size > zlen - cd_off) return npz_err(err, errlen, "%s: central directory out of the file", path);
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    char names[512] = "";
    for (uint64_t e = 0; e < entries; e++) {
        if (end - p < 46 || rd32(z + p) != 0x02014b50u)
            return npz_err(err, errlen, "%s: damaged central directory (entry %llu)", path, (unsigned long long)e);
        unsigned method = rd16(z + p + 10), nlen = rd16(z + p + 28), elen = rd16(z + p + 30), clen = rd16(z + p + 32);
        uint32_t crc = rd32(z + p + 16);
        uint64_t csize = rd32(z + p + 20), usize = rd32(z + p + 24), loff = rd32(z + p + 42);
        if (end - p < 46u + nlen + elen + clen)
            return npz_err(err, errlen, "%s: damaged central directory (entry %llu)", path, (unsigned long long)e);
        const char *nm = (const char *)z + p + 46;
        /* ZIP64 extra field: the 64-bit values of the fields that read 0xffffffff, in this order. */
        for (size_t x = p + 46 + nlen; x + 4 <= p + 46u + nlen + elen;) {
            unsigned id = rd16(z + x), sz = rd16(z + x + 2);
            size_t q = x + 4, qe = x + 4 + sz;
            if (qe > p + 46u + nlen + elen) break;
            if (id == 1) {
                if (usize == 0xffffffffu && q + 8 <= qe) usize = rd64(z + q), q += 8;
                if (csize == 0xffffffffu && q + 8 <= qe) csize = rd64(z + q), q += 8;
                if (loff == 0xffffffffu && q + 8 <= qe) loff = rd64(z + q), q += 8;
            }
            x = qe;
        }
        size_t have = strlen(names);
        if (have + nlen + 3 < sizeof names)
            snprintf(names + have, sizeof names - have, "%s'%.*s'", have ? ", " : "", (int)nlen, nm);
        if (strlen(name) == nlen && !memcmp(nm, name, nlen)) {
            if (loff > zlen - 30 || rd32(z + loff) != 0x04034b50u)
                return npz_err(err, errlen, "%s: member '%s': damaged local header", path, name);
            size_t data = (size_t)loff + 30 + rd16(z + loff + 26) + rd16(z + loff + 28);
            if (data > zlen || csize > zlen - data)
                return npz_err(err, errlen, "%s: member '%s' runs past the end of the file (truncated?)", path, name);
            if (usize > NPZ_MAX_FILE) return npz_err(err, errlen, "%s: member '%s' is too large", path, name);
            unsigned char *buf = core_malloc((size_t)usize + 1);
            if (method == 0) {
                if (csize != usize) return core_free(buf), npz_err(err, errlen, "%s: member '%s': stored sizes differ", path, name);
                memcpy(buf, z + data, (size_t)usize);
            } else if (method == 8) {
                z_stream s;
                memset(&s, 0, sizeof s);
                if (inflateInit2(&s, -15) != Z_OK) return core_free(buf), npz_err(err, errlen, "%s: zlib init failed", path);
                s.next_in = (Bytef *)(z + data), s.avail_in = (uInt)csize;
                s.next_out = buf, s.avail_out = (uInt)usize;
                int rc = inflate(&s, Z_FINISH);
                size_t got = s.total_out;
                inflateEnd(&s);
                if (rc != Z_STREAM_END || got != usize)
                    return core_free(buf), npz_err(err, errlen, "%s: member '%s': damaged deflate data", path, name);
            } else {
                return core_free(buf), npz_err(err, errlen, "%s: member '%s': zip method %u (only stored and deflate)", path, name, method);
            }
            if ((uint32_t)crc32(0L, buf, (uInt)usize) != crc)
                return core_free(buf), npz_err(err, errlen, "%s: member '%s': CRC-32 mismatch (damaged file)", path, name);
            *out = buf, *outlen = (size_t)usize;
            return 0;
        }
        p += 46u + nlen + elen + clen;
    }
    return npz_err(err, errlen, "%s: no key '%.*s' (the file has %s)", path, (int)(strlen(name) - 4), name,
                   names[0] ? names : "no members");
}

/* The value text after 'key': in a .npy header dict, or NULL. */
static const char *npy_field(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *s = strstr(h, pat);
    if (!s) return NULL;
    s += strlen(pat);
    while (*s == ' ') s++;
    return s;
}

int npz_read_f64(const char *path, const char *key, double **data, int *ndim, long *shape, char *err,
                 size_t errlen) {
    unsigned char *z = NULL, *m = NULL;
    size_t zlen = 0, mlen = 0;
    if (npz_slurp(path, &z, &zlen, err, errlen)) return -1;
    char name[256];
    snprintf(name, sizeof name, "%s.npy", key);
    int rc = npz_member(path, z, zlen, name, &m, &mlen, err, errlen);
    core_free(z);
    if (rc) return -1;
#define NPY_FAIL(...) do { core_free(m); snprintf(err, errlen, "%s: key '%s': ", path, key); \
        size_t l_ = strlen(err); snprintf(err + l_, errlen - l_, __VA_ARGS__); return -1; } while (0)
    if (mlen < 10 || memcmp(m, "\x93NUMPY", 6)) NPY_FAIL("not a .npy array (no \\x93NUMPY magic)");
    int major = m[6];
    size_t hl = major == 1 ? rd16(m + 8) : rd32(m + 8), h0 = major == 1 ? 10 : 12;
    if (major < 1 || major > 3 || h0 + hl > mlen) NPY_FAIL(".npy version %d.%d or header length %zu not understood", major, m[7], hl);
    char *h = core_malloc(hl + 1);
    memcpy(h, m + h0, hl);
    h[hl] = 0;
    const char *d = npy_field(h, "descr"), *fo = npy_field(h, "fortran_order"), *sh = npy_field(h, "shape");
    int fortran = fo && !strncmp(fo, "True", 4), item = 0;
    if (d && (!strncmp(d, "'<f8'", 5) || !strncmp(d, "'=f8'", 5))) item = 8;
    else if (d && (!strncmp(d, "'<f4'", 5) || !strncmp(d, "'=f4'", 5))) item = 4;
    char descr[16] = "?";
    if (d) snprintf(descr, sizeof descr, "%.*s", (int)strcspn(d, ","), d);
    int nd = 0;
    long n = 1;
    if (sh && *sh == '(') {
        const char *q = sh + 1;
        for (;;) {
            while (*q == ' ' || *q == ',') q++;
            if (*q == ')' || !*q) break;
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q || v < 0 || nd == NPZ_MAX_DIMS) { nd = -1; break; }
            shape[nd++] = v, n *= v, q = e;
        }
    } else nd = -1;
    core_free(h);
    if (!item) NPY_FAIL("dtype %s: only little-endian float64 ('<f8') and float32 ('<f4') are read", descr);
    if (nd < 0) NPY_FAIL("shape not understood (at most %d dimensions)", NPZ_MAX_DIMS);
    if ((size_t)n * item != mlen - h0 - hl)
        NPY_FAIL("%zu data bytes for %ld elements of %d bytes (truncated?)", mlen - h0 - hl, n, item);
    const unsigned char *src = m + h0 + hl;
    double *out = core_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++) {
        if (item == 8) {
            uint64_t u = rd64(src + 8 * i);
            memcpy(&out[i], &u, 8);
        } else {
            uint32_t u = rd32(src + 4 * i);
            float f;
            memcpy(&f, &u, 4);
            out[i] = f;
        }
    }
    if (fortran && nd == 2) { /* column-major -> row-major */
        double *t = core_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
        for (long i = 0; i < shape[0]; i++)
            for (long j = 0; j < shape[1]; j++) t[i * shape[1] + j] = out[j * shape[0] + i];
        core_free(out), out = t;
    } else if (fortran && nd > 2) {
        core_free(out);
        NPY_FAIL("Fortran-order arrays of %d dimensions are not read", nd);
    }
#undef NPY_FAIL
    core_free(m);
    *data = out, *ndim = nd;
    return 0;
}

static void wr16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void wr32(unsigned char *p, uint32_t v) { wr16(p, v & 0xffff), wr16(p + 2, v >> 16); }

int npz_write_f64(const char *path, const NpzArray *arrays, int n, char *err, size_t errlen) {
    IoOut o;
    FILE *f = io_out_fopen(&o, path, err, errlen);
    if (!f) return -1;
    unsigned char *cd = NULL;
    size_t cdlen = 0, off = 0;
    for (int a = 0; a < n; a++) {
        const NpzArray *A = &arrays[a];
        /* .npy 1.0 header, padded with spaces to a multiple of 64 bytes, ending in '\n' */
        char dict[256], shp[160] = "";
        long cnt = 1;
        for (int k = 0; k < A->ndim; k++) {
            size_t l = strlen(shp);
            snprintf(shp + l, sizeof shp - l, "%ld,%s", A->shape[k], k + 1 < A->ndim ? " " : "");
            cnt *= A->shape[k];
        }
        if (A->ndim > 1) shp[strlen(shp) - 1] = 0; /* "(3, 4)" but "(3,)" */
        int dl = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", shp);
        size_t hl = (size_t)dl + 1, tot = 10 + hl;
        size_t pad = (64 - tot % 64) % 64;
        hl += pad;
        size_t dsz = (size_t)cnt * 8, msz = 10 + hl + dsz;
        unsigned char *mem = core_malloc(msz);
        memcpy(mem, "\x93NUMPY\x01\x00", 8);
        wr16(mem + 8, (unsigned)hl);
        memcpy(mem + 10, dict, (size_t)dl);
        memset(mem + 10 + dl, ' ', pad);
        mem[10 + hl - 1] = '\n';
        for (long i = 0; i < cnt; i++) {
            uint64_t u;
            memcpy(&u, &A->data[i], 8);
            wr32(mem + 10 + hl + 8 * i, (uint32_t)u), wr32(mem + 10 + hl + 8 * i + 4, (uint32_t)(u >> 32));
        }
        if (msz >= 0xffffffffu || off >= 0xffffffffu) {
            core_free(mem), core_free(cd), fclose(f), io_out_abandon(&o);
            return npz_err(err, errlen, "%s: key '%s': %zu bytes is beyond a plain zip member", path, A->key, msz);
        }
        char name[256];
        int nl = snprintf(name, sizeof name, "%s.npy", A->key);
        uint32_t crc = (uint32_t)crc32(0L, mem, (uInt)msz);
        unsigned char lh[30] = {0};
        wr32(lh, 0x04034b50u), wr16(lh + 4, 20), wr32(lh + 14, crc), wr32(lh + 18, (uint32_t)msz),
            wr32(lh + 22, (uint32_t)msz), wr16(lh + 26, (unsigned)nl);
        wr16(lh + 12, 0x21); /* date 1980-01-01, time 00:00: a fixed stamp, so equal statistics give equal files */
        fwrite(lh, 1, 30, f), fwrite(name, 1, (size_t)nl, f), fwrite(mem, 1, msz, f);
        cd = core_realloc(cd, cdlen + 46 + (size_t)nl);
        unsigned char *c = cd + cdlen;
        memset(c, 0, 46);
        wr32(c, 0x02014b50u), wr16(c + 4, 20), wr16(c + 6, 20), wr16(c + 14, 0x21), wr32(c + 16, crc),
            wr32(c + 20, (uint32_t)msz), wr32(c + 24, (uint32_t)msz), wr16(c + 28, (unsigned)nl),
            wr32(c + 42, (uint32_t)off);
        memcpy(c + 46, name, (size_t)nl);
        cdlen += 46 + (size_t)nl;
        off += 30 + (size_t)nl + msz;
        core_free(mem);
    }
    unsigned char e[22] = {0};
    wr32(e, 0x06054b50u), wr16(e + 8, (unsigned)n), wr16(e + 10, (unsigned)n), wr32(e + 12, (uint32_t)cdlen),
        wr32(e + 16, (uint32_t)off);
    fwrite(cd, 1, cdlen, f), fwrite(e, 1, 22, f);
    core_free(cd);
    if (io_out_fclose_commit(&o, f, err, errlen)) return -1;
    return 0;
}
