/*
 * ember_optim.h — optimizers (torch.optim.SGD, Adam, AdamW), learning-rate
 * schedules (StepLR, linear warm-up + cosine decay) and gradient clipping
 * (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
 *
 * Conventions, errors and the tensor ownership rule are those of ember.h:
 * every call that can fail records (status, message) on the calling thread
 * (em_last_status / em_last_error); functions returning a pointer return
 * NULL on failure; library code never aborts. Options are checked when an
 * optimizer or schedule is created (and when a state dict is loaded): a bad
 * value is EM_ERR_INVALID_ARG with a message naming the option and its value.
 *
 * Objects:
 *   em_optimizer and em_lr_scheduler are plain heap objects owned by the
 *   caller (not reference counted): create, use, destroy. An optimizer
 *   retains its parameter tensors (em_tensor_retain) and releases them in
 *   em_optimizer_destroy. Its state (momentum buffers, Adam moments, master
 *   copies) is a set of tensors it owns, each with the shape and device of
 *   its parameter and the parameter's dtype (f32 for f16/bf16 parameters,
 *   below), created on the first step that parameter has a gradient. A
 *   scheduler borrows its optimizer, which must outlive it.
 *
 * Updates (em_optimizer_step):
 *   - run on each parameter's own device with public ops, with grad mode off
 *     (restored afterwards: torch.no_grad()), inside a scope of their own, so
 *     nothing is added to the caller's scope; no tensor value is read back to
 *     the host;
 *   - a parameter whose gradient is absent (em_grad gives NULL) is skipped:
 *     neither it nor its state changes, and for Adam its step count does not
 *     advance (as torch);
 *   - the parameter is updated in place (its storage version is bumped, so a
 *     graph that saved it can no longer run backward, as in torch); its
 *     gradient is read, never written;
 *   - f32 master weights: an f16 or bf16 parameter gets an f32 master copy
 *     in its state ("master_param", created from the parameter on its first
 *     step with a gradient, on the parameter's device). Each step casts the
 *     gradient to f32, runs the update below on the master in f32 (momentum
 *     buffer and Adam moments are f32 too; the fused Adam kernel runs on the
 *     master where the backend has it for f32), then writes the master back
 *     into the parameter rounded to nearest even. So updates smaller than the
 *     half type's spacing accumulate instead of being rounded away (bf16:
 *     1 + 1e-3 rounds back to 1). The master is authoritative: a value
 *     written into the parameter by other means is overwritten by the next
 *     step (load a state dict or recreate the optimizer after changing it);
 *   - f32 and f64 parameters: state and temporaries have the parameter's
 *     dtype.
 *   Thread safety: an optimizer must not be used from two threads at once.
 */
#ifndef EMBER_OPTIM_H
#define EMBER_OPTIM_H

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Optimizers                                                                */
/* ------------------------------------------------------------------------ */

typedef struct em_optimizer em_optimizer;

/* torch.optim.SGD. Per parameter p with gradient g, step t (1-based):
 *     d = g + weight_decay * p                   (when weight_decay != 0)
 *     if momentum != 0:
 *         buf = d                                (first step: a copy, no dampening)
 *         buf = momentum * buf + (1 - dampening) * d   (later steps)
 *         d = nesterov ? d + momentum * buf : buf
 *     p = p - lr * d
 * Ranges: lr >= 0, momentum >= 0, 0 <= dampening <= 1, weight_decay >= 0,
 * all finite; nesterov requires momentum > 0 and dampening == 0. */
typedef struct em_sgd_options {
    double lr;
    double momentum;
    double dampening;
    double weight_decay;
    bool nesterov;
} em_sgd_options;

/* torch.optim.Adam / AdamW. Per parameter p with gradient g and its own step
 * count t (incremented before use, so t = 1 on its first update):
 *     AdamW:  p = p * (1 - lr * weight_decay)    (decoupled decay)
 *     Adam:   g = g + weight_decay * p           (when weight_decay != 0)
 *     m = m + (1 - beta1) * (g - m)              (m, v start at zero)
 *     v = beta2 * v + (1 - beta2) * g * g
 *     amsgrad: vmax = maximum(vmax, v), used instead of v below
 *     denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *     p = p - (lr / (1 - beta1^t)) * m / denom
 * i.e. p -= lr * m_hat / (sqrt(v_hat) + eps) evaluated exactly as torch does.
 * Ranges: lr >= 0, 0 <= beta1 < 1, 0 <= beta2 < 1, eps >= 0,
 * weight_decay >= 0, all finite. */
