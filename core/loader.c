/*
 * loader.c — finding, loading and checking backend plugins, and choosing the
 * default device from EMBER_BACKEND. Owns the loader's global state: the
 * backends, the device list, the refusals, the selection log, the fallback
 * counter and EMBER_STRICT.
 * Not for the em_device_* API (device.c) or for running kernels (dispatch.c).
 *
 * Where plugins come from (first match of a name wins; later files of the
 * same name are refused as "shadowed by ..."):
 *   1. the file EMBER_BACKEND names, when it is a path (contains '/' or ends
 *      in ".so"), loaded before anything else so that it wins;
 *   2. each folder of EMBER_PLUGIN_PATH (colon-separated, in order; empty
 *      entries are ignored: the current directory is never searched);
 *   3. the build tree's plugin folder EMBER_BUILD_PLUGIN_DIR, but only while
 *      libember.so itself lives in that build tree (an installed library
 *      must not pick up plugins from a build tree left on the disk);
 *   4. <folder of libember.so>/EMBER_INSTALL_PLUGIN_SUBDIR, i.e. lib/ember/.
 * A plugin file is named libember-<name>.so; its table's name must be <name>.
 *
 * Lifetime: em__ensure_init runs the loader once under a mutex (not
 * pthread_once, so that em_shutdown can reset the state and a later em_init
 * load everything again). Readers of the lists use atomic counts over arrays
 * of fixed capacity whose filled slots never move, so they need no lock.
 */
#define _GNU_SOURCE /* secure_getenv, dladdr, realpath */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifndef EMBER_BUILD_PLUGIN_DIR
#define EMBER_BUILD_PLUGIN_DIR ""
#endif
#ifndef EMBER_INSTALL_PLUGIN_SUBDIR
#define EMBER_INSTALL_PLUGIN_SUBDIR "ember"
#endif

#define EM_MAX_BACKENDS 64
#define EM_MAX_DEVICES 256
#define EM_MAX_REJECTED 256
#define EM_MAX_FOLDERS 64
#define EM_PLUGIN_PREFIX "libember-"
#define EM_PLUGIN_SUFFIX ".so"

/* The smallest table Ember accepts: ABI 1.0 up to and including kernel_count. */
#define EM_MIN_TABLE_SIZE (offsetof(em_backend_table, kernel_count) + sizeof(size_t))

/* ------------------------------------------------------------------------ */
/* A growing string                                                          */
/* ------------------------------------------------------------------------ */

typedef struct strbuf {
    char *data;
    size_t len, cap;
    bool failed; /* out of memory: the text is truncated */
} strbuf;

static void sb_vappend(strbuf *sb, const char *fmt, va_list ap)
{
    if (sb->failed) return;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    size_t need = sb->len + (size_t)n + 1;
    if (need > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < need) cap *= 2;
        char *p = realloc(sb->data, cap);
        if (!p) {
            sb->failed = true;
            return;
        }
        sb->data = p;
        sb->cap = cap;
    }
    vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
    sb->len += (size_t)n;
}

__attribute__((format(printf, 2, 3))) static void sb_append(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vappend(sb, fmt, ap);
    va_end(ap);
}

static const char *sb_str(const strbuf *sb) { return sb->data ? sb->data : ""; }

static void sb_free(strbuf *sb)
{
    free(sb->data);
    memset(sb, 0, sizeof *sb);
}

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct rejection {
    char *path;   /* the file                                     */
    char *name;   /* the plugin name its file name gives, or ""   */
    char *text;   /* "path: reason" (what em_plugin_rejected returns) */
} rejection;

typedef struct folder {
    char *path;
    const char *origin; /* "EMBER_PLUGIN_PATH", "build tree", ...      */
    const char *state;  /* "3 plugin files", "missing", ...           */
} folder;

static struct {
    em_status status;          /* of the last init                          */
    char *error;               /* the message when status != EM_OK          */
    em_backend *backends[EM_MAX_BACKENDS];
    atomic_int n_backends;
    em_device *devices[EM_MAX_DEVICES];
    atomic_int n_devices;
    rejection rejected[EM_MAX_REJECTED];
    atomic_int n_rejected;
    int rejected_dropped;      /* refusals beyond EM_MAX_REJECTED           */
    folder folders[EM_MAX_FOLDERS];
    int n_folders;
    strbuf log;                /* the selection log                         */
    _Atomic(em_device *) cpu;
    em_device *dflt;
} g;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool g_ready;
static atomic_bool g_strict;
static atomic_bool g_no_fused; /* EMBER_FUSED=0 */
static atomic_bool g_guard;    /* EMBER_GUARD=1 */
static _Thread_local bool tl_in_loader; /* this thread runs the loader now */

static bool g_log_open; /* decisions go to the selection log (during em_init) */

static em_status ensure(bool set_error);

static atomic_uint_fast64_t g_fallbacks;
static atomic_bool g_fallback_logged[EM_OP_COUNT_HINT];

/* ------------------------------------------------------------------------ */
/* Host services                                                             */
/* ------------------------------------------------------------------------ */

static void host_log(int level, const char *plugin, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em__log_plugin_v(level, plugin, fmt, ap);
    va_end(ap);
}

static const char *host_getenv(const char *name)
{
    return name ? secure_getenv(name) : NULL;
}

static const em_host_services g_host = {
    .abi_major = EM_PLUGIN_ABI_MAJOR,
    .abi_minor = EM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(em_host_services),
    .set_error = em__plugin_set_error,
    .log = host_log,
    .getenv = host_getenv,
};

const em_host_services *em__host_services(void) { return &g_host; }

/* ------------------------------------------------------------------------ */
/* Fallback counter and strict mode                                          */
/* ------------------------------------------------------------------------ */

void em__note_fallback(int op, const em_device *from)
{
    atomic_fetch_add_explicit(&g_fallbacks, 1, memory_order_relaxed);
    if (op <= 0 || op >= EM_OP_COUNT_HINT) return;
    if (atomic_exchange(&g_fallback_logged[op], true)) return;
    em__log(EM_LOG_WARN, "op %d ran on the CPU backend: %s has no kernel (%s; logged once per op)",
            op, from && from->backend ? from->backend->name : "the device's backend",
            em__op_name(op));
}

