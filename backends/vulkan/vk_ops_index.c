/*
 * vk_ops_index.c — data movement by position: CAT (one device copy per
 * input into a view of the output), and the host side of shaders/index.comp:
 * INDEX_SELECT, GATHER, SCATTER_ADD, ONE_HOT, every dtype the CPU backend
 * has (scatter_add into f64 needs the wide build). scatter_add runs one
 * invocation per line along dim, adding serially (see the shader): no
 * atomics, deterministic, the CPU's order of additions.
 *
 * Index errors: before the op writes anything, a validation dispatch finds
 * the first index (row-major order) outside [0, size) and the host reads it
 * back (this waits for the device, like a download), so a bad index returns
 * EM_ERR_INDEX naming the index, its position and the valid range, and leaves
 * the output untouched — as the CPU backend does.
 *
 * Not for: views and slicing (the core does those with strides).
 */
#include "vk_internal.h"

#include <inttypes.h>
#include <string.h>

int vk_index_ok(const vk_device *d, const em_op_call *c)
{
    if (c->op == EM_OP_SCATTER_ADD && c->n_in >= 2) {
        if (c->out[0].dtype == EM_F64 && !d->wide) return 0;
        /* lavapipe: a line longer than this would pass its per-invocation loop cap */
        const em_tdesc *idx = &c->in[1];
        int dim = c->params->dim;
        if (d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU && dim >= 0 && dim < idx->ndim &&
            idx->shape[dim] > 30000)
            return 0;
    }
    return 1;
}

static em_status check_index_dtype(const char *op, const em_tdesc *idx)
{
    if (idx->dtype != EM_I32 && idx->dtype != EM_I64)
        return vk_fail(EM_ERR_DTYPE, "vulkan: %s: index dtype %d (need i32 or i64)", op,
                       idx->dtype);
    return EM_OK;
}

/* Specialization: mode, element dtype, index dtype (the same words as args). */
static const uint32_t *ix_spec(const uint32_t *a)
{
    static _Thread_local uint32_t spec[VK_N_SPEC];
    spec[0] = a[IX_MODE];
    spec[1] = a[IX_DT];
    spec[2] = a[IX_IDT];
    return spec;
}

static void put_shape(uint32_t *a, int ndim, const int64_t *shape)
{
    for (int i = 0; i < ndim; i++) a[IX_SHAPE + i] = (uint32_t)shape[i];
}

/* Checks every element of idx (over shape/strides, ndim dims) is in [0, limit). */
static em_status validate(vk_device *d, const char *op, const em_tdesc *idx, int ndim,
                          const int64_t *shape, const int64_t *strides, int64_t limit, int dim)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (uint64_t)shape[i];
    if (n == 0) return EM_OK;
    if (limit > (int64_t)UINT32_MAX) limit = UINT32_MAX;
    uint32_t none = 0xffffffffu, pos = 0;
    em_status st = vk_upload(d, d->check, 0, &none, 4);
    if (st) return st;
    uint32_t a[IX_WORDS];
    memset(a, 0, sizeof a);
    a[IX_MODE] = IX_MODE_VALIDATE;
    a[IX_NDIM] = (uint32_t)ndim;
    a[IX_NUMEL] = (uint32_t)n;
    a[IX_IDT] = (uint32_t)idx->dtype;
    a[IX_LIMIT] = (uint32_t)limit;
    put_shape(a, ndim, shape);
    a[IX_TD_IDX] = (uint32_t)idx->offset;
    for (int i = 0; i < ndim; i++) a[IX_TD_IDX + 1 + i] = (uint32_t)strides[i];
    vk_buffer *bufs[VK_N_DATA] = {d->check, idx->buffer, NULL, NULL};
    if ((st = vk_dispatch(d, VK_SH_INDEX, ix_spec(a), a, IX_WORDS, bufs, vk_groups_1d(d, n, VK_WG), 1, 1)))
        return st;
    if ((st = vk_download(d, d->check, 0, &pos, 4))) return st;
    if (pos == 0xffffffffu) return EM_OK;
    /* the bad element: its value, for the message */
    int64_t off = idx->offset, rest = pos;
    for (int i = ndim - 1; i >= 0; i--) {
        off += (rest % shape[i]) * strides[i];
        rest /= shape[i];
    }
    int64_t value = 0;
    size_t es = vk_dtype_size(idx->dtype);
    if ((st = vk_download(d, idx->buffer, (size_t)off * es, &value, es))) return st;
    if (es == 4) value = (int32_t)(uint32_t)value;
    return vk_fail(EM_ERR_INDEX,
                   "vulkan: %s: index %" PRId64 " is out of range for dim %d of size %" PRId64
                   " (valid range [0, %" PRId64 ")), at index element %" PRIu32,
                   op, value, dim, limit, limit, pos);
}

