/*
 * test_grad_linalg.c — the backward formulas of matmul, linear and addmm
 * (core/grad_linalg.c) in float64, against central differences that
 * gradcheck.h computes from forward passes only:
 *   - matmul in every torch.matmul form: 1-D x 1-D (dot), 1-D x 2-D,
 *     2-D x 1-D, 2-D x 2-D, batched x batched, broadcast batch dims
 *     ([2,1,2,3] x [3,3,2]), batched x 2-D, 2-D x batched, 1-D x batched,
 *     batched x 1-D; a transposed and a step-2 sliced operand; one operand
 *     not requiring grad (each side);
 *   - linear: 2-D, 3-D and 1-D x, with and without bias, a bias of shape
 *     [1], a transposed weight;
 *   - addmm: c [M,N], c broadcast from [N], [M,1] and 0-d, transposed a;
 *   - second derivatives (gradgradcheck) of matmul (2-D, batched with
 *     broadcast, 1-D x 2-D) and linear (2-D and 3-D, with bias);
 *   - an f32 operand mixed with an f64 one gets an f32 gradient; the
 *     grad_fn names;
 *   - linear_relu (the fused EM_OP_LINEAR_ACT where the backend has it):
 *     gradients and second derivatives against central differences, and
 *     values and gradients equal to em_relu(em_linear(...)) (the composed
 *     form) in f32 and f64; ctest also runs this file with EMBER_FUSED=0.
 */
#include "gradcheck.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* matmul                                                                    */
/* ------------------------------------------------------------------------ */

enum { M_PLAIN, M_TRANSPOSE_A, M_SLICE_B };

typedef struct mm_ctx {
    int mode;
    const em_tensor *fixed; /* a constant operand (no grad) or NULL */
    int fixed_side;         /* 0: fixed is a, 1: fixed is b            */
} mm_ctx;

static em_tensor *f_matmul(em_tensor *const *in, void *vctx)
{
    const mm_ctx *c = vctx;
    const em_tensor *a = in[0], *b = c->fixed ? NULL : in[1];
    if (c->fixed) {
        a = c->fixed_side == 0 ? c->fixed : in[0];
        b = c->fixed_side == 0 ? in[0] : c->fixed;
    }
    if (c->mode == M_TRANSPOSE_A) a = em_transpose(a, -2, -1);
    if (c->mode == M_SLICE_B) b = em_slice(b, -2, 0, INT64_MAX, 2);
    return em_matmul(a, b);
}

