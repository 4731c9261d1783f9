/* train/model/jit_checkpoint.c — a JiT model from a checkpoint, the way
 * jit-sample, jit-eval and the tests load one (see jit_checkpoint.h). */
#include "train/model/jit_checkpoint.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/ckpt.h"
#include "io/h5.h"

/* Before loading: every parameter of the model the saved configuration
 * describes must have the same shape in the file. Says which one differs
 * and what the configuration is, instead of failing somewhere inside. */
static void check_shapes(const char *path, const JitModel *m, const Config *cfg) {
    io_hdf5_lock();
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(f >= 0, "%s: cannot open the checkpoint as HDF5 (missing, truncated or not a checkpoint)", path);
    CHECK(H5Lexists(f, "params", H5P_DEFAULT) > 0, "%s: not a checkpoint (no group 'params')", path);
    const JitConfig *c = &cfg->model;
    int missing;
    char detail[256];
    int bad = h5_param_group_check(f, path, "params", &m->params, &missing, detail, sizeof detail);
    CHECK(bad < 0,
          "%s: a checkpoint of another model size than its saved configuration: params/%s is %s the configuration "
          "describes (%s: depth %d, hidden %d, heads %d, img_size %d, patch %d)",
          path, bad >= 0 ? m->params.info[bad].name : "", detail, cfg->model_name, c->depth, c->hidden, c->heads,
          c->img_size, c->patch);
    H5Fclose(f);
    io_hdf5_unlock();
    CHECK(missing == 0,
          "%s: %d parameters of the model its saved configuration describes (%s, depth %d, hidden %d) are missing "
          "from the file: a checkpoint of another model than its configuration",
          path, missing, cfg->model_name, c->depth, c->hidden);
}

void jit_load_checkpoint(const char *ckpt, int *ema, JitModel *m, Config *cfg, uint64_t *step, char *path,
                         size_t pathlen) {
    ckpt_resolve(ckpt, path, pathlen);
    char *yaml = ckpt_read_config(path);
    CHECK(yaml != NULL, "%s has no saved configuration (not written by jit-train?)", path);
    config_load_string(cfg, path, yaml, 0, NULL);
    free(yaml);
    if (*ema == -2) *ema = cfg->n_ema > 0 ? 0 : -1;
    CHECK(*ema >= -1 && *ema < cfg->n_ema, "--ema %d: %s has %d EMA copies (use -1 for the raw weights)", *ema, path,
          cfg->n_ema);
    jit_build(m, &cfg->model, 0);
    check_shapes(path, m, cfg);
    float *emas[CFG_MAX_EMA] = {0};
    for (int k = 0; k < cfg->n_ema; k++) emas[k] = core_malloc(m->params.padded * sizeof(float));
    CkptData d = {.params = &m->params, .ema = emas, .n_ema = cfg->n_ema};
    CkptState st;
    CHECK(ckpt_load(path, &d, &st, NULL) == 0, "%s does not hold every parameter of its own model", path);
    if (*ema >= 0) memcpy(m->params.host, emas[*ema], m->params.padded * sizeof(float));
    params_push(&m->params);
    for (int k = 0; k < cfg->n_ema; k++) core_free(emas[k]);
    *step = st.step;
}
