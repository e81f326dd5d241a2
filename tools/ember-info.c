/*
 * ember-info — prints what Ember found on this machine: its version, the
 * plugin search folders, each plugin loaded or refused (with the reason),
 * every device with its properties, and the device EMBER_BACKEND selects.
 * Exit status: 0, or 1 when EMBER_BACKEND cannot be used (after printing
 * everything, so the listing explains why).
 * Not a benchmark and not a test: it runs no kernels.
 */
#define _GNU_SOURCE
#include "ember.h"
#include "internal.h" /* struct em_backend: the kernel count (no public API) */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_env(const char *name)
{
    const char *v = getenv(name);
    printf("  %-18s %s\n", name, v ? v : "(unset)");
}

static void print_memory(uint64_t bytes)
{
    if (bytes == 0) {
        printf("unknown");
        return;
    }
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    printf("%.1f %s (%" PRIu64 " bytes)", v, unit[u], bytes);
}

static int kernel_count(const em_backend *b)
{
    int n = 0;
    for (int op = 0; op < EM_OP_COUNT_HINT; op++)
        for (int dt = 0; dt < EM_DTYPE_COUNT; dt++) n += b->kernels[op][dt].fn != NULL;
    return n;
}

/* Prints the lines of the selection log that start with `prefix` (with the
 * prefix removed), or all lines when prefix is NULL. Returns how many. */
static int print_log_lines(const char *log, const char *prefix)
{
    int shown = 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    for (const char *line = log; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!prefix || (len >= plen && !strncmp(line, prefix, plen))) {
            printf("  %.*s\n", (int)(len - plen), line + plen);
            shown++;
        }
        line += len + (end ? 1 : 0);
    }
    return shown;
}

int main(void)
{
    em_status st = em_init();
    char init_error[4096];
    snprintf(init_error, sizeof init_error, "%s", st == EM_OK ? "" : em_last_error());

    printf("Ember %s (library), built against header %d.%d.%d, plugin ABI %d.%d\n", em_version(),
           EM_VERSION_MAJOR, EM_VERSION_MINOR, EM_VERSION_PATCH, EM_PLUGIN_ABI_MAJOR,
           EM_PLUGIN_ABI_MINOR);

    printf("\nEnvironment:\n");
    print_env("EMBER_BACKEND");
    print_env("EMBER_PLUGIN_PATH");
    print_env("EMBER_STRICT");
    print_env("EMBER_LOG");

    const char *log = em_backend_selection_log();
    printf("\nPlugin search folders (in order; the first file of a name wins):\n");
    if (!print_log_lines(log, "search folder ")) printf("  (none)\n");

    int nb = em_backend_count();
    printf("\nPlugins loaded (%d):\n", nb);
    for (int i = 0; i < nb; i++) {
        const em_backend *b = em_backend_get(i);
        printf("  %-8s version %-10s %4d kernels, %d device%s\n           %s\n", em_backend_name(b),
               em_backend_version(b), kernel_count(b), b->device_count,
               b->device_count == 1 ? "" : "s", em_backend_path(b));
    }
    if (nb == 0) printf("  (none)\n");

    int nr = em_plugin_rejected_count();
    printf("\nPlugins refused (%d):\n", nr);
    for (int i = 0; i < nr; i++) printf("  %s\n", em_plugin_rejected(i));
    if (nr == 0) printf("  (none)\n");

    em_device *dflt = st == EM_OK ? em_device_default() : NULL;
    int nd = em_device_count();
    printf("\nDevices (%d):\n", nd);
    for (int i = 0; i < nd; i++) {
        em_device *d = em_device_get(i);
        em_device_props p;
        memset(&p, 0, sizeof p);
        p.struct_size = sizeof p;
        if (em_device_properties(d, &p) != EM_OK) {
            printf("  %s: %s\n", em_device_name(d), em_last_error());
            continue;
        }
        printf("  %s%s\n", em_device_name(d), d == dflt ? "  [default]" : "");
        printf("    name:        %s\n", p.name);
        printf("    type:        %s%s\n", em_device_type_name(p.type),
               p.type == EM_DEVICE_SOFTWARE ? " (used only when named in EMBER_BACKEND)" : "");
        printf("    backend:     %s, device %d\n", p.backend, p.index);
        printf("    memory:      ");
        print_memory(p.memory_bytes);
        printf("\n    dtypes:     ");
        for (int dt = 0; dt < EM_DTYPE_COUNT; dt++)
            if (p.dtype_mask & (1u << dt)) printf(" %s", em_dtype_name((em_dtype)dt));
        if (!p.dtype_mask) printf(" (none reported)");
        printf("\n    description: %s\n", p.description[0] ? p.description : "(none)");
    }
    if (nd == 0) printf("  (none)\n");

    printf("\nLoader decisions:\n");
    if (!print_log_lines(log, NULL)) printf("  (none)\n");

    const char *env = getenv("EMBER_BACKEND");
    printf("\nEMBER_BACKEND=%s gives: ", env && *env ? env : "(unset)");
    if (st == EM_OK && dflt) {
        em_device_props p;
        memset(&p, 0, sizeof p);
        p.struct_size = sizeof p;
        em_device_properties(dflt, &p);
        printf("%s (%s, %s)\n", em_device_name(dflt), em_device_type_name(p.type), p.name);
    } else {
        printf("no device: %s\n%s\n", em_status_str(st), init_error);
    }
    em_shutdown();
    return st == EM_OK ? 0 : 1;
}
