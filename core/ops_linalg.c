/*
 * ops_linalg.c — matmul with torch.matmul semantics, linear (x W^T + b) and
 * addmm. Reduces every case to the kernels' canonical forms: MATMUL on
 * [B,M,K] x [B,K,N] and LINEAR on [M,K] x [N,K] (+ [M,N] bias), by building
 * strided descriptors (no copies unless batch dims cannot share one stride).
 * em_linear_relu runs relu(linear) as one EM_OP_LINEAR_ACT kernel (ABI 1.4)
 * where the backend has it, and composes em_linear + em_relu otherwise.
 */
#include "autograd.h"

#include <stdio.h>
#include <string.h>

static const em_op_params base_params = {.struct_size = sizeof(em_op_params)};

static bool float_operands(const char *name, const em_tensor *a, const em_tensor *b, em_dtype *ct)
{
    *ct = em_promote_types(a->dtype, b->dtype);
    if (!em_dtype_is_float(*ct)) {
        char da[200], db[200];
        em__fail(EM_ERR_DTYPE, "%s: needs floating-point operands, got %s and %s (cast first)",
                 name, em__describe(a, da, sizeof da), em__describe(b, db, sizeof db));
        return false;
    }
    return true;
}

/* Collapses the batch dims (already broadcast to bshape, strides bstr) of an
 * operand into one stride; false when they don't share one. */
static bool one_batch_stride(int nb, const int64_t *bshape, const int64_t *bstr, int64_t *stride)
{
    int64_t s = 0;
    bool have = false;
    for (int i = nb - 1; i >= 0; i--) {
        if (bshape[i] == 1) continue;
        if (!have) {
            s = bstr[i];
            have = true;
            /* s is the innermost batch stride; walk outward */
            int64_t expect = s * bshape[i];
            for (int j = i - 1; j >= 0; j--) {
                if (bshape[j] == 1) continue;
                if (bstr[j] != expect) return false;
                expect *= bshape[j];
            }
            break;
        }
    }
    *stride = s;
    return true;
}

