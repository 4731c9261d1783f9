/* tests/test_tape.c — the tape on the whole model: repeated steps give
 * bit-identical gradients, a step allocates nothing after the first, no-grad
 * mode records nothing, and frozen parameters receive no gradient. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/ops.h"
#include "core/rng.h"
#include "train/model/jit.h"

typedef struct {
    JitModel m;
    Graph g;
    float z[2 * 32 * 32], x[2 * 32 * 32], t[2];
    int y[2];
} Setup;

static void setup_model(Setup *s) {
    JitConfig cfg;
    cr_assert_eq(jit_config_named("jit-tiny", &cfg), 0);
    cfg.depth = 3; /* keep the test quick; in-context tokens enter at block 2 */
    jit_build(&s->m, &cfg, 11);
    /* Non-zero adaLN and final weights so that every path carries gradient. */
    rng_fill_normal(s->m.params.data, s->m.params.padded, 9, RNG_STREAM_TEST, 0, 0.0f, 0.05f);
    graph_init(&s->g, backend_cpu(), 1024); /* deliberately small: the first step grows it */
    rng_fill_uniform(s->x, 2 * 32 * 32, 1, RNG_STREAM_TEST + 1, 0, -1, 1);
    rng_fill_normal(s->z, 2 * 32 * 32, 1, RNG_STREAM_TEST + 2, 0, 0, 1);
    s->t[0] = 0.3f, s->t[1] = 0.8f;
    s->y[0] = 4, s->y[1] = 10;
}

/* One forward + backward; inputs are copied into the arena like a data loader would. */
static float step(Setup *s) {
    Graph *g = &s->g;
    Tensor *z = graph_new(g, 4, 2, 1, 32, 32), *x = graph_new(g, 4, 2, 1, 32, 32), *t = graph_new(g, 1, 2);
    memcpy(z->data, s->z, sizeof s->z);
    memcpy(x->data, s->x, sizeof s->x);
    memcpy(t->data, s->t, sizeof s->t);
    Tensor *loss = op_vloss(g, jit_forward(&s->m, g, z, t, s->y, NULL), x, t);
    if (g->grad_enabled) graph_backward(g, loss);
    return loss->data[0];
}

static void teardown_model(Setup *s) {
    graph_free(&s->g);
    jit_free(&s->m);
}

Test(tape, repeated_step_is_bit_identical_and_allocation_free) {
    static Setup s;
    setup_model(&s);
    ParamStore *ps = &s.m.params;
    float *first = malloc(ps->padded * sizeof(float));

    params_zero_grad(ps);
    float l1 = step(&s);
    memcpy(first, ps->grad, ps->padded * sizeof(float));
    int tape_len = s.g.n_tape;
    graph_reset(&s.g);
    cr_expect_gt(arena_high_water(&s.g.arena), 1024, "the arena reports the first step's high-water mark");

    for (int k = 0; k < 3; k++) {
        size_t before = core_alloc_count();
        params_zero_grad(ps);
        float l2 = step(&s);
        cr_expect_eq(s.g.n_tape, tape_len);
        graph_reset(&s.g);
        size_t allocs = core_alloc_count() - before;
        cr_expect_eq(allocs, 0, "step %d after warm-up made %zu heap allocations", k + 2, allocs);
        cr_expect_eq(l1, l2, "loss changed between identical steps");
        cr_expect_eq(memcmp(first, ps->grad, ps->padded * sizeof(float)), 0,
                     "gradients of identical steps are not bit-identical");
    }
    double norm = 0;
    for (size_t i = 0; i < ps->padded; i++) norm += (double)first[i] * first[i];
    cr_expect_gt(norm, 0.0, "gradients are all zero: the test would prove nothing");
    free(first);
    teardown_model(&s);
}

Test(tape, no_grad_mode_records_nothing) {
    static Setup s;
    setup_model(&s);
    bool prev = graph_set_grad(&s.g, false);
    cr_expect(prev);
    float l = step(&s);
    cr_expect_eq(s.g.n_tape, 0, "no-grad forward recorded %d tape entries", s.g.n_tape);
    graph_reset(&s.g);
    graph_set_grad(&s.g, true);
    params_zero_grad(&s.m.params);
    float l2 = step(&s);
    cr_expect_gt(s.g.n_tape, 0);
    cr_expect_eq(l, l2, "no-grad mode must not change the forward result");
    teardown_model(&s);
}

Test(tape, frozen_parameters_get_no_gradient) {
    static Setup s;
    setup_model(&s);
    params_set_trainable(&s.m.params, NULL, false);
    params_set_trainable(&s.m.params, "final_layer.", true);
    params_zero_grad(&s.m.params);
    step(&s);
    for (int i = 0; i < s.m.params.n; i++) {
        Tensor *p = params_at(&s.m.params, i);
        double n = 0;
        for (size_t j = 0; j < p->numel; j++) n += fabs(p->grad[j]);
        if (strncmp(p->name, "final_layer.", 12) == 0) cr_expect_gt(n, 0.0, "%s has no gradient", p->name);
        else cr_expect_eq(n, 0.0, "frozen %s received a gradient", p->name);
    }
    /* Only the final layer's ops need recording: far fewer tape entries than the full model. */
    cr_expect_lt(s.g.n_tape, 12);
    teardown_model(&s);
}
