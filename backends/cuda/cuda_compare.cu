/*
 * cuda_compare.cu — comparisons EQ .. GE (bool out), WHERE, CLAMP and
 * MASKED_FILL, on the strided indexer of cuda_common.cuh (any strides,
 * 0 for broadcast dims; inputs already have the output's shape).
 *
 * Semantics are the CPU backend's (backends/cpu/cpu_binary.c):
 *   - comparisons load both operands into the compute type (f32 for f16 and
 *     bf16, int for bool); the scalar form stores scalar[0] in the dtype
 *     first (so an f16 comparison sees the f16-rounded scalar), as the CPU
 *     does; NaN compares false except with NE;
 *   - where/masked_fill move raw bits by element size (no conversion);
 *     masked_fill's value is scalar[0] stored with the CAST rules;
 *   - clamp: v < lo ? lo : v, then v > hi ? hi : v in the compute type, so
 *     NaN stays NaN and a NaN bound leaves that side open; integer dtypes
 *     use ceil(lo) / floor(hi) saturated to the dtype's range.
 *
 * All are value maps (launch_map, cuda_common.cuh): dense, 16-byte-aligned
 * operands take the vectorised path, others the strided indexer, with the
 * same functor (bit-identical results).
 *
 * Not for: arithmetic binary ops (cuda_elementwise.cu).
 */
#include "cuda_common.cuh"

/* ---------------- comparisons -------------------------------------------- */

template <int OP, class CT> __device__ __forceinline__ bool cmp(CT a, CT b)
{
    if constexpr (OP == EM_OP_EQ) return a == b;
    else if constexpr (OP == EM_OP_NE) return a != b;
    else if constexpr (OP == EM_OP_LT) return a < b;
    else if constexpr (OP == EM_OP_LE) return a <= b;
    else if constexpr (OP == EM_OP_GT) return a > b;
    else return a >= b;
}

template <int OP, class T> struct CmpV {
    typedef typename Tr<T>::CT CT;
    __device__ __forceinline__ bool_t operator()(T a, T b) const
    {
        return (bool_t)cmp<OP, CT>(ld<T>(a), ld<T>(b));
    }
};
/* The scalar form: in[0] op s. */
template <int OP, class T> struct CmpSV {
    typedef typename Tr<T>::CT CT;
    CT s;
    __device__ __forceinline__ bool_t operator()(T a) const { return (bool_t)cmp<OP, CT>(ld<T>(a), s); }
};

/* scalar[0] stored in dtype T (CAST rules) and loaded back as the compute
 * type, on the host. */
template <class T> static typename Tr<T>::CT scalar_as_stored(double v)
{
    typedef typename Tr<T>::CT CT;
    if constexpr (std::is_same<T, __half>::value) return em_f16_to_f32(em_f32_to_f16((float)v));
    else if constexpr (std::is_same<T, bf16_t>::value) return em_bf16_to_f32(em_f32_to_bf16((float)v));
    else if constexpr (std::is_same<T, float>::value) return (float)v;
    else if constexpr (std::is_same<T, double>::value) return v;
    else if constexpr (std::is_same<T, int32_t>::value) return sat_i32_d(v);
    else if constexpr (std::is_same<T, int64_t>::value) return sat_i64_d(v);
    else return (CT)(v != 0);
}

template <int OP, class T> static em_status cmp_run(cu_device *dev, const em_op_call *c)
{
    const em_tdesc *o = &c->out[0], *x = &c->in[0];
    if (c->n_in == 1) {
        const em_tdesc *d[2] = {o, x};
        return launch_map(dev, d, CmpSV<OP, T>{scalar_as_stored<T>(c->params->scalar[0])},
                          "comparison kernel (scalar)", (bool_t *)cu_ptr(o), (const T *)cu_ptr(x));
    }
    const em_tdesc *y = &c->in[1];
    const em_tdesc *d[3] = {o, x, y};
    return launch_map(dev, d, CmpV<OP, T>{}, "comparison kernel", (bool_t *)cu_ptr(o),
                      (const T *)cu_ptr(x), (const T *)cu_ptr(y));
}

