/*
 * autograd.c — graph nodes and the tensor-level autograd API.
 *
 * Nodes: creation from an op's inputs, saving tensors (with the version of
 * their storage, to catch in-place changes), attaching to the op's output,
 * and release. Release is iterative (a per-thread work list), so freeing
 * the graph of a long chain of ops does not recurse once per node.
 *
 * API: requires_grad_, is_leaf, grad / set_grad / zero_grad, detach,
 * grad_fn name, grad mode (per thread, as torch.no_grad) and anomaly mode.
 * The engine (em_backward, em_autograd_grad) is in autograd_engine.c.
 */
#include "autograd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local bool tl_grad_disabled; /* default: grad mode on */
static atomic_bool g_anomaly;
static atomic_uint_fast64_t g_node_seq;

bool em__grad_enabled(void) { return !tl_grad_disabled; }

bool em_set_grad_enabled(bool enabled)
{
    bool prev = !tl_grad_disabled;
    tl_grad_disabled = !enabled;
    return prev;
}

bool em_is_grad_enabled(void) { return !tl_grad_disabled; }

void em_set_anomaly_enabled(bool enabled) { atomic_store(&g_anomaly, enabled); }

bool em_is_anomaly_enabled(void) { return atomic_load(&g_anomaly); }

/* ------------------------------------------------------------------------ */
/* Nodes                                                                     */
/* ------------------------------------------------------------------------ */

em_node *em__node_new(const char *name, em_backward_fn fn, const em_tensor *const *inputs, int n)
{
    em_node *node = calloc(1, sizeof *node + (size_t)n * sizeof(em_edge));
    if (!node) {
        em__fail(EM_ERR_OUT_OF_MEMORY, "out of host memory recording the autograd node of %s",
                 name);
        return NULL;
    }
    atomic_init(&node->refcount, 1);
    node->name = name;
    node->backward = fn;
    node->seq = atomic_fetch_add(&g_node_seq, 1);
    node->n_edges = n;
    for (int i = 0; i < n; i++) {
        const em_tensor *t = inputs[i];
        em_edge *e = &node->edges[i];
        if (!t) continue;
        e->dtype = t->dtype;
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        if (!t->requires_grad) continue;
        e->needed = true;
        if (t->grad_fn) {
            e->node = t->grad_fn;
            em__node_retain(e->node);
        } else {
            e->leaf = em_tensor_retain((em_tensor *)t);
        }
    }
    return node;
}

void em__node_save(em_node *node, int slot, const em_tensor *t)
{
    em_saved *s = &node->saved[slot];
    em_tensor_release(s->t);
    s->t = t ? em_tensor_retain((em_tensor *)t) : NULL;
    s->version = t ? t->storage->version : 0;
    s->is_output = false;
}

em_status em__node_save_output(em_node *node, int slot, const em_tensor *out)
{
    em_tensor *alias = em__make_view(out, out->ndim, out->shape, out->strides, out->offset);
    if (!alias) return em_last_status();
    em_saved *s = &node->saved[slot];
    em_tensor_release(s->t);
    s->t = alias;
    s->version = out->storage->version;
    s->is_output = true;
    return EM_OK;
}

void em__node_attach(em_node *node, em_tensor *out)
{
    node->device = out->storage->device;
    node->out_dtype = out->dtype;
    node->out_ndim = out->ndim;
    memcpy(node->out_shape, out->shape, sizeof(int64_t) * (size_t)out->ndim);
    out->grad_fn = node; /* takes the creation reference */
    out->requires_grad = true;
}

em_tensor *em__record(em_tensor *out, const char *name, em_backward_fn fn,
                      const em_tensor *const *inputs, int n, const em_node_args *args)
{
    if (!out) return NULL;
    em_node *node = em__node_new(name, fn, inputs, n);
    if (!node) {
        em_tensor_release(out);
        return NULL;
    }
    if (args) node->args = *args;
    em__node_attach(node, out);
    return out;
}

em_tensor *em__record_fail(em_tensor *out, em_node *node)
{
    em__node_release(node);
    em_tensor_release(out);
    return NULL;
}

void em__node_retain(em_node *node)
{
    if (node) atomic_fetch_add_explicit(&node->refcount, 1, memory_order_relaxed);
}

void em__node_release_saved(em_node *node)
{
    for (int i = 0; i < EM_NODE_MAX_SAVED; i++) {
        em_tensor *t = node->saved[i].t;
        node->saved[i].t = NULL;
        em_tensor_release(t);
    }
    node->released = true;
}

/* Nodes whose count reached zero wait here while one is being freed, so a
 * chain of nodes is freed by a loop rather than by recursion. */
typedef struct node_worklist {
    em_node **items;
    size_t count, cap;
    bool draining;
} node_worklist;

static _Thread_local node_worklist tl_dead;

static void free_node_contents(em_node *node)
{
    for (int i = 0; i < EM_NODE_MAX_SAVED; i++) em_tensor_release(node->saved[i].t);
    for (int i = 0; i < node->n_edges; i++) {
        em__node_release(node->edges[i].node);
        em_tensor_release(node->edges[i].leaf);
    }
    free(node);
}

void em__node_release(em_node *node)
{
    if (!node) return;
    if (atomic_fetch_sub_explicit(&node->refcount, 1, memory_order_acq_rel) != 1) return;
    node_worklist *w = &tl_dead;
    if (w->draining) {
        if (w->count == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 64;
            em_node **items = realloc(w->items, cap * sizeof *items);
            if (!items) { /* no room to defer: free it right here (recursion) */
                free_node_contents(node);
                return;
            }
            w->items = items;
            w->cap = cap;
        }
        w->items[w->count++] = node;
        return;
    }
    w->draining = true;
    free_node_contents(node);
    while (w->count > 0) free_node_contents(w->items[--w->count]);
    w->draining = false;
    free(w->items); /* keep no memory between graphs */
    w->items = NULL;
    w->cap = 0;
}

