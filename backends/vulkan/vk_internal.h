/*
 * vk_internal.h — shared inside the Vulkan plugin (libember-vulkan.so).
 *
 * Files: vk_plugin.c (instance, physical devices, validation messenger, the
 * backend table, em_plugin_init), vk_device.c (logical device, sub-allocator,
 * staging, the argument ring, command recording and submission), vk_ops.c
 * (shared kernel helpers, the registry, supports()), vk_ops_elementwise.c,
 * vk_ops_reduce.c (reductions, softmax), vk_ops_linalg.c (matmul, linear,
 * linear_act; EMBER_VULKAN_MATMUL=generic|tile64|tile128 forces a shader),
 * vk_ops_index.c (cat, index_select, gather, scatter_add, one_hot),
 * vk_ops_generate.c (arange, linspace, Philox random ops), vk_shaders.c
 * (SPIR-V words generated at build time from shaders/NAME.comp into the
 * build folder), vk_spirv.c (float controls: the execution modes added to
 * each module where the device supports them).
 *
 * The argument-word layouts below (EW_*, RD_*, SM_*, MM_*, IX_*, GN_*) are
 * the host half of the layouts documented at the top of each shader; the
 * bindings and the tensor descriptor (VK_TD_WORDS) mirror shaders/common.glsl.
 *
 * Not for: shader source (shaders/), the ABI (api/ember_plugin.h).
 */
#ifndef EMBER_VK_INTERNAL_H
#define EMBER_VK_INTERNAL_H

#include "ember_plugin.h"
#include "ember_plugin_util.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#define VK_PLUGIN_VERSION "0.1.0"

/* Shaders (index into vk_shaders / the pipeline cache). *_WIDE: built with
 * -DEM_WIDE (int64 and double: needs shaderInt64 + shaderFloat64); those
 * pipelines exist only on devices with both features (vk_device.wide). */
enum {
    VK_SH_ELEMENTWISE = 0,
    VK_SH_ELEMENTWISE_WIDE,
    VK_SH_REDUCE,
    VK_SH_REDUCE_WIDE,
    VK_SH_SOFTMAX,
    VK_SH_MATMUL,
    VK_SH_MATMUL_F32,       /* matmul_f32.comp: 128x128 tiles */
    VK_SH_MATMUL_F32_SMALL, /* matmul_f32.comp -DEM_MM_SMALL: 64x64 tiles */
    VK_SH_INDEX,
    VK_SH_INDEX_WIDE,
    VK_SH_GENERATE_WIDE,
    VK_SH_COUNT
};
typedef struct vk_shader_code {
    const char *name;
    const uint32_t *words;
    size_t bytes;
    int wide; /* needs shaderInt64 + shaderFloat64 */
} vk_shader_code;
extern const vk_shader_code vk_shaders[VK_SH_COUNT];

/* Binding numbers: mirror shaders/common.glsl. */
#define VK_BIND_ARGS 0
#define VK_BIND_DATA0 1
#define VK_N_DATA 4 /* b0..b3 */
#define VK_N_BINDINGS (1 + VK_N_DATA)
#define VK_TD_WORDS 9 /* tensor descriptor: offset + 8 strides (elements) */

/* ---------------- argument-word layouts (see each shader's header) ------- */
/* elementwise.comp */
enum { EW_OP = 0, EW_NDIM = 1, EW_NUMEL = 2, EW_NIN = 3, EW_DT_OUT = 4, EW_DT_IN0 = 5,
       EW_S0 = 8, EW_S1 = 10, EW_FLAG = 12, EW_HEAD = 13, EW_NVEC = 14, EW_SHAPE = 16,
       EW_TD_OUT = 24, EW_TD_IN0 = 33, EW_WORDS = 60 };
/* reduce.comp */
enum { RD_KIND = 0, RD_FIN = 1, RD_NOUT = 2, RD_NRED = 3, RD_NK = 4, RD_NR = 5, RD_IN_OFF = 6,
       RD_OUT_OFF = 7, RD_PARTS = 8, RD_SLICE = 9, RD_DT_IN = 10, RD_DT_OUT = 11, RD_MODE = 12,
       RD_NTOTAL = 13, RD_FLAG = 14, RD_HAS_CENTER = 15, RD_KSHAPE = 16, RD_KIN = 24,
       RD_KOUT = 32, RD_RSHAPE = 40, RD_RIN = 48, RD_WORDS = 56 };
