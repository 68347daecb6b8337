/* What an adversarial review broke (issue 9), each as the rule it breaks:
 * time values from outside saturate and stay inside the retry window, a
 * plugin's answers are checked before they are believed, ledger files are
 * private and never silently replaced, bounded input, truthful outcomes. */
#define _DEFAULT_SOURCE /* setgroups */
#include "scenario.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const one[] = {"v1", NULL};

/* Whether every directory on the way to path lets others through. */
static int others_can_reach(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *slash = buf + strlen(buf); slash > buf; slash = strrchr(buf, '/')) {
        struct stat sb;
        *slash = '\0';
        if (buf[0] && (stat(buf, &sb) != 0 || !(sb.st_mode & S_IXOTH)))
            return 0;
    }
    return 1;
}

/* Runs argv as the user nobody (65534); returns its exit status, with what it
 * printed (both streams) in out. */
static int run_as_nobody(const char *const *argv, char *out, size_t len)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(99);
        execv(argv[0], (char *const *)argv);
        _exit(98);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < len && (r = read(fds[0], out + n, len - n - 1)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static json_t *only_attempts(struct scenario *s)
{
    json_t *d = sc_deliveries(s);
    cr_assert_eq(json_array_size(d), 1, "one delivery");
    json_t *a = json_incref(json_object_get(json_array_get(d, 0), "attempts"));
    json_decref(d);
    return a;
}

static mtr_time attempt_at(json_t *attempts, size_t i)
{
    return iso(json_string_value(json_object_get(json_array_get(attempts, i), "at")));
}

/* Every attempt of a delivery whose receiver always answers with this
 * Retry-After: inside the 10-minute window, never two within 30 s. */
static void expect_retries_inside_window(const char *retry_after)
{
    struct scenario s;
    scenario_start(&s, NULL);
    receiver_default(&s.r, (struct receiver_rule){
                               .status = 429, .retry_after = -1, .retry_after_text = retry_after});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T17:30:00Z");
    json_t *a = only_attempts(&s);
    size_t n = json_array_size(a);
    cr_assert_geq(n, 2, "Retry-After %s: retried", retry_after);
    mtr_time first = attempt_at(a, 0);
    for (size_t i = 1; i < n; i++) {
        mtr_time t = attempt_at(a, i), gap = t - attempt_at(a, i - 1);
        cr_expect_leq(t - first, 600, "Retry-After %s: attempt %zu at +%llds, past the window",
                      retry_after, i + 1, (long long)(t - first));
        cr_expect_geq(gap, 30, "Retry-After %s: attempts %zu and %zu are %llds apart", retry_after,
                      i, i + 1, (long long)gap);
    }
    json_decref(a);
    struct run_result r = sc_run(&s, "webhook", "list", "--json", NULL);
    cr_expect(strstr(r.out, "retries-exhausted") != NULL, "%s", r.out);
    run_result_free(&r);
    scenario_stop(&s);
}

Test(hardening, retry_after_overflow_saturates, .timeout = 60)
{
    expect_retries_inside_window("99999999999999999999");
}

Test(hardening, retry_after_past_the_window_fires_no_burst, .timeout = 60)
{
    expect_retries_inside_window("3600");
}

Test(hardening, retry_after_http_date_far_away_is_clamped, .timeout = 60)
{
    expect_retries_inside_window("Fri, 01 Jan 2100 00:00:00 GMT");
}

Test(hardening, retry_after_http_date_is_honoured, .timeout = 60)
{
    /* the first attempt is at 16:01:xx; a date 5 minutes after the tick waits for it */
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.delivery = "{spread: [1m, 1m]}"});
    struct receiver_rule busy = {
        .status = 503, .retry_after = -1, .retry_after_text = "Fri, 01 Mar 2030 16:05:00 GMT"};
    receiver_script(&s.r, &busy, 1);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *a = only_attempts(&s);
    cr_assert_eq(json_array_size(a), 2);
    cr_expect_eq(attempt_at(a, 1), iso("2030-03-01T16:05:00Z"));
    json_decref(a);
    scenario_stop(&s);
}

/* Adds a fixture sink (the plugin built into MTR_FIXTURE_DIR/dir) to the
 * scenario's pipeline, beside the callback, as a second sink of the webhook. */