static em_status check_dim(const char *op, int dim, int ndim)
{
    if (dim < 0 || dim >= (ndim > 0 ? ndim : 1))
        return vk_fail(EM_ERR_INVALID_ARG, "vulkan: %s: dim %d for a %d-d tensor", op, dim, ndim);
    return EM_OK;
}

em_status vk_k_cat(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = vk_enter(d, c, 1, 1 << 30);
    if (st) return st;
    const em_tdesc *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_dim("cat", dim, o->ndim))) return st;
    int64_t pos = 0;
    for (int i = 0; i < c->n_in; i++) {
        const em_tdesc *x = &c->in[i];
        if (x->dtype != o->dtype || x->ndim != o->ndim)
            return vk_fail(EM_ERR_SHAPE, "vulkan: cat input %d does not match the output", i);
        em_tdesc view = *o;
        if (o->ndim) {
            view.shape[dim] = x->shape[dim];
            view.offset = o->offset + pos * o->strides[dim];
            pos += x->shape[dim];
        }
        if (o->ndim && pos > o->shape[dim])
            return vk_fail(EM_ERR_SHAPE, "vulkan: cat inputs exceed the output along dim %d", dim);
        if ((st = vk_copy_desc(d, &view, x))) return st;
    }
    return vk_finish(EM_OK);
}

