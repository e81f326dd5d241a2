/*
 * test_scope.c — ownership: scopes release their intermediates (1000 steps
 * show no heap growth, measured with mallinfo2 after a warm-up), nesting,
 * em_scope_keep to the enclosing scope or to the caller, misuse
 * (unbalanced end, keep of a tensor the scope does not own) giving
 * EM_ERR_STATE, retain/release and views outliving their base, and per-thread
 * scopes and errors.
 * Not for the numeric results of the ops used here.
 */
#include "test_util.h"

#include <pthread.h>

/* One "training step" worth of intermediates: all owned by the scope. */
static void step(em_tensor *x, em_tensor *w, em_tensor *bias)
{
    em_tensor *h = em_linear(x, w, bias);            /* [8,16] */
    em_tensor *a = em_gelu(h, false);
    em_tensor *s = em_softmax(a, -1);
    em_tensor *l = em_log(em_add_scalar(s, 1e-6));
    em_tensor *m = em_mean(l, NULL, 0, false);
    em_tensor *v = em_transpose(a, 0, 1);
    em_tensor *c = em_contiguous(v);
    em_tensor *r = em_reshape(c, EM_SHAPE(-1));
    em_tensor *sl = em_slice(r, 0, 1, 100, 3);
    em_tensor *k = em_cat((const em_tensor *const[]){sl, sl}, 2, 0);
    em_tensor *g = em_sum(em_mul(k, k), NULL, 0, false);
    double val;
    if (!m || !g || em_tensor_item(g, &val) != EM_OK) {
        tu_report_fail(__FILE__, __LINE__, "step failed");
        em_clear_error();
    }
}

static void test_scope_no_growth(void)
{
    em_tensor *x = em_randn(NULL, EM_F32, EM_SHAPE(8, 32), NULL);
    em_tensor *w = em_randn(NULL, EM_F32, EM_SHAPE(16, 32), NULL);
    em_tensor *b = em_zeros(EM_F32, EM_SHAPE(16), NULL);
    for (int i = 0; i < 50; i++) { /* warm-up: thread pools, caches, error buffers */
        CHECK_OK(em_scope_begin());
        step(x, w, b);
        CHECK_OK(em_scope_end());
    }
    /* Measured over three intervals of 1000 steps: a leak grows the heap in
     * every interval; a buffer reaching its high-water mark only once. */
    long growth = 0, g[3];
    int ok = 1;
    for (int k = 0; k < 3; k++) {
        size_t before = tu_heap_in_use();
        for (int i = 0; i < 1000; i++) {
            ok &= em_scope_begin() == EM_OK;
            step(x, w, b);
            ok &= em_scope_end() == EM_OK;
        }
        size_t after = tu_heap_in_use();
        g[k] = (long)after - (long)before;
        printf("1000 scoped steps (interval %d): heap in use %zu -> %zu (growth %ld bytes)\n", k, before,
               after, g[k]);
    }
    CHECK(ok);
    CHECKF(g[1] < 1024 && g[2] < 1024, "scoped loop grew the heap by %ld, %ld, %ld bytes per 1000 steps", g[0],
           g[1], g[2]);
    /* The same without a scope, releasing by hand, for comparison; two intervals,
     * as above: a backend's buffer cache may reach a new high-water mark in the
     * first (releases come in another order), a leak grows both. */
    for (int k = 0; k < 2; k++) {
        size_t before = tu_heap_in_use();
        for (int i = 0; i < 1000; i++) {
            em_tensor *h = em_linear(x, w, b);
            em_tensor *t = em_tanh(h);
            em_tensor *s = em_sum(t, NULL, 0, false);
            em_tensor_release(s);
            em_tensor_release(t);
            em_tensor_release(h);
        }
        growth = (long)tu_heap_in_use() - (long)before;
        printf("1000 unscoped steps with releases (interval %d): growth %ld bytes\n", k, growth);
    }
    CHECKF(growth < 1024, "create/release loop grew the heap by %ld bytes", growth);
    em_tensor_release(x);
    em_tensor_release(w);
    em_tensor_release(b);
}

