/*
 * conformance.c — ember-conformance: runs the op table (bench_ops.c) and the
 * gradient table (conformance_grad.c) against one plugin, ours or a third
 * party's, named as EMBER_BACKEND names it (cpu, vulkan:0, /path/libember-x.so).
 *
 *   ember-conformance [--backend SPEC] [--ops LIST] [--dtypes LIST] [--no-grad]
 *                     [--require-full] [--allow-fallback] [--seed N] [-v]
 *
 * Dispatch is strict (EMBER_STRICT=1 is set before em_init): an op the
 * plugin has no kernel for fails with EM_ERR_UNSUPPORTED instead of running
 * on the CPU backend, and is reported "not supported" — a coverage gap,
 * counted, never a pass. Per op and dtype it prints pass, FAIL (with the
 * error measured, the element and the tolerance) or unsupported.
 *
 * Checks per (op, dtype):
 *   - shapes from 1x1 to above the CPU backend's parallel grain (33800
 *     elements), odd sizes; inputs contiguous, transposed and strided;
 *   - special values (NaN, +-inf, +-0, large, tiny) in float inputs of
 *     elementwise ops, reductions and softmax: NaN and inf must match the
 *     float64 reference exactly;
 *   - outputs the caller can place (the in-place forms add_, sub_, mul_,
 *     div_, add_scalar_, mul_scalar_, clamp_, relu_, masked_fill_,
 *     add_scaled_, scatter_add_, fill_, copy_ and casting copy_) are views
 *     into a larger buffer whose guard regions (before, after, and between
 *     strided elements) hold a pattern that must survive: a kernel that
 *     writes out of bounds fails. Outputs of out-of-place ops are checked by
 *     the core itself: EMBER_GUARD=1 is set before em_init, so every
 *     allocation sits between two guard regions that the dispatcher checks
 *     after each kernel (core/guard.c); a kernel writing past its output
 *     fails the op with "EMBER_GUARD: ... wrote outside its output".
 *   - full (FILL into fresh allocations) and matmul with a batch dim, plain
 *     and with the second operand broadcast over the batch (stride 0);
 *   - gradients by finite differences (conformance_grad.c);
 *   - linear_relu (EM_OP_LINEAR_ACT) and relu's backward (EM_OP_RELU_BACKWARD),
 *     which the core uses on its own where a plugin registers them: values
 *     and gradients exact (conformance_grad.c), named fused or composed.
 * Exit status: 0 when nothing failed (gaps allowed unless --require-full),
 * 1 on any failure, 2 on bad usage, 77 when the device is not available
 * (CTest's skip).
 */
#include "conformance.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const conf_layout_names[CL_COUNT] = {"contiguous", "transposed", "strided"};

#define SENTINEL (-77.5) /* representable in every float dtype */
#define GUARD 64         /* guard elements before and after a flat view */

/* ------------------------------------------------------------------------ */
/* Tallies                                                                   */
/* ------------------------------------------------------------------------ */

void conf_record(conf_tally *t, const conf_ctx *ctx, const char *label, const bench_err *e,
                 const bench_case *c, const double *got)
{
    t->checks++;
    if (isfinite(e->max_abs) && e->max_abs > t->max_abs) t->max_abs = e->max_abs;
    if (isfinite(e->max_rel) && e->max_rel > t->max_rel) t->max_rel = e->max_rel;
    if (e->pass) {
        t->passed++;
        if (ctx->verbose)
            printf("    ok    %s: max_abs %.3g max_rel %.3g\n", label, e->max_abs, e->max_rel);
        return;
    }
    t->failed++;
    char where[200] = "";
    if (c && got && e->bad >= 0) {
        int64_t n = c->out.ndim == 2 ? c->out.shape[1] : 0;
        if (n > 0)
            snprintf(where, sizeof where, " first at [%" PRId64 ",%" PRId64 "]: got %.9g want %.9g;",
                     e->bad / n, e->bad % n, got[e->bad], c->out.v[e->bad]);
        else
            snprintf(where, sizeof where, " first at [%" PRId64 "]: got %.9g want %.9g;", e->bad,
                     got[e->bad], c->out.v[e->bad]);
    }
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %" PRId64 " element(s) out of tolerance (%" PRId64
             " NaN/inf mismatches);%s max_abs %.3g max_rel %.3g; tol %g+%g*max(|ref|,scale)+%gulp",
             label, e->n_bad, e->nonfinite_mismatch, where, e->max_abs, e->max_rel, t->tol.atol,
             t->tol.rtol, t->tol.ulps);
    if (!t->first_fail[0]) snprintf(t->first_fail, sizeof t->first_fail, "%s", msg);
    if (ctx->verbose) printf("    FAIL  %s\n", msg);
}

