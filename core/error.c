/*
 * error.c — the thread-local error state: em_status strings, the pending
 * status and its message, and the helpers the core and plugins use to set
 * them. Not for logging (log.c) or for deciding what is an error (the ops).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EM_ERROR_CAP 2048

static _Thread_local em_status tl_status = EM_OK;
static _Thread_local char tl_message[EM_ERROR_CAP];
static _Thread_local unsigned tl_serial;

unsigned em__error_serial(void) { return tl_serial; }

const char *em_status_str(em_status status)
{
    switch (status) {
    case EM_OK: return "EM_OK: success";
    case EM_ERR_INVALID_ARG: return "EM_ERR_INVALID_ARG: invalid argument";
    case EM_ERR_NULL_ARG: return "EM_ERR_NULL_ARG: NULL argument";
    case EM_ERR_SHAPE: return "EM_ERR_SHAPE: shape mismatch";
    case EM_ERR_DTYPE: return "EM_ERR_DTYPE: dtype not supported";
    case EM_ERR_DEVICE: return "EM_ERR_DEVICE: device mismatch or bad device";
    case EM_ERR_OUT_OF_MEMORY: return "EM_ERR_OUT_OF_MEMORY: out of memory";
    case EM_ERR_UNSUPPORTED: return "EM_ERR_UNSUPPORTED: no backend can run this";
    case EM_ERR_BACKEND: return "EM_ERR_BACKEND: backend failure";
    case EM_ERR_PLUGIN: return "EM_ERR_PLUGIN: plugin could not be used";
    case EM_ERR_IO: return "EM_ERR_IO: input/output error";
    case EM_ERR_INDEX: return "EM_ERR_INDEX: index out of range";
    case EM_ERR_STATE: return "EM_ERR_STATE: call not valid in this state";
    case EM_ERR_INTERNAL: return "EM_ERR_INTERNAL: internal error (a bug in Ember)";
    }
    return "EM_ERR_UNKNOWN: unknown status";
}

em_status em_last_status(void) { return tl_status; }

const char *em_last_error(void) { return tl_message; }

void em_clear_error(void)
{
    tl_status = EM_OK;
    tl_message[0] = '\0';
}

static em_status set_message_v(em_status status, const char *fmt, va_list ap)
{
    tl_status = status;
    tl_serial++;
    vsnprintf(tl_message, sizeof tl_message, fmt, ap);
    return status;
}

em_status em__fail(em_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message_v(status, fmt, ap);
    va_end(ap);
    return status;
}

em_status em__plugin_set_error(em_status status, const char *fmt, ...)
{
    if (status == EM_OK) status = EM_ERR_BACKEND; /* a plugin reporting "OK" as an error */
    va_list ap;
    va_start(ap, fmt);
    set_message_v(status, fmt, ap);
    va_end(ap);
    return status;
}

em_status em__null_arg(const char *op, const char *arg)
{
    if (tl_status == EM_OK)
        em__fail(EM_ERR_NULL_ARG, "%s: argument '%s' is NULL", op, arg);
    return EM_ERR_NULL_ARG;
}

void em__error_prefix(const char *fmt, ...)
{
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    size_t plen = strlen(prefix);
    size_t mlen = strnlen(tl_message, sizeof tl_message - 1);
    if (plen + mlen > sizeof tl_message - 1) mlen = sizeof tl_message - 1 - plen;
    memmove(tl_message + plen, tl_message, mlen);
    memcpy(tl_message, prefix, plen);
    tl_message[plen + mlen] = '\0';
}
