/*
 * test_vulkan_kernels.c — the Vulkan plugin's kernels called directly through
 * its backend table (dlopen of libember-vulkan.so, path in argv[1]; no core),
 * so every layout can be set by hand: offsets, strides, batch stride 0, and
 * the ABI 1.4 ops the core may not call yet (LINEAR_ACT, RELU_BACKWARD).
 * Checked against double-precision references written here:
 *   matmul    MATMUL / LINEAR / LINEAR_ACT on f32 (and LINEAR_ACT on f16/bf16,
 *             the generic shader): tiny to odd shapes (M, N, K
 *             not multiples of the tiles), the MLP shape 32x784x256, shapes
 *             that take the 128x128 tiles, A row-major or transposed, B n- or
 *             k-contiguous, aligned (vec4) and misaligned offsets / leading
 *             strides, batch stride 0, strided outputs (elements outside the
 *             output view must stay untouched), bias with any strides, relu;
 *             each case also with EMBER_VULKAN_MATMUL=generic, tile64 and
 *             tile128. Error bound: (K + 2) * 2^-23 * sum |a||b| (+ |bias|).
 *   elementwise  the dense f32 vec4 path and its fallbacks: lengths 1..100003
 *             (not multiples of 4), offsets with the same / different residues
 *             modulo 4 (narrow views), in-place forms, binary, scalar, unary,
 *             AXPY, CLAMP, COPY, FILL, RELU_BACKWARD (NaN, -0, +0 in y; also
 *             strided and f64 where the device has it).
 *   float controls  the SPIR-V execution modes the plugin adds to its shaders
 *             (its INFO log line "shader execution modes: ...") and the device
 *             description's "float controls: ..." agree with the device's
 *             VkPhysicalDeviceFloatControlsProperties queried here (lavapipe:
 *             SignedZeroInfNanPreserve yes, DenormPreserve no); RELU, CLAMP and
 *             the relu of LINEAR_ACT (every matmul shader) on NaN (both signs),
 *             +-0, +-inf and +-subnormals, bit for bit as the CPU backend (a
 *             subnormal result may be 0 only where the description says "f32
 *             subnormals may flush").
 * Runs with the validation layer on (CTest sets EMBER_VULKAN_VALIDATION=1):
 * a validation message fails the op that caused it. Exit 77 without a device.
 */
#include "ember_plugin.h"

#include <dlfcn.h>
#include <vulkan/vulkan.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_fail, g_pass;
static char g_err[1024];
#define EXPECT(c, ...)                                                                   \
    do {                                                                                 \
        if (c) g_pass++;                                                                 \
        else {                                                                           \
            g_fail++;                                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            printf(__VA_ARGS__);                                                         \
            printf(" [%s]\n", g_err);                                                    \
        }                                                                                \
    } while (0)

static em_status h_set_error(em_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}
static char g_fc_line[512]; /* the plugin's "shader execution modes: ..." log line */
static void h_log(int level, const char *plugin, const char *fmt, ...)
{
    va_list ap;
    if (level > EM_LOG_WARN) {
        char line[512];
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (strstr(line, "shader execution modes:")) snprintf(g_fc_line, sizeof g_fc_line, "%s", line);
        return;
    }
    va_start(ap, fmt);
    printf("[%s] ", plugin);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}
static const char *h_getenv(const char *name) { return getenv(name); }
static const em_host_services g_host = {EM_PLUGIN_ABI_MAJOR, EM_PLUGIN_ABI_MINOR,
                                        sizeof(em_host_services), h_set_error, h_log, h_getenv};
static const em_backend_table *T;
static void *g_dev;

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static double urand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * 0x1.0p-53;
}

/* A device buffer with its host copy (f32 or f64 elements). */
typedef struct {
    void *buf;
    size_t n, es;
    void *host;
} dbuf;

static dbuf dalloc(size_t n, size_t es)
{
    dbuf b = {NULL, n, es, calloc(n ? n : 1, es)};
    if (T->buffer_alloc(g_dev, n * es > 0 ? n * es : 4, &b.buf)) printf("alloc: %s\n", g_err);
    return b;
}
static void dfree(dbuf *b)
{
    T->buffer_free(g_dev, b->buf);
    free(b->host);
}
static void dup_(dbuf *b) { T->buffer_upload(g_dev, b->buf, 0, b->host, b->n * b->es); }
static em_status ddown(dbuf *b, void *dst) { return T->buffer_download(g_dev, b->buf, 0, dst, b->n * b->es); }
static float *fh(dbuf *b) { return b->host; }

static em_tdesc desc(dbuf *b, int dt, int ndim, const int64_t *shape, const int64_t *strides,
                     int64_t off)
{
    em_tdesc t;
    memset(&t, 0, sizeof t);
    t.buffer = b->buf;
    t.offset = off;
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], t.strides[i] = strides[i];
    return t;
}

