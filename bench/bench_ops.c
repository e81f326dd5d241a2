/*
 * bench_ops.c — the op table shared by ember-bench and ember-conformance:
 * for every op of the ABI that the public API exposes, its geometry per
 * size class, the FLOP and byte counts stated per op, the input domain, the
 * float64 reference computed here on the host (never by the library), the
 * tolerance class, and the one call into Ember that runs it.
 *
 * Counting rules (docs/benchmarks.md repeats them):
 *   bytes  = every input read once + the output written once (the minimum
 *            traffic; caches can only make the real figure smaller);
 *   FLOPs  = flops_per x output elements for elementwise ops (a
 *            transcendental function counts as one), x input elements for
 *            reductions, 2*M*N*K (+ M*N for a bias) for matmul/linear/addmm,
 *            0 for pure data movement (reported in GB/s).
 * Not for timing (ember_bench.c) or comparing (bench_stats.c).
 */
#include "bench.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_MAXIMUM, OP_MINIMUM,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_WHERE, OP_CLAMP, OP_MASKED_FILL, OP_AXPY, OP_ADD_SCALAR, OP_MUL_SCALAR,
    OP_NEG, OP_ABS, OP_EXP, OP_LOG, OP_SQRT, OP_RSQRT, OP_SIN, OP_COS, OP_TANH, OP_SIGMOID,
    OP_RELU, OP_GELU, OP_GELU_TANH, OP_SILU, OP_SOFTPLUS, OP_SQUARE, OP_RECIPROCAL, OP_ERF,
    OP_SIGN,
    OP_SUM, OP_MEAN, OP_MAX, OP_MIN, OP_ARGMAX, OP_ARGMIN, OP_VAR, OP_STD, OP_LOGSUMEXP,
    OP_SOFTMAX, OP_LOG_SOFTMAX,
    OP_MATMUL, OP_LINEAR, OP_ADDMM,
    OP_CAST, OP_COPY_T, OP_CAT, OP_INDEX_SELECT, OP_GATHER, OP_SCATTER_ADD, OP_EMBEDDING
};

#define DF ((1u << EM_F32) | (1u << EM_F64) | (1u << EM_F16) | (1u << EM_BF16))
#define DI ((1u << EM_I32) | (1u << EM_I64))
#define DB (1u << EM_BOOL)

/* out_kind */
enum { OUT_SAME = 0, OUT_BOOL = 1, OUT_I64 = 2, OUT_CAST = 3, OUT_SUM = 4 };

/* name, family, geom, n_in, lo, hi, dtypes, tol, metric, flops_per, note,
 * out_kind, scale_abs, differentiable, id */
#define EW2(n, id, lo, hi, dt, tol, fl, diff)                                                  \
    {n, "binary", BG_EW, 2, lo, hi, dt, tol, BENCH_BYTES, fl, "1 per element", OUT_SAME, false, \
     diff, id}
#define CMP(n, id)                                                                            \
    {n, "compare", BG_EW, 2, -2, 2, DF | DI, BT_EXACT, BENCH_BYTES, 1, "1 per element",        \
     OUT_BOOL, false, false, id}
#define UN(n, id, lo, hi, dt, tol, diff)                                                      \
    {n, "unary", BG_EW, 1, lo, hi, dt, tol, BENCH_BYTES, 1,                                   \
     "1 per element (a function call counts as 1)", OUT_SAME, false, diff, id}
#define RED(n, id, dt, tol, fl, note, ok, sc, diff)                                           \
    {n, "reduce", BG_ROW, 1, -2, 2, dt, tol, BENCH_BYTES, fl, note, ok, sc, diff, id}