void conf_record_fail(conf_tally *t, const conf_ctx *ctx, const char *label, const char *msg)
{
    t->checks++;
    t->failed++;
    if (!t->first_fail[0]) snprintf(t->first_fail, sizeof t->first_fail, "%.150s: %.240s", label, msg);
    if (ctx->verbose) printf("    FAIL  %s: %s\n", label, msg);
}

void conf_record_call_error(conf_tally *t, const conf_ctx *ctx, const char *label)
{
    em_status st = em_last_status();
    if (st == EM_ERR_UNSUPPORTED) {
        t->checks++;
        t->unsupported++;
        if (!t->unsupported_why[0])
            snprintf(t->unsupported_why, sizeof t->unsupported_why, "%s", em_last_error());
        if (ctx->verbose) printf("    unsup %s: %s\n", label, em_last_error());
    } else {
        char m[400];
        snprintf(m, sizeof m, "the op failed with %s: %s", em_status_str(st), em_last_error());
        conf_record_fail(t, ctx, label, m);
    }
    em_clear_error();
}

/* ------------------------------------------------------------------------ */
/* Layouts                                                                   */
/* ------------------------------------------------------------------------ */

static em_tensor *upload(const conf_ctx *ctx, const double *v, em_dtype d, int ndim,
                         const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    void *buf = bench_pack(v, n, d);
    if (!buf) return NULL;
    em_tensor *t = em_tensor_from_data(buf, d, ndim, shape, ctx->dev);
    free(buf);
    return t;
}

em_tensor *conf_make(const conf_ctx *ctx, const bench_arg *a, em_dtype d, int layout)
{
    int nd = a->ndim;
    int64_t n = a->numel;
    if (layout == CL_TRANSPOSED && nd == 2) {
        int64_t R = a->shape[0], C = a->shape[1];
        double *tmp = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
        if (!tmp) return NULL;
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++) tmp[c * R + r] = a->v[r * C + c];
        int64_t ts[2] = {C, R};
        em_tensor *base = upload(ctx, tmp, d, 2, ts);
        free(tmp);
        em_tensor *t = base ? em_transpose(base, 0, 1) : NULL;
        em_tensor_release(base);
        return t;
    }
    if (layout == CL_STRIDED && nd >= 1) {
        /* every dim of size 2s (+1 on dim 0), sliced with step 2 from offset 1 on dim 0 */
        int64_t bs[2], bn = 1;
        for (int i = 0; i < nd; i++) {
            bs[i] = 2 * a->shape[i] + (i == 0);
            bn *= bs[i];
        }
        double *tmp = malloc(sizeof(double) * (size_t)bn);
        if (!tmp) return NULL;
        double sentinel = bench_round(SENTINEL, d);
        for (int64_t i = 0; i < bn; i++) tmp[i] = sentinel;
        for (int64_t f = 0; f < n; f++) {
            if (nd == 1) tmp[2 * f + 1] = a->v[f];
            else {
                int64_t r = f / a->shape[1], c = f % a->shape[1];
                tmp[(2 * r + 1) * bs[1] + 2 * c] = a->v[f];
            }
        }
        em_tensor *cur = upload(ctx, tmp, d, nd, bs);
        free(tmp);
        for (int i = 0; i < nd && cur; i++) {
            em_tensor *nx = em_slice(cur, i, i == 0 ? 1 : 0, INT64_MAX, 2);
            em_tensor_release(cur);
            cur = nx;
        }
        return cur;
    }
    return upload(ctx, a->v, d, nd, a->shape);
}

/* ------------------------------------------------------------------------ */
/* Forward checks                                                            */
/* ------------------------------------------------------------------------ */

static const int64_t k_ew_geoms[][3] = {{1, 1, 1}, {3, 5, 5}, {7, 33, 33}, {130, 260, 260}};
static const int64_t k_mm_geoms[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 65, 66}};
#define N_GEOMS 4

static bool is_mm(const bench_op *op)
{
    return op->geom == BG_MATMUL || op->geom == BG_LINEAR || op->geom == BG_ADDMM;
}

static bool takes_specials(const bench_op *op)
{
    static const char *const fam[] = {"binary", "compare", "select", "unary", "reduce", "softmax"};
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++)
        if (!strcmp(op->family, fam[i])) return true;
    return false;
}

