/*
 * test_grad_views.c — autograd through views and memory ops:
 *   - gradcheck (float64, central differences) of reshape/view, flatten,
 *     squeeze/squeeze_all/unsqueeze, transpose/permute/T, expand, narrow,
 *     slice, select, contiguous, clone, tensor_to, with negative dims,
 *     non-contiguous inputs (a transpose or a step-2 slice before the op)
 *     and chains of views;
 *   - gradgradcheck of reshape, transpose, expand, slice and select (their
 *     backward formulas appear inside second-derivative graphs);
 *   - casts f64 -> f32 -> f64 against the exact gradient (ones), and no
 *     gradient through a cast to an integer dtype;
 *   - a view of a leaf requiring grad is a non-leaf named after its op;
 *     em_detach shares storage and requires no grad; ops that return their
 *     input itself (contiguous of a contiguous tensor, tensor_to the same
 *     device) record nothing;
 *   - em_copy_ / em_fill_ / em_zero_ refuse a tensor requiring grad while
 *     grad mode is on (EM_ERR_STATE) and work with it off.
 */
#include "test_util.h"
#include "gradcheck.h"

#define S(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((const int64_t[]){__VA_ARGS__})

/* ---------------- the functions under test ------------------------------ */

/* Non-contiguous building blocks used before the op under test. */
static em_tensor *tr(em_tensor *x) { return em_transpose(x, 0, -1); }
static em_tensor *step2(em_tensor *x) { return em_slice(x, 0, 0, INT64_MAX, 2); }

