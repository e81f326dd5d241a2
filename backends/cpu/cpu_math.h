/*
 * cpu_math.h — float math written so that the compiler can vectorise the
 * loops that use it (libm calls block vectorisation without -ffast-math).
 *
 * cpu_expf: Cephes' expf polynomial with Cody-Waite range reduction,
 * about 1.5 ulp; exact handling of NaN (returned as is), overflow (+inf
 * above 88.72) and underflow (0 below -103.97, subnormals in between).
 * Branch-free: every special case is a select.
 *
 * cpu_extreme_f/d: NaN-propagating max/min of an array, SSE2 vectors.
 *
 * Not for: double-precision transcendentals (f64 kernels call libm).
 */
#ifndef EMBER_CPU_MATH_H
#define EMBER_CPU_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float cpu_bits_f32(int32_t i)
{
    union { int32_t i; float f; } u;
    u.i = i;
    return u.f;
}

static inline float cpu_expf(float x)
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

/* Max (mx = 1) or min of m0 and v[0..n), NaN-sticky. GCC vector
 * extensions (plain SSE2 at baseline): per-lane select by a compare mask
 * and a separate NaN mask; the auto-vectoriser does not manage this. Used by reductions
 * and softmax. */
typedef float cpu_v4f __attribute__((vector_size(16)));
typedef int32_t cpu_v4i __attribute__((vector_size(16)));
typedef double cpu_v2d __attribute__((vector_size(16)));
typedef int64_t cpu_v2l __attribute__((vector_size(16)));

#define EXTREME(NAME, T, VT, VI, L)                                                      \
    static inline double NAME(double m0, const T *v, int64_t n, int mx)                         \
    {                                                                                    \
        VT acc[4];                                                                       \
        VI nan = {0};                                                                    \
        for (int k = 0; k < 4; k++)                                                      \
            for (int j = 0; j < L; j++) acc[k][j] = (T)m0;                               \
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
