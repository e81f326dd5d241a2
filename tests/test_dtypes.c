/*
 * test_dtypes.c — dtype facts and promotion: em_dtype_name/size/is_float
 * (including invalid values), em_promote_types against a table of PyTorch's
 * torch.promote_types results, the result dtypes of binary ops on every pair,
 * the scalar-promotion rule documented at the top of ember.h, true division,
 * and f16/bf16 rounding of known values (bits and values).
 * Not for cast semantics on many values (test_data.c).
 */
#include "test_util.h"

/* torch.promote_types(row, col), order f32 f64 f16 bf16 i32 i64 bool. */
static const em_dtype torch_promote[7][7] = {
    /* f32 */ {EM_F32, EM_F64, EM_F32, EM_F32, EM_F32, EM_F32, EM_F32},
    /* f64 */ {EM_F64, EM_F64, EM_F64, EM_F64, EM_F64, EM_F64, EM_F64},
    /* f16 */ {EM_F32, EM_F64, EM_F16, EM_F32, EM_F16, EM_F16, EM_F16},
    /* bf16*/ {EM_F32, EM_F64, EM_F32, EM_BF16, EM_BF16, EM_BF16, EM_BF16},
    /* i32 */ {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_I32},
    /* i64 */ {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I64, EM_I64, EM_I64},
    /* bool*/ {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I32, EM_I64, EM_BOOL},
};

static void test_facts(void)
{
    static const char *names[7] = {"f32", "f64", "f16", "bf16", "i32", "i64", "bool"};
    static const size_t sizes[7] = {4, 8, 2, 2, 4, 8, 1};
    static const bool isf[7] = {true, true, true, true, false, false, false};
    for (int d = 0; d < 7; d++) {
        CHECKF(strcmp(em_dtype_name((em_dtype)d), names[d]) == 0, "em_dtype_name(%d) = %s", d,
               em_dtype_name((em_dtype)d));
        CHECKF(em_dtype_size((em_dtype)d) == sizes[d], "em_dtype_size(%s) = %zu", names[d],
               em_dtype_size((em_dtype)d));
        CHECKF(em_dtype_is_float((em_dtype)d) == isf[d], "em_dtype_is_float(%s)", names[d]);
    }
    static const int invalid[] = {EM_DTYPE_COUNT, -1, 99, 1 << 20};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        em_dtype d = (em_dtype)invalid[i];
        CHECKF(strcmp(em_dtype_name(d), "invalid") == 0, "em_dtype_name(%d) = %s", invalid[i], em_dtype_name(d));
        CHECKF(em_dtype_size(d) == 0, "em_dtype_size(%d) = %zu", invalid[i], em_dtype_size(d));
        CHECKF(!em_dtype_is_float(d), "em_dtype_is_float(%d)", invalid[i]);
    }
}

static void test_promote_table(void)
{
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 7; b++) {
            em_dtype got = em_promote_types((em_dtype)a, (em_dtype)b);
            CHECKF(got == torch_promote[a][b], "em_promote_types(%s, %s) = %s, torch gives %s",
                   tu_dt((em_dtype)a), tu_dt((em_dtype)b), tu_dt(got), tu_dt(torch_promote[a][b]));
            /* the test's own rule agrees with the table (checks the harness) */
            CHECK(tu_promote((em_dtype)a, (em_dtype)b) == torch_promote[a][b]);
        }
}

/* Result dtypes of binary ops on every pair of dtypes. */
static void test_binary_result_dtypes(void)
{
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 7; b++) {
            em_tensor *x = em_ones((em_dtype)a, EM_SHAPE(2, 1), NULL);
            em_tensor *y = em_ones((em_dtype)b, EM_SHAPE(3), NULL);
            em_dtype want = torch_promote[a][b];
            em_clear_error();
            em_tensor *r = em_mul(x, y);
            CHECKF(r && em_tensor_dtype(r) == want, "mul(%s, %s) gives %s, want %s", tu_dt((em_dtype)a),
                   tu_dt((em_dtype)b), r ? tu_dt(em_tensor_dtype(r)) : "NULL", tu_dt(want));
            em_tensor_release(r);
            if (!(a == EM_BOOL && b == EM_BOOL)) {
                r = em_add(x, y);
                CHECKF(r && em_tensor_dtype(r) == want, "add(%s, %s) gives %s, want %s", tu_dt((em_dtype)a),
                       tu_dt((em_dtype)b), r ? tu_dt(em_tensor_dtype(r)) : "NULL", tu_dt(want));
                em_tensor_release(r);
            }
            /* true division: integers and bools give f32 */
            em_dtype wdiv = tu_is_float(want) ? want : EM_F32;
            r = em_div(x, y);
            CHECKF(r && em_tensor_dtype(r) == wdiv, "div(%s, %s) gives %s, want %s", tu_dt((em_dtype)a),
                   tu_dt((em_dtype)b), r ? tu_dt(em_tensor_dtype(r)) : "NULL", tu_dt(wdiv));
            em_tensor_release(r);
            r = em_lt(x, y);
            CHECKF(r && em_tensor_dtype(r) == EM_BOOL, "lt(%s, %s) is not bool", tu_dt((em_dtype)a), tu_dt((em_dtype)b));
            em_tensor_release(r);
            em_clear_error();
            em_tensor_release(x);
            em_tensor_release(y);
        }
}

