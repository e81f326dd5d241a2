/*
 * ops_fused.c — fused ops that the DL library uses when a backend has them:
 * the per-row cross-entropy of logits [N, C] with class-index targets
 * (EM_OP_CROSS_ENTROPY, ABI 1.3) and its backward (EM_OP_CROSS_ENTROPY_BACKWARD).
 *
 * em__cross_entropy_rows is internal (nn/loss.c calls it); it returns
 * EM_ERR_UNSUPPORTED, recording no error, when the fused path does not apply
 * (the backend lacks the kernel, a layout or dtype it does not take), so the
 * caller composes the loss from public ops instead. Gradients: the fused
 * backward kernel in a plain backward pass; in a create_graph pass (grad mode
 * on) the same formula from differentiable public ops, so higher derivatives
 * still work.
 *
 * em__relu_backward (ABI 1.4, EM_OP_RELU_BACKWARD): g masked by y > 0 in one
 * kernel, for the backward of relu and of the fused linear + relu (grad_*.c).
 * Composed as g * (y > 0) where the kernel is missing, EMBER_FUSED=0, the
 * dtypes differ, or in a create_graph pass (differentiable public ops).
 */
#include "autograd.h"

static const em_op_params base_params = {.struct_size = sizeof(em_op_params)};

/* grad_logits = g[:, None] * (softmax(x) - (1 - eps) onehot(t) - eps / C), 0 in
 * ignored rows, from public ops (differentiable). */
static em_tensor *ce_backward_composed(const em_tensor *x, const em_tensor *t, const em_tensor *g,
                                       int64_t ignore_index, double eps)
{
    int64_t C = x->shape[1];
    em_tensor *ignored = em_eq_scalar(t, (double)ignore_index);
    em_tensor *safe = em_masked_fill(t, ignored, 0.0);
    em_tensor *hot = em_cast(em_one_hot(safe, C), x->dtype);
    em_tensor *d = em_sub(em_softmax(x, 1), em_add_scalar(em_mul_scalar(hot, 1.0 - eps), eps / (double)C));
    em_tensor *gi = em_mul(d, em_unsqueeze(g, 1));
    return em_masked_fill(gi, em_unsqueeze(ignored, 1), 0.0);
}

static em_status ce_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *x = em__node_saved(n, 0), *t = em__node_saved(n, 1), *lse = em__node_saved(n, 2);
    if (!x || !t || !lse) return em_last_status();
    int64_t ignore_index = n->args.ints[0];
    double eps = n->args.scalars[0];
    em_device *dev = x->storage->device;
    if (em__grad_enabled() || !em__has_kernel(dev, EM_OP_CROSS_ENTROPY_BACKWARD, x->dtype) ||
        g->dtype != x->dtype) {
        gi[0] = ce_backward_composed(x, t, g, ignore_index, eps);
        return gi[0] ? EM_OK : em_last_status();
    }
    em_tensor *gc = em_contiguous(g);
    em_tensor *out = em__alloc(dev, x->dtype, 2, x->shape);
    em_status st = gc && out ? EM_OK : em_last_status();
    if (st == EM_OK) {
        em_op_params p = base_params;
        p.ints[0] = ignore_index;
        p.scalar[0] = eps;
        em_tdesc in[4] = {em__desc(x), em__desc(t), em__desc(lse), em__desc(gc)}, od = em__desc(out);
        st = em__run_op("cross_entropy backward", dev, EM_OP_CROSS_ENTROPY_BACKWARD, in, 4, &od, 1,
                        &p);
    }
    if (st != EM_OK) {
        em_tensor_release(out);
        return st;
    }
    gi[0] = em__own(out);
    return EM_OK;
}

em_status em__cross_entropy_rows(const em_tensor *logits, const em_tensor *target,
                                 int64_t ignore_index, double label_smoothing, em_tensor **rows)
{
    *rows = NULL;
    static const char *name = "em_cross_entropy";
    em_device *dev = logits->storage->device;
    if (logits->ndim != 2 || target->ndim != 1 || target->shape[0] != logits->shape[0] ||
        (logits->dtype != EM_F32 && logits->dtype != EM_F64) ||
        (target->dtype != EM_I64 && target->dtype != EM_I32) || target->storage->device != dev ||
        !em_tensor_is_contiguous(logits) || !em_tensor_is_contiguous(target) ||
        logits->numel == 0 || !em__fused_enabled() ||
        !em__has_kernel(dev, EM_OP_CROSS_ENTROPY, logits->dtype))
        return EM_ERR_UNSUPPORTED; /* not recorded: the caller composes instead */
    em_tensor *loss = em__alloc(dev, logits->dtype, 1, logits->shape);
    em_tensor *lse = em__alloc(dev, logits->dtype, 1, logits->shape);
    em_status st = loss && lse ? EM_OK : em_last_status();
    if (st == EM_OK) {
        em_op_params p = base_params;
        p.ints[0] = ignore_index;
        p.scalar[0] = label_smoothing;
        em_tdesc in[2] = {em__desc(logits), em__desc(target)};
        em_tdesc out[2] = {em__desc(loss), em__desc(lse)};
        st = em__run_op(name, dev, EM_OP_CROSS_ENTROPY, in, 2, out, 2, &p);
    }
    const em_tensor *inputs[1] = {logits};
    if (st == EM_OK && em__ag_wanted(inputs, 1)) {
        em_node *n = em__node_new("cross_entropy", ce_backward, inputs, 1);
        if (!n) {
            st = em_last_status();
        } else {
            n->args.ints[0] = ignore_index;
            n->args.scalars[0] = label_smoothing;
            em__node_save(n, 0, logits);
            em__node_save(n, 1, target);
            em__node_save(n, 2, lse);
            em__node_attach(n, loss);
        }
    }
    em_tensor_release(lse); /* the node holds its own reference */
    if (st != EM_OK) {
        em_tensor_release(loss);
        return st;
    }
    *rows = em__own(loss);
    return EM_OK;
}

/* ------------------------------------------------------------------------ */
/* relu backward: g where y > 0, else 0                                      */
/* ------------------------------------------------------------------------ */

em_tensor *em__relu_backward(const em_tensor *g, const em_tensor *y)
{
    static const char *name = "relu backward";
    em_device *dev = g->storage->device;
    int nd;
    int64_t shape[EM_MAX_DIMS];
    bool fused = !em__grad_enabled() && em__fused_enabled() && g->dtype == y->dtype &&
                 em_dtype_is_float(g->dtype) && y->storage->device == dev &&
                 em__has_kernel(dev, EM_OP_RELU_BACKWARD, g->dtype) &&
                 em__broadcast_shapes(g->ndim, g->shape, y->ndim, y->shape, &nd, shape);
    if (!fused) /* the composed form: g * (y > 0) cast to g's dtype */
        return em_mul(g, em_cast(em_gt_scalar(y, 0.0), g->dtype));
    em_tensor *out = em__alloc(dev, g->dtype, nd, shape);
    if (!out) return NULL;
    if (out->numel > 0) {
        em_tdesc in[2] = {em__desc_broadcast(g, nd, shape), em__desc_broadcast(y, nd, shape)};
        em_tdesc od = em__desc(out);
        if (em__run_op(name, dev, EM_OP_RELU_BACKWARD, in, 2, &od, 1, &base_params) != EM_OK) {
            em_tensor_release(out);
            return NULL;
        }
    }
    return em__own(out);
}
