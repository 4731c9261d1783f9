/* dist/comm_nccl_none.c — the NCCL entry points of a build without the CUDA
 * backend (CMakeLists.txt picks this file or comm_nccl.c): each says what is
 * missing. */
#include "core/check.h"
#include "dist/comm.h"

#define NO_NCCL FAIL("NCCL needs the CUDA backend: rebuild with nvcc available (-DJIT_CUDA=ON)")

int comm_nccl_available(void) { return 0; }
void comm_nccl_init(Comm *c, void *compute_stream) { NO_NCCL; }
void comm_nccl_after_compute(Comm *c) { NO_NCCL; }
void comm_nccl_join(Comm *c) { NO_NCCL; }
void comm_nccl_allreduce_mean(Comm *c, float *dev_buf, size_t count) { NO_NCCL; }
void comm_nccl_reduce_mean(Comm *c, float *dev_buf, size_t count, int root) { NO_NCCL; }
void comm_nccl_broadcast(Comm *c, float *dev_buf, size_t count, int root) { NO_NCCL; }
void comm_nccl_group_begin(void) { NO_NCCL; }
void comm_nccl_group_end(void) { NO_NCCL; }
void comm_nccl_abort(Comm *c) { c->nccl = NULL; }
void comm_nccl_free(Comm *c) { c->nccl = NULL; }
