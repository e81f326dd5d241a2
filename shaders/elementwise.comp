#version 450
// elementwise.comp — every elementwise op: FILL, COPY, CAST, binary (tensor and scalar
// forms), AXPY, comparisons, WHERE, CLAMP, MASKED_FILL, the unary ops and RELU_BACKWARD
// (out = in1 > 0 ? in0 : 0, float dtypes), for every
// dtype (f64 and i64 only in the -DEM_WIDE build; see common.glsl for the classes).
// Semantics follow backends/cpu (the reference): integer arithmetic wraps, bool
// arithmetic is computed in int and stored as != 0, NaN propagates through
// maximum/minimum, f16/bf16 compute in f32 with an f32 scalar operand.
//
// Specialization constants: SC0 op, SC1 out dtype, SC2 in0 dtype, SC3 in1 dtype,
// SC4 flag (GELU form), SC5 n_in | 16 if every operand is dense row-major (then element
// i of each operand is at its offset + i; the other values are also argument words)
// | 32 for the vec4 path: dense, every operand f32 (FILL/COPY: any 4-byte dtype) with the
// same offset modulo 4; each invocation then moves 16 bytes per operand (uvec4 loads and
// stores), with `head` leading and the remaining trailing elements done one by one.
// Workgroups: enough to cover the elements (vec4 path: the groups of 4), capped at the
// device limit; the shader loops (grid stride) beyond it.
// Arguments (words, see backends/vulkan/vk_internal.h: EW_*):
//   0 op (em_op id), 1 ndim, 2 numel, 3 n_in, 4 out dtype, 5..7 in0..in2 dtypes,
//   8..9 scalar 0, 10..11 scalar 1 (two words each, encoded by the host in the compute
//   class of in0: f32 bits / int64 / f64 bits; FILL and MASKED_FILL: the value's bits in
//   the output dtype), 12 flag (GELU form), 13 head, 14 groups of 4 (vec4 path),
//   16..23 shape (the output's; inputs are already broadcast to it),
//   24 out tdesc, 33 in0 tdesc, 42 in1 tdesc, 51 in2 tdesc (offset + 8 strides each)
// Buffers: b0 = out, b1 = in0, b2 = in1, b3 = in2.
#extension GL_EXT_control_flow_attributes : enable
#include "common.glsl"

layout(local_size_x = 256) in;

#define OP_FILL 1u
#define OP_COPY 2u
#define OP_CAST 3u
#define OP_ADD 20u
#define OP_SUB 21u
#define OP_MUL 22u
#define OP_DIV 23u
#define OP_POW 24u
#define OP_MAXIMUM 25u
#define OP_MINIMUM 26u
#define OP_AXPY 27u
#define OP_EQ 30u
#define OP_NE 31u
#define OP_LT 32u
#define OP_LE 33u
#define OP_GT 34u
#define OP_GE 35u
#define OP_WHERE 40u
#define OP_CLAMP 41u
#define OP_MASKED_FILL 42u
#define OP_NEG 50u
#define OP_ABS 51u
#define OP_EXP 52u
#define OP_LOG 53u
#define OP_SQRT 54u
#define OP_RSQRT 55u
#define OP_SIN 56u
#define OP_COS 57u
#define OP_TANH 58u
#define OP_SIGMOID 59u
#define OP_RELU 60u
#define OP_GELU 61u
#define OP_SILU 62u
#define OP_SOFTPLUS 63u
#define OP_SQUARE 64u
#define OP_RECIPROCAL 65u
#define OP_ERF 66u
#define OP_SIGN 67u
#define OP_RELU_BACKWARD 68u

#define A_HEAD 13u
#define A_NVEC 14u
#define A_SHAPE 16u
#define A_TD_OUT 24u
#define A_TD_IN0 33u
#define A_TD_IN1 42u
#define A_TD_IN2 51u

// ---------------- float class ------------------------------------------------------

