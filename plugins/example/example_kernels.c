/*
 * example_kernels.c — the example plugin's kernels: FILL and COPY for every
 * dtype; ADD, SUB, MUL, DIV, RELU, SUM, MATMUL and LINEAR for f32.
 *
 * How a kernel sees its operands (the whole contract is in ember_plugin.h):
 *   - call->in[i] / call->out[i] are em_tdesc descriptors: a buffer handle
 *     (ours: an example_buffer), an offset, a dtype, a shape and strides.
 *     Offsets and strides count ELEMENTS, not bytes. Element (i0, i1, ...)
 *     is at offset + i0*strides[0] + i1*strides[1] + ...
 *   - Strides can be anything >= 0: a transposed view has swapped strides,
 *     and a broadcast input has stride 0 in the broadcast dims. The core has
 *     already broadcast every input of an elementwise op to the output's
 *     shape, and promoted dtypes, so an elementwise kernel just walks all
 *     operands in step (em_tdesc_iter does the index arithmetic).
 *   - Outputs were allocated by the core (fresh and dense, except for
 *     in-place ops such as em_add_, whose output is the destination view).
 *   - call->params holds the op's scalars and options; unused fields are 0.
 *   - Return EM_OK, or a status after em_plugin_fail(&example_host, ...):
 *     the core prefixes the message with the op, the operand shapes and the
 *     device, e.g. "em_add(f32[2, 3], f32[3]) on example:0: example: ...".
 *   - Kernels are called with the device locked: never call back into the
 *     core from one.
 *
 * Everything here is written for clarity, not speed: plain loops, doubles
 * for accumulation. A real backend would launch device work instead.
 *
 * Not for: the table, devices or buffers (example_plugin.c).
 */
#include "example_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */
/* ---------------------------------------------------------------------- */

/* The checks every kernel starts with: operand counts and sane
 * descriptors (em_plugin_check_call), and buffers that are ours and large
 * enough (example_check_buffers). The core never breaks these rules; the
 * checks turn a registry mistake into a clear error instead of a crash. */
static em_status check(const em_op_call *call, int min_in, int max_in)
{
    em_status st = em_plugin_check_call(&example_host, call, min_in, max_in, 1);
    if (st == EM_OK) st = example_check_buffers(call);
    return st;
}

static em_status want_f32(const em_op_call *call)
{
    for (int i = 0; i < call->n_in + call->n_out; i++) {
        const em_tdesc *t = i < call->n_in ? &call->in[i] : &call->out[i - call->n_in];
        if (t->dtype != EM_F32)
            return em_plugin_fail(&example_host, EM_ERR_DTYPE,
                                  "example: op %d is registered for f32 only but %s %d is %s",
                                  (int)call->op, i < call->n_in ? "input" : "output",
                                  i < call->n_in ? i : i - call->n_in,
                                  em_plugin_dtype_name(t->dtype));
    }
    return EM_OK;
}

static em_status want_same_shape(const em_tdesc *t, const em_tdesc *out, const char *what)
{
    if (em_tdesc_same_shape(t, out)) return EM_OK;
    char a[128], b[128];
    return em_plugin_fail(&example_host, EM_ERR_SHAPE, "example: %s has shape %s, the output %s",
                          what, em_tdesc_shape_str(t, a, sizeof a),
                          em_tdesc_shape_str(out, b, sizeof b));
}

/* Stores v, a double, as one element of `dtype` at p, with the conversion
 * rules of EM_OP_CAST: float -> int truncates toward zero and saturates,
 * NaN -> 0; -> bool is v != 0; -> f16/bf16 rounds to nearest even. */
