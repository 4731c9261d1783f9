/* train/config/config_schema.c — the sections of a run configuration (run, model,
 * data, optim, train, diffusion, sampling, logging, losses, dist) as schema tables,
 * the keys that need code (model.name, lists, progress), and the checks that
 * involve more than one key: the model's divisibility and block indices
 * (done here, with positions, before jit_config_finish's CHECKs could stop
 * the program), cosine floor, EMA index. */
#include <stddef.h>
#include <string.h>

#include "core/ops.h"
#include "train/config/config_schema.h"
#include "train/losses/dinov2.h" /* DINO_WIDTH, DINO_HEADS: the REPA projector's output */


_Static_assert(sizeof(LrSchedule) == sizeof(int), "enums are stored through int");
_Static_assert(sizeof(RunPrecision) == sizeof(int), "enums are stored through int");

static const char *const cfg_devices[] = {"cpu", "cuda", NULL};
static const char *const cfg_precisions[] = {"auto", "fp32", "bf16", NULL};   /* RunPrecision order */
static const char *const cfg_feature_maps[] = {"softmax", "elu", "relu", NULL}; /* Sla2FeatureMap order */
static const char *const cfg_lr_schedules[] = {"constant", "cosine", NULL};   /* LrSchedule order */
static const char *const cfg_pdino_gating[] = {"released", "per_sample", NULL}; /* PdinoGating order */
static const char *const cfg_allreduce[] = {"auto", "overlap", "blocking", NULL}; /* AllreduceMode order */
static const char *const cfg_recompute[] = {"none", "attention", "block", NULL}; /* JitRecompute order */

/* --- keys that need code --- */

static int bind_model_name(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    Config *c = base;
    char name[sizeof c->model_name];
    JitConfig m;
    if (cfg_read_str(b, n, path, name, sizeof name)) return -1;
    if (jit_config_named(name, &m) != 0)
        return cfg_error(b, n, path, "unknown model '%s' (known: %s)", name, jit_config_list());
    c->model = m;
    memcpy(c->model_name, name, sizeof name);
    return 0;
}

static void write_model_name(FILE *f, const CfgField *fd, const void *base) {
    cfg_write_string(f, ((const Config *)base)->model_name);
}

/* The seeds' name for the SLA2 block size: both query and key blocks. */
static int bind_compression(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    Config *c = base;
    long long v;
    if (cfg_read_int(b, n, path, &v) || cfg_check_range(b, n, path, (double)v, CFGR_GE, 1, 0)) return -1;
    c->model.sla2_block_q = c->model.sla2_block_k = (int)v;
    return 0;
}

static int bind_sla2_layers(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    JitConfig *m = &((Config *)base)->model;
    if (cfg_expect_list(b, n, path, 0, JIT_MAX_DEPTH, "of block indices")) return -1;
    memset(m->sla2_layers, 0, sizeof m->sla2_layers);
    for (int i = 0; i < n->n; i++) {
        char ipath[340];
        long long v;
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        if (cfg_read_int(b, n->items[i], ipath, &v) ||
            cfg_check_range(b, n->items[i], ipath, (double)v, CFGR_GE_LT, 0, JIT_MAX_DEPTH))
            return -1;
        for (int j = 0; j < i; j++)
            if (m->sla2_layers[j] == v) return cfg_error(b, n->items[i], ipath, "block %lld is listed twice", v);
        m->sla2_layers[i] = (int)v;
    }
    m->sla2_n_layers = n->n;
    return 0;
}

static void write_sla2_layers(FILE *f, const CfgField *fd, const void *base) {
    const JitConfig *m = &((const Config *)base)->model;
    fputc('[', f);
    for (int i = 0; i < m->sla2_n_layers; i++) fprintf(f, "%s%d", i ? ", " : "", m->sla2_layers[i]);
    fputc(']', f);
}

/* A list of `lo..hi` floats, each in [0, 1) (betas, EMA decays) or [0, 1]. */
static int bind_unit_floats(const CfgBinder *b, const YamlNode *n, const char *path, int lo, int hi,
                            const char *what, CfgRange r, float *out) {
    if (cfg_expect_list(b, n, path, lo, hi, what)) return -1;
    for (int i = 0; i < n->n; i++) {
        char ipath[340];
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        if (cfg_read_float_in(b, n->items[i], ipath, r, 0, 1, &out[i])) return -1;
    }
    return 0;
}

