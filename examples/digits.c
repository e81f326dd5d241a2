/*
 * digits.c — ember-digits: trains an MLP on the 8x8 handwritten digits data
 * set (1797 images, 10 classes) and reports its test accuracy.
 *
 *   ember-digits PATH/TO/digits.csv.gz [epochs]
 *
 * The file is scikit-learn's digits.csv.gz (64 pixel values 0..16, then the
 * class, no header); Ember reads it with em_csv_read, which decompresses
 * gzip files. Without the file: `apt-get download python3-sklearn && dpkg -x
 * python3-sklearn_*.deb x` and use x/usr/lib/python3/dist-packages/sklearn/
 * datasets/data/digits.csv.gz (see README.md).
 *
 * The recipe: pixels scaled to [0, 1]; a fixed-seed 80/20 split (1437
 * training, 360 test images); MLP 64-128-64-10 with ReLU; cross-entropy;
 * Adam (lr 2e-3, one epoch of warm-up, then cosine decay to 0); a shuffled
 * DataLoader with batch 32 and 2 worker threads; 30 epochs; one progress
 * line per epoch. Exits 0 when the test accuracy
 * reaches 95%, 1 otherwise (it runs as a test), 2 on bad arguments.
 */
#include <ember.h>
#include <ember_data.h>
#include <ember_nn.h>
#include <ember_optim.h>

#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what)
{
    fprintf(stderr, "ember-digits: %s: %s\n", what, em_last_error());
    return 1;
}

