/*
 * conformance_grad.c — ember-conformance's gradient table: for every
 * differentiable op of the op table, in f32 and f64, the analytic gradient
 * that Ember's autograd computes ON THE DEVICE UNDER TEST (its backward
 * formulas run that plugin's kernels, strict dispatch) is compared with
 * central finite differences of the harness's own float64 reference
 * (bench_ops.c), so the reference never touches the code it checks.
 *
 * L(x) = sum(W * f(x)) with random weights W; dL/dx_j numerically as
 * (L(x + h e_j) - L(x - h e_j)) / 2h, h = 1e-6 max(1, |x_j|), computed in
 * double at the exact (rounded) input values. An element passes when
 * |analytic - numeric| <= atol * max(1, max|numeric|) + rtol * |numeric|
 * with (atol, rtol) = (1e-7, 1e-5) for f64 and (1e-4, 1e-3) for f32.
 *
 * conf_fused_check: the ABI 1.4 pair that the op table cannot reach (the core
 * picks them itself where a backend registers them): em_linear_relu
 * (EM_OP_LINEAR_ACT) and relu's backward (EM_OP_RELU_BACKWARD), forward and
 * gradients against an exact float64 reference, in every float dtype.
 * Not for forward checks of the op table (conformance.c).
 */
#include "conformance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double weighted_loss(bench_case *c, const double *w)
{
    bench_case_reference(c, false);
    double s = 0;
    for (int64_t i = 0; i < c->out.numel; i++) s += w[i] * c->out.v[i];
    return s;
}

void conf_grad_check(conf_ctx *ctx, const bench_op *op, em_dtype d, conf_tally *t)
{
    static const int64_t ew[3] = {3, 5, 5}, mm[3] = {3, 4, 5};
    bool is_mm = op->geom == BG_MATMUL || op->geom == BG_LINEAR || op->geom == BG_ADDMM;
    bench_case c;
    char why[200], label[160];
    if (!bench_case_init(&c, op, d, is_mm ? mm : ew, "", &ctx->rng, true, why, sizeof why)) {
        conf_record_fail(t, ctx, op->name, why);
        return;
    }
    snprintf(label, sizeof label, "grad %s %s", op->name, c.shape);
    double atol = d == EM_F64 ? 1e-7 : 1e-4, rtol = d == EM_F64 ? 1e-5 : 1e-3;
    em_tensor *in[BENCH_MAX_IN] = {0}, *leaves[BENCH_MAX_IN] = {0}, *grads[BENCH_MAX_IN] = {0};
    int leaf_of[BENCH_MAX_IN], nleaf = 0;
    double *w = malloc(sizeof(double) * (size_t)c.out.numel);
    em_tensor *W = NULL, *out = NULL;
    bool ok = w != NULL;
    for (int i = 0; i < c.n_in && ok; i++) {
        bool leaf = bench_is_float(c.in[i].dtype) && !bench_case_is_index(&c, i);
        em_dtype idt = c.in[i].dtype;
        if (idt == EM_I64 && !((ctx->dtype_mask >> EM_I64) & 1u)) idt = EM_I32;
        in[i] = conf_make(ctx, &c.in[i], idt, CL_CONTIG);
        ok = in[i] != NULL;
        if (ok && leaf) {
            ok = em_requires_grad_(in[i], true) == EM_OK;
            leaf_of[nleaf] = i;
            leaves[nleaf++] = in[i];
        }
    }
    if (ok) {
        for (int64_t i = 0; i < c.out.numel; i++)
            w[i] = bench_round(bench_rng_uniform(&ctx->rng, -1, 1), c.out.dtype);
        bench_arg wa = c.out;
        wa.v = w;
        W = conf_make(ctx, &wa, c.out.dtype, CL_CONTIG);
        out = W ? bench_case_run(&c, in) : NULL;
        ok = out && em_autograd_grad(1, (const em_tensor *const *)&out, (const em_tensor *const *)&W,
                                     nleaf, (const em_tensor *const *)leaves, grads, false, false,
                                     false) == EM_OK;
    }
    if (!ok) {
        conf_record_call_error(t, ctx, label);
    } else {
        double worst_abs = 0, worst_rel = 0;
        int64_t n_bad = 0;
        char first[300] = "";
        for (int l = 0; l < nleaf && n_bad >= 0; l++) {
            bench_arg *a = &c.in[leaf_of[l]];
            double *an = malloc(sizeof(double) * (size_t)a->numel);
            double *nu = malloc(sizeof(double) * (size_t)a->numel);
            if (!an || !nu || bench_read_result(grads[l], an, a->numel) != EM_OK ||
                em_tensor_numel(grads[l]) != a->numel) {
                free(an);
                free(nu);
                conf_record_call_error(t, ctx, label);
                n_bad = -1;
                break;
            }
            double maxn = 1;
            for (int64_t j = 0; j < a->numel; j++) {
                double x = a->v[j], h = 1e-6 * fmax(1.0, fabs(x));
                a->v[j] = x + h;
                double lp = weighted_loss(&c, w);
                a->v[j] = x - h;
                double lm = weighted_loss(&c, w);
                a->v[j] = x;
                nu[j] = (lp - lm) / (2 * h);
                if (fabs(nu[j]) > maxn) maxn = fabs(nu[j]);
            }
            for (int64_t j = 0; j < a->numel; j++) {
                double err = fabs(an[j] - nu[j]);
                if (!(err <= atol * maxn + rtol * fabs(nu[j]))) {
                    if (!n_bad++)
                        snprintf(first, sizeof first, "d/d(input %d)[%lld]: autograd %.9g, finite "
                                 "differences %.9g", leaf_of[l], (long long)j, an[j], nu[j]);
                }
                if (isfinite(err) && err > worst_abs) worst_abs = err;
                if (nu[j] != 0 && isfinite(err) && err / fabs(nu[j]) > worst_rel) worst_rel = err / fabs(nu[j]);
                if (!isfinite(err)) worst_abs = INFINITY;
            }
            t->tol = (bench_tol){atol * maxn, rtol, 0};
            free(an);
            free(nu);
        }
        if (n_bad > 0) {
            char m[400];
            snprintf(m, sizeof m, "%lld element(s) out of tolerance, first %s; max_abs %.3g max_rel %.3g",
                     (long long)n_bad, first, worst_abs, worst_rel);
            conf_record_fail(t, ctx, label, m);
        } else if (n_bad == 0) {
            bench_err e = {worst_abs, worst_rel, 0, -1, 0, 0, true};
            conf_record(t, ctx, label, &e, NULL, NULL);
        }
    }
    for (int l = 0; l < nleaf; l++) em_tensor_release(grads[l]);
    em_tensor_release(out);
    em_tensor_release(W);
    for (int i = 0; i < c.n_in; i++) em_tensor_release(in[i]);
    free(w);
    bench_case_free(&c);
}

