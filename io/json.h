/* io/json.h — JSON in and out: the writer every JSON file of the framework
 * goes through (metrics.jsonl, eval.json, the callbacks' records), and a
 * small reader for what we write (jit-sweep's summary and its check whether
 * a run has finished).
 *
 * Writer (io/json_write.c): numbers as %.9g (enough to read a float back
 * exactly), null when not finite; strings with '"', '\\' and every control
 * character escaped (\uXXXX), other bytes (UTF-8) as they are.
 *
 * Reader (io/json_read.c): deliberately small: the whole value becomes a
 * tree; numbers are doubles; \uXXXX escapes become UTF-8 (surrogate pairs
 * included); nesting is bounded so that a damaged file cannot exhaust the
 * stack. */
#ifndef IO_JSON_H
#define IO_JSON_H

#include <stddef.h>
#include <stdio.h>

void json_write_number(FILE *f, double v);
void json_write_string(FILE *f, const char *s); /* NULL writes "" */
void json_write_numbers(FILE *f, const double *v, int n); /* [a, b, ...] */

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
