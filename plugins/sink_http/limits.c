/* Receiver protection: the origins table and the decisions (limits.h). */
#include "limits.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int limits_on(const struct limits *L)
{
    return L->max_in_flight > 0 || L->max_rate > 0 || L->pause_on_retry_after;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int grow(struct limits *L)
{
    size_t cap = L->cap ? L->cap * 2 : 64;
    struct origin **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < L->cap; i++)
        if (L->slots[i]) {
            size_t j = hash(L->slots[i]->key) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = L->slots[i];
        }
    free(L->slots);
    L->slots = slots;
    L->cap = cap;
    return 0;
}

/* scheme://host:port, lowercased by libcurl, the default port made explicit */
static char *origin_key(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        size_t len = strlen(scheme) + strlen(host) + strlen(port) + 5;
        if ((key = malloc(len)) != NULL) {
            snprintf(key, len, "%s://%s:%s", scheme, host, port);
            for (char *p = key; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return key;
}

struct origin *limits_origin(struct limits *L, const char *url)
{
    char *key = origin_key(url);
    if (!key)
        return NULL;
    if ((L->n + 1) * 2 > L->cap && grow(L) != 0) {
        free(key);
        return NULL;
    }
    size_t j = hash(key) & (L->cap - 1);
    for (; L->slots[j]; j = (j + 1) & (L->cap - 1))
        if (strcmp(L->slots[j]->key, key) == 0) {
            free(key);
            return L->slots[j];
        }
    struct origin *o = calloc(1, sizeof *o);
    if (!o) {
        free(key);
        return NULL;
    }
    o->key = key;
    L->slots[j] = o;
    L->n++;
    return o;
}

/* Deliveries held at most: a few rounds of the origin's requests. */
static size_t hold_max(const struct limits *L)
{
    int64_t n = L->max_in_flight * 4;
    return (size_t)(n < 16 ? 16 : n > 4096 ? 4096 : n);
}

enum verdict limits_check(struct limits *L, struct origin *o, mtr_time now, int queued,
                          int64_t *wait, char *why, size_t len)
{
    if (o->second != now) {
        o->second = now;
        o->started = o->deferred = 0;
    }
    if (o->paused_until > now) {
        *wait = o->paused_until - now;
        snprintf(why, len, "%s asked to wait (HTTP %d with Retry-After) for %llds more", o->key,
                 o->paused_status, (long long)*wait);
        return DEFER;
    }
    if (L->max_rate > 0 && o->started >= L->max_rate) {
        *wait = 1 + o->deferred++ / L->max_rate; /* a burst spread over the seconds after */
        snprintf(why, len, "%s is at max_rate (%lld a second)", o->key, (long long)L->max_rate);
        return DEFER;
    }
    int64_t cap = o->probing ? 1 : L->max_in_flight;
    if (cap > 0 && o->in_flight >= cap) {
        if (queued || o->n_held < hold_max(L))
            return HOLD;
        *wait = 1;
        snprintf(why, len, "%s is at %s (%lld) with %zu more waiting", o->key,
                 o->probing ? "one request while it comes back from a pause" : "max_in_flight",
                 (long long)cap, o->n_held);
        return DEFER;
    }
    return GO;
}

void limits_start(struct origin *o, mtr_time now)
{
    if (o->second != now) {
        o->second = now;
        o->started = o->deferred = 0;
    }
    o->started++;
    o->in_flight++;
}

void limits_unstart(struct origin *o)
{
    if (o->started > 0)
        o->started--;
    limits_end(o);
}

void limits_end(struct origin *o)
{
    if (o->in_flight > 0)
        o->in_flight--;
}

int limits_pause(struct limits *L, struct origin *o, mtr_time now, int64_t seconds, int status)
{
    if (!L->pause_on_retry_after || seconds <= 0)
        return 0;
    if (now + seconds > o->paused_until) {
        o->paused_until = now + seconds;
        o->paused_status = status;
    }
    o->probing = 1;
    return 1;
}

void limits_answered(struct origin *o)
{
    o->probing = 0;
}

void limits_each_holding(struct limits *L, void (*fn)(void *arg, struct origin *o), void *arg)
{
    for (size_t i = 0; i < L->cap; i++)
        if (L->slots[i] && L->slots[i]->head)
            fn(arg, L->slots[i]);
}

void limits_free(struct limits *L)
{
    for (size_t i = 0; i < L->cap; i++)
        if (L->slots[i]) {
            struct held *h = L->slots[i]->head;
            while (h) {
                struct held *next = h->next;
                free(h);
                h = next;
            }
            free(L->slots[i]->key);
            free(L->slots[i]);
        }
    free(L->slots);
    memset(L, 0, sizeof *L);
}
