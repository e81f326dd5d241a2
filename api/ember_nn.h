/*
 * ember_nn.h — Ember's neural-network library (torch.nn): modules, built-in
 * layers, parameter initialisation and loss functions.
 *
 * Everything here is written against the public API of ember.h, whose
 * conventions hold unchanged: em_ prefixes, thread-local errors
 * (em_last_error names what was wrong), and THE OWNERSHIP RULE for every
 * function returning em_tensor * (one reference, held by the innermost open
 * scope, else by the caller). Everything a module or loss computes is a
 * public op, so autograd and every backend work without extra code.
 *
 * Modules (torch.nn.Module):
 *   - A module has a type name ("Linear"), a forward function, optional
 *     user data, and three ordered, named lists: parameters (trainable
 *     leaves), buffers (state that is saved but not trained) and children
 *     (sub-modules, owned by their parent).
 *   - Qualified names join the path with dots: parameter "weight" of child
 *     "0" of child "layers" is "layers.0.weight". Names given to the
 *     register/add functions must be non-empty and contain no '.', and a
 *     name is used only once per module across the three lists.
 *   - A module owns its children: em_module_destroy(root) frees the tree.
 *     Parameters and buffers are tensors the module holds a reference to.
 *   - Module handles are not thread-safe: do not change a module from one
 *     thread while another uses it. Running forward from several threads is
 *     fine unless a module draws random numbers (Dropout).
 *   - Creation functions of built-in layers make f32 tensors on `device`
 *     (NULL = em_device_default()) and draw random initial values from `gen`
 *     (NULL = the global generator seeded by em_manual_seed). Use
 *     em_module_to / em_module_to_dtype to move or convert a whole model.
 */
#ifndef EMBER_NN_H
#define EMBER_NN_H

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Modules                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct em_module em_module;

/* The forward function of a module. em_module_forward calls it inside a
 * scope of its own, so it may create any number of temporaries; it returns
 * a tensor made within that scope (the result of a public op or of
 * em_module_forward on a child), or NULL with an error recorded. To return
 * the input unchanged, return em_cast(input, em_tensor_dtype(input)) (a new
 * reference to the same tensor). */
typedef em_tensor *(*em_module_forward_fn)(em_module *self, const em_tensor *input);

/* A new, empty module in training mode. type_name (copied; non-empty) is
 * what printing and error messages call it. forward may be NULL for a pure
 * container (em_module_forward then fails with EM_ERR_STATE). user_data is
 * handed back by em_module_user_data; free_user_data (may be NULL) is called
 * on it by em_module_destroy. NULL with EM_ERR_NULL_ARG / EM_ERR_INVALID_ARG /
 * EM_ERR_OUT_OF_MEMORY; free_user_data is NOT called on failure. */
EM_API em_module *em_module_create(const char *type_name, em_module_forward_fn forward,
                                   void *user_data, void (*free_user_data)(void *));
/* Frees m, its children (recursively), the user data (free_user_data) and
 * the module's references to its parameters and buffers. NULL is a no-op.
 * Destroy only roots: a child belongs to its parent (destroying a child
 * frees nothing and records EM_ERR_STATE). */
EM_API void em_module_destroy(em_module *m);
/* The user_data given to em_module_create (NULL for NULL m). Built-in
 * layers keep their private configuration there: do not change it. */
EM_API void *em_module_user_data(const em_module *m);
/* The type name, borrowed for m's lifetime ("" for NULL). */
EM_API const char *em_module_type_name(const em_module *m);
/* The module m was added to as a child, borrowed; NULL for a root (or NULL m). */
EM_API em_module *em_module_parent(const em_module *m);

/* Registers t as parameter `name` of m: the module retains t and marks it
 * as a leaf requiring grad (em_requires_grad_). t must be a floating-point
 * leaf (EM_ERR_DTYPE / EM_ERR_INVALID_ARG for a tensor with a grad_fn: use
 * em_detach). Registering an existing parameter name again replaces that
 * parameter, keeping its position (as torch's register_parameter). A name
 * already used by a buffer or child is EM_ERR_INVALID_ARG. */
EM_API em_status em_module_register_parameter(em_module *m, const char *name, em_tensor *t);
/* Registers t (any dtype) as buffer `name`: retained, part of the state dict,
 * moved by em_module_to, not returned by em_module_named_parameters and never
 * marked as requiring grad. An existing buffer name is replaced in place. */