uint64_t em_fallback_count(void) { return (uint64_t)atomic_load(&g_fallbacks); }

bool em__strict_mode(void) { return atomic_load_explicit(&g_strict, memory_order_relaxed); }
bool em__fused_enabled(void) { return !atomic_load_explicit(&g_no_fused, memory_order_relaxed); }
bool em__guard_mode(void) { return atomic_load_explicit(&g_guard, memory_order_relaxed); }

/* ------------------------------------------------------------------------ */
/* Recording decisions                                                       */
/* ------------------------------------------------------------------------ */

/* One line of the selection log, also written to the debug log. */
__attribute__((format(printf, 1, 2))) static void decide(const char *fmt, ...)
{
    char line[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g_log_open) sb_append(&g.log, "%s\n", line);
    em__log(EM_LOG_DEBUG, "loader: %s", line);
}

static char *dupstr(const char *s)
{
    return strdup(s ? s : "");
}

/* Plugins report through the calling thread's error slot while they load;
 * the loader keeps the caller's pending error as it was. */
typedef struct saved_error {
    em_status status;
    char *message;
} saved_error;

static saved_error error_save(void)
{
    saved_error e = {em_last_status(), NULL};
    if (e.status != EM_OK) e.message = dupstr(em_last_error());
    return e;
}

static void error_restore(saved_error *e)
{
    if (e->status == EM_OK)
        em_clear_error();
    else
        em__fail(e->status, "%s", e->message ? e->message : "");
    free(e->message);
    e->message = NULL;
}

/* Records a refused plugin file. */
static void reject(const char *path, const char *name, const char *reason)
{
    int n = atomic_load(&g.n_rejected);
    em__log(EM_LOG_INFO, "plugin %s refused: %s", path, reason);
    if (g_log_open) sb_append(&g.log, "refused %s: %s\n", path, reason);
    if (n >= EM_MAX_REJECTED) {
        g.rejected_dropped++;
        return;
    }
    rejection *r = &g.rejected[n];
    size_t len = strlen(path) + strlen(reason) + 3;
    r->path = dupstr(path);
    r->name = dupstr(name);
    r->text = malloc(len);
    if (!r->path || !r->name || !r->text) {
        free(r->path);
        free(r->name);
        free(r->text);
        memset(r, 0, sizeof *r);
        g.rejected_dropped++;
        return;
    }
    snprintf(r->text, len, "%s: %s", path, reason);
    atomic_store_explicit(&g.n_rejected, n + 1, memory_order_release);
}

static const rejection *find_rejection_by_path(const char *path)
{
    int n = atomic_load(&g.n_rejected);
    for (int i = n - 1; i >= 0; i--)
        if (!strcmp(g.rejected[i].path, path)) return &g.rejected[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Names and paths                                                           */
/* ------------------------------------------------------------------------ */

static bool valid_name(const char *s, size_t len)
{
    /* short enough for em_device_props.backend */
    if (len == 0 || len >= sizeof(((em_device_props *)0)->backend)) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(islower(c) || isdigit(c) || c == '_' || c == '-')) return false;
    }
    return true;
}

/* The plugin name a file name gives ("libember-cpu.so" -> "cpu"); false
 * when the file name does not follow the pattern. */
static bool name_from_file(const char *file, char *name, size_t cap)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t pre = strlen(EM_PLUGIN_PREFIX), suf = strlen(EM_PLUGIN_SUFFIX), len = strlen(base);
    if (len <= pre + suf || strncmp(base, EM_PLUGIN_PREFIX, pre) != 0 ||
        strcmp(base + len - suf, EM_PLUGIN_SUFFIX) != 0)
        return false;
    size_t n = len - pre - suf;
    if (!valid_name(base + pre, n) || n >= cap) return false;
    memcpy(name, base + pre, n);
    name[n] = '\0';
    return true;
}

static em_backend *find_backend(const char *name)
{
    int n = atomic_load(&g.n_backends);
    for (int i = 0; i < n; i++)
        if (!strcasecmp(g.backends[i]->name, name)) return g.backends[i];
    return NULL;
}

/* The loaded backend whose file is `path` (same inode), or NULL. */
static em_backend *find_backend_by_file(const char *path, em_backend *const *list, int n)
{
    struct stat want;
    if (stat(path, &want) != 0) return NULL;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(list[i]->path, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
            return list[i];
    }
    return NULL;
}

/* The folder holding libember.so (absolute), or false. */
static bool library_dir(char *dir, size_t cap)
{
    Dl_info info;
    if (!dladdr((const void *)(uintptr_t)&em_init, &info) || !info.dli_fname) return false;
    char real[PATH_MAX];
    if (!realpath(info.dli_fname, real)) return false;
    char *slash = strrchr(real, '/');
    if (!slash) return false;
    *slash = '\0';
    if (strlen(real) + 1 > cap) return false;
    snprintf(dir, cap, "%s", real[0] ? real : "/");
    return true;
}

/* ------------------------------------------------------------------------ */
/* Loading one plugin file                                                   */
/* ------------------------------------------------------------------------ */

