/*
 * vk_ops_elementwise.c — the host side of shaders/elementwise.comp: FILL,
 * COPY, CAST, binary ops (tensor and scalar forms), AXPY, comparisons, WHERE,
 * CLAMP, MASKED_FILL, the unary ops and RELU_BACKWARD, every dtype, any
 * strides. Dense f32 operands (FILL and COPY: any 4-byte dtype) whose offsets
 * agree modulo 4 take the shader's vec4 path (16 bytes per invocation and
 * operand; see vec4_ok).
 *
 * Scalars are converted here exactly as the CPU backend converts them
 * (backends/cpu/cpu_copy.c: em__cpu_store_scalar, cpu_binary.c): a float-
 * class op gets an f32 scalar (f16/bf16 comparisons round it to the dtype
 * first), integer ops a saturated int64, f64 ops a double; FILL and
 * MASKED_FILL get the value's bits in the output dtype. Integer clamp bounds
 * are ceil(lo)/floor(hi) saturated to the dtype's range (a NaN bound is open).
 *
 * Pipeline: the narrow build (no 64-bit types) unless an operand is i64 or
 * f64 and the op computes on it, or the op is pow (float pow goes through
 * double log/exp where the device has them; else f32 exp2/log2, whose error
 * grows to ~1e-5 relative for |b log2 a| ~ 100); raw moves (FILL, COPY, WHERE, MASKED_FILL)
 * always use the narrow build, which moves 8-byte elements as word pairs.
 *
 * Not for: reductions, matmul, index ops (their own files).
 */
#include "vk_internal.h"

#include <math.h>
#include <string.h>

static int32_t sat_i32(double v)
{
    if (!(v == v)) return 0;
    if (v <= -2147483648.0) return INT32_MIN;
    if (v >= 2147483647.0) return INT32_MAX;
    return (int32_t)v;
}

static int64_t sat_i64(double v)
{
    if (!(v == v)) return 0;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)v;
}

/* The bits of v stored in dtype dt (em__cpu_store_scalar's rules). */
static uint64_t value_bits(int dt, double v)
{
    switch (dt) {
    case EM_F32: return vk_fbits(v);
    case EM_F64: { uint64_t u; memcpy(&u, &v, 8); return u; }
    case EM_F16: return em_f32_to_f16((float)v);
    case EM_BF16: return em_f32_to_bf16((float)v);
    case EM_I32: return (uint32_t)sat_i32(v);
    case EM_I64: return (uint64_t)sat_i64(v);
    default: return v != 0;
    }
}

/* A scalar operand in the compute class of dtype dt. */
static void put_scalar(uint32_t *a, int at, int dt, double v)
{
    switch (dt) {
    case EM_F32: case EM_F16: case EM_BF16: a[at] = vk_fbits(v); a[at + 1] = 0; break;
    case EM_F64: vk_put_f64(a, at, v); break;
    case EM_I32: vk_put_u64(a, at, (uint64_t)(int64_t)sat_i32(v)); break;
    case EM_I64: vk_put_u64(a, at, (uint64_t)sat_i64(v)); break;
    default: vk_put_u64(a, at, v != 0); break;
    }
}

/* The vec4 path of elementwise.comp applies: dense operands (checked by the
 * caller), f32 arithmetic (or a 4-byte FILL/COPY), every offset the same
 * modulo 4. */
static int vec4_ok(const em_op_call *c)
{
    int op = c->op;
    const em_tdesc *o = &c->out[0];
    if (op == EM_OP_FILL || op == EM_OP_COPY) {
        if (vk_dtype_size(o->dtype) != 4 || (c->n_in && c->in[0].dtype != o->dtype)) return 0;
    } else {
        int arith = (op >= EM_OP_ADD && op <= EM_OP_MINIMUM) || op == EM_OP_AXPY ||
                    op == EM_OP_CLAMP || op == EM_OP_RELU_BACKWARD ||
                    (op >= EM_OP_NEG && op <= EM_OP_SIGN);
        if (!arith || o->dtype != EM_F32) return 0;
        for (int i = 0; i < c->n_in; i++)
            if (c->in[i].dtype != EM_F32) return 0;
    }
    if (c->n_in > 2) return 0;
    for (int i = 0; i < c->n_in; i++)
        if ((c->in[i].offset - o->offset) % 4 != 0) return 0;
    return 1;
}

