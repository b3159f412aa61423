/* region-capacity-filter: keeps clusters in allowed regions with enough allocatable
 * resources (spec: plugins/examples/README.md). */
#include "flotilla.h"

#include <stdlib.h>
#include <string.h>

const fl_plugin_info FL_PLUGIN = {
    .name = "region-capacity-filter",
    .version = "0.1.0",
    .summary = "Keeps clusters in allowed regions with enough allocatable resources.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\", \"additionalProperties\": false,"
        " \"required\": [\"regions\"], \"properties\": {"
        " \"regions\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"minItems\": 1, \"description\": \"Allowed values of the region label.\"},"
        " \"regionLabel\": {\"type\": \"string\", \"minLength\": 1, \"default\": \"region\", \"description\": \"The label that holds a cluster's region.\"},"
        " \"minAllocatableMilli\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"integer\", \"minimum\": 0}, \"default\": {},"
        " \"description\": \"Minimum allocatable amount per resource, in milli-units.\"}}}",
};

typedef struct {
    const char *name;
    int64_t min;
} minimum;

typedef struct {
    fl_strs regions;
    const char *region_label;
    minimum *minimums; /* sorted by name, byte-wise */
    size_t minimums_len;
} config;

static int by_name(const void *a, const void *b) { return strcmp(((const minimum *)a)->name, ((const minimum *)b)->name); }

static const char *parse(const char *text, config *cfg) {
    fl_config *c = fl_config_parse(text);
    cfg->regions = fl_config_strings(c, "regions", true);
    cfg->region_label = fl_config_string(c, "regionLabel", "region");
    fl_json *mins = fl_config_json(c, "minAllocatableMilli");
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (cfg->regions.len == 0) return "regions must name at least one region";
    if (!*cfg->region_label) return "regionLabel must not be empty";
    cfg->minimums_len = 0;
    if (mins) {
        if (!fl_json_is(mins, FL_JSON_OBJECT)) return "invalid configuration: minAllocatableMilli must be an object";
        cfg->minimums = fl_alloc((fl_json_len(mins) + 1) * sizeof *cfg->minimums);
        for (size_t i = 0; i < fl_json_len(mins); i++) {
            minimum *m = &cfg->minimums[cfg->minimums_len++];
            m->name = mins->keys[i];
            if (!fl_json_int(mins->items[i], &m->min))
                return fl_sprintf("invalid configuration: minAllocatableMilli.%s must be a 64-bit integer", m->name);
            if (m->min < 0) return fl_sprintf("minAllocatableMilli.%s must not be negative", m->name);
        }
        qsort(cfg->minimums, cfg->minimums_len, sizeof *cfg->minimums, by_name);
    }
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    fl_strs_push(&reads->labels, cfg.region_label);
    for (size_t i = 0; i < cfg.minimums_len; i++) fl_strs_push(&reads->resources, cfg.minimums[i].name);
    return NULL;
}

const char *fl_filter(const char *text, const fl_owner *owner, const fl_batch *clusters, fl_filter_result *result) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    const fl_column *regions = fl_batch_label_column(clusters, cfg.region_label);
    for (size_t i = 0; i < clusters->count; i++) {
        const char *region = fl_column_get(regions, i);
        if (!region) {
            fl_filter_remove(result, i, fl_sprintf("label %s missing", cfg.region_label));
            continue;
        }
        if (!fl_strs_contains(&cfg.regions, region)) {
            fl_filter_remove(result, i, fl_sprintf("region %s not allowed", region));
            continue;
        }
        for (size_t r = 0; r < cfg.minimums_len; r++) {
            const minimum *m = &cfg.minimums[r];
            int64_t got;
            if (!fl_batch_allocatable(clusters, i, m->name, &got)) {
                fl_filter_remove(result, i, fl_sprintf("%s not reported", m->name));
                break;
            }
            if (got < m->min) {
                fl_filter_remove(result, i, fl_sprintf("%s allocatable %lldm below %lldm", m->name, (long long)got, (long long)m->min));
                break;
            }
        }
    }
    return NULL;
}
