/*
 * ops_elementwise.c — the elementwise ops of the public API: binary
 * arithmetic and their scalar forms, comparisons, where, clamp, masked_fill,
 * unary functions and the in-place variants. Each checks its arguments,
 * applies broadcasting and type promotion, allocates the result and hands
 * descriptors to em__run_op. No arithmetic happens here.
 */
#include "autograd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum bin_kind {
    BIN_ARITH,   /* result in the promoted dtype (bool: see compute_dtype)    */
    BIN_DIV,     /* true division: integers compute in f32                    */
    BIN_COMPARE  /* result is bool                                            */
} bin_kind;

static const em_op_params base_params = {.struct_size = sizeof(em_op_params)};

static bool is_whole(double s) { return isfinite(s) && s == trunc(s); }

/* The dtype an op of this kind computes in, given the promoted input dtype.
 * As in PyTorch, bool op bool stays bool for add (or), mul (and), maximum
 * and minimum; pow computes in i64; sub is refused by the caller. */
static em_dtype compute_dtype(em_dtype promoted, bin_kind kind, int op)
{
    if (kind == BIN_DIV && !em_dtype_is_float(promoted)) return EM_F32;
    if (kind == BIN_ARITH && promoted == EM_BOOL && op == EM_OP_POW) return EM_I64;
    return promoted;
}

static em_status bool_sub_error(const char *name)
{
    return em__fail(EM_ERR_DTYPE, "%s: subtracting two bool tensors is not supported (as in "
                    "PyTorch); use em_ne for xor or cast to an integer dtype first", name);
}

/* Scalar promotion (see ember.h): floats keep their dtype; integers keep
 * theirs with a whole scalar and become f32 with a fractional one. */
static em_dtype scalar_promote(em_dtype t, double s, bin_kind kind)
{
    if (em_dtype_is_float(t)) return t;
    if (!is_whole(s)) return kind == BIN_COMPARE ? EM_F64 : EM_F32;
    if (t == EM_BOOL) return EM_I64;
    return t;
}

static em_status shape_error(const char *name, const em_tensor *a, const em_tensor *b)
{
    char sa[160], sb[160];
    return em__fail(EM_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", name,
                    em__shape_str(a->ndim, a->shape, sa, sizeof sa),
                    em__shape_str(b->ndim, b->shape, sb, sizeof sb));
}

/* Runs `op` on n inputs already cast to their compute dtype, broadcast to
 * (ndim, shape), into a fresh tensor of out_dtype. Releases nothing. */
static em_tensor *run_fresh(const char *name, int op, const em_tensor *const *in, int n_in,
                            em_dtype out_dtype, int ndim, const int64_t *shape,
                            const em_op_params *p)
{
    em_device *dev = in[0]->storage->device;
    em_tensor *out = em__alloc(dev, out_dtype, ndim, shape);
    if (!out || out->numel == 0) return out;
    em_tdesc d[4];
    for (int i = 0; i < n_in; i++) d[i] = em__desc_broadcast(in[i], ndim, shape);
    em_tdesc od = em__desc(out);
    if (em__run_op(name, dev, op, d, n_in, &od, 1, p) != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return out;
}

static em_tensor *binary(const char *name, int op, const em_tensor *a, const em_tensor *b,
                         bin_kind kind)
{
    if (!a) { em__null_arg(name, "a"); return NULL; }
    if (!b) { em__null_arg(name, "b"); return NULL; }
    const em_tensor *both[2] = {a, b};
    if (em__same_device(name, both, 2) != EM_OK) return NULL;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    if (!em__broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &ndim, shape)) {
        shape_error(name, a, b);
        return NULL;
    }
    em_dtype ct = compute_dtype(em_promote_types(a->dtype, b->dtype), kind, op);
    if (ct == EM_BOOL && op == EM_OP_SUB) {
        bool_sub_error(name);
        return NULL;
    }
    em_tensor *ca = em__cast(name, a, ct);
    em_tensor *cb = ca ? em__cast(name, b, ct) : NULL;
    em_tensor *out = NULL;
    if (cb) {
        const em_tensor *in[2] = {ca, cb};
        out = run_fresh(name, op, in, 2, kind == BIN_COMPARE ? EM_BOOL : ct, ndim, shape,
                        &base_params);
    }
    em_tensor_release(ca);
    em_tensor_release(cb);
    if (kind != BIN_COMPARE) out = em__grad_binary(op, a, b, out);
    return em__own(out);
}

