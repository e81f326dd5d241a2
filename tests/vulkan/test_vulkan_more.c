/*
 * test_vulkan_more.c — the "ops" scenario's second half: every op of
 * api/ember_plugin.h beyond the first kernels, on every dtype, Vulkan vs the
 * CPU device (the reference: both run the same public op on the same
 * inputs). Tolerances: integers, bool, casts, copies, index ops, comparisons
 * and the random ops are exact; arithmetic is within an ulp or two of the
 * dtype; transcendentals and reductions within the atol/rtol stated at each
 * call (f32 sums accumulate in f32 with Kahan compensation here, in double on
 * the CPU). Every comparison prints its measured error.
 *
 * Fallbacks: part A (f32, f16, bf16, i32, bool, index ops) and part B (i64,
 * f64, integer reductions, random ops) must not fall back (part B: except
 * the f64 transcendentals GLSL cannot compute, counted separately) unless
 * EMBER_VULKAN_NARROW=1: the device then has no i64/f64 kernels, the counts
 * are printed and part B must show fallbacks. Reading results back is
 * excluded.
 */
#include "test_vulkan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fallbacks the ABI's design allows (f64 transcendentals, pow, softmax and
 * logsumexp: GLSL has no double exp/log/trig), counted so part B can require
 * zero others. */
static uint64_t g_expected_fb;
#define ALLOWED_FALLBACK(cond, stmt)                                                     \
    do {                                                                                 \
        uint64_t fb_ = em_fallback_count();                                              \
        stmt;                                                                            \
        if (cond) g_expected_fb += em_fallback_count() - fb_;                            \
    } while (0)

static int is_float_dt(em_dtype d) { return d == EM_F32 || d == EM_F64 || d == EM_F16 || d == EM_BF16; }

/* A CPU tensor of dtype dt with values from [lo, hi) (integers: floored; bool: 0/1). */
static em_tensor *make(em_dtype dt, int ndim, const int64_t *shape, double lo, double hi)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        double x = lo + (hi - lo) * urand();
        if (dt == EM_BOOL) x = urand() < 0.5;
        else if (!is_float_dt(dt)) x = floor(x);
        v[i] = x;
    }
    em_tensor *t64 = em_tensor_from_data(v, EM_F64, ndim, shape, g_cpu);
    free(v);
    return em_cast(t64, dt);
}

/* Tolerance of dtype dt: trans = transcendental or reduction. */
static void tol(em_dtype dt, int trans, double *atol, double *rtol)
{
    switch (dt) {
    case EM_F64: *atol = trans ? 1e-12 : 1e-300; *rtol = trans ? 1e-12 : 4.5e-16; break;
    case EM_F32: *atol = trans ? 2e-6 : 1e-38; *rtol = trans ? 4e-6 : 2.4e-7; break;
    case EM_F16: *atol = 1e-3; *rtol = 2e-3; break;
    case EM_BF16: *atol = 1e-2; *rtol = 1.6e-2; break;
    default: *atol = 0; *rtol = 0; break;
    }
}

/* Compares unless the op is refused for these operands (both devices agree). */
static void cmp(const char *what, em_tensor *v, em_tensor *c, double atol, double rtol)
{
    if (!c) {
        EXPECT(!v, "%s: refused on the CPU but not on Vulkan", what);
        em_clear_error();
        return;
    }
    compare(what, v, c, atol, rtol);
}

typedef em_tensor *(*bin_fn)(const em_tensor *, const em_tensor *);
typedef em_tensor *(*sc_fn)(const em_tensor *, double);
typedef em_tensor *(*un_fn)(const em_tensor *);

static em_tensor *gelu_t(const em_tensor *t) { return em_gelu(t, true); }
static em_tensor *gelu_e(const em_tensor *t) { return em_gelu(t, false); }
static em_tensor *softplus2(const em_tensor *t) { return em_softplus(t, 2.0, 5.0); }

/* ---------------- casts ---------------------------------------------------- */

