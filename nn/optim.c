/*
 * optim.c — the optimizer object common to SGD, Adam and AdamW: creation
 * (parameter checks), step (scope, grad mode, skipping parameters without a
 * gradient), zero_grad, the learning rate, and state dicts (save and a
 * load that checks everything before changing anything), and the f32
 * master copies of f16/bf16 parameters (state slot "master_param").
 *
 * The update rules and option checks live in optim_sgd.c and optim_adam.c.
 */
#include "optim_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

const char *em__optim_kind_name(em__optim_kind kind)
{
    switch (kind) {
    case EM__OPTIM_SGD: return "sgd";
    case EM__OPTIM_ADAM: return "adam";
    case EM__OPTIM_ADAMW: return "adamw";
    }
    return "?";
}

const char *em__optim_slot_name(em__optim_kind kind, int slot)
{
    if (slot == EM__SLOT_MASTER) return "master_param";
    if (kind == EM__OPTIM_SGD) return slot == EM__SLOT_MOMENTUM ? "momentum_buffer" : NULL;
    switch (slot) {
    case EM__SLOT_EXP_AVG: return "exp_avg";
    case EM__SLOT_EXP_AVG_SQ: return "exp_avg_sq";
    case EM__SLOT_MAX_EXP_AVG_SQ: return "max_exp_avg_sq";
    }
    return NULL;
}

static bool kind_has_steps(em__optim_kind kind) { return kind != EM__OPTIM_SGD; }

/* Which slots a parameter with state must have under hyperparameters h
 * (the master copy is handled apart: it depends on the parameter's dtype). */
static bool slot_required(em__optim_kind kind, const em__optim_hparams *h, int slot)
{
    if (slot == EM__SLOT_MASTER) return false;
    if (kind == EM__OPTIM_SGD) return slot == EM__SLOT_MOMENTUM && h->momentum != 0;
    if (slot == EM__SLOT_MAX_EXP_AVG_SQ) return h->amsgrad;
    return slot == EM__SLOT_EXP_AVG || slot == EM__SLOT_EXP_AVG_SQ;
}

