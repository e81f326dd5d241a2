/*
 * test_vulkan_train.c — an MLP (Linear/ReLU/Linear/ReLU/Linear, cross entropy)
 * trains entirely on the Vulkan device: the same run on the CPU device and on
 * Vulkan (lavapipe in CI, validation layer on), for SGD with momentum and for
 * Adam, from the same seed.
 *
 * Checks, per optimizer:
 *   - the initial weights are identical on both devices (the Philox stream of
 *     api/ember_plugin.h, drawn by a Vulkan kernel, equals the CPU's bit for bit);
 *   - no op fell back to the CPU during the Vulkan run (em_fallback_count()
 *     unchanged, reads of the loss and the accuracy included);
 *   - the loss drops (last epoch's mean < 0.5 x the first step's loss) and the
 *     training accuracy (argmax/eq/cast/mean on the device) beats 90%;
 *   - every step's loss agrees with the CPU run's: |vk - cpu| <= 1e-4 (1 + |cpu|),
 *     and the final weights within 1e-3 absolute (f32 with a different summation
 *     order, amplified a little over 40 optimizer steps; measured on lavapipe:
 *     2.4e-7 and 1.5e-7); the measured maxima are printed.
 * The data: 512 "digits-like" samples, 64 features, 10 classes (noisy class
 * prototypes), generated here deterministically.
 * Exit 77 (skipped) when no Vulkan device can be used.
 */
#include "ember.h"
#include "ember_nn.h"
#include "ember_optim.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_fail, g_pass;
#define EXPECT(c, ...)                                                                   \
    do {                                                                                 \
        if (c) g_pass++;                                                                 \
        else {                                                                           \
            g_fail++;                                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            printf(__VA_ARGS__);                                                         \
            printf(" [%s]\n", em_last_error());                                          \
        }                                                                                \
    } while (0)

#define N 512
#define F 64
#define C 10
#define BATCH 64
#define EPOCHS 5
#define STEPS (EPOCHS * (N / BATCH))

static float g_x[N * F];
static int64_t g_y[N];

static void make_data(void)
{
    uint64_t s = 0x2545F4914F6CDD1Dull;
    float proto[C][F];
    for (int c = 0; c < C; c++)
        for (int f = 0; f < F; f++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            proto[c][f] = (float)((s >> 11) * 0x1.0p-53 * 2.0 - 1.0);
        }
    for (int i = 0; i < N; i++) {
        g_y[i] = i % C;
        for (int f = 0; f < F; f++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            double noise = ((s >> 11) * 0x1.0p-53 - 0.5) * 1.2;
            g_x[i * F + f] = (float)(proto[g_y[i]][f] + noise);
        }
    }
}

typedef struct run_result {
    double loss[STEPS];
    double accuracy;
    float *weights; /* all parameters, concatenated (host copy) */
    int64_t n_weights;
    float *init_weights;
} run_result;

static float *params_to_host(em_tensor *const *params, int np, int64_t *count)
{
    int64_t n = 0;
    for (int i = 0; i < np; i++) n += em_tensor_numel(params[i]);
    float *out = malloc(sizeof(float) * (size_t)n);
    int64_t at = 0;
    for (int i = 0; i < np; i++) {
        int64_t k = em_tensor_numel(params[i]);
        EXPECT(em_tensor_read(params[i], out + at, sizeof(float) * (size_t)k) == EM_OK,
               "reading parameter %d", i);
        at += k;
    }
    *count = n;
    return out;
}

/* Trains on dev with optimizer kind 0 (SGD, momentum 0.9) or 1 (Adam). */
static int train(em_device *dev, int kind, run_result *r)
{
    em_scope_begin();
    int64_t xs[2] = {N, F}, ys[1] = {N};
    em_tensor *x = em_tensor_from_data(g_x, EM_F32, 2, xs, dev);
    em_tensor *y = em_tensor_from_data(g_y, EM_I64, 1, ys, dev);
    em_manual_seed(1234);
    em_module *model = em_nn_sequential(
        (em_module *[]){em_nn_linear(F, 48, true, dev, NULL), em_nn_relu(),
                        em_nn_linear(48, 32, true, dev, NULL), em_nn_relu(),
                        em_nn_linear(32, C, true, dev, NULL)},
        5);
    EXPECT(model != NULL, "model on %s", em_device_name(dev));
    if (!model) {
        em_scope_end();
        return 0;
    }
    em_tensor_dict *named = em_module_named_parameters(model);
    int np = em_tensor_dict_count(named);
    em_tensor *params[16];
    for (int i = 0; i < np && i < 16; i++) params[i] = em_tensor_dict_at(named, i);
    r->init_weights = params_to_host(params, np, &r->n_weights);
    em_optimizer *opt;
    if (kind == 0) {
        em_sgd_options so = em_sgd_defaults(0.05);
        so.momentum = 0.9;
        opt = em_sgd_create(np, params, &so);
    } else {
        em_adam_options ao = em_adam_defaults(3e-3);
        opt = em_adam_create(np, params, &ao);
    }
    EXPECT(opt != NULL, "optimizer");
    int step = 0;
    for (int e = 0; e < EPOCHS && opt; e++) {
        for (int b = 0; b < N / BATCH; b++, step++) {
            em_scope_begin();
            em_tensor *xb = em_narrow(x, 0, (int64_t)b * BATCH, BATCH);
            em_tensor *yb = em_narrow(y, 0, (int64_t)b * BATCH, BATCH);
            em_optimizer_zero_grad(opt, true);
            em_tensor *loss = em_cross_entropy(em_module_forward(model, xb), yb, EM_REDUCTION_MEAN,
                                               -100, 0.0);
            double lv = NAN;
            em_status st = em_backward(loss, NULL, false, false);
            if (st == EM_OK) st = em_optimizer_step(opt);
            if (st == EM_OK) st = em_tensor_item(loss, &lv);
            EXPECT(st == EM_OK, "step %d on %s", step, em_device_name(dev));
            r->loss[step] = lv;
            em_scope_end();
        }
    }
    /* training accuracy: argmax, eq, cast, mean on the device */
    bool prev = em_set_grad_enabled(false);
    em_scope_begin();
    em_tensor *hits = em_mean(em_cast(em_eq(em_argmax(em_module_forward(model, x), -1, false), y),
                                      EM_F32),
                              NULL, 0, false);
    r->accuracy = -1;
    EXPECT(hits && em_tensor_item(hits, &r->accuracy) == EM_OK, "accuracy");
    em_scope_end();
    em_set_grad_enabled(prev);
    r->weights = params_to_host(params, np, &r->n_weights);
    em_optimizer_destroy(opt);
    em_tensor_dict_destroy(named);
    em_module_destroy(model);
    em_scope_end();
    return 1;
}

