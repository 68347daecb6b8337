/* Plugin loader: finds shared objects in the search path (the pipeline's
 * plugin_path, then $METRONOME_PLUGIN_PATH, then the installed plugin
 * directory), opens each with dlopen(RTLD_NOW | RTLD_LOCAL), and checks its
 * descriptor before anything of it runs. Earlier directories shadow later ones;
 * two plugins with one name in the same directory are an error. */
#ifndef MTR_LOADER_H
#define MTR_LOADER_H

#include <metronome/metronome.h>
#include "diag.h"

struct plugin_file {
    char *path;
    void *dl;
    struct mtr_plugin desc; /* zero-extended copy of the plugin's descriptor */
    int shadowed;           /* a plugin of the same name comes earlier in the path */
};

struct registry {
    struct plugin_file *files;
    size_t n;
};

/* Opens and checks one plugin file. On failure d names the file. */
int plugin_open(const char *path, struct plugin_file *out, struct diag *d);
void plugin_close(struct plugin_file *pf);

/* Scans the directories in order (missing ones are skipped). The registry owns
 * what it loads until registry_free. */
int registry_scan(struct registry *r, const char *const *dirs, size_t ndirs, struct diag *d);
void registry_free(struct registry *r);

/* The plugin that a name resolves to, or NULL. */
const struct plugin_file *registry_find(const struct registry *r, const char *name);

/* The directories to search for a pipeline's plugin_path: a malloc'd array of
 * malloc'd strings (free with dirs_free). */
char **plugin_search_path(const char *const *plugin_path, size_t n, size_t *count);
void dirs_free(char **dirs, size_t n);

const char *kind_name(uint32_t kind);

#endif
