/*
 * sdk_forward.c — a walkthrough-like forward pass on whatever device
 * EMBER_BACKEND selects, checked against the same computation on the CPU
 * device; prints em_fallback_count(). Written against the public API only,
 * so the SDK test (sdk_install_test.sh) also compiles it out of tree
 * against an installed Ember, once through pkg-config and once through
 * find_package(Ember).
 *
 *   sdk_forward [--backend NAME] [--version STRING]
 *
 * Steps:
 *   1. the default device must belong to backend NAME (default "example")
 *      and, with --version, the backend's version string must be STRING;
 *   2. ops the example plugin has kernels for (linear, relu, add/sub/mul/div
 *      with broadcasting and scalars, matmul on a transposed view, sum,
 *      fill, contiguous copies) must run there: em_fallback_count() must
 *      not move;
 *   3. the walkthrough's network (Linear 2-30-20-2 with ReLU), its
 *      cross-entropy loss and backward pass: these use ops the example
 *      lacks (log_softmax, random init...), which run through the CPU
 *      fallback: the count must grow, and the loss and a gradient must
 *      match the CPU device's.
 * Exit status: 0 when all holds, 1 otherwise (with the reason on stderr).
 */
#include <ember.h>
#include <ember_nn.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define FAIL(...)                                                                          \
    do {                                                                                   \
        fprintf(stderr, "sdk_forward: FAIL: " __VA_ARGS__);                                \
        fprintf(stderr, "\n");                                                             \
        failures++;                                                                        \
    } while (0)

/* Fails with the pending Ember error if there is one; returns whether ok. */
static int ok(const char *what)
{
    if (em_last_status() == EM_OK) return 1;
    FAIL("%s: %s", what, em_last_error());
    em_clear_error();
    return 0;
}

/* Compares t (any device) element by element with r (on the CPU). */
static void compare(const char *what, const em_tensor *t, const em_tensor *r, double tol)
{
    if (!t || !r) {
        FAIL("%s: no tensor to compare (%s)", what, em_last_error());
        em_clear_error();
        return;
    }
    int64_t n = em_tensor_numel(t);
    if (n != em_tensor_numel(r)) {
        FAIL("%s: %" PRId64 " elements on the device, %" PRId64 " on the CPU", what, n,
             em_tensor_numel(r));
        return;
    }
    double *a = calloc((size_t)n + 1, sizeof *a), *b = calloc((size_t)n + 1, sizeof *b);
    if (!a || !b) {
        FAIL("%s: out of host memory", what);
    } else if (em_tensor_read_f64(t, a, (size_t)n) != EM_OK ||
               em_tensor_read_f64(r, b, (size_t)n) != EM_OK) {
        ok(what);
    } else {
        double worst = 0;
        int64_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs(a[i] - b[i]) / (1.0 + fabs(b[i]));
            if (!(e <= worst)) {
                worst = e;
                at = i;
            }
        }
        if (!(worst <= tol))
            FAIL("%s: element %" PRId64 " is %.9g on %s, %.9g on the CPU (error %.3g > %.3g)",
                 what, at, a[at], em_device_name(em_tensor_device(t)), b[at], worst, tol);
        else
            printf("  %-34s %6" PRId64 " elements, max error %.2g\n", what, n, worst);
    }
    free(a);
    free(b);
}

/* ---------------------------------------------------------------------- */

/* The ops the example plugin implements; run on `dev`, results in out[]. */
enum { N_OWN = 8 };
static const char *const own_names[N_OWN] = {
    "linear+relu+linear", "add (broadcast row)", "sub/div scalars", "mul (broadcast col)",
    "matmul(h^T, h)",     "sum over dim 0",      "fill_ on a slice", "contiguous(transpose)"};

