/*
 * test_grad_data.c — autograd through the data movement ops:
 *   - gradcheck (float64, central differences) of cat (3 inputs, only some
 *     requiring grad, one of them an integer tensor, negative dims,
 *     non-contiguous parts), stack along a middle and a negative dim,
 *     index_select / gather / embedding with duplicate indices (which must
 *     accumulate), scatter_add into t and from src (duplicates, src larger
 *     than index);
 *   - gradgradcheck of cat, index_select, gather and scatter_add;
 *   - node names; mixed-precision cat gives each input a gradient of its
 *     own dtype; one_hot carries no gradient;
 *   - em_scatter_add_ refuses a tensor requiring grad while grad mode is on
 *     (EM_ERR_STATE), and works with it off.
 */
#include "test_util.h"
#include "gradcheck.h"

#define S(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((const int64_t[]){__VA_ARGS__})

/* Constants the functions use (no grad): indices and plain tensors. */
static em_tensor *k_plain;     /* f64 [2,3], requires no grad           */
static em_tensor *k_int;       /* i64 [2,2]                             */
static em_tensor *k_idx_dup;   /* i64 [5]: 2 0 2 2 1 (duplicates)       */
static em_tensor *k_idx32;     /* i32 [3]: 3 3 0                        */
static em_tensor *k_gidx;      /* i64 [3,2]: gather along dim 1 of [3,4] */
static em_tensor *k_gidx0;     /* i64 [2,4]: gather along dim -2 (0)    */
static em_tensor *k_sidx;      /* i64 [2,3]: scatter along dim 0 of [3,3] */
static em_tensor *k_emb_idx;   /* i64 [2,3] rows of a [4,3] weight      */

static em_tensor *ints(int ndim, const int64_t *shape, const int64_t *v, em_dtype dt)
{
    em_tensor *t = em_tensor_from_ints(v, ndim, shape);
    em_tensor *c = em_tensor_to(em_cast(t, dt), tu_dev);
    em_scope_keep(c);
    return c;
}

static void make_constants(void)
{
    em_scope_begin();
    k_plain = em_scope_keep(em_tensor_to(em_tensor_from_doubles((const double[]){0.5, -1, 2, 3, -0.25, 4}, S(2, 3)), tu_dev));
    k_int = ints(S(2, 2), (const int64_t[]){1, -2, 3, 7}, EM_I64);
    k_idx_dup = ints(S(5), (const int64_t[]){2, 0, 2, 2, 1}, EM_I64);
    k_idx32 = ints(S(3), (const int64_t[]){3, 3, 0}, EM_I32);
    k_gidx = ints(S(3, 2), (const int64_t[]){0, 0, 3, 1, 2, 2}, EM_I64);
    k_gidx0 = ints(S(2, 4), (const int64_t[]){2, 0, 2, 1, 2, 2, 0, 1}, EM_I64);
    k_sidx = ints(S(2, 3), (const int64_t[]){0, 2, 2, 0, 2, 1}, EM_I64);
    k_emb_idx = ints(S(2, 3), (const int64_t[]){1, 3, 1, 0, 1, 3}, EM_I64);
    em_scope_end();
}

static void free_constants(void)
{
    em_tensor *all[] = {k_plain, k_int, k_idx_dup, k_idx32, k_gidx, k_gidx0, k_sidx, k_emb_idx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) em_tensor_release(all[i]);
}

/* ---------------- the functions under test ------------------------------ */

