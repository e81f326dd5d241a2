/*
 * bad_plugin.c — broken plugins the loader must refuse, one per BAD_KIND:
 *   BAD_ABI      libember-abi99.so:    a table of plugin ABI 99.0
 *   BAD_NOENTRY  libember-noentry.so:  no em_plugin_init symbol at all
 *   BAD_INITFAIL libember-initfail.so: init fails with a message
 *   BAD_SMALL    libember-small.so:    struct_size stops before kernels
 *   BAD_NULLFN   libember-nullfn.so:   a required slot (device_open) is NULL
 * Every function that a refused plugin must never reach exits the process
 * with status 98, so a loader that calls into a bad table fails its test.
 */
#include "ember_plugin.h"

#include <stdio.h>
#include <stdlib.h>

#define NEVER(ret)                                                                  \
    do {                                                                            \
        fprintf(stderr, "bad plugin: %s called on a table the core must refuse\n", \
                __func__);                                                          \
        _Exit(98);                                                                  \
        return ret;                                                                 \
    } while (0)

static int never_count(void) { NEVER(0); }
static em_status never_info(int i, em_plugin_device_info *info) { NEVER(EM_ERR_INTERNAL); }
__attribute__((unused)) static em_status never_open(int i, void **dev) { NEVER(EM_ERR_INTERNAL); }
static void never_close(void *dev) { NEVER(); }
static em_status never_alloc(void *dev, size_t n, void **b) { NEVER(EM_ERR_INTERNAL); }
static void never_free(void *dev, void *b) { NEVER(); }
static em_status never_up(void *dev, void *b, size_t o, const void *s, size_t n) { NEVER(EM_ERR_INTERNAL); }
static em_status never_down(void *dev, void *b, size_t o, void *d, size_t n) { NEVER(EM_ERR_INTERNAL); }
static em_status never_copy(void *dev, void *s, size_t so, void *d, size_t dof, size_t n) { NEVER(EM_ERR_INTERNAL); }
static em_status never_sync(void *dev) { NEVER(EM_ERR_INTERNAL); }
#if defined(BAD_ABI) || defined(BAD_SMALL)
static void never_shutdown(void) { NEVER(); }
#endif

static int shutdowns; /* BAD_NULLFN: shutdown is allowed (same ABI) */
__attribute__((unused)) static void count_shutdown(void) { shutdowns++; }

__attribute__((unused)) static const em_backend_table bad_table = {
#if defined(BAD_ABI)
    .abi_major = 99,
    .abi_minor = 0,
    .struct_size = sizeof(em_backend_table) + 64,
    .name = "abi99",
    .shutdown = never_shutdown,
#elif defined(BAD_SMALL)
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = offsetof(em_backend_table, kernels),
    .name = "small",
    .shutdown = never_shutdown,
#elif defined(BAD_NULLFN)
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = sizeof(em_backend_table),
    .name = "nullfn",
    .shutdown = count_shutdown,
#else
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .struct_size = sizeof(em_backend_table),
    .name = "bad",
#endif
    .version = "0.0.0-bad",
    .device_count = never_count,
    .device_info = never_info,
#if !defined(BAD_NULLFN)
    .device_open = never_open,
#endif
    .device_close = never_close,
    .buffer_alloc = never_alloc,
    .buffer_free = never_free,
    .buffer_upload = never_up,
    .buffer_download = never_down,
    .buffer_copy = never_copy,
    .synchronize = never_sync,
};

#if defined(BAD_NOENTRY)
/* A misspelt entry point: the loader must not find it. */
EM_PLUGIN_EXPORT em_status em_plugin_initialise(const em_host_services *h,
                                                const em_backend_table **table)
{
    *table = &bad_table;
    return EM_OK;
}
#else
EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *h, const em_backend_table **table)
{
#if defined(BAD_INITFAIL)
    return h->set_error(EM_ERR_BACKEND, "initfail: simulated driver failure (code 42)");
#else
    *table = &bad_table;
    return EM_OK;
#endif
}
#endif
