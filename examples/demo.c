/*
 * demo.c — the Ember walkthrough, one section per step (ember-demo).
 *
 * The path of the seed document, on whatever device EMBER_BACKEND selects:
 *   1. tensors — creation, dtypes and shapes, views, elementwise math with
 *      broadcasting, reductions, matmul, softmax, argmax, random numbers,
 *      and the error idiom;
 *   2. autograd — the logistic-regression gradients, both ways;
 *   3. a multilayer network (Sequential of Linear/ReLU, 752 parameters);
 *   4. the toy data set in a DataLoader (batch 2, shuffled, drop_last);
 *   5. training with SGD and cross-entropy, accuracy on train and test;
 *   6. saving the model (safetensors) and loading it into a fresh one.
 *
 * It prints what it does and exits 0 when every step worked, 1 when an
 * unexpected error happened (the deliberate one is expected) or training
 * missed 100% accuracy or the loaded model predicts differently; CTest runs
 * it on the default device and on the fake test device.
 *
 * The pattern used throughout:
 *   em_scope_begin();                 // tensors made from here belong to the scope
 *   em_tensor *y = em_add(em_mul(a, b), c);   // chain freely, no NULL checks
 *   if (!y) report(em_last_error());          // check once at the end
 *   em_scope_end();                   // releases everything the scope holds
 */
#include <ember.h>
#include <ember_data.h>
#include <ember_io.h>
#include <ember_nn.h>
#include <ember_optim.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */
/* ---------------------------------------------------------------------- */

/* Returns 0 when no error is pending; otherwise prints it and returns 1. */
static int check(const char *where)
{
    if (em_last_status() == EM_OK)
        return 0;
    fprintf(stderr, "ember-demo: %s failed: %s\n", where, em_last_error());
    em_clear_error();
    return 1;
}