typedef struct em_adam_options {
    double lr;
    double beta1, beta2;
    double eps;
    double weight_decay;
    bool amsgrad;
} em_adam_options;

/* Option sets with torch's defaults for the given learning rate. A
 * zero-initialised struct is NOT the defaults (beta1 = beta2 = eps = 0 is a
 * valid but different Adam): start from these and change fields.
 *   em_sgd_defaults:   momentum 0, dampening 0, weight_decay 0, nesterov false
 *   em_adam_defaults:  beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0, amsgrad false
 *   em_adamw_defaults: as Adam but weight_decay 0.01 (torch.optim.AdamW) */
EM_API em_sgd_options em_sgd_defaults(double lr);
EM_API em_adam_options em_adam_defaults(double lr);
EM_API em_adam_options em_adamw_defaults(double lr);

/* Creates an optimizer over params[0..n-1] (n >= 1), retaining each tensor.
 * opt NULL means the defaults above with lr = 1e-3 (torch's default). The
 * parameters must be distinct (a duplicate would be updated twice), leaf
 * tensors (em_is_leaf) of a floating dtype; they may live on different
 * devices. Index i in the state dict is the position in params.
 * Errors (NULL returned): EM_ERR_NULL_ARG (params or an entry is NULL),
 * EM_ERR_INVALID_ARG (n < 1, duplicate or non-leaf parameter, a bad option
 * named with its value), EM_ERR_DTYPE (integer or bool parameter),
 * EM_ERR_OUT_OF_MEMORY. The caller frees the result with
 * em_optimizer_destroy. */
EM_API em_optimizer *em_sgd_create(int n, em_tensor *const *params, const em_sgd_options *opt);
EM_API em_optimizer *em_adam_create(int n, em_tensor *const *params, const em_adam_options *opt);
/* Adam with decoupled weight decay; opt NULL means em_adamw_defaults(1e-3). */
EM_API em_optimizer *em_adamw_create(int n, em_tensor *const *params, const em_adam_options *opt);

/* Releases the parameters and the state, frees the optimizer. NULL: no-op. */
EM_API void em_optimizer_destroy(em_optimizer *opt);

/* One update of every parameter that has a gradient (see the formulas
 * above). Returns EM_OK, EM_ERR_NULL_ARG, or the status of a failing op (its
 * message names the parameter index); parameters before the failing one have
 * then already been updated (no rollback). */
EM_API em_status em_optimizer_step(em_optimizer *opt);

/* Clears every parameter's gradient. set_to_none true (torch's default):
 * the gradient is dropped (em_set_grad(p, NULL)), freeing its memory, and the
 * next backward allocates a new one; the optimizer then skips parameters that
 * got no gradient. false: the gradient is filled with zeros in place,
 * keeping its memory (em_zero_grad; a gradient with a graph is dropped
 * instead). EM_ERR_NULL_ARG for a NULL optimizer. */
EM_API em_status em_optimizer_zero_grad(em_optimizer *opt, bool set_to_none);

/* The learning rate (NAN with EM_ERR_NULL_ARG for NULL). */
EM_API double em_optimizer_get_lr(const em_optimizer *opt);
/* Sets the learning rate used by the next step (lr >= 0 and finite, else
 * EM_ERR_INVALID_ARG). An attached scheduler overwrites it on its next
 * em_lr_scheduler_step. */
EM_API em_status em_optimizer_set_lr(em_optimizer *opt, double lr);

/* "sgd", "adam" or "adamw" (static string); NULL for NULL. */
EM_API const char *em_optimizer_type(const em_optimizer *opt);
/* Number of parameters (-1 for NULL). */
EM_API int em_optimizer_param_count(const em_optimizer *opt);
/* The i-th parameter, borrowed (no new reference; valid while the optimizer
 * lives); NULL with EM_ERR_INDEX when out of range. */
EM_API em_tensor *em_optimizer_param(const em_optimizer *opt, int i);

