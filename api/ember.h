/*
 * ember.h — the public C API of Ember, a GPU-first deep-learning library.
 *
 * This header is the specification. Everything not declared here is internal.
 *
 * Conventions (stated once, used everywhere):
 *   - Prefix em_ for functions and types, EM_ for macros and enum values.
 *   - Handles are opaque: em_tensor, em_device, em_backend, em_generator.
 *   - Shapes and strides are int64_t counts of ELEMENTS (not bytes), outermost
 *     dimension first (row-major, as in NumPy and PyTorch). A tensor has 0 to
 *     EM_MAX_DIMS dimensions; a 0-d tensor is a scalar with numel 1.
 *   - Dimension arguments may be negative and count from the end (-1 = last).
 *   - Broadcasting follows NumPy/PyTorch: shapes are aligned on the right and
 *     each pair of sizes must be equal or one of them 1.
 *   - Type promotion follows PyTorch: bool < integers < floating; among
 *     floats the wider wins (f16 with bf16 gives f32). A scalar argument
 *     (double) never widens a floating tensor; on an integer or bool tensor
 *     a whole-number scalar keeps the tensor's dtype (bool becomes i64) and a
 *     fractional one gives f32 (C cannot tell 2 from 2.0, so the value
 *     decides). True division of integers gives f32.
 *
 * Errors:
 *   Every call that can fail reports an em_status. Functions returning a
 *   tensor return NULL on failure. The reason is in a thread-local,
 *   library-owned message, em_last_error(), naming the op, the shapes, dtypes
 *   and device involved. A tensor-returning op given a NULL tensor argument
 *   returns NULL and records EM_ERR_NULL_ARG only if no error is pending on
 *   this thread, so a chain like em_add(em_mul(a, b), c) can be checked once
 *   at the end and still reports the FIRST failure. em_clear_error() resets
 *   the pending error. Library code never aborts or exits on any input.
 *
 * Ownership (the one rule for every function that returns em_tensor *):
 *   The returned tensor carries one reference. If a scope is open on the
 *   calling thread (em_scope_begin), that reference belongs to the innermost
 *   scope and is dropped by em_scope_end; call em_scope_keep(t) to hand it to
 *   the enclosing scope (or to the caller, when no scope encloses). With no
 *   scope open the caller owns the reference and releases it with
 *   em_tensor_release. Functions taking tensors only borrow them. Views share
 *   storage with their base; the storage lives as long as any view does.
 *
 * Threads: distinct tensors may be used from distinct threads. A single
 *   tensor must not be mutated (in-place ops, release) concurrently with any
 *   other use. Errors and scopes are per thread.
 */
#ifndef EMBER_H
#define EMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Export and version                                                        */
/* ------------------------------------------------------------------------ */

#if defined(EMBER_BUILDING_LIBRARY)
#define EM_API __attribute__((visibility("default")))
#else
#define EM_API
#endif

#define EM_VERSION_MAJOR 0
#define EM_VERSION_MINOR 1
#define EM_VERSION_PATCH 0
/* EM_VERSION_NUMBER is major*10000 + minor*100 + patch. */
#define EM_VERSION_NUMBER (EM_VERSION_MAJOR * 10000 + EM_VERSION_MINOR * 100 + EM_VERSION_PATCH)

/* The library's version as "MAJOR.MINOR.PATCH". Static string. */
EM_API const char *em_version(void);
/* The library's EM_VERSION_NUMBER, to compare with the header's at run time. */
EM_API int em_version_number(void);

#define EM_MAX_DIMS 8

/* ------------------------------------------------------------------------ */
/* Status and errors                                                         */
/* ------------------------------------------------------------------------ */

typedef enum em_status {
    EM_OK = 0,
    EM_ERR_INVALID_ARG = 1,   /* an argument is out of its documented range   */
    EM_ERR_NULL_ARG = 2,      /* a required pointer argument was NULL          */
    EM_ERR_SHAPE = 3,         /* shapes do not match or do not broadcast       */
    EM_ERR_DTYPE = 4,         /* dtype not accepted by the op                  */
    EM_ERR_DEVICE = 5,        /* tensors on different devices, bad device      */
    EM_ERR_OUT_OF_MEMORY = 6, /* host or device allocation failed              */
    EM_ERR_UNSUPPORTED = 7,   /* no backend can run this op for these inputs   */
    EM_ERR_BACKEND = 8,       /* a backend reported a failure                  */
    EM_ERR_PLUGIN = 9,        /* a plugin could not be loaded or selected      */
    EM_ERR_IO = 10,           /* file or stream error                          */
    EM_ERR_INDEX = 11,        /* an index is out of range                      */
    EM_ERR_STATE = 12,        /* call not valid now (e.g. unbalanced scope)     */
    EM_ERR_INTERNAL = 13      /* a bug in Ember: please report it              */
} em_status;

