/* Courier: a thread that drains the inbox into the sinks, drives them, and
 * posts outcomes to the outbox. */
#include "courier.h"

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

static void on_done(void *core, const struct mtr_sink_outcome *o)
{
    struct courier *k = core;
    struct courier_item *it = o->cookie;
    it->o = *o;
    snprintf(it->error, sizeof it->error, "%.511s", o->error ? o->error : "");
    it->o.error = o->error ? it->error : NULL;
    it->o.response = NULL; /* not kept: only verification reads it */
    it->o.response_len = 0;
    k->in_sinks--;
    push(&k->done, it); /* posted after this round of polling */
}

static void refuse(struct courier *k, struct courier_item *it)
{
    struct mtr_sink_outcome o = {.status = MTR_ERR,
                                 .retry_after_s = -1,
                                 .error = k->c->sinks[it->sink].inst->ctx.error,
                                 .cookie = it};
    k->in_sinks++;
    on_done(k, &o);
}

/* Submits in order; returns 0 when the sink is full. */
static int submit(struct courier *k, struct courier_item *it)
{
    int rc = ops_of(k, it->sink)->submit(k->c->sinks[it->sink].inst->state, &it->d, on_done, k);
    if (rc == MTR_EAGAIN)
        return 0;
    if (rc == MTR_OK)
        k->in_sinks++;
    else
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
        if (ops_of(k, s)->poll)
            ops_of(k, s)->poll(k->c->sinks[s].inst->state, pollable == 1 ? timeout_ms : 0);
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
    if (!k->waiting)
        return -1;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->outbox_ready, NULL);
    pthread_cond_init(&k->inbox_ready, NULL);
    if (pthread_create(&k->thread, NULL, courier_main, k) != 0) {
        free(k->waiting);
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
    return left;
}
