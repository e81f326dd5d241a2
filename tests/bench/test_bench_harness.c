/*
 * test_bench_harness.c — unit tests of the benchmark harness's own
 * arithmetic (bench/bench_*.c): FLOP and byte counts per op, median and
 * quantiles, error metrics and the tolerance rule, dtype rounding and ulps,
 * float64 references on hand-computed values, the JSON reader and the
 * report's JSON round trip, the SVG chart's well-formedness, and the
 * regression rule of --compare. Needs no device beyond the library's init.
 * Output: one line per failed check and "N passed, M failed"; exit 1 on
 * any failure.
 */
#include "bench.h"
#include "xml_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_pass, g_fail;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (cond) g_pass++;                                                               \
        else {                                                                            \
            g_fail++;                                                                     \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

static bool near(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fabs(b)); }

static bench_case make(const char *op, em_dtype d, int64_t p0, int64_t p1, int64_t p2)
{
    bench_case c;
    char why[200];
    bench_rng rng = {7};
    int64_t p[3] = {p0, p1, p2};
    bool ok = bench_case_init(&c, bench_op_find(op), d, p, "T", &rng, true, why, sizeof why);
    CHECK(ok, "bench_case_init(%s): %s", op, why);
    return c;
}

static void test_counts(void)
{
    struct {
        const char *op;
        em_dtype d;
        int64_t p[3];
        double flops, bytes;
    } rows[] = {
        {"add", EM_F32, {64, 64, 64}, 4096, 3 * 4096 * 4},
        {"exp", EM_F16, {8, 16, 16}, 128, 2 * 128 * 2},
        {"matmul", EM_F32, {64, 64, 64}, 2.0 * 64 * 64 * 64, 3 * 4096 * 4},
        {"matmul", EM_F64, {2, 3, 4}, 2 * 2 * 3 * 4, (6 + 12 + 8) * 8},
        {"linear", EM_F32, {2, 3, 4}, 2 * 2 * 4 * 3 + 8, (6 + 12 + 4 + 8) * 4},
        {"addmm", EM_F32, {2, 3, 4}, 2 * 2 * 4 * 3 + 8, (4 + 6 + 12 + 8) * 4},
        {"sum", EM_F64, {4, 8, 8}, 32, (32 + 4) * 8},
        {"sum", EM_I32, {4, 8, 8}, 32, 32 * 4 + 4 * 8},       /* i32 sums give i64 */
        {"argmax", EM_F32, {4, 8, 8}, 32, 32 * 4 + 4 * 8},
        {"var", EM_F32, {4, 8, 8}, 96, (32 + 4) * 4},
        {"softmax", EM_F32, {4, 8, 8}, 160, 2 * 32 * 4},
        {"cast", EM_F32, {2, 3, 3}, 0, 6 * 4 + 6 * 2},        /* f32 -> f16 */
        {"cast", EM_I64, {2, 3, 3}, 0, 6 * 8 + 6 * 4},        /* i64 -> f32 */
        {"eq", EM_F32, {2, 3, 3}, 6, 2 * 6 * 4 + 6},          /* bool result */
        {"where", EM_F32, {2, 3, 3}, 0, 6 + 2 * 6 * 4 + 6 * 4},
        {"scatter_add", EM_F32, {4, 5, 5}, 20, 20 * 4 + 20 * 8 + 20 * 4 + 20 * 4},
        {"index_select", EM_F32, {4, 5, 5}, 0, 20 * 4 + 4 * 8 + 20 * 4},
        {"cat", EM_F32, {4, 5, 5}, 0, 2 * 20 * 4 + 40 * 4},
        {"copy_t", EM_BF16, {4, 5, 5}, 0, 2 * 20 * 2},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bench_case c = make(rows[i].op, rows[i].d, rows[i].p[0], rows[i].p[1], rows[i].p[2]);
        CHECK(c.flops == rows[i].flops, "%s %s flops %g, want %g", rows[i].op,
              bench_dtype_name(rows[i].d), c.flops, rows[i].flops);
        CHECK(c.bytes == rows[i].bytes, "%s %s bytes %g, want %g", rows[i].op,
              bench_dtype_name(rows[i].d), c.bytes, rows[i].bytes);
        bench_case_free(&c);
    }
    int64_t p[3];
    CHECK(bench_size_params(bench_op_find("add"), "M", p) && p[0] == 512 && p[1] == 512, "M elementwise");
    CHECK(bench_size_params(bench_op_find("matmul"), "L", p) && p[0] == 1024 && p[2] == 1024, "L matmul");
    CHECK(bench_size_params(bench_op_find("add"), "100x300", p) && p[0] == 100 && p[1] == 300, "RxC");
    CHECK(bench_size_params(bench_op_find("matmul"), "2x3x4", p) && p[1] == 3 && p[2] == 4, "MxKxN");
    CHECK(!bench_size_params(bench_op_find("add"), "huge", p), "unknown size accepted");
}