static void own_ops(em_device *dev, em_tensor *out[N_OWN])
{
    static const float xd[4 * 3] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f,
                                    -2.0f, 1.0f, 0.5f, 3.0f, -0.5f, 1.25f};
    static const float w1d[5 * 3] = {0.1f, -0.2f, 0.3f,  0.4f,  0.5f, -0.6f, -0.7f, 0.8f,
                                     0.9f, 1.0f,  -1.1f, 1.2f, -0.3f, 0.2f,  -0.1f};
    static const float b1d[5] = {0.05f, -0.1f, 0.15f, -0.2f, 0.25f};
    static const float w2d[2 * 5] = {0.3f, -0.1f, 0.2f, 0.7f, -0.5f, -0.4f, 0.6f, 0.1f, -0.2f, 0.9f};
    static const float b2d[2] = {0.01f, -0.02f};
    static const float rowd[3] = {10, 20, 30};
    static const float cold[4] = {1, -1, 2, -2};
    em_tensor *x = em_tensor_from_data(xd, EM_F32, EM_SHAPE(4, 3), dev);
    em_tensor *w1 = em_tensor_from_data(w1d, EM_F32, EM_SHAPE(5, 3), dev);
    em_tensor *b1 = em_tensor_from_data(b1d, EM_F32, EM_SHAPE(5), dev);
    em_tensor *w2 = em_tensor_from_data(w2d, EM_F32, EM_SHAPE(2, 5), dev);
    em_tensor *b2 = em_tensor_from_data(b2d, EM_F32, EM_SHAPE(2), dev);
    em_tensor *row = em_tensor_from_data(rowd, EM_F32, EM_SHAPE(3), dev);
    em_tensor *col = em_tensor_from_data(cold, EM_F32, EM_SHAPE(4, 1), dev);

    em_tensor *h = em_relu(em_linear(x, w1, b1));                      /* [4, 5] */
    out[0] = em_linear(h, w2, b2);                                     /* [4, 2] */
    out[1] = em_add(x, row);                                           /* [4, 3] + [3] */
    out[2] = em_div_scalar(em_sub_scalar(x, 0.5), 4.0);
    out[3] = em_mul(x, col);                                           /* [4, 3] * [4, 1] */
    out[4] = em_matmul(em_transpose(h, 0, 1), h);                      /* [5, 4] x [4, 5] */
    out[5] = em_sum(x, (const int[]){0}, 1, false);                    /* [3] */
    em_tensor *z = em_zeros(EM_F32, EM_SHAPE(3, 4), dev);
    if (z) em_fill_(em_select(z, 0, 1), 7.0);                          /* row 1 = 7 */
    out[6] = z;
    out[7] = em_contiguous(em_transpose(x, 0, 1));                     /* [3, 4] */
}

/* The walkthrough's network on `dev`: loss and the first layer's weight
 * gradient (references owned by the current scope). */
static void network(em_device *dev, em_tensor **loss, em_tensor **grad)
{
    static const float pts[8 * 2] = {0.1f, 0.2f, 0.9f, 0.8f, -0.5f, 0.4f, 0.3f, -0.7f,
                                     1.2f, -0.1f, -0.9f, -0.6f, 0.0f, 1.0f, 0.7f, 0.2f};
    static const int64_t labels[8] = {0, 1, 0, 1, 1, 0, 0, 1};
    em_manual_seed(42); /* Philox: the same initial weights on every device */
    em_module *model = em_nn_sequential(
        (em_module *[]){em_nn_linear(2, 30, true, dev, NULL), em_nn_relu(),
                        em_nn_linear(30, 20, true, dev, NULL), em_nn_relu(),
                        em_nn_linear(20, 2, true, dev, NULL)},
        5);
    em_tensor *x = em_tensor_from_data(pts, EM_F32, EM_SHAPE(8, 2), dev);
    em_tensor *y = em_tensor_from_data(labels, EM_I64, EM_SHAPE(8), dev);
    *loss = em_cross_entropy(em_module_forward(model, x), y, EM_REDUCTION_MEAN, -100, 0.0);
    *grad = NULL;
    if (*loss && em_backward(*loss, NULL, false, false) == EM_OK)
        *grad = em_grad(em_module_get_parameter(model, "0.weight"));
    em_module_destroy(model);
}

