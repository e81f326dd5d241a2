/*
 * ember_bench.c — ember-bench: throughput and precision of every op on every
 * backend, training steps per second, reports people can read and plot.
 *
 *   ember-bench [ops|train|all] [--backend cpu,vulkan:0,/path/libember-x.so]
 *               [--ops add,matmul,unary,...] [--sizes S,M,L|RxC] [--dtypes f32,f16|all]
 *               [--repeat N] [--budget SECONDS] [--pytorch] [--csv F] [--json F]
 *               [--markdown F] [--svg PREFIX] [--seed N] [--list]
 *   ember-bench --compare old.json new.json [--threshold 0.05] [--fail-on-regression]
 *
 * ops suite, per (op, dtype, size): inputs drawn once by the harness's own
 * generator and rounded to the dtype, the float64 reference computed once
 * on the host (bench_ops.c), then on each device: upload, one checked call
 * (its result is compared with the reference: max abs/rel error, NMSE,
 * tolerance, pass/fail; whether the CPU fallback ran is read from
 * em_fallback_count), one warm-up call, then `repeat` samples of `inner`
 * calls each followed by em_device_synchronize; the sample is the time per
 * call. `inner` is chosen so a sample lasts about 1/repeat of the case's
 * share of the budget (at most 20 ms). The median, p10 and p90 are
 * reported; spread = (p90 - p10) / median.
 *
 * It reports; it never asserts a timing or a tolerance. Exit status: 0, or 1
 * when Ember returned an error other than "unsupported", 2 for bad usage or
 * unwritable output files; --compare with --fail-on-regression exits 1 when
 * it flags a regression.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef EMBER_BENCH_DIR
#define EMBER_BENCH_DIR "bench"
#endif

#define MAX_LIST 128

typedef struct options {
    bool suite_ops, suite_train;
    const char *backends, *ops, *sizes, *dtypes;
    int repeat;
    double budget;
    bool pytorch, list, quiet;
    const char *csv, *json, *markdown, *svg;
    uint64_t seed;
    int train_steps;
} options;

static bool g_tty;
static int g_errors;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember-bench [ops|train|all] [options]\n"
            "       ember-bench --compare old.json new.json [--threshold F] [--fail-on-regression]\n"
            "  --backend LIST   devices, in EMBER_BACKEND forms: cpu, vulkan, cuda:0, /path/libember-x.so\n"
            "                   (default: every device that loads)\n"
            "  --ops LIST       op names or families (binary, compare, select, unary, reduce,\n"
            "                   softmax, linalg, memory, index); default: all (see --list)\n"
            "  --sizes LIST     S, M, L, XL (elementwise 64^2..4096^2, matmul 64..2048) or RxC /\n"
            "                   MxKxN; default S,M,L\n"
            "  --dtypes LIST    f32,f64,f16,bf16,i32,i64,bool or all; default f32\n"
            "  --repeat N       timed samples per case (default 7)\n"
            "  --budget S       target seconds for the whole run (default 60)\n"
            "  --train-steps N  timed training steps per backend and batch (default 60)\n"
            "  --pytorch        add PyTorch's figures (bench/pytorch_ops.py with $EMBER_PYTHON or\n"
            "                   /usr/bin/python3, OPENBLAS_CORETYPE=SkylakeX)\n"
            "  --csv F --json F --markdown F --svg PREFIX (PREFIX-throughput.svg, PREFIX-error.svg)\n"
            "  --seed N         input generator seed (default 1)\n"
            "  --list           print the op table with FLOP counts and exit\n"
            "  -q               no table on stdout\n");
}

/* Splits a comma list in place. */
static int split(char *s, char **items, int cap)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < cap; tok = strtok(NULL, ",")) items[n++] = tok;
    return n;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    if (!g_tty) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ------------------------------------------------------------------------ */
/* The ops suite                                                             */
/* ------------------------------------------------------------------------ */

typedef struct plan_item {
    const bench_op *op;
    em_dtype dtype;
    char size[16];
    int64_t p[3];
} plan_item;

