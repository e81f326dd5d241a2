/*
 * bench_core.c — ember-bench-core: how close Ember's CPU path comes to the
 * machine it runs on.
 *
 * Measures, in one run and on the CPU device:
 *   - autograd overhead: a 16-element add recorded and backpropagated (us
 *     per step, gradients accumulated into both inputs);
 *   - dispatch latency of a 16-element f32 em_add (us per op), with the result
 *     released each time and inside a scope;
 *   - the machine's f32 FMA peak (hand-written AVX-512 or AVX2+FMA loop on
 *     every core at once) and em_matmul GFLOP/s at 256..2048 as % of it;
 *   - the machine's memory bandwidth (STREAM-style add on 2 threads) and
 *     em_add / em_add_ of 16M f32 elements in GB/s as % of it;
 *   - the OpenBLAS core type the CPU backend reports.
 * Every figure is the median over repeats after warm-up, with p10..p90.
 * With --pytorch it runs bench/pytorch_core.py and prints its figures beside.
 *
 * It reports; it never asserts a timing. Exit status is 0 unless Ember
 * returned an error or an argument was wrong.
 */
#define _GNU_SOURCE
#include <ember.h>

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef EMBER_BENCH_DIR
#define EMBER_BENCH_DIR "bench"
#endif

#define PYTHON "/usr/bin/python3"
#define MEM_THREADS 2
#define MEM_N (16L * 1024 * 1024)              /* floats per array: 64 MiB */
#define MEM_TRAFFIC (3.0 * MEM_N * sizeof(float)) /* a + b -> c, STREAM counting */

/* ---------------------------------------------------------------------- */
/* Timing and statistics                                                  */
/* ---------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct stat3 {
    double median, p10, p90;
    int valid;
} stat3;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *sorted, int n, double p)
{
    double x = p * (n - 1);
    int i = (int)x;
    int j = i + 1 < n ? i + 1 : n - 1;
    return sorted[i] + (sorted[j] - sorted[i]) * (x - i);
}

static stat3 stats_of(double *samples, int n)
{
    stat3 s = {0, 0, 0, 0};
    if (n <= 0)
        return s;
    qsort(samples, (size_t)n, sizeof(double), cmp_double);
    s.median = quantile(samples, n, 0.5);
    s.p10 = quantile(samples, n, 0.1);
    s.p90 = quantile(samples, n, 0.9);
    s.valid = 1;
    return s;
}

static int g_quick = 0;
static int g_errors = 0;

/* Records an Ember error (if any) and returns 1 when there was one. */
static int ember_failed(const char *what)
{
    if (em_last_status() == EM_OK)
        return 0;
    fprintf(stderr, "ember-bench-core: %s: %s\n", what, em_last_error());
    em_clear_error();
    g_errors++;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Results                                                                */
/* ---------------------------------------------------------------------- */

static struct results {
    char device[160];
    char blas[256];
    int cores;
    double load_at_start; /* 1-minute load average before measuring */
    const char *isa;
    stat3 add16_release, add16_scope, add16_backward;
    stat3 fma_peak;
    int mm_sizes[4];
    stat3 matmul[4];
    stat3 membw, add16m, add16m_inplace;
} R = {.mm_sizes = {256, 512, 1024, 2048}};

/* PyTorch peer figures (valid == 0 when not run). */
static struct peer {
    int ran;
    char version[64];
    stat3 add16, add16_backward, matmul[4], add16m, add16m_inplace;
} P;

/* ---------------------------------------------------------------------- */
/* 1. Dispatch latency                                                    */
/* ---------------------------------------------------------------------- */

static void bench_dispatch(em_device *cpu)
{
    em_tensor *a = em_rand(NULL, EM_F32, EM_SHAPE(16), cpu);
    em_tensor *b = em_rand(NULL, EM_F32, EM_SHAPE(16), cpu);
    if (ember_failed("dispatch: creating inputs"))
        goto done;
    const int iters = g_quick ? 20000 : 50000;
    const int reps = g_quick ? 7 : 21;
    double samples[32];

    /* Variant 1: no scope, the caller releases each result. */
    for (int i = 0; i < iters; i++)
        em_tensor_release(em_add(a, b));
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < iters; i++)
            em_tensor_release(em_add(a, b));
        samples[r] = (now_s() - t0) / iters * 1e6;
    }
    if (!ember_failed("dispatch: em_add"))
        R.add16_release = stats_of(samples, reps);

    /* Variant 2: results owned by a scope, closed every 64 ops (as a training
     * step would); the cost of em_scope_end is included. */
    const int chunk = 64;
    for (int r = -1; r < reps; r++) { /* r == -1 is the warm-up */
        double t0 = now_s();
        for (int i = 0; i < iters; i += chunk) {
            em_scope_begin();
            for (int k = 0; k < chunk; k++)
                em_add(a, b);
            em_scope_end();
        }
        if (r >= 0)
            samples[r] = (now_s() - t0) / iters * 1e6;
    }
    if (!ember_failed("dispatch: em_add in a scope"))
        R.add16_scope = stats_of(samples, reps);

    /* Variant 3: autograd. a and b require grad; each step records the add,
     * backpropagates a given gradient of ones and accumulates into a.grad
     * and b.grad (torch: c = a + b; c.backward(g)). */
    em_tensor *g = em_ones(EM_F32, EM_SHAPE(16), cpu);
    em_requires_grad_(a, true);
    em_requires_grad_(b, true);
    const int bw_iters = iters / 10;
    for (int r = -1; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < bw_iters; i++) {
            em_scope_begin();
            em_backward(em_add(a, b), g, false, false);
            em_scope_end();
        }
        if (r >= 0)
            samples[r] = (now_s() - t0) / bw_iters * 1e6;
    }
    em_tensor_release(g);
    if (!ember_failed("dispatch: em_add + em_backward"))
        R.add16_backward = stats_of(samples, reps);
