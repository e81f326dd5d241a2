// common.glsl — shared by every Ember compute shader (included with glslc -I shaders).
//
// Binding layout (one descriptor set layout and one pipeline layout for all shaders,
// see backends/vulkan/vk_internal.h, which mirrors these numbers):
//   binding 0: the argument ring (uint words written by the host per dispatch)
//   binding 1..3: data buffers, viewed as raw 32-bit words (uint); floats are read
//                 with uintBitsToFloat so one COPY shader moves any 4-byte dtype.
// Push constants: args_off = first word of this dispatch's arguments in binding 0.
//
// Tensor arguments ("tdesc", EM_VK_TD_WORDS = 9 words): offset, strides[8], all in
// elements; shapes are shared per dispatch (elementwise) or given per op. 32-bit
// indices suffice: a binding is at most maxStorageBufferRange bytes (the plugin
// refuses bigger tensors), so every element index fits in a uint.
#extension GL_GOOGLE_include_directive : enable

#define EM_MAX_DIMS 8

layout(push_constant) uniform Push { uint args_off; } pc;
layout(std430, set = 0, binding = 0) readonly buffer Args { uint args[]; };
layout(std430, set = 0, binding = 1) buffer Buf0 { uint b0[]; };
layout(std430, set = 0, binding = 2) buffer Buf1 { uint b1[]; };
layout(std430, set = 0, binding = 3) buffer Buf2 { uint b2[]; };

uint arg(uint i) { return args[pc.args_off + i]; }
float argf(uint i) { return uintBitsToFloat(args[pc.args_off + i]); }

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
