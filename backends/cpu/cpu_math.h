/*
 * cpu_math.h — float math written so that the compiler can vectorise the
 * loops that use it (libm calls block vectorisation without -ffast-math).
 *
 * cpu_expf: Cephes' expf polynomial with Cody-Waite range reduction,
 * about 1.5 ulp; exact handling of NaN (returned as is), overflow (+inf
 * above 88.72) and underflow (0 below -103.97, subnormals in between).
 * Branch-free: every special case is a select.
 *
 * cpu_tanhf, cpu_gelu_erf: about 2 ulp and 1e-6 relative, built on
 * cpu_expf.
 * cpu_extreme_f/d: NaN-propagating max/min of an array, SSE2 vectors.
 *
 * Not for: double-precision transcendentals (f64 kernels call libm).
 */
#ifndef EMBER_CPU_MATH_H
#define EMBER_CPU_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* always_inline: GCC does not inline a default-target function into a
 * target_clones clone otherwise, and these must inline to vectorise. */
#define CPU_MATH_INLINE static inline __attribute__((always_inline))

CPU_MATH_INLINE float cpu_bits_f32(int32_t i)
{
    union { int32_t i; float f; } u;
    u.i = i;
    return u.f;
}

CPU_MATH_INLINE float cpu_expf(float x)
{
    const float hi = 88.72283935546875f, lo = -103.97208404541015625f;
    float xc = x > hi ? hi : (x < lo ? lo : x);
    xc = (x == x) ? xc : 0.0f;
    /* n = round(x / ln2); r = x - n ln2 in two parts (Cody-Waite) */
    float nf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - nf * 0.693359375f;
    r = r + nf * 2.12194440e-4f;
    float z = r * r;
    float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    /* scale by 2^n in two halves so that n in [-150, 128] stays exact */
    int32_t n = (int32_t)nf;
    int32_t n1 = n / 2, n2 = n - n1;
    float res = y * cpu_bits_f32((n1 + 127) << 23) * cpu_bits_f32((n2 + 127) << 23);
    res = x > hi ? INFINITY : res;
    res = x < lo ? 0.0f : res;
    return x == x ? res : x;
}

/* tanh, about 2 ulp: Cephes' odd polynomial below |x| = 0.625, else
 * 1 - 2 / (exp(2|x|) + 1) with the sign put back. NaN stays NaN. */
CPU_MATH_INLINE float cpu_tanhf(float x)
{
    float ax = fabsf(x);
    float z = x * x;
    float p = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                1.33314422036e-1f) * z - 3.33332819422e-1f) * z * ax + ax;
    float big = 1.0f - 2.0f / (cpu_expf(2.0f * ax) + 1.0f);
    return copysignf(ax < 0.625f ? p : big, x);
}

/* GELU, erf form: x Phi(x) = x * 0.5 * erfc(-x / sqrt 2). erfc of
 * z = |x| / sqrt 2 >= 0 uses Numerical Recipes' Chebyshev fit
 * erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), fractional error
 * < 1.2e-7, with exp(-z^2) = exp(-x^2 / 2) split as exp(-xh^2/2) times
 * exp(-xl (|x| + xh) / 2 + ...) (xh: |x| rounded to 11 bits, so xh^2 is
 * exact): the tail of GELU keeps about 1e-6 relative accuracy. */
CPU_MATH_INLINE float cpu_gelu_erf(float x)
{
    float ax = fabsf(x);
    float t = 1.0f / (1.0f + 0.35355339059327376220f * ax);
    float poly = -1.26551223f +
                 t * (1.00002368f +
                 t * (0.37409196f +
                 t * (0.09678418f +
                 t * (-0.18628806f +
                 t * (0.27886807f +
                 t * (-1.13520398f +
                 t * (1.48851587f +
                 t * (-0.82215223f + t * 0.17087277f))))))));
    union { float f; uint32_t u; } h;
    h.f = ax;
    h.u &= 0xfffff000u;
    float xh = h.f, xl = ax - xh;
    float lo = poly - 0.5f * xl * (ax + xh);
    lo = ax < INFINITY ? lo : 0.0f;
    float e = t * cpu_expf(-0.5f * xh * xh) * cpu_expf(lo); /* erfc(|x| / sqrt 2) */
    float phi2 = x < 0 ? e : 2.0f - e;                        /* 2 Phi(x) */
    return x * 0.5f * phi2;
}

/* Max (mx = 1) or min of m0 and v[0..n), NaN-sticky. GCC vector
 * extensions (plain SSE2 at baseline): per-lane select by a compare mask
 * and a separate NaN mask; the auto-vectoriser does not manage this. Used by reductions
 * and softmax. */
typedef float cpu_v4f __attribute__((vector_size(16)));
typedef int32_t cpu_v4i __attribute__((vector_size(16)));
typedef double cpu_v2d __attribute__((vector_size(16)));
typedef int64_t cpu_v2l __attribute__((vector_size(16)));

#define EXTREME(NAME, T, VT, VI, L)                                                      \
    CPU_MATH_INLINE double NAME(double m0, const T *v, int64_t n, int mx)                \
    {                                                                                    \
        const VT init = (VT){0} + (T)m0;                                                 \
        VT acc[4] = {init, init, init, init};                                            \
        VI nan = {0};                                                                    \
        int64_t i = 0;                                                                   \
        for (; i + 4 * L <= n; i += 4 * L) {                                             \
            for (int k = 0; k < 4; k++) {                                                \
                VT x;                                                                    \
                memcpy(&x, v + i + k * L, sizeof x);                                     \
                VI take = mx ? (x > acc[k]) : (x < acc[k]);                              \
                acc[k] = (VT)(((VI)x & take) | ((VI)acc[k] & ~take));                    \
                nan |= x != x;                                                           \
            }                                                                            \
        }                                                                                \
        double m = m0;                                                                   \
        int anynan = m0 != m0;                                                           \
        for (int j = 0; j < L; j++) anynan |= nan[j] != 0;                               \
        for (int k = 0; k < 4; k++)                                                      \
            for (int j = 0; j < L; j++) {                                                \
                double x = acc[k][j];                                                    \
                if (mx ? x > m : x < m) m = x;                                           \
            }                                                                            \
        for (; i < n; i++) {                                                             \
            double x = v[i];                                                             \
            anynan |= x != x;                                                            \
            if (mx ? x > m : x < m) m = x;                                               \
        }                                                                                \
        return anynan ? (double)NAN : m;                                                 \
    }
EXTREME(cpu_extreme_f, float, cpu_v4f, cpu_v4i, 4)
EXTREME(cpu_extreme_d, double, cpu_v2d, cpu_v2l, 2)

#endif /* EMBER_CPU_MATH_H */