float f_pow(float a, float b)
{
    if (b == 0.0 || a == 1.0) return 1.0;
    if (isnan(a) || isnan(b)) return em_nan();
    bool neg = (floatBitsToUint(a) & 0x80000000u) != 0u;
    bool bint = !isinf(b) && b == floor(b);
    if (neg && !isinf(a) && a != 0.0 && !isinf(b) && !bint) return em_nan();
    bool odd = bint && abs(mod(b, 2.0)) == 1.0;
    float ab = abs(a), r;
    if (ab == 0.0) r = b > 0.0 ? 0.0 : uintBitsToFloat(0x7f800000u);
    else if (isinf(b)) r = ab == 1.0 ? 1.0 : ((ab > 1.0) == (b > 0.0) ? b * b : 0.0);
    else if (isinf(ab)) r = b > 0.0 ? ab : 0.0;
    else if (bint && abs(b) <= 64.0) {
        // small integral exponent: square-and-multiply (a few roundings, no log error)
        float x = ab;
        r = 1.0;
        for (uint e = uint(abs(b)); e != 0u; e >>= 1u, x *= x)
            if ((e & 1u) != 0u) r *= x;
        if (b < 0.0) r = 1.0 / r;
    } else r = exp2(b * log2(ab));
    return (neg && odd) ? -r : r;
}

// tanh, as the CPU backend's cpu_tanhf: odd polynomial below 0.625, else from exp.
float f_tanh(float x)
{
    float ax = abs(x), z = x * x;
    float p = ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z +
                1.33314422036e-1) * z - 3.33332819422e-1) * z * ax + ax;
    float big = 1.0 - 2.0 / (exp(2.0 * ax) + 1.0);
    float r = ax < 0.625 ? p : big;
    return x < 0.0 ? -r : (isnan(x) ? x : r);
}

// erf: Taylor series below 0.5, else 1 - erfc with Numerical Recipes' Chebyshev fit
// (fractional error < 1.2e-7).
float f_erfc_pos(float z)
{
    float t = 1.0 / (1.0 + 0.5 * z);
    float poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                 t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                 t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-z * z + poly);
}

float f_erf(float x)
{
    float ax = abs(x);
    if (ax < 0.5) {
        float z = x * x;
        float s = 1.0 + z * (-1.0 / 3.0 + z * (1.0 / 10.0 + z * (-1.0 / 42.0 + z * (1.0 / 216.0 +
                  z * (-1.0 / 1320.0 + z * (1.0 / 9360.0))))));
        return 1.1283791670955126 * x * s;
    }
    float r = 1.0 - f_erfc_pos(ax);
    return x < 0.0 ? -r : r;
}

// GELU, erf form, as the CPU backend's cpu_gelu_erf: x * 0.5 * erfc(-x / sqrt 2), with
// exp(-x^2/2) split so the tail keeps its relative accuracy.
float f_gelu_erf(float x)
{
    float ax = abs(x);
    float t = 1.0 / (1.0 + 0.35355339059327376220 * ax);
    float poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                 t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                 t * (-0.82215223 + t * 0.17087277))))))));
    float xh = uintBitsToFloat(floatBitsToUint(ax) & 0xfffff000u), xl = ax - xh;
    float lo = poly - 0.5 * xl * (ax + xh);
    lo = isinf(ax) ? 0.0 : lo;
    float e = t * exp(-0.5 * xh * xh) * exp(lo);
    float phi2 = x < 0.0 ? e : 2.0 - e;
    return x * 0.5 * phi2;
}

float f_log1p(float y)
{
    float u = 1.0 + y;
    if (u == 1.0) return y;
    if (isinf(u)) return u;
    return log(u) * (y / (u - 1.0));
}

float f_unary(uint op, float x)
{
    switch (op) {
    case OP_NEG: return -x;
    case OP_ABS: return abs(x);
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1.0 / sqrt(x);
    case OP_SIN: return sin(x);
    case OP_COS: return cos(x);
    case OP_TANH: return f_tanh(x);
    case OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case OP_RELU: return em_relu(x); // NaN and -0.0 unchanged (common.glsl)
    case OP_GELU:
        if (SC4 == 1u) return x / (1.0 + exp(-1.59576912160573071176 * (x + 0.044715 * x * x * x)));
        return f_gelu_erf(x);
    case OP_SILU: return x / (1.0 + exp(-x));
    case OP_SOFTPLUS: {
        float beta = uintBitsToFloat(arg(8u)), thr = uintBitsToFloat(arg(10u));
        return x * beta > thr ? x : f_log1p(exp(beta * x)) / beta;
    }
    case OP_SQUARE: return x * x;
    case OP_RECIPROCAL: return 1.0 / x;
    case OP_ERF: return f_erf(x);
    case OP_SIGN: return isnan(x) ? x : float(x > 0.0) - float(x < 0.0);
    }
    return em_nan();
}

