/*
 * test_cuda_ops.c — a first check of the CUDA kernels: a few ops on cuda:0
 * against the same ops on cpu:0 (same inputs, uploaded to both devices).
 * Exits 77 (skipped) when em_device_find("cuda") fails: no GPU or no driver.
 * Covers elementwise ops, matmul/linear (bf16 with the cuBLASLt bias
 * epilogue, addmm, a transposed x view), comparisons, where/clamp/
 * masked_fill, reductions (last dim, a non-last dim, all dims, strided and
 * permuted inputs, ties and NaN for argmax/argmin, splits of long reduced
 * ranges), softmax/log_softmax (short and > 1024-element rows, along a
 * non-last dim), random ops (bit-identical to the CPU for the same seed),
 * arange/linspace, cat/index_select/gather/scatter_add/one_hot, index
 * errors (EM_ERR_INDEX, the in-place scatter_add_ leaving its target
 * untouched), transfers larger than the pinned staging, and that nothing
 * fell back to the CPU (em_fallback_count() stays 0).
 * The full op and gradient suites run on the GPU through
 * tests/device/run_gpu_checks.sh (EMBER_BACKEND=cuda).
 */
#include "ember.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static em_device *g_cuda, *g_cpu;

static void report(const char *what, int ok, double err)
{
    if (ok) passed++;
    else failed++;
    printf("%s %-28s max rel err %.3g%s%s\n", ok ? "ok  " : "FAIL", what, err,
           em_last_status() ? "  pending: " : "", em_last_status() ? em_last_error() : "");
    em_clear_error();
}

/* Compares a (cuda) with b (cpu) elementwise with a relative tolerance. */
static void compare(const char *what, em_tensor *a, em_tensor *b, double tol)
{
    int64_t n = em_tensor_numel(b);
    if (!a || !b || n < 0 || em_tensor_numel(a) != n) {
        report(what, 0, INFINITY);
        return;
    }
    double *x = calloc((size_t)n + 1, sizeof *x), *y = calloc((size_t)n + 1, sizeof *y);
    int ok = em_tensor_read_f64(a, x, (size_t)n) == EM_OK && em_tensor_read_f64(b, y, (size_t)n) == EM_OK;
    double worst = 0;
    for (int64_t i = 0; ok && i < n; i++) {
        if ((isnan(x[i]) && isnan(y[i])) || x[i] == y[i]) continue; /* also equal infinities */
        double e = fabs(x[i] - y[i]) / (fabs(y[i]) > 1 ? fabs(y[i]) : 1);
        if (!(e <= tol)) ok = 0;
        if (e > worst || isnan(e)) worst = e;
    }
    report(what, ok, worst);
    free(x);
    free(y);
}

/* BOTH(EXPR): EXPR evaluated on cuda (side 1) and on cpu (side 0); inside
 * it, DEV is the side's device and S(p) the side's tensor of pair p. */
typedef struct pair {
    em_tensor *g, *c;
} pair;
static int side;
#define DEV (side ? g_cuda : g_cpu)
#define S(p) (side ? (p).g : (p).c)
#define CHECK(what, tol, EXPR)                                                           \
    do {                                                                                 \
        side = 1;                                                                        \
        em_tensor *g_r_ = (EXPR);                                                        \
        side = 0;                                                                        \
        em_tensor *c_r_ = (EXPR);                                                        \
        compare(what, g_r_, c_r_, tol);                                                  \
    } while (0)

static em_tensor *on(em_device *d, const float *v, int ndim, const int64_t *shape)
{
    return em_tensor_from_data(v, EM_F32, ndim, shape, d);
}

static float *values(int64_t n, uint64_t seed)
{
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    return v;
}

/* The same f32 values on both devices, cast to dt. */
static pair mk(const float *v, em_dtype dt, int ndim, const int64_t *shape)
{
    pair p = {on(g_cuda, v, ndim, shape), on(g_cpu, v, ndim, shape)};
    if (dt != EM_F32) {
        p.g = em_cast(p.g, dt);
        p.c = em_cast(p.c, dt);
    }
    return p;
}

