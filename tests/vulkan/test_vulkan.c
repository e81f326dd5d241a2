/*
 * test_vulkan.c — the Vulkan plugin on whatever Vulkan device is present
 * (lavapipe in CI), with the validation layer on (EMBER_VULKAN_VALIDATION=1,
 * set by CTest). Scenarios (argv[1]):
 *   props  em_device_find("vulkan") finds a device; its properties are sane; a
 *          CPU-type Vulkan device is "software" and auto-selection keeps the CPU
 *   ops    every op with a Vulkan kernel against the CPU device's result: random
 *          inputs, broadcast, transposed and strided operands, sizes that are not
 *          multiples of the tiles, empty tensors; the max error is printed; no op
 *          may fall back; a validation message fails the op that caused it, and
 *          synchronize at the end proves none is pending.
 *   more   every other op of api/ember_plugin.h on every dtype vs the CPU device:
 *          casts between all dtypes on special values (NaN, inf, out of range,
 *          ties) exactly; elementwise ops, comparisons, where/clamp/masked_fill;
 *          reductions over dims (also the two-pass path); softmax; index ops with
 *          duplicate indices and an out-of-range index (EM_ERR_INDEX); random ops
 *          bit for bit; linear/addmm. With EMBER_VULKAN_NARROW=1 (the
 *          ops_narrow test) only the i64/f64 part may fall back to the CPU.
 *   validation  EMBER_VULKAN_SELFTEST=invalid-call makes the plugin issue one
 *          invalid Vulkan call in its first kernel: the op must fail with the
 *          layer's message (VUID-VkBufferCreateInfo-size-00912), and the next op
 *          must succeed. Fails if the validation layer is off or silenced.
 * Exit 77 (skipped) when no Vulkan device can be used.
 */
#include "test_vulkan.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int g_fail, g_pass;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
double urand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1.0p-53;
}

em_device *g_vk, *g_cpu;
uint64_t g_read_fallbacks; /* em_tensor_read_f64 casts to f64: a CPU fallback */

em_tensor *rand_t(int ndim, const int64_t *shape, double lo, double hi, em_device *dev)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) v[i] = (float)(lo + (hi - lo) * urand());
    em_tensor *t = em_tensor_from_data(v, EM_F32, ndim, shape, dev);
    free(v);
    return t;
}

/* Compares the Vulkan result with the CPU one: |v - c| <= atol + rtol*|c|
 * (NaN must match NaN). Prints the max error. */
void compare(const char *what, em_tensor *v, em_tensor *c, double atol, double rtol)
{
    EXPECT(v && c, "%s: result missing (vulkan %p, cpu %p)", what, (void *)v, (void *)c);
    if (!v || !c) return;
    int64_t n = em_tensor_numel(c);
    EXPECT(em_tensor_numel(v) == n, "%s: numel %lld vs %lld", what, (long long)em_tensor_numel(v),
           (long long)n);
    EXPECT(em_tensor_device(v) == g_vk, "%s: result not on the vulkan device", what);
    if (em_tensor_numel(v) != n) return;
    double *a = malloc(sizeof(double) * (size_t)(n + 1)), *b = malloc(sizeof(double) * (size_t)(n + 1));
    uint64_t fb = em_fallback_count();
    em_status s1 = em_tensor_read_f64(v, a, (size_t)n), s2 = em_tensor_read_f64(c, b, (size_t)n);
    g_read_fallbacks += em_fallback_count() - fb;
    EXPECT(s1 == EM_OK && s2 == EM_OK, "%s: read back", what);
    double maxe = 0, maxr = 0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n && s1 == EM_OK; i++) {
        if (isnan(b[i]) || isnan(a[i])) {
            if (!(isnan(a[i]) && isnan(b[i])) && bad < 0) bad = i;
            continue;
        }
        double e = fabs(a[i] - b[i]);
        if (e > maxe) maxe = e;
        if (b[i] != 0 && e / fabs(b[i]) > maxr) maxr = e / fabs(b[i]);
        if (e > atol + rtol * fabs(b[i]) && bad < 0) bad = i;
    }
    printf("  %-40s n=%-8lld max_abs_err %.3g max_rel_err %.3g\n", what, (long long)n, maxe, maxr);
    EXPECT(bad < 0, "%s: element %lld: vulkan %.9g cpu %.9g", what, (long long)bad,
           bad >= 0 ? a[bad] : 0.0, bad >= 0 ? b[bad] : 0.0);
    free(a);
    free(b);
}