float f_binary(uint op, float a, float b)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_POW:
#ifdef EM_WIDE
        // |b log a| up to ~100 would cost f32 exp2/log2 up to ~1e-5 relative: in double
        // the result rounds to the correctly rounded f32 in nearly every case
        if (a > 0.0 && !isinf(a) && !isinf(b) && !isnan(b) && b != 0.0 && a != 1.0) {
            bool bint = b == floor(b);
            if (!(bint && abs(b) <= 64.0)) return float(dexp(double(b) * dlog(double(a))));
        }
#endif
        return f_pow(a, b);
    case OP_MAXIMUM: return (isnan(a) || a > b) ? a : b;
    case OP_MINIMUM: return (isnan(a) || a < b) ? a : b;
    }
    return em_nan();
}

// ---------------- int class ---------------------------------------------------------

ITYPE i_pow(ITYPE a, ITYPE b)
{
    if (b < ITYPE(0))
        return a == ITYPE(1) ? ITYPE(1)
             : a == ITYPE(-1) ? ((b & ITYPE(1)) != ITYPE(0) ? ITYPE(-1) : ITYPE(1)) : ITYPE(0);
    ITYPE r = ITYPE(1), x = a;
    for (ITYPE e = b; e != ITYPE(0); e >>= 1, x *= x)
        if ((e & ITYPE(1)) != ITYPE(0)) r *= x;
    return r;
}

ITYPE i_scalar(uint at)
{
#ifdef EM_WIDE
    return int64_t(packUint2x32(arg2(at)));
#else
    return int(arg(at));
#endif
}

ITYPE i_binary(uint op, ITYPE a, ITYPE b)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_POW: return i_pow(a, b);
    case OP_MAXIMUM: return a > b ? a : b;
    case OP_MINIMUM: return a < b ? a : b;
    }
    return ITYPE(0);
}

ITYPE i_unary(uint op, ITYPE x)
{
    switch (op) {
    case OP_NEG: return -x;
    case OP_ABS: return x < ITYPE(0) ? -x : x;
    case OP_RELU: return x < ITYPE(0) ? ITYPE(0) : x;
    case OP_SQUARE: return x * x;
    case OP_SIGN: return ITYPE(x > ITYPE(0)) - ITYPE(x < ITYPE(0));
    }
    return ITYPE(0);
}

bool compare_op(uint op, int c) // c: -1, 0, 1 or 2 (unordered: NaN)
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LT: return c == -1;
    case OP_LE: return c == -1 || c == 0;
    case OP_GT: return c == 1;
    case OP_GE: return c == 1 || c == 0;
    }
    return false;
}

// ---------------- double class (wide build) -----------------------------------------
#ifdef EM_WIDE
double d_scalar(uint at) { return packDouble2x32(arg2(at)); }

double d_unary(uint op, double x)
{
    switch (op) {
    case OP_NEG: return -x;
    case OP_ABS: return abs(x);
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1.0LF / sqrt(x);
    case OP_RELU: return em_relu_d(x);
    case OP_SQUARE: return x * x;
    case OP_RECIPROCAL: return 1.0LF / x;
    case OP_SIGN: return isnan(x) ? x : double(x > 0.0LF) - double(x < 0.0LF);
    }
    return double(em_nan()); // others are declined by the host (no f64 transcendentals)
}

double d_binary(uint op, double a, double b)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_MAXIMUM: return (isnan(a) || a > b) ? a : b;
    case OP_MINIMUM: return (isnan(a) || a < b) ? a : b;
    }
    return double(em_nan());
}
#endif

const bool dense = (SC5 & 16u) != 0u;
const bool vec4_path = (SC5 & 32u) != 0u;
// Offsets of the operands, read once (dense: element i of operand x is at its offset + i).
uint g_off[4];
uint at(uint i, uint ndim, uint td)
{
    if (dense) return g_off[(td - A_TD_OUT) / EM_TD_WORDS] + i;
    return em_strided_index(i, ndim, A_SHAPE, td);
}

