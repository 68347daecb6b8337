/* The http sink's own HTTP/1.1 for http:// receivers (plugins/sink_http/
 * plain.c), against a scripted TCP server on 127.0.0.1 that records every
 * request's head and answers in the framing a test chooses: the request is
 * well formed HTTP/1.1, connections are kept and reused, every response
 * framing is read, and a kept connection the receiver closed is resent once
 * on a new one without counting an attempt. */
#define _GNU_SOURCE /* strcasestr */
#include "scenario.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum answer_mode {
    ANSWER_FRAMINGS,     /* each request in turn: chunked, 100 then 204, HTTP/1.0, to close */
    ANSWER_THEN_HANG_UP, /* 200 with keep-alive implied, then close without saying so */
};

#define HEADS_MAX 64

struct scripted {
    int fd;
    unsigned short port;
    pthread_t thread;
    volatile int stop;
    enum answer_mode mode;
    pthread_mutex_t mu;
    size_t connections, requests;
    char *heads[HEADS_MAX];
    size_t body_len[HEADS_MAX];
    char *ids[HEADS_MAX];
};

struct conn_arg {
    struct scripted *s;
    int fd;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one request: its head (returned, malloc'd) and body (*body). */
static char *read_request(int fd, char **body, size_t *body_len)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    char *end = NULL;
    while (!end) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0) {
            free(buf);
            return NULL;
        }
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end + 4 - buf);
    const char *cl = strcasestr(buf, "\r\nContent-Length: ");
    size_t want = cl ? strtoul(cl + 18, NULL, 10) : 0;
    while (len - head_len < want) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0) {
            free(buf);
            return NULL;
        }
        len += (size_t)n;
    }
    *body = malloc(want + 1);
    memcpy(*body, buf + head_len, want);
    (*body)[want] = '\0';
    *body_len = want;
    buf[head_len] = '\0';
    return buf;
}

/* The verify answer: HMAC-SHA256(token, challenge) in hex. */
static void challenge_answer(const char *body, char *out, size_t size)
{
    const char *c = strstr(body, "\"challenge\":\"");
    char hex[65] = "";
    if (c) {
        c += 13;
        const char *e = strchr(c, '"');
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)SCENARIO_TOKEN,
                                    strlen(SCENARIO_TOKEN));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)c, (size_t)(e - c));
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    }
    char json[128];
    int n = snprintf(json, sizeof json, "{\"challenge\":\"%s\"}", hex);
    snprintf(out, size, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n, json);
}

/* Answers request number k (counted over all connections); returns 1 to hang up. */
static int answer(struct scripted *s, int fd, size_t k)
{
    static const char *const framings[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nyes\r\n0\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\n\r\nto the end",
    };
    if (s->mode == ANSWER_THEN_HANG_UP) {
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        write_all(fd, ok, sizeof ok - 1);
        return 1;
    }
    const char *a = framings[k % 4];
    write_all(fd, a, strlen(a));
    return k % 4 >= 2; /* HTTP/1.0 and a body to the end: the connection ends */
}

static void *serve(void *arg)
{
    struct conn_arg *ca = arg;
    struct scripted *s = ca->s;
    int fd = ca->fd;
    free(ca);
    for (;;) {
        char *body = NULL;
        size_t body_len = 0;
        char *head = read_request(fd, &body, &body_len);
        if (!head)
            break;
        if (strstr(body, "\"eventName\":\"verify\"")) {
            char reply[256];
            challenge_answer(body, reply, sizeof reply);
            write_all(fd, reply, strlen(reply));
            free(head);
            free(body);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        size_t k = s->requests++;
        if (k < HEADS_MAX) {
            s->heads[k] = head;
            s->body_len[k] = body_len;
            const char *id = strstr(head, "Metronome-Delivery-Id: ");
            s->ids[k] = id ? strndup(id + 23, 36) : NULL;
        } else {
            free(head);
        }
        pthread_mutex_unlock(&s->mu);
        free(body);
        if (answer(s, fd, k))
            break;
    }
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct scripted *s = arg;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        pthread_mutex_lock(&s->mu);
        s->connections++;
        pthread_mutex_unlock(&s->mu);
        struct conn_arg *ca = malloc(sizeof *ca);
        *ca = (struct conn_arg){s, c};
        pthread_t t;
        pthread_create(&t, NULL, serve, ca);
        pthread_detach(t);
    }
    return NULL;
}

static void scripted_start(struct scripted *s, enum answer_mode mode)
{
    memset(s, 0, sizeof *s);
    cr_assert(sodium_init() >= 0);
    pthread_mutex_init(&s->mu, NULL);
    s->mode = mode;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(s->fd >= 0);
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(s->fd, 64), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, accept_loop, s);
}

static void scripted_stop(struct scripted *s)
{
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < HEADS_MAX; i++) {
        free(s->heads[i]);
        free(s->ids[i]);
    }
}

static const char *const eight[] = {"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", NULL};