/* Runs op through the registry; supports() must accept. */
static em_status run(int op, int dt, const em_tdesc *in, int n_in, const em_tdesc *out,
                     const em_op_params *p)
{
    em_op_call c = {sizeof c, op, n_in, 1, in, out, p};
    em_kernel_fn fn = NULL;
    for (size_t i = 0; i < T->kernel_count; i++)
        if (T->kernels[i].op == op && T->kernels[i].dtype == dt) fn = T->kernels[i].fn;
    g_err[0] = 0;
    if (!fn) {
        snprintf(g_err, sizeof g_err, "no kernel for op %d dtype %d", op, dt);
        return EM_ERR_UNSUPPORTED;
    }
    if (T->supports && !T->supports(g_dev, &c)) {
        snprintf(g_err, sizeof g_err, "supports() declined op %d dtype %d", op, dt);
        return EM_ERR_UNSUPPORTED;
    }
    return fn(g_dev, &c);
}

/* ---------------- matmul ---------------------------------------------------- */

typedef struct {
    int batch, M, N, K;
    int at, bt;      /* A stored [K,M] (m-stride 1); B stored [N,K] (k-stride 1) */
    int misalign;    /* offsets 1..3 and leading strides not multiples of 4 */
    int a_b0, b_b0;  /* batch stride 0 for A / B */
    int cstride;     /* output column stride 2 (not dense) */
    int op;          /* EM_OP_MATMUL, EM_OP_LINEAR, EM_OP_LINEAR_ACT */
    int bias;        /* 0 none, 1 [N] broadcast (strides 0,1), 2 [N,M] transposed */
} mm_case;

