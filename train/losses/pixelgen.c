/* train/losses/pixelgen.c — PixelGen's REPA, LPIPS and P-DINO (pixelgen.h). */
#include "train/losses/pixelgen.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/ops.h"
#include "train/model/diffusion.h"

const char *const pixelgen_term_names[PG_N_TERMS] = {"lpips", "repa", "pdino"};

/* The random stand-ins' seeds: fixed, so every rank builds the same networks. */
#define PG_SEED_LPIPS 0x1f1f5u
#define PG_SEED_DINO 0xd1a0u

int pixelgen_enabled(const Config *c) { return c->lpips_weight > 0 || c->repa_weight > 0 || c->pdino_weight > 0; }

static int percept_on(const PixelGen *p) { return p->on[PG_LPIPS] || p->on[PG_PDINO]; }

static int adaptive_possible(const PixelGen *p) { return percept_on(p) && p->cfg->adaptive_start >= 0; }

void pixelgen_open(PixelGen *p, const Config *c, const JitModel *m, const Backend *be) {
    memset(p, 0, sizeof *p);
    p->cfg = c;
    p->lambda = 1.0;
    p->on[PG_LPIPS] = c->lpips_weight > 0;
    p->on[PG_REPA] = c->repa_weight > 0;
    p->on[PG_PDINO] = c->pdino_weight > 0;
    for (int i = 0; i < PG_N_TERMS; i++) p->value[i] = NAN;
    int div = c->frozen_random_div;
    if (p->on[PG_LPIPS]) {
        if (div > 0) {
            lpips_init(&p->lpips, div);
            lpips_init_random(&p->lpips, PG_SEED_LPIPS);
        } else {
            lpips_init(&p->lpips, lpips_file_div(c->vgg_weights, "losses.vgg_weights"));
            lpips_load(&p->lpips, c->vgg_weights, "losses.vgg_weights", c->lpips_weights, "losses.lpips_weights");
        }
        lpips_to_device(&p->lpips, be);
    }
    if (p->on[PG_REPA] || p->on[PG_PDINO]) {
        if (div > 0) {
            dino_init(&p->dino, div);
            dino_init_random(&p->dino, PG_SEED_DINO);
        } else {
            dino_init(&p->dino, dino_file_div(c->dino_weights, "losses.dino_weights"));
            dino_load(&p->dino, c->dino_weights, "losses.dino_weights");
        }
        CHECK(!p->on[PG_REPA] || p->dino.dim == m->cfg.repa_dim,
              "losses.dino_weights = %s: DINOv2 of width %d, but the REPA projector aligns to %d (ViT-B/14's width; "
              "reduced widths are for tests, with losses.frozen_random_div)",
              c->dino_weights, p->dino.dim, m->cfg.repa_dim);
        dino_prepare(&p->dino, m->cfg.grid, be);
        if (c->dino_cache_mb > 0)
            featcache_init(&p->cache, (size_t)m->cfg.grid * m->cfg.grid * p->dino.dim,
                           (size_t)((double)c->dino_cache_mb * 1048576.0));
    }
    p->cached = NAN;
    if (adaptive_possible(p)) {
        p->g_n = m->final_w->numel;
        p->g_fm = core_malloc(sizeof(double) * p->g_n);
        p->g_p = core_malloc(sizeof(double) * p->g_n);
        p->g_read = core_malloc(sizeof(float) * 3 * p->g_n);
    }
}

void pixelgen_free(PixelGen *p) {
    if (p->on[PG_LPIPS]) lpips_free(&p->lpips);
    if (p->on[PG_REPA] || p->on[PG_PDINO]) dino_free(&p->dino);
    if (p->cache.row) featcache_free(&p->cache);
    core_free(p->g_fm), core_free(p->g_p), core_free(p->g_read);
    memset(p, 0, sizeof *p);
}

void pixelgen_step_begin(PixelGen *p, uint64_t step) {
    const Config *c = p->cfg;
    memset(p->sum, 0, sizeof p->sum);
    memset(p->micro, 0, sizeof p->micro);
    memset(p->cache_use, 0, sizeof p->cache_use);
    p->adapt_now = adaptive_possible(p) && step >= (uint64_t)c->adaptive_start &&
                   step % (uint64_t)c->adaptive_every == 0;
    p->measured = 0;
    if (p->adapt_now) {
        memset(p->g_fm, 0, sizeof(double) * p->g_n);
        memset(p->g_p, 0, sizeof(double) * p->g_n);
    }
}