static em_tensor *f_cat3_some(em_tensor *const *in, void *c) /* a, plain, b along dim -1 */
{ (void)c; return em_cat((const em_tensor *const[]){in[0], k_plain, in[1]}, 3, -1); }
static em_tensor *f_cat3_int(em_tensor *const *in, void *c) /* a, int (promoted), b^T along 0 */
{ (void)c; return em_cat((const em_tensor *const[]){in[0], k_int, em_transpose(in[1], 0, 1)}, 3, 0); }
static em_tensor *f_cat_nc(em_tensor *const *in, void *c) /* step-2 slices along dim 1 */
{
    (void)c;
    return em_cat((const em_tensor *const[]){em_slice(in[0], 1, 0, INT64_MAX, 2), in[1],
                                             em_slice(in[0], 1, 1, INT64_MAX, 2)}, 3, 1);
}
static em_tensor *f_cat_same(em_tensor *const *in, void *c) /* one input three times */
{ (void)c; return em_cat((const em_tensor *const[]){in[0], in[0], em_mul(in[0], in[0])}, 3, -2); }
static em_tensor *f_stack_mid(em_tensor *const *in, void *c)
{ (void)c; return em_stack((const em_tensor *const[]){in[0], k_plain, in[1]}, 3, 1); }
static em_tensor *f_stack_neg(em_tensor *const *in, void *c)
{ (void)c; return em_stack((const em_tensor *const[]){em_transpose(in[0], 0, 1), in[1]}, 2, -1); }
static em_tensor *f_isel0(em_tensor *const *in, void *c) { (void)c; return em_index_select(in[0], 0, k_idx_dup); }
static em_tensor *f_isel_neg(em_tensor *const *in, void *c) { (void)c; return em_index_select(in[0], -1, k_idx32); }
static em_tensor *f_isel_nc(em_tensor *const *in, void *c) /* of a transpose, dim 1 */
{ (void)c; return em_index_select(em_transpose(in[0], 0, 1), 1, k_idx_dup); }
static em_tensor *f_isel_mid(em_tensor *const *in, void *c) { (void)c; return em_index_select(in[0], 1, k_idx_dup); }
static em_tensor *f_gather1(em_tensor *const *in, void *c) { (void)c; return em_gather(in[0], 1, k_gidx); }
static em_tensor *f_gather_neg(em_tensor *const *in, void *c) { (void)c; return em_gather(in[0], -2, k_gidx0); }
static em_tensor *f_gather_nc(em_tensor *const *in, void *c) /* of a step-2 slice */
{ (void)c; return em_gather(em_slice(in[0], 0, 0, INT64_MAX, 2), -2, k_gidx0); }
static em_tensor *f_scatter(em_tensor *const *in, void *c) /* t [3,3], src [2,3] */
{ (void)c; return em_scatter_add(in[0], 0, k_sidx, in[1]); }
static em_tensor *f_scatter_big(em_tensor *const *in, void *c) /* src [3,4] larger than index */
{ (void)c; return em_scatter_add(in[0], -2, k_sidx, in[1]); }
static em_tensor *f_scatter_src(em_tensor *const *in, void *c) /* only src requires grad */
{ (void)c; return em_scatter_add(em_zeros(EM_F64, S(3, 3), tu_dev), 0, k_sidx, em_transpose(in[0], 0, 1)); }
static em_tensor *f_embedding(em_tensor *const *in, void *c) { (void)c; return em_embedding(in[0], k_emb_idx); }

/* second-order: a nonlinearity so the formulas meet again */
static em_tensor *g_cat(em_tensor *const *in, void *c)
{ (void)c; em_tensor *v = em_cat((const em_tensor *const[]){in[0], k_plain, in[1]}, 3, 0); return em_mul(v, em_sin(v)); }
static em_tensor *g_isel(em_tensor *const *in, void *c)
{ (void)c; em_tensor *v = em_index_select(in[0], 0, k_idx_dup); return em_mul(v, v); }
static em_tensor *g_gather(em_tensor *const *in, void *c)
{ (void)c; em_tensor *v = em_gather(in[0], 1, k_gidx); return em_mul(em_exp(v), in[1]); }
static em_tensor *g_scatter(em_tensor *const *in, void *c)
{ (void)c; em_tensor *v = em_scatter_add(in[0], 0, k_sidx, in[1]); return em_mul(v, v); }
static em_tensor *g_embedding(em_tensor *const *in, void *c)
{ (void)c; em_tensor *v = em_embedding(in[0], k_emb_idx); return em_mul(v, em_tanh(v)); }

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

