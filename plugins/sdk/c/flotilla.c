/* Flotilla plugin SDK for C: arena, logging, JSON, configuration and cluster helpers.
 * World-independent; the per-world glue (flotilla_<world>.c) binds it to the host. */
#include "flotilla_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------- */
/* Arena. */

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} chunk;

static chunk *arena;

void fl_arena_reset(void) {
    while (arena) {
        chunk *next = arena->next;
        free(arena);
        arena = next;
    }
}

void *fl_alloc(size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (!arena || arena->size - arena->used < size) {
        size_t want = size > 65536 - sizeof(chunk) ? size : 65536 - sizeof(chunk);
        chunk *c = malloc(sizeof(chunk) + want);
        if (!c) __builtin_trap();
        c->next = arena;
        c->used = 0;
        c->size = want;
        arena = c;
    }
    void *p = arena->data + arena->used;
    arena->used += size;
    memset(p, 0, size);
    return p;
}

static void *fl_grow(void *old, size_t old_size, size_t new_size) {
    void *p = fl_alloc(new_size);
    if (old && old_size) memcpy(p, old, old_size);
    return p;
}

char *fl_strndup(const char *s, size_t len) {
    char *p = fl_alloc(len + 1);
    if (len) memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *fl_strdup(const char *s) { return s ? fl_strndup(s, strlen(s)) : NULL; }

char *fl_vsprintf(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return fl_strdup("");
    char *p = fl_alloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *fl_sprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *p = fl_vsprintf(fmt, ap);
    va_end(ap);
    return p;
}

void fl_strs_push(fl_strs *l, const char *s) {
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        l->items = fl_grow(l->items, l->len * sizeof *l->items, cap * sizeof *l->items);
        l->cap = cap;
    }
    l->items[l->len++] = s;
}

bool fl_strs_contains(const fl_strs *l, const char *s) {
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i], s) == 0) return true;
    return false;
}

char *fl_strs_join(const fl_strs *l, const char *sep) {
    size_t n = 1, seplen = strlen(sep);
    for (size_t i = 0; i < l->len; i++) n += strlen(l->items[i]) + seplen;
    char *out = fl_alloc(n), *p = out;
    for (size_t i = 0; i < l->len; i++) {
        if (i) { memcpy(p, sep, seplen); p += seplen; }
        size_t k = strlen(l->items[i]);
        memcpy(p, l->items[i], k);
        p += k;
    }
    *p = 0;
    return out;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

void fl_strs_sort(fl_strs *l) {
    if (l->len > 1) qsort(l->items, l->len, sizeof *l->items, cmp_str);
}

/* ---------------------------------------------------------------------------------- */
/* Logging. */

void fl_log(fl_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = fl_vsprintf(fmt, ap);
    va_end(ap);
    fl_host_log(level, msg, strlen(msg));
}

/* ---------------------------------------------------------------------------------- */
/* JSON. */

static fl_json *jnew(fl_json_type t) {
    fl_json *v = fl_alloc(sizeof *v);
    v->type = t;
    return v;
}

typedef struct {
    const char *s, *end;
    const char *error;
    int depth;
} jparser;

static void jws(jparser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t')) p->s++;
}

static fl_json *jvalue(jparser *p);

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool jhex4(jparser *p, unsigned *out) {
    if (p->end - p->s < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[i]);
        if (h < 0) return false;
        v = v * 16 + (unsigned)h;
    }
    p->s += 4;
    *out = v;
    return true;
}

static char *pututf8(char *o, unsigned cp) {
    if (cp < 0x80) *o++ = (char)cp;
    else if (cp < 0x800) { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { *o++ = (char)(0xE0 | (cp >> 12)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F)); }
    else { *o++ = (char)(0xF0 | (cp >> 18)); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F)); }
    return o;
}

