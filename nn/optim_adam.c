/*
 * optim_adam.c — torch.optim.Adam and AdamW: options, their checks and the
 * update of one parameter (bias-corrected moments, amsgrad, L2 or decoupled
 * weight decay), with public ops on the parameter's device. The order of the
 * operations follows torch's single-tensor implementation, so results agree
 * to rounding: denom = sqrt(v) / sqrt(1 - beta2^t) + eps,
 * p -= (lr / (1 - beta1^t)) * m / denom.
 *
 * Where the parameter's backend has the fused kernel (EM_OP_ADAM, ABI 1.3) and
 * the operands are dense, the step is that one kernel per parameter; else it is
 * composed of about ten public ops (on the same device either way).
 *
 * An f16/bf16 parameter is updated through its f32 master copy with f32
 * moments (optim.c: em__optim_master; the fused kernel then runs on the
 * master in f32), then written back rounded to the parameter.
 */
#include "optim_internal.h"

#include <math.h>
#include <string.h>

em_adam_options em_adam_defaults(double lr)
{
    em_adam_options o = {lr, 0.9, 0.999, 1e-8, 0.0, false};
    return o;
}

em_adam_options em_adamw_defaults(double lr)
{
    em_adam_options o = {lr, 0.9, 0.999, 1e-8, 0.01, false};
    return o;
}

static em_status bad(const char *fn, const char *name, double v, const char *rule)
{
    return em__fail(EM_ERR_INVALID_ARG, "%s: %s = %g is invalid; it must be %s", fn, name, v, rule);
}

em_status em__adam_check(const char *fn, const em__optim_hparams *h)
{
    if (!(h->lr >= 0) || !isfinite(h->lr)) return bad(fn, "lr", h->lr, "finite and >= 0");
    if (!(h->beta1 >= 0 && h->beta1 < 1)) return bad(fn, "beta1", h->beta1, "in [0, 1)");
    if (!(h->beta2 >= 0 && h->beta2 < 1)) return bad(fn, "beta2", h->beta2, "in [0, 1)");
    if (!(h->eps >= 0) || !isfinite(h->eps)) return bad(fn, "eps", h->eps, "finite and >= 0");
    if (!(h->weight_decay >= 0) || !isfinite(h->weight_decay))
        return bad(fn, "weight_decay", h->weight_decay, "finite and >= 0");
    return EM_OK;
}

static em_optimizer *create(const char *fn, em__optim_kind kind, int n, em_tensor *const *params,
                            const em_adam_options *opt)
{
    em_adam_options o = opt ? *opt : kind == EM__OPTIM_ADAMW ? em_adamw_defaults(1e-3)
                                                             : em_adam_defaults(1e-3);
    em__optim_hparams h = {0};
    h.lr = o.lr;
    h.beta1 = o.beta1;
    h.beta2 = o.beta2;
    h.eps = o.eps;
    h.weight_decay = o.weight_decay;
    h.amsgrad = o.amsgrad;
    if (em__adam_check(fn, &h) != EM_OK) return NULL;
    return em__optim_create(fn, kind, n, params, &h);
}

em_optimizer *em_adam_create(int n, em_tensor *const *params, const em_adam_options *opt)
{
    return create("em_adam_create", EM__OPTIM_ADAM, n, params, opt);
}

em_optimizer *em_adamw_create(int n, em_tensor *const *params, const em_adam_options *opt)
{
    return create("em_adamw_create", EM__OPTIM_ADAMW, n, params, opt);
}

#define TRY(expr)                                                              \
    do {                                                                       \
        if ((expr) != EM_OK) return em_last_status();                          \
    } while (0)

/* The fused step (EM_OP_ADAM): one kernel per parameter instead of about ten,
 * when the parameter's backend has it and every operand is dense. Returns
 * EM_ERR_UNSUPPORTED (recording nothing) when it does not apply. */
static em_status adam_fused(const em_optimizer *o, em_tensor *const *t, int n, double step_size,
                            double bc2_sqrt)
{
    const em__optim_hparams *h = &o->h;
    em_device *dev = t[0]->storage->device;
    if (!em__fused_enabled() || !em__has_kernel(dev, EM_OP_ADAM, t[0]->dtype))
        return EM_ERR_UNSUPPORTED;
    for (int k = 0; k < n; k++)
        if (t[k]->dtype != t[0]->dtype || t[k]->ndim != t[0]->ndim ||
            memcmp(t[k]->shape, t[0]->shape, sizeof(int64_t) * (size_t)t[0]->ndim) != 0 ||
            t[k]->storage->device != dev || !em_tensor_is_contiguous(t[k]))
            return EM_ERR_UNSUPPORTED;
    em_tdesc d[5];
    for (int k = 0; k < n; k++) d[k] = em__desc(t[k]);
    bool adamw = o->kind == EM__OPTIM_ADAMW;
    em_op_params prm = {.struct_size = sizeof prm, .flag = h->amsgrad ? 1 : 0};
    prm.scalar[0] = h->beta1;
    prm.scalar[1] = h->beta2;
    prm.scalar[2] = h->eps;
    prm.scalar[3] = step_size;
    prm.scalar_ext[0] = bc2_sqrt;
    prm.scalar_ext[1] = adamw ? 0.0 : h->weight_decay;
    prm.scalar_ext[2] = adamw ? 1.0 - h->lr * h->weight_decay : 1.0;
    em_status st = em__run_op("em_optimizer_step (adam)", dev, EM_OP_ADAM, &d[0], 1, &d[1], n - 1,
                              &prm);
    for (int k = 1; k < n && st == EM_OK; k++) t[k]->storage->version++;
    return st;
}

