/* Cadence policy `cron`: a standard 5-field cron expression evaluated in UTC
 * (minute hour day-of-month month day-of-week). Fields take `*`, numbers,
 * ranges `a-b`, steps `*\/n` and `a-b/n`, lists `a,b`, month names jan-dec and
 * weekday names sun-sat (0 and 7 are Sunday), plus @hourly, @daily, @weekly,
 * @monthly and @yearly. As in Vixie cron, when both day fields are restricted
 * a day matches if either does. */
#include <metronome/metronome.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cron {
    uint64_t minutes; /* bit n: minute n */
    uint32_t hours;
    uint32_t mdays;  /* bits 1..31 */
    uint32_t months; /* bits 1..12 */
    uint32_t wdays;  /* bits 0..6, Sunday = 0 */
    int mday_star, wday_star;
};

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* index = value - names_base */
    int names_base;
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 1},
    {"day of week", 0, 7, day_names, 0},
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Reads a number or a name; advances *p. */
static int read_value(const char **p, const struct field *f, int *out)
{
    const char *s = *p;
    if (*s >= '0' && *s <= '9') {
        int v = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            if (v > 1000)
                return -1;
        }
        *p = s;
        *out = v;
        return 0;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (lower(s[0]) == f->names[i][0] && lower(s[1]) == f->names[i][1] &&
            lower(s[2]) == f->names[i][2]) {
            *p = s + 3;
            *out = i + f->names_base;
            return 0;
        }
    }
    return -1;
}

