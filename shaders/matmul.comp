#version 450
// matmul.comp — C[b] = A[b] x B[b] for f32, A [B,M,K], B [B,K,N], C [B,M,N], any strides
// (batch strides may be 0). 16x16 output tiles, 16-wide K slices staged in shared memory.
// Workgroups: (ceil(N/16), ceil(M/16), min(B, limit)); batches beyond the z count loop.
//
// Arguments (words, see vk_ops.c: MM_*):
//   0 batch, 1 M, 2 N, 3 K,
//   4 a offset, 5 a batch stride, 6 a row stride (m), 7 a col stride (k),
//   8 b offset, 9 b batch stride, 10 b row stride (k), 11 b col stride (n),
//   12 c offset, 13 c batch stride, 14 c row stride (m), 15 c col stride (n)
// Buffers: b0 = C, b1 = A, b2 = B.
#include "common.glsl"

#define TILE 16
layout(local_size_x = TILE, local_size_y = TILE) in;
shared float ta[TILE][TILE];
shared float tb[TILE][TILE];

void main()
{
    uint batch = arg(0u), M = arg(1u), N = arg(2u), K = arg(3u);
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint col = gl_WorkGroupID.x * TILE + tx;  // n
    uint row = gl_WorkGroupID.y * TILE + ty;  // m
    for (uint bz = gl_WorkGroupID.z; bz < batch; bz += gl_NumWorkGroups.z) {
        uint a0 = arg(4u) + bz * arg(5u), b0off = arg(8u) + bz * arg(9u);
        float acc = 0.0;
        for (uint k0 = 0u; k0 < K; k0 += TILE) {
            uint ka = k0 + tx, kb = k0 + ty;
            ta[ty][tx] = (row < M && ka < K) ? uintBitsToFloat(b1[a0 + row * arg(6u) + ka * arg(7u)]) : 0.0;
            tb[ty][tx] = (kb < K && col < N) ? uintBitsToFloat(b2[b0off + kb * arg(10u) + col * arg(11u)]) : 0.0;
            barrier();
            for (uint k = 0u; k < TILE; k++) acc += ta[ty][k] * tb[k][tx];
            barrier();
        }
        if (row < M && col < N)
            b0[arg(12u) + bz * arg(13u) + row * arg(14u) + col * arg(15u)] = floatBitsToUint(acc);
    }
}
