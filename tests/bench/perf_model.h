/* tests/bench/perf_model.h — a stated performance model of a JiT training
 * step on the CUDA backend: every kernel a step launches, with the FLOPs it
 * executes and the bytes it moves as the code in kernels/cuda does, and a
 * predicted time on a GPU from stated rates (a roofline per kernel plus a
 * launch overhead). The shapes come from the model's own configuration code
 * (JitConfig after jit_config_finish), so a changed model changes the
 * prediction; bench_perf_model --check holds the kernel list to the ops the
 * real model records (docs/performance.md has the model, the rates and their
 * sources). These are PREDICTIONS, never measurements. */
#ifndef TESTS_BENCH_PERF_MODEL_H
#define TESTS_BENCH_PERF_MODEL_H

#include "train/model/jit.h"

/* The unit whose rate bounds a kernel's arithmetic. */
typedef enum { PM_TC = 0, PM_SIMT = 1, PM_MEM = 2 } PmUnit;
/* Which attention kernels the step uses. */
typedef enum { PM_ATTN_SIMT = 0, PM_ATTN_TC = 1 } PmAttn;

/* Peak rates and the achievable fraction of each, per kind of kernel. */
typedef struct PmRates {
    const char *gpu;
    double tc_peak;   /* dense bf16 tensor-core FLOP/s */
    double simt_peak; /* fp32 FMA FLOP/s (non-tensor) */
    double hbm;       /* device-memory bytes/s */
    double f_gemm;    /* cuBLASLt bf16 GEMMs, of tc_peak */
    double f_attn_tc; /* FlashAttention-2-style mma.sync attention, of tc_peak */
    double f_attn_simt; /* today's fp32-FMA flash kernels, of simt_peak */
    double f_sla2_tc; /* SLA2's block-sparse mma.sync kernels (tiles of 16-64 rows), of tc_peak: an assumption */
    double f_mem;     /* memory-bound kernels, of hbm */
    double launch_s;  /* per kernel launch (no CUDA graphs) */
    int tc_bwd_products; /* N^2 d products of the tensor-core backward: 5 (D from O), 7 (split dQ / dK dV kernels) */
} PmRates;

/* H100 SXM (docs/performance.md gives each number's source). */
PmRates pm_rates_h100(void);

/* One row of the model: a kernel (or a family of identical launches) of one
 * phase, summed over every call in a step. */
typedef struct PmKernel {
    char name[48];
    char phase; /* 'f' forward, 'b' backward, 'o' optimiser */
    PmUnit unit;
    double frac;   /* of the unit's peak */
    double flops;  /* executed (padded tiles included) */
    double bytes;  /* global-memory traffic as the code issues it (tile re-reads included) */
    double dram;   /* device-memory bytes: each array once (re-reads of a tile assumed to hit L2) */
    long launches;
    double time_s; /* predicted, summed over the instances */
} PmKernel;

#define PM_MAX_KERNELS 128
#define PM_MAX_OPS 40

typedef struct PmList {
    PmRates r;
    PmKernel k[PM_MAX_KERNELS];
    int n;
    /* graph ops the step records on its tape, with their forward calls */
    const char *op[PM_MAX_OPS];
    int op_calls[PM_MAX_OPS];
    int n_ops;
    /* 1: linear.cu before the bf16 weight mirror (weights rounded into bf16
     * copies at every product, the bias gradient a separate column sum), for
     * the before/after prediction; 0 (pm_list_init): as the code is now. */
    int gemm_percall;
} PmList;

void pm_list_init(PmList *l, const PmRates *r);
/* Predicted seconds of one launch with these counts: the roofline
 * max(flops / (peak x frac), dram / (hbm x f_mem)) plus the launch overhead. */
double pm_time(const PmRates *r, PmUnit unit, double frac, double flops, double dram, long launches);

/* A linear layer out [M, OC] = inp [M, IC] w^T (+ b), forward and backward
 * (dinp only when asked), as linear.cu runs it in BF16 mode. */
void pm_linear(PmList *l, const char *role, double M, double IC, double OC, int bias, int dinp);
/* Full attention over [B, H, N, d] (the op table's layout), forward and
 * backward, as the SIMT kernels of attention.cu or the tensor-core
 * FlashAttention-2 design run it. */
void pm_attention(PmList *l, PmAttn kind, int B, int H, int N, int d);
/* SLA2 with a hard top-k over [B, H, N, d], blocks bq / bk, forward and
 * backward, as kernels/cuda/sla2*.cu run it in BF16 mode: the sparse branch
 * on the SIMT flash tiles with mask weights (PM_ATTN_SIMT: before
 * sla2_tc.cu) or block-sparse on tensor cores (PM_ATTN_TC), the router and
 * the linear branch's SIMT kernels in both. */
void pm_sla2(PmList *l, PmAttn kind, int B, int H, int N, int d, int bq, int bk, float topk);
/* The model FLOPs of attention (FlashAttention's count: forward 4 B H N^2 d,
 * backward 2.5x that). */
double pm_attention_model_flops(int B, int H, int N, int d, int backward);

/* Every kernel of one training step of the model at this batch (forward,
 * v-loss, backward, gradient norm, AdamW, n_ema EMA updates); SLA2 blocks
 * at the configuration's initial top-k (no attention recomputation);
 * stops with a message for REPA configurations. */
void pm_jit_step(PmList *l, const JitConfig *c, int batch, int n_ema, PmAttn attn);

/* The forward FLOPs of one image (every linear 2 x rows x in x out,
 * attention 4 n^2 D per block); a training step's model FLOPs are 3x that
 * (the numerator of MFU; SLA2 counts as the dense attention it replaces). */
double pm_forward_flops(const JitConfig *c);

/* Sums over the list (phase 0: all). */
double pm_total(const PmList *l, char phase, int what); /* what: 0 time, 1 flops, 2 bytes, 3 dram, 4 launches */
/* The forward calls of a graph op the model predicts (0 when none). */
int pm_op_calls(const PmList *l, const char *op);

#endif