EM_API em_status em_module_register_buffer(em_module *m, const char *name, em_tensor *t);
/* Adds child as sub-module `name` of m; m takes ownership of child. On
 * failure (NULL m, bad or duplicate name, no memory) child is destroyed,
 * so em_module_add_child(m, "fc", em_nn_linear(...)) never leaks; a NULL
 * child records EM_ERR_NULL_ARG only if no error is pending (so the error
 * of the call that made it stays). The exceptions are a child that already
 * has a parent, and m itself or one of m's ancestors: those are refused
 * with EM_ERR_INVALID_ARG and left untouched. */
EM_API em_status em_module_add_child(em_module *m, const char *name, em_module *child);

/* The parameter named `name`, which may be a dotted path through children
 * ("layers.0.weight"); the parameter itself, not a copy (ownership rule as
 * usual: a new reference). NULL with EM_ERR_INVALID_ARG naming the missing
 * key and listing the module's parameters. */
EM_API em_tensor *em_module_get_parameter(const em_module *m, const char *name);
/* The buffer named `name` (dotted paths accepted), as get_parameter. */
EM_API em_tensor *em_module_get_buffer(const em_module *m, const char *name);
/* The child named `name` (dotted paths accepted: "layers.0"), borrowed (it
 * belongs to m). NULL with EM_ERR_INVALID_ARG when there is none. */
EM_API em_module *em_module_get_child(const em_module *m, const char *name);
/* Direct children in insertion order: count (-1 for NULL), the i-th child
 * (borrowed; NULL with EM_ERR_INDEX when out of range) and its name
 * (borrowed; NULL when out of range). */
EM_API int em_module_child_count(const em_module *m);
EM_API em_module *em_module_child_at(const em_module *m, int i);
EM_API const char *em_module_child_name(const em_module *m, int i);

/* Runs m's forward function on x inside a scope of its own (see
 * em_module_forward_fn); the result follows the ownership rule. NULL on
 * failure, with the message prefixed by "em_module_forward(Type): ". */
EM_API em_tensor *em_module_forward(em_module *m, const em_tensor *x);

/* A new dictionary (the caller destroys it with em_tensor_dict_destroy) of
 * every parameter of m and its descendants under its dotted name, in
 * registration order, module by module (m first, then each child's subtree
 * in order), as torch's named_parameters: the entries are the parameters
 * themselves (an optimizer may update them in place, under
 * em_set_grad_enabled(false)). A tensor registered under several names is
 * listed once, under its first name. NULL with an error on failure. */
EM_API em_tensor_dict *em_module_named_parameters(const em_module *m);
/* The same for buffers. */
EM_API em_tensor_dict *em_module_named_buffers(const em_module *m);
/* A new dictionary with every parameter and buffer by dotted name, module by
 * module (a module's parameters, then its buffers, then its children), as
 * torch's state_dict: the entries are detached views sharing storage with
 * the module's tensors (no grad, no history). Shared tensors appear under
 * every name. The caller destroys it. */
EM_API em_tensor_dict *em_module_state_dict(const em_module *m);
/* Copies the values of d into m's parameters and buffers (em_copy_, with
 * grad mode off; d's tensors may live on another device). First checks
 * everything and changes nothing if anything is wrong, failing with one
 * message that lists every problem: with strict, the missing keys (in m, not
 * in d) and the unexpected keys (in d, not in m) (EM_ERR_INVALID_ARG); in
 * any mode, each entry whose shape (EM_ERR_SHAPE) or dtype (EM_ERR_DTYPE)
 * differs from the module's, with both sides ("'0.weight': checkpoint
 * f32[20,30], model f32[30,20]"). When several kinds of problems occur the
 * status is the first of INVALID_ARG, SHAPE, DTYPE that applies. Without
 * strict, missing and unexpected keys are ignored. A failure of the copies
 * themselves (device error) may leave some tensors updated. */
EM_API em_status em_module_load_state_dict(em_module *m, const em_tensor_dict *d, bool strict);
/* Number of parameter elements of m and its descendants (shared tensors
 * counted once); with trainable_only, only those that require grad. -1 with
 * EM_ERR_NULL_ARG for NULL. */
