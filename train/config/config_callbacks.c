/* train/config/config_callbacks.c — the `callbacks:` list: one schema table per
 * callback type (the seeds' names), each item's defaults, and the checks
 * against the model (every one of them drives SLA2, so it needs
 * model.use_sla2; a scheduler's layer must be an SLA2 block). */
#include <stddef.h>
#include <string.h>

#include "train/config/config_schema.h"


_Static_assert(sizeof(RampShape) == sizeof(int), "enums are stored through int");

static const char *const cb_ramps[] = {"linear", "cosine", NULL}; /* RampShape order */

/* `type` is read before the table is chosen; the row is there for the key list. */
static int bind_type(const CfgBinder *b, const YamlNode *n, const char *path, void *base) { return 0; }

static int bind_layer(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    CallbackConfig *cb = base;
    long long v;
    if (n->kind == YAML_TREE_SCALAR && strcmp(n->text, "all") == 0) {
        cb->layer = -1;
        return 0;
    }
    char got[96];
    if (n->kind != YAML_TREE_SCALAR || n->quoted || yaml_tree_is_null(n))
        return cfg_error(b, n, path, "expected a block index or all, got %s", yaml_tree_describe(n, got, sizeof got));
    if (cfg_read_int(b, n, path, &v)) return cfg_error(b, n, path, "expected a block index or all, got '%s'", n->text);
    if (cfg_check_range(b, n, path, (double)v, CFGR_GE, -1, 0)) return -1;
    cb->layer = (int)v;
    return 0;
}

static void write_layer(FILE *f, const CfgField *fd, const void *base) {
    int layer = ((const CallbackConfig *)base)->layer;
    if (layer < 0) fputs("all", f);
    else fprintf(f, "%d", layer);
}

#define CB_TYPE {.key = "type", .type = CFGT_CUSTOM, .bind = bind_type}

static const CfgField cb_router[] = {
    CB_TYPE,
    CFG_FLOAT(CallbackConfig, "start_ratio", start_ratio, CFGR_GT_LE, 0, 1),
    CFG_FLOAT(CallbackConfig, "target_ratio", target_ratio, CFGR_GT_LE, 0, 1),
    CFG_INT(CallbackConfig, "start_step", start_step, CFGR_GE, 0, 0),
    CFG_INT(CallbackConfig, "warmup_steps", warmup_steps, CFGR_GE, 0, 0),
    {.key = "schedule", .type = CFGT_ENUM, .off = offsetof(CallbackConfig, ramp), .names = cb_ramps},
    {.key = "layer", .type = CFGT_CUSTOM, .bind = bind_layer, .write = write_layer},
};
static const CfgField cb_qat[] = {CB_TYPE, CFG_INT(CallbackConfig, "enable_step", enable_step, CFGR_GE, 0, 0)};
static const CfgField cb_monitor[] = {CB_TYPE, CFG_INT(CallbackConfig, "every", every, CFGR_GE, 1, 0)};
static const CfgField cb_conversion[] = {
    CB_TYPE,
    {.key = "from", .type = CFGT_STR, .off = offsetof(CallbackConfig, from), .size = sizeof(((CallbackConfig *)0)->from)},
    CFG_INT(CallbackConfig, "stage1_steps", stage1_steps, CFGR_GE, 0, 0),
    CFG_FLOAT(CallbackConfig, "stage1_lr", stage1_lr, CFGR_GT, 0, 0),
};

typedef struct CbKind {
    const char *name;
    const CfgField *fields;
    int n_fields;
} CbKind;

/* Indexed by CallbackType. */
static const CbKind cb_kinds[] = {
    [CB_ROUTER_SCHEDULER] = {"RouterParameterScheduler", cb_router, CFG_N_FIELDS(cb_router)},
    [CB_SLA2_QAT] = {"SLA2QATCallback", cb_qat, CFG_N_FIELDS(cb_qat)},
    [CB_QUANT_MONITOR] = {"QuantizedAttentionMonitor", cb_monitor, CFG_N_FIELDS(cb_monitor)},
    [CB_SLA2_CONVERSION] = {"SLA2Conversion", cb_conversion, CFG_N_FIELDS(cb_conversion)},
};
static const char *const cb_names[] = {"RouterParameterScheduler", "SLA2QATCallback", "QuantizedAttentionMonitor",
                                       "SLA2Conversion", NULL};
#define N_KINDS CFG_N_FIELDS(cb_kinds)

