/* The command line: `metronome COMMAND [ARGS] [OPTIONS]`. Options may stand
 * before or after the arguments, as --name value or --name=value. Each command
 * declares its options and argument count; anything else is refused with
 * exit status 2 before any work is done. Everything it prints goes through a
 * filter that escapes control characters (as \xNN), so a vehicle id, a
 * receiver's error text or an argument cannot drive the operator's terminal. */
#define _GNU_SOURCE /* fopencookie */
#include "cli.h"
#include "commands.h"
#include "config.h"
#include "diag.h"
#include "loader.h"
#include "log.h"
#include "options.h"
#include "scalar.h"
#include "scheduler.h"
#include "vault.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef METRONOME_VERSION
#define METRONOME_VERSION "0.0.0"
#endif

static const struct opt_spec global_opts[] = {
    {"config", 1, "pipeline file (default $METRONOME_CONFIG, then ./metronome.yaml)"},
    {"now", 1, "fixed clock, ISO 8601 UTC (2030-03-01T15:45:00Z)"},
    {"log-level", 1, "error, warn, info (default) or debug"},
    {"log-format", 1, "text (default) or json: one JSON object a line"},
    {"help", 0, "show this help"},
    {NULL, 0, NULL},
};

/* ---- helpers ---------------------------------------------------------------- */

const char *opt_get(const struct invocation *inv, const char *name)
{
    for (size_t i = 0; i < inv->n_opts; i++)
        if (strcmp(inv->opt_names[i], name) == 0)
            return inv->opt_values[i] ? inv->opt_values[i] : "";
    return NULL;
}

int load_config(struct invocation *inv, struct config **c)
{
    struct diag d;
    if (config_load(inv->config_path, &inv->clock, c, &d) != 0) {
        fprintf(stderr, "%s\n", d.text);
        return EXIT_BAD_INPUT;
    }
    return EXIT_OK;
}

int bad_usage(const struct invocation *inv, const char *fmt, const char *what)
{
    fprintf(stderr, "metronome %s: ", inv->cmd->name);
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (see metronome %s --help)\n", inv->cmd->name);
    return EXIT_BAD_INPUT;
}

/* ---- validate ------------------------------------------------------------------ */

/* A spread longer than a webhook's period makes every payload arrive after
 * the next tick: valid, but almost certainly not meant. */
static void warn_spread(const struct config *c, mtr_time now)
{
    int64_t spread = c->delivery.spread_max_ms / 1000;
    for (size_t i = 0; i < c->n_webhooks; i++) {
        const struct webhook_cfg *w = &c->webhooks[i];
        mtr_time a, b;
        struct diag d;
        if (webhook_next_tick(w, now, &a, &d) != 0 || webhook_next_tick(w, a, &b, &d) != 0)
            continue;
        if (spread > b - a)
            fprintf(stderr,
                    "%s:%d: warning: webhook '%s' ticks every %llds but delivery.spread reaches "
                    "%llds: every payload would arrive after the next tick (narrow the spread)\n",
                    c->path, w->line, w->name, (long long)(b - a), (long long)spread);
    }
}

static int cmd_validate(struct invocation *inv)
{
    struct config *c;
    int rc = load_config(inv, &c);
    if (rc != EXIT_OK)
        return rc;
    struct vault key; /* the key is configuration too: malformed or missing is bad input */
    struct diag d;
    if (vault_load(&key, c, &d) != 0 || vault_check_sources(&key, c, &d) != 0) {
        fprintf(stderr, "%s\n", d.text);
        vault_wipe(&key);
        config_free(c);
        return EXIT_BAD_INPUT;
    }
    vault_wipe(&key);
    warn_spread(c, clock_now(&inv->clock));
    printf("ok\n");
    config_free(c);
    return EXIT_OK;
}

/* ---- plan ---------------------------------------------------------------------- */

static int print_tick(void *arg, const struct webhook_cfg *w, mtr_time tick)
{
    char when[32];
    (void)arg;
    format_iso8601(tick, when, sizeof when);
    printf("%s %s\n", w->name, when);
    return 0;
}