/* A static, human-readable name for a status ("EM_ERR_SHAPE: ..."). Never NULL. */
EM_API const char *em_status_str(em_status status);
/* The status of the pending error on this thread, EM_OK if none. */
EM_API em_status em_last_status(void);
/* The pending error's message on this thread ("" if none). The string is
 * owned by the library and valid until the next Ember call on this thread. */
EM_API const char *em_last_error(void);
/* Forget the pending error on this thread. */
EM_API void em_clear_error(void);

/* ------------------------------------------------------------------------ */
/* dtypes                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum em_dtype {
    EM_F32 = 0,
    EM_F64 = 1,
    EM_F16 = 2,
    EM_BF16 = 3,
    EM_I32 = 4,
    EM_I64 = 5,
    EM_BOOL = 6, /* stored as one byte, 0 or 1 */
    EM_DTYPE_COUNT = 7
} em_dtype;

/* "f32", "f64", ...; "invalid" for values outside the enum. */
EM_API const char *em_dtype_name(em_dtype dtype);
/* Bytes per element (bool: 1); 0 for an invalid dtype. */
EM_API size_t em_dtype_size(em_dtype dtype);
/* True for f32, f64, f16 and bf16. */
EM_API bool em_dtype_is_float(em_dtype dtype);
/* The dtype PyTorch's promotion rules give for a binary op on a and b. */
EM_API em_dtype em_promote_types(em_dtype a, em_dtype b);

/* ------------------------------------------------------------------------ */
/* Handles                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct em_tensor em_tensor;       /* n-d array on one device       */
typedef struct em_device em_device;       /* one device of one backend     */
typedef struct em_backend em_backend;     /* one loaded plugin             */
typedef struct em_generator em_generator; /* random-number stream          */

/* EM_SHAPE(2, 3) expands to the two arguments `ndim, shape` taken by the
 * creation functions: 2, (const int64_t[]){2, 3}. */
#define EM_SHAPE(...)                                                        \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),          \
        (const int64_t[]) { __VA_ARGS__ }

/* ------------------------------------------------------------------------ */
/* Library lifetime, backends and devices                                    */
/* ------------------------------------------------------------------------ */

/* Loads the plugins and chooses the default device. Called implicitly by the
 * first call that needs a device; call it yourself to see loader errors early.
 * Thread-safe and idempotent. Returns EM_ERR_PLUGIN when EMBER_BACKEND names a
 * backend that cannot be used (the message lists what was tried and what is
 * available); the CPU backend stays usable through em_device_find("cpu").
 *
 * Environment: EMBER_BACKEND (cpu | cuda | vulkan | NAME | NAME:INDEX | path
 * to a .so; unset = best hardware device, GPU before CPU, software-emulated
 * devices only by name), EMBER_PLUGIN_PATH (colon-separated folders),
 * EMBER_STRICT=1 (a CPU fallback becomes an error), EMBER_LOG=debug|info|warn,
 * EMBER_FUSED=0 (no fused Adam/cross-entropy/linear+relu/relu-backward
 * kernels: composed ops instead),
 * EMBER_GUARD=1 (guard bytes around every allocation, checked after each
 * kernel: a kernel writing outside its output fails the op; for checking
 * plugins, slow). */
EM_API em_status em_init(void);
/* Releases every tensor-independent resource and unloads plugins. Tensors
 * still alive become invalid. Safe to call when not initialised. */
EM_API void em_shutdown(void);

typedef enum em_device_type {
    EM_DEVICE_CPU = 0,
    EM_DEVICE_GPU = 1,            /* discrete GPU                          */
    EM_DEVICE_INTEGRATED_GPU = 2,
    EM_DEVICE_SOFTWARE = 3,       /* emulated in software (e.g. lavapipe)  */
    EM_DEVICE_OTHER = 4           /* accelerator of another kind           */
} em_device_type;

/* Properties of a device. Set struct_size = sizeof(em_device_props) before
 * calling em_device_properties; fields beyond it are left untouched. */
typedef struct em_device_props {
    size_t struct_size;
    char name[128];         /* e.g. "AMD EPYC (2 threads)"               */
    char backend[32];       /* plugin name, e.g. "cpu"                   */
    char description[256];  /* backend-specific detail (BLAS core, ...)  */
    em_device_type type;
    int index;              /* index within its backend                  */
    uint64_t memory_bytes;  /* 0 if unknown                              */
    uint32_t dtype_mask;    /* bit (1u << dtype) set per supported dtype */
} em_device_props;

/* "cpu", "gpu", "integrated-gpu", "software", "other". */
EM_API const char *em_device_type_name(em_device_type type);

