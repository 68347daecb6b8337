/* Sink `file`: appends one JSON line per payload, with its headers, to a
 * file; never a torn line. This file holds its declared options and life
 * cycle; writing arrives with the delivery engine. */
#include <metronome/metronome.h>
#include <stdlib.h>
#include <string.h>

struct file_sink {
    char *path;
    int fsync_mode;
};

static const char *const fsync_modes[] = {"always", "batch", "never", NULL};

static int file_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct file_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(host->get_string(ctx, "path")))) {
        free(s);
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->fsync_mode = host->get_enum(ctx, "fsync");
    *state = s;
    return MTR_OK;
}

static void file_destroy(void *state)
{
    struct file_sink *s = state;
    if (!s)
        return;
    free(s->path);
    free(s);
}

static const struct mtr_sink_ops file_ops = {
    .struct_size = sizeof(struct mtr_sink_ops),
};

static const struct mtr_option file_options[] = {
    {.name = "path",
     .type = MTR_OPT_STRING,
     .flags = MTR_OPT_REQUIRED,
     .help = "JSON-lines file the payloads are appended to"},
    {.name = "fsync",
     .type = MTR_OPT_ENUM,
     .default_value = "batch",
     .choices = fsync_modes,
     .help = "always: after every line; batch: once per batch; never: leave it to the OS"},
    {0},
};

static const struct mtr_plugin file_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SINK),
    .name = "file",
    .version = "0.1.0",
    .description = "append payloads as JSON lines to a file",
    .options = file_options,
    .create = file_create,
    .destroy = file_destroy,
    .sink = &file_ops,
};

MTR_PLUGIN_DEFINE(file_plugin)
