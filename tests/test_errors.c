/*
 * test_errors.c — bad input for every op family: shape mismatches give
 * EM_ERR_SHAPE with a message naming both shapes, dtype mismatches
 * EM_ERR_DTYPE, NULL tensors EM_ERR_NULL_ARG (only when nothing is pending:
 * the first-error rule), bad dims EM_ERR_INVALID_ARG, indices out of range
 * EM_ERR_INDEX; em_clear_error / em_last_status / em_status_str; and that
 * failing calls leak nothing (glibc heap in use before/after many failures).
 * Not for scope misuse (test_scope.c) or loader failures (tests/loader/).
 */
#include "test_util.h"

/* Under AddressSanitizer (EMBER_SANITIZE=ON) an impossible allocation must
 * return NULL (so the library can report EM_ERR_OUT_OF_MEMORY) instead of
 * aborting the test. Unused in a normal build. */
__attribute__((used)) const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
__attribute__((used)) const char *__tsan_default_options(void);
__attribute__((used)) const char *__tsan_default_options(void) { return "allocator_may_return_null=1"; }

static em_tensor *T23, *T4, *T45, *TI64, *TI, *TB, *TE;

/* The op must fail with `want`; the message must contain each needle. */
#define CHECK_FAILS_MSG(expr, want, ...)                                       \
    do {                                                                       \
        em_clear_error();                                                      \
        em_tensor *r_ = (expr);                                                \
        em_status st_ = em_last_status();                                      \
        const char *needles_[] = {__VA_ARGS__, NULL};                          \
        int has_ = 1;                                                          \
        for (int k_ = 0; needles_[k_]; k_++)                                   \
            if (!strstr(em_last_error(), needles_[k_])) has_ = 0;              \
        CHECKF(r_ == NULL && st_ == (want) && has_,                            \
               "%s: result %s, status %s (want %s), message \"%s\"", #expr,    \
               r_ ? "non-NULL" : "NULL", em_status_str(st_),                   \
               em_status_str(want), em_last_error());                          \
        em_tensor_release(r_);                                                 \
        em_clear_error();                                                      \
    } while (0)

/* The op must fail with one of two statuses (where the API is ambiguous). */
#define CHECK_FAILS2(expr, w1, w2)                                             \
    do {                                                                       \
        em_clear_error();                                                      \
        em_tensor *r_ = (expr);                                                \
        em_status st_ = em_last_status();                                      \
        CHECKF(r_ == NULL && (st_ == (w1) || st_ == (w2)),                     \
               "%s: result %s, status %s (want %s or %s)", #expr,              \
               r_ ? "non-NULL" : "NULL", em_status_str(st_), em_status_str(w1),\
               em_status_str(w2));                                             \
        em_tensor_release(r_);                                                 \
        em_clear_error();                                                      \
    } while (0)

static void setup(void)
{
    T23 = em_zeros(EM_F32, EM_SHAPE(2, 3), NULL);
    T4 = em_zeros(EM_F32, EM_SHAPE(4), NULL);
    T45 = em_zeros(EM_F32, EM_SHAPE(4, 5), NULL);
    TI64 = em_zeros(EM_I64, EM_SHAPE(2, 3), NULL);
    int64_t iv[2] = {0, 1};
    TI = em_tensor_from_ints(iv, EM_SHAPE(2));
    TB = em_zeros(EM_BOOL, EM_SHAPE(2, 3), NULL);
    TE = em_zeros(EM_F32, EM_SHAPE(0, 3), NULL);
    CHECK(T23 && T4 && T45 && TI64 && TI && TB && TE);
}

/* ------------------------------------------------------------------------ */
/* Shapes                                                                    */
/* ------------------------------------------------------------------------ */

