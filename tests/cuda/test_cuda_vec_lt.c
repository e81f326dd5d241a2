/*
 * test_cuda_vec_lt.c — the CUDA plugin's vectorised elementwise path, its
 * cuBLASLt LINEAR / LINEAR_ACT and RELU_BACKWARD (ABI 1.4), tested at the
 * plugin level: the test dlopens libember-cuda.so, gives it minimal host
 * services, opens cuda:0 and calls the kernels from its registry directly
 * (so ops the core does not route yet are covered too).
 *   - vectorised path: ADD, MUL (scalar form), AXPY, EXP, CAST f32<->half,
 *     GT (bool out), WHERE, CLAMP, MASKED_FILL, FILL, RELU_BACKWARD on f32,
 *     f16, bf16 (and f64 for some), lengths 1..4099 that are not multiples
 *     of 4/8, operand offsets that break 16-byte alignment (each operand on
 *     its own), in-place forms (out = in[0]) and a strided operand: every
 *     result is bit-identical to the aligned run and to a host reference
 *     (EXP: within 2 ulps of the double value);
 *   - LINEAR and LINEAR_ACT (relu) for f32/f16/bf16 (LINEAR f64 too) with
 *     no bias, a broadcast bias row (the epilogue), a full [M,N] bias,
 *     transposed x and w views, against a double-precision reference;
 *     NaN stays NaN through relu; LINEAR_ACT refuses flags other than 1;
 *   - RELU_BACKWARD: y > 0 ? g : 0 bit for bit, NaN y and -0 y give 0,
 *     broadcast y.
 * Exits 77 (skipped) when the plugin refuses to initialise (no GPU/driver).
 * With a plugin path as argv[1] it runs against that plugin instead (CTest:
 * test_cuda_vec_lt.harness_on_cpu checks the harness and its references
 * against the CPU plugin on every machine).
 */
#define _GNU_SOURCE
#include "ember_plugin.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static const em_backend_table *T;
static void *D; /* device context */
static char g_err[1024];
static int g_is_cuda; /* testing the CUDA plugin (not the harness on another) */

static em_status h_set_error(em_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}
static void h_log(int level, const char *plugin, const char *fmt, ...)
{
    if (level > EM_LOG_WARN && !getenv("TEST_VERBOSE")) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", plugin);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}
static const char *h_getenv(const char *n) { return getenv(n); }

static void check(int ok, const char *fmt, ...)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL ");
    vfprintf(stderr, fmt, ap);
    if (g_err[0]) fprintf(stderr, " (last error: %s)", g_err);
    fprintf(stderr, "\n");
    va_end(ap);
    g_err[0] = 0;
}

/* ---------------- host values <-> dtype bits ------------------------------ */

static size_t dsize(int dt)
{
    return dt == EM_F64 || dt == EM_I64 ? 8 : dt == EM_F16 || dt == EM_BF16 ? 2 : dt == EM_BOOL ? 1 : 4;
}
static double get(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case EM_F32: return ((const float *)p)[i];
    case EM_F64: return ((const double *)p)[i];
    case EM_F16: return em_f16_to_f32(((const uint16_t *)p)[i]);
    case EM_BF16: return em_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const uint8_t *)p)[i];
    }
}
/* stores v (rounded through f32 for the half types, as the kernels do) */
static void put(int dt, void *p, int64_t i, double v)
{
    switch (dt) {
    case EM_F32: ((float *)p)[i] = (float)v; break;
    case EM_F64: ((double *)p)[i] = v; break;
    case EM_F16: ((uint16_t *)p)[i] = em_f32_to_f16((float)v); break;
    case EM_BF16: ((uint16_t *)p)[i] = em_f32_to_bf16((float)v); break;
    default: ((uint8_t *)p)[i] = v != 0; break;
    }
}
static const char *dname(int dt)
{
    static const char *n[] = {"f32", "f64", "f16", "bf16", "i32", "i64", "bool"};
    return dt >= 0 && dt < 7 ? n[dt] : "?";
}

static uint64_t g_seed = 88172645463325252ull;
static double urand(double lo, double hi)
{
    g_seed ^= g_seed << 13;
    g_seed ^= g_seed >> 7;
    g_seed ^= g_seed << 17;
    return lo + (hi - lo) * (double)(g_seed >> 11) / 9007199254740992.0;
}

