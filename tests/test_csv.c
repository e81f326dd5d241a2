/*
 * test_csv.c — em_csv_read (ember_data.h): the real data sets in
 * ../shared/data (iris, wine, breast_cancer with their sklearn header
 * lines, digits.csv.gz through gzip) with row/column counts, class counts
 * and values spot-checked against lines copied from the files; options
 * (header modes, label column, no label, f64 features, float labels,
 * delimiters, CRLF, blank lines, BOM, blanks around fields, a gzip file made
 * here); and every error with its line and column (malformed number, empty
 * field, ragged row, fractional label, empty file, header only, missing
 * file, corrupt gzip, label column out of range, NULL arguments), on files
 * written to a temporary folder. The malformed-file cases always run; the
 * program exits 77 (skipped) afterwards when the data folder is missing.
 * Not for the DataLoader (test_data_loader.c).
 */
#include "test_util.h"

#include "ember_data.h"

#include <errno.h>
#include <sys/stat.h>

#ifndef EMBER_SHARED_DATA_DIR
#define EMBER_SHARED_DATA_DIR "../shared/data"
#endif

static char tmp_dir[256];

/* Writes `len` bytes to tmp_dir/name (len < 0: strlen); returns the path
 * (static buffer rotated over 4 calls). */
static const char *write_tmp(const char *name, const char *data, long len)
{
    static char paths[4][512];
    static int k;
    char *p = paths[k++ % 4];
    snprintf(p, 512, "%s/%s", tmp_dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        tu_report_fail(__FILE__, __LINE__, "cannot write %s", p);
        return p;
    }
    fwrite(data, 1, len < 0 ? strlen(data) : (size_t)len, f);
    fclose(f);
    return p;
}

static void release2(em_tensor **x, em_tensor **y)
{
    em_tensor_release(*x);
    em_tensor_release(*y);
    *x = *y = NULL;
}

/* Reads path and checks the shapes, dtypes and (when given) all values. */
static void expect_ok(const char *label, const char *path, const em_csv_options *o, int64_t rows,
                      int64_t cols, const double *fvals, em_dtype fdt, const double *lvals,
                      em_dtype ldt)
{
    em_tensor *x = NULL, *y = NULL;
    em_clear_error();
    em_status st = em_csv_read(path, o, &x, &y);
    CHECKF(st == EM_OK, "%s: em_csv_read returned %s: %s", label, em_status_str(st),
           em_last_error());
    if (st != EM_OK) {
        em_clear_error();
        return;
    }
    int64_t fs[] = {rows, cols}, ls[] = {rows};
    if (fvals) tu_compare_exact(label, x, fdt, 2, fs, fvals);
    else CHECK(tu_has_shape(x, 2, fs) && em_tensor_dtype(x) == fdt);
    bool no_label = o && o->label_column == EM_CSV_NO_LABEL;
    if (no_label) CHECK(y == NULL);
    else if (lvals) tu_compare_exact(label, y, ldt, 1, ls, lvals);
    else CHECK(tu_has_shape(y, 1, ls) && em_tensor_dtype(y) == ldt);
    release2(&x, &y);
}

/* Reads path expecting failure `want` with every needle in the message. */
static void expect_err(const char *label, const char *path, const em_csv_options *o,
                       em_status want, const char *needle1, const char *needle2)
{
    em_tensor *x = (em_tensor *)1, *y = (em_tensor *)1;
    em_clear_error();
    em_status st = em_csv_read(path, o, &x, &y);
    const char *msg = em_last_error();
    bool ok = st == want && em_last_status() == want && x == NULL && y == NULL &&
              (!needle1 || strstr(msg, needle1)) && (!needle2 || strstr(msg, needle2));
    CHECKF(ok, "%s: got %s \"%s\", want %s with \"%s\" and \"%s\"", label, em_status_str(st), msg,
           em_status_str(want), needle1 ? needle1 : "", needle2 ? needle2 : "");
    if (ok) printf("%s: %s\n", label, msg);
    if (st == EM_OK) release2(&x, &y);
    em_clear_error();
}

