/* core/graph.h — the tape autograd engine.
 *
 * A Graph holds the step arena, its backend (core/backend.h) and the tape.
 * Ops (core/ops.h) compute their output at once and, when gradients are on
 * and an input needs one, append a TapeEntry: a backward function and a
 * context allocated in the arena. graph_backward() seeds d(loss) = 1 and
 * replays the tape in reverse; each backward accumulates into the inputs'
 * gradients. graph_reset() drops the tape and the arena after the update. */
#ifndef CORE_GRAPH_H
#define CORE_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/backend.h"
#include "core/profile.h"
#include "core/tensor.h"

struct Graph;
typedef void (*BackwardFn)(struct Graph *g, void *ctx);

typedef struct TapeEntry {
    BackwardFn backward;
    void *ctx;
    const char *op; /* op name, for debugging and tests */
} TapeEntry;

typedef struct Graph {
    Arena arena;       /* activations, gradients, kernel workspaces: on the device */
    Arena meta;        /* tensor structs and tape contexts: always host memory */
    const Backend *be; /* the op table, the device and its memory functions */
    TapeEntry *tape;
    int n_tape, cap_tape;
    bool grad_enabled; /* false: ops record nothing (sampling, evaluation) */
    bool training;     /* dropout active */
    uint64_t seed;     /* for dropout masks */
    uint64_t step;     /* folded into dropout streams */
    int dropout_calls; /* counts dropout ops within a step, for their streams */
    /* Gradient readiness for overlapping communication with backward: when
     * set, param_first_use[p] receives the lowest tape index that reads
     * parameter p (its gradient is final once that entry has run backward;
     * dist/grad_reduce.h sets it for the forward it reduces after). */
    int *param_first_use;
    Profile *prof; /* when set, per-op forward and backward times (core/profile.h) */
    struct GraphGradBuf *grad_bufs; /* the activations' gradient buffers (graph_clear_activation_grads) */
    /* Recomputation (core/recompute.h): a recomputed segment's activations
     * live in `scratch`, emptied after its forward and after its backward;
     * while its forward records, first_use_at (>= 0) is the tape index
     * graph_track gives parameter uses (the segment's one entry), -1 else. */
    Arena scratch;
    int first_use_at;
    bool in_segment; /* inside a recomputed segment (segments do not nest) */
} Graph;

void graph_init(Graph *g, const Backend *be, size_t arena_bytes);
void graph_free(Graph *g);
/* Drop the tape and every activation; keep the memory for the next step. */
void graph_reset(Graph *g);
/* Switch recording on or off; returns the previous setting (no-grad mode). */
bool graph_set_grad(Graph *g, bool enabled);

/* A new activation tensor from the arena (data uninitialised, no grad yet). */
Tensor *graph_tensor(Graph *g, int ndim, const int *shape);
#define graph_new(g, nd, ...) graph_tensor((g), (nd), (const int[]){__VA_ARGS__})
/* Device memory from the arena (kernel workspaces, saved buffers),
 * uninitialised; the core never dereferences it. */
void *graph_alloc(Graph *g, size_t bytes);
/* Host memory for the lifetime of the step (tape contexts). */
void *graph_alloc_host(Graph *g, size_t bytes);
/* A device copy of host data (labels, seeds) for the lifetime of the step. */
void *graph_upload(Graph *g, const void *host, size_t bytes);
/* Copy a tensor's data (n floats from the start) into host memory. */
void graph_read(Graph *g, const Tensor *t, float *host, size_t n);

/* Should an op producing `out` from these inputs record itself? Sets
 * out->requires_grad accordingly. NULL inputs are skipped. */
bool graph_track(Graph *g, Tensor *out, int n_inputs, Tensor *const *inputs);
#define GRAPH_TRACK(g, out, ...) \
    graph_track((g), (out), (int)(sizeof((Tensor *[]){__VA_ARGS__}) / sizeof(Tensor *)), (Tensor *[]){__VA_ARGS__})
void graph_record(Graph *g, BackwardFn fn, void *ctx, const char *op);

/* The gradient buffer of t, zero-filled from the arena on first use; NULL
 * when t is NULL or does not require a gradient. */
float *graph_grad(Graph *g, Tensor *t);

/* Backpropagate from a 1-element loss. */
void graph_backward(Graph *g, Tensor *loss);
/* Backpropagate from any tensor with a given output gradient dout (same
 * numel as t, in host memory): used by gradient checks and by partial
 * backward passes. */
void graph_backward_from(Graph *g, Tensor *t, const float *dout);
/* The same from several tensors at once (a loss of several terms, each with
 * its own weights): graph_seed adds dout (host, t's numel) to t's gradient,
 * graph_backward_seeded then replays the tape once. */
void graph_seed(Graph *g, Tensor *t, const float *dout);
void graph_backward_seeded(Graph *g);
/* The same replay, calling hook->after_entry(hook->ctx, i) once tape entry
 * i's backward has run (on a GPU: has been queued on the compute stream).
 * A gradient reduction starts its buckets from it (dist/grad_reduce.h);
 * NULL: none. */
typedef struct GraphBackwardHook {
    void (*after_entry)(void *ctx, int entry);
    void *ctx;
} GraphBackwardHook;
void graph_backward_hooked(Graph *g, const GraphBackwardHook *hook);
/* Zero every activation's gradient (not the parameters'), so the tape can
 * be replayed again with other seeds: one term's gradient is then measured
 * alone (PixelGen's adaptive weight) while the parameter gradients keep
 * accumulating. */
void graph_clear_activation_grads(Graph *g);

#endif
