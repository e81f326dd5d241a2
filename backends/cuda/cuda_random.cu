/*
 * cuda_random.cu — generated values: ARANGE, LINSPACE and the Philox-based
 * RAND_UNIFORM, RAND_NORMAL, RANDINT, for the dtypes the CPU backend has.
 *
 * One thread per element i (row-major index into the output, written
 * through its strides; grid-stride, int64 indices). The random stream is
 * the one api/ember_plugin.h specifies: one Philox4x32-10 block per
 * element, key {seed lo, seed hi}, counter {i lo, i hi, offset lo, offset
 * hi}. philox() below is a device copy of the header's em_philox4x32_10
 * (a static inline C function the device compiler cannot call); every
 * formula is the CPU backend's (backends/cpu/cpu_random.c), computed in
 * double with explicit round-to-nearest operations (__dmul_rn, __dadd_rn)
 * so nvcc cannot contract them into FMAs, which would round differently
 * from the CPU. Hence uniform, randint, arange and linspace are
 * bit-identical to the CPU backend for the same seed and offset; normal
 * uses the device's double log/cos/sqrt (sqrt is correctly rounded, log
 * and cos within 1 ulp of glibc's), so an f64 normal may differ from the
 * CPU's in the last bit; rounded to f32/f16/bf16 it is identical except
 * with a probability of about 2^-28 per element.
 *
 * Not for: generator state (the core advances offsets).
 */
#include "cuda_common.cuh"

