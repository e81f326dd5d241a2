/*
 * test_reduce.c — reductions against double-precision references: sum, mean,
 * max, min, argmax, argmin, var and std (biased and unbiased), logsumexp over
 * one, several and all dims with and without keepdim, on every layout; and
 * softmax / log_softmax (including numerically large inputs).
 * Not for the error paths of reductions beyond "empty max" (test_errors.c).
 */
#include "test_util.h"

/* ------------------------------------------------------------------------ */
/* Grouping helper: the values that reduce into each output element          */
/* ------------------------------------------------------------------------ */

typedef struct groups {
    int64_t nout, gsize;
    double *g; /* nout * gsize values, group o at g + o * gsize */
    int ondim;  /* output ndim */
    int64_t oshape[EM_MAX_DIMS];
} groups;

/* Groups vals (shape nd, sh) by the dims in red[] (1 = reduced). */
static groups make_groups(const double *vals, int nd, const int64_t *sh, const int *red,
                          int keepdim)
{
    groups G;
    G.ondim = 0;
    G.gsize = 1;
    G.nout = 1;
    for (int i = 0; i < nd; i++) {
        if (red[i]) {
            G.gsize *= sh[i];
            if (keepdim) G.oshape[G.ondim++] = 1;
        } else {
            G.nout *= sh[i];
            G.oshape[G.ondim++] = sh[i];
        }
    }
    G.g = malloc(sizeof(double) * (size_t)(G.nout * G.gsize + 1));
    int64_t n = tu_numel(nd, sh), idx[EM_MAX_DIMS];
    for (int64_t f = 0; f < n; f++) {
        tu_unravel(f, nd, sh, idx);
        int64_t o = 0, k = 0;
        for (int i = 0; i < nd; i++) {
            if (red[i]) k = k * sh[i] + idx[i];
            else o = o * sh[i] + idx[i];
        }
        G.g[o * G.gsize + k] = vals[f];
    }
    return G;
}

/* ------------------------------------------------------------------------ */
/* References                                                                */
/* ------------------------------------------------------------------------ */