static const char *status_name(em_status st)
{
    /* "EM_ERR_PLUGIN: plugin could not be used" -> "EM_ERR_PLUGIN" */
    static _Thread_local char buf[32];
    const char *s = em_status_str(st);
    size_t n = strcspn(s, ":");
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* Calls a plugin's shutdown (when its table has one) and unloads it. */
static void unload(em_backend *b)
{
    if (b->table.shutdown) b->table.shutdown();
    if (b->dl_handle) dlclose(b->dl_handle);
    free(b);
}

/* The table's first missing required slot, or NULL. */
static const char *missing_slot(const em_backend_table *t)
{
#define EM_REQUIRE(field) \
    if (!t->field) return #field
    EM_REQUIRE(device_count);
    EM_REQUIRE(device_info);
    EM_REQUIRE(device_open);
    EM_REQUIRE(device_close);
    EM_REQUIRE(buffer_alloc);
    EM_REQUIRE(buffer_free);
    EM_REQUIRE(buffer_upload);
    EM_REQUIRE(buffer_download);
    EM_REQUIRE(buffer_copy);
    EM_REQUIRE(synchronize);
#undef EM_REQUIRE
    if (!t->kernels && t->kernel_count > 0) return "kernels";
    return NULL;
}

static void build_kernel_slots(em_backend *b)
{
    size_t accepted = 0;
    for (size_t i = 0; i < b->table.kernel_count; i++) {
        const em_kernel_entry *e = &b->table.kernels[i];
        if (e->op <= 0 || e->op >= EM_OP_COUNT_HINT || e->dtype < 0 || e->dtype >= EM_DTYPE_COUNT ||
            !e->fn) {
            em__log(EM_LOG_DEBUG, "loader: %s: kernel row %zu (op %d, dtype %d) ignored: %s", b->name,
                    i, (int)e->op, (int)e->dtype,
                    !e->fn ? "no function" : "op or dtype out of range");
            continue;
        }
        em_kernel_slot *slot = &b->kernels[e->op][e->dtype];
        if (slot->fn) {
            em__log(EM_LOG_DEBUG, "loader: %s: kernel row %zu (op %d, dtype %s) ignored: a "
                    "previous row registered it", b->name, i, (int)e->op,
                    em_dtype_name((em_dtype)e->dtype));
            continue;
        }
        slot->fn = e->fn;
        slot->flags = e->flags;
        accepted++;
    }
    em__log(EM_LOG_DEBUG, "loader: %s: %zu of %zu kernel rows registered", b->name, accepted,
            b->table.kernel_count);
}

/*
 * dlopens `path`, runs its entry point and checks its table. Returns the new
 * backend (devices not opened yet), or NULL after recording the refusal.
 * `file_name` is the name the file name gives ("" when it has none); the
 * table's name must equal it when given. `loaded`/`n_loaded`: backends that
 * already claimed a name.
 */
static em_backend *load_plugin(const char *path, const char *file_name, em_backend *const *loaded,
                               int n_loaded)
{
    char why[1400];
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, sizeof why, "cannot open the file: %s", strerror(errno));
        reject(path, file_name, why);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        reject(path, file_name, "not a regular file");
        return NULL;
    }
    if (strlen(path) >= sizeof(((em_backend *)0)->path)) {
        reject(path, file_name, "the path is too long");
        return NULL;
    }
    em_backend *b = calloc(1, sizeof *b);
    if (!b) {
        reject(path, file_name, "out of host memory");
        return NULL;
    }
    snprintf(b->path, sizeof b->path, "%s", path);

    dlerror();
    b->dl_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!b->dl_handle) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "dlopen failed: %s", e ? e : "unknown error");
        goto refuse;
    }
    em_plugin_init_fn entry;
    void *sym = dlsym(b->dl_handle, EM_PLUGIN_ENTRY_NAME);
    if (!sym) {
        snprintf(why, sizeof why, "no entry point %s() (not an Ember plugin?)", EM_PLUGIN_ENTRY_NAME);
        goto refuse;
    }
    memcpy(&entry, &sym, sizeof entry);
    for (int i = 0; i < n_loaded; i++) {
        /* the same file under another name (a link): dlopen gave the
         * instance already loaded; initialising it again would break it */
        if (loaded[i]->dl_handle == b->dl_handle) {
            snprintf(why, sizeof why, "the same file as %s, already loaded", loaded[i]->path);
            dlclose(b->dl_handle);
            b->dl_handle = NULL;
            goto refuse;
        }
    }

    const em_backend_table *t = NULL;
    unsigned serial = em__error_serial();
    em_status ist = entry(&g_host, &t);
    if (ist != EM_OK) {
        if (em__error_serial() != serial && em_last_error()[0])
            snprintf(why, sizeof why, "init failed (%s): %s", status_name(ist), em_last_error());
        else
            snprintf(why, sizeof why, "init failed (%s) without a message", status_name(ist));
        goto refuse;
    }
    if (!t) {
        snprintf(why, sizeof why, "%s() returned EM_OK but no backend table", EM_PLUGIN_ENTRY_NAME);
        goto refuse;
    }
    if (t->abi_major != EM_PLUGIN_ABI_MAJOR) {
        snprintf(why, sizeof why, "plugin ABI %u.%u, Ember supports %d.x (up to %d.%d)",
                 (unsigned)t->abi_major, (unsigned)t->abi_minor, EM_PLUGIN_ABI_MAJOR,
                 EM_PLUGIN_ABI_MAJOR, EM_PLUGIN_ABI_MINOR);
        goto refuse;
    }
    if (t->struct_size < EM_MIN_TABLE_SIZE) {
        snprintf(why, sizeof why, "backend table too small: struct_size is %u bytes, plugin ABI "
                 "%d.x needs at least %zu (up to and including kernel_count)",
                 (unsigned)t->struct_size, EM_PLUGIN_ABI_MAJOR, (size_t)EM_MIN_TABLE_SIZE);
        goto refuse;
    }
    size_t n = t->struct_size < sizeof b->table ? t->struct_size : sizeof b->table;
    memcpy(&b->table, t, n); /* the tail past struct_size stays NULL */
    b->table.struct_size = (uint32_t)n;

    const char *missing = missing_slot(&b->table);
    if (missing) {
        snprintf(why, sizeof why, "the required table slot '%s' is NULL", missing);
        goto refuse_after_init;
    }
    if (!b->table.name || !valid_name(b->table.name, strlen(b->table.name))) {
        snprintf(why, sizeof why, "the table's name is %s (want a short lower-case name)",
                 b->table.name ? "not valid" : "NULL");
        goto refuse_after_init;
    }
    if (file_name[0] && strcmp(file_name, b->table.name) != 0) {
        snprintf(why, sizeof why, "the file is named for '%s' but the plugin calls itself '%s'",
                 file_name, b->table.name);
        goto refuse_after_init;
    }
    for (int i = 0; i < n_loaded; i++) {
        if (!strcasecmp(loaded[i]->name, b->table.name)) {
            snprintf(why, sizeof why, "a backend named '%s' is already loaded from %s",
                     b->table.name, loaded[i]->path);
            goto refuse_after_init;
        }
    }
    snprintf(b->name, sizeof b->name, "%s", b->table.name);
    snprintf(b->version, sizeof b->version, "%s", b->table.version ? b->table.version : "unknown");
    build_kernel_slots(b);
    return b;

