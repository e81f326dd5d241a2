/*
 * bench_stats.c — the harness's arithmetic: timing summaries (median, p10,
 * p90 by linear interpolation, spread = (p90 - p10) / median) and the error
 * metrics of a result against its float64 reference (max absolute error,
 * max relative error, normalised mean squared error) with the tolerance
 * rule shared by ember-bench, ember-conformance and tests/README.md.
 * Not for measuring time (ember_bench.c) or computing references.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_quantile(const double *sorted, int n, double p)
{
    if (n <= 0) return NAN;
    if (p <= 0) return sorted[0];
    if (p >= 1) return sorted[n - 1];
    double x = p * (n - 1);
    int i = (int)x;
    int j = i + 1 < n ? i + 1 : n - 1;
    return sorted[i] + (sorted[j] - sorted[i]) * (x - i);
}

bench_timing bench_timing_of(double *samples, int n)
{
    bench_timing t = {NAN, NAN, NAN, NAN, 0};
    if (n <= 0) return t;
    qsort(samples, (size_t)n, sizeof *samples, cmp_double);
    t.median = bench_quantile(samples, n, 0.5);
    t.p10 = bench_quantile(samples, n, 0.1);
    t.p90 = bench_quantile(samples, n, 0.9);
    t.spread = t.median > 0 ? (t.p90 - t.p10) / t.median : 0;
    t.repeats = n;
    return t;
}

bool bench_close(double got, double ref, double scale, em_dtype d, bench_tol tol)
{
    if (isnan(ref)) return isnan(got);
    if (isinf(ref)) return got == ref;
    if (!isfinite(got)) return false;
    double m = fabs(ref) > scale ? fabs(ref) : scale;
    return fabs(got - ref) <= tol.atol + tol.rtol * m + tol.ulps * bench_ulp(ref, d);
}

bench_err bench_compare_values(const double *got, const double *ref, const double *scale,
                               int64_t n, em_dtype d, bench_tol tol)
{
    bench_err e = {0, 0, 0, -1, 0, 0, true};
    double se = 0, sr = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        bool ok = bench_close(g, r, scale ? scale[i] : 0, d, tol);
        if (!ok) {
            if (e.bad < 0) e.bad = i;
            e.n_bad++;
        }
        if (isfinite(g) && isfinite(r)) {
            double ae = fabs(g - r);
            if (ae > e.max_abs) e.max_abs = ae;
            if (r != 0 && ae / fabs(r) > e.max_rel) e.max_rel = ae / fabs(r);
            se += ae * ae;
            sr += r * r;
        } else if (!ok) {
            e.nonfinite_mismatch++;
        }
    }
    e.nmse = sr > 0 ? se / sr : se;
    if (e.nonfinite_mismatch) e.max_abs = INFINITY;
    e.pass = e.bad < 0;
    return e;
}
