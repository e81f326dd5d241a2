/*
 * test_creation.c — creation functions and host I/O: from_data in every
 * dtype (raw bytes back with em_tensor_read), from_floats/doubles/ints,
 * scalars and item, empty/zeros/ones/full, arange (negative and float steps,
 * count = ceil((end-start)/step)), linspace (exact endpoints), eye, the
 * *_like functions, and random numbers: rand/randn/randint statistics, the
 * documented Philox4x32-10 stream (checked against this file's own Philox,
 * itself checked against Random123's known-answer vectors), em_manual_seed
 * reproducibility and explicit generators independent of the global one.
 * Not for views or ops.
 */
#include "test_util.h"

/* ------------------------------------------------------------------------ */
/* from_data / read                                                          */
/* ------------------------------------------------------------------------ */

static void test_from_data(void)
{
    static const double base[6] = {1.5, -2.25, 0, 3, -0.125, 1000};
    int64_t sh[2] = {2, 3};
    for (int di = 0; di < 7; di++) {
        em_dtype d = tu_all_dtypes[di];
        unsigned char raw[48], back[48];
        double v[6];
        for (int i = 0; i < 6; i++) {
            v[i] = tu_round(base[i], d);
            tu_store(raw, i, v[i], d);
        }
        em_clear_error();
        em_tensor *t = em_tensor_from_data(raw, d, 2, sh, NULL);
        CHECK_NONNULL(t);
        if (!t) continue;
        CHECK(em_tensor_dtype(t) == d);
        CHECK(em_tensor_ndim(t) == 2 && em_tensor_numel(t) == 6);
        CHECK(em_tensor_device(t) == em_device_default());
        CHECK(em_tensor_is_contiguous(t));
        /* 0, or just past the guard region with EMBER_GUARD=1 (see core/guard.c) */
        const char *guard = getenv("EMBER_GUARD");
        CHECK(em_tensor_offset(t) == (guard && !strcmp(guard, "1") ? (int64_t)(256 / tu_size(d)) : 0));
        memset(back, 0xAB, sizeof back);
        CHECK_OK(em_tensor_read(t, back, 6 * tu_size(d)));
        CHECKF(memcmp(raw, back, 6 * tu_size(d)) == 0, "from_data/read %s: bytes differ", tu_dt(d));
        char label[64];
        snprintf(label, sizeof label, "from_data %s read_f64", tu_dt(d));
        tu_compare_exact(label, t, d, 2, sh, v);
        /* a too-small destination is refused */
        em_status st1 = em_tensor_read(t, back, 6 * tu_size(d) - 1);
        em_status st2 = em_tensor_read_f64(t, v, 5);
        CHECKF(st1 != EM_OK && st2 != EM_OK, "read %s into a too-small buffer: %s / %s", tu_dt(d),
               em_status_str(st1), em_status_str(st2));
        em_clear_error();
        /* item on a one-element tensor */
        em_tensor *e = em_select(t, 1, 0);
        em_tensor *e0 = e ? em_select(e, 0, 1) : NULL;
        double item = 0;
        if (e0) CHECK_OK(em_tensor_item(e0, &item));
        CHECKF(item == tu_round(3, d), "item %s: %g", tu_dt(d), item);
        em_tensor_release(e0);
        em_tensor_release(e);
        em_status st3 = em_tensor_item(t, &item);
        CHECKF(st3 != EM_OK, "item of a 6-element tensor returned EM_OK");
        em_clear_error();
        em_tensor_release(t);
    }
    /* from_floats / from_doubles / from_ints */
    float fv[3] = {0.1f, -2, 3.5f};
    em_tensor *t = em_tensor_from_floats(fv, EM_SHAPE(3));
    double rf[3] = {(double)0.1f, -2, 3.5};
    int64_t s3[1] = {3};
    tu_compare_exact("from_floats is f32", t, EM_F32, 1, s3, rf);
    em_tensor_release(t);
    double dv[3] = {0.1, 1e-50, 1.0 / 3.0};
    t = em_tensor_from_doubles(dv, EM_SHAPE(3));
    double rd[3] = {tu_round_f32(0.1), tu_round_f32(1e-50), tu_round_f32(1.0 / 3.0)};
    tu_compare_exact("from_doubles is f32 (rounded)", t, EM_F32, 1, s3, rd);
    em_tensor_release(t);
    int64_t iv[3] = {-5, 0, (int64_t)1 << 40};
    t = em_tensor_from_ints(iv, EM_SHAPE(3));
    double ri[3] = {-5, 0, 1099511627776.0};
    tu_compare_exact("from_ints is i64", t, EM_I64, 1, s3, ri);
    int64_t ib[3];
    if (t) {
        CHECK_OK(em_tensor_read(t, ib, sizeof ib));
        CHECK(ib[2] == ((int64_t)1 << 40));
    }
    em_tensor_release(t);
    /* scalars */
    em_tensor *s = em_scalar(0.1);
    double x = 0;
    CHECK(s && em_tensor_ndim(s) == 0 && em_tensor_numel(s) == 1 && em_tensor_dtype(s) == EM_F32);
    CHECK_OK(em_tensor_item(s, &x));
    CHECK(x == (double)0.1f);
    em_tensor_release(s);
    s = em_scalar_int(-((int64_t)1 << 50));
    CHECK(s && em_tensor_ndim(s) == 0 && em_tensor_dtype(s) == EM_I64);
    CHECK_OK(em_tensor_item(s, &x));
    CHECK(x == -1125899906842624.0);
    em_tensor_release(s);
    /* an empty tensor */
    t = em_tensor_from_data(fv, EM_F32, EM_SHAPE(0, 3), NULL);
    CHECK(t && em_tensor_numel(t) == 0 && em_tensor_dim(t, 0) == 0 && em_tensor_dim(t, 1) == 3);
    em_clear_error();
    em_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* zeros / ones / full / empty / eye / *_like                                */
/* ------------------------------------------------------------------------ */

static void test_fill_creators(void)
{
    int64_t sh[3] = {2, 3, 4};
    double ref[24];
    for (int di = 0; di < 7; di++) {
        em_dtype d = tu_all_dtypes[di];
        char label[64];
        em_tensor *t;
        for (int i = 0; i < 24; i++) ref[i] = 0;
        snprintf(label, sizeof label, "zeros %s [2,3,4]", tu_dt(d));
        tu_compare_exact(label, t = em_zeros(d, 3, sh, NULL), d, 3, sh, ref);
        em_tensor_release(t);
        for (int i = 0; i < 24; i++) ref[i] = 1;
        snprintf(label, sizeof label, "ones %s [2,3,4]", tu_dt(d));
        tu_compare_exact(label, t = em_ones(d, 3, sh, NULL), d, 3, sh, ref);
        em_tensor_release(t);
        double fv = tu_is_float(d) ? -2.75 : d == EM_BOOL ? 1 : -7;
        for (int i = 0; i < 24; i++) ref[i] = fv;
        snprintf(label, sizeof label, "full %s [2,3,4] %g", tu_dt(d), fv);
        tu_compare_exact(label, t = em_full(fv, d, 3, sh, NULL), d, 3, sh, ref);
        em_tensor_release(t);
        if (tu_is_float(d)) {
            for (int i = 0; i < 24; i++) ref[i] = tu_round(1.0 / 3.0, d);
            snprintf(label, sizeof label, "full %s 1/3 rounded", tu_dt(d));
            tu_compare_exact(label, t = em_full(1.0 / 3.0, d, 3, sh, NULL), d, 3, sh, ref);
            em_tensor_release(t);
        }
        t = em_empty(d, 3, sh, NULL);
        CHECK(t && em_tensor_dtype(t) == d && tu_has_shape(t, 3, sh) && em_tensor_is_contiguous(t));
        em_tensor_release(t);
        t = em_zeros(d, 0, NULL, NULL);
        double z = 0;
        snprintf(label, sizeof label, "zeros %s 0-d", tu_dt(d));
        tu_compare_exact(label, t, d, 0, sh, &z);
        em_tensor_release(t);
        int64_t e0[2] = {0, 5};
        t = em_ones(d, 2, e0, NULL);
        CHECK(t && em_tensor_numel(t) == 0 && tu_has_shape(t, 2, e0));
        em_tensor_release(t);
        /* eye */
        static const int64_t nm[][2] = {{3, -1}, {2, 4}, {4, 2}, {1, 1}, {0, -1}, {3, 0}};
        for (size_t k = 0; k < sizeof nm / sizeof nm[0]; k++) {
            int64_t n = nm[k][0], m = nm[k][1] < 0 ? n : nm[k][1];
            double er[16];
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < m; j++) er[i * m + j] = i == j;
            int64_t es[2] = {n, m};
            snprintf(label, sizeof label, "eye %s %" PRId64 "x%" PRId64, tu_dt(d), n, nm[k][1]);
            tu_compare_exact(label, t = em_eye(n, nm[k][1], d, NULL), d, 2, es, er);
            em_tensor_release(t);
        }
        /* *_like on a transposed view: shape, dtype, device of t; contiguous */
        double v[6];
        int64_t s23[2] = {2, 3}, s32[2] = {3, 2};
        tu_fill(v, 6, d, -3, 3);
        em_tensor *base = tu_make(v, d, 2, s23, TU_CONTIG);
        em_tensor *tv = base ? em_T(base) : NULL;
        if (!tv) continue;
        em_tensor *l = em_empty_like(tv);
        CHECK(l && em_tensor_dtype(l) == d && tu_has_shape(l, 2, s32) &&
              em_tensor_device(l) == em_tensor_device(tv) && !em_tensor_shares_storage(l, tv));
        em_tensor_release(l);
        for (int i = 0; i < 6; i++) ref[i] = 0;
        snprintf(label, sizeof label, "zeros_like %s", tu_dt(d));
        tu_compare_exact(label, l = em_zeros_like(tv), d, 2, s32, ref);
        em_tensor_release(l);
        for (int i = 0; i < 6; i++) ref[i] = 1;
        snprintf(label, sizeof label, "ones_like %s", tu_dt(d));
        tu_compare_exact(label, l = em_ones_like(tv), d, 2, s32, ref);
        em_tensor_release(l);
        for (int i = 0; i < 6; i++) ref[i] = d == EM_BOOL ? 1 : 5;
        snprintf(label, sizeof label, "full_like %s", tu_dt(d));
        tu_compare_exact(label, l = em_full_like(tv, 5), d, 2, s32, ref);
        em_tensor_release(l);
        em_tensor_release(tv);
        em_tensor_release(base);
    }
}

