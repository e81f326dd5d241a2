/*
 * test_grad_reduce.c — the backward formulas of the reductions and of
 * softmax/log_softmax (core/grad_reduce.c) in float64, against central
 * differences that gradcheck.h computes from forward passes only:
 *   - sum, mean, max, min, var and std (unbiased and biased), logsumexp:
 *     all dims and chosen dims, keepdim true and false, negative dims, a
 *     transposed and a step-2 sliced input, a 0-d input; max/min on inputs
 *     without ties (values on a grid, far apart compared with eps);
 *   - softmax and log_softmax along each dim, negative dims, a transposed
 *     input;
 *   - second derivatives (gradgradcheck) of sum, mean, softmax,
 *     log_softmax, logsumexp, var and std;
 *   - exact values: max/min ties share the gradient equally (torch.amax),
 *     mean over chosen dims, std where the std is 0 (gradient 0, as torch);
 *   - no grad for argmax/argmin or integer sums; em_grad_fn_name of every
 *     recorded op; saving only what the formula reads (an in-place change to
 *     the input of sum is no error, to the input of var is).
 */
#include "gradcheck.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static em_tensor *leaf_from(const double *vals, int ndim, const int64_t *shape)
{
    em_tensor *t = em_tensor_from_data(vals, EM_F64, ndim, shape, tu_dev);
    if (t) em_requires_grad_(t, true);
    return t;
}

/* A leaf whose values are pairwise at least 0.08 apart: a shuffled grid
 * 0.1 k plus jitter in [0, 0.02), so max/min have no ties (or near ties
 * within eps). */
static em_tensor *leaf_distinct(int ndim, const int64_t *shape)
{
    int64_t n = tu_numel(ndim, shape);
    double v[64];
    for (int64_t i = 0; i < n; i++) v[i] = 0.1 * (double)(i - n / 2);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = tu_randint(0, i);
        double t = v[i];
        v[i] = v[j], v[j] = t;
    }
    for (int64_t i = 0; i < n; i++) v[i] += tu_uniform(0, 0.02);
    return leaf_from(v, ndim, shape);
}

static void check_exact(const char *label, const em_tensor *t, const double *want, int64_t n)
{
    CHECKF(t != NULL, "%s: tensor is NULL", label);
    if (!t) {
        em_clear_error();
        return;
    }
    CHECKF(em_tensor_numel(t) == n, "%s: numel %lld, want %lld", label,
           (long long)em_tensor_numel(t), (long long)n);
    if (em_tensor_numel(t) != n) return;
    double got[64];
    CHECK_OK(em_tensor_read_f64(t, got, (size_t)n));
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-15)) bad = i;
    if (bad >= 0)
        tu_report_fail(__FILE__, __LINE__, "%s: element %lld is %.17g, want %.17g", label,
                       (long long)bad, got[bad], want[bad]);
    else
        tu_passed++;
    printf("%s: %s\n", label, bad < 0 ? "exact" : "WRONG");
}

/* ------------------------------------------------------------------------ */
/* Reductions                                                                */
/* ------------------------------------------------------------------------ */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_VAR, R_STD, R_LOGSUMEXP };
static const char *const r_names[] = {"sum", "mean", "max", "min", "var", "std", "logsumexp"};

/* How the leaf becomes the op's [2,3,4] input. */
enum { L_PLAIN, L_TRANSPOSE, L_SLICE };

typedef struct red_ctx {
    int op;
    int dims[4];
    int nd;
    bool keepdim, unbiased;
    int layout;
} red_ctx;

static em_tensor *apply_layout(em_tensor *x, int layout)
{
    switch (layout) {
    case L_TRANSPOSE: return em_transpose(x, 0, 1);         /* [3,2,4] -> [2,3,4] */
    case L_SLICE: return em_slice(x, 1, 0, INT64_MAX, 2);   /* [2,6,4] -> [2,3,4] */
    default: return x;
    }
}

