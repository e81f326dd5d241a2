/*
 * nn_util.c — the small formatting helpers of nn_internal.h, shared by the
 * modules, losses, optimizers and schedules.
 */
#include "nn_internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *em__nn_describe(const em_tensor *t, char *buf, size_t cap)
{
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(t, shape);
    size_t n = (size_t)snprintf(buf, cap, "%s[", em_dtype_name(em_tensor_dtype(t)));
    for (int i = 0; i < nd && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

em_status em__nn_set_meta_f(em_tensor_dict *d, const char *key, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return em_tensor_dict_set_meta(d, key, buf);
}
