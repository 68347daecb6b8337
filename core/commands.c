/* The ledger commands of SPEC section 6: run, status, webhook list|show|
 * verify|test|enable|disable, subscribe (single and bulk), unsubscribe,
 * connect, deliveries, replay and check. Each one opens an ops context, calls
 * one operation (ops.h) and prints what it returns; an error's kind becomes
 * the exit status (bad input, not found, conflict: 2; runtime: 1). `run`
 * hands over to the engine and, when the pipeline has an `admin` section, to
 * the admin API beside it. */
#include "commands.h"
#include "admin.h"
#include "csv.h"
#include "engine.h"
#include "log.h"
#include "ops.h"
#include "scalar.h"
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the face: kinds to exit statuses -------------------------------------------------------- */

static int exit_status(int kind)
{
    switch (kind) {
    case OP_OK:
        return EXIT_OK;
    case OP_BAD_INPUT:
    case OP_NOT_FOUND:
    case OP_CONFLICT:
    case OP_UNAUTHORIZED:
        return EXIT_BAD_INPUT;
    default:
        return EXIT_RUNTIME;
    }
}

static int report(const struct invocation *inv, const struct op_error *err)
{
    fprintf(stderr, "metronome %s: %s\n", inv->cmd->name, err->message);
    return exit_status(err->kind);
}

/* Opens the pipeline and an ops context on its ledger. */
static int open_ops(struct invocation *inv, struct ops *o, int mode)
{
    struct config *c;
    struct op_error err;
    int rc = load_config(inv, &c);
    if (rc != EXIT_OK) {
        memset(o, 0, sizeof *o);
        return rc;
    }
    if (ops_open(o, c, &inv->clock, mode, NULL, &err) != 0) {
        ops_close(o);
        config_free(c);
        memset(o, 0, sizeof *o);
        return report(inv, &err);
    }
    return EXIT_OK;
}

static void close_ops(struct ops *o)
{
    struct config *c = o->c;
    ops_close(o);
    config_free(c);
}

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "-";
}

static long long num(const json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

static void print_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text)
        printf("%s\n", text);
    free(text);
}

static int parse_instant(const struct invocation *inv, const char *opt, mtr_time *out)
{
    const char *v = opt_get(inv, opt);
    if (!v)
        return 1;
    if (parse_iso8601(v, out) != 0) {
        fprintf(stderr,
                "metronome %s: --%s: bad instant '%s' (write 2030-03-01T15:45:00Z, UTC, from 1970 "
                "to 9999)\n",
                inv->cmd->name, opt, v);
        return -1;
    }
    return 0;
}

/* ---- run --------------------------------------------------------------------------------------
 */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void print_summary(const struct engine_stats *st, mtr_time from, mtr_time to, int is_virtual)
{
    char a[32], b[32];
    format_iso8601(from, a, sizeof a);
    format_iso8601(to, b, sizeof b);
    printf("ran %s .. %s (%s clock)\n", a, b, is_virtual ? "virtual" : "wall");
    printf("ticks %llu, jobs %llu (missed %llu), fetch retries %llu, delivered with a fetch "
           "error %llu\n",
           (unsigned long long)st->ticks, (unsigned long long)st->jobs,
           (unsigned long long)st->jobs_missed, (unsigned long long)st->fetch_retries,
           (unsigned long long)st->fetch_errors_delivered);
    char earlier[64] = "";
    if (st->earlier_settled) /* outcomes of deliveries a previous run made */
        snprintf(earlier, sizeof earlier, " (+%llu made before this run)",
                 (unsigned long long)st->earlier_settled);
    printf("deliveries %llu%s: delivered %llu, failed %llu; attempts %llu, retries %llu; "
           "webhooks disabled %llu\n",
           (unsigned long long)st->deliveries, earlier, (unsigned long long)st->delivered,
           (unsigned long long)st->failed, (unsigned long long)st->attempts,
           (unsigned long long)st->retries, (unsigned long long)st->disabled);
    if (st->tick_to_last_record_s > 0)
        printf("from the first tick to the last attempt recorded: %.2f s\n",
               st->tick_to_last_record_s);
}

