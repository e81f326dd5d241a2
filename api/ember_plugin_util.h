/*
 * ember_plugin_util.h — header-only helpers for writing a backend plugin.
 *
 * Everything here is static inline and built on ember_plugin.h alone: a
 * plugin that uses it still needs no symbol from libember. It is optional;
 * it exists so that every plugin does not write the same boilerplate again:
 *
 *   - em_plugin_host: a copy of the core's host services that tolerates an
 *     older core (slots past the core's struct_size read as NULL) and
 *     checks the ABI major at init;
 *   - em_plugin_fail / em_plugin_log / em_plugin_getenv: error reporting
 *     through host->set_error with a formatted message, log forwarding
 *     tagged with the plugin's name, secure_getenv through the host;
 *   - em_plugin_check_call: the sanity checks a kernel makes on its call
 *     (operand counts, dtypes, ranks, buffers) with a message naming what
 *     was wrong;
 *   - em_plugin_device_info_set: fills the core's em_plugin_device_info
 *     honouring its struct_size;
 *   - tensor descriptors: element sizes, numel, contiguity, shape printing,
 *     and em_tdesc_iter, which walks up to EM_TDESC_ITER_MAX operands of
 *     the same shape in row-major order, giving each one's element offset
 *     (strides may be anything, including 0 for broadcast dims).
 *
 * Thread-safety: an em_plugin_host is written once by em_plugin_host_init
 * (from em_plugin_init, before the core calls anything else) and only read
 * afterwards, so the other functions may be called from any thread.
 * An iterator belongs to the thread that runs the kernel.
 *
 * Not for: the core (which never includes it) or application code.
 * See docs/writing-a-backend.md and plugins/example/ for a plugin using it.
 */
#ifndef EMBER_PLUGIN_UTIL_H
#define EMBER_PLUGIN_UTIL_H

#include "ember_plugin.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EM_PLUGIN_PRINTF(fmt_index, first_arg) \
    __attribute__((format(printf, fmt_index, first_arg)))
#else
#define EM_PLUGIN_PRINTF(fmt_index, first_arg)
#endif

/* The longest message em_plugin_fail / em_plugin_log pass on (longer ones
 * are cut and end in "..."). */
#define EM_PLUGIN_MESSAGE_MAX 1024

/* ------------------------------------------------------------------------ */
/* Host services                                                             */
/* ------------------------------------------------------------------------ */

/* A plugin's copy of the core's host services. Keep one per plugin (a
 * global is fine: the core initialises a plugin once per load). */
typedef struct em_plugin_host {
    em_host_services services; /* slots the core did not provide are NULL */
    const char *name;          /* the plugin's name, for log lines ("example") */
    int ready;                 /* 1 after a successful em_plugin_host_init */
} em_plugin_host;

/* Copies `host` (at most its struct_size bytes; a slot lying past that is
 * NULL) and checks its ABI major against the one this plugin was built
 * with. `name` (static storage) tags log lines. Returns EM_OK;
 * EM_ERR_NULL_ARG without host; EM_ERR_PLUGIN, with a message through
 * host->set_error, when the majors differ. Call it first thing in
 * em_plugin_init and return its status when it fails. */