static int cmd_plan(struct invocation *inv)
{
    const char *from_s = opt_get(inv, "from"), *count_s = opt_get(inv, "count");
    const char *only = opt_get(inv, "webhook");
    mtr_time from = clock_now(&inv->clock);
    int64_t count = 10;
    if (from_s && parse_iso8601(from_s, &from) != 0)
        return bad_usage(
            inv, "--from: bad instant '%s' (write 2030-03-01T15:45:00Z, UTC, from 1970 to 9999)",
            from_s);
    if (count_s && (parse_int64(count_s, &count) != 0 || count < 1 || count > 10000000))
        return bad_usage(inv, "--count: want a number from 1 to 10000000, not '%s'", count_s);
    struct config *c;
    int rc = load_config(inv, &c);
    if (rc != EXIT_OK)
        return rc;
    struct diag d;
    if (only && !config_webhook(c, only)) {
        fprintf(stderr, "metronome plan: unknown webhook '%s' in %s\n", only, inv->config_path);
        rc = EXIT_BAD_INPUT;
    } else if (schedule_plan(c, only, from, (size_t)count, print_tick, NULL, &d) != 0) {
        fprintf(stderr, "metronome plan: %s\n", d.text);
        rc = EXIT_RUNTIME;
    }
    config_free(c);
    return rc;
}

/* ---- plugins ------------------------------------------------------------------- */

static void option_default(const struct mtr_option *o, char *buf, size_t len)
{
    if (o->flags & MTR_OPT_REQUIRED)
        snprintf(buf, len, "required");
    else if (o->default_value)
        snprintf(buf, len, "%s", o->default_value);
    else
        snprintf(buf, len, "-");
}