/* Integer-valued f32 data in [0, m) (ties for argmax, indices). */
static float *ints(int64_t n, int m, uint64_t seed)
{
    float *v = values(n, seed);
    for (int64_t i = 0; i < n; i++) v[i] = (float)((int)((v[i] + 2.0f) * 1000.0f) % m);
    return v;
}

static void expect_index_error(const char *what, em_tensor *r)
{
    int ok = r == NULL && em_last_status() == EM_ERR_INDEX;
    printf("%s %-28s %s\n", ok ? "ok  " : "FAIL", what, em_last_error());
    if (ok) passed++;
    else failed++;
    em_clear_error();
}

static void test_compare_select(void)
{
    int64_t sa[2] = {64, 33}, sb[1] = {33}, sm[2] = {64, 1};
    float *va = values(64 * 33, 11), *vb = values(33, 12), *vm = values(64, 13);
    va[5] = NAN;
    va[40] = vb[40 % 33]; /* some equal pairs */
    va[41] = vb[41 % 33];
    pair a = mk(va, EM_F32, 2, sa), b = mk(vb, EM_F32, 1, sb);
    pair ah = mk(va, EM_F16, 2, sa), bh = mk(vb, EM_F16, 1, sb);
    pair ai = mk(va, EM_I32, 2, sa), bi = mk(vb, EM_I32, 1, sb);
    CHECK("eq broadcast", 0, em_eq(S(a), S(b)));
    CHECK("ne broadcast (NaN)", 0, em_ne(S(a), S(b)));
    CHECK("lt", 0, em_lt(S(a), S(b)));
    CHECK("le transposed", 0, em_le(em_transpose(S(a), 0, 1), em_transpose(S(a), 0, 1)));
    CHECK("gt f16", 0, em_gt(S(ah), S(bh)));
    CHECK("ge i32", 0, em_ge(S(ai), S(bi)));
    CHECK("eq_scalar", 0, em_eq_scalar(S(a), 0.0));
    CHECK("lt_scalar f16 (rounded)", 0, em_lt_scalar(S(ah), 0.1));
    pair m = {em_gt_scalar(on(g_cuda, vm, 2, sm), 0.0), em_gt_scalar(on(g_cpu, vm, 2, sm), 0.0)};
    CHECK("where broadcast cond", 0, em_where(S(m), S(a), em_expand(S(b), 2, sa)));
    CHECK("where bf16", 0,
          em_where(S(m), em_cast(S(a), EM_BF16), em_cast(em_expand(S(b), 2, sa), EM_BF16)));
    CHECK("clamp", 0, em_clamp(S(a), -0.5, 0.75));
    CHECK("clamp -inf bound", 0, em_clamp(S(a), -INFINITY, 0.25));
    CHECK("clamp i32 fractional", 0, em_clamp(S(ai), -0.5, 1.5));
    CHECK("clamp f16 strided", 0, em_clamp(em_transpose(S(ah), 0, 1), -1.0, 1.0));
    CHECK("masked_fill", 0, em_masked_fill(S(a), S(m), -7.25));
    CHECK("masked_fill f16 -inf", 0, em_masked_fill(S(ah), S(m), -INFINITY));
    CHECK("masked_fill i64", 0, em_masked_fill(em_cast(S(a), EM_I64), S(m), 3));
    free(va); free(vb); free(vm);
}

