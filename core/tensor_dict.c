/*
 * tensor_dict.c — em_tensor_dict: an ordered list of (name, tensor) pairs
 * plus string metadata. State dicts of modules and optimizers and the
 * contents of checkpoint files travel in it.
 *
 * Lookup is a linear scan: dictionaries hold hundreds of entries at most,
 * and insertion order must be kept anyway.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct dict_entry {
    char *name;
    em_tensor *tensor; /* strong */
} dict_entry;

typedef struct meta_entry {
    char *key, *value;
} meta_entry;

struct em_tensor_dict {
    dict_entry *items;
    int count, cap;
    meta_entry *meta;
    int meta_count, meta_cap;
};

em_tensor_dict *em_tensor_dict_create(void)
{
    em_tensor_dict *d = calloc(1, sizeof *d);
    if (!d) em__fail(EM_ERR_OUT_OF_MEMORY, "em_tensor_dict_create: out of host memory");
    return d;
}

void em_tensor_dict_destroy(em_tensor_dict *d)
{
    if (!d) return;
    for (int i = 0; i < d->count; i++) {
        free(d->items[i].name);
        em_tensor_release(d->items[i].tensor);
    }
    for (int i = 0; i < d->meta_count; i++) {
        free(d->meta[i].key);
        free(d->meta[i].value);
    }
    free(d->items);
    free(d->meta);
    free(d);
}

static int find(const em_tensor_dict *d, const char *name)
{
    for (int i = 0; i < d->count; i++)
        if (!strcmp(d->items[i].name, name)) return i;
    return -1;
}

em_status em_tensor_dict_set(em_tensor_dict *d, const char *name, em_tensor *t)
{
    static const char *fn = "em_tensor_dict_set";
    if (!d) return em__fail(EM_ERR_NULL_ARG, "%s: d is NULL", fn);
    if (!name || !name[0]) return em__fail(EM_ERR_INVALID_ARG, "%s: the name must be a non-empty string", fn);
    if (!t) return em__null_arg(fn, "t");
    int i = find(d, name);
    if (i >= 0) {
        em_tensor *old = d->items[i].tensor;
        d->items[i].tensor = em_tensor_retain(t);
        em_tensor_release(old);
        return EM_OK;
    }
    if (d->count == d->cap) {
        int cap = d->cap ? d->cap * 2 : 16;
        dict_entry *items = realloc(d->items, (size_t)cap * sizeof *items);
        if (!items) return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
        d->items = items;
        d->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    d->items[d->count++] = (dict_entry){copy, em_tensor_retain(t)};
    return EM_OK;
}

em_tensor *em_tensor_dict_get(const em_tensor_dict *d, const char *name)
{
    static const char *fn = "em_tensor_dict_get";
    if (!d || !name) {
        em__fail(EM_ERR_NULL_ARG, "%s: %s is NULL", fn, d ? "name" : "d");
        return NULL;
    }
    int i = find(d, name);
    if (i < 0) {
        em__fail(EM_ERR_INVALID_ARG, "%s: no entry named '%s' (%d entries)", fn, name, d->count);
        return NULL;
    }
    return em__own(em_tensor_retain(d->items[i].tensor));
}

bool em_tensor_dict_has(const em_tensor_dict *d, const char *name)
{
    return d && name && find(d, name) >= 0;
}

int em_tensor_dict_count(const em_tensor_dict *d) { return d ? d->count : -1; }

const char *em_tensor_dict_name(const em_tensor_dict *d, int i)
{
    return d && i >= 0 && i < d->count ? d->items[i].name : NULL;
}

em_tensor *em_tensor_dict_at(const em_tensor_dict *d, int i)
{
    if (!d || i < 0 || i >= d->count) {
        em__fail(EM_ERR_INDEX, "em_tensor_dict_at: index %d out of range (%d entries)", i,
                 d ? d->count : 0);
        return NULL;
    }
    return em__own(em_tensor_retain(d->items[i].tensor));
}

em_status em_tensor_dict_set_meta(em_tensor_dict *d, const char *key, const char *value)
{
    static const char *fn = "em_tensor_dict_set_meta";
    if (!d || !key || !value)
        return em__fail(EM_ERR_NULL_ARG, "%s: %s is NULL", fn, !d ? "d" : !key ? "key" : "value");
    char *v = strdup(value);
    if (!v) return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    for (int i = 0; i < d->meta_count; i++) {
        if (!strcmp(d->meta[i].key, key)) {
            free(d->meta[i].value);
            d->meta[i].value = v;
            return EM_OK;
        }
    }
    if (d->meta_count == d->meta_cap) {
        int cap = d->meta_cap ? d->meta_cap * 2 : 8;
        meta_entry *m = realloc(d->meta, (size_t)cap * sizeof *m);
        if (!m) {
            free(v);
            return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
        }
        d->meta = m;
        d->meta_cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    }
    d->meta[d->meta_count++] = (meta_entry){k, v};
    return EM_OK;
}

const char *em_tensor_dict_get_meta(const em_tensor_dict *d, const char *key)
{
    if (!d || !key) return NULL;
    for (int i = 0; i < d->meta_count; i++)
        if (!strcmp(d->meta[i].key, key)) return d->meta[i].value;
    return NULL;
}

int em_tensor_dict_meta_count(const em_tensor_dict *d) { return d ? d->meta_count : -1; }

const char *em_tensor_dict_meta_key(const em_tensor_dict *d, int i)
{
    return d && i >= 0 && i < d->meta_count ? d->meta[i].key : NULL;
}