/* Number of loaded backends (plugins that initialised). */
EM_API int em_backend_count(void);
/* The i-th loaded backend, or NULL. Borrowed, valid until em_shutdown. */
EM_API const em_backend *em_backend_get(int i);
/* The backend's name ("cpu"), borrowed. */
EM_API const char *em_backend_name(const em_backend *backend);
/* The file the backend was loaded from, borrowed. */
EM_API const char *em_backend_path(const em_backend *backend);
/* The backend's own version string, borrowed. */
EM_API const char *em_backend_version(const em_backend *backend);

/* Plugins that were found but refused, with the reason ("path: why"). */
EM_API int em_plugin_rejected_count(void);
/* The i-th refusal as "path: reason", borrowed; NULL when out of range. */
EM_API const char *em_plugin_rejected(int i);
/* One line per decision the loader took for the default device, borrowed. */
EM_API const char *em_backend_selection_log(void);

/* Devices over all backends, CPU first. Borrowed handles, valid until
 * em_shutdown. */
EM_API int em_device_count(void);
EM_API em_device *em_device_get(int i);
/* The device chosen by EMBER_BACKEND (see em_init); NULL on error. */
EM_API em_device *em_device_default(void);
/* The CPU device (always present once initialised); NULL on error. */
EM_API em_device *em_device_cpu(void);
/* A device by EMBER_BACKEND syntax ("cpu", "vulkan:1", a plugin path). A
 * path is loaded on first use. NULL with EM_ERR_PLUGIN/EM_ERR_DEVICE if none. */
EM_API em_device *em_device_find(const char *spec);
/* "cpu:0"-style name of the device, borrowed. */
EM_API const char *em_device_name(const em_device *device);
/* Fills *props (see em_device_props). EM_ERR_NULL_ARG / EM_ERR_INVALID_ARG. */
EM_API em_status em_device_properties(const em_device *device, em_device_props *props);
/* Waits until all work queued on the device has finished. */
EM_API em_status em_device_synchronize(em_device *device);

/* Number of ops that ran on the CPU backend because the tensors' backend has
 * no kernel for them, since start-up (all threads). */
EM_API uint64_t em_fallback_count(void);

/* ------------------------------------------------------------------------ */
/* Reference counting and scopes                                             */
/* ------------------------------------------------------------------------ */

/* Adds a reference held by the caller (not by any scope). Returns t. */
EM_API em_tensor *em_tensor_retain(em_tensor *t);
/* Drops one reference; frees the tensor (and its storage once no view uses
 * it) at zero. NULL is a no-op. Do not release a reference a scope holds. */
EM_API void em_tensor_release(em_tensor *t);

/* Opens a scope on this thread: tensors returned from now on belong to it.
 * Scopes nest (up to 64 deep). Returns EM_ERR_STATE when nested too deep. */
EM_API em_status em_scope_begin(void);
/* Closes the innermost scope, releasing the references it holds. Returns
 * EM_ERR_STATE without a matching em_scope_begin. */
EM_API em_status em_scope_end(void);
/* Moves t's scope reference from the innermost scope to the enclosing one,
 * or to the caller when no scope encloses it. Returns t (NULL if t is NULL
 * or was not owned by the innermost scope, with EM_ERR_STATE). */
EM_API em_tensor *em_scope_keep(em_tensor *t);

/* ------------------------------------------------------------------------ */
/* Creation. `device` NULL means em_device_default().                        */
/* ------------------------------------------------------------------------ */

/* A tensor of the given dtype and shape holding a copy of `data`, which is
 * read as contiguous row-major elements of that dtype. */
EM_API em_tensor *em_tensor_from_data(const void *data, em_dtype dtype, int ndim,
                                      const int64_t *shape, em_device *device);
/* From C floats: an f32 tensor on the default device. */
EM_API em_tensor *em_tensor_from_floats(const float *data, int ndim, const int64_t *shape);
/* From C doubles: an f32 tensor (as torch.tensor on Python floats). */
EM_API em_tensor *em_tensor_from_doubles(const double *data, int ndim, const int64_t *shape);
/* From C int64 values: an i64 tensor. */
EM_API em_tensor *em_tensor_from_ints(const int64_t *data, int ndim, const int64_t *shape);
/* 0-d tensors: em_scalar gives f32, em_scalar_int gives i64. */
EM_API em_tensor *em_scalar(double value);
EM_API em_tensor *em_scalar_int(int64_t value);

/* Uninitialised contents. */
EM_API em_tensor *em_empty(em_dtype dtype, int ndim, const int64_t *shape, em_device *device);
EM_API em_tensor *em_zeros(em_dtype dtype, int ndim, const int64_t *shape, em_device *device);
EM_API em_tensor *em_ones(em_dtype dtype, int ndim, const int64_t *shape, em_device *device);
EM_API em_tensor *em_full(double value, em_dtype dtype, int ndim, const int64_t *shape,
                          em_device *device);
