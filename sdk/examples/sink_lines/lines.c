/* An example third-party sink: `lines` appends one line per delivery to a
 * file - "DELIVERY_ID ATTEMPT BYTES SC-SIGNATURE" - and reports it delivered.
 * Built out of tree:
 *
 *     cc -std=c11 -shared -fPIC -o sink_lines.so lines.c $(pkg-config --cflags metronome-plugin)
 *
 * The rules it follows (metronome/sink.h): submit() runs on the delivery
 * thread; the outcome hands back d->cookie unchanged, exactly once; nothing
 * of the delivery is kept after done() returns. */
#include <metronome/metronome.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct lines {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    char *path;
    FILE *out;
};

static int lines_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct lines *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(host->get_string(ctx, "path")))) {
        free(l);
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    l->host = host;
    l->ctx = ctx;
    *state = l;
    return MTR_OK;
}

static int lines_start(void *state) /* I/O starts here, not in create */
{
    struct lines *l = state;
    if (!(l->out = fopen(l->path, "a"))) {
        l->host->set_error(l->ctx, "%s: cannot open", l->path);
        return MTR_ERR;
    }
    return MTR_OK;
}

static void lines_stop(void *state)
{
    struct lines *l = state;
    if (l->out)
        fclose(l->out);
    l->out = NULL;
}

static void lines_destroy(void *state)
{
    struct lines *l = state;
    if (!l)
        return;
    lines_stop(l);
    free(l->path);
    free(l);
}

static int lines_submit(void *state, const struct mtr_delivery *d, mtr_sink_done_fn done,
                        void *core)
{
    struct lines *l = state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *signature = "-";
    for (size_t i = 0; i < d->n_headers; i++)
        if (strcasecmp(d->headers[i].name, "SC-Signature") == 0)
            signature = d->headers[i].value;
    int ok =
        fprintf(l->out, "%s %d %zu %s\n", d->delivery_id, d->attempt, d->body_len, signature) > 0 &&
        fflush(l->out) == 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct mtr_sink_outcome o = {
        .status = ok ? MTR_OK : MTR_ERR,
        .retry_after_s = -1,
        .latency_us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000,
        .error = ok ? NULL : "cannot write the line",
        .cookie = d->cookie, /* the rule every sink keeps */
    };
    done(core, &o);
    return MTR_OK;
}

static const struct mtr_sink_ops lines_ops = {
    MTR_OPS_HEADER(mtr_sink_ops),
    .submit = lines_submit,
};

static const struct mtr_option lines_options[] = {
    {.name = "path",
     .type = MTR_OPT_STRING,
     .flags = MTR_OPT_REQUIRED,
     .help = "the file the lines are appended to"},
    {0},
};

static const struct mtr_plugin lines_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SINK),
    .name = "lines",
    .version = "1.0.0",
    .description = "one line per delivery in a file; an SDK example",
    .options = lines_options,
    .create = lines_create,
    .start = lines_start,
    .stop = lines_stop,
    .destroy = lines_destroy,
    .sink = &lines_ops,
};

MTR_PLUGIN_DEFINE(lines_plugin)
