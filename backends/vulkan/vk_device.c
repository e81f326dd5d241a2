/*
 * vk_device.c — one Vulkan device: the logical device and its compute queue,
 * the sub-allocator, the staging buffer, the argument ring, and command
 * recording and submission.
 *
 * Memory: device-local VkDeviceMemory blocks of VK_BLOCK_BYTES (a tensor
 * bigger than that gets a block of its own size), each with ONE VkBuffer over
 * the whole block. A buffer handle is (block, offset, size), carved by first
 * fit from the block's sorted free list, aligned to max(256,
 * minStorageBufferOffsetAlignment) and coalesced on release. A tensor larger
 * than maxStorageBufferRange is refused (one binding must cover it). Freed
 * buffers are deferred until the batch that may use them has completed.
 *
 * Features: shaderInt64 and shaderFloat64 are enabled when the device has
 * both (d->wide); only then are the *_WIDE pipelines (i64/f64 kernels)
 * created. Without them vk_supports() declines i64/f64 arithmetic and the
 * core runs it on the CPU (copies, fills, where, masked_fill and index ops
 * move raw bits and work on every device).
 *
 * Execution: ops are recorded into one command buffer (the batch) with a
 * full compute/transfer memory barrier before every command; the batch is
 * submitted and waited for by download, synchronize, or when it reaches
 * VK_BATCH_MAX_CMDS commands or runs out of argument ring, staging space or
 * descriptor sets. Per-dispatch arguments (shapes, strides, offsets) live in
 * a host-coherent ring buffer read by the shaders (push constants carry only
 * the ring offset), so any ndim fits.
 */
#include "vk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static VkDeviceSize align_up(VkDeviceSize x, VkDeviceSize a) { return (x + a - 1) / a * a; }

