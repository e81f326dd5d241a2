/*
 * cpu_threads.c — the CPU backend's one persistent thread pool.
 *
 * Why one pool: OpenBLAS is set to one thread and the backend splits its
 * work (elementwise ranges, gemm blocks) over this pool, so two pools never
 * fight for the cores.
 *
 * How: a job is (fn, ctx, ntasks). The caller publishes it by bumping a
 * generation number and then claims tasks itself like any worker; tasks are
 * claimed with a CAS on one 64-bit word (generation << 32 | next task), so a
 * late worker can never run a task of a job that has already finished.
 * Idle workers spin for a short while (cheap hand-off between consecutive
 * ops) and then sleep on a futex. The caller waits for the last task by
 * spinning (then yielding). Jobs do not nest: a parallel call made from
 * inside a task, or while another thread holds the pool, finds the busy
 * flag set and runs serially. (No thread-local state: a dlclosed module
 * with TLS leaves stale DTV entries that crash LeakSanitizer.)
 *
 * Not for: queues of independent work or anything asynchronous.
 */
#define _GNU_SOURCE
#include "cpu_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker spins before it sleeps. */
#define SPIN_NS 200000

typedef struct cpu_pool {
    int nthreads;              /* total, the caller included              */
    int nworkers;
    pthread_t *threads;
    _Atomic uint64_t work;     /* gen << 32 | next task index             */
    _Atomic uint32_t gen32;    /* futex word: the current generation      */
    _Atomic int64_t done;      /* tasks finished in the current job       */
    _Atomic(cpu_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int64_t ntasks;
    _Atomic int sleepers;
    _Atomic int stop;
    atomic_flag busy;
} cpu_pool;

static cpu_pool g_pool = {.nthreads = 1, .busy = ATOMIC_FLAG_INIT};

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Claims and runs tasks of generation gen until none is left. */
static void run_tasks(cpu_pool *p, uint32_t gen)
{
    uint64_t v = atomic_load_explicit(&p->work, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != gen) return;
        int64_t n = atomic_load_explicit(&p->ntasks, memory_order_relaxed);
        if ((int64_t)(uint32_t)v >= n) return;
        cpu_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&p->work, &v, v + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            fn(ctx, (int64_t)(uint32_t)v);
            atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
            v = atomic_load_explicit(&p->work, memory_order_acquire);
        }
    }
}

static void *worker_main(void *arg)
{
    cpu_pool *p = arg;
    uint32_t mygen = atomic_load(&p->gen32);
    for (;;) {
        uint32_t g = atomic_load_explicit(&p->gen32, memory_order_acquire);
        if (g == mygen && !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            uint64_t start = now_ns();
            for (unsigned i = 1;; i++) {
                cpu_relax();
                g = atomic_load_explicit(&p->gen32, memory_order_acquire);
                if (g != mygen || atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
                if ((i & 255u) == 0 && now_ns() - start > SPIN_NS) {
                    atomic_fetch_add(&p->sleepers, 1);
                    while (atomic_load(&p->gen32) == mygen && !atomic_load(&p->stop))
                        futex(&p->gen32, FUTEX_WAIT_PRIVATE, mygen);
                    atomic_fetch_sub(&p->sleepers, 1);
                    start = now_ns();
                }
            }
        }
        if (atomic_load(&p->stop)) break;
        mygen = g;
        run_tasks(p, g);
    }
    return NULL;
}

em_status em__cpu_pool_start(int nthreads)
{
    cpu_pool *p = &g_pool;
    if (p->threads) return EM_OK;
    if (nthreads < 1) nthreads = 1;
    p->nthreads = 1;
    p->nworkers = 0;
    atomic_store(&p->stop, 0);
    atomic_store(&p->sleepers, 0);
    if (nthreads == 1) return EM_OK;
    p->threads = calloc((size_t)nthreads - 1, sizeof(pthread_t));
    if (!p->threads)
        return em__cpu_fail(EM_ERR_OUT_OF_MEMORY, "cpu: cannot allocate the thread pool");
    /* Workers take no signals: those belong to the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = 0, err = 0;
    for (int i = 0; i < nthreads - 1; i++) {
        err = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (err) break;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    p->nworkers = started;
    p->nthreads = started + 1;
    if (started == 0) {
        free(p->threads);
        p->threads = NULL;
    }
    if (err)
        em__cpu_log(EM_LOG_WARN, "started %d of %d pool threads (pthread_create: %d)", started,
                    nthreads - 1, err);
    return EM_OK;
}

void em__cpu_pool_stop(void)
{
    cpu_pool *p = &g_pool;
    if (!p->threads) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen32, 1);
    futex(&p->gen32, FUTEX_WAKE_PRIVATE, INT_MAX);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    p->threads = NULL;
    p->nworkers = 0;
    p->nthreads = 1;
    atomic_store(&p->stop, 0);
}

int em__cpu_threads(void) { return g_pool.nthreads; }

void em__cpu_parallel(int64_t ntasks, cpu_task_fn fn, void *ctx)
{
    cpu_pool *p = &g_pool;
    if (ntasks <= 0) return;
    if (ntasks == 1 || p->nworkers == 0 || ntasks > (int64_t)UINT32_MAX ||
        atomic_flag_test_and_set_explicit(&p->busy, memory_order_acquire)) {
        for (int64_t t = 0; t < ntasks; t++) fn(ctx, t);
        return;
    }
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->ntasks, ntasks, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint32_t gen = atomic_load_explicit(&p->gen32, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->work, (uint64_t)gen << 32, memory_order_release);
    atomic_store(&p->gen32, gen); /* seq_cst: ordered before the sleepers load */
    if (atomic_load(&p->sleepers) > 0) futex(&p->gen32, FUTEX_WAKE_PRIVATE, INT_MAX);

    run_tasks(p, gen);

    for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < ntasks; i++) {
        if (i < 4096)
            cpu_relax();
        else
            sched_yield();
    }
    atomic_flag_clear_explicit(&p->busy, memory_order_release);
}

typedef struct range_job {
    cpu_range_fn fn;
    void *ctx;
    int64_t n, chunk;
} range_job;

static void range_task(void *ctx, int64_t t)
{
    range_job *j = ctx;
    int64_t b = t * j->chunk, e = b + j->chunk;
    if (e > j->n) e = j->n;
    if (b < e) j->fn(j->ctx, b, e);
}

void em__cpu_parallel_range(int64_t n, int64_t grain, int64_t align, cpu_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    int nt = g_pool.nthreads;
    if (grain <= 0 || n < grain || nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
    int64_t half = grain / 2 > 0 ? grain / 2 : 1;
    int64_t tasks = n / half;
    if (tasks > nt) tasks = nt;
    if (tasks < 2) {
        fn(ctx, 0, n);
        return;
    }
    if (align < 1) align = 1;
    int64_t chunk = (n + tasks - 1) / tasks;
    chunk = (chunk + align - 1) / align * align;
    tasks = (n + chunk - 1) / chunk;
    range_job j = {fn, ctx, n, chunk};
    em__cpu_parallel(tasks, range_task, &j);
}
