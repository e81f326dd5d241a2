/*
 * cuda_reduce.cu — reductions SUM, MEAN, MAX, MIN, ARGMAX, ARGMIN, VAR,
 * STD, LOGSUMEXP (keepdim form; reduce_mask bit d = dim d reduced), any
 * input strides.
 *
 * Geometry (host, as backends/cpu/cpu_reduce.c): size-1 dims dropped, the
 * rest split into kept dims (the output's, row-major) and reduced dims,
 * each group merged where strides allow. Reduced dims are sorted by stride
 * except for argmax/argmin, which keep row-major order so that the reduced
 * position r is the index the op returns (into the row-major flattening of
 * the reduced sub-block; with every dim reduced, of the whole tensor).
 *
 * Two kernel layouts:
 *   rows  — a group of threads per output (a warp when the reduced range is
 *           at most 128 elements, else a 256-thread block); threads stride
 *           over the reduced positions, then warp shuffles and a shared-
 *           memory step combine the group. Used when the reduced dims are
 *           innermost (dense rows) or nothing better applies.
 *   cols  — the innermost kept dim is dense in the input and every reduced
 *           dim is outer to it (sum over dim 0 of [N, C], over dims 0, 2, 3
 *           of NCHW ...): a 32 x 8 block, threadIdx.x walks 32 adjacent
 *           outputs (coalesced reads), threadIdx.y splits the reduced range,
 *           shared memory combines the 8 partial states in order.
 * When there are too few outputs to fill the GPU (a full reduction to one
 * value, a few columns of a tall matrix), the reduced range is also split
 * over S blocks per output: partial states go to scratch memory and a
 * second kernel merges them (a warp per output). No atomics: results do
 * not depend on scheduling.
 *
 * Accumulation as on the CPU: floats in double (f32/f16/bf16/f64 inputs),
 * integers in int64 with wrap-around; sums of ints/bool give i64. max/min
 * propagate NaN; argmax/argmin take the first occurrence and a NaN counts
 * as the extreme (first NaN wins): partial states carry their index and
 * the merge breaks ties by the smaller index, so any combine order gives
 * the CPU's answer. VAR/STD take two passes (the mean per output into
 * scratch, then the sum of squared deviations, divisor N - flag, N - flag
 * <= 0 dividing by 0 as the CPU); LOGSUMEXP takes the max first (an
 * infinite max centres at 0) then sums exp(x - max) (expf for f32/f16/bf16
 * as the CPU's cpu_expf, exp for f64).
 *
 * Not for: softmax/log_softmax (cuda_softmax.cu).
 */
#include "cuda_common.cuh"

enum { K_SUM, K_MAX, K_MIN, K_ARGMAX, K_ARGMIN, K_SUMSQ, K_SUMEXP };

struct RGeom {
    int nk, nr;
    int64_t ks[EM_MAX_DIMS], kx[EM_MAX_DIMS], ko[EM_MAX_DIMS]; /* kept: size, x/out stride */
    int64_t rs[EM_MAX_DIMS], rx[EM_MAX_DIMS];                   /* reduced: size, x stride */
    int64_t nout, nred;
};

/* What the finishing step does with a final state. */
struct RArgs {
    int op;               /* em_op                                              */
    int flag;             /* var/std correction                                 */
    int first_pass;       /* 1: write the centre (mean, or max) to result[k]    */
    void *out;            /* output data at the descriptor's offset             */
    double *result;       /* first pass: per output                             */
    const double *center; /* second pass: per output                            */
};

template <class A> struct St {
    A v;
    int64_t i; /* arg ops: index of v, -1 while none */
};

/* ---------------- states -------------------------------------------------- */

template <int K, class A> __device__ __forceinline__ St<A> st_init()
{
    St<A> s;
    s.i = -1;
    if constexpr (std::is_floating_point<A>::value) {
        s.v = K == K_MAX ? -INFINITY : (K == K_MIN ? INFINITY : 0.0);
    } else {
        s.v = K == K_MAX ? INT64_MIN : (K == K_MIN ? INT64_MAX : 0);
    }
    return s;
}

/* True when (v, i) beats (bv, bi) for argmax (MX) / argmin: a NaN beats
 * everything but an earlier NaN; equal values go to the smaller index. */
