/* core/optim.c — AdamW (Loshchilov & Hutter) with bias correction, decoupled decay. */
#include "core/optim.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/device.h"

void adamw_init_range(AdamW *opt, size_t lo, size_t n, float beta1, float beta2, float eps, float weight_decay) {
    memset(opt, 0, sizeof *opt);
    opt->beta1 = beta1, opt->beta2 = beta2, opt->eps = eps, opt->weight_decay = weight_decay;
    opt->lo = lo, opt->n = n;
    opt->m = core_calloc((n ? n : 1) * sizeof(float));
    opt->v = core_calloc((n ? n : 1) * sizeof(float));
}

void adamw_init(AdamW *opt, const ParamStore *ps, float beta1, float beta2, float eps, float weight_decay) {
    adamw_init_range(opt, 0, ps->padded, beta1, beta2, eps, weight_decay);
}

size_t params_clip_range(const ParamStore *ps, int i, size_t lo, size_t hi, size_t *first) {
    size_t a = ps->info[i].offset, b = a + ps->info[i].numel;
    if (a < lo) a = lo;
    if (b > hi) b = hi;
    *first = a;
    return b > a ? b - a : 0;
}

void adamw_free(AdamW *opt) {
    core_free(opt->m);
    core_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

void adamw_step(AdamW *opt, ParamStore *ps, float lr) {
    CHECK(ps->device == DEVICE_CPU, "adamw_step works on host buffers; parameters on %s take cuda_adamw_step",
          device_name(ps->device));
    opt->step++;
    float b1 = opt->beta1, b2 = opt->beta2;
    float c1 = 1.0f / (1.0f - powf(b1, (float)opt->step)), c2 = 1.0f / (1.0f - powf(b2, (float)opt->step));
    for (int i = 0; i < ps->n; i++) {
        const Tensor *t = &ps->views[i];
        if (!t->requires_grad) continue;
        size_t off, n = params_clip_range(ps, i, opt->lo, opt->lo + opt->n, &off);
        if (!n) continue;
        float decay = ps->info[i].weight_decay ? opt->weight_decay : 0.0f;
        float *w = ps->data + off, *g = ps->grad + off, *m = opt->m + (off - opt->lo), *v = opt->v + (off - opt->lo);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t j = 0; j < n; j++) {
            m[j] = b1 * m[j] + (1.0f - b1) * g[j];
            v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
            float mhat = m[j] * c1, vhat = v[j] * c2;
            w[j] -= lr * (mhat / (sqrtf(vhat) + opt->eps) + decay * w[j]);
        }
    }
}

void ema_update(float *ema, const float *w, size_t n, float decay) {
    float a = 1.0f - decay;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) ema[i] += a * (w[i] - ema[i]);
}

/* Per-parameter partial sums added in order: the norm does not depend on threads. */
double params_grad_sq_range(const ParamStore *ps, size_t lo, size_t hi) {
    CHECK(ps->device == DEVICE_CPU, "params_grad_norm reads host gradients; parameters on %s take cuda_grad_norm",
          device_name(ps->device));
    double total = 0.0;
    for (int i = 0; i < ps->n; i++) {
        if (!ps->views[i].requires_grad) continue;
        size_t off, n = params_clip_range(ps, i, lo, hi, &off);
        const float *g = ps->grad + off;
        double s = 0.0;
        for (size_t j = 0; j < n; j++) s += (double)g[j] * g[j];
        total += s;
    }
    return total;
}

double params_grad_norm(const ParamStore *ps) { return sqrt(params_grad_sq_range(ps, 0, ps->padded)); }

void params_scale_grad_range(ParamStore *ps, float s, size_t lo, size_t hi) {
    CHECK(ps->device == DEVICE_CPU, "params_scale_grad writes host gradients; parameters on %s take cuda_scale_grad",
          device_name(ps->device));
    for (int i = 0; i < ps->n; i++) {
        if (!ps->views[i].requires_grad) continue;
        size_t off, n = params_clip_range(ps, i, lo, hi, &off);
        float *g = ps->grad + off;
        for (size_t j = 0; j < n; j++) g[j] *= s;
    }
}

void params_scale_grad(ParamStore *ps, float s) { params_scale_grad_range(ps, s, 0, ps->padded); }
