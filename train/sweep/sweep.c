/* train/sweep/sweep.c — reading a sweep file into its list of runs (sweep.h).
 *
 * The YAML is parsed into the project's position-keeping tree
 * (io/yaml_tree.h) and its sections are bound through the configuration
 * schema (train/config/config_schema.h) like every configuration: typed
 * scalars, ranges, the unknown-key message and "FILE:LINE:COL: KEY:
 * problem" errors come from one table per section. */
#include "train/sweep/sweep.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/fsutil.h"
#include "io/yaml_tree.h"
#include "train/config/config_schema.h"

/* A grid bigger than this is almost certainly a mistake (and would flood the
 * cluster); split it into several sweeps if it is not. */
#define SWEEP_MAX_RUNS 4096

char *sweep_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = core_malloc(n);
    memcpy(d, s, n);
    return d;
}

/* --- a growing string --- */

typedef struct StrBuf {
    char *s;
    size_t n, cap;
} StrBuf;

static void sb_putn(StrBuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 64;
        b->s = core_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_puts(StrBuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* --- YAML values back to flow text (a grid value becomes "key=<text>") --- */

/* Plain scalars made only of these characters read back the same in a flow
 * context; anything else is written double-quoted. */
static int plain_is_safe(const char *t) {
    if (!*t) return 0;
    for (const char *c = t; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_.+-/~", *c)) return 0;
    return 1;
}

static void flow_scalar(StrBuf *b, const YamlNode *n) {
    if (!n->quoted && plain_is_safe(n->text)) {
        sb_puts(b, n->text);
        return;
    }
    if (!n->quoted && yaml_tree_is_null(n)) { /* an empty value stays empty: the config reports it */
        sb_puts(b, n->text);
        return;
    }
    sb_puts(b, "\"");
    for (const char *c = n->text; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') snprintf(esc, sizeof esc, "\\%c", *c);
        else if ((unsigned char)*c < 0x20) snprintf(esc, sizeof esc, "\\x%02X", (unsigned)(unsigned char)*c);
        else esc[0] = *c, esc[1] = '\0';
        sb_puts(b, esc);
    }
    sb_puts(b, "\"");
}

static void flow_node(StrBuf *b, const YamlNode *n) {
    if (n->kind == YAML_TREE_SCALAR) {
        flow_scalar(b, n);
        return;
    }
    int map = n->kind == YAML_TREE_MAP;
    sb_puts(b, map ? "{" : "[");
    for (int i = 0; i < n->n; i++) {
        if (i) sb_puts(b, ", ");
        if (map) {
            flow_scalar(b, n->keys[i]);
            sb_puts(b, ": ");
        }
        flow_node(b, n->items[i]);
    }
    sb_puts(b, map ? "}" : "]");
}

/* --- run names --- */

static int name_char_ok(char c) { return isalnum((unsigned char)c) || (c && strchr("._=,+-", c)); }

/* An explicit name must already be safe as a directory name: we would rather
 * refuse it than silently run under another name. Returns NULL or the problem. */
static const char *name_problem(const char *name) {
    if (!*name) return "must not be empty";
    if (name[0] == '.' || name[0] == '-') return "must not start with '.' or '-'";
    if (strlen(name) > SWEEP_MAX_NAME) return "is too long (see SWEEP_MAX_NAME: 160 characters)";
    for (const char *c = name; *c; c++)
        if (!name_char_ok(*c)) return "may only use letters, digits and . _ = , + -";
    return NULL;
}

/* The part of a grid key that names it in a run name: the last path segment
 * without list indices ("callbacks[1].enable_step" -> "enable_step"). */
static void short_key(const char *key, char *out, size_t len) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", key);
    for (;;) { /* drop trailing ".3" segments and "[3]" suffixes */
        size_t k = strlen(tmp);
        if (k && tmp[k - 1] == ']') {
            char *open = strrchr(tmp, '[');
            if (!open || open == tmp) break;
            *open = '\0';
            continue;
        }
        char *dot = strrchr(tmp, '.');
        if (!dot || !dot[1]) break;
        int digits = 1;
        for (const char *c = dot + 1; *c; c++) digits &= isdigit((unsigned char)*c) != 0;
        if (!digits) break;
        *dot = '\0';
    }
    const char *dot = strrchr(tmp, '.');
    snprintf(out, len, "%s", dot ? dot + 1 : tmp);
}

/* Replace every character a directory name should not have by '_'. */
static void make_safe(char *s) {
    for (char *c = s; *c; c++)
        if (!name_char_ok(*c)) *c = '_';
    if (s[0] == '.' || s[0] == '-') s[0] = '_';
}

/* A list of "KEY.PATH=VALUE" strings (validated later by the config loader;
 * here only the shape). */
static int read_overrides(const CfgBinder *r, const YamlNode *list, const char *path, char ***out, int *n) {
    char got[96], item[300];
    *out = NULL, *n = 0;
    if (!list || yaml_tree_is_null(list)) return 0;
    if (list->kind != YAML_TREE_SEQ)
        return cfg_error(r, list, path, "expected a list of KEY.PATH=VALUE strings (e.g. [\"train.steps=300\"]), got %s",
                        yaml_tree_describe(list, got, sizeof got));
    *out = core_calloc(sizeof(char *) * (size_t)(list->n ? list->n : 1));
    for (int i = 0; i < list->n; i++) {
        const YamlNode *v = list->items[i];
        snprintf(item, sizeof item, "%s[%d]", path, i);
        if (v->kind != YAML_TREE_SCALAR)
            return cfg_error(r, v, item, "expected a KEY.PATH=VALUE string, got %s (quote it: \"key=[1, 2]\")",
                            yaml_tree_describe(v, got, sizeof got));
        const char *eq = strchr(v->text, '=');
        if (!eq || eq == v->text)
            return cfg_error(r, v, item, "expected KEY.PATH=VALUE (e.g. optim.lr=1e-4), got '%s'", v->text);
        (*out)[(*n)++] = sweep_strdup(v->text);
    }
    return 0;
}

/* A string as an override value: plain when it reads back as the same
 * string, else double-quoted (an out_dir may hold " #", ": " or spaces). */
static void sb_put_yaml_string(StrBuf *b, const char *t) {
    int plain = isalnum((unsigned char)t[0]) || t[0] == '_' || t[0] == '/' || t[0] == '.';
    for (const char *c = t; *c && plain; c++) plain = isalnum((unsigned char)*c) || strchr("_.+-/=,", *c);
    static const char *const nulls[] = {"null", "Null", "NULL", NULL};
    for (int i = 0; nulls[i] && plain; i++) plain = strcmp(t, nulls[i]) != 0;
    if (plain) {
        sb_puts(b, t);
        return;
    }
    sb_puts(b, "\"");
    for (const char *c = t; *c; c++) {
        if (*c == '"' || *c == '\\') sb_puts(b, "\\");
        sb_putn(b, c, 1);
    }
    sb_puts(b, "\"");
}

static void add_run(Sweep *s, char *name, int line, int col, char **set, int n_set) {
    s->runs = core_realloc(s->runs, sizeof *s->runs * (size_t)(s->n_runs + 1));
    s->runs[s->n_runs++] = (SweepRun){.name = name, .line = line, .col = col, .n_set = n_set, .set = set};
}

/* The grid: checks each key's list, then adds the cartesian product (the
 * first key varies slowest, values in list order). */
static int read_grid(const CfgBinder *r, const YamlNode *grid, Sweep *s) {
    char got[96], path[300];
    if (!grid || yaml_tree_is_null(grid)) return 0;
    if (grid->kind != YAML_TREE_MAP)
        return cfg_error(r, grid, "grid", "expected a map of KEY.PATH: [values...], got %s",
                        yaml_tree_describe(grid, got, sizeof got));
    long total = 1;
    for (int k = 0; k < grid->n; k++) {
        const char *key = grid->keys[k]->text;
        const YamlNode *vals = grid->items[k];
        snprintf(path, sizeof path, "grid.%s", key);
        if (!*key || strchr(key, '=') || strchr(key, ' '))
            return cfg_error(r, grid->keys[k], path, "a grid key is a config key path (e.g. model.sla2_topk_ratio)");
        if (vals->kind != YAML_TREE_SEQ || vals->n == 0)
            return cfg_error(r, vals, path, "expected a non-empty list of values (e.g. [0.25, 0.5]), got %s",
                            vals->kind == YAML_TREE_SEQ ? "an empty list" : yaml_tree_describe(vals, got, sizeof got));
        /* A repeated value would make two identical runs. */
        for (int i = 0; i < vals->n; i++) {
            StrBuf a = {0};
            flow_node(&a, vals->items[i]);
            for (int j = 0; j < i; j++) {
                StrBuf b = {0};
                flow_node(&b, vals->items[j]);
                int same = !strcmp(a.s, b.s);
                core_free(b.s);
                if (same) {
                    int line = vals->items[j]->line;
                    snprintf(path + strlen(path), sizeof path - strlen(path), "[%d]", i);
                    cfg_error(r, vals->items[i], path, "the value %s repeats item [%d] (line %d)", a.s, j, line);
                    core_free(a.s);
                    return -1;
                }
            }
            core_free(a.s);
        }
        total *= vals->n;
        if (total > SWEEP_MAX_RUNS)
            return cfg_error(r, vals, path, "the grid has more than %d runs; split the sweep", SWEEP_MAX_RUNS);
    }
    if (grid->n == 0) return 0;

    /* Short names, unless two keys share one ("callbacks[0].every" and "callbacks[2].every"). */
    char (*label)[256] = core_calloc(sizeof *label * (size_t)grid->n);
    for (int k = 0; k < grid->n; k++) short_key(grid->keys[k]->text, label[k], sizeof label[k]);
    int *clash = core_calloc(sizeof(int) * (size_t)grid->n); /* decided on the short labels, before any is replaced */
    for (int k = 0; k < grid->n; k++)
        for (int j = 0; j < grid->n; j++) clash[k] |= j != k && !strcmp(label[j], label[k]);
    for (int k = 0; k < grid->n; k++)
        if (clash[k]) snprintf(label[k], sizeof label[k], "%s", grid->keys[k]->text);
    core_free(clash);

    int *idx = core_calloc(sizeof(int) * (size_t)grid->n);
    for (long c = 0; c < total; c++) {
        /* Mixed-radix count: the last key is the fastest digit. */
        long rest = c;
        for (int k = grid->n - 1; k >= 0; k--) {
            idx[k] = (int)(rest % grid->items[k]->n);
            rest /= grid->items[k]->n;
        }
        StrBuf name = {0};
        char **set = core_calloc(sizeof(char *) * (size_t)grid->n);
        for (int k = 0; k < grid->n; k++) {
            StrBuf val = {0}, ov = {0};
            flow_node(&val, grid->items[k]->items[idx[k]]);
            sb_puts(&ov, grid->keys[k]->text);
            sb_puts(&ov, "=");
            sb_puts(&ov, val.s);
            set[k] = ov.s;
            if (k) sb_puts(&name, ",");
            sb_puts(&name, label[k]);
            sb_puts(&name, "=");
            sb_puts(&name, val.s);
            core_free(val.s);
        }
        make_safe(name.s);
        const YamlNode *at = grid->items[0]->items[idx[0]];
        add_run(s, name.s, at->line, at->col, set, grid->n);
        if (strlen(name.s) > SWEEP_MAX_NAME) {
            core_free(idx);
            core_free(label);
            return cfg_error(r, at, "grid", "the run name '%.40s...' is longer than %d characters; use explicit runs "
                            "with short names", name.s, SWEEP_MAX_NAME);
        }
    }
    core_free(idx);
    core_free(label);
    return 0;
}

/* --- the schema tables --- */

/* The top level as bound: the scalars, and the sections kept as nodes to be
 * read in a fixed order after the table (seeds repeats the runs that grid
 * and runs make; eval and set are read where their paths are known). */
typedef struct SweepFile {
    char name[128], base[1024], out_dir[1024];
    const YamlNode *set, *grid, *runs, *seeds, *eval, *fid;
} SweepFile;

/* One runs[] entry. */
typedef struct SweepRunFile {
    char name[SWEEP_MAX_NAME + 1];
    const YamlNode *set;
} SweepRunFile;

/* eval: what jit-eval is given; numbers SWEEP_UNSET / NAN when left out. */
#define SWEEP_UNSET (-1000)
typedef struct SweepEvalFile {
    char classifier[1024], real[1024];
    int per_class, steps, ema, seed, batch;
    float cfg;
} SweepEvalFile;

#define SWEEP_KEEP(T, field)                                                                   \
    static int keep_##T##_##field(const CfgBinder *b, const YamlNode *n, const char *p, void *base) { \
        (void)b, (void)p;                                                                      \
        ((T *)base)->field = n;                                                                \
        return 0;                                                                              \
    }
SWEEP_KEEP(SweepFile, set)
SWEEP_KEEP(SweepFile, grid)
SWEEP_KEEP(SweepFile, runs)
SWEEP_KEEP(SweepFile, seeds)
SWEEP_KEEP(SweepFile, eval)
SWEEP_KEEP(SweepFile, fid)
SWEEP_KEEP(SweepRunFile, set)

static const CfgField sweep_fields[] = {
    CFG_STRING(SweepFile, "name", name),
    CFG_STRING(SweepFile, "base", base),
    CFG_STRING(SweepFile, "out_dir", out_dir),
    CFG_CUSTOM("set", keep_SweepFile_set, NULL),
    CFG_CUSTOM("grid", keep_SweepFile_grid, NULL),
    CFG_CUSTOM("runs", keep_SweepFile_runs, NULL),
    CFG_CUSTOM("seeds", keep_SweepFile_seeds, NULL),
    CFG_CUSTOM("eval", keep_SweepFile_eval, NULL),
    CFG_CUSTOM("fid", keep_SweepFile_fid, NULL),
};

/* fid: jit-eval fid's options; the lists stay strings ("1.5,2.9"), jit-eval parses them. */
typedef struct SweepFidFile {
    char features[1024], ref[1024], real[1024], cfg[256], interval[256], ema[64];
    int n, steps, seed, chunk, batch;
} SweepFidFile;

static const CfgField fid_fields[] = {
    CFG_STRING(SweepFidFile, "features", features),
    CFG_STRING(SweepFidFile, "ref", ref),
    CFG_STRING(SweepFidFile, "real", real),
    CFG_STRING(SweepFidFile, "cfg", cfg),
    CFG_STRING(SweepFidFile, "interval", interval),
    CFG_STRING(SweepFidFile, "ema", ema),
    CFG_INT(SweepFidFile, "n", n, CFGR_GE, 2, 0),
    CFG_INT(SweepFidFile, "steps", steps, CFGR_GE, 1, 0),
    CFG_INT(SweepFidFile, "seed", seed, CFGR_GE, 0, 0),
    CFG_INT(SweepFidFile, "chunk", chunk, CFGR_GE, 1, 0),
    CFG_INT(SweepFidFile, "batch", batch, CFGR_GE, 1, 0),
};

static const CfgField run_fields[] = {
    CFG_STRING(SweepRunFile, "name", name),
    CFG_CUSTOM("set", keep_SweepRunFile_set, NULL),
};

/* jit-eval's options (docs/eval.md): what they mean is jit-eval's business,
 * but the numbers are checked here, so a typo fails at `plan`, not after
 * hours of training. */
static const CfgField eval_fields[] = {
    CFG_STRING(SweepEvalFile, "classifier", classifier),
    CFG_STRING(SweepEvalFile, "real", real),
    CFG_INT(SweepEvalFile, "per_class", per_class, CFGR_GE, 0, 0),
    CFG_INT(SweepEvalFile, "steps", steps, CFGR_GE, 0, 0),
    CFG_FLOAT(SweepEvalFile, "cfg", cfg, CFGR_GE, 0, 0),
    CFG_INT(SweepEvalFile, "ema", ema, CFGR_GE, -1, 0),
    CFG_INT(SweepEvalFile, "seed", seed, CFGR_GE, 0, 0),
    CFG_INT(SweepEvalFile, "batch", batch, CFGR_GE, 0, 0),
};

static int read_runs(const CfgBinder *r, const YamlNode *runs, Sweep *s) {
    char got[96], path[64], key_path[96];
    if (!runs || yaml_tree_is_null(runs)) return 0;
    if (runs->kind != YAML_TREE_SEQ)
        return cfg_error(r, runs, "runs", "expected a list of {name: NAME, set: [...]}, got %s",
                        yaml_tree_describe(runs, got, sizeof got));
    for (int i = 0; i < runs->n; i++) {
        const YamlNode *m = runs->items[i];
        SweepRunFile rf = {.set = NULL};
        snprintf(path, sizeof path, "runs[%d]", i);
        if (m->kind != YAML_TREE_MAP)
            return cfg_error(r, m, path, "expected {name: NAME, set: [...]}, got %s", yaml_tree_describe(m, got, sizeof got));
        if (cfg_bind_fields(r, m, path, "under runs[]", run_fields, CFG_N_FIELDS(run_fields), &rf)) return -1;
        snprintf(key_path, sizeof key_path, "%s.name", path);
        if (!rf.name[0]) return cfg_error(r, m, key_path, "missing (required)");
        const char *bad = name_problem(rf.name);
        if (bad) return cfg_error(r, yaml_tree_get(m, "name"), key_path, "the run name '%s' %s", rf.name, bad);
        char **set = NULL;
        int n_set = 0;
        snprintf(key_path, sizeof key_path, "%s.set", path);
        /* Added before reading the overrides, so sweep_free owns them on an error. */
        add_run(s, sweep_strdup(rf.name), m->line, m->col, NULL, 0);
        int rc = read_overrides(r, rf.set, key_path, &set, &n_set);
        s->runs[s->n_runs - 1].set = set, s->runs[s->n_runs - 1].n_set = n_set;
        if (rc) return -1;
    }
    return 0;
}

/* "{seed}" in an override replaced by the seed. */
static char *with_seed(const char *ov, long long seed) {
    StrBuf b = {0};
    char num[32];
    snprintf(num, sizeof num, "%lld", seed);
    for (const char *p = ov; *p;) {
        if (!strncmp(p, "{seed}", 6)) sb_puts(&b, num), p += 6;
        else sb_putn(&b, p, 1), p++;
    }
    if (!b.s) sb_puts(&b, "");
    return b.s;
}

/* seeds: a list of distinct integers >= 0; the runs read so far become the
 * groups, each repeated once per seed. */
static int read_seeds(const CfgBinder *r, const YamlNode *list, Sweep *s) {
    s->n_groups = s->n_runs;
    s->groups = core_calloc(sizeof(char *) * (size_t)s->n_runs);
    for (int i = 0; i < s->n_runs; i++) {
        s->groups[i] = sweep_strdup(s->runs[i].name);
        s->runs[i].group = i, s->runs[i].seed = -1;
    }
    if (!list || yaml_tree_is_null(list)) return 0;
    char got[96], path[32];
    if (list->kind != YAML_TREE_SEQ || list->n == 0)
        return cfg_error(r, list, "seeds", "expected a non-empty list of seeds (e.g. [0, 1, 2]), got %s",
                         yaml_tree_describe(list, got, sizeof got));
    s->seeds = core_calloc(sizeof(long long) * (size_t)list->n);
    for (int k = 0; k < list->n; k++) {
        const YamlNode *v = list->items[k];
        char *end;
        snprintf(path, sizeof path, "seeds[%d]", k);
        long long x = v->kind == YAML_TREE_SCALAR ? strtoll(v->text, &end, 10) : -1;
        if (v->kind != YAML_TREE_SCALAR || end == v->text || *end || x < 0)
            return cfg_error(r, v, path, "expected an integer >= 0, got %s", yaml_tree_describe(v, got, sizeof got));
        for (int j = 0; j < k; j++)
            if (s->seeds[j] == x) return cfg_error(r, v, path, "the seed %lld repeats seeds[%d]", x, j);
        s->seeds[s->n_seeds++] = x;
    }
    if ((long)s->n_runs * s->n_seeds > SWEEP_MAX_RUNS)
        return cfg_error(r, list, "seeds", "the sweep has more than %d runs with its seeds; split it", SWEEP_MAX_RUNS);
    SweepRun *base = s->runs;
    int n_base = s->n_runs;
    s->runs = NULL, s->n_runs = 0;
    int rc = 0;
    for (int i = 0; i < n_base; i++) {
        for (int k = 0; k < s->n_seeds; k++) {
            char num[32];
            snprintf(num, sizeof num, ",seed=%lld", s->seeds[k]);
            StrBuf name = {0};
            sb_puts(&name, base[i].name);
            sb_puts(&name, num);
            char **set = core_calloc(sizeof(char *) * (size_t)(base[i].n_set + 1));
            for (int j = 0; j < base[i].n_set; j++) set[j] = with_seed(base[i].set[j], s->seeds[k]);
            snprintf(num, sizeof num, "run.seed=%lld", s->seeds[k]);
            set[base[i].n_set] = sweep_strdup(num);
            add_run(s, name.s, base[i].line, base[i].col, set, base[i].n_set + 1);
            s->runs[s->n_runs - 1].group = i, s->runs[s->n_runs - 1].seed = s->seeds[k];
            if (!rc && strlen(name.s) > SWEEP_MAX_NAME) {
                YamlNode at = {.line = base[i].line, .col = base[i].col};
                rc = cfg_error(r, &at, "seeds", "the run name '%.40s...' is longer than %d characters", name.s,
                               SWEEP_MAX_NAME);
            }
        }
        core_free(base[i].name);
        sweep_free_overrides(base[i].set, base[i].n_set);
    }
    core_free(base);
    return rc;
}

static int check_unique_names(const CfgBinder *r, const Sweep *s) {
    for (int i = 0; i < s->n_runs; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(s->runs[i].name, s->runs[j].name)) {
                YamlNode at = {.line = s->runs[i].line, .col = s->runs[i].col};
                return cfg_error(r, &at, NULL, "run %d has the name '%s' of run %d (line %d): run names must be unique",
                                i, s->runs[i].name, j, s->runs[j].line);
            }
    return 0;
}

static void eval_add(SweepEval *e, const char *a, const char *b) {
    e->args = core_realloc(e->args, sizeof(char *) * (size_t)(e->n_args + 2));
    e->args[e->n_args++] = sweep_strdup(a);
    e->args[e->n_args++] = sweep_strdup(b);
}

static void eval_int(SweepEval *e, const char *option, int v) {
    char num[32];
    if (v == SWEEP_UNSET) return;
    snprintf(num, sizeof num, "%d", v);
    eval_add(e, option, num);
}

/* eval: {classifier, real, per_class, ...} -> jit-eval's options, in table order. */
static int read_eval(const CfgBinder *r, const YamlNode *ev, Sweep *s) {
    if (!ev || yaml_tree_is_null(ev)) return 0;
    SweepEvalFile e = {.per_class = SWEEP_UNSET, .steps = SWEEP_UNSET, .ema = SWEEP_UNSET, .seed = SWEEP_UNSET,
                       .batch = SWEEP_UNSET, .cfg = NAN};
    if (cfg_bind_fields(r, ev, "eval", "under eval", eval_fields, CFG_N_FIELDS(eval_fields), &e)) return -1;
    if (!e.classifier[0]) return cfg_error(r, ev, "eval.classifier", "missing (required when eval: is given)");
    if (!e.real[0]) return cfg_error(r, ev, "eval.real", "missing (required when eval: is given)");
    s->eval.enabled = 1;
    eval_add(&s->eval, "--classifier", e.classifier);
    eval_add(&s->eval, "--real", e.real);
    char num[32];
    eval_int(&s->eval, "--per-class", e.per_class);
    eval_int(&s->eval, "--steps", e.steps);
    if (!isnan(e.cfg)) {
        snprintf(num, sizeof num, "%.9g", (double)e.cfg);
        eval_add(&s->eval, "--cfg", num);
    }
    eval_int(&s->eval, "--ema", e.ema);
    eval_int(&s->eval, "--seed", e.seed);
    eval_int(&s->eval, "--batch", e.batch);
    return 0;
}

static int read_fid(const CfgBinder *r, const YamlNode *node, Sweep *s) {
    if (!node || yaml_tree_is_null(node)) return 0;
    SweepFidFile e = {.n = SWEEP_UNSET, .steps = SWEEP_UNSET, .seed = SWEEP_UNSET, .chunk = SWEEP_UNSET,
                      .batch = SWEEP_UNSET};
    if (cfg_bind_fields(r, node, "fid", "under fid", fid_fields, CFG_N_FIELDS(fid_fields), &e)) return -1;
    if (!e.features[0]) return cfg_error(r, node, "fid.features", "missing (classifier:FILE or inception:FILE)");
    if (!e.ref[0] == !e.real[0])
        return cfg_error(r, node, "fid.ref", "give the reference statistics (ref: FILE.npz) or real images (real: DIR), "
                                             "one of them");
    SweepEval *f = &s->fid;
    f->enabled = 1;
    eval_add(f, "--features", e.features);
    eval_add(f, e.ref[0] ? "--ref" : "--real", e.ref[0] ? e.ref : e.real);
    if (e.cfg[0]) eval_add(f, "--cfg", e.cfg);
    if (e.interval[0]) eval_add(f, "--interval", e.interval);
    if (e.ema[0]) eval_add(f, "--ema", e.ema);
    eval_int(f, "--n", e.n);
    eval_int(f, "--steps", e.steps);
    eval_int(f, "--seed", e.seed);
    eval_int(f, "--chunk", e.chunk);
    eval_int(f, "--batch", e.batch);
    return 0;
}

static int sweep_read(const CfgBinder *r, const YamlNode *root, Sweep *s) {
    char got[96];
    if (!root) return cfg_error(r, NULL, NULL, "the sweep file is empty (it needs at least name, base and a grid or runs)");
    if (root->kind != YAML_TREE_MAP)
        return cfg_error(r, root, NULL, "expected a map (name:, base:, ...), got %s", yaml_tree_describe(root, got, sizeof got));
    SweepFile f = {.set = NULL};
    if (cfg_bind_fields(r, root, "", "in a sweep file", sweep_fields, CFG_N_FIELDS(sweep_fields), &f)) return -1;
    if (!f.name[0]) return cfg_error(r, root, "name", "missing (required)");
    if (!f.base[0]) return cfg_error(r, root, "base", "missing (required)");
    s->name = sweep_strdup(f.name);
    s->base = sweep_strdup(f.base);
    if (f.out_dir[0]) {
        s->out_dir = sweep_strdup(f.out_dir);
    } else {
        StrBuf d = {0};
        sb_puts(&d, "runs/sweeps/");
        sb_puts(&d, s->name);
        s->out_dir = d.s;
    }
    if (read_overrides(r, f.set, "set", &s->set, &s->n_set)) return -1;
    if (read_grid(r, f.grid, s) || read_runs(r, f.runs, s)) return -1;
    if (s->n_runs == 0) return cfg_error(r, root, NULL, "the sweep has no runs: give a grid, runs, or both");
    if (read_seeds(r, f.seeds, s)) return -1;
    if (read_eval(r, f.eval, s) || read_fid(r, f.fid, s)) return -1;
    return check_unique_names(r, s);
}

int sweep_load(Sweep *s, const char *path, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    char *text;
    size_t len;
    if (io_read_bounded(path, "the sweep file", IO_MAX_TEXT_BYTES, &text, &len, err, errlen)) return -1;
    YamlNode *root = NULL;
    int rc = yaml_tree_parse(path, text, len, &root, err, errlen);
    core_free(text);
    s->path = sweep_strdup(path);
    if (rc == 0) {
        CfgBinder r = {.file = path, .root = root, .err = err, .errlen = errlen};
        rc = sweep_read(&r, root, s);
    }
    yaml_tree_free(root);
    if (rc) sweep_free(s);
    return rc ? -1 : 0;
}

void sweep_free_overrides(char **list, int n) {
    for (int i = 0; i < n; i++) core_free(list[i]);
    core_free(list);
}

void sweep_free(Sweep *s) {
    for (int i = 0; i < s->n_runs; i++) {
        core_free(s->runs[i].name);
        sweep_free_overrides(s->runs[i].set, s->runs[i].n_set);
    }
    core_free(s->runs);
    sweep_free_overrides(s->groups, s->n_groups);
    core_free(s->seeds);
    sweep_free_overrides(s->set, s->n_set);
    sweep_free_overrides(s->eval.args, s->eval.n_args);
    sweep_free_overrides(s->fid.args, s->fid.n_args);
    core_free(s->path), core_free(s->name), core_free(s->base), core_free(s->out_dir);
    memset(s, 0, sizeof *s);
}

void sweep_run_dir(const Sweep *s, int i, char *buf, size_t len) {
    size_t k = strlen(s->out_dir);
    int slash = k > 0 && s->out_dir[k - 1] == '/';
    snprintf(buf, len, "%s%s%s", s->out_dir, slash ? "" : "/", s->runs[i].name);
}

int sweep_run_overrides(const Sweep *s, int i, char ***out) {
    const SweepRun *r = &s->runs[i];
    int n = 0;
    char **list = core_calloc(sizeof(char *) * (size_t)(s->n_set + r->n_set + 2));
    for (int k = 0; k < s->n_set; k++) list[n++] = sweep_strdup(s->set[k]);
    for (int k = 0; k < r->n_set; k++) list[n++] = sweep_strdup(r->set[k]);
    StrBuf name = {0}, dir = {0};
    char path[1024];
    sweep_run_dir(s, i, path, sizeof path);
    sb_puts(&name, "run.name=");
    sb_put_yaml_string(&name, r->name);
    sb_puts(&dir, "run.out_dir=");
    sb_put_yaml_string(&dir, path);
    list[n++] = name.s;
    list[n++] = dir.s;
    *out = list;
    return n;
}
