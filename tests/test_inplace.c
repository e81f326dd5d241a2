/*
 * test_inplace.c — in-place ops (add_, sub_, mul_, div_, add_scalar_,
 * mul_scalar_, clamp_, relu_, zero_, fill_, masked_fill_) on contiguous
 * tensors and on strided and transposed views (the rest of the base must be
 * untouched), with `other` broadcasting and promoting into self's dtype, and
 * the dtype rule: a float result into an integer self is EM_ERR_DTYPE and
 * leaves self unchanged.
 * Not for copy_ / scatter_add_ (test_data.c).
 */
#include "test_util.h"

enum { SELF_CONTIG, SELF_STRIDED, SELF_TRANSPOSED, SELF_LAYOUTS };
static const char *const self_names[] = {"contiguous", "strided-view", "transposed-view"};

/* self is a [3,4] view of base; pos[i] is the base offset of self's i-th
 * element (row-major). */
typedef struct selfbuf {
    em_tensor *base, *self;
    int64_t nb, bshape[2];
    double bv[56];
    int64_t pos[12];
} selfbuf;

static int make_self(selfbuf *s, em_dtype d, const double *vals, int layout)
{
    memset(s, 0, sizeof *s);
    if (layout == SELF_CONTIG) { s->bshape[0] = 3; s->bshape[1] = 4; }
    else if (layout == SELF_STRIDED) { s->bshape[0] = 7; s->bshape[1] = 8; }
    else { s->bshape[0] = 4; s->bshape[1] = 3; }
    s->nb = s->bshape[0] * s->bshape[1];
    for (int64_t i = 0; i < s->nb; i++) s->bv[i] = tu_round(d == EM_BOOL ? 1 : 55 + (double)(i % 5), d);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            int64_t p = layout == SELF_CONTIG ? i * 4 + j
                        : layout == SELF_STRIDED ? (1 + 2 * i) * 8 + 2 * j
                                                 : j * 3 + i;
            s->pos[i * 4 + j] = p;
            s->bv[p] = tu_round(vals[i * 4 + j], d);
        }
    s->base = tu_make(s->bv, d, 2, s->bshape, TU_CONTIG);
    if (!s->base) return 0;
    if (layout == SELF_CONTIG) {
        s->self = em_tensor_retain(s->base);
    } else if (layout == SELF_STRIDED) {
        em_tensor *r = em_slice(s->base, 0, 1, 7, 2);
        s->self = r ? em_slice(r, 1, 0, 8, 2) : NULL;
        em_tensor_release(r);
    } else {
        s->self = em_T(s->base);
    }
    return s->self != NULL;
}

static void free_self(selfbuf *s)
{
    em_tensor_release(s->self);
    em_tensor_release(s->base);
}

/* Compares the whole base with bv where self's elements are replaced by ref. */
static void check_base(const char *label, selfbuf *s, em_dtype d, const double *ref, tu_tol tol)
{
    double want[56];
    memcpy(want, s->bv, sizeof(double) * (size_t)s->nb);
    for (int i = 0; i < 12; i++) want[s->pos[i]] = ref[i];
    tu_compare(label, s->base, d, 2, s->bshape, want, tol);
}

static tu_tol tol_of(em_dtype d, int trans)
{
    tu_tol t = {0, 0, tu_is_float(d) ? (trans ? 2 : 1) : 0};
    return t;
}

/* ------------------------------------------------------------------------ */
/* add_ / sub_ / mul_ / div_                                                 */
/* ------------------------------------------------------------------------ */

typedef em_status (*ip_fn)(em_tensor *, const em_tensor *);
typedef struct ipop {
    const char *name;
    ip_fn fn;
    double (*ref)(double, double);
    int truediv;
} ipop;

static double r_add(double a, double b) { return a + b; }
static double r_sub(double a, double b) { return a - b; }
static double r_mul(double a, double b) { return a * b; }
static double r_div(double a, double b) { return a / b; }

