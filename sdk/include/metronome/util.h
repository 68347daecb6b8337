/* Helpers every source and sink ends up writing, header-only and libc-only:
 * the one Retry-After parser (delta-seconds or HTTP-date, saturated), JSON
 * string escaping the way JavaScript's JSON.stringify does it, ISO 8601 UTC
 * instants the way Smartcar writes them, and Smartcar's batch error element.
 * The core uses the same functions, so a plugin and the daemon never disagree
 * on what a header or an error element means. Writers follow snprintf: they
 * write at most cap bytes including the NUL and return the length the whole
 * text needs, so a caller can size its buffer and call again. */
#ifndef METRONOME_UTIL_H
#define METRONOME_UTIL_H

#include <metronome/civil.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The instants metronome accepts and prints: 1970-01-01T00:00:00Z through
 * 9999-12-31T23:59:59Z. Anything outside is refused where it enters. */
#define MTR_TIME_MIN ((mtr_time)0)
#define MTR_TIME_MAX ((mtr_time)253402300799LL)

/* The longest wait a Retry-After can ask for; longer values saturate here. */
#define MTR_RETRY_AFTER_MAX ((int64_t)366 * 86400)

static inline int mtr_util_month(const char *s)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (strncmp(s, names + 3 * i, 3) == 0)
            return i + 1;
    return 0;
}

/* Reads exactly n digits; -1 when any is not a digit. */
static inline int64_t mtr_util_digits(const char *s, int n)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "HH:MM:SS" into seconds after midnight; -1 when malformed. */
static inline int64_t mtr_util_clock(const char *s)
{
    int64_t h = mtr_util_digits(s, 2), m = mtr_util_digits(s + 3, 2), x = mtr_util_digits(s + 6, 2);
    if (h < 0 || m < 0 || x < 0 || s[2] != ':' || s[5] != ':' || h > 23 || m > 59 || x > 60)
        return -1;
    return h * 3600 + m * 60 + (x == 60 ? 59 : x);
}

static inline mtr_time mtr_util_date(int64_t y, int m, int64_t d, int64_t clock)
{
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > mtr_days_in_month(y, m) ||
        clock < 0)
        return -1;
    return mtr_time_from_civil(y, m, (int)d, 0, 0, 0) + clock;
}

/* Parses an HTTP-date of RFC 9110 5.6.7 in any of its three forms:
 * "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT" and
 * "Sun Nov  6 08:49:37 1994". Returns the instant, or -1. */
static inline mtr_time mtr_parse_http_date(const char *s, size_t len)
{
    char b[64];
    if (len >= sizeof b)
        return -1;
    memcpy(b, s, len);
    b[len] = '\0';
    const char *comma = strchr(b, ',');
    if (comma && len == 29 && comma == b + 3 && strcmp(b + 25, " GMT") == 0 && b[4] == ' ' &&
        b[7] == ' ' && b[11] == ' ' && b[16] == ' ') /* IMF-fixdate */
        return mtr_util_date(mtr_util_digits(b + 12, 4), mtr_util_month(b + 8),
                             mtr_util_digits(b + 5, 2), mtr_util_clock(b + 17));
    if (comma && len >= 30 && strcmp(b + len - 4, " GMT") == 0) { /* RFC 850 */
        const char *p = comma + 1;
        if ((size_t)(p - b) + 23 != len || p[0] != ' ' || p[3] != '-' || p[7] != '-' ||
            p[10] != ' ')
            return -1;
        int64_t yy = mtr_util_digits(p + 8, 2);
        if (yy < 0)
            return -1;
        /* two-digit years: 70..99 are 19xx, the rest 20xx (RFC 9110's 50-year rule
         * applied to the range metronome accepts) */
        return mtr_util_date(yy >= 70 ? 1900 + yy : 2000 + yy, mtr_util_month(p + 4),
                             mtr_util_digits(p + 1, 2), mtr_util_clock(p + 11));
    }
    if (!comma && len == 24 && b[3] == ' ' && b[7] == ' ' && b[10] == ' ' && b[19] == ' ') {
        /* asctime: the day is space-padded */
        char day[2] = {b[8] == ' ' ? '0' : b[8], b[9]};
        return mtr_util_date(mtr_util_digits(b + 20, 4), mtr_util_month(b + 4),
                             mtr_util_digits(day, 2), mtr_util_clock(b + 11));
    }
    return -1;
}

/* Parses a Retry-After value (RFC 9110 10.2.3): delta-seconds or an
 * HTTP-date, with optional surrounding white space. *seconds gets the wait
 * from now, saturated to 0..MTR_RETRY_AFTER_MAX (a date in the past is 0).
 * Returns 0, or -1 when the value is neither form (then *seconds is -1). */
