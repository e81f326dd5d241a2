/*
 * safetensors.c — checkpoints in the safetensors format (api/ember_io.h):
 * em_save_safetensors, em_load_safetensors, em_load_safetensors_from_memory.
 *
 * Layout of this file:
 *   1. dtypes: the safetensors names and their Ember equivalents
 *   2. a small strict JSON reader (RFC 8259) over a byte range: it never
 *      reads outside [begin, end), limits nesting, decodes string escapes
 *      (\uXXXX with surrogate pairs) and reads integers with overflow checks.
 *      The header is parsed straight into tensor entries: no JSON tree.
 *   3. the header: parsing, then validation of every tensor against the
 *      data area (sizes, bounds, overlaps, holes, trailing bytes)
 *   4. loading: from memory or from a file descriptor (pread, one tensor at
 *      a time); tensors are made with em_tensor_from_data inside a private
 *      scope so the dictionary ends up holding the only reference
 *   5. saving: the header as compact JSON, the data ordered by element size,
 *      written to a temporary file that is synced and renamed over the target
 *
 * Only the public API plus em__fail from internal.h. Every failure records
 * one message naming the function, the file, the tensor and the numbers.
 */
#include "internal.h"

#include "ember_io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define ST_MAX_DEPTH 64 /* JSON nesting limit */

/* ------------------------------------------------------------------------ */
/* 1. dtypes                                                                 */
/* ------------------------------------------------------------------------ */

/* Every dtype of the safetensors specification; ember < 0: no equivalent. */
static const struct {
    const char *name;
    int ember;
} st_dtypes[] = {
    {"F32", EM_F32},   {"F64", EM_F64},         {"F16", EM_F16},         {"BF16", EM_BF16},
    {"I32", EM_I32},   {"I64", EM_I64},         {"BOOL", EM_BOOL},       {"U8", -1},
    {"I8", -1},        {"I16", -1},             {"U16", -1},             {"U32", -1},
    {"U64", -1},       {"F8_E4M3", -1},         {"F8_E5M2", -1},         {"F8_E8M0", -1},
    {"F4", -1},        {"F6_E2M3", -1},         {"F6_E3M2", -1},         {"C64", -1},
};

static const char *st_dtype_name(em_dtype dtype)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].ember == (int)dtype) return st_dtypes[i].name;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* Context of one call: the prefix of its messages ("em_load_safetensors:
 * 'model.safetensors'"). */
typedef struct st_ctx {
    char who[400];
} st_ctx;

static void ctx_init(st_ctx *c, const char *fn, const char *path)
{
    if (path) snprintf(c->who, sizeof c->who, "%s: '%s'", fn, path);
    else snprintf(c->who, sizeof c->who, "%s", fn);
}

#define ST_FAIL(ctx, status, fmt, ...) em__fail((status), "%s: " fmt, (ctx)->who, __VA_ARGS__)

static void errno_str(int e, char *buf, size_t cap)
{
    if (strerror_r(e, buf, cap) != 0) snprintf(buf, cap, "errno %d", e);
}

/* "[2, 3]" (at most EM_MAX_DIMS entries). */
static const char *shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes available), or 0
 * when it is invalid: overlong forms, surrogates and code points above
 * U+10FFFF are refused, as Rust's str::from_utf8 does. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* Offset of the first invalid UTF-8 byte in [p, p+n), or n when valid. */
static size_t utf8_check(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq(p + i, n - i);
        if (!l) return i;
        i += l;
    }
    return n;
}

static uint64_t rd_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ------------------------------------------------------------------------ */
/* 2. JSON reader                                                            */
/* ------------------------------------------------------------------------ */

typedef struct jreader {
    const st_ctx *ctx;
    const unsigned char *base, *p, *end;
    size_t base_offset; /* file offset of base, for messages */
    int depth;
} jreader;

static size_t jr_pos(const jreader *r) { return r->base_offset + (size_t)(r->p - r->base); }

/* Records a JSON syntax error at the current position. */
static bool jr_fail(jreader *r, const char *what)
{
    char got[32];
    if (r->p >= r->end) snprintf(got, sizeof got, "end of header");
    else if (*r->p >= 0x20 && *r->p < 0x7F) snprintf(got, sizeof got, "'%c'", *r->p);
    else snprintf(got, sizeof got, "byte 0x%02x", *r->p);
    em__fail(EM_ERR_IO, "%s: invalid JSON header at file offset %zu: %s (found %s)", r->ctx->who,
             jr_pos(r), what, got);
    return false;
}

