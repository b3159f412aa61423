/*
 * A placement scorer: ranks clusters by the allocatable amount of one resource, from -100
 * for a cluster without it to 100 for the one with the most.
 *
 *     {"resource": "cpu"}
 *
 * Quantities are milli-units (int64_t); fl_batch_allocatable answers false when a cluster
 * does not report the resource.
 */
#include "flotilla.h"

const fl_plugin_info FL_PLUGIN = {
    .name = "{{name}}",
    .version = "0.1.0",
    .summary = "Ranks clusters by the allocatable amount of one resource.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\","
        " \"additionalProperties\": false, \"properties\": {\"resource\": {\"type\": \"string\","
        " \"minLength\": 1, \"default\": \"cpu\","
        " \"description\": \"The resource to rank by, as in ManagedCluster.status.allocatable.\"}}}",
};

static const char *parse(const char *text, const char **resource) {
    fl_config *c = fl_config_parse(text);
    *resource = fl_config_string(c, "resource", "cpu");
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (!**resource) return "resource must not be empty";
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    const char *resource;
    const char *err = parse(text, &resource);
    if (err) return err;
    fl_strs_push(&reads->resources, resource);
    return NULL;
}

/* Each cluster's allocatable amount against the largest: 100 for the largest, -100 for
 * none. Scores must be within [-100, 100], one per cluster, in input order. */
const char *fl_score(const char *text, const fl_owner *owner, const fl_batch *clusters, fl_score_result *result) {
    const char *resource;
    const char *err = parse(text, &resource);
    if (err) return err;
    int64_t max = -1, a;
    for (size_t i = 0; i < clusters->count; i++)
        if (fl_batch_allocatable(clusters, i, resource, &a) && a > max) max = a;
    for (size_t i = 0; i < clusters->count; i++) {
        if (!fl_batch_allocatable(clusters, i, resource, &a) || max <= 0) result->scores[i] = -100;
        else result->scores[i] = (int32_t)((__int128)a * 200 / max - 100);
    }
    return NULL;
}
