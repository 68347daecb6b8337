/* The command line of SPEC section 6: parses argv and runs one command.
 * Returns the process exit status (0 ok, 2 bad input or config, 1 runtime). */
#ifndef MTR_CLI_H
#define MTR_CLI_H

#include "clock.h"
#include "config.h"

#define MAX_ARGS 8
#define MAX_OPTS 16

struct opt_spec {
    const char *name;
    int takes_value;
    const char *help;
};

struct invocation {
    const struct command *cmd;
    const char *args[MAX_ARGS];
    size_t n_args;
    const char *opt_names[MAX_OPTS];
    const char *opt_values[MAX_OPTS];
    size_t n_opts;
    const char *config_path;
    struct clock clock;
};

struct command {
    const char *name;
    const char *usage;
    const char *summary;
    const struct opt_spec *opts;
    size_t min_args, max_args;
    int (*run)(struct invocation *inv);
};

int cli_main(int argc, char **argv);

/* The value of an option given on the command line ("" for a flag), or NULL. */
const char *opt_get(const struct invocation *inv, const char *name);
/* Loads the pipeline named by --config; prints the error and returns 2. */
int load_config(struct invocation *inv, struct config **c);
/* Prints "metronome CMD: <fmt with what> (see metronome CMD --help)"; returns 2. */
int bad_usage(const struct invocation *inv, const char *fmt, const char *what);

#endif