const bench_op bench_ops[] = {
    EW2("add", OP_ADD, -2, 2, DF | DI, BT_ROUND, 1, true),
    EW2("sub", OP_SUB, -2, 2, DF | DI, BT_ROUND, 1, true),
    EW2("mul", OP_MUL, -2, 2, DF | DI, BT_ROUND, 1, true),
    EW2("div", OP_DIV, -2, 2, DF, BT_ARITH, 1, true),
    EW2("pow", OP_POW, 0.5, 2, DF, BT_TRANS, 1, true),
    EW2("maximum", OP_MAXIMUM, -2, 2, DF | DI, BT_EXACT, 1, true),
    EW2("minimum", OP_MINIMUM, -2, 2, DF | DI, BT_EXACT, 1, true),
    CMP("eq", OP_EQ), CMP("ne", OP_NE), CMP("lt", OP_LT), CMP("le", OP_LE), CMP("gt", OP_GT),
    CMP("ge", OP_GE),
    {"where", "select", BG_WHERE, 3, -2, 2, DF | DI, BT_EXACT, BENCH_BYTES, 0, "0 (selection)",
     OUT_SAME, false, true, OP_WHERE},
    {"clamp", "select", BG_EW, 1, -2, 2, DF | DI, BT_EXACT, BENCH_BYTES, 2, "2 per element",
     OUT_SAME, false, true, OP_CLAMP},
    {"masked_fill", "select", BG_MASKED, 2, -2, 2, DF | DI, BT_EXACT, BENCH_BYTES, 0,
     "0 (selection)", OUT_SAME, false, true, OP_MASKED_FILL},
    {"axpy", "binary", BG_EW, 2, -2, 2, DF, BT_TRANS, BENCH_BYTES, 2,
     "2 per element (em_add_scaled_, in place)", OUT_SAME, false, false, OP_AXPY},
    {"add_scalar", "binary", BG_EW, 1, -2, 2, DF | DI, BT_ROUND, BENCH_BYTES, 1, "1 per element",
     OUT_SAME, false, true, OP_ADD_SCALAR},
    {"mul_scalar", "binary", BG_EW, 1, -2, 2, DF | DI, BT_ROUND, BENCH_BYTES, 1, "1 per element",
     OUT_SAME, false, true, OP_MUL_SCALAR},
    UN("neg", OP_NEG, -2, 2, DF | DI, BT_EXACT, true),
    UN("abs", OP_ABS, -2, 2, DF | DI, BT_EXACT, true),
    UN("exp", OP_EXP, -4, 4, DF, BT_TRANS, true),
    UN("log", OP_LOG, 0.1, 4, DF, BT_TRANS, true),
    UN("sqrt", OP_SQRT, 0.1, 4, DF, BT_ARITH, true),
    UN("rsqrt", OP_RSQRT, 0.1, 4, DF, BT_TRANS, true),
    UN("sin", OP_SIN, -4, 4, DF, BT_TRANS, true),
    UN("cos", OP_COS, -4, 4, DF, BT_TRANS, true),
    UN("tanh", OP_TANH, -4, 4, DF, BT_TRANS, true),
    UN("sigmoid", OP_SIGMOID, -6, 6, DF, BT_TRANS, true),
    UN("relu", OP_RELU, -2, 2, DF | DI, BT_EXACT, true),
    UN("gelu", OP_GELU, -4, 4, DF, BT_TRANS, true),
    UN("gelu_tanh", OP_GELU_TANH, -4, 4, DF, BT_TRANS, true),
    UN("silu", OP_SILU, -6, 6, DF, BT_TRANS, true),
    UN("softplus", OP_SOFTPLUS, -6, 6, DF, BT_TRANS, true),
    UN("square", OP_SQUARE, -2, 2, DF | DI, BT_ROUND, true),
    UN("reciprocal", OP_RECIPROCAL, 0.5, 2, DF, BT_ARITH, true),
    UN("erf", OP_ERF, -3, 3, DF, BT_TRANS, true),
    UN("sign", OP_SIGN, -2, 2, DF | DI, BT_EXACT, false),
    RED("sum", OP_SUM, DF | DI, BT_SUM, 1, "1 per input element", OUT_SUM, true, true),
    RED("mean", OP_MEAN, DF, BT_SUM, 1, "1 per input element", OUT_SAME, true, true),
    RED("max", OP_MAX, DF | DI, BT_EXACT, 1, "1 per input element", OUT_SAME, false, true),
    RED("min", OP_MIN, DF | DI, BT_EXACT, 1, "1 per input element", OUT_SAME, false, true),
    RED("argmax", OP_ARGMAX, DF | DI, BT_EXACT, 1, "1 per input element", OUT_I64, false, false),
    RED("argmin", OP_ARGMIN, DF | DI, BT_EXACT, 1, "1 per input element", OUT_I64, false, false),
    RED("var", OP_VAR, DF, BT_STAT, 3, "3 per input element", OUT_SAME, false, true),
    RED("std", OP_STD, DF, BT_STAT, 3, "3 per input element", OUT_SAME, false, true),
    RED("logsumexp", OP_LOGSUMEXP, DF, BT_STAT, 3, "3 per input element", OUT_SAME, false, true),
    {"softmax", "softmax", BG_EW, 1, -4, 4, DF, BT_STAT, BENCH_BYTES, 5,
     "5 per element (max, subtract, exp, sum, divide)", OUT_SAME, false, true, OP_SOFTMAX},
    {"log_softmax", "softmax", BG_EW, 1, -4, 4, DF, BT_STAT, BENCH_BYTES, 5,
     "5 per element (max, subtract, exp, sum, log)", OUT_SAME, false, true, OP_LOG_SOFTMAX},
    {"matmul", "linalg", BG_MATMUL, 2, -1, 1, DF, BT_MATMUL, BENCH_FLOPS, 2, "2*M*N*K",
     OUT_SAME, true, true, OP_MATMUL},
    {"linear", "linalg", BG_LINEAR, 3, -1, 1, DF, BT_MATMUL, BENCH_FLOPS, 2,
     "2*M*N*K + M*N (bias)", OUT_SAME, true, true, OP_LINEAR},
    {"addmm", "linalg", BG_ADDMM, 3, -1, 1, DF, BT_MATMUL, BENCH_FLOPS, 2, "2*M*N*K + M*N",
     OUT_SAME, true, true, OP_ADDMM},
    {"cast", "memory", BG_EW, 1, -8, 8, DF | DI | DB, BT_EXACT, BENCH_BYTES, 0,
     "0 (f32 -> f16, every other dtype -> f32)", OUT_CAST, false, false, OP_CAST},
    {"copy_t", "memory", BG_TRANSPOSE, 1, -2, 2, DF | DI | DB, BT_EXACT, BENCH_BYTES, 0,
     "0 (em_contiguous of a transposed view)", OUT_SAME, false, true, OP_COPY_T},
    {"cat", "memory", BG_CAT, 2, -2, 2, DF | DI | DB, BT_EXACT, BENCH_BYTES, 0, "0", OUT_SAME,
     false, true, OP_CAT},
    {"index_select", "index", BG_ISEL, 2, -2, 2, DF | DI | DB, BT_EXACT, BENCH_BYTES, 0, "0",
     OUT_SAME, false, true, OP_INDEX_SELECT},
    {"gather", "index", BG_GATHER, 2, -2, 2, DF | DI | DB, BT_EXACT, BENCH_BYTES, 0, "0",
     OUT_SAME, false, true, OP_GATHER},
    {"scatter_add", "index", BG_SCATTER, 3, -2, 2, DF | DI, BT_SUM, BENCH_BYTES, 1,
     "1 per source element", OUT_SAME, true, true, OP_SCATTER_ADD},
    {"embedding", "index", BG_ISEL, 2, -2, 2, DF, BT_EXACT, BENCH_BYTES, 0, "0", OUT_SAME, false,
     true, OP_EMBEDDING},
};
const int bench_op_count = (int)(sizeof bench_ops / sizeof bench_ops[0]);

