/*
 * test_loader_select.c — the plugin loader and EMBER_BACKEND selection.
 * One scenario per process (argv[1]); tests/loader/CMakeLists.txt registers
 * each as its own CTest test. Every scenario sets its environment with
 * setenv before the first Ember call and checks: which device each form of
 * EMBER_BACKEND selects; that unknown names and every broken plugin are
 * refused with a message naming the path, the reason (both ABI versions) and
 * what is available; that the library stays usable through em_device_cpu;
 * EMBER_PLUGIN_PATH and shadowing; auto ranking (fake GPU above CPU, the
 * software device below it); em_device_find; re-initialisation; logging.
 * Not for ops on the fake device (test_loader_fallback.c).
 */
#include "loader_test.h"

#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define GOOD LT_GOOD_DIR
#define SOFT LT_SOFT_DIR
#define BAD LT_BAD_DIR
#define SHADOW LT_SHADOW_DIR
#define FAKE_SO GOOD "/libember-fake.so"
#define ABI_SO BAD "/libember-abi99.so"
#define NOENTRY_SO BAD "/libember-noentry.so"
#define INITFAIL_SO BAD "/libember-initfail.so"
#define SMALL_SO BAD "/libember-small.so"
#define NULLFN_SO BAD "/libember-nullfn.so"

/* The reasons the loader must give for each broken plugin. */
#define WHY_ABI "plugin ABI 99.0, Ember supports 1.x"
#define WHY_NOENTRY "no entry point em_plugin_init()"
#define WHY_INITFAIL "init failed (EM_ERR_BACKEND): initfail: simulated driver failure (code 42)"
#define WHY_SMALL "backend table too small"
#define WHY_NULLFN "the required table slot 'device_open' is NULL"

/* The CPU device must exist in every scenario: the CPU plugin is part of
 * the build. */
static em_device *need_cpu(void)
{
    em_device *cpu = em_device_cpu();
    CHECK(cpu != NULL, "em_device_cpu() is NULL: is backends/cpu built?");
    if (cpu) {
        CHECK(!strcmp(em_device_name(cpu), "cpu:0"), "cpu device is %s", em_device_name(cpu));
        CHECK(lt_props(cpu).type == EM_DEVICE_CPU, "cpu device type %d", lt_props(cpu).type);
        CHECK(em_device_get(0) == cpu, "the CPU device is not listed first (device 0 is %s)",
              lt_name(em_device_get(0)));
    }
    return cpu;
}

/* After a refused EMBER_BACKEND: the init error, em_device_default NULL with
 * the same error, the CPU still usable. Returns the message (static copy). */
static const char *expect_refused(em_status want)
{
    static char msg[4096];
    em_status st = em_init();
    CHECK(st == want, "em_init returned %d, want %d", st, want);
    CHECK(em_last_status() == want, "em_last_status %d", em_last_status());
    snprintf(msg, sizeof msg, "%s", em_last_error());
    fprintf(stderr, "em_init error message:\n%s\n", msg);
    CONTAINS(msg, "available devices:");
    CONTAINS(msg, "cpu:0");
    em_clear_error();
    CHECK(em_device_default() == NULL, "em_device_default gave a device after a bad EMBER_BACKEND");
    CHECK(em_last_status() == EM_ERR_PLUGIN, "em_device_default status %d", em_last_status());
    CHECK(!strcmp(em_last_error(), msg), "em_device_default's message differs:\n%s",
          em_last_error());
    /* a second em_init reports the same */
    em_clear_error();
    CHECK(em_init() == want, "second em_init");
    CHECK(!strcmp(em_last_error(), msg), "second em_init's message differs");
    em_clear_error();
    need_cpu();
    /* and tensors can still be made on the CPU explicitly */
    em_tensor *t = em_zeros(EM_F32, EM_SHAPE(2, 2), em_device_cpu());
    CHECK(t != NULL, "em_zeros on em_device_cpu() after a bad EMBER_BACKEND");
    em_tensor_release(t);
    /* while a tensor on the (absent) default device fails clearly */
    em_clear_error();
    t = em_zeros(EM_F32, EM_SHAPE(2), NULL);
    CHECK(t == NULL && em_last_status() == EM_ERR_PLUGIN,
          "em_zeros on the default device after a bad EMBER_BACKEND: %p status %d", (void *)t,
          em_last_status());
    em_tensor_release(t);
    em_clear_error();
    return msg;
}

