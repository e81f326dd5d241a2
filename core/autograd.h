/*
 * autograd.h — the core's internal autograd interface: graph nodes, how an
 * op records itself, and how a backward formula reads what was saved.
 *
 * Not installed, not API. The pieces:
 *   autograd.c          nodes (create, save, release), grad mode, anomaly
 *                       mode, the tensor-level API (requires_grad_, grad,
 *                       detach, ...)
 *   autograd_engine.c   em_backward / em_autograd_grad: topological
 *                       execution, accumulation, reduction of broadcast
 *                       gradients back to each input's shape and dtype
 *   grad_*.c            the backward formulas, one file per op family,
 *                       each next to a em__record_* function the ops call
 *
 * The graph. A result of a recorded op holds a strong reference to its node
 * (t->grad_fn). A node holds strong references to the nodes of its inputs
 * (edges) and, for inputs that are leaves requiring grad, to the leaf tensor
 * itself, whose .grad the engine accumulates. Saved tensors are held by the
 * node; a saved OUTPUT is held as a detached alias (no grad_fn) so that no
 * reference cycle forms, and is re-attached to the node when a create_graph
 * backward needs its history. Every op has one output.
 *
 * Backward formulas are written with the public ops (em_mul, em_sum, ...),
 * so they run on whatever device the tensors live on, and — because the
 * engine leaves grad mode on during a create_graph pass — are themselves
 * recorded, which gives higher derivatives without extra code.
 */
#ifndef EMBER_CORE_AUTOGRAD_H
#define EMBER_CORE_AUTOGRAD_H

#include "internal.h"

typedef struct em_node em_node;

#define EM_NODE_MAX_SAVED 4

/* Where an input's gradient goes. */
typedef struct em_edge {
    em_node *node;          /* the input's grad_fn (strong), or NULL         */
    em_tensor *leaf;        /* the input itself when it is a leaf requiring
                               grad (strong), or NULL                         */
    bool needed;            /* node or leaf is set: the gradient is wanted   */
    /* The input's metadata: the engine reduces and casts each gradient to
     * it (broadcast dims summed, dtype converted). */
    em_dtype dtype;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
} em_edge;

typedef struct em_saved {
    em_tensor *t;           /* strong; NULL when unused or released          */
    unsigned version;       /* t->storage->version when saved                */
    bool is_output;         /* t is a detached alias of the node's output    */
} em_saved;

/* Computes the input gradients from the output gradient. `grad_out` has the
 * output's shape and dtype. For every i with node->edges[i].needed, store a
 * new tensor (owned by the current scope, as any op result) in grad_in[i];
 * it may have a broadcast-compatible shape and another float dtype — the
 * engine reduces and casts. Leave grad_in[i] NULL for "zero". Return a
 * status (the error message set) on failure. */
typedef em_status (*em_backward_fn)(em_node *node, em_tensor *grad_out, em_tensor **grad_in);

/* Op-specific parameters a formula needs (dims, scalars, sizes). */
typedef struct em_node_args {
    int64_t ints[EM_MAX_DIMS * 2];
    double scalars[4];
    int op;                 /* the em_op id, for formulas shared by a family  */
    int dim;
    int flag;
    bool keepdim;
    uint32_t reduce_mask;   /* bit d set: input dim d was reduced            */
} em_node_args;

struct em_node {
    atomic_int refcount;
    const char *name;       /* the op's short name: "mul", "sum", ...       */
    em_backward_fn backward;
    em_node_args args;
    em_saved saved[EM_NODE_MAX_SAVED];
    bool released;          /* saved tensors dropped after a backward        */
    /* the output's metadata (for a default gradient) */
    em_device *device;
    em_dtype out_dtype;
    int out_ndim;
    int64_t out_shape[EM_MAX_DIMS];
    uint64_t seq;           /* creation order: later nodes run first         */
    int n_edges;
    em_edge edges[];        /* one per input, in the op's argument order     */
};

/* ---------------- recording (autograd.c) --------------------------------- */

/* Thread-local grad mode (em_set_grad_enabled). */
EM_INTERNAL bool em__grad_enabled(void);

/* True when grad mode is on and any of the n inputs (NULLs allowed)
 * requires grad: the op must record. Cheap: called on every op. */
static inline bool em__ag_wanted(const em_tensor *const *in, int n)
{
    bool any = false;
    for (int i = 0; i < n; i++) any |= in[i] && in[i]->requires_grad;
    return any && em__grad_enabled();
}

