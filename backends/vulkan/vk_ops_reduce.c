/*
 * vk_ops_reduce.c — the host side of shaders/reduce.comp and softmax.comp:
 * SUM, MEAN, MAX, MIN, ARGMAX, ARGMIN, VAR, STD, LOGSUMEXP over any reduce
 * mask (keepdim output), SOFTMAX and LOG_SOFTMAX along one dim; any strides.
 *
 * A reduction is one dispatch (one workgroup per output) while the reduced
 * set per output fits one slice (RD_SLICE_MAX elements, which keeps lavapipe
 * under its loop-iteration cap); beyond that, float-class inputs take two
 * dispatches: partials (value, index) per slice into scratch, then their
 * combination. VAR/STD and LOGSUMEXP run a first reduction (the mean, resp.
 * the max) into a center buffer, then the sum of squared deviations, resp.
 * of exp(x - max), finished in the shader.
 *
 * Not for: elementwise ops (vk_ops_elementwise.c).
 */
#include "vk_internal.h"

#include <string.h>

#define RD_SLICE_MAX (256u * 1024u)
/* lavapipe: rows longer than this would pass its per-invocation loop cap */
#define SM_LEN_MAX_SOFTWARE (256u * 16384u)

static uint64_t reduced_count(const em_op_call *c)
{
    uint64_t n = 1;
    for (int i = 0; i < c->in[0].ndim; i++)
        if (c->params->reduce_mask & (1u << i)) n *= (uint64_t)c->in[0].shape[i];
    return n;
}

int vk_reduce_ok(const vk_device *d, const em_op_call *c)
{
    if (c->n_in < 1 || !c->params) return 0;
    int dt = c->in[0].dtype;
    if (c->op == EM_OP_SOFTMAX || c->op == EM_OP_LOG_SOFTMAX) {
        if (!vk_is_float(dt)) return 0; /* no double exp/log in GLSL */
        const em_tdesc *x = &c->in[0];
        int dim = c->params->dim;
        uint64_t len = x->ndim && dim >= 0 && dim < x->ndim ? (uint64_t)x->shape[dim] : 1;
        if (d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU && len > SM_LEN_MAX_SOFTWARE)
            return 0;
        return 1;
    }
    if (vk_is_float(dt)) return 1;
    if (!d->wide) return 0;
    if (dt == EM_F64 && c->op == EM_OP_LOGSUMEXP) return 0;
    return reduced_count(c) <= RD_SLICE_MAX; /* partials exist for float classes only */
}

/* Specialization: kind, finish, dtypes, mode, has_center (the same words as args). */
static const uint32_t *rd_spec(const uint32_t *a)
{
    static _Thread_local uint32_t spec[VK_N_SPEC];
    spec[0] = a[RD_KIND];
    spec[1] = a[RD_FIN];
    spec[2] = a[RD_DT_IN];
    spec[3] = a[RD_DT_OUT];
    spec[4] = a[RD_MODE];
    spec[5] = a[RD_HAS_CENTER];
    return spec;
}

/* One reduction pass: a filled argument block (geometry, kind, finish, dtypes);
 * out/in/center buffers. Splits into partial + combine when the reduced set is
 * bigger than a slice. */