/* [start, end) in steps of step (step != 0), like torch.arange. */
EM_API em_tensor *em_arange(double start, double end, double step, em_dtype dtype,
                            em_device *device);
/* `steps` values evenly from start to end inclusive, like torch.linspace. */
EM_API em_tensor *em_linspace(double start, double end, int64_t steps, em_dtype dtype,
                              em_device *device);
/* n x m identity-like matrix (m < 0 means m = n). */
EM_API em_tensor *em_eye(int64_t n, int64_t m, em_dtype dtype, em_device *device);

/* Same shape, dtype and device as t. */
EM_API em_tensor *em_empty_like(const em_tensor *t);
EM_API em_tensor *em_zeros_like(const em_tensor *t);
EM_API em_tensor *em_ones_like(const em_tensor *t);
EM_API em_tensor *em_full_like(const em_tensor *t, double value);

/* Random numbers. The stream is Philox4x32-10 (see ember_plugin.h), so the
 * same seed gives the same numbers on every backend. `gen` NULL uses the
 * global generator, seeded by em_manual_seed (default seed 0). dtype must be
 * floating for rand/randn and integral for randint. */
EM_API void em_manual_seed(uint64_t seed);
EM_API em_generator *em_generator_create(uint64_t seed);
EM_API void em_generator_destroy(em_generator *gen); /* NULL is a no-op */
/* Uniform in [0, 1). */
EM_API em_tensor *em_rand(em_generator *gen, em_dtype dtype, int ndim, const int64_t *shape,
                          em_device *device);
/* Standard normal. */
EM_API em_tensor *em_randn(em_generator *gen, em_dtype dtype, int ndim, const int64_t *shape,
                           em_device *device);
/* Uniform integers in [low, high). */
EM_API em_tensor *em_randint(em_generator *gen, int64_t low, int64_t high, em_dtype dtype,
                             int ndim, const int64_t *shape, em_device *device);
EM_API em_tensor *em_rand_like(const em_tensor *t, em_generator *gen);
EM_API em_tensor *em_randn_like(const em_tensor *t, em_generator *gen);

/* ------------------------------------------------------------------------ */
/* Metadata and host access                                                  */
/* ------------------------------------------------------------------------ */

EM_API int em_tensor_ndim(const em_tensor *t);          /* -1 if t is NULL */
/* Size of dimension dim (negative counts from the end); -1 if invalid. */
EM_API int64_t em_tensor_dim(const em_tensor *t, int dim);
/* Stride of dimension dim in elements; 0 if invalid. */
EM_API int64_t em_tensor_stride(const em_tensor *t, int dim);
/* Copies the shape into shape[0..ndim-1]; returns ndim (-1 if t is NULL). */
EM_API int em_tensor_shape(const em_tensor *t, int64_t *shape);
EM_API int64_t em_tensor_numel(const em_tensor *t);     /* -1 if t is NULL */
EM_API int64_t em_tensor_offset(const em_tensor *t);    /* storage offset, elements */
EM_API em_dtype em_tensor_dtype(const em_tensor *t);
/* The device t lives on, borrowed. */
EM_API em_device *em_tensor_device(const em_tensor *t);
EM_API bool em_tensor_is_contiguous(const em_tensor *t);
/* True when a and b share storage. */
EM_API bool em_tensor_shares_storage(const em_tensor *a, const em_tensor *b);

/* Copies t's elements to host memory in logical row-major order, in t's own
 * dtype. dst_bytes must be at least numel * dtype size. Synchronizes. */
EM_API em_status em_tensor_read(const em_tensor *t, void *dst, size_t dst_bytes);
/* Copies t's elements to host as doubles (any dtype). dst holds numel values. */
EM_API em_status em_tensor_read_f64(const em_tensor *t, double *dst, size_t count);
/* The value of a one-element tensor as a double. */
EM_API em_status em_tensor_item(const em_tensor *t, double *value);
/* Writes a readable rendering ("tensor([[1, 2], ...], dtype=f32)") to the
 * caller's buffer, truncated to cap bytes; returns the needed length. */
EM_API int em_tensor_format(const em_tensor *t, char *buf, size_t cap);
/* Prints em_tensor_format to stdout with a trailing newline. */
EM_API void em_tensor_print(const em_tensor *t);

/* ------------------------------------------------------------------------ */
/* Views (share storage with their input)                                    */
/* ------------------------------------------------------------------------ */

/* shape may contain one -1, inferred. reshape copies when no view exists;
 * view fails with EM_ERR_SHAPE then. */
