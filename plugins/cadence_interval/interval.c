/* Cadence policy `interval`: fires every `every` (a whole number of seconds),
 * aligned to the Unix epoch, so every 15m fires at :00, :15, :30 and :45. */
#include <metronome/metronome.h>
#include <stdlib.h>

struct interval {
    int64_t every; /* seconds */
};

static int interval_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    int64_t ms = host->get_duration_ms(ctx, "every");
    if (ms % 1000 != 0) {
        host->set_error(ctx, "'every' must be a whole number of seconds");
        return MTR_ERR;
    }
    struct interval *iv = calloc(1, sizeof *iv);
    if (!iv) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    iv->every = ms / 1000;
    *state = iv;
    return MTR_OK;
}

static void interval_destroy(void *state)
{
    free(state);
}

static int interval_next(void *state, mtr_time after, mtr_time *next)
{
    const struct interval *iv = state;
    *next = (mtr_floor_div(after, iv->every) + 1) * iv->every;
    return MTR_OK;
}

static const struct mtr_cadence_ops interval_ops = {
    .struct_size = sizeof(struct mtr_cadence_ops),
    .next_fire = interval_next,
};

static const struct mtr_option interval_options[] = {
    {.name = "every",
     .type = MTR_OPT_DURATION,
     .flags = MTR_OPT_REQUIRED,
     .min = 1000, /* a second: for development against simulated vehicles */
     .max = 366LL * 86400000,
     .help = "period, aligned to the epoch (1s to 366d)"},
    {0},
};

static const struct mtr_plugin interval_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_CADENCE),
    .name = "interval",
    .version = "1.0.0",
    .description = "every fixed period, aligned to 1970-01-01T00:00:00Z",
    .options = interval_options,
    .create = interval_create,
    .destroy = interval_destroy,
    .cadence = &interval_ops,
};

MTR_PLUGIN_DEFINE(interval_plugin)
