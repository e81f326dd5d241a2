/*
 * grad_elementwise.c — backward formulas of the elementwise ops: binary
 * arithmetic and its scalar forms, unary functions, where, clamp and
 * masked_fill, and the recorders that ops_elementwise.c calls.
 *
 * Every formula is written with public ops, so it runs on the tensors'
 * device and is itself differentiable (create_graph). The engine sums
 * gradients of broadcast inputs back to each input's shape, so formulas
 * return gradients in the output's shape.
 */
#include "autograd.h"

#include <math.h>

/* ------------------------------------------------------------------------ */
/* Binary: a op b                                                            */
/* ------------------------------------------------------------------------ */

/* 1 where cond, else 0, in g's dtype: a mask to multiply gradients by. */
static em_tensor *mask_like(const em_tensor *cond, const em_tensor *g)
{
    return em_cast(cond, g->dtype);
}

static em_status binary_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    bool need_a = n->edges[0].needed, need_b = n->edges[1].needed;
    em_tensor *a = NULL, *b = NULL;
    if (n->saved[0].t && !(a = em__node_saved(n, 0))) return em_last_status();
    if (n->saved[1].t && !(b = em__node_saved(n, 1))) return em_last_status();
    switch (n->args.op) {
    case EM_OP_ADD:
        gi[0] = need_a ? g : NULL;
        gi[1] = need_b ? g : NULL;
        break;
    case EM_OP_SUB:
        gi[0] = need_a ? g : NULL;
        gi[1] = need_b ? em_neg(g) : NULL;
        break;
    case EM_OP_MUL:
        if (need_a) gi[0] = em_mul(g, b);
        if (need_b) gi[1] = em_mul(g, a);
        break;
    case EM_OP_DIV: /* d/da = 1/b, d/db = -a/b^2 */
        if (need_a) gi[0] = em_div(g, b);
        if (need_b) gi[1] = em_neg(em_div(em_mul(g, a), em_square(b)));
        break;
    case EM_OP_POW: { /* d/da = b a^(b-1); d/db = a^b ln a (0 where a == 0, b >= 0) */
        if (need_a) {
            em_tensor *d = em_mul(b, em_pow(a, em_sub_scalar(b, 1.0)));
            /* b == 0 gives 0 * a^-1, which is NaN at a == 0; torch gives 0 */
            gi[0] = em_mul(g, em_masked_fill(d, em_eq_scalar(b, 0.0), 0.0));
        }
        if (need_b) {
            em_tensor *d = em_mul(em_pow(a, b), em_log(a));
            em_tensor *zero_base = em_mul(em_eq_scalar(a, 0.0), em_ge_scalar(b, 0.0));
            gi[1] = em_mul(g, em_masked_fill(d, zero_base, 0.0));
        }
        break;
    }
    case EM_OP_MAXIMUM:
    case EM_OP_MINIMUM: { /* to the larger (smaller) one; ties share half */
        em_tensor *wins = n->args.op == EM_OP_MAXIMUM ? em_gt(a, b) : em_lt(a, b);
        em_tensor *w = em_add(mask_like(wins, g), em_mul_scalar(mask_like(em_eq(a, b), g), 0.5));
        if (need_a) gi[0] = em_mul(g, w);
        if (need_b) gi[1] = em_mul(g, em_sub(em__scalar_like(g, 1.0), w));
        break;
    }
    default:
        return em__fail(EM_ERR_INTERNAL, "no backward for binary op %d", n->args.op);
    }
    if ((need_a && !gi[0]) || (need_b && !gi[1])) return em_last_status();
    return EM_OK;
}