static void test_reduce(void)
{
    int64_t s3[3] = {6, 70, 33}, sbig[2] = {1024, 2048}, stall[2] = {100000, 5};
    float *v3 = values(6 * 70 * 33, 21), *vbig = values(1024 * 2048, 22);
    float *vtall = values(100000 * 5, 23), *vt = ints(6 * 70 * 33, 4, 24);
    v3[100] = NAN;
    pair x = mk(v3 + 1, EM_F32, 3, s3); /* no NaN in this one: v3[100] is x's element 99 */
    pair xn = mk(v3, EM_F32, 3, s3);     /* with a NaN */
    pair big = mk(vbig, EM_F32, 2, sbig), tall = mk(vtall, EM_F32, 2, stall);
    pair ties = mk(vt, EM_F32, 3, s3), tiesi = mk(vt, EM_I32, 3, s3);
    int d0[1] = {0}, d1[1] = {1}, d2[1] = {2}, d02[2] = {0, 2};
    const int perm[3] = {2, 0, 1};
    CHECK("sum last dim", 1e-6, em_sum(S(x), d2, 1, false));
    CHECK("sum dim 1 (non-last)", 1e-6, em_sum(S(x), d1, 1, true));
    CHECK("sum dims 0,2", 1e-6, em_sum(S(x), d02, 2, false));
    CHECK("sum all", 1e-6, em_sum(S(x), NULL, 0, false));
    CHECK("sum all 2M (split)", 1e-6, em_sum(S(big), NULL, 0, false));
    CHECK("sum rows 2048", 1e-6, em_sum(S(big), d1, 1, false));
    CHECK("sum cols of [1024,2048]", 1e-6, em_sum(S(big), d0, 1, false));
    CHECK("sum tall cols (split)", 1e-6, em_sum(S(tall), d0, 1, false));
    CHECK("mean tall rows", 1e-6, em_mean(S(tall), d1, 1, false));
    CHECK("sum permuted", 1e-6, em_sum(em_permute(S(x), 3, perm), d1, 1, false));
    CHECK("sum f16 dim 1", 1e-3, em_sum(em_cast(S(x), EM_F16), d1, 1, false));
    CHECK("sum bf16 all", 1e-2, em_sum(em_cast(S(x), EM_BF16), NULL, 0, false));
    CHECK("sum i32 -> i64", 0, em_sum(S(tiesi), d1, 1, false));
    CHECK("sum bool", 0, em_sum(em_gt_scalar(S(x), 0.0), d2, 1, false));
    CHECK("mean f64 dim 0", 1e-12, em_mean(em_cast(S(x), EM_F64), d0, 1, false));
    CHECK("max dim 2 (NaN)", 0, em_max(S(xn), d2, 1, false));
    CHECK("min dim 1 (NaN)", 0, em_min(S(xn), d1, 1, false));
    CHECK("max all i32", 0, em_max(S(tiesi), NULL, 0, false));
    CHECK("min dim 0 bf16", 0, em_min(em_cast(S(x), EM_BF16), d0, 1, false));
    CHECK("argmax dim 2 ties", 0, em_argmax(S(ties), 2, false));
    CHECK("argmax dim 1 ties", 0, em_argmax(S(ties), 1, false));
    CHECK("argmin dim 0 ties", 0, em_argmin(S(ties), 0, true));
    CHECK("argmax i32 dim 1 ties", 0, em_argmax(S(tiesi), 1, false));
    CHECK("argmin all ties", 0, em_argmin(S(ties), EM_ALL_DIMS, false));
    CHECK("argmax all 2M", 0, em_argmax(S(big), EM_ALL_DIMS, false));
    CHECK("argmax NaN first", 0, em_argmax(S(xn), 1, false));
    CHECK("argmin NaN all", 0, em_argmin(S(xn), EM_ALL_DIMS, false));
    CHECK("argmax transposed", 0, em_argmax(em_transpose(S(ties), 1, 2), 1, false));
    CHECK("argmax tall cols", 0, em_argmax(S(tall), 0, false));
    CHECK("var unbiased dim 1", 1e-6, em_var(S(x), d1, 1, true, false));
    CHECK("var biased all", 1e-6, em_var(S(x), NULL, 0, false, false));
    CHECK("std dims 0,2", 1e-6, em_std(S(x), d02, 2, true, true));
    CHECK("std tall cols", 1e-6, em_std(S(tall), d0, 1, true, false));
    CHECK("var f64 last", 1e-12, em_var(em_cast(S(x), EM_F64), d2, 1, true, false));
    CHECK("logsumexp last", 1e-6, em_logsumexp(S(x), d2, 1, false));
    CHECK("logsumexp dim 0", 1e-6, em_logsumexp(S(x), d0, 1, false));
    CHECK("logsumexp all 2M", 1e-6, em_logsumexp(S(big), NULL, 0, false));
    CHECK("logsumexp NaN", 1e-6, em_logsumexp(S(xn), d2, 1, false));
    CHECK("logsumexp f16", 1e-3, em_logsumexp(em_cast(S(x), EM_F16), d1, 1, false));
    free(v3); free(vbig); free(vtall); free(vt);
}