static void add_fixture_sink(struct scenario *s, const char *dir, const char *name,
                             const char *plugin)
{
    char *conf = read_file(s->config), text[8192], dirs[1024];
    snprintf(dirs, sizeof dirs, "plugin_path: [\"%s\", \"%s/%s\"]", MTR_PLUGIN_DIR, MTR_FIXTURE_DIR,
             dir);
    char *pp = strstr(conf, "plugin_path:"), *pp_end = strchr(pp, '\n');
    char *sinks = strstr(conf, "    sinks: [callback]");
    cr_assert(pp && sinks);
    snprintf(text, sizeof text,
             "%.*s%s%.*s  - {name: %s, plugin: %s}\n%.*s"
             "    sinks: [callback, %s]%s",
             (int)(pp - conf), conf, dirs, (int)(strstr(conf, "webhooks:") - pp_end), pp_end, name,
             plugin, (int)(sinks - strstr(conf, "webhooks:")), strstr(conf, "webhooks:"), name,
             sinks + strlen("    sinks: [callback]"));
    write_file(s->config, text);
    free(conf);
}

Test(hardening, a_sink_that_loses_the_cookie_is_quarantined, .timeout = 60)
{
    /* the webhook posts to the receiver (so it verifies) and to a sink that
     * never hands back the cookie: the daemon must name it, not crash */
    struct scenario s;
    scenario_start(&s, NULL);
    add_fixture_sink(&s, "bad_cookie", "lossy", "nocookie");
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    struct run_result r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T15:45:00Z",
                                 "--until", "2030-03-01T16:20:00Z", NULL);
    cr_expect_eq(r.status, 0, "no crash: status %d\n%s", r.status, r.err);
    cr_expect(strstr(r.err, "sink 'lossy' (plugin nocookie") != NULL, "names the plugin: %s",
              r.err);
    cr_expect(strstr(r.err, "was not given") != NULL, "%s", r.err);
    run_result_free(&r);
    cr_expect_eq(sc_payloads(&s), 1, "the other sink still delivers");
    json_t *d = sc_deliveries(&s);
    size_t i, lossy = 0;
    json_t *x;
    json_array_foreach(d, i,
                       x) if (strcmp(json_string_value(json_object_get(x, "sink")), "lossy") == 0)
        lossy += strcmp(json_string_value(json_object_get(x, "state")), "delivered") != 0;
    cr_expect_eq(lossy, 1, "the lossy sink's delivery is not recorded delivered");
    json_decref(d);
    scenario_stop(&s);
}

Test(hardening, test_payloads_get_their_own_ids_and_are_not_replayed, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    receiver_default(&s.r, (struct receiver_rule){.status = 500, .retry_after = -1});
    struct run_result a = sc_run(&s, "webhook", "test", "fleet", "--now", "2030-03-01T15:50:00Z",
                                 NULL),
                      b = sc_run(&s, "webhook", "test", "fleet", "--now", "2030-03-01T15:50:00Z",
                                 NULL);
    cr_expect_eq(a.status, 1);
    cr_expect(strstr(a.out, "failed") != NULL, "%s", a.out);
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 2, "two tests in one second: two deliveries");
    json_decref(d);
    sc_ok(&s, "webhook", "enable", "fleet", NULL);
    struct run_result r = sc_run(&s, "replay", "--webhook", "fleet", NULL);
    cr_expect(strstr(r.out, "0 deliveries queued") != NULL, "test deliveries are not replayed: %s",
              r.out);
    run_result_free(&a);
    run_result_free(&b);
    run_result_free(&r);
    scenario_stop(&s);
}

static void expect_mode(const char *path, unsigned mode)
{
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s exists", path);
    cr_expect_eq(sb.st_mode & 0777, mode, "%s is %03o", path, sb.st_mode & 0777);
}

Test(hardening, ledger_files_are_private, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    umask(022); /* what the tests' parent has: metronome must not rely on it */
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    char *db = path_join(s.dir, "ledger.db");
    expect_mode(db, 0600); /* -wal and -shm: commands/sigterm_stops_the_daemon_cleanly */
    free(db);
    scenario_stop(&s);
}

