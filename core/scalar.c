/* Scalar parsers: strict, locale-independent, overflow-checked. */
#include "scalar.h"

#include <metronome/util.h>
#include <stdio.h>
#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads an unsigned decimal run; advances *p. Fails on overflow or no digit. */
static int read_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!is_digit(*s))
        return -1;
    while (is_digit(*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int parse_int64(const char *s, int64_t *out)
{
    int neg = 0;
    uint64_t v;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (read_digits(&s, &v) != 0 || *s != '\0')
        return -1;
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "true") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

struct unit {
    const char *name;
    uint64_t factor;
};

/* Longest names first so "ms" is not read as "m" followed by garbage. */
static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"w", 604800000},
};

static const struct unit *match_unit(const char **p, const struct unit *units, size_t n)
{
    const struct unit *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(units[i].name);
        if (len > best_len && strncmp(*p, units[i].name, len) == 0) {
            best = &units[i];
            best_len = len;
        }
    }
    if (best)
        *p += best_len;
    return best;
}

int parse_duration_ms(const char *s, int64_t *out)
{
    uint64_t total = 0;
    if (*s == '\0')
        return -1;
    while (*s) {
        uint64_t v;
        if (read_digits(&s, &v) != 0)
            return -1;
        const struct unit *u = match_unit(&s, duration_units, 6);
        if (!u)
            return -1;
        if (v > (uint64_t)INT64_MAX / u->factor || total > (uint64_t)INT64_MAX - v * u->factor)
            return -1;
        total += v * u->factor;
    }
    *out = (int64_t)total;
    return 0;
}

static const struct unit size_units[] = {
    {"B", 1},      {"KB", 1000},     {"MB", 1000000},     {"GB", 1000000000},
    {"KiB", 1024}, {"MiB", 1048576}, {"GiB", 1073741824},
};

int parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    if (read_digits(&s, &v) != 0)
        return -1;
    uint64_t factor = 1;
    if (*s) {
        const struct unit *u = match_unit(&s, size_units, 7);
        if (!u || *s != '\0')
            return -1;
        factor = u->factor;
    }
    if (v > UINT64_MAX / factor)
        return -1;
    *out = v * factor;
    return 0;
}

/* Reads exactly n digits as an int. */
static int fixed_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

static int parse_date(const char **p, int *y, int *m, int *d)
{
    if (fixed_digits(p, 4, y) || expect(p, '-') || fixed_digits(p, 2, m) || expect(p, '-') ||
        fixed_digits(p, 2, d))
        return -1;
    if (*m < 1 || *m > 12 || *d < 1 || *d > mtr_days_in_month(*y, *m))
        return -1;
    return 0;
}

static int parse_clock(const char **p, int *hh, int *mm, int *ss)
{
    *ss = 0;
    if (fixed_digits(p, 2, hh) || expect(p, ':') || fixed_digits(p, 2, mm))
        return -1;
    if (**p == ':' && (expect(p, ':') || fixed_digits(p, 2, ss)))
        return -1;
    if (*hh > 23 || *mm > 59 || *ss > 59)
        return -1;
    return 0;
}

int parse_iso8601(const char *s, mtr_time *out)
{
    int y, m, d, hh = 0, mm = 0, ss = 0;
    if (parse_date(&s, &y, &m, &d))
        return -1;
    if (*s == 'T' || *s == 't') {
        s++;
        if (parse_clock(&s, &hh, &mm, &ss))
            return -1;
        if (*s == 'Z' || *s == 'z')
            s++;
        else if (strcmp(s, "+00:00") == 0)
            s += 6;
        else
            return -1;
    }
    if (*s != '\0' || y < 1970) /* the supported range: 1970-01-01 .. 9999-12-31 */
        return -1;
    *out = mtr_time_from_civil(y, m, d, hh, mm, ss);
    return 0;
}

void format_iso8601(mtr_time t, char *buf, size_t len)
{
    struct mtr_civil c = mtr_civil_from_time(t);
    snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)c.year, c.month, c.day,
             c.hour, c.minute, c.second);
}

void format_duration(int64_t ms, char *buf, size_t len)
{
    static const struct unit parts[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t used = 0;
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < 5 && used < len; i++) {
        int64_t n = ms / (int64_t)parts[i].factor;
        if (n == 0)
            continue;
        ms -= n * (int64_t)parts[i].factor;
        int w = snprintf(buf + used, len - used, "%lld%s", (long long)n, parts[i].name);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}