static int run_clock(struct invocation *inv, mtr_time *until, int *is_virtual)
{
    const char *mode = opt_get(inv, "clock");
    mtr_time start = 0;
    *until = 0;
    *is_virtual = mode && strcmp(mode, "virtual") == 0;
    if (mode && !*is_virtual && strcmp(mode, "wall") != 0)
        return bad_usage(inv, "--clock: want wall or virtual, not '%s'", mode);
    int rs = parse_instant(inv, "start", &start), ru = parse_instant(inv, "until", until);
    if (rs < 0 || ru < 0)
        return EXIT_BAD_INPUT;
    if (*is_virtual) {
        if (rs > 0)
            start = clock_now(&inv->clock); /* --now */
        if (ru > 0 || *until <= start)
            return bad_usage(inv, "%s", "a virtual clock needs --start and a later --until");
        clock_init_virtual(&inv->clock, start);
    } else if (rs == 0) {
        return bad_usage(inv, "%s", "--start goes with --clock virtual");
    }
    return EXIT_OK;
}

static void on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Says what the daemon starts with: its pipeline, plugins, store and API. */
static void log_start(const struct config *c, const struct admin *a)
{
    char parts[768];
    size_t used = (size_t)snprintf(parts, sizeof parts, "store %s", c->store_plugin);
    const struct named_instance *lists[2] = {c->sources, c->sinks};
    size_t counts[2] = {c->n_sources, c->n_sinks};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < counts[k] && used < sizeof parts; i++)
            used += (size_t)snprintf(parts + used, sizeof parts - used, "%s%s (%s)",
                                     i   ? ", "
                                     : k ? "; sinks "
                                         : "; sources ",
                                     lists[k][i].name, lists[k][i].inst->ctx.pf->desc.name);
    log_msg(MTR_LOG_INFO, NULL, "metronome %s starting: pipeline %s; %zu webhook(s) in it; %s",
            METRONOME_VERSION, c->path, c->n_webhooks, parts);
    if (a)
        log_msg(MTR_LOG_INFO, "admin", "API listening on %s://%s",
                c->admin.tls_cert ? "https" : "http", admin_address(a));
    else
        log_msg(MTR_LOG_INFO, "admin", "no admin API (the pipeline has no 'admin' section)");
}

/* When a run delivered nothing, says why, webhook by webhook: not verified,
 * disabled, nobody subscribed, its ticks recorded by an earlier run, or no
 * tick due before the run ended. */
static void explain_idle(struct invocation *inv, struct config *c, mtr_time from, mtr_time to)
{
    struct ops o;
    struct op_error err;
    json_t *out = NULL, *w;
    size_t i;
    if (ops_open(&o, c, &inv->clock, OPS_READ, NULL, &err) != 0 ||
        ops_webhook_list(&o, &(struct page){.limit = 1000}, &out, &err) != 0) {
        ops_close(&o);
        return;
    }
    printf("nothing was delivered:%s\n",
           json_array_size(json_object_get(out, "data")) ? "" : " no webhooks");
    json_array_foreach(json_object_get(out, "data"), i, w)
    {
        const char *name = str(w, "name"), *state = str(w, "state");
        mtr_time last = 0, next = 0;
        parse_iso8601(str(w, "lastTick"), &last);
        parse_iso8601(str(w, "nextTick"), &next);
        if (strcmp(state, "unverified") == 0)
            printf("  %s is not verified (metronome webhook verify %s)\n", name, name);
        else if (strcmp(state, "disabled") == 0)
            printf("  %s is disabled (%s); metronome webhook enable %s\n", name,
                   str(w, "disabledReason"), name);
        else if (num(w, "vehicles") == 0)
            printf("  %s has no subscribed vehicles (metronome subscribe %s VEHICLE)\n", name,
                   name);
        else if (last >= from)
            printf("  %s: ticks up to %s were recorded already, by an earlier run\n", name,
                   str(w, "lastTick"));
        else
            printf("  %s: no tick was due from the run's start to its end (%s)\n", name,
                   next > to ? "the next is later" : "none");
    }
    json_decref(out);
    ops_close(&o);
}