/* ------------------------------------------------------------------------ */
/* arange / linspace                                                         */
/* ------------------------------------------------------------------------ */

static void test_arange(void)
{
    static const struct { double start, end, step; em_dtype d; } cases[] = {
        {0, 10, 1, EM_I64}, {0, 10, 1, EM_F32}, {0, 1, 0.1, EM_F32}, {10, 0, -1.5, EM_F32},
        {-3, 3, 1, EM_I32}, {0.5, 2.5, 0.5, EM_F64}, {5, 5, 1, EM_F32}, {0, 10, 3, EM_I32},
        {-1, -2, -0.25, EM_F64}, {0, 1000, 1, EM_F16}, {0, 1, 0.1, EM_BF16},
        {0, 100000, 1, EM_F32}, {2, -8, -3, EM_I64}, {0, 0.3, 0.1, EM_F64},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double st = cases[c].start, en = cases[c].end, sp = cases[c].step;
        em_dtype d = cases[c].d;
        double cnt = ceil((en - st) / sp);
        int64_t n = cnt > 0 ? (int64_t)cnt : 0;
        double *ref = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) ref[i] = tu_round(st + (double)i * sp, d);
        em_clear_error();
        em_tensor *t = em_arange(st, en, sp, d, NULL);
        char label[128];
        snprintf(label, sizeof label, "arange(%g, %g, %g) %s count %" PRId64, st, en, sp, tu_dt(d), n);
        int64_t sh[1] = {n};
        tu_tol tol = {0, 0, tu_is_float(d) ? 1 : 0};
        tu_compare(label, t, d, 1, sh, ref, tol);
        em_tensor_release(t);
        free(ref);
    }
    /* a step pointing away from end is an error, as torch.arange */
    CHECK_FAILS(em_arange(1, 0, 1, EM_F32, NULL), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_arange(0, 1, -1, EM_I64, NULL), EM_ERR_INVALID_ARG);
}

