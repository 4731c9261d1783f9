/* kernels/cuda/wmirror.cu — the bf16 mirror of a flat parameter buffer: the
 * weights as BF16 mode's matrix products read them, made once per change of
 * the weights instead of once per product (see ops_cuda.h).
 *
 * Why a mirror of the whole flat buffer rather than of each matrix: AdamW
 * walks the flat buffer, so the same index names a float and its bf16 copy
 * and the update writes both in one pass (optim.cu), with no table from
 * parameters to copies. ParamStore pads every parameter to 16 floats, so a
 * weight's copy starts on a 32-byte boundary (the allocation is 256-byte
 * aligned), enough for the tensor cores' 16-byte loads.
 *
 * Validity: the mirror is either valid (every element is bf16_rn of its
 * float) or stale. Stale on attach and whenever the floats are written by
 * something other than the fused update: the backend's copies and memsets
 * (device.cu, device_mem.c) and collectives (Backend.written, from
 * dist/grad_reduce.c) report writes through cuda_wmirror_written. A stale
 * mirror is refreshed as a whole by the first product that needs it. With
 * the check on (the emulator's default), every lookup also compares the
 * weight's copy with its floats and stops on any difference: a write path
 * that forgot to report is caught by the next product. */
#include <string.h>

#include "kernels/cuda/cuda_util.cuh"

#define WMIRROR_MAX 4

typedef struct WMirror {
    const float *base; /* device floats [base, base + n) */
    size_t n;
    __nv_bfloat16 *bf; /* device, n */
    int valid;
} WMirror;

static WMirror wm[WMIRROR_MAX];
#ifdef JIT_CUDA_EMU
static int wm_check = 1; /* every emulated test checks the mirror at every product */
#else
static int wm_check = 0;
#endif
static unsigned *wm_bad; /* device counter of the check */
static long wm_refreshes;

static WMirror *wm_find(const void *p) {
    for (int i = 0; i < WMIRROR_MAX; i++)
        if (wm[i].base && (const float *)p >= wm[i].base && (const float *)p < wm[i].base + wm[i].n) return &wm[i];
    return NULL;
}

extern "C" void cuda_wmirror_attach(const float *base, size_t n) {
    if (!n || wm_find(base)) return;
    WMirror *m = NULL;
    for (int i = 0; i < WMIRROR_MAX && !m; i++)
        if (!wm[i].base) m = &wm[i];
    CHECK(m != NULL, "cuda_wmirror_attach: more than %d parameter buffers mirrored at once", WMIRROR_MAX);
    m->base = base, m->n = n, m->valid = 0;
    m->bf = (__nv_bfloat16 *)cuda_malloc(n * sizeof(__nv_bfloat16));
}

extern "C" void cuda_wmirror_detach(const float *base) {
    WMirror *m = wm_find(base);
    if (!m) return;
    cuda_synchronize(); /* a queued product may still read it */
    cuda_free(m->bf);
    memset(m, 0, sizeof *m);
}

extern "C" void cuda_wmirror_written(const void *dst, size_t bytes) {
    if (!bytes) return;
    const char *lo = (const char *)dst, *hi = lo + bytes;
    for (int i = 0; i < WMIRROR_MAX; i++)
        if (wm[i].base && lo < (const char *)(wm[i].base + wm[i].n) && hi > (const char *)wm[i].base)
            wm[i].valid = 0;
}

extern "C" void cuda_wmirror_set_check(int on) { wm_check = on; }
extern "C" long cuda_wmirror_refreshes(void) { return wm_refreshes; }

extern "C" void *cuda_wmirror_for_update(const float *w) {
    WMirror *m = wm_find(w);
    return m && m->base == w ? m->bf : NULL;
}

__global__ void wmirror_refresh_kernel(__nv_bfloat16 *bf, const float *w, size_t n) {
    CUDA_FOR(i, n) bf[i] = __float2bfloat16_rn(w[i]);
}

/* bad += the elements of [w, w + n) whose copy is not bf16_rn(w), bit for bit. */
__global__ void wmirror_check_kernel(const __nv_bfloat16 *bf, const float *w, size_t n, unsigned *bad) {
    CUDA_FOR(i, n) {
        if (__bfloat16_as_ushort(__float2bfloat16_rn(w[i])) != __bfloat16_as_ushort(bf[i])) atomicAdd(bad, 1u);
    }
}

extern "C" const void *cuda_wmirror_weight(const float *w, size_t numel) {
    WMirror *m = wm_find(w);
    if (!m || cuda_get_precision() != CUDA_PREC_BF16) return NULL;
    CHECK(w + numel <= m->base + m->n, "cuda_wmirror_weight: %zu floats at offset %zu run past the mirrored %zu",
          numel, (size_t)(w - m->base), m->n);
    cudaStream_t st = cuda_compute_stream();
    if (!m->valid) {
        wmirror_refresh_kernel<<<cuda_blocks(m->n, CUDA_THREADS), CUDA_THREADS, 0, st>>>(m->bf, m->base, m->n);
        CUDA_CHECK_LAUNCH();
        m->valid = 1;
        wm_refreshes++;
    }
    const __nv_bfloat16 *bf = m->bf + (w - m->base);
    if (wm_check && numel) {
        if (!wm_bad) wm_bad = (unsigned *)cuda_malloc(sizeof *wm_bad);
        cuda_memset(wm_bad, 0, sizeof *wm_bad);
        wmirror_check_kernel<<<cuda_blocks(numel, CUDA_THREADS), CUDA_THREADS, 0, st>>>(bf, w, numel, wm_bad);
        CUDA_CHECK_LAUNCH();
        unsigned bad = 0;
        cuda_memcpy_d2h(&bad, wm_bad, sizeof bad);
        CHECK(bad == 0,
              "stale bf16 weight mirror: %u of the %zu weights at float offset %zu of the parameter buffer changed "
              "since their bf16 copy was made (a write to the weights that did not call cuda_wmirror_written, or an "
              "update that did not write the mirror)",
              bad, numel, (size_t)(w - m->base));
    }
    return bf;
}
