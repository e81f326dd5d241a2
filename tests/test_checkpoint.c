/*
 * test_checkpoint.c — a model and its optimizer saved together in one
 * safetensors file and restored into fresh objects continue training
 * exactly as the originals (issue [3]: "their state saved and loaded with
 * the model").
 *
 * Two identical runs of an MLP with Adam: run A trains 10 steps straight;
 * run B trains 5, saves the model's state dict and the optimizer's state
 * dict (keys prefixed "optim.") into one file, builds a NEW model (other
 * random weights) and a NEW optimizer, loads both from the file, and trains
 * the remaining 5 steps. The final parameters must be bit-identical.
 * Also: loading the checkpoint into a model of another shape names the
 * mismatch and changes nothing.
 */
#include "test_util.h"

#include <ember_io.h>
#include <ember_nn.h>
#include <ember_optim.h>

typedef struct run {
    em_module *model;
    em_tensor_dict *params;
    em_optimizer *opt;
} run;

static em_module *make_model(int64_t hidden)
{
    return em_nn_sequential((em_module *[]){em_nn_linear(6, hidden, true, tu_dev, NULL), em_nn_tanh(),
                                            em_nn_linear(hidden, 3, true, tu_dev, NULL)},
                            3);
}

static int run_init(run *r, uint64_t seed)
{
    em_manual_seed(seed);
    r->model = make_model(8);
    r->params = r->model ? em_module_named_parameters(r->model) : NULL;
    if (!r->params) return 0;
    int n = em_tensor_dict_count(r->params);
    em_tensor *p[8];
    em_scope_begin();
    for (int i = 0; i < n; i++) p[i] = em_tensor_dict_at(r->params, i);
    em_adam_options o = em_adam_defaults(0.01);
    r->opt = em_adam_create(n, p, &o);
    em_scope_end();
    return r->opt != NULL;
}

static void run_free(run *r)
{
    em_optimizer_destroy(r->opt);
    em_tensor_dict_destroy(r->params);
    em_module_destroy(r->model);
}

static void train(run *r, const em_tensor *x, const em_tensor *y, int steps)
{
    for (int s = 0; s < steps; s++) {
        em_scope_begin();
        em_optimizer_zero_grad(r->opt, true);
        em_tensor *loss = em_cross_entropy(em_module_forward(r->model, x), y, EM_REDUCTION_MEAN,
                                           EM_IGNORE_INDEX_DEFAULT, 0.0);
        CHECK_OK(em_backward(loss, NULL, false, false));
        CHECK_OK(em_optimizer_step(r->opt));
        em_scope_end();
    }
}

/* model state + optimizer state ("optim." keys, metadata kept) in one dict */
static em_tensor_dict *checkpoint_dict(const run *r)
{
    em_tensor_dict *d = em_module_state_dict(r->model), *o = em_optimizer_state_dict(r->opt);
    if (!d || !o) return NULL;
    char key[256];
    em_scope_begin();
    for (int i = 0; i < em_tensor_dict_count(o); i++) {
        snprintf(key, sizeof key, "optim.%s", em_tensor_dict_name(o, i));
        em_tensor_dict_set(d, key, em_tensor_dict_at(o, i));
    }
    em_scope_end();
    for (int i = 0; i < em_tensor_dict_meta_count(o); i++) {
        const char *k = em_tensor_dict_meta_key(o, i);
        snprintf(key, sizeof key, "optim.%s", k);
        em_tensor_dict_set_meta(d, key, em_tensor_dict_get_meta(o, k));
    }
    em_tensor_dict_destroy(o);
    return d;
}