/* "[2, 3]" into buf. */
static const char *shape_str(const em_tensor *t, char *buf, size_t cap)
{
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(t, shape);
    size_t n = 0;
    if (nd < 0) {
        snprintf(buf, cap, "(null)");
        return buf;
    }
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < nd && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

/* Prints "name:" and then the tensor (em_tensor_print shows its dtype,
 * shape and device). */
static void show(const char *name, const em_tensor *t)
{
    if (!t) {
        printf("%s: (null)\n", name);
        return;
    }
    printf("%s:%s\n", name, em_tensor_is_contiguous(t) ? "" : " (a non-contiguous view)");
    em_tensor_print(t);
}

static void heading(const char *title)
{
    printf("\n== %s ==\n", title);
}

/* ---------------------------------------------------------------------- */
/* Sections                                                               */
/* ---------------------------------------------------------------------- */

static int section_device(void)
{
    heading("Ember and the device");
    printf("Ember %s (header %d.%d.%d)\n", em_version(), EM_VERSION_MAJOR, EM_VERSION_MINOR,
           EM_VERSION_PATCH);
    em_device *dev = em_device_default();
    if (!dev)
        return check("em_device_default");
    em_device_props props;
    memset(&props, 0, sizeof props);
    props.struct_size = sizeof props;
    if (em_device_properties(dev, &props) != EM_OK)
        return check("em_device_properties");
    printf("device:  %s (%s, backend \"%s\", type %s)\n", em_device_name(dev), props.name,
           props.backend, em_device_type_name(props.type));
    if (props.description[0])
        printf("detail:  %s\n", props.description);
    if (props.memory_bytes)
        printf("memory:  %.1f GiB\n", (double)props.memory_bytes / (1024.0 * 1024.0 * 1024.0));
    printf("backends loaded: %d, devices: %d\n", em_backend_count(), em_device_count());
    return 0;
}

static int section_tensors(void)
{
    heading("Tensors: scalars, vectors, matrices, 3-D");
    em_scope_begin();

    em_tensor *s = em_scalar(3.5);                 /* 0-d, f32 */
    em_tensor *si = em_scalar_int(7);              /* 0-d, i64 */
    const float vdata[] = {1.0f, 2.0f, 3.0f, 4.0f};
    em_tensor *v = em_tensor_from_floats(vdata, EM_SHAPE(4));             /* f32 [4] */
    const int64_t mdata[] = {1, 2, 3, 4, 5, 6};
    em_tensor *m = em_tensor_from_ints(mdata, EM_SHAPE(2, 3));            /* i64 [2, 3] */
    em_tensor *t3 = em_arange(0, 24, 1, EM_F32, NULL);
    em_tensor *cube = em_reshape(t3, EM_SHAPE(2, 3, 4));                  /* f32 [2, 3, 4] */
    em_tensor *z = em_zeros(EM_F32, EM_SHAPE(2, 2), NULL);
    em_tensor *o = em_ones(EM_I64, EM_SHAPE(3), NULL);

    int rc = check("creating tensors");
    if (!rc) {
        show("scalar      em_scalar(3.5)", s);
        show("int scalar  em_scalar_int(7)", si);
        show("vector      from floats", v);
        show("matrix      from int64s", m);
        show("3-D tensor  arange(24) -> [2,3,4]", cube);
        show("zeros f32", z);
        show("ones i64", o);
        char sb[96];
        printf("the 3-D tensor: shape %s, ndim %d, numel %" PRId64 ", dim(-1) = %" PRId64
               ", dtype %s\n",
               shape_str(cube, sb, sizeof sb), em_tensor_ndim(cube), em_tensor_numel(cube),
               em_tensor_dim(cube, -1), em_dtype_name(em_tensor_dtype(cube)));
    }
    em_scope_end();
    return rc;
}

static int section_views(void)
{
    heading("Views: reshape, view, transpose (shared storage)");
    em_scope_begin();

    em_tensor *a = em_arange(0, 6, 1, EM_F32, NULL);     /* [6] */
    em_tensor *r = em_reshape(a, EM_SHAPE(2, 3));        /* [2, 3] */
    em_tensor *w = em_view(a, EM_SHAPE(3, -1));          /* [3, 2], -1 inferred */
    em_tensor *t = em_transpose(r, 0, 1);                /* [3, 2], strides swapped */
    em_tensor *tc = em_contiguous(t);                    /* a packed copy */
    int rc = check("views");
    if (!rc) {
        show("a", a);
        show("a.reshape(2, 3)", r);
        show("a.view(3, -1)", w);
        show("r.transpose(0, 1)", t);
        printf("transpose strides: (%" PRId64 ", %" PRId64 "), shares storage with a: %s, "
               "contiguous: %s\n",
               em_tensor_stride(t, 0), em_tensor_stride(t, 1),
               em_tensor_shares_storage(t, a) ? "yes" : "no",
               em_tensor_is_contiguous(t) ? "yes" : "no");
        printf("contiguous(t) shares storage with a: %s, contiguous: %s\n",
               em_tensor_shares_storage(tc, a) ? "yes" : "no",
               em_tensor_is_contiguous(tc) ? "yes" : "no");
        /* Writing through a view changes the base. */
        rc = em_fill_(em_select(r, 0, 0), 100.0) != EM_OK;
        rc |= check("writing through a view");
        if (!rc)
            show("a after r[0].fill_(100)", a);
    }
    em_scope_end();
    return rc;
}

static int section_math(void)
{
    heading("Math: matmul, broadcasting, reductions, softmax, argmax");
    em_scope_begin();

    const float ad[] = {1, 2, 3, 4, 5, 6};
    const float bd[] = {7, 8, 9, 10, 11, 12};
    em_tensor *a = em_tensor_from_floats(ad, EM_SHAPE(2, 3));   /* [2, 3] */
    em_tensor *b = em_tensor_from_floats(bd, EM_SHAPE(3, 2));   /* [3, 2] */
    em_tensor *ab = em_matmul(a, b);                            /* [2, 2] */

    const float rowd[] = {10, 20, 30};
    em_tensor *row = em_tensor_from_floats(rowd, EM_SHAPE(3));  /* [3] broadcasts over rows */
    em_tensor *bc = em_add(a, row);                             /* [2, 3] */
    em_tensor *col = em_unsqueeze(em_tensor_from_floats((const float[]){100, 200}, EM_SHAPE(2)), 1);
    em_tensor *bc2 = em_add(a, col);                            /* [2, 3] + [2, 1] */

    em_tensor *sum0 = em_sum(a, (const int[]){0}, 1, false);    /* [3] */
    em_tensor *sum1k = em_sum(a, (const int[]){1}, 1, true);    /* [2, 1] */
    em_tensor *mean = em_mean(a, NULL, 0, false);               /* scalar */

    const float ld[] = {1, 2, 3, 1, 5, 0};
    em_tensor *logits = em_tensor_from_floats(ld, EM_SHAPE(2, 3));
    em_tensor *p = em_softmax(logits, -1);                      /* rows sum to 1 */
    em_tensor *psum = em_sum(p, (const int[]){-1}, 1, false);
    em_tensor *am = em_argmax(logits, -1, false);               /* i64 [2] */
    em_tensor *chain = em_mean(em_relu(em_sub_scalar(em_mul(a, a), 10.0)), NULL, 0, false);

    int rc = check("math");
    if (!rc) {
        show("a", a);
        show("b", b);
        show("a @ b (2x3 by 3x2)", ab);
        show("a + [10, 20, 30]   (broadcast a row)", bc);
        show("a + [[100], [200]] (broadcast a column)", bc2);
        show("a.sum(dim=0)", sum0);
        show("a.sum(dim=1, keepdim)", sum1k);
        show("a.mean()", mean);
        show("logits", logits);
        show("softmax(logits, -1)", p);
        show("softmax rows sum to", psum);
        show("argmax(logits, -1)", am);
        double v = 0;
        if (em_tensor_item(chain, &v) == EM_OK)
            printf("mean(relu(a*a - 10)) = %g (one chain, checked once)\n", v);
        rc = check("item");
    }
    em_scope_end();
    return rc;
}

static int section_random(void)
{
    heading("Random numbers: em_manual_seed makes them reproducible");
    em_scope_begin();

    em_manual_seed(42);
    em_tensor *r1 = em_rand(NULL, EM_F32, EM_SHAPE(2, 3), NULL);
    em_tensor *n1 = em_randn(NULL, EM_F32, EM_SHAPE(4), NULL);
    em_manual_seed(42);
    em_tensor *r2 = em_rand(NULL, EM_F32, EM_SHAPE(2, 3), NULL);
    em_tensor *n2 = em_randn(NULL, EM_F32, EM_SHAPE(4), NULL);
    em_tensor *r3 = em_rand(NULL, EM_F32, EM_SHAPE(2, 3), NULL);   /* stream moved on */
    em_tensor *k = em_randint(NULL, 0, 10, EM_I64, EM_SHAPE(8), NULL);
    em_tensor *same = em_sum(em_ne(r1, r2), NULL, 0, false);       /* count of differences */
    em_tensor *same_n = em_sum(em_ne(n1, n2), NULL, 0, false);

    int rc = check("random");
    if (!rc) {
        show("seed 42: rand(2, 3)", r1);
        show("seed 42: randn(4)", n1);
        show("seed 42 again: rand(2, 3)", r2);
        show("next rand(2, 3)", r3);
        show("randint(0, 10, [8])", k);
        double d1 = -1, d2 = -1;
        em_tensor_item(same, &d1);
        em_tensor_item(same_n, &d2);
        printf("same seed, same numbers: %s (%g + %g elements differ)\n",
               (d1 == 0 && d2 == 0) ? "yes" : "NO", d1, d2);
        rc = check("random item");
        if (!rc && (d1 != 0 || d2 != 0))
            rc = 1;
    }
    em_scope_end();
    return rc;
}

static int section_errors(void)
{
    heading("Errors are values: a deliberate shape mismatch");
    em_scope_begin();

    em_tensor *a = em_ones(EM_F32, EM_SHAPE(2, 3), NULL);
    em_tensor *b = em_ones(EM_F32, EM_SHAPE(4), NULL);
    /* [2, 3] + [4] does not broadcast: em_add returns NULL, the outer
     * em_mul_scalar sees NULL and keeps the FIRST error, so one check at the
     * end of the chain is enough. */
    em_tensor *y = em_mul_scalar(em_add(a, b), 2.0);
    int rc = 0;
    if (y == NULL && em_last_status() != EM_OK) {
        printf("em_mul_scalar(em_add([2,3], [4]), 2) -> NULL\n");
        printf("em_last_status(): %s\n", em_status_str(em_last_status()));
        printf("em_last_error():  %s\n", em_last_error());
        em_clear_error();
        printf("after em_clear_error(): status %d, message \"%s\"\n", (int)em_last_status(),
               em_last_error());
    } else {
        fprintf(stderr, "ember-demo: expected a shape error, got %s\n",
                y ? "a tensor" : "no error message");
        rc = 1;
    }
    em_scope_end();
    return rc;
}

/* Step 2: autograd. The logistic-regression example of the autograd issue,
 * then a few steps of gradient descent on a line fit. */
static int section_autograd(void)
{
    heading("Autograd: gradients of a logistic-regression loss");
    int rc = 0;
    em_scope_begin();
    em_tensor *x1 = em_scalar(1.1), *y = em_scalar(1.0);
    em_tensor *w1 = em_scalar(2.2), *b = em_scalar(0.0);
    em_requires_grad_(w1, true); /* leaves we want gradients for */
    em_requires_grad_(b, true);
    em_tensor *z = em_add(em_mul(x1, w1), b);
    em_tensor *a = em_sigmoid(z);
    /* binary cross-entropy: -(y log a + (1 - y) log(1 - a)) */
    em_tensor *one_minus_y = em_sub(em_ones_like(y), y);
    em_tensor *one_minus_a = em_sub(em_ones_like(a), a);
    em_tensor *loss = em_neg(em_add(em_mul(y, em_log(a)), em_mul(one_minus_y, em_log(one_minus_a))));
    printf("loss = %s: its grad_fn is '%s'\n", "-(y log a + (1-y) log(1-a))", em_grad_fn_name(loss));

    /* the functional form (torch.autograd.grad): .grad stays untouched */
    em_tensor *g[2];
    em_autograd_grad(1, (const em_tensor *const[]){loss}, NULL, 2,
                     (const em_tensor *const[]){w1, b}, g, true, false, false);
    double dw = 0, db = 0;
    em_tensor_item(g[0], &dw);
    em_tensor_item(g[1], &db);
    printf("em_autograd_grad: dloss/dw1 = %.4f, dloss/db = %.4f   (PyTorch: -0.0898, -0.0817)\n",
           dw, db);
    /* backpropagation into .grad (torch: loss.backward()) */
    em_backward(loss, NULL, false, false);
    em_tensor_item(em_grad(w1), &dw);
    em_tensor_item(em_grad(b), &db);
    printf("em_backward:      w1.grad     = %.4f, b.grad     = %.4f\n", dw, db);
    rc |= check("the logistic-regression gradients");
    em_scope_end();

    return rc;
}

/* Step 3: a multilayer network. */
static em_module *make_mlp(void)
{
    return em_nn_sequential((em_module *[]){em_nn_linear(2, 30, true, NULL, NULL), em_nn_relu(),
                                            em_nn_linear(30, 20, true, NULL, NULL), em_nn_relu(),
                                            em_nn_linear(20, 2, true, NULL, NULL)},
                            5);
}

/* Fraction of rows of x whose argmax(model(x)) equals y; -1 on error. */
static double accuracy(em_module *model, const em_tensor *x, const em_tensor *y)
{
    double acc = -1;
    bool prev = em_set_grad_enabled(false); /* evaluation records no graph */
    em_scope_begin();
    em_tensor *pred = em_argmax(em_module_forward(model, x), -1, false);
    em_tensor *hits = em_mean(em_cast(em_eq(pred, y), EM_F32), NULL, 0, false);
    if (hits && em_tensor_item(hits, &acc) != EM_OK) acc = -1;
    em_scope_end();
    em_set_grad_enabled(prev);
    return acc;
}

/* Steps 3 to 6: the network, the toy data, training, saving and loading. */
static int section_training(void)
{
    int rc = 0;
    heading("A multilayer network");
    em_manual_seed(0); /* the initial weights come from the global generator */
    em_module *model = make_mlp();
    if (check("building the network")) return 1;
    em_module_print(model);
    printf("trainable parameters: %" PRId64 "\n", em_module_num_parameters(model, true));

    heading("The toy data set and its DataLoader");
    em_scope_begin();
    const float xtr[] = {-1.2f, 3.1f, -0.9f, 2.9f, -0.5f, 2.6f, 2.3f, -1.1f, 2.7f, -1.5f};
    const int64_t ytr[] = {0, 0, 0, 1, 1};
    const float xte[] = {-0.8f, 2.8f, 2.6f, -1.6f};
    const int64_t yte[] = {0, 1};
    em_device *dev = em_device_default();
    em_tensor *x_train = em_tensor_from_data(xtr, EM_F32, EM_SHAPE(5, 2), dev);
    em_tensor *y_train = em_tensor_from_data(ytr, EM_I64, EM_SHAPE(5), dev);
    em_tensor *x_test = em_tensor_from_data(xte, EM_F32, EM_SHAPE(2, 2), dev);
    em_tensor *y_test = em_tensor_from_data(yte, EM_I64, EM_SHAPE(2), dev);
    em_dataset *ds = em_tensor_dataset_create(2, (em_tensor *const[]){x_train, y_train});
    em_dataloader_options lo = {.batch_size = 2, .shuffle = true, .num_workers = 0,
                                .drop_last = true, .device = dev, .seed = 1};
    em_dataloader *loader = ds ? em_dataloader_create(ds, &lo) : NULL;
    em_dataset_destroy(ds); /* the loader keeps its own reference */
    show("X_train", x_train);
    show("y_train", y_train);
    if (loader)
        printf("DataLoader: batch_size 2, shuffle, num_workers 0, drop_last: %" PRId64
               " batches per epoch\n",
               em_dataloader_len(loader));
    rc |= check("the data set and loader");

    heading("Training: SGD (lr 0.5), cross-entropy, 3 epochs");
    em_tensor_dict *params = em_module_named_parameters(model);
    em_tensor *plist[8];
    int np = params ? em_tensor_dict_count(params) : 0;
    for (int i = 0; i < np && i < 8; i++) plist[i] = em_tensor_dict_at(params, i);
    em_sgd_options so = em_sgd_defaults(0.5);
    em_optimizer *opt = params ? em_sgd_create(np, plist, &so) : NULL;
    rc |= check("the optimizer");
    for (int epoch = 1; !rc && epoch <= 3; epoch++) {
        em_tensor *batch[2];
        em_status st;
        int b = 0;
        while ((st = em_dataloader_next(loader, batch)) == EM_OK && batch[0]) {
            em_scope_begin(); /* one training step; its graph and temporaries end here */
            em_optimizer_zero_grad(opt, true);
            em_tensor *loss = em_cross_entropy(em_module_forward(model, batch[0]), batch[1],
                                               EM_REDUCTION_MEAN, EM_IGNORE_INDEX_DEFAULT, 0.0);
            double lv = 0;
            if (em_backward(loss, NULL, false, false) == EM_OK && em_optimizer_step(opt) == EM_OK &&
                em_tensor_item(loss, &lv) == EM_OK)
                printf("epoch %d, batch %d: loss %.4f\n", epoch, ++b, lv);
            em_scope_end();
            if ((rc = check("a training step"))) break;
        }
        if (st != EM_OK) rc |= check("the DataLoader");
    }
    double acc_train = accuracy(model, x_train, y_train), acc_test = accuracy(model, x_test, y_test);
    printf("accuracy: train %.0f%%, test %.0f%%\n", 100 * acc_train, 100 * acc_test);
    rc |= check("evaluating");
    if (acc_train != 1.0 || acc_test != 1.0) {
        fprintf(stderr, "ember-demo: expected 100%% accuracy on both sets\n");
        rc = 1;
    }

    heading("Saving the model and loading it into a fresh one");
    char path[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/ember-demo-%ld.safetensors", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    em_tensor_dict *state = em_module_state_dict(model);
    em_status st = state ? em_save_safetensors(path, state) : em_last_status();
    em_tensor_dict_destroy(state);
    em_module *fresh = st == EM_OK ? make_mlp() : NULL; /* different random weights */
    em_tensor_dict *loaded = fresh ? em_load_safetensors(path, dev) : NULL;
    if (loaded) st = em_module_load_state_dict(fresh, loaded, true);
    em_tensor_dict_destroy(loaded);
    remove(path);
    rc |= check("saving and loading");
    if (!rc) {
        printf("saved %d tensors to %s and loaded them into a new network\n", np, path);
        bool prev = em_set_grad_enabled(false);
        em_tensor *p1 = em_module_forward(model, x_test), *p2 = em_module_forward(fresh, x_test);
        em_tensor *diff = em_max(em_abs(em_sub(p1, p2)), NULL, 0, false);
        em_set_grad_enabled(prev);
        show("predictions of the trained network (logits)", p1);
        show("predictions of the loaded network", p2);
        double d = -1;
        em_tensor_item(diff, &d);
        printf("largest difference: %g (%s)\n", d, d == 0 ? "identical" : "DIFFERENT");
        rc |= check("comparing predictions") || d != 0;
    }
    em_optimizer_destroy(opt);
    em_tensor_dict_destroy(params);
    em_dataloader_destroy(loader);
    em_module_destroy(fresh);
    em_module_destroy(model);
    em_scope_end();
    return rc;
}

int main(void)
{
    if (em_init() != EM_OK) {
        fprintf(stderr, "ember-demo: em_init: %s\n", em_last_error());
        return 1;
    }
    int failures = 0;
    failures += section_device();
    failures += section_tensors();
    failures += section_views();
    failures += section_math();
    failures += section_random();
    failures += section_errors();
    failures += section_autograd();
    failures += section_training();
    em_shutdown();
    if (failures) {
        fprintf(stderr, "ember-demo: %d section(s) failed\n", failures);
        return 1;
    }
    printf("\nember-demo: all sections ran.\n");
    return 0;
}