static inline em_status em_plugin_host_init(em_plugin_host *h, const em_host_services *host,
                                            const char *name)
{
    if (!h) return EM_ERR_NULL_ARG;
    memset(h, 0, sizeof *h);
    h->name = name ? name : "plugin";
    if (!host) return EM_ERR_NULL_ARG;
    size_t n = host->struct_size < sizeof h->services ? host->struct_size : sizeof h->services;
    memcpy(&h->services, host, n);
    /* A slot only partly covered by struct_size is absent too. */
#define EM_PLUGIN_HOST_SLOT_(field)                                                    \
    if (n < offsetof(em_host_services, field) + sizeof h->services.field)              \
    h->services.field = NULL
    EM_PLUGIN_HOST_SLOT_(set_error);
    EM_PLUGIN_HOST_SLOT_(log);
    EM_PLUGIN_HOST_SLOT_(getenv);
#undef EM_PLUGIN_HOST_SLOT_
    h->services.struct_size = (uint32_t)n;
    if (host->abi_major != EM_PLUGIN_ABI_MAJOR) {
        if (h->services.set_error)
            h->services.set_error(EM_ERR_PLUGIN,
                                  "%s plugin: built for plugin ABI %d.%d, the core has %u.%u",
                                  h->name, EM_PLUGIN_ABI_MAJOR, EM_PLUGIN_ABI_MINOR,
                                  (unsigned)host->abi_major, (unsigned)host->abi_minor);
        return EM_ERR_PLUGIN;
    }
    h->ready = 1;
    return EM_OK;
}

/* Forgets the host (call it from the plugin's shutdown: the core's
 * services are not valid after it). */
static inline void em_plugin_host_reset(em_plugin_host *h)
{
    if (h) memset(h, 0, sizeof *h);
}

/* vsnprintf into buf, marking a cut message with "...". */
static inline void em_plugin_vformat_(char *buf, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt ? fmt : "(no message)", ap);
    if (n < 0) {
        snprintf(buf, cap, "(message could not be formatted: %s)", fmt ? fmt : "");
    } else if ((size_t)n >= cap && cap > 4) {
        memcpy(buf + cap - 4, "...", 4);
    }
}

/* Records the detail of a failure on the calling thread (the core puts the
 * op, the operands' shapes and the device in front of it) and returns
 * `status`, so a kernel can write `return em_plugin_fail(&g_host, ...)`.
 * Without a host (before init, after shutdown) it only returns status. */
static inline em_status em_plugin_vfail(const em_plugin_host *h, em_status status,
                                        const char *fmt, va_list ap)
{
    if (!h || !h->services.set_error) return status;
    char buf[EM_PLUGIN_MESSAGE_MAX];
    em_plugin_vformat_(buf, sizeof buf, fmt, ap);
    h->services.set_error(status, "%s", buf);
    return status;
}

static inline em_status em_plugin_fail(const em_plugin_host *h, em_status status,
                                       const char *fmt, ...) EM_PLUGIN_PRINTF(3, 4);
static inline em_status em_plugin_fail(const em_plugin_host *h, em_status status,
                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_status st = em_plugin_vfail(h, status, fmt, ap);
    va_end(ap);
    return st;
}

/* A log line tagged with the plugin's name; the core writes it when
 * EMBER_LOG enables `level` (em_log_level). A no-op without a host. */
static inline void em_plugin_vlog(const em_plugin_host *h, int level, const char *fmt, va_list ap)
{
    if (!h || !h->services.log) return;
    char buf[EM_PLUGIN_MESSAGE_MAX];
    em_plugin_vformat_(buf, sizeof buf, fmt, ap);
    h->services.log(level, h->name, "%s", buf);
}

static inline void em_plugin_log(const em_plugin_host *h, int level, const char *fmt, ...)
    EM_PLUGIN_PRINTF(3, 4);
static inline void em_plugin_log(const em_plugin_host *h, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_plugin_vlog(h, level, fmt, ap);
    va_end(ap);
}

/* The core's getenv (secure_getenv: NULL in set-uid programs); NULL when
 * unset or without a host. Prefer it to getenv so that every plugin obeys
 * the same rules. */
