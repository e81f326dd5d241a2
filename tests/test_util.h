/*
 * test_util.h — the shared harness of Ember's op tests (header-only, static).
 *
 * What it gives a test program:
 *   - CHECK-style macros that print file:line, the pending em_last_error()
 *     and count passes/failures; tu_finish() prints "N passed, M failed" and
 *     returns the exit status (1 if anything failed).
 *   - tu_init(): em_init and the default device (exit 77 when there is no
 *     device), and a seed for the input PRNG, taken from EMBER_TEST_SEED or
 *     from time and pid, printed so that a failure can be replayed.
 *   - A splitmix64 PRNG for inputs, independent of the library's generators.
 *   - Independent double-precision rounding to every dtype (f32, f16, bf16
 *     round-to-nearest-even with subnormals and overflow; integer and bool
 *     conversion) and the bit encodings of f16/bf16.
 *   - tu_make(): a tensor of any dtype from logical double values in one of
 *     several layouts (contiguous, transposed, strided with step 2, expanded
 *     with stride 0); the values are rounded to the dtype in place so the
 *     caller's reference uses exactly what was uploaded.
 *   - tu_compare(): compares a tensor to a double reference with a per-op,
 *     per-dtype tolerance and prints one line with the measured errors.
 *
 * What it is not for: it never calls the library to compute a reference.
 */
#ifndef EMBER_TEST_UTIL_H
#define EMBER_TEST_UTIL_H

#include "ember.h"

#include <float.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#define TU_UNUSED __attribute__((unused))
#else
#define TU_UNUSED
#endif

/* ------------------------------------------------------------------------ */
/* Counters and CHECK macros                                                 */
/* ------------------------------------------------------------------------ */

static int tu_passed TU_UNUSED;
static int tu_failed TU_UNUSED;
static int tu_gaps TU_UNUSED; /* EM_ERR_UNSUPPORTED on a non-CPU device */
static uint64_t tu_seed TU_UNUSED;
static const char *tu_program TU_UNUSED = "test";

static TU_UNUSED void tu_report_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tu_failed++;
    fprintf(stdout, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    em_status st = em_last_status();
    if (st != EM_OK)
        fprintf(stdout, " [pending %s: %s]", em_status_str(st), em_last_error());
    fprintf(stdout, " (seed %" PRIu64 ")\n", tu_seed);
    fflush(stdout);
}

/* CHECK(cond): counts one check. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) tu_passed++;                                                 \
        else tu_report_fail(__FILE__, __LINE__, "%s", #cond);                  \
    } while (0)

/* CHECKF(cond, fmt, ...): as CHECK with a formatted explanation. */
#define CHECKF(cond, ...)                                                      \
    do {                                                                       \
        if (cond) tu_passed++;                                                 \
        else tu_report_fail(__FILE__, __LINE__, __VA_ARGS__);                  \
    } while (0)

/* CHECK_OK(status expression). */
#define CHECK_OK(expr)                                                         \
    do {                                                                       \
        em_status tu_st_ = (expr);                                             \
        if (tu_st_ == EM_OK) tu_passed++;                                      \
        else tu_report_fail(__FILE__, __LINE__, "%s returned %s", #expr,       \
                            em_status_str(tu_st_));                            \
    } while (0)

