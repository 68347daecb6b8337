/* The ledger commands with bad input: unknown webhooks and vehicles, a
 * duplicate subscription, malformed CSV lines in a bulk import, a receiver
 * that answers bytes that are not HTTP, a clean stop on SIGTERM. Each gets a
 * clear message and exit status, and loses nothing already recorded. */
#include "scenario.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Whether the file's bytes contain needle (a missing file contains nothing). */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t n = strlen(needle), match = 0;
    int c, found = 0;
    if (!f)
        return 0;
    while (!found && (c = fgetc(f)) != EOF) {
        match = (unsigned char)needle[match] == c ? match + 1 : ((unsigned char)needle[0] == c);
        found = match == n;
    }
    fclose(f);
    return found;
}

static void expect_fail(struct scenario *s, int status, const char *message, const char *first, ...)
{
    const char *argv[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 12; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n++] = "--config";
    argv[n++] = s->config;
    argv[n] = NULL;
    struct run_result r;
    run_metronome(argv, NULL, &r);
    cr_expect_eq(r.status, status, "%s: exit %d: %s", first, r.status, r.err);
    cr_expect(strstr(r.err, message) != NULL, "%s: got '%s', want '%s'", first, r.err, message);
    run_result_free(&r);
}

Test(commands, unknown_names_and_duplicates)
{
    struct scenario s;
    scenario_start(&s, NULL);
    expect_fail(&s, 2, "unknown webhook 'nope'", "subscribe", "nope", "v1", NULL);
    expect_fail(&s, 2, "unknown webhook 'nope'", "webhook", "verify", "nope", NULL);
    expect_fail(&s, 2, "unknown source 'live'", "subscribe", "fleet", "v1", "--source", "live",
                NULL);
    expect_fail(&s, 2, "bad vehicle id 'v 1'", "subscribe", "fleet", "v 1", NULL);
    expect_fail(&s, 2, "vehicle ghost is not subscribed to fleet", "unsubscribe", "fleet", "ghost",
                NULL);
    sc_ok(&s, "subscribe", "fleet", "v1", NULL);
    expect_fail(&s, 2, "vehicle v1 is already subscribed to fleet", "subscribe", "fleet", "v1",
                NULL);
    expect_fail(&s, 2, "live credentials need a key", "subscribe", "fleet", "v2", "--access-token",
                "at", "--refresh-token", "rt", NULL);
    expect_fail(&s, 2, "vehicle v2: an access token needs its refresh token", "subscribe", "fleet",
                "v2", "--access-token", "at", NULL);
    expect_fail(&s, 2, "vehicle v2: an access token needs its refresh token", "subscribe", "fleet",
                "v2", "--refresh-token", "rt", NULL);
    expect_fail(&s, 2, "unknown subcommand 'explode'", "webhook", "explode", "fleet", NULL);
    expect_fail(&s, 2, "not verified yet", "webhook", "enable", "fleet", NULL);
    expect_fail(&s, 2, "no delivery 00000000", "replay", "--delivery",
                "00000000-0000-0000-0000-000000000000", NULL);
    expect_fail(&s, 2, "--state: want pending, delivered or failed", "deliveries", "--state",
                "lost", NULL);
    expect_fail(&s, 2, "a virtual clock needs --start and a later --until", "run", "--clock",
                "virtual", "--start", "2030-03-01T00:00:00Z", NULL);
    setenv("METRONOME_SECRET_KEY", "not-hex", 1);
    expect_fail(&s, 2, "$METRONOME_SECRET_KEY must be 64 hexadecimal characters", "run", "--clock",
                "virtual", "--start", "2030-03-01T00:00:00Z", "--until", "2030-03-01T01:00:00Z",
                NULL);
    unsetenv("METRONOME_SECRET_KEY");
    /* v1 is still subscribed: nothing recorded was lost */
    struct run_result r = sc_run(&s, "webhook", "list", "--json", NULL);
    cr_expect(strstr(r.out, "\"vehicles\":1") != NULL, "%s", r.out);
    run_result_free(&r);
    scenario_stop(&s);
}

