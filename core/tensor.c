/*
 * tensor.c — the tensor and storage objects: allocation, reference counts,
 * scopes (autorelease pools), metadata queries and host I/O.
 * Not for views (views.c), kernels (plugins) or op semantics (ops_*.c).
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Geometry helpers                                                          */
/* ------------------------------------------------------------------------ */

int64_t em__numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void em__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
}

int em__wrap_dim(int dim, int ndim, const char *op)
{
    int n = ndim > 0 ? ndim : 1; /* a 0-d tensor accepts dim 0 / -1 as torch does */
    int d = dim < 0 ? dim + n : dim;
    if (d < 0 || d >= n) {
        em__fail(EM_ERR_INVALID_ARG, "%s: dim %d is out of range for a tensor with %d dims "
                 "(valid: %d..%d)", op, dim, ndim, -n, n - 1);
        return -1;
    }
    return d;
}

const char *em__shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t used = 0;
    int n = snprintf(buf, cap, "[");
    used = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ndim && used < cap; i++) {
        n = snprintf(buf + used, cap - used, i ? ",%" PRId64 : "%" PRId64, shape[i]);
        if (n > 0) used += (size_t)n;
    }
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

const char *em__describe(const em_tensor *t, char *buf, size_t cap)
{
    if (!t) {
        snprintf(buf, cap, "NULL");
        return buf;
    }
    char shape[160];
    snprintf(buf, cap, "%s%s on %s", em_dtype_name(t->dtype),
             em__shape_str(t->ndim, t->shape, shape, sizeof shape),
             t->storage && t->storage->device ? t->storage->device->name : "?");
    return buf;
}

em_tdesc em__desc(const em_tensor *t)
{
    em_tdesc d;
    memset(&d, 0, sizeof d);
    d.buffer = t->storage->buffer;
    d.offset = t->offset;
    d.dtype = (int32_t)t->dtype;
    d.ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) {
        d.shape[i] = t->shape[i];
        d.strides[i] = t->strides[i];
    }
    return d;
}

em_status em__check_writable(const char *name, const em_tensor *t)
{
    for (int i = 0; i < t->ndim; i++) {
        if (t->strides[i] == 0 && t->shape[i] > 1) {
            char d[200];
            return em__fail(EM_ERR_INVALID_ARG, "%s: cannot write in place into %s: several of its "
                            "elements share one memory location (an expanded view); use "
                            "em_clone first", name, em__describe(t, d, sizeof d));
        }
    }
    return EM_OK;
}

/* ------------------------------------------------------------------------ */
/* Scopes: a per-thread stack of lists of owned references.                  */
/* ------------------------------------------------------------------------ */

#define EM_SCOPE_MAX_DEPTH 64

typedef struct scope_list {
    em_tensor **items;
    size_t count, cap;
} scope_list;

typedef struct scope_stack {
    int depth;
    scope_list lists[EM_SCOPE_MAX_DEPTH];
} scope_stack;

static _Thread_local scope_stack *tl_scopes;
static pthread_key_t scope_key;
static pthread_once_t scope_key_once = PTHREAD_ONCE_INIT;

static void scope_stack_destroy(void *p)
{
    scope_stack *s = p;
    if (!s) return;
    for (int i = 0; i < EM_SCOPE_MAX_DEPTH; i++) {
        for (size_t j = 0; j < s->lists[i].count; j++) em_tensor_release(s->lists[i].items[j]);
        free(s->lists[i].items);
    }
    free(s);
}

static void scope_key_create(void) { pthread_key_create(&scope_key, scope_stack_destroy); }

static scope_stack *scopes(bool create)
{
    if (tl_scopes || !create) return tl_scopes;
    pthread_once(&scope_key_once, scope_key_create);
    tl_scopes = calloc(1, sizeof *tl_scopes);
    if (tl_scopes) pthread_setspecific(scope_key, tl_scopes);
    return tl_scopes;
}

static bool scope_push(scope_list *l, em_tensor *t)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        em_tensor **items = realloc(l->items, cap * sizeof *items);
        if (!items) return false;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = t;
    return true;
}

em_tensor *em__own(em_tensor *t)
{
    scope_stack *s = tl_scopes;
    if (!t || !s || s->depth == 0) return t;
    if (!scope_push(&s->lists[s->depth - 1], t)) {
        em_tensor_release(t);
        em__fail(EM_ERR_OUT_OF_MEMORY, "out of memory growing the scope's list");
        return NULL;
    }
    return t;
}