/* ---------------- device buffers and kernel calls ------------------------ */

/* A device buffer holding `pad` elements of slack before the data. */
typedef struct buf {
    void *b;
    size_t bytes;
} buf;

static buf dev_alloc(size_t bytes)
{
    buf r = {NULL, bytes ? bytes : 1};
    if (T->buffer_alloc(D, r.bytes, &r.b) != EM_OK) r.b = NULL;
    return r;
}
static void dev_put(buf *b, size_t off_bytes, const void *src, size_t n)
{
    if (n) T->buffer_upload(D, b->b, off_bytes, src, n);
}
static void dev_get(const buf *b, size_t off_bytes, void *dst, size_t n)
{
    if (n) T->buffer_download(D, b->b, off_bytes, dst, n);
}

static em_kernel_fn find(int op, int dt, uint32_t *flags)
{
    for (size_t i = 0; i < T->kernel_count; i++)
        if (T->kernels[i].op == op && T->kernels[i].dtype == dt) {
            if (flags) *flags = T->kernels[i].flags;
            return T->kernels[i].fn;
        }
    return NULL;
}

static em_tdesc desc1(buf *b, int dt, int64_t off, int64_t n, int64_t stride)
{
    em_tdesc d;
    memset(&d, 0, sizeof d);
    d.buffer = b->b;
    d.offset = off;
    d.dtype = dt;
    d.ndim = 1;
    d.shape[0] = n;
    d.strides[0] = stride;
    return d;
}

static em_status run(int op, int key, const em_tdesc *in, int n_in, const em_tdesc *out,
                     const em_op_params *p)
{
    em_kernel_fn fn = find(op, key, NULL);
    if (!fn) return h_set_error(EM_ERR_UNSUPPORTED, "no kernel for op %d %s", op, dname(key));
    em_op_call c = {sizeof c, op, n_in, 1, in, out, p};
    em_status st = fn(D, &c);
    if (st == EM_OK) st = T->synchronize(D);
    return st;
}

/* ---------------- vectorised elementwise path ---------------------------- */

enum { V_ADD, V_MULS, V_AXPY, V_EXP, V_CAST, V_GT, V_WHERE, V_CLAMP, V_MFILL, V_FILL, V_RELUBWD,
       V_COUNT };
static const char *vname[V_COUNT] = {"add", "mul_scalar", "axpy", "exp", "cast", "gt", "where",
                                     "clamp", "masked_fill", "fill", "relu_backward"};

typedef struct vcase {
    int kind, dt, odt; /* odt: output dtype (cast, gt) */
    int n_in;
} vcase;

static vcase vc_make(int kind, int dt)
{
    vcase v = {kind, dt, dt, 2};
    switch (kind) {
    case V_MULS: case V_EXP: case V_CLAMP: v.n_in = 1; break;
    case V_CAST: v.n_in = 1; v.odt = dt == EM_F32 ? EM_BF16 : EM_F32; break;
    case V_GT: v.odt = EM_BOOL; break;
    case V_WHERE: v.n_in = 3; break;
    case V_FILL: v.n_in = 0; break;
    default: break;
    }
    return v;
}
static int in_dt(const vcase *v, int j)
{
    if ((v->kind == V_WHERE && j == 2) || (v->kind == V_MFILL && j == 1)) return EM_BOOL;
    return v->dt;
}

/* The host reference of element i (inputs as doubles of their dtype);
 * alt 1 gives the other accepted AXPY rounding (with / without FMA
 * contraction; nvcc contracts by default). */
static double vref(const vcase *v, const double *x, const em_op_params *p, int alt)
{
    int d64 = v->dt == EM_F64;
    switch (v->kind) {
    case V_ADD: return d64 ? x[0] + x[1] : (double)((float)x[0] + (float)x[1]);
    case V_MULS: return d64 ? x[0] * p->scalar[0] : (double)((float)x[0] * (float)p->scalar[0]);
    case V_AXPY:
        if (d64) return alt ? x[0] + p->scalar[0] * x[1] : fma(p->scalar[0], x[1], x[0]);
        if (alt) {
            volatile float prod = (float)p->scalar[0] * (float)x[1];
            return (double)((float)x[0] + prod);
        }
        return (double)fmaf((float)p->scalar[0], (float)x[1], (float)x[0]);
    case V_EXP: return exp(x[0]);
    case V_CAST: return x[0];
    case V_GT: return x[0] > x[1];
    case V_WHERE: return x[2] != 0 ? x[0] : x[1];
    case V_CLAMP: return x[0] < p->scalar[0] ? p->scalar[0] : x[0] > p->scalar[1] ? p->scalar[1] : x[0];
    case V_MFILL: return x[1] != 0 ? p->scalar[0] : x[0];
    case V_FILL: return p->scalar[0];
    default: return x[1] > 0 ? x[0] : 0.0; /* relu_backward (g, y) */
    }
}