Test(hardening, an_empty_or_foreign_ledger_is_refused, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    char *db = path_join(s.dir, "ledger.db"), *wal = path_join(s.dir, "ledger.db-wal");
    unlink(wal);
    write_file(db, "");
    struct run_result r = sc_run(&s, "webhook", "list", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "ledger.db: the file is empty, not a metronome ledger") != NULL, "%s",
              r.err);
    run_result_free(&r);
    r = sc_run(&s, "subscribe", "fleet", "v9", NULL);
    cr_expect_eq(r.status, 1, "a write does not make a fresh ledger either");
    run_result_free(&r);
    write_file(db, "PK\003\004 a zip file, say");
    r = sc_run(&s, "deliveries", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "not a metronome ledger (not an SQLite database)") != NULL, "%s",
              r.err);
    run_result_free(&r);
    free(db);
    free(wal);
    scenario_stop(&s);
}

Test(hardening, check_reports_corruption, .timeout = 60)
{
    struct scenario s;
    static const char *const many[] = {"v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", NULL};
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", many);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T20:30:00Z");
    struct run_result r = sc_run(&s, "check", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "ok") != NULL);
    run_result_free(&r);
    char *db = path_join(s.dir, "ledger.db");
    FILE *f = fopen(db, "r+b");
    cr_assert_not_null(f);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    cr_assert_gt(size, 4 * 4096);
    fseek(f, 2 * 4096, SEEK_SET); /* every b-tree page after the first two */
    for (long at = 2 * 4096; at < size; at += 4096)
        fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    r = sc_run(&s, "check", NULL);
    cr_expect_eq(r.status, 1, "damage is a runtime failure: %s", r.out);
    cr_expect(strstr(r.err, "the ledger is damaged") != NULL, "%s", r.err);
    run_result_free(&r);
    free(db);
    scenario_stop(&s);
}

Test(hardening, read_only_commands_write_nothing, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    char *db = path_join(s.dir, "ledger.db");
    struct run_result r = sc_run(&s, "deliveries", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "no ledger here yet") != NULL, "%s", r.err);
    cr_expect_eq(access(db, F_OK), -1, "deliveries created no ledger");
    run_result_free(&r);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    struct stat a, b;
    stat(db, &a);
    r = sc_run(&s, "webhook", "list", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_result_free(&r);
    r = sc_run(&s, "deliveries", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_result_free(&r);
    stat(db, &b);
    cr_expect_eq(a.st_mtime, b.st_mtime);
    cr_expect_eq(a.st_size, b.st_size);
    if (geteuid() == 0 && others_can_reach(MTR_PLUGIN_DIR)) {
        /* a user who may read the ledger but not write it, nor its directory */
        chmod(s.dir, 0755);
        chmod(db, 0644);
        chmod(s.config, 0644);
        char out[4096];
        int st = run_as_nobody((const char *[]){MTR_BIN, "deliveries", "--config", s.config, NULL},
                               out, sizeof out);
        cr_expect_eq(st, 0, "a read-only ledger can be read: %s", out);
        cr_expect(strstr(out, "jobs: due 0") != NULL, "%s", out);
        st = run_as_nobody(
            (const char *[]){MTR_BIN, "subscribe", "fleet", "v7", "--config", s.config, NULL}, out,
            sizeof out);
        cr_expect_eq(st, 1, "but not written: %s", out);
        cr_expect(strstr(out, "ledger.db: cannot") != NULL, "%s", out);
    }
    free(db);
    scenario_stop(&s);
}

Test(hardening, a_malformed_or_missing_key_is_bad_input, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    const char *bad[] = {"METRONOME_SECRET_KEY=abc", "METRONOME_SECRET_KEY=zz"
                                                     "00000000000000000000000000000000000000000"
                                                     "000000000000000000000"};
    for (size_t i = 0; i < 2; i++) {
        struct run_result r;
        run_metronome((const char *[]){"validate", "--config", s.config, NULL},
                      (const char *[]){bad[i], NULL}, &r);
        cr_expect_eq(r.status, 2, "validate refuses %s", bad[i]);
        cr_expect(strstr(r.err, "64 hexadecimal characters") != NULL, "%s", r.err);
        run_result_free(&r);
    }
    scenario_stop(&s);
    /* a live source and no key: validate says so */
    scenario_start(
        &s, &(struct scenario_opts){.source = "{name: live, plugin: smartcar, client_id: a, "
                                              "client_secret: b, allow_private_networks: true}"});
    struct run_result r = sc_run(&s, "validate", NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "source 'live' handles live credentials") != NULL, "%s", r.err);
    run_result_free(&r);
    scenario_stop(&s);
}

