/*
 * autograd_engine.c — backpropagation: em_backward and em_autograd_grad.
 *
 * One pass:
 *   1. collect the nodes reachable from the outputs' grad_fns and count,
 *      for each, how many edges of other collected nodes point at it;
 *   2. (functional form) mark the nodes that lead to a requested input, so
 *      that nothing else runs;
 *   3. run the nodes whose count reached zero, newest first (a heap on the
 *      creation number), each receiving the sum of the gradients sent to it;
 *      every gradient a formula returns is reduced to its input's shape
 *      (broadcast dims summed) and cast to its dtype, then sent along the
 *      edge: to another node's sum, to a leaf's .grad, or to the caller;
 *   4. unless retain_graph, drop each node's saved tensors once it ran.
 *
 * Grad mode is on during the pass only for create_graph, which is what makes
 * the formulas record a graph of their own. All intermediate tensors live in
 * a scope opened here; the results are handed to the caller's scope.
 */
#include "autograd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers shared with the formulas                                          */
/* ------------------------------------------------------------------------ */

em_tensor *em__sum_to_shape(em_tensor *g, int ndim, const int64_t *shape)
{
    if (!g) return NULL;
    if (g->ndim == ndim && !memcmp(g->shape, shape, sizeof(int64_t) * (size_t)ndim))
        return em__own(em_tensor_retain(g));
    if (g->ndim < ndim || em__numel(ndim, shape) > g->numel) /* a broadcastable smaller one */
        return em_contiguous(em_expand(g, ndim, shape));
    int lead = g->ndim - ndim, dims[EM_MAX_DIMS], nd = 0;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1)) dims[nd++] = d;
    em_tensor *s = nd ? em_sum(g, dims, nd, true) : g;
    return em_reshape(s, ndim, shape);
}

em_tensor *em__scalar_like(const em_tensor *g, double v)
{
    return em_full(v, g->dtype, 0, NULL, g->storage->device);
}

/* ------------------------------------------------------------------------ */
/* The graph of one pass                                                     */
/* ------------------------------------------------------------------------ */

typedef struct graph {
    em_node **nodes;        /* collected nodes                               */
    int *deps;              /* edges from collected nodes pointing at each   */
    em_tensor **buf;        /* the gradient summed so far, strong refs       */
    bool *useful;           /* leads to a requested input (functional form)  */
    int count, cap;
    /* pointer -> index, open addressing, size a power of two */
    em_node **hkeys;
    int *hvals;
    int hcap;
} graph;

static size_t hash_ptr(const void *p) { return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull; }

static int graph_find(const graph *g, const em_node *n)
{
    if (!g->hcap) return -1;
    size_t mask = (size_t)g->hcap - 1;
    for (size_t h = hash_ptr(n) & mask;; h = (h + 1) & mask) {
        if (!g->hkeys[h]) return -1;
        if (g->hkeys[h] == n) return g->hvals[h];
    }
}

static bool graph_rehash(graph *g, int hcap)
{
    em_node **keys = calloc((size_t)hcap, sizeof *keys);
    int *vals = calloc((size_t)hcap, sizeof *vals);
    if (!keys || !vals) {
        free(keys), free(vals);
        return false;
    }
    size_t mask = (size_t)hcap - 1;
    for (int i = 0; i < g->count; i++) {
        size_t h = hash_ptr(g->nodes[i]) & mask;
        while (keys[h]) h = (h + 1) & mask;
        keys[h] = g->nodes[i];
        vals[h] = i;
    }
    free(g->hkeys), free(g->hvals);
    g->hkeys = keys, g->hvals = vals, g->hcap = hcap;
    return true;
}

/* Adds n; returns its index, or -1 when out of memory. */
static int graph_add(graph *g, em_node *n)
{
    if (g->count == g->cap) {
        int cap = g->cap ? g->cap * 2 : 32;
        em_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (nodes) g->nodes = nodes;
        int *deps = realloc(g->deps, (size_t)cap * sizeof *deps);
        if (deps) g->deps = deps;
        em_tensor **buf = realloc(g->buf, (size_t)cap * sizeof *buf);
        if (buf) g->buf = buf;
        bool *useful = realloc(g->useful, (size_t)cap * sizeof *useful);
        if (useful) g->useful = useful;
        if (!nodes || !deps || !buf || !useful) return -1;
        g->cap = cap;
    }
    if ((g->count + 1) * 2 > g->hcap && !graph_rehash(g, g->hcap ? g->hcap * 2 : 64)) return -1;
    int i = g->count++;
    g->nodes[i] = n;
    g->deps[i] = 0;
    g->buf[i] = NULL;
    g->useful[i] = true;
    size_t mask = (size_t)g->hcap - 1, h = hash_ptr(n) & mask;
    while (g->hkeys[h]) h = (h + 1) & mask;
    g->hkeys[h] = n;
    g->hvals[h] = i;
    return i;
}

