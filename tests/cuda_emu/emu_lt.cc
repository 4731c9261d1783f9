/* tests/cuda_emu/emu_lt.cc — a cuBLASLt stand-in for the emulator: the
 * descriptors and calls of include/cublasLt.h with cuBLASLt's documented
 * semantics, computed on the CPU (OpenBLAS sgemm, fp32 accumulation).
 *
 * What it holds the caller to, as cuBLASLt does:
 *  - layouts are column-major (rows, cols, ld >= rows); op(A) is m x k,
 *    op(B) k x n, C and D m x n with the same layout; CUBLAS_OP_T swaps a
 *    layout's rows and columns;
 *  - CUBLAS_COMPUTE_32F with CUDA_R_32F scale; A and B both fp32 or both
 *    bf16, C and D fp32; alpha and beta are host scalars read at the call;
 *  - D = alpha op(A) op(B) + beta C, then + bias[row] with the BIAS epilogue
 *    (an fp32 vector of m values); beta = 0 never reads C;
 *  - BGRADB (NVIDIA's cuBLASLt reference, cublasLtEpilogue_t: "apply bias
 *    gradient to the input matrix B; the bias size corresponds to the number
 *    of columns of the matrix D; the reduction happens over the GEMM's k
 *    dimension"): vec[j] = sum over k of op(B)[k, j] (as B holds it: bf16
 *    operands are summed as their bf16 values), n fp32 values written, not
 *    accumulated; D as without the epilogue. Here in fp32, k in order;
 *  - the vector's type (BIAS_DATA_TYPE) is fp32 or unset (-1: D's, fp32);
 *    any other epilogue (BGRADA, RELU, GELU, ...) or vector type is
 *    CUBLAS_STATUS_NOT_SUPPORTED with a message naming it, as is an
 *    epilogue without its BIAS_POINTER;
 *  - the heuristic returns an algorithm only for a supported problem, and
 *    that algorithm assumes the pointer alignments the preference promised
 *    (256 bytes unless set lower): cublasLtMatmul with a pointer aligned less
 *    than that fails, as the chosen kernel would fault or be refused on a
 *    GPU. The epilogue's bias pointer has no preference attribute, and
 *    cuBLASLt's epilogue kernels load it as 16-byte vectors: a bias aligned to
 *    less than 16 bytes gets no algorithm (the caller then adds the bias
 *    itself);
 *  - every matrix, the bias and the workspace must lie inside device
 *    allocations: a range outside one stops the run with the operand named. */
#include <cblas.h>

#include <cstdarg>
#include <memory>

#include "emu_internal.h"
#include "include/cublasLt.h"

struct EmuLtHandle {
    int magic;
};
struct EmuLtDesc {
    cublasComputeType_t compute;
    cudaDataType scale;
    int32_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    int32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias = nullptr;
    int32_t bias_type = -1; /* -1: D's type */
};
struct EmuLtLayout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};
struct EmuLtPref {
    uint64_t workspace = 0;
    uint32_t align[4] = {256, 256, 256, 256}; /* A, B, C, D */
};

/* What the heuristic stamps into an algorithm (cublasLtMatmulAlgo_t is 64
 * opaque bytes). */
struct AlgoStamp {
    uint32_t magic;
    uint32_t align[4];
    int32_t ta, tb, epilogue;
    uint64_t m, n, k;
    int32_t ab_type;
};
static_assert(sizeof(AlgoStamp) <= sizeof(cublasLtMatmulAlgo_t), "algo stamp too large");
static const uint32_t ALGO_MAGIC = 0x4c54454du;

static cublasStatus_t lt_err(cublasStatus_t s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "EMU cuBLASLt: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return s;
}

static size_t type_size(cudaDataType t) { return t == CUDA_R_32F ? 4 : t == CUDA_R_16BF || t == CUDA_R_16F ? 2 : 8; }

static int align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 1 && a % (uintptr_t)al) al >>= 1;
    return al;
}

struct Problem {
    uint64_t m, n, k;
};