em_tensor *em__node_saved(em_node *node, int slot)
{
    em_saved *s = &node->saved[slot];
    if (node->released || !s->t) {
        em__fail(EM_ERR_STATE,
                 "the graph behind the backward of '%s' was already freed by an earlier "
                 "backward; pass retain_graph = true to the first backward to run it twice",
                 node->name);
        return NULL;
    }
    if (s->t->storage->version != s->version) {
        char buf[160];
        em__fail(EM_ERR_STATE,
                 "a tensor that the backward of '%s' needs (%s %s) was modified by an in-place "
                 "op after '%s' used it (its version is %u, it was %u); modify a copy (em_clone) "
                 "instead",
                 node->name, s->is_output ? "its output" : "an input",
                 em__describe(s->t, buf, sizeof buf), node->name, s->t->storage->version,
                 s->version);
        return NULL;
    }
    em_tensor *t;
    if (s->is_output && em__grad_enabled()) {
        /* create_graph: the output with its history, so that formulas using
         * it are differentiated through this node. */
        t = em__make_view(s->t, s->t->ndim, s->t->shape, s->t->strides, s->t->offset);
        if (!t) return NULL;
        em__node_retain(node);
        t->grad_fn = node;
        t->requires_grad = true;
    } else {
        t = em_tensor_retain(s->t);
    }
    return em__own(t);
}

em_status em__ag_check_inplace(const char *name, const em_tensor *self, const em_tensor *other)
{
    if (!em__grad_enabled()) return EM_OK;
    const em_tensor *who = self->requires_grad ? self : (other && other->requires_grad ? other : NULL);
    if (!who) return EM_OK;
    char buf[160];
    return em__fail(EM_ERR_STATE,
                    "%s: %s (%s%s) requires grad and grad mode is on; autograd does not record "
                    "in-place ops. Use the out-of-place op, or wrap the update in "
                    "em_set_grad_enabled(false) as torch.no_grad() does",
                    name, who == self ? "the tensor modified in place" : "the other operand",
                    who->grad_fn ? "" : "a leaf, ", em__describe(who, buf, sizeof buf));
}

void em__ag_tensor_free(em_tensor *t)
{
    em__node_release(t->grad_fn);
    t->grad_fn = NULL;
    em_tensor_release(t->grad);
    t->grad = NULL;
}

/* ------------------------------------------------------------------------ */
/* Tensor-level API                                                          */
/* ------------------------------------------------------------------------ */

em_status em_requires_grad_(em_tensor *t, bool requires_grad)
{
    static const char *name = "em_requires_grad_";
    if (!t) return em__null_arg(name, "t");
    char buf[160];
    if (t->grad_fn) {
        if (requires_grad) return EM_OK;
        return em__fail(EM_ERR_STATE,
                        "%s: %s is the result of '%s', not a leaf; only leaves can stop "
                        "requiring grad (use em_detach for a copy without history)",
                        name, em__describe(t, buf, sizeof buf), t->grad_fn->name);
    }
    if (requires_grad && !em_dtype_is_float(t->dtype))
        return em__fail(EM_ERR_DTYPE,
                        "%s: only floating-point tensors can require gradients, not %s", name,
                        em__describe(t, buf, sizeof buf));
    t->requires_grad = requires_grad;
    return EM_OK;
}

bool em_requires_grad(const em_tensor *t) { return t && t->requires_grad; }

bool em_is_leaf(const em_tensor *t) { return t && !t->grad_fn; }

const char *em_grad_fn_name(const em_tensor *t) { return t && t->grad_fn ? t->grad_fn->name : NULL; }

em_tensor *em_grad(const em_tensor *t)
{
    if (!t) {
        em__null_arg("em_grad", "t");
        return NULL;
    }
    if (!t->grad) return NULL;
    return em__own(em_tensor_retain(t->grad));
}

em_status em_set_grad(em_tensor *t, const em_tensor *grad)
{
    static const char *name = "em_set_grad";
    if (!t) return em__null_arg(name, "t");
    if (grad) {
        char a[160], b[160];
        bool same_shape = grad->ndim == t->ndim &&
                          !memcmp(grad->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        if (!same_shape || grad->dtype != t->dtype)
            return em__fail(EM_ERR_SHAPE, "%s: the gradient %s does not match the tensor %s",
                            name, em__describe(grad, a, sizeof a), em__describe(t, b, sizeof b));
        if (grad->storage->device != t->storage->device)
            return em__fail(EM_ERR_DEVICE, "%s: the gradient is on %s, the tensor on %s", name,
                            grad->storage->device->name, t->storage->device->name);
    }
    em_tensor *old = t->grad;
    t->grad = grad ? em_tensor_retain((em_tensor *)grad) : NULL;
    em_tensor_release(old);
    return EM_OK;
}

em_status em_zero_grad(em_tensor *t)
{
    if (!t) return em__null_arg("em_zero_grad", "t");
    if (!t->grad) return EM_OK;
    if (t->grad->grad_fn) { /* a create_graph gradient: drop it, keep nothing alive */
        return em_set_grad(t, NULL);
    }
    em_status st = em__fill(t->grad, 0.0);
    if (st == EM_OK) t->grad->storage->version++;
    return st;
}

em_tensor *em_detach(const em_tensor *t)
{
    if (!t) {
        em__null_arg("em_detach", "t");
        return NULL;
    }
    return em__own(em__make_view(t, t->ndim, t->shape, t->strides, t->offset));
}