/* Parameters of the ops that take them. */
#define CLAMP_LO (-0.5)
#define CLAMP_HI 0.5
#define FILL_VALUE 2.0
#define AXPY_ALPHA 0.5
#define SCALAR_ADD 3.0   /* whole numbers keep integer dtypes */
#define SCALAR_MUL 3.0
#define SOFTPLUS_BETA 1.0
#define SOFTPLUS_THRESHOLD 20.0
#define INT_LO (-8)
#define INT_HI 8

const bench_op *bench_op_find(const char *name)
{
    for (int i = 0; i < bench_op_count; i++)
        if (!strcmp(bench_ops[i].name, name)) return &bench_ops[i];
    return NULL;
}

bool bench_op_accepts(const bench_op *op, em_dtype d)
{
    return (int)d >= 0 && d < EM_DTYPE_COUNT && (op->dtypes >> d) & 1u;
}

em_dtype bench_op_out_dtype(const bench_op *op, em_dtype d)
{
    switch (op->out_kind) {
    case OUT_BOOL: return EM_BOOL;
    case OUT_I64: return EM_I64;
    case OUT_CAST: return d == EM_F32 ? EM_F16 : EM_F32;
    case OUT_SUM: return bench_is_float(d) ? d : EM_I64;
    default: return d;
    }
}

static bool is_mm(const bench_op *op)
{
    return op->geom == BG_MATMUL || op->geom == BG_LINEAR || op->geom == BG_ADDMM;
}