static void test_shape_errors(void)
{
    CHECK_FAILS_MSG(em_add(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_sub(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_mul(T4, T23), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_div(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_pow(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_maximum(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_minimum(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_eq(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_ne(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_lt(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_le(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_gt(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_ge(T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_where(TB, T23, T4), EM_ERR_SHAPE, "[2,3]", "[4]");
    em_tensor *b4 = em_zeros(EM_BOOL, EM_SHAPE(4), NULL);
    CHECK_FAILS_MSG(em_masked_fill(T23, b4, 1), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_STATUS(em_masked_fill_(T23, b4, 1), EM_ERR_SHAPE);
    em_tensor_release(b4);
    /* the op name is in the message */
    CHECK_FAILS_MSG(em_add(T23, T4), EM_ERR_SHAPE, "add");
    CHECK_FAILS_MSG(em_matmul(T23, T45), EM_ERR_SHAPE, "[2,3]", "[4,5]");
    CHECK_FAILS_MSG(em_matmul(T4, T23), EM_ERR_SHAPE, "[4]", "[2,3]");
    em_tensor *b3 = em_zeros(EM_F32, EM_SHAPE(2, 2, 3), NULL), *b4x = em_zeros(EM_F32, EM_SHAPE(3, 3, 4), NULL);
    CHECK_FAILS_MSG(em_matmul(b3, b4x), EM_ERR_SHAPE, "[2,2,3]", "[3,3,4]"); /* batch 2 vs 3 */
    em_tensor_release(b3);
    em_tensor_release(b4x);
    CHECK_FAILS_MSG(em_linear(T23, T45, NULL), EM_ERR_SHAPE, "[2,3]", "[4,5]");
    em_tensor *w53 = em_zeros(EM_F32, EM_SHAPE(5, 3), NULL);
    CHECK_FAILS_MSG(em_linear(T23, w53, T4), EM_ERR_SHAPE, "[4]"); /* bias [4] for out 5 */
    em_tensor_release(w53);
    em_tensor *c = em_zeros(EM_F32, EM_SHAPE(3, 3), NULL), *k35 = em_zeros(EM_F32, EM_SHAPE(3, 5), NULL);
    CHECK_FAILS_MSG(em_addmm(c, T23, k35), EM_ERR_SHAPE, "[3,3]", "[2,3]", "[3,5]");
    CHECK_FAILS_MSG(em_addmm(T23, T23, T45), EM_ERR_SHAPE, "[2,3]", "[4,5]");
    em_tensor_release(c);
    em_tensor_release(k35);
    const em_tensor *pair[2] = {T23, T45};
    CHECK_FAILS_MSG(em_cat(pair, 2, 0), EM_ERR_SHAPE, "[2,3]", "[4,5]");
    CHECK_FAILS_MSG(em_stack(pair, 2, 0), EM_ERR_SHAPE, "[2,3]", "[4,5]");
    const em_tensor *pair2[2] = {T23, T4};
    CHECK_FAILS(em_cat(pair2, 2, 0), EM_ERR_SHAPE); /* different ndim */
    CHECK_FAILS_MSG(em_reshape(T23, EM_SHAPE(4)), EM_ERR_SHAPE, "[2,3]", "[4]");
    CHECK_FAILS_MSG(em_view(T23, EM_SHAPE(5, -1)), EM_ERR_SHAPE, "[2,3]");
    CHECK_FAILS_MSG(em_expand(T23, EM_SHAPE(4, 3)), EM_ERR_SHAPE, "[2,3]", "[4,3]");
    CHECK_STATUS(em_add_(T4, T23), EM_ERR_SHAPE);
    CHECK_STATUS(em_copy_(T4, T23), EM_ERR_SHAPE);
    /* gather/scatter index rank must match t */
    CHECK_FAILS(em_gather(T23, 0, TI), EM_ERR_SHAPE);
    em_tensor *idx2 = em_zeros(EM_I64, EM_SHAPE(2, 3), NULL), *src = em_zeros(EM_F32, EM_SHAPE(1, 1), NULL);
    CHECK_FAILS(em_scatter_add(T23, 0, idx2, src), EM_ERR_SHAPE); /* src smaller than index */
    CHECK_STATUS(em_scatter_add_(T23, 0, idx2, src), EM_ERR_SHAPE);
    em_tensor_release(idx2);
    em_tensor_release(src);
    /* index_select index must be 1-D; embedding weight must be 2-D */
    CHECK_FAILS2(em_index_select(T23, 0, TI64), EM_ERR_SHAPE, EM_ERR_INVALID_ARG);
    CHECK_FAILS2(em_embedding(T4, TI), EM_ERR_SHAPE, EM_ERR_INVALID_ARG);
}

/* ------------------------------------------------------------------------ */
/* dtypes                                                                    */
/* ------------------------------------------------------------------------ */

static void test_dtype_errors(void)
{
    em_tensor *i32a = em_zeros(EM_I64, EM_SHAPE(2, 3), NULL), *i32b = em_zeros(EM_I64, EM_SHAPE(3, 2), NULL);
    CHECK_FAILS_MSG(em_matmul(i32a, i32b), EM_ERR_DTYPE, "i64");
    em_tensor *w = em_zeros(EM_I64, EM_SHAPE(4, 3), NULL);
    CHECK_FAILS(em_linear(i32a, w, NULL), EM_ERR_DTYPE);
    CHECK_FAILS(em_addmm(T23, i32a, i32b), EM_ERR_DTYPE);
    em_tensor *bb = em_zeros(EM_BOOL, EM_SHAPE(3, 2), NULL);
    CHECK_FAILS(em_matmul(TB, bb), EM_ERR_DTYPE);
    em_tensor_release(bb);
    em_tensor_release(w);
    em_tensor_release(i32a);
    em_tensor_release(i32b);
    CHECK_FAILS_MSG(em_where(T23, T23, T23), EM_ERR_DTYPE, "f32"); /* cond not bool */
    CHECK_FAILS(em_masked_fill(T23, T23, 0), EM_ERR_DTYPE);
    CHECK_FAILS(em_index_select(T23, 0, T4), EM_ERR_DTYPE);
    CHECK_FAILS(em_gather(T23, 0, T23), EM_ERR_DTYPE);
    CHECK_FAILS(em_scatter_add(T23, 0, T23, T23), EM_ERR_DTYPE);
    em_tensor *w23 = em_zeros(EM_F32, EM_SHAPE(10, 3), NULL);
    CHECK_FAILS(em_embedding(w23, T4), EM_ERR_DTYPE);
    em_tensor_release(w23);
    CHECK_FAILS(em_one_hot(T4, 3), EM_ERR_DTYPE);
    CHECK_FAILS2(em_cast(T23, (em_dtype)99), EM_ERR_INVALID_ARG, EM_ERR_DTYPE);
    CHECK_FAILS2(em_zeros((em_dtype)99, EM_SHAPE(2), NULL), EM_ERR_INVALID_ARG, EM_ERR_DTYPE);
    CHECK_FAILS2(em_arange(0, 5, 1, (em_dtype)-1, NULL), EM_ERR_INVALID_ARG, EM_ERR_DTYPE);
    /* float result into integer self */
    CHECK_STATUS(em_add_(TI64, T23), EM_ERR_DTYPE);
    CHECK_STATUS(em_div_(TI64, TI64), EM_ERR_DTYPE);
    CHECK_STATUS(em_add_scalar_(TI64, 0.5), EM_ERR_DTYPE);
}

/* ------------------------------------------------------------------------ */
/* NULL arguments                                                            */
/* ------------------------------------------------------------------------ */

#define NC(name, expr) static em_tensor *nc_##name(void) { return expr; }
NC(add_a, em_add(NULL, T23)) NC(add_b, em_add(T23, NULL)) NC(sub, em_sub(NULL, T23))
NC(mul, em_mul(T23, NULL)) NC(div, em_div(NULL, T23)) NC(pow, em_pow(T23, NULL))
NC(maximum, em_maximum(NULL, T23)) NC(minimum, em_minimum(T23, NULL))
NC(add_scalar, em_add_scalar(NULL, 1)) NC(sub_scalar, em_sub_scalar(NULL, 1))
NC(mul_scalar, em_mul_scalar(NULL, 1)) NC(div_scalar, em_div_scalar(NULL, 1))
NC(pow_scalar, em_pow_scalar(NULL, 1)) NC(maximum_scalar, em_maximum_scalar(NULL, 1))
NC(minimum_scalar, em_minimum_scalar(NULL, 1))
NC(eq, em_eq(NULL, T23)) NC(ne, em_ne(T23, NULL)) NC(lt, em_lt(NULL, T23)) NC(le, em_le(T23, NULL))
NC(gt, em_gt(NULL, T23)) NC(ge, em_ge(T23, NULL))
NC(eq_scalar, em_eq_scalar(NULL, 0)) NC(ne_scalar, em_ne_scalar(NULL, 0))
NC(lt_scalar, em_lt_scalar(NULL, 0)) NC(le_scalar, em_le_scalar(NULL, 0))
NC(gt_scalar, em_gt_scalar(NULL, 0)) NC(ge_scalar, em_ge_scalar(NULL, 0))
NC(where_c, em_where(NULL, T23, T23)) NC(where_a, em_where(TB, NULL, T23)) NC(where_b, em_where(TB, T23, NULL))
NC(clamp, em_clamp(NULL, 0, 1)) NC(masked_fill_t, em_masked_fill(NULL, TB, 0))
NC(masked_fill_m, em_masked_fill(T23, NULL, 0))
NC(neg, em_neg(NULL)) NC(abs, em_abs(NULL)) NC(exp, em_exp(NULL)) NC(log, em_log(NULL))
NC(sqrt, em_sqrt(NULL)) NC(rsqrt, em_rsqrt(NULL)) NC(sin, em_sin(NULL)) NC(cos, em_cos(NULL))
NC(tanh, em_tanh(NULL)) NC(sigmoid, em_sigmoid(NULL)) NC(relu, em_relu(NULL))
NC(gelu, em_gelu(NULL, false)) NC(silu, em_silu(NULL)) NC(softplus, em_softplus(NULL, 1, 20))
NC(square, em_square(NULL)) NC(reciprocal, em_reciprocal(NULL))
NC(sum, em_sum(NULL, NULL, 0, false)) NC(mean, em_mean(NULL, NULL, 0, false))
NC(max, em_max(NULL, NULL, 0, false)) NC(min, em_min(NULL, NULL, 0, false))
NC(argmax, em_argmax(NULL, 0, false)) NC(argmin, em_argmin(NULL, 0, false))
NC(var, em_var(NULL, NULL, 0, true, false)) NC(std, em_std(NULL, NULL, 0, true, false))
NC(logsumexp, em_logsumexp(NULL, NULL, 0, false)) NC(softmax, em_softmax(NULL, 0))
NC(log_softmax, em_log_softmax(NULL, 0))
NC(matmul_a, em_matmul(NULL, T45)) NC(matmul_b, em_matmul(T23, NULL))
NC(linear_x, em_linear(NULL, T23, NULL)) NC(linear_w, em_linear(T23, NULL, NULL))
NC(addmm_c, em_addmm(NULL, T23, T23)) NC(addmm_a, em_addmm(T23, NULL, T23)) NC(addmm_b, em_addmm(T23, T23, NULL))
NC(index_select_t, em_index_select(NULL, 0, TI)) NC(index_select_i, em_index_select(T23, 0, NULL))
NC(gather_t, em_gather(NULL, 0, TI64)) NC(gather_i, em_gather(T23, 0, NULL))
NC(scatter_add_t, em_scatter_add(NULL, 0, TI64, T23)) NC(scatter_add_i, em_scatter_add(T23, 0, NULL, T23))
NC(scatter_add_s, em_scatter_add(T23, 0, TI64, NULL))
NC(embedding_w, em_embedding(NULL, TI)) NC(embedding_i, em_embedding(T23, NULL))
NC(one_hot, em_one_hot(NULL, 3))
NC(reshape, em_reshape(NULL, EM_SHAPE(6))) NC(view, em_view(NULL, EM_SHAPE(6)))
NC(flatten, em_flatten(NULL, 0, -1)) NC(transpose, em_transpose(NULL, 0, 1))
NC(permute, em_permute(NULL, 2, (const int[]){1, 0})) NC(T, em_T(NULL))
NC(squeeze, em_squeeze(NULL, 0)) NC(squeeze_all, em_squeeze_all(NULL)) NC(unsqueeze, em_unsqueeze(NULL, 0))
NC(expand, em_expand(NULL, EM_SHAPE(2, 3))) NC(narrow, em_narrow(NULL, 0, 0, 1))
NC(slice, em_slice(NULL, 0, 0, 1, 1)) NC(select, em_select(NULL, 0, 0))
NC(contiguous, em_contiguous(NULL)) NC(clone, em_clone(NULL)) NC(tensor_to, em_tensor_to(NULL, NULL))
NC(cast, em_cast(NULL, EM_F64))
NC(empty_like, em_empty_like(NULL)) NC(zeros_like, em_zeros_like(NULL)) NC(ones_like, em_ones_like(NULL))
NC(full_like, em_full_like(NULL, 1)) NC(rand_like, em_rand_like(NULL, NULL)) NC(randn_like, em_randn_like(NULL, NULL))
NC(from_data, em_tensor_from_data(NULL, EM_F32, EM_SHAPE(2), NULL))
NC(from_floats, em_tensor_from_floats(NULL, EM_SHAPE(2)))
NC(from_doubles, em_tensor_from_doubles(NULL, EM_SHAPE(2)))
NC(from_ints, em_tensor_from_ints(NULL, EM_SHAPE(2)))
NC(zeros_shape, em_zeros(EM_F32, 2, NULL, NULL))
static em_tensor *nc_cat(void) { const em_tensor *l[2] = {T23, NULL}; return em_cat(l, 2, 0); }
static em_tensor *nc_cat_list(void) { return em_cat(NULL, 2, 0); }
static em_tensor *nc_stack(void) { const em_tensor *l[2] = {NULL, T23}; return em_stack(l, 2, 0); }

typedef struct nullcase {
    const char *name;
    em_tensor *(*fn)(void);
} nullcase;
#define NE(name) {#name, nc_##name}
static const nullcase nullcases[] = {
    NE(add_a), NE(add_b), NE(sub), NE(mul), NE(div), NE(pow), NE(maximum), NE(minimum),
    NE(add_scalar), NE(sub_scalar), NE(mul_scalar), NE(div_scalar), NE(pow_scalar),
    NE(maximum_scalar), NE(minimum_scalar), NE(eq), NE(ne), NE(lt), NE(le), NE(gt), NE(ge),
    NE(eq_scalar), NE(ne_scalar), NE(lt_scalar), NE(le_scalar), NE(gt_scalar), NE(ge_scalar),
    NE(where_c), NE(where_a), NE(where_b), NE(clamp), NE(masked_fill_t), NE(masked_fill_m),
    NE(neg), NE(abs), NE(exp), NE(log), NE(sqrt), NE(rsqrt), NE(sin), NE(cos), NE(tanh),
    NE(sigmoid), NE(relu), NE(gelu), NE(silu), NE(softplus), NE(square), NE(reciprocal),
    NE(sum), NE(mean), NE(max), NE(min), NE(argmax), NE(argmin), NE(var), NE(std),
    NE(logsumexp), NE(softmax), NE(log_softmax), NE(matmul_a), NE(matmul_b), NE(linear_x),
    NE(linear_w), NE(addmm_c), NE(addmm_a), NE(addmm_b), NE(index_select_t), NE(index_select_i),
    NE(gather_t), NE(gather_i), NE(scatter_add_t), NE(scatter_add_i), NE(scatter_add_s),
    NE(embedding_w), NE(embedding_i), NE(one_hot), NE(reshape), NE(view), NE(flatten),
    NE(transpose), NE(permute), NE(T), NE(squeeze), NE(squeeze_all), NE(unsqueeze), NE(expand),
    NE(narrow), NE(slice), NE(select), NE(contiguous), NE(clone), NE(tensor_to), NE(cast),
    NE(empty_like), NE(zeros_like), NE(ones_like), NE(full_like), NE(rand_like), NE(randn_like),
    NE(from_data), NE(from_floats), NE(from_doubles), NE(from_ints), NE(zeros_shape),
    NE(cat), NE(cat_list), NE(stack),
};
#define N_NULLCASES (int)(sizeof nullcases / sizeof nullcases[0])

static void test_null_args(void)
{
    for (int i = 0; i < N_NULLCASES; i++) {
        em_clear_error();
        em_tensor *r = nullcases[i].fn();
        em_status st = em_last_status();
        CHECKF(r == NULL && st == EM_ERR_NULL_ARG, "NULL argument to %s: result %s, status %s",
               nullcases[i].name, r ? "non-NULL" : "NULL", em_status_str(st));
        em_tensor_release(r);
        /* with an error pending, a NULL argument keeps the first error */
        em_clear_error();
        em_tensor *bad = em_add(T23, T4);
        r = nullcases[i].fn();
        st = em_last_status();
        CHECKF(bad == NULL && r == NULL && st == EM_ERR_SHAPE,
               "%s after a pending shape error: status %s (the first error must stay)",
               nullcases[i].name, em_status_str(st));
        em_tensor_release(r);
        em_clear_error();
    }
    /* status-returning calls and queries */
    CHECK(em_tensor_ndim(NULL) == -1);
    CHECK(em_tensor_numel(NULL) == -1);
    int64_t sh[8];
    CHECK(em_tensor_shape(NULL, sh) == -1);
    CHECK(em_tensor_dim(NULL, 0) == -1);
    CHECK(em_tensor_stride(NULL, 0) == 0);
    em_tensor_release(NULL); /* no-op */
    double d;
    CHECK_STATUS(em_tensor_read(NULL, &d, sizeof d), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_tensor_read(T23, NULL, 24), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_tensor_read_f64(NULL, &d, 1), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_tensor_item(NULL, &d), EM_ERR_NULL_ARG);
    em_tensor *one = em_scalar(1);
    CHECK_STATUS(em_tensor_item(one, NULL), EM_ERR_NULL_ARG);
    em_tensor_release(one);
    em_device_props props;
    props.struct_size = sizeof props;
    CHECK_STATUS(em_device_properties(NULL, &props), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_device_properties(em_device_default(), NULL), EM_ERR_NULL_ARG);
    CHECK(em_scope_keep(NULL) == NULL);
    em_clear_error();
}

/* em_add(em_mul(a, bad), c) reports the mul's shape error. */
static void test_first_error(void)
{
    em_clear_error();
    em_tensor *r = em_add(em_mul(T23, T4), T23);
    CHECK(r == NULL);
    CHECKF(em_last_status() == EM_ERR_SHAPE, "chain: status %s, want the mul's EM_ERR_SHAPE",
           em_status_str(em_last_status()));
    CHECKF(strstr(em_last_error(), "mul") != NULL, "chain: message \"%s\" does not name mul", em_last_error());
    CHECKF(strstr(em_last_error(), "[2,3]") && strstr(em_last_error(), "[4]"),
           "chain: message \"%s\" does not name both shapes", em_last_error());
    /* a deeper chain */
    em_clear_error();
    r = em_sum(em_exp(em_matmul(em_transpose(T23, 0, 5), T45)), NULL, 0, false);
    CHECK(r == NULL);
    CHECKF(em_last_status() == EM_ERR_INVALID_ARG, "deep chain: status %s, want the transpose's EM_ERR_INVALID_ARG",
           em_status_str(em_last_status()));
    /* em_clear_error resets status and message */
    em_clear_error();
    CHECK(em_last_status() == EM_OK);
    CHECK(strcmp(em_last_error(), "") == 0);
    /* a successful call after an error: the pending error stays until cleared */
    em_tensor *bad = em_add(T23, T4);
    em_tensor *good = em_add(T23, T23);
    CHECK(bad == NULL && good != NULL);
    CHECK(em_last_status() == EM_ERR_SHAPE);
    em_tensor_release(good);
    em_clear_error();
}

/* ------------------------------------------------------------------------ */
/* dims and indices                                                          */
/* ------------------------------------------------------------------------ */

static void test_dim_errors(void)
{
    int d3[1] = {3}, dm3[1] = {-3}, dup[2] = {0, 0};
    CHECK_FAILS_MSG(em_sum(T23, d3, 1, false), EM_ERR_INVALID_ARG, "3");
    CHECK_FAILS(em_sum(T23, dm3, 1, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_sum(T23, dup, 2, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_mean(T23, d3, 1, true), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_max(T23, d3, 1, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_min(T23, d3, 1, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_var(T23, d3, 1, true, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_std(T23, d3, 1, true, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_logsumexp(T23, d3, 1, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_argmax(T23, 2, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_argmin(T23, -3, false), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_softmax(T23, 2), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_log_softmax(T23, -3), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_transpose(T23, 0, 2), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_permute(T23, 2, (const int[]){0, 0}), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_permute(T23, 2, (const int[]){0, 2}), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_permute(T23, 1, (const int[]){0}), EM_ERR_INVALID_ARG);
    em_tensor *t3 = em_zeros(EM_F32, EM_SHAPE(2, 3, 4), NULL);
    CHECK_FAILS(em_T(t3), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_flatten(t3, 2, 0), EM_ERR_INVALID_ARG);
    em_tensor_release(t3);
    CHECK_FAILS(em_squeeze(T23, 2), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_unsqueeze(T23, 3), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_unsqueeze(T23, -4), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_narrow(T23, 2, 0, 1), EM_ERR_INVALID_ARG);
    em_tensor *t8 = em_zeros(EM_F32, EM_SHAPE(1, 1, 1, 1, 1, 1, 1, 2), NULL);
    CHECK_FAILS2(em_unsqueeze(t8, 0), EM_ERR_INVALID_ARG, EM_ERR_SHAPE); /* 9 dims */
    CHECK_FAILS2(em_reshape(t8, 9, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 2}), EM_ERR_INVALID_ARG,
                 EM_ERR_SHAPE);
    em_tensor_release(t8);
    CHECK_FAILS(em_slice(T23, 0, 0, 2, 0), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_slice(T23, 0, 0, 2, -1), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_slice(T23, 5, 0, 2, 1), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_select(T23, 2, 0), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_index_select(T23, 2, TI), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_gather(T23, 2, TI64), EM_ERR_INVALID_ARG);
    const em_tensor *pair[2] = {T23, T23};
    CHECK_FAILS(em_cat(pair, 2, 2), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_stack(pair, 2, 3), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_cat(pair, 0, 0), EM_ERR_INVALID_ARG);
    CHECK_FAILS2(em_reshape(T23, EM_SHAPE(-1, -1)), EM_ERR_INVALID_ARG, EM_ERR_SHAPE);
    CHECK_FAILS2(em_reshape(T23, EM_SHAPE(-2, 3)), EM_ERR_INVALID_ARG, EM_ERR_SHAPE);
    /* creation arguments */
    CHECK_FAILS2(em_zeros(EM_F32, EM_SHAPE(2, -3), NULL), EM_ERR_INVALID_ARG, EM_ERR_SHAPE);
    CHECK_FAILS(em_zeros(EM_F32, 9, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, NULL), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_zeros(EM_F32, -1, NULL, NULL), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_arange(0, 5, 0, EM_F32, NULL), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_arange(0, INFINITY, 1, EM_F32, NULL), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_linspace(0, 1, -1, EM_F32, NULL), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_eye(-1, -1, EM_F32, NULL), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_randint(NULL, 5, 1, EM_I64, EM_SHAPE(3), NULL), EM_ERR_INVALID_ARG);
    /* allocations that cannot succeed */
    CHECK_FAILS(em_empty(EM_F32, EM_SHAPE((int64_t)1 << 42), NULL), EM_ERR_OUT_OF_MEMORY);
    CHECK_FAILS2(em_zeros(EM_F64, EM_SHAPE((int64_t)1 << 40, (int64_t)1 << 40), NULL), EM_ERR_INVALID_ARG,
                 EM_ERR_OUT_OF_MEMORY); /* numel * size overflows int64 */
    /* empty reductions without identity */
    CHECK_FAILS2(em_max(TE, NULL, 0, false), EM_ERR_INVALID_ARG, EM_ERR_SHAPE);
    int d0[1] = {0};
    CHECK_FAILS2(em_min(TE, d0, 1, false), EM_ERR_INVALID_ARG, EM_ERR_SHAPE);
    CHECK_FAILS2(em_argmax(TE, 0, false), EM_ERR_INVALID_ARG, EM_ERR_SHAPE);
    CHECK_FAILS2(em_argmin(TE, EM_ALL_DIMS, false), EM_ERR_INVALID_ARG, EM_ERR_SHAPE);
    /* scope depth */
    int depth = 0;
    em_status st = EM_OK;
    while (depth < 100 && (st = em_scope_begin()) == EM_OK) depth++;
    CHECKF(depth == 64 && st == EM_ERR_STATE, "scopes nest to %d (want 64), then %s", depth, em_status_str(st));
    em_clear_error();
    for (int i = 0; i < depth; i++) CHECK_OK(em_scope_end());
}

static void test_index_errors(void)
{
    CHECK_FAILS_MSG(em_select(T23, 0, 2), EM_ERR_INDEX, "2");
    CHECK_FAILS(em_select(T23, 1, -4), EM_ERR_INDEX);
    CHECK_FAILS2(em_narrow(T23, 1, 2, 2), EM_ERR_INDEX, EM_ERR_INVALID_ARG);
    CHECK_FAILS2(em_narrow(T23, 1, 3, 1), EM_ERR_INDEX, EM_ERR_INVALID_ARG);
    int64_t big[2] = {0, 5}, neg[2] = {-1, 0};
    em_tensor *ib = em_tensor_from_ints(big, EM_SHAPE(2)), *in = em_tensor_from_ints(neg, EM_SHAPE(2));
    CHECK_FAILS_MSG(em_index_select(T23, 1, ib), EM_ERR_INDEX, "5");
    CHECK_FAILS(em_index_select(T23, 0, in), EM_ERR_INDEX);
    em_tensor *w = em_zeros(EM_F32, EM_SHAPE(5, 3), NULL);
    CHECK_FAILS(em_embedding(w, ib), EM_ERR_INDEX);
    CHECK_FAILS(em_embedding(w, in), EM_ERR_INDEX);
    em_tensor_release(w);
    CHECK_FAILS(em_one_hot(ib, 3), EM_ERR_INDEX);
    CHECK_FAILS(em_one_hot(in, 3), EM_ERR_INDEX);
    int64_t g[6] = {0, 1, 2, 0, 1, 7};
    em_tensor *gi = em_tensor_from_data(g, EM_I64, EM_SHAPE(2, 3), NULL);
    CHECK_FAILS(em_gather(T23, 0, gi), EM_ERR_INDEX);
    CHECK_FAILS(em_scatter_add(T23, 0, gi, T23), EM_ERR_INDEX);
    em_tensor *copy = em_clone(T23);
    CHECK_STATUS(em_scatter_add_(copy, 0, gi, T23), EM_ERR_INDEX);
    em_tensor_release(copy);
    em_tensor_release(gi);
    em_tensor_release(ib);
    em_tensor_release(in);
}

/* em_status_str: a static string per code, starting with the code's name. */
static void test_status_strings(void)
{
    static const char *names[] = {"EM_OK", "EM_ERR_INVALID_ARG", "EM_ERR_NULL_ARG", "EM_ERR_SHAPE",
                                  "EM_ERR_DTYPE", "EM_ERR_DEVICE", "EM_ERR_OUT_OF_MEMORY",
                                  "EM_ERR_UNSUPPORTED", "EM_ERR_BACKEND", "EM_ERR_PLUGIN", "EM_ERR_IO",
                                  "EM_ERR_INDEX", "EM_ERR_STATE", "EM_ERR_INTERNAL"};
    for (int i = 0; i <= EM_ERR_INTERNAL; i++) {
        const char *s = em_status_str((em_status)i);
        CHECKF(s && strncmp(s, names[i], strlen(names[i])) == 0 &&
                   (s[strlen(names[i])] == ':' || s[strlen(names[i])] == '\0'),
               "em_status_str(%d) = \"%s\"", i, s ? s : "(null)");
    }
    CHECK(em_status_str((em_status)999) != NULL);
    CHECK(em_status_str((em_status)-1) != NULL);
}

/* Ops on tensors of different devices (only when two devices exist). */
static void test_device_errors(void)
{
    em_device *cpu = em_device_cpu(), *def = em_device_default();
    if (!cpu || cpu == def) {
        printf("device mismatch: only one device, not tested\n");
        return;
    }
    em_tensor *a = em_zeros(EM_F32, EM_SHAPE(2, 3), cpu);
    CHECK_FAILS_MSG(em_add(a, T23), EM_ERR_DEVICE, em_device_name(cpu), em_device_name(def));
    CHECK_FAILS(em_matmul(a, T45), EM_ERR_DEVICE);
    em_tensor_release(a);
}

/* Failing calls leak nothing: heap in use is flat over many failures. */
static int leak_loop_non_null; /* calls in failing_calls that did not fail */

static void failing_calls(void)
{
    em_tensor *r;
    int d3[1] = {3};
    const em_tensor *pair[2] = {T23, T45};
    int64_t big[2] = {0, 5};
    em_tensor *ib = em_tensor_from_ints(big, EM_SHAPE(2));
    em_tensor *list[] = {
        em_add(T23, T4), em_matmul(T23, T45), em_where(T23, T23, T23), em_sum(T23, d3, 1, false),
        em_cat(pair, 2, 0), em_stack(pair, 2, 0), em_index_select(T23, 1, ib), em_select(T23, 0, 9),
        em_reshape(T23, EM_SHAPE(7)), em_add(em_mul(T23, T4), T23), em_exp(NULL),
        em_softmax(T23, 4), em_linear(T23, T45, NULL), em_one_hot(ib, 2), em_max(TE, NULL, 0, false),
        em_view(em_T(T23), EM_SHAPE(6)), /* the T leaks unless in a scope: measured separately */
    };
    /* Called inside a scope: results (all NULL if the library is right) and
     * ib belong to it, so nothing is released here. */
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        r = list[i];
        if (r) leak_loop_non_null++;
    }
    em_add_(T4, T23);
    em_add_(TI64, T23);
    em_scatter_add_(T23, 0, TI, T23);
    em_masked_fill_(T23, T23, 1);
    em_copy_(T4, T23);
    for (int i = 0; i < N_NULLCASES; i++) {
        em_clear_error();
        if (nullcases[i].fn()) leak_loop_non_null++;
    }
    em_clear_error();
}

static void test_no_leaks(void)
{
    for (int rep = 0; rep < 3; rep++) { /* warm-up, same pattern as measured */
        em_scope_begin(); /* owns the em_T and ib intermediates */
        for (int i = 0; i < 100; i++) failing_calls();
        em_scope_end();
    }
    /* Two measured intervals: a leak grows the heap in both, a one-off
     * allocation (a buffer reaching its high-water mark) only in the first. */
    long growth[3];
    for (int k = 0; k < 3; k++) {
        size_t before = tu_heap_in_use();
        for (int rep = 0; rep < 10; rep++) {
            em_scope_begin();
            for (int i = 0; i < 100; i++) failing_calls();
            em_scope_end();
        }
        size_t after = tu_heap_in_use();
        growth[k] = (long)after - (long)before;
        printf("failing calls x1000 (interval %d): heap in use %zu -> %zu (growth %ld bytes)\n", k, before,
               after, growth[k]);
    }
    CHECKF(leak_loop_non_null == 0, "%d calls in the leak loop unexpectedly succeeded", leak_loop_non_null);
    CHECKF(growth[1] < 16384 && growth[2] < 16384,
           "failing calls leak: heap grew %ld, %ld, %ld bytes over 1000 rounds each", growth[0], growth[1],
           growth[2]);
}

int main(void)
{
    tu_init("test_errors");
    setup();
    test_shape_errors();
    test_dtype_errors();
    test_null_args();
    test_first_error();
    test_dim_errors();
    test_index_errors();
    test_status_strings();
    test_device_errors();
    test_no_leaks();
    em_tensor_release(T23); em_tensor_release(T4); em_tensor_release(T45);
    em_tensor_release(TI64); em_tensor_release(TI); em_tensor_release(TB); em_tensor_release(TE);
    em_shutdown();
    return tu_finish();
}
