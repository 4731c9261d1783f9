/* core/recompute.h — recomputation (activation checkpointing) on the tape.
 *
 * graph_recompute(g, fn, ctx, ...) runs a segment of the forward (fn: a
 * function of its input tensors and the parameters it reads) with its
 * activations in the graph's scratch arena, keeps only its output (copied
 * into the step arena) and records ONE tape entry for it. That entry's
 * backward runs fn again on the same inputs, in the scratch arena, replays
 * the segment's own tape in reverse from the output's gradient, and empties
 * the scratch arena. Memory: the step keeps each segment's inputs and
 * output instead of everything inside it; the scratch arena holds one
 * segment's activations and gradients at a time.
 *
 * Gradients are bit-identical to running fn without recomputation on a
 * deterministic backend (the CPU): the replayed forward computes the same
 * values from the same inputs, and every gradient is accumulated by the same
 * kernels in the same order into the same buffers (the segment's inputs'
 * gradient buffers are the step's own, not copies added afterwards). The
 * dropout counter is wound back for the replay, so its Philox streams and
 * masks repeat. The gradient all-reduce's readiness (param_first_use) sees
 * the segment's entry as the first use of every parameter inside it.
 *
 * fn must compute its output from its inputs, the parameters and ctx alone
 * (ctx is copied, ctx_bytes, into host memory of the step; fn may change its
 * copy, e.g. to skip diagnostics in the replay), and must not keep pointers
 * to its intermediate tensors beyond the call (they are freed).
 * Without gradient recording (sampling, evaluation) or when no input and no
 * parameter needs a gradient, fn simply runs once. Segments do not nest. */
#ifndef CORE_RECOMPUTE_H
#define CORE_RECOMPUTE_H

#include "core/graph.h"

#define RECOMPUTE_MAX_INPUTS 4

typedef Tensor *(*RecomputeFn)(Graph *g, void *ctx, Tensor *const *in);

Tensor *graph_recompute(Graph *g, RecomputeFn fn, void *ctx, size_t ctx_bytes, int n_in, Tensor *const *in);

#endif
