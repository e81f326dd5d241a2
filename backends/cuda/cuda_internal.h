/*
 * cuda_internal.h — what the CUDA plugin's files share: the device context,
 * buffer blocks, error helpers (CU_CHECK / CUBLAS_CHECK turn every failure
 * into a status whose message names the call, file and line; nothing
 * aborts), descriptor helpers and the kernel entry points.
 *
 * Files: cuda_plugin.cu (entry, table, devices, caching allocator, pinned
 * staging, buffer functions, registry), cuda_common.cuh (device-side dtype
 * traits and the strided indexer), cuda_elementwise.cu (fill, copy, cast,
 * binary, axpy, unary), cuda_compare.cu (comparisons, where, clamp,
 * masked_fill), cuda_reduce.cu (sum .. logsumexp), cuda_softmax.cu
 * (softmax, log_softmax), cuda_random.cu (arange, linspace, Philox random
 * ops), cuda_index.cu (cat, index_select, gather, scatter_add, one_hot and
 * the device-side index error record), cuda_blas.cu (matmul, linear,
 * linear_act: operand layouts, cuBLAS), cuda_blaslt.cu (cuBLASLt GEMMs
 * with bias/relu epilogues, workspace, algorithm cache), cuda_fused.cu
 * (Adam step, cross-entropy rows: ABI 1.3).
 */
#ifndef EMBER_CUDA_INTERNAL_H
#define EMBER_CUDA_INTERNAL_H

#include "ember_plugin.h"
#include "ember_plugin_util.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define CU_NCLASS 64 /* size classes: powers of two, 512 B .. 2^63 */

/* A device buffer. The handle the core sees is the cu_block itself (host
 * memory); kernels reach the data through ptr. */
typedef struct cu_block {
    void *ptr;               /* device memory, cap bytes                      */
    size_t cap;
    int cls;                 /* size class, -1 when not cacheable             */
    struct cu_block *next;   /* cache list (free blocks)                      */
} cu_block;

typedef struct cu_lt cu_lt; /* cuda_blaslt.cu */

typedef struct cu_device {
    int index;               /* CUDA ordinal                                  */
    cudaStream_t stream;     /* all work of this device runs on it, in order  */
    cublasHandle_t blas;     /* bound to stream                               */
    pthread_mutex_t lock;    /* guards the cache and the counters             */
    cu_block *cache[CU_NCLASS];
    size_t cached_bytes, live_bytes;
    uint64_t n_malloc, n_reuse;
    int n_sms;               /* multiprocessors (launch sizing)               */
    int cc_major;            /* compute capability major                      */
    int tf32;                /* EMBER_CUDA_TF32=1: TF32 for f32 GEMMs          */
    int use_lt;              /* cuBLASLt on (EMBER_CUDA_LT=0 turns it off)     */
    cu_lt *lt;               /* cuBLASLt handle, workspace, algo cache (lazy)  */
    /* Pinned staging for upload/download (allocated at first use): two
     * halves used in turn, each guarded by an event recorded after the
     * last copy that touched it. stage_state 0: not yet, 1: ok, -1: the
     * pinned allocation failed (transfers go direct from pageable memory). */
    int stage_state;
    int stage_next;
    void *stage[2];
    cudaEvent_t stage_ev[2];
    /* Index errors: err_dev (device) holds the smallest bad index position
     * seen, ~0 when none; err_host (pinned) receives it after the op. */
    unsigned long long *err_dev;
    unsigned long long *err_host;
} cu_device;

#define CU_STAGE_BYTES ((size_t)4 << 20) /* per staging half */
#define CU_NO_ERROR (~0ull)