static void test_gradcheck_data(void)
{
    static const gc_case cases[] = {
        {"cat(a, plain, b, -1)", f_cat3_some, 2, {2, 2}, {{2, 2}, {2, 4}}},
        {"cat(a, int, b^T, 0) promoted", f_cat3_int, 2, {2, 2}, {{3, 2}, {2, 1}}},
        {"cat of step-2 slices, dim 1", f_cat_nc, 2, {2, 2}, {{2, 5}, {2, 2}}},
        {"cat(x, x, x*x, -2)", f_cat_same, 1, {2}, {{2, 3}}},
        {"stack(a, plain, b, 1)", f_stack_mid, 2, {2, 2}, {{2, 3}, {2, 3}}},
        {"stack(a^T, b, -1)", f_stack_neg, 2, {2, 2}, {{3, 2}, {2, 3}}},
        {"index_select(0, dup idx)", f_isel0, 1, {2}, {{3, 4}}},
        {"index_select(-1, i32 dup idx)", f_isel_neg, 1, {3}, {{2, 2, 4}}},
        {"index_select(1) of transpose", f_isel_nc, 1, {2}, {{3, 2}}},
        {"index_select(1) middle dim", f_isel_mid, 1, {3}, {{2, 3, 2}}},
        {"gather(1, dup idx)", f_gather1, 1, {2}, {{3, 4}}},
        {"gather(-2, dup idx)", f_gather_neg, 1, {2}, {{3, 4}}},
        {"gather(-2) of step-2 slice", f_gather_nc, 1, {2}, {{5, 4}}},
        {"scatter_add(t, 0, dup idx, src)", f_scatter, 2, {2, 2}, {{3, 3}, {2, 3}}},
        {"scatter_add src larger than idx", f_scatter_big, 2, {2, 2}, {{3, 3}, {3, 4}}},
        {"scatter_add(zeros, src^T)", f_scatter_src, 1, {2}, {{3, 2}}},
        {"embedding [4,3] dup idx [2,3]", f_embedding, 1, {2}, {{4, 3}}},
    };
    run_cases(cases, (int)(sizeof cases / sizeof *cases), false);
}

static void test_gradgradcheck_data(void)
{
    static const gc_case cases[] = {
        {"cat(a, plain, b, 0), v sin v", g_cat, 2, {2, 2}, {{1, 3}, {3, 3}}},
        {"index_select dup idx, squared", g_isel, 1, {2}, {{3, 2}}},
        {"gather dup idx, exp * y", g_gather, 2, {2, 2}, {{3, 4}, {3, 2}}},
        {"scatter_add, squared", g_scatter, 2, {2, 2}, {{3, 3}, {2, 3}}},
        {"embedding, v tanh v", g_embedding, 1, {2}, {{4, 3}}},
    };
    run_cases(cases, (int)(sizeof cases / sizeof *cases), true);
}

/* ---------------- graph facts -------------------------------------------- */

static void check_name(em_tensor *t, const char *want)
{
    const char *got = em_grad_fn_name(t);
    CHECKF(t && em_requires_grad(t) && !em_is_leaf(t) && got && !strcmp(got, want),
           "grad_fn %s, want %s", got ? got : "(none)", want);
}

static void test_nodes(void)
{
    em_scope_begin();
    em_tensor *x = gc_leaf(S(3, 3), -1.0, 1.0), *x34 = gc_leaf(S(3, 4), -1.0, 1.0);
    em_tensor *w = gc_leaf(S(4, 3), -1.0, 1.0);
    check_name(em_cat((const em_tensor *const[]){x, k_plain}, 2, 0), "cat");
    check_name(em_stack((const em_tensor *const[]){x, x}, 2, 1), "cat"); /* unsqueeze + cat */
    check_name(em_index_select(x, 1, k_idx_dup), "index_select");
    check_name(em_gather(x34, 1, k_gidx), "gather");
    check_name(em_scatter_add(x, 0, k_sidx, k_plain), "scatter_add");
    check_name(em_embedding(w, k_emb_idx), "reshape"); /* reshape of index_select */
    /* nothing requires grad: nothing recorded */
    em_tensor *c = em_cat((const em_tensor *const[]){k_plain, k_plain}, 2, 0);
    CHECK(c && !em_requires_grad(c) && em_is_leaf(c));
    em_tensor *oh = em_one_hot(k_idx_dup, 4);
    CHECK(oh && !em_requires_grad(oh));
    /* grad mode off: nothing recorded */
    bool prev = em_set_grad_enabled(false);
    em_tensor *g = em_gather(x34, 1, k_gidx);
    CHECK(g && !em_requires_grad(g));
    em_set_grad_enabled(prev);
    em_scope_end();
}

