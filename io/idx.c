/* io/idx.c — IDX reader through zlib (gzread also reads uncompressed files). */
#include "io/idx.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/fsutil.h"

static uint32_t idx_be32(const uint8_t b[4]) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void idx_read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what) {
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(f, (char *)buf + got, chunk);
        if (r <= 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            gzclose(f);
            FAIL("%s: truncated or corrupt IDX file while reading %s (%zu of %zu bytes%s%s)", path, what, got, n,
                 zerr ? ": " : "", zerr ? msg : "");
        }
        got += (size_t)r;
    }
}

void idx_read(const char *path, IdxArray *out) {
    memset(out, 0, sizeof *out);
    char err[1400];
    int fd = io_open_regular(path, "the IDX file", err, sizeof err);
    CHECK(fd >= 0, "%s; Fashion-MNIST comes with `apt-get install dataset-fashion-mnist`", err);
    gzFile f = gzdopen(fd, "rb");
    CHECK(f != NULL, "%s: cannot open the IDX file (%s)", path, strerror(errno));
    uint8_t head[4];
    idx_read_exact(f, path, head, 4, "the magic number");
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] < 1 || head[3] > 4) {
        gzclose(f);
        FAIL("%s: not an unsigned-byte IDX file (magic %02x %02x %02x %02x, expected 00 00 08 01..04)", path, head[0],
             head[1], head[2], head[3]);
    }
    out->ndim = head[3];
    out->count = 1;
    for (int i = 0; i < out->ndim; i++) {
        uint8_t d[4];
        idx_read_exact(f, path, d, 4, "the dimensions");
        uint32_t v = idx_be32(d);
        if (v == 0 || v > (1u << 28)) {
            gzclose(f);
            FAIL("%s: dimension %d is %u, which is not a plausible size", path, i, v);
        }
        out->dims[i] = (int)v;
        /* Bounded as it grows, so four plausible dimensions cannot wrap. */
        if (out->count * v > ((size_t)1 << 34)) {
            gzclose(f);
            FAIL("%s: the dimensions make more than 2^34 bytes of data, which is not a plausible IDX file", path);
        }
        out->count *= v;
    }
    out->data = core_malloc(out->count);
    idx_read_exact(f, path, out->data, out->count, "the data");
    gzclose(f);
}

void idx_free(IdxArray *a) {
    core_free(a->data);
    memset(a, 0, sizeof *a);
}
