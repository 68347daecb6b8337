/* Source `simulated`: deterministic vehicles computed from (seed, vehicle id,
 * time), with optional injected faults for tests. This file holds its
 * declared options and life cycle; fetching arrives with the delivery engine. */
#include <metronome/metronome.h>
#include <stdlib.h>

struct simulated {
    int64_t seed;
    int64_t asleep_percent;
    int64_t rate_limited_percent;
    int64_t malformed_percent;
};

static int simulated_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct simulated *s = calloc(1, sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->seed = host->get_int(ctx, "seed");
    s->asleep_percent = host->get_int(ctx, "asleep_percent");
    s->rate_limited_percent = host->get_int(ctx, "rate_limited_percent");
    s->malformed_percent = host->get_int(ctx, "malformed_percent");
    if (s->asleep_percent + s->rate_limited_percent + s->malformed_percent > 100) {
        host->set_error(ctx, "asleep_percent + rate_limited_percent + malformed_percent "
                             "must not exceed 100");
        free(s);
        return MTR_ERR;
    }
    *state = s;
    return MTR_OK;
}

static void simulated_destroy(void *state)
{
    free(state);
}

static const struct mtr_source_ops simulated_ops = {
    .struct_size = sizeof(struct mtr_source_ops),
};

static const struct mtr_option simulated_options[] = {
    {.name = "seed",
     .type = MTR_OPT_INT,
     .default_value = "42",
     .help = "the same seed always yields the same vehicles"},
    {.name = "asleep_percent",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 100,
     .help = "share of vehicles asleep at a fetch (409 VEHICLE_STATE/ASLEEP)"},
    {.name = "rate_limited_percent",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 100,
     .help = "share of fetches rate limited (429 RATE_LIMIT/VEHICLE)"},
    {.name = "malformed_percent",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 100,
     .help = "share of fetches answering malformed data"},
    {0},
};

static const struct mtr_plugin simulated_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SOURCE),
    .name = "simulated",
    .version = "0.1.0",
    .description = "deterministic simulated vehicles (payload mode: simulated)",
    .options = simulated_options,
    .create = simulated_create,
    .destroy = simulated_destroy,
    .source = &simulated_ops,
};

MTR_PLUGIN_DEFINE(simulated_plugin)