static int op_of(int kind)
{
    static const int ops[V_COUNT] = {EM_OP_ADD, EM_OP_MUL, EM_OP_AXPY, EM_OP_EXP, EM_OP_CAST,
                                     EM_OP_GT, EM_OP_WHERE, EM_OP_CLAMP, EM_OP_MASKED_FILL,
                                     EM_OP_FILL, EM_OP_RELU_BACKWARD};
    return ops[kind];
}

/* Runs case v on n elements with element offsets off[0] (out), off[1..]
 * (inputs), input j strided by stride[j]; inplace: out is input 0's
 * buffer and offset. Writes the output's bits into res (n * out size). */
static em_status vrun(const vcase *v, int64_t n, const int64_t *off, const int64_t *stride,
                      int inplace, void *const *host_in, void *res, const em_op_params *p)
{
    buf b[4];
    em_tdesc in[3], out;
    em_status st = EM_OK;
    for (int j = 0; j < v->n_in; j++) {
        int dt = in_dt(v, j);
        int64_t span = off[j + 1] + (n - 1) * stride[j + 1] + 1;
        b[j + 1] = dev_alloc((size_t)span * dsize(dt));
        /* scatter the values to their strided places */
        char *tmp = calloc((size_t)span, dsize(dt));
        for (int64_t i = 0; i < n; i++)
            memcpy(tmp + (off[j + 1] + i * stride[j + 1]) * dsize(dt),
                   (char *)host_in[j] + i * dsize(dt), dsize(dt));
        dev_put(&b[j + 1], 0, tmp, (size_t)span * dsize(dt));
        free(tmp);
        in[j] = desc1(&b[j + 1], dt, off[j + 1], n, stride[j + 1]);
    }
    if (inplace) {
        out = in[0];
    } else {
        b[0] = dev_alloc((size_t)(off[0] + n) * dsize(v->odt));
        out = desc1(&b[0], v->odt, off[0], n, 1);
    }
    int key = v->kind == V_FILL ? v->odt : v->dt;
    st = run(op_of(v->kind), key, in, v->n_in, &out, p);
    if (st == EM_OK) {
        buf *ob = inplace ? &b[1] : &b[0];
        int64_t ostride = inplace ? stride[1] : 1;
        char *tmp = malloc((size_t)(out.offset + (n - 1) * ostride + 1) * dsize(v->odt));
        dev_get(ob, 0, tmp, (size_t)(out.offset + (n - 1) * ostride + 1) * dsize(v->odt));
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)res + i * dsize(v->odt), tmp + (out.offset + i * ostride) * dsize(v->odt),
                   dsize(v->odt));
        free(tmp);
    }
    for (int j = 0; j < v->n_in; j++) T->buffer_free(D, b[j + 1].b);
    if (!inplace) T->buffer_free(D, b[0].b);
    return st;
}

