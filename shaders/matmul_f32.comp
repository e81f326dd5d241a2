#version 450
// matmul_f32.comp — the fast f32 path of MATMUL, LINEAR and LINEAR_ACT: C[b] = act(A[b] x B[b]
// (+ bias)), A [B,M,K], B [B,K,N], C [B,M,N], f32 only (f16/bf16 and EMBER_VULKAN_MATMUL=generic
// use matmul.comp). Register-blocked: a workgroup of 256 invocations (16 x 16) computes a TM x TN
// tile of C, each invocation a TT x TT block held in registers; K advances BK at a time through
// shared memory, double-buffered (the next slice is loaded from global memory into registers
// while the current one is multiplied; one barrier per slice).
//   default build:         TM = TN = 128, BK = 8,  TT = 8 (64 accumulators per invocation)
//   -DEM_MM_SMALL build:   TM = TN = 64,  BK = 16, TT = 4 (small M or N, few tiles)
// In both, every invocation loads exactly one vec4 of A and one of B per K slice.
//
// Shared memory holds both operands with M (resp. N) as the fast dimension: sa[k][m], sb[k][n]
// (A is stored transposed), so the inner loop reads sa[k][ty*4 ..] (a broadcast within a
// warp) and sb[k][tx*4 ..] (16 consecutive vec4: conflict-free). Invocation (tx, ty) owns rows
// m0 + (ty + 16 i) * 4 + r and columns n0 + (tx + 16 j) * 4 + s.
//
// Global loads keep coalescing in both layouts of each operand:
//   "direct" (the unit-stride dim is M of A / N of B): a slice row of TM floats is read by
//     TM/4 consecutive invocations, one vec4 each, stored as a vec4;
//   "transposed" (the unit-stride dim is K: A row-major [M,K], or B = w^T of LINEAR): each
//     row of the tile has BK consecutive floats read by BK/4 invocations and stored
//     transposed (4 scalar stores; rows padded by one vec4 so they do not conflict).
// vec4 loads need the operand's offset, batch stride and leading stride to be multiples of 4
// (host: MMF_VEC); otherwise, and at the edges of M, N, K, 4 scalar loads with bounds checks
// (zero fill) and any strides. Stores: a vec4 when C's column stride is 1 and its offset,
// batch and row strides are multiples of 4 and the 4 columns are in range, else scalars.
//
// Workgroups: (ceil(N/TN), ceil(M/TM), min(B, limit)); batches beyond the z count loop.
// Specialization constants: SC0 activation (0 none, 1 relu: v < 0 ? 0 : v, NaN stays),
//   SC1 A mode, SC2 B mode (bit 0: unit stride along K; bit 1: vec4 loads allowed),
//   SC3 C vec4 stores allowed, SC4 has bias.
// Arguments: the MM_* words of matmul.comp (backends/vulkan/vk_internal.h), 0 batch, 1 M,
//   2 N, 3 K, 4..7 A offset, batch, m, k strides, 8..11 B offset, batch, k, n strides,
//   12..15 C offset, batch, m, n strides, 16 dtype, 17 has bias, 18..20 bias offset, m, n
//   strides. Buffers: b0 = C, b1 = A, b2 = B, b3 = bias (aliased below as float/vec4).
#extension GL_EXT_control_flow_attributes : enable
#include "common.glsl"

#ifdef EM_MM_SMALL
#define TM 64
#define BK 16
#else
#define TM 128
#define BK 8
#endif
#define TT (TM / 16) // outputs per invocation along M and along N
#define TV (TT / 4)  // vec4 per invocation along M and along N
#define RW (TM / 4 + 1) // vec4 per shared row (one of padding)

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 1) writeonly buffer C1 { float c1[]; };
layout(std430, set = 0, binding = 1) writeonly buffer C4 { vec4 c4[]; };
layout(std430, set = 0, binding = 2) readonly buffer A1 { float a1[]; };
layout(std430, set = 0, binding = 2) readonly buffer A4 { vec4 a4[]; };
layout(std430, set = 0, binding = 3) readonly buffer B1 { float bb1[]; };
layout(std430, set = 0, binding = 3) readonly buffer B4 { vec4 bb4[]; };
layout(std430, set = 0, binding = 4) readonly buffer D1 { float bias1[]; };

shared vec4 sa[2][BK][RW];
shared vec4 sb[2][BK][RW];

// One operand's geometry for the loader: element (mn, k) of the current batch is at
// base + mn * s_mn + k * s_k; `ext_mn` is M (A) or N (B).
struct Operand {
    uint base, s_mn, s_k, ext_mn;
};

// Loads this invocation's 4 elements of the slice starting at k0 (tile origin mn0).
// mode bit 0: unit stride along K (transposed layout), bit 1: vec4 allowed.
vec4 load4(uint mode, bool isa, Operand o, uint mn0, uint k0, uint K, uint t)
{
    bool tk = (mode & 1u) != 0u, vec = (mode & 2u) != 0u;
    // direct: 4 consecutive mn at one k; transposed: 4 consecutive k at one mn
    uint mn = tk ? mn0 + t / (BK / 4) : mn0 + (t % (TM / 4)) * 4u;
    uint k = tk ? k0 + (t % (BK / 4)) * 4u : k0 + t / (TM / 4);
    uint e = o.base + mn * o.s_mn + k * o.s_k;
    if (vec) {
        bool full = tk ? (mn < o.ext_mn && k + 3u < K) : (k < K && mn + 3u < o.ext_mn);
        if (full) return isa ? a4[e >> 2u] : bb4[e >> 2u];
    }
    vec4 v = vec4(0.0);
    uint step = tk ? o.s_k : o.s_mn;
    [[unroll]] for (uint c = 0u; c < 4u; c++) {
        bool in_ = tk ? (mn < o.ext_mn && k + c < K) : (k < K && mn + c < o.ext_mn);
        if (in_) v[c] = isa ? a1[e + c * step] : bb1[e + c * step];
    }
    return v;
}