static bool op_selected(const bench_op *op, char **sel, int nsel)
{
    if (nsel == 0) return true;
    for (int i = 0; i < nsel; i++)
        if (!strcmp(sel[i], op->name) || !strcmp(sel[i], op->family) || !strcmp(sel[i], "all"))
            return true;
    return false;
}

static int build_plan(const options *o, plan_item **out)
{
    char ops_buf[1024] = "", sz_buf[256] = "S,M,L", dt_buf[256] = "f32";
    if (o->ops) snprintf(ops_buf, sizeof ops_buf, "%s", o->ops);
    if (o->sizes) snprintf(sz_buf, sizeof sz_buf, "%s", o->sizes);
    if (o->dtypes) snprintf(dt_buf, sizeof dt_buf, "%s", o->dtypes);
    char *ops[MAX_LIST], *sizes[MAX_LIST], *dts[MAX_LIST];
    int nops = o->ops ? split(ops_buf, ops, MAX_LIST) : 0;
    int nsz = split(sz_buf, sizes, MAX_LIST), ndt = split(dt_buf, dts, MAX_LIST);
    for (int i = 0; i < nops; i++) {
        bool known = !strcmp(ops[i], "all");
        for (int k = 0; k < bench_op_count && !known; k++)
            known = !strcmp(ops[i], bench_ops[k].name) || !strcmp(ops[i], bench_ops[k].family);
        if (!known) {
            fprintf(stderr, "ember-bench: --ops: unknown op or family '%s' (see --list)\n", ops[i]);
            return -1;
        }
    }
    em_dtype dl[EM_DTYPE_COUNT];
    int nd = 0;
    for (int i = 0; i < ndt; i++) {
        if (!strcmp(dts[i], "all")) {
            for (int d = 0; d < EM_DTYPE_COUNT; d++) dl[d] = (em_dtype)d;
            nd = EM_DTYPE_COUNT;
            break;
        }
        if (nd < EM_DTYPE_COUNT && !bench_dtype_parse(dts[i], &dl[nd++])) {
            fprintf(stderr, "ember-bench: --dtypes: unknown dtype '%s' (f32 f64 f16 bf16 i32 i64 bool)\n", dts[i]);
            return -1;
        }
    }
    int cap = bench_op_count * nd * nsz + 1;
    plan_item *plan = calloc((size_t)cap, sizeof *plan);
    if (!plan) {
        fprintf(stderr, "ember-bench: out of memory planning %d cases\n", cap);
        return -1;
    }
    int n = 0;
    for (int k = 0; k < bench_op_count; k++) {
        const bench_op *op = &bench_ops[k];
        if (!op_selected(op, ops, nops)) continue;
        for (int d = 0; d < nd; d++) {
            if (!bench_op_accepts(op, dl[d])) continue;
            for (int s = 0; s < nsz; s++) {
                plan_item *it = &plan[n];
                if (!bench_size_params(op, sizes[s], it->p)) {
                    fprintf(stderr, "ember-bench: --sizes: '%s' is not S, M, L, XL, RxC or MxKxN\n",
                            sizes[s]);
                    free(plan);
                    return -1;
                }
                it->op = op;
                it->dtype = dl[d];
                snprintf(it->size, sizeof it->size, "%s", sizes[s]);
                n++;
            }
        }
    }
    *out = plan;
    return n;
}

static void fill_row_head(bench_row *w, const bench_case *c, em_device *dev)
{
    snprintf(w->op, sizeof w->op, "%s", c->op->name);
    snprintf(w->dtype, sizeof w->dtype, "%s", bench_dtype_name(c->dtype));
    snprintf(w->size, sizeof w->size, "%s", c->size);
    snprintf(w->shape, sizeof w->shape, "%s", c->shape);
    snprintf(w->backend, sizeof w->backend, "%s", dev ? em_device_name(dev) : "pytorch");
    w->flops = c->flops;
    w->bytes = c->bytes;
    w->metric = c->op->metric;
    w->tol = c->tol;
}

static void note_error(bench_row *w, const char *what)
{
    em_status st = em_last_status();
    w->status = st == EM_ERR_UNSUPPORTED ? BS_UNSUPPORTED : BS_ERROR;
    snprintf(w->note, sizeof w->note, "%s: %s", what, em_last_error());
    if (w->status == BS_ERROR) g_errors++;
    em_clear_error();
}

