/*
 * init.c — parameter initialisation of api/ember_nn.h (torch.nn.init):
 * uniform, normal, constant/zeros/ones, fan computation, Kaiming and Xavier.
 *
 * Every function writes into its tensor in place with em_copy_/em_fill_
 * under em_set_grad_enabled(false), so parameters (leaves requiring grad)
 * can be initialised directly; random values come from em_rand/em_randn
 * (Philox, the same numbers on every backend for the same generator state).
 */
#include "ember_nn.h"
#include "internal.h"

#include <math.h>

static em_status check_float(const char *fn, const em_tensor *t)
{
    if (!t) return em__null_arg(fn, "t");
    if (!em_dtype_is_float(em_tensor_dtype(t)))
        return em__fail(EM_ERR_DTYPE, "%s: the tensor must be floating point, got %s", fn,
                        em_dtype_name(em_tensor_dtype(t)));
    return EM_OK;
}

/* t <- a + b * U[0,1) (uniform) or a + b * N(0,1) (normal). */
static em_status fill_random(em_tensor *t, bool normal, double a, double b, em_generator *gen)
{
    if (em_tensor_numel(t) == 0) return EM_OK;
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(t, shape);
    /* draw in f64 for an f64 tensor, f32 otherwise (f16/bf16 round once, at the copy) */
    em_dtype draw = em_tensor_dtype(t) == EM_F64 ? EM_F64 : EM_F32;
    em_status st = em_scope_begin();
    if (st != EM_OK) return st;
    bool prev = em_set_grad_enabled(false);
    em_tensor *r = normal ? em_randn(gen, draw, nd, shape, em_tensor_device(t))
                          : em_rand(gen, draw, nd, shape, em_tensor_device(t));
    r = em_add_scalar(em_mul_scalar(r, b), a);
    st = r ? em_copy_(t, r) : em_last_status();
    em_set_grad_enabled(prev);
    em_scope_end();
    return st;
}

em_status em_init_uniform_(em_tensor *t, double lo, double hi, em_generator *gen)
{
    static const char *fn = "em_init_uniform_";
    em_status st = check_float(fn, t);
    if (st != EM_OK) return st;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return em__fail(EM_ERR_INVALID_ARG, "%s: need finite lo <= hi, got lo=%g, hi=%g", fn, lo,
                        hi);
    return fill_random(t, false, lo, hi - lo, gen);
}

em_status em_init_normal_(em_tensor *t, double mean, double std, em_generator *gen)
{
    static const char *fn = "em_init_normal_";
    em_status st = check_float(fn, t);
    if (st != EM_OK) return st;
    if (!(std >= 0) || !isfinite(std) || !isfinite(mean))
        return em__fail(EM_ERR_INVALID_ARG, "%s: need a finite mean and std >= 0, got %g, %g", fn,
                        mean, std);
    return fill_random(t, true, mean, std, gen);
}

em_status em_init_constant_(em_tensor *t, double value)
{
    em_status st = check_float("em_init_constant_", t);
    if (st != EM_OK) return st;
    bool prev = em_set_grad_enabled(false);
    st = em_fill_(t, value);
    em_set_grad_enabled(prev);
    return st;
}

em_status em_init_zeros_(em_tensor *t)
{
    em_status st = check_float("em_init_zeros_", t);
    return st == EM_OK ? em_init_constant_(t, 0.0) : st;
}

em_status em_init_ones_(em_tensor *t)
{
    em_status st = check_float("em_init_ones_", t);
    return st == EM_OK ? em_init_constant_(t, 1.0) : st;
}

em_status em_init_calculate_fans(const em_tensor *t, int64_t *fan_in, int64_t *fan_out)
{
    static const char *fn = "em_init_calculate_fans";
    if (!t) return em__null_arg(fn, "t");
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(t, shape);
    if (nd < 2)
        return em__fail(EM_ERR_SHAPE,
                        "%s: fan in and fan out can not be computed for a tensor with fewer "
                        "than 2 dimensions (got %d)",
                        fn, nd);
    int64_t receptive = 1;
    for (int i = 2; i < nd; i++) receptive *= shape[i];
    if (fan_in) *fan_in = shape[1] * receptive;
    if (fan_out) *fan_out = shape[0] * receptive;
    return EM_OK;
}

static em_status kaiming(const char *fn, em_tensor *t, double a, bool normal, em_generator *gen)
{
    em_status st = check_float(fn, t);
    if (st != EM_OK) return st;
    int64_t fan_in;
    st = em_init_calculate_fans(t, &fan_in, NULL);
    if (st != EM_OK) return st;
    if (em_tensor_numel(t) == 0) return EM_OK; /* torch: a no-op on empty tensors */
    double gain = sqrt(2.0 / (1.0 + a * a));
    double std = gain / sqrt((double)fan_in);
    if (normal) return fill_random(t, true, 0.0, std, gen);
    double bound = sqrt(3.0) * std;
    return fill_random(t, false, -bound, 2.0 * bound, gen);
}

em_status em_init_kaiming_uniform_(em_tensor *t, double a, em_generator *gen)
{
    return kaiming("em_init_kaiming_uniform_", t, a, false, gen);
}

em_status em_init_kaiming_normal_(em_tensor *t, double a, em_generator *gen)
{
    return kaiming("em_init_kaiming_normal_", t, a, true, gen);
}

static em_status xavier(const char *fn, em_tensor *t, double gain, bool normal,
                        em_generator *gen)
{
    em_status st = check_float(fn, t);
    if (st != EM_OK) return st;
    int64_t fan_in, fan_out;
    st = em_init_calculate_fans(t, &fan_in, &fan_out);
    if (st != EM_OK) return st;
    if (em_tensor_numel(t) == 0) return EM_OK;
    double std = gain * sqrt(2.0 / (double)(fan_in + fan_out));
    if (normal) return fill_random(t, true, 0.0, std, gen);
    double bound = sqrt(3.0) * std;
    return fill_random(t, false, -bound, 2.0 * bound, gen);
}

em_status em_init_xavier_uniform_(em_tensor *t, double gain, em_generator *gen)
{
    return xavier("em_init_xavier_uniform_", t, gain, false, gen);
}

em_status em_init_xavier_normal_(em_tensor *t, double gain, em_generator *gen)
{
    return xavier("em_init_xavier_normal_", t, gain, true, gen);
}