static void store_double(void *p, int dtype, double v)
{
    switch (dtype) {
    case EM_F32: *(float *)p = (float)v; break;
    case EM_F64: *(double *)p = v; break;
    case EM_F16: *(uint16_t *)p = em_f32_to_f16((float)v); break;
    case EM_BF16: *(uint16_t *)p = em_f32_to_bf16((float)v); break;
    case EM_I32:
        *(int32_t *)p = isnan(v) ? 0 : v <= -2147483648.0 ? INT32_MIN
                                     : v >= 2147483647.0  ? INT32_MAX
                                                          : (int32_t)v;
        break;
    case EM_I64:
        *(int64_t *)p = isnan(v) ? 0 : v <= -9223372036854775808.0 ? INT64_MIN
                                     : v >= 9223372036854775808.0  ? INT64_MAX
                                                                   : (int64_t)v;
        break;
    case EM_BOOL: *(uint8_t *)p = v != 0; break; /* NaN != 0: true */
    default: break;
    }
}

/* ---------------------------------------------------------------------- */
/* Memory ops                                                              */
/* ---------------------------------------------------------------------- */

/* EM_OP_FILL: out[0] = scalar[0] converted to out's dtype. No inputs, so the
 * registry key is out[0]'s dtype. out may be a strided view (em_fill_ on a
 * slice), so walk it with its strides. */
em_status example_k_fill(void *dev, const em_op_call *call)
{
    em_status st = check(call, 0, 0);
    if (st != EM_OK) return st;
    const em_tdesc *out = &call->out[0];
    size_t esize = em_plugin_dtype_size(out->dtype);
    unsigned char value[8];
    store_double(value, out->dtype, call->params->scalar[0]);
    unsigned char *o = EXAMPLE_DATA(unsigned char, out);
    const em_tdesc *ops[1] = {out};
    em_tdesc_iter it;
    if (em_tdesc_iter_begin(&it, 1, ops)) do {
            memcpy(o + (size_t)it.offset[0] * esize, value, esize);
        } while (em_tdesc_iter_next(&it));
    return EM_OK;
}

/* EM_OP_COPY: out[0] = in[0], same dtype and shape, any strides on both
 * sides. The core uses it for em_contiguous, em_clone, copies into views,
 * and to pack inputs for kernels registered EM_KERNEL_CONTIGUOUS, so a
 * backend wants it for every dtype. A copy only moves bytes: one kernel
 * serves all dtypes. */
em_status example_k_copy(void *dev, const em_op_call *call)
{
    em_status st = check(call, 1, 1);
    if (st != EM_OK) return st;
    const em_tdesc *in = &call->in[0], *out = &call->out[0];
    if (in->dtype != out->dtype)
        return em_plugin_fail(&example_host, EM_ERR_DTYPE, "example: copy from %s to %s (the "
                              "core casts with EM_OP_CAST)", em_plugin_dtype_name(in->dtype),
                              em_plugin_dtype_name(out->dtype));
    st = want_same_shape(in, out, "the copy's source");
    if (st != EM_OK) return st;
    size_t esize = em_plugin_dtype_size(out->dtype);
    const unsigned char *s = EXAMPLE_DATA(const unsigned char, in);
    unsigned char *o = EXAMPLE_DATA(unsigned char, out);
    if (em_tdesc_is_contiguous(in) && em_tdesc_is_contiguous(out)) {
        /* the common case: one block (memmove: the core may copy within
         * one buffer) */
        memmove(o + (size_t)out->offset * esize, s + (size_t)in->offset * esize,
                (size_t)em_tdesc_numel(out) * esize);
        return EM_OK;
    }
    const em_tdesc *ops[2] = {out, in};
    em_tdesc_iter it;
    if (em_tdesc_iter_begin(&it, 2, ops)) do {
            memcpy(o + (size_t)it.offset[0] * esize, s + (size_t)it.offset[1] * esize, esize);
        } while (em_tdesc_iter_next(&it));
    return EM_OK;
}

/* ---------------------------------------------------------------------- */
/* Elementwise                                                             */
/* ---------------------------------------------------------------------- */

