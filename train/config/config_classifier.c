/* train/config/config_classifier.c — the evaluation classifier's training configuration
 * (configs/eval/fmnist-classifier.yaml): sections run, data, model, train, bound
 * with the same schema machinery as the run configuration, so errors read
 * FILE:LINE:COL: section.key: problem. Overrides "section.key=value" are
 * grafted onto the YAML tree first and checked exactly like the file. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/fsutil.h"
#include "train/config/config_schema.h"
#include "train/eval/classifier.h"


static const CfgField k_run[] = {
    {.key = "seed", .type = CFGT_U64, .off = offsetof(ClassifierTrainConfig, seed)},
    CFG_STRING(ClassifierTrainConfig, "out", out),
};

static const CfgField k_data[] = {
    CFG_STRING(ClassifierTrainConfig, "train", data_train),
    CFG_STRING(ClassifierTrainConfig, "test", data_test),
    CFG_BOOL(ClassifierTrainConfig, "hflip", hflip),
    CFG_INT(ClassifierTrainConfig, "shift", shift, CFGR_GE_LE, 0, 8),
};

static const CfgField k_model[] = {
    CFG_INT(ClassifierTrainConfig, "img_size", model.img_size, CFGR_GE, 1, 0),
    CFG_INT(ClassifierTrainConfig, "channels", model.channels, CFGR_GE, 1, 0),
    CFG_INT(ClassifierTrainConfig, "patch", model.patch, CFGR_GE, 1, 0),
    CFG_INT(ClassifierTrainConfig, "window", model.window, CFGR_GE, 0, 0),
    CFG_INT(ClassifierTrainConfig, "depth", model.depth, CFGR_GE_LE, 1, 64),
    CFG_INT(ClassifierTrainConfig, "hidden", model.hidden, CFGR_GE, 1, 0),
    CFG_INT(ClassifierTrainConfig, "heads", model.heads, CFGR_GE, 1, 0),
    CFG_INT(ClassifierTrainConfig, "mlp_hidden", model.mlp_hidden, CFGR_GE, 1, 0),
    CFG_BOOL(ClassifierTrainConfig, "rope", model.rope),
    CFG_INT(ClassifierTrainConfig, "num_classes", model.num_classes, CFGR_GE, 2, 0),
};

static const CfgField k_train[] = {
    CFG_INT(ClassifierTrainConfig, "steps", steps, CFGR_GE, 1, 0),
    CFG_INT(ClassifierTrainConfig, "batch_size", batch_size, CFGR_GE, 1, 0),
    CFG_FLOAT(ClassifierTrainConfig, "lr", lr, CFGR_GT, 0, 0),
    CFG_FLOAT(ClassifierTrainConfig, "min_lr", min_lr, CFGR_GE, 0, 0),
    CFG_INT(ClassifierTrainConfig, "warmup_steps", warmup_steps, CFGR_GE, 0, 0),
    CFG_FLOAT(ClassifierTrainConfig, "weight_decay", weight_decay, CFGR_GE, 0, 0),
    CFG_FLOAT(ClassifierTrainConfig, "beta1", beta1, CFGR_GE_LT, 0, 1),
    CFG_FLOAT(ClassifierTrainConfig, "beta2", beta2, CFGR_GE_LT, 0, 1),
    CFG_FLOAT(ClassifierTrainConfig, "grad_clip", grad_clip, CFGR_GE, 0, 0),
    CFG_INT(ClassifierTrainConfig, "log_every", log_every, CFGR_GE, 1, 0),
    CFG_INT(ClassifierTrainConfig, "eval_batch", eval_batch, CFGR_GE, 1, 0),
};

typedef struct {
    const char *name;
    const CfgField *fields;
    int n;
} KSection;

static const KSection k_sections[] = {
    {"run", k_run, CFG_N_FIELDS(k_run)},
    {"data", k_data, CFG_N_FIELDS(k_data)},
    {"model", k_model, CFG_N_FIELDS(k_model)},
    {"train", k_train, CFG_N_FIELDS(k_train)},
};
static const CfgField k_top[] = {{.key = "run"}, {.key = "data"}, {.key = "model"}, {.key = "train"}};

static void k_set_str(char *dst, size_t size, const char *s) {
    memset(dst, 0, size);
    snprintf(dst, size, "%s", s);
}

void classifier_train_defaults(ClassifierTrainConfig *c) {
    memset(c, 0, sizeof *c);
    c->seed = 0;
    k_set_str(c->out, sizeof c->out, "models/fmnist-classifier.h5");
    k_set_str(c->data_train, sizeof c->data_train, "data/fmnist");
    k_set_str(c->data_test, sizeof c->data_test, "data/fmnist-test");
    c->model = (ClassifierConfig){.img_size = 32, .channels = 1, .patch = 4, .window = 8, .depth = 4, .hidden = 64,
                                  .heads = 4, .mlp_hidden = 128, .rope = 1, .num_classes = 10};
    c->steps = 9375, c->batch_size = 32, c->warmup_steps = 100, c->log_every = 500, c->eval_batch = 64;
    c->lr = 1.5e-3f, c->min_lr = 0.0f, c->weight_decay = 0.05f, c->beta1 = 0.9f, c->beta2 = 0.99f, c->grad_clip = 1.0f;
}


static int k_bind(const CfgBinder *b, const YamlNode *root, ClassifierTrainConfig *c) {
    if (!root || yaml_tree_is_null(root)) return 0;
    char got[96];
    if (root->kind != YAML_TREE_MAP)
        return cfg_error(b, root, NULL, "expected a map of sections (run, data, model, train), got %s",
                         yaml_tree_describe(root, got, sizeof got));
    for (int i = 0; i < root->n; i++) {
        int known = 0;
        for (int s = 0; s < CFG_N_FIELDS(k_sections); s++) known |= strcmp(root->keys[i]->text, k_sections[s].name) == 0;
        if (!known) return cfg_unknown_key(b, root->keys[i], root->keys[i]->text, "sections", k_top, CFG_N_FIELDS(k_top));
    }
    for (int s = 0; s < CFG_N_FIELDS(k_sections); s++) {
        char known[64];
        snprintf(known, sizeof known, "under %s", k_sections[s].name);
        if (cfg_bind_fields(b, yaml_tree_get(root, k_sections[s].name), k_sections[s].name, known, k_sections[s].fields,
                            k_sections[s].n, c))
            return -1;
    }
    /* What classifier_config_finish would stop on, with a position instead. */
    const ClassifierConfig *m = &c->model;
    const YamlNode *msec = yaml_tree_get(root, "model");
    if (m->img_size % m->patch)
        return cfg_error(b, yaml_tree_get(msec, "patch"), "model.patch", "model.img_size (%d) must be a multiple of "
                         "model.patch (%d)", m->img_size, m->patch);
    if (m->window && (m->window < m->patch || (m->window - m->patch) % 2))
        return cfg_error(b, yaml_tree_get(msec, "window"), "model.window",
                         "must be 0 (plain patches) or model.patch (%d) plus an even number, got %d", m->patch,
                         m->window);
    if (m->hidden % m->heads)
        return cfg_error(b, yaml_tree_get(msec, "heads"), "model.heads",
                         "model.hidden (%d) must be a multiple of model.heads (%d)", m->hidden, m->heads);
    if (!c->data_train[0]) return cfg_error(b, NULL, "data.train", "names no training data");
    return 0;
}

