/*
 * faulty_plugin.c — libember-faulty.so, a deliberately wrong backend that
 * ember-conformance must catch (tests/bench/test_bench_tools.c):
 *   FILL f32 writes one element past the last one of its output (an
 *     out-of-bounds write the guard regions must see);
 *   ADD f32 returns a + b + 1e-3 (outside any tolerance);
 *   NEG f32 and COPY f32 are correct (they must pass);
 *   every other op has no kernel (must be reported unsupported).
 * Buffers are host memory with 256 bytes of slack, so the bad FILL corrupts
 * nothing but the harness's own guard elements.
 * Not an example of a backend: no threads, no queues.
 */
#include "ember_plugin.h"

#include <stdlib.h>
#include <string.h>

typedef struct fbuf {
    size_t bytes;
    _Alignas(16) unsigned char data[];
} fbuf;

#define SLACK 256

static int f_count(void) { return 1; }

static em_status f_info(int index, em_plugin_device_info *info)
{
    info->type = EM_DEVICE_GPU;
    strcpy(info->name, "Faulty Test Device");
    strcpy(info->description, "tests/bench/faulty_plugin.c: wrong on purpose");
    info->memory_bytes = 1u << 30;
    info->dtype_mask = 1u << EM_F32;
    return EM_OK;
}

static em_status f_open(int index, void **dev)
{
    static int token;
    *dev = &token;
    return EM_OK;
}

static void f_close(void *dev) {}

static em_status f_alloc(void *dev, size_t bytes, void **buffer)
{
    fbuf *b = calloc(1, sizeof *b + bytes + SLACK);
    if (!b) return EM_ERR_OUT_OF_MEMORY;
    b->bytes = bytes;
    *buffer = b;
    return EM_OK;
}

static void f_free(void *dev, void *buffer) { free(buffer); }

static em_status f_upload(void *dev, void *buffer, size_t off, const void *src, size_t bytes)
{
    memcpy(((fbuf *)buffer)->data + off, src, bytes);
    return EM_OK;
}

static em_status f_download(void *dev, void *buffer, size_t off, void *dst, size_t bytes)
{
    memcpy(dst, ((fbuf *)buffer)->data + off, bytes);
    return EM_OK;
}

static em_status f_copy(void *dev, void *src, size_t so, void *dst, size_t dof, size_t bytes)
{
    memmove(((fbuf *)dst)->data + dof, ((fbuf *)src)->data + so, bytes);
    return EM_OK;
}

static em_status f_sync(void *dev) { return EM_OK; }

static float *at(const em_tdesc *t, int64_t i)
{
    int64_t off = t->offset;
    for (int k = t->ndim - 1; k >= 0; k--) {
        off += (i % t->shape[k]) * t->strides[k];
        i /= t->shape[k];
    }
    return (float *)((fbuf *)t->buffer)->data + off;
}

static int64_t numel(const em_tdesc *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->ndim; k++) n *= t->shape[k];
    return n;
}

static em_status k_fill(void *dev, const em_op_call *call)
{
    const em_tdesc *o = &call->out[0];
    float v = (float)call->params->scalar[0];
    int64_t n = numel(o);
    for (int64_t i = 0; i < n; i++) *at(o, i) = v;
    at(o, n - 1)[1] = v; /* the bug: one element too many */
    return EM_OK;
}

static em_status k_copy(void *dev, const em_op_call *call)
{
    for (int64_t i = 0, n = numel(&call->out[0]); i < n; i++) *at(&call->out[0], i) = *at(&call->in[0], i);
    return EM_OK;
}

static em_status k_neg(void *dev, const em_op_call *call)
{
    for (int64_t i = 0, n = numel(&call->out[0]); i < n; i++) *at(&call->out[0], i) = -*at(&call->in[0], i);
    return EM_OK;
}

static em_status k_add(void *dev, const em_op_call *call)
{
    if (call->n_in != 2) return EM_ERR_UNSUPPORTED; /* the scalar form is not offered */
    for (int64_t i = 0, n = numel(&call->out[0]); i < n; i++)
        *at(&call->out[0], i) = *at(&call->in[0], i) + *at(&call->in[1], i) + 1e-3f; /* the bug */
    return EM_OK;
}

static int f_supports(void *dev, const em_op_call *call)
{
    return !(call->op == EM_OP_ADD && call->n_in != 2);
}

static const em_kernel_entry k_kernels[] = {
    {.op = EM_OP_FILL, .dtype = EM_F32, .fn = k_fill},
    {.op = EM_OP_COPY, .dtype = EM_F32, .fn = k_copy},
    {.op = EM_OP_NEG, .dtype = EM_F32, .fn = k_neg},
    {.op = EM_OP_ADD, .dtype = EM_F32, .fn = k_add},
};

static const em_backend_table k_table = {
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = EM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(em_backend_table),
    .name = "faulty",
    .version = "0.0.1-faulty",
    .device_count = f_count,
    .device_info = f_info,
    .device_open = f_open,
    .device_close = f_close,
    .buffer_alloc = f_alloc,
    .buffer_free = f_free,
    .buffer_upload = f_upload,
    .buffer_download = f_download,
    .buffer_copy = f_copy,
    .synchronize = f_sync,
    .kernels = k_kernels,
    .kernel_count = sizeof k_kernels / sizeof k_kernels[0],
    .supports = f_supports,
};

EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *h, const em_backend_table **table)
{
    if (h->abi_major != EM_PLUGIN_ABI_MAJOR)
        return h->set_error(EM_ERR_PLUGIN, "faulty: built for plugin ABI %d, host has %u",
                            EM_PLUGIN_ABI_MAJOR, (unsigned)h->abi_major);
    *table = &k_table;
    return EM_OK;
}