static void shape_str(const em_tensor *t, char *buf, size_t cap)
{
    int64_t s[EM_MAX_DIMS];
    int nd = em_tensor_shape(t, s);
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "%s[", em_dtype_name(em_tensor_dtype(t)));
    for (int i = 0; i < nd && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ",%" PRId64 : "%" PRId64, s[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* ------------------------------------------------------------------------ */
/* Creation and destruction                                                  */
/* ------------------------------------------------------------------------ */

bool em__optim_has_master(const em_tensor *p)
{
    em_dtype dt = em_tensor_dtype(p);
    return dt == EM_F16 || dt == EM_BF16;
}

em_dtype em__optim_state_dtype(const em_tensor *p)
{
    return em__optim_has_master(p) ? EM_F32 : em_tensor_dtype(p);
}

em_tensor *em__optim_new_state(const em_tensor *p, const em_tensor *src)
{
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(p, shape);
    if (em_scope_begin() != EM_OK) return NULL;
    em_tensor *t = em_empty(em__optim_state_dtype(p), nd, shape, em_tensor_device(p));
    em_status st = t ? (src ? em_copy_(t, src) : em_zero_(t)) : em_last_status();
    if (st == EM_OK) em_tensor_retain(t);
    else t = NULL;
    em_scope_end();
    return t;
}

em_status em__optim_master(em_optimizer *o, int i, em_tensor *p, em_tensor **w, em_tensor **g)
{
    *w = p;
    if (!em__optim_has_master(p)) return EM_OK;
    em_tensor **slot = &o->state[i * EM__OPTIM_SLOTS + EM__SLOT_MASTER];
    if (!*slot && !(*slot = em__optim_new_state(p, p))) return em_last_status();
    *w = *slot;
    if (em_tensor_dtype(*g) != EM_F32) {
        em_tensor *g32 = em_cast(*g, EM_F32); /* scope-owned (the step's scope) */
        if (!g32) return em_last_status();
        *g = g32;
    }
    return EM_OK;
}

em_status em__optim_write_back(em_tensor *p, const em_tensor *w)
{
    return w == p ? EM_OK : em_copy_(p, w);
}

em_optimizer *em__optim_create(const char *fn, em__optim_kind kind, int n,
                               em_tensor *const *params, const em__optim_hparams *h)
{
    if (!params) {
        em__null_arg(fn, "params");
        return NULL;
    }
    if (n < 1) {
        em__fail(EM_ERR_INVALID_ARG, "%s: the parameter list is empty (n = %d); give at least one",
                 fn, n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const em_tensor *p = params[i];
        if (!p) {
            em__fail(EM_ERR_NULL_ARG, "%s: params[%d] is NULL", fn, i);
            return NULL;
        }
        if (!em_dtype_is_float(em_tensor_dtype(p))) {
            em__fail(EM_ERR_DTYPE, "%s: params[%d] has dtype %s; only floating parameters can be "
                     "optimized", fn, i, em_dtype_name(em_tensor_dtype(p)));
            return NULL;
        }
        if (!em_is_leaf(p)) {
            em__fail(EM_ERR_INVALID_ARG, "%s: params[%d] is not a leaf (made by '%s'); optimize "
                     "the leaf tensors themselves", fn, i, em_grad_fn_name(p));
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == p) {
                em__fail(EM_ERR_INVALID_ARG, "%s: params[%d] and params[%d] are the same tensor; "
                         "each parameter may appear only once", fn, j, i);
                return NULL;
            }
    }
    em_optimizer *o = calloc(1, sizeof *o);
    if (o) {
        o->params = calloc((size_t)n, sizeof *o->params);
        o->state = calloc((size_t)n * EM__OPTIM_SLOTS, sizeof *o->state);
        o->steps = calloc((size_t)n, sizeof *o->steps);
    }
    if (!o || !o->params || !o->state || !o->steps) {
        if (o) {
            free(o->params);
            free(o->state);
            free(o->steps);
            free(o);
        }
        em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
        return NULL;
    }
    o->kind = kind;
    o->h = *h;
    o->n = n;
    for (int i = 0; i < n; i++) o->params[i] = em_tensor_retain(params[i]);
    return o;
}

void em_optimizer_destroy(em_optimizer *opt)
{
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) em_tensor_release(opt->params[i]);
    for (int i = 0; i < opt->n * EM__OPTIM_SLOTS; i++) em_tensor_release(opt->state[i]);
    free(opt->params);
    free(opt->state);
    free(opt->steps);
    free(opt);
}

/* ------------------------------------------------------------------------ */
/* Step, zero_grad, lr                                                       */
/* ------------------------------------------------------------------------ */

em_status em_optimizer_step(em_optimizer *opt)
{
    static const char *fn = "em_optimizer_step";
    if (!opt) return em__null_arg(fn, "opt");
    em_status st = em_scope_begin();
    if (st != EM_OK) return st;
    bool prev = em_set_grad_enabled(false);
    for (int i = 0; i < opt->n && st == EM_OK; i++) {
        em_tensor *p = opt->params[i];
        em_tensor *g = em_grad(p);
        if (!g) continue; /* no gradient: skipped, as torch */
        st = opt->kind == EM__OPTIM_SGD ? em__sgd_update(opt, i, p, g)
                                        : em__adam_update(opt, i, p, g);
        if (st != EM_OK) {
            /* a NULL from a failed op inside an update reads as EM_ERR_NULL_ARG
             * there; the pending status is the first failure */
            if (em_last_status() != EM_OK) st = em_last_status();
            em__error_prefix("%s (%s, parameter %d): ", fn, em__optim_kind_name(opt->kind), i);
        }
    }
    em_set_grad_enabled(prev);
    em_scope_end();
    return st;
}

em_status em_optimizer_zero_grad(em_optimizer *opt, bool set_to_none)
{
    if (!opt) return em__null_arg("em_optimizer_zero_grad", "opt");
    for (int i = 0; i < opt->n; i++) {
        em_status st = set_to_none ? em_set_grad(opt->params[i], NULL) : em_zero_grad(opt->params[i]);
        if (st != EM_OK) return st;
    }
    return EM_OK;
}

double em_optimizer_get_lr(const em_optimizer *opt)
{
    if (!opt) {
        em__null_arg("em_optimizer_get_lr", "opt");
        return NAN;
    }
    return opt->h.lr;
}

em_status em_optimizer_set_lr(em_optimizer *opt, double lr)
{
    if (!opt) return em__null_arg("em_optimizer_set_lr", "opt");
    if (!(lr >= 0) || !isfinite(lr))
        return em__fail(EM_ERR_INVALID_ARG,
                        "em_optimizer_set_lr: lr = %g is invalid; it must be finite and >= 0", lr);
    opt->h.lr = lr;
    return EM_OK;
}

const char *em_optimizer_type(const em_optimizer *opt)
{
    if (!opt) {
        em__null_arg("em_optimizer_type", "opt");
        return NULL;
    }
    return em__optim_kind_name(opt->kind);
}

int em_optimizer_param_count(const em_optimizer *opt)
{
    if (!opt) {
        em__null_arg("em_optimizer_param_count", "opt");
        return -1;
    }
    return opt->n;
}

em_tensor *em_optimizer_param(const em_optimizer *opt, int i)
{
    if (!opt) {
        em__null_arg("em_optimizer_param", "opt");
        return NULL;
    }
    if (i < 0 || i >= opt->n) {
        em__fail(EM_ERR_INDEX, "em_optimizer_param: index %d is out of range [0, %d)", i, opt->n);
        return NULL;
    }
    return opt->params[i];
}

/* ------------------------------------------------------------------------ */
/* Hyperparameters as metadata                                               */
/* ------------------------------------------------------------------------ */

typedef struct hp_field {
    const char *key;
    size_t offset;
    bool is_bool;
} hp_field;

#define HP_D(name) {#name, offsetof(em__optim_hparams, name), false}
#define HP_B(name) {#name, offsetof(em__optim_hparams, name), true}

static const hp_field sgd_fields[] = {HP_D(lr), HP_D(momentum), HP_D(dampening),
                                      HP_D(weight_decay), HP_B(nesterov)};
static const hp_field adam_fields[] = {HP_D(lr), HP_D(beta1), HP_D(beta2), HP_D(eps),
                                       HP_D(weight_decay), HP_B(amsgrad)};

static const hp_field *kind_fields(em__optim_kind kind, int *count)
{
    if (kind == EM__OPTIM_SGD) {
        *count = (int)(sizeof sgd_fields / sizeof sgd_fields[0]);
        return sgd_fields;
    }
    *count = (int)(sizeof adam_fields / sizeof adam_fields[0]);
    return adam_fields;
}

em_tensor_dict *em_optimizer_state_dict(const em_optimizer *opt)
{
    static const char *fn = "em_optimizer_state_dict";
    if (!opt) {
        em__null_arg(fn, "opt");
        return NULL;
    }
    em_tensor_dict *d = em_tensor_dict_create();
    if (!d) return NULL;
    em_status st = em_tensor_dict_set_meta(d, "type", em__optim_kind_name(opt->kind));
    if (st == EM_OK) st = em__nn_set_meta_f(d, "param_count", "%d", opt->n);
    int nf;
    const hp_field *f = kind_fields(opt->kind, &nf);
    for (int k = 0; k < nf && st == EM_OK; k++) {
        const char *base = (const char *)&opt->h + f[k].offset;
        if (f[k].is_bool) st = em_tensor_dict_set_meta(d, f[k].key, *(const bool *)base ? "true" : "false");
        else st = em__nn_set_meta_f(d, f[k].key, "%.17g", *(const double *)base);
    }
    for (int i = 0; i < opt->n && st == EM_OK; i++) {
        for (int s = 0; s < EM__OPTIM_SLOTS && st == EM_OK; s++) {
            em_tensor *src = opt->state[i * EM__OPTIM_SLOTS + s];
            if (!src) continue;
            char name[64];
            snprintf(name, sizeof name, "state.%d.%s", i, em__optim_slot_name(opt->kind, s));
            em_tensor *c = em__optim_new_state(src, src);
            st = c ? em_tensor_dict_set(d, name, c) : em_last_status();
            em_tensor_release(c);
        }
        if (st == EM_OK && kind_has_steps(opt->kind) && opt->steps[i] > 0) {
            char key[64];
            snprintf(key, sizeof key, "state.%d.step", i);
            st = em__nn_set_meta_f(d, key, "%" PRId64, opt->steps[i]);
        }
    }
    if (st != EM_OK) {
        if (st == em_last_status()) em__error_prefix("%s: ", fn);
        em_tensor_dict_destroy(d);
        return NULL;
    }
    return d;
}

/* Parses the decimal index in "state.<i>.<rest>"; returns the index and sets
 * *rest, or -1 when the name does not have that form. */
static long parse_state_key(const char *name, const char **rest)
{
    if (strncmp(name, "state.", 6) != 0) return -1;
    const char *p = name + 6;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '.')) return -1; /* canonical only */
    errno = 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (errno || *end != '.' || v > 1000000000L) return -1;
    *rest = end + 1;
    return v;
}

