/* io/ckpt.h — checkpoints: one HDF5 file per checkpoint.
 *
 * Layout ("jit-ckpt-v1"): /params/<name> (one dataset per named parameter,
 * its own shape), /ema/<k>/<name> for each EMA decay k, /optim/m/<name> and
 * /optim/v/<name> (AdamW moments); root attributes: format, step, adam_step,
 * seed, loader_epoch, loader_offset, world_size, ema_decays, config (the
 * resolved YAML), code_version and run_id, as fixed-length strings. The
 * run id names the run (a fresh start draws one, a resumed run keeps its
 * checkpoint's): pruning deletes only files of the run that prunes. Every dataset is
 * one chunk with a Fletcher-32 checksum and the file is in HDF5's 1.10
 * format (checksummed metadata), so corruption is an error when read, not a
 * wrong model. Read it from Python by name:
 *   h5py.File(p)["params"]["blocks.0.attn.qkv.weight"][...]
 * With a Comm of several ranks the file is written with parallel HDF5
 * (MPI-IO): every rank makes the same sequence of HDF5 calls and writes its
 * share of each dataset's rows with collective I/O. Without a Comm (tests,
 * tools) it is written serially.
 * A checkpoint is written to "<name>.tmp" and renamed when complete, then
 * the text file "latest" in the directory is replaced (also by rename), so a
 * crash mid-write never leaves a half-written file that looks valid. */
#ifndef IO_CKPT_H
#define IO_CKPT_H

#include <stdint.h>

#include "core/optim.h"
#include "core/params.h"
#include "dist/comm.h"
#include "io/shards.h"

#define CKPT_FORMAT "jit-ckpt-v1"
#define CKPT_RUN_ID_MAX 48 /* "20261206-112447-9f3a0c21" and its NUL, with room */

typedef struct CkptState {
    uint64_t step;       /* optimizer updates done */
    uint64_t seed;
    LoaderPos pos;       /* the loader's next position */
    int world_size;      /* ranks of the run that wrote it */
    double aux_weight;   /* PixelGen's adaptive weight lambda (1 when the file has none) */
    char run_id[CKPT_RUN_ID_MAX]; /* the run it belongs to ("" in files of older versions and of tools) */
    /* save only: a step pruning keeps whatever keep_last says (0: none), the
     * newest checkpoint known to be followed by a good step (train/trainer.c) */
    uint64_t protect_step;
} CkptState;

/* Every buffer here is host memory: the parameters are read and written
 * through params->host, so a store on a device is staged by the caller
 * (params_pull before ckpt_save, params_push after ckpt_load), and so are
 * the moments and EMA copies (train/trainer_device.c does both). The file
 * does not say where it was trained: a GPU checkpoint resumes on the CPU
 * and back. */
typedef struct CkptData {
    ParamStore *params;  /* required */
    AdamW *opt;          /* optional (moments and its step) */
    float **ema;         /* optional: n_ema flat buffers shaped like params */
    const float *ema_decay;
    int n_ema;
    const char *config_yaml; /* saved as an attribute (save only) */
} CkptData;

/* Write dir/ckpt-<step>.h5 and point dir/latest at it; then prune the
 * files of the same run id (st->run_id; none when it is empty) at or below
 * st->step: keep the newest keep_last, every keep_every-th step (0: none
 * extra) and st->protect_step. Files of other runs, files without a run id
 * and files of higher steps (a branch this run abandoned by resuming from
 * an earlier checkpoint) are never deleted. Returns 0. */
int ckpt_save(Comm *comm, const char *dir, const CkptData *d, const CkptState *st, int keep_last, int keep_every);
/* Point dir/latest at path when path is a checkpoint in dir (and latest
 * names another): a diverged run's last good checkpoint. 1 when it moved. */
int ckpt_point_latest(const char *dir, const char *path);
/* Resolve a checkpoint argument: a file, or a directory whose "latest" names one. */
void ckpt_resolve(const char *path, char *out, size_t n);
/* For resuming a run from its directory: the checkpoint "latest" names if
 * it opens as a checkpoint, else the newest ckpt-*.h5 that does (a file cut
 * short on shared storage, say), with a warning naming both. Stops when
 * none is intact. Returns 1 when it fell back, 0 otherwise. */
int ckpt_resolve_intact(const char *dir, char *out, size_t len);
/* 1 when a buffer of d (host) holds NaN or Inf, with "params/<name>",
 * "optim/m/<name>", "optim/v/<name>" or "ema/<k>/<name>" in what; else 0.
 * Such a state is never written and never resumed from. */
int ckpt_find_nonfinite(const CkptData *d, char *what, size_t n);
/* Removes ckpt-*.h5.tmp left by writes that were killed (called at start,
 * before this run writes, and after every checkpoint). */
void ckpt_clean_stray(const char *dir);
/* 1 when the directory has a checkpoint: a "latest" file or a ckpt-*.h5. */
int ckpt_exists(const char *dir);
/* How many ckpt-*.h5 dir holds; the newest step in *newest (when any). */
int ckpt_count(const char *dir, uint64_t *newest);
/* Deletes dir's ckpt-*.h5, their .tmp and "latest" (a new run told to
 * start over in a used directory); returns how many checkpoints went. */
int ckpt_remove_all(const char *dir);
/* The run id of a checkpoint file into id ("" when it has none); 0, or -1
 * when the file does not open as HDF5. */
int ckpt_read_run_id(const char *path, char *id, size_t n);
/* A new run id: the start time and 32 random bits ("20261206-112447-9f3a0c21"). */
void ckpt_new_run_id(char *id, size_t n);
/* Load by name into d. Parameters of d->params absent from the file keep
 * their values and are counted in the return value (e.g. SLA2 routers when
 * loading a full-attention checkpoint); shape mismatches stop with the name.
 * config_yaml, when given, receives a malloc'ed copy of the saved config. */
int ckpt_load(const char *path, CkptData *d, CkptState *st, char **config_yaml);
/* The resolved YAML configuration saved in a checkpoint (malloc'ed), or NULL. */
char *ckpt_read_config(const char *path);

#endif
