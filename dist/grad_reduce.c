/* dist/grad_reduce.c — bucketed, asynchronous gradient reduction over MPI or
 * NCCL, all-reduced or reduce-scattered (see grad_reduce.h). */
#include "dist/grad_reduce.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <mpi.h>

#include "core/alloc.h"
#include "core/check.h"

void grad_reduce_init(GradReduce *r, Comm *comm, const Backend *be, ParamStore *ps, size_t bucket_bytes, int overlap,
                      int shard) {
    memset(r, 0, sizeof *r);
    r->comm = comm, r->ps = ps, r->be = be;
    r->world = comm ? comm->world : 1, r->rank = comm ? comm->rank : 0;
    /* The one place the transport follows the device: MPI reads host
     * memory, NCCL device memory. */
    r->nccl = be->device != DEVICE_CPU && r->world > 1;
    r->overlap = overlap >= 0 ? overlap : r->nccl;
    r->shard = shard && r->world > 1;
    r->bounds = core_malloc(sizeof(size_t) * (size_t)(r->world + 1));
    for (int k = 0; k <= r->world; k++) /* whole 16-float groups, as the parameters are padded */
        r->bounds[k] = ps->padded / 16 * (size_t)k / (size_t)r->world * 16; /* used when sharded */
    r->bounds[r->world] = ps->padded;
    /* Unsharded, every rank updates all of it. */
    r->lo = r->shard ? r->bounds[r->rank] : 0, r->hi = r->shard ? r->bounds[r->rank + 1] : ps->padded;

    r->first_use = core_malloc(sizeof(int) * (size_t)(ps->n ? ps->n : 1));
    r->buckets = core_calloc(sizeof(GradBucket) * (size_t)(ps->n ? ps->n : 1));
    size_t limit = bucket_bytes / sizeof(float);
    for (int i = 0; i < ps->n;) {
        GradBucket *b = &r->buckets[r->n_buckets++];
        b->p0 = i;
        b->off = ps->info[i].offset;
        size_t end = b->off;
        do { /* at least one parameter per bucket, then fill up to the limit */
            end = ps->info[i].offset + (ps->info[i].numel + 15) / 16 * 16;
            i++;
        } while (i < ps->n && end - b->off + ps->info[i].numel <= limit);
        b->p1 = i;
        b->count = end - b->off;
    }
    r->reqs = core_calloc(sizeof(MPI_Request) * (size_t)(r->n_buckets ? r->n_buckets : 1) * (size_t)r->world);
    if (r->nccl && !comm->nccl) comm_nccl_init(comm, be->stream());
}

void grad_reduce_free(GradReduce *r) {
    core_free(r->bounds);
    core_free(r->first_use);
    core_free(r->buckets);
    core_free(r->reqs);
    memset(r, 0, sizeof *r);
}

/* The bucket's part in rank k's range: [*a, *a + return). */
static size_t owned(const GradReduce *r, const GradBucket *b, int k, size_t *a) {
    size_t lo = b->off > r->bounds[k] ? b->off : r->bounds[k];
    size_t hi = b->off + b->count < r->bounds[k + 1] ? b->off + b->count : r->bounds[k + 1];
    *a = lo;
    return hi > lo ? hi - lo : 0;
}

static void launch(GradReduce *r, GradBucket *b) {
    b->launched = 1;
    float *grad = r->ps->grad;
    if (r->nccl) {
        /* After the kernels queued so far: those that produced its gradients. */
        comm_nccl_after_compute(r->comm);
        if (!r->shard) {
            comm_nccl_allreduce_mean(r->comm, grad + b->off, b->count);
            return;
        }
        comm_nccl_group_begin();
        for (int k = 0; k < r->world; k++) {
            size_t a, n = owned(r, b, k, &a);
            if (n) comm_nccl_reduce_mean(r->comm, grad + a, n, k);
        }
        comm_nccl_group_end();
        return;
    }
    if (!r->shard) {
        comm_iallreduce_sum_f32(r->comm, grad + b->off, b->count, &r->reqs[r->n_reqs++]);
        return;
    }
    for (int k = 0; k < r->world; k++) {
        size_t a, n = owned(r, b, k, &a);
        if (n) comm_ireduce_sum_f32(r->comm, grad + a, n, k, &r->reqs[r->n_reqs++]);
    }
}