static void check_bad_refusals(void)
{
    CONTAINS(lt_rejection(ABI_SO), WHY_ABI);
    CONTAINS(lt_rejection(NOENTRY_SO), WHY_NOENTRY);
    CONTAINS(lt_rejection(INITFAIL_SO), WHY_INITFAIL);
    CONTAINS(lt_rejection(SMALL_SO), WHY_SMALL);
    CONTAINS(lt_rejection(NULLFN_SO), WHY_NULLFN);
    /* "path: reason" */
    const char *r = lt_rejection(ABI_SO);
    CHECK(r && !strncmp(r, ABI_SO ": ", strlen(ABI_SO) + 2), "refusal text: %s", r ? r : "(null)");
    for (const char *name = "abi99"; name; name = NULL)
        CHECK(lt_backend(name) == NULL, "refused plugin %s is listed as loaded", name);
    CHECK(!lt_backend("noentry") && !lt_backend("initfail") && !lt_backend("small") &&
              !lt_backend("nullfn"),
          "a refused plugin is listed as loaded");
}

/* ---------------- auto selection ---------------------------------------- */

static void auto_gpu(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD ":" BAD, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    em_device *d = em_device_default();
    CHECK(d && !strcmp(em_device_name(d), "fake:0"), "auto chose %s, want fake:0", lt_name(d));
    em_device_props p = lt_props(d);
    CHECK(p.type == EM_DEVICE_GPU, "fake type %d", p.type);
    CHECK(!strcmp(p.backend, "fake") && p.index == 0, "props backend %s index %d", p.backend,
          p.index);
    CHECK(!strcmp(p.name, "Fake GPU 0"), "props name %s", p.name);
    CHECK(p.memory_bytes == (uint64_t)1 << 30, "memory %llu", (unsigned long long)p.memory_bytes);
    CHECK(p.dtype_mask == 1u << EM_F32, "dtype mask %x", p.dtype_mask);
    CONTAINS(p.description, "test plugin (fake 1.2.3)");
    need_cpu();
    const em_backend *fake = lt_backend("fake");
    CHECK(fake != NULL, "fake backend not listed");
    if (fake) {
        CHECK(!strcmp(em_backend_path(fake), FAKE_SO), "fake path %s", em_backend_path(fake));
        CHECK(!strcmp(em_backend_version(fake), "1.2.3"), "fake version %s",
              em_backend_version(fake));
    }
    CHECK(em_backend_get(0) && !strcmp(em_backend_name(em_backend_get(0)), "cpu"),
          "backend 0 is not cpu");
    CHECK(em_backend_get(em_backend_count()) == NULL, "em_backend_get past the end");
    em_clear_error();
    check_bad_refusals();
    CHECK(em_plugin_rejected(-1) == NULL && em_plugin_rejected(em_plugin_rejected_count()) == NULL,
          "em_plugin_rejected out of range");
    const char *log = em_backend_selection_log();
    CONTAINS(log, "search folder " GOOD " (EMBER_PLUGIN_PATH): 1 plugin file");
    CONTAINS(log, "search folder " BAD " (EMBER_PLUGIN_PATH): 5 plugin files");
    CONTAINS(log, "EMBER_BACKEND unset: choosing the best hardware device");
    CONTAINS(log, "default device: fake:0 (gpu, \"Fake GPU 0\")");
    CONTAINS(log, "loaded fake 1.2.3 from " FAKE_SO ": 1 device, 2 kernels");
    CONTAINS(log, "refused " ABI_SO ": " WHY_ABI);
    /* device_find agrees with the list */
    CHECK(em_device_find("fake") == d && em_device_find("FAKE:0") == d && em_device_find("") == d &&
              em_device_find("auto") == d,
          "em_device_find forms disagree");
    CHECK(em_device_find("cpu") == em_device_cpu(), "em_device_find(cpu)");
}

