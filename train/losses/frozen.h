/* train/losses/frozen.h — the frozen networks' weight files (LPIPS's VGG16
 * and heads, DINOv2): HDF5 files made by scripts/pixelgen_weights.py, one
 * group of datasets under the public key names. Every problem stops with a
 * message naming the config key, the file and the dataset. */
#ifndef TRAIN_LOSSES_FROZEN_H
#define TRAIN_LOSSES_FROZEN_H

#include "core/params.h"

/* Fill a store from group `group` of file `path`: every parameter must have
 * a dataset of its shape (extra datasets are ignored); then params_push.
 * what: the config key naming the file (e.g. "losses.dino_weights"). */
void frozen_load_group(ParamStore *ps, const char *path, const char *what, const char *group);
/* The shape of one dataset (dims[0..nd)); stops when the file or the dataset
 * is missing, with `hint` saying what it should be. Returns nd. */
int frozen_dataset_shape(const char *path, const char *what, const char *dataset, int dims[8], const char *hint);
/* Mark every view of a store as taking no gradient (frozen weights). */
void frozen_views(ParamStore *ps);

#endif