bool bench_size_params(const bench_op *op, const char *size, int64_t p[3])
{
    static const char *const names[] = {"S", "M", "L", "XL"};
    static const int64_t ew[] = {64, 512, 2048, 4096}, mm[] = {64, 256, 1024, 2048};
    for (int i = 0; i < 4; i++)
        if (!strcmp(size, names[i])) {
            int64_t n = is_mm(op) ? mm[i] : ew[i];
            p[0] = p[1] = p[2] = n;
            return true;
        }
    /* "RxC" or "MxKxN" */
    long long a = 0, b = 0, c = 0;
    char tail;
    int k = sscanf(size, "%lldx%lldx%lld%c", &a, &b, &c, &tail);
    if (k == 3 && a > 0 && b > 0 && c > 0) {
        p[0] = a; p[1] = b; p[2] = c;
        return true;
    }
    k = sscanf(size, "%lldx%lld%c", &a, &b, &tail);
    if (k == 2 && a > 0 && b > 0) {
        p[0] = a; p[1] = b; p[2] = b;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Tolerances                                                                */
/* ------------------------------------------------------------------------ */

bench_tol bench_tolerance(bench_tolclass cls, em_dtype d)
{
    /* The numbers of the op test suites (tests/test_elementwise.c, test_reduce.c,
     * test_linalg.c), so a conformance pass means what a test pass means. */
    bench_tol t = {0, 0, 0};
    if (!bench_is_float(d) || cls == BT_EXACT) return t;
    int k = d == EM_F64 ? 0 : d == EM_F32 ? 1 : d == EM_F16 ? 2 : 3; /* f64 f32 f16 bf16 */
    static const bench_tol round_[4] = {{0, 0, 1}, {0, 0, 1}, {0, 0, 1}, {0, 0, 1}};
    static const bench_tol arith[4] = {{0, 0, 2}, {0, 0, 2}, {0, 0, 1}, {0, 0, 1}};
    static const bench_tol trans[4] = {{1e-14, 1e-12, 2}, {1e-6, 2e-6, 2}, {1e-5, 0, 2}, {1e-5, 0, 2}};
    static const bench_tol sum[4] = {{1e-13, 1e-12, 0}, {1e-6, 1e-5, 0}, {1e-4, 1e-3, 2}, {1e-3, 8e-3, 2}};
    static const bench_tol stat[4] = {{1e-13, 1e-12, 2}, {1e-6, 1e-5, 2}, {1e-4, 1e-3, 2}, {1e-3, 8e-3, 2}};
    static const bench_tol mm[4] = {{0, 1e-13, 0}, {0, 1e-5, 0}, {0, 2e-4, 2}, {0, 1e-3, 2}};
    switch (cls) {
    case BT_ROUND: return round_[k];
    case BT_ARITH: return arith[k];
    case BT_TRANS: return trans[k];
    case BT_SUM: return sum[k];
    case BT_STAT: return stat[k];
    case BT_MATMUL: return mm[k];
    default: return t;
    }
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                     */
/* ------------------------------------------------------------------------ */

static bool arg_init(bench_arg *a, em_dtype d, int ndim, int64_t s0, int64_t s1)
{
    a->dtype = d;
    a->ndim = ndim;
    a->shape[0] = s0;
    a->shape[1] = s1;
    a->numel = ndim == 1 ? s0 : s0 * s1;
    a->v = calloc((size_t)(a->numel > 0 ? a->numel : 1), sizeof(double));
    return a->v != NULL;
}

static void fill_values(bench_arg *a, bench_rng *rng, double lo, double hi)
{
    for (int64_t i = 0; i < a->numel; i++) {
        double x;
        if (a->dtype == EM_BOOL) x = (double)(bench_rng_u64(rng) & 1);
        else if (!bench_is_float(a->dtype)) x = (double)bench_rng_int(rng, INT_LO, INT_HI);
        else x = bench_rng_uniform(rng, lo, hi);
        a->v[i] = bench_round(x, a->dtype);
    }
}

static void fill_index(bench_arg *a, bench_rng *rng, int64_t n)
{
    for (int64_t i = 0; i < a->numel; i++) a->v[i] = (double)bench_rng_int(rng, 0, n - 1);
}

double bench_case_flops(const bench_case *c)
{
    const bench_op *op = c->op;
    double M = (double)c->p[0], K = (double)c->p[1], N = (double)c->p[2];
    switch (op->geom) {
    case BG_MATMUL: return 2 * M * N * K;
    case BG_LINEAR:
    case BG_ADDMM: return 2 * M * N * K + M * N;
    case BG_ROW: return op->flops_per * (double)c->in[0].numel;
    case BG_SCATTER: return op->flops_per * (double)c->in[2].numel;
    default: return op->flops_per * (double)c->out.numel;
    }
}

double bench_case_bytes(const bench_case *c)
{
    double b = 0;
    for (int i = 0; i < c->n_in; i++) b += (double)c->in[i].numel * (double)em_dtype_size(c->in[i].dtype);
    return b + (double)c->out.numel * (double)em_dtype_size(c->out.dtype);
}

void bench_case_free(bench_case *c)
{
    for (int i = 0; i < BENCH_MAX_IN; i++) {
        free(c->in[i].v);
        c->in[i].v = NULL;
    }
    free(c->out.v);
    free(c->scale);
    c->out.v = NULL;
    c->scale = NULL;
}

bool bench_case_init(bench_case *c, const bench_op *op, em_dtype d, const int64_t p[3],
                     const char *size, bench_rng *rng, bool with_ref, char *why, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->op = op;
    c->dtype = d;
    memcpy(c->p, p, sizeof c->p);
    snprintf(c->size, sizeof c->size, "%s", size ? size : "");
    c->n_in = op->n_in;
    int64_t R = p[0], C = p[1], M = p[0], K = p[1], N = p[2];
    em_dtype od = bench_op_out_dtype(op, d);
    bool ok = true;
    switch (op->geom) {
    case BG_EW:
        for (int i = 0; i < op->n_in; i++) ok = ok && arg_init(&c->in[i], d, 2, R, C);
        ok = ok && arg_init(&c->out, od, 2, R, C);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_ROW:
        ok = arg_init(&c->in[0], d, 2, R, C) && arg_init(&c->out, od, 1, R, 0);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_MATMUL:
        ok = arg_init(&c->in[0], d, 2, M, K) && arg_init(&c->in[1], d, 2, K, N) &&
             arg_init(&c->out, od, 2, M, N);
        break;
    case BG_LINEAR:
        ok = arg_init(&c->in[0], d, 2, M, K) && arg_init(&c->in[1], d, 2, N, K) &&
             arg_init(&c->in[2], d, 1, N, 0) && arg_init(&c->out, od, 2, M, N);
        break;
    case BG_ADDMM:
        ok = arg_init(&c->in[0], d, 1, N, 0) && arg_init(&c->in[1], d, 2, M, K) &&
             arg_init(&c->in[2], d, 2, K, N) && arg_init(&c->out, od, 2, M, N);
        break;
    case BG_ISEL:
        ok = arg_init(&c->in[0], d, 2, R, C) && arg_init(&c->in[1], EM_I64, 1, R, 0) &&
             arg_init(&c->out, od, 2, R, C);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_GATHER:
        ok = arg_init(&c->in[0], d, 2, R, C) && arg_init(&c->in[1], EM_I64, 2, R, C) &&
             arg_init(&c->out, od, 2, R, C);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_SCATTER:
        ok = arg_init(&c->in[0], d, 2, R, C) && arg_init(&c->in[1], EM_I64, 2, R, C) &&
             arg_init(&c->in[2], d, 2, R, C) && arg_init(&c->out, od, 2, R, C);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_WHERE:
        ok = arg_init(&c->in[0], EM_BOOL, 2, R, C) && arg_init(&c->in[1], d, 2, R, C) &&
             arg_init(&c->in[2], d, 2, R, C) && arg_init(&c->out, od, 2, R, C);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_MASKED:
        ok = arg_init(&c->in[0], d, 2, R, C) && arg_init(&c->in[1], EM_BOOL, 2, R, C) &&
             arg_init(&c->out, od, 2, R, C);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_CAT:
        ok = arg_init(&c->in[0], d, 2, R, C) && arg_init(&c->in[1], d, 2, R, C) &&
             arg_init(&c->out, od, 2, 2 * R, C);
        snprintf(c->shape, sizeof c->shape, "2x[%" PRId64 ",%" PRId64 "]", R, C);
        break;
    case BG_TRANSPOSE:
        ok = arg_init(&c->in[0], d, 2, R, C) && arg_init(&c->out, od, 2, C, R);
        snprintf(c->shape, sizeof c->shape, "[%" PRId64 ",%" PRId64 "]^T", R, C);
        break;
    }
    if (is_mm(op))
        snprintf(c->shape, sizeof c->shape, "%" PRId64 "x%" PRId64 "x%" PRId64, M, K, N);
    if (ok && op->scale_abs) {
        c->scale = malloc(sizeof(double) * (size_t)(c->out.numel > 0 ? c->out.numel : 1));
        ok = c->scale != NULL;
    }
    if (!ok) {
        snprintf(why, cap, "out of host memory building %s %s %s", op->name, bench_dtype_name(d),
                 c->shape);
        bench_case_free(c);
        return false;
    }
    /* inputs */
    for (int i = 0; i < c->n_in; i++) {
        bench_arg *a = &c->in[i];
        bool index = i == 1 && (op->geom == BG_ISEL || op->geom == BG_GATHER ||
                                op->geom == BG_SCATTER);
        if (index) fill_index(a, rng, R);
        else fill_values(a, rng, op->lo, op->hi);
    }
    if (bench_is_float(d)) {
        if (op->id == OP_DIV || op->id == OP_RECIPROCAL) {
            /* divisors: |x| in [0.5, 2] with either sign */
            bench_arg *a = &c->in[op->id == OP_DIV ? 1 : 0];
            for (int64_t i = 0; i < a->numel; i++) {
                double m = bench_rng_uniform(rng, 0.5, 2.0);
                a->v[i] = bench_round(bench_rng_u64(rng) & 1 ? -m : m, d);
            }
        } else if (op->id == OP_POW) {
            for (int64_t i = 0; i < c->in[1].numel; i++)
                c->in[1].v[i] = bench_round(bench_rng_uniform(rng, -2.0, 2.0), d);
        }
    }
    if (op->family && !strcmp(op->family, "compare")) /* make equality happen */
        for (int64_t i = 0; i < c->in[0].numel; i += 4) c->in[1].v[i] = c->in[0].v[i];
    c->flops = bench_case_flops(c);
    c->bytes = bench_case_bytes(c);
    /* a float64 reference of a big matmul costs seconds: check every k-th row */
    c->row_stride = 1;
    if (is_mm(op) && (double)M * (double)N * (double)K > 0x1p27) {
        c->row_stride = (int64_t)ceil((double)M * (double)N * (double)K / 0x1p27);
        if (c->row_stride > M) c->row_stride = M;
    }
    c->tol = bench_tolerance(op->tol, od);
    if (with_ref) bench_case_reference(c, true);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Float64 references                                                        */
/* ------------------------------------------------------------------------ */

static double r_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }
static double r_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a < b ? a : b); }

static double unary_ref(int id, double x, bool is_int)
{
    switch (id) {
    case OP_NEG: return -x;
    case OP_ABS: return fabs(x);
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1.0 / sqrt(x);
    case OP_SIN: return sin(x);
    case OP_COS: return cos(x);
    case OP_TANH: return tanh(x);
    case OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case OP_RELU: return isnan(x) ? x : (x < 0 ? 0.0 : x);
    case OP_GELU: return x * 0.5 * erfc(-x / sqrt(2.0));
    case OP_GELU_TANH: {
        double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
        return 0.5 * x * (1.0 + tanh(u));
    }
    case OP_SILU: return x / (1.0 + exp(-x));
    case OP_SOFTPLUS:
        return x * SOFTPLUS_BETA > SOFTPLUS_THRESHOLD ? x : log1p(exp(SOFTPLUS_BETA * x)) / SOFTPLUS_BETA;
    case OP_SQUARE: return x * x;
    case OP_RECIPROCAL: return 1.0 / x;
    case OP_ERF: return erf(x);
    case OP_SIGN: return isnan(x) ? x : (double)((x > 0) - (x < 0));
    case OP_CLAMP:
        if (isnan(x)) return x;
        return is_int ? fmin(fmax(x, -3.0), 3.0) : fmin(fmax(x, CLAMP_LO), CLAMP_HI);
    case OP_ADD_SCALAR: return x + SCALAR_ADD;
    case OP_MUL_SCALAR: return x * SCALAR_MUL;
    case OP_CAST: return x;
    default: return NAN;
    }
}

static double binary_ref(int id, double a, double b)
{
    switch (id) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_POW: return pow(a, b);
    case OP_MAXIMUM: return r_max(a, b);
    case OP_MINIMUM: return r_min(a, b);
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    case OP_AXPY: return a + AXPY_ALPHA * b;
    default: return NAN;
    }
}

