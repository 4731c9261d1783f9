/* core/recompute.c — recomputed segments of the forward (see recompute.h). */
#include "core/recompute.h"

#include <string.h>

#include "core/check.h"

typedef struct RecomputeCtx {
    RecomputeFn fn;
    void *ctx;
    Tensor *in[RECOMPUTE_MAX_INPUTS];
    Tensor *out;       /* the kept output, in the step arena */
    int entry;         /* the segment's tape index */
    int dropout_calls; /* the dropout counter at the segment's start */
} RecomputeCtx;

/* The segment's allocations go to the scratch arena: graph_tensor and
 * graph_alloc take g->arena, so the two trade places around a segment. */
static void swap_arenas(Graph *g) {
    Arena t = g->arena;
    g->arena = g->scratch;
    g->scratch = t;
}

static void enter_segment(Graph *g, int entry) {
    swap_arenas(g);
    g->in_segment = true;
    g->first_use_at = entry; /* the parameters' first use is the segment's entry */
}

/* Back to the step arena; the scratch arena is emptied by the caller once
 * nothing of the segment is read any more. */
static void leave_segment(Graph *g) {
    swap_arenas(g);
    g->in_segment = false;
    g->first_use_at = -1;
}

static void recompute_bwd(Graph *g, void *p) {
    RecomputeCtx *c = p;
    if (!c->out->grad) return;
    /* The inputs' gradient buffers are the step's (allocated here, in the
     * step arena, when no later entry made them yet): the replay
     * accumulates into them exactly as the segment's ops would have. */
    for (int i = 0; i < RECOMPUTE_MAX_INPUTS; i++) graph_grad(g, c->in[i]);
    int end = g->n_tape, calls = g->dropout_calls;
    struct GraphGradBuf *bufs = g->grad_bufs;
    bool prev = graph_set_grad(g, true);
    g->dropout_calls = c->dropout_calls; /* the same dropout streams as the forward drew */
    enter_segment(g, c->entry);
    Tensor *o = c->fn(g, c->ctx, c->in);
    char a[64], b[64];
    CHECK(tensor_same_shape(o, c->out) && o->requires_grad, "recomputed segment: output %s%s, the forward gave %s",
          tensor_shape_str(o, a, sizeof a), o->requires_grad ? "" : " without a gradient",
          tensor_shape_str(c->out, b, sizeof b));
    o->grad = c->out->grad;
    for (int i = g->n_tape - 1; i >= end; i--) g->tape[i].backward(g, g->tape[i].ctx);
    g->n_tape = end;
    leave_segment(g);
    arena_reset(&g->scratch);
    g->grad_bufs = bufs; /* the segment's gradient buffers were in the scratch arena */
    g->dropout_calls = calls;
    graph_set_grad(g, prev);
}

Tensor *graph_recompute(Graph *g, RecomputeFn fn, void *ctx, size_t ctx_bytes, int n_in, Tensor *const *in) {
    CHECK(n_in >= 1 && n_in <= RECOMPUTE_MAX_INPUTS, "a recomputed segment takes 1 to %d inputs, got %d",
          RECOMPUTE_MAX_INPUTS, n_in);
    if (!g->grad_enabled) return fn(g, ctx, in);
    CHECK(!g->in_segment, "recomputed segments do not nest");
    RecomputeCtx *c = graph_alloc_host(g, sizeof *c);
    memset(c, 0, sizeof *c);
    void *own = graph_alloc_host(g, ctx_bytes ? ctx_bytes : 1);
    if (ctx_bytes) memcpy(own, ctx, ctx_bytes);
    c->fn = fn, c->ctx = own, c->entry = g->n_tape, c->dropout_calls = g->dropout_calls;
    for (int i = 0; i < n_in; i++) c->in[i] = in[i];

    enter_segment(g, c->entry);
    Tensor *o = fn(g, own, c->in);
    g->n_tape = c->entry; /* the segment's entries: its backward records them again */
    leave_segment(g);
    Tensor *out = graph_tensor(g, o->ndim, o->shape); /* the output, kept in the step arena */
    g->be->mem->copy(out->data, o->data, o->numel * sizeof(float));
    arena_reset(&g->scratch);
    out->requires_grad = o->requires_grad;
    if (out->requires_grad) {
        c->out = out;
        graph_record(g, recompute_bwd, c, "recompute");
    }
    return out;
}