static void test_linspace(void)
{
    static const struct { double start, end; int64_t steps; em_dtype d; } cases[] = {
        {0, 1, 5, EM_F32}, {-1.3, 2.7, 7, EM_F32}, {-1.3, 2.7, 7, EM_F64}, {3, -3, 13, EM_F64},
        {2, 9, 1, EM_F32}, {2, 9, 0, EM_F32}, {0.1, 0.7, 1000, EM_F32}, {-5, 5, 11, EM_F16},
        {1, 2, 33, EM_BF16}, {0, 10, 6, EM_I64}, {1e-3, 1e3, 101, EM_F64},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double st = cases[c].start, en = cases[c].end;
        int64_t n = cases[c].steps;
        em_dtype d = cases[c].d;
        double *ref = malloc(sizeof(double) * (size_t)(n + 1));
        double *scale = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) {
            ref[i] = n == 1 ? st : st + (en - st) * (double)i / (double)(n - 1);
            ref[i] = tu_round(ref[i], d);
            scale[i] = fmax(fabs(st), fabs(en));
        }
        em_clear_error();
        em_tensor *t = em_linspace(st, en, n, d, NULL);
        char label[128];
        snprintf(label, sizeof label, "linspace(%g, %g, %" PRId64 ") %s", st, en, n, tu_dt(d));
        int64_t sh[1] = {n};
        tu_tol tol = {0, d == EM_F64 ? 4e-16 : d == EM_F32 ? 2.4e-7 : 0, tu_is_float(d) ? 1 : 0};
        tu_compare_scaled(label, t, d, 1, sh, ref, scale, tol, 1);
        /* the endpoints are exact */
        double *got = (t && n > 0) ? tu_read(t) : NULL;
        if (got) {
            CHECKF(got[0] == tu_round(st, d), "%s: first %.17g != start %.17g", label, got[0], tu_round(st, d));
            if (n > 1)
                CHECKF(got[n - 1] == tu_round(en, d), "%s: last %.17g != end %.17g", label, got[n - 1],
                       tu_round(en, d));
        }
        free(got);
        em_tensor_release(t);
        free(ref);
        free(scale);
    }
}

