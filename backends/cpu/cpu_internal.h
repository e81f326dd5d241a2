/*
 * cpu_internal.h — declarations shared by the CPU backend's source files.
 *
 * Not installed, not API: the only thing the plugin exports is
 * em_plugin_init (cpu_plugin.c). Internal non-static functions are named
 * em__cpu_*; everything else is static.
 *
 * What lives where:
 *   cpu_plugin.c      backend table, device, buffers (with a block cache),
 *                     kernel registry, host services, errors
 *   cpu_threads.c     the one persistent thread pool
 *   cpu_iter.c        the elementwise iteration engine (dim collapsing,
 *                     contiguous fast path, parallel split, streaming stores)
 *   cpu_copy.c        fill, copy, cast
 *   cpu_binary.c      binary arithmetic, comparisons, where, clamp, masked_fill
 *   cpu_fused.c       fused ops: Adam step, cross-entropy rows and backward,
 *                     relu backward
 *   cpu_unary.c       unary elementwise ops
 *   cpu_reduce.c      sum .. logsumexp
 *   cpu_softmax.c     softmax, log_softmax
 *   cpu_math.h        vectorisable expf/tanhf/gelu, NaN-propagating max/min
 *   cpu_blas.c        OpenBLAS loading (core-type choice), matmul, linear
 *                     (+ relu: LINEAR_ACT)
 *   cpu_gemm_ref.c    the plain-C gemm used when OpenBLAS is missing
 *   cpu_index.c       cat, index_select, gather, scatter_add, one_hot
 *   cpu_random.c      arange, linspace, Philox rand/randn/randint
 *
 * Not for: anything the core does (shapes, broadcasting, promotion).
 */
#ifndef EMBER_CPU_INTERNAL_H
#define EMBER_CPU_INTERNAL_H

#include "ember_plugin.h"
#include "ember_plugin_util.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CPU_FORMAT(a, b) __attribute__((format(printf, a, b)))
#define CPU_LIKELY(x) __builtin_expect(!!(x), 1)
#define CPU_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Compute-bound loops get an AVX2+FMA clone chosen at load time (ifunc);
 * the default clone is plain x86-64 (SSE2). No -march anywhere. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(CPU_NO_CLONES)
#define CPU_MATH_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CPU_MATH_CLONES
#endif

/* ---------------- host services and errors (cpu_plugin.c) --------------- */

/* Records the detail of a failure through host->set_error; returns status. */
em_status em__cpu_fail(em_status status, const char *fmt, ...) CPU_FORMAT(2, 3);
/* host->log with the plugin's name; a no-op without a host. */
void em__cpu_log(int level, const char *fmt, ...) CPU_FORMAT(2, 3);
/* host->getenv (secure_getenv); NULL when absent. */
const char *em__cpu_getenv(const char *name);

/* 64-byte aligned scratch memory for kernels (large blocks come from the
 * device's block cache). NULL on failure, after em__cpu_fail(OOM). */
void *em__cpu_scratch_alloc(size_t bytes);
void em__cpu_scratch_free(void *p);

/* ---------------- dtypes ------------------------------------------------ */

static inline size_t cpu_dtype_size(int dt)
{
    static const unsigned char sizes[EM_DTYPE_COUNT] = {4, 8, 2, 2, 4, 8, 1};
    return (dt >= 0 && dt < EM_DTYPE_COUNT) ? sizes[dt] : 0;
}
static inline int cpu_dtype_is_float(int dt) { return dt >= EM_F32 && dt <= EM_BF16; }
static inline int cpu_dtype_valid(int dt) { return dt >= 0 && dt < EM_DTYPE_COUNT; }
const char *em__cpu_dtype_name(int dt);

/* Saturating float -> integer conversions: truncate toward zero, NaN -> 0,
 * out-of-range values clamp (C leaves those undefined). */