/* t walks o's shape in row-major order with unit steps (size-1 dims ignored). */
static int dense(const em_tdesc *t, const em_tdesc *o)
{
    int64_t want = 1;
    for (int i = o->ndim - 1; i >= 0; i--) {
        if (o->shape[i] == 1) continue;
        if (t->strides[i] != want) return 0;
        want *= o->shape[i];
    }
    return 1;
}

static int is_compare(int op) { return op >= EM_OP_EQ && op <= EM_OP_GE; }
static int is_raw(int op)
{
    return op == EM_OP_FILL || op == EM_OP_COPY || op == EM_OP_WHERE || op == EM_OP_MASKED_FILL;
}

/* f64 ops the shader has no double-precision function for. */
static int f64_missing(int op)
{
    switch (op) {
    case EM_OP_POW: case EM_OP_EXP: case EM_OP_LOG: case EM_OP_SIN: case EM_OP_COS:
    case EM_OP_TANH: case EM_OP_SIGMOID: case EM_OP_GELU: case EM_OP_SILU:
    case EM_OP_SOFTPLUS: case EM_OP_ERF:
        return 1;
    default: return 0;
    }
}

int vk_elementwise_ok(const vk_device *d, const em_op_call *c)
{
    if (is_raw(c->op)) return 1;
    int key = c->n_in > 0 ? c->in[0].dtype : c->out[0].dtype;
    int wide = vk_is_wide_dt(key) || vk_is_wide_dt(c->out[0].dtype);
    if (wide && !d->wide) return 0;
    if (key == EM_F64 && f64_missing(c->op)) return 0;
    return 1;
}

