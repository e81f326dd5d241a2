/*
 * test_views.c — view operations: reshape/view (with -1, view failing on a
 * non-viewable layout, reshape copying then), flatten, transpose, permute, T,
 * squeeze/squeeze_all/unsqueeze, expand (stride 0), narrow, slice (step,
 * negative and clamped bounds), select, contiguous, clone (no shared
 * storage), shares_storage, metadata (dim, stride, offset, is_contiguous) and
 * writes through views being visible in the base.
 * Not for the numeric ops on views (each op's test uses strided inputs).
 */
#include "test_util.h"

/* A [shape] f32 tensor holding 0, 1, 2, ... */
static em_tensor *iota(int ndim, const int64_t *shape, double *vals)
{
    int64_t n = tu_numel(ndim, shape);
    for (int64_t i = 0; i < n; i++) vals[i] = (double)i;
    return tu_make(vals, EM_F32, ndim, shape, TU_CONTIG);
}

/* Checks shape, values (exact) and whether t shares storage with base. */
static void expect(const char *label, const em_tensor *t, int ndim, const int64_t *shape,
                   const double *vals, const em_tensor *base, int shares)
{
    tu_compare_exact(label, t, EM_F32, ndim, shape, vals);
    if (t && base)
        CHECKF(em_tensor_shares_storage(t, base) == (shares != 0), "%s: shares_storage should be %d",
               label, shares);
}

/* The values of the view of base (values bv, contiguous shape bs) with the
 * given geometry, computed from strides and offset on the host. */
static void gather_view(const double *bv, int ndim, const int64_t *shape, const int64_t *strides,
                        int64_t offset, double *out)
{
    int64_t n = tu_numel(ndim, shape), idx[EM_MAX_DIMS];
    for (int64_t f = 0; f < n; f++) {
        tu_unravel(f, ndim, shape, idx);
        int64_t g = offset;
        for (int i = 0; i < ndim; i++) g += idx[i] * strides[i];
        out[f] = bv[g];
    }
}

