#version 450
// reduce_sum.comp — SUM of f32 over the dims of a reduce mask (keepdim output).
// One workgroup per (output element, slice of `slice` reduced elements), grid-stride
// over those; its 256 threads stride over the slice (Kahan-compensated f32) and combine
// in shared memory. With parts > 1 the host writes parts partial sums per output to a
// scratch buffer (output index * parts + part) and sums them in a second dispatch.
// Slices keep every invocation under ~10k loop iterations in all: lavapipe (gallivm)
// silently stops an invocation's loops after 65535 iterations in total.
//
// Arguments (words, see vk_ops.c: RS_*):
//   0 n_out, 1 n_red (elements per output), 2 nk (kept dims), 3 nr (reduced dims),
//   4 in offset, 5 out offset, 6 parts, 7 slice (reduced elements per part),
//   8 kept shape[8], 16 kept in-strides[8], 24 kept out-strides[8],
//   32 reduced shape[8], 40 reduced in-strides[8]
// Buffers: b0 = out, b1 = in.
#include "common.glsl"

layout(local_size_x = 256) in;
shared float partial[256];

void main()
{
    uint n_out = arg(0u), n_red = arg(1u), nk = arg(2u), nr = arg(3u);
    uint parts = arg(6u), slice = arg(7u);
    uint lid = gl_LocalInvocationID.x;
    for (uint w = gl_WorkGroupID.x; w < n_out * parts; w += gl_NumWorkGroups.x) {
        uint o = w / parts, part = w % parts;
        uint in_base = arg(4u), out_at = arg(5u) + part, rem = o;
        for (int d = int(nk) - 1; d >= 0; d--) {
            uint n = arg(8u + uint(d)), i = rem % n;
            rem /= n;
            in_base += i * arg(16u + uint(d));
            out_at += i * arg(24u + uint(d));
        }
        // Kahan-compensated per-thread sums over this workgroup's slice.
        precise float acc = 0.0, comp = 0.0;
        uint end = min(n_red - part * slice, slice) + part * slice;
        for (uint r = part * slice + lid; r < end; r += 256u) {
            uint off = in_base, rr = r;
            for (int d = int(nr) - 1; d >= 0; d--) {
                uint n = arg(32u + uint(d)), i = rr % n;
                rr /= n;
                off += i * arg(40u + uint(d));
            }
            precise float y = uintBitsToFloat(b1[off]) - comp;
            precise float t = acc + y;
            comp = (t - acc) - y;
            acc = t;
        }
        partial[lid] = acc;
        barrier();
        for (uint s = 128u; s > 0u; s >>= 1) {
            if (lid < s) partial[lid] += partial[lid + s];
            barrier();
        }
        if (lid == 0u) b0[out_at] = floatBitsToUint(partial[0]);
        barrier(); // partial[] is reused by the next output
    }
}
