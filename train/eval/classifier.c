/* train/eval/classifier.c — the evaluation ViT: parameters, forward, batched
 * inference and the weights file (see classifier.h). */
#include "train/eval/classifier.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/ops.h"
#include "io/fsutil.h"
#include "io/h5.h"
#include "io/shards.h"

#define CLS_RMS_EPS 1e-6f

void classifier_config_finish(ClassifierConfig *c) {
    CHECK(c->img_size > 0 && c->channels > 0, "classifier: img_size %d and channels %d must be positive", c->img_size,
          c->channels);
    CHECK(c->patch > 0 && c->img_size % c->patch == 0, "classifier: img_size %d is not a multiple of patch %d",
          c->img_size, c->patch);
    if (c->window == 0) c->window = c->patch;
    CHECK(c->window >= c->patch && (c->window - c->patch) % 2 == 0,
          "classifier: window %d must be the patch size %d or larger by an even number", c->window, c->patch);
    CHECK(c->depth >= 1 && c->depth <= 64, "classifier: depth %d outside [1, 64]", c->depth);
    CHECK(c->heads > 0 && c->hidden > 0 && c->hidden % c->heads == 0,
          "classifier: hidden %d must be a positive multiple of heads %d", c->hidden, c->heads);
    CHECK(!c->rope || (c->hidden / c->heads) % 4 == 0, "classifier: 2D RoPE needs hidden/heads = %d divisible by 4",
          c->hidden / c->heads);
    CHECK(c->mlp_hidden > 0, "classifier: mlp_hidden %d must be positive", c->mlp_hidden);
    CHECK(c->num_classes >= 2, "classifier: num_classes %d must be at least 2", c->num_classes);
    c->grid = c->img_size / c->patch;
    c->tokens = c->grid * c->grid;
    c->head_dim = c->hidden / c->heads;
}

/* ------------------------------------------------------------ parameters */

void classifier_build(Classifier *m, const ClassifierConfig *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    classifier_config_finish(&m->cfg);
    m->test_accuracy = -1;
    const ClassifierConfig *c = &m->cfg;
    int D = c->hidden, P = c->channels * c->window * c->window;
    params_create(&m->params);
    m->blocks = core_calloc((size_t)c->depth * sizeof(ClsBlock));
    ParamReg r;
    param_reg_init(&r, &m->params);
    param_reg_linear(&r, &m->patch_w, &m->patch_b, "patch_embed", D, P, INIT_XAVIER_UNIFORM, 0.0f);
    param_reg_add(&r, &m->pos, "pos_embed", INIT_NORMAL, 0.02f, false, 2, c->tokens, D);
    char pre[PARAM_NAME_MAX], name[PARAM_NAME_MAX];
    for (int i = 0; i < c->depth; i++) {
        ClsBlock *b = &m->blocks[i];
        snprintf(name, sizeof name, "blocks.%d.norm1.weight", i);
        param_reg_add(&r, &b->norm1, name, INIT_ONE, 0.0f, false, 1, D, 0);
        snprintf(pre, sizeof pre, "blocks.%d.attn.qkv", i);
        param_reg_linear(&r, &b->qkv_w, &b->qkv_b, pre, 3 * D, D, INIT_XAVIER_UNIFORM, 0.0f);
        if (c->rope) {
            snprintf(name, sizeof name, "blocks.%d.attn.q_norm.weight", i);
            param_reg_add(&r, &b->q_norm, name, INIT_ONE, 0.0f, false, 1, c->head_dim, 0);
            snprintf(name, sizeof name, "blocks.%d.attn.k_norm.weight", i);
            param_reg_add(&r, &b->k_norm, name, INIT_ONE, 0.0f, false, 1, c->head_dim, 0);
        }
        snprintf(pre, sizeof pre, "blocks.%d.attn.proj", i);
        /* the residual branches' output projections start at zero: every block starts as the identity */
        param_reg_linear(&r, &b->proj_w, &b->proj_b, pre, D, D, INIT_ZERO, 0.0f);
        snprintf(name, sizeof name, "blocks.%d.norm2.weight", i);
        param_reg_add(&r, &b->norm2, name, INIT_ONE, 0.0f, false, 1, D, 0);
        snprintf(pre, sizeof pre, "blocks.%d.mlp.w12", i);
        param_reg_linear(&r, &b->w12_w, &b->w12_b, pre, 2 * c->mlp_hidden, D, INIT_XAVIER_UNIFORM, 0.0f);
        snprintf(pre, sizeof pre, "blocks.%d.mlp.w3", i);
        param_reg_linear(&r, &b->w3_w, &b->w3_b, pre, D, c->mlp_hidden, INIT_ZERO, 0.0f);
    }
    param_reg_add(&r, &m->norm, "norm.weight", INIT_ONE, 0.0f, false, 1, D, 0);
    param_reg_linear(&r, &m->head_w, &m->head_b, "head", c->num_classes, D, INIT_XAVIER_UNIFORM, 0.0f);
    params_alloc(&m->params);
    params_init(&m->params, seed);
    param_reg_bind(&r);
    if (c->rope) {
        int half = c->head_dim / 2;
        m->rope_cos = core_malloc(sizeof(float) * (size_t)c->tokens * half);
        m->rope_sin = core_malloc(sizeof(float) * (size_t)c->tokens * half);
        rope_2d_tables(m->rope_cos, m->rope_sin, c->grid, c->head_dim); /* JiT's, as the model's */
    }
}