/* Parses one comma-separated element: *, a, a-b, with an optional /step. */
static int parse_element(const char *s, const struct field *f, uint64_t *bits, char *err,
                         size_t errlen)
{
    int lo = f->lo, hi = f->hi, step = 1;
    const char *p = s;
    if (*p == '*') {
        p++;
    } else {
        if (read_value(&p, f, &lo) != 0)
            goto bad;
        hi = lo;
        if (*p == '-') {
            p++;
            if (read_value(&p, f, &hi) != 0)
                goto bad;
        } else if (*p == '/') {
            hi = f->hi; /* a/n: from a to the end */
        }
    }
    if (*p == '/') {
        p++;
        if (read_value(&p, &fields[0], &step) != 0 || step < 1)
            goto bad;
    }
    if (*p != '\0')
        goto bad;
    if (lo < f->lo || hi > f->hi || lo > f->hi || hi < f->lo) {
        snprintf(err, errlen, "%s '%s' is out of range %d-%d", f->name, s, f->lo, f->hi);
        return -1;
    }
    if (lo > hi) {
        snprintf(err, errlen, "%s range '%s' runs backwards", f->name, s);
        return -1;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ull << v;
    return 0;
bad:
    snprintf(err, errlen, "bad %s '%s'", f->name, s);
    return -1;
}

static int parse_field(const char *text, const struct field *f, uint64_t *bits, char *err,
                       size_t errlen)
{
    char buf[128];
    size_t len = strlen(text);
    if (len >= sizeof buf) {
        snprintf(err, errlen, "%s field is too long", f->name);
        return -1;
    }
    memcpy(buf, text, len + 1);
    *bits = 0;
    char *start = buf;
    for (;;) {
        char *comma = strchr(start, ',');
        if (comma)
            *comma = '\0';
        if (*start == '\0') {
            snprintf(err, errlen, "empty element in %s field", f->name);
            return -1;
        }
        if (parse_element(start, f, bits, err, errlen) != 0)
            return -1;
        if (!comma)
            return 0;
        start = comma + 1;
    }
}

static const char *expand_macro(const char *expr)
{
    static const struct {
        const char *name, *expansion;
    } macros[] = {
        {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
        {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"},
    };
    for (size_t i = 0; i < sizeof macros / sizeof *macros; i++)
        if (strcmp(expr, macros[i].name) == 0)
            return macros[i].expansion;
    return expr;
}

/* Splits on blanks into exactly five fields. */
static int split_fields(const char *expr, char out[5][128], char *err, size_t errlen)
{
    int n = 0;
    const char *p = expr;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - start);
        if (n == 5 || len >= 128) {
            snprintf(err, errlen,
                     "a cron expression has exactly 5 fields "
                     "(minute hour day-of-month month day-of-week)");
            return -1;
        }
        memcpy(out[n], start, len);
        out[n][len] = '\0';
        n++;
    }
    if (n != 5) {
        snprintf(err, errlen,
                 "a cron expression has exactly 5 fields (minute hour day-of-month month "
                 "day-of-week), this one has %d",
                 n);
        return -1;
    }
    return 0;
}

static int cron_parse(const char *expr, struct cron *c, char *err, size_t errlen)
{
    char f[5][128];
    uint64_t bits[5];
    expr = expand_macro(expr);
    if (expr[0] == '@') {
        snprintf(err, errlen, "unknown macro '%s' (@hourly, @daily, @weekly, @monthly, @yearly)",
                 expr);
        return -1;
    }
    if (split_fields(expr, f, err, errlen) != 0)
        return -1;
    for (int i = 0; i < 5; i++)
        if (parse_field(f[i], &fields[i], &bits[i], err, errlen) != 0)
            return -1;
    c->minutes = bits[0];
    c->hours = (uint32_t)bits[1];
    c->mdays = (uint32_t)bits[2];
    c->months = (uint32_t)bits[3];
    c->wdays = (uint32_t)(bits[4] & 0x7f) | (uint32_t)((bits[4] >> 7) & 1); /* 7 is Sunday */
    c->mday_star = f[2][0] == '*';
    c->wday_star = f[4][0] == '*';
    return 0;
}

static int day_matches(const struct cron *c, const struct mtr_civil *t)
{
    int md = (c->mdays >> t->day) & 1, wd = (c->wdays >> t->wday) & 1;
    if (c->mday_star || c->wday_star)
        return md && wd;
    return md || wd;
}

static int cron_next(void *state, mtr_time after, mtr_time *next)
{
    const struct cron *c = state;
    mtr_time t = (mtr_floor_div(after, 60) + 1) * 60;
    struct mtr_civil start = mtr_civil_from_time(t);
    /* every valid expression fires within 28 years (the leap-day/weekday cycle) */
    int64_t last_year = start.year + 29;
    for (;;) {
        struct mtr_civil v = mtr_civil_from_time(t);
        if (v.year > last_year)
            return MTR_ERR;
        if (!((c->months >> v.month) & 1)) {
            int m = v.month == 12 ? 1 : v.month + 1;
            t = mtr_time_from_civil(v.month == 12 ? v.year + 1 : v.year, m, 1, 0, 0, 0);
        } else if (!day_matches(c, &v)) {
            t = (mtr_floor_div(t, 86400) + 1) * 86400;
        } else if (!((c->hours >> v.hour) & 1)) {
            t = (mtr_floor_div(t, 3600) + 1) * 3600;
        } else if (!((c->minutes >> v.minute) & 1)) {
            t += 60;
        } else {
            *next = t;
            return MTR_OK;
        }
    }
}

static int cron_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    char err[256];
    const char *expr = host->get_string(ctx, "expr");
    struct cron *c = calloc(1, sizeof *c);
    mtr_time probe;
    if (!c) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    if (cron_parse(expr, c, err, sizeof err) != 0) {
        host->set_error(ctx, "cron expression '%s': %s", expr, err);
        free(c);
        return MTR_ERR;
    }
    /* 2000-01-01: any date that can ever match does so within 28 years of it */
    if (cron_next(c, 946684800, &probe) != MTR_OK) {
        host->set_error(ctx, "cron expression '%s' never fires (no such date)", expr);
        free(c);
        return MTR_ERR;
    }
    *state = c;
    return MTR_OK;
}

static void cron_destroy(void *state)
{
    free(state);
}

static const struct mtr_cadence_ops cron_ops = {
    .struct_size = sizeof(struct mtr_cadence_ops),
    .next_fire = cron_next,
};

static const struct mtr_option cron_options[] = {
    {.name = "expr",
     .type = MTR_OPT_STRING,
     .flags = MTR_OPT_REQUIRED,
     .help = "5-field cron expression in UTC, e.g. \"0 */6 * * *\""},
    {0},
};

static const struct mtr_plugin cron_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_CADENCE),
    .name = "cron",
    .version = "1.0.0",
    .description = "a standard 5-field cron expression, evaluated in UTC",
    .options = cron_options,
    .create = cron_create,
    .destroy = cron_destroy,
    .cadence = &cron_ops,
};

MTR_PLUGIN_DEFINE(cron_plugin)