/* Splits a loaded checkpoint back into the model's and the optimizer's dicts. */
static void split_dict(const em_tensor_dict *all, em_tensor_dict *model, em_tensor_dict *optim)
{
    em_scope_begin();
    for (int i = 0; i < em_tensor_dict_count(all); i++) {
        const char *k = em_tensor_dict_name(all, i);
        if (!strncmp(k, "optim.", 6)) em_tensor_dict_set(optim, k + 6, em_tensor_dict_at(all, i));
        else em_tensor_dict_set(model, k, em_tensor_dict_at(all, i));
    }
    em_scope_end();
    for (int i = 0; i < em_tensor_dict_meta_count(all); i++) {
        const char *k = em_tensor_dict_meta_key(all, i);
        if (!strncmp(k, "optim.", 6)) em_tensor_dict_set_meta(optim, k + 6, em_tensor_dict_get_meta(all, k));
    }
}

int main(void)
{
    tu_init("test_checkpoint");
    char path[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/ember-test-checkpoint-%ld.safetensors", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());

    em_scope_begin();
    em_generator *gen = em_generator_create(tu_seed);
    em_tensor *x = em_randn(gen, EM_F32, EM_SHAPE(16, 6), tu_dev);
    em_tensor *y = em_randint(gen, 0, 3, EM_I64, EM_SHAPE(16), tu_dev);
    em_generator_destroy(gen);

    run a, b, c;
    CHECK(run_init(&a, 5) && run_init(&b, 5));
    train(&a, x, y, 10);
    train(&b, x, y, 5);
    em_tensor_dict *ck = checkpoint_dict(&b);
    CHECK(ck != NULL);
    CHECK_OK(em_save_safetensors(path, ck));
    em_tensor_dict_destroy(ck);
    run_free(&b);

    /* fresh objects with other weights, restored from the file */
    CHECK(run_init(&c, 99));
    em_tensor_dict *all = em_load_safetensors(path, tu_dev);
    em_tensor_dict *md = em_tensor_dict_create(), *od = em_tensor_dict_create();
    CHECK(all != NULL);
    if (all) {
        split_dict(all, md, od);
        printf("checkpoint: %d tensors (%d model, %d optimizer), %d metadata entries\n",
               em_tensor_dict_count(all), em_tensor_dict_count(md), em_tensor_dict_count(od),
               em_tensor_dict_meta_count(all));
        CHECK_OK(em_module_load_state_dict(c.model, md, true));
        CHECK_OK(em_optimizer_load_state_dict(c.opt, od));
    }
    train(&c, x, y, 5);
    /* bit-identical parameters */
    int identical = 1;
    for (int i = 0; i < em_tensor_dict_count(a.params); i++) {
        em_tensor *pa = em_tensor_dict_at(a.params, i), *pc = em_tensor_dict_at(c.params, i);
        em_tensor *diff = em_max(em_abs(em_sub(pa, pc)), NULL, 0, false);
        double d = -1;
        CHECK_OK(em_tensor_item(diff, &d));
        if (d != 0) identical = 0;
        printf("%-10s max |A - restored| = %g\n", em_tensor_dict_name(a.params, i), d);
    }
    CHECKF(identical, "training resumed from the checkpoint differs from the uninterrupted run");

    /* a model of another shape: refused, naming the mismatch, unchanged */
    em_module *other = make_model(5);
    em_tensor *before = em_clone(em_module_get_parameter(other, "0.weight"));
    CHECK_STATUS(em_module_load_state_dict(other, md, true), EM_ERR_SHAPE);
    em_clear_error();
    em_module_load_state_dict(other, md, true);
    CHECKF(strstr(em_last_error(), "0.weight") != NULL, "message does not name the key: %s",
           em_last_error());
    em_clear_error();
    em_tensor *after = em_module_get_parameter(other, "0.weight");
    double same = -1;
    em_tensor_item(em_max(em_abs(em_sub(before, after)), NULL, 0, false), &same);
    CHECKF(same == 0, "a refused load changed the model");

    em_module_destroy(other);
    em_tensor_dict_destroy(all);
    em_tensor_dict_destroy(md);
    em_tensor_dict_destroy(od);
    run_free(&a);
    run_free(&c);
    em_scope_end();
    remove(path);
    return tu_finish();
}