em_status em_scope_begin(void)
{
    scope_stack *s = scopes(true);
    if (!s) return em__fail(EM_ERR_OUT_OF_MEMORY, "em_scope_begin: out of memory");
    if (s->depth >= EM_SCOPE_MAX_DEPTH)
        return em__fail(EM_ERR_STATE, "em_scope_begin: scopes nested deeper than %d",
                        EM_SCOPE_MAX_DEPTH);
    s->lists[s->depth].count = 0;
    s->depth++;
    return EM_OK;
}

em_status em_scope_end(void)
{
    scope_stack *s = tl_scopes;
    if (!s || s->depth == 0)
        return em__fail(EM_ERR_STATE, "em_scope_end: no open scope (unbalanced with em_scope_begin)");
    scope_list *l = &s->lists[s->depth - 1];
    /* Release newest first: views made late often hold the only other refs. */
    for (size_t j = l->count; j-- > 0;) em_tensor_release(l->items[j]);
    l->count = 0;
    s->depth--;
    return EM_OK;
}

em_tensor *em_scope_keep(em_tensor *t)
{
    if (!t) {
        em__null_arg("em_scope_keep", "t");
        return NULL;
    }
    scope_stack *s = tl_scopes;
    if (!s || s->depth == 0) {
        em__fail(EM_ERR_STATE, "em_scope_keep: no open scope");
        return NULL;
    }
    scope_list *l = &s->lists[s->depth - 1];
    for (size_t j = l->count; j-- > 0;) {
        if (l->items[j] != t) continue;
        l->items[j] = l->items[--l->count];
        if (s->depth >= 2 && !scope_push(&s->lists[s->depth - 2], t)) {
            em_tensor_release(t);
            em__fail(EM_ERR_OUT_OF_MEMORY, "em_scope_keep: out of memory");
            return NULL;
        }
        return t;
    }
    em__fail(EM_ERR_STATE, "em_scope_keep: the tensor is not owned by the innermost scope");
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Allocation and reference counting                                         */
/* ------------------------------------------------------------------------ */

static em_storage *storage_create(em_device *dev, size_t nbytes)
{
    em_storage *s = malloc(sizeof *s);
    if (!s) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "out of host memory for a storage header");
        return NULL;
    }
    atomic_init(&s->refcount, 1);
    s->device = dev;
    s->buffer = NULL;
    s->nbytes = nbytes;
    s->version = 0;
    s->guarded = false;
    if (nbytes > 0) {
        em__device_lock(&dev->lock);
        em_status st = dev->backend->table.buffer_alloc(dev->ctx, nbytes, &s->buffer);
        em__device_unlock(&dev->lock);
        if (st != EM_OK || !s->buffer) {
            if (st == EM_OK) st = EM_ERR_OUT_OF_MEMORY;
            em__error_prefix("allocating %zu bytes on %s: ", nbytes, dev->name);
            if (em_last_status() == EM_OK) em__fail(st, "allocating %zu bytes on %s failed", nbytes, dev->name);
            free(s);
            return NULL;
        }
    }
    return s;
}

static void storage_release(em_storage *s)
{
    if (!s) return;
    if (atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
    if (s->guarded) em__guard_forget(s->device, s->buffer);
    if (s->buffer) s->device->backend->table.buffer_free(s->device->ctx, s->buffer);
    free(s);
}

em_tensor *em__alloc(em_device *dev, em_dtype dtype, int ndim, const int64_t *shape)
{
    if (!dev) {
        if (em_last_status() == EM_OK) em__fail(EM_ERR_DEVICE, "no device to allocate on");
        return NULL;
    }
    if (ndim < 0 || ndim > EM_MAX_DIMS) {
        em__fail(EM_ERR_INVALID_ARG, "a tensor has 0 to %d dims, not %d", EM_MAX_DIMS, ndim);
        return NULL;
    }
    if (!em__dtype_valid(dtype)) {
        em__fail(EM_ERR_DTYPE, "invalid dtype value %d", (int)dtype);
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char buf[160];
            em__fail(EM_ERR_SHAPE, "negative size in shape %s", em__shape_str(ndim, shape, buf, sizeof buf));
            return NULL;
        }
        if (shape[i] && numel > INT64_MAX / 16 / shape[i]) {
            char buf[160];
            em__fail(EM_ERR_OUT_OF_MEMORY, "shape %s is too large", em__shape_str(ndim, shape, buf, sizeof buf));
            return NULL;
        }
        numel *= shape[i];
    }
    em_tensor *t = malloc(sizeof *t);
    if (!t) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "out of host memory for a tensor header");
        return NULL;
    }
    size_t data_bytes = (size_t)numel * em_dtype_size(dtype);
    bool guard = em__guard_mode() && data_bytes > 0;
    t->storage = storage_create(dev, data_bytes + (guard ? 2 * EM_GUARD_BYTES : 0));
    if (!t->storage) {
        free(t);
        return NULL;
    }
    if (guard) { /* EMBER_GUARD=1: the data sits between two guard regions */
        if (em__guard_register(dev, t->storage->buffer, data_bytes) != EM_OK) {
            storage_release(t->storage);
            free(t);
            return NULL;
        }
        t->storage->guarded = true;
    }
    atomic_init(&t->refcount, 1);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    em__contiguous_strides(ndim, shape, t->strides);
    t->offset = guard ? (int64_t)(EM_GUARD_BYTES / em_dtype_size(dtype)) : 0;
    t->numel = numel;
    t->requires_grad = false;
    t->grad_fn = NULL;
    t->grad = NULL;
    return t;
}