int main(int argc, char **argv)
{
    const char *want_backend = "example", *want_version = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            want_backend = argv[++i];
        } else if (!strcmp(argv[i], "--version") && i + 1 < argc) {
            want_version = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--backend NAME] [--version STRING]\n", argv[0]);
            return 2;
        }
    }

    printf("Ember %s\n", em_version());
    em_device *dev = em_device_default();
    em_device *cpu = em_device_cpu();
    if (!dev || !cpu) {
        FAIL("no default or CPU device: %s", em_last_error());
        fprintf(stderr, "selection log:\n%s", em_backend_selection_log());
        for (int i = 0; i < em_plugin_rejected_count(); i++)
            fprintf(stderr, "refused: %s\n", em_plugin_rejected(i));
        return 1;
    }
    em_device_props props = {.struct_size = sizeof props};
    em_device_properties(dev, &props);
    const em_backend *backend = NULL;
    for (int i = 0; i < em_backend_count(); i++)
        if (!strcmp(em_backend_name(em_backend_get(i)), props.backend))
            backend = em_backend_get(i);
    printf("device %s: \"%s\" (%s), backend %s %s from %s\n", em_device_name(dev), props.name,
           em_device_type_name(props.type), props.backend,
           backend ? em_backend_version(backend) : "?", backend ? em_backend_path(backend) : "?");
    if (strcmp(props.backend, want_backend) != 0) {
        FAIL("the default device belongs to backend '%s', expected '%s'", props.backend,
             want_backend);
        fprintf(stderr, "selection log:\n%s", em_backend_selection_log());
        for (int i = 0; i < em_plugin_rejected_count(); i++)
            fprintf(stderr, "refused: %s\n", em_plugin_rejected(i));
        return 1;
    }
    if (want_version && (!backend || strcmp(em_backend_version(backend), want_version) != 0))
        FAIL("backend version is '%s', expected '%s'", backend ? em_backend_version(backend) : "?",
             want_version);

    /* 2. the plugin's own kernels: no fallback */
    printf("ops with kernels on %s:\n", em_device_name(dev));
    em_scope_begin();
    em_tensor *mine[N_OWN] = {0}, *ref[N_OWN] = {0};
    uint64_t before = em_fallback_count();
    own_ops(dev, mine);
    uint64_t own_fallbacks = em_fallback_count() - before;
    ok("ops on the device");
    own_ops(cpu, ref);
    ok("ops on the CPU");
    for (int i = 0; i < N_OWN; i++) compare(own_names[i], mine[i], ref[i], 1e-5);
    if (dev != cpu && own_fallbacks != 0)
        FAIL("%" PRIu64 " of these ops ran on the CPU backend although %s has kernels for them",
             own_fallbacks, props.backend);
    em_scope_end();

    /* 3. the walkthrough's network: loss, backward, with the CPU fallback */
    printf("the walkthrough's network (Linear 2-30-20-2, ReLU, cross-entropy, backward):\n");
    em_scope_begin();
    before = em_fallback_count();
    em_tensor *loss = NULL, *grad = NULL, *loss_ref = NULL, *grad_ref = NULL;
    network(dev, &loss, &grad);
    uint64_t net_fallbacks = em_fallback_count() - before;
    ok("network on the device");
    network(cpu, &loss_ref, &grad_ref);
    ok("network on the CPU");
    compare("loss", loss, loss_ref, 1e-5);
    compare("grad of layer 0's weight", grad, grad_ref, 1e-4);
    double l = NAN;
    if (loss) em_tensor_item(loss, &l);
    printf("  loss %.6f; ops that ran through the CPU fallback: %" PRIu64 "\n", l, net_fallbacks);
    if (dev != cpu && net_fallbacks == 0)
        FAIL("no op of the network fell back to the CPU: does %s have every kernel now? (update "
             "this test)", props.backend);
    em_scope_end();

    printf("em_fallback_count: %" PRIu64 "\n", em_fallback_count());
    em_shutdown();
    if (failures) {
        fprintf(stderr, "sdk_forward: %d failure%s\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("sdk_forward: all checks passed on %s\n", props.backend);
    return 0;
}