enum { RD_K_SUM = 0, RD_K_MAX, RD_K_MIN, RD_K_ARGMAX, RD_K_ARGMIN, RD_K_SUMSQ, RD_K_SUMEXP };
enum { RD_MODE_FINAL = 0, RD_MODE_PARTIAL = 1, RD_MODE_COMBINE = 2 };
/* softmax.comp */
enum { SM_LOG = 0, SM_NROWS = 1, SM_LEN = 2, SM_NOUTER = 3, SM_X_OFF = 4, SM_O_OFF = 5,
       SM_XS = 6, SM_OS = 7, SM_DT = 8, SM_OSHAPE = 16, SM_OXS = 24, SM_OOS = 32, SM_WORDS = 40 };
/* matmul.comp and matmul_f32.comp */
enum { MM_BATCH = 0, MM_M = 1, MM_N = 2, MM_K = 3, MM_A = 4, MM_B = 8, MM_C = 12, MM_DT = 16,
       MM_HAS_BIAS = 17, MM_BIAS = 18, MM_WORDS = 21 };
#define MM_TILE 16u
/* index.comp */
enum { IX_MODE = 0, IX_NDIM = 1, IX_NUMEL = 2, IX_DT = 3, IX_IDT = 4, IX_LIMIT = 5,
       IX_DSTRIDE = 6, IX_SHAPE = 8, IX_TD_OUT = 16, IX_TD_IDX = 25, IX_TD_SRC = 34,
       IX_LINE = 43, IX_LINE_ISTRIDE = 44, IX_LINE_SSTRIDE = 45, IX_WORDS = 46 };
enum { IX_MODE_VALIDATE = 0, IX_MODE_GATHER, IX_MODE_SCATTER_ADD, IX_MODE_ONE_HOT };
/* generate.comp */
enum { GN_OP = 0, GN_NDIM = 1, GN_NUMEL = 2, GN_DT = 3, GN_A = 4, GN_B = 6, GN_STEP = 8,
       GN_SEED = 10, GN_OFFSET = 12, GN_LOW = 14, GN_SPAN = 16, GN_SHAPE = 20, GN_TD_OUT = 28,
       GN_WORDS = 37 };

/* Sizes. Blocks are carved by first fit; the argument ring holds the words
 * of every dispatch of one batch; a batch is submitted when it reaches
 * VK_BATCH_MAX_CMDS commands or runs out of ring, staging or descriptor sets. */
#define VK_BLOCK_BYTES ((VkDeviceSize)64 << 20)
#define VK_STAGING_BYTES ((VkDeviceSize)16 << 20)
#define VK_ARGS_WORDS (64u * 1024u)
#define VK_DISPATCH_ARGS_MAX 64u /* words one dispatch may write */
#define VK_BATCH_MAX_CMDS 256u
#define VK_MAX_SETS VK_BATCH_MAX_CMDS

/* Specialization constants (constant_id 0..VK_N_SPEC-1, see common.glsl):
 * what each shader compiles its op, dtypes and modes from. A pipeline is
 * (shader, spec values), created on first use and cached per device. */
#define VK_N_SPEC 6
#define VK_PIPE_SLOTS 4096u
typedef struct vk_pipe_entry {
    int sh;
    uint32_t spec[VK_N_SPEC];
    VkPipeline pipe;
} vk_pipe_entry;

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

    int selftest_done; /* EMBER_VULKAN_SELFTEST=invalid-call was acted on */
    int wide;       /* shaderInt64 + shaderFloat64 enabled: *_WIDE pipelines exist */
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
    VkShaderModule mods[VK_SH_COUNT];
    char fc_note[96]; /* vk_fc_describe of the modes the narrow modules got */
    struct vk_pipe_entry *pipes; /* VK_PIPE_SLOTS, allocated on first use */
    uint32_t n_pipes;

    struct vk_buffer *check; /* 256 bytes for index validation results */
} vk_device;

