/* Plugin loader: dlopen, descriptor checks, directory scan and name lookup. */
#include "loader.h"
#include "options.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef METRONOME_PLUGIN_INSTALL_DIR
#define METRONOME_PLUGIN_INSTALL_DIR "/usr/local/lib/metronome/plugins"
#endif

/* The smallest descriptor ABI 1.0 accepts: everything up to the kind ops. */
#define MIN_DESCRIPTOR_SIZE (offsetof(struct mtr_plugin, sink) + sizeof(void *))

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

static int has_kind_ops(const struct mtr_plugin *p)
{
    switch (p->kind) {
    case MTR_KIND_CADENCE:
        return p->cadence && p->cadence->next_fire;
    case MTR_KIND_SOURCE:
        return p->source != NULL;
    case MTR_KIND_STORE:
        return p->store != NULL;
    case MTR_KIND_SINK:
        return p->sink != NULL;
    }
    return 0;
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
    if (!kind_name(out->kind))
        return diag_set(d, "%s: unknown plugin kind %u", path, out->kind);
    if (!valid_plugin_name(out->name))
        return diag_set(d, "%s: invalid plugin name (want 1-64 of [a-z0-9_-])", path);
    if (!out->version || !*out->version)
        return diag_set(d, "%s: plugin '%s' declares no version", path, out->name);
    if (!out->create || !out->destroy)
        return diag_set(d, "%s: plugin '%s' has no create/destroy", path, out->name);
    if (!has_kind_ops(out))
        return diag_set(d, "%s: %s plugin '%s' has no %s operations", path, kind_name(out->kind),
                        out->name, kind_name(out->kind));
    char err[512];
    if (options_check_decl(out->options, err, sizeof err) != 0)
        return diag_set(d, "%s: plugin '%s': %s", path, out->name, err);
    return 0;
}

int plugin_open(const char *path, struct plugin_file *out, struct diag *d)
{
    memset(out, 0, sizeof *out);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        return diag_set(d, "%s: cannot load plugin: %s", path, dlerror());
    mtr_plugin_entry_fn entry;
    void *sym = dlsym(dl, MTR_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object -> function pointer, as POSIX allows */
    if (!sym) {
        diag_set(d, "%s: not a metronome plugin: no %s() symbol", path, MTR_PLUGIN_ENTRY_SYMBOL);
        goto out_close;
    }
    const struct mtr_plugin *raw = entry();
    if (!raw) {
        diag_set(d, "%s: %s() returned NULL", path, MTR_PLUGIN_ENTRY_SYMBOL);
        goto out_close;
    }
    if (check_descriptor(path, raw, &out->desc, d) != 0)
        goto out_close;
    out->path = strdup(path);
    if (!out->path) {
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
    if (add_dir(&dirs, count, METRONOME_PLUGIN_INSTALL_DIR) != 0)
        goto out_nomem;
    return dirs;
out_nomem:
    dirs_free(dirs, *count);
    *count = 0;
    return NULL;
}
