/*
 * cpu_softmax.c — SOFTMAX and LOG_SOFTMAX along params.dim.
 *
 * Each row along dim is handled on its own: read (converted to f32, or
 * f64 for f64) into a dense buffer unless it already is one, then max,
 * sum of exp(x - max) accumulated in double, and the write-back. Rows are
 * split over the pool. f32 uses the vectorisable cpu_expf. A row whose max
 * is NaN or infinite gives NaN, as x - max does (PyTorch agrees).
 *
 * Not for: logsumexp (cpu_reduce.c).
 */
#include "cpu_internal.h"
#include "cpu_math.h"

#include <stdatomic.h>
#include <stdlib.h>

#define STACK_ROW 2048

typedef struct sm_job {
    const em_tdesc *x, *o;
    int dim, log;
    int64_t len, xs, os; /* row length, strides along dim (elements) */
    int n_outer;
    int64_t oshape[EM_MAX_DIMS], oxs[EM_MAX_DIMS], oos[EM_MAX_DIMS];
    _Atomic int status;
} sm_job;

CPU_MATH_CLONES static void row_f(float *v, int64_t n, int want_log)
{
    const float m = (float)cpu_extreme_f(-INFINITY, v, n, 1);
    double acc[8] = {0};
    float e[64];
    for (int64_t i = 0; i < n; i += 64) {
        int64_t c = n - i < 64 ? n - i : 64;
        float *dst = want_log ? e : v + i;
        for (int64_t k = 0; k < c; k++) dst[k] = cpu_expf(v[i + k] - m);
        if (c < 64) {
            if (dst != e) memcpy(e, dst, (size_t)c * sizeof(float));
            for (int64_t k = c; k < 64; k++) e[k] = 0;
            dst = e;
        }
        for (int k = 0; k < 64; k += 8)
            for (int j = 0; j < 8; j++) acc[j] += (double)dst[k + j];
    }
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    if (!want_log) {
        const float inv = (float)(1.0 / s);
        for (int64_t i = 0; i < n; i++) v[i] *= inv;
    } else {
        const float sub = (float)((double)m + log(s));
        for (int64_t i = 0; i < n; i++) v[i] = v[i] - sub;
    }
}

CPU_MATH_CLONES static void row_d(double *v, int64_t n, int want_log)
{
    const double m = cpu_extreme_d(-INFINITY, v, n, 1);
    double s = 0;
    if (!want_log) {
        for (int64_t i = 0; i < n; i++) {
            v[i] = exp(v[i] - m);
            s += v[i];
        }
        double inv = 1.0 / s;
        for (int64_t i = 0; i < n; i++) v[i] *= inv;
    } else {
        for (int64_t i = 0; i < n; i++) s += exp(v[i] - m);
        double sub = m + log(s);
        for (int64_t i = 0; i < n; i++) v[i] = v[i] - sub;
    }
}

