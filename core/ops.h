/* The operations layer: every operator action, written once. Each takes what
 * it needs, validates it, asks the ledger (and, for verify and test, the
 * engine), and returns its data as JSON (jansson, the API's camelCase shape)
 * or an error of a kind. The command line prints that data and maps the kind
 * to an exit status; the admin API encodes it and maps the kind to an HTTP
 * status. Neither face holds logic of its own.
 *
 * An ops context is used by one thread at a time. The command line opens it
 * on the config's own store instance; the admin API opens it on a second
 * connection to the same store (its own thread), with the running engine. */
#ifndef MTR_OPS_H
#define MTR_OPS_H

#include <jansson.h>
#include "config.h"
#include "engine.h"
#include "ledger.h"
#include "vault.h"
#include "webhooks.h"

enum op_kind {
    OP_OK = 0,
    OP_BAD_INPUT,    /* 400 / exit 2 */
    OP_NOT_FOUND,    /* 404 / exit 2 */
    OP_CONFLICT,     /* 409 / exit 2 */
    OP_UNAUTHORIZED, /* 401 / exit 2 */
    OP_RUNTIME,      /* 500 / exit 1: the store failed */
    OP_UPSTREAM,     /* 502 / exit 1: a receiver or a source failed */
    OP_UNAVAILABLE,  /* 503 / exit 1: stopping, or not running */
};

/* On an error, *out may still hold the data of what was tried (verify and
 * test: each sink's result), for the face to show. */
struct op_error {
    int kind; /* enum op_kind */
    char message[1024];
    char field[128]; /* the input field it is about ("cadence.expr", "vehicleId"), or "" */
};

enum ops_mode {
    OPS_READ = 0,   /* the command line, only reading: the ledger opened read-only */
    OPS_WRITE = 1,  /* the command line: the pipeline's webhooks synchronised first */
    OPS_DAEMON = 2, /* the admin API inside run: a connection of its own */
};

struct ops {
    struct config *c;
    struct clock *clk;
    int mode;
    struct ledger L;
    struct instance *own_store;   /* OPS_DAEMON: the second connection */
    struct named_instance *owned; /* OPS_DAEMON: sources of its own (Connect checks) */
    struct webhook_set ws;
    struct vault vault;
    struct engine *engine; /* the running daemon (OPS_DAEMON), else NULL */
};

/* Opens an ops context; returns 0, or -1 with err set. ops_close undoes it
 * (also after a failed open). */
int ops_open(struct ops *o, struct config *c, struct clock *clk, int mode, struct engine *engine,
             struct op_error *err);
void ops_close(struct ops *o);

/* A page of a listing: items after an opaque cursor (NULL: the first page). */
struct page {
    const char *cursor;
    size_t limit; /* 0: the default (100); at most 1000 */
};

/* ---- webhooks: `ref` is a webhook's id or name ---- */
int ops_webhook_list(struct ops *o, const struct page *p, json_t **out, struct op_error *err);
int ops_webhook_get(struct ops *o, const char *ref, json_t **out, struct op_error *err);
int ops_webhook_create(struct ops *o, const json_t *body, json_t **out, struct op_error *err);
int ops_webhook_update(struct ops *o, const char *ref, const json_t *patch, json_t **out,
                       struct op_error *err);
int ops_webhook_delete(struct ops *o, const char *ref, json_t **out, struct op_error *err);
int ops_webhook_verify(struct ops *o, const char *ref, json_t **out, struct op_error *err);
int ops_webhook_test(struct ops *o, const char *ref, json_t **out, struct op_error *err);
int ops_webhook_enable(struct ops *o, const char *ref, int enable, json_t **out,
                       struct op_error *err);
/* The next count ticks after from (0: now). */
int ops_webhook_plan(struct ops *o, const char *ref, mtr_time from, size_t count, json_t **out,
                     struct op_error *err);

/* What a webhook can be made of: Smartcar endpoints, the pipeline's sinks
 * and sources, the cadence policies loaded. */
int ops_catalog(struct ops *o, json_t **out, struct op_error *err);

/* The next count ticks of a cadence not yet saved ({"policy", ...options}),
 * checked as a webhook's would be: the page's preview as an operator types. */
int ops_cadence_preview(struct ops *o, const json_t *cadence, mtr_time from, size_t count,
                        json_t **out, struct op_error *err);

