/*
 * device.c — the em_device_* API: the device list, the default and CPU
 * devices, properties, synchronisation, and the ranking that automatic
 * selection uses. The list itself is built by the loader (loader.c), which
 * also holds the one parser of device specs shared by EMBER_BACKEND and
 * em_device_find.
 * Not for loading plugins (loader.c) or for moving data (tensor.c, ops).
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *em_device_type_name(em_device_type type)
{
    switch (type) {
    case EM_DEVICE_CPU: return "cpu";
    case EM_DEVICE_GPU: return "gpu";
    case EM_DEVICE_INTEGRATED_GPU: return "integrated-gpu";
    case EM_DEVICE_SOFTWARE: return "software";
    case EM_DEVICE_OTHER: return "other";
    }
    return "unknown";
}

/* Discrete GPU > integrated GPU > CPU. Below the CPU, and so only used when
 * named: accelerators of an unknown kind (Ember cannot tell they are faster)
 * and software emulation (lavapipe and friends are slower than the CPU
 * backend). */
int em__device_rank(int type)
{
    switch (type) {
    case EM_DEVICE_GPU: return 4;
    case EM_DEVICE_INTEGRATED_GPU: return 3;
    case EM_DEVICE_CPU: return 2;
    case EM_DEVICE_OTHER: return 1;
    case EM_DEVICE_SOFTWARE: return 0;
    }
    return -1;
}

int em_device_count(void) { return em__device_list_count(); }

em_device *em_device_get(int i)
{
    em_device *d = em__device_list_get(i);
    if (!d) {
        int n = em__device_list_count();
        em__fail(EM_ERR_INDEX, "em_device_get: index %d is out of range (%d device%s)", i, n,
                 n == 1 ? "" : "s");
    }
    return d;
}

em_device *em__cpu_device(void)
{
    em_device *d = em__loader_cpu();
    if (!d)
        em__fail(EM_ERR_PLUGIN, "there is no CPU device: the CPU plugin libember-cpu.so was not "
                 "found or was refused (see em_plugin_rejected, or run ember-info)");
    return d;
}

em_device *em__default_device(void) { return em__loader_default(); }

em_device *em_device_default(void) { return em__default_device(); }

em_device *em_device_cpu(void) { return em__cpu_device(); }

em_device *em_device_find(const char *spec)
{
    if (!spec) {
        em__null_arg("em_device_find", "spec");
        return NULL;
    }
    return em__resolve_device(spec, "em_device_find", true);
}

const char *em_device_name(const em_device *device)
{
    if (!device) {
        em__null_arg("em_device_name", "device");
        return NULL;
    }
    return device->name;
}

em_status em_device_properties(const em_device *device, em_device_props *props)
{
    if (!device) return em__null_arg("em_device_properties", "device");
    if (!props) return em__null_arg("em_device_properties", "props");
    if (props->struct_size < sizeof props->struct_size)
        return em__fail(EM_ERR_INVALID_ARG, "em_device_properties: props->struct_size is %zu; set "
                        "it to sizeof(em_device_props) (%zu)", props->struct_size,
                        sizeof(em_device_props));
    em_device_props full;
    memset(&full, 0, sizeof full);
    snprintf(full.name, sizeof full.name, "%s", device->info.name);
    snprintf(full.backend, sizeof full.backend, "%.31s", device->backend->name); /* names are < 32 */
    snprintf(full.description, sizeof full.description, "%s", device->info.description);
    full.type = (em_device_type)device->info.type;
    full.index = device->index;
    full.memory_bytes = device->info.memory_bytes;
    full.dtype_mask = device->info.dtype_mask;
    /* fields past the caller's struct_size are left untouched */
    size_t n = props->struct_size < sizeof full ? props->struct_size : sizeof full;
    size_t keep = props->struct_size;
    memcpy(props, &full, n);
    props->struct_size = keep;
    return EM_OK;
}

em_status em_device_synchronize(em_device *device)
{
    if (!device) return em__null_arg("em_device_synchronize", "device");
    unsigned serial = em__error_serial();
    em__device_lock(&device->lock);
    em_status st = device->backend->table.synchronize(device->ctx);
    em__device_unlock(&device->lock);
    if (st == EM_OK) return EM_OK;
    if (em__error_serial() == serial)
        return em__fail(st, "em_device_synchronize(%s): the backend failed without a message",
                        device->name);
    em__error_prefix("em_device_synchronize(%s): ", device->name);
    return em_last_status();
}
