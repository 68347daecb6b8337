/* The command line end to end: exit statuses, --help everywhere, options
 * before or after arguments, `plan` output in time order, `plugins` listing,
 * and the demo pipeline validating out of the box. */
#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const plugin_env[] = {"METRONOME_PLUGIN_PATH=" MTR_PLUGIN_DIR, NULL};

static struct run_result run(const char *const *argv)
{
    struct run_result r;
    run_metronome(argv, plugin_env, &r);
    return r;
}

static void expect_status(const char *const *argv, int status, const char *err_part)
{
    struct run_result r = run(argv);
    cr_expect_eq(r.status, status, "%s: exit %d (stderr: %s)", argv[0], r.status, r.err);
    if (err_part)
        cr_expect(strstr(r.err, err_part) != NULL, "stderr '%s' lacks '%s'", r.err, err_part);
    run_result_free(&r);
}

static char *four_webhooks(void)
{
    char *dir = make_tmpdir(), *path = path_join(dir, "p.yaml");
    write_file(path, "version: 1\n"
                     "application: {management_token: \"${MTR_T_AMT:-amt}\"}\n"
                     "store: {plugin: sqlite}\n"
                     "sources: [{name: sim, plugin: simulated}]\n"
                     "sinks: [{name: out, plugin: http}]\n"
                     "webhooks:\n"
                     "  - {name: hourly, callback_uri: 'https://e.com/h', cadence: {policy: "
                     "hourly}, endpoints: [/odometer], sinks: [out]}\n"
                     "  - {name: daily, callback_uri: 'https://e.com/h', cadence: {policy: daily, "
                     "at: '16:30'}, endpoints: [/fuel], sinks: [out]}\n"
                     "  - {name: month-end, callback_uri: 'https://e.com/h', cadence: {policy: "
                     "monthly, day: 31}, endpoints: [/battery], sinks: [out]}\n"
                     "  - {name: also-hourly, callback_uri: 'https://e.com/h', cadence: hourly, "
                     "endpoints: [/odometer], sinks: [out]}\n");
    free(dir);
    return path;
}

Test(cli, version_and_help)
{
    const char *version[] = {"--version", NULL};
    struct run_result r = run(version);
    cr_expect_eq(r.status, 0);
    cr_expect(strncmp(r.out, "metronome 0.1.0", 15) == 0, "%s", r.out);
    run_result_free(&r);
    const char *help[] = {"--help", NULL};
    r = run(help);
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "usage: metronome COMMAND") != NULL);
    run_result_free(&r);
    const char *commands[] = {"validate", "plan", "plugins"};
    for (size_t i = 0; i < 3; i++) {
        const char *argv[] = {commands[i], "--help", NULL};
        r = run(argv);
        cr_expect_eq(r.status, 0, "%s --help", commands[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: metronome %s", commands[i]);
        cr_expect(strstr(r.out, want) != NULL, "%s --help printed %s", commands[i], r.out);
        cr_expect(strstr(r.out, "--config") != NULL);
        run_result_free(&r);
    }
}

Test(cli, bad_usage_exits_2)
{
    const char *none[] = {NULL};
    expect_status(none, 2, "usage: metronome COMMAND");
    const char *unknown[] = {"frobnicate", NULL};
    expect_status(unknown, 2, "unknown command 'frobnicate'");
    const char *bad_opt[] = {"plan", "--frm", "x", NULL};
    expect_status(bad_opt, 2, "metronome plan: unknown option '--frm' (see metronome plan --help)");
    const char *no_value[] = {"plan", "--count", NULL};
    expect_status(no_value, 2, "option --count needs a value");
    const char *bad_now[] = {"plan", "--now", "tomorrow", NULL};
    expect_status(bad_now, 2, "--now: bad instant 'tomorrow'");
    const char *bad_from[] = {"plan", "--from", "2030-02-30T00:00:00Z", NULL};
    expect_status(bad_from, 2, "--from: bad instant '2030-02-30T00:00:00Z'");
    const char *bad_count[] = {"plan", "--count", "-1", NULL};
    expect_status(bad_count, 2, "--count: want a number");
    const char *extra[] = {"validate", "surplus", NULL};
    expect_status(extra, 2, "unexpected argument 'surplus'");
    const char *flag_value[] = {"plugins", "--markdown=yes", NULL};
    expect_status(flag_value, 2, "option --markdown takes no value");
    const char *missing[] = {"validate", "--config", "/nonexistent/pipeline.yaml", NULL};
    expect_status(missing, 2, "/nonexistent/pipeline.yaml: cannot open: No such file");
}

Test(cli, plan_prints_ticks_in_time_order)
{
    char *path = four_webhooks();
    const char *argv[] = {"plan",    "--config", path, "--from", "2030-03-30T15:45:00Z",
                          "--count", "8",        NULL};
    struct run_result r = run(argv);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "hourly 2030-03-30T16:00:00Z\n"
                            "also-hourly 2030-03-30T16:00:00Z\n"
                            "daily 2030-03-30T16:30:00Z\n"
                            "hourly 2030-03-30T17:00:00Z\n"
                            "also-hourly 2030-03-30T17:00:00Z\n"
                            "hourly 2030-03-30T18:00:00Z\n"
                            "also-hourly 2030-03-30T18:00:00Z\n"
                            "hourly 2030-03-30T19:00:00Z\n");
    run_result_free(&r);
    /* options before the command, --now as the start, one webhook */
    const char *month[] = {"--config", path,        "--now",     "2030-01-31T00:00:00Z",
                           "plan",     "--webhook", "month-end", "--count",
                           "4",        NULL};
    r = run(month);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "month-end 2030-02-28T00:00:00Z\n"
                            "month-end 2030-03-31T00:00:00Z\n"
                            "month-end 2030-04-30T00:00:00Z\n"
                            "month-end 2030-05-31T00:00:00Z\n");
    run_result_free(&r);
    const char *unknown[] = {"plan", "--config", path, "--webhook", "nope", NULL};
    expect_status(unknown, 2, "unknown webhook 'nope'");
    free(path);
}