done:
    em_tensor_release(a);
    em_tensor_release(b);
}

/* ---------------------------------------------------------------------- */
/* 2. FMA peak: independent FMA chains on every core at once              */
/* ---------------------------------------------------------------------- */

#define FMA_CHAINS 16

__attribute__((target("avx512f"))) static double fma_loop_avx512(long iters)
{
    __m512 acc[FMA_CHAINS];
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < FMA_CHAINS; k++)
        acc[k] = _mm512_set1_ps(1.0f + (float)k * 1e-3f);
    for (long i = 0; i < iters; i++) {
        /* FMA_CHAINS independent dependency chains hide the FMA latency. */
#pragma GCC unroll 16
        for (int k = 0; k < FMA_CHAINS; k++)
            acc[k] = _mm512_fmadd_ps(acc[k], m, c);
    }
    __m512 s = acc[0];
    for (int k = 1; k < FMA_CHAINS; k++)
        s = _mm512_add_ps(s, acc[k]);
    return (double)_mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters)
{
    __m256 acc[FMA_CHAINS];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < FMA_CHAINS; k++)
        acc[k] = _mm256_set1_ps(1.0f + (float)k * 1e-3f);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < FMA_CHAINS; k++)
            acc[k] = _mm256_fmadd_ps(acc[k], m, c);
    }
    __m256 s = acc[0];
    for (int k = 1; k < FMA_CHAINS; k++)
        s = _mm256_add_ps(s, acc[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    double sum = 0;
    for (int k = 0; k < 8; k++)
        sum += out[k];
    return sum;
}

typedef struct worker {
    pthread_t thread;
    int cpu;
    int use512;
    long iters;
    pthread_barrier_t *barrier;
    double sink;
    double t_start, t_end; /* taken by the worker itself */
} worker;

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
}

static void *fma_worker(void *arg)
{
    worker *w = arg;
    pin_to(w->cpu);
    pthread_barrier_wait(w->barrier);
    w->t_start = now_s();
    w->sink = w->use512 ? fma_loop_avx512(w->iters) : fma_loop_avx2(w->iters);
    w->t_end = now_s();
    return NULL;
}