em_tensor *em_matmul(const em_tensor *a, const em_tensor *b)
{
    static const char *name = "em_matmul";
    if (!a) { em__null_arg(name, "a"); return NULL; }
    if (!b) { em__null_arg(name, "b"); return NULL; }
    const em_tensor *both[2] = {a, b};
    if (em__same_device(name, both, 2) != EM_OK) return NULL;
    if (a->ndim == 0 || b->ndim == 0) {
        em__fail(EM_ERR_SHAPE, "%s: both arguments need at least 1 dim, got %d and %d", name,
                 a->ndim, b->ndim);
        return NULL;
    }
    em_dtype ct;
    if (!float_operands(name, a, b, &ct)) return NULL;

    /* Matrix views: a [..., M, K], b [..., K, N]; 1-D operands get a unit dim. */
    int64_t M = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
    int64_t K = a->shape[a->ndim - 1];
    int64_t Kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    int64_t N = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
    if (K != Kb) {
        char sa[160], sb[160];
        em__fail(EM_ERR_SHAPE, "%s: shapes %s and %s cannot be multiplied (%lld != %lld)", name,
                 em__shape_str(a->ndim, a->shape, sa, sizeof sa),
                 em__shape_str(b->ndim, b->shape, sb, sizeof sb), (long long)K, (long long)Kb);
        return NULL;
    }
    int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = b->ndim > 2 ? b->ndim - 2 : 0;
    int nbatch;
    int64_t bshape[EM_MAX_DIMS];
    if (!em__broadcast_shapes(na, a->shape, nb, b->shape, &nbatch, bshape)) {
        char sa[160], sb[160];
        em__fail(EM_ERR_SHAPE, "%s: batch dims of %s and %s do not broadcast", name,
                 em__shape_str(a->ndim, a->shape, sa, sizeof sa),
                 em__shape_str(b->ndim, b->shape, sb, sizeof sb));
        return NULL;
    }
    int64_t B = em__numel(nbatch, bshape);

    /* Result shape: batch + [M] (unless a is 1-D) + [N] (unless b is 1-D). */
    int64_t oshape[EM_MAX_DIMS];
    int on = 0;
    for (int i = 0; i < nbatch; i++) oshape[on++] = bshape[i];
    if (a->ndim > 1) oshape[on++] = M;
    if (b->ndim > 1) oshape[on++] = N;

    em_tensor *ca = em__cast(name, a, ct);
    em_tensor *cb = ca ? em__cast(name, b, ct) : NULL;
    em_tensor *out = cb ? em__alloc(a->storage->device, ct, on, oshape) : NULL;
    em_status st = out ? EM_OK : em_last_status();
    if (st == EM_OK && out->numel > 0) {
        if (K == 0) {
            st = em__fill(out, 0.0);
        } else {
            const em_tensor *ops[2] = {ca, cb};
            em_tdesc d[2];
            em_tensor *dense[2] = {NULL, NULL};
            for (int k = 0; k < 2 && st == EM_OK; k++) {
                const em_tensor *t = ops[k];
                int nt = k == 0 ? na : nb;
                int64_t rows = k == 0 ? M : K, cols = k == 0 ? K : N;
                int64_t rs, cs; /* strides of the matrix dims */
                if (t->ndim == 1) {
                    /* a: [1,K] row vector; b: [K,1] column vector */
                    rs = k == 0 ? 0 : t->strides[0];
                    cs = k == 0 ? t->strides[0] : 0;
                } else {
                    rs = t->strides[t->ndim - 2];
                    cs = t->strides[t->ndim - 1];
                }
                /* batch strides broadcast to bshape */
                int64_t bstr[EM_MAX_DIMS];
                for (int i = 0; i < nbatch; i++) {
                    int j = i - (nbatch - nt);
                    bstr[i] = (j < 0 || (t->shape[j] == 1 && bshape[i] != 1)) ? 0 : t->strides[j];
                }
                int64_t bs;
                if (!one_batch_stride(nbatch, bshape, bstr, &bs)) {
                    /* materialise the broadcast batch dims, then retry */
                    int64_t eshape[EM_MAX_DIMS];
                    int en = 0;
                    for (int i = 0; i < nbatch; i++) eshape[en++] = bshape[i];
                    eshape[en++] = rows;
                    eshape[en++] = cols;
                    em_tensor *tmp = em__alloc(t->storage->device, ct, en, eshape);
                    if (!tmp) { st = em_last_status(); break; }
                    em_tdesc src = em__desc(t);
                    src.ndim = en;
                    for (int i = 0; i < nbatch; i++) { src.shape[i] = bshape[i]; src.strides[i] = bstr[i]; }
                    src.shape[en - 2] = rows; src.strides[en - 2] = rs;
                    src.shape[en - 1] = cols; src.strides[en - 1] = cs;
                    em_tdesc dd = em__desc(tmp);
                    st = em__run_op(name, t->storage->device, EM_OP_COPY, &src, 1, &dd, 1, &base_params);
                    dense[k] = tmp;
                    if (st != EM_OK) break;
                    t = tmp;
                    rs = cols;
                    cs = 1;
                    bs = rows * cols;
                }
                d[k] = em__desc(t);
                d[k].ndim = 3;
                d[k].shape[0] = B; d[k].strides[0] = B > 1 ? bs : 0;
                d[k].shape[1] = rows; d[k].strides[1] = rs;
                d[k].shape[2] = cols; d[k].strides[2] = cs;
            }
            if (st == EM_OK) {
                em_tdesc od = em__desc(out);
                od.ndim = 3;
                od.shape[0] = B; od.strides[0] = M * N;
                od.shape[1] = M; od.strides[1] = N;
                od.shape[2] = N; od.strides[2] = 1;
                st = em__run_op(name, a->storage->device, EM_OP_MATMUL, d, 2, &od, 1, &base_params);
            }
            em_tensor_release(dense[0]);
            em_tensor_release(dense[1]);
        }
    }
    em_tensor_release(ca);
    em_tensor_release(cb);
    if (st != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return em__own(em__grad_matmul(a, b, out));
}

/* out [M,N] = x [M,K] (strides) . w^T where w is given as [N,K] (strides) + bias. */
static em_tensor *linear_2d(const char *name, em_dtype ct, const em_tdesc *x, const em_tdesc *w,
                            const em_tensor *bias, em_device *dev, int64_t M, int64_t N, int64_t K,
                            int act)
{
    em_tensor *out = em__alloc(dev, ct, 2, (const int64_t[]){M, N});
    if (!out || out->numel == 0) return out;
    em_status st;
    if (K == 0) {
        st = bias ? em__copy_into(name, out, bias) : em__fill(out, 0.0);
    } else {
        em_tdesc in[3] = {*x, *w};
        int n_in = 2;
        if (bias) in[n_in++] = em__desc_broadcast(bias, 2, out->shape);
        em_tdesc od = em__desc(out);
        em_op_params p = base_params;
        p.flag = act; /* LINEAR_ACT: 1 = relu */
        st = em__run_op(name, dev, act ? EM_OP_LINEAR_ACT : EM_OP_LINEAR, in, n_in, &od, 1, &p);
    }
    if (st != EM_OK) {
        em_tensor_release(out);
        return NULL;
    }
    return out;
}

/* linear (act 0) or relu(linear) through LINEAR_ACT (act 1; the caller has
 * checked that the kernel exists and K > 0). */
static em_tensor *linear_impl(const char *name, const em_tensor *x, const em_tensor *weight,
                              const em_tensor *bias, int act)
{
    if (!x) { em__null_arg(name, "x"); return NULL; }
    if (!weight) { em__null_arg(name, "weight"); return NULL; }
    const em_tensor *all[3] = {x, weight, bias};
    if (em__same_device(name, all, 3) != EM_OK) return NULL;
    em_dtype ct;
    if (!float_operands(name, x, weight, &ct)) return NULL;
    if (bias) ct = em_promote_types(ct, bias->dtype);
    if (x->ndim < 1 || weight->ndim != 2 || x->shape[x->ndim - 1] != weight->shape[1] ||
        (bias && (bias->ndim > 1 || (bias->ndim == 1 && bias->shape[0] != weight->shape[0] &&
                                      bias->shape[0] != 1)))) {
        char sx[160], sw[160], sb[160];
        em__fail(EM_ERR_SHAPE, "%s: x %s, weight %s and bias %s do not fit (want x [..., in], "
                 "weight [out, in], bias [out])", name,
                 em__shape_str(x->ndim, x->shape, sx, sizeof sx),
                 em__shape_str(weight->ndim, weight->shape, sw, sizeof sw),
                 bias ? em__shape_str(bias->ndim, bias->shape, sb, sizeof sb) : "NULL");
        return NULL;
    }
    int64_t K = weight->shape[1], N = weight->shape[0];
    int64_t M = x->numel / (K ? K : 1);
    if (K == 0) M = em__numel(x->ndim - 1, x->shape);
    em_tensor *cx = em__cast(name, x, ct);
    em_tensor *cw = cx ? em__cast(name, weight, ct) : NULL;
    em_tensor *cbias = cw && bias ? em__cast(name, bias, ct) : NULL;
    em_tensor *out = NULL;
    em_tensor *x2 = NULL;
    if (cw && (!bias || cbias)) {
        /* x as [M, K]: a view when possible, else a contiguous copy */
        x2 = x->ndim == 2 ? em_tensor_retain(cx) : NULL;
        if (!x2) {
            em_tensor *c = em__contiguous(name, cx);
            if (c) {
                x2 = em__make_view(c, 2, (const int64_t[]){M, K}, (const int64_t[]){K, 1}, c->offset);
                em_tensor_release(c);
            }
        }
        if (x2) {
            em_tdesc xd = em__desc(x2), wd = em__desc(cw);
            out = linear_2d(name, ct, &xd, &wd, cbias, x->storage->device, M, N, K, act);
        }
    }
    if (out && x->ndim != 2) {
        /* back to [..., N]: out is fresh and contiguous */
        out->ndim = x->ndim;
        for (int i = 0; i < x->ndim - 1; i++) out->shape[i] = x->shape[i];
        out->shape[x->ndim - 1] = N;
        em__contiguous_strides(out->ndim, out->shape, out->strides);
    }
    em_tensor_release(x2);
    em_tensor_release(cx);
    em_tensor_release(cw);
    em_tensor_release(cbias);
    return act ? em__own(em__grad_linear_relu(x, weight, bias, out))
               : em__own(em__grad_linear(x, weight, bias, out));
}

em_tensor *em_linear(const em_tensor *x, const em_tensor *weight, const em_tensor *bias)
{
    return linear_impl("em_linear", x, weight, bias, 0);
}

em_tensor *em_linear_relu(const em_tensor *x, const em_tensor *weight, const em_tensor *bias)
{
    static const char *name = "em_linear_relu";
    if (!x) { em__null_arg(name, "x"); return NULL; }
    if (!weight) { em__null_arg(name, "weight"); return NULL; }
    em_device *dev = x->storage->device;
    em_dtype ct = em_promote_types(x->dtype, weight->dtype);
    if (bias) ct = em_promote_types(ct, bias->dtype);
    /* the fused kernel only where the backend has it and there is a product
     * to compute (K > 0); the argument checks are linear_impl's either way */
    bool fused = em__fused_enabled() && em_dtype_is_float(ct) &&
                 em__has_kernel(dev, EM_OP_LINEAR_ACT, ct) && weight->ndim == 2 &&
                 weight->shape[1] > 0;
    if (fused) return linear_impl(name, x, weight, bias, 1);
    em_tensor *z = linear_impl(name, x, weight, bias, 0);
    return z ? em_relu(z) : NULL;
}

em_tensor *em_addmm(const em_tensor *c, const em_tensor *a, const em_tensor *b)
{
    static const char *name = "em_addmm";
    if (!c) { em__null_arg(name, "c"); return NULL; }
    if (!a) { em__null_arg(name, "a"); return NULL; }
    if (!b) { em__null_arg(name, "b"); return NULL; }
    const em_tensor *all[3] = {c, a, b};
    if (em__same_device(name, all, 3) != EM_OK) return NULL;
    em_dtype ct;
    if (!float_operands(name, a, b, &ct)) return NULL;
    ct = em_promote_types(ct, c->dtype);
    int n;
    int64_t bs[EM_MAX_DIMS];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0] ||
        !em__broadcast_shapes(c->ndim, c->shape, 2, (const int64_t[]){a->shape[0], b->shape[1]}, &n, bs) ||
        n != 2 || bs[0] != a->shape[0] || bs[1] != b->shape[1]) {
        char sc[160], sa[160], sb[160];
        em__fail(EM_ERR_SHAPE, "%s: c %s, a %s and b %s do not fit (want a [M,K], b [K,N], c "
                 "broadcasting to [M,N])", name, em__shape_str(c->ndim, c->shape, sc, sizeof sc),
                 em__shape_str(a->ndim, a->shape, sa, sizeof sa),
                 em__shape_str(b->ndim, b->shape, sb, sizeof sb));
        return NULL;
    }
    em_tensor *ca = em__cast(name, a, ct);
    em_tensor *cb = ca ? em__cast(name, b, ct) : NULL;
    em_tensor *cc = cb ? em__cast(name, c, ct) : NULL;
    em_tensor *out = NULL;
    if (cc) {
        em_tdesc xd = em__desc(ca);
        em_tdesc wd = em__desc(cb); /* b [K,N] seen as w = b^T [N,K] */
        wd.shape[0] = cb->shape[1]; wd.strides[0] = cb->strides[1];
        wd.shape[1] = cb->shape[0]; wd.strides[1] = cb->strides[0];
        out = linear_2d(name, ct, &xd, &wd, cc, a->storage->device, a->shape[0], b->shape[1],
                        a->shape[1], 0);
    }
    em_tensor_release(ca);
    em_tensor_release(cb);
    em_tensor_release(cc);
    return em__own(em__grad_addmm(c, a, b, out));
}