Test(cli, plan_default_count_and_config_from_environment)
{
    char *path = four_webhooks();
    char env_config[1024];
    snprintf(env_config, sizeof env_config, "METRONOME_CONFIG=%s", path);
    const char *env[] = {"METRONOME_PLUGIN_PATH=" MTR_PLUGIN_DIR, env_config, NULL};
    const char *argv[] = {"plan", "--now", "2030-03-01T15:45:00Z", "--webhook", "hourly", NULL};
    struct run_result r;
    run_metronome(argv, env, &r);
    cr_expect_eq(r.status, 0, "%s", r.err);
    size_t lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 10, "default --count is 10: %s", r.out);
    cr_expect(strncmp(r.out, "hourly 2030-03-01T16:00:00Z\n", 28) == 0, "%s", r.out);
    run_result_free(&r);
    free(path);
}

Test(cli, plugins_lists_every_plugin_with_options)
{
    const char *argv[] = {"plugins", NULL};
    struct run_result r = run(argv);
    cr_expect_eq(r.status, 0, "%s", r.err);
    const char *want[] = {"cadence  hourly",
                          "cadence  cron",
                          "cadence  weekly",
                          "cadence  monthly",
                          "cadence  interval",
                          "cadence  daily",
                          "source   simulated",
                          "store    sqlite",
                          "sink     http",
                          "sink     file",
                          "timeout (duration, default 15s): a delivery without a 2xx",
                          "expr (string, required)"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_expect(strstr(r.out, want[i]) != NULL, "plugins lacks '%s'", want[i]);
    run_result_free(&r);
    const char *md[] = {"plugins", "--markdown", NULL};
    r = run(md);
    cr_expect(strstr(r.out, "| `concurrency` | int | 64 | deliveries in flight at once |") != NULL,
              "%s", r.out);
    run_result_free(&r);
}

Test(cli, secrets_stay_out_of_every_output)
{
    char *path = four_webhooks();
    const char *secret = "MTR_T_AMT=amt-5ecret-9d2";
    const char *env[] = {"METRONOME_PLUGIN_PATH=" MTR_PLUGIN_DIR, secret, NULL};
    const char *cmds[][8] = {
        {"validate", "--config", path, NULL},
        {"plan", "--config", path, "--count", "3", NULL},
        {"plugins", "--config", path, NULL},
        {"plan", "--config", path, "--webhook", "nope", NULL},
    };
    for (size_t i = 0; i < 4; i++) {
        struct run_result r;
        run_metronome(cmds[i], env, &r);
        cr_expect(strstr(r.out, "5ecret") == NULL && strstr(r.err, "5ecret") == NULL,
                  "%s printed the secret", cmds[i][0]);
        run_result_free(&r);
    }
    free(path);
}

Test(cli, the_demo_pipeline_validates_and_plans)
{
    cr_assert_eq(chdir(MTR_SOURCE_DIR), 0);
    char build[1024];
    snprintf(build, sizeof build, "METRONOME_BUILD_DIR=%s", MTR_PLUGIN_DIR);
    *strrchr(build, '/') = '\0'; /* .../plugins -> the build directory */
    const char *env[] = {build, "METRONOME_PLUGIN_PATH=", NULL};
    const char *validate[] = {"validate", "--config", "configs/demo.yaml", NULL};
    struct run_result r;
    run_metronome(validate, env, &r);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "ok\n");
    run_result_free(&r);
    const char *plan[] = {
        "plan", "--config", "configs/demo.yaml", "--now", "2030-03-01T05:45:00Z", "--count",
        "3",    NULL};
    run_metronome(plan, env, &r);
    cr_expect_str_eq(r.out, "fleet-hourly 2030-03-01T06:00:00Z\n"
                            "fleet-daily 2030-03-01T06:30:00Z\n"
                            "fleet-hourly 2030-03-01T07:00:00Z\n");
    run_result_free(&r);
}