/* Values of the keys an item leaves out. */
static void cb_defaults(CallbackConfig *cb, CallbackType type, const Config *c) {
    memset(cb, 0, sizeof *cb);
    cb->type = type;
    switch (type) {
    case CB_ROUTER_SCHEDULER:
        /* dense at first, down to the model's ratio */
        cb->start_ratio = 1.0f, cb->target_ratio = c->model.sla2_topk_ratio;
        cb->ramp = RAMP_LINEAR, cb->layer = -1;
        break;
    case CB_SLA2_QAT: break;
    case CB_QUANT_MONITOR: cb->every = 100; break;
    case CB_SLA2_CONVERSION: cb->stage1_steps = 500, cb->stage1_lr = 1e-3f; break; /* 500 steps as in the paper */
    }
}

/* Checks of one bound item against the model. */
static int cb_check(const CfgBinder *b, const YamlNode *item, const char *path, const CallbackConfig *cb,
                    const Config *c) {
    const char *name = cb_kinds[cb->type].name;
    if (!c->model.use_sla2)
        return cfg_error(b, item, path, "%s needs model.use_sla2: true (the model uses full attention)", name);
    if (cb->type == CB_ROUTER_SCHEDULER && cb->layer >= 0) {
        const YamlNode *at = yaml_tree_get(item, "layer");
        char lpath[340];
        snprintf(lpath, sizeof lpath, "%s.layer", path);
        if (cb->layer >= c->model.depth)
            return cfg_error(b, at, lpath, "must be a block index in [0, %d) (model.depth) or all, got %d",
                             c->model.depth, cb->layer);
        if (!jit_layer_uses_sla2(&c->model, cb->layer))
            return cfg_error(b, at, lpath, "block %d does not use SLA2 (see model.sla2_from_layer, model.sla2_layers)",
                             cb->layer);
    }
    if (cb->type == CB_SLA2_CONVERSION && !cb->from[0])
        return cfg_error(b, item, path, "SLA2Conversion needs 'from': the full-attention checkpoint to convert");
    return 0;
}

int config_bind_callbacks(const CfgBinder *b, const YamlNode *list, Config *c) {
    char got[96], path[64], known[64], names[160];
    memset(c->callbacks, 0, sizeof c->callbacks);
    c->n_callbacks = 0;
    if (!list || yaml_tree_is_null(list)) return 0;
    cfg_join_names(names, sizeof names, cb_names);
    if (list->kind != YAML_TREE_SEQ)
        return cfg_error(b, list, "callbacks", "expected a list of callbacks (- type: %s, ...), got %s", cb_names[0],
                         yaml_tree_describe(list, got, sizeof got));
    if (list->n > CFG_MAX_CALLBACKS)
        return cfg_error(b, list->items[CFG_MAX_CALLBACKS], "callbacks", "at most %d callbacks, got %d",
                         CFG_MAX_CALLBACKS, list->n);
    for (int i = 0; i < list->n; i++) {
        const YamlNode *item = list->items[i];
        snprintf(path, sizeof path, "callbacks[%d]", i);
        if (item->kind != YAML_TREE_MAP)
            return cfg_error(b, item, path, "expected a map with a 'type' key (%s), got %s", names,
                             yaml_tree_describe(item, got, sizeof got));
        const YamlNode *tn = yaml_tree_get(item, "type");
        if (!tn) return cfg_error(b, item, path, "missing 'type' (one of %s)", names);
        int k = -1;
        for (int t = 0; t < N_KINDS && tn->kind == YAML_TREE_SCALAR; t++)
            if (strcmp(tn->text, cb_kinds[t].name) == 0) k = t;
        if (k < 0) {
            char tpath[80];
            snprintf(tpath, sizeof tpath, "%s.type", path);
            return cfg_error(b, tn, tpath, "unknown callback type %s (known: %s)",
                             yaml_tree_describe(tn, got, sizeof got), names);
        }
        CallbackConfig *cb = &c->callbacks[i];
        cb_defaults(cb, (CallbackType)k, c);
        snprintf(known, sizeof known, "for %s", cb_kinds[k].name);
        if (cfg_bind_fields(b, item, path, known, cb_kinds[k].fields, cb_kinds[k].n_fields, cb) ||
            cb_check(b, item, path, cb, c))
            return -1;
    }
    c->n_callbacks = list->n;
    return 0;
}

void config_write_callbacks(FILE *f, const Config *c) {
    if (c->n_callbacks == 0) {
        fputs("\ncallbacks: []\n", f);
        return;
    }
    fputs("\ncallbacks:\n", f);
    for (int i = 0; i < c->n_callbacks; i++) {
        const CallbackConfig *cb = &c->callbacks[i];
        const CbKind *k = &cb_kinds[cb->type];
        fprintf(f, "  - type: %s\n", k->name);
        cfg_write_fields(f, "    ", k->fields, k->n_fields, cb);
    }
}