/* Replaces about one float input element in 6 by a special value. */
static void inject_specials(bench_case *c, bench_rng *rng)
{
    static const double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e4, 1e-30, -3e3};
    int ns = (int)(sizeof specials / sizeof specials[0]);
    for (int i = 0; i < c->n_in; i++) {
        bench_arg *a = &c->in[i];
        if (!bench_is_float(a->dtype) || bench_case_is_index(c, i)) continue;
        for (int64_t j = 0; j < a->numel; j++)
            if (bench_rng_u64(rng) % 6 == 0)
                a->v[j] = bench_round(specials[bench_rng_u64(rng) % (uint64_t)ns], a->dtype);
    }
}

/* Runs one case with the given input layout; records the outcome. */
static void run_case(conf_ctx *ctx, bench_case *c, int layout, const char *tag, conf_tally *t)
{
    char label[160];
    snprintf(label, sizeof label, "%s %s %s%s%s", c->op->name, c->shape, conf_layout_names[layout],
             tag[0] ? " " : "", tag);
    em_tensor *in[BENCH_MAX_IN] = {0};
    bool ok = true;
    for (int i = 0; i < c->n_in && ok; i++) {
        em_dtype d = c->in[i].dtype;
        if (d == EM_I64 && bench_case_is_index(c, i) && !((ctx->dtype_mask >> EM_I64) & 1u)) d = EM_I32;
        in[i] = conf_make(ctx, &c->in[i], d, bench_case_is_index(c, i) ? CL_CONTIG : layout);
        ok = in[i] != NULL;
    }
    if (!ok) {
        conf_record_call_error(t, ctx, label);
    } else {
        em_tensor *r = bench_case_run(c, in);
        if (!r) {
            conf_record_call_error(t, ctx, label);
        } else if (em_tensor_dtype(r) != c->out.dtype || em_tensor_numel(r) != c->out.numel) {
            char m[200];
            snprintf(m, sizeof m, "result is %s with %" PRId64 " elements, expected %s with %" PRId64,
                     bench_dtype_name(em_tensor_dtype(r)), em_tensor_numel(r),
                     bench_dtype_name(c->out.dtype), c->out.numel);
            conf_record_fail(t, ctx, label, m);
        } else {
            double *got = malloc(sizeof(double) * (size_t)(c->out.numel > 0 ? c->out.numel : 1));
            em_status st = got ? bench_read_result(r, got, c->out.numel) : EM_ERR_OUT_OF_MEMORY;
            if (st != EM_OK) {
                conf_record_call_error(t, ctx, label);
            } else {
                bench_err e = bench_case_compare(c, got);
                conf_record(t, ctx, label, &e, c, got);
            }
            free(got);
        }
        em_tensor_release(r);
    }
    for (int i = 0; i < c->n_in; i++) em_tensor_release(in[i]);
}

static void check_forward(conf_ctx *ctx, const bench_op *op, em_dtype d, conf_tally *t)
{
    for (int g = 0; g < N_GEOMS; g++) {
        const int64_t *p = is_mm(op) ? k_mm_geoms[g] : k_ew_geoms[g];
        bench_case c;
        char why[200];
        if (!bench_case_init(&c, op, d, p, "", &ctx->rng, true, why, sizeof why)) {
            conf_record_fail(t, ctx, op->name, why);
            continue;
        }
        t->tol = c.tol;
        for (int lay = 0; lay < CL_COUNT; lay++) run_case(ctx, &c, lay, "", t);
        if (bench_is_float(d) && takes_specials(op) && g >= 1) {
            inject_specials(&c, &ctx->rng);
            bench_case_reference(&c, true);
            run_case(ctx, &c, CL_CONTIG, "special values", t);
        }
        bench_case_free(&c);
    }
}

/* ------------------------------------------------------------------------ */
/* In-place forms into guarded views                                         */
/* ------------------------------------------------------------------------ */

typedef enum ip_kind {
    IP_ADD, IP_SUB, IP_MUL, IP_DIV, IP_ADD_SCALAR, IP_MUL_SCALAR, IP_CLAMP, IP_RELU,
    IP_MASKED_FILL, IP_AXPY, IP_SCATTER_ADD, IP_FILL, IP_COPY, IP_COPY_CAST
} ip_kind;

typedef struct ip_op {
    const char *name;   /* reported name                              */
    const char *base;   /* the bench op whose case and reference fit  */
    ip_kind kind;
} ip_op;

