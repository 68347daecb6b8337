/* Plugin loader: dlopen, descriptor checks, directory scan and name lookup. */
#include "loader.h"
#include "options.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef METRONOME_PLUGIN_INSTALL_SUBDIR
#define METRONOME_PLUGIN_INSTALL_SUBDIR "lib/metronome/plugins"
#endif
#ifndef METRONOME_PLUGIN_INSTALL_DIR
#define METRONOME_PLUGIN_INSTALL_DIR "/usr/local/lib/metronome/plugins"
#endif

/* The smallest descriptor ABI 1.0 accepts: everything up to the kind ops. */
#define MIN_DESCRIPTOR_SIZE (offsetof(struct mtr_plugin, sink) + sizeof(void *))

/* The sizes of ABI 1.0's kind ops tables: a table declaring less is refused. */
static const size_t min_ops_size[] = {
    [MTR_KIND_CADENCE] = 16,
    [MTR_KIND_SOURCE] = 48,
    [MTR_KIND_STORE] = 224,
    [MTR_KIND_SINK] = 32,
};
static const size_t ops_size[] = {
    [MTR_KIND_CADENCE] = sizeof(struct mtr_cadence_ops),
    [MTR_KIND_SOURCE] = sizeof(struct mtr_source_ops),
    [MTR_KIND_STORE] = sizeof(struct mtr_store_ops),
    [MTR_KIND_SINK] = sizeof(struct mtr_sink_ops),
};

const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case MTR_KIND_CADENCE:
        return "cadence";
    case MTR_KIND_SOURCE:
        return "source";
    case MTR_KIND_STORE:
        return "store";
    case MTR_KIND_SINK:
        return "sink";
    }
    return NULL;
}

static int valid_plugin_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* The kind's ops table of a descriptor, as a generic pointer slot. */
static const void **kind_ops_slot(struct mtr_plugin *p)
{
    switch (p->kind) {
    case MTR_KIND_CADENCE:
        return (const void **)&p->cadence;
    case MTR_KIND_SOURCE:
        return (const void **)&p->source;
    case MTR_KIND_STORE:
        return (const void **)&p->store;
    case MTR_KIND_SINK:
        return (const void **)&p->sink;
    }
    return NULL;
}

/* The calls the core makes of every plugin of a kind: the first one missing,
 * or NULL when none is. (The store's others - prune, check, read_only,
 * vehicle_sample and ABI 1.2's listings - are optional: the ledger names them
 * when a command needs one.) */
static const char *missing_op(const struct mtr_plugin *p)
{
#define NEED(ops, name)                                                                            \
    if (!(ops)->name)                                                                              \
        return #name;
    const struct mtr_store_ops *st = p->store;
    switch (p->kind) {
    case MTR_KIND_CADENCE:
        NEED(p->cadence, next_fire);
        return NULL;
    case MTR_KIND_SOURCE:
        NEED(p->source, mode);
        NEED(p->source, submit);
        return NULL;
    case MTR_KIND_STORE:
        NEED(st, begin);
        NEED(st, commit);
        NEED(st, rollback);
        NEED(st, webhook_upsert);
        NEED(st, webhook_list);
        NEED(st, webhook_set_state);
        NEED(st, webhook_set_last_tick);
        NEED(st, vehicle_upsert);
        NEED(st, vehicle_get);
        NEED(st, subscribe);
        NEED(st, unsubscribe);
        NEED(st, materialize_tick);
        NEED(st, claim_jobs);
        NEED(st, job_retry);
        NEED(st, job_set_state);
        NEED(st, jobs_miss_pending);
        NEED(st, deliveries_insert);
        NEED(st, claim_deliveries);
        NEED(st, record_attempt);
        NEED(st, fail_pending);
        NEED(st, replay);
        NEED(st, next_due);
        NEED(st, list_deliveries);
        NEED(st, list_attempts);
        NEED(st, delivery_get);
        NEED(st, stats);
        return NULL;
    case MTR_KIND_SINK:
        NEED(p->sink, submit);
        return NULL;
    }
#undef NEED
    return "?";
}

/* Replaces the plugin's kind ops table with a zero-extended copy of it (so
 * calls added in later ABI minors read as NULL), after checking its size. */
static int copy_kind_ops(const char *path, struct mtr_plugin *p, const void *raw, struct diag *d)
{
    const void **slot = kind_ops_slot(p);
    if (!raw)
        return diag_set(d, "%s: %s plugin '%s' has no %s operations", path, kind_name(p->kind),
                        p->name, kind_name(p->kind));
    uint32_t size = *(const uint32_t *)raw; /* every ops table starts with struct_size */
    if (size < min_ops_size[p->kind])
        return diag_set(d,
                        "%s: plugin '%s': its %s operations table declares struct_size %u; "
                        "ABI %d.0 needs at least %zu (write .struct_size = sizeof(struct "
                        "mtr_%s_ops))",
                        path, p->name, kind_name(p->kind), size, MTR_ABI_MAJOR,
                        min_ops_size[p->kind], kind_name(p->kind));
    void *copy = calloc(1, ops_size[p->kind]);
    if (!copy)
        return diag_set(d, "out of memory");
    memcpy(copy, raw, size < ops_size[p->kind] ? size : ops_size[p->kind]);
    *slot = copy;
    const char *op = missing_op(p);
    if (op)
        return diag_set(d,
                        "%s: %s plugin '%s' lacks the required operation '%s' (see metronome/%s.h)",
                        path, kind_name(p->kind), p->name, op, kind_name(p->kind));
    return 0;
}

