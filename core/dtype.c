/*
 * dtype.c — facts about element types: names, sizes and PyTorch's type
 * promotion. Not for conversion of values (that is the backends' CAST).
 */
#include "internal.h"

static const char *const dtype_names[EM_DTYPE_COUNT] = {"f32", "f64", "f16", "bf16",
                                                        "i32", "i64", "bool"};
static const size_t dtype_sizes[EM_DTYPE_COUNT] = {4, 8, 2, 2, 4, 8, 1};

bool em__dtype_valid(int dtype) { return dtype >= 0 && dtype < EM_DTYPE_COUNT; }

const char *em_dtype_name(em_dtype dtype)
{
    return em__dtype_valid(dtype) ? dtype_names[dtype] : "invalid";
}

size_t em_dtype_size(em_dtype dtype) { return em__dtype_valid(dtype) ? dtype_sizes[dtype] : 0; }

bool em_dtype_is_float(em_dtype dtype)
{
    return dtype == EM_F32 || dtype == EM_F64 || dtype == EM_F16 || dtype == EM_BF16;
}

bool em__dtype_is_int(em_dtype dtype) { return dtype == EM_I32 || dtype == EM_I64; }

/* Rank within a category: bool 0; ints 1 (i32) 2 (i64); floats 3.. */
static int category(em_dtype d)
{
    if (d == EM_BOOL) return 0;
    if (em__dtype_is_int(d)) return 1;
    return 2;
}

em_dtype em_promote_types(em_dtype a, em_dtype b)
{
    if (!em__dtype_valid(a) || !em__dtype_valid(b)) return EM_F32;
    if (a == b) return a;
    int ca = category(a), cb = category(b);
    if (ca != cb) return ca > cb ? a : b;
    if (ca == 1) return EM_I64;                 /* i32 with i64 */
    /* two different floats */
    if (a == EM_F64 || b == EM_F64) return EM_F64;
    return EM_F32;                              /* f16/bf16/f32 mixes */
}