/* A node for an op on n inputs (NULL entries allowed: they get no edge).
 * Edges are filled from the inputs; an input that does not require grad
 * gets needed = false. NULL with EM_ERR_OUT_OF_MEMORY. */
EM_INTERNAL em_node *em__node_new(const char *name, em_backward_fn fn,
                                  const em_tensor *const *inputs, int n);
/* Saves t in slot (0 .. EM_NODE_MAX_SAVED-1) with its current version. */
EM_INTERNAL void em__node_save(em_node *node, int slot, const em_tensor *t);
/* Saves the node's own output (as a detached alias, see above). */
EM_INTERNAL em_status em__node_save_output(em_node *node, int slot, const em_tensor *out);
/* Attaches node to out (out->grad_fn = node, requires_grad) and takes over
 * the node's creation reference. Records the output metadata. */
EM_INTERNAL void em__node_attach(em_node *node, em_tensor *out);
/* em__node_new + attach in one step for formulas that save nothing: the
 * common case of a whole op. Returns out, or NULL (out released) when the
 * node cannot be allocated. */
EM_INTERNAL em_tensor *em__record(em_tensor *out, const char *name, em_backward_fn fn,
                                  const em_tensor *const *inputs, int n, const em_node_args *args);
/* Drops out (refcount) when a recording step failed; returns NULL. */
EM_INTERNAL em_tensor *em__record_fail(em_tensor *out, em_node *node);

EM_INTERNAL void em__node_retain(em_node *node);
EM_INTERNAL void em__node_release(em_node *node);
/* Drops the node's saved tensors and marks it released. */
EM_INTERNAL void em__node_release_saved(em_node *node);

/* A saved tensor for a formula: checks that it was not modified in place
 * since it was saved (EM_ERR_STATE naming the op otherwise) and returns it
 * as a new reference owned by the current scope. A saved output is returned
 * attached to the node when grad mode is on (a create_graph pass). NULL with
 * the error set. */
EM_INTERNAL em_tensor *em__node_saved(em_node *node, int slot);

/* Refuses an in-place op on self when autograd would need to record it:
 * grad mode on and self or other requires grad. EM_ERR_STATE naming op. */
EM_INTERNAL em_status em__ag_check_inplace(const char *name, const em_tensor *self,
                                           const em_tensor *other);

/* ---------------- helpers for formulas (autograd_engine.c) --------------- */

/* g summed over the dims in which it was broadcast from (ndim, shape):
 * leading extra dims and dims where shape has 1. A new reference in scope
 * (g itself, retained and owned, when nothing to reduce). */
EM_INTERNAL em_tensor *em__sum_to_shape(em_tensor *g, int ndim, const int64_t *shape);
/* A 0-d tensor of value v with g's dtype and device (in scope). */
EM_INTERNAL em_tensor *em__scalar_like(const em_tensor *g, double v);

/* ---------------- the grad_* recorders, called by the ops ---------------- */
/* Each takes the op's result `out` (a fresh reference, not yet owned by a
 * scope), records a node when em__ag_wanted, and returns out — or NULL with
 * out released on failure. Defined in grad_elementwise.c etc. */

/* grad_elementwise.c */
EM_INTERNAL em_tensor *em__grad_binary(int op, const em_tensor *a, const em_tensor *b,
                                       em_tensor *out);
EM_INTERNAL em_tensor *em__grad_binary_scalar(int op, const em_tensor *t, double s,
                                              em_tensor *out);
EM_INTERNAL em_tensor *em__grad_unary(int op, const em_tensor *t, const em_op_params *p,
                                      em_tensor *out);
EM_INTERNAL em_tensor *em__grad_where(const em_tensor *cond, const em_tensor *a,
                                      const em_tensor *b, em_tensor *out);
EM_INTERNAL em_tensor *em__grad_clamp(const em_tensor *t, double lo, double hi, em_tensor *out);
EM_INTERNAL em_tensor *em__grad_masked_fill(const em_tensor *t, const em_tensor *mask,
                                            em_tensor *out);

/* grad_reduce.c, grad_linalg.c: reductions, softmax, matmul/linear/addmm */
/* sum/mean/max/min/var/std/logsumexp of t over the dims in mask (bit d:
 * dim d; any value for a 0-d t); flag is the unbiased flag of var/std.
 * argmax/argmin and integer results record nothing. */