int cmd_run(struct invocation *inv)
{
    mtr_time until;
    int is_virtual;
    int rc = run_clock(inv, &until, &is_virtual);
    if (rc != EXIT_OK)
        return rc;
    struct config *c;
    if ((rc = load_config(inv, &c)) != EXIT_OK)
        return rc;
    struct vault key; /* a malformed key is bad input, found before anything runs */
    struct diag d;
    if (vault_load(&key, c, &d) != 0 || vault_check_sources(&key, c, &d) != 0) {
        fprintf(stderr, "metronome run: %s\n", d.text);
        config_free(c);
        return EXIT_BAD_INPUT;
    }
    vault_wipe(&key);
    on_signals();
    mtr_time from = clock_now(&inv->clock);
    struct engine *e = engine_create(c, &inv->clock, &d);
    struct admin *a = NULL;
    if (e && c->admin.enabled && !(a = admin_start(c, &inv->clock, e, &d))) {
        fprintf(stderr, "metronome run: admin API: %s\n", d.text);
        engine_destroy(e);
        config_free(c);
        return EXIT_RUNTIME;
    }
    if (!e) {
        fprintf(stderr, "metronome run: %s\n", d.text);
        config_free(c);
        return EXIT_RUNTIME;
    }
    log_start(c, a);
    struct engine_options o = {.until = until, .stop = &stop_requested};
    if (engine_run(e, &o, &d) != 0) {
        fprintf(stderr, "metronome run: %s\n", d.text);
        rc = EXIT_RUNTIME;
    }
    admin_stop(a);
    struct engine_stats st = *engine_stats(e);
    engine_destroy(e);
    log_msg(MTR_LOG_INFO, NULL, "stopped: %llu tick(s), %llu delivered, %llu failed",
            (unsigned long long)st.ticks, (unsigned long long)st.delivered,
            (unsigned long long)st.failed);
    print_summary(&st, from, clock_now(&inv->clock), is_virtual);
    if (rc == EXIT_OK && st.deliveries == 0 && st.delivered == 0)
        explain_idle(inv, c, from, clock_now(&inv->clock));
    config_free(c);
    return rc;
}

/* ---- webhook ----------------------------------------------------------------------------------
 */

static void print_webhooks(const json_t *list)
{
    size_t i;
    json_t *w;
    printf("%-20s %-36s %-28s %-9s %8s  %s\n", "NAME", "ID", "STATE", "CADENCE", "VEHICLES",
           "CALLBACK");
    json_array_foreach(list, i, w)
    {
        char state[64];
        const char *why = json_string_value(json_object_get(w, "disabledReason"));
        snprintf(state, sizeof state, "%s%s%s%s", str(w, "state"), why ? " (" : "", why ? why : "",
                 why ? ")" : "");
        printf("%-20s %-36s %-28s %-9s %8lld  %s\n", str(w, "name"), str(w, "id"), state,
               str(json_object_get(w, "cadence"), "policy"), num(w, "vehicles"),
               str(w, "callbackUri"));
    }
}

static void print_send(const json_t *out, int verify)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(out, "sinks"), i, s)
    {
        int ok = json_is_true(json_object_get(s, "ok"));
        if (verify)
            printf("%s: %s\n", str(s, "sink"), ok ? "answered the challenge" : str(s, "error"));
        else
            printf("%s: %s (delivery %s%s%s)\n", str(s, "sink"), ok ? "delivered" : "failed",
                   str(s, "deliveryId"), ok ? "" : ": ", ok ? "" : str(s, "error"));
    }
}

static int webhook_sub(struct invocation *inv, struct ops *o, size_t k)
{
    const char *name = k ? inv->args[1] : NULL;
    struct op_error err;
    json_t *out = NULL;
    int rc = 0;
    switch (k) {
    case 0:
        rc = ops_webhook_list(o, &(struct page){.limit = 1000000}, &out, &err);
        if (rc == 0 && opt_get(inv, "json"))
            print_json(json_object_get(out, "data"));
        else if (rc == 0)
            print_webhooks(json_object_get(out, "data"));
        break;
    case 1:
        if ((rc = ops_webhook_get(o, name, &out, &err)) == 0)
            print_json(out);
        break;
    case 2:
        rc = ops_webhook_verify(o, name, &out, &err);
        if (rc == 0)
            printf("webhook %s verified: %s answered the challenge; it is active\n", name,
                   o->ws.v[webhooks_find(&o->ws, name)].cfg->callback_uri);
        break;
    case 3:
        rc = ops_webhook_test(o, name, &out, &err);
        if (out)
            print_send(out, 0);
        break;
    case 4:
    case 5:
        rc = ops_webhook_enable(o, name, k == 4, &out, &err);
        if (rc == 0 && k == 4)
            printf("webhook %s enabled; metronome replay --webhook %s sends its failed "
                   "deliveries again\n",
                   name, name);
        else if (rc == 0)
            printf("webhook %s disabled; its pending deliveries are recorded as failed\n", name);
        break;
    }
    json_decref(out);
    return rc == 0 ? EXIT_OK : report(inv, &err);
}

