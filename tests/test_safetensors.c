/*
 * test_safetensors.c — checkpoints in the safetensors format (api/ember_io.h).
 *
 * Covers: round trips of every dtype (0-d, empty, odd shapes, the harness's
 * four layouts incl. non-contiguous ones, NaN/inf/-0), order of names and
 * metadata (escapes, control characters, non-ASCII), the exact bytes of a
 * written file against the specification (length field, JSON text, space
 * padding to 8, offsets, little-endian data), files written by the
 * reference implementation (tests/data/, made by make_safetensors_fixtures.py:
 * exact values, and re-saving them gives the same bytes), every validation
 * error built as a byte buffer (status and message), every truncated prefix
 * of valid files, random byte flips, loading onto a device and inside
 * scopes, argument errors, and the atomic save (missing or read-only
 * folder, a rename that fails, a write that fails half-way under
 * RLIMIT_FSIZE: the old file stays, no temporary file is left; permission
 * bits of a replaced file are kept).
 *
 *   test_safetensors                 the tests
 *   test_safetensors --write FILE    saves the tensors of the fixture script's
 *                                    EXPECTED table, built here from C values
 *                                    (some non-contiguous), for the reverse
 *                                    check: make_safetensors_fixtures.py check FILE
 */
#include "ember_io.h"
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#ifndef EMBER_TEST_DATA_DIR
#define EMBER_TEST_DATA_DIR "tests/data"
#endif

static char tmpdir[512];

/* ------------------------------------------------------------------------ */
/* Files and buffers                                                         */
/* ------------------------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)(n > 0 ? n : 1));
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(b);
        return NULL;
    }
    *len = (size_t)n;
    return b;
}

static int write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static char *tpath(const char *name)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 1024, "%s/%s", tmpdir, name);
    return p;
}

/* Number of entries in a folder (without . and ..); *tmp_seen counts names
 * containing ".tmp-" (temporary files of the save). */
static int count_entries(const char *dir, int *tmp_seen)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    if (tmp_seen) *tmp_seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        if (tmp_seen && strstr(e->d_name, ".tmp-")) (*tmp_seen)++;
    }
    closedir(d);
    return n;
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A file image: 8-byte length of `hlen` + header bytes + data. */
typedef struct image {
    unsigned char *p;
    size_t len;
} image;

static image mk_raw(const char *header, size_t hlen, uint64_t len_field, const void *data, size_t dlen)
{
    image im;
    im.len = 8 + hlen + dlen;
    im.p = malloc(im.len ? im.len : 1);
    for (int i = 0; i < 8; i++) im.p[i] = (unsigned char)(len_field >> (8 * i));
    memcpy(im.p + 8, header, hlen);
    if (dlen) memcpy(im.p + 8 + hlen, data, dlen);
    return im;
}

/* Header text (NUL-terminated) plus `dlen` data bytes 0, 1, 2, ... */
static image mk(const char *header, size_t dlen)
{
    unsigned char *data = malloc(dlen ? dlen : 1);
    for (size_t i = 0; i < dlen; i++) data[i] = (unsigned char)(i % 2); /* valid for BOOL too */
    image im = mk_raw(header, strlen(header), strlen(header), data, dlen);
    free(data);
    return im;
}

/* ------------------------------------------------------------------------ */
/* Checks on results                                                         */
/* ------------------------------------------------------------------------ */

