/*
 * bench.h — the internal interface of Ember's benchmark and conformance
 * harness (ember-bench, ember-conformance and their unit tests).
 *
 * Pieces, one file each:
 *   bench_num.c      splitmix64 inputs, rounding to every dtype, ulps, host
 *                    buffers of a dtype (independent of the library)
 *   bench_stats.c    median/quantiles/spread of timings; error metrics
 *                    (max abs, max rel, normalised MSE) and the tolerance rule
 *   bench_ops.c      the op table: geometry per size class, FLOP and byte
 *                    counts, the float64 reference, the call into Ember
 *   bench_json.c     a small JSON reader (reports, the PyTorch peer's output)
 *                    and string escaping for the writers
 *   bench_report.c   the report: terminal table, CSV, JSON, Markdown
 *   bench_svg.c      the SVG charts (throughput and error per op, log scale)
 *   bench_compare.c  --compare old.json new.json
 *   bench_machine.c  machine, backends and precision settings for the report
 *   bench_train.c    the `train` suite (MLP training steps per second)
 *
 * Not public API: nothing here is installed; the library never includes it.
 */
#ifndef EMBER_BENCH_H
#define EMBER_BENCH_H

#include <ember.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_MAX_IN 4
#define BENCH_MAX_BACKENDS 8

/* ------------------------------------------------------------------------ */
/* Numbers (bench_num.c)                                                     */
/* ------------------------------------------------------------------------ */

/* splitmix64: the harness's own input generator (never the library's). */
typedef struct bench_rng {
    uint64_t state;
} bench_rng;
uint64_t bench_rng_u64(bench_rng *r);
double bench_rng_u01(bench_rng *r);                      /* [0, 1)     */
double bench_rng_uniform(bench_rng *r, double lo, double hi);
int64_t bench_rng_int(bench_rng *r, int64_t lo, int64_t hi); /* [lo, hi] */

/* x rounded to dtype d: f32/f16/bf16 round to nearest even (subnormals,
 * overflow to inf), integers truncate toward zero (NaN -> 0), bool is != 0. */
double bench_round(double x, em_dtype d);
/* One unit in the last place of dtype d at x (0 for integer dtypes). */
double bench_ulp(double x, em_dtype d);
/* Machine epsilon of a float dtype (2^-23 for f32); 0 for integers. */
double bench_eps(em_dtype d);
bool bench_is_float(em_dtype d);
/* "f32" ... "bool"; em_dtype from such a name (false when unknown). */
const char *bench_dtype_name(em_dtype d);
bool bench_dtype_parse(const char *s, em_dtype *d);
/* Packs n doubles (representable in d) into a malloc'ed buffer of dtype d. */
void *bench_pack(const double *v, int64_t n, em_dtype d);
/* Value of element i of a buffer of dtype d. */
double bench_unpack(const void *buf, int64_t i, em_dtype d);

/* ------------------------------------------------------------------------ */
/* Statistics and error metrics (bench_stats.c)                              */
/* ------------------------------------------------------------------------ */

typedef struct bench_timing {
    double median, p10, p90; /* seconds per call                       */
    double spread;           /* (p90 - p10) / median                    */
    int repeats;             /* samples                                 */
} bench_timing;

/* Linear-interpolated quantile p in [0,1] of sorted[0..n). */
double bench_quantile(const double *sorted, int n, double p);
/* Sorts samples in place and summarises them (n >= 1). */
bench_timing bench_timing_of(double *samples, int n);

/* An element passes when |got - ref| <= atol + rtol * max(|ref|, scale) +
 * ulps * ulp(ref in the result dtype); NaN must meet NaN, inf the same inf. */
typedef struct bench_tol {
    double atol, rtol, ulps;
} bench_tol;

typedef struct bench_err {
    double max_abs;   /* max |got - ref| over finite pairs                 */
    double max_rel;   /* max |got - ref| / |ref| over finite ref != 0      */
    double nmse;      /* sum (got-ref)^2 / sum ref^2 (finite pairs)        */
    int64_t bad;      /* index of the first element out of tolerance, -1   */
    int64_t n_bad;    /* elements out of tolerance                         */
    int64_t nonfinite_mismatch; /* NaN/inf where the reference differs     */
    bool pass;
} bench_err;

bool bench_close(double got, double ref, double scale, em_dtype d, bench_tol tol);
/* Compares got[0..n) with ref (scale optional) for result dtype d. */
bench_err bench_compare_values(const double *got, const double *ref, const double *scale,
                               int64_t n, em_dtype d, bench_tol tol);