static void jr_ws(jreader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static bool jr_is(jreader *r, char c)
{
    jr_ws(r);
    return r->p < r->end && *r->p == (unsigned char)c;
}

static bool jr_expect(jreader *r, char c, const char *what)
{
    if (!jr_is(r, c)) return jr_fail(r, what);
    r->p++;
    return true;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Reads "\uXXXX" at r->p (r->p at the backslash); -1 on error. */
static long jr_u4(jreader *r)
{
    if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u') return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int h = hexval(r->p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    r->p += 6;
    return v;
}

static size_t put_utf8(unsigned char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads a string (r->p at the opening quote, after whitespace). With out
 * non-NULL, *out gets a malloc'ed, NUL-terminated copy of the decoded bytes
 * (which may contain NUL from \u0000) and *len its length. The header was
 * checked to be valid UTF-8 as a whole, so raw bytes are copied as they are. */
static bool jr_string(jreader *r, char **out, size_t *len)
{
    if (out) *out = NULL;
    if (!jr_is(r, '"')) return jr_fail(r, "expected a string");
    r->p++;
    /* Pass 1: find the closing quote; the decoded text is never longer. */
    const unsigned char *s = r->p, *q = r->p;
    while (q < r->end && *q != '"') q += (*q == '\\' && q + 1 < r->end) ? 2 : 1;
    if (q >= r->end) {
        r->p = r->end;
        return jr_fail(r, "unterminated string");
    }
    unsigned char *o = NULL;
    if (out) {
        o = malloc((size_t)(q - s) + 1);
        if (!o) {
            em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory reading the header", r->ctx->who);
            return false;
        }
    }
    size_t n = 0;
    unsigned char tmp[4];
    while (r->p < q) {
        unsigned c = *r->p;
        if (c < 0x20) {
            free(o);
            return jr_fail(r, "control character in a string (must be escaped)");
        }
        if (c != '\\') {
            if (o) o[n] = (unsigned char)c;
            n++;
            r->p++;
            continue;
        }
        unsigned e = r->p[1]; /* exists: a backslash is never the byte before q */
        unsigned char ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            const unsigned char *at = r->p;
            long cp = jr_u4(r);
            if (cp < 0) {
                r->p = at;
                free(o);
                return jr_fail(r, "invalid \\u escape (needs 4 hex digits)");
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                r->p = at;
                free(o);
                return jr_fail(r, "lone low surrogate in a \\u escape");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = r->p < q ? jr_u4(r) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    r->p = at;
                    free(o);
                    return jr_fail(r, "high surrogate not followed by a \\u low surrogate");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            size_t k = put_utf8(tmp, (unsigned long)cp);
            if (o) memcpy(o + n, tmp, k);
            n += k;
            continue;
        }
        default:
            free(o);
            return jr_fail(r, "invalid escape in a string");
        }
        if (o) o[n] = ch;
        n++;
        r->p += 2;
    }
    r->p = q + 1;
    if (o) {
        o[n] = '\0';
        *out = (char *)o;
    }
    if (len) *len = n;
    return true;
}

/* A number as read: integer value when it is a non-negative integer that
 * fits in uint64_t; the text for messages. */
typedef struct jnum {
    uint64_t value;
    bool negative, fraction, overflow; /* fraction: has '.' or an exponent */
    const unsigned char *text;
    int text_len; /* clipped to 40 for messages */
} jnum;

static bool jr_number(jreader *r, jnum *num)
{
    jr_ws(r);
    memset(num, 0, sizeof *num);
    const unsigned char *s = r->p;
    if (r->p < r->end && *r->p == '-') {
        num->negative = true;
        r->p++;
    }
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return jr_fail(r, "expected a digit");
    if (*r->p == '0') {
        r->p++;
        if (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            return jr_fail(r, "leading zero in a number");
    } else {
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            unsigned d = *r->p - '0';
            if (num->value > (UINT64_MAX - d) / 10) num->overflow = true;
            else num->value = num->value * 10 + d;
            r->p++;
        }
    }
    if (r->p < r->end && *r->p == '.') {
        num->fraction = true;
        r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9') return jr_fail(r, "expected a digit after '.'");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        num->fraction = true;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9') return jr_fail(r, "expected a digit in the exponent");
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    }
    num->text = s;
    num->text_len = (int)(r->p - s > 40 ? 40 : r->p - s);
    return true;
}

static bool jr_literal(jreader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return jr_fail(r, "invalid literal");
    r->p += n;
    return true;
}

/* Skips any JSON value (validating it), nesting limited to ST_MAX_DEPTH. */
static bool jr_skip(jreader *r)
{
    jr_ws(r);
    if (r->p >= r->end) return jr_fail(r, "expected a value");
    switch (*r->p) {
    case '{':
    case '[': {
        bool obj = *r->p == '{';
        char close = obj ? '}' : ']';
        if (++r->depth > ST_MAX_DEPTH) return jr_fail(r, "nesting deeper than 64 levels");
        r->p++;
        if (jr_is(r, close)) {
            r->p++;
            r->depth--;
            return true;
        }
        for (;;) {
            if (obj) {
                if (!jr_string(r, NULL, NULL)) return false;
                if (!jr_expect(r, ':', "expected ':' after a key")) return false;
            }
            if (!jr_skip(r)) return false;
            if (jr_is(r, ',')) {
                r->p++;
                continue;
            }
            if (!jr_expect(r, close, obj ? "expected ',' or '}'" : "expected ',' or ']'")) return false;
            break;
        }
        r->depth--;
        return true;
    }
    case '"': return jr_string(r, NULL, NULL);
    case 't': return jr_literal(r, "true");
    case 'f': return jr_literal(r, "false");
    case 'n': return jr_literal(r, "null");
    default: {
        jnum num;
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) return jr_number(r, &num);
        return jr_fail(r, "expected a value");
    }
    }
}

/* ------------------------------------------------------------------------ */
/* 3. The header                                                             */
/* ------------------------------------------------------------------------ */

typedef struct st_tensor {
    char *name; /* NUL-terminated, no NUL inside, non-empty */
    em_dtype dtype;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    uint64_t begin, end, nbytes;
} st_tensor;

typedef struct st_header {
    st_tensor *t;
    size_t n, cap;
    char **meta; /* key0, value0, key1, value1, ... */
    size_t nmeta, meta_cap;
    uint64_t header_len, data_start, data_len;
} st_header;

static void header_free(st_header *h)
{
    for (size_t i = 0; i < h->n; i++) free(h->t[i].name);
    for (size_t i = 0; i < 2 * h->nmeta; i++) free(h->meta[i]);
    free(h->t);
    free(h->meta);
    memset(h, 0, sizeof *h);
}

static bool key_is(const char *key, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(key, word, len) == 0;
}

/* Reads "[n, n, ...]" of non-negative integers: shape (at most cap entries
 * kept, all counted in *count) or data_offsets. */
