/*
 * cpu_random.c — generated values: ARANGE, LINSPACE and the Philox-based
 * RAND_UNIFORM, RAND_NORMAL, RANDINT, for every dtype.
 *
 * The random stream is the one ember_plugin.h specifies (one
 * Philox4x32-10 block per element, counter {i, offset}), so values do not
 * depend on the thread split. Values are computed in double and then
 * converted to the output dtype (uniform: lo + u * (hi - lo); normal:
 * mean + std * z). Outputs are written in row-major element order through
 * their strides; work is split over the pool.
 *
 * Not for: the generator state (the core advances offsets).
 */
#include "cpu_internal.h"

typedef struct gen_job {
    const em_tdesc *o;
    int op;
    double a, b;        /* arange: start, step; linspace: start, end;
                           uniform: lo, hi; normal: mean, std         */
    int64_t n;          /* number of elements                        */
    int64_t lo, span;   /* randint: low, high - low                  */
    uint32_t key[2];
    uint64_t offset;
    double step;        /* linspace                                   */
} gen_job;

static inline double gen_value(const gen_job *j, int64_t i, int64_t *ival, int *is_int)
{
    *is_int = 0;
    switch (j->op) {
    case EM_OP_ARANGE: return j->a + (double)i * j->b;
    case EM_OP_LINSPACE:
        if (j->n == 1) return j->a;
        return i < j->n / 2 ? j->a + (double)i * j->step : j->b - (double)(j->n - 1 - i) * j->step;
    default: break;
    }
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), (uint32_t)j->offset,
                       (uint32_t)(j->offset >> 32)};
    uint32_t x[4];
    em_philox4x32_10(j->key, ctr, x);
    switch (j->op) {
    case EM_OP_RAND_UNIFORM: {
        double u;
        if (j->o->dtype == EM_F64)
            u = (double)(((uint64_t)x[0] << 21) | (x[1] >> 11)) * 0x1p-53;
        else if (j->o->dtype == EM_F16) /* only the bits the dtype holds: never rounds to 1 */
            u = (double)(x[0] >> 21) * 0x1p-11;
        else if (j->o->dtype == EM_BF16)
            u = (double)(x[0] >> 24) * 0x1p-8;
        else
            u = (double)(x[0] >> 8) * 0x1p-24;
        return j->a + u * (j->b - j->a);
    }
    case EM_OP_RAND_NORMAL: {
        double u1 = ((double)x[0] + 1.0) * 0x1p-32, u2 = (double)x[1] * 0x1p-32;
        double z = sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
        return j->a + j->b * z;
    }
    default: { /* RANDINT */
        uint64_t r = ((uint64_t)x[1] << 32) | x[0];
        *is_int = 1;
        *ival = (int64_t)((uint64_t)j->lo + r % (uint64_t)j->span);
        return 0;
    }
    }
}

static void store_value(int dt, char *p, double v, int64_t iv, int is_int)
{
    if (is_int) {
        switch (dt) {
        case EM_I64: *(int64_t *)p = iv; return;
        case EM_I32: *(int32_t *)p = (int32_t)(uint32_t)(uint64_t)iv; return;
        case EM_BOOL: *(uint8_t *)p = iv != 0; return;
        default: v = (double)iv; break;
        }
    }
    em__cpu_store_scalar(dt, v, p);
}

static void gen_task(void *ctx, int64_t b, int64_t e)
{
    const gen_job *j = ctx;
    const em_tdesc *o = j->o;
    const int dt = o->dtype;
    const int64_t es = (int64_t)cpu_dtype_size(dt);
    char *base = cpu_ptr(o);
    const int nd = o->ndim;
    int64_t idx[EM_MAX_DIMS], off = 0, rest = b;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rest % o->shape[d];
        rest /= o->shape[d];
        off += idx[d] * o->strides[d];
    }
    const int64_t ls = nd ? o->strides[nd - 1] : 0;
    for (int64_t i = b; i < e; i++) {
        int64_t iv = 0;
        int is_int;
        double v = gen_value(j, i, &iv, &is_int);
        store_value(dt, base + off * es, v, iv, is_int);
        /* advance the row-major index */
        if (nd == 0) continue;
        if (++idx[nd - 1] < o->shape[nd - 1]) {
            off += ls;
            continue;
        }
        idx[nd - 1] = 0;
        off -= (o->shape[nd - 1] - 1) * ls;
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < o->shape[d]) {
                off += o->strides[d];
                break;
            }
            idx[d] = 0;
            off -= (o->shape[d] - 1) * o->strides[d];
        }
    }
}

static em_status run_gen(gen_job *j, int64_t grain)
{
    j->n = cpu_numel(j->o);
    if (!cpu_dtype_valid(j->o->dtype))
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: invalid output dtype %d", j->o->dtype);
    em__cpu_parallel_range(j->n, grain, 64, gen_task, j);
    return EM_OK;
}

em_status em__cpu_k_arange(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 0, 0, 1);
    if (st) return st;
    gen_job j = {.o = &c->out[0], .op = EM_OP_ARANGE, .a = c->params->scalar[0],
                 .b = c->params->scalar[1]};
    return run_gen(&j, CPU_GRAIN_CHEAP);
}

em_status em__cpu_k_linspace(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 0, 0, 1);
    if (st) return st;
    gen_job j = {.o = &c->out[0], .op = EM_OP_LINSPACE, .a = c->params->scalar[0],
                 .b = c->params->scalar[1]};
    int64_t n = cpu_numel(j.o);
    j.step = n > 1 ? (j.b - j.a) / (double)(n - 1) : 0.0;
    return run_gen(&j, CPU_GRAIN_CHEAP);
}

em_status em__cpu_k_random(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 0, 0, 1);
    if (st) return st;
    const em_op_params *pr = c->params;
    gen_job j = {.o = &c->out[0], .op = c->op, .a = pr->scalar[0], .b = pr->scalar[1],
                 .key = {(uint32_t)pr->seed, (uint32_t)(pr->seed >> 32)}, .offset = pr->offset};
    if (c->op == EM_OP_RANDINT) {
        j.lo = pr->ints[0];
        j.span = (int64_t)((uint64_t)pr->ints[1] - (uint64_t)pr->ints[0]);
        if (pr->ints[1] <= pr->ints[0])
            return em__cpu_fail(EM_ERR_INVALID_ARG, "cpu: randint: empty range [%lld, %lld)",
                                (long long)pr->ints[0], (long long)pr->ints[1]);
    } else if (c->op != EM_OP_RAND_UNIFORM && c->op != EM_OP_RAND_NORMAL) {
        return em__cpu_fail(EM_ERR_UNSUPPORTED, "cpu: op %d is not a random op", c->op);
    }
    return run_gen(&j, 4096);
}