static const ip_op k_inplace[] = {
    {"add_", "add", IP_ADD}, {"sub_", "sub", IP_SUB}, {"mul_", "mul", IP_MUL},
    {"div_", "div", IP_DIV}, {"add_scalar_", "add_scalar", IP_ADD_SCALAR},
    {"mul_scalar_", "mul_scalar", IP_MUL_SCALAR}, {"clamp_", "clamp", IP_CLAMP},
    {"relu_", "relu", IP_RELU}, {"masked_fill_", "masked_fill", IP_MASKED_FILL},
    {"add_scaled_", "axpy", IP_AXPY}, {"scatter_add_", "scatter_add", IP_SCATTER_ADD},
    {"fill_", "neg", IP_FILL}, {"copy_", "neg", IP_COPY}, {"copy_cast_", "neg", IP_COPY_CAST},
};

/* The destination dtype of a casting copy from d. */
static em_dtype cast_target(em_dtype d) { return d == EM_F32 ? EM_F16 : EM_F32; }

static em_status run_inplace(const ip_op *ip, em_tensor *self, em_tensor *const *in, bool is_int)
{
    switch (ip->kind) {
    case IP_ADD: return em_add_(self, in[1]);
    case IP_SUB: return em_sub_(self, in[1]);
    case IP_MUL: return em_mul_(self, in[1]);
    case IP_DIV: return em_div_(self, in[1]);
    case IP_ADD_SCALAR: return em_add_scalar_(self, 3.0);
    case IP_MUL_SCALAR: return em_mul_scalar_(self, 3.0);
    case IP_CLAMP: return is_int ? em_clamp_(self, -3, 3) : em_clamp_(self, -0.5, 0.5);
    case IP_RELU: return em_relu_(self);
    case IP_MASKED_FILL: return em_masked_fill_(self, in[1], 2.0);
    case IP_AXPY: return em_add_scaled_(self, in[1], 0.5);
    case IP_SCATTER_ADD: return em_scatter_add_(self, 0, in[1], in[2]);
    case IP_FILL: return em_fill_(self, 2.0);
    case IP_COPY:
    case IP_COPY_CAST: return em_copy_(self, in[0]);
    }
    return EM_ERR_INTERNAL;
}

/* Checks one in-place op with the destination a view of a guarded buffer:
 * guarded = flat view in the middle of GUARD elements each side; strided =
 * every other element of every other row of a bigger matrix. */