refuse_after_init:
    /* the table has our ABI: let the plugin release what its init took */
    if (b->table.shutdown) b->table.shutdown();
    b->table.shutdown = NULL;
refuse:
    if (b->dl_handle) dlclose(b->dl_handle);
    free(b);
    reject(path, file_name, why);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Devices                                                                   */
/* ------------------------------------------------------------------------ */

static void close_device(em_device *d)
{
    if (d->ctx) d->backend->table.device_close(d->ctx);
    em__device_lock_destroy(&d->lock);
    free(d);
}

/* Opens b's devices and appends b and them to the global lists; on failure
 * records the refusal and unloads b. Returns whether b was registered. */
static bool register_backend(em_backend *b)
{
    char why[1200];
    int nb = atomic_load(&g.n_backends), nd0 = atomic_load(&g.n_devices);
    if (nb >= EM_MAX_BACKENDS) {
        snprintf(why, sizeof why, "too many backends (the limit is %d)", EM_MAX_BACKENDS);
        goto refuse;
    }
    int count = b->table.device_count();
    if (count <= 0) {
        const char *r = b->table.reason ? b->table.reason() : NULL;
        snprintf(why, sizeof why, "no devices (%s)", r && *r ? r : "the plugin gave no reason");
        goto refuse;
    }
    em_device *opened[EM_MAX_DEVICES];
    int n_opened = 0;
    char last_error[600] = "";
    if (nd0 + count > EM_MAX_DEVICES)
        em__log(EM_LOG_WARN, "%s: only %d of its %d devices are used (Ember's limit is %d devices)",
                b->path, EM_MAX_DEVICES - nd0, count, EM_MAX_DEVICES);
    for (int i = 0; i < count && nd0 + n_opened < EM_MAX_DEVICES; i++) {
        em_device *d = calloc(1, sizeof *d);
        if (!d) {
            snprintf(last_error, sizeof last_error, "device %d: out of host memory", i);
            break;
        }
        d->backend = b;
        d->index = i;
        snprintf(d->name, sizeof d->name, "%s:%d", b->name, i);
        d->info.struct_size = sizeof d->info;
        unsigned serial = em__error_serial();
        em_status st = b->table.device_info(i, &d->info);
        const char *step = "device_info";
        if (st == EM_OK) {
            step = "device_open";
            st = b->table.device_open(i, &d->ctx);
        }
        if (st != EM_OK) {
            snprintf(last_error, sizeof last_error, "%s(%d) failed (%s)%s%s", step, i,
                     status_name(st), em__error_serial() != serial ? ": " : "",
                     em__error_serial() != serial ? em_last_error() : "");
            em__log(EM_LOG_WARN, "%s: device %s skipped: %s", b->path, d->name, last_error);
            if (g_log_open) sb_append(&g.log, "device %s skipped: %s\n", d->name, last_error);
            free(d);
            continue;
        }
        d->info.struct_size = sizeof d->info;
        d->info.name[sizeof d->info.name - 1] = '\0';
        d->info.description[sizeof d->info.description - 1] = '\0';
        if (d->info.type < EM_DEVICE_CPU || d->info.type > EM_DEVICE_OTHER) {
            em__log(EM_LOG_DEBUG, "loader: %s reports device type %d; treated as 'other'", d->name,
                    (int)d->info.type);
            d->info.type = EM_DEVICE_OTHER;
        }
        if (!d->info.name[0]) snprintf(d->info.name, sizeof d->info.name, "%s", d->name);
        em__device_lock_init(&d->lock);
        opened[n_opened++] = d;
    }
    if (n_opened == 0) {
        snprintf(why, sizeof why, "none of its %d device%s could be opened%s%s", count,
                 count == 1 ? "" : "s", last_error[0] ? ": " : "", last_error);
        goto refuse;
    }
    b->first_device = nd0;
    b->device_count = n_opened;
    for (int i = 0; i < n_opened; i++) {
        g.devices[nd0 + i] = opened[i];
        atomic_store_explicit(&g.n_devices, nd0 + i + 1, memory_order_release);
    }
    g.backends[nb] = b;
    atomic_store_explicit(&g.n_backends, nb + 1, memory_order_release);
    int kernels = 0;
    for (int op = 0; op < EM_OP_COUNT_HINT; op++)
        for (int dt = 0; dt < EM_DTYPE_COUNT; dt++) kernels += b->kernels[op][dt].fn != NULL;
    decide("loaded %s %s from %s: %d device%s, %d kernels", b->name, b->version, b->path, n_opened,
           n_opened == 1 ? "" : "s", kernels);
    for (int i = 0; i < n_opened; i++)
        decide("device %s: %s \"%s\" (rank %d)", opened[i]->name,
               em_device_type_name((em_device_type)opened[i]->info.type), opened[i]->info.name,
               em__device_rank(opened[i]->info.type));
    if (!strcmp(b->name, "cpu") && !atomic_load(&g.cpu)) atomic_store(&g.cpu, opened[0]);
    return true;

refuse:
    reject(b->path, b->name, why);
    unload(b);
    return false;
}

/* ------------------------------------------------------------------------ */
/* Discovery                                                                 */
/* ------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_folder(const char *path, const char *origin)
{
    if (g.n_folders >= EM_MAX_FOLDERS) {
        decide("search folder %s (%s): ignored, more than %d folders", path, origin, EM_MAX_FOLDERS);
        return;
    }
    folder *f = &g.folders[g.n_folders];
    f->path = dupstr(path);
    if (!f->path) return;
    f->origin = origin;
    f->state = "not searched";
    g.n_folders++;
}

typedef struct pending {
    em_backend *list[EM_MAX_BACKENDS];
    int n;
    /* names claimed by a file, loaded or not: (name, path) */
    char claimed_name[EM_MAX_REJECTED][64];
    char *claimed_path[EM_MAX_REJECTED];
    int n_claimed;
} pending;

