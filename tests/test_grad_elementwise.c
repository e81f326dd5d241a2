/*
 * test_grad_elementwise.c — the backward formulas of the elementwise ops
 * (core/grad_elementwise.c) in float64, against central differences that
 * gradcheck.h computes from forward passes only:
 *   - binary add/sub/mul/div/pow/maximum/minimum: same shapes, broadcasting
 *     both ways ([3,1,4] with [2,4], a 0-d tensor with [2,3]), a transposed
 *     and a step-2 sliced operand; ties of maximum/minimum share the
 *     gradient (exact values);
 *   - every scalar form, pow_scalar with exponents 2, 0.5, -1.5, 3;
 *   - every unary op (gelu both forms, softplus on both sides of its
 *     threshold), away from non-differentiable points;
 *   - where (broadcast cond, a and b both requiring grad), clamp (closed
 *     and open bounds), masked_fill;
 *   - an f32 input mixed with an f64 one gets an f32 gradient (exact);
 *   - second derivatives (gradgradcheck) of the smooth ops and a composite;
 *   - engine behaviours with exact values: accumulation with retain_graph,
 *     zero_grad, a logistic-regression step, a second backward through a
 *     freed graph, an in-place change to a saved tensor, anomaly mode,
 *     grad mode off, detach, requires_grad_ on integers, non-scalar outputs,
 *     unused inputs of em_autograd_grad; regressions of the engine (a
 *     create_graph .grad aliasing grad_output, em_autograd_grad running the
 *     grad_fn of a requested non-leaf, a node of more than 8 inputs that
 *     does not run);
 *   - relu's backward (EM_OP_RELU_BACKWARD where the backend has it) against
 *     the composed g * (x > 0) with exact values, in every float dtype, with
 *     a broadcast (stride-0) gradient, zeros and NaN inputs (gradient 0);
 *     ctest also runs this file with EMBER_FUSED=0.
 * Not for reductions, views or linear algebra (their own grad tests).
 */
#include "gradcheck.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* A float64 leaf requiring grad holding vals. */
static em_tensor *leaf_from(const double *vals, int ndim, const int64_t *shape)
{
    em_tensor *t = em_tensor_from_data(vals, EM_F64, ndim, shape, tu_dev);
    if (t) em_requires_grad_(t, true);
    return t;
}

/* A leaf uniform in [lo, hi] with every element at least `gap` away from
 * each of the nb points in avoid[]. */
static em_tensor *leaf_avoiding(int ndim, const int64_t *shape, double lo, double hi,
                                const double *avoid, int nb, double gap)
{
    int64_t n = tu_numel(ndim, shape);
    double v[64];
    for (int64_t i = 0; i < n; i++) {
        bool ok;
        do {
            v[i] = tu_uniform(lo, hi);
            ok = true;
            for (int k = 0; k < nb; k++) ok = ok && fabs(v[i] - avoid[k]) >= gap;
        } while (!ok);
    }
    return leaf_from(v, ndim, shape);
}

/* Values on two interleaved grids, so that any a - b is at least 0.03 away
 * from 0: a = 0.1 k + [0, 0.02), b = 0.1 k + 0.05 + [0, 0.02). */
static em_tensor *leaf_grid(int ndim, const int64_t *shape, int side)
{
    int64_t n = tu_numel(ndim, shape);
    double v[64];
    for (int64_t i = 0; i < n; i++)
        v[i] = 0.1 * (double)tu_randint(-10, 10) + (side ? 0.05 : 0.0) + tu_uniform(0, 0.02);
    return leaf_from(v, ndim, shape);
}

/* Reads t (which must be non-NULL, of dtype want_dt) and compares it with
 * want exactly. */
static void check_exact(const char *label, const em_tensor *t, em_dtype want_dt, const double *want,
                        int64_t n)
{
    CHECKF(t != NULL, "%s: tensor is NULL", label);
    if (!t) {
        em_clear_error();
        return;
    }
    CHECKF(em_tensor_dtype(t) == want_dt, "%s: dtype %s, want %s", label,
           tu_dt(em_tensor_dtype(t)), tu_dt(want_dt));
    CHECKF(em_tensor_numel(t) == n, "%s: numel %lld, want %lld", label,
           (long long)em_tensor_numel(t), (long long)n);
    if (em_tensor_numel(t) != n) return;
    double got[64];
    CHECK_OK(em_tensor_read_f64(t, got, (size_t)n));
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!(got[i] == want[i])) bad = i;
    if (bad >= 0)
        tu_report_fail(__FILE__, __LINE__, "%s: element %lld is %.17g, want %.17g", label,
                       (long long)bad, got[bad], want[bad]);
    else
        tu_passed++;
    printf("%s: %s\n", label, bad < 0 ? "exact" : "WRONG");
}

/* ------------------------------------------------------------------------ */
/* Binary ops                                                                */
/* ------------------------------------------------------------------------ */

typedef em_tensor *(*bin_fn)(const em_tensor *, const em_tensor *);

enum { B_PLAIN, B_TRANSPOSE_A, B_SLICE_B };

typedef struct bin_ctx {
    bin_fn fn;
    int mode;
} bin_ctx;

static em_tensor *f_binary(em_tensor *const *in, void *vctx)
{
    const bin_ctx *c = vctx;
    switch (c->mode) {
    case B_TRANSPOSE_A: return c->fn(em_transpose(in[0], 0, 1), in[1]);
    case B_SLICE_B: return c->fn(in[0], em_slice(in[1], 0, 0, INT64_MAX, 2));
    default: return c->fn(in[0], in[1]);
    }
}

typedef struct bin_case {
    const char *name;
    bin_fn fn;
    int domain; /* 0 [-2,2] both; 1 b in [0.5,2] (div); 2 pow; 3 no ties */
} bin_case;

