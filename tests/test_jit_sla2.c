/* tests/test_jit_sla2.c — SLA2 inside JiT: the dense limit equals the
 * full-attention model, a full-attention model's parameters load into a
 * JiT-SLA2 model, the top-k ratio and QAT switch change between steps
 * without a rebuild, per-layer statistics, stage-1 router distillation on a
 * frozen model, and configuration errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "train/model/jit.h"

#define B 2

static JitConfig tiny(int use_sla2) {
    JitConfig c;
    cr_assert_eq(jit_config_named("jit-tiny", &c), 0);
    c.depth = 4, c.in_context_start = 1;
    c.use_sla2 = use_sla2, c.sla2_from_layer = 1; /* hybrid: block 0 keeps full attention */
    c.sla2_block_q = 16, c.sla2_block_k = 20, c.sla2_topk_ratio = 0.4f;
    jit_config_finish(&c);
    return c;
}

/* Non-zero adaLN and final layers (the real init zeroes them) so outputs depend on every block. */
static void perturb(JitModel *m) {
    for (int i = 0; i < m->params.n; i++) {
        ParamInfo *p = &m->params.info[i];
        if (p->init == INIT_ZERO)
            rng_fill_normal(m->params.data + p->offset, p->numel, 4, RNG_STREAM_TEST + (uint64_t)i, 0, 0.0f, 0.05f);
    }
}

static Tensor *forward(JitModel *m, Graph *g, float *loss, const JitForwardOpts *o) {
    Tensor *z = graph_new(g, 4, B, 1, 32, 32), *x = graph_new(g, 4, B, 1, 32, 32), *t = graph_new(g, 1, B);
    rng_fill_normal(z->data, z->numel, 1, RNG_STREAM_TEST, 0, 0, 1);
    rng_fill_uniform(x->data, x->numel, 2, RNG_STREAM_TEST, 0, -1, 1);
    t->data[0] = 0.3f, t->data[1] = 0.9f;
    int y[B] = {2, 10};
    Tensor *xhat = jit_forward(m, g, z, t, y, o);
    if (loss) *loss = op_vloss(g, xhat, x, t)->data[0];
    return xhat;
}

Test(jit_sla2, parameters_names_and_full_checkpoint_load) {
    JitConfig cf = tiny(0), cs = tiny(1);
    JitModel full, sla;
    jit_build(&full, &cf, 3);
    jit_build(&sla, &cs, 99);
    cr_expect_eq(sla.params.n, full.params.n + 3 * 3, "3 SLA2 blocks x (proj_q, proj_k, alpha_logit)");
    cr_expect_eq(params_find(&sla.params, "blocks.0.attn.sla2.proj_q"), -1, "block 0 is full attention");
    Tensor *pq = params_get(&sla.params, "blocks.2.attn.sla2.proj_q");
    cr_expect_eq(pq->shape[0], 64);
    int missing = jit_load_params(&sla, &full.params);
    cr_expect_eq(missing, 9);
    for (int i = 0; i < full.params.n; i++) {
        Tensor *a = params_at(&full.params, i), *b = params_get(&sla.params, a->name);
        cr_expect_eq(memcmp(a->data, b->data, a->numel * sizeof(float)), 0, "%s not loaded", a->name);
    }
    for (int r = 0; r < 64; r++)
        for (int c = 0; c < 64; c++) cr_expect_eq(pq->data[r * 64 + c], r == c ? 1.0f : 0.0f);
    Tensor *al = params_get(&sla.params, "blocks.3.attn.sla2.alpha_logit");
    for (int h = 0; h < 3; h++) cr_expect_float_eq(1.0f / (1.0f + expf(-al->data[h])), 0.9f, 1e-6);
    jit_free(&full);
    jit_free(&sla);
}

Test(jit_sla2, dense_limit_equals_the_full_attention_model) {
    JitConfig cf = tiny(0), cs = tiny(1);
    JitModel full, sla;
    jit_build(&full, &cf, 3);
    perturb(&full);
    jit_build(&sla, &cs, 3);
    jit_load_params(&sla, &full.params);
    for (int i = 1; i < 4; i++) {
        Tensor *al = sla.blocks[i].sla2_alpha;
        for (int h = 0; h < 3; h++) al->data[h] = 40.0f; /* alpha = 1 */
    }
    jit_sla2_set_topk(&sla, -1, 1.0f); /* every block selected, set between steps */
    Graph g1, g2;
    graph_init(&g1, backend_cpu(), 1 << 20);
    graph_init(&g2, backend_cpu(), 1 << 20);
    float l1, l2;
    Tensor *a = forward(&full, &g1, &l1, NULL), *b = forward(&sla, &g2, &l2, NULL);
    double num = 0, den = 0;
    for (size_t i = 0; i < a->numel; i++) num = fmax(num, fabs(a->data[i] - b->data[i])), den = fmax(den, fabs(a->data[i]));
    cr_expect_lt(num / den, 1e-5, "dense-limit JiT-SLA2 differs from JiT by %g", num / den);
    cr_expect_float_eq(l1, l2, 1e-5 * l1);
    graph_free(&g1);
    graph_free(&g2);
    jit_free(&full);
    jit_free(&sla);
}

