/*
 * ops_data.c — data movement ops: cat, stack, index_select, gather,
 * scatter_add, embedding, one_hot. Checks shapes, index dtypes and devices,
 * and builds the kernel calls; index range checks happen in the kernels
 * (only they see the values).
 * cat, index_select, gather and scatter_add record for autograd
 * (grad_data.c); stack and embedding are built on public ops and record
 * through them; one_hot has an integer result; scatter_add_ refuses a
 * tensor that requires grad while grad mode is on.
 */
#include "autograd.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const em_op_params base_params = {.struct_size = sizeof(em_op_params)};

#define EM_CAT_MAX 64 /* inputs per kernel call; longer lists are joined in rounds */

static bool is_index_dtype(em_dtype d) { return d == EM_I32 || d == EM_I64; }

static em_status index_dtype_error(const char *name, const em_tensor *index)
{
    return em__fail(EM_ERR_DTYPE, "%s: index must be i32 or i64, got %s", name,
                    em_dtype_name(index->dtype));
}

/* Joins n tensors (n <= EM_CAT_MAX, all of dtype ct already) into out. */
static em_status cat_into(const char *name, em_tensor *const *ts, int n, int dim, em_tensor *out)
{
    em_tdesc d[EM_CAT_MAX];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (ts[i]->numel > 0) d[k++] = em__desc(ts[i]);
    if (k == 0 || out->numel == 0) return EM_OK;
    em_op_params p = base_params;
    p.dim = dim;
    em_tdesc od = em__desc(out);
    return em__run_op(name, out->storage->device, EM_OP_CAT, d, k, &od, 1, &p);
}