static void test_casts(const em_dtype *dts, int n_dts)
{
    static const double sv[] = {0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.7, 127.9, 255, 256, -129,
                                65504, 65520, 70000, 1e-8, 6e-8, 3e-5, 2147483520.0,
                                2147483648.0, 3e9, -3e9, 1e19, -1e19, 1e30, NAN, INFINITY,
                                -INFINITY, 1.0 / 3, 16777217, 1e-40, 3.4e38};
    int64_t n = sizeof sv / sizeof sv[0];
    em_tensor *base = em_tensor_from_data(sv, EM_F64, 1, &n, g_cpu);
    char what[96];
    for (int i = 0; i < n_dts; i++) {
        em_tensor *c = em_cast(base, dts[i]), *v = em_tensor_to(c, g_vk);
        for (int j = 0; j < n_dts; j++) {
            snprintf(what, sizeof what, "cast %s -> %s", em_dtype_name(dts[i]), em_dtype_name(dts[j]));
            cmp(what, em_cast(v, dts[j]), em_cast(c, dts[j]), 0, 0);
        }
        /* strided source */
        snprintf(what, sizeof what, "cast %s -> f32, stride 2", em_dtype_name(dts[i]));
        cmp(what, em_cast(em_slice(v, 0, 0, n, 2), EM_F32), em_cast(em_slice(c, 0, 0, n, 2), EM_F32), 0, 0);
    }
}

/* ---------------- elementwise per dtype ------------------------------------ */

