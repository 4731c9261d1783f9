/* io/yaml_override.c — command-line overrides grafted onto a YAML tree
 * (see yaml_tree_apply_override in io/yaml_tree.h): "a.b=value",
 * "callbacks[0].every=50" or "callbacks.0.every=50". Every configuration
 * with overrides (runs, the evaluation classifier, sweeps) goes through here,
 * so they read and fail alike. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/yaml_tree.h"

#define OV_MAX_SEGS 16

typedef struct OvSeg {
    char name[64]; /* a map key, or "" for an index */
    int idx;       /* a list index, or -1 */
} OvSeg;

static int ov_parse_path(const char *s, size_t len, OvSeg *seg, int *n) {
    size_t i = 0;
    *n = 0;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    while (i < len && isspace((unsigned char)s[i])) i++;
    while (i < len) {
        if (*n == OV_MAX_SEGS) return -1;
        OvSeg *g = &seg[(*n)++];
        size_t k = 0;
        while (i < len && s[i] != '.' && s[i] != '[' && s[i] != ']') {
            if (k + 1 >= sizeof g->name) return -1;
            g->name[k++] = s[i++];
        }
        g->name[k] = '\0';
        g->idx = -1;
        int digits = k > 0;
        for (size_t j = 0; j < k; j++) digits &= isdigit((unsigned char)g->name[j]) != 0;
        if (digits && k < 9) g->idx = atoi(g->name), g->name[0] = '\0';
        else if (k == 0) return -1;
        while (i < len && s[i] == '[') { /* name[3][1]: index segments */
            size_t j = ++i;
            while (i < len && isdigit((unsigned char)s[i])) i++;
            if (i == j || i >= len || s[i] != ']' || i - j > 8 || *n == OV_MAX_SEGS) return -1;
            OvSeg *x = &seg[(*n)++];
            x->name[0] = '\0', x->idx = atoi(s + j);
            i++;
        }
        if (i < len && s[i] != '.') return -1;
        if (i < len && ++i == len) return -1; /* trailing dot */
    }
    return *n > 0 ? 0 : -1;
}

static int ov_error(char *err, size_t errlen, const char *ov, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ov_error(char *err, size_t errlen, const char *ov, const char *fmt, ...) {
    int k = snprintf(err, errlen, "override '%s': ", ov);
    if (k >= 0 && (size_t)k < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Graft the override's value into the tree; maps on the way are created. */
static int ov_graft(YamlNode *root, const OvSeg *seg, int n, YamlNode *val, const char *ov, char *err,
                    size_t errlen) {
    YamlNode *cur = root;
    char path[OV_MAX_SEGS * 72] = "", got[96];
    for (int i = 0; i < n; i++) {
        int last = i == n - 1;
        size_t k = strlen(path);
        if (seg[i].idx < 0) {
            if (cur->kind != YAML_TREE_MAP)
                return ov_error(err, errlen, ov, "%s is %s, not a map: cannot set '%s' in it",
                                k ? path : "the configuration", yaml_tree_describe(cur, got, sizeof got), seg[i].name);
            YamlNode *key = yaml_tree_new_scalar(seg[i].name, 1, 1, ov);
            if (last) {
                yaml_tree_map_set(cur, key, val);
                return 0;
            }
            YamlNode *child = yaml_tree_get(cur, seg[i].name);
            if (!child || yaml_tree_is_null(child)) {
                child = yaml_tree_new(YAML_TREE_MAP, 1, 1, ov);
                yaml_tree_map_set(cur, key, child);
            } else {
                yaml_tree_free(key);
            }
            snprintf(path + k, sizeof path - k, "%s%s", k ? "." : "", seg[i].name);
            cur = child;
        } else {
            if (cur->kind != YAML_TREE_SEQ)
                return ov_error(err, errlen, ov, "%s is %s, not a list: no item [%d]", k ? path : "the configuration",
                                yaml_tree_describe(cur, got, sizeof got), seg[i].idx);
            if (seg[i].idx >= cur->n)
                return ov_error(err, errlen, ov, "%s has %d items, no item [%d]", path, cur->n, seg[i].idx);
            if (last) {
                yaml_tree_free(cur->items[seg[i].idx]);
                cur->items[seg[i].idx] = val;
                return 0;
            }
            snprintf(path + k, sizeof path - k, "[%d]", seg[i].idx);
            cur = cur->items[seg[i].idx];
        }
    }
    return 0;
}

int yaml_tree_apply_override(YamlNode **root, const char *ov, char *err, size_t errlen) {
    const char *eq = strchr(ov, '=');
    OvSeg seg[OV_MAX_SEGS];
    int n;
    if (!eq || ov_parse_path(ov, (size_t)(eq - ov), seg, &n))
        return ov_error(err, errlen, ov, "expected KEY.PATH=VALUE (e.g. optim.lr=1e-4 or optim.betas=[0.9,0.99])");
    char msg[1024];
    YamlNode *val = NULL;
    if (yaml_tree_parse(NULL, eq + 1, strlen(eq + 1), &val, msg, sizeof msg))
        return ov_error(err, errlen, ov, "%s", msg);
    if (!val) val = yaml_tree_new_scalar("", 1, 1, NULL); /* "key=" : an empty value */
    yaml_tree_set_origin(val, ov);
    if (!*root || yaml_tree_is_null(*root)) {
        yaml_tree_free(*root);
        *root = yaml_tree_new(YAML_TREE_MAP, 1, 1, NULL);
    }
    if (ov_graft(*root, seg, n, val, ov, err, errlen)) {
        yaml_tree_free(val);
        return -1;
    }
    return 0;
}
