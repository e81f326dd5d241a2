/*
 * test_linalg.c — matmul (every torch.matmul form: 1-D·1-D, 2-D·1-D, 1-D·2-D,
 * 2-D·2-D, batched with broadcast batch dims; transposed, strided and expanded
 * operands; 1x1, odd sizes and 0-size dims), linear (with and without bias,
 * x of 1, 2 and 3 dims) and addmm (c broadcasting) in f32/f64/f16/bf16,
 * against a double-precision reference.
 * Not for the dtype errors of these ops (test_errors.c).
 */
#include "test_util.h"

/* Tolerance relative to scale = sum_k |a_ik b_kj| (accumulation error). */
static tu_tol mm_tol(em_dtype d)
{
    switch (d) {
    case EM_F64: return (tu_tol){1e-300, 1e-13, 0};
    case EM_F32: return (tu_tol){1e-30, 1e-5, 0};
    case EM_F16: return (tu_tol){0, 2e-4, 1};
    default: return (tu_tol){0, 1e-3, 1};
    }
}

/* Reference torch.matmul in double. Returns 0 if the shapes are invalid;
 * fills (*ond, osh) and ref/scale (callers allocate enough). */
static int matmul_ref(const double *a, int na, const int64_t *sa, const double *b, int nb,
                      const int64_t *sb, int *ond, int64_t *osh, double **ref, double **scale)
{
    int a1 = na == 1, b1 = nb == 1;
    int64_t m = a1 ? 1 : sa[na - 2], k = sa[na - 1];
    int64_t kb = b1 ? sb[0] : sb[nb - 2], n = b1 ? 1 : sb[nb - 1];
    if (k != kb) return 0;
    int nba = a1 ? 0 : na - 2, nbb = b1 ? 0 : nb - 2;
    int nbo;
    int64_t bso[EM_MAX_DIMS];
    if (!tu_broadcast(nba, sa, nbb, sb, &nbo, bso)) return 0;
    int64_t nbatch = tu_numel(nbo, bso);
    *ond = 0;
    for (int i = 0; i < nbo; i++) osh[(*ond)++] = bso[i];
    if (!a1) osh[(*ond)++] = m;
    if (!b1) osh[(*ond)++] = n;
    int64_t total = nbatch * m * n;
    *ref = malloc(sizeof(double) * (size_t)(total + 1));
    *scale = malloc(sizeof(double) * (size_t)(total + 1));
    int64_t idx[EM_MAX_DIMS];
    for (int64_t bi = 0; bi < nbatch; bi++) {
        tu_unravel(bi, nbo, bso, idx);
        int64_t ab = nba ? tu_bcast_index(idx, nbo, nba, sa) : 0;
        int64_t bb = nbb ? tu_bcast_index(idx, nbo, nbb, sb) : 0;
        const double *A = a + ab * m * k, *B = b + bb * k * n;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0, sc = 0;
                for (int64_t p = 0; p < k; p++) {
                    s += A[i * k + p] * B[p * n + j];
                    sc += fabs(A[i * k + p] * B[p * n + j]);
                }
                (*ref)[(bi * m + i) * n + j] = s;
                (*scale)[(bi * m + i) * n + j] = sc;
            }
    }
    return 1;
}

typedef struct mmcase {
    int na;
    int64_t a[4];
    int nb;
    int64_t b[4];
} mmcase;

static const mmcase mmcases[] = {
    {1, {5}, 1, {5}},
    {1, {1}, 1, {1}},
    {1, {0}, 1, {0}},
    {2, {3, 4}, 1, {4}},
    {1, {4}, 2, {4, 3}},
    {2, {1, 1}, 2, {1, 1}},
    {2, {3, 5}, 2, {5, 7}},
    {2, {17, 33}, 2, {33, 9}},
    {2, {64, 64}, 2, {64, 64}},
    {2, {4, 0}, 2, {0, 3}},
    {2, {0, 3}, 2, {3, 2}},
    {2, {3, 2}, 2, {2, 0}},
    {3, {2, 3, 4}, 2, {4, 5}},
    {1, {4}, 3, {2, 4, 5}},
    {3, {2, 3, 4}, 1, {4}},
    {4, {2, 1, 3, 4}, 3, {5, 4, 2}},
    {3, {3, 2, 4}, 3, {3, 4, 6}},
    {2, {1, 7}, 2, {7, 1}},
    {4, {2, 1, 5, 3}, 4, {1, 4, 3, 6}},
    {2, {127, 129}, 2, {129, 3}},
    {2, {5, 128}, 2, {128, 6}},
    {3, {1, 3, 4}, 3, {6, 4, 2}},
    {2, {300, 257}, 2, {257, 129}},
    {2, {1, 1000}, 2, {1000, 1}},
    {2, {130, 1}, 2, {1, 70}},
    {3, {2, 1, 1}, 3, {2, 1, 5}},
    {2, {65, 129}, 2, {129, 67}},
    {1, {1000}, 1, {1000}},
    {4, {1, 1, 3, 4}, 1, {4}},
    {3, {16, 33, 65}, 3, {16, 65, 31}},
    /* one output row / column (gemv) and K = 1 (outer product) paths */
    {2, {1, 300}, 2, {300, 70}},
    {2, {70, 300}, 2, {300, 1}},
    {3, {2, 1, 33}, 3, {2, 33, 20}},
    {2, {256, 1}, 2, {1, 784}},
};
#define N_MMCASES (int)(sizeof mmcases / sizeof mmcases[0])

