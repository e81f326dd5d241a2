/*
 * cpu_blas.c — OpenBLAS loading and the MATMUL and LINEAR kernels.
 *
 * Loading: libopenblas is dlopened at plugin init, never linked, so a
 * machine without it still runs Ember (matmul then uses cpu_gemm_ref.c).
 * Debian's OpenBLAS 0.3.21 does not recognise recent CPUs (AMD Zen4,
 * Intel Sapphire Rapids) and falls back to slow Prescott kernels, so unless
 * the user set OPENBLAS_CORETYPE (or OpenBLAS is already loaded in the
 * process), the core type is chosen from the CPU's features before the
 * dlopen: AVX-512 F/BW/VL/DQ -> SkylakeX, AVX2+FMA -> Haswell. OpenBLAS is
 * then set to ONE thread: the backend's own pool splits the output into
 * blocks, each computed by a single-threaded sgemm/dgemm (two pools on the
 * same cores give a heavy tail of slow steps).
 *
 * Matmul: a [..., M, K] x b [..., K, N] -> out [..., M, N], any strides
 * (batch strides may be 0). An operand whose last two strides make it a
 * BLAS matrix (one of them 1, the other a valid leading dimension) is used
 * in place with NoTrans/Trans; otherwise it is copied to a dense
 * temporary. f16/bf16 are converted to f32, computed with sgemm and
 * converted back. Products with one output row or column use gemv, and
 * K = 1 an outer product of our own (see gemm_call). Linear:
 * out = x w^T (+ bias), with w^T as a strided view of w and the
 * (broadcast) bias copied into the output first, beta = 1.
 * LINEAR_ACT (ABI 1.4, params.flag 1 = relu): the same, with relu applied to
 * each output block by the task that computed it, right after its gemm
 * (while the block is in cache); relu is the RELU kernel's (v < 0 ? 0 : v),
 * so the result equals LINEAR followed by RELU bit for bit.
 *
 * Not for: the fallback gemm itself (cpu_gemm_ref.c).
 */
#define _GNU_SOURCE
#include "cpu_internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
typedef void (*dgemm_fn)(int order, int ta, int tb, int m, int n, int k, double alpha,
                         const double *a, int lda, const double *b, int ldb, double beta,
                         double *c, int ldc);
typedef void (*sgemv_fn)(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                         const float *x, int incx, float beta, float *y, int incy);
typedef void (*dgemv_fn)(int order, int trans, int m, int n, double alpha, const double *a,
                         int lda, const double *x, int incx, double beta, double *y, int incy);
typedef void (*set_threads_fn)(int n);
typedef char *(*get_str_fn)(void);

static struct {
    int tried;
    void *handle;
    sgemm_fn sgemm;
    dgemm_fn dgemm;
    sgemv_fn sgemv; /* optional: products with one row or one column */
    dgemv_fn dgemv;
    char desc[200];
} g_blas;

/* ---------------- loading ------------------------------------------------ */

static const char *choose_coretype(char *why, size_t cap)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        snprintf(why, cap, "avx512f+bw+vl+dq");
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        snprintf(why, cap, "avx2+fma");
        return "Haswell";
    }
#endif
    snprintf(why, cap, "no avx2");
    return NULL;
}

