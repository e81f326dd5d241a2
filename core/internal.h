/*
 * internal.h — structures and functions shared by the core's source files.
 *
 * Not installed, not API. Internal non-static functions are named em__*.
 * Who owns what:
 *   error.c     thread-local status/message, em__fail, em__null_arg
 *   log.c       EMBER_LOG levels and em__log
 *   dtype.c     dtype names, sizes, promotion
 *   loader.c    plugin discovery, dlopen, ABI checks, EMBER_BACKEND selection
 *   device.c    the device list and em_device_* API
 *   device_lock.c  the first-come-first-served lock around plugin calls
 *   tensor.c    tensor/storage structs, refcounts, scopes, metadata, host I/O
 *   views.c     reshape/transpose/... (metadata only)
 *   dispatch.c  kernel lookup, contiguity, CPU fallback, running an op
 *   ops_*.c     the public ops: shape checks, promotion, then em__run_op
 */
#ifndef EMBER_CORE_INTERNAL_H
#define EMBER_CORE_INTERNAL_H

#include "ember.h"
#include "ember_plugin.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#define EM_INTERNAL __attribute__((visibility("hidden")))

/* ---------------- backends and devices (loader.c, device.c) ------------- */

/* Kernel lookup array size: op ids are below EM_OP_COUNT_HINT. */
typedef struct em_kernel_slot {
    em_kernel_fn fn;
    uint32_t flags;
} em_kernel_slot;

struct em_backend {
    char name[64];
    char path[1024];
    char version[64];
    void *dl_handle;                  /* from dlopen                          */
    em_backend_table table;           /* copy, zero-filled past struct_size   */
    /* kernels[op][dtype]; fn NULL when the plugin has none */
    em_kernel_slot kernels[EM_OP_COUNT_HINT][EM_DTYPE_COUNT];
    int first_device;                 /* index into the global device list    */
    int device_count;
};

/* The per-device lock around plugin calls, first come first served
 * (device_lock.c). */
typedef struct em_device_lock {
    pthread_mutex_t mu;
    pthread_cond_t turn;
    uint64_t next, serving;           /* tickets handed out / now served      */
    int waiting;
} em_device_lock;

EM_INTERNAL void em__device_lock_init(em_device_lock *l);
EM_INTERNAL void em__device_lock_destroy(em_device_lock *l);
EM_INTERNAL void em__device_lock(em_device_lock *l);
EM_INTERNAL void em__device_unlock(em_device_lock *l);

struct em_device {
    em_backend *backend;
    int index;                        /* within the backend                   */
    void *ctx;                        /* plugin's device context (device_open)*/
    char name[96];                    /* "cpu:0"                              */
    em_plugin_device_info info;
    em_device_lock lock;              /* serialises calls into the plugin     */
};

/* Loads plugins once (a mutex and a flag, so em_shutdown can reset it);
 * returns the init status. */
EM_INTERNAL em_status em__ensure_init(void);
/* The CPU device, or NULL (with error set) when the CPU plugin is missing. */
EM_INTERNAL em_device *em__cpu_device(void);
/* The default device, initialising on demand; NULL with error set. */
EM_INTERNAL em_device *em__default_device(void);
/* The host services table handed to plugins. */
EM_INTERNAL const em_host_services *em__host_services(void);
/* Counts one fallback for op (logs it once per op). */
EM_INTERNAL void em__note_fallback(int op, const em_device *from);
EM_INTERNAL bool em__strict_mode(void);

/* Added by the loader (loader.c), for device.c. The device list is fixed
 * once em_init has run, except that em_device_find may append the devices
 * of a plugin it loads from a path; handles stay valid until em_shutdown. */
EM_INTERNAL int em__device_list_count(void);
EM_INTERNAL em_device *em__device_list_get(int i);
/* The CPU backend's first device, initialising on demand; NULL (no error
 * set) when there is no CPU backend. */
EM_INTERNAL em_device *em__loader_cpu(void);
/* The device EMBER_BACKEND selected at em_init; NULL with the loader's
 * message (EM_ERR_PLUGIN) set when the selection failed. */
EM_INTERNAL em_device *em__loader_default(void);
/* THE parser of device specs (EMBER_BACKEND and em_device_find): "" or
 * "auto", NAME, NAME:INDEX, or a path to a plugin .so (loaded on first use
 * when may_load). `who` names the asker in messages ("EMBER_BACKEND",
 * "em_device_find"). NULL with EM_ERR_PLUGIN / EM_ERR_DEVICE and a message
 * listing what was asked, what was tried and what is available. */
