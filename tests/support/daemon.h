/* A `metronome run` in the background for tests of the running daemon: its
 * output goes to a file, readiness is polled (the log line that names the
 * admin API's address, which a pipeline with port 0 only learns there), and
 * it is stopped with SIGTERM. Plus a small HTTP client for its API. */
#ifndef MTR_TEST_DAEMON_H
#define MTR_TEST_DAEMON_H

#include <jansson.h>
#include <sys/types.h>

struct daemon {
    pid_t pid;
    char *log;         /* the file its stdout and stderr go to */
    char base[96];     /* http://127.0.0.1:PORT */
    const char *token; /* the admin token */
    const char *ca;    /* a certificate http_call trusts (HTTPS), or NULL */
};

/* Starts metronome run --config config [extra args, NULL-terminated];
 * returns once its API answers /healthz (aborts the test after 20 s). */
void daemon_start(struct daemon *d, const char *config, const char *token,
                  const char *const *extra);
/* The same for an API on HTTPS whose certificate is ca. */
void daemon_start_tls(struct daemon *d, const char *config, const char *token, const char *ca);
/* SIGTERM, then waits (at most 30 s); returns the exit status. */
int daemon_stop(struct daemon *d);
/* Whether the log holds text. */
int daemon_logged(const struct daemon *d, const char *text);

struct http_reply {
    long status;
    char *body;    /* NUL-terminated, owned */
    char *headers; /* every response header line, owned */
    json_t *json;  /* the body parsed, or NULL */
};

/* One request to the daemon's API: path may carry a query; auth is a bearer
 * token (NULL: none); body may be NULL. */
struct http_reply http_call(const struct daemon *d, const char *method, const char *path,
                            const char *auth, const char *body, size_t body_len);
void http_reply_free(struct http_reply *r);

/* Polls fn(arg) every 50 ms until it returns non-zero or ms pass; returns
 * its last answer. */
int poll_until(int (*fn)(void *), void *arg, int ms);

#endif