static void test_elementwise_dtype(em_dtype dt)
{
    const char *dn = em_dtype_name(dt);
    int fl = is_float_dt(dt);
    double at, rt, ta, tr;
    tol(dt, 0, &at, &rt);
    tol(dt, 1, &ta, &tr);
    int64_t sh[3] = {3, 5, 7}, bsh[3] = {1, 5, 1};
    em_tensor *ac = make(dt, 3, sh, -3, 3), *bc = make(dt, 3, sh, 0.5, 3), *cc = make(dt, 3, bsh, -3, 3);
    em_tensor *av = em_tensor_to(ac, g_vk), *bv = em_tensor_to(bc, g_vk), *cv = em_tensor_to(cc, g_vk);
    char what[96];
    static const struct { const char *name; bin_fn f; sc_fn s; int float_only; } bins[] = {
        {"add", em_add, em_add_scalar, 0}, {"sub", em_sub, em_sub_scalar, 0},
        {"mul", em_mul, em_mul_scalar, 0}, {"div", em_div, em_div_scalar, 1},
        {"maximum", em_maximum, em_maximum_scalar, 0}, {"minimum", em_minimum, em_minimum_scalar, 0},
        {"eq", em_eq, em_eq_scalar, 0}, {"ne", em_ne, em_ne_scalar, 0}, {"lt", em_lt, em_lt_scalar, 0},
        {"le", em_le, em_le_scalar, 0}, {"gt", em_gt, em_gt_scalar, 0}, {"ge", em_ge, em_ge_scalar, 0}};
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
        if (bins[i].float_only && !fl) continue;
        snprintf(what, sizeof what, "%s %s", bins[i].name, dn);
        cmp(what, bins[i].f(av, bv), bins[i].f(ac, bc), at, rt);
        snprintf(what, sizeof what, "%s %s broadcast, transposed", bins[i].name, dn);
        cmp(what, bins[i].f(em_transpose(av, 0, 2), em_transpose(em_expand(cv, 3, sh), 0, 2)),
            bins[i].f(em_transpose(ac, 0, 2), em_transpose(em_expand(cc, 3, sh), 0, 2)), at, rt);
        snprintf(what, sizeof what, "%s %s scalar 0.1", bins[i].name, dn);
        cmp(what, bins[i].s(av, 0.1), bins[i].s(ac, 0.1), at, rt);
        snprintf(what, sizeof what, "%s %s scalar -2", bins[i].name, dn);
        cmp(what, bins[i].s(av, -2), bins[i].s(ac, -2), at, rt);
    }
    /* pow: positive bases for floats, small exponents for integers */
    em_tensor *pb_c = make(dt, 3, sh, fl ? 0.1 : -3, fl ? 3 : 4), *pe_c = make(dt, 3, sh, fl ? -2 : 0, fl ? 2 : 6);
    em_tensor *pb_v = em_tensor_to(pb_c, g_vk), *pe_v = em_tensor_to(pe_c, g_vk);
    snprintf(what, sizeof what, "pow %s", dn);
    ALLOWED_FALLBACK(dt == EM_F64, cmp(what, em_pow(pb_v, pe_v), em_pow(pb_c, pe_c), ta, tr));
    snprintf(what, sizeof what, "pow %s scalar 3", dn);
    ALLOWED_FALLBACK(dt == EM_F64, cmp(what, em_pow_scalar(av, 3), em_pow_scalar(ac, 3), ta, tr));
    /* selection */
    em_tensor *mv = em_gt(av, bv), *mc = em_gt(ac, bc);
    snprintf(what, sizeof what, "where %s", dn);
    cmp(what, em_where(mv, av, em_transpose(em_transpose(bv, 0, 1), 0, 1)), em_where(mc, ac, bc), 0, 0);
    snprintf(what, sizeof what, "masked_fill %s", dn);
    cmp(what, em_masked_fill(av, mv, 7.5), em_masked_fill(ac, mc, 7.5), 0, 0);
    snprintf(what, sizeof what, "clamp %s [-1.5, 2.5]", dn);
    cmp(what, em_clamp(av, -1.5, 2.5), em_clamp(ac, -1.5, 2.5), 0, 0);
    snprintf(what, sizeof what, "clamp %s [-inf, 0.3]", dn);
    cmp(what, em_clamp(av, -INFINITY, 0.3), em_clamp(ac, -INFINITY, 0.3), 0, 0);
    /* unary */
    static const struct { const char *name; un_fn f; int float_only; int positive; } uns[] = {
        {"neg", em_neg, 0, 0}, {"abs", em_abs, 0, 0}, {"relu", em_relu, 0, 0},
        {"square", em_square, 0, 0}, {"sign", em_sign, 0, 0}, {"exp", em_exp, 1, 0},
        {"log", em_log, 1, 1}, {"sqrt", em_sqrt, 1, 1}, {"rsqrt", em_rsqrt, 1, 1},
        {"sin", em_sin, 1, 0}, {"cos", em_cos, 1, 0}, {"tanh", em_tanh, 1, 0},
        {"sigmoid", em_sigmoid, 1, 0}, {"gelu", gelu_e, 1, 0}, {"gelu tanh", gelu_t, 1, 0},
        {"silu", em_silu, 1, 0}, {"softplus", softplus2, 1, 0}, {"reciprocal", em_reciprocal, 1, 1},
        {"erf", em_erf, 1, 0}};
    for (size_t i = 0; i < sizeof uns / sizeof uns[0]; i++) {
        if (uns[i].float_only && !fl) continue;
        em_tensor *xv = uns[i].positive ? bv : av, *xc = uns[i].positive ? bc : ac;
        int f64_trans = dt == EM_F64 && uns[i].float_only && uns[i].f != em_sqrt &&
                        uns[i].f != em_rsqrt && uns[i].f != em_reciprocal;
        snprintf(what, sizeof what, "%s %s", uns[i].name, dn);
        ALLOWED_FALLBACK(f64_trans, cmp(what, uns[i].f(xv), uns[i].f(xc), ta, tr));
        snprintf(what, sizeof what, "%s %s transposed", uns[i].name, dn);
        ALLOWED_FALLBACK(f64_trans, cmp(what, uns[i].f(em_transpose(xv, 1, 2)),
                                        uns[i].f(em_transpose(xc, 1, 2)), ta, tr));
    }
}

