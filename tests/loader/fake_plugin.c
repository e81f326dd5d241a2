/*
 * fake_plugin.c — a minimal, valid Ember backend plugin for the loader tests,
 * built twice:
 *   libember-fake.so: one device of type GPU, a full ABI 1.0 table;
 *   libember-soft.so (-DFAKE_SOFT): one EM_DEVICE_SOFTWARE device, and a
 *     table whose struct_size stops at kernel_count (an "older minor"): its
 *     supports() declines everything and its shutdown() complains, so a core
 *     that reads past struct_size is caught by the tests.
 * Buffers are host memory. Kernels: FILL and COPY for f32 only (plus rows the
 * core must ignore), so every other op on a fake device falls back to the
 * CPU backend. EMBER_FAKE_DEVICES=0 (read through host->getenv) simulates a
 * machine without the device. FAKE_VERSION overrides the version string
 * (the shadowing test builds a second copy).
 * Not a reference for writing a real backend: no threads, no queues.
 */
#include "ember_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FAKE_SOFT
#define FAKE_NAME "soft"
#define FAKE_TYPE EM_DEVICE_SOFTWARE
#define FAKE_DEVICE_NAME "Soft Emulated Device"
#else
#define FAKE_NAME "fake"
#define FAKE_TYPE EM_DEVICE_GPU
#define FAKE_DEVICE_NAME "Fake GPU"
#endif
#ifndef FAKE_VERSION
#define FAKE_VERSION "1.2.3"
#endif

typedef struct fake_buffer {
    struct fake_buffer *next, *prev;
    size_t bytes;
    _Alignas(16) unsigned char data[];
} fake_buffer;

typedef struct fake_device {
    int index;
    fake_buffer *buffers; /* every live buffer, freed at device_close */
} fake_device;

static const em_host_services *host;

static int fake_device_count(void)
{
#ifndef FAKE_SOFT
    const char *v = host->getenv ? host->getenv("EMBER_FAKE_DEVICES") : NULL;
    if (v && !strcmp(v, "0")) return 0;
#endif
    return 1;
}

#ifndef FAKE_SOFT
static const char *fake_reason(void)
{
    return "EMBER_FAKE_DEVICES=0 (simulated: no fake device present)";
}
#endif

static em_status fake_device_info(int index, em_plugin_device_info *info)
{
    if (index != 0) return host->set_error(EM_ERR_DEVICE, FAKE_NAME ": no device %d", index);
    info->type = FAKE_TYPE;
    snprintf(info->name, sizeof info->name, "%s %d", FAKE_DEVICE_NAME, index);
    snprintf(info->description, sizeof info->description,
             "test plugin (" FAKE_NAME " " FAKE_VERSION "): host memory, FILL/COPY f32 only");
    info->memory_bytes = (uint64_t)1 << 30;
    info->dtype_mask = 1u << EM_F32;
    return EM_OK;
}

static em_status fake_device_open(int index, void **dev)
{
    fake_device *d = calloc(1, sizeof *d);
    if (!d) return host->set_error(EM_ERR_OUT_OF_MEMORY, FAKE_NAME ": out of memory");
    d->index = index;
    *dev = d;
    host->log(EM_LOG_DEBUG, FAKE_NAME, "device %d opened", index);
    return EM_OK;
}

static void fake_device_close(void *dev)
{
    fake_device *d = dev;
    while (d->buffers) {
        fake_buffer *b = d->buffers;
        d->buffers = b->next;
        free(b);
    }
    free(d);
}

static em_status fake_buffer_alloc(void *dev, size_t bytes, void **buffer)
{
    fake_device *d = dev;
    fake_buffer *b = calloc(1, sizeof *b + bytes);
    if (!b) return host->set_error(EM_ERR_OUT_OF_MEMORY, FAKE_NAME ": cannot allocate %zu bytes", bytes);
    b->bytes = bytes;
    b->next = d->buffers;
    if (d->buffers) d->buffers->prev = b;
    d->buffers = b;
    *buffer = b;
    return EM_OK;
}

static void fake_buffer_free(void *dev, void *buffer)
{
    fake_device *d = dev;
    fake_buffer *b = buffer;
    if (!b) return;
    if (b->prev) b->prev->next = b->next;
    else d->buffers = b->next;
    if (b->next) b->next->prev = b->prev;
    free(b);
}

static em_status check_range(const fake_buffer *b, size_t offset, size_t bytes, const char *what)
{
    if (offset > b->bytes || bytes > b->bytes - offset)
        return host->set_error(EM_ERR_INVALID_ARG, FAKE_NAME ": %s of %zu bytes at %zu overruns a "
                               "%zu-byte buffer", what, bytes, offset, b->bytes);
    return EM_OK;
}