static bool read_uint_list(jreader *r, const char *tname, const char *field, uint64_t *vals,
                           int cap, int *count)
{
    const st_ctx *c = r->ctx;
    jr_ws(r);
    if (!jr_is(r, '[')) {
        ST_FAIL(c, EM_ERR_IO, "tensor '%s': \"%s\" must be a list of non-negative integers", tname, field);
        return false;
    }
    r->p++;
    *count = 0;
    if (jr_is(r, ']')) {
        r->p++;
        return true;
    }
    for (;;) {
        jr_ws(r);
        if (r->p >= r->end || !(*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))) {
            ST_FAIL(c, EM_ERR_IO, "tensor '%s': entry %d of \"%s\" is not a number (file offset %zu)",
                    tname, *count, field, jr_pos(r));
            return false;
        }
        jnum num;
        if (!jr_number(r, &num)) return false;
        if (num.negative || num.fraction || num.overflow || num.value > (uint64_t)INT64_MAX) {
            ST_FAIL(c, EM_ERR_IO, "tensor '%s': entry %d of \"%s\" is %.*s%s, not a non-negative integer below 2^63",
                    tname, *count, field, num.text_len, (const char *)num.text,
                    num.text_len == 40 ? "..." : "");
            return false;
        }
        if (*count < cap) vals[*count] = num.value;
        if (*count < INT32_MAX) (*count)++;
        if (jr_is(r, ',')) {
            r->p++;
            continue;
        }
        return jr_expect(r, ']', "expected ',' or ']'");
    }
}

/* Reads one tensor entry's value (an object) into t. */
static bool read_tensor_info(jreader *r, st_tensor *t)
{
    const st_ctx *c = r->ctx;
    if (!jr_is(r, '{')) {
        ST_FAIL(c, EM_ERR_IO, "tensor '%s': expected an object {\"dtype\", \"shape\", \"data_offsets\"} (file offset %zu)",
                t->name, jr_pos(r));
        return false;
    }
    r->p++;
    if (++r->depth > ST_MAX_DEPTH) return jr_fail(r, "nesting deeper than 64 levels");
    bool have_dtype = false, have_shape = false, have_offsets = false;
    if (jr_is(r, '}')) r->p++;
    else {
        for (;;) {
            char *key;
            size_t klen;
            if (!jr_string(r, &key, &klen)) return false;
            if (!jr_expect(r, ':', "expected ':' after a key")) {
                free(key);
                return false;
            }
            bool ok = true;
            if (key_is(key, klen, "dtype")) {
                if (have_dtype) {
                    ST_FAIL(c, EM_ERR_IO, "tensor '%s': \"dtype\" given twice", t->name);
                    ok = false;
                } else {
                    have_dtype = true;
                    char *dt = NULL;
                    size_t dlen = 0;
                    if (!jr_is(r, '"')) {
                        ST_FAIL(c, EM_ERR_IO, "tensor '%s': \"dtype\" must be a string", t->name);
                        ok = false;
                    } else if (!jr_string(r, &dt, &dlen)) {
                        ok = false;
                    } else {
                        int found = -2;
                        for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
                            if (key_is(dt, dlen, st_dtypes[i].name)) found = st_dtypes[i].ember;
                        if (found == -2) {
                            ST_FAIL(c, EM_ERR_IO, "tensor '%s': unknown dtype \"%.40s\"", t->name, dt);
                            ok = false;
                        } else if (found == -1) {
                            ST_FAIL(c, EM_ERR_UNSUPPORTED,
                                    "tensor '%s': dtype %s has no Ember equivalent (Ember reads F32, F64, F16, BF16, I32, I64, BOOL)",
                                    t->name, dt);
                            ok = false;
                        } else {
                            t->dtype = (em_dtype)found;
                        }
                        free(dt);
                    }
                }
            } else if (key_is(key, klen, "shape")) {
                if (have_shape) {
                    ST_FAIL(c, EM_ERR_IO, "tensor '%s': \"shape\" given twice", t->name);
                    ok = false;
                } else {
                    have_shape = true;
                    uint64_t dims[EM_MAX_DIMS];
                    int nd = 0;
                    ok = read_uint_list(r, t->name, "shape", dims, EM_MAX_DIMS, &nd);
                    if (ok && nd > EM_MAX_DIMS) {
                        ST_FAIL(c, EM_ERR_UNSUPPORTED, "tensor '%s' has %d dimensions; Ember supports at most %d",
                                t->name, nd, EM_MAX_DIMS);
                        ok = false;
                    }
                    if (ok) {
                        t->ndim = nd;
                        for (int i = 0; i < nd; i++) t->shape[i] = (int64_t)dims[i];
                    }
                }
            } else if (key_is(key, klen, "data_offsets")) {
                if (have_offsets) {
                    ST_FAIL(c, EM_ERR_IO, "tensor '%s': \"data_offsets\" given twice", t->name);
                    ok = false;
                } else {
                    have_offsets = true;
                    uint64_t off[2] = {0, 0};
                    int n = 0;
                    ok = read_uint_list(r, t->name, "data_offsets", off, 2, &n);
                    if (ok && n != 2) {
                        ST_FAIL(c, EM_ERR_IO, "tensor '%s': \"data_offsets\" has %d entries, must be [begin, end]",
                                t->name, n);
                        ok = false;
                    }
                    t->begin = off[0];
                    t->end = off[1];
                }
            } else {
                ok = jr_skip(r); /* other keys are ignored, as the reference does */
            }
            free(key);
            if (!ok) return false;
            if (jr_is(r, ',')) {
                r->p++;
                continue;
            }
            if (!jr_expect(r, '}', "expected ',' or '}'")) return false;
            break;
        }
    }
    r->depth--;
    const char *missing = !have_dtype ? "dtype" : !have_shape ? "shape" : !have_offsets ? "data_offsets" : NULL;
    if (missing) {
        ST_FAIL(c, EM_ERR_IO, "tensor '%s' has no \"%s\"", t->name, missing);
        return false;
    }
    return true;
}

