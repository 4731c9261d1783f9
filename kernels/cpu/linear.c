/* kernels/cpu/linear.c — matrix multiply plus bias through OpenBLAS sgemm. */
#include <cblas.h>

#include "kernels/cpu/cpu.h"

void cpu_linear_fwd(float *out, const float *inp, const float *w, const float *b, int M, int IC, int OC) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, OC, IC, 1.0f, inp, IC, w, IC, 0.0f, out, OC);
    if (!b) return;
#pragma omp parallel for schedule(static) if ((size_t)M * OC > 32768)
    for (int m = 0; m < M; m++) {
        float *o = out + (size_t)m * OC;
        for (int c = 0; c < OC; c++) o[c] += b[c];
    }
}

void cpu_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int M,
                    int IC, int OC) {
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, IC, OC, 1.0f, dout, OC, w, IC, 1.0f, dinp, IC);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, M, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
    if (!db) return;
    /* Each thread owns a range of columns and sums rows in order: deterministic. */
#pragma omp parallel
    {
        int c0, c1;
        cpu_thread_range(OC, &c0, &c1);
        for (int m = 0; m < M; m++) {
            const float *d = dout + (size_t)m * OC;
            for (int c = c0; c < c1; c++) db[c] += d[c];
        }
    }
}
