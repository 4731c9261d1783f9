/* core/graph.c — tape recording and reverse replay (see graph.h). */
#include "core/graph.h"

#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

void graph_init(Graph *g, const Backend *be, size_t arena_bytes) {
    memset(g, 0, sizeof *g);
    g->be = be;
    arena_init_on(&g->arena, arena_bytes, be->mem);
    arena_init(&g->meta, 64u << 10);
    arena_init_on(&g->scratch, 0, be->mem); /* sized by the first recomputed segment */
    g->first_use_at = -1;
    g->grad_enabled = true;
    g->cap_tape = 256;
    g->tape = core_realloc(NULL, (size_t)g->cap_tape * sizeof(TapeEntry));
}

void graph_free(Graph *g) {
    arena_free(&g->arena);
    arena_free(&g->meta);
    arena_free(&g->scratch);
    core_free(g->tape);
    memset(g, 0, sizeof *g);
}

void graph_reset(Graph *g) {
    g->n_tape = 0;
    g->dropout_calls = 0;
    arena_reset(&g->arena);
    arena_reset(&g->meta);
    g->grad_bufs = NULL;
}

bool graph_set_grad(Graph *g, bool enabled) {
    bool prev = g->grad_enabled;
    g->grad_enabled = enabled;
    return prev;
}

Tensor *graph_tensor(Graph *g, int ndim, const int *shape) {
    Tensor *t = arena_alloc(&g->meta, sizeof(Tensor));
    memset(t, 0, sizeof *t);
    tensor_set_shape(t, ndim, shape);
    t->data = arena_alloc(&g->arena, t->numel * sizeof(float));
    return t;
}

void *graph_alloc(Graph *g, size_t bytes) { return arena_alloc(&g->arena, bytes); }

void *graph_alloc_host(Graph *g, size_t bytes) { return arena_alloc(&g->meta, bytes); }

void *graph_upload(Graph *g, const void *host, size_t bytes) {
    void *p = arena_alloc(&g->arena, bytes);
    g->be->mem->to_device(p, host, bytes);
    return p;
}

void graph_read(Graph *g, const Tensor *t, float *host, size_t n) {
    CHECK(n <= t->numel, "reading %zu floats of a tensor of %zu", n, t->numel);
    g->be->mem->to_host(host, t->data, n * sizeof(float));
}

bool graph_track(Graph *g, Tensor *out, int n_inputs, Tensor *const *inputs) {
    out->requires_grad = false;
    if (!g->grad_enabled) return false;
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && inputs[i]->requires_grad) {
            out->requires_grad = true;
            int p = inputs[i]->param_id - 1, at = g->first_use_at >= 0 ? g->first_use_at : g->n_tape;
            if (p >= 0 && g->param_first_use && at < g->param_first_use[p]) g->param_first_use[p] = at;
        }
    return out->requires_grad;
}

void graph_record(Graph *g, BackwardFn fn, void *ctx, const char *op) {
    if (g->n_tape == g->cap_tape) {
        /* Grows only during the first step of a given model; later steps reuse it. */
        g->cap_tape *= 2;
        g->tape = core_realloc(g->tape, (size_t)g->cap_tape * sizeof(TapeEntry));
    }
    g->tape[g->n_tape++] = (TapeEntry){fn, ctx, op};
    if (g->prof) profile_forward(g->prof, op);
}

typedef struct GraphGradBuf {
    float *p;
    size_t n;
    struct GraphGradBuf *next;
} GraphGradBuf;

float *graph_grad(Graph *g, Tensor *t) {
    if (!t || !t->requires_grad) return NULL;
    if (!t->grad) {
        t->grad = arena_calloc(&g->arena, t->numel * sizeof(float));
        GraphGradBuf *b = arena_alloc(&g->meta, sizeof *b);
        *b = (GraphGradBuf){t->grad, t->numel, g->grad_bufs};
        g->grad_bufs = b;
    }
    return t->grad;
}

void graph_clear_activation_grads(Graph *g) {
    for (GraphGradBuf *b = g->grad_bufs; b; b = b->next) g->be->mem->zero(b->p, b->n * sizeof(float));
}

void graph_backward(Graph *g, Tensor *loss) {
    CHECK(loss->numel == 1, "backward starts from a scalar loss, got %zu elements", loss->numel);
    CHECK(loss->requires_grad, "the loss does not depend on anything that requires a gradient");
    const float one = 1.0f;
    graph_backward_from(g, loss, &one);
}

void graph_seed(Graph *g, Tensor *t, const float *dout) {
    CHECK(t->requires_grad, "backward from a tensor that does not depend on anything requiring a gradient");
    const float *d = graph_upload(g, dout, t->numel * sizeof(float)); /* the seed comes from the host */
    g->be->ops->accumulate(graph_grad(g, t), d, t->numel);
}

void graph_backward_from(Graph *g, Tensor *t, const float *dout) {
    graph_seed(g, t, dout);
    graph_backward_seeded(g);
}

void graph_backward_seeded(Graph *g) { graph_backward_hooked(g, NULL); }

void graph_backward_hooked(Graph *g, const GraphBackwardHook *hook) {
    for (int i = g->n_tape - 1; i >= 0; i--) {
        double t0 = g->prof ? core_now_s() : 0.0;
        g->tape[i].backward(g, g->tape[i].ctx);
        if (g->prof) profile_backward(g->prof, g->tape[i].op, core_now_s() - t0);
        if (hook) hook->after_entry(hook->ctx, i);
    }
}
