/*
 * lr_schedule.c — learning-rate schedules over an em_optimizer: StepLR and
 * linear warm-up + cosine decay, in closed form from base_lr (formulas in
 * api/ember_optim.h), with a metadata-only state dict.
 */
#include "optim_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

typedef enum sched_kind { SCHED_STEP, SCHED_COSINE_WARMUP } sched_kind;

struct em_lr_scheduler {
    sched_kind kind;
    em_optimizer *opt; /* borrowed */
    double base_lr;
    int64_t t;
    /* StepLR */
    int step_size;
    double gamma;
    /* cosine warm-up */
    int warmup, total;
    double min_lr;
};

static const char *kind_name(sched_kind k) { return k == SCHED_STEP ? "step_lr" : "cosine_warmup_lr"; }

static double lr_at(const em_lr_scheduler *s, int64_t t)
{
    if (s->kind == SCHED_STEP) return s->base_lr * pow(s->gamma, (double)(t / s->step_size));
    if (t < s->warmup) return s->base_lr * (double)t / (double)s->warmup;
    if (t > s->total) return s->min_lr;
    double progress = (double)(t - s->warmup) / (double)(s->total - s->warmup);
    return s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * progress));
}

/* Checks the schedule's arguments in s (base_lr included). */
static em_status check(const char *fn, const em_lr_scheduler *s)
{
    if (!(s->base_lr >= 0) || !isfinite(s->base_lr))
        return em__fail(EM_ERR_INVALID_ARG, "%s: base_lr = %g is invalid; it must be finite and >= 0",
                        fn, s->base_lr);
    if (s->t < 0)
        return em__fail(EM_ERR_INVALID_ARG, "%s: last_step = %" PRId64 " is invalid; it must be >= 0",
                        fn, s->t);
    if (s->kind == SCHED_STEP) {
        if (s->step_size < 1)
            return em__fail(EM_ERR_INVALID_ARG, "%s: step_size = %d is invalid; it must be >= 1", fn,
                            s->step_size);
        if (!(s->gamma > 0) || !isfinite(s->gamma))
            return em__fail(EM_ERR_INVALID_ARG, "%s: gamma = %g is invalid; it must be finite and > 0",
                            fn, s->gamma);
        return EM_OK;
    }
    if (s->warmup < 0)
        return em__fail(EM_ERR_INVALID_ARG, "%s: warmup_steps = %d is invalid; it must be >= 0", fn,
                        s->warmup);
    if (s->total <= s->warmup)
        return em__fail(EM_ERR_INVALID_ARG, "%s: total_steps = %d is invalid; it must be greater "
                        "than warmup_steps = %d", fn, s->total, s->warmup);
    if (!(s->min_lr >= 0) || !(s->min_lr <= s->base_lr))
        return em__fail(EM_ERR_INVALID_ARG, "%s: min_lr = %g is invalid; it must be in [0, base_lr "
                        "= %g] (the optimizer's lr)", fn, s->min_lr, s->base_lr);
    return EM_OK;
}

static em_lr_scheduler *create(const char *fn, em_lr_scheduler *tmpl)
{
    if (!tmpl->opt) {
        em__null_arg(fn, "opt");
        return NULL;
    }
    tmpl->base_lr = em_optimizer_get_lr(tmpl->opt);
    tmpl->t = 0;
    if (check(fn, tmpl) != EM_OK) return NULL;
    em_lr_scheduler *s = malloc(sizeof *s);
    if (!s) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
        return NULL;
    }
    *s = *tmpl;
    if (em_optimizer_set_lr(s->opt, lr_at(s, 0)) != EM_OK) {
        free(s);
        return NULL;
    }
    return s;
}

em_lr_scheduler *em_step_lr_create(em_optimizer *opt, int step_size, double gamma)
{
    em_lr_scheduler s = {0};
    s.kind = SCHED_STEP;
    s.opt = opt;
    s.step_size = step_size;
    s.gamma = gamma;
    return create("em_step_lr_create", &s);
}

em_lr_scheduler *em_cosine_warmup_lr_create(em_optimizer *opt, int warmup_steps, int total_steps,
                                            double min_lr)
{
    em_lr_scheduler s = {0};
    s.kind = SCHED_COSINE_WARMUP;
    s.opt = opt;
    s.warmup = warmup_steps;
    s.total = total_steps;
    s.min_lr = min_lr;
    return create("em_cosine_warmup_lr_create", &s);
}

em_status em_lr_scheduler_step(em_lr_scheduler *s)
{
    if (!s) return em__null_arg("em_lr_scheduler_step", "s");
    em_status st = em_optimizer_set_lr(s->opt, lr_at(s, s->t + 1));
    if (st == EM_OK) s->t++;
    return st;
}