EM_API int64_t em_module_num_parameters(const em_module *m, bool trainable_only);

/* Training (true) or evaluation (false) mode for m and all descendants, as
 * torch's train()/eval(): Dropout is active only in training mode. New
 * modules start in training mode. */
EM_API em_status em_module_train(em_module *m, bool training);
/* m's mode (false for NULL). */
EM_API bool em_module_is_training(const em_module *m);
/* Marks every parameter of m and its descendants as requiring grad or not
 * (freezing), as torch's requires_grad_(). */
EM_API em_status em_module_requires_grad_(em_module *m, bool requires_grad);
/* Moves every parameter and buffer of m and its descendants to device
 * (NULL = em_device_default()), keeping requires_grad and moving existing
 * gradients too. The module's tensors are REPLACED by the moved copies (no
 * change when a tensor already lives there), so references taken earlier
 * (em_module_get_parameter, em_module_named_parameters, optimizers) keep the
 * old tensors: create optimizers after moving the model, as torch advises.
 * All copies are made before anything is replaced: on failure m is
 * unchanged. */
EM_API em_status em_module_to(em_module *m, em_device *device);
/* Converts the floating-point parameters and buffers (and gradients) of m
 * and its descendants to dtype, which must be floating (EM_ERR_DTYPE);
 * integer and bool buffers are kept (torch's module.to(dtype), .double()).
 * Same replacement and failure rules as em_module_to. */
EM_API em_status em_module_to_dtype(em_module *m, em_dtype dtype);
/* Clears the gradient of every parameter of m and its descendants
 * (em_set_grad(p, NULL)), as torch's zero_grad() with its default
 * set_to_none=True: the next backward allocates fresh gradients. */
EM_API em_status em_module_zero_grad(em_module *m);

/* Sets the text shown between the parentheses when m is printed (torch's
 * extra_repr), e.g. "in_features=2, out_features=3, bias=True"; copied. */
EM_API em_status em_module_set_description(em_module *m, const char *text);
/* Writes a torch-style rendering of the module tree to buf, truncated to cap
 * bytes (always NUL-terminated when cap > 0), e.g.
 *   Sequential(
 *     (0): Linear(in_features=2, out_features=30, bias=True)
 *     (1): ReLU()
 *   )
 * Returns the length needed without the NUL (-1 for NULL m). */
EM_API int em_module_format(const em_module *m, char *buf, size_t cap);
/* Prints em_module_format to stdout with a trailing newline. */
EM_API void em_module_print(const em_module *m);

/* ------------------------------------------------------------------------ */
/* Built-in layers. Each returns a new module (destroy it, or hand it to a  */
/* parent) or NULL with an error. Sizes must be >= 0 (EM_ERR_INVALID_ARG).  */
/* ------------------------------------------------------------------------ */

/* "Linear": y = x W^T + b, x [..., in_features] -> [..., out_features].
 * Parameters "weight" [out, in] and (with bias) "bias" [out], initialised
 * as torch: weight by em_init_kaiming_uniform_(a = sqrt(5)), i.e. uniform in
 * +-1/sqrt(in_features); bias uniform in +-1/sqrt(in_features) (0 when
 * in_features is 0). Draws the weight first, then the bias, from gen. */
EM_API em_module *em_nn_linear(int64_t in_features, int64_t out_features, bool bias,
                               em_device *device, em_generator *gen);
/* "Sequential": runs its children in order, each on the previous output
 * (an empty Sequential returns its input). Takes ownership of modules[0..n-1]
 * (n >= 0), named "0", "1", ... If any entry is NULL, or on any other
 * failure, the non-NULL entries are destroyed and NULL is returned (a NULL
 * entry records EM_ERR_NULL_ARG only if no error is pending, so
 * em_nn_sequential((em_module *[]){em_nn_linear(...), ...}, n) reports the
 * first failing creation and leaks nothing). Entries that already have a
 * parent are refused (EM_ERR_INVALID_ARG) and never destroyed; an entry
 * listed twice is EM_ERR_INVALID_ARG and destroyed once. */
