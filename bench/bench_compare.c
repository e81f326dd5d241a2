/*
 * bench_compare.c — `ember-bench --compare old.json new.json`: per op row
 * (same op, dtype, size and backend in both reports) the ratio of median
 * times new/old, flagged
 *   REGRESSION  new is slower by more than the threshold AND the two runs'
 *               measured ranges do not overlap (new p10 > old p90), so a
 *               difference inside the noise is never flagged;
 *   faster      the mirror image;
 *   precision   the row passed its tolerance before and fails now.
 * The same for the training rows (seconds per step). Returns the number of
 * regressions; rows present in only one report are listed, not counted.
 * Not for reading the files (bench_report.c).
 */
#include "bench.h"

#include <math.h>
#include <string.h>

static const char *verdict(double o_med, double o_p10, double o_p90, double n_med, double n_p10,
                           double n_p90, double threshold, int *regressions)
{
    double ratio = n_med / o_med;
    if (ratio > 1 + threshold && n_p10 > o_p90) {
        (*regressions)++;
        return "REGRESSION";
    }
    if (ratio < 1 - threshold && n_p90 < o_p10) return "faster";
    return "same (within spread)";
}

int bench_compare_reports(FILE *f, const bench_report *o, const bench_report *n, double threshold)
{
    int regressions = 0, compared = 0, faster = 0;
    fprintf(f, "comparing old (%s, %s) with new (%s, %s); threshold %.0f%% beyond the measured spread\n",
            o->created, o->cpu_model, n->created, n->cpu_model, threshold * 100);
    fprintf(f, "%-12s %-5s %-4s %-9s %12s %12s %8s  %s\n", "op", "dtype", "size", "backend",
            "old median", "new median", "new/old", "verdict");
    for (int i = 0; i < n->n_rows; i++) {
        const bench_row *w = &n->rows[i];
        const bench_row *v = bench_report_find(o, w->op, w->dtype, w->size, w->backend);
        if (!v) {
            fprintf(f, "%-12s %-5s %-4s %-9s %12s %12s %8s  only in new\n", w->op, w->dtype, w->size,
                    w->backend, "-", "-", "-");
            continue;
        }
        if (w->status != BS_OK || v->status != BS_OK || !(v->t.median > 0) || !(w->t.median > 0)) {
            fprintf(f, "%-12s %-5s %-4s %-9s %12s %12s %8s  not comparable (old %s, new %s)\n",
                    w->op, w->dtype, w->size, w->backend, "-", "-", "-",
                    bench_status_name(v->status), bench_status_name(w->status));
            continue;
        }
        compared++;
        const char *vd = verdict(v->t.median, v->t.p10, v->t.p90, w->t.median, w->t.p10, w->t.p90,
                                 threshold, &regressions);
        if (!strcmp(vd, "faster")) faster++;
        fprintf(f, "%-12s %-5s %-4s %-9s %10.3g s %10.3g s %7.2fx  %s", w->op, w->dtype, w->size,
                w->backend, v->t.median, w->t.median, w->t.median / v->t.median, vd);
        if (v->err.pass && !w->err.pass) {
            fprintf(f, "; PRECISION REGRESSION (max rel err %.2g -> %.2g)", v->err.max_rel,
                    w->err.max_rel);
            regressions++;
        }
        fputc('\n', f);
    }
    for (int i = 0; i < o->n_rows; i++) {
        const bench_row *v = &o->rows[i];
        if (!bench_report_find(n, v->op, v->dtype, v->size, v->backend))
            fprintf(f, "%-12s %-5s %-4s %-9s %12s %12s %8s  only in old\n", v->op, v->dtype, v->size,
                    v->backend, "-", "-", "-");
    }
    for (int i = 0; i < n->n_train; i++) {
        const bench_train_row *w = &n->train[i];
        for (int j = 0; j < o->n_train; j++) {
            const bench_train_row *v = &o->train[j];
            if (strcmp(v->backend, w->backend) || v->batch != w->batch || !v->ok || !w->ok) continue;
            compared++;
            const char *vd = verdict(v->t.median, v->t.p10, v->t.p90, w->t.median, w->t.p10,
                                     w->t.p90, threshold, &regressions);
            if (!strcmp(vd, "faster")) faster++;
            char name[16];
            snprintf(name, sizeof name, "b%d", w->batch);
            fprintf(f, "%-12s %-5s %-4s %-9s %10.3g s %10.3g s %7.2fx  %s (final loss %.6f -> %.6f)\n",
                    "train_mlp", "f32", name, w->backend, v->t.median, w->t.median,
                    w->t.median / v->t.median, vd, v->final_loss, w->final_loss);
        }
    }
    fprintf(f, "%d rows compared: %d regressions, %d faster\n", compared, regressions, faster);
    return regressions;
}