/* ------------------------------------------------------------------------ */
/* Random numbers                                                            */
/* ------------------------------------------------------------------------ */

/* Philox4x32-10 written from the Random123 paper, independent of
 * ember_plugin.h. */
static void philox(uint32_t k0, uint32_t k1, const uint32_t ctr[4], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    for (int r = 0; r < 10; r++) {
        uint64_t a = (uint64_t)0xD2511F53u * c[0];
        uint64_t b = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(b >> 32) ^ c[1] ^ k0;
        uint32_t n1 = (uint32_t)b;
        uint32_t n2 = (uint32_t)(a >> 32) ^ c[3] ^ k1;
        uint32_t n3 = (uint32_t)a;
        c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    memcpy(out, c, sizeof c);
}

static void philox_block(uint64_t seed, uint64_t offset, uint64_t i, uint32_t x[4])
{
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), (uint32_t)offset, (uint32_t)(offset >> 32)};
    philox((uint32_t)seed, (uint32_t)(seed >> 32), ctr, x);
}

static void test_philox_kat(void)
{
    /* Random123 kat_vectors, philox4x32 10 */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        philox(kat[k][4], kat[k][5], kat[k], out);
        CHECKF(out[0] == kat[k][6] && out[1] == kat[k][7] && out[2] == kat[k][8] && out[3] == kat[k][9],
               "test's own Philox KAT %d: got %08x %08x %08x %08x", k, out[0], out[1], out[2], out[3]);
    }
}

enum { RK_UNIFORM, RK_NORMAL, RK_RANDINT };

/* The documented value of element i of a random op. */
static double philox_value(int kind, em_dtype d, uint64_t seed, uint64_t offset, uint64_t i,
                           int64_t low, int64_t high)
{
    uint32_t x[4];
    philox_block(seed, offset, i, x);
    if (kind == RK_UNIFORM) {
        if (d == EM_F64) return (double)(((uint64_t)x[0] << 21) | (x[1] >> 11)) * 0x1p-53;
        if (d == EM_F16) return (double)(x[0] >> 21) * 0x1p-11;
        if (d == EM_BF16) return (double)(x[0] >> 24) * 0x1p-8;
        return (double)(x[0] >> 8) * 0x1p-24;
    }
    if (kind == RK_NORMAL) {
        double u1 = ((double)x[0] + 1.0) * 0x1p-32, u2 = (double)x[1] * 0x1p-32;
        return tu_round(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2), d);
    }
    uint64_t r = ((uint64_t)x[1] << 32) | x[0];
    return (double)(low + (int64_t)(r % (uint64_t)(high - low)));
}

