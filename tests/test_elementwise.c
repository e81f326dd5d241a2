/*
 * test_elementwise.c — elementwise ops against double-precision references:
 * binary ops (broadcasting, type promotion, every layout), scalar forms and
 * the scalar promotion rule, comparisons, where, clamp, masked_fill, and the
 * unary ops (both gelu forms, softplus with beta/threshold, erf, sign).
 * Not for reductions (test_reduce.c) or in-place forms (test_inplace.c).
 */
#include "test_util.h"

/* ------------------------------------------------------------------------ */
/* Tolerances per op class and dtype                                         */
/* ------------------------------------------------------------------------ */

enum { EXACT, ARITH, TRANS };

static tu_tol tol_for(int cls, em_dtype d)
{
    tu_tol t = {0, 0, 0};
    if (!tu_is_float(d)) return t;
    switch (cls) {
    case EXACT: t.ulps = 1; break; /* correctly rounded; 1 ulp for double rounding */
    case ARITH: t.ulps = (d == EM_F16 || d == EM_BF16) ? 1 : 2; break;
    case TRANS:
        if (d == EM_F64) { t.atol = 1e-14; t.rtol = 1e-12; t.ulps = 2; }
        else if (d == EM_F32) { t.atol = 1e-6; t.rtol = 2e-6; t.ulps = 2; }
        else { t.atol = 1e-5; t.rtol = 0; t.ulps = 2; }
        break;
    }
    return t;
}

/* ------------------------------------------------------------------------ */
/* Binary ops                                                                */
/* ------------------------------------------------------------------------ */

typedef em_tensor *(*bin_fn)(const em_tensor *, const em_tensor *);
typedef double (*bin_ref)(double, double);

enum { RES_PROMOTE, RES_TRUEDIV, RES_BOOL };

typedef struct binop {
    const char *name;
    bin_fn fn;
    bin_ref ref;
    double alo, ahi, blo, bhi; /* float input domains                      */
    double ilo, ihi, jlo, jhi; /* integer input domains                    */
    int nonzero_b;             /* b must avoid |b| < 0.25                     */
    int result;                /* RES_*                                      */
    int cls;                   /* tolerance class                             */
    int with_bool;             /* also run on bool inputs                     */
} binop;

static double r_add(double a, double b) { return a + b; }
static double r_sub(double a, double b) { return a - b; }
static double r_mul(double a, double b) { return a * b; }
static double r_div(double a, double b) { return a / b; }
static double r_pow(double a, double b) { return pow(a, b); }
static double r_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }
static double r_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a < b ? a : b); }
static double r_eq(double a, double b) { return a == b; }
static double r_ne(double a, double b) { return a != b; }
static double r_lt(double a, double b) { return a < b; }
static double r_le(double a, double b) { return a <= b; }
static double r_gt(double a, double b) { return a > b; }
static double r_ge(double a, double b) { return a >= b; }

static const binop binops[] = {
    {"add", em_add, r_add, -10, 10, -10, 10, -50, 50, -50, 50, 0, RES_PROMOTE, EXACT, 0},
    {"sub", em_sub, r_sub, -10, 10, -10, 10, -50, 50, -50, 50, 0, RES_PROMOTE, EXACT, 0},
    {"mul", em_mul, r_mul, -10, 10, -10, 10, -50, 50, -50, 50, 0, RES_PROMOTE, EXACT, 0},
    {"div", em_div, r_div, -10, 10, 0.25, 4, -50, 50, 1, 9, 1, RES_TRUEDIV, ARITH, 0},
    {"pow", em_pow, r_pow, 0.1, 4, -2, 2, 0, 5, 0, 3, 0, RES_PROMOTE, TRANS, 0},
    {"maximum", em_maximum, r_max, -10, 10, -10, 10, -50, 50, -50, 50, 0, RES_PROMOTE, EXACT, 1},
    {"minimum", em_minimum, r_min, -10, 10, -10, 10, -50, 50, -50, 50, 0, RES_PROMOTE, EXACT, 1},
    /* comparisons: small integral values so that ties are frequent */
    {"eq", em_eq, r_eq, -3, 3, -3, 3, -3, 3, -3, 3, 0, RES_BOOL, EXACT, 1},
    {"ne", em_ne, r_ne, -3, 3, -3, 3, -3, 3, -3, 3, 0, RES_BOOL, EXACT, 1},
    {"lt", em_lt, r_lt, -3, 3, -3, 3, -3, 3, -3, 3, 0, RES_BOOL, EXACT, 1},
    {"le", em_le, r_le, -3, 3, -3, 3, -3, 3, -3, 3, 0, RES_BOOL, EXACT, 1},
    {"gt", em_gt, r_gt, -3, 3, -3, 3, -3, 3, -3, 3, 0, RES_BOOL, EXACT, 1},
    {"ge", em_ge, r_ge, -3, 3, -3, 3, -3, 3, -3, 3, 0, RES_BOOL, EXACT, 1},
};
#define N_BINOPS (int)(sizeof binops / sizeof binops[0])

typedef struct bshape {
    int na;
    int64_t a[EM_MAX_DIMS];
    int nb;
    int64_t b[EM_MAX_DIMS];
} bshape;

