/*
 * bench_train.c — the `train` suite: training steps per second of the MLP
 * 784-256-128-10 (Linear, ReLU, Linear, ReLU, Linear; cross-entropy; SGD lr
 * 0.01; zero_grad to none + forward + loss + backward + step, each step in a
 * scope, as bench_mlp.c) on one device.
 *
 * Weights and data come from formulas, not from a random generator, so every
 * backend and PyTorch (bench/pytorch_ops.py computes the same formulas)
 * start from identical numbers and their final losses are comparable:
 *   weight of layer l (1-based), flat index j: sin(0.731 j + 1.3 l) / sqrt(in)
 *   bias of layer l, index o:                  0.1 cos(0.37 o + l) / sqrt(in)
 *   x[b][i] (flat j = b*784 + i):              sin(0.013 j + 0.5)
 *   label[b]:                                  (7 b + 3) mod 10
 * (computed in double, rounded to f32). Not for the op suite.
 */
#include "bench.h"

#include <ember_nn.h>
#include <ember_optim.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int64_t k_dims[4] = {784, 256, 128, 10};

/* Overwrites parameter `name` ("0.weight", "2.bias", ...) with its formula.
 * Called inside a scope, which owns the temporaries. */
static em_status set_param(em_tensor *p, const char *name, em_device *dev)
{
    int child = atoi(name);
    int l = child / 2 + 1; /* layers are children 0, 2, 4 */
    bool is_bias = strstr(name, "bias") != NULL;
    int64_t n = em_tensor_numel(p), shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(p, shape);
    double in_f = (double)k_dims[l - 1];
    float *v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
    if (!v) return EM_ERR_OUT_OF_MEMORY;
    for (int64_t j = 0; j < n; j++)
        v[j] = is_bias ? (float)(0.1 * cos(0.37 * (double)j + l) / sqrt(in_f))
                       : (float)(sin(0.731 * (double)j + 1.3 * l) / sqrt(in_f));
    em_tensor *src = em_tensor_from_data(v, EM_F32, nd, shape, dev);
    free(v);
    if (!src) return em_last_status();
    return em_copy_(p, src); /* src belongs to the caller's open scope */
}

static em_status step(em_module *model, em_optimizer *opt, const em_tensor *x, const em_tensor *y,
                      double *loss_out)
{
    em_scope_begin();
    em_optimizer_zero_grad(opt, true);
    em_tensor *loss = em_cross_entropy(em_module_forward(model, x), y, EM_REDUCTION_MEAN,
                                       EM_IGNORE_INDEX_DEFAULT, 0.0);
    em_status st = loss ? em_backward(loss, NULL, false, false) : em_last_status();
    if (st == EM_OK) st = em_optimizer_step(opt);
    if (st == EM_OK && loss_out) st = em_tensor_item(loss, loss_out);
    em_scope_end();
    return st;
}

bool bench_train_mlp(em_device *dev, int batch, int warmup, int steps, int repeats,
                     bench_train_row *row)
{
    snprintf(row->backend, sizeof row->backend, "%s", em_device_name(dev));
    row->batch = batch;
    row->ok = false;
    int inner = steps / (repeats > 0 ? repeats : 1);
    if (inner < 1) inner = 1;
    em_module *model = em_nn_sequential(
        (em_module *[]){em_nn_linear(784, 256, true, dev, NULL), em_nn_relu(),
                        em_nn_linear(256, 128, true, dev, NULL), em_nn_relu(),
                        em_nn_linear(128, 10, true, dev, NULL)},
        5);
    em_tensor_dict *params = model ? em_module_named_parameters(model) : NULL;
    int np = params ? em_tensor_dict_count(params) : 0;
    em_tensor *plist[16];
    em_optimizer *opt = NULL;
    em_status st = params && np <= 16 ? EM_OK : em_last_status();
    if (st == EM_OK) {
        bool prev = em_set_grad_enabled(false);
        em_scope_begin();
        for (int i = 0; i < np && st == EM_OK; i++) {
            plist[i] = em_tensor_dict_at(params, i);
            st = plist[i] ? set_param(plist[i], em_tensor_dict_name(params, i), dev) : em_last_status();
        }
        em_sgd_options so = em_sgd_defaults(0.01);
        if (st == EM_OK) opt = em_sgd_create(np, plist, &so);
        em_scope_end();
        em_set_grad_enabled(prev);
        if (st == EM_OK && !opt) st = em_last_status();
    }
    /* data */
    float *xv = malloc(sizeof *xv * (size_t)batch * 784);
    int64_t *yv = malloc(sizeof *yv * (size_t)batch);
    em_tensor *x = NULL, *y = NULL;
    if (st == EM_OK && xv && yv) {
        for (int64_t j = 0; j < (int64_t)batch * 784; j++) xv[j] = (float)sin(0.013 * (double)j + 0.5);
        for (int b = 0; b < batch; b++) yv[b] = (7 * b + 3) % 10;
        x = em_tensor_from_data(xv, EM_F32, EM_SHAPE(batch, 784), dev);
        y = em_tensor_from_data(yv, EM_I64, EM_SHAPE(batch), dev);
        if (!x || !y) st = em_last_status();
    } else if (st == EM_OK) {
        st = EM_ERR_OUT_OF_MEMORY;
    }
    free(xv);
    free(yv);
    double samples[256];
    int nrep = repeats < 256 ? repeats : 256;
    for (int i = 0; i < warmup && st == EM_OK; i++) st = step(model, opt, x, y, NULL);
    if (st == EM_OK) st = em_device_synchronize(dev);
    double loss = NAN;
    for (int r = 0; r < nrep && st == EM_OK; r++) {
        double t0 = bench_now();
        for (int i = 0; i < inner && st == EM_OK; i++) {
            bool last = r == nrep - 1 && i == inner - 1;
            st = step(model, opt, x, y, last ? &loss : NULL);
        }
        if (st == EM_OK) st = em_device_synchronize(dev);
        samples[r] = (bench_now() - t0) / inner;
    }
    if (st == EM_OK) {
        row->t = bench_timing_of(samples, nrep);
        row->final_loss = loss;
        row->steps = warmup + nrep * inner;
        row->ok = true;
    } else {
        snprintf(row->note, sizeof row->note, "%s", em_last_error());
        em_clear_error();
    }
    em_tensor_release(x);
    em_tensor_release(y);
    em_optimizer_destroy(opt);
    em_tensor_dict_destroy(params);
    em_module_destroy(model);
    return row->ok;
}
