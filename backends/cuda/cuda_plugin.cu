/*
 * cuda_plugin.cu — the CUDA backend's plugin face: em_plugin_init, the
 * backend table, devices (one stream and one cuBLAS handle each; the
 * cuBLASLt state is made at first use by cuda_blaslt.cu), the caching
 * allocator, the buffer functions and the kernel registry.
 *
 * Init: cudaGetDeviceCount decides. An error (no driver:
 * cudaErrorInsufficientDriver; no GPU: cudaErrorNoDevice) or zero devices
 * makes init fail with "no CUDA device: cudaGetDeviceCount: NAME: TEXT", so
 * the loader refuses the plugin with that reason and auto-selection moves on.
 *
 * Allocator: per device, freed blocks go to a cache by size class (powers of
 * two from 512 B); an allocation of the same class reuses one without
 * cudaMalloc. All work of a device runs on its one stream, so a block freed
 * while queued kernels still use it can be handed out again at once: the
 * next user's work is queued after them (stream order). When cudaMalloc
 * fails, the device synchronises, releases the cache and tries once more.
 * device_close and shutdown release everything.
 *
 * Transfers go through a pinned staging area per device (two 4 MiB halves,
 * allocated at the first transfer, used in turn, each guarded by an event):
 *   upload   copies the caller's data into a free half (waiting on its
 *            event), queues the DMA from it and records the event; chunks
 *            alternate halves so the host copy of one overlaps the DMA of the
 *            other. It returns without waiting for the last DMA: the ABI
 *            allows that once src has been copied, and the caller's memory
 *            is no longer referenced.
 *   download queues the DMA of up to two chunks ahead into the halves and
 *            copies each one out after its event; it returns when all of
 *            dst is written (the ABI's requirement).
 * When pinned memory cannot be had, transfers fall back to cudaMemcpyAsync
 * from pageable memory followed by a stream synchronisation.
 *
 * Index errors: each device has an 8-byte error record in device memory
 * and a pinned host copy (see cuda_index.cu).
 */
#include "cuda_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_PLUGIN_VERSION "0.1.0"

/* ---------------- host services ----------------------------------------- */

/* The core's services (ember_plugin_util.h: slots past its struct_size are NULL). */
static em_plugin_host g_host;

em_status cu_fail(em_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_plugin_vfail(&g_host, status, fmt, ap);
    va_end(ap);
    return status;
}

static const char *base_name(const char *file)
{
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

em_status cu_fail_cuda(cudaError_t err, const char *call, const char *file, int line)
{
    cudaGetLastError(); /* clear a sticky-free error so later calls start clean */
    em_status st = err == cudaErrorMemoryAllocation ? EM_ERR_OUT_OF_MEMORY : EM_ERR_BACKEND;
    return cu_fail(st, "cuda: %s failed: %s: %s (%s:%d)", call, cudaGetErrorName(err),
                   cudaGetErrorString(err), base_name(file), line);
}

static const char *cublas_name(cublasStatus_t st)
{
    switch (st) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_(unknown)";
    }
}

em_status cu_fail_cublas(cublasStatus_t st, const char *call, const char *file, int line)
{
    em_status s = st == CUBLAS_STATUS_ALLOC_FAILED ? EM_ERR_OUT_OF_MEMORY : EM_ERR_BACKEND;
    return cu_fail(s, "cuda: %s failed: %s (%s:%d)", call, cublas_name(st), base_name(file), line);
}

void cu_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_plugin_vlog(&g_host, level, fmt, ap);
    va_end(ap);
}

const char *cu_getenv(const char *name)
{
    return em_plugin_getenv(&g_host, name);
}

const char *cu_dtype_name(int dt)
{
    static const char *const names[EM_DTYPE_COUNT] = {"f32", "f64", "f16", "bf16",
                                                      "i32", "i64", "bool"};
    return cu_dtype_valid(dt) ? names[dt] : "invalid";
}

em_status cu_set_device(const cu_device *dev)
{
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur == dev->index) return EM_OK;
    CU_CHECK(cudaSetDevice(dev->index));
    return EM_OK;
}

