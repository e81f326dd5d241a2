/*
 * dataset.c — the dataset interface (a length and a get-item callback that
 * writes one sample's fields to host memory), TensorDataset, and the
 * accessors the DataLoader (dataloader.c) uses. Public API: ember_data.h.
 * Not for batching or threads (dataloader.c) or file formats (csv.c).
 */
#include "ember_data.h"
#include "internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct em_dataset {
    atomic_int refcount;
    em_dataset_def def;
    size_t field_bytes[EM_DATASET_MAX_FIELDS];
};

static int64_t shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

em_dataset *em_dataset_create(const em_dataset_def *def)
{
    static const char *name = "em_dataset_create";
    if (!def) {
        em__null_arg(name, "def");
        return NULL;
    }
    if (!def->len) {
        em__null_arg(name, "def->len");
        return NULL;
    }
    if (!def->get_item) {
        em__null_arg(name, "def->get_item");
        return NULL;
    }
    if (def->n_fields < 1 || def->n_fields > EM_DATASET_MAX_FIELDS) {
        em__fail(EM_ERR_INVALID_ARG, "%s: n_fields is %d, must be 1..%d", name, def->n_fields,
                 EM_DATASET_MAX_FIELDS);
        return NULL;
    }
    size_t bytes[EM_DATASET_MAX_FIELDS] = {0};
    for (int f = 0; f < def->n_fields; f++) {
        if ((int)def->dtypes[f] < 0 || (int)def->dtypes[f] >= EM_DTYPE_COUNT) {
            em__fail(EM_ERR_DTYPE, "%s: field %d has invalid dtype %d", name, f,
                     (int)def->dtypes[f]);
            return NULL;
        }
        if (def->ndims[f] < 0 || def->ndims[f] > EM_MAX_DIMS - 1) {
            em__fail(EM_ERR_INVALID_ARG,
                     "%s: field %d has %d dims per sample, must be 0..%d (a batch adds one)",
                     name, f, def->ndims[f], EM_MAX_DIMS - 1);
            return NULL;
        }
        int64_t n = 1;
        for (int d = 0; d < def->ndims[f]; d++) {
            int64_t s = def->shapes[f][d];
            if (s < 0 || (s > 0 && n > INT64_MAX / 16 / s)) {
                em__fail(EM_ERR_INVALID_ARG, "%s: field %d has invalid size %lld in dim %d",
                         name, f, (long long)s, d);
                return NULL;
            }
            n *= s;
        }
        bytes[f] = (size_t)n * em_dtype_size(def->dtypes[f]);
    }
    em_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
        return NULL;
    }
    atomic_init(&ds->refcount, 1);
    ds->def = *def;
    memcpy(ds->field_bytes, bytes, sizeof bytes);
    return ds;
}

em_dataset *em_dataset_retain(em_dataset *ds)
{
    if (ds) atomic_fetch_add(&ds->refcount, 1);
    return ds;
}

void em_dataset_destroy(em_dataset *ds)
{
    if (!ds) return;
    if (atomic_fetch_sub(&ds->refcount, 1) != 1) return;
    if (ds->def.destroy) ds->def.destroy(ds->def.ctx);
    free(ds);
}

int64_t em_dataset_len(const em_dataset *ds)
{
    if (!ds) {
        em__null_arg("em_dataset_len", "ds");
        return -1;
    }
    int64_t n = ds->def.len(ds->def.ctx);
    if (n < 0) {
        em__fail(EM_ERR_INVALID_ARG, "em_dataset_len: the dataset's len callback returned %lld",
                 (long long)n);
        return -1;
    }
    return n;
}

int em_dataset_num_fields(const em_dataset *ds)
{
    if (!ds) {
        em__null_arg("em_dataset_num_fields", "ds");
        return -1;
    }
    return ds->def.n_fields;
}