/* vk_spirv.c: float controls (SPIR-V execution modes added per device) */
#define VK_SPV_DENORM_PRESERVE 4459u
#define VK_SPV_SZ_INF_NAN_PRESERVE 4461u
#define VK_FC_MAX_MODES 4
typedef struct vk_fc_mode {
    uint32_t mode, width;
} vk_fc_mode;
/* The modes the device supports for a shader (wide: 64-bit floats too). */
int vk_fc_modes(VkPhysicalDevice phys, int wide, vk_fc_mode modes[VK_FC_MAX_MODES]);
int vk_fc_has(const vk_fc_mode *modes, int n, uint32_t mode, uint32_t width);
/* A malloc'd copy of the module with the capabilities and execution modes added;
 * NULL if the words are not a module it understands (or out of memory). */
uint32_t *vk_spirv_add_modes(const uint32_t *words, size_t n_words, const vk_fc_mode *modes,
                             int n_modes, size_t *out_words);
/* "float controls: NaN/inf/-0 preserved, f32 subnormals preserved|may flush" */
void vk_fc_describe(const vk_fc_mode *modes, int n, char *buf, size_t size);

/* vk_plugin.c */
em_status vk_fail(em_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vk_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *vk_result_name(VkResult r);
const char *vk_getenv(const char *name); /* host->getenv; NULL without a host */
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
/* Records one dispatch of shader sh specialised with spec (NULL: all 0):
 * args (n_args words) are copied into the ring; bufs[0..3] bind to bindings
 * 1..4 (NULL: unused). */
em_status vk_dispatch(vk_device *d, int sh, const uint32_t spec[VK_N_SPEC], const uint32_t *args,
                      uint32_t n_args, vk_buffer *const bufs[VK_N_DATA], uint32_t gx, uint32_t gy,
                      uint32_t gz);

/* vk_ops.c: helpers shared by the kernel files */
#define VK_WG 256u
uint64_t vk_numel(const em_tdesc *t);
size_t vk_dtype_size(int dt);
int vk_is_float(int dt);   /* f32, f16, bf16 (the f32 compute class) */
int vk_is_wide_dt(int dt); /* f64, i64 */
uint32_t vk_fbits(double v);
void vk_put_u64(uint32_t *a, int at, uint64_t v);
void vk_put_f64(uint32_t *a, int at, double v);
/* Offset and strides of t (ndim dims) into a[at .. at+VK_TD_WORDS). */
void vk_put_td(uint32_t *a, int at, const em_tdesc *t, int ndim);
uint32_t vk_groups_1d(const vk_device *d, uint64_t items, uint32_t per_group);
/* Checks the pending validation messages, makes the device ready, checks arity. */
em_status vk_enter(vk_device *d, const em_op_call *c, int min_in, int max_in);
/* st, or the validation layer's complaint about what was just recorded. */
em_status vk_finish(em_status st);
/* Runs COPY (same dtype) or CAST from src into dst (same shape) on the device. */
em_status vk_copy_desc(vk_device *d, const em_tdesc *dst, const em_tdesc *src);

/* kernels (vk_ops_*.c) */
em_status vk_k_elementwise(void *dev, const em_op_call *c);
em_status vk_k_reduce(void *dev, const em_op_call *c);
em_status vk_k_softmax(void *dev, const em_op_call *c);
em_status vk_k_matmul(void *dev, const em_op_call *c);
em_status vk_k_linear(void *dev, const em_op_call *c);
em_status vk_k_cat(void *dev, const em_op_call *c);
em_status vk_k_index(void *dev, const em_op_call *c); /* index_select, gather, scatter_add, one_hot */
em_status vk_k_generate(void *dev, const em_op_call *c);
/* supports() rules per family: 1 accept, 0 decline (the core falls back). */
int vk_elementwise_ok(const vk_device *d, const em_op_call *c);
int vk_reduce_ok(const vk_device *d, const em_op_call *c);
int vk_index_ok(const vk_device *d, const em_op_call *c);

/* vk_ops.c: the registry */
extern const em_kernel_entry vk_kernels[];
extern const size_t vk_kernel_count;
int vk_supports(void *dev, const em_op_call *call);

#endif