/* cat of an f32 and an f64 leaf: f64 result, each gradient in its own dtype. */
static void test_cat_mixed_dtypes(void)
{
    em_scope_begin();
    em_tensor *a = em_tensor_to(em_tensor_from_floats((const float[]){1, 2, 3}, S(3)), tu_dev);
    em_tensor *b = gc_leaf(S(2), -1.0, 1.0);
    em_requires_grad_(a, true);
    em_tensor *y = em_cat((const em_tensor *const[]){a, b}, 2, 0);
    CHECK(em_tensor_dtype(y) == EM_F64);
    em_tensor *w = em_tensor_to(em_tensor_from_doubles((const double[]){1, 2, 3, 4, 5}, S(5)), tu_dev);
    CHECK_OK(em_backward(y, w, false, false));
    em_tensor *ga = em_grad(a), *gb = em_grad(b);
    CHECK(ga && em_tensor_dtype(ga) == EM_F32 && gb && em_tensor_dtype(gb) == EM_F64);
    double va[3] = {0}, vb[2] = {0};
    if (ga) em_tensor_read_f64(ga, va, 3);
    if (gb) em_tensor_read_f64(gb, vb, 2);
    CHECKF(va[0] == 1 && va[1] == 2 && va[2] == 3 && vb[0] == 4 && vb[1] == 5,
           "mixed cat gradients %g %g %g | %g %g", va[0], va[1], va[2], vb[0], vb[1]);
    em_set_grad(a, NULL);
    em_set_grad(b, NULL);
    em_scope_end();
}

/* index_select with duplicates: the gradient counts each use. */
static void test_duplicates_accumulate(void)
{
    em_scope_begin();
    em_tensor *x = gc_leaf(S(3, 2), -1.0, 1.0);
    em_tensor *y = em_index_select(x, 0, k_idx_dup); /* rows 2 0 2 2 1 */
    CHECK_OK(em_backward(y, em_ones_like(y), false, false));
    double g[6] = {0};
    em_tensor *gx = em_grad(x);
    if (gx) em_tensor_read_f64(gx, g, 6);
    CHECKF(g[0] == 1 && g[1] == 1 && g[2] == 1 && g[3] == 1 && g[4] == 3 && g[5] == 3,
           "index_select duplicate counts %g %g %g %g %g %g", g[0], g[1], g[2], g[3], g[4], g[5]);
    em_set_grad(x, NULL);
    em_scope_end();
}

static void test_scatter_add_inplace_refused(void)
{
    em_scope_begin();
    em_tensor *x = gc_leaf(S(3, 3), -1.0, 1.0);
    em_tensor *plain = em_zeros(EM_F64, S(3, 3), tu_dev);
    em_tensor *src = gc_leaf(S(2, 3), -1.0, 1.0);
    CHECK_STATUS(em_scatter_add_(x, 0, k_sidx, k_plain), EM_ERR_STATE);
    CHECK_STATUS(em_scatter_add_(plain, 0, k_sidx, src), EM_ERR_STATE);
    bool prev = em_set_grad_enabled(false);
    CHECK_OK(em_scatter_add_(x, 0, k_sidx, k_plain));
    CHECK_OK(em_scatter_add_(plain, 0, k_sidx, src));
    em_set_grad_enabled(prev);
    CHECK(!em_requires_grad(plain));
    em_scope_end();
}

int main(void)
{
    tu_init("test_grad_data");
    make_constants();
    test_gradcheck_data();
    test_gradgradcheck_data();
    test_nodes();
    test_cat_mixed_dtypes();
    test_duplicates_accumulate();
    test_scatter_add_inplace_refused();
    free_constants();
    return tu_finish();
}
