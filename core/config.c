/* The pipeline loader: reads the YAML tree section by section in a fixed
 * order (version, application, plugin_path, secrets, store, sources, sinks,
 * webhooks, delivery, admin, retention) and stops at the first error, which
 * always points at the node it is about. Core sections are validated with the
 * same declared-option machinery as plugin blocks, so both speak alike. */
#include "config.h"
#include "engine.h"
#include "options.h"
#include "scalar.h"
#include "scheduler.h"
#include "yamltree.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const smartcar_endpoints[] = {
    "/",
    "/vin",
    "/odometer",
    "/location",
    "/fuel",
    "/battery",
    "/battery/capacity",
    "/battery/nominal_capacity",
    "/charge",
    "/charge/limit",
    "/tires/pressure",
    "/engine/oil",
    "/security",
    "/diagnostics/dtcs",
    "/diagnostics/system_status",
    "/service/history",
    NULL,
};

static const char *const top_sections[] = {
    "version", "application", "plugin_path", "secrets", "store",     "sources",
    "sinks",   "webhooks",    "delivery",    "admin",   "retention", "events",
};

static const struct mtr_option application_options[] = {
    {.name = "management_token",
     .type = MTR_OPT_SECRET,
     .flags = MTR_OPT_REQUIRED,
     .help = "Smartcar application management token: signs payloads and challenges"},
    {0},
};

static const struct mtr_option secrets_options[] = {
    {.name = "key_file",
     .type = MTR_OPT_STRING,
     .help = "file holding the 64-hex-character key that encrypts vehicle credentials"},
    {0},
};

static const char *const units_choices[] = {"metric", "imperial", NULL};

static const struct mtr_option webhook_options[] = {
    {.name = "name", .type = MTR_OPT_STRING, .flags = MTR_OPT_REQUIRED, .help = "unique name"},
    {.name = "callback_uri",
     .type = MTR_OPT_STRING,
     .flags = MTR_OPT_REQUIRED,
     .help = "http(s) URI the payloads are POSTed to"},
    {.name = "endpoints",
     .type = MTR_OPT_LIST,
     .flags = MTR_OPT_REQUIRED,
     .help = "Smartcar endpoint paths fetched for each vehicle"},
    {.name = "units",
     .type = MTR_OPT_ENUM,
     .default_value = "metric",
     .choices = units_choices,
     .help = "unit system of the data"},
    {.name = "sinks", .type = MTR_OPT_LIST, .flags = MTR_OPT_REQUIRED, .help = "sink names"},
    {.name = "source",
     .type = MTR_OPT_STRING,
     .help = "source of vehicles subscribed without --source (default: the first source)"},
    {.name = "vehicles_per_payload",
     .type = MTR_OPT_INT,
     .default_value = "1",
     .min = 1,
     .max = 10000,
     .help = "vehicles batched into one payload (split further to fit max_body_bytes)"},
    {0},
};

static const char *const catch_up_choices[] = {"skip", "latest", "all", NULL};

/* Help shared by the top-level delivery block and a webhook's own. */
#define RETRY_SCHEDULE_HELP                                                                        \
    "explicit retry times after the first attempt, increasing, like [30s, 2m, 10m]; replaces "     \
    "retries and retry_window"
#define AUTO_RECOVER_HELP                                                                          \
    "a webhook disabled by exhausted retries is probed (1m, 5m, 30m, then hourly, for 7 days) "    \
    "and enabled again on probation when it answers"

#define SUPERSEDE_HELP                                                                             \
    "pending retries of a tick are recorded failed (superseded) once a newer tick's payload for "  \
    "the same vehicles is delivered; the first retry must come within the cadence's period"
#define ORDERED_HELP                                                                               \
    "a payload is not sent while an older tick's payload for the same vehicles is pending: it "    \
    "waits, unattempted, until that one is delivered or failed"

static const struct mtr_option delivery_options[] = {
    {.name = "retries",
     .type = MTR_OPT_INT,
     .default_value = "5",
     .min = 0,
     .max = 20,
     .help = "attempts after the first"},
    {.name = "retry_window",
     .type = MTR_OPT_DURATION,
     .default_value = "10m",
     .min = 1000,
     .max = 86400000,
     .help = "the retries are spread over this window"},
    {.name = "retry_schedule", .type = MTR_OPT_LIST, .help = RETRY_SCHEDULE_HELP},
    {.name = "auto_recover",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = AUTO_RECOVER_HELP},
    {.name = "supersede", .type = MTR_OPT_BOOL, .default_value = "false", .help = SUPERSEDE_HELP},
    {.name = "ordered", .type = MTR_OPT_BOOL, .default_value = "false", .help = ORDERED_HELP},
    {.name = "fulfil_within",
     .type = MTR_OPT_DURATION,
     .default_value = "15m",
     .min = 60000,
     .max = 86400000,
     .help = "a tick's data is fetched and sent within this"},
    {.name = "spread",
     .type = MTR_OPT_LIST,
     .default_value = "1m,5m",
     .help = "[min, max]: stable per-subscription offset after the tick"},
    {.name = "catch_up",
     .type = MTR_OPT_ENUM,
     .default_value = "latest",
     .choices = catch_up_choices,
     .help = "ticks missed while down: skip, latest or all"},
    {0},
};