static const bshape bshapes[] = {
    {3, {3, 1, 4}, 2, {5, 4}},
    {2, {2, 3}, 2, {2, 3}},
    {0, {0}, 2, {2, 3}},
    {1, {4}, 0, {0}},
    {0, {0}, 0, {0}},
    {1, {1}, 1, {7}},
    {2, {0, 3}, 2, {1, 3}},
    {2, {2, 0}, 2, {2, 1}},
    {3, {1, 1, 1}, 1, {1}},
    {2, {17, 33}, 2, {17, 33}},
    {4, {2, 3, 4, 5}, 3, {3, 1, 5}},
    {2, {6, 1}, 2, {1, 5}},
    /* above the CPU backend's parallel grain (32768 elements) */
    {2, {300, 257}, 1, {257}},
    {3, {6, 1, 2000}, 2, {7, 2000}},
    /* EM_MAX_DIMS dims */
    {8, {2, 1, 2, 1, 2, 1, 2, 1}, 8, {1, 2, 1, 2, 1, 2, 1, 3}},
    {8, {2, 2, 1, 1, 1, 1, 1, 3}, 3, {2, 1, 3}},
};
#define N_BSHAPES (int)(sizeof bshapes / sizeof bshapes[0])

/* Input values for op on dtype d, side 0 (a) or 1 (b). */
static void gen_inputs(const binop *op, em_dtype d, int side, double *v, int64_t n)
{
    double lo, hi;
    if (op->result == RES_BOOL) {
        /* half-integers in floats give ties and non-integral values */
        for (int64_t i = 0; i < n; i++) {
            if (d == EM_BOOL) v[i] = (double)(tu_next_u64() & 1);
            else if (tu_is_float(d)) v[i] = (double)tu_randint(-6, 6) / 2.0;
            else v[i] = (double)tu_randint(-3, 3);
        }
        return;
    }
    if (tu_is_float(d)) {
        lo = side ? op->blo : op->alo;
        hi = side ? op->bhi : op->ahi;
    } else {
        lo = side ? op->jlo : op->ilo;
        hi = side ? op->jhi : op->ihi;
    }
    tu_fill(v, n, d, lo, hi);
    if (side && op->nonzero_b && tu_is_float(d))
        for (int64_t i = 0; i < n; i++)
            if (tu_next_u64() & 1) v[i] = -v[i]; /* both signs, |b| >= 0.25 */
}

static em_dtype binop_result(const binop *op, em_dtype da, em_dtype db)
{
    if (op->result == RES_BOOL) return EM_BOOL;
    em_dtype p = tu_promote(da, db);
    if (op->result == RES_TRUEDIV && !tu_is_float(p)) return EM_F32;
    return p;
}

/* Runs op on a (da, shape sa) and b (db, shape sb) in layout lay, compares. */
static void run_binary(const binop *op, em_dtype da, em_dtype db, const bshape *bs, int lay)
{
    int64_t na = tu_numel(bs->na, bs->a), nb = tu_numel(bs->nb, bs->b);
    int no;
    int64_t so[EM_MAX_DIMS];
    if (!tu_broadcast(bs->na, bs->a, bs->nb, bs->b, &no, so)) return;
    int64_t n = tu_numel(no, so);
    double *va = malloc(sizeof(double) * (size_t)(na + 1));
    double *vb = malloc(sizeof(double) * (size_t)(nb + 1));
    double *ref = malloc(sizeof(double) * (size_t)(n + 1));
    gen_inputs(op, da, 0, va, na);
    gen_inputs(op, db, 1, vb, nb);
    em_clear_error();
    em_tensor *a = tu_make(va, da, bs->na, bs->a, lay);
    em_tensor *b = tu_make(vb, db, bs->nb, bs->b, lay);
    em_dtype rd = binop_result(op, da, db);
    int64_t idx[EM_MAX_DIMS];
    for (int64_t f = 0; f < n; f++) {
        tu_unravel(f, no, so, idx);
        double x = va[tu_bcast_index(idx, no, bs->na, bs->a)];
        double y = vb[tu_bcast_index(idx, no, bs->nb, bs->b)];
        ref[f] = tu_round(op->ref(x, y), rd);
    }
    em_tensor *r = (a && b) ? op->fn(a, b) : NULL;
    char label[256], s1[64], s2[64];
    if (da == db)
        snprintf(label, sizeof label, "%s %s %sx%s %s", op->name, tu_dt(da),
                 tu_shape_str(bs->na, bs->a, s1, sizeof s1),
                 tu_shape_str(bs->nb, bs->b, s2, sizeof s2), tu_layout_names[lay]);
    else
        snprintf(label, sizeof label, "%s %s,%s %sx%s %s", op->name, tu_dt(da), tu_dt(db),
                 tu_shape_str(bs->na, bs->a, s1, sizeof s1),
                 tu_shape_str(bs->nb, bs->b, s2, sizeof s2), tu_layout_names[lay]);
    tu_compare(label, r, rd, no, so, ref, tol_for(op->cls, rd));
    /* a fresh result: never the storage of an input */
    if (r && a && b && n > 0)
        CHECKF(!em_tensor_shares_storage(r, a) && !em_tensor_shares_storage(r, b), "%s: result shares storage",
               label);
    /* inputs must be untouched */
    if (a && r && lay == TU_CONTIG) {
        double *ra = tu_read(a);
        int same = ra != NULL;
        for (int64_t i = 0; same && i < na; i++) same = ra[i] == va[i] || (isnan(ra[i]) && isnan(va[i]));
        CHECKF(same, "%s: input a was modified", label);
        free(ra);
    }
    em_tensor_release(r);
    em_tensor_release(a);
    em_tensor_release(b);
    free(va);
    free(vb);
    free(ref);
}