static void test_options(void)
{
    em_csv_options d = em_csv_options_default();
    CHECK(d.header == EM_CSV_HEADER_AUTO && d.delimiter == ',' && d.label_column == -1 &&
          d.feature_dtype == EM_F32 && d.label_dtype == EM_I64 && d.device == NULL);

    const char *plain = write_tmp("plain.csv", "1,2,3\n4.5,-5e-1,1\n", -1);
    expect_ok("plain (auto header: none)", plain, NULL, 2, 2, (double[]){1, 2, 4.5, -0.5}, EM_F32,
              (double[]){3, 1}, EM_I64);
    em_csv_options o = d;
    o.header = EM_CSV_HEADER_SKIP;
    expect_ok("header skip", plain, &o, 1, 2, (double[]){4.5, -0.5}, EM_F32, (double[]){1},
              EM_I64);
    o = d;
    o.label_column = 0;
    expect_err("label column 0 (4.5 is no class)", plain, &o, EM_ERR_IO, "plain.csv:2:1:",
               "label '4.5' is not a whole number");
    o.label_dtype = EM_F64;
    expect_ok("label column 0, f64 labels", plain, &o, 2, 2, (double[]){2, 3, -0.5, 1}, EM_F32,
              (double[]){1, 4.5}, EM_F64);
    o = d;
    o.label_column = 1;
    o.feature_dtype = EM_F64;
    o.label_dtype = EM_F32;
    expect_ok("label column 1, f64 features, f32 labels", plain, &o, 2, 2,
              (double[]){1, 3, 4.5, 1}, EM_F64, (double[]){2, -0.5}, EM_F32);
    o = d;
    o.label_column = EM_CSV_NO_LABEL;
    expect_ok("no label", plain, &o, 2, 3, (double[]){1, 2, 3, 4.5, -0.5, 1}, EM_F32, NULL,
              EM_I64);
    {
        em_tensor *x = NULL;
        CHECK_OK(em_csv_read(plain, &o, &x, NULL));
        CHECK(x && em_tensor_dim(x, 1) == 3);
        em_tensor_release(x);
    }
    o = d;
    o.label_column = -2;
    o.label_dtype = EM_I32;
    expect_ok("label column -2, i32 labels", write_tmp("ints.csv", "1,2,3\n4,-5,6\n", -1), &o, 2,
              2, (double[]){1, 3, 4, 6}, EM_F32, (double[]){2, -5}, EM_I32);

    const char *messy = write_tmp("messy.csv",
                                  "\xEF\xBB\xBFid;x;label\r\n\r\n 1 ; 2.5\t;0\r\n\n  \n3;4;2\r\n"
                                  "5;nan;1",
                                  -1);
    o = d;
    o.delimiter = ';';
    em_tensor *x, *y;
    CHECK_OK(em_csv_read(messy, &o, &x, &y));
    if (x && y) {
        double *v = tu_read(x), *l = tu_read(y);
        CHECKF(em_tensor_dim(x, 0) == 3 && em_tensor_dim(x, 1) == 2 && v && v[0] == 1 &&
                   v[1] == 2.5 && v[2] == 3 && v[3] == 4 && v[4] == 5 && isnan(v[5]) && l &&
                   l[0] == 0 && l[1] == 2 && l[2] == 1,
               "BOM, header, CRLF, blank lines, blanks around fields, nan, no final newline");
        free(v);
        free(l);
    }
    release2(&x, &y);
    const char *tabs = write_tmp("tabs.tsv", "0.25\t1\t7\n-1\t2\t8\n", -1);
    o = d;
    o.delimiter = '\t';
    expect_ok("tab-separated", tabs, &o, 2, 2, (double[]){0.25, 1, -1, 2}, EM_F32,
              (double[]){7, 8}, EM_I64);

    /* A gzip file made here (if gzip exists: em_csv_read needs it too). */
    const char *raw = write_tmp("small.csv", "1,2,0\n3,4,1\n5,6,2\n", -1);
    char cmd[1200], gz[600];
    snprintf(gz, sizeof gz, "%s/small.data", tmp_dir); /* no .gz suffix: the magic decides */
    snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s'", raw, gz);
    if (system(cmd) == 0) {
        expect_ok("gzip file without .gz suffix", gz, NULL, 3, 2, (double[]){1, 2, 3, 4, 5, 6},
                  EM_F32, (double[]){0, 1, 2}, EM_I64);
        /* Without gzip on PATH: a clear error, no hang, no crash. */
        const char *path = getenv("PATH");
        char *saved = path ? strdup(path) : NULL;
        setenv("PATH", "/nonexistent-ember-test", 1);
        expect_err("gzip not on PATH", gz, NULL, EM_ERR_IO, "small.data", "gzip");
        if (saved) setenv("PATH", saved, 1);
        else unsetenv("PATH");
        free(saved);
    } else
        printf("gzip not available: skipping the gzip round trip\n");

    /* Options errors. */
    o = d;
    o.feature_dtype = EM_I64;
    expect_err("feature dtype i64", plain, &o, EM_ERR_INVALID_ARG, "feature_dtype", NULL);
    o = d;
    o.label_dtype = EM_BOOL;
    expect_err("label dtype bool", plain, &o, EM_ERR_INVALID_ARG, "label_dtype", NULL);
    o = d;
    o.delimiter = '.';
    expect_err("delimiter '.'", plain, &o, EM_ERR_INVALID_ARG, "delimiter", NULL);
    o = d;
    o.header = (em_csv_header)9;
    expect_err("header mode 9", plain, &o, EM_ERR_INVALID_ARG, "header", NULL);
    o = d;
    o.label_column = 3;
    expect_err("label column 3 of 3", plain, &o, EM_ERR_INDEX, "label_column 3", NULL);
    o.label_column = -4;
    expect_err("label column -4 of 3", plain, &o, EM_ERR_INDEX, "label_column -4", NULL);
}

