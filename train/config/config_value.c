/* train/config/config_value.c — the typed readers and writers behind the schema
 * tables: scalars as integers, numbers, booleans, names and strings, with
 * the position-naming error messages, and the table-driven section binder
 * and writer (see config_schema.h). */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "train/config/config_schema.h"

int cfg_error(const CfgBinder *b, const YamlNode *at, const char *path, const char *fmt, ...) {
    if (!at) at = b->root;
    int k;
    if (at && at->origin) k = snprintf(b->err, b->errlen, "override '%s': ", at->origin);
    else k = snprintf(b->err, b->errlen, "%s:%d:%d: ", b->file, at ? at->line : 1, at ? at->col : 1);
    if (k >= 0 && (size_t)k < b->errlen && path) k += snprintf(b->err + k, b->errlen - (size_t)k, "%s: ", path);
    if (k >= 0 && (size_t)k < b->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err + k, b->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void cfg_join_names(char *buf, size_t len, const char *const *names) {
    int n = 0;
    while (names[n]) n++;
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
}

/* A scalar that can be a number or a bool: plain (unquoted) and not null. */
static int cfg_plain_scalar(const CfgBinder *b, const YamlNode *n, const char *path, const char *expected) {
    char got[96];
    if (n->kind != YAML_TREE_SCALAR || yaml_tree_is_null(n))
        return cfg_error(b, n, path, "expected %s, got %s", expected, yaml_tree_describe(n, got, sizeof got));
    if (n->quoted)
        return cfg_error(b, n, path, "expected %s, got the quoted string %s (write it without quotes)", expected,
                         yaml_tree_describe(n, got, sizeof got));
    return 0;
}

int cfg_read_int(const CfgBinder *b, const YamlNode *n, const char *path, long long *out) {
    if (cfg_plain_scalar(b, n, path, "an integer")) return -1;
    const char *t = n->text, *s = t + (*t == '+' || *t == '-');
    int digits = *s != '\0';
    for (; *s; s++) digits &= isdigit((unsigned char)*s) != 0;
    if (!digits) return cfg_error(b, n, path, "expected an integer, got '%s'", t);
    errno = 0;
    *out = strtoll(t, NULL, 10);
    if (errno == ERANGE || *out < INT_MIN || *out > INT_MAX)
        return cfg_error(b, n, path, "integer out of range, got '%s'", t);
    return 0;
}

static int cfg_read_u64(const CfgBinder *b, const YamlNode *n, const char *path, unsigned long long *out) {
    if (cfg_plain_scalar(b, n, path, "a non-negative integer")) return -1;
    const char *t = n->text, *s = t + (*t == '+');
    int digits = *s != '\0';
    for (; *s; s++) digits &= isdigit((unsigned char)*s) != 0;
    if (!digits) return cfg_error(b, n, path, "expected a non-negative integer, got '%s'", t);
    errno = 0;
    *out = strtoull(t, NULL, 10);
    if (errno == ERANGE) return cfg_error(b, n, path, "out of range for a 64-bit integer, got '%s'", t);
    return 0;
}

int cfg_read_float(const CfgBinder *b, const YamlNode *n, const char *path, double *out) {
    if (cfg_plain_scalar(b, n, path, "a number")) return -1;
    /* Decimal notation only: strtod alone would also take "nan", "inf" and hex. */
    const char *t = n->text;
    int digit = 0, other = 0;
    for (const char *s = t; *s; s++) {
        if (isdigit((unsigned char)*s)) digit = 1;
        else if (!strchr("+-.eE", *s)) other = 1;
    }
    char *end = NULL;
    double v = digit && !other ? strtod(t, &end) : 0.0;
    if (!digit || other || *end) return cfg_error(b, n, path, "expected a number, got '%s'", t);
    if (!isfinite(v) || fabs(v) > FLT_MAX) return cfg_error(b, n, path, "out of range for a 32-bit float, got '%s'", t);
    /* Stored as floats: a value that would underflow to 0 (or a subnormal)
     * would pass a "> 0" check here and fail later. */
    if (v != 0.0 && fabs(v) < FLT_MIN)
        return cfg_error(b, n, path, "too small for a 32-bit float (the smallest is %g), got '%s'", FLT_MIN, t);
    *out = v;
    return 0;
}

/* YAML 1.1's words for booleans, as libyaml hands them over (plain scalars). */
static const char *const cfg_true_words[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
static const char *const cfg_false_words[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};

static int cfg_word_in(const char *t, const char *const *words) {
    for (int i = 0; words[i]; i++)
        if (strcmp(t, words[i]) == 0) return 1;
    return 0;
}

int cfg_read_bool(const CfgBinder *b, const YamlNode *n, const char *path, int *out) {
    if (cfg_plain_scalar(b, n, path, "true or false")) return -1;
    if (cfg_word_in(n->text, cfg_true_words)) *out = 1;
    else if (cfg_word_in(n->text, cfg_false_words)) *out = 0;
    else return cfg_error(b, n, path, "expected true or false, got '%s'", n->text);
    return 0;
}

int cfg_read_str(const CfgBinder *b, const YamlNode *n, const char *path, char *dst, size_t size) {
    char got[96];
    if (n->kind != YAML_TREE_SCALAR || yaml_tree_is_null(n))
        return cfg_error(b, n, path, "expected a string, got %s", yaml_tree_describe(n, got, sizeof got));
    size_t len = strlen(n->text);
    if (len == 0) return cfg_error(b, n, path, "must not be empty");
    if (len >= size) return cfg_error(b, n, path, "longer than %zu characters", size - 1);
    /* Zero the whole buffer: a reloaded Config must compare equal byte for byte. */
    memset(dst, 0, size);
    memcpy(dst, n->text, len);
    return 0;
}

int cfg_read_name(const CfgBinder *b, const YamlNode *n, const char *path, const char *const *names, int *out) {
    char list[256], got[96];
    cfg_join_names(list, sizeof list, names);
    if (n->kind != YAML_TREE_SCALAR || yaml_tree_is_null(n))
        return cfg_error(b, n, path, "expected %s, got %s", list, yaml_tree_describe(n, got, sizeof got));
    for (int i = 0; names[i]; i++)
        if (strcmp(n->text, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return cfg_error(b, n, path, "expected %s, got %s", list, yaml_tree_describe(n, got, sizeof got));
}

int cfg_expect_list(const CfgBinder *b, const YamlNode *n, const char *path, int min, int max, const char *what) {
    char got[96];
    if (n->kind != YAML_TREE_SEQ)
        return cfg_error(b, n, path, "expected a list %s, got %s", what, yaml_tree_describe(n, got, sizeof got));
    if (n->n < min || n->n > max) {
        if (min == max) return cfg_error(b, n, path, "expected %d entries %s, got %d", min, what, n->n);
        return cfg_error(b, n, path, "expected %d to %d entries %s, got %d", min, max, what, n->n);
    }
    return 0;
}

static int cfg_in_range(double v, CfgRange r, double lo, double hi) {
    switch (r) {
    case CFGR_ANY: return 1;
    case CFGR_GE: return v >= lo;
    case CFGR_GT: return v > lo;
    case CFGR_GE_LT: return v >= lo && v < hi;
    case CFGR_GT_LE: return v > lo && v <= hi;
    case CFGR_GE_LE: return v >= lo && v <= hi;
    }
    return 1;
}

int cfg_check_range(const CfgBinder *b, const YamlNode *n, const char *path, double v, CfgRange r, double lo,
                    double hi) {
    if (cfg_in_range(v, r, lo, hi)) return 0;
    const char *got = n->kind == YAML_TREE_SCALAR ? n->text : "?";
    switch (r) {
    case CFGR_ANY: return 0;
    case CFGR_GE: return cfg_error(b, n, path, "must be >= %g, got %s", lo, got);
    case CFGR_GT: return cfg_error(b, n, path, "must be > %g, got %s", lo, got);
    case CFGR_GE_LT: return cfg_error(b, n, path, "must be in [%g, %g), got %s", lo, hi, got);
    case CFGR_GT_LE: return cfg_error(b, n, path, "must be in (%g, %g], got %s", lo, hi, got);
    case CFGR_GE_LE: return cfg_error(b, n, path, "must be in [%g, %g], got %s", lo, hi, got);
    }
    return 0;
}

int cfg_read_float_in(const CfgBinder *b, const YamlNode *n, const char *path, CfgRange r, double lo, double hi,
                      float *out) {
    double v;
    if (cfg_read_float(b, n, path, &v) || cfg_check_range(b, n, path, v, r, lo, hi)) return -1;
    /* The range holds for the value stored, not only for the one written. */
    float f = (float)v;
    if (!cfg_in_range((double)f, r, lo, hi))
        return cfg_error(b, n, path, "'%s' rounds to %.9g as a 32-bit float, outside the allowed range", n->text,
                         (double)f);
    *out = f;
    return 0;
}

static int cfg_bind_field(const CfgBinder *b, const CfgField *fd, const YamlNode *n, const char *path, void *base) {
    char *p = (char *)base + fd->off;
    switch (fd->type) {
    case CFGT_INT: {
        long long v;
        if (cfg_read_int(b, n, path, &v) || cfg_check_range(b, n, path, (double)v, fd->range, fd->lo, fd->hi))
            return -1;
        int iv = (int)v;
        memcpy(p, &iv, sizeof iv);
        return 0;
    }
    case CFGT_U64: {
        unsigned long long v = 0;
        if (cfg_read_u64(b, n, path, &v)) return -1;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case CFGT_FLOAT: {
        float v;
        if (cfg_read_float_in(b, n, path, fd->range, fd->lo, fd->hi, &v)) return -1;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case CFGT_BOOL: {
        int v;
        if (cfg_read_bool(b, n, path, &v)) return -1;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case CFGT_STR:
        if (fd->empty_ok && n->kind == YAML_TREE_SCALAR && (yaml_tree_is_null(n) || !n->text[0])) {
            memset(p, 0, fd->size);
            return 0;
        }
        if (fd->names) {
            int i;
            if (cfg_read_name(b, n, path, fd->names, &i)) return -1;
        }
        return cfg_read_str(b, n, path, p, fd->size);
    case CFGT_ENUM: {
        int i;
        if (cfg_read_name(b, n, path, fd->names, &i)) return -1;
        memcpy(p, &i, sizeof i);
        return 0;
    }
    case CFGT_CUSTOM: return fd->bind(b, n, path, base);
    }
    return 0;
}

static int cfg_field_index(const CfgField *fields, int n_fields, const char *key) {
    for (int i = 0; i < n_fields; i++)
        if (strcmp(fields[i].key, key) == 0) return i;
    return -1;
}

static void cfg_key_list(char *buf, size_t len, const CfgField *fields, int n_fields) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_fields && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", fields[i].key);
}

int cfg_unknown_key(const CfgBinder *b, const YamlNode *key, const char *path, const char *known,
                    const CfgField *fields, int n_fields) {
    char list[1024];
    cfg_key_list(list, sizeof list, fields, n_fields);
    return cfg_error(b, key, NULL, "unknown key '%s' (known %s: %s)", path, known, list);
}

int cfg_bind_fields(const CfgBinder *b, const YamlNode *sec, const char *prefix, const char *known,
                    const CfgField *fields, int n_fields, void *base) {
    if (!sec || yaml_tree_is_null(sec)) return 0;
    char path[320], got[96];
    if (sec->kind != YAML_TREE_MAP) {
        char list[1024];
        cfg_key_list(list, sizeof list, fields, n_fields);
        return cfg_error(b, sec, prefix, "expected a map of settings (%s), got %s", list,
                         yaml_tree_describe(sec, got, sizeof got));
    }
    const char *dot = *prefix ? "." : ""; /* "" : the file's top level */
    for (int i = 0; i < sec->n; i++)
        if (cfg_field_index(fields, n_fields, sec->keys[i]->text) < 0) {
            snprintf(path, sizeof path, "%s%s%s", prefix, dot, sec->keys[i]->text);
            return cfg_unknown_key(b, sec->keys[i], path, known, fields, n_fields);
        }
    /* Early keys (a base that the others modify) first, in table order; then file order. */
    for (int f = 0; f < n_fields; f++) {
        int i = yaml_tree_find(sec, fields[f].key);
        if (!fields[f].early || i < 0) continue;
        snprintf(path, sizeof path, "%s%s%s", prefix, dot, fields[f].key);
        if (cfg_bind_field(b, &fields[f], sec->items[i], path, base)) return -1;
    }
    for (int i = 0; i < sec->n; i++) {
        const CfgField *fd = &fields[cfg_field_index(fields, n_fields, sec->keys[i]->text)];
        if (fd->early) continue;
        snprintf(path, sizeof path, "%s%s%s", prefix, dot, fd->key);
        if (cfg_bind_field(b, fd, sec->items[i], path, base)) return -1;
    }
    return 0;
}

void cfg_write_float(FILE *f, float v) {
    /* The shortest of %.6g .. %.9g that reads back to the same float (%.9g always does). */
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v) break;
    }
    /* "1e-08" -> "1.0e-08": YAML 1.1 readers (PyYAML) take an exponent without a dot for a string. */
    char *e = strchr(buf, 'e');
    if (e && !strchr(buf, '.')) fprintf(f, "%.*s.0%s", (int)(e - buf), buf, e);
    else fputs(buf, f);
}

void cfg_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\x%02X", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

void cfg_write_fields(FILE *f, const char *indent, const CfgField *fields, int n_fields, const void *base) {
    for (int i = 0; i < n_fields; i++) {
        const CfgField *fd = &fields[i];
        const char *p = (const char *)base + fd->off;
        if (fd->type == CFGT_CUSTOM && !fd->write) continue;
        fprintf(f, "%s%s: ", indent, fd->key);
        int iv;
        switch (fd->type) {
        case CFGT_INT: memcpy(&iv, p, sizeof iv), fprintf(f, "%d", iv); break;
        case CFGT_U64: {
            unsigned long long v;
            memcpy(&v, p, sizeof v);
            fprintf(f, "%llu", v);
            break;
        }
        case CFGT_FLOAT: {
            float v;
            memcpy(&v, p, sizeof v);
            cfg_write_float(f, v);
            break;
        }
        case CFGT_BOOL: memcpy(&iv, p, sizeof iv), fputs(iv ? "true" : "false", f); break;
        case CFGT_STR: cfg_write_string(f, p); break;
        case CFGT_ENUM: memcpy(&iv, p, sizeof iv), fputs(fd->names[iv], f); break;
        case CFGT_CUSTOM: fd->write(f, fd, base); break;
        }
        fputc('\n', f);
    }
}
