/*
 * test_data_loader.c — datasets and the DataLoader (ember_data.h): batch
 * order without shuffle, drop_last sizes and em_dataloader_len, shuffling
 * (a permutation, reproducible from the seed, different across epochs and
 * seeds, set_epoch), identical batches for num_workers 0/1/2/4 with a
 * callback that finishes samples out of order, TensorDataset over an f32
 * matrix (also non-contiguous) and i64 labels, a user-defined dataset with
 * several fields of several dtypes and shapes, a callback failing at sample
 * k (num_workers 0 and 3: the error names k, batches before it arrive, no
 * hang, the loader restarts and can be destroyed), destroying mid-epoch,
 * and argument errors (batch size 0, NULL, bad definitions, mismatched first
 * dims). Expected values come from the test's own formulas, never from the
 * library. Not for CSV files (test_csv.c).
 */
#include "test_util.h"

#include "ember_data.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

/* CHECK_NULL_PTR(expr, want, destroy): a non-tensor constructor must return
 * NULL with `want` pending; an unexpected object is destroyed. */
#define CHECK_NULL_PTR(expr, want, destroy)                                    \
    do {                                                                       \
        em_clear_error();                                                      \
        void *tu_p_ = (void *)(expr);                                          \
        em_status tu_last_ = em_last_status();                                 \
        if (!tu_p_ && tu_last_ == (want)) tu_passed++;                         \
        else tu_report_fail(__FILE__, __LINE__,                                \
                            "%s: result %s, pending %s, want NULL and %s",     \
                            #expr, tu_p_ ? "non-NULL" : "NULL",                \
                            em_status_str(tu_last_), em_status_str(want));     \
        if (tu_p_) destroy(tu_p_);                                             \
        em_clear_error();                                                      \
    } while (0)
#define CHECK_NO_DATASET(expr, want) CHECK_NULL_PTR(expr, want, em_dataset_destroy)
#define CHECK_NO_LOADER(expr, want) CHECK_NULL_PTR(expr, want, em_dataloader_destroy)

/* ------------------------------------------------------------------------ */
/* A user-defined dataset: sample i has                                      */
/*   field 0: f32 [3]      = {i, i + 0.5, -i}                                */
/*   field 1: i64 []       = i                                               */
/*   field 2: f64 [2, 2]   = {i, 2i, 3i, 4i} / 8                             */
/*   field 3: bool []      = i % 3 == 0                                      */
/* with an optional failure at one index and optional jitter (a sleep that   */
/* depends on the index) so workers finish out of order.                     */
/* ------------------------------------------------------------------------ */

typedef struct seq_ctx {
    int64_t n;
    int64_t fail_at;      /* -1: never */
    bool fail_silently;   /* fail without a message */
    int jitter_us;        /* max sleep per sample */
    atomic_long calls;
    atomic_int destroyed;
} seq_ctx;

static int64_t seq_len(void *ctx) { return ((seq_ctx *)ctx)->n; }

static em_status seq_get(void *ctx, int64_t i, void *const *fields)
{
    seq_ctx *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    if (i < 0 || i >= c->n) return em_dataset_fail(EM_ERR_INDEX, "seq: index %lld", (long long)i);
    if (c->jitter_us > 0) usleep((useconds_t)((uint64_t)(i * 2654435761u) % (uint64_t)c->jitter_us));
    if (i == c->fail_at) {
        if (c->fail_silently) return EM_ERR_IO;
        return em_dataset_fail(EM_ERR_IO, "seq: record %lld is corrupt", (long long)i);
    }
    float *f = fields[0];
    f[0] = (float)i;
    f[1] = (float)i + 0.5f;
    f[2] = -(float)i;
    *(int64_t *)fields[1] = i;
    double *d = fields[2];
    for (int k = 0; k < 4; k++) d[k] = (double)(k + 1) * (double)i / 8.0;
    *(uint8_t *)fields[3] = (uint8_t)(i % 3 == 0);
    return EM_OK;
}

static void seq_destroy(void *ctx) { atomic_fetch_add(&((seq_ctx *)ctx)->destroyed, 1); }

static em_dataset *seq_dataset(seq_ctx *c)
{
    em_dataset_def def = {.len = seq_len, .get_item = seq_get, .destroy = seq_destroy,
                          .ctx = c, .n_fields = 4};
    def.dtypes[0] = EM_F32;
    def.ndims[0] = 1;
    def.shapes[0][0] = 3;
    def.dtypes[1] = EM_I64;
    def.ndims[1] = 0;
    def.dtypes[2] = EM_F64;
    def.ndims[2] = 2;
    def.shapes[2][0] = 2;
    def.shapes[2][1] = 2;
    def.dtypes[3] = EM_BOOL;
    def.ndims[3] = 0;
    return em_dataset_create(&def);
}

