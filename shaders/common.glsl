// common.glsl — shared by every Ember compute shader (included with glslc -I shaders).
//
// Binding layout (one descriptor set layout and one pipeline layout for all shaders,
// see backends/vulkan/vk_internal.h, which mirrors these numbers):
//   binding 0: the argument ring (uint words written by the host per dispatch)
//   binding 1..4: data buffers b0..b3, viewed as raw 32-bit words (uint). Elements of
//                 any dtype are read and written through raw_ld_bN / raw_st_bN by
//                 element size (1, 2, 4 or 8 bytes); sub-word stores use atomics on
//                 the containing word, so neighbouring bool/f16 elements written by
//                 other invocations are never clobbered.
// Push constants: args_off = first word of this dispatch's arguments in binding 0.
//
// Tensor arguments ("tdesc", EM_TD_WORDS = 9 words): offset, strides[8], all in
// elements; shapes are shared per dispatch or given per op. 32-bit indices suffice:
// a binding is at most maxStorageBufferRange bytes (the plugin refuses bigger
// tensors), so every element index fits in a uint.
//
// dtype codes are em_dtype's (api/ember.h). Compute classes: float (f32, f16, bf16:
// f32 arithmetic, as the CPU backend), int (i32, bool; i64 too in wide builds) and
// double (f64, wide builds only). A shader compiled with -DEM_WIDE uses int64 and
// double (needs shaderInt64 + shaderFloat64); without it nothing 64-bit appears in the
// SPIR-V, so it runs on any Vulkan 1.2 device. Conversions follow the ABI: float->int
// truncates and saturates, NaN -> 0; ->bool is != 0; ->f16/bf16 rounds to nearest even
// (bit-exact ports of em_f32_to_f16 / em_f32_to_bf16 in api/ember_plugin.h).
//
// Float controls: the host adds the SPIR-V execution modes SignedZeroInfNanPreserve (the
// compiler may not assume away NaN, infinities or -0) and DenormPreserve (subnormals kept
// by arithmetic) for 32-bit floats and, in wide builds, 64-bit floats, to each module
// where the device reports them (VkPhysicalDeviceFloatControlsProperties; vk_spirv.c and
// vk_fc_modes in backends/vulkan). Without DenormPreserve a device may flush f32
// subnormals in arithmetic, moves and compares (NVIDIA's default): casts and the selects
// below move and test bits with integer instructions, so they keep subnormals everywhere,
// and the NaN-sensitive selects (relu, clamp, maximum/minimum, max/min reductions) test
// NaN explicitly, so no compiler can fold them into an fmax/fmin that drops NaN.
#extension GL_GOOGLE_include_directive : enable
#ifdef EM_WIDE
#extension GL_ARB_gpu_shader_int64 : require
#define ITYPE int64_t
#else
#define ITYPE int
#endif

#define EM_MAX_DIMS 8
#define EM_TD_WORDS 9

#define DT_F32 0u
#define DT_F64 1u
#define DT_F16 2u
#define DT_BF16 3u
#define DT_I32 4u
#define DT_I64 5u
#define DT_BOOL 6u

// Specialization constants: each shader names what they hold (its op, dtypes, modes), so
// a pipeline is compiled for one combination and every other path folds away (host:
// vk_pipeline in backends/vulkan/vk_device.c caches one pipeline per combination).
layout(constant_id = 0) const uint SC0 = 0u;
layout(constant_id = 1) const uint SC1 = 0u;
layout(constant_id = 2) const uint SC2 = 0u;
layout(constant_id = 3) const uint SC3 = 0u;
layout(constant_id = 4) const uint SC4 = 0u;
layout(constant_id = 5) const uint SC5 = 0u;

layout(push_constant) uniform Push { uint args_off; } pc;
layout(std430, set = 0, binding = 0) readonly buffer Args { uint args[]; };
layout(std430, set = 0, binding = 1) buffer Buf0 { uint b0[]; };
layout(std430, set = 0, binding = 2) buffer Buf1 { uint b1[]; };
layout(std430, set = 0, binding = 3) buffer Buf2 { uint b2[]; };
layout(std430, set = 0, binding = 4) buffer Buf3 { uint b3[]; };