/* "A scalar argument never widens a floating tensor; on an integer or bool
 * tensor a whole-number scalar keeps the tensor's dtype (bool becomes i64)
 * and a fractional one gives f32." */
static void test_scalar_rule(void)
{
    static const struct { em_dtype t; double s; em_dtype want; } cases[] = {
        {EM_F16, 2, EM_F16}, {EM_F16, 1e10, EM_F16}, {EM_BF16, 0.1, EM_BF16}, {EM_F32, 1e300, EM_F32},
        {EM_F64, 0.5, EM_F64}, {EM_I32, 2, EM_I32}, {EM_I32, -7, EM_I32}, {EM_I32, 2.5, EM_F32},
        {EM_I64, 3, EM_I64}, {EM_I64, 0.25, EM_F32}, {EM_BOOL, 1, EM_I64}, {EM_BOOL, 0, EM_I64},
        {EM_BOOL, 0.5, EM_F32}, {EM_I32, 1e12, EM_I32},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        em_tensor *t = em_ones(cases[c].t, EM_SHAPE(2), NULL);
        em_clear_error();
        em_tensor *r = em_add_scalar(t, cases[c].s);
        CHECKF(r && em_tensor_dtype(r) == cases[c].want, "add_scalar(%s, %g) gives %s, want %s",
               tu_dt(cases[c].t), cases[c].s, r ? tu_dt(em_tensor_dtype(r)) : "NULL", tu_dt(cases[c].want));
        em_tensor_release(r);
        r = em_mul_scalar(t, cases[c].s);
        CHECKF(r && em_tensor_dtype(r) == cases[c].want, "mul_scalar(%s, %g) gives %s, want %s",
               tu_dt(cases[c].t), cases[c].s, r ? tu_dt(em_tensor_dtype(r)) : "NULL", tu_dt(cases[c].want));
        em_tensor_release(r);
        /* division by a scalar is true division */
        em_dtype wdiv = tu_is_float(cases[c].want) ? cases[c].want : EM_F32;
        if (cases[c].s != 0) {
            r = em_div_scalar(t, cases[c].s);
            CHECKF(r && em_tensor_dtype(r) == wdiv, "div_scalar(%s, %g) gives %s, want %s", tu_dt(cases[c].t),
                   cases[c].s, r ? tu_dt(em_tensor_dtype(r)) : "NULL", tu_dt(wdiv));
            em_tensor_release(r);
        }
        r = em_gt_scalar(t, cases[c].s);
        CHECK(r && em_tensor_dtype(r) == EM_BOOL);
        em_tensor_release(r);
        em_tensor_release(t);
    }
    /* the value: f16 tensor * 1e10 overflows to inf in f16 (not widened) */
    em_tensor *h = em_ones(EM_F16, EM_SHAPE(1), NULL);
    em_tensor *r = em_mul_scalar(h, 1e10);
    double v = 0;
    if (r) em_tensor_item(r, &v);
    CHECKF(isinf(v) && v > 0, "f16 * 1e10 = %g, want inf", v);
    em_tensor_release(r);
    em_tensor_release(h);
    /* whole scalar on i32: exact integer arithmetic */
    em_tensor *i = em_full(7, EM_I32, EM_SHAPE(1), NULL);
    r = em_mul_scalar(i, 3);
    v = 0;
    if (r) em_tensor_item(r, &v);
    CHECK(v == 21);
    em_tensor_release(r);
    r = em_add_scalar(i, 0.5);
    v = 0;
    if (r) em_tensor_item(r, &v);
    CHECK(v == 7.5);
    em_tensor_release(r);
    em_tensor_release(i);
}

