/* The http sink's own HTTP/1.1 for http:// and https:// receivers: libcurl
 * opens each connection (name resolution, the SSRF guard, the connect
 * timeout, and for https the TLS handshake and its verification) as a
 * connect-only transfer, and this file keeps it - a pool of kept-alive
 * connections per scheme, host and port - writing each request's head and
 * body (one sendmsg, or curl_easy_send over TLS) and reading the answer with
 * response.h. That is what libcurl does per request, without its
 * per-transfer set-up, header scanning and liveness poll: the courier's cost
 * per delivery fell by about two thirds (bench/README.md). A kept connection
 * the receiver closed in the meantime costs one resend on a new connection,
 * as libcurl does. */
#ifndef MTR_HTTP_PLAIN_H
#define MTR_HTTP_PLAIN_H

#include "http.h"

/* Whether target goes this way (http:// or https://, no proxy, no user info,
 * plain bytes); if so t->authority is its host[:port], t->tls says https,
 * and *path is its request target (at least "/"; the fragment dropped). */
int plain_takes(const struct http_sink *s, struct transfer *t, const char *target,
                const char **path, size_t *path_len);

/* Sends t (headers in t->nodes, body in t->body) over a kept connection to
 * its authority, or a new one; MTR_OK, or MTR_ERR with nothing started. */
int plain_start(struct http_sink *s, struct transfer *t, const char *path, size_t path_len);

/* The sockets to wait for, as curl_multi_poll's extra descriptors, in *fds
 * (the sink's until the next call). Returns how many. */
unsigned plain_wait_fds(struct http_sink *s, struct curl_waitfd **fds);

/* Reads and writes what the wait found ready; ends transfers that timed out. */
void plain_progress(struct http_sink *s, const struct curl_waitfd *fds, unsigned n);

/* A connect-only handle of conn c finished with rc. */
void plain_connected(struct http_sink *s, struct conn *c, CURLcode rc);

/* Closes every connection (none is busy: the sink waited for its transfers). */
void plain_close_all(struct http_sink *s);

#endif