em_tensor *em__grad_binary(int op, const em_tensor *a, const em_tensor *b, em_tensor *out)
{
    const em_tensor *in[2] = {a, b};
    if (!out || !em__ag_wanted(in, 2)) return out;
    em_node *n = em__node_new(em__op_name(op), binary_backward, in, 2);
    if (!n) return em__record_fail(out, NULL);
    n->args.op = op;
    /* save only what the formula reads, so that an in-place change to a
     * tensor the backward does not need is no error (as in torch) */
    bool need_a = a->requires_grad, need_b = b->requires_grad;
    bool both = op == EM_OP_POW || op == EM_OP_MAXIMUM || op == EM_OP_MINIMUM;
    bool save_a = both || ((op == EM_OP_MUL || op == EM_OP_DIV) && need_b);
    bool save_b = both || (op == EM_OP_MUL && need_a) || op == EM_OP_DIV;
    if (save_a) em__node_save(n, 0, a);
    if (save_b) em__node_save(n, 1, b);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Scalar forms: t op s                                                      */
/* ------------------------------------------------------------------------ */

static em_status scalar_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    double s = n->args.scalars[0];
    em_tensor *t = NULL;
    if (n->saved[0].t && !(t = em__node_saved(n, 0))) return em_last_status();
    switch (n->args.op) {
    case EM_OP_ADD:
    case EM_OP_SUB: gi[0] = g; break;
    case EM_OP_MUL: gi[0] = em_mul_scalar(g, s); break;
    case EM_OP_DIV: gi[0] = em_div_scalar(g, s); break;
    case EM_OP_POW: /* s t^(s-1); s == 0 gives 0 everywhere */
        gi[0] = s == 0.0 ? em_zeros_like(g) : em_mul(g, em_mul_scalar(em_pow_scalar(t, s - 1.0), s));
        break;
    case EM_OP_MAXIMUM:
    case EM_OP_MINIMUM: {
        em_tensor *wins = n->args.op == EM_OP_MAXIMUM ? em_gt_scalar(t, s) : em_lt_scalar(t, s);
        em_tensor *w = em_add(mask_like(wins, g), em_mul_scalar(mask_like(em_eq_scalar(t, s), g), 0.5));
        gi[0] = em_mul(g, w);
        break;
    }
    default: return em__fail(EM_ERR_INTERNAL, "no backward for scalar op %d", n->args.op);
    }
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_binary_scalar(int op, const em_tensor *t, double s, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1)) return out;
    em_node *n = em__node_new(em__op_name(op), scalar_backward, in, 1);
    if (!n) return em__record_fail(out, NULL);
    n->args.op = op;
    n->args.scalars[0] = s;
    if (op == EM_OP_POW || op == EM_OP_MAXIMUM || op == EM_OP_MINIMUM) em__node_save(n, 0, t);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Unary                                                                     */
/* ------------------------------------------------------------------------ */

#define INV_SQRT_2PI 0.39894228040143267794
#define SQRT_2_OVER_PI 0.79788456080286535588

/* d gelu / dx. Exact: Phi(x) + x phi(x). Tanh form: with
 * u = sqrt(2/pi)(x + 0.044715 x^3), y = 0.5 x (1 + tanh u):
 * 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi)(1 + 3 * 0.044715 x^2). */
static em_tensor *gelu_derivative(const em_tensor *x, bool tanh_form)
{
    if (!tanh_form) {
        em_tensor *cdf = em_mul_scalar(em_add_scalar(em_erf(em_mul_scalar(x, M_SQRT1_2)), 1.0), 0.5);
        em_tensor *pdf = em_mul_scalar(em_exp(em_mul_scalar(em_square(x), -0.5)), INV_SQRT_2PI);
        return em_add(cdf, em_mul(x, pdf));
    }
    em_tensor *x2 = em_square(x);
    em_tensor *u = em_mul_scalar(em_mul(x, em_add_scalar(em_mul_scalar(x2, 0.044715), 1.0)),
                                 SQRT_2_OVER_PI);
    em_tensor *th = em_tanh(u);
    em_tensor *left = em_mul_scalar(em_add_scalar(th, 1.0), 0.5);
    em_tensor *du = em_mul_scalar(em_add_scalar(em_mul_scalar(x2, 3 * 0.044715), 1.0), SQRT_2_OVER_PI);
    em_tensor *sech2 = em_sub(em__scalar_like(x, 1.0), em_square(th));
    return em_add(left, em_mul(em_mul_scalar(em_mul(x, sech2), 0.5), du));
}