uint arg(uint i) { return args[pc.args_off + i]; }
float argf(uint i) { return uintBitsToFloat(args[pc.args_off + i]); }
uvec2 arg2(uint i) { return uvec2(args[pc.args_off + i], args[pc.args_off + i + 1u]); }

uint dt_size(uint dt)
{
    return (dt == DT_F64 || dt == DT_I64) ? 8u : (dt == DT_F16 || dt == DT_BF16) ? 2u
                                               : dt == DT_BOOL ? 1u : 4u;
}
bool dt_is_float(uint dt) { return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16; }
bool dt_is_int(uint dt) { return dt == DT_I32 || dt == DT_I64 || dt == DT_BOOL; }

// Element offset of row-major linear index `lin` in a tensor of `ndim` dims whose
// shape starts at argument word `shape_at` and whose offset+strides start at `td_at`
// (word td_at = offset, td_at+1+d = stride of dim d). Stride 0 = broadcast.
uint em_strided_index(uint lin, uint ndim, uint shape_at, uint td_at)
{
    uint off = arg(td_at);
    for (int d = int(ndim) - 1; d >= 0; d--) {
        uint n = arg(shape_at + uint(d));
        uint i = lin % n;
        lin /= n;
        off += i * arg(td_at + 1u + uint(d));
    }
    return off;
}

float em_nan() { return uintBitsToFloat(0x7fc00000u); }

// ---------------- NaN-safe selects (integer tests: nothing for a compiler to fold) -------
bool em_isnan_f(float x) { return (floatBitsToUint(x) & 0x7fffffffu) > 0x7f800000u; }
// relu as the CPU backend: x < 0 ? 0 : x, so NaN (either sign) and -0.0 pass unchanged;
// negative non-zero values (subnormals and -inf included) give +0.
float em_relu(float x)
{
    uint u = floatBitsToUint(x);
    return (u > 0x80000000u && u <= 0xff800000u) ? 0.0 : x;
}
// An integer key ordered as the (non-NaN) floats, -0.0 and +0.0 equal, subnormals exact.
int em_fkey(float x)
{
    uint u = floatBitsToUint(x);
    return (u & 0x80000000u) != 0u ? -int(u & 0x7fffffffu) : int(u);
}
// clamp as the CPU backend: v = v < lo ? lo : v; v = v > hi ? hi : v (NaN stays NaN; a NaN
// bound compares false, so it is ignored).
float em_clamp_f(float a, float lo, float hi)
{
    if (em_isnan_f(a)) return a;
    float r = (!em_isnan_f(lo) && em_fkey(a) < em_fkey(lo)) ? lo : a;
    return (!em_isnan_f(hi) && em_fkey(r) > em_fkey(hi)) ? hi : r;
}

