/*
 * old_minor_plugin.c — the example plugin as if it had been built against
 * an older minor of the plugin ABI (1.0): its backend table reports
 * abi_minor 0 and a struct_size that ends after kernel_count, the smallest
 * table the core accepts (supports, reason and shutdown came later).
 *
 * Built together with the example's two source files, whose entry point is renamed
 * to example_full_init by a compile definition (tests/sdk/CMakeLists.txt).
 * The table handed to the core is a copy of the example's with the short
 * size. Its tail is filled with traps: a core that read past struct_size
 * would call supports() (which declines every call, so the example's ops
 * would fall back and sdk_forward would fail), reason() or shutdown()
 * (which print "TRAP" lines the test fails on). Its version string,
 * "old-minor-1.0", lets sdk_forward check that this copy was loaded.
 *
 * Not for: anything but the sdk_old_minor test.
 */
#undef em_plugin_init /* the definition below is the real entry point */
#include "ember_plugin.h"

#include <stddef.h>
#include <stdio.h>

em_status example_full_init(const em_host_services *host, const em_backend_table **table);

static em_backend_table g_old;

static int trap_supports(void *dev, const em_op_call *call)
{
    fprintf(stderr, "TRAP: the core called supports() past the table's struct_size\n");
    return 0;
}

static const char *trap_reason(void)
{
    fprintf(stderr, "TRAP: the core called reason() past the table's struct_size\n");
    return "trap";
}

static void trap_shutdown(void)
{
    fprintf(stderr, "TRAP: the core called shutdown() past the table's struct_size\n");
}

EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *host,
                                          const em_backend_table **table)
{
    const em_backend_table *full = NULL;
    em_status st = example_full_init(host, &full);
    if (st != EM_OK) return st;
    g_old = *full;
    g_old.abi_minor = 0;
    g_old.struct_size = (uint32_t)(offsetof(em_backend_table, kernel_count) + sizeof(size_t));
    g_old.version = "old-minor-1.0";
    g_old.supports = trap_supports;
    g_old.reason = trap_reason;
    g_old.shutdown = trap_shutdown;
    *table = &g_old;
    return EM_OK;
}