/* One step of w (the parameter or its master copy; p gives the state's
 * shape, device and dtype) with gradient g of w's dtype. Inside the step's
 * scope, grad mode off. Temporaries belong to the scope. */
static em_status adam_step(em_optimizer *o, int i, const em_tensor *p, em_tensor *w,
                           em_tensor *g)
{
    const em__optim_hparams *h = &o->h;
    em_tensor **st = &o->state[i * EM__OPTIM_SLOTS];
    if (!st[EM__SLOT_EXP_AVG]) {
        /* lazy state, as torch: zeros on the first step with a gradient; on
         * failure the slots created so far stay (they are zeros: harmless) */
        for (int s = EM__SLOT_EXP_AVG; s <= EM__SLOT_MAX_EXP_AVG_SQ; s++) {
            if (s == EM__SLOT_MAX_EXP_AVG_SQ && !h->amsgrad) continue;
            if (!st[s] && !(st[s] = em__optim_new_state(p, NULL))) return em_last_status();
        }
        o->steps[i] = 0;
    } else if (h->amsgrad && !st[EM__SLOT_MAX_EXP_AVG_SQ]) {
        return em__fail(EM_ERR_INTERNAL, "amsgrad state missing");
    }
    em_tensor *m = st[EM__SLOT_EXP_AVG], *v = st[EM__SLOT_EXP_AVG_SQ];
    int64_t t = o->steps[i] + 1;
    double bc1 = 1.0 - pow(h->beta1, (double)t);
    double bc2 = 1.0 - pow(h->beta2, (double)t);
    double step_size = h->lr / bc1;
    double bc2_sqrt = sqrt(bc2);

    em_tensor *ops[5] = {g, w, m, v, st[EM__SLOT_MAX_EXP_AVG_SQ]};
    em_status fused = adam_fused(o, ops, h->amsgrad ? 5 : 4, step_size, bc2_sqrt);
    if (fused != EM_ERR_UNSUPPORTED) {
        if (fused == EM_OK) o->steps[i] = t;
        return fused;
    }

    /* The composed step: the same arithmetic in public ops, op by op. */
    if (h->weight_decay != 0) {
        if (o->kind == EM__OPTIM_ADAMW) {
            TRY(em_mul_scalar_(w, 1.0 - h->lr * h->weight_decay));
        } else {
            g = em_add(g, em_mul_scalar(w, h->weight_decay));
            if (!g) return em_last_status();
        }
    }

    /* m.lerp_(g, 1 - beta1) = m + (1 - beta1) * (g - m) */
    TRY(em_add_scaled_(m, em_sub(g, m), 1.0 - h->beta1));
    /* v.mul_(beta2).addcmul_(g, g, value=1 - beta2) */
    TRY(em_mul_scalar_(v, h->beta2));
    TRY(em_add_scaled_(v, em_mul(g, g), 1.0 - h->beta2));

    em_tensor *vs = v;
    if (h->amsgrad) {
        em_tensor *vmax = st[EM__SLOT_MAX_EXP_AVG_SQ];
        TRY(em_copy_(vmax, em_maximum(vmax, v)));
        vs = vmax;
    }
    em_tensor *denom = em_add_scalar(em_div_scalar(em_sqrt(vs), bc2_sqrt), h->eps);
    TRY(em_add_scaled_(w, em_div(m, denom), -step_size));
    o->steps[i] = t;
    return EM_OK;
}

/* Inside the step's scope, grad mode off. Temporaries belong to the scope. */
em_status em__adam_update(em_optimizer *o, int i, em_tensor *p, em_tensor *g)
{
    em_tensor *w; /* the tensor updated: p, or its f32 master copy */
    em_status ms = em__optim_master(o, i, p, &w, &g);
    if (ms != EM_OK) return ms;
    ms = adam_step(o, i, p, w, g);
    return ms == EM_OK ? em__optim_write_back(p, w) : ms;
}