/* Compares t with the documented stream for (seed, offset); on mismatch
 * also says whether a neighbouring offset would have matched. */
static void check_stream(const char *label, em_tensor *t, int kind, em_dtype d, uint64_t seed,
                         uint64_t offset, int64_t low, int64_t high)
{
    int64_t n = em_tensor_numel(t), sh[1] = {n};
    double *ref = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) ref[i] = philox_value(kind, d, seed, offset, (uint64_t)i, low, high);
    tu_tol tol = {kind == RK_NORMAL ? 1e-12 : 0, 0, kind == RK_NORMAL ? 1 : 0};
    em_tensor *flat = em_reshape(t, 1, sh);
    if (!tu_compare(label, flat, d, 1, sh, ref, tol)) {
        for (uint64_t off = 0; off < 4; off++) {
            double *got = tu_read(flat);
            int same = got != NULL;
            for (int64_t i = 0; same && i < n; i++)
                same = fabs(got[i] - philox_value(kind, d, seed, off, (uint64_t)i, low, high)) <= 1e-6 * fabs(got[i]) + 1e-9;
            if (same) printf("  (%s: the values match offset %" PRIu64 " instead of %" PRIu64 ")\n", label, off, offset);
            free(got);
        }
    }
    em_tensor_release(flat);
    free(ref);
}

static void test_default_seed(void)
{
    /* Before any em_manual_seed call, the global generator has seed 0. */
    em_tensor *a = em_rand(NULL, EM_F32, EM_SHAPE(64), NULL);
    if (a) check_stream("rand f32 with the default seed 0 (first op)", a, RK_UNIFORM, EM_F32, 0, 0, 0, 0);
    em_tensor_release(a);
    em_manual_seed(0);
    em_tensor *b = em_rand(NULL, EM_F32, EM_SHAPE(64), NULL);
    if (b) check_stream("rand f32 after em_manual_seed(0)", b, RK_UNIFORM, EM_F32, 0, 0, 0, 0);
    em_tensor_release(b);
}

static void moments(const double *x, int64_t n, double *mean, double *var)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
    *var = s2 / (double)(n - 1);
}