void em__cpu_blas_init(void)
{
    if (g_blas.tried) return;
    g_blas.tried = 1;
    char how[96] = "";
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!h) h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (h) {
        snprintf(how, sizeof how, "already loaded by the process");
    } else {
        const char *user = getenv("OPENBLAS_CORETYPE");
        if (user && *user) {
            snprintf(how, sizeof how, "OPENBLAS_CORETYPE=%.40s from the environment", user);
        } else {
            char why[40];
            const char *core = choose_coretype(why, sizeof why);
            if (core) {
                setenv("OPENBLAS_CORETYPE", core, 0);
                snprintf(how, sizeof how, "chosen from CPU features: %s", why);
            } else {
                snprintf(how, sizeof how, "OpenBLAS's own detection (%s)", why);
            }
        }
        h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h) h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    }
    if (!h) {
        const char *err = dlerror();
        snprintf(g_blas.desc, sizeof g_blas.desc, "no OpenBLAS (%.100s): built-in C gemm",
                 err ? err : "libopenblas.so.0 not found");
        em__cpu_log(EM_LOG_INFO, "%s", g_blas.desc);
        return;
    }
    sgemm_fn s = (sgemm_fn)dlsym(h, "cblas_sgemm");
    dgemm_fn d = (dgemm_fn)dlsym(h, "cblas_dgemm");
    set_threads_fn set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    get_str_fn corename = (get_str_fn)dlsym(h, "openblas_get_corename");
    get_str_fn config = (get_str_fn)dlsym(h, "openblas_get_config");
    if (!s || !d) {
        snprintf(g_blas.desc, sizeof g_blas.desc,
                 "OpenBLAS without cblas_sgemm/dgemm: built-in C gemm");
        dlclose(h);
        em__cpu_log(EM_LOG_WARN, "%s", g_blas.desc);
        return;
    }
    if (set_threads) set_threads(1);
    char version[32] = "?";
    const char *cfg = config ? config() : NULL;
    if (cfg && sscanf(cfg, "OpenBLAS %31s", version) != 1) snprintf(version, sizeof version, "?");
    const char *core = corename ? corename() : NULL;
    g_blas.handle = h;
    g_blas.sgemm = s;
    g_blas.dgemm = d;
    g_blas.sgemv = (sgemv_fn)dlsym(h, "cblas_sgemv");
    g_blas.dgemv = (dgemv_fn)dlsym(h, "cblas_dgemv");
    snprintf(g_blas.desc, sizeof g_blas.desc, "OpenBLAS %s core %.24s (%s)", version,
             core ? core : "?", how);
    em__cpu_log(EM_LOG_INFO, "%s; OpenBLAS set to 1 thread", g_blas.desc);
}

void em__cpu_blas_shutdown(void)
{
    if (g_blas.handle) dlclose(g_blas.handle);
    memset(&g_blas, 0, sizeof g_blas);
}

const char *em__cpu_blas_description(void) { return g_blas.desc; }

/* ---------------- one gemm call ------------------------------------------ */

/* Whether a rows x cols matrix with element strides (rs, cs) is a BLAS
 * row-major operand: *trans and *ld receive how to pass it. */
static int blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, int *trans, int *ld)
{
    int64_t l;
    if (rows > INT_MAX || cols > INT_MAX) return 0;
    if ((cols == 1 || cs == 1) && (rows == 1 || rs >= cols)) {
        *trans = CBLAS_NO_TRANS;
        l = rows == 1 ? cols : rs;
    } else if ((rows == 1 || rs == 1) && (cols == 1 || cs >= rows)) {
        *trans = CBLAS_TRANS;
        l = cols == 1 ? rows : cs;
    } else {
        return 0;
    }
    if (l < 1) l = 1;
    if (l > INT_MAX) return 0;
    *ld = (int)l;
    return 1;
}

/* y = op(A) x + beta y through gemv: A rows x cols with element strides
 * (rs, cs), one of them 1; x and y strided vectors (non-zero strides). */
static int gemv_call(int cd, int64_t rows, int64_t cols, const char *A, int64_t rs, int64_t cs,
                     const char *x, int64_t incx, double beta, char *y, int64_t incy)
{
    if (!(cd == EM_F32 ? (void *)g_blas.sgemv : (void *)g_blas.dgemv) || rows > INT_MAX ||
        cols > INT_MAX || incx == 0 || incy == 0 || incx > INT_MAX || incy > INT_MAX ||
        incx < -INT_MAX || incy < -INT_MAX)
        return 0;
    int trans, m, n;
    int64_t ld;
    if (cs == 1 && (rows == 1 || rs >= cols)) { /* row-major rows x cols */
        trans = CBLAS_NO_TRANS, m = (int)rows, n = (int)cols, ld = rows == 1 ? cols : rs;
    } else if (rs == 1 && (cols == 1 || cs >= rows)) { /* its transpose is row-major */
        trans = CBLAS_TRANS, m = (int)cols, n = (int)rows, ld = cols == 1 ? rows : cs;
    } else {
        return 0;
    }
    if (ld < 1) ld = 1;
    if (ld > INT_MAX) return 0;
    if (cd == EM_F32)
        g_blas.sgemv(CBLAS_ROW_MAJOR, trans, m, n, 1.0f, (const float *)A, (int)ld,
                     (const float *)x, (int)incx, (float)beta, (float *)y, (int)incy);
    else
        g_blas.dgemv(CBLAS_ROW_MAJOR, trans, m, n, 1.0, (const double *)A, (int)ld,
                     (const double *)x, (int)incx, beta, (double *)y, (int)incy);
    return 1;
}

