/*
 * conformance.h — shared between the two files of ember-conformance: the
 * per-(op, dtype) tally every check feeds, the device under test, the input
 * layouts, and the gradient table's entry point (conformance_grad.c).
 * Not for the op table itself (bench.h / bench_ops.c).
 */
#ifndef EMBER_CONFORMANCE_H
#define EMBER_CONFORMANCE_H

#include "bench.h"

/* One (op, dtype) line of the report. */
typedef struct conf_tally {
    char op[40];
    em_dtype dtype;
    int checks, passed, failed, unsupported;
    double max_abs, max_rel;       /* over passing and failing checks   */
    bench_tol tol;
    char first_fail[400];          /* what, where, got/want, tolerance  */
    char unsupported_why[300];     /* the library's message             */
} conf_tally;

typedef struct conf_ctx {
    em_device *dev;
    uint32_t dtype_mask;
    bench_rng rng;
    bool verbose;
} conf_ctx;

/* Input layouts (as tests/test_util.h: contiguous, transposed storage
 * permuted back, every dim sliced with step 2 out of a sentinel-filled
 * buffer). */
enum { CL_CONTIG = 0, CL_TRANSPOSED = 1, CL_STRIDED = 2, CL_COUNT = 3 };
extern const char *const conf_layout_names[CL_COUNT];

/* A tensor on ctx->dev holding a's values (as dtype d) in a layout. */
em_tensor *conf_make(const conf_ctx *ctx, const bench_arg *a, em_dtype d, int layout);
/* Records one check's outcome in t (and prints it with -v). */
void conf_record(conf_tally *t, const conf_ctx *ctx, const char *label, const bench_err *e,
                 const bench_case *c, const double *got);
/* Records a failed op call: unsupported or failure, from em_last_status(). */
void conf_record_call_error(conf_tally *t, const conf_ctx *ctx, const char *label);
/* Records a failure with a message. */
void conf_record_fail(conf_tally *t, const conf_ctx *ctx, const char *label, const char *msg);

/* The gradient table: finite differences of the harness's float64
 * reference against em_autograd_grad on the device, for op in dtype d
 * (f32/f64). Fills t. */
void conf_grad_check(conf_ctx *ctx, const bench_op *op, em_dtype d, conf_tally *t);

/* linear_relu and relu's backward (ABI 1.4, conformance_grad.c): forward and
 * gradients in dtype d against exact references. Fills t. */
void conf_fused_check(conf_ctx *ctx, em_dtype d, conf_tally *t);

#endif /* EMBER_CONFORMANCE_H */
