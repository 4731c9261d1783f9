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

#define CUDA_OK(call, what) CHECK((call) == cudaSuccess, "NCCL's streams: %s failed", what)

void comm_nccl_init(Comm *c, void *compute_stream) {
    /* The GPU is the one the backend selected (backend_open, by the local
     * rank): the communicator and its stream are made on the current device. */
    ncclUniqueId id;
    if (c->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c->mpi);
    ncclComm_t comm;
    NCCL_CHECK(ncclCommInitRank(&comm, c->world, id, c->rank));
    c->nccl = comm;
    cudaStream_t s;
    cudaEvent_t a, b;
    /* Non-blocking: ordered with the compute stream by the events only. */
    CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    CUDA_OK(cudaEventCreateWithFlags(&a, cudaEventDisableTiming), "cudaEventCreate");
    CUDA_OK(cudaEventCreateWithFlags(&b, cudaEventDisableTiming), "cudaEventCreate");
    c->nccl_stream = s, c->ev_compute = a, c->ev_comm = b, c->compute_stream = compute_stream;
}

static cudaStream_t comm_stream(Comm *c) {
    CHECK(c->nccl, "comm_nccl_init was not called");
    return (cudaStream_t)c->nccl_stream;
}

/* An event can be recorded again once waited on: a wait takes the record
 * current at the call. */
void comm_nccl_after_compute(Comm *c) {
    cudaStream_t s = comm_stream(c);
    CUDA_OK(cudaEventRecord((cudaEvent_t)c->ev_compute, (cudaStream_t)c->compute_stream), "cudaEventRecord");
    CUDA_OK(cudaStreamWaitEvent(s, (cudaEvent_t)c->ev_compute, 0), "cudaStreamWaitEvent");
}

void comm_nccl_join(Comm *c) {
    cudaStream_t s = comm_stream(c);
    CUDA_OK(cudaEventRecord((cudaEvent_t)c->ev_comm, s), "cudaEventRecord");
    CUDA_OK(cudaStreamWaitEvent((cudaStream_t)c->compute_stream, (cudaEvent_t)c->ev_comm, 0), "cudaStreamWaitEvent");
}

void comm_nccl_allreduce_mean(Comm *c, float *dev_buf, size_t count) {
    cudaStream_t s = comm_stream(c);
    NCCL_CHECK(ncclAllReduce(dev_buf, dev_buf, count, ncclFloat32, ncclAvg, (ncclComm_t)c->nccl, s));
}

void comm_nccl_reduce_mean(Comm *c, float *dev_buf, size_t count, int root) {
    cudaStream_t s = comm_stream(c);
    NCCL_CHECK(ncclReduce(dev_buf, dev_buf, count, ncclFloat32, ncclAvg, root, (ncclComm_t)c->nccl, s));
}

void comm_nccl_broadcast(Comm *c, float *dev_buf, size_t count, int root) {
    cudaStream_t s = comm_stream(c);
    NCCL_CHECK(ncclBroadcast(dev_buf, dev_buf, count, ncclFloat32, root, (ncclComm_t)c->nccl, s));
}

void comm_nccl_group_begin(void) { NCCL_CHECK(ncclGroupStart()); }
void comm_nccl_group_end(void) { NCCL_CHECK(ncclGroupEnd()); }

static void comm_nccl_streams_free(Comm *c) {
    if (c->nccl_stream) cudaStreamDestroy((cudaStream_t)c->nccl_stream);
    if (c->ev_compute) cudaEventDestroy((cudaEvent_t)c->ev_compute);
    if (c->ev_comm) cudaEventDestroy((cudaEvent_t)c->ev_comm);
    c->nccl_stream = c->ev_compute = c->ev_comm = c->compute_stream = NULL;
}

void comm_nccl_abort(Comm *c) {
    if (c->nccl) ncclCommAbort((ncclComm_t)c->nccl);
    c->nccl = NULL;
}

void comm_nccl_free(Comm *c) {
    if (c->nccl) {
        comm_nccl_streams_free(c); /* waits for what is queued on it */
        NCCL_CHECK(ncclCommDestroy((ncclComm_t)c->nccl));
    }
    c->nccl = NULL;
}
