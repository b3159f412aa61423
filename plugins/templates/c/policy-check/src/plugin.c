/*
 * A policy check: a cluster complies when one object exists on it.
 *
 *     {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-public", "name": "cluster-info"}
 *
 * The agent calls fl_check once per evaluation on its own cluster. fl_spoke_get and
 * fl_spoke_list read objects only of the kinds fl_validate_config declared in reads.
 */
#include "flotilla.h"

const fl_plugin_info FL_PLUGIN = {
    .name = "{{name}}",
    .version = "0.1.0",
    .summary = "A cluster complies when one object exists on it.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\","
        " \"additionalProperties\": false, \"required\": [\"apiVersion\", \"kind\", \"name\"], \"properties\": {"
        " \"apiVersion\": {\"type\": \"string\", \"minLength\": 1}, \"kind\": {\"type\": \"string\", \"minLength\": 1},"
        " \"namespace\": {\"type\": \"string\", \"description\": \"Absent for a cluster-scoped kind.\"},"
        " \"name\": {\"type\": \"string\", \"minLength\": 1}}}",
};

typedef struct {
    const char *api_version, *kind, *namespace_, *name;
} config;

static const char *parse(const char *text, config *cfg) {
    fl_config *c = fl_config_parse(text);
    cfg->api_version = fl_config_string(c, "apiVersion", NULL);
    cfg->kind = fl_config_string(c, "kind", NULL);
    cfg->namespace_ = fl_config_optional_string(c, "namespace"); /* absent: cluster-scoped */
    cfg->name = fl_config_string(c, "name", NULL);
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (!*cfg->api_version || !*cfg->kind || !*cfg->name) return "apiVersion, kind and name must not be empty";
    return NULL;
}

/* `ConfigMap kube-public/cluster-info`, for messages. */
static const char *display(const config *cfg) {
    return cfg->namespace_ ? fl_sprintf("%s %s/%s", cfg->kind, cfg->namespace_, cfg->name) : fl_sprintf("%s %s", cfg->kind, cfg->name);
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    fl_reads_kind(reads, cfg.api_version, cfg.kind);
    return NULL;
}

const char *fl_check(const char *text, const fl_owner *owner, const fl_cluster *cluster, fl_check_result *result) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    fl_json *found;
    err = fl_spoke_get(cfg.api_version, cfg.kind, cfg.namespace_, cfg.name, &found);
    if (err) return err;
    if (found) {
        fl_check_set(result, FL_COMPLIANT, fl_sprintf("%s exists on %s", display(&cfg), cluster->name));
        return NULL;
    }
    fl_check_set(result, FL_NON_COMPLIANT, fl_sprintf("%s is missing on %s", display(&cfg), cluster->name));
    fl_object_ref object = {cfg.api_version, cfg.kind, cfg.namespace_, cfg.name};
    /* The last argument is a JSON merge patch that would fix the object (an fl_json), applied
     * only when the Policy is enforced; a missing object cannot be patched into existence. */
    fl_check_violation(result, &object, fl_sprintf("%s does not exist", display(&cfg)), NULL);
    return NULL;
}
