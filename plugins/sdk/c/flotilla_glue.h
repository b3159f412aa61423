/* Conversions between the canonical-ABI bindings (`wit-bindgen c --rename-world bindings`)
 * and the SDK's types; included by each world's glue (flotilla_<world>.c) only. */
#ifndef FLOTILLA_GLUE_H
#define FLOTILLA_GLUE_H

#include "bindings.h"
#include "flotilla_internal.h"

#include <stdlib.h>
#include <string.h>

/* A host string as a NUL-terminated arena copy. */
static inline const char *fl_in(const bindings_string_t *s) { return fl_strndup((const char *)s->ptr, s->len); }

/* An SDK string as a malloc'd host string (freed by the generated post-return). */
static inline bindings_string_t fl_out(const char *s) {
    bindings_string_t out = {NULL, 0};
    size_t n = s ? strlen(s) : 0;
    if (n) {
        out.ptr = malloc(n);
        if (!out.ptr) abort();
        memcpy(out.ptr, s, n);
        out.len = n;
    }
    return out;
}

static inline bindings_option_string_t fl_out_opt(const char *s) {
    bindings_option_string_t o = {false, {NULL, 0}};
    if (s) {
        o.is_some = true;
        o.val = fl_out(s);
    }
    return o;
}

static inline bindings_list_string_t fl_out_strs(const fl_strs *l) {
    bindings_list_string_t out = {NULL, 0};
    if (l->len) {
        out.ptr = calloc(l->len, sizeof *out.ptr);
        if (!out.ptr) abort();
        for (size_t i = 0; i < l->len; i++) out.ptr[i] = fl_out(l->items[i]);
        out.len = l->len;
    }
    return out;
}

void fl_host_log(fl_level level, const char *message, size_t len) {
    bindings_string_t m = {(uint8_t *)message, len};
    flotilla_types_log_log((flotilla_types_log_level_t)level, &m);
}

static inline flotilla_types_types_reads_t fl_out_reads(const fl_reads *r) {
    flotilla_types_types_reads_t out;
    memset(&out, 0, sizeof out);
    out.labels = fl_out_strs(&r->labels);
    out.claims = fl_out_strs(&r->claims);
    out.resources = fl_out_strs(&r->resources);
    out.fields = fl_out_strs(&r->fields);
    if (r->kinds_len) {
        out.kinds.ptr = calloc(r->kinds_len, sizeof *out.kinds.ptr);
        if (!out.kinds.ptr) abort();
        for (size_t i = 0; i < r->kinds_len; i++) {
            out.kinds.ptr[i].api_version = fl_out(r->kinds[i].api_version);
            out.kinds.ptr[i].kind = fl_out(r->kinds[i].kind);
        }
        out.kinds.len = r->kinds_len;
    }
    return out;
}

static inline void fl_describe(flotilla_types_types_description_t *ret) {
    memset(ret, 0, sizeof *ret);
    ret->name = fl_out(FL_PLUGIN.name);
    ret->version = fl_out(FL_PLUGIN.version);
    ret->summary = fl_out(FL_PLUGIN.summary);
    fl_reads none;
    memset(&none, 0, sizeof none);
    ret->reads = fl_out_reads(&none);
    ret->config_schema = fl_out_opt(FL_PLUGIN.config_schema);
    fl_arena_reset();
}

static inline bool fl_validate(bindings_string_t *config, flotilla_types_types_reads_t *ret, bindings_string_t *err) {
    const char *text = fl_in(config);
    bindings_string_free(config);
    fl_reads reads;
    memset(&reads, 0, sizeof reads);
    const char *e = fl_validate_config(text, &reads);
    bool ok = e == NULL;
    if (ok) *ret = fl_out_reads(&reads);
    else *err = fl_out(e);
    fl_arena_reset();
    return ok;
}

static inline fl_owner fl_in_owner(flotilla_types_types_owner_ref_t *o) {
    fl_owner out = {fl_in(&o->kind), fl_in(&o->namespace_), fl_in(&o->name)};
    flotilla_types_types_owner_ref_free(o);
    return out;
}

/* The batch as SDK views; the index and quantity arrays point into `b`, which the glue
 * frees after the call. */