static em_tensor *run_reduce(const red_ctx *c, const em_tensor *x)
{
    const int *d = c->nd ? c->dims : NULL;
    switch (c->op) {
    case R_SUM: return em_sum(x, d, c->nd, c->keepdim);
    case R_MEAN: return em_mean(x, d, c->nd, c->keepdim);
    case R_MAX: return em_max(x, d, c->nd, c->keepdim);
    case R_MIN: return em_min(x, d, c->nd, c->keepdim);
    case R_VAR: return em_var(x, d, c->nd, c->unbiased, c->keepdim);
    case R_STD: return em_std(x, d, c->nd, c->unbiased, c->keepdim);
    default: return em_logsumexp(x, d, c->nd, c->keepdim);
    }
}

static em_tensor *f_reduce(em_tensor *const *in, void *vctx)
{
    const red_ctx *c = vctx;
    return run_reduce(c, apply_layout(in[0], c->layout));
}

static void test_reductions(void)
{
    static const struct {
        const char *what;
        int dims[4];
        int nd;
        bool keepdim;
        int layout;
    } cases[] = {
        {"all", {0}, 0, false, L_PLAIN},
        {"all keepdim", {0}, 0, true, L_PLAIN},
        {"dim 1", {1}, 1, false, L_PLAIN},
        {"dim 1 keepdim", {1}, 1, true, L_PLAIN},
        {"dims -1,0", {-1, 0}, 2, false, L_PLAIN},
        {"dims -1,0 keepdim", {-1, 0}, 2, true, L_PLAIN},
        {"dim -2 transposed", {-2}, 1, false, L_TRANSPOSE},
        {"dims 0,2 sliced keepdim", {0, 2}, 2, true, L_SLICE},
        {"dims 0,1,2 sliced", {0, 1, 2}, 3, false, L_SLICE},
    };
    for (int op = R_SUM; op <= R_LOGSUMEXP; op++) {
        for (int bias = 0; bias < (op == R_VAR || op == R_STD ? 2 : 1); bias++) {
            for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
                em_scope_begin();
                red_ctx c = {.op = op, .nd = cases[k].nd, .keepdim = cases[k].keepdim,
                             .unbiased = !bias, .layout = cases[k].layout};
                memcpy(c.dims, cases[k].dims, sizeof c.dims);
                int64_t shape[3] = {2, 3, 4};
                if (c.layout == L_TRANSPOSE) shape[0] = 3, shape[1] = 2;
                if (c.layout == L_SLICE) shape[1] = 6;
                em_tensor *x = (op == R_MAX || op == R_MIN) ? leaf_distinct(3, shape)
                                                            : gc_leaf(3, shape, -2, 2);
                char label[96];
                snprintf(label, sizeof label, "%s%s %s", r_names[op],
                         op == R_VAR || op == R_STD ? (bias ? "(biased)" : "(unbiased)") : "",
                         cases[k].what);
                gradcheck(label, f_reduce, &c, 1, &x);
                em_scope_end();
            }
        }
    }
    /* a 0-d input (reducing "all" of a scalar), and a 1-D one */
    for (int op = R_SUM; op <= R_LOGSUMEXP; op++) {
        if (op == R_VAR || op == R_STD) continue; /* N - 1 = 0 */
        em_scope_begin();
        red_ctx c = {.op = op};
        em_tensor *x = gc_leaf(0, NULL, -2, 2);
        char label[96];
        snprintf(label, sizeof label, "%s 0-d", r_names[op]);
        gradcheck(label, f_reduce, &c, 1, &x);
        c.nd = 1, c.dims[0] = -1;
        em_tensor *v = leaf_distinct(1, (const int64_t[]){5});
        snprintf(label, sizeof label, "%s 1-D dim -1", r_names[op]);
        gradcheck(label, f_reduce, &c, 1, &v);
        em_scope_end();
    }
}