static inline int32_t cpu_sat_i32_d(double v)
{
    if (!(v == v)) return 0;
    if (v <= -2147483648.0) return INT32_MIN;
    if (v >= 2147483647.0) return INT32_MAX;
    return (int32_t)v;
}
static inline int64_t cpu_sat_i64_d(double v)
{
    if (!(v == v)) return 0;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)v;
}
static inline int32_t cpu_sat_i32_f(float v) { return cpu_sat_i32_d((double)v); }
static inline int64_t cpu_sat_i64_f(float v)
{
    if (!(v == v)) return 0;
    if (v <= -9223372036854775808.0f) return INT64_MIN;
    if (v >= 9223372036854775808.0f) return INT64_MAX;
    return (int64_t)v;
}
static inline int32_t cpu_wrap_i32(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }
static inline int64_t cpu_wrap_i64(int64_t v) { return v; }

/* Conversions from a compute value (float, double, int32_t, int64_t) to a
 * storage value of each dtype. */
#define cpu_to_f32(v) ((float)(v))
#define cpu_to_f64(v) ((double)(v))
#define cpu_to_f16(v) em_f32_to_f16((float)(v))
#define cpu_to_bf16(v) em_f32_to_bf16((float)(v))
#define cpu_to_i32(v)                                                                    \
    _Generic((v), float: cpu_sat_i32_f, double: cpu_sat_i32_d, default: cpu_wrap_i32)(v)
#define cpu_to_i64(v)                                                                    \
    _Generic((v), float: cpu_sat_i64_f, double: cpu_sat_i64_d, default: cpu_wrap_i64)(v)
#define cpu_to_bool(v) ((uint8_t)((v) != 0))

/* dtype traits, used by the kernel-generating macros:
 *   ST storage type, CT compute type (half types compute in f32, bool in
 *   int32), UT type for wrap-around arithmetic (unsigned for integers so that
 *   overflow is defined), LD(x) storage -> compute, SV(v) compute -> storage. */
#define DT_f32_ST float
#define DT_f32_CT float
#define DT_f32_UT float
#define DT_f32_LD(x) (x)
#define DT_f32_SV(v) cpu_to_f32(v)
#define DT_f32_ID EM_F32

#define DT_f64_ST double
#define DT_f64_CT double
#define DT_f64_UT double
#define DT_f64_LD(x) (x)
#define DT_f64_SV(v) cpu_to_f64(v)
#define DT_f64_ID EM_F64

#define DT_f16_ST uint16_t
#define DT_f16_CT float
#define DT_f16_UT float
#define DT_f16_LD(x) em_f16_to_f32(x)
#define DT_f16_SV(v) cpu_to_f16(v)
#define DT_f16_ID EM_F16

#define DT_bf16_ST uint16_t
#define DT_bf16_CT float
#define DT_bf16_UT float
#define DT_bf16_LD(x) em_bf16_to_f32(x)
#define DT_bf16_SV(v) cpu_to_bf16(v)
#define DT_bf16_ID EM_BF16

#define DT_i32_ST int32_t
#define DT_i32_CT int32_t
#define DT_i32_UT uint32_t
#define DT_i32_LD(x) (x)
#define DT_i32_SV(v) cpu_to_i32(v)
#define DT_i32_ID EM_I32

#define DT_i64_ST int64_t
#define DT_i64_CT int64_t
#define DT_i64_UT uint64_t
#define DT_i64_LD(x) (x)
#define DT_i64_SV(v) cpu_to_i64(v)
#define DT_i64_ID EM_I64

/* bool (token b8: `bool` is a macro from stdbool.h) */
#define DT_b8_ST uint8_t
#define DT_b8_CT int32_t
#define DT_b8_UT uint32_t
#define DT_b8_LD(x) ((int32_t)(x))
#define DT_b8_SV(v) cpu_to_bool(v)
#define DT_b8_ID EM_BOOL

/* X(dt) for each dtype, in em_dtype order (the tables below rely on it). */
#define CPU_FOR_ALL_DT(X) X(f32) X(f64) X(f16) X(bf16) X(i32) X(i64) X(b8)

