/*
 * ops_create.c — creation ops that compute their values on the device:
 * empty/zeros/ones/full, arange, linspace, eye, the *_like forms, and the
 * random ones with their generators (Philox streams: see ember_plugin.h).
 * Tensors made from host data live in tensor.c.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const em_op_params base_params = {.struct_size = sizeof(em_op_params)};

struct em_generator {
    uint64_t seed;
    atomic_uint_fast64_t offset; /* advanced by one per random op */
};

static em_generator global_gen; /* seed 0, offset 0 */

static em_device *pick_device(em_device *device)
{
    return device ? device : em__default_device();
}

em_tensor *em_empty(em_dtype dtype, int ndim, const int64_t *shape, em_device *device)
{
    if (ndim > 0 && !shape) {
        em__null_arg("em_empty", "shape");
        return NULL;
    }
    device = pick_device(device);
    return device ? em__own(em__alloc(device, dtype, ndim, shape)) : NULL;
}

em_tensor *em_full(double value, em_dtype dtype, int ndim, const int64_t *shape, em_device *device)
{
    if (ndim > 0 && !shape) {
        em__null_arg("em_full", "shape");
        return NULL;
    }
    device = pick_device(device);
    if (!device) return NULL;
    em_tensor *t = em__alloc(device, dtype, ndim, shape);
    if (t && em__fill(t, value) != EM_OK) {
        em_tensor_release(t);
        return NULL;
    }
    return em__own(t);
}

em_tensor *em_zeros(em_dtype dtype, int ndim, const int64_t *shape, em_device *device)
{
    return em_full(0.0, dtype, ndim, shape, device);
}

em_tensor *em_ones(em_dtype dtype, int ndim, const int64_t *shape, em_device *device)
{
    return em_full(1.0, dtype, ndim, shape, device);
}

static em_tensor *range_op(const char *name, int op, int64_t n, double a, double b, em_dtype dtype,
                           em_device *device)
{
    device = pick_device(device);
    if (!device) return NULL;
    em_tensor *t = em__alloc(device, dtype, 1, &n);
    if (!t || n == 0) return em__own(t);
    em_op_params p = base_params;
    p.scalar[0] = a;
    p.scalar[1] = b;
    em_tdesc d = em__desc(t);
    if (em__run_op(name, device, op, NULL, 0, &d, 1, &p) != EM_OK) {
        em_tensor_release(t);
        return NULL;
    }
    return em__own(t);
}

em_tensor *em_arange(double start, double end, double step, em_dtype dtype, em_device *device)
{
    if (!isfinite(start) || !isfinite(end) || !isfinite(step) || step == 0 ||
        (step > 0 && end < start) || (step < 0 && end > start)) {
        em__fail(EM_ERR_INVALID_ARG, "em_arange: start %g, end %g, step %g do not give a range "
                 "(step must be non-zero and point from start to end)", start, end, step);
        return NULL;
    }
    double count = ceil((end - start) / step);
    if (count > 9.0e15) {
        em__fail(EM_ERR_INVALID_ARG, "em_arange: %g elements is too many", count);
        return NULL;
    }
    return range_op("em_arange", EM_OP_ARANGE, (int64_t)count, start, step, dtype, device);
}

em_tensor *em_linspace(double start, double end, int64_t steps, em_dtype dtype, em_device *device)
{
    if (steps < 0 || !isfinite(start) || !isfinite(end)) {
        em__fail(EM_ERR_INVALID_ARG, "em_linspace: steps must be >= 0 and bounds finite "
                 "(got %g, %g, %lld)", start, end, (long long)steps);
        return NULL;
    }
    return range_op("em_linspace", EM_OP_LINSPACE, steps, start, end, dtype, device);
}

em_tensor *em_eye(int64_t n, int64_t m, em_dtype dtype, em_device *device)
{
    if (m < 0) m = n;
    if (n < 0) {
        em__fail(EM_ERR_INVALID_ARG, "em_eye: n must be >= 0, got %lld", (long long)n);
        return NULL;
    }
    device = pick_device(device);
    if (!device) return NULL;
    em_tensor *t = em__alloc(device, dtype, 2, (const int64_t[]){n, m});
    if (!t) return NULL;
    int64_t k = n < m ? n : m;
    em_status st = em__fill(t, 0.0);
    if (st == EM_OK && k > 0) {
        /* the diagonal is a strided 1-D view with stride m + 1 */
        em_tensor *diag = em__make_view(t, 1, &k, (const int64_t[]){m + 1}, t->offset);
        st = diag ? em__fill(diag, 1.0) : em_last_status();
        em_tensor_release(diag);
    }
    if (st != EM_OK) {
        em_tensor_release(t);
        return NULL;
    }
    return em__own(t);
}