static double r_sum(const double *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}
static double r_sumabs(const double *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs(x[i]);
    return s;
}
static double r_mean(const double *x, int64_t n) { return n ? r_sum(x, n) / (double)n : NAN; }
static double r_meanabs(const double *x, int64_t n) { return n ? r_sumabs(x, n) / (double)n : 0; }
static double r_max(const double *x, int64_t n)
{
    double m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) return NAN;
        if (x[i] > m) m = x[i];
    }
    return m;
}
static double r_min(const double *x, int64_t n)
{
    double m = INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) return NAN;
        if (x[i] < m) m = x[i];
    }
    return m;
}
static double r_maxabs(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}
static double r_argmax(const double *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (double)b;
}
static double r_argmin(const double *x, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] < x[b]) b = i;
    return (double)b;
}
static double var_impl(const double *x, int64_t n, int unbiased)
{
    double m = r_mean(x, n), s = 0;
    for (int64_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    double den = (double)n - (unbiased ? 1.0 : 0.0);
    return den > 0 ? s / den : NAN;
}
static double r_var_u(const double *x, int64_t n) { return var_impl(x, n, 1); }
static double r_var_b(const double *x, int64_t n) { return var_impl(x, n, 0); }
static double r_std_u(const double *x, int64_t n) { return sqrt(var_impl(x, n, 1)); }
static double r_std_b(const double *x, int64_t n) { return sqrt(var_impl(x, n, 0)); }
static double r_meansq(const double *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
    return n ? s / (double)n : 0;
}
static double r_rms(const double *x, int64_t n) { return sqrt(r_meansq(x, n)); }
static double r_lse(const double *x, int64_t n)
{
    double m = r_max(x, n);
    if (n == 0) return -INFINITY;
    if (isinf(m)) return m;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += exp(x[i] - m);
    return m + log(s);
}

/* ------------------------------------------------------------------------ */
/* The reduction table                                                       */
/* ------------------------------------------------------------------------ */

typedef em_tensor *(*red_fn)(const em_tensor *, const int *, int, bool);
typedef double (*red_ref)(const double *, int64_t);

static em_tensor *f_var_u(const em_tensor *t, const int *d, int n, bool k) { return em_var(t, d, n, true, k); }
static em_tensor *f_var_b(const em_tensor *t, const int *d, int n, bool k) { return em_var(t, d, n, false, k); }
static em_tensor *f_std_u(const em_tensor *t, const int *d, int n, bool k) { return em_std(t, d, n, true, k); }
static em_tensor *f_std_b(const em_tensor *t, const int *d, int n, bool k) { return em_std(t, d, n, false, k); }

enum { RD_SAME, RD_I64_FOR_INT }; /* result dtype rule */
enum { DT_ALL, DT_FLOAT };

typedef struct redop {
    const char *name;
    red_fn fn;
    red_ref ref;
    red_ref scale; /* magnitude for the tolerance; NULL = |ref| */
    int rdt;
    int dts;
    int exact;     /* comparisons are exact (max/min) */
    int empty_ok;  /* an empty group has a value */
    double lo, hi;
} redop;

static const redop redops[] = {
    {"sum", em_sum, r_sum, r_sumabs, RD_I64_FOR_INT, DT_ALL, 0, 1, -2, 2},
    {"mean", em_mean, r_mean, r_meanabs, RD_SAME, DT_FLOAT, 0, 1, -2, 2},
    {"max", em_max, r_max, NULL, RD_SAME, DT_ALL, 1, 0, -50, 50},
    {"min", em_min, r_min, NULL, RD_SAME, DT_ALL, 1, 0, -50, 50},
    {"var(unbiased)", f_var_u, r_var_u, r_meansq, RD_SAME, DT_FLOAT, 0, 0, -3, 3},
    {"var(biased)", f_var_b, r_var_b, r_meansq, RD_SAME, DT_FLOAT, 0, 0, -3, 3},
    {"std(unbiased)", f_std_u, r_std_u, r_rms, RD_SAME, DT_FLOAT, 0, 0, -3, 3},
    {"std(biased)", f_std_b, r_std_b, r_rms, RD_SAME, DT_FLOAT, 0, 0, -3, 3},
    {"logsumexp", em_logsumexp, r_lse, r_maxabs, RD_SAME, DT_FLOAT, 0, 0, -5, 5},
};
#define N_REDOPS (int)(sizeof redops / sizeof redops[0])

static tu_tol red_tol(const redop *op, em_dtype rd)
{
    tu_tol t = {0, 0, 0};
    if (op->exact || !tu_is_float(rd)) return t;
    switch (rd) {
    case EM_F64: t.atol = 1e-13; t.rtol = 1e-12; break;
    case EM_F32: t.atol = 1e-6; t.rtol = 1e-5; break;
    case EM_F16: t.atol = 1e-4; t.rtol = 1e-3; t.ulps = 2; break;
    default: t.atol = 1e-3; t.rtol = 8e-3; t.ulps = 2; break;
    }
    return t;
}

typedef struct rcase {
    int nd;
    int64_t sh[EM_MAX_DIMS];
    int ndims; /* 0 = all */
    int dims[EM_MAX_DIMS];
} rcase;

static const rcase rcases[] = {
    {3, {3, 4, 5}, 0, {0}},
    {3, {3, 4, 5}, 1, {0}},
    {3, {3, 4, 5}, 1, {1}},
    {3, {3, 4, 5}, 1, {-1}},
    {3, {3, 4, 5}, 2, {0, 2}},
    {3, {3, 4, 5}, 2, {-1, 1}},
    {3, {3, 4, 5}, 3, {0, 1, 2}},
    {1, {7}, 1, {0}},
    {1, {7}, 0, {0}},
    {0, {0}, 0, {0}},
    {0, {0}, 1, {0}},
    {3, {2, 1, 3}, 1, {1}},
    {1, {1}, 1, {0}},
    {2, {0, 3}, 1, {0}},
    {2, {0, 3}, 1, {1}},
    {2, {33, 65}, 1, {1}},
    {2, {33, 65}, 1, {0}},
    {2, {4, 1000}, 1, {-1}},
    {4, {2, 3, 4, 5}, 2, {1, 3}},
    {8, {2, 1, 3, 2, 1, 2, 3, 2}, 3, {0, 3, -1}},
    {8, {2, 1, 3, 2, 1, 2, 3, 2}, 0, {0}},
    /* above the CPU backend's parallel grain */
    {2, {300, 257}, 1, {0}},
    {2, {300, 257}, 1, {1}},
    {2, {300, 257}, 0, {0}},
    {3, {40, 50, 60}, 2, {0, 2}},
};
#define N_RCASES (int)(sizeof rcases / sizeof rcases[0])

static void case_label(char *buf, size_t cap, const char *name, em_dtype d, const rcase *c,
                       int keepdim, int lay)
{
    char sb[64], db[64];
    size_t u = 0;
    if (c->ndims == 0) snprintf(db, sizeof db, "all");
    else {
        u += (size_t)snprintf(db + u, sizeof db - u, "{");
        for (int i = 0; i < c->ndims; i++)
            u += (size_t)snprintf(db + u, sizeof db - u, i ? ",%d" : "%d", c->dims[i]);
        snprintf(db + u, sizeof db - u, "}");
    }
    snprintf(buf, cap, "%s %s %s dims=%s keepdim=%d %s", name, tu_dt(d),
             tu_shape_str(c->nd, c->sh, sb, sizeof sb), db, keepdim, tu_layout_names[lay]);
}

static void run_reduction(const redop *op, em_dtype d, const rcase *c, int keepdim, int lay)
{
    int red[EM_MAX_DIMS] = {0};
    if (c->ndims == 0) {
        for (int i = 0; i < c->nd; i++) red[i] = 1;
    } else {
        for (int i = 0; i < c->ndims; i++) {
            int k = c->dims[i] < 0 ? c->dims[i] + (c->nd ? c->nd : 1) : c->dims[i];
            if (c->nd) red[k] = 1;
        }
    }
    int64_t gs = 1;
    for (int i = 0; i < c->nd; i++) if (red[i]) gs *= c->sh[i];
    if (gs == 0 && !op->empty_ok) return; /* tested as an error in test_errors.c */
    int64_t n = tu_numel(c->nd, c->sh);
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    tu_fill(v, n, d, op->lo, op->hi);
    em_tensor *t = tu_make(v, d, c->nd, c->sh, lay);
    groups G = make_groups(v, c->nd, c->sh, red, keepdim);
    em_dtype rd = (op->rdt == RD_I64_FOR_INT && !tu_is_float(d)) ? EM_I64 : d;
    double *ref = malloc(sizeof(double) * (size_t)(G.nout + 1));
    double *scale = malloc(sizeof(double) * (size_t)(G.nout + 1));
    for (int64_t o = 0; o < G.nout; o++) {
        ref[o] = tu_round(op->ref(G.g + o * G.gsize, G.gsize), rd);
        scale[o] = op->scale ? op->scale(G.g + o * G.gsize, G.gsize) : 0;
    }
    em_clear_error();
    em_tensor *r = t ? op->fn(t, c->ndims ? c->dims : NULL, c->ndims, keepdim) : NULL;
    char label[256];
    case_label(label, sizeof label, op->name, d, c, keepdim, lay);
    tu_compare_scaled(label, r, rd, G.ondim, G.oshape, ref, scale, red_tol(op, rd), 1);
    em_tensor_release(r);
    em_tensor_release(t);
    free(G.g);
    free(ref);
    free(scale);
    free(v);
}

static void test_reductions(void)
{
    for (int o = 0; o < N_REDOPS; o++) {
        const redop *op = &redops[o];
        int ndt = op->dts == DT_ALL ? 7 : 4;
        for (int di = 0; di < ndt; di++)
            for (int c = 0; c < N_RCASES; c++)
                for (int k = 0; k < 2; k++)
                    for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++) {
                        /* large cases: one keepdim and layout per dtype keep the run short */
                        if (tu_numel(rcases[c].nd, rcases[c].sh) > 10000 &&
                            (k != (di & 1) || lay != (di + c) % TU_LAYOUT_COUNT))
                            continue;
                        run_reduction(op, tu_all_dtypes[di], &rcases[c], k, lay);
                    }
    }
}