/* CHECK_NONNULL(tensor-valued expression): the op must succeed. */
#define CHECK_NONNULL(expr)                                                    \
    do {                                                                       \
        if ((expr) != NULL) tu_passed++;                                       \
        else tu_report_fail(__FILE__, __LINE__, "%s is NULL", #expr);          \
    } while (0)

/* CHECK_STATUS(status expression, expected status): for em_status calls.
 * Clears the pending error before evaluating expr and afterwards. */
#define CHECK_STATUS(expr, want)                                               \
    do {                                                                       \
        em_clear_error();                                                      \
        em_status tu_st_ = (expr);                                             \
        em_status tu_last_ = em_last_status();                                 \
        if (tu_st_ == (want) && tu_last_ == (want)) tu_passed++;               \
        else tu_report_fail(__FILE__, __LINE__,                                \
                            "%s: returned %s, pending %s, want %s", #expr,     \
                            em_status_str(tu_st_), em_status_str(tu_last_),    \
                            em_status_str(want));                              \
        em_clear_error();                                                      \
    } while (0)

/* CHECK_FAILS(tensor expression, expected status): the op must return NULL
 * and leave `want` pending. Clears before and after. */
#define CHECK_FAILS(expr, want)                                                \
    do {                                                                       \
        em_clear_error();                                                      \
        em_tensor *tu_r_ = (expr);                                             \
        em_status tu_last_ = em_last_status();                                 \
        if (tu_r_ == NULL && tu_last_ == (want)) tu_passed++;                  \
        else tu_report_fail(__FILE__, __LINE__,                                \
                            "%s: result %s, pending %s, want NULL and %s",     \
                            #expr, tu_r_ ? "non-NULL" : "NULL",                \
                            em_status_str(tu_last_), em_status_str(want));     \
        if (tu_r_) em_tensor_release(tu_r_);                                   \
        em_clear_error();                                                      \
    } while (0)

/* ------------------------------------------------------------------------ */
/* PRNG (splitmix64), independent of Ember's Philox                          */
/* ------------------------------------------------------------------------ */

static uint64_t tu_rng_state TU_UNUSED;

static TU_UNUSED uint64_t tu_next_u64(void)
{
    uint64_t z = (tu_rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform double in [0, 1). */
static TU_UNUSED double tu_u01(void) { return (double)(tu_next_u64() >> 11) * 0x1.0p-53; }
static TU_UNUSED double tu_uniform(double lo, double hi) { return lo + (hi - lo) * tu_u01(); }
/* Uniform integer in [lo, hi]. */
static TU_UNUSED int64_t tu_randint(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(tu_next_u64() % (uint64_t)(hi - lo + 1));
}
static TU_UNUSED double tu_normal(void)
{
    double u1 = tu_u01(), u2 = tu_u01();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ------------------------------------------------------------------------ */
/* Set-up and summary                                                        */
/* ------------------------------------------------------------------------ */

static em_device *tu_dev TU_UNUSED;

/* Initialises Ember and the input PRNG; exits 77 when there is no device. */
static TU_UNUSED void tu_init(const char *program)
{
    tu_program = program;
    const char *env = getenv("EMBER_TEST_SEED");
    if (env && *env) {
        tu_seed = strtoull(env, NULL, 0);
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        tu_seed = ((uint64_t)tv.tv_sec * 1000003u) ^ ((uint64_t)tv.tv_usec << 20) ^
                  ((uint64_t)getpid() << 40);
    }
    tu_rng_state = tu_seed;
    printf("%s: seed %" PRIu64 " (replay with EMBER_TEST_SEED=%" PRIu64 ")\n", program, tu_seed,
           tu_seed);
    em_status st = em_init();
    tu_dev = em_device_default();
    if (!tu_dev) {
        printf("%s: no device (em_init: %s; %s): skipped\n", program, em_status_str(st),
               em_last_error());
        exit(77);
    }
    if (st != EM_OK) {
        printf("%s: em_init returned %s (%s) but a default device exists\n", program,
               em_status_str(st), em_last_error());
    }
    printf("%s: device %s\n", program, em_device_name(tu_dev));
    em_clear_error();
    fflush(stdout);
}

/* Prints the summary line and returns the exit status for main. */
static TU_UNUSED int tu_finish(void)
{
    if (tu_gaps)
        printf("%d checks unsupported on %s (coverage gaps, not passes)\n", tu_gaps,
               em_device_name(tu_dev));
    printf("%d passed, %d failed\n", tu_passed, tu_failed);
    fflush(stdout);
    return tu_failed ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* dtypes: independent facts and rounding                                    */
/* ------------------------------------------------------------------------ */

static const em_dtype tu_all_dtypes[] TU_UNUSED = {EM_F32, EM_F64, EM_F16, EM_BF16,
                                                   EM_I32, EM_I64, EM_BOOL};
static const em_dtype tu_float_dtypes[] TU_UNUSED = {EM_F32, EM_F64, EM_F16, EM_BF16};

static TU_UNUSED const char *tu_dt(em_dtype d)
{
    switch (d) {
    case EM_F32: return "f32";
    case EM_F64: return "f64";
    case EM_F16: return "f16";
    case EM_BF16: return "bf16";
    case EM_I32: return "i32";
    case EM_I64: return "i64";
    case EM_BOOL: return "bool";
    default: return "?";
    }
}
static TU_UNUSED int tu_is_float(em_dtype d)
{
    return d == EM_F32 || d == EM_F64 || d == EM_F16 || d == EM_BF16;
}
static TU_UNUSED int tu_is_int(em_dtype d) { return d == EM_I32 || d == EM_I64; }
static TU_UNUSED size_t tu_size(em_dtype d)
{
    switch (d) {
    case EM_F32: case EM_I32: return 4;
    case EM_F64: case EM_I64: return 8;
    case EM_F16: case EM_BF16: return 2;
    case EM_BOOL: return 1;
    default: return 0;
    }
}

/* Independent PyTorch promotion (bool < ints < floats; f16+bf16 = f32). */
static TU_UNUSED em_dtype tu_promote(em_dtype a, em_dtype b)
{
    if (a == b) return a;
    if (tu_is_float(a) || tu_is_float(b)) {
        if (!tu_is_float(a)) return b;
        if (!tu_is_float(b)) return a;
        if (a == EM_F64 || b == EM_F64) return EM_F64;
        if (a == EM_F32 || b == EM_F32) return EM_F32;
        return EM_F32; /* f16 with bf16 */
    }
    if (a == EM_BOOL) return b;
    if (b == EM_BOOL) return a;
    return EM_I64; /* i32 with i64 */
}

/* The documented scalar rule: result dtype of (tensor of dtype d) op s. */
static TU_UNUSED em_dtype tu_scalar_result(em_dtype d, double s)
{
    if (tu_is_float(d)) return d;
    if (s != floor(s) || !isfinite(s)) return EM_F32;
    return d == EM_BOOL ? EM_I64 : d;
}

/* Rounds |x| to a binary float with `mant` significand bits (incl. the
 * implicit one), minimum normal exponent emin (value 2^emin), and largest
 * finite value maxv; round to nearest, ties to even; overflow to inf. */
static TU_UNUSED double tu_round_bits(double x, int mant, int emin, double maxv)
{
    if (isnan(x) || isinf(x) || x == 0) return x;
    double ax = fabs(x);
    int e;
    frexp(ax, &e); /* ax = m * 2^e, m in [0.5, 1) */
    int ue = e - mant; /* ulp exponent for normals */
    if (ue < emin - mant + 1) ue = emin - mant + 1; /* subnormal ulp */
    double q = ldexp(ax, -ue);
    double r = ldexp(nearbyint(q), ue); /* nearbyint: ties to even by default */
    /* overflow: anything that rounds above maxv is inf */
    if (r > maxv) r = INFINITY;
    return x < 0 ? -r : r;
}
static TU_UNUSED double tu_round_f16(double x) { return tu_round_bits(x, 11, -14, 65504.0); }
static TU_UNUSED double tu_round_bf16(double x)
{
    return tu_round_bits(x, 8, -126, 0x1.FEp127);
}
static TU_UNUSED double tu_round_f32(double x) { return tu_round_bits(x, 24, -126, FLT_MAX); }

/* Value of x after storing into dtype d (integers: truncate toward zero;
 * bool: != 0). Used for inputs and for rounding references. */
static TU_UNUSED double tu_round(double x, em_dtype d)
{
    switch (d) {
    case EM_F32: return (double)(float)x; /* IEEE conversion: round to nearest even */
    case EM_F64: return x;
    case EM_F16: return tu_round_f16(x);
    case EM_BF16: return tu_round_bf16(x);
    case EM_I32: return isnan(x) ? 0 : (double)(int32_t)trunc(x);
    case EM_I64: return isnan(x) ? 0 : (double)(int64_t)trunc(x);
    case EM_BOOL: return x != 0 ? 1.0 : 0.0;
    default: return x;
    }
}

/* One unit in the last place of dtype d at value x (0 for non-floats). */
static TU_UNUSED double tu_ulp(double x, em_dtype d)
{
    int mant, emin;
    switch (d) {
    case EM_F32: mant = 24; emin = -126; break;
    case EM_F64: mant = 53; emin = -1022; break;
    case EM_F16: mant = 11; emin = -14; break;
    case EM_BF16: mant = 8; emin = -126; break;
    default: return 0;
    }
    double ax = fabs(x);
    if (!isfinite(ax)) return 0;
    int e = emin + 1;
    if (ax != 0) frexp(ax, &e);
    if (e - 1 < emin) e = emin + 1;
    return ldexp(1.0, e - mant);
}

/* IEEE half bits of x (rounded first). */
static TU_UNUSED uint16_t tu_f16_bits(double x)
{
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (isnan(x)) return 0x7E00;
    double r = fabs(tu_round_f16(x));
    if (isinf(r)) return sign | 0x7C00;
    if (r == 0) return sign;
    int e;
    frexp(r, &e); /* r = m*2^e, m in [0.5,1); unbiased exponent e-1 */
    int be = e - 1 + 15;
    if (be <= 0) return sign | (uint16_t)ldexp(r, 24); /* subnormal: r / 2^-24 */
    uint16_t mant = (uint16_t)(ldexp(r, -(e - 1) + 10) - 1024.0);
    return sign | (uint16_t)(be << 10) | mant;
}
static TU_UNUSED double tu_f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp(m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024 + m, e - 25);
    return s ? -v : v;
}
/* bfloat16 bits: the top half of the f32 bits of the rounded value. */
static TU_UNUSED uint16_t tu_bf16_bits(double x)
{
    if (isnan(x)) return 0x7FC0;
    float f = (float)tu_round_bf16(x); /* exact in f32 */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
static TU_UNUSED double tu_bf16_value(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Stores x (already representable) as dtype d at dst[i]. */
static TU_UNUSED void tu_store(void *dst, int64_t i, double x, em_dtype d)
{
    switch (d) {
    case EM_F32: ((float *)dst)[i] = (float)x; break;
    case EM_F64: ((double *)dst)[i] = x; break;
    case EM_F16: ((uint16_t *)dst)[i] = tu_f16_bits(x); break;
    case EM_BF16: ((uint16_t *)dst)[i] = tu_bf16_bits(x); break;
    case EM_I32: ((int32_t *)dst)[i] = (int32_t)x; break;
    case EM_I64: ((int64_t *)dst)[i] = (int64_t)x; break;
    case EM_BOOL: ((uint8_t *)dst)[i] = x != 0; break;
    default: break;
    }
}
static TU_UNUSED double tu_load(const void *src, int64_t i, em_dtype d)
{
    switch (d) {
    case EM_F32: return ((const float *)src)[i];
    case EM_F64: return ((const double *)src)[i];
    case EM_F16: return tu_f16_value(((const uint16_t *)src)[i]);
    case EM_BF16: return tu_bf16_value(((const uint16_t *)src)[i]);
    case EM_I32: return ((const int32_t *)src)[i];
    case EM_I64: return (double)((const int64_t *)src)[i];
    case EM_BOOL: return ((const uint8_t *)src)[i];
    default: return NAN;
    }
}

/* ------------------------------------------------------------------------ */
/* Shapes                                                                    */
/* ------------------------------------------------------------------------ */

static TU_UNUSED int64_t tu_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}
/* "[2,3]" into buf (as the core formats shapes). */
static TU_UNUSED const char *tu_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t u = 0;
    u += (size_t)snprintf(buf + u, cap - u, "[");
    for (int i = 0; i < ndim && u < cap; i++)
        u += (size_t)snprintf(buf + u, cap - u, i ? ",%" PRId64 : "%" PRId64, shape[i]);
    if (u < cap) snprintf(buf + u, cap - u, "]");
    return buf;
}
/* Contiguous strides of shape. */
static TU_UNUSED void tu_strides(int ndim, const int64_t *shape, int64_t *st)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        st[i] = s;
        s *= shape[i];
    }
}
/* Flat index -> multi-index. */
static TU_UNUSED void tu_unravel(int64_t flat, int ndim, const int64_t *shape, int64_t *idx)
{
    for (int i = ndim - 1; i >= 0; i--) {
        idx[i] = shape[i] ? flat % shape[i] : 0;
        flat = shape[i] ? flat / shape[i] : 0;
    }
}
/* Broadcast two shapes; returns 0 when they do not broadcast. */
static TU_UNUSED int tu_broadcast(int na, const int64_t *sa, int nb, const int64_t *sb,
                                  int *nout, int64_t *sout)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t a = i < n - na ? 1 : sa[i - (n - na)];
        int64_t b = i < n - nb ? 1 : sb[i - (n - nb)];
        if (a != b && a != 1 && b != 1) return 0;
        sout[i] = a == 1 ? b : a;
    }
    *nout = n;
    return 1;
}
/* The flat index in a (shape sa, na dims) of the element that broadcasting
 * maps to multi-index idx of the output (n dims). */