/* The shapes of op(A), op(B), C, D agree and every layout is valid. */
static cublasStatus_t lt_problem(const EmuLtDesc *d, const EmuLtLayout *a, const EmuLtLayout *b,
                                 const EmuLtLayout *c, const EmuLtLayout *dd, Problem *p) {
    if (!d || !a || !b || !c || !dd) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "a null descriptor");
    if (d->compute != CUBLAS_COMPUTE_32F || d->scale != CUDA_R_32F)
        return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "compute type %d / scale type %d: only CUBLAS_COMPUTE_32F with "
                      "CUDA_R_32F is emulated", (int)d->compute, (int)d->scale);
    const EmuLtLayout *ls[4] = {a, b, c, dd};
    const char *nm = "ABCD";
    for (int i = 0; i < 4; i++)
        if (ls[i]->ld < 1 || (ls[i]->rows > 0 && (uint64_t)ls[i]->ld < ls[i]->rows))
            return lt_err(CUBLAS_STATUS_INVALID_VALUE, "layout of %c: ld %lld < rows %llu (column-major)", nm[i],
                          (long long)ls[i]->ld, (unsigned long long)ls[i]->rows);
    uint64_t m = d->ta ? a->cols : a->rows, k = d->ta ? a->rows : a->cols;
    uint64_t kb = d->tb ? b->cols : b->rows, n = d->tb ? b->rows : b->cols;
    if (kb != k)
        return lt_err(CUBLAS_STATUS_INVALID_VALUE, "op(A) is %llux%llu but op(B) is %llux%llu",
                      (unsigned long long)m, (unsigned long long)k, (unsigned long long)kb, (unsigned long long)n);
    if (c->rows != m || c->cols != n || dd->rows != m || dd->cols != n)
        return lt_err(CUBLAS_STATUS_INVALID_VALUE, "C/D are %llux%llu/%llux%llu, the product is %llux%llu",
                      (unsigned long long)c->rows, (unsigned long long)c->cols, (unsigned long long)dd->rows,
                      (unsigned long long)dd->cols, (unsigned long long)m, (unsigned long long)n);
    if (a->type != b->type || (a->type != CUDA_R_32F && a->type != CUDA_R_16BF))
        return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "A/B types %d/%d: fp32 or bf16 pairs are emulated", (int)a->type,
                      (int)b->type);
    if (c->type != CUDA_R_32F || dd->type != CUDA_R_32F)
        return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "C/D must be fp32 here");
    if (c->ld != dd->ld) return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "C and D layouts differ");
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS &&
        d->epilogue != CUBLASLT_EPILOGUE_BGRADB)
        return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "epilogue %d is not emulated (DEFAULT, BIAS and BGRADB are)",
                      (int)d->epilogue);
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
        const char *e = d->epilogue == CUBLASLT_EPILOGUE_BIAS ? "BIAS" : "BGRADB";
        if (!d->bias) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "%s epilogue without a BIAS_POINTER", e);
        if (d->bias_type != -1 && d->bias_type != CUDA_R_32F)
            return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "%s epilogue with vector type %d: fp32 is emulated", e,
                          (int)d->bias_type);
    }
    *p = {m, n, k};
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = new EmuLtHandle{1};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType scale) {
    *d = new EmuLtDesc();
    (*d)->compute = compute;
    (*d)->scale = scale;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size) {
    if (!d || !buf) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "DescSetAttribute: null argument");
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
        if (size != sizeof(int32_t)) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "TRANSA/B takes 4 bytes, not %zu", size);
        int32_t v;
        memcpy(&v, buf, 4);
        if (v != CUBLAS_OP_N && v != CUBLAS_OP_T)
            return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "transpose %d (N or T are emulated)", (int)v);
        (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->ta : d->tb) = v;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (size != sizeof(int32_t)) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "EPILOGUE takes 4 bytes, not %zu", size);
        memcpy(&d->epilogue, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *)) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "BIAS_POINTER takes a pointer");
        memcpy(&d->bias, buf, sizeof(void *));
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        if (size != sizeof(int32_t)) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "BIAS_DATA_TYPE takes 4 bytes");
        memcpy(&d->bias_type, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    }
    return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "matmul attribute %d is not emulated", (int)attr);
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    *l = new EmuLtLayout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new EmuLtPref();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t size) {
    if (!p || !buf) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "PreferenceSetAttribute: null argument");
    if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
        if (size != 8) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "MAX_WORKSPACE_BYTES takes 8 bytes, not %zu", size);
        memcpy(&p->workspace, buf, 8);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES) {
        if (size != 4) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "MIN_ALIGNMENT takes 4 bytes, not %zu", size);
        memcpy(&p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (attr == CUBLASLT_MATMUL_PREF_SEARCH_MODE) return CUBLAS_STATUS_SUCCESS;
    return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "preference attribute %d is not emulated", (int)attr);
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dd, cublasLtMatmulPreference_t pref,
                                              int requested, cublasLtMatmulHeuristicResult_t *res, int *returned) {
    *returned = 0;
    if (!h || !pref || requested < 1 || !res) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "heuristic: bad arguments");
    Problem p;
    cublasStatus_t s = lt_problem(d, a, b, c, dd, &p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && align_of(d->bias) < 16)
        return lt_err(CUBLAS_STATUS_NOT_SUPPORTED,
                      "no algorithm: the epilogue's vector at %p is %d-byte aligned (its kernels need 16)", d->bias,
                      align_of(d->bias));
    memset(res, 0, sizeof *res);
    AlgoStamp st = {ALGO_MAGIC, {pref->align[0], pref->align[1], pref->align[2], pref->align[3]}, d->ta, d->tb,
                    d->epilogue, p.m, p.n, p.k, (int32_t)a->type};
    memcpy(&res->algo, &st, sizeof st);
    res->workspaceSize = 0;
    res->state = CUBLAS_STATUS_SUCCESS;
    res->wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha_p, const void *A,
                              cublasLtMatrixLayout_t al, const void *B, cublasLtMatrixLayout_t bl, const void *beta_p,
                              const void *C, cublasLtMatrixLayout_t cl, void *D, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes, cudaStream_t stream) {
    if (!h || !alpha_p || !beta_p) return lt_err(CUBLAS_STATUS_INVALID_VALUE, "matmul: null handle or scalar");
    Problem p;
    cublasStatus_t s = lt_problem(d, al, bl, cl, dl, &p);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (!algo) return lt_err(CUBLAS_STATUS_NOT_SUPPORTED, "matmul without an algorithm is not emulated");
    AlgoStamp st;
    memcpy(&st, algo, sizeof st);
    if (st.magic != ALGO_MAGIC || st.m != p.m || st.n != p.n || st.k != p.k || st.ta != d->ta || st.tb != d->tb ||
        st.epilogue != d->epilogue || st.ab_type != (int32_t)al->type)
        return lt_err(CUBLAS_STATUS_INVALID_VALUE, "the algorithm was returned for another problem");
    const void *ptrs[4] = {A, B, C, D};
    const char *nm = "ABCD";
    for (int i = 0; i < 4; i++)
        if ((uint32_t)align_of(ptrs[i]) < st.align[i])
            return lt_err(CUBLAS_STATUS_INVALID_VALUE,
                          "%c at %p is %d-byte aligned, but the algorithm was chosen for %u-byte alignment (set "
                          "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_%c_BYTES)",
                          nm[i], ptrs[i], align_of(ptrs[i]), st.align[i], nm[i]);
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && align_of(d->bias) < 16)
        return lt_err(CUBLAS_STATUS_INVALID_VALUE, "the epilogue's vector at %p is %d-byte aligned (16 needed)",
                      d->bias, align_of(d->bias));
    float alpha, beta;
    memcpy(&alpha, alpha_p, 4);
    memcpy(&beta, beta_p, 4);
    const EmuLtLayout la = *al, lb = *bl, lc = *cl;
    auto extent = [](const EmuLtLayout &l) {
        return l.rows && l.cols ? ((l.cols - 1) * (uint64_t)l.ld + l.rows) * type_size(l.type) : 0;
    };
    if (p.m && p.n) {
        struct {
            const void *ptr;
            uint64_t bytes;
            const char *what;
        } ops[] = {{A, p.k ? extent(la) : 0, "A"}, {B, p.k ? extent(lb) : 0, "B"}, {C, beta != 0.0f ? extent(lc) : 0, "C"},
                   {D, extent(lc), "D"}, {d->bias, d->epilogue == CUBLASLT_EPILOGUE_BIAS ? p.m * 4 : 0, "bias"},
                   {d->bias, d->epilogue == CUBLASLT_EPILOGUE_BGRADB ? p.n * 4 : 0, "BGRADB's vector"},
                   {ws, ws_bytes, "workspace"}};
        for (auto &o : ops)
            if (o.bytes && !emu_device_range(o.ptr, o.bytes))
                emu_fail("cublasLtMatmul (%llux%llux%llu): %s at %p (%llu bytes) is not inside one device allocation",
                         (unsigned long long)p.m, (unsigned long long)p.n, (unsigned long long)p.k, o.what, o.ptr,
                         (unsigned long long)o.bytes);
    }
    int ta = d->ta, tb = d->tb;
    const float *bias = d->epilogue == CUBLASLT_EPILOGUE_BIAS ? (const float *)d->bias : nullptr;
    float *bgrad = d->epilogue == CUBLASLT_EPILOGUE_BGRADB ? (float *)d->bias : nullptr;
    emu_enqueue(stream, "cublasLtMatmul", [=]() {
        if (!p.m || !p.n) return;
        if (p.k) emu_hz_note_range(A, extent(la), false), emu_hz_note_range(B, extent(lb), false);
        if (beta != 0.0f) emu_hz_note_range(C, extent(lc), false);
        if (bias) emu_hz_note_range(bias, p.m * 4, false);
        if (bgrad) emu_hz_note_range(bgrad, p.n * 4, true);
        emu_hz_note_range(D, extent(lc), true);
        float *Df = (float *)D;
        size_t ldd = (size_t)lc.ld;
        if (C != D) {
            for (uint64_t j = 0; j < p.n; j++)
                for (uint64_t i = 0; i < p.m; i++)
                    Df[i + j * ldd] = beta != 0.0f ? beta * ((const float *)C)[i + j * ldd] : 0.0f;
        }
        const float *Af = (const float *)A, *Bf = (const float *)B;
        std::vector<float> a32, b32;
        if (la.type == CUDA_R_16BF) {
            auto widen = [](std::vector<float> &dst, const void *src, const EmuLtLayout &l) {
                dst.assign((size_t)l.ld * l.cols, 0.0f);
                const __nv_bfloat16 *s16 = (const __nv_bfloat16 *)src;
                for (uint64_t j = 0; j < l.cols; j++)
                    for (uint64_t i = 0; i < l.rows; i++)
                        dst[i + j * l.ld] = __bfloat162float(s16[i + j * l.ld]);
            };
            widen(a32, A, la);
            widen(b32, B, lb);
            Af = a32.data(), Bf = b32.data();
        }
        if (p.k)
            cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)p.m,
                        (int)p.n, (int)p.k, alpha, Af, (int)la.ld, Bf, (int)lb.ld, C != D ? 1.0f : beta, Df,
                        (int)ldd);
        else
            for (uint64_t j = 0; j < p.n; j++)
                for (uint64_t i = 0; i < p.m; i++)
                    if (C == D) Df[i + j * ldd] = beta != 0.0f ? beta * Df[i + j * ldd] : 0.0f;
        if (bias)
            for (uint64_t j = 0; j < p.n; j++)
                for (uint64_t i = 0; i < p.m; i++) Df[i + j * ldd] += bias[i];
        if (bgrad) /* op(B)[kk, j] is B[j + kk ld] transposed, B[kk + j ld] not */
            for (uint64_t j = 0; j < p.n; j++) {
                float s = 0.0f;
                for (uint64_t kk = 0; kk < p.k; kk++) s += Bf[tb ? j + kk * lb.ld : kk + j * lb.ld];
                bgrad[j] = s;
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

} /* extern "C" */