static const char *jstring(jparser *p, size_t *len_out) {
    p->s++; /* opening quote */
    const char *start = p->s;
    size_t n = 0;
    bool escapes = false;
    while (p->s < p->end && *p->s != '"') {
        if ((unsigned char)*p->s < 0x20) { p->error = "control character in string"; return NULL; }
        if (*p->s == '\\') { escapes = true; p->s++; }
        p->s++;
        n++;
    }
    if (p->s >= p->end) { p->error = "unterminated string"; return NULL; }
    const char *close = p->s;
    p->s++;
    if (!escapes) {
        *len_out = (size_t)(close - start);
        return fl_strndup(start, (size_t)(close - start));
    }
    char *out = fl_alloc((size_t)(close - start) + 1), *o = out;
    jparser q = {start, close, NULL, 0};
    while (q.s < close) {
        char c = *q.s++;
        if (c != '\\') { *o++ = c; continue; }
        char e = *q.s++;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!jhex4(&q, &cp)) { p->error = "invalid \\u escape"; return NULL; }
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (q.end - q.s >= 6 && q.s[0] == '\\' && q.s[1] == 'u') {
                    q.s += 2;
                    if (!jhex4(&q, &lo) || lo < 0xDC00 || lo > 0xDFFF) { p->error = "invalid surrogate pair"; return NULL; }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else { p->error = "invalid surrogate pair"; return NULL; }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) { p->error = "invalid surrogate pair"; return NULL; }
            o = pututf8(o, cp);
            break;
        }
        default: p->error = "invalid escape"; return NULL;
        }
    }
    *o = 0;
    *len_out = (size_t)(o - out);
    (void)n;
    return out;
}

static fl_json *jnumber(jparser *p) {
    const char *start = p->s;
    if (p->s < p->end && *p->s == '-') p->s++;
    if (p->s >= p->end || !(*p->s >= '0' && *p->s <= '9')) { p->error = "invalid number"; return NULL; }
    if (*p->s == '0') p->s++;
    else while (p->s < p->end && *p->s >= '0' && *p->s <= '9') p->s++;
    if (p->s < p->end && *p->s == '.') {
        p->s++;
        if (p->s >= p->end || !(*p->s >= '0' && *p->s <= '9')) { p->error = "invalid number"; return NULL; }
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') p->s++;
    }
    if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
        p->s++;
        if (p->s < p->end && (*p->s == '+' || *p->s == '-')) p->s++;
        if (p->s >= p->end || !(*p->s >= '0' && *p->s <= '9')) { p->error = "invalid number"; return NULL; }
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') p->s++;
    }
    fl_json *v = jnew(FL_JSON_NUMBER);
    v->number = fl_strndup(start, (size_t)(p->s - start));
    return v;
}

static bool jword(jparser *p, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(p->end - p->s) >= n && memcmp(p->s, w, n) == 0) { p->s += n; return true; }
    return false;
}

static fl_json *jvalue(jparser *p) {
    jws(p);
    if (p->s >= p->end) { p->error = "unexpected end of input"; return NULL; }
    if (++p->depth > 512) { p->error = "nested too deeply"; return NULL; }
    fl_json *v = NULL;
    char c = *p->s;
    if (c == '{') {
        p->s++;
        v = fl_json_new_object();
        jws(p);
        if (p->s < p->end && *p->s == '}') { p->s++; goto done; }
        for (;;) {
            jws(p);
            if (p->s >= p->end || *p->s != '"') { p->error = "expected a key"; return NULL; }
            size_t klen;
            const char *key = jstring(p, &klen);
            if (!key) return NULL;
            jws(p);
            if (p->s >= p->end || *p->s != ':') { p->error = "expected ':'"; return NULL; }
            p->s++;
            fl_json *item = jvalue(p);
            if (!item) return NULL;
            fl_json_set(v, key, item);
            jws(p);
            if (p->s < p->end && *p->s == ',') { p->s++; continue; }
            if (p->s < p->end && *p->s == '}') { p->s++; break; }
            p->error = "expected ',' or '}'";
            return NULL;
        }
    } else if (c == '[') {
        p->s++;
        v = fl_json_new_array();
        jws(p);
        if (p->s < p->end && *p->s == ']') { p->s++; goto done; }
        for (;;) {
            fl_json *item = jvalue(p);
            if (!item) return NULL;
            fl_json_push(v, item);
            jws(p);
            if (p->s < p->end && *p->s == ',') { p->s++; continue; }
            if (p->s < p->end && *p->s == ']') { p->s++; break; }
            p->error = "expected ',' or ']'";
            return NULL;
        }
    } else if (c == '"') {
        size_t len;
        const char *s = jstring(p, &len);
        if (!s) return NULL;
        v = jnew(FL_JSON_STRING);
        v->string = s;
        v->len = len;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        v = jnumber(p);
    } else if (jword(p, "true")) {
        v = fl_json_bool(true);
    } else if (jword(p, "false")) {
        v = fl_json_bool(false);
    } else if (jword(p, "null")) {
        v = fl_json_null();
    } else {
        p->error = "unexpected character";
    }
done:
    p->depth--;
    return v;
}

