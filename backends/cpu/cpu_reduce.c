/*
 * cpu_reduce.c — reductions: sum, mean, max, min, argmax, argmin, var,
 * std, logsumexp (keepdim form; reduce_mask bit d = dim d reduced).
 *
 * Geometry: size-1 dims are dropped, the rest split into kept dims (the
 * output's) and reduced dims, and each group is merged where strides allow
 * (reduced dims are kept in row-major order for argmax/argmin, whose index
 * is the row-major position in the reduced set).
 *
 * Two ways to run:
 *   A. per output: the reduced set is walked as runs along its innermost
 *      dim; runs are converted in chunks to the reduction type (float for
 *      f32/f16/bf16, double for f64, int64 for i32/i64/bool) and consumed
 *      by vectorisable multi-lane loops. Outputs are split over the pool;
 *      with fewer outputs than threads the reduced range of each output is
 *      split instead and the partial states merged in order.
 *   B. across outputs, for sum/mean/max/min when the innermost kept dim is
 *      dense in the input and the reduced dims are outer to it (column
 *      sums): a block of up to 2048 outputs is accumulated row by row, so
 *      whole rows are read in order; with fewer blocks than threads the
 *      reduced range is split too and the partial blocks merged in order.
 * C. every reduced dim of size 1 (sum/mean, f32/f64): one elementwise pass.
 * Accumulation: floats in double, integers in int64. var/std and logsumexp
 * take two passes (mean, resp. max, first). NaN propagates through
 * max/min; argmax/argmin take the first occurrence, and a NaN counts as
 * the extreme.
 *
 * Not for: softmax/log_softmax (cpu_softmax.c).
 */
#include "cpu_internal.h"
#include "cpu_math.h"

#include <stdlib.h>

#define CHUNK 256

enum { RC_F, RC_D, RC_I }; /* reduction input class: float, double, int64 */

enum { K_SUM, K_MAX, K_MIN, K_ARGMAX, K_ARGMIN, K_SUMSQ, K_SUMEXP };

typedef struct rgeom {
    int nk, nr;
    int64_t ks[EM_MAX_DIMS], kx[EM_MAX_DIMS], ko[EM_MAX_DIMS]; /* kept: size, x/out stride */
    int64_t rs[EM_MAX_DIMS], rx[EM_MAX_DIMS];                   /* reduced: size, x stride */
    int64_t nout, nred;
} rgeom;

typedef struct rstate {
    double d;    /* float sum / extreme                                   */
    int64_t i;   /* integer sum / extreme                                 */
    int64_t idx; /* arg index, -1 while none                              */
} rstate;

static int rclass(int dt)
{
    return dt == EM_F64 ? RC_D : (cpu_dtype_is_float(dt) ? RC_F : RC_I);
}

static void state_init(int kind, int cls, rstate *s)
{
    s->idx = -1;
    s->d = 0;
    s->i = 0;
    if (kind == K_MAX) {
        s->d = -INFINITY;
        s->i = INT64_MIN;
    } else if (kind == K_MIN) {
        s->d = INFINITY;
        s->i = INT64_MAX;
    }
    (void)cls;
}

/* Merges b (a later range) into a. */
static void state_merge(int kind, int cls, rstate *a, const rstate *b)
{
    int isf = cls != RC_I;
    switch (kind) {
    case K_SUM:
    case K_SUMSQ:
    case K_SUMEXP:
        a->d += b->d;
        a->i = (int64_t)((uint64_t)a->i + (uint64_t)b->i);
        break;
    case K_MAX:
        if (isf) {
            if (a->d == a->d && (b->d != b->d || b->d > a->d)) a->d = b->d;
        } else if (b->i > a->i) {
            a->i = b->i;
        }
        break;
    case K_MIN:
        if (isf) {
            if (a->d == a->d && (b->d != b->d || b->d < a->d)) a->d = b->d;
        } else if (b->i < a->i) {
            a->i = b->i;
        }
        break;
    case K_ARGMAX:
    case K_ARGMIN: {
        if (b->idx < 0) break;
        if (a->idx < 0) {
            *a = *b;
            break;
        }
        int take;
        if (isf) {
            if (a->d != a->d) take = 0;
            else if (b->d != b->d) take = 1;
            else take = kind == K_ARGMAX ? b->d > a->d : b->d < a->d;
        } else {
            take = kind == K_ARGMAX ? b->i > a->i : b->i < a->i;
        }
        if (take) *a = *b;
        break;
    }
    }
}

/* ---------------- consuming a contiguous chunk -------------------------- */