static void test_special_values(void)
{
    static const float sv[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-30f, 1e-4f, -1e-4f, 0.3f,
                               -0.7f, 3.9f, -5.5f, 20.0f, -20.0f, 88.0f, -88.0f, 100.0f, -100.0f};
    int64_t n = sizeof sv / sizeof sv[0];
    em_tensor *c = em_tensor_from_data(sv, EM_F32, 1, &n, g_cpu), *v = em_tensor_to(c, g_vk);
    static const struct { const char *name; un_fn f; } uns[] = {
        {"relu", em_relu}, {"sign", em_sign}, {"abs", em_abs}, {"tanh", em_tanh},
        {"sigmoid", em_sigmoid}, {"exp", em_exp}, {"erf", em_erf}, {"gelu", gelu_e},
        {"gelu tanh", gelu_t}, {"silu", em_silu}, {"softplus", softplus2}};
    char what[96];
    for (size_t i = 0; i < sizeof uns / sizeof uns[0]; i++) {
        snprintf(what, sizeof what, "%s f32 special values", uns[i].name);
        cmp(what, uns[i].f(v), uns[i].f(c), 2e-6, 4e-6);
    }
    cmp("maximum f32 with NaN", em_maximum(v, em_neg(v)), em_maximum(c, em_neg(c)), 0, 0);
}

/* ---------------- reductions and softmax ----------------------------------- */

static void test_reductions_dtype(em_dtype dt)
{
    const char *dn = em_dtype_name(dt);
    int fl = is_float_dt(dt);
    double ta, tr;
    tol(dt, 1, &ta, &tr);
    if (dt == EM_F32) { ta = 1e-5; tr = 1e-5; }
    int64_t sh[3] = {4, 6, 37};
    /* integers from a small range: many ties for argmax/argmin (first occurrence) */
    em_tensor *c = make(dt, 3, sh, fl ? -2 : -3, fl ? 2 : 3), *v = em_tensor_to(c, g_vk);
    int d0[1] = {0}, d1[1] = {1}, d2[1] = {2}, d02[2] = {0, 2};
    char what[96];
#define RED(label, EXPR_V, EXPR_C)                                                        \
    do {                                                                                 \
        snprintf(what, sizeof what, "%s %s", label, dn);                                 \
        ALLOWED_FALLBACK(dt == EM_F64 && (strstr(label, "softmax") || strstr(label, "logsumexp")), \
                         cmp(what, EXPR_V, EXPR_C, ta, tr));                             \
    } while (0)
    RED("sum all", em_sum(v, NULL, 0, false), em_sum(c, NULL, 0, false));
    RED("sum dims 0,2", em_sum(v, d02, 2, true), em_sum(c, d02, 2, true));
    RED("max dim 1", em_max(v, d1, 1, false), em_max(c, d1, 1, false));
    RED("min all", em_min(v, NULL, 0, false), em_min(c, NULL, 0, false));
    RED("min dims 0,2 of transpose", em_min(em_transpose(v, 0, 1), d02, 2, false),
        em_min(em_transpose(c, 0, 1), d02, 2, false));
    RED("argmax dim 2", em_argmax(v, 2, false), em_argmax(c, 2, false));
    RED("argmax dim 0", em_argmax(v, 0, true), em_argmax(c, 0, true));
    RED("argmin dim 1 of transpose", em_argmin(em_transpose(v, 1, 2), 1, false),
        em_argmin(em_transpose(c, 1, 2), 1, false));
    if (fl) {
        RED("mean dim 2", em_mean(v, d2, 1, false), em_mean(c, d2, 1, false));
        RED("mean all", em_mean(v, NULL, 0, false), em_mean(c, NULL, 0, false));
        RED("var dim 2 unbiased", em_var(v, d2, 1, true, false), em_var(c, d2, 1, true, false));
        RED("var dims 0,2 biased", em_var(v, d02, 2, false, true), em_var(c, d02, 2, false, true));
        RED("std dim 0", em_std(v, d0, 1, true, false), em_std(c, d0, 1, true, false));
        RED("logsumexp dim 2", em_logsumexp(v, d2, 1, false), em_logsumexp(c, d2, 1, false));
        RED("logsumexp all", em_logsumexp(v, NULL, 0, false), em_logsumexp(c, NULL, 0, false));
        RED("softmax dim 2", em_softmax(v, 2), em_softmax(c, 2));
        RED("softmax dim 0", em_softmax(v, 0), em_softmax(c, 0));
        RED("log_softmax dim 1", em_log_softmax(v, 1), em_log_softmax(c, 1));
        RED("log_softmax dim 2 of transpose", em_log_softmax(em_transpose(v, 0, 2), 2),
            em_log_softmax(em_transpose(c, 0, 2), 2));
    }
#undef RED
}

