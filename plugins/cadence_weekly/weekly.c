/* Cadence policy `weekly`: fires once a week on weekday `on` at `at`
 * (HH:MM, UTC). */
#include <metronome/metronome.h>
#include <stdlib.h>

struct weekly {
    int wday; /* 0 = Sunday */
    int at;   /* seconds after midnight */
};

static const char *const weekdays[] = {"sunday",   "monday", "tuesday",  "wednesday",
                                       "thursday", "friday", "saturday", NULL};

static int weekly_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct weekly *w = calloc(1, sizeof *w);
    if (!w) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    w->wday = host->get_enum(ctx, "on");
    if (mtr_parse_hhmm(host->get_string(ctx, "at"), &w->at) != 0) {
        host->set_error(ctx, "'at' must be a time of day HH:MM (00:00 to 23:59), not '%s'",
                        host->get_string(ctx, "at"));
        free(w);
        return MTR_ERR;
    }
    *state = w;
    return MTR_OK;
}

static void weekly_destroy(void *state)
{
    free(state);
}

static int weekly_next(void *state, mtr_time after, mtr_time *next)
{
    const struct weekly *w = state;
    int64_t day = mtr_floor_div(after, 86400);
    int wday = (int)(((day % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    int64_t delta = (w->wday - wday + 7) % 7;
    mtr_time cand = (day + delta) * 86400 + w->at;
    *next = cand > after ? cand : cand + 7 * 86400;
    return MTR_OK;
}

static const struct mtr_cadence_ops weekly_ops = {
    .struct_size = sizeof(struct mtr_cadence_ops),
    .next_fire = weekly_next,
};

static const struct mtr_option weekly_options[] = {
    {.name = "on",
     .type = MTR_OPT_ENUM,
     .default_value = "monday",
     .choices = weekdays,
     .help = "day of the week"},
    {.name = "at",
     .type = MTR_OPT_STRING,
     .default_value = "00:00",
     .help = "time of day, HH:MM UTC"},
    {0},
};

static const struct mtr_plugin weekly_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_CADENCE),
    .name = "weekly",
    .version = "1.0.0",
    .description = "every week on a weekday at a time of day (UTC)",
    .options = weekly_options,
    .create = weekly_create,
    .destroy = weekly_destroy,
    .cadence = &weekly_ops,
};

MTR_PLUGIN_DEFINE(weekly_plugin)