static em_tensor *f_reshape(em_tensor *const *in, void *c) { (void)c; return em_reshape(in[0], S(4, -1)); }
static em_tensor *f_reshape_copy(em_tensor *const *in, void *c) /* [4,3,2] -> T -> [6,4] copies */
{ (void)c; return em_reshape(tr(in[0]), S(-1, 4)); }
static em_tensor *f_view(em_tensor *const *in, void *c) { (void)c; return em_view(in[0], S(6, 4)); }
static em_tensor *f_flatten(em_tensor *const *in, void *c) { (void)c; return em_flatten(in[0], 1, -1); }
static em_tensor *f_flatten_nc(em_tensor *const *in, void *c) { (void)c; return em_flatten(step2(in[0]), 0, -2); }
static em_tensor *f_squeeze(em_tensor *const *in, void *c) { (void)c; return em_squeeze(in[0], -2); }
static em_tensor *f_squeeze_noop(em_tensor *const *in, void *c) { (void)c; return em_squeeze(in[0], 0); }
static em_tensor *f_squeeze_all(em_tensor *const *in, void *c) { (void)c; return em_squeeze_all(in[0]); }
static em_tensor *f_unsqueeze(em_tensor *const *in, void *c) { (void)c; return em_unsqueeze(in[0], -1); }
static em_tensor *f_unsqueeze_nc(em_tensor *const *in, void *c) { (void)c; return em_unsqueeze(tr(in[0]), 1); }
static em_tensor *f_transpose(em_tensor *const *in, void *c) { (void)c; return em_transpose(in[0], -1, 0); }
static em_tensor *f_transpose_nc(em_tensor *const *in, void *c) { (void)c; return em_transpose(step2(in[0]), 1, 2); }
static em_tensor *f_permute(em_tensor *const *in, void *c) { (void)c; return em_permute(in[0], 3, (const int[]){2, 0, 1}); }
static em_tensor *f_permute_neg(em_tensor *const *in, void *c) { (void)c; return em_permute(in[0], 3, (const int[]){-2, -1, 0}); }
static em_tensor *f_T(em_tensor *const *in, void *c) { (void)c; return em_T(in[0]); }
static em_tensor *f_T1(em_tensor *const *in, void *c) { (void)c; return em_mul(em_T(in[0]), in[0]); }
static em_tensor *f_expand(em_tensor *const *in, void *c) { (void)c; return em_expand(in[0], S(2, 3, 4)); }
static em_tensor *f_expand_keep(em_tensor *const *in, void *c) { (void)c; return em_expand(in[0], S(-1, 5, -1)); }
static em_tensor *f_expand_nc(em_tensor *const *in, void *c) /* [1,3]^T = [3,1] strided -> [2,3,4] */
{ (void)c; return em_expand(tr(in[0]), S(2, 3, 4)); }
static em_tensor *f_narrow(em_tensor *const *in, void *c) { (void)c; return em_narrow(in[0], -1, 1, 3); }
static em_tensor *f_narrow_neg(em_tensor *const *in, void *c) { (void)c; return em_narrow(in[0], 0, -2, 2); }
static em_tensor *f_slice(em_tensor *const *in, void *c) { (void)c; return em_slice(in[0], 1, 1, -1, 2); }
static em_tensor *f_slice_neg(em_tensor *const *in, void *c) { (void)c; return em_slice(in[0], -2, -3, INT64_MAX, 1); }
static em_tensor *f_slice_nc(em_tensor *const *in, void *c) { (void)c; return em_slice(tr(in[0]), 0, 0, 5, 3); }
static em_tensor *f_slice_empty(em_tensor *const *in, void *c) /* empty slice + a used part */
{ (void)c; return em_cat((const em_tensor *const[]){em_slice(in[0], 0, 3, 3, 1), em_slice(in[0], 0, 0, 1, 1)}, 2, 0); }
static em_tensor *f_select(em_tensor *const *in, void *c) { (void)c; return em_select(in[0], -2, -1); }
static em_tensor *f_select0(em_tensor *const *in, void *c) { (void)c; return em_select(in[0], 0, 1); }
static em_tensor *f_select_nc(em_tensor *const *in, void *c) { (void)c; return em_select(step2(in[0]), 1, 2); }
static em_tensor *f_chain(em_tensor *const *in, void *c) /* transpose -> reshape -> select */
{ (void)c; return em_select(em_reshape(em_transpose(in[0], 0, 2), S(4, 6)), -1, 3); }
static em_tensor *f_chain2(em_tensor *const *in, void *c) /* permute -> slice -> flatten -> unsqueeze -> expand */
{
    (void)c;
    em_tensor *v = em_slice(em_permute(in[0], 3, (const int[]){1, 2, 0}), -1, 0, 4, 2);
    return em_expand(em_unsqueeze(em_flatten(v, 0, -1), 0), S(3, -1));
}
static em_tensor *f_chain_reuse(em_tensor *const *in, void *c) /* views of one leaf combined */
{ (void)c; return em_add(em_mul(em_select(in[0], 0, 0), em_select(in[0], 0, 1)), em_T(em_narrow(in[0], 1, 0, 2))); }
static em_tensor *f_contiguous(em_tensor *const *in, void *c) { (void)c; return em_contiguous(tr(in[0])); }
static em_tensor *f_contiguous_same(em_tensor *const *in, void *c) { (void)c; return em_mul(em_contiguous(in[0]), in[0]); }
static em_tensor *f_clone(em_tensor *const *in, void *c) { (void)c; return em_mul(em_clone(step2(in[0])), in[1]); }
static em_tensor *f_to(em_tensor *const *in, void *c)
{
    em_device *dev = c;
    em_tensor *y = em_tensor_to(em_mul(in[0], in[0]), dev);
    return em_tensor_to(em_exp(y), tu_dev);
}
/* two inputs through views */
static em_tensor *f_two(em_tensor *const *in, void *c)
{ (void)c; return em_mul(em_transpose(in[0], 0, 1), em_expand(em_unsqueeze(in[1], 0), S(4, 3))); }