/* Unbiased variance of one element is NaN (division by zero), as torch. */
static void test_var_single(void)
{
    double v[3] = {1, 2, 3};
    int64_t sh[2] = {3, 1};
    em_tensor *t = tu_make(v, EM_F32, 2, sh, TU_CONTIG);
    int d1[1] = {1};
    em_tensor *r = em_var(t, d1, 1, true, false);
    double nan3[3] = {NAN, NAN, NAN}, zero3[3] = {0, 0, 0};
    int64_t s3[1] = {3};
    tu_compare_exact("var(unbiased) f32 [3,1] dims={1} (N-1 = 0) is NaN", r, EM_F32, 1, s3, nan3);
    em_tensor_release(r);
    r = em_var(t, d1, 1, false, false);
    tu_compare_exact("var(biased) f32 [3,1] dims={1} is 0", r, EM_F32, 1, s3, zero3);
    em_tensor_release(r);
    em_tensor_release(t);
}

/* NaN propagates through max/min/sum. */
static void test_reduce_nan(void)
{
    double v[6] = {1, NAN, 3, 4, 5, 6};
    int64_t sh[2] = {2, 3};
    int64_t s2[1] = {2};
    int d1[1] = {1};
    em_tensor *t = tu_make(v, EM_F32, 2, sh, TU_CONTIG);
    double rmax[2] = {NAN, 6}, rmin[2] = {NAN, 4}, rsum[2] = {NAN, 15};
    em_tensor *r;
    tu_compare_exact("max f32 with NaN", r = em_max(t, d1, 1, false), EM_F32, 1, s2, rmax);
    em_tensor_release(r);
    tu_compare_exact("min f32 with NaN", r = em_min(t, d1, 1, false), EM_F32, 1, s2, rmin);
    em_tensor_release(r);
    tu_compare_exact("sum f32 with NaN", r = em_sum(t, d1, 1, false), EM_F32, 1, s2, rsum);
    em_tensor_release(r);
    em_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* argmax / argmin                                                           */
/* ------------------------------------------------------------------------ */

static void test_arg(void)
{
    static const struct { int nd; int64_t sh[3]; int dim; } cases[] = {
        {3, {3, 4, 5}, 0}, {3, {3, 4, 5}, 1}, {3, {3, 4, 5}, -1}, {3, {3, 4, 5}, EM_ALL_DIMS},
        {1, {9}, 0}, {1, {9}, EM_ALL_DIMS}, {2, {1, 6}, 0}, {2, {17, 130}, 1}, {0, {0}, EM_ALL_DIMS},
        {2, {5, 1}, 1}, {2, {300, 257}, 0}, {2, {300, 257}, -1},
    };
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64};
    for (int w = 0; w < 2; w++)
        for (int di = 0; di < 6; di++)
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
                for (int k = 0; k < 2; k++)
                    for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++) {
                        em_dtype d = dts[di];
                        int nd = cases[c].nd, dim = cases[c].dim;
                        const int64_t *sh = cases[c].sh;
                        if (dim == EM_ALL_DIMS && k) continue; /* shape is unspecified */
                        int64_t n = tu_numel(nd, sh);
                        double *v = malloc(sizeof(double) * (size_t)(n + 1));
                        /* few distinct values: ties test the first-index rule */
                        for (int64_t i = 0; i < n; i++) v[i] = (double)tu_randint(-3, 3);
                        em_tensor *t = tu_make(v, d, nd, sh, lay);
                        int red[EM_MAX_DIMS] = {0};
                        groups G;
                        if (dim == EM_ALL_DIMS) {
                            for (int i = 0; i < nd; i++) red[i] = 1;
                            G = make_groups(v, nd, sh, red, 0);
                        } else {
                            red[dim < 0 ? dim + nd : dim] = 1;
                            G = make_groups(v, nd, sh, red, k);
                        }
                        double *ref = malloc(sizeof(double) * (size_t)(G.nout + 1));
                        for (int64_t o = 0; o < G.nout; o++)
                            ref[o] = (w ? r_argmin : r_argmax)(G.g + o * G.gsize, G.gsize);
                        em_clear_error();
                        em_tensor *r = t ? (w ? em_argmin : em_argmax)(t, dim, k) : NULL;
                        char label[200], sb[48];
                        snprintf(label, sizeof label, "%s %s %s dim=%s%d keepdim=%d %s",
                                 w ? "argmin" : "argmax", tu_dt(d), tu_shape_str(nd, sh, sb, sizeof sb),
                                 dim == EM_ALL_DIMS ? "ALL" : "", dim == EM_ALL_DIMS ? 0 : dim, k,
                                 tu_layout_names[lay]);
                        tu_compare_exact(label, r, EM_I64, G.ondim, G.oshape, ref);
                        em_tensor_release(r);
                        em_tensor_release(t);
                        free(G.g);
                        free(ref);
                        free(v);
                    }
}

