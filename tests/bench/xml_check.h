/*
 * xml_check.h — a small well-formedness checker for the SVG the benchmark
 * writes (header-only, for tests/bench/): balanced and properly nested
 * tags, quoted attributes, entities only of the five XML kinds or numeric,
 * one root element, no stray '<'. Not a validating parser.
 */
#ifndef EMBER_XML_CHECK_H
#define EMBER_XML_CHECK_H

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Returns 1 when text is well-formed; otherwise 0 with why filled. Counts
 * elements named `count_name` into *count (may be NULL). */
static int xml_well_formed(const char *s, char *why, size_t cap, const char *count_name, int *count)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    if (count) *count = 0;
    for (size_t i = 0; s[i];) {
        if (s[i] == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"};
            int ok = 0;
            for (int k = 0; k < 6 && !ok; k++) ok = !strncmp(s + i, ents[k], strlen(ents[k]));
            if (!ok) {
                snprintf(why, cap, "offset %zu: bare '&'", i);
                return 0;
            }
            i++;
            continue;
        }
        if (s[i] != '<') {
            if (s[i] == '>') {
                snprintf(why, cap, "offset %zu: stray '>'", i);
                return 0;
            }
            i++;
            continue;
        }
        if (!strncmp(s + i, "<?", 2)) {
            const char *e = strstr(s + i, "?>");
            if (!e) { snprintf(why, cap, "unterminated <?"); return 0; }
            i = (size_t)(e - s) + 2;
            continue;
        }
        if (!strncmp(s + i, "<!--", 4)) {
            const char *e = strstr(s + i, "-->");
            if (!e) { snprintf(why, cap, "unterminated comment"); return 0; }
            i = (size_t)(e - s) + 3;
            continue;
        }
        int closing = s[i + 1] == '/';
        i += closing ? 2 : 1;
        char name[32];
        size_t n = 0;
        while (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == ':') {
            if (n < sizeof name - 1) name[n++] = s[i];
            i++;
        }
        name[n] = '\0';
        if (!n) { snprintf(why, cap, "offset %zu: '<' without a tag name", i); return 0; }
        if (closing) {
            while (isspace((unsigned char)s[i])) i++;
            if (s[i] != '>') { snprintf(why, cap, "offset %zu: bad closing tag </%s", i, name); return 0; }
            i++;
            if (depth == 0 || strcmp(stack[depth - 1], name)) {
                snprintf(why, cap, "offset %zu: </%s> does not close <%s>", i, name, depth ? stack[depth - 1] : "(nothing)");
                return 0;
            }
            depth--;
            continue;
        }
        /* attributes */
        for (;;) {
            while (isspace((unsigned char)s[i])) i++;
            if (s[i] == '>' || (s[i] == '/' && s[i + 1] == '>')) break;
            size_t a = 0;
            while (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == ':') i++, a++;
            if (!a || s[i] != '=' || (s[i + 1] != '"' && s[i + 1] != '\'')) {
                snprintf(why, cap, "offset %zu: bad attribute in <%s>", i, name);
                return 0;
            }
            char q = s[i + 1];
            i += 2;
            while (s[i] && s[i] != q) {
                if (s[i] == '<') { snprintf(why, cap, "offset %zu: '<' in an attribute", i); return 0; }
                i++;
            }
            if (!s[i]) { snprintf(why, cap, "unterminated attribute in <%s>", name); return 0; }
            i++;
        }
        if (count && count_name && !strcmp(name, count_name)) (*count)++;
        if (depth == 0) roots++;
        if (s[i] == '/') {
            i += 2;
            continue;
        }
        i++;
        if (depth == 64) { snprintf(why, cap, "nested too deep"); return 0; }
        snprintf(stack[depth++], sizeof stack[0], "%s", name);
    }
    if (depth) { snprintf(why, cap, "<%s> never closed", stack[depth - 1]); return 0; }
    if (roots != 1) { snprintf(why, cap, "%d root elements", roots); return 0; }
    return 1;
}

#endif /* EMBER_XML_CHECK_H */