static const char *claimed_by(const pending *p, const char *name)
{
    for (int i = 0; i < p->n_claimed; i++)
        if (!strcasecmp(p->claimed_name[i], name)) return p->claimed_path[i];
    return NULL;
}

static void claim(pending *p, const char *name, const char *path)
{
    if (!name[0] || p->n_claimed >= EM_MAX_REJECTED || claimed_by(p, name)) return;
    snprintf(p->claimed_name[p->n_claimed], sizeof p->claimed_name[0], "%s", name);
    p->claimed_path[p->n_claimed] = dupstr(path);
    if (p->claimed_path[p->n_claimed]) p->n_claimed++;
}

static void load_into(pending *p, const char *path, const char *file_name)
{
    if (p->n >= EM_MAX_BACKENDS) {
        reject(path, file_name, "too many plugins");
        return;
    }
    em_backend *b = load_plugin(path, file_name, p->list, p->n);
    if (b) {
        p->list[p->n++] = b;
        em__log(EM_LOG_DEBUG, "loader: %s: accepted (%s %s, ABI %u.%u)", path, b->name, b->version,
                (unsigned)b->table.abi_major, (unsigned)b->table.abi_minor);
        claim(p, b->name, path);
    }
}

static void scan_folder(pending *p, folder *f)
{
    struct stat st;
    if (stat(f->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        f->state = "missing";
        decide("search folder %s (%s): missing", f->path, f->origin);
        return;
    }
    for (int i = 0; i < g.n_folders && &g.folders[i] != f; i++) {
        struct stat other;
        if (!strcmp(g.folders[i].state, "missing")) continue;
        if (stat(g.folders[i].path, &other) == 0 && other.st_dev == st.st_dev &&
            other.st_ino == st.st_ino) {
            f->state = "already searched";
            decide("search folder %s (%s): same folder as %s, skipped", f->path, f->origin,
                   g.folders[i].path);
            return;
        }
    }
    DIR *dir = opendir(f->path);
    if (!dir) {
        f->state = "unreadable";
        decide("search folder %s (%s): cannot be read: %s", f->path, f->origin, strerror(errno));
        return;
    }
    char **files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char name[64];
        if (!name_from_file(e->d_name, name, sizeof name)) {
            if (!strncmp(e->d_name, EM_PLUGIN_PREFIX, strlen(EM_PLUGIN_PREFIX)))
                em__log(EM_LOG_DEBUG, "loader: %s/%s: not a plugin file name (want %s<name>%s)",
                        f->path, e->d_name, EM_PLUGIN_PREFIX, EM_PLUGIN_SUFFIX);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **nf = realloc(files, ncap * sizeof *nf);
            if (!nf) break;
            files = nf;
            cap = ncap;
        }
        files[n] = dupstr(e->d_name);
        if (files[n]) n++;
    }
    closedir(dir);
    if (n > 1) qsort(files, n, sizeof *files, cmp_str);
    f->state = n ? "searched" : "no plugin files";
    decide("search folder %s (%s): %zu plugin file%s", f->path, f->origin, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        char name[64], path[PATH_MAX];
        name_from_file(files[i], name, sizeof name);
        int len = snprintf(path, sizeof path, "%s/%s", f->path, files[i]);
        free(files[i]);
        if (len < 0 || (size_t)len >= sizeof path) continue;
        const char *first = claimed_by(p, name);
        struct stat a, b;
        if (first && stat(first, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            em__log(EM_LOG_DEBUG, "loader: %s: the same file as %s, already tried", path, first);
            continue;
        }
        if (first) {
            char why[PATH_MAX + 32];
            snprintf(why, sizeof why, "shadowed by %s", first);
            reject(path, name, why);
            continue;
        }
        em__log(EM_LOG_DEBUG, "loader: trying %s", path);
        claim(p, name, path);
        load_into(p, path, name);
    }
    free(files);
}

/* Is `path` inside folder `root` (both resolved)? */
static bool path_inside(const char *path, const char *root)
{
    char rp[PATH_MAX], rr[PATH_MAX];
    if (!realpath(path, rp) || !realpath(root, rr)) return false;
    size_t n = strlen(rr);
    return strncmp(rp, rr, n) == 0 && (rp[n] == '/' || rp[n] == '\0');
}

static void build_folders(const char *plugin_path)
{
    if (plugin_path && *plugin_path) {
        const char *s = plugin_path;
        while (true) {
            const char *colon = strchr(s, ':');
            size_t len = colon ? (size_t)(colon - s) : strlen(s);
            if (len == 0) {
                em__log(EM_LOG_DEBUG, "loader: EMBER_PLUGIN_PATH: empty entry ignored (the current "
                        "directory is never searched; write '.' to mean it)");
            } else if (len < PATH_MAX) {
                char dir[PATH_MAX];
                memcpy(dir, s, len);
                dir[len] = '\0';
                add_folder(dir, "EMBER_PLUGIN_PATH");
            }
            if (!colon) break;
            s = colon + 1;
        }
    }
    char libdir[PATH_MAX];
    bool have_libdir = library_dir(libdir, sizeof libdir);
    const char *build_dir = EMBER_BUILD_PLUGIN_DIR;
    if (build_dir[0]) {
        char build_root[PATH_MAX];
        snprintf(build_root, sizeof build_root, "%s", build_dir);
        char *slash = strrchr(build_root, '/');
        if (slash && slash != build_root) *slash = '\0';
        if (!have_libdir || path_inside(libdir, build_root))
            add_folder(build_dir, "build tree");
        else
            decide("search folder %s (build tree): skipped, libember.so (in %s) is not in that "
                   "build tree", build_dir, libdir);
    }
    if (have_libdir) {
        char dir[PATH_MAX];
        int len = snprintf(dir, sizeof dir, "%s/%s", libdir, EMBER_INSTALL_PLUGIN_SUBDIR);
        if (len > 0 && (size_t)len < sizeof dir) add_folder(dir, "next to libember.so");
    } else {
        decide("the folder of libember.so is unknown (dladdr failed): installed plugins are not "
               "searched");
    }
}

/* ------------------------------------------------------------------------ */
/* Device specs: the one parser for EMBER_BACKEND and em_device_find         */
/* ------------------------------------------------------------------------ */

typedef enum spec_kind { SPEC_AUTO, SPEC_NAME, SPEC_PATH, SPEC_BAD } spec_kind;

typedef struct spec {
    spec_kind kind;
    char name[64];      /* SPEC_NAME                                    */
    int index;          /* SPEC_NAME: -1 = the backend's best device     */
    char path[PATH_MAX];/* SPEC_PATH: the file to load                   */
    char bad[256];      /* SPEC_BAD: what is wrong                       */
} spec;

static bool is_path_spec(const char *s)
{
    size_t n = strlen(s), suf = strlen(EM_PLUGIN_SUFFIX);
    return strchr(s, '/') || (n >= suf && !strcmp(s + n - suf, EM_PLUGIN_SUFFIX));
}

static void parse_spec(const char *text, spec *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->index = -1;
    if (!text || !*text || !strcasecmp(text, "auto")) {
        sp->kind = SPEC_AUTO;
        return;
    }
    if (is_path_spec(text)) {
        sp->kind = SPEC_PATH;
        /* a bare "libember-x.so" means the file in the current directory,
         * never a search of the system library folders */
        int len = snprintf(sp->path, sizeof sp->path, "%s%s", strchr(text, '/') ? "" : "./", text);
        if (len < 0 || (size_t)len >= sizeof sp->path) {
            sp->kind = SPEC_BAD;
            snprintf(sp->bad, sizeof sp->bad, "the path is too long");
        }
        return;
    }
    const char *colon = strchr(text, ':');
    size_t name_len = colon ? (size_t)(colon - text) : strlen(text);
    char lower[64];
    if (name_len == 0 || name_len >= sizeof lower) {
        sp->kind = SPEC_BAD;
        snprintf(sp->bad, sizeof sp->bad, "'%.*s' is not a backend name",
                 (int)(name_len > 60 ? 60 : name_len), text);
        return;
    }
    for (size_t i = 0; i < name_len; i++) lower[i] = (char)tolower((unsigned char)text[i]);
    lower[name_len] = '\0';
    if (!valid_name(lower, name_len)) {
        sp->kind = SPEC_BAD;
        snprintf(sp->bad, sizeof sp->bad, "'%s' is not a backend name (lower-case letters, digits, "
                 "'_' and '-')", lower);
        return;
    }
    snprintf(sp->name, sizeof sp->name, "%s", lower);
    sp->kind = SPEC_NAME;
    if (colon) {
        const char *idx = colon + 1;
        size_t digits = strspn(idx, "0123456789");
        if (digits == 0 || idx[digits] != '\0' || digits > 6) {
            sp->kind = SPEC_BAD;
            snprintf(sp->bad, sizeof sp->bad, "'%.40s' is not a device index (a number, as in %s:0)",
                     idx, lower);
            return;
        }
        sp->index = atoi(idx);
    }
}

/* The best device of backend b (b NULL: of all backends; hardware only). */
static em_device *best_device(const em_backend *b)
{
    em_device *best = NULL;
    int best_rank = -1000;
    int n = atomic_load(&g.n_devices);
    for (int i = 0; i < n; i++) {
        em_device *d = g.devices[i];
        if (b && d->backend != b) continue;
        int r = em__device_rank(d->info.type);
        if (!b && r < em__device_rank(EM_DEVICE_CPU)) continue;
        if (r > best_rank) {
            best = d;
            best_rank = r;
        }
    }
    return best;
}

static void append_available(strbuf *sb)
{
    int n = atomic_load(&g.n_devices);
    sb_append(sb, "\n  available devices:");
    if (n == 0) {
        sb_append(sb, " none (no plugin could be loaded; is libember-cpu.so built/installed?)");
        return;
    }
    for (int i = 0; i < n; i++) {
        const em_device *d = g.devices[i];
        bool by_name = em__device_rank(d->info.type) < em__device_rank(EM_DEVICE_CPU);
        sb_append(sb, "%s %s (%s%s, \"%s\")", i ? "," : "", d->name,
                  em_device_type_name((em_device_type)d->info.type),
                  by_name ? ", only by name" : "", d->info.name);
    }
}

static void append_folders(strbuf *sb)
{
    for (int i = 0; i < g.n_folders; i++)
        sb_append(sb, "%s %s (%s%s%s)", i ? "," : "", g.folders[i].path, g.folders[i].origin,
                  strcmp(g.folders[i].state, "missing") ? "" : ", ",
                  strcmp(g.folders[i].state, "missing") ? "" : "missing");
    if (g.n_folders == 0) sb_append(sb, " (no folder to search)");
}

/* Appends the refusals of plugin `name` (NULL: all) as "tried" lines;
 * returns how many. */
static int append_tried(strbuf *sb, const char *name, const char *path)
{
    int n = atomic_load(&g.n_rejected), shown = 0;
    for (int i = 0; i < n; i++) {
        const rejection *r = &g.rejected[i];
        if (name && strcasecmp(r->name, name) != 0) continue;
        if (path && strcmp(r->path, path) != 0) continue;
        sb_append(sb, "\n  tried %s", r->text);
        shown++;
    }
    return shown;
}

/* The resolver; g_lock held. Fills *msg with the explanation on failure. */
static em_device *resolve_locked(const char *text, const char *who, bool may_load, em_status *st,
                                 strbuf *msg)
{
    spec sp;
    parse_spec(text, &sp);
    char asked[PATH_MAX + 64];
    if (!strcmp(who, "EMBER_BACKEND"))
        snprintf(asked, sizeof asked, "EMBER_BACKEND=%s", text && *text ? text : "(unset)");
    else
        snprintf(asked, sizeof asked, "%s(\"%s\")", who, text ? text : "");
    *st = EM_ERR_PLUGIN;
    switch (sp.kind) {
    case SPEC_BAD:
        sb_append(msg, "%s: %s; expected NAME, NAME:INDEX (e.g. cuda:0) or a path to a plugin "
                  ".so", asked, sp.bad);
        append_available(msg);
        return NULL;
    case SPEC_AUTO: {
        em_device *d = best_device(NULL);
        if (d) return d;
        sb_append(msg, "%s: no hardware device is available (software devices are used only "
                  "when named)", asked);
        if (!append_tried(msg, NULL, NULL)) {
            sb_append(msg, "\n  searched:");
            append_folders(msg);
        }
        append_available(msg);
        return NULL;
    }
    case SPEC_NAME: {
        em_backend *b = find_backend(sp.name);
        if (!b) {
            sb_append(msg, "%s: no usable backend named '%s'", asked, sp.name);
            if (!append_tried(msg, sp.name, NULL)) {
                sb_append(msg, "\n  tried: no file %s%s%s in", EM_PLUGIN_PREFIX, sp.name,
                          EM_PLUGIN_SUFFIX);
                append_folders(msg);
            }
            append_available(msg);
            return NULL;
        }
        if (sp.index < 0) return best_device(b);
        for (int i = 0; i < b->device_count; i++) {
            em_device *d = g.devices[b->first_device + i];
            if (d->index == sp.index) return d;
        }
        *st = EM_ERR_DEVICE;
        sb_append(msg, "%s: backend '%s' (%s) has no device %d; its devices:", asked,
                  b->name, b->path, sp.index);
        for (int i = 0; i < b->device_count; i++)
            sb_append(msg, "%s %s", i ? "," : "", g.devices[b->first_device + i]->name);
        append_available(msg);
        return NULL;
    }
    case SPEC_PATH: {
        int nb = atomic_load(&g.n_backends);
        em_backend *b = find_backend_by_file(sp.path, g.backends, nb);
        if (!b && may_load && !find_rejection_by_path(sp.path)) {
            char file_name[64] = "";
            name_from_file(sp.path, file_name, sizeof file_name);
            const em_backend *same = file_name[0] ? find_backend(file_name) : NULL;
            if (same) {
                char why[PATH_MAX + 64];
                snprintf(why, sizeof why, "a backend named '%s' is already loaded from %s",
                         file_name, same->path);
                reject(sp.path, file_name, why);
            } else {
                em__log(EM_LOG_DEBUG, "loader: %s: loading %s", who, sp.path);
                em_backend *nbk = load_plugin(sp.path, file_name, g.backends, nb);
                if (nbk && register_backend(nbk)) b = nbk;
            }
        }
        if (b) return best_device(b);
        sb_append(msg, "%s: the plugin could not be used", asked);
        if (!append_tried(msg, NULL, sp.path)) sb_append(msg, "\n  tried %s: not loaded", sp.path);
        append_available(msg);
        return NULL;
    }
    }
    return NULL;
}

em_device *em__resolve_device(const char *spec_text, const char *who, bool may_load)
{
    ensure(false); /* a bad EMBER_BACKEND is not this call's error */
    if (tl_in_loader) {
        em__fail(EM_ERR_STATE, "%s was called from inside a plugin while loading plugins", who);
        return NULL;
    }
    strbuf msg = {0};
    em_status st;
    saved_error saved = error_save();
    pthread_mutex_lock(&g_lock);
    em_device *d = resolve_locked(spec_text, who, may_load, &st, &msg);
    pthread_mutex_unlock(&g_lock);
    error_restore(&saved);
    if (!d) em__fail(st, "%s", msg.failed ? "out of host memory describing a device error" : sb_str(&msg));
    sb_free(&msg);
    return d;
}

/* ------------------------------------------------------------------------ */
/* Init and shutdown                                                         */
/* ------------------------------------------------------------------------ */

static void reset_state(void)
{
    atomic_store(&g_ready, false);
    int nd = atomic_load(&g.n_devices), nb = atomic_load(&g.n_backends),
        nr = atomic_load(&g.n_rejected);
    atomic_store(&g.n_devices, 0);
    atomic_store(&g.n_backends, 0);
    atomic_store(&g.n_rejected, 0);
    atomic_store(&g.cpu, NULL);
    g.dflt = NULL;
    for (int i = nd - 1; i >= 0; i--) close_device(g.devices[i]);
    for (int i = nb - 1; i >= 0; i--) unload(g.backends[i]);
    for (int i = 0; i < nr; i++) {
        free(g.rejected[i].path);
        free(g.rejected[i].name);
        free(g.rejected[i].text);
    }
    for (int i = 0; i < g.n_folders; i++) free(g.folders[i].path);
    sb_free(&g.log);
    free(g.error);
    g.error = NULL;
    g.status = EM_OK;
    g.n_folders = 0;
    g.rejected_dropped = 0;
    memset(g.devices, 0, sizeof g.devices);
    memset(g.backends, 0, sizeof g.backends);
    memset(g.rejected, 0, sizeof g.rejected);
}

static void do_init(void)
{
    em__log_reload();
    const char *env_backend = secure_getenv("EMBER_BACKEND");
    const char *env_path = secure_getenv("EMBER_PLUGIN_PATH");
    const char *env_strict = secure_getenv("EMBER_STRICT");
    char *backend = dupstr(env_backend), *plugin_path = dupstr(env_path);
    atomic_store(&g_strict, env_strict && !strcmp(env_strict, "1"));
    const char *env_fused = secure_getenv("EMBER_FUSED");
    atomic_store(&g_no_fused, env_fused && !strcmp(env_fused, "0"));
    if (env_fused && strcmp(env_fused, "0") && strcmp(env_fused, "1"))
        em__log(EM_LOG_WARN, "EMBER_FUSED=%s is neither 0 nor 1: fused kernels stay on", env_fused);
    const char *env_guard = secure_getenv("EMBER_GUARD");
    atomic_store(&g_guard, env_guard && !strcmp(env_guard, "1"));
    if (env_guard && strcmp(env_guard, "0") && strcmp(env_guard, "1"))
        em__log(EM_LOG_WARN, "EMBER_GUARD=%s is neither 0 nor 1: guard regions stay off", env_guard);
    em__log(EM_LOG_DEBUG, "loader: Ember %s, plugin ABI %d.%d; EMBER_BACKEND=%s "
            "EMBER_PLUGIN_PATH=%s EMBER_STRICT=%s", em_version(), EM_PLUGIN_ABI_MAJOR,
            EM_PLUGIN_ABI_MINOR, env_backend ? env_backend : "(unset)",
            env_path ? env_path : "(unset)", env_strict ? env_strict : "(unset)");

    pending *p = calloc(1, sizeof *p);
    if (!backend || !plugin_path || !p) {
        g.status = EM_ERR_OUT_OF_MEMORY;
        g.error = dupstr("em_init: out of host memory while loading plugins");
        goto done;
    }

    /* 1. the file EMBER_BACKEND names */
    spec sp;
    parse_spec(backend, &sp);
    if (sp.kind == SPEC_PATH) {
        char file_name[64] = "";
        name_from_file(sp.path, file_name, sizeof file_name);
        decide("EMBER_BACKEND names the file %s: loading it first", sp.path);
        claim(p, file_name, sp.path);
        load_into(p, sp.path, file_name);
    }
    /* 2-4. the search folders */
    build_folders(plugin_path);
    for (int i = 0; i < g.n_folders; i++) scan_folder(p, &g.folders[i]);

    /* devices: the CPU backend's first, then the others in load order */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < p->n; i++)
            if (p->list[i] && (pass == 1 || !strcmp(p->list[i]->name, "cpu"))) {
                register_backend(p->list[i]);
                p->list[i] = NULL;
            }
    if (!atomic_load(&g.cpu))
        decide("no CPU backend: libember-cpu.so was not found or was refused; ops without a "
               "kernel on their device fail instead of falling back");

    /* the default device */
    if (sp.kind == SPEC_AUTO)
        decide("EMBER_BACKEND %s: choosing the best hardware device (gpu > integrated-gpu > cpu; "
               "software devices only by name)", backend[0] ? "=auto" : "unset");
    else
        decide("EMBER_BACKEND=%s: %s", backend,
               sp.kind == SPEC_PATH ? "the device of that plugin file"
               : sp.kind == SPEC_NAME ? (sp.index < 0 ? "the best device of that backend"
                                                       : "that device of that backend")
                                      : "not a valid value");
    strbuf msg = {0};
    em_status st;
    g.dflt = resolve_locked(backend, "EMBER_BACKEND", false, &st, &msg);
    if (g.dflt) {
        decide("default device: %s (%s, \"%s\")", g.dflt->name,
               em_device_type_name((em_device_type)g.dflt->info.type), g.dflt->info.name);
    } else {
        g.status = EM_ERR_PLUGIN;
        g.error = dupstr(msg.failed ? "em_init: out of host memory describing the error"
                                    : sb_str(&msg));
        decide("no default device: %s", sb_str(&msg));
        em__log(EM_LOG_WARN, "%s", sb_str(&msg));
    }
    sb_free(&msg);

done:
    if (p)
        for (int i = 0; i < p->n_claimed; i++) free(p->claimed_path[i]);
    free(p);
    free(backend);
    free(plugin_path);
}