static void test_reshape_view(void)
{
    double bv[24], ref[24];
    int64_t s234[3] = {2, 3, 4};
    em_tensor *t = iota(3, s234, bv);
    em_tensor *r;
    int64_t want[4];

    r = em_reshape(t, EM_SHAPE(6, 4));
    want[0] = 6; want[1] = 4;
    expect("reshape [2,3,4] -> [6,4]", r, 2, want, bv, t, 1);
    em_tensor_release(r);
    r = em_view(t, EM_SHAPE(-1));
    want[0] = 24;
    expect("view [2,3,4] -> [-1]", r, 1, want, bv, t, 1);
    em_tensor_release(r);
    r = em_reshape(t, EM_SHAPE(4, -1, 2));
    want[0] = 4; want[1] = 3; want[2] = 2;
    expect("reshape [2,3,4] -> [4,-1,2]", r, 3, want, bv, t, 1);
    em_tensor_release(r);
    r = em_view(t, EM_SHAPE(2, 1, 12));
    want[0] = 2; want[1] = 1; want[2] = 12;
    expect("view [2,3,4] -> [2,1,12]", r, 3, want, bv, t, 1);
    em_tensor_release(r);
    CHECK_FAILS(em_reshape(t, EM_SHAPE(5, 5)), EM_ERR_SHAPE);
    CHECK_FAILS(em_view(t, EM_SHAPE(7, -1)), EM_ERR_SHAPE);

    /* 0-d <-> [1] */
    em_tensor *s = em_scalar(3.5);
    r = em_reshape(s, EM_SHAPE(1));
    double three5 = 3.5;
    want[0] = 1;
    expect("reshape [] -> [1]", r, 1, want, &three5, s, 1);
    em_tensor *back = r ? em_view(r, 0, NULL) : NULL;
    expect("view [1] -> []", back, 0, want, &three5, s, 1);
    em_tensor_release(back);
    em_tensor_release(r);
    em_tensor_release(s);

    /* a transposed tensor cannot be viewed flat; reshape copies */
    em_tensor *tt = em_transpose(t, 1, 2); /* [2,4,3] */
    int64_t st[3] = {12, 1, 4}, sh[3] = {2, 4, 3};
    gather_view(bv, 3, sh, st, 0, ref);
    CHECK_FAILS(em_view(tt, EM_SHAPE(24)), EM_ERR_SHAPE);
    r = em_reshape(tt, EM_SHAPE(24));
    want[0] = 24;
    expect("reshape of transposed [2,4,3] -> [24] (copy)", r, 1, want, ref, t, 0);
    if (r) CHECK(em_tensor_is_contiguous(r));
    em_tensor_release(r);
    /* but splitting or merging compatible dims of a strided tensor is a view */
    r = em_view(tt, EM_SHAPE(2, 2, 2, 3));
    int64_t w4[4] = {2, 2, 2, 3};
    expect("view of transposed [2,4,3] -> [2,2,2,3]", r, 4, w4, ref, t, 1);
    em_tensor_release(r);
    em_tensor_release(tt);
    /* a column slice [4,3] of a [4,6] (strides [6,2]) views as [2,2,3] */
    double b46[24];
    int64_t s46[2] = {4, 6};
    em_tensor *m = iota(2, s46, b46);
    em_tensor *cs = em_slice(m, 1, 0, 6, 2);
    int64_t csh[2] = {4, 3}, cst[2] = {6, 2};
    gather_view(b46, 2, csh, cst, 0, ref);
    r = cs ? em_view(cs, EM_SHAPE(2, 2, 3)) : NULL;
    int64_t w3[3] = {2, 2, 3};
    expect("view of step-2 slice [4,3] -> [2,2,3]", r, 3, w3, ref, m, 1);
    em_tensor_release(r);
    /* and even flat: strides [6,2] with 3 columns is one run of stride 2 */
    r = cs ? em_view(cs, EM_SHAPE(12)) : NULL;
    int64_t w12[1] = {12};
    expect("view of step-2 slice [4,3] (strides [6,2]) -> [12]", r, 1, w12, ref, m, 1);
    if (r) CHECK(em_tensor_stride(r, 0) == 2);
    em_tensor_release(r);
    em_tensor_release(cs);
    /* a narrowed [4,4] of a [4,6] (strides [6,1]) cannot be flat */
    em_tensor *nw = em_narrow(m, 1, 0, 4);
    CHECK_FAILS(em_view(nw, EM_SHAPE(16)), EM_ERR_SHAPE);
    r = nw ? em_view(nw, EM_SHAPE(2, 2, 4)) : NULL;
    int64_t nsh[2] = {4, 4}, nst[2] = {6, 1}, w224[3] = {2, 2, 4};
    gather_view(b46, 2, nsh, nst, 0, ref);
    expect("view of narrowed [4,4] -> [2,2,4]", r, 3, w224, ref, m, 1);
    em_tensor_release(r);
    r = nw ? em_reshape(nw, EM_SHAPE(16)) : NULL;
    int64_t w16[1] = {16};
    expect("reshape of narrowed [4,4] -> [16] (copy)", r, 1, w16, ref, m, 0);
    em_tensor_release(r);
    em_tensor_release(nw);
    em_tensor_release(m);

    /* flatten */
    r = em_flatten(t, 0, 1);
    want[0] = 6; want[1] = 4;
    expect("flatten [2,3,4] 0..1", r, 2, want, bv, t, 1);
    em_tensor_release(r);
    r = em_flatten(t, 1, -1);
    want[0] = 2; want[1] = 12;
    expect("flatten [2,3,4] 1..-1", r, 2, want, bv, t, 1);
    em_tensor_release(r);
    r = em_flatten(t, 0, -1);
    want[0] = 24;
    expect("flatten [2,3,4] 0..-1", r, 1, want, bv, t, 1);
    em_tensor_release(r);
    em_tensor_release(t);
}

