/*
 * cpu_plugin.c — the CPU backend's plugin face: em_plugin_init, the
 * backend table, the one CPU device, buffers and the kernel registry.
 *
 * Buffers: the handle IS the data pointer (64-byte aligned), preceded by a
 * 64-byte header that links the block into the device's live list (so
 * device_close frees whatever is left) and records its capacity. Freed
 * blocks are kept in a per-size-class cache (powers of two; at most 1 GiB
 * in blocks of 1 MiB and more, 64 MiB below that) so that repeated big
 * allocations reuse pages that are already faulted in; device_close
 * releases the cache. buffer_free may come from any thread: one mutex
 * guards the list and the cache. ASan builds cache nothing, so every
 * access past the requested size is caught.
 *
 * Not for: kernels (see cpu_internal.h for which file has which).
 */
#define _GNU_SOURCE
#include "cpu_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CPU_NO_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CPU_NO_CACHE 1
#endif
#endif

#define CPU_PLUGIN_VERSION "0.1.0"

/* ---------------- host services ----------------------------------------- */

/* The core's services, copied by em_plugin_host_init (ember_plugin_util.h):
 * slots past the core's struct_size read as NULL. */
static em_plugin_host g_host;

em_status em__cpu_fail(em_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_plugin_vfail(&g_host, status, fmt, ap);
    va_end(ap);
    return status;
}

void em__cpu_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_plugin_vlog(&g_host, level, fmt, ap);
    va_end(ap);
}

const char *em__cpu_getenv(const char *name) { return em_plugin_getenv(&g_host, name); }

const char *em__cpu_dtype_name(int dt) { return em_plugin_dtype_name(dt); }

em_status em__cpu_check_arity(const em_op_call *c, int min_in, int max_in, int n_out)
{
    return em_plugin_check_call(&g_host, c, min_in, max_in, n_out);
}

em_status em__cpu_check_shape(const char *what, const em_tdesc *d, int ndim, const int64_t *shape)
{
    int ok = d->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = d->shape[i] == shape[i];
    if (CPU_LIKELY(ok)) return EM_OK;
    em_tdesc want = {.ndim = ndim};
    for (int i = 0; i < ndim && i < EM_MAX_DIMS; i++) want.shape[i] = shape[i];
    char a[160], b[160];
    return em__cpu_fail(EM_ERR_SHAPE, "cpu: %s has shape %s, the output %s", what,
                        em_tdesc_shape_str(d, a, sizeof a), em_tdesc_shape_str(&want, b, sizeof b));
}

/* ---------------- buffers ------------------------------------------------ */

#define HDR 64
#define NCLASS 48
#define MIN_CLASS 6            /* 64 bytes                                  */
#define BIG_CLASS 20           /* 1 MiB: the start of "big" blocks          */
#define BIG_LIMIT ((size_t)1 << 30)
#define SMALL_LIMIT ((size_t)64 << 20)
#define PER_CLASS 16

typedef struct blk {
    struct blk *prev, *next; /* live list, or cache list (next only)       */
    size_t cap;              /* usable bytes                                */
    int cls;                 /* size class, -1 when not cacheable          */
    int live;                /* in the live list                            */
} blk;
_Static_assert(sizeof(blk) <= HDR, "block header fits in 64 bytes");

typedef struct cpu_device {
    pthread_mutex_t lock;
    int open_count;
    blk live;                /* sentinel of the live list                   */
    blk *cache[NCLASS];
    int cache_n[NCLASS];
    size_t big_bytes, small_bytes;
} cpu_device;

static cpu_device g_dev = {.lock = PTHREAD_MUTEX_INITIALIZER,
                           .live = {.prev = &g_dev.live, .next = &g_dev.live}};

#ifndef CPU_NO_CACHE
static int size_class(size_t bytes)
{
    if (bytes > ((size_t)1 << (NCLASS - 1))) return -1;
    int c = MIN_CLASS;
    while (((size_t)1 << c) < bytes) c++;
    return c;
}
#endif