/* Stores a scalar given as a double in dtype dt (same rules as CAST:
 * truncation toward zero, saturation, NaN -> 0, != 0 for bool). */
void em__cpu_store_scalar(int dt, double v, void *dst);

/* ---------------- descriptors ------------------------------------------- */

static inline char *cpu_ptr(const em_tdesc *d)
{
    return (char *)d->buffer + d->offset * (int64_t)cpu_dtype_size(d->dtype);
}
static inline int64_t cpu_numel(const em_tdesc *d)
{
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}
/* 1 when strides are those of a dense row-major tensor (size-1 dims free). */
static inline int cpu_strides_contig(int ndim, const int64_t *shape, const int64_t *strides)
{
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] != 1 && strides[i] != expect) return 0;
        expect *= shape[i];
    }
    return 1;
}
static inline int cpu_is_contig(const em_tdesc *d)
{
    return cpu_strides_contig(d->ndim, d->shape, d->strides);
}
/* Shapes equal (same ndim and sizes). */
static inline int cpu_same_shape(const em_tdesc *a, const em_tdesc *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* Checks the number of inputs/outputs a kernel got; fails with
 * EM_ERR_INVALID_ARG naming the op otherwise. */
em_status em__cpu_check_arity(const em_op_call *c, int min_in, int max_in, int n_out);
/* Fails unless d's shape equals shape[0..ndim). */
em_status em__cpu_check_shape(const char *what, const em_tdesc *d, int ndim,
                              const int64_t *shape);

/* ---------------- thread pool (cpu_threads.c) --------------------------- */

typedef void (*cpu_task_fn)(void *ctx, int64_t task);
typedef void (*cpu_range_fn)(void *ctx, int64_t begin, int64_t end);

/* Starts the pool with nthreads threads in total (the caller counts as
 * one). Returns EM_OK or EM_ERR_BACKEND after em__cpu_fail. */
em_status em__cpu_pool_start(int nthreads);
/* Stops and joins the workers; idempotent. */
void em__cpu_pool_stop(void);
/* Threads a parallel call may use (>= 1). */
int em__cpu_threads(void);
/* Runs fn(ctx, t) for every t in [0, ntasks), the calling thread included.
 * Runs serially when nested, when the pool is busy or has one thread. */
void em__cpu_parallel(int64_t ntasks, cpu_task_fn fn, void *ctx);
/* Splits [0, n) into at most em__cpu_threads() ranges of at least grain/2
 * elements (serial below grain), boundaries multiples of align. */
void em__cpu_parallel_range(int64_t n, int64_t grain, int64_t align, cpu_range_fn fn,
                            void *ctx);

/* Minimum elements before an op is split across threads, by cost class. */
#define CPU_GRAIN_CHEAP 32768   /* memory-bound: add, copy, cast, compare */
#define CPU_GRAIN_MATH 8192     /* transcendental: exp, tanh, pow, erf    */

/* ---------------- elementwise engine (cpu_iter.c) ----------------------- */

#define CPU_MAX_OPS 4

/* An inner loop: n elements; p[k] points at operand k's first element and
 * s[k] is its stride in BYTES (0 for broadcast). Operand 0 is the output. */
typedef void (*cpu_loop_fn)(char **p, const int64_t *s, int64_t n, const void *ctx);

typedef struct cpu_operand {
    char *ptr;              /* first element                                */
    const int64_t *strides; /* in elements, over the iteration shape; NULL:
                               a scalar (stride 0 in every dim)             */
    int64_t esize;          /* bytes per element                            */
} cpu_operand;

/* Runs fn over the shape (ndim dims) for nops operands (operand 0 writes):
 * collapses size-1 and mergeable dims, orders dims by operand 0's strides,
 * takes a single call for contiguous operands, and splits across the pool
 * when the element count reaches grain (grain <= 0: always serial). */
void em__cpu_ew_run(int nops, const cpu_operand *ops, int ndim, const int64_t *shape,
                    cpu_loop_fn fn, const void *ctx, int64_t grain);
/* The same for loops whose operand 0 is NOT a plain output written once
 * per element (an index that is only read, rows written by hand): never
 * routes operand 0 through the streaming-store buffer. */
void em__cpu_ew_run_ro(int nops, const cpu_operand *ops, int ndim, const int64_t *shape,
                       cpu_loop_fn fn, const void *ctx, int64_t grain);

/* Same-dtype copy of src into dst (same shape, any strides), as COPY. */
void em__cpu_copy_desc(const em_tdesc *dst, const em_tdesc *src);
/* Converting copy (any dtypes, same shape), as CAST. */
void em__cpu_cast_desc(const em_tdesc *dst, const em_tdesc *src);

/* ---------------- kernels ------------------------------------------------ */

em_status em__cpu_k_fill(void *dev, const em_op_call *c);
em_status em__cpu_k_copy(void *dev, const em_op_call *c);
em_status em__cpu_k_cast(void *dev, const em_op_call *c);
em_status em__cpu_k_binary(void *dev, const em_op_call *c);
em_status em__cpu_k_axpy(void *dev, const em_op_call *c);
/* cpu_fused.c: EM_OP_ADAM, one fused Adam/AdamW step (f32, f64). */
em_status em__cpu_k_adam(void *dev, const em_op_call *c);
/* cpu_fused.c: EM_OP_CROSS_ENTROPY and its backward (f32, f64 logits). */
em_status em__cpu_k_cross_entropy(void *dev, const em_op_call *c);
/* cpu_fused.c: EM_OP_RELU_BACKWARD (ABI 1.4), float dtypes. */
em_status em__cpu_k_relu_backward(void *dev, const em_op_call *c);
em_status em__cpu_k_compare(void *dev, const em_op_call *c);
em_status em__cpu_k_where(void *dev, const em_op_call *c);
em_status em__cpu_k_clamp(void *dev, const em_op_call *c);
em_status em__cpu_k_masked_fill(void *dev, const em_op_call *c);
em_status em__cpu_k_unary(void *dev, const em_op_call *c);
em_status em__cpu_k_reduce(void *dev, const em_op_call *c);
em_status em__cpu_k_softmax(void *dev, const em_op_call *c);
em_status em__cpu_k_matmul(void *dev, const em_op_call *c);
em_status em__cpu_k_linear(void *dev, const em_op_call *c);
em_status em__cpu_k_cat(void *dev, const em_op_call *c);
em_status em__cpu_k_index_select(void *dev, const em_op_call *c);
em_status em__cpu_k_gather(void *dev, const em_op_call *c);
em_status em__cpu_k_scatter_add(void *dev, const em_op_call *c);
em_status em__cpu_k_one_hot(void *dev, const em_op_call *c);
em_status em__cpu_k_arange(void *dev, const em_op_call *c);
em_status em__cpu_k_linspace(void *dev, const em_op_call *c);
em_status em__cpu_k_random(void *dev, const em_op_call *c);

/* ---------------- BLAS (cpu_blas.c, cpu_gemm_ref.c) --------------------- */

/* Chooses the OpenBLAS core type, loads it, sets it to one thread. Never
 * fails: without OpenBLAS the built-in gemm is used. */
void em__cpu_blas_init(void);
/* Unloads OpenBLAS (plugin shutdown). */
void em__cpu_blas_shutdown(void);
/* One line for the device description ("OpenBLAS 0.3.21 core ..."). */
const char *em__cpu_blas_description(void);

/* C[M,N] = alpha A[M,K] B[K,N] + beta C, element strides (row, col) for
 * each matrix; C rows must not overlap. Plain C, any strides. */
void em__cpu_gemm_ref_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars,
                          int64_t acs, const float *B, int64_t brs, int64_t bcs, float beta,
                          float *C, int64_t crs, int64_t ccs);
void em__cpu_gemm_ref_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t ars,
                          int64_t acs, const double *B, int64_t brs, int64_t bcs, double beta,
                          double *C, int64_t crs, int64_t ccs);

#endif /* EMBER_CPU_INTERNAL_H */
