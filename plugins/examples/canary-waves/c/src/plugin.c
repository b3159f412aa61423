/* canary-waves: a canary, then percentage waves, each gated on the health of everything
 * before it (spec: plugins/examples/README.md). */
#include "flotilla.h"

#include <stdlib.h>
#include <string.h>

const fl_plugin_info FL_PLUGIN = {
    .name = "canary-waves",
    .version = "0.1.0",
    .summary = "A canary, then percentage waves, each gated on the health of everything before it.",
    .config_schema =
        "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"type\": \"object\", \"additionalProperties\": false,"
        " \"properties\": {"
        " \"canary\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 1, \"description\": \"Clusters in the first stage.\"},"
        " \"waves\": {\"type\": \"array\", \"items\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 100}, \"default\": [100],"
        " \"description\": \"Each wave extends the rollout to this percentage of all clusters.\"},"
        " \"maxFailures\": {\"type\": \"integer\", \"minimum\": 0, \"default\": 0, \"description\": \"Failures tolerated before the rollout stops.\"}}}",
};

typedef struct {
    int64_t canary, max_failures;
    int64_t *waves;
    size_t waves_len;
} config;

static const char *parse(const char *text, config *cfg) {
    static const int64_t default_waves[] = {100};
    fl_config *c = fl_config_parse(text);
    cfg->canary = fl_config_int(c, "canary", 1, false);
    cfg->waves = fl_config_ints(c, "waves", &cfg->waves_len, default_waves, 1);
    cfg->max_failures = fl_config_int(c, "maxFailures", 0, false);
    const char *err = fl_config_finish(c);
    if (err) return err;
    if (cfg->canary < 0) return "invalid configuration: canary must not be negative";
    if (cfg->max_failures < 0) return "invalid configuration: maxFailures must not be negative";
    for (size_t i = 0; i < cfg->waves_len; i++)
        if (cfg->waves[i] < 1 || cfg->waves[i] > 100) return "waves must be percentages from 1 to 100";
    return NULL;
}

const char *fl_validate_config(const char *text, fl_reads *reads) {
    config cfg;
    return parse(text, &cfg);
}

static int by_group_then_name(const void *a, const void *b) {
    const fl_rollout_cluster *x = *(const fl_rollout_cluster *const *)a, *y = *(const fl_rollout_cluster *const *)b;
    if (x->group_index != y->group_index) return x->group_index < y->group_index ? -1 : 1;
    return strcmp(x->cluster.name, y->cluster.name);
}

static bool settled(const fl_rollout_cluster *c) {
    return c->status == FL_SUCCEEDED || c->status == FL_FAILED || c->status == FL_TIME_OUT;
}

const char *fl_decide(const char *text, const fl_owner *owner, int64_t now, const fl_rollout_cluster *all, size_t n,
                      fl_rollout_decision *d) {
    config cfg;
    const char *err = parse(text, &cfg);
    if (err) return err;
    /* Drop Skip; order by (groupIndex, name). */
    const fl_rollout_cluster **cs = fl_alloc((n ? n : 1) * sizeof *cs);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].status != FL_SKIP) cs[total++] = &all[i];
    qsort(cs, total, sizeof *cs, by_group_then_name);

    /* Stage ends. */
    int64_t *raw = fl_alloc((cfg.waves_len + 2) * sizeof *raw);
    size_t nraw = 0;
    int64_t t = (int64_t)total;
    raw[nraw++] = cfg.canary < t ? cfg.canary : t;
    for (size_t i = 0; i < cfg.waves_len; i++) {
        int64_t last = raw[nraw - 1], b = (t * cfg.waves[i] + 99) / 100;
        raw[nraw++] = b < last ? last : b > t ? t : b;
    }
    if (raw[nraw - 1] < t) raw[nraw++] = t;
    size_t *bounds = fl_alloc(nraw * sizeof *bounds), nb = 0;
    for (size_t i = 0; i < nraw; i++)
        if (raw[i] != 0 && (nb == 0 || bounds[nb - 1] != (size_t)raw[i])) bounds[nb++] = (size_t)raw[i];

    for (size_t i = 0; i < total; i++)
        if (cs[i]->status == FL_FAILED || cs[i]->status == FL_TIME_OUT) fl_strs_push(&d->failed, cs[i]->cluster.name);

    if ((int64_t)d->failed.len > cfg.max_failures) {
        for (size_t i = 0; i < total; i++)
            if (cs[i]->status == FL_PROGRESSING) fl_strs_push(&d->proceed, cs[i]->cluster.name);
        d->stop = true;
        d->message = fl_sprintf("stopped: %zu failure(s), more than maxFailures %lld", d->failed.len, (long long)cfg.max_failures);
        return NULL;
    }
    for (size_t k = 0; k < nb; k++) {
        size_t end = bounds[k], unsettled = 0;
        for (size_t i = 0; i < end; i++)
            if (!settled(cs[i])) unsettled++;
        if (unsettled == 0) continue;
        for (size_t i = 0; i < end; i++)
            if (cs[i]->status == FL_TO_APPLY || cs[i]->status == FL_PROGRESSING) fl_strs_push(&d->proceed, cs[i]->cluster.name);
        d->message = fl_sprintf("stage %zu of %zu: waiting for %zu of %zu cluster(s)", k + 1, nb, unsettled, end);
        return NULL;
    }
    d->message = fl_sprintf("complete: %zu cluster(s)", total);
    return NULL;
}
