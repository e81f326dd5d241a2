/*
 * bench_dataloader.c — ember-bench-dataloader: does the DataLoader keep a
 * training loop fed?
 *
 * One epoch over a synthetic MNIST-sized dataset (60000 samples of 784 f32
 * features and an i64 label) whose get_item callback makes each sample: by
 * default one xorshift draw per pixel from a per-sample seed (random samples,
 * the workload issue [3] names); --work W > 1 makes it "decode" (W rounds
 * per pixel, as inflating a compressed image would), a heavier dataset than
 * the target's. At batch 64, with a training-like consumer: an
 * MLP step on every batch (linear 784->256, relu, linear 256->10, mean,
 * backward), on the loader's device. For each num_workers it prints the
 * epoch time and the fraction of it the consumer spends waiting inside
 * em_dataloader_next (the goal: under 5% with 2 workers when the machine
 * has the cores for them). Two baselines frame the numbers: the loader
 * alone (no consumer work) and the consumer alone (the same batch reused).
 * A "cores" column (process CPU time / wall time) shows how many cores each
 * run really got: on a shared or small machine the workers may get none
 * beside the consumer (the program then says so), and the wait measures
 * CPU contention rather than the loader. EMBER_NUM_THREADS=1 keeps the
 * consumer's ops on one core, leaving the others to the workers.
 *
 * Options: --samples N (60000), --batch B (64), --work W (decoding rounds
 * per pixel, 1), --hidden H (256), --workers a,b,c (0,1,2), --device SPEC.
 * It reports; it never asserts a timing. Exit status 0 unless Ember fails.
 */
#define _GNU_SOURCE
#include <ember.h>
#include <ember_data.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FEATURES 784

/* batches prepared ahead per worker (em_dataloader_options.prefetch_factor; 0 = 2) */
static int g_prefetch = 0;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads), to tell how many cores a run
 * really got: on a machine shared with other work the workers may get none. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct synth {
    int64_t n;
    int work;
} synth;

static int64_t synth_len(void *ctx) { return ((synth *)ctx)->n; }

/* Decodes sample i: pixel values from a xorshift stream seeded by i, each
 * pixel taking `work` rounds; deterministic and thread-safe (no shared state). */
