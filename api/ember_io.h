/*
 * ember_io.h — checkpoint files: em_tensor_dict to and from the safetensors
 * format (https://github.com/huggingface/safetensors), the format of
 * Hugging Face model weights, readable by PyTorch, JAX, NumPy and Rust.
 *
 * Conventions, errors and the ownership rule are those of ember.h. A loaded
 * dictionary owns its tensors (em_tensor_dict_get/at give the caller a new
 * reference as usual) and is freed with em_tensor_dict_destroy.
 *
 * The format, as written and accepted here:
 *   bytes [0, 8)        N, the header length, a little-endian uint64
 *   bytes [8, 8+N)      the header: a UTF-8 JSON object mapping each tensor
 *                       name to {"dtype": "F32", "shape": [2, 3],
 *                       "data_offsets": [begin, end]}, plus an optional
 *                       "__metadata__" object of string -> string. JSON
 *                       whitespace may surround the object (writers pad
 *                       with spaces).
 *   bytes [8+N, EOF)    the data area: each tensor's elements, little-endian,
 *                       row-major, at [8+N+begin, 8+N+end).
 *
 * dtypes: F32 F64 F16 BF16 I32 I64 BOOL map to EM_F32 ... EM_BOOL. The other
 * safetensors dtypes (U8 I8 I16 U16 U32 U64 F8_E4M3 F8_E5M2 F8_E8M0 F4
 * F6_E2M3 F6_E3M2 C64) are valid in a file but have no Ember equivalent.
 */
#ifndef EMBER_IO_H
#define EMBER_IO_H

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest header accepted (bytes), as the reference implementation. */
#define EM_SAFETENSORS_MAX_HEADER 100000000u

/* Saves every tensor of d, and its metadata, to a safetensors file at path.
 *
 * Tensors may live on any device and have any strides (they are read to the
 * host in logical row-major order, one at a time). The header lists the
 * tensors in d's insertion order, preceded by "__metadata__" (d's metadata
 * keys in their order) when d has metadata; it is compact JSON (no spaces;
 * '"', '\\' and control characters escaped, other UTF-8 kept as is) padded
 * with spaces to a multiple of 8 bytes. The data area holds the tensors
 * ordered by element size, largest first (insertion order among equals), so
 * that every tensor is aligned to its element size in the file and the
 * tensors cover the area exactly, without gaps. The same dictionary always
 * gives the same bytes.
 *
 * Atomic: the file is written to a new temporary file in path's directory,
 * flushed to disk (fsync), renamed over path, and the directory is synced.
 * On any failure the temporary file is removed and an existing file at path
 * is left untouched. A replaced file keeps its permission bits; a new one
 * gets 0666 minus the umask, as fopen would give it. A symbolic link at
 * path is replaced, not followed.
 *
 * Errors: EM_ERR_NULL_ARG (path or d NULL);
 * EM_ERR_INVALID_ARG (empty path, a name or metadata string that is not
 * valid UTF-8, a tensor named "__metadata__", a header over
 * EM_SAFETENSORS_MAX_HEADER); EM_ERR_IO (creating, writing, syncing or
 * renaming failed, with the path and the system's reason); the status of a
 * failing tensor read; EM_ERR_OUT_OF_MEMORY. */
EM_API em_status em_save_safetensors(const char *path, const em_tensor_dict *d);

/* Loads a safetensors file into a new dictionary, its tensors on `device`
 * (NULL = em_device_default()), in the order the header lists them, with
 * the "__metadata__" entries as metadata (a null "__metadata__" means none).
 * Tensor data is read one tensor at a time (the whole file is never held in
 * memory at once). Keys of a tensor entry other than "dtype", "shape" and
 * "data_offsets" are ignored, as the reference implementation does. A BOOL
 * byte other than 0 or 1 loads as true (1), as NumPy and PyTorch read it.
 *
 * The whole header is validated before any tensor is made. Returns NULL on
 * failure, with a message naming the file, the tensor and the numbers:
 *   EM_ERR_IO, a malformed file:
 *     - shorter than 8 bytes; header length over EM_SAFETENSORS_MAX_HEADER
 *       or past the end of the file;
 *     - header not valid UTF-8, not strict JSON (RFC 8259, escapes incl.
 *       \uXXXX surrogate pairs; nesting deeper than 64 levels is refused),
 *       not an object, or followed by anything but whitespace;
 *     - a duplicate tensor name, metadata key or "__metadata__";
 *       "__metadata__" not an object of strings;
 *     - a tensor entry that is not an object, lacks "dtype", "shape" or
 *       "data_offsets" or repeats one of them; an unknown dtype; a shape or
 *       data_offsets that is not a list of integers in [0, 2^63);
 *       data_offsets not of two entries [begin, end] with begin <= end;
 *     - an element count that overflows; end - begin different from the
 *       shape's byte size; offsets past the data area; tensors that
 *       overlap or leave a hole; bytes after the last tensor.
 *   EM_ERR_UNSUPPORTED, a valid file that Ember cannot represent: a dtype
 *     without an Ember equivalent, more than EM_MAX_DIMS dimensions, an
 *     empty tensor name, a name or metadata string containing U+0000.
 *   EM_ERR_NULL_ARG (path NULL); EM_ERR_IO (the file cannot be opened or
 *     read, or is not a regular file); EM_ERR_OUT_OF_MEMORY; the errors of
 *     making a tensor on `device`. */
EM_API em_tensor_dict *em_load_safetensors(const char *path, em_device *device);

/* As em_load_safetensors, from the `size` bytes of a whole file at `data`
 * (borrowed, only read; copied into the tensors). Any bytes are safe to
 * pass: nothing outside [data, data + size) is read. data NULL with size > 0
 * is EM_ERR_NULL_ARG; size 0 fails as a file shorter than 8 bytes. */
EM_API em_tensor_dict *em_load_safetensors_from_memory(const void *data, size_t size,
                                                        em_device *device);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_IO_H */
