/*
 * cuda_index.cu — data movement by position: CAT, INDEX_SELECT, GATHER,
 * SCATTER_ADD, ONE_HOT, and the device-side index error record.
 *
 * Index errors (an index < 0 or >= the dim's size; i32 or i64 indices):
 * the kernel that reads indices checks each one; a bad one is never used
 * to address memory, and its position (row-major over the index operand,
 * as the CPU backend reports it) goes to the device's error record with
 * atomicMin, so the smallest bad position wins whatever the thread order.
 * After the op's kernels are queued, the record (8 bytes) is copied to
 * pinned host memory and the stream synchronised: the op returns
 * EM_ERR_INDEX naming the first bad index (its value is fetched then, only
 * on this error path) exactly like the CPU backend, and never aborts
 * (PyTorch's device assert would kill the context). The price is one
 * stream synchronisation per index op (gather, index_select, scatter_add,
 * one_hot); cat has no indices and stays asynchronous.
 *   - gather / index_select / one_hot may leave a partly written output on
 *     error; the ABI lets the core discard it.
 *   - scatter_add updates its output in place (em_scatter_add_ on the
 *     caller's tensor), so it runs a validation kernel first; the scatter
 *     kernel reads the record and writes nothing when it is set. No host
 *     round trip between the two: one synchronisation in all.
 *
 * scatter_add accumulates with atomics: f32, f64 (atomicAdd), f16, bf16
 * (native atomicAdd on __half / __nv_bfloat16, sm_70 / sm_80 and newer:
 * every add is rounded to the half type, as the CPU's sequential loop
 * does), i32 / i64 (wrap-around atomicAdd), bool (OR: atomicOr on the
 * aligned 32-bit word holding the byte). With duplicate indices the order of
 * float additions is not fixed, so float results may differ from the
 * CPU's in the last bits and from run to run (as in PyTorch).
 *
 * Not for: views and slicing (the core does those with strides).
 */
#include "cuda_common.cuh"

#include <inttypes.h>

/* ---------------- the error record ---------------------------------------- */

__device__ __forceinline__ void report_bad(unsigned long long *err, int64_t pos)
{
    atomicMin(err, (unsigned long long)pos);
}

/* Element offset of row-major position pos over (ndim, shape, strides). */
static int64_t offset_of(int64_t pos, int ndim, const int64_t *shape, const int64_t *strides)
{
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t i = shape[d] > 0 ? pos % shape[d] : 0;
        pos = shape[d] > 0 ? pos / shape[d] : 0;
        off += i * strides[d];
    }
    return off;
}

/* Reads the error record after the op's kernels (one synchronisation).
 * Positions are row-major over (ndim, shape, strides) of idx. */
static em_status index_finish(cu_device *dev, const char *op, const em_tdesc *idx, int ndim,
                              const int64_t *shape, const int64_t *strides, int64_t limit, int dim)
{
    CU_CHECK(cudaMemcpyAsync(dev->err_host, dev->err_dev, sizeof(unsigned long long),
                             cudaMemcpyDeviceToHost, dev->stream));
    CU_CHECK(cudaStreamSynchronize(dev->stream));
    unsigned long long pos = dev->err_host[0];
    if (pos == CU_NO_ERROR) return EM_OK;
    /* reset the record, then fetch the bad index for the message */
    CU_CHECK(cudaMemsetAsync(dev->err_dev, 0xff, sizeof(unsigned long long), dev->stream));
    int64_t off = offset_of((int64_t)pos, ndim, shape, strides);
    size_t es = cu_dtype_size(idx->dtype);
    CU_CHECK(cudaMemcpyAsync(&dev->err_host[1], cu_ptr(idx) + off * (int64_t)es, es,
                             cudaMemcpyDeviceToHost, dev->stream));
    CU_CHECK(cudaStreamSynchronize(dev->stream));
    int64_t bad;
    if (idx->dtype == EM_I32) {
        int32_t v;
        memcpy(&v, &dev->err_host[1], 4);
        bad = v;
    } else {
        memcpy(&bad, &dev->err_host[1], 8);
    }
    return cu_fail(EM_ERR_INDEX,
                   "cuda: %s: index %" PRId64 " is out of range for dim %d of size %" PRId64
                   " (valid range [0, %" PRId64 ")), at index element %" PRId64,
                   op, bad, dim, limit, limit, (int64_t)pos);
}

