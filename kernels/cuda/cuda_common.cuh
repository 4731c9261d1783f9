/* kernels/cuda/cuda_common.cuh — what every .cu file of the CUDA backend
 * shares: error checks that stop through core/check.h, the compute stream and
 * cuBLASLt handle, launch-size helpers, bf16 rounding, and the declarations of
 * every cuda_* kernel entry (their signatures are exactly the OpTable's in
 * kernels/ops.h; ops_cuda.cu gathers them into the table). */
#ifndef KERNELS_CUDA_CUDA_COMMON_CUH
#define KERNELS_CUDA_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/check.h"
}
#include "kernels/cuda/ops_cuda.h"

/* A kernel's fault is reported by the next call that waits for it, often
 * far from the kernel: the hint says how to find it (JIT_CUDA_SYNC=1). */
#define CUDA_CHECK(call)                                                                                   \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        CHECK(e_ == cudaSuccess, "CUDA: %s failed: %s (%s)%s", #call, cudaGetErrorString(e_),             \
              cudaGetErrorName(e_), cuda_sync_hint());                                                     \
    } while (0)

#define CUBLAS_CHECK(call)                                                                                 \
    do {                                                                                                   \
        cublasStatus_t s_ = (call);                                                                        \
        CHECK(s_ == CUBLAS_STATUS_SUCCESS, "cuBLAS(Lt): %s failed with status %d", #call, (int)s_);       \
    } while (0)

/* After a launch: a bad configuration is reported here, at its kernel; with
 * JIT_CUDA_SYNC=1 (the debug switch) the launch is also waited for, so a
 * kernel that faults is named by its launch site. */
#define CUDA_CHECK_LAUNCH() cuda_check_launch(__FILE__, __LINE__, __func__)
void cuda_check_launch(const char *file, int line, const char *func);
/* "" when JIT_CUDA_SYNC=1 is set, else the hint to set it. */
const char *cuda_sync_hint(void);

/* The compute stream and the cuBLASLt handle of cuda_init. */
cudaStream_t cuda_compute_stream(void);
cublasLtHandle_t cuda_lt_handle(void);
/* cuBLASLt workspace on the device (its size in bytes). */
void *cuda_lt_workspace(size_t *bytes);

static inline unsigned cuda_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b > 65535u * 32u ? 65535u * 32u : b);
}

/* Round to bf16 and back (round to nearest even), for BF16-mode operands. */
__device__ __forceinline__ float cuda_round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

/* --- kernel entries (OpTable signatures, kernels/ops.h) --- */
extern "C" {
void cuda_linear_fwd(float *out, const float *inp, const float *w, const float *b, int M, int IC, int OC);
void cuda_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int M,
                     int IC, int OC);
void cuda_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int rows, int C, float eps);
void cuda_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int rows, int C);
void cuda_rope_fwd(float *out, const float *inp, const float *cos, const float *sin, int BH, int N, int hd,
                   int n_ctx);
void cuda_rope_bwd(float *dinp, const float *dout, const float *cos, const float *sin, int BH, int N, int hd,
                   int n_ctx);
void cuda_modulate_fwd(float *out, const float *x, const float *shift, const float *scale, int B, int N, int C);
void cuda_modulate_bwd(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                       const float *scale, int B, int N, int C);
void cuda_gated_add_fwd(float *out, const float *x, const float *gate, const float *y, int B, int N, int C);
void cuda_gated_add_bwd(float *dx, float *dgate, float *dy, const float *dout, const float *gate, const float *y,
                        int B, int N, int C);
void cuda_swiglu_fwd(float *out, const float *inp, int M, int h);
void cuda_swiglu_bwd(float *dinp, const float *dout, const float *inp, int M, int h);
void cuda_silu_fwd(float *out, const float *inp, size_t n);
void cuda_silu_bwd(float *dinp, const float *dout, const float *inp, size_t n);
void cuda_qkv_split_fwd(float *q, float *k, float *v, const float *qkv, int B, int N, int H, int hd);
void cuda_qkv_split_bwd(float *dqkv, const float *dq, const float *dk, const float *dv, int B, int N, int H,
                        int hd);
void cuda_attention_fwd(float *out, float *saved, const float *q, const float *k, const float *v, int B, int H,
                        int N, int hd);
void cuda_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *saved,
                        const float *q, const float *k, const float *v, int B, int H, int N, int hd);