fl_json *fl_json_parse(const char *text, size_t len, const char **error) {
    jparser p = {text, text + len, NULL, 0};
    fl_json *v = jvalue(&p);
    if (v) {
        jws(&p);
        if (p.s != p.end) { v = NULL; p.error = "trailing characters"; }
    }
    if (!v && error) *error = fl_sprintf("%s at byte %zu", p.error ? p.error : "invalid JSON", (size_t)(p.s - text));
    return v;
}

typedef struct {
    char *buf;
    size_t len, cap;
} jbuf;

static void jput(jbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->buf = fl_grow(b->buf, b->len, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void jputs(jbuf *b, const char *s) { jput(b, s, strlen(s)); }

static void jwrite_string(jbuf *b, const char *s, size_t n) {
    jput(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        jput(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': jputs(b, "\\\""); break;
        case '\\': jputs(b, "\\\\"); break;
        case '\n': jputs(b, "\\n"); break;
        case '\r': jputs(b, "\\r"); break;
        case '\t': jputs(b, "\\t"); break;
        case '\b': jputs(b, "\\b"); break;
        case '\f': jputs(b, "\\f"); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); jputs(b, esc);
        }
    }
    jput(b, s + run, n - run);
    jput(b, "\"", 1);
}

static void jwrite(jbuf *b, const fl_json *v) {
    if (!v) { jputs(b, "null"); return; }
    switch (v->type) {
    case FL_JSON_NULL: jputs(b, "null"); break;
    case FL_JSON_BOOL: jputs(b, v->boolean ? "true" : "false"); break;
    case FL_JSON_NUMBER: jputs(b, v->number); break;
    case FL_JSON_STRING: jwrite_string(b, v->string, v->len); break;
    case FL_JSON_ARRAY:
        jput(b, "[", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i) jput(b, ",", 1);
            jwrite(b, v->items[i]);
        }
        jput(b, "]", 1);
        break;
    case FL_JSON_OBJECT:
        jput(b, "{", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i) jput(b, ",", 1);
            jwrite_string(b, v->keys[i], strlen(v->keys[i]));
            jput(b, ":", 1);
            jwrite(b, v->items[i]);
        }
        jput(b, "}", 1);
        break;
    }
}

char *fl_json_write(const fl_json *v) {
    jbuf b = {0};
    jwrite(&b, v);
    return b.buf ? b.buf : fl_strdup("null");
}

fl_json *fl_json_copy(const fl_json *v) {
    if (!v) return NULL;
    fl_json *c = jnew(v->type);
    *c = *v;
    if (v->type == FL_JSON_ARRAY || v->type == FL_JSON_OBJECT) {
        c->items = fl_alloc((v->len ? v->len : 1) * sizeof *c->items);
        c->cap = v->len;
        for (size_t i = 0; i < v->len; i++) c->items[i] = fl_json_copy(v->items[i]);
        if (v->type == FL_JSON_OBJECT) {
            c->keys = fl_alloc((v->len ? v->len : 1) * sizeof *c->keys);
            memcpy(c->keys, v->keys, v->len * sizeof *c->keys); /* keys are immutable */
        }
    }
    return c;
}

fl_json *fl_json_get(const fl_json *o, const char *key) {
    if (!o || o->type != FL_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < o->len; i++)
        if (strcmp(o->keys[i], key) == 0) return o->items[i];
    return NULL;
}

fl_json *fl_json_path(const fl_json *v, ...) {
    va_list ap;
    va_start(ap, v);
    const char *key;
    while (v && (key = va_arg(ap, const char *)) != NULL) v = fl_json_get(v, key);
    va_end(ap);
    return (fl_json *)v;
}

fl_json *fl_json_at(const fl_json *a, size_t i) {
    if (!a || a->type != FL_JSON_ARRAY || i >= a->len) return NULL;
    return a->items[i];
}

size_t fl_json_len(const fl_json *v) {
    return v && (v->type == FL_JSON_ARRAY || v->type == FL_JSON_OBJECT) ? v->len : 0;
}

bool fl_json_is(const fl_json *v, fl_json_type t) { return v && v->type == t; }

const char *fl_json_str(const fl_json *v) { return v && v->type == FL_JSON_STRING ? v->string : NULL; }

