/* dist/comm_nccl.c — NCCL side of the communicator: GPU buffers (see comm.h).
 * Built with the CUDA backend (CMakeLists.txt picks this file or
 * comm_nccl_none.c).
 *
 * NCCL is loaded at run time (core/dynlib.h) when comm_nccl_init first runs,
 * not linked: only the trainer's multi-GPU runs use it, and a linked libnccl
 * made every program of the CUDA build need libnccl.so.2 to start at all.
 * The emulator build (JIT_CUDA=EMU) links the emulator's NCCL stand-in and
 * binds the same table to it directly (JIT_NCCL_DLOPEN unset). */
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "dist/comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#ifdef JIT_NCCL_DLOPEN
#include "core/dynlib.h"
#define COMM_NCCL_LIB "libnccl.so.2"
#endif

/* The NCCL functions this file calls. */
static struct {
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*all_reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*comm_abort)(ncclComm_t);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    const char *(*get_error_string)(ncclResult_t);
} nccl;

static void comm_nccl_bind(void) {
    if (nccl.get_unique_id) return;
#ifdef JIT_NCCL_DLOPEN
    void *h = dynlib_open(COMM_NCCL_LIB, "data parallelism on GPUs (NCCL)");
#define COMM_NCCL_SYM(field, sym)                                                                            \
    do {                                                                                                     \
        void *p_ = dynlib_sym(h, COMM_NCCL_LIB, #sym);                                                       \
        memcpy(&nccl.field, &p_, sizeof p_);                                                                 \
    } while (0)
#else
#define COMM_NCCL_SYM(field, sym) nccl.field = sym
#endif
    COMM_NCCL_SYM(comm_init_rank, ncclCommInitRank);
    COMM_NCCL_SYM(all_reduce, ncclAllReduce);
    COMM_NCCL_SYM(comm_abort, ncclCommAbort);
    COMM_NCCL_SYM(comm_destroy, ncclCommDestroy);
    COMM_NCCL_SYM(get_error_string, ncclGetErrorString);
    COMM_NCCL_SYM(get_unique_id, ncclGetUniqueId); /* last: it marks the table bound */
#undef COMM_NCCL_SYM
}

#define NCCL_CHECK(call)                                                                                     \
    do {                                                                                                     \
        ncclResult_t r_ = (call);                                                                            \
        CHECK(r_ == ncclSuccess, "NCCL: %s failed: %s (check NCCL_DEBUG=INFO output)", #call,                \
              nccl.get_error_string(r_));                                                                    \
    } while (0)

int comm_nccl_available(void) { return 1; }

void comm_nccl_init(Comm *c) {
    int ndev = 0;
    CHECK(cudaGetDeviceCount(&ndev) == cudaSuccess && ndev > 0, "NCCL needs a CUDA device; none is visible");
    /* The local rank picks the GPU: one rank per GPU on each node. */
    CHECK(cudaSetDevice(c->local_rank % ndev) == cudaSuccess, "cannot select GPU %d", c->local_rank % ndev);
    comm_nccl_bind();
    ncclUniqueId id;
    if (c->rank == 0) NCCL_CHECK(nccl.get_unique_id(&id));
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c->mpi);
    ncclComm_t comm;
    NCCL_CHECK(nccl.comm_init_rank(&comm, c->world, id, c->rank));
    c->nccl = comm;
}

void comm_nccl_allreduce_f32(Comm *c, float *dev_buf, size_t count, CommOp op, void *stream) {
    CHECK(c->nccl, "comm_nccl_init was not called");
    ncclRedOp_t r = op == COMM_MAX ? ncclMax : op == COMM_MEAN ? ncclAvg : ncclSum;
    NCCL_CHECK(nccl.all_reduce(dev_buf, dev_buf, count, ncclFloat32, r, (ncclComm_t)c->nccl, (cudaStream_t)stream));
}

void comm_nccl_abort(Comm *c) {
    if (c->nccl) nccl.comm_abort((ncclComm_t)c->nccl);
    c->nccl = NULL;
}

void comm_nccl_free(Comm *c) {
    if (c->nccl) NCCL_CHECK(nccl.comm_destroy((ncclComm_t)c->nccl));
    c->nccl = NULL;
}