static void test_vectorised(void)
{
    const int64_t lens[] = {1, 3, 7, 8, 9, 15, 17, 33, 1000, 4099};
    const int dts[] = {EM_F32, EM_F16, EM_BF16, EM_F64};
    int cases = 0;
    for (int kind = 0; kind < V_COUNT; kind++)
        for (int di = 0; di < 4; di++) {
            int dt = dts[di];
            if (dt == EM_F64 && (kind == V_CAST || kind == V_EXP)) continue;
            vcase v = vc_make(kind, dt);
            em_op_params p;
            memset(&p, 0, sizeof p);
            p.struct_size = sizeof p;
            p.scalar[0] = kind == V_CLAMP ? -0.5 : kind == V_FILL ? 0.3 : 0.75;
            p.scalar[1] = 0.6;
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                int64_t n = lens[li];
                void *hin[3];
                for (int j = 0; j < v.n_in; j++) {
                    int idt = in_dt(&v, j);
                    hin[j] = malloc((size_t)n * dsize(idt));
                    for (int64_t i = 0; i < n; i++) {
                        double x = idt == EM_BOOL ? (urand(0, 1) < 0.5) : urand(-2, 2);
                        if (idt != EM_BOOL && i % 11 == 5) x = 0.0;
                        if (idt != EM_BOOL && i % 13 == 7 && kind == V_RELUBWD) x = NAN;
                        put(idt, hin[j], i, x);
                    }
                }
                size_t osz = dsize(v.odt);
                char *ref = malloc((size_t)n * osz), *ref2 = malloc((size_t)n * osz),
                     *first = malloc((size_t)n * osz), *got = malloc((size_t)n * osz);
                for (int64_t i = 0; i < n; i++) {
                    double x[3];
                    for (int j = 0; j < v.n_in; j++) x[j] = get(in_dt(&v, j), hin[j], i);
                    put(v.odt, ref, i, vref(&v, x, &p, 0));
                    put(v.odt, ref2, i, vref(&v, x, &p, 1));
                }
                /* layouts: aligned (vector path), each operand off by 1..3
                 * elements, in place (aligned and not), a strided input */
                const int n_lay = 8;
                for (int lay = 0; lay < n_lay; lay++) {
                    int64_t off[4] = {0, 0, 0, 0}, stride[4] = {1, 1, 1, 1};
                    int inplace = 0;
                    const char *what = "aligned";
                    switch (lay) {
                    case 1: off[0] = 1; what = "out offset 1"; break;
                    case 2: off[1] = 3; what = "in0 offset 3"; break;
                    case 3: off[v.n_in > 1 ? 2 : 1] = 2; what = "last input offset 2"; break;
                    case 4: off[3] = 5; off[0] = 8; what = "in2 offset 5, out 8"; break;
                    case 5: inplace = 1; what = "in place"; break;
                    case 6: inplace = 1; off[1] = 1; what = "in place offset 1"; break;
                    case 7: stride[v.n_in > 1 ? 2 : 1] = 2; what = "strided input"; break;
                    }
                    if (inplace && (v.n_in == 0 || v.odt != in_dt(&v, 0))) continue;
                    if (lay == 4 && v.n_in < 3) continue;
                    if (lay == 7 && v.n_in == 0) continue;
                    em_status st = vrun(&v, n, off, stride, inplace, hin, got, &p);
                    int ok = st == EM_OK;
                    int64_t bad = -1;
                    for (int64_t i = 0; ok && i < n; i++) {
                        if (lay > 0 && memcmp(got + i * osz, first + i * osz, osz)) {
                            ok = 0;
                            bad = i;
                        }
                        if (!ok) break;
                        double g = get(v.odt, got, i), r = get(v.odt, ref, i);
                        int same = !memcmp(got + i * osz, ref + i * osz, osz) ||
                                   !memcmp(got + i * osz, ref2 + i * osz, osz) ||
                                   (isnan(g) && isnan(r));
                        if (kind == V_EXP)
                            same = fabs(g - r) <= 2 * fabs(r) *
                                                       (v.odt == EM_F32 ? 0x1p-23
                                                        : v.odt == EM_F16 ? 0x1p-10 : 0x1p-7);
                        if (!same) {
                            ok = 0;
                            bad = i;
                        }
                    }
                    if (lay == 0 && st == EM_OK) memcpy(first, got, (size_t)n * osz);
                    check(ok, "vectorised %s %s n=%lld %s: status %d, first bad element %lld "
                          "(got %.9g, reference %.9g)", vname[kind], dname(dt), (long long)n,
                          what, (int)st, (long long)bad,
                          bad >= 0 ? get(v.odt, got, bad) : 0.0,
                          bad >= 0 ? get(v.odt, ref, bad) : 0.0);
                    cases++;
                }
                for (int j = 0; j < v.n_in; j++) free(hin[j]);
                free(ref);
                free(ref2);
                free(first);
                free(got);
            }
        }
    printf("vectorised path: %d runs checked\n", cases);
}

/* ---------------- LINEAR / LINEAR_ACT via cuBLASLt ------------------------ */