bool fl_json_int(const fl_json *v, int64_t *out) {
    if (!v || v->type != FL_JSON_NUMBER) return false;
    const char *s = v->number;
    bool neg = *s == '-';
    if (neg) s++;
    uint64_t n = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false; /* fraction or exponent */
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10) return false;
        n = n * 10 + d;
    }
    if (neg ? n > (uint64_t)INT64_MAX + 1 : n > (uint64_t)INT64_MAX) return false;
    *out = neg ? (int64_t)(0 - n) : (int64_t)n;
    return true;
}

fl_json *fl_json_null(void) { return jnew(FL_JSON_NULL); }

fl_json *fl_json_bool(bool b) {
    fl_json *v = jnew(FL_JSON_BOOL);
    v->boolean = b;
    return v;
}

fl_json *fl_json_new_int(int64_t n) {
    fl_json *v = jnew(FL_JSON_NUMBER);
    v->number = fl_sprintf("%lld", (long long)n);
    return v;
}

fl_json *fl_json_new_string(const char *s) {
    fl_json *v = jnew(FL_JSON_STRING);
    v->string = fl_strdup(s);
    v->len = strlen(s);
    return v;
}

fl_json *fl_json_new_array(void) { return jnew(FL_JSON_ARRAY); }
fl_json *fl_json_new_object(void) { return jnew(FL_JSON_OBJECT); }

static void jreserve(fl_json *v) {
    if (v->len < v->cap) return;
    size_t cap = v->cap ? v->cap * 2 : 4;
    v->items = fl_grow(v->items, v->len * sizeof *v->items, cap * sizeof *v->items);
    if (v->type == FL_JSON_OBJECT) v->keys = fl_grow(v->keys, v->len * sizeof *v->keys, cap * sizeof *v->keys);
    v->cap = cap;
}

void fl_json_push(fl_json *a, fl_json *item) {
    if (!a || a->type != FL_JSON_ARRAY) return;
    jreserve(a);
    a->items[a->len++] = item;
}

void fl_json_set(fl_json *o, const char *key, fl_json *value) {
    if (!o || o->type != FL_JSON_OBJECT) return;
    for (size_t i = 0; i < o->len; i++)
        if (strcmp(o->keys[i], key) == 0) { o->items[i] = value; return; }
    jreserve(o);
    o->keys[o->len] = fl_strdup(key);
    o->items[o->len++] = value;
}

fl_json *fl_json_object_member(fl_json *o, const char *key) {
    if (!o || o->type != FL_JSON_OBJECT) return NULL;
    fl_json *m = fl_json_get(o, key);
    if (!m) {
        m = fl_json_new_object();
        fl_json_set(o, key, m);
    }
    return m->type == FL_JSON_OBJECT ? m : NULL;
}

/* ---------------------------------------------------------------------------------- */
/* Configuration. */

struct fl_config {
    fl_json *doc;
    bool *used;
    const char *error;
};

fl_config *fl_config_parse(const char *text) {
    fl_config *c = fl_alloc(sizeof *c);
    const char *err = NULL;
    c->doc = fl_json_parse(text, strlen(text), &err);
    if (!c->doc) c->error = fl_sprintf("invalid configuration: not JSON: %s", err);
    else if (c->doc->type != FL_JSON_OBJECT) {
        c->error = "invalid configuration: the configuration must be a JSON object";
        c->doc = NULL;
    } else c->used = fl_alloc((c->doc->len ? c->doc->len : 1) * sizeof *c->used);
    return c;
}

static fl_json *cfield(fl_config *c, const char *field) {
    if (c->error || !c->doc) return NULL;
    for (size_t i = 0; i < c->doc->len; i++)
        if (strcmp(c->doc->keys[i], field) == 0) {
            c->used[i] = true;
            /* null counts as absent, as an optional field's default */
            return c->doc->items[i]->type == FL_JSON_NULL ? NULL : c->doc->items[i];
        }
    return NULL;
}

static const char *kindname(const fl_json *v) {
    switch (v->type) {
    case FL_JSON_NULL: return "null";
    case FL_JSON_BOOL: return "a boolean";
    case FL_JSON_NUMBER: return "a number";
    case FL_JSON_STRING: return "a string";
    case FL_JSON_ARRAY: return "a list";
    default: return "an object";
    }
}

void fl_config_fail(fl_config *c, const char *fmt, ...) {
    if (c->error) return;
    va_list ap;
    va_start(ap, fmt);
    c->error = fl_vsprintf(fmt, ap);
    va_end(ap);
}

