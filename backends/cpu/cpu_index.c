/*
 * cpu_index.c — data movement by position: CAT, INDEX_SELECT, GATHER,
 * SCATTER_ADD, ONE_HOT.
 *
 * Indices (i32 or i64) are validated in a first, serial pass before any
 * element is written, so a bad index leaves the output untouched and the
 * error names the first bad index in row-major order and the valid range.
 * Negative indices are out of range (as in PyTorch's gather/index_select).
 *
 * index_select runs as a gather whose index operand has stride 0 outside
 * dim; a run with a constant index becomes one memcpy (embedding rows).
 * scatter_add runs serially (duplicate indices accumulate).
 *
 * Not for: views and slicing (the core does those with strides).
 */
#include "cpu_internal.h"

#include <inttypes.h>

/* ---------------- index validation -------------------------------------- */

typedef struct check_ctx {
    int64_t limit;
    int64_t pos;     /* elements visited before the current run            */
    int found;
    int64_t bad, bad_pos;
} check_ctx;

#define CHECK_LOOP(T)                                                                    \
    static void check_loop_##T(char **p, const int64_t *s, int64_t n, const void *vctx)  \
    {                                                                                    \
        check_ctx *c = (check_ctx *)vctx;                                                \
        if (c->found) return;                                                            \
        const char *x = p[0];                                                            \
        for (int64_t i = 0; i < n; i++, x += s[0]) {                                     \
            int64_t v = *(const T *)x;                                                   \
            if (v < 0 || v >= c->limit) {                                                \
                c->found = 1;                                                            \
                c->bad = v;                                                              \
                c->bad_pos = c->pos + i;                                                 \
                return;                                                                  \
            }                                                                            \
        }                                                                                \
        c->pos += n;                                                                     \
    }
CHECK_LOOP(int32_t)
CHECK_LOOP(int64_t)

static em_status check_index_dtype(const char *op, const em_tdesc *idx)
{
    if (idx->dtype != EM_I32 && idx->dtype != EM_I64)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: %s: index dtype %s (need i32 or i64)", op,
                            em__cpu_dtype_name(idx->dtype));
    return EM_OK;
}

/* Checks every element of idx (over shape) is in [0, limit). The walk is
 * serial and in row-major order of idx, so bad_pos is a flat position
 * when idx is dense. */
static em_status validate(const char *op, const em_tdesc *idx, int ndim, const int64_t *shape,
                          const int64_t *strides, int64_t limit, int dim)
{
    check_ctx c = {limit, 0, 0, 0, 0};
    cpu_operand o = {cpu_ptr(idx), strides, (int64_t)cpu_dtype_size(idx->dtype)};
    /* keep row-major order: a dense index is walked in order anyway */
    em__cpu_ew_run_ro(1, &o, ndim, shape,
                      idx->dtype == EM_I32 ? check_loop_int32_t : check_loop_int64_t, &c, 0);
    if (c.found)
        return em__cpu_fail(EM_ERR_INDEX,
                            "cpu: %s: index %" PRId64 " is out of range for dim %d of size %" PRId64
                            " (valid range [0, %" PRId64 ")), at index element %" PRId64,
                            op, c.bad, dim, limit, limit, c.bad_pos);
    return EM_OK;
}

/* ---------------- gather loop (also index_select) ----------------------- */

typedef struct gather_ctx {
    int64_t tds; /* t's stride along dim, bytes */
} gather_ctx;

/* p = {out, index, t with stride 0 along dim}. */
#define GATHER_LOOP(bits, IT)                                                            \
    static void gather_##bits##_##IT(char **p, const int64_t *s, int64_t n, const void *vctx) \
    {                                                                                    \
        typedef uint##bits##_t T;                                                        \
        const int64_t es = (int64_t)sizeof(T), tds = ((const gather_ctx *)vctx)->tds;    \
        if (s[1] == 0) {                                                                 \
            const char *src = p[2] + (int64_t)(*(const IT *)p[1]) * tds;                 \
            if (s[0] == es && s[2] == es) {                                              \
                memcpy(p[0], src, (size_t)(n * es));                                     \
                return;                                                                  \
            }                                                                            \
            char *o = p[0];                                                              \
            for (int64_t i = 0; i < n; i++, o += s[0], src += s[2]) *(T *)o = *(const T *)src; \
            return;                                                                      \
        }                                                                                \
        char *o = p[0];                                                                  \
        const char *ix = p[1], *t = p[2];                                                \
        for (int64_t i = 0; i < n; i++, o += s[0], ix += s[1], t += s[2])                \
            *(T *)o = *(const T *)(t + (int64_t)(*(const IT *)ix) * tds);                \
    }