Test(hardening, key_file_checks, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    char *key = path_join(s.dir, "key"), text[8192];
    write_file(key, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    chmod(key, 0644);
    char *conf = read_file(s.config);
    snprintf(text, sizeof text, "%ssecrets: {key_file: \"%s\"}\n", conf, key);
    write_file(s.config, text);
    struct run_result r = sc_run(&s, "validate", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "can be read by others (mode 644)") != NULL, "warns: %s", r.err);
    run_result_free(&r);
    if (geteuid() == 0) { /* a key file owned by another (non-root) user is refused */
        cr_assert_eq(chown(key, 4242, 4242), 0);
        r = sc_run(&s, "validate", NULL);
        cr_expect_eq(r.status, 2);
        cr_expect(strstr(r.err, "belongs to another user (uid 4242)") != NULL, "%s", r.err);
        run_result_free(&r);
        char *db = path_join(s.dir, "ledger.db");
        chown(key, 0, 0);
        sc_setup(&s, "2030-03-01T15:45:00Z", one);
        cr_assert_eq(chown(db, 4242, 4242), 0);
        r = sc_run(&s, "webhook", "list", NULL);
        cr_expect_eq(r.status, 1);
        cr_expect(strstr(r.err, "the ledger belongs to another user (uid 4242)") != NULL, "%s",
                  r.err);
        run_result_free(&r);
        free(db);
    }
    free(conf);
    free(key);
    scenario_stop(&s);
}

Test(hardening, subscribe_file_is_bounded_input, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    const char *not_files[] = {"/dev/zero", "/tmp"};
    for (size_t i = 0; i < 2; i++) {
        struct run_result r = sc_run(&s, "subscribe", "fleet", "--file", not_files[i], NULL);
        cr_expect_eq(r.status, 2);
        cr_expect(strstr(r.err, "not a regular file") != NULL, "%s: %s", not_files[i], r.err);
        run_result_free(&r);
    }
    char *fifo = path_join(s.dir, "fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    struct run_result r = sc_run(&s, "subscribe", "fleet", "--file", fifo, NULL);
    cr_expect_eq(r.status, 2, "a FIFO is refused, not waited on");
    run_result_free(&r);
    char *csv = path_join(s.dir, "v.csv");
    char long_line[20000];
    memset(long_line, 'x', sizeof long_line - 1);
    long_line[sizeof long_line - 1] = '\0';
    FILE *f = fopen(csv, "wb");
    fprintf(f, "\xef\xbb\xbf"
               "car-1\n");                /* 1: a BOM, skipped */
    fprintf(f, "\"car-2\"\n");            /* 2: quoted */
    fprintf(f, "%s\n", long_line);        /* 3: too long */
    fwrite("car-4\0evil\n", 1, 11, f);    /* 4: a NUL byte */
    fprintf(f, "car-5,only-access\n");    /* 5: access without refresh */
    fprintf(f, "\"car-6\n");              /* 6: a quote left open */
    fprintf(f, "# comment\n\n car-7 \n"); /* 7-9 */
    fclose(f);
    r = sc_run(&s, "subscribe", "fleet", "--file", csv, NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.out, "3 subscribed, 0 already subscribed, 4 bad line(s)") != NULL, "%s",
              r.out);
    cr_expect(strstr(r.err, "v.csv:3: line longer than 16384 bytes") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "v.csv:4: a NUL byte in the line") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "v.csv:5: vehicle car-5: an access token needs its refresh token") !=
                  NULL,
              "%s", r.err);
    cr_expect(strstr(r.err, "v.csv:6: a quoted field is not closed") != NULL, "%s", r.err);
    run_result_free(&r);
    r = sc_run(&s, "subscribe", "fleet", "car-2", NULL);
    cr_expect(strstr(r.err, "already subscribed") != NULL, "\"car-2\" was read as car-2: %s",
              r.err);
    run_result_free(&r);
    free(csv);
    free(fifo);
    scenario_stop(&s);
}