/* One run of `iters` iterations on every core; returns GFLOP/s. */
static double fma_run(int nthreads, int use512, long iters)
{
    worker *w = calloc((size_t)nthreads, sizeof *w);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1); /* workers + this thread */
    for (int t = 0; t < nthreads; t++) {
        w[t] = (worker){.cpu = t, .use512 = use512, .iters = iters, .barrier = &barrier};
        pthread_create(&w[t].thread, NULL, fma_worker, &w[t]);
    }
    pthread_barrier_wait(&barrier);
    /* The span from the first worker's start to the last one's end: the
     * workers time themselves, so a descheduled main thread cannot skew it. */
    volatile double sink = 0;
    double t0 = 1e300, t1 = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(w[t].thread, NULL);
        sink += w[t].sink;
        t0 = w[t].t_start < t0 ? w[t].t_start : t0;
        t1 = w[t].t_end > t1 ? w[t].t_end : t1;
    }
    double dt = t1 - t0;
    (void)sink;
    pthread_barrier_destroy(&barrier);
    free(w);
    double lanes = use512 ? 16 : 8;
    return (double)nthreads * (double)iters * FMA_CHAINS * lanes * 2.0 / dt / 1e9;
}

static void bench_fma_peak(void)
{
    __builtin_cpu_init();
    int use512 = __builtin_cpu_supports("avx512f");
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!use512 && !has_avx2) {
        R.isa = "none (no AVX2+FMA)";
        return;
    }
    R.isa = use512 ? "AVX-512" : "AVX2+FMA";
    R.cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (R.cores < 1)
        R.cores = 1;
    /* Calibrate: about 0.1 s per run. */
    long iters = 1L << 16;
    for (;;) {
        double t0 = now_s();
        fma_run(R.cores, use512, iters);
        if (now_s() - t0 > 0.05 || iters > (1L << 32))
            break;
        iters *= 2;
    }
    const int reps = g_quick ? 5 : 11;
    double samples[16];
    for (int r = 0; r < reps; r++)
        samples[r] = fma_run(R.cores, use512, iters);
    R.fma_peak = stats_of(samples, reps);
}

/* ---------------------------------------------------------------------- */
/* 3. Matmul                                                              */
/* ---------------------------------------------------------------------- */

static void bench_matmul(em_device *cpu)
{
    for (int s = 0; s < 4; s++) {
        const int64_t n = R.mm_sizes[s];
        const double flops = 2.0 * (double)n * (double)n * (double)n;
        /* enough calls per sample to last about 20 ms */
        int inner = (int)(4e8 / flops);
        if (inner < 1)
            inner = 1;
        const int reps = g_quick ? 5 : 15;
        double samples[16];
        /* No scope is open here: the caller owns each result and releases it
         * at once (allocation and release are part of the time). */
        em_tensor *a = em_randn(NULL, EM_F32, EM_SHAPE(n, n), cpu);
        em_tensor *b = em_randn(NULL, EM_F32, EM_SHAPE(n, n), cpu);
        int ok = !ember_failed("matmul: creating inputs");
        for (int r = -2; ok && r < reps; r++) { /* two warm-up samples */
            double t0 = now_s();
            for (int i = 0; i < inner; i++)
                em_tensor_release(em_matmul(a, b));
            em_device_synchronize(cpu);
            double dt = (now_s() - t0) / inner;
            if (ember_failed("matmul: em_matmul"))
                ok = 0;
            else if (r >= 0)
                samples[r] = flops / dt / 1e9;
        }
        em_tensor_release(a);
        em_tensor_release(b);
        if (ok)
            R.matmul[s] = stats_of(samples, reps);
    }
}

/* ---------------------------------------------------------------------- */
/* 4. Memory bandwidth                                                    */
/* ---------------------------------------------------------------------- */