static em_status run_pass(vk_device *d, int sh, uint32_t *a, vk_buffer *out, vk_buffer *in,
                          vk_buffer *center)
{
    uint32_t n_out = a[RD_NOUT], n_red = a[RD_NRED], nk = a[RD_NK];
    vk_buffer *bufs[VK_N_DATA] = {out, in, center, NULL};
    a[RD_MODE] = RD_MODE_FINAL;
    a[RD_PARTS] = 1;
    a[RD_SLICE] = n_red;
    a[RD_NTOTAL] = n_red;
    if (n_red <= RD_SLICE_MAX)
        return vk_dispatch(d, sh, rd_spec(a), a, RD_WORDS, bufs, vk_groups_1d(d, n_out, 1), 1, 1);
    uint32_t parts = (n_red + RD_SLICE_MAX - 1) / RD_SLICE_MAX;
    vk_buffer *scratch;
    em_status st = vk_alloc(d, (size_t)n_out * parts * 8, &scratch);
    if (st) return st;
    uint32_t b[RD_WORDS];
    memcpy(b, a, sizeof b);
    a[RD_MODE] = RD_MODE_PARTIAL;
    a[RD_PARTS] = parts;
    a[RD_SLICE] = RD_SLICE_MAX;
    vk_buffer *b1[VK_N_DATA] = {scratch, in, center, NULL};
    st = vk_dispatch(d, sh, rd_spec(a), a, RD_WORDS, b1, vk_groups_1d(d, (uint64_t)n_out * parts, 1), 1, 1);
    if (st == EM_OK) {
        /* combine: kept dims walk the scratch densely ([n_out][parts] pairs), one reduced dim */
        uint64_t stride = parts;
        for (int k = (int)nk - 1; k >= 0; k--) {
            b[RD_KIN + k] = (uint32_t)stride;
            stride *= b[RD_KSHAPE + k];
        }
        b[RD_MODE] = RD_MODE_COMBINE;
        b[RD_NRED] = parts;
        b[RD_SLICE] = parts;
        b[RD_NTOTAL] = n_red;
        b[RD_NR] = 1;
        b[RD_RSHAPE] = parts;
        b[RD_RIN] = 1;
        b[RD_IN_OFF] = 0;
        vk_buffer *b2[VK_N_DATA] = {out, scratch, center, NULL};
        st = vk_dispatch(d, sh, rd_spec(b), b, RD_WORDS, b2, vk_groups_1d(d, n_out, 1), 1, 1);
    }
    vk_free_deferred(d, scratch); /* released once the batch has completed */
    return st;
}

em_status vk_k_reduce(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = vk_enter(d, c, 1, 1);
    if (st) return st;
    const em_tdesc *in = &c->in[0], *o = &c->out[0];
    int op = c->op, dt = in->dtype;
    if (o->ndim != in->ndim)
        return vk_fail(EM_ERR_SHAPE, "vulkan: reduction output has %d dims, input %d", o->ndim,
                       in->ndim);
    if (!vk_reduce_ok(d, c))
        return vk_fail(EM_ERR_UNSUPPORTED, "vulkan: reduction %d on dtype %d is not supported on %s",
                       op, dt, d->props.deviceName);
    uint32_t a[RD_WORDS];
    memset(a, 0, sizeof a);
    uint32_t nk = 0, nr = 0;
    uint64_t n_out = 1, n_red = 1;
    for (int i = 0; i < in->ndim; i++) {
        if (c->params->reduce_mask & (1u << i)) {
            a[RD_RSHAPE + nr] = (uint32_t)in->shape[i];
            a[RD_RIN + nr] = (uint32_t)in->strides[i];
            n_red *= (uint64_t)in->shape[i];
            nr++;
        } else {
            a[RD_KSHAPE + nk] = (uint32_t)in->shape[i];
            a[RD_KIN + nk] = (uint32_t)in->strides[i];
            a[RD_KOUT + nk] = (uint32_t)o->strides[i];
            n_out *= (uint64_t)in->shape[i];
            nk++;
        }
    }
    a[RD_NOUT] = (uint32_t)n_out;
    a[RD_NRED] = (uint32_t)n_red;
    a[RD_NK] = nk;
    a[RD_NR] = nr;
    a[RD_IN_OFF] = (uint32_t)in->offset;
    a[RD_OUT_OFF] = (uint32_t)o->offset;
    a[RD_DT_IN] = (uint32_t)dt;
    a[RD_DT_OUT] = (uint32_t)o->dtype;
    a[RD_FIN] = (uint32_t)op;
    a[RD_FLAG] = (uint32_t)c->params->flag;
    int sh = vk_is_float(dt) ? VK_SH_REDUCE : VK_SH_REDUCE_WIDE;
    switch (op) {
    case EM_OP_SUM: case EM_OP_MEAN: a[RD_KIND] = RD_K_SUM; break;
    case EM_OP_MAX: a[RD_KIND] = RD_K_MAX; break;
    case EM_OP_MIN: a[RD_KIND] = RD_K_MIN; break;
    case EM_OP_ARGMAX: a[RD_KIND] = RD_K_ARGMAX; break;
    case EM_OP_ARGMIN: a[RD_KIND] = RD_K_ARGMIN; break;
    case EM_OP_VAR: case EM_OP_STD: case EM_OP_LOGSUMEXP: {
        /* pass 1: the mean (var/std) or the max (logsumexp) per output, dense */
        int lse = op == EM_OP_LOGSUMEXP;
        size_t ces = dt == EM_F64 ? 8 : 4;
        vk_buffer *center;
        if ((st = vk_alloc(d, (size_t)n_out * ces, &center))) return st;
        uint32_t p1[RD_WORDS];
        memcpy(p1, a, sizeof p1);
        p1[RD_KIND] = lse ? RD_K_MAX : RD_K_SUM;
        p1[RD_FIN] = lse ? EM_OP_MAX : EM_OP_MEAN;
        p1[RD_DT_OUT] = dt == EM_F64 ? EM_F64 : EM_F32;
        p1[RD_OUT_OFF] = 0;
        uint64_t stride = 1;
        for (int k = (int)nk - 1; k >= 0; k--) {
            p1[RD_KOUT + k] = (uint32_t)stride;
            stride *= p1[RD_KSHAPE + k];
        }
        st = run_pass(d, sh, p1, center, in->buffer, NULL);
        if (st == EM_OK) {
            a[RD_KIND] = lse ? RD_K_SUMEXP : RD_K_SUMSQ;
            a[RD_HAS_CENTER] = 1;
            st = run_pass(d, sh, a, o->buffer, in->buffer, center);
        }
        vk_free_deferred(d, center);
        return vk_finish(st);
    }
    default:
        return vk_fail(EM_ERR_UNSUPPORTED, "vulkan: op %d is not a reduction", op);
    }
    return vk_finish(run_pass(d, sh, a, o->buffer, in->buffer, NULL));
}

