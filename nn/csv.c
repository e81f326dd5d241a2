/*
 * csv.c — numeric CSV files (optionally gzip-compressed) into a features
 * tensor and a labels tensor. Public API: ember_data.h (em_csv_read).
 *
 * The whole file is read into memory first (through `gzip -dc` for files
 * that start with the gzip magic bytes: the opened file becomes gzip's
 * standard input, started with posix_spawnp, so no shell parses the path
 * and no new library is linked), then parsed line by line with strtod_l in
 * the "C" locale. Not for quoted fields, strings or missing values.
 */
#define _GNU_SOURCE /* pipe2, strtod_l */
#include "ember_data.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

em_csv_options em_csv_options_default(void)
{
    em_csv_options o;
    memset(&o, 0, sizeof o);
    o.header = EM_CSV_HEADER_AUTO;
    o.delimiter = ',';
    o.label_column = -1;
    o.feature_dtype = EM_F32;
    o.label_dtype = EM_I64;
    o.device = NULL;
    return o;
}

/* ---------------- reading the bytes -------------------------------------- */

typedef struct byte_buf {
    char *data;
    size_t len, cap;
} byte_buf;

static bool buf_reserve(byte_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + extra + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return false;
    b->data = d;
    b->cap = cap;
    return true;
}

/* Appends everything readable from fd; returns 0, or an errno value (ENOMEM
 * for allocation failures). */
static int read_all_fd(int fd, byte_buf *b)
{
    for (;;) {
        if (!buf_reserve(b, 65536)) return ENOMEM;
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return 0;
        b->len += (size_t)n;
    }
}

/* Decompresses the open file fd with `gzip -dc` (fd as its stdin) into b. */
static em_status gunzip_fd(const char *path, int fd, byte_buf *b)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        int e = errno;
        if (out[0] >= 0) close(out[0]), close(out[1]);
        return em__fail(EM_ERR_IO, "em_csv_read: '%s': cannot create a pipe for gzip: %s", path,
                        strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* The child gets default SIGPIPE handling whatever the parent set. */
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_adddup2(&fa, fd, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    char *argv[] = {"gzip", "-dc", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gzip", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        close(out[0]);
        close(err[0]);
        return em__fail(EM_ERR_IO,
                        "em_csv_read: '%s' is gzip-compressed and `gzip -dc` could not be "
                        "started: %s (is gzip on PATH?)",
                        path, strerror(rc));
    }
    int rerr = read_all_fd(out[0], b);
    close(out[0]);
    byte_buf eb = {0};
    read_all_fd(err[0], &eb); /* gzip's message, small: read after stdout ends */
    close(err[0]);
    int status = 0;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    em_status st = EM_OK;
    if (eb.data) {
        eb.data[eb.len] = '\0';
        size_t n = strlen(eb.data);
        while (n && (eb.data[n - 1] == '\n' || eb.data[n - 1] == '\r')) eb.data[--n] = '\0';
        size_t lead = strspn(eb.data, "\r\n ");
        memmove(eb.data, eb.data + lead, n - lead + 1);
        for (char *c = eb.data; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' '; /* one line */
    }
    if (rerr == ENOMEM) {
        st = em__fail(EM_ERR_OUT_OF_MEMORY, "em_csv_read: '%s': out of host memory", path);
    } else if (rerr != 0) {
        st = em__fail(EM_ERR_IO, "em_csv_read: '%s': reading from gzip: %s", path,
                      strerror(rerr));
    } else if (w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        st = em__fail(EM_ERR_IO, "em_csv_read: '%s' is gzip-compressed and gzip is not on PATH",
                      path);
    } else if (w == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        /* gzip exits 2 on warnings (e.g. trailing garbage) after writing
         * the data: still a damaged file, so an error. */
        if (WIFEXITED(status))
            st = em__fail(EM_ERR_IO, "em_csv_read: '%s': `gzip -dc` failed (exit %d): %s", path,
                          WEXITSTATUS(status), eb.data && eb.data[0] ? eb.data : "no message");
        else
            st = em__fail(EM_ERR_IO, "em_csv_read: '%s': `gzip -dc` was killed by signal %d",
                          path, WTERMSIG(status));
    }
    /* w < 0 (ECHILD: the process ignores SIGCHLD) cannot tell the exit
     * status: the data read is used as is. */
    free(eb.data);
    return st;
}

static em_status read_file(const char *path, byte_buf *b)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return em__fail(EM_ERR_IO, "em_csv_read: cannot open '%s': %s", path, strerror(errno));
    unsigned char magic[2];
    ssize_t got;
    do {
        got = pread(fd, magic, 2, 0);
    } while (got < 0 && errno == EINTR);
    em_status st = EM_OK;
    if (got < 0) {
        st = em__fail(EM_ERR_IO, "em_csv_read: cannot read '%s': %s", path, strerror(errno));
    } else if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        st = gunzip_fd(path, fd, b);
    } else {
        int e = read_all_fd(fd, b);
        if (e == ENOMEM)
            st = em__fail(EM_ERR_OUT_OF_MEMORY, "em_csv_read: '%s': out of host memory", path);
        else if (e)
            st = em__fail(EM_ERR_IO, "em_csv_read: cannot read '%s': %s", path, strerror(e));
    }
    close(fd);
    if (st == EM_OK && !buf_reserve(b, 0))
        st = em__fail(EM_ERR_OUT_OF_MEMORY, "em_csv_read: '%s': out of host memory", path);
    if (st == EM_OK) b->data[b->len] = '\0';
    return st;
}