static em_status unary_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *x = NULL, *y = NULL;
    if (n->saved[0].t && !(x = em__node_saved(n, 0))) return em_last_status();
    if (n->saved[1].t && !(y = em__node_saved(n, 1))) return em_last_status();
    em_tensor *d = NULL; /* dy/dx, or the whole gradient when noted */
    switch (n->args.op) {
    case EM_OP_NEG: gi[0] = em_neg(g); return gi[0] ? EM_OK : em_last_status();
    case EM_OP_ABS: d = em_sign(x); break;
    case EM_OP_EXP: d = y; break;
    case EM_OP_LOG: gi[0] = em_div(g, x); return gi[0] ? EM_OK : em_last_status();
    case EM_OP_SQRT: gi[0] = em_div(g, em_mul_scalar(y, 2.0)); return gi[0] ? EM_OK : em_last_status();
    case EM_OP_RSQRT: d = em_mul_scalar(em_mul(y, em_square(y)), -0.5); break;
    case EM_OP_SIN: d = em_cos(x); break;
    case EM_OP_COS: d = em_neg(em_sin(x)); break;
    case EM_OP_TANH: d = em_sub(em__scalar_like(y, 1.0), em_square(y)); break;
    case EM_OP_SIGMOID: d = em_mul(y, em_sub(em__scalar_like(y, 1.0), y)); break;
    case EM_OP_RELU: /* one fused kernel where the backend has it (ops_fused.c) */
        gi[0] = em__relu_backward(g, x);
        return gi[0] ? EM_OK : em_last_status();
    case EM_OP_GELU: d = gelu_derivative(x, n->args.flag == 1); break;
    case EM_OP_SILU: { /* s (1 + x (1 - s)) with s = sigmoid(x) */
        em_tensor *s = em_sigmoid(x);
        d = em_mul(s, em_add_scalar(em_mul(x, em_sub(em__scalar_like(s, 1.0), s)), 1.0));
        break;
    }
    case EM_OP_SOFTPLUS: { /* sigmoid(beta x), 1 above the threshold */
        double beta = n->args.scalars[0], threshold = n->args.scalars[1];
        em_tensor *bx = em_mul_scalar(x, beta);
        d = em_masked_fill(em_sigmoid(bx), em_gt_scalar(bx, threshold), 1.0);
        break;
    }
    case EM_OP_SQUARE: d = em_mul_scalar(x, 2.0); break;
    case EM_OP_RECIPROCAL: d = em_neg(em_square(y)); break;
    case EM_OP_ERF: /* 2/sqrt(pi) exp(-x^2) */
        d = em_mul_scalar(em_exp(em_neg(em_square(x))), M_2_SQRTPI);
        break;
    case EM_OP_SIGN: gi[0] = em_zeros_like(g); return gi[0] ? EM_OK : em_last_status();
    default: return em__fail(EM_ERR_INTERNAL, "no backward for unary op %d", n->args.op);
    }
    gi[0] = em_mul(g, d);
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_unary(int op, const em_tensor *t, const em_op_params *p, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1)) return out;
    if (!em_dtype_is_float(out->dtype)) return out; /* neg/abs/relu of ints */
    em_node *n = em__node_new(em__op_name(op), unary_backward, in, 1);
    if (!n) return em__record_fail(out, NULL);
    n->args.op = op;
    n->args.flag = p ? p->flag : 0;
    n->args.scalars[0] = p ? p->scalar[0] : 0;
    n->args.scalars[1] = p ? p->scalar[1] : 0;
    /* save x or y (the output), whichever the formula reads */
    bool needs_y = op == EM_OP_EXP || op == EM_OP_SQRT || op == EM_OP_RSQRT || op == EM_OP_TANH ||
                   op == EM_OP_SIGMOID || op == EM_OP_RECIPROCAL;
    bool needs_x = !needs_y && op != EM_OP_NEG && op != EM_OP_SIGN;
    if (needs_x) em__node_save(n, 0, t);
    if (needs_y && em__node_save_output(n, 1, out) != EM_OK) return em__record_fail(out, n);
    em__node_attach(n, out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* where, clamp, masked_fill                                                 */
/* ------------------------------------------------------------------------ */

static em_status where_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *cond = em__node_saved(n, 0);
    if (!cond) return em_last_status();
    em_tensor *zero = em__scalar_like(g, 0.0);
    /* edges: 0 cond (never needed), 1 a, 2 b */
    if (n->edges[1].needed && !(gi[1] = em_where(cond, g, zero))) return em_last_status();
    if (n->edges[2].needed && !(gi[2] = em_where(cond, zero, g))) return em_last_status();
    return EM_OK;
}

em_tensor *em__grad_where(const em_tensor *cond, const em_tensor *a, const em_tensor *b,
                          em_tensor *out)
{
    const em_tensor *in[3] = {cond, a, b};
    if (!out || !em__ag_wanted(in, 3)) return out;
    em_node *n = em__node_new("where", where_backward, in, 3);
    if (!n) return em__record_fail(out, NULL);
    em__node_save(n, 0, cond);
    em__node_attach(n, out);
    return out;
}

static em_status clamp_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *x = em__node_saved(n, 0);
    if (!x) return em_last_status();
    /* the gradient passes where lo <= x <= hi (both ends inclusive, as torch) */
    em_tensor *inside = em_mul(em_ge_scalar(x, n->args.scalars[0]), em_le_scalar(x, n->args.scalars[1]));
    gi[0] = em_mul(g, mask_like(inside, g));
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_clamp(const em_tensor *t, double lo, double hi, em_tensor *out)
{
    const em_tensor *in[1] = {t};
    if (!out || !em__ag_wanted(in, 1)) return out;
    em_node *n = em__node_new("clamp", clamp_backward, in, 1);
    if (!n) return em__record_fail(out, NULL);
    n->args.scalars[0] = lo;
    n->args.scalars[1] = hi;
    em__node_save(n, 0, t);
    em__node_attach(n, out);
    return out;
}

static em_status masked_fill_backward(em_node *n, em_tensor *g, em_tensor **gi)
{
    em_tensor *mask = em__node_saved(n, 0);
    if (!mask) return em_last_status();
    gi[0] = em_masked_fill(g, mask, 0.0);
    return gi[0] ? EM_OK : em_last_status();
}

em_tensor *em__grad_masked_fill(const em_tensor *t, const em_tensor *mask, em_tensor *out)
{
    const em_tensor *in[2] = {t, mask};
    if (!out || !em__ag_wanted(in, 2)) return out;
    em_node *n = em__node_new("masked_fill", masked_fill_backward, in, 2);
    if (!n) return em__record_fail(out, NULL);
    em__node_save(n, 0, mask);
    em__node_attach(n, out);
    return out;
}