Test(hardening, command_line_input, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    struct run_result r = sc_run(&s, "plan", "--count", "2", "--count", "3", NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "option --count is given twice") != NULL, "%s", r.err);
    run_result_free(&r);
    r = sc_run(&s, "subscribe", "fleet", "car\x1b]0;pwned\x07", NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strchr(r.err, '\x1b') == NULL && strchr(r.err, '\x07') == NULL,
              "control characters are escaped: %s", r.err);
    cr_expect(strstr(r.err, "car\\x1b]0;pwned\\x07") != NULL, "%s", r.err);
    run_result_free(&r);
    r = sc_run(&s, "plan", "--now", "9999-12-31T21:30:00Z", "--count", "5", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "9999-12-31T23:00:00Z") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "10000") == NULL, "no tick past 9999: %s", r.out);
    run_result_free(&r);
    const char *out_of_range[] = {"0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z"};
    for (size_t i = 0; i < 2; i++) {
        r = sc_run(&s, "subscribe", "fleet", "v1", "--now", out_of_range[i], NULL);
        cr_expect_eq(r.status, 2, "%s refused", out_of_range[i]);
        cr_expect(strstr(r.err, "from 1970 to 9999") != NULL, "%s", r.err);
        run_result_free(&r);
    }
    scenario_stop(&s);
}

Test(hardening, environment_proxies_are_ignored, .timeout = 60)
{
    /* a proxy in the environment that nothing answers: the delivery goes direct */
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    struct run_result r;
    const char *env[] = {"http_proxy=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9",
                         "ALL_PROXY=http://127.0.0.1:9", NULL};
    run_metronome((const char *[]){"run", "--clock", "virtual", "--start", "2030-03-01T15:45:00Z",
                                   "--until", "2030-03-01T16:20:00Z", "--config", s.config, NULL},
                  env, &r);
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_result_free(&r);
    cr_expect_eq(sc_payloads(&s), 1);
    scenario_stop(&s);
}

Test(hardening, a_proxied_private_target_is_refused, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.deny_private = 1,
                                               .sink_extra = ", proxy: \"http://127.0.0.1:9\""});
    struct run_result r = sc_run(&s, "webhook", "verify", "fleet", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "refused to send through the proxy: 127.0.0.1 (127.0.0.1) is a "
                            "loopback address") != NULL,
              "%s", r.err);
    run_result_free(&r);
    scenario_stop(&s);
}

Test(hardening, a_key_that_does_not_open_the_tokens_stops_run_before_sending, .timeout = 60)
{
    static const char *const key_a[] = {
        "METRONOME_SECRET_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        NULL};
    static const char *const key_b[] = {
        "METRONOME_SECRET_KEY=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
        NULL};
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    struct run_result r;
    run_metronome((const char *[]){"subscribe", "fleet", "v2", "--access-token", "at",
                                   "--refresh-token", "rt", "--now", "2030-03-01T15:45:00Z",
                                   "--config", s.config, NULL},
                  key_a, &r);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_result_free(&r);
    const char *run_argv[] = {"run",
                              "--clock",
                              "virtual",
                              "--start",
                              "2030-03-01T15:45:00Z",
                              "--until",
                              "2030-03-01T16:30:00Z",
                              "--config",
                              s.config,
                              NULL};
    run_metronome(run_argv, key_b, &r);
    cr_expect_eq(r.status, 1, "a runtime failure: %s", r.err);
    cr_expect(strstr(r.err,
                     "vehicle v2: its stored credentials do not open with this secret key") != NULL,
              "%s", r.err);
    run_result_free(&r);
    cr_expect_eq(sc_payloads(&s), 0, "nothing reached the receiver");
    run_metronome(run_argv, key_a, &r); /* the right key: the jobs were released, not lost */
    cr_expect_eq(r.status, 0, "%s", r.err);
    run_result_free(&r);
    cr_expect_eq(sc_payloads(&s), 2);
    scenario_stop(&s);
}

Test(hardening, connect_names_a_refused_connection, .timeout = 60)
{
    /* a port nothing listens on */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    char source[512];
    snprintf(source, sizeof source,
             "{name: live, plugin: smartcar, client_id: a, client_secret: b, "
             "allow_private_networks: true, auth_url: \"http://127.0.0.1:%u/oauth/token\", "
             "api_url: \"http://127.0.0.1:%u/v2.0\"}",
             ntohs(a.sin_port), ntohs(a.sin_port));
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.source = source});
    struct run_result r =
        sc_run(&s, "connect", "--code", "c", "--redirect-uri", "https://app.example/cb", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "cannot reach http://127.0.0.1:") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "HTTP 0") == NULL, "%s", r.err);
    run_result_free(&r);
    scenario_stop(&s);
}

