/* The ledger commands of SPEC section 6: run, webhook list|verify|test|enable|
 * disable, subscribe (single and bulk), unsubscribe, deliveries and replay.
 * Each loads the pipeline, opens the store, synchronises the pipeline's
 * webhooks into it and does one thing; `run` hands over to the engine. */
#include "commands.h"
#include "csv.h"
#include "engine.h"
#include "jsonw.h"
#include "ledger.h"
#include "log.h"
#include "scalar.h"
#include "scheduler.h"
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Everything a ledger command needs, opened in order and closed in reverse. */
struct session {
    struct config *c;
    struct ledger L;
    struct webhook_rec *recs; /* one per pipeline webhook */
};

/* Opens the pipeline and its ledger. A command that only reads opens the
 * ledger read-only and looks the pipeline's webhooks up instead of writing
 * them (a webhook never synchronised has an empty id). */
static int session_open_mode(struct invocation *inv, struct session *s, int read_only)
{
    struct diag d;
    memset(s, 0, sizeof *s);
    int rc = load_config(inv, &s->c);
    if (rc != EXIT_OK)
        return rc;
    s->recs = calloc(s->c->n_webhooks ? s->c->n_webhooks : 1, sizeof *s->recs);
    int ok = s->recs != NULL;
    if (ok && read_only) {
        ok = ledger_open_read_only(&s->L, s->c, &d) == 0;
        for (size_t i = 0; ok && i < s->c->n_webhooks; i++) {
            int found;
            if (ledger_get_webhook(&s->L, s->c->webhooks[i].name, &s->recs[i], &found) != 0)
                ok = diag_set(&d, "store: %s", ledger_error(&s->L)) == 0;
        }
    } else if (ok) {
        ok = ledger_open(&s->L, s->c, &d) == 0 &&
             ledger_sync_webhooks(&s->L, s->c, clock_now(&inv->clock), s->recs, &d) == 0;
    }
    if (!ok) {
        fprintf(stderr, "metronome %s: %s\n", inv->cmd->name, s->recs ? d.text : "out of memory");
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static int session_open(struct invocation *inv, struct session *s)
{
    return session_open_mode(inv, s, 0);
}

static void session_close(struct session *s)
{
    free(s->recs);
    config_free(s->c);
}

static int store_error(const struct invocation *inv, const struct session *s)
{
    fprintf(stderr, "metronome %s: store: %s\n", inv->cmd->name, ledger_error(&s->L));
    return EXIT_RUNTIME;
}

/* The pipeline webhook named by the command's argument i, or NULL (printed). */
static const struct webhook_cfg *webhook_arg(const struct invocation *inv, const struct session *s,
                                             size_t i, size_t *index)
{
    const char *name = inv->args[i];
    for (size_t k = 0; k < s->c->n_webhooks; k++)
        if (strcmp(s->c->webhooks[k].name, name) == 0) {
            if (index)
                *index = k;
            return &s->c->webhooks[k];
        }
    fprintf(stderr, "metronome %s: unknown webhook '%s' (not in %s)\n", inv->cmd->name, name,
            inv->config_path);
    return NULL;
}

/* The id of the pipeline webhook named by an option (--webhook NAME). */
static int webhook_option(const struct invocation *inv, const struct session *s, const char *name,
                          const char **id)
{
    const struct webhook_cfg *w = config_webhook(s->c, name);
    if (!w) {
        fprintf(stderr, "metronome %s: unknown webhook '%s'\n", inv->cmd->name, name);
        return EXIT_BAD_INPUT;
    }
    *id = s->recs[w - s->c->webhooks].id;
    return EXIT_OK;
}

static void iso(mtr_time t, char *buf, size_t len)
{
    if (t <= 0)
        snprintf(buf, len, "-");
    else
        format_iso8601(t, buf, len);
}

/* ---- run -------------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
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

int cmd_run(struct invocation *inv)
{
    const char *mode = opt_get(inv, "clock");
    mtr_time start = 0, until = 0;
    int is_virtual = mode && strcmp(mode, "virtual") == 0;
    if (mode && !is_virtual && strcmp(mode, "wall") != 0)
        return bad_usage(inv, "--clock: want wall or virtual, not '%s'", mode);
    int rs = parse_instant(inv, "start", &start), ru = parse_instant(inv, "until", &until);
    if (rs < 0 || ru < 0)
        return EXIT_BAD_INPUT;
    if (is_virtual) {
        if (rs > 0)
            start = clock_now(&inv->clock); /* --now */
        if (ru > 0 || until <= start)
            return bad_usage(inv, "%s", "a virtual clock needs --start and a later --until");
        clock_init_virtual(&inv->clock, start);
    } else if (rs == 0) {
        return bad_usage(inv, "%s", "--start goes with --clock virtual");
    }
    struct config *c;
    int rc = load_config(inv, &c);
    if (rc != EXIT_OK)
        return rc;
    struct vault key; /* a malformed key is bad input, found before anything runs */
    struct diag kd;
    if (vault_load(&key, c, &kd) != 0 || vault_check_sources(&key, c, &kd) != 0) {
        fprintf(stderr, "metronome run: %s\n", kd.text);
        config_free(c);
        return EXIT_BAD_INPUT;
    }
    vault_wipe(&key);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct engine_options o = {.until = until, .stop = &stop_requested};
    struct engine_stats st;
    struct diag d;
    mtr_time from = clock_now(&inv->clock);
    if (engine_run(c, &inv->clock, &o, &st, &d) != 0) {
        fprintf(stderr, "metronome run: %s\n", d.text);
        rc = EXIT_RUNTIME;
    }
    print_summary(&st, from, clock_now(&inv->clock), is_virtual);
    config_free(c);
    return rc;
}