/* EM_OP_ADD / SUB / MUL / DIV on f32, in the two forms the core uses:
 *   n_in == 2: out = in[0] op in[1] (both already in out's shape; a
 *              broadcast operand has stride 0 where it repeats);
 *   n_in == 1: out = in[0] op scalar[0] (em_add_scalar, em_mul_scalar...).
 * For in-place ops (em_add_) out is the destination and may be the same
 * memory as in[0] with an identical descriptor: reading element i before
 * writing element i, as here, is all that takes. */
em_status example_k_binary(void *dev, const em_op_call *call)
{
    em_status st = check(call, 1, 2);
    if (st == EM_OK) st = want_f32(call);
    for (int i = 0; st == EM_OK && i < call->n_in; i++)
        st = want_same_shape(&call->in[i], &call->out[0], i ? "input 1" : "input 0");
    if (st != EM_OK) return st;

    const em_tdesc *out = &call->out[0];
    float *o = EXAMPLE_DATA(float, out);
    const float *a = EXAMPLE_DATA(const float, &call->in[0]);
    /* With one input, operand 2 is a "scalar": a one-element array read at
     * offset 0 with stride 0 in every dim. */
    float scalar = (float)call->params->scalar[0];
    em_tdesc scalar_desc = {.buffer = NULL, .offset = 0, .dtype = EM_F32, .ndim = out->ndim};
    for (int k = 0; k < out->ndim; k++) scalar_desc.shape[k] = out->shape[k];
    const float *b = call->n_in == 2 ? EXAMPLE_DATA(const float, &call->in[1]) : &scalar;
    const em_tdesc *ops[3] = {out, &call->in[0], call->n_in == 2 ? &call->in[1] : &scalar_desc};

    em_tdesc_iter it;
    if (!em_tdesc_iter_begin(&it, 3, ops)) return EM_OK;
    switch (call->op) {
    case EM_OP_ADD:
        do o[it.offset[0]] = a[it.offset[1]] + b[it.offset[2]]; while (em_tdesc_iter_next(&it));
        break;
    case EM_OP_SUB:
        do o[it.offset[0]] = a[it.offset[1]] - b[it.offset[2]]; while (em_tdesc_iter_next(&it));
        break;
    case EM_OP_MUL:
        do o[it.offset[0]] = a[it.offset[1]] * b[it.offset[2]]; while (em_tdesc_iter_next(&it));
        break;
    case EM_OP_DIV:
        do o[it.offset[0]] = a[it.offset[1]] / b[it.offset[2]]; while (em_tdesc_iter_next(&it));
        break;
    default:
        return em_plugin_fail(&example_host, EM_ERR_UNSUPPORTED,
                              "example: the binary kernel was called for op %d", (int)call->op);
    }
    return EM_OK;
}

/* EM_OP_RELU on f32: out = x < 0 ? 0 : x (NaN stays NaN, like the CPU
 * backend and PyTorch). */
em_status example_k_relu(void *dev, const em_op_call *call)
{
    em_status st = check(call, 1, 1);
    if (st == EM_OK) st = want_f32(call);
    if (st == EM_OK) st = want_same_shape(&call->in[0], &call->out[0], "the input");
    if (st != EM_OK) return st;
    float *o = EXAMPLE_DATA(float, &call->out[0]);
    const float *x = EXAMPLE_DATA(const float, &call->in[0]);
    const em_tdesc *ops[2] = {&call->out[0], &call->in[0]};
    em_tdesc_iter it;
    if (em_tdesc_iter_begin(&it, 2, ops)) do {
            float v = x[it.offset[1]];
            o[it.offset[0]] = v < 0 ? 0.0f : v;
        } while (em_tdesc_iter_next(&it));
    return EM_OK;
}

/* ---------------------------------------------------------------------- */
/* Reduction                                                               */
/* ---------------------------------------------------------------------- */

/* Outputs of up to SUM_STACK elements accumulate in a stack array, bigger
 * ones in a heap array. (A kernel must handle every call its registry row
 * admits; to turn some calls down, a plugin provides supports().) */
#define SUM_STACK 256