static void test_malformed(void)
{
    expect_err("malformed number",
               write_tmp("bad_number.csv", "1,2,0\n3,4,1\n5,1.2x,0\n", -1), NULL, EM_ERR_IO,
               "bad_number.csv:3:2:", "'1.2x' is not a number");
    expect_err("empty field", write_tmp("empty_field.csv", "1,2,0\n3,,1\n", -1), NULL, EM_ERR_IO,
               "empty_field.csv:2:2:", "empty field");
    expect_err("trailing comma", write_tmp("trailing.csv", "1,2,0\n3,4,1,\n", -1), NULL,
               EM_ERR_IO, "trailing.csv:2:", "4 columns, expected 3");
    expect_err("ragged row (short)", write_tmp("ragged.csv", "h,e,a,d\n1,2,0\n3,4,1\n5,6\n", -1),
               NULL, EM_ERR_IO, "ragged.csv:4:", "2 columns, expected 3 (as on line 2)");
    expect_err("fractional label", write_tmp("frac.csv", "1,2,0\n3,4,1.5\n", -1), NULL,
               EM_ERR_IO, "frac.csv:2:3:", "label '1.5' is not a whole number");
    expect_err("nan label", write_tmp("nanlabel.csv", "1,2,0\n3,4,nan\n", -1), NULL, EM_ERR_IO,
               "nanlabel.csv:2:3:", "not a whole number");
    expect_err("empty file", write_tmp("empty.csv", "", 0), NULL, EM_ERR_IO, "is empty", NULL);
    expect_err("blank file", write_tmp("blank.csv", "\n \n\r\n", -1), NULL, EM_ERR_IO,
               "is empty", NULL);
    expect_err("header only", write_tmp("header_only.csv", "150,4,setosa,versicolor\n", -1),
               NULL, EM_ERR_IO, "no data rows", NULL);
    expect_err("one column", write_tmp("one_col.csv", "1\n2\n", -1), NULL, EM_ERR_IO,
               "one_col.csv:1:", "no feature column");
    em_csv_options o = em_csv_options_default();
    o.header = EM_CSV_HEADER_NONE;
    expect_err("header none on a header", write_tmp("hdr.csv", "a,b,c\n1,2,0\n", -1), &o,
               EM_ERR_IO, "hdr.csv:1:1:", "'a' is not a number");
    char missing[512];
    snprintf(missing, sizeof missing, "%s/does_not_exist.csv", tmp_dir);
    expect_err("missing file", missing, NULL, EM_ERR_IO, "does_not_exist.csv",
               "No such file or directory");
    expect_err("a directory", tmp_dir, NULL, EM_ERR_IO, "cannot read", NULL);
    expect_err("corrupt gzip", write_tmp("corrupt.csv.gz", "\x1f\x8b\x08\x00garbage-not-deflate", 24),
               NULL, EM_ERR_IO, "corrupt.csv.gz", "gzip -dc");
    /* NULL arguments. */
    em_tensor *x = (em_tensor *)1, *y = (em_tensor *)1;
    CHECK_STATUS(em_csv_read(NULL, NULL, &x, &y), EM_ERR_NULL_ARG);
    CHECK(x == NULL && y == NULL);
    CHECK_STATUS(em_csv_read(missing, NULL, NULL, &y), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_csv_read(missing, NULL, &x, NULL), EM_ERR_NULL_ARG);
}