/* ---- webhook ---------------------------------------------------------------------------- */

struct listing {
    struct session *s;
    int json;
    struct jsonw w;
    int n;
};

static int list_one(void *arg, const struct mtr_webhook_row *row)
{
    struct listing *l = arg;
    struct mtr_store_stats st;
    const struct webhook_cfg *w = config_webhook(l->s->c, row->name);
    if (l->s->L.ops->stats(l->s->L.st, row->id, &st) != MTR_OK)
        memset(&st, 0, sizeof st);
    char since[32];
    iso(row->state_at, since, sizeof since);
    if (l->json) {
        jsonw_lit(&l->w, l->n++ ? ",{\"name\":" : "{\"name\":");
        jsonw_str(&l->w, row->name);
        jsonw_lit(&l->w, ",\"id\":");
        jsonw_str(&l->w, row->id);
        jsonw_lit(&l->w, ",\"state\":");
        jsonw_str(&l->w, webhook_state_name(row->state));
        jsonw_lit(&l->w, ",\"reason\":");
        if (row->reason)
            jsonw_str(&l->w, row->reason);
        else
            jsonw_lit(&l->w, "null");
        jsonw_lit(&l->w, ",\"since\":");
        jsonw_str(&l->w, since);
        jsonw_lit(&l->w, ",\"callbackUri\":");
        jsonw_str(&l->w, row->callback_uri);
        jsonw_lit(&l->w, ",\"cadence\":");
        jsonw_str(&l->w, w ? w->cadence_policy : "?");
        jsonw_lit(&l->w, ",\"subscriptions\":");
        jsonw_int(&l->w, (int64_t)st.subscriptions);
        jsonw_lit(&l->w, "}");
        return 0;
    }
    char state[64];
    snprintf(state, sizeof state, "%s%s%s%s", webhook_state_name(row->state),
             row->reason ? " (" : "", row->reason ? row->reason : "", row->reason ? ")" : "");
    printf("%-20s %-36s %-28s %-9s %8llu  %s\n", row->name, row->id, state,
           w ? w->cadence_policy : "?", (unsigned long long)st.subscriptions, row->callback_uri);
    return 0;
}

static int webhook_list(struct invocation *inv, struct session *s)
{
    struct listing l = {.s = s, .json = opt_get(inv, "json") != NULL};
    jsonw_init(&l.w);
    if (l.json)
        jsonw_lit(&l.w, "[");
    else
        printf("%-20s %-36s %-28s %-9s %8s  %s\n", "NAME", "ID", "STATE", "CADENCE", "VEHICLES",
               "CALLBACK");
    int rc = s->L.ops->webhook_list(s->L.st, NULL, list_one, &l) == MTR_OK ? EXIT_OK
                                                                           : store_error(inv, s);
    if (l.json) {
        jsonw_lit(&l.w, "]");
        char *text = jsonw_take(&l.w, NULL);
        if (text)
            printf("%s\n", text);
        free(text);
    }
    jsonw_free(&l.w);
    return rc;
}

static int webhook_set(struct invocation *inv, struct session *s, size_t i, int enable)
{
    const struct webhook_cfg *w = &s->c->webhooks[i];
    const struct webhook_rec *r = &s->recs[i];
    mtr_time now = clock_now(&inv->clock);
    if (enable) {
        if (r->state == MTR_WEBHOOK_UNVERIFIED) {
            fprintf(stderr,
                    "metronome webhook enable: '%s' is not verified yet; run metronome "
                    "webhook verify %s\n",
                    w->name, w->name);
            return EXIT_BAD_INPUT;
        }
        if (s->L.ops->webhook_set_state(s->L.st, r->id, MTR_WEBHOOK_ACTIVE, NULL, now) != MTR_OK)
            return store_error(inv, s);
        printf("webhook %s enabled; metronome replay --webhook %s sends its failed deliveries "
               "again\n",
               w->name, w->name);
        return EXIT_OK;
    }
    if (ledger_disable(&s->L, r->id, "operator", now) != 0)
        return store_error(inv, s);
    printf("webhook %s disabled; its pending deliveries are recorded as failed\n", w->name);
    return EXIT_OK;
}