/* ------------------------------------------------------------------------ */
/* The op table (bench_ops.c)                                                */
/* ------------------------------------------------------------------------ */

typedef enum bench_metric { BENCH_BYTES = 0, BENCH_FLOPS = 1 } bench_metric;

/* One tensor of a case as logical values (row-major), already rounded to
 * its dtype, so the reference and the upload see the same numbers. */
typedef struct bench_arg {
    em_dtype dtype;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    int64_t numel;
    double *v;
} bench_arg;

struct bench_op;

/* One (op, dtype, geometry): inputs, the reference output and its scale. */
typedef struct bench_case {
    const struct bench_op *op;
    em_dtype dtype;          /* the case's dtype (of the first input)   */
    char size[16];           /* "S", "M", "L" or "RxC"                  */
    int64_t p[3];            /* geometry: rows, cols (or M, K, N)        */
    int n_in;
    bench_arg in[BENCH_MAX_IN];
    bench_arg out;           /* reference, rounded to out.dtype          */
    double *scale;           /* per output element, or NULL              */
    double flops, bytes;     /* per call                                 */
    char shape[64];          /* "[512,512]" or "256x256x256"             */
    bench_tol tol;
    int64_t row_stride;      /* matmul-like: only rows i % row_stride == 0
                                have a reference (1 = all; large cases) */
} bench_case;

/* Geometries: how an op's inputs and output follow from (p0, p1, p2). */
typedef enum bench_geom {
    BG_EW,       /* n_in inputs [R,C] -> [R,C]                           */
    BG_ROW,      /* [R,C] reduced over dim 1 -> [R]                      */
    BG_MATMUL,   /* [M,K] x [K,N] -> [M,N]                               */
    BG_LINEAR,   /* x [M,K], w [N,K], b [N] -> [M,N]                     */
    BG_ADDMM,    /* c [N], a [M,K], b [K,N] -> [M,N]                     */
    BG_ISEL,     /* t [R,C], index [R] (i64 in [0,R)) -> [R,C] (dim 0)   */
    BG_GATHER,   /* t [R,C], index [R,C] in [0,R) -> [R,C] (dim 0)       */
    BG_SCATTER,  /* t [R,C], index [R,C] in [0,R), src [R,C] -> [R,C]    */
    BG_WHERE,    /* cond bool [R,C], a [R,C], b [R,C] -> [R,C]           */
    BG_MASKED,   /* t [R,C], mask bool [R,C] -> [R,C]                    */
    BG_CAT,      /* two [R,C] -> [2R,C] (dim 0)                          */
    BG_TRANSPOSE /* [R,C] read transposed -> contiguous [C,R]            */
} bench_geom;

/* Tolerance classes (bench_tolerance turns them into numbers). */
typedef enum bench_tolclass {
    BT_EXACT,    /* integers, copies, selections: bit-exact              */
    BT_ROUND,    /* one correctly rounded operation: 1 ulp               */
    BT_ARITH,    /* division, sqrt, reciprocal: 2 ulps (1 for f16/bf16)  */
    BT_TRANS,    /* transcendental functions                             */
    BT_SUM,      /* accumulations: relative to sum |x| (the scale)       */
    BT_STAT,     /* var/std/logsumexp/softmax                            */
    BT_MATMUL    /* dot products: relative to sum_k |a_ik b_kj|          */
} bench_tolclass;

typedef struct bench_op {
    const char *name;
    const char *family;       /* "binary", "unary", "reduce", ...           */
    bench_geom geom;
    int n_in;                 /* float inputs + index/mask inputs          */
    double lo, hi;            /* domain of the float inputs                */
    unsigned dtypes;          /* mask of (1u << em_dtype) the op accepts   */
    bench_tolclass tol;
    bench_metric metric;      /* GFLOP/s or GB/s in tables and charts      */
    double flops_per;         /* FLOPs per output element (EW, gathers) or
                                 per input element (BG_ROW); matmul: 2MNK  */
    const char *flop_note;    /* the FLOP count in words, for docs/--list  */
    int out_kind;             /* 0 same dtype, 1 bool, 2 i64, 3 "cast"     */
    bool scale_abs;           /* scale = the op applied to |inputs|        */
    bool differentiable;      /* the gradient table uses it                */
    int id;                   /* internal: selects reference and call      */
} bench_op;