template <bool MX, class A>
__device__ __forceinline__ bool arg_better(A v, int64_t i, A bv, int64_t bi)
{
    if (i < 0) return false;
    if (bi < 0) return true;
    if constexpr (std::is_floating_point<A>::value) {
        bool n = v != v, bn = bv != bv;
        if (n || bn) return n && (!bn || i < bi);
    }
    if (MX ? v > bv : v < bv) return true;
    return v == bv && i < bi;
}

/* a (+) b, order-independent apart from float rounding of sums. */
template <int K, class A> __device__ __forceinline__ St<A> st_merge(St<A> a, St<A> b)
{
    if constexpr (K == K_SUM || K == K_SUMSQ || K == K_SUMEXP) {
        if constexpr (std::is_floating_point<A>::value) a.v += b.v;
        else a.v = (A)((uint64_t)a.v + (uint64_t)b.v);
        return a;
    } else if constexpr (K == K_MAX || K == K_MIN) {
        if constexpr (std::is_floating_point<A>::value) {
            if (a.v == a.v && (b.v != b.v || (K == K_MAX ? b.v > a.v : b.v < a.v))) a.v = b.v;
        } else {
            if (K == K_MAX ? b.v > a.v : b.v < a.v) a.v = b.v;
        }
        return a;
    } else {
        return arg_better<K == K_ARGMAX, A>(b.v, b.i, a.v, a.i) ? b : a;
    }
}

/* Consumes element x (storage type T) at reduced position r. */
template <int K, class T, class A>
__device__ __forceinline__ void consume(St<A> &s, T raw, int64_t r, double c, float cf)
{
    if constexpr (K == K_SUM) {
        if constexpr (std::is_floating_point<A>::value) s.v += (double)ld<T>(raw);
        else s.v = (A)((uint64_t)s.v + (uint64_t)(int64_t)ld<T>(raw));
    } else if constexpr (K == K_SUMSQ) {
        double d = (double)ld<T>(raw) - c;
        s.v += d * d;
    } else if constexpr (K == K_SUMEXP) {
        if constexpr (std::is_same<T, double>::value) s.v += exp(raw - c);
        else s.v += (double)expf(ld<T>(raw) - cf);
    } else if constexpr (K == K_MAX || K == K_MIN) {
        A x = (A)ld<T>(raw);
        if constexpr (std::is_floating_point<A>::value) {
            if (s.v == s.v && (x != x || (K == K_MAX ? x > s.v : x < s.v))) s.v = x;
        } else {
            if (K == K_MAX ? x > s.v : x < s.v) s.v = x;
        }
    } else {
        /* positions arrive in increasing order per thread: strict compare
         * keeps the first occurrence; a NaN is kept once taken */
        A x = (A)ld<T>(raw);
        bool take = s.i < 0;
        if constexpr (std::is_floating_point<A>::value)
            take = take || (s.v == s.v && (x != x || (K == K_ARGMAX ? x > s.v : x < s.v)));
        else
            take = take || (K == K_ARGMAX ? x > s.v : x < s.v);
        if (take) {
            s.v = x;
            s.i = r;
        }
    }
}

template <int K, class A> __device__ __forceinline__ St<A> warp_reduce(St<A> s)
{
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        St<A> o;
        o.v = shfl_down(s.v, d);
        o.i = shfl_down(s.i, d);
        s = st_merge<K, A>(s, o);
    }
    return s;
}

/* ---------------- offsets and the final value ------------------------------ */

/* Input and output element offsets of output k (row-major over kept dims). */
__device__ __forceinline__ int64_t kept_offsets(const RGeom &g, int64_t k, int64_t *oo)
{
    int64_t a = 0, c = 0;
    for (int d = g.nk - 1; d >= 0; d--) {
        int64_t q = k / g.ks[d];
        int64_t i = k - q * g.ks[d];
        k = q;
        a += i * g.kx[d];
        c += i * g.ko[d];
    }
    *oo = c;
    return a;
}

/* Input element offset of reduced position r. */
__device__ __forceinline__ int64_t red_offset(const RGeom &g, int64_t r)
{
    if (g.nr == 1) return r * g.rx[0];
    int64_t a = 0;
    for (int d = g.nr - 1; d > 0; d--) {
        int64_t q = r / g.rs[d];
        a += (r - q * g.rs[d]) * g.rx[d];
        r = q;
    }
    return a + r * g.rx[0];
}

