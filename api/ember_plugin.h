/*
 * ember_plugin.h — the ABI between Ember's core and a backend plugin.
 *
 * A backend plugin is a shared object named libember-<name>.so that exports
 * one C function, em_plugin_init (EM_PLUGIN_ENTRY_NAME). The core dlopens it,
 * hands it a table of host services and receives the plugin's backend table.
 * A plugin need not link against libember: it only includes this header.
 *
 * Division of labour:
 *   - The core owns tensor metadata (shape, strides, offset, dtype), views,
 *     broadcasting, type promotion, autograd and memory lifetimes. It NEVER
 *     dereferences a plugin buffer: all data moves through the table.
 *   - A plugin owns devices, buffers and kernels. Buffers are opaque handles
 *     (void *) to the core.
 *
 * Op semantics seen by a kernel (the core has already done the rest):
 *   - Every input and output is described by an em_tdesc: buffer, element
 *     offset, dtype, shape and strides IN ELEMENTS. Strides may be any
 *     non-negative value, including 0 (broadcast) unless the kernel is
 *     registered with EM_KERNEL_CONTIGUOUS, in which case every input is
 *     dense row-major (strides are those of a contiguous tensor).
 *   - Broadcasting is done by the core: for elementwise ops every input
 *     descriptor already has the OUTPUT's shape (broadcast dims have stride 0).
 *   - Type promotion is done by the core: inputs of elementwise ops arrive in
 *     the computation dtype, except where an op says otherwise below.
 *   - Outputs are allocated by the core. For ordinary ops they are freshly
 *     allocated and contiguous. For in-place ops the output descriptor is the
 *     destination tensor itself and may alias an input with identical
 *     descriptor; it may be strided (never with overlapping elements).
 *   - Empty tensors (numel 0) never reach a kernel.
 *
 * Versioning: every table starts with an ABI major and struct_size. Tables
 * only grow at the end; a new slot is commented "since ABI x.y". The host
 * refuses a plugin whose major differs and reads only the first struct_size
 * bytes of a table (the absent tail counts as NULL). Op ids never change
 * meaning; new ops get new numbers.
 *
 * Threads: the core calls a device's functions from one thread at a time
 * per device (it serialises), so plugins need no locking of their own for
 * the calls in this table, except buffer_free, which may come from any
 * thread that drops the last reference.
 */
#ifndef EMBER_PLUGIN_H
#define EMBER_PLUGIN_H

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EM_PLUGIN_ABI_MAJOR 1
#define EM_PLUGIN_ABI_MINOR 4 /* 1.1 added EM_OP_ERF, EM_OP_SIGN; 1.2 EM_OP_AXPY;
                                 1.3 EM_OP_ADAM, EM_OP_CROSS_ENTROPY(_BACKWARD)
                                 and em_op_params.scalar_ext; 1.4
                                 EM_OP_RELU_BACKWARD, EM_OP_LINEAR_ACT */
#define EM_PLUGIN_ENTRY_NAME "em_plugin_init"

#if defined(__GNUC__)
#define EM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define EM_PLUGIN_EXPORT
#endif

