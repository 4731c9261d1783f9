/* train/schedule.h — the learning-rate schedule (linear warm-up, then
 * constant or cosine) and the ramps callbacks use (linear or cosine). Pure
 * functions of the step, so a resumed run continues the same curve. */
#ifndef TRAIN_SCHEDULE_H
#define TRAIN_SCHEDULE_H

#include "train/config/config.h"

/* Learning rate for update `step` (0-based). */
float schedule_lr(const Config *c, long step);
/* From `from` at step0 to `to` at step0 + len, shaped linear or cosine; held outside. */
float schedule_ramp(float from, float to, long step, long step0, long len, RampShape shape);

#endif
