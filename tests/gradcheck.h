/* tests/gradcheck.h — a small gradient-check harness for the differentiable ops.
 *
 * A check runs one op (already called by the test, so its outputs and tape
 * entries exist), and compares it with a naive double-precision reference
 * forward written by the test:
 *   1. forward: the op's float outputs against the reference outputs;
 *   2. backward: a random output gradient R is seeded into every output and
 *      the tape is replayed (graph_backward_from), which is the analytical
 *      gradient of the scalar L = sum(out * R); the input gradients start
 *      from random values that are subtracted afterwards, so a backward that
 *      overwrites instead of accumulating fails;
 *   3. the same gradient by central differences on the DOUBLE reference, for
 *      every element of every input that requires a gradient.
 * Errors are relative to the largest reference magnitude:
 *   max|a - b| / max(max|b|, 1e-8).
 * Inputs that do not require a gradient are still handed to the reference
 * (they are constants of the op) but are not perturbed. */
#ifndef TESTS_GRADCHECK_H
#define TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/graph.h"

#define GC_MAX_IN 6
#define GC_MAX_OUT 8

/* Tolerances of the requirement: forward against the double reference, and
 * analytical against numerical gradients. */
#define GC_FWD_TOL 1e-5
#define GC_GRAD_TOL 1e-3
/* Central-difference step, scaled by max(1, |x|) for each element. */
#define GC_STEP 1e-6
/* The Philox seed of every input and output gradient drawn by the tests. */
#define GC_SEED 20240611ull

/* The double-precision reference forward: in[i] has the numel of the case's
 * input i; it writes every output, concatenated in the order of GcCase.out. */
typedef void (*GcRefFn)(const void *ctx, const double *const *in, double *out);

typedef struct GcCase {
    const char *op;                    /* op name, for messages and the summary */
    int n_in;
    Tensor *in[GC_MAX_IN];             /* the op's inputs, as given to it */
    const char *in_name[GC_MAX_IN];
    int n_out;
    Tensor *out[GC_MAX_OUT];           /* the op's outputs (all from this graph's tape) */
    GcRefFn ref;
    const void *ctx;                   /* sizes, tables, indices for ref */
    uint64_t r_stream;                 /* stream offset of R within RNG_STREAM_TEST */
} GcCase;

typedef struct GcResult {
    double fwd_err;                    /* forward relative error */
    double grad_err[GC_MAX_IN];        /* per input; -1 when not checked */
    size_t grad_worst[GC_MAX_IN];      /* flat index of the largest difference */
    bool ok;
} GcResult;

/* Random float inputs from Philox (stream RNG_STREAM_TEST + k), in a new
 * tensor of g that requires a gradient. */
Tensor *gc_normal(Graph *g, uint64_t k, float std, int ndim, const int *shape);
Tensor *gc_uniform(Graph *g, uint64_t k, float lo, float hi, int ndim, const int *shape);
#define GC_NORMAL(g, k, std, nd, ...) gc_normal((g), (k), (std), (nd), (const int[]){__VA_ARGS__})
#define GC_UNIFORM(g, k, lo, hi, nd, ...) gc_uniform((g), (k), (lo), (hi), (nd), (const int[]){__VA_ARGS__})

/* A fresh CPU graph with a 1 MiB arena (it grows when a check needs more). */
void gc_graph(Graph *g);

/* RoPE angle tables of rows x half random angles (stream RNG_STREAM_TEST +
 * k): cos/sin in double for a reference and float copies for the op, in
 * g's arena (alive until backward). */
void gc_rope_tables(Graph *g, uint64_t k, int rows, int half, double **dc, double **ds, float **fc, float **fs);
/* The reference RoPE of one head row x (hd values) of token n into o: pair
 * (x[2j], x[2j+1]) turned by the angle of table row n - n_ctx, column j,
 * (x0 c - x1 s, x1 c + x0 s); tokens before n_ctx copied. */
void gc_rope_row(double *o, const double *x, int n, int n_ctx, int hd, const double *cos, const double *sin);

/* Run the forward comparison, the backward and the numerical gradients;
 * prints op, input, error and worst index on failure (and a summary line for
 * every check when the environment sets GRADCHECK_VERBOSE). Call it once per
 * graph state: it replays the whole tape of g. */
GcResult gc_check(Graph *g, const GcCase *c);

/* In a Criterion test: run a check (a GcCase initialiser) and fail the test
 * when it fails (the harness has printed the details). */
#define GC_EXPECT(g, ...)                                                   \
    do {                                                                    \
        GcCase gc_case_ = __VA_ARGS__;                                      \
        GcResult gc_res_ = gc_check((g), &gc_case_);                        \
        cr_expect(gc_res_.ok, "gradient check of %s failed", gc_case_.op); \
    } while (0)

#endif
