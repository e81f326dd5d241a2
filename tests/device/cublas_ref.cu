/*
 * cublas_ref.cu — the peer figures for gpu_bench.c: the same products called on
 * cuBLAS directly and the card's device-to-device copy bandwidth, so that the
 * targets of issue [5] ("f32 matmul 4096 at 90% of cuBLAS", "add at 80% of the
 * measured copy bandwidth") are ratios measured on the same card in the same run.
 *
 *   matmul_f32_1024, matmul_f32_4096   cublasSgemm, default math (no TF32, as Ember's default)
 *   matmul_bf16_8192  cublasGemmEx bf16 in/out, f32 accumulation
 *   matmul_f16_8192   cublasGemmEx f16 in/out, f32 accumulation
 *   copy_256M         cudaMemcpyAsync device to device, 1 GiB (GB/s counts read+write)
 *
 * Medians of timed repeats (CUDA events) after a warm-up. Prints "key value" lines.
 * Build: nvcc -O2 -o cublas_ref cublas_ref.cu -lcublas
 */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#define CHECK(x)                                                                    \
    do {                                                                            \
        cudaError_t e_ = (x);                                                       \
        if (e_ != cudaSuccess) {                                                    \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,         \
                         cudaGetErrorString(e_));                                   \
            return 1;                                                               \
        }                                                                           \
    } while (0)
#define CHECK_BLAS(x)                                                               \
    do {                                                                            \
        cublasStatus_t s_ = (x);                                                    \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                          \
            std::fprintf(stderr, "%s:%d: %s: status %d\n", __FILE__, __LINE__, #x,  \
                         (int)s_);                                                  \
            return 1;                                                               \
        }                                                                           \
    } while (0)

/* Uniform values in [-1, 1) from a hash of the index: tensor cores run faster on
 * zeros (about 894 vs 788 TFLOP/s for bf16 on an H200), so the peer gets random
 * data, as gpu_bench and PyTorch do. */
__device__ static float hash_uniform(size_t i)
{
    unsigned long long x = (unsigned long long)i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (float)(x >> 40) * (2.0f / 16777216.0f) - 1.0f;
}
template <class T> __global__ void fill_random(T *p, size_t n, size_t salt)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (T)hash_uniform(i + salt);
}

template <class F> static float median_ms(F f, int inner, int reps = 9)
{
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    f();
    f();
    cudaDeviceSynchronize();
    std::vector<float> t;
    for (int r = 0; r < reps; r++) {
        cudaEventRecord(a);
        for (int i = 0; i < inner; i++) f();
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms / inner);
    }
    std::sort(t.begin(), t.end());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return t[t.size() / 2];
}

int main()
{
    cublasHandle_t h;
    CHECK_BLAS(cublasCreate(&h));
    const size_t big = (size_t)8192 * 8192;
    void *A, *B, *C;
    CHECK(cudaMalloc(&A, big * 4));
    CHECK(cudaMalloc(&B, big * 4));
    CHECK(cudaMalloc(&C, big * 4));

    for (int n : {1024, 4096}) {
        const float one = 1, zero = 0;
        fill_random<<<1024, 256>>>((float *)A, (size_t)n * n, 0);
        fill_random<<<1024, 256>>>((float *)B, (size_t)n * n, 1u << 30);
        CHECK(cudaGetLastError());
        float ms = median_ms([&] {
            cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, (float *)A, n, (float *)B, n,
                        &zero, (float *)C, n);
        }, 10);
        CHECK(cudaGetLastError());
        std::printf("matmul_f32_%d_tflops %.2f\n", n, 2.0 * n * n * n / (ms * 1e-3) * 1e-12);
    }
    const cudaDataType_t types[2] = {CUDA_R_16BF, CUDA_R_16F};
    const char *names[2] = {"matmul_bf16_8192", "matmul_f16_8192"};
    for (int t = 0; t < 2; t++) {
        const int n = 8192;
        const float one = 1, zero = 0;
        cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
        if (t == 0) {
            fill_random<<<1024, 256>>>((__nv_bfloat16 *)A, (size_t)n * n, 0);
            fill_random<<<1024, 256>>>((__nv_bfloat16 *)B, (size_t)n * n, 1u << 30);
        } else {
            fill_random<<<1024, 256>>>((__half *)A, (size_t)n * n, 0);
            fill_random<<<1024, 256>>>((__half *)B, (size_t)n * n, 1u << 30);
        }
        CHECK(cudaGetLastError());
        float ms = median_ms([&] {
            st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A, types[t], n, B,
                              types[t], n, &zero, C, types[t], n, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT);
        }, 3);
        CHECK_BLAS(st);
        std::printf("%s_tflops %.2f\n", names[t], 2.0 * n * n * n / (ms * 1e-3) * 1e-12);
    }
    {
        const size_t n = (size_t)256 << 20; /* f32 elements: 1 GiB */
        void *X, *Y;
        CHECK(cudaMalloc(&X, n * 4));
        CHECK(cudaMalloc(&Y, n * 4));
        float ms = median_ms([&] { cudaMemcpyAsync(Y, X, n * 4, cudaMemcpyDeviceToDevice); }, 5);
        CHECK(cudaGetLastError());
        std::printf("copy_256M_gbs %.1f\n", 2.0 * 4.0 * (double)n / (ms * 1e-3) * 1e-9);
        cudaFree(X);
        cudaFree(Y);
    }
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    cublasDestroy(h);
    return 0;
}