/* The optimizer's state as a new dictionary (the caller destroys it with
 * em_tensor_dict_destroy). Tensors are copies (taken on the parameters'
 * devices, without a host round trip), so later steps do not change them:
 *   "state.<i>.momentum_buffer"                 SGD with momentum
 *   "state.<i>.exp_avg", "state.<i>.exp_avg_sq" Adam/AdamW
 *   "state.<i>.max_exp_avg_sq"                  with amsgrad
 *   "state.<i>.master_param"                    f16/bf16 parameters (f32)
 * present only for parameters that have state (torch's lazy state), where
 * <i> is the parameter's index in the creation array. Metadata (strings;
 * doubles printed with %.17g so they read back exactly, bools "true"/"false"):
 *   "type" ("sgd" | "adam" | "adamw"), "param_count",
 *   "lr", "weight_decay", and for SGD "momentum", "dampening", "nesterov";
 *   for Adam/AdamW "beta1", "beta2", "eps", "amsgrad";
 *   "state.<i>.step" (Adam/AdamW: the parameter's step count).
 * NULL with EM_ERR_NULL_ARG / EM_ERR_OUT_OF_MEMORY or a copy's error. */
EM_API em_tensor_dict *em_optimizer_state_dict(const em_optimizer *opt);

/* Replaces the optimizer's hyperparameters (including lr) and state with
 * those in d (as torch's load_state_dict), so that the optimizer continues
 * exactly as the one that saved it. Metadata keys other than those listed
 * above (and not starting with "state.") are ignored, so a checkpoint may add
 * its own. Tensors are copied onto each parameter's device (d may hold them
 * on another device, e.g. the CPU after reading a file); d is not kept.
 * Everything is checked before anything changes; on error the optimizer is
 * unchanged and the message says exactly what differs:
 *   EM_ERR_INVALID_ARG: type differs, param_count differs, a metadata value
 *     is missing, unparsable or out of range (named as for the options), a
 *     tensor name that is not a state entry of this optimizer type or whose
 *     index is out of range, a parameter with incomplete state (e.g. exp_avg
 *     without exp_avg_sq or step, max_exp_avg_sq missing with amsgrad, a
 *     momentum buffer with momentum 0);
 *   EM_ERR_SHAPE / EM_ERR_DTYPE: a state tensor whose shape / dtype is not its
 *     parameter's (both named); for an f16/bf16 parameter the state is f32
 *     (moments in the parameter's own dtype, as saved before master copies
 *     existed, are accepted and cast; without "master_param" the master is
 *     taken again from the parameter at the next step); a "master_param"
 *     of an f32/f64 parameter is EM_ERR_INVALID_ARG;
 *   EM_ERR_NULL_ARG, EM_ERR_OUT_OF_MEMORY, or a copy's error. */
EM_API em_status em_optimizer_load_state_dict(em_optimizer *opt, const em_tensor_dict *d);

/* ------------------------------------------------------------------------ */
/* Learning-rate schedules                                                   */
/*                                                                          */
/* A scheduler remembers base_lr = the optimizer's lr when it is created,   */
/* and keeps a counter t, starting at 0. Creation sets the optimizer's lr   */
/* to lr(0); each em_lr_scheduler_step does t += 1 and sets lr(t) (call it  */
/* after em_optimizer_step, as in torch). lr(t) is computed in closed form  */
/* from base_lr each time, so a manual em_optimizer_set_lr lasts until the  */
/* next scheduler step. One scheduler per optimizer.                        */
/* ------------------------------------------------------------------------ */

typedef struct em_lr_scheduler em_lr_scheduler;

/* torch.optim.lr_scheduler.StepLR:
 *     lr(t) = base_lr * gamma^floor(t / step_size)
 * step_size >= 1, gamma > 0 and finite (else EM_ERR_INVALID_ARG naming it);
 * EM_ERR_NULL_ARG for a NULL optimizer. The caller destroys the result. */
EM_API em_lr_scheduler *em_step_lr_create(em_optimizer *opt, int step_size, double gamma);

/* Linear warm-up then cosine decay (as transformers'
 * get_cosine_schedule_with_warmup, with a floor min_lr), W = warmup_steps,
 * T = total_steps:
 *     t <  W:       lr(t) = base_lr * t / W            (from 0: the first step
 *                                                        with W > 0 uses lr 0)
 *     W <= t <= T:  lr(t) = min_lr + (base_lr - min_lr) *
 *                           0.5 * (1 + cos(pi * (t - W) / (T - W)))
 *     t >  T:       lr(t) = min_lr
 * So lr(W) = base_lr and lr(T) = min_lr. Requires 0 <= W < T and
 * 0 <= min_lr <= base_lr, finite (else EM_ERR_INVALID_ARG naming the
 * argument); EM_ERR_NULL_ARG for a NULL optimizer. */
