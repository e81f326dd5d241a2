/*
 * bench_json.c — the little JSON the harness needs: a strict recursive
 * descent reader into a tree (for --compare and for merging the PyTorch
 * peer's output), string and number writers for the report writers, and a
 * whole-file reader. Depth is limited (64) so a hostile file cannot
 * exhaust the stack. Not a general JSON library: numbers are doubles,
 * \u escapes outside ASCII become '?'.
 */
#include "bench.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct jparser {
    const char *s;
    size_t pos;
    int depth;
    char *why;
    size_t cap;
    bool failed;
} jparser;

static void jfail(jparser *p, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = true;
    int line = 1;
    for (size_t i = 0; i < p->pos && p->s[i]; i++) line += p->s[i] == '\n';
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->why, p->cap, "line %d (offset %zu): %s", line, p->pos, msg);
}

static void skip_ws(jparser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

static bool parse_value(jparser *p, bench_json *out);

static char *parse_string(jparser *p)
{
    /* at the opening quote */
    p->pos++;
    size_t cap = 32, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        jfail(p, "out of memory");
        return NULL;
    }
    for (;;) {
        char ch = p->s[p->pos];
        if (ch == '\0') {
            jfail(p, "unterminated string");
            free(buf);
            return NULL;
        }
        if ((unsigned char)ch < 0x20) {
            jfail(p, "control character in a string");
            free(buf);
            return NULL;
        }
        p->pos++;
        if (ch == '"') break;
        if (ch == '\\') {
            char e = p->s[p->pos++];
            switch (e) {
            case '"': case '\\': case '/': ch = e; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = p->s[p->pos];
                    if (!isxdigit((unsigned char)h)) {
                        jfail(p, "bad \\u escape");
                        free(buf);
                        return NULL;
                    }
                    v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
                    p->pos++;
                }
                ch = v < 0x80 ? (char)v : '?';
                break;
            }
            default:
                jfail(p, "bad escape '\\%c'", e ? e : '0');
                free(buf);
                return NULL;
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                jfail(p, "out of memory");
                return NULL;
            }
            buf = nb;
        }
        buf[n++] = ch;
    }
    buf[n] = '\0';
    return buf;
}

static bool push_item(jparser *p, bench_json *arr, int *cap, const bench_json *item, char *key)
{
    if (arr->n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        bench_json *ni = realloc(arr->items, sizeof *ni * (size_t)nc);
        if (!ni) {
            jfail(p, "out of memory");
            return false;
        }
        arr->items = ni;
        if (arr->type == BJ_OBJ) {
            char **nk = realloc(arr->keys, sizeof *nk * (size_t)nc);
            if (!nk) {
                jfail(p, "out of memory");
                return false;
            }
            arr->keys = nk;
        }
        *cap = nc;
    }
    arr->items[arr->n] = *item;
    if (arr->type == BJ_OBJ) arr->keys[arr->n] = key;
    arr->n++;
    return true;
}

static void free_value(bench_json *j);

static bool parse_container(jparser *p, bench_json *out, bool obj)
{
    out->type = obj ? BJ_OBJ : BJ_ARR;
    p->pos++;
    if (++p->depth > 64) {
        jfail(p, "nested deeper than 64");
        return false;
    }
    int cap = 0;
    skip_ws(p);
    if (p->s[p->pos] == (obj ? '}' : ']')) {
        p->pos++;
        p->depth--;
        return true;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (obj) {
            if (p->s[p->pos] != '"') {
                jfail(p, "expected a string key");
                return false;
            }
            key = parse_string(p);
            if (!key) return false;
            skip_ws(p);
            if (p->s[p->pos] != ':') {
                jfail(p, "expected ':' after key \"%.40s\"", key);
                free(key);
                return false;
            }
            p->pos++;
        }
        bench_json item = {0};
        if (!parse_value(p, &item) || !push_item(p, out, &cap, &item, key)) {
            free_value(&item);
            free(key);
            return false;
        }
        skip_ws(p);
        char ch = p->s[p->pos];
        if (ch == ',') {
            p->pos++;
            continue;
        }
        if (ch == (obj ? '}' : ']')) {
            p->pos++;
            p->depth--;
            return true;
        }
        jfail(p, "expected ',' or '%c'", obj ? '}' : ']');
        return false;
    }
}

static bool parse_value(jparser *p, bench_json *out)
{
    skip_ws(p);
    const char *s = p->s + p->pos;
    memset(out, 0, sizeof *out);
    if (*s == '{') return parse_container(p, out, true);
    if (*s == '[') return parse_container(p, out, false);
    if (*s == '"') {
        out->type = BJ_STR;
        out->str = parse_string(p);
        return out->str != NULL;
    }
    if (!strncmp(s, "true", 4) || !strncmp(s, "false", 5)) {
        out->type = BJ_BOOL;
        out->num = *s == 't';
        p->pos += *s == 't' ? 4 : 5;
        return true;
    }
    if (!strncmp(s, "null", 4)) {
        out->type = BJ_NULL;
        p->pos += 4;
        return true;
    }
    if (*s == '-' || isdigit((unsigned char)*s)) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s) {
            jfail(p, "bad number");
            return false;
        }
        out->type = BJ_NUM;
        out->num = v;
        p->pos += (size_t)(end - s);
        return true;
    }
    jfail(p, *s ? "unexpected character '%c'" : "unexpected end of input", *s);
    return false;
}

static void free_value(bench_json *j)
{
    if (!j) return;
    free(j->str);
    for (int i = 0; i < j->n; i++) {
        free_value(&j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
}

bench_json *bench_json_parse(const char *text, char *why, size_t cap)
{
    jparser p = {text, 0, 0, why, cap, false};
    bench_json *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    if (parse_value(&p, j)) {
        skip_ws(&p);
        if (text[p.pos] != '\0') jfail(&p, "trailing characters after the value");
    }
    if (p.failed) {
        bench_json_free(j);
        return NULL;
    }
    return j;
}

void bench_json_free(bench_json *j)
{
    free_value(j);
    free(j);
}

const bench_json *bench_json_get(const bench_json *obj, const char *key)
{
    if (!obj || obj->type != BJ_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

double bench_json_num(const bench_json *obj, const char *key, double dflt)
{
    const bench_json *v = bench_json_get(obj, key);
    if (v && (v->type == BJ_NUM || v->type == BJ_BOOL)) return v->num;
    if (v && v->type == BJ_NULL) return NAN;
    return dflt;
}

const char *bench_json_str(const bench_json *obj, const char *key, const char *dflt)
{
    const bench_json *v = bench_json_get(obj, key);
    return v && v->type == BJ_STR ? v->str : dflt;
}

void bench_json_write_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

void bench_json_write_num(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}

char *bench_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len) *len = n;
    }
    return buf;
}