/* sum over the elements of t (host, double) of a + b v */
static double read_sum(Graph *g, Tensor *t, double a, double b) {
    float *v = graph_alloc_host(g, sizeof(float) * t->numel);
    graph_read(g, t, v, t->numel);
    double s = 0.0;
    for (size_t i = 0; i < t->numel; i++) s += a + b * (double)v[i];
    return s;
}

/* rows idx[0..k) of x, taking no gradient */
static Tensor *rows_nograd(Graph *g, Tensor *x, const int *idx, int k) {
    bool was = graph_set_grad(g, false);
    Tensor *r = op_select_rows(g, x, idx, k);
    graph_set_grad(g, was);
    return r;
}

/* Phi(x), no tape: straight, or per image through the cache. */
static Tensor *dino_target(PixelGen *p, Graph *g, Tensor *x, const float *x_host) {
    bool was = graph_set_grad(g, false);
    Tensor *y;
    if (!p->cache.row) {
        y = dino_features(g, &p->dino, x);
    } else {
        const DeviceMem *mem = g->be->mem;
        int B = x->shape[0], grid = p->dino.grid;
        size_t per = x->numel / (size_t)B, row = p->cache.row;
        y = graph_new(g, 3, B, grid * grid, p->dino.dim);
        for (int b = 0; b < B; b++) {
            uint64_t key = featcache_key(x_host + (size_t)b * per, per);
            const float *hit = featcache_get(&p->cache, key);
            float *dst = y->data + (size_t)b * row;
            p->cache_use[1]++;
            if (hit) {
                mem->to_device(dst, hit, sizeof(float) * row);
                p->cache_use[0]++;
                continue;
            }
            int *one = graph_alloc_host(g, sizeof(int));
            *one = b;
            Tensor *yb = dino_features(g, &p->dino, op_select_rows(g, x, one, 1));
            mem->copy(dst, yb->data, sizeof(float) * row);
            float *slot = featcache_put(&p->cache, key);
            if (slot) mem->to_host(slot, yb->data, sizeof(float) * row);
        }
    }
    graph_set_grad(g, was);
    return y;
}

void pixelgen_terms(PixelGen *p, Graph *g, JitModel *m, Tensor *xhat, Tensor *x, const float *x_host, const float *t,
                    uint64_t micro0, int world, PixelGenTerms *out) {
    const Config *c = p->cfg;
    memset(out, 0, sizeof *out);
    int B = x->shape[0], N = m->cfg.grid * m->cfg.grid;
    double G = (double)B * world, A = (double)c->grad_accum;

    /* the gate: this rank's gated samples, and the count over the global micro-batch */
    int n_gated = 0, k = 0;
    int *idx = graph_alloc_host(g, sizeof(int) * (size_t)B);
    if (percept_on(p)) {
        DiffusionConfig dc = {.p_mean = c->p_mean, .p_std = c->p_std, .noise_scale = c->noise_scale};
        for (uint64_t s = 0; s < (uint64_t)G; s++)
            n_gated += diffusion_time(&dc, c->seed, micro0 + s) >= c->percept_t_threshold;
        for (int b = 0; b < B; b++)
            if (t[b] >= c->percept_t_threshold) idx[k++] = b;
    }

    if (p->on[PG_LPIPS] && n_gated > 0) {
        p->micro[PG_LPIPS]++;
        if (k > 0) {
            Tensor *d = lpips_distance(g, &p->lpips, op_select_rows(g, xhat, idx, k), rows_nograd(g, x, idx, k), NULL);
            out->t[PG_LPIPS] = d;
            out->seed[PG_LPIPS] = (float)(c->lpips_weight * world / (n_gated * A));
            p->sum[PG_LPIPS] += read_sum(g, d, 0.0, 1.0) / n_gated;
        }
    }

    Tensor *y = NULL; /* Phi(x): REPA's target and P-DINO's */
    if (p->on[PG_REPA] || (p->on[PG_PDINO] && n_gated > 0)) y = dino_target(p, g, x, x_host);

    if (p->on[PG_REPA]) {
        CHECK(m->cap_hidden, "REPA: no tokens captured (the forward ran without capture_hidden)");
        Tensor *cs = op_cosine(g, jit_repa_project(m, g, m->cap_hidden), y);
        out->t[PG_REPA] = cs;
        out->seed[PG_REPA] = (float)(-c->repa_weight * world / (G * N * A));
        p->sum[PG_REPA] += read_sum(g, cs, 1.0, -1.0) / (G * N);
        p->micro[PG_REPA]++;
    }

    if (p->on[PG_PDINO] && n_gated > 0) {
        p->micro[PG_PDINO]++;
        Tensor *cs = NULL;
        double denom = 0.0;
        if (c->pdino_gating == PDINO_RELEASED) {
            cs = op_cosine(g, dino_features(g, &p->dino, xhat), y);
            denom = G * N;
        } else if (k > 0) {
            cs = op_cosine(g, dino_features(g, &p->dino, op_select_rows(g, xhat, idx, k)), rows_nograd(g, y, idx, k));
            denom = (double)n_gated * N;
        }
        if (cs) {
            out->t[PG_PDINO] = cs;
            out->seed[PG_PDINO] = (float)(-c->pdino_weight * world / (denom * A));
            p->sum[PG_PDINO] += read_sum(g, cs, 1.0, -1.0) / denom;
        }
    }
}