/* Error helpers. cu_fail formats a message into host->set_error. */
em_status cu_fail(em_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
em_status cu_fail_cuda(cudaError_t err, const char *call, const char *file, int line);
em_status cu_fail_cublas(cublasStatus_t st, const char *call, const char *file, int line);
void cu_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cu_getenv(const char *name);

#define CU_CHECK(call)                                                                   \
    do {                                                                                 \
        cudaError_t cu_err_ = (call);                                                    \
        if (cu_err_ != cudaSuccess) return cu_fail_cuda(cu_err_, #call, __FILE__, __LINE__); \
    } while (0)
#define CUBLAS_CHECK(call)                                                               \
    do {                                                                                 \
        cublasStatus_t cu_bst_ = (call);                                                 \
        if (cu_bst_ != CUBLAS_STATUS_SUCCESS)                                            \
            return cu_fail_cublas(cu_bst_, #call, __FILE__, __LINE__);                   \
    } while (0)
/* After a kernel launch: launch-configuration errors surface here. */
#define CU_CHECK_LAUNCH(what)                                                            \
    do {                                                                                 \
        cudaError_t cu_err_ = cudaGetLastError();                                        \
        if (cu_err_ != cudaSuccess)                                                      \
            return cu_fail_cuda(cu_err_, "launch of " what, __FILE__, __LINE__);         \
    } while (0)

/* Makes dev's GPU current on the calling thread. */
em_status cu_set_device(const cu_device *dev);

static inline size_t cu_dtype_size(int dt)
{
    switch (dt) {
    case EM_F32: case EM_I32: return 4;
    case EM_F64: case EM_I64: return 8;
    case EM_F16: case EM_BF16: return 2;
    case EM_BOOL: return 1;
    default: return 0;
    }
}
static inline int cu_dtype_valid(int dt) { return dt >= 0 && dt < EM_DTYPE_COUNT; }
const char *cu_dtype_name(int dt);

/* The element at the descriptor's offset, as a device pointer. */
static inline char *cu_ptr(const em_tdesc *d)
{
    return (char *)((cu_block *)d->buffer)->ptr + d->offset * (int64_t)cu_dtype_size(d->dtype);
}

static inline int64_t cu_numel(const em_tdesc *d)
{
    int64_t n = 1;
    for (int k = 0; k < d->ndim; k++) n *= d->shape[k];
    return n;
}

em_status cu_check_arity(const em_op_call *c, int min_in, int max_in, int n_out);
em_status cu_check_shape(const char *what, const em_tdesc *d, const em_tdesc *out);

/* Scratch device memory from the caching allocator, for partial results
 * inside one kernel call. Freeing right after queueing the kernels that use
 * it is safe (stream order). */
em_status cu_scratch_alloc(cu_device *dev, size_t bytes, cu_block **blk);
void cu_scratch_free(cu_device *dev, cu_block *blk);

/* Kernels (em_kernel_fn). */
em_status cu_k_fill(void *dev, const em_op_call *c);
em_status cu_k_copy(void *dev, const em_op_call *c);
em_status cu_k_cast(void *dev, const em_op_call *c);
em_status cu_k_binary(void *dev, const em_op_call *c);
em_status cu_k_axpy(void *dev, const em_op_call *c);
em_status cu_k_unary(void *dev, const em_op_call *c);
em_status cu_k_matmul(void *dev, const em_op_call *c);
em_status cu_k_linear(void *dev, const em_op_call *c);     /* LINEAR and LINEAR_ACT */
em_status cu_k_relu_backward(void *dev, const em_op_call *c); /* ABI 1.4 */
/* cuda_fused.cu: fused ops of ABI 1.3 (f32, f64). */
em_status cu_k_adam(void *dev, const em_op_call *c);
em_status cu_k_cross_entropy(void *dev, const em_op_call *c);
em_status cu_k_compare(void *dev, const em_op_call *c);
em_status cu_k_where(void *dev, const em_op_call *c);
em_status cu_k_clamp(void *dev, const em_op_call *c);
em_status cu_k_masked_fill(void *dev, const em_op_call *c);
em_status cu_k_reduce(void *dev, const em_op_call *c);
em_status cu_k_softmax(void *dev, const em_op_call *c);
em_status cu_k_arange(void *dev, const em_op_call *c);
em_status cu_k_linspace(void *dev, const em_op_call *c);
em_status cu_k_random(void *dev, const em_op_call *c);
em_status cu_k_cat(void *dev, const em_op_call *c);
em_status cu_k_index_select(void *dev, const em_op_call *c);
em_status cu_k_gather(void *dev, const em_op_call *c);
em_status cu_k_scatter_add(void *dev, const em_op_call *c);
em_status cu_k_one_hot(void *dev, const em_op_call *c);

/* cuda_blaslt.cu. Column-major D[m,n] = act(op(A) op(B) + beta D + bias)
 * through cuBLASLt (f32, f16, bf16; bias NULL or m values, one per row of
 * D, dense, in D's dtype; relu 1 applies max(v, 0)). EM_ERR_UNSUPPORTED with
 * no message when cuBLASLt is off or has no algorithm for the case. */
em_status cu_lt_gemm(cu_device *dev, int dt, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                     int64_t n, int64_t k, const void *A, int64_t lda, const void *B, int64_t ldb,
                     float beta, void *D, int64_t ldd, const void *bias, int relu);
/* 1 when cuBLASLt's relu epilogue keeps NaN for dtype dt on dev (probed
 * once per device and dtype); 0 when it drops it or cuBLASLt is off. */
int cu_lt_relu_keeps_nan(cu_device *dev, int dt);
/* Releases the cuBLASLt state (device_close, before the cache). */
void cu_lt_release(cu_device *dev);

/* Strided copy between two descriptors of the same dtype and shape, queued
 * on dev's stream (also used by the BLAS kernels). */
em_status cu_copy_desc(cu_device *dev, const em_tdesc *dst, const em_tdesc *src);

#endif /* EMBER_CUDA_INTERNAL_H */