int cmd_webhook(struct invocation *inv)
{
    static const char *const subs[] = {"list", "show", "verify", "test", "enable", "disable"};
    const char *sub = inv->args[0];
    size_t k;
    for (k = 0; k < 6 && strcmp(sub, subs[k]) != 0; k++)
        ;
    if (k == 6)
        return bad_usage(inv, "unknown subcommand '%s' (list, show, verify, test, enable, disable)",
                         sub);
    if ((k == 0) != (inv->n_args == 1))
        return bad_usage(inv, k == 0 ? "'list' takes no name%s" : "'%s' needs a webhook name",
                         k == 0 ? "" : sub);
    struct ops o;
    int rc = open_ops(inv, &o, k <= 1 ? OPS_READ : OPS_WRITE);
    if (rc != EXIT_OK)
        return rc;
    rc = webhook_sub(inv, &o, k);
    close_ops(&o);
    return rc;
}

/* ---- subscribe / unsubscribe --------------------------------------------------------------------
 */

static void progress(size_t done, size_t total)
{
    int width = 40, filled = total ? (int)((double)done / (double)total * width) : width;
    fflush(stderr); /* the bar's \r goes to the terminal itself, past the escaping stream */
    dprintf(2, "\r[%.*s%*s] %zu/%zu lines%s", filled, "########################################",
            width - filled, "", done, total, done == total ? "\n" : "");
}

static size_t count_lines(FILE *f)
{
    size_t n = 0;
    int ch, last = '\n';
    while ((ch = fgetc(f)) != EOF) {
        n += ch == '\n';
        last = ch;
    }
    rewind(f);
    return n + (last != '\n');
}

static int open_regular(const char *path, FILE **f, char *err, size_t errlen)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) { /* a FIFO, device or directory never ends or never reads */
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return -1;
    }
    if (!(*f = fdopen(fd, "r"))) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return 0;
}

/* A chunk of the CSV file: its lines' fields, subscribed in one transaction. */
#define CHUNK 10000

struct chunk {
    struct sub_request req[CHUNK];
    char *text[CHUNK]; /* each line's copy, which req's strings point into */
    size_t line[CHUNK];
    size_t n;
};

static void chunk_clear(struct chunk *ch)
{
    for (size_t i = 0; i < ch->n; i++)
        free(ch->text[i]);
    ch->n = 0;
}

struct csv_totals {
    size_t created, existing, bad;
    int tty;
};

/* Subscribes a chunk; bad lines are printed with their number. */
static int flush_chunk(struct invocation *inv, struct ops *o, const char *path, struct chunk *ch,
                       struct csv_totals *t)
{
    struct op_error err;
    json_t *out = NULL, *r;
    size_t i;
    if (ch->n && ops_subscribe(o, inv->args[0], ch->req, ch->n, &out, &err) != 0) {
        chunk_clear(ch);
        return report(inv, &err);
    }
    json_array_foreach(json_object_get(out, "results"), i, r)
    {
        const char *result = str(r, "result");
        t->created += strcmp(result, "subscribed") == 0;
        t->existing += strcmp(result, "existing") == 0;
        if (strcmp(result, "error") == 0) {
            fprintf(stderr, "%s%s:%zu: %s\n", t->tty ? "\n" : "", path, ch->line[i],
                    str(r, "error"));
            t->bad++;
        }
    }
    json_decref(out);
    chunk_clear(ch);
    return EXIT_OK;
}