static void seq_init(seq_ctx *c, int64_t n)
{
    memset(c, 0, sizeof *c);
    c->n = n;
    c->fail_at = -1;
    atomic_init(&c->calls, 0);
    atomic_init(&c->destroyed, 0);
}

/* Checks one batch of the seq dataset against the indices it should hold;
 * returns 1 when every field matches exactly. */
static int check_seq_batch(em_tensor **b, const int64_t *idx, int64_t rows, const char *what)
{
    int ok = 1;
    int64_t s3[] = {rows, 3}, s1[] = {rows}, s22[] = {rows, 2, 2};
    ok &= tu_has_shape(b[0], 2, s3) && em_tensor_dtype(b[0]) == EM_F32;
    ok &= tu_has_shape(b[1], 1, s1) && em_tensor_dtype(b[1]) == EM_I64;
    ok &= tu_has_shape(b[2], 3, s22) && em_tensor_dtype(b[2]) == EM_F64;
    ok &= tu_has_shape(b[3], 1, s1) && em_tensor_dtype(b[3]) == EM_BOOL;
    if (!ok) {
        tu_report_fail(__FILE__, __LINE__, "%s: wrong batch shapes/dtypes (rows %lld)", what,
                       (long long)rows);
        return 0;
    }
    double *v0 = tu_read(b[0]), *v1 = tu_read(b[1]), *v2 = tu_read(b[2]), *v3 = tu_read(b[3]);
    if (!v0 || !v1 || !v2 || !v3) ok = 0;
    for (int64_t r = 0; r < rows && ok; r++) {
        double i = (double)idx[r];
        ok &= v0[r * 3] == i && v0[r * 3 + 1] == i + 0.5 && v0[r * 3 + 2] == -i;
        ok &= v1[r] == i;
        for (int k = 0; k < 4; k++) ok &= v2[r * 4 + k] == (double)(k + 1) * i / 8.0;
        ok &= v3[r] == (idx[r] % 3 == 0 ? 1.0 : 0.0);
        if (!ok)
            tu_report_fail(__FILE__, __LINE__, "%s: row %lld should be sample %lld", what,
                           (long long)r, (long long)idx[r]);
    }
    if (ok) tu_passed++;
    free(v0);
    free(v1);
    free(v2);
    free(v3);
    return ok;
}

static void release_all(em_tensor **b, int n)
{
    for (int i = 0; i < n; i++) {
        em_tensor_release(b[i]);
        b[i] = NULL;
    }
}

/* Runs one epoch (begin_epoch first), appending every label (field 1) to
 * order[] (capacity cap); returns the number of batches, -1 on error. Batch
 * sizes go to sizes[] when given. */
static int64_t run_epoch(em_dataloader *dl, int64_t *order, int64_t cap, int64_t *n_out,
                         int64_t *sizes)
{
    int64_t n = 0, nb = 0;
    if (em_dataloader_begin_epoch(dl) != EM_OK) return -1;
    for (;;) {
        em_tensor *b[4];
        em_status st = em_dataloader_next(dl, b);
        if (st != EM_OK) return -1;
        if (!b[0]) break;
        int64_t rows = em_tensor_dim(b[1], 0);
        double *v = tu_read(b[1]);
        for (int64_t r = 0; v && r < rows && n < cap; r++) order[n++] = (int64_t)v[r];
        free(v);
        if (sizes) sizes[nb] = rows;
        nb++;
        release_all(b, 4);
    }
    *n_out = n;
    return nb;
}

/* ------------------------------------------------------------------------ */