static const bin_case bin_cases[] = {
    {"add", em_add, 0}, {"sub", em_sub, 0}, {"mul", em_mul, 0}, {"div", em_div, 1},
    {"pow", em_pow, 2}, {"maximum", em_maximum, 3}, {"minimum", em_minimum, 3},
};

static em_tensor *bin_leaf(const bin_case *bc, int side, int ndim, const int64_t *shape)
{
    switch (bc->domain) {
    case 1: return side ? gc_leaf(ndim, shape, 0.5, 2.0) : gc_leaf(ndim, shape, -2, 2);
    case 2: return side ? gc_leaf(ndim, shape, -1.5, 1.5) : gc_leaf(ndim, shape, 0.5, 2.0);
    case 3: return leaf_grid(ndim, shape, side);
    default: return gc_leaf(ndim, shape, -2, 2);
    }
}

static void test_binary(void)
{
    static const struct {
        const char *what;
        int na;
        int64_t a[3];
        int nb;
        int64_t b[3];
        int mode;
    } shapes[] = {
        {"[3,4]x[3,4]", 2, {3, 4}, 2, {3, 4}, B_PLAIN},
        {"[3,1,4]x[2,4]", 3, {3, 1, 4}, 2, {2, 4}, B_PLAIN},
        {"[2,4]x[3,1,4]", 2, {2, 4}, 3, {3, 1, 4}, B_PLAIN},
        {"[]x[2,3]", 0, {0}, 2, {2, 3}, B_PLAIN},
        {"[2,3]x[]", 2, {2, 3}, 0, {0}, B_PLAIN},
        {"transpose([4,3])x[3,4]", 2, {4, 3}, 2, {3, 4}, B_TRANSPOSE_A},
        {"[3,4]x[6,4][::2]", 2, {3, 4}, 2, {6, 4}, B_SLICE_B},
    };
    for (size_t o = 0; o < sizeof bin_cases / sizeof bin_cases[0]; o++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            em_scope_begin();
            em_tensor *in[2] = {bin_leaf(&bin_cases[o], 0, shapes[s].na, shapes[s].a),
                                bin_leaf(&bin_cases[o], 1, shapes[s].nb, shapes[s].b)};
            bin_ctx c = {bin_cases[o].fn, shapes[s].mode};
            char label[96];
            snprintf(label, sizeof label, "%s %s", bin_cases[o].name, shapes[s].what);
            gradcheck(label, f_binary, &c, 2, in);
            em_scope_end();
        }
}

/* maximum/minimum ties: each side gets half of the gradient. */
static void test_ties(void)
{
    em_scope_begin();
    const double v[4] = {-1.5, 0, 0.25, 3};
    const double w[4] = {1, -2, 0.5, 4};
    int64_t sh[1] = {4};
    em_tensor *W = em_tensor_from_data(w, EM_F64, 1, sh, tu_dev);
    const double half[4] = {0.5, -1, 0.25, 2};
    for (int mx = 0; mx < 2; mx++) {
        bin_fn fn = mx ? em_maximum : em_minimum;
        const char *nm = mx ? "maximum" : "minimum";
        char label[96];
        /* two leaves with equal values */
        em_tensor *a = leaf_from(v, 1, sh), *b = leaf_from(v, 1, sh);
        em_tensor *g[2] = {0};
        CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){fn(a, b)},
                                  (const em_tensor *const[]){W}, 2,
                                  (const em_tensor *const[]){a, b}, g, false, false, false));
        snprintf(label, sizeof label, "%s(a, b) ties: grad a", nm);
        check_exact(label, g[0], EM_F64, half, 4);
        snprintf(label, sizeof label, "%s(a, b) ties: grad b", nm);
        check_exact(label, g[1], EM_F64, half, 4);
        /* the same tensor on both sides: the halves add up to the whole */
        em_tensor *x = leaf_from(v, 1, sh);
        em_tensor *gx = NULL;
        CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){fn(x, x)},
                                  (const em_tensor *const[]){W}, 1,
                                  (const em_tensor *const[]){x}, &gx, false, false, false));
        snprintf(label, sizeof label, "%s(x, x): grad x", nm);
        check_exact(label, gx, EM_F64, w, 4);
        /* and against a scalar equal to some elements: 0.25 ties */
        em_tensor *gs = NULL;
        em_tensor *ys = mx ? em_maximum_scalar(x, 0.25) : em_minimum_scalar(x, 0.25);
        CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){ys}, (const em_tensor *const[]){W},
                                  1, (const em_tensor *const[]){x}, &gs, false, false, false));
        double ws[4];
        for (int i = 0; i < 4; i++) {
            bool wins = mx ? v[i] > 0.25 : v[i] < 0.25;
            ws[i] = v[i] == 0.25 ? 0.5 * w[i] : wins ? w[i] : 0.0;
        }
        snprintf(label, sizeof label, "%s_scalar(x, 0.25) with a tie: grad x", nm);
        check_exact(label, gs, EM_F64, ws, 4);
    }
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Scalar forms                                                              */
/* ------------------------------------------------------------------------ */

typedef em_tensor *(*sc_fn)(const em_tensor *, double);

typedef struct sc_ctx {
    sc_fn fn;
    double s;
} sc_ctx;

static em_tensor *f_scalar(em_tensor *const *in, void *vctx)
{
    const sc_ctx *c = vctx;
    return c->fn(in[0], c->s);
}

