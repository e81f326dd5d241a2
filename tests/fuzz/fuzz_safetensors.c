/*
 * fuzz_safetensors.c — fuzz target for the safetensors loader.
 *
 * LLVMFuzzerTestOneInput loads the input with em_load_safetensors_from_memory.
 * A dictionary that loads must be usable: every tensor is read back to the
 * host. A failure must leave an error status and message. Either way the
 * result is destroyed and the error cleared, so nothing carries over.
 *
 * Built twice (tests/fuzz/CMakeLists.txt): with fuzz_corpus_main.c as the
 * plain test program fuzz_safetensors_corpus (any compiler), and alone as a
 * libFuzzer binary (clang, -fsanitize=fuzzer,address,undefined; `make fuzz`).
 */
#include "ember_io.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialised;
    if (!initialised) {
        em_init(); /* loads the CPU plugin once, outside the measured inputs */
        em_clear_error();
        initialised = 1;
    }
    em_tensor_dict *d = em_load_safetensors_from_memory(data, size, NULL);
    if (d) {
        for (int i = 0; i < em_tensor_dict_count(d); i++) {
            em_tensor *t = em_tensor_dict_at(d, i);
            size_t bytes = (size_t)em_tensor_numel(t) * em_dtype_size(em_tensor_dtype(t));
            if (!t || bytes > size) {
                fprintf(stderr, "fuzz_safetensors: tensor %d inconsistent with a %zu-byte input\n", i, size);
                abort();
            }
            void *buf = malloc(bytes ? bytes : 1);
            if (em_tensor_read(t, buf, bytes) != EM_OK) {
                fprintf(stderr, "fuzz_safetensors: reading tensor %d failed: %s\n", i, em_last_error());
                abort();
            }
            free(buf);
            em_tensor_release(t);
        }
    } else if (em_last_status() == EM_OK || !em_last_error()[0]) {
        fprintf(stderr, "fuzz_safetensors: load failed without an error message\n");
        abort();
    }
    em_tensor_dict_destroy(d);
    em_clear_error();
    return 0;
}