static void option_type(const struct mtr_option *o, char *buf, size_t len)
{
    if (o->type != MTR_OPT_ENUM) {
        snprintf(buf, len, "%s", option_type_name(o->type));
        return;
    }
    size_t used = 0;
    for (size_t i = 0; o->choices[i] && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? "|" : "", o->choices[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void print_plugin_text(const struct plugin_file *pf)
{
    const struct mtr_plugin *p = &pf->desc;
    printf("%-8s %-10s %-8s %s%s\n", kind_name(p->kind), p->name, p->version, pf->path,
           pf->shadowed ? "  (shadowed by an earlier directory)" : "");
    if (p->description)
        printf("    %s\n", p->description);
    for (size_t i = 0; p->options && p->options[i].name; i++) {
        const struct mtr_option *o = &p->options[i];
        char def[128], type[256];
        option_default(o, def, sizeof def);
        option_type(o, type, sizeof type);
        printf("    %s (%s, %s%s): %s\n", o->name, type,
               (o->flags & MTR_OPT_REQUIRED) || !o->default_value ? "" : "default ", def,
               o->help ? o->help : "");
    }
    if (!p->options || !p->options[0].name)
        printf("    (no options)\n");
}

static void print_options_markdown(const struct mtr_option *options)
{
    if (!options || !options[0].name) {
        printf("No options.\n\n");
        return;
    }
    printf("| option | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; options[i].name; i++) {
        const struct mtr_option *o = &options[i];
        char def[128], type[256];
        option_default(o, def, sizeof def);
        option_type(o, type, sizeof type);
        printf("| `%s` | %s | %s | %s |\n", o->name, type, def, o->help ? o->help : "");
    }
    printf("\n");
}

static void print_plugin_markdown(const struct plugin_file *pf)
{
    const struct mtr_plugin *p = &pf->desc;
    printf("#### %s `%s` (%s)\n\n%s\n\n", kind_name(p->kind), p->name, p->version,
           p->description ? p->description : "");
    print_options_markdown(p->options);
}

static void print_sections_markdown(void)
{
    printf("### Pipeline sections\n\n");
    for (size_t i = 0; i < n_config_sections; i++) {
        printf("#### `%s`: %s\n\n", config_sections[i].name, config_sections[i].help);
        print_options_markdown(config_sections[i].options);
    }
    printf("### Plugins\n\n");
}

static int plugin_dirs(struct invocation *inv, int explicit_config, char ***pp, size_t *npp)
{
    struct diag d;
    FILE *f;
    *pp = NULL;
    *npp = 0;
    /* without an explicit --config, a missing default pipeline is fine here */
    if (!explicit_config && (f = fopen(inv->config_path, "r")) == NULL)
        return EXIT_OK;
    if (!explicit_config)
        fclose(f);
    if (config_read_plugin_path(inv->config_path, pp, npp, &d) != 0) {
        fprintf(stderr, "%s\n", d.text);
        return EXIT_BAD_INPUT;
    }
    return EXIT_OK;
}

static int cmd_plugins(struct invocation *inv)
{
    char **pp, **dirs;
    size_t npp, ndirs;
    const char *env_config = getenv("METRONOME_CONFIG");
    int explicit_config = opt_get(inv, "config") || (env_config && *env_config);
    int rc = plugin_dirs(inv, explicit_config, &pp, &npp);
    if (rc != EXIT_OK)
        return rc;
    dirs = plugin_search_path((const char *const *)pp, npp, &ndirs);
    dirs_free(pp, npp);
    if (!dirs)
        return EXIT_RUNTIME;
    struct registry r;
    struct diag d;
    if (registry_scan(&r, (const char *const *)dirs, ndirs, &d) != 0) {
        fprintf(stderr, "%s\n", d.text);
        dirs_free(dirs, ndirs);
        return EXIT_BAD_INPUT;
    }
    int markdown = opt_get(inv, "markdown") != NULL;
    if (markdown)
        print_sections_markdown();
    else {
        printf("search path:");
        for (size_t i = 0; i < ndirs; i++)
            printf(" %s", dirs[i]);
        printf("\n\n");
    }
    for (uint32_t kind = MTR_KIND_CADENCE; kind <= MTR_KIND_SINK; kind++)
        for (size_t i = 0; i < r.n; i++)
            if (r.files[i].desc.kind == kind && !(markdown && r.files[i].shadowed))
                (markdown ? print_plugin_markdown : print_plugin_text)(&r.files[i]);
    if (r.n == 0)
        printf("no plugins found\n");
    registry_free(&r);
    dirs_free(dirs, ndirs);
    return EXIT_OK;
}

/* ---- the table of commands ------------------------------------------------------ */

static const struct opt_spec plan_opts[] = {
    {"from", 1, "first instant (ticks strictly after it); default now"},
    {"count", 1, "number of ticks to print (default 10)"},
    {"webhook", 1, "only this webhook"},
    {NULL, 0, NULL},
};

static const struct opt_spec plugins_opts[] = {
    {"markdown", 0, "print the options reference as Markdown"},
    {NULL, 0, NULL},
};

static const struct opt_spec no_opts[] = {{NULL, 0, NULL}};

static const struct opt_spec run_opts[] = {
    {"clock", 1, "wall (default) or virtual: jump to the next timer when idle"},
    {"start", 1, "virtual clock: the first instant (default --now)"},
    {"until", 1, "stop at this instant (required with a virtual clock)"},
    {NULL, 0, NULL},
};

static const struct opt_spec json_opts[] = {
    {"json", 0, "print JSON"},
    {NULL, 0, NULL},
};

static const struct opt_spec subscribe_opts[] = {
    {"source", 1, "source of the vehicle (default: the webhook's)"},
    {"access-token", 1, "the vehicle's access token (live vehicles)"},
    {"refresh-token", 1, "the vehicle's refresh token (live vehicles)"},
    {"file", 1, "bulk import: one vehicle_id[,access_token[,refresh_token]] a line"},
    {"all", 0, "every vehicle the access token can reach (a live source lists them)"},
    {NULL, 0, NULL},
};

static const struct opt_spec connect_opts[] = {
    {"code", 1, "the authorization code Smartcar Connect redirected with"},
    {"redirect-uri", 1, "the redirect URI the code was issued for"},
    {"source", 1, "the live source (default: the webhook's, or the first)"},
    {NULL, 0, NULL},
};

static const struct opt_spec deliveries_opts[] = {
    {"webhook", 1, "only this webhook"},
    {"state", 1, "pending, delivered or failed"},
    {"limit", 1, "at most this many deliveries (default 1000)"},
    {"json", 0, "print JSON, with every attempt"},
    {NULL, 0, NULL},
};

static const struct opt_spec replay_opts[] = {
    {"delivery", 1, "send this delivery again"},
    {"webhook", 1, "send this webhook's deliveries again"},
    {"state", 1, "with --webhook: failed (default) or delivered"},
    {NULL, 0, NULL},
};

static const struct command commands[] = {
    {"validate", "validate",
     "load the pipeline and its plugins; print ok or FILE:LINE:COL: message", no_opts, 0, 0,
     cmd_validate},
    {"plan", "plan [--from ISO] [--count N] [--webhook NAME]",
     "print the next ticks, one line each: NAME ISO8601Z", plan_opts, 0, 0, cmd_plan},
    {"plugins", "plugins [--markdown]",
     "list every plugin found: kind, name, version and its options", plugins_opts, 0, 0,
     cmd_plugins},
    {"run", "run [--clock virtual --start ISO] [--until ISO]",
     "the daemon: fire ticks, fetch, sign and deliver until stopped (SIGTERM, SIGINT)", run_opts, 0,
     0, cmd_run},
    {"webhook",
     "webhook list [--json] | show NAME | verify NAME | test NAME | enable NAME | disable NAME",
     "webhook life cycle: verify the callback, send a test payload, enable, disable", json_opts, 1,
     2, cmd_webhook},
    {"status", "status [--json]",
     "what the running daemon is doing (uptime, next ticks, queue, last errors), from its API",
     json_opts, 0, 0, cmd_status},
    {"subscribe",
     "subscribe WEBHOOK VEHICLE [--source NAME] [--access-token T] "
     "[--refresh-token T] | subscribe WEBHOOK --file vehicles.csv",
     "subscribe vehicles to a webhook: they take part in every tick after now", subscribe_opts, 1,
     2, cmd_subscribe},
    {"connect", "connect [WEBHOOK] --code CODE --redirect-uri URI [--source NAME]",
     "exchange a Connect authorization code for tokens; store (and subscribe) its vehicles",
     connect_opts, 0, 1, cmd_connect},
    {"unsubscribe", "unsubscribe WEBHOOK VEHICLE", "stop a vehicle's deliveries", no_opts, 2, 2,
     cmd_unsubscribe},
    {"deliveries", "deliveries [--webhook NAME] [--state S] [--json]",
     "the ledger: deliveries with their attempts and outcomes", deliveries_opts, 0, 0,
     cmd_deliveries},
    {"check", "check", "the ledger's integrity check (read-only); exit 1 when it is damaged",
     no_opts, 0, 0, cmd_check},
    {"replay", "replay --delivery ID | --webhook NAME [--state failed]",
     "send stored payloads again, with the same delivery id and bytes", replay_opts, 0, 0,
     cmd_replay},
};

#define N_COMMANDS (sizeof commands / sizeof *commands)

static void print_opts(FILE *out, const struct opt_spec *opts)
{
    for (size_t i = 0; opts[i].name; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[i].name, opts[i].takes_value ? " VALUE" : "");
        fprintf(out, "  %-20s %s\n", left, opts[i].help);
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: metronome COMMAND [ARGS] [OPTIONS]\n\n"
            "metronome %s: scheduled webhooks for vehicle data.\n\ncommands:\n",
            METRONOME_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\noptions of every command:\n");
    print_opts(out, global_opts);
    fprintf(out, "\n  --version            print the version\n"
                 "\nexit status: 0 ok, 2 bad input or configuration, 1 runtime failure.\n"
                 "metronome COMMAND --help describes a command.\n");
}

static void command_help(const struct command *cmd)
{
    printf("usage: metronome %s [OPTIONS]\n\n%s\n\noptions:\n", cmd->usage, cmd->summary);
    print_opts(stdout, cmd->opts);
    print_opts(stdout, global_opts);
}

static const struct opt_spec *find_opt(const struct command *cmd, const char *name, size_t len)
{
    const struct opt_spec *tables[2] = {global_opts, cmd ? cmd->opts : no_opts};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; tables[t][i].name; i++)
            if (strlen(tables[t][i].name) == len && strncmp(tables[t][i].name, name, len) == 0)
                return &tables[t][i];
    return NULL;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Splits argv into the command, its arguments and options. */
static int parse_args(int argc, char **argv, struct invocation *inv)
{
    const char *cmd_name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (!cmd_name) {
                cmd_name = a;
                if (!(inv->cmd = find_command(a))) {
                    fprintf(stderr, "metronome: unknown command '%s' (see metronome --help)\n", a);
                    return EXIT_BAD_INPUT;
                }
            } else if (inv->n_args == MAX_ARGS) {
                return bad_usage(inv, "too many arguments at '%s'", a);
            } else {
                inv->args[inv->n_args++] = a;
            }
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt_spec *o = find_opt(inv->cmd, name, len);
        if (!o && !(len == 7 && strncmp(name, "version", 7) == 0)) {
            fprintf(stderr, "metronome%s%s: unknown option '%s' (see metronome %s%s--help)\n",
                    inv->cmd ? " " : "", inv->cmd ? inv->cmd->name : "", a,
                    inv->cmd ? inv->cmd->name : "", inv->cmd ? " " : "");
            return EXIT_BAD_INPUT;
        }
        const char *value = NULL;
        if (o && o->takes_value) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                fprintf(stderr, "metronome: option --%s needs a value\n", o->name);
                return EXIT_BAD_INPUT;
            }
        } else if (eq) {
            fprintf(stderr, "metronome: option --%.*s takes no value\n", (int)len, name);
            return EXIT_BAD_INPUT;
        }
        for (size_t k = 0; o && k < inv->n_opts; k++)
            if (strcmp(inv->opt_names[k], o->name) == 0) {
                fprintf(stderr, "metronome: option --%s is given twice; give it once\n", o->name);
                return EXIT_BAD_INPUT;
            }
        if (inv->n_opts == MAX_OPTS) {
            fprintf(stderr, "metronome: too many options\n");
            return EXIT_BAD_INPUT;
        }
        inv->opt_names[inv->n_opts] = o ? o->name : "version";
        inv->opt_values[inv->n_opts++] = value;
    }
    return EXIT_OK;
}