static void test_scalar_forms(void)
{
    static const struct {
        const char *name;
        sc_fn fn;
        double s;
        double lo, hi;
    } cases[] = {
        {"add_scalar", em_add_scalar, 1.75, -2, 2},
        {"sub_scalar", em_sub_scalar, -0.5, -2, 2},
        {"mul_scalar", em_mul_scalar, -2.5, -2, 2},
        {"div_scalar", em_div_scalar, 0.75, -2, 2},
        {"maximum_scalar", em_maximum_scalar, 0.3, -2, 2},
        {"minimum_scalar", em_minimum_scalar, -0.4, -2, 2},
        {"pow_scalar 2", em_pow_scalar, 2, 0.5, 2},
        {"pow_scalar 0.5", em_pow_scalar, 0.5, 0.5, 2},
        {"pow_scalar -1.5", em_pow_scalar, -1.5, 0.5, 2},
        {"pow_scalar 3", em_pow_scalar, 3, 0.5, 2},
    };
    int64_t sh[2] = {3, 4};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        em_scope_begin();
        em_tensor *x = leaf_avoiding(2, sh, cases[i].lo, cases[i].hi, &cases[i].s, 1, 0.01);
        sc_ctx c = {cases[i].fn, cases[i].s};
        gradcheck(cases[i].name, f_scalar, &c, 1, &x);
        em_scope_end();
    }
}

/* ------------------------------------------------------------------------ */
/* Unary ops                                                                 */
/* ------------------------------------------------------------------------ */

typedef em_tensor *(*un_fn)(const em_tensor *);

static em_tensor *u_gelu(const em_tensor *t) { return em_gelu(t, false); }
static em_tensor *u_gelu_tanh(const em_tensor *t) { return em_gelu(t, true); }
static em_tensor *u_softplus(const em_tensor *t) { return em_softplus(t, 1, 20); }
static em_tensor *u_softplus2(const em_tensor *t) { return em_softplus(t, 2, 1); }

static em_tensor *f_unary(em_tensor *const *in, void *vctx)
{
    un_fn fn = *(const un_fn *)vctx;
    return fn(in[0]);
}

typedef struct un_case {
    const char *name;
    un_fn fn;
    double lo, hi;
    double avoid[2]; /* points to stay 0.05 away from (NAN: none) */
    bool second;     /* also gradgradcheck */
} un_case;

static const un_case un_cases[] = {
    {"neg", em_neg, -2, 2, {NAN, NAN}, false},
    {"abs", em_abs, -2, 2, {0, NAN}, false}, /* |x| > 0.1: gap 0.1 below */
    {"exp", em_exp, -2, 2, {NAN, NAN}, true},
    {"log", em_log, 0.5, 2, {NAN, NAN}, true},
    {"sqrt", em_sqrt, 0.5, 2, {NAN, NAN}, false},
    {"rsqrt", em_rsqrt, 0.5, 2, {NAN, NAN}, false},
    {"sin", em_sin, -3, 3, {NAN, NAN}, true},
    {"cos", em_cos, -3, 3, {NAN, NAN}, false},
    {"tanh", em_tanh, -2, 2, {NAN, NAN}, true},
    {"sigmoid", em_sigmoid, -4, 4, {NAN, NAN}, true},
    {"relu", em_relu, -2, 2, {0, NAN}, false},
    {"gelu", u_gelu, -3, 3, {NAN, NAN}, true},
    {"gelu_tanh", u_gelu_tanh, -3, 3, {NAN, NAN}, true},
    {"silu", em_silu, -4, 4, {NAN, NAN}, true},
    {"softplus(1,20)", u_softplus, -4, 24, {20, NAN}, true},
    {"softplus(2,1)", u_softplus2, -2, 2, {0.5, NAN}, true},
    {"square", em_square, -2, 2, {NAN, NAN}, true},
    {"reciprocal", em_reciprocal, 0.5, 2, {NAN, NAN}, true},
    {"erf", em_erf, -2, 2, {NAN, NAN}, false},
};

static em_tensor *un_leaf(const un_case *u, int ndim, const int64_t *shape)
{
    double avoid[2];
    int nb = 0;
    for (int k = 0; k < 2; k++)
        if (!isnan(u->avoid[k])) avoid[nb++] = u->avoid[k];
    /* abs and relu: |x| > 0.1 */
    double gap = (u->fn == em_abs || u->fn == em_relu) ? 0.1 : 0.05;
    return leaf_avoiding(ndim, shape, u->lo, u->hi, avoid, nb, gap);
}

static void test_unary(void)
{
    int64_t sh[2] = {3, 4};
    for (size_t i = 0; i < sizeof un_cases / sizeof un_cases[0]; i++) {
        em_scope_begin();
        em_tensor *x = un_leaf(&un_cases[i], 2, sh);
        gradcheck(un_cases[i].name, f_unary, (void *)&un_cases[i].fn, 1, &x);
        em_scope_end();
    }
}

/* unary ops on a step-2 slice (the formula sees a non-contiguous x) */
typedef struct un_slice_ctx {
    un_fn fn;
} un_slice_ctx;

static em_tensor *f_unary_sliced(em_tensor *const *in, void *vctx)
{
    const un_slice_ctx *c = vctx;
    return c->fn(em_slice(in[0], 0, 1, INT64_MAX, 2));
}

static void test_unary_sliced(void)
{
    for (size_t i = 0; i < sizeof un_cases / sizeof un_cases[0]; i++) {
        em_scope_begin();
        em_tensor *x = un_leaf(&un_cases[i], 2, (const int64_t[]){5, 4});
        un_slice_ctx c = {un_cases[i].fn};
        char label[96];
        snprintf(label, sizeof label, "%s [5,4][1::2]", un_cases[i].name);
        gradcheck(label, f_unary_sliced, &c, 1, &x);
        em_scope_end();
    }
}

/* ------------------------------------------------------------------------ */
/* where, clamp, masked_fill                                                 */
/* ------------------------------------------------------------------------ */