static void test_transpose_permute(void)
{
    double bv[24], ref[24];
    int64_t s234[3] = {2, 3, 4};
    em_tensor *t = iota(3, s234, bv);
    CHECK(em_tensor_is_contiguous(t));
    CHECK(em_tensor_stride(t, 0) == 12 && em_tensor_stride(t, 1) == 4 && em_tensor_stride(t, 2) == 1);
    CHECK(em_tensor_stride(t, -1) == 1);
    CHECK(em_tensor_dim(t, -1) == 4 && em_tensor_dim(t, 0) == 2);
    CHECK(em_tensor_dim(t, 3) == -1 && em_tensor_dim(t, -4) == -1);
    CHECK(em_tensor_stride(t, 5) == 0);
    em_clear_error();

    em_tensor *r = em_transpose(t, 0, 2); /* [4,3,2] */
    int64_t sh[3] = {4, 3, 2}, st[3] = {1, 4, 12};
    gather_view(bv, 3, sh, st, 0, ref);
    expect("transpose(0,2) [2,3,4]", r, 3, sh, ref, t, 1);
    if (r) {
        CHECK(!em_tensor_is_contiguous(r));
        CHECK(em_tensor_stride(r, 0) == 1 && em_tensor_stride(r, 2) == 12);
    }
    em_tensor_release(r);
    r = em_transpose(t, -1, -2);
    int64_t sh2[3] = {2, 4, 3}, st2[3] = {12, 1, 4};
    gather_view(bv, 3, sh2, st2, 0, ref);
    expect("transpose(-1,-2) [2,3,4]", r, 3, sh2, ref, t, 1);
    em_tensor_release(r);
    r = em_transpose(t, 1, 1);
    expect("transpose(1,1) is the identity", r, 3, s234, bv, t, 1);
    em_tensor_release(r);

    int perm[3] = {2, 0, 1};
    r = em_permute(t, 3, perm);
    int64_t sh3[3] = {4, 2, 3}, st3[3] = {1, 12, 4};
    gather_view(bv, 3, sh3, st3, 0, ref);
    expect("permute {2,0,1} [2,3,4]", r, 3, sh3, ref, t, 1);
    /* permuting back gives a contiguous view */
    int inv[3] = {1, 2, 0};
    em_tensor *r2 = r ? em_permute(r, 3, inv) : NULL;
    expect("permute back", r2, 3, s234, bv, t, 1);
    if (r2) CHECK(em_tensor_is_contiguous(r2));
    em_tensor_release(r2);
    em_tensor_release(r);

    /* T */
    double b6[6];
    int64_t s23[2] = {2, 3};
    em_tensor *m = iota(2, s23, b6);
    r = em_T(m);
    int64_t s32[2] = {3, 2}, stT[2] = {1, 3};
    gather_view(b6, 2, s32, stT, 0, ref);
    expect("T [2,3]", r, 2, s32, ref, m, 1);
    em_tensor_release(r);
    em_tensor *v = em_reshape(m, EM_SHAPE(6));
    r = v ? em_T(v) : NULL;
    int64_t s6[1] = {6};
    expect("T of 1-D is itself", r, 1, s6, b6, m, 1);
    em_tensor_release(r);
    em_tensor_release(v);
    em_tensor *sc = em_scalar(2);
    r = em_T(sc);
    double two = 2;
    expect("T of 0-d", r, 0, s6, &two, sc, 1);
    em_tensor_release(r);
    em_tensor_release(sc);
    em_tensor_release(m);
    em_tensor_release(t);
}