em_status em_dataset_field(const em_dataset *ds, int field, em_dtype *dtype, int *ndim,
                           int64_t *shape)
{
    if (!ds) return em__null_arg("em_dataset_field", "ds");
    if (field < 0 || field >= ds->def.n_fields)
        return em__fail(EM_ERR_INDEX, "em_dataset_field: field %d out of range (%d fields)",
                        field, ds->def.n_fields);
    if (dtype) *dtype = ds->def.dtypes[field];
    if (ndim) *ndim = ds->def.ndims[field];
    if (shape)
        memcpy(shape, ds->def.shapes[field], sizeof(int64_t) * (size_t)ds->def.ndims[field]);
    return EM_OK;
}

size_t em_dataset_field_bytes(const em_dataset *ds, int field)
{
    if (!ds) {
        em__null_arg("em_dataset_field_bytes", "ds");
        return 0;
    }
    if (field < 0 || field >= ds->def.n_fields) {
        em__fail(EM_ERR_INDEX, "em_dataset_field_bytes: field %d out of range (%d fields)", field,
                 ds->def.n_fields);
        return 0;
    }
    return ds->field_bytes[field];
}

em_status em_dataset_fail(em_status status, const char *fmt, ...)
{
    char msg[2048];
    if (status == EM_OK) status = EM_ERR_IO;
    if (!fmt) return em__fail(status, "the dataset reported %s", em_status_str(status));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return em__fail(status, "%s", msg);
}

em_status em_dataset_read_item(const em_dataset *ds, int64_t index, void *const *fields)
{
    if (!ds) return em__null_arg("em_dataset_read_item", "ds");
    if (!fields) return em__null_arg("em_dataset_read_item", "fields");
    if (index < 0)
        return em__fail(EM_ERR_INDEX, "em_dataset_read_item: index %lld is negative",
                        (long long)index);
    unsigned serial = em__error_serial();
    em_status st = ds->def.get_item(ds->def.ctx, index, fields);
    if (st != EM_OK && em__error_serial() == serial)
        em__fail(st, "get_item returned %s (the callback recorded no message)", em_status_str(st));
    return st;
}

em_status em_dataset_get(const em_dataset *ds, int64_t index, em_device *device,
                         em_tensor **fields)
{
    static const char *name = "em_dataset_get";
    if (!fields) return em__null_arg(name, "fields");
    if (!ds) return em__null_arg(name, "ds");
    int nf = ds->def.n_fields;
    for (int f = 0; f < nf; f++) fields[f] = NULL;
    int64_t n = em_dataset_len(ds);
    if (n < 0) return em_last_status();
    if (index < 0 || index >= n)
        return em__fail(EM_ERR_INDEX, "%s: index %lld out of range for a dataset of %lld samples",
                        name, (long long)index, (long long)n);
    void *bufs[EM_DATASET_MAX_FIELDS] = {0};
    em_status st = EM_OK;
    for (int f = 0; f < nf && st == EM_OK; f++) {
        bufs[f] = malloc(ds->field_bytes[f] ? ds->field_bytes[f] : 1);
        if (!bufs[f]) st = em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
    }
    if (st == EM_OK) {
        st = em_dataset_read_item(ds, index, bufs);
        if (st != EM_OK) em__error_prefix("%s: sample %lld: ", name, (long long)index);
    }
    /* A private scope: on failure it drops what was made; on success each
     * tensor moves to the caller's scope (or to the caller). */
    if (st == EM_OK) st = em_scope_begin();
    if (st == EM_OK) {
        em_tensor *made[EM_DATASET_MAX_FIELDS] = {0};
        for (int f = 0; f < nf && st == EM_OK; f++) {
            made[f] = em_tensor_from_data(bufs[f], ds->def.dtypes[f], ds->def.ndims[f],
                                          ds->def.shapes[f], device);
            if (!made[f]) st = em_last_status() != EM_OK ? em_last_status() : EM_ERR_INTERNAL;
        }
        for (int f = 0; f < nf && st == EM_OK; f++) {
            fields[f] = em_scope_keep(made[f]);
            if (!fields[f]) st = em_last_status();
        }
        if (st != EM_OK)
            for (int f = 0; f < nf; f++) fields[f] = NULL;
        em_status est = em_scope_end();
        if (st == EM_OK) st = est;
    }
    for (int f = 0; f < nf; f++) free(bufs[f]);
    return st;
}