EM_API em_module *em_nn_sequential(em_module *const *modules, int n);
/* Appends m to the Sequential seq under the next index name; seq takes
 * ownership of m (destroyed on failure, as em_module_add_child). seq must
 * have been made by em_nn_sequential (EM_ERR_INVALID_ARG). */
EM_API em_status em_nn_sequential_append(em_module *seq, em_module *m);
/* Activations, without parameters: "ReLU", "GELU" (approximate_tanh selects
 * the tanh formula, torch's approximate='tanh'), "Tanh", "Sigmoid". */
EM_API em_module *em_nn_relu(void);
EM_API em_module *em_nn_gelu(bool approximate_tanh);
EM_API em_module *em_nn_tanh(void);
EM_API em_module *em_nn_sigmoid(void);
/* "Dropout": in training mode, zeroes each element with probability p
 * (0 <= p <= 1, else EM_ERR_INVALID_ARG) and scales the others by
 * 1/(1-p) (p = 1 gives x * 0); in evaluation mode (or p = 0) returns its
 * input. The mask is drawn from gen (NULL = the global generator); gen is
 * borrowed and must outlive the module. Floating inputs only (EM_ERR_DTYPE). */
EM_API em_module *em_nn_dropout(double p, em_generator *gen);
/* "Embedding": parameter "weight" [num_embeddings, embedding_dim] drawn
 * from N(0, 1) (as torch); forward maps integer indices of any shape to
 * [..., embedding_dim] (em_embedding). */
EM_API em_module *em_nn_embedding(int64_t num_embeddings, int64_t embedding_dim,
                                  em_device *device, em_generator *gen);
/* "LayerNorm" over the last ndim dims (1 <= ndim <= EM_MAX_DIMS), which must
 * equal normalized_shape[0..ndim-1] (EM_ERR_SHAPE naming both shapes):
 * y = (x - mean) / sqrt(var + eps) (biased variance), then * weight + bias
 * with elementwise_affine (parameters "weight" = ones and "bias" = zeros of
 * normalized_shape). eps >= 0 (EM_ERR_INVALID_ARG; torch's default 1e-5).
 * Computes in the input's dtype (torch uses f32 inside for f16/bf16). */
EM_API em_module *em_nn_layer_norm(int ndim, const int64_t *normalized_shape, double eps,
                                   bool elementwise_affine, em_device *device);
/* "Flatten": em_flatten(x, start_dim, end_dim) (torch defaults 1, -1). */
EM_API em_module *em_nn_flatten(int start_dim, int end_dim);

/* ------------------------------------------------------------------------ */
/* Initialisation (torch.nn.init). In place on t (any floating dtype, any    */
/* layout, any device), with grad mode off inside, so parameters can be     */
/* initialised directly. Random values come from gen (NULL = global).       */
/* EM_ERR_NULL_ARG for NULL t, EM_ERR_DTYPE for non-floating t.             */
/* ------------------------------------------------------------------------ */

/* Uniform in [lo, hi) (lo <= hi, else EM_ERR_INVALID_ARG). */
EM_API em_status em_init_uniform_(em_tensor *t, double lo, double hi, em_generator *gen);
/* Normal with the given mean and std (std >= 0). */
EM_API em_status em_init_normal_(em_tensor *t, double mean, double std, em_generator *gen);
EM_API em_status em_init_constant_(em_tensor *t, double value);
EM_API em_status em_init_zeros_(em_tensor *t);
EM_API em_status em_init_ones_(em_tensor *t);
/* torch.nn.init._calculate_fan_in_and_fan_out: for t of >= 2 dims,
 * fan_in = dim(1) * receptive, fan_out = dim(0) * receptive, where
 * receptive is the product of dims 2.. (1 for a matrix). EM_ERR_SHAPE for
 * fewer than 2 dims. Either output pointer may be NULL. */
EM_API em_status em_init_calculate_fans(const em_tensor *t, int64_t *fan_in, int64_t *fan_out);
/* Kaiming (He) initialisation with torch's defaults mode='fan_in',
 * nonlinearity='leaky_relu' with negative slope a: gain = sqrt(2/(1+a^2)),
 * std = gain/sqrt(fan_in); uniform: U(-sqrt(3) std, sqrt(3) std); normal:
 * N(0, std). a = sqrt(5) gives torch's Linear weights. A tensor with no
 * elements is left as it is. */