static void test_matmul(void)
{
    for (int di = 0; di < 4; di++)
        for (int c = 0; c < N_MMCASES; c++)
            for (int la = 0; la < TU_LAYOUT_COUNT; la++) {
                em_dtype d = tu_float_dtypes[di];
                const mmcase *mc = &mmcases[c];
                int lb = (la + c) % TU_LAYOUT_COUNT; /* vary b's layout independently */
                int64_t nA = tu_numel(mc->na, mc->a), nB = tu_numel(mc->nb, mc->b);
                double *va = malloc(sizeof(double) * (size_t)(nA + 1));
                double *vb = malloc(sizeof(double) * (size_t)(nB + 1));
                tu_fill(va, nA, d, -1, 1);
                tu_fill(vb, nB, d, -1, 1);
                em_tensor *a = tu_make(va, d, mc->na, mc->a, la);
                em_tensor *b = tu_make(vb, d, mc->nb, mc->b, lb);
                int ond = 0;
                int64_t osh[EM_MAX_DIMS];
                double *ref = NULL, *scale = NULL;
                matmul_ref(va, mc->na, mc->a, vb, mc->nb, mc->b, &ond, osh, &ref, &scale);
                int64_t no = tu_numel(ond, osh);
                for (int64_t i = 0; i < no; i++) ref[i] = tu_round(ref[i], d);
                em_clear_error();
                em_tensor *r = (a && b) ? em_matmul(a, b) : NULL;
                char label[256], s1[48], s2[48];
                snprintf(label, sizeof label, "matmul %s %sx%s a:%s b:%s", tu_dt(d),
                         tu_shape_str(mc->na, mc->a, s1, sizeof s1),
                         tu_shape_str(mc->nb, mc->b, s2, sizeof s2), tu_layout_names[la],
                         tu_layout_names[lb]);
                tu_compare_scaled(label, r, d, ond, osh, ref, scale, mm_tol(d), 1);
                if (r && a && no > 0) CHECKF(!em_tensor_shares_storage(r, a), "%s: result shares storage", label);
                em_tensor_release(r);
                em_tensor_release(a);
                em_tensor_release(b);
                free(va); free(vb); free(ref); free(scale);
            }
}