static void test_random_stats(void)
{
    const int64_t N = 100000;
    int64_t sh[2] = {250, 400};
    em_manual_seed(tu_seed);
    for (int di = 0; di < 4; di++) {
        em_dtype d = tu_float_dtypes[di];
        em_tensor *t = em_rand(NULL, d, 2, sh, NULL);
        CHECK(t && em_tensor_dtype(t) == d && tu_has_shape(t, 2, sh));
        double *x = tu_read(t);
        if (x) {
            int64_t out = 0, ones = 0;
            for (int64_t i = 0; i < N; i++) {
                out += !(x[i] >= 0 && x[i] < 1);
                ones += x[i] == 1.0;
            }
            double m, v;
            moments(x, N, &m, &v);
            printf("rand %s 1e5 samples: mean %.5f (0.5) var %.5f (%.5f) outside [0,1): %" PRId64 "\n",
                   tu_dt(d), m, v, 1.0 / 12, out);
            CHECKF(out == 0, "rand %s: %" PRId64 " samples outside [0,1) (%" PRId64 " of them exactly 1.0)",
                   tu_dt(d), out, ones);
            CHECKF(fabs(m - 0.5) < 0.005, "rand %s mean %g", tu_dt(d), m);
            CHECKF(fabs(v - 1.0 / 12) < 0.002, "rand %s var %g", tu_dt(d), v);
            /* not constant, not all identical within a row */
            CHECK(x[0] != x[1] || x[1] != x[2]);
        }
        free(x);
        em_tensor_release(t);

        t = em_randn(NULL, d, 2, sh, NULL);
        CHECK(t && em_tensor_dtype(t) == d);
        x = tu_read(t);
        if (x) {
            double m, v;
            int64_t within1 = 0, nonfinite = 0;
            moments(x, N, &m, &v);
            for (int64_t i = 0; i < N; i++) {
                within1 += fabs(x[i]) < 1;
                nonfinite += !isfinite(x[i]);
            }
            double f1 = (double)within1 / (double)N;
            printf("randn %s 1e5 samples: mean %.5f (0) std %.5f (1) P(|x|<1) %.4f (0.6827)\n", tu_dt(d),
                   m, sqrt(v), f1);
            CHECKF(fabs(m) < 0.02, "randn %s mean %g", tu_dt(d), m);
            CHECKF(fabs(sqrt(v) - 1) < 0.02, "randn %s std %g", tu_dt(d), sqrt(v));
            CHECKF(fabs(f1 - 0.6827) < 0.01, "randn %s P(|x|<1) %g", tu_dt(d), f1);
            CHECK(nonfinite == 0);
        }
        free(x);
        em_tensor_release(t);
    }
    static const int64_t ranges[][2] = {{-3, 4}, {0, 2}, {1000000, 1000010}, {-5, -4}};
    for (int ii = 0; ii < 2; ii++)
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            em_dtype d = ii ? EM_I32 : EM_I64;
            int64_t lo = ranges[r][0], hi = ranges[r][1], k = hi - lo;
            em_tensor *t = em_randint(NULL, lo, hi, d, 1, &N, NULL);
            CHECK(t && em_tensor_dtype(t) == d);
            double *x = tu_read(t);
            if (!x) { em_tensor_release(t); continue; }
            int64_t counts[16] = {0}, out = 0, nonint = 0;
            for (int64_t i = 0; i < N; i++) {
                if (x[i] != floor(x[i])) nonint++;
                if (x[i] < lo || x[i] >= hi) out++;
                else counts[(int64_t)x[i] - lo]++;
            }
            int even = 1;
            for (int64_t j = 0; j < k; j++)
                if (fabs((double)counts[j] / (double)N - 1.0 / (double)k) > 0.01) even = 0;
            printf("randint %s [%" PRId64 ",%" PRId64 ") 1e5 samples: outside %" PRId64 ", uniform %s\n", tu_dt(d),
                   lo, hi, out, even ? "yes" : "no");
            CHECKF(out == 0 && nonint == 0, "randint %s [%" PRId64 ",%" PRId64 "): %" PRId64 " outside", tu_dt(d), lo, hi, out);
            CHECKF(even, "randint %s [%" PRId64 ",%" PRId64 "): counts not uniform", tu_dt(d), lo, hi);
            free(x);
            em_tensor_release(t);
        }
}

