/* train/model/jit.c — JiT: parameters, fixed tables and the forward pass. */
#include "train/model/jit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/device.h"
#include "core/ops.h"
#include "core/recompute.h"

#define RMS_EPS 1e-6f

static void jit_register_into(JitModel *m, const JitConfig *cfg, ParamReg *s) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    jit_config_finish(&m->cfg);
    const JitConfig *c = &m->cfg;
    int D = c->hidden, P = c->in_channels * c->patch * c->patch;
    params_create(&m->params);
    param_reg_init(s, &m->params);
    m->blocks = core_calloc((size_t)c->depth * sizeof(JitBlock));

    param_reg_linear(s, &m->proj1_w, NULL, "x_embedder.proj1", c->bottleneck, P, INIT_XAVIER_UNIFORM, 0);
    param_reg_linear(s, &m->proj2_w, &m->proj2_b, "x_embedder.proj2", D, c->bottleneck, INIT_XAVIER_UNIFORM, 0);
    param_reg_linear(s, &m->t_mlp0_w, &m->t_mlp0_b, "t_embedder.mlp.0", D, JIT_TIME_FEATURES, INIT_NORMAL, 0.02f);
    param_reg_linear(s, &m->t_mlp2_w, &m->t_mlp2_b, "t_embedder.mlp.2", D, D, INIT_NORMAL, 0.02f);
    param_reg_add(s, &m->y_table, "y_embedder.embedding_table.weight", INIT_NORMAL, 0.02f, false, 2, c->num_classes + 1, D);
    if (c->in_context_len > 0)
        param_reg_add(s, &m->ctx_pos, "in_context_posemb", INIT_NORMAL, 0.02f, false, 2, c->in_context_len, D);

    char pre[64], name[PARAM_NAME_MAX];
    for (int i = 0; i < c->depth; i++) {
        JitBlock *b = &m->blocks[i];
        snprintf(pre, sizeof pre, "blocks.%d", i);
#define NAME(suffix) param_name(name, pre, suffix)
        param_reg_add(s, &b->norm1, NAME("norm1.weight"), INIT_ONE, 0, false, 1, D, 0);
        param_reg_linear(s, &b->qkv_w, &b->qkv_b, NAME("attn.qkv"), 3 * D, D, INIT_XAVIER_UNIFORM, 0);
        param_reg_add(s, &b->q_norm, NAME("attn.q_norm.weight"), INIT_ONE, 0, false, 1, c->head_dim, 0);
        param_reg_add(s, &b->k_norm, NAME("attn.k_norm.weight"), INIT_ONE, 0, false, 1, c->head_dim, 0);
        param_reg_linear(s, &b->proj_w, &b->proj_b, NAME("attn.proj"), D, D, INIT_XAVIER_UNIFORM, 0);
        if (jit_layer_uses_sla2(c, i)) {
            /* Identity routers make the untrained router SLA's pooled heuristic. Not
             * decayed: decay would pull them towards 0, away from that start. */
            int hd = c->head_dim;
            param_reg_add(s, &b->sla2_proj_q, NAME("attn.sla2.proj_q"), INIT_IDENTITY, 0, false, 2, hd, hd);
            param_reg_add(s, &b->sla2_proj_k, NAME("attn.sla2.proj_k"), INIT_IDENTITY, 0, false, 2, hd, hd);
            param_reg_add(s, &b->sla2_alpha, NAME("attn.sla2.alpha_logit"), INIT_CONSTANT, JIT_SLA2_ALPHA_INIT, false, 1,
                c->heads, 0);
        }
        param_reg_add(s, &b->norm2, NAME("norm2.weight"), INIT_ONE, 0, false, 1, D, 0);
        param_reg_linear(s, &b->w12_w, &b->w12_b, NAME("mlp.w12"), 2 * c->mlp_hidden, D, INIT_XAVIER_UNIFORM, 0);
        param_reg_linear(s, &b->w3_w, &b->w3_b, NAME("mlp.w3"), D, c->mlp_hidden, INIT_XAVIER_UNIFORM, 0);
        /* adaLN-Zero: the block starts as the identity. */
        param_reg_linear(s, &b->ada_w, &b->ada_b, NAME("adaLN_modulation.1"), 6 * D, D, INIT_ZERO, 0);
#undef NAME
    }
    param_reg_add(s, &m->final_norm, "final_layer.norm_final.weight", INIT_ONE, 0, false, 1, D, 0);
    param_reg_linear(s, &m->final_ada_w, &m->final_ada_b, "final_layer.adaLN_modulation.1", 2 * D, D, INIT_ZERO, 0);
    param_reg_linear(s, &m->final_w, &m->final_b, "final_layer.linear", P, D, INIT_ZERO, 0);
    if (c->repa_dim > 0) {
        /* PixelGen's projector: PyTorch's default Linear init, U(+-1/sqrt(fan_in))
         * for weights and biases alike, no weight decay (its own AdamW group). */
        float a = 1.0f / sqrtf((float)D);
        static const char *const names[3][2] = {{"repa_proj.0.weight", "repa_proj.0.bias"},
                                                {"repa_proj.2.weight", "repa_proj.2.bias"},
                                                {"repa_proj.4.weight", "repa_proj.4.bias"}};
        for (int k = 0; k < 3; k++) {
            int out = k == 2 ? c->repa_dim : D;
            param_reg_add(s, &m->repa_w[k], names[k][0], INIT_UNIFORM, a, false, 2, out, D);
            param_reg_add(s, &m->repa_b[k], names[k][1], INIT_UNIFORM, a, false, 1, out, 0);
        }
    }
}