static void test_reductions_special(void)
{
    /* NaN propagates through max/argmax; -inf rows in softmax */
    static const float sv[2][5] = {{1, NAN, 3, 3, -1}, {-INFINITY, 2, 5, 5, -INFINITY}};
    int64_t sh[2] = {2, 5};
    em_tensor *c = em_tensor_from_data(sv, EM_F32, 2, sh, g_cpu), *v = em_tensor_to(c, g_vk);
    int d1[1] = {1};
    cmp("max with NaN", em_max(v, d1, 1, false), em_max(c, d1, 1, false), 0, 0);
    cmp("argmax with NaN and ties", em_argmax(v, 1, false), em_argmax(c, 1, false), 0, 0);
    cmp("argmin with NaN and -inf", em_argmin(v, 1, false), em_argmin(c, 1, false), 0, 0);
    cmp("softmax with -inf", em_softmax(v, 1), em_softmax(c, 1), 1e-7, 1e-6);
    cmp("logsumexp with -inf", em_logsumexp(v, d1, 1, false), em_logsumexp(c, d1, 1, false), 1e-6, 1e-6);
    /* reduced sets bigger than one slice: partial results, then their combination */
    int64_t big[2] = {2, 700001};
    em_tensor *bc = rand_t(2, big, -1, 1, g_cpu), *bv = em_tensor_to(bc, g_vk);
    cmp("mean dim 1 of [2,700001]", em_mean(bv, d1, 1, false), em_mean(bc, d1, 1, false), 1e-6, 1e-5);
    cmp("max dim 1 of [2,700001]", em_max(bv, d1, 1, false), em_max(bc, d1, 1, false), 0, 0);
    cmp("argmin dim 1 of [2,700001]", em_argmin(bv, 1, false), em_argmin(bc, 1, false), 0, 0);
    cmp("var dim 1 of [2,700001]", em_var(bv, d1, 1, true, false), em_var(bc, d1, 1, true, false), 1e-6, 1e-5);
    cmp("logsumexp dim 1 of [2,700001]", em_logsumexp(bv, d1, 1, false),
        em_logsumexp(bc, d1, 1, false), 1e-6, 1e-6);
    cmp("softmax dim 1 of [2,700001]", em_softmax(bv, 1), em_softmax(bc, 1), 1e-11, 1e-5);
}

/* ---------------- index ops ------------------------------------------------ */

static void test_index_dtype(em_dtype dt, em_dtype idt)
{
    char what[96];
    const char *dn = em_dtype_name(dt), *in = em_dtype_name(idt);
    int64_t sh[3] = {5, 9, 4};
    em_tensor *c = make(dt, 3, sh, -4, 4), *v = em_tensor_to(c, g_vk);
    static const double iv[] = {3, 0, 8, 3, 3, 1, 7};
    int64_t ni = 7;
    em_tensor *ic = em_cast(em_tensor_from_data(iv, EM_F64, 1, &ni, g_cpu), idt), *ivk = em_tensor_to(ic, g_vk);
    snprintf(what, sizeof what, "index_select %s dim 1, %s index with duplicates", dn, in);
    cmp(what, em_index_select(v, 1, ivk), em_index_select(c, 1, ic), 0, 0);
    snprintf(what, sizeof what, "index_select %s dim 2 of transpose", dn);
    em_tensor *i2c = em_slice(ic, 0, 0, 7, 3), *i2v = em_slice(ivk, 0, 0, 7, 3); /* {3, 3, 7} */
    cmp(what, em_index_select(em_transpose(v, 1, 2), 2, i2v), em_index_select(em_transpose(c, 1, 2), 2, i2c), 0, 0);
    /* gather along dim 1 with a [5,6,4] index of values in [0, 9) */
    int64_t gsh[3] = {5, 6, 4};
    em_tensor *gc = make(idt, 3, gsh, 0, 9), *gv = em_tensor_to(gc, g_vk);
    snprintf(what, sizeof what, "gather %s dim 1, %s index", dn, in);
    cmp(what, em_gather(v, 1, gv), em_gather(c, 1, gc), 0, 0);
    /* scatter_add: src [5,6,4] into [5,9,4] along dim 1 (duplicates accumulate) */
    if (dt != EM_BOOL) {
        em_tensor *sc = make(dt, 3, gsh, -2, 2), *svk = em_tensor_to(sc, g_vk);
        double at, rt;
        tol(dt, 0, &at, &rt);
        snprintf(what, sizeof what, "scatter_add %s dim 1, %s index", dn, in);
        cmp(what, em_scatter_add(v, 1, gv, svk), em_scatter_add(c, 1, gc, sc), at * 8, rt * 8);
    }
    /* embedding: rows of a [9,4] table by a [2,3] index */
    int64_t esh[2] = {9, 4}, eish[2] = {2, 3};
    em_tensor *wc = make(dt, 2, esh, -4, 4), *wv = em_tensor_to(wc, g_vk);
    em_tensor *eic = make(idt, 2, eish, 0, 9), *eiv = em_tensor_to(eic, g_vk);
    snprintf(what, sizeof what, "embedding %s, %s index", dn, in);
    cmp(what, em_embedding(wv, eiv), em_embedding(wc, eic), 0, 0);
    /* cat of three along dim 1 */
    int64_t c1[3] = {5, 2, 4}, c2[3] = {5, 3, 4};
    em_tensor *xc = make(dt, 3, c1, -4, 4), *yc = make(dt, 3, c2, -4, 4);
    em_tensor *xs[3] = {em_tensor_to(xc, g_vk), v, em_tensor_to(yc, g_vk)};
    em_tensor *cs[3] = {xc, c, yc};
    snprintf(what, sizeof what, "cat %s dim 1", dn);
    cmp(what, em_cat((const em_tensor *const *)xs, 3, 1), em_cat((const em_tensor *const *)cs, 3, 1), 0, 0);
}

