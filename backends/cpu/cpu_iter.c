/*
 * cpu_iter.c — the elementwise iteration engine every elementwise kernel
 * runs on.
 *
 * A kernel supplies an inner loop (cpu_loop_fn) over n elements with one
 * byte stride per operand; the engine turns an n-d iteration into as few
 * inner-loop calls as possible:
 *   1. fast path: every operand dense row-major (or a scalar) -> ONE call
 *      over numel elements (no allocation, a handful of compares);
 *   2. otherwise drop size-1 dims, order dims by operand 0's strides
 *      (largest outermost), merge dims that are contiguous for every
 *      operand, and walk the outer dims with an index counter;
 *   3. at or above `grain` elements the flat range is split over the pool.
 *
 * Not for: reductions (cpu_reduce.c) or ops whose operands have different
 * shapes (cat, index ops build per-slice views and call this).
 */
#include "cpu_internal.h"

typedef struct ew_iter {
    int nops, ndim;
    int64_t shape[EM_MAX_DIMS];               /* outermost first           */
    int64_t st[EM_MAX_DIMS][CPU_MAX_OPS];     /* byte strides              */
    char *ptr[CPU_MAX_OPS];
    cpu_loop_fn fn;
    const void *ctx;
} ew_iter;

/* Runs elements [begin, end) of the flattened (collapsed) iteration. */
static void ew_run_range(const ew_iter *it, int64_t begin, int64_t end)
{
    const int nd = it->ndim, nops = it->nops;
    const int in = nd - 1;
    const int64_t inner = it->shape[in];
    int64_t idx[EM_MAX_DIMS];
    char *p[CPU_MAX_OPS];
    int64_t s[CPU_MAX_OPS];
    int64_t rest = begin / inner, i = begin % inner;
    for (int k = 0; k < nops; k++) {
        p[k] = it->ptr[k] + i * it->st[in][k];
        s[k] = it->st[in][k];
    }
    for (int d = in - 1; d >= 0; d--) {
        idx[d] = rest % it->shape[d];
        rest /= it->shape[d];
        for (int k = 0; k < nops; k++) p[k] += idx[d] * it->st[d][k];
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t n = inner - i;
        if (n > end - pos) n = end - pos;
        it->fn(p, s, n, it->ctx);
        pos += n;
        if (pos >= end) break;
        /* back to the row start, then advance the outer counter */
        for (int k = 0; k < nops; k++) p[k] -= i * s[k];
        i = 0;
        for (int d = in - 1; d >= 0; d--) {
            if (++idx[d] < it->shape[d]) {
                for (int k = 0; k < nops; k++) p[k] += it->st[d][k];
                break;
            }
            idx[d] = 0;
            for (int k = 0; k < nops; k++) p[k] -= (it->shape[d] - 1) * it->st[d][k];
        }
    }
}

static void ew_range_task(void *ctx, int64_t b, int64_t e) { ew_run_range(ctx, b, e); }

typedef struct flat_job {
    int nops;
    char *ptr[CPU_MAX_OPS];
    int64_t s[CPU_MAX_OPS];
    cpu_loop_fn fn;
    const void *ctx;
} flat_job;

static void flat_range_task(void *ctx, int64_t b, int64_t e)
{
    const flat_job *j = ctx;
    char *p[CPU_MAX_OPS];
    for (int k = 0; k < j->nops; k++) p[k] = j->ptr[k] + b * j->s[k];
    j->fn(p, j->s, e - b, j->ctx);
}

/* 1: dense row-major; 2: stride 0 in every non-size-1 dim; 0: other. */
static int stride_class(int ndim, const int64_t *shape, const int64_t *strides)
{
    if (!strides) return 2;
    int64_t expect = 1;
    int dense = 1, zero = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] == 1) continue;
        if (strides[i] != expect) dense = 0;
        if (strides[i] != 0) zero = 0;
        expect *= shape[i];
    }
    return dense ? 1 : (zero ? 2 : 0);
}

void em__cpu_ew_run(int nops, const cpu_operand *ops, int ndim, const int64_t *shape,
                    cpu_loop_fn fn, const void *ctx, int64_t grain)
{
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    if (numel <= 0) return;

    /* 1. fast path */
    int flat = 1;
    int64_t s[CPU_MAX_OPS];
    for (int k = 0; k < nops; k++) {
        int c = stride_class(ndim, shape, ops[k].strides);
        if (c == 0) {
            flat = 0;
            break;
        }
        s[k] = c == 1 ? ops[k].esize : 0;
    }
    if (flat) {
        if (grain <= 0 || numel < grain || em__cpu_threads() <= 1) {
            char *p[CPU_MAX_OPS];
            for (int k = 0; k < nops; k++) p[k] = ops[k].ptr;
            fn(p, s, numel, ctx);
            return;
        }
        flat_job j = {.nops = nops, .fn = fn, .ctx = ctx};
        for (int k = 0; k < nops; k++) {
            j.ptr[k] = ops[k].ptr;
            j.s[k] = s[k];
        }
        em__cpu_parallel_range(numel, grain, 64, flat_range_task, &j);
        return;
    }

    /* 2. general path: keep dims of size > 1, ordered by operand 0's stride
     * (stable insertion sort, largest first). */
    int order[EM_MAX_DIMS], n = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        int64_t sd = ops[0].strides ? ops[0].strides[d] : 0;
        int j = n;
        while (j > 0) {
            int64_t sp = ops[0].strides ? ops[0].strides[order[j - 1]] : 0;
            if (sp >= sd) break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = d;
        n++;
    }
    ew_iter it;
    it.nops = nops;
    it.fn = fn;
    it.ctx = ctx;
    for (int k = 0; k < nops; k++) it.ptr[k] = ops[k].ptr;
    int nd = 0;
    for (int i = 0; i < n; i++) {
        int d = order[i];
        int64_t sz = shape[d];
        if (nd > 0) {
            int merge = 1;
            for (int k = 0; k < nops; k++) {
                int64_t sk = ops[k].strides ? ops[k].strides[d] * ops[k].esize : 0;
                if (it.st[nd - 1][k] != sk * sz) {
                    merge = 0;
                    break;
                }
            }
            if (merge) {
                it.shape[nd - 1] *= sz;
                for (int k = 0; k < nops; k++)
                    it.st[nd - 1][k] = ops[k].strides ? ops[k].strides[d] * ops[k].esize : 0;
                continue;
            }
        }
        it.shape[nd] = sz;
        for (int k = 0; k < nops; k++)
            it.st[nd][k] = ops[k].strides ? ops[k].strides[d] * ops[k].esize : 0;
        nd++;
    }
    if (nd == 0) {
        it.shape[0] = 1;
        for (int k = 0; k < nops; k++) it.st[0][k] = 0;
        nd = 1;
    }
    it.ndim = nd;
    if (grain <= 0 || numel < grain)
        ew_run_range(&it, 0, numel);
    else
        em__cpu_parallel_range(numel, grain, 64, ew_range_task, &it);
}