/* ------------------------------------------------------------------------ */
/* softmax / log_softmax                                                     */
/* ------------------------------------------------------------------------ */

static void test_softmax(void)
{
    static const struct { int nd; int64_t sh[3]; int dim; } cases[] = {
        {3, {3, 4, 5}, 0}, {3, {3, 4, 5}, 1}, {3, {3, 4, 5}, 2}, {3, {3, 4, 5}, -1},
        {1, {7}, 0}, {2, {2, 1}, 1}, {2, {0, 4}, 1}, {0, {0}, 0}, {2, {8, 300}, -1},
        {2, {70, 1000}, -1}, {2, {70, 1000}, 0},
    };
    static const double offsets[] = {0, 1000};
    for (int lsm = 0; lsm < 2; lsm++)
        for (int di = 0; di < 4; di++)
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
                for (int oi = 0; oi < 2; oi++)
                    for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++) {
                        em_dtype d = tu_float_dtypes[di];
                        int nd = cases[c].nd, dim = cases[c].dim;
                        const int64_t *sh = cases[c].sh;
                        if (oi && lay != TU_CONTIG) continue;
                        int64_t n = tu_numel(nd, sh);
                        double *v = malloc(sizeof(double) * (size_t)(n + 1));
                        double *ref = malloc(sizeof(double) * (size_t)(n + 1));
                        double *scale = malloc(sizeof(double) * (size_t)(n + 1));
                        tu_fill(v, n, d, offsets[oi] - 6, offsets[oi] + 6);
                        em_tensor *t = tu_make(v, d, nd, sh, lay);
                        int red[EM_MAX_DIMS] = {0};
                        if (nd) red[dim < 0 ? dim + nd : dim] = 1;
                        groups G = make_groups(v, nd, sh, red, 1);
                        double *lses = malloc(sizeof(double) * (size_t)(G.nout + 1));
                        double *mabs = malloc(sizeof(double) * (size_t)(G.nout + 1));
                        for (int64_t o = 0; o < G.nout; o++) {
                            lses[o] = r_lse(G.g + o * G.gsize, G.gsize);
                            mabs[o] = r_maxabs(G.g + o * G.gsize, G.gsize);
                        }
                        int64_t idx[EM_MAX_DIMS];
                        for (int64_t f = 0; f < n; f++) {
                            tu_unravel(f, nd, sh, idx);
                            int64_t o = 0;
                            for (int i = 0; i < nd; i++) if (!red[i]) o = o * sh[i] + idx[i];
                            double ls = v[f] - lses[o];
                            ref[f] = tu_round(lsm ? ls : exp(ls), d);
                            scale[f] = lsm ? mabs[o] : 0;
                        }
                        tu_tol tol;
                        if (d == EM_F64) tol = (tu_tol){1e-14, 1e-12, 2};
                        else if (d == EM_F32) tol = (tu_tol){1e-6, lsm ? 4e-7 : 1e-5, 2};
                        else if (d == EM_F16) tol = (tu_tol){1e-4, lsm ? 1e-3 : 0, 2};
                        else tol = (tu_tol){1e-3, lsm ? 8e-3 : 0, 2};
                        em_clear_error();
                        em_tensor *r = t ? (lsm ? em_log_softmax : em_softmax)(t, dim) : NULL;
                        char label[200], sb[48];
                        snprintf(label, sizeof label, "%s %s %s dim=%d offset=%g %s",
                                 lsm ? "log_softmax" : "softmax", tu_dt(d),
                                 tu_shape_str(nd, sh, sb, sizeof sb), dim, offsets[oi],
                                 tu_layout_names[lay]);
                        tu_compare_scaled(label, r, d, nd, sh, ref, scale, tol, 1);
                        em_tensor_release(r);
                        em_tensor_release(t);
                        free(G.g);
                        free(lses);
                        free(mabs);
                        free(v);
                        free(ref);
                        free(scale);
                    }
    /* -inf entries (masked attention) get probability 0 */
    double mv[4] = {0, -INFINITY, 1, -INFINITY};
    int64_t s4[1] = {4};
    em_tensor *t = tu_make(mv, EM_F32, 1, s4, TU_CONTIG);
    em_tensor *r = em_softmax(t, 0);
    double e = exp(1.0);
    double rs[4] = {1 / (1 + e), 0, e / (1 + e), 0};
    tu_compare("softmax f32 with -inf entries", r, EM_F32, 1, s4, rs, (tu_tol){1e-6, 1e-6, 2});
    em_tensor_release(r);
    em_tensor_release(t);
}

