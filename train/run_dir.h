/* train/run_dir.h — whose run directory this is: a new run does not start
 * on top of another run's checkpoints unless told to (issue 28).
 *
 * A fresh start (no --resume, or --resume auto in a directory without
 * checkpoints) in a run.out_dir whose ckpt/ holds checkpoints stops with a
 * message naming the three ways on: --resume auto (continue that run),
 * another run.out_dir, or --overwrite (delete them and start over). An
 * explicit --resume FILE into a directory whose "latest" belongs to another
 * run (another run id) is refused the same way. The run id that pruning
 * goes by (io/ckpt.h) is decided here: drawn anew by a fresh start, kept by
 * a resumed run. */
#ifndef TRAIN_RUN_DIR_H
#define TRAIN_RUN_DIR_H

#include <stddef.h>

#include "train/config/config.h"

/* Rank 0 only. ckdir: out_dir/ckpt. resumed_file and resumed_id: the
 * checkpoint this run resumed from and its run id (NULL: a fresh start);
 * explicit: it was named by path, not found by --resume auto. Stops with a
 * message when the directory is another run's; otherwise writes this run's
 * id into run_id. */
void run_dir_claim(const Config *c, const char *ckdir, const char *resumed_file, const char *resumed_id, int explicit,
                   char *run_id, size_t n);

#endif