static em_tensor *f_where(em_tensor *const *in, void *vctx)
{
    return em_where((const em_tensor *)vctx, in[0], in[1]);
}

typedef struct clamp_ctx {
    double lo, hi;
} clamp_ctx;

static em_tensor *f_clamp(em_tensor *const *in, void *vctx)
{
    const clamp_ctx *c = vctx;
    return em_clamp(in[0], c->lo, c->hi);
}

static em_tensor *f_masked_fill(em_tensor *const *in, void *vctx)
{
    return em_masked_fill(in[0], (const em_tensor *)vctx, 7.5);
}

static em_tensor *random_bools(int ndim, const int64_t *shape)
{
    double v[64];
    int64_t n = tu_numel(ndim, shape);
    tu_fill(v, n, EM_BOOL, 0, 1);
    return tu_upload(v, EM_BOOL, ndim, shape);
}

static void test_where_clamp_masked_fill(void)
{
    em_scope_begin();
    /* where: cond [3,1], a [3,4], b [4] */
    em_tensor *cond = random_bools(2, (const int64_t[]){3, 1});
    em_tensor *wab[2] = {gc_leaf(2, (const int64_t[]){3, 4}, -2, 2),
                         gc_leaf(1, (const int64_t[]){4}, -2, 2)};
    gradcheck("where [3,1]?[3,4]:[4]", f_where, cond, 2, wab);
    /* cond [3,4] with b 0-d */
    em_tensor *cond2 = random_bools(2, (const int64_t[]){3, 4});
    em_tensor *wab2[2] = {gc_leaf(1, (const int64_t[]){4}, -2, 2), gc_leaf(0, NULL, -2, 2)};
    gradcheck("where [3,4]?[4]:[]", f_where, cond2, 2, wab2);

    /* clamp */
    static const clamp_ctx bounds[] = {{-0.5, 0.8}, {-INFINITY, 0.8}, {-0.5, INFINITY}};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        double avoid[2] = {bounds[i].lo, bounds[i].hi};
        em_tensor *x = leaf_avoiding(2, (const int64_t[]){3, 4}, -2, 2, avoid, 2, 1e-3);
        char label[64];
        snprintf(label, sizeof label, "clamp [%g, %g]", bounds[i].lo, bounds[i].hi);
        gradcheck(label, f_clamp, (void *)&bounds[i], 1, &x);
    }

    /* masked_fill: a mask of the same shape and a broadcast one */
    em_tensor *m1 = random_bools(2, (const int64_t[]){3, 4});
    em_tensor *m2 = random_bools(1, (const int64_t[]){4});
    em_tensor *x = gc_leaf(2, (const int64_t[]){3, 4}, -2, 2);
    gradcheck("masked_fill [3,4] mask [3,4]", f_masked_fill, m1, 1, &x);
    gradcheck("masked_fill [3,4] mask [4]", f_masked_fill, m2, 1, &x);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Mixed dtypes                                                              */
/* ------------------------------------------------------------------------ */

static void test_mixed_dtypes(void)
{
    em_scope_begin();
    const float av[6] = {1.5f, -2.0f, 0.25f, 3.0f, -0.5f, 4.0f};
    const double bv[6] = {0.5, 2.0, -1.5, 0.125, 8.0, -3.0};
    const double wv[6] = {1.0, -0.5, 2.0, 0.75, -4.0, 0.25};
    int64_t sh[2] = {2, 3};
    em_tensor *a = em_tensor_from_data(av, EM_F32, 2, sh, tu_dev);
    em_tensor *b = em_tensor_from_data(bv, EM_F64, 2, sh, tu_dev);
    em_tensor *W = em_tensor_from_data(wv, EM_F64, 2, sh, tu_dev);
    CHECK_OK(em_requires_grad_(a, true));
    CHECK_OK(em_requires_grad_(b, true));
    /* y = a + b (f64): dy/da = W, in f32 */
    em_tensor *y = em_add(a, b);
    CHECK(y && em_tensor_dtype(y) == EM_F64);
    CHECK_OK(em_backward(y, W, false, false));
    check_exact("f32 + f64: grad of the f32 input", em_grad(a), EM_F32, wv, 6);
    check_exact("f32 + f64: grad of the f64 input", em_grad(b), EM_F64, wv, 6);
    /* z = a * b + a: dz/da = W * b + W (exact in f32 for these values) */
    em_tensor *z = em_add(em_mul(a, b), a);
    em_tensor *g[2] = {0};
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){z}, (const em_tensor *const[]){W}, 2,
                              (const em_tensor *const[]){a, b}, g, false, false, false));
    double wa[6], wb[6];
    for (int i = 0; i < 6; i++) {
        wa[i] = (double)(float)(wv[i] * bv[i] + wv[i]);
        wb[i] = wv[i] * (double)av[i];
    }
    check_exact("f32 * f64 + f32: grad of the f32 input", g[0], EM_F32, wa, 6);
    check_exact("f32 * f64 + f32: grad of the f64 input", g[1], EM_F64, wb, 6);
    /* a 0-d f32 input broadcast against the f64 tensor: summed, then f32 */
    const float sv = 2.0f;
    em_tensor *s = em_tensor_from_data(&sv, EM_F32, 0, NULL, tu_dev);
    CHECK_OK(em_requires_grad_(s, true));
    em_tensor *gs = NULL;
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){em_mul(s, b)},
                              (const em_tensor *const[]){W}, 1, (const em_tensor *const[]){s},
                              &gs, false, false, false));
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += wv[i] * bv[i];
    check_exact("f32[] * f64[2,3]: grad of the 0-d f32 input", gs, EM_F32, &sum, 1);
    CHECK(gs && em_tensor_ndim(gs) == 0);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Second derivatives                                                        */
/* ------------------------------------------------------------------------ */

