/*
 * cuda_blas.cu — matmul, linear and linear_act (ABI 1.4).
 *
 * MATMUL is registered EM_KERNEL_CONTIGUOUS (the core hands dense row-major
 * inputs; a broadcast batch is materialised by the core for now). Row-major
 * C = A B is computed as the column-major C^T = B^T A^T, which needs no
 * transposes. f32: cublasSgemmStridedBatched; f64: Dgemm; f16/bf16:
 * cublasGemmStridedBatchedEx with f32 accumulation, or cuBLASLt for a
 * single (unbatched) product. TF32 is off unless EMBER_CUDA_TF32=1 (the
 * handle's math mode, set at device_open; cuBLASLt's compute type).
 *
 * LINEAR / LINEAR_ACT (out = act(x w^T + bias), act = relu for flag 1) take
 * any strides: x and w that are row- or column-major (any leading dim) go
 * to the GEMM as they are (a transposed view is a transpose flag), others
 * are copied to dense scratch first. f32/f16/bf16 run through cuBLASLt
 * (cuda_blaslt.cu): a bias that is a broadcast dense row (strides [0, 1])
 * is the BIAS epilogue, relu the RELU(_BIAS) epilogue where it keeps NaN
 * (probed), else Ember's relu kernel after the GEMM; a bias of another
 * layout is copied into out and added with beta = 1. f64, or no cuBLASLt
 * algorithm, or EMBER_CUDA_LT=0: cuBLAS with the bias copied into out.
 *
 * Not yet: matmul on strided/broadcast operands without the core's copies.
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
    /* column-major: C^T[N,M] = B^T[N,K] A^T[K,M]; a single f16/bf16 product
     * goes through cuBLASLt (its heuristic and workspace), batches and
     * f32/f64 through cuBLAS */
    if (B == 1 && (dt == EM_F16 || dt == EM_BF16)) {
        st = cu_lt_gemm(dev, dt, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, cu_ptr(b), N, cu_ptr(a), K, 0.0f,
                        cu_ptr(o), N, NULL, 0);
        if (st != EM_ERR_UNSUPPORTED) return st;
    }
    return gemm(dev, dt, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M, (int)K, cu_ptr(b), (int)N,
                (long long)(K * N), cu_ptr(a), (int)K, (long long)(M * K), 0.0, cu_ptr(o), (int)N,
                (long long)(M * N), (int)B);
}

/* ---------------- linear and linear_act ----------------------------------- */

/* A 2-D operand [r, c] as a BLAS matrix: row-major (*rowmaj 1) or
 * column-major with leading dim *ld (in elements, fits an int); 0 when its
 * strides fit neither (then it is copied). Size-1 dims take any stride. */
static int mat_layout(const em_tdesc *d, int64_t *ld, int *rowmaj)
{
    int64_t r = d->shape[0], c = d->shape[1], s0 = d->strides[0], s1 = d->strides[1];
    int64_t cmin = c > 1 ? c : 1, rmin = r > 1 ? r : 1;
    if ((c == 1 || s1 == 1) && (r == 1 || s0 >= cmin)) {
        *rowmaj = 1;
        *ld = r == 1 ? cmin : s0;
    } else if ((r == 1 || s0 == 1) && (c == 1 || s1 >= rmin)) {
        *rowmaj = 0;
        *ld = c == 1 ? rmin : s1;
    } else {
        return 0;
    }
    return fits_int(*ld);
}

/* A dense row-major copy of d in scratch memory (*blk; freed by the caller). */
static em_status dense_copy(cu_device *dev, const em_tdesc *d, em_tdesc *dense, cu_block **blk)
{
    *dense = *d;
    int64_t n = cu_numel(d);
    em_status st = cu_scratch_alloc(dev, (size_t)n * cu_dtype_size(d->dtype), blk);
    if (st) return st;
    dense->buffer = *blk;
    dense->offset = 0;
    int64_t s = 1;
    for (int k = d->ndim - 1; k >= 0; k--) {
        dense->strides[k] = s;
        s *= d->shape[k];
    }
    return cu_copy_desc(dev, dense, d);
}

/* relu in place on o (Ember's kernel: NaN stays NaN). */
static em_status relu_inplace(cu_device *dev, const em_tdesc *o, const em_op_params *prm)
{
    em_op_params p = *prm;
    p.flag = 0;
    em_op_call r = {sizeof r, EM_OP_RELU, 1, 1, o, o, &p};
    return cu_k_unary(dev, &r);
}