GATHER_LOOP(8, int32_t)
GATHER_LOOP(16, int32_t)
GATHER_LOOP(32, int32_t)
GATHER_LOOP(64, int32_t)
GATHER_LOOP(8, int64_t)
GATHER_LOOP(16, int64_t)
GATHER_LOOP(32, int64_t)
GATHER_LOOP(64, int64_t)

static cpu_loop_fn gather_loop_for(size_t es, int idt)
{
    if (idt == EM_I32) {
        switch (es) {
        case 1: return gather_8_int32_t;
        case 2: return gather_16_int32_t;
        case 4: return gather_32_int32_t;
        default: return gather_64_int32_t;
        }
    }
    switch (es) {
    case 1: return gather_8_int64_t;
    case 2: return gather_16_int64_t;
    case 4: return gather_32_int64_t;
    default: return gather_64_int64_t;
    }
}

static em_status check_dim(const char *op, int dim, int ndim)
{
    if (dim < 0 || dim >= (ndim > 0 ? ndim : 1))
        return em__cpu_fail(EM_ERR_INVALID_ARG, "cpu: %s: dim %d for a %d-d tensor", op, dim,
                            ndim);
    return EM_OK;
}

em_status em__cpu_k_gather(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *t = &c->in[0], *idx = &c->in[1], *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_index_dtype("gather", idx))) return st;
    if (o->dtype != t->dtype)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: gather %s -> %s", em__cpu_dtype_name(t->dtype),
                            em__cpu_dtype_name(o->dtype));
    if ((st = em__cpu_check_shape("gather index", idx, o->ndim, o->shape))) return st;
    if (t->ndim != o->ndim)
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: gather: input has %d dims, index %d", t->ndim,
                            o->ndim);
    if ((st = check_dim("gather", dim, t->ndim))) return st;
    int64_t limit = t->ndim ? t->shape[dim] : 1;
    if ((st = validate("gather", idx, o->ndim, o->shape, idx->strides, limit, dim))) return st;
    int64_t es = (int64_t)cpu_dtype_size(t->dtype);
    int64_t ts[EM_MAX_DIMS];
    memcpy(ts, t->strides, sizeof ts);
    if (t->ndim) ts[dim] = 0;
    gather_ctx g = {t->ndim ? t->strides[dim] * es : 0};
    cpu_operand ops[3] = {{cpu_ptr(o), o->strides, es},
                          {cpu_ptr(idx), idx->strides, (int64_t)cpu_dtype_size(idx->dtype)},
                          {cpu_ptr(t), ts, es}};
    em__cpu_ew_run(3, ops, o->ndim, o->shape, gather_loop_for((size_t)es, idx->dtype), &g,
                   CPU_GRAIN_CHEAP);
    return EM_OK;
}

em_status em__cpu_k_index_select(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *t = &c->in[0], *idx = &c->in[1], *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_index_dtype("index_select", idx))) return st;
    if (o->dtype != t->dtype)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: index_select %s -> %s",
                            em__cpu_dtype_name(t->dtype), em__cpu_dtype_name(o->dtype));
    if (idx->ndim > 1)
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: index_select: index has %d dims (need 1)",
                            idx->ndim);
    if ((st = check_dim("index_select", dim, t->ndim))) return st;
    int64_t len = idx->ndim ? idx->shape[0] : 1;
    int64_t istride = idx->ndim ? idx->strides[0] : 0;
    if (t->ndim != o->ndim || (o->ndim && o->shape[dim] != len))
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: index_select: output shape does not match");
    for (int d = 0; d < t->ndim; d++)
        if (d != dim && t->shape[d] != o->shape[d])
            return em__cpu_fail(EM_ERR_SHAPE,
                                "cpu: index_select: output dim %d is %lld, input %lld",
                                d, (long long)o->shape[d], (long long)t->shape[d]);
    int64_t limit = t->ndim ? t->shape[dim] : 1;
    int64_t one = len, ist = istride;
    if ((st = validate("index_select", idx, 1, &one, &ist, limit, dim))) return st;
    int64_t es = (int64_t)cpu_dtype_size(t->dtype);
    int64_t ts[EM_MAX_DIMS], is[EM_MAX_DIMS] = {0};
    memcpy(ts, t->strides, sizeof ts);
    if (t->ndim) {
        ts[dim] = 0;
        is[dim] = istride;
    }
    gather_ctx g = {t->ndim ? t->strides[dim] * es : 0};
    cpu_operand ops[3] = {{cpu_ptr(o), o->strides, es},
                          {cpu_ptr(idx), is, (int64_t)cpu_dtype_size(idx->dtype)},
                          {cpu_ptr(t), ts, es}};
    em__cpu_ew_run(3, ops, o->ndim, o->shape, gather_loop_for((size_t)es, idx->dtype), &g,
                   CPU_GRAIN_CHEAP);
    return EM_OK;
}

