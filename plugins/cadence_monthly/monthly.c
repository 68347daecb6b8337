/* Cadence policy `monthly`: fires at 00:00 UTC on day `day` of every month;
 * in a month without that day (29-31) it fires on the month's last day. */
#include <metronome/metronome.h>
#include <stdlib.h>

struct monthly {
    int day;
};

static int monthly_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct monthly *m = calloc(1, sizeof *m);
    if (!m) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    m->day = (int)host->get_int(ctx, "day");
    *state = m;
    return MTR_OK;
}

static void monthly_destroy(void *state)
{
    free(state);
}

static mtr_time fire_in_month(const struct monthly *m, int64_t y, int mon)
{
    int last = mtr_days_in_month(y, mon);
    return mtr_time_from_civil(y, mon, m->day < last ? m->day : last, 0, 0, 0);
}

static int monthly_next(void *state, mtr_time after, mtr_time *next)
{
    const struct monthly *m = state;
    struct mtr_civil c = mtr_civil_from_time(after);
    int64_t y = c.year;
    int mon = c.month;
    for (int i = 0; i < 3; i++) { /* this month's tick, or next month's */
        mtr_time cand = fire_in_month(m, y, mon);
        if (cand > after) {
            *next = cand;
            return MTR_OK;
        }
        if (++mon > 12) {
            mon = 1;
            y++;
        }
    }
    return MTR_ERR;
}

static const struct mtr_cadence_ops monthly_ops = {
    .struct_size = sizeof(struct mtr_cadence_ops),
    .next_fire = monthly_next,
};

static const struct mtr_option monthly_options[] = {
    {.name = "day",
     .type = MTR_OPT_INT,
     .default_value = "1",
     .min = 1,
     .max = 31,
     .help = "day of the month (29-31 fire on the last day of shorter months)"},
    {0},
};

static const struct mtr_plugin monthly_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_CADENCE),
    .name = "monthly",
    .version = "1.0.0",
    .description = "every month on a day at 00:00 UTC",
    .options = monthly_options,
    .create = monthly_create,
    .destroy = monthly_destroy,
    .cadence = &monthly_ops,
};

MTR_PLUGIN_DEFINE(monthly_plugin)