/* Max/min ties share equally; mean; std of a constant row: exact. */
static void test_exact_values(void)
{
    em_scope_begin();
    const double xv[8] = {1, 3, 3, 2, /**/ 5, 5, 5, -1};
    em_tensor *x = leaf_from(xv, 2, (const int64_t[]){2, 4});
    em_tensor *g = NULL;
    int d1 = 1;

    em_tensor *mx = em_max(x, &d1, 1, false);
    /* non-scalar output: pass ones */
    em_tensor *ones2 = em_ones(EM_F64, 1, (const int64_t[]){2}, tu_dev);
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){mx},
                              (const em_tensor *const[]){ones2}, 1,
                              (const em_tensor *const[]){x}, &g, false, false, false));
    const double want_max[8] = {0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0};
    check_exact("max ties share equally", g, want_max, 8);

    em_tensor *mn = em_min(x, NULL, 0, false); /* single min -1 */
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){mn}, NULL, 1,
                              (const em_tensor *const[]){x}, &g, false, false, false));
    const double want_min[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    check_exact("min over all dims", g, want_min, 8);

    em_tensor *mx_all = em_max(x, NULL, 0, true); /* three 5s */
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){mx_all}, NULL, 1,
                              (const em_tensor *const[]){x}, &g, false, false, false));
    const double want_mx_all[8] = {0, 0, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0};
    check_exact("max over all dims, keepdim, 3-way tie", g, want_mx_all, 8);

    em_tensor *m = em_mean(x, (const int[]){0}, 1, false);
    em_tensor *ones4 = em_ones(EM_F64, 1, (const int64_t[]){4}, tu_dev);
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){m},
                              (const em_tensor *const[]){ones4}, 1,
                              (const em_tensor *const[]){x}, &g, false, false, false));
    const double want_mean[8] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    check_exact("mean over dim 0", g, want_mean, 8);

    /* std of a constant slice is 0; torch gives a 0 gradient there, not NaN */
    const double cv[6] = {2, 2, 2, 1, 2, 4};
    em_tensor *cx = leaf_from(cv, 2, (const int64_t[]){2, 3});
    em_tensor *s = em_std(cx, &d1, 1, true, false);
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){s},
                              (const em_tensor *const[]){ones2}, 1,
                              (const em_tensor *const[]){cx}, &g, false, false, false));
    /* row 2: mean 7/3, std sqrt(7/3); d/dx = (x - mean) / (2 std) */
    double sd = sqrt(7.0 / 3.0);
    const double want_std[6] = {0, 0, 0, (1 - 7.0 / 3) / (2 * sd), (2 - 7.0 / 3) / (2 * sd),
                                (4 - 7.0 / 3) / (2 * sd)};
    double got[6];
    CHECK_OK(em_tensor_read_f64(g, got, 6));
    bool close = true;
    for (int i = 0; i < 6; i++) close &= fabs(got[i] - want_std[i]) <= 1e-12;
    CHECKF(close, "std with a zero-std row: got %g %g %g %g %g %g", got[0], got[1], got[2],
           got[3], got[4], got[5]);
    printf("std with a zero-std row: %s\n", close ? "ok" : "WRONG");
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* softmax, log_softmax                                                      */
/* ------------------------------------------------------------------------ */

typedef struct sm_ctx {
    bool log;
    int dim;
    int layout;
} sm_ctx;

static em_tensor *f_softmax(em_tensor *const *in, void *vctx)
{
    const sm_ctx *c = vctx;
    em_tensor *x = apply_layout(in[0], c->layout);
    return c->log ? em_log_softmax(x, c->dim) : em_softmax(x, c->dim);
}

