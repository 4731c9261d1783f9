/* train/config/config_schema.h — the schema tables that bind a YamlNode
 * tree to a Config, and the helpers they share: the configurations in
 * train/config/ and the sweep file reader (train/sweep/sweep.c).
 *
 * A section (run:, optim:, one callback, ...) is a table of CfgField rows:
 * the key, its type, where it lives, its range. The same table drives
 * binding, the unknown-key message (it lists the known keys) and
 * config_write, so what is written is exactly what is read back. */
#ifndef TRAIN_CONFIG_CONFIG_SCHEMA_H
#define TRAIN_CONFIG_CONFIG_SCHEMA_H

#include <stddef.h>
#include <stdio.h>

#include "io/yaml_tree.h"
#include "train/config/config.h"

/* Schema rows for a field f of struct T (every configuration's tables use
 * these): the key, the type, where it lives, its range. */
#define CFG_INT(T, k, f, r, l, h) {.key = k, .type = CFGT_INT, .off = offsetof(T, f), .range = r, .lo = l, .hi = h}
#define CFG_FLOAT(T, k, f, r, l, h) {.key = k, .type = CFGT_FLOAT, .off = offsetof(T, f), .range = r, .lo = l, .hi = h}
#define CFG_BOOL(T, k, f) {.key = k, .type = CFGT_BOOL, .off = offsetof(T, f)}
#define CFG_STRING(T, k, f) {.key = k, .type = CFGT_STR, .off = offsetof(T, f), .size = sizeof(((T *)0)->f)}
/* A string that may be left empty ("" or null: not given), written back as "". */
#define CFG_STRING_OPT(T, k, f) \
    {.key = k, .type = CFGT_STR, .off = offsetof(T, f), .size = sizeof(((T *)0)->f), .empty_ok = 1}
#define CFG_ENUM(T, k, f, nm) {.key = k, .type = CFGT_ENUM, .off = offsetof(T, f), .names = nm}
#define CFG_U64(T, k, f) {.key = k, .type = CFGT_U64, .off = offsetof(T, f)}
#define CFG_CUSTOM(k, bf, wf) {.key = k, .type = CFGT_CUSTOM, .bind = bf, .write = wf}
#define CFG_N_FIELDS(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* Where errors go and what they are relative to. */
typedef struct CfgBinder {
    const char *file;     /* the configuration's name in messages */
    const YamlNode *root; /* fallback position for checks with no key of their own */
    char *err;
    size_t errlen;
} CfgBinder;

typedef enum { CFGT_INT, CFGT_U64, CFGT_FLOAT, CFGT_BOOL, CFGT_STR, CFGT_ENUM, CFGT_CUSTOM } CfgType;

/* Allowed values of a number: none, >= lo, > lo, [lo, hi), (lo, hi], [lo, hi]. */
typedef enum { CFGR_ANY, CFGR_GE, CFGR_GT, CFGR_GE_LT, CFGR_GT_LE, CFGR_GE_LE } CfgRange;

struct CfgField;
typedef int (*CfgBindFn)(const CfgBinder *b, const YamlNode *n, const char *path, void *base);
/* Writes the value only (after "key: "). */
typedef void (*CfgWriteFn)(FILE *f, const struct CfgField *fd, const void *base);

typedef struct CfgField {
    const char *key;
    CfgType type;
    size_t off;                /* into the section's base struct */
    size_t size;               /* CFGT_STR: buffer size */
    CfgRange range;
    double lo, hi;
    const char *const *names;  /* CFGT_ENUM: names of 0, 1, ...; CFGT_STR: the allowed values (NULL: any) */
    CfgBindFn bind;            /* CFGT_CUSTOM */
    CfgWriteFn write;          /* CFGT_CUSTOM; NULL: not written (an alias of other keys) */
    int early;                 /* bound before the other keys whatever the file's order */
    int empty_ok;              /* CFGT_STR: "" or null means "not given" (optional paths) */
} CfgField;

/* "FILE:LINE:COL: PATH: message" (or "override 'K=V': PATH: message" for a
 * node from an override; PATH left out when NULL). Always returns -1. */
int cfg_error(const CfgBinder *b, const YamlNode *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Typed scalar readers: 0, or -1 with the message set. */
int cfg_read_int(const CfgBinder *b, const YamlNode *n, const char *path, long long *out);
int cfg_read_float(const CfgBinder *b, const YamlNode *n, const char *path, double *out);
int cfg_read_bool(const CfgBinder *b, const YamlNode *n, const char *path, int *out);
int cfg_read_str(const CfgBinder *b, const YamlNode *n, const char *path, char *dst, size_t size);
/* Index of the scalar among names (NULL-terminated); error lists them. */
int cfg_read_name(const CfgBinder *b, const YamlNode *n, const char *path, const char *const *names, int *out);
/* A list of min..max entries (the message names `what`, e.g. "[beta1, beta2]"). */
int cfg_expect_list(const CfgBinder *b, const YamlNode *n, const char *path, int min, int max, const char *what);
int cfg_check_range(const CfgBinder *b, const YamlNode *n, const char *path, double v, CfgRange r, double lo,
                    double hi);
/* A float in [lo, hi) etc., stored as float. */
int cfg_read_float_in(const CfgBinder *b, const YamlNode *n, const char *path, CfgRange r, double lo, double hi,
                      float *out);

/* Bind the map `sec` (NULL or an empty value: nothing set) against the
 * table. `prefix` names the section in paths ("optim", "callbacks[2]"; ""
 * for a file's top level);
 * `known` says where the keys are known in the unknown-key message
 * ("under optim", "for SLA2QATCallback"). */
int cfg_bind_fields(const CfgBinder *b, const YamlNode *sec, const char *prefix, const char *known,
                    const CfgField *fields, int n_fields, void *base);
/* "unknown key 'PATH' (known KNOWN: a, b, c)" at the key node. */
int cfg_unknown_key(const CfgBinder *b, const YamlNode *key, const char *path, const char *known,
                    const CfgField *fields, int n_fields);
/* Every field that has a writer, one "INDENTkey: value" line each. */
void cfg_write_fields(FILE *f, const char *indent, const CfgField *fields, int n_fields, const void *base);

/* Writers shared by the tables. */
void cfg_write_float(FILE *f, float v);  /* shortest text that reads back to the same float */
void cfg_write_string(FILE *f, const char *s); /* double-quoted, escaped */

/* "a", "a or b", "a, b or c" */
void cfg_join_names(char *buf, size_t len, const char *const *names);

/* The sections (config_schema.c) and the callbacks (config_callbacks.c). */
int config_bind(const CfgBinder *b, const YamlNode *root, Config *c);
int config_bind_callbacks(const CfgBinder *b, const YamlNode *list, Config *c);
void config_write_sections(FILE *f, const Config *c);
void config_write_callbacks(FILE *f, const Config *c);

#endif
