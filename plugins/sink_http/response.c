/* Reading an HTTP/1.1 response (response.h): the head once it is whole,
 * then the body as it comes, by the framing the head chose. Every length is
 * checked before it is used; anything out of the grammar fails the response
 * with a message naming what was wrong, and the connection is not reused. */
#include "response.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_BYTES 4096 /* a chunk-size or trailer line */

void response_begin(struct response *r, mtr_time now)
{
    *r = (struct response){.state = RESPONSE_HEAD, .retry_after_s = -1, .now = now};
}

void response_end(struct response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

/* Up to max bytes of [p, e) as printable text, for an error message. */
static const char *shown(char *out, size_t max, const char *p, const char *e)
{
    size_t n = 0;
    for (; p < e && n + 1 < max; p++)
        out[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
    out[n] = '\0';
    return out;
}

static void fail(struct response *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->state = RESPONSE_FAILED;
    r->keep_alive = 0;
}

/* Keeps what fits of the body; the rest is dropped. */
static void keep(struct response *r, const char *p, size_t n)
{
    size_t room = RESPONSE_MAX - r->body_len;
    size_t take = n < room ? n : room;
    if (!take)
        return;
    char *b = realloc(r->body, r->body_len + take + 1);
    if (!b)
        return; /* the answer still counts; only its text is lost */
    memcpy(b + r->body_len, p, take);
    r->body = b;
    r->body_len += take;
    b[r->body_len] = '\0';
}

/* The end of the line starting at p (its '\n'), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* [p, e) without trailing CR and surrounding blanks. */
static void trim(const char **p, const char **e)
{
    while (*p < *e && (**p == ' ' || **p == '\t'))
        (*p)++;
    while (*e > *p && ((*e)[-1] == '\r' || (*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

static int token_in(const char *p, const char *e, const char *token)
{
    size_t n = strlen(token);
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *start = p;
        while (p < e && *p != ',')
            p++;
        const char *stop = p;
        trim(&start, &stop);
        if ((size_t)(stop - start) == n && strncasecmp(start, token, n) == 0)
            return 1;
    }
    return 0;
}

/* The last coding of a Transfer-Encoding list is chunked. */
static int ends_chunked(const char *p, const char *e)
{
    const char *last = p;
    for (const char *q = p; q < e; q++)
        if (*q == ',')
            last = q + 1;
    trim(&last, &e);
    return e - last == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* Digits only, no overflow; -1 otherwise. */
static int64_t read_length(const char *p, const char *e)
{
    int64_t v = 0;
    if (p == e)
        return -1;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

struct head {
    int http10;
    int64_t length; /* -1: none */
    int chunked, encoded, close, keep_alive;
};

/* One header line [p, e), CR and blanks trimmed; 0, or -1 with r failed. */
static int header(struct response *r, struct head *h, const char *p, const char *e)
{
    const char *colon = memchr(p, ':', (size_t)(e - p));
    if (!colon || colon == p) {
        fail(r, "the receiver sent a header line without a name and ':'");
        return -1;
    }
    const char *v = colon + 1, *ve = e;
    size_t name_len = (size_t)(colon - p);
    trim(&v, &ve);
#define IS(name) (name_len == sizeof name - 1 && strncasecmp(p, name, name_len) == 0)
    if (IS("content-length")) {
        int64_t n = read_length(v, ve);
        char text[41];
        if (n < 0 || (h->length >= 0 && h->length != n)) {
            fail(r, "the receiver sent an invalid Content-Length '%s'",
                 shown(text, sizeof text, v, ve));
            return -1;
        }
        h->length = n;
    } else if (IS("transfer-encoding")) {
        h->encoded = 1;
        h->chunked = ends_chunked(v, ve);
    } else if (IS("connection")) {
        h->close |= token_in(v, ve, "close");
        h->keep_alive |= token_in(v, ve, "keep-alive");
    } else if (IS("retry-after")) {
        int64_t secs;
        if (mtr_parse_retry_after(v, (size_t)(ve - v), r->now, &secs) == 0)
            r->retry_after_s = secs;
    }
#undef IS
    return 0;
}

/* "HTTP/1.x NNN reason"; 0, or -1 with r failed. */
static int status_line(struct response *r, struct head *h, const char *p, const char *e)
{
    char text[61];
    if (e - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
        (e - p > 12 && p[12] != ' ')) {
        fail(r, "the receiver did not answer in HTTP/1.x (its first line: '%s')",
             shown(text, sizeof text, p, e));
        return -1;
    }
    h->http10 = p[7] == '0';
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return 0;
}

/* How the body after head h is framed. */
static void frame(struct response *r, const struct head *h)
{
    r->keep_alive = !h->close && (!h->http10 || h->keep_alive);
    if (r->status == 204 || r->status == 304) {
        r->state = RESPONSE_DONE;
    } else if (h->chunked) {
        r->state = RESPONSE_CHUNK_SIZE;
    } else if (h->encoded) { /* a coding other than chunked last: to the end */
        r->state = RESPONSE_TO_CLOSE;
        r->keep_alive = 0;
    } else if (h->length >= 0) {
        r->left = (uint64_t)h->length;
        r->state = r->left ? RESPONSE_BODY : RESPONSE_DONE;
    } else {
        r->state = RESPONSE_TO_CLOSE;
        r->keep_alive = 0;
    }
}

/* Headers past RESPONSE_HEAD_MAX: named with the status, when it was read. */
static void too_large(struct response *r, const char *p, size_t n)
{
    struct head h = {.length = -1};
    const char *nl = line_end(p, p + n);
    if (nl && status_line(r, &h, p, nl > p && nl[-1] == '\r' ? nl - 1 : nl) == 0)
        fail(r,
             "the receiver answered HTTP %d with response headers larger than %d KiB; the "
             "answer was not read",
             r->status, RESPONSE_HEAD_MAX / 1024);
    else if (r->state != RESPONSE_FAILED)
        fail(r, "the receiver answered with a head larger than %d KiB", RESPONSE_HEAD_MAX / 1024);
}

/* The head, if [p, p+n) holds all of it: returns its length, or 0. */
static size_t read_head(struct response *r, const char *p, size_t n)
{
    const char *end = p + n, *q = p;
    size_t len = 0;
    while (q < end) { /* the head ends at an empty line */
        const char *nl = line_end(q, end);
        if (!nl)
            break;
        if (nl == q || (nl == q + 1 && *q == '\r')) {
            len = (size_t)(nl + 1 - p);
            break;
        }
        q = nl + 1;
    }
    if ((!len && n >= RESPONSE_HEAD_MAX) || len > RESPONSE_HEAD_MAX) {
        too_large(r, p, n);
        return 0;
    }
    if (!len)
        return 0;
    struct head h = {.length = -1};
    const char *e = line_end(p, end), *ls = p, *le = e;
    trim(&ls, &le);
    if (status_line(r, &h, ls, le) != 0)
        return 0;
    for (q = e + 1; q < p + len;) {
        const char *nl = line_end(q, end), *hs = q, *he = nl;
        trim(&hs, &he);
        if (hs < he && *q != ' ' && *q != '\t' && header(r, &h, hs, he) != 0)
            return 0; /* a folded line (starting blank) is ignored */
        q = nl + 1;
    }
    if (r->status >= 100 && r->status < 200) {
        if (r->status == 101) {
            fail(r, "the receiver switched protocols (HTTP 101)");
            return 0;
        }
        r->status = 0; /* an interim answer: the real one follows */
        r->retry_after_s = -1;
        return len;
    }
    frame(r, &h);
    return len;
}

/* A chunk-size line: hex digits, maybe extensions. */
static size_t read_chunk_size(struct response *r, const char *p, size_t n)
{
    const char *nl = line_end(p, p + n);
    if (!nl) {
        if (n >= LINE_MAX_BYTES)
            fail(r, "the receiver sent a chunk-size line longer than %d bytes", LINE_MAX_BYTES);
        return 0;
    }
    uint64_t size = 0;
    const char *q = p;
    for (; q < nl && *q && strchr("0123456789abcdefABCDEF", *q); q++) {
        if (size >> 59) {
            fail(r, "the receiver sent a chunk too large to be real");
            return 0;
        }
        int d = *q <= '9' ? *q - '0' : (*q | 0x20) - 'a' + 10;
        size = size * 16 + (uint64_t)d;
    }
    if (q == p || (q < nl && *q != ';' && *q != ' ' && *q != '\t' && *q != '\r')) {
        char text[21];
        fail(r, "the receiver sent an invalid chunk size '%s'", shown(text, sizeof text, p, nl));
        return 0;
    }
    r->left = size;
    r->state = size ? RESPONSE_CHUNK_DATA : RESPONSE_TRAILER;
    return (size_t)(nl + 1 - p);
}

/* The CRLF after a chunk. */
static size_t read_chunk_end(struct response *r, const char *p, size_t n)
{
    if (p[0] == '\n') {
        r->state = RESPONSE_CHUNK_SIZE;
        return 1;
    }
    if (p[0] != '\r') {
        fail(r, "the receiver sent chunk data longer than its size");
        return 0;
    }
    if (n < 2)
        return 0;
    if (p[1] != '\n') {
        fail(r, "the receiver sent chunk data longer than its size");
        return 0;
    }
    r->state = RESPONSE_CHUNK_SIZE;
    return 2;
}

/* Trailer lines, up to the empty one. */
static size_t read_trailer(struct response *r, const char *p, size_t n)
{
    const char *nl = line_end(p, p + n);
    if (!nl) {
        if (n >= LINE_MAX_BYTES)
            fail(r, "the receiver sent a trailer line longer than %d bytes", LINE_MAX_BYTES);
        return 0;
    }
    if (nl == p || (nl == p + 1 && *p == '\r'))
        r->state = RESPONSE_DONE;
    return (size_t)(nl + 1 - p);
}

/* Body bytes while left counts them down. */
static size_t read_counted(struct response *r, const char *p, size_t n, enum response_state next)
{
    size_t take = (uint64_t)n < r->left ? n : (size_t)r->left;
    keep(r, p, take);
    r->left -= take;
    if (!r->left)
        r->state = next;
    return take;
}

size_t response_feed(struct response *r, const char *p, size_t n)
{
    size_t used = 0;
    while (used < n) {
        size_t step = 0;
        switch (r->state) {
        case RESPONSE_HEAD:
            step = read_head(r, p + used, n - used);
            break;
        case RESPONSE_BODY:
            step = read_counted(r, p + used, n - used, RESPONSE_DONE);
            break;
        case RESPONSE_CHUNK_SIZE:
            step = read_chunk_size(r, p + used, n - used);
            break;
        case RESPONSE_CHUNK_DATA:
            step = read_counted(r, p + used, n - used, RESPONSE_CHUNK_END);
            break;
        case RESPONSE_CHUNK_END:
            step = read_chunk_end(r, p + used, n - used);
            break;
        case RESPONSE_TRAILER:
            step = read_trailer(r, p + used, n - used);
            break;
        case RESPONSE_TO_CLOSE:
            keep(r, p + used, n - used);
            step = n - used;
            break;
        case RESPONSE_DONE:
        case RESPONSE_FAILED:
            return used;
        }
        if (!step)
            return used; /* more bytes needed, or it failed */
        used += step;
    }
    return used;
}

void response_eof(struct response *r)
{
    switch (r->state) {
    case RESPONSE_TO_CLOSE:
        r->state = RESPONSE_DONE;
        r->keep_alive = 0;
        break;
    case RESPONSE_DONE:
    case RESPONSE_FAILED:
        break;
    case RESPONSE_HEAD:
        fail(r, "the receiver closed the connection before its answer's head was complete");
        break;
    default:
        fail(r, "the receiver closed the connection before its answer's body was complete");
        break;
    }
}
