/* A webhook receiver on libmicrohttpd, for the demo and the end-to-end
 * tests: it answers verify challenges (HMAC-SHA256 keyed with the management
 * token), checks the SC-Signature of every payload, records what it got, and
 * can be told how to answer - a status, Retry-After, dropping the connection,
 * hanging, or a wrong challenge answer - for the next requests. */
#ifndef MTR_RECEIVER_H
#define MTR_RECEIVER_H

#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <sys/types.h>

enum receiver_mode {
    RECV_RESPOND = 0, /* status (+ Retry-After) */
    RECV_DROP = 1,    /* close the connection without an answer */
    RECV_HANG = 2,    /* answer after hang_ms */
    RECV_WRONG_CHALLENGE = 3,
};

struct receiver_rule {
    int mode;
    int status;
    int retry_after; /* seconds; <0: no header */
    int hang_ms;
    const char *retry_after_text; /* sent as the Retry-After value as is, when set */
};

struct seen_id {
    const char *id; /* a log entry's delivery_id */
    int n;
};

struct received {
    char *delivery_id;
    char *event; /* eventName */
    char *body;
    size_t len;
    int signature_ok; /* SC-Signature matches the body */
    int status;       /* what the receiver answered (0: dropped) */
    int vehicles;
    int attempt_n; /* how many times this delivery id arrived, this one included */
    char *webhook_id, *webhook_timestamp, *webhook_signature; /* Standard Webhooks, or NULL */
    char *headers; /* every request header, "Name: value\n" each, as they came */
};

struct receiver {
    char *tls_cert, *tls_key; /* PEM, kept while MHD runs */
    void *mhd;
    unsigned short port;
    char token[512];
    pthread_mutex_t mu;
    struct receiver_rule *script; /* applied to the next requests, in order */
    size_t n_script, script_pos;
    struct receiver_rule dflt;
    struct receiver_rule verify_rule; /* for verify challenges; scripts are for payloads */
    struct received *log;
    size_t n_log, cap_log;
    struct seen_id *seen; /* arrivals per delivery id: open addressing, cap_seen a power of 2 */
    size_t n_seen, cap_seen;
    size_t n_scheduled;        /* scheduled payloads received */
    FILE *log_file;            /* JSON lines of what arrived, or NULL */
    unsigned flaky_every;      /* answer 503 to every n-th payload (0: never) */
    size_t active, max_active; /* payloads being answered now, and the most at once */
};

/* Starts on 127.0.0.1:port (0: any free port; r->port tells). token is the
 * management token. Returns 0 or -1. */
int receiver_start(struct receiver *r, unsigned short port, const char *token);
/* The same over TLS, with this certificate and key (PEM text). */
int receiver_start_tls(struct receiver *r, unsigned short port, const char *token,
                       const char *cert_pem, const char *key_pem);
void receiver_stop(struct receiver *r);

/* The next n requests get these answers; afterwards, dflt. */
void receiver_script(struct receiver *r, const struct receiver_rule *rules, size_t n);
void receiver_default(struct receiver *r, struct receiver_rule rule);

/* How verify challenges are answered (default: 200 with the right HMAC). */
void receiver_verify_rule(struct receiver *r, struct receiver_rule rule);

/* Copies of the log under the lock. */
size_t receiver_count(struct receiver *r);
/* The most payloads it was answering at once (verify challenges aside). */
size_t receiver_max_active(struct receiver *r);
size_t receiver_count_event(struct receiver *r, const char *event);
/* The i-th request (copy owned by the caller: received_free). */
int receiver_get(struct receiver *r, size_t i, struct received *out);
/* The i-th scheduled payload, skipping verify challenges. */
int receiver_get_payload(struct receiver *r, size_t i, struct received *out);
void received_free(struct received *x);

#endif