/* Reads one CSV line into the chunk, or reports it; 1 when the line was bad. */
static int add_line(struct chunk *ch, char *text, size_t lineno, const struct invocation *inv,
                    const char *path, int tty)
{
    char *fields[3] = {NULL, NULL, NULL};
    int nf = csv_split(text, fields);
    const char *why = nf == -1   ? "more than 3 fields (vehicle_id[,access_token[,refresh_token]])"
                      : nf == -2 ? "a quoted field is not closed, or text follows its quote"
                                 : NULL;
    (void)inv;
    if (why) {
        fprintf(stderr, "%s%s:%zu: %s\n", tty ? "\n" : "", path, lineno, why);
        return 1;
    }
    const char *src = opt_get(inv, "source");
    ch->req[ch->n] = (struct sub_request){.vehicle_id = fields[0],
                                          .source = src,
                                          .access_token = nf > 1 && *fields[1] ? fields[1] : NULL,
                                          .refresh_token = nf > 2 && *fields[2] ? fields[2] : NULL};
    ch->line[ch->n] = lineno;
    ch->n++;
    return 0;
}

static int subscribe_file(struct invocation *inv, struct ops *o, const char *path)
{
    FILE *f;
    char oerr[128];
    if (open_regular(path, &f, oerr, sizeof oerr) != 0) {
        fprintf(stderr, "metronome subscribe: %s: %s\n", path, oerr);
        return EXIT_BAD_INPUT;
    }
    struct csv_totals t = {.tty = isatty(2)};
    size_t total = t.tty ? count_lines(f) : 0, lineno = 0, got;
    char *line = malloc(CSV_LINE_MAX);
    struct chunk *ch = calloc(1, sizeof *ch);
    int rc = line && ch ? EXIT_OK : EXIT_RUNTIME, too_long, nul;
    while (rc == EXIT_OK && csv_read_line(f, line, CSV_LINE_MAX, &got, &too_long, &nul) == 0) {
        char *text = line;
        lineno++;
        if (lineno == 1 && strncmp(text, "\xef\xbb\xbf", 3) == 0)
            text += 3; /* a UTF-8 byte order mark */
        const char *first = text + strspn(text, " \t");
        if (!too_long && !nul && (*first == '\0' || *first == '#'))
            continue; /* a blank line or a comment, commas and all */
        if (too_long || nul) {
            fprintf(stderr, "%s%s:%zu: %s\n", t.tty ? "\n" : "", path, lineno,
                    too_long ? "line longer than 16384 bytes" : "a NUL byte in the line");
            t.bad++;
            continue;
        }
        if (!(ch->text[ch->n] = strdup(text))) {
            rc = EXIT_RUNTIME;
            break;
        }
        if (add_line(ch, ch->text[ch->n], lineno, inv, path, t.tty)) {
            free(ch->text[ch->n]);
            t.bad++;
        }
        if (ch->n == CHUNK) {
            rc = flush_chunk(inv, o, path, ch, &t);
            if (t.tty && rc == EXIT_OK)
                progress(lineno, total);
        }
    }
    if (rc == EXIT_OK)
        rc = flush_chunk(inv, o, path, ch, &t);
    if (t.tty && rc == EXIT_OK)
        progress(total, total);
    if (ch)
        chunk_clear(ch);
    free(ch);
    free(line);
    fclose(f);
    if (rc == EXIT_OK) {
        printf("%s: %zu subscribed, %zu already subscribed, %zu bad line(s)\n", inv->args[0],
               t.created, t.existing, t.bad);
        if (t.bad)
            rc = EXIT_BAD_INPUT;
    }
    return rc;
}

static int print_connected(const struct invocation *inv, int rc, const json_t *out,
                           const struct op_error *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(out, "vehicles"), i, v)
    {
        if (strcmp(str(v, "result"), "error") == 0)
            fprintf(stderr, "metronome: vehicle %s: %s\n", str(v, "vehicleId"), str(v, "error"));
        else
            printf("  %s%s\n", str(v, "vehicleId"),
                   strcmp(str(v, "result"), "existing") == 0 ? " (already subscribed)" : "");
    }
    if (out) {
        int subscribing = json_object_get(out, "subscribed") != NULL;
        printf("%lld vehicle(s) %s, %lld already subscribed, %lld failed\n",
               num(out, subscribing ? "subscribed" : "connected"),
               subscribing ? "subscribed" : "connected", num(out, "existing"), num(out, "failed"));
    }
    return rc == 0 ? EXIT_OK : report(inv, err);
}

