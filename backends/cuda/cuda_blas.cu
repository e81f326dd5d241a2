/*
 * cuda_blas.cu — matmul and linear through cuBLAS.
 *
 * Registered with EM_KERNEL_CONTIGUOUS, so the core hands dense row-major
 * inputs (a broadcast batch is materialised by the core for now). Row-major
 * C = A B is computed as the column-major C^T = B^T A^T, which needs no
 * transposes. f32: cublasSgemmStridedBatched; f64: Dgemm; f16/bf16:
 * cublasGemmStridedBatchedEx with f32 accumulation. TF32 is off unless
 * EMBER_CUDA_TF32=1 (the handle's math mode, set at device_open).
 *
 * Linear (out = x w^T + bias): the bias (already [M, N], dense) is copied
 * into out, then one GEMM with beta = 1.
 *
 * Not yet: cuBLASLt epilogues (fused bias/activation), strided operands
 * without the core's copies.
 */
#include "cuda_internal.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

/* Column-major GEMM on dev's stream: C[m,n] = op(A) op(B) + beta C, batched. */
static em_status gemm(cu_device *dev, int dt, cublasOperation_t ta, cublasOperation_t tb, int m,
                      int n, int k, const void *A, int lda, long long sa, const void *B, int ldb,
                      long long sb, double beta, void *C, int ldc, long long sc, int batch)
{
    em_status st = cu_set_device(dev);
    if (st) return st;
    switch (dt) {
    case EM_F32: {
        const float al = 1.0f, be = (float)beta;
        CUBLAS_CHECK(cublasSgemmStridedBatched(dev->blas, ta, tb, m, n, k, &al, (const float *)A,
                                               lda, sa, (const float *)B, ldb, sb, &be, (float *)C,
                                               ldc, sc, batch));
        return EM_OK;
    }
    case EM_F64: {
        const double al = 1.0, be = beta;
        CUBLAS_CHECK(cublasDgemmStridedBatched(dev->blas, ta, tb, m, n, k, &al, (const double *)A,
                                               lda, sa, (const double *)B, ldb, sb, &be,
                                               (double *)C, ldc, sc, batch));
        return EM_OK;
    }
    case EM_F16:
    case EM_BF16: {
        const float al = 1.0f, be = (float)beta;
        cudaDataType_t t = dt == EM_F16 ? CUDA_R_16F : CUDA_R_16BF;
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(dev->blas, ta, tb, m, n, k, &al, A, t, lda, sa, B,
                                                t, ldb, sb, &be, C, t, ldc, sc, batch,
                                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return EM_OK;
    }
    default:
        return cu_fail(EM_ERR_UNSUPPORTED, "cuda: no GEMM for %s", cu_dtype_name(dt));
    }
}

static int fits_int(int64_t v) { return v >= 0 && v <= 2147483647; }

em_status cu_k_matmul(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 2, 2, 1);
    if (st) return st;
    const em_tdesc *a = &c->in[0], *b = &c->in[1], *o = &c->out[0];
    int dt = a->dtype;
    if (b->dtype != dt || o->dtype != dt)
        return cu_fail(EM_ERR_DTYPE, "cuda: matmul dtypes %s, %s -> %s", cu_dtype_name(dt),
                       cu_dtype_name(b->dtype), cu_dtype_name(o->dtype));
    if (a->ndim != 3 || b->ndim != 3 || o->ndim != 3)
        return cu_fail(EM_ERR_SHAPE, "cuda: matmul wants 3-d operands (got %d, %d -> %d dims)",
                       a->ndim, b->ndim, o->ndim);
    int64_t B = o->shape[0], M = o->shape[1], N = o->shape[2], K = a->shape[2];
    if (a->shape[0] != B || b->shape[0] != B || a->shape[1] != M || b->shape[1] != K ||
        b->shape[2] != N)
        return cu_fail(EM_ERR_SHAPE, "cuda: matmul shapes [%lld,%lld,%lld] x [%lld,%lld,%lld] -> "
                       "[%lld,%lld,%lld]", (long long)a->shape[0], (long long)a->shape[1],
                       (long long)a->shape[2], (long long)b->shape[0], (long long)b->shape[1],
                       (long long)b->shape[2], (long long)B, (long long)M, (long long)N);
    if (!fits_int(B) || !fits_int(M) || !fits_int(N) || !fits_int(K))
        return cu_fail(EM_ERR_UNSUPPORTED, "cuda: matmul dims beyond 2^31-1");
    if (K == 0) {
        em_op_params p = *c->params;
        p.scalar[0] = 0.0;
        em_op_call f = {sizeof f, EM_OP_FILL, 0, 1, NULL, o, &p};
        return cu_k_fill(dev, &f);
    }
    /* column-major: C^T[N,M] = B^T[N,K] A^T[K,M] */
    return gemm(dev, dt, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M, (int)K, cu_ptr(b), (int)N,
                (long long)(K * N), cu_ptr(a), (int)K, (long long)(M * K), 0.0, cu_ptr(o), (int)N,
                (long long)(M * N), (int)B);
}

em_status cu_k_linear(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 2, 3, 1);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *w = &c->in[1], *o = &c->out[0];
    const em_tdesc *bias = c->n_in == 3 ? &c->in[2] : NULL;
    int dt = x->dtype;
    if (w->dtype != dt || o->dtype != dt || (bias && bias->dtype != dt))
        return cu_fail(EM_ERR_DTYPE, "cuda: linear dtypes differ (x %s, w %s, out %s)",
                       cu_dtype_name(dt), cu_dtype_name(w->dtype), cu_dtype_name(o->dtype));
    if (x->ndim != 2 || w->ndim != 2 || o->ndim != 2)
        return cu_fail(EM_ERR_SHAPE, "cuda: linear wants 2-d x, w and out");
    int64_t M = o->shape[0], N = o->shape[1], K = x->shape[1];
    if (x->shape[0] != M || w->shape[0] != N || w->shape[1] != K)
        return cu_fail(EM_ERR_SHAPE, "cuda: linear shapes x [%lld,%lld], w [%lld,%lld] -> [%lld,%lld]",
                       (long long)x->shape[0], (long long)K, (long long)w->shape[0],
                       (long long)w->shape[1], (long long)M, (long long)N);
    if (bias && (st = cu_check_shape("bias", bias, o))) return st;
    if (!fits_int(M) || !fits_int(N) || !fits_int(K))
        return cu_fail(EM_ERR_UNSUPPORTED, "cuda: linear dims beyond 2^31-1");
    double beta = 0.0;
    if (bias) {
        if ((st = cu_copy_desc(dev, o, bias))) return st;
        beta = 1.0;
    }
    if (K == 0) {
        if (bias) return EM_OK;
        em_op_params p = *c->params;
        p.scalar[0] = 0.0;
        em_op_call f = {sizeof f, EM_OP_FILL, 0, 1, NULL, o, &p};
        return cu_k_fill(dev, &f);
    }
    /* column-major: C^T[N,M] = W[N,K] X^T[K,M]; W row-major [N,K] is the
     * column-major [K,N] matrix, so op T with lda K */
    return gemm(dev, dt, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, cu_ptr(w), (int)K, 0,
                cu_ptr(x), (int)K, 0, beta, cu_ptr(o), (int)N, 0, 1);
}
