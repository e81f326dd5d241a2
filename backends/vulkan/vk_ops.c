/*
 * vk_ops.c — the Vulkan kernels and their registry: argument packing for the
 * shaders in shaders/ (word layouts documented at the top of each .comp) and
 * the dispatch sizes.
 *
 * Implemented (f32; COPY and FILL also i32, as raw 32-bit words): FILL, COPY,
 * ADD SUB MUL DIV MAXIMUM MINIMUM (tensor and scalar forms), AXPY, NEG ABS EXP
 * LOG SQRT TANH SIGMOID RELU, SUM (any reduce mask), MATMUL. Everything else
 * falls back to the CPU through the core. Every kernel accepts any strides.
 */
#include "vk_internal.h"

#include <math.h>
#include <string.h>

#define WG 256u

static uint32_t fbits(double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint32_t groups_1d(const vk_device *d, uint64_t items, uint32_t per_group)
{
    uint64_t g = (items + per_group - 1) / per_group;
    uint64_t lim = d->props.limits.maxComputeWorkGroupCount[0];
    if (g > lim) g = lim; /* the shaders loop (grid stride) */
    return g ? (uint32_t)g : 1;
}

static uint64_t numel_of(const em_tdesc *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return n;
}

static em_status finish(em_status st) { return st ? st : vk_check_validation(); }

static em_status enter(vk_device *d, const em_op_call *c, int min_in, int max_in)
{
    em_status st = vk_check_validation();
    if (st == EM_OK) st = vk_device_ready(d);
    if (st) return st;
    if (!c->params || c->n_in < min_in || c->n_in > max_in || c->n_out != 1)
        return vk_fail(EM_ERR_INTERNAL, "vulkan: op %d called with %d inputs, %d outputs", c->op,
                       c->n_in, c->n_out);
    return EM_OK;
}

/* ---------------- elementwise (FILL, COPY, binary, AXPY, unary) ----------- */

enum { EW_OP = 0, EW_NDIM = 1, EW_NUMEL = 2, EW_NIN = 3, EW_S0 = 4, EW_S1 = 5, EW_SHAPE = 8,
       EW_TD_OUT = 16, EW_TD_IN0 = 25, EW_TD_IN1 = 34, EW_WORDS = 43 };

static void put_td(uint32_t *a, int at, const em_tdesc *t, int ndim)
{
    a[at] = (uint32_t)t->offset;
    for (int i = 0; i < ndim; i++) a[at + 1 + i] = (uint32_t)t->strides[i];
}

static em_status k_elementwise(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    int op = c->op;
    int n_in_min = op == EM_OP_FILL ? 0 : 1;
    int n_in_max = op == EM_OP_FILL ? 0 : (op == EM_OP_COPY || op >= EM_OP_NEG) ? 1 : 2;
    if (op == EM_OP_AXPY) n_in_min = 2;
    em_status st = enter(d, c, n_in_min, n_in_max);
    if (st) return st;
    const em_tdesc *o = &c->out[0];
    uint32_t a[EW_WORDS];
    memset(a, 0, sizeof a);
    uint64_t n = numel_of(o);
    a[EW_OP] = (uint32_t)op;
    a[EW_NDIM] = (uint32_t)o->ndim;
    a[EW_NUMEL] = (uint32_t)n;
    a[EW_NIN] = (uint32_t)c->n_in;
    if (op == EM_OP_FILL && o->dtype == EM_I32) {
        double v = c->params->scalar[0];
        int32_t iv = isnan(v) ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN
                                                                                        : (int32_t)v;
        memcpy(&a[EW_S0], &iv, 4);
    } else {
        a[EW_S0] = fbits(c->params->scalar[0]);
    }
    a[EW_S1] = fbits(c->params->scalar[1]);
    for (int i = 0; i < o->ndim; i++) a[EW_SHAPE + i] = (uint32_t)o->shape[i];
    put_td(a, EW_TD_OUT, o, o->ndim);
    vk_buffer *bufs[3] = {o->buffer, NULL, NULL};
    if (c->n_in >= 1) {
        put_td(a, EW_TD_IN0, &c->in[0], o->ndim);
        bufs[1] = c->in[0].buffer;
    }
    if (c->n_in >= 2) {
        put_td(a, EW_TD_IN1, &c->in[1], o->ndim);
        bufs[2] = c->in[1].buffer;
    }
    return finish(vk_dispatch(d, VK_SH_ELEMENTWISE, a, EW_WORDS, bufs, groups_1d(d, n, WG), 1, 1));
}

/* ---------------- SUM ------------------------------------------------------ */

enum { RS_NOUT = 0, RS_NRED = 1, RS_NK = 2, RS_NR = 3, RS_IN_OFF = 4, RS_OUT_OFF = 5,
       RS_PARTS = 6, RS_SLICE = 7, RS_KSHAPE = 8, RS_KIN = 16, RS_KOUT = 24, RS_RSHAPE = 32, RS_RIN = 40, RS_WORDS = 48 };

/* Reduced elements per workgroup: 256 threads x 1024 elements x (1 + nr) loop
 * iterations stays well under lavapipe's 65535-iteration cap per invocation. */
#define RS_SLICE_MAX (256u * 1024u)

static em_status k_sum(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = enter(d, c, 1, 1);
    if (st) return st;
    const em_tdesc *in = &c->in[0], *o = &c->out[0];
    uint32_t a[RS_WORDS];
    memset(a, 0, sizeof a);
    uint32_t nk = 0, nr = 0;
    uint64_t n_out = 1, n_red = 1;
    for (int i = 0; i < in->ndim; i++) {
        if (c->params->reduce_mask & (1u << i)) {
            a[RS_RSHAPE + nr] = (uint32_t)in->shape[i];
            a[RS_RIN + nr] = (uint32_t)in->strides[i];
            n_red *= (uint64_t)in->shape[i];
            nr++;
        } else {
            a[RS_KSHAPE + nk] = (uint32_t)in->shape[i];
            a[RS_KIN + nk] = (uint32_t)in->strides[i];
            a[RS_KOUT + nk] = i < o->ndim ? (uint32_t)o->strides[i] : 0;
            n_out *= (uint64_t)in->shape[i];
            nk++;
        }
    }
    a[RS_NOUT] = (uint32_t)n_out;
    a[RS_NRED] = (uint32_t)n_red;
    a[RS_NK] = nk;
    a[RS_NR] = nr;
    a[RS_IN_OFF] = (uint32_t)in->offset;
    a[RS_OUT_OFF] = (uint32_t)o->offset;
    a[RS_PARTS] = 1;
    a[RS_SLICE] = (uint32_t)n_red;
    vk_buffer *bufs[3] = {o->buffer, in->buffer, NULL};
    if (n_red <= RS_SLICE_MAX)
        return finish(vk_dispatch(d, VK_SH_REDUCE_SUM, a, RS_WORDS, bufs, groups_1d(d, n_out, 1), 1, 1));
    /* Two passes: parts partial sums per output into scratch [n_out, parts], then a
     * sum over the last dim of the scratch into out. */
    uint64_t parts = (n_red + RS_SLICE_MAX - 1) / RS_SLICE_MAX;
    vk_buffer *scratch;
    if ((st = vk_alloc(d, (size_t)(n_out * parts * 4), &scratch))) return st;
    uint32_t b[RS_WORDS];
    memcpy(b, a, sizeof b);
    a[RS_PARTS] = (uint32_t)parts;
    a[RS_SLICE] = RS_SLICE_MAX;
    a[RS_OUT_OFF] = 0;
    uint64_t st_out = parts;
    for (int k = (int)nk - 1; k >= 0; k--) {
        a[RS_KOUT + k] = (uint32_t)st_out;
        st_out *= a[RS_KSHAPE + k];
    }
    vk_buffer *b1[3] = {scratch, in->buffer, NULL};
    st = vk_dispatch(d, VK_SH_REDUCE_SUM, a, RS_WORDS, b1, groups_1d(d, n_out * parts, 1), 1, 1);
    if (st == EM_OK) {
        /* pass 2: kept dims as before (in strides = the scratch's), one reduced dim */
        b[RS_NRED] = (uint32_t)parts;
        b[RS_NR] = 1;
        b[RS_RSHAPE] = (uint32_t)parts;
        b[RS_RIN] = 1;
        b[RS_IN_OFF] = 0;
        b[RS_SLICE] = (uint32_t)parts;
        for (uint32_t k = 0; k < nk; k++) b[RS_KIN + k] = a[RS_KOUT + k];
        vk_buffer *b2[3] = {o->buffer, scratch, NULL};
        st = vk_dispatch(d, VK_SH_REDUCE_SUM, b, RS_WORDS, b2, groups_1d(d, n_out, 1), 1, 1);
    }
    vk_free_deferred(d, scratch); /* released once the batch has completed */
    return finish(st);
}

/* ---------------- MATMUL --------------------------------------------------- */

#define MM_TILE 16u

static em_status k_matmul(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = enter(d, c, 2, 2);
    if (st) return st;
    const em_tdesc *A = &c->in[0], *B = &c->in[1], *C = &c->out[0];
    if (A->ndim != 3 || B->ndim != 3 || C->ndim != 3)
        return vk_fail(EM_ERR_INTERNAL, "vulkan: matmul wants 3-D operands");
    uint32_t a[16] = {
        (uint32_t)C->shape[0], (uint32_t)C->shape[1], (uint32_t)C->shape[2], (uint32_t)A->shape[2],
        (uint32_t)A->offset, (uint32_t)A->strides[0], (uint32_t)A->strides[1], (uint32_t)A->strides[2],
        (uint32_t)B->offset, (uint32_t)B->strides[0], (uint32_t)B->strides[1], (uint32_t)B->strides[2],
        (uint32_t)C->offset, (uint32_t)C->strides[0], (uint32_t)C->strides[1], (uint32_t)C->strides[2]};
    uint64_t gz = (uint64_t)C->shape[0];
    if (gz > d->props.limits.maxComputeWorkGroupCount[2]) gz = d->props.limits.maxComputeWorkGroupCount[2];
    vk_buffer *bufs[3] = {C->buffer, A->buffer, B->buffer};
    return finish(vk_dispatch(d, VK_SH_MATMUL, a, 16, bufs,
                              (uint32_t)((C->shape[2] + MM_TILE - 1) / MM_TILE),
                              (uint32_t)((C->shape[1] + MM_TILE - 1) / MM_TILE), (uint32_t)gz));
}

/* ---------------- supports() ---------------------------------------------- */

/* Declines what the shaders cannot index (32-bit element indices) and matmul
 * grids beyond the device's workgroup-count limits; the core falls back. */
int vk_supports(void *dev, const em_op_call *call)
{
    vk_device *d = dev;
    for (int i = 0; i < call->n_in; i++)
        if (numel_of(&call->in[i]) > UINT32_MAX) return 0;
    for (int i = 0; i < call->n_out; i++)
        if (numel_of(&call->out[i]) > UINT32_MAX) return 0;
    if (call->op == EM_OP_MATMUL) {
        const em_tdesc *C = &call->out[0];
        if (C->ndim != 3 || call->in[0].ndim != 3 || call->in[1].ndim != 3) return 0;
        uint64_t gx = ((uint64_t)C->shape[2] + MM_TILE - 1) / MM_TILE;
        uint64_t gy = ((uint64_t)C->shape[1] + MM_TILE - 1) / MM_TILE;
        /* lavapipe stops an invocation after 65535 loop iterations in all: about
         * K/16 * 17 here, so long K goes to the CPU there. */
        if (d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU && call->in[0].shape[2] > 32768)
            return 0;
        if (gx > d->props.limits.maxComputeWorkGroupCount[0] ||
            gy > d->props.limits.maxComputeWorkGroupCount[1])
            return 0;
    }
    return 1;
}

/* ---------------- registry ------------------------------------------------- */

#define K(op, fn) {op, EM_F32, 0, fn}

const em_kernel_entry vk_kernels[] = {
    K(EM_OP_FILL, k_elementwise),
    {EM_OP_FILL, EM_I32, 0, k_elementwise},
    K(EM_OP_COPY, k_elementwise),
    {EM_OP_COPY, EM_I32, 0, k_elementwise},
    K(EM_OP_ADD, k_elementwise),
    K(EM_OP_SUB, k_elementwise),
    K(EM_OP_MUL, k_elementwise),
    K(EM_OP_DIV, k_elementwise),
    K(EM_OP_MAXIMUM, k_elementwise),
    K(EM_OP_MINIMUM, k_elementwise),
    K(EM_OP_AXPY, k_elementwise),
    K(EM_OP_NEG, k_elementwise),
    K(EM_OP_ABS, k_elementwise),
    K(EM_OP_EXP, k_elementwise),
    K(EM_OP_LOG, k_elementwise),
    K(EM_OP_SQRT, k_elementwise),
    K(EM_OP_TANH, k_elementwise),
    K(EM_OP_SIGMOID, k_elementwise),
    K(EM_OP_RELU, k_elementwise),
    K(EM_OP_SUM, k_sum),
    K(EM_OP_MATMUL, k_matmul),
};
const size_t vk_kernel_count = sizeof vk_kernels / sizeof vk_kernels[0];
