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
    hid_t g = H5Gopen2(f, "params", H5P_DEFAULT);
    const JitConfig *c = &cfg->model;
    int missing = 0;
    for (int i = 0; i < m->params.n; i++) {
        const ParamInfo *p = &m->params.info[i];
        if (H5Lexists(g, p->name, H5P_DEFAULT) <= 0) {
            missing++;
            continue;
        }
        hid_t d = H5Dopen2(g, p->name, H5P_DEFAULT), sp = H5Dget_space(d);
        hsize_t dims[8];
        int nd = H5Sget_simple_extent_ndims(sp);
        H5Sget_simple_extent_dims(sp, dims, NULL);
        H5Sclose(sp), H5Dclose(d);
        int same = nd == p->ndim;
        for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)p->shape[k];
        if (same) continue;
        char file_shape[96] = "[", model_shape[96] = "[";
        for (int k = 0; k < nd && k < 4; k++)
            snprintf(file_shape + strlen(file_shape), sizeof file_shape - strlen(file_shape), "%s%llu", k ? ", " : "",
                     (unsigned long long)dims[k]);
        for (int k = 0; k < p->ndim; k++)
            snprintf(model_shape + strlen(model_shape), sizeof model_shape - strlen(model_shape), "%s%d",
                     k ? ", " : "", p->shape[k]);
        strcat(file_shape, "]"), strcat(model_shape, "]");
        FAIL("%s: a checkpoint of another model size than its saved configuration: params/%s is %s in the file "
             "but %s in the model the configuration describes (%s: depth %d, hidden %d, heads %d, img_size %d, "
             "patch %d)",
             path, p->name, file_shape, model_shape, cfg->model_name, c->depth, c->hidden, c->heads, c->img_size,
             c->patch);
    }
    H5Gclose(g);
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