template <class T, class A, int K>
__device__ void finish(const RGeom &g, const RArgs &p, int64_t k, St<A> s)
{
    const double n = (double)g.nred;
    if (p.first_pass) {
        double v = (double)s.v;
        if constexpr (K == K_MAX) v = isinf(v) ? 0.0 : v; /* logsumexp's centre */
        else v = v / n;                                  /* var/std: the mean */
        p.result[k] = v;
        return;
    }
    int64_t oo;
    kept_offsets(g, k, &oo);
    switch (p.op) {
    case EM_OP_ARGMAX:
    case EM_OP_ARGMIN: ((int64_t *)p.out)[oo] = s.i < 0 ? 0 : s.i; return;
    case EM_OP_SUM:
        if constexpr (!std::is_floating_point<A>::value) {
            ((int64_t *)p.out)[oo] = (int64_t)s.v;
            return;
        }
        break;
    default: break;
    }
    if constexpr (std::is_floating_point<A>::value) {
        double v = s.v;
        switch (p.op) {
        case EM_OP_MEAN: v = s.v / n; break;
        case EM_OP_VAR:
        case EM_OP_STD: {
            double den = n - (double)p.flag;
            v = den <= 0 ? __ddiv_rn(s.v, 0.0) : s.v / den; /* as the CPU: s / 0 */
            if (p.op == EM_OP_STD) v = sqrt(v);
            break;
        }
        case EM_OP_LOGSUMEXP: v = p.center[k] + log(s.v); break;
        default: break;
        }
        ((T *)p.out)[oo] = sv<T>(v);
    } else {
        ((T *)p.out)[oo] = sv<T>((int64_t)s.v); /* max/min of ints and bool */
    }
}

/* ---------------- kernels ---------------------------------------------------- */

#define RED_THREADS 256

/* rows: a group of gsize threads (32 or RED_THREADS == blockDim.x) per item;
 * item = k * S + split. */
template <class T, class A, int K>
__global__ void red_rows(RGeom g, RArgs p, const T *x, int gsize, int64_t S, int64_t chunk,
                         St<A> *partial)
{
    __shared__ St<A> sh[RED_THREADS / 32];
    const int lane = threadIdx.x % gsize, gpb = blockDim.x / gsize;
    const int64_t items = g.nout * S;
    const int64_t step = (int64_t)gridDim.x * gpb;
    for (int64_t item = (int64_t)blockIdx.x * gpb + threadIdx.x / gsize; item < items;
         item += step) {
        int64_t k = item / S, part = item - k * S;
        int64_t r0 = part * chunk, r1 = r0 + chunk < g.nred ? r0 + chunk : g.nred;
        int64_t oo, xo = kept_offsets(g, k, &oo);
        double c = p.center ? p.center[k] : 0.0;
        float cf = (float)c;
        St<A> s = st_init<K, A>();
        const T *xb = x + xo;
        if (g.nr == 1) {
            const int64_t rx = g.rx[0];
            for (int64_t r = r0 + lane; r < r1; r += gsize) consume<K, T, A>(s, xb[r * rx], r, c, cf);
        } else {
            for (int64_t r = r0 + lane; r < r1; r += gsize)
                consume<K, T, A>(s, xb[red_offset(g, r)], r, c, cf);
        }
        s = warp_reduce<K, A>(s);
        if (gsize > 32) { /* uniform in the block: gpb == 1 */
            const int warp = threadIdx.x / 32;
            if ((threadIdx.x & 31) == 0) sh[warp] = s;
            __syncthreads();
            if (warp == 0) {
                s = (int)threadIdx.x < (int)(blockDim.x / 32) ? sh[threadIdx.x] : st_init<K, A>();
                s = warp_reduce<K, A>(s);
            }
            __syncthreads();
        }
        if (lane == 0) {
            if (S == 1) finish<T, A, K>(g, p, k, s);
            else partial[item] = s;
        }
    }
}

/* cols: blockDim (32, 8); threadIdx.x = adjacent outputs along the
 * innermost kept dim, threadIdx.y = a slice of the reduced range;
 * blockIdx.y walks the outer kept positions, blockIdx.z the splits. */
