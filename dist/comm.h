/* dist/comm.h — ranks and collectives for data-parallel training.
 *
 * One Comm per process. Rank, world size and local rank (the index among
 * the ranks on this node, which picks the GPU) come from MPI. Collectives on
 * CPU buffers go through MPI; on GPU buffers through NCCL (its unique id is
 * broadcast over MPI), when the CUDA backend is built. Counts are ELEMENTS,
 * never bytes. comm_init installs a failure hook: any CHECK that fails on
 * any rank aborts the whole job (MPI_Abort) instead of leaving the other
 * ranks waiting in a collective. */
#ifndef DIST_COMM_H
#define DIST_COMM_H

#include <stddef.h>

#include <mpi.h>

typedef enum { COMM_SUM = 0, COMM_MEAN = 1, COMM_MAX = 2 } CommOp;

typedef struct Comm {
    int rank, world;
    int local_rank, local_size;
    int owns_mpi; /* this process called MPI_Init and will finalize */
    MPI_Comm mpi;
    void *nccl;   /* ncclComm_t on CUDA builds once comm_nccl_init ran, else NULL */
    /* With nccl: the communication stream its collectives run on, the
     * compute stream they are ordered against, and the two events that
     * order them (cudaStream_t, cudaEvent_t). */
    void *nccl_stream, *compute_stream, *ev_compute, *ev_comm;
} Comm;

/* MPI_Init_thread (unless already initialised), ranks, local rank, abort hook. */
void comm_init(Comm *c, int *argc, char ***argv);
void comm_finalize(Comm *c);

/* In-place all-reduce of CPU buffers. */
void comm_allreduce_f32(Comm *c, float *buf, size_t count, CommOp op);
void comm_allreduce_f64(Comm *c, double *buf, size_t count, CommOp op);
void comm_allreduce_i32(Comm *c, int *buf, size_t count, CommOp op);
/* Non-blocking in-place sum of a CPU float buffer; complete with comm_wait. */
void comm_iallreduce_sum_f32(Comm *c, float *buf, size_t count, MPI_Request *req);
/* Non-blocking in-place sum onto rank root (the others' buf is only read). */
void comm_ireduce_sum_f32(Comm *c, float *buf, size_t count, int root, MPI_Request *req);
/* In place: rank k's floats [bounds[k], bounds[k + 1]) of buf to every rank. */
void comm_allgather_ranges_f32(Comm *c, float *buf, const size_t *bounds);
void comm_wait(MPI_Request *reqs, int n);
/* Poll outstanding requests so MPI makes progress while we compute. */
void comm_progress(MPI_Request *reqs, int n);
void comm_broadcast(Comm *c, void *buf, size_t bytes, int root);
/* Gather `bytes` from every rank into recv [world * bytes] on root, in rank
 * order (recv is only written on root; it may be NULL elsewhere). */
void comm_gather_bytes(Comm *c, const void *send, size_t bytes, void *recv, int root);
void comm_barrier(Comm *c);

/* GPU buffers through NCCL (CUDA builds): one communicator over all ranks,
 * the unique id broadcast from rank 0 over MPI, on the GPU the backend
 * selected (backend_open: the device is chosen there, once). Its
 * collectives run on a communication stream of their own: compute_stream
 * (a cudaStream_t) is the one the gradients are produced on. */
int comm_nccl_available(void);
void comm_nccl_init(Comm *c, void *compute_stream);
/* Orders: the communication stream's later work after everything queued
 * on the compute stream so far (an event recorded there now). */
void comm_nccl_after_compute(Comm *c);
/* Orders: the compute stream's later work after everything queued on the
 * communication stream so far. Neither blocks the host. */
void comm_nccl_join(Comm *c);
/* On the communication stream, in place: the mean over ranks of every
 * rank's buf (all-reduce), onto rank root only (reduce), or root's buf to
 * every rank (broadcast). Calls between group_begin and group_end are
 * issued together (NCCL's group semantics: several roots at once). */
void comm_nccl_allreduce_mean(Comm *c, float *dev_buf, size_t count);
void comm_nccl_reduce_mean(Comm *c, float *dev_buf, size_t count, int root);
void comm_nccl_broadcast(Comm *c, float *dev_buf, size_t count, int root);
void comm_nccl_group_begin(void);
void comm_nccl_group_end(void);
void comm_nccl_abort(Comm *c);
/* Orderly teardown (comm_finalize calls it); nothing when NCCL was not set up. */
void comm_nccl_free(Comm *c);

#endif
