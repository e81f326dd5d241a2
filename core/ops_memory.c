/*
 * ops_memory.c — ops that move or convert data without computing on it:
 * fill, copy (within and across devices), cast, contiguous, clone.
 * Also the internal helpers the other ops use for the same (em__fill,
 * em__copy_into, em__cast, em__contiguous, em__transfer).
 * cast, contiguous, clone and tensor_to record for autograd (grad_views.c);
 * the in-place ones (copy_, fill_, zero_) refuse a tensor that requires
 * grad while grad mode is on.
 */
#include "autograd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const em_op_params no_params = {.struct_size = sizeof(em_op_params)};

em_status em__fill(em_tensor *t, double value)
{
    if (t->numel == 0) return EM_OK;
    em_op_params p = no_params;
    p.scalar[0] = value;
    em_tdesc d = em__desc(t);
    return em__run_op("fill", t->storage->device, EM_OP_FILL, NULL, 0, &d, 1, &p);
}

em_tensor *em__contiguous(const char *name, const em_tensor *t)
{
    if (em_tensor_is_contiguous(t)) return em_tensor_retain((em_tensor *)t);
    em_tensor *out = em__alloc(t->storage->device, t->dtype, t->ndim, t->shape);
    if (!out) return NULL;
    if (out->numel > 0) {
        em_tdesc in = em__desc(t), od = em__desc(out);
        if (em__run_op(name, t->storage->device, EM_OP_COPY, &in, 1, &od, 1, &no_params) != EM_OK) {
            em_tensor_release(out);
            return NULL;
        }
    }
    return out;
}

em_tensor *em__cast(const char *name, const em_tensor *t, em_dtype dtype)
{
    if (t->dtype == dtype) return em_tensor_retain((em_tensor *)t);
    em_tensor *out = em__alloc(t->storage->device, dtype, t->ndim, t->shape);
    if (!out) return NULL;
    if (out->numel > 0) {
        em_tdesc in = em__desc(t), od = em__desc(out);
        if (em__run_op(name, t->storage->device, EM_OP_CAST, &in, 1, &od, 1, &no_params) != EM_OK) {
            em_tensor_release(out);
            return NULL;
        }
    }
    return out;
}

em_status em__transfer(const em_tensor *src, em_tensor *dst)
{
    if (src->numel == 0) return EM_OK;
    em_tensor *c = em__contiguous("em_tensor_to", src);
    if (!c) return em_last_status();
    size_t esz = em_dtype_size(src->dtype);
    em_status st = em__move_bytes(c->storage->device, c->storage->buffer, (size_t)c->offset * esz,
                                  dst->storage->device, dst->storage->buffer,
                                  (size_t)dst->offset * esz, (size_t)src->numel * esz);
    em_tensor_release(c);
    return st;
}

/* dst <- src where src already broadcasts to dst and lives on dst's device. */
static em_status copy_same_device(const char *name, em_tensor *dst, const em_tensor *src)
{
    em_tdesc in = em__desc_broadcast(src, dst->ndim, dst->shape), out = em__desc(dst);
    int op = src->dtype == dst->dtype ? EM_OP_COPY : EM_OP_CAST;
    return em__run_op(name, dst->storage->device, op, &in, 1, &out, 1, &no_params);
}

em_status em__copy_into(const char *name, em_tensor *dst, const em_tensor *src)
{
    int n;
    int64_t shape[EM_MAX_DIMS];
    if (!em__broadcast_shapes(dst->ndim, dst->shape, src->ndim, src->shape, &n, shape) ||
        n != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)n) != 0) {
        char a[200], b[200];
        return em__fail(EM_ERR_SHAPE, "%s: source %s does not broadcast to destination %s", name,
                        em__describe(src, a, sizeof a), em__describe(dst, b, sizeof b));
    }
    if (dst->numel == 0) return EM_OK;
    if (src->storage->device == dst->storage->device) return copy_same_device(name, dst, src);
    /* Across devices: bring src over as is, then copy/cast on dst's device. */
    em_tensor *moved = em__alloc(dst->storage->device, src->dtype, src->ndim, src->shape);
    if (!moved) return em_last_status();
    em_status st = em__transfer(src, moved);
    if (st == EM_OK) st = copy_same_device(name, dst, moved);
    em_tensor_release(moved);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

em_tensor *em_cast(const em_tensor *t, em_dtype dtype)
{
    if (!t) {
        em__null_arg("em_cast", "t");
        return NULL;
    }
    if (!em__dtype_valid(dtype)) {
        em__fail(EM_ERR_DTYPE, "em_cast: invalid dtype value %d", (int)dtype);
        return NULL;
    }
    return em__own(em__grad_identity("cast", t, em__cast("em_cast", t, dtype)));
}

em_tensor *em_contiguous(const em_tensor *t)
{
    if (!t) {
        em__null_arg("em_contiguous", "t");
        return NULL;
    }
    return em__own(em__grad_identity("contiguous", t, em__contiguous("em_contiguous", t)));
}

em_tensor *em_clone(const em_tensor *t)
{
    if (!t) {
        em__null_arg("em_clone", "t");
        return NULL;
    }
    em_tensor *out = em__alloc(t->storage->device, t->dtype, t->ndim, t->shape);
    if (!out) return NULL;
    if (out->numel > 0) {
        em_tdesc in = em__desc(t), od = em__desc(out);
        if (em__run_op("em_clone", t->storage->device, EM_OP_COPY, &in, 1, &od, 1, &no_params) !=
            EM_OK) {
            em_tensor_release(out);
            return NULL;
        }
    }
    return em__own(em__grad_identity("clone", t, out));
}

em_tensor *em_tensor_to(const em_tensor *t, em_device *device)
{
    if (!t) {
        em__null_arg("em_tensor_to", "t");
        return NULL;
    }
    if (!device) {
        em__null_arg("em_tensor_to", "device");
        return NULL;
    }
    if (t->storage->device == device) return em__own(em_tensor_retain((em_tensor *)t));
    em_tensor *out = em__alloc(device, t->dtype, t->ndim, t->shape);
    if (!out) return NULL;
    if (em__transfer(t, out) != EM_OK) {
        em__error_prefix("em_tensor_to(%s -> %s): ", t->storage->device->name, device->name);
        em_tensor_release(out);
        return NULL;
    }
    return em__own(em__grad_to(t, out));
}

em_status em_copy_(em_tensor *self, const em_tensor *src)
{
    if (!self) return em__null_arg("em_copy_", "self");
    if (!src) return em__null_arg("em_copy_", "src");
    if (em__check_writable("em_copy_", self) != EM_OK) return em_last_status();
    if (em__ag_check_inplace("em_copy_", self, src) != EM_OK) return em_last_status();
    em_status st = em__copy_into("em_copy_", self, src);
    if (st == EM_OK) self->storage->version++;
    return st;
}

em_status em_fill_(em_tensor *self, double value)
{
    if (!self) return em__null_arg("em_fill_", "self");
    if (em__check_writable("em_fill_", self) != EM_OK) return em_last_status();
    if (em__ag_check_inplace("em_fill_", self, NULL) != EM_OK) return em_last_status();
    em_status st = em__fill(self, value);
    if (st == EM_OK) self->storage->version++;
    return st;
}

em_status em_zero_(em_tensor *self)
{
    if (!self) return em__null_arg("em_zero_", "self");
    if (em__check_writable("em_zero_", self) != EM_OK) return em_last_status();
    if (em__ag_check_inplace("em_zero_", self, NULL) != EM_OK) return em_last_status();
    return em_fill_(self, 0.0);
}
