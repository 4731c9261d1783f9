/* dist/comm.c — MPI side of the communicator (see comm.h). */
#include "dist/comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

/* Under AddressSanitizer, what Open MPI allocates while it starts and stops
 * (its components are dlclose'd at MPI_Finalize, so LeakSanitizer cannot
 * even name their frames) is not this program's to free: leak detection is
 * paused around MPI_Init and MPI_Finalize, and stays on for everything else.
 * MPI_Init also leaves the main thread a dynamic TLS block (libOpenCL's, via
 * hwloc's plugin) that GCC 12's runtime can misread at the exit check, which
 * then dies: core/sanitizer_options.c turns that interception off. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define COMM_LSAN_PAUSE() __lsan_disable()
#define COMM_LSAN_RESUME() __lsan_enable()
#else
#define COMM_LSAN_PAUSE() ((void)0)
#define COMM_LSAN_RESUME() ((void)0)
#endif

static Comm *comm_global; /* for the abort hook */

/* A failed CHECK on any rank ends the job: peers blocked in a collective
 * would otherwise wait for ever. */
static void comm_fail_hook(void) {
    if (!comm_global) return;
    fprintf(stderr, "error: rank %d of %d failed; aborting the job\n", comm_global->rank, comm_global->world);
    fflush(stderr);
    if (comm_global->nccl) comm_nccl_abort(comm_global);
    MPI_Abort(comm_global->mpi, 1);
}

void comm_init(Comm *c, int *argc, char ***argv) {
    memset(c, 0, sizeof *c);
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        /* FUNNELED: only the main thread calls MPI (the loader thread never does). */
        COMM_LSAN_PAUSE();
        MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        COMM_LSAN_RESUME();
        c->owns_mpi = 1;
    }
    c->mpi = MPI_COMM_WORLD;
    MPI_Comm_rank(c->mpi, &c->rank);
    MPI_Comm_size(c->mpi, &c->world);
    MPI_Comm node;
    MPI_Comm_split_type(c->mpi, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_size(node, &c->local_size);
    MPI_Comm_free(&node);
    comm_global = c;
    check_set_fail_hook(comm_fail_hook);
}

void comm_finalize(Comm *c) {
    comm_nccl_free(c); /* before MPI goes: NCCL's teardown may still talk to the peers */
    check_set_fail_hook(NULL);
    comm_global = NULL;
    if (c->owns_mpi) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) {
            COMM_LSAN_PAUSE();
            MPI_Finalize();
            COMM_LSAN_RESUME();
        }
    }
    c->owns_mpi = 0;
}

static MPI_Op mpi_op(CommOp op) { return op == COMM_MAX ? MPI_MAX : MPI_SUM; }

/* MPI counts are ints: large buffers go in pieces. */
#define COMM_CHUNK ((size_t)1 << 30)

void comm_allreduce_f32(Comm *c, float *buf, size_t count, CommOp op) {
    if (c->world > 1)
        for (size_t off = 0; off < count; off += COMM_CHUNK) {
            size_t n = count - off < COMM_CHUNK ? count - off : COMM_CHUNK;
            MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)n, MPI_FLOAT, mpi_op(op), c->mpi);
        }
    if (op == COMM_MEAN && c->world > 1)
        for (size_t i = 0; i < count; i++) buf[i] /= (float)c->world;
}

void comm_allreduce_f64(Comm *c, double *buf, size_t count, CommOp op) {
    if (c->world > 1) MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_DOUBLE, mpi_op(op), c->mpi);
    if (op == COMM_MEAN && c->world > 1)
        for (size_t i = 0; i < count; i++) buf[i] /= c->world;
}

void comm_allreduce_i32(Comm *c, int *buf, size_t count, CommOp op) {
    CHECK(op != COMM_MEAN, "integer all-reduce supports sum and max");
    if (c->world > 1) MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_INT, mpi_op(op), c->mpi);
}

void comm_iallreduce_sum_f32(Comm *c, float *buf, size_t count, MPI_Request *req) {
    CHECK(count <= (size_t)INT_MAX, "bucket of %zu elements is too large for one MPI request", count);
    if (c->world == 1) {
        *req = MPI_REQUEST_NULL;
        return;
    }
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, c->mpi, req);
}

void comm_ireduce_sum_f32(Comm *c, float *buf, size_t count, int root, MPI_Request *req) {
    CHECK(count <= (size_t)INT_MAX, "bucket of %zu elements is too large for one MPI request", count);
    if (c->world == 1) {
        *req = MPI_REQUEST_NULL;
        return;
    }
    if (c->rank == root) MPI_Ireduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, root, c->mpi, req);
    else MPI_Ireduce(buf, NULL, (int)count, MPI_FLOAT, MPI_SUM, root, c->mpi, req);
}

void comm_allgather_ranges_f32(Comm *c, float *buf, const size_t *bounds) {
    if (c->world == 1) return;
    int *counts = core_malloc(sizeof(int) * 2 * (size_t)c->world), *displs = counts + c->world;
    for (int k = 0; k < c->world; k++) {
        CHECK(bounds[k + 1] <= (size_t)INT_MAX, "a shard ending at float %zu is too large for MPI_Allgatherv",
              bounds[k + 1]);
        counts[k] = (int)(bounds[k + 1] - bounds[k]), displs[k] = (int)bounds[k];
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, c->mpi);
    core_free(counts);
}

void comm_wait(MPI_Request *reqs, int n) {
    if (n > 0) MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE);
}

void comm_progress(MPI_Request *reqs, int n) {
    int done;
    if (n > 0) MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
}

void comm_broadcast(Comm *c, void *buf, size_t bytes, int root) {
    if (c->world == 1) return;
    for (size_t off = 0; off < bytes; off += COMM_CHUNK) {
        size_t n = bytes - off < COMM_CHUNK ? bytes - off : COMM_CHUNK;
        MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, c->mpi);
    }
}

void comm_gather_bytes(Comm *c, const void *send, size_t bytes, void *recv, int root) {
    if (c->world == 1) {
        memcpy(recv, send, bytes);
        return;
    }
    /* In pieces of COMM_CHUNK: MPI counts are ints. Piece k of every rank lands at rank * bytes + off. */
    size_t piece = bytes < COMM_CHUNK ? bytes : COMM_CHUNK;
    char *tmp = c->rank == root ? malloc((piece ? piece : 1) * (size_t)c->world) : NULL;
    CHECK(c->rank != root || tmp != NULL, "comm_gather_bytes: out of memory");
    for (size_t off = 0; off < bytes; off += COMM_CHUNK) {
        size_t n = bytes - off < COMM_CHUNK ? bytes - off : COMM_CHUNK;
        MPI_Gather((const char *)send + off, (int)n, MPI_BYTE, tmp, (int)n, MPI_BYTE, root, c->mpi);
        if (tmp)
            for (int r = 0; r < c->world; r++) memcpy((char *)recv + (size_t)r * bytes + off, tmp + (size_t)r * n, n);
    }
    free(tmp);
}

void comm_barrier(Comm *c) {
    if (c->world > 1) MPI_Barrier(c->mpi);
}

