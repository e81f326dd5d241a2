/*
 * cuda_softmax.cu — SOFTMAX and LOG_SOFTMAX along params.dim (f32, f64,
 * f16, bf16; any input/output strides).
 *
 * A row is the 1-D slice along dim; the other dims (size-1 dropped) index
 * the rows. Three passes over each row, numerically stable as the CPU
 * backend (backends/cpu/cpu_softmax.c): m = max (NaN if any element is
 * NaN), s = sum of exp(x - m) accumulated in double, then
 *   softmax:     out = exp(x - m) * (1 / s)        (f32 ops for f32/f16/bf16)
 *   log_softmax: out = x - (m + log s)
 * with exp in f32 (expf) for f32/f16/bf16 and in f64 for f64. A row whose
 * max is NaN or infinite gives NaN, as x - m does (PyTorch agrees).
 *
 * Layouts:
 *   warp per row   rows of at most 1024 elements, 8 rows per 256-thread block;
 *   block per row  longer rows, 512 threads, shared-memory combine;
 *   thread per row when dim is not the innermost dense dim but the
 *                  innermost other dim is dense (softmax over channels of
 *                  NCHW, over dim 0 of [N, C]): adjacent threads take
 *                  adjacent rows, so every pass reads coalesced.
 * Rows are re-read from memory (L1/L2) on each pass rather than held in
 * registers or shared memory.
 *
 * Not for: logsumexp (cuda_reduce.cu).
 */
#include "cuda_common.cuh"

struct SmGeom {
    int n_outer;
    int64_t oshape[EM_MAX_DIMS], oxs[EM_MAX_DIMS], oos[EM_MAX_DIMS]; /* other dims */
    int64_t rows, len, xs, os; /* rows, row length, strides along dim */
};

/* f32 for the half types and f32, f64 for f64 */
template <class T> struct SmT { typedef float V; };
template <> struct SmT<double> { typedef double V; };

__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }

/* NaN-sticky max */
template <class V> __device__ __forceinline__ V nmax(V a, V b)
{
    return (a != a || b != b) ? (a != a ? a : b) : (b > a ? b : a);
}

__device__ __forceinline__ void row_offsets(const SmGeom &g, int64_t row, int64_t *xo, int64_t *oo)
{
    int64_t a = 0, c = 0;
    for (int d = g.n_outer - 1; d >= 0; d--) {
        int64_t q = row / g.oshape[d];
        int64_t i = row - q * g.oshape[d];
        row = q;
        a += i * g.oxs[d];
        c += i * g.oos[d];
    }
    *xo = a;
    *oo = c;
}

template <class V> __device__ __forceinline__ V warp_allmax(V v)
{
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v = nmax(v, shfl_xor(v, d));
    return v;
}
__device__ __forceinline__ double warp_allsum(double v)
{
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v += shfl_xor(v, d);
    return v;
}

/* Writes one row given its max m and sum s. */
template <class T, bool LOG>
__device__ __forceinline__ void sm_store(T *o, const T *x, int64_t i, int64_t xs, int64_t os,
                                         typename SmT<T>::V m, double s)
{
    typedef typename SmT<T>::V V;
    V v = (V)ld<T>(x[i * xs]);
    V r;
    if constexpr (LOG) r = v - (V)((double)m + log(s));
    else r = m_exp(v - m) * (V)(1.0 / s);
    o[i * os] = sv<T>(r);
}

/* group = a warp (gsize 32) or the whole block */
template <class T, bool LOG>
__global__ void sm_rows(SmGeom g, const T *x, T *o, int gsize)
{
    typedef typename SmT<T>::V V;
    __shared__ V shm[32];
    __shared__ double shs[32];
    const int lane = threadIdx.x % gsize, gpb = blockDim.x / gsize;
    const int warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    const int64_t step = (int64_t)gridDim.x * gpb;
    for (int64_t row = (int64_t)blockIdx.x * gpb + threadIdx.x / gsize; row < g.rows; row += step) {
        int64_t xo, oo;
        row_offsets(g, row, &xo, &oo);
        const T *xr = x + xo;
        T *orow = o + oo;
        V m = -INFINITY;
        for (int64_t i = lane; i < g.len; i += gsize) m = nmax(m, (V)ld<T>(xr[i * g.xs]));
        m = warp_allmax(m);
        if (gsize > 32) {
            if ((threadIdx.x & 31) == 0) shm[warp] = m;
            __syncthreads();
            m = -INFINITY;
            for (int w = 0; w < nwarps; w++) m = nmax(m, shm[w]);
        }
        double s = 0;
        for (int64_t i = lane; i < g.len; i += gsize) s += (double)m_exp((V)ld<T>(xr[i * g.xs]) - m);
        s = warp_allsum(s);
        if (gsize > 32) {
            if ((threadIdx.x & 31) == 0) shs[warp] = s;
            __syncthreads();
            s = 0;
            for (int w = 0; w < nwarps; w++) s += shs[w];
            __syncthreads(); /* shm/shs are reused by the next row */
        }
        for (int64_t i = lane; i < g.len; i += gsize) sm_store<T, LOG>(orow, xr, i, g.xs, g.os, m, s);
    }
}

