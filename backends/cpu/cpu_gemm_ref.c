/*
 * cpu_gemm_ref.c — a plain-C blocked gemm, C = A B + beta C, for f32 and
 * f64 with arbitrary element strides.
 *
 * Used when OpenBLAS cannot be loaded (so a missing libopenblas never
 * breaks Ember) and for sizes beyond 32-bit BLAS integers. B is packed in
 * KC x NC panels; each row of C accumulates in a small dense buffer with a
 * loop over j that the compiler vectorises. Roughly 10-30 GFLOP/s a core:
 * correct and not slow, but no match for OpenBLAS.
 *
 * Not for: choosing between BLAS and this (cpu_blas.c does that).
 */
#include "cpu_internal.h"

#include <stdlib.h>

#define KC 256
#define NC 512

#define GEMM_REF(NAME, T)                                                                \
    void NAME(int64_t M, int64_t N, int64_t K, const T *A, int64_t ars, int64_t acs,     \
              const T *B, int64_t brs, int64_t bcs, T beta, T *C, int64_t crs, int64_t ccs) \
    {                                                                                    \
        /* C = beta C first (beta 0 overwrites, also NaN garbage) */                     \
        for (int64_t i = 0; i < M; i++)                                                  \
            for (int64_t j = 0; j < N; j++) {                                            \
                T *c = C + i * crs + j * ccs;                                            \
                *c = beta == 0 ? (T)0 : beta * *c;                                       \
            }                                                                            \
        if (K == 0) return;                                                              \
        T *pack = malloc(sizeof(T) * KC * NC);                                           \
        T acc[NC];                                                                       \
        if (!pack) {                                                                     \
            /* no memory for the panel: the plain triple loop */                         \
            for (int64_t i = 0; i < M; i++)                                              \
                for (int64_t j = 0; j < N; j++) {                                        \
                    T s = 0;                                                             \
                    for (int64_t k = 0; k < K; k++)                                      \
                        s += A[i * ars + k * acs] * B[k * brs + j * bcs];                \
                    C[i * crs + j * ccs] += s;                                           \
                }                                                                        \
            return;                                                                      \
        }                                                                                \
        for (int64_t j0 = 0; j0 < N; j0 += NC) {                                         \
            int64_t nc = N - j0 < NC ? N - j0 : NC;                                      \
            for (int64_t k0 = 0; k0 < K; k0 += KC) {                                     \
                int64_t kc = K - k0 < KC ? K - k0 : KC;                                  \
                for (int64_t k = 0; k < kc; k++)                                         \
                    for (int64_t j = 0; j < nc; j++)                                     \
                        pack[k * nc + j] = B[(k0 + k) * brs + (j0 + j) * bcs];           \
                for (int64_t i = 0; i < M; i++) {                                        \
                    for (int64_t j = 0; j < nc; j++) acc[j] = 0;                         \
                    const T *a = A + i * ars + k0 * acs;                                 \
                    for (int64_t k = 0; k < kc; k++) {                                   \
                        const T av = a[k * acs];                                         \
                        const T *bp = pack + k * nc;                                     \
                        for (int64_t j = 0; j < nc; j++) acc[j] += av * bp[j];           \
                    }                                                                    \
                    T *c = C + i * crs + j0 * ccs;                                       \
                    for (int64_t j = 0; j < nc; j++) c[j * ccs] += acc[j];               \
                }                                                                        \
            }                                                                            \
        }                                                                                \
        free(pack);                                                                      \
    }

GEMM_REF(em__cpu_gemm_ref_f32, float)
GEMM_REF(em__cpu_gemm_ref_f64, double)
