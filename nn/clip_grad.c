/*
 * clip_grad.c — torch.nn.utils.clip_grad_norm_ (L2) and clip_grad_value_.
 *
 * The norm and the clip coefficient stay on the device: per gradient a sum
 * of squares (f32, or f64 when a gradient is f64), summed on the first
 * gradient's device, sqrt, coef = min(1, max_norm / (total + 1e-6)), and each
 * gradient is multiplied by coef in place — no host read unless the caller
 * asks for the total as a double.
 */
#include "optim_internal.h"

#include <math.h>

static em_status check_params(const char *fn, int n, em_tensor *const *params)
{
    if (n < 0) return em__fail(EM_ERR_INVALID_ARG, "%s: n = %d is negative", fn, n);
    if (n > 0 && !params) return em__null_arg(fn, "params");
    for (int i = 0; i < n; i++)
        if (!params[i]) return em__fail(EM_ERR_NULL_ARG, "%s: params[%d] is NULL", fn, i);
    return EM_OK;
}

/* The body, inside the caller's scope with grad mode off. */
static em_tensor *clip_norm(int n, em_tensor *const *params, double max_norm)
{
    em_dtype acc = EM_F32;
    for (int i = 0; i < n; i++) {
        em_tensor *g = em_grad(params[i]);
        if (g && em_tensor_dtype(g) == EM_F64) acc = EM_F64;
    }
    em_tensor *total_sq = NULL;
    em_device *dev = NULL;
    for (int i = 0; i < n; i++) {
        em_tensor *g = em_grad(params[i]);
        if (!g) continue;
        em_tensor *s = em_sum(em_square(em_cast(g, acc)), NULL, 0, false);
        if (!s) return NULL;
        if (!dev) dev = em_tensor_device(s);
        else if (em_tensor_device(s) != dev) s = em_tensor_to(s, dev);
        total_sq = total_sq ? em_add(total_sq, s) : s;
        if (!total_sq) return NULL;
    }
    if (!total_sq) return em_zeros(EM_F32, 0, NULL, NULL); /* no gradient at all */
    em_tensor *total = em_sqrt(total_sq);
    /* torch: clip_coef = max_norm / (total + 1e-6), clamped to at most 1 */
    em_tensor *coef = em_minimum_scalar(
        em_div(em_full_like(total, max_norm), em_add_scalar(total, 1e-6)), 1.0);
    if (!coef) return NULL;
    for (int i = 0; i < n; i++) {
        em_tensor *g = em_grad(params[i]);
        if (!g) continue;
        em_tensor *c = em_tensor_device(g) == dev ? coef : em_tensor_to(coef, em_tensor_device(g));
        if (em_mul_(g, c) != EM_OK) return NULL;
    }
    return total;
}

em_tensor *em_clip_grad_norm_tensor(int n, em_tensor *const *params, double max_norm)
{
    static const char *fn = "em_clip_grad_norm";
    if (check_params(fn, n, params) != EM_OK) return NULL;
    if (!(max_norm >= 0)) {
        em__fail(EM_ERR_INVALID_ARG, "%s: max_norm = %g is invalid; it must be >= 0", fn, max_norm);
        return NULL;
    }
    if (em_scope_begin() != EM_OK) return NULL;
    bool prev = em_set_grad_enabled(false);
    em_tensor *total = clip_norm(n, params, max_norm);
    if (total) total = em_scope_keep(total);
    else em__error_prefix("%s: ", fn);
    em_set_grad_enabled(prev);
    em_scope_end();
    return total;
}

em_status em_clip_grad_norm(int n, em_tensor *const *params, double max_norm,
                            double *total_norm_out)
{
    em_status st = em_scope_begin();
    if (st != EM_OK) return st;
    em_tensor *total = em_clip_grad_norm_tensor(n, params, max_norm);
    if (!total) st = em_last_status() != EM_OK ? em_last_status() : EM_ERR_INTERNAL;
    else if (total_norm_out) st = em_tensor_item(total, total_norm_out);
    em_scope_end();
    return st;
}

em_status em_clip_grad_value(int n, em_tensor *const *params, double clip_value)
{
    static const char *fn = "em_clip_grad_value";
    em_status st = check_params(fn, n, params);
    if (st != EM_OK) return st;
    if (!(clip_value >= 0))
        return em__fail(EM_ERR_INVALID_ARG, "%s: clip_value = %g is invalid; it must be >= 0", fn,
                        clip_value);
    st = em_scope_begin();
    if (st != EM_OK) return st;
    bool prev = em_set_grad_enabled(false);
    for (int i = 0; i < n && st == EM_OK; i++) {
        em_tensor *g = em_grad(params[i]);
        if (g) st = em_clamp_(g, -clip_value, clip_value);
    }
    em_set_grad_enabled(prev);
    em_scope_end();
    return st;
}
