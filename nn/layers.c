/*
 * layers.c — the built-in modules of api/ember_nn.h (torch.nn layers):
 * Linear, Sequential, ReLU, GELU, Tanh, Sigmoid, Dropout, Embedding,
 * LayerNorm, Flatten.
 *
 * Each is an em_module made with em_module_create whose user data is a small
 * private configuration struct; parameters are registered by name and read
 * back with em_module_get_parameter in forward (so load_state_dict, em_module_to
 * and replaced parameters are always seen). Forward functions run inside the
 * scope that em_module_forward opens, so their temporaries are freed there.
 * Sequential runs a built-in Linear immediately followed by a built-in ReLU
 * as one em_linear_relu (the fused kernel where the backend has it; the same
 * values as the two modules); any other module runs through em_module_forward.
 */
#include "ember_nn.h"
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* A module with a calloc'ed config of cfg_size bytes (freed with it) and a
 * description made from fmt. NULL with an error. */
__attribute__((format(printf, 4, 5))) static em_module *
make(const char *type, em_module_forward_fn forward, size_t cfg_size, const char *fmt, ...)
{
    void *cfg = NULL;
    if (cfg_size) {
        cfg = calloc(1, cfg_size);
        if (!cfg) {
            em__fail(EM_ERR_OUT_OF_MEMORY, "em_nn_%s: out of host memory", type);
            return NULL;
        }
    }
    em_module *m = em_module_create(type, forward, cfg, cfg ? free : NULL);
    if (!m) {
        free(cfg);
        return NULL;
    }
    char desc[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    if (desc[0] && em_module_set_description(m, desc) != EM_OK) {
        em_module_destroy(m);
        return NULL;
    }
    return m;
}

/* The input itself as a new reference owned by the current scope. */
static em_tensor *identity(const em_tensor *x) { return em_cast(x, em_tensor_dtype(x)); }

/* A new f32 parameter `name` of the given shape registered on m (contents
 * uninitialised). Call inside a scope of the caller's: the scope's reference
 * is dropped at its end and the module keeps its own. NULL with an error. */
static em_tensor *new_param(em_module *m, const char *name, int ndim, const int64_t *shape,
                            em_device *device)
{
    em_tensor *t = em_empty(EM_F32, ndim, shape, device);
    if (!t || em_module_register_parameter(m, name, t) != EM_OK) return NULL;
    return t;
}

/* Ends the creation scope; destroys m and returns NULL when st failed. */
static em_module *finish(em_module *m, em_status st)
{
    em_scope_end();
    if (st == EM_OK) return m;
    em_module_destroy(m);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Linear                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct linear_cfg {
    int64_t in, out;
    bool bias;
} linear_cfg;

/* module.c: the forward function a module runs. */
EM_INTERNAL em_module_forward_fn em__module_forward_fn(const em_module *m);

static em_tensor *linear_apply(em_module *self, const em_tensor *x, bool relu)
{
    const linear_cfg *c = em_module_user_data(self);
    em_tensor *w = em_module_get_parameter(self, "weight");
    em_tensor *b = c->bias ? em_module_get_parameter(self, "bias") : NULL;
    if (!w || (c->bias && !b)) return NULL;
    return relu ? em_linear_relu(x, w, b) : em_linear(x, w, b);
}

static em_tensor *linear_forward(em_module *self, const em_tensor *x)
{
    return linear_apply(self, x, false);
}

em_module *em_nn_linear(int64_t in_features, int64_t out_features, bool bias, em_device *device,
                        em_generator *gen)
{
    if (in_features < 0 || out_features < 0) {
        em__fail(EM_ERR_INVALID_ARG,
                 "em_nn_linear: in_features (%lld) and out_features (%lld) must be >= 0",
                 (long long)in_features, (long long)out_features);
        return NULL;
    }
    em_module *m = make("Linear", linear_forward, sizeof(linear_cfg),
                        "in_features=%lld, out_features=%lld, bias=%s", (long long)in_features,
                        (long long)out_features, bias ? "True" : "False");
    if (!m) return NULL;
    linear_cfg *c = em_module_user_data(m);
    *c = (linear_cfg){in_features, out_features, bias};
    if (em_scope_begin() != EM_OK) {
        em_module_destroy(m);
        return NULL;
    }
    em_tensor *w = new_param(m, "weight", 2, (const int64_t[]){out_features, in_features}, device);
    em_tensor *b = w && bias ? new_param(m, "bias", 1, (const int64_t[]){out_features}, device)
                             : NULL;
    em_status st = w && (b || !bias) ? EM_OK : em_last_status();
    double bound = in_features > 0 ? 1.0 / sqrt((double)in_features) : 0.0;
    if (st == EM_OK) st = em_init_kaiming_uniform_(w, sqrt(5.0), gen);
    if (st == EM_OK && b) st = em_init_uniform_(b, -bound, bound, gen);
    return finish(m, st);
}

/* ------------------------------------------------------------------------ */
/* Sequential                                                                */
/* ------------------------------------------------------------------------ */

static const char sequential_tag = 0; /* user data that marks a Sequential */

static em_tensor *relu_forward(em_module *self, const em_tensor *x);

/* Children i and i + 1 of a Sequential are a built-in Linear and ReLU. */
static bool linear_relu_pair(em_module *seq, int i, int n)
{
    return i + 1 < n && em__module_forward_fn(em_module_child_at(seq, i)) == linear_forward &&
           em__module_forward_fn(em_module_child_at(seq, i + 1)) == relu_forward;
}

/* Linear + ReLU in one op, in a scope of its own as em_module_forward runs
 * a module (errors prefixed the same way). */
static em_tensor *linear_relu_forward(em_module *lin, const em_tensor *x)
{
    if (em_scope_begin() != EM_OK) return NULL;
    em_tensor *y = linear_apply(lin, x, true);
    if (y && !em_scope_keep(y)) y = NULL;
    if (!y) {
        char msg[1536];
        em_status st = em_last_status();
        snprintf(msg, sizeof msg, "%s", em_last_error());
        em__fail(st != EM_OK ? st : EM_ERR_INTERNAL, "em_module_forward(Linear): %s", msg);
    }
    em_scope_end();
    return y;
}

static em_tensor *sequential_forward(em_module *self, const em_tensor *x)
{
    int n = em_module_child_count(self);
    if (n == 0) return identity(x);
    const em_tensor *cur = x;
    em_tensor *y = NULL;
    for (int i = 0; i < n; i++) {
        if (linear_relu_pair(self, i, n)) {
            y = linear_relu_forward(em_module_child_at(self, i), cur);
            if (y) i++; /* the ReLU ran too */
        } else {
            y = em_module_forward(em_module_child_at(self, i), cur);
        }
        if (!y) {
            char msg[1536];
            snprintf(msg, sizeof msg, "%s", em_last_error());
            em__fail(em_last_status(), "child '%s': %s", em_module_child_name(self, i), msg);
            return NULL;
        }
        cur = y;
    }
    return y;
}

static em_status seq_append(em_module *seq, em_module *m)
{
    char name[24];
    snprintf(name, sizeof name, "%d", em_module_child_count(seq));
    return em_module_add_child(seq, name, m);
}

/* Destroys entries [from, n) that have no parent and were not listed before. */
static void destroy_entries(em_module *const *mods, int from, int n)
{
    for (int i = from; i < n; i++) {
        bool dup = false; /* compare pointers before touching: an earlier copy may be freed */
        for (int j = 0; j < i && !dup; j++) dup = mods[j] == mods[i];
        if (!dup && mods[i] && !em_module_parent(mods[i])) em_module_destroy(mods[i]);
    }
}

em_module *em_nn_sequential(em_module *const *modules, int n)
{
    static const char *fn = "em_nn_sequential";
    if (n < 0) {
        em__fail(EM_ERR_INVALID_ARG, "%s: n must be >= 0, got %d", fn, n);
        return NULL;
    }
    if (n > 0 && !modules) {
        em__null_arg(fn, "modules");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char what[48];
        em_status st = EM_OK;
        if (!modules[i]) {
            snprintf(what, sizeof what, "modules[%d]", i);
            st = em__null_arg(fn, what);
        } else if (em_module_parent(modules[i])) {
            st = em__fail(EM_ERR_INVALID_ARG,
                          "%s: modules[%d] (%s) already belongs to a %s module", fn, i,
                          em_module_type_name(modules[i]),
                          em_module_type_name(em_module_parent(modules[i])));
        } else {
            for (int j = 0; j < i && st == EM_OK; j++)
                if (modules[j] == modules[i])
                    st = em__fail(EM_ERR_INVALID_ARG,
                                  "%s: modules[%d] and modules[%d] are the same %s module (a "
                                  "module has one parent)",
                                  fn, j, i, em_module_type_name(modules[i]));
        }
        if (st != EM_OK) {
            destroy_entries(modules, 0, n);
            return NULL;
        }
    }
    em_module *seq = em_module_create("Sequential", sequential_forward, (void *)&sequential_tag,
                                      NULL);
    if (!seq) {
        destroy_entries(modules, 0, n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (seq_append(seq, modules[i]) != EM_OK) { /* modules[i] was destroyed */
            em_module_destroy(seq);
            destroy_entries(modules, i + 1, n);
            return NULL;
        }
    }
    return seq;
}

em_status em_nn_sequential_append(em_module *seq, em_module *m)
{
    static const char *fn = "em_nn_sequential_append";
    if (!seq) {
        em_status st = em__null_arg(fn, "seq");
        if (m && !em_module_parent(m)) em_module_destroy(m);
        return st;
    }
    if (em_module_user_data(seq) != &sequential_tag) {
        em_status st = em__fail(EM_ERR_INVALID_ARG,
                                "%s: seq is a %s module, not one made by em_nn_sequential", fn,
                                em_module_type_name(seq));
        if (m && !em_module_parent(m) && m != seq) em_module_destroy(m);
        return st;
    }
    return seq_append(seq, m);
}

/* ------------------------------------------------------------------------ */
/* Activations                                                               */
/* ------------------------------------------------------------------------ */

static em_tensor *relu_forward(em_module *self, const em_tensor *x) { return em_relu(x); }
static em_tensor *tanh_forward(em_module *self, const em_tensor *x) { return em_tanh(x); }
static em_tensor *sigmoid_forward(em_module *self, const em_tensor *x) { return em_sigmoid(x); }

typedef struct gelu_cfg {
    bool approximate_tanh;
} gelu_cfg;

static em_tensor *gelu_forward(em_module *self, const em_tensor *x)
{
    const gelu_cfg *c = em_module_user_data(self);
    return em_gelu(x, c->approximate_tanh);
}

em_module *em_nn_relu(void) { return make("ReLU", relu_forward, 0, "%s", ""); }
em_module *em_nn_tanh(void) { return make("Tanh", tanh_forward, 0, "%s", ""); }
em_module *em_nn_sigmoid(void) { return make("Sigmoid", sigmoid_forward, 0, "%s", ""); }

em_module *em_nn_gelu(bool approximate_tanh)
{
    em_module *m = make("GELU", gelu_forward, sizeof(gelu_cfg), "approximate='%s'",
                        approximate_tanh ? "tanh" : "none");
    if (m) ((gelu_cfg *)em_module_user_data(m))->approximate_tanh = approximate_tanh;
    return m;
}

/* ------------------------------------------------------------------------ */
/* Dropout                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct dropout_cfg {
    double p;
    em_generator *gen; /* borrowed; NULL = global */
} dropout_cfg;

static em_tensor *dropout_forward(em_module *self, const em_tensor *x)
{
    const dropout_cfg *c = em_module_user_data(self);
    em_dtype dt = em_tensor_dtype(x);
    if (!em_dtype_is_float(dt)) {
        em__fail(EM_ERR_DTYPE, "Dropout needs a floating-point input, got %s",
                 em_dtype_name(dt));
        return NULL;
    }
    if (!em_module_is_training(self) || c->p == 0.0) return identity(x);
    if (c->p == 1.0) return em_mul_scalar(x, 0.0);
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(x, shape);
    em_tensor *u = em_rand(c->gen, dt == EM_F64 ? EM_F64 : EM_F32, nd, shape,
                           em_tensor_device(x));
    /* keep with probability 1 - p (u uniform in [0, 1)), as torch's bernoulli_(1 - p) */
    em_tensor *noise = em_mul_scalar(em_cast(em_ge_scalar(u, c->p), dt), 1.0 / (1.0 - c->p));
    return em_mul(x, noise);
}

em_module *em_nn_dropout(double p, em_generator *gen)
{
    if (!(p >= 0.0 && p <= 1.0)) {
        em__fail(EM_ERR_INVALID_ARG, "em_nn_dropout: p must be in [0, 1], got %g", p);
        return NULL;
    }
    em_module *m = make("Dropout", dropout_forward, sizeof(dropout_cfg), "p=%g", p);
    if (m) *(dropout_cfg *)em_module_user_data(m) = (dropout_cfg){p, gen};
    return m;
}

/* ------------------------------------------------------------------------ */
/* Embedding                                                                 */
/* ------------------------------------------------------------------------ */

static em_tensor *embedding_forward(em_module *self, const em_tensor *x)
{
    em_tensor *w = em_module_get_parameter(self, "weight");
    return w ? em_embedding(w, x) : NULL;
}

em_module *em_nn_embedding(int64_t num_embeddings, int64_t embedding_dim, em_device *device,
                           em_generator *gen)
{
    if (num_embeddings < 0 || embedding_dim < 0) {
        em__fail(EM_ERR_INVALID_ARG,
                 "em_nn_embedding: num_embeddings (%lld) and embedding_dim (%lld) must be >= 0",
                 (long long)num_embeddings, (long long)embedding_dim);
        return NULL;
    }
    em_module *m = make("Embedding", embedding_forward, 0, "%lld, %lld",
                        (long long)num_embeddings, (long long)embedding_dim);
    if (!m) return NULL;
    if (em_scope_begin() != EM_OK) {
        em_module_destroy(m);
        return NULL;
    }
    em_tensor *w =
        new_param(m, "weight", 2, (const int64_t[]){num_embeddings, embedding_dim}, device);
    em_status st = w ? em_init_normal_(w, 0.0, 1.0, gen) : em_last_status();
    return finish(m, st);
}

/* ------------------------------------------------------------------------ */
/* LayerNorm                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct layer_norm_cfg {
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    double eps;
    bool affine;
} layer_norm_cfg;

static int shape_str(char *buf, size_t cap, int nd, const int64_t *shape)
{
    int n = snprintf(buf, cap, "[");
    for (int i = 0; i < nd && (size_t)n < cap; i++)
        n += snprintf(buf + n, cap - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if ((size_t)n < cap) n += snprintf(buf + n, cap - (size_t)n, "]");
    return n;
}

static em_tensor *layer_norm_forward(em_module *self, const em_tensor *x)
{
    const layer_norm_cfg *c = em_module_user_data(self);
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(x, shape);
    bool fits = nd >= c->ndim;
    for (int i = 0; fits && i < c->ndim; i++) fits = shape[nd - c->ndim + i] == c->shape[i];
    if (!fits) {
        char want[160], got[160];
        shape_str(want, sizeof want, c->ndim, c->shape);
        shape_str(got, sizeof got, nd, shape);
        em__fail(EM_ERR_SHAPE,
                 "LayerNorm over the last %d dim%s %s: the input's shape %s (%s) does not end "
                 "with it",
                 c->ndim, c->ndim > 1 ? "s" : "", want, got, em_dtype_name(em_tensor_dtype(x)));
        return NULL;
    }
    int dims[EM_MAX_DIMS];
    for (int i = 0; i < c->ndim; i++) dims[i] = i - c->ndim;
    em_tensor *mean = em_mean(x, dims, c->ndim, true);
    em_tensor *var = em_var(x, dims, c->ndim, false, true);
    em_tensor *y = em_mul(em_sub(x, mean), em_rsqrt(em_add_scalar(var, c->eps)));
    if (!c->affine) return y;
    em_tensor *w = em_module_get_parameter(self, "weight");
    em_tensor *b = em_module_get_parameter(self, "bias");
    return em_add(em_mul(y, w), b);
}

em_module *em_nn_layer_norm(int ndim, const int64_t *normalized_shape, double eps,
                            bool elementwise_affine, em_device *device)
{
    static const char *fn = "em_nn_layer_norm";
    if (ndim < 1 || ndim > EM_MAX_DIMS) {
        em__fail(EM_ERR_INVALID_ARG, "%s: ndim must be in [1, %d], got %d", fn, EM_MAX_DIMS,
                 ndim);
        return NULL;
    }
    if (!normalized_shape) {
        em__null_arg(fn, "normalized_shape");
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        if (normalized_shape[i] < 0) {
            em__fail(EM_ERR_INVALID_ARG, "%s: normalized_shape[%d] is %lld (must be >= 0)", fn,
                     i, (long long)normalized_shape[i]);
            return NULL;
        }
    }
    if (!(eps >= 0.0)) {
        em__fail(EM_ERR_INVALID_ARG, "%s: eps must be >= 0, got %g", fn, eps);
        return NULL;
    }
    char sh[200];
    int n = snprintf(sh, sizeof sh, "(");
    for (int i = 0; i < ndim; i++)
        n += snprintf(sh + n, sizeof sh - (size_t)n, "%lld%s", (long long)normalized_shape[i],
                      ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    snprintf(sh + n, sizeof sh - (size_t)n, ")");
    em_module *m = make("LayerNorm", layer_norm_forward, sizeof(layer_norm_cfg),
                        "%s, eps=%g, elementwise_affine=%s", sh, eps,
                        elementwise_affine ? "True" : "False");
    if (!m) return NULL;
    layer_norm_cfg *c = em_module_user_data(m);
    c->ndim = ndim;
    memcpy(c->shape, normalized_shape, (size_t)ndim * sizeof *normalized_shape);
    c->eps = eps;
    c->affine = elementwise_affine;
    if (!elementwise_affine) return m;
    if (em_scope_begin() != EM_OK) {
        em_module_destroy(m);
        return NULL;
    }
    em_tensor *w = new_param(m, "weight", ndim, normalized_shape, device);
    em_tensor *b = w ? new_param(m, "bias", ndim, normalized_shape, device) : NULL;
    em_status st = w && b ? em_init_ones_(w) : em_last_status();
    if (st == EM_OK) st = em_init_zeros_(b);
    return finish(m, st);
}

/* ------------------------------------------------------------------------ */
/* Flatten                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct flatten_cfg {
    int start, end;
} flatten_cfg;

static em_tensor *flatten_forward(em_module *self, const em_tensor *x)
{
    const flatten_cfg *c = em_module_user_data(self);
    return em_flatten(x, c->start, c->end);
}

em_module *em_nn_flatten(int start_dim, int end_dim)
{
    em_module *m = make("Flatten", flatten_forward, sizeof(flatten_cfg),
                        "start_dim=%d, end_dim=%d", start_dim, end_dim);
    if (m) *(flatten_cfg *)em_module_user_data(m) = (flatten_cfg){start_dim, end_dim};
    return m;
}