static const ipop ipops[] = {
    {"add_", em_add_, r_add, 0},
    {"sub_", em_sub_, r_sub, 0},
    {"mul_", em_mul_, r_mul, 0},
    {"div_", em_div_, r_div, 1},
};

static void test_binary_inplace(void)
{
    static const struct { int n; int64_t s[2]; } others[] = {{2, {3, 4}}, {1, {4}}, {2, {3, 1}}, {0, {0}}};
    static const em_dtype sdts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64};
    for (size_t o = 0; o < sizeof ipops / sizeof ipops[0]; o++)
        for (int di = 0; di < 6; di++)
            for (int odi = 0; odi < 3; odi++)
                for (size_t os = 0; os < sizeof others / sizeof others[0]; os++)
                    for (int lay = 0; lay < SELF_LAYOUTS; lay++) {
                        const ipop *op = &ipops[o];
                        em_dtype d = sdts[di];
                        /* other: same dtype, a float dtype, an integer dtype */
                        em_dtype od = odi == 0 ? d : odi == 1 ? (d == EM_F32 ? EM_F16 : EM_F32) : EM_I32;
                        em_dtype rd = tu_promote(d, od);
                        if (op->truediv && !tu_is_float(rd)) rd = EM_F32;
                        int must_fail = tu_is_float(rd) && !tu_is_float(d);
                        double sv[12], ov[12], ref[12];
                        tu_fill(sv, 12, d, -20, 20);
                        int64_t no = tu_numel(others[os].n, others[os].s);
                        tu_fill(ov, no, od, 1, 6);
                        for (int64_t i = 0; i < no; i++) if (tu_next_u64() & 1) ov[i] = -ov[i];
                        selfbuf S;
                        if (!make_self(&S, d, sv, lay)) { CHECKF(0, "set-up failed"); free_self(&S); continue; }
                        em_tensor *other = tu_make(ov, od, others[os].n, others[os].s, os == 0 ? TU_TRANSPOSED : TU_CONTIG);
                        int64_t idx[2], shp[2] = {3, 4};
                        for (int i = 0; i < 12; i++) {
                            sv[i] = tu_round(sv[i], d);
                            tu_unravel(i, 2, shp, idx);
                            double x = op->ref(sv[i], ov[tu_bcast_index(idx, 2, others[os].n, others[os].s)]);
                            ref[i] = must_fail ? sv[i] : tu_round(tu_round(x, rd), d);
                        }
                        char label[200], sb[32];
                        snprintf(label, sizeof label, "%s %s self [3,4] %s, other %s%s", op->name, tu_dt(d),
                                 self_names[lay], tu_dt(od), tu_shape_str(others[os].n, others[os].s, sb, sizeof sb));
                        em_clear_error();
                        em_status st = other ? op->fn(S.self, other) : EM_ERR_INTERNAL;
                        if (must_fail) {
                            CHECKF(st == EM_ERR_DTYPE && em_last_status() == EM_ERR_DTYPE,
                                   "%s: float result into integer self gave %s, want EM_ERR_DTYPE", label,
                                   em_status_str(st));
                            em_clear_error();
                            char l2[240];
                            snprintf(l2, sizeof l2, "%s (refused; self unchanged)", label);
                            check_base(l2, &S, d, ref, tol_of(d, 0));
                        } else {
                            CHECKF(st == EM_OK, "%s returned %s", label, em_status_str(st));
                            em_clear_error();
                            check_base(label, &S, d, ref, tol_of(d, 0));
                        }
                        em_tensor_release(other);
                        free_self(&S);
                    }
    /* other that does not broadcast to self (it would need self to grow) */
    em_tensor *a = em_zeros(EM_F32, EM_SHAPE(3, 1), NULL), *b = em_ones(EM_F32, EM_SHAPE(3, 4), NULL);
    CHECK_STATUS(em_add_(a, b), EM_ERR_SHAPE);
    double z3[3] = {0, 0, 0};
    int64_t s31[2] = {3, 1};
    tu_compare_exact("add_ refused for [3,1] += [3,4]: self unchanged", a, EM_F32, 2, s31, z3);
    em_tensor_release(a);
    em_tensor_release(b);
}