static void graph_free(graph *g)
{
    for (int i = 0; i < g->count; i++) em_tensor_release(g->buf[i]);
    free(g->nodes), free(g->deps), free(g->buf), free(g->useful);
    free(g->hkeys), free(g->hvals);
}

/* Collects every node reachable from the roots and counts dependencies. */
static em_status graph_collect(graph *g, em_node *const *roots, int n_roots)
{
    int head = 0;
    for (int r = 0; r < n_roots; r++)
        if (roots[r] && graph_find(g, roots[r]) < 0 && graph_add(g, roots[r]) < 0) goto oom;
    while (head < g->count) { /* breadth-first over the growing list */
        em_node *n = g->nodes[head++];
        for (int e = 0; e < n->n_edges; e++) {
            em_node *c = n->edges[e].node;
            if (!c) continue;
            int ci = graph_find(g, c);
            if (ci < 0 && (ci = graph_add(g, c)) < 0) goto oom;
            g->deps[ci]++;
        }
    }
    return EM_OK;
oom:
    return em__fail(EM_ERR_OUT_OF_MEMORY, "out of host memory collecting the autograd graph");
}

static bool is_input_node(const em_node *n, const em_tensor *const *inputs, int n_inputs)
{
    for (int k = 0; k < n_inputs; k++)
        if (inputs[k]->grad_fn == n) return true;
    return false;
}

/* Functional form: a node is useful (must run) when it has an edge to a
 * useful node, to the grad_fn of a requested input or to a requested leaf.
 * The grad_fn of a requested input only collects its gradient (run_node
 * captures it before deciding to run): running it would be wasted work and
 * would fail, or free its saved tensors, for a part of the graph that an
 * earlier backward already freed. Nodes are in breadth-first order from the
 * roots, so one backward sweep over the list is not enough in general (an
 * edge may point to an earlier node); iterate to a fixed point, which takes
 * few sweeps on real graphs. */
static void graph_mark_useful(graph *g, const em_tensor *const *inputs, int n_inputs)
{
    for (int i = 0; i < g->count; i++) g->useful[i] = false;
    bool changed = true;
    while (changed) {
        changed = false;
        for (int i = g->count - 1; i >= 0; i--) {
            if (g->useful[i]) continue;
            em_node *n = g->nodes[i];
            for (int e = 0; e < n->n_edges && !g->useful[i]; e++) {
                const em_edge *ed = &n->edges[e];
                if (ed->node) {
                    int ci = graph_find(g, ed->node);
                    if (ci >= 0 && (g->useful[ci] || is_input_node(ed->node, inputs, n_inputs)))
                        g->useful[i] = true;
                } else if (ed->leaf) {
                    for (int k = 0; k < n_inputs; k++)
                        if (inputs[k] == ed->leaf) g->useful[i] = true;
                }
            }
            changed |= g->useful[i];
        }
    }
}

/* ---------------- a max-heap of ready node indices by creation number --- */

typedef struct ready_heap {
    int *items;
    int count;
} ready_heap;

static bool heap_less(const graph *g, int a, int b) { return g->nodes[a]->seq < g->nodes[b]->seq; }

static void heap_push(ready_heap *h, const graph *g, int v)
{
    int i = h->count++;
    h->items[i] = v;
    while (i > 0 && heap_less(g, h->items[(i - 1) / 2], h->items[i])) {
        int p = (i - 1) / 2, t = h->items[p];
        h->items[p] = h->items[i], h->items[i] = t, i = p;
    }
}

static int heap_pop(ready_heap *h, const graph *g)
{
    int top = h->items[0];
    h->items[0] = h->items[--h->count];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->count && heap_less(g, h->items[m], h->items[l])) m = l;
        if (r < h->count && heap_less(g, h->items[m], h->items[r])) m = r;
        if (m == i) break;
        int t = h->items[m];
        h->items[m] = h->items[i], h->items[i] = t, i = m;
    }
    return top;
}

/* ------------------------------------------------------------------------ */
/* One pass                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct pass {
    const char *name;            /* "em_backward" or "em_autograd_grad"     */
    bool create_graph, retain_graph;
    bool functional;             /* capture into `captured`, leave .grad    */
    const em_tensor *const *inputs;
    int n_inputs;
    em_tensor **captured;        /* strong refs, one per input              */
} pass;

