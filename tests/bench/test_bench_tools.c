/*
 * test_bench_tools.c — the benchmark and conformance programs end to end:
 *   tiny     a tiny `ember-bench all` run on the CPU: its JSON report parses
 *            and holds the rows, machine and backend; its SVG charts are
 *            well-formed with the right labels; CSV and Markdown exist;
 *   compare  `ember-bench --compare` on the two stored reports in
 *            tests/bench/data/ flags the regression planted there (and only
 *            it), exits 1 with --fail-on-regression, 0 on a report against
 *            itself;
 *   faulty   `ember-conformance` on tests/bench/faulty_plugin.c catches the
 *            out-of-bounds FILL and the wrong ADD, passes NEG, reports the
 *            missing kernels as unsupported and exits 1; a backend that does
 *            not exist exits 77.
 * Usage: test_bench_tools tiny|compare|faulty (one CTest test each).
 */
#define _GNU_SOURCE
#include "bench.h"
#include "xml_check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

/* Runs cmd, captures stdout+stderr into *out; returns the exit status. */
static int run(const char *cmd, char **out)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    printf("$ %s\n", cmd);
    fflush(stdout);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
    }
    if (buf) buf[n] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_tiny(void)
{
    const char *pre = TEST_TMP_DIR "/tiny";
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "'%s' all --backend cpu --ops add,matmul,sum,exp --sizes S,32x48 --repeat 3 --budget 4 "
             "--train-steps 6 --json '%s.json' --csv '%s.csv' --markdown '%s.md' --svg '%s'",
             EMBER_BENCH_EXE, pre, pre, pre, pre);
    int rc = run(cmd, &out);
    CHECK(rc == 0, "ember-bench exited %d:\n%s", rc, out ? out : "");
    CHECK(out && strstr(out, "max_rel") && strstr(out, "matmul") && strstr(out, "steps/s"),
          "the table:\n%s", out ? out : "");
    free(out);
    bench_report r;
    bench_report_init(&r);
    char why[512] = "", path[1024];
    snprintf(path, sizeof path, "%s.json", pre);
    CHECK(bench_read_json(path, &r, why, sizeof why) == 0, "%s", why);
    CHECK(r.n_rows == 8, "4 ops x 2 sizes on cpu:0, got %d rows", r.n_rows);
    for (int i = 0; i < r.n_rows; i++) {
        const bench_row *w = &r.rows[i];
        CHECK(w->status == BS_OK && w->err.pass && !strcmp(w->backend, "cpu:0") && w->t.median > 0 &&
              w->t.repeats >= 1 && (w->flops > 0 || w->bytes > 0),
              "row %s %s %s: status %s pass %d median %g", w->op, w->dtype, w->size,
              bench_status_name(w->status), w->err.pass, w->t.median);
    }
    const bench_row *mm = bench_report_find(&r, "matmul", "f32", "32x48", "cpu:0");
    CHECK(mm && mm->flops == 2.0 * 32 * 48 * 48 && mm->metric == BENCH_FLOPS, "matmul 32x48x48 flops");
    CHECK(r.cpu_model[0] && r.cores >= 1 && r.ember_version[0] && r.precision[0], "machine fields");
    CHECK(r.n_backends == 1 && !strcmp(r.backends[0].device, "cpu:0") && r.backends[0].name[0],
          "backend info");
    CHECK(r.n_train == 2 && r.train[0].ok && r.train[1].ok && r.train[0].final_loss > 0 &&
          r.train[0].final_loss < 10, "train rows (%d), loss %g", r.n_train,
          r.n_train ? r.train[0].final_loss : 0);
    /* the same formulas on the same device: the loss after the same steps is reproducible */
    bench_report_free(&r);
    static const char *const svgs[2] = {"throughput", "error"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s-%s.svg", pre, svgs[k]);
        char *svg = bench_read_file(path, NULL);
        CHECK(svg != NULL, "missing %s", path);
        if (!svg) continue;
        int rects = 0;
        CHECK(xml_well_formed(svg, why, sizeof why, "rect", &rects), "%s: %s", path, why);
        CHECK(strstr(svg, "<svg") && strstr(svg, "cpu:0") && strstr(svg, "matmul f32 32x48"),
              "%s labels", path);
        if (k == 0) CHECK(rects >= 8 + 2, "%s: %d bars", path, rects);
        free(svg);
    }
    snprintf(path, sizeof path, "%s.csv", pre);
    char *csv = bench_read_file(path, NULL);
    int lines = 0;
    for (const char *p = csv; p && *p; p++) lines += *p == '\n';
    CHECK(csv && !strncmp(csv, "suite,op,dtype", 14) && lines == 1 + 8 + 2, "csv lines %d", lines);
    free(csv);
    snprintf(path, sizeof path, "%s.md", pre);
    char *md = bench_read_file(path, NULL);
    CHECK(md && strstr(md, "| matmul | f32 | 32x48 |") && strstr(md, "#### Precision"), "markdown");
    free(md);
}