/* ------------------------------------------------------------------------ */
/* Op ids: a stable numbered list. Per op: inputs (in[]), outputs (out[]),  */
/* the parameters used, and which dtype keys the kernel lookup. Unless said */
/* otherwise the key is in[0].dtype, or out[0].dtype for ops without inputs.*/
/* ------------------------------------------------------------------------ */
typedef enum em_op {
    /* --- memory and creation --- */
    EM_OP_FILL = 1,        /* out[0] = scalar[0] (cast to out dtype); no inputs */
    EM_OP_COPY = 2,        /* out[0] = in[0], same dtype and shape, any strides */
    EM_OP_CAST = 3,        /* out[0] = (out dtype) in[0]; key: in[0] dtype.
                              float->int truncates toward zero and saturates
                              at the int's range, NaN -> 0 (C leaves these
                              undefined; every backend must agree); ->bool
                              is != 0 (NaN -> true); ->f16/bf16 rounds to
                              nearest even */
    EM_OP_ARANGE = 4,      /* out[0][i] = scalar[0] + i * scalar[1] (computed in
                              double, then cast); 1-D contiguous out */
    EM_OP_LINSPACE = 5,    /* 1-D out of n = shape[0] values: step = (end-start)/
                              (n-1) with start=scalar[0], end=scalar[1];
                              i < n/2: start + i*step, else end - (n-1-i)*step
                              (so both ends are exact); n == 1 gives start */
    EM_OP_RAND_UNIFORM = 6,/* out[0] uniform in [scalar[0], scalar[1]) from the
                              Philox stream (seed, offset) described below;
                              lo + u*(hi-lo) is computed in double and then
                              rounded to the dtype: exact and < 1 for [0,1);
                              for other bounds rounding may rarely give hi,
                              as in PyTorch */
    EM_OP_RAND_NORMAL = 7, /* out[0] normal(mean scalar[0], std scalar[1]) */
    EM_OP_RANDINT = 8,     /* out[0] integers in [ints[0], ints[1]) */

    /* --- binary elementwise: out = in[0] op in[1]; or, when n_in == 1,
     *     out = in[0] op scalar[0]. Inputs and out share the dtype. --- */
    EM_OP_ADD = 20,
    EM_OP_SUB = 21,
    EM_OP_MUL = 22,
    EM_OP_DIV = 23,        /* float dtypes only (the core promotes ints) */
    EM_OP_POW = 24,
    EM_OP_MAXIMUM = 25,    /* NaN propagates */
    EM_OP_MINIMUM = 26,
    EM_OP_AXPY = 27,       /* ABI 1.2: out = in[0] + scalar[0] * in[1], float
                              dtypes, the product computed in the compute type
                              (f32 for f16/bf16); out may alias in[0] */

    /* --- comparisons: same operand forms as binary; out dtype is bool --- */
    EM_OP_EQ = 30,
    EM_OP_NE = 31,
    EM_OP_LT = 32,
    EM_OP_LE = 33,
    EM_OP_GT = 34,
    EM_OP_GE = 35,

    /* --- selection --- */
    EM_OP_WHERE = 40,       /* out = in[2] ? in[0] : in[1]; in[2] is bool;
                               key: in[0] dtype (== in[1] == out) */
    EM_OP_CLAMP = 41,       /* out = min(max(in[0], scalar[0]), scalar[1]);
                               bounds may be +-inf; NaN stays NaN */
    EM_OP_MASKED_FILL = 42, /* out = in[1] ? scalar[0] : in[0]; in[1] is bool */

    /* --- unary elementwise: out = f(in[0]), same dtype (floats for the
     *     transcendental ones; the core promotes integers to f32) --- */
    EM_OP_NEG = 50,
    EM_OP_ABS = 51,
    EM_OP_EXP = 52,
    EM_OP_LOG = 53,
    EM_OP_SQRT = 54,
    EM_OP_RSQRT = 55,
    EM_OP_SIN = 56,
    EM_OP_COS = 57,
    EM_OP_TANH = 58,
    EM_OP_SIGMOID = 59,
    EM_OP_RELU = 60,
    EM_OP_GELU = 61,        /* flag 0: x*0.5*(1+erf(x/sqrt2)); flag 1: tanh form */
    EM_OP_SILU = 62,
    EM_OP_SOFTPLUS = 63,    /* beta scalar[0], threshold scalar[1]:
                               x*beta > threshold ? x : log1p(exp(beta x))/beta */
    EM_OP_SQUARE = 64,
    EM_OP_RECIPROCAL = 65,
    EM_OP_ERF = 66,         /* ABI 1.1; float only */
    EM_OP_SIGN = 67,        /* ABI 1.1; -1, 0 or 1 (NaN stays NaN); every dtype
                               (bool: x) */
    EM_OP_RELU_BACKWARD = 68, /* ABI 1.4: in[0] g, in[1] y (both already
                               broadcast to out's shape, as binary ops; float
                               dtypes, all the same); out = y > 0 ? g : 0
                               (NaN y gives 0). y may be relu's input or its
                               output. Composed by the core where missing. */

    /* --- reductions: out[0] has in[0]'s ndim with size 1 in every reduced
     *     dim (keepdim form; the core reshapes afterwards). reduce_mask bit d
     *     set = dim d reduced. Accumulate in at least f32 (f64 for f64). --- */
    EM_OP_SUM = 80,         /* out dtype == in dtype, except ints/bool -> i64 */
    EM_OP_MEAN = 81,        /* float only */
    EM_OP_MAX = 82,         /* NaN propagates */
    EM_OP_MIN = 83,
    EM_OP_ARGMAX = 84,      /* exactly one dim reduced, or every dim (then the
                               index is into the row-major flattening); out i64;
                               first occurrence wins; NaN counts as the max.
                               (A backend that accepts several reduced dims
                               returns the row-major position within the
                               reduced sub-block; the core never asks.) */
    EM_OP_ARGMIN = 85,
    EM_OP_VAR = 86,         /* float only; divisor N - flag (flag 0 or 1) */
    EM_OP_STD = 87,
    EM_OP_LOGSUMEXP = 88,   /* float only; stable (subtract the max) */
    EM_OP_SOFTMAX = 90,     /* along params.dim; out has in's shape; float only */
    EM_OP_LOG_SOFTMAX = 91,

    /* --- linear algebra (floating dtypes) --- */
    EM_OP_MATMUL = 100,     /* in[0] a [B,M,K], in[1] b [B,K,N] -> out [B,M,N].
                               Any strides (batch stride may be 0). */
    EM_OP_LINEAR = 101,     /* in[0] x [M,K], in[1] w [N,K], optional in[2]
                               bias already broadcast to [M,N] (any strides);
                               out [M,N] = x w^T (+ bias) */
    EM_OP_LINEAR_ACT = 102, /* ABI 1.4: LINEAR's operands and layout, with an
                               activation applied before the store: out =
                               act(x w^T (+ bias)); params.flag names act:
                               1 = relu (max(v, 0); NaN stays NaN). A kernel
                               refuses any other flag (EM_ERR_UNSUPPORTED).
                               The core asks for it only where the backend
                               registers it and composes LINEAR + RELU
                               otherwise (never a CPU fallback). */

    /* --- data movement --- */
    EM_OP_CAT = 120,        /* out = in[0..n_in-1] joined along params.dim;
                               all inputs have out's dtype */
    EM_OP_INDEX_SELECT = 121,/* in[0] t, in[1] index (1-D, i32/i64); out has
                               t's shape with dim params.dim of len(index) */
    EM_OP_GATHER = 122,     /* in[0] t, in[1] index (i32/i64, out's shape);
                               out[..i_d..] = t[..index[..]..] along params.dim */
    EM_OP_SCATTER_ADD = 123,/* in[0] src, in[1] index (src's shape); out already
                               holds the destination's values and is updated
                               in place: out[..index[..]..] += src[..] */
    EM_OP_ONE_HOT = 124,    /* in[0] index (i32/i64); out i64 [..., C] where
                               C is out's last dim (the class count; the core
                               computed it); out is not pre-zeroed: the
                               kernel writes every element */

    /* --- fused optimizer steps (ABI 1.3) --- */
    EM_OP_ADAM = 130,       /* One Adam/AdamW step of one parameter, in place.
                               in[0] g (the gradient); out[0] p (parameter),
                               out[1] m (exp_avg), out[2] v (exp_avg_sq) and,
                               when params.flag is 1 (amsgrad), out[3] vmax.
                               All have g's dtype and shape and are dense
                               row-major (the core composes the step from
                               other ops otherwise); the outputs are read and
                               written. scalar[0] beta1, scalar[1] beta2,
                               scalar[2] eps, scalar[3] step_size (lr / (1 -
                               beta1^t)); scalar_ext[0] sqrt(1 - beta2^t),
                               scalar_ext[1] wd (L2: g += wd * p first),
                               scalar_ext[2] decay (p *= decay first: AdamW's
                               1 - lr*wd, else 1). Per element, computed in
                               at least f32 (f64 for f64):
                                 p *= decay; g += wd * p;
                                 m += (1 - beta1) * (g - m);
                                 v = beta2 * v + (1 - beta2) * g * g;
                                 vmax = max(vmax, v); s = amsgrad ? vmax : v;
                                 p -= step_size * m / (sqrt(s) / scalar_ext[0] + eps)
                               A backend without it gets the composed step on
                               its own device (never a CPU fallback). */
    EM_OP_CROSS_ENTROPY = 131, /* in[0] logits x [N, C] (f32/f64, dense), in[1]
                               target t [N] (i32/i64, dense); out[0] loss [N],
                               out[1] lse [N] (x's dtype). Per row i, with
                               eps = scalar[0] (label smoothing) and
                               ignore = ints[0]: lse_i = log sum_c exp(x_ic)
                               (stable); loss_i = 0 if t_i == ignore, else
                               (1 - eps)(lse_i - x_i,t_i) + eps (lse_i -
                               mean_c x_ic). A t_i outside [0, C) that is not
                               ignore is EM_ERR_INDEX. Like ADAM, the core
                               composes other ops when a backend lacks it. */
    EM_OP_CROSS_ENTROPY_BACKWARD = 132, /* in[0] x, in[1] t, in[2] lse (as
                               CROSS_ENTROPY gave it), in[3] g [N] (dense);
                               out[0] dx [N, C] = g_i (exp(x_ic - lse_i) -
                               (1 - eps) [c == t_i] - eps / C), 0 in ignored
                               rows; scalar[0] eps, ints[0] ignore. */

    EM_OP_COUNT_HINT = 256  /* op ids are below this (for lookup arrays) */
} em_op;

