/*
 * cuda_fused.cu — fused ops of ABI 1.3 on the GPU:
 *   EM_OP_ADAM: one Adam/AdamW step of one parameter in one kernel (instead
 *     of about ten), f32 computed in f32 with the composed step's operation
 *     order, f64 in f64; grid-stride, 64-bit indices.
 *   EM_OP_CROSS_ENTROPY / _BACKWARD: per row of logits [N, C], one warp per
 *     row (lanes stride over the classes, shuffles reduce max, sum of exp and
 *     sum of x); the backward writes g (softmax - target distribution) in the
 *     same layout. An out-of-range target sets a flag in device memory that is
 *     read back after the kernel (a small synchronous copy): EM_ERR_INDEX
 *     naming the row, never a device assert.
 * Operands are dense (the core composes the ops otherwise).
 */
#include "cuda_internal.h"

#include <math.h>

/* ---------------- Adam ---------------------------------------------------- */

template <class T> struct AdamArgs {
    T *p, *m, *v, *vmax;
    const T *g;
    int64_t n;
    T beta2, eps, one_b1, one_b2, step, bc2, wd, decay;
    int amsgrad;
};

template <class T> __device__ static inline T dsqrt(T x);
template <> __device__ inline float dsqrt<float>(float x) { return sqrtf(x); }
template <> __device__ inline double dsqrt<double>(double x) { return sqrt(x); }

template <class T> __global__ static void adam_kernel(AdamArgs<T> a)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < a.n;
         i += (int64_t)gridDim.x * blockDim.x) {
        T pi = a.p[i] * a.decay;
        T gi = a.g[i] + a.wd * pi;
        T mi = a.m[i] + a.one_b1 * (gi - a.m[i]);
        T vi = a.beta2 * a.v[i] + a.one_b2 * (gi * gi);
        T si = vi;
        if (a.amsgrad) {
            T old = a.vmax[i];
            si = old > vi || old != old ? old : vi;
            a.vmax[i] = si;
        }
        a.m[i] = mi;
        a.v[i] = vi;
        a.p[i] = pi - a.step * (mi / (dsqrt(si) / a.bc2 + a.eps));
    }
}

static unsigned grid_for(int64_t n, int threads)
{
    int64_t blocks = (n + threads - 1) / threads;
    const int64_t cap = 132 * 32; /* enough to fill any current GPU; grid-stride beyond */
    return (unsigned)(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}

template <class T> static em_status run_adam(cu_device *dev, const em_op_call *c, int amsgrad)
{
    const em_op_params *q = c->params;
    AdamArgs<T> a;
    a.p = (T *)cu_ptr(&c->out[0]);
    a.m = (T *)cu_ptr(&c->out[1]);
    a.v = (T *)cu_ptr(&c->out[2]);
    a.vmax = amsgrad ? (T *)cu_ptr(&c->out[3]) : NULL;
    a.g = (const T *)cu_ptr(&c->in[0]);
    a.n = cu_numel(&c->in[0]);
    a.beta2 = (T)q->scalar[1];
    a.eps = (T)q->scalar[2];
    a.one_b1 = (T)(1.0 - q->scalar[0]);
    a.one_b2 = (T)(1.0 - q->scalar[1]);
    a.step = (T)q->scalar[3];
    a.bc2 = (T)q->scalar_ext[0];
    a.wd = (T)q->scalar_ext[1];
    a.decay = (T)q->scalar_ext[2];
    a.amsgrad = amsgrad;
    if (a.n <= 0) return EM_OK;
    adam_kernel<T><<<grid_for(a.n, 256), 256, 0, dev->stream>>>(a);
    CU_CHECK_LAUNCH("adam kernel");
    return EM_OK;
}

em_status cu_k_adam(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    int amsgrad = c->params->flag == 1;
    em_status st = cu_check_arity(c, 1, 1, amsgrad ? 4 : 3);
    if (st) return st;
    int dt = c->in[0].dtype;
    for (int k = 0; k < c->n_out; k++) {
        if (c->out[k].dtype != dt)
            return cu_fail(EM_ERR_DTYPE, "cuda: adam operand %d is %s, the gradient %s", k + 1,
                           cu_dtype_name(c->out[k].dtype), cu_dtype_name(dt));
        if ((st = cu_check_shape("adam operand", &c->out[k], &c->in[0]))) return st;
    }
    if ((st = cu_set_device(dev))) return st;
    switch (dt) {
    case EM_F32: return run_adam<float>(dev, c, amsgrad);
    case EM_F64: return run_adam<double>(dev, c, amsgrad);
    default: return cu_fail(EM_ERR_UNSUPPORTED, "cuda: no adam kernel for %s", cu_dtype_name(dt));
    }
}

/* ---------------- cross-entropy rows ------------------------------------- */

/* The first row (lowest index) whose target is out of range, or INT64_MAX:
 * one per device context (a module global), reset before each launch and read
 * back after it. */
__device__ static unsigned long long g_ce_bad_row;

struct CeArgs {
    const void *x, *t, *lse, *g;
    void *out0, *out1;
    int64_t n, C, ignore;
    int t_i64;
    double eps;
};

__device__ static inline int64_t ce_target(const CeArgs &a, int64_t i)
{
    return a.t_i64 ? ((const int64_t *)a.t)[i] : (int64_t)((const int32_t *)a.t)[i];
}

__device__ static inline double warp_max(double v)
{
    for (int o = 16; o > 0; o >>= 1) {
        double w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v || w != w ? w : v;
    }
    return v;
}

__device__ static inline double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* One warp per row; sums in double (C terms per lane group). */
template <class T> __global__ static void ce_forward(CeArgs a)
{
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5; i < a.n; i += warps) {
        const T *x = (const T *)a.x + i * a.C;
        double mx = -INFINITY;
        for (int64_t k = lane; k < a.C; k += 32) {
            double v = (double)x[k];
            mx = v > mx || v != v ? v : mx;
        }
        mx = warp_max(mx);
        double sum = 0, xsum = 0;
        for (int64_t k = lane; k < a.C; k += 32) {
            double v = (double)x[k];
            sum += exp(v - mx);
            xsum += v;
        }
        sum = warp_sum(sum);
        xsum = warp_sum(xsum);
        if (lane != 0) continue;
        double lse = isinf(mx) && mx < 0 ? mx : mx + log(sum);
        int64_t t = ce_target(a, i);
        double loss = 0;
        if (t != a.ignore) {
            if (t < 0 || t >= a.C) {
                atomicMin(&g_ce_bad_row, (unsigned long long)i);
                continue;
            }
            loss = (1.0 - a.eps) * (lse - (double)x[t]);
            if (a.eps != 0) loss += a.eps * (lse - xsum / (double)a.C);
        }
        ((T *)a.out0)[i] = (T)loss;
        ((T *)a.out1)[i] = (T)lse;
    }
}