/* Measures one case on one device into w. share: seconds this unit may
 * use; the first (checked) call always runs, the warm-up and the timed
 * samples only while they fit (a case whose one call exceeds its share is
 * reported from that single call, repeats 1). */
static void measure(const bench_case *c, em_device *dev, bench_row *w, int repeat, double share)
{
    fill_row_head(w, c, dev);
    em_device_props props = {.struct_size = sizeof props};
    em_dtype up[BENCH_MAX_IN];
    bool have_props = em_device_properties(dev, &props) == EM_OK;
    for (int i = 0; i < c->n_in; i++) {
        up[i] = c->in[i].dtype;
        if (!have_props || ((props.dtype_mask >> up[i]) & 1u)) continue;
        if (up[i] == EM_I64 && bench_case_is_index(c, i) && ((props.dtype_mask >> EM_I32) & 1u)) {
            up[i] = EM_I32; /* indices may be i32 */
            continue;
        }
        w->status = BS_UNSUPPORTED;
        snprintf(w->note, sizeof w->note, "device %s has no %s (its dtype_mask)", em_device_name(dev),
                 bench_dtype_name(up[i]));
        return;
    }
    em_tensor *in[BENCH_MAX_IN] = {0};
    double *got = NULL;
    for (int i = 0; i < c->n_in; i++) {
        in[i] = bench_case_upload(c, i, dev, up[i]);
        if (!in[i]) {
            note_error(w, "upload");
            goto done;
        }
    }
    if (em_device_synchronize(dev) != EM_OK) {
        note_error(w, "synchronize after upload");
        goto done;
    }
    /* the checked call */
    uint64_t fb0 = em_fallback_count();
    double t0 = bench_now();
    em_tensor *r = bench_case_run(c, in);
    if (!r) {
        note_error(w, "first call");
        goto done;
    }
    em_status st = em_device_synchronize(dev);
    double first = bench_now() - t0;
    w->fallback = em_fallback_count() != fb0;
    if (em_tensor_dtype(r) != c->out.dtype || em_tensor_numel(r) != c->out.numel) {
        w->status = BS_ERROR;
        snprintf(w->note, sizeof w->note, "result is %s with %lld elements, expected %s with %lld",
                 bench_dtype_name(em_tensor_dtype(r)), (long long)em_tensor_numel(r),
                 bench_dtype_name(c->out.dtype), (long long)c->out.numel);
        g_errors++;
        em_tensor_release(r);
        goto done;
    }
    got = malloc(sizeof(double) * (size_t)(c->out.numel > 0 ? c->out.numel : 1));
    if (st == EM_OK) st = got ? bench_read_result(r, got, c->out.numel) : EM_ERR_OUT_OF_MEMORY;
    em_tensor_release(r);
    if (st != EM_OK) {
        note_error(w, "reading the result");
        goto done;
    }
    w->err = bench_case_compare(c, got);
    if (first > share) { /* no time for more: one sample */
        double one[1] = {first};
        w->t = bench_timing_of(one, 1);
        w->inner = 1;
        w->status = BS_OK;
        snprintf(w->note, sizeof w->note, "1 sample (the budget)");
        goto done;
    }
    /* warm-up, and the cost of one call */
    t0 = bench_now();
    r = bench_case_run(c, in);
    em_tensor_release(r);
    if (!r || em_device_synchronize(dev) != EM_OK) {
        note_error(w, "warm-up call");
        goto done;
    }
    double one = bench_now() - t0;
    if (one <= 0) one = 1e-9;
    double per_sample = (share - first - one) / repeat;
    if (per_sample > 0.02) per_sample = 0.02;
    int inner = (int)(per_sample / one);
    if (inner < 1) inner = 1;
    int reps = repeat;
    if (one * reps > share && reps > 3) {
        reps = (int)(share / one);
        if (reps < 3) reps = 3;
    }
    double samples[1024];
    if (reps > 1024) reps = 1024;
    for (int s = 0; s < reps; s++) {
        double ts = bench_now();
        for (int i = 0; i < inner; i++) {
            r = bench_case_run(c, in);
            if (!r) break;
            em_tensor_release(r);
        }
        if (!r || em_device_synchronize(dev) != EM_OK) {
            note_error(w, "timed call");
            goto done;
        }
        samples[s] = (bench_now() - ts) / inner;
    }
    w->t = bench_timing_of(samples, reps);
    w->inner = inner;
    w->status = BS_OK;
done:
    free(got);
    for (int i = 0; i < c->n_in; i++) em_tensor_release(in[i]);
}