static void test_stats(void)
{
    double a[3] = {5, 1, 3};
    bench_timing t = bench_timing_of(a, 3);
    CHECK(t.median == 3 && t.repeats == 3, "median of {5,1,3} = %g", t.median);
    double b[4] = {4, 1, 3, 2};
    t = bench_timing_of(b, 4);
    CHECK(t.median == 2.5, "median of {4,1,3,2} = %g", t.median);
    double c[11];
    for (int i = 0; i < 11; i++) c[i] = 11 - i; /* 1..11 reversed */
    t = bench_timing_of(c, 11);
    CHECK(t.median == 6 && t.p10 == 2 && t.p90 == 10, "p10/median/p90 %g %g %g", t.p10, t.median, t.p90);
    CHECK(near(t.spread, 8.0 / 6.0, 1e-15), "spread %g", t.spread);
    double one[1] = {0.25};
    t = bench_timing_of(one, 1);
    CHECK(t.median == 0.25 && t.p10 == 0.25 && t.p90 == 0.25 && t.spread == 0, "one sample");
    double s[2] = {1, 3};
    CHECK(bench_quantile(s, 2, 0.25) == 1.5, "interpolated quantile");
}

static void test_errors(void)
{
    double got[3] = {1, 2.5, 3}, ref[3] = {1, 2, 4};
    bench_err e = bench_compare_values(got, ref, NULL, 3, EM_F64, (bench_tol){0, 0.3, 0});
    CHECK(e.max_abs == 1 && e.max_rel == 0.25 && e.pass && e.bad == -1, "abs %g rel %g", e.max_abs, e.max_rel);
    CHECK(near(e.nmse, 1.25 / 21.0, 1e-15), "nmse %g", e.nmse);
    e = bench_compare_values(got, ref, NULL, 3, EM_F64, (bench_tol){0, 0.2, 0});
    CHECK(!e.pass && e.bad == 1 && e.n_bad == 2, "rtol 0.2 must fail at 1 (bad %lld, n_bad %lld)",
          (long long)e.bad, (long long)e.n_bad);
    /* atol, scale and ulps */
    CHECK(bench_close(1.0 + 1e-9, 1.0, 0, EM_F64, (bench_tol){1e-8, 0, 0}), "atol");
    CHECK(!bench_close(1.0 + 1e-7, 1.0, 0, EM_F64, (bench_tol){1e-8, 0, 0}), "atol exceeded");
    CHECK(bench_close(0.01, 0.0, 1.0, EM_F64, (bench_tol){0, 0.02, 0}), "scale widens rtol");
    CHECK(bench_close(1.0 + 0x1p-23, 1.0, 0, EM_F32, (bench_tol){0, 0, 1}), "1 ulp of f32");
    CHECK(!bench_close(1.0 + 0x1p-22, 1.0, 0, EM_F32, (bench_tol){0, 0, 1}), "2 ulps > 1 ulp");
    /* NaN and inf must match the reference */
    double gn[4] = {NAN, INFINITY, -INFINITY, 1}, rn[4] = {NAN, INFINITY, -INFINITY, 1};
    e = bench_compare_values(gn, rn, NULL, 4, EM_F32, (bench_tol){0, 0, 0});
    CHECK(e.pass && e.max_abs == 0, "matching specials");
    double gm[3] = {NAN, 1, INFINITY}, rm[3] = {1, NAN, -INFINITY};
    e = bench_compare_values(gm, rm, NULL, 3, EM_F32, (bench_tol){1e9, 1e9, 1e9});
    CHECK(!e.pass && e.n_bad == 3 && e.nonfinite_mismatch == 3 && isinf(e.max_abs),
          "mismatched specials: n_bad %lld", (long long)e.n_bad);
}