template <class T, class A, int K>
__global__ void red_cols(RGeom g, RArgs p, const T *x, int64_t S, int64_t chunk, St<A> *partial)
{
    __shared__ St<A> sh[8][32];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t inner = g.ks[g.nk - 1], nouter = g.nout / inner;
    const int64_t j = (int64_t)blockIdx.x * 32 + tx;
    const int64_t part = blockIdx.z;
    const int64_t r0 = part * chunk, r1 = r0 + chunk < g.nred ? r0 + chunk : g.nred;
    for (int64_t outer = blockIdx.y; outer < nouter; outer += gridDim.y) {
        const int64_t k = outer * inner + j;
        St<A> s = st_init<K, A>();
        if (j < inner) {
            int64_t oo, xo = kept_offsets(g, k, &oo);
            double c = p.center ? p.center[k] : 0.0;
            float cf = (float)c;
            const T *xb = x + xo;
            for (int64_t r = r0 + ty; r < r1; r += 8)
                consume<K, T, A>(s, xb[red_offset(g, r)], r, c, cf);
        }
        sh[ty][tx] = s;
        __syncthreads();
        if (ty == 0 && j < inner) {
            for (int q = 1; q < 8; q++) s = st_merge<K, A>(s, sh[q][tx]);
            if (S == 1) finish<T, A, K>(g, p, k, s);
            else partial[k * S + part] = s;
        }
        __syncthreads();
    }
}

/* merges S partial states per output: a warp per output. */
template <class T, class A, int K>
__global__ void red_merge(RGeom g, RArgs p, int64_t S, const St<A> *partial)
{
    const int lane = threadIdx.x & 31;
    const int64_t wpb = blockDim.x / 32;
    for (int64_t k = (int64_t)blockIdx.x * wpb + threadIdx.x / 32; k < g.nout;
         k += (int64_t)gridDim.x * wpb) {
        St<A> s = st_init<K, A>();
        for (int64_t q = lane; q < S; q += 32) s = st_merge<K, A>(s, partial[k * S + q]);
        s = warp_reduce<K, A>(s);
        if (lane == 0) finish<T, A, K>(g, p, k, s);
    }
}

/* ---------------- host side ---------------------------------------------------- */

struct Plan {
    int cols;          /* 1: cols layout                                   */
    int gsize;         /* rows: 32 or RED_THREADS                          */
    int64_t S, chunk;  /* splits of the reduced range, positions per split */
};

static Plan make_plan(const cu_device *dev, const RGeom &g)
{
    Plan pl = {0, RED_THREADS, 1, g.nred};
    const int64_t target = 4 * (int64_t)(dev->n_sms > 0 ? dev->n_sms : 80);
    const int kin = g.nk - 1;
    int outer_red = 1;
    for (int d = 0; d < g.nr; d++)
        if (g.rx[d] == 1) outer_red = 0;
    if (g.kx[kin] == 1 && g.ks[kin] >= 16 && g.nred > 1 && outer_red) {
        pl.cols = 1;
        int64_t nouter = g.nout / g.ks[kin];
        int64_t blocks = ((g.ks[kin] + 31) / 32) * (nouter < 65535 ? nouter : 65535);
        if (blocks < target && g.nred >= 256) {
            int64_t s = (target + blocks - 1) / blocks, smax = (g.nred + 63) / 64;
            pl.S = s < smax ? s : smax;
        }
    } else {
        pl.gsize = g.nred <= 128 ? 32 : RED_THREADS;
        if (pl.gsize == RED_THREADS && g.nout < target && g.nred >= 8192) {
            int64_t s = (target + g.nout - 1) / g.nout, smax = (g.nred + 4095) / 4096;
            pl.S = s < smax ? s : smax;
        }
    }
    if (pl.S > 1024) pl.S = 1024;
    if (pl.S > 1) {
        pl.chunk = (g.nred + pl.S - 1) / pl.S;
        pl.S = (g.nred + pl.chunk - 1) / pl.chunk;
    }
    return pl;
}

