/*
 * loss.c — the loss functions of api/ember_nn.h (torch.nn.functional):
 * cross_entropy (class indices or probabilities, ignore_index, label
 * smoothing), nll_loss, mse_loss, l1_loss, binary_cross_entropy and
 * binary_cross_entropy_with_logits, with mean/sum/none reductions.
 *
 * Each loss checks its arguments, then composes differentiable public ops
 * inside a scope of its own (temporaries are freed at its end; the result
 * is kept for the caller), so gradients come from autograd and every
 * backend runs them.
 */
#include "ember_nn.h"
#include "nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

static em_status check_reduction(const char *fn, em_reduction r)
{
    if (r == EM_REDUCTION_MEAN || r == EM_REDUCTION_SUM || r == EM_REDUCTION_NONE) return EM_OK;
    return em__fail(EM_ERR_INVALID_ARG,
                    "%s: reduction %d is not EM_REDUCTION_MEAN, EM_REDUCTION_SUM or "
                    "EM_REDUCTION_NONE",
                    fn, (int)r);
}

static em_status check_float(const char *fn, const char *what, const em_tensor *t)
{
    if (em_dtype_is_float(em_tensor_dtype(t))) return EM_OK;
    char d[96];
    return em__fail(EM_ERR_DTYPE, "%s: %s must be floating point, got %s", fn, what,
                    em__nn_describe(t, d, sizeof d));
}

/* Checks for the elementwise losses: non-NULL, floating, same shape. */
static em_status check_pair(const char *fn, const char *an, const em_tensor *a, const char *bn,
                            const em_tensor *b, em_reduction r)
{
    if (!a) return em__null_arg(fn, an);
    if (!b) return em__null_arg(fn, bn);
    em_status st = check_reduction(fn, r);
    if (st == EM_OK) st = check_float(fn, an, a);
    if (st == EM_OK) st = check_float(fn, bn, b);
    if (st != EM_OK) return st;
    int64_t sa[EM_MAX_DIMS], sb[EM_MAX_DIMS];
    int na = em_tensor_shape(a, sa), nb = em_tensor_shape(b, sb);
    bool same = na == nb;
    for (int i = 0; same && i < na; i++) same = sa[i] == sb[i];
    if (!same) {
        char da[96], db[96];
        return em__fail(EM_ERR_SHAPE, "%s: %s %s and %s %s must have the same shape", fn, an,
                        em__nn_describe(a, da, sizeof da), bn, em__nn_describe(b, db, sizeof db));
    }
    return EM_OK;
}

/* Reduces an elementwise loss. */
static em_tensor *reduce(em_tensor *l, em_reduction r)
{
    switch (r) {
    case EM_REDUCTION_MEAN: return em_mean(l, NULL, 0, false);
    case EM_REDUCTION_SUM: return em_sum(l, NULL, 0, false);
    default: return l;
    }
}

/* Opens the loss's scope; returns false (error recorded) when it cannot. */
static bool begin(void) { return em_scope_begin() == EM_OK; }

/* Hands y to the caller's scope and closes the loss's scope. */
static em_tensor *end(em_tensor *y)
{
    if (y && !em_scope_keep(y)) y = NULL;
    em_scope_end();
    return y;
}

/* ------------------------------------------------------------------------ */
/* Elementwise losses                                                        */
/* ------------------------------------------------------------------------ */

em_tensor *em_mse_loss(const em_tensor *input, const em_tensor *target, em_reduction reduction)
{
    if (check_pair("em_mse_loss", "input", input, "target", target, reduction) != EM_OK ||
        !begin())
        return NULL;
    return end(reduce(em_square(em_sub(input, target)), reduction));
}

em_tensor *em_l1_loss(const em_tensor *input, const em_tensor *target, em_reduction reduction)
{
    if (check_pair("em_l1_loss", "input", input, "target", target, reduction) != EM_OK ||
        !begin())
        return NULL;
    return end(reduce(em_abs(em_sub(input, target)), reduction));
}

