/*
 * example_plugin.c — the face of the example backend plugin: the entry
 * point em_plugin_init, the backend table, the devices, the buffers and
 * the kernel registry. The kernels themselves are in example_kernels.c.
 *
 * Read this first if you are writing a backend for Ember. In one paragraph:
 * Ember's core (libember.so) owns what a tensor IS — shape, strides, dtype,
 * views, broadcasting, type promotion, autograd, lifetimes — and never
 * touches tensor memory itself. A plugin (a shared object called
 * libember-<name>.so) owns WHERE the memory lives and HOW ops compute: it
 * offers devices, buffers and kernels through one table of function
 * pointers. The core dlopens the plugin, calls em_plugin_init, checks the
 * table and from then on calls the table's functions. Any op the plugin has
 * no kernel for runs on the CPU backend instead (the core copies the data
 * there and back and counts it in em_fallback_count()), so a new backend
 * can start with a handful of kernels and grow.
 *
 * This example's "device" keeps tensors in memory it allocates with malloc
 * behind an opaque handle (example_buffer), registers kernels for FILL,
 * COPY, ADD/SUB/MUL/DIV, RELU, SUM, MATMUL and LINEAR — enough for the
 * forward pass of a small network (Linear -> ReLU -> Linear) — and leaves
 * everything else to the CPU fallback. It is plain C11 with no dependency
 * but pthreads.
 *
 * Environment (read through the core's getenv, so set-uid programs ignore it):
 *   EMBER_EXAMPLE_DEVICES=N  number of devices (default 1; 0 shows how a
 *                            plugin says "no device here" and why).
 *
 * Not for: op semantics (ember_plugin.h states them) or the kernels.
 */
#include "example_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Host services                                                           */
/* ---------------------------------------------------------------------- */

/* Filled by em_plugin_init from the core's em_host_services. The helpers in
 * ember_plugin_util.h take it: em_plugin_fail(&example_host, status, fmt,
 * ...) records an error message for the core and returns the status;
 * em_plugin_log(&example_host, level, fmt, ...) writes a log line that
 * EMBER_LOG=debug|info|warn|error shows. */
em_plugin_host example_host;

/* ---------------------------------------------------------------------- */
/* Devices                                                                 */
/* ---------------------------------------------------------------------- */

/* Each device pretends to have this much memory; buffer_alloc refuses more
 * with EM_ERR_OUT_OF_MEMORY, which is how a real device reports that it is
 * full (the core passes the message on to the user). */
#define EXAMPLE_DEVICE_MEMORY ((size_t)2 << 30) /* 2 GiB */
#define EXAMPLE_MAX_DEVICES 8

static int g_device_count = 1; /* decided in em_plugin_init */

/* How many devices there are. Called once, after em_plugin_init. Returning
 * 0 is allowed ("the hardware is absent"): the core then calls reason()
 * and lists the plugin as refused with that reason. */
static int example_device_count(void) { return g_device_count; }

static const char *example_reason(void)
{
    return g_device_count == 0 ? "EMBER_EXAMPLE_DEVICES=0: the example plugin offers no device"
                               : NULL;
}

/* Describes device `index` before it is opened. `info` belongs to the core
 * and has info->struct_size set: never write past it (an older core has a
 * smaller struct). em_plugin_device_info_set does exactly that. */
static em_status example_device_info(int index, em_plugin_device_info *info)
{
    if (index < 0 || index >= g_device_count)
        return em_plugin_fail(&example_host, EM_ERR_DEVICE,
                              "example: no device %d (there %s %d)", index,
                              g_device_count == 1 ? "is" : "are", g_device_count);
    if (!info) return em_plugin_fail(&example_host, EM_ERR_NULL_ARG, "example: no info to fill");
    em_plugin_device_info mine;
    memset(&mine, 0, sizeof mine);
    mine.struct_size = sizeof mine;
    /* The type decides automatic selection: with EMBER_BACKEND unset the
     * core picks the best GPU > integrated GPU > CPU > other; SOFTWARE
     * devices are only used when named (EMBER_BACKEND=example). Host memory
     * pretending to be a device is honestly "software"; a real accelerator
     * says EM_DEVICE_GPU or EM_DEVICE_OTHER. */
    mine.type = EM_DEVICE_SOFTWARE;
    snprintf(mine.name, sizeof mine.name, "Example device %d", index);
    snprintf(mine.description, sizeof mine.description,
             "example plugin " EXAMPLE_VERSION ": host memory behind opaque handles; kernels "
             "for fill, copy, add/sub/mul/div, relu, sum, matmul, linear (f32); the rest runs "
             "on the CPU backend");
    mine.memory_bytes = EXAMPLE_DEVICE_MEMORY;
    /* The dtypes tensors may have on this device. Having a dtype here does
     * not mean having kernels for it: ops without a kernel fall back. */
    mine.dtype_mask = (1u << EM_DTYPE_COUNT) - 1;
    em_plugin_device_info_set(info, &mine);
    return EM_OK;
}