int cmd_webhook(struct invocation *inv)
{
    static const char *const subs[] = {"list", "verify", "test", "enable", "disable"};
    const char *sub = inv->args[0];
    size_t k;
    for (k = 0; k < 5 && strcmp(sub, subs[k]) != 0; k++)
        ;
    if (k == 5)
        return bad_usage(inv, "unknown subcommand '%s' (list, verify, test, enable, disable)", sub);
    if ((k == 0) != (inv->n_args == 1))
        return bad_usage(inv, k == 0 ? "'list' takes no name%s" : "'%s' needs a webhook name",
                         k == 0 ? "" : sub);
    struct session s;
    int rc = session_open_mode(inv, &s, k == 0);
    size_t i = 0;
    struct diag d;
    char report[2048];
    if (rc != EXIT_OK) {
        session_close(&s);
        return rc;
    }
    const struct webhook_cfg *w = k == 0 ? NULL : webhook_arg(inv, &s, 1, &i);
    if (k != 0 && !w)
        rc = EXIT_BAD_INPUT;
    else if (k == 0)
        rc = webhook_list(inv, &s);
    else if (k == 1) {
        if (engine_verify(s.c, &inv->clock, w, &d) != 0) {
            fprintf(stderr, "metronome webhook verify: %s\n", d.text);
            rc = EXIT_RUNTIME;
        } else {
            printf("webhook %s verified: %s answered the challenge; it is active\n", w->name,
                   w->callback_uri);
        }
    } else if (k == 2) {
        rc = engine_test(s.c, &inv->clock, w, report, sizeof report, &d);
        fputs(report, stdout);
        if (rc != 0)
            fprintf(stderr, "metronome webhook test: %s\n", d.text);
        rc = rc ? EXIT_RUNTIME : EXIT_OK;
    } else {
        rc = webhook_set(inv, &s, i, k == 3);
    }
    session_close(&s);
    return rc;
}

/* ---- subscribe / unsubscribe ---------------------------------------------------------- */

static int valid_vehicle_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128)
        return 0;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
              (*id >= '0' && *id <= '9') || *id == '-' || *id == '_' || *id == '.' || *id == ':'))
            return 0;
    return 1;
}

struct subscriber {
    struct session *s;
    const struct webhook_cfg *w;
    const struct webhook_rec *rec;
    const char *source;
    struct vault vault;
    mtr_time now;
};

/* Subscribes one vehicle; returns 1 created, 0 already subscribed, -1 error
 * (message in err). */
static int subscribe_one(struct subscriber *sb, const char *vehicle, const char *access,
                         const char *refresh, char *err, size_t errlen)
{
    const struct mtr_store_ops *ops = sb->s->L.ops;
    if (!valid_vehicle_id(vehicle)) {
        snprintf(err, errlen, "bad vehicle id '%.64s' (1-128 of A-Z a-z 0-9 . _ : -)", vehicle);
        return -1;
    }
    if ((access != NULL) != (refresh != NULL)) {
        snprintf(err, errlen,
                 "vehicle %s: an access token needs its refresh token, and the reverse (a live "
                 "vehicle without both cannot be kept connected)",
                 vehicle);
        return -1;
    }
    if ((access || refresh) && !sb->vault.has_key) {
        snprintf(err, errlen,
                 "live credentials need a key: set $METRONOME_SECRET_KEY (64 hex "
                 "characters) or secrets.key_file");
        return -1;
    }
    size_t alen = 0, rlen = 0;
    unsigned char *a = access ? vault_seal(&sb->vault, access, &alen) : NULL;
    unsigned char *r = refresh ? vault_seal(&sb->vault, refresh, &rlen) : NULL;
    struct mtr_vehicle_row v = {.id = vehicle,
                                .source = sb->source,
                                .access_token = a,
                                .access_len = alen,
                                .refresh_token = r,
                                .refresh_len = rlen,
                                .access_expires = access ? sb->now + 7200 : 0};
    int created = 0;
    int ok = ops->vehicle_upsert(sb->s->L.st, &v) == MTR_OK &&
             ops->subscribe(sb->s->L.st, sb->rec->id, vehicle, sb->now,
                            stable_hash32(sb->rec->id, vehicle), &created) == MTR_OK;
    free(a);
    free(r);
    if (!ok) {
        snprintf(err, errlen, "store: %s", ledger_error(&sb->s->L));
        return -2;
    }
    return created;
}

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

