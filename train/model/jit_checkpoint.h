/* train/model/jit_checkpoint.h — a JiT model from a checkpoint file or run
 * directory: its saved configuration, the model it describes, and the
 * weights (raw or an EMA copy), checked against each other first. */
#ifndef TRAIN_MODEL_JIT_CHECKPOINT_H
#define TRAIN_MODEL_JIT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "train/config/config.h"
#include "train/model/jit.h"

/* Build the model a checkpoint's saved configuration describes and load its
 * weights (EMA copy `ema`, or -1 raw; -2 picks 0 when there is one). Stops
 * with the reason when the checkpoint is missing, has no configuration, or
 * its parameters do not fit its configuration (a checkpoint of another model
 * size). *ema is set to the copy used; path receives the resolved file. */
void jit_load_checkpoint(const char *ckpt, int *ema, JitModel *m, Config *cfg, uint64_t *step, char *path,
                         size_t pathlen);

#endif
