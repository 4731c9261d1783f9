/* train/config/config_classifier.c — the evaluation classifier's training configuration
 * (configs/eval/fmnist-classifier.yaml): sections run, data, model, train, bound
 * with the same schema machinery as the run configuration, so errors read
 * FILE:LINE:COL: section.key: problem. Overrides "section.key=value" are
 * grafted onto the YAML tree first and checked exactly like the file. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "train/config/config_schema.h"
#include "train/eval/classifier.h"

#define K_OFF(f) offsetof(ClassifierTrainConfig, f)
#define K_INT(k, f, r, a, z) {.key = k, .type = CFGT_INT, .off = K_OFF(f), .range = r, .lo = a, .hi = z}
#define K_FLOAT(k, f, r, a, z) {.key = k, .type = CFGT_FLOAT, .off = K_OFF(f), .range = r, .lo = a, .hi = z}
#define K_STR(k, f) {.key = k, .type = CFGT_STR, .off = K_OFF(f), .size = sizeof(((ClassifierTrainConfig *)0)->f)}
#define K_BOOL(k, f) {.key = k, .type = CFGT_BOOL, .off = K_OFF(f)}
#define N_OF(t) ((int)(sizeof(t) / sizeof((t)[0])))

static const CfgField k_run[] = {
    {.key = "seed", .type = CFGT_U64, .off = K_OFF(seed)},
    K_STR("out", out),
};

static const CfgField k_data[] = {
    K_STR("train", data_train),
    K_STR("test", data_test),
    K_BOOL("hflip", hflip),
    K_INT("shift", shift, CFGR_GE_LE, 0, 8),
};

static const CfgField k_model[] = {
    K_INT("img_size", model.img_size, CFGR_GE, 1, 0),
    K_INT("channels", model.channels, CFGR_GE, 1, 0),
    K_INT("patch", model.patch, CFGR_GE, 1, 0),
    K_INT("window", model.window, CFGR_GE, 0, 0),
    K_INT("depth", model.depth, CFGR_GE_LE, 1, 64),
    K_INT("hidden", model.hidden, CFGR_GE, 1, 0),
    K_INT("heads", model.heads, CFGR_GE, 1, 0),
    K_INT("mlp_hidden", model.mlp_hidden, CFGR_GE, 1, 0),
    K_BOOL("rope", model.rope),
    K_INT("num_classes", model.num_classes, CFGR_GE, 2, 0),
};

static const CfgField k_train[] = {
    K_INT("steps", steps, CFGR_GE, 1, 0),
    K_INT("batch_size", batch_size, CFGR_GE, 1, 0),
    K_FLOAT("lr", lr, CFGR_GT, 0, 0),
    K_FLOAT("min_lr", min_lr, CFGR_GE, 0, 0),
    K_INT("warmup_steps", warmup_steps, CFGR_GE, 0, 0),
    K_FLOAT("weight_decay", weight_decay, CFGR_GE, 0, 0),
    K_FLOAT("beta1", beta1, CFGR_GE_LT, 0, 1),
    K_FLOAT("beta2", beta2, CFGR_GE_LT, 0, 1),
    K_FLOAT("grad_clip", grad_clip, CFGR_GE, 0, 0),
    K_INT("log_every", log_every, CFGR_GE, 1, 0),
    K_INT("eval_batch", eval_batch, CFGR_GE, 1, 0),
};

typedef struct {
    const char *name;
    const CfgField *fields;
    int n;
} KSection;

static const KSection k_sections[] = {
    {"run", k_run, N_OF(k_run)},
    {"data", k_data, N_OF(k_data)},
    {"model", k_model, N_OF(k_model)},
    {"train", k_train, N_OF(k_train)},
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

/* "section.key=value": the value parsed as YAML and set in the tree (the
 * section map is created when the file has none). */
static int k_override(YamlNode **root, const char *ov, char *err, size_t errlen) {
    const char *eq = strchr(ov, '='), *dot = strchr(ov, '.');
    if (!eq || !dot || dot > eq || dot == ov || dot + 1 == eq || memchr(dot + 1, '.', (size_t)(eq - dot - 1))) {
        snprintf(err, errlen, "override '%s': expected SECTION.KEY=VALUE (e.g. train.steps=200)", ov);
        return -1;
    }
    char sec[64], key[64], msg[512];
    snprintf(sec, sizeof sec, "%.*s", (int)(dot - ov), ov);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    YamlNode *val = NULL;
    if (yaml_tree_parse(NULL, eq + 1, strlen(eq + 1), &val, msg, sizeof msg)) {
        snprintf(err, errlen, "override '%s': %s", ov, msg);
        return -1;
    }
    if (!val) val = yaml_tree_new_scalar("", 1, 1, NULL);
    yaml_tree_set_origin(val, ov);
    if (!*root || yaml_tree_is_null(*root)) {
        yaml_tree_free(*root);
        *root = yaml_tree_new(YAML_TREE_MAP, 1, 1, NULL);
    }
    if ((*root)->kind != YAML_TREE_MAP) {
        yaml_tree_free(val);
        snprintf(err, errlen, "override '%s': the configuration is not a map", ov);
        return -1;
    }
    YamlNode *s = yaml_tree_get(*root, sec);
    if (!s || yaml_tree_is_null(s)) {
        s = yaml_tree_new(YAML_TREE_MAP, 1, 1, ov);
        yaml_tree_map_set(*root, yaml_tree_new_scalar(sec, 1, 1, ov), s);
    }
    if (s->kind != YAML_TREE_MAP) {
        yaml_tree_free(val);
        snprintf(err, errlen, "override '%s': %s is not a map", ov, sec);
        return -1;
    }
    yaml_tree_map_set(s, yaml_tree_new_scalar(key, 1, 1, ov), val);
    return 0;
}

static int k_bind(const CfgBinder *b, const YamlNode *root, ClassifierTrainConfig *c) {
    if (!root || yaml_tree_is_null(root)) return 0;
    char got[96];
    if (root->kind != YAML_TREE_MAP)
        return cfg_error(b, root, NULL, "expected a map of sections (run, data, model, train), got %s",
                         yaml_tree_describe(root, got, sizeof got));
    for (int i = 0; i < root->n; i++) {
        int known = 0;
        for (int s = 0; s < N_OF(k_sections); s++) known |= strcmp(root->keys[i]->text, k_sections[s].name) == 0;
        if (!known) return cfg_unknown_key(b, root->keys[i], root->keys[i]->text, "sections", k_top, N_OF(k_top));
    }
    for (int s = 0; s < N_OF(k_sections); s++) {
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
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the configuration", path);
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len + 4096 > cap) text = core_realloc(text, cap = 2 * cap + 8192);
        got = fread(text + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    ClassifierTrainConfig *t = core_malloc(sizeof *t);
    classifier_train_defaults(t);
    k_set_str(t->source, sizeof t->source, path);
    YamlNode *root = NULL;
    int rc = yaml_tree_parse(path, text, len, &root, err, errlen);
    core_free(text);
    for (int i = 0; i < n_over && rc == 0; i++) rc = k_override(&root, over[i], err, errlen);
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
    for (int s = 0; s < N_OF(k_sections); s++) {
        fprintf(f, "%s:\n", k_sections[s].name);
        cfg_write_fields(f, "  ", k_sections[s].fields, k_sections[s].n, c);
    }
    fclose(f);
    return buf;
}
