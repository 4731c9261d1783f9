/* kernels/cuda/linear.cu — linear layers through cuBLASLt: out = inp w^T + b,
 * and its backward (dinp += dout w, dw += dout^T inp, db += column sums).
 *
 * Row-major arrays are handed to cuBLASLt (column-major) as their
 * transposes: a row-major [R, C] is a column-major C x R with ld C. Then
 *   out^T [OC x M] = w [IC x OC col-major]^T * inp^T [IC x M]
 * and the bias (one value per output feature) is the BIAS epilogue's vector
 * over the rows of D. In the backward, dw^T [IC x OC] += inp^T (dout^T)^T
 * and the bias gradient is the BGRADB epilogue of that product: the sums of
 * op(B) = dout over the product's k (the rows), one per column of D.
 *
 * Precision (device.cu): FP32 is CUBLAS_COMPUTE_32F with fp32 operands (no
 * TF32); BF16 multiplies bf16 operands with fp32 accumulation. The weights'
 * bf16 copies come from the parameter buffer's mirror (wmirror.cu), made
 * when the weights change, not here; a weight outside any mirror (a frozen
 * network's) and the activations (fp32 in memory, Tensor.data) are rounded
 * into the scratch buffer per call (leading dimension padded to 8 for the
 * tensor cores). D stays fp32 in both modes: every consumer of a linear's
 * output reads fp32 today, and gradients accumulate into fp32 (beta = 1).
 *
 * Epilogues: BIAS adds the fp32 bias; BGRADB overwrites its vector, so the
 * backward points it at a scratch vector and adds that into db (gradients
 * accumulate across micro-batches). Both read or write the vector as
 * 16-byte vectors and no preference describes its alignment, so a vector on
 * a smaller boundary, or a shape the heuristic has no epilogue algorithm
 * for, falls back to linear_add_bias / the fixed-order column sum
 * (cuda_util.cuh). In BF16 mode BGRADB sums the bf16-rounded dout (the
 * product's B operand), as an autocast framework does with its bf16
 * gradients. Heuristic results are cached per shape, epilogue and
 * alignment. */
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/cuda_util.cuh"

/* ---- the cuBLASLt call ---- */

typedef enum { LT_EPI_NONE = 0, LT_EPI_BIAS = 1, LT_EPI_BGRADB = 2 } LtEpi;

typedef struct LtKey {
    int m, n, k, lda, ldb, ldd;
    int ta, tb, bf16, epi; /* epi: the LtEpi asked for */
    int align_a, align_b, align_d, align_vec;
} LtKey;