static void test_binary(void)
{
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_BOOL};
    for (int o = 0; o < N_BINOPS; o++) {
        const binop *op = &binops[o];
        for (int di = 0; di < 7; di++) {
            em_dtype d = dts[di];
            if (d == EM_BOOL && !op->with_bool) continue;
            for (int s = 0; s < N_BSHAPES; s++)
                for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++) run_binary(op, d, d, &bshapes[s], lay);
        }
    }
    /* mixed dtypes: promotion */
    static const em_dtype pairs[][2] = {
        {EM_F32, EM_I64}, {EM_I32, EM_F16}, {EM_F16, EM_BF16}, {EM_BF16, EM_F16},
        {EM_F16, EM_F64}, {EM_I32, EM_I64}, {EM_BOOL, EM_I32}, {EM_BOOL, EM_F32},
        {EM_F32, EM_F64}, {EM_I64, EM_BF16}, {EM_BOOL, EM_BF16}, {EM_I64, EM_I32},
    };
    for (int o = 0; o < N_BINOPS; o++) {
        const binop *op = &binops[o];
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            em_dtype da = pairs[p][0], db = pairs[p][1];
            /* bool operands only where they mean something (not sub/div/pow) */
            if ((da == EM_BOOL || db == EM_BOOL) && !op->with_bool &&
                op->ref != r_add && op->ref != r_mul)
                continue;
            run_binary(op, da, db, &bshapes[0], TU_CONTIG);
            run_binary(op, da, db, &bshapes[2], TU_STRIDED);
        }
    }
}

/* NaN propagates through maximum/minimum; comparisons with NaN are false
 * (ne true). */
static void test_nan_semantics(void)
{
    double av[4] = {NAN, 1, 2, NAN}, bv[4] = {0, NAN, 1, NAN};
    int64_t sh[1] = {4};
    for (int di = 0; di < 4; di++) {
        em_dtype d = tu_float_dtypes[di];
        em_tensor *a = tu_make(av, d, 1, sh, TU_CONTIG);
        em_tensor *b = tu_make(bv, d, 1, sh, TU_CONTIG);
        double rmax[4] = {NAN, NAN, 2, NAN}, rmin[4] = {NAN, NAN, 1, NAN};
        double req[4] = {0, 0, 0, 0}, rne[4] = {1, 1, 1, 1}, rlt[4] = {0, 0, 0, 0};
        char label[64];
        em_tensor *r;
        snprintf(label, sizeof label, "maximum NaN %s", tu_dt(d));
        tu_compare_exact(label, r = em_maximum(a, b), d, 1, sh, rmax);
        em_tensor_release(r);
        snprintf(label, sizeof label, "minimum NaN %s", tu_dt(d));
        tu_compare_exact(label, r = em_minimum(a, b), d, 1, sh, rmin);
        em_tensor_release(r);
        snprintf(label, sizeof label, "eq NaN %s", tu_dt(d));
        tu_compare_exact(label, r = em_eq(a, b), EM_BOOL, 1, sh, req);
        em_tensor_release(r);
        snprintf(label, sizeof label, "ne NaN %s", tu_dt(d));
        tu_compare_exact(label, r = em_ne(a, b), EM_BOOL, 1, sh, rne);
        em_tensor_release(r);
        snprintf(label, sizeof label, "lt NaN %s", tu_dt(d));
        tu_compare_exact(label, r = em_lt(a, b), EM_BOOL, 1, sh, rlt);
        em_tensor_release(r);
        double smax[4] = {NAN, 1.5, 2, NAN};
        snprintf(label, sizeof label, "maximum_scalar NaN %s", tu_dt(d));
        tu_compare_exact(label, r = em_maximum_scalar(a, 1.5), d, 1, sh, smax);
        em_tensor_release(r);
        em_tensor_release(a);
        em_tensor_release(b);
    }
    /* pow: negative bases with integral exponents, 0^negative, x^0 */
    {
        double pb[10] = {-2, -2, -0.5, -2, 0, 0, 2, 3, NAN, 1};
        double pe[10] = {3, 2, -1, 0.5, -1, 0, 0.5, -2, 0, NAN};
        int64_t s10[1] = {10};
        double rp[10];
        for (int i = 0; i < 10; i++) rp[i] = pow(pb[i], pe[i]);
        for (int di = 0; di < 2; di++) {
            em_dtype d = di ? EM_F64 : EM_F32;
            double b2[10], e2[10], r2[10];
            memcpy(b2, pb, sizeof b2);
            memcpy(e2, pe, sizeof e2);
            for (int i = 0; i < 10; i++) r2[i] = tu_round(rp[i], d);
            em_tensor *tb = tu_make(b2, d, 1, s10, TU_CONTIG), *te = tu_make(e2, d, 1, s10, TU_CONTIG);
            em_tensor *r = em_pow(tb, te);
            char label[64];
            snprintf(label, sizeof label, "pow %s special values", tu_dt(d));
            tu_compare(label, r, d, 1, s10, r2, tol_for(TRANS, d));
            em_tensor_release(r);
            em_tensor_release(tb);
            em_tensor_release(te);
        }
    }
    /* division by zero in floats gives inf/nan, as IEEE */
    double nv[3] = {1, -1, 0}, zv[3] = {0, 0, 0};
    int64_t s3[1] = {3};
    em_tensor *n = tu_make(nv, EM_F32, 1, s3, TU_CONTIG), *z = tu_make(zv, EM_F32, 1, s3, TU_CONTIG);
    double rd[3] = {INFINITY, -INFINITY, NAN};
    em_tensor *r = em_div(n, z);
    tu_compare_exact("div f32 by zero", r, EM_F32, 1, s3, rd);
    em_tensor_release(r);
    em_tensor_release(n);
    em_tensor_release(z);
}

/* ------------------------------------------------------------------------ */
/* Scalar forms                                                              */
/* ------------------------------------------------------------------------ */

