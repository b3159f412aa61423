/* The rollout-strategy world's exports, calling the plugin's fl_decide. */
#include "flotilla_glue.h"

void exports_flotilla_rollout_strategy_strategy_describe(flotilla_types_types_description_t *ret) { fl_describe(ret); }

bool exports_flotilla_rollout_strategy_strategy_validate_config(bindings_string_t *config, flotilla_types_types_reads_t *ret, bindings_string_t *err) {
    return fl_validate(config, ret, err);
}

bool exports_flotilla_rollout_strategy_strategy_decide(bindings_string_t *config, flotilla_types_types_owner_ref_t *owner, int64_t now,
                                                       exports_flotilla_rollout_strategy_strategy_list_rollout_cluster_t *clusters,
                                                       exports_flotilla_rollout_strategy_strategy_rollout_decision_t *ret, bindings_string_t *err) {
    const char *text = fl_in(config);
    bindings_string_free(config);
    fl_owner o = fl_in_owner(owner);
    size_t n = clusters->len;
    fl_rollout_cluster *cs = fl_alloc((n ? n : 1) * sizeof *cs);
    for (size_t i = 0; i < n; i++) {
        exports_flotilla_rollout_strategy_strategy_rollout_cluster_t *r = &clusters->ptr[i];
        cs[i].cluster = fl_in_cluster(&r->cluster);
        cs[i].group_index = r->group_index;
        cs[i].group_name = fl_in(&r->group_name);
        cs[i].status = (fl_rollout_status)r->status;
        cs[i].has_last_transition_time = r->last_transition_time.is_some;
        cs[i].last_transition_time = r->last_transition_time.val;
    }
    exports_flotilla_rollout_strategy_strategy_list_rollout_cluster_free(clusters);
    fl_rollout_decision d;
    memset(&d, 0, sizeof d);
    const char *e = fl_decide(text, &o, now, cs, n, &d);
    bool ok = e == NULL;
    if (ok) {
        memset(ret, 0, sizeof *ret);
        ret->proceed = fl_out_strs(&d.proceed);
        ret->timed_out = fl_out_strs(&d.timed_out);
        ret->failed = fl_out_strs(&d.failed);
        ret->stop = d.stop;
        ret->recheck_after_ms.is_some = d.recheck;
        ret->recheck_after_ms.val = d.recheck_after_ms;
        ret->message = fl_out_opt(d.message);
    } else {
        *err = fl_out(e);
    }
    fl_arena_reset();
    return ok;
}