em_status cu_check_arity(const em_op_call *c, int min_in, int max_in, int n_out)
{
    if (!c->params) return cu_fail(EM_ERR_NULL_ARG, "cuda: op %d called without parameters", c->op);
    if (c->n_in < min_in || c->n_in > max_in || c->n_out != n_out || (c->n_in > 0 && !c->in) ||
        !c->out)
        return cu_fail(EM_ERR_INVALID_ARG,
                       "cuda: op %d got %d inputs and %d outputs (expects %d..%d and %d)", c->op,
                       c->n_in, c->n_out, min_in, max_in, n_out);
    for (int i = 0; i < c->n_in + c->n_out; i++) {
        const em_tdesc *d = i < c->n_in ? &c->in[i] : &c->out[i - c->n_in];
        if (!cu_dtype_valid(d->dtype) || d->ndim < 0 || d->ndim > EM_MAX_DIMS || !d->buffer)
            return cu_fail(EM_ERR_INVALID_ARG, "cuda: op %d: %s %d has dtype %d, %d dims, buffer %p",
                           c->op, i < c->n_in ? "input" : "output", i < c->n_in ? i : i - c->n_in,
                           d->dtype, d->ndim, d->buffer);
    }
    return EM_OK;
}

em_status cu_check_shape(const char *what, const em_tdesc *d, const em_tdesc *out)
{
    int ok = d->ndim == out->ndim;
    for (int i = 0; ok && i < d->ndim; i++) ok = d->shape[i] == out->shape[i];
    if (ok) return EM_OK;
    return cu_fail(EM_ERR_SHAPE, "cuda: %s has %d dims, not the output's shape (%d dims)", what,
                   d->ndim, out->ndim);
}

/* ---------------- devices ------------------------------------------------ */

#define CU_MAX_DEVICES 16
static int g_count;                       /* devices found at init          */
static cudaDeviceProp g_props[CU_MAX_DEVICES];
static int g_tf32;                        /* EMBER_CUDA_TF32=1              */
static int g_lt = 1;                      /* EMBER_CUDA_LT=0 turns it off   */

static int device_count(void) { return g_count; }

static em_status device_info(int index, em_plugin_device_info *info)
{
    if (index < 0 || index >= g_count)
        return cu_fail(EM_ERR_DEVICE, "cuda: no device %d (there are %d)", index, g_count);
    if (!info) return cu_fail(EM_ERR_NULL_ARG, "cuda: device_info without info");
    const cudaDeviceProp *p = &g_props[index];
    em_plugin_device_info v;
    memset(&v, 0, sizeof v);
    v.struct_size = info->struct_size;
    v.type = p->integrated ? EM_DEVICE_INTEGRATED_GPU : EM_DEVICE_GPU;
    snprintf(v.name, sizeof v.name, "%s", p->name);
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    snprintf(v.description, sizeof v.description,
             "sm_%d%d, %d SMs, CUDA runtime %d.%d, driver %d.%d, cuBLAS%s; TF32 %s", p->major,
             p->minor, p->multiProcessorCount, rt / 1000, (rt % 1000) / 10, drv / 1000,
             (drv % 1000) / 10, g_lt ? " + cuBLASLt" : " (cuBLASLt off)",
             g_tf32 ? "on (EMBER_CUDA_TF32=1)" : "off");
    v.memory_bytes = (uint64_t)p->totalGlobalMem;
    v.dtype_mask = (1u << EM_DTYPE_COUNT) - 1;
    size_t n = info->struct_size;
    if (n == 0 || n > sizeof v) n = sizeof v;
    memcpy(info, &v, n);
    return EM_OK;
}

/* Pinned staging and the error record. */
static void release_host_side(cu_device *d)
{
    for (int h = 0; h < 2; h++) {
        if (d->stage_ev[h]) cudaEventDestroy(d->stage_ev[h]);
        d->stage_ev[h] = NULL;
    }
    if (d->stage[0]) cudaFreeHost(d->stage[0]);
    d->stage[0] = d->stage[1] = NULL;
    d->stage_state = 0;
    if (d->err_dev) cudaFree(d->err_dev);
    if (d->err_host) cudaFreeHost(d->err_host);
    d->err_dev = d->err_host = NULL;
}

static void release_cache(cu_device *d)
{
    for (int c = 0; c < CU_NCLASS; c++) {
        while (d->cache[c]) {
            cu_block *b = d->cache[c];
            d->cache[c] = b->next;
            cudaFree(b->ptr);
            free(b);
        }
    }
    d->cached_bytes = 0;
}

