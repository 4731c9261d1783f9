/* tests/test_recompute.c — recomputation (core/recompute.h, train.recompute)
 * gives the gradients of no recomputation bit for bit on the CPU, and a
 * replay that differs from the forward is caught by the same comparison.
 *
 * - trainer: the tiny JiT with SLA2 (QAT on), dropout in block 0 and
 *   PixelGen's REPA, LPIPS and P-DINO (random frozen networks at 1/16
 *   width, the adaptive weight measured every step: the tape is replayed
 *   twice per micro-batch), two micro-batches per step: two steps with
 *   train.recompute none, attention and block; after each step the whole
 *   flat gradient buffer, and at the end the weights and the AdamW moments,
 *   are compared byte for byte; the step's memory (step arena + scratch
 *   arena high-water) falls from none to attention to block.
 * - break: a two-layer segment whose replay reads another input (as a
 *   recomputation from a stale or wrong input would) gives other gradients,
 *   and the same comparison reports it; the faithful replay matches. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "core/recompute.h"
#include "core/rng.h"
#include "train/trainer.h"
#include "trainer_fixture.h"

static void make_data(void) { fixture_make_rgb_data("jit-recompute"); }

/* Bytes that differ between two buffers (0: bit-identical). */
static size_t bytes_differ(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += x[i] != y[i];
    return d;
}

static Config pixelgen_config(const char *name, const char *level) {
    const char *losses = "losses: {repa_weight: 0.5, lpips_weight: 1.0, pdino_weight: 1.0, frozen_random_div: 16,\n"
                         "         align_layer: 1, adaptive_start: 0, adaptive_every: 1, percept_t_threshold: 0.2}\n";
    char data[320], rc[64];
    snprintf(data, sizeof data, "data.train=%s/rgb", fixture_dir);
    snprintf(rc, sizeof rc, "train.recompute=%s", level);
    char *ov[] = {"model.in_channels=3", data, rc, "model.sla2_enable_qat=true", "optim.grad_accum=2"};
    FixtureRun o = {.device = "cpu", .precision = "fp32", .batch = 4, .extra = losses, .dropout = "0.1"};
    return fixture_tiny_config(name, 1, &o, 5, ov);
}

Test(recompute, trainer_gradients_bit_identical, .init = make_data) {
    static const char *const levels[3] = {"none", "attention", "block"};
    Trainer T[3];
    Config c[3];
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "rc-%s", levels[k]);
        c[k] = pixelgen_config(name, levels[k]);
        trainer_init(&T[k], &c[k], NULL, NULL);
    }
    cr_assert(T[0].model.sla2_qat && T[0].cfg.model.dropout > 0 && T[0].pg.on[PG_LPIPS] && T[0].pg.on[PG_PDINO] &&
              T[0].pg.on[PG_REPA]);
    size_t bytes = T[0].model.params.padded * sizeof(float), mem[3];
    for (int step = 0; step < 2; step++) {
        float loss[3];
        for (int k = 0; k < 3; k++) loss[k] = trainer_step(&T[k]);
        cr_assert(isfinite(loss[0]) && T[0].pg.lambda != 1.0, "step %d: loss %g, lambda %g", step, loss[0],
                  T[0].pg.lambda);
        for (int k = 1; k < 3; k++) {
            cr_expect_eq(bytes_differ(&loss[k], &loss[0], sizeof(float)), 0, "step %d: %s loss %.9g vs %.9g", step,
                         levels[k], loss[k], loss[0]);
            size_t d = bytes_differ(T[k].model.params.grad, T[0].model.params.grad, bytes);
            cr_expect_eq(d, 0, "step %d: recompute %s: %zu of %zu gradient bytes differ from none", step, levels[k], d,
                         bytes);
        }
    }
    for (int k = 0; k < 3; k++) mem[k] = arena_high_water(&T[k].g.arena) + arena_high_water(&T[k].g.scratch);
    printf("recompute: step memory none %zu, attention %zu, block %zu bytes\n", mem[0], mem[1], mem[2]);
    for (int k = 1; k < 3; k++) {
        cr_expect_eq(bytes_differ(T[k].model.params.data, T[0].model.params.data, bytes), 0, "%s: weights", levels[k]);
        cr_expect_eq(bytes_differ(T[k].opt.m, T[0].opt.m, bytes), 0, "%s: first moments", levels[k]);
        cr_expect_eq(bytes_differ(T[k].opt.v, T[0].opt.v, bytes), 0, "%s: second moments", levels[k]);
        cr_expect(mem[k] < mem[k - 1], "recompute %s needs %zu bytes, not less than %zu", levels[k], mem[k],
                  mem[k - 1]);
    }
    for (int k = 0; k < 3; k++) trainer_free(&T[k]);
}