static void test_squeeze_unsqueeze_expand(void)
{
    double bv[6], ref[24];
    int64_t s213[3] = {2, 1, 3};
    em_tensor *t = iota(3, s213, bv);
    em_tensor *r;
    int64_t w[5];

    r = em_squeeze(t, 1);
    w[0] = 2; w[1] = 3;
    expect("squeeze(1) [2,1,3]", r, 2, w, bv, t, 1);
    em_tensor_release(r);
    r = em_squeeze(t, -2);
    expect("squeeze(-2) [2,1,3]", r, 2, w, bv, t, 1);
    em_tensor_release(r);
    r = em_squeeze(t, 0);
    expect("squeeze(0) [2,1,3] unchanged", r, 3, s213, bv, t, 1);
    em_tensor_release(r);
    int64_t s5[5] = {1, 2, 1, 3, 1};
    em_tensor *t5 = em_reshape(t, 5, s5);
    r = t5 ? em_squeeze_all(t5) : NULL;
    expect("squeeze_all [1,2,1,3,1]", r, 2, w, bv, t, 1);
    em_tensor_release(r);
    em_tensor_release(t5);
    em_tensor *one = em_ones(EM_F32, EM_SHAPE(1, 1), NULL);
    r = one ? em_squeeze_all(one) : NULL;
    double onev = 1;
    expect("squeeze_all [1,1] -> []", r, 0, w, &onev, one, 1);
    em_tensor_release(r);
    em_tensor_release(one);

    em_tensor *m = em_squeeze(t, 1); /* [2,3] */
    static const struct { int dim; int64_t sh[3]; } us[] = {
        {0, {1, 2, 3}}, {1, {2, 1, 3}}, {2, {2, 3, 1}}, {-1, {2, 3, 1}}, {-3, {1, 2, 3}}};
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "unsqueeze(%d) [2,3]", us[i].dim);
        r = m ? em_unsqueeze(m, us[i].dim) : NULL;
        expect(label, r, 3, us[i].sh, bv, t, 1);
        em_tensor_release(r);
    }
    em_tensor *sc = em_scalar(5);
    r = em_unsqueeze(sc, 0);
    double five = 5;
    w[0] = 1;
    expect("unsqueeze(0) of 0-d", r, 1, w, &five, sc, 1);
    em_tensor_release(r);
    em_tensor_release(sc);

    /* expand: stride 0, no copy */
    double c3[3];
    int64_t s31[2] = {3, 1};
    em_tensor *col = iota(2, s31, c3);
    r = em_expand(col, EM_SHAPE(3, 4));
    for (int i = 0; i < 12; i++) ref[i] = c3[i / 4];
    int64_t s34[2] = {3, 4};
    expect("expand [3,1] -> [3,4]", r, 2, s34, ref, col, 1);
    if (r) CHECK(em_tensor_stride(r, 1) == 0);
    em_tensor_release(r);
    r = em_expand(col, EM_SHAPE(2, -1, 4));
    for (int i = 0; i < 24; i++) ref[i] = c3[(i / 4) % 3];
    int64_t s234[3] = {2, 3, 4};
    expect("expand [3,1] -> [2,-1,4]", r, 3, s234, ref, col, 1);
    if (r) CHECK(em_tensor_stride(r, 0) == 0);
    /* contiguous of an expanded tensor materialises it */
    em_tensor *rc = r ? em_contiguous(r) : NULL;
    expect("contiguous of expanded", rc, 3, s234, ref, col, 0);
    if (rc) CHECK(em_tensor_is_contiguous(rc));
    em_tensor_release(rc);
    em_tensor_release(r);
    CHECK_FAILS(em_expand(col, EM_SHAPE(4, 4)), EM_ERR_SHAPE);
    em_tensor *sc2 = em_scalar(7);
    r = em_expand(sc2, EM_SHAPE(2, 3));
    double sevens[6] = {7, 7, 7, 7, 7, 7};
    int64_t s23[2] = {2, 3};
    expect("expand 0-d -> [2,3]", r, 2, s23, sevens, sc2, 1);
    if (r) CHECK(em_tensor_stride(r, 0) == 0 && em_tensor_stride(r, 1) == 0);
    em_tensor_release(r);
    em_tensor_release(sc2);
    em_tensor_release(col);
    em_tensor_release(m);
    em_tensor_release(t);
}

