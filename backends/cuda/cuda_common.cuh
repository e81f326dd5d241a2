/*
 * cuda_common.cuh — device-side helpers shared by the CUDA plugin's kernel
 * files: dtype traits (storage type -> compute type, load/store with the
 * CPU backend's conversion rules), saturating float->int conversions, the
 * generic strided indexer (Iter + ew_kernel + launch) and warp helpers.
 *
 * The indexer: the host merges the output's dims (dropping size-1 dims and
 * joining dims that are contiguous in every operand), then a grid-stride
 * kernel maps each linear output index i (row-major over the output's
 * shape, which merging preserves) to one element offset per operand (up to
 * 8 dims, any strides including 0 for broadcasting) and calls f(off, i).
 * When every operand is dense the merged form is one dim of stride 1 and a
 * division-free kernel runs.
 *
 * Value maps (launch_map): an elementwise op written as a functor from input
 * values to the output value (storage types, 0 to 3 inputs). When every
 * operand is dense and each one's address (offset included) is aligned to
 * its vector, each thread moves 16 bytes of the widest operand per
 * iteration (float4 for f32, 8 halves for f16/bf16, 2 doubles; V elements
 * of every operand, V = 16 / widest element size) in a grid-stride loop,
 * with a scalar tail; otherwise the strided indexer runs the same functor
 * per element, so both paths give bit-identical results.
 *
 * Not for: host-only helpers (cuda_internal.h) or op semantics.
 */
#ifndef EMBER_CUDA_COMMON_CUH
#define EMBER_CUDA_COMMON_CUH

#include "cuda_internal.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <math.h>
#include <string.h>
#include <type_traits>

typedef __nv_bfloat16 bf16_t;
typedef uint8_t bool_t; /* Ember's bool: one byte, 0 or 1 */

/* ---------------- dtype traits ------------------------------------------- */

/* CT: compute type (f16/bf16 compute in f32, bool in int32); UT: the type
 * for wrap-around arithmetic (unsigned for integers). */
template <class T> struct Tr { typedef T CT; typedef T UT; };
template <> struct Tr<__half> { typedef float CT; typedef float UT; };
template <> struct Tr<bf16_t> { typedef float CT; typedef float UT; };
template <> struct Tr<int32_t> { typedef int32_t CT; typedef uint32_t UT; };
template <> struct Tr<int64_t> { typedef int64_t CT; typedef uint64_t UT; };
template <> struct Tr<bool_t> { typedef int32_t CT; typedef uint32_t UT; };

template <class T> __device__ __forceinline__ typename Tr<T>::CT ld(T x)
{
    if constexpr (std::is_same<T, __half>::value) return __half2float(x);
    else if constexpr (std::is_same<T, bf16_t>::value) return __bfloat162float(x);
    else if constexpr (std::is_same<T, bool_t>::value) return (int32_t)x;
    else return x;
}

__host__ __device__ __forceinline__ int32_t sat_i32_d(double v)
{
    if (!(v == v)) return 0;
    if (v <= -2147483648.0) return INT32_MIN;
    if (v >= 2147483647.0) return INT32_MAX;
    return (int32_t)v;
}
__host__ __device__ __forceinline__ int64_t sat_i64_d(double v)
{
    if (!(v == v)) return 0;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)v;
}
__host__ __device__ __forceinline__ int64_t sat_i64_f(float v)
{
    if (!(v == v)) return 0;
    if (v <= -9223372036854775808.0f) return INT64_MIN;
    if (v >= 9223372036854775808.0f) return INT64_MAX;
    return (int64_t)v;
}

/* compute value V -> storage T (the CPU backend's cpu_to_* rules; a double
 * going to f16/bf16 is rounded to f32 first, as em__cpu_store_scalar does) */