/* add_scaled_: self += alpha * other in one pass (the optimizers' update). */
static void test_add_scaled_inplace(void)
{
    static const struct { int n; int64_t s[2]; } others[] = {{2, {3, 4}}, {1, {4}}, {2, {3, 1}}, {0, {0}}};
    static const em_dtype sdts[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    static const double alphas[] = {-0.01, 0.5, 3.0};
    for (int di = 0; di < 4; di++)
        for (size_t os = 0; os < sizeof others / sizeof others[0]; os++)
            for (int lay = 0; lay < SELF_LAYOUTS; lay++)
                for (int ai = 0; ai < 3; ai++) {
                    em_dtype d = sdts[di], od = os == 1 ? EM_F64 : d; /* one case casts other */
                    double sv[12], ov[12], ref[12], alpha = alphas[ai];
                    /* positive values: no cancellation, so the result is within one
                     * rounding of the compute type whether or not the product is
                     * fused into the add */
                    tu_fill(sv, 12, d, 1, 20);
                    int64_t no = tu_numel(others[os].n, others[os].s);
                    tu_fill(ov, no, od, 1, 6);
                    selfbuf S;
                    if (!make_self(&S, d, sv, lay)) { CHECKF(0, "set-up failed"); free_self(&S); continue; }
                    em_tensor *other = tu_make(ov, od, others[os].n, others[os].s, os == 0 ? TU_TRANSPOSED : TU_CONTIG);
                    int64_t idx[2], shp[2] = {3, 4};
                    for (int i = 0; i < 12; i++) {
                        sv[i] = tu_round(sv[i], d);
                        tu_unravel(i, 2, shp, idx);
                        double o = tu_round(ov[tu_bcast_index(idx, 2, others[os].n, others[os].s)], d);
                        ref[i] = tu_round(sv[i] + alpha * o, d);
                    }
                    char label[200], sb[32];
                    snprintf(label, sizeof label, "add_scaled_ %s self [3,4] %s, other %s%s, alpha %g",
                             tu_dt(d), self_names[lay], tu_dt(od),
                             tu_shape_str(others[os].n, others[os].s, sb, sizeof sb), alpha);
                    em_clear_error();
                    em_status st = other ? em_add_scaled_(S.self, other, alpha) : EM_ERR_INTERNAL;
                    CHECKF(st == EM_OK, "%s returned %s", label, em_status_str(st));
                    em_clear_error();
                    check_base(label, &S, d, ref, tol_of(d, 0));
                    em_tensor_release(other);
                    free_self(&S);
                }
    /* integer self: refused, unchanged */
    em_tensor *a = em_zeros(EM_I64, EM_SHAPE(3), NULL), *b = em_ones(EM_F32, EM_SHAPE(3), NULL);
    CHECK_STATUS(em_add_scaled_(a, b, 2.0), EM_ERR_DTYPE);
    em_tensor *c = em_zeros(EM_F32, EM_SHAPE(3, 1), NULL), *e = em_ones(EM_F32, EM_SHAPE(3, 4), NULL);
    CHECK_STATUS(em_add_scaled_(c, e, 2.0), EM_ERR_SHAPE);
    CHECK_STATUS(em_add_scaled_(NULL, e, 2.0), EM_ERR_NULL_ARG);
    em_tensor_release(a);
    em_tensor_release(b);
    em_tensor_release(c);
    em_tensor_release(e);
}

/* ------------------------------------------------------------------------ */
/* Scalar and unary in-place ops                                             */
/* ------------------------------------------------------------------------ */

static void test_scalar_inplace(void)
{
    static const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_BOOL};
    for (int di = 0; di < 7; di++)
        for (int lay = 0; lay < SELF_LAYOUTS; lay++)
            for (int which = 0; which < 12; which++) {
                em_dtype d = dts[di];
                int isf = tu_is_float(d);
                double sv[12], ref[12];
                tu_fill(sv, 12, d, -9, 9);
                for (int i = 0; i < 12; i++) sv[i] = tu_round(sv[i], d);
                selfbuf S;
                if (!make_self(&S, d, sv, lay)) { CHECKF(0, "set-up failed"); free_self(&S); continue; }
                em_status st = EM_OK, want = EM_OK;
                char label[160];
                const char *sl = self_names[lay];
                em_tensor *mask = NULL;
                em_clear_error();
                switch (which) {
                case 0: { /* add_scalar_ whole */
                    if (d == EM_BOOL) { want = EM_ERR_DTYPE; } /* bool + 2 is i64 */
                    st = em_add_scalar_(S.self, 2);
                    for (int i = 0; i < 12; i++) ref[i] = want ? sv[i] : tu_round(sv[i] + 2, d);
                    snprintf(label, sizeof label, "add_scalar_ %s %s s=2", tu_dt(d), sl);
                    break;
                }
                case 1: /* add_scalar_ fractional */
                    if (!isf) want = EM_ERR_DTYPE;
                    st = em_add_scalar_(S.self, 0.5);
                    for (int i = 0; i < 12; i++) ref[i] = want ? sv[i] : tu_round(sv[i] + 0.5, d);
                    snprintf(label, sizeof label, "add_scalar_ %s %s s=0.5", tu_dt(d), sl);
                    break;
                case 2: /* mul_scalar_ whole */
                    if (d == EM_BOOL) want = EM_ERR_DTYPE;
                    st = em_mul_scalar_(S.self, -3);
                    for (int i = 0; i < 12; i++) ref[i] = want ? sv[i] : tu_round(sv[i] * -3, d);
                    snprintf(label, sizeof label, "mul_scalar_ %s %s s=-3", tu_dt(d), sl);
                    break;
                case 3: /* mul_scalar_ fractional */
                    if (!isf) want = EM_ERR_DTYPE;
                    st = em_mul_scalar_(S.self, 0.25);
                    for (int i = 0; i < 12; i++) ref[i] = want ? sv[i] : tu_round(sv[i] * 0.25, d);
                    snprintf(label, sizeof label, "mul_scalar_ %s %s s=0.25", tu_dt(d), sl);
                    break;
                case 4: /* clamp_ */
                    if (d == EM_BOOL) goto skip;
                    st = em_clamp_(S.self, -3, 4);
                    for (int i = 0; i < 12; i++) ref[i] = sv[i] < -3 ? -3 : sv[i] > 4 ? 4 : sv[i];
                    snprintf(label, sizeof label, "clamp_ %s %s [-3,4]", tu_dt(d), sl);
                    break;
                case 5: /* clamp_ with an open side */
                    if (d == EM_BOOL) goto skip;
                    st = em_clamp_(S.self, -INFINITY, 1);
                    for (int i = 0; i < 12; i++) ref[i] = sv[i] > 1 ? 1 : sv[i];
                    snprintf(label, sizeof label, "clamp_ %s %s [-inf,1]", tu_dt(d), sl);
                    break;
                case 6: /* relu_ */
                    if (d == EM_BOOL) goto skip;
                    st = em_relu_(S.self);
                    for (int i = 0; i < 12; i++) ref[i] = sv[i] > 0 ? sv[i] : 0;
                    snprintf(label, sizeof label, "relu_ %s %s", tu_dt(d), sl);
                    break;
                case 7: /* zero_ */
                    st = em_zero_(S.self);
                    for (int i = 0; i < 12; i++) ref[i] = 0;
                    snprintf(label, sizeof label, "zero_ %s %s", tu_dt(d), sl);
                    break;
                case 8: { /* fill_ */
                    double v = isf ? -1.75 : d == EM_BOOL ? 1 : 42;
                    st = em_fill_(S.self, v);
                    for (int i = 0; i < 12; i++) ref[i] = v;
                    snprintf(label, sizeof label, "fill_ %s %s %g", tu_dt(d), sl, v);
                    break;
                }
                case 9: case 10: case 11: { /* masked_fill_ with [3,4], [4], [] masks */
                    int mn = which == 9 ? 2 : which == 10 ? 1 : 0;
                    int64_t ms[2] = {3, 4}, m4[1] = {4};
                    double mvals[12];
                    int64_t nm = which == 9 ? 12 : which == 10 ? 4 : 1;
                    tu_fill(mvals, nm, EM_BOOL, 0, 1);
                    mask = tu_make(mvals, EM_BOOL, mn, which == 9 ? ms : m4, which == 9 ? TU_TRANSPOSED : TU_CONTIG);
                    double v = isf ? 9.5 : d == EM_BOOL ? 0 : -8;
                    st = mask ? em_masked_fill_(S.self, mask, v) : EM_ERR_INTERNAL;
                    for (int i = 0; i < 12; i++) {
                        int m = which == 9 ? (int)mvals[i] : which == 10 ? (int)mvals[i % 4] : (int)mvals[0];
                        ref[i] = m ? v : sv[i];
                    }
                    snprintf(label, sizeof label, "masked_fill_ %s %s mask rank %d", tu_dt(d), sl, mn);
                    break;
                }
                }
                if (want == EM_OK) {
                    CHECKF(st == EM_OK, "%s returned %s", label, em_status_str(st));
                } else {
                    CHECKF(st == want, "%s returned %s, want %s", label, em_status_str(st), em_status_str(want));
                    strncat(label, " (refused; self unchanged)", sizeof label - strlen(label) - 1);
                }
                em_clear_error();
                check_base(label, &S, d, ref, tol_of(d, 0));
            skip:
                em_tensor_release(mask);
                free_self(&S);
            }
}