static em_status check_index_dtype(const char *op, const em_tdesc *idx)
{
    if (idx->dtype != EM_I32 && idx->dtype != EM_I64)
        return cu_fail(EM_ERR_DTYPE, "cuda: %s: index dtype %s (need i32 or i64)", op,
                       cu_dtype_name(idx->dtype));
    return EM_OK;
}

static em_status check_dim(const char *op, int dim, int ndim)
{
    if (dim < 0 || dim >= (ndim > 0 ? ndim : 1))
        return cu_fail(EM_ERR_INVALID_ARG, "cuda: %s: dim %d for a %d-d tensor", op, dim, ndim);
    return EM_OK;
}

/* ---------------- gather and index_select ---------------------------------- */

/* Operands {out, index, t with stride 0 along dim}; value t[.. + v * tds].
 * Bad index position: the linear output index (gather: the index has the
 * output's shape) or, for index_select (sel_len > 0), the position along
 * the 1-D index: (i / inner) % sel_len. */
template <class T, class IT> struct GatherF {
    T *o;
    const IT *ix;
    const T *t;
    int64_t tds, limit, inner, sel_len;
    unsigned long long *err;
    __device__ void operator()(const int64_t *off, int64_t i) const
    {
        int64_t v = (int64_t)ix[off[1]];
        if (v < 0 || v >= limit) {
            report_bad(err, sel_len > 0 ? (i / inner) % sel_len : i);
            return;
        }
        o[off[0]] = t[off[2] + v * tds];
    }
};

template <class T, class IT>
static em_status gather_run(cu_device *dev, const em_tdesc *o, const em_tdesc *idx,
                            const em_tdesc *t, const int64_t *istrides, const int64_t *tstrides,
                            int64_t tds, int64_t limit, int64_t inner, int64_t sel_len)
{
    GatherF<T, IT> f{(T *)cu_ptr(o), (const IT *)cu_ptr(idx), (const T *)cu_ptr(t), tds, limit,
                     inner, sel_len, dev->err_dev};
    const int64_t *s[3] = {o->strides, istrides, tstrides};
    return launch_s<3>(dev, s, o->ndim, o->shape, f, "gather kernel");
}

/* By element size and index dtype. */
static em_status gather_any(cu_device *dev, const em_tdesc *o, const em_tdesc *idx,
                            const em_tdesc *t, const int64_t *is, const int64_t *ts, int64_t tds,
                            int64_t limit, int64_t inner, int64_t sel_len)
{
    int i64 = idx->dtype == EM_I64;
#define G_(T)                                                                            \
    return i64 ? gather_run<T, int64_t>(dev, o, idx, t, is, ts, tds, limit, inner, sel_len) \
               : gather_run<T, int32_t>(dev, o, idx, t, is, ts, tds, limit, inner, sel_len)
    switch (cu_dtype_size(t->dtype)) {
    case 1: G_(uint8_t);
    case 2: G_(uint16_t);
    case 4: G_(uint32_t);
    default: G_(uint64_t);
    }
#undef G_
}

em_status cu_k_gather(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *t = &c->in[0], *idx = &c->in[1], *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_index_dtype("gather", idx))) return st;
    if (o->dtype != t->dtype)
        return cu_fail(EM_ERR_DTYPE, "cuda: gather %s -> %s", cu_dtype_name(t->dtype),
                       cu_dtype_name(o->dtype));
    if ((st = cu_check_shape("gather index", idx, o))) return st;
    if (t->ndim != o->ndim)
        return cu_fail(EM_ERR_SHAPE, "cuda: gather: input has %d dims, index %d", t->ndim, o->ndim);
    if ((st = check_dim("gather", dim, t->ndim))) return st;
    if ((st = cu_set_device(dev))) return st;
    int64_t limit = t->ndim ? t->shape[dim] : 1;
    int64_t ts[EM_MAX_DIMS];
    memcpy(ts, t->strides, sizeof ts);
    if (t->ndim) ts[dim] = 0;
    int64_t tds = t->ndim ? t->strides[dim] : 0;
    if ((st = gather_any(dev, o, idx, t, idx->strides, ts, tds, limit, 1, 0))) return st;
    return index_finish(dev, "gather", idx, o->ndim, o->shape, idx->strides, limit, dim);
}

