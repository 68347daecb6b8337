/* Cadence policy `daily`: fires once a day at `at` (HH:MM, UTC). */
#include <metronome/metronome.h>
#include <stdlib.h>

struct daily {
    int at; /* seconds after midnight */
};

static int daily_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct daily *d = calloc(1, sizeof *d);
    if (!d) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    if (mtr_parse_hhmm(host->get_string(ctx, "at"), &d->at) != 0) {
        host->set_error(ctx, "'at' must be a time of day HH:MM (00:00 to 23:59), not '%s'",
                        host->get_string(ctx, "at"));
        free(d);
        return MTR_ERR;
    }
    *state = d;
    return MTR_OK;
}

static void daily_destroy(void *state)
{
    free(state);
}

static int daily_next(void *state, mtr_time after, mtr_time *next)
{
    const struct daily *d = state;
    mtr_time cand = mtr_floor_div(after, 86400) * 86400 + d->at;
    *next = cand > after ? cand : cand + 86400;
    return MTR_OK;
}

static const struct mtr_cadence_ops daily_ops = {
    .struct_size = sizeof(struct mtr_cadence_ops),
    .next_fire = daily_next,
};

static const struct mtr_option daily_options[] = {
    {.name = "at",
     .type = MTR_OPT_STRING,
     .default_value = "00:00",
     .help = "time of day, HH:MM UTC"},
    {0},
};

static const struct mtr_plugin daily_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_CADENCE),
    .name = "daily",
    .version = "1.0.0",
    .description = "every day at a time of day (UTC)",
    .options = daily_options,
    .create = daily_create,
    .destroy = daily_destroy,
    .cadence = &daily_ops,
};

MTR_PLUGIN_DEFINE(daily_plugin)