static em_tensor *f_composite(em_tensor *const *in, void *ctx)
{
    (void)ctx; /* x*y + sin(x)/y */
    return em_add(em_mul(in[0], in[1]), em_div(em_sin(in[0]), in[1]));
}

static void test_second_order(void)
{
    int64_t sh[2] = {2, 3};
    for (size_t o = 0; o < sizeof bin_cases / sizeof bin_cases[0]; o++) {
        const bin_case *bc = &bin_cases[o];
        if (bc->fn != em_mul && bc->fn != em_div && bc->fn != em_pow) continue;
        em_scope_begin();
        em_tensor *in[2] = {bin_leaf(bc, 0, 2, sh), bin_leaf(bc, 1, 2, sh)};
        bin_ctx c = {bc->fn, B_PLAIN};
        gradgradcheck(bc->name, f_binary, &c, 2, in);
        em_scope_end();
    }
    for (size_t i = 0; i < sizeof un_cases / sizeof un_cases[0]; i++) {
        if (!un_cases[i].second) continue;
        em_scope_begin();
        em_tensor *x = un_leaf(&un_cases[i], 2, sh);
        gradgradcheck(un_cases[i].name, f_unary, (void *)&un_cases[i].fn, 1, &x);
        em_scope_end();
    }
    em_scope_begin();
    em_tensor *xy[2] = {gc_leaf(2, sh, -2, 2), gc_leaf(2, sh, 0.5, 2)};
    gradgradcheck("x*y + sin(x)/y", f_composite, NULL, 2, xy);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Engine behaviours                                                         */
/* ------------------------------------------------------------------------ */

static void test_accumulate_and_zero_grad(void)
{
    em_scope_begin();
    const double xv[3] = {1, 2, 3}, ones[3] = {1, 1, 1};
    em_tensor *x = leaf_from(xv, 1, (const int64_t[]){3});
    em_tensor *go = em_tensor_from_data(ones, EM_F64, 1, (const int64_t[]){3}, tu_dev);
    em_tensor *y = em_mul(x, x); /* dy/dx = 2x */
    CHECK(em_grad(x) == NULL);
    CHECK_OK(em_backward(y, go, true, false));
    const double g1[3] = {2, 4, 6}, g2[3] = {4, 8, 12}, z[3] = {0, 0, 0};
    check_exact("x*x, one backward: grad", em_grad(x), EM_F64, g1, 3);
    em_tensor *first = em_grad(x);
    CHECK_OK(em_backward(y, go, true, false));
    check_exact("x*x, two backwards with retain_graph: grad accumulates", em_grad(x), EM_F64, g2,
                3);
    CHECK_OK(em_zero_grad(x));
    check_exact("after em_zero_grad", em_grad(x), EM_F64, z, 3);
    CHECK(em_grad(x) == first); /* zeroed in place, memory kept */
    CHECK_OK(em_backward(y, go, false, false));
    check_exact("backward after em_zero_grad", em_grad(x), EM_F64, g1, 3);
    /* the graph is freed now: a second backward fails and says why */
    CHECK_STATUS(em_backward(y, go, false, false), EM_ERR_STATE);
    em_backward(y, go, false, false);
    CHECKF(strstr(em_last_error(), "retain_graph") != NULL,
           "the message of a second backward should mention retain_graph: %s", em_last_error());
    em_clear_error();
    /* the grad stays what the first backward made */
    check_exact("grad after the failed second backward", em_grad(x), EM_F64, g1, 3);
    CHECK_OK(em_set_grad(x, NULL));
    CHECK(em_grad(x) == NULL);
    em_scope_end();
}

/* y = 1, x1 = 1.1, w1 = 2.2, b = 0: z = x1 w1 + b, a = sigmoid(z),
 * loss = -(y log a + (1 - y) log(1 - a)). */
static em_tensor *logistic_loss(em_tensor *x1, em_tensor *w1, em_tensor *b, double y)
{
    em_tensor *z = em_add(em_mul(x1, w1), b);
    em_tensor *a = em_sigmoid(z);
    em_tensor *l1 = em_mul_scalar(em_log(a), y);
    em_tensor *l0 = em_mul_scalar(em_log(em_add_scalar(em_neg(a), 1.0)), 1.0 - y);
    return em_neg(em_add(l1, l0));
}

static void test_logistic_regression(void)
{
    em_scope_begin();
    const double y = 1.0, x1v = 1.1, w1v = 2.2, bv = 0.0;
    em_tensor *x1 = em_tensor_from_data(&x1v, EM_F64, 0, NULL, tu_dev);
    em_tensor *w1 = leaf_from(&w1v, 0, NULL);
    em_tensor *b = leaf_from(&bv, 0, NULL);
    double a = 1.0 / (1.0 + exp(-(x1v * w1v + bv)));
    double dz = a - y, want_w1 = dz * x1v, want_b = dz;
    em_tensor *loss = logistic_loss(x1, w1, b, y);
    CHECK(loss && em_requires_grad(loss) && !em_is_leaf(loss));
    CHECK(em_grad_fn_name(loss) && strcmp(em_grad_fn_name(loss), "neg") == 0);
    double lv = NAN;
    CHECK_OK(em_tensor_item(loss, &lv));
    CHECKF(fabs(lv + log(a)) < 1e-12, "logistic loss %.17g, want %.17g", lv, -log(a));
    CHECK_OK(em_backward(loss, NULL, false, false));
    double gw = NAN, gb = NAN;
    CHECK_OK(em_tensor_item(em_grad(w1), &gw));
    CHECK_OK(em_tensor_item(em_grad(b), &gb));
    printf("logistic regression (em_backward): dloss/dw1 = %.4f (want %.4f), dloss/db = %.4f "
           "(want %.4f)\n", gw, want_w1, gb, want_b);
    CHECKF(fabs(gw - want_w1) < 1e-12 && fabs(gb - want_b) < 1e-12,
           "logistic regression: dw1 %.17g (want %.17g), db %.17g (want %.17g)", gw, want_w1, gb,
           want_b);
    CHECKF(round(gw * 1e4) == -898 && round(gb * 1e4) == -817,
           "logistic regression to 4 decimals: %.4f %.4f, want -0.0898 -0.0817", gw, gb);
    CHECK(em_grad(x1) == NULL); /* x1 does not require grad */
    /* em_autograd_grad on a fresh graph: same values, .grad untouched */
    em_tensor *loss2 = logistic_loss(x1, w1, b, y);
    em_tensor *g[2] = {0};
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){loss2}, NULL, 2,
                              (const em_tensor *const[]){w1, b}, g, false, false, false));
    double fw = NAN, fb = NAN;
    CHECK_OK(em_tensor_item(g[0], &fw));
    CHECK_OK(em_tensor_item(g[1], &fb));
    printf("logistic regression (em_autograd_grad): dloss/dw1 = %.4f, dloss/db = %.4f\n", fw, fb);
    CHECKF(fabs(fw - want_w1) < 1e-12 && fabs(fb - want_b) < 1e-12,
           "logistic regression (autograd_grad): dw1 %.17g, db %.17g", fw, fb);
    double gw2 = NAN;
    CHECK_OK(em_tensor_item(em_grad(w1), &gw2));
    CHECK(gw2 == gw);
    em_scope_end();
}