em_tensor *em__make_view(const em_tensor *base, int ndim, const int64_t *shape,
                         const int64_t *strides, int64_t offset)
{
    em_tensor *t = malloc(sizeof *t);
    if (!t) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "out of host memory for a view header");
        return NULL;
    }
    atomic_init(&t->refcount, 1);
    t->storage = base->storage;
    atomic_fetch_add_explicit(&t->storage->refcount, 1, memory_order_relaxed);
    t->dtype = base->dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->strides[i] = strides[i];
    }
    t->offset = offset;
    t->numel = em__numel(ndim, shape);
    t->requires_grad = false;
    t->grad_fn = NULL;
    t->grad = NULL;
    return t;
}

em_tensor *em_tensor_retain(em_tensor *t)
{
    if (t) atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
    return t;
}

void em_tensor_release(em_tensor *t)
{
    if (!t) return;
    if (atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) != 1) return;
    if (t->grad_fn || t->grad) em__ag_tensor_free(t);
    storage_release(t->storage);
    free(t);
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                  */
/* ------------------------------------------------------------------------ */

int em_tensor_ndim(const em_tensor *t) { return t ? t->ndim : -1; }

int64_t em_tensor_dim(const em_tensor *t, int dim)
{
    if (!t) return -1;
    int d = dim < 0 ? dim + t->ndim : dim;
    return d >= 0 && d < t->ndim ? t->shape[d] : -1;
}

int64_t em_tensor_stride(const em_tensor *t, int dim)
{
    if (!t) return 0;
    int d = dim < 0 ? dim + t->ndim : dim;
    return d >= 0 && d < t->ndim ? t->strides[d] : 0;
}

int em_tensor_shape(const em_tensor *t, int64_t *shape)
{
    if (!t) return -1;
    if (shape)
        for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    return t->ndim;
}

int64_t em_tensor_numel(const em_tensor *t) { return t ? t->numel : -1; }
int64_t em_tensor_offset(const em_tensor *t) { return t ? t->offset : 0; }
em_dtype em_tensor_dtype(const em_tensor *t) { return t ? t->dtype : EM_F32; }
em_device *em_tensor_device(const em_tensor *t) { return t ? t->storage->device : NULL; }

bool em_tensor_is_contiguous(const em_tensor *t)
{
    if (!t) return false;
    if (t->numel == 0) return true; /* no element is out of place (as torch) */
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 1) continue;
        if (t->strides[i] != expected) return false;
        expected *= t->shape[i];
    }
    return true;
}

bool em_tensor_shares_storage(const em_tensor *a, const em_tensor *b)
{
    return a && b && a->storage == b->storage;
}

/* ------------------------------------------------------------------------ */
/* Creation from host data and reading back                                  */
/* ------------------------------------------------------------------------ */