template <class T> static em_status cmp_dt(cu_device *dev, const em_op_call *c)
{
    switch (c->op) {
    case EM_OP_EQ: return cmp_run<EM_OP_EQ, T>(dev, c);
    case EM_OP_NE: return cmp_run<EM_OP_NE, T>(dev, c);
    case EM_OP_LT: return cmp_run<EM_OP_LT, T>(dev, c);
    case EM_OP_LE: return cmp_run<EM_OP_LE, T>(dev, c);
    case EM_OP_GT: return cmp_run<EM_OP_GT, T>(dev, c);
    case EM_OP_GE: return cmp_run<EM_OP_GE, T>(dev, c);
    default:
        return cu_fail(EM_ERR_UNSUPPORTED, "cuda: op %d is not a comparison", c->op);
    }
}

em_status cu_k_compare(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 1, 2, 1);
    if (st) return st;
    const em_tdesc *o = &c->out[0];
    int dt = c->in[0].dtype;
    if (o->dtype != EM_BOOL)
        return cu_fail(EM_ERR_DTYPE, "cuda: comparison output is %s (need bool)",
                       cu_dtype_name(o->dtype));
    for (int i = 0; i < c->n_in; i++) {
        if (c->in[i].dtype != dt)
            return cu_fail(EM_ERR_DTYPE, "cuda: comparison operands are %s and %s",
                           cu_dtype_name(dt), cu_dtype_name(c->in[i].dtype));
        if ((st = cu_check_shape(i ? "input 1" : "input 0", &c->in[i], o))) return st;
    }
    CU_DISPATCH_ALL(dt, cmp_dt, dev, c)
}

/* ---------------- where and masked_fill (raw bits by element size) ------- */

/* where: out = cond ? a : b. */
template <class T> struct WhereV {
    __device__ __forceinline__ T operator()(T a, T b, bool_t m) const { return m ? a : b; }
};

template <class T>
static em_status where_run(cu_device *dev, const em_tdesc *const *d)
{
    return launch_map(dev, d, WhereV<T>{}, "where kernel", (T *)cu_ptr(d[0]),
                      (const T *)cu_ptr(d[1]), (const T *)cu_ptr(d[2]),
                      (const bool_t *)cu_ptr(d[3]));
}

em_status cu_k_where(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 3, 3, 1);
    if (st) return st;
    const em_tdesc *o = &c->out[0], *a = &c->in[0], *b = &c->in[1], *m = &c->in[2];
    if (a->dtype != o->dtype || b->dtype != o->dtype || m->dtype != EM_BOOL)
        return cu_fail(EM_ERR_DTYPE, "cuda: where(%s cond, %s, %s) -> %s", cu_dtype_name(m->dtype),
                       cu_dtype_name(a->dtype), cu_dtype_name(b->dtype), cu_dtype_name(o->dtype));
    if ((st = cu_check_shape("where a", a, o)) || (st = cu_check_shape("where b", b, o)) ||
        (st = cu_check_shape("where cond", m, o)))
        return st;
    const em_tdesc *d[4] = {o, a, b, m};
    switch (cu_dtype_size(o->dtype)) {
    case 1: return where_run<uint8_t>(dev, d);
    case 2: return where_run<uint16_t>(dev, d);
    case 4: return where_run<uint32_t>(dev, d);
    default: return where_run<uint64_t>(dev, d);
    }
}

/* masked_fill: out = mask ? v : x. */
template <class T> struct MaskedFillV {
    T v;
    __device__ __forceinline__ T operator()(T a, bool_t m) const { return m ? v : a; }
};