/* Accumulation quality on inputs where naive float loops fail. */
static void test_accumulation(void)
{
    int64_t n = 20000000;
    em_tensor *ones = em_ones(EM_F32, 1, &n, NULL);
    em_tensor *s = ones ? em_sum(ones, NULL, 0, false) : NULL;
    double want = 2e7;
    int64_t s0[1] = {0};
    tu_compare("sum f32 of 2e7 ones (a naive f32 loop stops at 2^24)", s, EM_F32, 0, s0, &want,
               (tu_tol){0, 1e-6, 0});
    em_tensor_release(s);
    s = ones ? em_mean(ones, NULL, 0, false) : NULL;
    want = 1;
    tu_compare("mean f32 of 2e7 ones", s, EM_F32, 0, s0, &want, (tu_tol){0, 1e-6, 0});
    em_tensor_release(s);
    em_tensor_release(ones);
    /* 1e6 copies of 0.1f */
    int64_t m = 1000000;
    em_tensor *tenth = em_full(0.1, EM_F32, 1, &m, NULL);
    s = tenth ? em_sum(tenth, NULL, 0, false) : NULL;
    want = tu_round_f32(1e6 * (double)0.1f);
    tu_compare("sum f32 of 1e6 x 0.1f", s, EM_F32, 0, s0, &want, (tu_tol){0, 1e-5, 0});
    em_tensor_release(s);
    em_tensor_release(tenth);
    /* variance of values with a large mean (one-pass E[x^2]-E[x]^2 fails) */
    int64_t k = 100000;
    double *v = malloc(sizeof(double) * (size_t)k);
    for (int di = 0; di < 2; di++) {
        em_dtype d = di ? EM_F64 : EM_F32;
        double off = di ? 1e8 : 1e4;
        tu_fill(v, k, d, off - 1, off + 1);
        em_tensor *t = tu_make(v, d, 1, &k, TU_CONTIG);
        double wv = 0, mean = 0;
        for (int64_t i = 0; i < k; i++) mean += v[i];
        mean /= (double)k;
        for (int64_t i = 0; i < k; i++) wv += (v[i] - mean) * (v[i] - mean);
        double wvar = tu_round(wv / (double)(k - 1), d), wstd = tu_round(sqrt(wv / (double)(k - 1)), d);
        char label[128];
        em_tensor *r = t ? em_var(t, NULL, 0, true, false) : NULL;
        snprintf(label, sizeof label, "var %s of 1e5 values in [%g +- 1]", tu_dt(d), off);
        tu_compare(label, r, d, 0, s0, &wvar, (tu_tol){0, di ? 1e-6 : 1e-3, 0});
        em_tensor_release(r);
        r = t ? em_std(t, NULL, 0, true, false) : NULL;
        snprintf(label, sizeof label, "std %s of 1e5 values in [%g +- 1]", tu_dt(d), off);
        tu_compare(label, r, d, 0, s0, &wstd, (tu_tol){0, di ? 1e-6 : 1e-3, 0});
        em_tensor_release(r);
        em_tensor_release(t);
    }
    free(v);
    /* logsumexp of large values does not overflow */
    double big[3] = {1000, 1000, 999};
    int64_t s3[1] = {3};
    em_tensor *t = tu_make(big, EM_F32, 1, s3, TU_CONTIG);
    em_tensor *r = t ? em_logsumexp(t, NULL, 0, false) : NULL;
    want = 1000 + log(2 + exp(-1.0));
    tu_compare("logsumexp f32 of {1000, 1000, 999}", r, EM_F32, 0, s0, &want, (tu_tol){0, 1e-6, 1});
    em_tensor_release(r);
    double neg[3] = {-1000, -1000, -INFINITY};
    em_tensor *tn = tu_make(neg, EM_F32, 1, s3, TU_CONTIG);
    r = tn ? em_logsumexp(tn, NULL, 0, false) : NULL;
    want = -1000 + log(2.0);
    tu_compare("logsumexp f32 of {-1000, -1000, -inf}", r, EM_F32, 0, s0, &want, (tu_tol){0, 1e-6, 1});
    em_tensor_release(r);
    em_tensor_release(tn);
    em_tensor_release(t);
}