extern const bench_op bench_ops[];
extern const int bench_op_count;

const bench_op *bench_op_find(const char *name);
/* The output dtype of op for input dtype d. */
em_dtype bench_op_out_dtype(const bench_op *op, em_dtype d);
/* True when op accepts dtype d. */
bool bench_op_accepts(const bench_op *op, em_dtype d);
/* Size class "S"/"M"/"L"/"XL" -> geometry parameters (false if unknown). */
bool bench_size_params(const bench_op *op, const char *size, int64_t p[3]);

/* Builds a case: shapes, FLOP/byte counts, tolerance; inputs drawn from rng
 * (rounded to their dtype); reference computed in double and rounded to the
 * output dtype. Returns false with *why set on failure (out of memory).
 * with_ref false skips the reference (the caller computes it later). */
bool bench_case_init(bench_case *c, const bench_op *op, em_dtype d, const int64_t p[3],
                     const char *size, bench_rng *rng, bool with_ref, char *why, size_t cap);
/* Computes c->out.v and c->scale from the current inputs: the exact double
 * result (round false) or rounded to the output dtype (round true). */
void bench_case_reference(bench_case *c, bool round);
void bench_case_free(bench_case *c);
/* FLOP and byte counts of a case (also set by bench_case_init). */
double bench_case_flops(const bench_case *c);
double bench_case_bytes(const bench_case *c);
/* The tolerance of an op class for a result dtype (the test suites' numbers). */
bench_tol bench_tolerance(bench_tolclass cls, em_dtype d);

/* Compares a result (as doubles, out.numel of them) with the reference,
 * over the rows that have one (row_stride). */
bench_err bench_case_compare(const bench_case *c, const double *got);
/* True when input i holds indices (i64, converted to i32 for a device
 * without i64) or a bool mask. */
bool bench_case_is_index(const bench_case *c, int i);
/* Uploads input i of a case to dev (contiguous) in dtype d (the input's own
 * dtype, or i32 for an index input); NULL on error. */
em_tensor *bench_case_upload(const bench_case *c, int i, em_device *dev, em_dtype d);
/* Reads a result to doubles through its own dtype (no cast op runs on the
 * device). Returns EM_OK or the status of em_tensor_read. */
em_status bench_read_result(const em_tensor *t, double *out, int64_t n);
/* Runs the op on tensors whose values are the case's inputs. */
em_tensor *bench_case_run(const bench_case *c, em_tensor *const *in);

/* ------------------------------------------------------------------------ */
/* Reports (bench_report.c, bench_svg.c, bench_json.c, bench_compare.c)       */
/* ------------------------------------------------------------------------ */

typedef enum bench_status {
    BS_OK = 0,          /* measured                                       */
    BS_UNSUPPORTED,     /* the device cannot run this op/dtype            */
    BS_ERROR,           /* Ember returned an error                         */
    BS_SKIPPED          /* not measured (budget)                           */
} bench_status;

typedef struct bench_row {
    char op[32], dtype[8], size[16], shape[64];
    char backend[64];         /* "cpu:0", "vulkan:0", "pytorch"          */
    bench_status status;
    bool fallback;            /* ran (partly) through the CPU fallback  */
    char note[160];           /* error message or remark                */
    bench_timing t;
    int inner;                /* calls per timed sample                 */
    double flops, bytes;
    int metric;               /* bench_metric                            */
    bench_err err;
    bench_tol tol;
} bench_row;

typedef struct bench_train_row {
    char backend[64];
    int batch;
    int steps;                /* total steps (warm-up included)          */
    bench_timing t;           /* seconds per step                        */
    double final_loss;
    char note[160];
    bool ok;
} bench_train_row;

typedef struct bench_backend_info {
    char device[64];          /* "cpu:0"                                 */
    char backend[32];         /* plugin name                             */
    char version[32];
    char name[128];           /* device name                             */
    char type[24];
    char description[256];
    char path[512];
} bench_backend_info;

typedef struct bench_report {
    char created[32];         /* ISO 8601 UTC                            */
    char cpu_model[128];
    int cores;
    char os[256];
    double loadavg;           /* 1-minute load average at start          */
    char ember_version[32];
    char plugin_abi[16];
    char precision[512];      /* settings that change results, "k=v; ..." */
    char command[512];
    int n_backends;
    bench_backend_info backends[BENCH_MAX_BACKENDS];
    char torch_version[64];   /* "" when PyTorch did not run             */
    char torch_settings[256];
    int repeat;
    double budget_s;
    double elapsed_s;
    bench_row *rows;
    int n_rows, cap_rows;
    bench_train_row *train;
    int n_train, cap_train;
} bench_report;

