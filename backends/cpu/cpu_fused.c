/*
 * cpu_fused.c — fused ops (ABI 1.3). EM_OP_ADAM: one pass over a
 * parameter and its moments instead of the ten passes of the composed step.
 *
 * Operands are dense (the core composes the step otherwise). f32 is computed
 * in f32 with the operation order of the composed step (so both agree to a few
 * ulps); f64 in f64. The range is split over the pool like a cheap
 * elementwise op.
 *
 * EM_OP_CROSS_ENTROPY / _BACKWARD: per row of logits [N, C], the stable
 * log-sum-exp and the (label-smoothed) loss, in double; the backward writes
 * g (softmax - target distribution) in one pass. Rows are split over the pool.
 * An out-of-range target is EM_ERR_INDEX naming the row.
 *
 * EM_OP_RELU_BACKWARD (ABI 1.4): out = y > 0 ? g : 0 (NaN y gives 0) over
 * broadcast descriptors, every float dtype; g's stored value is copied as is.
 */
#include "cpu_internal.h"

#include <math.h>

typedef struct adam_ctx {
    void *p, *m, *v, *vmax;
    const void *g;
    double beta1, beta2, eps, step_size, bc2_sqrt, wd, decay;
    int amsgrad;
} adam_ctx;

#define ADAM_RANGE(name, T, SQRT)                                                        \
    static void name(void *vctx, int64_t begin, int64_t end)                             \
    {                                                                                    \
        const adam_ctx *c = vctx;                                                        \
        T *p = c->p, *m = c->m, *v = c->v, *vmax = c->vmax;                              \
        const T *g = c->g;                                                               \
        const T b2 = (T)c->beta2, eps = (T)c->eps;                   \
        const T one_b1 = (T)(1.0 - c->beta1), one_b2 = (T)(1.0 - c->beta2);               \
        const T step = (T)c->step_size, bc2 = (T)c->bc2_sqrt, wd = (T)c->wd;              \
        const T decay = (T)c->decay;                                                     \
        for (int64_t i = begin; i < end; i++) {                                          \
            T pi = p[i] * decay;                                                         \
            T gi = g[i] + wd * pi;                                                       \
            T mi = m[i] + one_b1 * (gi - m[i]);                                          \
            T vi = b2 * v[i] + one_b2 * (gi * gi);                                       \
            T si = vi;                                                                   \
            if (c->amsgrad) {                                                            \
                si = vmax[i] > vi || vmax[i] != vmax[i] ? vmax[i] : vi;                  \
                vmax[i] = si;                                                            \
            }                                                                            \
            m[i] = mi;                                                                   \
            v[i] = vi;                                                                   \
            p[i] = pi - step * (mi / (SQRT(si) / bc2 + eps));                            \
        }                                                                                \
    }
ADAM_RANGE(adam_f32, float, sqrtf)
ADAM_RANGE(adam_f64, double, sqrt)

em_status em__cpu_k_adam(void *dev, const em_op_call *c)
{
    (void)dev;
    int amsgrad = c->params->flag == 1;
    em_status st = em__cpu_check_arity(c, 1, 1, amsgrad ? 4 : 3);
    if (st) return st;
    const em_tdesc *g = &c->in[0];
    int dt = g->dtype;
    if (dt != EM_F32 && dt != EM_F64)
        return em__cpu_fail(EM_ERR_UNSUPPORTED, "cpu: no adam kernel for %s", em__cpu_dtype_name(dt));
    for (int k = 0; k < c->n_out; k++) {
        if (c->out[k].dtype != dt)
            return em__cpu_fail(EM_ERR_DTYPE, "cpu: adam operand %d is %s, the gradient %s", k + 1,
                                em__cpu_dtype_name(c->out[k].dtype), em__cpu_dtype_name(dt));
        if ((st = em__cpu_check_shape("adam operand", &c->out[k], g->ndim, g->shape))) return st;
    }
    const em_op_params *q = c->params;
    adam_ctx ctx = {
        .p = cpu_ptr(&c->out[0]), .m = cpu_ptr(&c->out[1]), .v = cpu_ptr(&c->out[2]),
        .vmax = amsgrad ? cpu_ptr(&c->out[3]) : NULL, .g = cpu_ptr(g),
        .beta1 = q->scalar[0], .beta2 = q->scalar[1], .eps = q->scalar[2], .step_size = q->scalar[3],
        .bc2_sqrt = q->scalar_ext[0], .wd = q->scalar_ext[1], .decay = q->scalar_ext[2],
        .amsgrad = amsgrad,
    };
    int64_t n = 1;
    for (int k = 0; k < g->ndim; k++) n *= g->shape[k];
    em__cpu_parallel_range(n, CPU_GRAIN_CHEAP / 4, 16, dt == EM_F32 ? adam_f32 : adam_f64, &ctx);
    return EM_OK;
}

