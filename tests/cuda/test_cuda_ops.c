/*
 * test_cuda_ops.c — a first check of the CUDA kernels: a few ops on cuda:0
 * against the same ops on cpu:0 (same inputs, uploaded to both devices).
 * Exits 77 (skipped) when em_device_find("cuda") fails: no GPU or no driver.
 * Prints em_fallback_count() at the end (ops that ran on the CPU instead).
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
        if (isnan(x[i]) && isnan(y[i])) continue;
        double e = fabs(x[i] - y[i]) / (fabs(y[i]) > 1 ? fabs(y[i]) : 1);
        if (!(e <= tol)) ok = 0;
        if (e > worst || isnan(e)) worst = e;
    }
    report(what, ok, worst);
    free(x);
    free(y);
}

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

    em_scope_end();
    free(va); free(vb); free(vc); free(v3); free(v2);
    printf("%d passed, %d failed; em_fallback_count %" PRIu64 "\n", passed, failed,
           em_fallback_count());
    em_shutdown();
    return failed ? 1 : 0;
}