static void mm_run(const mm_case *q, const char *mode)
{
    int Bt = q->batch, M = q->M, N = q->N, K = q->K, lin = q->op != EM_OP_MATMUL;
    if (lin) Bt = 1;
    /* A element (b, m, k): off + b*sb + m*sm + k*sk */
    int64_t ald = q->at ? M : K, bld = q->bt ? K : N;
    ald = q->misalign ? ald + 1 : (ald + 3) / 4 * 4;
    bld = q->misalign ? bld + 3 : (bld + 3) / 4 * 4;
    int64_t aoff = q->misalign ? 1 : 4, boff = q->misalign ? 3 : 0;
    int64_t arows = q->at ? K : M, brows = q->bt ? N : K;
    int64_t asb = q->a_b0 ? 0 : arows * ald, bsb = q->b_b0 ? 0 : brows * bld;
    int64_t asm_ = q->at ? 1 : ald, ask = q->at ? ald : 1;
    int64_t bsk = q->bt ? 1 : bld, bsn = q->bt ? bld : 1;
    size_t na = (size_t)(aoff + (q->a_b0 ? 1 : Bt) * arows * ald);
    size_t nb = (size_t)(boff + (q->b_b0 ? 1 : Bt) * brows * bld);
    int64_t cn = q->cstride ? 2 : 1, coff = q->misalign ? 2 : 0;
    /* aligned: rows padded to a multiple of 4 (vec4 stores; the padding must stay untouched) */
    int64_t csm = q->misalign ? (int64_t)N * cn + 1 : ((int64_t)N * cn + 3) / 4 * 4;
    int64_t csb = (int64_t)M * csm;
    size_t nc = (size_t)(coff + (int64_t)Bt * csb + 1);
    dbuf A = dalloc(na, 4), B = dalloc(nb, 4), C = dalloc(nc, 4), D = dalloc((size_t)M * N + 1, 4);
    for (size_t i = 0; i < na; i++) fh(&A)[i] = (float)(urand() * 2 - 1);
    for (size_t i = 0; i < nb; i++) fh(&B)[i] = (float)(urand() * 2 - 1);
    for (size_t i = 0; i < nc; i++) fh(&C)[i] = 1234.5f;
    for (size_t i = 0; i < D.n; i++) fh(&D)[i] = (float)(urand() * 4 - 2);
    dup_(&A), dup_(&B), dup_(&C), dup_(&D);
    /* bias (m, n): 1: D[n] (strides 0, 1); 2: D[n*M + m] (strides 1, M) */
    int64_t dsm = q->bias == 2 ? 1 : 0, dsn = q->bias == 2 ? M : 1;
    em_tdesc in[3], out;
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    int n_in = 2;
    if (!lin) {
        int64_t as[3] = {Bt, M, K}, bs[3] = {Bt, K, N}, cs[3] = {Bt, M, N};
        int64_t ast[3] = {asb, asm_, ask}, bst[3] = {bsb, bsk, bsn}, cst[3] = {csb, csm, cn};
        in[0] = desc(&A, EM_F32, 3, as, ast, aoff);
        in[1] = desc(&B, EM_F32, 3, bs, bst, boff);
        out = desc(&C, EM_F32, 3, cs, cst, coff);
    } else { /* x [M,K], w [N,K]: w's (n, k) = B's (k, n) */
        int64_t as[2] = {M, K}, ws[2] = {N, K}, cs[2] = {M, N}, bsh[2] = {M, N};
        int64_t ast[2] = {asm_, ask}, wst[2] = {bsn, bsk}, cst[2] = {csm, cn}, dst[2] = {dsm, dsn};
        in[0] = desc(&A, EM_F32, 2, as, ast, aoff);
        in[1] = desc(&B, EM_F32, 2, ws, wst, boff);
        if (q->bias) in[n_in++] = desc(&D, EM_F32, 2, bsh, dst, 0);
        out = desc(&C, EM_F32, 2, cs, cst, coff);
        if (q->op == EM_OP_LINEAR_ACT) p.flag = 1;
    }
    em_status st = run(q->op, EM_F32, in, n_in, &out, &p);
    float *got = malloc(nc * 4);
    if (!st) st = ddown(&C, got);
    char what[200];
    snprintf(what, sizeof what, "%s op %d b%d %dx%dx%d at%d bt%d mis%d b0:%d%d cs%d bias%d",
             mode, q->op, Bt, M, N, K, q->at, q->bt, q->misalign, q->a_b0, q->b_b0, q->cstride,
             q->bias);
    EXPECT(st == EM_OK, "%s: status %d", what, st);
    if (st) goto done;
    /* reference; mark the output's elements */
    char *mark = calloc(nc, 1);
    double worst = 0;
    int bad = 0;
    for (int b = 0; b < Bt; b++)
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double s = 0, sa = 0;
                for (int k = 0; k < K; k++) {
                    double x = fh(&A)[aoff + b * asb + m * asm_ + k * ask];
                    double y = fh(&B)[boff + b * bsb + k * bsk + n * bsn];
                    s += x * y;
                    sa += fabs(x * y);
                }
                if (lin && q->bias) {
                    double bv = fh(&D)[m * dsm + n * dsn];
                    s += bv;
                    sa += fabs(bv);
                }
                if (q->op == EM_OP_LINEAR_ACT && s < 0) s = 0;
                size_t ci = (size_t)(coff + b * csb + m * csm + n * cn);
                mark[ci] = 1;
                double err = fabs(got[ci] - s), tol = (K + 2) * 0x1p-23 * sa + 1e-30;
                if (!(err <= tol)) {
                    if (bad++ < 3)
                        printf("  %s: [%d,%d,%d] got %g want %g (tol %g)\n", what, b, m, n,
                               got[ci], s, tol);
                } else if (sa > 0 && err / sa > worst)
                    worst = err / sa;
            }
    int clobbered = 0;
    for (size_t i = 0; i < nc; i++)
        if (!mark[i] && got[i] != 1234.5f) clobbered++;
    EXPECT(bad == 0, "%s: %d elements outside the bound", what, bad);
    EXPECT(clobbered == 0, "%s: %d elements outside the output view written", what, clobbered);
    free(mark);
done:
    free(got);
    dfree(&A), dfree(&B), dfree(&C), dfree(&D);
}

