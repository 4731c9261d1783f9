/* train/callbacks.h — Lightning-like hooks that steer SLA2 during training,
 * configured in the YAML `callbacks:` list:
 *   RouterParameterScheduler  top-k ratio from a start to a target over a
 *                             warm-up (linear or cosine; one block or all);
 *   SLA2QATCallback           QAT switched on at a step (logged);
 *   QuantizedAttentionMonitor SLA2 statistics and quantisation error every n steps;
 *   SLA2Conversion            the paper's two-stage conversion of a
 *                             full-attention checkpoint.
 * Every effect is a pure function of the step, so a resumed run reaches the
 * same state as an uninterrupted one. */
#ifndef TRAIN_CALLBACKS_H
#define TRAIN_CALLBACKS_H

#include "train/trainer.h"

void callbacks_on_train_start(Trainer *T);
/* Before the step's forward: ratios, QAT, conversion stage, statistics. */
void callbacks_on_step_start(Trainer *T);
/* After the update: adds the callbacks' fields to the step's metrics record. */
void callbacks_on_step_end(Trainer *T);
void callbacks_on_checkpoint(Trainer *T, const char *path);
void callbacks_on_train_end(Trainer *T);

#endif
