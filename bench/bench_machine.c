/*
 * bench_machine.c — what a report records about where it ran: CPU model
 * and cores (/proc/cpuinfo, sysconf), the OS (uname), the load average at
 * start, Ember's version and plugin ABI, every device measured (name, type,
 * backend version, description, plugin path) and the settings that change
 * numerical results (TF32, fast math, BLAS core, strict mode).
 * Not for measuring (ember_bench.c).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <ember_plugin.h>

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(out, cap, "%s", colon);
        break;
    }
    fclose(f);
}

static void append(char *buf, size_t cap, const char *fmt, const char *a, const char *b)
{
    size_t u = strlen(buf);
    if (u < cap) snprintf(buf + u, cap - u, fmt, a, b);
}

void bench_machine_info(bench_report *r)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(r->created, sizeof r->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cpu_model(r->cpu_model, sizeof r->cpu_model);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    r->cores = n > 0 ? (int)n : 1;
    struct utsname u;
    if (uname(&u) == 0) snprintf(r->os, sizeof r->os, "%s %s %s", u.sysname, u.release, u.machine);
    double la[1] = {0};
    if (getloadavg(la, 1) == 1) r->loadavg = la[0];
    snprintf(r->ember_version, sizeof r->ember_version, "%s", em_version());
    snprintf(r->plugin_abi, sizeof r->plugin_abi, "%d.%d", EM_PLUGIN_ABI_MAJOR, EM_PLUGIN_ABI_MINOR);
    r->precision[0] = '\0';
    static const char *const vars[] = {"EMBER_CUDA_TF32", "EMBER_STRICT", "OPENBLAS_CORETYPE",
                                       "OMP_NUM_THREADS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        append(r->precision, sizeof r->precision, "%s=%s; ", vars[i], v ? v : "(unset)");
    }
#ifdef __FAST_MATH__
    append(r->precision, sizeof r->precision, "%s%s", "harness built with -ffast-math; ", "");
#else
    append(r->precision, sizeof r->precision, "%s%s", "no fast math in the harness; ", "");
#endif
    append(r->precision, sizeof r->precision, "%s%s",
           "f16/bf16 compute in f32 on the CPU backend; TF32 on CUDA only with EMBER_CUDA_TF32=1", "");
}

void bench_add_backend(bench_report *r, em_device *dev)
{
    const char *name = em_device_name(dev);
    for (int i = 0; i < r->n_backends; i++)
        if (!strcmp(r->backends[i].device, name)) return;
    if (r->n_backends >= BENCH_MAX_BACKENDS) return;
    bench_backend_info *b = &r->backends[r->n_backends++];
    memset(b, 0, sizeof *b);
    snprintf(b->device, sizeof b->device, "%s", name);
    em_device_props p = {.struct_size = sizeof p};
    if (em_device_properties(dev, &p) == EM_OK) {
        snprintf(b->backend, sizeof b->backend, "%s", p.backend);
        snprintf(b->name, sizeof b->name, "%s", p.name);
        snprintf(b->type, sizeof b->type, "%s", em_device_type_name(p.type));
        snprintf(b->description, sizeof b->description, "%s", p.description);
    }
    for (int i = 0; i < em_backend_count(); i++) {
        const em_backend *be = em_backend_get(i);
        if (be && !strcmp(em_backend_name(be), b->backend)) {
            snprintf(b->version, sizeof b->version, "%s", em_backend_version(be));
            snprintf(b->path, sizeof b->path, "%s", em_backend_path(be));
        }
    }
}