static void test_index_misc(void)
{
    int64_t n = 11;
    em_tensor *ic = make(EM_I64, 1, &n, 0, 6), *iv = em_tensor_to(ic, g_vk);
    cmp("one_hot i64 index, 6 classes", em_one_hot(iv, 6), em_one_hot(ic, 6), 0, 0);
    em_tensor *i32c = em_cast(ic, EM_I32), *i32v = em_tensor_to(i32c, g_vk);
    cmp("one_hot i32 index, 8 classes", em_one_hot(i32v, 8), em_one_hot(i32c, 8), 0, 0);
    /* an index out of range: EM_ERR_INDEX naming it, as on the CPU */
    static const int64_t bad[3] = {1, 99, 2};
    int64_t nb = 3, sh[2] = {4, 3};
    em_tensor *bi = em_tensor_from_data(bad, EM_I64, 1, &nb, g_vk);
    em_tensor *t = em_tensor_to(rand_t(2, sh, 0, 1, g_cpu), g_vk);
    em_tensor *r = em_index_select(t, 0, bi);
    EXPECT(r == NULL && em_last_status() == EM_ERR_INDEX && strstr(em_last_error(), "99"),
           "index_select with index 99 of 4: want EM_ERR_INDEX naming 99");
    printf("  index error message: %s\n", em_last_error());
    em_clear_error();
    static const int32_t neg[2] = {0, -1};
    int64_t nn = 2;
    em_tensor *ni = em_tensor_from_data(neg, EM_I32, 1, &nn, g_vk);
    r = em_one_hot(ni, 3);
    EXPECT(r == NULL && em_last_status() == EM_ERR_INDEX, "one_hot with index -1: want EM_ERR_INDEX");
    em_clear_error();
    /* scatter_add_ in place with a bad index leaves the destination unchanged */
    em_tensor *dst = em_zeros(EM_F32, 2, sh, g_vk);
    static const int64_t bad2[2][3] = {{0, 1, 2}, {3, 4, 0}};
    int64_t bsh[2] = {2, 3};
    em_tensor *bidx = em_tensor_from_data(bad2, EM_I64, 2, bsh, g_vk);
    em_tensor *src = em_ones(EM_F32, 2, bsh, g_vk);
    EXPECT(em_scatter_add_(dst, 0, bidx, src) == EM_ERR_INDEX, "scatter_add_ with index 4 of 4");
    em_clear_error();
    double total = -1;
    EXPECT(em_tensor_item(em_sum(dst, NULL, 0, false), &total) == EM_OK && total == 0,
           "scatter_add_ with a bad index wrote %g", total);
}