/* x [M,K] (transposed view when xt), w [N,K] (transposed view when wt),
 * bias mode 0 none, 1 broadcast row, 2 full [M,N]; act 1 relu. */
static void linear_case(int dt, int64_t M, int64_t N, int64_t K, int xt, int wt, int bmode,
                        int act, int nan_row)
{
    uint32_t kfl = 0;
    if (!g_is_cuda && find(act ? EM_OP_LINEAR_ACT : EM_OP_LINEAR, dt, &kfl) &&
        (kfl & EM_KERNEL_CONTIGUOUS) && (xt || wt || bmode == 1))
        return; /* another plugin that wants dense operands (the core would copy) */
    size_t es = dsize(dt);
    char *hx = malloc((size_t)(M * K) * es), *hw = malloc((size_t)(N * K) * es);
    char *hb = malloc((size_t)(M * N) * es), *ho = malloc((size_t)(M * N) * es);
    /* values stored in the layout used: x row-major [M,K] or col-major */
    for (int64_t i = 0; i < M * K; i++) put(dt, hx, i, urand(-1, 1));
    for (int64_t i = 0; i < N * K; i++) put(dt, hw, i, urand(-1, 1));
    for (int64_t i = 0; i < M * N; i++) put(dt, hb, i, urand(-1, 1));
    if (nan_row >= 0 && nan_row < M) put(dt, hx, xt ? nan_row : nan_row * K, NAN);
    buf bx = dev_alloc((size_t)(M * K) * es), bw = dev_alloc((size_t)(N * K) * es);
    buf bb = dev_alloc((size_t)(M * N) * es), bo = dev_alloc((size_t)(M * N) * es);
    dev_put(&bx, 0, hx, (size_t)(M * K) * es);
    dev_put(&bw, 0, hw, (size_t)(N * K) * es);
    dev_put(&bb, 0, hb, (size_t)(M * N) * es);
    em_tdesc in[3], out;
    memset(in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in[0].buffer = bx.b; in[0].dtype = dt; in[0].ndim = 2;
    in[0].shape[0] = M; in[0].shape[1] = K;
    in[0].strides[0] = xt ? 1 : K; in[0].strides[1] = xt ? M : 1;
    in[1].buffer = bw.b; in[1].dtype = dt; in[1].ndim = 2;
    in[1].shape[0] = N; in[1].shape[1] = K;
    in[1].strides[0] = wt ? 1 : K; in[1].strides[1] = wt ? N : 1;
    in[2].buffer = bb.b; in[2].dtype = dt; in[2].ndim = 2;
    in[2].shape[0] = M; in[2].shape[1] = N;
    in[2].strides[0] = bmode == 1 ? 0 : N; in[2].strides[1] = 1;
    out.buffer = bo.b; out.dtype = dt; out.ndim = 2;
    out.shape[0] = M; out.shape[1] = N;
    out.strides[0] = N; out.strides[1] = 1;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.flag = act;
    int op = act ? EM_OP_LINEAR_ACT : EM_OP_LINEAR;
    em_status st = run(op, dt, in, bmode ? 3 : 2, &out, &p);
    int ok = st == EM_OK;
    double worst = 0;
    int64_t bad = -1;
    if (ok) dev_get(&bo, 0, ho, (size_t)(M * N) * es);
    const char *tf = getenv("EMBER_CUDA_TF32");
    double rel = dt == EM_F64 ? 1e-12 : dt == EM_F32 ? (tf && !strcmp(tf, "1") ? 4e-3 : 1e-5)
                 : dt == EM_F16 ? 2e-3 : 1.6e-2;
    for (int64_t i = 0; ok && i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = get(dt, hx, xt ? k * M + i : i * K + k);
                double b = get(dt, hw, wt ? k * N + j : j * K + k);
                s += a * b;
                mag += fabs(a * b);
            }
            if (bmode) {
                double bv = get(dt, hb, bmode == 1 ? j : i * N + j);
                s += bv;
                mag += fabs(bv);
            }
            if (act && s < 0) s = 0; /* NaN stays NaN */
            double g = get(dt, ho, i * N + j);
            int good = isnan(s) ? isnan(g) : fabs(g - s) <= rel * (mag + 1e-30) + 1e-300;
            double e = isnan(s) || isnan(g) ? (good ? 0 : INFINITY) : fabs(g - s) / (mag + 1e-30);
            if (e > worst) worst = e;
            if (!good && bad < 0) bad = i * N + j;
        }
    check(ok && bad < 0, "%s %s M=%lld N=%lld K=%lld%s%s bias=%s%s: status %d, worst rel err %.3g, "
          "first bad %lld", act ? "linear_act(relu)" : "linear", dname(dt), (long long)M,
          (long long)N, (long long)K, xt ? " x^T-view" : "", wt ? " w^T-view" : "",
          bmode == 0 ? "none" : bmode == 1 ? "row[0,1]" : "full", nan_row >= 0 ? " NaN row" : "",
          (int)st, worst, (long long)bad);
    T->buffer_free(D, bx.b);
    T->buffer_free(D, bw.b);
    T->buffer_free(D, bb.b);
    T->buffer_free(D, bo.b);
    free(hx);
    free(hw);
    free(hb);
    free(ho);
}