/* *slot += g (strong references; g borrowed). */
static em_status accumulate(em_tensor **slot, em_tensor *g)
{
    if (!*slot) {
        *slot = em_tensor_retain(g);
        return EM_OK;
    }
    em_tensor *sum = em_add(*slot, g);
    if (!sum) return em_last_status();
    em_tensor_release(*slot);
    *slot = em_tensor_retain(sum);
    return EM_OK;
}

/* Adds g to a leaf's .grad (em_backward). */
/* True when g is a dense gradient nobody else can see: its only reference
 * is the engine's scope and its storage has no other view, no history. */
static bool sole_owner(const em_tensor *g)
{
    return atomic_load(&g->refcount) == 1 && atomic_load(&g->storage->refcount) == 1 &&
           !g->grad_fn && !g->requires_grad && g->offset == 0 && em_tensor_is_contiguous(g);
}

static em_status accumulate_leaf(const pass *ps, em_tensor *leaf, em_tensor *g)
{
    if (!leaf->grad && sole_owner(g)) { /* a fresh result of a formula: keep it */
        leaf->grad = em_tensor_retain(g);
        return EM_OK;
    }
    if (!leaf->grad) {
        /* a private, dense copy the optimizer may update in place, never g
         * itself (g may be the caller's grad_output or another node's
         * gradient); in a create_graph pass em_clone records, so the copy
         * keeps g's graph */
        em_tensor *c = em_clone(g);
        if (!c) return em_last_status();
        leaf->grad = em_tensor_retain(c);
        return EM_OK;
    }
    if (ps->create_graph || leaf->grad->requires_grad)
        return accumulate(&leaf->grad, g); /* out of place: keep the graph intact */
    em_status st = em_add_(leaf->grad, g);
    return st;
}

static em_status check_finite(const pass *ps, const em_node *node, int input, const em_tensor *g)
{
    double *v = malloc((size_t)(g->numel > 0 ? g->numel : 1) * sizeof *v);
    if (!v) return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: anomaly check: out of memory", ps->name);
    em_status st = em_tensor_read_f64(g, v, (size_t)g->numel);
    int64_t bad = -1;
    for (int64_t i = 0; st == EM_OK && i < g->numel && bad < 0; i++)
        if (!isfinite(v[i])) bad = i;
    double val = bad >= 0 ? v[bad] : 0;
    free(v);
    if (st != EM_OK) return st;
    if (bad < 0) return EM_OK;
    char buf[160];
    return em__fail(EM_ERR_STATE,
                    "%s (anomaly mode): the backward of '%s' returned %s in the gradient of its "
                    "input %d (%s, element %lld)",
                    ps->name, node->name, isnan(val) ? "NaN" : "Inf", input,
                    em__describe(g, buf, sizeof buf), (long long)bad);
}

