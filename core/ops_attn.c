/* core/ops_attn.c — differentiable head split, RoPE and full attention. */
#include <math.h>

#include "core/check.h"
#include "core/ops.h"

static void qkv_split_bwd(Graph *g, void *p) {
    OpCtx *c = p; /* out = q; in[1], in[2] = k, v */
    Tensor *q = c->out, *k = c->in[1], *v = c->in[2];
    if (!q->grad && !k->grad && !v->grad) return;
    g->be->ops->qkv_split_bwd(graph_grad(g, c->in[0]), q->grad, k->grad, v->grad, c->dim[0], c->dim[1], c->dim[2],
                          c->dim[3]);
}

void op_qkv_split(Graph *g, Tensor *qkv, int H, Tensor **q, Tensor **k, Tensor **v) {
    CHECK_SHAPE(qkv, 3, -1, -1, -1);
    int B = qkv->shape[0], N = qkv->shape[1], D3 = qkv->shape[2];
    CHECK(H > 0 && D3 % (3 * H) == 0, "qkv width %d is not 3 * heads(%d) * head_dim", D3, H);
    int hd = D3 / (3 * H);
    *q = graph_new(g, 4, B, H, N, hd);
    *k = graph_new(g, 4, B, H, N, hd);
    *v = graph_new(g, 4, B, H, N, hd);
    g->be->ops->qkv_split_fwd((*q)->data, (*k)->data, (*v)->data, qkv->data, B, N, H, hd);
    bool track = GRAPH_TRACK(g, *q, qkv);
    (*k)->requires_grad = (*v)->requires_grad = track;
    if (track) {
        OpCtx *c = op_ctx(g, *q);
        c->in[0] = qkv, c->in[1] = *k, c->in[2] = *v;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = H, c->dim[3] = hd;
        graph_record(g, qkv_split_bwd, c, "qkv_split");
    }
}

static void rope_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->rope_bwd(graph_grad(g, c->in[0]), c->out->grad, c->table[0], c->table[1], c->dim[0], c->dim[1], c->dim[2],
                     c->dim[3]);
}

Tensor *op_rope(Graph *g, Tensor *x, const float *cos, const float *sin, int n_ctx) {
    CHECK_SHAPE(x, 4, -1, -1, -1, -1);
    int BH = x->shape[0] * x->shape[1], N = x->shape[2], hd = x->shape[3];
    CHECK(hd % 4 == 0, "2D RoPE needs a head dimension divisible by 4, got %d", hd);
    CHECK(n_ctx >= 0 && n_ctx < N, "rope: %d unrotated tokens out of %d", n_ctx, N);
    Tensor *out = graph_tensor(g, 4, x->shape);
    g->be->ops->rope_fwd(out->data, x->data, cos, sin, BH, N, hd, n_ctx);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        c->table[0] = cos, c->table[1] = sin;
        c->dim[0] = BH, c->dim[1] = N, c->dim[2] = hd, c->dim[3] = n_ctx;
        graph_record(g, rope_bwd, c, "rope");
    }
    return out;
}

static void attention_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    int B = c->dim[0], H = c->dim[1], N = c->dim[2], hd = c->dim[3];
    float *scratch = graph_alloc(g, g->be->ops->attention_scratch_floats(B, H, N, hd) * sizeof(float));
    g->be->ops->attention_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), graph_grad(g, c->in[2]), scratch,
                          c->out->grad, c->out->data, c->saved->data, c->in[0]->data, c->in[1]->data, c->in[2]->data, B, H, N, hd);
}

Tensor *op_attention(Graph *g, Tensor *q, Tensor *k, Tensor *v) {
    CHECK_SHAPE(q, 4, -1, -1, -1, -1);
    int B = q->shape[0], H = q->shape[1], N = q->shape[2], hd = q->shape[3];
    CHECK_SHAPE(k, 4, B, H, N, hd);
    CHECK_SHAPE(v, 4, B, H, N, hd);
    Tensor *out = graph_new(g, 3, B, N, H * hd);
    /* What backward needs, in the backend's format (probabilities or LSE). */
    size_t n_saved = g->be->ops->attention_saved_floats(B, H, N, hd);
    Tensor *att = graph_new(g, 1, (int)n_saved);
    g->be->ops->attention_fwd(out->data, att->data, q->data, k->data, v->data, B, H, N, hd);
    if (GRAPH_TRACK(g, out, q, k, v)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = q, c->in[1] = k, c->in[2] = v, c->saved = att;
        c->dim[0] = B, c->dim[1] = H, c->dim[2] = N, c->dim[3] = hd;
        graph_record(g, attention_bwd, c, "attention");
    }
    return out;
}

void rope_2d_tables(float *cs, float *sn, int grid, int head_dim) {
    int half = head_dim / 2, quarter = head_dim / 4;
    for (int r = 0; r < grid; r++)
        for (int col = 0; col < grid; col++) {
            size_t t = (size_t)r * grid + col;
            for (int j = 0; j < half; j++) {
                int k = j < quarter ? j : j - quarter;
                double a = (j < quarter ? r : col) * pow(10000.0, -2.0 * k / half);
                cs[t * half + j] = (float)cos(a);
                sn[t * half + j] = (float)sin(a);
            }
        }
}
