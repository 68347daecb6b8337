/* Property test of the cron policy: random expressions, each checked against
 * an independent reference that walks minute by minute with gmtime_r and
 * matches fields from sets the generator built itself. */
#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct spec {
    char text[256];
    int allowed[5][61]; /* allowed[field][value] */
    int star[5];        /* field written starting with '*' */
};

static const int lo[5] = {0, 0, 1, 1, 0}, hi[5] = {59, 23, 31, 12, 6};
static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static unsigned rnd(unsigned *state, unsigned n)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) % n;
}

static void value_text(int field, int v, unsigned *rs, char *buf, size_t len)
{
    if (field == 3 && rnd(rs, 3) == 0)
        snprintf(buf, len, "%s", months[v - 1]);
    else if (field == 4 && rnd(rs, 3) == 0)
        snprintf(buf, len, "%s", days[v]);
    else if (field == 4 && v == 0 && rnd(rs, 2) == 0)
        snprintf(buf, len, "7"); /* Sunday written as 7 */
    else
        snprintf(buf, len, "%d", v);
}

/* One element of a field: star, star-slash-n, a, a-b, a-b/n. Marks allowed values. */
static void gen_element(struct spec *s, int f, unsigned *rs, char *out, size_t len, int first)
{
    int span = hi[f] - lo[f] + 1;
    int kind = (int)rnd(rs, 6);
    char a[8], b[8];
    if (kind == 0 || (kind == 1 && f >= 2)) {
        if (first)
            s->star[f] = 1;
        snprintf(out, len, "*");
        for (int v = lo[f]; v <= hi[f]; v++)
            s->allowed[f][v] = 1;
    } else if (kind == 1) {
        int step = 1 + (int)rnd(rs, (unsigned)span / 2);
        if (first)
            s->star[f] = 1;
        snprintf(out, len, "*/%d", step);
        for (int v = lo[f]; v <= hi[f]; v += step)
            s->allowed[f][v] = 1;
    } else if (kind == 2 || kind == 3) {
        int v = lo[f] + (int)rnd(rs, (unsigned)span);
        value_text(f, v, rs, a, sizeof a);
        snprintf(out, len, "%s", a);
        s->allowed[f][v] = 1;
    } else {
        int x = lo[f] + (int)rnd(rs, (unsigned)span), y = lo[f] + (int)rnd(rs, (unsigned)span);
        if (x > y) {
            int t = x;
            x = y;
            y = t;
        }
        int step = kind == 5 ? 1 + (int)rnd(rs, 5) : 1;
        snprintf(a, sizeof a, "%d", x);
        snprintf(b, sizeof b, "%d", y);
        if (kind == 5)
            snprintf(out, len, "%s-%s/%d", a, b, step);
        else
            snprintf(out, len, "%s-%s", a, b);
        for (int v = x; v <= y; v += step)
            s->allowed[f][v] = 1;
    }
}

static void gen_spec(struct spec *s, unsigned *rs)
{
    memset(s, 0, sizeof *s);
    size_t used = 0;
    for (int f = 0; f < 5; f++) {
        int parts = 1 + (rnd(rs, 4) == 0);
        for (int p = 0; p < parts; p++) {
            char el[32];
            gen_element(s, f, rs, el, sizeof el, p == 0);
            used += (size_t)snprintf(s->text + used, sizeof s->text - used, "%s%s",
                                     p ? "," : (f ? " " : ""), el);
        }
    }
    /* Vixie cron: '*' decides only by the field's first character */
}

static int ref_day_matches(const struct spec *s, const struct tm *tm)
{
    int mday = s->allowed[2][tm->tm_mday], wday = s->allowed[4][tm->tm_wday];
    int day = (s->star[2] || s->star[4]) ? (mday && wday) : (mday || wday);
    return s->allowed[3][tm->tm_mon + 1] && day;
}

/* Every minute after `after`, in order, up to the horizon; the calendar comes
 * from gmtime_r once a day. Returns 0 when nothing matches. */
static time_t ref_next(const struct spec *s, time_t after, time_t horizon)
{
    time_t t = (after / 60 + 1) * 60;
    while (t <= after + horizon) {
        time_t day0 = t - t % 86400;
        struct tm tm;
        gmtime_r(&day0, &tm);
        int day_ok = ref_day_matches(s, &tm);
        for (; t < day0 + 86400 && t <= after + horizon; t += 60) {
            int m = (int)((t - day0) / 60);
            if (day_ok && s->allowed[1][m / 60] && s->allowed[0][m % 60])
                return t;
        }
    }
    return 0;
}

Test(cron_property, matches_brute_force, .timeout = 600)
{
    unsigned rs = 20261127u;
    const time_t horizon = 366L * 86400;
    int compared = 0;
    for (int i = 0; i < 250; i++) {
        struct spec s;
        gen_spec(&s, &rs);
        char opts[320], err[1024];
        snprintf(opts, sizeof opts, "{expr: '%s'}", s.text);
        struct test_cadence *tc = test_cadence_try("cron", opts, err, sizeof err);
        if (!tc) {
            /* only a date that never exists may be refused */
            cr_expect(strstr(err, "never fires") != NULL, "%s refused: %s", s.text, err);
            continue;
        }
        time_t after =
            (time_t)946684800 + (time_t)rnd(&rs, 30u * 365) * 86400 + (time_t)rnd(&rs, 86400);
        for (int k = 0; k < 3; k++) {
            time_t want = ref_next(&s, after, horizon);
            if (want == 0)
                break; /* rarer than the horizon; the table tests cover leap days */
            mtr_time got = test_cadence_next(tc, after);
            cr_assert_eq(got, (mtr_time)want, "'%s' after %ld: got %ld, want %ld", s.text,
                         (long)after, (long)got, (long)want);
            compared++;
            after = want;
        }
        test_cadence_free(tc);
    }
    cr_expect_gt(compared, 300, "the property test compared only %d ticks", compared);
}
