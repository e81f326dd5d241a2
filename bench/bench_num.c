/*
 * bench_num.c — numbers for the harness, computed without the library:
 * a splitmix64 input generator, rounding of doubles to every dtype (round to
 * nearest even with subnormals and overflow), ulps and epsilons, and packing
 * doubles into host buffers of a dtype (IEEE half and bfloat16 encodings).
 * Not for statistics (bench_stats.c) or op references (bench_ops.c).
 */
#include "bench.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t bench_rng_u64(bench_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double bench_rng_u01(bench_rng *r) { return (double)(bench_rng_u64(r) >> 11) * 0x1.0p-53; }

double bench_rng_uniform(bench_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * bench_rng_u01(r);
}

int64_t bench_rng_int(bench_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(bench_rng_u64(r) % (uint64_t)(hi - lo + 1));
}

/* |x| rounded to `mant` significand bits, minimum normal exponent emin,
 * largest finite maxv; ties to even; overflow to inf. */
static double round_bits(double x, int mant, int emin, double maxv)
{
    if (isnan(x) || isinf(x) || x == 0) return x;
    double ax = fabs(x);
    int e;
    frexp(ax, &e);
    int ue = e - mant;
    if (ue < emin - mant + 1) ue = emin - mant + 1;
    double r = ldexp(nearbyint(ldexp(ax, -ue)), ue);
    if (r > maxv) r = INFINITY;
    return x < 0 ? -r : r;
}

double bench_round(double x, em_dtype d)
{
    switch (d) {
    case EM_F32: return (double)(float)x;
    case EM_F64: return x;
    case EM_F16: return round_bits(x, 11, -14, 65504.0);
    case EM_BF16: return round_bits(x, 8, -126, 0x1.FEp127);
    case EM_I32:
        if (isnan(x)) return 0;
        if (x >= 2147483647.0) return 2147483647.0;
        if (x <= -2147483648.0) return -2147483648.0;
        return trunc(x);
    case EM_I64:
        if (isnan(x)) return 0;
        if (x >= 0x1p63) return 0x1p63 - 1024;
        if (x <= -0x1p63) return -0x1p63;
        return trunc(x);
    case EM_BOOL: return x != 0 ? 1.0 : 0.0;
    default: return x;
    }
}

static void float_format(em_dtype d, int *mant, int *emin)
{
    switch (d) {
    case EM_F32: *mant = 24; *emin = -126; break;
    case EM_F64: *mant = 53; *emin = -1022; break;
    case EM_F16: *mant = 11; *emin = -14; break;
    case EM_BF16: *mant = 8; *emin = -126; break;
    default: *mant = 0; *emin = 0; break;
    }
}

double bench_ulp(double x, em_dtype d)
{
    int mant, emin;
    float_format(d, &mant, &emin);
    if (!mant) return 0;
    double ax = fabs(x);
    if (!isfinite(ax)) return 0;
    int e = emin + 1;
    if (ax != 0) frexp(ax, &e);
    if (e - 1 < emin) e = emin + 1;
    return ldexp(1.0, e - mant);
}

double bench_eps(em_dtype d)
{
    int mant, emin;
    float_format(d, &mant, &emin);
    return mant ? ldexp(1.0, 1 - mant) : 0;
}

bool bench_is_float(em_dtype d) { return d == EM_F32 || d == EM_F64 || d == EM_F16 || d == EM_BF16; }

static const char *const k_names[EM_DTYPE_COUNT] = {"f32", "f64", "f16", "bf16", "i32", "i64", "bool"};

const char *bench_dtype_name(em_dtype d)
{
    return (int)d >= 0 && d < EM_DTYPE_COUNT ? k_names[d] : "invalid";
}

bool bench_dtype_parse(const char *s, em_dtype *d)
{
    for (int i = 0; i < EM_DTYPE_COUNT; i++)
        if (!strcmp(s, k_names[i])) {
            *d = (em_dtype)i;
            return true;
        }
    return false;
}

/* IEEE half bits of a value already representable in f16. */
static uint16_t f16_bits(double x)
{
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (isnan(x)) return 0x7E00;
    double r = fabs(x);
    if (isinf(r)) return sign | 0x7C00;
    if (r == 0) return sign;
    int e;
    frexp(r, &e);
    int be = e - 1 + 15;
    if (be <= 0) return sign | (uint16_t)ldexp(r, 24);
    uint16_t mant = (uint16_t)(ldexp(r, -(e - 1) + 10) - 1024.0);
    return sign | (uint16_t)(be << 10) | mant;
}

static double f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp(m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static uint16_t bf16_bits(double x)
{
    if (isnan(x)) return 0x7FC0;
    float f = (float)x; /* exact: x is representable in bf16 */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static double bf16_value(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void *bench_pack(const double *v, int64_t n, em_dtype d)
{
    size_t sz = em_dtype_size(d);
    void *buf = malloc((size_t)(n > 0 ? n : 1) * (sz ? sz : 1));
    if (!buf) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double x = v[i];
        switch (d) {
        case EM_F32: ((float *)buf)[i] = (float)x; break;
        case EM_F64: ((double *)buf)[i] = x; break;
        case EM_F16: ((uint16_t *)buf)[i] = f16_bits(x); break;
        case EM_BF16: ((uint16_t *)buf)[i] = bf16_bits(x); break;
        case EM_I32: ((int32_t *)buf)[i] = (int32_t)x; break;
        case EM_I64: ((int64_t *)buf)[i] = (int64_t)x; break;
        case EM_BOOL: ((uint8_t *)buf)[i] = x != 0; break;
        default: break;
        }
    }
    return buf;
}

double bench_unpack(const void *buf, int64_t i, em_dtype d)
{
    switch (d) {
    case EM_F32: return ((const float *)buf)[i];
    case EM_F64: return ((const double *)buf)[i];
    case EM_F16: return f16_value(((const uint16_t *)buf)[i]);
    case EM_BF16: return bf16_value(((const uint16_t *)buf)[i]);
    case EM_I32: return ((const int32_t *)buf)[i];
    case EM_I64: return (double)((const int64_t *)buf)[i];
    case EM_BOOL: return ((const uint8_t *)buf)[i];
    default: return NAN;
    }
}