em_status vk_k_elementwise(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    int op = c->op;
    int lo = 1, hi = 1;
    if (op == EM_OP_FILL) lo = hi = 0;
    else if ((op >= EM_OP_ADD && op <= EM_OP_MINIMUM) || is_compare(op)) hi = 2;
    else if (op == EM_OP_RELU_BACKWARD) lo = hi = 2;
    else if (op == EM_OP_AXPY || op == EM_OP_MASKED_FILL) lo = hi = 2;
    else if (op == EM_OP_WHERE) lo = hi = 3;
    em_status st = vk_enter(d, c, lo, hi);
    if (st) return st;
    const em_tdesc *o = &c->out[0];
    const em_op_params *p = c->params;
    int key = c->n_in > 0 ? c->in[0].dtype : o->dtype;
    if (!vk_dtype_size(o->dtype) || !vk_dtype_size(key))
        return vk_fail(EM_ERR_DTYPE, "vulkan: op %d: invalid dtype", op);
    if (!is_raw(op) && ((vk_is_wide_dt(key) || vk_is_wide_dt(o->dtype)) && !d->wide))
        return vk_fail(EM_ERR_UNSUPPORTED, "vulkan: op %d on %s needs shaderInt64 and "
                       "shaderFloat64, which %s lacks", op, key == EM_F64 ? "f64" : "i64",
                       d->props.deviceName);
    uint32_t a[EW_WORDS];
    memset(a, 0, sizeof a);
    uint64_t n = vk_numel(o);
    a[EW_OP] = (uint32_t)op;
    a[EW_NDIM] = (uint32_t)o->ndim;
    a[EW_NUMEL] = (uint32_t)n;
    a[EW_NIN] = (uint32_t)c->n_in;
    a[EW_DT_OUT] = (uint32_t)o->dtype;
    for (int i = 0; i < c->n_in; i++) a[EW_DT_IN0 + i] = (uint32_t)c->in[i].dtype;
    if (op == EM_OP_FILL || op == EM_OP_MASKED_FILL) {
        vk_put_u64(a, EW_S0, value_bits(o->dtype, p->scalar[0]));
    } else if (op == EM_OP_CLAMP && !vk_is_float(key) && key != EM_F64) {
        /* integer bounds: ceil(lo), floor(hi), saturated; NaN leaves a side open */
        int64_t tmin = key == EM_I32 ? INT32_MIN : key == EM_BOOL ? 0 : INT64_MIN;
        int64_t tmax = key == EM_I32 ? INT32_MAX : key == EM_BOOL ? 1 : INT64_MAX;
        double clo = ceil(p->scalar[0]), chi = floor(p->scalar[1]);
        int64_t ilo = !(clo == clo) || clo <= (double)tmin ? tmin
                      : clo >= (double)tmax                ? tmax
                                                           : (int64_t)clo;
        int64_t ihi = !(chi == chi) || chi >= (double)tmax ? tmax
                      : chi <= (double)tmin                ? tmin
                                                           : (int64_t)chi;
        vk_put_u64(a, EW_S0, (uint64_t)ilo);
        vk_put_u64(a, EW_S1, (uint64_t)ihi);
    } else if (is_compare(op) && c->n_in == 1 && (key == EM_F16 || key == EM_BF16)) {
        /* the CPU stores a comparison's scalar in the dtype first */
        uint16_t h = (uint16_t)value_bits(key, p->scalar[0]);
        a[EW_S0] = vk_fbits(key == EM_F16 ? em_f16_to_f32(h) : em_bf16_to_f32(h));
    } else {
        put_scalar(a, EW_S0, key, p->scalar[0]);
        put_scalar(a, EW_S1, key, p->scalar[1]);
        if (op == EM_OP_SOFTPLUS || op == EM_OP_AXPY) {
            if (key != EM_F64) { /* beta, threshold / alpha as f32 */
                a[EW_S0] = vk_fbits(p->scalar[0]);
                a[EW_S1] = vk_fbits(p->scalar[1]);
            }
        }
    }
    a[EW_FLAG] = (uint32_t)p->flag;
    for (int i = 0; i < o->ndim; i++) a[EW_SHAPE + i] = (uint32_t)o->shape[i];
    vk_put_td(a, EW_TD_OUT, o, o->ndim);
    vk_buffer *bufs[VK_N_DATA] = {o->buffer, NULL, NULL, NULL};
    for (int i = 0; i < c->n_in; i++) {
        if (c->in[i].ndim != o->ndim)
            return vk_fail(EM_ERR_SHAPE, "vulkan: op %d: input %d has %d dims, output %d", op, i,
                           c->in[i].ndim, o->ndim);
        vk_put_td(a, EW_TD_IN0 + VK_TD_WORDS * i, &c->in[i], o->ndim);
        bufs[1 + i] = c->in[i].buffer;
    }
    int wide = !is_raw(op) && (vk_is_wide_dt(key) || vk_is_wide_dt(o->dtype));
    if (op == EM_OP_POW && d->wide) wide = 1; /* float pow through double (see the shader) */
    int all_dense = dense(o, o);
    for (int i = 0; i < c->n_in; i++) all_dense &= dense(&c->in[i], o);
    int vec = all_dense && n >= 4 && vec4_ok(c);
    uint64_t items = n;
    if (vec) { /* head: elements before the first 16-byte boundary of every operand */
        uint64_t head = (4 - (uint64_t)o->offset % 4) % 4;
        a[EW_HEAD] = (uint32_t)head;
        a[EW_NVEC] = (uint32_t)((n - head) / 4);
        items = a[EW_NVEC] > 4 ? a[EW_NVEC] : 4;
    }
    const uint32_t spec[VK_N_SPEC] = {a[EW_OP], a[EW_DT_OUT], a[EW_DT_IN0], a[EW_DT_IN0 + 1],
                                      a[EW_FLAG],
                                      a[EW_NIN] | (all_dense ? 16u : 0u) | (vec ? 32u : 0u)};
    return vk_finish(vk_dispatch(d, wide ? VK_SH_ELEMENTWISE_WIDE : VK_SH_ELEMENTWISE, spec, a,
                                 EW_WORDS, bufs, vk_groups_1d(d, items, VK_WG), 1, 1));
}
