/*
 * dispatch.c — the op dispatcher: the one place where the core calls a
 * plugin's kernel. Given descriptors it looks up (op, dtype) in the device's
 * backend, honours EM_KERNEL_CONTIGUOUS and supports(), falls back to the
 * CPU backend (copying spans of the buffers there and back) when the device
 * has no kernel, and wraps a kernel's error with the op's context.
 * Not for shape checking or promotion (ops_*.c do that before calling here).
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *op_name(int op)
{
    switch (op) {
    case EM_OP_FILL: return "fill";
    case EM_OP_COPY: return "copy";
    case EM_OP_CAST: return "cast";
    case EM_OP_ARANGE: return "arange";
    case EM_OP_LINSPACE: return "linspace";
    case EM_OP_RAND_UNIFORM: return "rand_uniform";
    case EM_OP_RAND_NORMAL: return "rand_normal";
    case EM_OP_RANDINT: return "randint";
    case EM_OP_ADD: return "add";
    case EM_OP_SUB: return "sub";
    case EM_OP_MUL: return "mul";
    case EM_OP_DIV: return "div";
    case EM_OP_POW: return "pow";
    case EM_OP_MAXIMUM: return "maximum";
    case EM_OP_MINIMUM: return "minimum";
    case EM_OP_EQ: return "eq";
    case EM_OP_NE: return "ne";
    case EM_OP_LT: return "lt";
    case EM_OP_LE: return "le";
    case EM_OP_GT: return "gt";
    case EM_OP_GE: return "ge";
    case EM_OP_WHERE: return "where";
    case EM_OP_CLAMP: return "clamp";
    case EM_OP_MASKED_FILL: return "masked_fill";
    case EM_OP_NEG: return "neg";
    case EM_OP_ABS: return "abs";
    case EM_OP_EXP: return "exp";
    case EM_OP_LOG: return "log";
    case EM_OP_SQRT: return "sqrt";
    case EM_OP_RSQRT: return "rsqrt";
    case EM_OP_SIN: return "sin";
    case EM_OP_COS: return "cos";
    case EM_OP_TANH: return "tanh";
    case EM_OP_SIGMOID: return "sigmoid";
    case EM_OP_RELU: return "relu";
    case EM_OP_GELU: return "gelu";
    case EM_OP_SILU: return "silu";
    case EM_OP_SOFTPLUS: return "softplus";
    case EM_OP_SQUARE: return "square";
    case EM_OP_RECIPROCAL: return "reciprocal";
    case EM_OP_ERF: return "erf";
    case EM_OP_AXPY: return "axpy";
    case EM_OP_SIGN: return "sign";
    case EM_OP_RELU_BACKWARD: return "relu_backward";
    case EM_OP_SUM: return "sum";
    case EM_OP_MEAN: return "mean";
    case EM_OP_MAX: return "max";
    case EM_OP_MIN: return "min";
    case EM_OP_ARGMAX: return "argmax";
    case EM_OP_ARGMIN: return "argmin";
    case EM_OP_VAR: return "var";
    case EM_OP_STD: return "std";
    case EM_OP_LOGSUMEXP: return "logsumexp";
    case EM_OP_SOFTMAX: return "softmax";
    case EM_OP_LOG_SOFTMAX: return "log_softmax";
    case EM_OP_MATMUL: return "matmul";
    case EM_OP_LINEAR: return "linear";
    case EM_OP_LINEAR_ACT: return "linear_act";
    case EM_OP_CAT: return "cat";
    case EM_OP_INDEX_SELECT: return "index_select";
    case EM_OP_GATHER: return "gather";
    case EM_OP_SCATTER_ADD: return "scatter_add";
    case EM_OP_ONE_HOT: return "one_hot";
    case EM_OP_ADAM: return "adam";
    case EM_OP_CROSS_ENTROPY: return "cross_entropy";
    case EM_OP_CROSS_ENTROPY_BACKWARD: return "cross_entropy_backward";
    }
    return "unknown-op";
}

const char *em__op_name(int op) { return op_name(op); }

/* ------------------------------------------------------------------------ */
/* Descriptor helpers                                                        */
/* ------------------------------------------------------------------------ */

bool em__broadcast_shapes(int na, const int64_t *sa, int nb, const int64_t *sb, int *nout,
                          int64_t *sout)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - na), ib = i - (n - nb);
        int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
        if (a != b && a != 1 && b != 1) return false;
        sout[i] = a == 1 ? b : a;
    }
    *nout = n;
    return true;
}