/* Index errors (gather/index_select/scatter_add/one_hot with an index out of
 * range) must return EM_ERR_INDEX with a message naming the index. Indices
 * are 0-based and never wrap: a negative index is out of range (as torch).
 * A kernel that fails this way may have written part of its output; the
 * core discards that output (scatter_add_ checks indices before writing). */

/* ------------------------------------------------------------------------ */
/* Descriptors                                                               */
/* ------------------------------------------------------------------------ */

/* A tensor as a kernel sees it. The element at multi-index (i0..in-1) lives
 * at element (offset + sum_k i_k * strides[k]) of `buffer`, in `dtype`. */
typedef struct em_tdesc {
    void *buffer;                  /* the plugin's own buffer handle       */
    int64_t offset;                /* in elements of dtype                 */
    int32_t dtype;                 /* em_dtype                             */
    int32_t ndim;                  /* 0..EM_MAX_DIMS                       */
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[EM_MAX_DIMS];  /* in elements, >= 0                    */
} em_tdesc;

/* Parameters of one op call; fields unused by the op are zero. */
typedef struct em_op_params {
    uint32_t struct_size;   /* sizeof(em_op_params) of the core            */
    int32_t dim;            /* softmax, cat, index ops: a non-negative dim  */
    uint32_t reduce_mask;   /* reductions: bit d set = dim d is reduced     */
    int32_t flag;           /* gelu form, var/std correction               */
    double scalar[4];       /* scalar operands (see each op)               */
    int64_t ints[4];        /* integer operands (see each op)              */
    uint64_t seed;          /* random ops: Philox key                      */
    uint64_t offset;        /* random ops: Philox stream offset            */
    double scalar_ext[4];   /* since ABI 1.3: more scalar operands (ADAM)  */
} em_op_params;