static int find_mem_type(const vk_device *d, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < d->mem_props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (d->mem_props.memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

/* A buffer with its own memory (staging, args, blocks). */
static em_status make_buffer(vk_device *d, VkDeviceSize size, VkBufferUsageFlags usage,
                             VkMemoryPropertyFlags want, VkMemoryPropertyFlags fallback,
                             VkBuffer *buf, VkDeviceMemory *mem)
{
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = size,
                              .usage = usage,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VK_CHECK(d, vkCreateBuffer(d->dev, &bci, NULL, buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, *buf, &req);
    int type = find_mem_type(d, req.memoryTypeBits, want);
    if (type < 0) type = find_mem_type(d, req.memoryTypeBits, fallback);
    if (type < 0) {
        vkDestroyBuffer(d->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
        return vk_fail(EM_ERR_BACKEND, "vulkan: no memory type with properties 0x%x", want);
    }
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .allocationSize = req.size,
                                .memoryTypeIndex = (uint32_t)type};
    VkResult r = vkAllocateMemory(d->dev, &mai, NULL, mem);
    if (r == VK_SUCCESS) r = vkBindBufferMemory(d->dev, *buf, *mem, 0);
    if (r != VK_SUCCESS) {
        if (*mem) vkFreeMemory(d->dev, *mem, NULL);
        vkDestroyBuffer(d->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
        *mem = VK_NULL_HANDLE;
        return vk_fail_result(d, r, "vkAllocateMemory/vkBindBufferMemory");
    }
    return EM_OK;
}

static em_status create_pipelines(vk_device *d)
{
    VkDescriptorSetLayoutBinding binds[VK_N_BINDINGS];
    for (uint32_t i = 0; i < VK_N_BINDINGS; i++)
        binds[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                                  .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                                  .descriptorCount = 1,
                                                  .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dl = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = VK_N_BINDINGS,
                                          .pBindings = binds};
    VK_CHECK(d, vkCreateDescriptorSetLayout(d->dev, &dl, NULL, &d->set_layout));
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = 4};
    VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &d->set_layout,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pcr};
    VK_CHECK(d, vkCreatePipelineLayout(d->dev, &pl, NULL, &d->pipe_layout));
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = VK_MAX_SETS * VK_N_BINDINGS};
    VkDescriptorPoolCreateInfo dp = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = VK_MAX_SETS,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    VK_CHECK(d, vkCreateDescriptorPool(d->dev, &dp, NULL, &d->desc_pool));
    /* Every shader's module, created once; wide variants only where the device
     * has 64-bit integer and float arithmetic. Each gets the float-control
     * execution modes the device supports (vk_spirv.c; 64-bit ones only in the
     * wide shaders). Pipelines: vk_pipeline. */
    vk_fc_mode fc[2][VK_FC_MAX_MODES];
    int n_fc[2];
    for (int w = 0; w < 2; w++) n_fc[w] = vk_fc_modes(d->phys, w, fc[w]);
    vk_fc_describe(fc[0], n_fc[0], d->fc_note, sizeof d->fc_note);
    for (int s = 0; s < VK_SH_COUNT; s++) {
        int w = vk_shaders[s].wide;
        if (w && !d->wide) continue;
        uint32_t *patched = NULL;
        size_t n_words = vk_shaders[s].bytes / 4;
        if (n_fc[w] > 0) {
            patched = vk_spirv_add_modes(vk_shaders[s].words, n_words, fc[w], n_fc[w], &n_words);
            if (!patched)
                return vk_fail(EM_ERR_BACKEND, "vulkan: cannot add float controls to %s",
                               vk_shaders[s].name);
        }
        VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                        .codeSize = n_words * 4,
                                        .pCode = patched ? patched : vk_shaders[s].words};
        VkResult r = vkCreateShaderModule(d->dev, &smi, NULL, &d->mods[s]);
        free(patched);
        if (r != VK_SUCCESS) return vk_fail_result(d, r, "vkCreateShaderModule");
    }
    /* "shader execution modes: M 32, ...; wide shaders: M 32, M 64, ... (note)"
     * (tests/vulkan/test_vulkan_kernels.c reads this line) */
    char modes[2][160];
    for (int w = 0; w < 2; w++) {
        size_t k = 0;
        modes[w][0] = 0;
        for (int i = 0; i < n_fc[w] && k < sizeof modes[w]; i++)
            k += (size_t)snprintf(modes[w] + k, sizeof modes[w] - k, "%s%s %u", i ? ", " : "",
                                  fc[w][i].mode == VK_SPV_DENORM_PRESERVE
                                      ? "DenormPreserve"
                                      : "SignedZeroInfNanPreserve",
                                  fc[w][i].width);
    }
    vk_log(EM_LOG_INFO, "%s: shader execution modes: %s; wide shaders: %s (%s)",
           d->props.deviceName, modes[0][0] ? modes[0] : "none",
           !d->wide ? "not used" : modes[1][0] ? modes[1] : "none", d->fc_note);
    return EM_OK;
}

static em_status create_device(vk_device *d)
{
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, qf);
    uint32_t fam = UINT32_MAX;
    for (uint32_t i = 0; i < nq && fam == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = i;
    if (fam == UINT32_MAX)
        return vk_fail(EM_ERR_DEVICE, "vulkan: %s has no compute queue", d->props.deviceName);
    d->qfam = fam;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = fam,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    VkPhysicalDeviceFeatures want = {.shaderInt64 = d->wide ? VK_TRUE : VK_FALSE,
                                     .shaderFloat64 = d->wide ? VK_TRUE : VK_FALSE};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .pEnabledFeatures = &want};
    VK_CHECK(d, vkCreateDevice(d->phys, &dci, NULL, &d->dev));
    vkGetDeviceQueue(d->dev, fam, 0, &d->queue);
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
                                   .queueFamilyIndex = fam};
    VK_CHECK(d, vkCreateCommandPool(d->dev, &cpi, NULL, &d->cmd_pool));
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = d->cmd_pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    VK_CHECK(d, vkAllocateCommandBuffers(d->dev, &cai, &d->cmd));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(d, vkCreateFence(d->dev, &fci, NULL, &d->fence));
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    em_status st = make_buffer(d, VK_STAGING_BYTES,
                               VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                               hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, hv, &d->stage_buf,
                               &d->stage_mem);
    if (st) return st;
    VK_CHECK(d, vkMapMemory(d->dev, d->stage_mem, 0, VK_WHOLE_SIZE, 0, (void **)&d->stage_map));
    st = make_buffer(d, (VkDeviceSize)VK_ARGS_WORDS * 4, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, hv, hv,
                     &d->args_buf, &d->args_mem);
    if (st) return st;
    VK_CHECK(d, vkMapMemory(d->dev, d->args_mem, 0, VK_WHOLE_SIZE, 0, (void **)&d->args_map));
    return create_pipelines(d);
}