static void free_kind_ops(struct mtr_plugin *p)
{
    const void **slot = kind_ops_slot(p);
    if (slot) {
        free((void *)*slot);
        *slot = NULL;
    }
}

/* Checks the frozen header, then copies the descriptor zero-extended. */
static int check_descriptor(const char *path, const struct mtr_plugin *raw, struct mtr_plugin *out,
                            struct diag *d)
{
    if (raw->magic != MTR_PLUGIN_MAGIC)
        return diag_set(d, "%s: not a metronome plugin (wrong magic 0x%08x)", path, raw->magic);
    if (raw->abi_major != MTR_ABI_MAJOR)
        return diag_set(d, "%s: built for plugin ABI %u.%u; this metronome speaks ABI %d.x", path,
                        raw->abi_major, raw->abi_minor, MTR_ABI_MAJOR);
    if (raw->abi_minor > MTR_ABI_MINOR)
        return diag_set(d,
                        "%s: built for plugin ABI %u.%u, newer than this metronome's %d.%d; "
                        "upgrade metronome or rebuild the plugin",
                        path, raw->abi_major, raw->abi_minor, MTR_ABI_MAJOR, MTR_ABI_MINOR);
    if (raw->struct_size < MIN_DESCRIPTOR_SIZE)
        return diag_set(d, "%s: descriptor is %u bytes; ABI %d.%d needs at least %zu", path,
                        raw->struct_size, MTR_ABI_MAJOR, MTR_ABI_MINOR,
                        (size_t)MIN_DESCRIPTOR_SIZE);
    memset(out, 0, sizeof *out);
    memcpy(out, raw, raw->struct_size < sizeof *out ? raw->struct_size : sizeof *out);
    if (!kind_name(out->kind)) {
        out->cadence = NULL, out->source = NULL, out->store = NULL, out->sink = NULL;
        return diag_set(d, "%s: unknown plugin kind %u", path, out->kind);
    }
    /* the plugin's own table, until copy_kind_ops puts the core's copy in its
     * place; the other kinds' pointers mean nothing */
    const void *raw_ops = *kind_ops_slot(out);
    out->cadence = NULL, out->source = NULL, out->store = NULL, out->sink = NULL;
    if (!valid_plugin_name(out->name))
        return diag_set(d, "%s: invalid plugin name (want 1-64 of [a-z0-9_-])", path);
    if (!out->version || !*out->version)
        return diag_set(d, "%s: plugin '%s' declares no version", path, out->name);
    if (!out->create || !out->destroy)
        return diag_set(d, "%s: plugin '%s' has no create/destroy", path, out->name);
    char err[512];
    if (options_check_decl(out->options, err, sizeof err) != 0)
        return diag_set(d, "%s: plugin '%s': %s", path, out->name, err);
    return copy_kind_ops(path, out, raw_ops, d);
}