/* f16/bf16 rounding of known values, through every path into a tensor. */
static void test_half_rounding(void)
{
    static const struct { double x; double f16; uint16_t f16bits; double bf16; uint16_t bfbits; } known[] = {
        {1.0 / 3.0, 0.333251953125, 0x3555, 0.333984375, 0x3EAB},
        {1.0, 1.0, 0x3C00, 1.0, 0x3F80},
        {-2.5, -2.5, 0xC100, -2.5, 0xC020},
        {0.1, 0.0999755859375, 0x2E66, 0.10009765625, 0x3DCD},
        {65504.0, 65504.0, 0x7BFF, 65536.0, 0x4780},
        {65520.0, INFINITY, 0x7C00, 65536.0, 0x4780},
        {0x1p-24, 0x1p-24, 0x0001, 0x1p-24, 0x3380},
        {0x1p-25, 0.0, 0x0000, 0x1p-25, 0x3300},
        {3 * 0x1p-26, 0x1p-24, 0x0001, 3 * 0x1p-26, 0x3340},
        {1.0 + 0x1p-11, 1.0, 0x3C00, 1.0, 0x3F80},
        {1000.6, 1000.5, 0x63D1, 1000.0, 0x447A},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        /* the harness's own rounding agrees with the known values */
        CHECKF(tu_round_f16(known[k].x) == known[k].f16 && tu_f16_bits(known[k].x) == known[k].f16bits,
               "harness f16(%.17g)", known[k].x);
        CHECKF(tu_round_bf16(known[k].x) == known[k].bf16 && tu_bf16_bits(known[k].x) == known[k].bfbits,
               "harness bf16(%.17g)", known[k].x);
        for (int w = 0; w < 2; w++) {
            em_dtype d = w ? EM_BF16 : EM_F16;
            double want = w ? known[k].bf16 : known[k].f16;
            uint16_t wbits = w ? known[k].bfbits : known[k].f16bits;
            /* em_full, em_cast from f64, em_cast from f32 (when exact in f32) */
            em_tensor *a = em_full(known[k].x, d, EM_SHAPE(1), NULL);
            em_tensor *s = em_full(known[k].x, EM_F64, EM_SHAPE(1), NULL);
            em_tensor *b = s ? em_cast(s, d) : NULL;
            uint16_t bits[2] = {0, 0};
            double va = NAN, vb = NAN;
            if (a) { em_tensor_read(a, &bits[0], 2); em_tensor_item(a, &va); }
            if (b) { em_tensor_read(b, &bits[1], 2); em_tensor_item(b, &vb); }
            CHECKF(va == want && bits[0] == wbits, "full(%.17g, %s) = %.17g (0x%04x), want %.17g (0x%04x)",
                   known[k].x, tu_dt(d), va, bits[0], want, wbits);
            CHECKF(vb == want && bits[1] == wbits, "cast f64 %.17g -> %s = %.17g (0x%04x), want %.17g (0x%04x)",
                   known[k].x, tu_dt(d), vb, bits[1], want, wbits);
            em_tensor_release(a);
            em_tensor_release(b);
            em_tensor_release(s);
            /* from_data with the bits reads back the value */
            em_tensor *c = em_tensor_from_data(&wbits, d, EM_SHAPE(1), NULL);
            double vc = NAN;
            if (c) em_tensor_item(c, &vc);
            CHECKF(vc == want || (isnan(vc) && isnan(want)), "%s bits 0x%04x read as %.17g, want %.17g", tu_dt(d),
                   wbits, vc, want);
            em_tensor_release(c);
        }
    }
    printf("1/3 in f16 reads back %.12g, in bf16 %.9g\n", tu_round_f16(1.0 / 3.0), tu_round_bf16(1.0 / 3.0));
    /* bf16 of FLT_MAX overflows to inf; NaN stays NaN */
    em_tensor *s = em_full(FLT_MAX, EM_F32, EM_SHAPE(1), NULL);
    em_tensor *b = s ? em_cast(s, EM_BF16) : NULL;
    double v = 0;
    if (b) em_tensor_item(b, &v);
    CHECKF(isinf(v), "bf16(FLT_MAX) = %g, want inf", v);
    em_tensor_release(b);
    em_tensor_release(s);
    for (int w = 0; w < 2; w++) {
        em_tensor *n = em_full(NAN, w ? EM_BF16 : EM_F16, EM_SHAPE(1), NULL);
        v = 0;
        if (n) em_tensor_item(n, &v);
        CHECKF(isnan(v), "%s NaN reads %g", w ? "bf16" : "f16", v);
        em_tensor_release(n);
    }
}

int main(void)
{
    tu_init("test_dtypes");
    test_facts();
    test_promote_table();
    test_binary_result_dtypes();
    test_scalar_rule();
    test_half_rounding();
    em_shutdown();
    return tu_finish();
}
