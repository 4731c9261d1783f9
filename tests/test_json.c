/* tests/test_json.c — the JSON writer (io/json.h) every JSON file goes
 * through: strings with quotes, backslashes, every control character and
 * UTF-8 come back unchanged through the reader and leave no raw control
 * byte in the file; numbers read back as the float they were; non-finite
 * numbers are null; a metrics record with such values parses. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "train/metrics.h"

/* What the writer writes, as a string (caller frees). */
static char *written(void (*write)(FILE *, const void *), const void *arg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f != NULL);
    write(f, arg);
    fclose(f);
    return buf;
}
static void write_str(FILE *f, const void *s) { json_write_string(f, s); }
static void write_num(FILE *f, const void *v) { json_write_number(f, *(const double *)v); }

static JsonValue *parse(const char *text) {
    char err[128];
    JsonValue *v = json_parse(text, strlen(text), err, sizeof err);
    cr_assert(v != NULL, "the writer's output does not parse: %s (%s)", err, text);
    return v;
}

Test(json, strings_round_trip_and_escape_every_control_character) {
    char all[128];
    for (int i = 1; i < 128; i++) all[i - 1] = (char)i; /* every ASCII byte but NUL */
    all[127] = '\0';
    const char *cases[] = {"", "plain", "quote \" and backslash \\", "tab\tnewline\nreturn\r", "\x01\x1f\x7f",
                           "UTF-8: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "a/b", all};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *out = written(write_str, cases[c]);
        for (const char *p = out; *p; p++)
            cr_expect((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f,
                      "case %zu: raw byte 0x%02x in the output", c, (unsigned char)*p);
        JsonValue *v = parse(out);
        cr_assert_eq(v->kind, JSON_STRING, "case %zu", c);
        cr_expect_str_eq(v->str, cases[c], "case %zu does not come back unchanged", c);
        json_free(v);
        free(out);
    }
    char *out = written(write_str, NULL);
    cr_expect_str_eq(out, "\"\"", "NULL is the empty string");
    free(out);
}

Test(json, numbers_read_back_as_the_same_float_and_non_finite_is_null) {
    const float fs[] = {0.1f, 1.0f / 3.0f, 1e-38f, 3.4e38f, -2.5e-7f, 123456789.0f, 0.0f};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
        double d = fs[i];
        char *out = written(write_num, &d);
        JsonValue *v = parse(out);
        cr_assert_eq(v->kind, JSON_NUMBER);
        cr_expect((float)v->num == fs[i], "%.9g wrote %s, read back %.9g", d, out, v->num);
        json_free(v);
        free(out);
    }
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        char *out = written(write_num, &bad[i]);
        cr_expect_str_eq(out, "null");
        free(out);
    }
}

Test(json, a_metrics_record_with_awkward_values_parses) {
    char path[] = "/tmp/test_json_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    Metrics m;
    metrics_open(&m, path, 0);
    metrics_begin(&m);
    metrics_str(&m, "note", "line one\nline \"two\"\t\x01");
    metrics_num(&m, "loss", NAN);
    metrics_int(&m, "step", 7);
    FILE *f = metrics_value(&m, "list");
    const double v[3] = {1.5, INFINITY, -0.25};
    json_write_numbers(f, v, 3);
    metrics_end(&m);
    metrics_close(&m);
    FILE *in = fopen(path, "r");
    char line[512];
    cr_assert(fgets(line, sizeof line, in) != NULL);
    fclose(in);
    remove(path);
    JsonValue *r = parse(line);
    cr_expect_str_eq(json_get_string(r, "note"), "line one\nline \"two\"\t\x01");
    cr_expect_eq(json_get(r, "loss")->kind, JSON_NULL);
    double step = 0;
    cr_expect(json_get_number(r, "step", &step) && step == 7);
    const JsonValue *l = json_get(r, "list");
    cr_assert(l && l->kind == JSON_ARRAY && l->n == 3);
    cr_expect(l->items[0]->num == 1.5 && l->items[1]->kind == JSON_NULL && l->items[2]->num == -0.25);
    json_free(r);
}
