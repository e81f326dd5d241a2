/*
 * test_nn_modules.c — modules, built-in layers and initialisation of
 * api/ember_nn.h (nn/module.c, nn/layers.c, nn/init.c):
 *   - forward of Linear (1-3-D inputs, with and without bias), LayerNorm
 *     (one and two normalized dims, with and without affine), Embedding,
 *     Flatten, ReLU/GELU (both forms)/Tanh/Sigmoid against double formulas
 *     computed here; their backward by gradcheck in f64 (em_module_to_dtype,
 *     parameters swapped for the gradcheck inputs by re-registering them);
 *   - Dropout: drop rate and 1/(1-p) scaling in training mode, gradient =
 *     mask * scale, identity in eval mode and for p = 0, zeros for p = 1,
 *     reproducible masks from a seeded generator;
 *   - initialisation: Linear weights/biases within +-1/sqrt(fan_in) with the
 *     mean and variance of that uniform, Embedding N(0,1), every em_init_*
 *     function's statistics, fans, seeding, errors;
 *   - Sequential(Linear(2,30), ReLU, Linear(30,20), ReLU, Linear(20,2)):
 *     752 parameters, names "0.weight", ..., forward against a double MLP,
 *     torch-style printing, append, ownership on failed creation;
 *   - a user-defined module in C (parameter, buffer, nested Sequential
 *     child, user data freed once), dotted names, named_parameters/buffers,
 *     state_dict (detached, sharing storage) and its round trip into a
 *     fresh model (identical outputs), every load_state_dict error (missing,
 *     unexpected, shape, dtype, several at once; the message names the keys
 *     and both shapes; nothing changes), non-strict loading;
 *   - train/eval propagation, requires_grad_, zero_grad, em_module_to onto
 *     every device and back, em_module_to_dtype (grads too, shared
 *     parameters stay shared), registration/forward errors, no heap growth
 *     over scoped training-style steps;
 *   - Sequential's fusion of a built-in Linear followed by a built-in ReLU
 *     (em_linear_relu): the same outputs, loss and parameter gradients as
 *     the unfused modules run one by one, in f32; a ReLU first, a Tanh
 *     after a Linear and a user module between are not fused (grad_fn
 *     names); ctest also runs this file with EMBER_FUSED=0.
 */
#include "ember_nn.h"
#include "gradcheck.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static double *read_param(const em_module *m, const char *name)
{
    em_scope_begin();
    em_tensor *p = em_module_get_parameter(m, name);
    double *v = p ? tu_read(p) : NULL;
    em_scope_end();
    CHECKF(v != NULL, "read parameter '%s'", name);
    return v;
}

static em_tensor *upload(const double *v, em_dtype dt, int ndim, const int64_t *shape)
{
    return tu_upload(v, dt, ndim, shape);
}

/* Exact equality of two tensors' values. */
static bool same_values(const em_tensor *a, const em_tensor *b)
{
    if (!a || !b || em_tensor_numel(a) != em_tensor_numel(b)) return false;
    double *x = tu_read(a), *y = tu_read(b);
    bool same = x && y;
    for (int64_t i = 0; same && i < em_tensor_numel(a); i++) same = x[i] == y[i];
    free(x);
    free(y);
    return same;
}

/* Equal within float32 rounding: for results computed on two devices (cuBLAS and
 * OpenBLAS sum a dot product in different orders). */
static bool close_values(const em_tensor *a, const em_tensor *b)
{
    if (!a || !b || em_tensor_numel(a) != em_tensor_numel(b)) return false;
    double *x = tu_read(a), *y = tu_read(b);
    bool close = x && y;
    for (int64_t i = 0; close && i < em_tensor_numel(a); i++)
        close = fabs(x[i] - y[i]) <= 1e-5 + 1e-5 * fabs(y[i]);
    free(x);
    free(y);
    return close;
}