static TU_UNUSED int64_t tu_bcast_index(const int64_t *idx, int n, int na, const int64_t *sa)
{
    int64_t f = 0;
    for (int i = 0; i < na; i++) {
        int64_t j = idx[i + (n - na)];
        f = f * sa[i] + (sa[i] == 1 ? 0 : j);
    }
    return f;
}

/* Checks t's shape is exactly (ndim, shape). */
static TU_UNUSED int tu_has_shape(const em_tensor *t, int ndim, const int64_t *shape)
{
    if (!t || em_tensor_ndim(t) != ndim) return 0;
    int64_t s[EM_MAX_DIMS];
    em_tensor_shape(t, s);
    for (int i = 0; i < ndim; i++)
        if (s[i] != shape[i]) return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Tensors from doubles, in several layouts                                  */
/* ------------------------------------------------------------------------ */

enum {
    TU_CONTIG = 0,
    TU_TRANSPOSED = 1, /* dims reversed in storage, then permuted back       */
    TU_STRIDED = 2,    /* every dim sliced with step 2 out of a bigger tensor */
    TU_EXPANDED = 3,   /* first dim of size > 1 expanded from size 1 (stride 0) */
    TU_LAYOUT_COUNT = 4
};
static const char *const tu_layout_names[] TU_UNUSED = {"contiguous", "transposed", "strided",
                                                        "expanded"};

/* A contiguous tensor of dtype d holding vals (which must be representable). */
static TU_UNUSED em_tensor *tu_upload(const double *vals, em_dtype d, int ndim,
                                      const int64_t *shape)
{
    int64_t n = tu_numel(ndim, shape);
    void *buf = calloc((size_t)(n > 0 ? n : 1), tu_size(d));
    for (int64_t i = 0; i < n; i++) tu_store(buf, i, vals[i], d);
    em_tensor *t = em_tensor_from_data(buf, d, ndim, shape, tu_dev);
    free(buf);
    return t;
}

/* A tensor of dtype d with logical values vals (rounded to d in place) and
 * the given layout. TU_EXPANDED makes vals constant along the expanded dim
 * (in place). Layouts that do not apply to the shape fall back to
 * contiguous. Returns NULL (and reports a failed check) on error. */
static TU_UNUSED em_tensor *tu_make(double *vals, em_dtype d, int ndim, const int64_t *shape,
                                    int layout)
{
    int64_t n = tu_numel(ndim, shape);
    for (int64_t i = 0; i < n; i++) vals[i] = tu_round(vals[i], d);
    em_tensor *r = NULL;
    if (layout == TU_TRANSPOSED && ndim >= 2) {
        int64_t rs[EM_MAX_DIMS], idx[EM_MAX_DIMS], rst[EM_MAX_DIMS];
        int perm[EM_MAX_DIMS];
        for (int i = 0; i < ndim; i++) {
            rs[i] = shape[ndim - 1 - i];
            perm[i] = ndim - 1 - i;
        }
        tu_strides(ndim, rs, rst);
        double *tmp = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
        for (int64_t f = 0; f < n; f++) {
            tu_unravel(f, ndim, shape, idx);
            int64_t g = 0;
            for (int i = 0; i < ndim; i++) g += idx[ndim - 1 - i] * rst[i];
            tmp[g] = vals[f];
        }
        em_tensor *base = tu_upload(tmp, d, ndim, rs);
        free(tmp);
        if (base) r = em_permute(base, ndim, perm);
        em_tensor_release(base);
    } else if (layout == TU_STRIDED && ndim >= 1) {
        int64_t bs[EM_MAX_DIMS], bst[EM_MAX_DIMS], idx[EM_MAX_DIMS];
        for (int i = 0; i < ndim; i++) bs[i] = 2 * shape[i] + (i == 0 ? 1 : 0);
        tu_strides(ndim, bs, bst);
        int64_t bn = tu_numel(ndim, bs);
        double *tmp = malloc(sizeof(double) * (size_t)(bn > 0 ? bn : 1));
        double sentinel = tu_round(-77.0, d);
        for (int64_t i = 0; i < bn; i++) tmp[i] = sentinel;
        for (int64_t f = 0; f < n; f++) {
            tu_unravel(f, ndim, shape, idx);
            int64_t g = 0;
            for (int i = 0; i < ndim; i++) g += (2 * idx[i] + (i == 0 ? 1 : 0)) * bst[i];
            tmp[g] = vals[f];
        }
        em_tensor *cur = tu_upload(tmp, d, ndim, bs);
        free(tmp);
        for (int i = 0; i < ndim && cur; i++) {
            em_tensor *nx = em_slice(cur, i, i == 0 ? 1 : 0, INT64_MAX, 2);
            em_tensor_release(cur);
            cur = nx;
        }
        r = cur;
    } else if (layout == TU_EXPANDED && ndim >= 1) {
        int ed = -1;
        for (int i = 0; i < ndim; i++)
            if (shape[i] > 1) {
                ed = i;
                break;
            }
        if (ed < 0) return tu_make(vals, d, ndim, shape, TU_CONTIG);
        int64_t bs[EM_MAX_DIMS], idx[EM_MAX_DIMS];
        memcpy(bs, shape, sizeof(int64_t) * (size_t)ndim);
        bs[ed] = 1;
        int64_t bn = tu_numel(ndim, bs);
        double *tmp = malloc(sizeof(double) * (size_t)(bn > 0 ? bn : 1));
        int64_t bst[EM_MAX_DIMS], st[EM_MAX_DIMS];
        tu_strides(ndim, bs, bst);
        tu_strides(ndim, shape, st);
        for (int64_t f = 0; f < n; f++) {
            tu_unravel(f, ndim, shape, idx);
            int64_t g = 0;
            for (int i = 0; i < ndim; i++) g += (i == ed ? 0 : idx[i]) * bst[i];
            if (idx[ed] == 0) tmp[g] = vals[f];
        }
        for (int64_t f = 0; f < n; f++) {
            tu_unravel(f, ndim, shape, idx);
            int64_t g = 0;
            for (int i = 0; i < ndim; i++) g += (i == ed ? 0 : idx[i]) * bst[i];
            vals[f] = tmp[g];
        }
        em_tensor *base = tu_upload(tmp, d, ndim, bs);
        free(tmp);
        if (base) r = em_expand(base, ndim, shape);
        em_tensor_release(base);
    } else {
        r = tu_upload(vals, d, ndim, shape);
    }
    if (!r) {
        char sb[96];
        tu_report_fail(__FILE__, __LINE__, "tu_make %s %s %s failed", tu_dt(d),
                       tu_shape_str(ndim, shape, sb, sizeof sb), tu_layout_names[layout]);
        em_clear_error();
    }
    return r;
}

/* Fills vals[0..n) with inputs for dtype d from [lo, hi] (integers for
 * integral dtypes, 0/1 for bool). */
static TU_UNUSED void tu_fill(double *vals, int64_t n, em_dtype d, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++) {
        if (d == EM_BOOL) vals[i] = (double)(tu_next_u64() & 1);
        else if (tu_is_int(d)) vals[i] = (double)tu_randint((int64_t)ceil(lo), (int64_t)floor(hi));
        else vals[i] = tu_round(tu_uniform(lo, hi), d);
    }
}

