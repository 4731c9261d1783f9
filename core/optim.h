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

/* The moments cover floats [lo, lo + n) of the flat buffers: all of them
 * (lo 0, n ps->padded), or one rank's shard when the optimiser state is
 * sharded over ranks (ZeRO-1, dist/grad_reduce.h); m[i - lo] belongs to
 * the parameter float i, and only those floats are updated. */
typedef struct AdamW {
    float beta1, beta2, eps, weight_decay;
    float *m, *v;  /* first and second moments, n floats each */
    size_t lo, n;  /* the floats of the flat buffer they cover */
    uint64_t step; /* updates taken, for bias correction */
} AdamW;

/* All of ps's floats. */
void adamw_init(AdamW *opt, const ParamStore *ps, float beta1, float beta2, float eps, float weight_decay);
/* Floats [lo, lo + n) (a shard). */
void adamw_init_range(AdamW *opt, size_t lo, size_t n, float beta1, float beta2, float eps, float weight_decay);
void adamw_free(AdamW *opt);
/* One update with learning rate lr from the gradients in ps->grad, of the
 * floats the moments cover. */
void adamw_step(AdamW *opt, ParamStore *ps, float lr);

/* EMA of the weights: ema = decay * ema + (1 - decay) * w, over the flat buffer. */
void ema_update(float *ema, const float *w, size_t n, float decay);
/* Global L2 norm of the gradients of trainable parameters (double accumulation). */
double params_grad_norm(const ParamStore *ps);
/* The sum of squares of the trainable gradients in floats [lo, hi), per
 * parameter in order (a shard's part of the squared norm). */
double params_grad_sq_range(const ParamStore *ps, size_t lo, size_t hi);
/* Multiply the gradients of trainable parameters by s (in floats [lo, hi)). */
void params_scale_grad(ParamStore *ps, float s);
void params_scale_grad_range(ParamStore *ps, float s, size_t lo, size_t hi);
/* The part of parameter i inside floats [lo, hi): its first float and
 * count (0 when none). */
size_t params_clip_range(const ParamStore *ps, int i, size_t lo, size_t hi, size_t *first);

#endif