// ---------------- raw element access by element size ------------------------------
#define EM_RAW_FNS(B)                                                                     \
    uvec2 raw_ld_##B(uint es, uint i)                                                     \
    {                                                                                     \
        if (es == 4u) return uvec2(B[i], 0u);                                             \
        if (es == 8u) return uvec2(B[2u * i], B[2u * i + 1u]);                            \
        if (es == 2u) return uvec2((B[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu, 0u);       \
        return uvec2((B[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu, 0u);                        \
    }                                                                                     \
    void raw_st_##B(uint es, uint i, uvec2 v)                                             \
    {                                                                                     \
        if (es == 4u) { B[i] = v.x; return; }                                             \
        if (es == 8u) { B[2u * i] = v.x; B[2u * i + 1u] = v.y; return; }                  \
        uint sh = es == 2u ? (i & 1u) * 16u : (i & 3u) * 8u;                              \
        uint w = es == 2u ? i >> 1u : i >> 2u;                                            \
        uint m = (es == 2u ? 0xffffu : 0xffu) << sh;                                      \
        atomicAnd(B[w], ~m);                                                              \
        atomicOr(B[w], (v.x << sh) & m);                                                  \
    }
EM_RAW_FNS(b0)
EM_RAW_FNS(b1)
EM_RAW_FNS(b2)
EM_RAW_FNS(b3)

// ---------------- half formats (bit-exact with api/ember_plugin.h) -----------------
float em_f16_to_f32(uint h)
{
    uint sign = (h & 0x8000u) << 16u, e = (h >> 10u) & 0x1fu, man = h & 0x3ffu;
    if (e == 0u) {
        if (man == 0u) return uintBitsToFloat(sign);
        return uintBitsToFloat(floatBitsToUint(float(man) * 5.9604644775390625e-8) | sign);
    }
    if (e == 31u) return uintBitsToFloat(sign | 0x7f800000u | (man << 13u));
    return uintBitsToFloat(sign | ((e + 112u) << 23u) | (man << 13u));
}

uint em_f32b_to_f16(uint u) // from the f32's bits
{
    uint sign = (u >> 16u) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u;
    if (a < 0x38800000u) {
        // value / 2^-24 rounded to nearest even, in integers (no denormal flushing)
        uint e = a >> 23u;
        if (e < 102u) return sign; // below 2^-25: rounds to 0
        uint mant = (a & 0x7fffffu) | 0x800000u;
        uint shift = 126u - e; // value = mant * 2^(e-150) = (mant >> shift) half-ulps
        uint m = mant >> shift, rem = mant & ((1u << shift) - 1u), half_ = 1u << (shift - 1u);
        if (rem > half_ || (rem == half_ && (m & 1u) != 0u)) m++;
        return sign | m;
    }
    uint r = a + 0xfffu + ((a >> 13u) & 1u) - 0x38000000u;
    return sign | (r >> 13u);
}

uint em_f32_to_f16(float f) { return em_f32b_to_f16(floatBitsToUint(f)); }

float em_bf16_to_f32(uint h) { return uintBitsToFloat(h << 16u); }

uint em_f32b_to_bf16(uint u) // from the f32's bits: integer rounding, subnormals kept
{
    if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16u) | 0x40u) & 0xffffu;
    u += 0x7fffu + ((u >> 16u) & 1u);
    return u >> 16u;
}

uint em_f32_to_bf16(float f) { return em_f32b_to_bf16(floatBitsToUint(f)); }

// f32 bits <-> f64 bits (word pair lo, hi) with integer instructions only: exact for
// subnormals whatever the device's float controls. f64 -> f32 rounds to nearest even
// (as a C (float) cast); NaN stays NaN (quieted, top payload bits kept).
uvec2 em_f32b_to_f64b(uint u)
{
    uint sign = u & 0x80000000u, e = (u >> 23u) & 0xffu, m = u & 0x7fffffu;
    if (e == 255u) return uvec2(m << 29u, sign | 0x7ff00000u | (m >> 3u) | (m != 0u ? 0x80000u : 0u));
    if (e == 0u) {
        if (m == 0u) return uvec2(0u, sign);
        int p = findMSB(m); // value = m 2^-149 = 1.f 2^(p - 149)
        m = (m << uint(23 - p)) & 0x7fffffu;
        e = uint(p + 874); // p - 149 + 1023
        return uvec2(m << 29u, sign | (e << 20u) | (m >> 3u));
    }
    return uvec2(m << 29u, sign | ((e + 896u) << 20u) | (m >> 3u));
}

uint em_f64b_to_f32b(uvec2 w)
{
    uint sign = w.y & 0x80000000u, e = (w.y >> 20u) & 0x7ffu, mhi = w.y & 0xfffffu;
    if (e == 0x7ffu) {
        if ((mhi | w.x) == 0u) return sign | 0x7f800000u;
        return sign | 0x7fc00000u | (mhi << 3u) | (w.x >> 29u);
    }
    if (e < 873u) return sign; // below 2^-150 (f64 subnormals included): rounds to 0
    uint sig = 0x800000u | (mhi << 3u) | (w.x >> 29u); // 24 significant bits
    uint rest = w.x & 0x1fffffffu;                     // the 29 below them
    int fe = int(e) - 896;                              // the f32 biased exponent
    if (fe >= 255) return sign | 0x7f800000u;
    if (fe >= 1) {
        uint r = (uint(fe) << 23u) | (sig & 0x7fffffu);
        if ((rest & 0x10000000u) != 0u && ((rest & 0x0fffffffu) != 0u || (r & 1u) != 0u)) r++;
        return sign | r; // a carry may round up to the next binade or to inf: still right
    }
    uint sh = uint(1 - fe); // 1..24: the value in units of 2^-149 is sig >> sh
    if (sh > 24u) return sign;
    uint m = sig >> sh, rb = (sig >> (sh - 1u)) & 1u;
    bool sticky = (sig & ((1u << (sh - 1u)) - 1u)) != 0u || rest != 0u;
    if (rb != 0u && (sticky || (m & 1u) != 0u)) m++;
    return sign | m;
}

// ---------------- saturating conversions (ABI rules) -------------------------------
int em_sat_i32_f(float v)
{
    if (isnan(v)) return 0;
    if (v <= -2147483648.0) return int(0x80000000u);
    if (v >= 2147483648.0) return 0x7fffffff;
    return int(v);
}

// ---------------- typed loads and stores -------------------------------------------
float raw_to_f(uint dt, uvec2 r)
{
    if (dt == DT_F32) return uintBitsToFloat(r.x);
    if (dt == DT_F16) return em_f16_to_f32(r.x);
    if (dt == DT_BF16) return em_bf16_to_f32(r.x);
    if (dt == DT_I32) return float(int(r.x));
    if (dt == DT_BOOL) return float(r.x);
#ifdef EM_WIDE
    if (dt == DT_I64) return float(int64_t(packUint2x32(r)));
    if (dt == DT_F64) return uintBitsToFloat(em_f64b_to_f32b(r));
#endif
    return em_nan();
}

// The f32 bits of a float-class or f64 value (exact where representable: integer moves).
uint em_raw_f32b(uint dt, uvec2 r)
{
    if (dt == DT_F32) return r.x;
    if (dt == DT_BF16) return r.x << 16u;
    if (dt == DT_F16) return floatBitsToUint(em_f16_to_f32(r.x)); // never an f32 subnormal
    return em_f64b_to_f32b(r);
}

// A float-class or f64 value != 0 (NaN included), from its bits: subnormals are non-zero.
bool em_raw_nonzero(uint dt, uvec2 r)
{
    if (dt == DT_F32) return (r.x & 0x7fffffffu) != 0u;
    if (dt == DT_F64) return ((r.y & 0x7fffffffu) | r.x) != 0u;
    return (r.x & 0x7fffu) != 0u;
}

ITYPE raw_to_i(uint dt, uvec2 r)
{
    if (dt == DT_I32) return ITYPE(int(r.x));
    if (dt == DT_BOOL) return ITYPE(r.x);
#ifdef EM_WIDE
    if (dt == DT_I64) return int64_t(packUint2x32(r));
#endif
    return ITYPE(0);
}

uvec2 f_to_raw(uint dt, float v)
{
    if (dt == DT_F32) return uvec2(floatBitsToUint(v), 0u);
    if (dt == DT_F16) return uvec2(em_f32_to_f16(v), 0u);
    if (dt == DT_BF16) return uvec2(em_f32_to_bf16(v), 0u);
    if (dt == DT_I32) return uvec2(uint(em_sat_i32_f(v)), 0u);
    if (dt == DT_BOOL) return uvec2(em_raw_nonzero(DT_F32, uvec2(floatBitsToUint(v), 0u)) ? 1u : 0u, 0u);
#ifdef EM_WIDE
    if (dt == DT_I64) {
        int64_t x = isnan(v) ? 0l : v <= -9223372036854775808.0 ? int64_t(0x8000000000000000ul)
                  : v >= 9223372036854775808.0 ? 0x7fffffffffffffffl : int64_t(v);
        return unpackUint2x32(uint64_t(x));
    }
    if (dt == DT_F64) return em_f32b_to_f64b(floatBitsToUint(v));
#endif
    return uvec2(0u);
}

uvec2 i_to_raw(uint dt, ITYPE v)
{
    if (dt == DT_I32) return uvec2(uint(v), 0u);
    if (dt == DT_BOOL) return uvec2(v != ITYPE(0) ? 1u : 0u, 0u);
    if (dt == DT_F32) return uvec2(floatBitsToUint(float(v)), 0u);
    if (dt == DT_F16) return uvec2(em_f32_to_f16(float(v)), 0u);
    if (dt == DT_BF16) return uvec2(em_f32_to_bf16(float(v)), 0u);
#ifdef EM_WIDE
    if (dt == DT_I64) return unpackUint2x32(uint64_t(v));
    if (dt == DT_F64) return unpackDouble2x32(double(v));
#endif
    return uvec2(0u);
}

#ifdef EM_WIDE
double raw_to_d(uint dt, uvec2 r)
{
    if (dt == DT_F64) return packDouble2x32(r);
    if (dt == DT_I64) return double(int64_t(packUint2x32(r)));
    if (dt == DT_I32) return double(int(r.x));
    if (dt == DT_BOOL) return double(r.x);
    return packDouble2x32(em_f32b_to_f64b(em_raw_f32b(dt, r)));
}

const double LN2_HI = 6.93147180369123816490e-01LF; // fdlibm split of ln 2
const double LN2_LO = 1.90821492927058770002e-10LF;

// log(x) for finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
// s = (m - 1) / (m + 1), |s| < 0.172, series to s^23.
double dlog(double x)
{
    int e;
    double m = frexp(x, e); // m in [0.5, 1)
    if (m < 0.70710678118654752440LF) { m *= 2.0LF; e -= 1; }
    precise double f = m - 1.0LF;
    precise double s = f / (m + 1.0LF), z = s * s;
    precise double p = 1.0LF / 23.0LF;
    for (int k = 21; k >= 1; k -= 2) p = p * z + 1.0LF / double(k);
    precise double logm = 2.0LF * s * p;
    precise double r = double(e) * LN2_HI + (logm + double(e) * LN2_LO);
    return r;
}

// exp(x) in double: x = k ln 2 + r, |r| <= ln2/2, Taylor series of exp(r) to r^14.
double dexp(double x)
{
    if (isnan(x)) return x;
    if (x > 709.8LF) return 1.0LF / 0.0LF;
    if (x < -745.2LF) return 0.0LF;
    double k = floor(x * 1.44269504088896340736LF + 0.5LF);
    precise double r = (x - k * LN2_HI) - k * LN2_LO;
    precise double p = 1.0LF / 87178291200.0LF; // 1/14!
    double f = 87178291200.0LF;
    for (int n = 13; n >= 1; n--) {
        f /= double(n + 1);
        p = p * r + 1.0LF / f;
    }
    p = p * r + 1.0LF;
    return ldexp(p, int(k));
}

uvec2 d_to_raw(uint dt, double v)
{
    if (dt == DT_F64) return unpackDouble2x32(v);
    if (dt == DT_I32) {
        int x = isnan(v) ? 0 : v <= -2147483648.0LF ? int(0x80000000u)
              : v >= 2147483647.0LF ? 0x7fffffff : int(v);
        return uvec2(uint(x), 0u);
    }
    if (dt == DT_I64) {
        int64_t x = isnan(v) ? 0l : v <= -9223372036854775808.0LF ? int64_t(0x8000000000000000ul)
                  : v >= 9223372036854775808.0LF ? 0x7fffffffffffffffl : int64_t(v);
        return unpackUint2x32(uint64_t(x));
    }
    if (dt == DT_BOOL) return uvec2(em_raw_nonzero(DT_F64, unpackDouble2x32(v)) ? 1u : 0u, 0u);
    // f32/f16/bf16: through the f32 bits (integer rounding: subnormals kept)
    uint b = em_f64b_to_f32b(unpackDouble2x32(v));
    if (dt == DT_F32) return uvec2(b, 0u);
    if (dt == DT_F16) return uvec2(em_f32b_to_f16(b), 0u);
    if (dt == DT_BF16) return uvec2(em_f32b_to_bf16(b), 0u);
    return uvec2(0u);
}

// relu for doubles as em_relu: negative non-zero non-NaN -> +0, NaN and -0.0 unchanged.
double em_relu_d(double x)
{
    uvec2 w = unpackDouble2x32(x);
    uint hi = w.y & 0x7fffffffu;
    bool nan_ = hi > 0x7ff00000u || (hi == 0x7ff00000u && w.x != 0u);
    return ((w.y & 0x80000000u) != 0u && (hi | w.x) != 0u && !nan_) ? 0.0LF : x;
}
#endif