/* Reads the "__metadata__" value: null or an object of strings. */
static bool read_metadata(jreader *r, st_header *h)
{
    const st_ctx *c = r->ctx;
    jr_ws(r);
    if (r->p < r->end && *r->p == 'n') return jr_literal(r, "null");
    if (!jr_is(r, '{')) {
        ST_FAIL(c, EM_ERR_IO, "\"__metadata__\" must be an object of strings (file offset %zu)", jr_pos(r));
        return false;
    }
    r->p++;
    if (++r->depth > ST_MAX_DEPTH) return jr_fail(r, "nesting deeper than 64 levels");
    if (jr_is(r, '}')) {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        char *key = NULL, *val = NULL;
        size_t klen, vlen;
        if (!jr_string(r, &key, &klen)) return false;
        if (!jr_expect(r, ':', "expected ':' after a key")) {
            free(key);
            return false;
        }
        if (!jr_is(r, '"')) {
            ST_FAIL(c, EM_ERR_IO, "\"__metadata__\" entry '%s' is not a string", key);
            free(key);
            return false;
        }
        if (!jr_string(r, &val, &vlen)) {
            free(key);
            return false;
        }
        if (strlen(key) != klen || strlen(val) != vlen) {
            ST_FAIL(c, EM_ERR_UNSUPPORTED,
                    "\"__metadata__\" entry '%s' contains a NUL character (\\u0000), which Ember cannot represent", key);
            free(key);
            free(val);
            return false;
        }
        if (h->nmeta == h->meta_cap) {
            size_t cap = h->meta_cap ? 2 * h->meta_cap : 8;
            char **m = realloc(h->meta, 2 * cap * sizeof *m);
            if (!m) {
                free(key);
                free(val);
                ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory reading the header");
                return false;
            }
            h->meta = m;
            h->meta_cap = cap;
        }
        h->meta[2 * h->nmeta] = key;
        h->meta[2 * h->nmeta + 1] = val;
        h->nmeta++;
        if (jr_is(r, ',')) {
            r->p++;
            continue;
        }
        if (!jr_expect(r, '}', "expected ',' or '}'")) return false;
        break;
    }
    r->depth--;
    return true;
}

/* qsort helpers: sort indices (size_t) into the header's arrays, which
 * tl_sort_h points to while qsort runs (qsort has no context argument). */
static _Thread_local const st_header *tl_sort_h;

static int cmp_name(const void *a, const void *b)
{
    const st_header *h = tl_sort_h;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(h->t[i].name, h->t[j].name);
    return c ? c : (i < j ? -1 : i > j);
}

static int cmp_meta(const void *a, const void *b)
{
    const st_header *h = tl_sort_h;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(h->meta[2 * i], h->meta[2 * j]);
    return c ? c : (i < j ? -1 : i > j);
}

static int cmp_offsets(const void *a, const void *b)
{
    const st_header *h = tl_sort_h;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const st_tensor *x = &h->t[i], *y = &h->t[j];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return i < j ? -1 : i > j;
}

static size_t *sorted_indices(const st_header *h, size_t n, int (*cmp)(const void *, const void *))
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return NULL;
    for (size_t i = 0; i < n; i++) idx[i] = i;
    tl_sort_h = h;
    qsort(idx, n, sizeof *idx, cmp);
    tl_sort_h = NULL;
    return idx;
}

/* Parses the header JSON [json, json + len) into h (h->data_len set). */
static bool parse_header(const st_ctx *c, const unsigned char *json, size_t len, st_header *h)
{
    size_t bad = utf8_check(json, len);
    if (bad < len) {
        ST_FAIL(c, EM_ERR_IO, "the header is not valid UTF-8 (byte 0x%02x at file offset %zu)", json[bad],
                (size_t)8 + bad);
        return false;
    }
    if (len == 0) {
        ST_FAIL(c, EM_ERR_IO, "%s", "the header is empty (length 0); it must be a JSON object");
        return false;
    }
    jreader r = {c, json, json, json + len, 8, 0};
    jr_ws(&r); /* leading whitespace is valid JSON, and the reference accepts it */
    if (r.p >= r.end || *r.p != '{') {
        if (r.p < r.end)
            ST_FAIL(c, EM_ERR_IO, "the header must be a JSON object, found byte 0x%02x ('%c') at file offset %zu",
                    *r.p, *r.p >= 0x20 && *r.p < 0x7F ? *r.p : '?', jr_pos(&r));
        else ST_FAIL(c, EM_ERR_IO, "%s", "the header holds only whitespace; it must be a JSON object");
        return false;
    }
    r.p++;
    r.depth = 1;
    bool seen_meta = false;
    if (jr_is(&r, '}')) r.p++;
    else {
        for (;;) {
            char *key;
            size_t klen;
            if (!jr_string(&r, &key, &klen)) return false;
            if (!jr_expect(&r, ':', "expected ':' after a key")) {
                free(key);
                return false;
            }
            if (key_is(key, klen, "__metadata__")) {
                free(key);
                if (seen_meta) {
                    ST_FAIL(c, EM_ERR_IO, "%s", "\"__metadata__\" appears twice");
                    return false;
                }
                seen_meta = true;
                if (!read_metadata(&r, h)) return false;
            } else {
                if (klen == 0 || strlen(key) != klen) {
                    ST_FAIL(c, EM_ERR_UNSUPPORTED, "a tensor name %s, which Ember cannot represent (before file offset %zu)",
                            klen ? "contains a NUL character (\\u0000)" : "is empty", jr_pos(&r));
                    free(key);
                    return false;
                }
                if (h->n == h->cap) {
                    size_t cap = h->cap ? 2 * h->cap : 16;
                    st_tensor *t = realloc(h->t, cap * sizeof *t);
                    if (!t) {
                        free(key);
                        ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory reading the header");
                        return false;
                    }
                    h->t = t;
                    h->cap = cap;
                }
                st_tensor *t = &h->t[h->n++];
                memset(t, 0, sizeof *t);
                t->name = key;
                if (!read_tensor_info(&r, t)) return false;
            }
            if (jr_is(&r, ',')) {
                r.p++;
                continue;
            }
            if (!jr_expect(&r, '}', "expected ',' or '}'")) return false;
            break;
        }
    }
    jr_ws(&r);
    if (r.p < r.end) {
        ST_FAIL(c, EM_ERR_IO,
                "%zu unexpected bytes after the header's JSON object at file offset %zu (only whitespace may pad it)",
                (size_t)(r.end - r.p), jr_pos(&r));
        return false;
    }
    /* Duplicates. */
    size_t *idx = sorted_indices(h, h->n, cmp_name);
    if (!idx) goto oom;
    for (size_t i = 1; i < h->n; i++) {
        if (!strcmp(h->t[idx[i - 1]].name, h->t[idx[i]].name)) {
            ST_FAIL(c, EM_ERR_IO, "duplicate tensor name '%s'", h->t[idx[i]].name);
            free(idx);
            return false;
        }
    }
    free(idx);
    idx = sorted_indices(h, h->nmeta, cmp_meta);
    if (!idx) goto oom;
    for (size_t i = 1; i < h->nmeta; i++) {
        if (!strcmp(h->meta[2 * idx[i - 1]], h->meta[2 * idx[i]])) {
            ST_FAIL(c, EM_ERR_IO, "duplicate \"__metadata__\" key '%s'", h->meta[2 * idx[i]]);
            free(idx);
            return false;
        }
    }
    free(idx);
    return true;
oom:
    ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory reading the header");
    return false;
}

