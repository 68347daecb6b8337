/* An HTTP/1.1 response read as its bytes arrive, for the sink's own
 * transport (plain.h): the status, whether the connection may carry another
 * request, Retry-After, and up to RESPONSE_MAX bytes of the body (the rest
 * is read and dropped). Bodies are framed by Content-Length, chunked
 * transfer coding, or the connection's end; 1xx answers are skipped. It
 * holds no socket, so a fuzz target can feed it anything a receiver might
 * send (tests/fuzz/fuzz_response.c). */
#ifndef MTR_HTTP_RESPONSE_H
#define MTR_HTTP_RESPONSE_H

#include <metronome/metronome.h>
#include <stddef.h>
#include <stdint.h>

#define RESPONSE_MAX (64 * 1024) /* body bytes kept for the ledger */
#define RESPONSE_HEAD_MAX 102400 /* status line and headers, as libcurl allows */

enum response_state {
    RESPONSE_HEAD,
    RESPONSE_BODY,       /* Content-Length bytes */
    RESPONSE_CHUNK_SIZE, /* a chunk's size line */
    RESPONSE_CHUNK_DATA,
    RESPONSE_CHUNK_END, /* the CRLF after a chunk's data */
    RESPONSE_TRAILER,   /* trailer lines after the last chunk */
    RESPONSE_TO_CLOSE,  /* the body runs to the connection's end */
    RESPONSE_DONE,
    RESPONSE_FAILED,
};

struct response {
    enum response_state state;
    int status;
    int keep_alive;        /* the connection may carry the next request */
    int64_t retry_after_s; /* -1 when absent */
    uint64_t left;         /* body or chunk bytes still to come */
    mtr_time now;          /* HTTP-dates in Retry-After are read against it */
    char *body;            /* malloc'd, NUL-terminated; NULL when empty */
    size_t body_len;
    char error[160];
};

/* Ready to read the answer to a request sent at now. */
void response_begin(struct response *r, mtr_time now);

/* Reads from the n bytes at p what it can; returns how many it consumed.
 * The head is consumed only whole, so bytes left over are to be offered
 * again with more behind them. Ends in RESPONSE_DONE or RESPONSE_FAILED. */
size_t response_feed(struct response *r, const char *p, size_t n);

/* The connection ended: a body running to it is complete, anything else
 * failed (the error says what was missing). */
void response_eof(struct response *r);

/* Frees the body unless it was taken (set r->body to NULL to take it). */
void response_end(struct response *r);

#endif