em_tdesc em__desc_broadcast(const em_tensor *t, int ndim, const int64_t *shape)
{
    em_tdesc d = em__desc(t);
    d.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - (ndim - t->ndim);
        d.shape[i] = shape[i];
        d.strides[i] = (j < 0 || (t->shape[j] == 1 && shape[i] != 1)) ? 0 : t->strides[j];
    }
    return d;
}

static int64_t desc_numel(const em_tdesc *d)
{
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}

static bool desc_contiguous(const em_tdesc *d)
{
    int64_t expected = 1;
    for (int i = d->ndim - 1; i >= 0; i--) {
        if (d->shape[i] == 1) continue;
        if (d->strides[i] != expected) return false;
        expected *= d->shape[i];
    }
    return true;
}

/* Element range [lo, hi) of the buffer that a descriptor can touch. */
static void desc_span(const em_tdesc *d, int64_t *lo, int64_t *hi)
{
    int64_t last = d->offset;
    for (int i = 0; i < d->ndim; i++) last += (d->shape[i] - 1) * d->strides[i];
    *lo = d->offset;
    *hi = last + 1;
}

static void describe_call(char *buf, size_t cap, const char *name, const em_device *dev,
                          const em_tdesc *in, int n_in)
{
    size_t used = 0;
    int n = snprintf(buf, cap, "%s(", name);
    if (n > 0) used = (size_t)n;
    for (int i = 0; i < n_in && used < cap; i++) {
        char shape[160];
        n = snprintf(buf + used, cap - used, "%s%s%s", i ? ", " : "", em_dtype_name(in[i].dtype),
                     em__shape_str(in[i].ndim, in[i].shape, shape, sizeof shape));
        if (n > 0) used += (size_t)n;
    }
    if (used < cap) snprintf(buf + used, cap - used, ") on %s: ", dev->name);
}

/* ------------------------------------------------------------------------ */
/* Buffers used only during one call                                         */
/* ------------------------------------------------------------------------ */

static em_status temp_alloc(em_device *dev, size_t bytes, void **buf)
{
    em__device_lock(&dev->lock);
    em_status st = dev->backend->table.buffer_alloc(dev->ctx, bytes ? bytes : 1, buf);
    em__device_unlock(&dev->lock);
    if (st != EM_OK) em__error_prefix("allocating a %zu-byte temporary on %s: ", bytes, dev->name);
    return st;
}

static void temp_free(em_device *dev, void *buf)
{
    if (buf) dev->backend->table.buffer_free(dev->ctx, buf);
}