static void test_softmax(void)
{
    int64_t s2[2] = {64, 33}, slong[2] = {8, 5000}, s4[4] = {4, 16, 7, 9};
    float *v2 = values(64 * 33, 31), *vl = values(8 * 5000, 32), *v4 = values(4 * 16 * 7 * 9, 33);
    v2[7] = -INFINITY;
    vl[3] = NAN;
    pair a = mk(v2, EM_F32, 2, s2), l = mk(vl, EM_F32, 2, slong), c = mk(v4, EM_F32, 4, s4);
    CHECK("softmax last", 1e-6, em_softmax(S(a), 1));
    CHECK("softmax dim 0", 1e-6, em_softmax(S(a), 0));
    CHECK("log_softmax last", 1e-6, em_log_softmax(S(a), 1));
    CHECK("softmax rows 5000 (NaN row)", 1e-6, em_softmax(S(l), 1));
    CHECK("log_softmax rows 5000", 1e-6, em_log_softmax(S(l), 1));
    CHECK("softmax NCHW channels", 1e-6, em_softmax(S(c), 1));
    CHECK("log_softmax transposed", 1e-6, em_log_softmax(em_transpose(S(a), 0, 1), 1));
    CHECK("softmax f16", 1e-3, em_softmax(em_cast(S(a), EM_F16), 1));
    CHECK("log_softmax bf16 long", 1e-2, em_log_softmax(em_cast(S(l), EM_BF16), 1));
    CHECK("softmax f64", 1e-12, em_softmax(em_cast(S(c), EM_F64), 3));
    free(v2); free(vl); free(v4);
}

static void test_random(void)
{
    int64_t s[2] = {1000, 37};
    const em_dtype fl[4] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    const char *fln[4] = {"f32", "f64", "f16", "bf16"};
    char what[64];
    for (int k = 0; k < 4; k++) {
        snprintf(what, sizeof what, "rand %s bit-identical", fln[k]);
        CHECK(what, 0, em_rand(em_generator_create(1234), fl[k], 2, s, DEV));
        snprintf(what, sizeof what, "randn %s", fln[k]);
        /* f64: the device's log/cos may differ from glibc's in the last bit */
        CHECK(what, fl[k] == EM_F64 ? 1e-15 : 0, em_randn(em_generator_create(99), fl[k], 2, s, DEV));
    }
    CHECK("randint i64 bit-identical", 0, em_randint(em_generator_create(7), -5, 1000003, EM_I64, 2, s, DEV));
    CHECK("randint i32 bit-identical", 0, em_randint(em_generator_create(8), 0, 10, EM_I32, 2, s, DEV));
    CHECK("rand second draw", 0, ({
              em_generator *gen_ = em_generator_create(5);
              em_tensor *first_ = em_rand(gen_, EM_F32, 2, s, DEV);
              (void)first_;
              em_rand(gen_, EM_F32, 2, s, DEV);
          }));
    CHECK("arange f32", 0, em_arange(-3.0, 7.0, 0.1, EM_F32, DEV));
    CHECK("arange i64", 0, em_arange(5, 1000, 3, EM_I64, DEV));
    CHECK("linspace f32", 0, em_linspace(-1.0, 1.0, 1001, EM_F32, DEV));
    CHECK("linspace f64", 0, em_linspace(0.0, 3.0, 7, EM_F64, DEV));
    CHECK("linspace bf16", 0, em_linspace(-2.0, 5.0, 33, EM_BF16, DEV));
}

