#version 450
// matmul.comp — C[b] = A[b] x B[b] (+ bias) for f32, f16 and bf16 (f32 accumulation),
// A [B,M,K], B [B,K,N], C [B,M,N], any strides (batch strides may be 0). Serves MATMUL
// LINEAR and LINEAR_ACT (B = w^T through strides, the bias already broadcast to [M,N]).
// 16x16 output tiles, 16-wide K slices staged in shared memory.
// Workgroups: (ceil(N/16), ceil(M/16), min(B, limit)); batches beyond the z count loop.
//
// Specialization constants: SC0 activation (LINEAR_ACT: 0 none, 1 relu, v < 0 ? 0 : v),
// SC2 dtype, SC4 has bias (also in the argument words).
// Arguments (words, see backends/vulkan/vk_internal.h: MM_*):
//   0 batch, 1 M, 2 N, 3 K,
//   4 a offset, 5 a batch stride, 6 a row stride (m), 7 a col stride (k),
//   8 b offset, 9 b batch stride, 10 b row stride (k), 11 b col stride (n),
//   12 c offset, 13 c batch stride, 14 c row stride (m), 15 c col stride (n),
//   16 dtype, 17 has bias, 18 bias offset, 19 bias row stride (m), 20 bias col stride (n)
// Buffers: b0 = C, b1 = A, b2 = B, b3 = bias.
#include "common.glsl"

#define TILE 16
layout(local_size_x = TILE, local_size_y = TILE) in;
shared float ta[TILE][TILE];
shared float tb[TILE][TILE];

void main()
{
    const uint dt = SC2, es = dt_size(dt);
    uint batch = arg(0u), M = arg(1u), N = arg(2u), K = arg(3u);
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint col = gl_WorkGroupID.x * TILE + tx;  // n
    uint row = gl_WorkGroupID.y * TILE + ty;  // m
    for (uint bz = gl_WorkGroupID.z; bz < batch; bz += gl_NumWorkGroups.z) {
        uint a0 = arg(4u) + bz * arg(5u), b0off = arg(8u) + bz * arg(9u);
        float acc = 0.0;
        for (uint k0 = 0u; k0 < K; k0 += TILE) {
            uint ka = k0 + tx, kb = k0 + ty;
            ta[ty][tx] = (row < M && ka < K) ? raw_to_f(dt, raw_ld_b1(es, a0 + row * arg(6u) + ka * arg(7u))) : 0.0;
            tb[ty][tx] = (kb < K && col < N) ? raw_to_f(dt, raw_ld_b2(es, b0off + kb * arg(10u) + col * arg(11u))) : 0.0;
            barrier();
            for (uint k = 0u; k < TILE; k++) acc += ta[ty][k] * tb[k][tx];
            barrier();
        }
        if (row < M && col < N) {
            if (SC4 != 0u)
                acc += raw_to_f(dt, raw_ld_b3(es, arg(18u) + row * arg(19u) + col * arg(20u)));
            if (SC0 == 1u) acc = em_relu(acc); // NaN and -0.0 unchanged
            raw_st_b0(es, arg(12u) + bz * arg(13u) + row * arg(14u) + col * arg(15u), f_to_raw(dt, acc));
        }
    }
}