/* Reference of one row reduction over x[0..C). */
static double row_ref(int id, const double *x, int64_t C, bool is_int)
{
    double s = 0, m = x[0];
    int64_t arg = 0;
    switch (id) {
    case OP_SUM:
    case OP_MEAN:
        for (int64_t j = 0; j < C; j++) s += x[j];
        return id == OP_MEAN ? s / (double)C : s;
    case OP_MAX:
    case OP_MIN:
        for (int64_t j = 1; j < C; j++) m = id == OP_MAX ? r_max(m, x[j]) : r_min(m, x[j]);
        return m;
    case OP_ARGMAX:
    case OP_ARGMIN:
        for (int64_t j = 1; j < C; j++) {
            if (isnan(m)) break;
            if (isnan(x[j]) || (id == OP_ARGMAX ? x[j] > m : x[j] < m)) {
                m = x[j];
                arg = j;
            }
        }
        return (double)arg;
    case OP_VAR:
    case OP_STD: {
        double mean = 0, ss = 0;
        for (int64_t j = 0; j < C; j++) mean += x[j];
        mean /= (double)C;
        for (int64_t j = 0; j < C; j++) ss += (x[j] - mean) * (x[j] - mean);
        double v = C > 1 ? ss / (double)(C - 1) : NAN;
        return id == OP_STD ? sqrt(v) : v;
    }
    case OP_LOGSUMEXP:
        for (int64_t j = 1; j < C; j++) m = r_max(m, x[j]);
        if (isinf(m)) return m; /* all -inf (or a +inf) */
        for (int64_t j = 0; j < C; j++) s += exp(x[j] - m);
        return m + log(s);
    default: (void)is_int; return NAN;
    }
}

