/* dist/grad_reduce.h — the gradient reduction of a data-parallel step: one
 * interface on every device, bucketed and asynchronous, with the optimiser
 * state optionally sharded over the ranks (ZeRO-1).
 *
 * The transport is chosen here, once, from the backend: MPI on host memory
 * (the CPU), NCCL on device memory (the CUDA backend; under the emulator the
 * NCCL stand-in over MPI). The trainer calls the same functions either way:
 *
 *   grad_reduce_arm(r, g)            before the forward of the step's last
 *                                    micro-batch: the tape notes, for every
 *                                    parameter, the first entry that reads it
 *   hook = grad_reduce_start(r, g)   between that forward and its backward;
 *   graph_backward_hooked(g, hook)   once an entry's backward has run, the
 *                                    parameters it was the first reader of
 *                                    have final gradients: each bucket whose
 *                                    parameters are all final is reduced at
 *                                    once, while backward goes on
 *   grad_reduce_wait(r)              the rest launched, the reductions done:
 *                                    this rank's range [lo, hi) of ps->grad
 *                                    holds the mean gradient over the ranks
 *   ... norm (grad_reduce_sum), clip, update of [lo, hi) ...
 *   grad_reduce_gather(r, ps->data)  sharded: every rank's updated range to
 *                                    every rank (all-gather); else nothing
 *
 * Buckets are runs of consecutive parameters of about bucket_bytes, reduced
 * in the order backward finishes them (the last parameters first).
 *
 * Unsharded, every bucket is all-reduced and [lo, hi) is all of it.
 * Sharded (dist.shard_optimizer), the flat buffer is cut into one
 * contiguous range per rank (16-float aligned) and every bucket is
 * reduce-scattered: the part of it inside rank k's range is reduced onto
 * rank k alone (one reduce per owner, grouped), so each rank ends with the
 * mean gradient of its own range, updates only that range (its AdamW
 * moments and EMA copies are that size) and the weights are all-gathered.
 * Per rank that moves the same bytes as an all-reduce (a reduce-scatter
 * plus an all-gather) and keeps 1/world of the moments.
 *
 * MPI: non-blocking MPI_Iallreduce / MPI_Ireduce per bucket, polled after
 * every tape entry so MPI makes progress; the wait scales by 1/world. The
 * gather is MPI_Allgatherv in place. Overlap is off by default on CPU ranks
 * (dist.allreduce auto): the kernels already use every core and the polling
 * steals compute (measured on B/16 with 2 ranks: 9.43 s per step overlapped
 * against 6.27 s blocking); blocking launches the same buckets after
 * backward, with the same result.
 *
 * NCCL: every bucket on the communicator's own stream (dist/comm.h), after
 * an event recorded on the compute stream behind the kernels that produced
 * its gradients, so backward's kernels keep running while it is reduced;
 * the wait only makes the compute stream wait for the communication stream
 * (an event), the host does not block. Overlap is on by default there.
 *
 * Equality: the same buckets are reduced whatever the mode, so overlapped
 * and blocking give the same bits. Sharded against unsharded: with 2 ranks
 * every reduction is one addition (commutative, exact ordering), so the
 * gradients are the same bits; with 3 or more the reduce and the
 * all-reduce may add in different orders (MPI's and NCCL's algorithms
 * choose), a difference of an ulp or so per element. The squared norm is
 * summed per shard and the shards' sums added, so it may differ from the
 * unsharded one in the last bits of a double; the clip factor is a float
 * computed from it. docs/dist.md states the resulting bound. */
#ifndef DIST_GRAD_REDUCE_H
#define DIST_GRAD_REDUCE_H

#include "core/backend.h"
#include "core/graph.h"
#include "core/params.h"
#include "dist/comm.h"

typedef struct GradBucket {
    int p0, p1;        /* parameters [p0, p1) */
    size_t off, count; /* floats of the flat gradient buffer */
    int ready_at;      /* lowest first-use tape index of its parameters */
    int launched;
} GradBucket;

typedef struct GradReduce {
    Comm *comm; /* NULL, or a world of 1: nothing to reduce */
    ParamStore *ps;
    const Backend *be; /* told about the weights the all-gather writes (Backend.written) */
    int world, rank;
    int nccl;    /* the transport: NCCL on device memory, else MPI */
    int overlap; /* buckets launched during backward (else after it) */
    int shard;   /* ZeRO-1: reduce-scatter, update [lo, hi), all-gather */
    size_t *bounds; /* [world + 1]: rank k's range is [bounds[k], bounds[k + 1]) */
    size_t lo, hi;  /* this rank's range */
    GradBucket *buckets;
    int n_buckets;
    MPI_Request *reqs; /* MPI: up to world per bucket */
    int n_reqs;
    int *first_use; /* [ps->n] */
    GraphBackwardHook hook;
    double t_wait; /* seconds the host spent in the last grad_reduce_wait */
} GradReduce;

/* overlap: 1 on, 0 off, -1 the device's default (above). shard: ZeRO-1.
 * comm NULL: one process; every function then does nothing but say [lo,
 * hi) is everything. On NCCL, sets up the communicator and its stream. */
void grad_reduce_init(GradReduce *r, Comm *comm, const Backend *be, ParamStore *ps, size_t bucket_bytes, int overlap,
                      int shard);
void grad_reduce_free(GradReduce *r);
void grad_reduce_arm(GradReduce *r, Graph *g);
/* The hook for that forward's backward (graph_backward_hooked). */
const GraphBackwardHook *grad_reduce_start(GradReduce *r, Graph *g);
void grad_reduce_wait(GradReduce *r);
/* The sum over ranks of one double per rank (a shard's squared norm); the
 * value itself when the ranges are not sharded (every rank has all of it). */
double grad_reduce_sum(GradReduce *r, double mine);
/* Sharded: buf (ps->padded floats, the backend's memory) gets every rank's
 * range from that rank. Not sharded: nothing. */
void grad_reduce_gather(GradReduce *r, float *buf);
/* The same for a host buffer (checkpoint staging), on any device. */
void grad_reduce_gather_host(GradReduce *r, float *host);
/* "2 ranks, gradients all-reduced over MPI in 3 buckets of <= 4.0 MB, after backward" */
const char *grad_reduce_describe(const GradReduce *r, char *buf, size_t len);

#endif