#define CONSUME_FLOAT(NAME, T, EXPF, MAXF)                                               \
    CPU_MATH_CLONES static void NAME(int kind, rstate *s, const T *v, int64_t n,         \
                                     int64_t gidx, double center)                        \
    {                                                                                    \
        int64_t i = 0;                                                                   \
        switch (kind) {                                                                  \
        case K_SUM: {                                                                    \
            double acc[8] = {0};                                                         \
            for (; i + 8 <= n; i += 8)                                                   \
                for (int j = 0; j < 8; j++) acc[j] += (double)v[i + j];                  \
            double t = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +                         \
                       ((acc[2] + acc[6]) + (acc[3] + acc[7]));                          \
            for (; i < n; i++) t += (double)v[i];                                        \
            s->d += t;                                                                   \
            break;                                                                       \
        }                                                                                \
        case K_SUMSQ: {                                                                  \
            double acc[8] = {0};                                                         \
            for (; i + 8 <= n; i += 8)                                                   \
                for (int j = 0; j < 8; j++) {                                            \
                    double dv = (double)v[i + j] - center;                               \
                    acc[j] += dv * dv;                                                   \
                }                                                                        \
            double t = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +                         \
                       ((acc[2] + acc[6]) + (acc[3] + acc[7]));                          \
            for (; i < n; i++) {                                                         \
                double dv = (double)v[i] - center;                                       \
                t += dv * dv;                                                            \
            }                                                                            \
            s->d += t;                                                                   \
            break;                                                                       \
        }                                                                                \
        case K_SUMEXP: {                                                                 \
            const T c = (T)center;                                                       \
            T e[64];                                                                     \
            double acc[8] = {0};                                                         \
            for (; i < n; i += 64) {                                                     \
                int64_t m = n - i < 64 ? n - i : 64;                                     \
                for (int64_t k = 0; k < m; k++) e[k] = EXPF(v[i + k] - c);               \
                for (int64_t k = m; k < 64; k++) e[k] = 0;                               \
                for (int k = 0; k < 64; k += 8)                                          \
                    for (int j = 0; j < 8; j++) acc[j] += (double)e[k + j];              \
            }                                                                            \
            s->d += ((acc[0] + acc[4]) + (acc[1] + acc[5])) +                            \
                    ((acc[2] + acc[6]) + (acc[3] + acc[7]));                             \
            break;                                                                       \
        }                                                                                \
        case K_MAX:                                                                      \
            s->d = MAXF(s->d, v, n, 1);                                                  \
            break;                                                                       \
        case K_MIN:                                                                      \
            s->d = MAXF(s->d, v, n, 0);                                                  \
            break;                                                                       \
        case K_ARGMAX:                                                                   \
        case K_ARGMIN: {                                                                 \
            const int mx = kind == K_ARGMAX;                                             \
            double best = s->d;                                                          \
            int64_t bi = s->idx;                                                         \
            if (bi >= 0 && best != best) break;                                          \
            for (; i < n; i++) {                                                         \
                double x = v[i];                                                         \
                if (bi < 0 || x != x || (mx ? x > best : x < best)) {                    \
                    best = x;                                                            \
                    bi = gidx + i;                                                       \
                    if (x != x) break;                                                   \
                }                                                                        \
            }                                                                            \
            s->d = best;                                                                 \
            s->idx = bi;                                                                 \
            break;                                                                       \
        }                                                                                \
        }                                                                                \
    }
CONSUME_FLOAT(consume_f, float, cpu_expf, cpu_extreme_f)
CONSUME_FLOAT(consume_d, double, exp, cpu_extreme_d)

static void consume_i(int kind, rstate *s, const int64_t *v, int64_t n, int64_t gidx,
                      double center)
{
    (void)center;
    int64_t i = 0;
    switch (kind) {
    case K_SUM: {
        uint64_t acc[4] = {0};
        for (; i + 4 <= n; i += 4)
            for (int j = 0; j < 4; j++) acc[j] += (uint64_t)v[i + j];
        uint64_t t = acc[0] + acc[1] + acc[2] + acc[3];
        for (; i < n; i++) t += (uint64_t)v[i];
        s->i = (int64_t)((uint64_t)s->i + t);
        break;
    }
    case K_MAX:
        for (; i < n; i++)
            if (v[i] > s->i) s->i = v[i];
        break;
    case K_MIN:
        for (; i < n; i++)
            if (v[i] < s->i) s->i = v[i];
        break;
    case K_ARGMAX:
    case K_ARGMIN: {
        const int mx = kind == K_ARGMAX;
        for (; i < n; i++)
            if (s->idx < 0 || (mx ? v[i] > s->i : v[i] < s->i)) {
                s->i = v[i];
                s->idx = gidx + i;
            }
        break;
    }
    default: break;
    }
}

/* Converts n elements at p (byte stride sx) of dtype dt into buf, or
 * returns p itself when it already is a dense array of the class type. */
