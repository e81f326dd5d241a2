/*
 * test_nn_losses.c — the losses of api/ember_nn.h (nn/loss.c):
 *   - values against double-precision formulas computed here, in f32 and
 *     f64, for every reduction: cross_entropy on [N, C], [C] (0-d target),
 *     [N, C, d] (K-dim), i32 and i64 targets, ignore_index (-100 and a
 *     valid class), label smoothing, both together, class-probability
 *     targets with and without smoothing; nll_loss; mse, l1, bce (with the
 *     -100 log clamp at p = 0 and 1) and bce_with_logits (logits up to
 *     +-1000 stay finite);
 *   - the same against numbers PyTorch 1.13 printed (script below);
 *   - gradients: gradcheck (f64 central differences) of every loss and
 *     reduction, exact gradient values (bce_with_logits 0.5 - y at x = 0,
 *     a torch-printed cross_entropy gradient with ignore_index and label
 *     smoothing);
 *   - f16/bf16 inputs run (loose tolerance); all targets ignored gives NaN
 *     with MEAN (as torch);
 *   - errors: NULL arguments, shapes (both named in the message), dtypes,
 *     out-of-range targets (EM_ERR_INDEX), bad reduction and smoothing.
 *
 * The PyTorch numbers came from (torch 1.13, /usr/bin/python3):
 *   import torch, torch.nn.functional as F
 *   d = torch.float64
 *   L = torch.tensor([[0.5,-1.25,2.0,0.0,1.5],[3.0,0.25,-0.5,-2.0,1.0],
 *                     [-1.0,-1.5,0.75,2.5,0.125]], dtype=d)
 *   T = torch.tensor([1,0,4]); Ti = torch.tensor([1,-100,4])
 *   for r in ['mean','sum','none']:
 *       F.cross_entropy(L,T,reduction=r); F.cross_entropy(L,Ti,reduction=r)
 *       F.cross_entropy(L,T,reduction=r,label_smoothing=0.1)
 *       F.cross_entropy(L,Ti,reduction=r,label_smoothing=0.1)
 *   Lg = L.clone().requires_grad_()
 *   F.cross_entropy(Lg,Ti,label_smoothing=0.1).backward(); Lg.grad
 *   F.cross_entropy(L[0], torch.tensor(2))
 *   K = torch.tensor([[[0.5,-1.0],[2.0,0.25],[-0.75,1.5]],
 *                     [[1.0,0.0],[-2.0,3.0],[0.5,0.5]]], dtype=d)
 *   TK = torch.tensor([[2,0],[1,-100]]); F.cross_entropy(K,TK) (mean, none)
 *   P = torch.tensor([[0.2,0.3,0.5],[1.0,0.0,0.0]], dtype=d)
 *   F.cross_entropy(L[:2,:3],P,label_smoothing=0.2)
 *   F.cross_entropy(L[:2,:3],P,reduction='none')
 *   LP = F.log_softmax(L,1); F.nll_loss(LP,torch.tensor([3,2,-100]))
 *   F.nll_loss(LP,torch.tensor([3,7,0]),ignore_index=7,reduction='sum')
 *   a = torch.tensor([0.5,-1.0,2.0,3.5],dtype=d); b = torch.tensor([1.0,-3.0,2.0,0.0],dtype=d)
 *   F.mse_loss(a,b); F.l1_loss(a,b); F.mse_loss(a,b,reduction='sum')
 *   pr = torch.tensor([0.0,1.0,0.25,0.9,1e-50],dtype=d)
 *   y = torch.tensor([1.0,0.0,0.5,1.0,0.0],dtype=d)
 *   F.binary_cross_entropy(pr,y,reduction='none')
 *   x = torch.tensor([-1000.0,-30.0,0.0,30.0,1000.0,2.5],dtype=d)
 *   yl = torch.tensor([0.0,1.0,0.5,0.0,1.0,0.25],dtype=d)
 *   F.binary_cross_entropy_with_logits(x,yl,reduction='none')
 *   xg = x.clone().requires_grad_()
 *   F.binary_cross_entropy_with_logits(xg,yl,reduction='sum').backward(); xg.grad
 */
#include "ember_nn.h"
#include "gradcheck.h"

#include <string.h>

static const em_reduction reductions[3] = {EM_REDUCTION_MEAN, EM_REDUCTION_SUM,
                                           EM_REDUCTION_NONE};
static const char *const red_names[3] = {"mean", "sum", "none"};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static em_tensor *f64_tensor(const double *v, int ndim, const int64_t *shape)
{
    return em_tensor_from_data(v, EM_F64, ndim, shape, tu_dev);
}

static em_tensor *int_tensor(const int64_t *v, em_dtype dt, int ndim, const int64_t *shape)
{
    int64_t n = tu_numel(ndim, shape);
    if (dt == EM_I64) return em_tensor_from_data(v, EM_I64, ndim, shape, tu_dev);
    int32_t buf[256];
    for (int64_t i = 0; i < n; i++) buf[i] = (int32_t)v[i];
    return em_tensor_from_data(buf, EM_I32, ndim, shape, tu_dev);
}