/* One call of one kernel. */
typedef struct em_op_call {
    uint32_t struct_size;   /* sizeof(em_op_call) of the core              */
    int32_t op;             /* em_op                                       */
    int32_t n_in;
    int32_t n_out;
    const em_tdesc *in;     /* n_in descriptors                            */
    const em_tdesc *out;    /* n_out descriptors                           */
    const em_op_params *params;
} em_op_call;

/* A kernel. dev is the plugin's device context from device_open. Returns
 * EM_OK or a status, after calling host->set_error with the detail. */
typedef em_status (*em_kernel_fn)(void *dev, const em_op_call *call);

/* Kernel flags. */
#define EM_KERNEL_CONTIGUOUS 0x1u  /* inputs must be dense row-major         */

/* One row of a plugin's kernel registry: (op, key dtype) -> function. */
typedef struct em_kernel_entry {
    int32_t op;             /* em_op                                       */
    int32_t dtype;          /* key dtype (see the op list)                 */
    uint32_t flags;         /* EM_KERNEL_*                                 */
    em_kernel_fn fn;
} em_kernel_entry;

/* ------------------------------------------------------------------------ */
/* Devices                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct em_plugin_device_info {
    uint32_t struct_size;   /* set by the core before the call             */
    int32_t type;           /* em_device_type                              */
    char name[128];
    char description[256];
    uint64_t memory_bytes;
    uint32_t dtype_mask;    /* bit (1u << em_dtype) per supported dtype    */
} em_plugin_device_info;

