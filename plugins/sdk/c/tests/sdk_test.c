/* Native unit tests of the world-independent SDK (JSON, configuration, helpers):
 *     cc -std=c11 -Wall -I plugins/sdk/c plugins/sdk/c/tests/sdk_test.c plugins/sdk/c/flotilla.c -o /tmp/fl_sdk_test && /tmp/fl_sdk_test
 * Prints "N passed, N failed" and exits non-zero on a failure. */
#include "flotilla_internal.h"

#include <stdio.h>
#include <string.h>

static int passed, failed;
static char logged[256];

void fl_host_log(fl_level level, const char *message, size_t len) {
    snprintf(logged, sizeof logged, "%d:%.*s", (int)level, (int)len, message);
}

#define CHECK(name, cond)                                               \
    do {                                                                \
        if (cond) passed++;                                             \
        else { failed++; fprintf(stderr, "FAIL %s (line %d)\n", name, __LINE__); } \
    } while (0)

static const char *roundtrip(const char *text) {
    const char *err = NULL;
    fl_json *v = fl_json_parse(text, strlen(text), &err);
    return v ? fl_json_write(v) : fl_sprintf("error: %s", err);
}

static const char *config_error(const char *text) {
    fl_config *c = fl_config_parse(text);
    fl_config_string(c, "key", NULL);
    fl_config_strings(c, "values", false);
    fl_config_int(c, "count", 1, false);
    const char *e = fl_config_finish(c);
    return e ? e : "ok";
}

int main(void) {
    /* JSON round trips keep key order, number text and escapes. */
    CHECK("object order", !strcmp(roundtrip("{\"b\": 1, \"a\": [true, false, null]}"), "{\"b\":1,\"a\":[true,false,null]}"));
    CHECK("numbers exact", !strcmp(roundtrip("[12345678901234567890, -0.5e10, 1.0]"), "[12345678901234567890,-0.5e10,1.0]"));
    CHECK("escapes", !strcmp(roundtrip("\"a\\\"b\\\\c\\n\\u0001\\u00e9\\ud83d\\ude00\""), "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xf0\x9f\x98\x80\""));
    CHECK("utf-8 passes", !strcmp(roundtrip("\"h\xc3\xa9\""), "\"h\xc3\xa9\""));
    CHECK("empty containers", !strcmp(roundtrip(" { \"a\" : { } , \"b\" : [ ] } "), "{\"a\":{},\"b\":[]}"));
    CHECK("trailing garbage", !strncmp(roundtrip("{} x"), "error: trailing characters", 26));
    CHECK("bad number", !strncmp(roundtrip("[01]"), "error:", 6));
    CHECK("unterminated", !strncmp(roundtrip("\"abc"), "error: unterminated string", 26));
    CHECK("lone surrogate", !strncmp(roundtrip("\"\\udc00\""), "error: invalid surrogate", 24));
    CHECK("trailing comma", !strncmp(roundtrip("[1,]"), "error:", 6));
    char deep[2000];
    memset(deep, '[', 1000);
    deep[1000] = 0;
    CHECK("too deep", !strncmp(roundtrip(deep), "error: nested too deeply", 24));

    /* Reading and changing. */
    const char *err = NULL;
    const char *doc = "{\"spec\": {\"template\": {\"spec\": {\"containers\": [{\"image\": \"x\"}]}}}, \"n\": 9223372036854775807, \"m\": 9223372036854775808}";
    fl_json *d = fl_json_parse(doc, strlen(doc), &err);
    CHECK("parsed", d != NULL);
    fl_json *c0 = fl_json_at(fl_json_path(d, "spec", "template", "spec", "containers", NULL), 0);
    CHECK("path", !strcmp(fl_json_str(fl_json_get(c0, "image")), "x"));
    CHECK("path missing", fl_json_path(d, "spec", "nope", "x", NULL) == NULL);
    int64_t n;
    CHECK("int max", fl_json_int(fl_json_get(d, "n"), &n) && n == INT64_MAX);
    CHECK("int overflow", !fl_json_int(fl_json_get(d, "m"), &n));
    fl_json *copy = fl_json_copy(d);
    fl_json_set(c0, "image", fl_json_new_string("y"));
    fl_json_set(fl_json_object_member(fl_json_object_member(d, "metadata"), "labels"), "k", fl_json_new_int(-3));
    CHECK("set in place", !strcmp(fl_json_write(fl_json_get(d, "spec")), "{\"template\":{\"spec\":{\"containers\":[{\"image\":\"y\"}]}}}"));
    CHECK("added members", !strcmp(fl_json_write(fl_json_get(d, "metadata")), "{\"labels\":{\"k\":-3}}"));
    CHECK("copy is deep", !strcmp(fl_json_str(fl_json_get(fl_json_at(fl_json_path(copy, "spec", "template", "spec", "containers", NULL), 0), "image")), "x"));

    /* Configuration errors name the field. */
    CHECK("config ok", !strcmp(config_error("{\"key\": \"a\", \"values\": [\"x\"], \"count\": 3}"), "ok"));
    CHECK("missing", !strcmp(config_error("{}"), "invalid configuration: missing field `key`"));
    CHECK("unknown", !strcmp(config_error("{\"key\": \"a\", \"kye\": 1}"), "invalid configuration: unknown field `kye`"));
    CHECK("wrong type", !strcmp(config_error("{\"key\": 1}"), "invalid configuration: key must be a string, not a number"));
    CHECK("wrong item", !strcmp(config_error("{\"key\": \"a\", \"values\": [1]}"), "invalid configuration: values[0] must be a string, not a number"));
    CHECK("not an integer", !strcmp(config_error("{\"key\": \"a\", \"count\": 1.5}"), "invalid configuration: count must be a 64-bit integer, not 1.5"));
    CHECK("not an object", !strcmp(config_error("[]"), "invalid configuration: the configuration must be a JSON object"));
    CHECK("not JSON", !strncmp(config_error("{"), "invalid configuration: not JSON:", 32));
    CHECK("null is absent", !strcmp(config_error("{\"key\": \"a\", \"count\": null}"), "ok"));

    /* Helpers. */
    fl_strs s = {0};
    fl_strs_push(&s, "b");
    fl_strs_push(&s, "a");
    fl_strs_push(&s, "B");
    fl_strs_sort(&s);
    CHECK("sort bytewise", !strcmp(fl_strs_join(&s, ","), "B,a,b"));
    CHECK("contains", fl_strs_contains(&s, "a") && !fl_strs_contains(&s, "c"));
    fl_log(FL_WARN, "n=%d", 3);
    CHECK("log", !strcmp(logged, "3:n=3"));

    fl_filter_result r = {0};
    r.count = 3;
    r.verdicts = fl_alloc(3 * sizeof *r.verdicts);
    fl_filter_remove(&r, 0, "x");
    fl_filter_remove(&r, 2, fl_sprintf("%s", "x"));
    fl_filter_remove(&r, 1, "y");
    CHECK("reasons deduplicated", r.reasons.len == 2 && r.verdicts[0] == 1 && r.verdicts[2] == 1 && r.verdicts[1] == 2);

    uint32_t index[] = {0, 2, 1};
    const char *values[] = {"eu", "us"};
    fl_column col = {"region", values, 2, index};
    fl_batch b = {.count = 3, .labels = &col, .labels_len = 1};
    CHECK("column", fl_batch_label(&b, 0, "region") == NULL && !strcmp(fl_batch_label(&b, 1, "region"), "us") && fl_batch_label(&b, 1, "zone") == NULL);

    fl_arena_reset();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
