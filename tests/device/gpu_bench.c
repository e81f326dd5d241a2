/*
 * gpu_bench.c — the GPU figures of issues [4] and [5], measured through Ember's
 * public API on one device (default: the EMBER_BACKEND device; argv[1] names
 * another, e.g. "cuda" or "vulkan").
 *
 * Each figure is the median of timed repeats after a warm-up, every repeat
 * ending in em_device_synchronize so the GPU's work is inside the timing:
 *   matmul f32 1024^3 and 4096^3, bf16 8192^3, f16 8192^3 (TFLOP/s = 2 M N K / t)
 *   add 256M f32 (out of place)                   (GB/s = 3 * 4 bytes * n / t)
 *   clone 256M f32 (device copy)                  (GB/s = 2 * 4 bytes * n / t)
 *   add 16 f32                                    (us per op, dispatch latency)
 * A correctness spot-check of the f32 matmul against a float64 dot product of
 * a few entries guards the timing against a kernel that does nothing. A matmul
 * dtype the device lacks (its first call falls back to the CPU) is skipped.
 *
 * Prints "key value" lines (read by run_gpu_checks.sh) and nothing else on
 * stdout. Not a test; exit 1 only if the device is missing or an op fails.
 *
 * Build: cc -O2 -I api gpu_bench.c -L build/core -lember -lm
 * Usage: gpu_bench [DEVICE] [--quick] [--f32-matmul-only]
 * (--f32-matmul-only: just the f32 matmuls, e.g. to time EMBER_VULKAN_MATMUL=generic
 * beside the default shader in one run)
 */
#include "ember.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_quick;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef em_tensor *(*op2)(const em_tensor *, const em_tensor *);

static em_tensor *clone_first(const em_tensor *a, const em_tensor *b)
{
    (void)b;
    return em_clone(a);
}

/* Median seconds per call of f(a, b) on dev, `inner` calls per repeat. */
static double time_op(em_device *dev, op2 f, const em_tensor *a, const em_tensor *b, int inner)
{
    const int reps = g_quick ? 5 : 9;
    double t[16];
    for (int w = 0; w < 2; w++) em_tensor_release(f(a, b)); /* warm-up */
    if (em_device_synchronize(dev) != EM_OK) return NAN;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < inner; i++) {
            em_tensor *out = f(a, b);
            if (!out) return NAN;
            em_tensor_release(out);
        }
        if (em_device_synchronize(dev) != EM_OK) return NAN;
        t[r] = (now_s() - t0) / inner;
    }
    return median(t, reps);
}

static int failed(const char *what)
{
    if (em_last_status() == EM_OK) return 0;
    fprintf(stderr, "gpu_bench: %s: %s\n", what, em_last_error());
    em_clear_error();
    return 1;
}

/* Max relative error of a few entries of c = a b against float64 dot products
 * (relative to sum |a_ik b_kj|, the scale of the rounding error). */
static double spot_check(const em_tensor *a, const em_tensor *b, const em_tensor *c, int64_t n)
{
    size_t bytes = (size_t)(n * n) * sizeof(float);
    float *pa = malloc(bytes), *pb = malloc(bytes), *pc = malloc(bytes);
    double worst = NAN;
    if (pa && pb && pc && em_tensor_read(a, pa, bytes) == EM_OK &&
        em_tensor_read(b, pb, bytes) == EM_OK && em_tensor_read(c, pc, bytes) == EM_OK) {
        worst = 0;
        for (int s = 0; s < 8; s++) {
            int64_t i = (s * 977) % n, j = (s * 1493 + 11) % n;
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < n; k++) {
                ref += (double)pa[i * n + k] * pb[k * n + j];
                mag += fabs((double)pa[i * n + k] * pb[k * n + j]);
            }
            double e = fabs(pc[i * n + j] - ref) / (mag > 0 ? mag : 1);
            if (e > worst) worst = e;
        }
    }
    free(pa);
    free(pb);
    free(pc);
    return worst;
}