/* The break: y = w2 silu(w1 x) as one segment; its replay reads `replay`
 * instead of x when that is set. */
typedef struct Seg {
    Tensor *w1, *w2, *replay;
    int calls;
} Seg;

static Tensor *seg_fn(Graph *g, void *ctx, Tensor *const *in) {
    Seg *s = ctx;
    Tensor *x = s->calls++ && s->replay ? s->replay : in[0];
    return op_linear(g, op_silu(g, op_linear(g, x, s->w1, NULL)), s->w2, NULL);
}

/* Gradients of sum(dout * f(x)) w.r.t. w1, w2 and x into grads[0..3), with
 * the segment recomputed (seg.replay set: from another input) or not. */
static void run(int recompute, int wrong_input, float *grads) {
    const int M = 6, C = 8;
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 16);
    ParamStore ps;
    params_create(&ps);
    params_add(&ps, "w1", 2, (const int[]){C, C}, INIT_NORMAL, 0.5f, true);
    params_add(&ps, "w2", 2, (const int[]){C, C}, INIT_NORMAL, 0.5f, true);
    params_alloc(&ps);
    params_init(&ps, 11);
    Tensor *x = graph_new(&g, 2, M, C), *other = graph_new(&g, 2, M, C);
    rng_fill_normal(x->data, x->numel, 3, RNG_STREAM_TEST, 0, 0.0f, 1.0f);
    rng_fill_normal(other->data, other->numel, 3, RNG_STREAM_TEST, 1000, 0.0f, 1.0f);
    other->data[0] = x->data[0]; /* mostly another input: any difference must show */
    x->requires_grad = true;
    Seg s = {params_at(&ps, 0), params_at(&ps, 1), wrong_input ? other : NULL, 0};
    Tensor *y = recompute ? graph_recompute(&g, seg_fn, &s, sizeof s, 1, &x) : seg_fn(&g, &s, &x);
    y = op_silu(&g, y);
    float dout[6 * 8];
    rng_fill_normal(dout, (size_t)M * C, 3, RNG_STREAM_TEST, 2000, 0.0f, 1.0f);
    graph_backward_from(&g, y, dout);
    memcpy(grads, ps.grad, sizeof(float) * ps.padded);
    memcpy(grads + ps.padded, x->grad, sizeof(float) * x->numel);
    graph_free(&g);
    params_destroy(&ps);
}

Test(recompute, a_replay_from_another_input_is_caught) {
    float plain[2 * 64 + 48], good[2 * 64 + 48], bad[2 * 64 + 48];
    run(0, 0, plain);
    run(1, 0, good);
    run(1, 1, bad);
    cr_expect_eq(bytes_differ(good, plain, sizeof plain), 0, "the faithful replay gives the same gradients");
    size_t d = bytes_differ(bad, plain, sizeof plain);
    printf("recompute: a replay from another input changes %zu of %zu gradient bytes\n", d, sizeof plain);
    cr_expect_gt(d, sizeof plain / 2, "a replay from another input must change the gradients");
}
