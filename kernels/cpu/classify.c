/* kernels/cpu/classify.c — the ops a classifier needs on top of the
 * transformer kernels: softmax cross-entropy over class logits and mean
 * pooling over tokens. Sums over the batch run in a fixed order (per sample,
 * then added in order), so results are bit-reproducible. */
#include <math.h>

#include "kernels/cpu/cpu.h"

/* Per sample b: lse = max + log(sum exp(l - max)) (no overflow for any
 * logit size), loss_b = lse - l[y_b], probs[b] = softmax(l). */
void cpu_xent_fwd(float *loss, float *probs, const float *logits, const int *labels, int B, int K) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *l = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float mx = l[0];
        for (int k = 1; k < K; k++) mx = l[k] > mx ? l[k] : mx;
        double s = 0.0;
        for (int k = 0; k < K; k++) {
            p[k] = expf(l[k] - mx);
            s += p[k];
        }
        float inv = (float)(1.0 / s);
        for (int k = 0; k < K; k++) p[k] *= inv;
        total += (double)mx + log(s) - (double)l[labels[b]];
    }
    loss[0] = (float)(total / B);
}

/* d loss / d l[b,k] = (p[b,k] - [k == y_b]) / B */
void cpu_xent_bwd(float *dlogits, const float *dloss, const float *probs, const int *labels, int B, int K) {
    float g = dloss[0] / (float)B;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * K;
        float *d = dlogits + (size_t)b * K;
        for (int k = 0; k < K; k++) d[k] += g * (p[k] - (k == labels[b] ? 1.0f : 0.0f));
    }
}

void cpu_mean_tokens_fwd(float *out, const float *x, int B, int N, int C) {
    float inv = 1.0f / (float)N;
#pragma omp parallel for schedule(static) if ((size_t)B * N * C > 16384)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        for (int c = 0; c < C; c++) o[c] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *xi = x + ((size_t)b * N + n) * C;
            for (int c = 0; c < C; c++) o[c] += xi[c];
        }
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void cpu_mean_tokens_bwd(float *dx, const float *dout, int B, int N, int C) {
    float inv = 1.0f / (float)N;
#pragma omp parallel for schedule(static) if ((size_t)B * N * C > 16384)
    for (int b = 0; b < B; b++) {
        const float *d = dout + (size_t)b * C;
        for (int n = 0; n < N; n++) {
            float *o = dx + ((size_t)b * N + n) * C;
            for (int c = 0; c < C; c++) o[c] += d[c] * inv;
        }
    }
}