static em_status ensure(bool set_error)
{
    if (!atomic_load_explicit(&g_ready, memory_order_acquire)) {
        if (tl_in_loader) {
            if (set_error)
                em__fail(EM_ERR_STATE, "Ember was called from inside a plugin while loading "
                         "plugins");
            return EM_ERR_STATE;
        }
        pthread_mutex_lock(&g_lock);
        if (!atomic_load(&g_ready)) {
            saved_error saved = error_save();
            tl_in_loader = true;
            g_log_open = true;
            do_init();
            g_log_open = false;
            tl_in_loader = false;
            error_restore(&saved);
            atomic_store_explicit(&g_ready, true, memory_order_release);
        }
        pthread_mutex_unlock(&g_lock);
    }
    if (g.status != EM_OK && set_error) em__fail(g.status, "%s", g.error ? g.error : "");
    return g.status;
}

em_status em__ensure_init(void) { return ensure(true); }

em_status em_init(void) { return ensure(true); }

void em_shutdown(void)
{
    if (tl_in_loader) return;
    pthread_mutex_lock(&g_lock);
    if (atomic_load(&g_ready)) {
        em__log(EM_LOG_DEBUG, "loader: shutting down: closing %d devices, unloading %d backends",
                atomic_load(&g.n_devices), atomic_load(&g.n_backends));
        reset_state();
    }
    pthread_mutex_unlock(&g_lock);
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */
/* ------------------------------------------------------------------------ */

int em__device_list_count(void)
{
    ensure(false);
    return atomic_load_explicit(&g.n_devices, memory_order_acquire);
}

em_device *em__device_list_get(int i)
{
    int n = em__device_list_count();
    return i >= 0 && i < n ? g.devices[i] : NULL;
}

em_device *em__loader_cpu(void)
{
    ensure(false);
    return atomic_load(&g.cpu);
}

em_device *em__loader_default(void)
{
    if (ensure(true) != EM_OK) return NULL;
    if (!g.dflt) em__fail(EM_ERR_PLUGIN, "no default device");
    return g.dflt;
}

int em_backend_count(void)
{
    ensure(false);
    return atomic_load_explicit(&g.n_backends, memory_order_acquire);
}

const em_backend *em_backend_get(int i)
{
    int n = em_backend_count();
    if (i < 0 || i >= n) {
        em__fail(EM_ERR_INDEX, "em_backend_get: index %d is out of range (%d backend%s loaded)", i,
                 n, n == 1 ? "" : "s");
        return NULL;
    }
    return g.backends[i];
}

const char *em_backend_name(const em_backend *backend)
{
    if (!backend) {
        em__null_arg("em_backend_name", "backend");
        return NULL;
    }
    return backend->name;
}

const char *em_backend_path(const em_backend *backend)
{
    if (!backend) {
        em__null_arg("em_backend_path", "backend");
        return NULL;
    }
    return backend->path;
}

const char *em_backend_version(const em_backend *backend)
{
    if (!backend) {
        em__null_arg("em_backend_version", "backend");
        return NULL;
    }
    return backend->version;
}

int em_plugin_rejected_count(void)
{
    ensure(false);
    return atomic_load_explicit(&g.n_rejected, memory_order_acquire);
}

const char *em_plugin_rejected(int i)
{
    int n = em_plugin_rejected_count();
    return i >= 0 && i < n ? g.rejected[i].text : NULL;
}

const char *em_backend_selection_log(void)
{
    ensure(false);
    return sb_str(&g.log);
}
