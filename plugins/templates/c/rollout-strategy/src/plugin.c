/*
 * A rollout strategy: rolls out to at most `maxConcurrent` clusters at a time, in decision
 * group order, and stops at the first failure.
 *
 *     {"maxConcurrent": 2}
 *
 * The world is deterministic: `now` is an argument, and there is no clock and no
 * randomness, so the same input always gives the same decision.
 */
#include "flotilla.h"

const fl_plugin_info FL_PLUGIN = {
    .name = "{{name}}",
    .version = "0.1.0",
    .summary = "Rolls out to a few clusters at a time and stops at the first failure.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\","
        " \"additionalProperties\": false, \"properties\": {\"maxConcurrent\": {\"type\": \"integer\","
        " \"minimum\": 1, \"default\": 1,"
        " \"description\": \"How many clusters may be in flight (applied, not yet succeeded) at once.\"}}}",
};

static const char *parse(const char *text, int64_t *max_concurrent) {
    fl_config *c = fl_config_parse(text);
    *max_concurrent = fl_config_int(c, "maxConcurrent", 1, false);
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (*max_concurrent < 1) return "maxConcurrent must be at least 1";
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    int64_t max_concurrent;
    return parse(text, &max_concurrent);
}

static void named(const fl_rollout_cluster *clusters, size_t n, fl_rollout_status status, fl_strs *out) {
    for (size_t i = 0; i < n; i++)
        if (clusters[i].status == status) fl_strs_push(out, clusters[i].cluster.name);
}

const char *fl_decide(const char *text, const fl_owner *owner, int64_t now, const fl_rollout_cluster *clusters, size_t n,
                      fl_rollout_decision *d) {
    int64_t max_concurrent;
    const char *err = parse(text, &max_concurrent);
    if (err) return err;
    named(clusters, n, FL_FAILED, &d->failed);
    named(clusters, n, FL_TIME_OUT, &d->failed);
    /* Clusters in flight keep getting the revision. */
    named(clusters, n, FL_PROGRESSING, &d->proceed);
    d->stop = d->failed.len > 0;
    if (!d->stop) {
        /* New clusters, by decision group (in input order within a group), until
         * maxConcurrent are in flight. */
        int64_t room = max_concurrent - (int64_t)d->proceed.len;
        for (uint64_t group = 0; room > 0 && group <= UINT32_MAX; group++) {
            uint64_t next = UINT64_MAX; /* the smallest group index above this one */
            for (size_t i = 0; i < n && room > 0; i++) {
                const fl_rollout_cluster *c = &clusters[i];
                if (c->status != FL_TO_APPLY) continue;
                if (c->group_index == group) { fl_strs_push(&d->proceed, c->cluster.name); room--; }
                else if (c->group_index > group && c->group_index < next) next = c->group_index;
            }
            if (next == UINT64_MAX) break;
            group = next - 1;
        }
    }
    size_t succeeded = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (clusters[i].status == FL_SUCCEEDED) succeeded++;
        if (clusters[i].status != FL_SKIP) total++;
    }
    d->message = d->stop ? fl_sprintf("stopped: %zu cluster(s) failed", d->failed.len)
                         : fl_sprintf("%zu of %zu cluster(s) succeeded, %zu in flight", succeeded, total, d->proceed.len);
    return NULL;
}
