/*
 * Flotilla plugin SDK for C (clang + wasi-libc, wit-bindgen c, wasm-tools component new).
 *
 * A plugin implements a few plain functions for its world (see the FL_WORLD_* sections at
 * the end) and never touches the canonical-ABI bindings: the SDK's glue for the world
 * (flotilla_<world>.c) converts the host's arguments into the types below, calls the
 * plugin, copies its answer back and frees everything.
 *
 * Memory: everything the SDK hands out, and everything a plugin allocates with fl_alloc,
 * fl_strdup, fl_sprintf or the fl_json_* constructors, lives in an arena that the SDK frees
 * when the call returns. A plugin never calls free() on SDK values and never keeps pointers
 * to them across calls.
 *
 * Errors: functions that can fail return a `const char *` message (NULL on success); a
 * plugin's own message becomes the `err` the host reports.
 */
#ifndef FLOTILLA_H
#define FLOTILLA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------ */
/* Arena memory, freed after each call.                                                  */

void *fl_alloc(size_t size);                     /* zeroed; never NULL (traps when out of memory) */
char *fl_strdup(const char *s);
char *fl_strndup(const char *s, size_t len);
char *fl_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *fl_vsprintf(const char *fmt, va_list ap);

/* A growable list of strings (arena). */
typedef struct {
    const char **items;
    size_t len, cap;
} fl_strs;
void fl_strs_push(fl_strs *list, const char *s);
bool fl_strs_contains(const fl_strs *list, const char *s);
/* Joins with `sep`: "a, b". */
char *fl_strs_join(const fl_strs *list, const char *sep);
/* Sorts byte-wise (strcmp). */
void fl_strs_sort(fl_strs *list);

/* ------------------------------------------------------------------------------------ */
/* Logging: lines land in the hub's or agent's log, tagged with the plugin's name.       */

