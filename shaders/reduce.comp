#version 450
// reduce.comp — reductions over the dims of a reduce mask (keepdim output): the kinds
// SUM, MAX, MIN, ARGMAX, ARGMIN, SUMSQ (sum of (x - center)^2) and SUMEXP (sum of
// exp(x - center)), with a finish step that makes SUM, MEAN, MAX, MIN, ARGMAX, ARGMIN,
// VAR, STD and LOGSUMEXP (the host runs VAR/STD and LOGSUMEXP as two dispatches: the
// mean resp. max into a center buffer first).
//
// One workgroup per (output element, part), grid-stride over those; its 256 threads
// stride over the part's slice of the reduced elements and combine in shared memory.
// Float-class inputs accumulate in f32 (Kahan-compensated sums), f64 in double and
// integers in int64 (wide build). NaN propagates through max/min; argmax/argmin take
// the first occurrence in the row-major order of the reduced dims, NaN counting as the
// extreme. Slices keep every invocation under ~40k loop iterations in all: lavapipe
// (gallivm) silently stops an invocation's loops after 65535 iterations in total.
//
// Modes: 0 = read the input, write the final value; 1 = read the input, write a partial
// (two words: float value bits, index) to scratch[(out index) * parts + part]; 2 = read
// such partials (the reduced "dim" is the part) and write the final value.
//
// Specialization constants: SC0 kind, SC1 finish op, SC2 in dtype, SC3 out dtype,
// SC4 mode, SC5 has_center (the same values are in the argument words).
// Arguments (words, see backends/vulkan/vk_internal.h: RD_*):
//   0 kind, 1 finish op (em_op id), 2 n_out, 3 n_red (elements per output), 4 nk,
//   5 nr, 6 in offset, 7 out offset, 8 parts, 9 slice, 10 in dtype, 11 out dtype,
//   12 mode, 13 n_total (reduced elements behind each output, for the finish),
//   14 flag (var correction), 15 has_center (center buffer: one f32 per output index,
//   f64 for f64 input),
//   16 kept shape[8], 24 kept in-strides[8], 32 kept out-strides[8],
//   40 reduced shape[8], 48 reduced in-strides[8]
// Buffers: b0 = out (or scratch), b1 = in (or scratch), b2 = center.
#include "common.glsl"

layout(local_size_x = 256) in;

#define K_SUM 0u
#define K_MAX 1u
#define K_MIN 2u
#define K_ARGMAX 3u
#define K_ARGMIN 4u
#define K_SUMSQ 5u
#define K_SUMEXP 6u

#define OP_SUM 80u
#define OP_MEAN 81u
#define OP_VAR 86u
#define OP_STD 87u
#define OP_LOGSUMEXP 88u

shared float s_f[256];
shared uint s_idx[256];
#ifdef EM_WIDE
shared double s_d[256];
shared int64_t s_i[256];
#endif

bool is_sum(uint k) { return k == K_SUM || k == K_SUMSQ || k == K_SUMEXP; }
bool is_arg(uint k) { return k == K_ARGMAX || k == K_ARGMIN; }
bool wants_max(uint k) { return k == K_MAX || k == K_ARGMAX; }

// Does candidate (v, vi) replace (a, ai)? For max/min the index is ignored.
bool f_better(uint kind, float v, uint vi, float a, uint ai)
{
    if (isnan(a)) return isnan(v) && vi < ai;
    if (isnan(v)) return true;
    if (wants_max(kind) ? v > a : v < a) return true;
    return v == a && vi < ai;
}

