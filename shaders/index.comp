#version 450
// index.comp — data movement by position: index validation, GATHER (also INDEX_SELECT,
// whose index operand has stride 0 outside dim), SCATTER_ADD and ONE_HOT. Elements move
// as raw bits by size (every dtype, no 64-bit types needed). SCATTER_ADD runs one
// invocation per line along dim (every other coordinate fixed): only elements of the
// same line can meet in the destination, so each line adds its elements serially, in
// index order, with plain loads and stores: no atomics, deterministic, and the same
// order of additions as the CPU backend. i64 adds as word pairs with a carry; f64 needs
// the -DEM_WIDE build.
//
// Indices are i32 or i64 (read as word pairs: an i64 index is valid only if its high
// word is 0 and its low word < limit). Validation writes the smallest row-major
// position of a bad index with atomicMin into b0[0] (the host pre-sets 0xffffffff and
// reads it back before running the op, so a bad index never writes anything).
//
// Specialization constants: SC0 mode, SC1 element dtype, SC2 index dtype (also in the
// argument words).
// Arguments (words, see backends/vulkan/vk_internal.h: IX_*):
//   0 mode (IX_MODE_*), 1 ndim (of the iteration shape), 2 numel, 3 element dtype,
//   4 index dtype, 5 limit (size of the indexed dim; one_hot: the class count C, the
//   last dim of the iteration shape), 6 stride along dim (of t for gather, of out for
//   scatter_add),
//   8..15 iteration shape,
//   16 out tdesc, 25 index tdesc, 34 src tdesc (offset + 8 strides each; the indexed
//   operand's stride along dim is 0 in its tdesc),
//   43 scatter_add: line length, 44 index stride along dim, 45 src stride along dim
//   (the iteration shape has 1 along dim)
// Buffers: b0 = out (validate: the result word), b1 = index, b2 = src/t.
#include "common.glsl"

layout(local_size_x = 256) in;

#define MODE_VALIDATE 0u
#define MODE_GATHER 1u
#define MODE_SCATTER_ADD 2u
#define MODE_ONE_HOT 3u

#define A_SHAPE 8u
#define A_TD_OUT 16u
#define A_TD_IDX 25u
#define A_TD_SRC 34u

// Index value at element i of b1, or 0xffffffff when out of [0, limit).
uint load_index(uint idt, uint i, uint limit)
{
    uint v, hi = 0u;
    if (idt == DT_I64) {
        v = b1[2u * i];
        hi = b1[2u * i + 1u];
    } else {
        v = b1[i];
        if (int(v) < 0) hi = 1u;
    }
    return (hi != 0u || v >= limit) ? 0xffffffffu : v;
}

// out[o] += src (in the element dtype's arithmetic, as the CPU backend: integers wrap,
// bool add is or, f16/bf16 add in f32 and round).
void add_elem(uint dt, uint o, uvec2 src)
{
    uint es = dt_size(dt);
    uvec2 cur = raw_ld_b0(es, o);
    uvec2 r;
    if (dt_is_float(dt)) r = f_to_raw(dt, raw_to_f(dt, cur) + raw_to_f(dt, src));
    else if (dt == DT_I64) {
        uint lo = cur.x + src.x;
        r = uvec2(lo, cur.y + src.y + (lo < cur.x ? 1u : 0u));
    } else if (dt == DT_BOOL) r = uvec2((cur.x | src.x) != 0u ? 1u : 0u, 0u);
#ifdef EM_WIDE
    else if (dt == DT_F64) r = unpackDouble2x32(packDouble2x32(cur) + packDouble2x32(src));
#endif
    else r = uvec2(cur.x + src.x, 0u); // i32 wraps
    raw_st_b0(es, o, r);
}

void main()
{
    const uint mode = SC0, dt = SC1, idt = SC2, es = dt_size(dt);
    uint ndim = arg(1u), numel = arg(2u), limit = arg(5u), dstride = arg(6u);
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < numel; i += stride) {
        uint ix = em_strided_index(i, ndim, A_SHAPE, A_TD_IDX);
        if (mode == MODE_SCATTER_ADD) { // i: a line along dim
            uint o = em_strided_index(i, ndim, A_SHAPE, A_TD_OUT);
            uint s = em_strided_index(i, ndim, A_SHAPE, A_TD_SRC);
            uint len = arg(43u), istr = arg(44u), sstr = arg(45u);
            for (uint j = 0u; j < len; j++) {
                uint k = load_index(idt, ix + j * istr, limit);
                if (k != 0xffffffffu) add_elem(dt, o + k * dstride, raw_ld_b2(es, s + j * sstr));
            }
            continue;
        }
        uint k = load_index(idt, ix, limit);
        if (mode == MODE_VALIDATE) {
            if (k == 0xffffffffu) atomicMin(b0[0], i);
            continue;
        }
        if (k == 0xffffffffu) continue; // validated before; never write out of range
        if (mode == MODE_GATHER) {
            uint s = em_strided_index(i, ndim, A_SHAPE, A_TD_SRC) + k * dstride;
            raw_st_b0(es, em_strided_index(i, ndim, A_SHAPE, A_TD_OUT), raw_ld_b2(es, s));
        } else { // one_hot: over out's shape [..., C]; the index has stride 0 along C
            uint o = em_strided_index(i, ndim, A_SHAPE, A_TD_OUT);
            b0[2u * o] = (i % limit) == k ? 1u : 0u;
            b0[2u * o + 1u] = 0u;
        }
    }
}
