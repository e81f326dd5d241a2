/*
 * format.c — rendering tensors as text (em_tensor_format, em_tensor_print)
 * and the version queries. Reads values through em_tensor_read_f64, so it
 * works for every device and dtype.
 */
#include "internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define EM_STR2(x) #x
#define EM_STR(x) EM_STR2(x)

const char *em_version(void)
{
    return EM_STR(EM_VERSION_MAJOR) "." EM_STR(EM_VERSION_MINOR) "." EM_STR(EM_VERSION_PATCH);
}

int em_version_number(void) { return EM_VERSION_NUMBER; }

#define EM_FORMAT_EDGE 3    /* per dim, elements shown at each end when eliding */
#define EM_FORMAT_MAX 1000  /* elide when numel exceeds this                     */

typedef struct out_buf {
    char *buf;
    size_t cap, len; /* len counts every byte wanted, even past cap */
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void put(out_buf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

static void put_value(out_buf *o, double v, em_dtype dtype)
{
    if (dtype == EM_BOOL) put(o, v != 0 ? "true" : "false");
    else if (!em_dtype_is_float(dtype)) put(o, "%" PRId64, (int64_t)v);
    else if (isnan(v)) put(o, "nan");
    else if (isinf(v)) put(o, v > 0 ? "inf" : "-inf");
    else if (v == trunc(v) && fabs(v) < 1e9) put(o, "%.0f.", v); /* 1. as PyTorch prints */
    else put(o, "%.4g", v);
}

static void put_dim(out_buf *o, const em_tensor *t, const double *vals, int dim, int64_t base,
                    int indent, bool elide)
{
    if (dim == t->ndim) {
        put_value(o, vals[base], t->dtype);
        return;
    }
    int64_t n = t->shape[dim], stride = 1;
    for (int i = dim + 1; i < t->ndim; i++) stride *= t->shape[i];
    put(o, "[");
    for (int64_t i = 0; i < n; i++) {
        if (elide && n > 2 * EM_FORMAT_EDGE && i == EM_FORMAT_EDGE) {
            put(o, "...");
            i = n - EM_FORMAT_EDGE - 1;
            put(o, dim == t->ndim - 1 ? ", " : ",\n%*s", dim == t->ndim - 1 ? 0 : indent + 1, "");
            continue;
        }
        put_dim(o, t, vals, dim + 1, base + i * stride, indent + 1, elide);
        if (i + 1 < n) {
            if (dim == t->ndim - 1) put(o, ", ");
            else put(o, ",\n%*s", indent + 1, "");
        }
    }
    put(o, "]");
}

int em_tensor_format(const em_tensor *t, char *buf, size_t cap)
{
    out_buf o = {buf, buf ? cap : 0, 0};
    if (cap && buf) buf[0] = '\0';
    if (!t) {
        put(&o, "NULL");
        return (int)o.len;
    }
    double *vals = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *vals);
    if (!vals || em_tensor_read_f64(t, vals, (size_t)t->numel) != EM_OK) {
        free(vals);
        put(&o, "<unreadable tensor: %s>", em_last_error());
        return (int)o.len;
    }
    put(&o, "tensor(");
    put_dim(&o, t, vals, 0, 0, 7, t->numel > EM_FORMAT_MAX);
    char shape[160];
    put(&o, ", dtype=%s, shape=%s, device=%s)", em_dtype_name(t->dtype),
        em__shape_str(t->ndim, t->shape, shape, sizeof shape), t->storage->device->name);
    free(vals);
    return (int)o.len;
}

void em_tensor_print(const em_tensor *t)
{
    int n = em_tensor_format(t, NULL, 0);
    char *s = malloc((size_t)n + 1);
    if (!s) return;
    em_tensor_format(t, s, (size_t)n + 1);
    puts(s);
    free(s);
}