static int subscribe_file(struct invocation *inv, struct subscriber *sb, const char *path)
{
    FILE *f;
    char oerr[128];
    if (open_regular(path, &f, oerr, sizeof oerr) != 0) {
        fprintf(stderr, "metronome subscribe: %s: %s\n", path, oerr);
        return EXIT_BAD_INPUT;
    }
    const struct mtr_store_ops *ops = sb->s->L.ops;
    int tty = isatty(2);
    size_t total = tty ? count_lines(f) : 0, lineno = 0, created = 0, existing = 0, bad = 0;
    char *line = malloc(CSV_LINE_MAX);
    size_t got;
    int rc = line ? EXIT_OK : EXIT_RUNTIME, in_tx = 0, too_long, nul;
    while (rc == EXIT_OK && csv_read_line(f, line, CSV_LINE_MAX, &got, &too_long, &nul) == 0) {
        lineno++;
        if (!in_tx && ops->begin(sb->s->L.st) != MTR_OK) {
            rc = store_error(inv, sb->s);
            break;
        }
        in_tx = 1;
        char *text = line, *fields[3] = {NULL, NULL, NULL}, err[256];
        if (lineno == 1 && strncmp(text, "\xef\xbb\xbf", 3) == 0)
            text += 3; /* a UTF-8 byte order mark */
        const char *first = text + strspn(text, " \t");
        if (!too_long && !nul && (*first == '\0' || *first == '#'))
            continue; /* a blank line or a comment, commas and all */
        int nf = too_long || nul ? 0 : csv_split(text, fields);
        const char *why = too_long ? "line longer than 16384 bytes"
                          : nul    ? "a NUL byte in the line"
                          : nf == -1
                              ? "more than 3 fields (vehicle_id[,access_token[,refresh_token]])"
                          : nf == -2 ? "a quoted field is not closed, or text follows its quote"
                                     : NULL;
        if (why) {
            fprintf(stderr, "%s%s:%zu: %s\n", tty ? "\n" : "", path, lineno, why);
            bad++;
            continue;
        }
        int r = subscribe_one(sb, fields[0], nf > 1 && *fields[1] ? fields[1] : NULL,
                              nf > 2 && *fields[2] ? fields[2] : NULL, err, sizeof err);
        if (r == -2) {
            rc = store_error(inv, sb->s);
            break;
        }
        if (r < 0) {
            fprintf(stderr, "%s%s:%zu: %s\n", tty ? "\n" : "", path, lineno, err);
            bad++;
        }
        created += r == 1;
        existing += r == 0;
        if (lineno % 10000 == 0) {
            if (ops->commit(sb->s->L.st) != MTR_OK) {
                rc = store_error(inv, sb->s);
                in_tx = 0;
                break;
            }
            in_tx = 0;
            if (tty)
                progress(lineno, total);
        }
    }
    if (in_tx && rc == EXIT_OK && ops->commit(sb->s->L.st) != MTR_OK)
        rc = store_error(inv, sb->s);
    else if (in_tx && rc != EXIT_OK)
        ops->rollback(sb->s->L.st);
    if (tty && rc == EXIT_OK)
        progress(total, total);
    free(line);
    fclose(f);
    if (rc == EXIT_OK) {
        printf("%s: %zu subscribed, %zu already subscribed, %zu bad line(s)\n", sb->w->name,
               created, existing, bad);
        if (bad)
            rc = EXIT_BAD_INPUT;
    }
    return rc;
}

/* ---- the Connect flow: vehicles behind a token ------------------------------------------ */

struct token_vehicles {
    struct subscriber *sb;
    const char *access, *refresh;
    size_t created, existing, failed;
    int subscribe; /* else only store the vehicle and its tokens */
    mtr_time expires;
};

static int on_listed_vehicle(void *arg, const char *vehicle_id)
{
    struct token_vehicles *tv = arg;
    char err[256];
    int r;
    if (tv->subscribe) {
        r = subscribe_one(tv->sb, vehicle_id, tv->access, tv->refresh, err, sizeof err);
    } else {
        size_t alen, rlen;
        unsigned char *a = vault_seal(&tv->sb->vault, tv->access, &alen);
        unsigned char *rt = vault_seal(&tv->sb->vault, tv->refresh, &rlen);
        struct mtr_vehicle_row v = {.id = vehicle_id,
                                    .source = tv->sb->source,
                                    .access_token = a,
                                    .access_len = alen,
                                    .refresh_token = rt,
                                    .refresh_len = rlen,
                                    .access_expires = tv->expires};
        r = a && rt && tv->sb->s->L.ops->vehicle_upsert(tv->sb->s->L.st, &v) == MTR_OK ? 1 : -1;
        snprintf(err, sizeof err, "store: %s", ledger_error(&tv->sb->s->L));
        free(a);
        free(rt);
    }
    if (r < 0)
        fprintf(stderr, "metronome: vehicle %s: %s\n", vehicle_id, err);
    else
        printf("  %s%s\n", vehicle_id, r == 0 ? " (already subscribed)" : "");
    tv->created += r == 1;
    tv->existing += r == 0;
    tv->failed += r < 0;
    return 0;
}

