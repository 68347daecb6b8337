/* Environment interpolation: a small single-pass expander over a growable
 * buffer. Values taken from the environment are never echoed in errors,
 * since they are how secrets reach the pipeline. */
#include "interp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int valid_name_char(char c, int first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

static int expand(const char *s, size_t len, int depth, struct buf *b, char *err, size_t errlen);

/* The '}' that closes the ${ at s, counting the ${...} nested in a default. */
static const char *closing_brace(const char *s)
{
    int depth = 0;
    for (const char *p = s + 2; *p; p++) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{')
            p += 2; /* a literal ${ */
        else if (p[0] == '$' && p[1] == '{')
            depth++, p++;
        else if (*p == '}' && depth-- == 0)
            return p;
    }
    return NULL;
}

/* Expands one ${...} starting at s (pointing at '$'); advances *consumed.
 * A default may itself hold references: ${A:-${B:-x}}. */
static int expand_one(const char *s, int depth, struct buf *b, size_t *consumed, char *err,
                      size_t errlen)
{
    const char *close = closing_brace(s);
    if (!close) {
        snprintf(err, errlen, "unterminated '${' (write $${ for a literal ${)");
        return -1;
    }
    const char *name = s + 2;
    size_t name_len = 0;
    while (name + name_len < close && valid_name_char(name[name_len], name_len == 0))
        name_len++;
    const char *rest = name + name_len;
    int has_default = rest + 1 < close && rest[0] == ':' && rest[1] == '-';
    if (name_len == 0 || (rest != close && !has_default)) {
        snprintf(err, errlen, "bad variable reference '%.*s': use ${NAME} or ${NAME:-default}",
                 (int)(close - s + 1), s);
        return -1;
    }
    char var[256];
    if (name_len >= sizeof var) {
        snprintf(err, errlen, "variable name too long");
        return -1;
    }
    memcpy(var, name, name_len);
    var[name_len] = '\0';
    const char *value = getenv(var);
    int rc;
    if (value)
        rc = buf_add(b, value, strlen(value));
    else if (has_default && depth >= 8) {
        snprintf(err, errlen, "variable defaults nested more than 8 deep");
        return -1;
    } else if (has_default) {
        if (expand(rest + 2, (size_t)(close - rest - 2), depth + 1, b, err, errlen) != 0)
            return -1;
        rc = 0;
    } else {
        snprintf(err, errlen,
                 "environment variable %s is not set (write ${%s:-default} to give a default)", var,
                 var);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *consumed = (size_t)(close - s + 1);
    return 0;
}

/* Appends the expansion of len bytes of s to b. */
static int expand(const char *s, size_t len, int depth, struct buf *b, char *err, size_t errlen)
{
    const char *end = s + len;
    while (s < end) {
        size_t consumed = 1;
        int rc;
        if (end - s >= 3 && s[0] == '$' && s[1] == '$' && s[2] == '{') {
            rc = buf_add(b, "${", 2);
            consumed = 3;
        } else if (end - s >= 2 && s[0] == '$' && s[1] == '{') {
            if (expand_one(s, depth, b, &consumed, err, errlen) != 0)
                return -1;
            rc = 0;
        } else {
            rc = buf_add(b, s, 1);
        }
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s += consumed;
    }
    return 0;
}

int interp_expand(const char *s, char **out, char *err, size_t errlen)
{
    struct buf b = {0};
    if (buf_add(&b, "", 0) != 0 || expand(s, strlen(s), 0, &b, err, errlen) != 0) {
        if (!b.p)
            snprintf(err, errlen, "out of memory");
        free(b.p);
        return -1;
    }
    *out = b.p;
    return 0;
}