static em_status synth_get(void *ctx, int64_t i, void *const *fields)
{
    const synth *s = ctx;
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull + 1;
    float *px = fields[0];
    for (int j = 0; j < FEATURES; j++) {
        for (int r = 0; r < s->work; r++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        px[j] = (float)(x >> 56) * (1.0f / 255.0f);
    }
    *(int64_t *)fields[1] = (int64_t)(x % 10);
    return EM_OK;
}

typedef struct model {
    em_tensor *w1, *b1, *w2, *b2;
} model;

/* One MLP training step's worth of work on a batch; returns 0 on error. */
static int train_step(const model *m, em_tensor *x, em_tensor *y)
{
    (void)y;
    em_scope_begin();
    em_tensor *h = em_relu(em_linear(x, m->w1, m->b1));
    em_tensor *o = em_linear(h, m->w2, m->b2);
    em_tensor *loss = em_mean(em_square(o), NULL, 0, false);
    int ok = loss && em_backward(loss, NULL, false, false) == EM_OK;
    double v;
    ok = ok && em_tensor_item(loss, &v) == EM_OK; /* synchronises */
    for (int k = 0; k < 4 && ok; k++) {
        em_tensor *p = k == 0 ? m->w1 : k == 1 ? m->b1 : k == 2 ? m->w2 : m->b2;
        ok = em_set_grad(p, NULL) == EM_OK;
    }
    em_scope_end();
    return ok;
}

typedef struct result {
    double epoch_s, wait_s, cpu_s;
    int64_t batches, samples;
} result;

/* One epoch; consume = run a training step per batch. */
static int run_epoch(em_dataset *ds, int workers, int64_t batch, em_device *dev,
                     const model *m, int consume, result *r)
{
    em_dataloader *dl = em_dataloader_create(
        ds, &(em_dataloader_options){.batch_size = batch, .shuffle = true, .seed = 1,
                                     .num_workers = workers, .device = dev,
                                     .prefetch_factor = g_prefetch});
    if (!dl) return 0;
    memset(r, 0, sizeof *r);
    int ok = 1;
    /* Workers start at begin_epoch; the clock starts there too, so the
     * first batch's wait counts (as it does in a real epoch). */
    double t0 = now_s(), c0 = cpu_s();
    ok = em_dataloader_begin_epoch(dl) == EM_OK;
    for (;;) {
        em_tensor *b[2];
        em_scope_begin();
        double w0 = now_s();
        em_status st = em_dataloader_next(dl, b);
        r->wait_s += now_s() - w0;
        if (st != EM_OK || !b[0]) {
            ok &= st == EM_OK;
            em_scope_end();
            break;
        }
        r->batches++;
        r->samples += em_tensor_dim(b[0], 0);
        if (consume) ok &= train_step(m, b[0], b[1]);
        em_scope_end();
        if (!ok) break;
    }
    r->epoch_s = now_s() - t0;
    r->cpu_s = cpu_s() - c0;
    em_dataloader_destroy(dl);
    return ok;
}

/* The consumer alone: the same batch trained on len times. */
static int consumer_only(const model *m, int64_t batches, int64_t batch, em_device *dev,
                         double *secs, double *cpu)
{
    em_tensor *x = em_rand(NULL, EM_F32, EM_SHAPE(batch, FEATURES), dev);
    em_tensor *y = em_zeros(EM_I64, EM_SHAPE(batch), dev);
    int ok = x && y;
    double t0 = now_s(), c0 = cpu_s();
    for (int64_t i = 0; i < batches && ok; i++) ok = train_step(m, x, y);
    *secs = now_s() - t0;
    *cpu = cpu_s() - c0;
    em_tensor_release(x);
    em_tensor_release(y);
    return ok;
}

int main(int argc, char **argv)
{
    int64_t samples = 60000, batch = 64;
    int work = 1, hidden = 256;
    int workers[16] = {0, 1, 2}, n_workers = 3;
    const char *device_spec = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--samples") && i + 1 < argc) samples = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--work") && i + 1 < argc) work = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prefetch") && i + 1 < argc) g_prefetch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device_spec = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            n_workers = 0;
            for (char *s = strtok(argv[++i], ","); s && n_workers < 16; s = strtok(NULL, ","))
                workers[n_workers++] = atoi(s);
        } else {
            fprintf(stderr,
                    "usage: %s [--samples N] [--batch B] [--work W] [--hidden H] "
                    "[--workers 0,2,...] [--device SPEC]\n",
                    argv[0]);
            return strcmp(argv[i], "-h") && strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (samples < 1 || batch < 1 || work < 0 || hidden < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    em_init();
    em_device *dev = device_spec ? em_device_find(device_spec) : em_device_default();
    if (!dev) {
        fprintf(stderr, "no device: %s\n", em_last_error());
        return 1;
    }
    em_clear_error();
    synth ctx = {samples, work};
    em_dataset_def def = {.len = synth_len, .get_item = synth_get, .ctx = &ctx, .n_fields = 2};
    def.dtypes[0] = EM_F32;
    def.ndims[0] = 1;
    def.shapes[0][0] = FEATURES;
    def.dtypes[1] = EM_I64;
    def.ndims[1] = 0;
    em_dataset *ds = em_dataset_create(&def);
    em_scope_begin(); /* the randn temporaries die here; the weights are kept */
    model m = {
        em_scope_keep(em_mul_scalar(em_randn(NULL, EM_F32, EM_SHAPE(hidden, FEATURES), dev), 0.03)),
        em_scope_keep(em_zeros(EM_F32, EM_SHAPE(hidden), dev)),
        em_scope_keep(em_mul_scalar(em_randn(NULL, EM_F32, EM_SHAPE(10, hidden), dev), 0.05)),
        em_scope_keep(em_zeros(EM_F32, EM_SHAPE(10), dev)),
    };
    em_scope_end();
    if (!ds || !m.w1 || !m.b1 || !m.w2 || !m.b2) {
        fprintf(stderr, "set-up failed: %s\n", em_last_error());
        return 1;
    }
    em_requires_grad_(m.w1, true);
    em_requires_grad_(m.b1, true);
    em_requires_grad_(m.w2, true);
    em_requires_grad_(m.b2, true);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("ember-bench-dataloader: %lld samples of f32[%d] + i64, batch %lld, shuffle, device "
           "%s, %ld CPUs\n",
           (long long)samples, FEATURES, (long long)batch, em_device_name(dev), cpus);
    printf("consumer: MLP step %d->%d->10 with backward per batch; get_item: %d decode rounds "
           "per pixel\n\n",
           FEATURES, hidden, work);

    /* Warm-up: thread pools, caches, page faults. */
    result r;
    double warm;
    double warm_cpu;
    if (!consumer_only(&m, 20, batch, dev, &warm, &warm_cpu)) goto fail;

    int64_t nb = (samples + batch - 1) / batch;
    double cons_s, cons_cpu;
    if (!consumer_only(&m, nb, batch, dev, &cons_s, &cons_cpu)) goto fail;
    printf("%-32s %8s %8s %8s %7s %10s %6s\n", "run", "epoch s", "batches", "wait s", "wait %",
           "samples/s", "cores");
    printf("%-32s %8.3f %8lld %8s %7s %10.0f %6.2f\n", "consumer alone (no loading)", cons_s,
           (long long)nb, "-", "-", samples / cons_s, cons_cpu / cons_s);
    double alone0 = 0, alone_best = 0;
    int best_w = 0;
    for (int k = 0; k < n_workers; k++) {
        if (!run_epoch(ds, workers[k], batch, dev, &m, 0, &r)) goto fail;
        char label[64];
        snprintf(label, sizeof label, "loader alone, num_workers %d", workers[k]);
        printf("%-32s %8.3f %8lld %8s %7s %10.0f %6.2f\n", label, r.epoch_s, (long long)r.batches,
               "-", "-", r.samples / r.epoch_s, r.cpu_s / r.epoch_s);
        if (workers[k] == 0) alone0 = r.epoch_s;
        if (workers[k] > best_w) best_w = workers[k], alone_best = r.epoch_s;
    }
    for (int k = 0; k < n_workers; k++) {
        if (!run_epoch(ds, workers[k], batch, dev, &m, 1, &r)) goto fail;
        char label[64];
        snprintf(label, sizeof label, "training epoch, num_workers %d", workers[k]);
        printf("%-32s %8.3f %8lld %8.3f %6.1f%% %10.0f %6.2f\n", label, r.epoch_s,
               (long long)r.batches, r.wait_s, 100.0 * r.wait_s / r.epoch_s,
               r.samples / r.epoch_s, r.cpu_s / r.epoch_s);
    }
    printf("\ncores = process CPU time / wall time (all threads). The consumer alone uses %.2f.\n",
           cons_cpu / cons_s);
    if (alone0 > 0 && best_w >= 2 && alone0 / alone_best < 0.6 * (best_w < cpus ? best_w : cpus))
        printf("NOTE: %d workers load only %.2fx faster than 0: this machine has no free cores for "
               "them now (other load, or fewer CPUs than workers + consumer), so the wait %% above "
               "measures CPU contention, not the loader.\n",
               best_w, alone0 / alone_best);
    /* When the loader alone, with all its workers, takes longer than the
     * consumer alone, no loader can hide it: the epoch is data-bound and its
     * wait is at least the difference. */
    if (best_w > 0 && alone_best > cons_s)
        printf("DATA-BOUND: the dataset's get_item with %d workers (%.3f s an epoch) is slower than "
               "the consumer (%.3f s), so the training epoch must wait at least %.0f%% of its time "
               "whatever the loader does; more workers or a cheaper get_item would help.\n",
               best_w, alone_best, cons_s, 100.0 * (alone_best - cons_s) / alone_best);
    printf("wait %% = time inside em_dataloader_next / epoch time (goal with 2 workers: < 5%%, "
           "given cores for the workers beside the consumer's).\n");
    em_dataset_destroy(ds);
    em_tensor_release(m.w1);
    em_tensor_release(m.b1);
    em_tensor_release(m.w2);
    em_tensor_release(m.b2);
    return 0;
fail:
    fprintf(stderr, "ember-bench-dataloader: %s\n", em_last_error());
    return 1;
}