EM_INTERNAL em_tensor *em__grad_reduce(int op, const em_tensor *t, uint32_t mask, bool keepdim,
                                       int flag, em_tensor *out);
/* softmax/log_softmax (op) along the wrapped dim. */
EM_INTERNAL em_tensor *em__grad_softmax(int op, const em_tensor *t, int dim, em_tensor *out);
/* matmul (torch.matmul forms), linear (bias may be NULL), addmm. */
EM_INTERNAL em_tensor *em__grad_matmul(const em_tensor *a, const em_tensor *b, em_tensor *out);
EM_INTERNAL em_tensor *em__grad_linear(const em_tensor *x, const em_tensor *weight,
                                       const em_tensor *bias, em_tensor *out);
EM_INTERNAL em_tensor *em__grad_addmm(const em_tensor *c, const em_tensor *a, const em_tensor *b,
                                      em_tensor *out);

/* grad_views.c, grad_data.c: views, contiguous/clone/to/cast, cat/stack/
 * index_select/gather/scatter_add/embedding */
/* reshape-like views (reshape, view, squeeze, squeeze_all, unsqueeze):
 * the gradient is g reshaped to t's shape; name is the node's name. */
EM_INTERNAL em_tensor *em__grad_reshape(const char *name, const em_tensor *t, em_tensor *out);
/* transpose/permute/T: output dim i is input dim perm[i] (ndim entries). */
EM_INTERNAL em_tensor *em__grad_permute(const char *name, const em_tensor *t, int ndim,
                                        const int *perm, em_tensor *out);
EM_INTERNAL em_tensor *em__grad_expand(const em_tensor *t, em_tensor *out);
/* slice along the (wrapped) dim from the (normalized) start with step. */
EM_INTERNAL em_tensor *em__grad_slice(const em_tensor *t, int dim, int64_t start, int64_t step,
                                      em_tensor *out);
/* select along the (wrapped) dim at the (non-negative) index. */
EM_INTERNAL em_tensor *em__grad_select(const em_tensor *t, int dim, int64_t index, em_tensor *out);
/* contiguous, clone, cast: the gradient is g itself (cast back by the
 * engine); nothing is recorded when out is t or not floating. */
EM_INTERNAL em_tensor *em__grad_identity(const char *name, const em_tensor *t, em_tensor *out);
/* tensor_to: the gradient goes back to t's device. */
EM_INTERNAL em_tensor *em__grad_to(const em_tensor *t, em_tensor *out);
/* The gradient of a slice: zeros of (ndim, shape) with g copied into the
 * elements start, start+step, ... of dim (g's shape elsewhere). Records its
 * own node (whose backward is the slice) when g requires grad and grad mode
 * is on. A new reference in scope; NULL with the error set. */
EM_INTERNAL em_tensor *em__slice_backward(const em_tensor *g, int ndim, const int64_t *shape,
                                          int dim, int64_t start, int64_t step);
/* cat along the (wrapped) dim: one edge per input. */
EM_INTERNAL em_tensor *em__grad_cat(const em_tensor *const *tensors, int n, int dim,
                                    em_tensor *out);
/* index_select/gather along the (wrapped) dim; index gets no gradient. */
EM_INTERNAL em_tensor *em__grad_index_select(const em_tensor *t, int dim, const em_tensor *index,
                                             em_tensor *out);
EM_INTERNAL em_tensor *em__grad_gather(const em_tensor *t, int dim, const em_tensor *index,
                                       em_tensor *out);
EM_INTERNAL em_tensor *em__grad_scatter_add(const em_tensor *t, int dim, const em_tensor *index,
                                            const em_tensor *src, em_tensor *out);

/* ops_fused.c: g where y > 0, else 0 (y: relu's input or output; g and y
 * broadcast), through EM_OP_RELU_BACKWARD when the backend has it and the
 * pass records nothing, else composed from public ops. In scope; NULL with
 * the error set. */
EM_INTERNAL em_tensor *em__relu_backward(const em_tensor *g, const em_tensor *y);

/* grad_linalg.c: relu(linear(x, weight, bias)) computed in one op (ops_linalg.c). */
EM_INTERNAL em_tensor *em__grad_linear_relu(const em_tensor *x, const em_tensor *weight,
                                            const em_tensor *bias, em_tensor *out);

#endif /* EMBER_CORE_AUTOGRAD_H */