/* The result of reading a data set, checked against facts from the file. */
static void check_dataset(const char *file, int64_t rows, int64_t cols, int classes,
                          const int *class_counts, const double *first_row, int first_label,
                          const double *last_row, int last_label, double vmin, double vmax)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", EMBER_SHARED_DATA_DIR, file);
    em_tensor *x = NULL, *y = NULL;
    CHECK_OK(em_scope_begin());
    em_status st = em_csv_read(path, NULL, &x, &y);
    CHECKF(st == EM_OK, "%s: %s", file, em_last_error());
    if (st == EM_OK) {
        int64_t fs[] = {rows, cols}, ls[] = {rows};
        CHECKF(tu_has_shape(x, 2, fs) && em_tensor_dtype(x) == EM_F32,
               "%s: features f32 [%lld, %lld]", file, (long long)rows, (long long)cols);
        CHECKF(tu_has_shape(y, 1, ls) && em_tensor_dtype(y) == EM_I64, "%s: labels i64 [%lld]",
               file, (long long)rows);
        double *v = tu_read(x), *l = tu_read(y);
        if (v && l && tu_has_shape(x, 2, fs)) {
            int ok_first = 1, ok_last = 1, counts[16] = {0}, ok_labels = 1;
            for (int64_t c = 0; c < cols; c++) {
                ok_first &= v[c] == (double)(float)first_row[c];
                ok_last &= v[(rows - 1) * cols + c] == (double)(float)last_row[c];
            }
            ok_first &= l[0] == first_label;
            ok_last &= l[rows - 1] == last_label;
            double mn = INFINITY, mx = -INFINITY;
            for (int64_t i = 0; i < rows * cols; i++) {
                if (v[i] < mn) mn = v[i];
                if (v[i] > mx) mx = v[i];
            }
            for (int64_t i = 0; i < rows; i++) {
                if (l[i] < 0 || l[i] >= classes) ok_labels = 0;
                else counts[(int)l[i]]++;
            }
            for (int k = 0; k < classes && ok_labels; k++) ok_labels &= counts[k] == class_counts[k];
            CHECKF(ok_first, "%s: first row matches the file", file);
            CHECKF(ok_last, "%s: last row matches the file", file);
            CHECKF(ok_labels, "%s: %d classes with the file's counts", file, classes);
            CHECKF(mn == vmin && mx == vmax, "%s: values in [%g, %g], got [%g, %g]", file, vmin,
                   vmax, mn, mx);
            printf("%s: features f32 [%lld, %lld], labels i64 [%lld], %d classes, values %g..%g: "
                   "%s\n",
                   file, (long long)rows, (long long)cols, (long long)rows, classes, mn, mx,
                   ok_first && ok_last && ok_labels ? "ok" : "FAIL");
        }
        free(v);
        free(l);
    }
    CHECK_OK(em_scope_end()); /* the scope owns x and y */
    em_clear_error();
}

