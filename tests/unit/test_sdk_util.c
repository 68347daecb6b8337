/* The SDK's shared helpers: the one Retry-After parser (both forms,
 * saturated, garbage refused), JSON escaping, ISO 8601 and error elements. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <metronome/metronome.h>
#include <string.h>

static int64_t ra(const char *v, mtr_time now)
{
    int64_t s;
    return mtr_parse_retry_after(v, strlen(v), now, &s) == 0 ? s : -2;
}

Test(sdk_util, retry_after_seconds)
{
    cr_expect_eq(ra("120", 0), 120);
    cr_expect_eq(ra(" 7 \r\n", 0), 7);
    cr_expect_eq(ra("0", 0), 0);
    cr_expect_eq(ra("99999999999999999999", 0), MTR_RETRY_AFTER_MAX);
    cr_expect_eq(ra("9223372036854775808", 0), MTR_RETRY_AFTER_MAX);
    cr_expect_eq(ra("31622400", 0), MTR_RETRY_AFTER_MAX);
    cr_expect_eq(ra("31622401", 0), MTR_RETRY_AFTER_MAX);
    cr_expect_eq(ra("-5", 0), -2);
    cr_expect_eq(ra("5s", 0), -2);
    cr_expect_eq(ra("1e3", 0), -2);
    cr_expect_eq(ra("", 0), -2);
    cr_expect_eq(ra("   ", 0), -2);
}

Test(sdk_util, retry_after_dates)
{
    mtr_time now = mtr_time_from_civil(1994, 11, 6, 8, 49, 0);
    cr_expect_eq(ra("Sun, 06 Nov 1994 08:49:37 GMT", now), 37);
    cr_expect_eq(ra("Sunday, 06-Nov-94 08:49:37 GMT", now), 37);
    cr_expect_eq(ra("Sun Nov  6 08:49:37 1994", now), 37);
    cr_expect_eq(ra("Sun, 06 Nov 1994 08:48:00 GMT", now), 0); /* in the past */
    cr_expect_eq(ra("Fri, 01 Jan 2100 00:00:00 GMT", now), MTR_RETRY_AFTER_MAX);
    cr_expect_eq(ra("Sun, 06 Nov 1994 08:49:37 UTC", now), -2);
    cr_expect_eq(ra("Sun, 31 Feb 1994 08:49:37 GMT", now), -2);
    cr_expect_eq(ra("Sun, 06 Foo 1994 08:49:37 GMT", now), -2);
    cr_expect_eq(ra("Sun, 06 Nov 1994 24:49:37 GMT", now), -2);
    cr_expect_eq(ra("Sun, 06 Nov 99999 08:49:37 GMT", now), -2);
    cr_expect_eq(ra("tomorrow", now), -2);
}

/* The edges of every field of an HTTP-date (from the mutation pass: each row
 * kills a mutant the rows above let live). */
Test(sdk_util, http_date_edges)
{
    static const struct {
        const char *date;
        const char *iso; /* NULL: refused */
    } rows[] = {
        {"Thu, 01 Jan 1970 00:00:00 GMT", "1970-01-01T00:00:00"},
        {"Wed, 31 Dec 1969 23:59:59 GMT", NULL},
        {"Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31T23:59:59"},
        {"Sat, 31 Jan 2026 23:59:59 GMT", "2026-01-31T23:59:59"},
        {"Sun, 29 Feb 2026 00:00:00 GMT", NULL},
        {"Sat, 29 Feb 2028 00:00:00 GMT", "2028-02-29T00:00:00"},
        {"Sun, 06 Nov 1994 23:00:00 GMT", "1994-11-06T23:00:00"},
        {"Sun, 06 Nov 1994 24:00:00 GMT", NULL},
        {"Sun, 06 Nov 1994 08:59:00 GMT", "1994-11-06T08:59:00"},
        {"Sun, 06 Nov 1994 08:60:00 GMT", NULL},
        {"Sun, 06 Nov 1994 08:49:59 GMT", "1994-11-06T08:49:59"},
        {"Sun, 06 Nov 1994 08:49:60 GMT", "1994-11-06T08:49:59"}, /* a leap second */
        {"Sun, 06 Nov 1994 08:49:61 GMT", NULL},
        {"Sun, 0x Nov 1994 08:49:37 GMT", NULL},
        {"Sun, 06 Nov 19a4 08:49:37 GMT", NULL},
        {"Sun, 06 Dec 1994 08:49:37 GMT", "1994-12-06T08:49:37"},
        {"Sun, 06 Jan 1994 08:49:37 GMT", "1994-01-06T08:49:37"},
        {"Thursday, 01-Jan-70 00:00:00 GMT", "1970-01-01T00:00:00"},
        {"Wednesday, 31-Dec-69 00:00:00 GMT", "2069-12-31T00:00:00"},
        {"Saturday, 01-Jan-00 00:00:10 GMT", "2000-01-01T00:00:10"},
        {"Sunday, 06-Nov-9x 08:49:37 GMT", NULL},
        {"Sun Nov  6 08:49:37 1994", "1994-11-06T08:49:37"},
        {"Wed Nov 16 08:49:37 1994", "1994-11-16T08:49:37"},
        {"Sun Nov 6  08:49:37 1994", NULL},
    };
    char long_text[64]; /* exactly the parser's buffer, without room for its NUL */
    memset(long_text, 'x', sizeof long_text);
    cr_expect_lt(mtr_parse_http_date(long_text, sizeof long_text), 0);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        mtr_time t = mtr_parse_http_date(rows[i].date, strlen(rows[i].date));
        if (!rows[i].iso) {
            cr_expect_lt(t, 0, "'%s' accepted", rows[i].date);
            continue;
        }
        char buf[32];
        mtr_format_iso8601(t, 0, buf, sizeof buf);
        buf[19] = '\0';
        cr_expect(t >= 0 && strcmp(buf, rows[i].iso) == 0, "'%s': got %s, want %s", rows[i].date,
                  t >= 0 ? buf : "refused", rows[i].iso);
    }
}

