/* kernels/cuda/ops_cuda.h — the CUDA backend as C code sees it: the op table
 * (ops_cuda, same contract as core/op_table.h: device pointers, contiguous
 * row-major float32 storage, backward kernels accumulate) and the cuda_*
 * kernels behind it, the device, the matrix-product precision, and device
 * memory. C and C++ (the .cu files) include it alike.
 *
 * Every function here works in a build without a GPU present: cuda_device_count
 * returns 0 when there is no device or driver, so tests can skip with a message
 * instead of failing. Errors stop through core/check.h with the CUDA call and
 * its error string. All kernels run on one compute stream (cuda_stream);
 * kernels do not synchronise, the memory helpers that return data to the host
 * do. */
#ifndef KERNELS_CUDA_OPS_CUDA_H
#define KERNELS_CUDA_OPS_CUDA_H

#include <stddef.h>

#include "core/op_table.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const OpTable ops_cuda;

/* The kernels of the op table, one cuda_<name> per entry of core/op_list.h
 * (its signature and contract there; pointers are device pointers), gathered
 * into ops_cuda by ops_cuda.cu. Each lives in the .cu file named like its
 * CPU twin's (linear.cu ~ cpu/linear.c, ...); attention.cu and sla2*.cu hold
 * the attention entries. */
#define OP(ret, op, params) ret cuda_##op params;
#include "core/op_list.h"
#undef OP

/* Matrix products (linear, attention's q k^T and p v, SLA2's blocks):
 * FP32: true fp32 (no TF32), the parity mode of the tests;
 * BF16: operands rounded to bf16, fp32 accumulation; logits, softmax, norms
 * and reductions stay fp32 in both modes. */
typedef enum { CUDA_PREC_FP32 = 0, CUDA_PREC_BF16 = 1 } CudaPrecision;

/* Number of usable devices; 0 (never an error) without a GPU or driver. */
int cuda_device_count(void);
/* Select the device and create the compute stream and cuBLASLt handle. Call
 * once before the first op; a second call with the same device is a no-op. */
void cuda_init(int device);
/* "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" into buf. */
const char *cuda_device_name(char *buf, size_t len);
void cuda_set_precision(CudaPrecision p);
CudaPrecision cuda_get_precision(void);

/* Device memory (cudaMalloc: no managed memory). cuda_malloc stops with the
 * size and the free memory when the allocation fails. */
void *cuda_malloc(size_t bytes);
void cuda_free(void *p);
void cuda_memset(void *dst, int byte, size_t bytes);       /* async on the stream */
void cuda_memcpy_h2d(void *dst, const void *src, size_t bytes); /* synchronous */
void cuda_memcpy_d2h(void *dst, const void *src, size_t bytes); /* synchronous */
void cuda_memcpy_d2d(void *dst, const void *src, size_t bytes); /* async on the stream */
/* Pinned host memory, for asynchronous copies of batches. */
void *cuda_host_alloc(size_t bytes);
void cuda_host_free(void *p);
void cuda_synchronize(void);
/* The compute stream, as a cudaStream_t. */
void *cuda_stream(void);

/* --- the bf16 weight mirror (kernels/cuda/wmirror.cu): in BF16 mode the
 * matrix products read a weight's bf16 copy from a mirror of the flat
 * parameter buffer, made when the weights change instead of at every
 * product. attach makes a (stale) mirror of device floats [base, base + n);
 * AdamW writes it beside the floats it updates (cuda_wmirror_for_update);
 * every other write to the floats must be reported with
 * cuda_wmirror_written (the backend's copies and memsets do it themselves),
 * after which the first product that needs the mirror refreshes it whole.
 * cuda_wmirror_weight: the bf16 copy of numel floats at w, NULL when w is
 * in no mirror or the precision is FP32. With the check on (default under
 * the emulator) each lookup compares the copy with the floats and stops on
 * a difference, naming the offset. --- */
void cuda_wmirror_attach(const float *base, size_t n);
void cuda_wmirror_detach(const float *base);
void cuda_wmirror_written(const void *dst, size_t bytes);
const void *cuda_wmirror_weight(const float *w, size_t numel);
void *cuda_wmirror_for_update(const float *base); /* the mirror of base's buffer (__nv_bfloat16 *), or NULL */
void cuda_wmirror_set_check(int on);
long cuda_wmirror_refreshes(void); /* whole-mirror refreshes so far (tests) */

/* --- the optimiser on the device (kernels/cuda/optim.cu): the semantics of
 * core/optim.c over device copies of the flat buffers --- */
struct ParamStore;
struct AdamW;

/* How the device sees the parameter layout: the flat buffer cut into chunks
 * of at most 4096 floats, each inside one parameter and flagged trainable
 * (requires_grad) and decayed (weight_decay). Built from the host
 * ParamStore's metadata after params_alloc and uploaded once; a chunk is one
 * block of the optimiser kernels, so no kernel searches for its parameter.
 * After params_set_trainable, cuda_optim_layout_sync re-uploads the flags
 * (same size: no allocation). Padding between parameters is in no chunk.
 * A layout of floats [lo, hi) (a rank's shard of the optimiser state) has
 * only the chunks inside it, cut at its ends. */
typedef struct CudaOptimLayout {
    int n_chunks;
    void *chunks;      /* device: n_chunks chunk records */
    void *host_chunks; /* host copy, rewritten by sync */
    double *partials;  /* device: n_chunks + 1 doubles for the gradient norm */
    size_t padded;     /* floats in each flat buffer (ps->padded) */
    size_t lo, hi;     /* the floats it covers */
} CudaOptimLayout;

void cuda_optim_layout_create(CudaOptimLayout *lo, const struct ParamStore *ps); /* all floats */
void cuda_optim_layout_create_range(CudaOptimLayout *lo, const struct ParamStore *ps, size_t first, size_t end);
void cuda_optim_layout_sync(CudaOptimLayout *lo, const struct ParamStore *ps);
void cuda_optim_layout_free(CudaOptimLayout *lo);

/* adamw_init with the moments m, v on the device (zeroed, ps->padded floats
 * each); cuda_adamw_free releases them. */
void cuda_adamw_init(struct AdamW *opt, const struct ParamStore *ps, float beta1, float beta2, float eps,
                     float weight_decay);
/* The same for floats [lo, lo + n) (a shard): m[i - lo] is float i's. */
void cuda_adamw_init_range(struct AdamW *opt, size_t lo, size_t n, float beta1, float beta2, float eps,
                           float weight_decay);
void cuda_adamw_free(struct AdamW *opt);
/* adamw_step on device buffers w (parameters) and g (gradients), laid out as
 * the ParamStore; opt->step and the bias corrections are kept on the host
 * exactly as the CPU computes them, and the update rounds like the CPU's
 * (no fused multiply-add), so it matches the CPU to the last bit in
 * practice. */
void cuda_adamw_step(struct AdamW *opt, const CudaOptimLayout *lo, float *w, const float *g, float lr);
/* ema = decay * ema + (1 - decay) * w over n floats (device), as ema_update. */
void cuda_ema_update(float *ema, const float *w, size_t n, float decay);
/* Global L2 norm of the trainable gradients, double accumulation in a fixed
 * order (reproducible); waits for the stream to return the value. */
double cuda_grad_norm(const CudaOptimLayout *lo, const float *g);
/* Its square over the layout's range (a shard's part). */
double cuda_grad_sq(const CudaOptimLayout *lo, const float *g);
/* Multiply the trainable gradients by s (as params_scale_grad). */
void cuda_scale_grad(const CudaOptimLayout *lo, float *g, float s);

#ifdef __cplusplus
}
#endif

#endif