/* Reduces per-element reference values as the loss does: MEAN divides by
 * `count` (the number of entries that count), SUM adds, NONE keeps. Writes
 * the reference to out and its shape to (*nd, shape). */
static void ref_reduce(const double *per, int64_t n, double count, em_reduction r, double *out,
                       int *nd, int64_t *shape, int per_nd, const int64_t *per_shape)
{
    if (r == EM_REDUCTION_NONE) {
        memcpy(out, per, (size_t)n * sizeof *out);
        *nd = per_nd;
        memcpy(shape, per_shape, (size_t)per_nd * sizeof *shape);
        return;
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += per[i];
    out[0] = r == EM_REDUCTION_SUM ? s : s / count;
    *nd = 0;
}

static tu_tol tol_for(em_dtype d)
{
    return d == EM_F64 ? (tu_tol){1e-12, 1e-12, 4} : (tu_tol){1e-5, 1e-5, 8};
}

/* Compares a 0-d or small result against values printed by torch. */
static void check_values(const char *label, em_tensor *t, const double *want, int64_t n,
                         double tol)
{
    CHECKF(t != NULL, "%s: NULL result", label);
    if (!t) {
        em_clear_error();
        return;
    }
    CHECKF(em_tensor_numel(t) == n, "%s: numel %lld, want %lld", label,
           (long long)em_tensor_numel(t), (long long)n);
    if (em_tensor_numel(t) != n) return;
    double *g = tu_read(t);
    if (!g) return;
    double worst = 0;
    int bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(g[i] - want[i]);
        if (e > worst) worst = e;
        if (!(e <= tol * (1 + fabs(want[i]))) && bad < 0) bad = (int)i;
    }
    CHECKF(bad < 0, "%s: element %d got %.17g want %.17g", label, bad, bad >= 0 ? g[bad] : 0,
           bad >= 0 ? want[bad] : 0);
    printf("%-44s max |err| %.2e %s\n", label, worst, bad < 0 ? "ok" : "FAIL");
    free(g);
}

/* ------------------------------------------------------------------------ */
/* cross_entropy / nll_loss against double formulas                          */
/* ------------------------------------------------------------------------ */

/* Reference cross-entropy for logits [N, C, D] (D = 1 for [N, C]) laid out
 * row-major, integer targets [N, D]. log_softmax_input false: x are already
 * log-probabilities (nll_loss). Writes per-element losses, returns the
 * number of entries not ignored. */
static double ref_ce(const double *x, const int64_t *t, int64_t N, int64_t C, int64_t D,
                     int64_t ignore, double eps, bool log_softmax_input, double *per)
{
    double count = 0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t d = 0; d < D; d++) {
            int64_t k = t[n * D + d];
            if (k == ignore) {
                per[n * D + d] = 0;
                continue;
            }
            count++;
            double mx = -INFINITY, lse = 0, sum_lp = 0;
            if (log_softmax_input) {
                for (int64_t c = 0; c < C; c++) mx = fmax(mx, x[(n * C + c) * D + d]);
                for (int64_t c = 0; c < C; c++) lse += exp(x[(n * C + c) * D + d] - mx);
                lse = mx + log(lse);
            } else {
                lse = 0;
            }
            for (int64_t c = 0; c < C; c++) sum_lp += x[(n * C + c) * D + d] - lse;
            double nll = -(x[(n * C + k) * D + d] - lse);
            per[n * D + d] = (1 - eps) * nll + eps * (-sum_lp) / (double)C;
        }
    }
    return count;
}

