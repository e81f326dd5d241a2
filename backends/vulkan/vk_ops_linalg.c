/*
 * vk_ops_linalg.c — the host side of shaders/matmul.comp: MATMUL
 * (a [B,M,K] x b [B,K,N]) and LINEAR (x [M,K] w^T + bias, the weight read
 * transposed through its strides, the bias already broadcast to [M,N]),
 * f32/f16/bf16 with f32 accumulation, any strides.
 *
 * Not for: f64 (declined in vk_supports; runs on the CPU).
 */
#include "vk_internal.h"

#include <string.h>

static em_status launch(vk_device *d, uint32_t *a, vk_buffer *const bufs[VK_N_DATA])
{
    const uint32_t spec[VK_N_SPEC] = {0, 0, a[MM_DT], 0, a[MM_HAS_BIAS], 0};
    uint64_t gz = a[MM_BATCH];
    if (gz > d->props.limits.maxComputeWorkGroupCount[2]) gz = d->props.limits.maxComputeWorkGroupCount[2];
    if (gz == 0) gz = 1;
    return vk_finish(vk_dispatch(d, VK_SH_MATMUL, spec, a, MM_WORDS, bufs,
                                 (a[MM_N] + MM_TILE - 1) / MM_TILE, (a[MM_M] + MM_TILE - 1) / MM_TILE,
                                 (uint32_t)gz));
}

em_status vk_k_matmul(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = vk_enter(d, c, 2, 2);
    if (st) return st;
    const em_tdesc *A = &c->in[0], *B = &c->in[1], *C = &c->out[0];
    if (A->ndim != 3 || B->ndim != 3 || C->ndim != 3)
        return vk_fail(EM_ERR_INTERNAL, "vulkan: matmul wants 3-D operands");
    if (!vk_is_float(C->dtype) || A->dtype != C->dtype || B->dtype != C->dtype)
        return vk_fail(EM_ERR_DTYPE, "vulkan: matmul on dtype %d", C->dtype);
    uint32_t a[MM_WORDS] = {
        (uint32_t)C->shape[0], (uint32_t)C->shape[1], (uint32_t)C->shape[2], (uint32_t)A->shape[2],
        (uint32_t)A->offset, (uint32_t)A->strides[0], (uint32_t)A->strides[1], (uint32_t)A->strides[2],
        (uint32_t)B->offset, (uint32_t)B->strides[0], (uint32_t)B->strides[1], (uint32_t)B->strides[2],
        (uint32_t)C->offset, (uint32_t)C->strides[0], (uint32_t)C->strides[1], (uint32_t)C->strides[2],
        (uint32_t)C->dtype, 0, 0, 0, 0};
    vk_buffer *bufs[VK_N_DATA] = {C->buffer, A->buffer, B->buffer, NULL};
    return launch(d, a, bufs);
}

em_status vk_k_linear(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = vk_enter(d, c, 2, 3);
    if (st) return st;
    const em_tdesc *X = &c->in[0], *W = &c->in[1], *C = &c->out[0];
    const em_tdesc *bias = c->n_in > 2 ? &c->in[2] : NULL;
    if (X->ndim != 2 || W->ndim != 2 || C->ndim != 2 || (bias && bias->ndim != 2))
        return vk_fail(EM_ERR_INTERNAL, "vulkan: linear wants 2-D operands");
    if (!vk_is_float(C->dtype) || X->dtype != C->dtype || W->dtype != C->dtype ||
        (bias && bias->dtype != C->dtype))
        return vk_fail(EM_ERR_DTYPE, "vulkan: linear on dtype %d", C->dtype);
    /* out [M,N] = x [M,K] . w^T, w [N,K]: b[k][n] = w[n][k] */
    uint32_t a[MM_WORDS] = {
        1, (uint32_t)C->shape[0], (uint32_t)C->shape[1], (uint32_t)X->shape[1],
        (uint32_t)X->offset, 0, (uint32_t)X->strides[0], (uint32_t)X->strides[1],
        (uint32_t)W->offset, 0, (uint32_t)W->strides[1], (uint32_t)W->strides[0],
        (uint32_t)C->offset, 0, (uint32_t)C->strides[0], (uint32_t)C->strides[1],
        (uint32_t)C->dtype, bias != NULL, bias ? (uint32_t)bias->offset : 0,
        bias ? (uint32_t)bias->strides[0] : 0, bias ? (uint32_t)bias->strides[1] : 0};
    vk_buffer *bufs[VK_N_DATA] = {C->buffer, X->buffer, W->buffer, bias ? bias->buffer : NULL};
    return launch(d, a, bufs);
}
