/*
 * dataloader.c — batches of an em_dataset: per-epoch order (identity or a
 * seeded permutation), batch assembly into host staging buffers, upload to
 * the loader's device, and worker threads that do both ahead of the
 * consumer. Public API: ember_data.h. Not for the dataset callbacks
 * themselves (dataset.c) or file formats (csv.c).
 *
 * Threading (num_workers = N > 0):
 *   - N persistent pthreads, one mutex `mu`, three condition variables:
 *     `work_cv` (workers wait for a batch to claim), `ready_cv` (the consumer
 *     waits for its batch), `idle_cv` (begin_epoch/destroy wait for busy
 *     workers to finish).
 *   - A ring of `cap` = prefetch_factor * N slots. Batch b of the epoch goes to
 *     slot b % cap. Workers claim batch numbers in order (next_claim++) but
 *     only while b < cursor + cap, where cursor is the batch the consumer
 *     takes next; so slot b % cap is free when b is claimed, at most cap
 *     batches exist at once, and the consumer takes them strictly in order:
 *     the output does not depend on N or on timing.
 *   - A worker builds its batch outside the lock with its own staging
 *     buffers (get_item per sample, then em_tensor_from_data per field on the
 *     loader's device, so uploads overlap the consumer's step), then stores
 *     the tensors, or (status, message) of the failure, in the slot. A
 *     failure sets `stop`: no batch after it is claimed; those before it are
 *     all claimed already and are delivered first.
 *   - The worker's tensors are plain references (workers never open a
 *     scope); the consumer hands them to its own scope with em_tensor_to(t,
 *     its device), which retains t and applies the ownership rule, then drops
 *     the worker's reference. Errors are per thread: the worker copies its
 *     message into the slot and clears its own; em_dataloader_next re-raises
 *     it on the consumer's thread.
 *   - Workers block all signals (the application's handlers run on its own
 *     threads) and never open a scope.
 *   - Abandoning an epoch (begin_epoch, set_epoch, an error, destroy) sets
 *     `cancel`, which workers check between samples, waits until no worker is
 *     busy (`busy` == 0), then drops the slots. `generation` counts epochs so
 *     a result can never land in the wrong epoch.
 */
#include "ember_data.h"
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 256
#define MAX_PREFETCH 64

typedef struct slot {
    bool ready;
    em_status status;
    char *message;                          /* malloc'ed, on failure        */
    em_tensor *t[EM_DATASET_MAX_FIELDS];    /* plain references, on success */
} slot;

typedef struct staging {
    void *buf[EM_DATASET_MAX_FIELDS];       /* batch_size samples per field */
} staging;

typedef struct worker {
    struct em_dataloader *dl;
    pthread_t thread;
    staging st;
} worker;

struct em_dataloader {
    em_dataset *ds;
    em_device *device;
    int n_fields;
    em_dtype dtypes[EM_DATASET_MAX_FIELDS];
    int ndims[EM_DATASET_MAX_FIELDS];
    int64_t shapes[EM_DATASET_MAX_FIELDS][EM_MAX_DIMS];
    size_t sample_bytes[EM_DATASET_MAX_FIELDS];
    int64_t batch_size;
    bool shuffle, drop_last;
    uint64_t seed;
    int num_workers;

    /* the epoch; written by the consumer only while no worker is busy and
     * `active` is false, read by workers after claiming under mu */
    int64_t epoch;                          /* running or last; -1 before   */
    int64_t next_epoch;                     /* number begin_epoch gives     */
    int64_t n_samples;                      /* len at the epoch's start     */
    int64_t n_batches;
    int64_t *order;                         /* NULL: identity               */
    size_t order_cap;
    bool running;                           /* consumer's view: epoch going */

    staging sync;                           /* num_workers == 0             */

    /* shared with the workers, under mu */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv, idle_cv;
    bool active;                            /* workers may claim            */
    bool stop;                              /* a batch failed: claim no more*/
    bool shutdown;
    atomic_bool cancel;                     /* abandon the batch being built*/
    uint64_t generation;
    int64_t next_claim, cursor;
    int busy;
    int cap;
    slot *slots;
    worker *workers;
    int started;                            /* threads running              */
};