Test(sdk_util, retry_after_edges)
{
    int64_t secs;
    cr_expect_eq(ra("17\t", 0), 17, "a trailing tab is white space");
    cr_expect(mtr_parse_retry_after("12345", 2, 0, &secs) == 0 && secs == 12,
              "only len bytes are read: %lld", (long long)secs);
    cr_expect_eq(ra("Thu, 01 Jan 1970 00:00:00 GMT", 100), 0, "the first instant is a date");
    cr_expect_eq(ra("Thu, 01 Jan 1970 00:01:40 GMT", 100), 0, "now is no wait");
}

Test(sdk_util, json_escape_edges)
{
    char out[32];
    mtr_json_escape(out, sizeof out, "a b\x1f\x7f", 5);
    cr_expect_str_eq(out, "a b\\u001f\x7f", "space and DEL as is, 0x1f as \\u001f");
    char guard[8];
    memset(guard, 'X', sizeof guard);
    cr_expect_eq(mtr_json_escape(guard, 4, "abcd", 4), 4);
    cr_expect_str_eq(guard, "abc");
    cr_expect_eq(guard[4], 'X', "nothing written past cap");
    memset(guard, 'X', sizeof guard);
    mtr_json_escape(guard, 4, "abcdef", 6);
    cr_expect_eq(guard[4], 'X');
    cr_expect_eq(guard[5], 'X');
}

Test(sdk_util, json_escape_is_json_stringify)
{
    char out[64];
    const char in[] = "a\"b\\c\n\x01\t/\xc3\xa9";
    size_t n = mtr_json_escape(out, sizeof out, in, sizeof in - 1);
    cr_expect_str_eq(out, "a\\\"b\\\\c\\n\\u0001\\t/\xc3\xa9");
    cr_expect_eq(n, strlen(out));
    char small[4];
    cr_expect_eq(mtr_json_escape(small, sizeof small, in, sizeof in - 1), n);
    cr_expect_str_eq(small, "a\\\"");
}

Test(sdk_util, iso8601)
{
    char buf[32];
    mtr_format_iso8601(mtr_time_from_civil(2030, 3, 1, 16, 0, 3), 1, buf, sizeof buf);
    cr_expect_str_eq(buf, "2030-03-01T16:00:03.000Z");
    mtr_format_iso8601(MTR_TIME_MAX + 10, 0, buf, sizeof buf);
    cr_expect_str_eq(buf, "9999-12-31T23:59:59Z");
}

Test(sdk_util, error_element_is_valid_json)
{
    char buf[1024];
    size_t need = mtr_error_element(buf, sizeof buf, "/odometer", 409, "VEHICLE_STATE", "ASLEEP",
                                    "The \"vehicle\" is asleep.", "req-1", "RETRY_LATER");
    cr_assert_lt(need, sizeof buf);
    json_error_t e;
    json_t *v = json_loads(buf, 0, &e);
    cr_assert(v, "%s: %s", buf, e.text);
    cr_expect_eq(json_integer_value(json_object_get(v, "code")), 409);
    json_t *body = json_object_get(v, "body");
    cr_expect_str_eq(json_string_value(json_object_get(body, "description")),
                     "The \"vehicle\" is asleep.");
    cr_expect_str_eq(json_string_value(json_object_get(body, "requestId")), "req-1");
    json_decref(v);
    char small[16], whole[1024];
    size_t a = mtr_error_element(small, sizeof small, "/odometer", 409, "T", "C", "x", NULL, "R");
    size_t b = mtr_error_element(whole, sizeof whole, "/odometer", 409, "T", "C", "x", NULL, "R");
    cr_expect_eq(a, b);
    cr_expect_eq(strlen(small), 15);
    cr_expect(strncmp(small, whole, 15) == 0);
    cr_expect(strstr(whole, "\"requestId\":null,") != NULL, "%s", whole);
}
