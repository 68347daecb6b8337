/* The http sink's response reader (plugins/sink_http/response.c): every
 * framing HTTP/1.1 allows, fed whole and a byte at a time, and the answers
 * it must refuse, each with a message naming what was wrong. */
#include "response.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Feeds text like a socket would, in pieces of step bytes, keeping what
 * the reader left for the next read; ends with EOF when eof is set. */
static void feed(struct response *r, const char *text, size_t len, size_t step, int eof)
{
    char *buf = malloc(len + 1);
    size_t have = 0, at = 0;
    cr_assert_not_null(buf);
    while (at < len && r->state != RESPONSE_DONE && r->state != RESPONSE_FAILED) {
        size_t n = len - at < step ? len - at : step;
        memcpy(buf + have, text + at, n);
        have += n;
        at += n;
        size_t used = response_feed(r, buf, have);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    if (eof)
        response_eof(r);
    free(buf);
}

static void read_whole_and_bytewise(const char *text, int eof, void (*check)(struct response *))
{
    size_t steps[] = {strlen(text), 1, 7};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        struct response r;
        response_begin(&r, 1900000000);
        feed(&r, text, strlen(text), steps[i], eof);
        check(&r);
        response_end(&r);
    }
}

static void ok_body(struct response *r)
{
    cr_expect_eq(r->state, RESPONSE_DONE, "%s", r->error);
    cr_expect_eq(r->status, 200);
    cr_expect_eq(r->body_len, 5);
    cr_expect(r->body && strcmp(r->body, "hello") == 0);
}

Test(http_response, content_length)
{
    read_whole_and_bytewise("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, ok_body);
}

Test(http_response, chunked_with_extensions_and_trailers)
{
    read_whole_and_bytewise("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                            "2;name=value\r\nhe\r\n3\r\nllo\r\n0\r\nX-Trailer: 1\r\n\r\n",
                            0, ok_body);
}

Test(http_response, interim_answers_are_skipped)
{
    read_whole_and_bytewise("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
                            "5\r\n\r\nhello",
                            0, ok_body);
}

Test(http_response, a_body_to_the_end_of_the_connection)
{
    read_whole_and_bytewise("HTTP/1.1 200 OK\r\n\r\nhello", 1, ok_body);
    struct response r;
    response_begin(&r, 0);
    feed(&r, "HTTP/1.1 200 OK\r\n\r\nhello", 24, 24, 1);
    cr_expect_eq(r.keep_alive, 0, "a body that ends with the connection ends the connection");
    response_end(&r);
}

Test(http_response, bare_newlines_are_accepted)
{
    read_whole_and_bytewise("HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", 0, ok_body);
}

static void keep(struct response *r)
{
    cr_expect_eq(r->state, RESPONSE_DONE, "%s", r->error);
    cr_expect_eq(r->keep_alive, 1);
}

static void no_keep(struct response *r)
{
    cr_expect_eq(r->state, RESPONSE_DONE, "%s", r->error);
    cr_expect_eq(r->keep_alive, 0);
}

Test(http_response, when_the_connection_may_be_reused)
{
    read_whole_and_bytewise("HTTP/1.1 204 No Content\r\n\r\n", 0, keep);
    read_whole_and_bytewise("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0,
                            no_keep);
    read_whole_and_bytewise("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, no_keep);
    read_whole_and_bytewise(
        "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 0, keep);
    read_whole_and_bytewise("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", 1, no_keep);
}

static void retry_after(struct response *r)
{
    cr_expect_eq(r->state, RESPONSE_DONE, "%s", r->error);
    cr_expect_eq(r->status, 503);
    cr_expect_eq(r->retry_after_s, 120);
}

Test(http_response, retry_after_is_read)
{
    read_whole_and_bytewise("HTTP/1.1 503 Busy\r\nretry-after:  120 \r\nContent-Length: 0\r\n\r\n",
                            0, retry_after);
}

Test(http_response, the_body_kept_is_capped)
{
    size_t big = RESPONSE_MAX + 1000;
    char head[64];
    int n = snprintf(head, sizeof head, "HTTP/1.1 500 Oops\r\nContent-Length: %zu\r\n\r\n", big);
    char *text = malloc((size_t)n + big);
    cr_assert_not_null(text);
    memcpy(text, head, (size_t)n);
    memset(text + n, 'x', big);
    struct response r;
    response_begin(&r, 0);
    feed(&r, text, (size_t)n + big, 4096, 0);
    cr_expect_eq(r.state, RESPONSE_DONE, "%s", r.error);
    cr_expect_eq(r.body_len, RESPONSE_MAX, "the rest is read and dropped");
    response_end(&r);
    free(text);
}

struct refusal {
    const char *text;
    int eof;
    const char *says;
};

Test(http_response, malformed_answers_fail_and_say_why)
{
    static const struct refusal cases[] = {
        {"SMTP ready\r\n\r\n", 0, "did not answer in HTTP/1.x"},
        {"HTTP/1.1 2000 OK\r\n\r\n", 0, "did not answer in HTTP/1.x"},
        {"HTTP/2 200\r\n\r\n", 0, "did not answer in HTTP/1.x"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", 0, "invalid Content-Length '12a'"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0,
         "invalid Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0,
         "invalid Content-Length"},
        {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 0, "without a name"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "invalid chunk size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 0,
         "too large"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 0,
         "longer than its size"},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, "switched protocols"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal", 1, "before its answer's body"},
        {"HTTP/1.1 200 OK\r\nContent-", 1, "before its answer's head"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct response r;
        response_begin(&r, 0);
        feed(&r, cases[i].text, strlen(cases[i].text), 3, cases[i].eof);
        cr_expect_eq(r.state, RESPONSE_FAILED, "case %zu: %s", i, cases[i].text);
        cr_expect(strstr(r.error, cases[i].says) != NULL, "case %zu: '%s' does not say '%s'", i,
                  r.error, cases[i].says);
        cr_expect_eq(r.keep_alive, 0);
        response_end(&r);
    }
}

Test(http_response, a_head_past_the_limit_names_the_status)
{
    size_t big = RESPONSE_HEAD_MAX + 10;
    char *text = malloc(big + 64);
    cr_assert_not_null(text);
    int n = snprintf(text, 64, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(text + n, 'a', big);
    struct response r;
    response_begin(&r, 0);
    feed(&r, text, (size_t)n + big, 8192, 0);
    cr_expect_eq(r.state, RESPONSE_FAILED);
    cr_expect(strstr(r.error, "answered HTTP 200 with response headers larger than 100 KiB"), "%s",
              r.error);
    response_end(&r);
    free(text);
}

Test(http_response, control_bytes_in_a_message_are_shown_safely)
{
    struct response r;
    response_begin(&r, 0);
    static const char text[] = "\x01\x02 not\x7f http\r\n\r\n";
    feed(&r, text, sizeof text - 1, sizeof text - 1, 0);
    cr_expect_eq(r.state, RESPONSE_FAILED);
    for (const char *p = r.error; *p; p++)
        cr_expect(*p >= 0x20 && *p < 0x7f, "byte %d in '%s'", *p, r.error);
    response_end(&r);
}
