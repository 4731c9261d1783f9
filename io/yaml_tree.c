/* io/yaml_tree.c — libyaml events into a YamlNode tree with positions (see
 * yaml_tree.h). Recursive descent over the event stream; the nesting depth is
 * bounded so that a hostile file cannot exhaust the stack. */
#include "io/yaml_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "core/alloc.h"

#define YAML_TREE_MAX_DEPTH 64

typedef struct TreeParser {
    yaml_parser_t p;
    const char *name, *text;
    size_t len;
    char *err;
    size_t errlen;
    int depth;
    char path[512]; /* key path of the node being read, for duplicate-key messages */
} TreeParser;

static int tp_error(TreeParser *tp, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int tp_error(TreeParser *tp, int line, int col, const char *fmt, ...) {
    /* Without a name (a one-line override value) the position says nothing useful. */
    int k = tp->name ? snprintf(tp->err, tp->errlen, "%s:%d:%d: ", tp->name, line, col) : 0;
    if (k >= 0 && (size_t)k < tp->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tp->err + k, tp->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* libyaml's reader reports a byte offset, not a mark: count lines up to it. */
static void tp_offset_to_pos(const TreeParser *tp, size_t off, int *line, int *col) {
    *line = 1, *col = 1;
    for (size_t i = 0; i < off && i < tp->len; i++) {
        if (tp->text[i] == '\n') (*line)++, *col = 1;
        else (*col)++;
    }
}

static int tp_syntax_error(TreeParser *tp) {
    const yaml_parser_t *p = &tp->p;
    if (p->error == YAML_MEMORY_ERROR) return tp_error(tp, 1, 1, "out of memory while parsing YAML");
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    char extra[160] = "";
    if (p->error == YAML_READER_ERROR) {
        tp_offset_to_pos(tp, p->problem_offset, &line, &col);
        if (p->problem_value != -1) snprintf(extra, sizeof extra, " (byte 0x%02X)", (unsigned)p->problem_value);
    } else if (p->context) {
        snprintf(extra, sizeof extra, " (%s at line %d, column %d)", p->context, (int)p->context_mark.line + 1,
                 (int)p->context_mark.column + 1);
    }
    return tp_error(tp, line, col, "YAML syntax error: %s%s", p->problem ? p->problem : "unknown problem", extra);
}

static int tp_next(TreeParser *tp, yaml_event_t *ev) {
    if (!yaml_parser_parse(&tp->p, ev)) return tp_syntax_error(tp);
    return 0;
}

YamlNode *yaml_tree_new(YamlTreeKind kind, int line, int col, const char *origin) {
    YamlNode *n = core_calloc(sizeof *n);
    n->kind = kind, n->line = line, n->col = col, n->origin = origin;
    return n;
}

YamlNode *yaml_tree_new_scalar(const char *text, int line, int col, const char *origin) {
    YamlNode *n = yaml_tree_new(YAML_TREE_SCALAR, line, col, origin);
    size_t len = strlen(text);
    n->text = core_malloc(len + 1);
    memcpy(n->text, text, len + 1);
    return n;
}

void yaml_tree_free(YamlNode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        if (n->keys) yaml_tree_free(n->keys[i]);
        yaml_tree_free(n->items[i]);
    }
    core_free(n->keys);
    core_free(n->items);
    core_free(n->text);
    core_free(n);
}

void yaml_tree_append(YamlNode *c, YamlNode *key, YamlNode *val) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->items = core_realloc(c->items, (size_t)c->cap * sizeof *c->items);
        if (c->kind == YAML_TREE_MAP) c->keys = core_realloc(c->keys, (size_t)c->cap * sizeof *c->keys);
    }
    if (c->kind == YAML_TREE_MAP) c->keys[c->n] = key;
    c->items[c->n++] = val;
}

int yaml_tree_find(const YamlNode *map, const char *key) {
    if (!map || map->kind != YAML_TREE_MAP) return -1;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0) return i;
    return -1;
}

YamlNode *yaml_tree_get(const YamlNode *map, const char *key) {
    int i = yaml_tree_find(map, key);
    return i < 0 ? NULL : map->items[i];
}

void yaml_tree_map_set(YamlNode *map, YamlNode *key, YamlNode *val) {
    int i = yaml_tree_find(map, key->text);
    if (i < 0) {
        yaml_tree_append(map, key, val);
        return;
    }
    yaml_tree_free(map->items[i]);
    map->items[i] = val;
    yaml_tree_free(key);
}

void yaml_tree_set_origin(YamlNode *n, const char *origin) {
    if (!n) return;
    n->origin = origin;
    for (int i = 0; i < n->n; i++) {
        if (n->keys) yaml_tree_set_origin(n->keys[i], origin);
        yaml_tree_set_origin(n->items[i], origin);
    }
}