static void test_narrow_slice_select(void)
{
    double bv[30], ref[30];
    int64_t s56[2] = {5, 6};
    em_tensor *t = iota(2, s56, bv);
    em_tensor *r;

    r = em_narrow(t, 0, 1, 3);
    int64_t sh[2] = {3, 6}, st[2] = {6, 1};
    gather_view(bv, 2, sh, st, 6, ref);
    expect("narrow(0,1,3) [5,6]", r, 2, sh, ref, t, 1);
    if (r) {
        CHECK(em_tensor_offset(r) - em_tensor_offset(t) == 6); /* relative: EMBER_GUARD offsets t */
        CHECK(em_tensor_is_contiguous(r));
    }
    em_tensor_release(r);
    r = em_narrow(t, -1, 2, 2);
    int64_t sh2[2] = {5, 2};
    gather_view(bv, 2, sh2, st, 2, ref);
    expect("narrow(-1,2,2) [5,6]", r, 2, sh2, ref, t, 1);
    if (r) CHECK(!em_tensor_is_contiguous(r));
    em_tensor_release(r);
    r = em_narrow(t, 1, 6, 0);
    int64_t sh0[2] = {5, 0};
    expect("narrow(1,6,0) [5,6] empty", r, 2, sh0, ref, t, 1);
    em_tensor_release(r);

    /* slice: Python semantics */
    static const struct { int dim; int64_t start, end, step; } sl[] = {
        {1, 1, 6, 2}, {1, -3, INT64_MAX, 1}, {1, -100, 100, 1}, {1, 5, 2, 1}, {0, 0, 5, 3},
        {1, -1, 6, 4}, {0, -2, -1, 1}, {1, 0, -1, 2}, {0, 4, 100, 7},
    };
    for (size_t i = 0; i < sizeof sl / sizeof sl[0]; i++) {
        int dim = sl[i].dim;
        int64_t size = s56[dim], start = sl[i].start, end = sl[i].end, step = sl[i].step;
        /* Python's clamping */
        if (start < 0) start += size;
        if (start < 0) start = 0;
        if (start > size) start = size;
        if (end < 0) end += size;
        if (end < 0) end = 0;
        if (end > size) end = size;
        int64_t len = end > start ? (end - start + step - 1) / step : 0;
        int64_t vsh[2] = {5, 6}, vst[2] = {6, 1};
        vsh[dim] = len;
        vst[dim] *= step;
        gather_view(bv, 2, vsh, vst, start * (dim == 0 ? 6 : 1), ref);
        char label[96];
        snprintf(label, sizeof label, "slice dim=%d [%" PRId64 ":%" PRId64 ":%" PRId64 "] of [5,6]",
                 dim, sl[i].start, sl[i].end, sl[i].step);
        r = em_slice(t, dim, sl[i].start, sl[i].end, sl[i].step);
        expect(label, r, 2, vsh, ref, t, 1);
        if (r && len > 1) CHECK(em_tensor_stride(r, dim) == (dim == 0 ? 6 : 1) * step);
        em_tensor_release(r);
    }
    /* slice of a slice */
    em_tensor *a = em_slice(t, 1, 1, 6, 2); /* cols 1,3,5 */
    r = a ? em_slice(a, 1, 1, 3, 1) : NULL;  /* cols 3,5 */
    int64_t ssh[2] = {5, 2}, sst[2] = {6, 2};
    gather_view(bv, 2, ssh, sst, 3, ref);
    expect("slice of slice", r, 2, ssh, ref, t, 1);
    if (r) CHECK(em_tensor_offset(r) - em_tensor_offset(t) == 3);
    em_tensor_release(r);
    em_tensor_release(a);

    /* select */
    r = em_select(t, 0, 2);
    int64_t s6[1] = {6}, s1[1] = {1};
    gather_view(bv, 1, s6, s1, 12, ref);
    expect("select(0,2) [5,6]", r, 1, s6, ref, t, 1);
    em_tensor *e = r ? em_select(r, 0, -1) : NULL;
    double last = 17;
    expect("select(0,-1) of a row -> 0-d", e, 0, s6, &last, t, 1);
    em_tensor_release(e);
    em_tensor_release(r);
    r = em_select(t, -1, -1);
    int64_t s5[1] = {5}, st6[1] = {6};
    gather_view(bv, 1, s5, st6, 5, ref);
    expect("select(-1,-1) [5,6]", r, 1, s5, ref, t, 1);
    em_tensor_release(r);
    em_tensor_release(t);
}

