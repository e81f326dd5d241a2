#version 450
// generate.comp — generated values, every output dtype (wide build only: the values are
// computed in double and the random stream needs 64-bit integers): ARANGE, LINSPACE and
// the Philox4x32-10 ops RAND_UNIFORM, RAND_NORMAL, RANDINT exactly as
// api/ember_plugin.h specifies them (one block per element, key {seed lo, seed hi},
// counter {i lo, i hi, offset lo, offset hi}), so for the same seed the values equal the
// CPU backend's. Arithmetic is `precise` (no fused multiply-add, as the C reference).
// Normal needs log and cos in double, which GLSL lacks: dlog (common.glsl) and dcos are
// ~1-ulp double implementations, so f32/f16/bf16 outputs equal the CPU's bit for bit
// (a difference would need the double to sit within ~1e-16 of an f32 rounding
// boundary); f64 normal outputs agree to a few ulps.
//
// Specialization constants: SC0 op, SC1 out dtype (also in the argument words).
// Arguments (words, see backends/vulkan/vk_internal.h: GN_*):
//   0 op (em_op id), 1 ndim, 2 numel, 3 out dtype, 4..5 a (double), 6..7 b (double),
//   8..9 linspace step (double), 10..11 seed, 12..13 offset, 14..15 randint low (int64),
//   16..17 randint span (uint64), 20..27 shape, 28 out tdesc
// Buffers: b0 = out.
#extension GL_ARB_gpu_shader_int64 : require
#include "common.glsl"

layout(local_size_x = 256) in;

#define OP_ARANGE 4u
#define OP_LINSPACE 5u
#define OP_RAND_UNIFORM 6u
#define OP_RAND_NORMAL 7u
#define OP_RANDINT 8u

uvec4 philox(uvec2 key, uvec4 ctr)
{
    for (int round = 0; round < 10; round++) {
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, ctr.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, ctr.z, hi1, lo1);
        ctr = uvec4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
        key += uvec2(0x9E3779B9u, 0xBB67AE85u);
    }
    return ctr;
}

double d_arg(uint at) { return packDouble2x32(arg2(at)); }

// cos(t) for 0 <= t < 2 pi + eps: reduce by pi/2 (Cody-Waite, three parts), then
// Taylor polynomials on |r| <= pi/4.
double dcos(double t)
{
    const double PIO2_1 = 1.57079632673412561417e+00LF;
    const double PIO2_2 = 6.07710050650619224932e-11LF;
    const double PIO2_3 = 2.02226624879595063154e-21LF;
    double k = floor(t * 0.63661977236758134308LF + 0.5LF);
    precise double r = ((t - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    precise double z = r * r;
    // cos r = sum (-1)^n z^n / (2n)!, sin r = r sum (-1)^n z^n / (2n+1)!, n <= 9
    precise double c = 0.0LF, s = 0.0LF;
    double fc[10], fs[10];
    fc[0] = 1.0LF; fs[0] = 1.0LF;
    for (int n = 1; n < 10; n++) {
        fc[n] = -fc[n - 1] / double((2 * n - 1) * (2 * n));
        fs[n] = -fs[n - 1] / double((2 * n) * (2 * n + 1));
    }
    for (int n = 9; n >= 0; n--) {
        c = c * z + fc[n];
        s = s * z + fs[n];
    }
    s *= r;
    int q = int(k) & 3;
    return q == 0 ? c : q == 1 ? -s : q == 2 ? -c : s;
}

void main()
{
    const uint op = SC0, dt = SC1;
    uint ndim = arg(1u), numel = arg(2u);
    double a = d_arg(4u), b = d_arg(6u);
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < numel; i += stride) {
        uint o = em_strided_index(i, ndim, 20u, 28u);
        uvec2 out_v;
        if (op == OP_ARANGE || op == OP_LINSPACE) {
            precise double v;
            if (op == OP_ARANGE) v = a + double(i) * b;
            else if (numel == 1u) v = a;
            else if (i < numel / 2u) v = a + double(i) * d_arg(8u);
            else v = b - double(numel - 1u - i) * d_arg(8u);
            out_v = d_to_raw(dt, v);
        } else {
            uvec4 x = philox(arg2(10u), uvec4(i, 0u, arg2(12u)));
            if (op == OP_RAND_UNIFORM) {
                double u;
                if (dt == DT_F64) u = double((uint64_t(x.x) << 21) | uint64_t(x.y >> 11)) * 1.1102230246251565e-16LF;
                else if (dt == DT_F16) u = double(x.x >> 21) * 4.8828125e-4LF;
                else if (dt == DT_BF16) u = double(x.x >> 24) * 3.90625e-3LF;
                else u = double(x.x >> 8) * 5.9604644775390625e-8LF;
                precise double v = a + u * (b - a);
                out_v = d_to_raw(dt, v);
            } else if (op == OP_RAND_NORMAL) {
                precise double u1 = (double(x.x) + 1.0LF) * 2.3283064365386963e-10LF;
                precise double u2 = double(x.y) * 2.3283064365386963e-10LF;
                precise double z = sqrt(-2.0LF * dlog(u1)) * dcos(6.283185307179586LF * u2);
                precise double v = a + b * z;
                out_v = d_to_raw(dt, v);
            } else { // RANDINT: low + (r mod span)
                uint64_t r = (uint64_t(x.y) << 32) | uint64_t(x.x);
                uint64_t span = packUint2x32(arg2(16u));
                int64_t v = int64_t(packUint2x32(arg2(14u)) + r % span);
                out_v = dt_is_float(dt) || dt == DT_F64 ? d_to_raw(dt, double(v)) : i_to_raw(dt, v);
            }
        }
        raw_st_b0(dt_size(dt), o, out_v);
    }
}