static void test_order_and_drop_last(void)
{
    seq_ctx c;
    seq_init(&c, 10);
    em_dataset *ds = seq_dataset(&c);
    CHECK_NONNULL(ds);
    CHECK(em_dataset_len(ds) == 10);
    CHECK(em_dataset_num_fields(ds) == 4);
    CHECK(em_dataset_field_bytes(ds, 2) == 32);
    for (int drop = 0; drop <= 1; drop++) {
        em_dataloader *dl = em_dataloader_create(
            ds, &(em_dataloader_options){.batch_size = 3, .drop_last = drop, .device = tu_dev});
        CHECK_NONNULL(dl);
        if (!dl) continue;
        CHECK(em_dataloader_len(dl) == (drop ? 3 : 4));
        CHECK(em_dataloader_epoch(dl) == -1);
        /* No begin_epoch: the first next starts epoch 0. */
        int64_t want_rows[] = {3, 3, 3, 1};
        int nb = drop ? 3 : 4;
        for (int k = 0; k < nb; k++) {
            em_tensor *b[4];
            CHECK_OK(em_dataloader_next(dl, b));
            int64_t idx[3];
            for (int r = 0; r < want_rows[k]; r++) idx[r] = k * 3 + r;
            char what[64];
            snprintf(what, sizeof what, "no shuffle, drop_last %d, batch %d", drop, k);
            if (b[0]) {
                check_seq_batch(b, idx, want_rows[k], what);
                CHECK(em_tensor_device(b[0]) == tu_dev);
            } else {
                tu_report_fail(__FILE__, __LINE__, "%s: early end", what);
            }
            release_all(b, 4);
        }
        CHECK(em_dataloader_epoch(dl) == 0);
        em_tensor *b[4] = {(em_tensor *)1, (em_tensor *)1, (em_tensor *)1, (em_tensor *)1};
        CHECK_OK(em_dataloader_next(dl, b));
        CHECKF(!b[0] && !b[1] && !b[2] && !b[3], "end of epoch: every field NULL");
        /* The next call starts epoch 1 with batch 0 again. */
        CHECK_OK(em_dataloader_next(dl, b));
        CHECK(em_dataloader_epoch(dl) == 1);
        if (b[0]) check_seq_batch(b, (int64_t[]){0, 1, 2}, 3, "epoch 1 batch 0");
        release_all(b, 4);
        /* begin_epoch mid-epoch restarts at batch 0. */
        CHECK_OK(em_dataloader_begin_epoch(dl));
        CHECK_OK(em_dataloader_next(dl, b));
        if (b[0]) check_seq_batch(b, (int64_t[]){0, 1, 2}, 3, "restart batch 0");
        release_all(b, 4);
        em_dataloader_destroy(dl);
    }
    /* Exact multiple: drop_last changes nothing. */
    em_dataloader *dl = em_dataloader_create(
        ds, &(em_dataloader_options){.batch_size = 5, .drop_last = true, .num_workers = 2});
    CHECK(em_dataloader_len(dl) == 2);
    int64_t order[16], n = 0, sizes[4];
    CHECK(run_epoch(dl, order, 16, &n, sizes) == 2 && n == 10 && sizes[1] == 5);
    em_dataloader_destroy(dl);
    /* Batch larger than the dataset. */
    dl = em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 64, .num_workers = 1});
    CHECK(em_dataloader_len(dl) == 1);
    CHECK(run_epoch(dl, order, 16, &n, sizes) == 1 && n == 10 && sizes[0] == 10);
    em_dataloader_destroy(dl);
    dl = em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 64, .drop_last = true});
    CHECK(em_dataloader_len(dl) == 0);
    CHECK(run_epoch(dl, order, 16, &n, sizes) == 0 && n == 0);
    em_dataloader_destroy(dl);
    CHECK(atomic_load(&c.destroyed) == 0);
    em_dataset_destroy(ds);
    CHECKF(atomic_load(&c.destroyed) == 1, "destroy callback ran once");
    em_clear_error();
}