static inline const char *em_plugin_getenv(const em_plugin_host *h, const char *name)
{
    return h && h->services.getenv && name ? h->services.getenv(name) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Dtypes and descriptors                                                    */
/* ------------------------------------------------------------------------ */

/* Bytes per element of an em_dtype; 0 for a value that is not one. */
static inline size_t em_plugin_dtype_size(int dtype)
{
    switch (dtype) {
    case EM_F32: return 4;
    case EM_F64: return 8;
    case EM_F16: return 2;
    case EM_BF16: return 2;
    case EM_I32: return 4;
    case EM_I64: return 8;
    case EM_BOOL: return 1;
    default: return 0;
    }
}

/* "f32", "i64", ... ("invalid" for a value that is not a dtype). */
static inline const char *em_plugin_dtype_name(int dtype)
{
    switch (dtype) {
    case EM_F32: return "f32";
    case EM_F64: return "f64";
    case EM_F16: return "f16";
    case EM_BF16: return "bf16";
    case EM_I32: return "i32";
    case EM_I64: return "i64";
    case EM_BOOL: return "bool";
    default: return "invalid";
    }
}

/* Number of elements (1 for a 0-d tensor). */
static inline int64_t em_tdesc_numel(const em_tdesc *d)
{
    int64_t n = 1;
    for (int k = 0; k < d->ndim; k++) n *= d->shape[k];
    return n;
}

/* Whether the elements are dense and row-major from `offset` on (the
 * strides of dims of size 1 do not matter). */
static inline int em_tdesc_is_contiguous(const em_tdesc *d)
{
    int64_t expect = 1;
    for (int k = d->ndim - 1; k >= 0; k--) {
        if (d->shape[k] != 1 && d->strides[k] != expect) return 0;
        expect *= d->shape[k];
    }
    return 1;
}

/* Whether a and b have the same rank and sizes. */
static inline int em_tdesc_same_shape(const em_tdesc *a, const em_tdesc *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k]) return 0;
    return 1;
}

