/* Cadence policy `hourly`: fires at the top of every hour (UTC). A vehicle
 * subscribed at 15:45 first takes part in the 16:00 tick. */
#include <metronome/metronome.h>
#include <stdlib.h>

static int hourly_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    (void)host;
    (void)ctx;
    *state = NULL; /* stateless */
    return MTR_OK;
}

static void hourly_destroy(void *state)
{
    (void)state;
}

static int hourly_next(void *state, mtr_time after, mtr_time *next)
{
    (void)state;
    *next = (mtr_floor_div(after, 3600) + 1) * 3600;
    return MTR_OK;
}

static const struct mtr_cadence_ops hourly_ops = {
    .struct_size = sizeof(struct mtr_cadence_ops),
    .next_fire = hourly_next,
};

static const struct mtr_option hourly_options[] = {{0}};

static const struct mtr_plugin hourly_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_CADENCE),
    .name = "hourly",
    .version = "1.0.0",
    .description = "every hour at :00 UTC",
    .options = hourly_options,
    .create = hourly_create,
    .destroy = hourly_destroy,
    .cadence = &hourly_ops,
};

MTR_PLUGIN_DEFINE(hourly_plugin)
