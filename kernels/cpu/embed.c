/* kernels/cpu/embed.c — conditioning inputs: timestep sinusoids, the class
 * table lookup, and the in-context class tokens that are prepended to the
 * sequence at block `in_context_start` and stripped after the last block. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

/* f_j = exp(-ln(1e4) j / half), computed in double so all backends agree. */
static inline double embed_freq(int j, int half) { return exp(-log(10000.0) * j / half); }

void cpu_timestep_embed_fwd(float *out, const float *t, int B, int dim) {
    int half = dim / 2;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < half; j++) {
            double a = (double)t[b] * embed_freq(j, half);
            out[(size_t)b * dim + j] = (float)cos(a);
            out[(size_t)b * dim + half + j] = (float)sin(a);
        }
}

void cpu_timestep_embed_bwd(float *dt, const float *dout, const float *t, int B, int dim) {
    int half = dim / 2;
    for (int b = 0; b < B; b++) {
        double acc = 0.0;
        for (int j = 0; j < half; j++) {
            double f = embed_freq(j, half), a = (double)t[b] * f;
            acc += -f * sin(a) * dout[(size_t)b * dim + j] + f * cos(a) * dout[(size_t)b * dim + half + j];
        }
        dt[b] += (float)acc;
    }
}

void cpu_embedding_fwd(float *out, const float *table, const int *idx, int B, int C) {
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * C, table + (size_t)idx[b] * C, (size_t)C * sizeof(float));
}

/* Serial over the batch: two samples may share a class row. */
void cpu_embedding_bwd(float *dtable, const float *dout, const int *idx, int B, int C) {
    for (int b = 0; b < B; b++) cpu_accumulate(dtable + (size_t)idx[b] * C, dout + (size_t)b * C, (size_t)C);
}

void cpu_incontext_prepend_fwd(float *out, const float *x, const float *yemb, const float *pos, int B, int N, int L,
                               int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * (L + N) * C;
        for (int l = 0; l < L; l++)
            for (int c = 0; c < C; c++) o[(size_t)l * C + c] = yemb[(size_t)b * C + c] + pos[(size_t)l * C + c];
        memcpy(o + (size_t)L * C, x + (size_t)b * N * C, (size_t)N * C * sizeof(float));
    }
}

void cpu_incontext_prepend_bwd(float *dx, float *dyemb, float *dpos, const float *dout, int B, int N, int L, int C) {
    for (int b = 0; b < B; b++) {
        const float *d = dout + (size_t)b * (L + N) * C;
        for (int l = 0; l < L; l++)
            for (int c = 0; c < C; c++) {
                if (dyemb) dyemb[(size_t)b * C + c] += d[(size_t)l * C + c];
                if (dpos) dpos[(size_t)l * C + c] += d[(size_t)l * C + c];
            }
        if (dx) cpu_accumulate(dx + (size_t)b * N * C, d + (size_t)L * C, (size_t)N * C);
    }
}

void cpu_incontext_strip_fwd(float *out, const float *x, int B, int N, int L, int C) {
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * N * C, x + ((size_t)b * (L + N) + L) * C, (size_t)N * C * sizeof(float));
}

void cpu_incontext_strip_bwd(float *dx, const float *dout, int B, int N, int L, int C) {
    for (int b = 0; b < B; b++)
        cpu_accumulate(dx + ((size_t)b * (L + N) + L) * C, dout + (size_t)b * N * C, (size_t)N * C);
}
