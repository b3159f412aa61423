/* least-loaded-scorer: prefers the clusters with the largest free share of one resource
 * (spec: plugins/examples/README.md). */
#include "flotilla.h"

const fl_plugin_info FL_PLUGIN = {
    .name = "least-loaded-scorer",
    .version = "0.1.0",
    .summary = "Prefers the clusters with the largest free share of one resource.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\", \"additionalProperties\": false,"
        " \"properties\": {\"resource\": {\"type\": \"string\", \"minLength\": 1, \"default\": \"cpu\", \"description\": \"The resource to score.\"}}}",
};

static const char *parse(const char *text, const char **resource) {
    fl_config *c = fl_config_parse(text);
    *resource = fl_config_string(c, "resource", "cpu");
    const char *err = fl_config_finish(c);
    if (err) return err;
    return **resource ? NULL : "resource must not be empty";
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    const char *resource;
    const char *err = parse(text, &resource);
    if (!err) fl_strs_push(&reads->resources, resource);
    return err;
}

const char *fl_score(const char *text, const fl_owner *owner, const fl_batch *clusters, fl_score_result *result) {
    const char *resource;
    const char *err = parse(text, &resource);
    if (err) return err;
    for (size_t i = 0; i < clusters->count; i++) {
        int64_t a, c;
        if (!fl_batch_allocatable(clusters, i, resource, &a) || !fl_batch_capacity(clusters, i, resource, &c) || c == 0) {
            result->scores[i] = -100;
            continue;
        }
        /* 128-bit so that 200 * a cannot overflow; a, c >= 0, so division truncates as floor. */
        __int128 score = (__int128)a * 200 / c - 100;
        result->scores[i] = score > 100 ? 100 : (int32_t)score;
    }
    return NULL;
}
