/* Scalar parsers: integers, booleans, durations, sizes, ISO 8601 instants. */
#include "scalar.h"

#include <criterion/criterion.h>
#include <metronome/civil.h>
#include <string.h>
#include <time.h>

static mtr_time iso_of(int y, int m, int d, int hh, int mm, int ss)
{
    return mtr_time_from_civil(y, m, d, hh, mm, ss);
}

Test(scalar, durations)
{
    int64_t ms;
    cr_expect(parse_duration_ms("500ms", &ms) == 0 && ms == 500);
    cr_expect(parse_duration_ms("15s", &ms) == 0 && ms == 15000);
    cr_expect(parse_duration_ms("10m", &ms) == 0 && ms == 600000);
    cr_expect(parse_duration_ms("1h30m", &ms) == 0 && ms == 5400000);
    cr_expect(parse_duration_ms("2d", &ms) == 0 && ms == 172800000);
    cr_expect(parse_duration_ms("1w", &ms) == 0 && ms == 604800000);
    cr_expect(parse_duration_ms("1m30s500ms", &ms) == 0 && ms == 90500);
    const char *bad[] = {"",
                         "15",
                         "15x",
                         "s",
                         "-5s",
                         "1.5s",
                         "15 s",
                         "99999999999999999999s",
                         "9223372036854775807d"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(parse_duration_ms(bad[i], &ms), -1, "'%s' accepted", bad[i]);
}

Test(scalar, sizes)
{
    uint64_t b;
    cr_expect(parse_size("65536", &b) == 0 && b == 65536);
    cr_expect(parse_size("64KiB", &b) == 0 && b == 65536);
    cr_expect(parse_size("1MB", &b) == 0 && b == 1000000);
    cr_expect(parse_size("1MiB", &b) == 0 && b == 1048576);
    cr_expect(parse_size("2GiB", &b) == 0 && b == 2147483648u);
    cr_expect(parse_size("10B", &b) == 0 && b == 10);
    const char *bad[] = {"", "1XB", "KiB", "1.5MB", "-1", "1 MB", "99999999999999999999GiB"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(parse_size(bad[i], &b), -1, "'%s' accepted", bad[i]);
}

Test(scalar, integers_and_booleans)
{
    int64_t v;
    int b;
    cr_expect(parse_int64("42", &v) == 0 && v == 42);
    cr_expect(parse_int64("-9223372036854775808", &v) == 0 && v == INT64_MIN);
    cr_expect_eq(parse_int64("9223372036854775808", &v), -1);
    cr_expect_eq(parse_int64("4x", &v), -1);
    cr_expect_eq(parse_int64("", &v), -1);
    cr_expect_eq(parse_int64("0x10", &v), -1);
    cr_expect(parse_bool("true", &b) == 0 && b == 1);
    cr_expect(parse_bool("false", &b) == 0 && b == 0);
    cr_expect_eq(parse_bool("yes", &b), -1);
    cr_expect_eq(parse_bool("True", &b), -1);
}

Test(scalar, iso8601_round_trip)
{
    mtr_time t;
    char buf[32];
    cr_assert_eq(parse_iso8601("2030-03-01T15:45:00Z", &t), 0);
    cr_expect_eq(t, 1898610300);
    format_iso8601(t, buf, sizeof buf);
    cr_expect_str_eq(buf, "2030-03-01T15:45:00Z");
    cr_expect(parse_iso8601("2030-03-01T15:45Z", &t) == 0 && t == 1898610300);
    cr_expect(parse_iso8601("2030-03-01T15:45:00+00:00", &t) == 0 && t == 1898610300);
    cr_expect(parse_iso8601("2030-03-01", &t) == 0 && t == 1898553600);
    cr_expect(parse_iso8601("2028-02-29T00:00:00Z", &t) == 0);
    const char *bad[] = {"2030-02-29T00:00:00Z",      "2030-13-01T00:00:00Z",
                         "2030-03-01T24:00:00Z",      "2030-03-01T15:45:00",
                         "2030-03-01T15:45:00.5Z",    "2030-3-1",
                         "2030-03-01T15:45:00+01:00", "yesterday"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(parse_iso8601(bad[i], &t), -1, "'%s' accepted", bad[i]);
}

Test(scalar, civil_matches_gmtime)
{
    /* every day from 1900 to 2400, against the C library */
    for (int64_t day = -25567; day < 157054; day += 1) {
        time_t t = (time_t)(day * 86400 + 45296);
        struct tm tm;
        gmtime_r(&t, &tm);
        struct mtr_civil c = mtr_civil_from_time((mtr_time)t);
        cr_assert(c.year == tm.tm_year + 1900 && c.month == tm.tm_mon + 1 && c.day == tm.tm_mday &&
                      c.wday == tm.tm_wday && c.hour == 12 && c.minute == 34 && c.second == 56,
                  "day %lld", (long long)day);
        cr_assert_eq(mtr_time_from_civil(c.year, c.month, c.day, 12, 34, 56), (mtr_time)t);
    }
}

Test(scalar, format_duration)
{
    char buf[32];
    format_duration(5400000, buf, sizeof buf);
    cr_expect_str_eq(buf, "1h30m");
    format_duration(500, buf, sizeof buf);
    cr_expect_str_eq(buf, "500ms");
    format_duration(0, buf, sizeof buf);
    cr_expect_str_eq(buf, "0s");
}

/* The edges of every scalar parser (from the mutation pass: each line kills a
 * mutant the tests above let live). */
Test(scalar, edges)
{
    int64_t v;
    uint64_t b;
    mtr_time t;
    cr_expect(parse_int64("9223372036854775807", &v) == 0 && v == INT64_MAX);
    cr_expect_eq(parse_int64("-9223372036854775809", &v), -1);
    cr_expect(parse_size("18446744073709551615", &b) == 0 && b == UINT64_MAX);
    cr_expect_eq(parse_size("18446744073709551616", &b), -1);
    cr_expect(parse_size("17179869183GiB", &b) == 0 && b == 17179869183ull * 1073741824ull);
    cr_expect_eq(parse_size("17179869184GiB", &b), -1);
    cr_expect_eq(parse_size("1KiBx", &b), -1);
    cr_expect(parse_duration_ms("9223372036854775807ms", &v) == 0 && v == INT64_MAX);
    cr_expect(parse_duration_ms("9223372036854775806ms1ms", &v) == 0 && v == INT64_MAX);
    cr_expect_eq(parse_duration_ms("9223372036854775807ms1ms", &v), -1);
    const char *good[] = {"1970-01-01T00:00:00Z", "2030-01-15",           "2030-12-15",
                          "2030-03-01T23:00Z",    "2030-03-01T23:59:59Z", "9999-12-31T23:59:59Z"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_expect_eq(parse_iso8601(good[i], &t), 0, "'%s' refused", good[i]);
    cr_expect(parse_iso8601("1970-01-01T00:00:00Z", &t) == 0 && t == 0);
    const char *bad[] = {"1969-12-31T23:59:59Z", "1969-12-31",        "2030-00-15",
                         "2030-13-15",           "2030-03-01T24:00Z", "2030-03-01T00:60:00Z",
                         "2030-03-01T00:00:60Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(parse_iso8601(bad[i], &t), -1, "'%s' accepted", bad[i]);
    /* the +00:00 suffix ends the text: nothing past it is read */
    static const char offset[] = "2030-03-01T15:45:00+00:00\0X";
    cr_expect(parse_iso8601(offset, &t) == 0 && t == iso_of(2030, 3, 1, 15, 45, 0));
}