static void test_matmul(void)
{
    static const int shapes[][4] = {
        {1, 1, 1, 1},     {1, 127, 129, 65}, {1, 128, 128, 8},  {1, 129, 127, 17},
        {1, 200, 3, 199}, {1, 3, 200, 5},    {1, 65, 63, 33},   {1, 1, 256, 7},
        {1, 256, 1, 9},   {1, 33, 17, 200},  {1, 32, 256, 784}, {2, 64, 64, 16},
        {3, 5, 7, 3},     {1, 4, 4, 0},      {1, 260, 300, 12}, {12, 130, 131, 20},
    };
    const char *modes[] = {NULL, "generic", "tile64", "tile128"};
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int mi = 0; mi < 4; mi++) {
        if (modes[mi]) setenv("EMBER_VULKAN_MATMUL", modes[mi], 1);
        else unsetenv("EMBER_VULKAN_MATMUL");
        const char *mode = modes[mi] ? modes[mi] : "auto";
        int f0 = g_fail;
        for (int s = 0; s < nshapes; s++) {
            for (int lay = 0; lay < 8; lay++) {
                /* the slower modes see every shape with a few layouts */
                if (mi > 0 && lay % 3 != s % 3) continue;
                mm_case q = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3],
                             lay & 1, (lay >> 1) & 1, (lay >> 2) & 1, 0, 0, 0, EM_OP_MATMUL, 0};
                mm_run(&q, mode);
            }
            if (shapes[s][0] > 1) { /* batch broadcast */
                mm_case q0 = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 0, 0, 0,
                              1, 0, 0, EM_OP_MATMUL, 0};
                mm_run(&q0, mode);
                mm_case q1 = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 1, 1, 0,
                              0, 1, 1, EM_OP_MATMUL, 0};
                mm_run(&q1, mode);
            }
            for (int v = 0; v < 6; v++) { /* LINEAR / LINEAR_ACT, w row-major (bt = 1) */
                if (mi > 0 && v % 2 != s % 2) continue;
                mm_case q = {1, shapes[s][1], shapes[s][2], shapes[s][3], v == 5, v != 4,
                             v == 3, 0, 0, v == 2, v < 3 ? EM_OP_LINEAR : EM_OP_LINEAR_ACT,
                             v % 3};
                mm_run(&q, mode);
            }
        }
        printf("matmul (%s): %s\n", mode, g_fail == f0 ? "ok" : "FAILED");
    }
    unsetenv("EMBER_VULKAN_MATMUL");

    /* f16 / bf16 LINEAR_ACT (the generic shader): x [5,9], w [7,9], bias [7] */
    for (int dt = EM_F16; dt <= EM_BF16; dt++) {
        enum { M = 5, N = 7, K = 9 };
        dbuf X = dalloc(M * K, 2), W = dalloc(N * K, 2), Bi = dalloc(N, 2), O = dalloc(M * N, 2);
        uint16_t *xh = X.host, *wh = W.host, *bh = Bi.host;
        float xf[M * K], wf[N * K], bf[N];
        uint16_t (*to)(float) = dt == EM_F16 ? em_f32_to_f16 : em_f32_to_bf16;
        float (*from)(uint16_t) = dt == EM_F16 ? em_f16_to_f32 : em_bf16_to_f32;
        for (int i = 0; i < M * K; i++) xh[i] = to((float)(urand() * 2 - 1)), xf[i] = from(xh[i]);
        for (int i = 0; i < N * K; i++) wh[i] = to((float)(urand() * 2 - 1)), wf[i] = from(wh[i]);
        for (int i = 0; i < N; i++) bh[i] = to((float)(urand() - 0.5)), bf[i] = from(bh[i]);
        dup_(&X), dup_(&W), dup_(&Bi);
        int64_t xs[2] = {M, K}, xst[2] = {K, 1}, ws[2] = {N, K}, os[2] = {M, N}, ost[2] = {N, 1};
        int64_t bst[2] = {0, 1};
        em_tdesc in3[3] = {desc(&X, dt, 2, xs, xst, 0), desc(&W, dt, 2, ws, xst, 0),
                           desc(&Bi, dt, 2, os, bst, 0)};
        em_tdesc o3 = desc(&O, dt, 2, os, ost, 0);
        em_op_params p3 = {.struct_size = sizeof p3, .flag = 1};
        uint16_t got[M * N];
        em_status s3 = run(EM_OP_LINEAR_ACT, dt, in3, 3, &o3, &p3);
        if (!s3) s3 = ddown(&O, got);
        EXPECT(s3 == EM_OK, "linear_act dtype %d: status %d", dt, s3);
        int bad = 0;
        for (int m = 0; m < M && !s3; m++)
            for (int n = 0; n < N; n++) {
                double r = bf[n], sa = fabs(bf[n]);
                for (int k = 0; k < K; k++) r += (double)xf[m * K + k] * wf[n * K + k],
                                            sa += fabs((double)xf[m * K + k] * wf[n * K + k]);
                r = r < 0 ? 0 : r;
                double tol = (dt == EM_F16 ? 0x1p-11 : 0x1p-8) * fabs(r) + 1e-5 * sa;
                if (!(fabs(from(got[m * N + n]) - r) <= tol) && bad++ < 3)
                    printf("  linear_act dtype %d [%d,%d]: got %g want %g\n", dt, m, n,
                           from(got[m * N + n]), r);
            }
        EXPECT(bad == 0, "linear_act dtype %d: %d wrong", dt, bad);
        dfree(&X), dfree(&W), dfree(&Bi), dfree(&O);
    }

    /* LINEAR_ACT with another activation is refused */
    dbuf A = dalloc(16, 4);
    int64_t sh[2] = {2, 2}, st[2] = {2, 1};
    em_tdesc in[2] = {desc(&A, EM_F32, 2, sh, st, 0), desc(&A, EM_F32, 2, sh, st, 4)};
    em_tdesc out = desc(&A, EM_F32, 2, sh, st, 8);
    em_op_params p = {.struct_size = sizeof p, .flag = 2};
    EXPECT(run(EM_OP_LINEAR_ACT, EM_F32, in, 2, &out, &p) == EM_ERR_UNSUPPORTED,
           "linear_act flag 2 must be EM_ERR_UNSUPPORTED");
    p.flag = 0;
    EXPECT(run(EM_OP_LINEAR_ACT, EM_F32, in, 2, &out, &p) == EM_ERR_UNSUPPORTED,
           "linear_act flag 0 must be EM_ERR_UNSUPPORTED");
    dfree(&A);
}

