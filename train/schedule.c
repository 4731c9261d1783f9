/* train/schedule.c — learning-rate schedule and ramps (see schedule.h). */
#include "train/schedule.h"

#include <math.h>

float schedule_lr(const Config *c, long step) {
    /* Linear warm-up: (s + 1) / W, so the first step already moves; the
     * official JiT recipe's s / W (optim.official_warmup) starts at 0. */
    if (c->warmup_steps > 0 && step < c->warmup_steps)
        return c->lr * (float)(step + (c->official_warmup ? 0 : 1)) / (float)c->warmup_steps;
    if (c->lr_schedule == LR_CONSTANT) return c->lr;
    long span = c->steps - c->warmup_steps;
    double p = span > 0 ? (double)(step - c->warmup_steps) / span : 1.0;
    if (p > 1.0) p = 1.0;
    return (float)(c->min_lr + (c->lr - c->min_lr) * 0.5 * (1.0 + cos(M_PI * p)));
}

float schedule_ramp(float from, float to, long step, long step0, long len, RampShape shape) {
    if (step <= step0) return from;
    if (len <= 0 || step >= step0 + len) return to;
    double p = (double)(step - step0) / len;
    if (shape == RAMP_COSINE) p = 0.5 * (1.0 - cos(M_PI * p));
    return (float)(from + (to - from) * p);
}