/* EM_OP_SUM on f32: out has in's rank, with size 1 in every dim whose bit
 * is set in params->reduce_mask ("keepdim" form; the core reshapes after).
 * The trick: give the accumulator array the INPUT's shape with stride 0 in
 * the reduced dims, then every input element lands on its output element
 * while walking input and accumulator in step. */
em_status example_k_sum(void *dev, const em_op_call *call)
{
    em_status st = check(call, 1, 1);
    if (st == EM_OK) st = want_f32(call);
    if (st != EM_OK) return st;
    const em_tdesc *in = &call->in[0], *out = &call->out[0];
    uint32_t mask = call->params->reduce_mask;
    int shape_ok = out->ndim == in->ndim;
    for (int d = 0; shape_ok && d < in->ndim; d++)
        shape_ok = out->shape[d] == ((mask >> d & 1u) ? 1 : in->shape[d]);
    if (!shape_ok) {
        char a[128], b[128];
        return em_plugin_fail(&example_host, EM_ERR_SHAPE,
                              "example: sum of %s with reduce_mask 0x%x cannot give %s",
                              em_tdesc_shape_str(in, a, sizeof a), (unsigned)mask,
                              em_tdesc_shape_str(out, b, sizeof b));
    }

    /* Accumulate in double (the contract asks for at least f32). */
    int64_t n_out = em_tdesc_numel(out);
    double stack_acc[SUM_STACK];
    double *acc = n_out <= SUM_STACK ? stack_acc : malloc((size_t)n_out * sizeof *acc);
    if (!acc)
        return em_plugin_fail(&example_host, EM_ERR_OUT_OF_MEMORY,
                              "example: sum: no host memory for %lld accumulators",
                              (long long)n_out);
    memset(acc, 0, (size_t)n_out * sizeof *acc);

    /* acc_desc: acc seen in the input's shape. Row-major strides of the
     * output's shape, 0 in reduced dims. */
    em_tdesc acc_desc = *in;
    acc_desc.offset = 0;
    int64_t stride = 1;
    for (int d = in->ndim - 1; d >= 0; d--) {
        acc_desc.strides[d] = (mask >> d & 1u) ? 0 : stride;
        stride *= out->shape[d];
    }
    const float *x = EXAMPLE_DATA(const float, in);
    const em_tdesc *ops[2] = {in, &acc_desc};
    em_tdesc_iter it;
    if (em_tdesc_iter_begin(&it, 2, ops)) do {
            acc[it.offset[1]] += x[it.offset[0]];
        } while (em_tdesc_iter_next(&it));

    /* Write the accumulators (row-major order) through out's strides. */
    float *o = EXAMPLE_DATA(float, out);
    const em_tdesc *outs[1] = {out};
    int64_t i = 0;
    if (em_tdesc_iter_begin(&it, 1, outs)) do {
            o[it.offset[0]] = (float)acc[i++];
        } while (em_tdesc_iter_next(&it));
    if (acc != stack_acc) free(acc);
    return EM_OK;
}

/* ---------------------------------------------------------------------- */
/* Linear algebra                                                          */
/* ---------------------------------------------------------------------- */

/* EM_OP_MATMUL on f32: a [B,M,K] x b [B,K,N] -> out [B,M,N]. The core has
 * turned every em_matmul case (vectors, matrices, broadcast batches) into
 * this batched form; the strides say where each element is (a transposed
 * operand has swapped strides; a batch shared by all has batch stride 0).
 * Registered without EM_KERNEL_CONTIGUOUS, so it reads any layout. */
