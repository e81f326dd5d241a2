/*
 * gradcheck.h — finite-difference checks of Ember's autograd for the tests
 * (header-only, static; include after test_util.h).
 *
 * gradcheck(label, f, ctx, n, inputs): f builds one output tensor from the
 * n float64 leaf inputs (any ops, views, broadcasting). With a random
 * weighting W of the output (the same for both sides), the analytic
 * gradient of L = sum(f(x) * W) from em_autograd_grad is compared with
 * central differences (eps 1e-6) computed entirely from forward passes:
 * each element of each input is perturbed on the host, the input rebuilt,
 * f run with grad mode off, and L summed in double on the host. So the
 * reference never touches the backward code it checks.
 *
 * gradgradcheck(...): the same for second derivatives. S(x) = sum_i
 * <dL/dx_i, V_i> with random V; its analytic gradient comes from a
 * create_graph pass (grad of grad), the reference from central differences
 * of first-order gradients at perturbed points.
 *
 * Tolerance: |analytic - numeric| <= atol + rtol * |numeric| with atol 1e-5,
 * rtol 1e-3 (torch.autograd.gradcheck's defaults), per element; the largest
 * error is printed.
 */
#ifndef EMBER_GRADCHECK_H
#define EMBER_GRADCHECK_H

#include "test_util.h"

#define GC_MAX_INPUTS 8

typedef em_tensor *(*gc_fn)(em_tensor *const *in, void *ctx);

/* A float64 leaf requiring grad, uniform in [lo, hi], on the test device. */
static TU_UNUSED em_tensor *gc_leaf(int ndim, const int64_t *shape, double lo, double hi)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = tu_uniform(lo, hi);
    em_tensor *t = em_tensor_from_data(v, EM_F64, ndim, shape, tu_dev);
    free(v);
    if (t) em_requires_grad_(t, true);
    return t;
}