static void *blk_data(blk *b) { return (char *)b + HDR; }
static blk *blk_of(void *p) { return (blk *)((char *)p - HDR); }

/* A block of at least `bytes`, from the cache when possible; live blocks
 * join the device's list (one lock round trip on a cache hit). */
static blk *blk_get(size_t bytes, int live)
{
    cpu_device *d = &g_dev;
    int cls = -1;
    size_t cap = bytes;
#ifndef CPU_NO_CACHE
    cls = size_class(bytes);
    if (cls >= 0) cap = (size_t)1 << cls;
#endif
    blk *b = NULL;
    pthread_mutex_lock(&d->lock);
    if (cls >= 0 && d->cache[cls]) {
        b = d->cache[cls];
        d->cache[cls] = b->next;
        d->cache_n[cls]--;
        if (cls >= BIG_CLASS) d->big_bytes -= b->cap;
        else d->small_bytes -= b->cap;
    } else {
        pthread_mutex_unlock(&d->lock);
        void *mem = NULL;
        if (cap > SIZE_MAX - HDR || posix_memalign(&mem, 64, HDR + cap) != 0) return NULL;
        b = mem;
        b->cap = cap;
        b->cls = cls;
        if (!live) {
            b->live = 0;
            b->prev = b->next = NULL;
            return b;
        }
        pthread_mutex_lock(&d->lock);
    }
    b->live = live;
    b->prev = b->next = NULL;
    if (live) {
        b->next = d->live.next;
        b->prev = &d->live;
        d->live.next->prev = b;
        d->live.next = b;
    }
    pthread_mutex_unlock(&d->lock);
    return b;
}

static void blk_put(blk *b)
{
    cpu_device *d = &g_dev;
    pthread_mutex_lock(&d->lock);
    if (b->live) {
        b->prev->next = b->next;
        b->next->prev = b->prev;
        b->live = 0;
    }
    int cls = b->cls;
    if (cls >= 0 && d->open_count > 0 && d->cache_n[cls] < PER_CLASS) {
        size_t *total = cls >= BIG_CLASS ? &d->big_bytes : &d->small_bytes;
        size_t limit = cls >= BIG_CLASS ? BIG_LIMIT : SMALL_LIMIT;
        if (*total + b->cap <= limit) {
            *total += b->cap;
            b->next = d->cache[cls];
            d->cache[cls] = b;
            d->cache_n[cls]++;
            pthread_mutex_unlock(&d->lock);
            return;
        }
    }
    pthread_mutex_unlock(&d->lock);
    free(b);
}

/* Frees the cache (and, with all = 1, every live block). Lock held. */
static void release_blocks(int all)
{
    cpu_device *d = &g_dev;
    for (int c = 0; c < NCLASS; c++) {
        while (d->cache[c]) {
            blk *b = d->cache[c];
            d->cache[c] = b->next;
            free(b);
        }
        d->cache_n[c] = 0;
    }
    d->big_bytes = d->small_bytes = 0;
    if (all) {
        while (d->live.next != &d->live) {
            blk *b = d->live.next;
            d->live.next = b->next;
            free(b);
        }
        d->live.prev = &d->live;
    }
}

void *em__cpu_scratch_alloc(size_t bytes)
{
    blk *b = blk_get(bytes ? bytes : 1, 0);
    if (!b) {
        em__cpu_fail(EM_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of scratch memory",
                     bytes);
        return NULL;
    }
    return blk_data(b);
}

void em__cpu_scratch_free(void *p)
{
    if (p) blk_put(blk_of(p));
}

