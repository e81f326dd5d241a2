/*
 * test_vulkan.h — what test_vulkan.c (props, ops, validation scenarios and the
 * harness) shares with test_vulkan_more.c (the op coverage beyond the first
 * kernels): the pass/fail counters and EXPECT, the devices, random inputs and
 * the Vulkan-vs-CPU comparison.
 */
#ifndef EMBER_TEST_VULKAN_H
#define EMBER_TEST_VULKAN_H

#include "ember.h"

#include <stdint.h>
#include <stdio.h>

extern int g_fail, g_pass;
#define EXPECT(c, ...)                                                                   \
    do {                                                                                 \
        if (c) g_pass++;                                                                 \
        else {                                                                           \
            g_fail++;                                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                  \
            printf(__VA_ARGS__);                                                         \
            printf(" [%s]\n", em_last_error());                                          \
        }                                                                                \
    } while (0)

extern em_device *g_vk, *g_cpu;
/* CPU fallbacks caused by reading results back (em_tensor_read_f64 casts to
 * f64, which a device without f64 kernels runs on the CPU). */
extern uint64_t g_read_fallbacks;

double urand(void); /* uniform [0, 1), deterministic */
/* f32 tensor of uniform values in [lo, hi) on dev. */
em_tensor *rand_t(int ndim, const int64_t *shape, double lo, double hi, em_device *dev);
/* Compares the Vulkan result v with the CPU result c: |v - c| <= atol + rtol*|c|,
 * NaN must match NaN; prints the max errors. */
void compare(const char *what, em_tensor *v, em_tensor *c, double atol, double rtol);

void test_more(void);       /* test_vulkan_more.c */

#endif
