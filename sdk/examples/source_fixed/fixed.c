/* An example third-party source: `fixed` answers every vehicle with the same
 * odometer reading, and every other endpoint with Smartcar's 501
 * COMPATIBILITY error element - what a source that knows only some endpoints
 * does. It shows the SDK helpers a source needs (metronome/util.h): JSON
 * string escaping, the sc-data-age instant, error elements. Built out of tree:
 *
 *     cc -std=c11 -shared -fPIC -o source_fixed.so fixed.c $(pkg-config --cflags metronome-plugin)
 *
 * It completes every fetch inside submit() (poll is NULL), on the engine
 * thread; data_json need only live until done() returns. */
#include <metronome/metronome.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixed {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    int64_t distance;
};

static int fixed_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct fixed *f = calloc(1, sizeof *f);
    if (!f) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    f->host = host;
    f->ctx = ctx;
    f->distance = host->get_int(ctx, "distance");
    *state = f;
    return MTR_OK;
}

static void fixed_destroy(void *state)
{
    free(state);
}

static const char *fixed_mode(void *state)
{
    (void)state;
    return "simulated"; /* one of "simulated", "live", "test" */
}

/* One endpoint's element, appended at buf + *len (cap bytes in all). */
static void element(const struct fixed *f, const struct mtr_fetch_request *q, const char *path,
                    char *buf, size_t cap, size_t *len)
{
    char age[32], escaped[256];
    if (strcmp(path, "/odometer") != 0) {
        *len += mtr_error_element(buf + *len, cap - *len, path, 501, "COMPATIBILITY",
                                  "VEHICLE_NOT_CAPABLE", "The fixed source only knows /odometer.",
                                  NULL, "CONTACT_SUPPORT");
        return;
    }
    mtr_format_iso8601(q->tick, 1, age, sizeof age);
    mtr_json_escape(escaped, sizeof escaped, q->vehicle->id, strlen(q->vehicle->id));
    int n = snprintf(buf + *len, cap - *len,
                     "{\"path\":\"/odometer\",\"code\":200,\"body\":{\"distance\":%lld,"
                     "\"vehicle\":\"%s\"},\"headers\":{\"sc-data-age\":\"%s\","
                     "\"sc-unit-system\":\"%s\"}}",
                     (long long)f->distance, escaped, age,
                     q->units == MTR_UNITS_IMPERIAL ? "imperial" : "metric");
    *len += n > 0 ? (size_t)n : 0;
}

static int fixed_submit(void *state, const struct mtr_fetch_request *reqs, size_t n,
                        mtr_fetch_done_fn done, void *core)
{
    const struct fixed *f = state;
    for (size_t i = 0; i < n; i++) {
        char data[8192];
        size_t len = 0;
        data[len++] = '[';
        for (size_t e = 0; e < reqs[i].n_endpoints && len + 1024 < sizeof data; e++) {
            if (e)
                data[len++] = ',';
            element(f, &reqs[i], reqs[i].endpoints[e], data, sizeof data, &len);
        }
        data[len++] = ']';
        struct mtr_fetch_result r = {.status = MTR_OK,
                                     .data_json = data,
                                     .data_len = len,
                                     .cookie = reqs[i].cookie, /* handed back unchanged */
                                     .retry_after_s = -1};
        done(core, &r);
    }
    return MTR_OK;
}

static const struct mtr_source_ops fixed_ops = {
    MTR_OPS_HEADER(mtr_source_ops),
    .mode = fixed_mode,
    .submit = fixed_submit,
};

static const struct mtr_option fixed_options[] = {
    {.name = "distance",
     .type = MTR_OPT_INT,
     .default_value = "12345",
     .min = 0,
     .max = 10000000,
     .help = "the odometer reading every vehicle reports (km)"},
    {0},
};

static const struct mtr_plugin fixed_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SOURCE),
    .name = "fixed",
    .version = "1.0.0",
    .description = "every vehicle reports the same odometer; an SDK example",
    .options = fixed_options,
    .create = fixed_create,
    .destroy = fixed_destroy,
    .source = &fixed_ops,
};

MTR_PLUGIN_DEFINE(fixed_plugin)