/* Same seed -> same numbers; different seeds differ; the documented stream. */
static void test_seeding(void)
{
    uint64_t seed = tu_seed ^ 0x5DEECE66Dull;
    int64_t sh[2] = {7, 9};
    for (int di = 0; di < 4; di++) {
        em_dtype d = tu_float_dtypes[di];
        em_manual_seed(seed);
        em_tensor *a = em_rand(NULL, d, 2, sh, NULL);
        em_tensor *an = em_randn(NULL, d, 2, sh, NULL);
        em_manual_seed(seed);
        em_tensor *b = em_rand(NULL, d, 2, sh, NULL);
        em_tensor *bn = em_randn(NULL, d, 2, sh, NULL);
        em_manual_seed(seed + 1);
        em_tensor *c = em_rand(NULL, d, 2, sh, NULL);
        double *xa = tu_read(a), *xb = tu_read(b), *xc = tu_read(c), *xan = tu_read(an), *xbn = tu_read(bn);
        if (xa && xb && xc && xan && xbn) {
            int same = 1, samen = 1, diff = 0, adv = 0;
            for (int i = 0; i < 63; i++) {
                same &= xa[i] == xb[i];
                samen &= xan[i] == xbn[i];
                diff += xa[i] != xc[i];
                adv += xa[i] != xan[i];
            }
            CHECKF(same, "rand %s: same seed gave different numbers", tu_dt(d));
            CHECKF(samen, "randn %s: same seed gave different numbers", tu_dt(d));
            CHECKF(diff > 50, "rand %s: different seeds gave %d/63 different values", tu_dt(d), diff);
            CHECKF(adv > 50, "rand/randn %s: consecutive ops look identical", tu_dt(d));
        }
        free(xa); free(xb); free(xc); free(xan); free(xbn);
        em_tensor_release(a); em_tensor_release(b); em_tensor_release(c);
        em_tensor_release(an); em_tensor_release(bn);
    }
    /* the documented Philox stream, offset advancing by one per op */
    em_manual_seed(seed);
    em_tensor *u = em_rand(NULL, EM_F32, 2, sh, NULL);
    em_tensor *u64 = em_rand(NULL, EM_F64, 2, sh, NULL);
    em_tensor *n32 = em_randn(NULL, EM_F32, 2, sh, NULL);
    em_tensor *n64 = em_randn(NULL, EM_F64, 2, sh, NULL);
    em_tensor *ri = em_randint(NULL, -5, 1000, EM_I64, 2, sh, NULL);
    em_tensor *ri32 = em_randint(NULL, 3, 10, EM_I32, 2, sh, NULL);
    em_tensor *n16 = em_randn(NULL, EM_F16, 2, sh, NULL);
    em_tensor *nbf = em_randn(NULL, EM_BF16, 2, sh, NULL);
    const int64_t lo = -((int64_t)1 << 62), hi = (int64_t)1 << 62;
    em_tensor *rbig = em_randint(NULL, lo, hi, EM_I64, 2, sh, NULL);
    if (u) check_stream("rand f32 Philox stream (offset 0)", u, RK_UNIFORM, EM_F32, seed, 0, 0, 0);
    if (u64) check_stream("rand f64 Philox stream (offset 1)", u64, RK_UNIFORM, EM_F64, seed, 1, 0, 0);
    if (n32) check_stream("randn f32 Philox stream (offset 2)", n32, RK_NORMAL, EM_F32, seed, 2, 0, 0);
    if (n64) check_stream("randn f64 Philox stream (offset 3)", n64, RK_NORMAL, EM_F64, seed, 3, 0, 0);
    if (ri) check_stream("randint i64 [-5,1000) Philox stream (offset 4)", ri, RK_RANDINT, EM_I64, seed, 4, -5, 1000);
    if (ri32) check_stream("randint i32 [3,10) Philox stream (offset 5)", ri32, RK_RANDINT, EM_I32, seed, 5, 3, 10);
    if (n16) check_stream("randn f16 Philox stream (offset 6)", n16, RK_NORMAL, EM_F16, seed, 6, 0, 0);
    if (nbf) check_stream("randn bf16 Philox stream (offset 7)", nbf, RK_NORMAL, EM_BF16, seed, 7, 0, 0);
    if (rbig) {
        /* compared as exact int64 (doubles cannot hold them) */
        int64_t got[63];
        int same = em_tensor_read(rbig, got, sizeof got) == EM_OK;
        for (int i = 0; same && i < 63; i++) {
            uint32_t x[4];
            philox_block(seed, 8, (uint64_t)i, x);
            uint64_t r = ((uint64_t)x[1] << 32) | x[0];
            uint64_t range = (uint64_t)hi - (uint64_t)lo; /* 2^63: only fits unsigned */
            same = got[i] == (int64_t)((uint64_t)lo + r % range);
        }
        CHECKF(same, "randint i64 [-2^62, 2^62) Philox stream (offset 8) differs");
    }
    em_tensor_release(n16); em_tensor_release(nbf); em_tensor_release(rbig);
    em_tensor_release(u); em_tensor_release(u64); em_tensor_release(n32);
    em_tensor_release(n64); em_tensor_release(ri); em_tensor_release(ri32);
}