/* ---------------- scatter_add ------------------------------------------- */

typedef struct scatter_ctx {
    int64_t ods; /* out's stride along dim, bytes */
} scatter_ctx;

/* p = {index, src, out with stride 0 along dim}. */
#define SCATTER_LOOP(dt, IT)                                                             \
    static void scatter_##dt##_##IT(char **p, const int64_t *s, int64_t n, const void *vctx) \
    {                                                                                    \
        typedef DT_##dt##_ST st_t;                                                       \
        typedef DT_##dt##_UT ut_t;                                                       \
        const int64_t ods = ((const scatter_ctx *)vctx)->ods;                            \
        const char *ix = p[0], *src = p[1];                                              \
        char *o = p[2];                                                                  \
        for (int64_t i = 0; i < n; i++, ix += s[0], src += s[1], o += s[2]) {            \
            st_t *dst = (st_t *)(o + (int64_t)(*(const IT *)ix) * ods);                  \
            DT_##dt##_CT a = DT_##dt##_LD(*dst), b = DT_##dt##_LD(*(const st_t *)src);   \
            *dst = DT_##dt##_SV((DT_##dt##_CT)((ut_t)a + (ut_t)b));                      \
        }                                                                                \
    }
#define SCATTER_BOTH(dt) SCATTER_LOOP(dt, int32_t) SCATTER_LOOP(dt, int64_t)
CPU_FOR_ALL_DT(SCATTER_BOTH)

#define SCATTER_ROW(dt) {scatter_##dt##_int32_t, scatter_##dt##_int64_t},
static const cpu_loop_fn scatter_loops[EM_DTYPE_COUNT][2] = {CPU_FOR_ALL_DT(SCATTER_ROW)};

em_status em__cpu_k_scatter_add(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *src = &c->in[0], *idx = &c->in[1], *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_index_dtype("scatter_add", idx))) return st;
    if (o->dtype != src->dtype || !cpu_dtype_valid(src->dtype))
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: scatter_add %s into %s",
                            em__cpu_dtype_name(src->dtype), em__cpu_dtype_name(o->dtype));
    if (idx->ndim != src->ndim || o->ndim != src->ndim)
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: scatter_add: dims of src %d, index %d, out %d",
                            src->ndim, idx->ndim, o->ndim);
    if ((st = check_dim("scatter_add", dim, o->ndim))) return st;
    for (int d = 0; d < idx->ndim; d++)
        if (idx->shape[d] > src->shape[d] || (d != dim && idx->shape[d] > o->shape[d]))
            return em__cpu_fail(EM_ERR_SHAPE, "cpu: scatter_add: index dim %d is %lld, too big",
                                d, (long long)idx->shape[d]);
    int64_t limit = o->ndim ? o->shape[dim] : 1;
    if ((st = validate("scatter_add", idx, idx->ndim, idx->shape, idx->strides, limit, dim)))
        return st;
    int64_t es = (int64_t)cpu_dtype_size(o->dtype);
    int64_t os[EM_MAX_DIMS];
    memcpy(os, o->strides, sizeof os);
    if (o->ndim) os[dim] = 0;
    scatter_ctx sc = {o->ndim ? o->strides[dim] * es : 0};
    cpu_operand ops[3] = {{cpu_ptr(idx), idx->strides, (int64_t)cpu_dtype_size(idx->dtype)},
                          {cpu_ptr(src), src->strides, es},
                          {cpu_ptr(o), os, es}};
    em__cpu_ew_run_ro(3, ops, idx->ndim, idx->shape,
                      scatter_loops[o->dtype][idx->dtype == EM_I64], &sc, 0);
    return EM_OK;
}

/* ---------------- one_hot ------------------------------------------------ */

typedef struct onehot_ctx {
    int64_t classes, cs; /* classes, out's stride along the last dim (bytes) */
} onehot_ctx;