static void check_inplace(conf_ctx *ctx, const ip_op *ip, em_dtype d, conf_tally *t)
{
    const bench_op *op = bench_op_find(ip->base);
    static const int64_t geoms[2][3] = {{7, 33, 33}, {130, 260, 260}};
    em_dtype dd = ip->kind == IP_COPY_CAST ? cast_target(d) : d; /* destination dtype */
    if (!((ctx->dtype_mask >> dd) & 1u)) return;
    for (int g = 0; g < 2; g++)
        for (int strided = 0; strided < 2; strided++) {
            bench_case c;
            char why[200], label[160];
            if (!bench_case_init(&c, op, d, geoms[g], "", &ctx->rng, true, why, sizeof why)) {
                conf_record_fail(t, ctx, ip->name, why);
                continue;
            }
            int64_t R = geoms[g][0], C = geoms[g][1], n = R * C;
            snprintf(label, sizeof label, "%s [%" PRId64 ",%" PRId64 "] into a %s view", ip->name, R, C,
                     strided ? "strided" : "guarded");
            /* expected values of the view */
            double *want = malloc(sizeof(double) * (size_t)n);
            double *self0 = malloc(sizeof(double) * (size_t)n);
            if (!want || !self0) {
                free(want);
                free(self0);
                bench_case_free(&c);
                conf_record_fail(t, ctx, label, "out of host memory");
                continue;
            }
            for (int64_t i = 0; i < n; i++) {
                self0[i] = c.in[0].v[i];
                switch (ip->kind) {
                case IP_FILL: want[i] = bench_round(2.0, dd); break;
                case IP_COPY: want[i] = c.in[0].v[i]; self0[i] = bench_round(1.0, dd); break;
                case IP_COPY_CAST: want[i] = bench_round(c.in[0].v[i], dd); self0[i] = bench_round(1.0, dd); break;
                default: want[i] = c.out.v[i]; break;
                }
            }
            t->tol = ip->kind == IP_FILL || ip->kind == IP_COPY || ip->kind == IP_COPY_CAST
                         ? bench_tolerance(BT_EXACT, dd) : c.tol;
            /* the base buffer: pattern everywhere, self0 at the view's places */
            int64_t bs[2], bn;
            if (strided) {
                bs[0] = 2 * R + 2;
                bs[1] = 2 * C + 2;
            } else {
                bs[0] = 1;
                bs[1] = n + 2 * GUARD;
            }
            bn = bs[0] * bs[1];
            double *base_v = malloc(sizeof(double) * (size_t)bn);
            int64_t *pos = malloc(sizeof(int64_t) * (size_t)n);
            double pattern = bench_round(SENTINEL, dd);
            em_tensor *base = NULL, *view = NULL, *in[BENCH_MAX_IN] = {0};
            bool ok = base_v && pos;
            for (int64_t i = 0; ok && i < bn; i++) base_v[i] = pattern;
            for (int64_t i = 0; ok && i < n; i++) {
                int64_t r = i / C, col = i % C;
                pos[i] = strided ? (2 * r + 1) * bs[1] + 2 * col + 1 : GUARD + i;
                base_v[pos[i]] = self0[i];
            }
            if (ok) base = upload(ctx, base_v, dd, 2, bs);
            if (base && strided) {
                em_tensor *a = em_slice(base, 0, 1, 2 * R + 1, 2);
                view = a ? em_slice(a, 1, 1, 2 * C + 1, 2) : NULL;
                em_tensor_release(a);
            } else if (base) {
                em_tensor *flat = em_reshape(base, 1, (int64_t[]){bn});
                em_tensor *mid = flat ? em_narrow(flat, 0, GUARD, n) : NULL;
                view = mid ? em_view(mid, 2, (int64_t[]){R, C}) : NULL;
                em_tensor_release(flat);
                em_tensor_release(mid);
            }
            for (int i = 0; i < c.n_in && view; i++) {
                em_dtype idt = c.in[i].dtype;
                if (idt == EM_I64 && bench_case_is_index(&c, i) && !((ctx->dtype_mask >> EM_I64) & 1u)) idt = EM_I32;
                in[i] = conf_make(ctx, &c.in[i], idt, CL_CONTIG);
                if (!in[i]) view = NULL;
            }
            if (!view) {
                conf_record_call_error(t, ctx, label);
            } else if (run_inplace(ip, view, in, !bench_is_float(d)) != EM_OK) {
                conf_record_call_error(t, ctx, label);
            } else {
                double *got_all = malloc(sizeof(double) * (size_t)bn);
                double *got = malloc(sizeof(double) * (size_t)n);
                em_status st = got_all && got ? bench_read_result(base, got_all, bn) : EM_ERR_OUT_OF_MEMORY;
                if (st != EM_OK) {
                    conf_record_call_error(t, ctx, label);
                } else {
                    /* guards: every element that is not the view's must keep the pattern */
                    int64_t clobbered = 0, first = -1;
                    char *is_view = calloc((size_t)bn, 1);
                    for (int64_t i = 0; is_view && i < n; i++) is_view[pos[i]] = 1;
                    for (int64_t i = 0; is_view && i < bn; i++)
                        if (!is_view[i] && !(got_all[i] == pattern)) {
                            if (first < 0) first = i;
                            clobbered++;
                        }
                    free(is_view);
                    if (clobbered) {
                        char m[300];
                        snprintf(m, sizeof m, "wrote outside its view: %" PRId64 " guard element(s) "
                                 "changed, first at buffer element %" PRId64 " (%.9g, pattern %.9g)",
                                 clobbered, first, got_all[first], pattern);
                        conf_record_fail(t, ctx, label, m);
                    } else {
                        for (int64_t i = 0; i < n; i++) got[i] = got_all[pos[i]];
                        bench_err e = bench_compare_values(got, want, c.scale, n, dd, t->tol);
                        bench_case shown = c;
                        shown.out.v = want;
                        conf_record(t, ctx, label, &e, &shown, got);
                    }
                }
                free(got_all);
                free(got);
            }
            for (int i = 0; i < c.n_in; i++) em_tensor_release(in[i]);
            em_tensor_release(view);
            em_tensor_release(base);
            free(base_v);
            free(pos);
            free(want);
            free(self0);
            bench_case_free(&c);
        }
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

/* full: FILL into a fresh allocation, the out-of-place case the guard regions
 * of EMBER_GUARD=1 cover (the core checks them after the kernel). Every
 * element must read back as the value. */
static void check_full(conf_ctx *ctx, em_dtype d, conf_tally *t)
{
    static const int64_t geoms[3][2] = {{1, 1}, {7, 33}, {130, 260}};
    for (int g = 0; g < 3; g++) {
        char label[80];
        snprintf(label, sizeof label, "full [%" PRId64 ",%" PRId64 "]", geoms[g][0], geoms[g][1]);
        em_tensor *x = em_full(2.0, d, 2, geoms[g], ctx->dev);
        if (!x) {
            conf_record_call_error(t, ctx, label);
            continue;
        }
        int64_t n = geoms[g][0] * geoms[g][1], bad = -1;
        double *v = malloc(sizeof(double) * (size_t)n);
        if (v && em_tensor_read_f64(x, v, (size_t)n) == EM_OK) {
            for (int64_t i = 0; i < n && bad < 0; i++)
                if (v[i] != (d == EM_BOOL ? 1.0 : 2.0)) bad = i;
            if (bad >= 0) {
                char m[160];
                snprintf(m, sizeof m, "element %" PRId64 " is %g", bad, v[bad]);
                conf_record_fail(t, ctx, label, m);
            } else {
                t->checks++;
                t->passed++;
            }
        } else if (!v) {
            conf_record_fail(t, ctx, label, "out of host memory");
        } else {
            conf_record_call_error(t, ctx, label);
        }
        free(v);
        em_tensor_release(x);
    }
}

/* matmul with a batch dim: a [3,5,7] x b [3,7,4], and b broadcast over the
 * batch ([1,7,4] expanded: batch stride 0), against a float64 reference. The
 * values are multiples of 1/4 in [-0.5, 0.5], so every product and sum is
 * exact in every float dtype: the result must match exactly. */
static void check_batched_matmul(conf_ctx *ctx, em_dtype d, conf_tally *t)
{
    enum { B = 3, M = 5, K = 7, N = 4 };
    double av[B * M * K], bv[B * K * N], want[B * M * N];
    for (int i = 0; i < B * M * K; i++) av[i] = (double)((i * 7 + 3) % 5 - 2) / 4.0;
    for (int i = 0; i < B * K * N; i++) bv[i] = (double)((i * 3 + 1) % 5 - 2) / 4.0;
    for (int bcast = 0; bcast < 2; bcast++) {
        const char *label = bcast ? "matmul [3,5,7] x [1,7,4] expanded to [3,7,4]"
                                  : "matmul [3,5,7] x [3,7,4]";
        for (int b = 0; b < B; b++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++)
                        acc += av[(b * M + i) * K + k] * bv[((bcast ? 0 : b) * K + k) * N + j];
                    want[(b * M + i) * N + j] = acc;
                }
        float af[B * M * K], bf[B * K * N];
        for (int i = 0; i < B * M * K; i++) af[i] = (float)av[i];
        for (int i = 0; i < B * K * N; i++) bf[i] = (float)bv[i];
        em_scope_begin();
        em_tensor *a = em_cast(em_tensor_from_data(af, EM_F32, EM_SHAPE(B, M, K), ctx->dev), d);
        em_tensor *bt = bcast ? em_expand(em_cast(em_tensor_from_data(bf, EM_F32, EM_SHAPE(1, K, N), ctx->dev), d),
                                          EM_SHAPE(B, K, N))
                              : em_cast(em_tensor_from_data(bf, EM_F32, EM_SHAPE(B, K, N), ctx->dev), d);
        em_tensor *c = a && bt ? em_matmul(a, bt) : NULL;
        double got[B * M * N];
        if (!c || em_tensor_read_f64(c, got, B * M * N) != EM_OK) {
            conf_record_call_error(t, ctx, label);
        } else {
            int bad = -1;
            for (int i = 0; i < B * M * N && bad < 0; i++)
                if (got[i] != want[i]) bad = i;
            if (bad >= 0) {
                char m[160];
                snprintf(m, sizeof m, "element %d (batch %d) is %g, want %g", bad, bad / (M * N),
                         got[bad], want[bad]);
                conf_record_fail(t, ctx, label, m);
            } else {
                t->checks++;
                t->passed++;
            }
        }
        em_scope_end();
    }
}