static int subscribe_one_vehicle(struct invocation *inv, struct ops *o)
{
    struct sub_request req = {.vehicle_id = inv->args[1],
                              .source = opt_get(inv, "source"),
                              .access_token = opt_get(inv, "access-token"),
                              .refresh_token = opt_get(inv, "refresh-token")};
    struct op_error err;
    json_t *out = NULL;
    if (ops_subscribe_one(o, inv->args[0], &req, &out, &err) != 0)
        return report(inv, &err);
    printf("subscribed %s to %s at %s; first tick %s\n", inv->args[1], str(out, "webhook"),
           str(out, "subscribedAt"),
           json_is_null(json_object_get(out, "firstTick")) ? "none" : str(out, "firstTick"));
    json_decref(out);
    return EXIT_OK;
}

int cmd_subscribe(struct invocation *inv)
{
    const char *file = opt_get(inv, "file");
    int all = opt_get(inv, "all") != NULL;
    if ((file != NULL) + all + (inv->n_args == 2) != 1)
        return bad_usage(inv, "%s", "give a VEHICLE, --file vehicles.csv, or --all with tokens");
    const char *access = opt_get(inv, "access-token"), *refresh = opt_get(inv, "refresh-token");
    if (all && (!access || !refresh))
        return bad_usage(inv, "%s", "--all needs --access-token and --refresh-token");
    struct ops o;
    int rc = open_ops(inv, &o, OPS_WRITE);
    if (rc != EXIT_OK)
        return rc;
    if (all) {
        struct op_error err;
        json_t *out = NULL;
        int r = ops_connect_token(&o, inv->args[0], opt_get(inv, "source"), access, refresh, 0,
                                  &out, &err);
        rc = print_connected(inv, r, out, &err);
        json_decref(out);
    } else if (file) {
        struct op_error err;
        if (ops_subscribe_check(&o, inv->args[0], opt_get(inv, "source"), &err) != 0)
            rc = report(inv, &err); /* before the file is read */
        else
            rc = subscribe_file(inv, &o, file);
    } else {
        rc = subscribe_one_vehicle(inv, &o);
    }
    close_ops(&o);
    return rc;
}

int cmd_unsubscribe(struct invocation *inv)
{
    struct ops o;
    struct op_error err;
    json_t *out = NULL;
    int rc = open_ops(inv, &o, OPS_WRITE);
    if (rc != EXIT_OK)
        return rc;
    if (ops_unsubscribe(&o, inv->args[0], inv->args[1], &out, &err) != 0)
        rc = report(inv, &err);
    else
        printf("unsubscribed %s from %s\n", inv->args[1], str(out, "webhook"));
    json_decref(out);
    close_ops(&o);
    return rc;
}

int cmd_connect(struct invocation *inv)
{
    const char *code = opt_get(inv, "code"), *redirect = opt_get(inv, "redirect-uri");
    if (!code || !redirect)
        return bad_usage(inv, "%s", "--code and --redirect-uri are required");
    struct ops o;
    struct op_error err;
    json_t *out = NULL;
    int rc = open_ops(inv, &o, OPS_WRITE);
    if (rc != EXIT_OK)
        return rc;
    int r = ops_connect_code(&o, inv->n_args ? inv->args[0] : NULL, opt_get(inv, "source"), code,
                             redirect, &out, &err);
    rc = print_connected(inv, r, out, &err);
    json_decref(out);
    close_ops(&o);
    return rc;
}

/* ---- deliveries and replay
 * ------------------------------------------------------------------------ */

static void print_delivery(const json_t *d)
{
    char last[160];
    const char *err = json_string_value(json_object_get(d, "lastError"));
    long long status = num(d, "lastStatus");
    if (num(d, "attemptCount") == 0)
        snprintf(last, sizeof last, "-");
    else if (err && status)
        snprintf(last, sizeof last, "%lld %.120s", status, err);
    else if (err)
        snprintf(last, sizeof last, "%.120s", err);
    else if (status)
        snprintf(last, sizeof last, "%lld", status);
    else
        snprintf(last, sizeof last, "ok");
    int pending = strcmp(str(d, "state"), "pending") == 0;
    printf("%-36s %-16s %-10s %-20s %-9s %3lld  %s%s%s\n", str(d, "id"), str(d, "webhook"),
           str(d, "sink"), str(d, "tick"), str(d, "state"), num(d, "attemptCount"), last,
           pending ? "  next " : "", pending ? str(d, "nextAttemptAt") : "");
}

