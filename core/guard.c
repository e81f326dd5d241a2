/*
 * guard.c — guard regions around every allocation (EMBER_GUARD=1), a checking
 * mode for plugin writers and ember-conformance.
 *
 * With the mode on, em__alloc asks the backend for EM_GUARD_BYTES more on each
 * side of a tensor's data, places the tensor after the first guard (a non-zero
 * offset, which every kernel must honour anyway) and fills both guards with a
 * pattern. After each kernel, em__run_op calls em__guard_check on its outputs:
 * a changed guard byte fails the op with EM_ERR_BACKEND naming the kernel, how
 * many bytes changed and on which side, and the guard is restored so the next
 * op is judged on its own. The registry of guarded buffers is a list under a
 * mutex: the mode is for checking, not for speed.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_PATTERN 0xA5

typedef struct guard_entry {
    em_device *dev;
    void *buffer;
    size_t data_bytes;          /* between the two guards */
    struct guard_entry *next;
} guard_entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static guard_entry *g_list;

static em_status fill(em_device *dev, void *buffer, size_t offset)
{
    unsigned char pat[EM_GUARD_BYTES];
    memset(pat, GUARD_PATTERN, sizeof pat);
    em__device_lock(&dev->lock);
    em_status st = dev->backend->table.buffer_upload(dev->ctx, buffer, offset, pat, sizeof pat);
    em__device_unlock(&dev->lock);
    return st;
}

em_status em__guard_register(em_device *dev, void *buffer, size_t data_bytes)
{
    guard_entry *e = malloc(sizeof *e);
    if (!e) return em__fail(EM_ERR_OUT_OF_MEMORY, "out of host memory for a guard record");
    em_status st = fill(dev, buffer, 0);
    if (st == EM_OK) st = fill(dev, buffer, EM_GUARD_BYTES + data_bytes);
    if (st != EM_OK) {
        free(e);
        em__error_prefix("filling the guard regions (EMBER_GUARD=1) on %s: ", dev->name);
        return em_last_status() ? em_last_status() : st;
    }
    *e = (guard_entry){dev, buffer, data_bytes, NULL};
    pthread_mutex_lock(&g_lock);
    e->next = g_list;
    g_list = e;
    pthread_mutex_unlock(&g_lock);
    return EM_OK;
}

void em__guard_forget(em_device *dev, void *buffer)
{
    pthread_mutex_lock(&g_lock);
    for (guard_entry **p = &g_list; *p; p = &(*p)->next) {
        if ((*p)->dev == dev && (*p)->buffer == buffer) {
            guard_entry *e = *p;
            *p = e->next;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
}

/* Bytes of [offset, offset + EM_GUARD_BYTES) that lost the pattern; -1 when the
 * download fails. Restores the pattern when any changed. */
static long changed_bytes(em_device *dev, void *buffer, size_t offset)
{
    unsigned char got[EM_GUARD_BYTES];
    em__device_lock(&dev->lock);
    em_status st = dev->backend->table.buffer_download(dev->ctx, buffer, offset, got, sizeof got);
    em__device_unlock(&dev->lock);
    if (st != EM_OK) return -1;
    long n = 0;
    for (size_t i = 0; i < sizeof got; i++) n += got[i] != GUARD_PATTERN;
    if (n > 0) fill(dev, buffer, offset);
    return n;
}

em_status em__guard_check(em_device *dev, void *buffer, const char *op_name)
{
    size_t data_bytes = 0;
    bool found = false;
    pthread_mutex_lock(&g_lock);
    for (guard_entry *e = g_list; e; e = e->next) {
        if (e->dev == dev && e->buffer == buffer) {
            data_bytes = e->data_bytes;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (!found) return EM_OK;
    long before = changed_bytes(dev, buffer, 0);
    long after = changed_bytes(dev, buffer, EM_GUARD_BYTES + data_bytes);
    if (before < 0 || after < 0)
        return em__fail(EM_ERR_BACKEND, "EMBER_GUARD: reading the guard regions after the %s kernel "
                        "of backend '%s' failed", op_name, dev->backend->name);
    if (before == 0 && after == 0) return EM_OK;
    return em__fail(EM_ERR_BACKEND,
                    "EMBER_GUARD: the %s kernel of backend '%s' wrote outside its output: %ld of "
                    "the %d guard bytes before the data and %ld of the %d after it changed",
                    op_name, dev->backend->name, before, EM_GUARD_BYTES, after, EM_GUARD_BYTES);
}
