/*
 * grad_data.c — backward formulas of the data movement ops (cat,
 * index_select, gather, scatter_add) and the recorders ops_data.c calls.
 *
 *   cat           each input gets the narrow of g along dim at its offset
 *   index_select  g scattered (added) into zeros of t's shape at index
 *   gather        the same with the index of g's shape
 *   scatter_add   t gets g; src gets gather(g, dim, index), zero-padded to
 *                 src's shape where src is larger than index
 *
 * Duplicate indices accumulate, since the scatter adds. The index tensors
 * get no gradient. stack and embedding are built from public ops (unsqueeze
 * + cat, reshape + index_select) and one_hot has an integer result, so
 * none of them records here.
 */
#include "autograd.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* cat                                                                       */
/* ------------------------------------------------------------------------ */

static em_status cat_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    int d = n->args.dim;
    int64_t off = 0;
    for (int i = 0; i < n->n_edges; i++) {
        int64_t len = n->edges[i].shape[d];
        if (n->edges[i].needed && !(gi[i] = em_narrow(g, d, off, len))) return em_last_status();
        off += len;
    }
    return EM_OK;
}

em_tensor *em__grad_cat(const em_tensor *const *tensors, int n, int dim, em_tensor *out)
{
    if (!out || !em__ag_wanted(tensors, n) || !em_dtype_is_float(out->dtype)) return out;
    em_node_args args = {0};
    args.dim = dim;
    return em__record(out, "cat", cat_backward, tensors, n, &args);
}

/* ------------------------------------------------------------------------ */
/* index_select, gather                                                      */
/* ------------------------------------------------------------------------ */

/* zeros of the input's shape (edge 0) with g added at index along dim */
static em_tensor *scatter_into_zeros(em_node *n, em_tensor *g, const em_tensor *index)
{
    const em_edge *e = &n->edges[0];
    em_tensor *z = em_zeros(g->dtype, e->ndim, e->shape, g->storage->device);
    return z ? em_scatter_add(z, n->args.dim, index, g) : NULL;
}

static em_status index_select_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *index = em__node_saved(n, 0);
    if (!index) return em_last_status();
    if (n->edges[0].ndim == 0) { /* a 0-d t was selected as [1]: its only element */
        gi[0] = g;
        return EM_OK;
    }
    /* the 1-D index along dim, broadcast over g's other dims */
    int d = n->args.dim;
    int64_t shape[EM_MAX_DIMS];
    for (int i = 0; i < g->ndim; i++) shape[i] = i == d ? index->numel : 1;
    em_tensor *idx = em_reshape(index, g->ndim, shape);
    idx = idx ? em_expand(idx, g->ndim, g->shape) : NULL;
    gi[0] = idx ? scatter_into_zeros(n, g, idx) : NULL;
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_index_select(const em_tensor *t, int dim, const em_tensor *index,
                                 em_tensor *out)
{
    const em_tensor *in[2] = {t, index};
    if (!out || !em__ag_wanted(in, 2) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = em__node_new("index_select", index_select_backward, in, 2);
    if (!n) return em__record_fail(out, NULL);
    n->args.dim = dim;
    em__node_save(n, 0, index);
    em__node_attach(n, out);
    return out;
}

static em_status gather_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *index = em__node_saved(n, 0);
    gi[0] = index ? scatter_into_zeros(n, g, index) : NULL;
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_gather(const em_tensor *t, int dim, const em_tensor *index, em_tensor *out)
{
    const em_tensor *in[2] = {t, index};
    if (!out || !em__ag_wanted(in, 2) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = em__node_new("gather", gather_backward, in, 2);
    if (!n) return em__record_fail(out, NULL);
    n->args.dim = dim;
    em__node_save(n, 0, index);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* scatter_add                                                               */
/* ------------------------------------------------------------------------ */

static em_status scatter_add_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    /* edges: 0 t, 1 index (never needed), 2 src */
    if (n->edges[0].needed) gi[0] = g;
    if (!n->edges[2].needed) return EM_OK;
    em_tensor *index = em__node_saved(n, 0);
    em_tensor *gs = index ? em_gather(g, n->args.dim, index) : NULL;
    /* src may be larger than index (only the index-shaped corner is read):
     * pad with zeros, one dim at a time, each step differentiable */
    const em_edge *e = &n->edges[2];
    int64_t shape[EM_MAX_DIMS];
    for (int i = 0; gs && i < e->ndim; i++) shape[i] = gs->shape[i];
    for (int i = 0; gs && i < e->ndim; i++) {
        if (shape[i] == e->shape[i]) continue;
        shape[i] = e->shape[i];
        gs = em__slice_backward(gs, e->ndim, shape, i, 0, 1);
    }
    gi[2] = gs;
    return gs ? EM_OK : em_last_status();
}

em_tensor *em__grad_scatter_add(const em_tensor *t, int dim, const em_tensor *index,
                                const em_tensor *src, em_tensor *out)
{
    const em_tensor *in[3] = {t, index, src};
    if (!out || !em__ag_wanted(in, 3) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = em__node_new("scatter_add", scatter_add_backward, in, 3);
    if (!n) return em__record_fail(out, NULL);
    n->args.dim = dim;
    if (src->requires_grad) em__node_save(n, 0, index);
    em__node_attach(n, out);
    return out;
}
