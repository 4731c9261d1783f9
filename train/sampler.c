/* train/sampler.c — Heun + CFG-interval sampling (see sampler.h). */
#include "train/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

/* v = (x_hat - z) / max(1 - t, 0.05), guided: v_u + w (v_c - v_u). With w = 1
 * the unconditional pass is skipped, so "cfg 1" is exactly the conditional. */
static void velocity(JitModel *m, Graph *g, const SamplerConfig *sc, const float *z, float t, const int *labels, int b,
                     float *v, int *ybuf) {
    const JitConfig *c = &m->cfg;
    int per = c->in_channels * c->img_size * c->img_size;
    int guided = sc->cfg != 1.0f && t > sc->cfg_lo && t < sc->cfg_hi;
    int rows = guided ? 2 * b : b;
    Tensor *zt = graph_new(g, 4, rows, c->in_channels, c->img_size, c->img_size), *tt = graph_new(g, 1, rows);
    for (int r = 0; r < rows; r++) {
        memcpy(zt->data + (size_t)r * per, z + (size_t)(r % b) * per, sizeof(float) * per);
        tt->data[r] = t;
        ybuf[r] = r < b ? labels[r] : c->num_classes; /* second half: the null class */
    }
    Tensor *xh = jit_forward(m, g, zt, tt, ybuf);
    float d = 1.0f - t > 0.05f ? 1.0f - t : 0.05f;
    for (int r = 0; r < b; r++)
        for (int i = 0; i < per; i++) {
            size_t k = (size_t)r * per + i;
            float vc = (xh->data[k] - z[k]) / d;
            if (guided) {
                float vu = (xh->data[(size_t)(r + b) * per + i] - z[k]) / d;
                v[k] = vu + sc->cfg * (vc - vu);
            } else {
                v[k] = vc;
            }
        }
    graph_reset(g);
}

void sampler_run(JitModel *m, Graph *g, const SamplerConfig *sc, const int *labels, int n, int batch, float *out) {
    const JitConfig *c = &m->cfg;
    CHECK(sc->steps >= 1, "sampling steps must be at least 1, got %d", sc->steps);
    CHECK(batch >= 1, "sampling batch must be at least 1");
    int per = c->in_channels * c->img_size * c->img_size;
    bool prev_grad = graph_set_grad(g, false);
    bool prev_train = g->training;
    g->training = false;
    graph_reset(g);
    float *v1 = malloc(sizeof(float) * (size_t)batch * per), *v2 = malloc(sizeof(float) * (size_t)batch * per);
    float *ze = malloc(sizeof(float) * (size_t)batch * per);
    int *ybuf = malloc(sizeof(int) * 2 * (size_t)batch);
    CHECK(v1 && v2 && ze && ybuf, "out of memory for sampling buffers");
    for (int i0 = 0; i0 < n; i0 += batch) {
        int b = n - i0 < batch ? n - i0 : batch;
        float *z = out + (size_t)i0 * per;
        rng_fill_normal(z, (size_t)b * per, sc->seed, RNG_STREAM_SAMPLE, (uint64_t)i0 * per, 0.0f, sc->noise_scale);
        for (int s = 0; s < sc->steps; s++) {
            float t0 = (float)s / sc->steps, t1 = (float)(s + 1) / sc->steps, dt = t1 - t0;
            velocity(m, g, sc, z, t0, labels + i0, b, v1, ybuf);
            if (s == sc->steps - 1) { /* last interval: Euler */
                for (size_t k = 0; k < (size_t)b * per; k++) z[k] += dt * v1[k];
                break;
            }
            for (size_t k = 0; k < (size_t)b * per; k++) ze[k] = z[k] + dt * v1[k];
            velocity(m, g, sc, ze, t1, labels + i0, b, v2, ybuf);
            for (size_t k = 0; k < (size_t)b * per; k++) z[k] += 0.5f * dt * (v1[k] + v2[k]);
        }
    }
    free(v1), free(v2), free(ze), free(ybuf);
    g->training = prev_train;
    graph_set_grad(g, prev_grad);
}