static void test_index(void)
{
    int64_t st[2] = {50, 12}, sidx[1] = {30}, sg[2] = {50, 5}, sbad[1] = {3};
    float *vt = values(50 * 12, 41), *vi = ints(30, 50, 42), *vg = ints(50 * 5, 12, 43);
    float bad[3] = {1, 50, 2}, neg[3] = {0, -1, 2};
    pair t = mk(vt, EM_F32, 2, st);
    pair i64 = mk(vi, EM_I64, 1, sidx), i32 = mk(vi, EM_I32, 1, sidx);
    pair gi = mk(vg, EM_I64, 2, sg);
    pair badi = mk(bad, EM_I64, 1, sbad), negi = mk(neg, EM_I32, 1, sbad);
    float *vc = ints(30, 12, 44);
    pair c32 = mk(vc, EM_I32, 1, sidx);
    CHECK("cat dim 0", 0, em_cat((const em_tensor *[]){S(t), S(t), S(t)}, 3, 0));
    CHECK("cat dim 1 transposed", 0,
          em_cat((const em_tensor *[]){S(t), em_transpose(em_transpose(S(t), 0, 1), 0, 1),
                                       em_narrow(S(t), 1, 2, 5)}, 3, 1));
    CHECK("cat i64 dim 1", 0, em_cat((const em_tensor *[]){S(gi), S(gi)}, 2, 1));
    CHECK("index_select dim 0 i64", 0, em_index_select(S(t), 0, S(i64)));
    CHECK("index_select dim 1 i32", 0, em_index_select(S(t), 1, S(c32)));
    CHECK("index_select f16 transposed", 0,
          em_index_select(em_transpose(em_cast(S(t), EM_F16), 0, 1), 1, S(i32)));
    CHECK("gather dim 1", 0, em_gather(S(t), 1, S(gi)));
    CHECK("gather dim 0 i32 index", 0, em_gather(S(t), 0, em_cast(S(gi), EM_I32)));
    CHECK("gather strided t and index", 0,
          em_gather(em_transpose(S(t), 0, 1), 1, em_transpose(S(gi), 0, 1)));
    CHECK("scatter_add f32 dup", 1e-6, em_scatter_add(em_zeros_like(S(t)), 1, S(gi), em_narrow(S(t), 1, 0, 5)));
    CHECK("scatter_add f64 dim 0", 1e-12,
          em_scatter_add(em_cast(S(t), EM_F64), 0, S(gi), em_cast(em_narrow(S(t), 1, 0, 5), EM_F64)));
    CHECK("scatter_add i64", 0, em_scatter_add(em_cast(S(t), EM_I64), 1, S(gi), em_cast(em_mul_scalar(em_narrow(S(t), 1, 0, 5), 100), EM_I64)));
    CHECK("scatter_add bf16", 1e-2, em_scatter_add(em_cast(S(t), EM_BF16), 1, S(gi), em_cast(em_narrow(S(t), 1, 0, 5), EM_BF16)));
    CHECK("scatter_add f16", 1e-3, em_scatter_add(em_cast(S(t), EM_F16), 1, S(gi), em_cast(em_narrow(S(t), 1, 0, 5), EM_F16)));
    CHECK("scatter_add i32", 0, em_scatter_add(em_cast(S(t), EM_I32), 1, S(gi), em_ones_like(em_cast(S(gi), EM_I32))));
    CHECK("scatter_add bool", 0, em_scatter_add(em_gt_scalar(S(t), 1.0), 1, S(gi), em_gt_scalar(em_narrow(S(t), 1, 0, 5), 0.0)));
    CHECK("one_hot i64", 0, em_one_hot(S(gi), 12));
    CHECK("one_hot i32", 0, em_one_hot(S(i32), 50));

    /* index errors: a status, never an abort; scatter_add_ leaves its target alone */
    expect_index_error("gather index 50 of 50", em_gather(t.g, 0, em_reshape(badi.g, 2, (int64_t[]){3, 1})));
    expect_index_error("index_select -1", em_index_select(t.g, 0, negi.g));
    expect_index_error("one_hot 50 of 12", em_one_hot(badi.g, 12));
    em_tensor *target = em_zeros_like(t.g);
    em_status sst = em_scatter_add_(target, 0, em_reshape(badi.g, 2, (int64_t[]){3, 1}),
                                    em_narrow(em_narrow(t.g, 0, 0, 3), 1, 0, 1));
    int ok = sst == EM_ERR_INDEX;
    printf("%s %-28s %s\n", ok ? "ok  " : "FAIL", "scatter_add_ bad index", em_last_error());
    em_clear_error();
    ok ? passed++ : failed++;
    compare("scatter_add_ left target", em_abs(target), em_zeros_like(t.c), 0);
    /* the record is reset: the next good op works */
    CHECK("gather after an error", 0, em_gather(S(t), 1, S(gi)));
    free(vt); free(vi); free(vg); free(vc);
}

