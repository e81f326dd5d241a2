/*
 * vk_ops.c — what the kernel files share: argument packing helpers, entry
 * and exit checks, a device-side copy/cast of descriptors; and the kernel
 * registry with supports(), which declines what a shader cannot do on this
 * device so that the core runs it on the CPU instead.
 *
 * Coverage (the registry below): every op of api/ember_plugin.h, for the
 * dtypes the CPU backend registers, except
 *   - f64 transcendental unary ops (exp, log, sin, cos, tanh, sigmoid, gelu,
 *     silu, softplus, erf) and f64 pow, logsumexp, softmax: GLSL has no
 *     double-precision exp/log/trig;
 *   - f64 matmul/linear (linear_act is registered for f32/f16/bf16 only);
 *   - scatter_add into i64/f64 (needs 64-bit atomics);
 * and, on devices without shaderInt64 + shaderFloat64, anything computing in
 * i64/f64 (casts from/to them, integer reductions, random ops, arange,
 * linspace). Those are declined by supports() and run on the CPU.
 *
 * Not for: the kernels themselves (vk_ops_*.c), device plumbing (vk_device.c).
 */
#include "vk_internal.h"

#include <math.h>
#include <string.h>

/* ---------------- helpers ------------------------------------------------ */

uint64_t vk_numel(const em_tdesc *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return n;
}

size_t vk_dtype_size(int dt)
{
    static const unsigned char sizes[EM_DTYPE_COUNT] = {4, 8, 2, 2, 4, 8, 1};
    return dt >= 0 && dt < EM_DTYPE_COUNT ? sizes[dt] : 0;
}

int vk_is_float(int dt) { return dt == EM_F32 || dt == EM_F16 || dt == EM_BF16; }
int vk_is_wide_dt(int dt) { return dt == EM_F64 || dt == EM_I64; }

