/* train/config/config.c — the run configuration's entry points (train/config/config.h):
 * defaults, loading a file or a string, command-line overrides grafted onto
 * the YAML tree before binding (so they are checked exactly like the file),
 * the notice about the seeds' loss terms we cannot run, and writing the
 * resolved configuration back as YAML. The schema lives in config_schema.c
 * and config_callbacks.c. */
#include "train/config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/fsutil.h"
#include "train/config/config_schema.h"

#define CONFIG_ERR_LEN 2048

static void config_set_str(char *dst, size_t size, const char *s) {
    memset(dst, 0, size); /* whole buffer: configs compare equal byte for byte */
    snprintf(dst, size, "%s", s);
}

void config_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    config_set_str(c->model_name, sizeof c->model_name, "jit-tiny");
    CHECK(jit_config_named(c->model_name, &c->model) == 0, "the default model %s is missing", c->model_name);
    config_set_str(c->run_name, sizeof c->run_name, "run");
    config_set_str(c->out_dir, sizeof c->out_dir, "runs/run");
    c->seed = 0;
    config_set_str(c->device, sizeof c->device, "cpu");
    c->precision = PRECISION_AUTO;
    config_set_str(c->data_train, sizeof c->data_train, "data/fmnist");
    c->batch_size = 32, c->prefetch = 4, c->hflip = 0;
    c->lr = 5e-4f, c->beta1 = 0.9f, c->beta2 = 0.95f, c->eps = 1e-8f, c->weight_decay = 0.0f;
    c->warmup_steps = 100, c->lr_schedule = LR_CONSTANT, c->min_lr = 0.0f, c->grad_clip = 0.0f, c->grad_accum = 1;
    c->allreduce = ALLREDUCE_AUTO, c->bucket_mb = 4.0f;
    c->n_ema = 1, c->ema[0] = 0.9999f;
    c->ema_warmup = 1, c->official_warmup = 0, c->official_decay_set = 0;
    c->steps = 1000, c->log_every = 10, c->sample_every = 0, c->checkpoint_every = 0;
    c->keep_last = 3, c->keep_every = 0, c->max_bad_steps = 20;
    c->watchdog_s = 1800; /* half an hour without a step: on by default, generous (train/watchdog.h) */
    c->p_mean = -0.8f, c->p_std = 0.8f, c->noise_scale = 1.0f, c->label_drop = 0.1f;
    c->sample_steps = 50, c->cfg_scale = 3.0f, c->cfg_lo = 0.1f, c->cfg_hi = 1.0f;
    c->samples_per_class = 8, c->sample_ema = 0;
    c->eval_every = 0, c->eval_images = 2000, c->eval_chunk = 64;
    c->progress = -1;
    c->n_callbacks = 0;
    c->repa_weight = c->lpips_weight = c->pdino_weight = 0.0f;
    c->percept_t_threshold = 0.3f;
    c->align_layer = 8;
    c->pdino_gating = PDINO_RELEASED;
    c->adaptive_start = 400000, c->adaptive_every = 50; /* PixelGen's trainer */
}

/* --- loading --- */

static int config_try_load_text(Config *c, const char *name, const char *text, size_t len, int n_overrides,
                                char *const *overrides, char *err, size_t errlen) {
    Config *t = core_malloc(sizeof *t);
    config_defaults(t);
    config_set_str(t->source, sizeof t->source, name);
    YamlNode *root = NULL;
    int rc = yaml_tree_parse(name, text, len, &root, err, errlen);
    for (int i = 0; i < n_overrides && rc == 0; i++) rc = yaml_tree_apply_override(&root, overrides[i], err, errlen);
    if (rc == 0) {
        CfgBinder b = {.file = name, .root = root, .err = err, .errlen = errlen};
        rc = config_bind(&b, root, t);
    }
    yaml_tree_free(root);
    if (rc == 0) memcpy(c, t, sizeof *t);
    core_free(t);
    return rc == 0 ? 0 : -1;
}

int config_try_load_string(Config *c, const char *name, const char *yaml, int n_overrides, char *const *overrides,
                           char *err, size_t errlen) {
    return config_try_load_text(c, name, yaml, strlen(yaml), n_overrides, overrides, err, errlen);
}

/* Only blanks and comment lines: a file that says nothing (--config /dev/null,
 * a truncated copy) would otherwise train with every default. */
static int config_text_is_empty(const char *t, size_t len) {
    int line_start = 1;
    for (size_t i = 0; i < len; i++) {
        char ch = t[i];
        if (ch == '\n') line_start = 1;
        else if (ch == '#' && line_start) {
            while (i < len && t[i] != '\n') i++;
            line_start = 1;
        } else if (ch != ' ' && ch != '\t' && ch != '\r') return 0;
    }
    return 1;
}