em_status cu_k_index_select(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *t = &c->in[0], *idx = &c->in[1], *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_index_dtype("index_select", idx))) return st;
    if (o->dtype != t->dtype)
        return cu_fail(EM_ERR_DTYPE, "cuda: index_select %s -> %s", cu_dtype_name(t->dtype),
                       cu_dtype_name(o->dtype));
    if (idx->ndim > 1)
        return cu_fail(EM_ERR_SHAPE, "cuda: index_select: index has %d dims (need 1)", idx->ndim);
    if ((st = check_dim("index_select", dim, t->ndim))) return st;
    int64_t len = idx->ndim ? idx->shape[0] : 1;
    int64_t istride = idx->ndim ? idx->strides[0] : 0;
    if (t->ndim != o->ndim || (o->ndim && o->shape[dim] != len))
        return cu_fail(EM_ERR_SHAPE, "cuda: index_select: output shape does not match");
    for (int d = 0; d < t->ndim; d++)
        if (d != dim && t->shape[d] != o->shape[d])
            return cu_fail(EM_ERR_SHAPE, "cuda: index_select: output dim %d is %lld, input %lld", d,
                           (long long)o->shape[d], (long long)t->shape[d]);
    if ((st = cu_set_device(dev))) return st;
    int64_t limit = t->ndim ? t->shape[dim] : 1;
    int64_t ts[EM_MAX_DIMS], is[EM_MAX_DIMS] = {0};
    memcpy(ts, t->strides, sizeof ts);
    int64_t inner = 1;
    if (t->ndim) {
        ts[dim] = 0;
        is[dim] = istride;
        for (int d = dim + 1; d < o->ndim; d++) inner *= o->shape[d];
    }
    int64_t tds = t->ndim ? t->strides[dim] : 0;
    if ((st = gather_any(dev, o, idx, t, is, ts, tds, limit, inner, len))) return st;
    return index_finish(dev, "index_select", idx, 1, &len, &istride, limit, dim);
}

/* ---------------- scatter_add ---------------------------------------------- */

template <class IT> struct IndexCheckF {
    const IT *ix;
    int64_t limit;
    unsigned long long *err;
    __device__ void operator()(const int64_t *off, int64_t i) const
    {
        int64_t v = (int64_t)ix[off[0]];
        if (v < 0 || v >= limit) report_bad(err, i);
    }
};