/* second-order: a nonlinearity around the view so the formulas meet again */
static em_tensor *g_reshape(em_tensor *const *in, void *c) { (void)c; em_tensor *v = em_reshape(tr(in[0]), S(-1)); return em_mul(v, v); }
static em_tensor *g_transpose(em_tensor *const *in, void *c) { (void)c; return em_mul(em_transpose(in[0], 0, 1), in[1]); }
static em_tensor *g_expand(em_tensor *const *in, void *c) { (void)c; em_tensor *v = em_expand(in[0], S(2, 3, 4)); return em_mul(v, em_sin(v)); }
static em_tensor *g_slice(em_tensor *const *in, void *c) { (void)c; em_tensor *v = em_slice(in[0], -1, 1, 6, 2); return em_mul(v, v); }
static em_tensor *g_select(em_tensor *const *in, void *c) { (void)c; em_tensor *v = em_select(in[0], 1, -1); return em_mul(em_square(v), in[1]); }
static em_tensor *g_chain(em_tensor *const *in, void *c)
{ (void)c; em_tensor *v = em_select(em_reshape(em_permute(in[0], 3, (const int[]){2, 0, 1}), S(4, 6)), 0, 2); return em_mul(v, em_exp(v)); }

typedef struct gc_case {
    const char *label;
    gc_fn fn;
    int n;
    int ndim[2];
    int64_t shape[2][4];
} gc_case;

static void run_cases(const gc_case *cs, int count, bool second)
{
    for (int k = 0; k < count; k++) {
        const gc_case *c = &cs[k];
        em_tensor *in[2] = {0};
        for (int i = 0; i < c->n; i++) in[i] = gc_leaf(c->ndim[i], c->shape[i], -1.0, 1.0);
        if (second) gradgradcheck(c->label, c->fn, NULL, c->n, in);
        else gradcheck(c->label, c->fn, NULL, c->n, in);
        for (int i = 0; i < c->n; i++) em_tensor_release(in[i]);
    }
}

static void test_gradcheck_views(void)
{
    static const gc_case cases[] = {
        {"reshape [2,3,4]->[4,-1]", f_reshape, 1, {3}, {{2, 3, 4}}},
        {"reshape of transpose (copies)", f_reshape_copy, 1, {3}, {{4, 3, 2}}},
        {"view [2,3,4]->[6,4]", f_view, 1, {3}, {{2, 3, 4}}},
        {"flatten(1,-1)", f_flatten, 1, {3}, {{2, 3, 4}}},
        {"flatten(0,-2) of step-2 slice", f_flatten_nc, 1, {3}, {{4, 3, 2}}},
        {"squeeze(-2)", f_squeeze, 1, {3}, {{3, 1, 4}}},
        {"squeeze(0) of size 3 (no-op)", f_squeeze_noop, 1, {2}, {{3, 4}}},
        {"squeeze_all [1,3,1,2]", f_squeeze_all, 1, {4}, {{1, 3, 1, 2}}},
        {"unsqueeze(-1)", f_unsqueeze, 1, {2}, {{3, 4}}},
        {"unsqueeze(1) of transpose", f_unsqueeze_nc, 1, {2}, {{3, 4}}},
        {"transpose(-1,0)", f_transpose, 1, {3}, {{2, 3, 4}}},
        {"transpose(1,2) of step-2 slice", f_transpose_nc, 1, {3}, {{4, 3, 2}}},
        {"permute {2,0,1}", f_permute, 1, {3}, {{2, 3, 4}}},
        {"permute {-2,-1,0}", f_permute_neg, 1, {3}, {{2, 3, 4}}},
        {"T [3,4]", f_T, 1, {2}, {{3, 4}}},
        {"T [5] * x", f_T1, 1, {1}, {{5}}},
        {"expand [3,1]->[2,3,4]", f_expand, 1, {2}, {{3, 1}}},
        {"expand [2,1,3]->[-1,5,-1]", f_expand_keep, 1, {3}, {{2, 1, 3}}},
        {"expand of transposed [1,3]", f_expand_nc, 1, {2}, {{1, 3}}},
        {"narrow(-1,1,3)", f_narrow, 1, {2}, {{3, 5}}},
        {"narrow(0,-2,2)", f_narrow_neg, 1, {2}, {{4, 3}}},
        {"slice(1,1,-1,2)", f_slice, 1, {2}, {{3, 7}}},
        {"slice(-2,-3,end)", f_slice_neg, 1, {3}, {{5, 2, 2}}},
        {"slice(0,0,5,3) of transpose", f_slice_nc, 1, {2}, {{3, 6}}},
        {"empty slice + slice", f_slice_empty, 1, {2}, {{3, 2}}},
        {"select(-2,-1)", f_select, 1, {3}, {{3, 4, 2}}},
        {"select(0,1)", f_select0, 1, {2}, {{3, 4}}},
        {"select(1,2) of step-2 slice", f_select_nc, 1, {3}, {{3, 4, 2}}},
        {"chain transpose>reshape>select", f_chain, 1, {3}, {{2, 3, 4}}},
        {"chain permute>slice>flatten>expand", f_chain2, 1, {3}, {{4, 2, 3}}},
        {"views of one leaf combined", f_chain_reuse, 1, {2}, {{2, 2}}},
        {"contiguous of transpose", f_contiguous, 1, {2}, {{3, 4}}},
        {"contiguous of contiguous", f_contiguous_same, 1, {2}, {{3, 4}}},
        {"clone of step-2 slice", f_clone, 2, {2, 2}, {{4, 3}, {2, 3}}},
        {"transpose x expand(unsqueeze)", f_two, 2, {2, 1}, {{3, 4}, {3}}},
    };
    run_cases(cases, (int)(sizeof cases / sizeof *cases), false);
}