/* C[M,N] = A[M,1] B[1,N] (+ C when beta is 1): one pass over C (sgemm
 * would clear C first, then accumulate into it). */
#define OUTER(name, T)                                                                   \
    CPU_MATH_CLONES static void name(int64_t M, int64_t N, const T *A, int64_t ars,       \
                                     const T *B, int64_t bcs, int add, T *C, int64_t crs, \
                                     int64_t ccs)                                        \
    {                                                                                    \
        for (int64_t i = 0; i < M; i++) {                                                \
            const T a = A[i * ars];                                                      \
            T *c = C + i * crs;                                                          \
            if (ccs == 1 && bcs == 1) {                                                  \
                if (add)                                                                 \
                    for (int64_t j = 0; j < N; j++) c[j] += a * B[j];                    \
                else                                                                     \
                    for (int64_t j = 0; j < N; j++) c[j] = a * B[j];                     \
            } else {                                                                     \
                for (int64_t j = 0; j < N; j++)                                          \
                    c[j * ccs] = add ? c[j * ccs] + a * B[j * bcs] : a * B[j * bcs];     \
            }                                                                            \
        }                                                                                \
    }
OUTER(outer_f32, float)
OUTER(outer_f64, double)

/* C[M,N] = A[M,K] B[K,N] + beta C, in compute dtype cd (f32 or f64). With
 * OpenBLAS, a product with one row or one column of C goes to gemv (no
 * packing of the other operand) and K = 1 to the outer product above. */
static void gemm_call(int cd, int64_t M, int64_t N, int64_t K, const char *A, int64_t ars,
                      int64_t acs, const char *B, int64_t brs, int64_t bcs, double beta, char *C,
                      int64_t crs, int64_t ccs)
{
    int ta, tb, tc, lda, ldb, ldc;
    if (g_blas.sgemm && K == 1 && (beta == 0.0 || beta == 1.0)) {
        if (cd == EM_F32)
            outer_f32(M, N, (const float *)A, ars, (const float *)B, bcs, beta != 0.0, (float *)C,
                      crs, ccs);
        else
            outer_f64(M, N, (const double *)A, ars, (const double *)B, bcs, beta != 0.0,
                      (double *)C, crs, ccs);
        return;
    }
    /* one row of C: C^T = B^T a^T; one column: C = A b */
    if (g_blas.sgemm && K > 1 && M == 1 && N > 1 &&
        gemv_call(cd, N, K, B, bcs, brs, A, acs, beta, C, ccs))
        return;
    if (g_blas.sgemm && K > 1 && N == 1 && M > 1 &&
        gemv_call(cd, M, K, A, ars, acs, B, brs, beta, C, crs))
        return;
    if (g_blas.sgemm && K > 0 && K <= INT_MAX && blas_layout(M, K, ars, acs, &ta, &lda) &&
        blas_layout(K, N, brs, bcs, &tb, &ldb) && blas_layout(M, N, crs, ccs, &tc, &ldc) &&
        tc == CBLAS_NO_TRANS) {
        if (cd == EM_F32)
            g_blas.sgemm(CBLAS_ROW_MAJOR, ta, tb, (int)M, (int)N, (int)K, 1.0f,
                         (const float *)A, lda, (const float *)B, ldb, (float)beta, (float *)C,
                         ldc);
        else
            g_blas.dgemm(CBLAS_ROW_MAJOR, ta, tb, (int)M, (int)N, (int)K, 1.0, (const double *)A,
                         lda, (const double *)B, ldb, beta, (double *)C, ldc);
        return;
    }
    if (cd == EM_F32)
        em__cpu_gemm_ref_f32(M, N, K, (const float *)A, ars, acs, (const float *)B, brs, bcs,
                             (float)beta, (float *)C, crs, ccs);
    else
        em__cpu_gemm_ref_f64(M, N, K, (const double *)A, ars, acs, (const double *)B, brs, bcs,
                             beta, (double *)C, crs, ccs);
}

/* ---------------- batched, split over the pool --------------------------- */

typedef struct mm_job {
    int cd;
    int64_t M, N, K, es;
    int nb;                                   /* batch dims                */
    int64_t bshape[EM_MAX_DIMS];
    int64_t bsa[EM_MAX_DIMS], bsb[EM_MAX_DIMS], bso[EM_MAX_DIMS];
    const char *a, *b;
    char *c;
    int64_t ars, acs, brs, bcs, crs, ccs;
    double beta;
    int64_t nsplit, block;                    /* blocks per matrix, size   */
    int split_n;                              /* split along N (else M)    */
    int act;                                  /* 1: relu on the result     */
} mm_job;