__device__ __forceinline__ void atomic_add(float *p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double *p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(__half *p, __half v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(bf16_t *p, bf16_t v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int32_t *p, int32_t v) { atomicAdd((int *)p, (int)v); }
__device__ __forceinline__ void atomic_add(int64_t *p, int64_t v)
{
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
}
__device__ __forceinline__ void atomic_add(bool_t *p, bool_t v)
{
    /* bool add is OR: set the byte to 1 inside its aligned 32-bit word
     * (buffers are 256-byte aligned and at least 512 bytes, so the word
     * lies inside the allocation) */
    if (!v) return;
    uintptr_t a = (uintptr_t)p;
    atomicOr((unsigned int *)(a & ~(uintptr_t)3), 1u << (8u * (unsigned)(a & 3u)));
}

/* Operands {index, src, out with stride 0 along dim}, over index's shape. */
template <class T, class IT> struct ScatterF {
    const IT *ix;
    const T *src;
    T *o;
    int64_t ods, limit;
    const unsigned long long *err;
    __device__ void operator()(const int64_t *off, int64_t) const
    {
        if (*(volatile const unsigned long long *)err != CU_NO_ERROR) return;
        int64_t v = (int64_t)ix[off[0]];
        if (v < 0 || v >= limit) return;
        atomic_add(o + off[2] + v * ods, src[off[1]]);
    }
};

template <class T, class IT>
static em_status scatter_run(cu_device *dev, const em_tdesc *src, const em_tdesc *idx,
                             const em_tdesc *o, const int64_t *os, int64_t ods, int64_t limit)
{
    const int64_t *s1[1] = {idx->strides};
    IndexCheckF<IT> chk{(const IT *)cu_ptr(idx), limit, dev->err_dev};
    em_status st = launch_s<1>(dev, s1, idx->ndim, idx->shape, chk, "scatter_add index check");
    if (st) return st;
    ScatterF<T, IT> f{(const IT *)cu_ptr(idx), (const T *)cu_ptr(src), (T *)cu_ptr(o), ods, limit,
                      dev->err_dev};
    const int64_t *s3[3] = {idx->strides, src->strides, os};
    return launch_s<3>(dev, s3, idx->ndim, idx->shape, f, "scatter_add kernel");
}

template <class T>
static em_status scatter_dt(cu_device *dev, const em_tdesc *src, const em_tdesc *idx,
                            const em_tdesc *o, const int64_t *os, int64_t ods, int64_t limit)
{
    if (idx->dtype == EM_I64) return scatter_run<T, int64_t>(dev, src, idx, o, os, ods, limit);
    return scatter_run<T, int32_t>(dev, src, idx, o, os, ods, limit);
}

em_status cu_k_scatter_add(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *src = &c->in[0], *idx = &c->in[1], *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_index_dtype("scatter_add", idx))) return st;
    if (o->dtype != src->dtype)
        return cu_fail(EM_ERR_DTYPE, "cuda: scatter_add %s into %s", cu_dtype_name(src->dtype),
                       cu_dtype_name(o->dtype));
    if (idx->ndim != src->ndim || o->ndim != src->ndim)
        return cu_fail(EM_ERR_SHAPE, "cuda: scatter_add: dims of src %d, index %d, out %d",
                       src->ndim, idx->ndim, o->ndim);
    if ((st = check_dim("scatter_add", dim, o->ndim))) return st;
    for (int d = 0; d < idx->ndim; d++)
        if (idx->shape[d] > src->shape[d] || (d != dim && idx->shape[d] > o->shape[d]))
            return cu_fail(EM_ERR_SHAPE, "cuda: scatter_add: index dim %d is %lld, too big", d,
                           (long long)idx->shape[d]);
    if ((st = cu_set_device(dev))) return st;
    int64_t limit = o->ndim ? o->shape[dim] : 1;
    int64_t os[EM_MAX_DIMS];
    memcpy(os, o->strides, sizeof os);
    if (o->ndim) os[dim] = 0;
    int64_t ods = o->ndim ? o->strides[dim] : 0;
    switch (o->dtype) {
    case EM_F32: st = scatter_dt<float>(dev, src, idx, o, os, ods, limit); break;
    case EM_F64: st = scatter_dt<double>(dev, src, idx, o, os, ods, limit); break;
    case EM_F16: st = scatter_dt<__half>(dev, src, idx, o, os, ods, limit); break;
    case EM_BF16: st = scatter_dt<bf16_t>(dev, src, idx, o, os, ods, limit); break;
    case EM_I32: st = scatter_dt<int32_t>(dev, src, idx, o, os, ods, limit); break;
    case EM_I64: st = scatter_dt<int64_t>(dev, src, idx, o, os, ods, limit); break;
    default: st = scatter_dt<bool_t>(dev, src, idx, o, os, ods, limit); break;
    }
    if (st) return st;
    return index_finish(dev, "scatter_add", idx, idx->ndim, idx->shape, idx->strides, limit, dim);
}

/* ---------------- one_hot ---------------------------------------------------- */

/* Over out's shape [..., C]; operands {out, index with stride 0 along the
 * class dim}. Every element is written (the output is not pre-zeroed). */
template <class IT> struct OneHotF {
    int64_t *o;
    const IT *ix;
    int64_t classes;
    unsigned long long *err;
    __device__ void operator()(const int64_t *off, int64_t i) const
    {
        int64_t v = (int64_t)ix[off[1]];
        int64_t k = i % classes;
        if (v < 0 || v >= classes) {
            if (k == 0) report_bad(err, i / classes);
            return;
        }
        o[off[0]] = v == k;
    }
};