void jit_register(JitModel *m, const JitConfig *cfg) {
    ParamReg r;
    jit_register_into(m, cfg, &r);
    param_reg_discard(&r);
}

/* MAE's 2D sin-cos table: first half of the channels encodes the column,
 * second half the row; each half is [sin(pos w_k), cos(pos w_k)], k < D/4. */
static void jit_pos_table(float *out, int grid, int D) {
    int quarter = D / 4;
    for (int r = 0; r < grid; r++)
        for (int col = 0; col < grid; col++) {
            float *o = out + ((size_t)r * grid + col) * D;
            for (int k = 0; k < quarter; k++) {
                double w = pow(10000.0, -(double)k / quarter);
                o[k] = (float)sin(col * w);
                o[quarter + k] = (float)cos(col * w);
                o[2 * quarter + k] = (float)sin(r * w);
                o[3 * quarter + k] = (float)cos(r * w);
            }
        }
}

/* The fixed tables (position embedding, RoPE angles) in mem, uninitialised,
 * and the host's SLA2 statistics. */
static void jit_alloc_tables(JitModel *m, const DeviceMem *mem) {
    const JitConfig *c = &m->cfg;
    size_t nr = (size_t)c->tokens * (c->head_dim / 2);
    m->pos_table = (Tensor){.data = mem->alloc((size_t)c->tokens * c->hidden * sizeof(float)), .ndim = 2,
                            .shape = {c->tokens, c->hidden, 1, 1}, .numel = (size_t)c->tokens * c->hidden,
                            .name = "pos_embed"};
    m->rope_cos = mem->alloc(nr * sizeof(float));
    m->rope_sin = mem->alloc(nr * sizeof(float));
    m->sla2_stats = core_calloc((size_t)c->depth * c->heads * sizeof(Sla2Stats));
    for (int i = 0; i < c->depth; i++) m->sla2_topk[i] = c->sla2_topk_ratio;
    m->sla2_qat = c->sla2_enable_qat;
}

void jit_build(JitModel *m, const JitConfig *cfg, uint64_t seed) {
    ParamReg r;
    jit_register_into(m, cfg, &r);
    params_alloc(&m->params);
    params_init(&m->params, seed);
    param_reg_bind(&r);
    jit_alloc_tables(m, &device_mem_host);
    const JitConfig *c = &m->cfg;
    jit_pos_table(m->pos_table.data, c->grid, c->hidden);
    rope_2d_tables(m->rope_cos, m->rope_sin, c->grid, c->head_dim);
}

void jit_build_planned(JitModel *m, const JitConfig *cfg, const Backend *be) {
    ParamReg r;
    jit_register_into(m, cfg, &r);
    params_alloc_on(&m->params, be->mem);
    param_reg_bind(&r);
    jit_alloc_tables(m, be->mem);
}

