/* io/yaml_tree.h — a YAML document as a small tree (maps, sequences,
 * scalars) built from libyaml's event parser, every node keeping where it was
 * written (1-based line and column) so that the configuration loader can
 * point at the exact place of a mistake.
 *
 * Deliberately small: aliases are rejected with a message (anchors and tags
 * are ignored), one document per stream, keys must be scalars and unique
 * within their map. Nodes grafted in from elsewhere (command-line overrides) carry an
 * `origin` text that error messages name instead of a line and column. */
#ifndef IO_YAML_TREE_H
#define IO_YAML_TREE_H

#include <stddef.h>

typedef enum { YAML_TREE_SCALAR = 0, YAML_TREE_MAP = 1, YAML_TREE_SEQ = 2 } YamlTreeKind;

typedef struct YamlNode {
    YamlTreeKind kind;
    int line, col;           /* 1-based position in the document */
    const char *origin;      /* NULL: from the document; else a borrowed text naming where it came from */
    char *text;              /* scalar value (NUL-terminated) */
    int quoted;              /* scalar written quoted or as a block literal: a string, never a number/bool/null */
    int n, cap;              /* map entries or sequence items */
    struct YamlNode **keys;  /* map: the key scalars (NULL for a sequence) */
    struct YamlNode **items; /* map: the values; sequence: the items */
} YamlNode;

/* Parse `len` bytes of `text`. On success returns 0 and *root (NULL for a
 * stream without a document, e.g. only comments). On failure returns -1 with
 * "NAME:LINE:COL: what is wrong" in err (YAML syntax errors read
 * "NAME:LINE:COL: YAML syntax error: <libyaml's problem>"). With name NULL
 * the "NAME:LINE:COL: " prefix is left out. */
int yaml_tree_parse(const char *name, const char *text, size_t len, YamlNode **root, char *err, size_t errlen);
void yaml_tree_free(YamlNode *n);

YamlNode *yaml_tree_new(YamlTreeKind kind, int line, int col, const char *origin);
YamlNode *yaml_tree_new_scalar(const char *text, int line, int col, const char *origin);
/* Index of `key` in a map, or -1 (also for NULL or a non-map). */
int yaml_tree_find(const YamlNode *map, const char *key);
/* The value of `key` in a map, or NULL. */
YamlNode *yaml_tree_get(const YamlNode *map, const char *key);
/* Set key -> val in a map (both owned by the map afterwards), replacing and
 * freeing an existing value of that key (whose key node is kept). */
void yaml_tree_map_set(YamlNode *map, YamlNode *key, YamlNode *val);
void yaml_tree_append(YamlNode *seq_or_map, YamlNode *key, YamlNode *val);
/* Give `origin` to n and everything below it. */
void yaml_tree_set_origin(YamlNode *n, const char *origin);

/* A plain ~, null, Null, NULL or empty scalar. */
int yaml_tree_is_null(const YamlNode *n);
/* For messages: "'fast'", "a map", "a list", "an empty value". */
const char *yaml_tree_describe(const YamlNode *n, char *buf, size_t len);

/* Graft "KEY.PATH=VALUE" onto *root (the value parsed as YAML; maps on the
 * way are created, list items must exist; KEY.PATH as a.b, a[0].b or a.0.b;
 * a null or empty root becomes a map). Returns 0, or -1 with "override
 * 'OV': problem" in err. The value's nodes remember OV as their origin, so
 * later binding errors name the override (io/yaml_override.c). */
int yaml_tree_apply_override(YamlNode **root, const char *ov, char *err, size_t errlen);

#endif
