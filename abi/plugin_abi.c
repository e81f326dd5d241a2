/*
 * plugin_abi.c — makes the plugin ABI of ember_plugin.h visible to
 * libabigail. Built as a small shared object (never installed, never
 * loaded by Ember) whose one exported function takes every table, struct
 * and enum a plugin and the core exchange; abidw records their layouts
 * from its debug info into abi/plugin.abi, and the sdk_abi test compares
 * each build against that record (see abi/README.md).
 *
 * The core's own exported functions do not reach these types (the loader
 * uses them internally), which is why libember.abi alone would miss them.
 * Not for: anything at run time.
 */
#include "ember_plugin.h"

/* Every type of the plugin ABI, reachable from one signature:
 * em_backend_table -> em_kernel_entry -> em_kernel_fn -> em_op_call ->
 * em_tdesc, em_op_params; device_info -> em_plugin_device_info;
 * em_host_services; the em_op and em_log_level enums (their enumerator
 * values are part of the ABI); em_plugin_init_fn. */
EM_PLUGIN_EXPORT int em_plugin_abi_record(const em_backend_table *table,
                                          const em_host_services *host,
                                          const em_op_call *call,
                                          const em_plugin_device_info *info, em_op op,
                                          em_log_level level, em_plugin_init_fn init);

EM_PLUGIN_EXPORT int em_plugin_abi_record(const em_backend_table *table,
                                          const em_host_services *host,
                                          const em_op_call *call,
                                          const em_plugin_device_info *info, em_op op,
                                          em_log_level level, em_plugin_init_fn init)
{
    return (table != 0) + (host != 0) + (call != 0) + (info != 0) + (int)op + (int)level +
           (init != 0);
}
