/*
 * ops_reduce.c — reductions (sum, mean, max, min, argmax, argmin, var, std,
 * logsumexp) and softmax/log_softmax. Turns the dims list into a reduce mask,
 * chooses dtypes, handles empty inputs (which never reach a kernel) and the
 * keepdim reshape; the kernels see the keepdim form only.
 */
#include "autograd.h"

#include <math.h>
#include <stdio.h>

static const em_op_params base_params = {.struct_size = sizeof(em_op_params)};

/* Builds the reduce mask from dims (all when ndims == 0). */
static bool reduce_mask(const char *name, const em_tensor *t, const int *dims, int ndims,
                        uint32_t *mask)
{
    *mask = 0;
    if (ndims < 0 || (ndims > 0 && !dims)) {
        em__fail(EM_ERR_INVALID_ARG, "%s: dims list is NULL or its count %d is negative", name, ndims);
        return false;
    }
    if (ndims == 0) {
        *mask = t->ndim ? (uint32_t)((1u << t->ndim) - 1) : 0;
        return true;
    }
    for (int i = 0; i < ndims; i++) {
        int d = em__wrap_dim(dims[i], t->ndim, name);
        if (d < 0) return false;
        if (t->ndim == 0) continue;
        if (*mask & (1u << d)) {
            em__fail(EM_ERR_INVALID_ARG, "%s: dim %d appears twice in the dims list", name, dims[i]);
            return false;
        }
        *mask |= 1u << d;
    }
    return true;
}

/* Removes the reduced dims of a fresh contiguous result (keepdim false). */
static void drop_reduced(em_tensor *out, uint32_t mask)
{
    int n = 0;
    for (int i = 0; i < out->ndim; i++)
        if (!(mask & (1u << i))) out->shape[n++] = out->shape[i];
    out->ndim = n;
    em__contiguous_strides(n, out->shape, out->strides);
}

static em_dtype float_dtype(em_dtype d) { return em_dtype_is_float(d) ? d : EM_F32; }

/* Value for reducing nothing, or NAN to mean "an error". */
static double empty_value(int op)
{
    switch (op) {
    case EM_OP_SUM: return 0.0;
    case EM_OP_LOGSUMEXP: return -INFINITY;
    case EM_OP_MEAN:
    case EM_OP_VAR:
    case EM_OP_STD: return NAN;
    }
    return 0.0;
}