static void test_inplace_on_saved(void)
{
    em_scope_begin();
    const double av[3] = {1, 2, 3}, bv[3] = {4, 5, 6}, ones[3] = {1, 1, 1};
    em_tensor *a = leaf_from(av, 1, (const int64_t[]){3});
    em_tensor *b = leaf_from(bv, 1, (const int64_t[]){3});
    em_tensor *go = em_tensor_from_data(ones, EM_F64, 1, (const int64_t[]){3}, tu_dev);
    em_tensor *c = em_mul(a, b); /* saves a and b */
    /* refused with grad mode on */
    CHECK_STATUS(em_mul_scalar_(a, 2.0), EM_ERR_STATE);
    bool prev = em_set_grad_enabled(false);
    CHECK_OK(em_mul_scalar_(a, 2.0));
    em_set_grad_enabled(prev);
    CHECK_STATUS(em_backward(c, go, false, false), EM_ERR_STATE);
    em_backward(c, go, false, false);
    CHECKF(strstr(em_last_error(), "'mul'") != NULL,
           "an in-place change to a saved tensor should name 'mul': %s", em_last_error());
    printf("in-place change of a saved input: %s\n", em_last_error());
    em_clear_error();
    /* an in-place change to a tensor the formula does not read is fine:
     * add saves nothing */
    em_tensor *d = em_add(a, b);
    prev = em_set_grad_enabled(false);
    CHECK_OK(em_mul_scalar_(a, 2.0));
    em_set_grad_enabled(prev);
    CHECK_OK(em_backward(d, go, false, false));
    /* an output saved by exp, changed in place */
    em_tensor *x = leaf_from(av, 1, (const int64_t[]){3});
    em_tensor *e = em_exp(x);
    prev = em_set_grad_enabled(false);
    CHECK_OK(em_add_scalar_(e, 1.0));
    em_set_grad_enabled(prev);
    CHECK_STATUS(em_backward(e, go, false, false), EM_ERR_STATE);
    em_scope_end();
}

static void test_anomaly(void)
{
    em_scope_begin();
    const double xv[2] = {0.0, 4.0}, ones[2] = {1, 1};
    em_tensor *go = em_tensor_from_data(ones, EM_F64, 1, (const int64_t[]){2}, tu_dev);
    em_tensor *x = leaf_from(xv, 1, (const int64_t[]){2});
    em_set_anomaly_enabled(true);
    CHECK(em_is_anomaly_enabled());
    em_tensor *y = em_sqrt(x); /* d/dx at 0 is 1 / (2 sqrt 0) = inf */
    em_clear_error();
    em_status st = em_backward(y, go, false, false);
    CHECKF(st == EM_ERR_STATE, "anomaly mode: backward returned %s", em_status_str(st));
    CHECKF(strstr(em_last_error(), "sqrt") != NULL, "anomaly message should name sqrt: %s",
           em_last_error());
    printf("anomaly mode: %s\n", em_last_error());
    em_clear_error();
    em_set_anomaly_enabled(false);
    CHECK(!em_is_anomaly_enabled());
    CHECK_OK(em_set_grad(x, NULL));
    em_tensor *y2 = em_sqrt(x);
    CHECK_OK(em_backward(y2, go, false, false));
    const double want[2] = {INFINITY, 0.25};
    check_exact("sqrt at 0 without anomaly mode: grad", em_grad(x), EM_F64, want, 2);
    em_scope_end();
}