static void test_softmax(void)
{
    static const struct {
        int dim, layout;
    } cases[] = {{0, L_PLAIN}, {1, L_PLAIN}, {2, L_PLAIN}, {-1, L_PLAIN},
                 {-3, L_PLAIN}, {1, L_TRANSPOSE}, {-1, L_SLICE}};
    for (int lg = 0; lg < 2; lg++) {
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            em_scope_begin();
            sm_ctx c = {lg, cases[k].dim, cases[k].layout};
            int64_t shape[3] = {2, 3, 4};
            if (c.layout == L_TRANSPOSE) shape[0] = 3, shape[1] = 2;
            if (c.layout == L_SLICE) shape[1] = 6;
            em_tensor *x = gc_leaf(3, shape, -2, 2);
            char label[96];
            snprintf(label, sizeof label, "%s dim %d%s", lg ? "log_softmax" : "softmax", c.dim,
                     c.layout == L_TRANSPOSE ? " transposed" : c.layout == L_SLICE ? " sliced" : "");
            gradcheck(label, f_softmax, &c, 1, &x);
            em_scope_end();
        }
        em_scope_begin();
        sm_ctx c = {lg, 0, L_PLAIN};
        em_tensor *v = gc_leaf(1, (const int64_t[]){5}, -2, 2);
        gradcheck(lg ? "log_softmax 1-D" : "softmax 1-D", f_softmax, &c, 1, &v);
        em_scope_end();
    }
}

/* ------------------------------------------------------------------------ */
/* Second derivatives                                                        */
/* ------------------------------------------------------------------------ */

/* sum/mean feed a nonlinearity so that the second derivative is not 0. */
static em_tensor *f_square_then_reduce(em_tensor *const *in, void *vctx)
{
    const red_ctx *c = vctx;
    return run_reduce(c, em_square(apply_layout(in[0], c->layout)));
}

static em_tensor *f_reduce_then_square(em_tensor *const *in, void *vctx)
{
    const red_ctx *c = vctx;
    return em_square(run_reduce(c, apply_layout(in[0], c->layout)));
}