int yaml_tree_is_null(const YamlNode *n) {
    if (!n || n->kind != YAML_TREE_SCALAR || n->quoted) return 0;
    const char *t = n->text;
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

const char *yaml_tree_describe(const YamlNode *n, char *buf, size_t len) {
    if (!n || yaml_tree_is_null(n)) snprintf(buf, len, "an empty value");
    else if (n->kind == YAML_TREE_MAP) snprintf(buf, len, "a map");
    else if (n->kind == YAML_TREE_SEQ) snprintf(buf, len, "a list");
    else if (strlen(n->text) > 60) snprintf(buf, len, "'%.57s...'", n->text);
    else snprintf(buf, len, "'%s'", n->text);
    return buf;
}

static int tp_node(TreeParser *tp, yaml_event_t *ev, YamlNode **out);

/* Read the entries of a mapping up to its end event (the start is consumed). */
static int tp_map(TreeParser *tp, YamlNode *map) {
    size_t base = strlen(tp->path);
    for (;;) {
        yaml_event_t ev;
        if (tp_next(tp, &ev)) return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        YamlNode *key = NULL, *val = NULL;
        if (tp_node(tp, &ev, &key)) return -1;
        if (key->kind != YAML_TREE_SCALAR) {
            int line = key->line, col = key->col;
            yaml_tree_free(key);
            return tp_error(tp, line, col, "a map key must be a plain name, not a map or list");
        }
        snprintf(tp->path + base, sizeof tp->path - base, "%s%s", base ? "." : "", key->text);
        int dup = yaml_tree_find(map, key->text);
        if (dup >= 0) {
            const YamlNode *first = map->keys[dup];
            int line = key->line, col = key->col;
            yaml_tree_free(key);
            return tp_error(tp, line, col, "duplicate key '%s' (first at line %d, column %d)", tp->path, first->line,
                            first->col);
        }
        yaml_event_t vev;
        if (tp_next(tp, &vev)) {
            yaml_tree_free(key);
            return -1;
        }
        if (tp_node(tp, &vev, &val)) {
            yaml_tree_free(key);
            return -1;
        }
        yaml_tree_append(map, key, val);
        tp->path[base] = '\0';
    }
}

static int tp_seq(TreeParser *tp, YamlNode *seq) {
    size_t base = strlen(tp->path);
    for (;;) {
        yaml_event_t ev;
        if (tp_next(tp, &ev)) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        snprintf(tp->path + base, sizeof tp->path - base, "[%d]", seq->n);
        YamlNode *item = NULL;
        if (tp_node(tp, &ev, &item)) return -1;
        yaml_tree_append(seq, NULL, item);
        tp->path[base] = '\0';
    }
}

/* Build the node that starts with event *ev (consumed). */
static int tp_node(TreeParser *tp, yaml_event_t *ev, YamlNode **out) {
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    *out = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        YamlNode *n = yaml_tree_new(YAML_TREE_SCALAR, line, col, NULL);
        n->text = core_malloc(ev->data.scalar.length + 1);
        memcpy(n->text, ev->data.scalar.value, ev->data.scalar.length);
        n->text[ev->data.scalar.length] = '\0';
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        yaml_event_delete(ev);
        *out = n;
        return 0;
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        yaml_event_delete(ev);
        if (tp->depth >= YAML_TREE_MAX_DEPTH)
            return tp_error(tp, line, col, "nesting deeper than %d levels", YAML_TREE_MAX_DEPTH);
        YamlNode *n = yaml_tree_new(is_map ? YAML_TREE_MAP : YAML_TREE_SEQ, line, col, NULL);
        tp->depth++;
        int rc = is_map ? tp_map(tp, n) : tp_seq(tp, n);
        tp->depth--;
        if (rc) {
            yaml_tree_free(n);
            return -1;
        }
        *out = n;
        return 0;
    }
    case YAML_ALIAS_EVENT: {
        char anchor[64];
        snprintf(anchor, sizeof anchor, "%s", (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return tp_error(tp, line, col, "YAML aliases (*%s) are not supported here; write the value out", anchor);
    }
    default: {
        int type = (int)ev->type;
        yaml_event_delete(ev);
        return tp_error(tp, line, col, "unexpected YAML event %d", type);
    }
    }
}

/* STREAM-START [DOCUMENT-START node DOCUMENT-END] STREAM-END */
static int tp_document(TreeParser *tp, YamlNode **root) {
    yaml_event_t ev;
    if (tp_next(tp, &ev)) return -1;
    yaml_event_delete(&ev); /* stream start */
    if (tp_next(tp, &ev)) return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); /* document start */
    if (tp_next(tp, &ev) || tp_node(tp, &ev, root)) return -1;
    if (tp_next(tp, &ev)) return -1;
    yaml_event_delete(&ev); /* document end */
    if (tp_next(tp, &ev)) return -1;
    if (ev.type != YAML_STREAM_END_EVENT) {
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        yaml_event_delete(&ev);
        return tp_error(tp, line, col, "a configuration is one YAML document; found a second one (---)");
    }
    yaml_event_delete(&ev);
    return 0;
}

int yaml_tree_parse(const char *name, const char *text, size_t len, YamlNode **root, char *err, size_t errlen) {
    TreeParser tp = {.name = name, .text = text, .len = len, .err = err, .errlen = errlen};
    *root = NULL;
    if (!yaml_parser_initialize(&tp.p)) return tp_error(&tp, 1, 1, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&tp.p, (const unsigned char *)text, len);
    int rc = tp_document(&tp, root);
    yaml_parser_delete(&tp.p);
    if (rc) {
        yaml_tree_free(*root);
        *root = NULL;
    }
    return rc;
}