static void after_entry(void *ctx, int entry) {
    GradReduce *r = ctx;
    for (int k = r->n_buckets - 1; k >= 0; k--) { /* later parameters finish first */
        GradBucket *b = &r->buckets[k];
        if (!b->launched && b->ready_at >= entry) launch(r, b);
    }
    if (!r->nccl) comm_progress(r->reqs, r->n_reqs);
}

void grad_reduce_arm(GradReduce *r, Graph *g) {
    if (r->world == 1) return;
    for (int i = 0; i < r->ps->n; i++) r->first_use[i] = INT_MAX;
    g->param_first_use = r->first_use;
    r->n_reqs = 0;
    for (int k = 0; k < r->n_buckets; k++) r->buckets[k].launched = 0;
}

const GraphBackwardHook *grad_reduce_start(GradReduce *r, Graph *g) {
    g->param_first_use = NULL;
    if (r->world == 1 || !r->overlap) return NULL;
    for (int k = 0; k < r->n_buckets; k++) {
        GradBucket *b = &r->buckets[k];
        b->ready_at = INT_MAX;
        for (int p = b->p0; p < b->p1; p++)
            if (r->first_use[p] < b->ready_at) b->ready_at = r->first_use[p];
    }
    r->hook = (GraphBackwardHook){after_entry, r};
    return &r->hook;
}

void grad_reduce_wait(GradReduce *r) {
    r->t_wait = 0.0;
    if (r->world == 1) return;
    for (int k = r->n_buckets - 1; k >= 0; k--)
        if (!r->buckets[k].launched) launch(r, &r->buckets[k]);
    if (r->nccl) { /* the update's kernels wait for the last bucket; the host goes on */
        comm_nccl_join(r->comm);
        return;
    }
    double t0 = MPI_Wtime();
    comm_wait(r->reqs, r->n_reqs);
    r->t_wait = MPI_Wtime() - t0;
    float inv = 1.0f / (float)r->world;
    float *gbuf = r->ps->grad + r->lo;
    size_t n = r->hi - r->lo;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) gbuf[i] *= inv;
}

double grad_reduce_sum(GradReduce *r, double mine) {
    if (r->shard) comm_allreduce_f64(r->comm, &mine, 1, COMM_SUM);
    return mine;
}

void grad_reduce_gather(GradReduce *r, float *buf) {
    if (!r->shard) return;
    if (!r->nccl) {
        comm_allgather_ranges_f32(r->comm, buf, r->bounds);
        return;
    }
    comm_nccl_after_compute(r->comm); /* the update's kernels */
    comm_nccl_group_begin();
    for (int k = 0; k < r->world; k++)
        if (r->bounds[k + 1] > r->bounds[k])
            comm_nccl_broadcast(r->comm, buf + r->bounds[k], r->bounds[k + 1] - r->bounds[k], k);
    comm_nccl_group_end();
    comm_nccl_join(r->comm);
    /* The other ranks' ranges changed behind the backend's back (its bf16
     * weight mirror: kernels/cuda/wmirror.cu). */
    if (r->be->written)
        for (int k = 0; k < r->world; k++)
            if (k != r->rank) r->be->written(buf + r->bounds[k], (r->bounds[k + 1] - r->bounds[k]) * sizeof(float));
}

void grad_reduce_gather_host(GradReduce *r, float *host) {
    if (r->shard) comm_allgather_ranges_f32(r->comm, host, r->bounds);
}

const char *grad_reduce_describe(const GradReduce *r, char *buf, size_t len) {
    if (r->world == 1) {
        snprintf(buf, len, "1 rank");
        return buf;
    }
    size_t most = 0;
    for (int k = 0; k < r->n_buckets; k++) most = r->buckets[k].count > most ? r->buckets[k].count : most;
    snprintf(buf, len, "%d ranks, gradients %s over %s in %d bucket%s of <= %.3g MB, %s backward%s", r->world,
             r->shard ? "reduce-scattered" : "all-reduced", r->nccl ? "NCCL on its own stream" : "MPI", r->n_buckets,
             r->n_buckets == 1 ? "" : "s", most * 4.0 / 1048576.0, r->overlap ? "overlapped with" : "after",
             r->shard ? ", optimizer state sharded (ZeRO-1), weights all-gathered" : "");
    return buf;
}