em_tensor *em_tensor_from_data(const void *data, em_dtype dtype, int ndim, const int64_t *shape,
                               em_device *device)
{
    static const char *name = "em_tensor_from_data";
    if (ndim > 0 && !shape) {
        em__null_arg(name, "shape");
        return NULL;
    }
    if (!device) device = em__default_device();
    if (!device) return NULL;
    em_tensor *t = em__alloc(device, dtype, ndim, shape);
    if (!t) return NULL;
    size_t bytes = (size_t)t->numel * em_dtype_size(dtype);
    if (bytes > 0) {
        if (!data) {
            em_tensor_release(t);
            em__null_arg(name, "data");
            return NULL;
        }
        em__device_lock(&device->lock);
        em_status st = device->backend->table.buffer_upload(
            device->ctx, t->storage->buffer, (size_t)t->offset * em_dtype_size(dtype), data, bytes);
        em__device_unlock(&device->lock);
        if (st != EM_OK) {
            em__error_prefix("%s: upload of %zu bytes to %s: ", name, bytes, device->name);
            em_tensor_release(t);
            return NULL;
        }
    }
    return em__own(t);
}

em_tensor *em_tensor_from_floats(const float *data, int ndim, const int64_t *shape)
{
    return em_tensor_from_data(data, EM_F32, ndim, shape, NULL);
}

em_tensor *em_tensor_from_doubles(const double *data, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > EM_MAX_DIMS || (ndim > 0 && !shape)) {
        return em_tensor_from_data(data, EM_F64, ndim, shape, NULL); /* reports the error */
    }
    int64_t n = em__numel(ndim, shape);
    if (n > 0 && !data) return em_tensor_from_data(NULL, EM_F32, ndim, shape, NULL);
    float *tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof *tmp);
    if (!tmp) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "em_tensor_from_doubles: out of host memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) tmp[i] = (float)data[i];
    em_tensor *t = em_tensor_from_data(tmp, EM_F32, ndim, shape, NULL);
    free(tmp);
    return t;
}

em_tensor *em_tensor_from_ints(const int64_t *data, int ndim, const int64_t *shape)
{
    return em_tensor_from_data(data, EM_I64, ndim, shape, NULL);
}

em_tensor *em_scalar(double value)
{
    float f = (float)value;
    return em_tensor_from_data(&f, EM_F32, 0, NULL, NULL);
}

em_tensor *em_scalar_int(int64_t value) { return em_tensor_from_data(&value, EM_I64, 0, NULL, NULL); }

em_status em_tensor_read(const em_tensor *t, void *dst, size_t dst_bytes)
{
    static const char *name = "em_tensor_read";
    if (!t) return em__null_arg(name, "t");
    size_t bytes = (size_t)t->numel * em_dtype_size(t->dtype);
    if (bytes == 0) return EM_OK;
    if (!dst) return em__null_arg(name, "dst");
    if (dst_bytes < bytes) {
        char d[200];
        return em__fail(EM_ERR_INVALID_ARG, "%s: destination holds %zu bytes, %s needs %zu",
                        name, dst_bytes, em__describe(t, d, sizeof d), bytes);
    }
    em_tensor *c = em__contiguous(name, t);
    if (!c) return em_last_status();
    em_device *dev = c->storage->device;
    size_t esz = em_dtype_size(c->dtype);
    em__device_lock(&dev->lock);
    em_status st = dev->backend->table.buffer_download(dev->ctx, c->storage->buffer,
                                                       (size_t)c->offset * esz, dst, bytes);
    em__device_unlock(&dev->lock);
    if (st != EM_OK) em__error_prefix("%s: download from %s: ", name, dev->name);
    em_tensor_release(c);
    return st;
}

em_status em_tensor_read_f64(const em_tensor *t, double *dst, size_t count)
{
    static const char *name = "em_tensor_read_f64";
    if (!t) return em__null_arg(name, "t");
    if ((int64_t)count < t->numel)
        return em__fail(EM_ERR_INVALID_ARG, "%s: destination holds %zu values, tensor has %" PRId64,
                        name, count, t->numel);
    em_tensor *d = em__cast(name, t, EM_F64);
    if (!d) return em_last_status();
    em_status st = em_tensor_read(d, dst, count * sizeof(double));
    em_tensor_release(d);
    return st;
}

em_status em_tensor_item(const em_tensor *t, double *value)
{
    static const char *name = "em_tensor_item";
    if (!t) return em__null_arg(name, "t");
    if (!value) return em__null_arg(name, "value");
    if (t->numel != 1) {
        char d[200];
        return em__fail(EM_ERR_SHAPE, "%s: needs a tensor with one element, got %s", name,
                        em__describe(t, d, sizeof d));
    }
    return em_tensor_read_f64(t, value, 1);
}
