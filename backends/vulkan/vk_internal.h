/*
 * vk_internal.h — shared inside the Vulkan plugin (libember-vulkan.so).
 *
 * Files: vk_plugin.c (instance, physical devices, validation messenger, the
 * backend table, em_plugin_init), vk_device.c (logical device, sub-allocator,
 * staging, the argument ring, command recording and submission), vk_ops.c
 * (kernels and the registry), vk_shaders.c (SPIR-V words generated at build
 * time from shaders/NAME.comp into the build folder).
 *
 * Not for: shader source (shaders/), the ABI (api/ember_plugin.h).
 */
#ifndef EMBER_VK_INTERNAL_H
#define EMBER_VK_INTERNAL_H

#include "ember_plugin.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#define VK_PLUGIN_VERSION "0.1.0"

/* Shaders (index into vk_shader_words / the pipeline cache). */
enum { VK_SH_ELEMENTWISE = 0, VK_SH_REDUCE_SUM, VK_SH_MATMUL, VK_SH_COUNT };
typedef struct vk_shader_code {
    const char *name;
    const uint32_t *words;
    size_t bytes;
} vk_shader_code;
extern const vk_shader_code vk_shaders[VK_SH_COUNT];

/* Binding numbers: mirror shaders/common.glsl. */
#define VK_BIND_ARGS 0
#define VK_BIND_DATA0 1
#define VK_N_BINDINGS 4

/* Sizes. Blocks are carved by first fit; the argument ring holds the words
 * of every dispatch of one batch; a batch is submitted when it reaches
 * VK_BATCH_MAX_CMDS commands or runs out of ring, staging or descriptor sets. */
#define VK_BLOCK_BYTES ((VkDeviceSize)64 << 20)
#define VK_STAGING_BYTES ((VkDeviceSize)16 << 20)
#define VK_ARGS_WORDS (64u * 1024u)
#define VK_DISPATCH_ARGS_MAX 64u /* words one dispatch may write */
#define VK_BATCH_MAX_CMDS 256u
#define VK_MAX_SETS VK_BATCH_MAX_CMDS

typedef struct vk_range {
    VkDeviceSize off, size;
    struct vk_range *next;
} vk_range;

typedef struct vk_block {
    VkDeviceMemory mem;
    VkBuffer buf;
    VkDeviceSize size;
    VkDeviceSize used;
    vk_range *free_list; /* sorted by offset, coalesced */
    struct vk_block *next;
} vk_block;

/* The buffer handle the core sees: a range of a block. */
typedef struct vk_buffer {
    vk_block *block;
    VkDeviceSize offset; /* bytes into block->buf, aligned */
    VkDeviceSize size;   /* aligned size (>= requested) */
    struct vk_buffer *next_deferred;
} vk_buffer;

typedef struct vk_device {
    int index;
    VkPhysicalDevice phys;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    VkDeviceSize align;     /* offset alignment of sub-allocations */
    VkDeviceSize max_range; /* maxStorageBufferRange */

    int ready;      /* the logical device exists (created on first use) */
    int lost;       /* VK_ERROR_DEVICE_LOST seen: every call fails */
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    uint32_t dev_type, host_type; /* memory type indices */

    pthread_mutex_t lock; /* blocks and the deferred-free list (buffer_free: any thread) */
    vk_block *blocks;
    vk_buffer *deferred;
    VkDeviceSize live_bytes;

    VkBuffer stage_buf;
    VkDeviceMemory stage_mem;
    unsigned char *stage_map;
    VkDeviceSize stage_used;

    VkBuffer args_buf;
    VkDeviceMemory args_mem;
    uint32_t *args_map;
    uint32_t args_used;

    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    int recording;
    uint32_t n_cmds;

    VkDescriptorPool desc_pool;
    uint32_t sets_used;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipe_layout;
    VkPipeline pipes[VK_SH_COUNT];
} vk_device;

/* vk_plugin.c */
em_status vk_fail(em_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vk_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *vk_result_name(VkResult r);
/* Maps a failed VkResult to a status with a message naming the call. */
em_status vk_fail_result(vk_device *d, VkResult r, const char *call);
/* EM_ERR_BACKEND (with the first message) if the validation layer reported
 * anything since the last check; clears the record. */
em_status vk_check_validation(void);
extern VkInstance vk_instance;

#define VK_CHECK(d, call)                                                                \
    do {                                                                                 \
        VkResult vk_r_ = (call);                                                         \
        if (vk_r_ != VK_SUCCESS) return vk_fail_result((d), vk_r_, #call);               \
    } while (0)

/* vk_device.c */
em_status vk_device_ready(vk_device *d); /* creates the logical device on first use */
void vk_device_destroy(vk_device *d);
em_status vk_alloc(vk_device *d, size_t bytes, vk_buffer **out);
void vk_free_deferred(vk_device *d, vk_buffer *b);
em_status vk_upload(vk_device *d, vk_buffer *b, size_t off, const void *src, size_t bytes);
em_status vk_download(vk_device *d, vk_buffer *b, size_t off, void *dst, size_t bytes);
em_status vk_copy(vk_device *d, vk_buffer *src, size_t soff, vk_buffer *dst, size_t doff,
                  size_t bytes);
em_status vk_flush(vk_device *d); /* submit the batch and wait for it */
/* Records one dispatch of shader sh: args (n_args words) are copied into the
 * ring; bufs[0..2] bind to bindings 1..3 (NULL: unused). */
em_status vk_dispatch(vk_device *d, int sh, const uint32_t *args, uint32_t n_args,
                      vk_buffer *const bufs[3], uint32_t gx, uint32_t gy, uint32_t gz);

/* vk_ops.c */
extern const em_kernel_entry vk_kernels[];
extern const size_t vk_kernel_count;
int vk_supports(void *dev, const em_op_call *call);

#endif