static int setup_logging(const struct invocation *inv)
{
    const char *level = opt_get(inv, "log-level"), *format = opt_get(inv, "log-format");
    if (level && log_level_parse(level) < 0) {
        fprintf(stderr, "metronome: --log-level: want error, warn, info or debug, not '%s'\n",
                level);
        return EXIT_BAD_INPUT;
    }
    if (format && strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
        fprintf(stderr, "metronome: --log-format: want text or json, not '%s'\n", format);
        return EXIT_BAD_INPUT;
    }
    if (level)
        log_set_level(log_level_parse(level));
    else if (strcmp(inv->cmd->name, "run") != 0)
        log_set_level(MTR_LOG_WARN); /* a command's own output says what it did */
    if (format)
        log_set_format(strcmp(format, "json") == 0 ? LOG_JSON : LOG_TEXT);
    return EXIT_OK;
}

static int setup_globals(struct invocation *inv)
{
    const char *now = opt_get(inv, "now");
    if (setup_logging(inv) != EXIT_OK)
        return EXIT_BAD_INPUT;
    if (now) {
        mtr_time t;
        if (parse_iso8601(now, &t) != 0) {
            fprintf(stderr,
                    "metronome: --now: bad instant '%s' (write 2030-03-01T15:45:00Z, UTC, from "
                    "1970 to 9999)\n",
                    now);
            return EXIT_BAD_INPUT;
        }
        clock_init_fixed(&inv->clock, t);
    } else {
        clock_init_wall(&inv->clock);
    }
    inv->config_path = opt_get(inv, "config");
    if (!inv->config_path)
        inv->config_path = getenv("METRONOME_CONFIG");
    if (!inv->config_path || !*inv->config_path)
        inv->config_path = "metronome.yaml";
    return EXIT_OK;
}