template <class T> __device__ static inline T dexp(T x);
template <> __device__ inline float dexp<float>(float x) { return expf(x); }
template <> __device__ inline double dexp<double>(double x) { return exp(x); }

/* One warp per row: dx = g (exp(x - lse) - eps/C) - g (1 - eps) at the target. */
template <class T> __global__ static void ce_backward(CeArgs a)
{
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    const T off = (T)(a.eps / (double)a.C), hot = (T)(1.0 - a.eps);
    for (int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) >> 5; i < a.n; i += warps) {
        const T *x = (const T *)a.x + i * a.C;
        T *dx = (T *)a.out0 + i * a.C;
        int64_t t = ce_target(a, i);
        if (t == a.ignore) {
            for (int64_t k = lane; k < a.C; k += 32) dx[k] = (T)0;
            continue;
        }
        if (t < 0 || t >= a.C) {
            if (lane == 0) atomicMin(&g_ce_bad_row, (unsigned long long)i);
            continue;
        }
        const T lse = ((const T *)a.lse)[i], g = ((const T *)a.g)[i];
        for (int64_t k = lane; k < a.C; k += 32)
            dx[k] = g * (dexp<T>(x[k] - lse) - off) - (k == t ? g * hot : (T)0);
    }
}

em_status cu_k_cross_entropy(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    int backward = c->op == EM_OP_CROSS_ENTROPY_BACKWARD;
    em_status st = backward ? cu_check_arity(c, 4, 4, 1) : cu_check_arity(c, 2, 2, 2);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *t = &c->in[1];
    int dt = x->dtype;
    if ((dt != EM_F32 && dt != EM_F64) || x->ndim != 2 || t->ndim != 1 ||
        t->shape[0] != x->shape[0] || (t->dtype != EM_I64 && t->dtype != EM_I32))
        return cu_fail(EM_ERR_UNSUPPORTED,
                       "cuda: cross_entropy takes logits f32/f64 [N, C] and targets i32/i64 [N]");
    CeArgs a;
    a.x = cu_ptr(x);
    a.t = cu_ptr(t);
    a.lse = backward ? cu_ptr(&c->in[2]) : NULL;
    a.g = backward ? cu_ptr(&c->in[3]) : NULL;
    a.out0 = cu_ptr(&c->out[0]);
    a.out1 = backward ? NULL : cu_ptr(&c->out[1]);
    a.n = x->shape[0];
    a.C = x->shape[1];
    a.ignore = c->params->ints[0];
    a.t_i64 = t->dtype == EM_I64;
    a.eps = c->params->scalar[0];
    if (a.n <= 0) return EM_OK;
    if ((st = cu_set_device(dev))) return st;
    const unsigned long long none = ~0ull;
    CU_CHECK(cudaMemcpyToSymbolAsync(g_ce_bad_row, &none, sizeof none, 0, cudaMemcpyHostToDevice,
                                     dev->stream));
    const int threads = 256;
    unsigned blocks = grid_for(a.n * 32, threads);
    if (backward) {
        if (dt == EM_F32) ce_backward<float><<<blocks, threads, 0, dev->stream>>>(a);
        else ce_backward<double><<<blocks, threads, 0, dev->stream>>>(a);
    } else {
        if (dt == EM_F32) ce_forward<float><<<blocks, threads, 0, dev->stream>>>(a);
        else ce_forward<double><<<blocks, threads, 0, dev->stream>>>(a);
    }
    CU_CHECK_LAUNCH("cross_entropy kernel");
    /* the index check: a small copy back, waited for on this stream */
    unsigned long long bad = none;
    CU_CHECK(cudaMemcpyFromSymbolAsync(&bad, g_ce_bad_row, sizeof bad, 0, cudaMemcpyDeviceToHost,
                                       dev->stream));
    CU_CHECK(cudaStreamSynchronize(dev->stream));
    if (bad != none)
        return cu_fail(EM_ERR_INDEX, "cuda: cross_entropy target (row %llu) is out of range [0, %lld)",
                       bad, (long long)a.C);
    return EM_OK;
}