/* Checks every tensor's size and offsets against the data area. */
static bool validate_layout(const st_ctx *c, st_header *h)
{
    char sb[200];
    for (size_t i = 0; i < h->n; i++) {
        st_tensor *t = &h->t[i];
        const char *dn = st_dtype_name(t->dtype);
        int64_t prod = 1;
        bool zero = false;
        for (int k = 0; k < t->ndim; k++) {
            int64_t d = t->shape[k];
            if (d == 0) {
                zero = true;
                continue;
            }
            /* Ember's own bound on element counts (numel * 16 fits int64). */
            if (prod > INT64_MAX / 16 / d) {
                ST_FAIL(c, EM_ERR_IO, "tensor '%s': shape %s has too many elements (overflow)", t->name,
                        shape_str(t->ndim, t->shape, sb, sizeof sb));
                return false;
            }
            prod *= d;
        }
        t->nbytes = zero ? 0 : (uint64_t)prod * em_dtype_size(t->dtype);
        if (t->begin > t->end) {
            ST_FAIL(c, EM_ERR_IO, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                    t->name, t->begin, t->end);
            return false;
        }
        if (t->end - t->begin != t->nbytes) {
            ST_FAIL(c, EM_ERR_IO,
                    "tensor '%s': %s %s needs %" PRIu64 " bytes but data_offsets [%" PRIu64 ", %" PRIu64
                    "] hold %" PRIu64,
                    t->name, dn, shape_str(t->ndim, t->shape, sb, sizeof sb), t->nbytes, t->begin, t->end,
                    t->end - t->begin);
            return false;
        }
        if (t->end > h->data_len) {
            ST_FAIL(c, EM_ERR_IO,
                    "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] reach past the data area of %" PRIu64
                    " bytes (file offset %" PRIu64 " onwards)",
                    t->name, t->begin, t->end, h->data_len, h->data_start);
            return false;
        }
    }
    size_t *idx = sorted_indices(h, h->n, cmp_offsets);
    if (!idx) {
        ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory reading the header");
        return false;
    }
    uint64_t pos = 0;
    const st_tensor *last = NULL; /* the tensor that ends at pos */
    for (size_t k = 0; k < h->n; k++) {
        const st_tensor *t = &h->t[idx[k]];
        if (t->begin > pos) {
            char after[300] = "";
            if (last) snprintf(after, sizeof after, " after '%s'", last->name);
            ST_FAIL(c, EM_ERR_IO,
                    "bytes [%" PRIu64 ", %" PRIu64 ") of the data area belong to no tensor (a hole%s before '%s' at [%" PRIu64
                    ", %" PRIu64 "])",
                    pos, t->begin, after, t->name, t->begin, t->end);
            free(idx);
            return false;
        }
        if (t->begin < pos) {
            ST_FAIL(c, EM_ERR_IO,
                    "tensor '%s' at data_offsets [%" PRIu64 ", %" PRIu64 "] overlaps tensor '%s' at [%" PRIu64
                    ", %" PRIu64 "]",
                    t->name, t->begin, t->end, last->name, last->begin, last->end);
            free(idx);
            return false;
        }
        if (t->end > pos || !last) {
            pos = t->end;
            last = t;
        }
    }
    free(idx);
    if (pos != h->data_len) {
        ST_FAIL(c, EM_ERR_IO,
                "%" PRIu64 " trailing bytes: the tensors end at data offset %" PRIu64 " but the data area has %" PRIu64
                " bytes",
                h->data_len - pos, pos, h->data_len);
        return false;
    }
    return true;
}

/* Checks the 8-byte length field against the file size; sets header_len,
 * data_start, data_len. */
static bool check_length(const st_ctx *c, const unsigned char *first8, uint64_t file_size, st_header *h)
{
    uint64_t n = rd_u64le(first8);
    if (n > EM_SAFETENSORS_MAX_HEADER) {
        ST_FAIL(c, EM_ERR_IO, "header length %" PRIu64 " is larger than the limit of %u bytes", n,
                EM_SAFETENSORS_MAX_HEADER);
        return false;
    }
    if (n > file_size - 8) {
        ST_FAIL(c, EM_ERR_IO, "header length %" PRIu64 " reaches past the end of the file (%" PRIu64 " bytes)", n,
                file_size);
        return false;
    }
    h->header_len = n;
    h->data_start = 8 + n;
    h->data_len = file_size - 8 - n;
    return true;
}

/* ------------------------------------------------------------------------ */
/* 4. Loading                                                                */
/* ------------------------------------------------------------------------ */

typedef struct st_source {
    const unsigned char *mem; /* the whole file, or NULL to read from fd */
    int fd;
    unsigned char *buf; /* scratch for pread / byte swaps */
    size_t buf_cap;
} st_source;

static bool src_reserve(const st_ctx *c, st_source *s, size_t n)
{
    if (n <= s->buf_cap) return true;
    unsigned char *b = realloc(s->buf, n);
    if (!b) {
        ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "out of host memory for a %zu-byte read buffer", n);
        return false;
    }
    s->buf = b;
    s->buf_cap = n;
    return true;
}