/* ---------------- parsing ------------------------------------------------ */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static double parse_double(const char *s, char **end)
{
    return c_locale ? strtod_l(s, end, c_locale) : strtod(s, end);
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* One line split into fields: [start, end) pointers of each field. */
typedef struct fields {
    const char **start, **end;
    int count, cap;
} fields;

static bool split_line(const char *line, const char *eol, char delim, fields *fs)
{
    fs->count = 0;
    const char *p = line;
    for (;;) {
        const char *q = p;
        while (q < eol && *q != delim) q++;
        if (fs->count == fs->cap) {
            int cap = fs->cap ? fs->cap * 2 : 64;
            const char **s = realloc(fs->start, sizeof *s * (size_t)cap);
            if (!s) return false;
            fs->start = s;
            const char **e = realloc(fs->end, sizeof *e * (size_t)cap);
            if (!e) return false;
            fs->end = e;
            fs->cap = cap;
        }
        fs->start[fs->count] = p;
        fs->end[fs->count] = q;
        fs->count++;
        if (q >= eol) return true;
        p = q + 1;
    }
}

/* Parses [s, e) as one number with optional blanks around it. */
static bool parse_field(const char *s, const char *e, double *v)
{
    while (s < e && is_blank(*s)) s++;
    while (e > s && is_blank(e[-1])) e--;
    if (s == e) return false;
    char tmp[128];
    size_t n = (size_t)(e - s);
    if (n >= sizeof tmp) return false; /* no number is that long */
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double x = parse_double(tmp, &end);
    if (end != tmp + n) return false;
    /* ERANGE: overflow gives +-HUGE_VAL (inf), underflow a tiny value; both kept. */
    *v = x;
    return true;
}

/* "'text'" for messages, shortened. */
static const char *quote_field(const char *s, const char *e, char *buf, size_t cap)
{
    size_t n = (size_t)(e - s);
    if (n > 40) snprintf(buf, cap, "'%.40s...'", s);
    else snprintf(buf, cap, "'%.*s'", (int)n, s);
    return buf;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

typedef struct dbuf {
    double *v;
    size_t len, cap;
} dbuf;

static bool dbuf_push(dbuf *d, double x)
{
    if (d->len == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4096;
        double *v = realloc(d->v, sizeof *v * cap);
        if (!v) return false;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->len++] = x;
    return true;
}

/* Converts n doubles to dtype into a new malloc'ed buffer. */
static void *convert(const double *v, size_t n, em_dtype dt)
{
    void *out = malloc((n ? n : 1) * em_dtype_size(dt));
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case EM_F32: ((float *)out)[i] = (float)v[i]; break;
        case EM_F64: ((double *)out)[i] = v[i]; break;
        case EM_I32: ((int32_t *)out)[i] = (int32_t)v[i]; break;
        default: ((int64_t *)out)[i] = (int64_t)v[i]; break;
        }
    }
    return out;
}