static em_status buffer_alloc(void *dev, size_t bytes, void **buffer)
{
    (void)dev;
    blk *b = blk_get(bytes ? bytes : 1, 1);
    if (CPU_UNLIKELY(!b)) {
        *buffer = NULL;
        return em__cpu_fail(EM_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes", bytes);
    }
    *buffer = blk_data(b);
    return EM_OK;
}

static void buffer_free(void *dev, void *buffer)
{
    (void)dev;
    if (buffer) blk_put(blk_of(buffer));
}

static em_status buffer_upload(void *dev, void *buffer, size_t offset, const void *src,
                               size_t bytes)
{
    (void)dev;
    memcpy((char *)buffer + offset, src, bytes);
    return EM_OK;
}

static em_status buffer_download(void *dev, void *buffer, size_t offset, void *dst, size_t bytes)
{
    (void)dev;
    memcpy(dst, (const char *)buffer + offset, bytes);
    return EM_OK;
}

static em_status buffer_copy(void *dev, void *src, size_t src_offset, void *dst,
                             size_t dst_offset, size_t bytes)
{
    (void)dev;
    memmove((char *)dst + dst_offset, (const char *)src + src_offset, bytes);
    return EM_OK;
}

static em_status synchronize(void *dev)
{
    (void)dev;
    return EM_OK;
}

/* ---------------- the device --------------------------------------------- */

static char g_cpu_model[96];
static int g_threads = 1;

static void read_cpu_model(void)
{
    snprintf(g_cpu_model, sizeof g_cpu_model, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *p = strchr(line, ':');
        if (!p) break;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, "\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n > 0) snprintf(g_cpu_model, sizeof g_cpu_model, "%.*s", (int)n, p);
        break;
    }
    fclose(f);
}

static int choose_threads(void)
{
    const char *env = em__cpu_getenv("EMBER_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n >= 1 && n <= 1024) return (int)n;
        em__cpu_log(EM_LOG_WARN, "ignoring EMBER_NUM_THREADS=%s (want 1..1024)", env);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int a = CPU_COUNT(&set);
        if (a > 0 && (n < 1 || a < n)) n = a;
    }
    if (n < 1) n = 1;
    if (n > 1024) n = 1024;
    return (int)n;
}

static int device_count(void) { return 1; }

static em_status device_info(int index, em_plugin_device_info *info)
{
    if (index != 0)
        return em__cpu_fail(EM_ERR_DEVICE, "cpu: no device %d (there is one, index 0)", index);
    if (!info) return em__cpu_fail(EM_ERR_NULL_ARG, "cpu: device_info without info");
    em_plugin_device_info v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.type = EM_DEVICE_CPU;
    snprintf(v.name, sizeof v.name, "%s (%d thread%s)", g_cpu_model, g_threads,
             g_threads == 1 ? "" : "s");
    snprintf(v.description, sizeof v.description, "%s; %d thread%s", em__cpu_blas_description(),
             g_threads, g_threads == 1 ? "" : "s");
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    v.memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    v.dtype_mask = (1u << EM_DTYPE_COUNT) - 1;
    em_plugin_device_info_set(info, &v); /* no more than info->struct_size bytes */
    return EM_OK;
}

static em_status device_open(int index, void **dev)
{
    if (index != 0)
        return em__cpu_fail(EM_ERR_DEVICE, "cpu: no device %d (there is one, index 0)", index);
    cpu_device *d = &g_dev;
    pthread_mutex_lock(&d->lock);
    int first = d->open_count++ == 0;
    pthread_mutex_unlock(&d->lock);
    if (first) {
        em_status st = em__cpu_pool_start(g_threads);
        if (st) {
            pthread_mutex_lock(&d->lock);
            d->open_count--;
            pthread_mutex_unlock(&d->lock);
            return st;
        }
    }
    *dev = d;
    return EM_OK;
}

static void device_close(void *dev)
{
    cpu_device *d = dev;
    if (!d) return;
    pthread_mutex_lock(&d->lock);
    int last = d->open_count > 0 && --d->open_count == 0;
    if (last) release_blocks(1);
    pthread_mutex_unlock(&d->lock);
    if (last) em__cpu_pool_stop();
}

static const char *reason(void) { return NULL; }

static void shutdown_plugin(void)
{
    em__cpu_pool_stop();
    pthread_mutex_lock(&g_dev.lock);
    g_dev.open_count = 0;
    release_blocks(1);
    pthread_mutex_unlock(&g_dev.lock);
    em__cpu_blas_shutdown();
    em_plugin_host_reset(&g_host);
}

/* If the core unloads the plugin without shutdown, the workers must not
 * outlive the code they run. */
__attribute__((destructor)) static void cpu_plugin_unload(void) { em__cpu_pool_stop(); }

/* ---------------- kernel registry --------------------------------------- */

#define KF(op, fn)                                                                       \
    {op, EM_F32, 0, fn}, {op, EM_F64, 0, fn}, {op, EM_F16, 0, fn}, {op, EM_BF16, 0, fn}
#define KA(op, fn) KF(op, fn), {op, EM_I32, 0, fn}, {op, EM_I64, 0, fn}, {op, EM_BOOL, 0, fn}

static const em_kernel_entry g_kernels[] = {
    /* memory and creation (key: out dtype; CAST: in dtype) */
    KA(EM_OP_FILL, em__cpu_k_fill),
    KA(EM_OP_COPY, em__cpu_k_copy),
    KA(EM_OP_CAST, em__cpu_k_cast),
    KA(EM_OP_ARANGE, em__cpu_k_arange),
    KA(EM_OP_LINSPACE, em__cpu_k_linspace),
    KF(EM_OP_RAND_UNIFORM, em__cpu_k_random),
    KF(EM_OP_RAND_NORMAL, em__cpu_k_random),
    KA(EM_OP_RANDINT, em__cpu_k_random),
    /* binary */
    KA(EM_OP_ADD, em__cpu_k_binary),
    KA(EM_OP_SUB, em__cpu_k_binary),
    KA(EM_OP_MUL, em__cpu_k_binary),
    KF(EM_OP_DIV, em__cpu_k_binary),
    KA(EM_OP_POW, em__cpu_k_binary),
    KA(EM_OP_MAXIMUM, em__cpu_k_binary),
    KA(EM_OP_MINIMUM, em__cpu_k_binary),
    KF(EM_OP_AXPY, em__cpu_k_axpy),
    {EM_OP_ADAM, EM_F32, 0, em__cpu_k_adam},
    {EM_OP_ADAM, EM_F64, 0, em__cpu_k_adam},
    {EM_OP_CROSS_ENTROPY, EM_F32, 0, em__cpu_k_cross_entropy},
    {EM_OP_CROSS_ENTROPY, EM_F64, 0, em__cpu_k_cross_entropy},
    {EM_OP_CROSS_ENTROPY_BACKWARD, EM_F32, 0, em__cpu_k_cross_entropy},
    {EM_OP_CROSS_ENTROPY_BACKWARD, EM_F64, 0, em__cpu_k_cross_entropy},
    KF(EM_OP_RELU_BACKWARD, em__cpu_k_relu_backward),
    /* comparisons */
    KA(EM_OP_EQ, em__cpu_k_compare),
    KA(EM_OP_NE, em__cpu_k_compare),
    KA(EM_OP_LT, em__cpu_k_compare),
    KA(EM_OP_LE, em__cpu_k_compare),
    KA(EM_OP_GT, em__cpu_k_compare),
    KA(EM_OP_GE, em__cpu_k_compare),
    /* selection */
    KA(EM_OP_WHERE, em__cpu_k_where),
    KA(EM_OP_CLAMP, em__cpu_k_clamp),
    KA(EM_OP_MASKED_FILL, em__cpu_k_masked_fill),
    /* unary */
    KA(EM_OP_NEG, em__cpu_k_unary),
    KA(EM_OP_ABS, em__cpu_k_unary),
    KF(EM_OP_EXP, em__cpu_k_unary),
    KF(EM_OP_LOG, em__cpu_k_unary),
    KF(EM_OP_SQRT, em__cpu_k_unary),
    KF(EM_OP_RSQRT, em__cpu_k_unary),
    KF(EM_OP_SIN, em__cpu_k_unary),
    KF(EM_OP_COS, em__cpu_k_unary),
    KF(EM_OP_TANH, em__cpu_k_unary),
    KF(EM_OP_SIGMOID, em__cpu_k_unary),
    KA(EM_OP_RELU, em__cpu_k_unary),
    KF(EM_OP_GELU, em__cpu_k_unary),
    KF(EM_OP_SILU, em__cpu_k_unary),
    KF(EM_OP_SOFTPLUS, em__cpu_k_unary),
    KA(EM_OP_SQUARE, em__cpu_k_unary),
    KF(EM_OP_RECIPROCAL, em__cpu_k_unary),
    KF(EM_OP_ERF, em__cpu_k_unary),
    KA(EM_OP_SIGN, em__cpu_k_unary),
    /* reductions */
    KA(EM_OP_SUM, em__cpu_k_reduce),
    KF(EM_OP_MEAN, em__cpu_k_reduce),
    KA(EM_OP_MAX, em__cpu_k_reduce),
    KA(EM_OP_MIN, em__cpu_k_reduce),
    KA(EM_OP_ARGMAX, em__cpu_k_reduce),
    KA(EM_OP_ARGMIN, em__cpu_k_reduce),
    KF(EM_OP_VAR, em__cpu_k_reduce),
    KF(EM_OP_STD, em__cpu_k_reduce),
    KF(EM_OP_LOGSUMEXP, em__cpu_k_reduce),
    KF(EM_OP_SOFTMAX, em__cpu_k_softmax),
    KF(EM_OP_LOG_SOFTMAX, em__cpu_k_softmax),
    /* linear algebra */
    KF(EM_OP_MATMUL, em__cpu_k_matmul),
    KF(EM_OP_LINEAR, em__cpu_k_linear),
    KF(EM_OP_LINEAR_ACT, em__cpu_k_linear),
    /* data movement */
    KA(EM_OP_CAT, em__cpu_k_cat),
    KA(EM_OP_INDEX_SELECT, em__cpu_k_index_select),
    KA(EM_OP_GATHER, em__cpu_k_gather),
    KA(EM_OP_SCATTER_ADD, em__cpu_k_scatter_add),
    {EM_OP_ONE_HOT, EM_I32, 0, em__cpu_k_one_hot},
    {EM_OP_ONE_HOT, EM_I64, 0, em__cpu_k_one_hot},
};

static const em_backend_table g_table = {
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = EM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(em_backend_table),
    .name = "cpu",
    .version = CPU_PLUGIN_VERSION,
    .device_count = device_count,
    .device_info = device_info,
    .device_open = device_open,
    .device_close = device_close,
    .buffer_alloc = buffer_alloc,
    .buffer_free = buffer_free,
    .buffer_upload = buffer_upload,
    .buffer_download = buffer_download,
    .buffer_copy = buffer_copy,
    .synchronize = synchronize,
    .kernels = g_kernels,
    .kernel_count = sizeof g_kernels / sizeof g_kernels[0],
    .supports = NULL,
    .reason = reason,
    .shutdown = shutdown_plugin,
};

/* ---------------- entry point -------------------------------------------- */

EM_PLUGIN_EXPORT em_status em_plugin_init(const em_host_services *host,
                                          const em_backend_table **table)
{
    if (!table) return EM_ERR_NULL_ARG;
    /* copies the services and checks the ABI major (a mismatch is reported
     * through host->set_error) */
    em_status st = em_plugin_host_init(&g_host, host, "cpu");
    if (st != EM_OK) return st;
    read_cpu_model();
    g_threads = choose_threads();
    em__cpu_blas_init();
    em__cpu_log(EM_LOG_INFO, "%s (%d threads); %s", g_cpu_model, g_threads,
                em__cpu_blas_description());
    *table = &g_table;
    return EM_OK;
}