/* A device copy of a host table; the host one is freed (nothing reads it again). */
static float *jit_table_to(const DeviceMem *mem, float *host, size_t n) {
    float *d = mem->alloc(n * sizeof(float));
    mem->to_device(d, host, n * sizeof(float));
    core_free(host);
    return d;
}

void jit_to_device(JitModel *m, const Backend *be) {
    Device d = be->device;
    if (d == m->params.device) return;
    const JitConfig *c = &m->cfg;
    const DeviceMem *mem = be->mem;
    params_to_device(&m->params, mem); /* stops unless the model is on the host */
    m->pos_table.data = jit_table_to(mem, m->pos_table.data, m->pos_table.numel);
    size_t nr = (size_t)c->tokens * (c->head_dim / 2);
    m->rope_cos = jit_table_to(mem, m->rope_cos, nr);
    m->rope_sin = jit_table_to(mem, m->rope_sin, nr);
}

void jit_free(JitModel *m) {
    /* The fixed tables live where the parameters do. */
    const DeviceMem *mem = m->params.mem;
    if (mem) {
        mem->free(m->pos_table.data);
        mem->free(m->rope_cos);
        mem->free(m->rope_sin);
    } else {
        core_free(m->pos_table.data);
        core_free(m->rope_cos);
        core_free(m->rope_sin);
    }
    params_destroy(&m->params);
    core_free(m->blocks);
    core_free(m->sla2_stats);
    memset(m, 0, sizeof *m);
}

Sla2Config jit_sla2_config(const JitModel *m, int i) {
    const JitConfig *c = &m->cfg;
    return (Sla2Config){.block_q = c->sla2_block_q, .block_k = c->sla2_block_k, .topk_ratio = m->sla2_topk[i],
                        .feature_map = c->sla2_feature_map, .soft = m->sla2_soft,
                        .qat = m->sla2_qat && !m->sla2_soft, .tau = 0.1f};
}

static Tensor *jit_attention(JitModel *m, Graph *g, int i, Tensor *h, int n_ctx, const JitForwardOpts *opt) {
    JitBlock *b = &m->blocks[i];
    Tensor *qkv = op_linear(g, h, b->qkv_w, b->qkv_b);
    Tensor *q, *k, *v; /* split, q/k-norm and RoPE in one op */
    op_qkv_norm_rope(g, qkv, m->cfg.heads, b->q_norm, b->k_norm, m->rope_cos, m->rope_sin, n_ctx, RMS_EPS, &q, &k, &v);
    Tensor *o;
    if (b->sla2_proj_q && opt->capture_qkv) m->cap_q[i] = q, m->cap_k[i] = k, m->cap_v[i] = v;
    if (b->sla2_proj_q && !opt->full_attention) {
        Sla2Config sc = jit_sla2_config(m, i);
        Sla2Stats *st = opt->collect_stats ? m->sla2_stats + (size_t)i * m->cfg.heads : NULL;
        o = op_sla2(g, q, k, v, b->sla2_proj_q, b->sla2_proj_k, b->sla2_alpha, &sc, st);
    } else {
        o = op_attention(g, q, k, v);
    }
    return op_linear(g, o, b->proj_w, b->proj_b);
}

/* A recomputed segment (core/recompute.h): block i's attention or the whole
 * block. The replay skips the SLA2 statistics the forward already wrote. */
typedef struct JitSegment {
    JitModel *m;
    int i, n_ctx;
    JitForwardOpts o;
} JitSegment;

static Tensor *jit_attention_segment(Graph *g, void *ctx, Tensor *const *in) {
    JitSegment *s = ctx;
    Tensor *out = jit_attention(s->m, g, s->i, in[0], s->n_ctx, &s->o);
    s->o.collect_stats = false;
    return out;
}

static Tensor *jit_block(JitModel *m, Graph *g, int i, Tensor *x, Tensor *sc, int n_ctx, const JitForwardOpts *o);

static Tensor *jit_block_segment(Graph *g, void *ctx, Tensor *const *in) {
    JitSegment *s = ctx;
    Tensor *out = jit_block(s->m, g, s->i, in[0], in[1], s->n_ctx, &s->o);
    s->o.collect_stats = false;
    return out;
}

