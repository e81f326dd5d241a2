/*
 * test_api.c — the library-level API that the op tests do not reach:
 * version (compile time vs run time), backends and devices as seen after
 * em_init (names, properties, dtype masks, find by spec, synchronize),
 * em_fallback_count, em_tensor_format / em_tensor_print, em_shutdown and
 * re-initialisation.
 * Not for plugin loading and EMBER_BACKEND selection (tests/loader/).
 */
#include "test_util.h"

static void test_version(void)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", EM_VERSION_MAJOR, EM_VERSION_MINOR, EM_VERSION_PATCH);
    CHECKF(em_version() && strcmp(em_version(), want) == 0, "em_version() = %s, header %s", em_version(), want);
    CHECK(em_version_number() == EM_VERSION_NUMBER);
    CHECK(EM_VERSION_NUMBER == EM_VERSION_MAJOR * 10000 + EM_VERSION_MINOR * 100 + EM_VERSION_PATCH);
}

static void test_devices(void)
{
    CHECK_OK(em_init()); /* idempotent */
    int nb = em_backend_count();
    CHECKF(nb >= 1, "em_backend_count() = %d", nb);
    int has_cpu = 0;
    for (int i = 0; i < nb; i++) {
        const em_backend *b = em_backend_get(i);
        CHECK_NONNULL(b);
        if (!b) continue;
        const char *name = em_backend_name(b), *path = em_backend_path(b), *ver = em_backend_version(b);
        CHECK(name && *name && path && *path && ver);
        printf("backend %d: %s %s from %s\n", i, name ? name : "?", ver ? ver : "?", path ? path : "?");
        if (name && strcmp(name, "cpu") == 0) has_cpu = 1;
    }
    CHECK(has_cpu);
    CHECK(em_backend_get(nb) == NULL);
    CHECK(em_backend_get(-1) == NULL);
    em_clear_error();
    int nr = em_plugin_rejected_count();
    CHECK(nr >= 0);
    for (int i = 0; i < nr; i++) CHECK(em_plugin_rejected(i) != NULL);
    CHECK(em_plugin_rejected(nr) == NULL);
    CHECK(em_plugin_rejected(-1) == NULL);
    const char *log = em_backend_selection_log();
    CHECK(log != NULL);
    printf("selection log: %s\n", log ? log : "(null)");

    int nd = em_device_count();
    CHECKF(nd >= 1, "em_device_count() = %d", nd);
    em_device *cpu = em_device_cpu();
    CHECK_NONNULL(cpu);
    CHECK(em_device_get(0) == cpu); /* CPU first */
    CHECK(em_device_get(nd) == NULL);
    em_clear_error();
    int found_default = 0;
    for (int i = 0; i < nd; i++) {
        em_device *d = em_device_get(i);
        CHECK_NONNULL(d);
        if (!d) continue;
        if (d == em_device_default()) found_default = 1;
        em_device_props p;
        memset(&p, 0, sizeof p);
        p.struct_size = sizeof p;
        CHECK_OK(em_device_properties(d, &p));
        const char *dn = em_device_name(d);
        CHECK(dn && strchr(dn, ':'));
        printf("device %d: %s (%s, %s) backend %s index %d mem %" PRIu64 " dtypes 0x%x: %s\n", i,
               dn ? dn : "?", p.name, em_device_type_name(p.type), p.backend, p.index, p.memory_bytes,
               p.dtype_mask, p.description);
        CHECK(p.name[0] != '\0');
        CHECK(p.backend[0] != '\0');
        CHECK(p.index >= 0);
        CHECK(p.dtype_mask & (1u << EM_F32));
        CHECK((p.dtype_mask >> EM_DTYPE_COUNT) == 0);
        CHECK_OK(em_device_synchronize(d));
        /* find by its own name */
        if (dn) CHECK(em_device_find(dn) == d);
        em_clear_error();
    }
    CHECK(found_default);
    em_device_props p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    CHECK_OK(em_device_properties(cpu, &p));
    CHECK(p.type == EM_DEVICE_CPU);
    CHECK(strcmp(p.backend, "cpu") == 0);
    CHECK(p.dtype_mask == (1u << EM_DTYPE_COUNT) - 1); /* the CPU runs every dtype */
    /* a struct_size that is too small for the first fields is refused;
     * fields beyond struct_size are left untouched */
    em_device_props small;
    memset(&small, 0x5A, sizeof small);
    small.struct_size = 1;
    em_clear_error();
    CHECK_STATUS(em_device_properties(cpu, &small), EM_ERR_INVALID_ARG);
    CHECK(em_device_find("cpu") == cpu);
    CHECK(em_device_find("cpu:0") == cpu);
    em_clear_error();
    em_device *none = em_device_find("no-such-backend");
    CHECK(none == NULL);
    CHECK(em_last_status() == EM_ERR_PLUGIN || em_last_status() == EM_ERR_DEVICE);
    em_clear_error();
    CHECK(em_device_find("cpu:7") == NULL);
    CHECK(em_last_status() == EM_ERR_PLUGIN || em_last_status() == EM_ERR_DEVICE);
    em_clear_error();
    CHECK(strcmp(em_device_type_name(EM_DEVICE_CPU), "cpu") == 0);
    CHECK(strcmp(em_device_type_name(EM_DEVICE_GPU), "gpu") == 0);
    CHECK(strcmp(em_device_type_name(EM_DEVICE_INTEGRATED_GPU), "integrated-gpu") == 0);
    CHECK(strcmp(em_device_type_name(EM_DEVICE_SOFTWARE), "software") == 0);
    CHECK(strcmp(em_device_type_name(EM_DEVICE_OTHER), "other") == 0);
    /* tensors created with device NULL live on the default device; explicit
     * CPU tensors on the CPU */
    em_tensor *t = em_zeros(EM_F32, EM_SHAPE(2), NULL), *c = em_zeros(EM_F32, EM_SHAPE(2), cpu);
    CHECK(t && em_tensor_device(t) == em_device_default());
    CHECK(c && em_tensor_device(c) == cpu);
    em_tensor_release(t);
    em_tensor_release(c);
}