/* The source of the subscriber, started, with the Connect operations. */
static const struct mtr_source_ops *connect_source(struct invocation *inv, struct subscriber *sb,
                                                   void **state)
{
    struct diag d;
    for (size_t k = 0; k < sb->s->c->n_sources; k++) {
        struct named_instance *src = &sb->s->c->sources[k];
        if (strcmp(src->name, sb->source) != 0)
            continue;
        const struct mtr_source_ops *ops = src->inst->ctx.pf->desc.source;
        if (!ops->list_vehicles || !ops->exchange_code) {
            fprintf(stderr,
                    "metronome %s: source '%s' cannot list a token's vehicles (it is "
                    "not a live source)\n",
                    inv->cmd->name, src->name);
            return NULL;
        }
        if (instance_start(src->inst, &d) != 0) {
            fprintf(stderr, "metronome %s: %s\n", inv->cmd->name, d.text);
            return NULL;
        }
        *state = src->inst->state;
        return ops;
    }
    return NULL;
}

static int list_and_store(struct invocation *inv, struct subscriber *sb, struct token_vehicles *tv)
{
    void *st;
    const struct mtr_source_ops *ops = connect_source(inv, sb, &st);
    if (!ops)
        return EXIT_BAD_INPUT;
    if (!sb->vault.has_key) {
        fprintf(stderr,
                "metronome %s: live credentials need a key: set $METRONOME_SECRET_KEY "
                "(64 hex characters) or secrets.key_file\n",
                inv->cmd->name);
        return EXIT_BAD_INPUT;
    }
    if (ops->list_vehicles(st, tv->access, on_listed_vehicle, tv) != MTR_OK) {
        for (size_t k = 0; k < sb->s->c->n_sources; k++)
            if (strcmp(sb->s->c->sources[k].name, sb->source) == 0)
                fprintf(stderr, "metronome %s: %s\n", inv->cmd->name,
                        sb->s->c->sources[k].inst->ctx.error);
        return EXIT_RUNTIME;
    }
    printf("%zu vehicle(s) %s, %zu already subscribed, %zu failed\n", tv->created,
           tv->subscribe ? "subscribed" : "connected", tv->existing, tv->failed);
    return tv->failed ? EXIT_RUNTIME : EXIT_OK;
}

static int on_tokens(void *arg, const char *access, const char *refresh, mtr_time expires)
{
    struct token_vehicles *tv = arg;
    tv->access = strdup(access);
    tv->refresh = strdup(refresh);
    tv->expires = expires;
    return 0;
}

int cmd_subscribe(struct invocation *inv)
{
    const char *file = opt_get(inv, "file");
    int all = opt_get(inv, "all") != NULL;
    if ((file != NULL) + all + (inv->n_args == 2) != 1)
        return bad_usage(inv, "%s", "give a VEHICLE, --file vehicles.csv, or --all with tokens");
    struct session s;
    struct subscriber sb = {.s = &s};
    struct diag d;
    size_t i;
    int rc = session_open(inv, &s);
    if (rc == EXIT_OK && !(sb.w = webhook_arg(inv, &s, 0, &i)))
        rc = EXIT_BAD_INPUT;
    if (rc == EXIT_OK && vault_load(&sb.vault, s.c, &d) != 0) {
        fprintf(stderr, "metronome subscribe: %s\n", d.text);
        rc = EXIT_BAD_INPUT;
    }
    if (rc == EXIT_OK) {
        const char *src = opt_get(inv, "source");
        sb.rec = &s.recs[i];
        sb.now = clock_now(&inv->clock);
        sb.source = src ? src : s.c->sources[sb.w->source].name;
        size_t k;
        for (k = 0; k < s.c->n_sources && strcmp(s.c->sources[k].name, sb.source) != 0; k++)
            ;
        if (k == s.c->n_sources) {
            fprintf(stderr, "metronome subscribe: unknown source '%s' (not in %s)\n", sb.source,
                    inv->config_path);
            rc = EXIT_BAD_INPUT;
        }
    }
    if (rc == EXIT_OK && all) {
        struct token_vehicles tv = {.sb = &sb,
                                    .access = opt_get(inv, "access-token"),
                                    .refresh = opt_get(inv, "refresh-token"),
                                    .subscribe = 1};
        if (!tv.access || !tv.refresh)
            rc = bad_usage(inv, "%s", "--all needs --access-token and --refresh-token");
        else
            rc = list_and_store(inv, &sb, &tv);
    } else if (rc == EXIT_OK && file) {
        rc = subscribe_file(inv, &sb, file);
    } else if (rc == EXIT_OK) {
        char err[256], when[32], first[32];
        mtr_time next;
        int r = subscribe_one(&sb, inv->args[1], opt_get(inv, "access-token"),
                              opt_get(inv, "refresh-token"), err, sizeof err);
        iso(sb.now, when, sizeof when);
        if (r == 1) {
            struct diag ignored;
            if (webhook_next_tick(sb.w, sb.now, &next, &ignored) == 0)
                iso(next, first, sizeof first);
            else
                snprintf(first, sizeof first, "none");
            printf("subscribed %s to %s at %s; first tick %s\n", inv->args[1], sb.w->name, when,
                   first);
        } else if (r == 0) {
            fprintf(stderr, "metronome subscribe: vehicle %s is already subscribed to %s\n",
                    inv->args[1], sb.w->name);
            rc = EXIT_BAD_INPUT;
        } else {
            fprintf(stderr, "metronome subscribe: %s\n", err);
            rc = r == -2 ? EXIT_RUNTIME : EXIT_BAD_INPUT;
        }
    }
    vault_wipe(&sb.vault);
    session_close(&s);
    return rc;
}