// Stores the 4 loaded elements into shared buffer `buf` (sa when isa).
void store4(uint mode, bool isa, uint buf, uint t, vec4 v)
{
    if ((mode & 1u) != 0u) {
        uint mn = t / (BK / 4), k = (t % (BK / 4)) * 4u;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            if (isa) sa[buf][k + c][mn >> 2u][mn & 3u] = v[c];
            else sb[buf][k + c][mn >> 2u][mn & 3u] = v[c];
        }
    } else {
        uint k = t / (TM / 4), q = t % (TM / 4);
        if (isa) sa[buf][k][q] = v;
        else sb[buf][k][q] = v;
    }
}

// The bias at (m, n .. n+3), 0 outside C (written without a loop: a loop here keeps
// spirv-opt from unrolling the store loops, which index the accumulators).
vec4 bias4(uint m, uint n, uint M, uint N)
{
    vec4 b = vec4(0.0);
    if (m >= M) return b;
    uint e = arg(18u) + m * arg(19u) + n * arg(20u), s = arg(20u);
    if (n < N) b.x = bias1[e];
    if (n + 1u < N) b.y = bias1[e + s];
    if (n + 2u < N) b.z = bias1[e + 2u * s];
    if (n + 3u < N) b.w = bias1[e + 3u * s];
    return b;
}

float act(float v) { return SC0 == 1u ? em_relu(v) : v; } // NaN and -0.0 unchanged

void main()
{
    const uint amode = SC1, bmode = SC2;
    uint batch = arg(0u), M = arg(1u), N = arg(2u), K = arg(3u);
    uint t = gl_LocalInvocationID.x, tx = t % 16u, ty = t / 16u;
    uint m0 = gl_WorkGroupID.y * TM, n0 = gl_WorkGroupID.x * TM;
    uint nk = (K + BK - 1u) / BK;
    for (uint bz = gl_WorkGroupID.z; bz < batch; bz += gl_NumWorkGroups.z) {
        Operand A = Operand(arg(4u) + bz * arg(5u), arg(6u), arg(7u), M);
        Operand B = Operand(arg(8u) + bz * arg(9u), arg(11u), arg(10u), N);
        vec4 acc[TT][TV];
        [[unroll]] for (uint i = 0u; i < TT; i++)
            [[unroll]] for (uint j = 0u; j < TV; j++) acc[i][j] = vec4(0.0);
        if (nk > 0u) {
            store4(amode, true, 0u, t, load4(amode, true, A, m0, 0u, K, t));
            store4(bmode, false, 0u, t, load4(bmode, false, B, n0, 0u, K, t));
        }
        barrier();
        for (uint s = 0u; s < nk; s++) {
            uint cur = s & 1u;
            bool more = s + 1u < nk;
            vec4 na = vec4(0.0), nb = vec4(0.0);
            if (more) { // issued before the arithmetic so their latency is hidden
                na = load4(amode, true, A, m0, (s + 1u) * BK, K, t);
                nb = load4(bmode, false, B, n0, (s + 1u) * BK, K, t);
            }
            [[unroll]] for (uint k = 0u; k < BK; k++) {
                vec4 av[TV], bv[TV];
                [[unroll]] for (uint i = 0u; i < TV; i++) av[i] = sa[cur][k][ty + 16u * i];
                [[unroll]] for (uint j = 0u; j < TV; j++) bv[j] = sb[cur][k][tx + 16u * j];
                [[unroll]] for (uint i = 0u; i < TV; i++)
                    [[unroll]] for (uint r = 0u; r < 4u; r++)
                        [[unroll]] for (uint j = 0u; j < TV; j++)
                            acc[i * 4u + r][j] += av[i][r] * bv[j];
            }
            if (more) {
                store4(amode, true, cur ^ 1u, t, na);
                store4(bmode, false, cur ^ 1u, t, nb);
            }
            barrier();
        }
        uint cb = arg(12u) + bz * arg(13u), csm = arg(14u), csn = arg(15u);
        [[unroll]] for (uint i = 0u; i < TT; i++) {
            uint m = m0 + (ty + 16u * (i / 4u)) * 4u + (i % 4u);
            [[unroll]] for (uint j = 0u; j < TV; j++) {
                uint n = n0 + (tx + 16u * j) * 4u;
                vec4 v = acc[i][j];
                if (SC4 != 0u) v += bias4(m, n, M, N);
                [[unroll]] for (uint c = 0u; c < 4u; c++) v[c] = act(v[c]);
                uint e = cb + m * csm + n * csn;
                if (SC3 != 0u && m < M && n + 3u < N) {
                    c4[e >> 2u] = v;
                } else {
                    [[unroll]] for (uint c = 0u; c < 4u; c++)
                        if (m < M && n + c < N) c1[e + c * csn] = v[c];
                }
            }
        }
    }
}
