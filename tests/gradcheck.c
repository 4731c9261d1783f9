/* tests/gradcheck.c — the gradient-check harness (see gradcheck.h): random
 * inputs from Philox, the forward comparison with a double reference, the
 * tape's analytical gradient, and central differences on the reference. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/backend.h"

Tensor *gc_normal(Graph *g, uint64_t k, float std, int ndim, const int *shape) {
    Tensor *t = graph_tensor(g, ndim, shape);
    rng_fill_normal(t->data, t->numel, GC_SEED, RNG_STREAM_TEST + k, 0, 0.0f, std);
    t->requires_grad = true;
    return t;
}

Tensor *gc_uniform(Graph *g, uint64_t k, float lo, float hi, int ndim, const int *shape) {
    Tensor *t = graph_tensor(g, ndim, shape);
    rng_fill_uniform(t->data, t->numel, GC_SEED, RNG_STREAM_TEST + k, 0, lo, hi);
    t->requires_grad = true;
    return t;
}

void gc_graph(Graph *g) { graph_init(g, backend_cpu(), (size_t)1 << 20); }

void gc_rope_tables(Graph *g, uint64_t k, int rows, int half, double **dc, double **ds, float **fc, float **fs) {
    size_t n = (size_t)rows * half;
    float *ang = graph_alloc(g, n * sizeof(float));
    rng_fill_uniform(ang, n, GC_SEED, RNG_STREAM_TEST + k, 0, -3.14159f, 3.14159f);
    *dc = graph_alloc(g, n * sizeof(double));
    *ds = graph_alloc(g, n * sizeof(double));
    *fc = graph_alloc(g, n * sizeof(float));
    *fs = graph_alloc(g, n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        (*dc)[i] = cos((double)ang[i]);
        (*ds)[i] = sin((double)ang[i]);
        (*fc)[i] = (float)(*dc)[i];
        (*fs)[i] = (float)(*ds)[i];
    }
}

static void *gc_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "gradcheck: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return p;
}

/* "[1, 0, 4]": the multi-index of flat element i of t, for failure messages. */
static const char *gc_index_str(const Tensor *t, size_t i, char *buf, size_t n) {
    int idx[TENSOR_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = (int)(i % (size_t)t->shape[d]);
        i /= (size_t)t->shape[d];
    }
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, d ? ", %d" : "%d", idx[d]);
    if (len < n) snprintf(buf + len, n - len, "]");
    return buf;
}

/* max|a - b| / max(max|b|, 1e-8), and where the largest |a - b| is. The
 * denominator is the scale of the whole reference, not of each element, so
 * that values near zero do not turn rounding noise into large ratios. */
static double gc_rel_err(const float *a, const double *b, size_t n, size_t *worst) {
    double num = 0.0, den = 0.0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num || isnan(d)) {
            num = isnan(d) ? INFINITY : d;
            *worst = i;
        }
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / (den > 1e-8 ? den : 1e-8);
}

