/*
 * optim_internal.h — the optimizer object shared by nn/optim.c (common
 * part: creation, zero_grad, lr, state dicts), nn/optim_sgd.c and
 * nn/optim_adam.c (option checks and the update rules). Not installed.
 */
#ifndef EMBER_NN_OPTIM_INTERNAL_H
#define EMBER_NN_OPTIM_INTERNAL_H

#include "ember_optim.h"
#include "nn_internal.h"

typedef enum em__optim_kind { EM__OPTIM_SGD, EM__OPTIM_ADAM, EM__OPTIM_ADAMW } em__optim_kind;

/* State slots per parameter (the state dict's field names). */
enum { EM__SLOT_MOMENTUM = 0 };                                     /* SGD  */
enum { EM__SLOT_EXP_AVG = 0, EM__SLOT_EXP_AVG_SQ = 1, EM__SLOT_MAX_EXP_AVG_SQ = 2 }; /* Adam */
/* Every kind: the f32 master copy of an f16/bf16 parameter ("master_param"). */
enum { EM__SLOT_MASTER = 3 };
#define EM__OPTIM_SLOTS 4

/* Hyperparameters of every kind (the unused ones stay 0). */
typedef struct em__optim_hparams {
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
    bool nesterov, amsgrad;
} em__optim_hparams;

struct em_optimizer {
    em__optim_kind kind;
    em__optim_hparams h;
    int n;
    em_tensor **params;  /* n, retained                                     */
    em_tensor **state;   /* n * EM__OPTIM_SLOTS, owned, NULL until created  */
    int64_t *steps;      /* n, Adam step counts                             */
};

/* The state slot names of a kind ("momentum_buffer", ...); NULL for unused. */
EM_INTERNAL const char *em__optim_slot_name(em__optim_kind kind, int slot);
/* "sgd", "adam", "adamw". */
EM_INTERNAL const char *em__optim_kind_name(em__optim_kind kind);

/* Checks the options (fn names the caller in the message); EM_OK or
 * EM_ERR_INVALID_ARG naming the option. */
EM_INTERNAL em_status em__sgd_check(const char *fn, const em__optim_hparams *h);
EM_INTERNAL em_status em__adam_check(const char *fn, const em__optim_hparams *h);

/* Allocates the optimizer over the parameters (checked, retained), with h
 * already checked. NULL on error. */
EM_INTERNAL em_optimizer *em__optim_create(const char *fn, em__optim_kind kind, int n,
                                           em_tensor *const *params,
                                           const em__optim_hparams *h);

/* The update of one parameter p (its gradient g) with index i; runs inside
 * the step's scope with grad mode off. */
EM_INTERNAL em_status em__sgd_update(em_optimizer *o, int i, em_tensor *p, em_tensor *g);
EM_INTERNAL em_status em__adam_update(em_optimizer *o, int i, em_tensor *p, em_tensor *g);

/* A state tensor: zeros (or a copy of src, cast, when non-NULL) with p's
 * shape and device and the state dtype of p (em__optim_state_dtype),
 * carrying one reference for the optimizer (not owned by any scope). NULL on
 * error. */
EM_INTERNAL em_tensor *em__optim_new_state(const em_tensor *p, const em_tensor *src);

/* The dtype of p's optimizer state: f32 for f16/bf16 parameters (which are
 * updated through an f32 master copy), else p's own dtype. */
EM_INTERNAL em_dtype em__optim_state_dtype(const em_tensor *p);
/* True for f16/bf16 parameters (they get an f32 master copy). */
EM_INTERNAL bool em__optim_has_master(const em_tensor *p);

/* For a parameter with a master copy: the master (slot EM__SLOT_MASTER,
 * created from p on first use) in *w and the gradient cast to f32 in *g
 * (scope-owned). Otherwise *w = p and *g stays. EM_OK or the failing op's
 * status. After the update, em__optim_write_back copies the master into p
 * (rounded to nearest even). */
EM_INTERNAL em_status em__optim_master(em_optimizer *o, int i, em_tensor *p, em_tensor **w,
                                       em_tensor **g);
EM_INTERNAL em_status em__optim_write_back(em_tensor *p, const em_tensor *w);

#endif /* EMBER_NN_OPTIM_INTERNAL_H */