/* ---------------- props ---------------------------------------------------- */

static void test_props(void)
{
    em_device_props p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    EXPECT(em_device_properties(g_vk, &p) == EM_OK, "properties");
    printf("vulkan device: %s (%s), %llu MiB, %s\n", p.name, em_device_type_name(p.type),
           (unsigned long long)(p.memory_bytes >> 20), p.description);
    EXPECT(!strcmp(p.backend, "vulkan"), "backend name %s", p.backend);
    EXPECT(p.name[0] != '\0', "device name empty");
    EXPECT(p.memory_bytes > 0, "memory 0");
    EXPECT(p.dtype_mask & (1u << EM_F32), "f32 not in the dtype mask");
    EXPECT(p.type == EM_DEVICE_SOFTWARE || p.type == EM_DEVICE_GPU ||
               p.type == EM_DEVICE_INTEGRATED_GPU || p.type == EM_DEVICE_OTHER,
           "type %d", (int)p.type);
    if (strstr(p.name, "llvmpipe"))
        EXPECT(p.type == EM_DEVICE_SOFTWARE, "lavapipe must be software, is %s",
               em_device_type_name(p.type));
    const char *val = getenv("EMBER_VULKAN_VALIDATION");
    if (val && !strcmp(val, "1"))
        EXPECT(strstr(p.description, "validation on") != NULL, "validation not on: %s",
               p.description);
    const char *be = getenv("EMBER_BACKEND");
    if ((!be || !*be) && p.type == EM_DEVICE_SOFTWARE) {
        em_device *def = em_device_default();
        EXPECT(def == g_cpu, "auto-selection picked %s, want the CPU (lavapipe is software)",
               def ? em_device_name(def) : "(none)");
    }
    EXPECT(em_device_find("vulkan:99") == NULL, "vulkan:99 should not exist");
}

/* ---------------- ops ------------------------------------------------------ */

typedef em_tensor *(*bin_fn)(const em_tensor *, const em_tensor *);
typedef em_tensor *(*sc_fn)(const em_tensor *, double);
typedef em_tensor *(*un_fn)(const em_tensor *);

