/*
 * test_loader_fallback.c — ops on a device whose plugin lacks kernels: the
 * per-op CPU fallback, em_fallback_count, its one-time warning, and
 * EMBER_STRICT=1 turning the fallback into an error. Uses the fake plugin
 * (FILL and COPY f32 only) as the default device. Also checks that the core
 * reads no table slot past an older plugin's struct_size (the soft plugin's
 * supports() would decline everything and its shutdown() exits with 99).
 * One scenario per process (argv[1]).
 */
#include "loader_test.h"

#define GOOD LT_GOOD_DIR
#define SOFT LT_SOFT_DIR

static em_tensor *on_default(const float *v, int64_t n)
{
    em_tensor *t = em_tensor_from_floats(v, 1, (const int64_t[]){n});
    CHECK(t != NULL, "em_tensor_from_floats");
    return t;
}

static void fallback(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    em_device *fake = em_device_default();
    CHECK(!strcmp(lt_name(fake), "fake:0"), "default %s", lt_name(fake));
    CHECK(em_device_cpu() != NULL, "no CPU device");

    em_tensor *a = on_default((const float[]){1, 2, 3}, 3);
    em_tensor *b = on_default((const float[]){10, 20, 30}, 3);
    CHECK(a && em_tensor_device(a) == fake, "a is not on fake:0");
    uint64_t n0 = em_fallback_count();
    /* FILL is a fake kernel: no fallback */
    em_tensor *z = em_full(7.0, EM_F32, EM_SHAPE(3), NULL);
    CHECK(z && em_fallback_count() == n0, "em_full fell back (%llu -> %llu)",
          (unsigned long long)n0, (unsigned long long)em_fallback_count());
    float zv[3] = {0};
    CHECK(z && em_tensor_read(z, zv, sizeof zv) == EM_OK && zv[0] == 7 && zv[2] == 7, "em_full values");

    lt_capture_begin();
    em_tensor *c = em_add(a, b);
    uint64_t n1 = em_fallback_count();
    em_tensor *c2 = em_add(a, b);
    uint64_t n2 = em_fallback_count();
    char *out = lt_capture_end();

    CHECK(c && c2, "em_add on fake tensors failed");
    CHECK(n1 > n0 && n2 > n1, "em_fallback_count did not grow: %llu %llu %llu",
          (unsigned long long)n0, (unsigned long long)n1, (unsigned long long)n2);
    CHECK(c && em_tensor_device(c) == fake, "the result is not on fake:0");
    float cv[3] = {0};
    CHECK(c && em_tensor_read(c, cv, sizeof cv) == EM_OK, "read");
    CHECK(cv[0] == 11 && cv[1] == 22 && cv[2] == 33, "values %g %g %g", cv[0], cv[1], cv[2]);
    CONTAINS(out, "[ember] warn: op 20 ran on the CPU backend: fake has no kernel");
    CHECK(lt_count(out, "op 20 ran on the CPU backend") == 1, "the warning was printed %d times",
          lt_count(out, "op 20 ran on the CPU backend"));
    free(out);

    /* moving to the CPU and back goes through the plugin's buffer calls */
    em_tensor *h = em_tensor_to(c, em_device_cpu());
    CHECK(h && em_tensor_device(h) == em_device_cpu(), "em_tensor_to cpu");
    float hv[3] = {0};
    CHECK(h && em_tensor_read(h, hv, sizeof hv) == EM_OK && hv[1] == 22, "values on cpu");
    em_tensor *back = em_tensor_to(h, fake);
    CHECK(back && em_tensor_device(back) == fake, "em_tensor_to fake");

    em_tensor *all[] = {a, b, z, c, c2, h, back};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) em_tensor_release(all[i]);
}

static void strict(void)
{
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_STRICT", "1", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    em_tensor *a = on_default((const float[]){1, 2}, 2);
    em_tensor *b = on_default((const float[]){3, 4}, 2);
    uint64_t n0 = em_fallback_count();
    em_tensor *c = em_add(a, b);
    CHECK(c == NULL, "em_add ran although EMBER_STRICT=1");
    CHECK(em_last_status() == EM_ERR_UNSUPPORTED, "status %d", em_last_status());
    CONTAINS(em_last_error(), "EMBER_STRICT=1");
    CONTAINS(em_last_error(), "fake");
    CHECK(em_fallback_count() == n0, "fallback counted in strict mode");
    em_clear_error();
    /* ops the plugin has still run */
    em_tensor *z = em_zeros(EM_F32, EM_SHAPE(2), NULL);
    CHECK(z != NULL, "em_zeros in strict mode");
    em_tensor_release(z);
    em_tensor_release(c);
    em_tensor_release(a);
    em_tensor_release(b);
}

static void strict_other_value(void)
{
    /* only "1" means strict */
    lt_env("EMBER_PLUGIN_PATH", GOOD, "EMBER_STRICT", "0", NULL);
    em_tensor *a = on_default((const float[]){1, 2}, 2);
    em_tensor *c = em_add(a, a);
    CHECK(c != NULL, "em_add with EMBER_STRICT=0");
    em_tensor_release(c);
    em_tensor_release(a);
}

static void soft_tail(void)
{
    lt_env("EMBER_PLUGIN_PATH", SOFT, "EMBER_BACKEND", "soft", NULL);
    CHECK(em_init() == EM_OK, "em_init: %s", em_last_error());
    CHECK(!strcmp(lt_name(em_device_default()), "soft:0"), "default %s",
          lt_name(em_device_default()));
    uint64_t n0 = em_fallback_count();
    em_tensor *z = em_full(2.5, EM_F32, EM_SHAPE(4), NULL);
    CHECK(z != NULL, "em_full on soft:0");
    CHECK(em_fallback_count() == n0, "the core consulted supports() past struct_size");
    float v[4] = {0};
    CHECK(z && em_tensor_read(z, v, sizeof v) == EM_OK && v[0] == 2.5f && v[3] == 2.5f, "values");
    em_tensor_release(z);
    /* em_shutdown (in lt_main) must not call the soft plugin's shutdown */
}

static const lt_scenario scenarios[] = {
    {"fallback", fallback},
    {"strict", strict},
    {"strict_other_value", strict_other_value},
    {"soft_tail", soft_tail},
};

int main(int argc, char **argv)
{
    return lt_main(argc, argv, scenarios, sizeof scenarios / sizeof scenarios[0]);
}
