/* kernels/cuda/optim.cu — AdamW, EMA, the global gradient norm and gradient
 * scaling on device copies of the flat buffers, with the semantics of
 * core/optim.c (weight decay only where registered, frozen parameters
 * skipped, bias correction from the step count).
 *
 * The parameter layout reaches the device as a table of chunks (see
 * CudaOptimLayout in ops_cuda.h): one block per chunk, so a block knows its
 * parameter's flags without a search, and a per-float mask (4 bytes more
 * traffic per parameter and step) is not needed. The element updates use
 * the _rn intrinsics so that nvcc does not fuse multiply-adds the CPU build
 * (-ffp-contract=off) does not fuse either: the update then rounds exactly
 * as the CPU's does. */
#include <math.h>
#include <string.h>

extern "C" {
#include "core/alloc.h"
#include "core/optim.h"
#include "core/params.h"
}
#include "kernels/cuda/cuda_util.cuh"

#define OPT_CHUNK 4096
#define OPT_TRAINABLE 1u
#define OPT_DECAY 2u

typedef struct OptChunk {
    unsigned long long off; /* first float in the flat buffer */
    unsigned int len;       /* floats, <= OPT_CHUNK */
    unsigned int flags;     /* OPT_TRAINABLE | OPT_DECAY */
} OptChunk;

/* ---- layout ---- */

static int opt_fill(OptChunk *c, const ParamStore *ps, size_t lo, size_t hi) {
    int k = 0;
    for (int i = 0; i < ps->n; i++) {
        unsigned flags = (ps->views[i].requires_grad ? OPT_TRAINABLE : 0u) | (ps->info[i].weight_decay ? OPT_DECAY : 0u);
        size_t off, n = params_clip_range(ps, i, lo, hi, &off);
        for (size_t j = 0; j < n; j += OPT_CHUNK, k++)
            if (c) {
                c[k].off = off + j;
                c[k].len = (unsigned)(n - j < OPT_CHUNK ? n - j : OPT_CHUNK);
                c[k].flags = flags;
            }
    }
    return k;
}

extern "C" void cuda_optim_layout_create_range(CudaOptimLayout *lo, const ParamStore *ps, size_t first, size_t end) {
    CHECK(ps->views != NULL, "cuda_optim_layout_create before params_alloc()");
    memset(lo, 0, sizeof *lo);
    lo->lo = first, lo->hi = end;
    lo->n_chunks = opt_fill(NULL, ps, first, end);
    lo->padded = ps->padded;
    size_t bytes = (size_t)(lo->n_chunks ? lo->n_chunks : 1) * sizeof(OptChunk);
    lo->host_chunks = core_calloc(bytes);
    lo->chunks = cuda_malloc(bytes);
    lo->partials = (double *)cuda_malloc((size_t)(lo->n_chunks + 1) * sizeof(double));
    cuda_optim_layout_sync(lo, ps);
}

extern "C" void cuda_optim_layout_create(CudaOptimLayout *lo, const ParamStore *ps) {
    cuda_optim_layout_create_range(lo, ps, 0, ps->padded);
}

extern "C" void cuda_optim_layout_sync(CudaOptimLayout *lo, const ParamStore *ps) {
    CHECK(opt_fill(NULL, ps, lo->lo, lo->hi) == lo->n_chunks && ps->padded == lo->padded,
          "cuda_optim_layout_sync: the ParamStore is not the one this layout was built from");
    opt_fill((OptChunk *)lo->host_chunks, ps, lo->lo, lo->hi);
    cuda_memcpy_h2d(lo->chunks, lo->host_chunks, (size_t)lo->n_chunks * sizeof(OptChunk));
}

extern "C" void cuda_optim_layout_free(CudaOptimLayout *lo) {
    cuda_free(lo->chunks);
    cuda_free(lo->partials);
    core_free(lo->host_chunks);
    memset(lo, 0, sizeof *lo);
}

/* ---- AdamW ---- */

extern "C" void cuda_adamw_init_range(AdamW *opt, size_t lo, size_t n, float beta1, float beta2, float eps,
                                      float weight_decay) {
    memset(opt, 0, sizeof *opt);
    opt->beta1 = beta1, opt->beta2 = beta2, opt->eps = eps, opt->weight_decay = weight_decay;
    opt->lo = lo, opt->n = n;
    size_t bytes = (n ? n : 1) * sizeof(float);
    opt->m = (float *)cuda_malloc(bytes);
    opt->v = (float *)cuda_malloc(bytes);
    cuda_memset(opt->m, 0, bytes);
    cuda_memset(opt->v, 0, bytes);
}

extern "C" void cuda_adamw_init(AdamW *opt, const ParamStore *ps, float beta1, float beta2, float eps,
                                float weight_decay) {
    cuda_adamw_init_range(opt, 0, ps->padded, beta1, beta2, eps, weight_decay);
}

