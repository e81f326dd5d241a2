/*
 * module.c — the module abstraction of api/ember_nn.h (torch.nn.Module):
 * named parameters, buffers and children; forward inside a scope; dotted
 * names, named_parameters and state dicts; load_state_dict with its checks;
 * train/eval; moving and converting a model; printing the module tree.
 *
 * Written against the public API only (plus em__fail/em__null_arg from
 * internal.h to record errors). Lists are small arrays searched linearly:
 * a module has a handful of entries and insertion order must be kept.
 */
#include "ember_nn.h"
#include "nn_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct named_tensor {
    char *name;
    em_tensor *t; /* strong */
} named_tensor;

typedef struct named_child {
    char *name;
    em_module *m; /* owned */
} named_child;

struct em_module {
    char *type;
    char *desc; /* extra_repr; NULL when none */
    em_module_forward_fn forward;
    void *user_data;
    void (*free_user_data)(void *);
    em_module *parent;
    bool training;
    named_tensor *params;
    int n_params, cap_params;
    named_tensor *buffers;
    int n_buffers, cap_buffers;
    named_child *children;
    int n_children, cap_children;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* A new reference to t that follows the ownership rule (handed to the
 * current scope, or to the caller). */
static em_tensor *own_ref(em_tensor *t) { return em__own(em_tensor_retain(t)); }

static bool same_shape(const em_tensor *a, const em_tensor *b)
{
    int64_t sa[EM_MAX_DIMS], sb[EM_MAX_DIMS];
    int na = em_tensor_shape(a, sa), nb = em_tensor_shape(b, sb);
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (sa[i] != sb[i]) return false;
    return true;
}

/* A growable string; `oom` remembers a failed allocation. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *s, const char *fmt, ...)
{
    if (s->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + (size_t)n + 1) cap *= 2;
        char *p = realloc(s->p, cap);
        if (!p) {
            s->oom = true;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

static int find_tensor(const named_tensor *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].name, name)) return i;
    return -1;
}

static int find_child(const em_module *m, const char *name)
{
    for (int i = 0; i < m->n_children; i++)
        if (!strcmp(m->children[i].name, name)) return i;
    return -1;
}

/* Grows an array of elem-size items to hold one more; false when out of memory. */
static bool grow(void **items, int *cap, int count, size_t elem)
{
    if (count < *cap) return true;
    int ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*items, (size_t)ncap * elem);
    if (!p) return false;
    *items = p;
    *cap = ncap;
    return true;
}

/* Checks a local name: non-empty, no '.'. */
static em_status check_name(const char *fn, const em_module *m, const char *name)
{
    if (!name) return em__fail(EM_ERR_NULL_ARG, "%s: argument 'name' is NULL", fn);
    if (!name[0])
        return em__fail(EM_ERR_INVALID_ARG, "%s(%s): the name must be a non-empty string", fn,
                        m->type);
    if (strchr(name, '.'))
        return em__fail(EM_ERR_INVALID_ARG,
                        "%s(%s): name '%s' contains '.' (dots separate the levels of qualified "
                        "names)",
                        fn, m->type, name);
    return EM_OK;
}

/* Is `name` taken in m by a list other than `except` (0 params, 1 buffers,
 * 2 children)? Returns the list's name or NULL. */