Test(commands, bulk_import_reports_bad_lines_and_imports_the_rest)
{
    struct scenario s;
    scenario_start(&s, NULL);
    char *csv = path_join(s.dir, "vehicles.csv");
    write_file(csv, "# fleet export\n"
                    "veh-1\n"
                    "veh-2, tok-a, tok-b\n"
                    "\n"
                    "bad vehicle\n"
                    "veh-3,a,b,c\n"
                    "veh-1\n"
                    "veh-4\r\n");
    setenv("METRONOME_SECRET_KEY",
           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1);
    struct run_result r = sc_run(&s, "subscribe", "fleet", "--file", csv, NULL);
    unsetenv("METRONOME_SECRET_KEY");
    cr_expect_eq(r.status, 2, "bad lines make the exit status 2: %s", r.err);
    cr_expect(strstr(r.err, "vehicles.csv:5: bad vehicle id 'bad vehicle'") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "vehicles.csv:6: more than 3 fields") != NULL, "%s", r.err);
    cr_expect(strstr(r.out, "fleet: 3 subscribed, 1 already subscribed, 2 bad line(s)") != NULL,
              "%s", r.out);
    cr_expect(strstr(r.err, "tok-a") == NULL && strstr(r.out, "tok-a") == NULL,
              "tokens never printed");
    run_result_free(&r);
    r = sc_run(&s, "webhook", "list", "--json", NULL);
    cr_expect(strstr(r.out, "\"vehicles\":3") != NULL, "%s", r.out);
    run_result_free(&r);
    /* the token is sealed at rest, in the database and its write-ahead log */
    const char *files[] = {"ledger.db", "ledger.db-wal"};
    for (int i = 0; i < 2; i++) {
        char *path = path_join(s.dir, files[i]);
        cr_expect(!file_contains(path, "tok-a"), "%s holds the token in clear", files[i]);
        free(path);
    }
    free(csv);
    scenario_stop(&s);
}

/* A TCP server that answers every connection with bytes that are not HTTP. */
struct garbage {
    int fd;
    unsigned short port;
    pthread_t thread;
    int stop;
    const char *reply; /* NULL: bytes that are not HTTP */
    size_t reply_len;
};

static void *garbage_loop(void *arg)
{
    struct garbage *g = arg;
    while (!g->stop) {
        int c = accept(g->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[4096];
        if (read(c, buf, sizeof buf) > 0) {
            static const char junk[] = "\x01\x02 this is not HTTP \xff\r\n\r\n";
            const char *p = g->reply ? g->reply : junk;
            size_t n = g->reply ? g->reply_len : sizeof junk - 1;
            while (n > 0) {
                ssize_t w = write(c, p, n);
                if (w <= 0)
                    break;
                p += w;
                n -= (size_t)w;
            }
        }
        close(c);
    }
    return NULL;
}

static void garbage_start(struct garbage *g)
{
    g->reply = NULL;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    g->stop = 0;
    g->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(g->fd >= 0);
    cr_assert_eq(bind(g->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(g->fd, 16), 0);
    getsockname(g->fd, (struct sockaddr *)&a, &len);
    g->port = ntohs(a.sin_port);
    pthread_create(&g->thread, NULL, garbage_loop, g);
}

static void garbage_stop(struct garbage *g)
{
    g->stop = 1;
    shutdown(g->fd, SHUT_RDWR);
    close(g->fd);
    pthread_join(g->thread, NULL);
}

Test(commands, a_receiver_answering_garbage_is_a_failed_attempt, .timeout = 60)
{
    struct garbage g;
    garbage_start(&g);
    char uri[128];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%u/hook", g.port);
    struct scenario s;
    struct scenario_opts o = {.callback = uri};
    scenario_start(&s, &o);
    expect_fail(&s, 1, "not verified", "webhook", "verify", "fleet", NULL);
    sc_ok(&s, "subscribe", "fleet", "v1", "--now", "2030-03-01T15:45:00Z", NULL);
    struct run_result r = sc_run(&s, "webhook", "test", "fleet", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.out, "callback: failed") != NULL, "%s", r.out);
    run_result_free(&r);
    json_t *d = sc_deliveries(&s);
    json_t *a = json_object_get(json_array_get(d, 0), "attempts");
    cr_expect_eq(json_array_size(a), 1, "the attempt is recorded");
    const char *err = json_string_value(json_object_get(json_array_get(a, 0), "error"));
    cr_expect(err && *err, "with the transport error");
    json_decref(d);
    scenario_stop(&s);
    garbage_stop(&g);
}

Test(commands, sigterm_stops_the_daemon_cleanly, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    const char *argv[] = {MTR_BIN, "run", "--config", s.config, NULL};
    extern char **environ;
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, MTR_BIN, NULL, NULL, (char **)argv, environ), 0);
    /* wait until the daemon has its store open (the ledger file exists) */
    char *db = path_join(s.dir, "ledger.db");
    char *wal = path_join(s.dir, "ledger.db-wal"), *shm = path_join(s.dir, "ledger.db-shm");
    for (int i = 0; i < 500 && (access(db, F_OK) != 0 || access(shm, F_OK) != 0); i++) {
        struct timespec ts = {0, 20000000L}; /* polled for readiness, at most 10 s */
        nanosleep(&ts, NULL);
    }
    int ready = access(db, F_OK) == 0 && access(shm, F_OK) == 0;
    if (!ready)
        kill(pid, SIGKILL);
    cr_assert(ready, "the daemon opened its ledger");
    /* the ledger and its WAL files hold payloads: private to their owner */
    const char *files[] = {db, wal, shm};
    for (int i = 0; i < 3; i++) {
        struct stat sb;
        cr_expect(stat(files[i], &sb) == 0 && (sb.st_mode & 0777) == 0600, "%s is %03o", files[i],
                  (unsigned)(sb.st_mode & 0777));
    }
    free(wal);
    free(shm);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", WEXITSTATUS(st));
    free(db);
    scenario_stop(&s);
}