static void test_modes_and_errors(void)
{
    em_scope_begin();
    const double av[6] = {1, 2, 3, 4, 5, 6};
    int64_t sh[2] = {2, 3};
    em_tensor *a = leaf_from(av, 2, sh);
    em_tensor *b = leaf_from(av, 2, sh);
    CHECK(em_requires_grad(a) && em_is_leaf(a) && em_grad_fn_name(a) == NULL);
    /* grad mode off: nothing recorded */
    bool prev = em_set_grad_enabled(false);
    CHECK(prev == true && !em_is_grad_enabled());
    em_tensor *p = em_mul(a, b);
    CHECK(p && !em_requires_grad(p) && em_is_leaf(p) && em_grad_fn_name(p) == NULL);
    em_tensor *q = em_exp(a);
    CHECK(q && !em_requires_grad(q));
    em_set_grad_enabled(prev);
    CHECK(em_is_grad_enabled());
    em_tensor *r = em_mul(a, b);
    CHECK(r && em_requires_grad(r) && !em_is_leaf(r));
    CHECK(em_grad_fn_name(r) && strcmp(em_grad_fn_name(r), "mul") == 0);
    /* detach: same data, no history */
    em_tensor *dr = em_detach(r);
    CHECK(dr && !em_requires_grad(dr) && em_is_leaf(dr) && em_tensor_shares_storage(dr, r));
    em_tensor *dd = em_mul(dr, dr);
    CHECK(dd && !em_requires_grad(dd));
    em_tensor *da = em_detach(a);
    CHECK(da && !em_requires_grad(da) && em_tensor_shares_storage(da, a));
    CHECK(em_requires_grad(a)); /* the original is unchanged */
    /* requires_grad_ on integers */
    em_tensor *i = em_tensor_from_ints((const int64_t[]){1, 2, 3}, EM_SHAPE(3));
    CHECK_STATUS(em_requires_grad_(i, true), EM_ERR_DTYPE);
    CHECK(!em_requires_grad(i));
    CHECK_OK(em_requires_grad_(i, false));
    /* a non-leaf cannot stop requiring grad */
    CHECK_STATUS(em_requires_grad_(r, false), EM_ERR_STATE);
    /* backward on a non-scalar needs grad_output */
    CHECK_STATUS(em_backward(r, NULL, true, false), EM_ERR_SHAPE);
    const double wv[6] = {1, -1, 0.5, 2, -0.25, 3};
    em_tensor *W = em_tensor_from_data(wv, EM_F64, 2, sh, tu_dev);
    CHECK_OK(em_backward(r, W, false, false));
    double want_a[6], want_b[6];
    for (int k = 0; k < 6; k++) want_a[k] = want_b[k] = wv[k] * av[k];
    check_exact("backward of a [2,3] output with grad_output: grad a", em_grad(a), EM_F64, want_a,
                6);
    check_exact("backward of a [2,3] output with grad_output: grad b", em_grad(b), EM_F64, want_b,
                6);
    /* a grad_output of the wrong shape */
    em_tensor *r2 = em_mul(a, b);
    em_tensor *W3 = em_ones(EM_F64, EM_SHAPE(3), tu_dev);
    CHECK_STATUS(em_backward(r2, W3, false, false), EM_ERR_SHAPE);
    /* em_autograd_grad with an input the output does not use */
    em_tensor *c = leaf_from(av, 2, sh);
    em_tensor *out = em_mul(a, a);
    em_tensor *g[2] = {(em_tensor *)1, (em_tensor *)1};
    CHECK_STATUS(em_autograd_grad(1, (const em_tensor *const[]){out}, (const em_tensor *const[]){W},
                                  2, (const em_tensor *const[]){a, c}, g, true, false, false),
                 EM_ERR_INVALID_ARG);
    CHECK(g[0] == NULL && g[1] == NULL);
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){out}, (const em_tensor *const[]){W}, 2,
                              (const em_tensor *const[]){a, c}, g, false, false, true));
    CHECK(g[1] == NULL);
    double want2a[6];
    for (int k = 0; k < 6; k++) want2a[k] = 2 * av[k] * wv[k];
    check_exact("autograd_grad with allow_unused: grad of the used input", g[0], EM_F64, want2a,
                6);
    /* an input that does not require grad */
    em_tensor *plain = em_tensor_from_data(av, EM_F64, 2, sh, tu_dev);
    em_tensor *gp = NULL;
    CHECK_STATUS(em_autograd_grad(1, (const em_tensor *const[]){em_mul(a, plain)},
                                  (const em_tensor *const[]){W}, 1,
                                  (const em_tensor *const[]){plain}, &gp, false, false, true),
                 EM_ERR_STATE);
    /* backward from something that does not require grad */
    CHECK_STATUS(em_backward(plain, W, false, false), EM_ERR_STATE);
    /* integer and comparison results carry no gradient */
    em_tensor *cmp = em_gt(a, b);
    CHECK(cmp && !em_requires_grad(cmp));
    em_tensor *sg = em_sign(a);
    CHECK(sg && em_requires_grad(sg));
    em_tensor *gsg = NULL;
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){sg}, (const em_tensor *const[]){W}, 1,
                              (const em_tensor *const[]){a}, &gsg, false, false, false));
    const double zeros[6] = {0};
    check_exact("sign: zero gradient", gsg, EM_F64, zeros, 6);
    em_scope_end();
}