static em_tensor *binary_scalar(const char *name, int op, const em_tensor *t, double s,
                                bin_kind kind)
{
    if (!t) { em__null_arg(name, "t"); return NULL; }
    em_dtype ct = compute_dtype(scalar_promote(t->dtype, s, kind), kind, op);
    if (op == EM_OP_POW && !em_dtype_is_float(ct) && s < 0) ct = EM_F32;
    em_tensor *c = em__cast(name, t, ct);
    if (!c) return NULL;
    em_op_params p = base_params;
    p.scalar[0] = s;
    const em_tensor *in[1] = {c};
    em_tensor *out = run_fresh(name, op, in, 1, kind == BIN_COMPARE ? EM_BOOL : ct, t->ndim,
                               t->shape, &p);
    em_tensor_release(c);
    if (kind != BIN_COMPARE) out = em__grad_binary_scalar(op, t, s, out);
    return em__own(out);
}

#define BINARY(fn, op, kind)                                                  \
    em_tensor *fn(const em_tensor *a, const em_tensor *b) { return binary(#fn, op, a, b, kind); }
#define SCALAR(fn, op, kind)                                                  \
    em_tensor *fn(const em_tensor *t, double s) { return binary_scalar(#fn, op, t, s, kind); }

BINARY(em_add, EM_OP_ADD, BIN_ARITH)
BINARY(em_sub, EM_OP_SUB, BIN_ARITH)
BINARY(em_mul, EM_OP_MUL, BIN_ARITH)
BINARY(em_div, EM_OP_DIV, BIN_DIV)
BINARY(em_pow, EM_OP_POW, BIN_ARITH)
BINARY(em_maximum, EM_OP_MAXIMUM, BIN_ARITH)
BINARY(em_minimum, EM_OP_MINIMUM, BIN_ARITH)
BINARY(em_eq, EM_OP_EQ, BIN_COMPARE)
BINARY(em_ne, EM_OP_NE, BIN_COMPARE)
BINARY(em_lt, EM_OP_LT, BIN_COMPARE)
BINARY(em_le, EM_OP_LE, BIN_COMPARE)
BINARY(em_gt, EM_OP_GT, BIN_COMPARE)
BINARY(em_ge, EM_OP_GE, BIN_COMPARE)
SCALAR(em_add_scalar, EM_OP_ADD, BIN_ARITH)
SCALAR(em_sub_scalar, EM_OP_SUB, BIN_ARITH)
SCALAR(em_mul_scalar, EM_OP_MUL, BIN_ARITH)
SCALAR(em_div_scalar, EM_OP_DIV, BIN_DIV)
SCALAR(em_pow_scalar, EM_OP_POW, BIN_ARITH)
SCALAR(em_maximum_scalar, EM_OP_MAXIMUM, BIN_ARITH)
SCALAR(em_minimum_scalar, EM_OP_MINIMUM, BIN_ARITH)
SCALAR(em_eq_scalar, EM_OP_EQ, BIN_COMPARE)
SCALAR(em_ne_scalar, EM_OP_NE, BIN_COMPARE)
SCALAR(em_lt_scalar, EM_OP_LT, BIN_COMPARE)
SCALAR(em_le_scalar, EM_OP_LE, BIN_COMPARE)
SCALAR(em_gt_scalar, EM_OP_GT, BIN_COMPARE)
SCALAR(em_ge_scalar, EM_OP_GE, BIN_COMPARE)

/* ------------------------------------------------------------------------ */
/* where, clamp, masked_fill                                                 */
/* ------------------------------------------------------------------------ */

em_tensor *em_where(const em_tensor *cond, const em_tensor *a, const em_tensor *b)
{
    static const char *name = "em_where";
    if (!cond) { em__null_arg(name, "cond"); return NULL; }
    if (!a) { em__null_arg(name, "a"); return NULL; }
    if (!b) { em__null_arg(name, "b"); return NULL; }
    const em_tensor *all[3] = {cond, a, b};
    if (em__same_device(name, all, 3) != EM_OK) return NULL;
    if (cond->dtype != EM_BOOL) {
        em__fail(EM_ERR_DTYPE, "%s: cond must be bool, got %s", name, em_dtype_name(cond->dtype));
        return NULL;
    }
    int n1, ndim;
    int64_t s1[EM_MAX_DIMS], shape[EM_MAX_DIMS];
    if (!em__broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &n1, s1)) {
        shape_error(name, a, b);
        return NULL;
    }
    if (!em__broadcast_shapes(cond->ndim, cond->shape, n1, s1, &ndim, shape)) {
        char sc[160], sab[160];
        em__fail(EM_ERR_SHAPE, "%s: cond shape %s does not broadcast with %s", name,
                 em__shape_str(cond->ndim, cond->shape, sc, sizeof sc),
                 em__shape_str(n1, s1, sab, sizeof sab));
        return NULL;
    }
    em_dtype ct = em_promote_types(a->dtype, b->dtype);
    em_tensor *ca = em__cast(name, a, ct);
    em_tensor *cb = ca ? em__cast(name, b, ct) : NULL;
    em_tensor *out = NULL;
    if (cb) {
        const em_tensor *in[3] = {ca, cb, cond};
        out = run_fresh(name, EM_OP_WHERE, in, 3, ct, ndim, shape, &base_params);
    }
    em_tensor_release(ca);
    em_tensor_release(cb);
    return em__own(em__grad_where(cond, a, b, out));
}

static em_dtype clamp_dtype(em_dtype t, double lo, double hi)
{
    if (em_dtype_is_float(t)) return t;
    bool whole = (is_whole(lo) || isinf(lo)) && (is_whole(hi) || isinf(hi));
    if (!whole) return EM_F32;
    return t == EM_BOOL ? EM_I64 : t;
}

em_tensor *em_clamp(const em_tensor *t, double lo, double hi)
{
    static const char *name = "em_clamp";
    if (!t) { em__null_arg(name, "t"); return NULL; }
    if (isnan(lo) || isnan(hi)) {
        em__fail(EM_ERR_INVALID_ARG, "%s: bounds must not be NaN (use +-INFINITY for none)", name);
        return NULL;
    }
    em_tensor *c = em__cast(name, t, clamp_dtype(t->dtype, lo, hi));
    if (!c) return NULL;
    em_op_params p = base_params;
    p.scalar[0] = lo;
    p.scalar[1] = hi;
    const em_tensor *in[1] = {c};
    em_tensor *out = run_fresh(name, EM_OP_CLAMP, in, 1, c->dtype, t->ndim, t->shape, &p);
    em_tensor_release(c);
    return em__own(em__grad_clamp(t, lo, hi, out));
}

static bool broadcasts_to(const em_tensor *src, const em_tensor *dst)
{
    int n;
    int64_t shape[EM_MAX_DIMS];
    return em__broadcast_shapes(dst->ndim, dst->shape, src->ndim, src->shape, &n, shape) &&
           n == dst->ndim && memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)n) == 0;
}

static em_status check_mask(const char *name, const em_tensor *t, const em_tensor *mask)
{
    const em_tensor *both[2] = {t, mask};
    if (em__same_device(name, both, 2) != EM_OK) return em_last_status();
    if (mask->dtype != EM_BOOL)
        return em__fail(EM_ERR_DTYPE, "%s: mask must be bool, got %s", name,
                        em_dtype_name(mask->dtype));
    if (!broadcasts_to(mask, t)) {
        char sm[160], st[160];
        return em__fail(EM_ERR_SHAPE, "%s: mask shape %s does not broadcast to %s", name,
                        em__shape_str(mask->ndim, mask->shape, sm, sizeof sm),
                        em__shape_str(t->ndim, t->shape, st, sizeof st));
    }
    return EM_OK;
}

em_tensor *em_masked_fill(const em_tensor *t, const em_tensor *mask, double value)
{
    static const char *name = "em_masked_fill";
    if (!t) { em__null_arg(name, "t"); return NULL; }
    if (!mask) { em__null_arg(name, "mask"); return NULL; }
    if (check_mask(name, t, mask) != EM_OK) return NULL;
    em_op_params p = base_params;
    p.scalar[0] = value;
    const em_tensor *in[2] = {t, mask};
    em_tensor *out = run_fresh(name, EM_OP_MASKED_FILL, in, 2, t->dtype, t->ndim, t->shape, &p);
    return em__own(em__grad_masked_fill(t, mask, out));
}

/* ------------------------------------------------------------------------ */
/* Unary                                                                     */
/* ------------------------------------------------------------------------ */

typedef enum unary_kind {
    UN_FLOAT,    /* integers and bool compute in f32                          */
    UN_KEEP_INT  /* integers keep their dtype; bool computes as i64           */
} unary_kind;

static em_tensor *unary_p(const char *name, int op, const em_tensor *t, unary_kind kind,
                          const em_op_params *p)
{
    if (!t) { em__null_arg(name, "t"); return NULL; }
    em_dtype ct = t->dtype;
    if (!em_dtype_is_float(ct)) ct = kind == UN_FLOAT ? EM_F32 : (ct == EM_BOOL ? EM_I64 : ct);
    em_tensor *c = em__cast(name, t, ct);
    if (!c) return NULL;
    const em_tensor *in[1] = {c};
    em_tensor *out = run_fresh(name, op, in, 1, ct, t->ndim, t->shape, p);
    em_tensor_release(c);
    return em__own(em__grad_unary(op, t, p, out));
}

#define UNARY(fn, op, kind)                                                   \
    em_tensor *fn(const em_tensor *t) { return unary_p(#fn, op, t, kind, &base_params); }

UNARY(em_neg, EM_OP_NEG, UN_KEEP_INT)
UNARY(em_abs, EM_OP_ABS, UN_KEEP_INT)
UNARY(em_exp, EM_OP_EXP, UN_FLOAT)
UNARY(em_log, EM_OP_LOG, UN_FLOAT)
UNARY(em_sqrt, EM_OP_SQRT, UN_FLOAT)
UNARY(em_rsqrt, EM_OP_RSQRT, UN_FLOAT)
UNARY(em_sin, EM_OP_SIN, UN_FLOAT)
UNARY(em_cos, EM_OP_COS, UN_FLOAT)
UNARY(em_tanh, EM_OP_TANH, UN_FLOAT)
UNARY(em_sigmoid, EM_OP_SIGMOID, UN_FLOAT)
UNARY(em_relu, EM_OP_RELU, UN_KEEP_INT)
UNARY(em_silu, EM_OP_SILU, UN_FLOAT)
UNARY(em_square, EM_OP_SQUARE, UN_KEEP_INT)
UNARY(em_reciprocal, EM_OP_RECIPROCAL, UN_FLOAT)
UNARY(em_erf, EM_OP_ERF, UN_FLOAT)
UNARY(em_sign, EM_OP_SIGN, UN_KEEP_INT)

em_tensor *em_gelu(const em_tensor *t, bool approximate_tanh)
{
    em_op_params p = base_params;
    p.flag = approximate_tanh ? 1 : 0;
    return unary_p("em_gelu", EM_OP_GELU, t, UN_FLOAT, &p);
}

em_tensor *em_softplus(const em_tensor *t, double beta, double threshold)
{
    if (!(beta != 0) || isnan(threshold)) {
        em__fail(EM_ERR_INVALID_ARG, "em_softplus: beta must be non-zero and threshold a number "
                 "(got beta %g, threshold %g)", beta, threshold);
        return NULL;
    }
    em_op_params p = base_params;
    p.scalar[0] = beta;
    p.scalar[1] = threshold;
    return unary_p("em_softplus", EM_OP_SOFTPLUS, t, UN_FLOAT, &p);
}

/* ------------------------------------------------------------------------ */
/* In place                                                                  */
/* ------------------------------------------------------------------------ */

/* Whether a result of dtype `from` may be stored into a tensor of `to`. */
static bool can_store(em_dtype from, em_dtype to)
{
    if (em_dtype_is_float(from)) return em_dtype_is_float(to);
    if (from != EM_BOOL) return to != EM_BOOL;
    return true;
}

/* self <- op(self, other | scalar), computed in ct and stored into self. */
static em_status inplace(const char *name, int op, em_tensor *self, const em_tensor *other,
                         em_dtype ct, const em_op_params *p)
{
    if (em__check_writable(name, self) != EM_OK) return em_last_status();
    if (em__ag_check_inplace(name, self, other) != EM_OK) return em_last_status();
    if (!can_store(ct, self->dtype))
        return em__fail(EM_ERR_DTYPE, "%s: result type %s cannot be stored in a %s tensor in place",
                        name, em_dtype_name(ct), em_dtype_name(self->dtype));
    if (other && !broadcasts_to(other, self)) {
        char so[160], ss[160];
        return em__fail(EM_ERR_SHAPE, "%s: other's shape %s does not broadcast to self's %s", name,
                        em__shape_str(other->ndim, other->shape, so, sizeof so),
                        em__shape_str(self->ndim, self->shape, ss, sizeof ss));
    }
    if (self->numel == 0) return EM_OK;
    em_device *dev = self->storage->device;
    em_status st = EM_OK;
    if (ct == self->dtype) {
        em_tensor *co = other ? em__cast(name, other, ct) : NULL;
        if (other && !co) return em_last_status();
        em_tdesc in[2] = {em__desc(self)};
        if (co) in[1] = em__desc_broadcast(co, self->ndim, self->shape);
        em_tdesc od = em__desc(self);
        st = em__run_op(name, dev, op, in, co ? 2 : 1, &od, 1, p);
        em_tensor_release(co);
    } else {
        /* compute in ct into a temporary, then store with a cast */
        em_tensor *cs = em__cast(name, self, ct);
        em_tensor *co = cs && other ? em__cast(name, other, ct) : NULL;
        em_tensor *tmp = NULL;
        if (cs && (!other || co)) {
            const em_tensor *in[2] = {cs, co};
            tmp = run_fresh(name, op, in, co ? 2 : 1, ct, self->ndim, self->shape, p);
        }
        st = tmp ? em__copy_into(name, self, tmp) : em_last_status();
        em_tensor_release(cs);
        em_tensor_release(co);
        em_tensor_release(tmp);
    }
    if (st == EM_OK) self->storage->version++;
    return st;
}

static em_status inplace_binary(const char *name, int op, em_tensor *self, const em_tensor *other,
                                bin_kind kind)
{
    if (!self) return em__null_arg(name, "self");
    if (!other) return em__null_arg(name, "other");
    const em_tensor *both[2] = {self, other};
    if (em__same_device(name, both, 2) != EM_OK) return em_last_status();
    em_dtype ct = compute_dtype(em_promote_types(self->dtype, other->dtype), kind, op);
    if (ct == EM_BOOL && op == EM_OP_SUB) return bool_sub_error(name);
    return inplace(name, op, self, other, ct, &base_params);
}

static em_status inplace_scalar(const char *name, int op, em_tensor *self, double s)
{
    if (!self) return em__null_arg(name, "self");
    em_op_params p = base_params;
    p.scalar[0] = s;
    return inplace(name, op, self, NULL, compute_dtype(scalar_promote(self->dtype, s, BIN_ARITH), BIN_ARITH, op), &p);
}

em_status em_add_(em_tensor *self, const em_tensor *other) { return inplace_binary("em_add_", EM_OP_ADD, self, other, BIN_ARITH); }
em_status em_sub_(em_tensor *self, const em_tensor *other) { return inplace_binary("em_sub_", EM_OP_SUB, self, other, BIN_ARITH); }
em_status em_mul_(em_tensor *self, const em_tensor *other) { return inplace_binary("em_mul_", EM_OP_MUL, self, other, BIN_ARITH); }
em_status em_div_(em_tensor *self, const em_tensor *other) { return inplace_binary("em_div_", EM_OP_DIV, self, other, BIN_DIV); }
em_status em_add_scalar_(em_tensor *self, double s) { return inplace_scalar("em_add_scalar_", EM_OP_ADD, self, s); }
em_status em_mul_scalar_(em_tensor *self, double s) { return inplace_scalar("em_mul_scalar_", EM_OP_MUL, self, s); }

em_status em_add_scaled_(em_tensor *self, const em_tensor *other, double alpha)
{
    static const char *name = "em_add_scaled_";
    if (!self) return em__null_arg(name, "self");
    if (!other) return em__null_arg(name, "other");
    const em_tensor *both[2] = {self, other};
    if (em__same_device(name, both, 2) != EM_OK) return em_last_status();
    if (!em_dtype_is_float(self->dtype))
        return em__fail(EM_ERR_DTYPE, "%s: self must be floating, not %s", name,
                        em_dtype_name(self->dtype));
    if (em__check_writable(name, self) != EM_OK) return em_last_status();
    if (em__ag_check_inplace(name, self, other) != EM_OK) return em_last_status();
    if (!broadcasts_to(other, self)) {
        char so[160], ss[160];
        return em__fail(EM_ERR_SHAPE, "%s: other's shape %s does not broadcast to self's %s", name,
                        em__shape_str(other->ndim, other->shape, so, sizeof so),
                        em__shape_str(self->ndim, self->shape, ss, sizeof ss));
    }
    if (self->numel == 0) return EM_OK;
    em_tensor *co = em__cast(name, other, self->dtype);
    if (!co) return em_last_status();
    em_op_params p = base_params;
    p.scalar[0] = alpha;
    em_tdesc in[2] = {em__desc(self), em__desc_broadcast(co, self->ndim, self->shape)};
    em_tdesc od = em__desc(self);
    em_status st = em__run_op(name, self->storage->device, EM_OP_AXPY, in, 2, &od, 1, &p);
    em_tensor_release(co);
    if (st == EM_OK) self->storage->version++;
    return st;
}

em_status em_clamp_(em_tensor *self, double lo, double hi)
{
    static const char *name = "em_clamp_";
    if (!self) return em__null_arg(name, "self");
    if (isnan(lo) || isnan(hi))
        return em__fail(EM_ERR_INVALID_ARG, "%s: bounds must not be NaN", name);
    em_op_params p = base_params;
    p.scalar[0] = lo;
    p.scalar[1] = hi;
    return inplace(name, EM_OP_CLAMP, self, NULL, clamp_dtype(self->dtype, lo, hi), &p);
}

em_status em_relu_(em_tensor *self)
{
    if (!self) return em__null_arg("em_relu_", "self");
    em_dtype ct = self->dtype == EM_BOOL ? EM_I64 : self->dtype;
    return inplace("em_relu_", EM_OP_RELU, self, NULL, ct, &base_params);
}

em_status em_masked_fill_(em_tensor *self, const em_tensor *mask, double value)
{
    static const char *name = "em_masked_fill_";
    if (!self) return em__null_arg(name, "self");
    if (!mask) return em__null_arg(name, "mask");
    if (check_mask(name, self, mask) != EM_OK) return em_last_status();
    if (em__check_writable(name, self) != EM_OK) return em_last_status();
    if (em__ag_check_inplace(name, self, NULL) != EM_OK) return em_last_status();
    if (self->numel == 0) return EM_OK;
    em_op_params p = base_params;
    p.scalar[0] = value;
    em_tdesc in[2] = {em__desc(self), em__desc_broadcast(mask, self->ndim, self->shape)};
    em_tdesc od = em__desc(self);
    em_status st = em__run_op(name, self->storage->device, EM_OP_MASKED_FILL, in, 2, &od, 1, &p);
    if (st == EM_OK) self->storage->version++;
    return st;
}
