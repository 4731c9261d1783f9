/* kernels/cuda/attention_flash.cuh — the flash-style attention kernels of
 * attention.cu as a host API, shared by full attention and by SLA2's sparse
 * branch (which is the same computation with a block weight per
 * (query block, key block) and a per-head scale on the incoming gradient).
 *
 * Per (b, h) and query row a, with s_ab = q_a . k_b * scale and weight w_ab
 * (1 for full attention; mask[b, h, a / bq, b / bk] for SLA2):
 *   O_a = sum_b w_ab exp(s_ab) v_b / sum_b w_ab exp(s_ab),
 *   lse_a = log sum_b w_ab exp(s_ab);
 * key tiles whose weights are all zero are not visited. Backward
 * (FlashArgs.dout set) recomputes P_ab = w_ab exp(s_ab - lse_a) per tile:
 *   dP = dO V^T, dS = P (dP - D), dQ += dS K scale, dK += dS^T Q scale,
 *   dV += P^T dO, with D_a = dO_a . O_a
 * either given (full attention and SLA2's FP32 mode take it from O) or
 * recomputed as rowsum(P dP) in a first pass (SLA2's BF16 mode, where it must
 * match dP's rounded operands; docs/cuda_attention.md). Deterministic: every
 * gradient element is owned by one thread, no atomics. */
#ifndef KERNELS_CUDA_ATTENTION_FLASH_CUH
#define KERNELS_CUDA_ATTENTION_FLASH_CUH

#include "kernels/cuda/cuda_common.cuh"

typedef struct FlashArgs {
    const float *q, *k, *v; /* [B, H, N, hd] */
    int B, H, N, hd;
    float scale; /* 1 / sqrt(hd) */
    int bf16;    /* round the products' operands to bf16 */
    /* forward output: element (b, h, n, c) at o[b*o_sb + h*o_sh + n*o_rs + c] */
    float *o;
    long long o_sb, o_sh, o_rs;
    float *lse; /* [B, H, N]: written by the forward, read by the backward */
    /* SLA2 block weights [B, H, nq, nk] over blocks of bq queries x bk keys; NULL: all 1 */
    const float *mask;
    int bq, bk, nq, nk;
    /* backward: the incoming gradient, laid out like o (g_* strides) */
    const float *dout;
    long long g_sb, g_sh, g_rs;
    const float *alpha_logit; /* dO is scaled by sigmoid(alpha_logit[h]); NULL: by 1 */
    float *D;                 /* [B, H, N] */
    int D_compute;            /* 1: recompute D = rowsum(P dP) into D; 0: D is given */
    float *dq, *dk, *dv;      /* [B, H, N, hd], accumulated; NULL: skipped */
} FlashArgs;

/* Stops with a clear message for sizes the kernels do not handle. */
void cuda_flash_check(const char *who, int B, int H, int N, int hd);
void cuda_flash_fwd(const FlashArgs *a);
void cuda_flash_bwd(const FlashArgs *a);

#endif