int cmd_unsubscribe(struct invocation *inv)
{
    struct session s;
    size_t i;
    int rc = session_open(inv, &s), removed = 0;
    const struct webhook_cfg *w = rc == EXIT_OK ? webhook_arg(inv, &s, 0, &i) : NULL;
    if (rc == EXIT_OK && !w)
        rc = EXIT_BAD_INPUT;
    if (rc == EXIT_OK && s.L.ops->unsubscribe(s.L.st, s.recs[i].id, inv->args[1],
                                              clock_now(&inv->clock), &removed) != MTR_OK)
        rc = store_error(inv, &s);
    if (rc == EXIT_OK && !removed) {
        fprintf(stderr, "metronome unsubscribe: vehicle %s is not subscribed to %s\n", inv->args[1],
                w->name);
        rc = EXIT_BAD_INPUT;
    } else if (rc == EXIT_OK) {
        printf("unsubscribed %s from %s\n", inv->args[1], w->name);
    }
    session_close(&s);
    return rc;
}

/* ---- deliveries --------------------------------------------------------------------------- */

static const char *delivery_state_name(int state)
{
    static const char *const names[] = {"pending", "delivered", "failed"};
    return state >= 0 && state < 3 ? names[state] : "?";
}

static int parse_delivery_state(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, delivery_state_name(i)) == 0)
            return i;
    return -2;
}

struct ledger_view {
    struct session *s;
    int json;
    struct jsonw w;
    size_t n;
};

static const char *webhook_name_of(const struct session *s, const char *id)
{
    for (size_t i = 0; i < s->c->n_webhooks; i++)
        if (strcmp(s->recs[i].id, id) == 0)
            return s->c->webhooks[i].name;
    return id;
}

static int attempt_json(void *arg, const struct mtr_attempt_row *a)
{
    struct ledger_view *v = arg;
    char at[32];
    iso(a->at, at, sizeof at);
    jsonw_lit(&v->w, a->n > 1 ? ",{\"n\":" : "{\"n\":");
    jsonw_int(&v->w, a->n);
    jsonw_lit(&v->w, ",\"at\":");
    jsonw_str(&v->w, at);
    jsonw_lit(&v->w, ",\"httpStatus\":");
    jsonw_int(&v->w, a->http_status);
    jsonw_lit(&v->w, ",\"error\":");
    if (a->error)
        jsonw_str(&v->w, a->error);
    else
        jsonw_lit(&v->w, "null");
    jsonw_lit(&v->w, ",\"latencyUs\":");
    jsonw_int(&v->w, a->latency_us);
    jsonw_lit(&v->w, "}");
    return 0;
}

static int delivery_row(void *arg, const struct mtr_delivery_row *d)
{
    struct ledger_view *v = arg;
    char tick[32], next[32], last[160];
    iso(d->tick, tick, sizeof tick);
    iso(d->state == MTR_DELIVERY_PENDING ? d->next_attempt_at : 0, next, sizeof next);
    if (!v->json) {
        if (d->attempts == 0)
            snprintf(last, sizeof last, "-");
        else if (d->last_error && d->last_status)
            snprintf(last, sizeof last, "%d %.120s", d->last_status, d->last_error);
        else if (d->last_error)
            snprintf(last, sizeof last, "%.120s", d->last_error);
        else if (d->last_status)
            snprintf(last, sizeof last, "%d", d->last_status);
        else
            snprintf(last, sizeof last, "ok");
        printf("%-36s %-16s %-10s %-20s %-9s %3d  %s%s%s\n", d->id,
               webhook_name_of(v->s, d->webhook_id), d->sink, tick, delivery_state_name(d->state),
               d->attempts, last, d->state == MTR_DELIVERY_PENDING ? "  next " : "",
               d->state == MTR_DELIVERY_PENDING ? next : "");
        v->n++;
        return 0;
    }
    jsonw_lit(&v->w, v->n++ ? ",{\"id\":" : "{\"id\":");
    jsonw_str(&v->w, d->id);
    jsonw_lit(&v->w, ",\"webhook\":");
    jsonw_str(&v->w, webhook_name_of(v->s, d->webhook_id));
    jsonw_lit(&v->w, ",\"webhookId\":");
    jsonw_str(&v->w, d->webhook_id);
    jsonw_lit(&v->w, ",\"sink\":");
    jsonw_str(&v->w, d->sink);
    jsonw_lit(&v->w, ",\"kind\":");
    jsonw_str(&v->w, d->kind == MTR_DELIVERY_TEST ? "test" : "scheduled");
    jsonw_lit(&v->w, ",\"tick\":");
    jsonw_str(&v->w, tick);
    jsonw_lit(&v->w, ",\"state\":");
    jsonw_str(&v->w, delivery_state_name(d->state));
    jsonw_lit(&v->w, ",\"vehicles\":");
    jsonw_int(&v->w, d->vehicles);
    jsonw_lit(&v->w, ",\"bytes\":");
    jsonw_int(&v->w, (int64_t)d->body_len);
    jsonw_lit(&v->w, ",\"nextAttemptAt\":");
    if (d->state == MTR_DELIVERY_PENDING)
        jsonw_str(&v->w, next);
    else
        jsonw_lit(&v->w, "null");
    jsonw_lit(&v->w, ",\"attempts\":[");
    char *id = strdup(d->id); /* the row is only valid during this callback */
    int rc = id ? v->s->L.ops->list_attempts(v->s->L.st, id, attempt_json, v) : MTR_ERR;
    free(id);
    jsonw_lit(&v->w, "]}");
    return rc == MTR_OK ? 0 : 1;
}