size_t cuda_attention_saved_floats(int B, int H, int N, int hd);
size_t cuda_attention_scratch_floats(int B, int H, int N, int hd);
void cuda_patchify_fwd(float *out, const float *img, int B, int C, int H, int W, int p);
void cuda_patchify_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int p);
void cuda_unpatchify_fwd(float *img, const float *tok, int B, int C, int H, int W, int p);
void cuda_unpatchify_bwd(float *dtok, const float *dimg, int B, int C, int H, int W, int p);
void cuda_timestep_embed_fwd(float *out, const float *t, int B, int dim);
void cuda_timestep_embed_bwd(float *dt, const float *dout, const float *t, int B, int dim);
void cuda_embedding_fwd(float *out, const float *table, const int *idx, int B, int C);
void cuda_embedding_bwd(float *dtable, const float *dout, const int *idx, int B, int C);
void cuda_add_rows_fwd(float *out, const float *x, const float *y, int B, int N, int C);
void cuda_add_rows_bwd(float *dx, float *dy, const float *dout, int B, int N, int C);
void cuda_add_fwd(float *out, const float *a, const float *b, size_t n);
void cuda_incontext_prepend_fwd(float *out, const float *x, const float *yemb, const float *pos, int B, int N, int L,
                                int C);
void cuda_incontext_prepend_bwd(float *dx, float *dyemb, float *dpos, const float *dout, int B, int N, int L, int C);
void cuda_incontext_strip_fwd(float *out, const float *x, int B, int N, int L, int C);
void cuda_incontext_strip_bwd(float *dx, const float *dout, int B, int N, int L, int C);
void cuda_chunk_fwd(float *out, const float *x, int B, int k, int C, int j);
void cuda_chunk_bwd(float *dx, const float *dout, int B, int k, int C, int j);
void cuda_vloss_fwd(float *loss, const float *xhat, const float *x, const float *t, int B, int per);
void cuda_vloss_bwd(float *dxhat, const float *dloss, const float *xhat, const float *x, const float *t, int B,
                    int per);
void cuda_dropout_fwd(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t stream);
void cuda_dropout_bwd(float *dx, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream);
void cuda_sla2_fwd(float *out, const Sla2Saved *sv, float *workspace, const float *q, const float *k,
                   const float *v, const float *proj_q, const float *proj_k, const float *alpha_logit,
                   const Sla2Dims *dm);
void cuda_sla2_bwd(float *dq, float *dk, float *dv, float *dproj_q, float *dproj_k, float *dalpha_logit,
                   float *workspace, const float *dout, const Sla2Saved *sv, const float *q, const float *k,
                   const float *v, const float *proj_q, const float *proj_k, const float *alpha_logit,
                   const Sla2Dims *dm);
size_t cuda_sla2_workspace_floats(const Sla2Dims *dm);
size_t cuda_sla2_saved_floats(const Sla2Dims *dm);
void cuda_sla2_stats(Sla2Stats *st, const float *out, const Sla2Saved *sv, const float *q, const float *k,
                     const float *v, const float *alpha_logit, const Sla2Dims *dm);
void cuda_mse_fwd(float *loss, const float *a, const float *b, size_t n);
void cuda_mse_bwd(float *da, float *db, const float *dloss, const float *a, const float *b, size_t n);
void cuda_xent_fwd(float *loss, float *probs, const float *logits, const int *labels, int B, int K);
void cuda_xent_bwd(float *dlogits, const float *dloss, const float *probs, const int *labels, int B, int K);
void cuda_unfold_fwd(float *out, const float *img, int B, int C, int H, int W, int k, int s, int pad, int channels_last);
void cuda_unfold_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int k, int s, int pad,
                     int channels_last);
void cuda_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                        int rows, int C, float eps);
void cuda_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        const float *mean, const float *rstd, int rows, int C);
void cuda_gelu_fwd(float *out, const float *inp, size_t n);
void cuda_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n);
void cuda_cosine_fwd(float *out, const float *a, const float *b, int rows, int C);
void cuda_cosine_bwd(float *da, float *db, const float *dout, const float *a, const float *b, int rows, int C);
void cuda_resize_bicubic_fwd(float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo, float ry, float rx);
void cuda_resize_bicubic_bwd(float *dinp, const float *dout, int P, int Hi, int Wi, int Ho, int Wo, float ry,
                             float rx);
void cuda_relu_fwd(float *out, const float *x, size_t n);
void cuda_relu_bwd(float *dx, const float *dout, const float *out, size_t n);
void cuda_maxpool2_fwd(float *out, const float *x, int B, int H, int W, int C);
void cuda_maxpool2_bwd(float *dx, const float *dout, const float *x, int B, int H, int W, int C);
void cuda_lpips_dist_fwd(float *out, const float *a, const float *f, const float *w, int B, int N, int C);
void cuda_lpips_dist_bwd(float *da, float *df, const float *dout, const float *a, const float *f, const float *w,
                         int B, int N, int C);
void cuda_mean_tokens_fwd(float *out, const float *x, int B, int N, int C);
void cuda_mean_tokens_bwd(float *dx, const float *dout, int B, int N, int C);
void cuda_accumulate(float *dst, const float *src, size_t n);
}

#endif