static void write_floats(FILE *f, const float *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        cfg_write_float(f, v[i]);
    }
    fputc(']', f);
}

static int bind_betas(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    Config *c = base;
    float v[2];
    if (bind_unit_floats(b, n, path, 2, 2, "[beta1, beta2]", CFGR_GE_LT, v)) return -1;
    c->beta1 = v[0], c->beta2 = v[1];
    return 0;
}

static void write_betas(FILE *f, const CfgField *fd, const void *base) {
    const Config *c = base;
    write_floats(f, (const float[]){c->beta1, c->beta2}, 2);
}

static int bind_ema(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    Config *c = base;
    float v[CFG_MAX_EMA] = {0};
    if (bind_unit_floats(b, n, path, 1, CFG_MAX_EMA, "of EMA decays", CFGR_GE_LT, v)) return -1;
    memcpy(c->ema, v, sizeof v);
    c->n_ema = n->n;
    return 0;
}

static void write_ema(FILE *f, const CfgField *fd, const void *base) {
    const Config *c = base;
    write_floats(f, c->ema, c->n_ema);
}

static int bind_cfg_interval(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    Config *c = base;
    float v[2];
    if (bind_unit_floats(b, n, path, 2, 2, "[lo, hi]", CFGR_GE_LE, v)) return -1;
    if (!(v[0] < v[1])) return cfg_error(b, n, path, "needs lo < hi, got [%g, %g]", v[0], v[1]);
    c->cfg_lo = v[0], c->cfg_hi = v[1];
    return 0;
}

static void write_cfg_interval(FILE *f, const CfgField *fd, const void *base) {
    const Config *c = base;
    write_floats(f, (const float[]){c->cfg_lo, c->cfg_hi}, 2);
}

static int bind_progress(const CfgBinder *b, const YamlNode *n, const char *path, void *base) {
    Config *c = base;
    if (n->kind == YAML_TREE_SCALAR && strcmp(n->text, "auto") == 0) {
        c->progress = -1;
        return 0;
    }
    if (n->kind == YAML_TREE_SCALAR && !n->quoted && !yaml_tree_is_null(n) &&
        cfg_read_bool(b, n, path, &c->progress) == 0)
        return 0;
    char got[96];
    return cfg_error(b, n, path, "expected auto, true or false, got %s", yaml_tree_describe(n, got, sizeof got));
}

static void write_progress(FILE *f, const CfgField *fd, const void *base) {
    int p = ((const Config *)base)->progress;
    fputs(p < 0 ? "auto" : p ? "true" : "false", f);
}

/* --- the tables, keys in the order configs/README.md lists them --- */

static const CfgField cfg_run[] = {
    CFG_STRING(Config, "name", run_name),
    CFG_STRING(Config, "out_dir", out_dir),
    {.key = "seed", .type = CFGT_U64, .off = offsetof(Config, seed)},
    {.key = "device", .type = CFGT_STR, .off = offsetof(Config, device), .size = sizeof(((Config *)0)->device),
     .names = cfg_devices},
    CFG_ENUM(Config, "precision", precision, cfg_precisions),
    /* Generous: a first step, a checkpoint of a large model on slow
     * storage or a step under heavy sharing must not trip it. */
    CFG_FLOAT(Config, "watchdog_s", watchdog_s, CFGR_GE_LE, 0, 1e7),
};

/* Upper bounds on sizes: every size derived from them (tokens, parameter
 * shapes, activations, sample counts) then fits the int and size_t
 * arithmetic that uses it; a value beyond is an error naming its key, not
 * an overflow deep in the run. */
#define CFG_MAX_IMG 4096
#define CFG_MAX_WIDTH 16384
#define CFG_MAX_TOKENS 65536
#define CFG_MAX_COUNT 65536 /* batch, micro-batches, samples per class, sampler steps */