/* ---------------- cross-entropy rows (EM_OP_CROSS_ENTROPY[_BACKWARD]) ---- */

typedef struct ce_ctx {
    const void *x, *t, *lse, *g;
    void *out0, *out1;
    int64_t C, ignore;
    int t_i64;
    double eps;
    int64_t *bad_row; /* first out-of-range target row, or -1 (written racily: any one is fine) */
} ce_ctx;

static int64_t ce_target(const ce_ctx *c, int64_t i)
{
    return c->t_i64 ? ((const int64_t *)c->t)[i] : ((const int32_t *)c->t)[i];
}

/* Forward in double per row (the row sums are short: C terms). */
#define CE_FWD(name, T)                                                                  \
    static void name(void *vctx, int64_t begin, int64_t end)                             \
    {                                                                                    \
        const ce_ctx *c = vctx;                                                          \
        for (int64_t i = begin; i < end; i++) {                                          \
            const T *x = (const T *)c->x + i * c->C;                                     \
            double mx = -INFINITY, sum = 0, xsum = 0;                                    \
            for (int64_t k = 0; k < c->C; k++) mx = x[k] > mx || x[k] != x[k] ? x[k] : mx; \
            for (int64_t k = 0; k < c->C; k++) {                                         \
                sum += exp((double)x[k] - mx);                                           \
                xsum += x[k];                                                            \
            }                                                                            \
            double lse = isinf(mx) && mx < 0 ? mx : mx + log(sum);                       \
            int64_t t = ce_target(c, i);                                                 \
            double loss = 0;                                                             \
            if (t != c->ignore) {                                                        \
                if (t < 0 || t >= c->C) {                                                \
                    *c->bad_row = i;                                                     \
                    continue;                                                            \
                }                                                                        \
                loss = (1.0 - c->eps) * (lse - x[t]);                                    \
                if (c->eps != 0) loss += c->eps * (lse - xsum / (double)c->C);           \
            }                                                                            \
            ((T *)c->out0)[i] = (T)loss;                                                 \
            ((T *)c->out1)[i] = (T)lse;                                                  \
        }                                                                                \
    }
CE_FWD(ce_fwd_f32, float)
CE_FWD(ce_fwd_f64, double)

#define CE_BWD(name, T, EXP)                                                             \
    static void name(void *vctx, int64_t begin, int64_t end)                             \
    {                                                                                    \
        const ce_ctx *c = vctx;                                                          \
        const T off = (T)(c->eps / (double)c->C), hot = (T)(1.0 - c->eps);               \
        for (int64_t i = begin; i < end; i++) {                                          \
            const T *x = (const T *)c->x + i * c->C;                                     \
            T *dx = (T *)c->out0 + i * c->C;                                             \
            int64_t t = ce_target(c, i);                                                 \
            if (t == c->ignore) {                                                        \
                for (int64_t k = 0; k < c->C; k++) dx[k] = 0;                            \
                continue;                                                                \
            }                                                                            \
            if (t < 0 || t >= c->C) {                                                    \
                *c->bad_row = i;                                                         \
                continue;                                                                \
            }                                                                            \
            const T lse = ((const T *)c->lse)[i], g = ((const T *)c->g)[i];              \
            for (int64_t k = 0; k < c->C; k++) dx[k] = g * (EXP(x[k] - lse) - off);      \
            dx[t] -= g * hot;                                                            \
        }                                                                                \
    }
CE_BWD(ce_bwd_f32, float, expf)
CE_BWD(ce_bwd_f64, double, exp)

