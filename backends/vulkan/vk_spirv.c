/*
 * vk_spirv.c — float controls for the shaders: which SPIR-V execution modes a
 * device supports (vk_fc_modes, from VkPhysicalDeviceFloatControlsProperties)
 * and adding them to a module's words (vk_spirv_add_modes).
 *
 * Why at run time: a module that declares a mode (and its capability) the
 * device lacks is invalid, so the modes must follow the device; and glslang
 * (GL_EXT_spirv_intrinsics' spirv_execution_mode) keeps one instance per mode,
 * so it cannot declare a mode for both 32- and 64-bit floats. The shaders are
 * compiled plain (SPIR-V 1.5, where these capabilities are core) and each module
 * gets, where the device reports them:
 *   SignedZeroInfNanPreserve 32 (and 64 in *_wide shaders): the compiler may not
 *     assume away NaN, infinities or -0.0 (no select folded into a NaN-dropping
 *     fmax; the shaders test NaN explicitly besides);
 *   DenormPreserve 32 (and 64): arithmetic keeps subnormals instead of flushing
 *     them (NVIDIA flushes f32 subnormals by default). Casts never depend on it
 *     (shaders/common.glsl converts bits with integer instructions).
 * DenormPreserve also follows denormBehaviorIndependence: with
 * VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_NONE every width must use the same
 * denormal mode, so none is declared; with 32_BIT_ONLY, 16- and 64-bit must
 * agree, so the 64-bit one is not declared.
 */
#include "vk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPV_MAGIC 0x07230203u
#define SPV_OP_CAPABILITY 17u
#define SPV_OP_ENTRY_POINT 15u
#define SPV_OP_EXECUTION_MODE 16u
#define SPV_OP_EXECUTION_MODE_ID 331u
#define SPV_OP_FUNCTION 54u
/* execution mode -> capability: DenormPreserve 4459 -> 4464, DenormFlushToZero
 * 4460 -> 4465, SignedZeroInfNanPreserve 4461 -> 4466 (always mode + 5) */
#define SPV_CAP_OF(mode) ((mode) + 5u)

int vk_fc_modes(VkPhysicalDevice phys, int wide, vk_fc_mode modes[VK_FC_MAX_MODES])
{
    VkPhysicalDeviceFloatControlsProperties fc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FLOAT_CONTROLS_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &fc};
    vkGetPhysicalDeviceProperties2(phys, &p2);
    int n = 0;
    if (fc.shaderSignedZeroInfNanPreserveFloat32)
        modes[n++] = (vk_fc_mode){VK_SPV_SZ_INF_NAN_PRESERVE, 32};
    if (wide && fc.shaderSignedZeroInfNanPreserveFloat64)
        modes[n++] = (vk_fc_mode){VK_SPV_SZ_INF_NAN_PRESERVE, 64};
    VkShaderFloatControlsIndependence ind = fc.denormBehaviorIndependence;
    if (ind != VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_NONE) {
        if (fc.shaderDenormPreserveFloat32)
            modes[n++] = (vk_fc_mode){VK_SPV_DENORM_PRESERVE, 32};
        if (wide && fc.shaderDenormPreserveFloat64 &&
            ind == VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_ALL)
            modes[n++] = (vk_fc_mode){VK_SPV_DENORM_PRESERVE, 64};
    }
    return n;
}

int vk_fc_has(const vk_fc_mode *modes, int n, uint32_t mode, uint32_t width)
{
    for (int i = 0; i < n; i++)
        if (modes[i].mode == mode && modes[i].width == width) return 1;
    return 0;
}

uint32_t *vk_spirv_add_modes(const uint32_t *w, size_t n, const vk_fc_mode *modes, int n_modes,
                             size_t *out_n)
{
    if (n < 5 || w[0] != SPV_MAGIC || w[1] < 0x00010400u) return NULL; /* needs SPIR-V 1.4+ */
    size_t cap_end = 0, ep_end = 0, mode_end = 0, i = 5;
    uint32_t entry = 0;
    int n_entries = 0;
    uint32_t have_caps[8];
    int n_have = 0;
    while (i < n) {
        uint32_t op = w[i] & 0xffffu, len = w[i] >> 16;
        if (len == 0 || i + len > n) return NULL;
        if (op == SPV_OP_FUNCTION) break; /* the module's header sections are done */
        if (op == SPV_OP_CAPABILITY && len == 2) {
            cap_end = i + len;
            if (n_have < 8) have_caps[n_have++] = w[i + 1];
        } else if (op == SPV_OP_ENTRY_POINT && len >= 3) {
            entry = w[i + 2];
            n_entries++;
            ep_end = i + len;
        } else if (op == SPV_OP_EXECUTION_MODE || op == SPV_OP_EXECUTION_MODE_ID) {
            mode_end = i + len;
        }
        i += len;
    }
    if (!cap_end || n_entries != 1) return NULL;
    if (!mode_end) mode_end = ep_end;
    uint32_t caps[VK_FC_MAX_MODES];
    int n_caps = 0;
    for (int m = 0; m < n_modes; m++) {
        uint32_t c = SPV_CAP_OF(modes[m].mode);
        int dup = 0;
        for (int k = 0; k < n_have; k++) dup |= have_caps[k] == c;
        for (int k = 0; k < n_caps; k++) dup |= caps[k] == c;
        if (!dup) caps[n_caps++] = c;
    }
    size_t total = n + 2 * (size_t)n_caps + 4 * (size_t)n_modes;
    uint32_t *o = malloc(total * sizeof *o);
    if (!o) return NULL;
    size_t k = 0;
    memcpy(o, w, cap_end * sizeof *o);
    k = cap_end;
    for (int c = 0; c < n_caps; c++) {
        o[k++] = (2u << 16) | SPV_OP_CAPABILITY;
        o[k++] = caps[c];
    }
    memcpy(o + k, w + cap_end, (mode_end - cap_end) * sizeof *o);
    k += mode_end - cap_end;
    for (int m = 0; m < n_modes; m++) {
        o[k++] = (4u << 16) | SPV_OP_EXECUTION_MODE;
        o[k++] = entry;
        o[k++] = modes[m].mode;
        o[k++] = modes[m].width;
    }
    memcpy(o + k, w + mode_end, (n - mode_end) * sizeof *o);
    k += n - mode_end;
    *out_n = k;
    return o;
}

void vk_fc_describe(const vk_fc_mode *modes, int n, char *buf, size_t size)
{
    int sz = vk_fc_has(modes, n, VK_SPV_SZ_INF_NAN_PRESERVE, 32);
    int dp = vk_fc_has(modes, n, VK_SPV_DENORM_PRESERVE, 32);
    snprintf(buf, size, "float controls: NaN/inf/-0 %s, f32 subnormals %s",
             sz ? "preserved" : "not guaranteed", dp ? "preserved" : "may flush");
}
