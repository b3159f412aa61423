/* The placement-filter world's exports, calling the plugin's fl_filter. */
#include "flotilla_glue.h"

void exports_flotilla_placement_filter_filter_describe(flotilla_types_types_description_t *ret) { fl_describe(ret); }

bool exports_flotilla_placement_filter_filter_validate_config(bindings_string_t *config, flotilla_types_types_reads_t *ret, bindings_string_t *err) {
    return fl_validate(config, ret, err);
}

bool exports_flotilla_placement_filter_filter_filter(bindings_string_t *config, flotilla_types_types_owner_ref_t *owner,
                                                     flotilla_types_types_cluster_batch_t *clusters,
                                                     exports_flotilla_placement_filter_filter_filter_result_t *ret, bindings_string_t *err) {
    const char *text = fl_in(config);
    bindings_string_free(config);
    fl_owner o = fl_in_owner(owner);
    fl_batch batch = fl_in_batch(clusters);
    fl_filter_result result;
    memset(&result, 0, sizeof result);
    result.count = batch.count;
    result.verdicts = fl_alloc((batch.count ? batch.count : 1) * sizeof *result.verdicts);
    const char *e = fl_filter(text, &o, &batch, &result);
    bool ok = e == NULL;
    if (ok) {
        memset(ret, 0, sizeof *ret);
        ret->reasons = fl_out_strs(&result.reasons);
        if (batch.count) {
            ret->verdicts.ptr = malloc(batch.count * sizeof(uint32_t));
            if (!ret->verdicts.ptr) abort();
            memcpy(ret->verdicts.ptr, result.verdicts, batch.count * sizeof(uint32_t));
            ret->verdicts.len = batch.count;
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