/* A dense copy of d on dev, through the COPY op. */
static em_status make_dense(const char *name, em_device *dev, const em_tdesc *d, em_tdesc *dense,
                            void **temp)
{
    size_t bytes = (size_t)desc_numel(d) * em_dtype_size(d->dtype);
    em_status st = temp_alloc(dev, bytes, temp);
    if (st != EM_OK) return st;
    *dense = *d;
    dense->buffer = *temp;
    dense->offset = 0;
    em__contiguous_strides(d->ndim, d->shape, dense->strides);
    em_op_params p = {.struct_size = sizeof p};
    st = em__run_op(name, dev, EM_OP_COPY, d, 1, dense, 1, &p);
    if (st != EM_OK) {
        temp_free(dev, *temp);
        *temp = NULL;
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* Running a kernel on its own device                                        */
/* ------------------------------------------------------------------------ */

#define EM_MAX_OP_ARGS 64

static em_status call_kernel(const char *name, em_device *dev, em_kernel_fn fn,
                             const em_op_call *call)
{
    unsigned serial = em__error_serial();
    em__device_lock(&dev->lock);
    em_status st = fn(dev->ctx, call);
    em__device_unlock(&dev->lock);
    if (st == EM_OK) return EM_OK;
    if (em__error_serial() == serial)
        em__fail(st, "the %s kernel of backend '%s' failed without a message", op_name(call->op),
                 dev->backend->name);
    char ctx[600];
    describe_call(ctx, sizeof ctx, name, dev, call->in, call->n_in);
    em__error_prefix("%s", ctx);
    return em_last_status();
}

static em_status run_dense(const char *name, em_device *dev, em_kernel_fn fn, em_op_call *call)
{
    if (call->n_in > EM_MAX_OP_ARGS || call->n_out > 4)
        return em__fail(EM_ERR_INVALID_ARG, "%s: too many operands (%d)", name, call->n_in);
    em_tdesc in[EM_MAX_OP_ARGS], out[4];
    void *in_tmp[EM_MAX_OP_ARGS] = {0}, *out_tmp[4] = {0};
    em_status st = EM_OK;
    for (int i = 0; i < call->n_in && st == EM_OK; i++) {
        in[i] = call->in[i];
        if (!desc_contiguous(&in[i])) st = make_dense(name, dev, &call->in[i], &in[i], &in_tmp[i]);
    }
    for (int i = 0; i < call->n_out && st == EM_OK; i++) {
        out[i] = call->out[i];
        if (!desc_contiguous(&out[i])) {
            /* the op may read the output's prior contents (scatter_add) */
            st = make_dense(name, dev, &call->out[i], &out[i], &out_tmp[i]);
        }
    }
    if (st == EM_OK) {
        em_op_call dense = *call;
        dense.in = in;
        dense.out = out;
        st = call_kernel(name, dev, fn, &dense);
    }
    em_op_params p = {.struct_size = sizeof p};
    for (int i = 0; i < call->n_out && st == EM_OK; i++)
        if (out_tmp[i]) st = em__run_op(name, dev, EM_OP_COPY, &out[i], 1, &call->out[i], 1, &p);
    for (int i = 0; i < call->n_in; i++) temp_free(dev, in_tmp[i]);
    for (int i = 0; i < call->n_out; i++) temp_free(dev, out_tmp[i]);
    return st;
}

/* ------------------------------------------------------------------------ */
/* CPU fallback: copy the spans the op touches to the CPU and back            */
/* ------------------------------------------------------------------------ */

typedef struct span_copy {
    void *cpu_buf;
    int64_t lo;
    size_t bytes;
} span_copy;

em_status em__move_bytes(em_device *from, void *from_buf, size_t from_off, em_device *to,
                            void *to_buf, size_t to_off, size_t bytes)
{
    void *host = malloc(bytes ? bytes : 1);
    if (!host) return em__fail(EM_ERR_OUT_OF_MEMORY, "out of host memory staging %zu bytes", bytes);
    em__device_lock(&from->lock);
    em_status st = from->backend->table.buffer_download(from->ctx, from_buf, from_off, host, bytes);
    em__device_unlock(&from->lock);
    if (st != EM_OK) {
        em__error_prefix("download from %s: ", from->name);
    } else {
        em__device_lock(&to->lock);
        st = to->backend->table.buffer_upload(to->ctx, to_buf, to_off, host, bytes);
        em__device_unlock(&to->lock);
        if (st != EM_OK) em__error_prefix("upload to %s: ", to->name);
    }
    free(host);
    return st;
}

static em_status to_cpu(em_device *dev, em_device *cpu, const em_tdesc *d, em_tdesc *cd,
                        span_copy *sc)
{
    int64_t lo, hi;
    desc_span(d, &lo, &hi);
    size_t esz = em_dtype_size(d->dtype);
    sc->lo = lo;
    sc->bytes = (size_t)(hi - lo) * esz;
    em_status st = temp_alloc(cpu, sc->bytes, &sc->cpu_buf);
    if (st != EM_OK) return st;
    st = em__move_bytes(dev, d->buffer, (size_t)lo * esz, cpu, sc->cpu_buf, 0, sc->bytes);
    *cd = *d;
    cd->buffer = sc->cpu_buf;
    cd->offset = d->offset - lo;
    return st;
}

static em_status run_fallback(const char *name, em_device *dev, em_device *cpu,
                              const em_op_call *call)
{
    if (call->n_in > EM_MAX_OP_ARGS || call->n_out > 4)
        return em__fail(EM_ERR_INVALID_ARG, "%s: too many operands (%d)", name, call->n_in);
    em_tdesc in[EM_MAX_OP_ARGS], out[4];
    span_copy in_sc[EM_MAX_OP_ARGS] = {{0}}, out_sc[4] = {{0}};
    em_status st = EM_OK;
    for (int i = 0; i < call->n_in && st == EM_OK; i++)
        st = to_cpu(dev, cpu, &call->in[i], &in[i], &in_sc[i]);
    for (int i = 0; i < call->n_out && st == EM_OK; i++)
        st = to_cpu(dev, cpu, &call->out[i], &out[i], &out_sc[i]);
    if (st == EM_OK) st = em__run_op(name, cpu, call->op, in, call->n_in, out, call->n_out, call->params);
    for (int i = 0; i < call->n_out && st == EM_OK; i++) {
        size_t esz = em_dtype_size(call->out[i].dtype);
        st = em__move_bytes(cpu, out_sc[i].cpu_buf, 0, dev, call->out[i].buffer,
                        (size_t)out_sc[i].lo * esz, out_sc[i].bytes);
    }
    for (int i = 0; i < call->n_in; i++) temp_free(cpu, in_sc[i].cpu_buf);
    for (int i = 0; i < call->n_out; i++) temp_free(cpu, out_sc[i].cpu_buf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* The entry point                                                           */
/* ------------------------------------------------------------------------ */

static em_status run_op(const char *name, em_device *dev, int op, const em_tdesc *in, int n_in,
                        const em_tdesc *out, int n_out, const em_op_params *params);

em_status em__run_op(const char *name, em_device *dev, int op, const em_tdesc *in, int n_in,
                     const em_tdesc *out, int n_out, const em_op_params *params)
{
    em_status st = run_op(name, dev, op, in, n_in, out, n_out, params);
    if (st != EM_OK || !em__guard_mode()) return st;
    /* EMBER_GUARD=1: did the kernel write outside its outputs? */
    for (int i = 0; i < n_out && st == EM_OK; i++)
        st = em__guard_check(dev, out[i].buffer, op_name(op));
    return st;
}

static em_status run_op(const char *name, em_device *dev, int op, const em_tdesc *in, int n_in,
                        const em_tdesc *out, int n_out, const em_op_params *params)
{
    int key = n_in > 0 ? in[0].dtype : out[0].dtype;
    if (op <= 0 || op >= EM_OP_COUNT_HINT || !em__dtype_valid(key))
        return em__fail(EM_ERR_INTERNAL, "%s: op id %d / dtype %d out of range", name, op, key);
    em_op_call call = {
        .struct_size = sizeof call,
        .op = op,
        .n_in = n_in,
        .n_out = n_out,
        .in = in,
        .out = out,
        .params = params,
    };
    const em_kernel_slot *slot = &dev->backend->kernels[op][key];
    if (slot->fn && (!dev->backend->table.supports || dev->backend->table.supports(dev->ctx, &call))) {
        if (slot->flags & EM_KERNEL_CONTIGUOUS) return run_dense(name, dev, slot->fn, &call);
        return call_kernel(name, dev, slot->fn, &call);
    }
    em_device *cpu = em__cpu_device();
    if (!cpu || cpu == dev) {
        char ctx[600];
        describe_call(ctx, sizeof ctx, name, dev, in, n_in);
        return em__fail(EM_ERR_UNSUPPORTED, "%sbackend '%s' has no %s kernel for dtype %s", ctx,
                        dev->backend->name, op_name(op), em_dtype_name(key));
    }
    if (em__strict_mode()) {
        char ctx[600];
        describe_call(ctx, sizeof ctx, name, dev, in, n_in);
        return em__fail(EM_ERR_UNSUPPORTED,
                        "%sbackend '%s' has no %s kernel for dtype %s and EMBER_STRICT=1 "
                        "forbids running it on the CPU backend",
                        ctx, dev->backend->name, op_name(op), em_dtype_name(key));
    }
    em__note_fallback(op, dev);
    return run_fallback(name, dev, cpu, &call);
}

bool em__has_kernel(const em_device *dev, int op, int dtype)
{
    return dev && op > 0 && op < EM_OP_COUNT_HINT && em__dtype_valid(dtype) &&
           dev->backend->kernels[op][dtype].fn != NULL;
}

em_status em__same_device(const char *name, const em_tensor *const *ts, int n)
{
    const em_tensor *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (!first) {
            first = ts[i];
        } else if (ts[i]->storage->device != first->storage->device) {
            char a[200], b[200];
            return em__fail(EM_ERR_DEVICE,
                            "%s: tensors are on different devices (%s and %s); copy one with "
                            "em_tensor_to first",
                            name, em__describe(first, a, sizeof a), em__describe(ts[i], b, sizeof b));
        }
    }
    return EM_OK;
}