static void test_contiguous_clone(void)
{
    for (int di = 0; di < 7; di++) {
        em_dtype d = tu_all_dtypes[di];
        double v[12], ref[12];
        int64_t s34[2] = {3, 4}, s43[2] = {4, 3};
        tu_fill(v, 12, d, -9, 9);
        em_tensor *t = tu_make(v, d, 2, s34, TU_CONTIG);
        /* contiguous of contiguous: t itself (retained) */
        em_tensor *c = em_contiguous(t);
        CHECK_NONNULL(c);
        if (c) CHECK(em_tensor_shares_storage(c, t));
        em_tensor_release(c);
        /* contiguous of a transposed view: a copy with the logical values */
        em_tensor *tt = em_T(t);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++) ref[i * 3 + j] = v[j * 4 + i];
        c = tt ? em_contiguous(tt) : NULL;
        char label[64];
        snprintf(label, sizeof label, "contiguous of T %s", tu_dt(d));
        tu_compare_exact(label, c, d, 2, s43, ref);
        if (c) {
            CHECK(em_tensor_is_contiguous(c));
            CHECK(!em_tensor_shares_storage(c, t));
            CHECK(em_tensor_stride(c, 0) == 3 && em_tensor_stride(c, 1) == 1);
        }
        em_tensor_release(c);
        /* clone: never shares storage, even of a contiguous tensor */
        em_tensor *k = em_clone(t);
        snprintf(label, sizeof label, "clone %s", tu_dt(d));
        tu_compare_exact(label, k, d, 2, s34, v);
        if (k) {
            CHECK(!em_tensor_shares_storage(k, t));
            CHECK(em_tensor_is_contiguous(k));
            CHECK_OK(em_fill_(k, 1));
            snprintf(label, sizeof label, "clone %s: base unchanged after writing the clone", tu_dt(d));
            tu_compare_exact(label, t, d, 2, s34, v);
        }
        em_tensor_release(k);
        k = tt ? em_clone(tt) : NULL;
        snprintf(label, sizeof label, "clone of T %s", tu_dt(d));
        tu_compare_exact(label, k, d, 2, s43, ref);
        em_tensor_release(k);
        em_tensor_release(tt);
        em_tensor_release(t);
    }
    /* two unrelated tensors do not share storage; a view shares with its view */
    em_tensor *a = em_zeros(EM_F32, EM_SHAPE(4), NULL), *b = em_zeros(EM_F32, EM_SHAPE(4), NULL);
    CHECK(!em_tensor_shares_storage(a, b));
    em_tensor *a1 = em_narrow(a, 0, 0, 2), *a2 = em_narrow(a, 0, 2, 2);
    CHECK(a1 && a2 && em_tensor_shares_storage(a1, a2));
    CHECK(em_tensor_shares_storage(a, a));
    em_tensor_release(a1);
    em_tensor_release(a2);
    em_tensor_release(a);
    em_tensor_release(b);
}

/* In-place writes through views are visible in the base. */
static void test_write_through_views(void)
{
    double bv[24], ref[24];
    int64_t s46[2] = {4, 6};
    em_tensor *t = iota(2, s46, bv);
    memcpy(ref, bv, sizeof ref);
    /* fill_ on a step-2 column slice */
    em_tensor *v = em_slice(t, 1, 1, 6, 2);
    CHECK_OK(em_fill_(v, -1));
    for (int i = 0; i < 4; i++)
        for (int j = 1; j < 6; j += 2) ref[i * 6 + j] = -1;
    expect("fill_ through slice(1,1,6,2) visible in base", t, 2, s46, ref, v, 1);
    em_tensor_release(v);
    /* add_scalar_ on a transposed row-narrowed view */
    em_tensor *tt = em_T(t);                      /* [6,4] */
    em_tensor *n = tt ? em_narrow(tt, 1, 2, 2) : NULL; /* base rows 2,3 */
    if (n) CHECK_OK(em_add_scalar_(n, 100));
    for (int i = 2; i < 4; i++)
        for (int j = 0; j < 6; j++) ref[i * 6 + j] += 100;
    expect("add_scalar_ through T+narrow visible in base", t, 2, s46, ref, n, 1);
    em_tensor_release(n);
    em_tensor_release(tt);
    /* select + mul_ with a broadcast other */
    em_tensor *row = em_select(t, 0, 0);
    em_tensor *two = em_scalar(2);
    if (row) CHECK_OK(em_mul_(row, two));
    for (int j = 0; j < 6; j++) ref[j] *= 2;
    expect("mul_ through select visible in base", t, 2, s46, ref, row, 1);
    em_tensor_release(two);
    /* a view made before the write sees it too */
    em_tensor *flat = em_view(t, EM_SHAPE(24));
    CHECK_OK(em_zero_(row));
    for (int j = 0; j < 6; j++) ref[j] = 0;
    int64_t s24[1] = {24};
    expect("earlier view sees later writes", flat, 1, s24, ref, t, 1);
    em_tensor_release(flat);
    em_tensor_release(row);
    /* copy_ into a view of an expanded...: into a diagonal-like strided view */
    em_tensor *cols = em_slice(t, 0, 0, 4, 3); /* rows 0 and 3 */
    em_tensor *src = em_arange(0, 6, 1, EM_F32, NULL);
    if (cols && src) CHECK_OK(em_copy_(cols, src));
    for (int j = 0; j < 6; j++) { ref[j] = j; ref[18 + j] = j; }
    expect("copy_ broadcast into slice(0,0,4,3) visible in base", t, 2, s46, ref, cols, 1);
    em_tensor_release(src);
    em_tensor_release(cols);
    /* copy_ between disjoint views of one storage, and onto itself */
    em_tensor *r0 = em_select(t, 0, 0), *r2 = em_select(t, 0, 2);
    if (r0 && r2) CHECK_OK(em_copy_(r0, r2));
    for (int j = 0; j < 6; j++) ref[j] = ref[12 + j];
    expect("copy_ row 2 into row 0 of the same tensor", t, 2, s46, ref, r0, 1);
    if (r2) CHECK_OK(em_copy_(r2, r2));
    expect("copy_ of a view onto itself", t, 2, s46, ref, r2, 1);
    em_tensor_release(r0);
    em_tensor_release(r2);
    em_tensor_release(t);
}