template <class T, class V> __device__ __forceinline__ T sv(V v)
{
    if constexpr (std::is_same<T, float>::value) return (float)v;
    else if constexpr (std::is_same<T, double>::value) return (double)v;
    else if constexpr (std::is_same<T, __half>::value) return __float2half_rn((float)v);
    else if constexpr (std::is_same<T, bf16_t>::value) return __float2bfloat16_rn((float)v);
    else if constexpr (std::is_same<T, bool_t>::value) return (bool_t)(v != 0);
    else if constexpr (std::is_same<T, int32_t>::value) {
        if constexpr (std::is_floating_point<V>::value) return sat_i32_d((double)v);
        else return (int32_t)(uint32_t)(uint64_t)(int64_t)v;
    } else {
        static_assert(std::is_same<T, int64_t>::value, "storage type");
        if constexpr (std::is_same<V, float>::value) return sat_i64_f(v);
        else if constexpr (std::is_same<V, double>::value) return sat_i64_d(v);
        else return (int64_t)v;
    }
}

/* A scalar in dtype dt, as the CAST rules store it (host side). */
static inline void store_scalar(int dt, double v, void *dst)
{
    switch (dt) {
    case EM_F32: { float x = (float)v; memcpy(dst, &x, 4); break; }
    case EM_F64: memcpy(dst, &v, 8); break;
    case EM_F16: { uint16_t x = em_f32_to_f16((float)v); memcpy(dst, &x, 2); break; }
    case EM_BF16: { uint16_t x = em_f32_to_bf16((float)v); memcpy(dst, &x, 2); break; }
    case EM_I32: { int32_t x = sat_i32_d(v); memcpy(dst, &x, 4); break; }
    case EM_I64: { int64_t x = sat_i64_d(v); memcpy(dst, &x, 8); break; }
    case EM_BOOL: { uint8_t x = v != 0; memcpy(dst, &x, 1); break; }
    default: break;
    }
}

/* Calls F::template run<T>() with the storage type of dtype dt. */
#define CU_DISPATCH_ALL(dt, F, ...)                                                      \
    switch (dt) {                                                                        \
    case EM_F32: return F<float>(__VA_ARGS__);                                           \
    case EM_F64: return F<double>(__VA_ARGS__);                                          \
    case EM_F16: return F<__half>(__VA_ARGS__);                                          \
    case EM_BF16: return F<bf16_t>(__VA_ARGS__);                                         \
    case EM_I32: return F<int32_t>(__VA_ARGS__);                                         \
    case EM_I64: return F<int64_t>(__VA_ARGS__);                                         \
    default: return F<bool_t>(__VA_ARGS__);                                              \
    }

/* ---------------- the strided indexer ------------------------------------ */

template <int N> struct Iter {
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    int64_t st[N][EM_MAX_DIMS]; /* per operand (0 = output), in elements */
};

/* Merges the dims of N operands over `shape`; strides[j] are operand j's.
 * Returns 1 when every operand is dense (one dim, stride 1). */
template <int N>
static int build_iter_s(Iter<N> *it, const int64_t *const *strides, int ndim, const int64_t *shape)
{
    memset(it, 0, sizeof *it);
    int m = 0;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] == 1) continue;
        if (m > 0) {
            int merge = 1;
            for (int j = 0; j < N && merge; j++)
                merge = it->st[j][m - 1] == strides[j][k] * shape[k];
            if (merge) {
                it->shape[m - 1] *= shape[k];
                for (int j = 0; j < N; j++) it->st[j][m - 1] = strides[j][k];
                continue;
            }
        }
        it->shape[m] = shape[k];
        for (int j = 0; j < N; j++) it->st[j][m] = strides[j][k];
        m++;
    }
    if (m == 0) {
        it->shape[0] = 1;
        for (int j = 0; j < N; j++) it->st[j][0] = 1;
        m = 1;
    }
    it->ndim = m;
    int dense = m == 1;
    for (int j = 0; j < N && dense; j++) dense = it->st[j][0] == 1;
    return dense;
}

template <int N>
static int build_iter(Iter<N> *it, const em_tdesc *const *d, int ndim, const int64_t *shape)
{
    const int64_t *s[N];
    for (int j = 0; j < N; j++) s[j] = d[j]->strides;
    return build_iter_s<N>(it, s, ndim, shape);
}

