/* The SDK's result types, shared by flotilla.c and the world glue; plugins use only the
 * functions declared in flotilla.h. */
#ifndef FLOTILLA_INTERNAL_H
#define FLOTILLA_INTERNAL_H
#include "flotilla.h"

struct fl_filter_result {
    size_t count;
    uint32_t *verdicts;
    fl_strs reasons;
    bool requeue;
    uint64_t requeue_after_ms;
};

typedef struct {
    bool has_object;
    fl_object_ref object;
    const char *message;
    const char *remediation; /* JSON text or NULL */
} fl_violation;

struct fl_check_result {
    fl_compliance compliance;
    const char *message;
    fl_violation *violations;
    size_t violations_len, violations_cap;
};

#endif
