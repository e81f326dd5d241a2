/*
 * optim_sgd.c — torch.optim.SGD: options, their checks and the update of
 * one parameter (momentum, dampening, Nesterov, L2 weight decay), written
 * with public ops on the parameter's device. An f16/bf16 parameter is
 * updated through its f32 master copy (optim.c: em__optim_master), then
 * written back rounded.
 */
#include "optim_internal.h"

#include <math.h>

em_sgd_options em_sgd_defaults(double lr)
{
    em_sgd_options o = {lr, 0.0, 0.0, 0.0, false};
    return o;
}

static em_status bad(const char *fn, const char *name, double v, const char *rule)
{
    return em__fail(EM_ERR_INVALID_ARG, "%s: %s = %g is invalid; it must be %s", fn, name, v, rule);
}

em_status em__sgd_check(const char *fn, const em__optim_hparams *h)
{
    if (!(h->lr >= 0) || !isfinite(h->lr)) return bad(fn, "lr", h->lr, "finite and >= 0");
    if (!(h->momentum >= 0) || !isfinite(h->momentum))
        return bad(fn, "momentum", h->momentum, "finite and >= 0");
    if (!(h->dampening >= 0 && h->dampening <= 1))
        return bad(fn, "dampening", h->dampening, "in [0, 1]");
    if (!(h->weight_decay >= 0) || !isfinite(h->weight_decay))
        return bad(fn, "weight_decay", h->weight_decay, "finite and >= 0");
    if (h->nesterov && (h->momentum <= 0 || h->dampening != 0))
        return em__fail(EM_ERR_INVALID_ARG,
                        "%s: nesterov requires momentum > 0 and dampening == 0 (momentum = %g, "
                        "dampening = %g)", fn, h->momentum, h->dampening);
    return EM_OK;
}

em_optimizer *em_sgd_create(int n, em_tensor *const *params, const em_sgd_options *opt)
{
    static const char *fn = "em_sgd_create";
    em_sgd_options o = opt ? *opt : em_sgd_defaults(1e-3);
    em__optim_hparams h = {0};
    h.lr = o.lr;
    h.momentum = o.momentum;
    h.dampening = o.dampening;
    h.weight_decay = o.weight_decay;
    h.nesterov = o.nesterov;
    if (em__sgd_check(fn, &h) != EM_OK) return NULL;
    return em__optim_create(fn, EM__OPTIM_SGD, n, params, &h);
}

/* Inside the step's scope, grad mode off. Temporaries belong to the scope. */
em_status em__sgd_update(em_optimizer *o, int i, em_tensor *p, em_tensor *g)
{
    const em__optim_hparams *h = &o->h;
    em_tensor *w; /* the tensor updated: p, or its f32 master copy */
    em_status ms = em__optim_master(o, i, p, &w, &g);
    if (ms != EM_OK) return ms;
    em_tensor *d = g;
    if (h->weight_decay != 0) {
        d = em_add(g, em_mul_scalar(w, h->weight_decay)); /* a new tensor: g stays untouched */
        if (!d) return em_last_status();
    }
    if (h->momentum != 0) {
        em_tensor **slot = &o->state[i * EM__OPTIM_SLOTS + EM__SLOT_MOMENTUM];
        if (!*slot) {
            /* torch: buf = clone(d) on the first step, no dampening */
            *slot = em__optim_new_state(p, d); /* f32 for a half parameter, as d */
            if (!*slot) return em_last_status();
        } else {
            em_tensor *buf = *slot;
            em_status st = em_mul_scalar_(buf, h->momentum);
            if (st != EM_OK) return st;
            st = em_add_scaled_(buf, d, 1.0 - h->dampening);
            if (st != EM_OK) return st;
        }
        d = h->nesterov ? em_add(d, em_mul_scalar(*slot, h->momentum)) : *slot;
        /* (nesterov allocates d + momentum buf once; plain momentum reads buf) */
        if (!d) return em_last_status();
    }
    em_status st = em_add_scaled_(w, d, -h->lr); /* one pass over w and d */
    return st == EM_OK ? em__optim_write_back(p, w) : st;
}