typedef em_tensor *(*sc_fn)(const em_tensor *, double);
typedef struct scop {
    const char *name;
    sc_fn fn;
    bin_ref ref;
    double lo, hi;     /* float tensor domain */
    double ilo, ihi;   /* integer tensor domain */
    int result;        /* RES_* */
    int cls;
    int with_bool;
} scop;

static const scop scops[] = {
    {"add_scalar", em_add_scalar, r_add, -10, 10, -50, 50, RES_PROMOTE, EXACT, 1},
    {"sub_scalar", em_sub_scalar, r_sub, -10, 10, -50, 50, RES_PROMOTE, EXACT, 0},
    {"mul_scalar", em_mul_scalar, r_mul, -10, 10, -50, 50, RES_PROMOTE, EXACT, 1},
    {"div_scalar", em_div_scalar, r_div, -10, 10, -50, 50, RES_TRUEDIV, ARITH, 0},
    {"pow_scalar", em_pow_scalar, r_pow, 0.1, 4, 0, 6, RES_PROMOTE, TRANS, 0},
    {"maximum_scalar", em_maximum_scalar, r_max, -10, 10, -50, 50, RES_PROMOTE, EXACT, 0},
    {"minimum_scalar", em_minimum_scalar, r_min, -10, 10, -50, 50, RES_PROMOTE, EXACT, 0},
    {"eq_scalar", em_eq_scalar, r_eq, -3, 3, -3, 3, RES_BOOL, EXACT, 1},
    {"ne_scalar", em_ne_scalar, r_ne, -3, 3, -3, 3, RES_BOOL, EXACT, 1},
    {"lt_scalar", em_lt_scalar, r_lt, -3, 3, -3, 3, RES_BOOL, EXACT, 1},
    {"le_scalar", em_le_scalar, r_le, -3, 3, -3, 3, RES_BOOL, EXACT, 1},
    {"gt_scalar", em_gt_scalar, r_gt, -3, 3, -3, 3, RES_BOOL, EXACT, 1},
    {"ge_scalar", em_ge_scalar, r_ge, -3, 3, -3, 3, RES_BOOL, EXACT, 1},
};
#define N_SCOPS (int)(sizeof scops / sizeof scops[0])

static void run_scalar(const scop *op, em_dtype d, double s, int ndim, const int64_t *shape,
                       int lay)
{
    int64_t n = tu_numel(ndim, shape);
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    double *ref = malloc(sizeof(double) * (size_t)(n + 1));
    if (op->result == RES_BOOL) {
        for (int64_t i = 0; i < n; i++)
            v[i] = d == EM_BOOL ? (double)(tu_next_u64() & 1)
                   : tu_is_float(d) ? (double)tu_randint(-6, 6) / 2.0
                                    : (double)tu_randint(-3, 3);
    } else if (tu_is_float(d)) {
        tu_fill(v, n, d, op->lo, op->hi);
    } else {
        tu_fill(v, n, d, op->ilo, op->ihi);
    }
    em_tensor *t = tu_make(v, d, ndim, shape, lay);
    em_dtype rd;
    if (op->result == RES_BOOL) rd = EM_BOOL;
    else if (op->result == RES_TRUEDIV && !tu_is_float(d)) rd = EM_F32;
    else rd = tu_scalar_result(d, s);
    /* The scalar enters the computation in the compute dtype (f32 for
     * f16/bf16/f32 tensors, as torch does); the reference rounds s to f32
     * there and allows one ulp. */
    double sc = (tu_is_float(rd) && rd != EM_F64) ? tu_round_f32(s) : s;
    for (int64_t i = 0; i < n; i++) ref[i] = tu_round(op->ref(v[i], sc), rd);
    em_clear_error();
    em_tensor *r = t ? op->fn(t, s) : NULL;
    char label[200], sb[64];
    snprintf(label, sizeof label, "%s %s %s s=%g %s", op->name, tu_dt(d),
             tu_shape_str(ndim, shape, sb, sizeof sb), s, tu_layout_names[lay]);
    tu_compare(label, r, rd, ndim, shape, ref, tol_for(op->cls, rd));
    em_tensor_release(r);
    em_tensor_release(t);
    free(v);
    free(ref);
}