static void test_ce_random(void)
{
    const em_dtype dts[2] = {EM_F32, EM_F64};
    for (int di = 0; di < 2; di++) {
        em_dtype dt = dts[di];
        for (int kdim = 0; kdim < 3; kdim++) { /* [N,C], [N,C,3], [C] */
            for (int tdt = 0; tdt < 2; tdt++) {
                for (int variant = 0; variant < 4; variant++) {
                    /* variant: 0 plain, 1 ignore -100, 2 ignore class 1, 3 smoothing+ignore */
                    int64_t N = kdim == 2 ? 1 : 7, C = 5, D = kdim == 1 ? 3 : 1;
                    int64_t ignore = variant == 2 ? 1 : -100;
                    double eps = variant == 3 ? 0.15 : 0.0;
                    double x[7 * 5 * 3];
                    int64_t t[7 * 3];
                    tu_fill(x, N * C * D, dt, -3, 3);
                    for (int64_t i = 0; i < N * D; i++) {
                        t[i] = tu_randint(0, C - 1);
                        if ((variant == 1 || variant == 3) && i % 3 == 1) t[i] = -100;
                    }
                    if (kdim == 2 && variant == 1) t[0] = -100; /* the only target ignored */
                    int xnd, tnd;
                    int64_t xs[3], ts[2];
                    if (kdim == 0) xnd = 2, xs[0] = N, xs[1] = C, tnd = 1, ts[0] = N;
                    else if (kdim == 1)
                        xnd = 3, xs[0] = N, xs[1] = C, xs[2] = D, tnd = 2, ts[0] = N, ts[1] = D;
                    else xnd = 1, xs[0] = C, tnd = 0;
                    double per[21], ref[21];
                    double count = ref_ce(x, t, N, C, D, ignore, eps, true, per);
                    em_scope_begin();
                    em_tensor *X = tu_upload(x, dt, xnd, xs);
                    em_tensor *T = int_tensor(t, tdt ? EM_I64 : EM_I32, tnd, ts);
                    for (int r = 0; r < 3; r++) {
                        int rnd;
                        int64_t rs[3];
                        ref_reduce(per, N * D, count, reductions[r], ref, &rnd, rs, tnd, ts);
                        char label[160];
                        snprintf(label, sizeof label,
                                 "cross_entropy %s %s target %s ignore %lld eps %g %s",
                                 tu_dt(dt), kdim == 0 ? "[7,5]" : kdim == 1 ? "[7,5,3]" : "[5]",
                                 tdt ? "i64" : "i32", (long long)ignore, eps, red_names[r]);
                        tu_compare(label, em_cross_entropy(X, T, reductions[r], ignore, eps), dt,
                                   rnd, rs, ref, tol_for(dt));
                    }
                    /* nll_loss on log-probabilities given directly (any values) */
                    count = ref_ce(x, t, N, C, D, ignore, 0.0, false, per);
                    for (int r = 0; r < 3; r++) {
                        int rnd;
                        int64_t rs[3];
                        ref_reduce(per, N * D, count, reductions[r], ref, &rnd, rs, tnd, ts);
                        char label[160];
                        snprintf(label, sizeof label,
                                 "nll_loss %s ndim %d target %s ignore %lld %s", tu_dt(dt), xnd,
                                 tdt ? "i64" : "i32", (long long)ignore, red_names[r]);
                        tu_compare(label, em_nll_loss(X, T, reductions[r], ignore), dt, rnd, rs,
                                   ref, tol_for(dt));
                    }
                    em_scope_end();
                }
            }
        }
    }
}

