/*
 * cuda_blaslt.cu — GEMMs through cuBLASLt with fused epilogues (bias,
 * relu, bias + relu) for LINEAR / LINEAR_ACT and 2-D f16/bf16 matmul.
 *
 * Per device (cu_device.lt): one cuBLASLt handle and one persistent
 * workspace (32 MiB on sm_90+, 4 MiB before; taken from the caching
 * allocator at the first cuBLASLt call and kept until device_close, so no
 * call allocates), and a small cache of the heuristic's choice keyed by
 * dtype, sizes, leading dims, transposes, epilogue, beta, TF32 and the
 * alignment of every pointer (the heuristic's answer depends on them).
 * Descriptors are made per call (host-only, cheap).
 *
 * cu_lt_gemm returns EM_ERR_UNSUPPORTED without recording an error when
 * cuBLASLt has no algorithm for the case (or is off: EMBER_CUDA_LT=0), so
 * the caller takes the cuBLAS path; every other cuBLASLt failure is a
 * status naming the call, file and line (CUBLAS_CHECK).
 *
 * ReLU and NaN: the ABI keeps NaN through relu. Whether the relu epilogue
 * does is probed once per device and dtype (a 1x1x1 GEMM of NaNs, one
 * synchronisation); where it does not, cu_lt_relu_keeps_nan says so and the
 * caller applies relu with Ember's own kernel instead.
 */
#include "cuda_internal.h"

#include <stdlib.h>
#include <string.h>

#define LT_CACHE 32

typedef struct lt_key {
    int32_t dt, ta, tb, epi, beta_nz, tf32;
    int64_t m, n, k, lda, ldb, ldd;
    uint32_t align[4]; /* A, B, D (= C), bias */
} lt_key;

typedef struct lt_entry {
    lt_key key;
    int valid;      /* 1: algo usable; -1: no algorithm (use cuBLAS) */
    cublasLtMatmulAlgo_t algo;
} lt_entry;

struct cu_lt {
    cublasLtHandle_t handle;
    cu_block *ws;
    size_t ws_bytes;
    lt_entry cache[LT_CACHE];
    int next;                       /* round-robin replacement */
    signed char relu_nan[EM_DTYPE_COUNT]; /* 0 unknown, 1 keeps NaN, -1 drops */
};

static uint32_t ptr_align(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (!a) return 256;
    uintptr_t low = a & (~a + 1);
    return low >= 256 ? 256u : (uint32_t)low;
}

/* The device's cuBLASLt state, created on first use; NULL when disabled. */
static em_status lt_get(cu_device *dev, cu_lt **out)
{
    *out = NULL;
    if (!dev->use_lt) return EM_OK;
    if (dev->lt) {
        *out = dev->lt;
        return EM_OK;
    }
    em_status st = cu_set_device(dev); /* the handle belongs to the current device */
    if (st) return st;
    cu_lt *lt = (cu_lt *)calloc(1, sizeof *lt);
    if (!lt) return cu_fail(EM_ERR_OUT_OF_MEMORY, "cuda: out of host memory");
    cublasStatus_t b = cublasLtCreate(&lt->handle);
    if (b != CUBLAS_STATUS_SUCCESS) {
        free(lt);
        return cu_fail_cublas(b, "cublasLtCreate", __FILE__, __LINE__);
    }
    size_t want = dev->cc_major >= 9 ? ((size_t)32 << 20) : ((size_t)4 << 20);
    if (cu_scratch_alloc(dev, want, &lt->ws) == EM_OK) {
        lt->ws_bytes = want;
    } else {
        /* no workspace: cuBLASLt still works, with fewer algorithms */
        cu_log(EM_LOG_WARN, "device %d: no %zu-byte cuBLASLt workspace; running without",
               dev->index, want);
        lt->ws = NULL;
        lt->ws_bytes = 0;
    }
    dev->lt = lt;
    *out = lt;
    return EM_OK;
}

void cu_lt_release(cu_device *dev)
{
    cu_lt *lt = dev->lt;
    if (!lt) return;
    if (lt->ws) cu_scratch_free(dev, lt->ws);
    cublasLtDestroy(lt->handle);
    free(lt);
    dev->lt = NULL;
}

