/* The pipeline file: every section of SPEC section 2 read from YAML,
 * validated (types, cross-references, URIs, Smartcar endpoint paths, units)
 * and wired to plugin instances. After config_load succeeds, every plugin
 * block has passed its declared options and its create(). */
#ifndef MTR_CONFIG_H
#define MTR_CONFIG_H

#include "clock.h"
#include "diag.h"
#include "host.h"
#include "loader.h"

enum catch_up {
    CATCH_UP_SKIP = 0,
    CATCH_UP_LATEST = 1,
    CATCH_UP_ALL = 2,
};

struct named_instance {
    char *name;
    struct instance *inst;
};

#define RETRIES_MAX 20

/* When a failed delivery is tried again: `retries` attempts after the first,
 * spread over `window_ms` on a curve (SPEC 4), or at the explicit offsets
 * from the first attempt in schedule_ms (then retries = n_schedule and the
 * window ends at the last offset). */
struct retry_policy {
    int retries;
    int64_t window_ms;
    int64_t schedule_ms[RETRIES_MAX];
    size_t n_schedule;
};

struct webhook_cfg {
    char *name;
    char *callback_uri;
    char *cadence_policy;
    struct instance *cadence;
    char **endpoints;
    size_t n_endpoints;
    int units;     /* enum mtr_units */
    size_t *sinks; /* indices into config.sinks */
    size_t n_sinks;
    size_t source; /* index into config.sources: the default for its subscriptions */
    int vehicles_per_payload;
    struct retry_policy retry; /* the top-level delivery block's, overridden by the webhook's */
    int auto_recover;          /* likewise: probe and re-enable when disabled (recovery.h) */
    int supersede;             /* a delivered newer tick fails older pending ones */
    int ordered;               /* a tick waits for older pending ones of its vehicles */
    int line; /* where the pipeline file declares it (0: defined through the API) */
};

struct delivery_cfg {
    struct retry_policy retry;
    int auto_recover;
    int supersede;
    int ordered;
    int64_t fulfil_within_ms;
    int64_t spread_min_ms;
    int64_t spread_max_ms;
    int catch_up; /* enum catch_up */
};

struct admin_cfg {
    int enabled;
    char *listen;
    char *token;
    int metrics_auth;
    char *tls_cert, *tls_key; /* paths, or NULL: plain HTTP */
};

struct retention_cfg {
    int64_t delivered_ms;
    int64_t failed_ms;
    int64_t history_ms;
};

struct config {
    char *path;
    char *management_token;
    char *key_file;
    char **plugin_path;
    size_t n_plugin_path;
    struct registry registry;
    char *store_plugin;
    struct instance *store;
    struct named_instance *sources;
    size_t n_sources;
    struct named_instance *sinks;
    size_t n_sinks;
    struct webhook_cfg *webhooks;
    size_t n_webhooks;
    struct delivery_cfg delivery;
    size_t *events_sinks; /* indices into sinks: the event stream's (events.h) */
    size_t n_events_sinks;
    struct admin_cfg admin;
    struct retention_cfg retention;
};

/* Loads and validates the pipeline at path; plugins are created, not started.
 * *out is owned by the caller (config_free). On failure d holds
 * "FILE:LINE:COLUMN: message" (or "FILE: message" for a broken plugin file). */
int config_load(const char *path, const struct clock *clock, struct config **out, struct diag *d);
void config_free(struct config *c);

/* Reads only plugin_path from the file, for `metronome plugins`: a malloc'd
 * array of strings (free with dirs_free). */
int config_read_plugin_path(const char *path, char ***dirs, size_t *n, struct diag *d);

/* Builds a webhook defined through the API from its JSON definition
 * ({"name","callbackUri","cadence":{"policy",...},"endpoints","units","sinks",
 * "source","vehiclesPerPayload"}), with every check a pipeline webhook gets;
 * messages read "WHAT: field: message" and d->field names the field. A name
 * the pipeline already uses is refused. *out is owned by the caller
 * (webhook_cfg_free). */
struct json_t;
int config_webhook_from_json(struct config *c, const struct json_t *def, const char *what,
                             const struct clock *clock, struct webhook_cfg *out, struct diag *d);
void webhook_cfg_free(struct webhook_cfg *w);

/* The webhook of that name, or NULL. */
const struct webhook_cfg *config_webhook(const struct config *c, const char *name);

/* The core's own sections, declared like plugin options (for the reference). */
struct config_section {
    const char *name;
    const char *help;
    const struct mtr_option *options;
};
extern const struct config_section config_sections[];
extern const size_t n_config_sections;

/* Smartcar endpoint paths a webhook may fetch (NULL-terminated). */
extern const char *const smartcar_endpoints[];

#endif