Test(jit_sla2, topk_and_qat_change_between_steps_and_stats_report) {
    JitConfig cs = tiny(1);
    JitModel m;
    jit_build(&m, &cs, 5);
    perturb(&m);
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 20);
    float l_a, l_b, l_c, l_d;
    forward(&m, &g, &l_a, NULL);
    graph_reset(&g);
    forward(&m, &g, &l_b, NULL);
    graph_reset(&g);
    cr_expect_eq(l_a, l_b, "same settings, same loss");
    jit_sla2_set_topk(&m, 2, 0.8f); /* one block only */
    cr_expect_float_eq(m.sla2_topk[2], 0.8f, 0);
    cr_expect_float_eq(m.sla2_topk[3], 0.4f, 0);
    forward(&m, &g, &l_c, NULL);
    graph_reset(&g);
    cr_expect_neq(l_a, l_c, "a new top-k ratio changes the result");
    jit_sla2_set_qat(&m, 1);
    forward(&m, &g, &l_d, &(JitForwardOpts){.collect_stats = true});
    graph_reset(&g);
    cr_expect_neq(l_c, l_d, "QAT changes the forward");
    cr_expect(fabsf(l_c - l_d) < 0.05f * l_c, "but only a little: %g vs %g", l_c, l_d);
    /* Statistics: per SLA2 block and head; full-attention block 0 untouched. */
    const Sla2Stats *st = m.sla2_stats;
    cr_expect_eq(st[0].alpha, 0.0f);
    for (int i = 1; i < 4; i++)
        for (int h = 0; h < 3; h++) {
            const Sla2Stats *s = &st[i * 3 + h];
            cr_expect_float_eq(s->alpha, 0.9f, 1e-6);
            cr_expect(s->frac_exact > 0.0f && s->frac_exact <= 1.0f);
            cr_expect(s->captured_mass > 0.0f && s->captured_mass <= 1.0001f);
            cr_expect_gt(s->qat_rel_err, 0.0f);
        }
    /* 96 tokens in blocks of 20 -> 5 key blocks; 0.8 * 5 = 4 and 0.4 * 5 = 2. */
    cr_expect_float_eq(st[2 * 3].frac_exact, 0.8f, 1e-6);
    cr_expect_float_eq(st[3 * 3].frac_exact, 0.4f, 1e-6);
    graph_free(&g);
    jit_free(&m);
}

Test(jit_sla2, stage1_distillation_trains_only_the_router) {
    JitConfig cs = tiny(1);
    JitModel m;
    jit_build(&m, &cs, 6);
    perturb(&m);
    params_set_trainable(&m.params, NULL, false);
    params_set_trainable(&m.params, ".attn.sla2.", true);
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 20);
    bool prev = graph_set_grad(&g, false); /* the frozen model's forward records nothing */
    forward(&m, &g, NULL, &(JitForwardOpts){.capture_qkv = true});
    graph_set_grad(&g, prev);
    params_zero_grad(&m.params);
    Tensor *loss = jit_sla2_distill_loss(&m, &g, 2);
    cr_expect_gt(loss->data[0], 0.0f);
    graph_backward(&g, loss);
    for (int i = 0; i < m.params.n; i++) {
        Tensor *p = params_at(&m.params, i);
        double n = 0;
        for (size_t j = 0; j < p->numel; j++) n += fabs(p->grad[j]);
        if (strncmp(p->name, "blocks.2.attn.sla2.", 19) == 0) cr_expect_gt(n, 0.0, "%s got no gradient", p->name);
        else cr_expect_eq(n, 0.0, "%s should get no gradient", p->name);
    }
    graph_free(&g);
    jit_free(&m);
}

Test(jit_sla2, bad_layer_list_is_an_error, .exit_code = 1) {
    JitConfig c = tiny(1);
    c.sla2_n_layers = 1, c.sla2_layers[0] = 7;
    jit_config_finish(&c);
}

Test(jit_sla2, bad_topk_is_an_error, .exit_code = 1) {
    JitConfig c = tiny(1);
    c.sla2_topk_ratio = 0.0f;
    jit_config_finish(&c);
}