static void print_totals(const json_t *t)
{
    const json_t *j = json_object_get(t, "jobs"), *d = json_object_get(t, "deliveries");
    printf("jobs: due %lld, sent %lld, missed %lld; deliveries: pending %lld, delivered %lld, "
           "failed %lld; attempts %lld (retries %lld)\n",
           num(j, "due"), num(j, "sent"), num(j, "missed"), num(d, "pending"), num(d, "delivered"),
           num(d, "failed"), num(t, "attempts"), num(t, "retries"));
}

int cmd_deliveries(struct invocation *inv)
{
    const char *name = opt_get(inv, "webhook"), *state_s = opt_get(inv, "state");
    const char *limit_s = opt_get(inv, "limit");
    struct delivery_filter f = {.webhook = name,
                                .state = state_s ? delivery_state_parse(state_s) : -1,
                                .with_attempts = opt_get(inv, "json") != NULL};
    int64_t limit = 1000;
    if (state_s && f.state < 0)
        return bad_usage(inv, "--state: want pending, delivered or failed, not '%s'", state_s);
    if (limit_s && (parse_int64(limit_s, &limit) != 0 || limit < 1))
        return bad_usage(inv, "--limit: want a positive number, not '%s'", limit_s);
    struct ops o;
    struct op_error err;
    json_t *out = NULL, *totals = NULL, *d;
    int rc = open_ops(inv, &o, OPS_READ);
    if (rc != EXIT_OK)
        return rc;
    if (ops_deliveries_list(&o, &f, &(struct page){.limit = (size_t)limit}, &out, &err) != 0) {
        rc = report(inv, &err);
    } else if (f.with_attempts) {
        print_json(json_object_get(out, "data"));
    } else {
        size_t i;
        printf("%-36s %-16s %-10s %-20s %-9s %3s  %s\n", "DELIVERY", "WEBHOOK", "SINK", "TICK",
               "STATE", "ATT", "LAST OUTCOME");
        json_array_foreach(json_object_get(out, "data"), i, d) print_delivery(d);
        if (ops_ledger_totals(&o, name, &totals, &err) == 0)
            print_totals(totals);
    }
    json_decref(out);
    json_decref(totals);
    close_ops(&o);
    return rc;
}

int cmd_replay(struct invocation *inv)
{
    const char *id = opt_get(inv, "delivery"), *name = opt_get(inv, "webhook");
    const char *state_s = opt_get(inv, "state");
    int from = state_s ? delivery_state_parse(state_s) : MTR_DELIVERY_FAILED;
    if ((id != NULL) == (name != NULL))
        return bad_usage(inv, "%s", "give either --delivery ID or --webhook NAME");
    if (from != MTR_DELIVERY_FAILED && from != MTR_DELIVERY_DELIVERED)
        return bad_usage(inv, "--state: want failed or delivered, not '%s'", state_s);
    struct ops o;
    struct op_error err;
    json_t *out = NULL;
    int rc = open_ops(inv, &o, OPS_WRITE);
    if (rc != EXIT_OK)
        return rc;
    if (ops_replay(&o, id, name, from, &out, &err) != 0) {
        rc = report(inv, &err);
    } else {
        long long n = num(out, "replayed");
        printf("%lld deliver%s queued again with the same id and bytes; a running metronome sends "
               "%s now, or the next metronome run\n",
               n, n == 1 ? "y" : "ies", n == 1 ? "it" : "them");
    }
    json_decref(out);
    close_ops(&o);
    return rc;
}

/* ---- status: the running daemon, through its API ----------------------------------------------
 */

