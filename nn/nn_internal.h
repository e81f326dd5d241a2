/*
 * nn_internal.h — helpers shared by the nn/ files (not API): the core's
 * error functions (internal.h) plus small formatting utilities.
 */
#ifndef EMBER_NN_INTERNAL_H
#define EMBER_NN_INTERNAL_H

#include "internal.h"

/* "f32[2,3]" (dtype and shape, no device) into buf; returns buf. */
EM_INTERNAL const char *em__nn_describe(const em_tensor *t, char *buf, size_t cap);
/* em_tensor_dict_set_meta with a printf-formatted value (up to 63 chars). */
EM_INTERNAL em_status em__nn_set_meta_f(em_tensor_dict *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* EMBER_NN_INTERNAL_H */