static em_status device_open(int index, void **out)
{
    if (index < 0 || index >= g_count)
        return cu_fail(EM_ERR_DEVICE, "cuda: no device %d (there are %d)", index, g_count);
    cu_device *d = (cu_device *)calloc(1, sizeof *d);
    if (!d) return cu_fail(EM_ERR_OUT_OF_MEMORY, "cuda: out of host memory");
    d->index = index;
    pthread_mutex_init(&d->lock, NULL);
    em_status st = cu_set_device(d);
    if (st == EM_OK) {
        cudaError_t e = cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking);
        if (e != cudaSuccess)
            st = cu_fail_cuda(e, "cudaStreamCreateWithFlags", __FILE__, __LINE__);
    }
    if (st == EM_OK) {
        d->n_sms = g_props[index].multiProcessorCount;
        d->cc_major = g_props[index].major;
        d->tf32 = g_tf32;
        d->use_lt = g_lt;
        cudaError_t e = cudaMalloc((void **)&d->err_dev, 256);
        if (e == cudaSuccess) e = cudaMemset(d->err_dev, 0xff, sizeof(unsigned long long));
        if (e == cudaSuccess) e = cudaMallocHost((void **)&d->err_host, 2 * sizeof(unsigned long long));
        if (e != cudaSuccess) st = cu_fail_cuda(e, "device_open: index error record", __FILE__, __LINE__);
    }
    if (st == EM_OK) {
        cublasStatus_t b = cublasCreate(&d->blas);
        if (b != CUBLAS_STATUS_SUCCESS) {
            d->blas = NULL;
            st = cu_fail_cublas(b, "cublasCreate", __FILE__, __LINE__);
        }
    }
    if (st == EM_OK) {
        cublasStatus_t b = cublasSetStream(d->blas, d->stream);
        if (b == CUBLAS_STATUS_SUCCESS)
            b = cublasSetMathMode(d->blas, g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
        if (b != CUBLAS_STATUS_SUCCESS) st = cu_fail_cublas(b, "cublasSetStream/SetMathMode", __FILE__, __LINE__);
    }
    if (st != EM_OK) {
        if (d->blas) cublasDestroy(d->blas);
        if (d->stream) cudaStreamDestroy(d->stream);
        release_host_side(d);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return st;
    }
    *out = d;
    return EM_OK;
}

static void device_close(void *vdev)
{
    cu_device *d = (cu_device *)vdev;
    if (!d) return;
    cu_set_device(d);
    cudaStreamSynchronize(d->stream);
    cu_lt_release(d); /* its workspace goes back to the cache first */
    pthread_mutex_lock(&d->lock);
    release_cache(d);
    pthread_mutex_unlock(&d->lock);
    if (d->live_bytes)
        cu_log(EM_LOG_DEBUG, "device %d closed with %zu bytes in live buffers", d->index,
               d->live_bytes);
    cu_log(EM_LOG_DEBUG, "device %d: %llu cudaMalloc calls, %llu reuses from the cache", d->index,
           (unsigned long long)d->n_malloc, (unsigned long long)d->n_reuse);
    if (d->blas) cublasDestroy(d->blas);
    release_host_side(d);
    cudaStreamDestroy(d->stream);
    pthread_mutex_destroy(&d->lock);
    free(d);
    /* Buffers still alive are owned by the CUDA context; the core frees its
     * tensors before closing, and cudaDeviceReset at shutdown takes the rest. */
}

/* ---------------- buffers ------------------------------------------------ */

#define CU_MIN_CLASS 9 /* 512 bytes */

static int size_class(size_t bytes)
{
    int c = CU_MIN_CLASS;
    while (c < CU_NCLASS - 1 && ((size_t)1 << c) < bytes) c++;
    return ((size_t)1 << c) >= bytes ? c : -1;
}