static int is_permutation(const int64_t *v, int64_t n, int64_t range)
{
    char *seen = calloc((size_t)range, 1);
    int ok = 1;
    for (int64_t i = 0; i < n && ok; i++) {
        if (v[i] < 0 || v[i] >= range || seen[v[i]]) ok = 0;
        else seen[v[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_shuffle(void)
{
    enum { N = 100 };
    seq_ctx c;
    seq_init(&c, N);
    em_dataset *ds = seq_dataset(&c);
    em_dataloader_options o = {.batch_size = 7, .shuffle = true, .seed = 42};
    em_dataloader *a = em_dataloader_create(ds, &o);
    em_dataloader *b = em_dataloader_create(ds, &o);
    o.seed = 43;
    em_dataloader *s2 = em_dataloader_create(ds, &o);
    CHECK_NONNULL(a);
    CHECK_NONNULL(b);
    CHECK_NONNULL(s2);
    int64_t e0[N], e1[N], b0[N], b1[N], c0[N], again[N], n;
    int64_t sizes[16];
    CHECK(run_epoch(a, e0, N, &n, sizes) == 15 && n == N && sizes[14] == 2);
    CHECKF(is_permutation(e0, N, N), "epoch 0 is a permutation of 0..99");
    int identity = 1;
    for (int i = 0; i < N; i++) identity &= e0[i] == i;
    CHECKF(!identity, "shuffled order is not the identity");
    CHECK(run_epoch(a, e1, N, &n, NULL) == 15 && n == N);
    CHECKF(is_permutation(e1, N, N), "epoch 1 is a permutation");
    CHECKF(memcmp(e0, e1, sizeof e0) != 0, "epoch 1 differs from epoch 0");
    CHECK(run_epoch(b, b0, N, &n, NULL) == 15);
    CHECK(run_epoch(b, b1, N, &n, NULL) == 15);
    CHECKF(memcmp(e0, b0, sizeof e0) == 0 && memcmp(e1, b1, sizeof e1) == 0,
           "same seed, same orders");
    CHECK(run_epoch(s2, c0, N, &n, NULL) == 15);
    CHECKF(is_permutation(c0, N, N) && memcmp(e0, c0, sizeof e0) != 0, "another seed differs");
    CHECK_OK(em_dataloader_set_epoch(a, 0));
    CHECK(run_epoch(a, again, N, &n, NULL) == 15);
    CHECKF(memcmp(e0, again, sizeof e0) == 0, "set_epoch(0) replays epoch 0");
    CHECK(em_dataloader_epoch(a) == 0);
    CHECK_STATUS(em_dataloader_set_epoch(a, -1), EM_ERR_INVALID_ARG);
    em_dataloader_destroy(a);
    em_dataloader_destroy(b);
    em_dataloader_destroy(s2);
    /* Shuffle with drop_last: 14 full batches of distinct samples. */
    em_dataloader *d = em_dataloader_create(
        ds, &(em_dataloader_options){.batch_size = 7, .shuffle = true, .drop_last = true,
                                     .seed = 42, .num_workers = 2});
    CHECK(run_epoch(d, e0, N, &n, sizes) == 14 && n == 98 && sizes[13] == 7);
    CHECKF(is_permutation(e0, n, N), "drop_last: distinct samples");
    em_dataloader_destroy(d);
    em_dataset_destroy(ds);
    em_clear_error();
}

/* Every batch of two shuffled epochs, as doubles, for one num_workers. */
typedef struct capture {
    int nb;
    int64_t rows[64];
    double *vals[64][4];
} capture;

static void capture_free(capture *c)
{
    for (int i = 0; i < c->nb; i++)
        for (int f = 0; f < 4; f++) free(c->vals[i][f]);
}

static int capture_run(em_dataset *ds, int nw, int prefetch, capture *cap)
{
    memset(cap, 0, sizeof *cap);
    em_dataloader *dl = em_dataloader_create(
        ds, &(em_dataloader_options){.batch_size = 9, .shuffle = true, .seed = 7,
                                     .num_workers = nw, .prefetch_factor = prefetch,
                                     .device = tu_dev});
    if (!dl) return 0;
    for (int e = 0; e < 2; e++) {
        CHECK_OK(em_dataloader_begin_epoch(dl));
        for (;;) {
            CHECK_OK(em_scope_begin());
            em_tensor *b[4];
            em_status st = em_dataloader_next(dl, b);
            if (st != EM_OK || !b[0] || cap->nb >= 64) {
                CHECK_OK(st);
                CHECK_OK(em_scope_end());
                break;
            }
            cap->rows[cap->nb] = em_tensor_dim(b[0], 0);
            for (int f = 0; f < 4; f++) cap->vals[cap->nb][f] = tu_read(b[f]);
            cap->nb++;
            CHECK_OK(em_scope_end()); /* the scope owns the batch */
        }
    }
    em_dataloader_destroy(dl);
    return 1;
}

static void test_workers_identical(void)
{
    enum { N = 203 };
    seq_ctx c;
    seq_init(&c, N);
    c.jitter_us = 300; /* samples finish out of order across workers */
    em_dataset *ds = seq_dataset(&c);
    capture ref;
    CHECK(capture_run(ds, 0, 0, &ref));
    CHECKF(ref.nb == 2 * 23, "2 epochs of 23 batches, got %d", ref.nb);
    /* the reference itself: each epoch a permutation with the right contents */
    for (int e = 0; e < 2 && ref.nb == 46; e++) {
        int64_t order[N], n = 0;
        for (int k = 0; k < 23; k++)
            for (int64_t r = 0; r < ref.rows[e * 23 + k]; r++)
                order[n++] = (int64_t)ref.vals[e * 23 + k][1][r];
        CHECKF(n == N && is_permutation(order, N, N), "epoch %d covers every sample once", e);
    }
    const int workers[][2] = {{1, 0}, {2, 0}, {4, 0}, {4, 1}, {3, 5}};
    for (size_t w = 0; w < sizeof workers / sizeof workers[0]; w++) {
        capture got;
        int nw = workers[w][0], pf = workers[w][1];
        CHECK(capture_run(ds, nw, pf, &got));
        int same = got.nb == ref.nb;
        for (int i = 0; i < ref.nb && same; i++) {
            same &= got.rows[i] == ref.rows[i];
            int64_t sz[4] = {3, 1, 4, 1};
            for (int f = 0; f < 4 && same; f++)
                same &= got.vals[i][f] && ref.vals[i][f] &&
                        memcmp(got.vals[i][f], ref.vals[i][f],
                               sizeof(double) * (size_t)(ref.rows[i] * sz[f])) == 0;
        }
        CHECKF(same, "num_workers %d (prefetch %d): the same %d batches as num_workers 0", nw, pf,
               ref.nb);
        printf("num_workers %d prefetch_factor %d: %d batches identical to num_workers 0: %s\n",
               nw, pf, got.nb, same ? "ok" : "FAIL");
        capture_free(&got);
    }
    capture_free(&ref);
    em_dataset_destroy(ds);
    em_clear_error();
}

static void test_tensor_dataset(void)
{
    enum { R = 50, C = 4 };
    double x[R * C], y[R];
    tu_fill(x, R * C, EM_F32, -3, 3);
    for (int i = 0; i < R; i++) y[i] = i;
    for (int layout = TU_CONTIG; layout <= TU_STRIDED; layout++) {
        double xv[R * C];
        memcpy(xv, x, sizeof x);
        em_tensor *X = tu_make(xv, EM_F32, EM_SHAPE(R, C), layout);
        em_tensor *Y = tu_make(y, EM_I64, EM_SHAPE(R), TU_CONTIG);
        em_dataset *ds = em_tensor_dataset_create(2, (em_tensor *const[]){X, Y});
        CHECK_NONNULL(ds);
        em_tensor_release(X); /* the dataset holds a host copy */
        em_tensor_release(Y);
        if (!ds) continue;
        em_dtype dt;
        int nd;
        int64_t shape[EM_MAX_DIMS];
        CHECK_OK(em_dataset_field(ds, 0, &dt, &nd, shape));
        CHECK(dt == EM_F32 && nd == 1 && shape[0] == C);
        CHECK_OK(em_dataset_field(ds, 1, &dt, &nd, shape));
        CHECK(dt == EM_I64 && nd == 0);
        CHECK_STATUS(em_dataset_field(ds, 2, &dt, &nd, shape), EM_ERR_INDEX);
        CHECK(em_dataset_len(ds) == R);
        /* dataset[i] */
        em_tensor *s[2];
        CHECK_OK(em_dataset_get(ds, 17, NULL, s));
        char lb[64];
        snprintf(lb, sizeof lb, "TensorDataset[17] (%s)", tu_layout_names[layout]);
        tu_compare_exact(lb, s[0], EM_F32, EM_SHAPE(C), xv + 17 * C);
        tu_compare_exact(lb, s[1], EM_I64, 0, NULL, (double[]){17});
        release_all(s, 2);
        CHECK_STATUS(em_dataset_get(ds, R, NULL, s), EM_ERR_INDEX);
        CHECK(s[0] == NULL && s[1] == NULL);

        for (int nw = 0; nw <= 2; nw += 2) {
            em_dataloader *dl = em_dataloader_create(
                ds, &(em_dataloader_options){.batch_size = 8, .shuffle = true, .seed = 5,
                                             .num_workers = nw});
            CHECK_NONNULL(dl);
            em_dataset_destroy(ds); /* the loader keeps it alive */
            int seen[R] = {0}, batches = 0, ok = 1;
            em_tensor *b[2];
            em_status st;
            while ((st = em_dataloader_next(dl, b)) == EM_OK && b[0]) {
                int64_t rows = em_tensor_dim(b[0], 0);
                double *bx = tu_read(b[0]), *by = tu_read(b[1]);
                ok &= bx && by && em_tensor_dim(b[0], 1) == C;
                for (int64_t r = 0; ok && r < rows; r++) {
                    int i = (int)by[r];
                    ok &= i >= 0 && i < R && !seen[i];
                    if (!ok) break;
                    seen[i] = 1;
                    for (int k = 0; k < C; k++) ok &= bx[r * C + k] == xv[i * C + k];
                }
                free(bx);
                free(by);
                release_all(b, 2);
                batches++;
            }
            CHECK_OK(st);
            int all = 1;
            for (int i = 0; i < R; i++) all &= seen[i];
            CHECKF(ok && all && batches == 7,
                   "TensorDataset (%s, num_workers %d): rows match their labels, all %d seen once "
                   "in %d batches",
                   tu_layout_names[layout], nw, R, batches);
            ds = em_dataset_retain(em_dataloader_dataset(dl));
            em_dataloader_destroy(dl);
        }
        em_dataset_destroy(ds);
    }
    /* Three fields, 3-d tensor, bool. */
    em_tensor *A = em_arange(0, 24, 1, EM_F64, NULL);
    em_tensor *A3 = em_reshape(A, EM_SHAPE(2, 3, 4));
    em_tensor *B = em_ones(EM_BOOL, EM_SHAPE(2), NULL);
    em_tensor *Cc = em_zeros(EM_I32, EM_SHAPE(2, 1), NULL);
    em_dataset *ds = em_tensor_dataset_create(3, (em_tensor *const[]){A3, B, Cc});
    CHECK_NONNULL(ds);
    em_dataloader *dl = em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 2});
    em_tensor *b[3];
    CHECK_OK(em_dataloader_next(dl, b));
    double ar[24];
    for (int i = 0; i < 24; i++) ar[i] = i;
    tu_compare_exact("TensorDataset 3-d field", b[0], EM_F64, EM_SHAPE(2, 3, 4), ar);
    tu_compare_exact("TensorDataset bool field", b[1], EM_BOOL, EM_SHAPE(2), (double[]){1, 1});
    tu_compare_exact("TensorDataset i32 [1] field", b[2], EM_I32, EM_SHAPE(2, 1), (double[]){0, 0});
    release_all(b, 3);
    em_dataloader_destroy(dl);
    em_dataset_destroy(ds);

    /* Errors. */
    em_tensor *Y5 = em_zeros(EM_I64, EM_SHAPE(5), NULL);
    em_tensor *S = em_scalar(1);
    CHECK_NO_DATASET(em_tensor_dataset_create(2, (em_tensor *const[]){A3, Y5}),
                EM_ERR_SHAPE);
    em_clear_error();
    em_dataset *bad = em_tensor_dataset_create(2, (em_tensor *const[]){A3, Y5});
    CHECKF(!bad && strstr(em_last_error(), "5 rows") && strstr(em_last_error(), "has 2"),
           "mismatch message names both sizes: %s", em_last_error());
    CHECK_NO_DATASET(em_tensor_dataset_create(1, (em_tensor *const[]){S}),
                EM_ERR_INVALID_ARG);
    CHECK_NO_DATASET(em_tensor_dataset_create(0, (em_tensor *const[]){A3}),
                EM_ERR_INVALID_ARG);
    CHECK_NO_DATASET(em_tensor_dataset_create(9, (em_tensor *const[]){A3}),
                EM_ERR_INVALID_ARG);
    CHECK_NO_DATASET(em_tensor_dataset_create(2, (em_tensor *const[]){A3, NULL}),
                EM_ERR_NULL_ARG);
    CHECK_NO_DATASET(em_tensor_dataset_create(1, NULL), EM_ERR_NULL_ARG);
    em_tensor_release(A);
    em_tensor_release(A3);
    em_tensor_release(B);
    em_tensor_release(Cc);
    em_tensor_release(Y5);
    em_tensor_release(S);
    em_clear_error();
}

/* A callback failing at sample k: the error names k, the batches before it
 * arrive intact, the workers stop, nothing hangs, the loader restarts. */
static void test_failing_callback(void)
{
    const int64_t k = 37, B = 8;
    for (int silent = 0; silent <= 1; silent++) {
        for (int nw = 0; nw <= 3; nw += 3) {
            for (int shuffle = 0; shuffle <= 1; shuffle++) {
                seq_ctx c;
                seq_init(&c, 100);
                c.fail_at = k;
                c.fail_silently = silent;
                c.jitter_us = nw ? 200 : 0;
                em_dataset *ds = seq_dataset(&c);
                em_dataloader *dl = em_dataloader_create(
                    ds, &(em_dataloader_options){.batch_size = B, .num_workers = nw,
                                                 .shuffle = shuffle, .seed = 3});
                em_dataset_destroy(ds);
                CHECK_NONNULL(dl);
                if (!dl) continue;
                /* Without shuffle k is in batch k / B; with it, wherever the order puts it. */
                for (int round = 0; round < 2; round++) {
                    int delivered = 0;
                    em_status st;
                    em_tensor *b[4];
                    int k_seen = 0;
                    while ((st = em_dataloader_next(dl, b)) == EM_OK && b[0]) {
                        double *v = tu_read(b[1]);
                        for (int64_t r = 0; v && r < em_tensor_dim(b[1], 0); r++)
                            k_seen |= (int64_t)v[r] == k;
                        free(v);
                        release_all(b, 4);
                        delivered++;
                    }
                    char want[64];
                    snprintf(want, sizeof want, "sample %lld ", (long long)k);
                    const char *msg = em_last_error();
                    CHECKF(st == EM_ERR_IO && em_last_status() == EM_ERR_IO,
                           "silent %d nw %d shuffle %d round %d: status %s", silent, nw, shuffle,
                           round, em_status_str(st));
                    CHECKF(strstr(msg, want) != NULL, "message names the sample: %s", msg);
                    CHECKF(strstr(msg, silent ? "recorded no message" : "record 37 is corrupt"),
                           "message carries the callback's reason: %s", msg);
                    CHECKF(!b[0] && !b[1] && !b[2] && !b[3], "fields NULL on error");
                    CHECK(!k_seen);
                    if (!shuffle)
                        CHECKF(delivered == k / B, "batches before the failure delivered (%d)",
                               delivered);
                    if (round == 0 && !shuffle)
                        printf("failing callback (nw %d): \"%s\"\n", nw, msg);
                    em_clear_error();
                }
                em_dataloader_destroy(dl);
                CHECKF(atomic_load(&c.destroyed) == 1, "dataset freed with its loader");
            }
        }
    }
    em_clear_error();
}

/* Destroying a loader mid-epoch (workers busy on slow samples), right after
 * creation, and after begin_epoch without any next. */
static void test_destroy_mid_epoch(void)
{
    seq_ctx c;
    seq_init(&c, 500);
    c.jitter_us = 2000;
    em_dataset *ds = seq_dataset(&c);
    for (int nw = 0; nw <= 4; nw += 2) {
        em_dataloader *dl = em_dataloader_create(
            ds, &(em_dataloader_options){.batch_size = 4, .num_workers = nw, .shuffle = true});
        em_tensor *b[4];
        CHECK_OK(em_dataloader_next(dl, b));
        CHECK(b[0] != NULL);
        release_all(b, 4);
        struct timeval t0, t1;
        gettimeofday(&t0, NULL);
        em_dataloader_destroy(dl);
        gettimeofday(&t1, NULL);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_usec - t0.tv_usec) / 1e3;
        printf("destroy mid-epoch with num_workers %d: %.1f ms\n", nw, ms);
        CHECKF(ms < 2000, "destroy does not wait for the epoch (%.1f ms)", ms);

        dl = em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 4, .num_workers = nw});
        em_dataloader_destroy(dl);
        dl = em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 4, .num_workers = nw});
        CHECK_OK(em_dataloader_begin_epoch(dl));
        CHECK_OK(em_dataloader_begin_epoch(dl));
        em_dataloader_destroy(dl);
    }
    /* Many loaders over one dataset on several threads at once is allowed;
     * here: one consumer thread per loader. */
    em_dataset_destroy(ds);
    em_dataloader_destroy(NULL);
    em_dataset_destroy(NULL);
    em_clear_error();
}