static void test_rounding(void)
{
    CHECK(bench_round(1.0 / 3, EM_F16) == 0.333251953125, "1/3 in f16: %.17g", bench_round(1.0 / 3, EM_F16));
    CHECK(bench_round(1.0 / 3, EM_BF16) == 0.333984375, "1/3 in bf16: %.17g", bench_round(1.0 / 3, EM_BF16));
    CHECK(isinf(bench_round(70000, EM_F16)), "f16 overflow");
    CHECK(bench_round(65504, EM_F16) == 65504, "f16 max");
    CHECK(bench_round(0x1p-25, EM_F16) == 0, "tie to even at the smallest subnormal");
    CHECK(bench_round(3 * 0x1p-25, EM_F16) == 0x1p-23, "subnormal rounding");
    CHECK(bench_round(-2.7, EM_I32) == -2 && bench_round(NAN, EM_I64) == 0, "integer truncation");
    CHECK(bench_ulp(1.0, EM_F32) == 0x1p-23 && bench_ulp(1.0, EM_F16) == 0x1p-10 &&
          bench_ulp(1.0, EM_BF16) == 0x1p-7 && bench_ulp(3.0, EM_F64) == 0x1p-51, "ulps");
    CHECK(bench_ulp(0, EM_F16) == 0x1p-24, "f16 subnormal ulp %g", bench_ulp(0, EM_F16));
    CHECK(bench_eps(EM_F32) == 0x1p-23 && bench_eps(EM_I32) == 0, "eps");
    double v[5] = {1.5, -0.0, 65504, 0x1p-24, -2}, w[5];
    em_dtype ds[2] = {EM_F16, EM_BF16};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 5; i++) w[i] = bench_round(v[i], ds[k]);
        void *buf = bench_pack(w, 5, ds[k]);
        for (int i = 0; buf && i < 5; i++)
            CHECK(bench_unpack(buf, i, ds[k]) == w[i], "%s round trip of %g", bench_dtype_name(ds[k]), w[i]);
        free(buf);
    }
}

static void test_references(void)
{
    bench_case c = make("matmul", EM_F64, 2, 2, 2);
    double a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, want[4] = {19, 22, 43, 50};
    memcpy(c.in[0].v, a, sizeof a);
    memcpy(c.in[1].v, b, sizeof b);
    bench_case_reference(&c, true);
    for (int i = 0; i < 4; i++) CHECK(c.out.v[i] == want[i] && c.scale[i] == want[i], "matmul[%d] %g", i, c.out.v[i]);
    bench_case_free(&c);
    c = make("linear", EM_F64, 1, 2, 2); /* x [1,2], w [2,2], b [2] */
    double x[2] = {1, -2}, wt[4] = {3, 4, 5, 6}, bias[2] = {0.5, -0.5};
    memcpy(c.in[0].v, x, sizeof x);
    memcpy(c.in[1].v, wt, sizeof wt);
    memcpy(c.in[2].v, bias, sizeof bias);
    bench_case_reference(&c, true);
    CHECK(c.out.v[0] == -4.5 && c.out.v[1] == -7.5, "linear %g %g", c.out.v[0], c.out.v[1]);
    CHECK(c.scale[0] == 11.5 && c.scale[1] == 17.5, "linear scale %g %g", c.scale[0], c.scale[1]);
    bench_case_free(&c);
    c = make("softmax", EM_F64, 1, 2, 2);
    c.in[0].v[0] = 0;
    c.in[0].v[1] = log(2.0);
    bench_case_reference(&c, true);
    CHECK(near(c.out.v[0], 1.0 / 3, 1e-15) && near(c.out.v[1], 2.0 / 3, 1e-15), "softmax %g %g", c.out.v[0], c.out.v[1]);
    bench_case_free(&c);
    c = make("var", EM_F64, 1, 4, 4);
    for (int i = 0; i < 4; i++) c.in[0].v[i] = i + 1;
    bench_case_reference(&c, true);
    CHECK(near(c.out.v[0], 5.0 / 3, 1e-15), "unbiased var of 1..4 = %g", c.out.v[0]);
    bench_case_free(&c);
    c = make("argmax", EM_F32, 1, 4, 4);
    double am[4] = {1, 3, 3, 2};
    memcpy(c.in[0].v, am, sizeof am);
    bench_case_reference(&c, true);
    CHECK(c.out.v[0] == 1, "argmax: first of the ties, got %g", c.out.v[0]);
    c.in[0].v[2] = NAN;
    bench_case_reference(&c, true);
    CHECK(c.out.v[0] == 2, "argmax: NaN counts as the max, got %g", c.out.v[0]);
    bench_case_free(&c);
    c = make("maximum", EM_F32, 1, 2, 2);
    c.in[0].v[0] = NAN;
    c.in[1].v[0] = 1;
    c.in[0].v[1] = 1;
    c.in[1].v[1] = NAN;
    bench_case_reference(&c, true);
    CHECK(isnan(c.out.v[0]) && isnan(c.out.v[1]), "maximum propagates NaN");
    bench_case_free(&c);
    /* tolerances follow the test suites */
    bench_tol t = bench_tolerance(BT_TRANS, EM_F32);
    CHECK(t.atol == 1e-6 && t.rtol == 2e-6 && t.ulps == 2, "TRANS f32");
    t = bench_tolerance(BT_ROUND, EM_I32);
    CHECK(t.atol == 0 && t.rtol == 0 && t.ulps == 0, "integers are exact");
    /* a large matmul checks a subset of rows */
    c = make("matmul", EM_F32, 1024, 1024, 1024);
    CHECK(c.row_stride == 8, "row_stride %lld", (long long)c.row_stride);
    bench_case_free(&c);
}