/* a thread per row */
template <class T, bool LOG>
__global__ void sm_cols(SmGeom g, const T *x, T *o)
{
    typedef typename SmT<T>::V V;
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; row < g.rows; row += step) {
        int64_t xo, oo;
        row_offsets(g, row, &xo, &oo);
        const T *xr = x + xo;
        V m = -INFINITY;
        for (int64_t i = 0; i < g.len; i++) m = nmax(m, (V)ld<T>(xr[i * g.xs]));
        double s = 0;
        for (int64_t i = 0; i < g.len; i++) s += (double)m_exp((V)ld<T>(xr[i * g.xs]) - m);
        for (int64_t i = 0; i < g.len; i++) sm_store<T, LOG>(o + oo, xr, i, g.xs, g.os, m, s);
    }
}

template <class T, bool LOG>
static em_status sm_run(cu_device *dev, const SmGeom &g, const em_tdesc *x, const em_tdesc *o)
{
    const T *xp = (const T *)cu_ptr(x);
    T *op = (T *)cu_ptr(o);
    const int64_t maxb = 32 * (int64_t)(dev->n_sms > 0 ? dev->n_sms : 80);
    /* thread per row: dim is not contiguous but the innermost other dim is */
    bool cols = g.xs != 1 && g.n_outer > 0 && g.oxs[g.n_outer - 1] == 1 && g.rows >= 32;
    if (cols) {
        int64_t blocks = (g.rows + 255) / 256;
        if (blocks > maxb) blocks = maxb;
        sm_cols<T, LOG><<<(unsigned)blocks, 256, 0, dev->stream>>>(g, xp, op);
    } else if (g.len <= 1024) {
        int64_t blocks = (g.rows + 7) / 8;
        if (blocks > maxb) blocks = maxb;
        sm_rows<T, LOG><<<(unsigned)blocks, 256, 0, dev->stream>>>(g, xp, op, 32);
    } else {
        int64_t blocks = g.rows < maxb ? g.rows : maxb;
        sm_rows<T, LOG><<<(unsigned)blocks, 512, 0, dev->stream>>>(g, xp, op, 512);
    }
    CU_CHECK_LAUNCH("softmax kernel");
    return EM_OK;
}

template <class T>
static em_status sm_dt(cu_device *dev, const SmGeom &g, const em_tdesc *x, const em_tdesc *o,
                       bool log)
{
    return log ? sm_run<T, true>(dev, g, x, o) : sm_run<T, false>(dev, g, x, o);
}

em_status cu_k_softmax(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 1, 1, 1);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *o = &c->out[0];
    int dt = x->dtype, dim = c->params->dim;
    if (o->dtype != dt || !(dt == EM_F32 || dt == EM_F64 || dt == EM_F16 || dt == EM_BF16))
        return cu_fail(EM_ERR_DTYPE, "cuda: softmax on %s -> %s", cu_dtype_name(dt),
                       cu_dtype_name(o->dtype));
    if ((st = cu_check_shape("softmax input", x, o))) return st;
    if (x->ndim == 0) dim = 0;
    else if (dim < 0 || dim >= x->ndim)
        return cu_fail(EM_ERR_INVALID_ARG, "cuda: softmax dim %d for a %d-d tensor", dim, x->ndim);
    if ((st = cu_set_device(dev))) return st;
    SmGeom g;
    memset(&g, 0, sizeof g);
    g.len = x->ndim ? x->shape[dim] : 1;
    g.xs = x->ndim ? x->strides[dim] : 0;
    g.os = o->ndim ? o->strides[dim] : 0;
    g.rows = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d == dim || x->shape[d] == 1) continue;
        g.oshape[g.n_outer] = x->shape[d];
        g.oxs[g.n_outer] = x->strides[d];
        g.oos[g.n_outer] = o->strides[d];
        g.n_outer++;
        g.rows *= x->shape[d];
    }
    bool log = c->op == EM_OP_LOG_SOFTMAX;
    switch (dt) {
    case EM_F32: return sm_dt<float>(dev, g, x, o, log);
    case EM_F64: return sm_dt<double>(dev, g, x, o, log);
    case EM_F16: return sm_dt<__half>(dev, g, x, o, log);
    default: return sm_dt<bf16_t>(dev, g, x, o, log);
    }
}