static em_status load_fail_prefix(em_status st)
{
    em__error_prefix("em_optimizer_load_state_dict: ");
    return st;
}

/* The body of em_optimizer_load_state_dict, run inside a scope of its own
 * (tensors taken from d belong to it). */
static em_status load_state(em_optimizer *opt, const em_tensor_dict *d)
{
    static const char *fn = "em_optimizer_load_state_dict";
    const char *tname = em__optim_kind_name(opt->kind);

    /* type and count */
    const char *type = em_tensor_dict_get_meta(d, "type");
    if (!type)
        return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict has no 'type' metadata "
                        "(not an optimizer state dict?)", fn);
    if (strcmp(type, tname) != 0)
        return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict is for optimizer type '%s', "
                        "this optimizer is '%s'", fn, type, tname);
    const char *pc = em_tensor_dict_get_meta(d, "param_count");
    char *end = NULL;
    long count = pc ? strtol(pc, &end, 10) : -1;
    if (!pc || end == pc || *end)
        return em__fail(EM_ERR_INVALID_ARG, "%s: 'param_count' metadata is %s%s%s", fn,
                        pc ? "not an integer: '" : "missing", pc ? pc : "", pc ? "'" : "");
    if (count != opt->n)
        return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict is for %ld parameters, this "
                        "optimizer has %d", fn, count, opt->n);

    /* hyperparameters */
    em__optim_hparams h;
    memset(&h, 0, sizeof h);
    int nf;
    const hp_field *f = kind_fields(opt->kind, &nf);
    for (int k = 0; k < nf; k++) {
        const char *v = em_tensor_dict_get_meta(d, f[k].key);
        if (!v)
            return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict has no '%s' metadata", fn,
                            f[k].key);
        char *base = (char *)&h + f[k].offset;
        if (f[k].is_bool) {
            if (!strcmp(v, "true")) *(bool *)base = true;
            else if (!strcmp(v, "false")) *(bool *)base = false;
            else
                return em__fail(EM_ERR_INVALID_ARG, "%s: metadata '%s' is '%s', not 'true' or "
                                "'false'", fn, f[k].key, v);
        } else {
            errno = 0;
            double x = strtod(v, &end);
            if (end == v || *end || errno == ERANGE)
                return em__fail(EM_ERR_INVALID_ARG, "%s: metadata '%s' is '%s', not a number", fn,
                                f[k].key, v);
            *(double *)base = x;
        }
    }
    em_status st = opt->kind == EM__OPTIM_SGD ? em__sgd_check(fn, &h) : em__adam_check(fn, &h);
    if (st != EM_OK) return st;

    /* tensors: names, shapes, dtypes */
    int nt = em_tensor_dict_count(d);
    for (int e = 0; e < nt; e++) {
        const char *name = em_tensor_dict_name(d, e);
        const char *rest = NULL;
        long i = parse_state_key(name, &rest);
        int slot = -1;
        if (i >= 0)
            for (int s = 0; s < EM__OPTIM_SLOTS; s++) {
                const char *sn = em__optim_slot_name(opt->kind, s);
                if (sn && !strcmp(rest, sn)) slot = s;
            }
        if (i < 0 || slot < 0)
            return em__fail(EM_ERR_INVALID_ARG, "%s: '%s' is not a state entry of a '%s' "
                            "optimizer", fn, name, tname);
        if (i >= opt->n)
            return em__fail(EM_ERR_INVALID_ARG, "%s: '%s' refers to parameter %ld, but this "
                            "optimizer has %d parameters", fn, name, i, opt->n);
        if (slot == EM__SLOT_MASTER) {
            if (!em__optim_has_master(opt->params[i]))
                return em__fail(EM_ERR_INVALID_ARG, "%s: '%s' is a master copy, but parameter "
                                "%ld is %s (only f16/bf16 parameters have one)", fn, name, i,
                                em_dtype_name(em_tensor_dtype(opt->params[i])));
        } else if (!slot_required(opt->kind, &h, slot))
            return em__fail(EM_ERR_INVALID_ARG, "%s: '%s' is not used with these hyperparameters "
                            "(%s)", fn, name,
                            opt->kind == EM__OPTIM_SGD ? "momentum is 0" : "amsgrad is false");
        em_tensor *t = em_tensor_dict_at(d, e);
        if (!t) return load_fail_prefix(em_last_status());
        const em_tensor *p = opt->params[i];
        char a[128], b[128];
        shape_str(t, a, sizeof a);
        shape_str(p, b, sizeof b);
        int64_t ts[EM_MAX_DIMS], ps[EM_MAX_DIMS];
        int tn = em_tensor_shape(t, ts), pn = em_tensor_shape(p, ps);
        bool same_shape = tn == pn && !memcmp(ts, ps, sizeof(int64_t) * (size_t)(tn > 0 ? tn : 0));
        em_dtype tdt = em_tensor_dtype(t);
        if (!same_shape)
            return em__fail(EM_ERR_SHAPE, "%s: '%s' is %s, but parameter %ld is %s", fn, name, a,
                            i, b);
        /* the state of an f16/bf16 parameter is f32 (the master copy must be;
         * moments in the parameter's dtype, from an older dict, are cast) */
        em_dtype want = em__optim_state_dtype(p);
        bool dtype_ok = tdt == want ||
                        (slot != EM__SLOT_MASTER && tdt == em_tensor_dtype(p));
        if (!dtype_ok)
            return em__fail(EM_ERR_DTYPE, "%s: '%s' has dtype %s, but parameter %ld (%s) needs "
                            "%s state", fn, name, em_dtype_name(tdt), i,
                            em_dtype_name(em_tensor_dtype(p)), em_dtype_name(want));
    }

    /* completeness and step counts */
    int64_t *steps = calloc((size_t)opt->n, sizeof *steps);
    if (!steps) return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    for (int i = 0; i < opt->n; i++) {
        char key[64];
        int have = 0, need = 0;
        const char *missing = NULL;
        for (int s = 0; s < EM__OPTIM_SLOTS; s++) {
            if (!slot_required(opt->kind, &h, s)) continue;
            need++;
            snprintf(key, sizeof key, "state.%d.%s", i, em__optim_slot_name(opt->kind, s));
            if (em_tensor_dict_has(d, key)) have++;
            else if (!missing) missing = em__optim_slot_name(opt->kind, s);
        }
        const char *sv = NULL;
        if (kind_has_steps(opt->kind)) {
            snprintf(key, sizeof key, "state.%d.step", i);
            sv = em_tensor_dict_get_meta(d, key);
            if (sv) {
                errno = 0;
                long long v = strtoll(sv, &end, 10);
                if (end == sv || *end || errno || v < 1) {
                    free(steps);
                    return em__fail(EM_ERR_INVALID_ARG, "%s: metadata '%s' is '%s', not a step "
                                    "count >= 1", fn, key, sv);
                }
                steps[i] = v;
            }
        }
        /* a master copy alone (SGD without momentum) is state too; a dict
         * without one (older than master copies) reseeds it from the
         * parameter at the next step */
        snprintf(key, sizeof key, "state.%d.master_param", i);
        bool any = have > 0 || sv || em_tensor_dict_has(d, key);
        if (any && (have < need || (kind_has_steps(opt->kind) && !sv))) {
            free(steps);
            if (have < need)
                return em__fail(EM_ERR_INVALID_ARG, "%s: the state of parameter %d is incomplete: "
                                "'state.%d.%s' is missing", fn, i, i, missing);
            return em__fail(EM_ERR_INVALID_ARG, "%s: the state of parameter %d is incomplete: "
                            "metadata 'state.%d.step' is missing", fn, i, i);
        }
    }
    /* metadata keys naming parameters out of range */
    int nm = em_tensor_dict_meta_count(d);
    for (int k = 0; k < nm; k++) {
        const char *key = em_tensor_dict_meta_key(d, k);
        const char *rest = NULL;
        long i = parse_state_key(key, &rest);
        if (strncmp(key, "state.", 6) != 0) continue;
        if (i < 0 || strcmp(rest, "step") != 0 || !kind_has_steps(opt->kind) || i >= opt->n) {
            free(steps);
            if (i >= opt->n)
                return em__fail(EM_ERR_INVALID_ARG, "%s: metadata '%s' refers to parameter %ld, "
                                "but this optimizer has %d parameters", fn, key, i, opt->n);
            return em__fail(EM_ERR_INVALID_ARG, "%s: metadata '%s' is not a state entry of a "
                            "'%s' optimizer", fn, key, tname);
        }
    }

    /* copies onto the parameters' devices, then commit */
    size_t ns = (size_t)opt->n * EM__OPTIM_SLOTS;
    em_tensor **state = calloc(ns, sizeof *state);
    if (!state) {
        free(steps);
        return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    }
    st = EM_OK;
    for (int i = 0; i < opt->n && st == EM_OK; i++)
        for (int s = 0; s < EM__OPTIM_SLOTS && st == EM_OK; s++) {
            if (!slot_required(opt->kind, &h, s) &&
                !(s == EM__SLOT_MASTER && em__optim_has_master(opt->params[i])))
                continue;
            char key[64];
            snprintf(key, sizeof key, "state.%d.%s", i, em__optim_slot_name(opt->kind, s));
            if (!em_tensor_dict_has(d, key)) continue;
            em_tensor *src = em_tensor_dict_get(d, key);
            em_tensor *c = src ? em__optim_new_state(opt->params[i], src) : NULL;
            if (!c) st = load_fail_prefix(em_last_status());
            state[(size_t)i * EM__OPTIM_SLOTS + (size_t)s] = c;
        }
    if (st != EM_OK) {
        for (size_t k = 0; k < ns; k++) em_tensor_release(state[k]);
        free(state);
        free(steps);
        return st;
    }
    for (size_t k = 0; k < ns; k++) em_tensor_release(opt->state[k]);
    free(opt->state);
    free(opt->steps);
    opt->state = state;
    opt->steps = steps;
    opt->h = h;
    return EM_OK;
}

em_status em_optimizer_load_state_dict(em_optimizer *opt, const em_tensor_dict *d)
{
    static const char *fn = "em_optimizer_load_state_dict";
    if (!opt) return em__null_arg(fn, "opt");
    if (!d) return em__null_arg(fn, "d");
    em_status st = em_scope_begin();
    if (st != EM_OK) return st;
    st = load_state(opt, d);
    em_scope_end();
    return st;
}