static em_status buffer_alloc(void *vdev, size_t bytes, void **buffer)
{
    cu_device *d = (cu_device *)vdev;
    *buffer = NULL;
    int cls = size_class(bytes ? bytes : 1);
    if (cls < 0) return cu_fail(EM_ERR_OUT_OF_MEMORY, "cuda: cannot allocate %zu bytes", bytes);
    pthread_mutex_lock(&d->lock);
    cu_block *b = d->cache[cls];
    if (b) {
        d->cache[cls] = b->next;
        d->cached_bytes -= b->cap;
        d->live_bytes += b->cap;
        d->n_reuse++;
        pthread_mutex_unlock(&d->lock);
        b->next = NULL;
        *buffer = b;
        return EM_OK;
    }
    pthread_mutex_unlock(&d->lock);
    em_status st = cu_set_device(d);
    if (st) return st;
    b = (cu_block *)calloc(1, sizeof *b);
    if (!b) return cu_fail(EM_ERR_OUT_OF_MEMORY, "cuda: out of host memory");
    b->cap = (size_t)1 << cls;
    b->cls = cls;
    cudaError_t e = cudaMalloc(&b->ptr, b->cap);
    if (e == cudaErrorMemoryAllocation) {
        /* release the cache (after the queued work that may use it) and retry */
        cudaGetLastError();
        cudaStreamSynchronize(d->stream);
        pthread_mutex_lock(&d->lock);
        release_cache(d);
        pthread_mutex_unlock(&d->lock);
        e = cudaMalloc(&b->ptr, b->cap);
    }
    if (e != cudaSuccess) {
        free(b);
        char call[96];
        snprintf(call, sizeof call, "cudaMalloc(%zu bytes for a %zu-byte buffer)", (size_t)1 << cls,
                 bytes);
        return cu_fail_cuda(e, call, __FILE__, __LINE__);
    }
    pthread_mutex_lock(&d->lock);
    d->live_bytes += b->cap;
    d->n_malloc++;
    pthread_mutex_unlock(&d->lock);
    *buffer = b;
    return EM_OK;
}

/* Any thread. The block goes to the cache at once: work queued on the
 * device's stream that still reads it runs before any later user's work. */
static void buffer_free(void *vdev, void *buffer)
{
    cu_device *d = (cu_device *)vdev;
    cu_block *b = (cu_block *)buffer;
    if (!b) return;
    pthread_mutex_lock(&d->lock);
    d->live_bytes -= b->cap;
    d->cached_bytes += b->cap;
    b->next = d->cache[b->cls];
    d->cache[b->cls] = b;
    pthread_mutex_unlock(&d->lock);
}

em_status cu_scratch_alloc(cu_device *dev, size_t bytes, cu_block **blk)
{
    return buffer_alloc(dev, bytes ? bytes : 1, (void **)blk);
}

void cu_scratch_free(cu_device *dev, cu_block *blk) { buffer_free(dev, blk); }

static em_status check_range(const cu_block *b, size_t offset, size_t bytes, const char *what)
{
    if (offset > b->cap || bytes > b->cap - offset)
        return cu_fail(EM_ERR_INVALID_ARG, "cuda: %s of %zu bytes at %zu overruns a %zu-byte block",
                       what, bytes, offset, b->cap);
    return EM_OK;
}

/* Allocates the pinned staging halves once; returns 1 when they exist. */
static int stage_ready(cu_device *d)
{
    if (d->stage_state) return d->stage_state > 0;
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, 2 * CU_STAGE_BYTES, cudaHostAllocPortable);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&d->stage_ev[0], cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&d->stage_ev[1], cudaEventDisableTiming);
    if (e != cudaSuccess) {
        cudaGetLastError();
        cu_log(EM_LOG_WARN, "device %d: no pinned staging (%s); transfers use pageable memory",
               d->index, cudaGetErrorName(e));
        for (int h = 0; h < 2; h++) {
            if (d->stage_ev[h]) cudaEventDestroy(d->stage_ev[h]);
            d->stage_ev[h] = NULL;
        }
        if (p) cudaFreeHost(p);
        d->stage_state = -1;
        return 0;
    }
    d->stage[0] = p;
    d->stage[1] = (char *)p + CU_STAGE_BYTES;
    d->stage_state = 1;
    return 1;
}