static const char *name_taken(const em_module *m, const char *name, int except)
{
    if (except != 0 && find_tensor(m->params, m->n_params, name) >= 0) return "parameter";
    if (except != 1 && find_tensor(m->buffers, m->n_buffers, name) >= 0) return "buffer";
    if (except != 2 && find_child(m, name) >= 0) return "child module";
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                  */
/* ------------------------------------------------------------------------ */

em_module *em_module_create(const char *type_name, em_module_forward_fn forward, void *user_data,
                            void (*free_user_data)(void *))
{
    if (!type_name) {
        em__null_arg("em_module_create", "type_name");
        return NULL;
    }
    if (!type_name[0]) {
        em__fail(EM_ERR_INVALID_ARG, "em_module_create: type_name must be a non-empty string");
        return NULL;
    }
    em_module *m = calloc(1, sizeof *m);
    char *type = strdup(type_name);
    if (!m || !type) {
        free(m);
        free(type);
        em__fail(EM_ERR_OUT_OF_MEMORY, "em_module_create(%s): out of host memory", type_name);
        return NULL;
    }
    m->type = type;
    m->forward = forward;
    m->user_data = user_data;
    m->free_user_data = free_user_data;
    m->training = true;
    return m;
}

void em_module_destroy(em_module *m)
{
    if (!m) return;
    if (m->parent) { /* its parent would keep a dangling pointer: refuse */
        em__fail(EM_ERR_STATE,
                 "em_module_destroy: the %s module is a child of a %s module; destroy the root "
                 "of the tree instead (nothing was freed)",
                 m->type, m->parent->type);
        return;
    }
    for (int i = 0; i < m->n_children; i++) {
        m->children[i].m->parent = NULL;
        em_module_destroy(m->children[i].m);
        free(m->children[i].name);
    }
    for (int i = 0; i < m->n_params; i++) {
        em_tensor_release(m->params[i].t);
        free(m->params[i].name);
    }
    for (int i = 0; i < m->n_buffers; i++) {
        em_tensor_release(m->buffers[i].t);
        free(m->buffers[i].name);
    }
    if (m->free_user_data) m->free_user_data(m->user_data);
    free(m->children);
    free(m->params);
    free(m->buffers);
    free(m->type);
    free(m->desc);
    free(m);
}

void *em_module_user_data(const em_module *m) { return m ? m->user_data : NULL; }

/* For layers.c (Sequential's fusion): which forward function m runs. */
EM_INTERNAL em_module_forward_fn em__module_forward_fn(const em_module *m);
em_module_forward_fn em__module_forward_fn(const em_module *m) { return m ? m->forward : NULL; }

const char *em_module_type_name(const em_module *m) { return m ? m->type : ""; }

em_module *em_module_parent(const em_module *m) { return m ? m->parent : NULL; }

em_status em_module_set_description(em_module *m, const char *text)
{
    static const char *fn = "em_module_set_description";
    if (!m) return em__null_arg(fn, "m");
    if (!text) return em__null_arg(fn, "text");
    char *d = strdup(text);
    if (!d) return em__fail(EM_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    free(m->desc);
    m->desc = d;
    return EM_OK;
}

/* ------------------------------------------------------------------------ */
/* Registration                                                              */
/* ------------------------------------------------------------------------ */

/* Stores t under name in one of the tensor lists, replacing in place. */
static em_status put_tensor(const char *fn, em_module *m, named_tensor **items, int *count,
                            int *cap, const char *name, em_tensor *t)
{
    int i = find_tensor(*items, *count, name);
    if (i >= 0) {
        em_tensor *old = (*items)[i].t;
        (*items)[i].t = em_tensor_retain(t);
        em_tensor_release(old);
        return EM_OK;
    }
    char *copy = strdup(name);
    if (!copy || !grow((void **)items, cap, *count, sizeof **items)) {
        free(copy);
        return em__fail(EM_ERR_OUT_OF_MEMORY, "%s(%s): out of host memory", fn, m->type);
    }
    (*items)[(*count)++] = (named_tensor){copy, em_tensor_retain(t)};
    return EM_OK;
}

em_status em_module_register_parameter(em_module *m, const char *name, em_tensor *t)
{
    static const char *fn = "em_module_register_parameter";
    if (!m) return em__null_arg(fn, "m");
    em_status st = check_name(fn, m, name);
    if (st != EM_OK) return st;
    if (!t) return em__null_arg(fn, "t");
    char d[96];
    if (!em_dtype_is_float(em_tensor_dtype(t)))
        return em__fail(EM_ERR_DTYPE,
                        "%s(%s): parameter '%s' must be floating point, got %s (use "
                        "em_module_register_buffer for integer state)",
                        fn, m->type, name, em__nn_describe(t, d, sizeof d));
    if (!em_is_leaf(t))
        return em__fail(EM_ERR_INVALID_ARG,
                        "%s(%s): parameter '%s' is the result of an op ('%s'), not a leaf; "
                        "register em_detach(t) instead",
                        fn, m->type, name, em_grad_fn_name(t));
    const char *taken = name_taken(m, name, 0);
    if (taken)
        return em__fail(EM_ERR_INVALID_ARG, "%s(%s): name '%s' is already used by a %s", fn,
                        m->type, name, taken);
    st = em_requires_grad_(t, true);
    if (st != EM_OK) return st;
    return put_tensor(fn, m, &m->params, &m->n_params, &m->cap_params, name, t);
}

em_status em_module_register_buffer(em_module *m, const char *name, em_tensor *t)
{
    static const char *fn = "em_module_register_buffer";
    if (!m) return em__null_arg(fn, "m");
    em_status st = check_name(fn, m, name);
    if (st != EM_OK) return st;
    if (!t) return em__null_arg(fn, "t");
    const char *taken = name_taken(m, name, 1);
    if (taken)
        return em__fail(EM_ERR_INVALID_ARG, "%s(%s): name '%s' is already used by a %s", fn,
                        m->type, name, taken);
    return put_tensor(fn, m, &m->buffers, &m->n_buffers, &m->cap_buffers, name, t);
}

em_status em_module_add_child(em_module *m, const char *name, em_module *child)
{
    static const char *fn = "em_module_add_child";
    if (!child) {
        /* the call that made the child failed (its error stays pending) */
        return em__null_arg(fn, "child");
    }
    if (child->parent)
        return em__fail(EM_ERR_INVALID_ARG,
                        "%s: the %s module already belongs to a %s (a module has one parent)", fn,
                        child->type, child->parent->type);
    for (const em_module *a = m; a; a = a->parent)
        if (a == child)
            return em__fail(EM_ERR_INVALID_ARG,
                            "%s: adding the %s module to itself or to one of its descendants "
                            "would make a cycle",
                            fn, child->type);
    em_status st;
    if (!m) {
        st = em__null_arg(fn, "m");
        goto fail;
    }
    st = check_name(fn, m, name);
    if (st != EM_OK) goto fail;
    const char *taken = name_taken(m, name, -1);
    if (taken) {
        st = em__fail(EM_ERR_INVALID_ARG, "%s(%s): name '%s' is already used by a %s", fn, m->type,
                      name, taken);
        goto fail;
    }
    char *copy = strdup(name);
    if (!copy ||
        !grow((void **)&m->children, &m->cap_children, m->n_children, sizeof *m->children)) {
        free(copy);
        st = em__fail(EM_ERR_OUT_OF_MEMORY, "%s(%s): out of host memory", fn, m->type);
        goto fail;
    }
    m->children[m->n_children++] = (named_child){copy, child};
    child->parent = m;
    return EM_OK;
fail:
    em_module_destroy(child);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                    */
/* ------------------------------------------------------------------------ */

/* The module that holds the last component of a dotted path, and that
 * component in *leaf. NULL (error recorded) when a child is missing. */
static const em_module *resolve(const char *fn, const em_module *m, const char *path,
                                const char **leaf)
{
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!dot) break;
        size_t len = (size_t)(dot - p);
        const em_module *next = NULL;
        for (int i = 0; i < m->n_children; i++)
            if (strlen(m->children[i].name) == len && !strncmp(m->children[i].name, p, len))
                next = m->children[i].m;
        if (!next) {
            em__fail(EM_ERR_INVALID_ARG, "%s(%s): no child module '%.*s' on the path '%s'", fn,
                     m->type, (int)len, p, path);
            return NULL;
        }
        m = next;
        p = dot + 1;
    }
    *leaf = p;
    return m;
}

static void list_names(sbuf *s, const named_tensor *v, int n)
{
    for (int i = 0; i < n; i++) sb_printf(s, "%s%s", i ? ", " : "", v[i].name);
    if (n == 0) sb_printf(s, "none");
}

static em_tensor *get_tensor(const char *fn, const char *kind, const em_module *m,
                             const char *name, bool params)
{
    if (!m) {
        em__null_arg(fn, "m");
        return NULL;
    }
    if (!name) {
        em__null_arg(fn, "name");
        return NULL;
    }
    const char *leaf;
    const em_module *h = resolve(fn, m, name, &leaf);
    if (!h) return NULL;
    const named_tensor *v = params ? h->params : h->buffers;
    int n = params ? h->n_params : h->n_buffers;
    int i = find_tensor(v, n, leaf);
    if (i < 0) {
        sbuf s = {0};
        list_names(&s, v, n);
        em__fail(EM_ERR_INVALID_ARG, "%s(%s): no %s named '%s' (%s's %ss: %s)", fn, m->type, kind,
                 name, h->type, kind, s.p ? s.p : "?");
        free(s.p);
        return NULL;
    }
    return own_ref(v[i].t);
}

em_tensor *em_module_get_parameter(const em_module *m, const char *name)
{
    return get_tensor("em_module_get_parameter", "parameter", m, name, true);
}

em_tensor *em_module_get_buffer(const em_module *m, const char *name)
{
    return get_tensor("em_module_get_buffer", "buffer", m, name, false);
}

em_module *em_module_get_child(const em_module *m, const char *name)
{
    static const char *fn = "em_module_get_child";
    if (!m) {
        em__null_arg(fn, "m");
        return NULL;
    }
    if (!name) {
        em__null_arg(fn, "name");
        return NULL;
    }
    const char *leaf;
    const em_module *h = resolve(fn, m, name, &leaf);
    if (!h) return NULL;
    int i = find_child(h, leaf);
    if (i < 0) {
        sbuf s = {0};
        for (int k = 0; k < h->n_children; k++)
            sb_printf(&s, "%s%s", k ? ", " : "", h->children[k].name);
        em__fail(EM_ERR_INVALID_ARG, "%s(%s): no child module named '%s' (%s's children: %s)", fn,
                 m->type, name, h->type, s.p ? s.p : "none");
        free(s.p);
        return NULL;
    }
    return h->children[i].m;
}

int em_module_child_count(const em_module *m) { return m ? m->n_children : -1; }

em_module *em_module_child_at(const em_module *m, int i)
{
    if (!m) {
        em__null_arg("em_module_child_at", "m");
        return NULL;
    }
    if (i < 0 || i >= m->n_children) {
        em__fail(EM_ERR_INDEX, "em_module_child_at(%s): index %d out of range (%d children)",
                 m->type, i, m->n_children);
        return NULL;
    }
    return m->children[i].m;
}

const char *em_module_child_name(const em_module *m, int i)
{
    return m && i >= 0 && i < m->n_children ? m->children[i].name : NULL;
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                   */
/* ------------------------------------------------------------------------ */

em_tensor *em_module_forward(em_module *m, const em_tensor *x)
{
    static const char *fn = "em_module_forward";
    if (!m) {
        em__null_arg(fn, "m");
        return NULL;
    }
    if (!x) {
        em__null_arg(fn, "x");
        return NULL;
    }
    if (!m->forward) {
        em__fail(EM_ERR_STATE, "%s(%s): the module has no forward function", fn, m->type);
        return NULL;
    }
    if (em_scope_begin() != EM_OK) return NULL;
    em_tensor *y = m->forward(m, x);
    if (y && !em_scope_keep(y)) {
        if (em_last_status() != EM_ERR_OUT_OF_MEMORY)
            em__fail(EM_ERR_STATE,
                     "%s(%s): the forward function returned a tensor that it did not make "
                     "(return the result of an op; for the input itself, em_cast(x, "
                     "em_tensor_dtype(x)))",
                     fn, m->type);
        y = NULL;
    } else if (!y) {
        char msg[1536];
        em_status st = em_last_status();
        if (st == EM_OK) {
            em__fail(EM_ERR_STATE, "%s(%s): the forward function returned NULL without an error",
                     fn, m->type);
        } else {
            snprintf(msg, sizeof msg, "%s", em_last_error());
            em__fail(st, "%s(%s): %s", fn, m->type, msg);
        }
    }
    em_scope_end();
    return y;
}

/* ------------------------------------------------------------------------ */
/* Walking the tree                                                          */
/* ------------------------------------------------------------------------ */

enum { WALK_PARAMS = 1, WALK_BUFFERS = 2 };

/* One tensor slot of the tree: its qualified name and where it is stored. */
typedef struct slot {
    char *name;
    em_tensor **t;
    bool is_param;
} slot;

typedef struct slot_list {
    slot *v;
    int n, cap;
} slot_list;

static void slots_free(slot_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static char *join(const char *prefix, const char *name)
{
    size_t a = strlen(prefix), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    if (a) {
        memcpy(s, prefix, a);
        s[a] = '.';
        memcpy(s + a + 1, name, b + 1);
    } else {
        memcpy(s, name, b + 1);
    }
    return s;
}

static bool push_slot(slot_list *l, const char *prefix, const char *name, em_tensor **t,
                      bool is_param)
{
    char *q = join(prefix, name);
    if (!q || !grow((void **)&l->v, &l->cap, l->n, sizeof *l->v)) {
        free(q);
        return false;
    }
    l->v[l->n++] = (slot){q, t, is_param};
    return true;
}

/* Appends m's slots in state-dict order (params, buffers, then children).
 * Returns false when out of memory. */
static bool walk(em_module *m, const char *prefix, unsigned kinds, slot_list *l)
{
    if (kinds & WALK_PARAMS)
        for (int i = 0; i < m->n_params; i++)
            if (!push_slot(l, prefix, m->params[i].name, &m->params[i].t, true)) return false;
    if (kinds & WALK_BUFFERS)
        for (int i = 0; i < m->n_buffers; i++)
            if (!push_slot(l, prefix, m->buffers[i].name, &m->buffers[i].t, false)) return false;
    for (int i = 0; i < m->n_children; i++) {
        char *q = join(prefix, m->children[i].name);
        if (!q) return false;
        bool ok = walk(m->children[i].m, q, kinds, l);
        free(q);
        if (!ok) return false;
    }
    return true;
}

static em_status collect(const char *fn, const em_module *m, unsigned kinds, slot_list *l)
{
    *l = (slot_list){0};
    if (!walk((em_module *)m, "", kinds, l)) {
        slots_free(l);
        return em__fail(EM_ERR_OUT_OF_MEMORY, "%s(%s): out of host memory", fn, m->type);
    }
    return EM_OK;
}

/* True when slot i holds a tensor already seen in slots [0, i). */
static bool seen_before(const slot_list *l, int i)
{
    for (int j = 0; j < i; j++)
        if (*l->v[j].t == *l->v[i].t) return true;
    return false;
}

static em_tensor_dict *named(const char *fn, const em_module *m, unsigned kinds)
{
    if (!m) {
        em__null_arg(fn, "m");
        return NULL;
    }
    slot_list l;
    if (collect(fn, m, kinds, &l) != EM_OK) return NULL;
    em_tensor_dict *d = em_tensor_dict_create();
    for (int i = 0; d && i < l.n; i++) {
        if (seen_before(&l, i)) continue;
        if (em_tensor_dict_set(d, l.v[i].name, *l.v[i].t) != EM_OK) {
            em_tensor_dict_destroy(d);
            d = NULL;
        }
    }
    slots_free(&l);
    return d;
}

em_tensor_dict *em_module_named_parameters(const em_module *m)
{
    return named("em_module_named_parameters", m, WALK_PARAMS);
}

em_tensor_dict *em_module_named_buffers(const em_module *m)
{
    return named("em_module_named_buffers", m, WALK_BUFFERS);
}

em_tensor_dict *em_module_state_dict(const em_module *m)
{
    static const char *fn = "em_module_state_dict";
    if (!m) {
        em__null_arg(fn, "m");
        return NULL;
    }
    slot_list l;
    if (collect(fn, m, WALK_PARAMS | WALK_BUFFERS, &l) != EM_OK) return NULL;
    em_tensor_dict *d = em_tensor_dict_create();
    if (d && em_scope_begin() == EM_OK) {
        for (int i = 0; i < l.n; i++) {
            em_tensor *v = em_detach(*l.v[i].t);
            if (!v || em_tensor_dict_set(d, l.v[i].name, v) != EM_OK) {
                em_tensor_dict_destroy(d);
                d = NULL;
                break;
            }
        }
        em_scope_end();
    } else {
        em_tensor_dict_destroy(d);
        d = NULL;
    }
    slots_free(&l);
    return d;
}

/* ------------------------------------------------------------------------ */
/* load_state_dict                                                           */
/* ------------------------------------------------------------------------ */

#define LIST_MAX 8 /* names listed per kind of problem before "... N more" */

em_status em_module_load_state_dict(em_module *m, const em_tensor_dict *d, bool strict)
{
    static const char *fn = "em_module_load_state_dict";
    if (!m) return em__null_arg(fn, "m");
    if (!d) return em__null_arg(fn, "d");
    slot_list l;
    em_status st = collect(fn, m, WALK_PARAMS | WALK_BUFFERS, &l);
    if (st != EM_OK) return st;
    st = em_scope_begin();
    if (st != EM_OK) {
        slots_free(&l);
        return st;
    }
    em_tensor **src = calloc((size_t)(l.n > 0 ? l.n : 1), sizeof *src);
    sbuf missing = {0}, unexpected = {0}, shapes = {0}, dtypes = {0};
    int n_missing = 0, n_unexpected = 0, n_shape = 0, n_dtype = 0;
    if (!src) {
        st = em__fail(EM_ERR_OUT_OF_MEMORY, "%s(%s): out of host memory", fn, m->type);
        goto done;
    }
    for (int i = 0; i < l.n; i++) {
        const char *name = l.v[i].name;
        if (!em_tensor_dict_has(d, name)) {
            if (strict && n_missing++ < LIST_MAX)
                sb_printf(&missing, "%s'%s'", n_missing > 1 ? ", " : "", name);
            continue;
        }
        src[i] = em_tensor_dict_get(d, name);
        if (!src[i]) {
            st = em_last_status();
            goto done;
        }
        const em_tensor *have = *l.v[i].t;
        char a[96], b[96];
        if (!same_shape(src[i], have)) {
            if (n_shape++ < LIST_MAX)
                sb_printf(&shapes, "%s'%s': checkpoint %s, model %s", n_shape > 1 ? "; " : "",
                          name, em__nn_describe(src[i], a, sizeof a), em__nn_describe(have, b, sizeof b));
        } else if (em_tensor_dtype(src[i]) != em_tensor_dtype(have)) {
            if (n_dtype++ < LIST_MAX)
                sb_printf(&dtypes, "%s'%s': checkpoint %s, model %s", n_dtype > 1 ? "; " : "",
                          name, em__nn_describe(src[i], a, sizeof a), em__nn_describe(have, b, sizeof b));
        }
    }
    if (strict) {
        for (int k = 0; k < em_tensor_dict_count(d); k++) {
            const char *name = em_tensor_dict_name(d, k);
            bool known = false;
            for (int i = 0; i < l.n && !known; i++) known = !strcmp(l.v[i].name, name);
            if (!known && n_unexpected++ < LIST_MAX)
                sb_printf(&unexpected, "%s'%s'", n_unexpected > 1 ? ", " : "", name);
        }
    }
    if (n_missing || n_unexpected || n_shape || n_dtype) {
        sbuf msg = {0};
        sb_printf(&msg, "%s(%s): the state dict does not fit the model, nothing was loaded:", fn,
                  m->type);
        const struct {
            int n;
            const char *what;
            sbuf *s;
        } parts[4] = {{n_missing, "missing key", &missing},
                      {n_unexpected, "unexpected key", &unexpected},
                      {n_shape, "shape mismatch", &shapes},
                      {n_dtype, "dtype mismatch", &dtypes}};
        for (int p = 0; p < 4; p++) {
            if (!parts[p].n) continue;
            sb_printf(&msg, " %d %s%s%s: %s", parts[p].n, parts[p].what,
                      parts[p].n > 1 ? (p < 2 ? "s" : "es") : "",
                      p == 0 ? " (in the model, not in the dict)"
                      : p == 1 ? " (in the dict, not in the model)"
                               : "",
                      parts[p].s->p ? parts[p].s->p : "");
            if (parts[p].n > LIST_MAX) sb_printf(&msg, " ... and %d more", parts[p].n - LIST_MAX);
            sb_printf(&msg, ".");
        }
        em_status kind = (n_missing || n_unexpected) ? EM_ERR_INVALID_ARG
                         : n_shape                   ? EM_ERR_SHAPE
                                                     : EM_ERR_DTYPE;
        st = em__fail(kind, "%s", msg.p ? msg.p : "the state dict does not fit the model");
        free(msg.p);
        goto done;
    }
    bool prev = em_set_grad_enabled(false);
    for (int i = 0; i < l.n && st == EM_OK; i++)
        if (src[i]) st = em_copy_(*l.v[i].t, src[i]);
    em_set_grad_enabled(prev);
done:
    free(missing.p);
    free(unexpected.p);
    free(shapes.p);
    free(dtypes.p);
    free(src);
    em_scope_end();
    slots_free(&l);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Counting, modes, gradients                                                */
/* ------------------------------------------------------------------------ */

int64_t em_module_num_parameters(const em_module *m, bool trainable_only)
{
    static const char *fn = "em_module_num_parameters";
    if (!m) {
        em__null_arg(fn, "m");
        return -1;
    }
    slot_list l;
    if (collect(fn, m, WALK_PARAMS, &l) != EM_OK) return -1;
    int64_t n = 0;
    for (int i = 0; i < l.n; i++) {
        const em_tensor *t = *l.v[i].t;
        if (seen_before(&l, i) || (trainable_only && !em_requires_grad(t))) continue;
        n += em_tensor_numel(t);
    }
    slots_free(&l);
    return n;
}

em_status em_module_train(em_module *m, bool training)
{
    if (!m) return em__null_arg("em_module_train", "m");
    m->training = training;
    for (int i = 0; i < m->n_children; i++) em_module_train(m->children[i].m, training);
    return EM_OK;
}

bool em_module_is_training(const em_module *m) { return m && m->training; }

em_status em_module_requires_grad_(em_module *m, bool requires_grad)
{
    static const char *fn = "em_module_requires_grad_";
    if (!m) return em__null_arg(fn, "m");
    slot_list l;
    em_status st = collect(fn, m, WALK_PARAMS, &l);
    for (int i = 0; i < l.n && st == EM_OK; i++) st = em_requires_grad_(*l.v[i].t, requires_grad);
    slots_free(&l);
    return st;
}

em_status em_module_zero_grad(em_module *m)
{
    static const char *fn = "em_module_zero_grad";
    if (!m) return em__null_arg(fn, "m");
    slot_list l;
    em_status st = collect(fn, m, WALK_PARAMS, &l);
    for (int i = 0; i < l.n && st == EM_OK; i++) st = em_set_grad(*l.v[i].t, NULL);
    slots_free(&l);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Moving and converting                                                     */
/* ------------------------------------------------------------------------ */

/* Converts t for em_module_to (device) or em_module_to_dtype; with grad
 * mode off. Returns a new reference held by the current scope, t itself
 * when nothing changes. */
static em_tensor *convert(em_tensor *t, em_device *dev, bool to_dtype, em_dtype dtype)
{
    if (!to_dtype) return em_tensor_to(t, dev);
    if (!em_dtype_is_float(em_tensor_dtype(t))) return own_ref(t);
    return em_cast(t, dtype);
}

static em_status apply(const char *fn, em_module *m, em_device *dev, bool to_dtype,
                       em_dtype dtype)
{
    slot_list l;
    em_status st = collect(fn, m, WALK_PARAMS | WALK_BUFFERS, &l);
    if (st != EM_OK) return st;
    em_tensor **fresh = calloc((size_t)(l.n > 0 ? l.n : 1), sizeof *fresh); /* caller refs */
    if (!fresh) {
        slots_free(&l);
        return em__fail(EM_ERR_OUT_OF_MEMORY, "%s(%s): out of host memory", fn, m->type);
    }
    st = em_scope_begin();
    bool scoped = st == EM_OK;
    bool prev = em_set_grad_enabled(false);
    for (int i = 0; i < l.n && st == EM_OK; i++) {
        em_tensor *old = *l.v[i].t;
        int j = 0;
        while (j < i && *l.v[j].t != old) j++;
        if (j < i) { /* shared with an earlier slot: share the converted tensor too */
            fresh[i] = em_tensor_retain(fresh[j]);
            continue;
        }
        em_tensor *t = convert(old, dev, to_dtype, dtype);
        if (!t) {
            st = em_last_status();
            break;
        }
        if (t != old && em_requires_grad(old) && em_is_leaf(old)) {
            st = em_requires_grad_(t, true);
            em_tensor *g = st == EM_OK ? em_grad(old) : NULL;
            if (g) {
                em_tensor *g2 = convert(g, dev, to_dtype, dtype);
                st = g2 ? em_set_grad(t, g2) : em_last_status();
            }
        }
        fresh[i] = em_tensor_retain(t);
    }
    em_set_grad_enabled(prev);
    if (scoped) em_scope_end();
    for (int i = 0; i < l.n; i++) {
        if (st == EM_OK) {
            em_tensor *old = *l.v[i].t;
            *l.v[i].t = fresh[i];
            em_tensor_release(old);
        } else {
            em_tensor_release(fresh[i]);
        }
    }
    if (st != EM_OK) {
        char msg[1536];
        snprintf(msg, sizeof msg, "%s", em_last_error());
        em__fail(st, "%s(%s): %s (the module was left unchanged)", fn, m->type, msg);
    }
    free(fresh);
    slots_free(&l);
    return st;
}

em_status em_module_to(em_module *m, em_device *device)
{
    static const char *fn = "em_module_to";
    if (!m) return em__null_arg(fn, "m");
    if (!device) device = em_device_default();
    if (!device) return em_last_status();
    return apply(fn, m, device, false, EM_F32);
}

em_status em_module_to_dtype(em_module *m, em_dtype dtype)
{
    static const char *fn = "em_module_to_dtype";
    if (!m) return em__null_arg(fn, "m");
    if (!em_dtype_is_float(dtype))
        return em__fail(EM_ERR_DTYPE, "%s(%s): dtype must be floating, got %s", fn, m->type,
                        em_dtype_name(dtype));
    return apply(fn, m, NULL, true, dtype);
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                  */
/* ------------------------------------------------------------------------ */

/* Appends s, indenting every line after the first by `indent` spaces. */
static void sb_indented(sbuf *out, const char *s, int indent)
{
    for (const char *p = s; *p; p++) {
        sb_printf(out, "%c", *p);
        if (*p == '\n') sb_printf(out, "%*s", indent, "");
    }
}

static void render(const em_module *m, sbuf *s)
{
    sb_printf(s, "%s(", m->type);
    if (m->n_children == 0) {
        if (m->desc) sb_printf(s, "%s", m->desc);
        sb_printf(s, ")");
        return;
    }
    sb_printf(s, "\n");
    if (m->desc && m->desc[0]) {
        sb_printf(s, "  ");
        sb_indented(s, m->desc, 2);
        sb_printf(s, "\n");
    }
    for (int i = 0; i < m->n_children; i++) {
        sbuf c = {0};
        render(m->children[i].m, &c);
        sb_printf(s, "  (%s): ", m->children[i].name);
        sb_indented(s, c.p ? c.p : "", 2);
        sb_printf(s, "\n");
        if (c.oom) s->oom = true;
        free(c.p);
    }
    sb_printf(s, ")");
}

int em_module_format(const em_module *m, char *buf, size_t cap)
{
    if (!m) {
        em__null_arg("em_module_format", "m");
        if (buf && cap) buf[0] = '\0';
        return -1;
    }
    sbuf s = {0};
    render(m, &s);
    if (s.oom) {
        free(s.p);
        em__fail(EM_ERR_OUT_OF_MEMORY, "em_module_format(%s): out of host memory", m->type);
        if (buf && cap) buf[0] = '\0';
        return -1;
    }
    if (buf && cap) snprintf(buf, cap, "%s", s.p ? s.p : "");
    int n = (int)s.len;
    free(s.p);
    return n;
}

void em_module_print(const em_module *m)
{
    int n = em_module_format(m, NULL, 0);
    if (n < 0) return;
    char *buf = malloc((size_t)n + 1);
    if (!buf) return;
    em_module_format(m, buf, (size_t)n + 1);
    printf("%s\n", buf);
    free(buf);
}