static void auto_soft(void)
{
    lt_env("EMBER_PLUGIN_PATH", SOFT, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    em_device *soft = em_device_find("soft");
    CHECK(soft && !strcmp(em_device_name(soft), "soft:0"), "soft device: %s", lt_name(soft));
    CHECK(lt_props(soft).type == EM_DEVICE_SOFTWARE, "soft type %d", lt_props(soft).type);
    em_device *d = em_device_default();
    CHECK(d && d != soft, "auto chose the software device %s", lt_name(d));
    CHECK(d && lt_props(d).type != EM_DEVICE_SOFTWARE, "auto chose a software device");
    /* with no GPU plugin in the build tree this is the CPU */
    if (em_backend_count() == 2) CHECK(d == em_device_cpu(), "auto chose %s", lt_name(d));
    need_cpu();
    CHECK(em_device_find("soft:0") == soft, "soft:0");
    const em_backend *b = lt_backend("soft");
    CHECK(b && !strcmp(em_backend_path(b), SOFT "/libember-soft.so"), "soft path");
}

/* ---------------- names ------------------------------------------------- */

static void name_cpu(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "cpu", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(em_device_default() == need_cpu(), "EMBER_BACKEND=cpu chose %s",
          lt_name(em_device_default()));
    CONTAINS(em_backend_selection_log(), "EMBER_BACKEND=cpu: the best device of that backend");
}

static void name_cpu_index(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "cpu:0", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(em_device_default() == need_cpu(), "EMBER_BACKEND=cpu:0 chose %s",
          lt_name(em_device_default()));
}

static void name_fake(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "fake", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(!strcmp(lt_name(em_device_default()), "fake:0"), "chose %s", lt_name(em_device_default()));
    need_cpu();
}

static void name_fake_index(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "fake:0", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(!strcmp(lt_name(em_device_default()), "fake:0"), "chose %s", lt_name(em_device_default()));
}

static void name_soft(void)
{
    /* a software device is used when named */
    lt_env("EMBER_PLUGIN_PATH", SOFT, "EMBER_BACKEND", "soft", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(!strcmp(lt_name(em_device_default()), "soft:0"), "chose %s", lt_name(em_device_default()));
}

static void bad_index_syntax(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "fake:x", NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "EMBER_BACKEND=fake:x: 'x' is not a device index");
    CONTAINS(msg, "fake:0 (gpu, \"Fake GPU 0\")");
}

static void bad_index_range(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "cpu:5", NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "EMBER_BACKEND=cpu:5: backend 'cpu' (");
    CONTAINS(msg, "has no device 5; its devices: cpu:0");
}

static void unknown_name(void)
{
    /* a name no plugin will ever have (cuda and vulkan plugins may exist) */
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "nosuch", NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "EMBER_BACKEND=nosuch: no usable backend named 'nosuch'");
    CONTAINS(msg, "tried: no file libember-nosuch.so in " GOOD " (EMBER_PLUGIN_PATH)");
    CONTAINS(msg, "fake:0");
}

static void bad_name_syntax(void)
{
    lt_env("EMBER_BACKEND", "cu da", NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "'cu da' is not a backend name");
}

static void named_refused(void)
{
    /* the plugin exists but is refused: the message says where and why */
    lt_env("EMBER_PLUGIN_PATH", BAD, "EMBER_BACKEND", "abi99", NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "no usable backend named 'abi99'");
    CONTAINS(msg, "tried " ABI_SO ": " WHY_ABI);
}