em_status cu_k_one_hot(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 1, 1, 1);
    if (st) return st;
    const em_tdesc *idx = &c->in[0], *o = &c->out[0];
    if ((st = check_index_dtype("one_hot", idx))) return st;
    if (o->dtype != EM_I64)
        return cu_fail(EM_ERR_DTYPE, "cuda: one_hot output is %s (need i64)", cu_dtype_name(o->dtype));
    if (o->ndim != idx->ndim + 1)
        return cu_fail(EM_ERR_SHAPE, "cuda: one_hot: output has %d dims, index %d", o->ndim,
                       idx->ndim);
    for (int d = 0; d < idx->ndim; d++)
        if (idx->shape[d] != o->shape[d])
            return cu_fail(EM_ERR_SHAPE, "cuda: one_hot: index dim %d is %lld, output %lld", d,
                           (long long)idx->shape[d], (long long)o->shape[d]);
    int64_t classes = o->shape[o->ndim - 1];
    if (c->params->ints[0] > 0 && c->params->ints[0] != classes)
        return cu_fail(EM_ERR_SHAPE, "cuda: one_hot: %lld classes but output's last dim is %lld",
                       (long long)c->params->ints[0], (long long)classes);
    if ((st = cu_set_device(dev))) return st;
    int64_t is[EM_MAX_DIMS] = {0};
    for (int d = 0; d < idx->ndim; d++) is[d] = idx->strides[d];
    const int64_t *s[2] = {o->strides, is};
    if (idx->dtype == EM_I64) {
        OneHotF<int64_t> f{(int64_t *)cu_ptr(o), (const int64_t *)cu_ptr(idx), classes, dev->err_dev};
        st = launch_s<2>(dev, s, o->ndim, o->shape, f, "one_hot kernel");
    } else {
        OneHotF<int32_t> f{(int64_t *)cu_ptr(o), (const int32_t *)cu_ptr(idx), classes, dev->err_dev};
        st = launch_s<2>(dev, s, o->ndim, o->shape, f, "one_hot kernel");
    }
    if (st) return st;
    return index_finish(dev, "one_hot", idx, idx->ndim, idx->shape, idx->strides, classes,
                        idx->ndim);
}

/* ---------------- cat ------------------------------------------------------- */

/* One strided copy per input into the matching slice of the output (a dense
 * slice becomes a cudaMemcpyAsync through cu_copy_desc). */
em_status cu_k_cat(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 1, 1 << 30, 1);
    if (st) return st;
    const em_tdesc *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_dim("cat", dim, o->ndim))) return st;
    int64_t pos = 0;
    for (int i = 0; i < c->n_in; i++) {
        const em_tdesc *x = &c->in[i];
        if (x->dtype != o->dtype)
            return cu_fail(EM_ERR_DTYPE, "cuda: cat input %d is %s, output %s", i,
                           cu_dtype_name(x->dtype), cu_dtype_name(o->dtype));
        if (x->ndim != o->ndim)
            return cu_fail(EM_ERR_SHAPE, "cuda: cat input %d has %d dims, output %d", i, x->ndim,
                           o->ndim);
        for (int d = 0; d < o->ndim; d++)
            if (d != dim && x->shape[d] != o->shape[d])
                return cu_fail(EM_ERR_SHAPE, "cuda: cat input %d dim %d is %lld, output %lld", i, d,
                               (long long)x->shape[d], (long long)o->shape[d]);
        pos += o->ndim ? x->shape[dim] : 1;
    }
    if (o->ndim && pos != o->shape[dim])
        return cu_fail(EM_ERR_SHAPE, "cuda: cat inputs give %lld along dim %d, output %lld",
                       (long long)pos, dim, (long long)o->shape[dim]);
    pos = 0;
    for (int i = 0; i < c->n_in; i++) {
        const em_tdesc *x = &c->in[i];
        em_tdesc view = *o;
        if (o->ndim) {
            view.shape[dim] = x->shape[dim];
            view.offset = o->offset + pos * o->strides[dim];
            pos += x->shape[dim];
        }
        if (cu_numel(&view) > 0 && (st = cu_copy_desc(dev, &view, x))) return st;
    }
    return EM_OK;
}