/* relu (v < 0 ? 0 : v, as the RELU kernel: NaN and -0 stay) over an M x N
 * block of C in compute dtype cd. */
static void relu_block(int cd, int64_t M, int64_t N, char *C, int64_t crs, int64_t ccs)
{
    for (int64_t i = 0; i < M; i++) {
        if (cd == EM_F32) {
            float *c = (float *)C + i * crs;
            if (ccs == 1)
                for (int64_t k = 0; k < N; k++) c[k] = c[k] < 0 ? 0.0f : c[k];
            else
                for (int64_t k = 0; k < N; k++) c[k * ccs] = c[k * ccs] < 0 ? 0.0f : c[k * ccs];
        } else {
            double *c = (double *)C + i * crs;
            for (int64_t k = 0; k < N; k++) c[k * ccs] = c[k * ccs] < 0 ? 0.0 : c[k * ccs];
        }
    }
}

static void mm_task(void *ctx, int64_t t)
{
    const mm_job *j = ctx;
    int64_t bi = t / j->nsplit, part = t % j->nsplit;
    int64_t oa = 0, ob = 0, oc = 0, rest = bi;
    for (int d = j->nb - 1; d >= 0; d--) {
        int64_t i = rest % j->bshape[d];
        rest /= j->bshape[d];
        oa += i * j->bsa[d];
        ob += i * j->bsb[d];
        oc += i * j->bso[d];
    }
    const char *A = j->a + oa * j->es, *B = j->b + ob * j->es;
    char *C = j->c + oc * j->es;
    int64_t M = j->M, N = j->N;
    int64_t lo = part * j->block;
    if (j->split_n) {
        if (lo >= N) return;
        N = N - lo < j->block ? N - lo : j->block;
        B += lo * j->bcs * j->es;
        C += lo * j->ccs * j->es;
    } else {
        if (lo >= M) return;
        M = M - lo < j->block ? M - lo : j->block;
        A += lo * j->ars * j->es;
        C += lo * j->crs * j->es;
    }
    gemm_call(j->cd, M, N, j->K, A, j->ars, j->acs, B, j->brs, j->bcs, j->beta, C, j->crs, j->ccs);
    if (j->act) relu_block(j->cd, M, N, C, j->crs, j->ccs);
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void mm_run(mm_job *j)
{
    int64_t batches = 1;
    for (int d = 0; d < j->nb; d++) batches *= j->bshape[d];
    double flops = 2.0 * (double)batches * (double)j->M * (double)j->N * (double)j->K;
    int nt = em__cpu_threads();
    j->nsplit = 1;
    j->split_n = j->N > j->M; /* square: split M (measured a little faster) */
    j->block = j->split_n ? j->N : j->M;
    /* (memory-bound batch-1 products stay serial: split, a worker preempted
     * on a shared machine stalls the step more than half a weight costs.
     * From 1 MFLOP up a split pays: the MLP step at batch 32, whose hidden
     * layers are 2.1 MFLOP products, went from 316-342 to 281-305 us per step
     * with 2 threads, `ember-bench-mlp --profile 32 3000`, alternating runs) */
    if (nt > 1 && flops >= 1e6) {
        int64_t want = batches >= 4 * nt ? 1 : nt / gcd64(batches, nt);
        int64_t dim = j->split_n ? j->N : j->M;
        int64_t align = j->split_n ? 16 : 4;
        while (want > 1 && dim / want < align) want--;
        if (want > 1) {
            int64_t block = (dim + want - 1) / want;
            block = (block + align - 1) / align * align;
            j->block = block;
            j->nsplit = (dim + block - 1) / block;
        }
        em__cpu_parallel(batches * j->nsplit, mm_task, j);
        return;
    }
    for (int64_t t = 0; t < batches; t++) mm_task(j, t);
}

/* ---------------- operand preparation ------------------------------------ */

/* A dense copy of d converted to cd: the last two dims materialised, batch
 * dims with stride 0 kept at stride 0. */
static em_status dense_matrix(const em_tdesc *d, int cd, em_tdesc *view)
{
    em_tdesc src = *d;
    int nd = d->ndim;
    /* make the matrix dims non-zero-stride so the copy materialises them */
    em_tdesc tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.dtype = cd;
    tmp.ndim = nd;
    int64_t n = 1;
    for (int i = nd - 1; i >= 0; i--) {
        tmp.shape[i] = d->shape[i];
        if (i < nd - 2 && (d->strides[i] == 0 || d->shape[i] == 1)) {
            tmp.strides[i] = 0;
        } else {
            tmp.strides[i] = n;
            n *= d->shape[i];
        }
    }
    void *mem = em__cpu_scratch_alloc((size_t)n * cpu_dtype_size(cd));
    if (!mem) return EM_ERR_OUT_OF_MEMORY;
    tmp.buffer = mem;
    em_tdesc dst = tmp;
    for (int i = 0; i < nd - 2; i++)
        if (tmp.strides[i] == 0) dst.shape[i] = src.shape[i] = 1;
    em__cpu_cast_desc(&dst, &src);
    *view = tmp;
    return EM_OK;
}

static int needs_copy(const em_tdesc *d, int cd)
{
    if (d->dtype != cd) return 1;
    if (!g_blas.sgemm) return 0; /* the C gemm takes any strides */
    int t, ld, nd = d->ndim;
    return !blas_layout(d->shape[nd - 2], d->shape[nd - 1], d->strides[nd - 2],
                        d->strides[nd - 1], &t, &ld);
}

/* out[..., M, N] = a[..., M, K] b[..., K, N] (+ bias[..., M, N]). All four
 * have the same ndim >= 2 and batch dims (b's may be stride 0). */
static em_status matmul_desc(const em_tdesc *a, const em_tdesc *b, const em_tdesc *o,
                             const em_tdesc *bias, int act)
{
    const int cd = o->dtype == EM_F64 ? EM_F64 : EM_F32;
    const int nd = o->ndim;
    em_tdesc ta = *a, tb = *b, tc = *o;
    void *fa = NULL, *fb = NULL, *fc = NULL;
    em_status st = EM_OK;
    if (needs_copy(a, cd)) {
        if ((st = dense_matrix(a, cd, &ta))) goto done;
        fa = ta.buffer;
    }
    if (needs_copy(b, cd)) {
        if ((st = dense_matrix(b, cd, &tb))) goto done;
        fb = tb.buffer;
    }
    int t, ld;
    int c_ok = o->dtype == cd;
    if (c_ok && g_blas.sgemm)
        c_ok = blas_layout(o->shape[nd - 2], o->shape[nd - 1], o->strides[nd - 2],
                           o->strides[nd - 1], &t, &ld) &&
               t == CBLAS_NO_TRANS;
    if (!c_ok) {
        int64_t n = cpu_numel(o);
        fc = em__cpu_scratch_alloc((size_t)n * cpu_dtype_size(cd));
        if (!fc) {
            st = EM_ERR_OUT_OF_MEMORY;
            goto done;
        }
        tc.buffer = fc;
        tc.offset = 0;
        tc.dtype = cd;
        int64_t s = 1;
        for (int i = nd - 1; i >= 0; i--) {
            tc.strides[i] = s;
            s *= o->shape[i];
        }
    }
    if (bias) em__cpu_cast_desc(&tc, bias);
    mm_job j = {.cd = cd, .M = o->shape[nd - 2], .N = o->shape[nd - 1], .K = a->shape[nd - 1],
                .es = (int64_t)cpu_dtype_size(cd), .nb = nd - 2,
                .a = cpu_ptr(&ta), .b = cpu_ptr(&tb), .c = cpu_ptr(&tc),
                .ars = ta.strides[nd - 2], .acs = ta.strides[nd - 1],
                .brs = tb.strides[nd - 2], .bcs = tb.strides[nd - 1],
                .crs = tc.strides[nd - 2], .ccs = tc.strides[nd - 1], .beta = bias ? 1.0 : 0.0,
                .act = act};
    for (int i = 0; i < nd - 2; i++) {
        j.bshape[i] = o->shape[i];
        j.bsa[i] = ta.strides[i];
        j.bsb[i] = tb.strides[i];
        j.bso[i] = tc.strides[i];
    }
    mm_run(&j);
    if (fc) em__cpu_cast_desc(o, &tc);
done:
    em__cpu_scratch_free(fa);
    em__cpu_scratch_free(fb);
    em__cpu_scratch_free(fc);
    return st;
}

static em_status check_float(const char *op, const em_tdesc *d, int dt)
{
    if (!cpu_dtype_is_float(d->dtype) || d->dtype != dt)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: %s: operand is %s, output %s", op,
                            em__cpu_dtype_name(d->dtype), em__cpu_dtype_name(dt));
    return EM_OK;
}

