/* kernels/cuda/linear.cu — linear layers through cuBLASLt: out = inp w^T + b,
 * and its backward (dinp += dout w, dw += dout^T inp, db += column sums).
 *
 * Row-major arrays are handed to cuBLASLt (column-major) as their
 * transposes: a row-major [R, C] is a column-major C x R with ld C. Then
 *   out^T [OC x M] = w [IC x OC col-major]^T * inp^T [IC x M]
 * and the bias (one value per output feature) is the BIAS epilogue's vector
 * over the rows of D. Precision (device.cu): FP32 is CUBLAS_COMPUTE_32F with
 * fp32 operands (no TF32); BF16 rounds the operands into bf16 copies in the
 * scratch buffer (leading dimension padded to 8 for the tensor cores) and
 * multiplies with fp32 accumulation and fp32 output, so gradients still
 * accumulate into fp32 (beta = 1). The bias column sum is a fixed-order
 * reduction (cuda_util.cuh), not the BGRAD epilogue, which would overwrite
 * instead of accumulating. The BIAS epilogue reads the bias as 16-byte
 * vectors and no preference describes its alignment, so a bias on a smaller
 * boundary (parameter views are only 4-byte aligned) is added by
 * linear_add_bias instead. Heuristic results are cached per shape and
 * alignment, the bias's included. */
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/cuda_util.cuh"

/* ---- the cuBLASLt call ---- */

typedef struct LtKey {
    int m, n, k, lda, ldb, ldd;
    int ta, tb, bf16, bias; /* bias: 0 none, 1 fused in the epilogue, 2 added by a kernel */
    int align_a, align_b, align_d;
} LtKey;

typedef struct LtEntry {
    LtKey key;
    cublasLtMatmulAlgo_t algo;
    int fused_bias; /* 0: the bias epilogue had no algorithm; added by a kernel */
} LtEntry;

#define LT_CACHE 128
static LtEntry lt_cache[LT_CACHE];
static int lt_cache_n, lt_cache_next;

/* Largest power of two (<= 256, cuBLASLt's default requirement) dividing the
 * address: arena slices and parameter views are not 256-byte aligned, and a
 * preference that claims more would let the heuristic pick a kernel that
 * faults. */
static int lt_align(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 2 && a % (uintptr_t)al) al >>= 1;
    return al;
}

static int lt_key_eq(const LtKey *a, const LtKey *b) { return memcmp(a, b, sizeof *a) == 0; }

/* cuBLASLt's epilogue loads the bias vector 16 bytes at a time. */
#define LT_BIAS_ALIGN 16

static void lt_set(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void *v, size_t n) {
    CUBLAS_CHECK(cuda_lt()->MatmulDescSetAttribute(d, attr, v, n));
}

/* Build the descriptors for one call; bias NULL means no epilogue. */
static void lt_describe(cublasLtMatmulDesc_t *op, cublasLtMatrixLayout_t lay[3], const LtKey *key,
                        const float *bias) {
    cudaDataType ab = key->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    CUBLAS_CHECK(cuda_lt()->MatmulDescCreate(op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = key->ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = key->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    lt_set(*op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    lt_set(*op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        lt_set(*op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        lt_set(*op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
        int32_t bias_type = CUDA_R_32F; /* fp32 bias in both modes, as the parameters are */
        lt_set(*op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type);
    }
    CUBLAS_CHECK(cuda_lt()->MatrixLayoutCreate(&lay[0], ab, key->ta ? key->k : key->m, key->ta ? key->m : key->k,
                                            key->lda));
    CUBLAS_CHECK(cuda_lt()->MatrixLayoutCreate(&lay[1], ab, key->tb ? key->n : key->k, key->tb ? key->k : key->n,
                                            key->ldb));
    CUBLAS_CHECK(cuda_lt()->MatrixLayoutCreate(&lay[2], CUDA_R_32F, key->m, key->n, key->ldd));
}

static void lt_release(cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t lay[3]) {
    for (int i = 0; i < 3; i++) CUBLAS_CHECK(cuda_lt()->MatrixLayoutDestroy(lay[i]));
    CUBLAS_CHECK(cuda_lt()->MatmulDescDestroy(op));
}

/* Ask the heuristic for the best algorithm; 0 when there is none. */
static int lt_heuristic(cublasLtMatmulAlgo_t *algo, const LtKey *key, const float *bias) {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t lay[3];
    lt_describe(&op, lay, key, bias);
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cuda_lt()->MatmulPreferenceCreate(&pref));
    size_t ws_bytes;
    (void)cuda_lt_workspace(&ws_bytes);
    uint64_t ws = ws_bytes;
    uint32_t al[4] = {(uint32_t)key->align_a, (uint32_t)key->align_b, (uint32_t)key->align_d,
                      (uint32_t)key->align_d};
    CUBLAS_CHECK(cuda_lt()->MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    CUBLAS_CHECK(cuda_lt()->MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], 4));
    CUBLAS_CHECK(cuda_lt()->MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], 4));
    CUBLAS_CHECK(cuda_lt()->MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], 4));
    CUBLAS_CHECK(cuda_lt()->MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[3], 4));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t s =
        cuda_lt()->MatmulAlgoGetHeuristic(cuda_lt_handle(), op, lay[0], lay[1], lay[2], lay[2], pref, 1, &res, &found);
    CUBLAS_CHECK(cuda_lt()->MatmulPreferenceDestroy(pref));
    lt_release(op, lay);
    if (s != CUBLAS_STATUS_SUCCESS || found < 1 || res.state != CUBLAS_STATUS_SUCCESS) return 0;
    *algo = res.algo;
    return 1;
}