GcResult gc_check(Graph *g, const GcCase *c) {
    GcResult r = {.ok = true};
    const bool verbose = getenv("GRADCHECK_VERBOSE") != NULL;
    char ibuf[64];

    size_t off[GC_MAX_OUT + 1] = {0};
    for (int o = 0; o < c->n_out; o++) off[o + 1] = off[o] + c->out[o]->numel;
    const size_t n_out = off[c->n_out];

    /* The reference reads double copies: the exact values the float op saw. */
    double *in[GC_MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++) {
        const Tensor *t = c->in[i];
        in[i] = gc_malloc(t->numel * sizeof(double));
        for (size_t e = 0; e < t->numel; e++) in[i][e] = t->data[e];
        r.grad_err[i] = -1.0;
    }
    double *ref = gc_malloc(n_out * sizeof(double));
    double *ref_p = gc_malloc(n_out * sizeof(double));
    double *ref_m = gc_malloc(n_out * sizeof(double));
    float *R = gc_malloc(n_out * sizeof(float));

    /* 1. forward */
    c->ref(c->ctx, (const double *const *)in, ref);
    double fnum = 0.0, fden = 0.0;
    size_t fworst = 0;
    int fworst_out = 0;
    for (int o = 0; o < c->n_out; o++) {
        const float *a = c->out[o]->data;
        for (size_t e = 0; e < c->out[o]->numel; e++) {
            double d = fabs((double)a[e] - ref[off[o] + e]);
            if (d > fnum || isnan(d)) {
                fnum = isnan(d) ? INFINITY : d;
                fworst = e, fworst_out = o;
            }
            if (fabs(ref[off[o] + e]) > fden) fden = fabs(ref[off[o] + e]);
        }
    }
    r.fwd_err = fnum / (fden > 1e-8 ? fden : 1e-8);
    if (!(r.fwd_err < GC_FWD_TOL)) {
        r.ok = false;
        fprintf(stderr, "gradcheck FAIL %s: forward output %d rel err %.3e (tol %.0e), worst at %s: op %.9g ref %.9g\n",
                c->op, fworst_out, r.fwd_err, GC_FWD_TOL, gc_index_str(c->out[fworst_out], fworst, ibuf, sizeof ibuf),
                (double)c->out[fworst_out]->data[fworst], ref[off[fworst_out] + fworst]);
    }

    /* 2. analytical: seed R into every output, then replay the tape once.
     * The outputs after the first are seeded directly in their gradient
     * buffers; graph_backward_from adds the first one's and runs backward. */
    rng_fill_normal(R, n_out, GC_SEED, RNG_STREAM_TEST + c->r_stream, 0, 0.0f, 1.0f);
    bool seeded = true;
    for (int o = 0; o < c->n_out; o++)
        if (!c->out[o]->requires_grad) {
            fprintf(stderr, "gradcheck FAIL %s: output %d does not require a gradient\n", c->op, o);
            seeded = r.ok = false;
        }
    /* The input gradients start from random values G0, not zero, and G0 is
     * subtracted afterwards: backward kernels must accumulate (+=), and one
     * that overwrites shows up as an error. */
    float *G0[GC_MAX_IN] = {0};
    if (seeded) {
        for (int i = 0; i < c->n_in; i++) {
            Tensor *t = c->in[i];
            if (!t->requires_grad) continue;
            G0[i] = gc_malloc(t->numel * sizeof(float));
            rng_fill_normal(G0[i], t->numel, GC_SEED, RNG_STREAM_TEST + c->r_stream + 1000 + (uint64_t)i, 0, 0.0f,
                            1.0f);
            memcpy(graph_grad(g, t), G0[i], t->numel * sizeof(float));
        }
        for (int o = 1; o < c->n_out; o++) g->be->ops->accumulate(graph_grad(g, c->out[o]), R + off[o], c->out[o]->numel);
        graph_backward_from(g, c->out[0], R);
        for (int i = 0; i < c->n_in; i++)
            if (G0[i])
                for (size_t e = 0; e < c->in[i]->numel; e++) c->in[i]->grad[e] -= G0[i][e];
    }

    /* 3. numerical, on the double reference: dL/dx_e = sum_j R_j d ref_j / dx_e */
    for (int i = 0; seeded && i < c->n_in; i++) {
        Tensor *t = c->in[i];
        if (!t->requires_grad) {
            if (t->grad) {
                fprintf(stderr, "gradcheck FAIL %s: input %s does not require a gradient but received one\n", c->op,
                        c->in_name[i]);
                r.ok = false;
            }
            continue;
        }
        double *num = gc_malloc(t->numel * sizeof(double));
        for (size_t e = 0; e < t->numel; e++) {
            double x0 = in[i][e], h = GC_STEP * (fabs(x0) > 1.0 ? fabs(x0) : 1.0);
            double xp = x0 + h, xm = x0 - h;
            in[i][e] = xp;
            c->ref(c->ctx, (const double *const *)in, ref_p);
            in[i][e] = xm;
            c->ref(c->ctx, (const double *const *)in, ref_m);
            in[i][e] = x0;
            /* Differences per output element first: less cancellation than L+ - L-. */
            double s = 0.0;
            for (size_t j = 0; j < n_out; j++) s += (ref_p[j] - ref_m[j]) * (double)R[j];
            num[e] = s / (xp - xm); /* the steps actually taken, not 2h */
        }
        r.grad_err[i] = gc_rel_err(t->grad, num, t->numel, &r.grad_worst[i]);
        if (!(r.grad_err[i] < GC_GRAD_TOL)) {
            size_t w = r.grad_worst[i];
            r.ok = false;
            fprintf(stderr,
                    "gradcheck FAIL %s: d/d%s rel err %.3e (tol %.0e), worst at %s: analytical %.9g numerical %.9g\n",
                    c->op, c->in_name[i], r.grad_err[i], GC_GRAD_TOL, gc_index_str(t, w, ibuf, sizeof ibuf),
                    (double)t->grad[w], num[w]);
        }
        free(num);
    }

    if (verbose) {
        printf("gradcheck %-24s fwd %.2e", c->op, r.fwd_err);
        for (int i = 0; i < c->n_in; i++)
            if (r.grad_err[i] >= 0.0) printf("  d%s %.2e", c->in_name[i], r.grad_err[i]);
        printf("%s\n", r.ok ? "" : "  FAILED");
        fflush(stdout);
    }

    for (int i = 0; i < c->n_in; i++) free(in[i]), free(G0[i]);
    free(ref);
    free(ref_p);
    free(ref_m);
    free(R);
    return r;
}

void gc_rope_row(double *o, const double *x, int n, int n_ctx, int hd, const double *cos, const double *sin) {
    int half = hd / 2;
    for (int j = 0; j < half; j++) {
        double c = 1.0, s = 0.0;
        if (n >= n_ctx) {
            c = cos[(size_t)(n - n_ctx) * half + j];
            s = sin[(size_t)(n - n_ctx) * half + j];
        }
        o[2 * j] = x[2 * j] * c - x[2 * j + 1] * s;
        o[2 * j + 1] = x[2 * j + 1] * c + x[2 * j] * s;
    }
}