static em_status fake_upload(void *dev, void *buffer, size_t offset, const void *src, size_t bytes)
{
    fake_buffer *b = buffer;
    em_status st = check_range(b, offset, bytes, "upload");
    if (st == EM_OK) memcpy(b->data + offset, src, bytes);
    return st;
}

static em_status fake_download(void *dev, void *buffer, size_t offset, void *dst, size_t bytes)
{
    fake_buffer *b = buffer;
    em_status st = check_range(b, offset, bytes, "download");
    if (st == EM_OK) memcpy(dst, b->data + offset, bytes);
    return st;
}

static em_status fake_copy(void *dev, void *src, size_t src_offset, void *dst, size_t dst_offset,
                           size_t bytes)
{
    fake_buffer *s = src, *d = dst;
    em_status st = check_range(s, src_offset, bytes, "copy source");
    if (st == EM_OK) st = check_range(d, dst_offset, bytes, "copy destination");
    if (st == EM_OK) memmove(d->data + dst_offset, s->data + src_offset, bytes);
    return st;
}

static em_status fake_synchronize(void *dev) { return EM_OK; }

/* Element i (row-major) of a descriptor, as a pointer. */
static float *at(const em_tdesc *t, int64_t i)
{
    int64_t off = t->offset;
    for (int k = t->ndim - 1; k >= 0; k--) {
        off += (i % t->shape[k]) * t->strides[k];
        i /= t->shape[k];
    }
    return (float *)((fake_buffer *)t->buffer)->data + off;
}

static int64_t numel(const em_tdesc *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
    return n;
}

static em_status fill_f32(void *dev, const em_op_call *call)
{
    const em_tdesc *o = &call->out[0];
    float v = (float)call->params->scalar[0];
    for (int64_t i = 0, n = numel(o); i < n; i++) *at(o, i) = v;
    return EM_OK;
}

static em_status copy_f32(void *dev, const em_op_call *call)
{
    const em_tdesc *in = &call->in[0], *o = &call->out[0];
    for (int64_t i = 0, n = numel(o); i < n; i++) *at(o, i) = *at(in, i);
    return EM_OK;
}

static const em_kernel_entry fake_kernels[] = {
    {.op = EM_OP_FILL, .dtype = EM_F32, .fn = fill_f32},
    {.op = EM_OP_COPY, .dtype = EM_F32, .fn = copy_f32},
    /* rows the core must ignore (debug-logged): */
    {.op = 999, .dtype = EM_F32, .fn = fill_f32},
    {.op = EM_OP_ADD, .dtype = 42, .fn = copy_f32},
    {.op = EM_OP_MUL, .dtype = EM_F32, .fn = NULL},
};

static int decline_all(void *dev, const em_op_call *call) { return 0; }
static int accept_all(void *dev, const em_op_call *call) { return 1; }

static void fake_shutdown(void)
{
#ifdef FAKE_SOFT
    /* past struct_size: the core must never call this */
    fprintf(stderr, "soft plugin: shutdown() called although it lies past struct_size\n");
    _Exit(99);
#endif
}

static const em_backend_table fake_table = {
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = 0, /* written for ABI 1.0: an older minor the host must accept */
#ifdef FAKE_SOFT
    .struct_size = offsetof(em_backend_table, kernel_count) + sizeof(size_t),
#else
    .struct_size = sizeof(em_backend_table),
#endif
    .name = FAKE_NAME,
    .version = FAKE_VERSION,
    .device_count = fake_device_count,
    .device_info = fake_device_info,
    .device_open = fake_device_open,
    .device_close = fake_device_close,
    .buffer_alloc = fake_buffer_alloc,
    .buffer_free = fake_buffer_free,
    .buffer_upload = fake_upload,
    .buffer_download = fake_download,
    .buffer_copy = fake_copy,
    .synchronize = fake_synchronize,
    .kernels = fake_kernels,
    .kernel_count = sizeof fake_kernels / sizeof fake_kernels[0],
#ifdef FAKE_SOFT
    .supports = decline_all,
    .reason = NULL,
#else
    .supports = accept_all,
    .reason = fake_reason,
#endif
    .shutdown = fake_shutdown,
};

EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *h, const em_backend_table **table)
{
    (void)decline_all;
    (void)accept_all;
    host = h;
    if (h->abi_major != EM_PLUGIN_ABI_MAJOR)
        return h->set_error(EM_ERR_PLUGIN, FAKE_NAME ": built for plugin ABI %d, host has %u",
                            EM_PLUGIN_ABI_MAJOR, (unsigned)h->abi_major);
    *table = &fake_table;
    return EM_OK;
}