static bool pread_all(const st_ctx *c, int fd, void *dst, size_t n, uint64_t off)
{
    unsigned char *p = dst;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t got = pread(fd, p, chunk, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            char eb[128];
            if (got < 0) errno_str(errno, eb, sizeof eb);
            else snprintf(eb, sizeof eb, "the file ended early (was it changed while loading?)");
            ST_FAIL(c, EM_ERR_IO, "reading %zu bytes at file offset %" PRIu64 " failed: %s", n, off, eb);
            return false;
        }
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return true;
}

/* The bytes of tensor t in host order. */
static const unsigned char *tensor_bytes(const st_ctx *c, st_source *s, const st_header *h, const st_tensor *t)
{
    size_t n = (size_t)t->nbytes;
    const unsigned char *p;
    if (s->mem) {
        p = s->mem + h->data_start + t->begin;
    } else {
        if (!src_reserve(c, s, n)) return NULL;
        if (!pread_all(c, s->fd, s->buf, n, h->data_start + t->begin)) return NULL;
        p = s->buf;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    size_t es = em_dtype_size(t->dtype);
    if (es > 1) {
        if (p != s->buf) {
            if (!src_reserve(c, s, n)) return NULL;
            memcpy(s->buf, p, n);
        }
        for (size_t i = 0; i < n; i += es)
            for (size_t a = 0, b = es - 1; a < b; a++, b--) {
                unsigned char x = s->buf[i + a];
                s->buf[i + a] = s->buf[i + b];
                s->buf[i + b] = x;
            }
        p = s->buf;
    }
#endif
    if (t->dtype == EM_BOOL) {
        /* Ember's bools are 0 or 1; any other byte means true (as in NumPy
         * and PyTorch, which load such files too). */
        size_t i = 0;
        while (i < n && p[i] <= 1) i++;
        if (i < n) {
            if (p != s->buf) {
                if (!src_reserve(c, s, n)) return NULL;
                memcpy(s->buf, p, n);
            }
            for (; i < n; i++)
                if (s->buf[i] > 1) s->buf[i] = 1;
            p = s->buf;
        }
    }
    return p;
}

/* Makes the dictionary from a validated header. */
static em_tensor_dict *build_dict(const st_ctx *c, st_source *s, const st_header *h, em_device *device)
{
    em_tensor_dict *d = em_tensor_dict_create();
    if (!d) return NULL;
    for (size_t i = 0; i < h->nmeta; i++) {
        if (em_tensor_dict_set_meta(d, h->meta[2 * i], h->meta[2 * i + 1]) != EM_OK) {
            em_tensor_dict_destroy(d);
            return NULL;
        }
    }
    /* A private scope: each new tensor's reference goes to it, the dictionary
     * retains its own, and closing the scope leaves the dictionary's only. */
    if (em_scope_begin() != EM_OK) {
        char why[1200];
        snprintf(why, sizeof why, "%s", em_last_error());
        ST_FAIL(c, em_last_status(), "%s", why);
        em_tensor_dict_destroy(d);
        return NULL;
    }
    static const unsigned char none[1] = {0};
    bool ok = true;
    for (size_t i = 0; i < h->n && ok; i++) {
        const st_tensor *t = &h->t[i];
        const unsigned char *bytes = t->nbytes ? tensor_bytes(c, s, h, t) : none;
        if (!bytes) {
            ok = false;
            break;
        }
        em_tensor *x = em_tensor_from_data(bytes, t->dtype, t->ndim, t->shape, device);
        if (!x) {
            char why[1200];
            snprintf(why, sizeof why, "%s", em_last_error());
            char sb[200];
            ST_FAIL(c, em_last_status() == EM_OK ? EM_ERR_INTERNAL : em_last_status(),
                    "tensor '%s' (%s %s): %s", t->name, st_dtype_name(t->dtype),
                    shape_str(t->ndim, t->shape, sb, sizeof sb), why);
            ok = false;
            break;
        }
        if (em_tensor_dict_set(d, t->name, x) != EM_OK) ok = false;
    }
    em_scope_end();
    if (!ok) {
        em_tensor_dict_destroy(d);
        return NULL;
    }
    return d;
}

em_tensor_dict *em_load_safetensors_from_memory(const void *data, size_t size, em_device *device)
{
    st_ctx c;
    ctx_init(&c, "em_load_safetensors_from_memory", NULL);
    if (!data && size > 0) {
        em__fail(EM_ERR_NULL_ARG, "%s: data is NULL (size %zu)", c.who, size);
        return NULL;
    }
    if (size < 8) {
        ST_FAIL(&c, EM_ERR_IO, "%zu bytes is shorter than the 8-byte header length field", size);
        return NULL;
    }
    const unsigned char *mem = data;
    st_header h = {0};
    em_tensor_dict *d = NULL;
    if (check_length(&c, mem, size, &h) && parse_header(&c, mem + 8, (size_t)h.header_len, &h) &&
        validate_layout(&c, &h)) {
        st_source s = {mem, -1, NULL, 0};
        d = build_dict(&c, &s, &h, device);
        free(s.buf);
    }
    header_free(&h);
    return d;
}

em_tensor_dict *em_load_safetensors(const char *path, em_device *device)
{
    st_ctx c;
    if (!path) {
        em__fail(EM_ERR_NULL_ARG, "em_load_safetensors: path is NULL");
        return NULL;
    }
    ctx_init(&c, "em_load_safetensors", path);
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        char eb[128];
        errno_str(errno, eb, sizeof eb);
        ST_FAIL(&c, EM_ERR_IO, "cannot open: %s", eb);
        return NULL;
    }
    struct stat sta;
    if (fstat(fd, &sta) != 0) {
        char eb[128];
        errno_str(errno, eb, sizeof eb);
        ST_FAIL(&c, EM_ERR_IO, "cannot stat: %s", eb);
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sta.st_mode)) {
        ST_FAIL(&c, EM_ERR_IO, "%s", "not a regular file");
        close(fd);
        return NULL;
    }
    uint64_t size = (uint64_t)sta.st_size;
    em_tensor_dict *d = NULL;
    st_header h = {0};
    unsigned char first8[8];
    unsigned char *json = NULL;
    if (size < 8) {
        ST_FAIL(&c, EM_ERR_IO, "%" PRIu64 " bytes is shorter than the 8-byte header length field", size);
    } else if (pread_all(&c, fd, first8, 8, 0) && check_length(&c, first8, size, &h)) {
        json = malloc(h.header_len ? (size_t)h.header_len : 1);
        if (!json) {
            ST_FAIL(&c, EM_ERR_OUT_OF_MEMORY, "out of host memory for a %" PRIu64 "-byte header", h.header_len);
        } else if (pread_all(&c, fd, json, (size_t)h.header_len, 8) &&
                   parse_header(&c, json, (size_t)h.header_len, &h) && validate_layout(&c, &h)) {
            st_source s = {NULL, fd, NULL, 0};
            d = build_dict(&c, &s, &h, device);
            free(s.buf);
        }
    }
    free(json);
    header_free(&h);
    close(fd);
    return d;
}

