/*
 * grad_linalg.c — backward formulas of matmul (torch.matmul semantics),
 * linear, linear + relu (the fused form) and addmm, and the recorders that
 * ops_linalg.c calls.
 *
 * Each operand is saved only when the OTHER operand's gradient needs it
 * (d(a b)/da reads b, d(a b)/db reads a). Formulas use public ops only
 * (matmul, transpose, reshape, unsqueeze, sum), so they run on any device
 * and are differentiable themselves (create_graph).
 */
#include "autograd.h"

/* ------------------------------------------------------------------------ */
/* matmul                                                                    */
/* ------------------------------------------------------------------------ */

/* Edges and saved slots: 0 a, 1 b. The 1-D operands get their unit dim
 * back (a [K] -> [1,K], b [K] -> [K,1]) and g its [M, N] dims, so that
 * every form is the batched matrix case:
 *   ga = g b^T,  gb = a^T g,
 * each summed over the batch dims its operand was broadcast in and
 * reshaped to the operand's shape. */
static em_status matmul_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    const em_edge *ea = &n->edges[0], *eb = &n->edges[1];
    bool a1d = ea->ndim == 1, b1d = eb->ndim == 1;
    em_tensor *a = NULL, *b = NULL;
    if (n->saved[0].t && !(a = em__node_saved(n, 0))) return em_last_status();
    if (n->saved[1].t && !(b = em__node_saved(n, 1))) return em_last_status();
    em_tensor *g1 = b1d ? em_unsqueeze(g, -1) : g;
    if (g1 && a1d) g1 = em_unsqueeze(g1, g1->ndim - 1);
    if (!g1) return em_last_status();
    if (ea->needed) {
        em_tensor *b1 = b1d ? em_unsqueeze(b, -1) : b;
        em_tensor *ga = em_matmul(g1, em_transpose(b1, -2, -1));
        int64_t shape1[EM_MAX_DIMS] = {1};
        for (int i = 0; i < ea->ndim; i++) shape1[i + a1d] = ea->shape[i];
        ga = em__sum_to_shape(ga, ea->ndim + a1d, shape1);
        if (!(gi[0] = a1d ? em_reshape(ga, 1, ea->shape) : ga)) return em_last_status();
    }
    if (eb->needed) {
        em_tensor *a1 = a1d ? em_unsqueeze(a, 0) : a;
        em_tensor *gb = em_matmul(em_transpose(a1, -2, -1), g1);
        int64_t shape1[EM_MAX_DIMS];
        for (int i = 0; i < eb->ndim; i++) shape1[i] = eb->shape[i];
        if (b1d) shape1[1] = 1;
        gb = em__sum_to_shape(gb, eb->ndim + b1d, shape1);
        if (!(gi[1] = b1d ? em_reshape(gb, 1, eb->shape) : gb)) return em_last_status();
    }
    return EM_OK;
}

