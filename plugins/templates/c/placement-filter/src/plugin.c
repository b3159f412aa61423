/*
 * A placement filter: keeps the clusters whose label `key` has one of `values`.
 *
 *     {"key": "region", "values": ["eu-west-1", "eu-central-1"]}
 *
 * The host calls fl_filter once per scheduling cycle with every candidate cluster, by
 * column: clusters->labels holds one column per label that fl_validate_config said the
 * plugin reads. Everything the SDK hands out is freed after the call.
 */
#include "flotilla.h"

#include <string.h>

const fl_plugin_info FL_PLUGIN = {
    .name = "{{name}}",
    .version = "0.1.0",
    .summary = "Keeps the clusters whose label has one of the configured values.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\","
        " \"additionalProperties\": false, \"required\": [\"key\", \"values\"], \"properties\": {"
        " \"key\": {\"type\": \"string\", \"minLength\": 1, \"description\": \"The label to look at.\"},"
        " \"values\": {\"type\": \"array\", \"minItems\": 1, \"items\": {\"type\": \"string\"},"
        " \"description\": \"The values that keep a cluster.\"}}}",
};

typedef struct {
    const char *key;
    fl_strs values;
} config;

/* The configuration, or the error that refuses it (naming the field). */
static const char *parse(const char *text, config *cfg) {
    fl_config *c = fl_config_parse(text);
    cfg->key = fl_config_string(c, "key", NULL);
    cfg->values = fl_config_strings(c, "values", true);
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (!*cfg->key) return "key must not be empty";
    if (cfg->values.len == 0) return "values must name at least one value";
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    /* The host passes each cluster with exactly these labels. */
    fl_strs_push(&reads->labels, cfg.key);
    return NULL;
}

const char *fl_filter(const char *text, const fl_owner *owner, const fl_batch *clusters, fl_filter_result *result) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    /* The label's column; NULL when no cluster has the label. */
    const fl_column *column = fl_batch_label_column(clusters, cfg.key);
    const char *reason = fl_sprintf("label %s not in [%s]", cfg.key, fl_strs_join(&cfg.values, ", "));
    size_t removed = 0;
    for (size_t i = 0; i < clusters->count; i++) {
        const char *value = fl_column_get(column, i);
        if (!value || !fl_strs_contains(&cfg.values, value)) {
            fl_filter_remove(result, i, reason);
            removed++;
        }
    }
    /* Log lines land in the hub's log, tagged with the plugin's name. */
    fl_log(FL_DEBUG, "removing %zu of %zu cluster(s)", removed, clusters->count);
    return NULL;
}