em_tensor *em_bce_loss(const em_tensor *probs, const em_tensor *target, em_reduction reduction)
{
    if (check_pair("em_bce_loss", "probs", probs, "target", target, reduction) != EM_OK ||
        !begin())
        return NULL;
    /* -(y log p + (1 - y) log(1 - p)), each log clamped to >= -100 as torch */
    em_tensor *logp = em_clamp(em_log(probs), -100.0, INFINITY);
    em_tensor *log1mp = em_clamp(em_log(em_add_scalar(em_neg(probs), 1.0)), -100.0, INFINITY);
    em_tensor *one_minus_y = em_add_scalar(em_neg(target), 1.0);
    em_tensor *l = em_neg(em_add(em_mul(target, logp), em_mul(one_minus_y, log1mp)));
    return end(reduce(l, reduction));
}

em_tensor *em_bce_with_logits_loss(const em_tensor *logits, const em_tensor *target,
                                   em_reduction reduction)
{
    if (check_pair("em_bce_with_logits_loss", "logits", logits, "target", target, reduction) !=
            EM_OK ||
        !begin())
        return NULL;
    /* (1 - y) x + max(-x, 0) + log(1 + exp(-|x|)), the form torch evaluates:
     * the two linear terms cancel exactly for hard labels and the log term
     * never overflows. -|x| is written as where(x >= 0, -x, x) so that the
     * gradient at x = 0 is sigmoid(0) - y = 0.5 - y (abs'(0) = 0 would give
     * 1 - y there). */
    const em_tensor *x = logits;
    em_tensor *one_minus_y = em_add_scalar(em_neg(target), 1.0);
    em_tensor *neg_abs = em_where(em_ge_scalar(x, 0.0), em_neg(x), x);
    em_tensor *l = em_add(em_add(em_mul(one_minus_y, x), em_relu(em_neg(x))),
                          em_softplus(neg_abs, 1.0, 20.0));
    return end(reduce(l, reduction));
}

/* ------------------------------------------------------------------------ */
/* Classification losses                                                     */
/* ------------------------------------------------------------------------ */

/* Checks input [C] / [N, C] / [N, C, d...] against integer targets of the
 * input's shape without the class dim. */
static em_status check_class_target(const char *fn, const char *in_name, const em_tensor *in,
                                    const em_tensor *target, bool allow_probs, bool *probs)
{
    char a[96], b[96];
    int64_t si[EM_MAX_DIMS], st[EM_MAX_DIMS];
    int ni = em_tensor_shape(in, si), nt = em_tensor_shape(target, st);
    *probs = false;
    if (ni < 1)
        return em__fail(EM_ERR_SHAPE,
                        "%s: %s must have a class dim ([C], [N, C] or [N, C, d...]), got %s", fn,
                        in_name, em__nn_describe(in, a, sizeof a));
    int cdim = ni == 1 ? 0 : 1;
    if (si[cdim] == 0)
        return em__fail(EM_ERR_SHAPE, "%s: %s %s has no classes", fn, in_name,
                        em__nn_describe(in, a, sizeof a));
    em_dtype tdt = em_tensor_dtype(target);
    if (allow_probs && em_dtype_is_float(tdt)) {
        bool same = nt == ni;
        for (int i = 0; same && i < ni; i++) same = st[i] == si[i];
        if (!same)
            return em__fail(EM_ERR_SHAPE,
                            "%s: floating target %s is read as class probabilities and must have "
                            "the shape of %s %s (class indices must be i32 or i64)",
                            fn, em__nn_describe(target, b, sizeof b), in_name, em__nn_describe(in, a, sizeof a));
        *probs = true;
        return EM_OK;
    }
    if (tdt != EM_I32 && tdt != EM_I64)
        return em__fail(EM_ERR_DTYPE, "%s: target must hold class indices (i32 or i64)%s, got %s",
                        fn, allow_probs ? " or class probabilities (floating)" : "",
                        em__nn_describe(target, b, sizeof b));
    bool fits = nt == ni - 1;
    for (int i = 0, j = 0; fits && i < ni; i++) {
        if (i == cdim) continue;
        fits = st[j++] == si[i];
    }
    if (!fits) {
        int64_t want[EM_MAX_DIMS];
        int nw = 0;
        for (int i = 0; i < ni; i++)
            if (i != cdim) want[nw++] = si[i];
        char w[160];
        int n = snprintf(w, sizeof w, "[");
        for (int i = 0; i < nw; i++)
            n += snprintf(w + n, sizeof w - (size_t)n, "%s%lld", i ? "," : "", (long long)want[i]);
        snprintf(w + n, sizeof w - (size_t)n, "]");
        return em__fail(EM_ERR_SHAPE,
                        "%s: target %s does not fit %s %s: class indices need shape %s (%s "
                        "without its class dim %d)",
                        fn, em__nn_describe(target, b, sizeof b), in_name, em__nn_describe(in, a, sizeof a), w,
                        in_name, cdim);
    }
    return EM_OK;
}

