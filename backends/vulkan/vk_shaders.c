/*
 * vk_shaders.c — the SPIR-V of shaders/NAME.comp, compiled at build time by
 * glslc -mfmt=num into <build>/backends/vulkan/spv/<name>.spv.inc (comma-
 * separated 32-bit words; see backends/vulkan/CMakeLists.txt, which also
 * builds the *_wide variants with -DEM_WIDE and matmul_f32_small with
 * -DEM_MM_SMALL) and included here. Nothing
 * generated is written into the source tree.
 */
#include "vk_internal.h"

static const uint32_t spv_elementwise[] = {
#include "elementwise.spv.inc"
};
static const uint32_t spv_elementwise_wide[] = {
#include "elementwise_wide.spv.inc"
};
static const uint32_t spv_reduce[] = {
#include "reduce.spv.inc"
};
static const uint32_t spv_reduce_wide[] = {
#include "reduce_wide.spv.inc"
};
static const uint32_t spv_softmax[] = {
#include "softmax.spv.inc"
};
static const uint32_t spv_matmul[] = {
#include "matmul.spv.inc"
};
static const uint32_t spv_matmul_f32[] = {
#include "matmul_f32.spv.inc"
};
static const uint32_t spv_matmul_f32_small[] = {
#include "matmul_f32_small.spv.inc"
};
static const uint32_t spv_index[] = {
#include "index.spv.inc"
};
static const uint32_t spv_index_wide[] = {
#include "index_wide.spv.inc"
};
static const uint32_t spv_generate_wide[] = {
#include "generate_wide.spv.inc"
};

const vk_shader_code vk_shaders[VK_SH_COUNT] = {
    [VK_SH_ELEMENTWISE] = {"elementwise", spv_elementwise, sizeof spv_elementwise, 0},
    [VK_SH_ELEMENTWISE_WIDE] = {"elementwise_wide", spv_elementwise_wide,
                                sizeof spv_elementwise_wide, 1},
    [VK_SH_REDUCE] = {"reduce", spv_reduce, sizeof spv_reduce, 0},
    [VK_SH_REDUCE_WIDE] = {"reduce_wide", spv_reduce_wide, sizeof spv_reduce_wide, 1},
    [VK_SH_SOFTMAX] = {"softmax", spv_softmax, sizeof spv_softmax, 0},
    [VK_SH_MATMUL] = {"matmul", spv_matmul, sizeof spv_matmul, 0},
    [VK_SH_MATMUL_F32] = {"matmul_f32", spv_matmul_f32, sizeof spv_matmul_f32, 0},
    [VK_SH_MATMUL_F32_SMALL] = {"matmul_f32_small", spv_matmul_f32_small,
                                sizeof spv_matmul_f32_small, 0},
    [VK_SH_INDEX] = {"index", spv_index, sizeof spv_index, 0},
    [VK_SH_INDEX_WIDE] = {"index_wide", spv_index_wide, sizeof spv_index_wide, 1},
    [VK_SH_GENERATE_WIDE] = {"generate_wide", spv_generate_wide, sizeof spv_generate_wide, 1},
};