static void test_scalar_forms(void)
{
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_BOOL};
    static const struct { int nd; int64_t s[3]; } shapes[] = {
        {2, {3, 5}}, {0, {0}}, {1, {0}}, {3, {2, 1, 4}}, {2, {250, 200}}};
    for (int o = 0; o < N_SCOPS; o++) {
        const scop *op = &scops[o];
        for (int di = 0; di < 7; di++) {
            em_dtype d = dts[di];
            if (d == EM_BOOL && !op->with_bool) continue;
            double svals[3];
            int ns = 0;
            if (op->result == RES_BOOL) {
                svals[ns++] = 1; svals[ns++] = -0.5; svals[ns++] = 0;
            } else if (op->ref == r_pow) {
                svals[ns++] = 2; svals[ns++] = 0.5;
                if (tu_is_float(d)) svals[ns++] = -1.5;
            } else if (op->ref == r_div) {
                svals[ns++] = 4; svals[ns++] = -0.5;
            } else {
                svals[ns++] = 3; svals[ns++] = -2.5; svals[ns++] = 0.1;
            }
            for (int si = 0; si < ns; si++)
                for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
                    for (int lay = 0; lay < TU_LAYOUT_COUNT; lay += (sh == 0 ? 1 : 2))
                        run_scalar(op, d, svals[si], shapes[sh].nd, shapes[sh].s, lay);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* where, clamp, masked_fill                                                 */
/* ------------------------------------------------------------------------ */

static void test_where(void)
{
    static const struct { int nc; int64_t c[3]; int na; int64_t a[3]; int nb; int64_t b[3]; } cases[] = {
        {2, {3, 4}, 2, {3, 4}, 2, {3, 4}},
        {2, {3, 1}, 2, {1, 4}, 2, {3, 4}},
        {0, {0}, 2, {2, 3}, 0, {0}},
        {1, {5}, 2, {2, 5}, 1, {1}},
        {2, {0, 4}, 1, {4}, 2, {1, 4}},
        {3, {2, 3, 4}, 3, {2, 3, 4}, 3, {2, 3, 4}},
    };
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_BOOL};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int di = 0; di < 7; di++)
            for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++) {
                em_dtype d = dts[di], d2 = d;
                /* one mixed pair per case: promotion like any binary op */
                if (lay == TU_LAYOUT_COUNT - 1 && d == EM_F16) d2 = EM_F32;
                if (lay == TU_LAYOUT_COUNT - 1 && d == EM_I32) d2 = EM_I64;
                int64_t nc = tu_numel(cases[c].nc, cases[c].c), na = tu_numel(cases[c].na, cases[c].a),
                        nb = tu_numel(cases[c].nb, cases[c].b);
                double *vc = malloc(sizeof(double) * (size_t)(nc + 1));
                double *va = malloc(sizeof(double) * (size_t)(na + 1));
                double *vb = malloc(sizeof(double) * (size_t)(nb + 1));
                tu_fill(vc, nc, EM_BOOL, 0, 1);
                tu_fill(va, na, d, -20, 20);
                tu_fill(vb, nb, d2, -20, 20);
                em_tensor *tc = tu_make(vc, EM_BOOL, cases[c].nc, cases[c].c, lay);
                em_tensor *ta = tu_make(va, d, cases[c].na, cases[c].a, lay);
                em_tensor *tb = tu_make(vb, d2, cases[c].nb, cases[c].b, lay);
                int n1 = 0, no = 0;
                int64_t s1[EM_MAX_DIMS], so[EM_MAX_DIMS], idx[EM_MAX_DIMS];
                tu_broadcast(cases[c].nc, cases[c].c, cases[c].na, cases[c].a, &n1, s1);
                tu_broadcast(n1, s1, cases[c].nb, cases[c].b, &no, so);
                int64_t n = tu_numel(no, so);
                double *ref = malloc(sizeof(double) * (size_t)(n + 1));
                for (int64_t f = 0; f < n; f++) {
                    tu_unravel(f, no, so, idx);
                    ref[f] = vc[tu_bcast_index(idx, no, cases[c].nc, cases[c].c)]
                                 ? va[tu_bcast_index(idx, no, cases[c].na, cases[c].a)]
                                 : vb[tu_bcast_index(idx, no, cases[c].nb, cases[c].b)];
                }
                em_clear_error();
                em_tensor *r = (tc && ta && tb) ? em_where(tc, ta, tb) : NULL;
                char label[200], x1[48], x2[48], x3[48];
                snprintf(label, sizeof label, "where %s%s%s %s?%s:%s %s", tu_dt(d),
                         d2 != d ? "," : "", d2 != d ? tu_dt(d2) : "",
                         tu_shape_str(cases[c].nc, cases[c].c, x1, sizeof x1),
                         tu_shape_str(cases[c].na, cases[c].a, x2, sizeof x2),
                         tu_shape_str(cases[c].nb, cases[c].b, x3, sizeof x3), tu_layout_names[lay]);
                tu_compare_exact(label, r, tu_promote(d, d2), no, so, ref);
                em_tensor_release(r);
                em_tensor_release(ta);
                em_tensor_release(tb);
                em_tensor_release(tc);
                free(vc); free(va); free(vb); free(ref);
            }
}

static void test_clamp(void)
{
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64};
    static const double bounds[][2] = {{-2, 3}, {-INFINITY, 1}, {-1, INFINITY},
                                       {-INFINITY, INFINITY}, {1, 0}, {0, 0}};
    int64_t sh[2] = {7, 9};
    for (int di = 0; di < 6; di++)
        for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
            for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++) {
                em_dtype d = dts[di];
                double lo = bounds[b][0], hi = bounds[b][1];
                if (!tu_is_float(d) && ((isinf(lo) && isinf(hi)) )) continue;
                if (tu_is_float(d) && b == 0) { lo = -2.5; hi = 3.25; }
                double v[63], ref[63];
                tu_fill(v, 63, d, -6, 6);
                em_tensor *t = tu_make(v, d, 2, sh, lay);
                for (int i = 0; i < 63; i++) {
                    double x = v[i] > lo ? v[i] : lo; /* max(x, lo) */
                    ref[i] = x < hi ? x : hi;         /* min(., hi) */
                }
                em_clear_error();
                em_tensor *r = t ? em_clamp(t, lo, hi) : NULL;
                char label[160];
                snprintf(label, sizeof label, "clamp %s [7,9] lo=%g hi=%g %s", tu_dt(d), lo, hi,
                         tu_layout_names[lay]);
                tu_compare_exact(label, r, d, 2, sh, ref);
                em_tensor_release(r);
                em_tensor_release(t);
            }
    /* NaN stays NaN */
    double nv[2] = {NAN, 5};
    int64_t s2[1] = {2};
    em_tensor *t = tu_make(nv, EM_F32, 1, s2, TU_CONTIG);
    em_tensor *r = em_clamp(t, 0, 1);
    double rn[2] = {NAN, 1};
    tu_compare_exact("clamp f32 NaN", r, EM_F32, 1, s2, rn);
    em_tensor_release(r);
    em_tensor_release(t);
}