em_tensor *em__grad_matmul(const em_tensor *a, const em_tensor *b, em_tensor *out)
{
    const em_tensor *in[2] = {a, b};
    if (!out || !em__ag_wanted(in, 2) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = em__node_new("matmul", matmul_backward, in, 2);
    if (!n) return em__record_fail(out, NULL);
    if (b->requires_grad) em__node_save(n, 0, a);
    if (a->requires_grad) em__node_save(n, 1, b);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* linear: x [..., in] W^T [in, out] + bias [out]                            */
/* ------------------------------------------------------------------------ */

/* Edges: 0 x, 1 weight, 2 bias (absent: no edge needed). Saved: 0 x (for
 * gW), 1 weight (for gx). args.ints: 0 rows M (the product of x's leading
 * dims), 1 in, 2 out. */
static em_status linear_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    int64_t M = n->args.ints[0], K = n->args.ints[1], N = n->args.ints[2];
    em_tensor *x = NULL, *w = NULL;
    if (n->saved[0].t && !(x = em__node_saved(n, 0))) return em_last_status();
    if (n->saved[1].t && !(w = em__node_saved(n, 1))) return em_last_status();
    em_tensor *g2 = em_reshape(g, 2, (const int64_t[]){M, N});
    if (!g2) return em_last_status();
    if (n->edges[0].needed && !(gi[0] = em_matmul(g, w))) return em_last_status();
    if (n->edges[1].needed) {
        em_tensor *x2 = em_reshape(x, 2, (const int64_t[]){M, K});
        if (!(gi[1] = em_matmul(em_transpose(g2, 0, 1), x2))) return em_last_status();
    }
    if (n->edges[2].needed) {
        int d0 = 0;
        if (!(gi[2] = em_sum(g2, &d0, 1, false))) return em_last_status();
    }
    return EM_OK;
}

/* A linear node (name, fn) for out = [act](x W^T + b), saving what the
 * gradients read; NULL (error set) when out of memory. */
static em_node *linear_node(const char *name, em_backward_fn fn, const em_tensor *x,
                            const em_tensor *weight, const em_tensor *bias)
{
    const em_tensor *in[3] = {x, weight, bias};
    em_node *n = em__node_new(name, fn, in, 3);
    if (!n) return NULL;
    int64_t K = weight->shape[1], N = weight->shape[0];
    n->args.ints[0] = em__numel(x->ndim - 1, x->shape);
    n->args.ints[1] = K;
    n->args.ints[2] = N;
    if (weight->requires_grad) em__node_save(n, 0, x);
    if (x->requires_grad) em__node_save(n, 1, weight);
    return n;
}

em_tensor *em__grad_linear(const em_tensor *x, const em_tensor *weight, const em_tensor *bias,
                           em_tensor *out)
{
    const em_tensor *in[3] = {x, weight, bias};
    if (!out || !em__ag_wanted(in, 3) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = linear_node("linear", linear_backward, x, weight, bias);
    if (!n) return em__record_fail(out, NULL);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* linear + relu (EM_OP_LINEAR_ACT): y = relu(x W^T + b)                    */
/* ------------------------------------------------------------------------ */

/* As linear, plus saved slot 2: the output y. The gradient of the
 * pre-activation is g where y > 0 (em__relu_backward: one kernel, or
 * composed in a create_graph pass), then linear's formulas. */
static em_status linear_relu_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *y = em__node_saved(n, 2);
    if (!y) return em_last_status();
    em_tensor *gz = em__relu_backward(g, y);
    if (!gz) return em_last_status();
    return linear_backward(n, gz, gi);
}

em_tensor *em__grad_linear_relu(const em_tensor *x, const em_tensor *weight,
                                const em_tensor *bias, em_tensor *out)
{
    const em_tensor *in[3] = {x, weight, bias};
    if (!out || !em__ag_wanted(in, 3) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = linear_node("linear_relu", linear_relu_backward, x, weight, bias);
    if (!n) return em__record_fail(out, NULL);
    if (em__node_save_output(n, 2, out) != EM_OK) return em__record_fail(out, n);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* addmm: c + a @ b                                                          */
/* ------------------------------------------------------------------------ */

/* Edges: 0 c, 1 a, 2 b. Saved: 1 a (for gb), 2 b (for ga). gc is g; the
 * engine sums it back to c's broadcast shape. */
static em_status addmm_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *a = NULL, *b = NULL;
    if (n->saved[1].t && !(a = em__node_saved(n, 1))) return em_last_status();
    if (n->saved[2].t && !(b = em__node_saved(n, 2))) return em_last_status();
    if (n->edges[0].needed) gi[0] = g;
    if (n->edges[1].needed && !(gi[1] = em_matmul(g, em_transpose(b, 0, 1))))
        return em_last_status();
    if (n->edges[2].needed && !(gi[2] = em_matmul(em_transpose(a, 0, 1), g)))
        return em_last_status();
    return EM_OK;
}

em_tensor *em__grad_addmm(const em_tensor *c, const em_tensor *a, const em_tensor *b,
                          em_tensor *out)
{
    const em_tensor *in[3] = {c, a, b};
    if (!out || !em__ag_wanted(in, 3) || !em_dtype_is_float(out->dtype)) return out;
    em_node *n = em__node_new("addmm", addmm_backward, in, 3);
    if (!n) return em__record_fail(out, NULL);
    if (b->requires_grad) em__node_save(n, 1, a);
    if (a->requires_grad) em__node_save(n, 2, b);
    em__node_attach(n, out);
    return out;
}