static bool selected(const char *name, const char *family, char **sel, int nsel)
{
    if (nsel == 0) return true;
    for (int i = 0; i < nsel; i++)
        if (!strcmp(sel[i], name) || (family && !strcmp(sel[i], family))) return true;
    return false;
}

static void print_tally(const conf_tally *t, const char *kind, int *np, int *nf, int *nu)
{
    const char *verdict;
    if (t->failed) {
        verdict = "FAIL";
        (*nf)++;
    } else if (t->unsupported == t->checks) {
        verdict = "unsupported";
        (*nu)++;
    } else if (t->unsupported) {
        verdict = "partial";
        (*nu)++;
    } else {
        verdict = "pass";
        (*np)++;
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s", kind, t->op);
    printf("%-11s %-24s %-5s %3d checks", verdict, name, bench_dtype_name(t->dtype), t->checks);
    if (t->failed) printf(", %d failed: %s\n", t->failed, t->first_fail);
    else if (t->unsupported) printf(", %d not supported: %s\n", t->unsupported, t->unsupported_why);
    else printf("  max_abs %.2g max_rel %.2g (tol %g+%g*|ref|+%gulp)\n", t->max_abs, t->max_rel,
                t->tol.atol, t->tol.rtol, t->tol.ulps);
    fflush(stdout);
}

static int split(char *s, char **items, int cap)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < cap; tok = strtok(NULL, ",")) items[n++] = tok;
    return n;
}