static void test_masked_fill(void)
{
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_BOOL};
    static const struct { int nt; int64_t t[3]; int nm; int64_t m[3]; } cases[] = {
        {2, {3, 4}, 2, {3, 4}}, {2, {3, 4}, 1, {4}}, {2, {3, 4}, 2, {3, 1}},
        {2, {3, 4}, 0, {0}}, {3, {2, 3, 5}, 2, {3, 5}}, {2, {0, 4}, 1, {4}}, {0, {0}, 0, {0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int di = 0; di < 7; di++)
            for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++) {
                em_dtype d = dts[di];
                double value = tu_is_float(d) ? -7.5 : d == EM_BOOL ? 1 : 7;
                int64_t nt = tu_numel(cases[c].nt, cases[c].t), nm = tu_numel(cases[c].nm, cases[c].m);
                double *vt = malloc(sizeof(double) * (size_t)(nt + 1));
                double *vm = malloc(sizeof(double) * (size_t)(nm + 1));
                double *ref = malloc(sizeof(double) * (size_t)(nt + 1));
                tu_fill(vt, nt, d, -5, 5);
                tu_fill(vm, nm, EM_BOOL, 0, 1);
                em_tensor *t = tu_make(vt, d, cases[c].nt, cases[c].t, lay);
                em_tensor *m = tu_make(vm, EM_BOOL, cases[c].nm, cases[c].m, lay);
                int64_t idx[EM_MAX_DIMS];
                for (int64_t f = 0; f < nt; f++) {
                    tu_unravel(f, cases[c].nt, cases[c].t, idx);
                    ref[f] = vm[tu_bcast_index(idx, cases[c].nt, cases[c].nm, cases[c].m)] ? value : vt[f];
                }
                em_clear_error();
                em_tensor *r = (t && m) ? em_masked_fill(t, m, value) : NULL;
                char label[200], x1[48], x2[48];
                snprintf(label, sizeof label, "masked_fill %s %s mask %s %s", tu_dt(d),
                         tu_shape_str(cases[c].nt, cases[c].t, x1, sizeof x1),
                         tu_shape_str(cases[c].nm, cases[c].m, x2, sizeof x2), tu_layout_names[lay]);
                tu_compare_exact(label, r, d, cases[c].nt, cases[c].t, ref);
                if (r && t && nt > 1) CHECKF(!em_tensor_shares_storage(r, t), "%s shares storage", label);
                em_tensor_release(r);
                em_tensor_release(t);
                em_tensor_release(m);
                free(vt); free(vm); free(ref);
            }
}

/* ------------------------------------------------------------------------ */
/* Unary ops                                                                 */
/* ------------------------------------------------------------------------ */

typedef em_tensor *(*un_fn)(const em_tensor *);
typedef double (*un_ref)(double);

typedef struct unop {
    const char *name;
    un_fn fn;
    un_ref ref;
    double lo, hi;   /* float domain */
    double ilo, ihi; /* integer domain */
    int keeps_int;   /* integer input keeps its dtype (else f32) */
    int cls;
    int with_bool;
} unop;

static double u_neg(double x) { return -x; }
static double u_abs(double x) { return fabs(x); }
static double u_exp(double x) { return exp(x); }
static double u_log(double x) { return log(x); }
static double u_sqrt(double x) { return sqrt(x); }
static double u_rsqrt(double x) { return 1.0 / sqrt(x); }
static double u_sin(double x) { return sin(x); }
static double u_cos(double x) { return cos(x); }
static double u_tanh(double x) { return tanh(x); }
static double u_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double u_relu(double x) { return x > 0 ? x : 0; }
static double u_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double u_gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double u_silu(double x) { return x / (1.0 + exp(-x)); }
static double softplus_ref(double x, double beta, double thr)
{
    return beta * x > thr ? x : log1p(exp(beta * x)) / beta;
}
static double u_softplus(double x) { return softplus_ref(x, 1, 20); }
static double u_softplus2(double x) { return softplus_ref(x, 2, 3); }
static double u_square(double x) { return x * x; }
static double u_recip(double x) { return 1.0 / x; }
static double u_erf(double x) { return erf(x); }
/* -1, 0 or 1; zeros and NaN come back as they are */
static double u_sign(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; }

static em_tensor *f_gelu(const em_tensor *t) { return em_gelu(t, false); }
static em_tensor *f_gelu_tanh(const em_tensor *t) { return em_gelu(t, true); }
static em_tensor *f_softplus(const em_tensor *t) { return em_softplus(t, 1, 20); }
static em_tensor *f_softplus2(const em_tensor *t) { return em_softplus(t, 2, 3); }

static const unop unops[] = {
    {"neg", em_neg, u_neg, -10, 10, -50, 50, 1, EXACT, 0},
    {"abs", em_abs, u_abs, -10, 10, -50, 50, 1, EXACT, 0},
    {"exp", em_exp, u_exp, -8, 8, -8, 8, 0, TRANS, 1},
    {"log", em_log, u_log, 0.01, 100, 1, 1000, 0, TRANS, 0},
    {"sqrt", em_sqrt, u_sqrt, 0, 100, 0, 1000, 0, ARITH, 1},
    {"rsqrt", em_rsqrt, u_rsqrt, 0.01, 100, 1, 1000, 0, TRANS, 0},
    {"sin", em_sin, u_sin, -6, 6, -6, 6, 0, TRANS, 0},
    {"cos", em_cos, u_cos, -6, 6, -6, 6, 0, TRANS, 0},
    {"tanh", em_tanh, u_tanh, -5, 5, -5, 5, 0, TRANS, 0},
    {"sigmoid", em_sigmoid, u_sigmoid, -12, 12, -12, 12, 0, TRANS, 1},
    {"relu", em_relu, u_relu, -10, 10, -50, 50, 1, EXACT, 0},
    {"gelu", f_gelu, u_gelu, -6, 6, -6, 6, 0, TRANS, 0},
    {"gelu_tanh", f_gelu_tanh, u_gelu_tanh, -6, 6, -6, 6, 0, TRANS, 0},
    {"silu", em_silu, u_silu, -10, 10, -10, 10, 0, TRANS, 0},
    {"softplus(1,20)", f_softplus, u_softplus, -30, 30, -30, 30, 0, TRANS, 0},
    {"softplus(2,3)", f_softplus2, u_softplus2, -5, 5, -5, 5, 0, TRANS, 0},
    {"square", em_square, u_square, -10, 10, -50, 50, 1, EXACT, 0},
    {"reciprocal", em_reciprocal, u_recip, 0.1, 10, 1, 20, 0, ARITH, 0},
    {"erf", em_erf, u_erf, -4, 4, -4, 4, 0, TRANS, 1},
    {"sign", em_sign, u_sign, -10, 10, -50, 50, 1, EXACT, 0},
};
#define N_UNOPS (int)(sizeof unops / sizeof unops[0])

