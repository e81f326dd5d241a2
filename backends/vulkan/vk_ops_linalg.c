/*
 * vk_ops_linalg.c — the host side of the matmul shaders: MATMUL
 * (a [B,M,K] x b [B,K,N]), LINEAR (x [M,K] w^T + bias, the weight read
 * transposed through its strides, the bias already broadcast to [M,N]) and
 * LINEAR_ACT (LINEAR then relu when params->flag == 1; other flags are
 * EM_ERR_UNSUPPORTED), f32/f16/bf16 with f32 accumulation, any strides.
 *
 * Two shaders:
 *   - shaders/matmul_f32.comp (f32): register-blocked 128x128 tiles
 *     (VK_SH_MATMUL_F32) or 64x64 tiles (VK_SH_MATMUL_F32_SMALL, when the
 *     128 grid would have fewer than VK_MMF_MIN_TILES workgroups), vec4 loads
 *     and stores where the operands' unit-stride dim, offsets and strides
 *     allow (specialization constants, see the shader's header);
 *   - shaders/matmul.comp (f16, bf16, and f32 when forced): 16x16 tiles, one
 *     output per invocation.
 * EMBER_VULKAN_MATMUL (read at every call, so one process can time each):
 * "generic" forces matmul.comp for f32 too; "tile64" / "tile128" force that
 * tile of matmul_f32.comp; unset or anything else: automatic.
 *
 * Not for: f64 (declined in vk_supports; runs on the CPU).
 */
#include "vk_internal.h"

#include <string.h>

#define VK_MMF_MIN_TILES 96u /* fewer 128x128 workgroups than this: 64x64 tiles */

static uint32_t zlimit(const vk_device *d, uint32_t batch)
{
    uint32_t lim = d->props.limits.maxComputeWorkGroupCount[2];
    return batch == 0 ? 1 : batch > lim ? lim : batch;
}

/* EMBER_VULKAN_MATMUL: 0 auto, 1 generic, 64 / 128 that tile of matmul_f32. */
static int matmul_choice(void)
{
    const char *e = vk_getenv("EMBER_VULKAN_MATMUL");
    if (!e) return 0;
    if (!strcmp(e, "generic")) return 1;
    if (!strcmp(e, "tile64")) return 64;
    if (!strcmp(e, "tile128")) return 128;
    return 0;
}

/* Operand mode for matmul_f32.comp: bit 0 unit stride along K, bit 1 vec4.
 * s_mn/s_k: strides along M (or N) and K; off, sb: offset, batch stride. */
static uint32_t operand_mode(uint32_t off, uint32_t sb, uint32_t s_mn, uint32_t s_k)
{
    uint32_t tk = s_k == 1 && s_mn != 1 ? 1u : 0u;
    uint32_t unit = tk ? s_k : s_mn, ld = tk ? s_mn : s_k;
    int vec = unit == 1 && off % 4 == 0 && sb % 4 == 0 && ld % 4 == 0;
    return tk | (vec ? 2u : 0u);
}

/* a: the MM_* words; act: 0 or 1 (relu). */
static em_status launch(vk_device *d, uint32_t *a, vk_buffer *const bufs[VK_N_DATA], uint32_t act)
{
    uint32_t gz = zlimit(d, a[MM_BATCH]);
    int choice = matmul_choice();
    if (a[MM_DT] != EM_F32 || choice == 1) {
        const uint32_t spec[VK_N_SPEC] = {act, 0, a[MM_DT], 0, a[MM_HAS_BIAS], 0};
        return vk_finish(vk_dispatch(d, VK_SH_MATMUL, spec, a, MM_WORDS, bufs,
                                     (a[MM_N] + MM_TILE - 1) / MM_TILE,
                                     (a[MM_M] + MM_TILE - 1) / MM_TILE, gz));
    }
    uint32_t M = a[MM_M], N = a[MM_N];
    uint64_t big = (uint64_t)((M + 127) / 128) * ((N + 127) / 128) * a[MM_BATCH];
    uint32_t tile = choice ? (uint32_t)choice : big >= VK_MMF_MIN_TILES ? 128u : 64u;
    uint32_t amode = operand_mode(a[MM_A], a[MM_A + 1], a[MM_A + 2], a[MM_A + 3]);
    uint32_t bmode = operand_mode(a[MM_B], a[MM_B + 1], a[MM_B + 3], a[MM_B + 2]);
    uint32_t cvec = a[MM_C + 3] == 1 && a[MM_C] % 4 == 0 && a[MM_C + 1] % 4 == 0 &&
                    a[MM_C + 2] % 4 == 0;
    const uint32_t spec[VK_N_SPEC] = {act, amode, bmode, cvec, a[MM_HAS_BIAS], 0};
    return vk_finish(vk_dispatch(d, tile == 128 ? VK_SH_MATMUL_F32 : VK_SH_MATMUL_F32_SMALL, spec,
                                 a, MM_WORDS, bufs, (N + tile - 1) / tile, (M + tile - 1) / tile,
                                 gz));
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
    return launch(d, a, bufs, 0);
}

/* LINEAR and LINEAR_ACT. */
em_status vk_k_linear(void *dev, const em_op_call *c)
{
    vk_device *d = dev;
    em_status st = vk_enter(d, c, 2, 3);
    if (st) return st;
    uint32_t act = 0;
    if (c->op == EM_OP_LINEAR_ACT) {
        if (c->params->flag != 1)
            return vk_fail(EM_ERR_UNSUPPORTED, "vulkan: linear_act with activation %d (only 1, "
                           "relu)", (int)c->params->flag);
        act = 1;
    }
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
    return launch(d, a, bufs, act);
}
