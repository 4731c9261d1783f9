/* dist/grad_sync.c — bucketed, overlapped gradient all-reduce (see grad_sync.h). */
#include "dist/grad_sync.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "core/alloc.h"
#include "core/check.h"

void grad_sync_init(GradSync *s, Comm *c, ParamStore *ps, size_t bucket_bytes, int overlap) {
    memset(s, 0, sizeof *s);
    s->comm = c, s->ps = ps, s->overlap = overlap;
    s->first_use = core_malloc(sizeof(int) * (size_t)(ps->n ? ps->n : 1));
    s->buckets = core_calloc(sizeof(GradBucket) * (size_t)(ps->n ? ps->n : 1));
    size_t limit = bucket_bytes / sizeof(float);
    for (int i = 0; i < ps->n;) {
        GradBucket *b = &s->buckets[s->n_buckets++];
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
    s->reqs = core_calloc(sizeof(MPI_Request) * (size_t)(s->n_buckets ? s->n_buckets : 1));
}

void grad_sync_free(GradSync *s) {
    core_free(s->first_use);
    core_free(s->buckets);
    core_free(s->reqs);
    memset(s, 0, sizeof *s);
}

static void launch(GradSync *s, GradBucket *b) {
    b->launched = 1;
    comm_iallreduce_sum_f32(s->comm, s->ps->grad + b->off, b->count, &s->reqs[s->n_launched++]);
}

static void after_entry(void *ctx, int entry) {
    GradSync *s = ctx;
    for (int k = s->n_buckets - 1; k >= 0; k--) { /* later parameters finish first */
        GradBucket *b = &s->buckets[k];
        if (!b->launched && b->ready_at >= entry) launch(s, b);
    }
    comm_progress(s->reqs, s->n_launched);
}

void grad_sync_arm(GradSync *s, Graph *g) {
    for (int i = 0; i < s->ps->n; i++) s->first_use[i] = INT_MAX;
    g->param_first_use = s->first_use;
    g->after_backward = NULL; /* set once the forward has recorded first uses */
    g->after_backward_ctx = s;
    s->n_launched = 0;
    for (int k = 0; k < s->n_buckets; k++) s->buckets[k].launched = 0;
}

void grad_sync_ready(GradSync *s, Graph *g) {
    for (int k = 0; k < s->n_buckets; k++) {
        GradBucket *b = &s->buckets[k];
        b->ready_at = INT_MAX;
        for (int p = b->p0; p < b->p1; p++)
            if (s->first_use[p] < b->ready_at) b->ready_at = s->first_use[p];
    }
    g->param_first_use = NULL;
    if (s->comm->world > 1 && s->overlap) g->after_backward = after_entry;
    s->t_comm_start = MPI_Wtime();
}

void grad_sync_finish(GradSync *s, Graph *g) {
    g->after_backward = NULL;
    g->param_first_use = NULL;
    if (s->comm->world == 1) return;
    for (int k = s->n_buckets - 1; k >= 0; k--)
        if (!s->buckets[k].launched) launch(s, &s->buckets[k]);
    double t0 = MPI_Wtime();
    comm_wait(s->reqs, s->n_launched);
    s->t_wait = MPI_Wtime() - t0;
    float inv = 1.0f / (float)s->comm->world;
    float *gbuf = s->ps->grad;
    size_t n = s->ps->padded;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) gbuf[i] *= inv;
}