EM_INTERNAL em_device *em__resolve_device(const char *spec, const char *who, bool may_load);
/* Auto-selection rank of a device type (device.c): higher is preferred;
 * types ranked below EM_DEVICE_CPU's are only used when named. */
EM_INTERNAL int em__device_rank(int type);

/* ---------------- logging (log.c) --------------------------------------- */

EM_INTERNAL bool em__log_enabled(int level);
EM_INTERNAL void em__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Added by log.c: re-reads EMBER_LOG (em_init calls it). */
EM_INTERNAL void em__log_reload(void);
/* Added by log.c: a plugin's log line ("[ember] level: plugin: message"). */
EM_INTERNAL void em__log_plugin_v(int level, const char *plugin, const char *fmt, va_list ap);

/* ---------------- errors (error.c) -------------------------------------- */

/* Records status and a formatted message on this thread; returns status. */
EM_INTERNAL em_status em__fail(em_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* For a NULL tensor argument: records EM_ERR_NULL_ARG only if nothing is
 * pending. Returns EM_ERR_NULL_ARG. */
EM_INTERNAL em_status em__null_arg(const char *op, const char *arg);
/* Prefixes the pending message with context ("em_add(a f32[2,3], ...): "). */
EM_INTERNAL void em__error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Increments whenever an error is recorded on this thread (to tell whether a
 * plugin set a message). */
EM_INTERNAL unsigned em__error_serial(void);
/* The op's name ("add") for messages. */
EM_INTERNAL const char *em__op_name(int op);
/* The set_error host service: records a plugin's detail. */
EM_INTERNAL em_status em__plugin_set_error(em_status status, const char *fmt, ...);

/* ---------------- tensors (tensor.c) ------------------------------------ */

typedef struct em_storage {
    atomic_int refcount;
    em_device *device;
    void *buffer;                     /* plugin buffer handle                 */
    size_t nbytes;
    unsigned version;                 /* bumped by every in-place write; shared
                                         by all views (autograd checks it)    */
    bool guarded;                     /* EMBER_GUARD: guard regions around the
                                         data (see guard.c)                   */
} em_storage;

struct em_tensor {
    atomic_int refcount;
    em_storage *storage;
    em_dtype dtype;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[EM_MAX_DIMS];
    int64_t offset;                   /* in elements                          */
    int64_t numel;
    /* autograd (autograd.c); false/NULL for plain tensors */
    bool requires_grad;               /* a leaf marked so, or a recorded result */
    struct em_node *grad_fn;          /* strong; NULL for leaves              */
    struct em_tensor *grad;           /* a leaf's accumulated gradient; strong*/
};

/* A new tensor with fresh contiguous storage on dev (uninitialised). Its one
 * reference belongs to the caller (NOT yet to any scope: an op hands its
 * result to the scope with em__own once it has succeeded). NULL with error
 * set on failure. */
EM_INTERNAL em_tensor *em__alloc(em_device *dev, em_dtype dtype, int ndim, const int64_t *shape);
/* A new tensor header sharing t's storage with the given geometry; the
 * reference belongs to the caller, like em__alloc. */
EM_INTERNAL em_tensor *em__make_view(const em_tensor *t, int ndim, const int64_t *shape,
                                     const int64_t *strides, int64_t offset);
/* Frees a tensor's autograd state (grad_fn, grad); autograd.c. */
EM_INTERNAL void em__ag_tensor_free(em_tensor *t);
/* Hands a freshly created tensor (refcount 1) to the current scope, if any. */
EM_INTERNAL em_tensor *em__own(em_tensor *t);
EM_INTERNAL void em__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
EM_INTERNAL int64_t em__numel(int ndim, const int64_t *shape);
/* Normalises a possibly negative dim for a tensor of ndim dims; -1 and an
 * EM_ERR_INVALID_ARG message naming op when out of range. */
EM_INTERNAL int em__wrap_dim(int dim, int ndim, const char *op);
/* "f32[2,3]" into buf (for messages). Returns buf. */
EM_INTERNAL const char *em__describe(const em_tensor *t, char *buf, size_t cap);
EM_INTERNAL em_tdesc em__desc(const em_tensor *t);
/* EM_ERR_INVALID_ARG when t has several elements at one address (an
 * expanded view), which an in-place op cannot write. */
EM_INTERNAL em_status em__check_writable(const char *name, const em_tensor *t);

/* ---------------- dispatch (dispatch.c) --------------------------------- */

/* Runs op on dev with the given descriptors (buffers of dev; the caller has
 * checked devices, shapes and dtypes and built broadcast descriptors).
 * Handles kernel lookup, supports(), EM_KERNEL_CONTIGUOUS, the CPU fallback
 * and error context. `name` is the public function's name for messages. */
EM_INTERNAL em_status em__run_op(const char *name, em_device *dev, int op, const em_tdesc *in,
                                 int n_in, const em_tdesc *out, int n_out,
                                 const em_op_params *params);
/* Whether dev's backend registers a kernel for (op, key dtype): for callers that
 * pick between a fused op and a composition of others (never a CPU fallback). */
EM_INTERNAL bool em__has_kernel(const em_device *dev, int op, int dtype);
/* False when EMBER_FUSED=0: the DL library then composes the Adam step and the
 * cross-entropy from other ops even where a backend has the fused kernels
 * (for comparing the two, or to rule a fused kernel out when debugging). */
EM_INTERNAL bool em__fused_enabled(void);
/* EMBER_GUARD=1 (a checking mode for plugin writers and ember-conformance):
 * every tensor allocation gets EM_GUARD_BYTES of a known pattern before and
 * after its data, and after each kernel the dispatcher checks the guards of
 * its outputs: a kernel that wrote outside its output fails the op. */
EM_INTERNAL bool em__guard_mode(void);
#define EM_GUARD_BYTES 256
/* tensor.c: checks (and restores) the guards around buffer's data if it is a
 * guarded allocation on dev: EM_OK, or EM_ERR_BACKEND naming op and backend. */
EM_INTERNAL em_status em__guard_check(em_device *dev, void *buffer, const char *op_name);
/* guard.c: fills the guards of a new allocation of data_bytes (+ 2 guards) and
 * records it; em__guard_forget drops the record before the buffer is freed. */
EM_INTERNAL em_status em__guard_register(em_device *dev, void *buffer, size_t data_bytes);
EM_INTERNAL void em__guard_forget(em_device *dev, void *buffer);
/* ops_fused.c: the per-row cross-entropy of logits [N, C] (f32/f64, dense) with
 * class indices [N] (i32/i64) through the fused kernel, recorded for autograd;
 * 0 in rows whose target is ignore_index. *rows gets a new reference in scope.
 * EM_ERR_UNSUPPORTED, with no error recorded, when the fused path does not
 * apply (then compose the loss from public ops); another status on failure. */
EM_INTERNAL em_status em__cross_entropy_rows(const em_tensor *logits, const em_tensor *target,
                                             int64_t ignore_index, double label_smoothing,
                                             em_tensor **rows);
/* A descriptor of t broadcast to shape (ndim dims); t must broadcast. */
EM_INTERNAL em_tdesc em__desc_broadcast(const em_tensor *t, int ndim, const int64_t *shape);
/* Broadcasts two shapes; false when they don't. */
EM_INTERNAL bool em__broadcast_shapes(int na, const int64_t *sa, int nb, const int64_t *sb,
                                      int *nout, int64_t *sout);
/* "[2,3]" into buf. */
EM_INTERNAL const char *em__shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
/* Runs a FILL/COPY/CAST-like single-output op; helpers used across ops. */
EM_INTERNAL em_status em__fill(em_tensor *t, double value);
EM_INTERNAL em_status em__copy_into(const char *name, em_tensor *dst, const em_tensor *src);
/* A tensor with t's values in dtype (a new reference; t retained if same). */
EM_INTERNAL em_tensor *em__cast(const char *name, const em_tensor *t, em_dtype dtype);
/* A contiguous tensor with t's values (t retained if already contiguous). */
EM_INTERNAL em_tensor *em__contiguous(const char *name, const em_tensor *t);
/* Copies bytes between buffers of two devices through host staging. */
EM_INTERNAL em_status em__move_bytes(em_device *from, void *from_buf, size_t from_off,
                                     em_device *to, void *to_buf, size_t to_off, size_t bytes);
/* Moves data between devices; dst has src's shape and dtype, contiguous. */
EM_INTERNAL em_status em__transfer(const em_tensor *src, em_tensor *dst);
/* Checks that all non-NULL tensors share a device; EM_ERR_DEVICE otherwise. */
EM_INTERNAL em_status em__same_device(const char *name, const em_tensor *const *ts, int n);

/* ---------------- dtypes (dtype.c) -------------------------------------- */

EM_INTERNAL bool em__dtype_valid(int dtype);
EM_INTERNAL bool em__dtype_is_int(em_dtype dtype); /* i32, i64 (not bool) */

#endif /* EMBER_CORE_INTERNAL_H */