typedef enum { FL_TRACE, FL_DEBUG, FL_INFO, FL_WARN, FL_ERROR } fl_level;
void fl_log(fl_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------------------ */
/* JSON: parse, read, build, change and write documents (objects keep their key order;    */
/* numbers keep their text, so they are written back exactly).                          */

typedef enum { FL_JSON_NULL, FL_JSON_BOOL, FL_JSON_NUMBER, FL_JSON_STRING, FL_JSON_ARRAY, FL_JSON_OBJECT } fl_json_type;

typedef struct fl_json fl_json;
struct fl_json {
    fl_json_type type;
    bool boolean;
    const char *number;      /* the number's text */
    const char *string;      /* NUL-terminated (a JSON \u0000 ends it early) */
    size_t len;              /* string length, array items or object members */
    size_t cap;
    fl_json **items;         /* array items, or object values */
    const char **keys;       /* object keys */
};

/* Parses a document; NULL with *error set when it is not JSON. */
fl_json *fl_json_parse(const char *text, size_t len, const char **error);
/* Writes a document compactly. */
char *fl_json_write(const fl_json *value);
fl_json *fl_json_copy(const fl_json *value);

/* Reading: NULL-safe, so chains work: fl_json_path(d, "spec", "template", "spec", NULL). */
fl_json *fl_json_get(const fl_json *object, const char *key);      /* NULL when absent or not an object */
fl_json *fl_json_path(const fl_json *value, ...);                  /* keys, ending with NULL */
fl_json *fl_json_at(const fl_json *array, size_t i);               /* NULL when out of range */
size_t fl_json_len(const fl_json *array_or_object);                /* 0 for other types */
bool fl_json_is(const fl_json *value, fl_json_type type);
const char *fl_json_str(const fl_json *value);                     /* NULL unless a string */
/* An integer that fits int64_t (no fraction or exponent): true and *out; else false. */
bool fl_json_int(const fl_json *value, int64_t *out);

/* Building and changing. */
fl_json *fl_json_null(void);
fl_json *fl_json_bool(bool b);
fl_json *fl_json_new_int(int64_t n);
fl_json *fl_json_new_string(const char *s);
fl_json *fl_json_new_array(void);
fl_json *fl_json_new_object(void);
void fl_json_push(fl_json *array, fl_json *item);
/* Sets a member, replacing one with the same key in place (keeps its position). */
void fl_json_set(fl_json *object, const char *key, fl_json *value);
/* The member `key` of `object`, added as an empty object when absent; NULL when `object` is
 * not an object or the member is there but not an object. */
fl_json *fl_json_object_member(fl_json *object, const char *key);

/* ------------------------------------------------------------------------------------ */
/* Configuration: read fields with clear errors naming them; unknown fields are refused.  */
/*                                                                                      */
/*     fl_config *c = fl_config_parse(text);                                             */
/*     const char *key = fl_config_string(c, "key", NULL);       // required             */
/*     fl_strs values = fl_config_strings(c, "values");                                  */
/*     const char *err = fl_config_finish(c);                    // NULL when valid      */
/*                                                                                      */
/* After the first error every getter returns its default, and fl_config_finish returns   */
/* that error; fl_config_fail records a plugin's own check.                               */

typedef struct fl_config fl_config;
fl_config *fl_config_parse(const char *text);
bool fl_config_has(fl_config *c, const char *field);
/* A string; `fallback` when absent (NULL fallback: the field is required). */
const char *fl_config_string(fl_config *c, const char *field, const char *fallback);
/* A string or NULL when absent (optional without default). */
const char *fl_config_optional_string(fl_config *c, const char *field);
int64_t fl_config_int(fl_config *c, const char *field, int64_t fallback, bool required);
bool fl_config_bool(fl_config *c, const char *field, bool fallback);
/* A list of strings; empty when absent (required: an error when absent). */
fl_strs fl_config_strings(fl_config *c, const char *field, bool required);
/* A list of integers; `n` receives the count; `fallback` (count `fallback_n`) when absent. */
int64_t *fl_config_ints(fl_config *c, const char *field, size_t *n, const int64_t *fallback, size_t fallback_n);
/* Any JSON value (NULL when absent); the field counts as known. */
fl_json *fl_config_json(fl_config *c, const char *field);
/* Records a plugin's own error (the first error wins). */
void fl_config_fail(fl_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NULL when every field was valid and known, else the first error. */
const char *fl_config_finish(fl_config *c);

/* ------------------------------------------------------------------------------------ */
/* What a plugin reads; owner; clusters.                                                 */

typedef struct {
    const char *api_version;
    const char *kind;
} fl_kind;

typedef struct {
    fl_strs labels, claims, resources, fields;
    fl_kind *kinds;
    size_t kinds_len, kinds_cap;
} fl_reads;
void fl_reads_kind(fl_reads *reads, const char *api_version, const char *kind);

typedef struct {
    const char *kind, *namespace_, *name;
} fl_owner;

typedef struct {
    const char *key, *value;
} fl_pair;

typedef struct {
    const char *name;
    int64_t capacity_milli;     /* -1 when not reported */
    int64_t allocatable_milli;  /* -1 when not reported */
} fl_resource;

/* One cluster (policy checks, rollouts). */
typedef struct {
    const char *name;
    const fl_pair *labels;
    size_t labels_len;
    const fl_pair *claims;
    size_t claims_len;
    const fl_resource *resources;
    size_t resources_len;
    const char *fields;         /* JSON object, or NULL */
} fl_cluster;

const char *fl_cluster_label(const fl_cluster *c, const char *key);   /* NULL when absent */
const char *fl_cluster_claim(const fl_cluster *c, const char *name);  /* NULL when absent */
/* Allocatable / capacity milli-units: true and *out, or false when not reported. */
bool fl_cluster_allocatable(const fl_cluster *c, const char *resource, int64_t *out);
bool fl_cluster_capacity(const fl_cluster *c, const char *resource, int64_t *out);

/* A label or claim across a batch, dictionary-encoded. */
typedef struct {
    const char *key;
    const char **values;        /* distinct values */
    size_t values_len;
    const uint32_t *index;      /* per cluster: 0 absent, else 1 + index into values */
} fl_column;

typedef struct {
    const char *name;
    const int64_t *capacity_milli;     /* per cluster, -1 when not reported */
    const int64_t *allocatable_milli;
} fl_resource_column;

/* Many clusters, by column (filters, scorers, transforms). */
typedef struct {
    size_t count;
    const char **names;
    const fl_column *labels;
    size_t labels_len;
    const fl_column *claims;
    size_t claims_len;
    const fl_resource_column *resources;
    size_t resources_len;
    const char **fields;        /* per cluster JSON, or NULL when no fields were declared */
} fl_batch;

/* The label's / claim's column, or NULL when no cluster has it. */
const fl_column *fl_batch_label_column(const fl_batch *b, const char *key);
const fl_column *fl_batch_claim_column(const fl_batch *b, const char *name);
/* Cluster i's value in a column (NULL-safe column), or NULL. */
const char *fl_column_get(const fl_column *col, size_t i);
const char *fl_batch_label(const fl_batch *b, size_t i, const char *key);
const char *fl_batch_claim(const fl_batch *b, size_t i, const char *name);
const fl_resource_column *fl_batch_resource(const fl_batch *b, const char *name);
bool fl_batch_allocatable(const fl_batch *b, size_t i, const char *resource, int64_t *out);
bool fl_batch_capacity(const fl_batch *b, size_t i, const char *resource, int64_t *out);

/* ------------------------------------------------------------------------------------ */
/* describe(): every plugin defines this constant.                                       */

typedef struct {
    const char *name;
    const char *version;
    const char *summary;
    const char *config_schema;  /* JSON Schema text, or NULL */
} fl_plugin_info;
extern const fl_plugin_info FL_PLUGIN;

/* validate-config: every plugin implements this: check `config` and fill `reads`. */
const char *fl_validate_config(const char *config, fl_reads *reads);

/* ------------------------------------------------------------------------------------ */
/* placement-filter: remove clusters with fl_filter_remove (verdict per cluster).        */

typedef struct fl_filter_result fl_filter_result;
void fl_filter_remove(fl_filter_result *r, size_t cluster, const char *reason);
void fl_filter_requeue_after(fl_filter_result *r, uint64_t ms);
const char *fl_filter(const char *config, const fl_owner *owner, const fl_batch *clusters, fl_filter_result *result);

/* placement-scorer: write scores[i] (all 0 on entry), each within [-100, 100]. */
typedef struct {
    int32_t *scores;
    bool requeue;
    uint64_t requeue_after_ms;
} fl_score_result;
const char *fl_score(const char *config, const fl_owner *owner, const fl_batch *clusters, fl_score_result *result);

/* policy-check. */
typedef enum { FL_COMPLIANT, FL_NON_COMPLIANT, FL_PENDING } fl_compliance;
typedef struct {
    const char *api_version, *kind;
    const char *namespace_;     /* NULL for cluster-scoped */
    const char *name;
} fl_object_ref;
typedef struct fl_check_result fl_check_result;
void fl_check_set(fl_check_result *r, fl_compliance compliance, const char *message);
/* Adds a violation; object and remediation (a JSON merge patch) may be NULL. */
void fl_check_violation(fl_check_result *r, const fl_object_ref *object, const char *message, const fl_json *remediation);
const char *fl_check(const char *config, const fl_owner *owner, const fl_cluster *cluster, fl_check_result *result);
/* Spoke reads (policy-check only): a JSON array of objects; one object or NULL. */
const char *fl_spoke_list(const char *api_version, const char *kind, const char *namespace_, const char *label_selector, fl_json **items);
const char *fl_spoke_get(const char *api_version, const char *kind, const char *namespace_, const char *name, fl_json **object);

/* rollout-strategy. */
typedef enum { FL_TO_APPLY, FL_PROGRESSING, FL_SUCCEEDED, FL_FAILED, FL_TIME_OUT, FL_SKIP } fl_rollout_status;
typedef struct {
    fl_cluster cluster;
    uint32_t group_index;
    const char *group_name;
    fl_rollout_status status;
    bool has_last_transition_time;
    int64_t last_transition_time;   /* ms since the epoch */
} fl_rollout_cluster;
typedef struct {
    fl_strs proceed, timed_out, failed;
    bool stop;
    bool recheck;
    uint64_t recheck_after_ms;
    const char *message;            /* or NULL */
} fl_rollout_decision;
const char *fl_decide(const char *config, const fl_owner *owner, int64_t now, const fl_rollout_cluster *clusters, size_t count, fl_rollout_decision *decision);

/* manifest-transform: called once per cluster, in order, with its own copy of the
 * manifests (a JSON array) to change in place. Set *cluster_error to refuse this cluster
 * only; return an error to fail the whole call. `config` is parsed once per call by
 * fl_transform_config (return an error or NULL, and anything in *state). */
const char *fl_transform_config(const char *config, void **state);
const char *fl_transform_cluster(void *state, fl_json *manifests, const fl_batch *clusters, size_t cluster, const char **cluster_error);

/* ------------------------------------------------------------------------------------ */
/* Internal: used by the world glue.                                                     */
void fl_arena_reset(void);
void fl_host_log(fl_level level, const char *message, size_t len); /* defined by the glue */

#ifdef __cplusplus
}
#endif
#endif
