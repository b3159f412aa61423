/* The placement-scorer world's exports, calling the plugin's fl_score. */
#include "flotilla_glue.h"

void exports_flotilla_placement_scorer_scorer_describe(flotilla_types_types_description_t *ret) { fl_describe(ret); }

bool exports_flotilla_placement_scorer_scorer_validate_config(bindings_string_t *config, flotilla_types_types_reads_t *ret, bindings_string_t *err) {
    return fl_validate(config, ret, err);
}

bool exports_flotilla_placement_scorer_scorer_score(bindings_string_t *config, flotilla_types_types_owner_ref_t *owner,
                                                   flotilla_types_types_cluster_batch_t *clusters,
                                                   exports_flotilla_placement_scorer_scorer_score_result_t *ret, bindings_string_t *err) {
    const char *text = fl_in(config);
    bindings_string_free(config);
    fl_owner o = fl_in_owner(owner);
    fl_batch batch = fl_in_batch(clusters);
    fl_score_result result;
    memset(&result, 0, sizeof result);
    result.scores = fl_alloc((batch.count ? batch.count : 1) * sizeof *result.scores);
    const char *e = fl_score(text, &o, &batch, &result);
    bool ok = e == NULL;
    if (ok) {
        memset(ret, 0, sizeof *ret);
        if (batch.count) {
            ret->scores.ptr = malloc(batch.count * sizeof(int32_t));
            if (!ret->scores.ptr) abort();
            memcpy(ret->scores.ptr, result.scores, batch.count * sizeof(int32_t));
            ret->scores.len = batch.count;
        }
        ret->requeue_after_ms.is_some = result.requeue;
        ret->requeue_after_ms.val = result.requeue_after_ms;
    } else {
        *err = fl_out(e);
    }
    flotilla_types_types_cluster_batch_free(clusters);
    fl_arena_reset();
    return ok;
}