/* Reads t into a freshly malloc'ed array of numel doubles (NULL on error,
 * with a failed check reported). */
static TU_UNUSED double *tu_read(const em_tensor *t)
{
    if (!t) return NULL;
    int64_t n = em_tensor_numel(t);
    double *out = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    em_status st = em_tensor_read_f64(t, out, (size_t)n);
    if (st != EM_OK) {
        tu_report_fail(__FILE__, __LINE__, "em_tensor_read_f64 failed: %s", em_status_str(st));
        em_clear_error();
        free(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------------------ */
/* Comparing to a reference                                                  */
/* ------------------------------------------------------------------------ */

/* An element passes when |got - ref| <= atol + rtol * max(|ref|, scale) +
 * ulps * ulp(ref in the result dtype). NaN matches NaN, inf matches the same
 * inf. `scale` (optional per element) is a magnitude for accumulations, such
 * as sum |x| for a sum. */
typedef struct tu_tol {
    double atol, rtol, ulps;
} tu_tol;

static TU_UNUSED int tu_close(double got, double ref, double scale, em_dtype d, tu_tol tol)
{
    if (isnan(ref)) return isnan(got);
    if (isinf(ref)) return got == ref;
    if (!isfinite(got)) return 0;
    double m = fabs(ref) > scale ? fabs(ref) : scale;
    return fabs(got - ref) <= tol.atol + tol.rtol * m + tol.ulps * tu_ulp(ref, d);
}

/* Compares t (dtype want_dtype, shape (ndim, shape)) with ref (already rounded to the
 * dtype by the caller if desired). Prints one line "label: max_abs_err ..
 * max_rel_err .. (tol ..) ok|FAIL" and counts one check. Returns 1 if ok. */
static TU_UNUSED int tu_compare_scaled(const char *label, const em_tensor *t, em_dtype want_dtype,
                                       int ndim, const int64_t *shape, const double *ref,
                                       const double *scale, tu_tol tol, int verbose)
{
    char sb[96], sb2[96];
    if (!t && em_last_status() == EM_ERR_UNSUPPORTED && tu_dev != em_device_cpu()) {
        /* Unsupported is a coverage gap, never a pass (the CPU must run all). */
        printf("%s: UNSUPPORTED on %s (coverage gap): %s\n", label, em_device_name(tu_dev), em_last_error());
        tu_gaps++;
        em_clear_error();
        return 0;
    }
    if (!t) {
        tu_report_fail(__FILE__, __LINE__, "%s: op returned NULL", label);
        em_clear_error();
        return 0;
    }
    if (em_tensor_dtype(t) != want_dtype || !tu_has_shape(t, ndim, shape)) {
        int64_t s[EM_MAX_DIMS];
        int nd = em_tensor_shape(t, s);
        tu_report_fail(__FILE__, __LINE__, "%s: result %s%s, want %s%s", label,
                       tu_dt(em_tensor_dtype(t)), tu_shape_str(nd < 0 ? 0 : nd, s, sb, sizeof sb),
                       tu_dt(want_dtype), tu_shape_str(ndim, shape, sb2, sizeof sb2));
        return 0;
    }
    int64_t n = tu_numel(ndim, shape);
    double *got = tu_read(t);
    if (!got) return 0;
    double max_abs = 0, max_rel = 0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double r = ref[i], g = got[i];
        int ok = tu_close(g, r, scale ? scale[i] : 0, want_dtype, tol);
        if (!ok && bad < 0) bad = i;
        if (isfinite(r) && isfinite(g)) {
            double ae = fabs(g - r);
            double re = ae / (fabs(r) > 1e-300 ? fabs(r) : 1e-300);
            if (ae > max_abs) max_abs = ae;
            if (ae > 0 && re > max_rel) max_rel = re;
        } else if (!ok) {
            max_abs = INFINITY;
        }
    }
    int ok = bad < 0;
    if (verbose || !ok)
        printf("%s: max_abs_err %.3g max_rel_err %.3g (tol %g+%g*|ref|+%gulp) %s\n", label,
               max_abs, max_rel, tol.atol, tol.rtol, tol.ulps, ok ? "ok" : "FAIL");
    if (ok) {
        tu_passed++;
    } else {
        int64_t idx[EM_MAX_DIMS] = {0};
        tu_unravel(bad, ndim, shape, idx);
        char ib[96];
        tu_report_fail(__FILE__, __LINE__, "%s: first mismatch at %s: got %.17g want %.17g",
                       label, tu_shape_str(ndim, idx, ib, sizeof ib), got[bad], ref[bad]);
    }
    free(got);
    return ok;
}
static TU_UNUSED int tu_compare(const char *label, const em_tensor *t, em_dtype want_dtype,
                                int ndim, const int64_t *shape, const double *ref, tu_tol tol)
{
    return tu_compare_scaled(label, t, want_dtype, ndim, shape, ref, NULL, tol, 1);
}
/* Exact comparison (integers, bools, copies). */
static TU_UNUSED int tu_compare_exact(const char *label, const em_tensor *t, em_dtype want_dtype,
                                      int ndim, const int64_t *shape, const double *ref)
{
    tu_tol z = {0, 0, 0};
    return tu_compare_scaled(label, t, want_dtype, ndim, shape, ref, NULL, z, 1);
}

/* ------------------------------------------------------------------------ */
/* Heap measurement (glibc)                                                  */
/* ------------------------------------------------------------------------ */

static TU_UNUSED size_t tu_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

#endif /* EMBER_TEST_UTIL_H */