void bench_report_init(bench_report *r);
void bench_report_free(bench_report *r);
bench_row *bench_report_add(bench_report *r);   /* zeroed; NULL on OOM   */
bench_train_row *bench_report_add_train(bench_report *r);
/* The row of backend for the same (op, dtype, size), or NULL. */
const bench_row *bench_report_find(const bench_report *r, const char *op, const char *dtype,
                                   const char *size, const char *backend);
/* Throughput of a row in its metric's unit (GFLOP/s or GB/s), 0 if none. */
double bench_row_rate(const bench_row *row);
const char *bench_status_name(bench_status s);
/* The backends of r's rows in the order they first appear (pytorch last), at
 * most cap of them, into names (pointers into the rows); returns the count. */
int bench_report_backends(const bench_report *r, const char **names, int cap);

/* Writers: 0 on success, -1 with errno-style message printed on failure. */
void bench_write_table(FILE *f, const bench_report *r);
int bench_write_csv(const char *path, const bench_report *r);
int bench_write_json(const char *path, const bench_report *r);
int bench_write_markdown(const char *path, const bench_report *r);
/* Writes prefix-throughput.svg and prefix-error.svg ("x.svg" -> "x-..."). */
int bench_write_svg(const char *prefix, const bench_report *r);
/* One chart to a stream (kind 0 throughput, 1 error). */
void bench_svg_chart(FILE *f, const bench_report *r, int kind);

/* Reads a report written by bench_write_json (or the PyTorch peer's JSON,
 * whose rows carry backend "pytorch"). Returns 0, or -1 with why set. */
int bench_read_json(const char *path, bench_report *r, char *why, size_t cap);

/* Prints the per-op comparison of two reports; returns the number of
 * regressions (new slower than old beyond both runs' measured spread). */
int bench_compare_reports(FILE *f, const bench_report *old_r, const bench_report *new_r,
                          double threshold);

/* ------------------------------------------------------------------------ */
/* JSON (bench_json.c)                                                       */
/* ------------------------------------------------------------------------ */

typedef enum bench_jtype { BJ_NULL, BJ_BOOL, BJ_NUM, BJ_STR, BJ_ARR, BJ_OBJ } bench_jtype;

typedef struct bench_json {
    bench_jtype type;
    double num;               /* BJ_NUM, BJ_BOOL (0/1)                   */
    char *str;                /* BJ_STR                                  */
    int n;                    /* BJ_ARR/BJ_OBJ: items                    */
    struct bench_json *items; /* BJ_ARR/BJ_OBJ                           */
    char **keys;              /* BJ_OBJ                                  */
} bench_json;

/* Parses text (NUL-terminated). NULL with why set ("line 3: expected ','"). */
bench_json *bench_json_parse(const char *text, char *why, size_t cap);
void bench_json_free(bench_json *j);
const bench_json *bench_json_get(const bench_json *obj, const char *key);
double bench_json_num(const bench_json *obj, const char *key, double dflt);
const char *bench_json_str(const bench_json *obj, const char *key, const char *dflt);
/* Writes s as a JSON string literal (quotes included). */
void bench_json_write_str(FILE *f, const char *s);
/* Writes a double as JSON (non-finite values as null). */
void bench_json_write_num(FILE *f, double x);
/* Reads a whole file into a malloc'ed NUL-terminated buffer (NULL on error). */
char *bench_read_file(const char *path, size_t *len);

/* ------------------------------------------------------------------------ */
/* Machine and training (bench_machine.c, bench_train.c)                     */
/* ------------------------------------------------------------------------ */

/* Fills the machine, library and precision fields of r. */
void bench_machine_info(bench_report *r);
/* Adds a device to r->backends (once). */
void bench_add_backend(bench_report *r, em_device *dev);
/* Seconds from a monotonic clock. */
double bench_now(void);

/* The MLP 784-256-128-10 with deterministic weights and data (the same
 * formulas as bench/pytorch_ops.py), trained `steps` SGD steps on dev.
 * Fills row (timing over the steps after `warmup`, final loss). */
bool bench_train_mlp(em_device *dev, int batch, int warmup, int steps, int repeats,
                     bench_train_row *row);

#endif /* EMBER_BENCH_H */