static void bench_matmul(em_device *dev, em_dtype dt, int64_t n, const char *key)
{
    em_tensor *a32 = em_randn(NULL, EM_F32, EM_SHAPE(n, n), dev);
    em_tensor *b32 = em_randn(NULL, EM_F32, EM_SHAPE(n, n), dev);
    em_tensor *a = dt == EM_F32 ? em_clone(a32) : em_cast(a32, dt);
    em_tensor *b = dt == EM_F32 ? em_clone(b32) : em_cast(b32, dt);
    if (failed(key)) goto out;
    /* A product the device cannot do runs on the CPU (minutes at 8192): skip it. */
    uint64_t fb = em_fallback_count();
    em_tensor *c = em_matmul(a, b);
    if (failed(key)) goto out;
    if (em_fallback_count() != fb) {
        printf("%s_skipped fell_back_to_cpu\n", key);
        em_tensor_release(c);
        goto out;
    }
    if (dt == EM_F32) printf("%s_spot_rel_err %.3g\n", key, spot_check(a, b, c, n));
    em_tensor_release(c);
    double t = time_op(dev, em_matmul, a, b, n >= 8192 ? 3 : 10);
    if (!failed(key)) printf("%s_tflops %.2f\n", key, 2.0 * n * n * n / t * 1e-12);
out:
    em_tensor_release(a32);
    em_tensor_release(b32);
    em_tensor_release(a);
    em_tensor_release(b);
}

static void bench_bandwidth(em_device *dev, int64_t n)
{
    em_tensor *a = em_randn(NULL, EM_F32, EM_SHAPE(n), dev);
    em_tensor *b = em_randn(NULL, EM_F32, EM_SHAPE(n), dev);
    if (failed("bandwidth inputs")) goto out;
    double t = time_op(dev, em_add, a, b, 5);
    if (!failed("add")) printf("add_256M_gbs %.1f\n", 3.0 * 4.0 * (double)n / t * 1e-9);
    t = time_op(dev, clone_first, a, b, 5);
    if (!failed("clone")) printf("clone_256M_gbs %.1f\n", 2.0 * 4.0 * (double)n / t * 1e-9);
out:
    em_tensor_release(a);
    em_tensor_release(b);
}

static void bench_latency(em_device *dev)
{
    em_tensor *a = em_randn(NULL, EM_F32, EM_SHAPE(16), dev);
    em_tensor *b = em_randn(NULL, EM_F32, EM_SHAPE(16), dev);
    double t = failed("add16 inputs") ? NAN : time_op(dev, em_add, a, b, 2000);
    if (!failed("add16")) printf("add16_us %.2f\n", t * 1e6);
    em_tensor_release(a);
    em_tensor_release(b);
}

int main(int argc, char **argv)
{
    const char *spec = NULL;
    int f32_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else if (!strcmp(argv[i], "--f32-matmul-only")) f32_only = 1;
        else spec = argv[i];
    }
    if (em_init() != EM_OK) {
        fprintf(stderr, "gpu_bench: em_init: %s\n", em_last_error());
        return 1;
    }
    em_device *dev = spec ? em_device_find(spec) : em_device_default();
    if (!dev) {
        fprintf(stderr, "gpu_bench: no device '%s': %s\n", spec ? spec : "(default)", em_last_error());
        em_shutdown();
        return 1;
    }
    printf("device %s\n", em_device_name(dev));
    em_manual_seed(1);
    uint64_t fb0 = em_fallback_count();
    if (!f32_only) bench_latency(dev);
    bench_matmul(dev, EM_F32, 1024, "matmul_f32_1024");
    bench_matmul(dev, EM_F32, 4096, "matmul_f32_4096");
    if (!f32_only) {
        bench_matmul(dev, EM_BF16, 8192, "matmul_bf16_8192");
        bench_matmul(dev, EM_F16, 8192, "matmul_f16_8192");
        bench_bandwidth(dev, (int64_t)256 << 20);
    }
    printf("fallbacks %llu\n", (unsigned long long)(em_fallback_count() - fb0));
    em_shutdown();
    return 0;
}