static void test_ops(void)
{
    uint64_t fb0 = em_fallback_count();
    static const struct { const char *name; bin_fn f; sc_fn s; } bins[] = {
        {"add", em_add, em_add_scalar}, {"sub", em_sub, em_sub_scalar},
        {"mul", em_mul, em_mul_scalar}, {"div", em_div, em_div_scalar},
        {"maximum", em_maximum, em_maximum_scalar}, {"minimum", em_minimum, em_minimum_scalar}};
    static const struct { const char *name; un_fn f; double lo, hi; } uns[] = {
        {"neg", em_neg, -3, 3}, {"abs", em_abs, -3, 3}, {"exp", em_exp, -10, 10},
        {"log", em_log, 1e-3, 100}, {"sqrt", em_sqrt, 0, 100}, {"tanh", em_tanh, -12, 12},
        {"sigmoid", em_sigmoid, -30, 30}, {"relu", em_relu, -3, 3}};
    static const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {2, 17, 33}, {1, 300, 257}};
    char what[96];
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        em_scope_begin();
        const int64_t *sh = shapes[si];
        em_tensor *ac = rand_t(3, sh, -2, 2, g_cpu), *bc = rand_t(3, sh, 0.5, 2, g_cpu);
        int64_t bsh[3] = {1, sh[1], 1}; /* broadcast operand */
        em_tensor *cc = rand_t(3, bsh, -2, 2, g_cpu);
        em_tensor *av = em_tensor_to(ac, g_vk), *bv = em_tensor_to(bc, g_vk), *cv = em_tensor_to(cc, g_vk);
        for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
            snprintf(what, sizeof what, "%s [%lld,%lld,%lld]", bins[i].name, (long long)sh[0],
                     (long long)sh[1], (long long)sh[2]);
            compare(what, bins[i].f(av, bv), bins[i].f(ac, bc), 1e-30, 1e-6);
            snprintf(what, sizeof what, "%s broadcast [1,%lld,1]", bins[i].name, (long long)sh[1]);
            compare(what, bins[i].f(av, cv), bins[i].f(ac, cc), 1e-30, 1e-6);
            /* transposed operands (strided reads) */
            em_tensor *tv = em_transpose(av, 0, 2), *tc = em_transpose(ac, 0, 2);
            em_tensor *uv = em_transpose(bv, 0, 2), *uc = em_transpose(bc, 0, 2);
            snprintf(what, sizeof what, "%s transposed", bins[i].name);
            compare(what, bins[i].f(tv, uv), bins[i].f(tc, uc), 1e-30, 1e-6);
            snprintf(what, sizeof what, "%s scalar", bins[i].name);
            compare(what, bins[i].s(av, 0.75), bins[i].s(ac, 0.75), 1e-30, 1e-6);
        }
        for (size_t i = 0; i < sizeof uns / sizeof uns[0]; i++) {
            em_tensor *xc = rand_t(3, sh, uns[i].lo, uns[i].hi, g_cpu), *xv = em_tensor_to(xc, g_vk);
            snprintf(what, sizeof what, "%s [%lld,%lld,%lld]", uns[i].name, (long long)sh[0],
                     (long long)sh[1], (long long)sh[2]);
            compare(what, uns[i].f(xv), uns[i].f(xc), 1e-6, 4e-6);
            snprintf(what, sizeof what, "%s transposed", uns[i].name);
            compare(what, uns[i].f(em_transpose(xv, 1, 2)), uns[i].f(em_transpose(xc, 1, 2)), 1e-6, 4e-6);
        }
        /* AXPY (in place) */
        em_tensor *yv = em_clone(av), *yc = em_clone(ac);
        EXPECT(em_add_scaled_(yv, bv, -1.5) == EM_OK && em_add_scaled_(yc, bc, -1.5) == EM_OK, "axpy");
        compare("axpy (add_scaled_)", yv, yc, 1e-6, 1e-6);
        /* FILL, COPY (contiguous of a transposed view) */
        EXPECT(em_fill_(yv, 3.25) == EM_OK && em_fill_(yc, 3.25) == EM_OK, "fill_");
        compare("fill", yv, yc, 0, 0);
        compare("copy (contiguous of transpose)", em_contiguous(em_transpose(av, 0, 1)),
                em_contiguous(em_transpose(ac, 0, 1)), 0, 0);
        /* SUM over all dims and over masks */
        compare("sum all", em_sum(av, NULL, 0, false), em_sum(ac, NULL, 0, false), 1e-5, 1e-5);
        int d1[1] = {1}, d02[2] = {0, 2};
        compare("sum dim 1", em_sum(av, d1, 1, true), em_sum(ac, d1, 1, true), 1e-5, 1e-5);
        compare("sum dims 0,2", em_sum(av, d02, 2, false), em_sum(ac, d02, 2, false), 1e-5, 1e-5);
        compare("sum dim 1 of transpose", em_sum(em_transpose(av, 1, 2), d1, 1, false),
                em_sum(em_transpose(ac, 1, 2), d1, 1, false), 1e-5, 1e-5);
        em_scope_end();
    }
    /* SUM of many elements (two-pass path) */
    {
        em_scope_begin();
        int64_t n = 3000001;
        em_tensor *xc = rand_t(1, &n, 0, 1, g_cpu), *xv = em_tensor_to(xc, g_vk);
        compare("sum all, 3e6 elements", em_sum(xv, NULL, 0, false), em_sum(xc, NULL, 0, false), 0, 2e-6);
        int64_t sh2[2] = {3, 1000000};
        em_tensor *yc = rand_t(2, sh2, 0, 1, g_cpu), *yv = em_tensor_to(yc, g_vk);
        int d1[1] = {1};
        compare("sum dim 1 of [3,1e6]", em_sum(yv, d1, 1, false), em_sum(yc, d1, 1, false), 0, 2e-6);
        em_scope_end();
    }
    /* MATMUL: sizes around the 16x16 tile, transposed and batched operands */
    static const int64_t mm[][4] = {{1, 1, 1, 1}, {1, 16, 16, 16}, {2, 17, 31, 5},
                                    {3, 33, 7, 65}, {1, 100, 130, 70}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        em_scope_begin();
        int64_t as[3] = {mm[i][0], mm[i][1], mm[i][2]}, bs[3] = {mm[i][0], mm[i][2], mm[i][3]};
        em_tensor *ac = rand_t(3, as, -1, 1, g_cpu), *bc = rand_t(3, bs, -1, 1, g_cpu);
        em_tensor *av = em_tensor_to(ac, g_vk), *bv = em_tensor_to(bc, g_vk);
        snprintf(what, sizeof what, "matmul [%lld,%lld,%lld]x[.,%lld]", (long long)as[0],
                 (long long)as[1], (long long)as[2], (long long)bs[2]);
        compare(what, em_matmul(av, bv), em_matmul(ac, bc), 1e-5, 1e-5);
        /* b^T a^T = (a b)^T with both operands transposed views */
        compare("matmul of transposed views", em_matmul(em_transpose(bv, 1, 2), em_transpose(av, 1, 2)),
                em_matmul(em_transpose(bc, 1, 2), em_transpose(ac, 1, 2)), 1e-5, 1e-5);
        /* broadcast batch: [M,K] x [B,K,N] */
        em_tensor *a2c = em_select(ac, 0, 0), *a2v = em_select(av, 0, 0);
        compare("matmul broadcast batch", em_matmul(a2v, bv), em_matmul(a2c, bc), 1e-5, 1e-5);
        em_scope_end();
    }
    /* empty tensors never reach a kernel, but must work end to end */
    {
        em_scope_begin();
        int64_t e[2] = {0, 5};
        em_tensor *xc = rand_t(2, e, 0, 1, g_cpu), *xv = em_tensor_to(xc, g_vk);
        compare("add of empty", em_add(xv, xv), em_add(xc, xc), 0, 0);
        compare("sum of empty", em_sum(xv, NULL, 0, false), em_sum(xc, NULL, 0, false), 0, 0);
        em_scope_end();
    }
    uint64_t fb = em_fallback_count() - fb0 - g_read_fallbacks;
    printf("CPU fallbacks of the ops under test (reads excluded): %llu\n", (unsigned long long)fb);
    EXPECT(fb == 0, "%llu ops fell back to the CPU", (unsigned long long)fb);
    /* A pending validation message would fail this call. */
    EXPECT(em_device_synchronize(g_vk) == EM_OK, "synchronize (validation messages pending?)");
}