static const CfgField cfg_model[] = {
    {.key = "name", .type = CFGT_CUSTOM, .bind = bind_model_name, .write = write_model_name, .early = 1},
    CFG_INT(Config, "img_size", model.img_size, CFGR_GE_LE, 1, CFG_MAX_IMG),
    CFG_INT(Config, "in_channels", model.in_channels, CFGR_GE_LE, 1, 64),
    CFG_INT(Config, "patch", model.patch, CFGR_GE_LE, 1, CFG_MAX_IMG),
    CFG_INT(Config, "depth", model.depth, CFGR_GE_LE, 1, JIT_MAX_DEPTH),
    CFG_INT(Config, "hidden", model.hidden, CFGR_GE_LE, 1, CFG_MAX_WIDTH),
    CFG_INT(Config, "heads", model.heads, CFGR_GE_LE, 1, 1024),
    CFG_INT(Config, "bottleneck", model.bottleneck, CFGR_GE_LE, 1, CFG_MAX_WIDTH),
    CFG_INT(Config, "in_context_len", model.in_context_len, CFGR_GE_LE, 0, CFG_MAX_TOKENS),
    CFG_INT(Config, "in_context_start", model.in_context_start, CFGR_GE, 0, 0),
    CFG_INT(Config, "num_classes", model.num_classes, CFGR_GE_LE, 1, 1 << 20),
    CFG_FLOAT(Config, "dropout", model.dropout, CFGR_GE_LT, 0, 1),
    CFG_BOOL(Config, "use_sla2", model.use_sla2),
    CFG_FLOAT(Config, "sla2_topk_ratio", model.sla2_topk_ratio, CFGR_GT_LE, 0, 1),
    /* after name, before the block sizes: an explicit sla2_block_q/k wins */
    {.key = "sla2_compression_ratio", .type = CFGT_CUSTOM, .bind = bind_compression, .early = 1},
    CFG_INT(Config, "sla2_block_q", model.sla2_block_q, CFGR_GE_LE, 1, CFG_MAX_TOKENS),
    CFG_INT(Config, "sla2_block_k", model.sla2_block_k, CFGR_GE_LE, 1, CFG_MAX_TOKENS),
    CFG_ENUM(Config, "sla2_feature_map", model.sla2_feature_map, cfg_feature_maps),
    CFG_BOOL(Config, "sla2_enable_qat", model.sla2_enable_qat),
    CFG_INT(Config, "sla2_from_layer", model.sla2_from_layer, CFGR_GE, 0, 0),
    CFG_CUSTOM("sla2_layers", bind_sla2_layers, write_sla2_layers),
};

static const CfgField cfg_data[] = {
    CFG_STRING(Config, "train", data_train),
    CFG_INT(Config, "batch_size", batch_size, CFGR_GE_LE, 1, CFG_MAX_COUNT),
    CFG_INT(Config, "prefetch", prefetch, CFGR_GE_LE, 1, 1024),
    CFG_BOOL(Config, "hflip", hflip),
};

static const CfgField cfg_optim[] = {
    /* Bounded so that an AdamW update (a small multiple of lr per element,
     * train/trainer.c) cannot overflow a float weight. */
    CFG_FLOAT(Config, "lr", lr, CFGR_GT_LE, 0, 100),
    CFG_CUSTOM("betas", bind_betas, write_betas),
    CFG_FLOAT(Config, "eps", eps, CFGR_GT, 0, 0),
    CFG_FLOAT(Config, "weight_decay", weight_decay, CFGR_GE, 0, 0),
    CFG_INT(Config, "warmup_steps", warmup_steps, CFGR_GE, 0, 0),
    CFG_ENUM(Config, "schedule", lr_schedule, cfg_lr_schedules),
    CFG_FLOAT(Config, "min_lr", min_lr, CFGR_GE, 0, 0),
    CFG_FLOAT(Config, "grad_clip", grad_clip, CFGR_GE, 0, 0),
    CFG_INT(Config, "grad_accum", grad_accum, CFGR_GE_LE, 1, CFG_MAX_COUNT),
    CFG_CUSTOM("ema", bind_ema, write_ema),
    CFG_BOOL(Config, "ema_warmup", ema_warmup),
    CFG_BOOL(Config, "official_warmup", official_warmup),
    CFG_BOOL(Config, "official_decay_set", official_decay_set),
};

