/* An example third-party plugin: the cadence policy `weekdays` fires at `at`
 * (HH:MM UTC) from Monday to Friday. It is built out of tree against the
 * installed SDK only:
 *
 *     cc -shared -o cadence_weekdays.so weekdays.c $(pkg-config --cflags metronome-plugin)
 *
 * and loaded by naming it in a pipeline: cadence: {policy: weekdays, at: "08:00"}. */
#include <metronome/metronome.h>
#include <stdlib.h>

struct weekdays {
    int at; /* seconds after midnight */
};

/* create: read validated options through the host table; no I/O here. */
static int weekdays_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct weekdays *w = calloc(1, sizeof *w);
    if (!w) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    if (mtr_parse_hhmm(host->get_string(ctx, "at"), &w->at) != 0) {
        host->set_error(ctx, "'at' must be HH:MM, not '%s'", host->get_string(ctx, "at"));
        free(w);
        return MTR_ERR;
    }
    *state = w;
    return MTR_OK;
}

static void weekdays_destroy(void *state)
{
    free(state);
}

/* Pure: the first weekday instant at `at` strictly after `after`. */
static int weekdays_next(void *state, mtr_time after, mtr_time *next)
{
    const struct weekdays *w = state;
    int64_t day = mtr_floor_div(after, 86400);
    for (int i = 0; i < 8; i++, day++) {
        struct mtr_civil c = mtr_civil_from_time(day * 86400);
        mtr_time cand = day * 86400 + w->at;
        if (c.wday >= 1 && c.wday <= 5 && cand > after) {
            *next = cand;
            return MTR_OK;
        }
    }
    return MTR_ERR;
}

static const struct mtr_cadence_ops weekdays_ops = {
    .struct_size = sizeof(struct mtr_cadence_ops),
    .next_fire = weekdays_next,
};

static const struct mtr_option weekdays_options[] = {
    {.name = "at",
     .type = MTR_OPT_STRING,
     .default_value = "09:00",
     .help = "time of day, HH:MM UTC"},
    {0},
};

static const struct mtr_plugin weekdays_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_CADENCE),
    .name = "weekdays",
    .version = "1.0.0",
    .description = "Monday to Friday at a time of day (UTC); an SDK example",
    .options = weekdays_options,
    .create = weekdays_create,
    .destroy = weekdays_destroy,
    .cadence = &weekdays_ops,
};

MTR_PLUGIN_DEFINE(weekdays_plugin)
