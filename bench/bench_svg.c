/*
 * bench_svg.c — the report's charts as standalone SVG, written by Ember's
 * own code (no plotting library): horizontal grouped bars, one group per
 * (op, dtype, size), one bar per backend, on a log-scale axis.
 *   throughput chart: two panels, GB/s (memory-bound ops) and GFLOP/s
 *                     (matmul, linear, addmm); longer bars are faster;
 *   error chart:      max relative error against the float64 reference;
 *                     shorter is better; a bar outlined in red failed its
 *                     tolerance; exact results (0) are drawn as a dot at
 *                     the left edge.
 * Not for tables (bench_report.c).
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W_LABEL 230
#define W_PLOT 560
#define W_RIGHT 80
#define BAR_H 7
#define GROUP_GAP 6
#define PANEL_HEAD 54

static const char *const k_colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                       "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#bab0ac"};

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

typedef struct group {
    const bench_row *first; /* the first row of this (op, dtype, size) */
} group;

/* Groups whose rows use `metric` (-1: any). */
static int collect_groups(const bench_report *r, int metric, group *g, int cap)
{
    int n = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const bench_row *w = &r->rows[i];
        if (metric >= 0 && w->metric != metric) continue;
        bool seen = false;
        for (int k = 0; k < n && !seen; k++)
            seen = !strcmp(g[k].first->op, w->op) && !strcmp(g[k].first->dtype, w->dtype) &&
                   !strcmp(g[k].first->size, w->size);
        if (!seen && n < cap) g[n++].first = w;
    }
    return n;
}

static double value_of(const bench_row *w, int kind)
{
    if (!w || w->status != BS_OK) return NAN;
    return kind == 0 ? bench_row_rate(w) : w->err.max_rel;
}

/* One panel at vertical offset y0; returns its height. */
static int panel(FILE *f, const bench_report *r, int kind, int metric, const char *title, int y0,
                 const char **be, int nb, bool draw)
{
    int cap = r->n_rows > 0 ? r->n_rows : 1;
    group *g = malloc(sizeof *g * (size_t)cap);
    if (!g) return 0;
    int ng = collect_groups(r, metric, g, cap);
    if (ng == 0) {
        free(g);
        return 0;
    }
    int group_h = nb * BAR_H + GROUP_GAP;
    int height = PANEL_HEAD + ng * group_h + 30;
    if (!draw) {
        free(g);
        return height;
    }
    /* axis range in decades */
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ng; k++)
        for (int b = 0; b < nb; b++) {
            const bench_row *w =
                bench_report_find(r, g[k].first->op, g[k].first->dtype, g[k].first->size, be[b]);
            double v = value_of(w, kind);
            if (v > 0 && isfinite(v)) {
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
        }
    if (!isfinite(lo)) {
        lo = kind == 0 ? 0.01 : 1e-8;
        hi = lo * 10;
    }
    int d0 = (int)floor(log10(lo)), d1 = (int)ceil(log10(hi));
    if (d1 <= d0) d1 = d0 + 1;
    double span = d1 - d0;
    int px = W_LABEL, py = y0 + PANEL_HEAD, ph = ng * group_h;
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"title\">", 10, y0 + 22);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    /* decade grid and labels */
    for (int d = d0; d <= d1; d++) {
        double x = px + (d - d0) / span * W_PLOT;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"grid\"/>\n", x, py - 4,
                x, py + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"tick\">%g</text>\n", x, py - 8, pow(10.0, d));
    }
    for (int k = 0; k < ng; k++) {
        const bench_row *h = g[k].first;
        int gy = py + k * group_h;
        char label[160];
        snprintf(label, sizeof label, "%s %s %s", h->op, h->dtype, h->size);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"label\">", px - 6, gy + nb * BAR_H / 2 + 4);
        xml_text(f, label);
        fprintf(f, "</text>\n");
        for (int b = 0; b < nb; b++) {
            const bench_row *w = bench_report_find(r, h->op, h->dtype, h->size, be[b]);
            double v = value_of(w, kind);
            int by = gy + b * BAR_H;
            const char *color = k_colors[b % (int)(sizeof k_colors / sizeof k_colors[0])];
            if (!w) continue;
            if (isnan(v)) {
                fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"na\">%s</text>\n", px + 3, by + BAR_H - 1,
                        bench_status_name(w->status));
                continue;
            }
            if (v <= 0) { /* exact */
                fprintf(f, "<circle cx=\"%d\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>", px + 3,
                        by + BAR_H / 2.0, color);
                xml_text(f, be[b]);
                fprintf(f, ": 0 (exact)</title></circle>\n");
                continue;
            }
            double x = (log10(v) - d0) / span * W_PLOT;
            if (x < 1) x = 1;
            bool fail = kind == 1 && !w->err.pass;
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"%s><title>",
                    px, by, x, BAR_H - 1, color, fail ? " stroke=\"#d00\" stroke-width=\"1.5\"" : "");
            xml_text(f, be[b]);
            fprintf(f, ": %.4g%s%s</title></rect>\n", v,
                    kind == 0 ? (w->metric == BENCH_FLOPS ? " GFLOP/s" : " GB/s") : "",
                    w->fallback ? " (CPU fallback)" : "");
            if (w->fallback)
                fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"na\">fb</text>\n", px + x + 3,
                        by + BAR_H - 1);
        }
    }
    free(g);
    return height;
}