int main(int argc, char **argv)
{
    const char *spec = NULL, *ops = NULL, *dtypes = "f32,f64,f16,bf16,i32,i64,bool";
    bool grad = true, require_full = false, allow_fallback = false, verbose = false;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "--backend") || !strcmp(a, "--ops") || !strcmp(a, "--dtypes") ||
             !strcmp(a, "--seed")) && !v) {
            fprintf(stderr, "ember-conformance: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--backend")) spec = argv[++i];
        else if (!strcmp(a, "--ops")) ops = argv[++i];
        else if (!strcmp(a, "--dtypes")) dtypes = argv[++i];
        else if (!strcmp(a, "--seed")) seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--no-grad")) grad = false;
        else if (!strcmp(a, "--require-full")) require_full = true;
        else if (!strcmp(a, "--allow-fallback")) allow_fallback = true;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) verbose = true;
        else {
            fprintf(stderr,
                    "usage: ember-conformance [--backend cpu|vulkan:0|/path/libember-x.so] [--ops LIST]\n"
                    "       [--dtypes LIST] [--no-grad] [--require-full] [--allow-fallback] [--seed N] [-v]\n");
            return !strcmp(a, "-h") || !strcmp(a, "--help") ? 0 : 2;
        }
    }
    if (!allow_fallback) setenv("EMBER_STRICT", "1", 1); /* no CPU fallback: gaps show */
    /* guard regions around every allocation: the core checks them after each
     * kernel, so an out-of-place op that writes past its output fails too */
    setenv("EMBER_GUARD", "1", 1);
    em_status ist = em_init();
    em_clear_error();
    em_device *dev = spec ? em_device_find(spec) : em_device_default();
    if (!dev) {
        printf("ember-conformance: no device for %s (skipped): %s%s%s\n",
               spec ? spec : "EMBER_BACKEND", em_last_error(), ist != EM_OK ? "; em_init: " : "",
               ist != EM_OK ? em_status_str(ist) : "");
        em_shutdown();
        return 77;
    }
    em_device_props props = {.struct_size = sizeof props};
    em_device_properties(dev, &props);
    const char *plugin_path = "";
    for (int i = 0; i < em_backend_count(); i++)
        if (!strcmp(em_backend_name(em_backend_get(i)), props.backend))
            plugin_path = em_backend_path(em_backend_get(i));
    printf("ember-conformance: Ember %s; device %s (%s, %s) from %s; seed %" PRIu64 "; %s\n",
           em_version(), em_device_name(dev), props.name, em_device_type_name(props.type), plugin_path,
           seed, allow_fallback ? "CPU fallback allowed" : "strict dispatch (EMBER_STRICT=1)");
    conf_ctx ctx = {.dev = dev, .dtype_mask = props.dtype_mask, .rng = {seed}, .verbose = verbose};
    char ops_buf[1024] = "", dt_buf[256];
    char *sel[128], *dts[16];
    int nsel = 0;
    if (ops) {
        snprintf(ops_buf, sizeof ops_buf, "%s", ops);
        nsel = split(ops_buf, sel, 128);
    }
    snprintf(dt_buf, sizeof dt_buf, "%s", dtypes);
    int ndt = split(dt_buf, dts, 16);
    em_dtype dl[16];
    for (int i = 0; i < ndt; i++)
        if (!bench_dtype_parse(dts[i], &dl[i])) {
            fprintf(stderr, "ember-conformance: --dtypes: unknown dtype '%s'\n", dts[i]);
            return 2;
        }
    int np = 0, nf = 0, nu = 0, ndev_gap = 0;
    for (int k = 0; k < bench_op_count; k++) {
        const bench_op *op = &bench_ops[k];
        if (!selected(op->name, op->family, sel, nsel)) continue;
        for (int j = 0; j < ndt; j++) {
            em_dtype d = dl[j];
            if (!bench_op_accepts(op, d)) continue;
            conf_tally t = {.dtype = d};
            snprintf(t.op, sizeof t.op, "%s", op->name);
            if (!((props.dtype_mask >> d) & 1u)) {
                ndev_gap++;
                if (verbose) printf("%-11s %-24s %-5s the device has no %s\n", "unsupported", op->name,
                                    bench_dtype_name(d), bench_dtype_name(d));
                continue;
            }
            check_forward(&ctx, op, d, &t);
            print_tally(&t, "", &np, &nf, &nu);
        }
    }
    for (size_t k = 0; k < sizeof k_inplace / sizeof k_inplace[0]; k++) {
        const ip_op *ip = &k_inplace[k];
        const bench_op *base = bench_op_find(ip->base);
        if (!selected(ip->name, "inplace", sel, nsel) && !selected(ip->base, NULL, sel, nsel)) continue;
        for (int j = 0; j < ndt; j++) {
            em_dtype d = dl[j];
            bool copy_like = ip->kind == IP_FILL || ip->kind == IP_COPY || ip->kind == IP_COPY_CAST;
            if (copy_like ? d == EM_BOOL && ip->kind == IP_COPY_CAST : !bench_op_accepts(base, d)) continue;
            if (!((props.dtype_mask >> d) & 1u)) {
                ndev_gap++;
                continue;
            }
            conf_tally t = {.dtype = d};
            snprintf(t.op, sizeof t.op, "%s", ip->name);
            check_inplace(&ctx, ip, d, &t);
            if (t.checks) print_tally(&t, "", &np, &nf, &nu);
        }
    }
    if (selected("full", "memory", sel, nsel)) {
        for (int j = 0; j < ndt; j++) {
            em_dtype d = dl[j];
            if (!((props.dtype_mask >> d) & 1u)) continue; /* counted by the loops above */
            conf_tally t = {.dtype = d};
            snprintf(t.op, sizeof t.op, "full");
            check_full(&ctx, d, &t);
            print_tally(&t, "", &np, &nf, &nu);
        }
    }
    if (selected("matmul", "linalg", sel, nsel)) {
        static const em_dtype mm_dtypes[4] = {EM_F32, EM_F64, EM_F16, EM_BF16};
        for (int j = 0; j < 4; j++) {
            em_dtype d = mm_dtypes[j];
            bool asked = false;
            for (int k = 0; k < ndt; k++) asked |= dl[k] == d;
            if (!asked || !((props.dtype_mask >> d) & 1u)) continue;
            conf_tally t = {.dtype = d};
            snprintf(t.op, sizeof t.op, "matmul (batched)");
            check_batched_matmul(&ctx, d, &t);
            print_tally(&t, "", &np, &nf, &nu);
        }
    }
    if (selected("linear_relu", "linalg", sel, nsel) || selected("relu", NULL, sel, nsel)) {
        static const em_dtype fl_dtypes[4] = {EM_F32, EM_F64, EM_F16, EM_BF16};
        for (int j = 0; j < 4; j++) {
            em_dtype d = fl_dtypes[j];
            bool asked = false;
            for (int k = 0; k < ndt; k++) asked |= dl[k] == d;
            if (!asked || !((props.dtype_mask >> d) & 1u)) continue;
            conf_tally t = {.dtype = d};
            snprintf(t.op, sizeof t.op, "linear_relu + relu bwd");
            conf_fused_check(&ctx, d, &t);
            print_tally(&t, "", &np, &nf, &nu);
        }
    }
    if (grad) {
        for (int k = 0; k < bench_op_count; k++) {
            const bench_op *op = &bench_ops[k];
            if (!op->differentiable || !selected(op->name, op->family, sel, nsel)) continue;
            for (int j = 0; j < ndt; j++) {
                em_dtype d = dl[j];
                if ((d != EM_F32 && d != EM_F64) || !bench_op_accepts(op, d)) continue;
                if (!((props.dtype_mask >> d) & 1u)) {
                    ndev_gap++;
                    continue;
                }
                conf_tally t = {.dtype = d};
                snprintf(t.op, sizeof t.op, "%s", op->name);
                conf_grad_check(&ctx, op, d, &t);
                print_tally(&t, "grad ", &np, &nf, &nu);
            }
        }
    }
    printf("\n%s: %d pass, %d FAIL, %d not supported or partial (coverage gaps, not passes), "
           "%d (op, dtype) pairs skipped because the device lacks the dtype\n",
           em_device_name(dev), np, nf, nu, ndev_gap);
    em_shutdown();
    if (nf) return 1;
    if (require_full && (nu || ndev_gap)) {
        printf("--require-full: coverage gaps count as failures\n");
        return 1;
    }
    return 0;
}