/* ------------------------------------------------------------------------ */
/* TensorDataset                                                             */
/* ------------------------------------------------------------------------ */

typedef struct tensor_ds {
    int n;
    int64_t rows;
    size_t row_bytes[EM_DATASET_MAX_FIELDS];
    unsigned char *data[EM_DATASET_MAX_FIELDS]; /* host copies, row-major */
} tensor_ds;

static int64_t tensor_ds_len(void *ctx) { return ((tensor_ds *)ctx)->rows; }

static em_status tensor_ds_get(void *ctx, int64_t index, void *const *fields)
{
    tensor_ds *t = ctx;
    if (index < 0 || index >= t->rows)
        return em_dataset_fail(EM_ERR_INDEX, "TensorDataset: index %lld out of range (%lld rows)",
                               (long long)index, (long long)t->rows);
    for (int f = 0; f < t->n; f++)
        if (t->row_bytes[f])
            memcpy(fields[f], t->data[f] + (size_t)index * t->row_bytes[f], t->row_bytes[f]);
    return EM_OK;
}

static void tensor_ds_free(void *ctx)
{
    tensor_ds *t = ctx;
    if (!t) return;
    for (int f = 0; f < t->n; f++) free(t->data[f]);
    free(t);
}

em_dataset *em_tensor_dataset_create(int n, em_tensor *const *tensors)
{
    static const char *name = "em_tensor_dataset_create";
    if (!tensors) {
        em__null_arg(name, "tensors");
        return NULL;
    }
    if (n < 1 || n > EM_DATASET_MAX_FIELDS) {
        em__fail(EM_ERR_INVALID_ARG, "%s: n is %d, must be 1..%d", name, n,
                 EM_DATASET_MAX_FIELDS);
        return NULL;
    }
    int64_t rows = -1;
    for (int f = 0; f < n; f++) {
        if (!tensors[f]) {
            char arg[32];
            snprintf(arg, sizeof arg, "tensors[%d]", f);
            em__null_arg(name, arg);
            return NULL;
        }
        int nd = em_tensor_ndim(tensors[f]);
        if (nd < 1) {
            em__fail(EM_ERR_INVALID_ARG,
                     "%s: tensors[%d] is 0-d; every tensor needs a first (sample) dim", name, f);
            return NULL;
        }
        int64_t r = em_tensor_dim(tensors[f], 0);
        if (f == 0) rows = r;
        else if (r != rows) {
            em__fail(EM_ERR_SHAPE,
                     "%s: tensors[%d] has %lld rows (first dim) but tensors[0] has %lld", name, f,
                     (long long)r, (long long)rows);
            return NULL;
        }
    }
    tensor_ds *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
        return NULL;
    }
    ctx->n = n;
    ctx->rows = rows;
    em_dataset_def def = {.len = tensor_ds_len, .get_item = tensor_ds_get,
                          .destroy = tensor_ds_free, .ctx = ctx, .n_fields = n};
    for (int f = 0; f < n; f++) {
        const em_tensor *t = tensors[f];
        int64_t shape[EM_MAX_DIMS];
        int nd = em_tensor_shape(t, shape);
        em_dtype dt = em_tensor_dtype(t);
        def.dtypes[f] = dt;
        def.ndims[f] = nd - 1;
        memcpy(def.shapes[f], shape + 1, sizeof(int64_t) * (size_t)(nd - 1));
        size_t total = (size_t)em_tensor_numel(t) * em_dtype_size(dt);
        ctx->row_bytes[f] = (size_t)shape_numel(nd - 1, shape + 1) * em_dtype_size(dt);
        ctx->data[f] = malloc(total ? total : 1);
        if (!ctx->data[f]) {
            em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory for %zu bytes (tensors[%d])",
                     name, total, f);
            tensor_ds_free(ctx);
            return NULL;
        }
        if (total && em_tensor_read(t, ctx->data[f], total) != EM_OK) {
            em__error_prefix("%s: reading tensors[%d]: ", name, f);
            tensor_ds_free(ctx);
            return NULL;
        }
    }
    em_dataset *ds = em_dataset_create(&def);
    if (!ds) tensor_ds_free(ctx);
    return ds;
}