static em_tensor *reduce(const char *name, int op, const em_tensor *t, uint32_t mask,
                         bool keepdim, int flag)
{
    em_dtype in_dtype = t->dtype, out_dtype = t->dtype;
    switch (op) {
    case EM_OP_SUM:
        if (!em_dtype_is_float(t->dtype)) out_dtype = EM_I64;
        break;
    case EM_OP_MEAN:
    case EM_OP_VAR:
    case EM_OP_STD:
    case EM_OP_LOGSUMEXP:
        in_dtype = out_dtype = float_dtype(t->dtype);
        break;
    case EM_OP_ARGMAX:
    case EM_OP_ARGMIN:
        out_dtype = EM_I64;
        break;
    }
    int64_t shape[EM_MAX_DIMS];
    int64_t reduced = 1;
    for (int i = 0; i < t->ndim; i++) {
        shape[i] = (mask & (1u << i)) ? 1 : t->shape[i];
        if (mask & (1u << i)) reduced *= t->shape[i];
    }
    bool arg = op == EM_OP_ARGMAX || op == EM_OP_ARGMIN;
    if (reduced == 0 && (op == EM_OP_MAX || op == EM_OP_MIN || arg)) {
        char d[200];
        em__fail(EM_ERR_SHAPE, "%s: cannot reduce over a zero-size dim of %s (no identity)", name,
                 em__describe(t, d, sizeof d));
        return NULL;
    }
    em_tensor *c = em__cast(name, t, in_dtype);
    if (!c) return NULL;
    em_tensor *out = em__alloc(t->storage->device, out_dtype, t->ndim, shape);
    em_status st = out ? EM_OK : em_last_status();
    if (st == EM_OK && out->numel > 0) {
        if (c->numel == 0) {
            st = em__fill(out, empty_value(op));
        } else {
            em_op_params p = base_params;
            p.reduce_mask = mask;
            p.flag = flag;
            em_tdesc in = em__desc(c), od = em__desc(out);
            if (t->ndim == 0) { /* a scalar reduces as a 1-element vector */
                in.ndim = od.ndim = 1;
                in.shape[0] = od.shape[0] = 1;
                in.strides[0] = od.strides[0] = 1;
                p.reduce_mask = 1;
            }
            st = em__run_op(name, t->storage->device, op, &in, 1, &od, 1, &p);
        }
    }
    em_tensor_release(c);
    if (st != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    if (!keepdim) drop_reduced(out, mask);
    return em__own(em__grad_reduce(op, t, mask, keepdim, flag, out));
}

static em_tensor *reduce_dims(const char *name, int op, const em_tensor *t, const int *dims,
                              int ndims, bool keepdim, int flag)
{
    if (!t) {
        em__null_arg(name, "t");
        return NULL;
    }
    uint32_t mask;
    if (!reduce_mask(name, t, dims, ndims, &mask)) return NULL;
    return reduce(name, op, t, mask, keepdim, flag);
}

em_tensor *em_sum(const em_tensor *t, const int *dims, int ndims, bool keepdim)
{
    return reduce_dims("em_sum", EM_OP_SUM, t, dims, ndims, keepdim, 0);
}

em_tensor *em_mean(const em_tensor *t, const int *dims, int ndims, bool keepdim)
{
    return reduce_dims("em_mean", EM_OP_MEAN, t, dims, ndims, keepdim, 0);
}

em_tensor *em_max(const em_tensor *t, const int *dims, int ndims, bool keepdim)
{
    return reduce_dims("em_max", EM_OP_MAX, t, dims, ndims, keepdim, 0);
}

em_tensor *em_min(const em_tensor *t, const int *dims, int ndims, bool keepdim)
{
    return reduce_dims("em_min", EM_OP_MIN, t, dims, ndims, keepdim, 0);
}

em_tensor *em_var(const em_tensor *t, const int *dims, int ndims, bool unbiased, bool keepdim)
{
    return reduce_dims("em_var", EM_OP_VAR, t, dims, ndims, keepdim, unbiased ? 1 : 0);
}

em_tensor *em_std(const em_tensor *t, const int *dims, int ndims, bool unbiased, bool keepdim)
{
    return reduce_dims("em_std", EM_OP_STD, t, dims, ndims, keepdim, unbiased ? 1 : 0);
}

em_tensor *em_logsumexp(const em_tensor *t, const int *dims, int ndims, bool keepdim)
{
    return reduce_dims("em_logsumexp", EM_OP_LOGSUMEXP, t, dims, ndims, keepdim, 0);
}

static em_tensor *arg_reduce(const char *name, int op, const em_tensor *t, int dim, bool keepdim)
{
    if (!t) {
        em__null_arg(name, "t");
        return NULL;
    }
    if (dim == EM_ALL_DIMS) return reduce(name, op, t, t->ndim ? (1u << t->ndim) - 1 : 0, keepdim, 0);
    int d = em__wrap_dim(dim, t->ndim, name);
    if (d < 0) return NULL;
    return reduce(name, op, t, t->ndim ? 1u << d : 0, keepdim, 0);
}

em_tensor *em_argmax(const em_tensor *t, int dim, bool keepdim)
{
    return arg_reduce("em_argmax", EM_OP_ARGMAX, t, dim, keepdim);
}

em_tensor *em_argmin(const em_tensor *t, int dim, bool keepdim)
{
    return arg_reduce("em_argmin", EM_OP_ARGMIN, t, dim, keepdim);
}

static em_tensor *softmax_like(const char *name, int op, const em_tensor *t, int dim)
{
    if (!t) {
        em__null_arg(name, "t");
        return NULL;
    }
    int d = em__wrap_dim(dim, t->ndim, name);
    if (d < 0) return NULL;
    em_tensor *c = em__cast(name, t, float_dtype(t->dtype));
    if (!c) return NULL;
    em_tensor *out = em__alloc(t->storage->device, c->dtype, t->ndim, t->shape);
    em_status st = out ? EM_OK : em_last_status();
    if (st == EM_OK && out->numel > 0) {
        em_op_params p = base_params;
        p.dim = d;
        em_tdesc in = em__desc(c), od = em__desc(out);
        if (t->ndim == 0) { /* a scalar is a 1-element row */
            in.ndim = od.ndim = 1;
            in.shape[0] = od.shape[0] = 1;
            in.strides[0] = od.strides[0] = 1;
        }
        st = em__run_op(name, t->storage->device, op, &in, 1, &od, 1, &p);
    }
    em_tensor_release(c);
    if (st != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return em__own(em__grad_softmax(op, t, d, out));
}

em_tensor *em_softmax(const em_tensor *t, int dim)
{
    return softmax_like("em_softmax", EM_OP_SOFTMAX, t, dim);
}

em_tensor *em_log_softmax(const em_tensor *t, int dim)
{
    return softmax_like("em_log_softmax", EM_OP_LOG_SOFTMAX, t, dim);
}