static const CfgField cfg_train[] = {
    CFG_INT(Config, "steps", steps, CFGR_GE, 1, 0),
    CFG_INT(Config, "log_every", log_every, CFGR_GE, 1, 0),
    CFG_INT(Config, "sample_every", sample_every, CFGR_GE, 0, 0),
    CFG_INT(Config, "checkpoint_every", checkpoint_every, CFGR_GE, 0, 0),
    CFG_INT(Config, "keep_last", keep_last, CFGR_GE, 1, 0),
    CFG_INT(Config, "keep_every", keep_every, CFGR_GE, 0, 0),
    CFG_INT(Config, "max_bad_steps", max_bad_steps, CFGR_GE, 0, 0),
    CFG_ENUM(Config, "recompute", recompute, cfg_recompute),
};

static const CfgField cfg_diffusion[] = {
    CFG_FLOAT(Config, "p_mean", p_mean, CFGR_ANY, 0, 0),
    CFG_FLOAT(Config, "p_std", p_std, CFGR_GT, 0, 0),
    CFG_FLOAT(Config, "noise_scale", noise_scale, CFGR_GT, 0, 0),
    CFG_FLOAT(Config, "label_drop", label_drop, CFGR_GE_LT, 0, 1),
};

static const CfgField cfg_sampling[] = {
    CFG_INT(Config, "steps", sample_steps, CFGR_GE_LE, 1, CFG_MAX_COUNT),
    CFG_FLOAT(Config, "cfg", cfg_scale, CFGR_GE, 0, 0),
    CFG_CUSTOM("cfg_interval", bind_cfg_interval, write_cfg_interval),
    CFG_BOOL(Config, "official_cfg_interval", official_cfg_interval),
    CFG_INT(Config, "per_class", samples_per_class, CFGR_GE_LE, 0, CFG_MAX_COUNT), /* 0: the trainer writes no grids */
    CFG_INT(Config, "ema_index", sample_ema, CFGR_GE_LE, -1, CFG_MAX_EMA - 1),
};

static const CfgField cfg_eval[] = {
    CFG_INT(Config, "every", eval_every, CFGR_GE, 0, 0),
    CFG_INT(Config, "images", eval_images, CFGR_GE_LE, 2, CFG_MAX_COUNT),
    CFG_INT(Config, "chunk", eval_chunk, CFGR_GE_LE, 1, 4096),
    CFG_STRING_OPT(Config, "features", eval_features),
    CFG_STRING_OPT(Config, "ref", eval_ref),
};

static const CfgField cfg_dist[] = {
    CFG_ENUM(Config, "allreduce", allreduce, cfg_allreduce),
    CFG_FLOAT(Config, "bucket_mb", bucket_mb, CFGR_GT, 0, 0),
    CFG_BOOL(Config, "shard_optimizer", shard_optimizer),
};

static const CfgField cfg_logging[] = {
    CFG_CUSTOM("progress", bind_progress, write_progress),
};

static const CfgField cfg_losses[] = {
    CFG_FLOAT(Config, "repa_weight", repa_weight, CFGR_GE, 0, 0),
    CFG_FLOAT(Config, "lpips_weight", lpips_weight, CFGR_GE, 0, 0),
    CFG_FLOAT(Config, "pdino_weight", pdino_weight, CFGR_GE, 0, 0),
    CFG_STRING_OPT(Config, "vgg_weights", vgg_weights),
    CFG_STRING_OPT(Config, "lpips_weights", lpips_weights),
    CFG_STRING_OPT(Config, "dino_weights", dino_weights),
    CFG_FLOAT(Config, "percept_t_threshold", percept_t_threshold, CFGR_GE_LE, 0, 1),
    CFG_INT(Config, "align_layer", align_layer, CFGR_GE, 0, 0),
    CFG_ENUM(Config, "pdino_gating", pdino_gating, cfg_pdino_gating),
    CFG_INT(Config, "adaptive_start", adaptive_start, CFGR_GE, -1, 0),
    CFG_INT(Config, "adaptive_every", adaptive_every, CFGR_GE, 1, 0),
    CFG_FLOAT(Config, "dino_cache_mb", dino_cache_mb, CFGR_GE, 0, 0),
    CFG_INT(Config, "frozen_random_div", frozen_random_div, CFGR_GE_LE, 0, 64),
};

typedef struct CfgSection {
    const char *key;
    const CfgField *fields;
    int n_fields;
} CfgSection;

