/* JSON writer: growable buffer, JSON.stringify string escaping, and the
 * ECMAScript number-to-string algorithm on top of the shortest "%.*e" that
 * round-trips through strtod. */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(struct jsonw *w)
{
    w->buf = NULL;
    w->len = w->cap = 0;
    w->failed = 0;
}

void jsonw_free(struct jsonw *w)
{
    free(w->buf);
    jsonw_init(w);
}

char *jsonw_take(struct jsonw *w, size_t *len)
{
    jsonw_raw(w, "", 0); /* make sure there is a buffer and a NUL */
    char *p = w->failed ? NULL : w->buf;
    if (len)
        *len = w->len;
    if (!p)
        free(w->buf);
    jsonw_init(w);
    return p;
}

static int reserve(struct jsonw *w, size_t n)
{
    if (w->failed)
        return -1;
    if (w->len + n + 1 <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *p = realloc(w->buf, cap);
    if (!p) {
        w->failed = 1;
        return -1;
    }
    w->buf = p;
    w->cap = cap;
    return 0;
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
    if (reserve(w, n) != 0)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void jsonw_lit(struct jsonw *w, const char *s)
{
    jsonw_raw(w, s, strlen(s));
}

void jsonw_string(struct jsonw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (reserve(w, n + 2) != 0)
        return;
    w->buf[w->len++] = '"';
    size_t run = 0; /* bytes copied verbatim since the last escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        jsonw_raw(w, s + i - run, run);
        run = 0;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        jsonw_raw(w, esc, len);
    }
    jsonw_raw(w, s + n - run, run);
    jsonw_raw(w, "\"", 1);
}

void jsonw_str(struct jsonw *w, const char *s)
{
    jsonw_string(w, s, strlen(s));
}

/* The shortest digits that round-trip: "%.{p-1}e" for the smallest p. Writes
 * the digit string (no dot) to digits and returns the decimal exponent n such
 * that d = 0.digits * 10^n (ECMAScript's n). */
static int shortest_digits(double d, char *digits, int *k)
{
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d || p == 17)
            break;
    }
    /* buf is "D.DDDDe[+-]XX" or "De[+-]XX" */
    int n = 0;
    const char *e = strchr(buf, 'e');
    int exp10 = (int)strtol(e + 1, NULL, 10);
    for (const char *p = buf; p < e; p++)
        if (*p >= '0' && *p <= '9')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *k = n;
    return exp10 + 1;
}

size_t js_number(double d, char *buf)
{
    if (isnan(d) || isinf(d))
        return (size_t)snprintf(buf, 32, "null");
    if (d == 0)
        return (size_t)snprintf(buf, 32, "0"); /* also -0 */
    size_t o = 0;
    if (d < 0) {
        buf[o++] = '-';
        d = -d;
    }
    char digits[24];
    int k;
    int n = shortest_digits(d, digits, &k);
    if (k <= n && n <= 21) {
        memcpy(buf + o, digits, (size_t)k);
        o += (size_t)k;
        for (int i = 0; i < n - k; i++)
            buf[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(buf + o, digits, (size_t)n);
        o += (size_t)n;
        buf[o++] = '.';
        memcpy(buf + o, digits + n, (size_t)(k - n));
        o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -n; i++)
            buf[o++] = '0';
        memcpy(buf + o, digits, (size_t)k);
        o += (size_t)k;
    } else {
        buf[o++] = digits[0];
        if (k > 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + 1, (size_t)(k - 1));
            o += (size_t)(k - 1);
        }
        o += (size_t)snprintf(buf + o, 12, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    buf[o] = '\0';
    return o;
}

void jsonw_number(struct jsonw *w, double d)
{
    char buf[40];
    size_t n = js_number(d, buf);
    jsonw_raw(w, buf, n);
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    /* JavaScript holds integers exactly up to 2^53; beyond, it prints a double */
    if (v > 9007199254740992LL || v < -9007199254740992LL) {
        jsonw_number(w, (double)v);
        return;
    }
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    jsonw_raw(w, buf, (size_t)n);
}

/* ---- the canonical rewriter: one pass over the text, no tree ---------------------- */

#define CANON_MAX_DEPTH 128

struct canon {
    const char *start, *p, *end;
    struct jsonw *w;
    char *err;
    size_t errlen;
    int depth;
};

static int canon_fail(struct canon *c, const char *what)
{
    snprintf(c->err, c->errlen, "malformed JSON at byte %zu: %s", (size_t)(c->p - c->start), what);
    return -1;
}

static void skip_ws(struct canon *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f')
            v |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            v |= (unsigned)(h - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Writes code point cp as JSON.stringify would inside a string. */
static void put_code_point(struct jsonw *w, unsigned cp)
{
    char buf[8];
    if (cp < 0x20 || cp == '"' || cp == '\\') { /* as jsonw_string escapes them */
        static const char hex[] = "0123456789abcdef";
        const char *short_form = cp == '"'    ? "\\\""
                                 : cp == '\\' ? "\\\\"
                                 : cp == '\b' ? "\\b"
                                 : cp == '\f' ? "\\f"
                                 : cp == '\n' ? "\\n"
                                 : cp == '\r' ? "\\r"
                                 : cp == '\t' ? "\\t"
                                              : NULL;
        if (short_form) {
            jsonw_raw(w, short_form, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', hex[cp >> 4], hex[cp & 15]};
            jsonw_raw(w, u, 6);
        }
        return;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) { /* a lone surrogate: escaped, lowercase */
        snprintf(buf, sizeof buf, "\\u%04x", cp);
        jsonw_raw(w, buf, 6);
        return;
    }
    size_t n;
    if (cp < 0x80) {
        buf[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        buf[0] = (char)(0xc0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        buf[0] = (char)(0xe0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        buf[0] = (char)(0xf0 | (cp >> 18));
        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    jsonw_raw(w, buf, n);
}

/* Length of a valid UTF-8 sequence starting at p (p < end), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char b = p[0];
    size_t n = b < 0xc2 ? 0 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : b < 0xf5 ? 4 : 0;
    if (n == 0 || (size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((b == 0xe0 && p[1] < 0xa0) || (b == 0xed && p[1] >= 0xa0)))
        return 0; /* overlong, or a surrogate */
    if (n == 4 && ((b == 0xf0 && p[1] < 0x90) || (b == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

static int canon_string(struct canon *c)
{
    c->p++; /* the opening quote */
    jsonw_raw(c->w, "\"", 1);
    const char *run = c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            jsonw_raw(c->w, run, (size_t)(c->p - run));
            jsonw_raw(c->w, "\"", 1);
            c->p++;
            return 0;
        }
        if (ch < 0x20)
            return canon_fail(c, "control character in a string");
        if (ch >= 0x80) {
            size_t n = utf8_len((const unsigned char *)c->p, (const unsigned char *)c->end);
            if (!n)
                return canon_fail(c, "invalid UTF-8");
            c->p += n;
            continue;
        }
        if (ch != '\\') {
            c->p++;
            continue;
        }
        jsonw_raw(c->w, run, (size_t)(c->p - run));
        if (c->end - c->p < 2)
            return canon_fail(c, "unterminated escape");
        char e = c->p[1];
        unsigned cp;
        c->p += 2;
        switch (e) {
        case '"':
        case '\\':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': {
            char esc[2] = {'\\', e};
            jsonw_raw(c->w, esc, 2);
            break;
        }
        case '/':
            jsonw_raw(c->w, "/", 1);
            break;
        case 'u':
            if (c->end - c->p < 4 || hex4(c->p, &cp) != 0)
                return canon_fail(c, "bad \\u escape");
            c->p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && c->end - c->p >= 6 && c->p[0] == '\\' &&
                c->p[1] == 'u') {
                unsigned lo;
                if (hex4(c->p + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    c->p += 6;
                }
            }
            put_code_point(c->w, cp);
            break;
        default:
            return canon_fail(c, "bad escape");
        }
        run = c->p;
    }
    return canon_fail(c, "unterminated string");
}

/* Numbers: copied as they are when that is already JavaScript's form. */
static int canon_number(struct canon *c)
{
    const char *start = c->p, *p = c->p;
    int neg = 0, sig = 0, lead = 1, frac_trailing_zero = 0, int_digits = 0, zeros_after_point = 0;
    int has_frac = 0, has_exp = 0, int_trailing_zeros = 0;
    if (p < c->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= c->end || *p < '0' || *p > '9')
        return canon_fail(c, "bad number");
    if (*p == '0' && p + 1 < c->end && p[1] >= '0' && p[1] <= '9')
        return canon_fail(c, "leading zero");
    for (; p < c->end && *p >= '0' && *p <= '9'; p++) {
        int_digits++;
        if (*p != '0' || !lead) {
            lead = 0;
            sig++;
            int_trailing_zeros = *p == '0' ? int_trailing_zeros + 1 : 0;
        }
    }
    if (p < c->end && *p == '.') {
        has_frac = 1;
        p++;
        if (p >= c->end || *p < '0' || *p > '9')
            return canon_fail(c, "bad fraction");
        for (; p < c->end && *p >= '0' && *p <= '9'; p++) {
            if (*p == '0' && lead)
                zeros_after_point++;
            if (*p != '0' || !lead) {
                lead = 0;
                sig++;
            }
            frac_trailing_zero = *p == '0';
        }
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        has_exp = 1;
        p++;
        if (p < c->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= c->end || *p < '0' || *p > '9')
            return canon_fail(c, "bad exponent");
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    }
    c->p = p;
    size_t len = (size_t)(p - start);
    if (!has_frac)
        sig -= int_trailing_zeros; /* 123000 has 3 significant digits */
    int is_zero = lead;            /* no non-zero digit */
    int verbatim = !has_exp && !frac_trailing_zero && sig <= 15 && int_digits <= 21 &&
                   !(neg && is_zero) && !(has_frac && is_zero) &&
                   !(int_digits == 1 && start[neg] == '0' && has_frac && zeros_after_point > 5);
    if (verbatim) {
        jsonw_raw(c->w, start, len);
        return 0;
    }
    char buf[400];
    if (len >= sizeof buf)
        return canon_fail(c, "number too long");
    memcpy(buf, start, len);
    buf[len] = '\0';
    jsonw_number(c->w, strtod(buf, NULL)); /* overflow gives inf: written as null, as JS */
    return 0;
}

static int canon_value(struct canon *c);

/* Whether the key just written at [off, end of buffer) equals an earlier one. */
static int duplicate_key(struct jsonw *w, const size_t *offs, const size_t *lens, size_t n,
                         size_t off)
{
    size_t len = w->len - off;
    for (size_t i = 0; i < n; i++)
        if (lens[i] == len && memcmp(w->buf + offs[i], w->buf + off, len) == 0)
            return 1;
    return 0;
}

static int canon_object(struct canon *c)
{
    size_t cap = 16, n = 0;
    size_t *offs = malloc(cap * sizeof *offs), *lens = malloc(cap * sizeof *lens);
    int rc = -1;
    if (!offs || !lens)
        goto out;
    c->p++;
    jsonw_raw(c->w, "{", 1);
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        jsonw_raw(c->w, "}", 1);
        rc = 0;
        goto out;
    }
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"') {
            canon_fail(c, "expected a key");
            goto out;
        }
        size_t off = c->w->len;
        if (canon_string(c) != 0)
            goto out;
        if (duplicate_key(c->w, offs, lens, n, off)) {
            canon_fail(c, "duplicate key");
            goto out;
        }
        if (n == cap) {
            cap *= 2;
            size_t *o2 = realloc(offs, cap * sizeof *o2),
                   *l2 = o2 ? realloc(lens, cap * sizeof *l2) : NULL;
            if (o2)
                offs = o2;
            if (!o2 || !l2) {
                canon_fail(c, "out of memory");
                goto out;
            }
            lens = l2;
        }
        offs[n] = off;
        lens[n++] = c->w->len - off;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':') {
            canon_fail(c, "expected ':'");
            goto out;
        }
        c->p++;
        jsonw_raw(c->w, ":", 1);
        if (canon_value(c) != 0)
            goto out;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            jsonw_raw(c->w, ",", 1);
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            jsonw_raw(c->w, "}", 1);
            rc = 0;
            goto out;
        }
        canon_fail(c, "expected ',' or '}'");
        goto out;
    }
out:
    free(offs);
    free(lens);
    return rc;
}

static int canon_array(struct canon *c)
{
    c->p++;
    jsonw_raw(c->w, "[", 1);
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        jsonw_raw(c->w, "]", 1);
        return 0;
    }
    for (;;) {
        if (canon_value(c) != 0)
            return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            jsonw_raw(c->w, ",", 1);
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            jsonw_raw(c->w, "]", 1);
            return 0;
        }
        return canon_fail(c, "expected ',' or ']'");
    }
}

static int literal(struct canon *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return canon_fail(c, "unexpected token");
    c->p += n;
    jsonw_raw(c->w, word, n);
    return 0;
}

static int canon_value(struct canon *c)
{
    skip_ws(c);
    if (c->p >= c->end)
        return canon_fail(c, "unexpected end");
    if (++c->depth > CANON_MAX_DEPTH)
        return canon_fail(c, "nested too deeply");
    int rc;
    switch (*c->p) {
    case '{':
        rc = canon_object(c);
        break;
    case '[':
        rc = canon_array(c);
        break;
    case '"':
        rc = canon_string(c);
        break;
    case 't':
        rc = literal(c, "true");
        break;
    case 'f':
        rc = literal(c, "false");
        break;
    case 'n':
        rc = literal(c, "null");
        break;
    default:
        rc = canon_number(c);
    }
    c->depth--;
    return rc;
}

int jsonw_canonical(struct jsonw *w, const char *text, size_t len, char *err, size_t errlen)
{
    struct canon c = {
        .start = text, .p = text, .end = text + len, .w = w, .err = err, .errlen = errlen};
    size_t mark = w->len;
    if (canon_value(&c) != 0) {
        w->len = mark;
        if (w->buf)
            w->buf[mark] = '\0';
        return -1;
    }
    skip_ws(&c);
    if (c.p != c.end) {
        w->len = mark;
        if (w->buf)
            w->buf[mark] = '\0';
        return canon_fail(&c, "text after the value");
    }
    if (w->failed) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