static const void *load_run(int dt, const char *p, int64_t sx, int64_t n, void *buf)
{
    switch (dt) {
    case EM_F32:
        if (sx == 4) return p;
        for (int64_t i = 0; i < n; i++) ((float *)buf)[i] = *(const float *)(p + i * sx);
        return buf;
    case EM_F64:
        if (sx == 8) return p;
        for (int64_t i = 0; i < n; i++) ((double *)buf)[i] = *(const double *)(p + i * sx);
        return buf;
    case EM_F16:
        for (int64_t i = 0; i < n; i++)
            ((float *)buf)[i] = em_f16_to_f32(*(const uint16_t *)(p + i * sx));
        return buf;
    case EM_BF16:
        for (int64_t i = 0; i < n; i++)
            ((float *)buf)[i] = em_bf16_to_f32(*(const uint16_t *)(p + i * sx));
        return buf;
    case EM_I32:
        for (int64_t i = 0; i < n; i++) ((int64_t *)buf)[i] = *(const int32_t *)(p + i * sx);
        return buf;
    case EM_I64:
        if (sx == 8) return p;
        for (int64_t i = 0; i < n; i++) ((int64_t *)buf)[i] = *(const int64_t *)(p + i * sx);
        return buf;
    default:
        for (int64_t i = 0; i < n; i++) ((int64_t *)buf)[i] = *(const uint8_t *)(p + i * sx);
        return buf;
    }
}

/* Consumes one run of n elements starting at global reduced index gidx. */
static void consume_run(int kind, int dt, rstate *s, const char *p, int64_t sx, int64_t n,
                        int64_t gidx, double center)
{
    union {
        float f[CHUNK];
        double d[CHUNK];
        int64_t i[CHUNK];
    } buf;
    int cls = rclass(dt);
    int64_t es = (int64_t)cpu_dtype_size(dt);
    if (sx == es && (dt == EM_F32 || dt == EM_F64 || dt == EM_I64)) {
        if (cls == RC_F) consume_f(kind, s, (const float *)p, n, gidx, center);
        else if (cls == RC_D) consume_d(kind, s, (const double *)p, n, gidx, center);
        else consume_i(kind, s, (const int64_t *)p, n, gidx, center);
        return;
    }
    for (int64_t b = 0; b < n; b += CHUNK) {
        int64_t m = n - b < CHUNK ? n - b : CHUNK;
        const void *v = load_run(dt, p + b * sx, sx, m, &buf);
        if (cls == RC_F) consume_f(kind, s, v, m, gidx + b, center);
        else if (cls == RC_D) consume_d(kind, s, v, m, gidx + b, center);
        else consume_i(kind, s, v, m, gidx + b, center);
    }
}

/* Reduces positions [b, e) of the reduced set of the output whose input
 * elements start at xbase, into s. */
static void reduce_range(const rgeom *g, int kind, int dt, const char *xbase, int64_t b,
                         int64_t e, double center, rstate *s)
{
    const int nr = g->nr, in = nr - 1;
    const int64_t es = (int64_t)cpu_dtype_size(dt);
    const int64_t inner = g->rs[in], sx = g->rx[in] * es;
    if (nr == 1) {
        consume_run(kind, dt, s, xbase + b * sx, sx, e - b, b, center);
        return;
    }
    int64_t idx[EM_MAX_DIMS];
    int64_t rest = b / inner, i = b % inner;
    const char *p = xbase;
    for (int d = in - 1; d >= 0; d--) {
        idx[d] = rest % g->rs[d];
        rest /= g->rs[d];
        p += idx[d] * g->rx[d] * es;
    }
    int64_t pos = b;
    while (pos < e) {
        int64_t n = inner - i;
        if (n > e - pos) n = e - pos;
        consume_run(kind, dt, s, p + i * sx, sx, n, pos, center);
        pos += n;
        i = 0;
        for (int d = in - 1; d >= 0; d--) {
            if (++idx[d] < g->rs[d]) {
                p += g->rx[d] * es;
                break;
            }
            idx[d] = 0;
            p -= (g->rs[d] - 1) * g->rx[d] * es;
        }
    }
}

/* ---------------- the op-level driver ----------------------------------- */

typedef struct rjob {
    const rgeom *g;
    int op, kind, dt, odt;
    const char *x;
    char *o;
    int64_t flag;
    double *center;  /* per output, for the second pass of var/lse (or NULL) */
    double *result;  /* per output, first-pass results (or NULL: store)     */
    /* split mode: one output, many ranges */
    int64_t split_out, split_chunk;
    rstate *partial;
} rjob;