/* Rewrites the pending EM_ERR_INDEX (from gather or the fused kernel) as the
 * loss's own message, keeping the detail. */
static void target_out_of_range(const char *fn, int64_t classes, int64_t ignore_index)
{
    char msg[1536];
    snprintf(msg, sizeof msg, "%s", em_last_error());
    em_clear_error();
    em__fail(EM_ERR_INDEX, "%s: a target is out of range [0, %lld) and is not ignore_index (%lld): %s",
             fn, (long long)classes, (long long)ignore_index, msg);
}

/* Reduces per-row losses (0 in ignored rows): MEAN divides by the number of
 * rows not ignored (a 0-d tensor: no host sync; 0/0 is NaN, as torch). */
static em_tensor *reduce_rows(em_tensor *rows, const em_tensor *target, em_reduction r,
                              int64_t ignore_index)
{
    if (r != EM_REDUCTION_MEAN) return reduce(rows, r);
    em_tensor *count = em_sum(em_ne_scalar(target, (double)ignore_index), NULL, 0, false);
    return em_div(em_sum(rows, NULL, 0, false), count);
}

/* The per-element negative log-likelihood of integer targets (0 where
 * ignored) and, in *ignored, the bool mask of ignored entries. */
static em_tensor *nll_elements(const char *fn, const em_tensor *logp, const em_tensor *target,
                               int64_t ignore_index, em_tensor **ignored)
{
    int cdim = em_tensor_ndim(logp) == 1 ? 0 : 1;
    *ignored = em_eq_scalar(target, (double)ignore_index);
    em_tensor *safe = em_masked_fill(target, *ignored, 0.0);
    if (!safe) return NULL;
    em_tensor *picked = em_gather(logp, cdim, em_unsqueeze(safe, cdim));
    if (!picked) {
        if (em_last_status() == EM_ERR_INDEX)
            target_out_of_range(fn, em_tensor_dim(logp, cdim), ignore_index);
        return NULL;
    }
    return em_masked_fill(em_neg(em_squeeze(picked, cdim)), *ignored, 0.0);
}

/* The integer-target loss, reduced: nll with MEAN dividing by the number
 * of entries that are not ignored (an i64 0-d tensor: no host sync; 0/0 is
 * NaN as torch), plus label smoothing when smoothing > 0. */
