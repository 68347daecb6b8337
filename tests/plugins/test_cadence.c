/* Table tests of the shipped cadence policies, loaded through the real
 * loader: each row is (options, after, expected next tick strictly after). */
#include "support.h"

#include <criterion/criterion.h>
#include <string.h>

struct row {
    const char *after;
    const char *next;
};

static void check_rows(const char *policy, const char *opts, const struct row *rows, size_t n)
{
    struct test_cadence *tc = test_cadence_new(policy, opts);
    for (size_t i = 0; i < n; i++) {
        mtr_time got = test_cadence_next(tc, iso(rows[i].after));
        char buf[32];
        format_iso8601(got, buf, sizeof buf);
        cr_expect_str_eq(buf, rows[i].next, "%s %s after %s: got %s, want %s", policy,
                         opts ? opts : "", rows[i].after, buf, rows[i].next);
    }
    test_cadence_free(tc);
}

#define CHECK(policy, opts, rows) check_rows(policy, opts, rows, sizeof rows / sizeof *rows)

Test(cadence, hourly)
{
    static const struct row rows[] = {
        {"2030-03-01T15:45:00Z", "2030-03-01T16:00:00Z"}, /* the seed's example */
        {"2030-03-01T16:00:00Z", "2030-03-01T17:00:00Z"}, /* strictly after */
        {"2030-03-01T16:59:59Z", "2030-03-01T17:00:00Z"},
        {"2029-12-31T23:30:00Z", "2030-01-01T00:00:00Z"}, /* year end */
        {"2028-02-28T23:00:00Z", "2028-02-29T00:00:00Z"}, /* leap day */
        {"1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z"}, /* the first supported instant */
    };
    CHECK("hourly", NULL, rows);
}

Test(cadence, daily)
{
    static const struct row rows[] = {
        {"2030-03-01T06:29:59Z", "2030-03-01T06:30:00Z"},
        {"2030-03-01T06:30:00Z", "2030-03-02T06:30:00Z"},
        {"2029-12-31T07:00:00Z", "2030-01-01T06:30:00Z"},
        {"2028-02-28T12:00:00Z", "2028-02-29T06:30:00Z"},
        {"2030-02-28T12:00:00Z", "2030-03-01T06:30:00Z"},
    };
    CHECK("daily", "{at: '06:30'}", rows);
    static const struct row midnight[] = {
        {"2030-03-01T00:00:00Z", "2030-03-02T00:00:00Z"},
        {"2030-03-01T23:59:59Z", "2030-03-02T00:00:00Z"},
    };
    CHECK("daily", NULL, midnight);
}

Test(cadence, weekly)
{
    static const struct row monday[] = {
        {"2030-03-01T12:00:00Z", "2030-03-04T00:00:00Z"}, /* Friday -> Monday */
        {"2030-03-04T00:00:00Z", "2030-03-11T00:00:00Z"}, /* on the tick -> a week later */
        {"2030-03-03T23:59:59Z", "2030-03-04T00:00:00Z"},
        {"2029-12-30T10:00:00Z", "2029-12-31T00:00:00Z"}, /* across the year end */
    };
    CHECK("weekly", "{on: monday, at: '00:00'}", monday);
    static const struct row sunday[] = {
        {"2032-02-28T12:00:00Z", "2032-02-29T18:15:00Z"}, /* leap-day Sunday */
        {"2032-02-29T18:15:00Z", "2032-03-07T18:15:00Z"},
        {"2032-02-29T18:14:59Z", "2032-02-29T18:15:00Z"},
    };
    CHECK("weekly", "{on: sunday, at: '18:15'}", sunday);
}

Test(cadence, monthly)
{
    static const struct row day31[] = {
        {"2030-01-15T00:00:00Z", "2030-01-31T00:00:00Z"},
        {"2030-01-31T00:00:00Z", "2030-02-28T00:00:00Z"}, /* short month: last day */
        {"2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z"}, /* leap year */
        {"2030-02-28T00:00:00Z", "2030-03-31T00:00:00Z"},
        {"2030-04-01T00:00:00Z", "2030-04-30T00:00:00Z"},
        {"2030-12-31T00:00:00Z", "2031-01-31T00:00:00Z"}, /* year end */
    };
    CHECK("monthly", "{day: 31}", day31);
    static const struct row day29[] = {
        {"2100-02-01T00:00:00Z", "2100-02-28T00:00:00Z"}, /* 2100 is not a leap year */
        {"2000-02-01T00:00:00Z", "2000-02-29T00:00:00Z"}, /* 2000 is */
        {"2030-03-28T00:00:00Z", "2030-03-29T00:00:00Z"},
    };
    CHECK("monthly", "{day: 29}", day29);
    static const struct row day1[] = {
        {"2030-12-15T10:00:00Z", "2031-01-01T00:00:00Z"},
        {"2031-01-01T00:00:00Z", "2031-02-01T00:00:00Z"},
        {"2030-12-31T23:59:59Z", "2031-01-01T00:00:00Z"},
    };
    CHECK("monthly", NULL, day1);
}

