/*
 * vk_plugin.c — the Vulkan backend's plugin face: em_plugin_init, the
 * instance (Vulkan 1.2), physical devices and their properties, the
 * validation layer's messenger, the backend table.
 *
 * Validation: with EMBER_VULKAN_VALIDATION=1 the instance enables
 * VK_LAYER_KHRONOS_validation and a debug-utils messenger that records every
 * warning and error. Every table call checks that record first and every
 * kernel checks it after recording, so a validation message fails the
 * current op (or the next call) with EM_ERR_BACKEND and the message.
 * EMBER_VULKAN_SELFTEST=invalid-call (tests only) makes the first kernel of a
 * device issue one invalid call (vk_enter in vk_ops.c), which the layer must
 * report: tests/vulkan/test_vulkan.c's "validation" scenario fails if it is
 * silenced.
 *
 * The logical device is created on first use (vk_device_ready), not in
 * device_open: every program that loads the plugins opens every device, and
 * most never touch a software Vulkan device.
 */
#define _GNU_SOURCE
#include "vk_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The core's services (ember_plugin_util.h: slots past its struct_size are NULL). */
static em_plugin_host g_host;
VkInstance vk_instance = VK_NULL_HANDLE;
static VkDebugUtilsMessengerEXT g_messenger = VK_NULL_HANDLE;
static int g_validation;
static VkPhysicalDevice *g_phys;
static uint32_t g_nphys;
static char g_reason[256];

/* ---------------- errors and logs ----------------------------------------- */

em_status vk_fail(em_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_plugin_vfail(&g_host, status, fmt, ap);
    va_end(ap);
    return status;
}

void vk_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_plugin_vlog(&g_host, level, fmt, ap);
    va_end(ap);
}

const char *vk_getenv(const char *name)
{
    return em_plugin_getenv(&g_host, name);
}

const char *vk_result_name(VkResult r)
{
    switch (r) {
#define R(x) case x: return #x;
    R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_INCOMPLETE)
    R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED)
    R(VK_ERROR_LAYER_NOT_PRESENT) R(VK_ERROR_EXTENSION_NOT_PRESENT)
    R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER) R(VK_ERROR_TOO_MANY_OBJECTS)
    R(VK_ERROR_FORMAT_NOT_SUPPORTED) R(VK_ERROR_FRAGMENTED_POOL) R(VK_ERROR_UNKNOWN)
    R(VK_ERROR_OUT_OF_POOL_MEMORY) R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    R(VK_ERROR_FRAGMENTATION) R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
#undef R
    default: return "VkResult(unknown)";
    }
}

em_status vk_fail_result(vk_device *d, VkResult r, const char *call)
{
    em_status st = EM_ERR_BACKEND;
    const char *what = "";
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
        st = EM_ERR_OUT_OF_MEMORY;
        what = r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? " (out of device memory)"
                                                   : " (out of host memory)";
    } else if (r == VK_ERROR_DEVICE_LOST) {
        if (d) d->lost = 1;
        what = " (device lost: this device is unusable until restart)";
    }
    /* A validation message explaining the failure is worth more than the code. */
    em_status vs = vk_check_validation();
    if (vs != EM_OK) return vs;
    return vk_fail(st, "vulkan: %s failed: %s (%d)%s", call, vk_result_name(r), (int)r, what);
}

/* ---------------- validation messages ------------------------------------- */

static pthread_mutex_t g_val_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned g_val_pending; /* messages since the last check */
static char g_val_first[700];

static VKAPI_ATTR VkBool32 VKAPI_CALL
messenger_cb(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
             VkDebugUtilsMessageTypeFlagsEXT types, const VkDebugUtilsMessengerCallbackDataEXT *data,
             void *user)
{
    (void)types;
    (void)user;
    const char *msg = data && data->pMessage ? data->pMessage : "(no message)";
    pthread_mutex_lock(&g_val_lock);
    if (g_val_pending++ == 0)
        snprintf(g_val_first, sizeof g_val_first, "%s: %s",
                 severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
                 msg);
    pthread_mutex_unlock(&g_val_lock);
    vk_log(EM_LOG_ERROR, "validation: %s", msg);
    return VK_FALSE;
}

em_status vk_check_validation(void)
{
    if (!g_validation) return EM_OK;
    pthread_mutex_lock(&g_val_lock);
    unsigned n = g_val_pending;
    char first[700];
    memcpy(first, g_val_first, sizeof first);
    g_val_pending = 0;
    pthread_mutex_unlock(&g_val_lock);
    if (n == 0) return EM_OK;
    return vk_fail(EM_ERR_BACKEND, "vulkan validation layer reported %u message%s; first: %s", n,
                   n == 1 ? "" : "s", first);
}