double em_lr_scheduler_get_lr(const em_lr_scheduler *s)
{
    if (!s) {
        em__null_arg("em_lr_scheduler_get_lr", "s");
        return NAN;
    }
    return lr_at(s, s->t);
}

int64_t em_lr_scheduler_last_step(const em_lr_scheduler *s)
{
    if (!s) {
        em__null_arg("em_lr_scheduler_last_step", "s");
        return -1;
    }
    return s->t;
}

void em_lr_scheduler_destroy(em_lr_scheduler *s) { free(s); }

/* ------------------------------------------------------------------------ */
/* State dict (metadata only)                                                */
/* ------------------------------------------------------------------------ */

em_tensor_dict *em_lr_scheduler_state_dict(const em_lr_scheduler *s)
{
    if (!s) {
        em__null_arg("em_lr_scheduler_state_dict", "s");
        return NULL;
    }
    em_tensor_dict *d = em_tensor_dict_create();
    if (!d) return NULL;
    em_status st = em_tensor_dict_set_meta(d, "type", kind_name(s->kind));
    if (st == EM_OK) st = em__nn_set_meta_f(d, "base_lr", "%.17g", s->base_lr);
    if (st == EM_OK) st = em__nn_set_meta_f(d, "last_step", "%" PRId64, s->t);
    if (s->kind == SCHED_STEP) {
        if (st == EM_OK) st = em__nn_set_meta_f(d, "step_size", "%d", s->step_size);
        if (st == EM_OK) st = em__nn_set_meta_f(d, "gamma", "%.17g", s->gamma);
    } else {
        if (st == EM_OK) st = em__nn_set_meta_f(d, "warmup_steps", "%d", s->warmup);
        if (st == EM_OK) st = em__nn_set_meta_f(d, "total_steps", "%d", s->total);
        if (st == EM_OK) st = em__nn_set_meta_f(d, "min_lr", "%.17g", s->min_lr);
    }
    if (st != EM_OK) {
        em_tensor_dict_destroy(d);
        return NULL;
    }
    return d;
}

static em_status get_num(const char *fn, const em_tensor_dict *d, const char *key, double *out)
{
    const char *v = em_tensor_dict_get_meta(d, key);
    if (!v) return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict has no '%s' metadata", fn, key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno == ERANGE)
        return em__fail(EM_ERR_INVALID_ARG, "%s: metadata '%s' is '%s', not a number", fn, key, v);
    *out = x;
    return EM_OK;
}

static em_status get_int(const char *fn, const em_tensor_dict *d, const char *key, int64_t max,
                         int64_t *out)
{
    const char *v = em_tensor_dict_get_meta(d, key);
    if (!v) return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict has no '%s' metadata", fn, key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < -max - 1 || x > max)
        return em__fail(EM_ERR_INVALID_ARG, "%s: metadata '%s' is '%s', not an integer in range", fn,
                        key, v);
    *out = x;
    return EM_OK;
}

em_status em_lr_scheduler_load_state_dict(em_lr_scheduler *s, const em_tensor_dict *d)
{
    static const char *fn = "em_lr_scheduler_load_state_dict";
    if (!s) return em__null_arg(fn, "s");
    if (!d) return em__null_arg(fn, "d");
    const char *type = em_tensor_dict_get_meta(d, "type");
    if (!type)
        return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict has no 'type' metadata", fn);
    if (strcmp(type, kind_name(s->kind)) != 0)
        return em__fail(EM_ERR_INVALID_ARG, "%s: the state dict is for schedule type '%s', this "
                        "scheduler is '%s'", fn, type, kind_name(s->kind));
    em_lr_scheduler n = *s;
    int64_t a = 0, b = 0;
    em_status st = get_num(fn, d, "base_lr", &n.base_lr);
    if (st == EM_OK) st = get_int(fn, d, "last_step", INT64_MAX, &n.t);
    if (n.kind == SCHED_STEP) {
        if (st == EM_OK) st = get_int(fn, d, "step_size", INT32_MAX, &a);
        if (st == EM_OK) st = get_num(fn, d, "gamma", &n.gamma);
        n.step_size = (int)a;
    } else {
        if (st == EM_OK) st = get_int(fn, d, "warmup_steps", INT32_MAX, &a);
        if (st == EM_OK) st = get_int(fn, d, "total_steps", INT32_MAX, &b);
        if (st == EM_OK) st = get_num(fn, d, "min_lr", &n.min_lr);
        n.warmup = (int)a;
        n.total = (int)b;
    }
    if (st != EM_OK) return st;
    st = check(fn, &n);
    if (st != EM_OK) return st;
    st = em_optimizer_set_lr(n.opt, lr_at(&n, n.t));
    if (st != EM_OK) return st;
    *s = n;
    return EM_OK;
}