typedef struct mem_job {
    pthread_t thread;
    int cpu;
    float *a, *b, *c;
    long begin, end;
    int reps;
    pthread_barrier_t *barrier;
    double t_start[32], t_end[32]; /* per repetition, taken by the worker */
} mem_job;

static void *mem_worker(void *arg)
{
    mem_job *j = arg;
    /* Not pinned: on a shared machine a pinned thread waits for its busy core
     * while the scheduler would move an unpinned one (as Ember's threads are). */
    float *restrict a = j->a, *restrict b = j->b, *restrict c = j->c;
    /* first touch from the thread that will use the pages */
    for (long i = j->begin; i < j->end; i++) {
        a[i] = 1.0f + (float)(i & 7);
        b[i] = 2.0f;
        c[i] = 0.0f;
    }
    for (int r = 0; r < j->reps; r++) {
        pthread_barrier_wait(j->barrier); /* all start together */
        j->t_start[r] = now_s();
        /* Non-temporal stores, as a tuned copy loop (and Ember's CPU backend)
         * use: the result bypasses the cache and costs no read-for-ownership,
         * so this is the bandwidth a 3-stream add can reach. */
        long i = j->begin;
        for (; i + 4 <= j->end; i += 4)
            _mm_stream_ps(c + i, _mm_add_ps(_mm_load_ps(a + i), _mm_load_ps(b + i)));
        for (; i < j->end; i++)
            c[i] = a[i] + b[i];
        _mm_sfence();
        j->t_end[r] = now_s();
        pthread_barrier_wait(j->barrier); /* all done before the next one */
    }
    return NULL;
}

static void bench_membw(void)
{
    const int reps = g_quick ? 5 : 15, warm = 2;
    float *a = aligned_alloc(64, MEM_N * sizeof(float));
    float *b = aligned_alloc(64, MEM_N * sizeof(float));
    float *c = aligned_alloc(64, MEM_N * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return;
    }
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, MEM_THREADS);
    mem_job jobs[MEM_THREADS];
    for (int t = 0; t < MEM_THREADS; t++) {
        jobs[t] = (mem_job){.cpu = ncpu > 0 ? t % ncpu : 0, .a = a, .b = b, .c = c,
                            .begin = MEM_N * t / MEM_THREADS,
                            .end = MEM_N * (t + 1) / MEM_THREADS,
                            .reps = warm + reps, .barrier = &barrier};
        pthread_create(&jobs[t].thread, NULL, mem_worker, &jobs[t]);
    }
    for (int t = 0; t < MEM_THREADS; t++)
        pthread_join(jobs[t].thread, NULL);
    double samples[16];
    for (int r = warm; r < warm + reps; r++) {
        double t0 = 1e300, t1 = 0;
        for (int t = 0; t < MEM_THREADS; t++) {
            t0 = jobs[t].t_start[r] < t0 ? jobs[t].t_start[r] : t0;
            t1 = jobs[t].t_end[r] > t1 ? jobs[t].t_end[r] : t1;
        }
        samples[r - warm] = MEM_TRAFFIC / (t1 - t0) / 1e9;
    }
    pthread_barrier_destroy(&barrier);
    if (c[12345] != a[12345] + b[12345])
        fprintf(stderr, "ember-bench-core: bandwidth loop gave a wrong sum\n");
    free(a), free(b), free(c);
    R.membw = stats_of(samples, reps);
}