// Casts that need no arithmetic move bits with integer instructions (a device may flush
// f32 subnormals in float moves and compares): the same dtype is a copy, float -> bool
// tests the magnitude bits, float <-> float (f32, bf16, f16, f64) converts the bits.
uvec2 cast_value(uint from, uint to, uvec2 x)
{
    if (from == to) return x;
    bool ffrom = dt_is_float(from) || from == DT_F64;
    if (ffrom && to == DT_BOOL) return uvec2(em_raw_nonzero(from, x) ? 1u : 0u, 0u);
    if (ffrom && (dt_is_float(to) || to == DT_F64)) {
        uint b = em_raw_f32b(from, x);
        if (to == DT_F32) return uvec2(b, 0u);
        if (to == DT_BF16) return uvec2(em_f32b_to_bf16(b), 0u);
        if (to == DT_F16) return uvec2(em_f32b_to_f16(b), 0u);
#ifdef EM_WIDE
        return em_f32b_to_f64b(b); // to f64 (from f64 is the copy above)
#endif
    }
    if (dt_is_float(from)) return f_to_raw(to, raw_to_f(from, x));
#ifdef EM_WIDE
    if (from == DT_F64) return d_to_raw(to, raw_to_d(from, x));
#endif
    return i_to_raw(to, raw_to_i(from, x));
}

bool has_two(uint op, uint n_in)
{
    return ((op >= OP_ADD && op <= OP_GE) || op == OP_RELU_BACKWARD) && n_in >= 2u;
}

// The float-class arithmetic (not comparisons): a = in0, b = in1 or the scalar.
float f_compute(uint op, float a, float b)
{
    if (op == OP_AXPY) return a + argf(8u) * b;
    if (op >= OP_ADD && op <= OP_MINIMUM) return f_binary(op, a, b);
    if (op == OP_RELU_BACKWARD) { // a = g, b = y: y > 0 ? g : 0, tested on the bits
        uint u = floatBitsToUint(b);
        return (u != 0u && u <= 0x7f800000u) ? a : 0.0;
    }
    if (op == OP_CLAMP) return em_clamp_f(a, argf(8u), argf(10u)); // NaN stays NaN
    return f_unary(op, a);
}

// Element i of the output (any layout; the dense one when SC5 & 16).
void elem(uint i, uint ndim)
{
    const uint op = SC0, dto = SC1, dt0 = SC2, dt1 = SC3, n_in = SC5 & 15u;
    const uint eso = dt_size(dto), es0 = dt_size(dt0);
    uint o = at(i, ndim, A_TD_OUT);
    if (op == OP_FILL) { raw_st_b0(eso, o, arg2(8u)); return; }
    uvec2 x0 = raw_ld_b1(es0, at(i, ndim, A_TD_IN0));
    if (op == OP_COPY) { raw_st_b0(eso, o, x0); return; }
    if (op == OP_CAST) { raw_st_b0(eso, o, cast_value(dt0, dto, x0)); return; }
    if (op == OP_WHERE) { // out = in2 ? in0 : in1
        uint c = raw_ld_b3(1u, at(i, ndim, A_TD_IN2)).x;
        if (c == 0u) x0 = raw_ld_b2(es0, at(i, ndim, A_TD_IN1));
        raw_st_b0(eso, o, x0);
        return;
    }
    if (op == OP_MASKED_FILL) { // out = in1 ? value : in0
        uint m = raw_ld_b2(1u, at(i, ndim, A_TD_IN1)).x;
        raw_st_b0(eso, o, m != 0u ? arg2(8u) : x0);
        return;
    }
    bool two = has_two(op, n_in);
    uvec2 x1 = two ? raw_ld_b2(dt_size(dt1), at(i, ndim, A_TD_IN1)) : uvec2(0u);
    bool is_cmp = op >= OP_EQ && op <= OP_GE;
    if (dt_is_float(dt0)) {
        float a = raw_to_f(dt0, x0);
        float b = two ? raw_to_f(dt0, x1) : argf(8u);
        if (is_cmp) {
            int c = (isnan(a) || isnan(b)) ? 2 : a < b ? -1 : a > b ? 1 : 0;
            raw_st_b0(1u, o, uvec2(compare_op(op, c) ? 1u : 0u, 0u));
            return;
        }
        raw_st_b0(eso, o, f_to_raw(dto, f_compute(op, a, b)));
#ifdef EM_WIDE
    } else if (dt0 == DT_F64) {
        double a = raw_to_d(dt0, x0), r;
        double b = two ? raw_to_d(dt0, x1) : d_scalar(8u);
        if (is_cmp) {
            int c = (isnan(a) || isnan(b)) ? 2 : a < b ? -1 : a > b ? 1 : 0;
            raw_st_b0(1u, o, uvec2(compare_op(op, c) ? 1u : 0u, 0u));
            return;
        }
        if (op == OP_AXPY) {
            precise double t = d_scalar(8u) * b;
            r = a + t;
        } else if (op >= OP_ADD && op <= OP_MINIMUM) r = d_binary(op, a, b);
        else if (op == OP_RELU_BACKWARD) r = b > 0.0LF ? a : 0.0LF;
        else if (op == OP_CLAMP) {
            double lo = d_scalar(8u), hi = d_scalar(10u);
            r = a;
            if (!isnan(a)) { // explicit: NaN stays NaN (no fmax/fmin folding)
                r = (!isnan(lo) && a < lo) ? lo : a;
                r = (!isnan(hi) && r > hi) ? hi : r;
            }
        } else r = d_unary(op, a);
        raw_st_b0(eso, o, d_to_raw(dto, r));
#endif
    } else {
        ITYPE a = raw_to_i(dt0, x0), r;
        ITYPE b = two ? raw_to_i(dt0, x1) : i_scalar(8u);
        if (is_cmp) {
            int c = a < b ? -1 : a > b ? 1 : 0;
            raw_st_b0(1u, o, uvec2(compare_op(op, c) ? 1u : 0u, 0u));
            return;
        }
        if (op >= OP_ADD && op <= OP_MINIMUM) r = i_binary(op, a, b);
        else if (op == OP_CLAMP) {
            ITYPE lo = i_scalar(8u), hi = i_scalar(10u);
            r = a < lo ? lo : a;
            r = r > hi ? hi : r;
        } else r = i_unary(op, a);
        raw_st_b0(eso, o, i_to_raw(dto, r));
    }
}