static void named_nodevice(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "fake", "EMBER_FAKE_DEVICES", "0", NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "tried " FAKE_SO ": no devices (EMBER_FAKE_DEVICES=0 (simulated: no fake "
                  "device present))");
    CHECK(lt_backend("fake") == NULL, "a plugin without devices is listed as loaded");
}

/* ---------------- paths ------------------------------------------------- */

static void path_good(void)
{
    lt_env("EMBER_BACKEND", FAKE_SO, NULL); /* not in any search folder */
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    em_device *d = em_device_default();
    CHECK(!strcmp(lt_name(d), "fake:0"), "chose %s", lt_name(d));
    CHECK(d && !strcmp(em_backend_path(lt_backend("fake")), FAKE_SO), "path");
    need_cpu();
    CHECK(em_device_find(FAKE_SO) == d, "em_device_find(path) of the loaded plugin");
    CONTAINS(em_backend_selection_log(), "EMBER_BACKEND names the file " FAKE_SO);
}

static void path_shadows_search(void)
{
    /* the file EMBER_BACKEND names wins over a plugin of the same name in
     * the search folders */
    lt_env("EMBER_BACKEND", SHADOW "/libember-fake.so", "EMBER_PLUGIN_PATH", GOOD, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    const em_backend *b = lt_backend("fake");
    CHECK(b && !strcmp(em_backend_version(b), "shadow-copy"), "the named file did not win");
    CHECK(!strcmp(lt_name(em_device_default()), "fake:0"), "chose %s", lt_name(em_device_default()));
    CONTAINS(lt_rejection(FAKE_SO), "shadowed by " SHADOW "/libember-fake.so");
}

static void path_also_in_search(void)
{
    /* the named file is also in a search folder: loaded once, no refusal */
    lt_env("EMBER_BACKEND", FAKE_SO, "EMBER_PLUGIN_PATH", GOOD, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(!strcmp(lt_name(em_device_default()), "fake:0"), "chose %s", lt_name(em_device_default()));
    CHECK(lt_rejection(FAKE_SO) == NULL, "refused: %s", lt_rejection(FAKE_SO));
}

static void path_relative(void)
{
    /* "libember-fake.so" (no '/') means the file in the current directory */
    if (chdir(GOOD) != 0) {
        CHECK(0, "chdir %s", GOOD);
        return;
    }
    lt_env("EMBER_BACKEND", "libember-fake.so", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(!strcmp(lt_name(em_device_default()), "fake:0"), "chose %s", lt_name(em_device_default()));
    CHECK(!strcmp(em_backend_path(lt_backend("fake")), "./libember-fake.so"), "path %s",
          em_backend_path(lt_backend("fake")));
}

static void path_refused(const char *path, const char *why)
{
    lt_env("EMBER_BACKEND", path, NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    char want[1024];
    snprintf(want, sizeof want, "EMBER_BACKEND=%s: the plugin could not be used", path);
    CONTAINS(msg, want);
    snprintf(want, sizeof want, "tried %s: %s", path, why);
    CONTAINS(msg, want);
    CONTAINS(lt_rejection(path), why);
}

static void path_abi(void) { path_refused(ABI_SO, WHY_ABI); }
static void path_noentry(void) { path_refused(NOENTRY_SO, WHY_NOENTRY); }
static void path_initfail(void) { path_refused(INITFAIL_SO, WHY_INITFAIL); }
static void path_small(void) { path_refused(SMALL_SO, WHY_SMALL ": struct_size is 112 bytes, plugin ABI 1.x needs at least 128"); }
static void path_nullfn(void) { path_refused(NULLFN_SO, WHY_NULLFN); }
static void path_missing(void)
{
    path_refused("/nonexistent/libember-nope.so", "cannot open the file: No such file or directory");
}
static void path_nodevice(void)
{
    lt_env("EMBER_BACKEND", FAKE_SO, "EMBER_FAKE_DEVICES", "0", NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "tried " FAKE_SO ": no devices (EMBER_FAKE_DEVICES=0");
}

static void path_not_plugin(void)
{
    /* a shared object that is not an Ember plugin at all, named by path */
    lt_env("EMBER_BACKEND", LT_LIBEMBER, NULL);
    const char *msg = expect_refused(EM_ERR_PLUGIN);
    CONTAINS(msg, "no entry point em_plugin_init()");
}

/* ---------------- EMBER_PLUGIN_PATH ------------------------------------- */

static void plugin_path_shadow(void)
{
    lt_env("EMBER_PLUGIN_PATH", SHADOW ":" GOOD, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    const em_backend *b = lt_backend("fake");
    CHECK(b && !strcmp(em_backend_version(b), "shadow-copy"), "the first fake did not win (%s)",
          b ? em_backend_version(b) : "none");
    CHECK(b && !strcmp(em_backend_path(b), SHADOW "/libember-fake.so"), "path");
    CONTAINS(lt_rejection(FAKE_SO), FAKE_SO ": shadowed by " SHADOW "/libember-fake.so");
}

static void plugin_path_overrides_explicit_order(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD ":" SHADOW, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    const em_backend *b = lt_backend("fake");
    CHECK(b && !strcmp(em_backend_version(b), "1.2.3"), "the first fake did not win");
    CONTAINS(lt_rejection(SHADOW "/libember-fake.so"), "shadowed by " FAKE_SO);
}

static void plugin_path_no_cwd(void)
{
    /* empty entries do not mean the current directory, which holds the bad
     * plugins here */
    if (chdir(BAD) != 0) {
        CHECK(0, "chdir %s", BAD);
        return;
    }
    lt_env("EMBER_PLUGIN_PATH", "::" GOOD ":", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(lt_backend("fake") != NULL, "fake not loaded from " GOOD);
    CHECK(lt_rejection("abi99") == NULL && lt_rejection("noentry") == NULL,
          "a plugin of the current directory was tried: %s", lt_rejection("abi99"));
    need_cpu();
}

static void plugin_path_missing_folder(void)
{
    lt_env("EMBER_PLUGIN_PATH", "/nonexistent/ember-plugins:" GOOD, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CONTAINS(em_backend_selection_log(),
             "search folder /nonexistent/ember-plugins (EMBER_PLUGIN_PATH): missing");
    CHECK(lt_backend("fake") != NULL, "fake not loaded");
}

/* ---------------- em_device_find, lifetime ------------------------------ */

static void find_and_load(void)
{
    lt_env(NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    int n0 = em_device_count();
    CHECK(em_device_find("fake") == NULL && em_last_status() == EM_ERR_PLUGIN, "fake before load");
    CONTAINS(em_last_error(), "em_device_find(\"fake\"): no usable backend named 'fake'");
    em_clear_error();
    em_device *d = em_device_find(FAKE_SO);
    CHECK(!strcmp(lt_name(d), "fake:0"), "em_device_find(path) gave %s", lt_name(d));
    CHECK(em_device_count() == n0 + 1, "device count %d -> %d", n0, em_device_count());
    CHECK(em_device_get(n0) == d, "the new device is not appended");
    CHECK(em_device_find(FAKE_SO) == d, "a second find loaded it again");
    CHECK(em_device_find("fake:0") == d, "fake:0 after load");
    CHECK(em_device_count() == n0 + 1, "device count changed on the second find");
    /* a loaded plugin's device works */
    em_tensor *t = em_zeros(EM_F32, EM_SHAPE(3), d);
    CHECK(t && em_tensor_device(t) == d, "em_zeros on fake:0");
    em_tensor_release(t);
    em_clear_error();
    CHECK(em_device_find(ABI_SO) == NULL && em_last_status() == EM_ERR_PLUGIN, "abi99 by path");
    CONTAINS(em_last_error(), "tried " ABI_SO ": " WHY_ABI);
    CONTAINS(lt_rejection(ABI_SO), WHY_ABI);
    int nr = em_plugin_rejected_count();
    em_clear_error();
    CHECK(em_device_find(ABI_SO) == NULL, "abi99 twice");
    CHECK(em_plugin_rejected_count() == nr, "a refused path was tried again");
    em_clear_error();
    CHECK(em_device_find("cpu:9") == NULL && em_last_status() == EM_ERR_DEVICE, "cpu:9 status %d",
          em_last_status());
    em_clear_error();
    CHECK(em_device_find(NULL) == NULL && em_last_status() == EM_ERR_NULL_ARG, "NULL spec");
    em_clear_error();
    CHECK(em_device_get(-1) == NULL && em_device_get(em_device_count()) == NULL, "get range");
    em_clear_error();
    /* the selection log is about em_init only */
    NOT_CONTAINS(em_backend_selection_log(), "fake");
}

static void reinit(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, NULL);
    em_shutdown(); /* before init: a no-op */
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(!strcmp(lt_name(em_device_default()), "fake:0"), "first init chose %s",
          lt_name(em_device_default()));
    em_tensor *t = em_zeros(EM_F32, EM_SHAPE(4), NULL);
    CHECK(t != NULL, "em_zeros");
    em_tensor_release(t);
    em_shutdown();
    em_shutdown();
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "cpu", NULL);
    CHECK(em_init() == EM_OK, "second em_init: %s", em_last_error());
    CHECK(em_device_default() == need_cpu(), "second init chose %s", lt_name(em_device_default()));
    em_shutdown();
    lt_env("EMBER_BACKEND", "nope", NULL);
    CHECK(em_init() == EM_ERR_PLUGIN, "third em_init");
    em_shutdown();
    lt_env(NULL);
    em_clear_error();
    CHECK(em_init() == EM_OK, "fourth em_init: %s", em_last_error());
    CHECK(em_last_status() == EM_OK, "stale error after a good init");
}

static em_status thread_status[8];
static em_device *thread_device[8];

static void *init_thread(void *arg)
{
    int i = (int)(intptr_t)arg;
    thread_status[i] = em_init();
    thread_device[i] = em_device_default();
    return NULL;
}

static void threads(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD ":" BAD, NULL);
    pthread_t th[8];
    for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, init_thread, (void *)(intptr_t)i);
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) {
        CHECK(thread_status[i] == EM_OK, "thread %d: status %d", i, thread_status[i]);
        CHECK(thread_device[i] && thread_device[i] == thread_device[0], "thread %d: device %s", i,
              lt_name(thread_device[i]));
    }
    CHECK(em_backend_count() >= 2, "backends %d", em_backend_count());
}

static void error_preserved(void)
{
    /* plugins report through the calling thread's error slot while loading;
     * an error pending before em_init must survive it */
    lt_env("EMBER_PLUGIN_PATH", BAD, NULL);
    CHECK(em_scope_end() == EM_ERR_STATE, "em_scope_end without a scope");
    char before[512];
    snprintf(before, sizeof before, "%s", em_last_error());
    CHECK(em_init() == EM_OK, "em_init");
    CHECK(em_last_status() == EM_ERR_STATE && !strcmp(em_last_error(), before),
          "pending error changed by em_init: %d %s", em_last_status(), em_last_error());
    em_clear_error();
    CHECK(em_init() == EM_OK && em_last_status() == EM_OK, "em_init after clear");
}

static void properties(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, NULL);
    em_device *d = em_device_find("fake");
    CHECK(d != NULL, "fake");
    /* an older caller's smaller struct: fields beyond it untouched */
    em_device_props p;
    memset(&p, 0x5a, sizeof p);
    p.struct_size = offsetof(em_device_props, description);
    CHECK(em_device_properties(d, &p) == EM_OK, "properties");
    CHECK(!strcmp(p.name, "Fake GPU 0") && !strcmp(p.backend, "fake"), "name/backend");
    CHECK(p.struct_size == offsetof(em_device_props, description), "struct_size changed");
    CHECK((unsigned char)p.description[0] == 0x5a && p.index == 0x5a5a5a5a,
          "a field past struct_size was written");
    p.struct_size = 0;
    CHECK(em_device_properties(d, &p) == EM_ERR_INVALID_ARG, "struct_size 0");
    em_clear_error();
    CHECK(em_device_properties(NULL, &p) == EM_ERR_NULL_ARG, "NULL device");
    em_clear_error();
    CHECK(em_device_properties(d, NULL) == EM_ERR_NULL_ARG, "NULL props");
    em_clear_error();
    CHECK(em_device_synchronize(d) == EM_OK, "synchronize");
    CHECK(!strcmp(em_device_type_name(EM_DEVICE_GPU), "gpu") &&
              !strcmp(em_device_type_name(EM_DEVICE_INTEGRATED_GPU), "integrated-gpu") &&
              !strcmp(em_device_type_name(EM_DEVICE_SOFTWARE), "software") &&
              !strcmp(em_device_type_name(EM_DEVICE_CPU), "cpu") &&
              !strcmp(em_device_type_name(EM_DEVICE_OTHER), "other"),
          "type names");
    CHECK(em_device_name(NULL) == NULL && em_backend_name(NULL) == NULL, "NULL names");
    em_clear_error();
}

/* ---------------- logging ----------------------------------------------- */

static void log_debug(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD ":" BAD, "EMBER_LOG", "debug", NULL);
    lt_capture_begin();
    em_status st = em_init();
    char *out = lt_capture_end();
    CHECK(st == EM_OK, "em_init: %d", st);
    CONTAINS(out, "[ember] debug: loader: Ember ");
    CONTAINS(out, "[ember] debug: loader: search folder " GOOD " (EMBER_PLUGIN_PATH): 1 plugin file");
    CONTAINS(out, "[ember] debug: loader: trying " ABI_SO);
    CONTAINS(out, "[ember] info: plugin " ABI_SO " refused: " WHY_ABI);
    CONTAINS(out, "[ember] debug: loader: " FAKE_SO ": accepted (fake 1.2.3, ABI 1.0)");
    CONTAINS(out, "kernel row 2 (op 999, dtype 0) ignored: op or dtype out of range");
    CONTAINS(out, "kernel row 3 (op 20, dtype 42) ignored");
    CONTAINS(out, "kernel row 4 (op 22, dtype 0) ignored: no function");
    CONTAINS(out, "[ember] debug: fake: device 0 opened"); /* the plugin's log service */
    CONTAINS(out, "[ember] debug: loader: default device: fake:0");
    free(out);
}

static void log_quiet(void)
{
    /* default level warn: a good init prints nothing */
    lt_env("EMBER_PLUGIN_PATH", GOOD ":" BAD, NULL);
    lt_capture_begin();
    em_status st = em_init();
    char *out = lt_capture_end();
    CHECK(st == EM_OK, "em_init: %d", st);
    NOT_CONTAINS(out, "] debug:");
    NOT_CONTAINS(out, "] info:");
    NOT_CONTAINS(out, "loader");
    free(out);
    /* a bad EMBER_BACKEND is a warning */
    em_shutdown();
    lt_env("EMBER_BACKEND", "nope", NULL);
    lt_capture_begin();
    st = em_init();
    out = lt_capture_end();
    CHECK(st == EM_ERR_PLUGIN, "em_init: %d", st);
    CONTAINS(out, "[ember] warn: EMBER_BACKEND=nope: no usable backend named 'nope'");
    em_clear_error();
    free(out);
}

static void log_bad_value(void)
{
    lt_env("EMBER_LOG", "loud", NULL);
    lt_capture_begin();
    em_init();
    em_shutdown();
    em_init();
    char *out = lt_capture_end();
    CONTAINS(out, "[ember] warn: EMBER_LOG='loud' is not one of error, warn, info, debug; using warn");
    CHECK(lt_count(out, "EMBER_LOG='loud'") == 1, "warned %d times", lt_count(out, "EMBER_LOG='loud'"));
    free(out);
}

/* ---------------- ember-info -------------------------------------------- */

static char *run_capture(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    char *buf = calloc(1, 65536);
    size_t n = 0;
    if (p && buf) {
        size_t r;
        while (n < 65535 && (r = fread(buf + n, 1, 65535 - n, p)) > 0) n += r;
    }
    int s = p ? pclose(p) : -1;
    *status = s >= 0 && WIFEXITED(s) ? WEXITSTATUS(s) : -1;
    fprintf(stderr, "--- %s (exit %d) ---\n%s--- end ---\n", cmd, *status, buf ? buf : "");
    return buf;
}

static void ember_info(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD ":" BAD, NULL);
    int status;
    char *out = run_capture("'" LT_EMBER_INFO "'", &status);
    CHECK(status == 0, "ember-info exit %d", status);
    CONTAINS(out, "Ember ");
    CONTAINS(out, "Plugin search folders");
    CONTAINS(out, GOOD " (EMBER_PLUGIN_PATH): 1 plugin file");
    CONTAINS(out, "fake     version 1.2.3");
    CONTAINS(out, "2 kernels, 1 device");
    CONTAINS(out, FAKE_SO);
    CONTAINS(out, ABI_SO ": " WHY_ABI);
    CONTAINS(out, "fake:0  [default]");
    CONTAINS(out, "type:        gpu");
    CONTAINS(out, "memory:      1.0 GiB");
    CONTAINS(out, "dtypes:      f32");
    CONTAINS(out, "description: test plugin (fake 1.2.3)");
    CONTAINS(out, "cpu:0");
    CONTAINS(out, "EMBER_BACKEND=(unset) gives: fake:0 (gpu, Fake GPU 0)");
    free(out);

    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_BACKEND", "cuda:1", NULL);
    out = run_capture("'" LT_EMBER_INFO "'", &status);
    CHECK(status == 1, "ember-info with a bad EMBER_BACKEND: exit %d", status);
    CONTAINS(out, "Devices (");
    CONTAINS(out, "EMBER_BACKEND=cuda:1 gives: no device: EM_ERR_PLUGIN");
    CONTAINS(out, "no usable backend named 'cuda'");
    free(out);
}