Test(cadence, interval)
{
    static const struct row q[] = {
        {"2030-03-01T15:45:00Z", "2030-03-01T16:00:00Z"},
        {"2030-03-01T16:07:00Z", "2030-03-01T16:15:00Z"},
        {"2029-12-31T23:59:00Z", "2030-01-01T00:00:00Z"},
    };
    CHECK("interval", "{every: 15m}", q);
    /* 7 minutes does not divide the hour: aligned to the epoch, not the hour */
    static const struct row seven[] = {
        {"1970-01-01T00:00:00Z", "1970-01-01T00:07:00Z"},
        {"2030-03-01T00:00:00Z", NULL}, /* checked by property below */
    };
    struct test_cadence *tc = test_cadence_new("interval", "{every: 7m}");
    cr_expect_eq(test_cadence_next(tc, iso(seven[0].after)), iso(seven[0].next));
    mtr_time t = test_cadence_next(tc, iso(seven[1].after));
    cr_expect_eq(t % 420, 0, "interval ticks are multiples of the period since the epoch");
    cr_expect(t > iso(seven[1].after) && t - iso(seven[1].after) <= 420);
    test_cadence_free(tc);
    static const struct row h90[] = {
        {"2030-03-01T00:00:00Z", "2030-03-01T01:30:00Z"},
    };
    CHECK("interval", "{every: 1h30m}", h90);
}

Test(cadence, cron_table)
{
    static const struct row six[] = {
        {"2030-03-01T15:45:00Z", "2030-03-01T18:00:00Z"},
        {"2030-03-01T18:00:00Z", "2030-03-02T00:00:00Z"},
        {"2029-12-31T19:00:00Z", "2030-01-01T00:00:00Z"},
    };
    CHECK("cron", "{expr: '0 */6 * * *'}", six);
    static const struct row weekdays[] = {
        {"2030-03-01T03:00:00Z", "2030-03-04T02:30:00Z"}, /* Friday after 02:30 -> Monday */
        {"2030-03-04T02:29:00Z", "2030-03-04T02:30:00Z"},
    };
    CHECK("cron", "{expr: '30 2 * * mon-fri'}", weekdays);
    static const struct row leap[] = {
        {"2030-03-01T00:00:00Z", "2032-02-29T00:00:00Z"},
        {"2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"}, /* 2100 skipped */
    };
    CHECK("cron", "{expr: '0 0 29 feb *'}", leap);
    static const struct row either[] = {
        /* both day fields restricted: the 13th OR a Friday */
        {"2030-03-01T00:00:00Z", "2030-03-08T00:00:00Z"},
        {"2030-03-09T00:00:00Z", "2030-03-13T00:00:00Z"},
    };
    CHECK("cron", "{expr: '0 0 13 * fri'}", either);
    static const struct row office[] = {
        {"2030-03-01T17:50:00Z", "2030-03-04T09:00:00Z"},
        {"2030-03-04T09:00:00Z", "2030-03-04T09:15:00Z"},
        {"2030-03-04T17:45:00Z", "2030-03-05T09:00:00Z"},
    };
    CHECK("cron", "{expr: '*/15 9-17 * * 1-5'}", office);
    static const struct row names[] = {
        {"2030-03-01T00:00:00Z", "2030-06-01T12:00:00Z"},
        {"2030-12-01T12:00:00Z", "2031-01-01T12:00:00Z"},
    };
    CHECK("cron", "{expr: '0 12 1 JAN,jun,Dec *'}", names);
    static const struct row sunday7[] = {
        {"2030-03-01T00:00:00Z", "2030-03-03T00:00:00Z"},
    };
    CHECK("cron", "{expr: '0 0 * * 7'}", sunday7);
    static const struct row macro[] = {
        {"2030-03-01T15:45:00Z", "2030-03-01T16:00:00Z"},
    };
    CHECK("cron", "{expr: '@hourly'}", macro);
}

Test(cadence, cron_rejects)
{
    static const struct {
        const char *opts, *message;
    } bad[] = {
        {"{expr: '0 24 * * *'}", "hour '24' is out of range 0-23"},
        {"{expr: '* * * *'}", "exactly 5 fields"},
        {"{expr: '* * * * * *'}", "exactly 5 fields"},
        {"{expr: '5-1 * * * *'}", "runs backwards"},
        {"{expr: '*/0 * * * *'}", "bad minute '*/0'"},
        {"{expr: '0 0 31 feb *'}", "never fires"},
        {"{expr: '0 0 * foo *'}", "bad month 'foo'"},
        {"{expr: '0 0 1,,2 * *'}", "empty element"},
        {"{expr: '@sometimes'}", "unknown macro"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[1024] = "";
        struct test_cadence *tc = test_cadence_try("cron", bad[i].opts, err, sizeof err);
        cr_expect_null(tc, "%s should be refused", bad[i].opts);
        cr_expect(strstr(err, bad[i].message) != NULL, "%s: got '%s', want '%s'", bad[i].opts, err,
                  bad[i].message);
        test_cadence_free(tc);
    }
}

Test(cadence, option_errors)
{
    char err[1024];
    cr_expect_null(test_cadence_try("daily", "{at: '24:00'}", err, sizeof err));
    cr_expect(strstr(err, "'at' must be a time of day") != NULL, "%s", err);
    cr_expect_null(test_cadence_try("monthly", "{day: 32}", err, sizeof err));
    cr_expect(strstr(err, "'day' must be between 1 and 31") != NULL, "%s", err);
    cr_expect_null(test_cadence_try("interval", "{every: 90500ms}", err, sizeof err));
    cr_expect(strstr(err, "whole number of seconds") != NULL, "%s", err);
    cr_expect_null(test_cadence_try("weekly", "{on: mondy}", err, sizeof err));
    cr_expect(strstr(err, "did you mean 'monday'") != NULL, "%s", err);
}