static em_status run_node(const pass *ps, graph *gr, int idx, ready_heap *heap)
{
    em_node *node = gr->nodes[idx];
    em_tensor *g = gr->buf[idx];
    em_status st = EM_OK;
    if (ps->functional) {
        for (int k = 0; k < ps->n_inputs; k++)
            if (g && ps->inputs[k]->grad_fn == node && (st = accumulate(&ps->captured[k], g)))
                return st;
    }
    bool run = g && gr->useful[idx];
    em_tensor *grad_in_small[8] = {0};
    em_tensor **grad_in = grad_in_small;
    if (run && node->n_edges > 8 && !(grad_in = calloc((size_t)node->n_edges, sizeof *grad_in)))
        return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", ps->name);
    if (run) {
        if (node->released) {
            st = em__fail(EM_ERR_STATE,
                          "%s: trying to backward through the graph a second time: the backward "
                          "of '%s' already ran and freed what it saved. Pass retain_graph = true "
                          "to the first backward to run it twice",
                          ps->name, node->name);
        } else {
            st = node->backward(node, g, grad_in);
            if (st != EM_OK && !strstr(em_last_error(), node->name))
                em__error_prefix("%s: in the backward of '%s': ", ps->name, node->name);
        }
    }
    /* only a node that ran has gradients (grad_in_small holds 8 entries) */
    for (int e = 0; run && st == EM_OK && e < node->n_edges; e++) {
        em_edge *ed = &node->edges[e];
        if (!ed->needed || !grad_in[e]) continue;
        /* reduce to the input's shape and dtype (no new reference when it
         * already matches, so accumulate_leaf can see a sole owner) */
        em_tensor *gi = grad_in[e];
        if (gi->ndim != ed->ndim || memcmp(gi->shape, ed->shape, sizeof(int64_t) * (size_t)ed->ndim))
            gi = em__sum_to_shape(gi, ed->ndim, ed->shape);
        if (gi && gi->dtype != ed->dtype) gi = em_cast(gi, ed->dtype);
        if (!gi) {
            st = em_last_status();
            break;
        }
        if (em_is_anomaly_enabled() && (st = check_finite(ps, node, e, gi))) break;
        if (ed->node) {
            int ci = graph_find(gr, ed->node);
            if (ci >= 0) st = accumulate(&gr->buf[ci], gi);
        } else if (ed->leaf) {
            if (ps->functional) {
                for (int k = 0; st == EM_OK && k < ps->n_inputs; k++)
                    if (ps->inputs[k] == ed->leaf) st = accumulate(&ps->captured[k], gi);
            } else {
                st = accumulate_leaf(ps, ed->leaf, gi);
            }
        }
    }
    if (grad_in != grad_in_small) free(grad_in);
    if (st != EM_OK) return st;
    if (run && !ps->retain_graph) em__node_release_saved(node);
    em_tensor_release(gr->buf[idx]);
    gr->buf[idx] = NULL;
    /* the children this node fed may now be complete */
    for (int e = 0; e < node->n_edges; e++) {
        if (!node->edges[e].node) continue;
        int ci = graph_find(gr, node->edges[e].node);
        if (ci >= 0 && --gr->deps[ci] == 0) heap_push(heap, gr, ci);
    }
    return EM_OK;
}

/* The root gradient for outputs[i]: grad_output checked against it, or
 * ones for a one-element output. A new reference in scope. */
static em_tensor *root_grad(const pass *ps, const em_tensor *out, const em_tensor *given, int i)
{
    char a[160], b[160];
    if (!given) {
        if (out->numel != 1) {
            em__fail(EM_ERR_SHAPE,
                     "%s: output %d is %s; a gradient can be implied only for a one-element "
                     "output, so pass grad_output",
                     ps->name, i, em__describe(out, a, sizeof a));
            return NULL;
        }
        return em_ones(out->dtype, out->ndim, out->shape, out->storage->device);
    }
    bool same = given->ndim == out->ndim &&
                !memcmp(given->shape, out->shape, sizeof(int64_t) * (size_t)out->ndim);
    if (!same) {
        em__fail(EM_ERR_SHAPE, "%s: grad_output %d is %s but the output is %s", ps->name, i,
                 em__describe(given, a, sizeof a), em__describe(out, b, sizeof b));
        return NULL;
    }
    if (given->storage->device != out->storage->device) {
        em__fail(EM_ERR_DEVICE, "%s: grad_output %d is on %s but the output on %s", ps->name, i,
                 given->storage->device->name, out->storage->device->name);
        return NULL;
    }
    if (!em_dtype_is_float(given->dtype)) {
        em__fail(EM_ERR_DTYPE, "%s: grad_output %d must be floating, not %s", ps->name, i,
                 em__describe(given, a, sizeof a));
        return NULL;
    }
    return em_cast(given, out->dtype);
}

static em_status run_pass(pass *ps, int n_out, const em_tensor *const *outputs,
                          const em_tensor *const *grad_outputs)
{
    graph gr = {0};
    ready_heap heap = {0};
    em_node *roots_small[8], **roots = roots_small;
    em_status st = EM_OK;
    if (n_out > 8 && !(roots = calloc((size_t)n_out, sizeof *roots)))
        return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", ps->name);
    for (int i = 0; i < n_out; i++) roots[i] = outputs[i]->grad_fn;
    if ((st = graph_collect(&gr, roots, n_out))) goto done;
    if (ps->functional) graph_mark_useful(&gr, ps->inputs, ps->n_inputs);
    /* seed the roots */
    for (int i = 0; i < n_out; i++) {
        em_tensor *g = root_grad(ps, outputs[i], grad_outputs ? grad_outputs[i] : NULL, i);
        if (!g) {
            st = em_last_status();
            goto done;
        }
        if (outputs[i]->grad_fn) {
            st = accumulate(&gr.buf[graph_find(&gr, outputs[i]->grad_fn)], g);
        } else if (ps->functional) { /* an output that is itself a requested leaf */
            for (int k = 0; st == EM_OK && k < ps->n_inputs; k++)
                if (ps->inputs[k] == outputs[i]) st = accumulate(&ps->captured[k], g);
        } else {
            st = accumulate_leaf(ps, (em_tensor *)outputs[i], g);
        }
        if (st) goto done;
    }
    if (gr.count > 0 && !(heap.items = malloc((size_t)gr.count * sizeof *heap.items))) {
        st = em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", ps->name);
        goto done;
    }
    for (int i = 0; i < gr.count; i++)
        if (gr.deps[i] == 0) heap_push(&heap, &gr, i);
    while (heap.count > 0) {
        int idx = heap_pop(&heap, &gr);
        if ((st = run_node(ps, &gr, idx, &heap))) goto done;
    }
done:
    free(heap.items);
    graph_free(&gr);
    if (roots != roots_small) free(roots);
    return st;
}