static void bench_add16m(em_device *cpu)
{
    const int reps = g_quick ? 5 : 15;
    double samples[16];
    em_tensor *a = em_rand(NULL, EM_F32, EM_SHAPE(MEM_N), cpu);
    em_tensor *b = em_rand(NULL, EM_F32, EM_SHAPE(MEM_N), cpu);
    if (ember_failed("add 16M: creating inputs"))
        goto done;

    /* Out of place: a new 64 MiB result each time (allocation included). */
    int ok = 1;
    for (int r = -2; ok && r < reps; r++) {
        em_scope_begin();
        double t0 = now_s();
        em_tensor *c = em_add(a, b);
        em_device_synchronize(cpu);
        double dt = now_s() - t0;
        em_scope_end();
        if (!c || ember_failed("add 16M: em_add"))
            ok = 0;
        else if (r >= 0)
            samples[r] = MEM_TRAFFIC / dt / 1e9;
    }
    if (ok)
        R.add16m = stats_of(samples, reps);

    /* In place: a += b, no allocation. Values grow by < 1 per call: fine. */
    ok = 1;
    for (int r = -2; ok && r < reps; r++) {
        double t0 = now_s();
        em_status st = em_add_(a, b);
        em_device_synchronize(cpu);
        double dt = now_s() - t0;
        if (st != EM_OK) {
            ember_failed("add 16M: em_add_");
            ok = 0;
        } else if (r >= 0) {
            samples[r] = MEM_TRAFFIC / dt / 1e9;
        }
    }
    if (ok)
        R.add16m_inplace = stats_of(samples, reps);
done:
    em_tensor_release(a);
    em_tensor_release(b);
}

/* ---------------------------------------------------------------------- */
/* PyTorch peer                                                           */
/* ---------------------------------------------------------------------- */

/* Finds "key": { "median": x, "p10": y, "p90": z } in the peer's JSON. */
static stat3 json_stat(const char *json, const char *key)
{
    stat3 s = {0, 0, 0, 0};
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return s;
    const char *end = strchr(p, '}');
    const char *names[3] = {"\"median\"", "\"p10\"", "\"p90\""};
    double *dst[3] = {&s.median, &s.p10, &s.p90};
    for (int i = 0; i < 3; i++) {
        const char *q = strstr(p, names[i]);
        if (!q || (end && q > end))
            return s;
        q = strchr(q, ':');
        if (!q)
            return s;
        *dst[i] = strtod(q + 1, NULL);
    }
    s.valid = 1;
    return s;
}

static void run_pytorch(void)
{
    if (system(PYTHON " -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("PyTorch: not found (apt-get install python3-torch)\n");
        return;
    }
    const char *dir = getenv("EMBER_BENCH_DIR");
    if (!dir || !*dir)
        dir = EMBER_BENCH_DIR;
    char cmd[1024];
    /* Debian's OpenBLAS needs the core type named on this CPU to use its best
     * kernels; its pthread build must get the same thread count torch uses,
     * since torch does not split a single GEMM across its own threads. */
    snprintf(cmd, sizeof cmd,
             "OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d "
             PYTHON " '%s/pytorch_core.py'%s",
             MEM_THREADS, MEM_THREADS, dir, g_quick ? " --quick" : "");
    printf("running the PyTorch peer: %s\n", cmd);
    fflush(stdout);
    FILE *f = popen(cmd, "r");
    if (!f) {
        printf("PyTorch: could not start %s\n", PYTHON);
        return;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - 1 - len, f)) > 0) {
        len += n;
        if (len >= cap - 1)
            break;
    }
    int rc = pclose(f);
    if (!buf)
        return;
    buf[len] = '\0';
    if (rc != 0 || len == 0) {
        printf("PyTorch: the peer script failed (status %d)\n", rc);
        free(buf);
        return;
    }
    P.ran = 1;
    const char *v = strstr(buf, "\"torch_version\"");
    if (v && (v = strchr(v, ':')) && (v = strchr(v, '"')))
        sscanf(v + 1, "%63[^\"]", P.version);
    P.add16 = json_stat(buf, "add16_us");
    P.add16_backward = json_stat(buf, "add16_backward_us");
    char key[32];
    for (int s = 0; s < 4; s++) {
        snprintf(key, sizeof key, "matmul%d_gflops", R.mm_sizes[s]);
        P.matmul[s] = json_stat(buf, key);
    }
    P.add16m = json_stat(buf, "add16m_gbs");
    P.add16m_inplace = json_stat(buf, "add16m_inplace_gbs");
    free(buf);
}