/* t's raw bytes equal `want` (n bytes), and t has dtype/shape. */
static int tensor_is(const em_tensor *t, em_dtype dtype, int ndim, const int64_t *shape, const void *want,
                     size_t n)
{
    if (!t || em_tensor_dtype(t) != dtype || em_tensor_ndim(t) != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (em_tensor_dim(t, i) != shape[i]) return 0;
    if ((size_t)em_tensor_numel(t) * em_dtype_size(dtype) != n) return 0;
    unsigned char *got = malloc(n ? n : 1);
    int ok = em_tensor_read(t, got, n) == EM_OK && (n == 0 || memcmp(got, want, n) == 0);
    free(got);
    return ok;
}

/* Loading `im` fails with `want` and a message containing every one of the
 * NULL-terminated substrings. Also through a file, for the same result. */
static void expect_fail_(int line, const char *label, image im, em_status want, const char *const *subs)
{
    for (int via_file = 0; via_file < 2; via_file++) {
        em_clear_error();
        em_tensor_dict *d;
        if (via_file) {
            char *p = tpath("corrupt.safetensors");
            if (write_bytes(p, im.p, im.len) != 0) {
                tu_report_fail(__FILE__, line, "%s: cannot write %s", label, p);
                return;
            }
            d = em_load_safetensors(p, NULL);
        } else {
            d = em_load_safetensors_from_memory(im.p, im.len, NULL);
        }
        em_status st = em_last_status();
        const char *msg = em_last_error();
        int ok = d == NULL && st == want;
        for (const char *const *s = subs; ok && *s; s++)
            if (!strstr(msg, *s)) ok = 0;
        if (ok) {
            tu_passed++;
            if (!via_file) printf("%-40s -> %s\n", label, msg);
        } else {
            tu_report_fail(__FILE__, line, "%s (%s): got %s, %s \"%s\", want %s", label,
                           via_file ? "file" : "memory", d ? "a dictionary" : "NULL", em_status_str(st), msg,
                           em_status_str(want));
        }
        em_tensor_dict_destroy(d);
        em_clear_error();
    }
}
#define EXPECT_FAIL(label, im, want, ...)                                                   \
    do {                                                                                    \
        image im_ = (im);                                                                   \
        expect_fail_(__LINE__, label, im_, want, (const char *const[]){__VA_ARGS__, NULL}); \
        free(im_.p);                                                                        \
    } while (0)

/* Loading `im` succeeds; returns the dictionary (caller destroys). */
static em_tensor_dict *expect_ok_(int line, const char *label, image im)
{
    em_clear_error();
    em_tensor_dict *d = em_load_safetensors_from_memory(im.p, im.len, NULL);
    if (d) tu_passed++;
    else tu_report_fail(__FILE__, line, "%s: load failed", label);
    em_clear_error();
    return d;
}
#define EXPECT_OK(label, im) expect_ok_(__LINE__, label, im)

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */
/* ------------------------------------------------------------------------ */

typedef struct rt_case {
    char name[128];
    em_dtype dtype;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    unsigned char *bytes; /* expected logical bytes */
    size_t nbytes;
} rt_case;

static void test_round_trip(void)
{
    static const struct {
        int ndim;
        int64_t shape[4];
    } shapes[] = {{0, {0}}, {1, {0}}, {1, {1}}, {1, {7}}, {2, {3, 5}}, {3, {2, 0, 3}}, {3, {4, 3, 2}},
                  {4, {2, 1, 3, 2}}};
    enum { NS = sizeof shapes / sizeof shapes[0] };
    rt_case *cases = calloc(EM_DTYPE_COUNT * NS * TU_LAYOUT_COUNT + 1, sizeof *cases);
    int nc = 0;
    em_tensor_dict *d = em_tensor_dict_create();
    CHECK_NONNULL(d);
    for (int di = 0; di < EM_DTYPE_COUNT; di++) {
        em_dtype dt = tu_all_dtypes[di];
        for (int si = 0; si < NS; si++) {
            for (int layout = 0; layout < TU_LAYOUT_COUNT; layout++) {
                int ndim = shapes[si].ndim;
                const int64_t *shape = shapes[si].shape;
                int64_t n = tu_numel(ndim, shape);
                double *vals = malloc(sizeof(double) * (size_t)(n ? n : 1));
                tu_fill(vals, n, dt, -1000, 1000);
                if (tu_is_float(dt) && n >= 4) { /* special values survive bit for bit */
                    vals[0] = NAN;
                    vals[1] = -INFINITY;
                    vals[2] = -0.0;
                    vals[3] = INFINITY;
                }
                em_tensor *t = tu_make(vals, dt, ndim, shape, layout);
                rt_case *c = &cases[nc++];
                char sb[48];
                snprintf(c->name, sizeof c->name, "%s%s/%s", tu_dt(dt), tu_shape_str(ndim, shape, sb, sizeof sb),
                         tu_layout_names[layout]);
                c->dtype = dt;
                c->ndim = ndim;
                memcpy(c->shape, shape, sizeof(int64_t) * (size_t)ndim);
                c->nbytes = (size_t)n * tu_size(dt);
                c->bytes = malloc(c->nbytes ? c->nbytes : 1);
                for (int64_t i = 0; i < n; i++) tu_store(c->bytes, i, vals[i], dt);
                CHECK_OK(em_tensor_dict_set(d, c->name, t));
                em_tensor_release(t);
                free(vals);
            }
        }
    }
    /* One tensor above the CPU backend's parallel grain, strided. */
    {
        int64_t shape[2] = {300, 257};
        int64_t n = 300 * 257;
        double *vals = malloc(sizeof(double) * (size_t)n);
        tu_fill(vals, n, EM_F32, -5, 5);
        em_tensor *t = tu_make(vals, EM_F32, 2, shape, TU_STRIDED);
        rt_case *c = &cases[nc++];
        snprintf(c->name, sizeof c->name, "big/strided");
        c->dtype = EM_F32;
        c->ndim = 2;
        memcpy(c->shape, shape, sizeof shape);
        c->nbytes = (size_t)n * 4;
        c->bytes = malloc(c->nbytes);
        for (int64_t i = 0; i < n; i++) tu_store(c->bytes, i, vals[i], EM_F32);
        CHECK_OK(em_tensor_dict_set(d, c->name, t));
        em_tensor_release(t);
        free(vals);
    }
    CHECK_OK(em_tensor_dict_set_meta(d, "epoch", "12"));
    CHECK_OK(em_tensor_dict_set_meta(d, "quote\"back\\slash", "line\nbreak\ttab\x01\x1f ctrl"));
    CHECK_OK(em_tensor_dict_set_meta(d, "unicode \xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", "\xe6\x97\xa5\xe6\x9c\xac"));
    CHECK_OK(em_tensor_dict_set_meta(d, "", ""));

    const char *path = tpath("round_trip.safetensors");
    CHECK_OK(em_save_safetensors(path, d));
    em_tensor_dict *back = em_load_safetensors(path, NULL);
    CHECK_NONNULL(back);
    if (back) {
        CHECKF(em_tensor_dict_count(back) == nc, "count %d want %d", em_tensor_dict_count(back), nc);
        int bad = 0;
        for (int i = 0; i < nc && i < em_tensor_dict_count(back); i++) {
            const rt_case *c = &cases[i];
            /* Insertion order survives (the header lists tensors in it). */
            const char *name = em_tensor_dict_name(back, i);
            CHECKF(name && !strcmp(name, c->name), "entry %d is '%s', want '%s'", i, name ? name : "(null)",
                   c->name);
            em_tensor *t = em_tensor_dict_get(back, c->name);
            /* (The core calls a tensor with a 0 size and other sizes > 1 non-contiguous.) */
            int ok = tensor_is(t, c->dtype, c->ndim, c->shape, c->bytes, c->nbytes) &&
                     (c->nbytes == 0 || em_tensor_is_contiguous(t)) && em_tensor_device(t) == tu_dev;
            CHECKF(ok, "round trip of %s", c->name);
            if (!ok) bad++;
            em_tensor_release(t);
        }
        printf("round trip: %d tensors (7 dtypes x %d shapes x 4 layouts + 1 big), %d mismatches\n", nc, NS, bad);
        CHECK(em_tensor_dict_meta_count(back) == 4);
        const char *v = em_tensor_dict_get_meta(back, "quote\"back\\slash");
        CHECK(v && !strcmp(v, "line\nbreak\ttab\x01\x1f ctrl"));
        v = em_tensor_dict_get_meta(back, "unicode \xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80");
        CHECK(v && !strcmp(v, "\xe6\x97\xa5\xe6\x9c\xac"));
        v = em_tensor_dict_get_meta(back, "epoch");
        CHECK(v && !strcmp(v, "12"));
        v = em_tensor_dict_get_meta(back, "");
        CHECK(v && !strcmp(v, ""));
        CHECK(!strcmp(em_tensor_dict_meta_key(back, 0), "epoch"));
        CHECK(!strcmp(em_tensor_dict_meta_key(back, 3), ""));

        /* Saving what was loaded gives the same bytes: deterministic. */
        size_t l1, l2;
        const char *p2 = tpath("round_trip2.safetensors");
        CHECK_OK(em_save_safetensors(p2, back));
        unsigned char *b1 = read_all(path, &l1), *b2 = read_all(p2, &l2);
        CHECK(b1 && b2 && l1 == l2 && !memcmp(b1, b2, l1));
        free(b1);
        free(b2);
        unlink(p2);
    }
    em_tensor_dict_destroy(back);

    /* Empty dictionary: "{}" padded to 8, no data; loads back empty. */
    em_tensor_dict *e = em_tensor_dict_create();
    CHECK_OK(em_save_safetensors(path, e));
    size_t len;
    unsigned char *b = read_all(path, &len);
    CHECK(b && len == 16 && !memcmp(b, "\x08\0\0\0\0\0\0\0{}      ", 16));
    free(b);
    em_tensor_dict *eb = em_load_safetensors(path, NULL);
    CHECK(eb && em_tensor_dict_count(eb) == 0 && em_tensor_dict_meta_count(eb) == 0);
    em_tensor_dict_destroy(eb);
    em_tensor_dict_destroy(e);

    unlink(path);
    em_tensor_dict_destroy(d);
    for (int i = 0; i < nc; i++) free(cases[i].bytes);
    free(cases);
}

/* ------------------------------------------------------------------------ */
/* Byte-exact layout                                                         */
/* ------------------------------------------------------------------------ */

static void test_exact_layout(void)
{
    em_tensor_dict *d = em_tensor_dict_create();
    uint8_t bools[3] = {1, 0, 1};
    float f32[2] = {1.0f, -2.5f};
    double f64[1] = {3.0};
    uint16_t f16 = 0x3C00; /* 1.0 */
    int32_t i32[2][2] = {{1, -2}, {3, 0x01020304}};
    em_tensor *tb = em_tensor_from_data(bools, EM_BOOL, EM_SHAPE(3), NULL);
    em_tensor *ta = em_tensor_from_data(f32, EM_F32, EM_SHAPE(2), NULL);
    em_tensor *tc = em_tensor_from_data(f64, EM_F64, EM_SHAPE(1), NULL);
    em_tensor *th = em_tensor_from_data(&f16, EM_F16, 0, NULL, NULL);
    em_tensor *ti = em_tensor_from_data(i32, EM_I32, EM_SHAPE(2, 2), NULL);
    em_tensor *tit = em_transpose(ti, 0, 1); /* written as [[1, 3], [-2, 0x01020304]] */
    CHECK_OK(em_tensor_dict_set(d, "b", tb));
    CHECK_OK(em_tensor_dict_set(d, "a", ta));
    CHECK_OK(em_tensor_dict_set(d, "c", tc));
    CHECK_OK(em_tensor_dict_set(d, "h", th));
    CHECK_OK(em_tensor_dict_set(d, "i\"\\\n\x01\xc3\xa9", tit));
    CHECK_OK(em_tensor_dict_set_meta(d, "k", "v"));
    const char *path = tpath("exact.safetensors");
    CHECK_OK(em_save_safetensors(path, d));

    /* Data order: element size 8 (c), 4 (a, i), 2 (h), 1 (b). */
    const char *json = "{\"__metadata__\":{\"k\":\"v\"},"
                       "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[34,37]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                       "\"c\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                       "\"h\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[32,34]},"
                       "\"i\\\"\\\\\\n\\u0001\xc3\xa9\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}";
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    size_t len;
    unsigned char *b = read_all(path, &len);
    CHECK(b != NULL);
    if (b) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
        CHECKF(n == padded && n % 8 == 0, "header length field %llu, want %zu", (unsigned long long)n, padded);
        CHECKF(len == 8 + padded + 37, "file is %zu bytes, want %zu", len, 8 + padded + 37);
        CHECKF(len >= 8 + jl && !memcmp(b + 8, json, jl), "header JSON is\n%.*s\nwant\n%s",
               (int)(len - 8 < 600 ? len - 8 : 600), b + 8, json);
        int spaces = 1;
        for (size_t i = 8 + jl; i < 8 + padded && i < len; i++) spaces &= b[i] == ' ';
        CHECK(spaces);
        unsigned char want[37] = {
            0, 0, 0, 0, 0, 0, 0x08, 0x40,     /* 3.0 */
            0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0, /* 1.0f, -2.5f */
            1, 0, 0, 0, 3, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 4, 3, 2, 1, /* 1, 3, -2, 0x01020304 */
            0x00, 0x3c,                        /* f16 1.0 */
            1, 0, 1};
        CHECK(len == 8 + padded + 37 && !memcmp(b + 8 + padded, want, 37));
    }
    free(b);
    em_tensor_release(tb);
    em_tensor_release(ta);
    em_tensor_release(tc);
    em_tensor_release(th);
    em_tensor_release(ti);
    em_tensor_release(tit);
    em_tensor_dict_destroy(d);
    unlink(path);
}

