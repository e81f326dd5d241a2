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
 *   3. at or above `grain` elements the flat range is split over the pool;
 *   4. outputs of 16 MiB and more (far beyond what the next op could find
 *      in cache) that do not alias an input are written with non-temporal
 *      stores: the loop fills a 1 KiB buffer in L1 that is then streamed
 *      out, which saves the read-for-ownership of every output line.
 *
 * Not for: reductions (cpu_reduce.c) or ops whose operands have different
 * shapes (cat, index ops build per-slice views and call this).
 */
#include "cpu_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#define CPU_CAN_STREAM 1
#else
#define CPU_CAN_STREAM 0
#endif

#define STREAM_MIN_BYTES ((int64_t)16 << 20)
#define STREAM_BUF 1024

/* fn over n elements with operand 0 dense (s[0] = element size), the
 * output written through an L1 buffer with streaming stores. */
static void stream_run(int nops, char **p0, const int64_t *s, int64_t n, cpu_loop_fn fn,
                       const void *ctx)
{
#if CPU_CAN_STREAM
    const int64_t es = s[0];
    char *p[CPU_MAX_OPS];
    for (int k = 0; k < nops; k++) p[k] = p0[k];
    if (((uintptr_t)p[0] % (uintptr_t)es) != 0 || n * es < 2 * STREAM_BUF) {
        fn(p, s, n, ctx);
        return;
    }
    int64_t head = (int64_t)(((64 - ((uintptr_t)p[0] & 63)) & 63) / (uintptr_t)es);
    if (head > 0) {
        fn(p, s, head, ctx);
        for (int k = 0; k < nops; k++) p[k] += head * s[k];
        n -= head;
    }
    _Alignas(64) char buf[STREAM_BUF];
    const int64_t chunk = STREAM_BUF / es;
    char *q[CPU_MAX_OPS];
    q[0] = buf;
    while (n > 0) {
        int64_t m = n < chunk ? n : chunk;
        for (int k = 1; k < nops; k++) q[k] = p[k];
        fn(q, s, m, ctx);
        int64_t bytes = m * es, i = 0;
        for (; i + 16 <= bytes; i += 16)
            _mm_stream_si128((__m128i *)(p[0] + i), _mm_load_si128((const __m128i *)(buf + i)));
        if (i < bytes) memcpy(p[0] + i, buf + i, (size_t)(bytes - i));
        for (int k = 0; k < nops; k++) p[k] += m * s[k];
        n -= m;
    }
    _mm_sfence();
#else
    fn(p0, s, n, ctx);
#endif
}

/* Whether an op writing out_bytes should stream (see the header). */
static int want_stream(int nops, const cpu_operand *ops, int64_t out_bytes)
{
    if (!CPU_CAN_STREAM || out_bytes < STREAM_MIN_BYTES) return 0;
    for (int k = 1; k < nops; k++)
        if (ops[k].ptr == ops[0].ptr) return 0;
    return 1;
}

typedef struct ew_iter {
    int nops, ndim;
    int64_t shape[EM_MAX_DIMS];               /* outermost first           */
    int64_t st[EM_MAX_DIMS][CPU_MAX_OPS];     /* byte strides              */
    char *ptr[CPU_MAX_OPS];
    cpu_loop_fn fn;
    const void *ctx;
    int stream;                               /* see stream_run            */
} ew_iter;

/* Runs elements [begin, end) of the flattened (collapsed) iteration. */
static void ew_run_range(const ew_iter *it, int64_t begin, int64_t end)
{
    const int nd = it->ndim, nops = it->nops;
    const int in = nd - 1;
    const int64_t inner = it->shape[in];
    int64_t idx[EM_MAX_DIMS];
    char *p[CPU_MAX_OPS];
    int64_t s[CPU_MAX_OPS] = {0};
    int64_t i = 0;
    for (int k = 0; k < nops; k++) {
        p[k] = it->ptr[k];
        s[k] = it->st[in][k];
    }
    if (begin == 0) { /* the common serial case: no divisions */
        for (int d = 0; d < in; d++) idx[d] = 0;
    } else {
        int64_t rest = begin / inner;
        i = begin % inner;
        for (int k = 0; k < nops; k++) p[k] += i * s[k];
        for (int d = in - 1; d >= 0; d--) {
            idx[d] = rest % it->shape[d];
            rest /= it->shape[d];
            for (int k = 0; k < nops; k++) p[k] += idx[d] * it->st[d][k];
        }
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t n = inner - i;
        if (n > end - pos) n = end - pos;
        if (it->stream && s[0] > 0 && n * s[0] >= 2 * STREAM_BUF)
            stream_run(nops, p, s, n, it->fn, it->ctx);
        else
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
    int stream;
} flat_job;

static void flat_range_task(void *ctx, int64_t b, int64_t e)
{
    const flat_job *j = ctx;
    char *p[CPU_MAX_OPS];
    for (int k = 0; k < j->nops; k++) p[k] = j->ptr[k] + b * j->s[k];
    if (j->stream)
        stream_run(j->nops, p, j->s, e - b, j->fn, j->ctx);
    else
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

static void ew_run(int nops, const cpu_operand *ops, int ndim, const int64_t *shape,
                   cpu_loop_fn fn, const void *ctx, int64_t grain, int may_stream);

void em__cpu_ew_run(int nops, const cpu_operand *ops, int ndim, const int64_t *shape,
                    cpu_loop_fn fn, const void *ctx, int64_t grain)
{
    ew_run(nops, ops, ndim, shape, fn, ctx, grain, 1);
}

void em__cpu_ew_run_ro(int nops, const cpu_operand *ops, int ndim, const int64_t *shape,
                       cpu_loop_fn fn, const void *ctx, int64_t grain)
{
    ew_run(nops, ops, ndim, shape, fn, ctx, grain, 0);
}

static void ew_run(int nops, const cpu_operand *ops, int ndim, const int64_t *shape,
                   cpu_loop_fn fn, const void *ctx, int64_t grain, int may_stream)
{
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    if (numel <= 0) return;

    /* 1. fast path */
    int flat = 1;
    int64_t s[CPU_MAX_OPS] = {0};
    for (int k = 0; k < nops; k++) {
        int c = stride_class(ndim, shape, ops[k].strides);
        if (c == 0) {
            flat = 0;
            break;
        }
        s[k] = c == 1 ? ops[k].esize : 0;
    }
    if (flat) {
        int stream = may_stream && s[0] == ops[0].esize &&
                     want_stream(nops, ops, numel * ops[0].esize);
        if (grain <= 0 || numel < grain || em__cpu_threads() <= 1) {
            char *p[CPU_MAX_OPS];
            for (int k = 0; k < nops; k++) p[k] = ops[k].ptr;
            if (stream)
                stream_run(nops, p, s, numel, fn, ctx);
            else
                fn(p, s, numel, ctx);
            return;
        }
        flat_job j = {.nops = nops, .fn = fn, .ctx = ctx, .stream = stream};
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
    it.stream = may_stream && want_stream(nops, ops, numel * ops[0].esize);
    if (grain <= 0 || numel < grain)
        ew_run_range(&it, 0, numel);
    else
        em__cpu_parallel_range(numel, grain, 64, ew_range_task, &it);
}