em_status example_k_matmul(void *dev, const em_op_call *call)
{
    em_status st = check(call, 2, 2);
    if (st == EM_OK) st = want_f32(call);
    if (st != EM_OK) return st;
    const em_tdesc *a = &call->in[0], *b = &call->in[1], *out = &call->out[0];
    if (a->ndim != 3 || b->ndim != 3 || out->ndim != 3 || a->shape[0] != out->shape[0] ||
        b->shape[0] != out->shape[0] || a->shape[1] != out->shape[1] ||
        b->shape[2] != out->shape[2] || a->shape[2] != b->shape[1]) {
        char sa[128], sb[128], so[128];
        return em_plugin_fail(&example_host, EM_ERR_SHAPE,
                              "example: matmul wants [B,M,K] x [B,K,N] -> [B,M,N], got %s x %s "
                              "-> %s",
                              em_tdesc_shape_str(a, sa, sizeof sa),
                              em_tdesc_shape_str(b, sb, sizeof sb),
                              em_tdesc_shape_str(out, so, sizeof so));
    }
    const float *A = EXAMPLE_DATA(const float, a), *Bm = EXAMPLE_DATA(const float, b);
    float *O = EXAMPLE_DATA(float, out);
    int64_t B = out->shape[0], M = out->shape[1], N = out->shape[2], K = a->shape[2];
    for (int64_t p = 0; p < B; p++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)A[a->offset + p * a->strides[0] + i * a->strides[1] +
                                   k * a->strides[2]] *
                         Bm[b->offset + p * b->strides[0] + k * b->strides[1] + j * b->strides[2]];
                O[out->offset + p * out->strides[0] + i * out->strides[1] + j * out->strides[2]] =
                    (float)s;
            }
    return EM_OK;
}

/* EM_OP_LINEAR on f32: out [M,N] = x [M,K] * w[N,K]^T (+ bias [M,N]), the
 * op behind em_linear and nn Linear layers. Registered with
 * EM_KERNEL_CONTIGUOUS: the core packs every operand row-major first (a
 * bias [N] broadcast to [M,N] arrives as a full [M,N] matrix), so plain
 * row-major indexing from each descriptor's offset is correct here. */
em_status example_k_linear(void *dev, const em_op_call *call)
{
    em_status st = check(call, 2, 3);
    if (st == EM_OK) st = want_f32(call);
    if (st != EM_OK) return st;
    const em_tdesc *x = &call->in[0], *w = &call->in[1], *out = &call->out[0];
    const em_tdesc *bias = call->n_in == 3 ? &call->in[2] : NULL;
    int ok = x->ndim == 2 && w->ndim == 2 && out->ndim == 2 && x->shape[1] == w->shape[1] &&
             out->shape[0] == x->shape[0] && out->shape[1] == w->shape[0] &&
             (!bias || em_tdesc_same_shape(bias, out));
    if (!ok) {
        char sx[128], sw[128], so[128];
        return em_plugin_fail(&example_host, EM_ERR_SHAPE,
                              "example: linear wants x [M,K], w [N,K], bias [M,N] -> [M,N], got "
                              "x %s, w %s -> %s%s",
                              em_tdesc_shape_str(x, sx, sizeof sx),
                              em_tdesc_shape_str(w, sw, sizeof sw),
                              em_tdesc_shape_str(out, so, sizeof so),
                              bias ? " (with a bias)" : "");
    }
    const em_tdesc *all[4] = {x, w, out, bias};
    for (int i = 0; i < 4; i++)
        if (all[i] && !em_tdesc_is_contiguous(all[i]))
            return em_plugin_fail(&example_host, EM_ERR_INTERNAL,
                                  "example: linear is registered EM_KERNEL_CONTIGUOUS but operand "
                                  "%d is strided", i);
    int64_t M = x->shape[0], K = x->shape[1], N = w->shape[0];
    const float *X = EXAMPLE_DATA(const float, x) + x->offset;
    const float *W = EXAMPLE_DATA(const float, w) + w->offset;
    const float *Bi = bias ? EXAMPLE_DATA(const float, bias) + bias->offset : NULL;
    float *O = EXAMPLE_DATA(float, out) + out->offset;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = Bi ? Bi[i * N + j] : 0.0;
            for (int64_t k = 0; k < K; k++) s += (double)X[i * K + k] * W[j * K + k];
            O[i * N + j] = (float)s;
        }
    return EM_OK;
}