/* Releasing the base keeps views (and their storage) alive. */
static void test_view_lifetime(void)
{
    double bv[12];
    int64_t s34[2] = {3, 4};
    em_tensor *t = iota(2, s34, bv);
    em_tensor *v = em_select(t, 0, 1);
    em_tensor *w = em_T(t);
    em_tensor_release(t);
    double r1[4] = {4, 5, 6, 7};
    int64_t s4[1] = {4};
    tu_compare_exact("view alive after base release", v, EM_F32, 1, s4, r1);
    em_tensor_release(v);
    double rt[12];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) rt[i * 3 + j] = bv[j * 4 + i];
    int64_t s43[2] = {4, 3};
    tu_compare_exact("second view alive after base and first view release", w, EM_F32, 2, s43, rt);
    /* retain adds a reference */
    CHECK(em_tensor_retain(w) == w);
    em_tensor_release(w);
    tu_compare_exact("retained view alive after one release", w, EM_F32, 2, s43, rt);
    em_tensor_release(w);
}

/* Contiguity follows torch: size-1 dims' strides do not matter, empty
 * tensors are contiguous. Ops on such tensors read the right elements. */
static void test_contiguity_rules(void)
{
    double bv[24], ref[24];
    int64_t s46[2] = {4, 6};
    em_tensor *t = iota(2, s46, bv);
    struct { const char *what; em_tensor *v; int contig; int64_t shape[3]; int nd; int64_t off; } cases[6];
    int nc = 0;
    em_tensor *row = em_narrow(t, 0, 2, 1); /* [1,6], offset 12 */
    cases[nc++] = (typeof(cases[0])){"narrow(0,2,1) [1,6]", row, 1, {1, 6}, 2, 12};
    em_tensor *rowT = row ? em_T(row) : NULL; /* [6,1] strides [1,6] */
    cases[nc++] = (typeof(cases[0])){"T of a [1,6] row -> [6,1]", rowT, 1, {6, 1}, 2, 12};
    em_tensor *col = em_narrow(t, 1, 3, 1); /* [4,1] strides [6,1] */
    cases[nc++] = (typeof(cases[0])){"narrow(1,3,1) [4,1]", col, 0, {4, 1}, 2, 3};
    em_tensor *colT = col ? em_T(col) : NULL; /* [1,4] strides [1,6] */
    cases[nc++] = (typeof(cases[0])){"T of a [4,1] column -> [1,4]", colT, 0, {1, 4}, 2, 3};
    em_tensor *u = em_unsqueeze(t, 1); /* [4,1,6] */
    cases[nc++] = (typeof(cases[0])){"unsqueeze(1) [4,1,6]", u, 1, {4, 1, 6}, 3, 0};
    em_tensor *e = em_narrow(t, 0, 4, 0); /* [0,6] */
    cases[nc++] = (typeof(cases[0])){"narrow(0,4,0) [0,6]", e, 1, {0, 6}, 2, 24};
    for (int i = 0; i < nc; i++) {
        em_tensor *v = cases[i].v;
        if (!v) { CHECKF(0, "%s: NULL", cases[i].what); em_clear_error(); continue; }
        CHECKF(em_tensor_is_contiguous(v) == (cases[i].contig != 0), "%s: is_contiguous %d, want %d",
               cases[i].what, em_tensor_is_contiguous(v), cases[i].contig);
        CHECKF(em_tensor_offset(v) - em_tensor_offset(t) == cases[i].off,
               "%s: offset %" PRId64 " from the base's, want %" PRId64, cases[i].what,
               em_tensor_offset(v) - em_tensor_offset(t), cases[i].off);
        /* logical values, and ops on them */
        int64_t n = tu_numel(cases[i].nd, cases[i].shape), idx[3], st[3];
        for (int d = 0; d < cases[i].nd; d++) st[d] = em_tensor_stride(v, d);
        for (int64_t f = 0; f < n; f++) {
            tu_unravel(f, cases[i].nd, cases[i].shape, idx);
            int64_t g = cases[i].off;
            for (int d = 0; d < cases[i].nd; d++) g += idx[d] * (cases[i].shape[d] == 1 ? 0 : st[d]);
            ref[f] = bv[g];
        }
        char label[128];
        snprintf(label, sizeof label, "%s values", cases[i].what);
        tu_compare_exact(label, v, EM_F32, cases[i].nd, cases[i].shape, ref);
        em_tensor *c = em_contiguous(v);
        snprintf(label, sizeof label, "contiguous(%s)", cases[i].what);
        tu_compare_exact(label, c, EM_F32, cases[i].nd, cases[i].shape, ref);
        em_tensor_release(c);
        double r2[24];
        for (int64_t f = 0; f < n; f++) r2[f] = ref[f] * 2 + 1;
        em_tensor *m2 = em_mul_scalar(v, 2);
        em_tensor *m = m2 ? em_add_scalar(m2, 1) : NULL;
        snprintf(label, sizeof label, "2x+1 on %s", cases[i].what);
        tu_compare_exact(label, m, EM_F32, cases[i].nd, cases[i].shape, r2);
        em_tensor_release(m);
        em_tensor_release(m2);
        em_tensor *fl = em_reshape(v, EM_SHAPE(-1));
        int64_t sn[1] = {n};
        snprintf(label, sizeof label, "reshape(-1) of %s", cases[i].what);
        tu_compare_exact(label, fl, EM_F32, 1, sn, ref);
        em_tensor_release(fl);
        double s = 0;
        for (int64_t f = 0; f < n; f++) s += ref[f];
        em_tensor *sm = em_sum(v, NULL, 0, false);
        snprintf(label, sizeof label, "sum of %s", cases[i].what);
        tu_compare_exact(label, sm, EM_F32, 0, sn, &s);
        em_tensor_release(sm);
    }
    /* matmul with [6,1] and [1,4] operands built from strided views */
    if (rowT && colT) {
        em_tensor *p = em_matmul(rowT, colT); /* [6,4]: row2[i] * col3[j] */
        double pr[24];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++) pr[i * 4 + j] = bv[12 + i] * bv[j * 6 + 3];
        int64_t s64[2] = {6, 4};
        tu_compare_exact("matmul of [6,1] view x [1,4] view", p, EM_F32, 2, s64, pr);
        em_tensor_release(p);
    }
    for (int i = 0; i < nc; i++) em_tensor_release(cases[i].v);
    em_tensor_release(t);
}

int main(void)
{
    tu_init("test_views");
    test_reshape_view();
    test_transpose_permute();
    test_squeeze_unsqueeze_expand();
    test_narrow_slice_select();
    test_contiguous_clone();
    test_write_through_views();
    test_view_lifetime();
    test_contiguity_rules();
    em_shutdown();
    return tu_finish();
}
