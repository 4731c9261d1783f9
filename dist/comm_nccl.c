/* dist/comm_nccl.c — NCCL side of the communicator: GPU buffers (see comm.h).
 * Built with the CUDA backend (CMakeLists.txt picks this file or
 * comm_nccl_none.c). */
#include <stdio.h>

#include "core/check.h"
#include "dist/comm.h"

#include <cuda_runtime.h>
#include <nccl.h>

#define NCCL_CHECK(call)                                                                                     \
    do {                                                                                                     \
        ncclResult_t r_ = (call);                                                                            \
        CHECK(r_ == ncclSuccess, "NCCL: %s failed: %s (check NCCL_DEBUG=INFO output)", #call,                \
              ncclGetErrorString(r_));                                                                       \
    } while (0)

int comm_nccl_available(void) { return 1; }

void comm_nccl_init(Comm *c) {
    int ndev = 0;
    CHECK(cudaGetDeviceCount(&ndev) == cudaSuccess && ndev > 0, "NCCL needs a CUDA device; none is visible");
    /* The local rank picks the GPU: one rank per GPU on each node. */
    CHECK(cudaSetDevice(c->local_rank % ndev) == cudaSuccess, "cannot select GPU %d", c->local_rank % ndev);
    ncclUniqueId id;
    if (c->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c->mpi);
    ncclComm_t comm;
    NCCL_CHECK(ncclCommInitRank(&comm, c->world, id, c->rank));
    c->nccl = comm;
}

void comm_nccl_allreduce_f32(Comm *c, float *dev_buf, size_t count, CommOp op, void *stream) {
    CHECK(c->nccl, "comm_nccl_init was not called");
    ncclRedOp_t r = op == COMM_MAX ? ncclMax : op == COMM_MEAN ? ncclAvg : ncclSum;
    NCCL_CHECK(ncclAllReduce(dev_buf, dev_buf, count, ncclFloat32, r, (ncclComm_t)c->nccl, (cudaStream_t)stream));
}

void comm_nccl_abort(Comm *c) {
    if (c->nccl) ncclCommAbort((ncclComm_t)c->nccl);
    c->nccl = NULL;
}

void comm_nccl_free(Comm *c) {
    if (c->nccl) NCCL_CHECK(ncclCommDestroy((ncclComm_t)c->nccl));
    c->nccl = NULL;
}