/* Offsets (elements) of output flat index k in x and out. */
static void out_offsets(const rgeom *g, int64_t k, int64_t *xo, int64_t *oo)
{
    int64_t a = 0, c = 0;
    for (int d = g->nk - 1; d >= 0; d--) {
        int64_t i = k % g->ks[d];
        k /= g->ks[d];
        a += i * g->kx[d];
        c += i * g->ko[d];
    }
    *xo = a;
    *oo = c;
}

static double finish_value(const rjob *j, const rstate *s, int64_t *ival, int *is_int)
{
    int64_t n = j->g->nred;
    *is_int = 0;
    switch (j->op) {
    case EM_OP_SUM:
        if (rclass(j->dt) == RC_I) {
            *is_int = 1;
            *ival = s->i;
            return 0;
        }
        return s->d;
    case EM_OP_MEAN: return s->d / (double)n;
    case EM_OP_MAX:
    case EM_OP_MIN:
        if (rclass(j->dt) == RC_I) {
            *is_int = 1;
            *ival = s->i;
            return 0;
        }
        return s->d;
    case EM_OP_ARGMAX:
    case EM_OP_ARGMIN:
        *is_int = 1;
        *ival = s->idx < 0 ? 0 : s->idx;
        return 0;
    default: return s->d;
    }
}

static void store_out(const rjob *j, char *op, double v, int64_t iv, int is_int)
{
    if (is_int) {
        switch (j->odt) {
        case EM_I64: *(int64_t *)op = iv; break;
        case EM_I32: *(int32_t *)op = (int32_t)iv; break;
        case EM_BOOL: *(uint8_t *)op = iv != 0; break;
        default: em__cpu_store_scalar(j->odt, (double)iv, op); break;
        }
    } else {
        em__cpu_store_scalar(j->odt, v, op);
    }
}

/* Final value of output k from its state (second-pass ops included). */
static void emit(const rjob *j, int64_t k, int64_t oo, const rstate *s)
{
    if (j->result) {
        j->result[k] = s->d;
        return;
    }
    int64_t iv = 0;
    int is_int = 0;
    double v;
    int64_t n = j->g->nred;
    if (j->op == EM_OP_VAR || j->op == EM_OP_STD) {
        v = s->d / (double)(n - j->flag);
        if (n - j->flag <= 0) v = s->d / 0.0;
        if (j->op == EM_OP_STD) v = sqrt(v);
    } else if (j->op == EM_OP_LOGSUMEXP) {
        v = j->center[k] + log(s->d);
    } else {
        v = finish_value(j, s, &iv, &is_int);
    }
    store_out(j, j->o + oo * (int64_t)cpu_dtype_size(j->odt), v, iv, is_int);
}

static void outputs_task(void *ctx, int64_t b, int64_t e)
{
    const rjob *j = ctx;
    const rgeom *g = j->g;
    const int64_t es = (int64_t)cpu_dtype_size(j->dt);
    int cls = rclass(j->dt);
    int64_t xo, oo;
    out_offsets(g, b, &xo, &oo);
    int64_t idx[EM_MAX_DIMS];
    int64_t rest = b;
    for (int d = g->nk - 1; d >= 0; d--) {
        idx[d] = rest % g->ks[d];
        rest /= g->ks[d];
    }
    for (int64_t k = b; k < e; k++) {
        rstate s;
        state_init(j->kind, cls, &s);
        reduce_range(g, j->kind, j->dt, j->x + xo * es, 0, g->nred,
                     j->center ? j->center[k] : 0.0, &s);
        emit(j, k, oo, &s);
        for (int d = g->nk - 1; d >= 0; d--) {
            if (++idx[d] < g->ks[d]) {
                xo += g->kx[d];
                oo += g->ko[d];
                break;
            }
            idx[d] = 0;
            xo -= (g->ks[d] - 1) * g->kx[d];
            oo -= (g->ks[d] - 1) * g->ko[d];
        }
    }
}

static void split_task(void *ctx, int64_t t)
{
    const rjob *j = ctx;
    const rgeom *g = j->g;
    int64_t b = t * j->split_chunk, e = b + j->split_chunk;
    if (e > g->nred) e = g->nred;
    state_init(j->kind, rclass(j->dt), &j->partial[t]);
    if (b >= e) return;
    int64_t xo, oo;
    out_offsets(g, j->split_out, &xo, &oo);
    reduce_range(g, j->kind, j->dt, j->x + xo * (int64_t)cpu_dtype_size(j->dt), b, e,
                 j->center ? j->center[j->split_out] : 0.0, &j->partial[t]);
}

