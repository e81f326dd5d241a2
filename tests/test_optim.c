/*
 * test_optim.c — optimizers, learning-rate schedules and gradient clipping
 * (api/ember_optim.h):
 *   - SGD (every valid combination of momentum, dampening, nesterov, weight
 *     decay), Adam and AdamW (weight decay, amsgrad, other betas/eps): the
 *     trajectory of several steps with hand-set gradients, in f32 and f64,
 *     against a double-precision re-implementation of torch's update written
 *     here; a parameter that skips a step (no gradient) and one that never
 *     has a gradient (untouched, no state); the state dict against the
 *     reference state;
 *   - final values of five configurations computed by PyTorch 1.13;
 *   - state dict round trip in mid-training (through the CPU device) gives an
 *     identical continuation; load errors (type, count, shape, dtype, keys,
 *     incomplete state, bad metadata) change nothing;
 *   - f32 master weights of f16/bf16 parameters: 200 steps of ~1e-3 (which
 *     a pure bf16/f16 update rounds away) follow an f32 parameter within the
 *     rounding of the master (SGD, SGD with momentum, Adam, AdamW); the
 *     "master_param" state round trip continues bit-exactly; its load errors;
 *   - option and parameter checks; zero_grad in both modes; steps inside the
 *     caller's scope; grad mode restored; no heap growth over many steps;
 *   - StepLR and cosine warm-up values step by step against their formulas,
 *     scheduler state dicts and argument checks;
 *   - clip_grad_norm (clipped and not clipped, mixed dtypes, tensor form, no
 *     gradient) against a norm computed here; clip_grad_value;
 *   - end to end: minimising sum((p - target)^2) with autograd converges with
 *     each optimizer.
 * Runs on the default device (EMBER_BACKEND=fake too).
 */
#include "test_util.h"

#include "ember_optim.h"

/* ------------------------------------------------------------------------ */
/* Reference optimizers in double (torch's single-tensor algorithms)          */
/* ------------------------------------------------------------------------ */

enum { K_SGD, K_ADAM, K_ADAMW };

typedef struct cfg {
    int kind;
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
    bool nesterov, amsgrad;
} cfg;

typedef struct ref_state {
    int64_t n;
    bool has;
    double *buf, *m, *v, *vmax;
    int64_t step;
} ref_state;

static void ref_init(ref_state *s, int64_t n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->buf = calloc((size_t)n, sizeof(double));
    s->m = calloc((size_t)n, sizeof(double));
    s->v = calloc((size_t)n, sizeof(double));
    s->vmax = calloc((size_t)n, sizeof(double));
}

static void ref_free(ref_state *s)
{
    free(s->buf);
    free(s->m);
    free(s->v);
    free(s->vmax);
}

/* One step of p (n values) with gradient g; rnd rounds each stored value
 * to the parameter's dtype (identity for the f64 reference). */
static void ref_step(const cfg *c, double *p, const double *g, ref_state *s, em_dtype dt)
{
    int64_t n = s->n;
    if (c->kind == K_SGD) {
        for (int64_t i = 0; i < n; i++) {
            double d = g[i] + c->weight_decay * p[i];
            if (c->momentum != 0) {
                if (!s->has) s->buf[i] = d;
                else s->buf[i] = c->momentum * s->buf[i] + (1 - c->dampening) * d;
                s->buf[i] = tu_round(s->buf[i], dt);
                d = c->nesterov ? d + c->momentum * s->buf[i] : s->buf[i];
            }
            p[i] = tu_round(p[i] - c->lr * d, dt);
        }
        s->has = true;
        return;
    }
    s->step++;
    double t = (double)s->step;
    double bc1 = 1 - pow(c->beta1, t), bc2 = 1 - pow(c->beta2, t);
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i];
        if (c->kind == K_ADAMW) p[i] = tu_round(p[i] * (1 - c->lr * c->weight_decay), dt);
        else gi += c->weight_decay * p[i];
        s->m[i] = tu_round(c->beta1 * s->m[i] + (1 - c->beta1) * gi, dt);
        s->v[i] = tu_round(c->beta2 * s->v[i] + (1 - c->beta2) * gi * gi, dt);
        double vv = s->v[i];
        if (c->amsgrad) {
            if (vv > s->vmax[i]) s->vmax[i] = vv;
            vv = s->vmax[i];
        }
        double denom = sqrt(vv) / sqrt(bc2) + c->eps;
        p[i] = tu_round(p[i] - (c->lr / bc1) * s->m[i] / denom, dt);
    }
    s->has = true;
}

static em_optimizer *make_opt(const cfg *c, int n, em_tensor *const *ps)
{
    if (c->kind == K_SGD) {
        em_sgd_options o = em_sgd_defaults(c->lr);
        o.momentum = c->momentum;
        o.dampening = c->dampening;
        o.weight_decay = c->weight_decay;
        o.nesterov = c->nesterov;
        return em_sgd_create(n, ps, &o);
    }
    em_adam_options o = c->kind == K_ADAM ? em_adam_defaults(c->lr) : em_adamw_defaults(c->lr);
    o.beta1 = c->beta1;
    o.beta2 = c->beta2;
    o.eps = c->eps;
    o.weight_decay = c->weight_decay;
    o.amsgrad = c->amsgrad;
    return c->kind == K_ADAM ? em_adam_create(n, ps, &o) : em_adamw_create(n, ps, &o);
}

static void cfg_str(const cfg *c, char *buf, size_t cap)
{
    if (c->kind == K_SGD)
        snprintf(buf, cap, "sgd(lr=%g momentum=%g dampening=%g wd=%g nesterov=%d)", c->lr,
                 c->momentum, c->dampening, c->weight_decay, c->nesterov);
    else
        snprintf(buf, cap, "%s(lr=%g betas=%g,%g eps=%g wd=%g amsgrad=%d)",
                 c->kind == K_ADAM ? "adam" : "adamw", c->lr, c->beta1, c->beta2, c->eps,
                 c->weight_decay, c->amsgrad);
}

/* Sets p's gradient to vals (n values, rounded to p's dtype in place). */
static void set_grad_vals(em_tensor *p, double *vals)
{
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(p, shape);
    em_dtype dt = em_tensor_dtype(p);
    int64_t n = em_tensor_numel(p);
    for (int64_t i = 0; i < n; i++) vals[i] = tu_round(vals[i], dt);
    em_tensor *g = tu_upload(vals, dt, nd, shape);
    CHECK_OK(em_set_grad(p, g));
    em_tensor_release(g);
}

/* The dtype of a parameter's optimizer state: f32 for half parameters (they
 * are updated through an f32 master copy), else the parameter's. */
static em_dtype state_dt(em_dtype dt) { return dt == EM_F16 || dt == EM_BF16 ? EM_F32 : dt; }

/* Compares dict entry `name` to ref (n values). */
static void check_state_entry(const char *label, const em_tensor_dict *d, const char *name,
                              const em_tensor *p, const double *ref, tu_tol tol)
{
    char lb[256];
    snprintf(lb, sizeof lb, "%s %s", label, name);
    if (!em_tensor_dict_has(d, name)) {
        CHECKF(0, "%s: missing from the state dict", lb);
        return;
    }
    em_tensor *t = em_tensor_dict_get(d, name);
    int64_t shape[EM_MAX_DIMS];
    int nd = em_tensor_shape(p, shape);
    tu_compare_scaled(lb, t, state_dt(em_tensor_dtype(p)), nd, shape, ref, NULL, tol, 0);
    em_tensor_release(t);
}

/* ------------------------------------------------------------------------ */
/* Trajectories against the reference                                        */
/* ------------------------------------------------------------------------ */

#define NSTEPS 6

