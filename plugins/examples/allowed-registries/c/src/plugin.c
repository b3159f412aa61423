/* allowed-registries: a cluster complies when every Deployment's images come from allowed
 * registries; with rewriteTo, each violation proposes a merge patch (spec:
 * plugins/examples/README.md). */
#include "flotilla.h"

#include <stdlib.h>
#include <string.h>

const fl_plugin_info FL_PLUGIN = {
    .name = "allowed-registries",
    .version = "0.1.0",
    .summary = "A cluster complies when every Deployment's images come from allowed registries.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\", \"additionalProperties\": false,"
        " \"required\": [\"registries\"], \"properties\": {"
        " \"registries\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"minItems\": 1, \"description\": \"Allowed registry prefixes.\"},"
        " \"namespace\": {\"type\": \"string\", \"description\": \"Check only Deployments in this namespace.\"},"
        " \"rewriteTo\": {\"type\": \"string\", \"description\": \"The registry that remediation moves disallowed images to.\"}}}",
};

typedef struct {
    fl_strs registries;
    const char *namespace_; /* NULL: all namespaces */
    const char *rewrite_to; /* NULL: no remediation */
} config;

static const char *parse(const char *text, config *cfg) {
    fl_config *c = fl_config_parse(text);
    cfg->registries = fl_config_strings(c, "registries", true);
    cfg->namespace_ = fl_config_optional_string(c, "namespace");
    cfg->rewrite_to = fl_config_optional_string(c, "rewriteTo");
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (cfg->registries.len == 0) return "registries must name at least one registry";
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (!err) fl_reads_kind(reads, "apps/v1", "Deployment");
    return err;
}

static bool allowed(const config *cfg, const char *image) {
    for (size_t i = 0; i < cfg->registries.len; i++) {
        size_t n = strlen(cfg->registries.items[i]);
        if (strncmp(image, cfg->registries.items[i], n) == 0 && image[n] == '/') return true;
    }
    return false;
}

/* The image without its registry host (`docker.io/library/redis:7` is `library/redis:7`). */
static const char *repository(const char *image) {
    const char *slash = strchr(image, '/');
    if (!slash) return image;
    char *host = fl_strndup(image, (size_t)(slash - image));
    return strchr(host, '.') || strchr(host, ':') || strcmp(host, "localhost") == 0 ? slash + 1 : image;
}

static const char *LISTS[] = {"initContainers", "containers"};

static const char *meta(const fl_json *d, const char *field) {
    const char *s = fl_json_str(fl_json_path(d, "metadata", field, NULL));
    return s ? s : "";
}

static int by_namespace_name(const void *a, const void *b) {
    const fl_json *x = *(fl_json *const *)a, *y = *(fl_json *const *)b;
    int c = strcmp(meta(x, "namespace"), meta(y, "namespace"));
    return c ? c : strcmp(meta(x, "name"), meta(y, "name"));
}

const char *fl_check(const char *text, const fl_owner *owner, const fl_cluster *cluster, fl_check_result *result) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    fl_json *deployments;
    err = fl_spoke_list("apps/v1", "Deployment", cfg.namespace_, NULL, &deployments);
    if (err) return err;
    size_t n = fl_json_len(deployments), violating = 0;
    if (n > 1) qsort(deployments->items, n, sizeof *deployments->items, by_namespace_name);
    for (size_t i = 0; i < n; i++) {
        fl_json *d = fl_json_at(deployments, i);
        fl_json *spec = fl_json_path(d, "spec", "template", "spec", NULL);
        fl_strs bad = {0};
        fl_json *patched = fl_json_new_object();
        for (int l = 0; l < 2; l++) {
            fl_json *list = fl_json_get(spec, LISTS[l]);
            bool any = false;
            fl_json *copy = fl_json_new_array();
            for (size_t k = 0; k < fl_json_len(list); k++) {
                fl_json *container = fl_json_copy(fl_json_at(list, k));
                const char *image = fl_json_str(fl_json_get(container, "image"));
                if (image && !allowed(&cfg, image)) {
                    any = true;
                    if (!fl_strs_contains(&bad, image)) fl_strs_push(&bad, image);
                    if (cfg.rewrite_to)
                        fl_json_set(container, "image", fl_json_new_string(fl_sprintf("%s/%s", cfg.rewrite_to, repository(image))));
                }
                fl_json_push(copy, container);
            }
            if (any) fl_json_set(patched, LISTS[l], copy);
        }
        if (bad.len == 0) continue;
        violating++;
        fl_json *remediation = NULL;
        if (cfg.rewrite_to) {
            /* {"spec": {"template": {"spec": {...}}}} */
            remediation = fl_json_new_object();
            fl_json *template = fl_json_object_member(fl_json_object_member(remediation, "spec"), "template");
            fl_json_set(template, "spec", patched);
        }
        fl_object_ref object = {"apps/v1", "Deployment", meta(d, "namespace"), meta(d, "name")};
        fl_check_violation(result, &object, fl_sprintf("images not from an allowed registry: %s", fl_strs_join(&bad, ", ")), remediation);
    }
    if (violating)
        fl_check_set(result, FL_NON_COMPLIANT, fl_sprintf("%zu of %zu deployment(s) use images outside the allowed registries", violating, n));
    else
        fl_check_set(result, FL_COMPLIANT, fl_sprintf("all %zu deployment(s) use allowed registries", n));
    return NULL;
}