__device__ __forceinline__ uint4 philox(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1,
                                        uint32_t c2, uint32_t c3)
{
#pragma unroll
    for (int round = 0; round < 10; round++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return make_uint4(c0, c1, c2, c3);
}

enum { G_ARANGE, G_LINSPACE, G_UNIFORM, G_NORMAL, G_RANDINT };

struct GenP {
    int op;
    double a, b, step;   /* arange: start, step; linspace: start, end, step;
                            uniform: lo, hi; normal: mean, std             */
    int64_t n;           /* number of elements                          */
    int64_t lo, span;    /* randint                                      */
    uint32_t k0, k1;     /* Philox key                                   */
    uint32_t o0, o1;     /* Philox offset (counter words 2, 3)           */
};

/* Stores an integer value the way the CPU's store_value does. */
template <class T> __device__ __forceinline__ T store_int(int64_t iv)
{
    if constexpr (std::is_same<T, int64_t>::value) return iv;
    else if constexpr (std::is_same<T, int32_t>::value) return (int32_t)(uint32_t)(uint64_t)iv;
    else if constexpr (std::is_same<T, bool_t>::value) return (bool_t)(iv != 0);
    else return sv<T>((double)iv);
}

template <class T> struct GenF {
    T *o;
    GenP p;
    __device__ void operator()(const int64_t *off, int64_t i) const
    {
        double v;
        switch (p.op) {
        case G_ARANGE: v = __dadd_rn(p.a, __dmul_rn((double)i, p.b)); break;
        case G_LINSPACE:
            if (p.n == 1) v = p.a;
            else if (i < p.n / 2) v = __dadd_rn(p.a, __dmul_rn((double)i, p.step));
            else v = __dsub_rn(p.b, __dmul_rn((double)(p.n - 1 - i), p.step));
            break;
        default: {
            uint4 x = philox(p.k0, p.k1, (uint32_t)i, (uint32_t)((uint64_t)i >> 32), p.o0, p.o1);
            if (p.op == G_RANDINT) {
                uint64_t r = ((uint64_t)x.y << 32) | x.x;
                o[off[0]] = store_int<T>((int64_t)((uint64_t)p.lo + r % (uint64_t)p.span));
                return;
            }
            if (p.op == G_UNIFORM) {
                double u;
                if constexpr (std::is_same<T, double>::value)
                    u = (double)(((uint64_t)x.x << 21) | (x.y >> 11)) * 0x1p-53;
                else if constexpr (std::is_same<T, __half>::value)
                    u = (double)(x.x >> 21) * 0x1p-11;
                else if constexpr (std::is_same<T, bf16_t>::value)
                    u = (double)(x.x >> 24) * 0x1p-8;
                else
                    u = (double)(x.x >> 8) * 0x1p-24;
                /* products by powers of two are exact: no rounding question */
                v = __dadd_rn(p.a, __dmul_rn(u, __dsub_rn(p.b, p.a)));
            } else { /* normal */
                double u1 = __dmul_rn(__dadd_rn((double)x.x, 1.0), 0x1p-32);
                double u2 = __dmul_rn((double)x.y, 0x1p-32);
                double r = sqrt(__dmul_rn(-2.0, log(u1)));
                double z = __dmul_rn(r, cos(__dmul_rn(2.0 * 3.14159265358979323846, u2)));
                v = __dadd_rn(p.a, __dmul_rn(p.b, z));
            }
            break;
        }
        }
        o[off[0]] = sv<T>(v);
    }
};

template <class T> static em_status gen_run(cu_device *dev, const em_tdesc *o, GenP p)
{
    const em_tdesc *d[1] = {o};
    GenF<T> f{(T *)cu_ptr(o), p};
    return launch<1>(dev, d, f, "generator kernel");
}

static em_status gen(cu_device *dev, const em_op_call *c, GenP p)
{
    const em_tdesc *o = &c->out[0];
    p.n = cu_numel(o);
    CU_DISPATCH_ALL(o->dtype, gen_run, dev, o, p)
}

em_status cu_k_arange(void *vdev, const em_op_call *c)
{
    em_status st = cu_check_arity(c, 0, 0, 1);
    if (st) return st;
    GenP p;
    memset(&p, 0, sizeof p);
    p.op = G_ARANGE;
    p.a = c->params->scalar[0];
    p.b = c->params->scalar[1];
    return gen((cu_device *)vdev, c, p);
}

em_status cu_k_linspace(void *vdev, const em_op_call *c)
{
    em_status st = cu_check_arity(c, 0, 0, 1);
    if (st) return st;
    GenP p;
    memset(&p, 0, sizeof p);
    p.op = G_LINSPACE;
    p.a = c->params->scalar[0];
    p.b = c->params->scalar[1];
    int64_t n = cu_numel(&c->out[0]);
    p.step = n > 1 ? (p.b - p.a) / (double)(n - 1) : 0.0; /* host double, as the CPU */
    return gen((cu_device *)vdev, c, p);
}

em_status cu_k_random(void *vdev, const em_op_call *c)
{
    em_status st = cu_check_arity(c, 0, 0, 1);
    if (st) return st;
    const em_op_params *pr = c->params;
    GenP p;
    memset(&p, 0, sizeof p);
    p.a = pr->scalar[0];
    p.b = pr->scalar[1];
    p.k0 = (uint32_t)pr->seed;
    p.k1 = (uint32_t)(pr->seed >> 32);
    p.o0 = (uint32_t)pr->offset;
    p.o1 = (uint32_t)(pr->offset >> 32);
    int dt = c->out[0].dtype;
    int isf = dt == EM_F32 || dt == EM_F64 || dt == EM_F16 || dt == EM_BF16;
    switch (c->op) {
    case EM_OP_RAND_UNIFORM: p.op = G_UNIFORM; break;
    case EM_OP_RAND_NORMAL: p.op = G_NORMAL; break;
    case EM_OP_RANDINT:
        p.op = G_RANDINT;
        if (pr->ints[1] <= pr->ints[0])
            return cu_fail(EM_ERR_INVALID_ARG, "cuda: randint: empty range [%lld, %lld)",
                           (long long)pr->ints[0], (long long)pr->ints[1]);
        p.lo = pr->ints[0];
        p.span = (int64_t)((uint64_t)pr->ints[1] - (uint64_t)pr->ints[0]);
        break;
    default: return cu_fail(EM_ERR_UNSUPPORTED, "cuda: op %d is not a random op", c->op);
    }
    if (p.op != G_RANDINT && !isf)
        return cu_fail(EM_ERR_UNSUPPORTED, "cuda: no kernel for random op %d on %s", c->op,
                       cu_dtype_name(dt));
    return gen((cu_device *)vdev, c, p);
}