static em_tensor *nll_reduced(const char *fn, const em_tensor *logp, const em_tensor *target,
                              em_reduction reduction, int64_t ignore_index, double smoothing)
{
    em_tensor *ignored = NULL;
    em_tensor *l = nll_elements(fn, logp, target, ignore_index, &ignored);
    if (!l) return NULL;
    em_tensor *count = NULL;
    if (reduction == EM_REDUCTION_MEAN)
        count = em_sum(em_ne_scalar(target, (double)ignore_index), NULL, 0, false);
    em_tensor *loss = reduction == EM_REDUCTION_MEAN ? em_div(em_sum(l, NULL, 0, false), count)
                                                     : reduce(l, reduction);
    if (smoothing == 0.0) return loss;
    /* eps * (mean over classes of -log_softmax), ignored entries excluded,
     * reduced like the nll term */
    int cdim = em_tensor_ndim(logp) == 1 ? 0 : 1;
    double C = (double)em_tensor_dim(logp, cdim);
    em_tensor *smooth =
        em_masked_fill(em_neg(em_sum(logp, (const int[]){cdim}, 1, false)), ignored, 0.0);
    em_tensor *sred = reduction == EM_REDUCTION_MEAN
                          ? em_div(em_sum(smooth, NULL, 0, false), count)
                          : reduce(smooth, reduction);
    return em_add(em_mul_scalar(loss, 1.0 - smoothing), em_mul_scalar(sred, smoothing / C));
}

em_tensor *em_nll_loss(const em_tensor *log_probs, const em_tensor *target,
                       em_reduction reduction, int64_t ignore_index)
{
    static const char *fn = "em_nll_loss";
    if (!log_probs) {
        em__null_arg(fn, "log_probs");
        return NULL;
    }
    if (!target) {
        em__null_arg(fn, "target");
        return NULL;
    }
    bool probs;
    if (check_reduction(fn, reduction) != EM_OK ||
        check_float(fn, "log_probs", log_probs) != EM_OK ||
        check_class_target(fn, "log_probs", log_probs, target, false, &probs) != EM_OK ||
        !begin())
        return NULL;
    return end(nll_reduced(fn, log_probs, target, reduction, ignore_index, 0.0));
}

em_tensor *em_cross_entropy(const em_tensor *logits, const em_tensor *target,
                            em_reduction reduction, int64_t ignore_index, double label_smoothing)
{
    static const char *fn = "em_cross_entropy";
    if (!logits) {
        em__null_arg(fn, "logits");
        return NULL;
    }
    if (!target) {
        em__null_arg(fn, "target");
        return NULL;
    }
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) {
        em__fail(EM_ERR_INVALID_ARG, "%s: label_smoothing must be in [0, 1], got %g", fn,
                 label_smoothing);
        return NULL;
    }
    bool probs;
    if (check_reduction(fn, reduction) != EM_OK || check_float(fn, "logits", logits) != EM_OK ||
        check_class_target(fn, "logits", logits, target, true, &probs) != EM_OK || !begin())
        return NULL;
    if (!probs) { /* the fused kernel, where the backend has it (one pass per row) */
        em_tensor *rows = NULL;
        em_status st = em__cross_entropy_rows(logits, target, ignore_index, label_smoothing, &rows);
        if (st == EM_OK) return end(reduce_rows(rows, target, reduction, ignore_index));
        if (st != EM_ERR_UNSUPPORTED) {
            if (st == EM_ERR_INDEX) target_out_of_range(fn, em_tensor_dim(logits, 1), ignore_index);
            return end(NULL);
        }
    }
    int cdim = em_tensor_ndim(logits) == 1 ? 0 : 1;
    em_tensor *logp = em_log_softmax(logits, cdim);
    if (!probs) return end(nll_reduced(fn, logp, target, reduction, ignore_index, label_smoothing));
    /* class probabilities: -sum_c q_c log p_c with q = (1 - eps) t + eps / C;
     * MEAN averages over the samples (numel / C), as torch */
    const em_tensor *q = target;
    if (label_smoothing > 0.0) {
        double C = (double)em_tensor_dim(logits, cdim);
        q = em_add_scalar(em_mul_scalar(target, 1.0 - label_smoothing), label_smoothing / C);
    }
    em_tensor *l = em_neg(em_sum(em_mul(logp, q), (const int[]){cdim}, 1, false));
    return end(reduce(l, reduction));
}