/* ---------------- instance ------------------------------------------------ */

static int layer_present(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkLayerProperties *p = calloc(n, sizeof *p);
    if (!p) return 0;
    int found = 0;
    if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= !strcmp(p[i].layerName, name);
    free(p);
    return found;
}

static void destroy_instance(void)
{
    if (g_messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT f = (PFN_vkDestroyDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(vk_instance, "vkDestroyDebugUtilsMessengerEXT");
        if (f) f(vk_instance, g_messenger, NULL);
        g_messenger = VK_NULL_HANDLE;
    }
    if (vk_instance) vkDestroyInstance(vk_instance, NULL);
    vk_instance = VK_NULL_HANDLE;
    free(g_phys);
    g_phys = NULL;
    g_nphys = 0;
}

static em_status create_instance(void)
{
    const char *env = em_plugin_getenv(&g_host, "EMBER_VULKAN_VALIDATION");
    g_validation = env && *env && strcmp(env, "0") != 0;
    static const char *const layer = "VK_LAYER_KHRONOS_validation";
    if (g_validation && !layer_present(layer)) {
        snprintf(g_reason, sizeof g_reason,
                 "EMBER_VULKAN_VALIDATION is set but %s is not installed "
                 "(Debian: vulkan-validationlayers)", layer);
        return vk_fail(EM_ERR_PLUGIN, "vulkan: %s", g_reason);
    }
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "ember",
                             .pEngineName = "ember",
                             .apiVersion = VK_API_VERSION_1_2};
    const char *ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    VkDebugUtilsMessengerCreateInfoEXT mci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = messenger_cb};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                .pNext = g_validation ? &mci : NULL,
                                .pApplicationInfo = &app,
                                .enabledLayerCount = g_validation ? 1 : 0,
                                .ppEnabledLayerNames = g_validation ? &layer : NULL,
                                .enabledExtensionCount = g_validation ? 1 : 0,
                                .ppEnabledExtensionNames = g_validation ? &ext : NULL};
    VkResult r = vkCreateInstance(&ici, NULL, &vk_instance);
    if (r != VK_SUCCESS) {
        vk_instance = VK_NULL_HANDLE;
        snprintf(g_reason, sizeof g_reason, "vkCreateInstance(Vulkan 1.2) failed: %s%s",
                 vk_result_name(r),
                 r == VK_ERROR_INCOMPATIBLE_DRIVER ? " (no Vulkan 1.2 driver installed)" : "");
        return vk_fail(EM_ERR_PLUGIN, "vulkan: %s", g_reason);
    }
    if (g_validation) {
        PFN_vkCreateDebugUtilsMessengerEXT f = (PFN_vkCreateDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(vk_instance, "vkCreateDebugUtilsMessengerEXT");
        if (!f || f(vk_instance, &mci, NULL, &g_messenger) != VK_SUCCESS) {
            destroy_instance();
            snprintf(g_reason, sizeof g_reason, "cannot create the debug-utils messenger");
            return vk_fail(EM_ERR_PLUGIN, "vulkan: %s", g_reason);
        }
    }
    uint32_t n = 0;
    r = vkEnumeratePhysicalDevices(vk_instance, &n, NULL);
    if (r == VK_SUCCESS && n > 0) {
        g_phys = calloc(n, sizeof *g_phys);
        if (!g_phys) r = VK_ERROR_OUT_OF_HOST_MEMORY;
        else r = vkEnumeratePhysicalDevices(vk_instance, &n, g_phys);
        if (r == VK_INCOMPLETE) r = VK_SUCCESS;
    }
    if (r != VK_SUCCESS || n == 0) {
        if (r != VK_SUCCESS)
            snprintf(g_reason, sizeof g_reason,
                     "vkEnumeratePhysicalDevices failed: %s (is a Vulkan driver installed? "
                     "Debian: mesa-vulkan-drivers)", vk_result_name(r));
        else
            snprintf(g_reason, sizeof g_reason,
                     "vkEnumeratePhysicalDevices found no device (no Vulkan driver? "
                     "Debian: mesa-vulkan-drivers)");
        destroy_instance();
        return vk_fail(EM_ERR_PLUGIN, "vulkan: %s", g_reason);
    }
    /* Keep only Vulkan 1.2 devices. */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(g_phys[i], &p);
        if (p.apiVersion >= VK_API_VERSION_1_2) g_phys[kept++] = g_phys[i];
        else vk_log(EM_LOG_INFO, "skipping %s: Vulkan %u.%u < 1.2", p.deviceName,
                    VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion));
    }
    g_nphys = kept;
    if (kept == 0) {
        snprintf(g_reason, sizeof g_reason, "no Vulkan 1.2 device among %u found", n);
        destroy_instance();
        return vk_fail(EM_ERR_PLUGIN, "vulkan: %s", g_reason);
    }
    return EM_OK;
}

