/* Plugin instances and the host API table they receive. An instance is one
 * configured use of a plugin (a sink named "callback", a webhook's cadence):
 * its validated options, its error buffer and its state pointer. */
#ifndef MTR_HOST_H
#define MTR_HOST_H

#include "clock.h"
#include "diag.h"
#include "loader.h"
#include "options.h"

struct quota;

struct mtr_ctx {
    char *name; /* "sink 'callback'" style origin for logs */
    const struct plugin_file *pf;
    struct optset opts;
    const struct clock *clock;
    struct quota *quota; /* the ledger's shared rate limits (the daemon's sources), or NULL */
    char error[1024];
};

struct instance {
    struct mtr_ctx ctx;
    void *state;
    int started;
};

/* Creates an instance: takes ownership of *opts (moved out, zeroed) and calls
 * the plugin's create(). On failure err holds the plugin's message and nothing
 * is left allocated. *out is owned by the caller (instance_destroy). */
int instance_create(const struct plugin_file *pf, const char *name, struct optset *opts,
                    const struct clock *clock, struct instance **out, char *err, size_t errlen);

/* A second instance of the same plugin with the same options (a second
 * connection to the same store, say), named name; *out as for instance_create. */
int instance_clone(const struct instance *src, const char *name, struct instance **out, char *err,
                   size_t errlen);

/* Calls the plugin's start() once; returns 0, or -1 with its message in d. */
int instance_start(struct instance *inst, struct diag *d);

/* Stops (if started) and destroys; accepts NULL. */
void instance_destroy(struct instance *inst);

const struct mtr_host_api *host_api(void);

#endif