/* ------------------------------------------------------------------------ */
/* Files written by the reference implementation                             */
/* ------------------------------------------------------------------------ */

/* The EXPECTED table of make_safetensors_fixtures.py, in C. */
static const float fx_weight[6] = {0.5f, -1.25f, 3.0f, 100.0f, -0.0625f, 65504.0f};
static const double fx_bias[3] = {0.1, -2.5, 1e300};
static const uint16_t fx_half[4] = {0x3C00, 0xC000, 0x3555, 0x7BFF}; /* 1, -2, 0.333251953125, 65504 */
static const uint16_t fx_bhalf[4] = {0x3F80, 0xC040, 0x3EAB, 0x4380}; /* 1, -3, 0.333984375, 256 */
static const int64_t fx_ids[5] = {0, -1, (int64_t)1 << 40, INT64_MIN, INT64_MAX};
static const int32_t fx_counts[4] = {7, -8, INT32_MAX, INT32_MIN};
static const uint8_t fx_mask[3] = {1, 0, 1};
static const float fx_scalar = 42.0f;
static const float fx_layer[1] = {-7.5f};
static const int32_t fx_poids[1] = {2024};
#define FX_POIDS "poids_\xc3\xa9t\xc3\xa9"
#define FX_NOTE "Ember fixture \xe2\x9c\x93 \"quoted\" back\\slash\ttab"

static void check_fixture_mixed(const em_tensor_dict *d)
{
    /* The reference writer sorts by dtype (descending alignment), then name. */
    static const char *const order[] = {"ids", "bias", "empty", "layers.0.attn.w", "scalar", "weight",
                                        "counts", FX_POIDS, "bhalf", "half", "mask"};
    CHECK(em_tensor_dict_count(d) == 11);
    for (int i = 0; i < 11 && i < em_tensor_dict_count(d); i++)
        CHECKF(!strcmp(em_tensor_dict_name(d, i), order[i]), "entry %d: '%s' want '%s'", i,
               em_tensor_dict_name(d, i), order[i]);
    struct {
        const char *name;
        em_dtype dtype;
        int ndim;
        int64_t shape[2];
        const void *v;
        size_t n;
    } want[] = {
        {"weight", EM_F32, 2, {2, 3}, fx_weight, sizeof fx_weight},
        {"bias", EM_F64, 1, {3}, fx_bias, sizeof fx_bias},
        {"half", EM_F16, 1, {4}, fx_half, sizeof fx_half},
        {"bhalf", EM_BF16, 2, {2, 2}, fx_bhalf, sizeof fx_bhalf},
        {"ids", EM_I64, 1, {5}, fx_ids, sizeof fx_ids},
        {"counts", EM_I32, 2, {2, 2}, fx_counts, sizeof fx_counts},
        {"mask", EM_BOOL, 1, {3}, fx_mask, sizeof fx_mask},
        {"scalar", EM_F32, 0, {0}, &fx_scalar, sizeof fx_scalar},
        {"empty", EM_F32, 2, {0, 4}, NULL, 0},
        {"layers.0.attn.w", EM_F32, 2, {1, 1}, fx_layer, sizeof fx_layer},
        {FX_POIDS, EM_I32, 1, {1}, fx_poids, sizeof fx_poids},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        em_tensor *t = em_tensor_dict_get(d, want[i].name);
        CHECKF(tensor_is(t, want[i].dtype, want[i].ndim, want[i].shape, want[i].v, want[i].n), "fixture tensor %s",
               want[i].name);
        em_tensor_release(t);
        em_clear_error();
    }
    CHECK(em_tensor_dict_meta_count(d) == 2);
    const char *v = em_tensor_dict_get_meta(d, "format");
    CHECK(v && !strcmp(v, "pt"));
    v = em_tensor_dict_get_meta(d, "note");
    CHECKF(v && !strcmp(v, FX_NOTE), "note is '%s'", v ? v : "(null)");
}

