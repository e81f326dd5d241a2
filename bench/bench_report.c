/*
 * bench_report.c — a benchmark report in memory and its writers: the
 * aligned terminal table, CSV, JSON (the format --compare and the PyTorch
 * merge read back) and Markdown; plus the JSON reader.
 * Not for charts (bench_svg.c) or for measuring anything.
 *
 * JSON layout ("format": "ember-bench/1"): machine, library, precision,
 * backends[], pytorch{}, settings{}, ops[] (one object per row: op, dtype,
 * size, shape, backend, status, fallback, median_s, p10_s, p90_s, spread,
 * repeats, inner, flops, bytes, metric, rate, max_abs_err, max_rel_err,
 * nmse, tol_atol, tol_rtol, tol_ulps, pass, note) and train[].
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bench_report_init(bench_report *r) { memset(r, 0, sizeof *r); }

void bench_report_free(bench_report *r)
{
    free(r->rows);
    free(r->train);
    memset(r, 0, sizeof *r);
}

/* Makes room for one more element in a growable array *items of *cap
 * elements holding n; 0 when out of memory (the array is then unchanged). */
static int grow(void **items, int *cap, int n, size_t elem, int first_cap)
{
    if (n < *cap) return 1;
    int nc = *cap ? *cap * 2 : first_cap;
    void *p = realloc(*items, elem * (size_t)nc);
    if (!p) return 0;
    *items = p;
    *cap = nc;
    return 1;
}

bench_row *bench_report_add(bench_report *r)
{
    if (!grow((void **)&r->rows, &r->cap_rows, r->n_rows, sizeof *r->rows, 64)) return NULL;
    bench_row *row = &r->rows[r->n_rows++];
    memset(row, 0, sizeof *row);
    row->t.median = row->t.p10 = row->t.p90 = NAN;
    return row;
}

bench_train_row *bench_report_add_train(bench_report *r)
{
    if (!grow((void **)&r->train, &r->cap_train, r->n_train, sizeof *r->train, 8)) return NULL;
    bench_train_row *row = &r->train[r->n_train++];
    memset(row, 0, sizeof *row);
    return row;
}

const bench_row *bench_report_find(const bench_report *r, const char *op, const char *dtype,
                                   const char *size, const char *backend)
{
    for (int i = 0; i < r->n_rows; i++) {
        const bench_row *w = &r->rows[i];
        if (!strcmp(w->op, op) && !strcmp(w->dtype, dtype) && !strcmp(w->size, size) &&
            !strcmp(w->backend, backend))
            return w;
    }
    return NULL;
}

double bench_row_rate(const bench_row *row)
{
    if (row->status != BS_OK || !(row->t.median > 0)) return 0;
    double work = row->metric == BENCH_FLOPS ? row->flops : row->bytes;
    return work / row->t.median * 1e-9;
}

const char *bench_status_name(bench_status s)
{
    switch (s) {
    case BS_OK: return "ok";
    case BS_UNSUPPORTED: return "unsupported";
    case BS_ERROR: return "error";
    case BS_SKIPPED: return "skipped";
    }
    return "?";
}

static bench_status status_parse(const char *s)
{
    if (!strcmp(s, "unsupported")) return BS_UNSUPPORTED;
    if (!strcmp(s, "error")) return BS_ERROR;
    if (!strcmp(s, "skipped")) return BS_SKIPPED;
    return BS_OK;
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                                */
/* ------------------------------------------------------------------------ */

static const char *fmt_time(double s, char *buf, size_t cap)
{
    if (!(s > 0)) snprintf(buf, cap, "-");
    else if (s < 1e-6) snprintf(buf, cap, "%.0f ns", s * 1e9);
    else if (s < 1e-3) snprintf(buf, cap, "%.1f us", s * 1e6);
    else if (s < 1) snprintf(buf, cap, "%.2f ms", s * 1e3);
    else snprintf(buf, cap, "%.2f s", s);
    return buf;
}

static const char *fmt_rate(const bench_row *row, char *buf, size_t cap)
{
    double v = bench_row_rate(row);
    if (v <= 0) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v,
                  row->metric == BENCH_FLOPS ? "GFLOP/s" : "GB/s");
    return buf;
}