static void check_msg(const char *label, const char *needle)
{
    CHECKF(strstr(em_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", label,
           em_last_error(), needle);
}

static const tu_tol f32_tol = {1e-5, 1e-5, 8};

/* CHECK_MODULE_FAILS(module expression, status): it must give NULL and
 * leave `want` pending (for creators and lookups alike: nothing is freed). */
#define CHECK_MODULE_FAILS(expr, want)                                                  \
    do {                                                                                \
        em_clear_error();                                                               \
        em_module *m_ = (expr);                                                         \
        em_status s_ = em_last_status();                                                \
        CHECKF(m_ == NULL && s_ == (want), "%s: got %s, pending %s, want NULL and %s",  \
               #expr, m_ ? "a module" : "NULL", em_status_str(s_), em_status_str(want)); \
        em_clear_error();                                                               \
    } while (0)

/* Gradcheck context: a module whose parameters named in `names` are
 * replaced by gradcheck inputs 1.. before each forward on input 0. */
typedef struct mod_ctx {
    em_module *m;
    const char *names[4];
    int n;
} mod_ctx;

static em_tensor *gc_module(em_tensor *const *in, void *p)
{
    mod_ctx *c = p;
    for (int i = 0; i < c->n; i++) {
        const char *full = c->names[i], *dot = strrchr(full, '.');
        em_module *owner = c->m;
        char path[64];
        if (dot) {
            snprintf(path, sizeof path, "%.*s", (int)(dot - full), full);
            owner = em_module_get_child(c->m, path);
        }
        if (em_module_register_parameter(owner, dot ? dot + 1 : full, in[1 + i]) != EM_OK)
            return NULL;
    }
    return em_module_forward(c->m, in[0]);
}

/* Gradcheck of module m (converted to f64) w.r.t. x and the named params. */
static void module_gradcheck(const char *label, em_module *m, em_tensor *x, int n,
                             const char *const *names)
{
    CHECK_OK(em_module_to_dtype(m, EM_F64));
    mod_ctx c = {m, {0}, n};
    em_tensor *in[5] = {x};
    for (int i = 0; i < n; i++) {
        c.names[i] = names[i];
        in[1 + i] = em_module_get_parameter(m, names[i]);
    }
    gradcheck(label, gc_module, &c, 1 + n, in);
}

/* ------------------------------------------------------------------------ */
/* Linear                                                                    */
/* ------------------------------------------------------------------------ */

static void test_linear(void)
{
    em_scope_begin();
    for (int bias = 0; bias < 2; bias++) {
        em_module *lin = em_nn_linear(5, 3, bias, NULL, NULL);
        CHECK_NONNULL(lin);
        if (!lin) continue;
        CHECK(!strcmp(em_module_type_name(lin), "Linear"));
        CHECK(em_module_num_parameters(lin, false) == 15 + (bias ? 3 : 0));
        double *W = read_param(lin, "weight"), *B = bias ? read_param(lin, "bias") : NULL;
        /* x of 1, 2 and 3 dims: [5], [4,5], [2,4,5] */
        const int64_t shapes[3][3] = {{5}, {4, 5}, {2, 4, 5}};
        for (int nd = 1; nd <= 3; nd++) {
            int64_t rows = nd == 1 ? 1 : nd == 2 ? 4 : 8;
            double x[40], ref[24];
            tu_fill(x, rows * 5, EM_F32, -2, 2);
            for (int64_t r = 0; r < rows; r++)
                for (int o = 0; o < 3; o++) {
                    double s = B ? B[o] : 0;
                    for (int i = 0; i < 5; i++) s += x[r * 5 + i] * W[o * 5 + i];
                    ref[r * 3 + o] = s;
                }
            int64_t out_shape[3];
            memcpy(out_shape, shapes[nd - 1], sizeof out_shape);
            out_shape[nd - 1] = 3;
            char label[64];
            snprintf(label, sizeof label, "Linear(5,3,bias=%d) x %dD", bias, nd);
            tu_compare(label, em_module_forward(lin, upload(x, EM_F32, nd, shapes[nd - 1])),
                       EM_F32, nd, out_shape, ref, f32_tol);
        }
        free(W);
        free(B);
        /* wrong in_features */
        em_clear_error();
        CHECK(em_module_forward(lin, em_zeros(EM_F32, EM_SHAPE(4, 6), tu_dev)) == NULL);
        CHECK(em_last_status() == EM_ERR_SHAPE);
        check_msg("Linear shape error", "em_module_forward(Linear)");
        em_clear_error();
        /* backward: gradcheck in f64 w.r.t. x, weight and bias */
        const char *names[2] = {"weight", "bias"};
        module_gradcheck(bias ? "Linear(5,3) x, weight, bias" : "Linear(5,3,bias=false) x, weight",
                         lin, gc_leaf(2, (int64_t[]){4, 5}, -1, 1), bias ? 2 : 1, names);
        em_module_destroy(lin);
    }
    CHECK_MODULE_FAILS(em_nn_linear(-1, 3, true, NULL, NULL), EM_ERR_INVALID_ARG);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Initialisation                                                            */
/* ------------------------------------------------------------------------ */

static void stats(const double *v, int64_t n, double *mean, double *var, double *maxabs)
{
    double s = 0, s2 = 0, m = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    s /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        s2 += (v[i] - s) * (v[i] - s);
        if (fabs(v[i]) > m) m = fabs(v[i]);
    }
    *mean = s;
    *var = s2 / (double)n;
    *maxabs = m;
}

/* Values uniform in +-b: all inside (up to f32 rounding of b), mean and
 * variance within 6 standard errors, the extremes close to b. */
static void check_uniform(const char *label, const double *v, int64_t n, double b)
{
    double mean, var, mx;
    stats(v, n, &mean, &var, &mx);
    double want_var = b * b / 3, se_mean = sqrt(want_var / (double)n);
    /* var of x^2 for U(-b,b): E x^4 - (E x^2)^2 = b^4/5 - b^4/9 */
    double se_var = sqrt((b * b * b * b * (1.0 / 5 - 1.0 / 9)) / (double)n);
    CHECKF(mx <= b * (1 + 1e-6), "%s: max |w| %.9g above the bound %.9g", label, mx, b);
    CHECKF(mx >= b * (1 - 20.0 / (double)n), "%s: max |w| %.9g far below the bound %.9g", label,
           mx, b);
    CHECKF(fabs(mean) <= 6 * se_mean, "%s: mean %.4g, want 0 +- %.3g", label, mean, 6 * se_mean);
    CHECKF(fabs(var - want_var) <= 6 * se_var, "%s: var %.6g, want %.6g +- %.3g", label, var,
           want_var, 6 * se_var);
    printf("%-40s n %lld bound %.5f max %.5f mean %+.2e var %.3e (want %.3e)\n", label,
           (long long)n, b, mx, mean, var, want_var);
}

static void check_normal(const char *label, const double *v, int64_t n, double mu, double sd)
{
    double mean, var, mx;
    stats(v, n, &mean, &var, &mx);
    double se_mean = sd / sqrt((double)n), se_var = sd * sd * sqrt(2.0 / (double)n);
    CHECKF(fabs(mean - mu) <= 6 * se_mean, "%s: mean %.5g, want %.5g", label, mean, mu);
    CHECKF(fabs(var - sd * sd) <= 6 * se_var, "%s: var %.5g, want %.5g", label, var, sd * sd);
    printf("%-40s n %lld mean %+.4f (want %+.4f) sd %.4f (want %.4f)\n", label, (long long)n, mean,
           mu, sqrt(var), sd);
}

static void test_init(void)
{
    em_scope_begin();
    em_generator *gen = em_generator_create(1234);
    em_module *lin = em_nn_linear(256, 192, true, NULL, gen);
    CHECK_NONNULL(lin);
    double b = 1.0 / sqrt(256.0);
    double *W = read_param(lin, "weight"), *B = read_param(lin, "bias");
    if (W) check_uniform("Linear(256,192) weight", W, 256 * 192, b);
    if (B) {
        double mx = 0;
        for (int i = 0; i < 192; i++) mx = fmax(mx, fabs(B[i]));
        CHECKF(mx <= b * (1 + 1e-6), "Linear bias max %.9g above %.9g", mx, b);
        CHECKF(mx >= 0.8 * b, "Linear bias max %.9g, far below %.9g", mx, b);
    }
    /* same seed, same numbers; the global generator through em_manual_seed */
    em_generator *gen2 = em_generator_create(1234);
    em_module *lin2 = em_nn_linear(256, 192, true, NULL, gen2);
    double *W2 = read_param(lin2, "weight");
    CHECK(W && W2 && !memcmp(W, W2, sizeof(double) * 256 * 192));
    em_manual_seed(99);
    em_module *g1 = em_nn_linear(8, 8, true, NULL, NULL);
    em_manual_seed(99);
    em_module *g2 = em_nn_linear(8, 8, true, NULL, NULL);
    CHECK(same_values(em_module_get_parameter(g1, "bias"), em_module_get_parameter(g2, "bias")));
    CHECK(!same_values(em_module_get_parameter(g1, "weight"),
                       em_module_get_parameter(lin, "weight")));
    free(W);
    free(W2);
    free(B);
    em_module_destroy(lin);
    em_module_destroy(lin2);
    em_module_destroy(g1);
    em_module_destroy(g2);

    /* in_features 0: an empty weight and a zero bias, as torch */
    em_module *l0 = em_nn_linear(0, 4, true, NULL, NULL);
    CHECK_NONNULL(l0);
    double *B0 = read_param(l0, "bias");
    CHECK(B0 && B0[0] == 0 && B0[3] == 0);
    free(B0);
    em_module_destroy(l0);

    /* Embedding weight ~ N(0, 1) */
    em_module *emb = em_nn_embedding(300, 64, NULL, gen);
    double *E = read_param(emb, "weight");
    if (E) check_normal("Embedding(300,64) weight", E, 300 * 64, 0, 1);
    free(E);
    em_module_destroy(emb);

    /* every init function on a [128, 96, 3] f32 tensor (fan_in 288, fan_out 384) */
    em_tensor *t = em_empty(EM_F32, EM_SHAPE(128, 96, 3), tu_dev);
    em_requires_grad_(t, true); /* a parameter: grad mode stays on outside */
    int64_t n = 128 * 96 * 3, fi = 0, fo = 0;
    CHECK_OK(em_init_calculate_fans(t, &fi, &fo));
    CHECK(fi == 288 && fo == 384);
    double *v;
    CHECK_OK(em_init_uniform_(t, -0.5, 1.5, gen));
    v = tu_read(t);
    if (v) {
        for (int64_t i = 0; i < n; i++) v[i] -= 0.5; /* shift to +-1 */
        check_uniform("init_uniform_(-0.5, 1.5) - 0.5", v, n, 1.0);
    }
    free(v);
    CHECK_OK(em_init_normal_(t, 2.0, 0.5, gen));
    v = tu_read(t);
    if (v) check_normal("init_normal_(2, 0.5)", v, n, 2.0, 0.5);
    free(v);
    CHECK_OK(em_init_kaiming_uniform_(t, 0.0, gen));
    v = tu_read(t);
    if (v) check_uniform("init_kaiming_uniform_(a=0)", v, n, sqrt(3.0) * sqrt(2.0 / 288));
    free(v);
    CHECK_OK(em_init_kaiming_normal_(t, 1.0, gen));
    v = tu_read(t);
    if (v) check_normal("init_kaiming_normal_(a=1)", v, n, 0, 1.0 / sqrt(288));
    free(v);
    CHECK_OK(em_init_xavier_uniform_(t, 2.0, gen));
    v = tu_read(t);
    if (v) check_uniform("init_xavier_uniform_(gain=2)", v, n, 2 * sqrt(6.0 / (288 + 384)));
    free(v);
    CHECK_OK(em_init_xavier_normal_(t, 1.0, gen));
    v = tu_read(t);
    if (v) check_normal("init_xavier_normal_(gain=1)", v, n, 0, sqrt(2.0 / (288 + 384)));
    free(v);
    CHECK_OK(em_init_constant_(t, 0.25));
    double c[2];
    CHECK(em_tensor_read_f64(em_narrow(em_flatten(t, 0, -1), 0, n - 2, 2), c, 2) == EM_OK &&
          c[0] == 0.25 && c[1] == 0.25);
    CHECK_OK(em_init_ones_(t));
    CHECK_OK(em_init_zeros_(em_select(t, 2, 1))); /* a strided view */
    v = tu_read(t);
    if (v) {
        bool ok = true;
        for (int64_t i = 0; i < n; i++) ok = ok && v[i] == (i % 3 == 1 ? 0.0 : 1.0);
        CHECKF(ok, "ones_ then zeros_ on the view t[:, :, 1]");
    }
    free(v);
    CHECK(em_is_leaf(t) && em_requires_grad(t));
    /* f64 and half tensors */
    em_tensor *h = em_empty(EM_BF16, EM_SHAPE(64, 64), tu_dev);
    CHECK_OK(em_init_kaiming_uniform_(h, sqrt(5.0), gen));
    v = tu_read(h);
    if (v) check_uniform("bf16 kaiming_uniform_(a=sqrt 5)", v, 64 * 64, 1.0 / 8 * 1.004);
    free(v);

    /* errors */
    CHECK_STATUS(em_init_uniform_(NULL, 0, 1, NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_init_uniform_(t, 1, 0, NULL), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_init_normal_(t, 0, -1, NULL), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_init_zeros_(em_zeros(EM_I64, EM_SHAPE(3), tu_dev)), EM_ERR_DTYPE);
    CHECK_STATUS(em_init_kaiming_uniform_(em_zeros(EM_F32, EM_SHAPE(3), tu_dev), 0, NULL),
                 EM_ERR_SHAPE);
    CHECK_STATUS(em_init_calculate_fans(em_scalar(1), &fi, &fo), EM_ERR_SHAPE);
    CHECK_OK(em_init_xavier_normal_(em_zeros(EM_F32, EM_SHAPE(0, 4), tu_dev), 1, NULL));
    em_generator_destroy(gen);
    em_generator_destroy(gen2);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Activations, Flatten                                                      */
/* ------------------------------------------------------------------------ */

static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double r_gelu_tanh(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double r_sigmoid(double x) { return 1 / (1 + exp(-x)); }

static void test_activations(void)
{
    struct {
        const char *type;
        em_module *m;
        double (*ref)(double);
    } acts[5] = {{"ReLU", em_nn_relu(), r_relu},
                 {"GELU", em_nn_gelu(false), r_gelu},
                 {"GELU", em_nn_gelu(true), r_gelu_tanh},
                 {"Tanh", em_nn_tanh(), tanh},
                 {"Sigmoid", em_nn_sigmoid(), r_sigmoid}};
    em_scope_begin();
    for (int a = 0; a < 5; a++) {
        CHECK_NONNULL(acts[a].m);
        if (!acts[a].m) continue;
        CHECK(!strcmp(em_module_type_name(acts[a].m), acts[a].type));
        CHECK(em_module_num_parameters(acts[a].m, false) == 0);
        double x[24], ref[24];
        tu_fill(x, 24, EM_F32, -4, 4);
        for (int i = 0; i < 24; i++) ref[i] = acts[a].ref(x[i]);
        char label[64];
        snprintf(label, sizeof label, "%s%s [2,3,4] f32", acts[a].type, a == 2 ? "(tanh)" : "");
        tu_compare(label, em_module_forward(acts[a].m, upload(x, EM_F32, 3, (int64_t[]){2, 3, 4})),
                   EM_F32, 3, (int64_t[]){2, 3, 4}, ref, f32_tol);
        snprintf(label, sizeof label, "%s%s backward", acts[a].type, a == 2 ? "(tanh)" : "");
        module_gradcheck(label, acts[a].m, gc_leaf(2, (int64_t[]){3, 4}, -3, 3), 0, NULL);
        em_module_destroy(acts[a].m);
    }
    char buf[64];
    em_module *g = em_nn_gelu(true);
    em_module_format(g, buf, sizeof buf);
    CHECKF(!strcmp(buf, "GELU(approximate='tanh')"), "GELU printed as '%s'", buf);
    em_module_destroy(g);

    /* Flatten */
    double x[120];
    tu_fill(x, 120, EM_F32, -1, 1);
    em_tensor *X = upload(x, EM_F32, 4, (int64_t[]){2, 3, 4, 5});
    const int se[3][2] = {{1, -1}, {0, -1}, {1, 2}};
    const int64_t want[3][4] = {{2, 60}, {120}, {2, 12, 5}};
    const int want_nd[3] = {2, 1, 3};
    for (int k = 0; k < 3; k++) {
        em_module *f = em_nn_flatten(se[k][0], se[k][1]);
        char label[64];
        snprintf(label, sizeof label, "Flatten(%d,%d) [2,3,4,5]", se[k][0], se[k][1]);
        tu_compare_exact(label, em_module_forward(f, X), EM_F32, want_nd[k], want[k], x);
        if (k == 0) {
            em_module_format(f, buf, sizeof buf);
            CHECKF(!strcmp(buf, "Flatten(start_dim=1, end_dim=-1)"), "Flatten printed '%s'", buf);
            module_gradcheck("Flatten backward", f, gc_leaf(3, (int64_t[]){2, 3, 2}, -1, 1), 0,
                             NULL);
        }
        em_module_destroy(f);
    }
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* LayerNorm                                                                 */
/* ------------------------------------------------------------------------ */

static void ref_layer_norm(const double *x, int64_t rows, int64_t k, const double *w,
                           const double *b, double eps, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < k; i++) m += x[r * k + i];
        m /= (double)k;
        for (int64_t i = 0; i < k; i++) v += (x[r * k + i] - m) * (x[r * k + i] - m);
        v /= (double)k;
        for (int64_t i = 0; i < k; i++) {
            double z = (x[r * k + i] - m) / sqrt(v + eps);
            y[r * k + i] = w ? z * w[i] + b[i] : z;
        }
    }
}

static void test_layer_norm(void)
{
    em_scope_begin();
    for (int variant = 0; variant < 3; variant++) {
        /* 0: LayerNorm([4,5]) affine; 1: LayerNorm([5]) no affine; 2: [5] affine, eps 0.1 */
        int nd = variant == 0 ? 2 : 1;
        const int64_t *ns = variant == 0 ? (const int64_t[]){4, 5} : (const int64_t[]){5};
        bool affine = variant != 1;
        double eps = variant == 2 ? 0.1 : 1e-5;
        em_module *ln = em_nn_layer_norm(nd, ns, eps, affine, NULL);
        CHECK_NONNULL(ln);
        if (!ln) continue;
        int64_t k = variant == 0 ? 20 : 5;
        CHECK(em_module_num_parameters(ln, false) == (affine ? 2 * k : 0));
        double *w = NULL, *b = NULL;
        if (affine) {
            w = read_param(ln, "weight");
            b = read_param(ln, "bias");
            bool init_ok = w && b;
            for (int64_t i = 0; init_ok && i < k; i++) init_ok = w[i] == 1 && b[i] == 0;
            CHECKF(init_ok, "LayerNorm weight ones, bias zeros");
            free(w);
            free(b);
            /* random affine parameters to test them */
            em_tensor *pw = em_module_get_parameter(ln, "weight");
            em_tensor *pb = em_module_get_parameter(ln, "bias");
            CHECK_OK(em_init_uniform_(pw, 0.5, 1.5, NULL));
            CHECK_OK(em_init_uniform_(pb, -1, 1, NULL));
            w = read_param(ln, "weight");
            b = read_param(ln, "bias");
        }
        double x[60], ref[60];
        tu_fill(x, 60, EM_F32, -3, 3);
        ref_layer_norm(x, 60 / k, k, w, b, eps, ref);
        char label[96];
        snprintf(label, sizeof label, "LayerNorm(%s, eps=%g, affine=%d) x [3,4,5]",
                 variant == 0 ? "[4,5]" : "[5]", eps, affine);
        tu_compare(label, em_module_forward(ln, upload(x, EM_F32, 3, (int64_t[]){3, 4, 5})),
                   EM_F32, 3, (int64_t[]){3, 4, 5}, ref, (tu_tol){1e-5, 1e-5, 16});
        free(w);
        free(b);
        if (variant == 0) {
            char buf[128];
            em_module_format(ln, buf, sizeof buf);
            CHECKF(!strcmp(buf, "LayerNorm((4, 5), eps=1e-05, elementwise_affine=True)"),
                   "LayerNorm printed '%s'", buf);
            em_clear_error();
            CHECK(em_module_forward(ln, em_zeros(EM_F32, EM_SHAPE(3, 5, 4), tu_dev)) == NULL);
            CHECK(em_last_status() == EM_ERR_SHAPE);
            check_msg("LayerNorm shape", "[4, 5]");
            check_msg("LayerNorm shape", "[3, 5, 4]");
            check_msg("LayerNorm shape", "em_module_forward(LayerNorm)");
            em_clear_error();
            CHECK_FAILS(em_module_forward(ln, em_zeros(EM_F32, EM_SHAPE(5), tu_dev)),
                        EM_ERR_SHAPE);
        }
        snprintf(label, sizeof label, "LayerNorm variant %d backward", variant);
        const char *names[2] = {"weight", "bias"};
        module_gradcheck(label, ln, gc_leaf(3, (int64_t[]){2, 4, 5}, -2, 2), affine ? 2 : 0,
                         names);
        em_module_destroy(ln);
    }
    CHECK_MODULE_FAILS(em_nn_layer_norm(0, (const int64_t[]){1}, 1e-5, true, NULL),
                EM_ERR_INVALID_ARG);
    CHECK_MODULE_FAILS(em_nn_layer_norm(1, NULL, 1e-5, true, NULL), EM_ERR_NULL_ARG);
    CHECK_MODULE_FAILS(em_nn_layer_norm(1, (const int64_t[]){4}, -1, true, NULL),
                EM_ERR_INVALID_ARG);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Embedding                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct emb_ctx {
    em_module *m;
    em_tensor *index;
} emb_ctx;

/* Embedding forward on fixed indices with the weight from the gradcheck. */
static em_tensor *gc_embedding(em_tensor *const *in, void *p)
{
    emb_ctx *c = p;
    if (em_module_register_parameter(c->m, "weight", in[0]) != EM_OK) return NULL;
    return em_module_forward(c->m, c->index);
}

static void test_embedding(void)
{
    em_scope_begin();
    em_module *emb = em_nn_embedding(10, 4, NULL, NULL);
    CHECK_NONNULL(emb);
    double *W = read_param(emb, "weight");
    int64_t idx[6] = {3, 0, 9, 3, 7, 1};
    double ref[24];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) ref[i * 4 + j] = W ? W[idx[i] * 4 + j] : 0;
    for (int dt = 0; dt < 2; dt++) {
        em_tensor *I = dt ? em_tensor_from_ints(idx, 2, (int64_t[]){2, 3})
                          : em_cast(em_tensor_from_ints(idx, 2, (int64_t[]){2, 3}), EM_I32);
        tu_compare_exact(dt ? "Embedding(10,4) i64 [2,3]" : "Embedding(10,4) i32 [2,3]",
                         em_module_forward(emb, I), EM_F32, 3, (int64_t[]){2, 3, 4}, ref);
    }
    free(W);
    char buf[64];
    em_module_format(emb, buf, sizeof buf);
    CHECKF(!strcmp(buf, "Embedding(10, 4)"), "Embedding printed '%s'", buf);
    CHECK_FAILS(em_module_forward(emb, em_tensor_from_ints((const int64_t[]){10}, 1,
                                                           (int64_t[]){1})),
                EM_ERR_INDEX);
    /* gradient w.r.t. the weight (repeated index 3 accumulates) */
    CHECK_OK(em_module_to_dtype(emb, EM_F64));
    em_tensor *w = em_module_get_parameter(emb, "weight");
    em_tensor *out = em_module_forward(emb, em_tensor_from_ints(idx, 1, (int64_t[]){6}));
    CHECK_OK(em_backward(em_sum(out, NULL, 0, false), NULL, false, false));
    double g[40];
    CHECK(em_tensor_read_f64(em_grad(w), g, 40) == EM_OK);
    const double count[10] = {1, 1, 0, 2, 0, 0, 0, 1, 0, 1};
    bool ok = true;
    for (int r = 0; r < 10; r++)
        for (int j = 0; j < 4; j++) ok = ok && g[r * 4 + j] == count[r];
    CHECKF(ok, "Embedding weight gradient counts the uses of each row");
    emb_ctx c = {emb, em_tensor_from_ints(idx, 2, (int64_t[]){3, 2})};
    gradcheck("Embedding weight", gc_embedding, &c, 1, &w);
    em_module_destroy(emb);
    CHECK_MODULE_FAILS(em_nn_embedding(-1, 4, NULL, NULL), EM_ERR_INVALID_ARG);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Dropout                                                                   */
/* ------------------------------------------------------------------------ */

static void test_dropout(void)
{
    em_scope_begin();
    const double ps[3] = {0.3, 0.5, 0.9};
    for (int k = 0; k < 3; k++) {
        double p = ps[k];
        em_generator *gen = em_generator_create(42 + (uint64_t)k);
        em_module *d = em_nn_dropout(p, gen);
        CHECK_NONNULL(d);
        CHECK(em_module_is_training(d));
        int64_t n = 100000;
        /* a leaf in [0.5, 1.5): never 0 */
        em_tensor *leaf = em_add_scalar(em_rand(NULL, EM_F32, 1, &n, tu_dev), 0.5);
        em_requires_grad_(leaf, true);
        em_tensor *y = em_module_forward(d, leaf);
        double *xv = tu_read(leaf), *yv = tu_read(y);
        CHECK_OK(em_backward(em_sum(y, NULL, 0, false), NULL, false, false));
        double *gv = tu_read(em_grad(leaf));
        if (xv && yv && gv) {
            double scale = (double)(float)(1.0 / (1.0 - p));
            int64_t zeros = 0;
            bool scaled = true, grads = true;
            for (int64_t i = 0; i < n; i++) {
                if (yv[i] == 0) {
                    zeros++;
                    grads = grads && gv[i] == 0;
                } else {
                    scaled = scaled && fabs(yv[i] - xv[i] * scale) <= 2e-7 * fabs(yv[i]);
                    grads = grads && gv[i] == scale;
                }
            }
            double rate = (double)zeros / (double)n, se = sqrt(p * (1 - p) / (double)n);
            CHECKF(fabs(rate - p) <= 6 * se, "Dropout(%g): drop rate %.5f", p, rate);
            CHECKF(scaled, "Dropout(%g): kept values scaled by 1/(1-p)", p);
            CHECKF(grads, "Dropout(%g): gradient is mask * 1/(1-p)", p);
            printf("Dropout(p=%g) train: drop rate %.5f (want %.2f +- %.4f)\n", p, rate, p,
                   6 * se);
        }
        free(xv);
        free(yv);
        free(gv);
        /* a second call draws a new mask; a fresh generator of the same seed repeats it */
        em_tensor *y2 = em_module_forward(d, leaf);
        CHECK(!same_values(y, y2));
        em_generator *again = em_generator_create(42 + (uint64_t)k);
        em_module *d2 = em_nn_dropout(p, again);
        CHECK(same_values(y, em_module_forward(d2, leaf)));
        /* eval: the input itself */
        CHECK_OK(em_module_train(d, false));
        em_tensor *e = em_module_forward(d, leaf);
        CHECK(e == leaf);
        em_module_destroy(d);
        em_module_destroy(d2);
        em_generator_destroy(gen);
        em_generator_destroy(again);
    }
    em_tensor *x = em_ones(EM_F32, EM_SHAPE(4, 4), tu_dev);
    em_module *d0 = em_nn_dropout(0.0, NULL), *d1 = em_nn_dropout(1.0, NULL);
    CHECK(em_module_forward(d0, x) == x);
    double z = 1;
    em_tensor_item(em_sum(em_module_forward(d1, x), NULL, 0, false), &z);
    CHECKF(z == 0, "Dropout(1) gives zeros, sum %g", z);
    char buf[32];
    em_module_format(d1, buf, sizeof buf);
    CHECKF(!strcmp(buf, "Dropout(p=1)"), "Dropout printed '%s'", buf);
    CHECK_FAILS(em_module_forward(d1, em_ones(EM_I64, EM_SHAPE(2), tu_dev)), EM_ERR_DTYPE);
    em_module_destroy(d0);
    em_module_destroy(d1);
    CHECK_MODULE_FAILS(em_nn_dropout(1.5, NULL), EM_ERR_INVALID_ARG);
    CHECK_MODULE_FAILS(em_nn_dropout(NAN, NULL), EM_ERR_INVALID_ARG);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Sequential                                                                */
/* ------------------------------------------------------------------------ */

static em_module *mlp(em_generator *gen)
{
    return em_nn_sequential((em_module *[]){em_nn_linear(2, 30, true, NULL, gen), em_nn_relu(),
                                            em_nn_linear(30, 20, true, NULL, gen), em_nn_relu(),
                                            em_nn_linear(20, 2, true, NULL, gen)},
                            5);
}

/* The MLP in double from its parameters. */
static void ref_mlp(const em_module *m, const double *x, int64_t rows, double *out)
{
    const int sizes[4] = {2, 30, 20, 2};
    double h[64][32], nx[64][32];
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < 2; i++) h[r][i] = x[r * 2 + i];
    for (int l = 0; l < 3; l++) {
        char wn[16], bn[16];
        snprintf(wn, sizeof wn, "%d.weight", 2 * l);
        snprintf(bn, sizeof bn, "%d.bias", 2 * l);
        double *W = read_param(m, wn), *B = read_param(m, bn);
        for (int64_t r = 0; r < rows; r++)
            for (int o = 0; o < sizes[l + 1]; o++) {
                double s = B ? B[o] : 0;
                for (int i = 0; i < sizes[l]; i++) s += h[r][i] * (W ? W[o * sizes[l] + i] : 0);
                nx[r][o] = l < 2 && s < 0 ? 0 : s;
            }
        memcpy(h, nx, sizeof h);
        free(W);
        free(B);
    }
    for (int64_t r = 0; r < rows; r++)
        for (int o = 0; o < 2; o++) out[r * 2 + o] = h[r][o];
}

static void test_sequential(void)
{
    em_scope_begin();
    em_module *m = mlp(NULL);
    CHECK_NONNULL(m);
    if (!m) {
        em_scope_end();
        return;
    }
    CHECK(em_module_num_parameters(m, false) == 752);
    CHECK(em_module_num_parameters(m, true) == 752);
    CHECK(em_module_child_count(m) == 5);
    em_tensor_dict *np = em_module_named_parameters(m);
    const char *want[6] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"};
    CHECK(em_tensor_dict_count(np) == 6);
    for (int i = 0; i < 6; i++) {
        const char *got = em_tensor_dict_name(np, i);
        CHECKF(got && !strcmp(got, want[i]), "named_parameters[%d] = '%s', want '%s'", i,
               got ? got : "(null)", want[i]);
    }
    /* the entries are the parameters themselves */
    CHECK(em_tensor_dict_get(np, "2.weight") == em_module_get_parameter(m, "2.weight"));
    em_tensor_dict_destroy(np);

    double x[16], ref[16];
    tu_fill(x, 16, EM_F32, -2, 2);
    ref_mlp(m, x, 8, ref);
    tu_compare("MLP 2-30-20-2 forward x [8,2]", em_module_forward(m, upload(x, EM_F32, 2,
                                                                          (int64_t[]){8, 2})),
               EM_F32, 2, (int64_t[]){8, 2}, ref, f32_tol);

    char buf[512];
    int len = em_module_format(m, buf, sizeof buf);
    const char *repr = "Sequential(\n"
                       "  (0): Linear(in_features=2, out_features=30, bias=True)\n"
                       "  (1): ReLU()\n"
                       "  (2): Linear(in_features=30, out_features=20, bias=True)\n"
                       "  (3): ReLU()\n"
                       "  (4): Linear(in_features=20, out_features=2, bias=True)\n"
                       ")";
    CHECKF(!strcmp(buf, repr) && len == (int)strlen(repr), "Sequential printed:\n%s", buf);
    CHECK(em_module_format(m, buf, 10) == len && strlen(buf) == 9); /* truncated */

    /* freezing the first layer */
    CHECK_OK(em_module_requires_grad_(em_module_get_child(m, "0"), false));
    CHECK(em_module_num_parameters(m, true) == 752 - 90);
    CHECK_OK(em_module_requires_grad_(m, true));

    /* backward through the whole model; gradcheck in f64 (x and 2.weight) */
    CHECK_OK(em_module_to_dtype(m, EM_F64));
    const char *names[2] = {"2.weight", "4.bias"};
    module_gradcheck("MLP x, 2.weight, 4.bias", m, gc_leaf(2, (int64_t[]){3, 2}, -1, 1), 2, names);

    /* append */
    CHECK_OK(em_nn_sequential_append(m, em_nn_tanh()));
    CHECK(em_module_child_count(m) == 6 && !strcmp(em_module_child_name(m, 5), "5"));
    em_module *lin = em_nn_linear(2, 2, true, NULL, NULL);
    CHECK_STATUS(em_nn_sequential_append(lin, em_nn_relu()), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_nn_sequential_append(NULL, em_nn_relu()), EM_ERR_NULL_ARG);
    em_module_destroy(lin);
    em_module_destroy(m);

    /* empty Sequential: the input */
    em_module *e = em_nn_sequential(NULL, 0);
    em_tensor *x0 = em_ones(EM_F32, EM_SHAPE(2), tu_dev);
    CHECK(e && em_module_forward(e, x0) == x0);
    em_module_destroy(e);

    /* failed creations inside: the first error is reported, nothing leaks */
    em_clear_error();
    CHECK(em_nn_sequential((em_module *[]){em_nn_relu(), em_nn_linear(-2, 3, true, NULL, NULL),
                                           em_nn_tanh()},
                           3) == NULL);
    CHECK(em_last_status() == EM_ERR_INVALID_ARG);
    check_msg("Sequential with a failed entry", "em_nn_linear");
    em_clear_error();
    em_module *r = em_nn_relu();
    CHECK(em_nn_sequential((em_module *[]){r, r}, 2) == NULL);
    CHECK(em_last_status() == EM_ERR_INVALID_ARG);
    em_clear_error();
    CHECK(em_nn_sequential(NULL, -1) == NULL && em_last_status() == EM_ERR_INVALID_ARG);
    em_clear_error();

    /* a failing child names itself */
    em_module *s = mlp(NULL);
    em_clear_error();
    CHECK(em_module_forward(s, em_zeros(EM_F32, EM_SHAPE(4, 3), tu_dev)) == NULL);
    CHECK(em_last_status() == EM_ERR_SHAPE);
    check_msg("Sequential child error", "em_module_forward(Sequential): child '0': "
                                        "em_module_forward(Linear)");
    em_clear_error();
    em_module_destroy(s);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* A user-defined module                                                     */
/* ------------------------------------------------------------------------ */

static int net_frees;

typedef struct net {
    double scale;
} net;

static void net_free(void *p)
{
    net_frees++;
    free(p);
}

/* body(x) * alpha * scale + shift */
static em_tensor *net_forward(em_module *self, const em_tensor *x)
{
    const net *n = em_module_user_data(self);
    em_tensor *h = em_module_forward(em_module_get_child(self, "body"), x);
    em_tensor *alpha = em_module_get_parameter(self, "alpha");
    em_tensor *shift = em_module_get_buffer(self, "shift");
    return em_add(em_mul_scalar(em_mul(h, alpha), n->scale), shift);
}

static em_module *make_net(em_generator *gen)
{
    net *cfg = malloc(sizeof *cfg);
    cfg->scale = 0.5;
    em_module *m = em_module_create("Net", net_forward, cfg, net_free);
    if (!m) return NULL;
    em_scope_begin();
    em_tensor *alpha = em_rand(gen, EM_F32, EM_SHAPE(4), tu_dev);
    em_tensor *shift = em_rand(gen, EM_F32, EM_SHAPE(4), tu_dev);
    em_status st = em_module_register_parameter(m, "alpha", alpha);
    if (st == EM_OK) st = em_module_register_buffer(m, "shift", shift);
    if (st == EM_OK)
        st = em_module_add_child(
            m, "body",
            em_nn_sequential((em_module *[]){em_nn_linear(3, 4, true, NULL, gen), em_nn_tanh()},
                             2));
    em_scope_end();
    if (st != EM_OK) {
        em_module_destroy(m);
        return NULL;
    }
    return m;
}

static em_tensor *bad_forward_input(em_module *self, const em_tensor *x)
{
    return (em_tensor *)x;
}
static em_tensor *bad_forward_null(em_module *self, const em_tensor *x) { return NULL; }

static void test_user_module(void)
{
    em_scope_begin();
    net_frees = 0;
    em_generator *gen = em_generator_create(5);
    em_module *m = make_net(gen);
    CHECK_NONNULL(m);
    if (!m) {
        em_scope_end();
        return;
    }
    CHECK(((net *)em_module_user_data(m))->scale == 0.5);
    CHECK(em_module_num_parameters(m, false) == 4 + 12 + 4);

    /* names */
    em_tensor_dict *np = em_module_named_parameters(m);
    em_tensor_dict *nb = em_module_named_buffers(m);
    em_tensor_dict *sd = em_module_state_dict(m);
    const char *pn[3] = {"alpha", "body.0.weight", "body.0.bias"};
    const char *sn[4] = {"alpha", "shift", "body.0.weight", "body.0.bias"};
    CHECK(em_tensor_dict_count(np) == 3 && em_tensor_dict_count(sd) == 4 &&
          em_tensor_dict_count(nb) == 1);
    for (int i = 0; i < 3; i++)
        CHECKF(!strcmp(em_tensor_dict_name(np, i) ? em_tensor_dict_name(np, i) : "", pn[i]),
               "named_parameters[%d] '%s', want '%s'", i, em_tensor_dict_name(np, i), pn[i]);
    for (int i = 0; i < 4; i++)
        CHECKF(!strcmp(em_tensor_dict_name(sd, i) ? em_tensor_dict_name(sd, i) : "", sn[i]),
               "state_dict[%d] '%s', want '%s'", i, em_tensor_dict_name(sd, i), sn[i]);
    CHECK(!strcmp(em_tensor_dict_name(nb, 0), "shift"));
    /* state dict entries: detached, sharing storage with the parameters */
    em_tensor *sw = em_tensor_dict_get(sd, "body.0.weight");
    em_tensor *pw = em_module_get_parameter(m, "body.0.weight");
    CHECK(sw != pw && em_tensor_shares_storage(sw, pw) && !em_requires_grad(sw) &&
          em_requires_grad(pw));
    em_tensor_dict_destroy(np);
    em_tensor_dict_destroy(nb);
    em_tensor_dict_destroy(sd);
    CHECK(!strcmp(em_module_type_name(em_module_get_child(m, "body.0")), "Linear"));
    CHECK(em_module_parent(em_module_get_child(m, "body")) == m);
    CHECK(em_module_get_child(m, "body.1") == em_module_child_at(em_module_child_at(m, 0), 1));

    /* forward against double */
    double x[6], ref[8];
    tu_fill(x, 6, EM_F32, -1, 1);
    double *W = read_param(m, "body.0.weight"), *B = read_param(m, "body.0.bias");
    double *A = read_param(m, "alpha"), shift[4];
    em_tensor_read_f64(em_module_get_buffer(m, "shift"), shift, 4);
    for (int r = 0; r < 2; r++)
        for (int o = 0; o < 4; o++) {
            double s = B[o];
            for (int i = 0; i < 3; i++) s += x[r * 3 + i] * W[o * 3 + i];
            ref[r * 4 + o] = tanh(s) * A[o] * 0.5 + shift[o];
        }
    free(W);
    free(B);
    free(A);
    em_tensor *X = upload(x, EM_F32, 2, (int64_t[]){2, 3});
    em_tensor *y = em_module_forward(m, X);
    tu_compare("Net forward", y, EM_F32, 2, (int64_t[]){2, 4}, ref, f32_tol);
    CHECK_OK(em_backward(em_sum(y, NULL, 0, false), NULL, false, false));
    CHECK(em_grad(em_module_get_parameter(m, "alpha")) != NULL);
    CHECK(em_grad(em_module_get_parameter(m, "body.0.weight")) != NULL);
    CHECK(em_grad(em_module_get_buffer(m, "shift")) == NULL);
    CHECK_OK(em_module_zero_grad(m));
    CHECK(em_grad(em_module_get_parameter(m, "alpha")) == NULL);

    char buf[256];
    em_module_format(m, buf, sizeof buf);
    const char *repr = "Net(\n"
                       "  (body): Sequential(\n"
                       "    (0): Linear(in_features=3, out_features=4, bias=True)\n"
                       "    (1): Tanh()\n"
                       "  )\n"
                       ")";
    CHECKF(!strcmp(buf, repr), "Net printed:\n%s", buf);

    /* gradcheck in f64 w.r.t. x, alpha and the child's weight */
    const char *names[2] = {"alpha", "body.0.weight"};
    module_gradcheck("Net x, alpha, body.0.weight", m, gc_leaf(2, (int64_t[]){2, 3}, -1, 1), 2,
                     names);
    CHECK(em_tensor_dtype(em_module_get_buffer(m, "shift")) == EM_F64);

    /* registration errors */
    em_tensor *t = em_zeros(EM_F32, EM_SHAPE(2), tu_dev);
    CHECK_STATUS(em_module_register_parameter(m, "a.b", t), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_register_parameter(m, "", t), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_register_parameter(m, NULL, t), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_module_register_parameter(m, "t", NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_module_register_parameter(NULL, "t", t), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_module_register_parameter(m, "body", t), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_register_parameter(m, "shift", t), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_register_buffer(m, "alpha", t), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_register_parameter(m, "i", em_zeros(EM_I64, EM_SHAPE(2), tu_dev)),
                 EM_ERR_DTYPE);
    em_tensor *leaf = em_ones(EM_F32, EM_SHAPE(2), tu_dev);
    em_requires_grad_(leaf, true);
    em_clear_error();
    CHECK(em_module_register_parameter(m, "nonleaf", em_mul_scalar(leaf, 2)) ==
          EM_ERR_INVALID_ARG);
    check_msg("non-leaf parameter", "em_detach");
    em_clear_error();
    CHECK_OK(em_module_register_buffer(m, "steps", em_zeros(EM_I64, EM_SHAPE(1), tu_dev)));
    em_clear_error();
    CHECK(em_module_get_parameter(m, "alpah") == NULL && em_last_status() == EM_ERR_INVALID_ARG);
    check_msg("missing parameter", "'alpah'");
    check_msg("missing parameter", "alpha");
    em_clear_error();
    CHECK_FAILS(em_module_get_parameter(m, "body.9.weight"), EM_ERR_INVALID_ARG);
    CHECK_FAILS(em_module_get_buffer(m, "alpha"), EM_ERR_INVALID_ARG);
    CHECK_MODULE_FAILS(em_module_get_child(m, "nobody"), EM_ERR_INVALID_ARG);
    CHECK_MODULE_FAILS(em_module_child_at(m, 3), EM_ERR_INDEX);

    /* children: duplicates are destroyed, adopted ones and cycles refused */
    CHECK_STATUS(em_module_add_child(m, "body", em_nn_relu()), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_add_child(m, "x.y", em_nn_relu()), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_add_child(NULL, "r", em_nn_relu()), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_module_add_child(m, "n", NULL), EM_ERR_NULL_ARG);
    em_module *body = em_module_get_child(m, "body");
    em_module *other = em_nn_sequential(NULL, 0);
    CHECK_STATUS(em_module_add_child(other, "b", body), EM_ERR_INVALID_ARG);
    CHECK(em_module_parent(body) == m); /* untouched */
    CHECK_STATUS(em_module_add_child(body, "loop", m), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_module_add_child(other, "self", other), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_nn_sequential_append(other, body), EM_ERR_INVALID_ARG);
    CHECK(em_module_parent(body) == m);
    em_clear_error();
    em_module_destroy(body); /* a child: refused, nothing freed */
    CHECK(em_last_status() == EM_ERR_STATE && em_module_get_child(m, "body") == body);
    em_clear_error();
    em_module_destroy(other);

    /* forward functions that break the rules */
    em_module *b1 = em_module_create("Bad", bad_forward_input, NULL, NULL);
    em_module *b2 = em_module_create("Bad", bad_forward_null, NULL, NULL);
    em_module *b3 = em_module_create("Container", NULL, NULL, NULL);
    CHECK_FAILS(em_module_forward(b1, X), EM_ERR_STATE);
    CHECK_FAILS(em_module_forward(b2, X), EM_ERR_STATE);
    CHECK_FAILS(em_module_forward(b3, X), EM_ERR_STATE);
    CHECK_FAILS(em_module_forward(NULL, X), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_module_forward(b3, NULL), EM_ERR_NULL_ARG);
    CHECK_MODULE_FAILS(em_module_create("", NULL, NULL, NULL), EM_ERR_INVALID_ARG);
    CHECK_MODULE_FAILS(em_module_create(NULL, NULL, NULL, NULL), EM_ERR_NULL_ARG);
    em_module_format(b3, buf, sizeof buf);
    CHECK(!strcmp(buf, "Container()"));
    em_module_destroy(b1);
    em_module_destroy(b2);
    em_module_destroy(b3);

    em_module_destroy(m);
    CHECK(net_frees == 1);
    em_generator_destroy(gen);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* State dicts                                                               */
/* ------------------------------------------------------------------------ */

/* A copy of d without `skip` and with `extra` (when non-NULL) added. */
static em_tensor_dict *edited(const em_tensor_dict *d, const char *skip, const char *replace,
                              em_tensor *with)
{
    em_tensor_dict *e = em_tensor_dict_create();
    for (int i = 0; i < em_tensor_dict_count(d); i++) {
        const char *name = em_tensor_dict_name(d, i);
        if (skip && !strcmp(name, skip)) continue;
        em_tensor_dict_set(e, name, em_tensor_dict_at(d, i));
    }
    if (replace) em_tensor_dict_set(e, replace, with);
    return e;
}

/* Snapshot of every state entry of m, to prove a failed load changed nothing. */
static double *snapshot(const em_module *m, int64_t *n)
{
    em_tensor_dict *sd = em_module_state_dict(m);
    int64_t total = 0;
    for (int i = 0; i < em_tensor_dict_count(sd); i++)
        total += em_tensor_numel(em_tensor_dict_at(sd, i));
    double *v = malloc(sizeof(double) * (size_t)total), *p = v;
    for (int i = 0; i < em_tensor_dict_count(sd); i++) {
        em_tensor *t = em_tensor_dict_at(sd, i);
        em_tensor_read_f64(t, p, (size_t)em_tensor_numel(t));
        p += em_tensor_numel(t);
    }
    em_tensor_dict_destroy(sd);
    *n = total;
    return v;
}

static void check_unchanged(const char *label, const em_module *m, const double *before,
                            int64_t n)
{
    int64_t n2;
    double *now = snapshot(m, &n2);
    CHECKF(n2 == n && !memcmp(now, before, sizeof(double) * (size_t)n),
           "%s: the model changed after a failed load", label);
    free(now);
}

static void test_state_dict(void)
{
    em_scope_begin();
    em_generator *g1 = em_generator_create(1), *g2 = em_generator_create(2);
    em_module *a = mlp(g1), *b = mlp(g2);
    em_tensor *x = em_randn(g1, EM_F32, EM_SHAPE(16, 2), tu_dev);
    CHECK(!same_values(em_module_forward(a, x), em_module_forward(b, x)));
    em_tensor_dict *sd = em_module_state_dict(a);
    CHECK(em_tensor_dict_count(sd) == 6);

    int64_t n;
    double *before = snapshot(b, &n);
    /* missing key */
    em_tensor_dict *d = edited(sd, "2.bias", NULL, NULL);
    em_clear_error();
    CHECK(em_module_load_state_dict(b, d, true) == EM_ERR_INVALID_ARG);
    check_msg("missing", "1 missing key");
    check_msg("missing", "'2.bias'");
    em_clear_error();
    check_unchanged("missing", b, before, n);
    em_tensor_dict_destroy(d);
    /* unexpected key */
    d = edited(sd, NULL, "5.weight", em_zeros(EM_F32, EM_SHAPE(2, 2), tu_dev));
    em_clear_error();
    CHECK(em_module_load_state_dict(b, d, true) == EM_ERR_INVALID_ARG);
    check_msg("unexpected", "1 unexpected key");
    check_msg("unexpected", "'5.weight'");
    em_clear_error();
    check_unchanged("unexpected", b, before, n);
    em_tensor_dict_destroy(d);
    /* shape mismatch: strict or not */
    d = edited(sd, NULL, "2.weight", em_zeros(EM_F32, EM_SHAPE(30, 20), tu_dev));
    for (int strict = 0; strict < 2; strict++) {
        em_clear_error();
        CHECK(em_module_load_state_dict(b, d, strict) == EM_ERR_SHAPE);
        check_msg("shape", "'2.weight': checkpoint f32[30,20], model f32[20,30]");
        em_clear_error();
        check_unchanged("shape", b, before, n);
    }
    em_tensor_dict_destroy(d);
    /* dtype mismatch */
    d = edited(sd, NULL, "4.bias", em_zeros(EM_F64, EM_SHAPE(2), tu_dev));
    em_clear_error();
    CHECK(em_module_load_state_dict(b, d, false) == EM_ERR_DTYPE);
    check_msg("dtype", "'4.bias': checkpoint f64[2], model f32[2]");
    em_clear_error();
    check_unchanged("dtype", b, before, n);
    em_tensor_dict_destroy(d);
    /* several problems at once: all listed */
    em_tensor_dict *d1 = edited(sd, "0.weight", "extra", em_zeros(EM_F32, EM_SHAPE(1), tu_dev));
    d = edited(d1, "0.bias", "4.weight", em_zeros(EM_F32, EM_SHAPE(2, 21), tu_dev));
    em_clear_error();
    CHECK(em_module_load_state_dict(b, d, true) == EM_ERR_INVALID_ARG);
    check_msg("several", "2 missing keys");
    check_msg("several", "'0.weight', '0.bias'");
    check_msg("several", "'extra'");
    check_msg("several", "'4.weight': checkpoint f32[2,21], model f32[2,20]");
    em_clear_error();
    check_unchanged("several", b, before, n);
    em_tensor_dict_destroy(d1);
    em_tensor_dict_destroy(d);
    CHECK_STATUS(em_module_load_state_dict(NULL, sd, true), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_module_load_state_dict(b, NULL, true), EM_ERR_NULL_ARG);

    /* non-strict: missing and unexpected keys are ignored, the rest loads */
    d = edited(sd, "4.bias", "unused", em_zeros(EM_F32, EM_SHAPE(1), tu_dev));
    CHECK_OK(em_module_load_state_dict(b, d, false));
    CHECK(same_values(em_module_get_parameter(a, "0.weight"),
                      em_module_get_parameter(b, "0.weight")));
    CHECK(!same_values(em_module_get_parameter(a, "4.bias"), em_module_get_parameter(b, "4.bias")));
    em_tensor_dict_destroy(d);

    /* the round trip: identical outputs, parameters still trainable leaves */
    CHECK_OK(em_module_load_state_dict(b, sd, true));
    CHECK(same_values(em_module_forward(a, x), em_module_forward(b, x)));
    em_tensor *w = em_module_get_parameter(b, "2.weight");
    CHECK(em_is_leaf(w) && em_requires_grad(w));
    CHECK(!em_tensor_shares_storage(w, em_module_get_parameter(a, "2.weight")));
    em_tensor_dict_destroy(sd);

    /* buffers travel too (a user module with one) */
    em_module *n1 = make_net(g1), *n2 = make_net(g2);
    em_tensor_dict *nsd = em_module_state_dict(n1);
    CHECK_OK(em_module_load_state_dict(n2, nsd, true));
    CHECK(same_values(em_module_get_buffer(n1, "shift"), em_module_get_buffer(n2, "shift")));
    em_tensor *xn = em_randn(g1, EM_F32, EM_SHAPE(5, 3), tu_dev);
    CHECK(same_values(em_module_forward(n1, xn), em_module_forward(n2, xn)));
    em_tensor_dict_destroy(nsd);
    em_module_destroy(n1);
    em_module_destroy(n2);

    free(before);
    em_module_destroy(a);
    em_module_destroy(b);
    em_generator_destroy(g1);
    em_generator_destroy(g2);
    em_scope_end();
}

/* ------------------------------------------------------------------------ */
/* Modes, devices, dtypes, ownership                                         */
/* ------------------------------------------------------------------------ */

static void test_modes_and_moves(void)
{
    em_scope_begin();
    em_module *inner = em_nn_sequential((em_module *[]){em_nn_dropout(0.5, NULL)}, 1);
    em_module *m = em_nn_sequential(
        (em_module *[]){em_nn_linear(3, 3, true, NULL, NULL), em_nn_dropout(0.5, NULL), inner},
        3);
    CHECK(em_module_is_training(m) && em_module_is_training(em_module_get_child(m, "2.0")));
    CHECK_OK(em_module_train(m, false));
    CHECK(!em_module_is_training(m) && !em_module_is_training(em_module_get_child(m, "1")) &&
          !em_module_is_training(em_module_get_child(m, "2.0")));
    em_tensor *x = em_randn(NULL, EM_F32, EM_SHAPE(4, 3), tu_dev);
    em_tensor *y = em_module_forward(m, x);
    CHECK(same_values(y, em_module_forward(m, x))); /* eval: deterministic */
    CHECK_OK(em_module_train(m, true));
    CHECK(em_module_is_training(em_module_get_child(m, "2.0")));
    CHECK_STATUS(em_module_train(NULL, true), EM_ERR_NULL_ARG);
    CHECK(!em_module_is_training(NULL));
    CHECK_OK(em_module_train(m, false));

    /* em_module_to: every device and back (same device: nothing changes) */
    em_tensor *w0 = em_module_get_parameter(m, "0.weight");
    CHECK_OK(em_module_to(m, em_tensor_device(w0)));
    CHECK(em_module_get_parameter(m, "0.weight") == w0);
    CHECK_OK(em_module_to(m, NULL));
    for (int i = 0; i < em_device_count(); i++) {
        em_device *dev = em_device_get(i);
        CHECK_OK(em_module_to(m, dev));
        em_tensor *w = em_module_get_parameter(m, "0.weight");
        CHECK(em_tensor_device(w) == dev && em_requires_grad(w) && em_is_leaf(w));
        em_tensor *yd = em_module_forward(m, em_tensor_to(x, dev));
        /* bit-identical on the same device, within rounding across devices */
        CHECKF(dev == tu_dev ? same_values(yd, y) : close_values(yd, y),
               "forward after em_module_to(%s)", em_device_name(dev));
        em_clear_error();
    }
    CHECK_OK(em_module_to(m, tu_dev));

    /* em_module_to_dtype: grads converted, buffers of integer dtype kept,
     * shared parameters stay shared */
    em_tensor *out = em_module_forward(m, x);
    CHECK_OK(em_backward(em_sum(out, NULL, 0, false), NULL, false, false));
    em_module *lin = em_module_get_child(m, "0");
    em_tensor *shared = em_module_get_parameter(lin, "weight");
    CHECK_OK(em_module_register_parameter(lin, "tied", shared));
    CHECK_OK(em_module_register_buffer(lin, "count", em_zeros(EM_I64, EM_SHAPE(1), tu_dev)));
    CHECK(em_module_num_parameters(m, false) == 12);
    em_tensor_dict *np = em_module_named_parameters(m);
    CHECK(em_tensor_dict_count(np) == 2 && !em_tensor_dict_has(np, "0.tied"));
    em_tensor_dict_destroy(np);
    CHECK_OK(em_module_to_dtype(m, EM_F64));
    em_tensor *w = em_module_get_parameter(m, "0.weight");
    CHECK(em_tensor_dtype(w) == EM_F64 && em_requires_grad(w) && em_is_leaf(w));
    CHECK(em_grad(w) && em_tensor_dtype(em_grad(w)) == EM_F64);
    CHECK(em_module_get_parameter(m, "0.tied") == w);
    CHECK(em_tensor_dtype(em_module_get_buffer(m, "0.count")) == EM_I64);
    CHECK_STATUS(em_module_to_dtype(m, EM_I32), EM_ERR_DTYPE);
    CHECK_STATUS(em_module_to(NULL, NULL), EM_ERR_NULL_ARG);
    CHECK_OK(em_module_zero_grad(m));
    CHECK(em_grad(w) == NULL);
    CHECK(em_module_num_parameters(NULL, false) == -1);
    em_clear_error();
    em_module_destroy(m);
    em_scope_end();

    /* no scope open: forward's result belongs to the caller; scoped
     * training-style steps do not grow the heap */
    em_module *net = mlp(NULL);
    em_tensor *xs = em_randn(NULL, EM_F32, EM_SHAPE(8, 2), tu_dev);
    em_tensor *r = em_module_forward(net, xs);
    CHECK(r != NULL);
    em_tensor_release(r);
    em_tensor *tg = em_tensor_from_ints((const int64_t[]){0, 1, 1, 0, 1, 0, 0, 1}, 1,
                                        (int64_t[]){8});
    size_t heap0 = 0;
    for (int step = 0; step < 300; step++) {
        if (step == 100) heap0 = tu_heap_in_use();
        em_scope_begin();
        em_tensor *loss =
            em_cross_entropy(em_module_forward(net, xs), tg, EM_REDUCTION_MEAN, -100, 0.0);
        em_backward(loss, NULL, false, false);
        em_module_zero_grad(net);
        em_scope_end();
    }
    size_t heap1 = tu_heap_in_use();
    CHECKF(heap1 <= heap0 + 16384, "200 scoped steps: heap grew by %zu bytes", heap1 - heap0);
    em_tensor_release(xs);
    em_tensor_release(tg);
    em_module_destroy(net);
    em_module_destroy(NULL);
}

/* The user module of the fusion test: relu of its input, in C. */
static em_tensor *user_relu_forward(em_module *self, const em_tensor *x)
{
    (void)self;
    return em_relu(x);
}

/* Runs the children of seq one by one (no fusion), as Sequential did. */
static em_tensor *run_children(em_module *seq, const em_tensor *x)
{
    const em_tensor *cur = x;
    em_tensor *y = NULL;
    for (int i = 0; i < em_module_child_count(seq) && cur; i++)
        cur = y = em_module_forward(em_module_child_at(seq, i), cur);
    return y;
}

static void test_sequential_fusion(void)
{
    em_manual_seed(7);
    em_module *seq = em_nn_sequential(
        (em_module *[]){em_nn_linear(6, 16, true, tu_dev, NULL), em_nn_relu(),
                        em_nn_linear(16, 8, true, tu_dev, NULL), em_nn_relu(),
                        em_nn_linear(8, 3, true, tu_dev, NULL)},
        5);
    CHECK_NONNULL(seq);
    if (!seq) return;
    em_tensor_dict *params = em_module_named_parameters(seq);
    int np = params ? em_tensor_dict_count(params) : 0;
    CHECK(np == 6);
    em_scope_begin();
    em_tensor *x = em_randn(NULL, EM_F32, EM_SHAPE(5, 6), tu_dev);
    em_tensor *y = em_randint(NULL, 0, 3, EM_I64, EM_SHAPE(5), tu_dev);
    double grads[2][6][16 * 8], losses[2], outs[2][15];
    for (int pass = 0; pass < 2; pass++) {
        CHECK_OK(em_module_zero_grad(seq));
        em_tensor *out = pass == 0 ? em_module_forward(seq, x) : run_children(seq, x);
        em_tensor *loss = em_cross_entropy(out, y, EM_REDUCTION_MEAN, EM_IGNORE_INDEX_DEFAULT, 0.0);
        CHECK(loss && em_backward(loss, NULL, false, false) == EM_OK);
        CHECK(loss && em_tensor_read_f64(loss, &losses[pass], 1) == EM_OK);
        CHECK(out && em_tensor_read_f64(out, outs[pass], 15) == EM_OK);
        for (int i = 0; i < np && i < 6; i++) {
            em_tensor *g = em_grad(em_tensor_dict_at(params, i));
            int64_t n = g ? em_tensor_numel(g) : 0;
            CHECK(g && n <= 16 * 8 && em_tensor_read_f64(g, grads[pass][i], (size_t)n) == EM_OK);
        }
    }
    bool same = losses[0] == losses[1];
    for (int k = 0; k < 15; k++) same &= outs[0][k] == outs[1][k];
    CHECKF(same, "fused Sequential: loss %.9g vs %.9g unfused (or outputs differ)", losses[0], losses[1]);
    for (int i = 0; i < np && i < 6; i++) {
        int64_t n = em_tensor_numel(em_tensor_dict_at(params, i));
        bool eq = true;
        for (int64_t k = 0; k < n; k++) eq &= grads[0][i][k] == grads[1][i][k];
        CHECKF(eq, "fused Sequential: the gradient of %s differs", em_tensor_dict_name(params, i));
    }
    /* what is fused: Linear then ReLU; not ReLU first, Linear + Tanh, or a
     * user module (even one of type "ReLU") after a Linear */
    em_tensor *xs = em_randn(NULL, EM_F32, EM_SHAPE(2, 6), tu_dev);
    em_module *user = em_module_create("ReLU", user_relu_forward, NULL, NULL);
    em_module *other[3] = {
        em_nn_sequential((em_module *[]){em_nn_relu(), em_nn_linear(6, 4, true, tu_dev, NULL)}, 2),
        em_nn_sequential((em_module *[]){em_nn_linear(6, 4, true, tu_dev, NULL), em_nn_tanh()}, 2),
        em_nn_sequential((em_module *[]){em_nn_linear(6, 4, true, tu_dev, NULL), user}, 2)};
    static const char *want[3] = {"linear", "tanh", "relu"};
    for (int k = 0; k < 3; k++) {
        em_tensor *o = other[k] ? em_module_forward(other[k], xs) : NULL;
        const char *name = o ? em_grad_fn_name(o) : NULL;
        CHECKF(name && !strcmp(name, want[k]), "Sequential case %d: grad_fn %s, want %s", k,
               name ? name : "NULL", want[k]);
        em_module_destroy(other[k]);
    }
    em_tensor *first = em_module_forward(seq, xs);
    const char *n0 = first ? em_grad_fn_name(first) : NULL;
    CHECK(n0 && !strcmp(n0, "linear"));
    em_module *pair = em_nn_sequential((em_module *[]){em_nn_linear(6, 4, true, tu_dev, NULL), em_nn_relu()}, 2);
    em_tensor *po = pair ? em_module_forward(pair, xs) : NULL;
    const char *pn = po ? em_grad_fn_name(po) : NULL;
    CHECKF(pn && (!strcmp(pn, "linear_relu") || !strcmp(pn, "relu")), "Linear+ReLU grad_fn %s",
           pn ? pn : "NULL");
    em_module_destroy(pair);
    em_scope_end();
    em_tensor_dict_destroy(params);
    em_module_destroy(seq);
}

int main(void)
{
    tu_init("test_nn_modules");
    test_sequential_fusion();
    test_linear();
    test_init();
    test_activations();
    test_layer_norm();
    test_embedding();
    test_dropout();
    test_sequential();
    test_user_module();
    test_state_dict();
    test_modes_and_moves();
    return tu_finish();
}