/* ---------------- devices ------------------------------------------------- */

static int device_count(void) { return (int)g_nphys; }

static const char *reason(void) { return g_reason[0] ? g_reason : NULL; }

static em_status device_info(int index, em_plugin_device_info *info)
{
    if (index < 0 || (uint32_t)index >= g_nphys)
        return vk_fail(EM_ERR_DEVICE, "vulkan: no device %d (there are %u)", index, g_nphys);
    if (!info) return vk_fail(EM_ERR_NULL_ARG, "vulkan: device_info without info");
    VkPhysicalDeviceProperties p;
    VkPhysicalDeviceMemoryProperties m;
    vkGetPhysicalDeviceProperties(g_phys[index], &p);
    vkGetPhysicalDeviceMemoryProperties(g_phys[index], &m);
    em_plugin_device_info v;
    memset(&v, 0, sizeof v);
    v.struct_size = info->struct_size;
    switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: v.type = EM_DEVICE_GPU; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: v.type = EM_DEVICE_INTEGRATED_GPU; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: v.type = EM_DEVICE_SOFTWARE; break;
    default: v.type = EM_DEVICE_OTHER; break;
    }
    snprintf(v.name, sizeof v.name, "%.127s", p.deviceName);
    /* The float controls the shaders get on this device (vk_spirv.c): tests read
     * "f32 subnormals may flush" to know a subnormal result may come back 0. */
    vk_fc_mode fc[VK_FC_MAX_MODES];
    char fc_note[96];
    vk_fc_describe(fc, vk_fc_modes(g_phys[index], 0, fc), fc_note, sizeof fc_note);
    uint64_t mem = 0;
    for (uint32_t i = 0; i < m.memoryHeapCount; i++)
        if (m.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) mem += m.memoryHeaps[i].size;
    v.memory_bytes = mem;
    snprintf(v.description, sizeof v.description,
             "Vulkan %u.%u.%u, driver 0x%x, vendor 0x%04x device 0x%04x; max binding %llu MiB; "
             "validation %s; %s",
             VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion),
             VK_API_VERSION_PATCH(p.apiVersion), p.driverVersion, p.vendorID, p.deviceID,
             (unsigned long long)(p.limits.maxStorageBufferRange >> 20),
             g_validation ? "on" : "off", fc_note);
    /* f16/bf16/bool need no device feature (the shaders convert bits by hand);
     * i64/f64 arithmetic needs shaderInt64+shaderFloat64 (without them those
     * tensors still live here but their arithmetic runs on the CPU). */
    VkPhysicalDeviceFeatures f;
    vkGetPhysicalDeviceFeatures(g_phys[index], &f);
    v.dtype_mask = (1u << EM_F32) | (1u << EM_F16) | (1u << EM_BF16) | (1u << EM_I32) |
                   (1u << EM_BOOL);
    if (f.shaderInt64 && f.shaderFloat64) v.dtype_mask |= (1u << EM_I64) | (1u << EM_F64);
    size_t n = info->struct_size;
    if (n == 0 || n > sizeof v) n = sizeof v;
    memcpy(info, &v, n);
    return EM_OK;
}

static em_status device_open(int index, void **dev)
{
    if (index < 0 || (uint32_t)index >= g_nphys)
        return vk_fail(EM_ERR_DEVICE, "vulkan: no device %d (there are %u)", index, g_nphys);
    vk_device *d = calloc(1, sizeof *d);
    if (!d) return vk_fail(EM_ERR_OUT_OF_MEMORY, "vulkan: out of host memory");
    d->index = index;
    d->phys = g_phys[index];
    vkGetPhysicalDeviceProperties(d->phys, &d->props);
    vkGetPhysicalDeviceMemoryProperties(d->phys, &d->mem_props);
    d->align = d->props.limits.minStorageBufferOffsetAlignment;
    if (d->align < 256) d->align = 256;
    d->max_range = d->props.limits.maxStorageBufferRange;
    /* i64/f64 kernels need both features; EMBER_VULKAN_NARROW=1 (tests) turns
     * them off to exercise what devices without them do. */
    VkPhysicalDeviceFeatures f;
    vkGetPhysicalDeviceFeatures(d->phys, &f);
    const char *narrow = vk_getenv("EMBER_VULKAN_NARROW");
    d->wide = f.shaderInt64 && f.shaderFloat64 && !(narrow && *narrow && strcmp(narrow, "0"));
    pthread_mutex_init(&d->lock, NULL);
    *dev = d;
    return EM_OK;
}

