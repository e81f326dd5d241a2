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
 * Not for forward checks (conformance.c).
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