/* Integer reductions are exact: i32 sums widen to i64, i64 stays exact
 * beyond 2^53 (no detour through double). */
static void test_int_exact(void)
{
    int32_t iv[3] = {1 << 30, 1 << 30, 1 << 30};
    em_tensor *t = em_tensor_from_data(iv, EM_I32, EM_SHAPE(3), NULL);
    em_tensor *s = t ? em_sum(t, NULL, 0, false) : NULL;
    int64_t got = 0;
    CHECKF(s && em_tensor_dtype(s) == EM_I64 && em_tensor_read(s, &got, 8) == EM_OK && got == 3LL << 30,
           "sum of i32 3 x 2^30 = %" PRId64 ", want %" PRId64 " (i64, no overflow)", got, 3LL << 30);
    em_tensor_release(s);
    em_tensor_release(t);
    const int64_t B = (int64_t)1 << 53;
    int64_t lv[4] = {B, B + 1, B, ((int64_t)1 << 62)};
    t = em_tensor_from_ints(lv, EM_SHAPE(4));
    em_tensor *n = t ? em_narrow(t, 0, 0, 3) : NULL;
    s = n ? em_argmax(n, 0, false) : NULL;
    got = -1;
    CHECKF(s && em_tensor_read(s, &got, 8) == EM_OK && got == 1, "argmax of {2^53, 2^53+1, 2^53} = %" PRId64, got);
    em_tensor_release(s);
    s = n ? em_max(n, NULL, 0, false) : NULL;
    got = -1;
    CHECKF(s && em_tensor_read(s, &got, 8) == EM_OK && got == B + 1, "max of {2^53, 2^53+1, 2^53} = %" PRId64, got);
    em_tensor_release(s);
    s = n ? em_argmin(n, 0, false) : NULL;
    got = -1;
    CHECKF(s && em_tensor_read(s, &got, 8) == EM_OK && got == 0, "argmin of {2^53, 2^53+1, 2^53} = %" PRId64, got);
    em_tensor_release(s);
    s = t ? em_sum(t, NULL, 0, false) : NULL;
    got = -1;
    int64_t want = 3 * B + 1 + ((int64_t)1 << 62);
    CHECKF(s && em_tensor_read(s, &got, 8) == EM_OK && got == want, "sum of i64 beyond 2^53 = %" PRId64 ", want %" PRId64,
           got, want);
    em_tensor_release(s);
    em_tensor_release(n);
    em_tensor_release(t);
}

int main(void)
{
    tu_init("test_reduce");
    test_reductions();
    test_var_single();
    test_reduce_nan();
    test_arg();
    test_softmax();
    test_accumulation();
    test_int_exact();
    em_shutdown();
    return tu_finish();
}