/* A webhook's own delivery block: what it sets overrides the top-level one. */
static const struct mtr_option webhook_delivery_options[] = {
    {.name = "retries",
     .type = MTR_OPT_INT,
     .min = 0,
     .max = RETRIES_MAX,
     .help = "attempts after the first"},
    {.name = "retry_window",
     .type = MTR_OPT_DURATION,
     .min = 1000,
     .max = 86400000,
     .help = "the retries are spread over this window"},
    {.name = "retry_schedule", .type = MTR_OPT_LIST, .help = RETRY_SCHEDULE_HELP},
    {.name = "auto_recover", .type = MTR_OPT_BOOL, .help = AUTO_RECOVER_HELP},
    {.name = "supersede", .type = MTR_OPT_BOOL, .help = SUPERSEDE_HELP},
    {.name = "ordered", .type = MTR_OPT_BOOL, .help = ORDERED_HELP},
    {0},
};

static const struct mtr_option events_options[] = {
    {.name = "sinks",
     .type = MTR_OPT_LIST,
     .flags = MTR_OPT_REQUIRED,
     .help = "sinks that receive metronome's own events (webhook.disabled, webhook.recovered, "
             "webhook.enabled, delivery.failed, vehicle.reauthentication_required)"},
    {0},
};

static const struct mtr_option admin_options[] = {
    {.name = "listen",
     .type = MTR_OPT_STRING,
     .default_value = "127.0.0.1:8844",
     .help = "HOST:PORT of the admin API"},
    {.name = "token",
     .type = MTR_OPT_SECRET,
     .flags = MTR_OPT_REQUIRED,
     .help = "bearer token of the admin API"},
    {.name = "metrics_auth",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = "GET /metrics needs the admin token too"},
    {.name = "tls_cert",
     .type = MTR_OPT_STRING,
     .help = "PEM certificate (chain) file: the API speaks HTTPS (with tls_key)"},
    {.name = "tls_key", .type = MTR_OPT_STRING, .help = "PEM private key file of tls_cert"},
    {0},
};

static const struct mtr_option retention_options[] = {
    {.name = "delivered",
     .type = MTR_OPT_DURATION,
     .default_value = "24h",
     .help = "delivered payload bytes are pruned after this"},
    {.name = "failed",
     .type = MTR_OPT_DURATION,
     .default_value = "7d",
     .help = "failed payload bytes are pruned after this"},
    {.name = "history",
     .type = MTR_OPT_DURATION,
     .default_value = "7d",
     .help = "ledger rows are pruned after this (7d: as long as a failed payload can be "
             "replayed; bench/README.md sizes the disk it takes)"},
    {0},
};

const struct config_section config_sections[] = {
    {"application", "the Smartcar application", application_options},
    {"secrets", "encryption of vehicle credentials at rest", secrets_options},
    {"webhooks[]",
     "each webhook; also `cadence: {policy: NAME, ...}` with the policy's options below",
     webhook_options},
    {"webhooks[].delivery",
     "a webhook's own retry policy: each key it sets overrides the top-level `delivery` block's",
     webhook_delivery_options},
    {"delivery", "scheduling and retry policy", delivery_options},
    {"admin", "the admin HTTP API", admin_options},
    {"events", "the stream of metronome's own events, sent through the ledger", events_options},
    {"retention", "how long the ledger keeps what", retention_options},
};
const size_t n_config_sections = sizeof config_sections / sizeof *config_sections;

/* Loading state shared by the section parsers. */
struct loader {
    const char *file;
    const struct clock *clock;
    struct config *c;
    struct diag *d;
};

static int at(struct loader *l, const struct ynode *n, const char *fmt, ...) MTR_PRINTF(3, 4);

