/* The courier: the sinks on a thread of their own, so sending (libcurl and the
 * kernel's TCP work) runs on the second core while the engine thread fires
 * ticks, fetches, signs and writes the ledger. The engine hands over items
 * through a locked inbox and takes outcomes back from an outbox; only the
 * courier thread touches the sinks while it runs, and only the engine thread
 * touches the engine's state. An outcome is believed only for a cookie the
 * courier handed to that sink and has not seen back: a sink that breaks the
 * rule is quarantined - what it holds comes back failed (to be retried) and
 * nothing more is given to it - instead of crashing the daemon. */
#ifndef MTR_COURIER_H
#define MTR_COURIER_H

#include <pthread.h>
#include <metronome/metronome.h>
#include "config.h"

/* One delivery in transit; the engine embeds it in its own record. */
struct courier_item {
    size_t sink;
    struct mtr_delivery d; /* its strings stay valid until the outcome is taken */
    struct mtr_sink_outcome o;
    char error[512];
    int keep_response; /* copy the receiver's answer (verify) into response */
    char *response;    /* owned by the item's owner once the outcome is taken */
    size_t response_len;
    struct courier_item *next;
};

struct courier_queue {
    struct courier_item *head, *tail;
};

struct courier {
    struct config *c;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t outbox_ready; /* the engine waits on it */
    pthread_cond_t inbox_ready;  /* the courier waits on it when idle */
    struct courier_queue inbox, outbox;
    struct courier_queue done;     /* finished this round, posted together (courier thread) */
    struct courier_queue *waiting; /* per sink: the sink had no room */
    size_t in_sinks;               /* submitted, no outcome yet */
    /* the items inside sinks, so an outcome's cookie is checked before it is
     * believed (open addressing; TOMBSTONE marks a removed slot) */
    struct courier_item **handed;
    size_t handed_cap, handed_used;
    size_t current_sink; /* the sink being called (courier thread) */
    char **faults;       /* per sink: why it is no longer trusted, or NULL */
    int stop, running;
};

/* Starts the thread; the sinks must be started. Returns 0 or -1. */
int courier_start(struct courier *k, struct config *c);
/* Hands an item over (engine thread). */
void courier_send(struct courier *k, struct courier_item *it);
/* Hands over a list linked by next, under one lock (engine thread). */
void courier_send_list(struct courier *k, struct courier_item *list);
/* Takes every finished item, waiting up to wait_ms for one (engine thread). */
struct courier_item *courier_collect(struct courier *k, int wait_ms);
/* Finishes what is in the sinks, joins the thread, and returns the outcomes
 * nobody collected (the caller owns them). Safe on a courier never started. */
struct courier_item *courier_stop(struct courier *k);

#endif