template <class T>
static em_status masked_fill_run(cu_device *dev, const em_tdesc *const *d, uint64_t bits)
{
    T v;
    memcpy(&v, &bits, sizeof v);
    return launch_map(dev, d, MaskedFillV<T>{v}, "masked_fill kernel", (T *)cu_ptr(d[0]),
                      (const T *)cu_ptr(d[1]), (const bool_t *)cu_ptr(d[2]));
}

em_status cu_k_masked_fill(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *o = &c->out[0], *x = &c->in[0], *m = &c->in[1];
    if (x->dtype != o->dtype || m->dtype != EM_BOOL)
        return cu_fail(EM_ERR_DTYPE, "cuda: masked_fill(%s, %s mask) -> %s",
                       cu_dtype_name(x->dtype), cu_dtype_name(m->dtype), cu_dtype_name(o->dtype));
    if ((st = cu_check_shape("masked_fill input", x, o)) ||
        (st = cu_check_shape("masked_fill mask", m, o)))
        return st;
    uint64_t bits = 0;
    store_scalar(o->dtype, c->params->scalar[0], &bits);
    const em_tdesc *d[3] = {o, x, m};
    switch (cu_dtype_size(o->dtype)) {
    case 1: return masked_fill_run<uint8_t>(dev, d, bits);
    case 2: return masked_fill_run<uint16_t>(dev, d, bits);
    case 4: return masked_fill_run<uint32_t>(dev, d, bits);
    default: return masked_fill_run<uint64_t>(dev, d, bits);
    }
}

/* ---------------- clamp ---------------------------------------------------- */

template <class T> struct ClampV {
    typedef typename Tr<T>::CT CT;
    CT lo, hi;
    __device__ __forceinline__ T operator()(T a) const
    {
        CT v = ld<T>(a);
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        return sv<T>(v);
    }
};

template <class T> static em_status clamp_dt(cu_device *dev, const em_op_call *c)
{
    typedef typename Tr<T>::CT CT;
    const em_tdesc *o = &c->out[0], *x = &c->in[0];
    double lo = c->params->scalar[0], hi = c->params->scalar[1];
    CT clo, chi;
    if constexpr (std::is_floating_point<CT>::value) {
        clo = (CT)lo;
        chi = (CT)hi;
    } else {
        /* ceil(lo), floor(hi), saturated to the dtype's range so the compare
         * in the dtype's own type is exact; a NaN bound leaves that side open */
        int64_t tmin = std::is_same<T, int32_t>::value ? INT32_MIN
                       : std::is_same<T, bool_t>::value ? 0 : INT64_MIN;
        int64_t tmax = std::is_same<T, int32_t>::value ? INT32_MAX
                       : std::is_same<T, bool_t>::value ? 1 : INT64_MAX;
        double fl = ceil(lo), fh = floor(hi);
        int64_t ilo = !(fl == fl) || fl <= (double)tmin ? tmin
                      : fl >= (double)tmax              ? tmax
                                                        : (int64_t)fl;
        int64_t ihi = !(fh == fh) || fh >= (double)tmax ? tmax
                      : fh <= (double)tmin              ? tmin
                                                        : (int64_t)fh;
        clo = (CT)ilo;
        chi = (CT)ihi;
    }
    const em_tdesc *d[2] = {o, x};
    return launch_map(dev, d, ClampV<T>{clo, chi}, "clamp kernel", (T *)cu_ptr(o),
                      (const T *)cu_ptr(x));
}

em_status cu_k_clamp(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 1, 1, 1);
    if (st) return st;
    const em_tdesc *o = &c->out[0], *x = &c->in[0];
    if (o->dtype != x->dtype)
        return cu_fail(EM_ERR_DTYPE, "cuda: clamp %s -> %s", cu_dtype_name(x->dtype),
                       cu_dtype_name(o->dtype));
    if ((st = cu_check_shape("clamp input", x, o))) return st;
    CU_DISPATCH_ALL(x->dtype, clamp_dt, dev, c)
}