/* Seed the terms: REPA when `repa`, the perceptual ones times `scale` (0: not). */
static void seed_terms(Graph *g, const PixelGenTerms *t, int repa, double scale) {
    for (int i = 0; i < PG_N_TERMS; i++) {
        if (!t->t[i] || (i == PG_REPA ? !repa : scale == 0.0)) continue;
        size_t n = t->t[i]->numel;
        float *s = graph_alloc_host(g, sizeof(float) * n), v = (float)(i == PG_REPA ? t->seed[i] : t->seed[i] * scale);
        for (size_t j = 0; j < n; j++) s[j] = v;
        graph_seed(g, t->t[i], s);
    }
}

static void read_final_grad(const Graph *g, const JitModel *m, float *host) {
    g->be->mem->to_host(host, m->final_w->grad, sizeof(float) * m->final_w->numel);
}

void pixelgen_backward(PixelGen *p, Graph *g, JitModel *m, Tensor *loss, float fm_seed, const PixelGenTerms *t,
                       const GraphBackwardHook *reduce) {
    if (!p->adapt_now) {
        graph_seed(g, loss, &fm_seed);
        seed_terms(g, t, 1, p->lambda);
        graph_backward_hooked(g, reduce);
        return;
    }
    /* Measure: the perceptual terms alone (weight 1), then the rest with
     * the perceptual ones topped up to lambda; final_layer.linear.weight's
     * gradient before and after each replay gives the two gradients. */
    p->measured++;
    size_t n = p->g_n;
    float *before = p->g_read, *mid = p->g_read + n, *after = p->g_read + 2 * n;
    read_final_grad(g, m, before);
    int has_p = t->t[PG_LPIPS] || t->t[PG_PDINO];
    if (has_p) {
        seed_terms(g, t, 0, 1.0);
        graph_backward_seeded(g); /* not final: the reduction waits for the last replay */
        graph_clear_activation_grads(g);
        read_final_grad(g, m, mid);
    } else {
        memcpy(mid, before, sizeof(float) * n);
    }
    graph_seed(g, loss, &fm_seed);
    seed_terms(g, t, 1, has_p ? p->lambda - 1.0 : 0.0);
    graph_backward_hooked(g, reduce);
    read_final_grad(g, m, after);
    for (size_t i = 0; i < n; i++) {
        double dp = (double)mid[i] - before[i];
        p->g_p[i] += dp;
        p->g_fm[i] += ((double)after[i] - mid[i]) - (p->lambda - 1.0) * dp;
    }
}

void pixelgen_step_end(PixelGen *p, Comm *comm) {
    if (comm) comm_allreduce_f64(comm, p->sum, PG_N_TERMS, COMM_SUM);
    if (p->cache.row) {
        if (comm) comm_allreduce_f64(comm, p->cache_use, 2, COMM_SUM);
        p->cached = p->cache_use[1] > 0 ? p->cache_use[0] / p->cache_use[1] : NAN;
    }
    for (int i = 0; i < PG_N_TERMS; i++)
        if (p->on[i]) p->value[i] = p->micro[i] ? p->sum[i] / p->micro[i] : NAN;
    /* Nothing measured (the SLA2 conversion's stage 1 runs no terms): lambda stays. */
    if (!p->adapt_now || !p->measured) return;
    if (comm) { /* the gradients of the global batch (the all-reduce's mean, as the update's) */
        comm_allreduce_f64(comm, p->g_fm, p->g_n, COMM_MEAN);
        comm_allreduce_f64(comm, p->g_p, p->g_n, COMM_MEAN);
    }
    double fm = 0.0, pp = 0.0;
    for (size_t i = 0; i < p->g_n; i++) fm += p->g_fm[i] * p->g_fm[i], pp += p->g_p[i] * p->g_p[i];
    double r = sqrt(fm) / (sqrt(pp) + 1e-4);
    if (!isfinite(r)) return; /* a non-finite gradient: the NaN guard skips this step; lambda keeps its value */
    r = r < 0.0 ? 0.0 : r > 100.0 ? 100.0 : r;
    p->lambda = 0.8 * p->lambda + 0.2 * r;
}