static void test_gradgradcheck_views(void)
{
    static const gc_case cases[] = {
        {"reshape of transpose, squared", g_reshape, 1, {2}, {{3, 4}}},
        {"transpose * y", g_transpose, 2, {2, 2}, {{3, 4}, {4, 3}}},
        {"expand, x sin x", g_expand, 1, {2}, {{3, 1}}},
        {"slice step 2, squared", g_slice, 1, {2}, {{3, 7}}},
        {"select(1,-1), squared * y", g_select, 2, {2, 1}, {{3, 4}, {3}}},
        {"permute>reshape>select, v exp v", g_chain, 1, {3}, {{2, 3, 4}}},
    };
    run_cases(cases, (int)(sizeof cases / sizeof *cases), true);
}

/* tensor_to onto every device (the same one included) and back. */
static void test_tensor_to(void)
{
    for (int k = 0; k < em_device_count(); k++) {
        em_device *dev = em_device_get(k);
        char label[96];
        snprintf(label, sizeof label, "tensor_to %s and back", em_device_name(dev));
        em_tensor *x = gc_leaf(S(2, 3), -1.0, 1.0);
        gradcheck(label, f_to, dev, 1, &x);
        em_tensor_release(x);
    }
    /* onto its own device: the tensor itself, nothing recorded */
    em_scope_begin();
    em_tensor *x = gc_leaf(S(3), -1.0, 1.0);
    em_tensor *y = em_tensor_to(x, tu_dev);
    CHECK(y == x);
    CHECK(em_is_leaf(y));
    em_tensor *z = em_contiguous(x);
    CHECK(z == x);
    CHECK(em_is_leaf(z));
    em_scope_end();
}

/* ---------------- casts -------------------------------------------------- */