em_tensor *em_cat(const em_tensor *const *tensors, int n, int dim)
{
    static const char *name = "em_cat";
    if (!tensors) { em__null_arg(name, "tensors"); return NULL; }
    if (n <= 0) {
        em__fail(EM_ERR_INVALID_ARG, "%s: needs at least one tensor, got %d", name, n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!tensors[i]) { em__null_arg(name, "tensors[i]"); return NULL; }
    if (em__same_device(name, tensors, n) != EM_OK) return NULL;
    const em_tensor *ref = tensors[0];
    if (ref->ndim == 0) {
        em__fail(EM_ERR_SHAPE, "%s: zero-dimensional tensors cannot be joined (use em_stack)", name);
        return NULL;
    }
    int d = em__wrap_dim(dim, ref->ndim, name);
    if (d < 0) return NULL;
    em_dtype ct = ref->dtype;
    int64_t shape[EM_MAX_DIMS];
    memcpy(shape, ref->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const em_tensor *t = tensors[i];
        bool ok = t->ndim == ref->ndim;
        for (int j = 0; ok && j < t->ndim; j++) ok = j == d || t->shape[j] == ref->shape[j];
        if (!ok) {
            char a[160], b[160];
            em__fail(EM_ERR_SHAPE, "%s: tensor %d has shape %s, which does not match %s except "
                     "in dim %d", name, i, em__shape_str(t->ndim, t->shape, a, sizeof a),
                     em__shape_str(ref->ndim, ref->shape, b, sizeof b), d);
            return NULL;
        }
        shape[d] += t->shape[d];
        ct = em_promote_types(ct, t->dtype);
    }
    em_tensor *out = em__alloc(ref->storage->device, ct, ref->ndim, shape);
    if (!out) return NULL;
    em_status st = EM_OK;
    int64_t pos = 0;
    for (int start = 0; start < n && st == EM_OK; start += EM_CAT_MAX) {
        int count = n - start < EM_CAT_MAX ? n - start : EM_CAT_MAX;
        em_tensor *cast[EM_CAT_MAX] = {0};
        int64_t len = 0;
        for (int i = 0; i < count && st == EM_OK; i++) {
            cast[i] = em__cast(name, tensors[start + i], ct);
            if (!cast[i]) st = em_last_status();
            else len += cast[i]->shape[d];
        }
        if (st == EM_OK) {
            /* write into the slice of out this round covers */
            int64_t sstr[EM_MAX_DIMS], sshape[EM_MAX_DIMS];
            memcpy(sshape, out->shape, sizeof sshape);
            memcpy(sstr, out->strides, sizeof sstr);
            sshape[d] = len;
            em_tensor *slice =
                em__make_view(out, out->ndim, sshape, sstr, out->offset + pos * out->strides[d]);
            if (!slice) st = em_last_status();
            else st = cat_into(name, cast, count, d, slice);
            em_tensor_release(slice);
        }
        pos += len;
        for (int i = 0; i < count; i++) em_tensor_release(cast[i]);
    }
    if (st != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return em__own(em__grad_cat(tensors, n, d, out));
}

em_tensor *em_stack(const em_tensor *const *tensors, int n, int dim)
{
    static const char *name = "em_stack";
    if (!tensors) { em__null_arg(name, "tensors"); return NULL; }
    if (n <= 0) {
        em__fail(EM_ERR_INVALID_ARG, "%s: needs at least one tensor, got %d", name, n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!tensors[i]) { em__null_arg(name, "tensors[i]"); return NULL; }
    for (int i = 1; i < n; i++) {
        const em_tensor *a = tensors[0], *b = tensors[i];
        if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim)) {
            char sa[160], sb[160];
            em__fail(EM_ERR_SHAPE, "%s: all tensors need one shape; tensor 0 is %s, tensor %d is %s",
                     name, em__shape_str(a->ndim, a->shape, sa, sizeof sa), i,
                     em__shape_str(b->ndim, b->shape, sb, sizeof sb));
            return NULL;
        }
    }
    int d = em__wrap_dim(dim, tensors[0]->ndim + 1, name);
    if (d < 0) return NULL;
    em_status st = em_scope_begin();
    if (st != EM_OK) return NULL;
    const em_tensor *views[EM_CAT_MAX];
    em_tensor *out = NULL;
    /* Unsqueeze inside a scope of our own so the views go away with it. */
    const em_tensor **list = n <= EM_CAT_MAX ? views : NULL;
    if (!list) {
        /* many tensors: stack in chunks of EM_CAT_MAX and cat the chunks */
        int chunks = (n + EM_CAT_MAX - 1) / EM_CAT_MAX;
        const em_tensor *parts[EM_CAT_MAX];
        if (chunks > EM_CAT_MAX) {
            em_scope_end();
            em__fail(EM_ERR_INVALID_ARG, "%s: at most %d tensors", name, EM_CAT_MAX * EM_CAT_MAX);
            return NULL;
        }
        for (int c = 0; c < chunks; c++) {
            int count = n - c * EM_CAT_MAX < EM_CAT_MAX ? n - c * EM_CAT_MAX : EM_CAT_MAX;
            parts[c] = em_stack(tensors + c * EM_CAT_MAX, count, d);
        }
        out = em_cat(parts, chunks, d);
    } else {
        for (int i = 0; i < n; i++) views[i] = em_unsqueeze(tensors[i], d);
        out = em_cat(views, n, d);
    }
    if (out) em_scope_keep(out);
    em_scope_end();
    return out;
}

em_tensor *em_index_select(const em_tensor *t, int dim, const em_tensor *index)
{
    static const char *name = "em_index_select";
    if (!t) { em__null_arg(name, "t"); return NULL; }
    if (!index) { em__null_arg(name, "index"); return NULL; }
    const em_tensor *both[2] = {t, index};
    if (em__same_device(name, both, 2) != EM_OK) return NULL;
    if (!is_index_dtype(index->dtype)) { index_dtype_error(name, index); return NULL; }
    if (index->ndim > 1) {
        char s[160];
        em__fail(EM_ERR_SHAPE, "%s: index must be 1-D, got shape %s", name,
                 em__shape_str(index->ndim, index->shape, s, sizeof s));
        return NULL;
    }
    int d = em__wrap_dim(dim, t->ndim, name);
    if (d < 0) return NULL;
    int64_t shape[EM_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    int ndim = t->ndim;
    if (ndim > 0) shape[d] = index->numel;
    em_tensor *out = em__alloc(t->storage->device, t->dtype, ndim, shape);
    if (!out || out->numel == 0) return em__own(em__grad_index_select(t, d, index, out));
    if (t->numel == 0) {
        em__fail(EM_ERR_INDEX, "%s: index into an empty dim", name);
        em_tensor_release(out);
        return NULL;
    }
    em_op_params p = base_params;
    p.dim = d;
    em_tdesc in[2] = {em__desc(t), em__desc(index)};
    if (ndim == 0) { /* 0-d t: treat as [1] */
        in[0].ndim = 1; in[0].shape[0] = 1; in[0].strides[0] = 1;
    }
    if (index->ndim == 0) { in[1].ndim = 1; in[1].shape[0] = 1; in[1].strides[0] = 1; }
    em_tdesc od = em__desc(out);
    if (ndim == 0) { od.ndim = 1; od.shape[0] = 1; od.strides[0] = 1; }
    if (em__run_op(name, t->storage->device, EM_OP_INDEX_SELECT, in, 2, &od, 1, &p) != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return em__own(em__grad_index_select(t, d, index, out));
}

static em_status check_gather_shapes(const char *name, const em_tensor *t, int d,
                                     const em_tensor *index, const em_tensor *src)
{
    bool ok = index->ndim == t->ndim && (!src || src->ndim == t->ndim);
    for (int i = 0; ok && i < t->ndim; i++) {
        if (src && index->shape[i] > src->shape[i]) ok = false;
        if (i != d && index->shape[i] > t->shape[i]) ok = false;
    }
    if (ok) return EM_OK;
    char a[160], b[160], c[160];
    return em__fail(EM_ERR_SHAPE, "%s: index %s does not fit self %s%s%s along dim %d (same ndim, "
                    "index sizes <= self's except in dim)", name,
                    em__shape_str(index->ndim, index->shape, a, sizeof a),
                    em__shape_str(t->ndim, t->shape, b, sizeof b), src ? " and src " : "",
                    src ? em__shape_str(src->ndim, src->shape, c, sizeof c) : "", d);
}

em_tensor *em_gather(const em_tensor *t, int dim, const em_tensor *index)
{
    static const char *name = "em_gather";
    if (!t) { em__null_arg(name, "t"); return NULL; }
    if (!index) { em__null_arg(name, "index"); return NULL; }
    const em_tensor *both[2] = {t, index};
    if (em__same_device(name, both, 2) != EM_OK) return NULL;
    if (!is_index_dtype(index->dtype)) { index_dtype_error(name, index); return NULL; }
    int d = em__wrap_dim(dim, t->ndim, name);
    if (d < 0) return NULL;
    if (check_gather_shapes(name, t, d, index, NULL) != EM_OK) return NULL;
    em_tensor *out = em__alloc(t->storage->device, t->dtype, index->ndim, index->shape);
    if (!out || out->numel == 0) return em__own(em__grad_gather(t, d, index, out));
    em_op_params p = base_params;
    p.dim = d;
    em_tdesc in[2] = {em__desc(t), em__desc(index)}, od = em__desc(out);
    if (em__run_op(name, t->storage->device, EM_OP_GATHER, in, 2, &od, 1, &p) != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return em__own(em__grad_gather(t, d, index, out));
}

/* out (already holding self's values) += src at index along dim. */
static em_status scatter_add_into(const char *name, em_tensor *out, int dim, const em_tensor *index,
                                  const em_tensor *src)
{
    const em_tensor *all[3] = {out, index, src};
    if (em__same_device(name, all, 3) != EM_OK) return em_last_status();
    if (!is_index_dtype(index->dtype)) return index_dtype_error(name, index);
    int d = em__wrap_dim(dim, out->ndim, name);
    if (d < 0) return em_last_status();
    em_status st = check_gather_shapes(name, out, d, index, src);
    if (st != EM_OK || index->numel == 0) return st;
    em_tensor *cs = em__cast(name, src, out->dtype);
    if (!cs) return em_last_status();
    em_op_params p = base_params;
    p.dim = d;
    /* the kernel reads src over index's shape */
    em_tdesc in[2] = {em__desc(cs), em__desc(index)};
    for (int i = 0; i < index->ndim; i++) in[0].shape[i] = index->shape[i];
    em_tdesc od = em__desc(out);
    st = em__run_op(name, out->storage->device, EM_OP_SCATTER_ADD, in, 2, &od, 1, &p);
    em_tensor_release(cs);
    return st;
}

em_tensor *em_scatter_add(const em_tensor *t, int dim, const em_tensor *index, const em_tensor *src)
{
    static const char *name = "em_scatter_add";
    if (!t) { em__null_arg(name, "t"); return NULL; }
    if (!index) { em__null_arg(name, "index"); return NULL; }
    if (!src) { em__null_arg(name, "src"); return NULL; }
    em_tensor *out = em__contiguous(name, t);
    if (out && out == t) { /* never write into t itself */
        em_tensor_release(out);
        out = em__alloc(t->storage->device, t->dtype, t->ndim, t->shape);
        if (out && em__copy_into(name, out, t) != EM_OK) {
            em_tensor_release(out);
            out = NULL;
        }
    }
    if (!out) return NULL;
    if (scatter_add_into(name, out, dim, index, src) != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return em__own(em__grad_scatter_add(t, dim, index, src, out));
}

em_status em_scatter_add_(em_tensor *self, int dim, const em_tensor *index, const em_tensor *src)
{
    static const char *name = "em_scatter_add_";
    if (!self) return em__null_arg(name, "self");
    if (!index) return em__null_arg(name, "index");
    if (!src) return em__null_arg(name, "src");
    if (em__check_writable(name, self) != EM_OK) return em_last_status();
    if (em__ag_check_inplace(name, self, src) != EM_OK) return em_last_status();
    em_status st = scatter_add_into(name, self, dim, index, src);
    if (st == EM_OK) self->storage->version++;
    return st;
}

em_tensor *em_embedding(const em_tensor *weight, const em_tensor *index)
{
    static const char *name = "em_embedding";
    if (!weight) { em__null_arg(name, "weight"); return NULL; }
    if (!index) { em__null_arg(name, "index"); return NULL; }
    if (weight->ndim != 2) {
        char s[160];
        em__fail(EM_ERR_SHAPE, "%s: weight must be [num, dim], got %s", name,
                 em__shape_str(weight->ndim, weight->shape, s, sizeof s));
        return NULL;
    }
    if (index->ndim >= EM_MAX_DIMS) {
        em__fail(EM_ERR_SHAPE, "%s: index has too many dims (%d)", name, index->ndim);
        return NULL;
    }
    if (em_scope_begin() != EM_OK) return NULL;
    em_tensor *flat = em_reshape(index, 1, (const int64_t[]){index->numel});
    em_tensor *rows = flat ? em_index_select(weight, 0, flat) : NULL;
    int64_t shape[EM_MAX_DIMS];
    for (int i = 0; i < index->ndim; i++) shape[i] = index->shape[i];
    shape[index->ndim] = weight->shape[1];
    em_tensor *out = rows ? em_reshape(rows, index->ndim + 1, shape) : NULL;
    if (out) em_scope_keep(out);
    em_scope_end();
    return out;
}

em_tensor *em_one_hot(const em_tensor *index, int64_t num_classes)
{
    static const char *name = "em_one_hot";
    if (!index) { em__null_arg(name, "index"); return NULL; }
    if (!is_index_dtype(index->dtype)) { index_dtype_error(name, index); return NULL; }
    if (index->ndim >= EM_MAX_DIMS) {
        em__fail(EM_ERR_SHAPE, "%s: index has too many dims (%d)", name, index->ndim);
        return NULL;
    }
    if (num_classes < 0) {
        if (index->numel == 0) {
            em__fail(EM_ERR_INVALID_ARG, "%s: cannot infer num_classes from an empty index", name);
            return NULL;
        }
        if (em_scope_begin() != EM_OK) return NULL;
        double mx = 0;
        em_status st = em_tensor_item(em_max(index, NULL, 0, false), &mx);
        em_scope_end();
        if (st != EM_OK) return NULL;
        num_classes = (int64_t)mx + 1;
    }
    int64_t shape[EM_MAX_DIMS];
    for (int i = 0; i < index->ndim; i++) shape[i] = index->shape[i];
    shape[index->ndim] = num_classes;
    em_tensor *out = em__alloc(index->storage->device, EM_I64, index->ndim + 1, shape);
    if (!out || out->numel == 0 || index->numel == 0) return em__own(out);
    em_op_params p = base_params;
    p.ints[0] = num_classes;
    em_tdesc in = em__desc(index), od = em__desc(out);
    if (em__run_op(name, index->storage->device, EM_OP_ONE_HOT, &in, 1, &od, 1, &p) != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return em__own(out);
}
