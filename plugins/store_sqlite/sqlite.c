/* Store backend `sqlite`: the embedded default ledger (WAL mode, versioned
 * migrations, batched transactions). This file holds its declared options and
 * life cycle; the ledger operations arrive with the delivery engine. */
#include <metronome/metronome.h>
#include <stdlib.h>
#include <string.h>

struct sqlite_store {
    char *path;
    int64_t busy_timeout_ms;
    int64_t batch_rows;
    int synchronous; /* index into sync_modes */
};

static const char *const sync_modes[] = {"normal", "full", "off", NULL};

static int sqlite_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(host->get_string(ctx, "path")))) {
        free(s);
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->busy_timeout_ms = host->get_duration_ms(ctx, "busy_timeout");
    s->batch_rows = host->get_int(ctx, "batch_rows");
    s->synchronous = host->get_enum(ctx, "synchronous");
    *state = s;
    return MTR_OK;
}

static void sqlite_destroy(void *state)
{
    struct sqlite_store *s = state;
    if (!s)
        return;
    free(s->path);
    free(s);
}

static const struct mtr_store_ops sqlite_ops = {
    .struct_size = sizeof(struct mtr_store_ops),
};

static const struct mtr_option sqlite_options[] = {
    {.name = "path",
     .type = MTR_OPT_STRING,
     .default_value = "var/metronome.db",
     .help = "database file (created with its directory if missing)"},
    {.name = "busy_timeout",
     .type = MTR_OPT_DURATION,
     .default_value = "5s",
     .min = 0,
     .max = 600000,
     .help = "how long a writer waits for a lock"},
    {.name = "batch_rows",
     .type = MTR_OPT_INT,
     .default_value = "1000",
     .min = 1,
     .max = 1000000,
     .help = "rows written per transaction"},
    {.name = "synchronous",
     .type = MTR_OPT_ENUM,
     .default_value = "normal",
     .choices = sync_modes,
     .help = "SQLite synchronous pragma (normal is durable in WAL mode)"},
    {0},
};

static const struct mtr_plugin sqlite_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_STORE),
    .name = "sqlite",
    .version = "0.1.0",
    .description = "embedded ledger in one SQLite file (the default)",
    .options = sqlite_options,
    .create = sqlite_create,
    .destroy = sqlite_destroy,
    .store = &sqlite_ops,
};

MTR_PLUGIN_DEFINE(sqlite_plugin)