EM_API em_tensor *em_reshape(const em_tensor *t, int ndim, const int64_t *shape);
EM_API em_tensor *em_view(const em_tensor *t, int ndim, const int64_t *shape);
/* Flattens dims start..end (inclusive) into one. */
EM_API em_tensor *em_flatten(const em_tensor *t, int start_dim, int end_dim);
EM_API em_tensor *em_transpose(const em_tensor *t, int dim0, int dim1);
/* dims is a permutation of 0..ndim-1. */
EM_API em_tensor *em_permute(const em_tensor *t, int ndim, const int *dims);
/* Transpose of a tensor with at most 2 dims. */
EM_API em_tensor *em_T(const em_tensor *t);
/* Removes dim if its size is 1 (unchanged otherwise). */
EM_API em_tensor *em_squeeze(const em_tensor *t, int dim);
/* Removes every size-1 dim. */
EM_API em_tensor *em_squeeze_all(const em_tensor *t);
/* Inserts a size-1 dim at position dim (-1 appends). */
EM_API em_tensor *em_unsqueeze(const em_tensor *t, int dim);
/* Broadcasts size-1 dims to `shape` without copying (-1 keeps a size). */
EM_API em_tensor *em_expand(const em_tensor *t, int ndim, const int64_t *shape);
/* Elements start..start+length-1 of dim. */
EM_API em_tensor *em_narrow(const em_tensor *t, int dim, int64_t start, int64_t length);
/* Python-style t[start:end:step] along dim (step > 0; start/end clamp,
 * negative values count from the end). */