static void softmax_row(int id, const double *x, double *y, int64_t C)
{
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < C; j++) m = r_max(m, x[j]);
    for (int64_t j = 0; j < C; j++) s += exp(x[j] - m);
    for (int64_t j = 0; j < C; j++)
        y[j] = id == OP_SOFTMAX ? exp(x[j] - m) / s : x[j] - m - log(s);
}

/* Computes out[] from inputs in[] (exact doubles). */
static void compute(const bench_case *c, double *const *in, double *out)
{
    const bench_op *op = c->op;
    int64_t R = c->p[0], C = c->p[1], M = c->p[0], K = c->p[1], N = c->p[2];
    bool is_int = !bench_is_float(c->dtype);
    switch (op->geom) {
    case BG_EW:
        if (op->id == OP_SOFTMAX || op->id == OP_LOG_SOFTMAX) {
            for (int64_t r = 0; r < R; r++) softmax_row(op->id, in[0] + r * C, out + r * C, C);
        } else if (op->n_in == 2) {
            for (int64_t i = 0; i < c->out.numel; i++) out[i] = binary_ref(op->id, in[0][i], in[1][i]);
        } else {
            for (int64_t i = 0; i < c->out.numel; i++) out[i] = unary_ref(op->id, in[0][i], is_int);
        }
        break;
    case BG_ROW:
        for (int64_t r = 0; r < R; r++) out[r] = row_ref(op->id, in[0] + r * C, C, is_int);
        break;
    case BG_MATMUL:
    case BG_LINEAR:
    case BG_ADDMM: {
        const double *a = op->geom == BG_ADDMM ? in[1] : in[0];
        const double *b = op->geom == BG_ADDMM ? in[2] : in[1];
        const double *bias = op->geom == BG_MATMUL ? NULL : op->geom == BG_LINEAR ? in[2] : in[0];
        bool bt = op->geom == BG_LINEAR; /* w is [N,K] */
        int64_t stride = c->row_stride > 1 ? c->row_stride : 1;
        for (int64_t i = 0; i < M; i += stride) {
            double *o = out + i * N;
            for (int64_t j = 0; j < N; j++) o[j] = bias ? bias[j] : 0.0;
            for (int64_t kk = 0; kk < K; kk++) {
                double av = a[i * K + kk];
                if (bt)
                    for (int64_t j = 0; j < N; j++) o[j] += av * b[j * K + kk];
                else
                    for (int64_t j = 0; j < N; j++) o[j] += av * b[kk * N + j];
            }
        }
        break;
    }
    case BG_ISEL:
        for (int64_t r = 0; r < R; r++) {
            int64_t src = (int64_t)in[1][r];
            memcpy(out + r * C, in[0] + src * C, sizeof(double) * (size_t)C);
        }
        break;
    case BG_GATHER:
        for (int64_t i = 0; i < R * C; i++) out[i] = in[0][(int64_t)in[1][i] * C + i % C];
        break;
    case BG_SCATTER:
        memcpy(out, in[0], sizeof(double) * (size_t)(R * C));
        for (int64_t i = 0; i < R * C; i++) out[(int64_t)in[1][i] * C + i % C] += in[2][i];
        break;
    case BG_WHERE:
        for (int64_t i = 0; i < R * C; i++) out[i] = in[0][i] != 0 ? in[1][i] : in[2][i];
        break;
    case BG_MASKED:
        for (int64_t i = 0; i < R * C; i++) out[i] = in[1][i] != 0 ? FILL_VALUE : in[0][i];
        break;
    case BG_CAT:
        memcpy(out, in[0], sizeof(double) * (size_t)(R * C));
        memcpy(out + R * C, in[1], sizeof(double) * (size_t)(R * C));
        break;
    case BG_TRANSPOSE:
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < C; j++) out[j * R + r] = in[0][r * C + j];
        break;
    }
}

