/* train/sweep_json.h — a small JSON reader for the trainer's metrics.jsonl
 * lines (one object per line), used by jit-sweep's summary and by its check
 * whether a run has finished.
 *
 * Deliberately small: the whole value becomes a tree; numbers are doubles;
 * \uXXXX escapes become UTF-8 (surrogate pairs included); nesting is bounded
 * so that a damaged file cannot exhaust the stack. Enough for lines we write
 * ourselves (train/metrics.c) and for eval.json. */
#ifndef TRAIN_SWEEP_JSON_H
#define TRAIN_SWEEP_JSON_H

#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonKind;

typedef struct JsonValue {
    JsonKind kind;
    double num;               /* JSON_NUMBER; JSON_BOOL: 0 or 1 */
    char *str;                /* JSON_STRING (NUL-terminated) */
    int n;                    /* array items or object members */
    char **keys;              /* JSON_OBJECT: member names */
    struct JsonValue **items; /* JSON_ARRAY items, JSON_OBJECT values */
} JsonValue;

/* Parse `len` bytes. Returns the value, or NULL with "column C: problem" in
 * err (C is 1-based, in bytes). Text after the value other than white space
 * is an error. */
JsonValue *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(JsonValue *v);

/* Member `key` of an object, or NULL (also for NULL or a non-object). */
const JsonValue *json_get(const JsonValue *obj, const char *key);
/* Member `key` as a number: 1 and *out when it is one, else 0. */
int json_get_number(const JsonValue *obj, const char *key, double *out);
/* Member `key` as a string, or NULL. */
const char *json_get_string(const JsonValue *obj, const char *key);

#endif