int main(void)
{
    if (em_init() != EM_OK && !em_device_cpu()) {
        printf("em_init failed: %s\n", em_last_error());
        return 1;
    }
    em_device *cpu = em_device_cpu(), *vk = em_device_find("vulkan");
    if (!vk) {
        printf("SKIP: no usable Vulkan device: %s\n", em_last_error());
        return 77;
    }
    make_data();
    static const char *names[2] = {"SGD (momentum 0.9)", "Adam"};
    for (int kind = 0; kind < 2; kind++) {
        run_result rc = {0}, rv = {0};
        train(cpu, kind, &rc);
        uint64_t fb0 = em_fallback_count();
        train(vk, kind, &rv);
        uint64_t fb = em_fallback_count() - fb0;
        printf("%s: CPU fallbacks during the Vulkan run: %llu\n", names[kind],
               (unsigned long long)fb);
        EXPECT(fb == 0, "%s: %llu ops fell back to the CPU", names[kind], (unsigned long long)fb);
        if (!rc.weights || !rv.weights || rc.n_weights != rv.n_weights) {
            EXPECT(0, "%s: runs incomplete", names[kind]);
            continue;
        }
        double init_diff = 0, w_diff = 0, loss_err = 0;
        for (int64_t i = 0; i < rc.n_weights; i++) {
            init_diff = fmax(init_diff, fabs((double)rc.init_weights[i] - rv.init_weights[i]));
            w_diff = fmax(w_diff, fabs((double)rc.weights[i] - rv.weights[i]));
        }
        int bad_step = -1;
        for (int s = 0; s < STEPS; s++) {
            double e = fabs(rv.loss[s] - rc.loss[s]);
            if (!(e <= 1e-4 * (1 + fabs(rc.loss[s]))) && bad_step < 0) bad_step = s;
            if (e > loss_err || isnan(e)) loss_err = e;
        }
        double first = rv.loss[0], last = 0;
        for (int s = STEPS - N / BATCH; s < STEPS; s++) last += rv.loss[s] / (N / BATCH);
        printf("%s: %d params; loss %.4f -> %.4f (cpu %.4f -> %.4f); accuracy vulkan %.3f cpu %.3f\n",
               names[kind], (int)rc.n_weights, first, last, rc.loss[0], rc.loss[STEPS - 1],
               rv.accuracy, rc.accuracy);
        printf("%s: max |init weight diff| %.3g, max |loss diff| %.3g, max |final weight diff| "
               "%.3g\n", names[kind], init_diff, loss_err, w_diff);
        EXPECT(init_diff == 0, "%s: initial weights differ by %g (Philox streams differ)",
               names[kind], init_diff);
        EXPECT(last < 0.5 * first, "%s: loss did not drop: %g -> %g", names[kind], first, last);
        EXPECT(rv.accuracy > 0.9, "%s: accuracy %g", names[kind], rv.accuracy);
        EXPECT(bad_step < 0, "%s: step %d: loss vulkan %.7g cpu %.7g", names[kind], bad_step,
               bad_step >= 0 ? rv.loss[bad_step] : 0, bad_step >= 0 ? rc.loss[bad_step] : 0);
        EXPECT(w_diff <= 1e-3, "%s: final weights differ by %g", names[kind], w_diff);
        free(rc.weights);
        free(rv.weights);
        free(rc.init_weights);
        free(rv.init_weights);
    }
    /* a pending validation message would fail this call */
    EXPECT(em_device_synchronize(vk) == EM_OK, "synchronize (validation messages pending?)");
    em_shutdown();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
