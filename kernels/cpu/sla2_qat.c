/* kernels/cpu/sla2_qat.c — the quantised sparse branch of SLA2, emulated
 * exactly (docs/sla2.md, "QAT"): INT8 Q per query block and INT8 smoothed K
 * per key block with integer accumulation, FP8 E4M3 P per tile (tile max ->
 * 448) and FP8 E4M3 V per channel, fp32 accumulation. Forward only: the
 * backward is the full-precision one (straight-through). */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/sla2_internal.h"
#include "kernels/quant.h"

/* Symmetric INT8 of rows [r0, r0+n) of x (minus sub, if given) with one scale. */
static float int8_block(float *dst, const float *x, const float *sub, int r0, int n, int d) {
    float amax = 0.0f;
    for (int r = r0; r < r0 + n; r++)
        for (int c = 0; c < d; c++) {
            float a = fabsf(x[(size_t)r * d + c] - (sub ? sub[c] : 0.0f));
            amax = a > amax ? a : amax;
        }
    float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
    for (int r = r0; r < r0 + n; r++)
        for (int c = 0; c < d; c++)
            dst[(size_t)r * d + c] = (float)int8_quantize(x[(size_t)r * d + c] - (sub ? sub[c] : 0.0f), scale);
    return scale;
}

void sla2_qat_sparse_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                         float *o_s, Sla2Ws *w) {
    int N = dm->N, d = dm->d, bq = dm->block_q, bk = dm->block_k;
    float scale = 1.0f / sqrtf((float)d);
    for (int c = 0; c < d; c++) {
        double s = 0.0;
        for (int n = 0; n < N; n++) s += k[(size_t)n * d + c];
        w->kmean[c] = (float)(s / N);
    }
    for (int i = 0; i < dm->nq; i++) w->sq[i] = int8_block(w->qi8, q, NULL, i * bq, sla2_block_len(i, bq, N), d);
    for (int j = 0; j < dm->nk; j++)
        w->sk[j] = int8_block(w->ki8, k, w->kmean, j * bk, sla2_block_len(j, bk, N), d);
    for (int c = 0; c < d; c++) {
        float amax = 0.0f;
        for (int n = 0; n < N; n++) amax = fmaxf(amax, fabsf(v[(size_t)n * d + c]));
        float sv = amax > 0.0f ? amax / FP8_E4M3_MAX : 1.0f;
        for (int n = 0; n < N; n++) w->vq[(size_t)n * d + c] = fp8_e4m3_round_inline(v[(size_t)n * d + c] / sv) * sv;
    }
    for (int i = 0; i < dm->nq; i++) {
        int a0 = i * bq, na = sla2_block_len(i, bq, N);
        for (int a = 0; a < na; a++) w->m[a] = -INFINITY, w->l[a] = 0.0f;
        memset(w->acc, 0, sizeof(float) * (size_t)na * d);
        for (int j = 0; j < dm->nk; j++) {
            if (mask[(size_t)i * dm->nk + j] == 0.0f) continue;
            int b0 = j * bk, nb = sla2_block_len(j, bk, N);
            /* Integer-valued floats: sums of d products of |x| <= 127 stay below
             * 2^24 for d <= 1024, so this product is the exact integer result. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, d, 1.0f, w->qi8 + (size_t)a0 * d, d,
                        w->ki8 + (size_t)b0 * d, d, 0.0f, w->S, nb);
            float deq = w->sq[i] * w->sk[j] * scale, pmax = 0.0f;
            for (int a = 0; a < na; a++) {
                float *row = w->S + (size_t)a * nb, mx = w->m[a];
                for (int b = 0; b < nb; b++) mx = fmaxf(mx, row[b] * deq);
                float corr = cpu_expf(w->m[a] - mx), sum = 0.0f;
                for (int b = 0; b < nb; b++) {
                    row[b] = cpu_expf(row[b] * deq - mx);
                    sum += row[b];
                    pmax = fmaxf(pmax, row[b]);
                }
                w->l[a] = w->l[a] * corr + sum; /* row sum from P~ before quantisation */
                w->m[a] = mx;
                for (int c = 0; c < d; c++) w->acc[(size_t)a * d + c] *= corr;
            }
            float ps = pmax > 0.0f ? FP8_E4M3_MAX / pmax : 1.0f;
            for (size_t t = 0; t < (size_t)na * nb; t++) w->S[t] = fp8_e4m3_round_inline(w->S[t] * ps) / ps;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, nb, 1.0f, w->S, nb, w->vq + (size_t)b0 * d,
                        d, 1.0f, w->acc, d);
        }
        for (int a = 0; a < na; a++)
            for (int c = 0; c < d; c++) o_s[(size_t)(a0 + a) * d + c] = w->acc[(size_t)a * d + c] / w->l[a];
    }
}
