/*
 * demo.c — the Ember walkthrough, one section per step (ember-demo).
 *
 * Step 1: tensors — creation, dtypes and shapes, views, elementwise math
 * with broadcasting, reductions, matmul, softmax, argmax, random numbers,
 * and the error idiom. Step 2: autograd — the logistic-regression gradients
 * and a line fit by gradient descent. Later steps (modules, training) add
 * their own section_*() functions called from main().
 *
 * Not a test: it prints what it does and exits 0 when every step worked,
 * 1 when an unexpected error happened (the deliberate one is expected).
 *
 * The pattern used throughout:
 *   em_scope_begin();                 // tensors made from here belong to the scope
 *   em_tensor *y = em_add(em_mul(a, b), c);   // chain freely, no NULL checks
 *   if (!y) report(em_last_error());          // check once at the end
 *   em_scope_end();                   // releases everything the scope holds
 */
#include <ember.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

    heading("Autograd: fitting y = 3x + 2 by gradient descent");
    em_manual_seed(7);
    em_scope_begin();
    em_tensor *x = em_rand(NULL, EM_F32, EM_SHAPE(64), NULL);
    em_tensor *target = em_add_scalar(em_mul_scalar(x, 3.0), 2.0);
    em_tensor *w = em_zeros(EM_F32, EM_SHAPE(1), NULL), *c = em_zeros(EM_F32, EM_SHAPE(1), NULL);
    em_requires_grad_(w, true);
    em_requires_grad_(c, true);
    double last = 0;
    for (int step = 0; step <= 400; step++) {
        em_scope_begin(); /* everything made in one step is freed at its end */
        em_tensor *pred = em_add(em_mul(x, w), c);
        em_tensor *mse = em_mean(em_square(em_sub(pred, target)), NULL, 0, false);
        em_zero_grad(w);
        em_zero_grad(c);
        em_backward(mse, NULL, false, false);
        bool prev = em_set_grad_enabled(false); /* the update is not part of the graph */
        em_sub_(w, em_mul_scalar(em_grad(w), 0.5));
        em_sub_(c, em_mul_scalar(em_grad(c), 0.5));
        em_set_grad_enabled(prev);
        em_tensor_item(mse, &last);
        if (step % 100 == 0) printf("step %3d: mse %.6f\n", step, last);
        em_scope_end();
        if (check("a training step")) {
            rc = 1;
            break;
        }
    }
    double wv = 0, cv = 0;
    em_tensor_item(w, &wv);
    em_tensor_item(c, &cv);
    printf("learned w = %.3f, b = %.3f (true 3, 2)\n", wv, cv);
    rc |= check("reading the fit");
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
    em_shutdown();
    if (failures) {
        fprintf(stderr, "ember-demo: %d section(s) failed\n", failures);
        return 1;
    }
    printf("\nember-demo: all sections ran.\n");
    return 0;
}
