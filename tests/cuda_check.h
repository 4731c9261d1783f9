/* tests/cuda_check.h — the harness of the CUDA parity tests (test_cuda_ops):
 * arrays held twice, once on the host for the CPU reference and once on the
 * device for the kernel under test, filled the same way; outputs poisoned
 * with NaN on both sides so an element a kernel forgets to write fails; and
 * the comparison both tests use.
 *
 * Relative error, the measure every check states: max_i |got_i - want_i|
 * divided by max_i |want_i| (the plain max error when the reference is all
 * zero), and infinite when any element of either side is not finite. */
#ifndef TESTS_CUDA_CHECK_H
#define TESTS_CUDA_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* FP32 mode: true fp32 on both sides, so only summation order differs. */
#define TOL_FP32 1e-5
/* BF16 mode: operands rounded to 8 mantissa bits, fp32 accumulation. */
#define TOL_BF16 2e-2

/* A size for the GPU, and the one for the CPU emulator of the CUDA runtime
 * (tests/cuda_emu, JIT_CUDA_EMU), where every kernel access is checked and
 * runs about a thousand times slower: the same tiling cases (several tiles
 * and a partial one) with less work. */
#ifdef JIT_CUDA_EMU
#define GPU_OR_EMU(gpu, emu) (emu)
#else
#define GPU_OR_EMU(gpu, emu) (gpu)
/* Smallest gap between the k-th and (k+1)-th largest router probability of
 * any of `rows` rows of nk (INFINITY when k >= nk): SLA2 tests redraw inputs
 * whose hard top-k has a near-tie, where the GPU's and the CPU's router may
 * differ by an ulp. */
double sla2_topk_gap(const float *pc, int rows, int nk, int k);
#endif

typedef struct Arr {
    float *h; /* host: the CPU reference reads and writes this */
    float *d; /* device: the kernel under test reads and writes this */
    size_t n;
} Arr;

/* Uniform in [lo, hi) from Philox, same on both sides; each call draws from
 * a new stream, so two arrays never hold the same values. */
Arr arr_rand(size_t n, float lo, float hi);
/* NaN on both sides: an output. */
Arr arr_nan(size_t n);
/* Host values copied to the device (after editing a->h by hand). */
void arr_upload(Arr *a);
/* Device integers (labels, class indices) from host ones. */
int *dev_ints(const int *h, int n);
/* Copy of the device side on the host (free with free()). */
float *arr_download(const Arr *a);
/* Frees every array and device buffer made since the last call. */
void arr_free_all(void);

double rel_err(const float *got, const float *want, size_t n);

/* The pointer to pass for gradient `bit` of a `mask` in scope (the tests
 * run a backward once per subset of its gradients): the host (H) or device
 * (D) array, or NULL when the bit is clear. */
#define H(a, bit) ((mask >> (bit)) & 1 ? (a).h : NULL)
#define D(a, bit) ((mask >> (bit)) & 1 ? (a).d : NULL)

/* Expects the device side of a to match its host side within tol (relative). */
#define EXPECT_CLOSE(a, tol) expect_close(&(a), (tol), #a, __FILE__, __LINE__)
void expect_close(const Arr *a, double tol, const char *what, const char *file, int line);
/* Returns the relative error without judging it (for the BF16 sanity bound). */
double arr_err(const Arr *a);

/* A new array holding src's host values on both sides. */
Arr arr_copy(const Arr *src);
/* Poison a device buffer with NaN (all bits set). */
void dev_poison(float *d, size_t n);
/* Bitwise equality of two device results (determinism). */
int same_bits(const Arr *a, const Arr *b);
/* Row log-sum-exp of q k^T / sqrt(hd) in double ([BH, N, hd] each): the
 * reference for the GPU's saved LSE. */
void ref_lse(float *lse, const float *q, const float *k, int BH, int N, int hd);
/* The GPU attention backward for the gradients in `mask` (1 dq, 2 dk,
 * 4 dv; the others NULL) into g[t] = copies of the starts g0[t], with the
 * scratch poisoned first; g[t]'s host side is then what must result:
 * want[t] (the CPU's) where asked, the start where not (untouched). */
void attention_bwd_subset(Arr g[3], int mask, const Arr g0[3], float *const want[3], const Arr *scratch,
                          const Arr *dout, const Arr *out, const Arr *lse, const Arr *q, const Arr *k, const Arr *v,
                          int B, int H, int N, int hd);
/* Attention forward and backward twice on the same random inputs, in the
 * current precision: the outputs, LSE and gradients must be bit-identical. */
void expect_attention_deterministic(int B, int H, int N, int hd);

/* Smallest gap between the k-th and (k+1)-th largest router probability of
 * any of `rows` rows of nk (INFINITY when k >= nk): SLA2 tests redraw inputs
 * whose hard top-k has a near-tie, where the GPU's and the CPU's router may
 * differ by an ulp. */
double sla2_topk_gap(const float *pc, int rows, int nk, int k);
#endif