static void test_keep(int measure)
{
    /* keep from the outermost scope: the caller owns it afterwards */
    size_t base_heap = tu_heap_in_use();
    CHECK_OK(em_scope_begin());
    em_tensor *a = em_ones(EM_F32, EM_SHAPE(1000), NULL);
    em_tensor *tmp = em_mul_scalar(a, 3);
    CHECK(em_scope_keep(tmp) == tmp);
    CHECK_OK(em_scope_end());
    double ref[1000];
    for (int i = 0; i < 1000; i++) ref[i] = 3;
    int64_t s1000[1] = {1000};
    tu_compare_scaled("kept tensor alive after its scope ended", tmp, EM_F32, 1, s1000, ref, NULL,
                      (tu_tol){0, 0, 0}, 1);
    em_tensor_release(tmp); /* the caller's reference */
    long growth = (long)tu_heap_in_use() - (long)base_heap;
    if (measure) CHECKF(growth < 1024, "keep + release left %ld bytes", growth);

    /* nested: keep moves to the enclosing scope, which frees it */
    base_heap = tu_heap_in_use();
    CHECK_OK(em_scope_begin());
    CHECK_OK(em_scope_begin());
    em_tensor *inner = em_zeros(EM_F64, EM_SHAPE(500), NULL);
    em_tensor *dropped = em_ones(EM_F64, EM_SHAPE(500), NULL);
    (void)dropped;
    CHECK(em_scope_keep(inner) == inner);
    CHECK_OK(em_scope_end());
    double z[500] = {0};
    int64_t s500[1] = {500};
    tu_compare_scaled("kept tensor alive in the enclosing scope", inner, EM_F64, 1, s500, z, NULL,
                      (tu_tol){0, 0, 0}, 1);
    /* keeping it again from the outer scope works; keeping twice fails */
    CHECK(em_scope_keep(inner) == inner);
    em_clear_error();
    CHECK(em_scope_keep(inner) == NULL);
    CHECK(em_last_status() == EM_ERR_STATE);
    em_clear_error();
    CHECK_OK(em_scope_end());
    em_tensor_release(inner);
    growth = (long)tu_heap_in_use() - (long)base_heap;
    if (measure) CHECKF(growth < 1024, "nested keep left %ld bytes", growth);

    /* keep of a tensor the innermost scope does not own */
    em_tensor *outside = em_zeros(EM_F32, EM_SHAPE(2), NULL);
    CHECK_OK(em_scope_begin());
    em_clear_error();
    CHECK(em_scope_keep(outside) == NULL);
    CHECK(em_last_status() == EM_ERR_STATE);
    em_clear_error();
    CHECK_OK(em_scope_end());
    em_tensor_release(outside);

    CHECK_OK(em_scope_begin());
    em_tensor *o = em_zeros(EM_F32, EM_SHAPE(2), NULL);
    CHECK_OK(em_scope_begin());
    em_clear_error();
    CHECK(em_scope_keep(o) == NULL); /* owned by the outer scope, not the innermost */
    CHECK(em_last_status() == EM_ERR_STATE);
    em_clear_error();
    CHECK_OK(em_scope_end());
    CHECK_OK(em_scope_end());
}

static void test_unbalanced(void)
{
    CHECK_STATUS(em_scope_end(), EM_ERR_STATE);
    CHECK_OK(em_scope_begin());
    CHECK_OK(em_scope_end());
    CHECK_STATUS(em_scope_end(), EM_ERR_STATE);
    /* a keep with no scope open */
    em_tensor *t = em_zeros(EM_F32, EM_SHAPE(2), NULL);
    em_clear_error();
    CHECK(em_scope_keep(t) == NULL);
    CHECK(em_last_status() == EM_ERR_STATE);
    em_clear_error();
    em_tensor_release(t);
}