em_status vk_device_ready(vk_device *d)
{
    if (d->lost)
        return vk_fail(EM_ERR_BACKEND, "vulkan: %s was lost (VK_ERROR_DEVICE_LOST) earlier",
                       d->props.deviceName);
    if (d->ready) return EM_OK;
    em_status st = create_device(d);
    if (st != EM_OK) {
        vk_device_destroy(d);
        return st;
    }
    d->ready = 1;
    if ((st = vk_alloc(d, 256, &d->check)) != EM_OK) {
        vk_device_destroy(d);
        return st;
    }
    vk_log(EM_LOG_INFO, "%s: device ready (binding limit %llu bytes, alignment %llu; i64/f64 "
           "kernels %s)", d->props.deviceName, (unsigned long long)d->max_range,
           (unsigned long long)d->align, d->wide ? "on" : "off (no shaderInt64+shaderFloat64)");
    return EM_OK;
}

/* ---------------- sub-allocator (callers hold d->lock) ------------------- */

static void block_destroy(vk_device *d, vk_block *b)
{
    while (b->free_list) {
        vk_range *r = b->free_list;
        b->free_list = r->next;
        free(r);
    }
    if (b->buf) vkDestroyBuffer(d->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(d->dev, b->mem, NULL);
    free(b);
}

static int block_carve(vk_block *b, VkDeviceSize size, VkDeviceSize *off)
{
    for (vk_range **pp = &b->free_list; *pp; pp = &(*pp)->next) {
        vk_range *r = *pp;
        if (r->size < size) continue;
        *off = r->off;
        r->off += size;
        r->size -= size;
        if (r->size == 0) {
            *pp = r->next;
            free(r);
        }
        b->used += size;
        return 1;
    }
    return 0;
}

static int block_release(vk_block *b, VkDeviceSize off, VkDeviceSize size)
{
    vk_range *prev = NULL, *cur = b->free_list;
    while (cur && cur->off < off) {
        prev = cur;
        cur = cur->next;
    }
    b->used -= size;
    if (prev && prev->off + prev->size == off) {
        prev->size += size;
        if (cur && prev->off + prev->size == cur->off) {
            prev->size += cur->size;
            prev->next = cur->next;
            free(cur);
        }
        return 1;
    }
    if (cur && off + size == cur->off) {
        cur->off = off;
        cur->size += size;
        return 1;
    }
    vk_range *r = malloc(sizeof *r);
    if (!r) return 0; /* the range leaks until the block goes; harmless */
    r->off = off;
    r->size = size;
    r->next = cur;
    if (prev) prev->next = r;
    else b->free_list = r;
    return 1;
}

static void release_deferred_locked(vk_device *d)
{
    while (d->deferred) {
        vk_buffer *b = d->deferred;
        d->deferred = b->next_deferred;
        block_release(b->block, b->offset, b->size);
        d->live_bytes -= b->size;
        free(b);
    }
    /* Give back empty blocks beyond the first (keeps one warm). */
    vk_block **pp = &d->blocks;
    int kept = 0;
    while (*pp) {
        vk_block *b = *pp;
        if (b->used == 0 && kept++ > 0) {
            *pp = b->next;
            block_destroy(d, b);
        } else {
            pp = &b->next;
        }
    }
}

em_status vk_alloc(vk_device *d, size_t bytes, vk_buffer **out)
{
    if ((VkDeviceSize)bytes > d->max_range)
        return vk_fail(EM_ERR_OUT_OF_MEMORY,
                       "vulkan: a buffer of %zu bytes exceeds %s's maxStorageBufferRange (%llu "
                       "bytes per binding); tensors that big are not supported yet",
                       bytes, d->props.deviceName, (unsigned long long)d->max_range);
    VkDeviceSize size = align_up(bytes ? bytes : 1, d->align);
    vk_buffer *h = calloc(1, sizeof *h);
    if (!h) return vk_fail(EM_ERR_OUT_OF_MEMORY, "vulkan: out of host memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&d->lock);
        for (vk_block *b = d->blocks; b; b = b->next) {
            VkDeviceSize off;
            if (block_carve(b, size, &off)) {
                h->block = b;
                h->offset = off;
                h->size = size;
                d->live_bytes += size;
                pthread_mutex_unlock(&d->lock);
                *out = h;
                return EM_OK;
            }
        }
        int have_deferred = d->deferred != NULL;
        pthread_mutex_unlock(&d->lock);
        if (attempt == 0 && have_deferred) {
            em_status st = vk_flush(d); /* completes the batch and releases deferred frees */
            if (st) {
                free(h);
                return st;
            }
            continue;
        }
        break;
    }
    /* A new block. */
    vk_block *b = calloc(1, sizeof *b);
    vk_range *r = malloc(sizeof *r);
    if (!b || !r) {
        free(b);
        free(r);
        free(h);
        return vk_fail(EM_ERR_OUT_OF_MEMORY, "vulkan: out of host memory");
    }
    b->size = size > VK_BLOCK_BYTES ? size : VK_BLOCK_BYTES;
    em_status st = make_buffer(d, b->size,
                               VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                   VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                               VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0, &b->buf, &b->mem);
    if (st) {
        free(b);
        free(r);
        free(h);
        return st;
    }
    r->off = 0;
    r->size = b->size;
    r->next = NULL;
    b->free_list = r;
    VkDeviceSize off = 0;
    block_carve(b, size, &off);
    pthread_mutex_lock(&d->lock);
    b->next = d->blocks;
    d->blocks = b;
    d->live_bytes += size;
    pthread_mutex_unlock(&d->lock);
    vk_log(EM_LOG_DEBUG, "new block of %llu MiB", (unsigned long long)(b->size >> 20));
    h->block = b;
    h->offset = off;
    h->size = size;
    *out = h;
    return EM_OK;
}

void vk_free_deferred(vk_device *d, vk_buffer *b)
{
    pthread_mutex_lock(&d->lock);
    b->next_deferred = d->deferred;
    d->deferred = b;
    pthread_mutex_unlock(&d->lock);
}

void vk_device_destroy(vk_device *d)
{
    if (d->dev) {
        if (d->recording) {
            vkEndCommandBuffer(d->cmd);
            d->recording = 0;
        }
        vkDeviceWaitIdle(d->dev);
    }
    pthread_mutex_lock(&d->lock);
    release_deferred_locked(d);
    free(d->check); /* its range goes with its block */
    d->check = NULL;
    while (d->blocks) {
        vk_block *b = d->blocks;
        d->blocks = b->next;
        block_destroy(d, b);
    }
    pthread_mutex_unlock(&d->lock);
    if (d->dev) {
        for (uint32_t i = 0; d->pipes && i < VK_PIPE_SLOTS; i++)
            if (d->pipes[i].pipe) vkDestroyPipeline(d->dev, d->pipes[i].pipe, NULL);
        free(d->pipes);
        for (int s = 0; s < VK_SH_COUNT; s++)
            if (d->mods[s]) vkDestroyShaderModule(d->dev, d->mods[s], NULL);
        if (d->pipe_layout) vkDestroyPipelineLayout(d->dev, d->pipe_layout, NULL);
        if (d->set_layout) vkDestroyDescriptorSetLayout(d->dev, d->set_layout, NULL);
        if (d->desc_pool) vkDestroyDescriptorPool(d->dev, d->desc_pool, NULL);
        if (d->stage_buf) vkDestroyBuffer(d->dev, d->stage_buf, NULL);
        if (d->stage_mem) vkFreeMemory(d->dev, d->stage_mem, NULL);
        if (d->args_buf) vkDestroyBuffer(d->dev, d->args_buf, NULL);
        if (d->args_mem) vkFreeMemory(d->dev, d->args_mem, NULL);
        if (d->fence) vkDestroyFence(d->dev, d->fence, NULL);
        if (d->cmd_pool) vkDestroyCommandPool(d->dev, d->cmd_pool, NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    VkPhysicalDevice phys = d->phys;
    VkPhysicalDeviceProperties props = d->props;
    VkPhysicalDeviceMemoryProperties mp = d->mem_props;
    VkDeviceSize align = d->align, max_range = d->max_range;
    int index = d->index, lost = d->lost, wide = d->wide;
    pthread_mutex_t lock = d->lock;
    memset(d, 0, sizeof *d);
    d->wide = wide;
    d->phys = phys;
    d->props = props;
    d->mem_props = mp;
    d->align = align;
    d->max_range = max_range;
    d->index = index;
    d->lost = lost;
    d->lock = lock;
}

/* ---------------- recording and submission ------------------------------- */

static em_status begin(vk_device *d)
{
    if (d->recording) return EM_OK;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(d, vkBeginCommandBuffer(d->cmd, &bi));
    d->recording = 1;
    d->n_cmds = 0;
    return EM_OK;
}

/* Orders this command after every earlier command of the batch. */
static void barrier(vk_device *d)
{
    if (d->n_cmds == 0) return; /* the submit orders it after host writes */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(d->cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
}

em_status vk_flush(vk_device *d)
{
    em_status st = EM_OK;
    if (d->recording) {
        /* Device writes -> host reads (downloads read the staging buffer). */
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
        vkCmdPipelineBarrier(d->cmd,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                             VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        d->recording = 0;
        VkResult r = vkEndCommandBuffer(d->cmd);
        const char *call = "vkEndCommandBuffer";
        if (r == VK_SUCCESS) {
            VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                               .commandBufferCount = 1,
                               .pCommandBuffers = &d->cmd};
            call = "vkQueueSubmit";
            r = vkQueueSubmit(d->queue, 1, &si, d->fence);
            if (r == VK_SUCCESS) {
                call = "vkWaitForFences";
                r = vkWaitForFences(d->dev, 1, &d->fence, VK_TRUE, UINT64_MAX);
                if (r == VK_SUCCESS) {
                    call = "vkResetFences";
                    r = vkResetFences(d->dev, 1, &d->fence);
                }
            } else {
                /* Nothing was queued: the fence stays unsignalled. */
            }
        }
        if (r != VK_SUCCESS) st = vk_fail_result(d, r, call);
        if (r != VK_ERROR_DEVICE_LOST) {
            vkResetCommandPool(d->dev, d->cmd_pool, 0);
            vkResetDescriptorPool(d->dev, d->desc_pool, 0);
        }
        d->sets_used = 0;
        d->args_used = 0;
        d->stage_used = 0;
        d->n_cmds = 0;
    }
    pthread_mutex_lock(&d->lock);
    release_deferred_locked(d);
    pthread_mutex_unlock(&d->lock);
    return st;
}

/* The pipeline of (shader, specialization constants), created on first use
 * and cached for the device's lifetime (open addressing on a hash of the key). */
static em_status vk_pipeline(vk_device *d, int sh, const uint32_t spec[VK_N_SPEC], VkPipeline *out)
{
    if (sh < 0 || sh >= VK_SH_COUNT || !d->mods[sh])
        return vk_fail(EM_ERR_INTERNAL, "vulkan: no shader module %d (%s)", sh,
                       sh >= 0 && sh < VK_SH_COUNT ? vk_shaders[sh].name : "?");
    if (!d->pipes) {
        d->pipes = calloc(VK_PIPE_SLOTS, sizeof *d->pipes);
        if (!d->pipes) return vk_fail(EM_ERR_OUT_OF_MEMORY, "vulkan: out of host memory");
    }
    uint32_t h = 2166136261u ^ (uint32_t)sh;
    for (int i = 0; i < VK_N_SPEC; i++) h = (h ^ spec[i]) * 16777619u;
    for (uint32_t probe = 0; probe < VK_PIPE_SLOTS; probe++) {
        vk_pipe_entry *e = &d->pipes[(h + probe) % VK_PIPE_SLOTS];
        if (e->pipe && e->sh == sh && !memcmp(e->spec, spec, sizeof e->spec)) {
            *out = e->pipe;
            return EM_OK;
        }
        if (e->pipe) continue;
        VkSpecializationMapEntry me[VK_N_SPEC];
        for (uint32_t i = 0; i < VK_N_SPEC; i++)
            me[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
        VkSpecializationInfo si = {.mapEntryCount = VK_N_SPEC,
                                   .pMapEntries = me,
                                   .dataSize = 4 * VK_N_SPEC,
                                   .pData = spec};
        VkComputePipelineCreateInfo cpi = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                      .module = d->mods[sh],
                      .pName = "main",
                      .pSpecializationInfo = &si},
            .layout = d->pipe_layout};
        VK_CHECK(d, vkCreateComputePipelines(d->dev, VK_NULL_HANDLE, 1, &cpi, NULL, &e->pipe));
        e->sh = sh;
        memcpy(e->spec, spec, sizeof e->spec);
        d->n_pipes++;
        vk_log(EM_LOG_DEBUG, "pipeline %s [%u %u %u %u %u %u] (%u cached)", vk_shaders[sh].name,
               spec[0], spec[1], spec[2], spec[3], spec[4], spec[5], d->n_pipes);
        *out = e->pipe;
        return EM_OK;
    }
    return vk_fail(EM_ERR_OUT_OF_MEMORY, "vulkan: pipeline cache full (%u pipelines)",
                   VK_PIPE_SLOTS);
}

em_status vk_dispatch(vk_device *d, int sh, const uint32_t spec[VK_N_SPEC], const uint32_t *args,
                      uint32_t n_args, vk_buffer *const bufs[VK_N_DATA], uint32_t gx, uint32_t gy,
                      uint32_t gz)
{
    static const uint32_t no_spec[VK_N_SPEC];
    VkPipeline pipe = VK_NULL_HANDLE;
    em_status st0 = vk_pipeline(d, sh, spec ? spec : no_spec, &pipe);
    if (st0) return st0;
    if (n_args > VK_DISPATCH_ARGS_MAX)
        return vk_fail(EM_ERR_INTERNAL, "vulkan: %u argument words (limit %u)", n_args,
                       VK_DISPATCH_ARGS_MAX);
    em_status st;
    if (d->recording && (d->n_cmds >= VK_BATCH_MAX_CMDS || d->sets_used >= VK_MAX_SETS ||
                         d->args_used + n_args > VK_ARGS_WORDS))
        if ((st = vk_flush(d))) return st;
    if ((st = begin(d))) return st;
    uint32_t at = d->args_used;
    memcpy(d->args_map + at, args, n_args * sizeof *args);
    d->args_used += (n_args + 15u) & ~15u;

    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = d->desc_pool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &d->set_layout};
    VkDescriptorSet set;
    VK_CHECK(d, vkAllocateDescriptorSets(d->dev, &ai, &set));
    d->sets_used++;
    VkDescriptorBufferInfo bi[VK_N_BINDINGS];
    VkWriteDescriptorSet w[VK_N_BINDINGS];
    bi[0] = (VkDescriptorBufferInfo){d->args_buf, 0, VK_WHOLE_SIZE};
    for (int i = 0; i < VK_N_DATA; i++) {
        const vk_buffer *b = bufs[i];
        bi[1 + i] = b ? (VkDescriptorBufferInfo){b->block->buf, b->offset, b->size}
                      : (VkDescriptorBufferInfo){d->args_buf, 0, VK_WHOLE_SIZE};
    }
    for (uint32_t i = 0; i < VK_N_BINDINGS; i++)
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    vkUpdateDescriptorSets(d->dev, VK_N_BINDINGS, w, 0, NULL);
    barrier(d);
    vkCmdBindPipeline(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe_layout, 0, 1, &set, 0,
                            NULL);
    vkCmdPushConstants(d->cmd, d->pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4, &at);
    vkCmdDispatch(d->cmd, gx, gy, gz);
    d->n_cmds++;
    return EM_OK;
}

em_status vk_upload(vk_device *d, vk_buffer *b, size_t off, const void *src, size_t bytes)
{
    const unsigned char *p = src;
    while (bytes > 0) {
        em_status st;
        if (d->stage_used >= VK_STAGING_BYTES && (st = vk_flush(d))) return st;
        VkDeviceSize room = VK_STAGING_BYTES - d->stage_used;
        VkDeviceSize n = bytes < room ? bytes : room;
        if ((st = begin(d))) return st;
        memcpy(d->stage_map + d->stage_used, p, n);
        barrier(d);
        VkBufferCopy region = {d->stage_used, b->offset + off, n};
        vkCmdCopyBuffer(d->cmd, d->stage_buf, b->block->buf, 1, &region);
        d->n_cmds++;
        d->stage_used = align_up(d->stage_used + n, 16);
        p += n;
        off += n;
        bytes -= n;
    }
    return EM_OK;
}

em_status vk_download(vk_device *d, vk_buffer *b, size_t off, void *dst, size_t bytes)
{
    unsigned char *p = dst;
    em_status st;
    if ((st = vk_flush(d))) return st; /* the staging buffer is ours from here */
    while (bytes > 0) {
        VkDeviceSize n = bytes < VK_STAGING_BYTES ? bytes : VK_STAGING_BYTES;
        if ((st = begin(d))) return st;
        VkBufferCopy region = {b->offset + off, 0, n};
        vkCmdCopyBuffer(d->cmd, b->block->buf, d->stage_buf, 1, &region);
        d->n_cmds++;
        if ((st = vk_flush(d))) return st;
        memcpy(p, d->stage_map, n);
        p += n;
        off += n;
        bytes -= n;
    }
    return EM_OK;
}

em_status vk_copy(vk_device *d, vk_buffer *src, size_t soff, vk_buffer *dst, size_t doff,
                  size_t bytes)
{
    if (soff > src->size || bytes > src->size - soff || doff > dst->size ||
        bytes > dst->size - doff)
        return vk_fail(EM_ERR_INVALID_ARG, "vulkan: buffer_copy of %zu bytes out of range", bytes);
    if (bytes == 0) return EM_OK;
    VkDeviceSize s = src->offset + soff, t = dst->offset + doff;
    int overlap = src->block == dst->block && s < t + bytes && t < s + bytes;
    em_status st;
    if (!overlap) {
        if ((st = begin(d))) return st;
        barrier(d);
        VkBufferCopy region = {s, t, bytes};
        vkCmdCopyBuffer(d->cmd, src->block->buf, dst->block->buf, 1, &region);
        d->n_cmds++;
        return EM_OK;
    }
    /* Overlapping ranges (memmove semantics): bounce through the staging buffer. */
    while (bytes > 0) {
        VkDeviceSize room = VK_STAGING_BYTES - d->stage_used;
        if (room == 0 || d->stage_used >= VK_STAGING_BYTES) {
            if ((st = vk_flush(d))) return st;
            room = VK_STAGING_BYTES;
        }
        VkDeviceSize n = bytes < room ? bytes : room;
        /* Forward when the destination is below the source, backward otherwise,
         * so no chunk overwrites source bytes a later chunk still reads. */
        int back = t > s;
        VkDeviceSize cs = back ? s + bytes - n : s, ct = back ? t + bytes - n : t;
        if ((st = begin(d))) return st;
        barrier(d);
        VkBufferCopy r1 = {cs, d->stage_used, n};
        vkCmdCopyBuffer(d->cmd, src->block->buf, d->stage_buf, 1, &r1);
        d->n_cmds++;
        barrier(d);
        VkBufferCopy r2 = {d->stage_used, ct, n};
        vkCmdCopyBuffer(d->cmd, d->stage_buf, dst->block->buf, 1, &r2);
        d->n_cmds++;
        d->stage_used = align_up(d->stage_used + n, 16);
        if (!back) {
            s += n;
            t += n;
        }
        bytes -= n;
    }
    return EM_OK;
}