/* Runs one pass (kind) over all outputs. */
static void run_pass(rjob *j)
{
    const rgeom *g = j->g;
    int nt = em__cpu_threads();
    int64_t total = g->nout * g->nred;
    int64_t grain = j->kind == K_SUMEXP ? CPU_GRAIN_MATH : CPU_GRAIN_CHEAP;
    if (nt > 1 && g->nout < nt && total >= grain && g->nred >= 2 * CHUNK) {
        rstate partial[64];
        int tasks = nt < 64 ? nt : 64;
        j->partial = partial;
        j->split_chunk = (g->nred + tasks - 1) / tasks;
        j->split_chunk = (j->split_chunk + CHUNK - 1) / CHUNK * CHUNK;
        for (int64_t k = 0; k < g->nout; k++) {
            j->split_out = k;
            em__cpu_parallel(tasks, split_task, j);
            rstate s = partial[0];
            for (int t = 1; t < tasks; t++) state_merge(j->kind, rclass(j->dt), &s, &partial[t]);
            int64_t xo, oo;
            out_offsets(g, k, &xo, &oo);
            emit(j, k, oo, &s);
        }
        return;
    }
    int64_t per = g->nred > 0 ? g->nred : 1;
    int64_t out_grain = (grain + per - 1) / per;
    if (total < grain) out_grain = g->nout + 1;
    em__cpu_parallel_range(g->nout, out_grain * 2 > 2 ? out_grain * 2 : 2, 1, outputs_task, j);
}

/* ---------------- mode B: accumulate a block of outputs row by row ------ */

#define BLOCK 2048 /* outputs per block: a 16 KiB accumulator, whole rows read */

typedef union bacc {
    double d[BLOCK];
    int64_t i[BLOCK];
} bacc;

typedef struct bjob {
    const rgeom *g;
    int op, dt, odt;
    const char *x;
    char *o;
    int64_t nouter, nblocks; /* outer kept positions x blocks of the inner */
    int64_t rsplit, rchunk;  /* parts the reduced range is split into      */
    bacc *partial;           /* rsplit > 1: one accumulator per task        */
} bjob;

