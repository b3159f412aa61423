/*
 * A manifest transform: labels every manifest with the name of the cluster it goes to.
 *
 *     {"labelKey": "example.com/cluster"}
 *
 * fl_transform_config parses the configuration once per call; fl_transform_cluster runs
 * once per cluster, in order, on its own copy of the manifests (a JSON array) and changes
 * them in place.
 */
#include "flotilla.h"

#include <string.h>

const fl_plugin_info FL_PLUGIN = {
    .name = "{{name}}",
    .version = "0.1.0",
    .summary = "Labels every manifest with the name of the cluster it goes to.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\","
        " \"additionalProperties\": false, \"properties\": {\"labelKey\": {\"type\": \"string\","
        " \"minLength\": 1, \"default\": \"flotilla.dev/cluster\","
        " \"description\": \"The label that carries the cluster's name.\"}}}",
};

static const char *parse(const char *text, const char **label_key) {
    fl_config *c = fl_config_parse(text);
    *label_key = fl_config_string(c, "labelKey", "flotilla.dev/cluster");
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (!**label_key) return "labelKey must not be empty";
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    const char *label_key;
    return parse(text, &label_key);
}

const char *fl_transform_config(const char *text, void **state) {
    const char *label_key;
    const char *err = parse(text, &label_key);
    *state = (void *)label_key;
    return err;
}

const char *fl_transform_cluster(void *state, fl_json *manifests, const fl_batch *clusters, size_t i, const char **cluster_error) {
    const char *label_key = state;
    const char *name = clusters->names[i];
    /* Kubernetes label values are at most 63 characters: this cluster cannot have the work. */
    if (strlen(name) > 63) {
        *cluster_error = fl_sprintf("cluster name %s is longer than a label value may be (63)", name);
        return NULL;
    }
    for (size_t m = 0; m < fl_json_len(manifests); m++) {
        fl_json *manifest = fl_json_at(manifests, m);
        if (!fl_json_is(manifest, FL_JSON_OBJECT)) { *cluster_error = "a manifest is not a JSON object"; return NULL; }
        fl_json *metadata = fl_json_object_member(manifest, "metadata");
        if (!metadata) { *cluster_error = "a manifest's metadata is not an object"; return NULL; }
        fl_json *labels = fl_json_object_member(metadata, "labels");
        if (!labels) { *cluster_error = "a manifest's labels are not an object"; return NULL; }
        fl_json_set(labels, label_key, fl_json_new_string(name));
    }
    return NULL;
}