/* ------------------------------------------------------------------------ */
/* 5. Saving                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal, escaped as serde_json does. */
static void sb_json(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[7];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                memcpy(e, "\\u00", 4);
                e[4] = hex[*p >> 4];
                e[5] = hex[*p & 15];
                sb_put(b, e, 6);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

typedef struct save_item {
    const char *name;
    em_tensor *t; /* reference held by the save's scope */
    em_dtype dtype;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    uint64_t nbytes, begin;
} save_item;

static bool valid_utf8_str(const char *s)
{
    size_t n = strlen(s);
    return utf8_check((const unsigned char *)s, n) == n;
}

/* Builds the padded header; fills items[].begin. */
static em_status build_header(const st_ctx *c, const em_tensor_dict *d, save_item *items, int n, sbuf *b)
{
    /* Data order: element size 8, 4, 2, 1; insertion order among equals. */
    uint64_t off = 0;
    for (size_t es = 8; es >= 1; es /= 2) {
        for (int i = 0; i < n; i++) {
            if (em_dtype_size(items[i].dtype) != es) continue;
            items[i].begin = off;
            if (items[i].nbytes > UINT64_MAX - off)
                return ST_FAIL(c, EM_ERR_INVALID_ARG, "%s", "the tensors' total size overflows");
            off += items[i].nbytes;
        }
    }
    sb_put(b, "{", 1);
    int nm = em_tensor_dict_meta_count(d);
    if (nm > 0) {
        sb_str(b, "\"__metadata__\":{");
        for (int i = 0; i < nm; i++) {
            const char *k = em_tensor_dict_meta_key(d, i);
            const char *v = em_tensor_dict_get_meta(d, k);
            if (i) sb_put(b, ",", 1);
            sb_json(b, k);
            sb_put(b, ":", 1);
            sb_json(b, v);
        }
        sb_put(b, "}", 1);
    }
    for (int i = 0; i < n; i++) {
        const save_item *it = &items[i];
        if (i || nm > 0) sb_put(b, ",", 1);
        sb_json(b, it->name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, st_dtype_name(it->dtype));
        sb_str(b, "\",\"shape\":[");
        for (int k = 0; k < it->ndim; k++) {
            if (k) sb_put(b, ",", 1);
            sb_u64(b, (uint64_t)it->shape[k]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_u64(b, it->begin);
        sb_put(b, ",", 1);
        sb_u64(b, it->begin + it->nbytes);
        sb_str(b, "]}");
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->len % 8) sb_put(b, " ", 1);
    if (b->oom) return ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory building the header");
    if (b->len > EM_SAFETENSORS_MAX_HEADER)
        return ST_FAIL(c, EM_ERR_INVALID_ARG, "the header would be %zu bytes, more than the limit of %u", b->len,
                       EM_SAFETENSORS_MAX_HEADER);
    return EM_OK;
}

static em_status write_all(const st_ctx *c, int fd, const char *tmp, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            char eb[128];
            if (w < 0) errno_str(errno, eb, sizeof eb);
            else snprintf(eb, sizeof eb, "no progress");
            return ST_FAIL(c, EM_ERR_IO, "writing the temporary file '%s' failed: %s", tmp, eb);
        }
        p += w;
        n -= (size_t)w;
    }
    return EM_OK;
}

/* Creates "<dir>/.<base>.tmp-XXXXXXXX" exclusively, mode 0666 minus the
 * umask (mkstemp would force 0600). Returns the fd, -1 with the error set. */
static int create_temp(const st_ctx *c, const char *path, char **tmp_out)
{
    static _Atomic uint64_t counter;
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    size_t base_len = strlen(base);
    if (base_len > 200) base_len = 200; /* keep within NAME_MAX */
    char *tmp = malloc(dir_len + base_len + 32);
    if (!tmp) {
        ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory");
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                 (uint64_t)(uintptr_t)&ts;
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t z = x + 0x9E3779B97F4A7C15ull * (atomic_fetch_add(&counter, 1) + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        snprintf(tmp, dir_len + base_len + 32, "%.*s.%.*s.tmp-%08x", (int)dir_len, path, (int)base_len, base,
                 (unsigned)(z & 0xFFFFFFFFu));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *tmp_out = tmp;
            return fd;
        }
        if (errno == EEXIST || errno == EINTR) continue;
        char eb[128];
        errno_str(errno, eb, sizeof eb);
        ST_FAIL(c, EM_ERR_IO, "cannot create the temporary file '%s': %s", tmp, eb);
        free(tmp);
        return -1;
    }
    ST_FAIL(c, EM_ERR_IO, "cannot create a unique temporary file next to it (last tried '%s')", tmp);
    free(tmp);
    return -1;
}

/* fsync on the folder holding path, so the rename is durable. */
static em_status sync_dir(const st_ctx *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    em_status st = EM_OK;
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)) {
        char eb[128];
        errno_str(errno, eb, sizeof eb);
        st = ST_FAIL(c, EM_ERR_IO, "the file was written, but syncing its folder '%s' failed: %s", dir, eb);
    }
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}