/* ---------------- validation ---------------------------------------------- */

/* main set EMBER_VULKAN_SELFTEST=invalid-call: the plugin's first kernel makes
 * one invalid call, which the validation layer must report and the plugin must
 * turn into this op's failure. A silenced or absent layer fails this test. */
static void test_validation(void)
{
    const char *val = getenv("EMBER_VULKAN_VALIDATION");
    EXPECT(val && !strcmp(val, "1"), "EMBER_VULKAN_VALIDATION is not 1 (CTest sets it)");
    int64_t n = 8;
    em_tensor *x = em_tensor_to(rand_t(1, &n, 0, 1, g_cpu), g_vk);
    EXPECT(x != NULL, "upload");
    em_tensor *y = em_add(x, x);
    const char *msg = em_last_error();
    printf("first op with the deliberate invalid call: %s\n  status %s, message: %.300s\n",
           y ? "succeeded" : "failed", em_status_str(em_last_status()), msg);
    EXPECT(y == NULL && em_last_status() == EM_ERR_BACKEND,
           "the invalid Vulkan call did not fail the op: is the validation layer on?");
    EXPECT(strstr(msg, "validation") && strstr(msg, "VUID-VkBufferCreateInfo-size-00912"),
           "the error does not carry the layer's message");
    em_clear_error();
    em_tensor *z = em_add(x, x);
    EXPECT(z != NULL, "the op after the reported one failed too");
    compare("add after the validation failure", z, em_add(em_tensor_to(x, g_cpu), em_tensor_to(x, g_cpu)), 0, 0);
    EXPECT(em_device_synchronize(g_vk) == EM_OK, "synchronize");
}

int main(int argc, char **argv)
{
    const char *scenario = argc > 1 ? argv[1] : "ops";
    if (!strcmp(scenario, "validation")) setenv("EMBER_VULKAN_SELFTEST", "invalid-call", 1);
    if (em_init() != EM_OK && !em_device_cpu()) {
        printf("em_init failed: %s\n", em_last_error());
        return 1;
    }
    g_cpu = em_device_cpu();
    g_vk = em_device_find("vulkan");
    if (!g_vk) {
        printf("SKIP: no usable Vulkan device: %s\n", em_last_error());
        for (int i = 0; i < em_plugin_rejected_count(); i++) printf("  %s\n", em_plugin_rejected(i));
        return 77;
    }
    if (!strcmp(scenario, "props")) test_props();
    else if (!strcmp(scenario, "validation")) test_validation();
    else {
        test_ops();
        test_more();
    }
    em_shutdown();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