static void missing(fl_config *c, const char *field) {
    fl_config_fail(c, "invalid configuration: missing field `%s`", field);
}

bool fl_config_has(fl_config *c, const char *field) { return cfield(c, field) != NULL; }

const char *fl_config_string(fl_config *c, const char *field, const char *fallback) {
    fl_json *v = cfield(c, field);
    if (!v) {
        if (!fallback && !c->error) missing(c, field);
        return fallback;
    }
    if (v->type != FL_JSON_STRING) {
        fl_config_fail(c, "invalid configuration: %s must be a string, not %s", field, kindname(v));
        return fallback;
    }
    return v->string;
}

const char *fl_config_optional_string(fl_config *c, const char *field) {
    fl_json *v = cfield(c, field);
    if (!v) return NULL;
    if (v->type != FL_JSON_STRING) {
        fl_config_fail(c, "invalid configuration: %s must be a string, not %s", field, kindname(v));
        return NULL;
    }
    return v->string;
}

static bool as_int(fl_config *c, const fl_json *v, const char *what, int64_t *out) {
    if (!fl_json_int(v, out)) {
        fl_config_fail(c, "invalid configuration: %s must be a 64-bit integer, not %s", what, v->type == FL_JSON_NUMBER ? v->number : kindname(v));
        return false;
    }
    return true;
}

int64_t fl_config_int(fl_config *c, const char *field, int64_t fallback, bool required) {
    fl_json *v = cfield(c, field);
    if (!v) {
        if (required && !c->error) missing(c, field);
        return fallback;
    }
    int64_t n;
    return as_int(c, v, field, &n) ? n : fallback;
}

bool fl_config_bool(fl_config *c, const char *field, bool fallback) {
    fl_json *v = cfield(c, field);
    if (!v) return fallback;
    if (v->type != FL_JSON_BOOL) {
        fl_config_fail(c, "invalid configuration: %s must be true or false, not %s", field, kindname(v));
        return fallback;
    }
    return v->boolean;
}

fl_strs fl_config_strings(fl_config *c, const char *field, bool required) {
    fl_strs out = {0};
    fl_json *v = cfield(c, field);
    if (!v) {
        if (required && !c->error) missing(c, field);
        return out;
    }
    if (v->type != FL_JSON_ARRAY) {
        fl_config_fail(c, "invalid configuration: %s must be a list, not %s", field, kindname(v));
        return out;
    }
    for (size_t i = 0; i < v->len; i++) {
        if (v->items[i]->type != FL_JSON_STRING) {
            fl_config_fail(c, "invalid configuration: %s[%zu] must be a string, not %s", field, i, kindname(v->items[i]));
            return (fl_strs){0};
        }
        fl_strs_push(&out, v->items[i]->string);
    }
    return out;
}

int64_t *fl_config_ints(fl_config *c, const char *field, size_t *n, const int64_t *fallback, size_t fallback_n) {
    fl_json *v = cfield(c, field);
    if (!v) {
        *n = fallback_n;
        return (int64_t *)fallback;
    }
    if (v->type != FL_JSON_ARRAY) {
        fl_config_fail(c, "invalid configuration: %s must be a list, not %s", field, kindname(v));
        *n = fallback_n;
        return (int64_t *)fallback;
    }
    int64_t *out = fl_alloc((v->len ? v->len : 1) * sizeof *out);
    for (size_t i = 0; i < v->len; i++) {
        if (!as_int(c, v->items[i], fl_sprintf("%s[%zu]", field, i), &out[i])) {
            *n = fallback_n;
            return (int64_t *)fallback;
        }
    }
    *n = v->len;
    return out;
}

fl_json *fl_config_json(fl_config *c, const char *field) { return cfield(c, field); }

const char *fl_config_finish(fl_config *c) {
    if (c->error) return c->error;
    for (size_t i = 0; i < c->doc->len; i++)
        if (!c->used[i]) return fl_sprintf("invalid configuration: unknown field `%s`", c->doc->keys[i]);
    return NULL;
}

/* ---------------------------------------------------------------------------------- */
/* Reads, clusters. */

void fl_reads_kind(fl_reads *r, const char *api_version, const char *kind) {
    if (r->kinds_len == r->kinds_cap) {
        size_t cap = r->kinds_cap ? r->kinds_cap * 2 : 4;
        r->kinds = fl_grow(r->kinds, r->kinds_len * sizeof *r->kinds, cap * sizeof *r->kinds);
        r->kinds_cap = cap;
    }
    r->kinds[r->kinds_len++] = (fl_kind){api_version, kind};
}