static void *consumer_thread(void *arg)
{
    em_dataset *ds = arg;
    em_dataloader *dl = em_dataloader_create(
        ds, &(em_dataloader_options){.batch_size = 16, .num_workers = 2, .shuffle = true});
    long total = 0;
    em_tensor *b[4];
    while (dl && em_dataloader_next(dl, b) == EM_OK && b[0]) {
        total += (long)em_tensor_dim(b[0], 0);
        release_all(b, 4);
    }
    em_dataloader_destroy(dl);
    return (void *)total;
}

static void test_threads(void)
{
    seq_ctx c;
    seq_init(&c, 300);
    em_dataset *ds = seq_dataset(&c);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, consumer_thread, ds);
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(th[i], &r);
        ok &= (long)r == 300;
    }
    CHECKF(ok, "three consumer threads, each with its own loader over one dataset");
    em_dataset_destroy(ds);
}

static int64_t zero_len(void *ctx) { return 0; }
static int64_t neg_len(void *ctx) { return -5; }

static void test_errors(void)
{
    seq_ctx c;
    seq_init(&c, 10);
    em_dataset *ds = seq_dataset(&c);
    CHECK_NO_LOADER(em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 0}),
                EM_ERR_INVALID_ARG);
    em_clear_error();
    em_dataloader *none = em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 0});
    CHECKF(!none && strstr(em_last_error(), "batch_size"), "message names batch_size: %s",
           em_last_error());
    CHECK_NO_LOADER(em_dataloader_create(ds, &(em_dataloader_options){.batch_size = -2}),
                EM_ERR_INVALID_ARG);
    CHECK_NO_LOADER(em_dataloader_create(
                    ds, &(em_dataloader_options){.batch_size = 2, .num_workers = -1}),
                EM_ERR_INVALID_ARG);
    CHECK_NO_LOADER(em_dataloader_create(
                    ds, &(em_dataloader_options){.batch_size = 2, .num_workers = 100000}),
                EM_ERR_INVALID_ARG);
    CHECK_NO_LOADER(em_dataloader_create(
                    ds, &(em_dataloader_options){.batch_size = 2, .prefetch_factor = -1}),
                EM_ERR_INVALID_ARG);
    CHECK_NO_LOADER(em_dataloader_create(NULL, &(em_dataloader_options){.batch_size = 2}),
                EM_ERR_NULL_ARG);
    CHECK_NO_LOADER(em_dataloader_create(ds, NULL), EM_ERR_NULL_ARG);
    em_tensor *b[4];
    CHECK_STATUS(em_dataloader_next(NULL, b), EM_ERR_NULL_ARG);
    em_dataloader *dl = em_dataloader_create(ds, &(em_dataloader_options){.batch_size = 2});
    CHECK_STATUS(em_dataloader_next(dl, NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_dataloader_begin_epoch(NULL), EM_ERR_NULL_ARG);
    CHECK(em_dataloader_len(NULL) == -1);
    CHECK(em_dataloader_epoch(NULL) == -1);
    em_clear_error();
    em_dataloader_destroy(dl);

    /* Bad definitions. */
    em_dataset_def def = {.len = seq_len, .get_item = seq_get, .ctx = &c, .n_fields = 1};
    def.dtypes[0] = EM_F32;
    em_dataset *ok = em_dataset_create(&def);
    CHECK_NONNULL(ok);
    em_dataset_destroy(ok);
    em_dataset_def d = def;
    d.n_fields = 0;
    CHECK_NO_DATASET(em_dataset_create(&d), EM_ERR_INVALID_ARG);
    d.n_fields = 9;
    CHECK_NO_DATASET(em_dataset_create(&d), EM_ERR_INVALID_ARG);
    d = def;
    d.dtypes[0] = (em_dtype)42;
    CHECK_NO_DATASET(em_dataset_create(&d), EM_ERR_DTYPE);
    d = def;
    d.ndims[0] = EM_MAX_DIMS;
    CHECK_NO_DATASET(em_dataset_create(&d), EM_ERR_INVALID_ARG);
    d = def;
    d.ndims[0] = 1;
    d.shapes[0][0] = -1;
    CHECK_NO_DATASET(em_dataset_create(&d), EM_ERR_INVALID_ARG);
    d = def;
    d.get_item = NULL;
    CHECK_NO_DATASET(em_dataset_create(&d), EM_ERR_NULL_ARG);
    d = def;
    d.len = NULL;
    CHECK_NO_DATASET(em_dataset_create(&d), EM_ERR_NULL_ARG);
    CHECK_NO_DATASET(em_dataset_create(NULL), EM_ERR_NULL_ARG);
    CHECK(em_dataset_len(NULL) == -1);
    em_clear_error();
    CHECK_STATUS(em_dataset_read_item(ds, -1, (void *const[]){NULL}), EM_ERR_INDEX);
    CHECK_STATUS(em_dataset_fail(EM_OK, "x"), EM_ERR_IO);

    /* Empty dataset: zero batches, the first next is the end. */
    d = def;
    d.len = zero_len;
    em_dataset *empty = em_dataset_create(&d);
    dl = em_dataloader_create(empty, &(em_dataloader_options){.batch_size = 3, .num_workers = 2});
    CHECK(em_dataloader_len(dl) == 0);
    b[0] = (em_tensor *)1;
    CHECK_OK(em_dataloader_next(dl, b));
    CHECK(b[0] == NULL);
    em_dataloader_destroy(dl);
    em_dataset_destroy(empty);
    /* A len callback returning a negative number. */
    d.len = neg_len;
    em_dataset *neg = em_dataset_create(&d);
    dl = em_dataloader_create(neg, &(em_dataloader_options){.batch_size = 3, .num_workers = 1});
    CHECK_NONNULL(dl);
    CHECK_STATUS(em_dataloader_next(dl, b), EM_ERR_INVALID_ARG);
    CHECK(em_dataloader_len(dl) == -1);
    em_clear_error();
    em_dataloader_destroy(dl);
    em_dataset_destroy(neg);
    em_dataset_destroy(ds);
    em_clear_error();
}

int main(void)
{
    tu_init("test_data_loader");
    alarm(240); /* a hang is a failure, not a stuck CI job */
    test_order_and_drop_last();
    test_shuffle();
    test_workers_identical();
    test_tensor_dataset();
    test_failing_callback();
    test_destroy_mid_epoch();
    test_threads();
    test_errors();
    return tu_finish();
}