extern "C" void cuda_adamw_free(AdamW *opt) {
    cuda_free(opt->m);
    cuda_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

typedef struct AdamArgs {
    float lr, b1, b2, omb1, omb2, c1, c2, eps, wd;
} AdamArgs;

/* m and v hold floats [base, ...) of the flat buffer (a shard). wb: the
 * buffer's bf16 mirror (wmirror.cu) or NULL; the updated weight's bf16 copy
 * is written with it, so BF16 mode's products need no other pass over the
 * weights (2 bytes more per updated float instead of a 6-byte refresh). */
__global__ void adamw_kernel(const OptChunk *chunks, float *w, __nv_bfloat16 *wb, const float *g, float *m, float *v,
                             size_t base, AdamArgs a) {
    OptChunk ch = chunks[blockIdx.x];
    if (!(ch.flags & OPT_TRAINABLE)) return;
    float decay = ch.flags & OPT_DECAY ? a.wd : 0.0f;
    for (unsigned j = threadIdx.x; j < ch.len; j += blockDim.x) {
        size_t i = ch.off + j, s = i - base;
        float gj = g[i], wj = w[i];
        /* m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g g;  w -= lr (mhat / (sqrt(vhat) + eps) + decay w) */
        float mj = __fadd_rn(__fmul_rn(a.b1, m[s]), __fmul_rn(a.omb1, gj));
        float vj = __fadd_rn(__fmul_rn(a.b2, v[s]), __fmul_rn(__fmul_rn(a.omb2, gj), gj));
        m[s] = mj;
        v[s] = vj;
        float mhat = __fmul_rn(mj, a.c1), vhat = __fmul_rn(vj, a.c2);
        float upd = __fadd_rn(__fdiv_rn(mhat, __fadd_rn(__fsqrt_rn(vhat), a.eps)), __fmul_rn(decay, wj));
        float wn = __fsub_rn(wj, __fmul_rn(a.lr, upd));
        w[i] = wn;
        if (wb) wb[i] = __float2bfloat16_rn(wn);
    }
}

extern "C" void cuda_adamw_step(AdamW *opt, const CudaOptimLayout *lo, float *w, const float *g, float lr) {
    opt->step++;
    AdamArgs a;
    a.lr = lr, a.b1 = opt->beta1, a.b2 = opt->beta2, a.eps = opt->eps, a.wd = opt->weight_decay;
    /* The host computes what the CPU computes, in the same float operations. */
    a.omb1 = 1.0f - a.b1, a.omb2 = 1.0f - a.b2;
    a.c1 = 1.0f / (1.0f - powf(a.b1, (float)opt->step));
    a.c2 = 1.0f / (1.0f - powf(a.b2, (float)opt->step));
    if (!lo->n_chunks) return;
    adamw_kernel<<<(unsigned)lo->n_chunks, CUDA_THREADS, 0, cuda_compute_stream()>>>((const OptChunk *)lo->chunks, w,
        (__nv_bfloat16 *)cuda_wmirror_for_update(w), g, opt->m, opt->v, opt->lo, a);
    CUDA_CHECK_LAUNCH();
}

/* ---- EMA ---- */

__global__ void ema_kernel(float *ema, const float *w, size_t n, float a) {
    CUDA_FOR(i, n) ema[i] = __fadd_rn(ema[i], __fmul_rn(a, __fsub_rn(w[i], ema[i])));
}

extern "C" void cuda_ema_update(float *ema, const float *w, size_t n, float decay) {
    if (!n) return;
    ema_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(ema, w, n, 1.0f - decay);
    CUDA_CHECK_LAUNCH();
}

/* ---- gradient norm and scaling ---- */

/* partial[chunk] = sum of g^2 over the chunk (0 when frozen), fixed tree. */
__global__ void grad_sq_kernel(const OptChunk *chunks, const float *g, double *partial) {
    __shared__ double sh[CUDA_THREADS];
    OptChunk ch = chunks[blockIdx.x];
    int t = threadIdx.x;
    double acc = 0.0;
    if (ch.flags & OPT_TRAINABLE)
        for (unsigned j = t; j < ch.len; j += CUDA_THREADS) {
            double x = g[ch.off + j];
            acc += x * x;
        }
    sh[t] = acc;
    __syncthreads();
    for (int s = CUDA_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    if (t == 0) partial[blockIdx.x] = sh[0];
}

/* partial[n] = sum of partial[0 .. n): strided per thread in order, then a fixed tree. */
__global__ void grad_sq_total_kernel(double *partial, int n) {
    __shared__ double sh[CUDA_THREADS];
    int t = threadIdx.x;
    double acc = 0.0;
    for (int i = t; i < n; i += CUDA_THREADS) acc += partial[i];
    sh[t] = acc;
    __syncthreads();
    for (int s = CUDA_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    if (t == 0) partial[n] = sh[0];
}

extern "C" double cuda_grad_norm(const CudaOptimLayout *lo, const float *g) { return sqrt(cuda_grad_sq(lo, g)); }

extern "C" double cuda_grad_sq(const CudaOptimLayout *lo, const float *g) {
    if (!lo->n_chunks) return 0.0;
    cudaStream_t st = cuda_compute_stream();
    grad_sq_kernel<<<(unsigned)lo->n_chunks, CUDA_THREADS, 0, st>>>((const OptChunk *)lo->chunks, g, lo->partials);
    CUDA_CHECK_LAUNCH();
    grad_sq_total_kernel<<<1, CUDA_THREADS, 0, st>>>(lo->partials, lo->n_chunks);
    CUDA_CHECK_LAUNCH();
    double total = 0.0;
    cuda_memcpy_d2h(&total, lo->partials + lo->n_chunks, sizeof total);
    return total;
}

__global__ void scale_grad_kernel(const OptChunk *chunks, float *g, float s) {
    OptChunk ch = chunks[blockIdx.x];
    if (!(ch.flags & OPT_TRAINABLE)) return;
    for (unsigned j = threadIdx.x; j < ch.len; j += blockDim.x) g[ch.off + j] *= s;
}

extern "C" void cuda_scale_grad(const CudaOptimLayout *lo, float *g, float s) {
    if (!lo->n_chunks) return;
    scale_grad_kernel<<<(unsigned)lo->n_chunks, CUDA_THREADS, 0, cuda_compute_stream()>>>(
        (const OptChunk *)lo->chunks, g, s);
    CUDA_CHECK_LAUNCH();
}