static void trajectory(const cfg *c0, em_dtype dt)
{
    /* f16 cannot hold eps = 1e-8 nor (1 - beta2) * g^2 for small g: both
     * flush to 0 and m / 0 is inf, in torch as here. Use a larger eps. */
    cfg c1 = *c0;
    if (dt == EM_F16 && c1.kind != K_SGD && c1.eps < 1e-3) c1.eps = 1e-3;
    const cfg *c = &c1;
    char name[160];
    cfg_str(c, name, sizeof name);
    char label[200];
    snprintf(label, sizeof label, "%s %s", name, tu_dt(dt));
    /* the reference rounds the state and the parameter to the state dtype
     * sdt after each step; the library also rounds its intermediates. Half
     * parameters are updated through an f32 master copy with f32 state: the
     * reference runs in f32 on the master and the parameter must be the
     * master rounded to dt, within 8 ulps of 1 (a master within f32 rounding
     * of the reference may round to a neighbour). */
    em_dtype sdt = state_dt(dt);
    tu_tol tol = dt == EM_F64   ? (tu_tol){1e-12, 1e-12, 0}
                 : dt == EM_F32 ? (tu_tol){2e-6, 2e-6, 0}
                                : (tu_tol){8 * tu_ulp(1.0, dt), 0, 0};
    tu_tol stol = sdt == EM_F64 ? tol : (tu_tol){2e-6, 2e-6, 0};

    /* p0 [3,4] always has a gradient; p1 [5] skips step 2; p2 [2] never has one */
    const int np = 3;
    int64_t shapes[3][2] = {{3, 4}, {5, 0}, {2, 0}};
    int ndims[3] = {2, 1, 1};
    int64_t counts[3] = {12, 5, 2};
    double *ref[3];
    ref_state rs[3];
    em_tensor *ps[3];
    for (int k = 0; k < np; k++) {
        ref[k] = malloc(sizeof(double) * (size_t)counts[k]);
        tu_fill(ref[k], counts[k], dt, -2, 2);
        ps[k] = tu_upload(ref[k], dt, ndims[k], shapes[k]);
        CHECK_OK(em_requires_grad_(ps[k], true));
        ref_init(&rs[k], counts[k]);
    }
    double p2_init[2] = {ref[2][0], ref[2][1]};
    em_optimizer *o = make_opt(c, np, ps);
    CHECK_NONNULL(o);
    if (!o) goto done;
    double g[12];
    for (int step = 0; step < NSTEPS; step++) {
        for (int k = 0; k < 2; k++) {
            if (k == 1 && step == 2) {
                CHECK_OK(em_set_grad(ps[k], NULL));
                continue;
            }
            tu_fill(g, counts[k], dt, -1, 1);
            set_grad_vals(ps[k], g);
            ref_step(c, ref[k], g, &rs[k], sdt); /* ref[k]: the (master) value */
        }
        CHECK_OK(em_scope_begin()); /* the caller's scope: the state must outlive it */
        CHECK_OK(em_optimizer_step(o));
        CHECK(em_is_grad_enabled());
        CHECK_OK(em_scope_end());
    }
    for (int k = 0; k < np; k++) {
        char lb[260];
        snprintf(lb, sizeof lb, "%s: param %d after %d steps", label, k, NSTEPS);
        double pr[12];
        for (int64_t e = 0; e < counts[k]; e++) pr[e] = tu_round(ref[k][e], dt);
        tu_compare(lb, ps[k], dt, ndims[k], shapes[k], pr, tol);
    }
    /* the parameter without a gradient is untouched, exactly */
    double *p2 = tu_read(ps[2]);
    CHECKF(p2 && p2[0] == p2_init[0] && p2[1] == p2_init[1], "%s: param without grad changed",
           label);
    free(p2);

    /* the state dict holds the reference state */
    em_tensor_dict *d = em_optimizer_state_dict(o);
    CHECK_NONNULL(d);
    if (d) {
        CHECK(!strcmp(em_tensor_dict_get_meta(d, "type"),
                      c->kind == K_SGD ? "sgd" : c->kind == K_ADAM ? "adam" : "adamw"));
        CHECK(!strcmp(em_tensor_dict_get_meta(d, "param_count"), "3"));
        for (int k = 0; k < 2; k++) {
            char key[64];
            snprintf(key, sizeof key, "state.%d.master_param", k);
            if (sdt != dt) check_state_entry(label, d, key, ps[k], ref[k], stol);
            else CHECK(!em_tensor_dict_has(d, key));
            if (c->kind == K_SGD) {
                snprintf(key, sizeof key, "state.%d.momentum_buffer", k);
                if (c->momentum != 0) check_state_entry(label, d, key, ps[k], rs[k].buf, stol);
                else CHECK(!em_tensor_dict_has(d, key));
            } else {
                snprintf(key, sizeof key, "state.%d.exp_avg", k);
                check_state_entry(label, d, key, ps[k], rs[k].m, stol);
                snprintf(key, sizeof key, "state.%d.exp_avg_sq", k);
                check_state_entry(label, d, key, ps[k], rs[k].v, stol);
                snprintf(key, sizeof key, "state.%d.max_exp_avg_sq", k);
                if (c->amsgrad) check_state_entry(label, d, key, ps[k], rs[k].vmax, stol);
                else CHECK(!em_tensor_dict_has(d, key));
                snprintf(key, sizeof key, "state.%d.step", k);
                const char *sv = em_tensor_dict_get_meta(d, key);
                CHECKF(sv && atoll(sv) == rs[k].step, "%s: %s = %s, want %" PRId64, label, key,
                       sv ? sv : "(none)", rs[k].step);
            }
        }
        /* no state at all for the parameter that never had a gradient */
        for (int e = 0; e < em_tensor_dict_count(d); e++)
            CHECKF(strncmp(em_tensor_dict_name(d, e), "state.2.", 8) != 0, "%s: state for %s",
                   label, em_tensor_dict_name(d, e));
        CHECK(!em_tensor_dict_get_meta(d, "state.2.step"));
        em_tensor_dict_destroy(d);
    }
    em_optimizer_destroy(o);
done:
    for (int k = 0; k < np; k++) {
        em_tensor_release(ps[k]);
        free(ref[k]);
        ref_free(&rs[k]);
    }
}

static void test_trajectories(void)
{
    const em_dtype dts[4] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    for (int di = 0; di < 4; di++) {
        /* SGD: every valid combination */
        const double moms[2] = {0, 0.9}, damps[2] = {0, 0.5}, wds[2] = {0, 0.1};
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                for (int nest = 0; nest < 2; nest++)
                    for (int w = 0; w < 2; w++) {
                        if (nest && (moms[a] == 0 || damps[b] != 0)) continue;
                        cfg c = {K_SGD, 0.1, moms[a], damps[b], wds[w], 0, 0, 0, nest != 0, false};
                        trajectory(&c, dts[di]);
                    }
        /* Adam and AdamW */
        for (int kind = K_ADAM; kind <= K_ADAMW; kind++)
            for (int w = 0; w < 2; w++)
                for (int ams = 0; ams < 2; ams++) {
                    double wd = w ? 0.1 : (kind == K_ADAMW ? 0.01 : 0);
                    cfg c = {kind, 0.01, 0, 0, wd, 0.9, 0.999, 1e-8, false, ams != 0};
                    trajectory(&c, dts[di]);
                }
        cfg c1 = {K_ADAM, 0.05, 0, 0, 0, 0.5, 0.8, 1e-3, false, true};
        trajectory(&c1, dts[di]);
        cfg c2 = {K_ADAMW, 0.05, 0, 0, 0.2, 0.0, 0.0, 0.1, false, false};
        trajectory(&c2, dts[di]);
    }
}

/* ------------------------------------------------------------------------ */
/* PyTorch reference values                                                  */
/* ------------------------------------------------------------------------ */

/* Generated with PyTorch 1.13 (f32, CPU):
 *
 *   import torch
 *   p0 = [0.5, -1.0, 2.0, 0.25]
 *   grads = [[0.1, -0.2, 0.3, 0.0], [0.4, 0.1, -0.5, 0.2], None,
 *            [-0.3, 0.25, 0.05, -0.1], [0.2, -0.4, 0.6, 0.3]]
 *   def run(make):
 *       p = torch.tensor(p0, dtype=torch.float32, requires_grad=True)
 *       opt = make([p])
 *       for g in grads:
 *           p.grad = None if g is None else torch.tensor(g, dtype=torch.float32)
 *           opt.step()
 *       return p.detach().tolist()
 *   cfgs = {
 *    "sgd_damp_wd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1,
 *                                              weight_decay=0.01),
 *    "sgd_nesterov_wd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
 *                                                  weight_decay=0.05),
 *    "adam_wd_amsgrad": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.9), eps=1e-6,
 *                                                   weight_decay=0.1, amsgrad=True),
 *    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
 *    "adam": lambda ps: torch.optim.Adam(ps, lr=0.1),
 *   }
 *   for k, f in cfgs.items():
 *       print(k, ", ".join("%.9g" % v for v in run(f)))
 */