static const char *pair_get(const fl_pair *p, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].key, key) == 0) return p[i].value;
    return NULL;
}

const char *fl_cluster_label(const fl_cluster *c, const char *key) { return pair_get(c->labels, c->labels_len, key); }
const char *fl_cluster_claim(const fl_cluster *c, const char *name) { return pair_get(c->claims, c->claims_len, name); }

static const fl_resource *cres(const fl_cluster *c, const char *name) {
    for (size_t i = 0; i < c->resources_len; i++)
        if (strcmp(c->resources[i].name, name) == 0) return &c->resources[i];
    return NULL;
}

bool fl_cluster_allocatable(const fl_cluster *c, const char *resource, int64_t *out) {
    const fl_resource *r = cres(c, resource);
    if (!r || r->allocatable_milli < 0) return false;
    *out = r->allocatable_milli;
    return true;
}

bool fl_cluster_capacity(const fl_cluster *c, const char *resource, int64_t *out) {
    const fl_resource *r = cres(c, resource);
    if (!r || r->capacity_milli < 0) return false;
    *out = r->capacity_milli;
    return true;
}

static const fl_column *column(const fl_column *cols, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i].key, key) == 0) return &cols[i];
    return NULL;
}

const fl_column *fl_batch_label_column(const fl_batch *b, const char *key) { return column(b->labels, b->labels_len, key); }
const fl_column *fl_batch_claim_column(const fl_batch *b, const char *name) { return column(b->claims, b->claims_len, name); }

const char *fl_column_get(const fl_column *col, size_t i) {
    if (!col) return NULL;
    uint32_t x = col->index[i];
    return x == 0 || x > col->values_len ? NULL : col->values[x - 1];
}

const char *fl_batch_label(const fl_batch *b, size_t i, const char *key) { return fl_column_get(fl_batch_label_column(b, key), i); }
const char *fl_batch_claim(const fl_batch *b, size_t i, const char *name) { return fl_column_get(fl_batch_claim_column(b, name), i); }

const fl_resource_column *fl_batch_resource(const fl_batch *b, const char *name) {
    for (size_t i = 0; i < b->resources_len; i++)
        if (strcmp(b->resources[i].name, name) == 0) return &b->resources[i];
    return NULL;
}

bool fl_batch_allocatable(const fl_batch *b, size_t i, const char *resource, int64_t *out) {
    const fl_resource_column *r = fl_batch_resource(b, resource);
    if (!r || r->allocatable_milli[i] < 0) return false;
    *out = r->allocatable_milli[i];
    return true;
}

bool fl_batch_capacity(const fl_batch *b, size_t i, const char *resource, int64_t *out) {
    const fl_resource_column *r = fl_batch_resource(b, resource);
    if (!r || r->capacity_milli[i] < 0) return false;
    *out = r->capacity_milli[i];
    return true;
}

/* ---------------------------------------------------------------------------------- */
/* Results. */

void fl_filter_remove(fl_filter_result *r, size_t cluster, const char *reason) {
    if (cluster >= r->count) return;
    for (size_t i = 0; i < r->reasons.len; i++)
        if (strcmp(r->reasons.items[i], reason) == 0) { r->verdicts[cluster] = (uint32_t)i + 1; return; }
    fl_strs_push(&r->reasons, fl_strdup(reason));
    r->verdicts[cluster] = (uint32_t)r->reasons.len;
}

void fl_filter_requeue_after(fl_filter_result *r, uint64_t ms) {
    r->requeue = true;
    r->requeue_after_ms = ms;
}

void fl_check_set(fl_check_result *r, fl_compliance compliance, const char *message) {
    r->compliance = compliance;
    r->message = fl_strdup(message);
}

void fl_check_violation(fl_check_result *r, const fl_object_ref *object, const char *message, const fl_json *remediation) {
    if (r->violations_len == r->violations_cap) {
        size_t cap = r->violations_cap ? r->violations_cap * 2 : 4;
        r->violations = fl_grow(r->violations, r->violations_len * sizeof *r->violations, cap * sizeof *r->violations);
        r->violations_cap = cap;
    }
    fl_violation *v = &r->violations[r->violations_len++];
    if (object) {
        v->has_object = true;
        v->object = *object;
    }
    v->message = fl_strdup(message);
    v->remediation = remediation ? fl_json_write(remediation) : NULL;
}
