/* Sink `file`: appends one JSON line per payload - its delivery id, webhook,
 * attempt, headers and the payload itself - to a file. Each line is written
 * with a single write() on an O_APPEND descriptor; a short write is cut back
 * off, so the file never holds a torn line. fsync policy: always (after every
 * line), batch (every 100 lines and at stop) or never. */
#include <metronome/metronome.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum fsync_mode {
    FSYNC_ALWAYS = 0,
    FSYNC_BATCH = 1,
    FSYNC_NEVER = 2,
};

struct file_sink {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    char *path;
    int fsync_mode;
    int fd;
    unsigned unsynced;
    char *line;
    size_t cap;
};

static const char *const fsync_modes[] = {"always", "batch", "never", NULL};

static int reserve(struct file_sink *s, size_t need)
{
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(s->line, cap);
    if (!p)
        return -1;
    s->line = p;
    s->cap = cap;
    return 0;
}

/* Appends a JSON string; header values are ASCII without quotes by contract,
 * but escape anyway. */
static size_t put_string(char *out, const char *v)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            out[n++] = '\\';
        out[n++] = (unsigned char)*v < 0x20 ? ' ' : *v;
    }
    out[n++] = '"';
    return n;
}

static int build_line(struct file_sink *s, const struct mtr_delivery *d, size_t *len)
{
    size_t need = d->body_len + strlen(d->delivery_id) * 2 + strlen(d->webhook_id) * 2 + 128;
    for (size_t i = 0; i < d->n_headers; i++)
        need += (strlen(d->headers[i].name) + strlen(d->headers[i].value)) * 2 + 8;
    if (reserve(s, need) != 0)
        return -1;
    size_t n = 0;
    n += (size_t)snprintf(s->line + n, need - n, "{\"deliveryId\":");
    n += put_string(s->line + n, d->delivery_id);
    n += (size_t)snprintf(s->line + n, need - n, ",\"webhookId\":");
    n += put_string(s->line + n, d->webhook_id);
    n += (size_t)snprintf(s->line + n, need - n, ",\"attempt\":%d,\"headers\":{", d->attempt);
    for (size_t i = 0; i < d->n_headers; i++) {
        if (i)
            s->line[n++] = ',';
        n += put_string(s->line + n, d->headers[i].name);
        s->line[n++] = ':';
        n += put_string(s->line + n, d->headers[i].value);
    }
    n += (size_t)snprintf(s->line + n, need - n, "},\"body\":");
    memcpy(s->line + n, d->body, d->body_len);
    n += d->body_len;
    s->line[n++] = '}';
    s->line[n++] = '\n';
    *len = n;
    return 0;
}

static int open_file(struct file_sink *s)
{
    if (s->fd >= 0)
        return 0;
    s->fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    return s->fd >= 0 ? 0 : -1;
}

static int write_line(struct file_sink *s, size_t len, char *error, size_t errlen)
{
    if (open_file(s) != 0) {
        snprintf(error, errlen, "%s: cannot open: %s", s->path, strerror(errno));
        return -1;
    }
    off_t before = lseek(s->fd, 0, SEEK_END);
    ssize_t w = write(s->fd, s->line, len);
    if (w != (ssize_t)len) {
        int err = w < 0 ? errno : ENOSPC;
        if (w > 0 && before >= 0 && ftruncate(s->fd, before) != 0)
            err = errno;
        snprintf(error, errlen, "%s: cannot write: %s", s->path, strerror(err));
        return -1;
    }
    if (s->fsync_mode == FSYNC_ALWAYS || (s->fsync_mode == FSYNC_BATCH && ++s->unsynced >= 100)) {
        s->unsynced = 0;
        if (fdatasync(s->fd) != 0) {
            snprintf(error, errlen, "%s: cannot sync: %s", s->path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int file_submit(void *state, const struct mtr_delivery *d, mtr_sink_done_fn done, void *core)
{
    struct file_sink *s = state;
    char error[512];
    size_t len;
    struct mtr_sink_outcome o = {.status = MTR_OK, .retry_after_s = -1, .cookie = d->cookie};
    if (build_line(s, d, &len) != 0) {
        s->host->set_error(s->ctx, "out of memory");
        return MTR_ERR;
    }
    if (write_line(s, len, error, sizeof error) != 0) {
        o.status = MTR_ERR;
        o.error = error;
    }
    done(core, &o);
    return MTR_OK;
}

static uint64_t file_max_body(void *state)
{
    (void)state;
    return 0;
}

static int file_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct file_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(host->get_string(ctx, "path")))) {
        free(s);
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->host = host;
    s->ctx = ctx;
    s->fd = -1;
    s->fsync_mode = host->get_enum(ctx, "fsync");
    *state = s;
    return MTR_OK;
}

static int file_start(void *state)
{
    struct file_sink *s = state;
    char *dir = strdup(s->path);
    if (!dir)
        return MTR_ERR;
    for (char *p = dir + 1; *p; p++) /* create the parent directories */
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0750);
            *p = '/';
        }
    free(dir);
    if (open_file(s) != 0) {
        s->host->set_error(s->ctx, "%s: cannot open: %s", s->path, strerror(errno));
        return MTR_ERR;
    }
    return MTR_OK;
}

static void file_stop(void *state)
{
    struct file_sink *s = state;
    if (s->fd < 0)
        return;
    if (s->fsync_mode != FSYNC_NEVER)
        fdatasync(s->fd);
    close(s->fd);
    s->fd = -1;
}

static void file_destroy(void *state)
{
    struct file_sink *s = state;
    if (!s)
        return;
    file_stop(s);
    free(s->line);
    free(s->path);
    free(s);
}

static const struct mtr_sink_ops file_ops = {
    .struct_size = sizeof(struct mtr_sink_ops),
    .submit = file_submit,
    .max_body_bytes = file_max_body,
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
     .help = "always: after every line; batch: every 100 lines; never: leave it to the OS"},
    {0},
};

static const struct mtr_plugin file_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SINK),
    .name = "file",
    .version = "1.0.0",
    .description = "append payloads as JSON lines to a file",
    .options = file_options,
    .create = file_create,
    .start = file_start,
    .stop = file_stop,
    .destroy = file_destroy,
    .sink = &file_ops,
};

MTR_PLUGIN_DEFINE(file_plugin)