template <class T, class A, int K>
static em_status run_kind(cu_device *dev, const RGeom &g, const RArgs &p, const T *x, const Plan &pl)
{
    cu_block *scratch = NULL;
    St<A> *partial = NULL;
    if (pl.S > 1) {
        em_status st = cu_scratch_alloc(dev, (size_t)(g.nout * pl.S) * sizeof(St<A>), &scratch);
        if (st) return st;
        partial = (St<A> *)scratch->ptr;
    }
    if (pl.cols) {
        const int64_t inner = g.ks[g.nk - 1], nouter = g.nout / inner;
        dim3 grid((unsigned)((inner + 31) / 32), (unsigned)(nouter < 65535 ? nouter : 65535),
                  (unsigned)pl.S);
        red_cols<T, A, K><<<grid, dim3(32, 8), 0, dev->stream>>>(g, p, x, pl.S, pl.chunk, partial);
    } else {
        const int gpb = RED_THREADS / pl.gsize;
        int64_t items = g.nout * pl.S, blocks = (items + gpb - 1) / gpb;
        int64_t maxb = 32 * (int64_t)(dev->n_sms > 0 ? dev->n_sms : 80);
        if (blocks > maxb) blocks = maxb;
        red_rows<T, A, K><<<(unsigned)blocks, RED_THREADS, 0, dev->stream>>>(g, p, x, pl.gsize, pl.S,
                                                                             pl.chunk, partial);
    }
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && pl.S > 1) {
        int64_t blocks = (g.nout + 7) / 8, maxb = 32 * (int64_t)(dev->n_sms > 0 ? dev->n_sms : 80);
        if (blocks > maxb) blocks = maxb;
        red_merge<T, A, K><<<(unsigned)blocks, 256, 0, dev->stream>>>(g, p, pl.S, partial);
        e = cudaGetLastError();
    }
    if (scratch) cu_scratch_free(dev, scratch);
    if (e != cudaSuccess) return cu_fail_cuda(e, "launch of a reduction kernel", __FILE__, __LINE__);
    return EM_OK;
}

template <class T>
static em_status red_dt(cu_device *dev, const RGeom &g, const RArgs &p, const void *xv, int kind,
                        const Plan &pl)
{
    const T *x = (const T *)xv;
    constexpr bool fl = std::is_floating_point<typename Tr<T>::CT>::value;
    typedef typename std::conditional<fl, double, int64_t>::type A;
    switch (kind) {
    case K_SUM: return run_kind<T, A, K_SUM>(dev, g, p, x, pl);
    case K_MAX: return run_kind<T, A, K_MAX>(dev, g, p, x, pl);
    case K_MIN: return run_kind<T, A, K_MIN>(dev, g, p, x, pl);
    case K_ARGMAX: return run_kind<T, A, K_ARGMAX>(dev, g, p, x, pl);
    case K_ARGMIN: return run_kind<T, A, K_ARGMIN>(dev, g, p, x, pl);
    default: break;
    }
    if constexpr (fl) {
        if (kind == K_SUMSQ) return run_kind<T, A, K_SUMSQ>(dev, g, p, x, pl);
        if (kind == K_SUMEXP) return run_kind<T, A, K_SUMEXP>(dev, g, p, x, pl);
    }
    return cu_fail(EM_ERR_UNSUPPORTED, "cuda: no reduction of kind %d on this dtype", kind);
}

static em_status red_launch(cu_device *dev, int dt, const RGeom &g, const RArgs &p,
                            const void *x, int kind, const Plan &pl)
{
    CU_DISPATCH_ALL(dt, red_dt, dev, g, p, x, kind, pl)
}