bool bench_case_is_index(const bench_case *c, int i)
{
    bench_geom g = c->op->geom;
    if (i == 1 && (g == BG_ISEL || g == BG_GATHER || g == BG_SCATTER || g == BG_MASKED)) return true;
    return i == 0 && g == BG_WHERE;
}

void bench_case_reference(bench_case *c, bool round)
{
    double *in[BENCH_MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++) in[i] = c->in[i].v;
    compute(c, in, c->out.v);
    if (c->scale) {
        /* the op on |inputs|: sum |x|, sum_k |a_ik b_kj|, ... */
        double *abs_in[BENCH_MAX_IN] = {0};
        for (int i = 0; i < c->n_in; i++) {
            if (bench_case_is_index(c, i)) {
                abs_in[i] = c->in[i].v;
                continue;
            }
            abs_in[i] = malloc(sizeof(double) * (size_t)(c->in[i].numel > 0 ? c->in[i].numel : 1));
            if (!abs_in[i]) continue;
            for (int64_t j = 0; j < c->in[i].numel; j++) abs_in[i][j] = fabs(c->in[i].v[j]);
        }
        bool ok = true;
        for (int i = 0; i < c->n_in; i++) ok = ok && abs_in[i];
        if (ok) compute(c, abs_in, c->scale);
        else memset(c->scale, 0, sizeof(double) * (size_t)c->out.numel);
        for (int i = 0; i < c->n_in; i++)
            if (!bench_case_is_index(c, i)) free(abs_in[i]);
    }
    if (round)
        for (int64_t i = 0; i < c->out.numel; i++) c->out.v[i] = bench_round(c->out.v[i], c->out.dtype);
}

/* ------------------------------------------------------------------------ */
/* Running the op in Ember                                                   */
/* ------------------------------------------------------------------------ */

em_tensor *bench_case_upload(const bench_case *c, int i, em_device *dev, em_dtype d)
{
    const bench_arg *a = &c->in[i];
    void *buf = bench_pack(a->v, a->numel, d);
    if (!buf) return NULL;
    em_tensor *t = em_tensor_from_data(buf, d, a->ndim, a->shape, dev);
    free(buf);
    return t;
}

em_status bench_read_result(const em_tensor *t, double *out, int64_t n)
{
    em_dtype d = em_tensor_dtype(t);
    size_t sz = em_dtype_size(d);
    void *buf = malloc((size_t)(n > 0 ? n : 1) * (sz ? sz : 1));
    if (!buf) return EM_ERR_OUT_OF_MEMORY;
    em_status st = em_tensor_read(t, buf, (size_t)n * sz);
    if (st == EM_OK)
        for (int64_t i = 0; i < n; i++) out[i] = bench_unpack(buf, i, d);
    free(buf);
    return st;
}

bench_err bench_case_compare(const bench_case *c, const double *got)
{
    if (c->row_stride <= 1)
        return bench_compare_values(got, c->out.v, c->scale, c->out.numel, c->out.dtype, c->tol);
    /* the rows with a reference, gathered */
    int64_t N = c->p[2], M = c->p[0], rows = (M + c->row_stride - 1) / c->row_stride;
    double *g = malloc(sizeof(double) * (size_t)(rows * N)), *r = malloc(sizeof(double) * (size_t)(rows * N));
    double *s = c->scale ? malloc(sizeof(double) * (size_t)(rows * N)) : NULL;
    bench_err e = {INFINITY, INFINITY, INFINITY, 0, 1, 0, false};
    if (g && r && (s || !c->scale)) {
        for (int64_t k = 0; k < rows; k++) {
            int64_t i = k * c->row_stride;
            memcpy(g + k * N, got + i * N, sizeof(double) * (size_t)N);
            memcpy(r + k * N, c->out.v + i * N, sizeof(double) * (size_t)N);
            if (s) memcpy(s + k * N, c->scale + i * N, sizeof(double) * (size_t)N);
        }
        e = bench_compare_values(g, r, s, rows * N, c->out.dtype, c->tol);
        if (e.bad >= 0) e.bad = (e.bad / N) * c->row_stride * N + e.bad % N;
    }
    free(g);
    free(r);
    free(s);
    return e;
}

