/* Courier: a thread that drains the inbox into the sinks, drives them, and
 * posts outcomes to the outbox. */
#include "courier.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void push(struct courier_queue *q, struct courier_item *it)
{
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
}

static struct courier_item *take_all(struct courier_queue *q)
{
    struct courier_item *all = q->head;
    q->head = q->tail = NULL;
    return all;
}

/* ---- the items handed to sinks ------------------------------------------------------- */

static struct courier_item tombstone_item;
#define TOMBSTONE (&tombstone_item)

static size_t slot_of(const struct courier *k, const struct courier_item *it)
{
    uint64_t h = (uint64_t)(uintptr_t)it * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (k->handed_cap - 1);
}

/* Rehashes into a table twice as large, or as large when tombstones, not
 * live items, filled it. */
static int handed_grow(struct courier *k)
{
    size_t live = 0, old_cap = k->handed_cap;
    for (size_t i = 0; i < old_cap; i++)
        live += k->handed[i] && k->handed[i] != TOMBSTONE;
    size_t cap = !old_cap ? 1024 : live * 4 < old_cap ? old_cap : old_cap * 2;
    struct courier_item **old = k->handed, **p = calloc(cap, sizeof *p);
    if (!p)
        return -1;
    k->handed = p;
    k->handed_cap = cap;
    k->handed_used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] && old[i] != TOMBSTONE) {
            size_t j = slot_of(k, old[i]);
            while (p[j])
                j = (j + 1) & (cap - 1);
            p[j] = old[i];
            k->handed_used++;
        }
    free(old);
    return 0;
}

static int handed_add(struct courier *k, struct courier_item *it)
{
    if ((k->handed_used + 1) * 2 > k->handed_cap && handed_grow(k) != 0)
        return -1;
    size_t j = slot_of(k, it);
    while (k->handed[j] && k->handed[j] != TOMBSTONE)
        j = (j + 1) & (k->handed_cap - 1);
    if (!k->handed[j])
        k->handed_used++;
    k->handed[j] = it;
    return 0;
}

/* Removes it; returns 0 when it was there. Compares pointers only: a cookie
 * is never dereferenced before it is found here. */
static int handed_remove(struct courier *k, const void *cookie)
{
    if (!k->handed_cap || !cookie)
        return -1;
    size_t j = slot_of(k, cookie);
    for (size_t n = 0; n < k->handed_cap && k->handed[j]; n++) {
        if (k->handed[j] == cookie) {
            k->handed[j] = TOMBSTONE;
            return 0;
        }
        j = (j + 1) & (k->handed_cap - 1);
    }
    return -1;
}

static const struct mtr_sink_ops *ops_of(struct courier *k, size_t sink)
{
    return k->c->sinks[sink].inst->ctx.pf->desc.sink;
}

/* Moves the finished items to the outbox, all under one lock (courier thread). */
static void post_done(struct courier *k)
{
    if (!k->done.head)
        return;
    pthread_mutex_lock(&k->mu);
    if (k->outbox.tail)
        k->outbox.tail->next = k->done.head;
    else
        k->outbox.head = k->done.head;
    k->outbox.tail = k->done.tail;
    pthread_cond_signal(&k->outbox_ready);
    pthread_mutex_unlock(&k->mu);
    k->done.head = k->done.tail = NULL;
}

static void finish_item(struct courier *k, struct courier_item *it,
                        const struct mtr_sink_outcome *o)
{
    it->o = *o;
    it->o.cookie = it;
    snprintf(it->error, sizeof it->error, "%.511s", o->error ? o->error : "");
    it->o.error = o->error ? it->error : NULL;
    if (it->keep_response && o->response && !it->response) { /* a receiver's word: bounded */
        size_t len = o->response_len < 65536 ? o->response_len : 65536;
        if ((it->response = malloc(len + 1)) != NULL) {
            memcpy(it->response, o->response, len);
            it->response[len] = '\0';
            it->response_len = len;
        }
    }
    it->o.response = NULL; /* valid only during the sink's callback */
    it->o.response_len = 0;
    if (it->o.latency_us < 0)
        it->o.latency_us = 0;
    if (it->o.retry_after_s > MTR_RETRY_AFTER_MAX)
        it->o.retry_after_s = MTR_RETRY_AFTER_MAX;
    k->in_sinks--;
    push(&k->done, it); /* posted after this round of polling */
}

/* A sink handed back a cookie it was not given (or one twice): it is not
 * trusted any more. What it still holds comes back failed, to be retried. */
static void quarantine(struct courier *k, size_t sink, const void *cookie)
{
    const struct instance *in = k->c->sinks[sink].inst;
    char why[512];
    snprintf(why, sizeof why,
             "sink '%s' (plugin %s, %s) handed back an outcome for a delivery it was not given "
             "(cookie %p): it is no longer used in this run",
             k->c->sinks[sink].name, in->ctx.pf->desc.name, in->ctx.pf->path, cookie);
    if (!k->faults[sink]) {
        k->faults[sink] = strdup(why);
        log_msg(MTR_LOG_ERROR, k->c->sinks[sink].name, "%s", why);
    }
    for (size_t i = 0; i < k->handed_cap; i++) {
        struct courier_item *it = k->handed[i];
        if (!it || it == TOMBSTONE || it->sink != sink)
            continue;
        k->handed[i] = TOMBSTONE;
        struct mtr_sink_outcome o = {.status = MTR_ERR,
                                     .retry_after_s = -1,
                                     .error = k->faults[sink] ? k->faults[sink] : why};
        finish_item(k, it, &o);
    }
}

static void on_done(void *core, const struct mtr_sink_outcome *o)
{
    struct courier *k = core;
    if (!o || handed_remove(k, o->cookie) != 0) {
        quarantine(k, k->current_sink, o ? o->cookie : NULL);
        return;
    }
    finish_item(k, o->cookie, o);
}