/* In-place ops report NULL arguments as a status. (Writing into an expanded,
 * stride-0 self is not tested: torch refuses it, the header is silent.) */
static void test_inplace_null(void)
{
    em_tensor *t = em_zeros(EM_F32, EM_SHAPE(2), NULL);
    CHECK_STATUS(em_add_(NULL, t), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_add_(t, NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_sub_(NULL, t), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_mul_(t, NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_div_(NULL, t), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_add_scalar_(NULL, 1), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_mul_scalar_(NULL, 1), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_clamp_(NULL, 0, 1), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_relu_(NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_zero_(NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_fill_(NULL, 1), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_copy_(NULL, t), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_copy_(t, NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_masked_fill_(t, NULL, 1), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_scatter_add_(t, 0, NULL, t), EM_ERR_NULL_ARG);
    /* a mask that is not bool */
    CHECK_STATUS(em_masked_fill_(t, t, 1), EM_ERR_DTYPE);
    em_tensor_release(t);
}

/* A chain of in-place ops on one tensor accumulates (no stale copies). */
static void test_inplace_chain(void)
{
    em_tensor *t = em_zeros(EM_F64, EM_SHAPE(4), NULL);
    em_tensor *one = em_ones(EM_F64, EM_SHAPE(4), NULL);
    for (int i = 0; i < 10; i++) CHECK_OK(em_add_(t, one));
    CHECK_OK(em_mul_scalar_(t, 0.5));
    CHECK_OK(em_add_scalar_(t, -1));
    double ref[4] = {4, 4, 4, 4};
    int64_t s4[1] = {4};
    tu_compare_exact("chain of 10 add_, mul_scalar_, add_scalar_", t, EM_F64, 1, s4, ref);
    /* self as other */
    CHECK_OK(em_mul_(t, t));
    double r2[4] = {16, 16, 16, 16};
    tu_compare_exact("mul_(t, t)", t, EM_F64, 1, s4, r2);
    em_tensor_release(one);
    em_tensor_release(t);
}

int main(void)
{
    tu_init("test_inplace");
    test_binary_inplace();
    test_add_scaled_inplace();
    test_scalar_inplace();
    test_inplace_null();
    test_inplace_chain();
    em_shutdown();
    return tu_finish();
}