static em_status buffer_upload(void *vdev, void *buffer, size_t offset, const void *src,
                               size_t bytes)
{
    cu_device *d = (cu_device *)vdev;
    cu_block *b = (cu_block *)buffer;
    em_status st = check_range(b, offset, bytes, "upload");
    if (st == EM_OK) st = cu_set_device(d);
    if (st) return st;
    char *dst = (char *)b->ptr + offset;
    if (!stage_ready(d)) {
        CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, d->stream));
        CU_CHECK(cudaStreamSynchronize(d->stream));
        return EM_OK;
    }
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < CU_STAGE_BYTES ? bytes - done : CU_STAGE_BYTES;
        int h = d->stage_next;
        d->stage_next ^= 1;
        CU_CHECK(cudaEventSynchronize(d->stage_ev[h])); /* the half's last DMA is done */
        memcpy(d->stage[h], (const char *)src + done, n);
        CU_CHECK(cudaMemcpyAsync(dst + done, d->stage[h], n, cudaMemcpyHostToDevice, d->stream));
        CU_CHECK(cudaEventRecord(d->stage_ev[h], d->stream));
        done += n;
    }
    return EM_OK;
}

static em_status buffer_download(void *vdev, void *buffer, size_t offset, void *dst, size_t bytes)
{
    cu_device *d = (cu_device *)vdev;
    cu_block *b = (cu_block *)buffer;
    em_status st = check_range(b, offset, bytes, "download");
    if (st == EM_OK) st = cu_set_device(d);
    if (st) return st;
    const char *src = (const char *)b->ptr + offset;
    if (!stage_ready(d)) {
        CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, d->stream));
        CU_CHECK(cudaStreamSynchronize(d->stream));
        return EM_OK;
    }
    /* chunk k goes through half (first + k) % 2; up to two DMAs in flight.
     * A half's earlier upload DMA runs before the new one (stream order). */
    size_t nchunks = (bytes + CU_STAGE_BYTES - 1) / CU_STAGE_BYTES;
    int first = d->stage_next;
    size_t issued = 0;
    for (size_t k = 0; k < nchunks; k++) {
        while (issued < nchunks && issued < k + 2) {
            size_t off = issued * CU_STAGE_BYTES;
            size_t n = bytes - off < CU_STAGE_BYTES ? bytes - off : CU_STAGE_BYTES;
            int h = (int)((first + issued) & 1);
            CU_CHECK(cudaMemcpyAsync(d->stage[h], src + off, n, cudaMemcpyDeviceToHost, d->stream));
            CU_CHECK(cudaEventRecord(d->stage_ev[h], d->stream));
            issued++;
        }
        size_t off = k * CU_STAGE_BYTES;
        size_t n = bytes - off < CU_STAGE_BYTES ? bytes - off : CU_STAGE_BYTES;
        int h = (int)((first + k) & 1);
        CU_CHECK(cudaEventSynchronize(d->stage_ev[h]));
        memcpy((char *)dst + off, d->stage[h], n);
    }
    d->stage_next = (int)((first + nchunks) & 1);
    return EM_OK;
}

static em_status buffer_copy(void *vdev, void *src, size_t src_offset, void *dst,
                             size_t dst_offset, size_t bytes)
{
    cu_device *d = (cu_device *)vdev;
    cu_block *s = (cu_block *)src, *t = (cu_block *)dst;
    em_status st = check_range(s, src_offset, bytes, "copy source");
    if (st == EM_OK) st = check_range(t, dst_offset, bytes, "copy destination");
    if (st == EM_OK) st = cu_set_device(d);
    if (st) return st;
    CU_CHECK(cudaMemcpyAsync((char *)t->ptr + dst_offset, (const char *)s->ptr + src_offset, bytes,
                             cudaMemcpyDeviceToDevice, d->stream));
    return EM_OK;
}

static em_status synchronize(void *vdev)
{
    cu_device *d = (cu_device *)vdev;
    em_status st = cu_set_device(d);
    if (st) return st;
    CU_CHECK(cudaStreamSynchronize(d->stream));
    return EM_OK;
}

/* ---------------- kernel registry --------------------------------------- */

#define KF(op, fn, fl)                                                                   \
    {op, EM_F32, fl, fn}, {op, EM_F64, fl, fn}, {op, EM_F16, fl, fn}, {op, EM_BF16, fl, fn}
#define KA(op, fn) KF(op, fn, 0), {op, EM_I32, 0, fn}, {op, EM_I64, 0, fn}, {op, EM_BOOL, 0, fn}