em_status vk_k_softmax(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = vk_enter(d, c, 1, 1);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *o = &c->out[0];
    int dt = x->dtype, dim = c->params->dim;
    if (!vk_is_float(dt) || o->dtype != dt || o->ndim != x->ndim)
        return vk_fail(EM_ERR_DTYPE, "vulkan: softmax on dtype %d -> %d", dt, o->dtype);
    if (x->ndim == 0) dim = 0;
    else if (dim < 0 || dim >= x->ndim)
        return vk_fail(EM_ERR_INVALID_ARG, "vulkan: softmax dim %d for a %d-d tensor", dim,
                       x->ndim);
    uint32_t a[SM_WORDS];
    memset(a, 0, sizeof a);
    uint32_t n_outer = 0;
    uint64_t rows = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (i == dim || x->shape[i] == 1) continue;
        a[SM_OSHAPE + n_outer] = (uint32_t)x->shape[i];
        a[SM_OXS + n_outer] = (uint32_t)x->strides[i];
        a[SM_OOS + n_outer] = (uint32_t)o->strides[i];
        rows *= (uint64_t)x->shape[i];
        n_outer++;
    }
    a[SM_LOG] = c->op == EM_OP_LOG_SOFTMAX;
    a[SM_NROWS] = (uint32_t)rows;
    a[SM_LEN] = x->ndim ? (uint32_t)x->shape[dim] : 1;
    a[SM_NOUTER] = n_outer;
    a[SM_X_OFF] = (uint32_t)x->offset;
    a[SM_O_OFF] = (uint32_t)o->offset;
    a[SM_XS] = x->ndim ? (uint32_t)x->strides[dim] : 0;
    a[SM_OS] = o->ndim ? (uint32_t)o->strides[dim] : 0;
    a[SM_DT] = (uint32_t)dt;
    vk_buffer *bufs[VK_N_DATA] = {o->buffer, x->buffer, NULL, NULL};
    const uint32_t spec[VK_N_SPEC] = {a[SM_LOG], 0, a[SM_DT], 0, 0, 0};
    return vk_finish(vk_dispatch(d, VK_SH_SOFTMAX, spec, a, SM_WORDS, bufs, vk_groups_1d(d, rows, 1), 1, 1));
}