static inline int mtr_parse_retry_after(const char *v, size_t len, mtr_time now, int64_t *seconds)
{
    *seconds = -1;
    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len &&
           (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r' || v[len - 1] == '\n'))
        len--;
    if (len == 0)
        return -1;
    size_t i = 0;
    int64_t n = 0;
    while (i < len && v[i] >= '0' && v[i] <= '9') {
        if (n < MTR_RETRY_AFTER_MAX)
            n = n * 10 + (v[i] - '0'); /* stops growing past the cap: no overflow */
        i++;
    }
    if (i == len) {
        *seconds = n > MTR_RETRY_AFTER_MAX ? MTR_RETRY_AFTER_MAX : n;
        return 0;
    }
    if (i != 0)
        return -1; /* digits followed by something else */
    mtr_time at = mtr_parse_http_date(v, len);
    if (at < 0)
        return -1;
    int64_t wait = at > now ? at - now : 0;
    *seconds = wait > MTR_RETRY_AFTER_MAX ? MTR_RETRY_AFTER_MAX : wait;
    return 0;
}

/* Escapes len bytes of s as the inside of a JSON string (no quotes), as
 * JSON.stringify does: \" \\ \b \f \n \r \t, other control characters as
 * \u00xx, everything else (UTF-8 included) as is. */
static inline size_t mtr_json_escape(char *dst, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c < 0x20) {
            const char *short_form = c == '\b'   ? "\\b"
                                     : c == '\f' ? "\\f"
                                     : c == '\n' ? "\\n"
                                     : c == '\r' ? "\\r"
                                     : c == '\t' ? "\\t"
                                                 : NULL;
            if (short_form) {
                esc[n++] = short_form[0];
                esc[n++] = short_form[1];
            } else {
                memcpy(esc, "\\u00", 4);
                n = 4;
                esc[n++] = hex[c >> 4];
                esc[n++] = hex[c & 15];
            }
        } else {
            esc[n++] = (char)c;
        }
        for (size_t k = 0; k < n; k++, out++)
            if (out + 1 < cap)
                dst[out] = esc[k];
    }
    if (cap)
        dst[out < cap ? out : cap - 1] = '\0';
    return out;
}

/* Appends text at *out (JSON-escaped when escape is set), snprintf-style. */
static inline void mtr_util_put(char *dst, size_t cap, size_t *out, const char *text, int escape)
{
    size_t len = strlen(text);
    if (escape) {
        *out +=
            mtr_json_escape(*out < cap ? dst + *out : NULL, *out < cap ? cap - *out : 0, text, len);
        return;
    }
    for (size_t i = 0; i < len; i++, (*out)++)
        if (*out + 1 < cap)
            dst[*out] = text[i];
    if (cap)
        dst[*out < cap ? *out : cap - 1] = '\0';
}

/* Writes t as "2030-03-01T16:00:03.000Z" (millis = 1, Smartcar's sc-data-age
 * form) or "2030-03-01T16:00:03Z"; t is clamped to MTR_TIME_MIN..MAX. */
static inline size_t mtr_format_iso8601(mtr_time t, int millis, char *dst, size_t cap)
{
    t = t < MTR_TIME_MIN ? MTR_TIME_MIN : t > MTR_TIME_MAX ? MTR_TIME_MAX : t;
    struct mtr_civil c = mtr_civil_from_time(t);
    const int fields[] = {(int)c.year, c.month, c.day, c.hour, c.minute, c.second};
    static const char seps[] = "--T::";
    char text[32];
    size_t n = 0;
    for (int i = 0; i < 6; i++) {
        int width = i == 0 ? 4 : 2, v = fields[i];
        for (int k = width - 1; k >= 0; k--, v /= 10)
            text[n + (size_t)k] = (char)('0' + v % 10);
        n += (size_t)width;
        if (i < 5)
            text[n++] = seps[i];
    }
    if (millis) {
        memcpy(text + n, ".000", 4);
        n += 4;
    }
    text[n++] = 'Z';
    text[n] = '\0';
    size_t out = 0;
    mtr_util_put(dst, cap, &out, text, 0);
    return out;
}

/* Writes one Smartcar batch error element:
 * {"path":P,"code":S,"body":{"type":T,"code":C,"description":D,"docURL":null,
 *  "statusCode":S,"requestId":R,"resolution":{"type":RES}},
 *  "headers":{"content-type":"application/json"}}
 * resolution is e.g. "RETRY_LATER" or "CONTACT_SUPPORT"; request_id may be
 * NULL (written as null). */
static inline size_t mtr_error_element(char *dst, size_t cap, const char *path, int status,
                                       const char *type, const char *code, const char *description,
                                       const char *request_id, const char *resolution)
{
    char num[16];
    size_t out = 0;
    snprintf(num, sizeof num, "%d", status);
    if (cap)
        dst[0] = '\0';
    mtr_util_put(dst, cap, &out, "{\"path\":\"", 0);
    mtr_util_put(dst, cap, &out, path, 1);
    mtr_util_put(dst, cap, &out, "\",\"code\":", 0);
    mtr_util_put(dst, cap, &out, num, 0);
    mtr_util_put(dst, cap, &out, ",\"body\":{\"type\":\"", 0);
    mtr_util_put(dst, cap, &out, type, 1);
    mtr_util_put(dst, cap, &out, "\",\"code\":\"", 0);
    mtr_util_put(dst, cap, &out, code, 1);
    mtr_util_put(dst, cap, &out, "\",\"description\":\"", 0);
    mtr_util_put(dst, cap, &out, description, 1);
    mtr_util_put(dst, cap, &out, "\",\"docURL\":null,\"statusCode\":", 0);
    mtr_util_put(dst, cap, &out, num, 0);
    mtr_util_put(dst, cap, &out, ",\"requestId\":", 0);
    mtr_util_put(dst, cap, &out, request_id ? "\"" : "null", 0);
    if (request_id) {
        mtr_util_put(dst, cap, &out, request_id, 1);
        mtr_util_put(dst, cap, &out, "\"", 0);
    }
    mtr_util_put(dst, cap, &out, ",\"resolution\":{\"type\":\"", 0);
    mtr_util_put(dst, cap, &out, resolution, 1);
    mtr_util_put(dst, cap, &out, "\"}},\"headers\":{\"content-type\":\"application/json\"}}", 0);
    return out;
}

#ifdef __cplusplus
}
#endif

#endif