/* ---------------- order -------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias (Lemire's multiply-and-reject). */
static uint64_t bounded(uint64_t *s, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128)splitmix64(s) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = (0 - n) % n;
        while (lo < t) {
            m = (unsigned __int128)splitmix64(s) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* The epoch's permutation: Fisher-Yates driven by splitmix64 seeded from
 * (seed, epoch), so it depends on nothing else. */
static void make_permutation(int64_t *order, int64_t n, uint64_t seed, int64_t epoch)
{
    uint64_t s = seed ^ 0x6A09E667F3BCC909ull;
    uint64_t mix = splitmix64(&s);
    s = mix ^ ((uint64_t)epoch * 0xD1B54A32D192ED03ull);
    splitmix64(&s);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)bounded(&s, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* ---------------- building one batch ------------------------------------- */

static int64_t batch_rows(const em_dataloader *dl, int64_t b)
{
    int64_t start = b * dl->batch_size;
    int64_t n = dl->n_samples - start;
    return n < dl->batch_size ? n : dl->batch_size;
}

/* Builds batch b into out[] (references following the ownership rule on
 * the calling thread: plain references on a worker). On failure returns
 * the status with the message pending on this thread and out[] all NULL.
 * Returns EM_ERR_STATE without a message when cancelled. */
static em_status build_batch(em_dataloader *dl, staging *sg, int64_t b, em_tensor **out)
{
    for (int f = 0; f < dl->n_fields; f++) out[f] = NULL;
    int64_t rows = batch_rows(dl, b), start = b * dl->batch_size;
    for (int64_t r = 0; r < rows; r++) {
        if (dl->num_workers > 0 && atomic_load_explicit(&dl->cancel, memory_order_relaxed))
            return EM_ERR_STATE;
        int64_t index = dl->order ? dl->order[start + r] : start + r;
        void *ptrs[EM_DATASET_MAX_FIELDS];
        for (int f = 0; f < dl->n_fields; f++)
            ptrs[f] = (unsigned char *)sg->buf[f] + (size_t)r * dl->sample_bytes[f];
        em_status st = em_dataset_read_item(dl->ds, index, ptrs);
        if (st != EM_OK) {
            em__error_prefix("em_dataloader_next: sample %lld (batch %lld of epoch %lld): ",
                             (long long)index, (long long)b, (long long)dl->epoch);
            return st;
        }
    }
    em_status st = em_scope_begin();
    if (st != EM_OK) return st;
    em_tensor *made[EM_DATASET_MAX_FIELDS] = {0};
    for (int f = 0; f < dl->n_fields && st == EM_OK; f++) {
        int64_t shape[EM_MAX_DIMS];
        shape[0] = rows;
        memcpy(shape + 1, dl->shapes[f], sizeof(int64_t) * (size_t)dl->ndims[f]);
        made[f] = em_tensor_from_data(sg->buf[f], dl->dtypes[f], dl->ndims[f] + 1, shape,
                                      dl->device);
        if (!made[f]) {
            st = em_last_status() != EM_OK ? em_last_status() : EM_ERR_INTERNAL;
            em__error_prefix("em_dataloader_next: batch %lld of epoch %lld, field %d: ",
                             (long long)b, (long long)dl->epoch, f);
        }
    }
    for (int f = 0; f < dl->n_fields && st == EM_OK; f++) {
        out[f] = em_scope_keep(made[f]);
        if (!out[f]) st = em_last_status();
    }
    if (st != EM_OK)
        for (int f = 0; f < dl->n_fields; f++) out[f] = NULL;
    em_status est = em_scope_end();
    return st != EM_OK ? st : est;
}

/* ---------------- workers ------------------------------------------------ */

static void slot_clear(em_dataloader *dl, slot *s)
{
    for (int f = 0; f < dl->n_fields; f++) {
        em_tensor_release(s->t[f]);
        s->t[f] = NULL;
    }
    free(s->message);
    s->message = NULL;
    s->ready = false;
    s->status = EM_OK;
}

static bool can_claim(const em_dataloader *dl)
{
    return dl->active && !dl->stop && dl->next_claim < dl->n_batches &&
           dl->next_claim < dl->cursor + dl->cap;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    em_dataloader *dl = w->dl;
    pthread_mutex_lock(&dl->mu);
    for (;;) {
        while (!dl->shutdown && !can_claim(dl)) pthread_cond_wait(&dl->work_cv, &dl->mu);
        if (dl->shutdown) break;
        int64_t b = dl->next_claim++;
        uint64_t gen = dl->generation;
        dl->busy++;
        pthread_mutex_unlock(&dl->mu);

        em_tensor *t[EM_DATASET_MAX_FIELDS];
        em_status st = build_batch(dl, &w->st, b, t);
        char *msg = NULL;
        if (st != EM_OK) {
            const char *m = em_last_error();
            msg = strdup(m && *m ? m : em_status_str(st));
            em_clear_error();
        }

        pthread_mutex_lock(&dl->mu);
        dl->busy--;
        bool cancelled = atomic_load(&dl->cancel) || gen != dl->generation || !dl->active;
        if (cancelled) {
            /* The epoch was abandoned: drop the result (outside no lock is
             * needed for the release, but it is short). */
            for (int f = 0; f < dl->n_fields; f++) em_tensor_release(t[f]);
            free(msg);
        } else {
            slot *s = &dl->slots[b % dl->cap];
            s->ready = true;
            s->status = st;
            s->message = msg;
            if (st == EM_OK) memcpy(s->t, t, sizeof(em_tensor *) * (size_t)dl->n_fields);
            else dl->stop = true;
            pthread_cond_broadcast(&dl->ready_cv);
        }
        if (dl->busy == 0) pthread_cond_broadcast(&dl->idle_cv);
    }
    pthread_mutex_unlock(&dl->mu);
    return NULL;
}

/* Abandons the running epoch: workers stop claiming, finish (or cancel) what
 * they build, and every prepared batch is dropped. Consumer thread only. */
static void abandon_epoch(em_dataloader *dl)
{
    dl->running = false;
    if (dl->num_workers == 0) return;
    pthread_mutex_lock(&dl->mu);
    dl->active = false;
    atomic_store(&dl->cancel, true);
    while (dl->busy > 0) pthread_cond_wait(&dl->idle_cv, &dl->mu);
    for (int i = 0; i < dl->cap; i++) slot_clear(dl, &dl->slots[i]);
    atomic_store(&dl->cancel, false);
    pthread_mutex_unlock(&dl->mu);
}

/* ---------------- lifetime ----------------------------------------------- */

static void staging_free(em_dataloader *dl, staging *sg)
{
    for (int f = 0; f < EM_DATASET_MAX_FIELDS; f++) {
        free(sg->buf[f]);
        sg->buf[f] = NULL;
    }
}

static bool staging_alloc(em_dataloader *dl, staging *sg)
{
    for (int f = 0; f < dl->n_fields; f++) {
        size_t n = (size_t)dl->batch_size * dl->sample_bytes[f];
        sg->buf[f] = malloc(n ? n : 1);
        if (!sg->buf[f]) return false;
    }
    return true;
}

static void loader_free(em_dataloader *dl)
{
    if (!dl) return;
    if (dl->started > 0) {
        pthread_mutex_lock(&dl->mu);
        dl->shutdown = true;
        dl->active = false;
        atomic_store(&dl->cancel, true);
        pthread_cond_broadcast(&dl->work_cv);
        pthread_mutex_unlock(&dl->mu);
        for (int i = 0; i < dl->started; i++) pthread_join(dl->workers[i].thread, NULL);
    }
    if (dl->slots)
        for (int i = 0; i < dl->cap; i++) slot_clear(dl, &dl->slots[i]);
    if (dl->workers)
        for (int i = 0; i < dl->num_workers; i++) staging_free(dl, &dl->workers[i].st);
    staging_free(dl, &dl->sync);
    free(dl->slots);
    free(dl->workers);
    free(dl->order);
    pthread_mutex_destroy(&dl->mu);
    pthread_cond_destroy(&dl->work_cv);
    pthread_cond_destroy(&dl->ready_cv);
    pthread_cond_destroy(&dl->idle_cv);
    em_dataset_destroy(dl->ds);
    free(dl);
}

em_dataloader *em_dataloader_create(em_dataset *ds, const em_dataloader_options *opt)
{
    static const char *name = "em_dataloader_create";
    if (!ds) {
        em__null_arg(name, "ds");
        return NULL;
    }
    if (!opt) {
        em__null_arg(name, "opt");
        return NULL;
    }
    if (opt->batch_size < 1) {
        em__fail(EM_ERR_INVALID_ARG, "%s: batch_size is %lld, must be at least 1", name,
                 (long long)opt->batch_size);
        return NULL;
    }
    if (opt->num_workers < 0 || opt->num_workers > MAX_WORKERS) {
        em__fail(EM_ERR_INVALID_ARG, "%s: num_workers is %d, must be 0..%d", name,
                 opt->num_workers, MAX_WORKERS);
        return NULL;
    }
    if (opt->prefetch_factor < 0 || opt->prefetch_factor > MAX_PREFETCH) {
        em__fail(EM_ERR_INVALID_ARG, "%s: prefetch_factor is %d, must be 0 (default 2)..%d",
                 name, opt->prefetch_factor, MAX_PREFETCH);
        return NULL;
    }
    int nf = em_dataset_num_fields(ds);
    size_t max_sample = 0;
    for (int f = 0; f < nf; f++) {
        size_t s = em_dataset_field_bytes(ds, f);
        if (s > max_sample) max_sample = s;
    }
    if (max_sample > 0 && (uint64_t)opt->batch_size > (uint64_t)(SIZE_MAX / 4) / max_sample) {
        em__fail(EM_ERR_INVALID_ARG, "%s: batch_size %lld is too large for %zu-byte samples",
                 name, (long long)opt->batch_size, max_sample);
        return NULL;
    }
    em_device *device = opt->device ? opt->device : em_device_default();
    if (!device) {
        if (em_last_status() == EM_OK)
            em__fail(EM_ERR_DEVICE, "%s: no default device", name);
        return NULL;
    }

    em_dataloader *dl = calloc(1, sizeof *dl);
    if (!dl) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
        return NULL;
    }
    pthread_mutex_init(&dl->mu, NULL);
    pthread_cond_init(&dl->work_cv, NULL);
    pthread_cond_init(&dl->ready_cv, NULL);
    pthread_cond_init(&dl->idle_cv, NULL);
    atomic_init(&dl->cancel, false);
    dl->ds = em_dataset_retain(ds);
    dl->device = device;
    dl->n_fields = nf;
    for (int f = 0; f < nf; f++) {
        em_dataset_field(ds, f, &dl->dtypes[f], &dl->ndims[f], dl->shapes[f]);
        dl->sample_bytes[f] = em_dataset_field_bytes(ds, f);
    }
    dl->batch_size = opt->batch_size;
    dl->shuffle = opt->shuffle;
    dl->drop_last = opt->drop_last;
    dl->seed = opt->seed;
    dl->num_workers = opt->num_workers;
    dl->epoch = -1;
    dl->next_epoch = 0;
    dl->cap = (opt->prefetch_factor ? opt->prefetch_factor : 2) * (opt->num_workers ? opt->num_workers : 1);

    if (dl->num_workers == 0) {
        if (!staging_alloc(dl, &dl->sync)) goto oom;
        return dl;
    }
    dl->slots = calloc((size_t)dl->cap, sizeof *dl->slots);
    dl->workers = calloc((size_t)dl->num_workers, sizeof *dl->workers);
    if (!dl->slots || !dl->workers) goto oom;
    for (int i = 0; i < dl->num_workers; i++) {
        dl->workers[i].dl = dl;
        if (!staging_alloc(dl, &dl->workers[i].st)) goto oom;
    }
    /* Workers block every signal (they inherit the mask at creation), so
     * the application's handlers run on its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < dl->num_workers; i++) {
        int rc = pthread_create(&dl->workers[i].thread, NULL, worker_main, &dl->workers[i]);
        if (rc != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            loader_free(dl);
            em__fail(EM_ERR_INTERNAL, "%s: cannot start worker thread %d of %d: %s", name, i,
                     opt->num_workers, strerror(rc));
            return NULL;
        }
        dl->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return dl;
oom:
    loader_free(dl);
    em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory for the batch buffers", name);
    return NULL;
}

void em_dataloader_destroy(em_dataloader *dl) { loader_free(dl); }

/* ---------------- epochs ------------------------------------------------- */

static int64_t batches_for(const em_dataloader *dl, int64_t n)
{
    return dl->drop_last ? n / dl->batch_size : (n + dl->batch_size - 1) / dl->batch_size;
}

em_status em_dataloader_begin_epoch(em_dataloader *dl)
{
    if (!dl) return em__null_arg("em_dataloader_begin_epoch", "dl");
    abandon_epoch(dl);
    int64_t n = em_dataset_len(dl->ds);
    if (n < 0) {
        em__error_prefix("em_dataloader_begin_epoch: ");
        return em_last_status();
    }
    if (dl->shuffle) {
        if ((size_t)n > dl->order_cap || !dl->order) {
            int64_t *o = realloc(dl->order, sizeof *o * (size_t)(n ? n : 1));
            if (!o)
                return em__fail(EM_ERR_OUT_OF_MEMORY,
                                "em_dataloader_begin_epoch: out of host memory for the order "
                                "of %lld samples",
                                (long long)n);
            dl->order = o;
            dl->order_cap = (size_t)(n ? n : 1);
        }
        make_permutation(dl->order, n, dl->seed, dl->next_epoch);
    }
    dl->epoch = dl->next_epoch++;
    dl->n_samples = n;
    dl->n_batches = batches_for(dl, n);
    dl->running = true;
    if (dl->num_workers == 0) {
        dl->cursor = 0;
        return EM_OK;
    }
    pthread_mutex_lock(&dl->mu);
    dl->generation++;
    dl->next_claim = 0;
    dl->cursor = 0;
    dl->stop = false;
    dl->active = true;
    pthread_cond_broadcast(&dl->work_cv);
    pthread_mutex_unlock(&dl->mu);
    return EM_OK;
}

em_status em_dataloader_set_epoch(em_dataloader *dl, int64_t epoch)
{
    if (!dl) return em__null_arg("em_dataloader_set_epoch", "dl");
    if (epoch < 0)
        return em__fail(EM_ERR_INVALID_ARG, "em_dataloader_set_epoch: epoch %lld is negative",
                        (long long)epoch);
    abandon_epoch(dl);
    dl->next_epoch = epoch;
    return EM_OK;
}

int64_t em_dataloader_epoch(const em_dataloader *dl) { return dl ? dl->epoch : -1; }

int64_t em_dataloader_len(const em_dataloader *dl)
{
    if (!dl) {
        em__null_arg("em_dataloader_len", "dl");
        return -1;
    }
    int64_t n = em_dataset_len(dl->ds);
    return n < 0 ? -1 : batches_for(dl, n);
}

em_dataset *em_dataloader_dataset(const em_dataloader *dl)
{
    if (!dl) {
        em__null_arg("em_dataloader_dataset", "dl");
        return NULL;
    }
    return dl->ds;
}

/* ---------------- next --------------------------------------------------- */

em_status em_dataloader_next(em_dataloader *dl, em_tensor **batch_fields)
{
    static const char *name = "em_dataloader_next";
    if (!batch_fields) return em__null_arg(name, "batch_fields");
    if (!dl) return em__null_arg(name, "dl");
    for (int f = 0; f < dl->n_fields; f++) batch_fields[f] = NULL;
    if (!dl->running) {
        em_status st = em_dataloader_begin_epoch(dl);
        if (st != EM_OK) return st;
    }
    if (dl->cursor >= dl->n_batches) {
        /* End of the epoch; the next call starts a new one. */
        abandon_epoch(dl);
        return EM_OK;
    }
    if (dl->num_workers == 0) {
        em_status st = build_batch(dl, &dl->sync, dl->cursor, batch_fields);
        if (st != EM_OK) {
            abandon_epoch(dl);
            return st;
        }
        dl->cursor++;
        return EM_OK;
    }

    em_tensor *t[EM_DATASET_MAX_FIELDS];
    pthread_mutex_lock(&dl->mu);
    slot *s = &dl->slots[dl->cursor % dl->cap];
    while (!s->ready) pthread_cond_wait(&dl->ready_cv, &dl->mu);
    em_status st = s->status;
    char *msg = s->message;
    memcpy(t, s->t, sizeof(em_tensor *) * (size_t)dl->n_fields);
    s->message = NULL;
    memset(s->t, 0, sizeof s->t);
    s->ready = false;
    s->status = EM_OK;
    dl->cursor++;
    pthread_cond_broadcast(&dl->work_cv);
    pthread_mutex_unlock(&dl->mu);

    if (st != EM_OK) {
        abandon_epoch(dl);
        em__fail(st, "%s", msg ? msg : em_status_str(st));
        free(msg);
        return st;
    }
    /* Move the worker's references to this thread's scope (or the caller);
     * em__own releases the tensor itself when the scope cannot hold it. */
    for (int f = 0; f < dl->n_fields; f++) {
        batch_fields[f] = st == EM_OK ? em__own(t[f]) : (em_tensor_release(t[f]), NULL);
        if (!batch_fields[f] && st == EM_OK) st = em_last_status();
    }
    if (st != EM_OK) {
        /* Only an out-of-memory scope list can get here; the scope already
         * dropped what it could not hold. */
        for (int f = 0; f < dl->n_fields; f++) batch_fields[f] = NULL;
        abandon_epoch(dl);
    }
    return st;
}
