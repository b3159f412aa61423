/* claims-transform: per-cluster image registry and replica count from cluster claims
 * (spec: plugins/examples/README.md). */
#include "flotilla.h"

#include <string.h>

const fl_plugin_info FL_PLUGIN = {
    .name = "claims-transform",
    .version = "0.1.0",
    .summary = "Per-cluster image registry and replica count from cluster claims.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\", \"additionalProperties\": false,"
        " \"properties\": {"
        " \"registryClaim\": {\"type\": \"string\", \"description\": \"The claim whose value is the cluster's registry host.\"},"
        " \"replicasClaim\": {\"type\": \"string\", \"description\": \"The claim whose value is the cluster's replica count.\"}}}",
};

typedef struct {
    const char *registry_claim, *replicas_claim; /* NULL when not set */
} config;

static const char *parse(const char *text, config *cfg) {
    fl_config *c = fl_config_parse(text);
    cfg->registry_claim = fl_config_optional_string(c, "registryClaim");
    cfg->replicas_claim = fl_config_optional_string(c, "replicasClaim");
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (!cfg->registry_claim && !cfg->replicas_claim) return "set registryClaim or replicasClaim";
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    if (cfg.registry_claim) fl_strs_push(&reads->claims, cfg.registry_claim);
    if (cfg.replicas_claim) fl_strs_push(&reads->claims, cfg.replicas_claim);
    return NULL;
}

const char *fl_transform_config(const char *text, void **state) {
    config *cfg = fl_alloc(sizeof *cfg);
    *state = cfg;
    return parse(text, cfg);
}

/* The image without its registry host (`docker.io/library/redis:7` is `library/redis:7`). */
static const char *repository(const char *image) {
    const char *slash = strchr(image, '/');
    if (!slash) return image;
    char *host = fl_strndup(image, (size_t)(slash - image));
    return strchr(host, '.') || strchr(host, ':') || strcmp(host, "localhost") == 0 ? slash + 1 : image;
}

static bool is(const char *kind, const char *a, const char *b, const char *c) {
    return kind && ((a && !strcmp(kind, a)) || (b && !strcmp(kind, b)) || (c && !strcmp(kind, c)));
}

const char *fl_transform_cluster(void *state, fl_json *manifests, const fl_batch *clusters, size_t i, const char **cluster_error) {
    const config *cfg = state;
    const char *registry = cfg->registry_claim ? fl_batch_claim(clusters, i, cfg->registry_claim) : NULL;
    const char *replicas = cfg->replicas_claim ? fl_batch_claim(clusters, i, cfg->replicas_claim) : NULL;
    if (replicas) {
        bool digits = *replicas != 0;
        for (const char *p = replicas; *p; p++)
            if (*p < '0' || *p > '9') digits = false;
        if (!digits) {
            *cluster_error = fl_sprintf("claim %s value %s is not a replica count", cfg->replicas_claim, replicas);
            return NULL;
        }
        while (replicas[0] == '0' && replicas[1]) replicas++; /* a JSON integer has no leading zeros */
    }
    for (size_t m = 0; m < fl_json_len(manifests); m++) {
        fl_json *manifest = fl_json_at(manifests, m);
        const char *kind = fl_json_str(fl_json_get(manifest, "kind"));
        if (registry) {
            fl_json *pod = is(kind, "Pod", NULL, NULL) ? fl_json_get(manifest, "spec")
                         : is(kind, "Deployment", "StatefulSet", "DaemonSet") ? fl_json_path(manifest, "spec", "template", "spec", NULL)
                         : NULL;
            static const char *lists[] = {"initContainers", "containers"};
            for (int l = 0; l < 2; l++) {
                fl_json *list = fl_json_get(pod, lists[l]);
                for (size_t k = 0; k < fl_json_len(list); k++) {
                    fl_json *container = fl_json_at(list, k);
                    const char *image = fl_json_str(fl_json_get(container, "image"));
                    if (image) fl_json_set(container, "image", fl_json_new_string(fl_sprintf("%s/%s", registry, repository(image))));
                }
            }
        }
        if (replicas && is(kind, "Deployment", "StatefulSet", NULL)) {
            fl_json *spec = fl_json_object_member(manifest, "spec");
            if (!spec) { /* spec is there but not an object: replace it */
                spec = fl_json_new_object();
                fl_json_set(manifest, "spec", spec);
            }
            fl_json *count = fl_json_new_int(0);
            count->number = replicas; /* the digits as they are: exact at any size */
            fl_json_set(spec, "replicas", count);
        }
    }
    return NULL;
}