/* ---------------- elementwise ------------------------------------------------ */

static double ref_op(int op, double a, double b, const em_op_params *p)
{
    switch (op) {
    case EM_OP_ADD: return (float)a + (float)b;
    case EM_OP_SUB: return a - b;
    case EM_OP_MUL: return a * b;
    case EM_OP_DIV: return a / b;
    case EM_OP_MAXIMUM: return (a != a || a > b) ? a : b;
    case EM_OP_AXPY: return a + (double)(float)p->scalar[0] * b;
    case EM_OP_CLAMP: { double r = a < p->scalar[0] ? (float)p->scalar[0] : a;
                        return r > p->scalar[1] ? (float)p->scalar[1] : r; }
    case EM_OP_NEG: return -a;
    case EM_OP_EXP: return exp(a);
    case EM_OP_RELU: return a < 0 ? 0 : a;
    case EM_OP_COPY: return a;
    case EM_OP_FILL: return (float)p->scalar[0];
    case EM_OP_RELU_BACKWARD: return b > 0 ? a : 0;
    }
    return NAN;
}

/* One elementwise call on 1-D views of length n. offs: out, in0, in1 offsets;
 * inplace: out is in0 (same buffer and offset); scalar: in1 is params.scalar[0];
 * stride: element stride of every operand (2: the strided path). */
static void ew_run(int op, int dt, int n, const int offs[3], int inplace, int scalar, int stride)
{
    int n_in = op == EM_OP_FILL ? 0 : (op == EM_OP_ADD || op == EM_OP_SUB || op == EM_OP_MUL ||
                                       op == EM_OP_DIV || op == EM_OP_MAXIMUM || op == EM_OP_AXPY ||
                                       op == EM_OP_RELU_BACKWARD) && !scalar ? 2 : 1;
    size_t es = dt == EM_F64 ? 8 : 4, len = (size_t)n * stride + 8;
    dbuf X[3];
    for (int i = 0; i < 3; i++) {
        X[i] = dalloc(len, es);
        for (size_t j = 0; j < len; j++) {
            double v = urand() * 4 - 2;
            if (op == EM_OP_DIV && i == 2 && fabs(v) < 0.1) v = 0.5;
            if (op == EM_OP_RELU_BACKWARD && i == 2 && j % 7 == 0)
                v = j % 21 == 0 ? NAN : j % 14 == 0 ? -0.0 : 0.0;
            if (es == 8) ((double *)X[i].host)[j] = v;
            else fh(&X[i])[j] = (float)v;
        }
        dup_(&X[i]);
    }
    em_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.scalar[0] = op == EM_OP_CLAMP ? -0.5 : 0.75;
    p.scalar[1] = 1.25;
    int64_t sh[1] = {n}, st[1] = {stride};
    int oo = inplace ? offs[1] : offs[0];
    dbuf *ob = inplace ? &X[1] : &X[0];
    em_tdesc in[2] = {desc(&X[1], dt, 1, sh, st, offs[1]), desc(&X[2], dt, 1, sh, st, offs[2])};
    em_tdesc out = desc(ob, dt, 1, sh, st, oo);
    em_status s = run(op, dt, in, n_in, &out, &p);
    void *got = malloc(len * es);
    if (!s) s = ddown(ob, got);
    char what[160];
    snprintf(what, sizeof what, "ew op %d dt %d n %d offs %d,%d,%d inplace %d scalar %d stride %d",
             op, dt, n, offs[0], offs[1], offs[2], inplace, scalar, stride);
    EXPECT(s == EM_OK, "%s: status %d", what, s);
    if (!s) {
        int bad = 0;
        for (size_t j = 0; j < len; j++) {
            double g = es == 8 ? ((double *)got)[j] : ((float *)got)[j];
            double orig = es == 8 ? ((double *)ob->host)[j] : fh(ob)[j];
            long rel = (long)j - oo;
            double want = orig, tol = 0;
            if (rel >= 0 && rel % stride == 0 && rel / stride < n) {
                size_t i0 = (size_t)(offs[1] + (rel / stride) * stride);
                size_t i1 = (size_t)(offs[2] + (rel / stride) * stride);
                double a = es == 8 ? ((double *)X[1].host)[i0] : fh(&X[1])[i0];
                double b = scalar ? (double)(float)p.scalar[0]
                                  : es == 8 ? ((double *)X[2].host)[i1] : fh(&X[2])[i1];
                want = ref_op(op, a, b, &p);
                if (es == 4) want = (float)want;
                int exact = op == EM_OP_RELU_BACKWARD || op == EM_OP_COPY || op == EM_OP_FILL ||
                            op == EM_OP_NEG || op == EM_OP_RELU || op == EM_OP_MAXIMUM ||
                            op == EM_OP_CLAMP || es == 8;
                tol = op == EM_OP_EXP ? 4e-6 * fabs(want)
                      : exact ? 0 : 0x1p-22 * (fabs(want) + fabs(a) + fabs(b));
            }
            int ok = (want != want) ? g != g : fabs(g - want) <= tol;
            if (op == EM_OP_RELU_BACKWARD && ok && want == 0 && signbit(g)) ok = 0;
            if (!ok && bad++ < 3) printf("  %s: [%zu] got %g want %g\n", what, j, g, want);
        }
        EXPECT(bad == 0, "%s: %d wrong elements", what, bad);
    }
    free(got);
    for (int i = 0; i < 3; i++) dfree(&X[i]);
}