Test(commands, the_file_sink_writes_one_whole_json_line_per_payload, .timeout = 60)
{
    char *dir = make_tmpdir(), *cfg = path_join(dir, "p.yaml"), *out = path_join(dir, "out.jsonl");
    char text[2048];
    snprintf(text, sizeof text,
             "version: 1\napplication: {management_token: file-token}\n"
             "plugin_path: [\"%s\"]\nstore: {plugin: sqlite, path: \"%s/l.db\"}\n"
             "sources: [{name: sim, plugin: simulated}]\n"
             "sinks: [{name: f, plugin: file, path: \"%s\", fsync: always}]\n"
             "webhooks:\n  - {name: w, callback_uri: \"https://example.com/h\", cadence: hourly,"
             " endpoints: [/odometer, /location], sinks: [f]}\n",
             MTR_PLUGIN_DIR, dir, out);
    write_file(cfg, text);
    const char *steps[][12] = {
        {"webhook", "test", "w", "--config", cfg, NULL},
        {"subscribe", "w", "a", "--config", cfg, "--now", "2030-03-01T15:45:00Z", NULL},
        {"subscribe", "w", "b", "--config", cfg, "--now", "2030-03-01T15:45:00Z", NULL},
    };
    for (size_t i = 0; i < 3; i++) {
        struct run_result r;
        run_metronome(steps[i], NULL, &r);
        cr_assert_eq(r.status, 0, "%s", r.err);
        run_result_free(&r);
    }
    /* a file sink cannot verify a callback, so only the test payload is sent */
    char *lines = read_file(out);
    cr_assert_not_null(lines);
    size_t n = 0;
    for (char *line = lines, *next; *line; line = next) {
        next = strchr(line, '\n');
        cr_assert_not_null(next, "every line ends with a newline");
        *next++ = '\0';
        json_error_t je;
        json_t *v = json_loads(line, 0, &je);
        cr_assert_not_null(v, "line %zu is not JSON: %s", n, je.text);
        const char *sig =
            json_string_value(json_object_get(json_object_get(v, "headers"), "SC-Signature"));
        char *body = json_dumps(json_object_get(v, "body"),
                                JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        cr_expect(sig && strlen(sig) == 64, "signed");
        cr_expect(strstr(body, "\"mode\":\"test\"") != NULL, "%s", body);
        cr_expect_str_eq(json_string_value(json_object_get(v, "deliveryId")),
                         json_string_value(json_object_get(json_object_get(v, "headers"),
                                                           "Metronome-Delivery-Id")));
        free(body);
        json_decref(v);
        n++;
    }
    cr_expect_eq(n, 1);
    free(lines);
    free(out);
    free(cfg);
    free(dir);
}

Test(commands, a_receiver_with_huge_headers_is_named_as_such, .timeout = 60)
{
    /* libcurl reports a 1 MiB response header as "Out of memory": the attempt
     * says what happened instead */
    struct garbage g;
    garbage_start(&g);
    size_t big = 1 << 20;
    char *reply = malloc(big + 128);
    cr_assert_not_null(reply);
    int n = snprintf(reply, 128, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(reply + n, 'a', big);
    static const char tail[] = "\r\nContent-Length: 0\r\n\r\n";
    memcpy(reply + n + big, tail, sizeof tail - 1);
    g.reply = reply;
    g.reply_len = (size_t)n + big + sizeof tail - 1;
    char uri[128];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%u/hook", g.port);
    struct scenario s;
    struct scenario_opts o = {.callback = uri};
    scenario_start(&s, &o);
    struct run_result r = sc_run(&s, "webhook", "test", "fleet", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.out, "answered HTTP 200 with response headers larger than 100 KiB") != NULL,
              "%s", r.out);
    cr_expect(strstr(r.out, "Out of memory") == NULL, "%s", r.out);
    run_result_free(&r);
    scenario_stop(&s);
    garbage_stop(&g);
    free(reply);
}

Test(commands, a_run_that_delivers_nothing_says_why)
{
    struct scenario s;
    scenario_start(&s, NULL);
    struct run_result r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T15:45:00Z",
                                 "--until", "2030-03-01T17:10:00Z", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "nothing was delivered:") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "fleet is not verified (metronome webhook verify fleet)") != NULL, "%s",
              r.out);
    run_result_free(&r);
    sc_ok(&s, "webhook", "verify", "fleet", "--now", "2030-03-01T15:45:00Z", NULL);
    r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T17:10:00Z", "--until",
               "2030-03-01T18:10:00Z", NULL);
    cr_expect(strstr(r.out, "fleet has no subscribed vehicles") != NULL, "%s", r.out);
    run_result_free(&r);
    sc_ok(&s, "subscribe", "fleet", "v1", "--now", "2030-03-01T18:10:00Z", NULL);
    sc_virtual(&s, "2030-03-01T18:10:00Z", "2030-03-01T19:10:00Z");
    r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T18:10:00Z", "--until",
               "2030-03-01T19:10:00Z", NULL);
    cr_expect(strstr(r.out, "ticks up to 2030-03-01T19:00:00Z were recorded already") != NULL,
              "a rerun of the same hour: %s", r.out);
    run_result_free(&r);
    r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T19:10:00Z", "--until",
               "2030-03-01T19:40:00Z", NULL);
    cr_expect(strstr(r.out, "no tick was due from the run's start to its end") != NULL, "%s",
              r.out);
    run_result_free(&r);
    scenario_stop(&s);
}

Test(commands, validate_warns_when_the_spread_outlasts_the_period)
{
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.cadence = "{policy: interval, every: 30s}"});
    struct run_result r = sc_run(&s, "validate", NULL);
    cr_expect_eq(r.status, 0, "a warning, not an error: %s", r.err);
    cr_expect(strstr(r.out, "ok") != NULL);
    cr_expect(strstr(r.err, "pipeline.yaml:") && strstr(r.err, "warning: webhook 'fleet' ticks "
                                                               "every 30s but delivery.spread "
                                                               "reaches 300s"),
              "%s", r.err);
    run_result_free(&r);
    scenario_stop(&s);
    scenario_start(&s, NULL);
    r = sc_run(&s, "validate", NULL);
    cr_expect(strstr(r.err, "warning") == NULL, "hourly with the default spread: %s", r.err);
    run_result_free(&r);
    scenario_stop(&s);
}