EM_API em_status em_init_kaiming_uniform_(em_tensor *t, double a, em_generator *gen);
EM_API em_status em_init_kaiming_normal_(em_tensor *t, double a, em_generator *gen);
/* Xavier (Glorot): std = gain * sqrt(2/(fan_in + fan_out)); uniform:
 * U(-sqrt(3) std, sqrt(3) std); normal: N(0, std). */
EM_API em_status em_init_xavier_uniform_(em_tensor *t, double gain, em_generator *gen);
EM_API em_status em_init_xavier_normal_(em_tensor *t, double gain, em_generator *gen);

/* ------------------------------------------------------------------------ */
/* Losses (torch.nn.functional). Every loss is built from differentiable    */
/* public ops, so its gradients come from autograd. The result follows the  */
/* ownership rule: a 0-d tensor for MEAN and SUM, per-element for NONE.     */
/* Inputs must be floating (EM_ERR_DTYPE); a bad reduction value is         */
/* EM_ERR_INVALID_ARG; NULL tensors EM_ERR_NULL_ARG (first-error rule).     */
/* ------------------------------------------------------------------------ */

typedef enum em_reduction {
    EM_REDUCTION_MEAN = 0, /* the mean over elements (torch's default) */
    EM_REDUCTION_SUM = 1,
    EM_REDUCTION_NONE = 2  /* no reduction: one loss per element/sample */
} em_reduction;

/* torch's default ignore_index. */
#define EM_IGNORE_INDEX_DEFAULT (-100)

/* torch.nn.functional.cross_entropy without class weights.
 * logits: [C], [N, C] or [N, C, d1, ..., dk] (classes along dim 1, or 0 for
 * a 1-D input). target, either
 *   - class indices (i32 or i64) of shape [], [N] or [N, d1, ..., dk]
 *     (logits' shape without the class dim; EM_ERR_SHAPE naming both), each
 *     in [0, C) (EM_ERR_INDEX) or equal to ignore_index: ignored entries
 *     contribute 0 (NONE gives 0 there) and MEAN divides by the number of
 *     entries that are not ignored (NaN when all are, as torch);
 *   - or class probabilities, floating, of logits' shape; ignore_index is
 *     not used and MEAN divides by the number of samples (numel / C).
 * label_smoothing eps in [0, 1] (EM_ERR_INVALID_ARG): the loss becomes
 * (1 - eps) * nll + eps * (mean over classes of -log_softmax), ignored
 * entries excluded, i.e. the target is mixed with the uniform
 * distribution, exactly as torch. */
EM_API em_tensor *em_cross_entropy(const em_tensor *logits, const em_tensor *target,
                                   em_reduction reduction, int64_t ignore_index,
                                   double label_smoothing);
/* torch.nn.functional.nll_loss without class weights: -log_probs[target],
 * with the shapes, integer targets, ignore_index and reductions of
 * em_cross_entropy (log_probs are typically em_log_softmax output). */
EM_API em_tensor *em_nll_loss(const em_tensor *log_probs, const em_tensor *target,
                              em_reduction reduction, int64_t ignore_index);
/* (input - target)^2 and |input - target|. input and target must have the
 * same shape (EM_ERR_SHAPE; torch broadcasts with a warning). */
EM_API em_tensor *em_mse_loss(const em_tensor *input, const em_tensor *target,
                              em_reduction reduction);
EM_API em_tensor *em_l1_loss(const em_tensor *input, const em_tensor *target,
                             em_reduction reduction);
/* Binary cross-entropy on probabilities p in [0, 1] (not checked: values
 * outside give NaN): -(y log p + (1 - y) log(1 - p)) with each log clamped
 * to >= -100 as torch, so p = 0 or 1 gives finite losses. Same shapes
 * required. */
EM_API em_tensor *em_bce_loss(const em_tensor *probs, const em_tensor *target,
                              em_reduction reduction);
/* Binary cross-entropy on logits x, computed stably as
 * max(x, 0) - x y + log(1 + exp(-|x|)) (no overflow for any x); gradient
 * sigmoid(x) - y (0.5 - y at x = 0). Same shapes required. */
EM_API em_tensor *em_bce_with_logits_loss(const em_tensor *logits, const em_tensor *target,
                                          em_reduction reduction);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_NN_H */