em_status em__cpu_k_matmul(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *a = &c->in[0], *b = &c->in[1], *o = &c->out[0];
    if ((st = check_float("matmul", a, o->dtype)) || (st = check_float("matmul", b, o->dtype)))
        return st;
    int nd = o->ndim;
    if (nd < 2 || a->ndim != nd || b->ndim != nd)
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: matmul needs equal ndim >= 2 (a %d, b %d, out %d)",
                            a->ndim, b->ndim, nd);
    int64_t M = o->shape[nd - 2], N = o->shape[nd - 1], K = a->shape[nd - 1];
    if (a->shape[nd - 2] != M || b->shape[nd - 2] != K || b->shape[nd - 1] != N)
        return em__cpu_fail(EM_ERR_SHAPE,
                            "cpu: matmul [%lld, %lld] x [%lld, %lld] -> [%lld, %lld]",
                            (long long)a->shape[nd - 2], (long long)K,
                            (long long)b->shape[nd - 2], (long long)b->shape[nd - 1],
                            (long long)M, (long long)N);
    for (int i = 0; i < nd - 2; i++)
        if (a->shape[i] != o->shape[i] || b->shape[i] != o->shape[i])
            return em__cpu_fail(EM_ERR_SHAPE, "cpu: matmul batch dim %d differs", i);
    st = matmul_desc(a, b, o, NULL, 0);
    if (st) return em__cpu_fail(st, "cpu: matmul: out of memory for temporaries");
    return EM_OK;
}