/* Explicit generators have their own stream; the global one is unaffected. */
static void test_generators(void)
{
    int64_t sh[1] = {50};
    uint64_t gs = tu_seed + 17;
    em_generator *g1 = em_generator_create(gs);
    CHECK_NONNULL(g1);
    em_tensor *a1 = em_rand(g1, EM_F32, 1, sh, NULL);
    em_tensor *a2 = em_randn(g1, EM_F32, 1, sh, NULL);
    if (a1) check_stream("rand with explicit generator (offset 0)", a1, RK_UNIFORM, EM_F32, gs, 0, 0, 0);
    /* a second generator with the same seed, used between global calls */
    em_manual_seed(99);
    em_tensor *gl1 = em_rand(NULL, EM_F32, 1, sh, NULL);
    em_generator *g2 = em_generator_create(gs);
    em_tensor *b1 = em_rand(g2, EM_F32, 1, sh, NULL);
    em_tensor *gl2 = em_rand(NULL, EM_F32, 1, sh, NULL);
    em_tensor *b2 = em_randn(g2, EM_F32, 1, sh, NULL);
    double *x1 = tu_read(a1), *x2 = tu_read(a2), *y1 = tu_read(b1), *y2 = tu_read(b2);
    int same = x1 && x2 && y1 && y2;
    for (int i = 0; same && i < 50; i++) same = x1[i] == y1[i] && x2[i] == y2[i];
    CHECKF(same, "two generators with one seed differ when global calls are interleaved");
    free(x1); free(x2); free(y1); free(y2);
    /* the global stream did not see the generator calls */
    em_manual_seed(99);
    em_tensor *h1 = em_rand(NULL, EM_F32, 1, sh, NULL);
    em_tensor *h2 = em_rand(NULL, EM_F32, 1, sh, NULL);
    double *p1 = tu_read(gl1), *p2 = tu_read(gl2), *q1 = tu_read(h1), *q2 = tu_read(h2);
    same = p1 && p2 && q1 && q2;
    for (int i = 0; same && i < 50; i++) same = p1[i] == q1[i] && p2[i] == q2[i];
    CHECKF(same, "generator calls changed the global stream");
    free(p1); free(p2); free(q1); free(q2);
    /* rand_like / randn_like: shape and dtype of t, stream of gen */
    em_tensor *proto = em_zeros(EM_F64, EM_SHAPE(3, 5), NULL);
    em_generator *g3 = em_generator_create(5);
    em_tensor *l1 = proto ? em_rand_like(proto, g3) : NULL;
    em_tensor *l2 = proto ? em_randn_like(proto, g3) : NULL;
    int64_t s35[2] = {3, 5};
    CHECK(l1 && em_tensor_dtype(l1) == EM_F64 && tu_has_shape(l1, 2, s35));
    CHECK(l2 && em_tensor_dtype(l2) == EM_F64 && tu_has_shape(l2, 2, s35));
    if (l1) check_stream("rand_like f64 with generator (offset 0)", l1, RK_UNIFORM, EM_F64, 5, 0, 0, 0);
    if (l2) check_stream("randn_like f64 with generator (offset 1)", l2, RK_NORMAL, EM_F64, 5, 1, 0, 0);
    em_tensor *l3 = proto ? em_rand_like(proto, NULL) : NULL;
    CHECK(l3 && em_tensor_dtype(l3) == EM_F64 && tu_has_shape(l3, 2, s35));
    em_tensor_release(l1); em_tensor_release(l2); em_tensor_release(l3); em_tensor_release(proto);
    em_tensor_release(a1); em_tensor_release(a2); em_tensor_release(b1); em_tensor_release(b2);
    em_tensor_release(gl1); em_tensor_release(gl2); em_tensor_release(h1); em_tensor_release(h2);
    em_generator_destroy(g1);
    em_generator_destroy(g2);
    em_generator_destroy(g3);
    em_generator_destroy(NULL); /* no-op */
    /* dtype rules: rand needs floating, randint integral */
    CHECK_FAILS(em_rand(NULL, EM_I32, EM_SHAPE(3), NULL), EM_ERR_DTYPE);
    CHECK_FAILS(em_randn(NULL, EM_BOOL, EM_SHAPE(3), NULL), EM_ERR_DTYPE);
    CHECK_FAILS(em_randint(NULL, 0, 5, EM_F32, EM_SHAPE(3), NULL), EM_ERR_DTYPE);
    CHECK_FAILS(em_randint(NULL, 5, 5, EM_I64, EM_SHAPE(3), NULL), EM_ERR_INVALID_ARG);
}

int main(void)
{
    tu_init("test_creation");
    test_default_seed(); /* first: before anything touches the global generator */
    test_philox_kat();
    test_from_data();
    test_fill_creators();
    test_arange();
    test_linspace();
    test_random_stats();
    test_seeding();
    test_generators();
    em_shutdown();
    return tu_finish();
}