static em_status save_impl(const st_ctx *c, const char *path, const em_tensor_dict *d)
{
    int n = em_tensor_dict_count(d);
    save_item *items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    if (!items) return ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "%s", "out of host memory");
    em_status st = EM_OK;
    sbuf b = {0};
    unsigned char *buf = NULL;
    char *tmp = NULL;
    int fd = -1;
    uint64_t max_bytes = 0;

    for (int i = 0; i < n && st == EM_OK; i++) {
        save_item *it = &items[i];
        it->name = em_tensor_dict_name(d, i);
        it->t = em_tensor_dict_at(d, i);
        if (!it->t) {
            st = em_last_status();
            break;
        }
        if (!valid_utf8_str(it->name)) {
            st = ST_FAIL(c, EM_ERR_INVALID_ARG, "tensor %d: its name is not valid UTF-8", i);
            break;
        }
        if (!strcmp(it->name, "__metadata__")) {
            st = ST_FAIL(c, EM_ERR_INVALID_ARG, "%s", "a tensor may not be named \"__metadata__\" (reserved)");
            break;
        }
        it->dtype = em_tensor_dtype(it->t);
        it->ndim = em_tensor_shape(it->t, it->shape);
        if (!st_dtype_name(it->dtype) || it->ndim < 0) {
            st = ST_FAIL(c, EM_ERR_DTYPE, "tensor '%s': invalid dtype %d", it->name, (int)it->dtype);
            break;
        }
        it->nbytes = (uint64_t)em_tensor_numel(it->t) * em_dtype_size(it->dtype);
        if (it->nbytes > max_bytes) max_bytes = it->nbytes;
    }
    for (int i = 0; i < em_tensor_dict_meta_count(d) && st == EM_OK; i++) {
        const char *k = em_tensor_dict_meta_key(d, i);
        if (!valid_utf8_str(k) || !valid_utf8_str(em_tensor_dict_get_meta(d, k)))
            st = ST_FAIL(c, EM_ERR_INVALID_ARG, "metadata entry %d: key or value is not valid UTF-8", i);
    }
    if (st == EM_OK) st = build_header(c, d, items, n, &b);
    if (st == EM_OK && max_bytes > SIZE_MAX)
        st = ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "a tensor of %" PRIu64 " bytes does not fit in host memory", max_bytes);
    if (st == EM_OK) {
        buf = malloc(max_bytes ? (size_t)max_bytes : 1);
        if (!buf) st = ST_FAIL(c, EM_ERR_OUT_OF_MEMORY, "out of host memory for a %" PRIu64 "-byte buffer", max_bytes);
    }
    if (st == EM_OK) {
        fd = create_temp(c, path, &tmp);
        if (fd < 0) st = em_last_status();
    }
    if (st == EM_OK) {
        unsigned char len8[8];
        uint64_t hl = b.len;
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
        st = write_all(c, fd, tmp, len8, 8);
        if (st == EM_OK) st = write_all(c, fd, tmp, b.p, b.len);
    }
    for (size_t es = 8; es >= 1 && st == EM_OK; es /= 2) {
        for (int i = 0; i < n && st == EM_OK; i++) {
            save_item *it = &items[i];
            if (em_dtype_size(it->dtype) != es || it->nbytes == 0) continue;
            st = em_tensor_read(it->t, buf, (size_t)it->nbytes);
            if (st != EM_OK) {
                char why[1200];
                snprintf(why, sizeof why, "%s", em_last_error());
                st = ST_FAIL(c, st, "reading tensor '%s': %s", it->name, why);
                break;
            }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            for (size_t j = 0; j < it->nbytes; j += es)
                for (size_t a = 0, z = es - 1; a < z; a++, z--) {
                    unsigned char x = buf[j + a];
                    buf[j + a] = buf[j + z];
                    buf[j + z] = x;
                }
#endif
            st = write_all(c, fd, tmp, buf, (size_t)it->nbytes);
        }
    }
    if (st == EM_OK) {
        struct stat old;
        if (stat(path, &old) == 0 && S_ISREG(old.st_mode)) (void)fchmod(fd, old.st_mode & 07777);
        if (fsync(fd) != 0) {
            char eb[128];
            errno_str(errno, eb, sizeof eb);
            st = ST_FAIL(c, EM_ERR_IO, "syncing the temporary file '%s' failed: %s", tmp, eb);
        }
    }
    if (fd >= 0) {
        if (close(fd) != 0 && st == EM_OK) {
            char eb[128];
            errno_str(errno, eb, sizeof eb);
            st = ST_FAIL(c, EM_ERR_IO, "closing the temporary file '%s' failed: %s", tmp, eb);
        }
    }
    if (st == EM_OK && rename(tmp, path) != 0) {
        char eb[128];
        errno_str(errno, eb, sizeof eb);
        st = ST_FAIL(c, EM_ERR_IO, "renaming the temporary file '%s' over it failed: %s", tmp, eb);
    }
    if (st != EM_OK) {
        if (tmp) unlink(tmp);
    } else {
        st = sync_dir(c, path);
    }
    free(tmp);
    free(buf);
    free(b.p);
    free(items);
    return st;
}

em_status em_save_safetensors(const char *path, const em_tensor_dict *d)
{
    static const char *fn = "em_save_safetensors";
    if (!path) return em__fail(EM_ERR_NULL_ARG, "%s: path is NULL", fn);
    if (!d) return em__fail(EM_ERR_NULL_ARG, "%s: d is NULL", fn);
    if (!path[0]) return em__fail(EM_ERR_INVALID_ARG, "%s: path is empty", fn);
    st_ctx c;
    ctx_init(&c, fn, path);
    /* The tensors em_tensor_dict_at hands out belong to this scope. */
    em_status st = em_scope_begin();
    if (st != EM_OK) {
        char why[1200];
        snprintf(why, sizeof why, "%s", em_last_error());
        return ST_FAIL(&c, st, "%s", why);
    }
    st = save_impl(&c, path, d);
    em_scope_end();
    return st;
}