em_status vk_k_index(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    int op = c->op;
    em_status st = vk_enter(d, c, op == EM_OP_ONE_HOT ? 1 : 2, op == EM_OP_ONE_HOT ? 1 : 2);
    if (st) return st;
    const em_tdesc *o = &c->out[0];
    const em_tdesc *idx = op == EM_OP_ONE_HOT ? &c->in[0] : &c->in[1];
    const em_tdesc *src = op == EM_OP_ONE_HOT ? NULL : &c->in[0];
    int dim = c->params->dim;
    const char *name = op == EM_OP_GATHER ? "gather" : op == EM_OP_INDEX_SELECT ? "index_select"
                       : op == EM_OP_SCATTER_ADD ? "scatter_add" : "one_hot";
    if ((st = check_index_dtype(name, idx))) return st;
    uint32_t a[IX_WORDS];
    memset(a, 0, sizeof a);
    a[IX_IDT] = (uint32_t)idx->dtype;
    vk_buffer *bufs[VK_N_DATA] = {o->buffer, idx->buffer, src ? src->buffer : NULL, NULL};
    int64_t is[EM_MAX_DIMS] = {0};
    int ndim, sh = VK_SH_INDEX;
    uint64_t n;
    if (op == EM_OP_ONE_HOT) {
        if (o->dtype != EM_I64 || o->ndim != idx->ndim + 1)
            return vk_fail(EM_ERR_SHAPE, "vulkan: one_hot: output must be i64 [..., C]");
        int64_t classes = o->shape[o->ndim - 1];
        if (c->params->ints[0] > 0 && c->params->ints[0] != classes)
            return vk_fail(EM_ERR_SHAPE, "vulkan: one_hot: %lld classes but output's last dim is %lld",
                           (long long)c->params->ints[0], (long long)classes);
        if ((st = validate(d, name, idx, idx->ndim, idx->shape, idx->strides, classes, idx->ndim)))
            return st;
        ndim = o->ndim;
        memcpy(is, idx->strides, sizeof(int64_t) * (size_t)idx->ndim); /* last: 0 */
        a[IX_MODE] = IX_MODE_ONE_HOT;
        a[IX_DT] = EM_I64;
        a[IX_LIMIT] = (uint32_t)classes;
        put_shape(a, o->ndim, o->shape);
        n = vk_numel(o);
        vk_put_td(a, IX_TD_OUT, o, o->ndim);
    } else if (op == EM_OP_SCATTER_ADD) {
        if (o->dtype != src->dtype || idx->ndim != src->ndim || o->ndim != src->ndim)
            return vk_fail(EM_ERR_SHAPE, "vulkan: scatter_add: operands do not match");
        if ((st = check_dim(name, dim, o->ndim))) return st;
        for (int i = 0; i < idx->ndim; i++)
            if (idx->shape[i] > src->shape[i] || (i != dim && idx->shape[i] > o->shape[i]))
                return vk_fail(EM_ERR_SHAPE, "vulkan: scatter_add: index dim %d is %lld, too big",
                               i, (long long)idx->shape[i]);
        int64_t limit = o->ndim ? o->shape[dim] : 1;
        if ((st = validate(d, name, idx, idx->ndim, idx->shape, idx->strides, limit, dim))) return st;
        ndim = idx->ndim;
        memcpy(is, idx->strides, sizeof is);
        a[IX_MODE] = IX_MODE_SCATTER_ADD;
        a[IX_DT] = (uint32_t)o->dtype;
        a[IX_LIMIT] = (uint32_t)limit;
        a[IX_DSTRIDE] = o->ndim ? (uint32_t)o->strides[dim] : 0;
        /* iterate over lines: the shape with 1 along dim */
        int64_t lines[EM_MAX_DIMS];
        memcpy(lines, idx->shape, sizeof lines);
        if (idx->ndim) {
            a[IX_LINE] = (uint32_t)idx->shape[dim];
            a[IX_LINE_ISTRIDE] = (uint32_t)idx->strides[dim];
            a[IX_LINE_SSTRIDE] = (uint32_t)src->strides[dim];
            lines[dim] = 1;
        } else {
            a[IX_LINE] = 1;
        }
        put_shape(a, idx->ndim, lines);
        n = 1;
        for (int i = 0; i < idx->ndim; i++) n *= (uint64_t)lines[i];
        if (o->dtype == EM_F64) sh = VK_SH_INDEX_WIDE;
        em_tdesc ov = *o;
        if (o->ndim) ov.strides[dim] = 0;
        vk_put_td(a, IX_TD_OUT, &ov, ndim);
        vk_put_td(a, IX_TD_SRC, src, ndim);
    } else {
        if (o->dtype != src->dtype || o->ndim != src->ndim)
            return vk_fail(EM_ERR_SHAPE, "vulkan: %s: operands do not match", name);
        if ((st = check_dim(name, dim, src->ndim))) return st;
        int64_t limit = src->ndim ? src->shape[dim] : 1;
        ndim = o->ndim;
        if (op == EM_OP_INDEX_SELECT) {
            if (idx->ndim > 1)
                return vk_fail(EM_ERR_SHAPE, "vulkan: index_select: index has %d dims (need 1)",
                               idx->ndim);
            int64_t len = idx->ndim ? idx->shape[0] : 1, ist = idx->ndim ? idx->strides[0] : 0;
            if ((st = validate(d, name, idx, 1, &len, &ist, limit, dim))) return st;
            if (src->ndim) is[dim] = ist;
        } else {
            if (idx->ndim != o->ndim)
                return vk_fail(EM_ERR_SHAPE, "vulkan: gather: index has %d dims, output %d",
                               idx->ndim, o->ndim);
            if ((st = validate(d, name, idx, idx->ndim, idx->shape, idx->strides, limit, dim)))
                return st;
            memcpy(is, idx->strides, sizeof is);
        }
        a[IX_MODE] = IX_MODE_GATHER;
        a[IX_DT] = (uint32_t)o->dtype;
        a[IX_LIMIT] = (uint32_t)limit;
        a[IX_DSTRIDE] = src->ndim ? (uint32_t)src->strides[dim] : 0;
        put_shape(a, o->ndim, o->shape);
        n = vk_numel(o);
        em_tdesc tv = *src;
        if (src->ndim) tv.strides[dim] = 0;
        vk_put_td(a, IX_TD_OUT, o, ndim);
        vk_put_td(a, IX_TD_SRC, &tv, ndim);
    }
    a[IX_NDIM] = (uint32_t)ndim;
    a[IX_NUMEL] = (uint32_t)n;
    a[IX_TD_IDX] = (uint32_t)idx->offset;
    for (int i = 0; i < ndim; i++) a[IX_TD_IDX + 1 + i] = (uint32_t)is[i];
    return vk_finish(vk_dispatch(d, sh, ix_spec(a), a, IX_WORDS, bufs, vk_groups_1d(d, n, VK_WG), 1, 1));
}