/* Class-probability targets: -sum_c q_c log_softmax(x)_c, q = (1-eps) t + eps/C. */
static void test_ce_probs(void)
{
    const em_dtype dts[2] = {EM_F32, EM_F64};
    for (int di = 0; di < 2; di++) {
        em_dtype dt = dts[di];
        for (int smooth = 0; smooth < 2; smooth++) {
            int64_t N = 4, C = 6, D = 2;
            double eps = smooth ? 0.3 : 0.0;
            double x[48], p[48], per[8], ref[8];
            tu_fill(x, N * C * D, dt, -2, 2);
            for (int64_t n = 0; n < N; n++)
                for (int64_t d = 0; d < D; d++) {
                    double s = 0;
                    for (int64_t c = 0; c < C; c++) s += p[(n * C + c) * D + d] = tu_uniform(0, 1);
                    for (int64_t c = 0; c < C; c++)
                        p[(n * C + c) * D + d] = tu_round(p[(n * C + c) * D + d] / s, dt);
                }
            for (int64_t n = 0; n < N; n++)
                for (int64_t d = 0; d < D; d++) {
                    double mx = -INFINITY, lse = 0, l = 0;
                    for (int64_t c = 0; c < C; c++) mx = fmax(mx, x[(n * C + c) * D + d]);
                    for (int64_t c = 0; c < C; c++) lse += exp(x[(n * C + c) * D + d] - mx);
                    lse = mx + log(lse);
                    for (int64_t c = 0; c < C; c++) {
                        double q = (1 - eps) * p[(n * C + c) * D + d] + eps / (double)C;
                        l -= q * (x[(n * C + c) * D + d] - lse);
                    }
                    per[n * D + d] = l;
                }
            em_scope_begin();
            em_tensor *X = tu_upload(x, dt, 3, (int64_t[]){N, C, D});
            em_tensor *P = tu_upload(p, dt, 3, (int64_t[]){N, C, D});
            for (int r = 0; r < 3; r++) {
                int rnd;
                int64_t rs[2];
                ref_reduce(per, N * D, (double)(N * D), reductions[r], ref, &rnd, rs, 2,
                           (int64_t[]){N, D});
                char label[128];
                snprintf(label, sizeof label, "cross_entropy probs %s [4,6,2] eps %g %s",
                         tu_dt(dt), eps, red_names[r]);
                tu_compare(label, em_cross_entropy(X, P, reductions[r], -100, eps), dt, rnd, rs,
                           ref, tol_for(dt));
            }
            em_scope_end();
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Elementwise losses against double formulas                                */
/* ------------------------------------------------------------------------ */

static double ref_mse(double a, double b) { return (a - b) * (a - b); }
static double ref_l1(double a, double b) { return fabs(a - b); }
static double ref_bce(double p, double y)
{
    double lp = fmax(log(p), -100.0), l1p = fmax(log(1 - p), -100.0);
    return -(y * lp + (1 - y) * l1p);
}
static double ref_bce_logits(double x, double y)
{
    return fmax(x, 0) - x * y + log1p(exp(-fabs(x)));
}

typedef struct elem_loss {
    const char *name;
    em_tensor *(*fn)(const em_tensor *, const em_tensor *, em_reduction);
    double (*ref)(double, double);
    double alo, ahi, blo, bhi;
} elem_loss;

static const elem_loss elem_losses[] = {
    {"mse_loss", em_mse_loss, ref_mse, -3, 3, -3, 3},
    {"l1_loss", em_l1_loss, ref_l1, -3, 3, -3, 3},
    {"bce_loss", em_bce_loss, ref_bce, 0.01, 0.99, 0, 1},
    {"bce_with_logits_loss", em_bce_with_logits_loss, ref_bce_logits, -12, 12, 0, 1},
};

static void test_elementwise_losses(void)
{
    const em_dtype dts[2] = {EM_F32, EM_F64};
    for (size_t li = 0; li < sizeof elem_losses / sizeof *elem_losses; li++) {
        const elem_loss *L = &elem_losses[li];
        for (int di = 0; di < 2; di++) {
            em_dtype dt = dts[di];
            int64_t shape[3] = {3, 4, 5}, n = 60;
            double a[60], b[60], per[60], ref[60];
            tu_fill(a, n, dt, L->alo, L->ahi);
            tu_fill(b, n, dt, L->blo, L->bhi);
            if (!strcmp(L->name, "bce_loss")) { /* the clamp: p = 0 and 1 exactly */
                a[0] = 0, b[0] = 1, a[1] = 1, b[1] = 0, a[2] = 0, b[2] = 0.5;
            }
            if (!strcmp(L->name, "bce_with_logits_loss")) { /* far outside exp's range */
                a[0] = 1000, a[1] = -1000, a[2] = 0, a[3] = 88.5, a[4] = -88.5;
            }
            for (int64_t i = 0; i < n; i++) per[i] = L->ref(a[i], b[i]);
            em_scope_begin();
            em_tensor *A = tu_upload(a, dt, 3, shape), *B = tu_upload(b, dt, 3, shape);
            for (int r = 0; r < 3; r++) {
                int rnd;
                int64_t rs[3];
                ref_reduce(per, n, (double)n, reductions[r], ref, &rnd, rs, 3, shape);
                char label[128];
                snprintf(label, sizeof label, "%s %s [3,4,5] %s", L->name, tu_dt(dt),
                         red_names[r]);
                tu_compare(label, L->fn(A, B, reductions[r]), dt, rnd, rs, ref, tol_for(dt));
            }
            em_scope_end();
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Against PyTorch                                                           */
/* ------------------------------------------------------------------------ */

static void test_against_torch(void)
{
    static const double L[15] = {0.5,  -1.25, 2.0, 0.0,  1.5, 3.0, 0.25, -0.5,
                                 -2.0, 1.0,   -1.0, -1.5, 0.75, 2.5, 0.125};
    static const int64_t T[3] = {1, 0, 4}, Ti[3] = {1, -100, 4};
    /* [reduction][plain, ignore, smoothing, both]; none has 3 values */
    static const double want[3][4][3] = {
        {{2.2687124561817034}, {3.29704822201571}, {2.29537912284837}, {3.20454822201571}},
        {{6.8061373685451105}, {6.59409644403142}, {6.886137368545111}, {6.40909644403142}},
        {{3.945030561349091, 0.21204092451369075, 2.6490658826823292},
         {3.945030561349091, 0.0, 2.6490658826823292},
         {3.765030561349091, 0.47704092451369073, 2.6440658826823293},
         {3.765030561349091, 0.0, 2.6440658826823293}}};
    em_scope_begin();
    em_tensor *X = f64_tensor(L, 2, (int64_t[]){3, 5});
    em_tensor *TT = int_tensor(T, EM_I64, 1, (int64_t[]){3});
    em_tensor *TI = int_tensor(Ti, EM_I64, 1, (int64_t[]){3});
    for (int r = 0; r < 3; r++) {
        for (int v = 0; v < 4; v++) {
            char label[96];
            snprintf(label, sizeof label, "torch cross_entropy %s %s", red_names[r],
                     (const char *[]){"plain", "ignore", "smoothing", "ignore+smoothing"}[v]);
            check_values(label,
                         em_cross_entropy(X, v & 1 ? TI : TT, reductions[r], -100,
                                          v & 2 ? 0.1 : 0.0),
                         want[r][v], r == 2 ? 3 : 1, 1e-13);
        }
    }
    /* gradient of mean cross_entropy with ignore_index and smoothing 0.1 */
    static const double grad_want[15] = {
        0.045677579144521946, -0.4503246875102822, 0.2395295979148866, 0.023770158809729255,
        0.14134735164114431,  0.0, 0.0, 0.0, 0.0, 0.0,
        0.0014792632928995134, -0.0030374748619426415, 0.05605859926389389,
        0.37014099209719387,  -0.42464137979204464};
    em_tensor *XG = f64_tensor(L, 2, (int64_t[]){3, 5});
    em_requires_grad_(XG, true);
    CHECK_OK(em_backward(em_cross_entropy(XG, TI, EM_REDUCTION_MEAN, -100, 0.1), NULL, false,
                         false));
    check_values("torch cross_entropy grad (ignore+smoothing)", em_grad(XG), grad_want, 15,
                 1e-13);

    check_values("torch cross_entropy [C], 0-d target",
                 em_cross_entropy(em_select(X, 0, 0), em_scalar_int(2), EM_REDUCTION_MEAN, -100,
                                  0.0),
                 (const double[]){0.6950305613490908}, 1, 1e-13);
    static const double K[12] = {0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 1.0, 0.0, -2.0, 3.0, 0.5, 0.5};
    static const int64_t TK[4] = {2, 0, 1, -100};
    em_tensor *XK = f64_tensor(K, 3, (int64_t[]){2, 3, 2});
    em_tensor *TKt = int_tensor(TK, EM_I64, 2, (int64_t[]){2, 2});
    check_values("torch cross_entropy [2,3,2] mean",
                 em_cross_entropy(XK, TKt, EM_REDUCTION_MEAN, -100, 0.0),
                 (const double[]){3.1069122586384545}, 1, 1e-13);
    check_values("torch cross_entropy [2,3,2] none",
                 em_cross_entropy(XK, TKt, EM_REDUCTION_NONE, -100, 0.0),
                 (const double[]){3.0023590102358226, 2.813780863337258, 3.5045969023422834, 0.0},
                 4, 1e-13);
    static const double P[6] = {0.2, 0.3, 0.5, 1.0, 0.0, 0.0};
    em_tensor *X23 = em_slice(em_narrow(X, 0, 0, 2), 1, 0, 3, 1); /* L[:2, :3], strided */
    em_tensor *PP = f64_tensor(P, 2, (int64_t[]){2, 3});
    check_values("torch cross_entropy probs mean eps 0.2",
                 em_cross_entropy(X23, PP, EM_REDUCTION_MEAN, -100, 0.2),
                 (const double[]){1.0379552485449863}, 1, 1e-13);
    check_values("torch cross_entropy probs none",
                 em_cross_entropy(X23, PP, EM_REDUCTION_NONE, -100, 0.0),
                 (const double[]){1.5076219831020325, 0.08995518065460652}, 2, 1e-13);
    em_tensor *LP = em_log_softmax(X, 1);
    check_values("torch nll_loss ignore -100 mean",
                 em_nll_loss(LP, int_tensor((const int64_t[]){3, 2, -100}, EM_I64, 1,
                                            (int64_t[]){3}),
                             EM_REDUCTION_MEAN, -100),
                 (const double[]){3.2035357429313907}, 1, 1e-13);
    check_values("torch nll_loss ignore 7 sum",
                 em_nll_loss(LP, int_tensor((const int64_t[]){3, 7, 0}, EM_I32, 1,
                                            (int64_t[]){3}),
                             EM_REDUCTION_SUM, 7),
                 (const double[]){6.46909644403142}, 1, 1e-13);
    em_tensor *a = f64_tensor((const double[]){0.5, -1.0, 2.0, 3.5}, 1, (int64_t[]){4});
    em_tensor *b = f64_tensor((const double[]){1.0, -3.0, 2.0, 0.0}, 1, (int64_t[]){4});
    check_values("torch mse_loss mean", em_mse_loss(a, b, EM_REDUCTION_MEAN),
                 (const double[]){4.125}, 1, 1e-15);
    check_values("torch mse_loss sum", em_mse_loss(a, b, EM_REDUCTION_SUM),
                 (const double[]){16.5}, 1, 1e-15);
    check_values("torch l1_loss mean", em_l1_loss(a, b, EM_REDUCTION_MEAN),
                 (const double[]){1.5}, 1, 1e-15);
    em_tensor *pr = f64_tensor((const double[]){0.0, 1.0, 0.25, 0.9, 1e-50}, 1, (int64_t[]){5});
    em_tensor *y = f64_tensor((const double[]){1.0, 0.0, 0.5, 1.0, 0.0}, 1, (int64_t[]){5});
    check_values("torch bce_loss none", em_bce_loss(pr, y, EM_REDUCTION_NONE),
                 (const double[]){100.0, 100.0, 0.8369882167858358, 0.10536051565782628, 0.0}, 5,
                 1e-14);
    em_tensor *x =
        f64_tensor((const double[]){-1000.0, -30.0, 0.0, 30.0, 1000.0, 2.5}, 1, (int64_t[]){6});
    em_tensor *yl =
        f64_tensor((const double[]){0.0, 1.0, 0.5, 0.0, 1.0, 0.25}, 1, (int64_t[]){6});
    check_values("torch bce_with_logits none", em_bce_with_logits_loss(x, yl, EM_REDUCTION_NONE),
                 (const double[]){0.0, 30.000000000000092, 0.6931471805599453, 30.000000000000092,
                                  0.0, 1.9538897342925496},
                 6, 1e-14);
    em_requires_grad_(x, true);
    CHECK_OK(em_backward(em_bce_with_logits_loss(x, yl, EM_REDUCTION_SUM), NULL, false, false));
    check_values("torch bce_with_logits grad", em_grad(x),
                 (const double[]){0.0, -0.9999999999999064, 0.0, 0.9999999999999065, 0.0,
                                  0.6741418199787566},
                 6, 1e-14);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Gradients                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct ce_ctx {
    em_tensor *target;
    em_reduction r;
    int64_t ignore;
    double eps;
    bool nll;
} ce_ctx;

static em_tensor *gc_ce(em_tensor *const *in, void *p)
{
    ce_ctx *c = p;
    if (c->nll) return em_nll_loss(in[0], c->target, c->r, c->ignore);
    return em_cross_entropy(in[0], c->target ? c->target : in[1], c->r, c->ignore, c->eps);
}

typedef struct el_ctx {
    const elem_loss *L;
    em_reduction r;
} el_ctx;

static em_tensor *gc_elem(em_tensor *const *in, void *p)
{
    el_ctx *c = p;
    return c->L->fn(in[0], in[1], c->r);
}

static void test_gradients(void)
{
    em_scope_begin();
    for (int r = 0; r < 3; r++) {
        /* cross_entropy [6,4] with ignored rows and smoothing; K-dim; nll */
        int64_t t[6] = {0, 3, -100, 2, 1, -100}, tk[6] = {1, 0, 2, -100, 3, 0};
        em_tensor *T = int_tensor(t, EM_I64, 1, (int64_t[]){6});
        em_tensor *TK = int_tensor(tk, EM_I32, 2, (int64_t[]){2, 3});
        for (int v = 0; v < 2; v++) {
            ce_ctx c = {T, reductions[r], -100, v ? 0.2 : 0.0, false};
            char label[96];
            snprintf(label, sizeof label, "cross_entropy [6,4] eps %g %s", c.eps, red_names[r]);
            em_tensor *X = gc_leaf(2, (int64_t[]){6, 4}, -2, 2);
            gradcheck(label, gc_ce, &c, 1, &X);
            c.target = TK;
            snprintf(label, sizeof label, "cross_entropy [2,4,3] eps %g %s", c.eps, red_names[r]);
            em_tensor *XK = gc_leaf(3, (int64_t[]){2, 4, 3}, -2, 2);
            gradcheck(label, gc_ce, &c, 1, &XK);
        }
        ce_ctx cn = {T, reductions[r], -100, 0.0, true};
        char label[96];
        snprintf(label, sizeof label, "nll_loss [6,4] %s", red_names[r]);
        em_tensor *LP = gc_leaf(2, (int64_t[]){6, 4}, -3, 0);
        gradcheck(label, gc_ce, &cn, 1, &LP);
        /* probability targets: gradient for logits and for the target */
        ce_ctx cp = {NULL, reductions[r], -100, 0.1, false};
        snprintf(label, sizeof label, "cross_entropy probs [3,4] %s", red_names[r]);
        em_tensor *in[2] = {gc_leaf(2, (int64_t[]){3, 4}, -2, 2),
                            gc_leaf(2, (int64_t[]){3, 4}, 0, 1)};
        gradcheck(label, gc_ce, &cp, 2, in);
        for (size_t li = 0; li < sizeof elem_losses / sizeof *elem_losses; li++) {
            const elem_loss *L = &elem_losses[li];
            el_ctx c = {L, reductions[r]};
            em_tensor *a = gc_leaf(2, (int64_t[]){3, 4}, L->alo, L->ahi);
            em_tensor *b = gc_leaf(2, (int64_t[]){3, 4}, L->blo, L->bhi);
            if (L->fn == em_l1_loss) { /* keep |a - b| away from the kink */
                double av[12], bv[12];
                em_tensor_read_f64(a, av, 12);
                for (int i = 0; i < 12; i++)
                    bv[i] = av[i] + (i % 2 ? 1 : -1) * tu_uniform(0.1, 1.0);
                b = f64_tensor(bv, 2, (int64_t[]){3, 4});
                em_requires_grad_(b, true);
            }
            snprintf(label, sizeof label, "%s [3,4] %s", L->name, red_names[r]);
            gradcheck(label, gc_elem, &c, 2, (em_tensor *[]){a, b});
        }
    }
    /* exact: bce_with_logits gradient at x = 0 is sigmoid(0) - y = 0.5 - y,
     * and bce's is (p - y) / (p (1 - p)) */
    em_tensor *x = f64_tensor((const double[]){0.0, 0.0, 0.0}, 1, (int64_t[]){3});
    em_tensor *y = f64_tensor((const double[]){0.0, 0.25, 1.0}, 1, (int64_t[]){3});
    em_requires_grad_(x, true);
    CHECK_OK(em_backward(em_bce_with_logits_loss(x, y, EM_REDUCTION_SUM), NULL, false, false));
    check_values("bce_with_logits grad at x = 0", em_grad(x),
                 (const double[]){0.5, 0.25, -0.5}, 3, 1e-15);
    em_tensor *p = f64_tensor((const double[]){0.2, 0.5, 0.9}, 1, (int64_t[]){3});
    em_requires_grad_(p, true);
    CHECK_OK(em_backward(em_bce_loss(p, y, EM_REDUCTION_SUM), NULL, false, false));
    check_values("bce grad (p - y)/(p(1-p))", em_grad(p),
                 (const double[]){0.2 / 0.16, 0.25 / 0.25, -0.1 / 0.09}, 3, 1e-13);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Half precision, all-ignored, ownership without a scope                    */
/* ------------------------------------------------------------------------ */

static void test_misc(void)
{
    em_scope_begin();
    const em_dtype halves[2] = {EM_F16, EM_BF16};
    for (int h = 0; h < 2; h++) {
        double x[12], per[3];
        int64_t t[3] = {0, 3, 1};
        tu_fill(x, 12, halves[h], -2, 2);
        double count = ref_ce(x, t, 3, 4, 1, -100, 0.0, true, per);
        double ref = (per[0] + per[1] + per[2]) / count;
        em_tensor *X = tu_upload(x, halves[h], 2, (int64_t[]){3, 4});
        char label[64];
        snprintf(label, sizeof label, "cross_entropy %s [3,4] mean", tu_dt(halves[h]));
        tu_compare(label,
                   em_cross_entropy(X, int_tensor(t, EM_I64, 1, (int64_t[]){3}),
                                    EM_REDUCTION_MEAN, -100, 0.0),
                   halves[h], 0, NULL, &ref, (tu_tol){2e-2, 2e-2, 0});
    }
    /* every target ignored: MEAN is 0/0 = NaN, SUM is 0 (torch) */
    em_tensor *X = f64_tensor((const double[]){1, 2, 3, 4}, 2, (int64_t[]){2, 2});
    em_tensor *T = int_tensor((const int64_t[]){-100, -100}, EM_I64, 1, (int64_t[]){2});
    double v = 0;
    em_tensor_item(em_cross_entropy(X, T, EM_REDUCTION_MEAN, -100, 0.0), &v);
    CHECKF(isnan(v), "all ignored, mean: got %g, want NaN", v);
    em_tensor_item(em_cross_entropy(X, T, EM_REDUCTION_SUM, -100, 0.0), &v);
    CHECKF(v == 0, "all ignored, sum: got %g, want 0", v);
    em_scope_end();

    /* no scope open: the caller owns the result; intermediates are freed */
    em_tensor *x = f64_tensor((const double[]){0.5, -0.5}, 1, (int64_t[]){2});
    em_tensor *y = f64_tensor((const double[]){1.0, 0.0}, 1, (int64_t[]){2});
    size_t before = tu_heap_in_use();
    for (int i = 0; i < 200; i++) {
        em_tensor *l = em_bce_with_logits_loss(x, y, EM_REDUCTION_MEAN);
        CHECK(l != NULL);
        em_tensor_release(l);
    }
    size_t after = tu_heap_in_use();
    CHECKF(after <= before + 4096, "200 losses without a scope: heap grew by %zu bytes",
           after - before);
    em_tensor_release(x);
    em_tensor_release(y);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static void check_msg(const char *label, const char *needle)
{
    CHECKF(strstr(em_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", label,
           em_last_error(), needle);
}

static void test_errors(void)
{
    em_scope_begin();
    em_tensor *X = f64_tensor((const double[]){1, 2, 3, 4, 5, 6}, 2, (int64_t[]){2, 3});
    em_tensor *T = int_tensor((const int64_t[]){0, 2}, EM_I64, 1, (int64_t[]){2});
    em_tensor *T3 = int_tensor((const int64_t[]){0, 2, 1}, EM_I64, 1, (int64_t[]){3});
    em_tensor *Xi = em_cast(X, EM_I64);
    em_tensor *Tb = em_cast(T, EM_BOOL);

    CHECK_FAILS(em_cross_entropy(NULL, T, EM_REDUCTION_MEAN, -100, 0), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_cross_entropy(X, NULL, EM_REDUCTION_MEAN, -100, 0), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_nll_loss(NULL, T, EM_REDUCTION_MEAN, -100), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_mse_loss(X, NULL, EM_REDUCTION_MEAN), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_l1_loss(NULL, X, EM_REDUCTION_MEAN), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_bce_loss(NULL, X, EM_REDUCTION_MEAN), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_bce_with_logits_loss(X, NULL, EM_REDUCTION_MEAN), EM_ERR_NULL_ARG);

    /* first-error rule: a failed op feeding the loss keeps its own error */
    em_clear_error();
    em_tensor *bad = em_cross_entropy(em_matmul(X, X), T, EM_REDUCTION_MEAN, -100, 0);
    CHECK(bad == NULL && em_last_status() == EM_ERR_SHAPE);
    em_clear_error();

    em_clear_error();
    CHECK(em_cross_entropy(X, T3, EM_REDUCTION_MEAN, -100, 0) == NULL);
    CHECK(em_last_status() == EM_ERR_SHAPE);
    check_msg("ce target shape", "i64[3]");
    check_msg("ce target shape", "f64[2,3]");
    check_msg("ce target shape", "[2]");
    em_clear_error();
    CHECK_FAILS(em_cross_entropy(Xi, T, EM_REDUCTION_MEAN, -100, 0), EM_ERR_DTYPE);
    CHECK_FAILS(em_cross_entropy(X, Tb, EM_REDUCTION_MEAN, -100, 0), EM_ERR_DTYPE);
    CHECK_FAILS(em_cross_entropy(X, em_cast(T3, EM_F64), EM_REDUCTION_MEAN, -100, 0),
                EM_ERR_SHAPE); /* floating target = probabilities: needs [2,3] */
    CHECK_FAILS(em_nll_loss(X, em_cast(T, EM_F64), EM_REDUCTION_MEAN, -100), EM_ERR_DTYPE);
    CHECK_FAILS(em_cross_entropy(em_scalar(1.0), em_scalar_int(0), EM_REDUCTION_MEAN, -100, 0),
                EM_ERR_SHAPE);
    CHECK_FAILS(em_cross_entropy(em_zeros(EM_F32, EM_SHAPE(2, 0), tu_dev), T, EM_REDUCTION_MEAN,
                                 -100, 0),
                EM_ERR_SHAPE);
    em_clear_error();
    CHECK(em_cross_entropy(X, int_tensor((const int64_t[]){0, 3}, EM_I64, 1, (int64_t[]){2}),
                           EM_REDUCTION_MEAN, -100, 0) == NULL);
    CHECK(em_last_status() == EM_ERR_INDEX);
    check_msg("ce target out of range", "out of range [0, 3)");
    em_clear_error();
    CHECK_FAILS(em_cross_entropy(X, int_tensor((const int64_t[]){-1, 0}, EM_I64, 1,
                                               (int64_t[]){2}),
                                 EM_REDUCTION_SUM, -100, 0),
                EM_ERR_INDEX);
    CHECK_FAILS(em_cross_entropy(X, T, EM_REDUCTION_MEAN, -100, 1.5), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_cross_entropy(X, T, EM_REDUCTION_MEAN, -100, -0.1), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_cross_entropy(X, T, EM_REDUCTION_MEAN, -100, NAN), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_cross_entropy(X, T, (em_reduction)7, -100, 0), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_mse_loss(X, X, (em_reduction)-1), EM_ERR_INVALID_ARG);

    em_tensor *Y = f64_tensor((const double[]){1, 2, 3}, 1, (int64_t[]){3});
    em_clear_error();
    CHECK(em_mse_loss(X, Y, EM_REDUCTION_MEAN) == NULL);
    CHECK(em_last_status() == EM_ERR_SHAPE);
    check_msg("mse shapes", "f64[2,3]");
    check_msg("mse shapes", "f64[3]");
    em_clear_error();
    CHECK_FAILS(em_l1_loss(X, Y, EM_REDUCTION_SUM), EM_ERR_SHAPE);
    CHECK_FAILS(em_bce_loss(X, Y, EM_REDUCTION_SUM), EM_ERR_SHAPE);
    CHECK_FAILS(em_bce_with_logits_loss(X, Y, EM_REDUCTION_SUM), EM_ERR_SHAPE);
    CHECK_FAILS(em_mse_loss(Xi, X, EM_REDUCTION_MEAN), EM_ERR_DTYPE);
    CHECK_FAILS(em_bce_loss(X, Xi, EM_REDUCTION_MEAN), EM_ERR_DTYPE);
    CHECK_FAILS(em_bce_with_logits_loss(X, Xi, EM_REDUCTION_MEAN), EM_ERR_DTYPE);
    em_scope_end();
}

int main(void)
{
    tu_init("test_nn_losses");
    test_ce_random();
    test_ce_probs();
    test_elementwise_losses();
    test_against_torch();
    test_gradients();
    test_misc();
    test_errors();
    return tu_finish();
}