Test(hardening, the_summary_tells_earlier_deliveries_apart, .timeout = 60)
{
    /* a delivery made by a run that was stopped is settled by the next: the
     * summary says so instead of "deliveries 0: delivered 1" */
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.delivery = "{spread: [1m, 1m]}"});
    receiver_script(&s.r, &(struct receiver_rule){.status = 500, .retry_after = -1}, 1);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:01:10Z"); /* first attempt fails */
    struct run_result r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T16:01:10Z",
                                 "--until", "2030-03-01T16:20:00Z", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "deliveries 0 (+1 made before this run): delivered 1, failed 0") !=
                  NULL,
              "%s", r.out);
    run_result_free(&r);
    scenario_stop(&s);
}

/* The scenario's pipeline with its source replaced by a fixture plugin. */
static void with_fixture_source(struct scenario *s, const char *dir, const char *plugin)
{
    char *conf = read_file(s->config), text[8192], *pp = strstr(conf, "plugin_path:");
    char *src = strstr(conf, "sources:\n"), *sinks = strstr(conf, "sinks:\n");
    cr_assert(pp && src && sinks);
    snprintf(text, sizeof text,
             "%.*splugin_path: [\"%s\", \"%s/%s\"]%.*ssources:\n  - {name: sim, plugin: %s}\n%s",
             (int)(pp - conf), conf, MTR_PLUGIN_DIR, MTR_FIXTURE_DIR, dir,
             (int)(src - strchr(pp, '\n')), strchr(pp, '\n'), plugin, sinks);
    write_file(s->config, text);
    free(conf);
}

Test(hardening, a_source_asking_to_wait_forever_is_bounded, .timeout = 60)
{
    /* Retry-After INT64_MAX from a source: no overflow (UBSan would abort),
     * the next slot is taken, and the gap is delivered at the next tick */
    struct scenario s;
    scenario_start(&s, NULL);
    with_fixture_source(&s, "hostile_source", "hostile");
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T17:30:00Z");
    struct run_result r = sc_run(&s, "deliveries", NULL);
    cr_expect(strstr(r.out, "delivered") != NULL, "%s", r.out);
    run_result_free(&r);
    cr_expect_geq(sc_payloads(&s), 1, "the error reached the receiver as data");
    scenario_stop(&s);
}

Test(hardening, a_source_with_an_unknown_mode_is_refused, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    with_fixture_source(&s, "bad_mode", "badmode");
    struct run_result r = sc_run(&s, "webhook", "verify", "fleet", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "source 'sim' (plugin badmode") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "mode() must answer") != NULL, "%s", r.err);
    run_result_free(&r);
    cr_expect_eq(sc_payloads(&s), 0);
    scenario_stop(&s);
}

Test(hardening, a_test_payload_a_sink_refuses_is_recorded_failed)
{
    /* before, `webhook test` took a refused submit for a delivery (its zeroed
     * outcome read as OK); now it goes through the courier like any delivery */
    struct scenario s;
    scenario_start(&s, NULL);
    add_fixture_sink(&s, "refuser", "wall", "refuser");
    struct run_result r = sc_run(&s, "webhook", "test", "fleet", NULL);
    cr_expect_eq(r.status, 1, "a refused test is a failure: %s%s", r.out, r.err);
    cr_expect(strstr(r.out, "callback: delivered") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "wall: failed") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "the sink refused it") != NULL, "%s", r.out);
    run_result_free(&r);
    json_t *d = sc_deliveries(&s);
    size_t i, refused = 0;
    json_t *x;
    json_array_foreach(d, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "sink")), "wall") == 0)
            refused += strcmp(json_string_value(json_object_get(x, "state")), "failed") == 0;
    }
    cr_expect_eq(refused, 1, "the refused test delivery is recorded failed");
    json_decref(d);
    scenario_stop(&s);
}