static cudaDataType_t lt_type(int dt)
{
    return dt == EM_F16 ? CUDA_R_16F : dt == EM_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

/* Frees the descriptors on every exit of cu_lt_gemm. */
typedef struct lt_descs {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulPreference_t pref;
} lt_descs;

static void lt_descs_free(lt_descs *s)
{
    if (s->pref) cublasLtMatmulPreferenceDestroy(s->pref);
    if (s->d) cublasLtMatrixLayoutDestroy(s->d);
    if (s->b) cublasLtMatrixLayoutDestroy(s->b);
    if (s->a) cublasLtMatrixLayoutDestroy(s->a);
    if (s->op) cublasLtMatmulDescDestroy(s->op);
}

static em_status lt_gemm_body(cu_device *dev, cu_lt *lt, lt_descs *s, int dt, cublasOperation_t ta,
                              cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                              const void *A, int64_t lda, const void *B, int64_t ldb, float beta,
                              void *D, int64_t ldd, const void *bias, int relu)
{
    cublasComputeType_t ct = dt == EM_F32 && dev->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                      : CUBLAS_COMPUTE_32F;
    cudaDataType_t t = lt_type(dt);
    int32_t epi = bias ? (relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                       : (relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
    int32_t opa = ta, opb = tb;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&s->op, ct, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    uint32_t epi_u = (uint32_t)epi;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi_u,
                                                sizeof epi_u));
    if (bias)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(s->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &bias, sizeof bias));
    /* stored shapes: op(A) is m x k, op(B) is k x n */
    uint64_t ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    uint64_t br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&s->a, t, ar, ac, lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&s->b, t, br, bc, ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&s->d, t, (uint64_t)m, (uint64_t)n, ldd));

    lt_key key;
    memset(&key, 0, sizeof key);
    key.dt = dt;
    key.ta = ta;
    key.tb = tb;
    key.epi = epi;
    key.beta_nz = beta != 0.0f;
    key.tf32 = ct == CUBLAS_COMPUTE_32F_FAST_TF32;
    key.m = m;
    key.n = n;
    key.k = k;
    key.lda = lda;
    key.ldb = ldb;
    key.ldd = ldd;
    key.align[0] = ptr_align(A);
    key.align[1] = ptr_align(B);
    key.align[2] = ptr_align(D);
    key.align[3] = bias ? ptr_align(bias) : 0;
    lt_entry *hit = NULL;
    for (int i = 0; i < LT_CACHE && !hit; i++)
        if (lt->cache[i].valid && !memcmp(&lt->cache[i].key, &key, sizeof key)) hit = &lt->cache[i];
    if (!hit) {
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&s->pref));
        size_t ws = lt->ws_bytes;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            s->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        const cublasLtMatmulPreferenceAttributes_t al[3] = {
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
        for (int i = 0; i < 3; i++)
            CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(s->pref, al[i], &key.align[i],
                                                              sizeof key.align[i]));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            s->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.align[2], sizeof key.align[2]));
        cublasLtMatmulHeuristicResult_t res;
        memset(&res, 0, sizeof res);
        int found = 0;
        cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt->handle, s->op, s->a, s->b, s->d,
                                                           s->d, s->pref, 1, &res, &found);
        hit = &lt->cache[lt->next];
        lt->next = (lt->next + 1) % LT_CACHE;
        hit->key = key;
        if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && found < 1)) {
            hit->valid = -1;
        } else if (hs != CUBLAS_STATUS_SUCCESS) {
            hit->valid = 0;
            return cu_fail_cublas(hs, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
        } else {
            hit->valid = 1;
            hit->algo = res.algo;
        }
    }
    if (hit->valid < 0) return EM_ERR_UNSUPPORTED; /* no message: the caller uses cuBLAS */
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasLtMatmul(lt->handle, s->op, &alpha, A, s->a, B, s->b, &beta, D, s->d, D, s->d,
                                &hit->algo, lt->ws ? lt->ws->ptr : NULL, lt->ws_bytes,
                                dev->stream));
    return EM_OK;
}

em_status cu_lt_gemm(cu_device *dev, int dt, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                     int64_t n, int64_t k, const void *A, int64_t lda, const void *B, int64_t ldb,
                     float beta, void *D, int64_t ldd, const void *bias, int relu)
{
    if (dt != EM_F32 && dt != EM_F16 && dt != EM_BF16) return EM_ERR_UNSUPPORTED;
    cu_lt *lt;
    em_status st = lt_get(dev, &lt);
    if (st) return st;
    if (!lt) return EM_ERR_UNSUPPORTED;
    if ((st = cu_set_device(dev))) return st;
    lt_descs s;
    memset(&s, 0, sizeof s);
    st = lt_gemm_body(dev, lt, &s, dt, ta, tb, m, n, k, A, lda, B, ldb, beta, D, ldd, bias, relu);
    lt_descs_free(&s);
    return st;
}

static int is_nan_bits(int dt, const unsigned char *p)
{
    if (dt == EM_F32) {
        uint32_t u;
        memcpy(&u, p, 4);
        return (u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu);
    }
    uint16_t h;
    memcpy(&h, p, 2);
    if (dt == EM_F16) return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu);
    return (h & 0x7f80u) == 0x7f80u && (h & 0x007fu); /* bf16 */
}

int cu_lt_relu_keeps_nan(cu_device *dev, int dt)
{
    cu_lt *lt;
    if (!cu_dtype_valid(dt) || lt_get(dev, &lt) != EM_OK || !lt) return 0;
    if (lt->relu_nan[dt]) return lt->relu_nan[dt] > 0;
    int keeps = 0;
    cu_block *blk = NULL;
    unsigned char host[8] = {0};
    if (cu_scratch_alloc(dev, 64, &blk) == EM_OK && cu_set_device(dev) == EM_OK) {
        char *base = (char *)blk->ptr;
        /* all-ones bytes are a NaN in f32, f16 and bf16 */
        if (cudaMemsetAsync(base, 0xff, 32, dev->stream) == cudaSuccess &&
            cu_lt_gemm(dev, dt, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, base, 1, base + 16, 1, 0.0f,
                       base + 32, 1, NULL, 1) == EM_OK &&
            cudaMemcpyAsync(host, base + 32, 4, cudaMemcpyDeviceToHost, dev->stream) == cudaSuccess &&
            cudaStreamSynchronize(dev->stream) == cudaSuccess)
            keeps = is_nan_bits(dt, host);
        cudaGetLastError();
    }
    if (blk) cu_scratch_free(dev, blk);
    lt->relu_nan[dt] = keeps ? 1 : -1;
    cu_log(EM_LOG_DEBUG, "device %d: cuBLASLt relu epilogue %s NaN for %s", dev->index,
           keeps ? "keeps" : "drops", cu_dtype_name(dt));
    return keeps;
}
