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
    ncclResult_t (*reduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*group_start)(void);
    ncclResult_t (*group_end)(void);
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
    COMM_NCCL_SYM(reduce, ncclReduce);
    COMM_NCCL_SYM(broadcast, ncclBroadcast);
    COMM_NCCL_SYM(group_start, ncclGroupStart);
    COMM_NCCL_SYM(group_end, ncclGroupEnd);
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

#define CUDA_OK(call, what) CHECK((call) == cudaSuccess, "NCCL's streams: %s failed", what)

void comm_nccl_init(Comm *c, void *compute_stream) {
    /* The GPU is the one the backend selected (backend_open, by the local
     * rank): the communicator and its stream are made on the current device. */
    comm_nccl_bind();
    ncclUniqueId id;
    if (c->rank == 0) NCCL_CHECK(nccl.get_unique_id(&id));
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c->mpi);
    ncclComm_t comm;
    NCCL_CHECK(nccl.comm_init_rank(&comm, c->world, id, c->rank));
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
    NCCL_CHECK(nccl.all_reduce(dev_buf, dev_buf, count, ncclFloat32, ncclAvg, (ncclComm_t)c->nccl, s));
}

void comm_nccl_reduce_mean(Comm *c, float *dev_buf, size_t count, int root) {
    cudaStream_t s = comm_stream(c);
    NCCL_CHECK(nccl.reduce(dev_buf, dev_buf, count, ncclFloat32, ncclAvg, root, (ncclComm_t)c->nccl, s));
}

void comm_nccl_broadcast(Comm *c, float *dev_buf, size_t count, int root) {
    cudaStream_t s = comm_stream(c);
    NCCL_CHECK(nccl.broadcast(dev_buf, dev_buf, count, ncclFloat32, root, (ncclComm_t)c->nccl, s));
}

void comm_nccl_group_begin(void) { NCCL_CHECK(nccl.group_start()); }
void comm_nccl_group_end(void) { NCCL_CHECK(nccl.group_end()); }

static void comm_nccl_streams_free(Comm *c) {
    if (c->nccl_stream) cudaStreamDestroy((cudaStream_t)c->nccl_stream);
    if (c->ev_compute) cudaEventDestroy((cudaEvent_t)c->ev_compute);
    if (c->ev_comm) cudaEventDestroy((cudaEvent_t)c->ev_comm);
    c->nccl_stream = c->ev_compute = c->ev_comm = c->compute_stream = NULL;
}

void comm_nccl_abort(Comm *c) {
    if (c->nccl) nccl.comm_abort((ncclComm_t)c->nccl);
    c->nccl = NULL;
}

void comm_nccl_free(Comm *c) {
    if (c->nccl) {
        comm_nccl_streams_free(c); /* waits for what is queued on it */
        NCCL_CHECK(nccl.comm_destroy((ncclComm_t)c->nccl));
    }
    c->nccl = NULL;
}
