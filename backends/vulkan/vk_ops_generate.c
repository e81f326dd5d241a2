/*
 * vk_ops_generate.c — the host side of shaders/generate.comp: ARANGE,
 * LINSPACE and the Philox random ops RAND_UNIFORM, RAND_NORMAL, RANDINT,
 * every output dtype, strided outputs (values in row-major element order).
 * The stream is the ABI's (api/ember_plugin.h), so values equal the CPU
 * backend's for the same (seed, offset); see the shader for the one caveat
 * (f64 normals agree to a few ulps).
 *
 * Needs the wide build (shaderInt64 + shaderFloat64); vk_supports declines
 * these ops elsewhere.
 */
#include "vk_internal.h"

#include <string.h>

em_status vk_k_generate(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = vk_enter(d, c, 0, 0);
    if (st) return st;
    if (!d->wide)
        return vk_fail(EM_ERR_UNSUPPORTED, "vulkan: op %d needs shaderInt64 and shaderFloat64, "
                       "which %s lacks", c->op, d->props.deviceName);
    const em_tdesc *o = &c->out[0];
    const em_op_params *p = c->params;
    if (!vk_dtype_size(o->dtype)) return vk_fail(EM_ERR_DTYPE, "vulkan: invalid dtype %d", o->dtype);
    uint32_t a[GN_WORDS];
    memset(a, 0, sizeof a);
    uint64_t n = vk_numel(o);
    a[GN_OP] = (uint32_t)c->op;
    a[GN_NDIM] = (uint32_t)o->ndim;
    a[GN_NUMEL] = (uint32_t)n;
    a[GN_DT] = (uint32_t)o->dtype;
    vk_put_f64(a, GN_A, p->scalar[0]);
    vk_put_f64(a, GN_B, p->scalar[1]);
    vk_put_f64(a, GN_STEP, n > 1 ? (p->scalar[1] - p->scalar[0]) / (double)(n - 1) : 0.0);
    vk_put_u64(a, GN_SEED, p->seed);
    vk_put_u64(a, GN_OFFSET, p->offset);
    if (c->op == EM_OP_RANDINT) {
        if (p->ints[1] <= p->ints[0])
            return vk_fail(EM_ERR_INVALID_ARG, "vulkan: randint: empty range [%lld, %lld)",
                           (long long)p->ints[0], (long long)p->ints[1]);
        vk_put_u64(a, GN_LOW, (uint64_t)p->ints[0]);
        vk_put_u64(a, GN_SPAN, (uint64_t)p->ints[1] - (uint64_t)p->ints[0]);
    }
    for (int i = 0; i < o->ndim; i++) a[GN_SHAPE + i] = (uint32_t)o->shape[i];
    vk_put_td(a, GN_TD_OUT, o, o->ndim);
    vk_buffer *bufs[VK_N_DATA] = {o->buffer, NULL, NULL, NULL};
    const uint32_t spec[VK_N_SPEC] = {a[GN_OP], a[GN_DT], 0, 0, 0, 0};
    return vk_finish(vk_dispatch(d, VK_SH_GENERATE_WIDE, spec, a, GN_WORDS, bufs,
                                 vk_groups_1d(d, n, VK_WG), 1, 1));
}
