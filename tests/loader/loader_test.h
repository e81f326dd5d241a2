/*
 * loader_test.h — the small harness shared by the loader tests
 * (header-only): CHECK macros, a clean environment per scenario, stderr
 * capture, lookups in the refusal list, and the scenario runner (each test
 * process runs ONE scenario, named by argv[1], because the loader reads its
 * environment once per em_init).
 * Not for op tests (tests/test_util.h is).
 */
#ifndef EMBER_LOADER_TEST_H
#define EMBER_LOADER_TEST_H

#define _GNU_SOURCE
#include "ember.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LT_UNUSED __attribute__((unused))

static int lt_failures LT_UNUSED;
static int lt_checks LT_UNUSED;

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        lt_checks++;                                                                \
        if (!(cond)) {                                                              \
            lt_failures++;                                                          \
            fprintf(stderr, "FAIL %s:%d: CHECK(%s): ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n  (em_last_error: %s)\n", em_last_error());          \
        }                                                                           \
    } while (0)

#define CONTAINS(hay, needle)                                                       \
    do {                                                                            \
        const char *lt_h = (hay), *lt_n = (needle);                                 \
        CHECK(lt_h && strstr(lt_h, lt_n), "expected \"%s\" in:\n%s\n", lt_n,        \
              lt_h ? lt_h : "(null)");                                              \
    } while (0)

#define NOT_CONTAINS(hay, needle)                                                   \
    do {                                                                            \
        const char *lt_h = (hay), *lt_n = (needle);                                 \
        CHECK(!lt_h || !strstr(lt_h, lt_n), "did not expect \"%s\" in:\n%s\n",      \
              lt_n, lt_h);                                                          \
    } while (0)

/* Clears every variable the loader reads, then sets the given pairs
 * (name, value, ..., NULL). */
static LT_UNUSED void lt_env(const char *first, ...)
{
    static const char *vars[] = {"EMBER_BACKEND", "EMBER_PLUGIN_PATH", "EMBER_STRICT",
                                 "EMBER_LOG", "EMBER_FAKE_DEVICES"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    va_list ap;
    va_start(ap, first);
    for (const char *name = first; name; name = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        setenv(name, value, 1);
    }
    va_end(ap);
}

/* stderr capture into a temporary file. */
static int lt_saved_fd = -1;
static char lt_cap_path[64];

static LT_UNUSED void lt_capture_begin(void)
{
    fflush(stderr);
    snprintf(lt_cap_path, sizeof lt_cap_path, "/tmp/ember-loader-test-XXXXXX");
    int fd = mkstemp(lt_cap_path);
    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    lt_saved_fd = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Ends the capture; returns what was written (malloc'd, caller frees) and
 * echoes it to the real stderr for the test log. */
static LT_UNUSED char *lt_capture_end(void)
{
    fflush(stderr);
    dup2(lt_saved_fd, 2);
    close(lt_saved_fd);
    FILE *f = fopen(lt_cap_path, "rb");
    char *text = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
        if (text && n > 0) len = fread(text, 1, (size_t)n, f);
        fclose(f);
    }
    unlink(lt_cap_path);
    if (!text) text = calloc(1, 1);
    if (text && len) fprintf(stderr, "--- captured stderr ---\n%s--- end ---\n", text);
    return text;
}

static LT_UNUSED int lt_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* The refusal whose text contains `path`, or NULL. */
static LT_UNUSED const char *lt_rejection(const char *path)
{
    for (int i = 0; i < em_plugin_rejected_count(); i++) {
        const char *r = em_plugin_rejected(i);
        if (r && strstr(r, path)) return r;
    }
    return NULL;
}

static LT_UNUSED const em_backend *lt_backend(const char *name)
{
    for (int i = 0; i < em_backend_count(); i++)
        if (!strcmp(em_backend_name(em_backend_get(i)), name)) return em_backend_get(i);
    return NULL;
}

static LT_UNUSED em_device_props lt_props(const em_device *d)
{
    em_device_props p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    if (d) em_device_properties(d, &p);
    return p;
}

static LT_UNUSED const char *lt_name(const em_device *d) { return d ? em_device_name(d) : "(null)"; }

static LT_UNUSED void lt_dump(void)
{
    fprintf(stderr, "--- loader state ---\n%s", em_backend_selection_log());
    for (int i = 0; i < em_plugin_rejected_count(); i++)
        fprintf(stderr, "refused: %s\n", em_plugin_rejected(i));
    fprintf(stderr, "--- end ---\n");
}

typedef struct lt_scenario {
    const char *name;
    void (*run)(void);
} lt_scenario;

static LT_UNUSED int lt_main(int argc, char **argv, const lt_scenario *list, size_t n)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCENARIO\nscenarios:", argv[0]);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %s", list[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, argv[1]) != 0) continue;
        list[i].run();
        em_shutdown();
        printf("%s %s: %d checks, %d failed\n", lt_failures ? "FAIL" : "PASS", argv[1], lt_checks,
               lt_failures);
        return lt_failures ? 1 : 0;
    }
    fprintf(stderr, "unknown scenario '%s'\n", argv[1]);
    return 2;
}

#endif /* EMBER_LOADER_TEST_H */
