/* core/op_table.h — the op table: the interface every backend's kernels
 * implement (one OpTable of function pointers per backend: ops_cpu in
 * kernels/cpu, ops_cuda in kernels/cuda) and the types its signatures use.
 * It lives in core because core calls it (core/ops_*.c through
 * Backend.ops, core/backend.h); the backends include it from below. The
 * entries themselves, with what each computes, are listed once in
 * core/op_list.h.
 *
 * Conventions, shared by every backend:
 * - all arrays are contiguous, row-major, float32 (fp32 master format);
 * - forward kernels overwrite their outputs;
 * - backward kernels ACCUMULATE (+=) into every gradient they are given, so a
 *   tensor used twice receives both contributions; a NULL gradient pointer
 *   means "not needed" and that part is skipped;
 * - shapes are passed as ints; the autograd layer (core/ops*.c) checks them.
 * Layouts: activations [B, N, C]; attention heads [B, H, N, hd]; images
 * [B, C, H, W]; linear weights [out, in] (PyTorch's convention). */
#ifndef CORE_OP_TABLE_H
#define CORE_OP_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* The longest head row qkv_norm_rope takes (its kernels keep a row in
 * registers or on the stack). */
#define QKV_NORM_ROPE_MAX_HD 256

/* SLA2 sparse-linear attention (docs/sla2.md): sizes and settings of one call. */
typedef enum { SLA2_PHI_SOFTMAX = 0, SLA2_PHI_ELU = 1, SLA2_PHI_RELU = 2 } Sla2FeatureMap;

typedef struct Sla2Dims {
    int B, H, N, d;
    int block_q, block_k, nq, nk; /* nq = ceil(N / block_q), nk = ceil(N / block_k) */
    int k_sel;                    /* key blocks per query block */
    int feature_map;              /* Sla2FeatureMap */
    int soft;                     /* soft top-k (router training) instead of the hard mask */
    int qat;                      /* INT8/FP8 emulation in the sparse branch's forward */
    float tau;                    /* soft top-k temperature */
    int cpu_path;                 /* the CPU's path: SLA2_CPU_AUTO (by selection, sla2_cpu_path), else SLA2_CPU_* */
} Sla2Dims;
/* The CPU's ways through the sparse branch (kernels/cpu/sla2*.c): tile by
 * tile over the weighted blocks (hard and soft), one dense masked N x N
 * attention (hard and soft), or, for a hard mask, the selected blocks
 * gathered into one product per query block (the default for hard masks). */
enum { SLA2_CPU_AUTO = 0, SLA2_CPU_BLOCKS = 1, SLA2_CPU_DENSE = 2, SLA2_CPU_GATHER = 3 };

/* What the forward keeps for backward (all allocated by the caller). */
typedef struct Sla2Saved {
    float *mask;  /* [B, H, nq, nk]: 0/1 (hard) or the soft top-k weights */
    float *pc;    /* [B, H, nq, nk]: router probabilities */
    float *lse;   /* [B, H, N]: full-precision log-sum-exp of the sparse branch */
    float *o_s;   /* [B, H, N, d]: sparse branch as used in the output (quantised under QAT) */
    float *o_s_fp; /* [B, H, N, d]: full-precision sparse branch (QAT only, else NULL) */
    float *o_l;   /* [B, H, N, d]: linear branch */
    float *kept;  /* sla2_saved_floats(dm) floats in the backend's own format (NULL when 0): the
                   * CPU's gathered path keeps its probabilities here, the GPU nothing */
} Sla2Saved;

/* Per-head SLA2 diagnostics (docs/sla2.md, "Statistics"). */
typedef struct Sla2Stats {
    float frac_exact;    /* key blocks computed exactly / all key blocks */
    float alpha;         /* sigmoid(alpha_logit) */
    float captured_mass; /* full-softmax probability on the selected keys, mean over queries */
    float rel_l2_err;    /* ||O - O_full|| / ||O_full|| */
    float qat_rel_err;   /* ||O_s quantised - O_s|| / ||O_s|| (0 without QAT) */
} Sla2Stats;

/* One backend's kernels: its name ("cpu", "cuda") and one function pointer
 * per entry of core/op_list.h, in the list's order. */
typedef struct OpTable {
    const char *name;
#define OP(ret, op, params) ret(*op) params;
#include "core/op_list.h"
#undef OP
} OpTable;

#endif