static TU_UNUSED double *gc_read(const em_tensor *t)
{
    int64_t n = em_tensor_numel(t);
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (em_tensor_read_f64(t, v, (size_t)n) != EM_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* Random weights for an output of t's shape, as host values and a tensor. */
static TU_UNUSED em_tensor *gc_weights(const em_tensor *out, double **host)
{
    int64_t n = em_tensor_numel(out), shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(out, shape);
    *host = malloc((size_t)(n > 0 ? n : 1) * sizeof **host);
    for (int64_t i = 0; i < n; i++) (*host)[i] = tu_uniform(-1.0, 1.0);
    return em_tensor_from_data(*host, EM_F64, nd, shape, em_tensor_device(out));
}

/* x with element j replaced: a fresh f64 tensor like x (no grad). */
static TU_UNUSED em_tensor *gc_perturbed(const em_tensor *x, const double *v, int64_t j, double d)
{
    int64_t n = em_tensor_numel(x), shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(x, shape);
    double *w = malloc((size_t)(n > 0 ? n : 1) * sizeof *w);
    memcpy(w, v, (size_t)n * sizeof *w);
    w[j] += d;
    em_tensor *t = em_tensor_from_data(w, EM_F64, nd, shape, em_tensor_device(x));
    free(w);
    return t;
}

/* sum(f(in) * W) on the host, grad mode off. NAN on failure. */
static TU_UNUSED double gc_loss(gc_fn f, void *ctx, int n, em_tensor *const *in, const double *w)
{
    bool prev = em_set_grad_enabled(false);
    em_scope_begin();
    em_tensor *out = f(in, ctx);
    double s = NAN, *v = out ? gc_read(out) : NULL;
    if (v) {
        s = 0;
        for (int64_t i = 0; i < em_tensor_numel(out); i++) s += v[i] * w[i];
        free(v);
    }
    em_scope_end();
    em_set_grad_enabled(prev);
    (void)n;
    return s;
}

static TU_UNUSED bool gc_close(double a, double b, double *worst)
{
    double err = fabs(a - b);
    if (err > *worst || isnan(err)) *worst = isnan(err) ? INFINITY : err;
    return err <= 1e-5 + 1e-3 * fabs(b);
}

/* A scalar function of the inputs, differentiated numerically by
 * gc_compare: the weighted loss (gradcheck) or the weighted gradient
 * (gradgradcheck). */
typedef struct gc_objective {
    double (*eval)(const struct gc_objective *o, em_tensor *const *args);
    gc_fn f;
    void *ctx;
    int n;
    const double *w;        /* gradcheck: the output weights     */
    em_tensor *W;           /* gradgradcheck: the output weights */
    double *const *V;       /* gradgradcheck: the grad weights   */
} gc_objective;

/* Compares analytic[i] (NULL = zero) with central differences of the
 * objective over every element of every input; prints the first mismatch. */
static TU_UNUSED bool gc_compare(const char *label, int n, em_tensor *const *in,
                                 em_tensor *const *analytic, const gc_objective *obj,
                                 double *worst, int64_t *checked)
{
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        double *x = gc_read(in[i]);
        double *ga = analytic[i] ? gc_read(analytic[i]) : NULL;
        int64_t ne = em_tensor_numel(in[i]);
        for (int64_t j = 0; j < ne; j++) {
            em_tensor *args[GC_MAX_INPUTS];
            for (int k = 0; k < n; k++) args[k] = in[k];
            em_scope_begin();
            args[i] = gc_perturbed(in[i], x, j, 1e-6);
            double fp = obj->eval(obj, args);
            args[i] = gc_perturbed(in[i], x, j, -1e-6);
            double fm = obj->eval(obj, args);
            em_scope_end();
            double num = (fp - fm) / 2e-6, ana = ga ? ga[j] : 0.0;
            (*checked)++;
            if (!gc_close(ana, num, worst)) {
                if (ok)
                    printf("  %s: input %d element %lld: analytic %.10g, numeric %.10g\n", label,
                           i, (long long)j, ana, num);
                ok = false;
            }
        }
        free(x);
        free(ga);
    }
    return ok;
}

static TU_UNUSED double gc_obj_loss(const gc_objective *o, em_tensor *const *args)
{
    return gc_loss(o->f, o->ctx, o->n, args, o->w);
}

static TU_UNUSED bool gradcheck(const char *label, gc_fn f, void *ctx, int n, em_tensor *const *in)
{
    bool ok = true;
    double worst = 0, *w = NULL;
    int64_t checked = 0;
    em_scope_begin();
    em_tensor *out = f(in, ctx);
    em_tensor *W = out ? gc_weights(out, &w) : NULL;
    em_tensor *grads[GC_MAX_INPUTS] = {0};
    em_status st = W ? em_autograd_grad(1, (const em_tensor *const[]){out},
                                        (const em_tensor *const[]){W}, n,
                                        (const em_tensor *const *)in, grads, false, false, true)
                     : EM_ERR_INTERNAL;
    if (st != EM_OK) {
        tu_report_fail(__FILE__, __LINE__, "gradcheck %s: forward/backward failed", label);
        ok = false;
        goto done;
    }
    {
        gc_objective obj = {gc_obj_loss, f, ctx, n, w, NULL, NULL};
        ok = gc_compare(label, n, in, grads, &obj, &worst, &checked);
    }
done:
    CHECKF(ok, "gradcheck %s", label);
    printf("gradcheck %-40s %s  max |err| %.2e over %lld elements\n", label, ok ? "ok  " : "FAIL",
           worst, (long long)checked);
    free(w);
    em_scope_end();
    em_clear_error();
    return ok;
}

/* S = sum_i <grad_i, V_i> for the first-order grads at `in`; with
 * create_graph its gradient is returned in gg (analytic second order). */
static TU_UNUSED double gc_grad_dot(gc_fn f, void *ctx, int n, em_tensor *const *in,
                                    em_tensor *W, double *const *V, em_tensor **gg)
{
    double s = NAN;
    em_scope_begin();
    em_tensor *out = f(in, ctx);
    em_tensor *grads[GC_MAX_INPUTS] = {0};
    if (!out || em_autograd_grad(1, (const em_tensor *const[]){out}, (const em_tensor *const[]){W},
                                 n, (const em_tensor *const *)in, grads, false, gg != NULL,
                                 true) != EM_OK)
        goto done;
    s = 0;
    em_tensor *S = NULL;
    for (int i = 0; i < n; i++) {
        if (!grads[i]) continue;
        double *g = gc_read(grads[i]);
        int64_t ne = em_tensor_numel(grads[i]), shape[EM_MAX_DIMS];
        for (int64_t j = 0; j < ne; j++) s += g[j] * V[i][j];
        free(g);
        if (gg) {
            int nd = em_tensor_shape(grads[i], shape);
            em_tensor *Vi = em_tensor_from_data(V[i], EM_F64, nd, shape, tu_dev);
            em_tensor *term = em_sum(em_mul(grads[i], Vi), NULL, 0, false);
            S = S ? em_add(S, term) : term;
        }
    }
    if (gg) {
        for (int i = 0; i < n; i++) gg[i] = NULL;
        if (S && em_requires_grad(S)) {
            if (em_autograd_grad(1, (const em_tensor *const[]){S}, NULL, n,
                                 (const em_tensor *const *)in, gg, false, false, true) != EM_OK)
                s = NAN;
            for (int i = 0; i < n; i++)
                if (gg[i]) em_scope_keep(gg[i]);
        }
    }
done:
    em_scope_end();
    return s;
}

/* The weighted first-order gradient at args (which must require grad). */
static TU_UNUSED double gc_obj_grad_dot(const gc_objective *o, em_tensor *const *args)
{
    for (int k = 0; k < o->n; k++) em_requires_grad_(args[k], true);
    return gc_grad_dot(o->f, o->ctx, o->n, args, o->W, o->V, NULL);
}

static TU_UNUSED bool gradgradcheck(const char *label, gc_fn f, void *ctx, int n,
                                    em_tensor *const *in)
{
    bool ok = true;
    double worst = 0, *w = NULL, *V[GC_MAX_INPUTS] = {0};
    int64_t checked = 0;
    em_scope_begin();
    em_tensor *out = f(in, ctx);
    em_tensor *W = out ? gc_weights(out, &w) : NULL;
    for (int i = 0; i < n; i++) {
        int64_t ne = em_tensor_numel(in[i]);
        V[i] = malloc((size_t)(ne > 0 ? ne : 1) * sizeof **V);
        for (int64_t j = 0; j < ne; j++) V[i][j] = tu_uniform(-1.0, 1.0);
    }
    em_tensor *gg[GC_MAX_INPUTS] = {0};
    double s0 = W ? gc_grad_dot(f, ctx, n, in, W, V, gg) : NAN;
    if (isnan(s0)) {
        tu_report_fail(__FILE__, __LINE__, "gradgradcheck %s: create_graph pass failed", label);
        ok = false;
        goto done;
    }
    {
        gc_objective obj = {gc_obj_grad_dot, f, ctx, n, NULL, W, V};
        ok = gc_compare(label, n, in, gg, &obj, &worst, &checked);
    }
done:
    CHECKF(ok, "gradgradcheck %s", label);
    printf("gradgradcheck %-36s %s  max |err| %.2e over %lld elements\n", label,
           ok ? "ok  " : "FAIL", worst, (long long)checked);
    free(w);
    for (int i = 0; i < n; i++) free(V[i]);
    em_scope_end();
    em_clear_error();
    return ok;
}

#endif /* EMBER_GRADCHECK_H */