int cmd_deliveries(struct invocation *inv)
{
    const char *name = opt_get(inv, "webhook"), *state_s = opt_get(inv, "state");
    const char *limit_s = opt_get(inv, "limit");
    int state = state_s ? parse_delivery_state(state_s) : -1;
    int64_t limit = 1000;
    if (state == -2)
        return bad_usage(inv, "--state: want pending, delivered or failed, not '%s'", state_s);
    if (limit_s && (parse_int64(limit_s, &limit) != 0 || limit < 1))
        return bad_usage(inv, "--limit: want a positive number, not '%s'", limit_s);
    struct session s;
    int rc = session_open_mode(inv, &s, 1);
    const char *webhook_id = NULL;
    if (rc == EXIT_OK && name)
        rc = webhook_option(inv, &s, name, &webhook_id);
    struct ledger_view v = {.s = &s, .json = opt_get(inv, "json") != NULL};
    jsonw_init(&v.w);
    if (rc == EXIT_OK) {
        if (v.json)
            jsonw_lit(&v.w, "[");
        else
            printf("%-36s %-16s %-10s %-20s %-9s %3s  %s\n", "DELIVERY", "WEBHOOK", "SINK", "TICK",
                   "STATE", "ATT", "LAST OUTCOME");
        if (s.L.ops->list_deliveries(s.L.st, webhook_id, state, (size_t)limit, delivery_row, &v) !=
            MTR_OK)
            rc = store_error(inv, &s);
    }
    if (rc == EXIT_OK && v.json) {
        jsonw_lit(&v.w, "]");
        char *text = jsonw_take(&v.w, NULL);
        if (text)
            printf("%s\n", text);
        free(text);
    } else if (rc == EXIT_OK) {
        struct mtr_store_stats st;
        if (s.L.ops->stats(s.L.st, webhook_id, &st) == MTR_OK)
            printf("jobs: due %llu, sent %llu, missed %llu; deliveries: pending %llu, delivered "
                   "%llu, failed %llu; attempts %llu (retries %llu)\n",
                   (unsigned long long)st.jobs[MTR_JOB_DUE],
                   (unsigned long long)st.jobs[MTR_JOB_SENT],
                   (unsigned long long)st.jobs[MTR_JOB_MISSED],
                   (unsigned long long)st.deliveries[MTR_DELIVERY_PENDING],
                   (unsigned long long)st.deliveries[MTR_DELIVERY_DELIVERED],
                   (unsigned long long)st.deliveries[MTR_DELIVERY_FAILED],
                   (unsigned long long)st.attempts, (unsigned long long)st.retries);
    }
    jsonw_free(&v.w);
    session_close(&s);
    return rc;
}

/* ---- replay -------------------------------------------------------------------------------- */

struct found_delivery {
    char webhook_id[UUID_LEN + 1];
    int found;
    int pruned; /* its payload bytes are gone (retention) */
};

static int find_delivery(void *arg, const struct mtr_delivery_row *d)
{
    struct found_delivery *f = arg;
    snprintf(f->webhook_id, sizeof f->webhook_id, "%s", d->webhook_id);
    f->found = 1;
    f->pruned = d->body == NULL;
    return 1;
}