#define SECTION(k, t) {k, t, CFG_N_FIELDS(t)}
static const CfgSection cfg_sections[] = {
    SECTION("run", cfg_run),           SECTION("model", cfg_model),         SECTION("data", cfg_data),
    SECTION("optim", cfg_optim),       SECTION("train", cfg_train),         SECTION("diffusion", cfg_diffusion),
    SECTION("sampling", cfg_sampling), SECTION("logging", cfg_logging),     SECTION("losses", cfg_losses),
    SECTION("dist", cfg_dist),         SECTION("eval", cfg_eval),
};
#define N_SECTIONS CFG_N_FIELDS(cfg_sections)

/* Only the names, for the unknown-key message at the top level. */
static const CfgField cfg_top[] = {
    {.key = "run"},   {.key = "model"},    {.key = "data"},    {.key = "optim"},  {.key = "train"},
    {.key = "diffusion"}, {.key = "sampling"}, {.key = "logging"}, {.key = "losses"}, {.key = "dist"},
    {.key = "eval"},  {.key = "callbacks"},
};

/* --- checks across keys --- */

/* Where to point for a check on keys of section `sec`: the first of k1, k2
 * written there, else the section's key, else the document. *key says which. */
static const YamlNode *cfg_where(const YamlNode *root, const char *section, const char *k1, const char *k2,
                                 const char **key) {
    const YamlNode *sec = yaml_tree_get(root, section);
    *key = k1;
    if (yaml_tree_get(sec, k1)) return yaml_tree_get(sec, k1);
    if (k2 && yaml_tree_get(sec, k2)) {
        *key = k2;
        return yaml_tree_get(sec, k2);
    }
    int i = yaml_tree_find(root, section);
    return i >= 0 ? root->keys[i] : NULL;
}

#define CFG_CHECK_AT(cond, sec, k1, k2, ...)                                  \
    do {                                                                      \
        if (!(cond)) {                                                        \
            const char *key_;                                                 \
            const YamlNode *at_ = cfg_where(root, sec, k1, k2, &key_);        \
            char path_[64];                                                   \
            snprintf(path_, sizeof path_, "%s.%s", sec, key_);                \
            return cfg_error(b, at_, path_, __VA_ARGS__);                     \
        }                                                                     \
    } while (0)

/* What jit_config_finish CHECKs (in its order), beyond the single-key ranges
 * of the table, reported with positions instead of stopping. */
static int cfg_check_model(const CfgBinder *b, const YamlNode *root, const JitConfig *m) {
    CFG_CHECK_AT(m->img_size % m->patch == 0, "model", "patch", "img_size",
                 "model.img_size (%d) must be a multiple of model.patch (%d)", m->img_size, m->patch);
    long long side = m->img_size / m->patch, tokens = side * side + m->in_context_len;
    CFG_CHECK_AT(tokens <= CFG_MAX_TOKENS, "model", "img_size", "patch",
                 "(img_size / patch)^2 + in_context_len = %lld tokens, above %d", tokens, CFG_MAX_TOKENS);
    CFG_CHECK_AT(m->hidden % m->heads == 0, "model", "heads", "hidden",
                 "model.hidden (%d) must be a multiple of model.heads (%d)", m->hidden, m->heads);
    CFG_CHECK_AT((m->hidden / m->heads) % 4 == 0, "model", "hidden", "heads",
                 "the head dimension hidden/heads = %d must be divisible by 4 (2D RoPE)", m->hidden / m->heads);
    CFG_CHECK_AT(m->hidden % 4 == 0, "model", "hidden", NULL,
                 "must be divisible by 4 (2D sin-cos position table), got %d", m->hidden);
    CFG_CHECK_AT(m->in_context_len == 0 || m->in_context_start < m->depth, "model", "in_context_start", "depth",
                 "model.in_context_start (%d) must be a block index in [0, model.depth = %d)", m->in_context_start,
                 m->depth);
    if (!m->use_sla2) return 0;
    Sla2Config s = {.block_q = m->sla2_block_q, .block_k = m->sla2_block_k, .topk_ratio = m->sla2_topk_ratio,
                    .feature_map = m->sla2_feature_map};
    const char *err = sla2_config_error(&s);
    CFG_CHECK_AT(err == NULL, "model", "use_sla2", NULL, "%s", err);
    CFG_CHECK_AT(m->sla2_from_layer < m->depth, "model", "sla2_from_layer", "depth",
                 "model.sla2_from_layer (%d) must be a block index in [0, model.depth = %d)", m->sla2_from_layer,
                 m->depth);
    CFG_CHECK_AT(m->sla2_n_layers <= m->depth, "model", "sla2_layers", "depth", "lists %d blocks but model.depth is %d",
                 m->sla2_n_layers, m->depth);
    for (int i = 0; i < m->sla2_n_layers; i++)
        if (m->sla2_layers[i] >= m->depth) {
            const YamlNode *list = yaml_tree_get(yaml_tree_get(root, "model"), "sla2_layers");
            char path[64];
            snprintf(path, sizeof path, "model.sla2_layers[%d]", i);
            if (list && list->kind == YAML_TREE_SEQ && i < list->n)
                return cfg_error(b, list->items[i], path, "must be a block index in [0, model.depth = %d), got %d",
                                 m->depth, m->sla2_layers[i]);
            CFG_CHECK_AT(0, "model", "sla2_layers", "depth", "entry %d = %d is not a block index in [0, %d)", i,
                         m->sla2_layers[i], m->depth);
        }
    return 0;
}