static void run_unary(const unop *op, em_dtype d, int ndim, const int64_t *shape, int lay)
{
    int64_t n = tu_numel(ndim, shape);
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    double *ref = malloc(sizeof(double) * (size_t)(n + 1));
    if (tu_is_float(d)) {
        tu_fill(v, n, d, op->lo, op->hi);
        if (op->ref == u_log || op->ref == u_rsqrt)
            for (int64_t i = 0; i < n; i++) v[i] = tu_round(exp(tu_uniform(log(op->lo), log(op->hi))), d);
        if (op->ref == u_recip)
            for (int64_t i = 0; i < n; i++) if (tu_next_u64() & 1) v[i] = -v[i];
    } else {
        tu_fill(v, n, d, op->ilo, op->ihi);
    }
    em_tensor *t = tu_make(v, d, ndim, shape, lay);
    em_dtype rd = tu_is_float(d) ? d : (op->keeps_int ? d : EM_F32);
    for (int64_t i = 0; i < n; i++) ref[i] = tu_round(op->ref(v[i]), rd);
    em_clear_error();
    em_tensor *r = t ? op->fn(t) : NULL;
    char label[200], sb[64];
    snprintf(label, sizeof label, "%s %s %s %s", op->name, tu_dt(d),
             tu_shape_str(ndim, shape, sb, sizeof sb), tu_layout_names[lay]);
    tu_compare(label, r, rd, ndim, shape, ref, tol_for(op->cls, rd));
    em_tensor_release(r);
    em_tensor_release(t);
    free(v);
    free(ref);
}

static void test_unary(void)
{
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_BOOL};
    static const struct { int nd; int64_t s[EM_MAX_DIMS]; } shapes[] = {
        {0, {0}}, {1, {1}}, {1, {7}}, {2, {3, 4}}, {2, {0, 5}}, {3, {2, 1, 3}},
        {2, {33, 17}}, {4, {2, 3, 4, 5}}, {1, {1000}}, {2, {300, 257}},
        {8, {2, 1, 3, 2, 1, 2, 3, 2}},
    };
    for (int o = 0; o < N_UNOPS; o++)
        for (int di = 0; di < 7; di++) {
            if (dts[di] == EM_BOOL && !unops[o].with_bool) continue;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int lay = 0; lay < TU_LAYOUT_COUNT; lay++)
                    run_unary(&unops[o], dts[di], shapes[s].nd, shapes[s].s, lay);
        }
    /* special values */
    double sv[6] = {INFINITY, -INFINITY, 0, -0.0, 1e-30, 88};
    int64_t s6[1] = {6};
    em_tensor *t = tu_make(sv, EM_F32, 1, s6, TU_CONTIG);
    em_tensor *r;
    double rexp[6] = {INFINITY, 0, 1, 1, 1, tu_round_f32(exp(88))};
    tu_compare("exp f32 special values", r = em_exp(t), EM_F32, 1, s6, rexp, tol_for(TRANS, EM_F32));
    em_tensor_release(r);
    double rsig[6] = {1, 0, 0.5, 0.5, 0.5, 1};
    tu_compare("sigmoid f32 special values", r = em_sigmoid(t), EM_F32, 1, s6, rsig, tol_for(TRANS, EM_F32));
    em_tensor_release(r);
    double rtanh[6] = {1, -1, 0, 0, 1e-30, 1};
    tu_compare("tanh f32 special values", r = em_tanh(t), EM_F32, 1, s6, rtanh, tol_for(TRANS, EM_F32));
    em_tensor_release(r);
    double rsp[6] = {INFINITY, 0, log(2.0), log(2.0), log(2.0), 88};
    tu_compare("softplus f32 special values", r = em_softplus(t, 1, 20), EM_F32, 1, s6, rsp, tol_for(TRANS, EM_F32));
    em_tensor_release(r);
    double rrelu[6] = {INFINITY, 0, 0, 0, 1e-30, 88};
    tu_compare("relu f32 special values", r = em_relu(t), EM_F32, 1, s6, rrelu, tol_for(EXACT, EM_F32));
    em_tensor_release(r);
    em_tensor_release(t);
    /* erf and sign: infinities, signed zeros, NaN, tiny values, in every
     * float dtype (values rounded to the dtype by tu_make first) */
    for (int di = 0; di < 4; di++) {
        em_dtype d = tu_float_dtypes[di];
        double ev[8] = {INFINITY, -INFINITY, 0, -0.0, NAN, 1e-30, -6, 0.5};
        double rerf[8], rsign[8];
        int64_t s8[1] = {8};
        em_tensor *te = tu_make(ev, d, 1, s8, TU_CONTIG);
        for (int i = 0; i < 8; i++) {
            rerf[i] = tu_round(erf(ev[i]), d);
            rsign[i] = u_sign(ev[i]);
        }
        char label[64];
        snprintf(label, sizeof label, "erf %s special values", tu_dt(d));
        tu_compare(label, r = em_erf(te), d, 1, s8, rerf, tol_for(TRANS, d));
        em_tensor_release(r);
        snprintf(label, sizeof label, "sign %s special values", tu_dt(d));
        tu_compare_exact(label, r = em_sign(te), d, 1, s8, rsign);
        em_tensor_release(r);
        em_tensor_release(te);
    }
    /* sign of integers: zeros are frequent, the dtype is kept */
    for (int di = 0; di < 2; di++) {
        em_dtype d = di ? EM_I64 : EM_I32;
        double iv[7] = {-3, -1, 0, 1, 2, 0, -2147483647.0}, ri[7];
        int64_t s7[1] = {7};
        em_tensor *ti = tu_make(iv, d, 1, s7, TU_CONTIG);
        for (int i = 0; i < 7; i++) ri[i] = u_sign(iv[i]);
        char label[64];
        snprintf(label, sizeof label, "sign %s with zeros", tu_dt(d));
        tu_compare_exact(label, r = em_sign(ti), d, 1, s7, ri);
        em_tensor_release(r);
        em_tensor_release(ti);
    }
    double lv[4] = {0, -1, 1, INFINITY};
    int64_t s4[1] = {4};
    t = tu_make(lv, EM_F64, 1, s4, TU_CONTIG);
    double rlog[4] = {-INFINITY, NAN, 0, INFINITY};
    tu_compare("log f64 special values", r = em_log(t), EM_F64, 1, s4, rlog, tol_for(TRANS, EM_F64));
    em_tensor_release(r);
    double rsq[4] = {0, NAN, 1, INFINITY};
    tu_compare("sqrt f64 special values", r = em_sqrt(t), EM_F64, 1, s4, rsq, tol_for(ARITH, EM_F64));
    em_tensor_release(r);
    em_tensor_release(t);
}