/* Element offsets of linear index i for every operand. */
template <int N>
__device__ __forceinline__ void iter_offsets(const Iter<N> &it, int64_t i, int64_t *off)
{
#pragma unroll
    for (int j = 0; j < N; j++) off[j] = 0;
    int64_t r = i;
    for (int k = it.ndim - 1; k > 0; k--) {
        int64_t q = r / it.shape[k];
        int64_t idx = r - q * it.shape[k];
        r = q;
#pragma unroll
        for (int j = 0; j < N; j++) off[j] += idx * it.st[j][k];
    }
#pragma unroll
    for (int j = 0; j < N; j++) off[j] += r * it.st[j][0];
}

template <int N, bool DENSE, class F>
__global__ void ew_kernel(Iter<N> it, int64_t n, F f)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        int64_t off[N];
        if constexpr (DENSE) {
#pragma unroll
            for (int j = 0; j < N; j++) off[j] = i;
        } else {
            iter_offsets<N>(it, i, off);
        }
        f(off, i);
    }
}

#define EW_THREADS 256
#define EW_MAX_BLOCKS 65536 /* grid-stride beyond this */

static inline unsigned ew_blocks(int64_t n)
{
    int64_t blocks = (n + EW_THREADS - 1) / EW_THREADS;
    if (blocks > EW_MAX_BLOCKS) blocks = EW_MAX_BLOCKS;
    return (unsigned)(blocks > 0 ? blocks : 1);
}

/* Runs f over `shape` (n elements) with operand strides `strides`. */
template <int N, class F>
static em_status launch_s(cu_device *dev, const int64_t *const *strides, int ndim,
                          const int64_t *shape, F f, const char *what)
{
    em_status st = cu_set_device(dev);
    if (st) return st;
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) n *= shape[k];
    if (n <= 0) return EM_OK;
    Iter<N> it;
    int dense = build_iter_s<N>(&it, strides, ndim, shape);
    if (dense)
        ew_kernel<N, true><<<ew_blocks(n), EW_THREADS, 0, dev->stream>>>(it, n, f);
    else
        ew_kernel<N, false><<<ew_blocks(n), EW_THREADS, 0, dev->stream>>>(it, n, f);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return cu_fail_cuda(e, what, __FILE__, __LINE__);
    return EM_OK;
}

/* Runs f over d[0]'s shape; d[0] is the output, d[1..N-1] the inputs. */
template <int N, class F>
static em_status launch(cu_device *dev, const em_tdesc *const *d, F f, const char *what)
{
    const int64_t *s[N];
    for (int j = 0; j < N; j++) s[j] = d[j]->strides;
    return launch_s<N>(dev, s, d[0]->ndim, d[0]->shape, f, what);
}

/* ---------------- value maps: vectorised dense path ----------------------- */

template <class T, int V> struct alignas(sizeof(T) * V) Vec {
    T v[V];
};

template <class... T> struct MaxSize;
template <class T> struct MaxSize<T> { static constexpr size_t value = sizeof(T); };
template <class T, class... R> struct MaxSize<T, R...> {
    static constexpr size_t value = sizeof(T) > MaxSize<R...>::value ? sizeof(T) : MaxSize<R...>::value;
};

/* Elements per thread per iteration: 16 bytes of the widest operand. */
template <class... T> struct VecWidth {
    static constexpr int value = (int)(16 / MaxSize<T...>::value);
};

template <class T, int V> __host__ __device__ __forceinline__ bool vec_aligned(const T *p)
{
    return ((uintptr_t)p % (sizeof(T) * V)) == 0;
}

template <class T, int V> __device__ __forceinline__ Vec<T, V> vld(const T *p, int64_t i)
{
    return reinterpret_cast<const Vec<T, V> *>(p)[i];
}
template <class T, int V> __device__ __forceinline__ void vst(T *p, int64_t i, const Vec<T, V> &x)
{
    reinterpret_cast<Vec<T, V> *>(p)[i] = x;
}

/* One kernel per arity (inputs 0..3): i walks whole vectors in a
 * grid-stride loop, then j the scalar tail (n % V elements). */
