/* kernels/cpu/sla2_stats.c — SLA2 diagnostics per head, from a finished
 * forward: the share of key blocks computed exactly, alpha, the full-softmax
 * mass the selection captures, the relative L2 error against full attention,
 * and under QAT the quantisation error of the sparse branch. Needs the full
 * softmax, so it costs a dense attention pass: call it every n steps. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu.h"

void cpu_sla2_stats_with_scratch(Sla2Stats *st, float *scratch, const float *out, const Sla2Saved *sv,
                                 const float *q, const float *k, const float *v, const float *alpha_logit,
                                 const Sla2Dims *dm) {
    int B = dm->B, H = dm->H, N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk;
    /* Per (b, h) partial sums, combined per head afterwards in a fixed order. */
    double *acc = (double *)scratch; /* B*H*6 doubles, then row buffers */
    float *rows = scratch + (size_t)B * H * 12;
    float scale = 1.0f / sqrtf((float)d);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t off = (size_t)bh * N * d;
        const float *qb = q + off, *kb = k + off, *vb = v + off, *mask = sv->mask + (size_t)bh * nq * nk;
        float *p = rows + (size_t)bh * N;
        double sel = 0, mass = 0, err2 = 0, full2 = 0, qerr2 = 0, qref2 = 0;
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < nk; j++) sel += mask[(size_t)i * nk + j];
        for (int a = 0; a < N; a++) {
            const float *qa = qb + (size_t)a * d;
            float mx = -INFINITY;
            for (int t = 0; t < N; t++) {
                float s = 0.0f;
                for (int c = 0; c < d; c++) s += qa[c] * kb[(size_t)t * d + c];
                p[t] = s * scale;
                mx = fmaxf(mx, p[t]);
            }
            double sum = 0.0;
            for (int t = 0; t < N; t++) sum += p[t] = expf(p[t] - mx);
            const float *mrow = mask + (size_t)(a / dm->block_q) * nk;
            for (int t = 0; t < N; t++) {
                p[t] = (float)(p[t] / sum);
                mass += mrow[t / dm->block_k] * p[t];
            }
            const float *o = out + ((size_t)b * N + a) * H * d + (size_t)h * d;
            for (int c = 0; c < d; c++) {
                double f = 0.0;
                for (int t = 0; t < N; t++) f += (double)p[t] * vb[(size_t)t * d + c];
                err2 += (o[c] - f) * (o[c] - f);
                full2 += f * f;
                if (dm->qat) {
                    double e = (double)sv->o_s[off + (size_t)a * d + c] - sv->o_s_fp[off + (size_t)a * d + c];
                    qerr2 += e * e;
                    qref2 += (double)sv->o_s_fp[off + (size_t)a * d + c] * sv->o_s_fp[off + (size_t)a * d + c];
                }
            }
        }
        double *r = acc + (size_t)bh * 6;
        r[0] = sel / ((double)nq * nk), r[1] = mass / N, r[2] = err2, r[3] = full2, r[4] = qerr2, r[5] = qref2;
    }
    for (int h = 0; h < H; h++) {
        double s[6] = {0};
        for (int b = 0; b < B; b++)
            for (int t = 0; t < 6; t++) s[t] += acc[((size_t)b * H + h) * 6 + t];
        st[h].frac_exact = (float)(s[0] / B);
        st[h].alpha = 1.0f / (1.0f + expf(-alpha_logit[h]));
        st[h].captured_mass = (float)(s[1] / B);
        st[h].rel_l2_err = (float)(s[3] > 0 ? sqrt(s[2] / s[3]) : 0.0);
        st[h].qat_rel_err = (float)(dm->qat && s[5] > 0 ? sqrt(s[4] / s[5]) : 0.0);
    }
}

/* The op table's entry: host memory throughout; scratch for the call. */
void cpu_sla2_stats(Sla2Stats *st, const float *out, const Sla2Saved *sv, const float *q, const float *k,
                    const float *v, const float *alpha_logit, const Sla2Dims *dm) {
    float *scratch = cpu_sla2_stats_scratch(dm);
    cpu_sla2_stats_with_scratch(st, scratch, out, sv, q, k, v, alpha_logit, dm);
    core_free(scratch);
}

float *cpu_sla2_stats_scratch(const Sla2Dims *dm) {
    return core_malloc((size_t)dm->B * dm->H * (12 + (size_t)dm->N) * sizeof(float)); /* stops when out of memory */
}