void classifier_free(Classifier *m) {
    params_destroy(&m->params);
    core_free(m->rope_cos);
    core_free(m->rope_sin);
    core_free(m->blocks);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- forward */

static Tensor *cls_block(Classifier *m, Graph *g, int i, Tensor *x) {
    ClsBlock *b = &m->blocks[i];
    Tensor *h = op_rmsnorm(g, x, b->norm1, CLS_RMS_EPS);
    Tensor *q, *k, *v;
    op_qkv_split(g, op_linear(g, h, b->qkv_w, b->qkv_b), m->cfg.heads, &q, &k, &v);
    if (m->cfg.rope) {
        q = op_rope(g, op_rmsnorm(g, q, b->q_norm, CLS_RMS_EPS), m->rope_cos, m->rope_sin, 0);
        k = op_rope(g, op_rmsnorm(g, k, b->k_norm, CLS_RMS_EPS), m->rope_cos, m->rope_sin, 0);
    }
    x = op_add(g, x, op_linear(g, op_attention(g, q, k, v), b->proj_w, b->proj_b));
    h = op_rmsnorm(g, x, b->norm2, CLS_RMS_EPS);
    Tensor *hid = op_swiglu(g, op_linear(g, h, b->w12_w, b->w12_b));
    return op_add(g, x, op_linear(g, hid, b->w3_w, b->w3_b));
}

Tensor *classifier_forward(Classifier *m, Graph *g, Tensor *img, Tensor **features) {
    const ClassifierConfig *c = &m->cfg;
    CHECK_SHAPE(img, 4, -1, c->channels, c->img_size, c->img_size);
    Tensor *tok = c->window > c->patch ? op_unfold(g, img, c->window, c->patch, (c->window - c->patch) / 2)
                                       : op_patchify(g, img, c->patch);
    Tensor *x = op_linear(g, tok, m->patch_w, m->patch_b);
    x = op_add_rows(g, x, m->pos);
    for (int i = 0; i < c->depth; i++) x = cls_block(m, g, i, x);
    Tensor *f = op_mean_tokens(g, op_rmsnorm(g, x, m->norm, CLS_RMS_EPS));
    if (features) *features = f;
    return op_linear(g, f, m->head_w, m->head_b);
}

void classifier_predict(Classifier *m, Graph *g, const float *images, int n, int batch, float *features, int *pred) {
    const ClassifierConfig *c = &m->cfg;
    CHECK(batch >= 1, "classifier: inference batch must be positive");
    int per = c->channels * c->img_size * c->img_size, K = c->num_classes, D = c->hidden;
    bool prev = graph_set_grad(g, false);
    bool prev_train = g->training;
    g->training = false;
    graph_reset(g);
    for (int i0 = 0; i0 < n; i0 += batch) {
        int b = n - i0 < batch ? n - i0 : batch;
        Tensor *img = graph_new(g, 4, b, c->channels, c->img_size, c->img_size), *f;
        memcpy(img->data, images + (size_t)i0 * per, sizeof(float) * (size_t)b * per);
        Tensor *logits = classifier_forward(m, g, img, &f);
        if (features) memcpy(features + (size_t)i0 * D, f->data, sizeof(float) * (size_t)b * D);
        if (pred)
            for (int r = 0; r < b; r++) {
                const float *l = logits->data + (size_t)r * K;
                int best = 0;
                for (int k = 1; k < K; k++)
                    if (l[k] > l[best]) best = k;
                pred[i0 + r] = best;
            }
        graph_reset(g);
    }
    g->training = prev_train;
    graph_set_grad(g, prev);
}

double classifier_accuracy(const int *pred, const int *labels, int n, int K, double *per_class) {
    long right = 0;
    long *hit = core_calloc(sizeof(long) * (size_t)K), *cnt = core_calloc(sizeof(long) * (size_t)K);
    for (int i = 0; i < n; i++) {
        int ok = pred[i] == labels[i];
        right += ok;
        if (labels[i] >= 0 && labels[i] < K) cnt[labels[i]]++, hit[labels[i]] += ok;
    }
    if (per_class)
        for (int k = 0; k < K; k++) per_class[k] = cnt[k] ? (double)hit[k] / (double)cnt[k] : NAN;
    core_free(hit), core_free(cnt);
    return n ? (double)right / n : NAN;
}

/* ------------------------------------------------------------ weights file */

/* The architecture as the weights file's attributes, written and read by
 * the same table: sizes are required and positive; window and rope (0 = off,
 * the files before them) optional. */
static const struct {
    const char *key;
    size_t off;
    int size;
} cls_arch[] = {
    {"img_size", offsetof(ClassifierConfig, img_size), 1},       {"channels", offsetof(ClassifierConfig, channels), 1},
    {"patch", offsetof(ClassifierConfig, patch), 1},             {"window", offsetof(ClassifierConfig, window), 0},
    {"rope", offsetof(ClassifierConfig, rope), 0},               {"depth", offsetof(ClassifierConfig, depth), 1},
    {"hidden", offsetof(ClassifierConfig, hidden), 1},           {"heads", offsetof(ClassifierConfig, heads), 1},
    {"mlp_hidden", offsetof(ClassifierConfig, mlp_hidden), 1},   {"num_classes", offsetof(ClassifierConfig, num_classes), 1},
};
#define N_ARCH ((int)(sizeof cls_arch / sizeof cls_arch[0]))

static int *arch_field(ClassifierConfig *c, int i) { return (int *)((char *)c + cls_arch[i].off); }

void classifier_save(const char *path, const Classifier *m, uint64_t seed, const char *config_yaml) {
    const ClassifierConfig *c = &m->cfg;
    IoOut out; /* renamed when complete (io/fsutil.h) */
    char err[2400];
    CHECK(io_out_begin(&out, path, err, sizeof err) == 0, "%s", err);
    const char *tmp = out.tmp;
    io_hdf5_lock();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0, "cannot create the classifier file %s (does its directory exist?)", tmp);
    h5_write_str(f, "format", CLS_FORMAT);
    for (int i = 0; i < N_ARCH; i++) h5_write_i64(f, cls_arch[i].key, *arch_field((ClassifierConfig *)c, i));
    h5_write_f64(f, "test_accuracy", m->test_accuracy);
    h5_write_i64(f, "train_steps", m->train_steps);
    h5_write_f64(f, "train_seconds", m->train_seconds);
    h5_write_i64(f, "seed", (long long)seed);
    if (config_yaml) h5_write_str(f, "config", config_yaml);
    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(g >= 0, "cannot create group params in %s", tmp);
    for (int i = 0; i < m->params.n; i++) {
        const ParamInfo *p = &m->params.info[i];
        hsize_t dims[TENSOR_MAX_DIMS];
        for (int k = 0; k < p->ndim; k++) dims[k] = (hsize_t)p->shape[k];
        hid_t sp = H5Screate_simple(p->ndim, dims, NULL);
        hid_t d = H5Dcreate2(g, p->name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->params.data + p->offset) >= 0,
              "writing params/%s to %s failed", p->name, tmp);
        H5Dclose(d), H5Sclose(sp);
    }
    H5Gclose(g);
    CHECK(H5Fclose(f) >= 0, "finishing %s failed (disk full?)", tmp);
    io_hdf5_unlock();
    CHECK(io_out_commit(&out, err, sizeof err) == 0, "%s", err);
}