static void refuse(struct courier *k, struct courier_item *it)
{
    const char *why = k->faults[it->sink] ? k->faults[it->sink]
                      : k->c->sinks[it->sink].inst->ctx.error[0]
                          ? k->c->sinks[it->sink].inst->ctx.error
                          : "the sink refused it (no reason given)";
    struct mtr_sink_outcome o = {.status = MTR_ERR, .retry_after_s = -1, .error = why};
    k->in_sinks++;
    finish_item(k, it, &o);
}

/* Submits in order; returns 0 when the sink is full. */
static int submit(struct courier *k, struct courier_item *it)
{
    if (k->faults[it->sink] || handed_add(k, it) != 0) {
        refuse(k, it);
        return 1;
    }
    k->in_sinks++; /* before the call: done may come from inside submit */
    k->current_sink = it->sink;
    it->d.cookie = it;
    int rc = ops_of(k, it->sink)->submit(k->c->sinks[it->sink].inst->state, &it->d, on_done, k);
    if (rc == MTR_OK)
        return 1;
    if (handed_remove(k, it) != 0)
        return 1; /* its outcome came already, inside submit */
    k->in_sinks--;
    if (rc == MTR_EAGAIN)
        return 0;
    refuse(k, it);
    return 1;
}

static void drain_waiting(struct courier *k)
{
    for (size_t s = 0; s < k->c->n_sinks; s++) {
        struct courier_queue *q = &k->waiting[s];
        while (q->head) {
            struct courier_item *it = q->head;
            struct courier_item *next = it->next;
            if (!submit(k, it))
                break;
            q->head = next;
            if (!q->head)
                q->tail = NULL;
        }
    }
}

static void accept_inbox(struct courier *k, struct courier_item *list)
{
    while (list) {
        struct courier_item *it = list;
        list = it->next;
        struct courier_queue *q = &k->waiting[it->sink];
        if (q->head || !submit(k, it))
            push(q, it); /* behind what already waits, to keep the order */
    }
}

static void poll_sinks(struct courier *k, int timeout_ms)
{
    size_t pollable = 0;
    for (size_t s = 0; s < k->c->n_sinks; s++)
        pollable += ops_of(k, s)->poll != NULL;
    for (size_t s = 0; s < k->c->n_sinks; s++)
        if (ops_of(k, s)->poll && !k->faults[s]) {
            k->current_sink = s;
            ops_of(k, s)->poll(k->c->sinks[s].inst->state, pollable == 1 ? timeout_ms : 0);
        }
}

static int any_waiting(const struct courier *k)
{
    for (size_t s = 0; s < k->c->n_sinks; s++)
        if (k->waiting[s].head)
            return 1;
    return 0;
}

static void *courier_main(void *arg)
{
    struct courier *k = arg;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        if (!k->inbox.head && k->in_sinks == 0 && !any_waiting(k)) {
            if (k->stop) {
                pthread_mutex_unlock(&k->mu);
                break;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 50 * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&k->inbox_ready, &k->mu, &until);
        }
        struct courier_item *list = take_all(&k->inbox);
        pthread_mutex_unlock(&k->mu);
        accept_inbox(k, list);
        drain_waiting(k);
        /* short polls keep new work from waiting behind a slow answer */
        poll_sinks(k, k->in_sinks ? 2 : 0);
        post_done(k);
    }
    post_done(k);
    return NULL;
}

int courier_start(struct courier *k, struct config *c)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->waiting = calloc(c->n_sinks ? c->n_sinks : 1, sizeof *k->waiting);
    k->faults = calloc(c->n_sinks ? c->n_sinks : 1, sizeof *k->faults);
    if (!k->waiting || !k->faults || handed_grow(k) != 0) {
        free(k->waiting);
        free(k->faults);
        free(k->handed);
        return -1;
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->outbox_ready, NULL);
    pthread_cond_init(&k->inbox_ready, NULL);
    if (pthread_create(&k->thread, NULL, courier_main, k) != 0) {
        free(k->waiting);
        free(k->faults);
        free(k->handed);
        return -1;
    }
    k->running = 1;
    return 0;
}

void courier_send(struct courier *k, struct courier_item *it)
{
    it->next = NULL;
    courier_send_list(k, it);
}

void courier_send_list(struct courier *k, struct courier_item *list)
{
    if (!list)
        return;
    struct courier_item *tail = list;
    while (tail->next)
        tail = tail->next;
    pthread_mutex_lock(&k->mu);
    if (k->inbox.tail)
        k->inbox.tail->next = list;
    else
        k->inbox.head = list;
    k->inbox.tail = tail;
    pthread_cond_signal(&k->inbox_ready);
    pthread_mutex_unlock(&k->mu);
}

struct courier_item *courier_collect(struct courier *k, int wait_ms)
{
    pthread_mutex_lock(&k->mu);
    if (!k->outbox.head && wait_ms > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&k->outbox_ready, &k->mu, &until);
    }
    struct courier_item *all = take_all(&k->outbox);
    pthread_mutex_unlock(&k->mu);
    return all;
}

struct courier_item *courier_stop(struct courier *k)
{
    if (!k->running)
        return NULL;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->inbox_ready);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    k->running = 0;
    struct courier_item *left = take_all(&k->outbox); /* the thread is gone: no lock */
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->outbox_ready);
    pthread_cond_destroy(&k->inbox_ready);
    free(k->waiting);
    k->waiting = NULL;
    for (size_t s = 0; s < k->c->n_sinks; s++)
        free(k->faults[s]);
    free(k->faults);
    free(k->handed);
    k->faults = NULL;
    k->handed = NULL;
    return left;
}