/* Fraction of correct argmax predictions of model on (x, y); -1 on error. */
static double accuracy(em_module *model, const em_tensor *x, const em_tensor *y)
{
    double acc = -1;
    bool prev = em_set_grad_enabled(false);
    em_module_train(model, false);
    em_scope_begin();
    em_tensor *hits = em_mean(em_cast(em_eq(em_argmax(em_module_forward(model, x), -1, false), y),
                                      EM_F32),
                              NULL, 0, false);
    if (!hits || em_tensor_item(hits, &acc) != EM_OK) acc = -1;
    em_scope_end();
    em_module_train(model, true);
    em_set_grad_enabled(prev);
    return acc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PATH/TO/digits.csv.gz [epochs]\n", argv[0]);
        return 2;
    }
    int epochs = argc == 3 ? atoi(argv[2]) : 30;
    if (epochs < 1) {
        fprintf(stderr, "ember-digits: epochs must be a positive number, not '%s'\n", argv[2]);
        return 2;
    }
    if (em_init() != EM_OK) return fail("em_init");
    em_device *dev = em_device_default();
    printf("ember-digits on %s\n", em_device_name(dev));

    em_scope_begin();
    em_tensor *x = NULL, *y = NULL;
    em_csv_options co = em_csv_options_default();
    co.device = dev;
    if (em_csv_read(argv[1], &co, &x, &y) != EM_OK) return fail("reading the data");
    int64_t n = em_tensor_dim(x, 0), n_train = n * 8 / 10;
    printf("%lld images of %lld pixels\n", (long long)n, (long long)em_tensor_dim(x, 1));

    /* a fixed-seed shuffle (Fisher-Yates on the host with splitmix64), then
     * 80% for training and 20% for testing */
    int64_t *order = malloc((size_t)n * sizeof *order);
    if (!order) return fail("out of memory");
    uint64_t state = 2024;
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        int64_t j = (int64_t)(z % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    em_tensor *idx_train = em_tensor_from_data(order, EM_I64, EM_SHAPE(n_train), dev);
    em_tensor *idx_test = em_tensor_from_data(order + n_train, EM_I64, EM_SHAPE(n - n_train), dev);
    free(order);
    em_tensor *xs = em_div_scalar(x, 16.0); /* pixels 0..16 -> [0, 1] */
    em_tensor *x_train = em_index_select(xs, 0, idx_train), *y_train = em_index_select(y, 0, idx_train);
    em_tensor *x_test = em_index_select(xs, 0, idx_test), *y_test = em_index_select(y, 0, idx_test);
    if (!y_test) return fail("splitting the data");
    printf("split: %lld training, %lld test images\n", (long long)n_train, (long long)(n - n_train));

    em_manual_seed(7);
    em_module *model = em_nn_sequential((em_module *[]){em_nn_linear(64, 128, true, dev, NULL), em_nn_relu(),
                                                        em_nn_linear(128, 64, true, dev, NULL), em_nn_relu(),
                                                        em_nn_linear(64, 10, true, dev, NULL)},
                                        5);
    em_tensor_dict *named = model ? em_module_named_parameters(model) : NULL;
    if (!named) return fail("building the model");
    int np = em_tensor_dict_count(named);
    em_tensor *params[8];
    for (int i = 0; i < np; i++) params[i] = em_tensor_dict_at(named, i);
    em_adam_options ao = em_adam_defaults(2e-3);
    em_optimizer *opt = em_adam_create(np, params, &ao);
    em_dataset *ds = em_tensor_dataset_create(2, (em_tensor *const[]){x_train, y_train});
    em_dataloader_options lo = {.batch_size = 32, .shuffle = true, .num_workers = 2,
                                .device = dev, .seed = 11};
    em_dataloader *loader = ds ? em_dataloader_create(ds, &lo) : NULL;
    em_dataset_destroy(ds);
    /* one warm-up epoch, then a cosine decay to zero over the run */
    int64_t steps_per_epoch = loader ? em_dataloader_len(loader) : 0;
    em_lr_scheduler *sched = opt ? em_cosine_warmup_lr_create(opt, (int)steps_per_epoch,
                                                              (int)(steps_per_epoch * epochs), 0.0)
                                 : NULL;
    if (!opt || !loader || !sched) return fail("setting up training");
    printf("model: 64-128-64-10 MLP, %lld parameters; Adam lr 2e-3, cosine; batch 32; %d epochs\n",
           (long long)em_module_num_parameters(model, true), epochs);

    double test_acc = -1;
    for (int epoch = 1; epoch <= epochs; epoch++) {
        double total = 0;
        int batches = 0;
        em_tensor *b[2];
        em_status st;
        while ((st = em_dataloader_next(loader, b)) == EM_OK && b[0]) {
            em_scope_begin();
            em_optimizer_zero_grad(opt, true);
            em_tensor *loss = em_cross_entropy(em_module_forward(model, b[0]), b[1],
                                               EM_REDUCTION_MEAN, EM_IGNORE_INDEX_DEFAULT, 0.0);
            double lv = 0;
            if (em_backward(loss, NULL, false, false) == EM_OK && em_optimizer_step(opt) == EM_OK &&
                em_lr_scheduler_step(sched) == EM_OK && em_tensor_item(loss, &lv) == EM_OK) {
                total += lv;
                batches++;
            }
            em_scope_end();
            if (em_last_status() != EM_OK) return fail("a training step");
        }
        if (st != EM_OK) return fail("the DataLoader");
        double train_acc = accuracy(model, x_train, y_train);
        test_acc = accuracy(model, x_test, y_test);
        printf("epoch %2d: mean loss %.4f, train accuracy %.2f%%, test accuracy %.2f%%\n", epoch,
               batches ? total / batches : 0.0, 100 * train_acc, 100 * test_acc);
    }
    em_dataloader_destroy(loader);
    em_lr_scheduler_destroy(sched);
    em_optimizer_destroy(opt);
    em_tensor_dict_destroy(named);
    em_module_destroy(model);
    em_scope_end();
    em_shutdown();
    if (test_acc < 0.95) {
        fprintf(stderr, "ember-digits: test accuracy %.2f%% is below 95%%\n", 100 * test_acc);
        return 1;
    }
    printf("test accuracy %.2f%% (target 95%%): ok\n", 100 * test_acc);
    return 0;
}