static em_status build_geom(const em_tdesc *x, const em_tdesc *o, uint32_t mask, int keep_order,
                            RGeom *g)
{
    if (o->ndim != x->ndim)
        return cu_fail(EM_ERR_SHAPE, "cuda: reduction output has %d dims, input %d", o->ndim,
                       x->ndim);
    memset(g, 0, sizeof *g);
    int order[EM_MAX_DIMS], nr = 0;
    g->nout = 1;
    g->nred = 1;
    for (int d = 0; d < x->ndim; d++) {
        int red = d < 32 && ((mask >> d) & 1u);
        int64_t want = red ? 1 : x->shape[d];
        if (o->shape[d] != want)
            return cu_fail(EM_ERR_SHAPE, "cuda: reduction output dim %d is %lld, expected %lld", d,
                           (long long)o->shape[d], (long long)want);
        if (x->shape[d] == 1) continue;
        if (red) {
            int j = nr;
            if (!keep_order)
                while (j > 0 && x->strides[order[j - 1]] < x->strides[d]) {
                    order[j] = order[j - 1];
                    j--;
                }
            order[j] = d;
            nr++;
            g->nred *= x->shape[d];
        } else {
            int64_t sz = x->shape[d];
            if (g->nk > 0 && g->kx[g->nk - 1] == x->strides[d] * sz &&
                g->ko[g->nk - 1] == o->strides[d] * sz) {
                g->ks[g->nk - 1] *= sz;
                g->kx[g->nk - 1] = x->strides[d];
                g->ko[g->nk - 1] = o->strides[d];
            } else {
                g->ks[g->nk] = sz;
                g->kx[g->nk] = x->strides[d];
                g->ko[g->nk] = o->strides[d];
                g->nk++;
            }
            g->nout *= sz;
        }
    }
    for (int i = 0; i < nr; i++) {
        int d = order[i];
        int64_t sz = x->shape[d];
        if (g->nr > 0 && g->rx[g->nr - 1] == x->strides[d] * sz) {
            g->rs[g->nr - 1] *= sz;
            g->rx[g->nr - 1] = x->strides[d];
        } else {
            g->rs[g->nr] = sz;
            g->rx[g->nr] = x->strides[d];
            g->nr++;
        }
    }
    if (g->nk == 0) {
        g->nk = 1;
        g->ks[0] = 1;
        g->kx[0] = g->ko[0] = 0;
    }
    if (g->nr == 0) {
        g->nr = 1;
        g->rs[0] = 1;
        g->rx[0] = 0;
    }
    return EM_OK;
}

static int op_kind(int op)
{
    switch (op) {
    case EM_OP_SUM:
    case EM_OP_MEAN: return K_SUM;
    case EM_OP_MAX: return K_MAX;
    case EM_OP_MIN: return K_MIN;
    case EM_OP_ARGMAX: return K_ARGMAX;
    case EM_OP_ARGMIN: return K_ARGMIN;
    case EM_OP_VAR:
    case EM_OP_STD: return K_SUMSQ;
    case EM_OP_LOGSUMEXP: return K_SUMEXP;
    default: return -1;
    }
}

em_status cu_k_reduce(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 1, 1, 1);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *o = &c->out[0];
    int op = c->op, dt = x->dtype;
    int isf = dt == EM_F32 || dt == EM_F64 || dt == EM_F16 || dt == EM_BF16;
    int float_op = op == EM_OP_MEAN || op == EM_OP_VAR || op == EM_OP_STD || op == EM_OP_LOGSUMEXP;
    int kind = op_kind(op);
    if (kind < 0 || (float_op && !isf))
        return cu_fail(EM_ERR_UNSUPPORTED, "cuda: no reduction kernel for op %d on %s", op,
                       cu_dtype_name(dt));
    int is_arg = op == EM_OP_ARGMAX || op == EM_OP_ARGMIN;
    int want_odt = dt;
    if (is_arg || (op == EM_OP_SUM && !isf)) want_odt = EM_I64;
    if (o->dtype != want_odt)
        return cu_fail(EM_ERR_DTYPE, "cuda: reduction op %d on %s gives %s, not %s", op,
                       cu_dtype_name(dt), cu_dtype_name(want_odt), cu_dtype_name(o->dtype));
    RGeom g;
    if ((st = build_geom(x, o, c->params->reduce_mask, is_arg, &g))) return st;
    if ((st = cu_set_device(dev))) return st;
    Plan pl = make_plan(dev, g);
    RArgs p = {op, c->params->flag, 0, cu_ptr(o), NULL, NULL};
    if (kind == K_SUMSQ || kind == K_SUMEXP) {
        /* first pass: the centre (mean or max) of every output */
        cu_block *tmp = NULL;
        if ((st = cu_scratch_alloc(dev, (size_t)g.nout * sizeof(double), &tmp))) return st;
        RArgs p1 = p;
        p1.first_pass = 1;
        p1.result = (double *)tmp->ptr;
        st = red_launch(dev, dt, g, p1, cu_ptr(x), kind == K_SUMSQ ? K_SUM : K_MAX, pl);
        if (st == EM_OK) {
            p.center = (const double *)tmp->ptr;
            st = red_launch(dev, dt, g, p, cu_ptr(x), kind, pl);
        }
        cu_scratch_free(dev, tmp);
        return st;
    }
    return red_launch(dev, dt, g, p, cu_ptr(x), kind, pl);
}