typedef struct LtEntry {
    LtKey key;
    cublasLtMatmulAlgo_t algo;
    int fused; /* 0: the epilogue had no algorithm; the caller does its work */
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

/* cuBLASLt's epilogues load and store the bias vector 16 bytes at a time. */
#define LT_VEC_ALIGN 16

static void lt_set(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void *v, size_t n) {
    CUBLAS_CHECK(cuda_lt()->MatmulDescSetAttribute(d, attr, v, n));
}

/* Build the descriptors for one call; epi LT_EPI_NONE or vec NULL: no epilogue. */
static void lt_describe(cublasLtMatmulDesc_t *op, cublasLtMatrixLayout_t lay[3], const LtKey *key, LtEpi epi,
                        const float *vec) {
    cudaDataType ab = key->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    CUBLAS_CHECK(cuda_lt()->MatmulDescCreate(op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = key->ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = key->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    lt_set(*op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    lt_set(*op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (epi != LT_EPI_NONE && vec) {
        cublasLtEpilogue_t e = epi == LT_EPI_BIAS ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_BGRADB;
        lt_set(*op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e);
        lt_set(*op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vec, sizeof vec);
        int32_t vec_type = CUDA_R_32F; /* fp32 bias and bias gradient in both modes, as the parameters are */
        lt_set(*op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &vec_type, sizeof vec_type);
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
static int lt_heuristic(cublasLtMatmulAlgo_t *algo, const LtKey *key, LtEpi epi, const float *vec) {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t lay[3];
    lt_describe(&op, lay, key, epi, vec);
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

/* D [m x n, col-major, ldd] = op(A) op(B) + beta D; A and B are fp32 or
 * (bf16) __nv_bfloat16. epi BIAS: then + vec[row]; BGRADB: vec[col] = the
 * sum over k of op(B)[., col], overwritten. Returns whether the epilogue
 * ran; when not (no algorithm, vec misaligned), the product ran without it
 * and the caller does the epilogue's work. */
static int lt_matmul(float *D, const void *A, const void *B, LtEpi epi, float *vec, int ta, int tb, int m, int n,
                     int k, int lda, int ldb, int ldd, float beta, int bf16) {
    LtKey key;
    memset(&key, 0, sizeof key); /* the key is compared bytewise */
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldd = ldd;
    key.ta = ta, key.tb = tb, key.bf16 = bf16, key.epi = vec ? (int)epi : LT_EPI_NONE;
    key.align_a = lt_align(A), key.align_b = lt_align(B), key.align_d = lt_align(D);
    key.align_vec = key.epi ? lt_align(vec) : 0;
    LtEntry *e = NULL;
    for (int i = 0; i < lt_cache_n; i++)
        if (lt_key_eq(&lt_cache[i].key, &key)) e = &lt_cache[i];
    if (!e) {
        LtEntry fresh;
        fresh.key = key;
        fresh.fused = key.epi != LT_EPI_NONE && key.align_vec >= LT_VEC_ALIGN &&
                      lt_heuristic(&fresh.algo, &key, (LtEpi)key.epi, vec);
        if (!fresh.fused)
            CHECK(lt_heuristic(&fresh.algo, &key, LT_EPI_NONE, NULL),
                  "cuBLASLt has no algorithm for a %dx%dx%d %s matmul (ta %d tb %d, ld %d %d %d)", m, n, k,
                  bf16 ? "bf16" : "fp32", ta, tb, lda, ldb, ldd);
        e = &lt_cache[lt_cache_next];
        *e = fresh;
        lt_cache_next = (lt_cache_next + 1) % LT_CACHE;
        if (lt_cache_n < LT_CACHE) lt_cache_n++;
    }
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t lay[3];
    lt_describe(&op, lay, &key, e->fused ? epi : LT_EPI_NONE, e->fused ? vec : NULL);
    size_t ws_bytes;
    void *ws = cuda_lt_workspace(&ws_bytes);
    float alpha = 1.0f;
    CUBLAS_CHECK(cuda_lt()->Matmul(cuda_lt_handle(), op, &alpha, A, lay[0], B, lay[1], &beta, D, lay[2], D, lay[2],
                                &e->algo, ws, ws_bytes, cuda_compute_stream()));
    lt_release(op, lay);
    return e->fused;
}

__global__ void linear_add_bias(float *out, const float *b, int M, int OC) {
    CUDA_FOR(i, (size_t)M * OC) out[i] += b[i % OC];
}

__global__ void linear_add_vec(float *db, const float *v, int n) {
    CUDA_FOR(i, (size_t)n) db[i] += v[i];
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

static size_t round256(size_t b) { return (b + 255) / 256 * 256; }
static size_t bf16_bytes(int R, int C) { return round256((size_t)R * ld_bf16(C) * sizeof(__nv_bfloat16)); }

static __nv_bfloat16 *to_bf16(char **cursor, const float *src, int R, int C) {
    __nv_bfloat16 *dst = (__nv_bfloat16 *)*cursor;
    *cursor += bf16_bytes(R, C);
    linear_to_bf16<<<cuda_blocks((size_t)R * ld_bf16(C), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(
        dst, src, R, C, ld_bf16(C));
    CUDA_CHECK_LAUNCH();
    return dst;
}

/* A BF16 operand for the weight w [R, C]: its mirror copy (ld C) when the
 * parameter buffer has one, else a per-call copy from the scratch (ld
 * padded). mirrored: what cuda_wmirror_weight returned. */
static const __nv_bfloat16 *weight_bf16(char **cursor, const float *w, const void *mirrored, int R, int C, int *ld) {
    *ld = mirrored ? C : ld_bf16(C);
    return mirrored ? (const __nv_bfloat16 *)mirrored : to_bf16(cursor, w, R, C);
}

/* ---- the op entries ---- */

extern "C" void cuda_linear_fwd(float *out, const float *inp, const float *w, const float *b, int M, int IC,
                                int OC) {
    if (M <= 0 || OC <= 0) return;
    CHECK(IC > 0, "cuda_linear_fwd: IC = %d", IC);
    int fused;
    if (cuda_get_precision() == CUDA_PREC_BF16) {
        const void *wm = cuda_wmirror_weight(w, (size_t)OC * IC);
        char *cur = (char *)cuda_scratch((wm ? 0 : bf16_bytes(OC, IC)) + bf16_bytes(M, IC));
        int ldw;
        const __nv_bfloat16 *wb = weight_bf16(&cur, w, wm, OC, IC, &ldw), *ib = to_bf16(&cur, inp, M, IC);
        fused = lt_matmul(out, wb, ib, LT_EPI_BIAS, (float *)b, 1, 0, OC, M, IC, ldw, ld_bf16(IC), OC, 0.0f, 1);
    } else {
        fused = lt_matmul(out, w, inp, LT_EPI_BIAS, (float *)b, 1, 0, OC, M, IC, IC, IC, OC, 0.0f, 0);
    }
    if (b && !fused) {
        linear_add_bias<<<cuda_blocks((size_t)M * OC, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(
            out, b, M, OC);
        CUDA_CHECK_LAUNCH();
    }
}

/* db[c] += sum over rows of dout[:, c] (the fallback of BGRADB) */
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
    const int bf16 = cuda_get_precision() == CUDA_PREC_BF16;
    const void *wm = bf16 && dinp ? cuda_wmirror_weight(w, (size_t)OC * IC) : NULL;
    /* One scratch for the phase: the bf16 copies, then BGRADB's vector. */
    size_t copies = !bf16 || (!dinp && !dw) ? 0
                    : bf16_bytes(M, OC) + (dinp && !wm ? bf16_bytes(OC, IC) : 0) + (dw ? bf16_bytes(M, IC) : 0);
    size_t vec_bytes = db && dw ? round256((size_t)OC * sizeof(float)) : 0;
    char *cur = copies + vec_bytes ? (char *)cuda_scratch(copies + vec_bytes) : NULL;
    float *vec = vec_bytes ? (float *)(cur + copies) : NULL;
    int db_done = 0;
    if (bf16 && (dinp || dw)) {
        const __nv_bfloat16 *gb = to_bf16(&cur, dout, M, OC);
        if (dinp) {
            /* dinp^T [IC x M] += w^T-as-stored [IC x OC] * dout^T [OC x M] */
            int ldw;
            const __nv_bfloat16 *wb = weight_bf16(&cur, w, wm, OC, IC, &ldw);
            lt_matmul(dinp, wb, gb, LT_EPI_NONE, NULL, 0, 0, IC, M, OC, ldw, ld_bf16(OC), IC, 1.0f, 1);
        }
        if (dw) {
            /* dw^T [IC x OC] += inp^T [IC x M] * (dout^T [OC x M])^T, vec = column sums of dout */
            const __nv_bfloat16 *ib = to_bf16(&cur, inp, M, IC);
            db_done = lt_matmul(dw, ib, gb, LT_EPI_BGRADB, vec, 0, 1, IC, OC, M, ld_bf16(IC), ld_bf16(OC), IC, 1.0f,
                                1);
        }
    } else {
        if (dinp) lt_matmul(dinp, w, dout, LT_EPI_NONE, NULL, 0, 0, IC, M, OC, IC, OC, IC, 1.0f, 0);
        if (dw) db_done = lt_matmul(dw, inp, dout, LT_EPI_BGRADB, vec, 0, 1, IC, OC, M, IC, OC, IC, 1.0f, 0);
    }
    if (!db) return;
    if (db_done) {
        linear_add_vec<<<cuda_blocks((size_t)OC, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(db, vec, OC);
        CUDA_CHECK_LAUNCH();
    } else {
        /* After the products: the column sum takes the scratch they read,
         * which the stream order keeps until they are done. */
        cuda_colsum(LinearDbVal{dout, OC}, LinearDbFin{db}, 1, M, OC);
    }
}