/* ------------------------------------------------------------------------ */
/* Host services: what the core offers a plugin (valid until shutdown).     */
/* ------------------------------------------------------------------------ */

typedef enum em_log_level {
    EM_LOG_ERROR = 0,
    EM_LOG_WARN = 1,
    EM_LOG_INFO = 2,
    EM_LOG_DEBUG = 3
} em_log_level;

typedef struct em_host_services {
    uint32_t abi_major;     /* EM_PLUGIN_ABI_MAJOR of the core             */
    uint32_t abi_minor;
    uint32_t struct_size;   /* sizeof(em_host_services) of the core        */
    /* Records the detail of a failure on the calling thread (the core adds
     * the op, shapes and device around it). Returns status. */
    em_status (*set_error)(em_status status, const char *fmt, ...);
    /* Writes a log line tagged with the plugin's name when level is enabled
     * by EMBER_LOG. */
    void (*log)(int level, const char *plugin, const char *fmt, ...);
    /* secure_getenv: NULL in set-uid programs. */
    const char *(*getenv)(const char *name);
} em_host_services;

/* ------------------------------------------------------------------------ */
/* The backend table: what a plugin offers the core.                         */
/* All pointers are required unless marked optional.                         */
/* ------------------------------------------------------------------------ */

typedef struct em_backend_table {
    uint32_t abi_major;     /* EM_PLUGIN_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;
    uint32_t struct_size;   /* sizeof(em_backend_table) as the plugin knows it */
    const char *name;       /* short lower-case name, e.g. "cpu"           */
    const char *version;    /* the plugin's own version string             */

    /* Number of devices (0 is valid: "none here"; then call reason()). */
    int (*device_count)(void);
    /* Fills info for device index. */
    em_status (*device_info)(int index, em_plugin_device_info *info);
    /* Opens device index; *dev receives the context passed to every call. */
    em_status (*device_open)(int index, void **dev);
    /* Closes a device opened with device_open; all its buffers are freed. */
    void (*device_close)(void *dev);

    /* Buffers: bytes >= 1. Offsets and sizes are in bytes. */
    em_status (*buffer_alloc)(void *dev, size_t bytes, void **buffer);
    /* May be called while queued kernels still use the buffer: an
     * asynchronous backend must defer reuse until that work completes. */
    void (*buffer_free)(void *dev, void *buffer);
    /* host -> device. May return before the copy ends only if src was copied. */
    em_status (*buffer_upload)(void *dev, void *buffer, size_t offset, const void *src,
                               size_t bytes);
    /* device -> host; blocks until the data is in dst. */
    em_status (*buffer_download)(void *dev, void *buffer, size_t offset, void *dst,
                                 size_t bytes);
    /* device -> same device. */
    em_status (*buffer_copy)(void *dev, void *src, size_t src_offset, void *dst,
                             size_t dst_offset, size_t bytes);
    /* Waits for all queued work on the device. */
    em_status (*synchronize)(void *dev);

    /* The kernel registry: kernel_count rows. */
    const em_kernel_entry *kernels;
    size_t kernel_count;
    /* Optional: may decline a call its registry lists (e.g. a dtype the
     * device lacks). Return 1 to accept, 0 to decline (the core falls back). */
    int (*supports)(void *dev, const em_op_call *call);

    /* Optional: why device_count() is 0, e.g. "no CUDA device
     * (cudaErrorInsufficientDriver)". Static or plugin-owned string. */
    const char *(*reason)(void);
    /* Optional: called once before dlclose. */
    void (*shutdown)(void);
} em_backend_table;