static void test_linear(void)
{
    /* the registry: LINEAR takes strided operands, LINEAR_ACT f32/f16/bf16 */
    uint32_t fl = 0xff;
    if (g_is_cuda)
        check(find(EM_OP_LINEAR, EM_F32, &fl) && !(fl & EM_KERNEL_CONTIGUOUS),
              "LINEAR f32 is registered without EM_KERNEL_CONTIGUOUS (flags %u)", fl);
    check(find(EM_OP_LINEAR_ACT, EM_F32, NULL) && find(EM_OP_LINEAR_ACT, EM_F16, NULL) &&
              find(EM_OP_LINEAR_ACT, EM_BF16, NULL), "LINEAR_ACT f32/f16/bf16 registered");
    check(find(EM_OP_RELU_BACKWARD, EM_F32, NULL) && find(EM_OP_RELU_BACKWARD, EM_F64, NULL) &&
              find(EM_OP_RELU_BACKWARD, EM_F16, NULL) && find(EM_OP_RELU_BACKWARD, EM_BF16, NULL),
          "RELU_BACKWARD float dtypes registered");
    const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {64, 48, 40}, {129, 67, 33}, {256, 512, 128}};
    const int dts[] = {EM_F32, EM_F16, EM_BF16, EM_F64};
    int runs = 0;
    for (int di = 0; di < 4; di++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int bmode = 0; bmode < 3; bmode++)
                for (int act = 0; act < 2; act++) {
                    if (act && dts[di] == EM_F64) continue; /* LINEAR_ACT: f32/f16/bf16 */
                    const int64_t *s = shapes[si];
                    linear_case(dts[di], s[0], s[1], s[2], 0, 0, bmode, act, -1);
                    runs++;
                    if (si == 3) {
                        linear_case(dts[di], s[0], s[1], s[2], 1, 0, bmode, act, -1);
                        linear_case(dts[di], s[0], s[1], s[2], 0, 1, bmode, act, -1);
                        linear_case(dts[di], s[0], s[1], s[2], 1, 1, bmode, act, -1);
                        runs += 3;
                    }
                }
    /* NaN stays NaN through the relu (ABI 1.4), with and without bias */
    for (int di = 0; di < 3; di++)
        for (int bmode = 0; bmode < 2; bmode++) {
            linear_case(dts[di], 16, 24, 8, 0, 0, bmode, 1, 5);
            runs++;
        }
    /* K = 0: out = act(bias) */
    linear_case(EM_F32, 4, 6, 0, 0, 0, 1, 1, -1);
    runs++;
    printf("linear/linear_act: %d cases checked\n", runs);

    /* flags other than 1 are refused */
    buf b = dev_alloc(64);
    em_tdesc in[2], out;
    memset(in, 0, sizeof in);
    for (int j = 0; j < 2; j++) {
        in[j].buffer = b.b; in[j].dtype = EM_F32; in[j].ndim = 2;
        in[j].shape[0] = 2; in[j].shape[1] = 2; in[j].strides[0] = 2; in[j].strides[1] = 1;
    }
    out = in[0];
    em_op_params p;
    for (int flag = 0; flag <= 2; flag += 2) {
        memset(&p, 0, sizeof p);
        p.struct_size = sizeof p;
        p.flag = flag;
        em_status st = run(EM_OP_LINEAR_ACT, EM_F32, in, 2, &out, &p);
        check(st == EM_ERR_UNSUPPORTED, "linear_act flag %d gives status %d, want "
              "EM_ERR_UNSUPPORTED", flag, (int)st);
        g_err[0] = 0;
    }
    T->buffer_free(D, b.b);
}