static void test_matmul(void)
{
    static const struct {
        const char *what;
        int na;
        int64_t a[4];
        int nb;
        int64_t b[4];
        int mode;
    } cases[] = {
        {"[4]x[4] dot", 1, {4}, 1, {4}, M_PLAIN},
        {"[3]x[3,4]", 1, {3}, 2, {3, 4}, M_PLAIN},
        {"[3,4]x[4]", 2, {3, 4}, 1, {4}, M_PLAIN},
        {"[2,3]x[3,4]", 2, {2, 3}, 2, {3, 4}, M_PLAIN},
        {"[2,2,3]x[2,3,2]", 3, {2, 2, 3}, 3, {2, 3, 2}, M_PLAIN},
        {"[2,1,2,3]x[3,3,2] bcast", 4, {2, 1, 2, 3}, 3, {3, 3, 2}, M_PLAIN},
        {"[2,2,3]x[3,2]", 3, {2, 2, 3}, 2, {3, 2}, M_PLAIN},
        {"[2,3]x[2,3,2]", 2, {2, 3}, 3, {2, 3, 2}, M_PLAIN},
        {"[3]x[2,3,2]", 1, {3}, 3, {2, 3, 2}, M_PLAIN},
        {"[2,2,3]x[3]", 3, {2, 2, 3}, 1, {3}, M_PLAIN},
        {"[1,2,3]x[2,3,2] bcast", 3, {1, 2, 3}, 3, {2, 3, 2}, M_PLAIN},
        {"[3,2]^T x[3,4] transposed a", 2, {3, 2}, 2, {3, 4}, M_TRANSPOSE_A},
        {"[2,3,2]^T x[2,3,2] transposed a", 3, {2, 3, 2}, 3, {2, 3, 2}, M_TRANSPOSE_A},
        {"[2,3]x[6,4] sliced b", 2, {2, 3}, 2, {6, 4}, M_SLICE_B},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        em_scope_begin();
        mm_ctx c = {.mode = cases[k].mode};
        em_tensor *in[2] = {gc_leaf(cases[k].na, cases[k].a, -1, 1),
                            gc_leaf(cases[k].nb, cases[k].b, -1, 1)};
        char label[96];
        snprintf(label, sizeof label, "matmul %s", cases[k].what);
        gradcheck(label, f_matmul, &c, 2, in);
        em_scope_end();
    }
    /* one side constant: the node saves only the other operand */
    em_scope_begin();
    em_tensor *ca = em_detach(gc_leaf(3, (const int64_t[]){2, 2, 3}, -1, 1));
    em_tensor *cb = em_detach(gc_leaf(1, (const int64_t[]){3}, -1, 1));
    em_tensor *lb = gc_leaf(2, (const int64_t[]){3, 2}, -1, 1);
    em_tensor *la = gc_leaf(2, (const int64_t[]){2, 3}, -1, 1);
    mm_ctx fa = {.fixed = ca, .fixed_side = 0}, fb = {.fixed = cb, .fixed_side = 1};
    gradcheck("matmul const [2,2,3] x b[3,2]", f_matmul, &fa, 1, &lb);
    gradcheck("matmul a[2,3] x const [3]", f_matmul, &fb, 1, &la);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* linear                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct lin_ctx {
    bool bias, transpose_w;
} lin_ctx;

/* One linear gradient case: x's shape, W's shape (read transposed when
 * transpose_w), and the bias length when nbias is 1. */
typedef struct lin_case {
    const char *what;
    int nx;
    int64_t x[3];
    int64_t w[2];
    int nbias;
    int64_t bias;
    bool transpose_w;
} lin_case;

/* The leaves of case k (in[2] NULL without a bias) and its context. */
static lin_ctx lin_leaves(const lin_case *k, em_tensor *in[3])
{
    lin_ctx c = {k->nbias > 0, k->transpose_w};
    in[0] = gc_leaf(k->nx, k->x, -1, 1);
    in[1] = gc_leaf(2, k->w, -1, 1);
    in[2] = c.bias ? gc_leaf(1, &k->bias, -1, 1) : NULL;
    return c;
}

static em_tensor *f_linear(em_tensor *const *in, void *vctx)
{
    const lin_ctx *c = vctx;
    const em_tensor *w = c->transpose_w ? em_transpose(in[1], 0, 1) : in[1];
    return em_linear(in[0], w, c->bias ? in[2] : NULL);
}

static void test_linear(void)
{
    static const lin_case cases[] = {
        {"x[3,4] W[2,4] b[2]", 2, {3, 4}, {2, 4}, 1, 2, false},
        {"x[3,4] W[2,4] no bias", 2, {3, 4}, {2, 4}, 0, 0, false},
        {"x[2,3,4] W[2,4] b[2]", 3, {2, 3, 4}, {2, 4}, 1, 2, false},
        {"x[2,3,4] W[3,4] no bias", 3, {2, 3, 4}, {3, 4}, 0, 0, false},
        {"x[4] W[3,4] b[3]", 1, {4}, {3, 4}, 1, 3, false},
        {"x[3,4] W[2,4] b[1]", 2, {3, 4}, {2, 4}, 1, 1, false},
        {"x[3,4] W[4,2]^T b[2]", 2, {3, 4}, {4, 2}, 1, 2, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        em_scope_begin();
        em_tensor *in[3];
        lin_ctx c = lin_leaves(&cases[k], in);
        char label[96];
        snprintf(label, sizeof label, "linear %s", cases[k].what);
        gradcheck(label, f_linear, &c, c.bias ? 3 : 2, in);
        em_scope_end();
    }
}

/* ------------------------------------------------------------------------ */
/* linear + relu (fused where the backend has EM_OP_LINEAR_ACT)              */
/* ------------------------------------------------------------------------ */

static em_tensor *f_linear_relu(em_tensor *const *in, void *vctx)
{
    const lin_ctx *c = vctx;
    const em_tensor *w = c->transpose_w ? em_transpose(in[1], 0, 1) : in[1];
    return em_linear_relu(in[0], w, c->bias ? in[2] : NULL);
}

static em_tensor *f_linear_relu_tanh(em_tensor *const *in, void *vctx)
{
    return em_tanh(f_linear_relu(in, vctx));
}

static void test_linear_relu(void)
{
    static const lin_case cases[] = {
        {"x[5,4] W[6,4] b[6]", 2, {5, 4}, {6, 4}, 1, 6, false},
        {"x[5,4] W[6,4] no bias", 2, {5, 4}, {6, 4}, 0, 0, false},
        {"x[1,4] W[6,4] b[6]", 2, {1, 4}, {6, 4}, 1, 6, false},
        {"x[2,3,4] W[3,4] b[3]", 3, {2, 3, 4}, {3, 4}, 1, 3, false},
        {"x[4] W[3,4] b[3]", 1, {4}, {3, 4}, 1, 3, false},
        {"x[3,4] W[4,2]^T b[2]", 2, {3, 4}, {4, 2}, 1, 2, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        em_scope_begin();
        em_tensor *in[3];
        lin_ctx c = lin_leaves(&cases[k], in);
        char label[96];
        snprintf(label, sizeof label, "linear_relu %s", cases[k].what);
        gradcheck(label, f_linear_relu, &c, c.bias ? 3 : 2, in);
        if (k == 0 || k == 3) {
            snprintf(label, sizeof label, "tanh(linear_relu %s) 2nd order", cases[k].what);
            gradgradcheck(label, f_linear_relu_tanh, &c, c.bias ? 3 : 2, in);
        }
        em_scope_end();
    }
}

/* Reads t as doubles (n values) into v; false on failure. */
static bool read_all(const em_tensor *t, double *v, size_t n)
{
    return t && (size_t)em_tensor_numel(t) == n && em_tensor_read_f64(t, v, n) == EM_OK;
}

/* em_linear_relu against em_relu(em_linear(...)): the same values and the
 * same gradients (the GEMM is the same call, relu and its mask the same
 * arithmetic), in f32 and f64, with pre-activations of both signs and an
 * exact 0 (bias cancelling a zero row of x). */
static void test_linear_relu_vs_composed(void)
{
    enum { M = 7, K = 9, N = 11 };
    for (int di = 0; di < 2; di++) {
        em_dtype dt = di == 0 ? EM_F32 : EM_F64;
        em_scope_begin();
        double xv[M * K], wv[N * K], bv[N], gv[M * N];
        for (int i = 0; i < M * K; i++) xv[i] = i < K ? 0.0 : tu_uniform(-1, 1);
        for (int i = 0; i < N * K; i++) wv[i] = tu_uniform(-1, 1);
        for (int i = 0; i < N; i++) bv[i] = i % 3 == 0 ? 0.0 : tu_uniform(-1, 1);
        for (int i = 0; i < M * N; i++) gv[i] = tu_uniform(-1, 1);
        em_tensor *t[2][3];
        for (int side = 0; side < 2; side++) {
            t[side][0] = em_tensor_from_data(xv, EM_F64, 2, (const int64_t[]){M, K}, tu_dev);
            t[side][1] = em_tensor_from_data(wv, EM_F64, 2, (const int64_t[]){N, K}, tu_dev);
            t[side][2] = em_tensor_from_data(bv, EM_F64, 1, (const int64_t[]){N}, tu_dev);
            for (int j = 0; j < 3; j++) {
                t[side][j] = em_cast(t[side][j], dt);
                CHECK_OK(em_requires_grad_(t[side][j], true));
            }
        }
        em_tensor *gout = em_cast(em_tensor_from_data(gv, EM_F64, 2, (const int64_t[]){M, N}, tu_dev), dt);
        em_tensor *yf = em_linear_relu(t[0][0], t[0][1], t[0][2]);
        em_tensor *yc = em_relu(em_linear(t[1][0], t[1][1], t[1][2]));
        CHECK_NONNULL(yf);
        CHECK_NONNULL(yc);
        const char *name = em_grad_fn_name(yf);
        CHECKF(name && (!strcmp(name, "linear_relu") || !strcmp(name, "relu")),
               "linear_relu's grad_fn is %s", name ? name : "NULL");
        CHECK_OK(em_backward(yf, gout, false, false));
        CHECK_OK(em_backward(yc, gout, false, false));
        double a[M * N], b[M * N];
        double tol = dt == EM_F32 ? 1e-6 : 1e-14;
        bool ok = read_all(yf, a, M * N) && read_all(yc, b, M * N);
        int zeros = 0;
        for (int i = 0; ok && i < M * N; i++) {
            ok = fabs(a[i] - b[i]) <= tol * (1 + fabs(b[i])) && a[i] >= 0;
            zeros += a[i] == 0;
        }
        CHECKF(ok, "linear_relu %s: values differ from relu(linear)", em_dtype_name(dt));
        CHECKF(zeros > 0 && zeros < M * N, "linear_relu %s: %d zeros of %d (want both signs)",
               em_dtype_name(dt), zeros, M * N);
        static const char *what[3] = {"x", "weight", "bias"};
        static const size_t count[3] = {M * K, N * K, N};
        for (int j = 0; j < 3; j++) {
            double ga[N * K], gb[N * K];
            ok = read_all(em_grad(t[0][j]), ga, count[j]) && read_all(em_grad(t[1][j]), gb, count[j]);
            for (size_t i = 0; ok && i < count[j]; i++) ok = fabs(ga[i] - gb[i]) <= tol * (1 + fabs(gb[i]));
            CHECKF(ok, "linear_relu %s: the gradient of %s differs from relu(linear)'s",
                   em_dtype_name(dt), what[j]);
        }
        em_scope_end();
    }
    /* argument errors are linear's, named after em_linear_relu */
    em_scope_begin();
    em_tensor *x = gc_leaf(2, (const int64_t[]){2, 3}, -1, 1);
    em_tensor *w = gc_leaf(2, (const int64_t[]){4, 5}, -1, 1);
    CHECK_FAILS(em_linear_relu(x, w, NULL), EM_ERR_SHAPE);
    em_clear_error();
    CHECK(!em_linear_relu(x, w, NULL) && strstr(em_last_error(), "em_linear_relu") != NULL);
    em_clear_error();
    CHECK_FAILS(em_linear_relu(NULL, w, NULL), EM_ERR_NULL_ARG);
    em_clear_error();
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* addmm                                                                     */
/* ------------------------------------------------------------------------ */

static em_tensor *f_addmm(em_tensor *const *in, void *vctx)
{
    bool transpose_a = *(const bool *)vctx;
    return em_addmm(in[0], transpose_a ? em_transpose(in[1], 0, 1) : in[1], in[2]);
}

static void test_addmm(void)
{
    static const struct {
        const char *what;
        int nc;
        int64_t c[2];
        int64_t a[2];
        bool transpose_a;
    } cases[] = {
        {"c[2,4] a[2,3] b[3,4]", 2, {2, 4}, {2, 3}, false},
        {"c[4] bcast", 1, {4}, {2, 3}, false},
        {"c[2,1] bcast", 2, {2, 1}, {2, 3}, false},
        {"c 0-d bcast", 0, {0}, {2, 3}, false},
        {"c[2,4] a[3,2]^T", 2, {2, 4}, {3, 2}, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        em_scope_begin();
        bool t = cases[k].transpose_a;
        em_tensor *in[3] = {gc_leaf(cases[k].nc, cases[k].c, -1, 1),
                            gc_leaf(2, cases[k].a, -1, 1),
                            gc_leaf(2, (const int64_t[]){3, 4}, -1, 1)};
        char label[96];
        snprintf(label, sizeof label, "addmm %s", cases[k].what);
        gradcheck(label, f_addmm, &t, 3, in);
        em_scope_end();
    }
}

/* ------------------------------------------------------------------------ */
/* Second derivatives                                                        */
/* ------------------------------------------------------------------------ */

static em_tensor *f_matmul_tanh(em_tensor *const *in, void *vctx)
{
    return em_tanh(f_matmul(in, vctx));
}

static em_tensor *f_linear_tanh(em_tensor *const *in, void *vctx)
{
    return em_tanh(f_linear(in, vctx));
}

static void test_second_order(void)
{
    em_scope_begin();
    mm_ctx plain = {.mode = M_PLAIN};
    em_tensor *a2[2] = {gc_leaf(2, (const int64_t[]){2, 3}, -1, 1),
                        gc_leaf(2, (const int64_t[]){3, 4}, -1, 1)};
    gradgradcheck("matmul [2,3]x[3,4]", f_matmul, &plain, 2, a2);
    gradgradcheck("tanh(matmul [2,3]x[3,4])", f_matmul_tanh, &plain, 2, a2);
    em_tensor *ab[2] = {gc_leaf(4, (const int64_t[]){2, 1, 2, 3}, -1, 1),
                        gc_leaf(3, (const int64_t[]){3, 3, 2}, -1, 1)};
    gradgradcheck("matmul [2,1,2,3]x[3,3,2]", f_matmul, &plain, 2, ab);
    gradgradcheck("tanh(matmul [2,1,2,3]x[3,3,2])", f_matmul_tanh, &plain, 2, ab);
    em_tensor *av[2] = {gc_leaf(1, (const int64_t[]){3}, -1, 1),
                        gc_leaf(3, (const int64_t[]){2, 3, 2}, -1, 1)};
    gradgradcheck("tanh(matmul [3]x[2,3,2])", f_matmul_tanh, &plain, 2, av);

    lin_ctx with_bias = {true, false};
    em_tensor *l2[3] = {gc_leaf(2, (const int64_t[]){3, 4}, -1, 1),
                        gc_leaf(2, (const int64_t[]){2, 4}, -1, 1),
                        gc_leaf(1, (const int64_t[]){2}, -1, 1)};
    gradgradcheck("linear x[3,4] W[2,4] b[2]", f_linear, &with_bias, 3, l2);
    gradgradcheck("tanh(linear x[3,4] W[2,4] b[2])", f_linear_tanh, &with_bias, 3, l2);
    em_tensor *l3[3] = {gc_leaf(3, (const int64_t[]){2, 3, 4}, -1, 1),
                        gc_leaf(2, (const int64_t[]){2, 4}, -1, 1),
                        gc_leaf(1, (const int64_t[]){2}, -1, 1)};
    gradgradcheck("tanh(linear x[2,3,4] W[2,4] b[2])", f_linear_tanh, &with_bias, 3, l3);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* dtypes and names                                                          */
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
    em_tensor *a = gc_leaf(2, (const int64_t[]){2, 3}, -1, 1);
    em_tensor *b = gc_leaf(2, (const int64_t[]){3, 4}, -1, 1);
    em_tensor *w = gc_leaf(2, (const int64_t[]){4, 3}, -1, 1);
    em_tensor *c = gc_leaf(1, (const int64_t[]){4}, -1, 1);
    check_name("em_matmul", em_matmul(a, b), "matmul");
    check_name("em_linear", em_linear(a, w, c), "linear");
    check_name("em_addmm", em_addmm(c, a, b), "addmm");

    /* an f32 operand with an f64 one: the f32 one's gradient is f32 */
    em_tensor *a32 = em_cast(em_detach(a), EM_F32);
    CHECK_OK(em_requires_grad_(a32, true));
    em_tensor *loss = em_sum(em_matmul(a32, b), NULL, 0, false);
    em_tensor *g[2] = {NULL, NULL};
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){loss}, NULL, 2,
                              (const em_tensor *const[]){a32, b}, g, false, false, false));
    CHECK(g[0] && em_tensor_dtype(g[0]) == EM_F32 && g[1] && em_tensor_dtype(g[1]) == EM_F64);
    /* d sum(a b) / da = rowsums of b, for every row of a */
    if (g[0]) {
        double ga[6], bv[12];
        CHECK_OK(em_tensor_read_f64(g[0], ga, 6));
        CHECK_OK(em_tensor_read_f64(b, bv, 12));
        bool ok = true;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 3; k++) {
                double want = bv[4 * k] + bv[4 * k + 1] + bv[4 * k + 2] + bv[4 * k + 3];
                ok &= fabs(ga[3 * i + k] - want) <= 1e-5;
            }
        CHECKF(ok, "f32 gradient of matmul");
    }

    /* grad mode off: nothing recorded */
    bool prev = em_set_grad_enabled(false);
    em_tensor *off = em_matmul(a, b);
    CHECK(off && !em_requires_grad(off));
    em_set_grad_enabled(prev);
    em_clear_error();
    em_scope_end();
}

int main(void)
{
    tu_init("test_grad_linalg");
    test_matmul();
    test_linear();
    test_addmm();
    test_linear_relu();
    test_linear_relu_vs_composed();
    test_second_order();
    test_recording();
    em_shutdown();
    return tu_finish();
}