__global__ void linear_add_bias(float *out, const float *b, int M, int OC) {
    CUDA_FOR(i, (size_t)M * OC) out[i] += b[i % OC];
}

/* D [m x n, col-major, ldd] = op(A) op(B) + beta D, then + bias[row]. A and B
 * are fp32 or (bf16) __nv_bfloat16. */
static void lt_matmul(float *D, const void *A, const void *B, const float *bias, int ta, int tb, int m, int n, int k,
                      int lda, int ldb, int ldd, float beta, int bf16) {
    LtKey key;
    memset(&key, 0, sizeof key); /* the key is compared bytewise */
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldd = ldd;
    key.ta = ta, key.tb = tb, key.bf16 = bf16;
    key.bias = !bias ? 0 : lt_align(bias) >= LT_BIAS_ALIGN ? 1 : 2;
    key.align_a = lt_align(A), key.align_b = lt_align(B), key.align_d = lt_align(D);
    LtEntry *e = NULL;
    for (int i = 0; i < lt_cache_n; i++)
        if (lt_key_eq(&lt_cache[i].key, &key)) e = &lt_cache[i];
    if (!e) {
        LtEntry fresh;
        fresh.key = key;
        fresh.fused_bias = key.bias == 1;
        if (!lt_heuristic(&fresh.algo, &key, fresh.fused_bias ? bias : NULL)) {
            CHECK(fresh.fused_bias, "cuBLASLt has no algorithm for a %dx%dx%d %s matmul (ta %d tb %d, ld %d %d %d)", m,
                  n, k, bf16 ? "bf16" : "fp32", ta, tb, lda, ldb, ldd);
            fresh.fused_bias = 0;
            CHECK(lt_heuristic(&fresh.algo, &key, NULL), "cuBLASLt has no algorithm for a %dx%dx%d %s matmul", m, n,
                  k, bf16 ? "bf16" : "fp32");
        }
        e = &lt_cache[lt_cache_next];
        *e = fresh;
        lt_cache_next = (lt_cache_next + 1) % LT_CACHE;
        if (lt_cache_n < LT_CACHE) lt_cache_n++;
    }
    const float *epi_bias = e->fused_bias ? bias : NULL;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t lay[3];
    lt_describe(&op, lay, &key, epi_bias);
    size_t ws_bytes;
    void *ws = cuda_lt_workspace(&ws_bytes);
    float alpha = 1.0f;
    CUBLAS_CHECK(cuda_lt()->Matmul(cuda_lt_handle(), op, &alpha, A, lay[0], B, lay[1], &beta, D, lay[2], D, lay[2],
                                &e->algo, ws, ws_bytes, cuda_compute_stream()));
    lt_release(op, lay);
    if (bias && !e->fused_bias) {
        /* D is out^T: m = OC features, n = M rows. */
        linear_add_bias<<<cuda_blocks((size_t)m * n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(
            D, bias, n, m);
        CUDA_CHECK_LAUNCH();
    }
}

/* ---- BF16 operands ---- */

static int ld_bf16(int c) { return (c + 7) / 8 * 8; }

/* dst [R, ldd] bf16 = round(src [R, C]); padding columns zeroed. */
__global__ void linear_to_bf16(__nv_bfloat16 *dst, const float *src, int R, int C, int ldd) {
    CUDA_FOR(i, (size_t)R * ldd) {
        size_t r = i / ldd;
        int c = (int)(i % ldd);
        dst[i] = __float2bfloat16_rn(c < C ? src[r * C + c] : 0.0f);
    }
}

static size_t bf16_bytes(int R, int C) { return ((size_t)R * ld_bf16(C) * sizeof(__nv_bfloat16) + 255) / 256 * 256; }

static __nv_bfloat16 *to_bf16(char **cursor, const float *src, int R, int C) {
    __nv_bfloat16 *dst = (__nv_bfloat16 *)*cursor;
    *cursor += bf16_bytes(R, C);
    linear_to_bf16<<<cuda_blocks((size_t)R * ld_bf16(C), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(
        dst, src, R, C, ld_bf16(C));
    CUDA_CHECK_LAUNCH();
    return dst;
}

/* ---- the op entries ---- */

extern "C" void cuda_linear_fwd(float *out, const float *inp, const float *w, const float *b, int M, int IC,
                                int OC) {
    if (M <= 0 || OC <= 0) return;
    CHECK(IC > 0, "cuda_linear_fwd: IC = %d", IC);
    if (cuda_get_precision() == CUDA_PREC_BF16) {
        char *cur = (char *)cuda_scratch(bf16_bytes(OC, IC) + bf16_bytes(M, IC));
        const __nv_bfloat16 *wb = to_bf16(&cur, w, OC, IC), *ib = to_bf16(&cur, inp, M, IC);
        lt_matmul(out, wb, ib, b, 1, 0, OC, M, IC, ld_bf16(IC), ld_bf16(IC), OC, 0.0f, 1);
    } else {
        lt_matmul(out, w, inp, b, 1, 0, OC, M, IC, IC, IC, OC, 0.0f, 0);
    }
}

/* db[c] += sum over rows of dout[:, c] */
struct LinearDbVal {
    const float *dout;
    int OC;
    __device__ float operator()(int g, int r, int c) const { return dout[(size_t)r * OC + c]; }
};
struct LinearDbFin {
    float *db;
    __device__ void operator()(int g, int c, float s) const { db[c] += s; }
};

extern "C" void cuda_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, int M, int IC, int OC) {
    if (M <= 0 || OC <= 0 || IC <= 0) return;
    /* db first: it takes the scratch buffer the bf16 copies use next. */
    if (db) cuda_colsum(LinearDbVal{dout, OC}, LinearDbFin{db}, 1, M, OC);
    if (!dinp && !dw) return;
    if (cuda_get_precision() == CUDA_PREC_BF16) {
        char *cur = (char *)cuda_scratch(bf16_bytes(M, OC) + (dinp ? bf16_bytes(OC, IC) : 0) +
                                         (dw ? bf16_bytes(M, IC) : 0));
        const __nv_bfloat16 *gb = to_bf16(&cur, dout, M, OC);
        if (dinp) {
            /* dinp^T [IC x M] += w^T-as-stored [IC x OC] * dout^T [OC x M] */
            const __nv_bfloat16 *wb = to_bf16(&cur, w, OC, IC);
            lt_matmul(dinp, wb, gb, NULL, 0, 0, IC, M, OC, ld_bf16(IC), ld_bf16(OC), IC, 1.0f, 1);
        }
        if (dw) {
            /* dw^T [IC x OC] += inp^T [IC x M] * (dout^T [OC x M])^T */
            const __nv_bfloat16 *ib = to_bf16(&cur, inp, M, IC);
            lt_matmul(dw, ib, gb, NULL, 0, 1, IC, OC, M, ld_bf16(IC), ld_bf16(OC), IC, 1.0f, 1);
        }
    } else {
        if (dinp) lt_matmul(dinp, w, dout, NULL, 0, 0, IC, M, OC, IC, OC, IC, 1.0f, 0);
        if (dw) lt_matmul(dw, inp, dout, NULL, 0, 1, IC, OC, M, IC, OC, IC, 1.0f, 0);
    }
}
