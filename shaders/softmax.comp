#version 450
// softmax.comp — SOFTMAX and LOG_SOFTMAX along one dim, f32/f16/bf16 (f32 arithmetic).
// One workgroup per row (grid-stride over rows); its 256 threads take three passes over
// the row: the max (NaN-sticky), the Kahan-compensated sum of exp(x - max), then the
// write: exp(x - max) * (1 / sum), or x - (max + log(sum)). A row whose max is NaN or
// infinite gives NaN, as x - max does (the CPU backend and PyTorch agree).
//
// Specialization constants: SC0 log, SC2 dtype (also in the argument words).
// Arguments (words, see backends/vulkan/vk_internal.h: SM_*):
//   0 log (0/1), 1 n_rows, 2 len, 3 n_outer, 4 x offset, 5 out offset,
//   6 x stride along dim, 7 out stride along dim, 8 dtype,
//   16 outer shape[8], 24 outer x strides[8], 32 outer out strides[8]
// Buffers: b0 = out, b1 = x.
#include "common.glsl"

layout(local_size_x = 256) in;
shared float s_v[256];

void main()
{
    const uint want_log = SC0, dt = SC2, es = dt_size(dt);
    uint n_rows = arg(1u), len = arg(2u), n_outer = arg(3u);
    uint xs = arg(6u), os = arg(7u);
    uint lid = gl_LocalInvocationID.x;
    for (uint row = gl_WorkGroupID.x; row < n_rows; row += gl_NumWorkGroups.x) {
        uint xo = arg(4u), oo = arg(5u), rem = row;
        for (int d = int(n_outer) - 1; d >= 0; d--) {
            uint n = arg(16u + uint(d)), i = rem % n;
            rem /= n;
            xo += i * arg(24u + uint(d));
            oo += i * arg(32u + uint(d));
        }
        // pass 1: max
        float m = uintBitsToFloat(0xff800000u);
        for (uint i = lid; i < len; i += 256u) {
            float v = raw_to_f(dt, raw_ld_b1(es, xo + i * xs));
            if (!isnan(m) && (isnan(v) || v > m)) m = v;
        }
        s_v[lid] = m;
        barrier();
        for (uint s = 128u; s > 0u; s >>= 1) {
            if (lid < s) {
                float a = s_v[lid], b = s_v[lid + s];
                if (!isnan(a) && (isnan(b) || b > a)) s_v[lid] = b;
            }
            barrier();
        }
        m = s_v[0];
        barrier();
        // pass 2: sum of exp(x - max)
        precise float acc = 0.0, comp = 0.0;
        for (uint i = lid; i < len; i += 256u) {
            float v = raw_to_f(dt, raw_ld_b1(es, xo + i * xs));
            precise float y = exp(v - m) - comp, t = acc + y;
            comp = (t - acc) - y;
            acc = t;
        }
        s_v[lid] = acc;
        barrier();
        for (uint s = 128u; s > 0u; s >>= 1) {
            if (lid < s) s_v[lid] += s_v[lid + s];
            barrier();
        }
        float sum = s_v[0];
        barrier();
        // pass 3: write
        float inv = 1.0 / sum, sub = m + log(sum);
        for (uint i = lid; i < len; i += 256u) {
            float v = raw_to_f(dt, raw_ld_b1(es, xo + i * xs));
            float r = want_log != 0u ? v - sub : exp(v - m) * inv;
            raw_st_b0(es, oo + i * os, f_to_raw(dt, r));
        }
    }
}