/* PixelGen's losses against the model and each other; derives the REPA
 * projector's size into the model (its output is DINOv2's width). */
static int cfg_check_losses(const CfgBinder *b, const YamlNode *root, Config *c) {
    int div = c->frozen_random_div, dino = c->repa_weight > 0 || c->pdino_weight > 0;
    CFG_CHECK_AT(div == 0 || (div & (div - 1)) == 0, "losses", "frozen_random_div", NULL,
                 "must be a power of two (the frozen networks' widths divided by it), got %d", div);
    if (c->lpips_weight > 0) {
        CFG_CHECK_AT(div > 0 || (c->vgg_weights[0] && c->lpips_weights[0]), "losses", "lpips_weight", NULL,
                     "LPIPS needs losses.vgg_weights and losses.lpips_weights (made by scripts/pixelgen_weights.py), "
                     "or losses.frozen_random_div for random stand-in networks");
        CFG_CHECK_AT(c->model.in_channels == 3 && c->model.img_size >= 16, "losses", "lpips_weight", NULL,
                     "LPIPS compares RGB images of at least 16x16 pixels (VGG16 pools four times); the model has "
                     "%d channel(s) of %dx%d", c->model.in_channels, c->model.img_size, c->model.img_size);
    }
    if (dino) {
        const char *k = c->repa_weight > 0 ? "repa_weight" : "pdino_weight";
        CFG_CHECK_AT(div > 0 || c->dino_weights[0], "losses", k, NULL,
                     "REPA and P-DINO need losses.dino_weights (made by scripts/pixelgen_weights.py), or "
                     "losses.frozen_random_div for a random stand-in network");
        CFG_CHECK_AT(c->model.in_channels == 3, "losses", k, NULL,
                     "DINOv2 reads RGB images; the model has %d channel(s)", c->model.in_channels);
        CFG_CHECK_AT(c->model.grid <= 64, "losses", k, NULL,
                     "DINOv2 runs on one token per JiT patch: %dx%d patches is above its 64x64", c->model.grid,
                     c->model.grid);
        CFG_CHECK_AT(DINO_WIDTH / (div ? div : 1) >= DINO_HEADS, "losses", "frozen_random_div", NULL,
                     "DINOv2's width 768 / %d is below its 12 heads", div);
    }
    if (c->repa_weight > 0)
        CFG_CHECK_AT(c->align_layer < c->model.depth, "losses", "align_layer", NULL,
                     "REPA aligns the tokens entering a block: %d is not a block of this model (depth %d)",
                     c->align_layer, c->model.depth);
    c->model.repa_dim = c->repa_weight > 0 ? DINO_WIDTH / (div ? div : 1) : 0;
    c->model.repa_layer = c->repa_weight > 0 ? c->align_layer : 0;
    return 0;
}