#define MB_ROW(dt)                                                                       \
    static void mb_row_##dt(int kind, void *vacc, const char *row, int64_t n)            \
    {                                                                                    \
        const DT_##dt##_ST *x = (const DT_##dt##_ST *)row;                               \
        if (rclass(DT_##dt##_ID) != RC_I) {                                              \
            double *acc = vacc;                                                          \
            if (kind == K_SUM) {                                                         \
                for (int64_t j = 0; j < n; j++) acc[j] += (double)DT_##dt##_LD(x[j]);    \
            } else if (kind == K_MAX) {                                                  \
                for (int64_t j = 0; j < n; j++) {                                        \
                    double v = (double)DT_##dt##_LD(x[j]);                               \
                    acc[j] = ((v != v) | (v > acc[j])) ? v : acc[j];                     \
                }                                                                        \
            } else {                                                                     \
                for (int64_t j = 0; j < n; j++) {                                        \
                    double v = (double)DT_##dt##_LD(x[j]);                               \
                    acc[j] = ((v != v) | (v < acc[j])) ? v : acc[j];                     \
                }                                                                        \
            }                                                                            \
        } else {                                                                         \
            int64_t *acc = vacc;                                                         \
            if (kind == K_SUM) {                                                         \
                for (int64_t j = 0; j < n; j++)                                          \
                    acc[j] = (int64_t)((uint64_t)acc[j] + (uint64_t)(int64_t)x[j]);      \
            } else if (kind == K_MAX) {                                                  \
                for (int64_t j = 0; j < n; j++)                                          \
                    acc[j] = (int64_t)x[j] > acc[j] ? (int64_t)x[j] : acc[j];            \
            } else {                                                                     \
                for (int64_t j = 0; j < n; j++)                                          \
                    acc[j] = (int64_t)x[j] < acc[j] ? (int64_t)x[j] : acc[j];            \
            }                                                                            \
        }                                                                                \
    }
CPU_FOR_ALL_DT(MB_ROW)

typedef void (*mb_row_fn)(int kind, void *acc, const char *row, int64_t n);
static const mb_row_fn mb_rows[EM_DTYPE_COUNT] = {mb_row_f32, mb_row_f64, mb_row_f16,
                                                  mb_row_bf16, mb_row_i32, mb_row_i64,
                                                  mb_row_b8};

static int op_kind(int op)
{
    switch (op) {
    case EM_OP_SUM:
    case EM_OP_MEAN: return K_SUM;
    case EM_OP_MAX: return K_MAX;
    case EM_OP_MIN: return K_MIN;
    case EM_OP_ARGMAX: return K_ARGMAX;
    case EM_OP_ARGMIN: return K_ARGMIN;
    case EM_OP_VAR:
    case EM_OP_STD: return K_SUM;      /* first pass: the mean */
    case EM_OP_LOGSUMEXP: return K_MAX; /* first pass: the max  */
    default: return -1;
    }
}

static void bacc_init(int kind, int isint, bacc *a, int64_t n)
{
    for (int64_t q = 0; q < n; q++) {
        if (isint) a->i[q] = kind == K_MAX ? INT64_MIN : (kind == K_MIN ? INT64_MAX : 0);
        else a->d[q] = kind == K_MAX ? -INFINITY : (kind == K_MIN ? INFINITY : 0);
    }
}

/* a = a (+) b for n outputs, NaN-sticky for max/min. */
static void bacc_merge(int kind, int isint, bacc *a, const bacc *b, int64_t n)
{
    for (int64_t q = 0; q < n; q++) {
        if (isint) {
            if (kind == K_SUM) a->i[q] = (int64_t)((uint64_t)a->i[q] + (uint64_t)b->i[q]);
            else if (kind == K_MAX ? b->i[q] > a->i[q] : b->i[q] < a->i[q]) a->i[q] = b->i[q];
        } else {
            double x = b->d[q];
            if (kind == K_SUM) a->d[q] += x;
            else if (x != x || (kind == K_MAX ? x > a->d[q] : x < a->d[q])) a->d[q] = x;
        }
    }
}

/* Block (outer kept position, block of the inner kept dim) of task t:
 * element offsets in x and out and the number of outputs. */
static int64_t block_at(const bjob *j, int64_t ob, int64_t *xo, int64_t *oo)
{
    const rgeom *g = j->g;
    const int kin = g->nk - 1;
    int64_t outer = ob / j->nblocks, blk = ob % j->nblocks;
    int64_t j0 = blk * BLOCK;
    int64_t a = 0, c = 0, rest = outer;
    for (int d = kin - 1; d >= 0; d--) {
        int64_t i = rest % g->ks[d];
        rest /= g->ks[d];
        a += i * g->kx[d];
        c += i * g->ko[d];
    }
    *xo = a + j0 * g->kx[kin];
    *oo = c + j0 * g->ko[kin];
    return g->ks[kin] - j0 < BLOCK ? g->ks[kin] - j0 : BLOCK;
}

static void block_store(const bjob *j, const bacc *acc, int64_t oo, int64_t n)
{
    const rgeom *g = j->g;
    const int64_t oes = (int64_t)cpu_dtype_size(j->odt);
    char *o = j->o + oo * oes;
    const int64_t os = g->ko[g->nk - 1] * oes;
    int isint = rclass(j->dt) == RC_I;
    for (int64_t q = 0; q < n; q++, o += os) {
        if (isint) {
            if (j->odt == EM_I64) *(int64_t *)o = acc->i[q];
            else if (j->odt == EM_I32) *(int32_t *)o = (int32_t)acc->i[q];
            else *(uint8_t *)o = acc->i[q] != 0;
        } else {
            double v = acc->d[q];
            if (j->op == EM_OP_MEAN) v /= (double)g->nred;
            em__cpu_store_scalar(j->odt, v, o);
        }
    }
}

static void block_task(void *ctx, int64_t t)
{
    const bjob *j = ctx;
    const rgeom *g = j->g;
    const int64_t es = (int64_t)cpu_dtype_size(j->dt);
    const int kind = op_kind(j->op), isint = rclass(j->dt) == RC_I;
    int64_t ob = t / j->rsplit, part = t % j->rsplit;
    int64_t xo, oo;
    int64_t n = block_at(j, ob, &xo, &oo);
    int64_t r0 = part * j->rchunk, r1 = r0 + j->rchunk;
    if (r1 > g->nred) r1 = g->nred;
    bacc local;
    bacc *acc = j->rsplit > 1 ? &j->partial[t] : &local;
    bacc_init(kind, isint, acc, n);
    mb_row_fn row = mb_rows[j->dt];
    int64_t idx[EM_MAX_DIMS], rest = r0;
    const char *p = j->x + xo * es;
    for (int d = g->nr - 1; d >= 0; d--) {
        idx[d] = rest % g->rs[d];
        rest /= g->rs[d];
        p += idx[d] * g->rx[d] * es;
    }
    for (int64_t r = r0; r < r1; r++) {
        row(kind, acc, p, n);
        for (int d = g->nr - 1; d >= 0; d--) {
            if (++idx[d] < g->rs[d]) {
                p += g->rx[d] * es;
                break;
            }
            idx[d] = 0;
            p -= (g->rs[d] - 1) * g->rx[d] * es;
        }
    }
    if (j->rsplit == 1) block_store(j, acc, oo, n);
}

/* Runs mode B. Returns EM_OK, or EM_ERR_OUT_OF_MEMORY for the partials. */
static em_status run_blocks(const rgeom *g, int op, int dt, int odt, const char *x, char *o)
{
    const int kin = g->nk - 1;
    bjob b = {g, op, dt, odt, x, o, g->nout / g->ks[kin], (g->ks[kin] + BLOCK - 1) / BLOCK,
              1, g->nred, NULL};
    int64_t blocks = b.nouter * b.nblocks;
    int nt = em__cpu_threads();
    if (g->nout * g->nred < CPU_GRAIN_CHEAP || nt <= 1) {
        for (int64_t t = 0; t < blocks; t++) block_task(&b, t);
        return EM_OK;
    }
    if (blocks < nt && g->nred >= 64) {
        /* few blocks: split the reduced range too, partials merged in order */
        b.rsplit = (nt + blocks - 1) / blocks;
        b.rchunk = (g->nred + b.rsplit - 1) / b.rsplit;
        b.partial = em__cpu_scratch_alloc((size_t)(blocks * b.rsplit) * sizeof(bacc));
        if (!b.partial) return EM_ERR_OUT_OF_MEMORY;
    }
    em__cpu_parallel(blocks * b.rsplit, block_task, &b);
    if (b.partial) {
        const int kind = op_kind(op), isint = rclass(dt) == RC_I;
        for (int64_t ob = 0; ob < blocks; ob++) {
            int64_t xo, oo, n = block_at(&b, ob, &xo, &oo);
            bacc *first = &b.partial[ob * b.rsplit];
            for (int64_t k = 1; k < b.rsplit; k++) {
                /* a part past the end of the range stays at its initial value */
                bacc_merge(kind, isint, first, &b.partial[ob * b.rsplit + k], n);
            }
            block_store(&b, first, oo, n);
        }
        em__cpu_scratch_free(b.partial);
    }
    return EM_OK;
}

/* ---------------- geometry and kernel ------------------------------------ */

static em_status build_geom(const em_tdesc *x, const em_tdesc *o, uint32_t mask, int keep_order,
                            rgeom *g)
{
    if (o->ndim != x->ndim)
        return em__cpu_fail(EM_ERR_SHAPE, "cpu: reduction output has %d dims, input %d",
                            o->ndim, x->ndim);
    int order[EM_MAX_DIMS], nr = 0;
    g->nk = 0;
    g->nout = 1;
    g->nred = 1;
    for (int d = 0; d < x->ndim; d++) {
        int red = d < 32 && ((mask >> d) & 1u);
        int64_t want = red ? 1 : x->shape[d];
        if (o->shape[d] != want)
            return em__cpu_fail(EM_ERR_SHAPE,
                                "cpu: reduction output dim %d is %lld, expected %lld", d,
                                (long long)o->shape[d], (long long)want);
        if (x->shape[d] == 1) continue;
        if (red) {
            /* reduced dims, ordered by stride (largest first) unless the
             * row-major order matters */
            int j = nr;
            if (!keep_order)
                while (j > 0 && x->strides[order[j - 1]] < x->strides[d]) {
                    order[j] = order[j - 1];
                    j--;
                }
            order[j] = d;
            nr++;
            g->nred *= x->shape[d];
        } else {
            int64_t sz = x->shape[d];
            if (g->nk > 0 && g->kx[g->nk - 1] == x->strides[d] * sz &&
                g->ko[g->nk - 1] == o->strides[d] * sz) {
                g->ks[g->nk - 1] *= sz;
                g->kx[g->nk - 1] = x->strides[d];
                g->ko[g->nk - 1] = o->strides[d];
            } else {
                g->ks[g->nk] = sz;
                g->kx[g->nk] = x->strides[d];
                g->ko[g->nk] = o->strides[d];
                g->nk++;
            }
            g->nout *= sz;
        }
    }
    g->nr = 0;
    for (int i = 0; i < nr; i++) {
        int d = order[i];
        int64_t sz = x->shape[d];
        if (g->nr > 0 && g->rx[g->nr - 1] == x->strides[d] * sz) {
            g->rs[g->nr - 1] *= sz;
            g->rx[g->nr - 1] = x->strides[d];
        } else {
            g->rs[g->nr] = sz;
            g->rx[g->nr] = x->strides[d];
            g->nr++;
        }
    }
    if (g->nk == 0) {
        g->nk = 1;
        g->ks[0] = 1;
        g->kx[0] = g->ko[0] = 0;
    }
    if (g->nr == 0) {
        g->nr = 1;
        g->rs[0] = 1;
        g->rx[0] = 0;
    }
    return EM_OK;
}

/* out = (T)(0.0 + (double)x): the sum (or mean) of one element. */
#define PLUS_ZERO(name, T)                                                               \
    static void name(char **p, const int64_t *s, int64_t n, const void *ctx)             \
    {                                                                                    \
        (void)ctx;                                                                       \
        char *o = p[0];                                                                  \
        const char *x = p[1];                                                            \
        for (int64_t i = 0; i < n; i++, o += s[0], x += s[1])                            \
            *(T *)o = (T)(0.0 + (double)*(const T *)x);                                  \
    }
PLUS_ZERO(plus_zero_f32, float)
PLUS_ZERO(plus_zero_f64, double)

em_status em__cpu_k_reduce(void *dev, const em_op_call *c)
{
    (void)dev;
    em_status st = em__cpu_check_arity(c, 1, 1, 1);
    if (st) return st;
    const em_tdesc *x = &c->in[0], *o = &c->out[0];
    int op = c->op, dt = x->dtype;
    int isfloat_op = op == EM_OP_MEAN || op == EM_OP_VAR || op == EM_OP_STD ||
                     op == EM_OP_LOGSUMEXP;
    if (op_kind(op) < 0 || !cpu_dtype_valid(dt) || (isfloat_op && !cpu_dtype_is_float(dt)))
        return em__cpu_fail(EM_ERR_UNSUPPORTED, "cpu: no reduction kernel for op %d on %s", op,
                            em__cpu_dtype_name(dt));
    int want_odt = dt;
    if (op == EM_OP_ARGMAX || op == EM_OP_ARGMIN) want_odt = EM_I64;
    if (op == EM_OP_SUM && !cpu_dtype_is_float(dt)) want_odt = EM_I64;
    if (o->dtype != want_odt)
        return em__cpu_fail(EM_ERR_DTYPE, "cpu: reduction op %d on %s gives %s, not %s", op,
                            em__cpu_dtype_name(dt), em__cpu_dtype_name(want_odt),
                            em__cpu_dtype_name(o->dtype));
    int is_arg = op == EM_OP_ARGMAX || op == EM_OP_ARGMIN;
    rgeom g;
    if ((st = build_geom(x, o, c->params->reduce_mask, is_arg, &g))) return st;

    /* every reduced dim has size 1 (a linear layer's bias gradient at batch
     * 1): sum/mean of one element is 0 + x in the accumulation type, so one
     * elementwise pass gives what the per-output walk would, -0 -> +0 too */
    if ((op == EM_OP_SUM || op == EM_OP_MEAN) && g.nred == 1 && (dt == EM_F32 || dt == EM_F64) &&
        cpu_same_shape(x, o)) {
        cpu_operand ops[2] = {{cpu_ptr(o), o->strides, (int64_t)cpu_dtype_size(dt)},
                              {cpu_ptr(x), x->strides, (int64_t)cpu_dtype_size(dt)}};
        em__cpu_ew_run(2, ops, o->ndim, o->shape, dt == EM_F32 ? plus_zero_f32 : plus_zero_f64,
                       NULL, CPU_GRAIN_CHEAP);
        return EM_OK;
    }
    /* argmax/argmin: the runs walk the reduced set in row-major order, so
     * the position counter is the index the op returns. */

    /* mode B: column-style sum/mean/max/min */
    int kin = g.nk - 1;
    if ((op == EM_OP_SUM || op == EM_OP_MEAN || op == EM_OP_MAX || op == EM_OP_MIN) &&
        g.kx[kin] == 1 && g.ks[kin] >= 16 && g.nred > 1) {
        int outer_ok = 1;
        for (int d = 0; d < g.nr; d++)
            if (g.rx[d] == 1) outer_ok = 0;
        if (outer_ok) {
            if ((st = run_blocks(&g, op, dt, o->dtype, cpu_ptr(x), cpu_ptr(o))))
                return em__cpu_fail(st, "cpu: reduction: out of memory for partial sums");
            return EM_OK;
        }
    }

    rjob j = {.g = &g, .op = op, .kind = op_kind(op), .dt = dt, .odt = o->dtype,
              .x = cpu_ptr(x), .o = cpu_ptr(o), .flag = c->params->flag};
    if (op == EM_OP_VAR || op == EM_OP_STD || op == EM_OP_LOGSUMEXP) {
        double *tmp = em__cpu_scratch_alloc((size_t)g.nout * sizeof(double));
        if (!tmp) return EM_ERR_OUT_OF_MEMORY;
        j.result = tmp;
        run_pass(&j); /* sums, resp. maxima */
        for (int64_t k = 0; k < g.nout; k++) {
            if (op == EM_OP_LOGSUMEXP) tmp[k] = isinf(tmp[k]) ? 0.0 : tmp[k];
            else tmp[k] /= (double)g.nred;
        }
        j.result = NULL;
        j.center = tmp;
        j.kind = op == EM_OP_LOGSUMEXP ? K_SUMEXP : K_SUMSQ;
        run_pass(&j);
        em__cpu_scratch_free(tmp);
        return EM_OK;
    }
    run_pass(&j);
    return EM_OK;
}