static void rows_task(void *ctx, int64_t b, int64_t e)
{
    sm_job *j = ctx;
    const int dt = j->x->dtype;
    const int64_t es = (int64_t)cpu_dtype_size(dt), n = j->len;
    const int isd = dt == EM_F64;
    const size_t vbytes = (size_t)n * (isd ? 8 : 4);
    double stackbuf[STACK_ROW / 2 + 1];
    void *buf = stackbuf;
    if (vbytes > sizeof stackbuf && !(dt == EM_F32 && j->os == 1)) {
        buf = malloc(vbytes);
        if (!buf) {
            atomic_store(&j->status, EM_ERR_OUT_OF_MEMORY);
            return;
        }
    }
    const char *xb = cpu_ptr(j->x);
    char *ob = cpu_ptr(j->o);
    int64_t idx[EM_MAX_DIMS], rest = b, xo = 0, oo = 0;
    for (int d = j->n_outer - 1; d >= 0; d--) {
        idx[d] = rest % j->oshape[d];
        rest /= j->oshape[d];
        xo += idx[d] * j->oxs[d];
        oo += idx[d] * j->oos[d];
    }
    const int64_t xs = j->xs * es, os = j->os * es;
    for (int64_t r = b; r < e; r++) {
        const char *xp = xb + xo * es;
        char *op = ob + oo * es;
        if (isd) {
            double *v = buf;
            for (int64_t i = 0; i < n; i++) v[i] = *(const double *)(xp + i * xs);
            row_d(v, n, j->log);
            for (int64_t i = 0; i < n; i++) *(double *)(op + i * os) = v[i];
        } else if (dt == EM_F32 && os == 4) {
            /* dense f32 output row: work in place there */
            float *v = (float *)op;
            if (xs == 4) {
                if ((const char *)v != xp) memmove(v, xp, (size_t)n * 4);
            } else {
                for (int64_t i = 0; i < n; i++) v[i] = *(const float *)(xp + i * xs);
            }
            row_f(v, n, j->log);
        } else {
            float *v = buf;
            if (dt == EM_F32)
                for (int64_t i = 0; i < n; i++) v[i] = *(const float *)(xp + i * xs);
            else if (dt == EM_F16)
                for (int64_t i = 0; i < n; i++)
                    v[i] = em_f16_to_f32(*(const uint16_t *)(xp + i * xs));
            else
                for (int64_t i = 0; i < n; i++)
                    v[i] = em_bf16_to_f32(*(const uint16_t *)(xp + i * xs));
            row_f(v, n, j->log);
            if (dt == EM_F32)
                for (int64_t i = 0; i < n; i++) *(float *)(op + i * os) = v[i];
            else if (dt == EM_F16)
                for (int64_t i = 0; i < n; i++) *(uint16_t *)(op + i * os) = em_f32_to_f16(v[i]);
            else
                for (int64_t i = 0; i < n; i++) *(uint16_t *)(op + i * os) = em_f32_to_bf16(v[i]);
        }
        for (int d = j->n_outer - 1; d >= 0; d--) {
            if (++idx[d] < j->oshape[d]) {
                xo += j->oxs[d];
                oo += j->oos[d];
                break;
            }
            idx[d] = 0;
            xo -= (j->oshape[d] - 1) * j->oxs[d];
            oo -= (j->oshape[d] - 1) * j->oos[d];
        }
    }
    if (buf != stackbuf) free(buf);
}

em_status em__cpu_k_softmax(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 1, 1, 1);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *o = &c->out[0];
    int dt = x->dtype, dim = c->params->dim;
    if (!cpu_dtype_is_float(dt) || o->dtype != dt)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: softmax on %s -> %s", em__cpu_dtype_name(dt),
                            em__cpu_dtype_name(o->dtype));
    if ((st = em__cpu_check_shape("softmax input", x, o->ndim, o->shape))) return st;
    if (x->ndim == 0) dim = 0;
    else if (dim < 0 || dim >= x->ndim)
        return em__cpu_fail(EM_ERR_INVALID_ARG, "cpu: softmax dim %d for a %d-d tensor", dim,
                            x->ndim);
    sm_job j = {.x = x, .o = o, .dim = dim, .log = c->op == EM_OP_LOG_SOFTMAX,
                .len = x->ndim ? x->shape[dim] : 1, .xs = x->ndim ? x->strides[dim] : 0,
                .os = o->ndim ? o->strides[dim] : 0, .status = EM_OK};
    int64_t rows = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d == dim || x->shape[d] == 1) continue;
        j.oshape[j.n_outer] = x->shape[d];
        j.oxs[j.n_outer] = x->strides[d];
        j.oos[j.n_outer] = o->strides[d];
        j.n_outer++;
        rows *= x->shape[d];
    }
    int64_t rgrain = (CPU_GRAIN_MATH + j.len - 1) / j.len;
    em__cpu_parallel_range(rows, rgrain * 2 > 2 ? rgrain * 2 : 2, 1, rows_task, &j);
    if (atomic_load(&j.status))
        return em__cpu_fail((em_status)atomic_load(&j.status),
                            "cpu: softmax: out of memory for a row of %lld", (long long)j.len);
    return EM_OK;
}