static em_status check_outputs(const char *name, int n, const em_tensor *const *outputs)
{
    for (int i = 0; i < n; i++) {
        if (!outputs[i]) return em__null_arg(name, "outputs[i]");
        if (!outputs[i]->requires_grad) {
            char buf[160];
            return em__fail(EM_ERR_STATE,
                            "%s: output %d (%s) does not require grad and has no grad_fn: no "
                            "input of the ops that made it requires grad, or it was made with "
                            "grad mode off",
                            name, i, em__describe(outputs[i], buf, sizeof buf));
        }
    }
    return EM_OK;
}

em_status em_backward(const em_tensor *output, const em_tensor *grad_output, bool retain_graph,
                      bool create_graph)
{
    static const char *name = "em_backward";
    if (!output) return em__null_arg(name, "output");
    const em_tensor *outs[1] = {output}, *gos[1] = {grad_output};
    em_status st = check_outputs(name, 1, outs);
    if (st) return st;
    pass ps = {.name = name, .create_graph = create_graph,
               .retain_graph = retain_graph || create_graph};
    if ((st = em_scope_begin())) return st;
    bool prev = em_set_grad_enabled(create_graph);
    st = run_pass(&ps, 1, outs, gos);
    em_set_grad_enabled(prev);
    em_scope_end();
    return st;
}

em_status em_autograd_grad(int n_outputs, const em_tensor *const *outputs,
                           const em_tensor *const *grad_outputs, int n_inputs,
                           const em_tensor *const *inputs, em_tensor **grads, bool retain_graph,
                           bool create_graph, bool allow_unused)
{
    static const char *name = "em_autograd_grad";
    if (!outputs) return em__null_arg(name, "outputs");
    if (!inputs) return em__null_arg(name, "inputs");
    if (!grads) return em__null_arg(name, "grads");
    if (n_outputs < 1 || n_inputs < 1)
        return em__fail(EM_ERR_INVALID_ARG, "%s: needs at least one output and one input (got "
                        "%d and %d)", name, n_outputs, n_inputs);
    for (int k = 0; k < n_inputs; k++) grads[k] = NULL;
    em_status st = check_outputs(name, n_outputs, outputs);
    if (st) return st;
    for (int k = 0; k < n_inputs; k++) {
        char buf[160];
        if (!inputs[k]) return em__null_arg(name, "inputs[k]");
        if (!inputs[k]->requires_grad)
            return em__fail(EM_ERR_STATE, "%s: input %d (%s) does not require grad", name, k,
                            em__describe(inputs[k], buf, sizeof buf));
    }
    em_tensor **captured = calloc((size_t)n_inputs, sizeof *captured);
    if (!captured) return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", name);
    pass ps = {.name = name, .create_graph = create_graph,
               .retain_graph = retain_graph || create_graph, .functional = true,
               .inputs = inputs, .n_inputs = n_inputs, .captured = captured};
    if ((st = em_scope_begin())) {
        free(captured);
        return st;
    }
    bool prev = em_set_grad_enabled(create_graph);
    st = run_pass(&ps, n_outputs, outputs, grad_outputs);
    em_set_grad_enabled(prev);
    em_scope_end();
    for (int k = 0; st == EM_OK && k < n_inputs; k++) {
        if (!captured[k] && !allow_unused) {
            char buf[160];
            st = em__fail(EM_ERR_INVALID_ARG,
                          "%s: input %d (%s) was not used to compute the outputs; pass "
                          "allow_unused = true to get NULL for it",
                          name, k, em__describe(inputs[k], buf, sizeof buf));
        }
    }
    for (int k = 0; k < n_inputs; k++) {
        if (st == EM_OK) grads[k] = em__own(captured[k]); /* the reference moves */
        else em_tensor_release(captured[k]);
    }
    free(captured);
    return st;
}
