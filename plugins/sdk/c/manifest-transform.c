/* The manifest-transform world's exports, calling the plugin's fl_transform_config and
 * fl_transform_cluster. */
#include "flotilla_glue.h"

void exports_flotilla_manifest_transform_transform_describe(flotilla_types_types_description_t *ret) { fl_describe(ret); }

bool exports_flotilla_manifest_transform_transform_validate_config(bindings_string_t *config, flotilla_types_types_reads_t *ret, bindings_string_t *err) {
    return fl_validate(config, ret, err);
}

bool exports_flotilla_manifest_transform_transform_transform(bindings_string_t *config, flotilla_types_types_owner_ref_t *owner,
                                                             bindings_list_string_t *manifests, flotilla_types_types_cluster_batch_t *clusters,
                                                             exports_flotilla_manifest_transform_transform_list_result_list_string_string_t *ret,
                                                             bindings_string_t *err) {
    const char *text = fl_in(config);
    bindings_string_free(config);
    (void)fl_in_owner(owner);
    const char *e = NULL;
    fl_json *parsed = fl_json_new_array();
    for (size_t i = 0; i < manifests->len && !e; i++) {
        const char *perr = NULL;
        fl_json *m = fl_json_parse((const char *)manifests->ptr[i].ptr, manifests->ptr[i].len, &perr);
        if (m) fl_json_push(parsed, m);
        else e = fl_sprintf("manifest %zu is not JSON: %s", i, perr);
    }
    bindings_list_string_free(manifests);
    fl_batch batch = fl_in_batch(clusters);
    void *state = NULL;
    if (!e) e = fl_transform_config(text, &state);
    exports_flotilla_manifest_transform_transform_result_list_string_string_t *out = NULL;
    if (!e) {
        out = calloc(batch.count ? batch.count : 1, sizeof *out);
        if (!out) abort();
    }
    size_t done = 0;
    for (; !e && done < batch.count; done++) {
        fl_json *copy = fl_json_copy(parsed);
        const char *cluster_error = NULL;
        e = fl_transform_cluster(state, copy, &batch, done, &cluster_error);
        if (e) break;
        if (cluster_error) {
            out[done].is_err = true;
            out[done].val.err = fl_out(cluster_error);
        } else {
            fl_strs texts = {0};
            for (size_t j = 0; j < fl_json_len(copy); j++) fl_strs_push(&texts, fl_json_write(copy->items[j]));
            out[done].val.ok = fl_out_strs(&texts);
        }
    }
    flotilla_types_types_cluster_batch_free(clusters);
    bool ok = e == NULL;
    if (ok) {
        ret->ptr = batch.count ? out : NULL;
        ret->len = batch.count;
        if (!batch.count) free(out);
    } else {
        if (out) {
            exports_flotilla_manifest_transform_transform_list_result_list_string_string_t partial = {out, done};
            exports_flotilla_manifest_transform_transform_list_result_list_string_string_free(&partial);
        }
        *err = fl_out(e);
    }
    fl_arena_reset();
    return ok;
}