static Tensor *jit_block(JitModel *m, Graph *g, int i, Tensor *x, Tensor *sc, int n_ctx, const JitForwardOpts *o) {
    JitBlock *b = &m->blocks[i];
    const JitConfig *c = &m->cfg;
    float drop = (i >= c->depth / 4 && i < 3 * c->depth / 4) ? c->dropout : 0.0f;
    Tensor *mod = op_linear(g, sc, b->ada_w, b->ada_b);
    Tensor *shift_msa = op_chunk(g, mod, 6, 0), *scale_msa = op_chunk(g, mod, 6, 1), *gate_msa = op_chunk(g, mod, 6, 2);
    Tensor *shift_mlp = op_chunk(g, mod, 6, 3), *scale_mlp = op_chunk(g, mod, 6, 4), *gate_mlp = op_chunk(g, mod, 6, 5);

    Tensor *h = op_norm_modulate(g, x, NULL, NULL, b->norm1, shift_msa, scale_msa, RMS_EPS, NULL);
    Tensor *a;
    if (o->recompute == JIT_RECOMPUTE_ATTENTION) {
        JitSegment seg = {m, i, n_ctx, *o};
        a = graph_recompute(g, jit_attention_segment, &seg, sizeof seg, 1, &h);
    } else {
        a = jit_attention(m, g, i, h, n_ctx, o);
    }
    a = op_dropout(g, a, drop);
    /* x + gate_msa a, then norm2 and its modulation, in one op. (The
     * block's last residual is not fused with the next block's norm1: a
     * recomputed block must begin at its input.) */
    h = op_norm_modulate(g, x, gate_msa, a, b->norm2, shift_mlp, scale_mlp, RMS_EPS, &x);

    Tensor *hid = op_dropout(g, op_swiglu(g, op_linear(g, h, b->w12_w, b->w12_b)), drop);
    return op_gated_add(g, x, gate_mlp, op_linear(g, hid, b->w3_w, b->w3_b));
}

Tensor *jit_forward(JitModel *m, Graph *g, Tensor *z, Tensor *t, const int *y, const JitForwardOpts *opts) {
    static const JitForwardOpts plain = {0};
    const JitForwardOpts *o = opts ? opts : &plain;
    const JitConfig *c = &m->cfg;
    CHECK(o->recompute == JIT_RECOMPUTE_NONE || !o->capture_qkv,
          "recomputation frees the q, k, v that capture_qkv keeps: run that forward without it");
    /* A kernel handed pointers of the other device would crash far from here. */
    CHECK(g->be->device == m->params.device, "the model is on %s but the graph on %s (jit_to_device, graph_init)",
          device_name(m->params.device), device_name(g->be->device));
    CHECK_SHAPE(z, 4, -1, c->in_channels, c->img_size, c->img_size);
    int B = z->shape[0];
    CHECK_SHAPE(t, 1, B);
    for (int b = 0; b < B; b++)
        CHECK(y[b] >= 0 && y[b] <= c->num_classes, "class label %d of sample %d is outside [0, %d] (%d = null class)",
              y[b], b, c->num_classes, c->num_classes);

    Tensor *x = op_patchify(g, z, c->patch);
    x = op_linear(g, op_linear(g, x, m->proj1_w, NULL), m->proj2_w, m->proj2_b);
    x = op_add_rows(g, x, &m->pos_table);

    Tensor *temb = op_timestep_embed(g, t, JIT_TIME_FEATURES);
    temb = op_linear(g, op_silu(g, op_linear(g, temb, m->t_mlp0_w, m->t_mlp0_b)), m->t_mlp2_w, m->t_mlp2_b);
    Tensor *yemb = op_embedding(g, m->y_table, y, B);
    Tensor *sc = op_silu(g, op_add(g, temb, yemb)); /* every adaLN reads SiLU(c) */

    int n_ctx = 0;
    m->cap_hidden = NULL;
    for (int i = 0; i < c->depth; i++) {
        /* PixelGen captures before the in-context tokens join at this block */
        if (o->capture_hidden && i == c->repa_layer) m->cap_hidden = n_ctx ? op_incontext_strip(g, x, n_ctx) : x;
        if (c->in_context_len > 0 && i == c->in_context_start) {
            x = op_incontext_prepend(g, x, yemb, m->ctx_pos);
            n_ctx = c->in_context_len;
        }
        if (o->recompute == JIT_RECOMPUTE_BLOCK) {
            JitSegment seg = {m, i, n_ctx, *o};
            x = graph_recompute(g, jit_block_segment, &seg, sizeof seg, 2, (Tensor *[]){x, sc});
        } else {
            x = jit_block(m, g, i, x, sc, n_ctx, o);
        }
    }
    if (n_ctx) x = op_incontext_strip(g, x, n_ctx);

    Tensor *mod = op_linear(g, sc, m->final_ada_w, m->final_ada_b);
    x = op_norm_modulate(g, x, NULL, NULL, m->final_norm, op_chunk(g, mod, 2, 0), op_chunk(g, mod, 2, 1), RMS_EPS,
                         NULL);
    x = op_linear(g, x, m->final_w, m->final_b);
    return op_unpatchify(g, x, c->in_channels, c->img_size, c->img_size, c->patch);
}