static void test_json(void)
{
    char why[256] = "";
    bench_json *j = bench_json_parse("{\"a\": [1, 2.5e3, -3], \"s\": \"x\\\"y\\u0041\", \"t\": true, \"n\": null}",
                                     why, sizeof why);
    CHECK(j != NULL, "parse: %s", why);
    if (j) {
        const bench_json *a = bench_json_get(j, "a");
        CHECK(a && a->type == BJ_ARR && a->n == 3 && a->items[1].num == 2500, "array");
        CHECK(!strcmp(bench_json_str(j, "s", ""), "x\"yA"), "string escapes: %s", bench_json_str(j, "s", ""));
        CHECK(bench_json_num(j, "t", 0) == 1 && isnan(bench_json_num(j, "n", 0)), "true / null");
        bench_json_free(j);
    }
    static const char *const bad[] = {"{\"a\": 1,}", "[1 2]", "{\"a\" 1}", "\"open", "{} x", "[", "tru"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        j = bench_json_parse(bad[i], why, sizeof why);
        CHECK(j == NULL && strstr(why, "line 1"), "'%s' accepted or no position (%s)", bad[i], why);
        bench_json_free(j);
    }
}

static void synthetic(bench_report *r, double scale)
{
    bench_report_init(r);
    snprintf(r->cpu_model, sizeof r->cpu_model, "Test CPU & <co>");
    snprintf(r->created, sizeof r->created, "2024-01-01T00:00:00Z");
    snprintf(r->ember_version, sizeof r->ember_version, "0.1.0");
    r->cores = 2;
    r->n_backends = 1;
    snprintf(r->backends[0].device, sizeof r->backends[0].device, "cpu:0");
    const char *ops[3] = {"add", "matmul", "exp"};
    const char *bes[2] = {"cpu:0", "pytorch"};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 2; b++) {
            bench_row *w = bench_report_add(r);
            snprintf(w->op, sizeof w->op, "%s", ops[i]);
            snprintf(w->dtype, sizeof w->dtype, "f32");
            snprintf(w->size, sizeof w->size, "S");
            snprintf(w->shape, sizeof w->shape, "[64,64]");
            snprintf(w->backend, sizeof w->backend, "%s", bes[b]);
            w->status = BS_OK;
            w->metric = i == 1 ? BENCH_FLOPS : BENCH_BYTES;
            w->flops = w->bytes = 1e6;
            double m = 1e-4 * (i + 1) * (b ? 1 : scale);
            w->t = (bench_timing){m, m * 0.98, m * 1.02, 0.04, 5};
            w->err = (bench_err){i == 2 ? 1e-7 : 0, i == 2 ? 2e-7 : 0, 0, -1, 0, 0, i != 2 || b == 0};
            w->tol = (bench_tol){0, 0, 1};
        }
    bench_row *u = bench_report_add(r);
    snprintf(u->op, sizeof u->op, "pow");
    snprintf(u->dtype, sizeof u->dtype, "f32");
    snprintf(u->size, sizeof u->size, "S");
    snprintf(u->backend, sizeof u->backend, "cpu:0");
    u->status = BS_UNSUPPORTED;
    snprintf(u->note, sizeof u->note, "no \"pow\" kernel");
    bench_train_row *t = bench_report_add_train(r);
    snprintf(t->backend, sizeof t->backend, "cpu:0");
    t->batch = 32;
    t->steps = 65;
    t->ok = true;
    t->t = (bench_timing){1e-3 * scale, 0.99e-3 * scale, 1.01e-3 * scale, 0.02, 7};
    t->final_loss = 2.25;
}