static void test_elementwise(void)
{
    static const int lens[] = {1, 3, 4, 5, 7, 8, 1023, 4099, 100003};
    static const int offs[][3] = {{0, 0, 0}, {1, 1, 1}, {3, 7, 3}, {0, 2, 0}, {2, 2, 1}};
    static const int ops[] = {EM_OP_ADD, EM_OP_SUB, EM_OP_MUL, EM_OP_DIV, EM_OP_MAXIMUM,
                              EM_OP_AXPY, EM_OP_CLAMP, EM_OP_NEG, EM_OP_EXP, EM_OP_RELU,
                              EM_OP_COPY, EM_OP_FILL, EM_OP_RELU_BACKWARD};
    int f0 = g_fail;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
            for (size_t f = 0; f < sizeof offs / sizeof offs[0]; f++) {
                if (lens[l] > 5000 && f > 2) continue;
                ew_run(ops[o], EM_F32, lens[l], offs[f], 0, 0, 1);
                if (f < 2) ew_run(ops[o], EM_F32, lens[l], offs[f], 1, 0, 1);
                if (f == 1 && ops[o] <= EM_OP_MAXIMUM) ew_run(ops[o], EM_F32, lens[l], offs[f], 0, 1, 1);
                if (f == 2 && l < 7) ew_run(ops[o], EM_F32, lens[l], offs[f], 0, 0, 2);
            }
    printf("elementwise f32: %s\n", g_fail == f0 ? "ok" : "FAILED");
    /* RELU_BACKWARD on f64 where the device computes in double */
    int64_t sh[1] = {4}, st[1] = {1};
    em_tdesc probe = {0};
    probe.dtype = EM_F64, probe.ndim = 1, probe.shape[0] = sh[0], probe.strides[0] = st[0];
    em_tdesc pin[2] = {probe, probe};
    em_op_params p = {.struct_size = sizeof p};
    em_op_call c = {sizeof c, EM_OP_RELU_BACKWARD, 2, 1, pin, &probe, &p};
    if (T->supports(g_dev, &c)) {
        static const int z[3] = {0, 0, 0}, w[3] = {1, 3, 2};
        ew_run(EM_OP_RELU_BACKWARD, EM_F64, 1001, z, 0, 0, 1);
        ew_run(EM_OP_RELU_BACKWARD, EM_F64, 1001, w, 1, 0, 1);
        ew_run(EM_OP_RELU_BACKWARD, EM_F64, 300, w, 0, 0, 3);
        printf("relu_backward f64: %s\n", g_fail == f0 ? "ok" : "FAILED");
    } else {
        printf("relu_backward f64: declined on this device (no shaderFloat64)\n");
    }
}

/* ---------------- float controls and NaN / -0 / subnormal selects ------------------ */

static int g_may_flush; /* the description says "f32 subnormals may flush" */

/* got vs want bit for bit (any NaN for NaN); a subnormal want may come back as a zero of
 * the same sign only where the device may flush subnormals. */
static int same_f32(float got, float want)
{
    uint32_t g, w;
    memcpy(&g, &got, 4);
    memcpy(&w, &want, 4);
    if (want != want) return got != got;
    if (g == w) return 1;
    return g_may_flush && fpclassify(want) == FP_SUBNORMAL && (g & 0x7fffffffu) == 0 &&
           (g >> 31) == (w >> 31);
}

