/*
 * vk_shaders.c — the SPIR-V of shaders/NAME.comp, compiled at build time by
 * glslc -mfmt=num into <build>/backends/vulkan/spv/<name>.spv.inc (comma-
 * separated 32-bit words; see backends/vulkan/CMakeLists.txt) and included
 * here. Nothing generated is written into the source tree.
 */
#include "vk_internal.h"

static const uint32_t spv_elementwise[] = {
#include "elementwise.spv.inc"
};
static const uint32_t spv_reduce_sum[] = {
#include "reduce_sum.spv.inc"
};
static const uint32_t spv_matmul[] = {
#include "matmul.spv.inc"
};

const vk_shader_code vk_shaders[VK_SH_COUNT] = {
    [VK_SH_ELEMENTWISE] = {"elementwise", spv_elementwise, sizeof spv_elementwise},
    [VK_SH_REDUCE_SUM] = {"reduce_sum", spv_reduce_sum, sizeof spv_reduce_sum},
    [VK_SH_MATMUL] = {"matmul", spv_matmul, sizeof spv_matmul},
};