static void test_fallback_count(void)
{
    uint64_t before = em_fallback_count();
    em_tensor *a = em_ones(EM_F32, EM_SHAPE(4), NULL);
    em_tensor *b = em_exp(a);
    uint64_t after = em_fallback_count();
    CHECK(after >= before);
    if (em_device_default() == em_device_cpu())
        CHECKF(after == before, "ops on the CPU device counted %" PRIu64 " fallbacks", after - before);
    em_tensor_release(b);
    em_tensor_release(a);
}

static void test_format(void)
{
    double v[4] = {1, 2, 3, 4};
    int64_t sh[2] = {2, 2};
    em_tensor *t = tu_make(v, EM_F32, 2, sh, TU_CONTIG);
    char buf[256];
    int n = em_tensor_format(t, buf, sizeof buf);
    printf("format: %s\n", buf);
    CHECK(n > 0 && (size_t)n == strlen(buf));
    CHECK(strstr(buf, "tensor(") == buf);
    CHECK(strstr(buf, "f32") != NULL);
    CHECK(strstr(buf, "1") && strstr(buf, "4"));
    /* truncation: returns the needed length, writes at most cap bytes */
    char small[8];
    memset(small, 'x', sizeof small);
    int n2 = em_tensor_format(t, small, 5);
    CHECK(n2 == n);
    CHECK(small[4] == '\0' && small[5] == 'x');
    CHECK(em_tensor_format(t, NULL, 0) == n);
    em_tensor_print(t); /* visible in the log */
    em_tensor *i = em_arange(0, 3, 1, EM_I64, NULL);
    em_tensor_format(i, buf, sizeof buf);
    printf("format: %s\n", buf);
    CHECK(strstr(buf, "i64") != NULL && strstr(buf, "2") != NULL);
    em_tensor_release(i);
    em_tensor *s = em_scalar(2.5);
    em_tensor_format(s, buf, sizeof buf);
    printf("format: %s\n", buf);
    CHECK(strstr(buf, "2.5") != NULL);
    em_tensor_release(s);
    em_tensor_release(t);
}

/* Every dtype, empty and large tensors format without overflowing and the
 * returned length is always strlen of the full rendering. */
static void test_format_all(void)
{
    static char big[1 << 17];
    for (int di = 0; di < 7; di++) {
        em_dtype d = tu_all_dtypes[di];
        static const int64_t shapes[][2] = {{2, 3}, {0, 3}, {100, 100}};
        for (int s = 0; s < 3; s++) {
            em_tensor *t = em_ones(d, 2, shapes[s], NULL);
            if (!t) { CHECKF(0, "ones %s", tu_dt(d)); em_clear_error(); continue; }
            int n = em_tensor_format(t, big, sizeof big);
            CHECKF(n > 0 && (size_t)n < sizeof big && (size_t)n == strlen(big),
                   "format %s [%" PRId64 ",%" PRId64 "]: returned %d, strlen %zu", tu_dt(d), shapes[s][0],
                   shapes[s][1], n, strlen(big));
            CHECKF(strstr(big, tu_dt(d)) != NULL, "format %s: dtype missing in \"%.80s\"", tu_dt(d), big);
            CHECK(em_tensor_format(t, NULL, 0) == n);
            char tiny[1] = {'x'};
            CHECK(em_tensor_format(t, tiny, 1) == n && tiny[0] == '\0');
            em_tensor_release(t);
        }
    }
}

static void test_shutdown_reinit(void)
{
    em_shutdown();
    em_shutdown(); /* safe when not initialised */
    CHECK_OK(em_init());
    em_device *d = em_device_default();
    CHECK_NONNULL(d);
    em_tensor *t = em_ones(EM_F64, EM_SHAPE(3), NULL);
    double v = 0;
    em_tensor *s = t ? em_sum(t, NULL, 0, false) : NULL;
    if (s) CHECK_OK(em_tensor_item(s, &v));
    CHECK(v == 3);
    em_tensor_release(s);
    em_tensor_release(t);
}

int main(void)
{
    tu_init("test_api");
    test_version();
    test_devices();
    test_fallback_count();
    test_format();
    test_format_all();
    test_shutdown_reinit();
    em_shutdown();
    return tu_finish();
}