/* ---------------------------------------------------------------------- */
/* Output                                                                 */
/* ---------------------------------------------------------------------- */

static void fmt_stat(char *buf, size_t cap, stat3 s, int decimals)
{
    if (!s.valid)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.*f [%.*f-%.*f]", decimals, s.median, decimals, s.p10, decimals,
                 s.p90);
}

static void fmt_pct(char *buf, size_t cap, stat3 s, int decimals, stat3 ref)
{
    if (!s.valid) {
        snprintf(buf, cap, "-");
        return;
    }
    if (ref.valid && ref.median > 0)
        snprintf(buf, cap, "%.*f (%.0f%%)", decimals, s.median, 100.0 * s.median / ref.median);
    else
        snprintf(buf, cap, "%.*f", decimals, s.median);
}

typedef struct row {
    char name[48], ember[48], peer[48], target[24], met[8];
} row;

static void print_table(void)
{
    row rows[16];
    int n = 0;
    const char *na = P.ran ? "-" : "n/a";
#define ROW(...) (rows[n] = (row){__VA_ARGS__}, &rows[n++])
    row *r;

    r = ROW("em_add 16 f32, release (us/op)", "", "", "<= 0.3", "");
    fmt_stat(r->ember, sizeof r->ember, R.add16_release, 3);
    fmt_stat(r->peer, sizeof r->peer, P.add16, 3);
    if (!P.ran)
        snprintf(r->peer, sizeof r->peer, "n/a");
    snprintf(r->met, sizeof r->met, "%s", !R.add16_release.valid ? "-"
             : R.add16_release.median <= 0.3 ? "yes" : "NO");

    r = ROW("em_add 16 f32, in scope (us/op)", "", "", "<= 0.3", "");
    fmt_stat(r->ember, sizeof r->ember, R.add16_scope, 3);
    snprintf(r->peer, sizeof r->peer, "%s", na);
    snprintf(r->met, sizeof r->met, "%s", !R.add16_scope.valid ? "-"
             : R.add16_scope.median <= 0.3 ? "yes" : "NO");

    r = ROW("em_add 16 f32 + backward (us/step)", "", "", "", "");
    fmt_stat(r->ember, sizeof r->ember, R.add16_backward, 2);
    fmt_stat(r->peer, sizeof r->peer, P.add16_backward, 2);
    if (!P.ran)
        snprintf(r->peer, sizeof r->peer, "n/a");

    r = ROW("FMA peak f32 (GFLOP/s)", "", "", "", "");
    fmt_stat(r->ember, sizeof r->ember, R.fma_peak, 1);
    snprintf(r->peer, sizeof r->peer, "(machine)");

    for (int s = 0; s < 4; s++) {
        r = ROW("", "", "", "", "");
        snprintf(r->name, sizeof r->name, "matmul %d^2 f32 (GFLOP/s, %% peak)", R.mm_sizes[s]);
        fmt_pct(r->ember, sizeof r->ember, R.matmul[s], 1, R.fma_peak);
        fmt_pct(r->peer, sizeof r->peer, P.matmul[s], 1, R.fma_peak);
        if (P.ran == 0)
            snprintf(r->peer, sizeof r->peer, "n/a");
        if (R.mm_sizes[s] == 1024) {
            snprintf(r->target, sizeof r->target, ">= 85%% peak");
            snprintf(r->met, sizeof r->met, "%s",
                     !(R.matmul[s].valid && R.fma_peak.valid) ? "-"
                     : R.matmul[s].median >= 0.85 * R.fma_peak.median ? "yes" : "NO");
        }
    }

    r = ROW("memory bandwidth, C add 2 thr (GB/s)", "", "", "", "");
    fmt_stat(r->ember, sizeof r->ember, R.membw, 1);
    snprintf(r->peer, sizeof r->peer, "(machine)");

    r = ROW("em_add 16M f32 (GB/s, % bw)", "", "", ">= 80% bw", "");
    fmt_pct(r->ember, sizeof r->ember, R.add16m, 1, R.membw);
    fmt_pct(r->peer, sizeof r->peer, P.add16m, 1, R.membw);
    if (!P.ran)
        snprintf(r->peer, sizeof r->peer, "n/a");
    snprintf(r->met, sizeof r->met, "%s", !(R.add16m.valid && R.membw.valid) ? "-"
             : R.add16m.median >= 0.8 * R.membw.median ? "yes" : "NO");

    r = ROW("em_add_ 16M f32 in place (GB/s, % bw)", "", "", "", "");
    fmt_pct(r->ember, sizeof r->ember, R.add16m_inplace, 1, R.membw);
    fmt_pct(r->peer, sizeof r->peer, P.add16m_inplace, 1, R.membw);
    if (!P.ran)
        snprintf(r->peer, sizeof r->peer, "n/a");
#undef ROW

    const char *hdr[5] = {"measurement", "Ember", P.ran ? "PyTorch" : "PyTorch", "target", "met?"};
    int w[5];
    for (int c = 0; c < 5; c++)
        w[c] = (int)strlen(hdr[c]);
    for (int i = 0; i < n; i++) {
        const char *cells[5] = {rows[i].name, rows[i].ember, rows[i].peer, rows[i].target,
                                rows[i].met};
        for (int c = 0; c < 5; c++)
            if ((int)strlen(cells[c]) > w[c])
                w[c] = (int)strlen(cells[c]);
    }
    printf("\n");
    printf("%-*s | %-*s | %-*s | %-*s | %s\n", w[0], hdr[0], w[1], hdr[1], w[2], hdr[2], w[3],
           hdr[3], hdr[4]);
    int total = w[0] + w[1] + w[2] + w[3] + w[4] + 12;
    for (int i = 0; i < total; i++)
        putchar('-');
    putchar('\n');
    for (int i = 0; i < n; i++)
        printf("%-*s | %-*s | %-*s | %-*s | %s\n", w[0], rows[i].name, w[1], rows[i].ember,
               w[2], rows[i].peer, w[3], rows[i].target, rows[i].met);
    printf("(median [p10-p90] over repeats; %% of the FMA peak and of the bandwidth measured "
           "in this run)\n");
    if (R.cores > 0 && R.load_at_start > 0.5 * R.cores)
        printf("warning: load average %.1f on %d core(s) at start: other work shares the "
               "CPU, so these figures are unreliable\n",
               R.load_at_start, R.cores);
}