static void test_cast(void)
{
    em_scope_begin();
    em_tensor *x = gc_leaf(S(2, 3), -2.0, 2.0);
    /* f64 -> f32 -> f64: gradient of sum is exactly ones, in f64 */
    em_tensor *y = em_cast(em_cast(x, EM_F32), EM_F64);
    CHECK(em_requires_grad(y));
    CHECK(em_grad_fn_name(y) && !strcmp(em_grad_fn_name(y), "cast"));
    em_tensor *g = NULL;
    em_tensor *l = em_mul_scalar(y, 3.0), *ones = em_ones_like(l);
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){l}, (const em_tensor *const[]){ones},
                              1, (const em_tensor *const[]){x}, &g, false, false, false));
    CHECK(g && em_tensor_dtype(g) == EM_F64);
    double gv[6] = {0};
    if (g) CHECK_OK(em_tensor_read_f64(g, gv, 6));
    bool all3 = true;
    for (int i = 0; i < 6; i++) all3 &= gv[i] == 3.0;
    CHECKF(all3, "cast chain gradient %g %g %g %g %g %g, want 3", gv[0], gv[1], gv[2], gv[3],
           gv[4], gv[5]);
    printf("cast f64->f32->f64: gradient exactly 3 everywhere: %s\n", all3 ? "ok" : "FAIL");
    /* an f32 leaf through f64 ops gets an f32 gradient */
    em_tensor *x32 = em_cast(x, EM_F32);
    em_tensor *leaf32 = em_detach(x32);
    em_requires_grad_(leaf32, true);
    em_tensor *l2 = em_square(em_cast(leaf32, EM_F64));
    em_tensor *g32 = NULL;
    CHECK_OK(em_autograd_grad(1, (const em_tensor *const[]){l2},
                              (const em_tensor *const[]){em_ones_like(l2)}, 1,
                              (const em_tensor *const[]){leaf32}, &g32, false, false, false));
    CHECK(g32 && em_tensor_dtype(g32) == EM_F32);
    float f[6] = {0}, xv[6] = {0};
    if (g32) em_tensor_read(g32, f, sizeof f);
    em_tensor_read(leaf32, xv, sizeof xv);
    bool ok = true;
    for (int i = 0; i < 6; i++) ok &= f[i] == 2.0f * xv[i];
    CHECKF(ok, "f32 leaf through f64: gradient is not 2x");
    /* to an integer or bool dtype: no gradient */
    em_tensor *xi = em_cast(x, EM_I64), *xb = em_cast(x, EM_BOOL);
    CHECK(xi && !em_requires_grad(xi) && em_is_leaf(xi));
    CHECK(xb && !em_requires_grad(xb) && em_is_leaf(xb));
    /* to the same dtype: x itself */
    CHECK(em_cast(x, EM_F64) == x);
    em_scope_end();
}

/* ---------------- graph facts -------------------------------------------- */

static void check_name(em_tensor *t, const char *want)
{
    const char *got = em_grad_fn_name(t);
    CHECKF(t && em_requires_grad(t) && !em_is_leaf(t) && got && !strcmp(got, want),
           "grad_fn %s, want %s (requires_grad %d, leaf %d)", got ? got : "(none)", want,
           em_requires_grad(t), em_is_leaf(t));
}