static void test_datasets(void)
{
    check_dataset("iris.csv", 150, 4, 3, (const int[]){50, 50, 50}, (double[]){5.1, 3.5, 1.4, 0.2},
                  0, (double[]){5.9, 3.0, 5.1, 1.8}, 2, (float)0.1, (float)7.9);
    check_dataset("wine_data.csv", 178, 13, 3, (const int[]){59, 71, 48},
                  (double[]){14.23, 1.71, 2.43, 15.6, 127, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92,
                             1065},
                  0,
                  (double[]){14.13, 4.1, 2.74, 24.5, 96, 2.05, 0.76, 0.56, 1.35, 9.2, 0.61, 1.6,
                             560},
                  2, (float)0.13, 1680);
    check_dataset("breast_cancer.csv", 569, 30, 2, (const int[]){212, 357},
                  (double[]){17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419,
                             0.07871, 1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373,
                             0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656,
                             0.7119, 0.2654, 0.4601, 0.1189},
                  0,
                  (double[]){7.76, 24.54, 47.92, 181, 0.05263, 0.04362, 0, 0, 0.1587, 0.05884,
                             0.3857, 1.428, 2.548, 19.15, 0.007189, 0.00466, 0, 0, 0.02676,
                             0.002783, 9.456, 30.37, 59.16, 268.6, 0.08996, 0.06444, 0, 0, 0.2871,
                             0.07039},
                  1, 0, 4254);
    check_dataset("digits.csv.gz", 1797, 64, 10,
                  (const int[]){178, 182, 177, 183, 181, 182, 181, 179, 174, 180},
                  (double[]){0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11,
                             8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1,
                             12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0},
                  0,
                  (double[]){0, 0, 10, 14, 8, 1, 0, 0, 0, 2, 16, 14, 6, 1, 0, 0, 0, 0, 15, 15, 8, 15,
                             0, 0, 0, 0, 5, 16, 16, 10, 0, 0, 0, 0, 12, 15, 15, 12, 0, 0, 0, 4, 16,
                             6, 4, 16, 6, 0, 0, 8, 16, 10, 8, 16, 8, 0, 0, 1, 8, 12, 14, 12, 1, 0},
                  8, 0, 16);
    /* The sklearn header is a header for AUTO and SKIP alike; NONE fails on it. */
    char path[600];
    snprintf(path, sizeof path, "%s/iris.csv", EMBER_SHARED_DATA_DIR);
    em_csv_options o = em_csv_options_default();
    o.header = EM_CSV_HEADER_SKIP;
    expect_ok("iris.csv, header skip", path, &o, 150, 4, NULL, EM_F32, NULL, EM_I64);
    o.header = EM_CSV_HEADER_NONE;
    expect_err("iris.csv, header none", path, &o, EM_ERR_IO, "iris.csv:1:3:", "'setosa'");
}

int main(void)
{
    tu_init("test_csv");
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/ember_csv_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        printf("cannot create a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    test_options();
    test_malformed();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmp_dir);

    struct stat sb;
    if (stat(EMBER_SHARED_DATA_DIR, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        printf("data folder %s is missing: data set checks skipped\n", EMBER_SHARED_DATA_DIR);
        int rc = tu_finish();
        return rc ? rc : 77;
    }
    test_datasets();
    return tu_finish();
}