int config_try_load(Config *c, const char *path, int n_overrides, char *const *overrides, char *err, size_t errlen) {
    /* Bounded: /dev/zero or a FIFO is refused at once (io/fsutil.h). */
    char *text;
    size_t len;
    if (io_read_bounded(path, "the configuration", IO_MAX_TEXT_BYTES, &text, &len, err, errlen)) return -1;
    int rc = -1;
    if (config_text_is_empty(text, len))
        snprintf(err, errlen,
                 "%s: the configuration is empty (only blanks and comments): a run needs at least its sections "
                 "(run:, model:, data:, ...); start from a file in configs/",
                 path);
    else rc = config_try_load_text(c, path, text, len, n_overrides, overrides, err, errlen);
    core_free(text);
    return rc;
}

void config_load(Config *c, const char *path, int n_overrides, char *const *overrides) {
    char err[CONFIG_ERR_LEN];
    if (config_try_load(c, path, n_overrides, overrides, err, sizeof err)) FAIL("%s", err);
}

void config_load_string(Config *c, const char *name, const char *yaml, int n_overrides, char *const *overrides) {
    char err[CONFIG_ERR_LEN];
    if (config_try_load_string(c, name, yaml, n_overrides, overrides, err, sizeof err)) FAIL("%s", err);
}

/* --- writing --- */

void config_write(const Config *c, FILE *f) {
    fputs("# Resolved run configuration", f);
    if (c->source[0]) {
        fputs(" (from ", f);
        for (const char *s = c->source; *s; s++) fputc(isprint((unsigned char)*s) ? *s : '?', f);
        fputc(')', f);
    }
    fputs(".\n# Every key is written out; config_load() reads it back to the same configuration.\n", f);
    config_write_sections(f, c);
    config_write_callbacks(f, c);
}

char *config_to_yaml(const Config *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL, "out of memory writing the configuration");
    config_write(c, f);
    fclose(f);
    return buf;
}

/* ---- differences between two configurations ---- */

typedef struct CfgEntry {
    char key[96];
    char *value;
} CfgEntry;

typedef struct CfgEntries {
    CfgEntry *e;
    int n, cap;
} CfgEntries;

static void entry_add(CfgEntries *l, const char *key, const char *value) {
    if (l->n == l->cap) l->e = core_realloc(l->e, sizeof(CfgEntry) * (size_t)(l->cap = l->cap ? 2 * l->cap : 64));
    snprintf(l->e[l->n].key, sizeof l->e[l->n].key, "%s", key);
    l->e[l->n++].value = strdup(value);
}

/* The written form as (section.key, value) entries; a section written inline
 * ("callbacks: []") or as a list (the callbacks) is one entry. Returns the
 * count; *out is malloc'ed (free the values too). */
static int config_entries(const Config *c, CfgEntry **out) {
    char *buf = config_to_yaml(c), *save = NULL;
    CfgEntries l = {0};
    char section[64] = "";
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        if (line[0] != ' ') { /* "section:" or "section: value" */
            size_t k = strcspn(line, ":");
            snprintf(section, sizeof section, "%.*s", (int)k, line);
            if (line[k] == ':' && line[k + 1] == ' ') entry_add(&l, section, line + k + 2);
            continue;
        }
        const char *t = line + strspn(line, " ");
        if (t[0] == '-' && l.n > 0 && strcmp(l.e[l.n - 1].key, section) == 0) { /* the list goes on */
            CfgEntry *last = &l.e[l.n - 1];
            size_t a = strlen(last->value), b = strlen(t);
            last->value = core_realloc(last->value, a + b + 2);
            last->value[a] = ' ';
            memcpy(last->value + a + 1, t, b + 1);
        } else if (t[0] == '-') { /* a list starts */
            entry_add(&l, section, t);
        } else { /* "  key: value" */
            size_t k = strcspn(t, ":");
            char key[96];
            snprintf(key, sizeof key, "%s.%.*s", section, (int)k, t);
            entry_add(&l, key, t[k] == ':' ? t + k + 1 + (t[k + 1] == ' ') : "");
        }
    }
    free(buf);
    *out = l.e;
    return l.n;
}

int config_diff(const Config *was, const Config *now,
                void (*fn)(const char *key, const char *was_v, const char *now_v, void *user), void *user) {
    CfgEntry *a, *b;
    int na = config_entries(was, &a), nb = config_entries(now, &b), diffs = 0;
    for (int i = 0; i < nb; i++) {
        const char *old = NULL;
        for (int j = 0; j < na && !old; j++)
            if (strcmp(a[j].key, b[i].key) == 0) old = a[j].value;
        if (!old || strcmp(old, b[i].value) != 0) {
            diffs++;
            if (fn) fn(b[i].key, old ? old : "(absent)", b[i].value, user);
        }
    }
    for (int i = 0; i < na; i++) free(a[i].value);
    for (int i = 0; i < nb; i++) free(b[i].value);
    core_free(a), core_free(b);
    return diffs;
}