EM_API em_tensor *em_slice(const em_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
/* t[..., index, ...] along dim; removes that dim. */
EM_API em_tensor *em_select(const em_tensor *t, int dim, int64_t index);

/* A contiguous tensor with t's values (t itself, retained, if contiguous). */
EM_API em_tensor *em_contiguous(const em_tensor *t);
/* A contiguous copy that never shares storage with t. */
EM_API em_tensor *em_clone(const em_tensor *t);
/* A copy on `device` (t retained when it already lives there). */
EM_API em_tensor *em_tensor_to(const em_tensor *t, em_device *device);
/* A copy converted to dtype (t retained when the dtype already matches).
 * Float to integer truncates toward zero; to bool tests != 0. */
EM_API em_tensor *em_cast(const em_tensor *t, em_dtype dtype);

/* ------------------------------------------------------------------------ */
/* Elementwise ops (broadcasting, type promotion)                            */
/* ------------------------------------------------------------------------ */

EM_API em_tensor *em_add(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_sub(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_mul(const em_tensor *a, const em_tensor *b);
/* True division: integer inputs give f32. */
EM_API em_tensor *em_div(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_pow(const em_tensor *a, const em_tensor *b);
/* NaN propagates, as torch.maximum/minimum. */
EM_API em_tensor *em_maximum(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_minimum(const em_tensor *a, const em_tensor *b);

/* Scalar forms: t op s, with the scalar promotion rule stated at the top. */
EM_API em_tensor *em_add_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_sub_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_mul_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_div_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_pow_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_maximum_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_minimum_scalar(const em_tensor *t, double s);

/* Comparisons give bool tensors. */
EM_API em_tensor *em_eq(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_ne(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_lt(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_le(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_gt(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_ge(const em_tensor *a, const em_tensor *b);
EM_API em_tensor *em_eq_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_ne_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_lt_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_le_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_gt_scalar(const em_tensor *t, double s);
EM_API em_tensor *em_ge_scalar(const em_tensor *t, double s);

/* cond ? a : b elementwise; cond must be bool; all three broadcast. */
EM_API em_tensor *em_where(const em_tensor *cond, const em_tensor *a, const em_tensor *b);
/* min(max(t, lo), hi); pass -INFINITY / INFINITY to leave a side open. */
EM_API em_tensor *em_clamp(const em_tensor *t, double lo, double hi);
/* t with value wherever mask (bool, broadcast to t) is true. */
EM_API em_tensor *em_masked_fill(const em_tensor *t, const em_tensor *mask, double value);

/* Unary ops. Float-only functions (exp, log, sqrt, ...) on integer or bool
 * input compute in f32, as torch does; neg/abs/square/relu keep integers. */
EM_API em_tensor *em_neg(const em_tensor *t);
EM_API em_tensor *em_abs(const em_tensor *t);
EM_API em_tensor *em_exp(const em_tensor *t);
EM_API em_tensor *em_log(const em_tensor *t);
EM_API em_tensor *em_sqrt(const em_tensor *t);
EM_API em_tensor *em_rsqrt(const em_tensor *t);
EM_API em_tensor *em_sin(const em_tensor *t);
EM_API em_tensor *em_cos(const em_tensor *t);
EM_API em_tensor *em_tanh(const em_tensor *t);
EM_API em_tensor *em_sigmoid(const em_tensor *t);
EM_API em_tensor *em_relu(const em_tensor *t);
/* approximate_tanh false: x * Phi(x) (erf form); true: the tanh formula. */
EM_API em_tensor *em_gelu(const em_tensor *t, bool approximate_tanh);
EM_API em_tensor *em_silu(const em_tensor *t);
/* log(1 + exp(beta x)) / beta, linear above threshold (torch defaults 1, 20). */
EM_API em_tensor *em_softplus(const em_tensor *t, double beta, double threshold);
EM_API em_tensor *em_square(const em_tensor *t);
EM_API em_tensor *em_reciprocal(const em_tensor *t);
/* The error function (torch.erf). */
EM_API em_tensor *em_erf(const em_tensor *t);
/* -1, 0 or 1 by the sign of each element (NaN stays NaN); keeps integers. */
EM_API em_tensor *em_sign(const em_tensor *t);

/* ------------------------------------------------------------------------ */
/* Reductions. dims: ndims dimension indices; ndims 0 (dims NULL) = all.     */
/* keepdim keeps reduced dims with size 1. Sum of bool/int gives i64.        */
/* ------------------------------------------------------------------------ */

EM_API em_tensor *em_sum(const em_tensor *t, const int *dims, int ndims, bool keepdim);
EM_API em_tensor *em_mean(const em_tensor *t, const int *dims, int ndims, bool keepdim);
/* Values of the max/min (NaN propagates). Empty reductions are an error. */
EM_API em_tensor *em_max(const em_tensor *t, const int *dims, int ndims, bool keepdim);
EM_API em_tensor *em_min(const em_tensor *t, const int *dims, int ndims, bool keepdim);
/* i64 index of the first max/min along dim; EM_ALL_DIMS flattens first. */
#define EM_ALL_DIMS (-1000)
EM_API em_tensor *em_argmax(const em_tensor *t, int dim, bool keepdim);
EM_API em_tensor *em_argmin(const em_tensor *t, int dim, bool keepdim);
/* Variance/standard deviation; unbiased divides by N-1. */
EM_API em_tensor *em_var(const em_tensor *t, const int *dims, int ndims, bool unbiased, bool keepdim);
EM_API em_tensor *em_std(const em_tensor *t, const int *dims, int ndims, bool unbiased, bool keepdim);
EM_API em_tensor *em_logsumexp(const em_tensor *t, const int *dims, int ndims, bool keepdim);
EM_API em_tensor *em_softmax(const em_tensor *t, int dim);
EM_API em_tensor *em_log_softmax(const em_tensor *t, int dim);

/* ------------------------------------------------------------------------ */
/* Linear algebra                                                            */
/* ------------------------------------------------------------------------ */

/* torch.matmul: 1-D x 1-D dot, 2-D x 2-D, 1-D promoted by (un)squeezing,
 * and batched with broadcast batch dims. Floating dtypes only. */
EM_API em_tensor *em_matmul(const em_tensor *a, const em_tensor *b);
/* x W^T + b as one op (torch.nn.functional.linear). x: [..., in],
 * weight: [out, in], bias: [out] or NULL. */
EM_API em_tensor *em_linear(const em_tensor *x, const em_tensor *weight, const em_tensor *bias);
/* relu(x W^T + b): em_relu(em_linear(x, weight, bias)) with the same values
 * (the product rounds as em_linear's) and gradients, computed as one op
 * where the backend has the fused kernel (EM_OP_LINEAR_ACT; one autograd
 * node "linear_relu", which keeps the output instead of the
 * pre-activation), else as those two ops (also with EMBER_FUSED=0).
 * Sequential models run a Linear followed by a ReLU through it. */
EM_API em_tensor *em_linear_relu(const em_tensor *x, const em_tensor *weight,
                                 const em_tensor *bias);
/* c + a @ b for 2-D a, b; c broadcasts to the result. */
EM_API em_tensor *em_addmm(const em_tensor *c, const em_tensor *a, const em_tensor *b);

/* ------------------------------------------------------------------------ */
/* Data movement                                                             */
/* ------------------------------------------------------------------------ */

/* Joins n tensors of equal shape except along dim (dtypes promote). */
EM_API em_tensor *em_cat(const em_tensor *const *tensors, int n, int dim);
/* Joins n tensors of equal shape along a new dim. */
EM_API em_tensor *em_stack(const em_tensor *const *tensors, int n, int dim);
/* Entries of t along dim at the positions in index (1-D, i32 or i64). */
EM_API em_tensor *em_index_select(const em_tensor *t, int dim, const em_tensor *index);
/* out[i][j] = t[index[i][j]][j] for dim 0 (torch.gather); index i32/i64 with
 * t's ndim; out has index's shape. */
EM_API em_tensor *em_gather(const em_tensor *t, int dim, const em_tensor *index);
/* A copy of t with src added at the positions index gives along dim
 * (torch.scatter_add). */
EM_API em_tensor *em_scatter_add(const em_tensor *t, int dim, const em_tensor *index,
                                 const em_tensor *src);
/* Rows of weight [num, dim] picked by index (any shape): [..., dim]. */
EM_API em_tensor *em_embedding(const em_tensor *weight, const em_tensor *index);
/* i64 tensor [..., num_classes] with a 1 at each index (num_classes < 0:
 * max(index) + 1). */
EM_API em_tensor *em_one_hot(const em_tensor *index, int64_t num_classes);

/* ------------------------------------------------------------------------ */
/* In-place ops. They modify `self` (which may be a view) and return a      */
/* status. `other` broadcasts to self's shape; the result must fit self's   */
/* dtype (as torch: float into int is EM_ERR_DTYPE).                        */
/* ------------------------------------------------------------------------ */

EM_API em_status em_add_(em_tensor *self, const em_tensor *other);
EM_API em_status em_sub_(em_tensor *self, const em_tensor *other);
EM_API em_status em_mul_(em_tensor *self, const em_tensor *other);
EM_API em_status em_div_(em_tensor *self, const em_tensor *other);
EM_API em_status em_add_scalar_(em_tensor *self, double s);
/* self += alpha * other in one pass (torch: self.add_(other, alpha=alpha));
 * floating self only (EM_ERR_DTYPE); other broadcasts and is cast to self's
 * dtype. The optimizers' update. */
EM_API em_status em_add_scaled_(em_tensor *self, const em_tensor *other, double alpha);
EM_API em_status em_mul_scalar_(em_tensor *self, double s);
EM_API em_status em_clamp_(em_tensor *self, double lo, double hi);
EM_API em_status em_relu_(em_tensor *self);
EM_API em_status em_zero_(em_tensor *self);
EM_API em_status em_fill_(em_tensor *self, double value);
/* self <- src (broadcast, cast and across devices). */
EM_API em_status em_copy_(em_tensor *self, const em_tensor *src);
EM_API em_status em_masked_fill_(em_tensor *self, const em_tensor *mask, double value);
EM_API em_status em_scatter_add_(em_tensor *self, int dim, const em_tensor *index,
                                 const em_tensor *src);


/* ------------------------------------------------------------------------ */
/* Tensor dictionaries: ordered (name -> tensor) lists with string metadata, */
/* the currency of state dicts, checkpoints and optimizer state.             */
/* ------------------------------------------------------------------------ */

typedef struct em_tensor_dict em_tensor_dict;

/* An empty dictionary; NULL with EM_ERR_OUT_OF_MEMORY. */
EM_API em_tensor_dict *em_tensor_dict_create(void);
/* Releases the references the dictionary holds and frees it. NULL: no-op. */
EM_API void em_tensor_dict_destroy(em_tensor_dict *d);
/* Stores t under name (copied; any non-empty string), retaining t. An
 * existing entry of that name is replaced in place (keeping its position);
 * a new one is appended, so insertion order is kept. */
EM_API em_status em_tensor_dict_set(em_tensor_dict *d, const char *name, em_tensor *t);
/* The tensor stored under name (ownership rule as usual: a new reference),
 * or NULL with EM_ERR_INVALID_ARG naming the missing key. */
EM_API em_tensor *em_tensor_dict_get(const em_tensor_dict *d, const char *name);
/* True when name is present. */
EM_API bool em_tensor_dict_has(const em_tensor_dict *d, const char *name);
/* Number of entries (-1 for NULL). */
EM_API int em_tensor_dict_count(const em_tensor_dict *d);
/* The i-th name (insertion order), borrowed until the dictionary changes;
 * NULL when out of range. */
EM_API const char *em_tensor_dict_name(const em_tensor_dict *d, int i);
/* The i-th tensor (ownership rule as usual), NULL when out of range. */
EM_API em_tensor *em_tensor_dict_at(const em_tensor_dict *d, int i);
/* String metadata (saved in a checkpoint's header): set replaces; get gives
 * the value (borrowed until the dictionary changes) or NULL when absent. */
EM_API em_status em_tensor_dict_set_meta(em_tensor_dict *d, const char *key, const char *value);
EM_API const char *em_tensor_dict_get_meta(const em_tensor_dict *d, const char *key);
EM_API int em_tensor_dict_meta_count(const em_tensor_dict *d);
/* The i-th metadata key, borrowed; NULL when out of range. */
EM_API const char *em_tensor_dict_meta_key(const em_tensor_dict *d, int i);

/* ------------------------------------------------------------------------ */
/* Autograd (reverse mode, as torch.autograd)                                */
/*                                                                          */
/* A floating-point leaf marked with em_requires_grad_ makes every op that  */
/* uses it (with grad mode on) record how its result was made: the result   */
/* gets a grad_fn and requires grad. em_backward then accumulates d(output)/ */
/* d(leaf) into each leaf's .grad; em_autograd_grad returns gradients       */
/* without touching .grad. Gradients of broadcast inputs are summed back to */
/* the input's shape and cast to its dtype. Integer and bool results carry  */
/* no gradient. Ties in max/min/maximum/minimum share the gradient equally  */
/* (as torch.amax). Graph nodes hold the tensors they need ("saved"); an    */
/* in-place op that changes a saved tensor makes the later backward fail    */
/* with EM_ERR_STATE naming the op. In-place ops are not recorded: on a     */
/* tensor that requires grad they are refused while grad mode is on (wrap   */
/* parameter updates in em_set_grad_enabled(false), as torch.no_grad()).    */
/* The graph lives as long as its results: releasing them frees it.         */
/* ------------------------------------------------------------------------ */

/* Marks a leaf as requiring gradients (or not). Floating dtypes only
 * (EM_ERR_DTYPE). A non-leaf cannot stop requiring grad (EM_ERR_STATE; use
 * em_detach); asking a non-leaf to require grad is a no-op. */
EM_API em_status em_requires_grad_(em_tensor *t, bool requires_grad);
/* True when t requires grad (a marked leaf or a recorded result). */
EM_API bool em_requires_grad(const em_tensor *t);
/* True when t has no grad_fn (made by the user, not by a recorded op). */
EM_API bool em_is_leaf(const em_tensor *t);
/* The name of the op that made t ("mul", "sum", ...), or NULL for a leaf.
 * Static string. */
EM_API const char *em_grad_fn_name(const em_tensor *t);
/* t's accumulated gradient (same shape, dtype and device as t), or NULL
 * with no error when none was computed yet. The gradient tensor itself, not
 * a copy: the caller may update it in place. Ownership rule as usual. */
EM_API em_tensor *em_grad(const em_tensor *t);
/* Replaces t's gradient by grad (same shape, dtype, device; retained), or
 * clears it when grad is NULL (torch: t.grad = None). */
EM_API em_status em_set_grad(em_tensor *t, const em_tensor *grad);
/* Fills t's gradient with zeros in place (keeping its memory); no-op when
 * t has none. A gradient with a graph (create_graph) is cleared instead. */
EM_API em_status em_zero_grad(em_tensor *t);
/* A view of t's data that requires no grad and has no history. */
EM_API em_tensor *em_detach(const em_tensor *t);

/* Grad mode, per thread, on by default. Returns the previous setting, so
 *   bool prev = em_set_grad_enabled(false); ... em_set_grad_enabled(prev);
 * is torch.no_grad(). With grad mode off nothing is recorded. */
EM_API bool em_set_grad_enabled(bool enabled);
EM_API bool em_is_grad_enabled(void);
/* Anomaly mode (all threads, off by default): every gradient a backward
 * formula produces is checked, and the first NaN or Inf fails the backward
 * with EM_ERR_STATE naming the op whose backward produced it. Slow: it
 * reads each gradient to the host. */
EM_API void em_set_anomaly_enabled(bool enabled);
EM_API bool em_is_anomaly_enabled(void);

/* Backpropagates from output, accumulating into the .grad of every leaf
 * that requires grad. grad_output is d(something)/d(output) with output's
 * shape; NULL means 1 and is only valid for a one-element output. The
 * graph's saved tensors are freed unless retain_graph (a second backward
 * through a freed graph is EM_ERR_STATE). create_graph records the backward
 * pass itself, so the gradients have a graph (second derivatives); it
 * implies retain_graph. Note that a create_graph gradient stored in .grad
 * refers back to the leaf: clear it (em_set_grad(t, NULL)) to free both. */
EM_API em_status em_backward(const em_tensor *output, const em_tensor *grad_output,
                             bool retain_graph, bool create_graph);
/* torch.autograd.grad: the gradients of the outputs (weighted by
 * grad_outputs, which may be NULL or hold NULLs for one-element outputs)
 * with respect to each input, written to grads[0..n_inputs-1] (ownership
 * rule as usual); .grad is not touched and only the part of the graph
 * that leads to the inputs runs. Inputs must require grad; an input the
 * outputs do not depend on is EM_ERR_INVALID_ARG unless allow_unused
 * (then its entry is NULL). On failure every grads[i] is NULL. */
EM_API em_status em_autograd_grad(int n_outputs, const em_tensor *const *outputs,
                                  const em_tensor *const *grad_outputs, int n_inputs,
                                  const em_tensor *const *inputs, em_tensor **grads,
                                  bool retain_graph, bool create_graph, bool allow_unused);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