static void test_view_nodes(void)
{
    em_scope_begin();
    em_tensor *x = gc_leaf(S(2, 3, 4), -1.0, 1.0);
    CHECK(em_is_leaf(x));
    check_name(em_reshape(x, S(6, 4)), "reshape");
    check_name(em_reshape(em_transpose(x, 0, 1), S(-1)), "reshape");
    check_name(em_view(x, S(24)), "view");
    check_name(em_flatten(x, 0, -1), "reshape");
    check_name(em_transpose(x, 0, 2), "transpose");
    check_name(em_permute(x, 3, (const int[]){1, 2, 0}), "permute");
    check_name(em_squeeze(em_unsqueeze(x, 0), 0), "squeeze");
    check_name(em_squeeze_all(x), "squeeze_all");
    check_name(em_unsqueeze(x, 1), "unsqueeze");
    check_name(em_expand(em_select(x, 0, 0), S(5, 3, 4)), "expand");
    check_name(em_narrow(x, 2, 1, 2), "slice");
    check_name(em_slice(x, 1, 0, 3, 2), "slice");
    check_name(em_select(x, 1, 2), "select");
    check_name(em_T(em_select(x, 0, 1)), "transpose");
    check_name(em_T(em_select(em_select(x, 0, 1), 0, 0)), "T");
    check_name(em_contiguous(em_transpose(x, 0, 1)), "contiguous");
    check_name(em_clone(x), "clone");
    check_name(em_cast(x, EM_F32), "cast");
    /* views share storage with the leaf */
    em_tensor *v = em_transpose(x, 0, 1);
    CHECK(em_tensor_shares_storage(v, x));
    /* no recording with grad mode off */
    bool prev = em_set_grad_enabled(false);
    em_tensor *nv = em_reshape(x, S(-1));
    CHECK(nv && !em_requires_grad(nv) && em_is_leaf(nv));
    em_set_grad_enabled(prev);
    /* nor from a tensor that does not require grad */
    em_tensor *plain = em_zeros(EM_F64, S(2, 2), tu_dev);
    em_tensor *pv = em_transpose(plain, 0, 1);
    CHECK(pv && !em_requires_grad(pv) && em_is_leaf(pv));
    /* detach: a leaf view with no grad, on the same storage */
    em_tensor *d = em_detach(em_transpose(x, 0, 1));
    CHECK(d && !em_requires_grad(d) && em_is_leaf(d) && em_tensor_shares_storage(d, x));
    em_tensor *dv = em_reshape(d, S(-1));
    CHECK(dv && !em_requires_grad(dv));
    /* backward into a leaf through a view accumulates in .grad */
    em_tensor *l = em_select(em_transpose(x, 0, 2), 1, 1);
    CHECK_OK(em_backward(l, em_ones_like(l), false, false));
    em_tensor *gx = em_grad(x);
    double gv[24] = {0};
    if (gx) em_tensor_read_f64(gx, gv, 24);
    bool ok = gx != NULL;
    for (int i = 0; i < 2 && ok; i++) /* x[i][1][k] gets 1 */
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) ok &= gv[i * 12 + j * 4 + k] == (j == 1 ? 1.0 : 0.0);
    CHECKF(ok, "sum(select(transpose(x))) gradient");
    em_set_grad(x, NULL);
    em_scope_end();
}

/* ---------------- in-place ops -------------------------------------------- */

static void test_inplace_refused(void)
{
    em_scope_begin();
    em_tensor *x = gc_leaf(S(2, 3), -1.0, 1.0);
    em_tensor *plain = em_ones(EM_F64, S(2, 3), tu_dev);
    CHECK_STATUS(em_copy_(x, plain), EM_ERR_STATE);
    CHECK_STATUS(em_fill_(x, 2.0), EM_ERR_STATE);
    CHECK_STATUS(em_zero_(x), EM_ERR_STATE);
    /* through a view of the leaf (which requires grad too) */
    CHECK_STATUS(em_fill_(em_select(x, 0, 1), 2.0), EM_ERR_STATE);
    /* copying a tensor that requires grad into a plain one */
    CHECK_STATUS(em_copy_(plain, x), EM_ERR_STATE);
    em_clear_error();
    double v[6];
    em_tensor_read_f64(plain, v, 6);
    CHECKF(v[0] == 1.0 && v[5] == 1.0, "a refused copy_ changed the tensor");
    /* with grad mode off they work (and bump the version: a saved x fails) */
    em_tensor *y = em_mul(x, x); /* saves x */
    bool prev = em_set_grad_enabled(false);
    CHECK_OK(em_copy_(x, plain));
    CHECK_OK(em_fill_(x, 2.0));
    CHECK_OK(em_zero_(x));
    CHECK_OK(em_fill_(em_select(x, 0, 1), 5.0));
    CHECK_OK(em_copy_(plain, x));
    em_set_grad_enabled(prev);
    em_tensor_read_f64(x, v, 6);
    CHECKF(v[0] == 0 && v[2] == 0 && v[3] == 5 && v[5] == 5, "no-grad in-place results");
    CHECK_STATUS(em_backward(y, em_ones_like(y), false, false), EM_ERR_STATE);
    em_scope_end();
}

int main(void)
{
    tu_init("test_grad_views");
    test_gradcheck_views();
    test_gradgradcheck_views();
    test_tensor_to();
    test_cast();
    test_view_nodes();
    test_inplace_refused();
    return tu_finish();
}
