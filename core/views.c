/*
 * views.c — ops that only change a tensor's metadata and share its storage:
 * reshape/view, flatten, transpose, permute, T, squeeze, unsqueeze, expand,
 * narrow, slice, select. reshape is the one that may copy (when no view of
 * the requested shape exists). No data is touched here otherwise.
 * Each view of a tensor that requires grad is recorded (grad_views.c);
 * flatten and narrow are built on reshape and slice and record through them.
 */
#include "autograd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CHECK_T(name)                                                         \
    do {                                                                      \
        if (!t) {                                                             \
            em__null_arg(name, "t");                                          \
            return NULL;                                                      \
        }                                                                     \
    } while (0)

/* A view of t, recorded for autograd as a reshape-like op named `name`
 * (its gradient is g reshaped to t's shape). */
static em_tensor *view_of(const char *name, const em_tensor *t, int ndim, const int64_t *shape,
                          const int64_t *strides, int64_t offset)
{
    return em__own(em__grad_reshape(name, t, em__make_view(t, ndim, shape, strides, offset)));
}

/* Resolves one -1 in shape against numel; EM_ERR_SHAPE when impossible. */
static bool infer_shape(const char *name, const em_tensor *t, int ndim, const int64_t *in,
                        int64_t *out)
{
    if (ndim < 0 || ndim > EM_MAX_DIMS) {
        em__fail(EM_ERR_INVALID_ARG, "%s: %d dims requested (0 to %d allowed)", name, ndim,
                 EM_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !in) {
        em__null_arg(name, "shape");
        return false;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        out[i] = in[i];
        if (in[i] == -1) {
            if (infer >= 0) {
                em__fail(EM_ERR_SHAPE, "%s: only one dimension may be -1", name);
                return false;
            }
            infer = i;
        } else if (in[i] < 0) {
            em__fail(EM_ERR_SHAPE, "%s: invalid size %" PRId64 " in dim %d", name, in[i], i);
            return false;
        } else {
            known *= in[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || t->numel % known != 0) goto mismatch;
        out[infer] = t->numel / known;
    } else if (known != t->numel) {
        goto mismatch;
    }
    return true;
mismatch : {
    char a[160], b[160];
    em__fail(EM_ERR_SHAPE, "%s: shape %s is invalid for a tensor of shape %s (%" PRId64 " elements)",
             name, em__shape_str(ndim, in, a, sizeof a), em__shape_str(t->ndim, t->shape, b, sizeof b),
             t->numel);
    return false;
}
}

/* Strides for viewing t with a new shape without copying, as PyTorch's
 * computeStride: groups of old dims that are contiguous among themselves
 * map onto groups of new dims. False when no such view exists. */
static bool view_strides(const em_tensor *t, int ndim, const int64_t *shape, int64_t *strides)
{
    if (t->numel == 0 || t->ndim == 0) {
        em__contiguous_strides(ndim, shape, strides);
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base_stride = t->strides[t->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 && t->strides[d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_base_stride = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

em_tensor *em_view(const em_tensor *t, int ndim, const int64_t *shape)
{
    CHECK_T("em_view");
    int64_t s[EM_MAX_DIMS], st[EM_MAX_DIMS];
    if (!infer_shape("em_view", t, ndim, shape, s)) return NULL;
    if (!view_strides(t, ndim, s, st)) {
        char a[160], b[160], c[160];
        em__fail(EM_ERR_SHAPE, "em_view: a tensor of shape %s with strides %s cannot be viewed as "
                 "%s; use em_reshape (which copies) or em_contiguous first",
                 em__shape_str(t->ndim, t->shape, a, sizeof a),
                 em__shape_str(t->ndim, t->strides, b, sizeof b), em__shape_str(ndim, s, c, sizeof c));
        return NULL;
    }
    return view_of("view", t, ndim, s, st, t->offset);
}

em_tensor *em_reshape(const em_tensor *t, int ndim, const int64_t *shape)
{
    CHECK_T("em_reshape");
    int64_t s[EM_MAX_DIMS], st[EM_MAX_DIMS];
    if (!infer_shape("em_reshape", t, ndim, shape, s)) return NULL;
    if (view_strides(t, ndim, s, st)) return view_of("reshape", t, ndim, s, st, t->offset);
    em_tensor *c = em__contiguous("em_reshape", t);
    if (!c) return NULL;
    em__contiguous_strides(ndim, s, st);
    em_tensor *v = em__make_view(c, ndim, s, st, c->offset);
    em_tensor_release(c);
    return em__own(em__grad_reshape("reshape", t, v));
}

em_tensor *em_flatten(const em_tensor *t, int start_dim, int end_dim)
{
    CHECK_T("em_flatten");
    if (t->ndim == 0) return em_reshape(t, 1, (const int64_t[]){1});
    int s = em__wrap_dim(start_dim, t->ndim, "em_flatten");
    int e = s < 0 ? -1 : em__wrap_dim(end_dim, t->ndim, "em_flatten");
    if (s < 0 || e < 0) return NULL;
    if (s > e) {
        em__fail(EM_ERR_INVALID_ARG, "em_flatten: start_dim %d comes after end_dim %d", start_dim,
                 end_dim);
        return NULL;
    }
    int64_t shape[EM_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < s; i++) shape[n++] = t->shape[i];
    int64_t merged = 1;
    for (int i = s; i <= e; i++) merged *= t->shape[i];
    shape[n++] = merged;
    for (int i = e + 1; i < t->ndim; i++) shape[n++] = t->shape[i];
    return em_reshape(t, n, shape);
}

em_tensor *em_permute(const em_tensor *t, int ndim, const int *dims)
{
    CHECK_T("em_permute");
    if (!dims && ndim > 0) {
        em__null_arg("em_permute", "dims");
        return NULL;
    }
    if (ndim != t->ndim) {
        em__fail(EM_ERR_INVALID_ARG, "em_permute: %d dims given for a tensor with %d dims", ndim,
                 t->ndim);
        return NULL;
    }
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int perm[EM_MAX_DIMS];
    bool seen[EM_MAX_DIMS] = {false};
    for (int i = 0; i < ndim; i++) {
        int d = em__wrap_dim(dims[i], ndim, "em_permute");
        if (d < 0) return NULL;
        if (seen[d]) {
            em__fail(EM_ERR_INVALID_ARG, "em_permute: dim %d appears twice", d);
            return NULL;
        }
        seen[d] = true;
        perm[i] = d;
        shape[i] = t->shape[d];
        strides[i] = t->strides[d];
    }
    em_tensor *v = em__make_view(t, ndim, shape, strides, t->offset);
    return em__own(em__grad_permute("permute", t, ndim, perm, v));
}

em_tensor *em_transpose(const em_tensor *t, int dim0, int dim1)
{
    CHECK_T("em_transpose");
    if (t->ndim == 0) return view_of("transpose", t, 0, NULL, NULL, t->offset);
    int a = em__wrap_dim(dim0, t->ndim, "em_transpose");
    int b = a < 0 ? -1 : em__wrap_dim(dim1, t->ndim, "em_transpose");
    if (a < 0 || b < 0) return NULL;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    shape[a] = t->shape[b], shape[b] = t->shape[a];
    strides[a] = t->strides[b], strides[b] = t->strides[a];
    int perm[EM_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) perm[i] = i;
    perm[a] = b, perm[b] = a;
    em_tensor *v = em__make_view(t, t->ndim, shape, strides, t->offset);
    return em__own(em__grad_permute("transpose", t, t->ndim, perm, v));
}

em_tensor *em_T(const em_tensor *t)
{
    CHECK_T("em_T");
    if (t->ndim > 2) {
        em__fail(EM_ERR_INVALID_ARG, "em_T: expects a tensor with at most 2 dims, got %d (use "
                 "em_permute or em_transpose)", t->ndim);
        return NULL;
    }
    if (t->ndim < 2) return view_of("T", t, t->ndim, t->shape, t->strides, t->offset);
    return em_transpose(t, 0, 1);
}

em_tensor *em_squeeze(const em_tensor *t, int dim)
{
    CHECK_T("em_squeeze");
    int d = em__wrap_dim(dim, t->ndim, "em_squeeze");
    if (d < 0) return NULL;
    if (t->ndim == 0 || t->shape[d] != 1)
        return view_of("squeeze", t, t->ndim, t->shape, t->strides, t->offset);
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d) continue;
        shape[n] = t->shape[i];
        strides[n++] = t->strides[i];
    }
    return view_of("squeeze", t, n, shape, strides, t->offset);
}

em_tensor *em_squeeze_all(const em_tensor *t)
{
    CHECK_T("em_squeeze_all");
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 1) continue;
        shape[n] = t->shape[i];
        strides[n++] = t->strides[i];
    }
    return view_of("squeeze_all", t, n, shape, strides, t->offset);
}

em_tensor *em_unsqueeze(const em_tensor *t, int dim)
{
    CHECK_T("em_unsqueeze");
    if (t->ndim >= EM_MAX_DIMS) {
        em__fail(EM_ERR_INVALID_ARG, "em_unsqueeze: a tensor already has the maximum %d dims",
                 EM_MAX_DIMS);
        return NULL;
    }
    int d = em__wrap_dim(dim, t->ndim + 1, "em_unsqueeze");
    if (d < 0) return NULL;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int n = 0;
    for (int i = 0; i <= t->ndim; i++) {
        if (i == d) {
            shape[n] = 1;
            strides[n++] = d < t->ndim ? t->strides[d] * t->shape[d] : 1;
        }
        if (i < t->ndim) {
            shape[n] = t->shape[i];
            strides[n++] = t->strides[i];
        }
    }
    return view_of("unsqueeze", t, n, shape, strides, t->offset);
}

em_tensor *em_expand(const em_tensor *t, int ndim, const int64_t *shape)
{
    CHECK_T("em_expand");
    if (ndim > 0 && !shape) {
        em__null_arg("em_expand", "shape");
        return NULL;
    }
    if (ndim < t->ndim || ndim > EM_MAX_DIMS) {
        em__fail(EM_ERR_SHAPE, "em_expand: cannot expand %d dims to %d", t->ndim, ndim);
        return NULL;
    }
    int64_t s[EM_MAX_DIMS], st[EM_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int j = i - (ndim - t->ndim);
        int64_t want = shape[i];
        if (j < 0) {
            if (want < 0) goto bad;
            s[i] = want;
            st[i] = 0;
        } else if (want == -1 || want == t->shape[j]) {
            s[i] = t->shape[j];
            st[i] = t->strides[j];
        } else if (t->shape[j] == 1 && want >= 0) {
            s[i] = want;
            st[i] = 0;
        } else {
            goto bad;
        }
    }
    return em__own(em__grad_expand(t, em__make_view(t, ndim, s, st, t->offset)));
bad : {
    char a[160], b[160];
    em__fail(EM_ERR_SHAPE, "em_expand: shape %s cannot be expanded to %s",
             em__shape_str(t->ndim, t->shape, a, sizeof a), em__shape_str(ndim, shape, b, sizeof b));
    return NULL;
}
}

em_tensor *em_slice(const em_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    CHECK_T("em_slice");
    if (t->ndim == 0) {
        em__fail(EM_ERR_INVALID_ARG, "em_slice: cannot slice a 0-d tensor");
        return NULL;
    }
    int d = em__wrap_dim(dim, t->ndim, "em_slice");
    if (d < 0) return NULL;
    if (step <= 0) {
        em__fail(EM_ERR_INVALID_ARG, "em_slice: step must be positive, got %" PRId64, step);
        return NULL;
    }
    int64_t n = t->shape[d];
    if (start < 0) start += n;
    if (end < 0) end += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (end > n) end = n;
    if (end < start) end = start;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    shape[d] = (end - start + step - 1) / step;
    strides[d] = t->strides[d] * step;
    em_tensor *v = em__make_view(t, t->ndim, shape, strides, t->offset + start * t->strides[d]);
    return em__own(em__grad_slice(t, d, start, step, v));
}

em_tensor *em_narrow(const em_tensor *t, int dim, int64_t start, int64_t length)
{
    CHECK_T("em_narrow");
    int d = em__wrap_dim(dim, t->ndim, "em_narrow");
    if (d < 0) return NULL;
    int64_t n = t->ndim ? t->shape[d] : 1;
    if (start < 0) start += n;
    if (start < 0 || length < 0 || start + length > n) {
        em__fail(EM_ERR_INDEX, "em_narrow: start %" PRId64 " length %" PRId64
                 " is out of range for dim %d of size %" PRId64, start, length, dim, n);
        return NULL;
    }
    return em_slice(t, d, start, start + length, 1);
}

em_tensor *em_select(const em_tensor *t, int dim, int64_t index)
{
    CHECK_T("em_select");
    if (t->ndim == 0) {
        em__fail(EM_ERR_INVALID_ARG, "em_select: cannot select from a 0-d tensor");
        return NULL;
    }
    int d = em__wrap_dim(dim, t->ndim, "em_select");
    if (d < 0) return NULL;
    int64_t n = t->shape[d];
    if (index < -n || index >= n) {
        em__fail(EM_ERR_INDEX, "em_select: index %" PRId64 " is out of range for dim %d of size %" PRId64,
                 index, dim, n);
        return NULL;
    }
    if (index < 0) index += n;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d) continue;
        shape[k] = t->shape[i];
        strides[k++] = t->strides[i];
    }
    em_tensor *v = em__make_view(t, k, shape, strides, t->offset + index * t->strides[d]);
    return em__own(em__grad_select(t, d, index, v));
}