static void test_pytorch_values(void)
{
    static const double grads[5][4] = {{0.1, -0.2, 0.3, 0.0}, {0.4, 0.1, -0.5, 0.2}, {0},
                                       {-0.3, 0.25, 0.05, -0.1}, {0.2, -0.4, 0.6, 0.3}};
    struct {
        const char *name;
        cfg c;
        double want[4];
    } cases[] = {
        {"sgd_damp_wd", {K_SGD, 0.1, 0.9, 0.1, 0.01, 0, 0, 0, false, false},
         {0.397292018, -0.953995407, 1.93937194, 0.189254463}},
        {"sgd_nesterov_wd", {K_SGD, 0.1, 0.9, 0, 0.05, 0, 0, 0, true, false},
         {0.337380022, -0.885433137, 1.80237722, 0.137199104}},
        {"adam_wd_amsgrad", {K_ADAM, 0.01, 0, 0, 0.1, 0.8, 0.9, 1e-6, false, true},
         {0.47335431, -0.977281153, 1.97804582, 0.221430376}},
        {"adamw", {K_ADAMW, 0.01, 0, 0, 0.1, 0.9, 0.999, 1e-8, false, false},
         {0.473970652, -0.984095573, 1.98350286, 0.233511403}},
        {"adam", {K_ADAM, 0.1, 0, 0, 0, 0.9, 0.999, 1e-8, false, false},
         {0.259182304, -0.880575836, 1.9146831, 0.0949272364}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        em_tensor *p = em_tensor_from_data((const float[]){0.5f, -1.0f, 2.0f, 0.25f}, EM_F32,
                                           EM_SHAPE(4), tu_dev);
        em_optimizer *o = make_opt(&cases[k].c, 1, &p);
        CHECK_NONNULL(o);
        for (int s = 0; s < 5 && o; s++) {
            if (s == 2) {
                CHECK_OK(em_set_grad(p, NULL));
            } else {
                float gf[4];
                for (int i = 0; i < 4; i++) gf[i] = (float)grads[s][i];
                em_tensor *g = em_tensor_from_data(gf, EM_F32, EM_SHAPE(4), tu_dev);
                CHECK_OK(em_set_grad(p, g));
                em_tensor_release(g);
            }
            CHECK_OK(em_optimizer_step(o));
        }
        char lb[96];
        snprintf(lb, sizeof lb, "pytorch 1.13 reference %s", cases[k].name);
        tu_compare(lb, p, EM_F32, EM_SHAPE(4), cases[k].want, (tu_tol){1e-7, 1e-6, 0});
        em_optimizer_destroy(o);
        em_tensor_release(p);
    }
}

/* ------------------------------------------------------------------------ */
/* State dict round trip and load errors                                     */
/* ------------------------------------------------------------------------ */

/* A copy of d with its tensors on `dev` (NULL: same tensors), without the
 * entry or metadata key `drop`, and with metadata key set_key = set_val. */
static em_tensor_dict *dict_edit(const em_tensor_dict *d, em_device *dev, const char *drop,
                                 const char *set_key, const char *set_val)
{
    em_tensor_dict *r = em_tensor_dict_create();
    em_scope_begin();
    for (int i = 0; i < em_tensor_dict_count(d); i++) {
        const char *name = em_tensor_dict_name(d, i);
        if (drop && !strcmp(name, drop)) continue;
        em_tensor *t = em_tensor_dict_at(d, i);
        if (dev) t = em_tensor_to(t, dev);
        em_tensor_dict_set(r, name, t);
    }
    em_scope_end();
    for (int i = 0; i < em_tensor_dict_meta_count(d); i++) {
        const char *key = em_tensor_dict_meta_key(d, i);
        if (drop && !strcmp(key, drop)) continue;
        em_tensor_dict_set_meta(r, key, em_tensor_dict_get_meta(d, key));
    }
    if (set_key) em_tensor_dict_set_meta(r, set_key, set_val);
    return r;
}

/* n random f32 values with the given shape. */
static em_tensor *rand_tensor(int ndim, const int64_t *shape, em_dtype dt)
{
    double v[64];
    int64_t n = tu_numel(ndim, shape);
    tu_fill(v, n, dt, -1, 1);
    return tu_upload(v, dt, ndim, shape);
}

static bool same_values(const em_tensor *a, const em_tensor *b)
{
    int64_t n = em_tensor_numel(a);
    if (n != em_tensor_numel(b)) return false;
    double *x = tu_read(a), *y = tu_read(b);
    bool same = x && y && !memcmp(x, y, sizeof(double) * (size_t)n);
    free(x);
    free(y);
    return same;
}

/* Gives the same fresh gradients to pa[k] and pb[k] (k < n), except index
 * `skip` which gets none. */
static void same_grads(int n, em_tensor **pa, em_tensor **pb, int skip)
{
    for (int k = 0; k < n; k++) {
        if (k == skip) {
            em_set_grad(pa[k], NULL);
            em_set_grad(pb[k], NULL);
            continue;
        }
        double v[64];
        int64_t shape[EM_MAX_DIMS];
        int nd = em_tensor_shape(pa[k], shape);
        tu_fill(v, em_tensor_numel(pa[k]), em_tensor_dtype(pa[k]), -1, 1);
        em_tensor *g = tu_upload(v, em_tensor_dtype(pa[k]), nd, shape);
        CHECK_OK(em_set_grad(pa[k], g));
        CHECK_OK(em_set_grad(pb[k], g));
        em_tensor_release(g);
    }
}

static void test_state_roundtrip(void)
{
    cfg cases[] = {
        {K_SGD, 0.1, 0.9, 0, 0.01, 0, 0, 0, true, false},
        {K_SGD, 0.05, 0.8, 0.3, 0, 0, 0, 0, false, false},
        {K_ADAM, 0.01, 0, 0, 0.1, 0.9, 0.99, 1e-8, false, true},
        {K_ADAMW, 0.02, 0, 0, 0.05, 0.8, 0.999, 1e-6, false, false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[160];
        cfg_str(&cases[k], name, sizeof name);
        em_tensor *pa[3], *pb[3];
        pa[0] = rand_tensor(EM_SHAPE(2, 3), EM_F32);
        pa[1] = rand_tensor(EM_SHAPE(4), EM_F32);
        pa[2] = rand_tensor(EM_SHAPE(3), EM_F32);
        em_optimizer *a = make_opt(&cases[k], 3, pa);
        /* the second optimizer starts with other hyperparameters: load restores them */
        cfg other = cases[k];
        other.lr *= 3;
        other.weight_decay += 0.5;
        if (other.kind != K_SGD) other.amsgrad = !other.amsgrad;
        CHECK_NONNULL(a);
        for (int s = 0; s < 3 && a; s++) {
            same_grads(3, pa, pa, s == 1 ? 0 : 2); /* param 2 has no grad before the save */
            CHECK_OK(em_optimizer_step(a));
        }
        em_tensor_dict *d = em_optimizer_state_dict(a);
        CHECK_NONNULL(d);
        /* through the CPU, as a checkpoint read from a file would be */
        em_tensor_dict *dc = d ? dict_edit(d, em_device_cpu(), NULL, NULL, NULL) : NULL;
        for (int i = 0; i < 3; i++) pb[i] = em_clone(pa[i]);
        em_optimizer *b = make_opt(&other, 3, pb);
        CHECK_NONNULL(b);
        CHECK_OK(em_optimizer_load_state_dict(b, dc));
        CHECK(em_optimizer_get_lr(b) == cases[k].lr);
        for (int s = 0; s < 4; s++) {
            same_grads(3, pa, pb, s == 2 ? 1 : -1);
            CHECK_OK(em_optimizer_step(a));
            CHECK_OK(em_optimizer_step(b));
        }
        bool same = true;
        for (int i = 0; i < 3; i++) same = same && same_values(pa[i], pb[i]);
        CHECKF(same, "%s: continuation after a state dict round trip differs", name);
        if (same) printf("%s: state dict round trip mid-training, identical continuation ok\n", name);
        /* the dict taken earlier is a snapshot: it did not follow the later steps */
        em_tensor_dict *d2 = em_optimizer_state_dict(a);
        if (d && d2) {
            const char *key = cases[k].kind == K_SGD ? "state.0.momentum_buffer" : "state.0.exp_avg";
            em_tensor *x = em_tensor_dict_get(d, key), *y = em_tensor_dict_get(d2, key);
            CHECKF(x && y && !same_values(x, y), "%s: state dict is not a snapshot", name);
            em_tensor_release(x);
            em_tensor_release(y);
        }
        em_tensor_dict_destroy(d2);
        em_tensor_dict_destroy(dc);
        em_tensor_dict_destroy(d);
        em_optimizer_destroy(a);
        em_optimizer_destroy(b);
        for (int i = 0; i < 3; i++) {
            em_tensor_release(pa[i]);
            em_tensor_release(pb[i]);
        }
    }
}

#define CHECK_LOAD_FAILS(opt, dict, want, needle)                              \
    do {                                                                       \
        CHECK_STATUS(em_optimizer_load_state_dict((opt), (dict)), (want));     \
        em_optimizer_load_state_dict((opt), (dict));                           \
        CHECKF(strstr(em_last_error(), (needle)) != NULL,                      \
               "load error message '%s' does not mention '%s'", em_last_error(), \
               (needle));                                                      \
        em_clear_error();                                                      \
    } while (0)

static void test_load_errors(void)
{
    em_tensor *pa[2] = {rand_tensor(EM_SHAPE(2, 2), EM_F32), rand_tensor(EM_SHAPE(3), EM_F32)};
    em_tensor *pb[2] = {em_clone(pa[0]), em_clone(pa[1])};
    cfg c = {K_ADAM, 0.01, 0, 0, 0.1, 0.9, 0.999, 1e-8, false, true};
    em_optimizer *a = make_opt(&c, 2, pa), *b = make_opt(&c, 2, pb);
    CHECK(a && b);
    if (!a || !b) return;
    for (int s = 0; s < 2; s++) {
        same_grads(2, pa, pb, -1);
        em_optimizer_step(a);
        em_optimizer_step(b);
    }
    em_tensor_dict *d = em_optimizer_state_dict(a);

    /* wrong type */
    em_tensor *ps1[1] = {pb[0]};
    em_optimizer *sgd = em_sgd_create(2, pb, NULL);
    CHECK_LOAD_FAILS(sgd, d, EM_ERR_INVALID_ARG, "'adam'");
    em_tensor_dict *dsgd = em_optimizer_state_dict(sgd);
    CHECK_LOAD_FAILS(b, dsgd, EM_ERR_INVALID_ARG, "'sgd'");
    em_tensor_dict_destroy(dsgd);
    em_optimizer_destroy(sgd);
    /* wrong count */
    em_optimizer *one = em_adam_create(1, ps1, NULL);
    CHECK_LOAD_FAILS(one, d, EM_ERR_INVALID_ARG, "2 parameters");
    em_optimizer_destroy(one);
    /* wrong shape, wrong dtype */
    em_tensor *qs[2] = {rand_tensor(EM_SHAPE(4), EM_F32), rand_tensor(EM_SHAPE(3), EM_F32)};
    em_optimizer *qo = make_opt(&c, 2, qs);
    CHECK_LOAD_FAILS(qo, d, EM_ERR_SHAPE, "state.0.exp_avg");
    em_optimizer_destroy(qo);
    em_tensor_release(qs[0]);
    em_tensor_release(qs[1]);
    qs[0] = rand_tensor(EM_SHAPE(2, 2), EM_F32);
    qs[1] = rand_tensor(EM_SHAPE(3), EM_F64);
    qo = make_opt(&c, 2, qs);
    CHECK_LOAD_FAILS(qo, d, EM_ERR_DTYPE, "f64");
    em_optimizer_destroy(qo);
    em_tensor_release(qs[0]);
    em_tensor_release(qs[1]);

    /* edited dicts, loaded into b (which must stay as it is) */
    em_tensor_dict *e;
    e = dict_edit(d, NULL, "state.1.exp_avg_sq", NULL, NULL);
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "state.1.exp_avg_sq");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, "state.0.max_exp_avg_sq", NULL, NULL);
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "max_exp_avg_sq");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, "state.0.step", NULL, NULL);
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "state.0.step");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, NULL, "lr", "-1");
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "lr");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, NULL, "beta2", "one");
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "beta2");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, "eps", NULL, NULL);
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "eps");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, NULL, "amsgrad", "false");
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "max_exp_avg_sq");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, NULL, "state.5.step", "3");
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "state.5.step");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, NULL, "state.0.step", "0");
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "state.0.step");
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, NULL, NULL, NULL);
    {
        em_tensor *extra = rand_tensor(EM_SHAPE(3), EM_F32);
        em_tensor_dict_set(e, "state.1.bogus", extra);
        CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "state.1.bogus");
        em_tensor_dict_destroy(e);
        e = dict_edit(d, NULL, NULL, NULL, NULL);
        em_tensor_dict_set(e, "state.7.exp_avg", extra);
        CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "parameter 7");
        em_tensor_dict_destroy(e);
        e = dict_edit(d, NULL, NULL, NULL, NULL);
        em_tensor_dict_set(e, "state.01.exp_avg", extra);
        CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "state.01.exp_avg");
        em_tensor_release(extra);
    }
    em_tensor_dict_destroy(e);
    e = dict_edit(d, NULL, "type", NULL, NULL);
    CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "type");
    em_tensor_dict_destroy(e);
    CHECK_STATUS(em_optimizer_load_state_dict(b, NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_optimizer_load_state_dict(NULL, d), EM_ERR_NULL_ARG);
    /* extra metadata of other owners is ignored */
    e = dict_edit(d, NULL, NULL, "epoch", "12");
    CHECK_OK(em_optimizer_load_state_dict(b, e));
    em_tensor_dict_destroy(e);

    /* b is unchanged by the failed loads: it continues exactly as a */
    CHECK(em_optimizer_get_lr(b) == 0.01);
    for (int s = 0; s < 2; s++) {
        same_grads(2, pa, pb, -1);
        CHECK_OK(em_optimizer_step(a));
        CHECK_OK(em_optimizer_step(b));
    }
    CHECKF(same_values(pa[0], pb[0]) && same_values(pa[1], pb[1]),
           "failed loads changed the optimizer");
    em_tensor_dict_destroy(d);
    em_optimizer_destroy(a);
    em_optimizer_destroy(b);
    for (int i = 0; i < 2; i++) {
        em_tensor_release(pa[i]);
        em_tensor_release(pb[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* f32 master weights of f16/bf16 parameters                                 */
/* ------------------------------------------------------------------------ */

#define MW_N 4
#define MW_STEPS 200

/* Gives p the gradient g (MW_N values) in p's dtype. */
static void mw_grad(em_tensor *p, const double *g)
{
    em_tensor *t = tu_upload(g, em_tensor_dtype(p), 1, (const int64_t[]){MW_N});
    CHECK_OK(em_set_grad(p, t));
    em_tensor_release(t);
}

/* Many steps of lr * g ~ 1e-3 on a bf16 parameter (and an f16 one): a pure
 * bf16/f16 update would round every step away (bf16(1 - 1e-3) == 1; f16
 * gets 16x smaller steps); with
 * the f32 master copy the parameter follows the f32 reference, within the
 * rounding of the master to the half type. */
static void mw_small_steps(const cfg *c0, em_dtype dt)
{
    /* f16 has 3 more mantissa bits than bf16: 16x smaller steps stall it */
    double scale = dt == EM_F16 ? 1.0 / 16 : 1.0;
    cfg c1 = *c0;
    c1.lr *= scale;
    const cfg *c = &c1;
    char name[200], label[240];
    cfg_str(c, name, sizeof name);
    snprintf(label, sizeof label, "master weights %s %s", name, tu_dt(dt));
    const double p0[MW_N] = {1.0, -2.0, 1.5, 3.0};
    const double g[MW_N] = {1.0, -1.0, 0.5, 0.25}; /* exact in every dtype */
    em_tensor *ph = tu_upload(p0, dt, 1, (const int64_t[]){MW_N});
    em_tensor *pf = tu_upload(p0, EM_F32, 1, (const int64_t[]){MW_N});
    CHECK_OK(em_requires_grad_(ph, true));
    CHECK_OK(em_requires_grad_(pf, true));
    em_optimizer *oh = make_opt(c, 1, &ph), *of = make_opt(c, 1, &pf);
    CHECK(oh && of);
    /* references in double: f32 state (the master), and the pure half update */
    double ref[MW_N], pure[MW_N];
    ref_state rs, rp;
    ref_init(&rs, MW_N);
    ref_init(&rp, MW_N);
    memcpy(ref, p0, sizeof ref);
    memcpy(pure, p0, sizeof pure);
    for (int s = 0; s < MW_STEPS && oh && of; s++) {
        mw_grad(ph, g);
        mw_grad(pf, g);
        CHECK_OK(em_optimizer_step(oh));
        CHECK_OK(em_optimizer_step(of));
        ref_step(c, ref, g, &rs, EM_F32);
        ref_step(c, pure, g, &rp, dt);
    }
    /* the premise: pure half updates stall */
    for (int e = 0; e < MW_N; e++)
        CHECKF(pure[e] == p0[e], "%s: a pure %s update moved element %d (%g -> %g): the test "
               "does not show the stall", label, tu_dt(dt), e, p0[e], pure[e]);
    double *vh = tu_read(ph), *vf = tu_read(pf), *vm = NULL;
    em_tensor_dict *d = oh ? em_optimizer_state_dict(oh) : NULL;
    em_tensor *m = d ? em_tensor_dict_get(d, "state.0.master_param") : NULL;
    CHECKF(m && em_tensor_dtype(m) == EM_F32, "%s: no f32 state.0.master_param", label);
    if (m) vm = tu_read(m);
    bool ok = vh && vf && vm;
    for (int e = 0; ok && e < MW_N; e++) {
        double moved = fabs(vf[e] - p0[e]);
        /* the f32 parameter moved (as the reference) */
        CHECKF(fabs(vf[e] - ref[e]) <= 1e-4 * fabs(ref[e]) && moved > 0.02 * scale,
               "%s: f32 element %d is %.9g, reference %.9g (moved %g)", label, e, vf[e], ref[e],
               moved);
        /* the master follows the f32 parameter */
        CHECKF(fabs(vm[e] - vf[e]) <= 1e-4 * fabs(vf[e]), "%s: master element %d is %.9g, f32 "
               "parameter %.9g", label, e, vm[e], vf[e]);
        /* the half parameter is the master rounded, so within half an ulp of it */
        CHECKF(vh[e] == tu_round(vm[e], dt), "%s: element %d is %.9g, the master %.9g rounds to "
               "%.9g", label, e, vh[e], vm[e], tu_round(vm[e], dt));
        CHECKF(fabs(vh[e] - vf[e]) <= tu_ulp(vf[e], dt), "%s: element %d is %.9g, the f32 "
               "parameter %.9g (more than one %s ulp apart)", label, e, vh[e], vf[e], tu_dt(dt));
    }
    if (ok) printf("%s: %d steps of ~1e-3 moved 1.0 to %.6g (f32: %.6g)\n", label, MW_STEPS,
                   vh[0], vf[0]);
    free(vh);
    free(vf);
    free(vm);
    em_tensor_release(m);
    em_tensor_dict_destroy(d);
    em_optimizer_destroy(oh);
    em_optimizer_destroy(of);
    em_tensor_release(ph);
    em_tensor_release(pf);
    ref_free(&rs);
    ref_free(&rp);
}

/* State dict round trip with master copies: identical continuation, bit
 * for bit, of the parameters and of the masters. */
static void mw_roundtrip(const cfg *c)
{
    char name[200];
    cfg_str(c, name, sizeof name);
    em_tensor *pa[3], *pb[3];
    pa[0] = rand_tensor(EM_SHAPE(2, 3), EM_BF16);
    pa[1] = rand_tensor(EM_SHAPE(4), EM_F16);
    pa[2] = rand_tensor(EM_SHAPE(3), EM_F32);
    em_optimizer *a = make_opt(c, 3, pa);
    CHECK_NONNULL(a);
    for (int s = 0; s < 5 && a; s++) {
        same_grads(3, pa, pa, -1);
        CHECK_OK(em_optimizer_step(a));
    }
    em_tensor_dict *d = a ? em_optimizer_state_dict(a) : NULL;
    CHECK_NONNULL(d);
    if (d) {
        CHECK(em_tensor_dict_has(d, "state.0.master_param"));
        CHECK(em_tensor_dict_has(d, "state.1.master_param"));
        CHECK(!em_tensor_dict_has(d, "state.2.master_param"));
    }
    em_tensor_dict *dc = d ? dict_edit(d, em_device_cpu(), NULL, NULL, NULL) : NULL;
    for (int i = 0; i < 3; i++) pb[i] = em_clone(pa[i]);
    em_optimizer *b = make_opt(c, 3, pb);
    CHECK_OK(em_optimizer_load_state_dict(b, dc));
    for (int s = 0; s < 6 && a && b; s++) {
        same_grads(3, pa, pb, s == 3 ? 1 : -1);
        CHECK_OK(em_optimizer_step(a));
        CHECK_OK(em_optimizer_step(b));
    }
    bool same = true;
    for (int i = 0; i < 3; i++) same = same && same_values(pa[i], pb[i]);
    em_tensor_dict *da = a ? em_optimizer_state_dict(a) : NULL;
    em_tensor_dict *db = b ? em_optimizer_state_dict(b) : NULL;
    for (int i = 0; i < 2 && da && db; i++) {
        char key[64];
        snprintf(key, sizeof key, "state.%d.master_param", i);
        em_tensor *x = em_tensor_dict_get(da, key), *y = em_tensor_dict_get(db, key);
        same = same && x && y && same_values(x, y);
        em_tensor_release(x);
        em_tensor_release(y);
    }
    CHECKF(same, "%s: continuation with master copies after a round trip differs", name);
    if (same) printf("%s: bf16/f16 master copies, round trip continues bit-exactly ok\n", name);

    /* errors: a master for an f32 parameter; a master of the wrong dtype */
    if (d && b) {
        em_tensor *extra = rand_tensor(EM_SHAPE(3), EM_F32);
        em_tensor_dict *e = dict_edit(d, NULL, NULL, NULL, NULL);
        em_tensor_dict_set(e, "state.2.master_param", extra);
        CHECK_LOAD_FAILS(b, e, EM_ERR_INVALID_ARG, "state.2.master_param");
        em_tensor_dict_destroy(e);
        em_tensor_release(extra);
        em_tensor *half = rand_tensor(EM_SHAPE(2, 3), EM_BF16);
        e = dict_edit(d, NULL, NULL, NULL, NULL);
        em_tensor_dict_set(e, "state.0.master_param", half);
        CHECK_LOAD_FAILS(b, e, EM_ERR_DTYPE, "state.0.master_param");
        em_tensor_dict_destroy(e);
        em_tensor_release(half);
        /* a dict without master copies (older) loads; the masters are
         * taken again from the parameters */
        e = dict_edit(d, NULL, "state.0.master_param", NULL, NULL);
        CHECK_OK(em_optimizer_load_state_dict(b, e));
        em_tensor_dict_destroy(e);
        same_grads(3, pb, pb, -1);
        CHECK_OK(em_optimizer_step(b));
    }
    em_tensor_dict_destroy(da);
    em_tensor_dict_destroy(db);
    em_tensor_dict_destroy(dc);
    em_tensor_dict_destroy(d);
    em_optimizer_destroy(a);
    em_optimizer_destroy(b);
    for (int i = 0; i < 3; i++) {
        em_tensor_release(pa[i]);
        em_tensor_release(pb[i]);
    }
}

static void test_master_weights(void)
{
    cfg sgd = {K_SGD, 1e-3, 0, 0, 0, 0, 0, 0, false, false};
    cfg sgd_mom = {K_SGD, 1e-4, 0.9, 0, 0, 0, 0, 0, false, false};
    cfg adam = {K_ADAM, 1e-3, 0, 0, 0, 0.9, 0.999, 1e-8, false, false};
    cfg adamw = {K_ADAMW, 1e-3, 0, 0, 0.01, 0.9, 0.999, 1e-8, false, true};
    const em_dtype dts[2] = {EM_BF16, EM_F16};
    for (int k = 0; k < 2; k++) {
        mw_small_steps(&sgd, dts[k]);
        mw_small_steps(&sgd_mom, dts[k]);
        mw_small_steps(&adam, dts[k]);
        mw_small_steps(&adamw, dts[k]);
    }
    cfg rt_sgd = {K_SGD, 0.05, 0.9, 0, 0.01, 0, 0, 0, true, false};
    cfg rt_sgd0 = {K_SGD, 0.05, 0, 0, 0, 0, 0, 0, false, false};
    cfg rt_adam = {K_ADAM, 0.01, 0, 0, 0.1, 0.9, 0.99, 1e-8, false, true};
    cfg rt_adamw = {K_ADAMW, 0.02, 0, 0, 0.05, 0.8, 0.999, 1e-6, false, false};
    mw_roundtrip(&rt_sgd);
    mw_roundtrip(&rt_sgd0);
    mw_roundtrip(&rt_adam);
    mw_roundtrip(&rt_adamw);
}

/* ------------------------------------------------------------------------ */
/* Options, parameters, zero_grad, scopes, memory                            */
/* ------------------------------------------------------------------------ */

#define CHECK_CREATE_FAILS(expr, want, needle)                                 \
    do {                                                                       \
        em_clear_error();                                                      \
        em_optimizer *o_ = (expr);                                             \
        CHECKF(o_ == NULL && em_last_status() == (want) &&                     \
                   strstr(em_last_error(), (needle)) != NULL,                  \
               "%s: got %s '%s', want %s mentioning '%s'", #expr,              \
               o_ ? "an optimizer" : em_status_str(em_last_status()),          \
               em_last_error(), em_status_str(want), (needle));                \
        em_optimizer_destroy(o_);                                              \
        em_clear_error();                                                      \
    } while (0)

static void test_options(void)
{
    em_tensor *p = rand_tensor(EM_SHAPE(3), EM_F32);
    em_tensor *ps[1] = {p};
    em_sgd_options s = em_sgd_defaults(0.1);
    CHECK(s.lr == 0.1 && s.momentum == 0 && s.dampening == 0 && s.weight_decay == 0 && !s.nesterov);
    em_adam_options a = em_adam_defaults(0.1), aw = em_adamw_defaults(0.1);
    CHECK(a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8 && a.weight_decay == 0 && !a.amsgrad);
    CHECK(aw.weight_decay == 0.01 && aw.beta1 == 0.9);

    s.lr = -0.1;
    CHECK_CREATE_FAILS(em_sgd_create(1, ps, &s), EM_ERR_INVALID_ARG, "lr");
    s = em_sgd_defaults(NAN);
    CHECK_CREATE_FAILS(em_sgd_create(1, ps, &s), EM_ERR_INVALID_ARG, "lr");
    s = em_sgd_defaults(0.1);
    s.momentum = -0.5;
    CHECK_CREATE_FAILS(em_sgd_create(1, ps, &s), EM_ERR_INVALID_ARG, "momentum");
    s = em_sgd_defaults(0.1);
    s.dampening = 1.5;
    CHECK_CREATE_FAILS(em_sgd_create(1, ps, &s), EM_ERR_INVALID_ARG, "dampening");
    s = em_sgd_defaults(0.1);
    s.weight_decay = -1;
    CHECK_CREATE_FAILS(em_sgd_create(1, ps, &s), EM_ERR_INVALID_ARG, "weight_decay");
    s = em_sgd_defaults(0.1);
    s.nesterov = true;
    CHECK_CREATE_FAILS(em_sgd_create(1, ps, &s), EM_ERR_INVALID_ARG, "nesterov");
    s.momentum = 0.9;
    s.dampening = 0.1;
    CHECK_CREATE_FAILS(em_sgd_create(1, ps, &s), EM_ERR_INVALID_ARG, "dampening");

    a = em_adam_defaults(0.1);
    a.beta1 = 1.0;
    CHECK_CREATE_FAILS(em_adam_create(1, ps, &a), EM_ERR_INVALID_ARG, "beta1");
    a = em_adam_defaults(0.1);
    a.beta2 = -0.1;
    CHECK_CREATE_FAILS(em_adamw_create(1, ps, &a), EM_ERR_INVALID_ARG, "beta2");
    a = em_adam_defaults(0.1);
    a.eps = -1e-8;
    CHECK_CREATE_FAILS(em_adam_create(1, ps, &a), EM_ERR_INVALID_ARG, "eps");
    a = em_adam_defaults(-1);
    CHECK_CREATE_FAILS(em_adam_create(1, ps, &a), EM_ERR_INVALID_ARG, "lr");
    a = em_adamw_defaults(0.1);
    a.weight_decay = INFINITY;
    CHECK_CREATE_FAILS(em_adamw_create(1, ps, &a), EM_ERR_INVALID_ARG, "weight_decay");

    /* parameters */
    CHECK_CREATE_FAILS(em_sgd_create(1, NULL, NULL), EM_ERR_NULL_ARG, "params");
    CHECK_CREATE_FAILS(em_sgd_create(0, ps, NULL), EM_ERR_INVALID_ARG, "empty");
    em_tensor *withnull[2] = {p, NULL};
    CHECK_CREATE_FAILS(em_adam_create(2, withnull, NULL), EM_ERR_NULL_ARG, "params[1]");
    em_tensor *dup[2] = {p, p};
    CHECK_CREATE_FAILS(em_adam_create(2, dup, NULL), EM_ERR_INVALID_ARG, "same tensor");
    em_tensor *ints = em_zeros(EM_I64, EM_SHAPE(3), tu_dev);
    em_tensor *withint[2] = {p, ints};
    CHECK_CREATE_FAILS(em_sgd_create(2, withint, NULL), EM_ERR_DTYPE, "i64");
    em_tensor *leaf = rand_tensor(EM_SHAPE(3), EM_F32);
    em_requires_grad_(leaf, true);
    em_tensor *nonleaf = em_mul_scalar(leaf, 2.0);
    em_tensor *withnl[1] = {nonleaf};
    CHECK_CREATE_FAILS(em_sgd_create(1, withnl, NULL), EM_ERR_INVALID_ARG, "leaf");
    em_tensor_release(nonleaf);
    em_tensor_release(leaf);
    em_tensor_release(ints);

    /* NULL options: torch's defaults with lr 1e-3 */
    em_optimizer *o = em_adamw_create(1, ps, NULL);
    CHECK(o && em_optimizer_get_lr(o) == 1e-3 && !strcmp(em_optimizer_type(o), "adamw"));
    em_tensor_dict *d = o ? em_optimizer_state_dict(o) : NULL;
    CHECK(d && !strcmp(em_tensor_dict_get_meta(d, "weight_decay"), "0.01") &&
          !strcmp(em_tensor_dict_get_meta(d, "amsgrad"), "false"));
    em_tensor_dict_destroy(d);
    CHECK_STATUS(em_optimizer_set_lr(o, -1), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_optimizer_set_lr(o, INFINITY), EM_ERR_INVALID_ARG);
    CHECK(em_optimizer_get_lr(o) == 1e-3);
    CHECK_OK(em_optimizer_set_lr(o, 0.25));
    CHECK(em_optimizer_get_lr(o) == 0.25);
    CHECK(em_optimizer_param_count(o) == 1 && em_optimizer_param(o, 0) == p);
    em_clear_error();
    CHECK(em_optimizer_param(o, 1) == NULL && em_last_status() == EM_ERR_INDEX);
    em_clear_error();
    em_optimizer_destroy(o);
    o = em_sgd_create(1, ps, NULL);
    CHECK(o && em_optimizer_get_lr(o) == 1e-3 && !strcmp(em_optimizer_type(o), "sgd"));
    em_optimizer_destroy(o);
    o = em_adam_create(1, ps, NULL);
    CHECK(o && !strcmp(em_optimizer_type(o), "adam"));
    em_optimizer_destroy(o);

    CHECK_STATUS(em_optimizer_step(NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_optimizer_zero_grad(NULL, true), EM_ERR_NULL_ARG);
    em_clear_error();
    CHECK(isnan(em_optimizer_get_lr(NULL)) && em_last_status() == EM_ERR_NULL_ARG);
    em_clear_error();
    em_optimizer_destroy(NULL);
    em_tensor_release(p);
}

static void test_zero_grad_and_ownership(void)
{
    /* the optimizer retains its parameters: the caller may drop its reference */
    em_tensor *p = rand_tensor(EM_SHAPE(4), EM_F32);
    em_requires_grad_(p, true);
    em_tensor *ps[1] = {p};
    em_optimizer *o = em_sgd_create(1, ps, &(em_sgd_options){0.5, 0.9, 0, 0, false});
    CHECK_NONNULL(o);
    if (!o) return;
    em_tensor_release(p);
    p = em_optimizer_param(o, 0);

    /* a backward through the parameter, then zero_grad in place */
    CHECK_OK(em_scope_begin());
    CHECK_OK(em_backward(em_sum(em_square(p), NULL, 0, false), NULL, false, false));
    CHECK_OK(em_scope_end());
    em_tensor *g0 = em_grad(p);
    CHECK_NONNULL(g0);
    CHECK_OK(em_optimizer_step(o));
    CHECK_OK(em_optimizer_zero_grad(o, false));
    em_tensor *g1 = em_grad(p);
    CHECK(g1 == g0); /* same tensor: memory kept */
    double zeros[4] = {0, 0, 0, 0};
    if (g1) tu_compare_exact("zero_grad(set_to_none=false) zeroes in place", g1, EM_F32,
                             EM_SHAPE(4), zeros);
    em_tensor_release(g1);
    em_tensor_release(g0);
    /* zero gradient: the step still applies momentum */
    double *before = tu_read(p);
    CHECK_OK(em_optimizer_step(o));
    double *after = tu_read(p);
    CHECK(before && after && memcmp(before, after, sizeof(double) * 4) != 0);
    free(before);
    free(after);
    /* set_to_none: the gradient is dropped and the next step skips the parameter */
    CHECK_OK(em_optimizer_zero_grad(o, true));
    CHECK(em_grad(p) == NULL && em_last_status() == EM_OK);
    before = tu_read(p);
    CHECK_OK(em_optimizer_step(o));
    after = tu_read(p);
    CHECK(before && after && memcmp(before, after, sizeof(double) * 4) == 0);
    free(before);
    free(after);

    /* grad mode: off inside step, restored (also when it was off) */
    bool prev = em_set_grad_enabled(false);
    CHECK_OK(em_optimizer_step(o));
    CHECK(!em_is_grad_enabled());
    em_set_grad_enabled(prev);

    /* step adds nothing to the caller's scope and keeps its state across it */
    same_grads(1, &p, &p, -1);
    CHECK_OK(em_scope_begin());
    CHECK_OK(em_optimizer_step(o));
    em_tensor *probe = em_zeros(EM_F32, EM_SHAPE(1), tu_dev);
    CHECK_NONNULL(em_scope_keep(probe)); /* the scope still works normally */
    CHECK_OK(em_scope_end());
    em_tensor_release(probe);
    CHECK_OK(em_optimizer_step(o));
    em_optimizer_destroy(o);
}

static void test_no_heap_growth(void)
{
    em_tensor *ps[2] = {rand_tensor(EM_SHAPE(8, 8), EM_F32), rand_tensor(EM_SHAPE(8), EM_F32)};
    em_adam_options ao = em_adam_defaults(0.01);
    ao.amsgrad = true;
    ao.weight_decay = 0.01;
    em_optimizer *o = em_adam_create(2, ps, &ao);
    CHECK_NONNULL(o);
    same_grads(2, ps, ps, -1);
    long growth[3] = {0, 0, 0};
    for (int r = 0; r < 3 && o; r++) {
        size_t before = tu_heap_in_use();
        for (int s = 0; s < 200; s++) em_optimizer_step(o);
        growth[r] = (long)tu_heap_in_use() - (long)before;
    }
    printf("200 Adam steps x3: heap growth %ld, %ld, %ld bytes\n", growth[0], growth[1], growth[2]);
    CHECKF(growth[1] < 1024 && growth[2] < 1024, "optimizer steps grew the heap by %ld, %ld bytes",
           growth[1], growth[2]);
    em_optimizer_destroy(o);
    em_tensor_release(ps[0]);
    em_tensor_release(ps[1]);
}

/* ------------------------------------------------------------------------ */
/* Learning-rate schedules                                                   */
/* ------------------------------------------------------------------------ */

static double want_cosine(double base, int w, int total, double min_lr, int t)
{
    if (t < w) return base * t / w;
    if (t >= total) return min_lr;
    double pr = (double)(t - w) / (double)(total - w);
    return min_lr + 0.5 * (base - min_lr) * (1 + cos(M_PI * pr));
}

static bool near(double a, double b) { return fabs(a - b) <= 1e-14 * (1 + fabs(b)); }

static void test_schedules(void)
{
    em_tensor *p = rand_tensor(EM_SHAPE(2), EM_F32);
    em_optimizer *o = em_sgd_create(1, &p, &(em_sgd_options){0.5, 0, 0, 0, false});
    CHECK_NONNULL(o);
    if (!o) return;

    em_lr_scheduler *s = em_step_lr_create(o, 3, 0.1);
    CHECK_NONNULL(s);
    CHECK(em_optimizer_get_lr(o) == 0.5 && em_lr_scheduler_get_lr(s) == 0.5);
    int bad = 0;
    for (int t = 1; t <= 10; t++) {
        CHECK_OK(em_lr_scheduler_step(s));
        double want = 0.5 * pow(0.1, t / 3);
        if (!near(em_optimizer_get_lr(o), want) || !near(em_lr_scheduler_get_lr(s), want) ||
            em_lr_scheduler_last_step(s) != t) {
            printf("step_lr t=%d: lr %.17g, want %.17g\n", t, em_optimizer_get_lr(o), want);
            bad++;
        }
        if (t == 4) { /* a manual lr lasts until the next scheduler step */
            em_optimizer_set_lr(o, 123.0);
            CHECK(em_optimizer_get_lr(o) == 123.0);
        }
    }
    CHECKF(!bad, "StepLR values differ from base_lr * gamma^floor(t / step_size)");
    if (!bad) printf("StepLR(step_size 3, gamma 0.1) t = 0..10 ok\n");
    /* state dict: a new scheduler continues where this one is */
    em_tensor_dict *d = em_lr_scheduler_state_dict(s);
    CHECK(d && !strcmp(em_tensor_dict_get_meta(d, "type"), "step_lr"));
    em_tensor *q = rand_tensor(EM_SHAPE(2), EM_F32);
    em_optimizer *o2 = em_sgd_create(1, &q, &(em_sgd_options){7.0, 0, 0, 0, false});
    em_lr_scheduler *s2 = em_step_lr_create(o2, 1, 0.9);
    CHECK_OK(em_lr_scheduler_load_state_dict(s2, d));
    CHECK(em_lr_scheduler_last_step(s2) == 10 && em_optimizer_get_lr(o2) == em_optimizer_get_lr(o));
    em_lr_scheduler_step(s);
    em_lr_scheduler_step(s2);
    CHECK(em_optimizer_get_lr(o2) == em_optimizer_get_lr(o));
    em_lr_scheduler_destroy(s);

    /* cosine warm-up */
    const int W = 4, T = 10;
    const double base = 1.0, min_lr = 0.1;
    em_optimizer_set_lr(o, base);
    s = em_cosine_warmup_lr_create(o, W, T, min_lr);
    CHECK_NONNULL(s);
    CHECK(em_optimizer_get_lr(o) == 0.0);
    bad = 0;
    for (int t = 1; t <= T + 3 && s; t++) {
        CHECK_OK(em_lr_scheduler_step(s));
        double want = want_cosine(base, W, T, min_lr, t);
        if (!near(em_optimizer_get_lr(o), want) || !near(em_lr_scheduler_get_lr(s), want)) {
            printf("cosine t=%d: lr %.17g, want %.17g\n", t, em_optimizer_get_lr(o), want);
            bad++;
        }
    }
    CHECKF(!bad, "cosine warm-up values differ from the formula");
    if (!bad) printf("cosine warm-up (W 4, T 10, min_lr 0.1) t = 0..13 ok\n");
    CHECK(em_optimizer_get_lr(o) == min_lr);
    /* a scheduler of another type refuses the state */
    CHECK_STATUS(em_lr_scheduler_load_state_dict(s, d), EM_ERR_INVALID_ARG);
    em_tensor_dict_destroy(d);
    d = em_lr_scheduler_state_dict(s);
    em_tensor_dict_set_meta(d, "min_lr", "5");
    CHECK_STATUS(em_lr_scheduler_load_state_dict(s, d), EM_ERR_INVALID_ARG);
    CHECK(em_lr_scheduler_last_step(s) == T + 3);
    em_tensor_dict_destroy(d);
    em_lr_scheduler_destroy(s);
    /* no warm-up: starts at base_lr; lr(T/2) is the midpoint */
    em_optimizer_set_lr(o, 2.0);
    s = em_cosine_warmup_lr_create(o, 0, 4, 0.0);
    CHECK(s && em_optimizer_get_lr(o) == 2.0);
    em_lr_scheduler_step(s);
    em_lr_scheduler_step(s);
    CHECK(near(em_optimizer_get_lr(o), 1.0));
    em_lr_scheduler_destroy(s);

    /* argument checks */
    em_clear_error();
    CHECK(!em_step_lr_create(o, 0, 0.5) && strstr(em_last_error(), "step_size"));
    em_clear_error();
    CHECK(!em_step_lr_create(o, 2, 0.0) && strstr(em_last_error(), "gamma"));
    em_clear_error();
    CHECK(!em_step_lr_create(o, 2, NAN) && strstr(em_last_error(), "gamma"));
    em_clear_error();
    CHECK(!em_step_lr_create(NULL, 2, 0.5) && em_last_status() == EM_ERR_NULL_ARG);
    em_clear_error();
    CHECK(!em_cosine_warmup_lr_create(o, -1, 10, 0) && strstr(em_last_error(), "warmup_steps"));
    em_clear_error();
    CHECK(!em_cosine_warmup_lr_create(o, 10, 10, 0) && strstr(em_last_error(), "total_steps"));
    em_clear_error();
    CHECK(!em_cosine_warmup_lr_create(o, 1, 10, 3.0) && strstr(em_last_error(), "min_lr"));
    em_clear_error();
    CHECK(!em_cosine_warmup_lr_create(o, 1, 10, -0.1) && strstr(em_last_error(), "min_lr"));
    em_clear_error();
    CHECK_STATUS(em_lr_scheduler_step(NULL), EM_ERR_NULL_ARG);
    em_lr_scheduler_destroy(NULL);
    em_lr_scheduler_destroy(s2);
    em_optimizer_destroy(o2);
    em_optimizer_destroy(o);
    em_tensor_release(q);
    em_tensor_release(p);
}

/* ------------------------------------------------------------------------ */
/* Gradient clipping                                                         */
/* ------------------------------------------------------------------------ */

static void clip_case(bool mixed, double factor, bool tensor_form)
{
    /* p0 [3,4], p1 [7] (f64 when mixed), p2 [2] without gradient */
    em_tensor *ps[3] = {rand_tensor(EM_SHAPE(3, 4), EM_F32),
                        rand_tensor(EM_SHAPE(7), mixed ? EM_F64 : EM_F32),
                        rand_tensor(EM_SHAPE(2), EM_F32)};
    double g0[12], g1[7];
    tu_fill(g0, 12, EM_F32, -1, 1);
    tu_fill(g1, 7, mixed ? EM_F64 : EM_F32, -1, 1);
    set_grad_vals(ps[0], g0);
    set_grad_vals(ps[1], g1);
    double sq = 0;
    for (int i = 0; i < 12; i++) sq += g0[i] * g0[i];
    for (int i = 0; i < 7; i++) sq += g1[i] * g1[i];
    double norm = sqrt(sq), max_norm = factor * norm;
    double total = NAN;
    if (tensor_form) {
        em_tensor *t = em_clip_grad_norm_tensor(3, ps, max_norm);
        CHECK(t && em_tensor_ndim(t) == 0 && em_tensor_dtype(t) == (mixed ? EM_F64 : EM_F32));
        if (t) em_tensor_item(t, &total);
        em_tensor_release(t);
    } else {
        CHECK_OK(em_clip_grad_norm(3, ps, max_norm, &total));
    }
    char lb[128];
    snprintf(lb, sizeof lb, "clip_grad_norm%s %s max_norm = %g x norm", tensor_form ? "_tensor" : "",
             mixed ? "f32+f64" : "f32", factor);
    CHECKF(fabs(total - norm) <= 1e-6 * norm, "%s: total %.17g, want %.17g", lb, total, norm);
    double coef = max_norm / (norm + 1e-6);
    if (coef > 1) coef = 1;
    double r0[12], r1[7];
    for (int i = 0; i < 12; i++) r0[i] = g0[i] * coef;
    for (int i = 0; i < 7; i++) r1[i] = g1[i] * coef;
    em_tensor *gg0 = em_grad(ps[0]), *gg1 = em_grad(ps[1]);
    char l0[160], l1[160];
    snprintf(l0, sizeof l0, "%s: grad 0", lb);
    snprintf(l1, sizeof l1, "%s: grad 1", lb);
    if (factor >= 1) { /* not clipped: the coefficient is exactly 1 */
        tu_compare_exact(l0, gg0, EM_F32, EM_SHAPE(3, 4), r0);
        tu_compare_exact(l1, gg1, mixed ? EM_F64 : EM_F32, EM_SHAPE(7), r1);
    } else {
        tu_compare(l0, gg0, EM_F32, EM_SHAPE(3, 4), r0, (tu_tol){1e-7, 1e-6, 0});
        tu_compare(l1, gg1, mixed ? EM_F64 : EM_F32, EM_SHAPE(7), r1, (tu_tol){1e-7, 1e-6, 0});
        double s2 = 0;
        double *a = tu_read(gg0), *b = tu_read(gg1);
        for (int i = 0; a && b && i < 12; i++) s2 += a[i] * a[i];
        for (int i = 0; a && b && i < 7; i++) s2 += b[i] * b[i];
        CHECKF(fabs(sqrt(s2) - max_norm) <= 1e-5 * max_norm, "%s: norm after %.9g, want %.9g", lb,
               sqrt(s2), max_norm);
        free(a);
        free(b);
    }
    em_tensor_release(gg0);
    em_tensor_release(gg1);
    CHECK(em_grad(ps[2]) == NULL);
    for (int i = 0; i < 3; i++) em_tensor_release(ps[i]);
}

static void test_clip(void)
{
    for (int mixed = 0; mixed < 2; mixed++) {
        clip_case(mixed, 0.3, false);
        clip_case(mixed, 2.0, false);
        clip_case(mixed, 0.5, true);
    }
    /* no gradient at all: total 0, nothing to do */
    em_tensor *p = rand_tensor(EM_SHAPE(3), EM_F32);
    double total = -1;
    CHECK_OK(em_clip_grad_norm(1, &p, 1.0, &total));
    CHECK(total == 0);
    CHECK_OK(em_clip_grad_norm(0, NULL, 1.0, NULL));
    /* argument checks */
    CHECK_STATUS(em_clip_grad_norm(1, &p, -1.0, NULL), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_clip_grad_norm(1, &p, NAN, NULL), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_clip_grad_norm(-1, &p, 1.0, NULL), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_clip_grad_norm(1, NULL, 1.0, NULL), EM_ERR_NULL_ARG);
    em_tensor *withnull[2] = {p, NULL};
    CHECK_STATUS(em_clip_grad_norm(2, withnull, 1.0, NULL), EM_ERR_NULL_ARG);
    CHECK_FAILS(em_clip_grad_norm_tensor(1, &p, -2.0), EM_ERR_INVALID_ARG);
    /* clip_grad_value */
    double g[3] = {-2.0, 0.25, 3.0}, want[3] = {-0.5, 0.25, 0.5};
    set_grad_vals(p, g);
    CHECK_OK(em_clip_grad_value(1, &p, 0.5));
    em_tensor *gp = em_grad(p);
    tu_compare_exact("clip_grad_value 0.5", gp, EM_F32, EM_SHAPE(3), want);
    em_tensor_release(gp);
    CHECK_STATUS(em_clip_grad_value(1, &p, -0.5), EM_ERR_INVALID_ARG);
    CHECK_STATUS(em_clip_grad_value(2, withnull, 0.5), EM_ERR_NULL_ARG);
    em_tensor_release(p);
}

/* ------------------------------------------------------------------------ */
/* End to end: minimise sum((p - target)^2)                                  */
/* ------------------------------------------------------------------------ */

static void e2e(const char *label, em_optimizer *(*make)(int, em_tensor *const *), int steps,
                int cosine, double tol)
{
    double tv[8], pv[8];
    tu_fill(tv, 8, EM_F32, -2, 2);
    tu_fill(pv, 8, EM_F32, -2, 2);
    em_tensor *target = tu_upload(tv, EM_F32, EM_SHAPE(8));
    em_tensor *p = tu_upload(pv, EM_F32, EM_SHAPE(8));
    em_requires_grad_(p, true);
    em_optimizer *o = make(1, &p);
    CHECK_NONNULL(o);
    em_lr_scheduler *s = cosine && o ? em_cosine_warmup_lr_create(o, steps / 10, steps, 0.0) : NULL;
    double first = NAN, last = NAN;
    for (int k = 0; k < steps && o; k++) {
        em_scope_begin();
        em_tensor *loss = em_sum(em_square(em_sub(p, target)), NULL, 0, false);
        em_optimizer_zero_grad(o, k % 2 == 0);
        em_status st = em_backward(loss, NULL, false, false);
        if (st == EM_OK) st = em_clip_grad_norm(1, &p, 100.0, NULL);
        if (st == EM_OK) st = em_optimizer_step(o);
        if (st == EM_OK && s) st = em_lr_scheduler_step(s);
        if (k == 0) em_tensor_item(loss, &first);
        if (k == steps - 1) em_tensor_item(loss, &last);
        em_scope_end();
        if (st != EM_OK) {
            CHECKF(0, "%s: step %d failed", label, k);
            break;
        }
    }
    double *got = tu_read(p);
    double err = 0;
    for (int i = 0; got && i < 8; i++) err = fmax(err, fabs(got[i] - tv[i]));
    printf("%s: loss %.4g -> %.4g after %d steps, max |p - target| %.3g\n", label, first, last,
           steps, err);
    CHECKF(got && err < tol, "%s does not converge: max |p - target| %g >= %g", label, err, tol);
    free(got);
    em_lr_scheduler_destroy(s);
    em_optimizer_destroy(o);
    em_tensor_release(p);
    em_tensor_release(target);
}

static em_optimizer *mk_sgd(int n, em_tensor *const *ps)
{
    return em_sgd_create(n, ps, &(em_sgd_options){0.1, 0, 0, 0, false});
}
static em_optimizer *mk_sgd_nesterov(int n, em_tensor *const *ps)
{
    return em_sgd_create(n, ps, &(em_sgd_options){0.05, 0.9, 0, 0, true});
}
static em_optimizer *mk_sgd_damp(int n, em_tensor *const *ps)
{
    return em_sgd_create(n, ps, &(em_sgd_options){0.05, 0.5, 0.5, 1e-4, false});
}
static em_optimizer *mk_adam(int n, em_tensor *const *ps)
{
    em_adam_options o = em_adam_defaults(0.1);
    return em_adam_create(n, ps, &o);
}
static em_optimizer *mk_adam_ams(int n, em_tensor *const *ps)
{
    em_adam_options o = em_adam_defaults(0.1);
    o.amsgrad = true;
    return em_adam_create(n, ps, &o);
}
static em_optimizer *mk_adamw(int n, em_tensor *const *ps)
{
    em_adam_options o = em_adamw_defaults(0.1);
    o.weight_decay = 1e-4;
    return em_adamw_create(n, ps, &o);
}

static void test_end_to_end(void)
{
    e2e("SGD lr 0.1", mk_sgd, 100, 0, 1e-4);
    e2e("SGD nesterov momentum 0.9", mk_sgd_nesterov, 200, 0, 1e-4);
    e2e("SGD momentum+dampening", mk_sgd_damp, 200, 0, 1e-3);
    e2e("Adam + cosine warm-up", mk_adam, 300, 1, 1e-2);
    e2e("Adam amsgrad + cosine warm-up", mk_adam_ams, 300, 1, 1e-2);
    e2e("AdamW + cosine warm-up", mk_adamw, 300, 1, 1e-2);
}

int main(void)
{
    tu_init("test_optim");
    test_trajectories();
    test_pytorch_values();
    test_state_roundtrip();
    test_load_errors();
    test_master_weights();
    test_options();
    test_zero_grad_and_ownership();
    test_no_heap_growth();
    test_schedules();
    test_clip();
    test_end_to_end();
    return tu_finish();
}