static void test_compare(void)
{
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --compare '%s/old.json' '%s/new.json'", EMBER_BENCH_EXE,
             TEST_DATA_DIR, TEST_DATA_DIR);
    int rc = run(cmd, &out);
    CHECK(rc == 0, "exit %d without --fail-on-regression", rc);
    /* planted: add S on cpu:0 1.6x slower beyond the spread; matmul S 2x faster;
     * exp S 3% slower (noise); sum S passes in old and fails in new */
    const char *add = out ? strstr(out, "add ") : NULL, *mm = out ? strstr(out, "matmul ") : NULL;
    const char *ex = out ? strstr(out, "exp ") : NULL, *sm = out ? strstr(out, "sum ") : NULL;
    CHECK(add && strstr(add, "REGRESSION") && strchr(add, '\n') > strstr(add, "REGRESSION"),
          "add flagged:\n%s", out ? out : "");
    CHECK(mm && strstr(mm, "faster") && strchr(mm, '\n') > strstr(mm, "faster"), "matmul faster");
    CHECK(ex && strstr(ex, "same (within spread)") && strchr(ex, '\n') > strstr(ex, "same"), "exp noise");
    CHECK(sm && strstr(sm, "PRECISION REGRESSION"), "sum precision");
    CHECK(out && strstr(out, "2 regressions"), "summary:\n%s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' --compare '%s/old.json' '%s/new.json' --fail-on-regression",
             EMBER_BENCH_EXE, TEST_DATA_DIR, TEST_DATA_DIR);
    rc = run(cmd, &out);
    CHECK(rc == 1, "--fail-on-regression exit %d", rc);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' --compare '%s/old.json' '%s/old.json' --fail-on-regression",
             EMBER_BENCH_EXE, TEST_DATA_DIR, TEST_DATA_DIR);
    rc = run(cmd, &out);
    CHECK(rc == 0 && out && strstr(out, "0 regressions"), "self compare exit %d", rc);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' --compare '%s/old.json' '%s/missing.json'", EMBER_BENCH_EXE,
             TEST_DATA_DIR, TEST_DATA_DIR);
    rc = run(cmd, &out);
    CHECK(rc == 2 && out && strstr(out, "missing.json"), "a missing file is named (exit %d)", rc);
    free(out);
}

static void test_faulty(void)
{
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --backend '%s' --dtypes f32 --no-grad", EMBER_CONFORMANCE_EXE,
             FAULTY_PLUGIN);
    int rc = run(cmd, &out);
    printf("%s", out ? out : "");
    CHECK(rc == 1, "exit %d, want 1", rc);
    CHECK(out && strstr(out, "FAIL        fill_ ") && strstr(out, "wrote outside its view"),
          "the out-of-bounds FILL");
    CHECK(out && strstr(out, "FAIL        full ") &&
              strstr(out, "EMBER_GUARD: the fill kernel of backend 'faulty' wrote outside its output"),
          "the out-of-bounds FILL into a fresh (guarded) allocation");
    CHECK(out && strstr(out, "FAIL        add  "), "the wrong ADD");
    CHECK(out && strstr(out, "pass        neg  "), "NEG passes");
    CHECK(out && strstr(out, "pass        copy_  "), "COPY passes");
    CHECK(out && strstr(out, "unsupported exp  "), "no EXP kernel: unsupported");
    CHECK(out && strstr(out, "unsupported add_scalar "), "declined by supports(): unsupported");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' --backend no-such-backend", EMBER_CONFORMANCE_EXE);
    rc = run(cmd, &out);
    CHECK(rc == 77 && out && strstr(out, "no-such-backend"), "absent backend: exit %d", rc);
    free(out);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "tiny")) test_tiny();
    else if (!strcmp(what, "compare")) test_compare();
    else if (!strcmp(what, "faulty")) test_faulty();
    else {
        fprintf(stderr, "usage: test_bench_tools tiny|compare|faulty\n");
        return 2;
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