static void test_linear(void)
{
    static const struct { int nx; int64_t x[3]; int64_t out; } cases[] = {
        {1, {5}, 3}, {2, {4, 5}, 3}, {3, {2, 3, 5}, 4}, {2, {1, 1}, 1}, {3, {2, 7, 33}, 17},
        {2, {3, 0}, 4}, {2, {0, 6}, 2}, {2, {6, 64}, 130},
    };
    for (int di = 0; di < 4; di++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            for (int bias = 0; bias < 2; bias++)
                for (int lay = 0; lay < 3; lay++) {
                    em_dtype d = tu_float_dtypes[di];
                    int nx = cases[c].nx;
                    const int64_t *xs = cases[c].x;
                    int64_t in = xs[nx - 1], out = cases[c].out;
                    int64_t ws[2] = {out, in}, bs[1] = {out};
                    int64_t nX = tu_numel(nx, xs), rows = nX / (in ? in : 1);
                    if (in == 0) rows = tu_numel(nx - 1, xs);
                    double *vx = malloc(sizeof(double) * (size_t)(nX + 1));
                    double *vw = malloc(sizeof(double) * (size_t)(out * in + 1));
                    double vbias[256];
                    tu_fill(vx, nX, d, -1, 1);
                    tu_fill(vw, out * in, d, -1, 1);
                    tu_fill(vbias, out, d, -1, 1);
                    em_tensor *x = tu_make(vx, d, nx, xs, lay);
                    /* the weight is often a transposed view (tied embeddings) */
                    em_tensor *w = tu_make(vw, d, 2, ws, lay == 0 ? TU_TRANSPOSED : TU_CONTIG);
                    em_tensor *bt = bias ? tu_make(vbias, d, 1, bs, lay == 2 ? TU_STRIDED : TU_CONTIG) : NULL;
                    int64_t osh[EM_MAX_DIMS];
                    for (int i = 0; i < nx - 1; i++) osh[i] = xs[i];
                    osh[nx - 1] = out;
                    double *ref = malloc(sizeof(double) * (size_t)(rows * out + 1));
                    double *scale = malloc(sizeof(double) * (size_t)(rows * out + 1));
                    for (int64_t r = 0; r < rows; r++)
                        for (int64_t o = 0; o < out; o++) {
                            double s = bias ? vbias[o] : 0, sc = fabs(s);
                            for (int64_t p = 0; p < in; p++) {
                                s += vx[r * in + p] * vw[o * in + p];
                                sc += fabs(vx[r * in + p] * vw[o * in + p]);
                            }
                            ref[r * out + o] = tu_round(s, d);
                            scale[r * out + o] = sc;
                        }
                    em_clear_error();
                    em_tensor *y = (x && w) ? em_linear(x, w, bt) : NULL;
                    char label[200], sb[48];
                    snprintf(label, sizeof label, "linear %s x%s out=%" PRId64 " %s %s", tu_dt(d),
                             tu_shape_str(nx, xs, sb, sizeof sb), out, bias ? "bias" : "no-bias",
                             tu_layout_names[lay]);
                    tu_tol tol = mm_tol(d);
                    if (bias && (d == EM_F16 || d == EM_BF16)) tol.ulps += 1; /* bias added after rounding */
                    tu_compare_scaled(label, y, d, nx, osh, ref, scale, tol, 1);
                    em_tensor_release(y);
                    em_tensor_release(x);
                    em_tensor_release(w);
                    em_tensor_release(bt);
                    free(vx); free(vw); free(ref); free(scale);
                }
}

static void test_addmm(void)
{
    static const struct { int nc; int64_t c[2]; } cshapes[] = {
        {2, {4, 6}}, {1, {6}}, {2, {1, 6}}, {2, {4, 1}}, {0, {0}}, {2, {1, 1}},
    };
    static const int64_t dims[][3] = {{4, 5, 6}, {4, 0, 6}, {4, 33, 6}};
    for (int di = 0; di < 4; di++)
        for (size_t cs = 0; cs < sizeof cshapes / sizeof cshapes[0]; cs++)
            for (size_t dd = 0; dd < sizeof dims / sizeof dims[0]; dd++)
                for (int lay = 0; lay < 3; lay++) {
                    em_dtype d = tu_float_dtypes[di];
                    int64_t n = dims[dd][0], k = dims[dd][1], m = dims[dd][2];
                    int64_t sa[2] = {n, k}, sb[2] = {k, m}, so[2] = {n, m};
                    int nc = cshapes[cs].nc;
                    const int64_t *sc = cshapes[cs].c;
                    double va[4 * 33], vb[33 * 6], vc[24];
                    tu_fill(va, n * k, d, -1, 1);
                    tu_fill(vb, k * m, d, -1, 1);
                    tu_fill(vc, tu_numel(nc, sc), d, -1, 1);
                    em_tensor *a = tu_make(va, d, 2, sa, lay);
                    em_tensor *b = tu_make(vb, d, 2, sb, (lay + 1) % 3);
                    em_tensor *c = tu_make(vc, d, nc, sc, lay);
                    double ref[24], scale[24];
                    int64_t idx[2];
                    for (int64_t i = 0; i < n; i++)
                        for (int64_t j = 0; j < m; j++) {
                            idx[0] = i;
                            idx[1] = j;
                            double s = vc[tu_bcast_index(idx, 2, nc, sc)], s2 = fabs(s);
                            for (int64_t p = 0; p < k; p++) {
                                s += va[i * k + p] * vb[p * m + j];
                                s2 += fabs(va[i * k + p] * vb[p * m + j]);
                            }
                            ref[i * m + j] = tu_round(s, d);
                            scale[i * m + j] = s2;
                        }
                    em_clear_error();
                    em_tensor *r = (a && b && c) ? em_addmm(c, a, b) : NULL;
                    char label[200], sb1[32];
                    snprintf(label, sizeof label, "addmm %s c%s [%" PRId64 ",%" PRId64 "]x[%" PRId64
                             ",%" PRId64 "] %s", tu_dt(d), tu_shape_str(nc, sc, sb1, sizeof sb1),
                             n, k, k, m, tu_layout_names[lay]);
                    tu_tol tol = mm_tol(d);
                    if (d == EM_F16 || d == EM_BF16) tol.ulps += 1;
                    tu_compare_scaled(label, r, d, 2, so, ref, scale, tol, 1);
                    em_tensor_release(r);
                    em_tensor_release(a);
                    em_tensor_release(b);
                    em_tensor_release(c);
                }
}

/* A known product, independent of random inputs. */
static void test_matmul_known(void)
{
    double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {7, 8, 9, 10, 11, 12};
    int64_t sa[2] = {2, 3}, sb[2] = {3, 2}, so[2] = {2, 2};
    double want[4] = {58, 64, 139, 154};
    for (int di = 0; di < 4; di++) {
        em_dtype d = tu_float_dtypes[di];
        em_tensor *ta = tu_make(a, d, 2, sa, TU_CONTIG), *tb = tu_make(b, d, 2, sb, TU_CONTIG);
        em_tensor *r = em_matmul(ta, tb);
        char label[64];
        snprintf(label, sizeof label, "matmul %s known 2x3 @ 3x2", tu_dt(d));
        tu_compare_exact(label, r, d, 2, so, want);
        em_tensor_release(r);
        em_tensor_release(ta);
        em_tensor_release(tb);
    }
}

int main(void)
{
    tu_init("test_linalg");
    test_matmul_known();
    test_matmul();
    test_linear();
    test_addmm();
    em_shutdown();
    return tu_finish();
}