/* ---- subscriptions ---- */
struct sub_request {
    const char *vehicle_id;
    const char *source; /* NULL: the webhook's */
    const char *access_token, *refresh_token;
    mtr_time access_expires; /* 0: two hours from now, Smartcar's access token life */
    int keep_refresh;        /* an access token alone: the refresh token stored earlier stays */
};
/* Subscribes n vehicles in one transaction. *out: {"webhookId","subscribed",
 * "existing","failed","results":[{"vehicleId","result":"subscribed|existing|
 * error","error"}]}. A bad item fails alone (OP_OK overall); err is set only
 * when nothing could be done. */
int ops_subscribe(struct ops *o, const char *ref, const struct sub_request *items, size_t n,
                  json_t **out, struct op_error *err);
/* One vehicle: an existing subscription is OP_CONFLICT, a bad one OP_BAD_INPUT.
 * *out: {"webhookId","webhook","vehicleId","subscribedAt","firstTick",...}. */
int ops_subscribe_one(struct ops *o, const char *ref, const struct sub_request *req, json_t **out,
                      struct op_error *err);
/* Checks the webhook and the source a bulk subscription will use. */
int ops_subscribe_check(struct ops *o, const char *ref, const char *source, struct op_error *err);
int ops_unsubscribe(struct ops *o, const char *ref, const char *vehicle_id, json_t **out,
                    struct op_error *err);
int ops_subscriptions_list(struct ops *o, const char *ref, const char *vehicle_id,
                           const struct page *p, json_t **out, struct op_error *err);
/* Connect: the vehicles a live source's token grants, each stored with the
 * tokens and (when ref is set) subscribed. */
int ops_connect_token(struct ops *o, const char *ref, const char *source, const char *access,
                      const char *refresh, mtr_time expires, json_t **out, struct op_error *err);
/* Connect: exchanges an authorization code for tokens, then as above. */
int ops_connect_code(struct ops *o, const char *ref, const char *source, const char *code,
                     const char *redirect_uri, json_t **out, struct op_error *err);

/* ---- Smartcar-compatible subscriptions (SPEC 6, /v2.0) ---- */
/* The vehicle's access token must grant the vehicle (checked through a live
 * source; any non-empty token for a simulated one). */
int ops_sc_subscribe(struct ops *o, const char *webhook_ref, const char *vehicle_id,
                     const char *access_token, const char *refresh_token, json_t **out,
                     struct op_error *err);
/* The bearer must be the application management token. */
int ops_sc_unsubscribe(struct ops *o, const char *webhook_ref, const char *vehicle_id,
                       const char *management_token, json_t **out, struct op_error *err);

/* ---- deliveries ---- */
struct delivery_filter {
    const char *webhook; /* ref, or NULL */
    int state;           /* enum mtr_delivery_state, or -1 */
    mtr_time from, to;   /* ticks in [from, to); 0: open */
    int with_attempts;   /* each delivery carries its attempts */
};
int ops_deliveries_list(struct ops *o, const struct delivery_filter *f, const struct page *p,
                        json_t **out, struct op_error *err);
/* One delivery with its attempts, its stored payload and its SC-Signature. */
int ops_delivery_get(struct ops *o, const char *id, json_t **out, struct op_error *err);
/* One delivery (id set) or a webhook's deliveries in from_state, sent again
 * with the same ids and bytes. */
int ops_replay(struct ops *o, const char *delivery_id, const char *ref, int from_state,
               json_t **out, struct op_error *err);
/* Totals of the ledger (for one webhook when ref is set). */
int ops_ledger_totals(struct ops *o, const char *ref, json_t **out, struct op_error *err);

/* ---- vehicles and status ---- */
int ops_vehicles_list(struct ops *o, int needs_reauth_only, const struct page *p, json_t **out,
                      struct op_error *err);
int ops_status(struct ops *o, json_t **out, struct op_error *err);
/* The metrics text (owned by the caller). */
int ops_metrics(struct ops *o, char **text, struct op_error *err);
/* Whether the daemon is ready: the store answers, plugins started, not stopping. */
int ops_ready(struct ops *o, struct op_error *err);

/* ---- shared by both faces ---- */
/* Whether a presented secret equals the expected one, compared in time that
 * does not depend on where they differ. */
int ops_secret_equal(const char *given, const char *expected);
const char *delivery_state_name(int state);
/* enum mtr_delivery_state for a name, or -1 */
int delivery_state_parse(const char *name);
/* A webhook's cadence in words ("hourly", "daily at 06:30", "every 15m"). */
void cadence_words(const struct webhook_cfg *w, char *buf, size_t len);

#endif
