/* kernels/cuda/sla2_stats.cu — SLA2's per-head diagnostics for the CUDA
 * backend: the inputs and saved fields come to the host and the CPU's
 * reference computes them (kernels/cpu/sla2_stats.c). The monitor asks a few
 * times per run, so the copies cost nothing that matters, and the numbers
 * are by construction the CPU's (test_cuda_attn holds the saved fields to
 * the CPU's meaning). */
#include <stdlib.h>

#include "kernels/cuda/cuda_common.cuh"

extern "C" {
#include "kernels/cpu/cpu.h"
}

static float *host_copy(const float *src, size_t n) {
    if (!src) return NULL;
    float *h = (float *)malloc(n * sizeof(float));
    CHECK(h != NULL, "SLA2 statistics: out of host memory (%zu floats)", n);
    cuda_memcpy_d2h(h, src, n * sizeof(float));
    return h;
}

extern "C" void cuda_sla2_stats(Sla2Stats *st, const float *out, const Sla2Saved *sv, const float *q, const float *k,
                                const float *v, const float *alpha_logit, const Sla2Dims *dm) {
    size_t nbh = (size_t)dm->B * dm->H, blk = nbh * dm->nq * dm->nk, tok = nbh * dm->N * dm->d;
    Sla2Saved h = {};
    h.mask = host_copy(sv->mask, blk), h.pc = host_copy(sv->pc, blk), h.lse = host_copy(sv->lse, nbh * dm->N);
    h.o_s = host_copy(sv->o_s, tok), h.o_s_fp = host_copy(sv->o_s_fp, tok), h.o_l = host_copy(sv->o_l, tok);
    float *ho = host_copy(out, tok), *hq = host_copy(q, tok), *hk = host_copy(k, tok), *hv = host_copy(v, tok);
    float *ha = host_copy(alpha_logit, (size_t)dm->H);
    cpu_sla2_stats(st, ho, &h, hq, hk, hv, ha, dm);
    free(h.mask), free(h.pc), free(h.lse), free(h.o_s), free(h.o_s_fp), free(h.o_l);
    free(ho), free(hq), free(hk), free(hv), free(ha);
}