/* ------------------------------------------------------------------------ */
/* PyTorch peer                                                              */
/* ------------------------------------------------------------------------ */

static const char *geom_input_kind(const bench_case *c, int i)
{
    bench_geom g = c->op->geom;
    if (i == 1 && (g == BG_ISEL || g == BG_GATHER || g == BG_SCATTER)) return "index";
    if ((i == 1 && g == BG_MASKED) || (i == 0 && g == BG_WHERE)) return "mask";
    return "values";
}

static void write_case_json(FILE *f, const bench_case *c)
{
    fprintf(f, "{\"op\": \"%s\", \"dtype\": \"%s\", \"out_dtype\": \"%s\", \"size\": \"%s\", "
               "\"shape\": ", c->op->name, bench_dtype_name(c->dtype), bench_dtype_name(c->out.dtype), c->size);
    bench_json_write_str(f, c->shape);
    fprintf(f, ", \"p\": [%lld, %lld, %lld], \"flops\": %.17g, \"bytes\": %.17g, \"metric\": \"%s\", "
               "\"tol\": [%.17g, %.17g, %.17g], \"scale_abs\": %s, \"inputs\": [",
            (long long)c->p[0], (long long)c->p[1], (long long)c->p[2], c->flops, c->bytes,
            c->op->metric == BENCH_FLOPS ? "flops" : "bytes", c->tol.atol, c->tol.rtol, c->tol.ulps,
            c->op->scale_abs ? "true" : "false");
    for (int i = 0; i < c->n_in; i++) {
        const bench_arg *a = &c->in[i];
        double lo = c->op->lo, hi = c->op->hi;
        const char *kind = geom_input_kind(c, i);
        bool divisor = bench_is_float(c->dtype) &&
                       ((!strcmp(c->op->name, "div") && i == 1) || !strcmp(c->op->name, "reciprocal"));
        if (!strcmp(c->op->name, "pow") && i == 1) lo = -2, hi = 2;
        if (!bench_is_float(a->dtype)) lo = -8, hi = 8;
        fprintf(f, "%s{\"kind\": \"%s\", \"dtype\": \"%s\", \"shape\": [", i ? ", " : "",
                divisor ? "divisor" : kind, bench_dtype_name(a->dtype));
        for (int k = 0; k < a->ndim; k++) fprintf(f, "%s%lld", k ? ", " : "", (long long)a->shape[k]);
        fprintf(f, "], \"lo\": %.17g, \"hi\": %.17g, \"index_max\": %lld}", lo, hi, (long long)c->p[0]);
    }
    fprintf(f, "], \"equal_every\": %d}", !strcmp(c->op->family, "compare") ? 4 : 0);
}

