/* core/optim.h — AdamW over the flat parameter buffer.
 *
 * One loop over all parameters: the moments live in two flat buffers laid
 * out like the parameters, so checkpoints and all-reduces see one array.
 * Weight decay applies only to parameters registered with weight_decay
 * (weight matrices); frozen parameters (requires_grad false) are skipped.
 * These loops run on host buffers (a ParamStore on the CPU); the same
 * semantics on device buffers are kernels/cuda/optim.cu's cuda_adamw_step,
 * cuda_ema_update, cuda_grad_norm and cuda_scale_grad. */
#ifndef CORE_OPTIM_H
#define CORE_OPTIM_H

#include <stdint.h>

#include "core/params.h"

typedef struct AdamW {
    float beta1, beta2, eps, weight_decay;
    float *m, *v;  /* first and second moments, ps->padded floats each */
    uint64_t step; /* updates taken, for bias correction */
} AdamW;

void adamw_init(AdamW *opt, const ParamStore *ps, float beta1, float beta2, float eps, float weight_decay);
void adamw_free(AdamW *opt);
/* One update with learning rate lr from the gradients in ps->grad. */
void adamw_step(AdamW *opt, ParamStore *ps, float lr);

/* EMA of the weights: ema = decay * ema + (1 - decay) * w, over the flat buffer. */
void ema_update(float *ema, const float *w, size_t n, float decay);
/* Global L2 norm of the gradients of trainable parameters (double accumulation). */
double params_grad_norm(const ParamStore *ps);
/* Multiply the gradients of trainable parameters by s. */
void params_scale_grad(ParamStore *ps, float s);

#endif