EM_API em_lr_scheduler *em_cosine_warmup_lr_create(em_optimizer *opt, int warmup_steps,
                                                   int total_steps, double min_lr);

/* t += 1 and sets the optimizer's lr to lr(t). EM_ERR_NULL_ARG for NULL. */
EM_API em_status em_lr_scheduler_step(em_lr_scheduler *s);
/* lr(t) for the current t (what the scheduler last set); NAN with
 * EM_ERR_NULL_ARG for NULL. */
EM_API double em_lr_scheduler_get_lr(const em_lr_scheduler *s);
/* The counter t (number of em_lr_scheduler_step calls since creation or
 * what a loaded state says); -1 for NULL. */
EM_API int64_t em_lr_scheduler_last_step(const em_lr_scheduler *s);
/* The scheduler's state as a dictionary with metadata only: "type"
 * ("step_lr" | "cosine_warmup_lr"), "base_lr", "last_step" and the
 * schedule's arguments ("step_size", "gamma" | "warmup_steps",
 * "total_steps", "min_lr"). The caller destroys it. */
EM_API em_tensor_dict *em_lr_scheduler_state_dict(const em_lr_scheduler *s);
/* Restores a state made by em_lr_scheduler_state_dict for the same schedule
 * type (arguments and base_lr are taken from d, as torch does) and sets the
 * optimizer's lr to lr(last_step). EM_ERR_INVALID_ARG (type differs, a key
 * missing or out of range, named) leaves the scheduler unchanged. */
EM_API em_status em_lr_scheduler_load_state_dict(em_lr_scheduler *s, const em_tensor_dict *d);
/* Frees the scheduler (the optimizer keeps its current lr). NULL: no-op. */
EM_API void em_lr_scheduler_destroy(em_lr_scheduler *s);

/* ------------------------------------------------------------------------ */
/* Gradient clipping                                                         */
/* ------------------------------------------------------------------------ */

/* torch.nn.utils.clip_grad_norm_ with norm_type 2: the L2 norm of all the
 * gradients of params[0..n-1] together,
 *     total = sqrt(sum over grads and elements of g^2)
 * (accumulated in f32, or f64 when a gradient is f64), then every gradient
 * is multiplied in place by min(1, max_norm / (total + 1e-6)). The
 * coefficient is computed on the device and applied unconditionally, so the
 * clipping itself reads nothing back to the host. Parameters without a
 * gradient are skipped (NULL entries in params are an error); with no
 * gradient at all the total is 0 and nothing changes. Runs with grad mode
 * off and inside a scope of its own. A non-finite total (NaN/Inf
 * gradients) propagates into the gradients, as torch with
 * error_if_nonfinite=False. Gradients on several devices are supported
 * (their partial sums meet on the first gradient's device).
 * total_norm_out: NULL, or where the total (before clipping) is stored — the
 * one host read (a synchronisation), done after the gradients were scaled.
 * Errors: EM_ERR_NULL_ARG (params or an entry NULL), EM_ERR_INVALID_ARG
 * (n < 0, max_norm negative or NaN), or an op's status. */
EM_API em_status em_clip_grad_norm(int n, em_tensor *const *params, double max_norm,
                                   double *total_norm_out);
/* As em_clip_grad_norm, but returns the total norm as a 0-d tensor on the
 * first gradient's device (f32, or f64 when a gradient is f64; ownership
 * rule of ember.h), with no host read at all. With no gradient at all it is
 * a 0-d f32 zero on the default device. NULL on error. */
EM_API em_tensor *em_clip_grad_norm_tensor(int n, em_tensor *const *params, double max_norm);

/* torch.nn.utils.clip_grad_value_: clamps every gradient in place to
 * [-clip_value, clip_value]; parameters without a gradient are skipped.
 * clip_value >= 0 and not NaN, else EM_ERR_INVALID_ARG; EM_ERR_NULL_ARG. */
EM_API em_status em_clip_grad_value(int n, em_tensor *const *params, double clip_value);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_OPTIM_H */