static const char *python_path(void)
{
    const char *p = getenv("EMBER_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static const char *bench_dir(void)
{
    const char *d = getenv("EMBER_BENCH_DIR");
    return d && *d ? d : EMBER_BENCH_DIR;
}

/* Puts every row right after the first row of its (op, dtype, size), so
 * the peer's rows sit beside Ember's (a stable reordering). */
static void group_rows(bench_report *r)
{
    bench_row *sorted = malloc(sizeof *sorted * (size_t)(r->n_rows > 0 ? r->n_rows : 1));
    char *taken = calloc((size_t)(r->n_rows > 0 ? r->n_rows : 1), 1);
    if (!sorted || !taken) {
        free(sorted);
        free(taken);
        return;
    }
    int n = 0;
    for (int i = 0; i < r->n_rows; i++) {
        if (taken[i]) continue;
        for (int j = i; j < r->n_rows; j++) {
            const bench_row *a = &r->rows[i], *b = &r->rows[j];
            if (!taken[j] && !strcmp(a->op, b->op) && !strcmp(a->dtype, b->dtype) &&
                !strcmp(a->size, b->size)) {
                sorted[n++] = *b;
                taken[j] = 1;
            }
        }
    }
    memcpy(r->rows, sorted, sizeof *sorted * (size_t)n);
    free(sorted);
    free(taken);
}

/* Runs the peer on the cases file; merges its rows into r. */
static void run_pytorch(bench_report *r, const char *cases_path, const options *o)
{
    char out_path[] = "/tmp/ember-bench-torch-XXXXXX";
    int fd = mkstemp(out_path);
    if (fd < 0) {
        fprintf(stderr, "ember-bench: --pytorch: cannot create a temporary file: %s\n", strerror(errno));
        return;
    }
    close(fd);
    const char *py = python_path(), *dir = bench_dir();
    if (strchr(py, '\'') || strchr(dir, '\'')) {
        fprintf(stderr, "ember-bench: --pytorch: a quote in the python path or bench folder is not supported\n");
        unlink(out_path);
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX} '%s' '%s/pytorch_ops.py' --cases '%s' "
             "--out '%s' --threads %d%s",
             py, dir, cases_path, out_path, r->cores, o->quiet || !g_tty ? "" : " --progress");
    if (!o->quiet) printf("running the PyTorch peer: %s\n", cmd);
    fflush(stdout);
    int rc = system(cmd);
    progress("%s", "");
    if (rc != 0) {
        fprintf(stderr, "ember-bench: --pytorch: the peer failed (exit status %d): %s\n"
                        "  (is torch importable by %s? set EMBER_PYTHON to another interpreter)\n",
                rc, cmd, py);
        unlink(out_path);
        return;
    }
    bench_report peer;
    bench_report_init(&peer);
    char why[512];
    if (bench_read_json(out_path, &peer, why, sizeof why) != 0) {
        fprintf(stderr, "ember-bench: --pytorch: %s\n", why);
    } else {
        snprintf(r->torch_version, sizeof r->torch_version, "%s", peer.torch_version);
        snprintf(r->torch_settings, sizeof r->torch_settings, "%s", peer.torch_settings);
        for (int i = 0; i < peer.n_rows; i++) {
            bench_row *w = bench_report_add(r);
            if (w) *w = peer.rows[i];
        }
        for (int i = 0; i < peer.n_train; i++) {
            bench_train_row *t = bench_report_add_train(r);
            if (t) *t = peer.train[i];
        }
    }
    bench_report_free(&peer);
    unlink(out_path);
    group_rows(r);
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

static int do_compare(int argc, char **argv)
{
    const char *paths[2] = {0};
    int np = 0;
    double threshold = 0.05;
    bool fail = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--compare")) continue;
        if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
            char *end;
            threshold = strtod(argv[++i], &end);
            if (*end || threshold < 0) {
                fprintf(stderr, "ember-bench: --threshold: '%s' is not a fraction >= 0 (e.g. 0.05)\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--fail-on-regression")) {
            fail = true;
        } else if (argv[i][0] != '-' && np < 2) {
            paths[np++] = argv[i];
        } else {
            fprintf(stderr, "ember-bench: --compare: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (np != 2) {
        fprintf(stderr, "ember-bench: --compare needs two report files (old.json new.json)\n");
        return 2;
    }
    bench_report a, b;
    bench_report_init(&a);
    bench_report_init(&b);
    char why[512];
    if (bench_read_json(paths[0], &a, why, sizeof why) != 0 ||
        bench_read_json(paths[1], &b, why, sizeof why) != 0) {
        fprintf(stderr, "ember-bench: --compare: %s\n", why);
        bench_report_free(&a);
        bench_report_free(&b);
        return 2;
    }
    int reg = bench_compare_reports(stdout, &a, &b, threshold);
    bench_report_free(&a);
    bench_report_free(&b);
    return fail && reg > 0 ? 1 : 0;
}

static void list_ops(void)
{
    printf("%-13s %-8s %-7s %-22s %s\n", "op", "family", "unit", "dtypes", "FLOPs counted");
    for (int k = 0; k < bench_op_count; k++) {
        const bench_op *op = &bench_ops[k];
        char dts[64] = "";
        for (int d = 0; d < EM_DTYPE_COUNT; d++)
            if (bench_op_accepts(op, (em_dtype)d)) {
                strcat(dts, dts[0] ? "," : "");
                strcat(dts, bench_dtype_name((em_dtype)d));
            }
        printf("%-13s %-8s %-7s %-22s %s\n", op->name, op->family,
               op->metric == BENCH_FLOPS ? "GFLOP/s" : "GB/s", dts, op->flop_note);
    }
    printf("bytes = every input read once + the output written once\n");
}

static bool parse_int(const char *s, int lo, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > 1000000) return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--compare")) return do_compare(argc, argv);
    options o = {.repeat = 7, .budget = 60, .seed = 1, .train_steps = 60};
    bool suite_given = false;
    char command[512] = "ember-bench";
    for (int i = 1; i < argc; i++) {
        size_t u = strlen(command);
        snprintf(command + u, sizeof command - u, " %s", argv[i]);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(field)                                                                         \
    do {                                                                                    \
        if (!v) {                                                                           \
            fprintf(stderr, "ember-bench: %s needs a value\n", a);                          \
            return 2;                                                                       \
        }                                                                                   \
        field = v;                                                                          \
        i++;                                                                                \
    } while (0)
        if (!strcmp(a, "ops") || !strcmp(a, "train") || !strcmp(a, "all")) {
            suite_given = true;
            o.suite_ops |= strcmp(a, "train") != 0;
            o.suite_train |= strcmp(a, "ops") != 0;
        } else if (!strcmp(a, "--backend")) TAKE(o.backends);
        else if (!strcmp(a, "--ops")) TAKE(o.ops);
        else if (!strcmp(a, "--sizes")) TAKE(o.sizes);
        else if (!strcmp(a, "--dtypes")) TAKE(o.dtypes);
        else if (!strcmp(a, "--csv")) TAKE(o.csv);
        else if (!strcmp(a, "--json")) TAKE(o.json);
        else if (!strcmp(a, "--markdown")) TAKE(o.markdown);
        else if (!strcmp(a, "--svg")) TAKE(o.svg);
        else if (!strcmp(a, "--repeat") || !strcmp(a, "--train-steps") || !strcmp(a, "--budget") ||
                 !strcmp(a, "--seed")) {
            const char *val = NULL;
            TAKE(val);
            bool ok = true;
            if (!strcmp(a, "--repeat")) ok = parse_int(val, 1, &o.repeat);
            else if (!strcmp(a, "--train-steps")) ok = parse_int(val, 1, &o.train_steps);
            else if (!strcmp(a, "--seed")) {
                char *end;
                o.seed = strtoull(val, &end, 0);
                ok = !*end;
            } else {
                char *end;
                o.budget = strtod(val, &end);
                ok = !*end && o.budget > 0;
            }
            if (!ok) {
                fprintf(stderr, "ember-bench: %s: '%s' is not a valid value\n", a, val);
                return 2;
            }
        } else if (!strcmp(a, "--pytorch")) o.pytorch = true;
        else if (!strcmp(a, "--list")) o.list = true;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o.quiet = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ember-bench: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef TAKE
    }
    if (o.list) {
        list_ops();
        return 0;
    }
    if (!suite_given) o.suite_ops = true;
    g_tty = isatty(STDOUT_FILENO) && !o.quiet;

    em_status ist = em_init();
    if (ist != EM_OK && !em_device_cpu()) {
        fprintf(stderr, "ember-bench: em_init failed: %s\n", em_last_error());
        return 1;
    }
    em_clear_error();
    /* devices */
    em_device *devs[BENCH_MAX_BACKENDS];
    int ndev = 0;
    if (o.backends) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", o.backends);
        char *items[BENCH_MAX_BACKENDS];
        int n = split(buf, items, BENCH_MAX_BACKENDS);
        for (int i = 0; i < n; i++) {
            em_device *d = em_device_find(items[i]);
            if (!d) {
                fprintf(stderr, "ember-bench: --backend %s: %s\n", items[i], em_last_error());
                return 2;
            }
            devs[ndev++] = d;
        }
    } else {
        for (int i = 0; i < em_device_count() && ndev < BENCH_MAX_BACKENDS; i++) devs[ndev++] = em_device_get(i);
    }
    bench_report rep;
    bench_report_init(&rep);
    bench_machine_info(&rep);
    snprintf(rep.command, sizeof rep.command, "%s", command);
    rep.repeat = o.repeat;
    rep.budget_s = o.budget;
    for (int i = 0; i < ndev; i++) bench_add_backend(&rep, devs[i]);
    double t_start = bench_now();
    int rc = 0;

    char cases_path[] = "/tmp/ember-bench-cases-XXXXXX";
    FILE *cases = NULL;
    if (o.pytorch) {
        int fd = mkstemp(cases_path);
        cases = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!cases) {
            fprintf(stderr, "ember-bench: --pytorch: cannot create a temporary file: %s\n", strerror(errno));
            if (fd >= 0) close(fd);
            o.pytorch = false;
        } else {
            fprintf(cases, "{\"repeat\": %d, \"budget_s\": %.6g, \"suites\": [%s%s%s], \"cases\": [",
                    o.repeat, o.budget, o.suite_ops ? "\"ops\"" : "",
                    o.suite_ops && o.suite_train ? ", " : "", o.suite_train ? "\"train\"" : "");
        }
    }
    if (o.suite_ops) {
        plan_item *plan = NULL;
        int n = build_plan(&o, &plan);
        if (n < 0) return 2;
        /* the budget: train gets a fifth when both run; PyTorch shares the rest */
        double ops_budget = o.budget * (o.suite_train ? 0.8 : 1.0) * (o.pytorch ? 0.7 : 1.0);
        int units_left = n * ndev;
        bench_rng rng = {o.seed};
        /* seconds per unit of work (FLOP or byte) last measured, per device and op */
        double *spw = calloc((size_t)BENCH_MAX_BACKENDS * (size_t)bench_op_count, sizeof *spw);
        if (!spw) {
            fprintf(stderr, "ember-bench: out of memory\n");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            plan_item *it = &plan[k];
            bench_case c;
            char why[256];
            progress("[%d/%d] %s %s %s: inputs and float64 reference", k + 1, n, it->op->name,
                     bench_dtype_name(it->dtype), it->size);
            if (!bench_case_init(&c, it->op, it->dtype, it->p, it->size, &rng, true, why, sizeof why)) {
                fprintf(stderr, "ember-bench: %s\n", why);
                rc = 1;
                continue;
            }
            if (cases) {
                fputs(k ? ",\n  " : "\n  ", cases);
                write_case_json(cases, &c);
            }
            for (int d = 0; d < ndev; d++) {
                double used = bench_now() - t_start;
                double left = ops_budget - used;
                double share = left > 0 ? left / units_left : 0.002;
                if (share < 0.002) share = 0.002;
                units_left--;
                progress("[%d/%d] %s %s %s on %s", k + 1, n, it->op->name, bench_dtype_name(it->dtype),
                         it->size, em_device_name(devs[d]));
                bench_row *w = bench_report_add(&rep);
                if (!w) {
                    fprintf(stderr, "ember-bench: out of memory adding a row\n");
                    rc = 1;
                    break;
                }
                /* predicted from the previous size of this op on this device */
                int oi = (int)(it->op - bench_ops);
                double work = it->op->metric == BENCH_FLOPS ? c.flops : c.bytes;
                double predicted = spw[d * bench_op_count + oi] * work;
                if (predicted > 3 * share && predicted > 0.5) {
                    fill_row_head(w, &c, devs[d]);
                    w->status = BS_SKIPPED;
                    snprintf(w->note, sizeof w->note, "predicted %.1f s per call: over the budget "
                             "(--budget)", predicted);
                    continue;
                }
                measure(&c, devs[d], w, o.repeat, share);
                /* only a call long enough to be throughput-bound predicts a bigger one */
                if (w->status == BS_OK && work > 0 && w->t.median > 0.005)
                    spw[d * bench_op_count + oi] = w->t.median / work;
            }
            bench_case_free(&c);
        }
        free(plan);
        free(spw);
        progress("%s", "");
    }
    /* train: the same step count on every backend (so final losses compare), scaled
     * down to the budget's share from a probe of one step per backend and batch */
    int train_warmup = 5, train_steps = o.train_steps, train_repeat = o.repeat;
    if (o.suite_train) {
        static const int batches[2] = {32, 256};
        double t_train0 = bench_now();
        double train_budget = o.budget * (o.suite_ops ? 0.2 : 1.0) * (o.pytorch ? 0.7 : 1.0);
        double per_round = 0; /* seconds of one step on every (device, batch) */
        for (int d = 0; d < ndev; d++)
            for (int b = 0; b < 2; b++) {
                progress("train: probing batch %d on %s", batches[b], em_device_name(devs[d]));
                bench_train_row probe = {0};
                if (bench_train_mlp(devs[d], batches[b], 1, 2, 2, &probe)) per_round += probe.t.median;
            }
        double left = train_budget - (bench_now() - t_train0);
        int afford = per_round > 0 ? (int)(left / per_round) : train_warmup + train_steps;
        if (afford < train_warmup + train_steps) {
            train_warmup = afford / 10 < 1 ? 1 : afford / 10 > 5 ? 5 : afford / 10;
            train_steps = afford - train_warmup < 2 ? 2 : afford - train_warmup;
            if (train_repeat > train_steps) train_repeat = train_steps;
            fprintf(stderr, "ember-bench: train: %d warm-up + %d timed steps per backend and batch "
                            "(not --train-steps %d) to fit --budget %g s\n",
                    train_warmup, train_steps, o.train_steps, o.budget);
        }
        for (int d = 0; d < ndev; d++)
            for (int b = 0; b < 2; b++) {
                progress("train: MLP batch %d on %s", batches[b], em_device_name(devs[d]));
                bench_train_row *t = bench_report_add_train(&rep);
                if (t && !bench_train_mlp(devs[d], batches[b], train_warmup, train_steps, train_repeat, t))
                    g_errors++;
                else if (t && train_steps < o.train_steps)
                    snprintf(t->note, sizeof t->note, "steps scaled to the budget");
            }
        progress("%s", "");
    }
    if (cases) {
        fprintf(cases, "\n], \"train\": {\"batches\": [32, 256], \"warmup\": %d, \"steps\": %d, \"repeat\": %d}}\n",
                train_warmup, train_steps, train_repeat);
        if (fclose(cases) != 0) {
            fprintf(stderr, "ember-bench: --pytorch: error writing %s\n", cases_path);
        } else {
            run_pytorch(&rep, cases_path, &o);
        }
        unlink(cases_path);
    }
    rep.elapsed_s = bench_now() - t_start;
    if (!o.quiet) bench_write_table(stdout, &rep);
    int npass = 0, nfail = 0, nunsup = 0, nerr = 0;
    for (int i = 0; i < rep.n_rows; i++) {
        const bench_row *w = &rep.rows[i];
        if (w->status == BS_OK) w->err.pass ? npass++ : nfail++;
        else if (w->status == BS_UNSUPPORTED) nunsup++;
        else if (w->status == BS_ERROR) nerr++;
    }
    if (!o.quiet)
        printf("\n%d rows: %d within tolerance, %d outside tolerance, %d unsupported, %d errors; %.1f s\n",
               rep.n_rows, npass, nfail, nunsup, nerr, rep.elapsed_s);
    if (o.csv && bench_write_csv(o.csv, &rep) != 0) rc = 2;
    if (o.json && bench_write_json(o.json, &rep) != 0) rc = 2;
    if (o.markdown && bench_write_markdown(o.markdown, &rep) != 0) rc = 2;
    if (o.svg && bench_write_svg(o.svg, &rep) != 0) rc = 2;
    bench_report_free(&rep);
    em_shutdown();
    if (rc == 0 && g_errors) rc = 1;
    return rc;
}