/* ---------------- generated values ----------------------------------------- */

static void test_generate(void)
{
    static const em_dtype fdts[4] = {EM_F32, EM_F16, EM_BF16, EM_F64};
    int64_t sh[2] = {37, 1001};
    char what[96];
    for (int i = 0; i < 4; i++) {
        em_generator *gc = em_generator_create(42), *gv = em_generator_create(42);
        for (int k = 0; k < 2; k++) { /* two draws: the offset advances */
            snprintf(what, sizeof what, "rand %s (draw %d) bit for bit", em_dtype_name(fdts[i]), k);
            cmp(what, em_rand(gv, fdts[i], 2, sh, g_vk), em_rand(gc, fdts[i], 2, sh, g_cpu), 0, 0);
        }
        snprintf(what, sizeof what, "randn %s%s", em_dtype_name(fdts[i]),
                 fdts[i] == EM_F64 ? " (double log/cos: a few ulps)" : " bit for bit");
        cmp(what, em_randn(gv, fdts[i], 2, sh, g_vk), em_randn(gc, fdts[i], 2, sh, g_cpu),
            0, fdts[i] == EM_F64 ? 1e-14 : 0);
        em_generator_destroy(gc);
        em_generator_destroy(gv);
    }
    static const em_dtype idts[3] = {EM_I64, EM_I32, EM_F32};
    for (int i = 0; i < 3; i++) {
        em_generator *gc = em_generator_create(7), *gv = em_generator_create(7);
        snprintf(what, sizeof what, "randint [-1000, 123457) %s bit for bit", em_dtype_name(idts[i]));
        cmp(what, em_randint(gv, -1000, 123457, idts[i], 2, sh, g_vk),
            em_randint(gc, -1000, 123457, idts[i], 2, sh, g_cpu), 0, 0);
        em_generator_destroy(gc);
        em_generator_destroy(gv);
    }
    static const em_dtype adts[4] = {EM_F32, EM_F64, EM_I64, EM_F16};
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "arange(0.5, 100, 0.7) %s", em_dtype_name(adts[i]));
        cmp(what, em_arange(0.5, 100, 0.7, adts[i], g_vk), em_arange(0.5, 100, 0.7, adts[i], g_cpu), 0, 0);
        snprintf(what, sizeof what, "linspace(-3, 7, 101) %s", em_dtype_name(adts[i]));
        cmp(what, em_linspace(-3, 7, 101, adts[i], g_vk), em_linspace(-3, 7, 101, adts[i], g_cpu), 0, 0);
    }
}

/* ---------------- linear algebra ------------------------------------------- */

static void test_linalg(void)
{
    static const em_dtype dts[3] = {EM_F32, EM_F16, EM_BF16};
    char what[96];
    for (int i = 0; i < 3; i++) {
        double at = dts[i] == EM_F32 ? 1e-5 : dts[i] == EM_F16 ? 2e-2 : 1e-1;
        double rt = dts[i] == EM_F32 ? 1e-5 : dts[i] == EM_F16 ? 4e-3 : 2e-2;
        int64_t xs[2] = {33, 20}, ws[2] = {17, 20}, bs[1] = {17}, cs[2] = {33, 17}, as[2] = {20, 17};
        em_tensor *xc = em_cast(rand_t(2, xs, -1, 1, g_cpu), dts[i]);
        em_tensor *wc = em_cast(rand_t(2, ws, -1, 1, g_cpu), dts[i]);
        em_tensor *bc = em_cast(rand_t(1, bs, -1, 1, g_cpu), dts[i]);
        em_tensor *cc = em_cast(rand_t(2, cs, -1, 1, g_cpu), dts[i]);
        em_tensor *ac = em_cast(rand_t(2, as, -1, 1, g_cpu), dts[i]);
        em_tensor *xv = em_tensor_to(xc, g_vk), *wv = em_tensor_to(wc, g_vk), *bv = em_tensor_to(bc, g_vk);
        em_tensor *cv = em_tensor_to(cc, g_vk), *av = em_tensor_to(ac, g_vk);
        snprintf(what, sizeof what, "linear %s [33,20]x[17,20]^T + b", em_dtype_name(dts[i]));
        cmp(what, em_linear(xv, wv, bv), em_linear(xc, wc, bc), at, rt);
        snprintf(what, sizeof what, "linear %s without bias", em_dtype_name(dts[i]));
        cmp(what, em_linear(xv, wv, NULL), em_linear(xc, wc, NULL), at, rt);
        snprintf(what, sizeof what, "addmm %s", em_dtype_name(dts[i]));
        cmp(what, em_addmm(cv, xv, av), em_addmm(cc, xc, ac), at, rt);
        snprintf(what, sizeof what, "matmul %s", em_dtype_name(dts[i]));
        cmp(what, em_matmul(xv, av), em_matmul(xc, ac), at, rt);
    }
}