/* Opens device `index`; *dev receives the context the core passes to every
 * later call for this device. Called once per device at start-up. */
static em_status example_device_open(int index, void **dev)
{
    if (index < 0 || index >= g_device_count)
        return em_plugin_fail(&example_host, EM_ERR_DEVICE, "example: no device %d to open",
                              index);
    example_device *d = calloc(1, sizeof *d);
    if (!d)
        return em_plugin_fail(&example_host, EM_ERR_OUT_OF_MEMORY,
                              "example: out of host memory opening device %d", index);
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d);
        return em_plugin_fail(&example_host, EM_ERR_BACKEND,
                              "example: pthread_mutex_init failed opening device %d", index);
    }
    d->index = index;
    d->capacity_bytes = EXAMPLE_DEVICE_MEMORY;
    *dev = d;
    em_plugin_log(&example_host, EM_LOG_DEBUG, "device %d opened", index);
    return EM_OK;
}

/* Closes a device: every buffer still alive on it is freed (the core calls
 * this at em_shutdown, after which no handle of this device is used). */
static void example_device_close(void *dev)
{
    example_device *d = dev;
    if (!d) return;
    size_t leaked = 0;
    while (d->buffers) {
        example_buffer *b = d->buffers;
        d->buffers = b->next;
        b->magic = 0;
        free(b->data);
        free(b);
        leaked++;
    }
    if (leaked)
        em_plugin_log(&example_host, EM_LOG_DEBUG,
                      "device %d closed with %zu live buffer%s (freed now)", d->index, leaked,
                      leaked == 1 ? "" : "s");
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* ---------------------------------------------------------------------- */
/* Buffers                                                                 */
/*                                                                          */
/* The core allocates one buffer per tensor storage (views share it) and    */
/* frees it when the last tensor using it is released. Offsets and sizes    */
/* here are in BYTES; in descriptors they are in elements.                  */
/* ---------------------------------------------------------------------- */

/* bytes >= 1. The contents are undefined until written (the core fills or
 * uploads before reading). */
static em_status example_buffer_alloc(void *dev, size_t bytes, void **buffer)
{
    example_device *d = dev;
    *buffer = NULL;
    pthread_mutex_lock(&d->lock);
    int full = bytes > d->capacity_bytes - d->used_bytes;
    size_t used = d->used_bytes;
    if (!full) d->used_bytes += bytes; /* reserve before unlocking */
    pthread_mutex_unlock(&d->lock);
    if (full)
        return em_plugin_fail(&example_host, EM_ERR_OUT_OF_MEMORY,
                              "example: device %d is out of memory: %zu bytes asked, %zu of "
                              "%zu in use",
                              d->index, bytes, used, d->capacity_bytes);
    example_buffer *b = calloc(1, sizeof *b);
    unsigned char *data = malloc(bytes ? bytes : 1);
    if (!b || !data) {
        free(b);
        free(data);
        pthread_mutex_lock(&d->lock);
        d->used_bytes -= bytes;
        pthread_mutex_unlock(&d->lock);
        return em_plugin_fail(&example_host, EM_ERR_OUT_OF_MEMORY,
                              "example: out of host memory allocating %zu bytes", bytes);
    }
    b->magic = EXAMPLE_BUFFER_MAGIC;
    b->device = d;
    b->bytes = bytes;
    b->data = data;
    pthread_mutex_lock(&d->lock);
    b->next = d->buffers;
    if (d->buffers) d->buffers->prev = b;
    d->buffers = b;
    pthread_mutex_unlock(&d->lock);
    *buffer = b;
    return EM_OK;
}

/* May be called from ANY thread (whichever drops the last reference to a
 * tensor), unlike the other functions, which the core serialises per
 * device: hence the lock. An asynchronous backend must also keep the memory
 * until queued kernels that use it have finished. */
static void example_buffer_free(void *dev, void *buffer)
{
    example_device *d = dev;
    example_buffer *b = buffer;
    if (!b) return;
    pthread_mutex_lock(&d->lock);
    if (b->prev) b->prev->next = b->next;
    else d->buffers = b->next;
    if (b->next) b->next->prev = b->prev;
    d->used_bytes -= b->bytes;
    pthread_mutex_unlock(&d->lock);
    b->magic = 0;
    free(b->data);
    free(b);
}

/* The buffer behind a handle, after checking it is one of ours, alive, and
 * that [offset, offset + bytes) lies inside it. */
static em_status checked(void *handle, size_t offset, size_t bytes, const char *what,
                         example_buffer **out)
{
    example_buffer *b = handle;
    if (!b || b->magic != EXAMPLE_BUFFER_MAGIC)
        return em_plugin_fail(&example_host, EM_ERR_INVALID_ARG,
                              "example: %s: %p is not a live buffer of the example plugin", what,
                              handle);
    if (offset > b->bytes || bytes > b->bytes - offset)
        return em_plugin_fail(&example_host, EM_ERR_INVALID_ARG,
                              "example: %s of %zu bytes at byte %zu overruns a %zu-byte buffer",
                              what, bytes, offset, b->bytes);
    *out = b;
    return EM_OK;
}

/* host -> device. A backend with a DMA engine may return before the copy
 * has finished only if it copied `src` first (the caller reuses it). */
static em_status example_buffer_upload(void *dev, void *buffer, size_t offset, const void *src,
                                       size_t bytes)
{
    example_buffer *b = NULL;
    em_status st = checked(buffer, offset, bytes, "upload", &b);
    if (st == EM_OK) memcpy(b->data + offset, src, bytes);
    return st;
}

/* device -> host: must not return before the bytes are in dst. */
static em_status example_buffer_download(void *dev, void *buffer, size_t offset, void *dst,
                                         size_t bytes)
{
    example_buffer *b = NULL;
    em_status st = checked(buffer, offset, bytes, "download", &b);
    if (st == EM_OK) memcpy(dst, b->data + offset, bytes);
    return st;
}

/* device -> same device; the ranges may overlap (same buffer). */
static em_status example_buffer_copy(void *dev, void *src, size_t src_offset, void *dst,
                                     size_t dst_offset, size_t bytes)
{
    example_buffer *s = NULL, *t = NULL;
    em_status st = checked(src, src_offset, bytes, "copy source", &s);
    if (st == EM_OK) st = checked(dst, dst_offset, bytes, "copy destination", &t);
    if (st == EM_OK) memmove(t->data + dst_offset, s->data + src_offset, bytes);
    return st;
}

/* Waits until all work queued on the device is done. Kernels here finish
 * before they return, so there is never anything to wait for. */
static em_status example_synchronize(void *dev) { return EM_OK; }

em_status example_check_buffers(const em_op_call *call)
{
    for (int i = 0; i < call->n_in + call->n_out; i++) {
        const em_tdesc *t = i < call->n_in ? &call->in[i] : &call->out[i - call->n_in];
        /* the last element the descriptor reaches (strides are >= 0) */
        int64_t last = t->offset;
        for (int k = 0; k < t->ndim; k++) last += (t->shape[k] - 1) * t->strides[k];
        size_t esize = em_plugin_dtype_size(t->dtype);
        example_buffer *b = NULL;
        em_status st = checked(t->buffer, (size_t)t->offset * esize,
                               (size_t)(last - t->offset + 1) * esize,
                               i < call->n_in ? "kernel input" : "kernel output", &b);
        if (st != EM_OK) return st;
    }
    return EM_OK;
}

/* ---------------------------------------------------------------------- */
/* The kernel registry                                                     */
/*                                                                          */
/* One row per (op, key dtype): the core looks kernels up by the op and     */
/* the dtype of in[0] (of out[0] for ops without inputs, such as FILL).     */
/* Ops or dtypes without a row run on the CPU backend. Flags:               */
/*   0                     the kernel takes any strides (including 0);      */
/*   EM_KERNEL_CONTIGUOUS  the core hands it dense row-major inputs (and    */
/*                         outputs), copying with this plugin's COPY kernel */
/*                         first when needed — handy when a vendor library  */
/*                         (a GEMM) wants packed matrices.                  */
/* ---------------------------------------------------------------------- */

#define ALL_DTYPES(op, fn)                                                                 \
    {op, EM_F32, 0, fn}, {op, EM_F64, 0, fn}, {op, EM_F16, 0, fn}, {op, EM_BF16, 0, fn},   \
        {op, EM_I32, 0, fn}, {op, EM_I64, 0, fn}, {op, EM_BOOL, 0, fn}

static const em_kernel_entry example_kernels[] = {
    ALL_DTYPES(EM_OP_FILL, example_k_fill),
    ALL_DTYPES(EM_OP_COPY, example_k_copy),
    {EM_OP_ADD, EM_F32, 0, example_k_binary},
    {EM_OP_SUB, EM_F32, 0, example_k_binary},
    {EM_OP_MUL, EM_F32, 0, example_k_binary},
    {EM_OP_DIV, EM_F32, 0, example_k_binary},
    {EM_OP_RELU, EM_F32, 0, example_k_relu},
    {EM_OP_SUM, EM_F32, 0, example_k_sum},
    {EM_OP_MATMUL, EM_F32, 0, example_k_matmul},
    {EM_OP_LINEAR, EM_F32, EM_KERNEL_CONTIGUOUS, example_k_linear},
};

/* ---------------------------------------------------------------------- */
/* The backend table and the entry point                                   */
/* ---------------------------------------------------------------------- */

/* Optional: called once before the core unloads the plugin (after every
 * device was closed). Release what em_plugin_init took. */
static void example_shutdown(void)
{
    em_plugin_log(&example_host, EM_LOG_DEBUG, "shutting down");
    em_plugin_host_reset(&example_host);
}

/* The table lives in static storage for as long as the plugin is loaded.
 * abi_major/abi_minor/struct_size say which version of ember_plugin.h it
 * was compiled against: a core of the same major accepts it and reads only
 * struct_size bytes (slots added by later minors count as NULL). */
static const em_backend_table example_table = {
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = EM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(em_backend_table),
    .name = EXAMPLE_NAME,
    .version = EXAMPLE_VERSION,
    .device_count = example_device_count,
    .device_info = example_device_info,
    .device_open = example_device_open,
    .device_close = example_device_close,
    .buffer_alloc = example_buffer_alloc,
    .buffer_free = example_buffer_free,
    .buffer_upload = example_buffer_upload,
    .buffer_download = example_buffer_download,
    .buffer_copy = example_buffer_copy,
    .synchronize = example_synchronize,
    .kernels = example_kernels,
    .kernel_count = sizeof example_kernels / sizeof example_kernels[0],
    /* Optional: supports(dev, call) may decline a call its registry lists
     * (say, a dtype one model of the hardware lacks); the core then falls
     * back. Every kernel here handles every call the core can make. */
    .supports = NULL,
    .reason = example_reason,
    .shutdown = example_shutdown,
};

/* The one exported symbol. The core calls it once after dlopen, from the
 * thread that initialises Ember, before anything else in the table. Check
 * the host, read configuration, and hand back the table; do not start
 * heavy work here (device_open is the place), and never call libember's
 * public API (em_*) from a plugin: it is not linked, and the core is in
 * the middle of loading. A failure returns a status after
 * em_plugin_fail: the core refuses the plugin with that message. */
EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *host,
                                          const em_backend_table **table)
{
    if (!table) return EM_ERR_NULL_ARG;
    em_status st = em_plugin_host_init(&example_host, host, EXAMPLE_NAME);
    if (st != EM_OK) return st;

    g_device_count = 1;
    const char *env = em_plugin_getenv(&example_host, "EMBER_EXAMPLE_DEVICES");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end != '\0' || n < 0 || n > EXAMPLE_MAX_DEVICES)
            return em_plugin_fail(&example_host, EM_ERR_INVALID_ARG,
                                  "example: EMBER_EXAMPLE_DEVICES=%s is not a number from 0 to %d",
                                  env, EXAMPLE_MAX_DEVICES);
        g_device_count = (int)n;
    }
    em_plugin_log(&example_host, EM_LOG_INFO, "example plugin %s: %d device%s, %zu kernels",
                  EXAMPLE_VERSION, g_device_count, g_device_count == 1 ? "" : "s",
                  example_table.kernel_count);
    *table = &example_table;
    return EM_OK;
}