void main()
{
    const uint kind = SC0, fin = SC1, dti = SC2, dto = SC3, mode = SC4;
    const bool has_center = SC5 != 0u;
    uint n_out = arg(2u), n_red = arg(3u), nk = arg(4u);
    uint nr = arg(5u), parts = arg(8u), slice = arg(9u), n_total = arg(13u);
    uint esi = dt_size(dti), lid = gl_LocalInvocationID.x;
    bool fcls = mode == 2u || dt_is_float(dti);
#ifdef EM_WIDE
    bool dcls = mode != 2u && dti == DT_F64;
#else
    bool dcls = false;
#endif
    if (dcls) fcls = false;
    for (uint w = gl_WorkGroupID.x; w < n_out * parts; w += gl_NumWorkGroups.x) {
        uint o = w / parts, part = w % parts;
        uint in_base = arg(6u), out_at = arg(7u), rem = o;
        for (int d = int(nk) - 1; d >= 0; d--) {
            uint n = arg(16u + uint(d)), i = rem % n;
            rem /= n;
            in_base += i * arg(24u + uint(d));
            out_at += i * arg(32u + uint(d));
        }
        // center: one f32 per output (f64 for f64 input), dense by output index
        float center = has_center && !dcls ? uintBitsToFloat(b2[o]) : 0.0;
        if (kind == K_SUMEXP && isinf(center)) center = 0.0;
#ifdef EM_WIDE
        double centerd = has_center && dcls ? packDouble2x32(uvec2(b2[2u * o], b2[2u * o + 1u]))
                                                : 0.0LF;
#endif
        // per-thread state
        precise float accf = 0.0, comp = 0.0;
        uint idx = 0xffffffffu;
        if (kind == K_MAX || kind == K_ARGMAX) accf = uintBitsToFloat(0xff800000u);
        if (kind == K_MIN || kind == K_ARGMIN) accf = uintBitsToFloat(0x7f800000u);
#ifdef EM_WIDE
        double accd = 0.0LF, compd = 0.0LF;
        int64_t acci = 0l;
        if (kind == K_MAX || kind == K_ARGMAX) { accd = double(accf); acci = int64_t(0x8000000000000000ul); }
        if (kind == K_MIN || kind == K_ARGMIN) { accd = double(accf); acci = 0x7fffffffffffffffl; }
#endif
        uint beg = part * slice, end = min(n_red, beg + slice);
        for (uint r = beg + lid; r < end; r += 256u) {
            uint off = in_base, rr = r;
            for (int d = int(nr) - 1; d >= 0; d--) {
                uint n = arg(40u + uint(d)), i = rr % n;
                rr /= n;
                off += i * arg(48u + uint(d));
            }
            if (mode == 2u) { // a partial from scratch: (value, index)
                float v = uintBitsToFloat(b1[2u * off]);
                uint vi = b1[2u * off + 1u];
                if (is_sum(kind)) {
                    precise float y = v - comp, t = accf + y;
                    comp = (t - accf) - y;
                    accf = t;
                } else if (f_better(kind, v, is_arg(kind) ? vi : 0u, accf, is_arg(kind) ? idx : 0u)) {
                    accf = v;
                    idx = vi;
                }
                continue;
            }
            uvec2 x = raw_ld_b1(esi, off);
            if (fcls) {
                float v = raw_to_f(dti, x);
                if (kind == K_SUMSQ) { v -= center; v *= v; }
                else if (kind == K_SUMEXP) v = exp(v - center);
                if (is_sum(kind)) {
                    precise float y = v - comp, t = accf + y;
                    comp = (t - accf) - y;
                    accf = t;
                } else if (idx == 0xffffffffu || f_better(kind, v, r, accf, idx)) {
                    accf = v;
                    idx = r;
                }
#ifdef EM_WIDE
            } else if (dcls) {
                double v = raw_to_d(dti, x);
                if (kind == K_SUMSQ) { v -= centerd; v *= v; }
                if (is_sum(kind)) {
                    precise double y = v - compd, t = accd + y;
                    compd = (t - accd) - y;
                    accd = t;
                } else {
                    bool take = idx == 0xffffffffu;
                    if (!take && !isnan(accd))
                        take = isnan(v) || (wants_max(kind) ? v > accd : v < accd);
                    if (take) { accd = v; idx = r; }
                }
            } else {
                int64_t v = raw_to_i(dti, x);
                if (kind == K_SUM) acci += v;
                else if (idx == 0xffffffffu || (wants_max(kind) ? v > acci : v < acci)) {
                    acci = v;
                    idx = r;
                }
#endif
            }
        }
        // combine the 256 threads (thread order = index order within equal values)
        s_f[lid] = accf;
        s_idx[lid] = idx;
#ifdef EM_WIDE
        s_d[lid] = accd;
        s_i[lid] = acci;
#endif
        barrier();
        for (uint s = 128u; s > 0u; s >>= 1) {
            if (lid < s) {
                uint j = lid + s;
                if (fcls) {
                    if (is_sum(kind)) s_f[lid] += s_f[j];
                    else if (s_idx[j] != 0xffffffffu &&
                             (s_idx[lid] == 0xffffffffu ||
                              f_better(kind, s_f[j], is_arg(kind) ? s_idx[j] : 0u, s_f[lid],
                                       is_arg(kind) ? s_idx[lid] : 0u))) {
                        s_f[lid] = s_f[j];
                        s_idx[lid] = s_idx[j];
                    }
#ifdef EM_WIDE
                } else if (dcls) {
                    if (is_sum(kind)) s_d[lid] += s_d[j];
                    else if (s_idx[j] != 0xffffffffu) {
                        double a = s_d[lid], v = s_d[j];
                        bool take = s_idx[lid] == 0xffffffffu;
                        if (!take) {
                            if (isnan(a)) take = isnan(v) && s_idx[j] < s_idx[lid];
                            else take = isnan(v) || (wants_max(kind) ? v > a : v < a) ||
                                        (v == a && s_idx[j] < s_idx[lid]);
                        }
                        if (take) { s_d[lid] = v; s_idx[lid] = s_idx[j]; }
                    }
                } else {
                    if (kind == K_SUM) s_i[lid] += s_i[j];
                    else if (s_idx[j] != 0xffffffffu) {
                        int64_t a = s_i[lid], v = s_i[j];
                        if (s_idx[lid] == 0xffffffffu || (wants_max(kind) ? v > a : v < a) ||
                            (v == a && s_idx[j] < s_idx[lid])) {
                            s_i[lid] = v;
                            s_idx[lid] = s_idx[j];
                        }
                    }
#endif
                }
            }
            barrier();
        }
        if (lid == 0u) {
            if (mode == 1u) { // partial: float value + index
                float v = s_f[0];
                b0[2u * (o * parts + part)] = floatBitsToUint(v);
                b0[2u * (o * parts + part) + 1u] = s_idx[0];
            } else if (is_arg(kind)) {
                b0[2u * out_at] = s_idx[0] == 0xffffffffu ? 0u : s_idx[0];
                b0[2u * out_at + 1u] = 0u;
            } else if (fcls) {
                float v = s_f[0];
                if (fin == OP_MEAN) v /= float(n_total);
                else if (fin == OP_VAR || fin == OP_STD) {
                    float den = float(int(n_total) - int(arg(14u)));
                    v = den > 0.0 ? v / den : v / 0.0;
                    if (fin == OP_STD) v = sqrt(v);
                } else if (fin == OP_LOGSUMEXP) v = center + log(v);
                raw_st_b0(dt_size(dto), out_at, f_to_raw(dto, v));
#ifdef EM_WIDE
            } else if (dcls) {
                double v = s_d[0];
                if (fin == OP_MEAN) v /= double(n_total);
                else if (fin == OP_VAR || fin == OP_STD) {
                    double den = double(int(n_total) - int(arg(14u)));
                    v = den > 0.0LF ? v / den : v / 0.0LF;
                    if (fin == OP_STD) v = sqrt(v);
                }
                raw_st_b0(8u, out_at, d_to_raw(dto, v));
            } else {
                raw_st_b0(dt_size(dto), out_at, i_to_raw(dto, s_i[0]));
#endif
            }
        }
        barrier(); // the shared arrays are reused by the next output
    }
}