static void test_fixtures(void)
{
    const char *names[] = {"torch_mixed.safetensors", "torch_plain.safetensors"};
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", EMBER_TEST_DATA_DIR, names[k]);
        em_tensor_dict *d = em_load_safetensors(path, NULL);
        CHECKF(d != NULL, "loading %s", path);
        if (!d) continue;
        size_t len;
        unsigned char *orig = read_all(path, &len);
        em_tensor_dict *m = orig ? em_load_safetensors_from_memory(orig, len, NULL) : NULL;
        CHECK(m != NULL);
        if (k == 0) {
            check_fixture_mixed(d);
            if (m) check_fixture_mixed(m);
        } else {
            double x[4] = {1, 2, 3, 4};
            em_tensor *t = em_tensor_dict_get(d, "x");
            CHECK(em_tensor_dict_count(d) == 1 && em_tensor_dict_meta_count(d) == 0);
            CHECK(tensor_is(t, EM_F64, 2, (int64_t[]){2, 2}, x, sizeof x));
            em_tensor_release(t);
        }
        /* Ember re-saving the loaded file writes exactly the reference's bytes. */
        const char *out = tpath("resaved.safetensors");
        CHECK_OK(em_save_safetensors(out, d));
        size_t l2;
        unsigned char *again = read_all(out, &l2);
        CHECKF(orig && again && len == l2 && !memcmp(orig, again, len),
               "%s re-saved by Ember differs from the reference writer's bytes (%zu vs %zu bytes)", names[k], len,
               l2);
        printf("fixture %s: %d tensors, %d metadata; re-saved byte-identical: %s\n", names[k],
               em_tensor_dict_count(d), em_tensor_dict_meta_count(d),
               orig && again && len == l2 && !memcmp(orig, again, len) ? "yes" : "NO");
        free(orig);
        free(again);
        unlink(out);
        em_tensor_dict_destroy(m);
        em_tensor_dict_destroy(d);
    }
}

/* The fixture script's EXPECTED table built from C values, some tensors
 * non-contiguous, saved to path (for make_safetensors_fixtures.py check). */
static em_status write_expected(const char *path)
{
    em_tensor_dict *d = em_tensor_dict_create();
    /* weight [2, 3] as the transpose of a [3, 2] tensor */
    float wt[6] = {fx_weight[0], fx_weight[3], fx_weight[1], fx_weight[4], fx_weight[2], fx_weight[5]};
    em_tensor *w3 = em_tensor_from_data(wt, EM_F32, EM_SHAPE(3, 2), NULL);
    em_tensor *w = em_transpose(w3, 0, 1);
    /* ids [5] as every other element of a [10] tensor */
    int64_t ids2[10];
    for (int i = 0; i < 10; i++) ids2[i] = i % 2 ? 99 : fx_ids[i / 2];
    em_tensor *i10 = em_tensor_from_data(ids2, EM_I64, EM_SHAPE(10), NULL);
    em_tensor *ids = em_slice(i10, 0, 0, 10, 2);
    em_tensor *ts[] = {
        w,
        em_tensor_from_data(fx_bias, EM_F64, EM_SHAPE(3), NULL),
        em_tensor_from_data(fx_half, EM_F16, EM_SHAPE(4), NULL),
        em_tensor_from_data(fx_bhalf, EM_BF16, EM_SHAPE(2, 2), NULL),
        ids,
        em_tensor_from_data(fx_counts, EM_I32, EM_SHAPE(2, 2), NULL),
        em_tensor_from_data(fx_mask, EM_BOOL, EM_SHAPE(3), NULL),
        em_tensor_from_data(&fx_scalar, EM_F32, 0, NULL, NULL),
        em_zeros(EM_F32, EM_SHAPE(0, 4), NULL),
        em_tensor_from_data(fx_layer, EM_F32, EM_SHAPE(1, 1), NULL),
        em_tensor_from_data(fx_poids, EM_I32, EM_SHAPE(1), NULL),
    };
    const char *names[] = {"weight", "bias", "half", "bhalf", "ids", "counts", "mask", "scalar", "empty",
                           "layers.0.attn.w", FX_POIDS};
    for (int i = 0; i < 11; i++) em_tensor_dict_set(d, names[i], ts[i]);
    em_tensor_dict_set_meta(d, "format", "pt");
    em_tensor_dict_set_meta(d, "note", FX_NOTE);
    em_status st = em_save_safetensors(path, d);
    for (int i = 0; i < 11; i++) em_tensor_release(ts[i]);
    em_tensor_release(w3);
    em_tensor_release(i10);
    em_tensor_dict_destroy(d);
    return st;
}

static void test_write_expected(void)
{
    /* The --write output loads back in Ember with the fixture's values. */
    const char *p = tpath("expected.safetensors");
    CHECK_OK(write_expected(p));
    em_tensor_dict *d = em_load_safetensors(p, NULL);
    CHECK(d != NULL);
    if (d) {
        struct {
            const char *name;
            em_dtype dtype;
            int ndim;
            int64_t shape[2];
            const void *v;
            size_t n;
        } want[] = {{"weight", EM_F32, 2, {2, 3}, fx_weight, sizeof fx_weight},
                    {"ids", EM_I64, 1, {5}, fx_ids, sizeof fx_ids},
                    {"mask", EM_BOOL, 1, {3}, fx_mask, sizeof fx_mask},
                    {"empty", EM_F32, 2, {0, 4}, NULL, 0}};
        for (int i = 0; i < 4; i++) {
            em_tensor *t = em_tensor_dict_get(d, want[i].name);
            CHECKF(tensor_is(t, want[i].dtype, want[i].ndim, want[i].shape, want[i].v, want[i].n), "--write %s",
                   want[i].name);
            em_tensor_release(t);
        }
    }
    em_tensor_dict_destroy(d);
    unlink(p);
}

/* ------------------------------------------------------------------------ */
/* Validation errors, one byte buffer each                                   */
/* ------------------------------------------------------------------------ */

#define T1(dtype, shape, offs) "{\"t\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}}"

