/*
 * grad_views.c — backward formulas of the view ops (reshape/view,
 * squeeze/unsqueeze, transpose/permute/T, expand, slice, select) and of the
 * memory ops (contiguous, clone, tensor_to, cast), and the recorders that
 * views.c and ops_memory.c call.
 *
 * A view of a tensor that requires grad gets a node of its own (it is not a
 * leaf), exactly as any op result. Formulas:
 *   reshape-like          g reshaped to the input's shape
 *   transpose/permute/T   g permuted by the inverse permutation
 *   expand                g summed over the expanded dims
 *   slice/select          zeros of the input's shape with g written into the
 *                         part the view reads (em__slice_backward, which
 *                         records its own node: its backward is the slice)
 *   contiguous/clone/cast g (the engine casts back to the input's dtype)
 *   tensor_to             g moved back to the input's device
 *
 * Ops whose public function is built from other public ops (flatten,
 * narrow, T of a 2-D tensor) are differentiated through those and do not
 * record again. Ops that return their input itself (contiguous of a
 * contiguous tensor, cast to the same dtype, tensor_to the same device)
 * record nothing: the result is the input.
 */
#include "autograd.h"

#include <stdint.h>
#include <string.h>

/* The input's metadata, kept by the node's edge 0. */
#define IN_NDIM(n) ((n)->edges[0].ndim)
#define IN_SHAPE(n) ((n)->edges[0].shape)

/* ------------------------------------------------------------------------ */
/* reshape, view, squeeze, squeeze_all, unsqueeze                            */
/* ------------------------------------------------------------------------ */

static em_status reshape_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    gi[0] = em_reshape(g, IN_NDIM(n), IN_SHAPE(n));
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_reshape(const char *name, const em_tensor *t, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || out == t) return out;
    return em__record(out, name, reshape_backward, in, 1, NULL);
}

/* ------------------------------------------------------------------------ */
/* transpose, permute, T                                                     */
/* ------------------------------------------------------------------------ */

static em_status permute_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    int inv[EM_MAX_DIMS];
    for (int i = 0; i < g->ndim; i++) inv[i] = (int)n->args.ints[i];
    gi[0] = em_permute(g, g->ndim, inv);
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_permute(const char *name, const em_tensor *t, int ndim, const int *perm,
                            em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || out == t) return out;
    em_node_args args = {0};
    /* output dim i is input dim perm[i]; the inverse takes it back */
    for (int i = 0; i < ndim; i++) args.ints[perm[i]] = i;
    return em__record(out, name, permute_backward, in, 1, &args);
}

/* ------------------------------------------------------------------------ */
/* expand                                                                    */
/* ------------------------------------------------------------------------ */

static em_status expand_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    int nd = IN_NDIM(n), lead = g->ndim - nd, dims[EM_MAX_DIMS], k = 0;
    const int64_t *shape = IN_SHAPE(n);
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) dims[k++] = d;
    em_tensor *s = k ? em_sum(g, dims, k, true) : g;
    gi[0] = s ? em_reshape(s, nd, shape) : NULL;
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_expand(const em_tensor *t, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || out == t) return out;
    return em__record(out, "expand", expand_backward, in, 1, NULL);
}

/* ------------------------------------------------------------------------ */
/* slice, select                                                             */
/* ------------------------------------------------------------------------ */

/* The backward of slice_backward: the slice again. */
static em_status slice_backward_backward(em_node *n, em_tensor *gg, em_tensor **gi)
{
    int64_t start = n->args.ints[0], step = n->args.ints[1], len = n->args.ints[2];
    int64_t end = len > 0 ? start + (len - 1) * step + 1 : start;
    gi[0] = em_slice(gg, n->args.dim, start, end, step);
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__slice_backward(const em_tensor *g, int ndim, const int64_t *shape, int dim,
                              int64_t start, int64_t step)
{
    static const char *name = "slice_backward";
    em_tensor *z = em__alloc(g->storage->device, g->dtype, ndim, shape);
    if (!z) return NULL;
    em_status st = em__fill(z, 0.0);
    if (st == EM_OK && g->numel > 0) {
        int64_t vshape[EM_MAX_DIMS], vstrides[EM_MAX_DIMS];
        memcpy(vshape, z->shape, sizeof vshape);
        memcpy(vstrides, z->strides, sizeof vstrides);
        vshape[dim] = g->shape[dim];
        vstrides[dim] = z->strides[dim] * step;
        em_tensor *v = em__make_view(z, ndim, vshape, vstrides, z->offset + start * z->strides[dim]);
        st = v ? em__copy_into(name, v, g) : em_last_status();
        em_tensor_release(v);
    }
    if (st != EM_OK) {
        em_tensor_release(z);
        return NULL;
    }
    const em_tensor *in[1] = {g};
    if (em__ag_wanted(in, 1)) { /* create_graph: differentiable in g */
        em_node_args args = {0};
        args.dim = dim;
        args.ints[0] = start;
        args.ints[1] = step;
        args.ints[2] = g->shape[dim];
        z = em__record(z, name, slice_backward_backward, in, 1, &args);
    }
    return em__own(z);
}

static em_status slice_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    gi[0] = em__slice_backward(g, IN_NDIM(n), IN_SHAPE(n), n->args.dim, n->args.ints[0],
                               n->args.ints[1]);
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_slice(const em_tensor *t, int dim, int64_t start, int64_t step, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || out == t) return out;
    em_node_args args = {0};
    args.dim = dim;
    args.ints[0] = start;
    args.ints[1] = step;
    return em__record(out, "slice", slice_backward, in, 1, &args);
}

static em_status select_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *u = em_unsqueeze(g, n->args.dim);
    gi[0] = u ? em__slice_backward(u, IN_NDIM(n), IN_SHAPE(n), n->args.dim, n->args.ints[0], 1)
              : NULL;
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_select(const em_tensor *t, int dim, int64_t index, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || out == t) return out;
    em_node_args args = {0};
    args.dim = dim;
    args.ints[0] = index;
    return em__record(out, "select", select_backward, in, 1, &args);
}

/* ------------------------------------------------------------------------ */
/* contiguous, clone, cast, tensor_to                                        */
/* ------------------------------------------------------------------------ */

static em_status identity_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    (void)n;
    gi[0] = g; /* the engine casts to the input's dtype */
    return EM_OK;
}

em_tensor *em__grad_identity(const char *name, const em_tensor *t, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || out == t) return out;
    if (!em_dtype_is_float(out->dtype)) return out; /* a cast to int/bool: no gradient */
    return em__record(out, name, identity_backward, in, 1, NULL);
}

static em_status to_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    /* the input's device, kept as a pointer: devices live until shutdown */
    em_device *dev = (em_device *)(intptr_t)n->args.ints[0];
    gi[0] = em_tensor_to(g, dev);
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_to(const em_tensor *t, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || out == t) return out;
    em_node_args args = {0};
    args.ints[0] = (int64_t)(intptr_t)t->storage->device;
    return em__record(out, "to", to_backward, in, 1, &args);
}