static int at(struct loader *l, const struct ynode *n, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ynode_at(l->d, l->file, n, "%s", msg);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Runs options_parse for a core section (which may be absent: defaults). */
static int core_section(struct loader *l, const struct ynode *node, const char *section,
                        const struct mtr_option *decl, const char *const *reserved,
                        struct optset *out)
{
    char what[96];
    snprintf(what, sizeof what, "section '%s'", section);
    if (node && node->kind != YNODE_MAP)
        return at(l, node, "'%s' must be a mapping, not %s", section, ynode_kind_name(node->kind));
    return options_parse(decl, node, reserved, l->file, what, out, l->d);
}

static const char *opt_str(const struct optset *s, const char *name)
{
    const struct optval *v = optset_find(s, name);
    return v && v->has_value ? v->str : NULL;
}

static int64_t opt_num(const struct optset *s, const char *name)
{
    const struct optval *v = optset_find(s, name);
    return v ? v->num : 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return 0;
    return 1;
}

/* ---- version, application, secrets, plugin_path ---------------------------- */

static int load_version(struct loader *l, const struct ynode *root)
{
    const struct ynode *v = ynode_get(root, "version");
    if (!v)
        return at(l, root, "missing 'version' (write version: 1 at the top)");
    if (v->kind != YNODE_SCALAR || strcmp(v->value, "1") != 0)
        return at(l, v, "unsupported pipeline version%s%s%s (this metronome reads version 1)",
                  v->kind == YNODE_SCALAR ? " '" : "", v->kind == YNODE_SCALAR ? v->value : "",
                  v->kind == YNODE_SCALAR ? "'" : "");
    return 0;
}

static int load_application(struct loader *l, const struct ynode *root)
{
    const struct ynode *n = ynode_get(root, "application");
    struct optset s;
    if (!n)
        return at(l, root, "missing section 'application' (with management_token)");
    if (core_section(l, n, "application", application_options, NULL, &s) != 0)
        return -1;
    l->c->management_token = dup_or_null(opt_str(&s, "management_token"));
    optset_free(&s);
    return 0;
}

static int load_secrets(struct loader *l, const struct ynode *root)
{
    struct optset s;
    if (core_section(l, ynode_get(root, "secrets"), "secrets", secrets_options, NULL, &s) != 0)
        return -1;
    l->c->key_file = dup_or_null(opt_str(&s, "key_file"));
    optset_free(&s);
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int load_plugin_path(struct loader *l, const struct ynode *root)
{
    const struct ynode *n = ynode_get(root, "plugin_path");
    struct config *c = l->c;
    if (!n)
        return 0;
    if (n->kind == YNODE_SCALAR) /* a single directory may be written without brackets */
        return at(l, n, "'plugin_path' must be a list of directories, like [build/plugins]");
    if (n->kind != YNODE_SEQ)
        return at(l, n, "'plugin_path' must be a list of directories, not %s",
                  ynode_kind_name(n->kind));
    c->plugin_path = calloc(n->n ? n->n : 1, sizeof *c->plugin_path);
    if (!c->plugin_path)
        return diag_set(l->d, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->items[i];
        if (it->kind != YNODE_SCALAR)
            return at(l, it, "plugin_path items must be directory names, not %s",
                      ynode_kind_name(it->kind));
        if (!is_dir(it->value))
            return at(l, it, "plugin directory '%s' does not exist", it->value);
        if (!(c->plugin_path[i] = strdup(it->value)))
            return diag_set(l->d, "out of memory");
        c->n_plugin_path++;
    }
    return 0;
}

static int scan_plugins(struct loader *l)
{
    size_t ndirs;
    char **dirs =
        plugin_search_path((const char *const *)l->c->plugin_path, l->c->n_plugin_path, &ndirs);
    if (!dirs)
        return diag_set(l->d, "out of memory");
    int rc = registry_scan(&l->c->registry, (const char *const *)dirs, ndirs, l->d);
    dirs_free(dirs, ndirs);
    return rc;
}

/* ---- plugin blocks ------------------------------------------------------------ */

static const char *kind_role(uint32_t kind)
{
    switch (kind) {
    case MTR_KIND_CADENCE:
        return "cadence policy";
    case MTR_KIND_SOURCE:
        return "source plugin";
    case MTR_KIND_STORE:
        return "store plugin";
    default:
        return "sink plugin";
    }
}

static void list_plugins_of_kind(const struct registry *r, uint32_t kind, char *buf, size_t len,
                                 const char **names, size_t *n)
{
    size_t used = 0;
    *n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        const struct plugin_file *pf = &r->files[i];
        if (pf->shadowed || pf->desc.kind != kind || used >= len)
            continue;
        if (*n < 64)
            names[(*n)++] = pf->desc.name;
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", pf->desc.name);
        if (w > 0)
            used += (size_t)w;
    }
}

/* Resolves the plugin named by node (a scalar) for the given kind. */
static const struct plugin_file *resolve_plugin(struct loader *l, const struct ynode *node,
                                                uint32_t kind)
{
    if (node->kind != YNODE_SCALAR) {
        at(l, node, "a %s name must be a scalar, not %s", kind_role(kind),
           ynode_kind_name(node->kind));
        return NULL;
    }
    const struct plugin_file *pf = registry_find(&l->c->registry, node->value);
    if (!pf) {
        char known[512];
        const char *names[64];
        size_t n;
        list_plugins_of_kind(&l->c->registry, kind, known, sizeof known, names, &n);
        const char *hint = suggest_closest(node->value, names, n);
        at(l, node, "unknown %s '%s'%s%s%s (found: %s)", kind_role(kind), node->value,
           hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "",
           n ? known : "none; check plugin_path and $METRONOME_PLUGIN_PATH");
        return NULL;
    }
    if (pf->desc.kind != kind) {
        at(l, node, "plugin '%s' (%s) is a %s plugin, but it is used here as a %s", node->value,
           pf->path, kind_name(pf->desc.kind), kind_role(kind));
        return NULL;
    }
    return pf;
}

/* Validates a plugin block's options and creates the instance. `key` names
 * the member that selects the plugin ("plugin" or "policy"). */
static int create_block(struct loader *l, const struct ynode *map, const char *key, uint32_t kind,
                        const char *label, char **plugin_name, struct instance **out)
{
    const struct ynode *pn = ynode_get(map, key);
    if (!pn)
        return at(l, map, "missing '%s' for %s", key, label);
    const struct plugin_file *pf = resolve_plugin(l, pn, kind);
    if (!pf)
        return -1;
    char what[160];
    snprintf(what, sizeof what, "%s '%s'", kind_role(kind), pf->desc.name);
    const char *reserved[] = {key, "name", NULL};
    struct optset opts;
    if (options_parse(pf->desc.options, map, reserved, l->file, what, &opts, l->d) != 0)
        return -1;
    char err[1024];
    if (instance_create(pf, label, &opts, l->clock, out, err, sizeof err) != 0)
        return at(l, map, "%s (%s): %s", label, pf->desc.name, err);
    if (plugin_name && !(*plugin_name = strdup(pf->desc.name)))
        return diag_set(l->d, "out of memory");
    return 0;
}

static int load_store(struct loader *l, const struct ynode *root)
{
    const struct ynode *n = ynode_get(root, "store");
    if (!n)
        return at(l, root,
                  "missing section 'store' (for example store: {plugin: sqlite, path: "
                  "var/metronome.db})");
    if (n->kind != YNODE_MAP)
        return at(l, n, "'store' must be a mapping, not %s", ynode_kind_name(n->kind));
    if (ynode_key(n, "name"))
        return at(l, ynode_key(n, "name"), "the store has no name; remove 'name'");
    return create_block(l, n, "plugin", MTR_KIND_STORE, "store", &l->c->store_plugin, &l->c->store);
}

static int find_named(const struct named_instance *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* sources: and sinks: are lists of {name, plugin, ...options}. */
static int load_named_list(struct loader *l, const struct ynode *root, const char *section,
                           uint32_t kind, struct named_instance **out, size_t *count)
{
    const struct ynode *n = ynode_get(root, section);
    if (!n)
        return 0;
    if (n->kind != YNODE_SEQ)
        return at(l, n, "'%s' must be a list of {name, plugin, ...}, not %s", section,
                  ynode_kind_name(n->kind));
    *out = calloc(n->n ? n->n : 1, sizeof **out);
    if (!*out)
        return diag_set(l->d, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *item = n->items[i];
        if (item->kind != YNODE_MAP)
            return at(l, item, "each entry of '%s' must be a mapping, not %s", section,
                      ynode_kind_name(item->kind));
        const struct ynode *name = ynode_get(item, "name");
        if (!name)
            return at(l, item, "missing 'name' in this entry of '%s'", section);
        if (name->kind != YNODE_SCALAR || !valid_name(name->value))
            return at(l, name,
                      "bad name: use 1-64 of [a-z0-9._-], starting with a letter or "
                      "digit");
        if (find_named(*out, *count, name->value) >= 0)
            return at(l, name, "duplicate %s name '%s'", kind_name(kind), name->value);
        char label[128];
        snprintf(label, sizeof label, "%s '%s'", kind_name(kind), name->value);
        struct named_instance *ni = &(*out)[*count];
        if (!(ni->name = strdup(name->value)))
            return diag_set(l->d, "out of memory");
        (*count)++;
        if (create_block(l, item, "plugin", kind, label, NULL, &ni->inst) != 0)
            return -1;
    }
    return 0;
}

/* ---- webhooks ------------------------------------------------------------------ */

static int check_callback_uri(struct loader *l, const struct ynode *node, const char *uri)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *fragment = NULL;
    int rc = -1;
    if (!u)
        return diag_set(l->d, "out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, uri, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        at(l, node, "callback_uri '%s' is not a valid URI: %s", uri, curl_url_strerror(uc));
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
    if (!scheme || (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
        at(l, node, "callback_uri must be http:// or https://, not '%s'", scheme ? scheme : "");
    else if (!host || !*host)
        at(l, node, "callback_uri '%s' has no host", uri);
    else if (user)
        at(l, node,
           "callback_uri must not carry credentials (user:password@); "
           "receivers check SC-Signature instead");
    else if (fragment)
        at(l, node, "callback_uri '%s' must not have a #fragment", uri);
    else
        rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(fragment);
    curl_url_cleanup(u);
    return rc;
}

static size_t count_endpoints(void)
{
    size_t n = 0;
    while (smartcar_endpoints[n])
        n++;
    return n;
}

static int check_endpoints(struct loader *l, struct webhook_cfg *w, const struct optval *v)
{
    size_t known = count_endpoints();
    if (v->list_len == 0)
        return at(l, v->node, "'endpoints' must list at least one endpoint, like [/odometer]");
    w->endpoints = calloc(v->list_len, sizeof *w->endpoints);
    if (!w->endpoints)
        return diag_set(l->d, "out of memory");
    for (size_t i = 0; i < v->list_len; i++) {
        const struct ynode *item = v->node->items[i];
        const char *e = v->list[i];
        size_t k;
        for (k = 0; k < known && strcmp(smartcar_endpoints[k], e) != 0; k++)
            ;
        if (k == known) {
            const char *hint = suggest_closest(e, smartcar_endpoints, known);
            return at(l, item, "unknown Smartcar endpoint '%s'%s%s%s", e,
                      hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(w->endpoints[j], e) == 0)
                return at(l, item, "endpoint '%s' is listed twice", e);
        if (!(w->endpoints[i] = strdup(e)))
            return diag_set(l->d, "out of memory");
        w->n_endpoints++;
    }
    return 0;
}

static int check_sinks(struct loader *l, struct webhook_cfg *w, const struct optval *v)
{
    struct config *c = l->c;
    if (v->list_len == 0)
        return at(l, v->node, "'sinks' must name at least one sink");
    w->sinks = calloc(v->list_len, sizeof *w->sinks);
    if (!w->sinks)
        return diag_set(l->d, "out of memory");
    for (size_t i = 0; i < v->list_len; i++) {
        const struct ynode *item = v->node->items[i];
        int k = find_named(c->sinks, c->n_sinks, v->list[i]);
        if (k < 0) {
            const char *names[64];
            size_t n = c->n_sinks < 64 ? c->n_sinks : 64;
            for (size_t j = 0; j < n; j++)
                names[j] = c->sinks[j].name;
            const char *hint = suggest_closest(v->list[i], names, n);
            return at(l, item, "unknown sink '%s'%s%s%s (declare it under 'sinks')", v->list[i],
                      hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        }
        for (size_t j = 0; j < w->n_sinks; j++)
            if (w->sinks[j] == (size_t)k)
                return at(l, item, "sink '%s' is listed twice", v->list[i]);
        w->sinks[w->n_sinks++] = (size_t)k;
    }
    return 0;
}

static int load_cadence(struct loader *l, struct webhook_cfg *w, const struct ynode *map)
{
    const struct ynode *n = ynode_get(map, "cadence");
    char label[128];
    snprintf(label, sizeof label, "cadence of webhook '%s'", w->name);
    if (!n)
        return at(l, map,
                  "missing 'cadence' for webhook '%s' (for example cadence: {policy: "
                  "hourly})",
                  w->name);
    if (n->kind == YNODE_SCALAR) { /* cadence: hourly */
        const struct plugin_file *pf = resolve_plugin(l, n, MTR_KIND_CADENCE);
        struct optset opts;
        char what[128], err[1024];
        if (!pf)
            return -1;
        snprintf(what, sizeof what, "cadence policy '%s'", pf->desc.name);
        if (options_parse(pf->desc.options, NULL, NULL, l->file, what, &opts, l->d) != 0)
            return at(l, n, "cadence policy '%s' needs options; write cadence: {policy: %s, ...}",
                      pf->desc.name, pf->desc.name);
        if (instance_create(pf, label, &opts, l->clock, &w->cadence, err, sizeof err) != 0)
            return at(l, n, "%s (%s): %s", label, pf->desc.name, err);
        w->cadence_policy = strdup(pf->desc.name);
        return w->cadence_policy ? 0 : diag_set(l->d, "out of memory");
    }
    if (n->kind != YNODE_MAP)
        return at(l, n, "'cadence' must be a mapping like {policy: hourly}, not %s",
                  ynode_kind_name(n->kind));
    return create_block(l, n, "policy", MTR_KIND_CADENCE, label, &w->cadence_policy, &w->cadence);
}

/* retry_schedule's offsets into rp: increasing, from 1 s to 24 h, at most
 * RETRIES_MAX of them. */
static int load_schedule(struct loader *l, const struct optval *v, const struct ynode *section,
                         struct retry_policy *rp)
{
    const struct ynode *where = v->node ? v->node : section;
    if (v->list_len == 0 || v->list_len > RETRIES_MAX)
        return at(l, where, "'retry_schedule' must list 1 to %d retry times, like [30s, 2m, 10m]",
                  RETRIES_MAX);
    for (size_t i = 0; i < v->list_len; i++) {
        const struct ynode *item = v->node && i < v->node->n ? v->node->items[i] : where;
        int64_t ms;
        if (parse_duration_ms(v->list[i], &ms) != 0)
            return at(l, item, "'retry_schedule': bad duration '%s' (write 30s, 10m, 1h30m)",
                      v->list[i]);
        if (ms < 1000 || ms > 86400000)
            return at(l, item, "'retry_schedule': %s is outside 1s .. 24h", v->list[i]);
        if (i > 0 && ms <= rp->schedule_ms[i - 1])
            return at(l, item,
                      "'retry_schedule' must increase: %s comes after %s (each time counts "
                      "from the first attempt)",
                      v->list[i], v->list[i - 1]);
        rp->schedule_ms[i] = ms;
    }
    rp->n_schedule = v->list_len;
    rp->retries = (int)v->list_len;
    rp->window_ms = rp->schedule_ms[v->list_len - 1];
    return 0;
}

/* The retry keys of a delivery block (s) over rp: a schedule, or retries
 * and a window, never both in one block. */
static int load_retry(struct loader *l, const struct optset *s, const struct ynode *section,
                      struct retry_policy *rp)
{
    const struct optval *sched = optset_find(s, "retry_schedule");
    const struct optval *retries = optset_find(s, "retries");
    const struct optval *window = optset_find(s, "retry_window");
    if (sched->set) {
        if (retries->set || window->set)
            return at(l, sched->node ? sched->node : section,
                      "'retry_schedule' replaces 'retries' and 'retry_window': give one or the "
                      "other");
        return load_schedule(l, sched, section, rp);
    }
    if (retries->set || window->set)
        rp->n_schedule = 0; /* back to the curve, with what is inherited */
    if (retries->has_value)
        rp->retries = (int)retries->num;
    if (window->has_value)
        rp->window_ms = window->num;
    return 0;
}

/* A webhook's `delivery:` block, over the top-level one. */
static int load_webhook_delivery(struct loader *l, const struct ynode *map, struct webhook_cfg *w)
{
    const struct ynode *n = ynode_get(map, "delivery");
    w->retry = l->c->delivery.retry;
    w->auto_recover = l->c->delivery.auto_recover;
    w->supersede = l->c->delivery.supersede;
    w->ordered = l->c->delivery.ordered;
    if (!n)
        return 0;
    if (n->kind != YNODE_MAP)
        return at(l, n, "a webhook's 'delivery' must be a mapping, not %s",
                  ynode_kind_name(n->kind));
    struct optset s;
    if (options_parse(webhook_delivery_options, n, NULL, l->file, "a webhook's delivery", &s,
                      l->d) != 0)
        return -1;
    int rc = load_retry(l, &s, n, &w->retry);
    const struct optval *recover = optset_find(&s, "auto_recover");
    if (recover->has_value)
        w->auto_recover = (int)recover->num;
    const struct optval *supersede = optset_find(&s, "supersede"),
                        *ordered = optset_find(&s, "ordered");
    if (supersede->has_value)
        w->supersede = (int)supersede->num;
    if (ordered->has_value)
        w->ordered = (int)ordered->num;
    optset_free(&s);
    return rc;
}

/* The shortest gap between the cadence's ticks, over its next 16 from a
 * fixed Monday (2001-01-01): the period retries must fit in under supersede.
 * 0 when the cadence has fewer ticks. */
static int64_t cadence_period(const struct webhook_cfg *w)
{
    struct diag d;
    mtr_time prev, next, gap = 0;
    if (webhook_next_tick(w, 978307200, &prev, &d) != 0)
        return 0;
    for (int i = 0; i < 16 && webhook_next_tick(w, prev, &next, &d) == 0; i++, prev = next)
        if (gap == 0 || next - prev < gap)
            gap = next - prev;
    return gap;
}

/* With supersede on, a webhook's first retry comes within its cadence's
 * period: one that comes later is always behind the next tick's payload,
 * which supersedes it once delivered - the schedule would never retry. */
static int check_supersede_fits(struct loader *l, const struct webhook_cfg *w,
                                const struct ynode *map)
{
    const struct retry_policy *rp = &w->retry;
    if (!w->supersede || rp->retries == 0)
        return 0;
    int64_t first_ms = rp->n_schedule
                           ? rp->schedule_ms[0]
                           : retry_offset(1, rp->retries, rp->window_ms / 1000, "") * 1000;
    int64_t period = cadence_period(w);
    if (!period || first_ms <= period * 1000)
        return 0;
    const struct ynode *where =
        ynode_get(map, "delivery") ? ynode_get(map, "delivery") : ynode_get(map, "cadence");
    char first[32], gap[32];
    format_duration(first_ms, first, sizeof first);
    format_duration(period * 1000, gap, sizeof gap);
    return at(l, where ? where : map,
              "webhook '%s': with supersede on, a first retry %s after the first attempt never "
              "comes before the next tick (ticks %s apart), whose payload supersedes it; retry "
              "sooner or turn supersede off",
              w->name, first, gap);
}

/* Reads one webhook into w; *named is set once w->name is (so the caller
 * frees a half-loaded webhook too). */
static int load_webhook(struct loader *l, const struct ynode *map, struct webhook_cfg *w,
                        int *named)
{
    struct config *c = l->c;
    struct optset s;
    const char *reserved[] = {"cadence", "delivery", NULL};
    if (map->kind != YNODE_MAP)
        return at(l, map, "each webhook must be a mapping, not %s", ynode_kind_name(map->kind));
    if (options_parse(webhook_options, map, reserved, l->file, "a webhook", &s, l->d) != 0)
        return -1;
    int rc = -1;
    const struct optval *name = optset_find(&s, "name");
    if (!valid_name(name->str)) {
        at(l, name->node,
           "bad webhook name '%s': use 1-64 of [a-z0-9._-], starting with a "
           "letter or digit",
           name->str);
        goto out;
    }
    if (config_webhook(c, name->str)) {
        at(l, name->node, "duplicate webhook name '%s'", name->str);
        goto out;
    }
    if (!(w->name = strdup(name->str)))
        goto out_nomem;
    *named = 1;
    w->line = map->path ? 0 : map->line;
    const struct optval *uri = optset_find(&s, "callback_uri");
    if (check_callback_uri(l, uri->node, uri->str) != 0)
        goto out;
    if (!(w->callback_uri = strdup(uri->str)))
        goto out_nomem;
    if (check_endpoints(l, w, optset_find(&s, "endpoints")) != 0 ||
        check_sinks(l, w, optset_find(&s, "sinks")) != 0)
        goto out;
    w->units = (int)opt_num(&s, "units");
    w->vehicles_per_payload = (int)opt_num(&s, "vehicles_per_payload");
    const struct optval *src = optset_find(&s, "source");
    if (c->n_sources == 0) {
        at(l, map, "webhook '%s' needs a source, but no 'sources' are declared", w->name);
        goto out;
    }
    if (src->set) {
        int k = find_named(c->sources, c->n_sources, src->str);
        if (k < 0) {
            at(l, src->node, "unknown source '%s' (declare it under 'sources')", src->str);
            goto out;
        }
        w->source = (size_t)k;
    }
    rc = load_webhook_delivery(l, map, w) != 0 || load_cadence(l, w, map) != 0
             ? -1
             : check_supersede_fits(l, w, map);
    goto out;
out_nomem:
    diag_set(l->d, "out of memory");
out:
    optset_free(&s);
    return rc;
}

static int load_webhooks(struct loader *l, const struct ynode *root)
{
    const struct ynode *n = ynode_get(root, "webhooks");
    struct config *c = l->c;
    if (!n)
        return 0;
    if (n->kind != YNODE_SEQ)
        return at(l, n, "'webhooks' must be a list, not %s", ynode_kind_name(n->kind));
    c->webhooks = calloc(n->n ? n->n : 1, sizeof *c->webhooks);
    if (!c->webhooks)
        return diag_set(l->d, "out of memory");
    /* a webhook counts in n_webhooks once named, so a half-loaded one is freed too */
    for (size_t i = 0; i < n->n; i++) {
        int named = 0, rc = load_webhook(l, n->items[i], &c->webhooks[c->n_webhooks], &named);
        c->n_webhooks += named;
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- delivery, admin, retention ------------------------------------------------ */

static int load_spread(struct loader *l, const struct optval *v, const struct ynode *section)
{
    struct delivery_cfg *dc = &l->c->delivery;
    const struct ynode *where = v->node ? v->node : section;
    int64_t ms[2];
    if (v->list_len != 2)
        return at(l, where, "'spread' must be [min, max], like [1m, 5m]");
    for (int i = 0; i < 2; i++)
        if (parse_duration_ms(v->list[i], &ms[i]) != 0)
            return at(l, v->node ? v->node->items[i] : where,
                      "'spread': bad duration '%s' (write 500ms, 15s, 10m, 1h30m, 2d)", v->list[i]);
    if (ms[0] > ms[1])
        return at(l, where, "'spread' must be [min, max] with min <= max");
    if (ms[1] >= dc->fulfil_within_ms)
        return at(l, where, "'spread' must end before 'fulfil_within'");
    dc->spread_min_ms = ms[0];
    dc->spread_max_ms = ms[1];
    return 0;
}

static int load_delivery(struct loader *l, const struct ynode *root)
{
    const struct ynode *n = ynode_get(root, "delivery");
    struct delivery_cfg *dc = &l->c->delivery;
    struct optset s;
    if (core_section(l, n, "delivery", delivery_options, NULL, &s) != 0)
        return -1;
    dc->retry.retries = (int)opt_num(&s, "retries");
    dc->retry.window_ms = opt_num(&s, "retry_window");
    dc->fulfil_within_ms = opt_num(&s, "fulfil_within");
    dc->catch_up = (int)opt_num(&s, "catch_up");
    dc->auto_recover = (int)opt_num(&s, "auto_recover");
    dc->supersede = (int)opt_num(&s, "supersede");
    dc->ordered = (int)opt_num(&s, "ordered");
    int rc = load_retry(l, &s, n, &dc->retry);
    if (rc == 0)
        rc = load_spread(l, optset_find(&s, "spread"), n);
    optset_free(&s);
    return rc;
}

static int check_listen(struct loader *l, const struct ynode *node, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    int64_t port;
    if (!colon || colon == listen || parse_int64(colon + 1, &port) != 0 || port < 0 || port > 65535)
        return at(l, node,
                  "'listen' must be HOST:PORT, like 127.0.0.1:8844 (port 0: any free port), not "
                  "'%s'",
                  listen);
    return 0;
}

/* `events: {sinks: [...]}`: the sinks of metronome's own event stream. */
static int load_events(struct loader *l, const struct ynode *root)
{
    const struct ynode *n = ynode_get(root, "events");
    struct config *c = l->c;
    struct optset s;
    if (!n)
        return 0;
    if (core_section(l, n, "events", events_options, NULL, &s) != 0)
        return -1;
    const struct optval *v = optset_find(&s, "sinks");
    int rc = 0;
    if (v->list_len == 0)
        rc = at(l, v->node ? v->node : n, "'events.sinks' names at least one sink");
    c->events_sinks = rc == 0 ? calloc(v->list_len, sizeof *c->events_sinks) : NULL;
    if (rc == 0 && !c->events_sinks)
        rc = diag_set(l->d, "out of memory");
    for (size_t i = 0; rc == 0 && i < v->list_len; i++) {
        const struct ynode *item = v->node && i < v->node->n ? v->node->items[i] : n;
        int k = find_named(c->sinks, c->n_sinks, v->list[i]);
        if (k < 0)
            rc = at(l, item, "unknown sink '%s' (declare it under 'sinks')", v->list[i]);
        for (size_t j = 0; rc == 0 && j < c->n_events_sinks; j++)
            if (c->events_sinks[j] == (size_t)k)
                rc = at(l, item, "sink '%s' is listed twice", v->list[i]);
        if (rc == 0)
            c->events_sinks[c->n_events_sinks++] = (size_t)k;
    }
    optset_free(&s);
    return rc;
}

static int load_admin(struct loader *l, const struct ynode *root)
{
    const struct ynode *n = ynode_get(root, "admin");
    struct admin_cfg *a = &l->c->admin;
    struct optset s;
    if (!n)
        return 0;
    if (core_section(l, n, "admin", admin_options, NULL, &s) != 0)
        return -1;
    const struct optval *listen = optset_find(&s, "listen");
    int rc = check_listen(l, listen->node ? listen->node : n, listen->str);
    if (rc == 0) {
        a->enabled = 1;
        a->listen = strdup(listen->str);
        a->token = dup_or_null(opt_str(&s, "token"));
        a->metrics_auth = (int)opt_num(&s, "metrics_auth");
        a->tls_cert = dup_or_null(opt_str(&s, "tls_cert"));
        a->tls_key = dup_or_null(opt_str(&s, "tls_key"));
        if (!a->listen || !a->token)
            rc = diag_set(l->d, "out of memory");
        else if (!a->tls_cert != !a->tls_key)
            rc = at(l, n, "'tls_cert' and 'tls_key' go together: give both, or neither");
    }
    optset_free(&s);
    return rc;
}

static int load_retention(struct loader *l, const struct ynode *root)
{
    struct optset s;
    if (core_section(l, ynode_get(root, "retention"), "retention", retention_options, NULL, &s) !=
        0)
        return -1;
    l->c->retention.delivered_ms = opt_num(&s, "delivered");
    l->c->retention.failed_ms = opt_num(&s, "failed");
    l->c->retention.history_ms = opt_num(&s, "history");
    optset_free(&s);
    return 0;
}

/* ---- the whole file ------------------------------------------------------------ */

static int check_sections(struct loader *l, const struct ynode *root)
{
    size_t n = sizeof top_sections / sizeof *top_sections;
    for (size_t i = 0; i < root->n; i++) {
        const struct ynode *key = root->pairs[i].key;
        size_t k;
        for (k = 0; k < n && strcmp(top_sections[k], key->value) != 0; k++)
            ;
        if (k < n)
            continue;
        const char *hint = suggest_closest(key->value, top_sections, n);
        return at(l, key, "unknown section '%s'%s%s%s", key->value, hint ? " (did you mean '" : "",
                  hint ? hint : "", hint ? "'?)" : "");
    }
    return 0;
}

static int load_tree(struct loader *l, const struct ynode *root)
{
    if (!root)
        return diag_at(l->d, l->file, 1, 1, "empty pipeline file");
    if (root->kind != YNODE_MAP)
        return at(l, root,
                  "a pipeline file is a mapping of sections (version, application, "
                  "store, sources, sinks, webhooks ...), not %s",
                  ynode_kind_name(root->kind));
    if (check_sections(l, root) || load_version(l, root) || load_application(l, root) ||
        load_plugin_path(l, root) || scan_plugins(l) || load_secrets(l, root) ||
        load_store(l, root) ||
        load_named_list(l, root, "sources", MTR_KIND_SOURCE, &l->c->sources, &l->c->n_sources) ||
        load_named_list(l, root, "sinks", MTR_KIND_SINK, &l->c->sinks, &l->c->n_sinks) ||
        load_delivery(l, root) || load_webhooks(l, root) || load_admin(l, root) ||
        load_retention(l, root) || load_events(l, root))
        return -1;
    return 0;
}

int config_load(const char *path, const struct clock *clock, struct config **out, struct diag *d)
{
    struct ynode *root = NULL;
    struct config *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return diag_set(d, "out of memory");
    }
    struct loader l = {.file = path, .clock = clock, .c = c, .d = d};
    if (yaml_load_file(path, &root, d) != 0 || load_tree(&l, root) != 0) {
        ynode_free(root);
        config_free(c);
        return -1;
    }
    ynode_free(root);
    *out = c;
    return 0;
}

static void free_named(struct named_instance *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        instance_destroy(v[i].inst);
        free(v[i].name);
    }
    free(v);
}

void webhook_cfg_free(struct webhook_cfg *w)
{
    instance_destroy(w->cadence);
    for (size_t j = 0; j < w->n_endpoints; j++)
        free(w->endpoints[j]);
    free(w->endpoints);
    free(w->sinks);
    free(w->name);
    free(w->callback_uri);
    free(w->cadence_policy);
    memset(w, 0, sizeof *w);
}

int config_webhook_from_json(struct config *c, const json_t *def, const char *what,
                             const struct clock *clock, struct webhook_cfg *out, struct diag *d)
{
    struct ynode *map = NULL;
    struct loader l = {.file = what, .clock = clock, .c = c, .d = d};
    int named = 0;
    memset(out, 0, sizeof *out);
    if (ynode_from_json(def, what, &map, d) != 0)
        return -1;
    int rc = load_webhook(&l, map, out, &named);
    ynode_free(map);
    if (rc != 0)
        webhook_cfg_free(out);
    return rc;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_webhooks; i++)
        webhook_cfg_free(&c->webhooks[i]);
    free(c->webhooks);
    /* instances first: their code lives in the registry's shared objects */
    free_named(c->sources, c->n_sources);
    free_named(c->sinks, c->n_sinks);
    instance_destroy(c->store);
    registry_free(&c->registry);
    dirs_free(c->plugin_path, c->n_plugin_path);
    free(c->store_plugin);
    free(c->management_token);
    free(c->key_file);
    free(c->events_sinks);
    free(c->admin.listen);
    free(c->admin.token);
    free(c->admin.tls_cert);
    free(c->admin.tls_key);
    free(c->path);
    free(c);
}

const struct webhook_cfg *config_webhook(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->n_webhooks; i++)
        if (c->webhooks[i].name && strcmp(c->webhooks[i].name, name) == 0)
            return &c->webhooks[i];
    return NULL;
}

int config_read_plugin_path(const char *path, char ***dirs, size_t *n, struct diag *d)
{
    struct ynode *root = NULL;
    struct config c = {0};
    struct loader l = {.file = path, .c = &c, .d = d};
    *dirs = NULL;
    *n = 0;
    if (yaml_load_file(path, &root, d) != 0)
        return -1;
    int rc = root && root->kind == YNODE_MAP ? load_plugin_path(&l, root) : 0;
    ynode_free(root);
    if (rc != 0) {
        dirs_free(c.plugin_path, c.n_plugin_path);
        return -1;
    }
    *dirs = c.plugin_path;
    *n = c.n_plugin_path;
    return 0;
}
