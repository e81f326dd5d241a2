/*
 * log.c — Ember's diagnostic log: the EMBER_LOG level and em__log, which
 * writes "[ember] level: message" lines to stderr.
 * Not for errors returned to the caller (error.c) and not for plugins' own
 * log lines, which reach here through the host services (loader.c).
 *
 * EMBER_LOG = error | warn | info | debug (case-insensitive; default warn).
 * The variable is read on first use and again by em__log_reload (called at
 * every em_init), so a program may set it before initialising. A bad value
 * is reported once, at WARN, and the default is used.
 */
#define _GNU_SOURCE /* secure_getenv */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EM_LOG_DEFAULT EM_LOG_WARN
#define EM_LOG_UNSET (-100)

static atomic_int g_level = EM_LOG_UNSET;
static atomic_bool g_bad_value_reported;
static pthread_mutex_t g_reload_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_name(int level)
{
    switch (level) {
    case EM_LOG_ERROR: return "error";
    case EM_LOG_WARN: return "warn";
    case EM_LOG_INFO: return "info";
    case EM_LOG_DEBUG: return "debug";
    }
    return "log";
}

/* Parses EMBER_LOG; *bad receives the value when it is not recognised. */
static int parse_level(const char **bad)
{
    const char *v = secure_getenv("EMBER_LOG");
    *bad = NULL;
    if (!v || !*v) return EM_LOG_DEFAULT;
    if (!strcasecmp(v, "error")) return EM_LOG_ERROR;
    if (!strcasecmp(v, "warn") || !strcasecmp(v, "warning")) return EM_LOG_WARN;
    if (!strcasecmp(v, "info")) return EM_LOG_INFO;
    if (!strcasecmp(v, "debug")) return EM_LOG_DEBUG;
    *bad = v;
    return EM_LOG_DEFAULT;
}

void em__log_reload(void)
{
    pthread_mutex_lock(&g_reload_lock);
    const char *bad;
    int level = parse_level(&bad);
    atomic_store(&g_level, level);
    pthread_mutex_unlock(&g_reload_lock);
    if (bad && !atomic_exchange(&g_bad_value_reported, true))
        em__log(EM_LOG_WARN, "EMBER_LOG='%s' is not one of error, warn, info, debug; using warn",
                bad);
}

static int current_level(void)
{
    int level = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (level == EM_LOG_UNSET) {
        em__log_reload();
        level = atomic_load(&g_level);
    }
    return level;
}

bool em__log_enabled(int level)
{
    return level <= current_level();
}

/* Formats one line and writes it with a single call, so that lines from
 * several threads do not interleave. `plugin` may be NULL. */
static void log_line(int level, const char *plugin, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "[ember] %s: %s%s", level_name(level),
                     plugin ? plugin : "", plugin ? ": " : "");
    if (n < 0) return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    if (m < 0) return;
    used += (size_t)m;
    if (used > sizeof line - 2) used = sizeof line - 2; /* truncated: keep room for '\n' */
    line[used++] = '\n';
    fwrite(line, 1, used, stderr);
    fflush(stderr);
}

void em__log(int level, const char *fmt, ...)
{
    if (!em__log_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, NULL, fmt, ap);
    va_end(ap);
}

void em__log_plugin_v(int level, const char *plugin, const char *fmt, va_list ap)
{
    if (level < EM_LOG_ERROR) level = EM_LOG_ERROR;
    if (!fmt || !em__log_enabled(level)) return;
    log_line(level, plugin && *plugin ? plugin : "plugin", fmt, ap);
}