static void json_stat_out(FILE *f, const char *key, stat3 s, int last)
{
    if (s.valid)
        fprintf(f, "    \"%s\": {\"median\": %.6g, \"p10\": %.6g, \"p90\": %.6g}%s\n", key,
                s.median, s.p10, s.p90, last ? "" : ",");
    else
        fprintf(f, "    \"%s\": null%s\n", key, last ? "" : ",");
}

static void json_escape_out(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
}

static int write_json(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "{\n  \"ember_version\": \"%s\",\n  \"device\": \"", em_version());
    json_escape_out(f, R.device);
    fprintf(f, "\",\n  \"blas\": \"");
    json_escape_out(f, R.blas);
    fprintf(f, "\",\n  \"load_at_start\": %.2f,\n  \"cores\": %d,\n", R.load_at_start,
            R.cores);
    fprintf(f, "  \"fma_isa\": \"%s\",\n  \"quick\": %s,\n", R.isa ? R.isa : "",
            g_quick ? "true" : "false");
    fprintf(f, "  \"ember\": {\n");
    json_stat_out(f, "add16_release_us", R.add16_release, 0);
    json_stat_out(f, "add16_scope_us", R.add16_scope, 0);
    json_stat_out(f, "add16_backward_us", R.add16_backward, 0);
    json_stat_out(f, "fma_peak_gflops", R.fma_peak, 0);
    char key[40];
    for (int s = 0; s < 4; s++) {
        snprintf(key, sizeof key, "matmul%d_gflops", R.mm_sizes[s]);
        json_stat_out(f, key, R.matmul[s], 0);
    }
    json_stat_out(f, "membw_gbs", R.membw, 0);
    json_stat_out(f, "add16m_gbs", R.add16m, 0);
    json_stat_out(f, "add16m_inplace_gbs", R.add16m_inplace, 1);
    fprintf(f, "  }");
    if (P.ran) {
        fprintf(f, ",\n  \"pytorch\": {\n    \"torch_version\": \"%s\",\n", P.version);
        json_stat_out(f, "add16_us", P.add16, 0);
        json_stat_out(f, "add16_backward_us", P.add16_backward, 0);
        for (int s = 0; s < 4; s++) {
            snprintf(key, sizeof key, "matmul%d_gflops", R.mm_sizes[s]);
            json_stat_out(f, key, P.matmul[s], 0);
        }
        json_stat_out(f, "add16m_gbs", P.add16m, 0);
        json_stat_out(f, "add16m_inplace_gbs", P.add16m_inplace, 1);
        fprintf(f, "  }");
    }
    fprintf(f, "\n}\n");
    return fclose(f) != 0;
}

/* ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: ember-bench-core [--quick] [--json FILE] [--pytorch]\n"
               "  --quick      fewer repeats\n"
               "  --json FILE  also write the results as JSON to FILE\n"
               "  --pytorch    run bench/pytorch_core.py (" PYTHON ", python3-torch) and show "
               "its figures\n");
}

int main(int argc, char **argv)
{
    const char *json_path = NULL;
    int pytorch = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            g_quick = 1;
        else if (!strcmp(argv[i], "--pytorch"))
            pytorch = 1;
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    if (em_init() != EM_OK)
        fprintf(stderr, "ember-bench-core: em_init: %s (continuing on the CPU)\n",
                em_last_error());
    em_clear_error();
    em_device *cpu = em_device_cpu();
    if (!cpu) {
        fprintf(stderr, "ember-bench-core: no CPU device: %s\n", em_last_error());
        return 1;
    }
    em_device_props props;
    memset(&props, 0, sizeof props);
    props.struct_size = sizeof props;
    if (em_device_properties(cpu, &props) == EM_OK) {
        snprintf(R.device, sizeof R.device, "%s (%s)", em_device_name(cpu), props.name);
        snprintf(R.blas, sizeof R.blas, "%s", props.description);
    }
    em_clear_error();
    em_manual_seed(0);
    double load[1];
    if (getloadavg(load, 1) == 1)
        R.load_at_start = load[0];
    R.cores = (int)sysconf(_SC_NPROCESSORS_ONLN);

    printf("ember-bench-core: Ember %s%s\n", em_version(), g_quick ? " (quick)" : "");
    printf("device:  %s\n", R.device);
    printf("BLAS:    %s\n", R.blas[0] ? R.blas : "(the CPU backend reports no detail)");
    fflush(stdout);

    printf("[1/5] dispatch latency ...\n");
    fflush(stdout);
    bench_dispatch(cpu);
    printf("[2/5] FMA peak ...\n");
    fflush(stdout);
    bench_fma_peak();
    printf("      %s on %d core(s): %.1f GFLOP/s\n", R.isa, R.cores, R.fma_peak.median);
    printf("[3/5] matmul ...\n");
    fflush(stdout);
    bench_matmul(cpu);
    printf("[4/5] memory bandwidth ...\n");
    fflush(stdout);
    bench_membw();
    bench_add16m(cpu);
    printf("[5/5] PyTorch peer ...\n");
    fflush(stdout);
    if (pytorch)
        run_pytorch();
    else
        printf("      skipped (pass --pytorch)\n");
    if (P.ran)
        printf("PyTorch %s, 2 threads\n", P.version);

    print_table();
    int rc = g_errors ? 1 : 0;
    if (json_path) {
        if (write_json(json_path))
            rc = 1;
        else
            printf("results written to %s\n", json_path);
    }
    em_shutdown();
    return rc;
}