Tensor *jit_repa_project(JitModel *m, Graph *g, Tensor *h) {
    CHECK(m->cfg.repa_dim > 0, "the model has no REPA projector (losses.repa_weight is 0)");
    for (int k = 0; k < 3; k++) {
        h = op_linear(g, h, m->repa_w[k], m->repa_b[k]);
        if (k < 2) h = op_silu(g, h);
    }
    return h;
}

void jit_sla2_set_topk(JitModel *m, int layer, float ratio) {
    Sla2Config c = {.block_q = 1, .block_k = 1, .topk_ratio = ratio};
    CHECK(sla2_config_error(&c) == NULL, "top-k ratio %g is outside (0, 1]", ratio);
    CHECK(layer >= -1 && layer < m->cfg.depth, "block %d does not exist (depth %d)", layer, m->cfg.depth);
    for (int i = 0; i < m->cfg.depth; i++)
        if (layer < 0 || i == layer) m->sla2_topk[i] = ratio;
}

void jit_sla2_set_qat(JitModel *m, int on) { m->sla2_qat = on; }
void jit_sla2_set_soft(JitModel *m, int on) { m->sla2_soft = on; }

Tensor *jit_sla2_distill_loss(JitModel *m, Graph *g, int layer) {
    CHECK(layer >= 0 && layer < m->cfg.depth && m->blocks[layer].sla2_proj_q, "block %d is not an SLA2 block", layer);
    CHECK(m->cap_q[layer], "no q, k, v captured for block %d: run a forward with capture_qkv first", layer);
    JitBlock *b = &m->blocks[layer];
    Sla2Config sc = jit_sla2_config(m, layer);
    sc.soft = 1, sc.qat = 0; /* the paper's stage 1: soft top-k, full precision */
    Tensor *target = op_attention(g, m->cap_q[layer], m->cap_k[layer], m->cap_v[layer]);
    Tensor *out = op_sla2(g, m->cap_q[layer], m->cap_k[layer], m->cap_v[layer], b->sla2_proj_q, b->sla2_proj_k,
                          b->sla2_alpha, &sc, NULL);
    return op_mse(g, out, target);
}

int jit_load_params(JitModel *m, const ParamStore *src) {
    int missing = 0;
    for (int i = 0; i < m->params.n; i++) {
        Tensor *dst = params_at(&m->params, i);
        int j = params_find(src, dst->name);
        if (j < 0) {
            missing++;
            continue;
        }
        const Tensor *s = &src->views[j];
        char a[64], b[64];
        CHECK(tensor_same_shape(dst, s), "parameter %s has shape %s in the source but %s in this model", dst->name,
              tensor_shape_str(s, a, sizeof a), tensor_shape_str(dst, b, sizeof b));
        memcpy(m->params.host + m->params.info[i].offset, src->host + src->info[j].offset,
               dst->numel * sizeof(float));
    }
    params_push(&m->params);
    return missing;
}

void jit_use_official_decay_set(JitModel *m) {
    static const char *const extra[] = {"y_embedder.embedding_table.weight", "in_context_posemb"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        int k = params_find(&m->params, extra[i]);
        if (k >= 0) m->params.info[k].weight_decay = true; /* in_context_posemb is absent without in-context tokens */
    }
}