static const char *fmt_err(double e, char *buf, size_t cap)
{
    if (isnan(e)) snprintf(buf, cap, "-");
    else if (isinf(e)) snprintf(buf, cap, "inf");
    else if (e == 0) snprintf(buf, cap, "0");
    else snprintf(buf, cap, "%.1e", e);
    return buf;
}

static const char *fmt_tol(bench_tol t, char *buf, size_t cap)
{
    size_t u = 0;
    buf[0] = '\0';
    if (t.atol == 0 && t.rtol == 0 && t.ulps == 0) {
        snprintf(buf, cap, "exact");
        return buf;
    }
    if (t.atol > 0) u += (size_t)snprintf(buf + u, cap - u, "%.0e", t.atol);
    if (t.rtol > 0 && u < cap) u += (size_t)snprintf(buf + u, cap - u, "%s%.0er", u ? "+" : "", t.rtol);
    if (t.ulps > 0 && u < cap) snprintf(buf + u, cap - u, "%s%gulp", u ? "+" : "", t.ulps);
    return buf;
}

static const char *row_verdict(const bench_row *w)
{
    switch (w->status) {
    case BS_OK: return w->err.pass ? "pass" : "FAIL";
    case BS_UNSUPPORTED: return "unsup";
    case BS_ERROR: return "error";
    case BS_SKIPPED: return "skip";
    }
    return "?";
}

int bench_report_backends(const bench_report *r, const char **names, int cap)
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < r->n_rows; i++) {
            const char *b = r->rows[i].backend;
            if ((pass == 0) == !strcmp(b, "pytorch")) continue;
            int seen = 0;
            for (int j = 0; j < n; j++) seen |= !strcmp(names[j], b);
            if (!seen && n < cap) names[n++] = b;
        }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Terminal table                                                            */
/* ------------------------------------------------------------------------ */

static void write_header_lines(FILE *f, const bench_report *r, const char *prefix)
{
    fprintf(f, "%smachine: %s, %d cores, %s (load %.2f at start)\n", prefix, r->cpu_model, r->cores,
            r->os, r->loadavg);
    fprintf(f, "%sEmber %s (plugin ABI %s); precision: %s\n", prefix, r->ember_version,
            r->plugin_abi, r->precision);
    for (int i = 0; i < r->n_backends; i++) {
        const bench_backend_info *b = &r->backends[i];
        fprintf(f, "%sdevice %s: %s [%s, %s %s] %s\n", prefix, b->device, b->name, b->type,
                b->backend, b->version, b->description);
    }
    if (r->torch_version[0])
        fprintf(f, "%sPyTorch %s: %s\n", prefix, r->torch_version, r->torch_settings);
}