/* ---- output that cannot drive a terminal ------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes buf with every control character but newline and tab escaped. */
static ssize_t escaping_write(void *cookie, const char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    int fd = (int)(intptr_t)cookie;
    char out[4096];
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
        if (n > sizeof out - 8) {
            if (write_all(fd, out, n) != 0)
                return -1;
            n = 0;
        }
    }
    return n && write_all(fd, out, n) != 0 ? -1 : (ssize_t)size;
}

static FILE *escaping_stream(int fd, int mode)
{
    cookie_io_functions_t io = {.write = escaping_write};
    FILE *f = fopencookie((void *)(intptr_t)fd, "w", io);
    if (f)
        setvbuf(f, NULL, mode, 0);
    return f;
}

/* stdout and stderr escape control characters from here on. */
static void escape_output(void)
{
    FILE *out = escaping_stream(1, isatty(1) ? _IOLBF : _IOFBF);
    FILE *err = escaping_stream(2, _IOLBF);
    if (out) {
        fflush(stdout);
        stdout = out;
    }
    if (err) {
        fflush(stderr);
        stderr = err;
    }
}

int cli_main(int argc, char **argv)
{
    escape_output();
    struct invocation inv;
    memset(&inv, 0, sizeof inv);
    int rc = parse_args(argc, argv, &inv);
    if (rc != EXIT_OK)
        return rc;
    if (opt_get(&inv, "version")) {
        printf("metronome %s (plugin ABI %d.%d)\n", METRONOME_VERSION, MTR_ABI_MAJOR,
               MTR_ABI_MINOR);
        return EXIT_OK;
    }
    if (!inv.cmd) {
        usage(opt_get(&inv, "help") ? stdout : stderr);
        return opt_get(&inv, "help") ? EXIT_OK : EXIT_BAD_INPUT;
    }
    if (opt_get(&inv, "help")) {
        command_help(inv.cmd);
        return EXIT_OK;
    }
    if (inv.n_args < inv.cmd->min_args)
        return bad_usage(&inv, "missing argument%s", "");
    if (inv.n_args > inv.cmd->max_args)
        return bad_usage(&inv, "unexpected argument '%s'", inv.args[inv.cmd->max_args]);
    if ((rc = setup_globals(&inv)) != EXIT_OK)
        return rc;
    return inv.cmd->run(&inv);
}