#define LIKE_CHECK(name)                                                     \
    if (!t) {                                                                \
        em__null_arg(name, "t");                                             \
        return NULL;                                                         \
    }

em_tensor *em_empty_like(const em_tensor *t)
{
    LIKE_CHECK("em_empty_like");
    return em_empty(t->dtype, t->ndim, t->shape, t->storage->device);
}

em_tensor *em_zeros_like(const em_tensor *t)
{
    LIKE_CHECK("em_zeros_like");
    return em_full(0.0, t->dtype, t->ndim, t->shape, t->storage->device);
}

em_tensor *em_ones_like(const em_tensor *t)
{
    LIKE_CHECK("em_ones_like");
    return em_full(1.0, t->dtype, t->ndim, t->shape, t->storage->device);
}

em_tensor *em_full_like(const em_tensor *t, double value)
{
    LIKE_CHECK("em_full_like");
    return em_full(value, t->dtype, t->ndim, t->shape, t->storage->device);
}

/* ------------------------------------------------------------------------ */
/* Random                                                                    */
/* ------------------------------------------------------------------------ */

void em_manual_seed(uint64_t seed)
{
    global_gen.seed = seed;
    atomic_store(&global_gen.offset, 0);
}

em_generator *em_generator_create(uint64_t seed)
{
    em_generator *g = malloc(sizeof *g);
    if (!g) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "em_generator_create: out of memory");
        return NULL;
    }
    g->seed = seed;
    atomic_init(&g->offset, 0);
    return g;
}

void em_generator_destroy(em_generator *gen) { free(gen); }

static em_tensor *random_op(const char *name, int op, em_generator *gen, em_dtype dtype, int ndim,
                            const int64_t *shape, em_device *device, double a, double b,
                            int64_t lo, int64_t hi)
{
    if (ndim > 0 && !shape) {
        em__null_arg(name, "shape");
        return NULL;
    }
    bool want_float = op != EM_OP_RANDINT;
    if (em__dtype_valid(dtype) && want_float != em_dtype_is_float(dtype)) {
        em__fail(EM_ERR_DTYPE, "%s: needs a %s dtype, got %s", name,
                 want_float ? "floating-point" : "non-floating", em_dtype_name(dtype));
        return NULL;
    }
    device = pick_device(device);
    if (!device) return NULL;
    em_tensor *t = em__alloc(device, dtype, ndim, shape);
    if (!t || t->numel == 0) return em__own(t);
    if (!gen) gen = &global_gen;
    em_op_params p = base_params;
    p.scalar[0] = a;
    p.scalar[1] = b;
    p.ints[0] = lo;
    p.ints[1] = hi;
    p.seed = gen->seed;
    p.offset = atomic_fetch_add(&gen->offset, 1);
    em_tdesc d = em__desc(t);
    if (em__run_op(name, device, op, NULL, 0, &d, 1, &p) != EM_OK) {
        em_tensor_release(t);
        return NULL;
    }
    return em__own(t);
}

em_tensor *em_rand(em_generator *gen, em_dtype dtype, int ndim, const int64_t *shape,
                   em_device *device)
{
    return random_op("em_rand", EM_OP_RAND_UNIFORM, gen, dtype, ndim, shape, device, 0.0, 1.0, 0, 0);
}

em_tensor *em_randn(em_generator *gen, em_dtype dtype, int ndim, const int64_t *shape,
                    em_device *device)
{
    return random_op("em_randn", EM_OP_RAND_NORMAL, gen, dtype, ndim, shape, device, 0.0, 1.0, 0, 0);
}

em_tensor *em_randint(em_generator *gen, int64_t low, int64_t high, em_dtype dtype, int ndim,
                      const int64_t *shape, em_device *device)
{
    if (high <= low) {
        em__fail(EM_ERR_INVALID_ARG, "em_randint: high (%lld) must be greater than low (%lld)",
                 (long long)high, (long long)low);
        return NULL;
    }
    return random_op("em_randint", EM_OP_RANDINT, gen, dtype, ndim, shape, device, 0.0, 0.0, low, high);
}

em_tensor *em_rand_like(const em_tensor *t, em_generator *gen)
{
    LIKE_CHECK("em_rand_like");
    return em_rand(gen, t->dtype, t->ndim, t->shape, t->storage->device);
}

em_tensor *em_randn_like(const em_tensor *t, em_generator *gen)
{
    LIKE_CHECK("em_randn_like");
    return em_randn(gen, t->dtype, t->ndim, t->shape, t->storage->device);
}