static void test_validation(void)
{
    const em_status IO = EM_ERR_IO;
    /* The length field. */
    {
        image im = mk_raw("", 0, 0, NULL, 0);
        im.len = 0;
        EXPECT_FAIL("empty file", im, IO, "0 bytes is shorter than the 8-byte");
    }
    {
        image im = mk_raw("", 0, 0, NULL, 0);
        im.len = 7;
        im.p = realloc(im.p, 7);
        memset(im.p, 0, 7);
        EXPECT_FAIL("7-byte file", im, IO, "7 bytes is shorter");
    }
    EXPECT_FAIL("header length > 100 MB", mk_raw("{}", 2, 100000001, NULL, 0), IO, "100000001",
                "larger than the limit of 100000000");
    EXPECT_FAIL("header length 2^64-1", mk_raw("{}", 2, UINT64_MAX, NULL, 0), IO, "18446744073709551615",
                "larger than the limit");
    EXPECT_FAIL("header length past EOF", mk_raw("{}", 2, 3, NULL, 0), IO, "header length 3",
                "past the end of the file (10 bytes)");
    EXPECT_FAIL("header length 0", mk_raw("", 0, 0, "\0", 1), IO, "header is empty");

    /* JSON. */
    EXPECT_FAIL("not an object", mk("[]", 0), IO, "must be a JSON object, found byte 0x5b ('[') at file offset 8");
    EXPECT_FAIL("a string, not an object", mk(" \"a\"", 0), IO, "must be a JSON object", "at file offset 9");
    EXPECT_FAIL("only whitespace", mk("  \n ", 0), IO, "only whitespace");
    EXPECT_FAIL("unclosed object", mk("{", 0), IO, "invalid JSON header at file offset 9", "expected a string");
    EXPECT_FAIL("missing value", mk("{\"a\":}", 0), IO, "tensor 'a': expected an object");
    EXPECT_FAIL("missing colon", mk("{\"a\" 1}", 0), IO, "expected ':' after a key");
    EXPECT_FAIL("unterminated string", mk("{\"abc", 0), IO, "unterminated string");
    EXPECT_FAIL("bad escape", mk("{\"a\\x\":1}", 0), IO, "invalid escape");
    EXPECT_FAIL("bad \\u escape", mk("{\"a\\u12G4\":1}", 0), IO, "invalid \\u escape");
    EXPECT_FAIL("lone low surrogate", mk("{\"a\\udc00\":1}", 0), IO, "lone low surrogate");
    EXPECT_FAIL("lone high surrogate", mk("{\"a\\ud800x\":1}", 0), IO, "high surrogate not followed");
    EXPECT_FAIL("high + high surrogate", mk("{\"a\\ud800\\ud800\":1}", 0), IO, "high surrogate not followed");
    EXPECT_FAIL("raw control character", mk("{\"a\tb\":1}", 0), IO, "control character in a string");
    EXPECT_FAIL("invalid UTF-8", mk("{\"a\xff\":1}", 0), IO, "not valid UTF-8 (byte 0xff at file offset 11)");
    EXPECT_FAIL("overlong UTF-8", mk("{\"\xc0\xaf\":1}", 0), IO, "not valid UTF-8");
    EXPECT_FAIL("UTF-8 surrogate", mk("{\"\xed\xa0\x80\":1}", 0), IO, "not valid UTF-8");
    EXPECT_FAIL("trailing comma", mk("{\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},}", 4), IO,
                "expected a string");
    EXPECT_FAIL("garbage after object", mk("{}x", 0), IO, "1 unexpected bytes after the header's JSON object");
    EXPECT_FAIL("NUL padding", mk_raw("{}\0\0\0\0\0\0", 8, 8, NULL, 0), IO, "6 unexpected bytes");
    EXPECT_FAIL("two objects", mk("{}{}", 0), IO, "unexpected bytes");
    {
        /* Nesting 100 deep inside an ignored key. */
        char h[512];
        int n = snprintf(h, sizeof h, "{\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":");
        for (int i = 0; i < 100; i++) h[n++] = '[';
        for (int i = 0; i < 100; i++) h[n++] = ']';
        h[n++] = '}';
        h[n++] = '}';
        h[n] = 0;
        EXPECT_FAIL("nesting 100 deep", mk(h, 4), IO, "nesting deeper than 64 levels");
    }
    EXPECT_FAIL("invalid literal", mk("{\"t\":{\"x\":nul}}", 0), IO, "invalid literal");
    EXPECT_FAIL("bad number", mk("{\"t\":{\"x\":-}}", 0), IO, "expected a digit");
    EXPECT_FAIL("leading zero", mk("{\"t\":{\"x\":012}}", 0), IO, "leading zero");

    /* Names and metadata. */
    EXPECT_FAIL("duplicate name",
                mk("{\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                   "\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
                   8),
                IO, "duplicate tensor name 't'");
    EXPECT_FAIL("duplicate name via escape",
                mk("{\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                   "\"\\u0074\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
                   8),
                IO, "duplicate tensor name 't'");
    EXPECT_FAIL("empty name", mk("{\"\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4),
                EM_ERR_UNSUPPORTED, "a tensor name is empty, which Ember cannot represent");
    EXPECT_FAIL("NUL in name", mk("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4),
                EM_ERR_UNSUPPORTED, "contains a NUL character");
    EXPECT_FAIL("metadata twice", mk("{\"__metadata__\":{},\"__metadata__\":{}}", 0), IO,
                "\"__metadata__\" appears twice");
    EXPECT_FAIL("metadata not an object", mk("{\"__metadata__\":[1]}", 0), IO,
                "\"__metadata__\" must be an object of strings");
    EXPECT_FAIL("metadata value not a string", mk("{\"__metadata__\":{\"k\":1}}", 0), IO,
                "\"__metadata__\" entry 'k' is not a string");
    EXPECT_FAIL("duplicate metadata key", mk("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0), IO,
                "duplicate \"__metadata__\" key 'k'");
    EXPECT_FAIL("NUL in metadata", mk("{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0), EM_ERR_UNSUPPORTED,
                "NUL character");

    /* Tensor entries. */
    EXPECT_FAIL("entry not an object", mk("{\"t\":[1]}", 0), IO, "tensor 't': expected an object");
    EXPECT_FAIL("no dtype", mk("{\"t\":{\"shape\":[],\"data_offsets\":[0,4]}}", 4), IO, "tensor 't' has no \"dtype\"");
    EXPECT_FAIL("no shape", mk("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), IO,
                "tensor 't' has no \"shape\"");
    EXPECT_FAIL("no data_offsets", mk("{\"t\":{\"dtype\":\"F32\",\"shape\":[]}}", 4), IO,
                "tensor 't' has no \"data_offsets\"");
    EXPECT_FAIL("dtype twice", mk("{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4),
                IO, "\"dtype\" given twice");
    EXPECT_FAIL("unknown dtype", mk(T1("F31", "[]", "[0,4]"), 4), IO, "tensor 't': unknown dtype \"F31\"");
    EXPECT_FAIL("lower-case dtype", mk(T1("f32", "[]", "[0,4]"), 4), IO, "unknown dtype \"f32\"");
    EXPECT_FAIL("dtype not a string", mk("{\"t\":{\"dtype\":4,\"shape\":[],\"data_offsets\":[0,4]}}", 4), IO,
                "\"dtype\" must be a string");
    EXPECT_FAIL("U8 (no Ember dtype)", mk(T1("U8", "[4]", "[0,4]"), 4), EM_ERR_UNSUPPORTED,
                "tensor 't': dtype U8 has no Ember equivalent");
    EXPECT_FAIL("F8_E4M3 (no Ember dtype)", mk(T1("F8_E4M3", "[4]", "[0,4]"), 4), EM_ERR_UNSUPPORTED, "F8_E4M3");
    EXPECT_FAIL("shape not a list", mk(T1("F32", "3", "[0,12]"), 12), IO,
                "tensor 't': \"shape\" must be a list of non-negative integers");
    EXPECT_FAIL("negative dim", mk(T1("F32", "[2,-1]", "[0,8]"), 8), IO, "entry 1 of \"shape\" is -1",
                "not a non-negative integer");
    EXPECT_FAIL("fractional dim", mk(T1("F32", "[1.5]", "[0,4]"), 4), IO, "entry 0 of \"shape\" is 1.5");
    EXPECT_FAIL("exponent dim", mk(T1("F32", "[1e0]", "[0,4]"), 4), IO, "is 1e0");
    EXPECT_FAIL("string dim", mk(T1("F32", "[\"2\"]", "[0,8]"), 8), IO, "entry 0 of \"shape\" is not a number");
    EXPECT_FAIL("dim overflows u64", mk(T1("F32", "[99999999999999999999]", "[0,4]"), 4), IO,
                "is 99999999999999999999");
    EXPECT_FAIL("dim 2^63", mk(T1("F32", "[9223372036854775808]", "[0,4]"), 4), IO, "below 2^63");
    EXPECT_FAIL("9 dims", mk(T1("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4), EM_ERR_UNSUPPORTED,
                "tensor 't' has 9 dimensions; Ember supports at most 8");
    EXPECT_FAIL("numel overflow", mk(T1("F32", "[4294967296,4294967296,0]", "[0,0]"), 0), IO,
                "shape [4294967296, 4294967296, 0] has too many elements");
    EXPECT_FAIL("bytes overflow", mk(T1("I64", "[1152921504606846976,16]", "[0,0]"), 0), IO, "too many elements");
    EXPECT_FAIL("offsets not a list", mk(T1("F32", "[]", "4"), 4), IO, "\"data_offsets\" must be a list");
    EXPECT_FAIL("one offset", mk(T1("F32", "[]", "[4]"), 4), IO, "\"data_offsets\" has 1 entries, must be [begin, end]");
    EXPECT_FAIL("three offsets", mk(T1("F32", "[]", "[0,4,8]"), 8), IO, "has 3 entries");
    EXPECT_FAIL("negative offset", mk(T1("F32", "[]", "[-4,0]"), 4), IO, "entry 0 of \"data_offsets\" is -4");
    EXPECT_FAIL("end before begin", mk(T1("F32", "[0]", "[4,0]"), 4), IO, "data_offsets [4, 0] end before they begin");
    EXPECT_FAIL("size mismatch", mk(T1("F32", "[2,3]", "[0,20]"), 20), IO,
                "tensor 't': F32 [2, 3] needs 24 bytes but data_offsets [0, 20] hold 20");
    EXPECT_FAIL("past the data area", mk(T1("F32", "[2]", "[4,12]"), 8), IO,
                "data_offsets [4, 12] reach past the data area of 8 bytes");
    EXPECT_FAIL("huge offsets", mk(T1("F32", "[2]", "[9223372036854775800,9223372036854775808]"), 8), IO,
                "below 2^63");
    EXPECT_FAIL("overlap",
                mk("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   12),
                IO, "tensor 'b' at data_offsets [4, 12] overlaps tensor 'a' at [0, 8]");
    EXPECT_FAIL("same offsets twice",
                mk("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                   8),
                IO, "overlaps tensor 'a'");
    EXPECT_FAIL("empty tensor inside another",
                mk("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                   8),
                IO, "tensor 'e' at data_offsets [4, 4] overlaps tensor 'a' at [0, 8]");
    EXPECT_FAIL("hole",
                mk("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                   16),
                IO, "bytes [8, 12) of the data area belong to no tensor", "after 'a'", "before 'b' at [12, 16]");
    EXPECT_FAIL("hole at start", mk(T1("F32", "[1]", "[4,8]"), 8), IO, "bytes [0, 4) of the data area belong to no tensor");
    EXPECT_FAIL("trailing bytes", mk(T1("F32", "[1]", "[0,4]"), 7), IO,
                "3 trailing bytes: the tensors end at data offset 4 but the data area has 7 bytes");
    EXPECT_FAIL("data but no tensors", mk("{}", 1), IO, "1 trailing bytes");

    /* Valid corner cases. */
    em_tensor_dict *d;
    {
        /* BOOL bytes other than 0/1 are true, as NumPy and PyTorch read them;
         * the input buffer is not modified. */
        unsigned char data[4] = {1, 2, 0, 255};
        const char *h = T1("BOOL", "[4]", "[0,4]");
        image im = mk_raw(h, strlen(h), strlen(h), data, 4);
        d = EXPECT_OK("BOOL bytes 2 and 255", im);
        uint8_t want[4] = {1, 1, 0, 1};
        em_tensor *t = d ? em_tensor_dict_get(d, "t") : NULL;
        CHECK(tensor_is(t, EM_BOOL, 1, (int64_t[]){4}, want, 4));
        CHECK(im.p[im.len - 3] == 2 && im.p[im.len - 1] == 255);
        em_tensor_release(t);
        em_tensor_dict_destroy(d);
        free(im.p);
    }
    {
        image im = mk(" \n\t{}", 0);
        d = EXPECT_OK("leading whitespace", im);
        free(im.p);
        em_tensor_dict_destroy(d);
    }
    {
        image im = mk("{}", 0);
        d = EXPECT_OK("empty object", im);
        free(im.p);
    }
    CHECK(d && em_tensor_dict_count(d) == 0);
    em_tensor_dict_destroy(d);
    {
        image im = mk("{\"__metadata__\":null,\"t\":{\"data_offsets\":[0,8],\"x\":{\"y\":[1,2.5e-3,true,false,null,\"s\\n\"]},"
                      "\"shape\":[2],\"dtype\":\"I32\"}}",
                      8);
        d = EXPECT_OK("null metadata, extra keys, any field order", im);
        free(im.p);
        CHECK(d && em_tensor_dict_count(d) == 1 && em_tensor_dict_meta_count(d) == 0);
        em_tensor_dict_destroy(d);
    }
    {
        const char *h = "{ \"a\\u00e9\\ud83d\\ude00\\/\\\"\" : { \"dtype\" : \"BOOL\" ,\n\t\"shape\" : [ 2 ] , "
                        "\"data_offsets\" : [ 0 , 2 ] } }\n\t\r    ";
        image im = mk(h, 2);
        d = EXPECT_OK("whitespace everywhere, escaped name", im);
        free(im.p);
        CHECK(d && em_tensor_dict_has(d, "a\xc3\xa9\xf0\x9f\x98\x80/\""));
        em_tensor_dict_destroy(d);
    }
    {
        image im = mk("{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                      "\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[4,6]},"
                      "\"e\":{\"dtype\":\"I64\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                      "\"h\":{\"dtype\":\"F32\",\"shape\":[65536,65536,0],\"data_offsets\":[6,6]}}",
                      6);
        d = EXPECT_OK("offsets out of JSON order, empty tensors sharing an offset", im);
        free(im.p);
        CHECK(d && em_tensor_dict_count(d) == 5 && !strcmp(em_tensor_dict_name(d, 0), "z") &&
              !strcmp(em_tensor_dict_name(d, 4), "h"));
        if (d) {
            em_tensor *h = em_tensor_dict_get(d, "h");
            CHECK(h && em_tensor_numel(h) == 0 && em_tensor_ndim(h) == 3);
            em_tensor_release(h);
        }
        em_tensor_dict_destroy(d);
    }
    unlink(tpath("corrupt.safetensors"));
}

/* ------------------------------------------------------------------------ */
/* Truncation and byte flips                                                 */
/* ------------------------------------------------------------------------ */

static void test_corruption(void)
{
    /* A valid file with several dtypes and metadata, written by Ember. */
    em_tensor_dict *d = em_tensor_dict_create();
    em_tensor *a = em_arange(0, 6, 1, EM_F32, NULL);
    em_tensor *b = em_ones(EM_BOOL, EM_SHAPE(2, 2), NULL);
    em_tensor *c = em_arange(0, 3, 1, EM_I64, NULL);
    em_tensor *h = em_full(0.5, EM_BF16, EM_SHAPE(3), NULL);
    em_tensor *z = em_zeros(EM_F16, EM_SHAPE(0), NULL);
    em_tensor_dict_set(d, "a", a);
    em_tensor_dict_set(d, "mask", b);
    em_tensor_dict_set(d, "idx", c);
    em_tensor_dict_set(d, "half", h);
    em_tensor_dict_set(d, "zero", z);
    em_tensor_dict_set_meta(d, "k", "v\\\"\xc3\xa9");
    char path[1024];
    snprintf(path, sizeof path, "%s", tpath("valid.safetensors"));
    CHECK_OK(em_save_safetensors(path, d));
    size_t len = 0;
    unsigned char *valid = read_all(path, &len);
    CHECK(valid != NULL);
    em_tensor_dict *ok = valid ? em_load_safetensors_from_memory(valid, len, NULL) : NULL;
    CHECK(ok && em_tensor_dict_count(ok) == 5);
    em_tensor_dict_destroy(ok);

    /* Every proper prefix fails cleanly (memory), and some through files. */
    int prefix_fail = 0;
    for (size_t n = 0; valid && n < len; n++) {
        em_clear_error();
        unsigned char *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
        memcpy(copy, valid, n);
        em_tensor_dict *r = em_load_safetensors_from_memory(n ? copy : NULL, n, NULL);
        if (!r && em_last_status() == EM_ERR_IO && em_last_error()[0]) prefix_fail++;
        else tu_report_fail(__FILE__, __LINE__, "prefix of %zu of %zu bytes: %s", n, len, r ? "loaded" : em_last_error());
        em_tensor_dict_destroy(r);
        if (n % 37 == 0 || n == len - 1) {
            char *tp = tpath("prefix.safetensors");
            write_bytes(tp, copy, n);
            em_clear_error();
            r = em_load_safetensors(tp, NULL);
            CHECKF(!r && em_last_status() == EM_ERR_IO, "file prefix of %zu bytes", n);
            em_tensor_dict_destroy(r);
        }
        free(copy);
    }
    CHECK(prefix_fail == (int)len);
    printf("truncation: all %zu prefixes of a %zu-byte file fail with EM_ERR_IO\n", len, len);

    /* Random byte flips of that file and of the reference fixture. */
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/torch_mixed.safetensors", EMBER_TEST_DATA_DIR);
    size_t flen = 0;
    unsigned char *fixture = read_all(fx, &flen);
    CHECK(fixture != NULL);
    int loaded = 0, failed = 0, iters = 3000;
    for (int it = 0; it < iters && valid && fixture; it++) {
        const unsigned char *src = it % 2 ? fixture : valid;
        size_t n = it % 2 ? flen : len;
        unsigned char *m = malloc(n);
        memcpy(m, src, n);
        int flips = 1 + (int)(tu_next_u64() % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = tu_next_u64() % n;
            /* Header bytes most of the time: that is where the parser is. */
            if (tu_next_u64() % 4 && n > 8) pos = tu_next_u64() % (n < 200 ? n : 200);
            switch (tu_next_u64() % 3) {
            case 0: m[pos] ^= (unsigned char)(1u << (tu_next_u64() % 8)); break;
            case 1: m[pos] = (unsigned char)tu_next_u64(); break;
            default: m[pos] = "{}[]\",:0-\\u9e. "[tu_next_u64() % 16]; break;
            }
        }
        em_clear_error();
        em_tensor_dict *r = em_load_safetensors_from_memory(m, n, NULL);
        if (r) {
            loaded++;
            /* Whatever loaded must be usable. */
            for (int i = 0; i < em_tensor_dict_count(r); i++) {
                em_tensor *t = em_tensor_dict_at(r, i);
                double *v = tu_read(t);
                free(v);
                em_tensor_release(t);
            }
        } else {
            failed++;
            if (em_last_status() == EM_OK || !em_last_error()[0])
                tu_report_fail(__FILE__, __LINE__, "flip %d: NULL without an error", it);
        }
        em_tensor_dict_destroy(r);
        free(m);
    }
    CHECK(loaded + failed == iters);
    printf("byte flips: %d mutated files, %d loaded, %d refused with a message\n", iters, loaded, failed);
    em_clear_error();

    free(fixture);
    free(valid);
    unlink(path);
    unlink(tpath("prefix.safetensors"));
    em_tensor_release(a);
    em_tensor_release(b);
    em_tensor_release(c);
    em_tensor_release(h);
    em_tensor_release(z);
    em_tensor_dict_destroy(d);
}

/* ------------------------------------------------------------------------ */
/* Arguments, devices, scopes                                                */
/* ------------------------------------------------------------------------ */

static void test_api_edges(void)
{
    em_tensor_dict *d = em_tensor_dict_create();
    em_tensor *t = em_ones(EM_F32, EM_SHAPE(2), NULL);
    em_tensor_dict_set(d, "t", t);
    CHECK_STATUS(em_save_safetensors(NULL, d), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_save_safetensors(tpath("x"), NULL), EM_ERR_NULL_ARG);
    CHECK_STATUS(em_save_safetensors("", d), EM_ERR_INVALID_ARG);

    em_tensor_dict *bad = em_tensor_dict_create();
    em_tensor_dict_set(bad, "__metadata__", t);
    CHECK_STATUS(em_save_safetensors(tpath("bad.safetensors"), bad), EM_ERR_INVALID_ARG);
    em_tensor_dict_destroy(bad);
    bad = em_tensor_dict_create();
    em_tensor_dict_set(bad, "bad\xff", t);
    CHECK_STATUS(em_save_safetensors(tpath("bad.safetensors"), bad), EM_ERR_INVALID_ARG);
    em_tensor_dict_destroy(bad);
    bad = em_tensor_dict_create();
    em_tensor_dict_set(bad, "ok", t);
    em_tensor_dict_set_meta(bad, "k", "\xc3");
    CHECK_STATUS(em_save_safetensors(tpath("bad.safetensors"), bad), EM_ERR_INVALID_ARG);
    em_tensor_dict_destroy(bad);
    int tmps = 0;
    CHECK(count_entries(tmpdir, &tmps) == 0);

    em_clear_error();
    CHECK(em_load_safetensors(NULL, NULL) == NULL && em_last_status() == EM_ERR_NULL_ARG);
    em_clear_error();
    CHECK(em_load_safetensors(tpath("missing.safetensors"), NULL) == NULL && em_last_status() == EM_ERR_IO &&
          strstr(em_last_error(), "cannot open: No such file"));
    em_clear_error();
    CHECK(em_load_safetensors(tmpdir, NULL) == NULL && em_last_status() == EM_ERR_IO &&
          strstr(em_last_error(), "not a regular file"));
    em_clear_error();
    CHECK(em_load_safetensors_from_memory(NULL, 5, NULL) == NULL && em_last_status() == EM_ERR_NULL_ARG);
    em_clear_error();
    CHECK(em_load_safetensors_from_memory(NULL, 0, NULL) == NULL && em_last_status() == EM_ERR_IO);
    em_clear_error();

    /* Explicit device; loading inside a scope leaves the dictionary owning. */
    const char *p = tpath("dev.safetensors");
    CHECK_OK(em_save_safetensors(p, d));
    em_device *cpu = em_device_cpu();
    CHECK_OK(em_scope_begin());
    em_tensor_dict *l = em_load_safetensors(p, cpu);
    CHECK_OK(em_scope_end());
    CHECK(l != NULL);
    if (l) {
        em_tensor *x = em_tensor_dict_get(l, "t");
        float want[2] = {1, 1};
        CHECK(tensor_is(x, EM_F32, 1, (int64_t[]){2}, want, sizeof want) && em_tensor_device(x) == cpu);
        em_tensor_release(x);
    }
    em_tensor_dict_destroy(l);

    /* Saving inside a scope, and repeated load/destroy without heap growth. */
    CHECK_OK(em_scope_begin());
    CHECK_OK(em_save_safetensors(p, d));
    CHECK_OK(em_scope_end());
    size_t before = 0;
    for (int i = 0; i < 300; i++) {
        if (i == 50) before = tu_heap_in_use();
        em_tensor_dict *x = em_load_safetensors(p, NULL);
        em_tensor_dict_destroy(x);
        em_clear_error();
        x = em_load_safetensors_from_memory("\x02\0\0\0\0\0\0\0{x", 10, NULL); /* a failing one */
        em_tensor_dict_destroy(x);
        em_clear_error();
    }
    size_t after = tu_heap_in_use();
    CHECKF(after <= before + 4096, "heap grew by %zd bytes over 250 load/destroy pairs", (ssize_t)(after - before));
    unlink(p);
    em_tensor_release(t);
    em_tensor_dict_destroy(d);
}

/* ------------------------------------------------------------------------ */
/* The atomic save                                                           */
/* ------------------------------------------------------------------------ */

static void test_atomic(void)
{
    em_tensor_dict *small = em_tensor_dict_create();
    em_tensor *s = em_full(1.5, EM_F32, EM_SHAPE(4), NULL);
    em_tensor_dict_set(small, "s", s);
    em_tensor_dict *big = em_tensor_dict_create();
    em_tensor *bt = em_full(2.0, EM_F64, EM_SHAPE(64, 1024), NULL); /* 512 KiB */
    em_tensor_dict_set(big, "big", bt);
    int tmps;

    /* A folder that does not exist: fails, creates nothing. */
    em_clear_error();
    em_status st = em_save_safetensors(tpath("nope/x.safetensors"), small);
    CHECKF(st == EM_ERR_IO && strstr(em_last_error(), "cannot create the temporary file") &&
               strstr(em_last_error(), "No such file or directory"),
           "save into a missing folder: %s", em_last_error());
    printf("missing folder -> %s\n", em_last_error());
    em_clear_error();
    CHECK(count_entries(tmpdir, &tmps) == 0);

    /* A read-only folder (only meaningful when not root). */
    const char *ro = tpath("readonly");
    mkdir(ro, 0755);
    chmod(ro, 0555);
    if (access(ro, W_OK) == 0) {
        printf("read-only folder: skipped (running as root, permissions are not enforced)\n");
    } else {
        char p[1024];
        snprintf(p, sizeof p, "%s/x.safetensors", ro);
        CHECK_STATUS(em_save_safetensors(p, small), EM_ERR_IO);
        CHECK(count_entries(ro, NULL) == 0);
    }
    chmod(ro, 0755);
    rmdir(ro);

    /* The target is a non-empty folder: the rename fails after the data was
     * written; the temporary file is removed and the folder is untouched. */
    const char *dt = tpath("target_is_a_dir");
    mkdir(dt, 0755);
    char inner[1024];
    snprintf(inner, sizeof inner, "%s/keep", dt);
    write_bytes(inner, "keep", 4);
    em_clear_error();
    st = em_save_safetensors(dt, small);
    CHECKF(st == EM_ERR_IO && strstr(em_last_error(), "renaming the temporary file"), "rename failure: %s",
           em_last_error());
    printf("rename failure -> %s\n", em_last_error());
    em_clear_error();
    CHECK(count_entries(tmpdir, &tmps) == 1 && tmps == 0);
    CHECK(count_entries(dt, NULL) == 1);
    remove_tree(dt);

    /* A good file, then a save over it whose write fails half-way (the file
     * size limit makes write() fail with EFBIG): the old file stays intact. */
    const char *good = tpath("good.safetensors");
    CHECK_OK(em_save_safetensors(good, small));
    size_t glen;
    unsigned char *gbytes = read_all(good, &glen);
    struct rlimit old_lim, lim;
    getrlimit(RLIMIT_FSIZE, &old_lim);
    lim = old_lim;
    lim.rlim_cur = 64 * 1024;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        em_clear_error();
        st = em_save_safetensors(good, big);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", em_last_error());
        setrlimit(RLIMIT_FSIZE, &old_lim);
        CHECKF(st == EM_ERR_IO && strstr(msg, "writing the temporary file"), "failing write: %s", msg);
        printf("failing write -> %s\n", msg);
        size_t l2;
        unsigned char *now = read_all(good, &l2);
        CHECK(now && gbytes && l2 == glen && !memcmp(now, gbytes, glen));
        free(now);
        CHECK(count_entries(tmpdir, &tmps) == 1 && tmps == 0);
        em_tensor_dict *still = em_load_safetensors(good, NULL);
        CHECK(still && em_tensor_dict_has(still, "s"));
        em_tensor_dict_destroy(still);
    } else {
        printf("failing write: skipped (setrlimit: %s)\n", strerror(errno));
    }
    signal(SIGXFSZ, old_handler);
    em_clear_error();
    free(gbytes);

    /* A successful replace keeps the permission bits of the old file; a new
     * file gets 0666 minus the umask. */
    chmod(good, 0640);
    CHECK_OK(em_save_safetensors(good, big));
    struct stat sb;
    CHECK(stat(good, &sb) == 0 && (sb.st_mode & 07777) == 0640);
    em_tensor_dict *l = em_load_safetensors(good, NULL);
    CHECK(l && em_tensor_dict_has(l, "big") && !em_tensor_dict_has(l, "s"));
    em_tensor_dict_destroy(l);
    unlink(good);
    mode_t um = umask(022);
    umask(um);
    const char *fresh = tpath("fresh.safetensors");
    CHECK_OK(em_save_safetensors(fresh, small));
    CHECK(stat(fresh, &sb) == 0 && (sb.st_mode & 07777) == (0666 & ~um));
    unlink(fresh);

    /* A relative path (no folder part). */
    char cwd[1024];
    if (getcwd(cwd, sizeof cwd) && chdir(tmpdir) == 0) {
        CHECK_OK(em_save_safetensors("relative.safetensors", small));
        l = em_load_safetensors("relative.safetensors", NULL);
        CHECK(l && em_tensor_dict_has(l, "s"));
        em_tensor_dict_destroy(l);
        unlink("relative.safetensors");
        CHECK(chdir(cwd) == 0);
    }
    CHECK(count_entries(tmpdir, &tmps) == 0);

    em_tensor_release(s);
    em_tensor_release(bt);
    em_tensor_dict_destroy(small);
    em_tensor_dict_destroy(big);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        em_status st = write_expected(argv[2]);
        if (st != EM_OK) {
            fprintf(stderr, "%s\n", em_last_error());
            return 1;
        }
        printf("wrote %s\n", argv[2]);
        return 0;
    }
    tu_init("test_safetensors");
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ember-st-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("cannot create a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    test_round_trip();
    test_exact_layout();
    test_fixtures();
    test_write_expected();
    test_validation();
    test_corruption();
    test_api_edges();
    test_atomic();
    remove_tree(tmpdir);
    return tu_finish();
}