uint32_t vk_fbits(double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

void vk_put_u64(uint32_t *a, int at, uint64_t v)
{
    a[at] = (uint32_t)v;
    a[at + 1] = (uint32_t)(v >> 32);
}

void vk_put_f64(uint32_t *a, int at, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    vk_put_u64(a, at, u);
}

void vk_put_td(uint32_t *a, int at, const em_tdesc *t, int ndim)
{
    a[at] = (uint32_t)t->offset;
    for (int i = 0; i < ndim; i++) a[at + 1 + i] = (uint32_t)t->strides[i];
}

uint32_t vk_groups_1d(const vk_device *d, uint64_t items, uint32_t per_group)
{
    uint64_t g = (items + per_group - 1) / per_group;
    uint64_t lim = d->props.limits.maxComputeWorkGroupCount[0];
    if (g > lim) g = lim; /* the shaders loop (grid stride) */
    return g ? (uint32_t)g : 1;
}

em_status vk_finish(em_status st) { return st ? st : vk_check_validation(); }

em_status vk_enter(vk_device *d, const em_op_call *c, int min_in, int max_in)
{
    em_status st = vk_check_validation();
    if (st == EM_OK) st = vk_device_ready(d);
    if (st) return st;
    /* Test-only: one deliberately invalid Vulkan call (a zero-sized buffer,
     * VUID-VkBufferCreateInfo-size-00912), so a test can prove the validation
     * layer is on and its messages fail the op (tests/vulkan: validation). */
    const char *self = d->selftest_done ? NULL : vk_getenv("EMBER_VULKAN_SELFTEST");
    if (self && !strcmp(self, "invalid-call")) {
        d->selftest_done = 1;
        VkBufferCreateInfo bad = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                                  .size = 0,
                                  .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                                  .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
        VkBuffer b = VK_NULL_HANDLE;
        if (vkCreateBuffer(d->dev, &bad, NULL, &b) == VK_SUCCESS && b) vkDestroyBuffer(d->dev, b, NULL);
    }
    if (!c->params || c->n_in < min_in || c->n_in > max_in || c->n_out != 1)
        return vk_fail(EM_ERR_INTERNAL, "vulkan: op %d called with %d inputs, %d outputs", c->op,
                       c->n_in, c->n_out);
    return EM_OK;
}

em_status vk_copy_desc(vk_device *d, const em_tdesc *dst, const em_tdesc *src)
{
    em_op_params p = {.struct_size = sizeof p};
    em_op_call c = {.struct_size = sizeof c,
                    .op = dst->dtype == src->dtype ? EM_OP_COPY : EM_OP_CAST,
                    .n_in = 1,
                    .n_out = 1,
                    .in = src,
                    .out = dst,
                    .params = &p};
    if (vk_numel(dst) == 0) return EM_OK;
    return vk_k_elementwise(d, &c);
}

/* ---------------- supports() --------------------------------------------- */

/* Declines what the shaders cannot index (32-bit element indices), what this
 * device cannot compute (see the top of the file) and matmul grids beyond the
 * device's workgroup-count limits; the core falls back to the CPU. */
int vk_supports(void *dev, const em_op_call *call)
{
    vk_device *d = dev;
    for (int i = 0; i < call->n_in; i++)
        if (vk_numel(&call->in[i]) > UINT32_MAX / 2) return 0;
    for (int i = 0; i < call->n_out; i++)
        if (vk_numel(&call->out[i]) > UINT32_MAX / 2) return 0;
    switch (call->op) {
    case EM_OP_MATMUL:
    case EM_OP_LINEAR:
    case EM_OP_LINEAR_ACT: {
        const em_tdesc *C = &call->out[0];
        if (!vk_is_float(C->dtype)) return 0;
        int three = call->op == EM_OP_MATMUL;
        if (three && (C->ndim != 3 || call->in[0].ndim != 3 || call->in[1].ndim != 3)) return 0;
        if (!three && (C->ndim != 2 || call->in[0].ndim != 2 || call->in[1].ndim != 2)) return 0;
        uint64_t K = (uint64_t)call->in[0].shape[three ? 2 : 1];
        /* the 16x16 grid of matmul.comp: the largest either shader launches */
        uint64_t gx = ((uint64_t)C->shape[three ? 2 : 1] + MM_TILE - 1) / MM_TILE;
        uint64_t gy = ((uint64_t)C->shape[three ? 1 : 0] + MM_TILE - 1) / MM_TILE;
        /* lavapipe stops an invocation after 65535 loop iterations in all: about
         * K/16 * 17 here, so long K goes to the CPU there. */
        if (d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU && K > 32768) return 0;
        if (gx > d->props.limits.maxComputeWorkGroupCount[0] ||
            gy > d->props.limits.maxComputeWorkGroupCount[1])
            return 0;
        return 1;
    }
    case EM_OP_SUM: case EM_OP_MEAN: case EM_OP_MAX: case EM_OP_MIN: case EM_OP_ARGMAX:
    case EM_OP_ARGMIN: case EM_OP_VAR: case EM_OP_STD: case EM_OP_LOGSUMEXP:
    case EM_OP_SOFTMAX: case EM_OP_LOG_SOFTMAX:
        return vk_reduce_ok(d, call);
    case EM_OP_CAT: case EM_OP_INDEX_SELECT: case EM_OP_GATHER: case EM_OP_SCATTER_ADD:
    case EM_OP_ONE_HOT:
        return vk_index_ok(d, call);
    case EM_OP_ARANGE: case EM_OP_LINSPACE: case EM_OP_RAND_UNIFORM: case EM_OP_RAND_NORMAL:
    case EM_OP_RANDINT:
        return d->wide;
    default:
        return vk_elementwise_ok(d, call);
    }
}

/* ---------------- registry ----------------------------------------------- */

/* Same key dtypes as the CPU backend (backends/cpu/cpu_plugin.c). */
#define KF(op, fn)                                                                       \
    {op, EM_F32, 0, fn}, {op, EM_F64, 0, fn}, {op, EM_F16, 0, fn}, {op, EM_BF16, 0, fn}
#define KA(op, fn) KF(op, fn), {op, EM_I32, 0, fn}, {op, EM_I64, 0, fn}, {op, EM_BOOL, 0, fn}

const em_kernel_entry vk_kernels[] = {
    /* memory and creation */
    KA(EM_OP_FILL, vk_k_elementwise),
    KA(EM_OP_COPY, vk_k_elementwise),
    KA(EM_OP_CAST, vk_k_elementwise),
    KA(EM_OP_ARANGE, vk_k_generate),
    KA(EM_OP_LINSPACE, vk_k_generate),
    KF(EM_OP_RAND_UNIFORM, vk_k_generate),
    KF(EM_OP_RAND_NORMAL, vk_k_generate),
    KA(EM_OP_RANDINT, vk_k_generate),
    /* binary */
    KA(EM_OP_ADD, vk_k_elementwise),
    KA(EM_OP_SUB, vk_k_elementwise),
    KA(EM_OP_MUL, vk_k_elementwise),
    KF(EM_OP_DIV, vk_k_elementwise),
    KA(EM_OP_POW, vk_k_elementwise),
    KA(EM_OP_MAXIMUM, vk_k_elementwise),
    KA(EM_OP_MINIMUM, vk_k_elementwise),
    KF(EM_OP_AXPY, vk_k_elementwise),
    /* comparisons */
    KA(EM_OP_EQ, vk_k_elementwise),
    KA(EM_OP_NE, vk_k_elementwise),
    KA(EM_OP_LT, vk_k_elementwise),
    KA(EM_OP_LE, vk_k_elementwise),
    KA(EM_OP_GT, vk_k_elementwise),
    KA(EM_OP_GE, vk_k_elementwise),
    /* selection */
    KA(EM_OP_WHERE, vk_k_elementwise),
    KA(EM_OP_CLAMP, vk_k_elementwise),
    KA(EM_OP_MASKED_FILL, vk_k_elementwise),
    /* unary */
    KA(EM_OP_NEG, vk_k_elementwise),
    KA(EM_OP_ABS, vk_k_elementwise),
    KF(EM_OP_EXP, vk_k_elementwise),
    KF(EM_OP_LOG, vk_k_elementwise),
    KF(EM_OP_SQRT, vk_k_elementwise),
    KF(EM_OP_RSQRT, vk_k_elementwise),
    KF(EM_OP_SIN, vk_k_elementwise),
    KF(EM_OP_COS, vk_k_elementwise),
    KF(EM_OP_TANH, vk_k_elementwise),
    KF(EM_OP_SIGMOID, vk_k_elementwise),
    KA(EM_OP_RELU, vk_k_elementwise),
    KF(EM_OP_GELU, vk_k_elementwise),
    KF(EM_OP_SILU, vk_k_elementwise),
    KF(EM_OP_SOFTPLUS, vk_k_elementwise),
    KA(EM_OP_SQUARE, vk_k_elementwise),
    KF(EM_OP_RECIPROCAL, vk_k_elementwise),
    KF(EM_OP_ERF, vk_k_elementwise),
    KA(EM_OP_SIGN, vk_k_elementwise),
    KF(EM_OP_RELU_BACKWARD, vk_k_elementwise),
    /* reductions */
    KA(EM_OP_SUM, vk_k_reduce),
    KF(EM_OP_MEAN, vk_k_reduce),
    KA(EM_OP_MAX, vk_k_reduce),
    KA(EM_OP_MIN, vk_k_reduce),
    KA(EM_OP_ARGMAX, vk_k_reduce),
    KA(EM_OP_ARGMIN, vk_k_reduce),
    KF(EM_OP_VAR, vk_k_reduce),
    KF(EM_OP_STD, vk_k_reduce),
    KF(EM_OP_LOGSUMEXP, vk_k_reduce),
    KF(EM_OP_SOFTMAX, vk_k_softmax),
    KF(EM_OP_LOG_SOFTMAX, vk_k_softmax),
    /* linear algebra */
    KF(EM_OP_MATMUL, vk_k_matmul),
    KF(EM_OP_LINEAR, vk_k_linear),
    {EM_OP_LINEAR_ACT, EM_F32, 0, vk_k_linear},
    {EM_OP_LINEAR_ACT, EM_F16, 0, vk_k_linear},
    {EM_OP_LINEAR_ACT, EM_BF16, 0, vk_k_linear},
    /* data movement */
    KA(EM_OP_CAT, vk_k_cat),
    KA(EM_OP_INDEX_SELECT, vk_k_index),
    KA(EM_OP_GATHER, vk_k_index),
    KA(EM_OP_SCATTER_ADD, vk_k_index),
    {EM_OP_ONE_HOT, EM_I32, 0, vk_k_index},
    {EM_OP_ONE_HOT, EM_I64, 0, vk_k_index},
};
const size_t vk_kernel_count = sizeof vk_kernels / sizeof vk_kernels[0];