/* An integer attribute of the weights file: 1 when read, 0 when absent and
 * not required; anything else stops with the file and the key. */
static int read_attr_int(hid_t f, const char *path, const char *name, int required, long long *out) {
    int r = h5_read_i64(f, name, out);
    CHECK(r != 0 || !required, "%s: classifier file has no attribute '%s' (written by another version?)", path, name);
    CHECK(r >= 0, "%s: attribute '%s' is not a single integer", path, name);
    return r;
}

void classifier_load(const char *path, Classifier *m) {
    char err[1400];
    CHECK(path, "no classifier file given");
    if (io_check_regular(path, "the classifier file", err, sizeof err)) {
        if (errno == ENOENT)
            snprintf(err, sizeof err, "classifier file %s does not exist", path);
        FAIL("%s (train one: jit-classify train --config configs/eval/fmnist-classifier.yaml)", err);
    }
    io_hdf5_lock();
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(f >= 0, "%s: not a readable HDF5 file (a classifier weights file is made by jit-classify train)", path);
    char *fmt = h5_read_str(f, "format");
    CHECK(fmt && strcmp(fmt, CLS_FORMAT) == 0, "%s: format is '%s', expected '%s' (is this a classifier file?)", path,
          fmt ? fmt : "(none)", CLS_FORMAT);
    free(fmt);
    ClassifierConfig c = {0};
    long long v;
    for (int i = 0; i < N_ARCH; i++) {
        if (!read_attr_int(f, path, cls_arch[i].key, cls_arch[i].size, &v)) continue; /* optional: stays 0 */
        CHECK(!cls_arch[i].size || (v > 0 && v < (1 << 20)), "%s: attribute %s = %lld is not a valid size", path,
              cls_arch[i].key, v);
        *arch_field(&c, i) = (int)v;
    }
    io_hdf5_unlock();
    classifier_build(m, &c, 0);
    io_hdf5_lock();
    if (read_attr_int(f, path, "train_steps", 0, &v)) m->train_steps = (long)v;
    h5_read_f64(f, "test_accuracy", &m->test_accuracy);
    h5_read_f64(f, "train_seconds", &m->train_seconds);
    CHECK(H5Lexists(f, "params", H5P_DEFAULT) > 0, "%s: classifier file has no group 'params'", path);
    int missing;
    char detail[256];
    int bad = h5_param_group_check(f, path, "params", &m->params, &missing, detail, sizeof detail);
    CHECK(missing == 0, "%s: %d parameters are missing from params/ (the file's attributes describe another "
                        "architecture than its weights)", path, missing);
    CHECK(bad < 0, "%s: params/%s is %s of the architecture in the file's attributes", path,
          bad >= 0 ? m->params.info[bad].name : "", detail);
    h5_param_group_read(f, path, "params", &m->params, m->params.data);
    H5Fclose(f);
    io_hdf5_unlock();
}

