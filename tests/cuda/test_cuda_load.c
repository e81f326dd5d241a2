/*
 * test_cuda_load.c — loading the CUDA plugin, one scenario per process
 * (the loader reads its environment once per em_init):
 *   file_exists  build/plugins/libember-cuda.so is there;
 *   dlopen       dlopen of it succeeds with LD_LIBRARY_PATH cleared (the static
 *                CUDA runtime loads the driver lazily; cuBLAS via RUNPATH) and it
 *                exports em_plugin_init;
 *   named        EMBER_BACKEND=cuda: without a usable GPU em_init fails with
 *                EM_ERR_PLUGIN and a reason naming cudaGetDeviceCount and the
 *                runtime's error name; with one, the default device is cuda:0;
 *   auto         EMBER_BACKEND unset: without a GPU the default device is the CPU
 *                and em_plugin_rejected lists the cuda plugin with that reason;
 *                with one, the default is cuda:0.
 */
#define _GNU_SOURCE
#include "ember.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        checks++;                                                                        \
        if (!(cond)) {                                                                   \
            failures++;                                                                  \
            fprintf(stderr, "FAIL %s:%d: CHECK(%s): ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
        }                                                                                \
    } while (0)

static int contains(const char *hay, const char *needle) { return hay && strstr(hay, needle); }

static const char *cuda_rejection(void)
{
    for (int i = 0; i < em_plugin_rejected_count(); i++) {
        const char *r = em_plugin_rejected(i);
        if (contains(r, "libember-cuda.so")) return r;
    }
    return NULL;
}

/* The reason a GPU-less machine gives: names the call and a runtime error name. */
static void check_reason(const char *text)
{
    CHECK(contains(text, "no CUDA device: cudaGetDeviceCount: cudaError"),
          "no 'no CUDA device: cudaGetDeviceCount: cudaError...' in:\n%s", text ? text : "(null)");
    CHECK(contains(text, "cudaErrorInsufficientDriver") || contains(text, "cudaErrorNoDevice") ||
              contains(text, "cudaError"),
          "no runtime error name in:\n%s", text ? text : "(null)");
}

static int has_cuda_device(void)
{
    for (int i = 0; i < em_device_count(); i++)
        if (!strncmp(em_device_name(em_device_get(i)), "cuda:", 5)) return 1;
    return 0;
}

static void file_exists(void)
{
    struct stat s;
    CHECK(stat(EMBER_CUDA_PLUGIN, &s) == 0 && S_ISREG(s.st_mode), "%s is missing", EMBER_CUDA_PLUGIN);
    char expect[4096];
    snprintf(expect, sizeof expect, "%s", EMBER_CPU_PLUGIN);
    char *slash = strrchr(expect, '/');
    if (slash) snprintf(slash + 1, sizeof expect - (size_t)(slash + 1 - expect), "libember-cuda.so");
    CHECK(!strcmp(expect, EMBER_CUDA_PLUGIN), "the cuda plugin is %s, not next to the cpu plugin (%s)",
          EMBER_CUDA_PLUGIN, expect);
}

static void do_dlopen(void)
{
    void *h = dlopen(EMBER_CUDA_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen(%s): %s", EMBER_CUDA_PLUGIN, dlerror());
    if (!h) return;
    CHECK(dlsym(h, "em_plugin_init") != NULL, "no em_plugin_init");
    CHECK(dlsym(h, "cudaGetDeviceCount") == NULL, "the plugin exports CUDA runtime symbols");
    dlclose(h);
}

static void named(void)
{
    setenv("EMBER_BACKEND", "cuda", 1);
    em_status st = em_init();
    if (st == EM_OK && has_cuda_device()) {
        em_device *d = em_device_default();
        CHECK(d && !strcmp(em_device_name(d), "cuda:0"), "default %s", d ? em_device_name(d) : "(null)");
        printf("GPU present: %s\n", d ? em_device_name(d) : "?");
        return;
    }
    CHECK(st == EM_ERR_PLUGIN, "em_init gave %s", em_status_str(st));
    const char *msg = em_last_error();
    printf("em_init: %s\n", msg);
    CHECK(contains(msg, "no usable backend named 'cuda'"), "message:\n%s", msg ? msg : "(null)");
    CHECK(contains(msg, "libember-cuda.so"), "message:\n%s", msg ? msg : "(null)");
    check_reason(msg);
    CHECK(em_device_find("cpu") != NULL, "the CPU stays usable");
}

static void auto_select(void)
{
    em_status st = em_init();
    CHECK(st == EM_OK, "em_init: %s", em_last_error());
    em_device *d = em_device_default();
    if (has_cuda_device()) {
        CHECK(d && !strcmp(em_device_name(d), "cuda:0"), "default %s", d ? em_device_name(d) : "(null)");
        printf("GPU present: default %s\n", d ? em_device_name(d) : "?");
        return;
    }
    CHECK(d && !strcmp(em_device_name(d), "cpu:0"), "default %s", d ? em_device_name(d) : "(null)");
    const char *r = cuda_rejection();
    printf("refused: %s\n", r ? r : "(none)");
    CHECK(r != NULL, "the cuda plugin is not listed as refused");
    check_reason(r);
    CHECK(em_device_find("cuda") == NULL, "em_device_find(cuda) found a device");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s file_exists|dlopen|named|auto\n", argv[0]);
        return 2;
    }
    if (!strcmp(argv[1], "file_exists")) file_exists();
    else if (!strcmp(argv[1], "dlopen")) do_dlopen();
    else if (!strcmp(argv[1], "named")) named();
    else if (!strcmp(argv[1], "auto")) auto_select();
    else {
        fprintf(stderr, "unknown scenario '%s'\n", argv[1]);
        return 2;
    }
    em_shutdown();
    printf("%s %s: %d checks, %d failed\n", failures ? "FAIL" : "PASS", argv[1], checks, failures);
    return failures ? 1 : 0;
}