static void test_second_order(void)
{
    em_scope_begin();
    int64_t shape[3] = {2, 3, 4};
    em_tensor *x = gc_leaf(3, shape, -2, 2);
    red_ctx sum1 = {.op = R_SUM, .dims = {1}, .nd = 1};
    red_ctx sum_all = {.op = R_SUM};
    red_ctx mean02 = {.op = R_MEAN, .dims = {0, -1}, .nd = 2, .keepdim = true};
    red_ctx mean_all = {.op = R_MEAN};
    red_ctx lse = {.op = R_LOGSUMEXP, .dims = {-1}, .nd = 1};
    red_ctx lse_all = {.op = R_LOGSUMEXP, .keepdim = true};
    gradgradcheck("sum(x^2) dim 1", f_square_then_reduce, &sum1, 1, &x);
    gradgradcheck("sum(x)^2 all", f_reduce_then_square, &sum_all, 1, &x);
    gradgradcheck("mean(x^2) dims 0,-1 keepdim", f_square_then_reduce, &mean02, 1, &x);
    gradgradcheck("mean(x)^2 all", f_reduce_then_square, &mean_all, 1, &x);
    gradgradcheck("logsumexp dim -1", f_reduce, &lse, 1, &x);
    gradgradcheck("logsumexp all keepdim", f_reduce, &lse_all, 1, &x);
    red_ctx var1 = {.op = R_VAR, .dims = {1}, .nd = 1, .unbiased = true};
    red_ctx std_all = {.op = R_STD, .keepdim = true};
    gradgradcheck("var dim 1", f_reduce, &var1, 1, &x);
    gradgradcheck("std all keepdim", f_reduce, &std_all, 1, &x);
    sm_ctx sm1 = {false, 1, L_PLAIN}, sm_t = {false, -1, L_TRANSPOSE};
    sm_ctx lsm = {true, -1, L_PLAIN}, lsm0 = {true, 0, L_PLAIN};
    gradgradcheck("softmax dim 1", f_softmax, &sm1, 1, &x);
    gradgradcheck("log_softmax dim -1", f_softmax, &lsm, 1, &x);
    gradgradcheck("log_softmax dim 0", f_softmax, &lsm0, 1, &x);
    em_tensor *xt = gc_leaf(3, (const int64_t[]){3, 2, 4}, -2, 2);
    gradgradcheck("softmax dim -1 transposed", f_softmax, &sm_t, 1, &xt);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Recording                                                                 */
/* ------------------------------------------------------------------------ */

static void check_name(const char *what, const em_tensor *t, const char *want)
{
    const char *got = em_grad_fn_name(t);
    CHECKF(got && !strcmp(got, want), "%s: grad_fn name %s, want %s", what, got ? got : "NULL",
           want);
}

static void test_recording(void)
{
    em_scope_begin();
    em_tensor *x = gc_leaf(2, (const int64_t[]){3, 4}, -2, 2);
    int d = -1;
    check_name("em_sum", em_sum(x, NULL, 0, false), "sum");
    check_name("em_mean", em_mean(x, &d, 1, true), "mean");
    check_name("em_max", em_max(x, &d, 1, false), "max");
    check_name("em_min", em_min(x, NULL, 0, false), "min");
    check_name("em_var", em_var(x, &d, 1, true, false), "var");
    check_name("em_std", em_std(x, &d, 1, false, true), "std");
    check_name("em_logsumexp", em_logsumexp(x, &d, 1, false), "logsumexp");
    check_name("em_softmax", em_softmax(x, 0), "softmax");
    check_name("em_log_softmax", em_log_softmax(x, 1), "log_softmax");

    em_tensor *am = em_argmax(x, 1, false), *an = em_argmin(x, EM_ALL_DIMS, false);
    CHECK(am && !em_requires_grad(am) && em_grad_fn_name(am) == NULL);
    CHECK(an && !em_requires_grad(an) && em_grad_fn_name(an) == NULL);

    /* integer sums: i64, no grad (an int tensor cannot require grad) */
    em_tensor *xi = em_cast(em_detach(x), EM_I32);
    em_tensor *si = em_sum(xi, NULL, 0, false);
    CHECK(si && em_tensor_dtype(si) == EM_I64 && !em_requires_grad(si));

    /* grad mode off: nothing recorded */
    bool prev = em_set_grad_enabled(false);
    em_tensor *off = em_sum(x, NULL, 0, false);
    CHECK(off && !em_requires_grad(off));
    em_set_grad_enabled(prev);

    /* sum saves nothing: an in-place change of its input after the op is
     * no error (as torch); var saves its input, so its backward refuses */
    em_tensor *z = em_mul_scalar(x, 1.0);
    em_tensor *zs = em_sum(z, NULL, 0, false), *zv = em_var(z, NULL, 0, true, false);
    em_tensor *zm = em_max(z, NULL, 0, false);
    prev = em_set_grad_enabled(false);
    CHECK_OK(em_add_scalar_(z, 1.0));
    em_set_grad_enabled(prev);
    em_tensor *gz = NULL;
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){zs}, NULL, 1,
                              (const em_tensor *const[]){x}, &gz, false, false, false));
    CHECK_STATUS(em_autograd_grad(1, (const em_tensor *const[]){zv}, NULL, 1,
                                 (const em_tensor *const[]){x}, &gz, false, false, false),
                EM_ERR_STATE);
    CHECK_STATUS(em_autograd_grad(1, (const em_tensor *const[]){zm}, NULL, 1,
                                 (const em_tensor *const[]){x}, &gz, false, false, false),
                EM_ERR_STATE);
    em_clear_error();
    em_scope_end();
}

int main(void)
{
    tu_init("test_grad_reduce");
    test_reductions();
    test_exact_values();
    test_softmax();
    test_second_order();
    test_recording();
    em_shutdown();
    return tu_finish();
}