em_tensor *bench_case_run(const bench_case *c, em_tensor *const *in)
{
    const int dim1[1] = {1};
    bool is_int = !bench_is_float(c->dtype);
    switch (c->op->id) {
    case OP_ADD: return em_add(in[0], in[1]);
    case OP_SUB: return em_sub(in[0], in[1]);
    case OP_MUL: return em_mul(in[0], in[1]);
    case OP_DIV: return em_div(in[0], in[1]);
    case OP_POW: return em_pow(in[0], in[1]);
    case OP_MAXIMUM: return em_maximum(in[0], in[1]);
    case OP_MINIMUM: return em_minimum(in[0], in[1]);
    case OP_EQ: return em_eq(in[0], in[1]);
    case OP_NE: return em_ne(in[0], in[1]);
    case OP_LT: return em_lt(in[0], in[1]);
    case OP_LE: return em_le(in[0], in[1]);
    case OP_GT: return em_gt(in[0], in[1]);
    case OP_GE: return em_ge(in[0], in[1]);
    case OP_WHERE: return em_where(in[0], in[1], in[2]);
    case OP_CLAMP: return is_int ? em_clamp(in[0], -3, 3) : em_clamp(in[0], CLAMP_LO, CLAMP_HI);
    case OP_MASKED_FILL: return em_masked_fill(in[0], in[1], FILL_VALUE);
    case OP_AXPY:
        /* in place on in[0]: the caller's first call is the checked one */
        if (em_add_scaled_(in[0], in[1], AXPY_ALPHA) != EM_OK) return NULL;
        return em_tensor_retain(in[0]);
    case OP_ADD_SCALAR: return em_add_scalar(in[0], SCALAR_ADD);
    case OP_MUL_SCALAR: return em_mul_scalar(in[0], SCALAR_MUL);
    case OP_NEG: return em_neg(in[0]);
    case OP_ABS: return em_abs(in[0]);
    case OP_EXP: return em_exp(in[0]);
    case OP_LOG: return em_log(in[0]);
    case OP_SQRT: return em_sqrt(in[0]);
    case OP_RSQRT: return em_rsqrt(in[0]);
    case OP_SIN: return em_sin(in[0]);
    case OP_COS: return em_cos(in[0]);
    case OP_TANH: return em_tanh(in[0]);
    case OP_SIGMOID: return em_sigmoid(in[0]);
    case OP_RELU: return em_relu(in[0]);
    case OP_GELU: return em_gelu(in[0], false);
    case OP_GELU_TANH: return em_gelu(in[0], true);
    case OP_SILU: return em_silu(in[0]);
    case OP_SOFTPLUS: return em_softplus(in[0], SOFTPLUS_BETA, SOFTPLUS_THRESHOLD);
    case OP_SQUARE: return em_square(in[0]);
    case OP_RECIPROCAL: return em_reciprocal(in[0]);
    case OP_ERF: return em_erf(in[0]);
    case OP_SIGN: return em_sign(in[0]);
    case OP_SUM: return em_sum(in[0], dim1, 1, false);
    case OP_MEAN: return em_mean(in[0], dim1, 1, false);
    case OP_MAX: return em_max(in[0], dim1, 1, false);
    case OP_MIN: return em_min(in[0], dim1, 1, false);
    case OP_ARGMAX: return em_argmax(in[0], 1, false);
    case OP_ARGMIN: return em_argmin(in[0], 1, false);
    case OP_VAR: return em_var(in[0], dim1, 1, true, false);
    case OP_STD: return em_std(in[0], dim1, 1, true, false);
    case OP_LOGSUMEXP: return em_logsumexp(in[0], dim1, 1, false);
    case OP_SOFTMAX: return em_softmax(in[0], 1);
    case OP_LOG_SOFTMAX: return em_log_softmax(in[0], 1);
    case OP_MATMUL: return em_matmul(in[0], in[1]);
    case OP_LINEAR: return em_linear(in[0], in[1], in[2]);
    case OP_ADDMM: return em_addmm(in[0], in[1], in[2]);
    case OP_CAST: return em_cast(in[0], c->out.dtype);
    case OP_COPY_T: {
        em_tensor *t = em_transpose(in[0], 0, 1);
        em_tensor *r = t ? em_contiguous(t) : NULL;
        em_tensor_release(t);
        return r;
    }
    case OP_CAT: {
        const em_tensor *parts[2] = {in[0], in[1]};
        return em_cat(parts, 2, 0);
    }
    case OP_INDEX_SELECT: return em_index_select(in[0], 0, in[1]);
    case OP_GATHER: return em_gather(in[0], 0, in[1]);
    case OP_SCATTER_ADD: return em_scatter_add(in[0], 0, in[1], in[2]);
    case OP_EMBEDDING: return em_embedding(in[0], in[1]);
    }
    return NULL;
}