em_status em__cpu_k_cross_entropy(void *dev, const em_op_call *c)
{
    (void)dev;
    int backward = c->op == EM_OP_CROSS_ENTROPY_BACKWARD;
    em_status st = backward ? em__cpu_check_arity(c, 4, 4, 1) : em__cpu_check_arity(c, 2, 2, 2);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *t = &c->in[1];
    int dt = x->dtype;
    if ((dt != EM_F32 && dt != EM_F64) || x->ndim != 2 || t->ndim != 1 ||
        t->shape[0] != x->shape[0] || (t->dtype != EM_I64 && t->dtype != EM_I32))
        return em__cpu_fail(EM_ERR_UNSUPPORTED,
                            "cpu: cross_entropy takes logits f32/f64 [N, C] and targets i32/i64 [N]");
    int64_t bad = -1;
    ce_ctx ctx = {
        .x = cpu_ptr(x), .t = cpu_ptr(t), .out0 = cpu_ptr(&c->out[0]), .C = x->shape[1],
        .ignore = c->params->ints[0], .t_i64 = t->dtype == EM_I64, .eps = c->params->scalar[0],
        .bad_row = &bad,
    };
    if (backward) {
        ctx.lse = cpu_ptr(&c->in[2]);
        ctx.g = cpu_ptr(&c->in[3]);
    } else {
        ctx.out1 = cpu_ptr(&c->out[1]);
    }
    cpu_range_fn fn = backward ? (dt == EM_F32 ? ce_bwd_f32 : ce_bwd_f64)
                               : (dt == EM_F32 ? ce_fwd_f32 : ce_fwd_f64);
    int64_t grain = CPU_GRAIN_MATH / (x->shape[1] > 0 ? x->shape[1] : 1) + 1;
    em__cpu_parallel_range(x->shape[0], grain, 1, fn, &ctx);
    if (bad >= 0)
        return em__cpu_fail(EM_ERR_INDEX, "cpu: cross_entropy target %lld (row %lld) is out of range [0, %lld)",
                            (long long)ce_target(&ctx, bad), (long long)bad, (long long)ctx.C);
    return EM_OK;
}

/* ---------------- relu backward (EM_OP_RELU_BACKWARD) -------------------- */

/* f32/f64 get the AVX2 clone; f16/bf16 call the header's converters (plain). */
#define RELU_BWD(dt, ATTR)                                                               \
    ATTR static void relu_bwd_##dt(char **p, const int64_t *s, int64_t n, const void *ctx) \
    {                                                                                    \
        (void)ctx;                                                                       \
        typedef DT_##dt##_ST st_t;                                                       \
        const int64_t es = (int64_t)sizeof(st_t);                                        \
        if (s[0] == es && s[1] == es && s[2] == es) {                                    \
            st_t *o = (st_t *)p[0];                                                      \
            const st_t *g = (const st_t *)p[1], *y = (const st_t *)p[2];                 \
            for (int64_t i = 0; i < n; i++) o[i] = DT_##dt##_LD(y[i]) > 0 ? g[i] : (st_t)0; \
            return;                                                                      \
        }                                                                                \
        char *o = p[0];                                                                  \
        const char *g = p[1], *y = p[2];                                                 \
        for (int64_t i = 0; i < n; i++, o += s[0], g += s[1], y += s[2])                 \
            *(st_t *)o = DT_##dt##_LD(*(const st_t *)y) > 0 ? *(const st_t *)g : (st_t)0; \
    }
RELU_BWD(f32, CPU_MATH_CLONES)
RELU_BWD(f64, CPU_MATH_CLONES)
RELU_BWD(f16, )
RELU_BWD(bf16, )

em_status em__cpu_k_relu_backward(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *o = &c->out[0], *g = &c->in[0], *y = &c->in[1];
    static const cpu_loop_fn loops[EM_DTYPE_COUNT] = {relu_bwd_f32, relu_bwd_f64, relu_bwd_f16,
                                                      relu_bwd_bf16, 0, 0, 0};
    int dt = o->dtype;
    if (!cpu_dtype_valid(dt) || !loops[dt] || g->dtype != dt || y->dtype != dt)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: relu_backward takes one float dtype, got %s, %s -> %s",
                            em__cpu_dtype_name(g->dtype), em__cpu_dtype_name(y->dtype),
                            em__cpu_dtype_name(dt));
    if ((st = em__cpu_check_shape("relu_backward g", g, o->ndim, o->shape)) ||
        (st = em__cpu_check_shape("relu_backward y", y, o->ndim, o->shape)))
        return st;
    int64_t es = (int64_t)cpu_dtype_size(dt);
    cpu_operand ops[3] = {{cpu_ptr(o), o->strides, es}, {cpu_ptr(g), g->strides, es},
                          {cpu_ptr(y), y->strides, es}};
    em__cpu_ew_run(3, ops, o->ndim, o->shape, loops[dt], NULL, CPU_GRAIN_CHEAP);
    return EM_OK;
}