static inline fl_batch fl_in_batch(const flotilla_types_types_cluster_batch_t *b) {
    fl_batch out;
    memset(&out, 0, sizeof out);
    out.count = b->count;
    out.names = fl_alloc((b->count ? b->count : 1) * sizeof *out.names);
    const char *p = (const char *)b->names.ptr, *end = p + b->names.len;
    for (size_t i = 0; i < b->count; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        out.names[i] = fl_strndup(p, (size_t)(stop - p));
        p = nl ? nl + 1 : end;
    }
    const flotilla_types_types_list_string_column_t *lists[2] = {&b->labels, &b->claims};
    for (int k = 0; k < 2; k++) {
        size_t n = lists[k]->len;
        fl_column *cols = fl_alloc((n ? n : 1) * sizeof *cols);
        for (size_t i = 0; i < n; i++) {
            const flotilla_types_types_string_column_t *c = &lists[k]->ptr[i];
            cols[i].key = fl_in(&c->key);
            cols[i].values_len = c->values.len;
            cols[i].values = fl_alloc((c->values.len ? c->values.len : 1) * sizeof *cols[i].values);
            for (size_t j = 0; j < c->values.len; j++) cols[i].values[j] = fl_in(&c->values.ptr[j]);
            /* a short index (a malformed batch) reads as absent */
            if (c->index.len >= b->count) cols[i].index = c->index.ptr;
            else cols[i].index = fl_alloc((b->count ? b->count : 1) * sizeof(uint32_t));
        }
        if (k == 0) { out.labels = cols; out.labels_len = n; }
        else { out.claims = cols; out.claims_len = n; }
    }
    fl_resource_column *res = fl_alloc((b->resources.len ? b->resources.len : 1) * sizeof *res);
    for (size_t i = 0; i < b->resources.len; i++) {
        const flotilla_types_types_resource_column_t *r = &b->resources.ptr[i];
        res[i].name = fl_in(&r->name);
        res[i].capacity_milli = r->capacity_milli.ptr;
        res[i].allocatable_milli = r->allocatable_milli.ptr;
        if (r->capacity_milli.len < b->count || r->allocatable_milli.len < b->count) {
            int64_t *none = fl_alloc((b->count ? b->count : 1) * sizeof *none);
            for (size_t j = 0; j < b->count; j++) none[j] = -1;
            if (r->capacity_milli.len < b->count) res[i].capacity_milli = none;
            if (r->allocatable_milli.len < b->count) res[i].allocatable_milli = none;
        }
    }
    out.resources = res;
    out.resources_len = b->resources.len;
    if (b->fields.len >= b->count && b->fields.len) {
        out.fields = fl_alloc(b->count * sizeof *out.fields);
        for (size_t i = 0; i < b->count; i++) out.fields[i] = fl_in(&b->fields.ptr[i]);
    }
    return out;
}

static inline fl_pair *fl_in_pairs(const bindings_list_tuple2_string_string_t *l) {
    fl_pair *out = fl_alloc((l->len ? l->len : 1) * sizeof *out);
    for (size_t i = 0; i < l->len; i++) out[i] = (fl_pair){fl_in(&l->ptr[i].f0), fl_in(&l->ptr[i].f1)};
    return out;
}

/* A cluster record as an SDK view (arena copies; the record can be freed after). */
static inline fl_cluster fl_in_cluster(const flotilla_types_types_cluster_t *c) {
    fl_cluster out;
    memset(&out, 0, sizeof out);
    out.name = fl_in(&c->name);
    out.labels = fl_in_pairs(&c->labels);
    out.labels_len = c->labels.len;
    out.claims = fl_in_pairs(&c->claims);
    out.claims_len = c->claims.len;
    fl_resource *res = fl_alloc((c->resources.len ? c->resources.len : 1) * sizeof *res);
    for (size_t i = 0; i < c->resources.len; i++) {
        const flotilla_types_types_resource_quantity_t *q = &c->resources.ptr[i];
        res[i].name = fl_in(&q->name);
        res[i].capacity_milli = q->capacity_milli.is_some ? q->capacity_milli.val : -1;
        res[i].allocatable_milli = q->allocatable_milli.is_some ? q->allocatable_milli.val : -1;
    }
    out.resources = res;
    out.resources_len = c->resources.len;
    out.fields = c->fields.is_some ? fl_in(&c->fields.val) : NULL;
    return out;
}

#endif
