/*
 * grad_reduce.c — backward formulas of the reductions (sum, mean, max, min,
 * var, std, logsumexp) and of softmax/log_softmax, and the recorders that
 * ops_reduce.c calls. argmax/argmin have i64 results and record nothing.
 *
 * A reduction's node keeps the reduce mask (bit d: input dim d reduced) and
 * keepdim. Every formula first brings g to the keepdim shape (a reshape
 * that puts the size-1 dims back), so that it broadcasts against the input;
 * saved outputs are reshaped the same way. Formulas use public ops only, so
 * they run on any device and are differentiable themselves (create_graph).
 */
#include "autograd.h"

#include <math.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* The reduced dims of the input (edge 0) in ascending order; their count. */
static int reduced_dims(const em_node *n, int *dims)
{
    int nd = 0;
    for (int d = 0; d < n->edges[0].ndim; d++)
        if (n->args.reduce_mask & (1u << d)) dims[nd++] = d;
    return nd;
}

/* How many input elements fold into one output element. */
static int64_t reduced_count(const em_node *n)
{
    int64_t c = 1;
    for (int d = 0; d < n->edges[0].ndim; d++)
        if (n->args.reduce_mask & (1u << d)) c *= n->edges[0].shape[d];
    return c;
}

/* t (in the output's shape) reshaped to the keepdim shape: the input's
 * shape with 1 at every reduced dim. A new reference in scope. */
static em_tensor *to_keepdim(const em_node *n, em_tensor *t)
{
    if (!t) return NULL;
    if (n->args.keepdim || n->edges[0].ndim == 0) return t;
    int64_t shape[EM_MAX_DIMS];
    for (int d = 0; d < n->edges[0].ndim; d++)
        shape[d] = (n->args.reduce_mask & (1u << d)) ? 1 : n->edges[0].shape[d];
    return em_reshape(t, n->edges[0].ndim, shape);
}

/* t (keepdim shape) broadcast to the input's shape, without copying. */
static em_tensor *to_input_shape(const em_node *n, em_tensor *t)
{
    return t ? em_expand(t, n->edges[0].ndim, n->edges[0].shape) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Reductions                                                                */
/* ------------------------------------------------------------------------ */

static em_status reduce_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    int op = n->args.op;
    em_tensor *x = NULL, *y = NULL;
    if (n->saved[0].t && !(x = em__node_saved(n, 0))) return em_last_status();
    if (n->saved[1].t && !(y = to_keepdim(n, em__node_saved(n, 1)))) return em_last_status();
    em_tensor *gk = to_keepdim(n, g);
    if (!gk) return em_last_status();
    int dims[EM_MAX_DIMS], nd = reduced_dims(n, dims);
    double count = (double)reduced_count(n);
    switch (op) {
    case EM_OP_SUM: gi[0] = to_input_shape(n, gk); break;
    case EM_OP_MEAN: gi[0] = to_input_shape(n, em_div_scalar(gk, count)); break;
    case EM_OP_MAX:
    case EM_OP_MIN: {
        /* shared equally among the elements equal to the result (torch.amax);
         * where the result is NaN, among the NaN elements */
        em_tensor *hit = em_add(em_cast(em_eq(x, y), g->dtype), em_cast(em_ne(x, x), g->dtype));
        em_tensor *share = em_div(gk, em_sum(hit, dims, nd, true));
        gi[0] = em_mul(share, hit);
        break;
    }
    case EM_OP_VAR:
    case EM_OP_STD: {
        /* var: g 2 (x - mean) / (N - c); std: g (x - mean) / ((N - c) std),
         * 0 where std is 0 (as torch) */
        double denom = count - (double)n->args.flag;
        em_tensor *centered = em_sub(x, em_mean(x, dims, nd, true));
        em_tensor *scale = op == EM_OP_VAR
                               ? em_mul_scalar(gk, 2.0 / denom)
                               : em_masked_fill(em_div(gk, em_mul_scalar(y, denom)),
                                                em_eq_scalar(y, 0.0), 0.0);
        gi[0] = em_mul(scale, centered);
        break;
    }
    case EM_OP_LOGSUMEXP: gi[0] = em_mul(gk, em_exp(em_sub(x, y))); break;
    default: return em__fail(EM_ERR_INTERNAL, "no backward for reduction op %d", op);
    }
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_reduce(int op, const em_tensor *t, uint32_t mask, bool keepdim, int flag,
                           em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || !em_dtype_is_float(out->dtype)) return out;
    if (op == EM_OP_ARGMAX || op == EM_OP_ARGMIN) return out;
    em_node *n = em__node_new(em__op_name(op), reduce_backward, in, 1);
    if (!n) return em__record_fail(out, NULL);
    n->args.op = op;
    n->args.reduce_mask = t->ndim ? mask : 0;
    n->args.keepdim = keepdim;
    n->args.flag = flag;
    bool save_x = op == EM_OP_MAX || op == EM_OP_MIN || op == EM_OP_VAR || op == EM_OP_STD ||
                  op == EM_OP_LOGSUMEXP;
    bool save_y = op == EM_OP_MAX || op == EM_OP_MIN || op == EM_OP_STD || op == EM_OP_LOGSUMEXP;
    if (save_x) em__node_save(n, 0, t);
    if (save_y && em__node_save_output(n, 1, out) != EM_OK) return em__record_fail(out, n);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* softmax, log_softmax                                                      */
/* ------------------------------------------------------------------------ */

static em_status softmax_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *y = em__node_saved(n, 0);
    if (!y) return em_last_status();
    int dim = n->args.dim;
    if (n->args.op == EM_OP_SOFTMAX) /* y (g - sum(g y)) */
        gi[0] = em_mul(y, em_sub(g, em_sum(em_mul(g, y), &dim, 1, true)));
    else /* g - exp(y) sum(g) */
        gi[0] = em_sub(g, em_mul(em_exp(y), em_sum(g, &dim, 1, true)));
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_softmax(int op, const em_tensor *t, int dim, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = em__node_new(em__op_name(op), softmax_backward, in, 1);
    if (!n) return em__record_fail(out, NULL);
    n->args.op = op;
    n->args.dim = dim;
    if (em__node_save_output(n, 0, out) != EM_OK) return em__record_fail(out, n);
    em__node_attach(n, out);
    return out;
}