/* i64 values above 2^53 must not go through double. */
static void test_int64_exact(void)
{
    const int64_t B = (int64_t)1 << 53;
    int64_t av[4] = {B, B + 1, -B - 3, ((int64_t)1 << 62) + 1};
    int64_t bv[4] = {B + 1, B + 1, -B - 2, 1};
    em_tensor *a = em_tensor_from_ints(av, EM_SHAPE(4)), *b = em_tensor_from_ints(bv, EM_SHAPE(4));
    int64_t got[4];
    em_tensor *r;
#define I64_CASE(expr, w0, w1, w2, w3)                                                          \
    do {                                                                                       \
        int64_t w_[4] = {w0, w1, w2, w3};                                                      \
        r = (expr);                                                                            \
        int ok_ = r && em_tensor_dtype(r) == EM_I64 && em_tensor_read(r, got, sizeof got) == EM_OK; \
        for (int i_ = 0; ok_ && i_ < 4; i_++) ok_ = got[i_] == w_[i_];                         \
        printf("%s i64 beyond 2^53: %s\n", #expr, ok_ ? "exact" : "WRONG");                    \
        CHECKF(ok_, "%s on i64 beyond 2^53: got %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, #expr, \
               got[0], got[1], got[2], got[3]);                                                \
        em_tensor_release(r);                                                                  \
        em_clear_error();                                                                      \
    } while (0)
    I64_CASE(em_add(a, b), 2 * B + 1, 2 * B + 2, -2 * B - 5, ((int64_t)1 << 62) + 2);
    I64_CASE(em_sub(a, b), -1, 0, -1, (int64_t)1 << 62);
    I64_CASE(em_maximum(a, b), B + 1, B + 1, -B - 2, ((int64_t)1 << 62) + 1);
    I64_CASE(em_minimum(a, b), B, B + 1, -B - 3, 1);
    I64_CASE(em_add_scalar(a, 1), B + 1, B + 2, -B - 2, ((int64_t)1 << 62) + 2);
    I64_CASE(em_mul_scalar(b, 1), B + 1, B + 1, -B - 2, 1);
    I64_CASE(em_neg(a), -B, -B - 1, B + 3, -((int64_t)1 << 62) - 1);
    I64_CASE(em_abs(a), B, B + 1, B + 3, ((int64_t)1 << 62) + 1);
    I64_CASE(em_sign(a), 1, 1, -1, 1);
    I64_CASE(em_clamp(a, -1e300, 1e300), B, B + 1, -B - 3, ((int64_t)1 << 62) + 1);
    I64_CASE(em_clamp(a, -INFINITY, INFINITY), B, B + 1, -B - 3, ((int64_t)1 << 62) + 1);
    em_tensor *lt = em_lt(a, b), *eq = em_eq(a, b);
    double rl[4] = {1, 0, 1, 0}, re[4] = {0, 1, 0, 0};
    int64_t s4[1] = {4};
    tu_compare_exact("lt i64 beyond 2^53", lt, EM_BOOL, 1, s4, rl);
    tu_compare_exact("eq i64 beyond 2^53", eq, EM_BOOL, 1, s4, re);
    em_tensor_release(lt);
    em_tensor_release(eq);
    em_tensor_release(a);
    em_tensor_release(b);
#undef I64_CASE
}

int main(void)
{
    tu_init("test_elementwise");
    test_binary();
    test_nan_semantics();
    test_scalar_forms();
    test_where();
    test_clamp();
    test_masked_fill();
    test_unary();
    test_int64_exact();
    em_shutdown();
    return tu_finish();
}
