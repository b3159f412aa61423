/* The policy-check world's exports, calling the plugin's fl_check; and spoke reads. */
#include "flotilla_glue.h"

void exports_flotilla_policy_check_check_describe(flotilla_types_types_description_t *ret) { fl_describe(ret); }

bool exports_flotilla_policy_check_check_validate_config(bindings_string_t *config, flotilla_types_types_reads_t *ret, bindings_string_t *err) {
    return fl_validate(config, ret, err);
}

static bindings_string_t borrow(const char *s) { return (bindings_string_t){(uint8_t *)s, s ? strlen(s) : 0}; }

const char *fl_spoke_list(const char *api_version, const char *kind, const char *namespace_, const char *label_selector, fl_json **items) {
    flotilla_types_types_kind_ref_t k = {borrow(api_version), borrow(kind)};
    bindings_string_t ns = borrow(namespace_), sel = borrow(label_selector);
    bindings_list_string_t list;
    bindings_string_t err;
    *items = fl_json_new_array();
    if (!flotilla_policy_check_spoke_list_objects(&k, namespace_ ? &ns : NULL, label_selector ? &sel : NULL, &list, &err)) {
        const char *e = fl_in(&err);
        bindings_string_free(&err);
        return e;
    }
    const char *e = NULL;
    for (size_t i = 0; i < list.len && !e; i++) {
        const char *perr = NULL;
        fl_json *obj = fl_json_parse((const char *)list.ptr[i].ptr, list.ptr[i].len, &perr);
        if (obj) fl_json_push(*items, obj);
        else e = fl_sprintf("the host listed an object that is not JSON: %s", perr);
    }
    bindings_list_string_free(&list);
    return e;
}

const char *fl_spoke_get(const char *api_version, const char *kind, const char *namespace_, const char *name, fl_json **object) {
    flotilla_types_types_kind_ref_t k = {borrow(api_version), borrow(kind)};
    bindings_string_t ns = borrow(namespace_), n = borrow(name);
    bindings_option_string_t found;
    bindings_string_t err;
    *object = NULL;
    if (!flotilla_policy_check_spoke_get_object(&k, namespace_ ? &ns : NULL, &n, &found, &err)) {
        const char *e = fl_in(&err);
        bindings_string_free(&err);
        return e;
    }
    const char *e = NULL;
    if (found.is_some) {
        const char *perr = NULL;
        *object = fl_json_parse((const char *)found.val.ptr, found.val.len, &perr);
        if (!*object) e = fl_sprintf("the host returned an object that is not JSON: %s", perr);
    }
    bindings_option_string_free(&found);
    return e;
}

bool exports_flotilla_policy_check_check_check(bindings_string_t *config, flotilla_types_types_owner_ref_t *owner,
                                               flotilla_types_types_cluster_t *cluster,
                                               exports_flotilla_policy_check_check_check_result_t *ret, bindings_string_t *err) {
    const char *text = fl_in(config);
    bindings_string_free(config);
    fl_owner o = fl_in_owner(owner);
    fl_cluster c = fl_in_cluster(cluster);
    flotilla_types_types_cluster_free(cluster);
    fl_check_result result;
    memset(&result, 0, sizeof result);
    const char *e = fl_check(text, &o, &c, &result);
    bool ok = e == NULL;
    if (ok) {
        memset(ret, 0, sizeof *ret);
        ret->compliance = (exports_flotilla_policy_check_check_compliance_t)result.compliance;
        ret->message = fl_out(result.message ? result.message : "");
        if (result.violations_len) {
            ret->violations.ptr = calloc(result.violations_len, sizeof *ret->violations.ptr);
            if (!ret->violations.ptr) abort();
            ret->violations.len = result.violations_len;
            for (size_t i = 0; i < result.violations_len; i++) {
                const fl_violation *v = &result.violations[i];
                exports_flotilla_policy_check_check_violation_t *w = &ret->violations.ptr[i];
                if (v->has_object) {
                    w->object.is_some = true;
                    w->object.val.kind.api_version = fl_out(v->object.api_version);
                    w->object.val.kind.kind = fl_out(v->object.kind);
                    w->object.val.namespace_ = fl_out_opt(v->object.namespace_ && *v->object.namespace_ ? v->object.namespace_ : NULL);
                    w->object.val.name = fl_out(v->object.name);
                }
                w->message = fl_out(v->message);
                w->remediation = fl_out_opt(v->remediation);
            }
        }
    } else {
        *err = fl_out(e);
    }
    fl_arena_reset();
    return ok;
}