// 16-byte views of the data buffers for the vec4 path (aliases of b0..b2).
layout(std430, set = 0, binding = 1) buffer V0 { uvec4 v0[]; };
layout(std430, set = 0, binding = 2) readonly buffer V1 { uvec4 v1[]; };
layout(std430, set = 0, binding = 3) readonly buffer V2 { uvec4 v2[]; };

// Group q of 4 elements of the vec4 path (FILL and COPY of 4-byte dtypes, f32 arithmetic);
// vo, vi0, vi1: the operands' first aligned group.
void elem4(uint q, uint vo, uint vi0, uint vi1)
{
    const uint op = SC0, n_in = SC5 & 15u;
    if (op == OP_FILL) { v0[vo + q] = uvec4(arg(8u)); return; }
    if (op == OP_COPY) { v0[vo + q] = v1[vi0 + q]; return; }
    vec4 a = uintBitsToFloat(v1[vi0 + q]);
    vec4 b = has_two(op, n_in) ? uintBitsToFloat(v2[vi1 + q]) : vec4(argf(8u));
    vec4 r;
    [[unroll]] for (int c = 0; c < 4; c++) r[c] = f_compute(op, a[c], b[c]);
    v0[vo + q] = floatBitsToUint(r);
}

void main()
{
    uint ndim = arg(1u), numel = arg(2u);
    g_off[0] = arg(A_TD_OUT);
    g_off[1] = arg(A_TD_IN0);
    g_off[2] = arg(A_TD_IN1);
    g_off[3] = arg(A_TD_IN2);
    uint stride = gl_NumWorkGroups.x * 256u, gid = gl_GlobalInvocationID.x;
    uint first = gid;
    if (vec4_path) {
        // every operand has the same offset modulo 4: `head` scalar elements, `nv`
        // aligned groups of 4, then the scalar tail; the loop below does the scalars
        uint head = arg(A_HEAD), nv = arg(A_NVEC), tail0 = head + 4u * nv;
        uint vo = (g_off[0] + head) >> 2u, vi0 = (g_off[1] + head) >> 2u;
        uint vi1 = (g_off[2] + head) >> 2u;
        for (uint q = gid; q < nv; q += stride) elem4(q, vo, vi0, vi1);
        first = gid < head ? gid : gid - head < numel - tail0 ? tail0 + gid - head : numel;
        stride = numel; // one scalar element at most (numel < 2^31: no wrap)
    }
    // one copy of elem() in the SPIR-V keeps the driver's pipeline compiles short
    for (uint i = first; i < numel; i += stride) elem(i, ndim);
}
