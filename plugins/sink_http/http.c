/* Sink `http`: POSTs each signed payload to the webhook's callback URI with
 * libcurl multi. This file holds its declared options and life cycle; the
 * transfer engine arrives with the delivery engine. */
#include <metronome/metronome.h>
#include <stdlib.h>
#include <string.h>

struct http_sink {
    int64_t timeout_ms;
    int64_t concurrency;
    uint64_t max_body_bytes;
    int allow_private_networks;
    int standard_webhooks;
};

/* A custom header is "Name: value" with a token name. */
static int valid_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return 0;
    for (const char *p = h; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    for (const char *p = colon; *p; p++)
        if (*p == '\r' || *p == '\n')
            return 0;
    return 1;
}

static int http_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    for (size_t i = 0; i < host->get_list_len(ctx, "headers"); i++) {
        const char *h = host->get_list_item(ctx, "headers", i);
        if (!valid_header(h)) {
            host->set_error(ctx, "headers[%zu] must be \"Name: value\" on one line", i);
            return MTR_ERR;
        }
    }
    struct http_sink *s = calloc(1, sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->timeout_ms = host->get_duration_ms(ctx, "timeout");
    s->concurrency = host->get_int(ctx, "concurrency");
    s->max_body_bytes = host->get_size(ctx, "max_body_bytes");
    s->allow_private_networks = host->get_bool(ctx, "allow_private_networks");
    s->standard_webhooks = host->get_bool(ctx, "standard_webhooks");
    *state = s;
    return MTR_OK;
}

static void http_destroy(void *state)
{
    free(state);
}

static const struct mtr_sink_ops http_ops = {
    .struct_size = sizeof(struct mtr_sink_ops),
};

static const struct mtr_option http_options[] = {
    {.name = "timeout",
     .type = MTR_OPT_DURATION,
     .default_value = "15s",
     .min = 100,
     .max = 300000,
     .help = "a delivery without a 2xx within this has failed"},
    {.name = "concurrency",
     .type = MTR_OPT_INT,
     .default_value = "64",
     .min = 1,
     .max = 4096,
     .help = "deliveries in flight at once"},
    {.name = "max_body_bytes",
     .type = MTR_OPT_SIZE,
     .default_value = "1MiB",
     .min = 1024,
     .max = 1073741824,
     .help = "larger payloads are split by vehicles, never truncated"},
    {.name = "headers", .type = MTR_OPT_LIST, .help = "extra request headers, \"Name: value\""},
    {.name = "allow_private_networks",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = "allow loopback, private, link-local and metadata addresses"},
    {.name = "standard_webhooks",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = "also send webhook-id, webhook-timestamp and webhook-signature"},
    {0},
};

static const struct mtr_plugin http_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SINK),
    .name = "http",
    .version = "0.1.0",
    .description = "POST to the webhook's callback URI (TLS verified)",
    .options = http_options,
    .create = http_create,
    .destroy = http_destroy,
    .sink = &http_ops,
};

MTR_PLUGIN_DEFINE(http_plugin)