#define CU_VEC_IDX                                                                       \
    const int64_t step = (int64_t)gridDim.x * blockDim.x;                                \
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;                  \
    const int64_t nv = n / V

template <int V, class F, class O> __global__ void vec_kernel0(F f, int64_t n, O *o)
{
    CU_VEC_IDX;
    for (int64_t i = tid; i < nv; i += step) {
        Vec<O, V> r;
#pragma unroll
        for (int k = 0; k < V; k++) r.v[k] = f();
        vst<O, V>(o, i, r);
    }
    for (int64_t j = nv * V + tid; j < n; j += step) o[j] = f();
}
template <int V, class F, class O, class A>
__global__ void vec_kernel1(F f, int64_t n, O *o, const A *a)
{
    CU_VEC_IDX;
    for (int64_t i = tid; i < nv; i += step) {
        const Vec<A, V> x = vld<A, V>(a, i);
        Vec<O, V> r;
#pragma unroll
        for (int k = 0; k < V; k++) r.v[k] = f(x.v[k]);
        vst<O, V>(o, i, r);
    }
    for (int64_t j = nv * V + tid; j < n; j += step) o[j] = f(a[j]);
}
template <int V, class F, class O, class A, class B>
__global__ void vec_kernel2(F f, int64_t n, O *o, const A *a, const B *b)
{
    CU_VEC_IDX;
    for (int64_t i = tid; i < nv; i += step) {
        const Vec<A, V> x = vld<A, V>(a, i);
        const Vec<B, V> y = vld<B, V>(b, i);
        Vec<O, V> r;
#pragma unroll
        for (int k = 0; k < V; k++) r.v[k] = f(x.v[k], y.v[k]);
        vst<O, V>(o, i, r);
    }
    for (int64_t j = nv * V + tid; j < n; j += step) o[j] = f(a[j], b[j]);
}
template <int V, class F, class O, class A, class B, class C>
__global__ void vec_kernel3(F f, int64_t n, O *o, const A *a, const B *b, const C *c)
{
    CU_VEC_IDX;
    for (int64_t i = tid; i < nv; i += step) {
        const Vec<A, V> x = vld<A, V>(a, i);
        const Vec<B, V> y = vld<B, V>(b, i);
        const Vec<C, V> z = vld<C, V>(c, i);
        Vec<O, V> r;
#pragma unroll
        for (int k = 0; k < V; k++) r.v[k] = f(x.v[k], y.v[k], z.v[k]);
        vst<O, V>(o, i, r);
    }
    for (int64_t j = nv * V + tid; j < n; j += step) o[j] = f(a[j], b[j], c[j]);
}
#undef CU_VEC_IDX

/* The same functors on the strided indexer (operand 0 is the output). */
template <class F, class O> struct StridedMap0 {
    F f; O *o;
    __device__ void operator()(const int64_t *off, int64_t) const { o[off[0]] = f(); }
};
template <class F, class O, class A> struct StridedMap1 {
    F f; O *o; const A *a;
    __device__ void operator()(const int64_t *off, int64_t) const { o[off[0]] = f(a[off[1]]); }
};
template <class F, class O, class A, class B> struct StridedMap2 {
    F f; O *o; const A *a; const B *b;
    __device__ void operator()(const int64_t *off, int64_t) const
    {
        o[off[0]] = f(a[off[1]], b[off[2]]);
    }
};
template <class F, class O, class A, class B, class C> struct StridedMap3 {
    F f; O *o; const A *a; const B *b; const C *c;
    __device__ void operator()(const int64_t *off, int64_t) const
    {
        o[off[0]] = f(a[off[1]], b[off[2]], c[off[3]]);
    }
};

/* 1 when the n elements are dense in every operand d[0..N-1] (dims merged as
 * the indexer does). */
template <int N> static int all_dense(const em_tdesc *const *d, int64_t *n)
{
    *n = cu_numel(d[0]);
    Iter<N> it;
    return build_iter<N>(&it, d, d[0]->ndim, d[0]->shape);
}

/* Grid for a vector kernel over n elements, V per thread-iteration. */
static inline unsigned vec_blocks(int64_t n, int V) { return ew_blocks((n + V - 1) / V); }