em_status cu_k_linear(void *vdev, const em_op_call *c)
{
    cu_device *dev = (cu_device *)vdev;
    em_status st = cu_check_arity(c, 2, 3, 1);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *w = &c->in[1], *o = &c->out[0];
    const em_tdesc *bias = c->n_in == 3 ? &c->in[2] : NULL;
    int relu = 0;
    if (c->op == EM_OP_LINEAR_ACT) {
        if (c->params->flag != 1)
            return cu_fail(EM_ERR_UNSUPPORTED, "cuda: linear_act with activation flag %d (only "
                           "1 = relu exists)", c->params->flag);
        relu = 1;
    }
    int dt = x->dtype;
    if (w->dtype != dt || o->dtype != dt || (bias && bias->dtype != dt))
        return cu_fail(EM_ERR_DTYPE, "cuda: linear dtypes differ (x %s, w %s, out %s)",
                       cu_dtype_name(dt), cu_dtype_name(w->dtype), cu_dtype_name(o->dtype));
    if (dt != EM_F32 && dt != EM_F64 && dt != EM_F16 && dt != EM_BF16)
        return cu_fail(EM_ERR_UNSUPPORTED, "cuda: no linear kernel for %s", cu_dtype_name(dt));
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
    if (M == 0 || N == 0) return EM_OK;

    /* the output: dense row-major in place, else a scratch result copied back */
    cu_block *tmp[3] = {NULL, NULL, NULL};
    em_tdesc od = *o, xd = *x, wd = *w;
    int64_t ldo = 0, ldx = 0, ldw = 0;
    int orow = 0, xrow = 0, wrow = 0;
    if (!mat_layout(o, &ldo, &orow) || !orow || (M > 1 && ldo != N)) {
        em_tdesc t = *o;
        st = cu_scratch_alloc(dev, (size_t)(M * N) * cu_dtype_size(dt), &tmp[0]);
        if (st == EM_OK) {
            t.buffer = tmp[0];
            t.offset = 0;
            t.strides[0] = N;
            t.strides[1] = 1;
            od = t;
        }
    }
    /* x and w as BLAS matrices (transposed views need no copy) */
    if (st == EM_OK && K > 0 && !mat_layout(x, &ldx, &xrow)) {
        st = dense_copy(dev, x, &xd, &tmp[1]);
        xrow = 1;
        ldx = K > 1 ? K : 1;
    }
    if (st == EM_OK && K > 0 && !mat_layout(w, &ldw, &wrow)) {
        st = dense_copy(dev, w, &wd, &tmp[2]);
        wrow = 1;
        ldw = K > 1 ? K : 1;
    }
    /* the bias: a dense row broadcast over the rows goes to the epilogue;
     * any other layout is copied into the output first (beta 1) */
    const void *bias_row = NULL;
    int bias_in_out = 0;
    if (st == EM_OK && bias) {
        int row = (M == 1 || bias->strides[0] == 0) && (N == 1 || bias->strides[1] == 1);
        if (row && K > 0 && dt != EM_F64 && dev->use_lt) {
            bias_row = cu_ptr(bias);
        } else {
            st = cu_copy_desc(dev, &od, bias);
            bias_in_out = 1;
        }
    }
    if (st == EM_OK && K == 0) {
        /* no products: out = act(bias or 0) */
        if (!bias_in_out) {
            em_op_params p = *c->params;
            p.scalar[0] = 0.0;
            em_op_call f = {sizeof f, EM_OP_FILL, 0, 1, NULL, &od, &p};
            st = cu_k_fill(dev, &f);
        }
        if (st == EM_OK && relu) st = relu_inplace(dev, &od, c->params);
    } else if (st == EM_OK) {
        int fused_relu = relu && cu_lt_relu_keeps_nan(dev, dt);
        /* column-major: D^T [N,M] = op(W) [N,K] op(X^T) [K,M]. W row-major
         * [N,K] is the column-major [K,N] matrix: op T, else op N. X
         * row-major [M,K] is the column-major [K,M] matrix: op N, else T. */
        cublasOperation_t ta = wrow ? CUBLAS_OP_T : CUBLAS_OP_N;
        cublasOperation_t tb = xrow ? CUBLAS_OP_N : CUBLAS_OP_T;
        double beta = bias_in_out ? 1.0 : 0.0;
        st = dt == EM_F64 ? EM_ERR_UNSUPPORTED
                          : cu_lt_gemm(dev, dt, ta, tb, N, M, K, cu_ptr(&wd), ldw, cu_ptr(&xd), ldx,
                                       (float)beta, cu_ptr(&od), N, bias_row, fused_relu);
        if (st == EM_ERR_UNSUPPORTED) {
            /* cuBLAS: the bias row is copied into out first */
            st = EM_OK;
            if (bias_row) {
                st = cu_copy_desc(dev, &od, bias);
                beta = 1.0;
            }
            if (st == EM_OK)
                st = gemm(dev, dt, ta, tb, (int)N, (int)M, (int)K, cu_ptr(&wd), (int)ldw, 0,
                          cu_ptr(&xd), (int)ldx, 0, beta, cu_ptr(&od), (int)N, 0, 1);
            fused_relu = 0;
        }
        if (st == EM_OK && relu && !fused_relu) st = relu_inplace(dev, &od, c->params);
    }
    if (st == EM_OK && tmp[0]) st = cu_copy_desc(dev, o, &od);
    for (int i = 0; i < 3; i++)
        if (tmp[i]) cu_scratch_free(dev, tmp[i]);
    return st;
}
