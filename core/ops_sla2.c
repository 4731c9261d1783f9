/* core/ops_sla2.c — the differentiable SLA2 attention op and the MSE used by
 * SLA2's router distillation (stage 1 of the conversion recipe). */
#include <math.h>
#include <string.h>

#include "core/check.h"
#include "core/ops.h"

const char *sla2_config_error(const Sla2Config *c) {
    if (!(c->topk_ratio > 0.0f && c->topk_ratio <= 1.0f)) return "sla2_topk_ratio must be in (0, 1]";
    if (c->block_q < 1 || c->block_k < 1) return "SLA2 block sizes must be at least 1";
    if (c->feature_map < SLA2_PHI_SOFTMAX || c->feature_map > SLA2_PHI_RELU)
        return "sla2_feature_map must be softmax, elu or relu";
    if (c->soft && !(c->tau > 0.0f)) return "the soft top-k temperature tau must be positive";
    if (c->soft && c->qat) return "QAT applies to the hard selection; router training (soft top-k) runs in full precision";
    if (c->soft && c->cpu_path == SLA2_CPU_GATHER) return "the CPU's gather path takes the hard selection only";
    if (c->cpu_path < SLA2_CPU_AUTO || c->cpu_path > SLA2_CPU_GATHER) return "unknown SLA2 CPU path";
    return NULL;
}

int sla2_k_select(float topk_ratio, int nk) {
    int k = (int)floor((double)topk_ratio * nk + 0.5); /* round half away from zero (positive) */
    if (k < 1) k = 1;
    return k > nk ? nk : k;
}

typedef struct Sla2Ctx {
    Tensor *out, *q, *k, *v, *pq, *pk, *al;
    Sla2Dims dm;
    Sla2Saved sv;
} Sla2Ctx;

/* A gradient buffer for the kernel: the input's, or arena scratch when the
 * input needs none (the kernel always writes dq, dk, dv). */
static float *grad_or_scratch(Graph *g, Tensor *t) {
    float *d = graph_grad(g, t);
    return d ? d : graph_alloc(g, t->numel * sizeof(float));
}

static void sla2_bwd(Graph *g, void *p) {
    Sla2Ctx *c = p;
    if (!c->out->grad) return;
    float *dq = grad_or_scratch(g, c->q), *dk = grad_or_scratch(g, c->k), *dv = grad_or_scratch(g, c->v);
    if (!c->q->grad) g->be->mem->zero(dq, c->q->numel * sizeof(float));
    if (!c->k->grad) g->be->mem->zero(dk, c->k->numel * sizeof(float));
    if (!c->v->grad) g->be->mem->zero(dv, c->v->numel * sizeof(float));
    float *ws = graph_alloc(g, g->be->ops->sla2_workspace_floats(&c->dm) * sizeof(float));
    g->be->ops->sla2_bwd(dq, dk, dv, c->dm.soft ? graph_grad(g, c->pq) : NULL, c->dm.soft ? graph_grad(g, c->pk) : NULL,
                     graph_grad(g, c->al), ws, c->out->grad, &c->sv, c->q->data, c->k->data, c->v->data, c->pq->data,
                     c->pk->data, c->al->data, &c->dm);
}

Tensor *op_sla2(Graph *g, Tensor *q, Tensor *k, Tensor *v, Tensor *proj_q, Tensor *proj_k, Tensor *alpha_logit,
                const Sla2Config *cfg, Sla2Stats *stats) {
    const char *err = sla2_config_error(cfg);
    CHECK(err == NULL, "%s (got topk_ratio %g, blocks %d/%d)", err, cfg->topk_ratio, cfg->block_q, cfg->block_k);
    CHECK_SHAPE(q, 4, -1, -1, -1, -1);
    int B = q->shape[0], H = q->shape[1], N = q->shape[2], d = q->shape[3];
    CHECK_SHAPE(k, 4, B, H, N, d);
    CHECK_SHAPE(v, 4, B, H, N, d);
    CHECK_SHAPE(proj_q, 2, d, d);
    CHECK_SHAPE(proj_k, 2, d, d);
    CHECK_SHAPE(alpha_logit, 1, H);
    CHECK(d <= 1024, "SLA2 supports head dimensions up to 1024 (exact INT8 accumulation in fp32), got %d", d);

    Sla2Dims dm = {.B = B, .H = H, .N = N, .d = d, .feature_map = cfg->feature_map, .soft = cfg->soft,
                   .qat = cfg->qat, .tau = cfg->tau, .cpu_path = cfg->cpu_path};
    dm.block_q = cfg->block_q < N ? cfg->block_q : N; /* a block larger than N is the whole sequence */
    dm.block_k = cfg->block_k < N ? cfg->block_k : N;
    dm.nq = (N + dm.block_q - 1) / dm.block_q;
    dm.nk = (N + dm.block_k - 1) / dm.block_k;
    dm.k_sel = sla2_k_select(cfg->topk_ratio, dm.nk);

    size_t nbh = (size_t)B * H, blk = nbh * dm.nq * dm.nk, tok = nbh * N * d;
    Sla2Saved sv = {
        .mask = graph_alloc(g, blk * sizeof(float)),
        .pc = graph_alloc(g, blk * sizeof(float)),
        .lse = graph_alloc(g, nbh * N * sizeof(float)),
        .o_s = graph_alloc(g, tok * sizeof(float)),
        .o_s_fp = dm.qat ? graph_alloc(g, tok * sizeof(float)) : NULL,
        .o_l = graph_alloc(g, tok * sizeof(float)),
    };
    size_t n_kept = g->be->ops->sla2_saved_floats(&dm);
    sv.kept = n_kept ? graph_alloc(g, n_kept * sizeof(float)) : NULL;
    Tensor *out = graph_new(g, 3, B, N, H * d);
    float *ws = graph_alloc(g, g->be->ops->sla2_workspace_floats(&dm) * sizeof(float));
    g->be->ops->sla2_fwd(out->data, &sv, ws, q->data, k->data, v->data, proj_q->data, proj_k->data, alpha_logit->data,
                     &dm);
    if (stats) g->be->ops->sla2_stats(stats, out->data, &sv, q->data, k->data, v->data, alpha_logit->data, &dm);
    /* The router matrices only receive gradient through the soft top-k. */
    bool track = dm.soft ? GRAPH_TRACK(g, out, q, k, v, proj_q, proj_k, alpha_logit)
                         : GRAPH_TRACK(g, out, q, k, v, alpha_logit);
    if (track) {
        Sla2Ctx *c = graph_alloc_host(g, sizeof *c);
        *c = (Sla2Ctx){.out = out, .q = q, .k = k, .v = v, .pq = proj_q, .pk = proj_k, .al = alpha_logit,
                       .dm = dm, .sv = sv};
        graph_record(g, sla2_bwd, c, "sla2_attention");
    }
    return out;
}

static void mse_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->mse_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), c->out->grad, c->in[0]->data, c->in[1]->data,
                    c->in[0]->numel);
}

Tensor *op_mse(Graph *g, Tensor *a, Tensor *b) {
    char sa[64], sb[64];
    CHECK(tensor_same_shape(a, b), "mse needs equal shapes, got %s and %s", tensor_shape_str(a, sa, sizeof sa),
          tensor_shape_str(b, sb, sizeof sb));
    Tensor *out = graph_new(g, 1, 1);
    g->be->ops->mse_fwd(out->data, a->data, b->data, a->numel);
    if (GRAPH_TRACK(g, out, a, b)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = a, c->in[1] = b;
        graph_record(g, mse_bwd, c, "mse");
    }
    return out;
}