static const em_kernel_entry g_kernels[] = {
    /* memory (key: out dtype; CAST: in dtype) */
    KA(EM_OP_FILL, cu_k_fill),
    KA(EM_OP_COPY, cu_k_copy),
    KA(EM_OP_CAST, cu_k_cast),
    KA(EM_OP_ARANGE, cu_k_arange),
    KA(EM_OP_LINSPACE, cu_k_linspace),
    KF(EM_OP_RAND_UNIFORM, cu_k_random, 0),
    KF(EM_OP_RAND_NORMAL, cu_k_random, 0),
    KA(EM_OP_RANDINT, cu_k_random),
    /* binary */
    KA(EM_OP_ADD, cu_k_binary),
    KA(EM_OP_SUB, cu_k_binary),
    KA(EM_OP_MUL, cu_k_binary),
    KF(EM_OP_DIV, cu_k_binary, 0),
    KA(EM_OP_POW, cu_k_binary),
    KA(EM_OP_MAXIMUM, cu_k_binary),
    KA(EM_OP_MINIMUM, cu_k_binary),
    KF(EM_OP_AXPY, cu_k_axpy, 0),
    /* comparisons and selection */
    KA(EM_OP_EQ, cu_k_compare),
    KA(EM_OP_NE, cu_k_compare),
    KA(EM_OP_LT, cu_k_compare),
    KA(EM_OP_LE, cu_k_compare),
    KA(EM_OP_GT, cu_k_compare),
    KA(EM_OP_GE, cu_k_compare),
    KA(EM_OP_WHERE, cu_k_where),
    KA(EM_OP_CLAMP, cu_k_clamp),
    KA(EM_OP_MASKED_FILL, cu_k_masked_fill),
    /* unary */
    KA(EM_OP_NEG, cu_k_unary),
    KA(EM_OP_ABS, cu_k_unary),
    KF(EM_OP_EXP, cu_k_unary, 0),
    KF(EM_OP_LOG, cu_k_unary, 0),
    KF(EM_OP_SQRT, cu_k_unary, 0),
    KF(EM_OP_RSQRT, cu_k_unary, 0),
    KF(EM_OP_SIN, cu_k_unary, 0),
    KF(EM_OP_COS, cu_k_unary, 0),
    KF(EM_OP_TANH, cu_k_unary, 0),
    KF(EM_OP_SIGMOID, cu_k_unary, 0),
    KA(EM_OP_RELU, cu_k_unary),
    KF(EM_OP_GELU, cu_k_unary, 0),
    KF(EM_OP_SILU, cu_k_unary, 0),
    KF(EM_OP_SOFTPLUS, cu_k_unary, 0),
    KA(EM_OP_SQUARE, cu_k_unary),
    KF(EM_OP_RECIPROCAL, cu_k_unary, 0),
    KF(EM_OP_ERF, cu_k_unary, 0),
    KA(EM_OP_SIGN, cu_k_unary),
    KF(EM_OP_RELU_BACKWARD, cu_k_relu_backward, 0), /* ABI 1.4 */
    /* reductions and softmax */
    KA(EM_OP_SUM, cu_k_reduce),
    KF(EM_OP_MEAN, cu_k_reduce, 0),
    KA(EM_OP_MAX, cu_k_reduce),
    KA(EM_OP_MIN, cu_k_reduce),
    KA(EM_OP_ARGMAX, cu_k_reduce),
    KA(EM_OP_ARGMIN, cu_k_reduce),
    KF(EM_OP_VAR, cu_k_reduce, 0),
    KF(EM_OP_STD, cu_k_reduce, 0),
    KF(EM_OP_LOGSUMEXP, cu_k_reduce, 0),
    KF(EM_OP_SOFTMAX, cu_k_softmax, 0),
    KF(EM_OP_LOG_SOFTMAX, cu_k_softmax, 0),
    /* data movement */
    KA(EM_OP_CAT, cu_k_cat),
    KA(EM_OP_INDEX_SELECT, cu_k_index_select),
    KA(EM_OP_GATHER, cu_k_gather),
    KA(EM_OP_SCATTER_ADD, cu_k_scatter_add),
    {EM_OP_ONE_HOT, EM_I32, 0, cu_k_one_hot},
    {EM_OP_ONE_HOT, EM_I64, 0, cu_k_one_hot},
    /* linear algebra: matmul through cuBLAS (cuBLASLt for 2-D f16/bf16) on
     * dense inputs made by the core; linear takes any strides itself (a
     * broadcast bias row becomes a cuBLASLt bias epilogue) */
    KF(EM_OP_MATMUL, cu_k_matmul, EM_KERNEL_CONTIGUOUS),
    KF(EM_OP_LINEAR, cu_k_linear, 0),
    {EM_OP_LINEAR_ACT, EM_F32, 0, cu_k_linear}, /* ABI 1.4 */
    {EM_OP_LINEAR_ACT, EM_F16, 0, cu_k_linear},
    {EM_OP_LINEAR_ACT, EM_BF16, 0, cu_k_linear},
    /* fused (ABI 1.3): f32 and f64 */
    {EM_OP_ADAM, EM_F32, 0, cu_k_adam},
    {EM_OP_ADAM, EM_F64, 0, cu_k_adam},
    {EM_OP_CROSS_ENTROPY, EM_F32, 0, cu_k_cross_entropy},
    {EM_OP_CROSS_ENTROPY, EM_F64, 0, cu_k_cross_entropy},
    {EM_OP_CROSS_ENTROPY_BACKWARD, EM_F32, 0, cu_k_cross_entropy},
    {EM_OP_CROSS_ENTROPY_BACKWARD, EM_F64, 0, cu_k_cross_entropy},
};