int classifier_train_config_load(ClassifierTrainConfig *c, const char *path, int n_over, char *const *over, char *err,
                                 size_t errlen) {
    char *text;
    size_t len;
    if (io_read_bounded(path, "the configuration", IO_MAX_TEXT_BYTES, &text, &len, err, errlen)) return -1;
    ClassifierTrainConfig *t = core_malloc(sizeof *t);
    classifier_train_defaults(t);
    k_set_str(t->source, sizeof t->source, path);
    YamlNode *root = NULL;
    int rc = yaml_tree_parse(path, text, len, &root, err, errlen);
    core_free(text);
    for (int i = 0; i < n_over && rc == 0; i++) rc = yaml_tree_apply_override(&root, over[i], err, errlen);
    if (rc == 0) {
        CfgBinder b = {.file = path, .root = root, .err = err, .errlen = errlen};
        rc = k_bind(&b, root, t);
    }
    yaml_tree_free(root);
    if (rc == 0) *c = *t;
    core_free(t);
    return rc;
}

char *classifier_train_config_yaml(const ClassifierTrainConfig *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    for (int s = 0; s < CFG_N_FIELDS(k_sections); s++) {
        fprintf(f, "%s:\n", k_sections[s].name);
        cfg_write_fields(f, "  ", k_sections[s].fields, k_sections[s].n, c);
    }
    fclose(f);
    return buf;
}