/* LINEAR and LINEAR_ACT (params.flag 1: relu; any other flag is refused). */
em_status em__cpu_k_linear(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 2, 3, 1);
    if (st) return st;
    int act = 0;
    if (c->op == EM_OP_LINEAR_ACT) {
        if (!c->params || c->params->flag != 1)
            return em__cpu_fail(EM_ERR_UNSUPPORTED,
                                "cpu: linear_act: activation %d is not supported (1 = relu)",
                                c->params ? c->params->flag : -1);
        act = 1;
    }
    const em_tdesc *x = &c->in[0], *w = &c->in[1], *o = &c->out[0];
    const em_tdesc *bias = c->n_in >= 3 ? &c->in[2] : NULL;
    if ((st = check_float("linear", x, o->dtype)) || (st = check_float("linear", w, o->dtype)) ||
        (bias && (st = check_float("linear bias", bias, o->dtype))))
        return st;
    int nd = o->ndim;
    if (nd < 2 || x->ndim != nd || w->ndim != 2)
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: linear: x %d-d, w %d-d, out %d-d", x->ndim,
                            w->ndim, nd);
    int64_t N = o->shape[nd - 1], K = x->shape[nd - 1];
    if (w->shape[0] != N || w->shape[1] != K || x->shape[nd - 2] != o->shape[nd - 2])
        return em__cpu_fail(EM_ERR_SHAPE,
                            "cpu: linear: x [.., %lld], w [%lld, %lld], out [.., %lld]",
                            (long long)K, (long long)w->shape[0], (long long)w->shape[1],
                            (long long)N);
    for (int i = 0; i < nd - 2; i++)
        if (x->shape[i] != o->shape[i])
            return em__cpu_fail(EM_ERR_SHAPE, "cpu: linear: batch dim %d differs", i);
    if (bias && (st = em__cpu_check_shape("linear bias", bias, nd, o->shape))) return st;
    /* b = w^T as a view: [..., K, N] with batch stride 0 */
    em_tdesc bt = *w;
    bt.ndim = nd;
    for (int i = 0; i < nd - 2; i++) {
        bt.shape[i] = o->shape[i];
        bt.strides[i] = 0;
    }
    bt.shape[nd - 2] = K;
    bt.shape[nd - 1] = N;
    bt.strides[nd - 2] = w->strides[1];
    bt.strides[nd - 1] = w->strides[0];
    st = matmul_desc(x, &bt, o, bias, act);
    if (st) return em__cpu_fail(st, "cpu: linear: out of memory for temporaries");
    return EM_OK;
}