static void test_refcounts(void)
{
    /* a retained scoped tensor survives the scope */
    CHECK_OK(em_scope_begin());
    em_tensor *t = em_full(2.5, EM_F32, EM_SHAPE(3), NULL);
    CHECK(em_tensor_retain(t) == t);
    CHECK_OK(em_scope_end());
    double r3[3] = {2.5, 2.5, 2.5};
    int64_t s3[1] = {3};
    tu_compare_exact("retained tensor alive after scope end", t, EM_F32, 1, s3, r3);
    /* views created in a scope keep the storage of a base released earlier */
    CHECK_OK(em_scope_begin());
    em_tensor *v = em_unsqueeze(t, 0);
    em_tensor_release(t); /* the caller's reference: only the view holds it now */
    int64_t s13[2] = {1, 3};
    tu_compare_exact("view alive after base release inside a scope", v, EM_F32, 2, s13, r3);
    CHECK(em_scope_keep(v) == v);
    CHECK_OK(em_scope_end());
    tu_compare_exact("kept view alive after scope end", v, EM_F32, 2, s13, r3);
    em_tensor_release(v);
    /* scoped ops on tensors created outside: the inputs are only borrowed */
    em_tensor *x = em_ones(EM_F32, EM_SHAPE(4), NULL);
    CHECK_OK(em_scope_begin());
    em_tensor *y = em_add(x, x);
    em_tensor *c = em_contiguous(x); /* x itself, retained: owned by the scope */
    (void)y;
    (void)c;
    CHECK_OK(em_scope_end());
    double r4[4] = {1, 1, 1, 1};
    int64_t s4[1] = {4};
    tu_compare_exact("input borrowed by scoped ops is still alive", x, EM_F32, 1, s4, r4);
    em_tensor_release(x);
}

/* ------------------------------------------------------------------------ */
/* Threads: scopes and errors are per thread                                 */
/* ------------------------------------------------------------------------ */

typedef struct thread_result {
    int scope_end_state;  /* em_scope_end without begin on this thread */
    int saw_other_error;  /* this thread saw the main thread's error     */
    int ok_values;
    int own_error;
} thread_result;

static void *worker(void *arg)
{
    thread_result *res = arg;
    res->saw_other_error = em_last_status() != EM_OK;
    res->scope_end_state = em_scope_end() == EM_ERR_STATE;
    em_clear_error();
    /* distinct tensors from distinct threads */
    int ok = 1;
    for (int i = 0; i < 200; i++) {
        em_scope_begin();
        em_tensor *a = em_full((double)i, EM_F64, EM_SHAPE(64), NULL);
        em_tensor *s = em_sum(em_mul_scalar(a, 2), NULL, 0, false);
        double v = -1;
        ok &= s && em_tensor_item(s, &v) == EM_OK && v == 128.0 * i;
        em_scope_end();
    }
    /* large ops (above the parallel grain) from two threads at once */
    em_tensor *big = em_full(1.0, EM_F32, EM_SHAPE(300, 257), NULL);
    for (int i = 0; i < 50 && big; i++) {
        em_scope_begin();
        em_tensor *y = em_mul_scalar(em_add_scalar(big, (double)i), 2);
        em_tensor *s = em_sum(em_exp(em_mul_scalar(y, 0)), NULL, 0, false);
        em_tensor *m = em_max(y, NULL, 0, false);
        double v = -1, mv = -1;
        ok &= s && m && em_tensor_item(s, &v) == EM_OK && v == 300.0 * 257;
        ok &= m && em_tensor_item(m, &mv) == EM_OK && mv == 2.0 * (1 + i);
        em_scope_end();
    }
    em_tensor_release(big);
    res->ok_values = ok;
    em_tensor *bad = em_add(NULL, NULL);
    res->own_error = bad == NULL && em_last_status() == EM_ERR_NULL_ARG;
    return NULL;
}

static void test_threads(void)
{
    /* the main thread holds an open scope and a pending error */
    CHECK_OK(em_scope_begin());
    em_tensor *z = em_zeros(EM_F32, EM_SHAPE(2), NULL);
    em_tensor *bad = em_reshape(z, EM_SHAPE(3));
    CHECK(bad == NULL && em_last_status() == EM_ERR_SHAPE);
    thread_result res[2];
    memset(res, 0, sizeof res);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, worker, &res[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECKF(!res[i].saw_other_error, "thread %d saw the main thread's pending error", i);
        CHECKF(res[i].scope_end_state, "thread %d: em_scope_end without begin was not EM_ERR_STATE", i);
        CHECKF(res[i].ok_values, "thread %d: wrong results", i);
        CHECKF(res[i].own_error, "thread %d: its own NULL-arg error not recorded", i);
    }
    CHECK(em_last_status() == EM_ERR_SHAPE); /* the workers' errors did not reach here */
    em_clear_error();
    CHECK_OK(em_scope_end());
}

int main(void)
{
    tu_init("test_scope");
    test_unbalanced();
    test_keep(0); /* warm-up: first ops start thread pools and caches */
    test_keep(1);
    test_refcounts();
    test_scope_no_growth();
    test_threads();
    em_shutdown();
    return tu_finish();
}