/* A pipeline posting to the scripted server; runs the 16:00 tick for eight vehicles. */
static json_t *run_tick(struct scenario *sc, struct scripted *s, const char *path)
{
    char uri[160];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%u%s", s->port, path);
    struct scenario_opts o = {.callback = uri};
    scenario_start(sc, &o);
    sc_setup(sc, "2030-03-01T15:45:00Z", eight);
    sc_virtual(sc, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    return sc_deliveries(sc);
}

static void expect_each_delivered_once(json_t *d)
{
    size_t i;
    json_t *x;
    cr_expect_eq(json_array_size(d), 8);
    json_array_foreach(d, i, x)
    {
        cr_expect_str_eq(json_string_value(json_object_get(x, "state")), "delivered");
        cr_expect_eq(json_array_size(json_object_get(x, "attempts")), 1,
                     "delivery %zu took %zu attempts", i,
                     json_array_size(json_object_get(x, "attempts")));
    }
}

static const char *header_of(const char *head, const char *name, char *out, size_t size)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *h = strcasestr(head, key);
    if (!h)
        return NULL;
    h += strlen(key);
    size_t n = strcspn(h, "\r");
    snprintf(out, size, "%.*s", (int)n, h);
    return out;
}

Test(http_plain, requests_are_http_1_1_and_every_framing_is_read, .timeout = 60)
{
    struct scripted s;
    struct scenario sc;
    scripted_start(&s, ANSWER_FRAMINGS);
    json_t *d = run_tick(&sc, &s, "/hook?fleet=1");
    expect_each_delivered_once(d);
    cr_expect_eq(s.requests, 8, "each payload sent once");
    char want_host[64], v[128];
    snprintf(want_host, sizeof want_host, "127.0.0.1:%u", s.port);
    for (size_t k = 0; k < s.requests && k < HEADS_MAX; k++) {
        const char *h = s.heads[k];
        cr_expect(strncmp(h, "POST /hook?fleet=1 HTTP/1.1\r\n", 29) == 0, "request line: %.40s", h);
        cr_expect(header_of(h, "Host", v, sizeof v) && strcmp(v, want_host) == 0, "Host: %s", h);
        cr_expect(header_of(h, "Content-Length", v, sizeof v) &&
                      strtoul(v, NULL, 10) == s.body_len[k],
                  "Content-Length matches the body");
        cr_expect(header_of(h, "Content-Type", v, sizeof v) && strcmp(v, "application/json") == 0);
        cr_expect(header_of(h, "SC-Signature", v, sizeof v) && strlen(v) == 64);
        cr_expect(!header_of(h, "Expect", v, sizeof v), "no Expect header");
    }
    json_decref(d);
    scenario_stop(&sc);
    scripted_stop(&s);
}

Test(http_plain, connections_are_kept_and_reused, .timeout = 60)
{
    struct scripted s;
    struct scenario sc;
    scripted_start(&s, ANSWER_FRAMINGS);
    json_t *d = run_tick(&sc, &s, "/hook");
    expect_each_delivered_once(d);
    /* the chunked and the 204 answers keep their connection; the other two end it */
    cr_expect_lt(s.connections, s.requests + 1,
                 "%zu connections for %zu requests and a verify: none reused", s.connections,
                 s.requests);
    json_decref(d);
    scenario_stop(&sc);
    scripted_stop(&s);
}

Test(http_plain, a_kept_connection_the_receiver_closed_is_resent_once, .timeout = 60)
{
    /* the receiver closes each connection after answering, without saying so: the next
     * delivery finds it dead, and goes again on a new connection - one attempt, no duplicate */
    struct scripted s;
    struct scenario sc;
    scripted_start(&s, ANSWER_THEN_HANG_UP);
    json_t *d = run_tick(&sc, &s, "/hook");
    expect_each_delivered_once(d);
    cr_expect_eq(s.requests, 8, "the receiver got each payload once");
    for (size_t i = 0; i < s.requests && i < HEADS_MAX; i++)
        for (size_t j = 0; j < i; j++)
            cr_expect(!s.ids[i] || !s.ids[j] || strcmp(s.ids[i], s.ids[j]) != 0,
                      "delivery %s sent twice", s.ids[i]);
    json_decref(d);
    scenario_stop(&sc);
    scripted_stop(&s);
}

Test(http_plain, tls_receivers_get_the_same_requests_over_verified_kept_connections, .timeout = 60)
{
    /* https:// is framed the same way, over TLS sessions libcurl opens and verifies */
    struct scenario sc;
    struct scenario_opts o = {.tls = 1};
    scenario_start(&sc, &o);
    sc_setup(&sc, "2030-03-01T15:45:00Z", eight);
    sc_virtual(&sc, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *d = sc_deliveries(&sc);
    expect_each_delivered_once(d);
    cr_expect_eq(sc_payloads(&sc), 8, "each payload reached the receiver once");
    for (size_t k = 0; k < sc_payloads(&sc); k++) {
        struct received r;
        receiver_get_payload(&sc.r, k, &r);
        cr_expect(r.signature_ok, "payload %zu: its signature checks", k);
        received_free(&r);
    }
    json_decref(d);
    scenario_stop(&sc);
}

Test(http_plain, a_certificate_the_sink_does_not_trust_is_refused, .timeout = 60)
{
    struct scenario sc;
    struct scenario_opts o = {.tls = 2};
    scenario_start(&sc, &o);
    struct run_result r = sc_run(&sc, "webhook", "verify", "fleet", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "certificate") != NULL, "the error names the certificate: %s", r.err);
    run_result_free(&r);
    cr_expect_eq(receiver_count(&sc.r), 0, "nothing reached the receiver");
    scenario_stop(&sc);
}