void bench_write_table(FILE *f, const bench_report *r)
{
    write_header_lines(f, r, "");
    if (r->n_rows) {
        fprintf(f, "\n%-12s %-5s %-4s %-14s %-9s %-6s %10s %7s %15s %8s %8s %8s %-16s %-5s %s\n",
                "op", "dtype", "size", "shape", "backend", "via", "median", "spread", "throughput",
                "max_abs", "max_rel", "nmse", "tolerance", "check", "vs torch");
        for (int i = 0; i < r->n_rows; i++) {
            const bench_row *w = &r->rows[i];
            char tm[32], sp[16], rate[32], ea[16], er[16], en[16], tol[48], vs[16] = "";
            snprintf(sp, sizeof sp, w->status == BS_OK ? "%.0f%%" : "-", w->t.spread * 100);
            const bench_row *pt = strcmp(w->backend, "pytorch")
                                      ? bench_report_find(r, w->op, w->dtype, w->size, "pytorch")
                                      : NULL;
            if (pt && pt->status == BS_OK && w->status == BS_OK && w->t.median > 0)
                snprintf(vs, sizeof vs, "%.2fx", pt->t.median / w->t.median);
            bool measured = w->status == BS_OK;
            fprintf(f, "%-12s %-5s %-4s %-14s %-9s %-6s %10s %7s %15s %8s %8s %8s %-16s %-5s %s",
                    w->op, w->dtype, w->size, w->shape, w->backend,
                    measured ? (w->fallback ? "cpu-fb" : "native") : "-",
                    fmt_time(w->t.median, tm, sizeof tm), sp, fmt_rate(w, rate, sizeof rate),
                    measured ? fmt_err(w->err.max_abs, ea, sizeof ea) : "-",
                    measured ? fmt_err(w->err.max_rel, er, sizeof er) : "-",
                    measured ? fmt_err(w->err.nmse, en, sizeof en) : "-",
                    fmt_tol(w->tol, tol, sizeof tol), row_verdict(w), vs);
            if (w->status != BS_OK && w->note[0]) fprintf(f, "  (%s)", w->note);
            fputc('\n', f);
        }
    }
    if (r->n_train) {
        fprintf(f, "\nMLP 784-256-128-10 training (SGD lr 0.01, cross-entropy), steps/s:\n");
        fprintf(f, "%-9s %5s %6s %12s %7s %12s %s\n", "backend", "batch", "steps", "steps/s",
                "spread", "final loss", "loss vs first backend");
        for (int i = 0; i < r->n_train; i++) {
            const bench_train_row *t = &r->train[i];
            const bench_train_row *first = NULL;
            for (int j = 0; j < r->n_train; j++)
                if (r->train[j].batch == t->batch && r->train[j].ok) {
                    first = &r->train[j];
                    break;
                }
            if (!t->ok) {
                fprintf(f, "%-9s %5d %6s %12s %7s %12s (%s)\n", t->backend, t->batch, "-", "-", "-",
                        "-", t->note);
                continue;
            }
            char diff[48] = "";
            if (first && first != t)
                snprintf(diff, sizeof diff, "%+.2e (rel %.1e)", t->final_loss - first->final_loss,
                         fabs(t->final_loss - first->final_loss) / fabs(first->final_loss));
            fprintf(f, "%-9s %5d %6d %12.1f %6.0f%% %12.6f %s\n", t->backend, t->batch, t->steps,
                    1.0 / t->t.median, t->t.spread * 100, t->final_loss, diff);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* CSV                                                                       */
/* ------------------------------------------------------------------------ */

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, ",%.9g", x);
    else fputs(",", f);
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "ember-bench: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "ember-bench: error writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int bench_write_csv(const char *path, const bench_report *r)
{
    FILE *f = open_out(path);
    if (!f) return -1;
    fprintf(f, "suite,op,dtype,size,shape,backend,status,via,median_s,p10_s,p90_s,spread,repeats,"
               "flops,bytes,unit,rate,max_abs_err,max_rel_err,nmse,tol_atol,tol_rtol,tol_ulps,"
               "check,batch,steps_per_s,final_loss,note\n");
    for (int i = 0; i < r->n_rows; i++) {
        const bench_row *w = &r->rows[i];
        fprintf(f, "ops,%s,%s,%s,", w->op, w->dtype, w->size);
        csv_str(f, w->shape);
        fprintf(f, ",%s,%s,%s", w->backend, bench_status_name(w->status),
                w->status == BS_OK ? (w->fallback ? "cpu-fallback" : "native") : "");
        csv_num(f, w->t.median);
        csv_num(f, w->t.p10);
        csv_num(f, w->t.p90);
        csv_num(f, w->t.spread);
        fprintf(f, ",%d", w->t.repeats);
        csv_num(f, w->flops);
        csv_num(f, w->bytes);
        fprintf(f, ",%s", w->metric == BENCH_FLOPS ? "GFLOP/s" : "GB/s");
        csv_num(f, bench_row_rate(w));
        bool m = w->status == BS_OK;
        csv_num(f, m ? w->err.max_abs : NAN);
        csv_num(f, m ? w->err.max_rel : NAN);
        csv_num(f, m ? w->err.nmse : NAN);
        csv_num(f, w->tol.atol);
        csv_num(f, w->tol.rtol);
        csv_num(f, w->tol.ulps);
        fprintf(f, ",%s,,,,", row_verdict(w));
        csv_str(f, w->note);
        fputc('\n', f);
    }
    for (int i = 0; i < r->n_train; i++) {
        const bench_train_row *t = &r->train[i];
        fprintf(f, "train,mlp,f32,b%d,\"784-256-128-10\",%s,%s,,", t->batch, t->backend,
                t->ok ? "ok" : "error");
        fprintf(f, "%.9g,%.9g,%.9g,%.9g,%d,,,,,,,,,,,,%d,%.9g,%.9g,", t->t.median, t->t.p10,
                t->t.p90, t->t.spread, t->t.repeats, t->batch, t->ok ? 1.0 / t->t.median : 0.0,
                t->final_loss);
        csv_str(f, t->note);
        fputc('\n', f);
    }
    return close_out(f, path);
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */

static void jkv_str(FILE *f, const char *k, const char *v, bool comma)
{
    fprintf(f, "\"%s\": ", k);
    bench_json_write_str(f, v);
    if (comma) fputs(", ", f);
}

static void jkv_num(FILE *f, const char *k, double v, bool comma)
{
    fprintf(f, "\"%s\": ", k);
    bench_json_write_num(f, v);
    if (comma) fputs(", ", f);
}

int bench_write_json(const char *path, const bench_report *r)
{
    FILE *f = open_out(path);
    if (!f) return -1;
    fprintf(f, "{\n  \"format\": \"ember-bench/1\",\n  ");
    jkv_str(f, "created", r->created, true);
    jkv_str(f, "command", r->command, false);
    fprintf(f, ",\n  \"machine\": {");
    jkv_str(f, "cpu", r->cpu_model, true);
    jkv_num(f, "cores", r->cores, true);
    jkv_str(f, "os", r->os, true);
    jkv_num(f, "loadavg_1min", r->loadavg, false);
    fprintf(f, "},\n  \"library\": {");
    jkv_str(f, "ember", r->ember_version, true);
    jkv_str(f, "plugin_abi", r->plugin_abi, false);
    fprintf(f, "},\n  ");
    jkv_str(f, "precision", r->precision, false);
    fprintf(f, ",\n  \"settings\": {");
    jkv_num(f, "repeat", r->repeat, true);
    jkv_num(f, "budget_s", r->budget_s, true);
    jkv_num(f, "elapsed_s", r->elapsed_s, false);
    fprintf(f, "},\n  \"backends\": [");
    for (int i = 0; i < r->n_backends; i++) {
        const bench_backend_info *b = &r->backends[i];
        fprintf(f, "%s\n    {", i ? "," : "");
        jkv_str(f, "device", b->device, true);
        jkv_str(f, "backend", b->backend, true);
        jkv_str(f, "version", b->version, true);
        jkv_str(f, "name", b->name, true);
        jkv_str(f, "type", b->type, true);
        jkv_str(f, "description", b->description, true);
        jkv_str(f, "path", b->path, false);
        fputc('}', f);
    }
    fprintf(f, "\n  ],\n  \"pytorch\": ");
    if (r->torch_version[0]) {
        fputc('{', f);
        jkv_str(f, "version", r->torch_version, true);
        jkv_str(f, "settings", r->torch_settings, false);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fprintf(f, ",\n  \"ops\": [");
    for (int i = 0; i < r->n_rows; i++) {
        const bench_row *w = &r->rows[i];
        bool m = w->status == BS_OK;
        fprintf(f, "%s\n    {", i ? "," : "");
        jkv_str(f, "op", w->op, true);
        jkv_str(f, "dtype", w->dtype, true);
        jkv_str(f, "size", w->size, true);
        jkv_str(f, "shape", w->shape, true);
        jkv_str(f, "backend", w->backend, true);
        jkv_str(f, "status", bench_status_name(w->status), true);
        fprintf(f, "\"fallback\": %s, ", w->fallback ? "true" : "false");
        jkv_num(f, "median_s", w->t.median, true);
        jkv_num(f, "p10_s", w->t.p10, true);
        jkv_num(f, "p90_s", w->t.p90, true);
        jkv_num(f, "spread", w->t.spread, true);
        jkv_num(f, "repeats", w->t.repeats, true);
        jkv_num(f, "inner", w->inner, true);
        jkv_num(f, "flops", w->flops, true);
        jkv_num(f, "bytes", w->bytes, true);
        jkv_str(f, "metric", w->metric == BENCH_FLOPS ? "flops" : "bytes", true);
        jkv_num(f, "rate", bench_row_rate(w), true);
        jkv_num(f, "max_abs_err", m ? w->err.max_abs : NAN, true);
        jkv_num(f, "max_rel_err", m ? w->err.max_rel : NAN, true);
        jkv_num(f, "nmse", m ? w->err.nmse : NAN, true);
        jkv_num(f, "tol_atol", w->tol.atol, true);
        jkv_num(f, "tol_rtol", w->tol.rtol, true);
        jkv_num(f, "tol_ulps", w->tol.ulps, true);
        fprintf(f, "\"pass\": %s, ", m && w->err.pass ? "true" : "false");
        jkv_str(f, "note", w->note, false);
        fputc('}', f);
    }
    fprintf(f, "\n  ],\n  \"train\": [");
    for (int i = 0; i < r->n_train; i++) {
        const bench_train_row *t = &r->train[i];
        fprintf(f, "%s\n    {", i ? "," : "");
        jkv_str(f, "backend", t->backend, true);
        jkv_num(f, "batch", t->batch, true);
        jkv_num(f, "steps", t->steps, true);
        fprintf(f, "\"ok\": %s, ", t->ok ? "true" : "false");
        jkv_num(f, "step_median_s", t->t.median, true);
        jkv_num(f, "step_p10_s", t->t.p10, true);
        jkv_num(f, "step_p90_s", t->t.p90, true);
        jkv_num(f, "spread", t->t.spread, true);
        jkv_num(f, "repeats", t->t.repeats, true);
        jkv_num(f, "steps_per_s", t->ok ? 1.0 / t->t.median : NAN, true);
        jkv_num(f, "final_loss", t->final_loss, true);
        jkv_str(f, "note", t->note, false);
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
    return close_out(f, path);
}

static void copy_str(char *dst, size_t cap, const bench_json *o, const char *key)
{
    snprintf(dst, cap, "%s", bench_json_str(o, key, ""));
}

int bench_read_json(const char *path, bench_report *r, char *why, size_t cap)
{
    char *text = bench_read_file(path, NULL);
    if (!text) {
        snprintf(why, cap, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    char jwhy[256];
    bench_json *j = bench_json_parse(text, jwhy, sizeof jwhy);
    free(text);
    if (!j) {
        snprintf(why, cap, "%s: not valid JSON: %s", path, jwhy);
        return -1;
    }
    const char *fmt = bench_json_str(j, "format", "");
    if (strcmp(fmt, "ember-bench/1") != 0) {
        snprintf(why, cap, "%s: \"format\" is \"%s\", expected \"ember-bench/1\"", path, fmt);
        bench_json_free(j);
        return -1;
    }
    copy_str(r->created, sizeof r->created, j, "created");
    copy_str(r->command, sizeof r->command, j, "command");
    copy_str(r->precision, sizeof r->precision, j, "precision");
    const bench_json *m = bench_json_get(j, "machine");
    copy_str(r->cpu_model, sizeof r->cpu_model, m, "cpu");
    copy_str(r->os, sizeof r->os, m, "os");
    r->cores = (int)bench_json_num(m, "cores", 0);
    r->loadavg = bench_json_num(m, "loadavg_1min", 0);
    const bench_json *lib = bench_json_get(j, "library");
    copy_str(r->ember_version, sizeof r->ember_version, lib, "ember");
    copy_str(r->plugin_abi, sizeof r->plugin_abi, lib, "plugin_abi");
    const bench_json *pt = bench_json_get(j, "pytorch");
    if (pt && pt->type == BJ_OBJ) {
        copy_str(r->torch_version, sizeof r->torch_version, pt, "version");
        copy_str(r->torch_settings, sizeof r->torch_settings, pt, "settings");
    }
    const bench_json *be = bench_json_get(j, "backends");
    for (int i = 0; be && be->type == BJ_ARR && i < be->n && r->n_backends < BENCH_MAX_BACKENDS; i++) {
        bench_backend_info *b = &r->backends[r->n_backends++];
        const bench_json *o = &be->items[i];
        copy_str(b->device, sizeof b->device, o, "device");
        copy_str(b->backend, sizeof b->backend, o, "backend");
        copy_str(b->version, sizeof b->version, o, "version");
        copy_str(b->name, sizeof b->name, o, "name");
        copy_str(b->type, sizeof b->type, o, "type");
        copy_str(b->description, sizeof b->description, o, "description");
        copy_str(b->path, sizeof b->path, o, "path");
    }
    const bench_json *ops = bench_json_get(j, "ops");
    int rc = 0;
    for (int i = 0; ops && ops->type == BJ_ARR && i < ops->n; i++) {
        const bench_json *o = &ops->items[i];
        bench_row *w = bench_report_add(r);
        if (!w) {
            snprintf(why, cap, "%s: out of memory reading row %d", path, i);
            rc = -1;
            break;
        }
        copy_str(w->op, sizeof w->op, o, "op");
        copy_str(w->dtype, sizeof w->dtype, o, "dtype");
        copy_str(w->size, sizeof w->size, o, "size");
        copy_str(w->shape, sizeof w->shape, o, "shape");
        copy_str(w->backend, sizeof w->backend, o, "backend");
        copy_str(w->note, sizeof w->note, o, "note");
        if (!w->op[0] || !w->backend[0]) {
            snprintf(why, cap, "%s: ops[%d] lacks \"op\" or \"backend\"", path, i);
            rc = -1;
            break;
        }
        w->status = status_parse(bench_json_str(o, "status", "ok"));
        w->fallback = bench_json_num(o, "fallback", 0) != 0;
        w->t.median = bench_json_num(o, "median_s", NAN);
        w->t.p10 = bench_json_num(o, "p10_s", w->t.median);
        w->t.p90 = bench_json_num(o, "p90_s", w->t.median);
        w->t.spread = bench_json_num(o, "spread", 0);
        w->t.repeats = (int)bench_json_num(o, "repeats", 0);
        w->inner = (int)bench_json_num(o, "inner", 1);
        w->flops = bench_json_num(o, "flops", 0);
        w->bytes = bench_json_num(o, "bytes", 0);
        w->metric = !strcmp(bench_json_str(o, "metric", "bytes"), "flops") ? BENCH_FLOPS : BENCH_BYTES;
        w->err.max_abs = bench_json_num(o, "max_abs_err", NAN);
        w->err.max_rel = bench_json_num(o, "max_rel_err", NAN);
        w->err.nmse = bench_json_num(o, "nmse", NAN);
        w->err.pass = bench_json_num(o, "pass", 0) != 0;
        w->err.bad = w->err.pass ? -1 : 0;
        w->tol.atol = bench_json_num(o, "tol_atol", 0);
        w->tol.rtol = bench_json_num(o, "tol_rtol", 0);
        w->tol.ulps = bench_json_num(o, "tol_ulps", 0);
    }
    const bench_json *tr = bench_json_get(j, "train");
    for (int i = 0; rc == 0 && tr && tr->type == BJ_ARR && i < tr->n; i++) {
        const bench_json *o = &tr->items[i];
        bench_train_row *t = bench_report_add_train(r);
        if (!t) {
            snprintf(why, cap, "%s: out of memory reading train row %d", path, i);
            rc = -1;
            break;
        }
        copy_str(t->backend, sizeof t->backend, o, "backend");
        copy_str(t->note, sizeof t->note, o, "note");
        t->batch = (int)bench_json_num(o, "batch", 0);
        t->steps = (int)bench_json_num(o, "steps", 0);
        t->ok = bench_json_num(o, "ok", 0) != 0;
        t->t.median = bench_json_num(o, "step_median_s", NAN);
        t->t.p10 = bench_json_num(o, "step_p10_s", t->t.median);
        t->t.p90 = bench_json_num(o, "step_p90_s", t->t.median);
        t->t.spread = bench_json_num(o, "spread", 0);
        t->t.repeats = (int)bench_json_num(o, "repeats", 0);
        t->final_loss = bench_json_num(o, "final_loss", NAN);
    }
    bench_json_free(j);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Markdown                                                                  */
/* ------------------------------------------------------------------------ */

int bench_write_markdown(const char *path, const bench_report *r)
{
    FILE *f = open_out(path);
    if (!f) return -1;
    fprintf(f, "### Ember benchmark report (%s)\n\n", r->created);
    fprintf(f, "- machine: %s, %d cores, %s, load %.2f at start\n", r->cpu_model, r->cores, r->os,
            r->loadavg);
    fprintf(f, "- Ember %s, plugin ABI %s\n- precision settings: %s\n", r->ember_version,
            r->plugin_abi, r->precision);
    for (int i = 0; i < r->n_backends; i++) {
        const bench_backend_info *b = &r->backends[i];
        fprintf(f, "- `%s`: %s (%s; %s %s) %s\n", b->device, b->name, b->type, b->backend,
                b->version, b->description);
    }
    if (r->torch_version[0]) fprintf(f, "- `pytorch`: PyTorch %s, %s\n", r->torch_version, r->torch_settings);
    fprintf(f, "- command: `%s` (%.0f s)\n\n", r->command, r->elapsed_s);
    const char *be[BENCH_MAX_BACKENDS + 1];
    int nb = bench_report_backends(r, be, BENCH_MAX_BACKENDS + 1);
    if (r->n_rows) {
        fprintf(f, "#### Throughput (median; GB/s or GFLOP/s; *fb* = CPU fallback)\n\n");
        fprintf(f, "| op | dtype | size | shape |");
        for (int b = 0; b < nb; b++) fprintf(f, " %s |", be[b]);
        fprintf(f, "\n|---|---|---|---|");
        for (int b = 0; b < nb; b++) fprintf(f, "---:|");
        fputc('\n', f);
        for (int i = 0; i < r->n_rows; i++) {
            const bench_row *w = &r->rows[i];
            if (bench_report_find(r, w->op, w->dtype, w->size, w->backend) != w) continue;
            /* one line per (op, dtype, size): print it at its first row */
            bool first = true;
            for (int k = 0; k < i && first; k++)
                first = !(!strcmp(r->rows[k].op, w->op) && !strcmp(r->rows[k].dtype, w->dtype) &&
                          !strcmp(r->rows[k].size, w->size));
            if (!first) continue;
            fprintf(f, "| %s | %s | %s | %s |", w->op, w->dtype, w->size, w->shape);
            for (int b = 0; b < nb; b++) {
                const bench_row *x = bench_report_find(r, w->op, w->dtype, w->size, be[b]);
                char rate[32], tm[32];
                if (!x) fprintf(f, " |");
                else if (x->status != BS_OK) fprintf(f, " %s |", bench_status_name(x->status));
                else fprintf(f, " %s (%s)%s |", fmt_rate(x, rate, sizeof rate),
                             fmt_time(x->t.median, tm, sizeof tm), x->fallback ? " *fb*" : "");
            }
            fputc('\n', f);
        }
        fprintf(f, "\n#### Precision (max relative error vs the float64 reference; FAIL = outside the tolerance)\n\n");
        fprintf(f, "| op | dtype | size | tolerance |");
        for (int b = 0; b < nb; b++) fprintf(f, " %s |", be[b]);
        fprintf(f, "\n|---|---|---|---|");
        for (int b = 0; b < nb; b++) fprintf(f, "---:|");
        fputc('\n', f);
        for (int i = 0; i < r->n_rows; i++) {
            const bench_row *w = &r->rows[i];
            bool first = true;
            for (int k = 0; k < i && first; k++)
                first = !(!strcmp(r->rows[k].op, w->op) && !strcmp(r->rows[k].dtype, w->dtype) &&
                          !strcmp(r->rows[k].size, w->size));
            if (!first) continue;
            char tol[48];
            fprintf(f, "| %s | %s | %s | %s |", w->op, w->dtype, w->size, fmt_tol(w->tol, tol, sizeof tol));
            for (int b = 0; b < nb; b++) {
                const bench_row *x = bench_report_find(r, w->op, w->dtype, w->size, be[b]);
                char er[16];
                if (!x) fprintf(f, " |");
                else if (x->status != BS_OK) fprintf(f, " %s |", bench_status_name(x->status));
                else fprintf(f, " %s%s |", fmt_err(x->err.max_rel, er, sizeof er),
                             x->err.pass ? "" : " **FAIL**");
            }
            fputc('\n', f);
        }
    }
    if (r->n_train) {
        fprintf(f, "\n#### MLP 784-256-128-10 training (SGD lr 0.01)\n\n");
        fprintf(f, "| backend | batch | steps | steps/s (median) | spread | final loss |\n");
        fprintf(f, "|---|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < r->n_train; i++) {
            const bench_train_row *t = &r->train[i];
            if (!t->ok) fprintf(f, "| %s | %d | - | - | - | %s |\n", t->backend, t->batch, t->note);
            else fprintf(f, "| %s | %d | %d | %.1f | %.0f%% | %.6f |\n", t->backend, t->batch,
                         t->steps, 1.0 / t->t.median, t->t.spread * 100, t->final_loss);
        }
    }
    return close_out(f, path);
}