/* Engine regressions found while writing these tests. */
static void test_engine_regressions(void)
{
    em_scope_begin();
    const double xv[3] = {1, 2, 3}, wv[3] = {5, 6, 7}, ones[3] = {1, 1, 1};
    int64_t s3[1] = {3};
    em_tensor *go = em_tensor_from_data(ones, EM_F64, 1, s3, tu_dev);
    /* a create_graph backward must not store the caller's grad_output (or
     * any other gradient tensor) itself in .grad: zero_grad would write it */
    {
        em_tensor *x = leaf_from(xv, 1, s3);
        em_tensor *c = em_tensor_from_data(xv, EM_F64, 1, s3, tu_dev);
        em_tensor *W = em_tensor_from_data(wv, EM_F64, 1, s3, tu_dev);
        CHECK_OK(em_backward(em_add(x, c), W, false, true));
        em_tensor *gx = em_grad(x);
        CHECK(gx && !em_tensor_shares_storage(gx, W));
        check_exact("create_graph backward of x + c: grad", gx, EM_F64, wv, 3);
        CHECK_OK(em_zero_grad(x));
        check_exact("grad_output after em_zero_grad of the leaf", W, EM_F64, wv, 3);
        CHECK_OK(em_set_grad(x, NULL));
    }
    /* double backward through .grad: d/dx (x^3) = 3x^2 with a graph, whose
     * backward adds 6x to .grad */
    {
        em_tensor *x = leaf_from(xv, 1, s3);
        CHECK_OK(em_backward(em_mul(em_mul(x, x), x), go, false, true));
        em_tensor *gx = em_grad(x);
        CHECK(gx && em_requires_grad(gx));
        const double g1[3] = {3, 12, 27}, g2[3] = {9, 24, 45};
        check_exact("create_graph backward of x^3: grad", gx, EM_F64, g1, 3);
        CHECK_OK(em_backward(gx, go, false, false));
        check_exact("backward of that grad, accumulated", em_grad(x), EM_F64, g2, 3);
        CHECK_OK(em_set_grad(x, NULL)); /* frees the graph the grad refers to */
    }
    /* em_autograd_grad with respect to a non-leaf whose own part of the graph
     * was freed by an earlier backward: that part is not needed */
    {
        em_tensor *x = leaf_from(xv, 1, s3);
        em_tensor *h = em_exp(x);
        CHECK_OK(em_backward(em_mul_scalar(h, 2.0), go, false, false));
        em_tensor *gh = NULL;
        CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){em_mul_scalar(h, 3.0)},
                                  (const em_tensor *const[]){go}, 1,
                                  (const em_tensor *const[]){h}, &gh, false, false, false));
        const double three[3] = {3, 3, 3};
        check_exact("autograd_grad w.r.t. a non-leaf after its graph was freed", gh, EM_F64,
                    three, 3);
    }
    /* a node with more than 8 inputs (cat of 10) that does not need to run */
    {
        const em_tensor *parts[10];
        for (int i = 0; i < 10; i++) parts[i] = leaf_from(xv, 1, (const int64_t[]){2});
        em_tensor *z = leaf_from((const double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                                  15, 16, 17, 18, 19, 20},
                                 1, (const int64_t[]){20});
        em_tensor *cat = em_cat(parts, 10, 0);
        em_tensor *y = cat ? em_mul(cat, z) : NULL;
        CHECK_NONNULL(y);
        em_tensor *W = em_ones(EM_F64, EM_SHAPE(20), tu_dev);
        em_tensor *gz = NULL;
        CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){y}, (const em_tensor *const[]){W},
                                  1, (const em_tensor *const[]){z}, &gz, false, false, false));
        double want[20];
        for (int i = 0; i < 20; i++) want[i] = xv[i % 2];
        check_exact("grad w.r.t. z of cat(10 leaves) * z", gz, EM_F64, want, 20);
    }
    em_scope_end();
}

/* relu's gradient equals g * (x > 0) exactly: the fused kernel and the
 * composed form agree, for a dense gradient (weights g) and a broadcast one
 * (sum's backward expands a 0-d gradient), in every float dtype; x = 0 and
 * NaN get gradient 0. */
static void test_relu_backward(void)
{
    static const em_dtype dts[4] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    enum { N = 37 };
    for (int di = 0; di < 4; di++) {
        em_dtype dt = dts[di];
        em_scope_begin();
        double xv[N], gv[N];
        for (int i = 0; i < N; i++) {
            xv[i] = i % 5 == 0 ? 0.0 : tu_uniform(-2, 2);
            gv[i] = tu_uniform(-1, 1);
        }
        xv[3] = NAN;
        xv[4] = -0.0;
        em_tensor *x = em_cast(em_tensor_from_data(xv, EM_F64, 1, (const int64_t[]){N}, tu_dev), dt);
        em_tensor *g = em_cast(em_tensor_from_data(gv, EM_F64, 1, (const int64_t[]){N}, tu_dev), dt);
        CHECK_OK(em_requires_grad_(x, true));
        em_tensor *gx = NULL, *gs = NULL;
        CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){em_relu(x)},
                                  (const em_tensor *const[]){g}, 1, (const em_tensor *const[]){x},
                                  &gx, false, false, false));
        em_tensor *sum = em_sum(em_relu(x), NULL, 0, false);
        CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){sum}, NULL, 1,
                                  (const em_tensor *const[]){x}, &gs, false, false, false));
        double a[N], b[N], gq[N], xq[N]; /* g and x as stored in dt */
        CHECK(gx && em_tensor_dtype(gx) == dt && gs && em_tensor_dtype(gs) == dt);
        if (gx && gs && em_tensor_read_f64(gx, a, N) == EM_OK &&
            em_tensor_read_f64(gs, b, N) == EM_OK && em_tensor_read_f64(g, gq, N) == EM_OK &&
            em_tensor_read_f64(x, xq, N) == EM_OK) {
            bool ok = true;
            for (int i = 0; i < N; i++) {
                bool pass = xq[i] > 0; /* false for 0, -0 and NaN */
                ok &= a[i] == (pass ? gq[i] : 0.0) && b[i] == (pass ? 1.0 : 0.0);
            }
            CHECKF(ok, "relu backward %s: not g * (x > 0)", em_dtype_name(dt));
        }
        em_scope_end();
    }
}

int main(void)
{
    tu_init("test_grad_elementwise");
    test_relu_backward();
    test_binary();
    test_ties();
    test_scalar_forms();
    test_unary();
    test_unary_sliced();
    test_where_clamp_masked_fill();
    test_mixed_dtypes();
    test_second_order();
    test_accumulate_and_zero_grad();
    test_logistic_regression();
    test_inplace_on_saved();
    test_anomaly();
    test_modes_and_errors();
    test_engine_regressions();
    em_set_anomaly_enabled(false);
    em_shutdown();
    return tu_finish();
}