/* ------------------------------------------------------------------------ */
/* linear + relu and relu's backward (ABI 1.4)                               */
/* ------------------------------------------------------------------------ */

/* Compares n values read from t with want exactly; records into t. */
static void exact_check(conf_tally *t, const conf_ctx *ctx, const char *label, const em_tensor *x,
                        const double *want, int n)
{
    double got[64];
    if (!x || n > 64 || em_tensor_numel(x) != n || em_tensor_read_f64(x, got, (size_t)n) != EM_OK) {
        conf_record_call_error(t, ctx, label);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (got[i] == want[i] || (isnan(got[i]) && isnan(want[i]))) continue;
        char m[160];
        snprintf(m, sizeof m, "element %d is %g, want %g", i, got[i], want[i]);
        conf_record_fail(t, ctx, label, m);
        return;
    }
    t->checks++;
    t->passed++;
}

/* Values are multiples of 1/4 in [-0.5, 0.5] (many pre-activations exactly
 * 0), so every product and sum is exact in every float dtype: results and
 * gradients must match the reference exactly. The label says which path ran
 * (the grad_fn "linear_relu" is the fused kernel). */
void conf_fused_check(conf_ctx *ctx, em_dtype d, conf_tally *t)
{
    enum { MX = 5, K = 7, N = 6 };
    double xv[MX * K], wv[N * K], bv[N], gv[MX * N];
    for (int i = 0; i < MX * K; i++) xv[i] = (double)((i * 7 + 3) % 5 - 2) / 4.0;
    for (int i = 0; i < N * K; i++) wv[i] = (double)((i * 3 + 1) % 5 - 2) / 4.0;
    for (int i = 0; i < N; i++) bv[i] = (double)(i % 3 - 1) / 4.0;
    for (int i = 0; i < MX * N; i++) gv[i] = (double)((i * 5 + 2) % 5 - 2) / 4.0;
    for (int M = MX; M >= 1; M -= MX - 1) { /* 5 rows, then 1 (the GEMV shape) */
        double z[MX * N], y[MX * N], gz[MX * N], gx[MX * K] = {0}, gw[N * K] = {0}, gb[N] = {0};
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double acc = bv[j];
                for (int k = 0; k < K; k++) acc += xv[i * K + k] * wv[j * K + k];
                z[i * N + j] = acc;
                y[i * N + j] = acc < 0 ? 0 : acc;
                gz[i * N + j] = acc > 0 ? gv[i * N + j] : 0;
            }
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                gb[j] += gz[i * N + j];
                for (int k = 0; k < K; k++) {
                    gx[i * K + k] += gz[i * N + j] * wv[j * K + k];
                    gw[j * K + k] += gz[i * N + j] * xv[i * K + k];
                }
            }
        em_scope_begin();
        em_tensor *x = em_cast(em_tensor_from_data(xv, EM_F64, EM_SHAPE(M, K), ctx->dev), d);
        em_tensor *w = em_cast(em_tensor_from_data(wv, EM_F64, EM_SHAPE(N, K), ctx->dev), d);
        em_tensor *b = em_cast(em_tensor_from_data(bv, EM_F64, EM_SHAPE(N), ctx->dev), d);
        em_tensor *g = em_cast(em_tensor_from_data(gv, EM_F64, EM_SHAPE(M, N), ctx->dev), d);
        bool ok = x && w && b && g && em_requires_grad_(x, true) == EM_OK &&
                  em_requires_grad_(w, true) == EM_OK && em_requires_grad_(b, true) == EM_OK;
        em_tensor *out = ok ? em_linear_relu(x, w, b) : NULL;
        const char *fn = out ? em_grad_fn_name(out) : NULL;
        const char *path = fn && !strcmp(fn, "linear_relu") ? "fused" : "composed";
        char label[120];
        snprintf(label, sizeof label, "linear_relu [%d,%d]x[%d,%d]^T (%s)", M, K, N, K, path);
        exact_check(t, ctx, label, out, y, M * N);
        em_tensor *grads[3] = {0};
        const em_tensor *leaves[3] = {x, w, b};
        snprintf(label, sizeof label, "grad linear_relu [%d,%d]x[%d,%d]^T (%s)", M, K, N, K, path);
        if (!out) {
            /* recorded above (unsupported or a failure) */
        } else if (em_autograd_grad(1, (const em_tensor *const *)&out, (const em_tensor *const *)&g,
                                    3, leaves, grads, false, false, false) != EM_OK) {
            conf_record_call_error(t, ctx, label);
        } else {
            exact_check(t, ctx, label, grads[0], gx, M * K);
            exact_check(t, ctx, label, grads[1], gw, N * K);
            exact_check(t, ctx, label, grads[2], gb, N);
        }
        /* relu's own backward: g where the input > 0 (0 for 0, -0 and NaN) */
        em_tensor *zt = em_cast(em_tensor_from_data(z, EM_F64, EM_SHAPE(M, N), ctx->dev), d);
        if (zt && M == MX) {
            double zn[MX * N], want[MX * N];
            memcpy(zn, z, sizeof zn);
            zn[1] = NAN;
            zn[2] = -0.0;
            zt = em_cast(em_tensor_from_data(zn, EM_F64, EM_SHAPE(M, N), ctx->dev), d);
            for (int i = 0; i < M * N; i++) want[i] = zn[i] > 0 ? gv[i] : 0;
            em_tensor *gr = NULL;
            const em_tensor *zl = zt;
            em_clear_error();
            em_tensor *r = zt && em_requires_grad_(zt, true) == EM_OK ? em_relu(zt) : NULL;
            snprintf(label, sizeof label, "relu backward [%d,%d]", M, N);
            if (!r || em_autograd_grad(1, (const em_tensor *const *)&r, (const em_tensor *const *)&g,
                                       1, &zl, &gr, false, false, false) != EM_OK)
                conf_record_call_error(t, ctx, label);
            else
                exact_check(t, ctx, label, gr, want, M * N);
        }
        em_scope_end(); /* every tensor above, the gradients too, is the scope's */
    }
}