/* ---------------- RELU_BACKWARD with a broadcast y ------------------------ */

static void test_relu_backward_broadcast(void)
{
    const int dts[] = {EM_F32, EM_F16, EM_BF16, EM_F64};
    for (int di = 0; di < 4; di++) {
        int dt = dts[di];
        size_t es = dsize(dt);
        const int64_t R = 5, C = 37;
        char *hg = malloc((size_t)(R * C) * es), *hy = malloc((size_t)C * es);
        char *ho = malloc((size_t)(R * C) * es);
        for (int64_t i = 0; i < R * C; i++) put(dt, hg, i, urand(-3, 3));
        for (int64_t j = 0; j < C; j++)
            put(dt, hy, j, j % 5 == 0 ? 0.0 : j % 7 == 0 ? NAN : j % 9 == 0 ? -0.0 : urand(-1, 1));
        buf bg = dev_alloc((size_t)(R * C) * es), by = dev_alloc((size_t)C * es),
            bo = dev_alloc((size_t)(R * C) * es);
        dev_put(&bg, 0, hg, (size_t)(R * C) * es);
        dev_put(&by, 0, hy, (size_t)C * es);
        em_tdesc in[2], out;
        memset(in, 0, sizeof in);
        in[0].buffer = bg.b; in[0].dtype = dt; in[0].ndim = 2;
        in[0].shape[0] = R; in[0].shape[1] = C; in[0].strides[0] = C; in[0].strides[1] = 1;
        in[1] = in[0];
        in[1].buffer = by.b; in[1].strides[0] = 0;
        out = in[0];
        out.buffer = bo.b;
        em_op_params p;
        memset(&p, 0, sizeof p);
        p.struct_size = sizeof p;
        em_status st = run(EM_OP_RELU_BACKWARD, dt, in, 2, &out, &p);
        int ok = st == EM_OK;
        if (ok) dev_get(&bo, 0, ho, (size_t)(R * C) * es);
        for (int64_t i = 0; ok && i < R * C; i++) {
            double y = get(dt, hy, i % C);
            char want[8] = {0};
            if (y > 0) memcpy(want, hg + i * es, es);
            else put(dt, want, 0, 0.0);
            if (memcmp(want, ho + i * es, es)) ok = 0;
        }
        check(ok, "relu_backward %s with broadcast y (zeros, -0, NaN): status %d", dname(dt), (int)st);
        T->buffer_free(D, bg.b);
        T->buffer_free(D, by.b);
        T->buffer_free(D, bo.b);
        free(hg);
        free(hy);
        free(ho);
    }
}

int main(int argc, char **argv)
{
    /* argv[1]: another plugin with the same kernels (CTest runs the harness
     * against the CPU plugin too, so its references are checked anywhere) */
    const char *path = argc > 1 ? argv[1] : EMBER_CUDA_PLUGIN;
    g_is_cuda = argc <= 1;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
        return 1;
    }
    printf("plugin %s\n", path);
    typedef em_status (*init_fn)(const em_host_services *, const em_backend_table **);
    init_fn init = (init_fn)dlsym(h, "em_plugin_init");
    if (!init) {
        fprintf(stderr, "no em_plugin_init\n");
        return 1;
    }
    static em_host_services host = {EM_PLUGIN_ABI_MAJOR, EM_PLUGIN_ABI_MINOR, sizeof host,
                                    h_set_error, h_log, h_getenv};
    if (init(&host, &T) != EM_OK || !T || T->device_count() < 1) {
        printf("SKIP: the plugin refused to initialise: %s\n", g_err);
        return 77;
    }
    if (T->device_open(0, &D) != EM_OK) {
        fprintf(stderr, "device_open(0): %s\n", g_err);
        return 1;
    }
    test_vectorised();
    test_relu_backward_broadcast();
    test_linear();
    T->device_close(D);
    if (T->shutdown) T->shutdown();
    printf("%s test_cuda_vec_lt: %d checks passed, %d failed\n", failed ? "FAIL" : "PASS", passed,
           failed);
    return failed ? 1 : 0;
}
