/* tests/cuda_emu/emu_streams_nccl.cc — emu_streams' NCCL scenario: the
 * NCCL stand-in's all-reduce, on a communication stream, of a buffer a
 * memset on another stream produces; right with the event wait, wrong and
 * reported without it, on every seed. A separate file because it needs
 * MPI's header, which the kernels' preprocessing does not see. One rank:
 * the ordering is this process's. */
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "include/cuda_runtime.h"
#include "include/nccl.h"

#define NK(call)                                                                                           \
    do {                                                                                                   \
        if ((call) != 0) {                                                                                 \
            fprintf(stderr, "emu_streams: %s failed\n", #call);                                            \
            exit(3);                                                                                       \
        }                                                                                                  \
    } while (0)

/* Exit 0 when the all-reduced buffer holds the memset's value, 4 when not. */
void emu_streams_nccl(int wait) {
    NK(MPI_Init(NULL, NULL));
    ncclUniqueId id;
    ncclComm_t comm;
    NK(ncclGetUniqueId(&id));
    NK(ncclCommInitRank(&comm, 1, id, 0));
    cudaStream_t compute, comms;
    NK(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
    NK(cudaStreamCreateWithFlags(&comms, cudaStreamNonBlocking));
    cudaEvent_t ready;
    NK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    enum { N = 1024 };
    float *grad, h[N];
    NK(cudaMalloc((void **)&grad, sizeof h));
    NK(cudaMemsetAsync(grad, 0x3f, sizeof h, compute)); /* the "gradient": 0x3f3f3f3f = 0.7470 */
    NK(cudaEventRecord(ready, compute));
    if (wait) NK(cudaStreamWaitEvent(comms, ready, 0));
    NK(ncclAllReduce(grad, grad, N, ncclFloat32, ncclSum, comm, comms));
    NK(cudaDeviceSynchronize());
    NK(cudaMemcpy(h, grad, sizeof h, cudaMemcpyDeviceToHost));
    float want;
    memset(&want, 0x3f, sizeof want);
    for (int i = 0; i < N; i++)
        if (h[i] != want) {
            fprintf(stderr, "emu_streams: grad[%d] = %g after the all-reduce, expected %g (it ran before the memset)\n",
                    i, h[i], want);
            exit(4);
        }
    NK(ncclCommDestroy(comm));
    MPI_Finalize();
    /* Without the exit handlers: LeakSanitizer (the sanitizer build) reports
     * what Open MPI's singleton start keeps, as nccl_test.sh notes. */
    fflush(NULL);
    _exit(0);
}