static void test_transfers(void)
{
    /* 3.5M floats = 14 MB: more than the two 4 MiB staging halves */
    int64_t n = 3500001, s1[1] = {n};
    float *v = values(n, 51);
    em_tensor *g = on(g_cuda, v, 1, s1);
    float *back = malloc((size_t)n * sizeof *back);
    int ok = g && em_tensor_read(g, back, (size_t)n * sizeof *back) == EM_OK &&
             memcmp(v, back, (size_t)n * sizeof *back) == 0;
    report("upload+download 14 MB", ok, ok ? 0 : INFINITY);
    pair p = mk(v, EM_F32, 1, s1);
    CHECK("clone 14 MB (memcpy)", 0, em_clone(S(p)));
    CHECK("contiguous of a slice", 0, em_contiguous(em_slice(S(p), 0, 1, n, 3)));
    free(v);
    free(back);
}

int main(void)
{
    em_init();
    em_clear_error();
    g_cuda = em_device_find("cuda");
    if (!g_cuda) {
        printf("SKIP: no CUDA device (%s)\n", em_last_error());
        return 77;
    }
    g_cpu = em_device_find("cpu");
    em_device_props p = {.struct_size = sizeof p};
    em_device_properties(g_cuda, &p);
    printf("cuda device: %s (%s)\n", p.name, p.description);
    em_scope_begin();

    /* add with broadcast: [64,33] + [33] and [64,1] + [1,33] */
    int64_t sa[2] = {64, 33}, sb[1] = {33}, sc[2] = {64, 1}, sd[2] = {1, 33};
    float *va = values(64 * 33, 1), *vb = values(33, 2), *vc = values(64, 3);
    em_tensor *ga = on(g_cuda, va, 2, sa), *ca = on(g_cpu, va, 2, sa);
    em_tensor *gb = on(g_cuda, vb, 1, sb), *cb = on(g_cpu, vb, 1, sb);
    em_tensor *gc = on(g_cuda, vc, 2, sc), *cc = on(g_cpu, vc, 2, sc);
    em_tensor *gd = on(g_cuda, vb, 2, sd), *cd = on(g_cpu, vb, 2, sd);
    compare("add [64,33]+[33]", em_add(ga, gb), em_add(ca, cb), 0);
    compare("add [64,1]+[1,33]", em_add(gc, gd), em_add(cc, cd), 0);
    compare("add transposed", em_add(em_transpose(ga, 0, 1), em_transpose(ga, 0, 1)),
            em_add(em_transpose(ca, 0, 1), em_transpose(ca, 0, 1)), 0);
    compare("add_scalar", em_add_scalar(ga, 0.5), em_add_scalar(ca, 0.5), 0);
    compare("maximum broadcast", em_maximum(ga, gb), em_maximum(ca, cb), 0);
    compare("exp", em_exp(ga), em_exp(ca), 2e-6);
    compare("sigmoid", em_sigmoid(ga), em_sigmoid(ca), 2e-6);
    compare("gelu tanh", em_gelu(ga, true), em_gelu(ca, true), 2e-6);
    compare("neg", em_neg(ga), em_neg(ca), 0);
    compare("cast f32->i32", em_cast(em_mul_scalar(ga, 1e9), EM_I32),
            em_cast(em_mul_scalar(ca, 1e9), EM_I32), 0);
    compare("cast f32->bf16", em_cast(ga, EM_BF16), em_cast(ca, EM_BF16), 0);
    compare("exp f16", em_exp(em_cast(ga, EM_F16)), em_exp(em_cast(ca, EM_F16)), 1e-3);

    /* matmul: [33,64] x [64,33], batched [4,16,8] x [8,5], and linear with bias */
    compare("matmul", em_matmul(em_transpose(ga, 0, 1), ga), em_matmul(em_transpose(ca, 0, 1), ca),
            1e-4);
    int64_t s3[3] = {4, 16, 8}, s2[2] = {8, 5}, sw[2] = {5, 8}, sbias[1] = {5};
    float *v3 = values(4 * 16 * 8, 4), *v2 = values(8 * 5, 5);
    compare("matmul batched", em_matmul(on(g_cuda, v3, 3, s3), on(g_cuda, v2, 2, s2)),
            em_matmul(on(g_cpu, v3, 3, s3), on(g_cpu, v2, 2, s2)), 1e-4);
    int64_t sx[2] = {16, 8};
    compare("linear + bias",
            em_linear(on(g_cuda, v3, 2, sx), on(g_cuda, v2, 2, sw), on(g_cuda, vb, 1, sbias)),
            em_linear(on(g_cpu, v3, 2, sx), on(g_cpu, v2, 2, sw), on(g_cpu, vb, 1, sbias)), 1e-4);
    /* cuBLASLt: bf16 linear with the bias epilogue; addmm (w as a transposed view, a full
     * [M,N] bias added with beta 1); a linear on a transposed x view (no copy) */
    compare("linear bf16 + bias",
            em_linear(em_cast(on(g_cuda, v3, 2, sx), EM_BF16), em_cast(on(g_cuda, v2, 2, sw), EM_BF16),
                      em_cast(on(g_cuda, vb, 1, sbias), EM_BF16)),
            em_linear(em_cast(on(g_cpu, v3, 2, sx), EM_BF16), em_cast(on(g_cpu, v2, 2, sw), EM_BF16),
                      em_cast(on(g_cpu, vb, 1, sbias), EM_BF16)), 2e-2);
    int64_t sxt[2] = {8, 16}, smn[2] = {16, 5};
    compare("addmm [16,5] + [16,8] x [8,5]",
            em_addmm(on(g_cuda, v3, 2, smn), on(g_cuda, v3, 2, sx), on(g_cuda, v2, 2, s2)),
            em_addmm(on(g_cpu, v3, 2, smn), on(g_cpu, v3, 2, sx), on(g_cpu, v2, 2, s2)), 1e-4);
    compare("linear x^T view + bias",
            em_linear(em_transpose(on(g_cuda, v3, 2, sxt), 0, 1), on(g_cuda, v2, 2, sw),
                      on(g_cuda, vb, 1, sbias)),
            em_linear(em_transpose(on(g_cpu, v3, 2, sxt), 0, 1), on(g_cpu, v2, 2, sw),
                      on(g_cpu, vb, 1, sbias)), 1e-4);

    test_compare_select();
    test_reduce();
    test_softmax();
    test_random();
    test_index();
    test_transfers();
    uint64_t fb = em_fallback_count();
    report("no CPU fallbacks", fb == 0, (double)fb);

    em_scope_end();
    free(va); free(vb); free(vc); free(v3); free(v2);
    printf("%d passed, %d failed; em_fallback_count %" PRIu64 "\n", passed, failed,
           em_fallback_count());
    em_shutdown();
    return failed ? 1 : 0;
}