int plugin_open(const char *path, struct plugin_file *out, struct diag *d)
{
    struct stat sb;
    memset(out, 0, sizeof *out);
    /* a FIFO or device would block or misbehave in dlopen: only regular files */
    if (stat(path, &sb) != 0)
        return diag_set(d, "%s: cannot load plugin: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return diag_set(d, "%s: not a regular file; only regular files are loaded as plugins",
                        path);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        return diag_set(d, "%s: cannot load plugin: %s", path, dlerror());
    mtr_plugin_entry_fn entry;
    void *sym = dlsym(dl, MTR_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object -> function pointer, as POSIX allows */
    if (!sym) {
        diag_set(d,
                 "%s: not a metronome plugin: no exported %s() symbol (define it with "
                 "MTR_PLUGIN_DEFINE(descriptor), which exports it even under "
                 "-fvisibility=hidden)",
                 path, MTR_PLUGIN_ENTRY_SYMBOL);
        goto out_close;
    }
    const struct mtr_plugin *raw = entry();
    if (!raw) {
        diag_set(d, "%s: %s() returned NULL", path, MTR_PLUGIN_ENTRY_SYMBOL);
        goto out_close;
    }
    if (check_descriptor(path, raw, &out->desc, d) != 0) {
        free_kind_ops(&out->desc);
        goto out_close;
    }
    out->path = strdup(path);
    if (!out->path) {
        free_kind_ops(&out->desc);
        diag_set(d, "out of memory");
        goto out_close;
    }
    out->dl = dl;
    return 0;
out_close:
    dlclose(dl);
    memset(out, 0, sizeof *out);
    return -1;
}

void plugin_close(struct plugin_file *pf)
{
    free_kind_ops(&pf->desc);
    if (pf->dl)
        dlclose(pf->dl);
    free(pf->path);
    memset(pf, 0, sizeof *pf);
}

static int ends_with_so(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the *.so files of dir, sorted. Missing dir: *n = 0. */
static int list_dir(const char *dir, char ***names, size_t *n, struct diag *d)
{
    *names = NULL;
    *n = 0;
    DIR *dh = opendir(dir);
    if (!dh)
        return 0;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (!ends_with_so(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(*names, cap * sizeof *p);
            if (!p)
                goto out_nomem;
            *names = p;
        }
        (*names)[*n] = strdup(e->d_name);
        if (!(*names)[*n])
            goto out_nomem;
        (*n)++;
    }
    closedir(dh);
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_names);
    return 0;
out_nomem:
    closedir(dh);
    dirs_free(*names, *n);
    *names = NULL;
    *n = 0;
    return diag_set(d, "out of memory");
}

static int registry_add(struct registry *r, struct plugin_file *pf, size_t dir_start,
                        struct diag *d)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->files[i].desc.name, pf->desc.name) != 0)
            continue;
        if (i >= dir_start)
            return diag_set(d, "two plugins named '%s' in one directory: %s and %s", pf->desc.name,
                            r->files[i].path, pf->path);
        pf->shadowed = 1;
    }
    struct plugin_file *p = realloc(r->files, (r->n + 1) * sizeof *p);
    if (!p)
        return diag_set(d, "out of memory");
    r->files = p;
    r->files[r->n++] = *pf;
    return 0;
}

static int scan_dir(struct registry *r, const char *dir, struct diag *d)
{
    char **names;
    size_t n;
    if (list_dir(dir, &names, &n, d) != 0)
        return -1;
    size_t dir_start = r->n;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[PATH_MAX];
        struct plugin_file pf;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
            rc = diag_set(d, "%s/%s: path too long", dir, names[i]);
            break;
        }
        rc = plugin_open(path, &pf, d);
        if (rc == 0 && (rc = registry_add(r, &pf, dir_start, d)) != 0)
            plugin_close(&pf);
    }
    dirs_free(names, n);
    return rc;
}

int registry_scan(struct registry *r, const char *const *dirs, size_t ndirs, struct diag *d)
{
    r->files = NULL;
    r->n = 0;
    for (size_t i = 0; i < ndirs; i++) {
        if (scan_dir(r, dirs[i], d) != 0) {
            registry_free(r);
            return -1;
        }
    }
    return 0;
}

void registry_free(struct registry *r)
{
    for (size_t i = 0; i < r->n; i++)
        plugin_close(&r->files[i]);
    free(r->files);
    r->files = NULL;
    r->n = 0;
}

const struct plugin_file *registry_find(const struct registry *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (!r->files[i].shadowed && strcmp(r->files[i].desc.name, name) == 0)
            return &r->files[i];
    return NULL;
}

void dirs_free(char **dirs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
}

/* Appends dir unless an equal real path is already listed. */
static int add_dir(char ***dirs, size_t *n, const char *dir)
{
    char real[PATH_MAX];
    const char *key = realpath(dir, real) ? real : dir;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*dirs)[i], key) == 0)
            return 0;
    char **p = realloc(*dirs, (*n + 1) * sizeof *p);
    if (!p)
        return -1;
    *dirs = p;
    if (!(p[*n] = strdup(key)))
        return -1;
    (*n)++;
    return 0;
}

/* The installed plugin directory, found from where the running binary is
 * (BIN/../lib/metronome/plugins, as `cmake --install --prefix P` lays it
 * out), so an installed tree can be moved; the configured path otherwise. */
static const char *installed_plugin_dir(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return METRONOME_PLUGIN_INSTALL_DIR;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return METRONOME_PLUGIN_INSTALL_DIR;
    *slash = '\0';
    struct stat sb;
    if (snprintf(buf, len, "%s/../%s", exe, METRONOME_PLUGIN_INSTALL_SUBDIR) < (int)len &&
        stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode))
        return buf;
    return METRONOME_PLUGIN_INSTALL_DIR;
}

char **plugin_search_path(const char *const *plugin_path, size_t n, size_t *count)
{
    char **dirs = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (add_dir(&dirs, count, plugin_path[i]) != 0)
            goto out_nomem;
    const char *env = getenv("METRONOME_PLUGIN_PATH");
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        if (!copy)
            goto out_nomem;
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
            if (add_dir(&dirs, count, tok) != 0) {
                free(copy);
                goto out_nomem;
            }
        free(copy);
    }
    char installed[PATH_MAX];
    if (add_dir(&dirs, count, installed_plugin_dir(installed, sizeof installed)) != 0)
        goto out_nomem;
    return dirs;
out_nomem:
    dirs_free(dirs, *count);
    *count = 0;
    return NULL;
}
