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

void jsonw_value(struct jsonw *w, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        const json_t *val;
        int first = 1;
        jsonw_raw(w, "{", 1);
        json_object_foreach((json_t *)v, key, val)
        {
            if (!first)
                jsonw_raw(w, ",", 1);
            first = 0;
            jsonw_str(w, key);
            jsonw_raw(w, ":", 1);
            jsonw_value(w, val);
        }
        jsonw_raw(w, "}", 1);
        break;
    }
    case JSON_ARRAY:
        jsonw_raw(w, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                jsonw_raw(w, ",", 1);
            jsonw_value(w, json_array_get(v, i));
        }
        jsonw_raw(w, "]", 1);
        break;
    case JSON_STRING:
        jsonw_string(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        jsonw_int(w, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL:
        jsonw_number(w, json_real_value(v));
        break;
    case JSON_TRUE:
        jsonw_lit(w, "true");
        break;
    case JSON_FALSE:
        jsonw_lit(w, "false");
        break;
    case JSON_NULL:
        jsonw_lit(w, "null");
        break;
    }
}

int jsonw_canonical(struct jsonw *w, const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    /* every JSON number is a double to JavaScript, integers included */
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    if (!v) {
        snprintf(err, errlen, "malformed JSON at line %d column %d: %s", je.line, je.column,
                 je.text);
        return -1;
    }
    jsonw_value(w, v);
    json_decref(v);
    if (w->failed) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