em_status em_csv_read(const char *path, const em_csv_options *opt, em_tensor **features,
                      em_tensor **labels)
{
    static const char *name = "em_csv_read";
    em_csv_options o = opt ? *opt : em_csv_options_default();
    bool want_label = o.label_column != EM_CSV_NO_LABEL;
    if (features) *features = NULL;
    if (labels) *labels = NULL;
    if (!path) return em__null_arg(name, "path");
    if (!features) return em__null_arg(name, "features");
    if (want_label && !labels) return em__null_arg(name, "labels");
    if (o.header != EM_CSV_HEADER_AUTO && o.header != EM_CSV_HEADER_NONE &&
        o.header != EM_CSV_HEADER_SKIP)
        return em__fail(EM_ERR_INVALID_ARG, "%s: invalid header mode %d", name, (int)o.header);
    char delim = o.delimiter ? o.delimiter : ',';
    if (delim == '\n' || delim == '\r' || delim == '"' || delim == '.' ||
        delim == '-' || delim == '+' || (delim >= '0' && delim <= '9') || delim == 'e' ||
        delim == 'E')
        return em__fail(EM_ERR_INVALID_ARG, "%s: delimiter %d cannot separate numbers", name,
                        (int)(unsigned char)delim);
    if (o.feature_dtype != EM_F32 && o.feature_dtype != EM_F64)
        return em__fail(EM_ERR_INVALID_ARG, "%s: feature_dtype must be f32 or f64, not %s", name,
                        em_dtype_name(o.feature_dtype));
    if (want_label && o.label_dtype != EM_I64 && o.label_dtype != EM_I32 &&
        o.label_dtype != EM_F32 && o.label_dtype != EM_F64)
        return em__fail(EM_ERR_INVALID_ARG, "%s: label_dtype must be i64, i32, f32 or f64, not %s",
                        name, em_dtype_name(o.label_dtype));
    bool int_labels = o.label_dtype == EM_I64 || o.label_dtype == EM_I32;
    double label_lim = o.label_dtype == EM_I32 ? 2147483648.0 : 9007199254740992.0; /* 2^31, 2^53 */
    pthread_once(&c_locale_once, make_c_locale);

    byte_buf b = {0};
    em_status st = read_file(path, &b);
    if (st != EM_OK) {
        free(b.data);
        return st;
    }
    const char *file = base_name(path);
    fields fs = {0};
    dbuf feat = {0}, lab = {0};
    int ncols = -1, label_col = -1, first_data_line = 0;
    int64_t rows = 0;
    long line_no = 0;
    bool header_pending = o.header != EM_CSV_HEADER_NONE;
    char q[64];
    const char *p = b.data, *end = b.data + b.len;
    if (b.len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p += 3;
    bool any_line = false;
    while (p < end && st == EM_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        line_no++;
        if (eol > p && eol[-1] == '\r') eol--;
        const char *s = p;
        while (s < eol && is_blank(*s)) s++;
        p = next;
        if (s == eol) continue; /* blank line */
        any_line = true;
        if (!split_line(s, eol, delim, &fs)) {
            st = em__fail(EM_ERR_OUT_OF_MEMORY, "%s: '%s': out of host memory", name, path);
            break;
        }
        if (header_pending) {
            header_pending = false;
            if (o.header == EM_CSV_HEADER_SKIP) continue;
            bool numeric = true;
            for (int c = 0; c < fs.count && numeric; c++) {
                double v;
                numeric = parse_field(fs.start[c], fs.end[c], &v);
            }
            if (!numeric) continue; /* AUTO: a header line */
        }
        if (ncols < 0) {
            ncols = fs.count;
            first_data_line = (int)line_no;
            if (want_label) {
                int lc = o.label_column < 0 ? ncols + o.label_column : o.label_column;
                if (lc < 0 || lc >= ncols) {
                    st = em__fail(EM_ERR_INDEX,
                                  "%s: %s:%ld: label_column %d is outside the row's %d columns",
                                  name, file, line_no, o.label_column, ncols);
                    break;
                }
                if (ncols < 2) {
                    st = em__fail(EM_ERR_IO,
                                  "%s: %s:%ld: a row of 1 column leaves no feature column "
                                  "besides the label",
                                  name, file, line_no);
                    break;
                }
                label_col = lc;
            }
        } else if (fs.count != ncols) {
            st = em__fail(EM_ERR_IO, "%s: %s:%ld: %d columns, expected %d (as on line %d)", name,
                          file, line_no, fs.count, ncols, first_data_line);
            break;
        }
        for (int c = 0; c < fs.count; c++) {
            double v;
            const char *fsb = fs.start[c], *fse = fs.end[c];
            if (!parse_field(fsb, fse, &v)) {
                const char *t = fsb;
                while (t < fse && is_blank(*t)) t++;
                if (t == fse)
                    st = em__fail(EM_ERR_IO, "%s: %s:%ld:%d: empty field", name, file, line_no,
                                  c + 1);
                else
                    st = em__fail(EM_ERR_IO, "%s: %s:%ld:%d: %s is not a number", name, file,
                                  line_no, c + 1, quote_field(fsb, fse, q, sizeof q));
                break;
            }
            bool ok;
            if (c == label_col) {
                if (int_labels && !(v == floor(v) && fabs(v) < label_lim)) {
                    st = em__fail(EM_ERR_IO,
                                  "%s: %s:%ld:%d: label %s is not a whole number in %s's range",
                                  name, file, line_no, c + 1, quote_field(fsb, fse, q, sizeof q),
                                  em_dtype_name(o.label_dtype));
                    break;
                }
                ok = dbuf_push(&lab, v);
            } else {
                ok = dbuf_push(&feat, v);
            }
            if (!ok) {
                st = em__fail(EM_ERR_OUT_OF_MEMORY, "%s: '%s': out of host memory", name, path);
                break;
            }
        }
        rows++;
    }
    if (st == EM_OK && rows == 0)
        st = em__fail(EM_ERR_IO, any_line ? "%s: '%s' has no data rows (only a header line)"
                                          : "%s: '%s' is empty",
                      name, path);
    free(fs.start);
    free(fs.end);
    free(b.data);

    if (st == EM_OK) {
        int64_t fcols = want_label ? ncols - 1 : ncols;
        void *fdata = convert(feat.v, feat.len, o.feature_dtype);
        void *ldata = want_label ? convert(lab.v, lab.len, o.label_dtype) : NULL;
        if (!fdata || (want_label && !ldata)) {
            st = em__fail(EM_ERR_OUT_OF_MEMORY, "%s: '%s': out of host memory", name, path);
        } else if ((st = em_scope_begin()) == EM_OK) {
            /* A private scope drops a half-made pair; kept tensors move on to
             * the caller's scope (or to the caller). */
            em_tensor *f = em_tensor_from_data(fdata, o.feature_dtype, EM_SHAPE(rows, fcols),
                                               o.device);
            em_tensor *l = want_label && f ? em_tensor_from_data(ldata, o.label_dtype,
                                                                 EM_SHAPE(rows), o.device)
                                           : NULL;
            if (!f || (want_label && !l)) {
                st = em_last_status() != EM_OK ? em_last_status() : EM_ERR_INTERNAL;
                em__error_prefix("%s: '%s': ", name, path);
            } else {
                *features = em_scope_keep(f);
                if (want_label) *labels = em_scope_keep(l);
                if (!*features || (want_label && !*labels)) {
                    st = em_last_status();
                    *features = NULL;
                    if (labels) *labels = NULL;
                }
            }
            em_status est = em_scope_end();
            if (st == EM_OK) st = est;
        }
        free(fdata);
        free(ldata);
    }
    free(feat.v);
    free(lab.v);
    return st;
}