/* Checks that need a whole section (or two) bound first. */
static int cfg_check_section(const CfgBinder *b, const YamlNode *root, int s, Config *c) {
    const YamlNode *sec = yaml_tree_get(root, cfg_sections[s].key);
    const char *key = cfg_sections[s].key;
    if (strcmp(key, "run") == 0)
        CFG_CHECK_AT(c->precision != PRECISION_BF16 || strcmp(c->device, "cpu") != 0, "run", "precision", "device",
                     "bf16 matrix products need run.device: cuda; the CPU backend computes in fp32 (use fp32 or "
                     "auto)");
    if (strcmp(key, "run") == 0 && !yaml_tree_get(sec, "out_dir") && yaml_tree_get(sec, "name")) {
        /* out_dir follows run.name unless written: runs/<name> */
        if (strlen(c->run_name) + 5 >= sizeof c->out_dir)
            return cfg_error(b, yaml_tree_get(sec, "name"), "run.name", "too long for the default out_dir runs/<name>");
        memset(c->out_dir, 0, sizeof c->out_dir);
        memcpy(c->out_dir, "runs/", 5);
        memcpy(c->out_dir + 5, c->run_name, strlen(c->run_name));
    } else if (strcmp(key, "model") == 0) {
        if (cfg_check_model(b, root, &c->model)) return -1;
        jit_config_finish(&c->model); /* cannot fail now; computes the derived sizes */
    } else if (strcmp(key, "optim") == 0) {
        CFG_CHECK_AT(c->lr_schedule != LR_COSINE || c->min_lr <= c->lr, "optim", "min_lr", "lr",
                     "the cosine floor min_lr (%g) must not exceed lr (%g)", c->min_lr, c->lr);
    } else if (strcmp(key, "losses") == 0) {
        if (cfg_check_losses(b, root, c)) return -1;
    } else if (strcmp(key, "eval") == 0 && c->eval_every > 0) {
        CFG_CHECK_AT(c->eval_features[0] && c->eval_ref[0], "eval", "every", NULL,
                     "online evaluation needs eval.features (classifier:FILE or inception:FILE) and eval.ref (the "
                     "reference statistics, .npz with mu and sigma: jit-eval fid-ref makes them)");
    } else if (strcmp(key, "sampling") == 0) {
        const char *k;
        long long n = (long long)c->samples_per_class * c->model.num_classes;
        CFG_CHECK_AT(n <= CFG_MAX_COUNT, "sampling", "per_class", NULL,
                     "per_class x model.num_classes = %lld samples per sampling event, above %d", n, CFG_MAX_COUNT);
        if (c->sample_ema >= c->n_ema) {
            const YamlNode *at = yaml_tree_get(sec, "ema_index");
            if (at) return cfg_error(b, at, "sampling.ema_index",
                                     "must be -1 (raw weights) or an index into optim.ema (%d decays), got %d",
                                     c->n_ema, c->sample_ema);
            at = cfg_where(root, "optim", "ema", NULL, &k);
            return cfg_error(b, at, "optim.ema",
                             "has %d decays but sampling.ema_index is %d (set sampling.ema_index)", c->n_ema,
                             c->sample_ema);
        }
    }
    return 0;
}

int config_bind(const CfgBinder *b, const YamlNode *root, Config *c) {
    char got[96];
    if (root && yaml_tree_is_null(root)) root = NULL;
    if (root && root->kind != YAML_TREE_MAP)
        return cfg_error(b, root, NULL, "a configuration is a map of sections (run:, model:, optim:, ...), got %s",
                         yaml_tree_describe(root, got, sizeof got));
    for (int i = 0; root && i < root->n; i++) {
        int known = 0;
        for (int t = 0; t < CFG_N_FIELDS(cfg_top); t++) known |= strcmp(cfg_top[t].key, root->keys[i]->text) == 0;
        if (!known)
            return cfg_unknown_key(b, root->keys[i], root->keys[i]->text, "at the top level", cfg_top,
                                   CFG_N_FIELDS(cfg_top));
    }
    for (int s = 0; s < N_SECTIONS; s++) {
        char known[64];
        snprintf(known, sizeof known, "under %s", cfg_sections[s].key);
        const YamlNode *sec = yaml_tree_get(root, cfg_sections[s].key);
        if (cfg_bind_fields(b, sec, cfg_sections[s].key, known, cfg_sections[s].fields, cfg_sections[s].n_fields, c) ||
            cfg_check_section(b, root, s, c))
            return -1;
    }
    return config_bind_callbacks(b, yaml_tree_get(root, "callbacks"), c);
}

void config_write_sections(FILE *f, const Config *c) {
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(f, "\n%s:\n", cfg_sections[s].key);
        cfg_write_fields(f, "  ", cfg_sections[s].fields, cfg_sections[s].n_fields, c);
    }
}