#define CU_VEC_LAUNCH_END(what)                                                              do {                                                                                         cudaError_t e_ = cudaGetLastError();                                                     if (e_ != cudaSuccess) return cu_fail_cuda(e_, what, __FILE__, __LINE__);                return EM_OK;                                                                        } while (0)

/* launch_map(dev, d, f, what, o[, a[, b[, c]]]): out d[0] (pointer o),
 * inputs d[1..] (pointers a, b, c), all with d[0]'s shape; f maps input
 * values to the output value. */
template <class F, class O>
static em_status launch_map(cu_device *dev, const em_tdesc *const *d, F f, const char *what, O *o)
{
    int64_t n;
    constexpr int V = VecWidth<O>::value;
    if (all_dense<1>(d, &n) && n >= V && vec_aligned<O, V>(o)) {
        em_status st = cu_set_device(dev);
        if (st) return st;
        vec_kernel0<V><<<vec_blocks(n, V), EW_THREADS, 0, dev->stream>>>(f, n, o);
        CU_VEC_LAUNCH_END(what);
    }
    return launch<1>(dev, d, StridedMap0<F, O>{f, o}, what);
}
template <class F, class O, class A>
static em_status launch_map(cu_device *dev, const em_tdesc *const *d, F f, const char *what, O *o,
                            const A *a)
{
    int64_t n;
    constexpr int V = VecWidth<O, A>::value;
    if (all_dense<2>(d, &n) && n >= V && vec_aligned<O, V>(o) && vec_aligned<A, V>(a)) {
        em_status st = cu_set_device(dev);
        if (st) return st;
        vec_kernel1<V><<<vec_blocks(n, V), EW_THREADS, 0, dev->stream>>>(f, n, o, a);
        CU_VEC_LAUNCH_END(what);
    }
    return launch<2>(dev, d, StridedMap1<F, O, A>{f, o, a}, what);
}
template <class F, class O, class A, class B>
static em_status launch_map(cu_device *dev, const em_tdesc *const *d, F f, const char *what, O *o,
                            const A *a, const B *b)
{
    int64_t n;
    constexpr int V = VecWidth<O, A, B>::value;
    if (all_dense<3>(d, &n) && n >= V && vec_aligned<O, V>(o) && vec_aligned<A, V>(a) &&
        vec_aligned<B, V>(b)) {
        em_status st = cu_set_device(dev);
        if (st) return st;
        vec_kernel2<V><<<vec_blocks(n, V), EW_THREADS, 0, dev->stream>>>(f, n, o, a, b);
        CU_VEC_LAUNCH_END(what);
    }
    return launch<3>(dev, d, StridedMap2<F, O, A, B>{f, o, a, b}, what);
}
template <class F, class O, class A, class B, class C>
static em_status launch_map(cu_device *dev, const em_tdesc *const *d, F f, const char *what, O *o,
                            const A *a, const B *b, const C *c)
{
    int64_t n;
    constexpr int V = VecWidth<O, A, B, C>::value;
    if (all_dense<4>(d, &n) && n >= V && vec_aligned<O, V>(o) && vec_aligned<A, V>(a) &&
        vec_aligned<B, V>(b) && vec_aligned<C, V>(c)) {
        em_status st = cu_set_device(dev);
        if (st) return st;
        vec_kernel3<V><<<vec_blocks(n, V), EW_THREADS, 0, dev->stream>>>(f, n, o, a, b, c);
        CU_VEC_LAUNCH_END(what);
    }
    return launch<4>(dev, d, StridedMap3<F, O, A, B, C>{f, o, a, b, c}, what);
}

/* ---------------- warp helpers -------------------------------------------- */

template <class V> __device__ __forceinline__ V shfl_down(V v, int delta)
{
    return __shfl_down_sync(0xffffffffu, v, delta);
}
template <class V> __device__ __forceinline__ V shfl_xor(V v, int mask)
{
    return __shfl_xor_sync(0xffffffffu, v, mask);
}

#endif /* EMBER_CUDA_COMMON_CUH */