/* p = {out row start, index}. */
#define ONEHOT_LOOP(IT)                                                                  \
    static void onehot_##IT(char **p, const int64_t *s, int64_t n, const void *vctx)     \
    {                                                                                    \
        const onehot_ctx *h = vctx;                                                      \
        char *o = p[0];                                                                  \
        const char *ix = p[1];                                                           \
        for (int64_t i = 0; i < n; i++, o += s[0], ix += s[1]) {                         \
            if (h->cs == 8) {                                                            \
                memset(o, 0, (size_t)h->classes * 8);                                    \
            } else {                                                                     \
                for (int64_t k = 0; k < h->classes; k++) *(int64_t *)(o + k * h->cs) = 0; \
            }                                                                            \
            *(int64_t *)(o + (int64_t)(*(const IT *)ix) * h->cs) = 1;                    \
        }                                                                                \
    }
ONEHOT_LOOP(int32_t)
ONEHOT_LOOP(int64_t)

em_status em__cpu_k_one_hot(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 1, 1, 1);
    if (st) return st;
    const em_tdesc *idx = &c->in[0], *o = &c->out[0];
    if ((st = check_index_dtype("one_hot", idx))) return st;
    if (o->dtype != EM_I64)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: one_hot output is %s (need i64)",
                            em__cpu_dtype_name(o->dtype));
    if (o->ndim != idx->ndim + 1)
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: one_hot: output has %d dims, index %d", o->ndim,
                            idx->ndim);
    if ((st = em__cpu_check_shape("one_hot index", idx, idx->ndim, o->shape))) return st;
    int64_t classes = o->shape[o->ndim - 1];
    if (c->params->ints[0] > 0 && c->params->ints[0] != classes)
        return em__cpu_fail(EM_ERR_SHAPE,
                            "cpu: one_hot: %lld classes but output's last dim is %lld",
                            (long long)c->params->ints[0], (long long)classes);
    if ((st = validate("one_hot", idx, idx->ndim, idx->shape, idx->strides, classes, idx->ndim)))
        return st;
    onehot_ctx h = {classes, o->strides[o->ndim - 1] * 8};
    cpu_operand ops[2] = {{cpu_ptr(o), o->strides, 8},
                          {cpu_ptr(idx), idx->strides, (int64_t)cpu_dtype_size(idx->dtype)}};
    int64_t grain = CPU_GRAIN_CHEAP / (classes > 0 ? classes : 1);
    em__cpu_ew_run_ro(2, ops, idx->ndim, idx->shape,
                      idx->dtype == EM_I32 ? onehot_int32_t : onehot_int64_t,
                      &h, grain > 1 ? grain : 2);
    return EM_OK;
}

/* ---------------- cat ---------------------------------------------------- */

em_status em__cpu_k_cat(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 1, 1 << 30, 1);
    if (st) return st;
    const em_tdesc *o = &c->out[0];
    int dim = c->params->dim;
    if ((st = check_dim("cat", dim, o->ndim))) return st;
    int64_t pos = 0;
    for (int i = 0; i < c->n_in; i++) {
        const em_tdesc *x = &c->in[i];
        if (x->dtype != o->dtype)
            return em__cpu_fail(EM_ERR_DTYPE, "cpu: cat input %d is %s, output %s", i,
                                em__cpu_dtype_name(x->dtype), em__cpu_dtype_name(o->dtype));
        if (x->ndim != o->ndim)
            return em__cpu_fail(EM_ERR_SHAPE, "cpu: cat input %d has %d dims, output %d", i,
                                x->ndim, o->ndim);
        for (int d = 0; d < o->ndim; d++)
            if (d != dim && x->shape[d] != o->shape[d])
                return em__cpu_fail(EM_ERR_SHAPE, "cpu: cat input %d dim %d is %lld, output %lld",
                                    i, d, (long long)x->shape[d], (long long)o->shape[d]);
        pos += o->ndim ? x->shape[dim] : 1;
    }
    if (o->ndim && pos != o->shape[dim])
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: cat inputs give %lld along dim %d, output %lld",
                            (long long)pos, dim, (long long)o->shape[dim]);
    pos = 0;
    for (int i = 0; i < c->n_in; i++) {
        const em_tdesc *x = &c->in[i];
        em_tdesc view = *o;
        if (o->ndim) {
            view.shape[dim] = x->shape[dim];
            view.offset = o->offset + pos * o->strides[dim];
            pos += x->shape[dim];
        }
        if (cpu_numel(&view) > 0) em__cpu_copy_desc(&view, x);
    }
    return EM_OK;
}