static void test_report_io(void)
{
    bench_report r, back;
    synthetic(&r, 1.0);
    char path[] = "/tmp/test-bench-harness-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    CHECK(bench_write_json(path, &r) == 0, "write json");
    bench_report_init(&back);
    char why[512] = "";
    CHECK(bench_read_json(path, &back, why, sizeof why) == 0, "read back: %s", why);
    CHECK(back.n_rows == r.n_rows && back.n_train == 1, "rows %d train %d", back.n_rows, back.n_train);
    CHECK(!strcmp(back.cpu_model, r.cpu_model), "cpu '%s'", back.cpu_model);
    const bench_row *w = bench_report_find(&back, "matmul", "f32", "S", "cpu:0");
    CHECK(w && w->metric == BENCH_FLOPS && near(w->t.median, 2e-4, 1e-8) && w->err.pass, "matmul row");
    w = bench_report_find(&back, "exp", "f32", "S", "pytorch");
    CHECK(w && !w->err.pass && near(w->err.max_rel, 2e-7, 1e-8), "exp pytorch row");
    w = bench_report_find(&back, "pow", "f32", "S", "cpu:0");
    CHECK(w && w->status == BS_UNSUPPORTED && !strcmp(w->note, "no \"pow\" kernel"), "unsupported row");
    CHECK(near(back.train[0].final_loss, 2.25, 1e-12) && back.train[0].batch == 32, "train row");
    CHECK(bench_row_rate(w) == 0, "no rate for an unsupported row");
    w = bench_report_find(&back, "add", "f32", "S", "cpu:0");
    CHECK(w && near(bench_row_rate(w), 1e6 / 1e-4 * 1e-9, 1e-9), "rate %g GB/s", w ? bench_row_rate(w) : 0);
    /* a file that is not a report */
    FILE *f = fopen(path, "w");
    fputs("{\"format\": \"something-else\"}", f);
    fclose(f);
    bench_report bad;
    bench_report_init(&bad);
    CHECK(bench_read_json(path, &bad, why, sizeof why) != 0 && strstr(why, "something-else"), "%s", why);
    bench_report_free(&bad);
    unlink(path);
    /* SVG: well-formed, bars and labels present, the special characters escaped */
    for (int kind = 0; kind < 2; kind++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        bench_svg_chart(m, &r, kind);
        fclose(m);
        int rects = 0;
        CHECK(xml_well_formed(buf, why, sizeof why, "rect", &rects), "svg kind %d: %s", kind, why);
        CHECK(strstr(buf, "Test CPU &amp; &lt;co&gt;") != NULL, "escaped CPU name");
        CHECK(strstr(buf, "cpu:0") && strstr(buf, "pytorch") && strstr(buf, "add f32 S"), "legend/labels");
        /* throughput: 6 bars + 1 background + 2 legend squares; error: exp's 2 bars (others exact) */
        CHECK(rects == (kind == 0 ? 9 : 5), "svg kind %d: %d rects", kind, rects);
        if (kind == 1) CHECK(strstr(buf, "stroke=\"#d00\"") != NULL, "failed row outlined");
        free(buf);
    }
    bench_report_free(&back);
    bench_report_free(&r);
}

static void test_compare(void)
{
    bench_report a, b;
    synthetic(&a, 1.0);
    synthetic(&b, 1.5); /* Ember 1.5x slower, beyond the 2% spread */
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    int reg = bench_compare_reports(m, &a, &b, 0.05);
    fclose(m);
    CHECK(reg == 4, "3 op rows + 1 train row regress, got %d:\n%s", reg, buf);
    CHECK(strstr(buf, "REGRESSION") != NULL, "flag printed");
    free(buf);
    bench_report_free(&b);
    synthetic(&b, 1.01); /* inside the spread */
    m = open_memstream(&buf, &len);
    reg = bench_compare_reports(m, &a, &b, 0.05);
    fclose(m);
    CHECK(reg == 0, "1%% slower is noise, got %d regressions", reg);
    free(buf);
    bench_report_free(&b);
    synthetic(&b, 0.5);
    m = open_memstream(&buf, &len);
    reg = bench_compare_reports(m, &a, &b, 0.05);
    fclose(m);
    CHECK(reg == 0 && strstr(buf, "faster"), "2x faster: %d regressions", reg);
    free(buf);
    /* a precision regression counts */
    bench_report_free(&b);
    synthetic(&b, 1.0);
    b.rows[0].err.pass = false;
    m = open_memstream(&buf, &len);
    reg = bench_compare_reports(m, &a, &b, 0.05);
    fclose(m);
    CHECK(reg == 1 && strstr(buf, "PRECISION REGRESSION"), "precision regression: %d", reg);
    free(buf);
    bench_report_free(&a);
    bench_report_free(&b);
}

int main(void)
{
    test_counts();
    test_stats();
    test_errors();
    test_rounding();
    test_references();
    test_json();
    test_report_io();
    test_compare();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
