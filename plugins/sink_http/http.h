/* The http sink's state, shared by its two ways of sending: libcurl's multi
 * interface (http.c: proxies, anything unusual) and the sink's own HTTP/1.1
 * framing over connections libcurl opens (plain.c: http:// and https://
 * receivers, where libcurl's per-request cost was most of the delivery's;
 * bench/README.md).
 * A transfer is one delivery's request, whichever way it goes; complete()
 * turns its end into the core's outcome the same way for both. */
#ifndef MTR_HTTP_SINK_H
#define MTR_HTTP_SINK_H

#include "limits.h"
#include "response.h"
#include <curl/curl.h>
#include <metronome/metronome.h>
#include <time.h>

enum handle_kind { KIND_TRANSFER = 1, KIND_CONN }; /* what an easy handle's PRIVATE points to */

struct conn;

/* A transfer and its easy handle stay paired for the sink's life: the options
 * that never change are set once, and the request headers are a list whose
 * nodes and text belong to the transfer, rewritten for each delivery. */
struct transfer {
    enum handle_kind kind; /* KIND_TRANSFER, first */
    struct http_sink *sink;
    CURL *easy;
    struct curl_slist *nodes; /* the header list, in place */
    const char **lines;       /* each node's line while it is built (NULL: in text) */
    size_t n_nodes;
    char *text; /* the nodes' "Name: value" lines */
    size_t text_cap;
    mtr_sink_done_fn done;
    void *core;
    void *cookie;
    char *response;
    size_t response_len;
    int64_t retry_after_s;
    mtr_time submitted_at; /* the daemon's clock: HTTP-dates are read against it */
    struct timespec started;
    struct origin *origin; /* with receiver protection on, else NULL */
    char refused[256];     /* set by the SSRF guard */
    char curl_error[CURL_ERROR_SIZE];
    /* sent by plain.c: */
    char *request; /* the request's head */
    size_t request_len, request_cap;
    const char *body; /* the core's, until the outcome */
    size_t body_len;
    struct conn *conn;
    char authority[256]; /* host[:port], the connection pool's key */
    int fresh;           /* resent once on a new connection after a kept one failed */
    int tls;             /* https:// */
    struct transfer *next_free;
};

struct plain {
    struct pool **pools; /* hash of authority -> idle connections */
    struct conn *all;    /* every connection, busy or idle */
    int64_t n_conns;
    struct curl_waitfd *fds; /* the last wait's descriptors */
    struct conn **waiting;   /* and their connections, in order */
    size_t waiting_cap;
};

struct http_sink {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    const char *url; /* every delivery goes here instead of its callback URI (events' sinks) */
    int64_t timeout_ms;
    int64_t concurrency;
    uint64_t max_body_bytes;
    int allow_private;
    int standard_webhooks;
    unsigned char sw_key[64];
    size_t sw_key_len;
    const char *ca_file;
    const char *proxy; /* NULL: direct; the environment's proxies are never used */
    CURLM *multi;
    CURLSH *share; /* TLS sessions, so any transfer resumes one when it opens a connection */
    int in_flight;
    struct transfer *free_list;
    struct limits limits;
    size_t held; /* deliveries waiting in origins' queues */
    struct plain plain;
};

/* The SSRF guard, as libcurl's open-socket callback; clientp is a transfer. */
curl_socket_t guarded_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *address);

/* Ends t: reports its outcome to the core and frees it. status is the
 * receiver's (0: none); error is NULL when an answer was read whole. */
void complete(struct http_sink *s, struct transfer *t, long status, const char *error);

#endif