static void device_close(void *dev)
{
    vk_device *d = dev;
    if (!d) return;
    vk_device_destroy(d);
    if (vk_check_validation() != EM_OK)
        vk_log(EM_LOG_ERROR, "validation messages while closing %s", d->props.deviceName);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* ---------------- buffers -------------------------------------------------- */

#define VK_ENTER(d)                                                                      \
    do {                                                                                 \
        em_status st_ = vk_check_validation();                                           \
        if (st_ == EM_OK) st_ = vk_device_ready(d);                                      \
        if (st_ != EM_OK) return st_;                                                    \
    } while (0)

static em_status buffer_alloc(void *dev, size_t bytes, void **buffer)
{
    vk_device *d = dev;
    VK_ENTER(d);
    vk_buffer *b;
    em_status st = vk_alloc(d, bytes, &b);
    if (st == EM_OK) *buffer = b;
    return st;
}

static void buffer_free(void *dev, void *buffer)
{
    if (buffer) vk_free_deferred(dev, buffer);
}

static em_status buffer_upload(void *dev, void *buffer, size_t offset, const void *src,
                               size_t bytes)
{
    vk_device *d = dev;
    VK_ENTER(d);
    vk_buffer *b = buffer;
    if (offset > b->size || bytes > b->size - offset)
        return vk_fail(EM_ERR_INVALID_ARG, "vulkan: upload of %zu bytes at %zu past a buffer of %llu",
                       bytes, offset, (unsigned long long)b->size);
    em_status st = vk_upload(d, b, offset, src, bytes);
    return st ? st : vk_check_validation();
}

static em_status buffer_download(void *dev, void *buffer, size_t offset, void *dst, size_t bytes)
{
    vk_device *d = dev;
    VK_ENTER(d);
    vk_buffer *b = buffer;
    if (offset > b->size || bytes > b->size - offset)
        return vk_fail(EM_ERR_INVALID_ARG, "vulkan: download of %zu bytes at %zu past a buffer of %llu",
                       bytes, offset, (unsigned long long)b->size);
    em_status st = vk_download(d, b, offset, dst, bytes);
    return st ? st : vk_check_validation();
}

static em_status buffer_copy(void *dev, void *src, size_t src_offset, void *dst,
                             size_t dst_offset, size_t bytes)
{
    vk_device *d = dev;
    VK_ENTER(d);
    em_status st = vk_copy(d, src, src_offset, dst, dst_offset, bytes);
    return st ? st : vk_check_validation();
}

static em_status synchronize(void *dev)
{
    vk_device *d = dev;
    VK_ENTER(d);
    em_status st = vk_flush(d);
    return st ? st : vk_check_validation();
}

static void shutdown_plugin(void)
{
    destroy_instance();
    em_plugin_host_reset(&g_host);
}

static const em_backend_table g_table = {
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = EM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(em_backend_table),
    .name = "vulkan",
    .version = VK_PLUGIN_VERSION,
    .device_count = device_count,
    .device_info = device_info,
    .device_open = device_open,
    .device_close = device_close,
    .buffer_alloc = buffer_alloc,
    .buffer_free = buffer_free,
    .buffer_upload = buffer_upload,
    .buffer_download = buffer_download,
    .buffer_copy = buffer_copy,
    .synchronize = synchronize,
    .kernels = NULL, /* set in em_plugin_init (vk_ops.c's registry) */
    .kernel_count = 0,
    .supports = vk_supports,
    .reason = reason,
    .shutdown = shutdown_plugin,
};
static em_backend_table g_table_live;

EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *host,
                                          const em_backend_table **table)
{
    if (!host || !table) return EM_ERR_NULL_ARG;
    em_status hst = em_plugin_host_init(&g_host, host, "vulkan"); /* copies, checks the major */
    if (hst != EM_OK) return hst;
    g_reason[0] = '\0';
    em_status st = create_instance();
    if (st != EM_OK) return st;
    g_table_live = g_table;
    g_table_live.kernels = vk_kernels;
    g_table_live.kernel_count = vk_kernel_count;
    vk_log(EM_LOG_INFO, "%u device%s; validation %s", g_nphys, g_nphys == 1 ? "" : "s",
           g_validation ? "on" : "off");
    *table = &g_table_live;
    return EM_OK;
}