/* ---------------- the scenario --------------------------------------------- */

void test_more(void)
{
    const char *nar = getenv("EMBER_VULKAN_NARROW");
    int narrow = nar && *nar && strcmp(nar, "0");
    static const em_dtype part_a[5] = {EM_F32, EM_F16, EM_BF16, EM_I32, EM_BOOL};
    static const em_dtype all[7] = {EM_F32, EM_F16, EM_BF16, EM_I32, EM_BOOL, EM_I64, EM_F64};

    /* part A: must run on Vulkan on every device */
    em_scope_begin();
    uint64_t fb0 = em_fallback_count(), rf0 = g_read_fallbacks;
    test_casts(part_a, 5);
    for (int i = 0; i < 5; i++) test_elementwise_dtype(part_a[i]);
    test_special_values();
    for (int i = 0; i < 3; i++) test_reductions_dtype(part_a[i]); /* float classes */
    test_reductions_special();
    for (int i = 0; i < 5; i++) {
        test_index_dtype(part_a[i], EM_I64);
        test_index_dtype(part_a[i], EM_I32);
    }
    test_index_misc();
    test_linalg();
    uint64_t fb_a = em_fallback_count() - fb0 - (g_read_fallbacks - rf0);
    em_scope_end();
    printf("part A (f32/f16/bf16/i32/bool, index ops): CPU fallbacks %llu\n", (unsigned long long)fb_a);
    /* (without the wide shaders, integer scalars promote bool/i32 results to i64,
     * which then runs on the CPU: only the wide device must show zero here) */
    if (!narrow) EXPECT(fb_a == 0, "part A: %llu ops fell back to the CPU", (unsigned long long)fb_a);

    /* part B: i64/f64 arithmetic, integer reductions, random ops (wide shaders) */
    em_scope_begin();
    fb0 = em_fallback_count();
    rf0 = g_read_fallbacks;
    g_expected_fb = 0;
    test_casts(all, 7);
    test_elementwise_dtype(EM_I64);
    test_elementwise_dtype(EM_F64);
    test_reductions_dtype(EM_I32);
    test_reductions_dtype(EM_BOOL);
    test_reductions_dtype(EM_I64);
    test_reductions_dtype(EM_F64);
    test_index_dtype(EM_I64, EM_I64);
    test_index_dtype(EM_F64, EM_I32);
    test_generate();
    uint64_t fb_b = em_fallback_count() - fb0 - (g_read_fallbacks - rf0) - g_expected_fb;
    em_scope_end();
    printf("part B (i64/f64, integer reductions, random): CPU fallbacks %llu%s, plus %llu "
           "f64 transcendental ops (no double exp/log/trig in GLSL)\n", (unsigned long long)fb_b,
           narrow ? " (EMBER_VULKAN_NARROW=1: expected)" : "", (unsigned long long)g_expected_fb);
    if (!narrow)
        EXPECT(fb_b == 0, "part B: %llu ops fell back to the CPU", (unsigned long long)fb_b);
    else
        EXPECT(fb_b > 0, "part B: nothing fell back although the i64/f64 kernels are off");
    EXPECT(em_device_synchronize(g_vk) == EM_OK, "synchronize (validation messages pending?)");
}