/* Writes "[2, 3]" (or "[]" for 0-d) into buf; returns buf. */
static inline const char *em_tdesc_shape_str(const em_tdesc *d, char *buf, size_t cap)
{
    if (!buf || cap == 0) return "";
    size_t n = 0;
    buf[0] = '\0';
    int w = snprintf(buf, cap, "[");
    n = w > 0 ? (size_t)w : 0;
    for (int k = 0; k < d->ndim && n < cap; k++) {
        w = snprintf(buf + n, cap - n, k ? ", %lld" : "%lld", (long long)d->shape[k]);
        if (w < 0) break;
        n += (size_t)w;
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* The checks a kernel makes on its call before touching memory. Returns
 * EM_OK, or EM_ERR_NULL_ARG / EM_ERR_INVALID_ARG after em_plugin_fail
 * naming the op, what was expected and what came. The core never makes
 * such a call; these catch a registry row pointing at the wrong function. */
static inline em_status em_plugin_check_call(const em_plugin_host *h, const em_op_call *c,
                                             int min_in, int max_in, int n_out)
{
    const char *name = h && h->name ? h->name : "plugin";
    if (!c) return em_plugin_fail(h, EM_ERR_NULL_ARG, "%s: kernel called without a call", name);
    if (!c->params)
        return em_plugin_fail(h, EM_ERR_NULL_ARG, "%s: op %d called without parameters", name,
                              (int)c->op);
    if (c->n_in < min_in || c->n_in > max_in || c->n_out != n_out || (c->n_in > 0 && !c->in) ||
        (c->n_out > 0 && !c->out))
        return em_plugin_fail(h, EM_ERR_INVALID_ARG,
                              "%s: op %d got %d inputs and %d outputs (expects %d..%d inputs and "
                              "%d outputs)",
                              name, (int)c->op, (int)c->n_in, (int)c->n_out, min_in, max_in, n_out);
    for (int i = 0; i < c->n_in + c->n_out; i++) {
        const em_tdesc *d = i < c->n_in ? &c->in[i] : &c->out[i - c->n_in];
        if (em_plugin_dtype_size(d->dtype) == 0 || d->ndim < 0 || d->ndim > EM_MAX_DIMS ||
            !d->buffer || d->offset < 0)
            return em_plugin_fail(h, EM_ERR_INVALID_ARG,
                                  "%s: op %d: %s %d has dtype %d, %d dims, offset %lld, buffer %p",
                                  name, (int)c->op, i < c->n_in ? "input" : "output",
                                  i < c->n_in ? i : i - c->n_in, (int)d->dtype, (int)d->ndim,
                                  (long long)d->offset, d->buffer);
    }
    return EM_OK;
}

/* Copies the plugin's description of a device into the core's `info`,
 * writing no more than info->struct_size bytes (an older core has a
 * smaller struct) and keeping that struct_size. */
static inline void em_plugin_device_info_set(em_plugin_device_info *info,
                                             const em_plugin_device_info *mine)
{
    uint32_t size = info->struct_size;
    size_t n = size == 0 || size > sizeof *mine ? sizeof *mine : size;
    memcpy(info, mine, n);
    info->struct_size = size;
}

/* ------------------------------------------------------------------------ */
/* Walking several operands of one shape                                     */
/* ------------------------------------------------------------------------ */

#define EM_TDESC_ITER_MAX 4

/* Row-major iteration over the shape of operand 0, with every operand's
 * element offset (its descriptor's offset included) kept up to date:
 *
 *     const em_tdesc *ops[3] = {out, a, b};   // same shape (the core
 *     em_tdesc_iter it;                       // broadcast a and b)
 *     if (em_tdesc_iter_begin(&it, 3, ops)) do {
 *         o[it.offset[0]] = x[it.offset[1]] + y[it.offset[2]];
 *     } while (em_tdesc_iter_next(&it));
 *
 * Operands other than 0 must have its rank and sizes (em_tdesc_same_shape);
 * their strides may differ (0 = broadcast). A reduction can walk the
 * input's shape with an output descriptor whose reduced dims get the
 * input's size and stride 0 (see plugins/example). */
typedef struct em_tdesc_iter {
    int n;                                      /* operands                       */
    int ndim;
    int64_t remaining;                          /* elements left, current included */
    int64_t shape[EM_MAX_DIMS];
    int64_t index[EM_MAX_DIMS];                 /* the current multi-index          */
    int64_t strides[EM_TDESC_ITER_MAX][EM_MAX_DIMS];
    int64_t offset[EM_TDESC_ITER_MAX];          /* current element of each operand  */
} em_tdesc_iter;

/* Starts at element 0. Returns 1, or 0 when there is nothing to visit
 * (no element, more than EM_TDESC_ITER_MAX operands, a bad rank). */
static inline int em_tdesc_iter_begin(em_tdesc_iter *it, int n, const em_tdesc *const *ops)
{
    memset(it, 0, sizeof *it);
    if (n < 1 || n > EM_TDESC_ITER_MAX || ops[0]->ndim < 0 || ops[0]->ndim > EM_MAX_DIMS)
        return 0;
    it->n = n;
    it->ndim = ops[0]->ndim;
    it->remaining = 1;
    for (int d = 0; d < it->ndim; d++) {
        it->shape[d] = ops[0]->shape[d];
        it->remaining *= it->shape[d];
    }
    for (int k = 0; k < n; k++) {
        it->offset[k] = ops[k]->offset;
        for (int d = 0; d < it->ndim; d++) it->strides[k][d] = ops[k]->strides[d];
    }
    return it->remaining > 0;
}

/* Moves to the next element. Returns 1, or 0 after the last one. */
static inline int em_tdesc_iter_next(em_tdesc_iter *it)
{
    if (--it->remaining <= 0) return 0;
    for (int d = it->ndim - 1; d >= 0; d--) {
        if (++it->index[d] < it->shape[d]) {
            for (int k = 0; k < it->n; k++) it->offset[k] += it->strides[k][d];
            return 1;
        }
        it->index[d] = 0;
        for (int k = 0; k < it->n; k++) it->offset[k] -= it->strides[k][d] * (it->shape[d] - 1);
    }
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* EMBER_PLUGIN_UTIL_H */
