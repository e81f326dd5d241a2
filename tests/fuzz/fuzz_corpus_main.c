/*
 * fuzz_corpus_main.c — main() for fuzz_safetensors_corpus: runs the fuzz
 * target (fuzz_safetensors.c) on every file of a corpus folder and then on
 * deterministic mutations of them, so any compiler (and the ASan build) runs
 * the fuzzer's checks in CTest without libFuzzer.
 *
 *   fuzz_safetensors_corpus CORPUS_DIR [MUTATIONS=4000] [SEED=1]
 *
 * Mutations (splitmix64 from SEED, so a failure replays): 1-8 byte edits
 * (bit flips, random bytes, JSON punctuation and digits, biased towards the
 * header), truncation, appended bytes, a byte inserted or deleted in the
 * header with the length field adjusted or not, and a new length field.
 * Every input is passed in a buffer of exactly its size, so ASan reports
 * any read past the end. Exits 1 when the corpus is missing or empty.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng;
static uint64_t next_u64(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static size_t below(size_t n) { return n ? (size_t)(next_u64() % n) : 0; }

typedef struct blob {
    unsigned char *p;
    size_t n;
} blob;

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run(const unsigned char *p, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1); /* exact size */
    if (n) memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(n ? copy : NULL, n);
    free(copy);
}

static uint64_t header_len(const blob *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0 && b->n >= 8; i--) v = v << 8 | b->p[i];
    return v;
}

static void set_header_len(blob *b, uint64_t v)
{
    for (int i = 0; i < 8 && (size_t)i < b->n; i++) b->p[i] = (unsigned char)(v >> (8 * i));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS] [SEED]\n", argv[0]);
        return 2;
    }
    long mutations = argc > 2 ? strtol(argv[2], NULL, 10) : 4000;
    rng = argc > 3 ? strtoull(argv[3], NULL, 0) : 1;
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[1]);
        return 1;
    }
    char *names[256];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(dir)) && nn < 256)
        if (e->d_name[0] != '.') names[nn++] = strdup(e->d_name);
    closedir(dir);
    qsort(names, (size_t)nn, sizeof names[0], cmp_names);
    blob files[256];
    int nf = 0;
    for (int i = 0; i < nn; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        FILE *f = fopen(path, "rb");
        free(names[i]);
        if (!f) continue;
        blob b = {NULL, 0};
        size_t cap = 0;
        unsigned char chunk[4096];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (b.n + got > cap) {
                cap = (b.n + got) * 2;
                b.p = realloc(b.p, cap);
            }
            memcpy(b.p + b.n, chunk, got);
            b.n += got;
        }
        fclose(f);
        files[nf++] = b;
    }
    if (nf == 0) {
        fprintf(stderr, "%s: no corpus files in %s\n", argv[0], argv[1]);
        return 1;
    }
    for (int i = 0; i < nf; i++) run(files[i].p, files[i].n);

    static const char tokens[] = "{}[]\",:-0123456789.eE\\u /tnf ";
    for (long m = 0; m < mutations; m++) {
        const blob *src = &files[below((size_t)nf)];
        blob b;
        b.n = src->n;
        b.p = malloc(src->n + 64);
        memcpy(b.p, src->p, src->n);
        size_t hl = b.n >= 8 ? (size_t)header_len(&b) : 0;
        size_t hend = hl + 8 <= b.n ? hl + 8 : b.n; /* end of the header */
        switch (below(8)) {
        case 0: /* truncate */
            b.n = below(b.n + 1);
            break;
        case 1: /* append */
            for (size_t k = 1 + below(16); k > 0; k--) b.p[b.n++] = (unsigned char)next_u64();
            break;
        case 2: /* insert or delete one header byte, fixing the length field half the time */
            if (hend > 8) {
                size_t at = 8 + below(hend - 8);
                int ins = (int)below(2);
                if (ins) {
                    memmove(b.p + at + 1, b.p + at, b.n - at);
                    b.p[at] = (unsigned char)tokens[below(sizeof tokens - 1)];
                    b.n++;
                } else {
                    memmove(b.p + at, b.p + at + 1, b.n - at - 1);
                    b.n--;
                }
                if (below(2)) set_header_len(&b, hl + (ins ? 1 : (uint64_t)-1));
            }
            break;
        case 3: /* a new length field */
            set_header_len(&b, below(2) ? (uint64_t)below(b.n + 16) : next_u64());
            break;
        default: /* byte edits, mostly in the header */
            for (size_t k = 1 + below(8); k > 0 && b.n > 0; k--) {
                size_t at = (below(4) && hend > 8) ? 8 + below(hend - 8) : below(b.n);
                switch (below(3)) {
                case 0: b.p[at] ^= (unsigned char)(1u << below(8)); break;
                case 1: b.p[at] = (unsigned char)next_u64(); break;
                default: b.p[at] = (unsigned char)tokens[below(sizeof tokens - 1)]; break;
                }
            }
        }
        run(b.p, b.n);
        free(b.p);
    }
    printf("fuzz_safetensors_corpus: %d corpus files and %ld mutations ran without a crash\n", nf, mutations);
    for (int i = 0; i < nf; i++) free(files[i].p);
    return 0;
}