int cmd_replay(struct invocation *inv)
{
    const char *id = opt_get(inv, "delivery"), *name = opt_get(inv, "webhook");
    const char *state_s = opt_get(inv, "state");
    int from = state_s ? parse_delivery_state(state_s) : MTR_DELIVERY_FAILED;
    if ((id != NULL) == (name != NULL))
        return bad_usage(inv, "%s", "give either --delivery ID or --webhook NAME");
    if (from < 0 || from == MTR_DELIVERY_PENDING)
        return bad_usage(inv, "--state: want failed or delivered, not '%s'", state_s);
    struct session s;
    int rc = session_open(inv, &s);
    const char *webhook_id = NULL;
    if (rc == EXIT_OK && name)
        rc = webhook_option(inv, &s, name, &webhook_id);
    struct found_delivery fd = {0};
    if (rc == EXIT_OK && id) {
        if (s.L.ops->delivery_get(s.L.st, id, find_delivery, &fd) != MTR_OK)
            rc = store_error(inv, &s);
        else if (!fd.found) {
            fprintf(stderr, "metronome replay: no delivery %s\n", id);
            rc = EXIT_BAD_INPUT;
        } else if (fd.pruned) {
            fprintf(stderr,
                    "metronome replay: delivery %s can no longer be sent: its payload was "
                    "pruned (retention)\n",
                    id);
            rc = EXIT_BAD_INPUT;
        }
    }
    const char *target = id ? fd.webhook_id : webhook_id;
    for (size_t i = 0; rc == EXIT_OK && i < s.c->n_webhooks; i++) {
        if (strcmp(s.recs[i].id, target) == 0 && s.recs[i].state != MTR_WEBHOOK_ACTIVE) {
            fprintf(stderr, "metronome replay: webhook %s is %s; metronome webhook %s %s first\n",
                    s.c->webhooks[i].name, webhook_state_name(s.recs[i].state),
                    s.recs[i].state == MTR_WEBHOOK_DISABLED ? "enable" : "verify",
                    s.c->webhooks[i].name);
            rc = EXIT_BAD_INPUT;
        }
    }
    uint64_t n = 0;
    if (rc == EXIT_OK &&
        s.L.ops->replay(s.L.st, id, webhook_id, from, clock_now(&inv->clock), &n) != MTR_OK)
        rc = store_error(inv, &s);
    if (rc == EXIT_OK) {
        printf("%llu deliver%s queued again with the same id and bytes; a running metronome sends "
               "%s now, or the next metronome run\n",
               (unsigned long long)n, n == 1 ? "y" : "ies", n == 1 ? "it" : "them");
    }
    session_close(&s);
    return rc;
}

int cmd_connect(struct invocation *inv)
{
    const char *code = opt_get(inv, "code"), *redirect = opt_get(inv, "redirect-uri");
    if (!code || !redirect)
        return bad_usage(inv, "%s", "--code and --redirect-uri are required");
    struct session s;
    struct subscriber sb = {.s = &s};
    struct diag d;
    size_t i = 0;
    int rc = session_open(inv, &s);
    if (rc == EXIT_OK && inv->n_args == 1 && !(sb.w = webhook_arg(inv, &s, 0, &i)))
        rc = EXIT_BAD_INPUT;
    if (rc == EXIT_OK && vault_load(&sb.vault, s.c, &d) != 0) {
        fprintf(stderr, "metronome connect: %s\n", d.text);
        rc = EXIT_BAD_INPUT;
    }
    const char *src = opt_get(inv, "source");
    sb.now = clock_now(&inv->clock);
    sb.rec = sb.w ? &s.recs[i] : NULL;
    sb.source = src ? src : s.c->sources[sb.w ? sb.w->source : 0].name;
    struct token_vehicles tv = {.sb = &sb, .subscribe = sb.w != NULL};
    void *st;
    const struct mtr_source_ops *ops = rc == EXIT_OK ? connect_source(inv, &sb, &st) : NULL;
    if (rc == EXIT_OK && !ops)
        rc = EXIT_BAD_INPUT;
    if (rc == EXIT_OK && ops->exchange_code(st, code, redirect, on_tokens, &tv) != MTR_OK) {
        for (size_t k = 0; k < s.c->n_sources; k++)
            if (strcmp(s.c->sources[k].name, sb.source) == 0)
                fprintf(stderr, "metronome connect: %s\n", s.c->sources[k].inst->ctx.error);
        rc = EXIT_RUNTIME;
    }
    if (rc == EXIT_OK && (!tv.access || !tv.refresh))
        rc = EXIT_RUNTIME;
    if (rc == EXIT_OK)
        rc = list_and_store(inv, &sb, &tv);
    free((char *)tv.access);
    free((char *)tv.refresh);
    vault_wipe(&sb.vault);
    session_close(&s);
    return rc;
}

/* ---- check ----------------------------------------------------------------------------------- */

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
    } else if (!L.ops->check) {
        fprintf(stderr, "metronome check: store plugin '%s' has no integrity check\n",
                c->store_plugin);
        rc = EXIT_RUNTIME;
    } else if (L.ops->check(L.st, print_problem, NULL, &problems) != MTR_OK) {
        fprintf(stderr, "metronome check: store: %s\n", ledger_error(&L));
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