static void test_float_controls(void)
{
    /* what the device reports, queried here (the plugin's device 0: the first
     * Vulkan 1.2 device, matched by name) */
    em_plugin_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT(T->device_info(0, &info) == EM_OK, "device_info");
    VkApplicationInfo ai = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                            .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                .pApplicationInfo = &ai};
    VkInstance inst;
    VkPhysicalDeviceFloatControlsProperties fc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FLOAT_CONTROLS_PROPERTIES};
    int found = 0;
    if (vkCreateInstance(&ici, NULL, &inst) == VK_SUCCESS) {
        VkPhysicalDevice ph[16];
        uint32_t n = 16;
        vkEnumeratePhysicalDevices(inst, &n, ph);
        for (uint32_t i = 0; i < n && !found; i++) {
            VkPhysicalDeviceProperties2 p2 = {
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &fc};
            vkGetPhysicalDeviceProperties2(ph[i], &p2);
            found = p2.properties.apiVersion >= VK_API_VERSION_1_2 &&
                    !strcmp(p2.properties.deviceName, info.name);
        }
        vkDestroyInstance(inst, NULL);
    }
    EXPECT(found, "float controls: device %s not found by the test", info.name);
    if (!found) return;
    int wide = (info.dtype_mask >> EM_F64) & 1;
    int ind = fc.denormBehaviorIndependence;
    int sz32 = fc.shaderSignedZeroInfNanPreserveFloat32, sz64 = wide && fc.shaderSignedZeroInfNanPreserveFloat64;
    int dp32 = fc.shaderDenormPreserveFloat32 && ind != VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_NONE;
    int dp64 = wide && fc.shaderDenormPreserveFloat64 && ind == VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_ALL;
    printf("float controls reported: denormBehaviorIndependence %d, DenormPreserve 16/32/64 %d %d %d, "
           "SignedZeroInfNanPreserve 16/32/64 %d %d %d\n", ind, fc.shaderDenormPreserveFloat16,
           fc.shaderDenormPreserveFloat32, fc.shaderDenormPreserveFloat64,
           fc.shaderSignedZeroInfNanPreserveFloat16, fc.shaderSignedZeroInfNanPreserveFloat32,
           fc.shaderSignedZeroInfNanPreserveFloat64);
    printf("plugin: %s\n", g_fc_line[0] ? g_fc_line : "(no execution-modes line)");
    EXPECT(g_fc_line[0], "no \"shader execution modes\" log line from the plugin");
    /* "shader execution modes: <narrow shaders' modes>; wide shaders: <theirs> (...)" */
    char narrow[512], widem[512] = "";
    snprintf(narrow, sizeof narrow, "%s", g_fc_line);
    char *ws = strstr(narrow, "; wide shaders:");
    if (ws) snprintf(widem, sizeof widem, "%s", ws), *ws = 0;
    EXPECT(!!strstr(narrow, "SignedZeroInfNanPreserve 32") == sz32,
           "SignedZeroInfNanPreserve 32 (device %d): %s", sz32, g_fc_line);
    EXPECT(!!strstr(narrow, "DenormPreserve 32") == dp32, "DenormPreserve 32 (device %d): %s",
           dp32, g_fc_line);
    if (wide && !strstr(widem, "not used")) { /* not used: EMBER_VULKAN_NARROW=1 */
        EXPECT(!!strstr(widem, "SignedZeroInfNanPreserve 32") == sz32 &&
                   !!strstr(widem, "SignedZeroInfNanPreserve 64") == sz64,
               "SignedZeroInfNanPreserve 32/64 in wide shaders (device %d %d): %s", sz32, sz64,
               g_fc_line);
        EXPECT(!!strstr(widem, "DenormPreserve 32") == dp32 &&
                   !!strstr(widem, "DenormPreserve 64") == dp64,
               "DenormPreserve 32/64 in wide shaders (device %d %d): %s", dp32, dp64, g_fc_line);
    }
    EXPECT(strstr(info.description, dp32 ? "f32 subnormals preserved" : "f32 subnormals may flush") != NULL,
           "description: %s", info.description);
    g_may_flush = strstr(info.description, "f32 subnormals may flush") != NULL;

    /* RELU and CLAMP on special values, bit for bit as the CPU backend */
    const float sub = 1e-40f, nan_ = NAN;
    float nnan;
    uint32_t nb = 0xffc00001u;
    memcpy(&nnan, &nb, 4);
    const float sv[] = {nan_, nnan, 0.0f, -0.0f, sub, -sub, INFINITY, -INFINITY, 1.5f, -1.5f,
                        0.5f, 3e-39f, -3e-39f, 2.0f};
    enum { NS = sizeof sv / sizeof sv[0] };
    static const double bounds[][2] = {{0.0, 1.0}, {-1.0, 2e-40}, {-0.0, 0.0}, {NAN, 1.0}};
    for (int v = 0; v < 1 + 4; v++) {
        int op = v == 0 ? EM_OP_RELU : EM_OP_CLAMP;
        for (int len = NS; len <= 4 * NS; len += 3 * NS) { /* also the vec4 path */
            dbuf X = dalloc((size_t)len, 4), O = dalloc((size_t)len, 4);
            for (int i = 0; i < len; i++) fh(&X)[i] = sv[i % NS];
            dup_(&X);
            int64_t sh[1] = {len}, st[1] = {1};
            em_tdesc in = desc(&X, EM_F32, 1, sh, st, 0), out = desc(&O, EM_F32, 1, sh, st, 0);
            em_op_params p = {.struct_size = sizeof p};
            if (v) p.scalar[0] = bounds[v - 1][0], p.scalar[1] = bounds[v - 1][1];
            float got[4 * NS];
            em_status s = run(op, EM_F32, &in, 1, &out, &p);
            if (!s) s = ddown(&O, got);
            EXPECT(s == EM_OK, "%s special: status %d", v ? "clamp" : "relu", s);
            int bad = 0;
            for (int i = 0; i < len && !s; i++) {
                float x = sv[i % NS], want;
                if (!v) want = x < 0 ? 0 : x;
                else {
                    float lo = (float)p.scalar[0], hi = (float)p.scalar[1];
                    want = x < lo ? lo : x;
                    want = want > hi ? hi : want;
                }
                if (!same_f32(got[i], want) && bad++ < 4)
                    printf("  %s [%g, %g] (%g): got %g want %g\n", v ? "clamp" : "relu",
                           p.scalar[0], p.scalar[1], x, got[i], want);
            }
            EXPECT(bad == 0, "%s special values (bounds %d, n %d): %d wrong", v ? "clamp" : "relu",
                   v, len, bad);
            dfree(&X), dfree(&O);
        }
    }

    /* LINEAR_ACT relu: x [NS,1] x w [1,1] = 1, bias -0.0 (0 + x * 1 + -0: NaN, inf and
     * subnormals pass, -0 becomes +0 through the sum) */
    static const char *modes[] = {NULL, "generic", "tile64", "tile128"};
    for (int mi = 0; mi < 4; mi++) {
        if (modes[mi]) setenv("EMBER_VULKAN_MATMUL", modes[mi], 1);
        else unsetenv("EMBER_VULKAN_MATMUL");
        dbuf X = dalloc(NS, 4), W = dalloc(1, 4), Bi = dalloc(1, 4), O = dalloc(NS, 4);
        for (int i = 0; i < NS; i++) fh(&X)[i] = sv[i];
        fh(&W)[0] = 1.0f;
        fh(&Bi)[0] = -0.0f;
        dup_(&X), dup_(&W), dup_(&Bi);
        int64_t xs[2] = {NS, 1}, xst[2] = {1, 1}, ws[2] = {1, 1}, os[2] = {NS, 1}, bst[2] = {0, 0};
        em_tdesc in3[3] = {desc(&X, EM_F32, 2, xs, xst, 0), desc(&W, EM_F32, 2, ws, xst, 0),
                           desc(&Bi, EM_F32, 2, os, bst, 0)};
        em_tdesc o3 = desc(&O, EM_F32, 2, os, xst, 0);
        em_op_params p3 = {.struct_size = sizeof p3, .flag = 1};
        float got[NS];
        em_status s = run(EM_OP_LINEAR_ACT, EM_F32, in3, 3, &o3, &p3);
        if (!s) s = ddown(&O, got);
        EXPECT(s == EM_OK, "linear_act special (%s): status %d", modes[mi] ? modes[mi] : "auto", s);
        int bad = 0;
        for (int i = 0; i < NS && !s; i++) {
            float want = (0.0f + sv[i] * 1.0f) + -0.0f; /* the sum starts at +0 */
            want = want < 0 ? 0 : want;
            if (!same_f32(got[i], want) && bad++ < 4)
                printf("  linear_act relu %s (%g): got %g want %g\n", modes[mi] ? modes[mi] : "auto",
                       sv[i], got[i], want);
        }
        EXPECT(bad == 0, "linear_act relu special values (%s): %d wrong",
               modes[mi] ? modes[mi] : "auto", bad);
        dfree(&X), dfree(&W), dfree(&Bi), dfree(&O);
    }
    unsetenv("EMBER_VULKAN_MATMUL");
    printf("float controls: %s\n", g_fail ? "FAILED" : "ok");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s /path/to/libember-vulkan.so\n", argv[0]);
        return 2;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        printf("skip: %s\n", dlerror());
        return 77;
    }
    em_plugin_init_fn init = (em_plugin_init_fn)dlsym(so, EM_PLUGIN_ENTRY_NAME);
    if (!init || init(&g_host, &T) != EM_OK || T->device_count() < 1 ||
        T->device_open(0, &g_dev) != EM_OK) {
        printf("skip: no Vulkan device (%s)\n", g_err);
        return 77;
    }
    test_matmul();
    test_elementwise();
    test_float_controls();
    EXPECT(T->synchronize(g_dev) == EM_OK, "synchronize");
    T->device_close(g_dev);
    if (T->shutdown) T->shutdown();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
