/* train/model/sampler.c — Heun + CFG-interval sampling (see sampler.h). */
#include "train/model/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/device.h"
#include "core/rng.h"

SamplerConfig sampler_config(const Config *c, int steps, float cfg, float cfg_lo, float cfg_hi, long long seed) {
    return (SamplerConfig){.steps = steps >= 1 ? steps : c->sample_steps,
                           .cfg = cfg >= 0 ? cfg : c->cfg_scale,
                           .cfg_lo = cfg_lo >= 0 ? cfg_lo : c->cfg_lo,
                           .cfg_hi = cfg_hi >= 0 ? cfg_hi : c->cfg_hi,
                           .cfg_official = c->official_cfg_interval,
                           .noise_scale = c->noise_scale,
                           .seed = seed >= 0 ? (uint64_t)seed : c->seed};
}

/* Host buffers of one network evaluation: the model's input rows (z and t
 * for both halves of a guided batch) and its output, copied back. The
 * Heun/CFG arithmetic runs on the host whatever the model's device, so a
 * GPU model's samples differ from the CPU's only by the network's rounding;
 * per evaluation that costs one upload of z and one download of x_hat. */
typedef struct SamplerBufs {
    float *zin, *tin, *xh;
    int *y;
} SamplerBufs;

/* v = (x_hat - z) / max(1 - t, 0.05), guided: v_u + w (v_c - v_u). With w = 1
 * the unconditional pass is skipped, so "cfg 1" is exactly the conditional. */
static void velocity(JitModel *m, Graph *g, const SamplerConfig *sc, const float *z, float t, const int *labels, int b,
                     float *v, SamplerBufs *sb) {
    const JitConfig *c = &m->cfg;
    int per = c->in_channels * c->img_size * c->img_size;
    int above_lo = t > sc->cfg_lo || (sc->cfg_official && sc->cfg_lo == 0.0f);
    int guided = sc->cfg != 1.0f && above_lo && t < sc->cfg_hi;
    int rows = guided ? 2 * b : b;
    for (int r = 0; r < rows; r++) {
        memcpy(sb->zin + (size_t)r * per, z + (size_t)(r % b) * per, sizeof(float) * per);
        sb->tin[r] = t;
        sb->y[r] = r < b ? labels[r] : c->num_classes; /* second half: the null class */
    }
    Tensor *zt = graph_new(g, 4, rows, c->in_channels, c->img_size, c->img_size), *tt = graph_new(g, 1, rows);
    g->be->mem->to_device(zt->data, sb->zin, sizeof(float) * (size_t)rows * per);
    g->be->mem->to_device(tt->data, sb->tin, sizeof(float) * (size_t)rows);
    Tensor *xh = jit_forward(m, g, zt, tt, sb->y, NULL);
    graph_read(g, xh, sb->xh, (size_t)rows * per);
    const float *x = sb->xh;
    float d = 1.0f - t > 0.05f ? 1.0f - t : 0.05f;
    for (int r = 0; r < b; r++)
        for (int i = 0; i < per; i++) {
            size_t k = (size_t)r * per + i;
            float vc = (x[k] - z[k]) / d;
            if (guided) {
                float vu = (x[(size_t)(r + b) * per + i] - z[k]) / d;
                v[k] = vu + sc->cfg * (vc - vu);
            } else {
                v[k] = vc;
            }
        }
    graph_reset(g);
}

int sampler_run(JitModel *m, Graph *g, const SamplerConfig *sc, const int *labels, int n, int batch, float *out) {
    const JitConfig *c = &m->cfg;
    CHECK(sc->steps >= 1, "sampling steps must be at least 1, got %d", sc->steps);
    CHECK(batch >= 1, "sampling batch must be at least 1");
    CHECK(g->be->device == m->params.device, "sampling a model on %s with a graph on %s: build the graph on the model's "
                                         "device", device_name(m->params.device), device_name(g->be->device));
    int per = c->in_channels * c->img_size * c->img_size;
    bool prev_grad = graph_set_grad(g, false);
    bool prev_train = g->training;
    g->training = false;
    graph_reset(g);
    size_t nb = (size_t)batch * per;
    float *v1 = malloc(sizeof(float) * nb), *v2 = malloc(sizeof(float) * nb), *ze = malloc(sizeof(float) * nb);
    SamplerBufs sb = {.zin = malloc(sizeof(float) * 2 * nb), .tin = malloc(sizeof(float) * 2 * (size_t)batch),
                      .xh = malloc(sizeof(float) * 2 * nb), .y = malloc(sizeof(int) * 2 * (size_t)batch)};
    CHECK(v1 && v2 && ze && sb.zin && sb.tin && sb.xh && sb.y, "out of memory for sampling buffers (batch %d)", batch);
    int stopped = 0;
    for (int i0 = 0; i0 < n && !stopped; i0 += batch) {
        int b = n - i0 < batch ? n - i0 : batch;
        float *z = out + (size_t)i0 * per;
        rng_fill_normal(z, (size_t)b * per, sc->seed, RNG_STREAM_SAMPLE, (sc->first_index + (uint64_t)i0) * per, 0.0f, sc->noise_scale);
        for (int s = 0; s < sc->steps; s++) {
            if (sc->stop && *sc->stop) {
                stopped = 1;
                break;
            }
            float t0 = (float)s / sc->steps, t1 = (float)(s + 1) / sc->steps, dt = t1 - t0;
            velocity(m, g, sc, z, t0, labels + i0, b, v1, &sb);
            if (s == sc->steps - 1) { /* last interval: Euler */
                for (size_t k = 0; k < (size_t)b * per; k++) z[k] += dt * v1[k];
                break;
            }
            for (size_t k = 0; k < (size_t)b * per; k++) ze[k] = z[k] + dt * v1[k];
            velocity(m, g, sc, ze, t1, labels + i0, b, v2, &sb);
            for (size_t k = 0; k < (size_t)b * per; k++) z[k] += 0.5f * dt * (v1[k] + v2[k]);
        }
    }
    free(v1), free(v2), free(ze);
    free(sb.zin), free(sb.tin), free(sb.xh), free(sb.y);
    g->training = prev_train;
    graph_set_grad(g, prev_grad);
    return stopped ? -1 : 0;
}
