/*
 * example_internal.h — what the two source files of the example plugin
 * share: the device and buffer structs, the host services, and the kernel
 * functions that example_plugin.c lists in its registry.
 *
 * Not installed and not part of any API: nothing here is visible outside
 * libember-example.so (the plugin is built with hidden visibility; the
 * only exported symbol is em_plugin_init).
 *
 * If you copy this plugin to start your own backend, rename "example"
 * everywhere (file names, the EXAMPLE_ prefix, the table's name) and keep
 * the structure: one file for the plugin's face (table, devices, buffers),
 * one or more for kernels.
 */
#ifndef EMBER_EXAMPLE_INTERNAL_H
#define EMBER_EXAMPLE_INTERNAL_H

/* ember_plugin.h is the whole contract between Ember's core and a plugin;
 * ember_plugin_util.h adds optional header-only helpers on top of it.
 * Neither needs libember at link time. */
#include <ember_plugin.h>
#include <ember_plugin_util.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The name of the backend: the file must be called libember-example.so and
 * the table's name must be this string, or the core refuses the plugin. */
#define EXAMPLE_NAME "example"
#define EXAMPLE_VERSION "0.1.0"

/* The host services (error reporting, logging, getenv) handed over by the
 * core in em_plugin_init; defined in example_plugin.c. */
extern em_plugin_host example_host;

/* ---------------------------------------------------------------------- */
/* Devices and buffers                                                     */
/* ---------------------------------------------------------------------- */

/* A buffer handle. The core only ever stores and passes back this pointer:
 * it never reads `data` (nor could it: for a real accelerator `data` would
 * be a device address the CPU cannot dereference). Here the memory happens
 * to be host memory from malloc, which makes the example runnable anywhere.
 * A real backend would keep its own handle (a VkBuffer, a CUdeviceptr, a
 * driver object) in this struct instead. */
typedef struct example_buffer {
    uint32_t magic;                  /* EXAMPLE_BUFFER_MAGIC while alive       */
    struct example_device *device;   /* the device it was allocated on         */
    size_t bytes;                    /* the size the core asked for            */
    unsigned char *data;             /* the memory (separately allocated)      */
    struct example_buffer *prev, *next; /* the device's list of live buffers   */
} example_buffer;

#define EXAMPLE_BUFFER_MAGIC 0x45584246u /* "EXBF" */

/* A device context: what device_open returns and every call receives as
 * `void *dev`. */
typedef struct example_device {
    int index;                       /* 0 .. device_count()-1                  */
    pthread_mutex_t lock;            /* guards the list and the byte count:    */
                                     /* buffer_free may come from any thread   */
    example_buffer *buffers;         /* live buffers, freed by device_close    */
    size_t used_bytes;               /* sum of live buffers' sizes             */
    size_t capacity_bytes;           /* this "device's" memory                 */
} example_device;

/* The memory of a buffer named by a descriptor, as elements of type T:
 * EXAMPLE_DATA(float, desc)[i] is element i counted from the buffer's
 * start (add desc->offset and the strides yourself). */
#define EXAMPLE_DATA(T, desc) ((T *)((example_buffer *)(desc)->buffer)->data)

/* Checks that every operand's buffer is one of ours and that the elements
 * the descriptor can reach lie inside it. EM_OK or EM_ERR_INVALID_ARG. */
em_status example_check_buffers(const em_op_call *call);

/* ---------------------------------------------------------------------- */
/* Kernels (example_kernels.c)                                             */
/*                                                                          */
/* Each has the em_kernel_fn signature: (device context, the call). The    */
/* core has already checked shapes, broadcast inputs to the output's shape */
/* and promoted dtypes; see the op list in ember_plugin.h for what each op */
/* receives.                                                               */
/* ---------------------------------------------------------------------- */

em_status example_k_fill(void *dev, const em_op_call *call);    /* EM_OP_FILL, every dtype */
em_status example_k_copy(void *dev, const em_op_call *call);    /* EM_OP_COPY, every dtype */
em_status example_k_binary(void *dev, const em_op_call *call);  /* ADD SUB MUL DIV, f32    */
em_status example_k_relu(void *dev, const em_op_call *call);    /* EM_OP_RELU, f32         */
em_status example_k_sum(void *dev, const em_op_call *call);     /* EM_OP_SUM, f32          */
em_status example_k_matmul(void *dev, const em_op_call *call);  /* EM_OP_MATMUL, f32       */
em_status example_k_linear(void *dev, const em_op_call *call);  /* EM_OP_LINEAR, f32       */

#endif /* EMBER_EXAMPLE_INTERNAL_H */
