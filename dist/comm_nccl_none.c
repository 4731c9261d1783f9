/* dist/comm_nccl_none.c — the NCCL entry points of a build without the CUDA
 * backend (CMakeLists.txt picks this file or comm_nccl.c): each says what is
 * missing. */
#include "core/check.h"
#include "dist/comm.h"

int comm_nccl_available(void) { return 0; }
void comm_nccl_init(Comm *c) {
    (void)c;
    FAIL("NCCL needs the CUDA backend: rebuild with nvcc available (-DJIT_CUDA=ON)");
}
void comm_nccl_allreduce_f32(Comm *c, float *dev_buf, size_t count, CommOp op, void *stream) {
    FAIL("NCCL needs the CUDA backend: rebuild with nvcc available (-DJIT_CUDA=ON)");
}
void comm_nccl_abort(Comm *c) { c->nccl = NULL; }
void comm_nccl_free(Comm *c) { c->nccl = NULL; }
