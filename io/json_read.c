/* io/json_read.c — recursive-descent JSON reader (see io/json.h). */
#include "io/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define JSON_MAX_DEPTH 32

typedef struct JsonParser {
    const char *s;
    size_t len, pos;
    int depth;
    char *err;
    size_t errlen;
} JsonParser;

static JsonValue *jp_fail(JsonParser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static JsonValue *jp_fail(JsonParser *p, const char *fmt, ...) {
    /* Keep the first (innermost) problem: outer levels only see the NULL. */
    if (p->err && p->err[0] == '\0') {
        int k = snprintf(p->err, p->errlen, "column %zu: ", p->pos + 1);
        if (k >= 0 && (size_t)k < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return NULL;
}

static void jp_skip_space(JsonParser *p) {
    for (; p->pos < p->len; p->pos++) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') break;
    }
}

static int jp_peek(const JsonParser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static JsonValue *json_new(JsonKind kind) {
    JsonValue *v = core_calloc(sizeof *v);
    v->kind = kind;
    return v;
}

/* Append one byte to a growing buffer. */
static void buf_put(char **buf, size_t *n, size_t *cap, char c) {
    if (*n + 1 >= *cap) {
        *cap = *cap ? *cap * 2 : 32;
        *buf = core_realloc(*buf, *cap);
    }
    (*buf)[(*n)++] = c;
}

static void buf_put_utf8(char **buf, size_t *n, size_t *cap, unsigned cp) {
    if (cp < 0x80) {
        buf_put(buf, n, cap, (char)cp);
    } else if (cp < 0x800) {
        buf_put(buf, n, cap, (char)(0xC0 | (cp >> 6)));
        buf_put(buf, n, cap, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        buf_put(buf, n, cap, (char)(0xE0 | (cp >> 12)));
        buf_put(buf, n, cap, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_put(buf, n, cap, (char)(0x80 | (cp & 0x3F)));
    } else {
        buf_put(buf, n, cap, (char)(0xF0 | (cp >> 18)));
        buf_put(buf, n, cap, (char)(0x80 | ((cp >> 12) & 0x3F)));
        buf_put(buf, n, cap, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_put(buf, n, cap, (char)(0x80 | (cp & 0x3F)));
    }
}

static int jp_hex4(JsonParser *p, unsigned *out) {
    if (p->pos + 4 > p->len) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* A string body after the opening quote; returns a NUL-terminated copy. */
static char *jp_string(JsonParser *p) {
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (p->pos >= p->len) {
            jp_fail(p, "unterminated string");
            break;
        }
        char c = p->s[p->pos++];
        if (c == '"') {
            buf_put(&buf, &n, &cap, '\0');
            return buf;
        }
        if ((unsigned char)c < 0x20) {
            jp_fail(p, "control character in a string");
            break;
        }
        if (c != '\\') {
            buf_put(&buf, &n, &cap, c);
            continue;
        }
        if (p->pos >= p->len) {
            jp_fail(p, "unterminated escape");
            break;
        }
        char e = p->s[p->pos++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = e ? strchr(from, e) : NULL;
        if (at) {
            buf_put(&buf, &n, &cap, to[at - from]);
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || jp_hex4(p, &cp)) {
            jp_fail(p, "bad escape in a string");
            break;
        }
        /* A high surrogate must be followed by \u and a low one. */
        if (cp >= 0xD800 && cp < 0xDC00) {
            if (p->pos + 2 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' || (p->pos += 2, jp_hex4(p, &lo)) ||
                lo < 0xDC00 || lo >= 0xE000) {
                jp_fail(p, "unpaired UTF-16 surrogate in a string");
                break;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        buf_put_utf8(&buf, &n, &cap, cp);
    }
    core_free(buf);
    return NULL;
}

static JsonValue *jp_value(JsonParser *p);

static JsonValue *jp_number(JsonParser *p) {
    /* strtod accepts more than JSON (hex, inf, nan): check the JSON shape first. */
    size_t i = p->pos;
    if (i < p->len && p->s[i] == '-') i++;
    size_t digits = i;
    while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
    if (i == digits) return jp_fail(p, "expected a value");
    if (i < p->len && p->s[i] == '.') {
        size_t f = ++i;
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
        if (i == f) return jp_fail(p, "expected digits after '.'");
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        size_t f = i;
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') i++;
        if (i == f) return jp_fail(p, "expected digits in the exponent");
    }
    char tmp[64];
    size_t k = i - p->pos;
    if (k >= sizeof tmp) return jp_fail(p, "number too long");
    memcpy(tmp, p->s + p->pos, k);
    tmp[k] = '\0';
    JsonValue *v = json_new(JSON_NUMBER);
    v->num = strtod(tmp, NULL);
    p->pos = i;
    return v;
}

static int jp_word(JsonParser *p, const char *w) {
    size_t k = strlen(w);
    if (p->pos + k > p->len || memcmp(p->s + p->pos, w, k) != 0) return 0;
    p->pos += k;
    return 1;
}

static void json_add(JsonValue *v, char *key, JsonValue *item) {
    if ((v->n & (v->n - 1)) == 0) { /* grow at powers of two */
        size_t cap = v->n ? (size_t)v->n * 2 : 1;
        v->items = core_realloc(v->items, cap * sizeof *v->items);
        if (v->kind == JSON_OBJECT) v->keys = core_realloc(v->keys, cap * sizeof *v->keys);
    }
    if (v->kind == JSON_OBJECT) v->keys[v->n] = key;
    v->items[v->n++] = item;
}

/* An array or object body after its opening bracket. */
static JsonValue *jp_container(JsonParser *p, JsonKind kind) {
    char close = kind == JSON_ARRAY ? ']' : '}';
    JsonValue *v = json_new(kind);
    jp_skip_space(p);
    if (jp_peek(p) == close) {
        p->pos++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        jp_skip_space(p);
        if (kind == JSON_OBJECT) {
            if (jp_peek(p) != '"') {
                jp_fail(p, "expected a string key");
                goto fail;
            }
            p->pos++;
            if (!(key = jp_string(p))) goto fail;
            jp_skip_space(p);
            if (jp_peek(p) != ':') {
                core_free(key);
                jp_fail(p, "expected ':' after an object key");
                goto fail;
            }
            p->pos++;
        }
        JsonValue *item = jp_value(p);
        if (!item) {
            core_free(key);
            goto fail;
        }
        json_add(v, key, item);
        jp_skip_space(p);
        int c = jp_peek(p);
        p->pos++;
        if (c == close) return v;
        if (c != ',') {
            p->pos--;
            jp_fail(p, "expected ',' or '%c'", close);
            goto fail;
        }
    }
fail:
    json_free(v);
    return NULL;
}

static JsonValue *jp_value(JsonParser *p) {
    jp_skip_space(p);
    int c = jp_peek(p);
    if (c == -1) return jp_fail(p, "unexpected end of input");
    if (c == '{' || c == '[') {
        if (++p->depth > JSON_MAX_DEPTH) return jp_fail(p, "nested deeper than %d levels", JSON_MAX_DEPTH);
        p->pos++;
        JsonValue *v = jp_container(p, c == '{' ? JSON_OBJECT : JSON_ARRAY);
        p->depth--;
        return v;
    }
    if (c == '"') {
        p->pos++;
        char *s = jp_string(p);
        if (!s) return NULL;
        JsonValue *v = json_new(JSON_STRING);
        v->str = s;
        return v;
    }
    if (jp_word(p, "null")) return json_new(JSON_NULL);
    int truth = jp_word(p, "true");
    if (truth || jp_word(p, "false")) {
        JsonValue *v = json_new(JSON_BOOL);
        v->num = truth;
        return v;
    }
    return jp_number(p);
}

JsonValue *json_parse(const char *text, size_t len, char *err, size_t errlen) {
    JsonParser p = {.s = text, .len = len, .err = err, .errlen = errlen};
    if (err && errlen) err[0] = '\0';
    JsonValue *v = jp_value(&p);
    if (!v) return NULL;
    jp_skip_space(&p);
    if (p.pos < p.len) {
        json_free(v);
        return jp_fail(&p, "unexpected text after the value");
    }
    return v;
}

void json_free(JsonValue *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) {
        if (v->keys) core_free(v->keys[i]);
        json_free(v->items[i]);
    }
    core_free(v->keys);
    core_free(v->items);
    core_free(v->str);
    core_free(v);
}

const JsonValue *json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->kind != JSON_OBJECT) return NULL;
    for (int i = obj->n - 1; i >= 0; i--) /* the last duplicate wins, as in most readers */
        if (!strcmp(obj->keys[i], key)) return obj->items[i];
    return NULL;
}

int json_get_number(const JsonValue *obj, const char *key, double *out) {
    const JsonValue *v = json_get(obj, key);
    if (!v || v->kind != JSON_NUMBER) return 0;
    *out = v->num;
    return 1;
}

const char *json_get_string(const JsonValue *obj, const char *key) {
    const JsonValue *v = json_get(obj, key);
    return v && v->kind == JSON_STRING ? v->str : NULL;
}