static const char *reason(void) { return NULL; }

static void shutdown_plugin(void)
{
    g_count = 0;
    em_plugin_host_reset(&g_host);
}

extern "C" {

static const em_backend_table g_table = {
    /* .abi_major = */ EM_PLUGIN_ABI_MAJOR,
    /* .abi_minor = */ EM_PLUGIN_ABI_MINOR,
    /* .struct_size = */ sizeof(em_backend_table),
    /* .name = */ "cuda",
    /* .version = */ CUDA_PLUGIN_VERSION,
    /* .device_count = */ device_count,
    /* .device_info = */ device_info,
    /* .device_open = */ device_open,
    /* .device_close = */ device_close,
    /* .buffer_alloc = */ buffer_alloc,
    /* .buffer_free = */ buffer_free,
    /* .buffer_upload = */ buffer_upload,
    /* .buffer_download = */ buffer_download,
    /* .buffer_copy = */ buffer_copy,
    /* .synchronize = */ synchronize,
    /* .kernels = */ g_kernels,
    /* .kernel_count = */ sizeof g_kernels / sizeof g_kernels[0],
    /* .supports = */ NULL,
    /* .reason = */ reason,
    /* .shutdown = */ shutdown_plugin,
};

/* ---------------- entry point -------------------------------------------- */

EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *host,
                                          const em_backend_table **table)
{
    if (!host || !table) return EM_ERR_NULL_ARG;
    em_status hst = em_plugin_host_init(&g_host, host, "cuda"); /* copies, checks the major */
    if (hst != EM_OK) return hst;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return cu_fail(EM_ERR_DEVICE, "no CUDA device: cudaGetDeviceCount: %s: %s",
                       cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (count <= 0)
        return cu_fail(EM_ERR_DEVICE, "no CUDA device: cudaGetDeviceCount: %s: %s",
                       cudaGetErrorName(cudaErrorNoDevice), "it reports 0 devices");
    if (count > CU_MAX_DEVICES) {
        cu_log(EM_LOG_WARN, "%d CUDA devices; only the first %d are used", count, CU_MAX_DEVICES);
        count = CU_MAX_DEVICES;
    }
    for (int i = 0; i < count; i++) {
        e = cudaGetDeviceProperties(&g_props[i], i);
        if (e != cudaSuccess)
            return cu_fail_cuda(e, "cudaGetDeviceProperties", __FILE__, __LINE__);
    }
    const char *tf = cu_getenv("EMBER_CUDA_TF32");
    g_tf32 = tf && !strcmp(tf, "1");
    const char *lt = cu_getenv("EMBER_CUDA_LT");
    g_lt = !(lt && !strcmp(lt, "0"));
    g_count = count;
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    cu_log(EM_LOG_INFO, "%d CUDA device%s, runtime %d.%d; first: %s (sm_%d%d)", count,
           count == 1 ? "" : "s", rt / 1000, (rt % 1000) / 10, g_props[0].name, g_props[0].major,
           g_props[0].minor);
    *table = &g_table;
    return EM_OK;
}

} /* extern "C" */