void bench_svg_chart(FILE *f, const bench_report *r, int kind)
{
    const char *be[BENCH_MAX_BACKENDS + 1];
    int nb = bench_report_backends(r, be, BENCH_MAX_BACKENDS + 1);
    if (nb == 0) nb = 1, be[0] = "none";
    const char *t0 = kind == 0 ? "Throughput, memory-bound ops (GB/s, log scale; longer is faster)"
                               : "Max relative error vs float64 (log scale; shorter is better; red outline = outside tolerance; dot = exact)";
    const char *t1 = "Throughput, compute-bound ops (GFLOP/s, log scale; longer is faster)";
    int h0 = panel(f, r, kind, kind == 0 ? BENCH_BYTES : -1, t0, 0, be, nb, false);
    int h1 = kind == 0 ? panel(f, r, kind, BENCH_FLOPS, t1, 0, be, nb, false) : 0;
    int legend_h = 28;
    int width = W_LABEL + W_PLOT + W_RIGHT, height = legend_h + h0 + h1 + 10;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", width, height, width, height);
    fprintf(f, "<style>.title{font-size:13px;font-weight:bold}.tick{font-size:9px;text-anchor:middle;fill:#555}"
               ".label{font-size:10px;text-anchor:end}.na{font-size:8px;fill:#888}"
               ".legend{font-size:11px}.grid{stroke:#ddd;stroke-width:1}</style>\n");
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"14\" class=\"legend\">");
    char head[400];
    snprintf(head, sizeof head, "Ember %s on %s", r->ember_version, r->cpu_model);
    xml_text(f, head);
    fprintf(f, "</text>\n");
    int lx = 10;
    for (int b = 0; b < nb; b++) {
        const char *color = k_colors[b % (int)(sizeof k_colors / sizeof k_colors[0])];
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>", lx, 18, color);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"legend\">", lx + 14, 27);
        xml_text(f, be[b]);
        fprintf(f, "</text>\n");
        lx += 30 + 7 * (int)strlen(be[b]);
    }
    panel(f, r, kind, kind == 0 ? BENCH_BYTES : -1, t0, legend_h, be, nb, true);
    if (kind == 0) panel(f, r, kind, BENCH_FLOPS, t1, legend_h + h0, be, nb, true);
    fprintf(f, "</svg>\n");
}

int bench_write_svg(const char *prefix, const bench_report *r)
{
    char base[1024];
    snprintf(base, sizeof base, "%s", prefix);
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".svg")) base[n - 4] = '\0';
    static const char *const suffix[2] = {"-throughput.svg", "-error.svg"};
    for (int kind = 0; kind < 2; kind++) {
        char path[1100];
        snprintf(path, sizeof path, "%s%s", base, suffix[kind]);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "ember-bench: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
        bench_svg_chart(f, r, kind);
        int bad = ferror(f);
        if (fclose(f) != 0 || bad) {
            fprintf(stderr, "ember-bench: error writing %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}