/* The single entry point. The plugin checks host->abi_major, then sets *table
 * to its own table (static storage, alive until shutdown). Returns EM_OK, or
 * a status after host->set_error (the core then refuses the plugin with that
 * message). */
typedef em_status (*em_plugin_init_fn)(const em_host_services *host,
                                       const em_backend_table **table);

/* ------------------------------------------------------------------------ */
/* Random numbers: every backend produces the same stream.                   */
/*                                                                            */
/* Element i (row-major index into the contiguous output) of a random op     */
/* uses one Philox4x32-10 block with key {seed lo32, seed hi32} and counter  */
/* {i lo32, i hi32, offset lo32, offset hi32}, giving words x0..x3:          */
/*   uniform f32: u = (x0 >> 8) * 2^-24; f16: u = (x0 >> 21) * 2^-11;        */
/*           bf16: u = (x0 >> 24) * 2^-8 (as many bits as the dtype holds, so */
/*           u rounds to itself and never to 1.0);                            */
/*   uniform f64: u = ((uint64)x0 << 21 | x1 >> 11) * 2^-53;                  */
/*   value = lo + u * (hi - lo)                                               */
/*   normal: u1 = (x0 + 1.0) * 2^-32 in (0,1], u2 = x1 * 2^-32,               */
/*           z = sqrt(-2 ln u1) * cos(2 pi u2), computed in double, then cast;*/
/*           value = mean + std * z                                           */
/*   randint: low + (((uint64)x1 << 32 | x0) mod (high - low))                 */
/* The core advances a generator's offset by one per random op.              */
/* ------------------------------------------------------------------------ */

static inline void em_philox4x32_10(const uint32_t key_in[2], const uint32_t ctr_in[4],
                                    uint32_t out[4])
{
    uint32_t k0 = key_in[0], k1 = key_in[1];
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* ------------------------------------------------------------------------ */
/* Half-precision helpers (round to nearest even), for plugins and tests.    */
/* ------------------------------------------------------------------------ */

static inline float em_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

static inline uint16_t em_f32_to_bf16(float f)
{
    union { uint32_t u; float f; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* NaN */
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(v.u >> 16);
}

static inline float em_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    union { uint32_t u; float f; } v;
    if (exp == 0) {
        if (man == 0) { v.u = sign; return v.f; }
        /* subnormal: value = man * 2^-24 */
        v.f = (float)man * 5.9604644775390625e-8f;
        v.u |= sign;
        return v.f;
    }
    if (exp == 31) { v.u = sign | 0x7f800000u | (man << 13); return v.f; }
    v.u = sign | ((exp + 112u) << 23) | (man << 13);
    return v.f;
}

static inline uint16_t em_f32_to_f16(float f)
{
    union { uint32_t u; float f; } v;
    v.f = f;
    uint32_t sign = (v.u >> 16) & 0x8000u;
    uint32_t a = v.u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);          /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);         /* overflow -> inf */
    if (a < 0x38800000u) {                                           /* subnormal or 0 */
        /* value / 2^-24, rounded to nearest even */
        union { uint32_t u; float f; } w;
        w.u = a;
        float scaled = w.f * 16777216.0f; /* exact: power of two */
        uint32_t m = (uint32_t)scaled;
        float rem = scaled - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1u))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u;        /* rebias, round */
    return (uint16_t)(sign | (r >> 13));
}

#ifdef __cplusplus
}
#endif

#endif /* EMBER_PLUGIN_H */