static void print_status(const json_t *s)
{
    size_t i;
    json_t *x;
    const json_t *c = json_object_get(s, "counters");
    printf("metronome %s, up %llds (since %s), %s%s\n", str(s, "version"), num(s, "uptimeSeconds"),
           str(s, "startedAt"), json_is_true(json_object_get(s, "ready")) ? "ready" : "not ready",
           json_is_true(json_object_get(s, "stopping")) ? ", stopping" : "");
    printf("clock %s%s; in flight %lld, outcomes queued %lld\n",
           str(json_object_get(s, "clock"), "now"),
           json_is_true(json_object_get(json_object_get(s, "clock"), "virtual")) ? " (virtual)"
                                                                                 : "",
           num(s, "inFlight"), num(s, "queuedOutcomes"));
    printf("this run: ticks %lld, jobs %lld, delivered %lld, failed %lld, attempts %lld, retries "
           "%lld, deferred %lld, webhooks disabled %lld\n",
           num(c, "ticks"), num(c, "jobs"), num(c, "delivered"), num(c, "failed"),
           num(c, "attempts"), num(c, "retries"), num(c, "deferred"), num(c, "webhooksDisabled"));
    json_array_foreach(json_object_get(s, "nodes"), i, x)
        printf("node %s (host %s), last heartbeat %s, %lld lease(s) held\n", str(x, "id"),
               str(x, "host"), str(x, "lastHeartbeat"), num(x, "leasesHeld"));
    printf("next ticks:\n");
    json_array_foreach(json_object_get(s, "nextTicks"), i, x)
        printf("  %-20s %s (%s)\n", str(x, "webhook"), str(x, "tick"), str(x, "state"));
    json_t *waits = json_object_get(s, "waits");
    if (json_array_size(waits))
        printf("receivers waited for:\n");
    json_array_foreach(waits, i, x)
    {
        long long status = num(x, "lastStatus");
        printf("  %-40s %lld deferred, %s; %s", str(x, "origin"), num(x, "deferred"),
               num(x, "waitSeconds") ? "waiting" : "not waiting now",
               status ? "it asked to wait with Retry-After, last with HTTP"
                      : "by the sink's limits");
        printf(status ? " %lld\n" : "\n", status);
        if (num(x, "waitSeconds"))
            printf("  %-40s until %s (%llds)\n", "", str(x, "until"), num(x, "waitSeconds"));
    }
    json_t *errors = json_object_get(s, "lastErrors");
    printf("last errors:%s\n", json_array_size(errors) ? "" : " none");
    json_array_foreach(errors, i, x)
        printf("  %s %s: %s\n", str(x, "at"), str(x, "origin"), str(x, "message"));
}

int cmd_status(struct invocation *inv)
{
    struct config *c;
    int rc = load_config(inv, &c);
    if (rc != EXIT_OK)
        return rc;
    json_t *status = NULL;
    char err[512];
    if (!c->admin.enabled) {
        fprintf(stderr,
                "metronome status: %s has no 'admin' section, so a running metronome has no API "
                "to ask\n",
                inv->config_path);
        rc = EXIT_BAD_INPUT;
    } else if (admin_fetch_status(c, &status, err, sizeof err) != 0) {
        fprintf(stderr, "metronome status: %s\n", err);
        rc = EXIT_RUNTIME;
    } else if (opt_get(inv, "json")) {
        print_json(status);
    } else {
        print_status(status);
    }
    json_decref(status);
    config_free(c);
    return rc;
}

/* ---- check -------------------------------------------------------------------------------------
 */

static int print_problem(void *arg, const char *problem)
{
    (void)arg;
    fprintf(stderr, "  %s\n", problem);
    return 0;
}

int cmd_check(struct invocation *inv)
{
    struct config *c;
    struct ledger L;
    struct diag d;
    uint64_t problems = 0;
    int rc = load_config(inv, &c); /* no webhook is read: the check must reach damaged files */
    if (rc != EXIT_OK)
        return rc;
    if (ledger_open_read_only(&L, c, &d) != 0) {
        fprintf(stderr, "metronome check: %s\n", d.text);
        rc = EXIT_RUNTIME;
    } else if (ledger_check(&L, print_problem, NULL, &problems, &d) != 0) {
        fprintf(stderr, "metronome check: %s\n", d.text);
        rc = EXIT_RUNTIME;
    } else if (problems) {
        fprintf(stderr,
                "metronome check: the ledger is damaged: %llu problem(s) above; restore it from "
                "a backup\n",
                (unsigned long long)problems);
        rc = EXIT_RUNTIME;
    } else {
        printf("ok: the ledger passed the store's integrity check\n");
    }
    config_free(c);
    return rc;
}