static const lt_scenario scenarios[] = {
    {"auto_gpu", auto_gpu},
    {"auto_soft", auto_soft},
    {"name_cpu", name_cpu},
    {"name_cpu_index", name_cpu_index},
    {"name_fake", name_fake},
    {"name_fake_index", name_fake_index},
    {"name_soft", name_soft},
    {"bad_index_syntax", bad_index_syntax},
    {"bad_index_range", bad_index_range},
    {"unknown_name", unknown_name},
    {"bad_name_syntax", bad_name_syntax},
    {"named_refused", named_refused},
    {"named_nodevice", named_nodevice},
    {"path_good", path_good},
    {"path_relative", path_relative},
    {"path_shadows_search", path_shadows_search},
    {"path_also_in_search", path_also_in_search},
    {"path_abi", path_abi},
    {"path_noentry", path_noentry},
    {"path_initfail", path_initfail},
    {"path_small", path_small},
    {"path_nullfn", path_nullfn},
    {"path_missing", path_missing},
    {"path_nodevice", path_nodevice},
    {"path_not_plugin", path_not_plugin},
    {"plugin_path_shadow", plugin_path_shadow},
    {"plugin_path_order", plugin_path_overrides_explicit_order},
    {"plugin_path_no_cwd", plugin_path_no_cwd},
    {"plugin_path_missing_folder", plugin_path_missing_folder},
    {"find_and_load", find_and_load},
    {"reinit", reinit},
    {"threads", threads},
    {"error_preserved", error_preserved},
    {"properties", properties},
    {"log_debug", log_debug},
    {"log_quiet", log_quiet},
    {"log_bad_value", log_bad_value},
    {"ember_info", ember_info},
};

int main(int argc, char **argv)
{
    return lt_main(argc, argv, scenarios, sizeof scenarios / sizeof scenarios[0]);
}
