/* The loader against a fixture shared object for every way a plugin can be
 * broken: each is refused with a message naming the file, and the daemon's
 * `validate` reports it with exit status 2. */
#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *fixture(const char *dir, const char *file)
{
    char *d = path_join(MTR_FIXTURE_DIR, dir);
    char *p = path_join(d, file);
    free(d);
    return p;
}

static void expect_refused(const char *dir, const char *message)
{
    char *path = fixture(dir, dir);
    size_t len = strlen(path) + 4;
    char *so = malloc(len);
    cr_assert_not_null(so);
    snprintf(so, len, "%s.so", path);
    struct plugin_file pf;
    struct diag d;
    cr_expect_eq(plugin_open(so, &pf, &d), -1, "%s should be refused", so);
    cr_expect(strstr(d.text, so) != NULL, "message names the file: %s", d.text);
    cr_expect(strstr(d.text, message) != NULL, "got '%s', want '%s'", d.text, message);
    cr_expect_null(pf.dl);
    free(so);
    free(path);
}

Test(loader, accepts_a_good_plugin)
{
    char *so = fixture("good", "good.so");
    struct plugin_file pf;
    struct diag d;
    cr_assert_eq(plugin_open(so, &pf, &d), 0, "%s", d.text);
    cr_expect_str_eq(pf.desc.name, "fixture");
    cr_expect_eq(pf.desc.kind, MTR_KIND_SINK);
    plugin_close(&pf);
    free(so);
}

Test(loader, refuses_no_entry_symbol)
{
    expect_refused("no_entry", "no exported mtr_plugin_entry() symbol (define it with "
                               "MTR_PLUGIN_DEFINE(descriptor)");
}

Test(loader, refuses_an_ops_table_without_struct_size)
{
    expect_refused("ops_size_zero", "its sink operations table declares struct_size 0; ABI 1.0 "
                                    "needs at least 32 (write .struct_size = sizeof(struct "
                                    "mtr_sink_ops))");
}

Test(loader, refuses_what_is_not_a_regular_file)
{
    char *dir = make_tmpdir();
    char *fifo = path_join(dir, "plugin.so");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    struct plugin_file pf;
    struct diag d;
    cr_expect_eq(plugin_open(fifo, &pf, &d), -1);
    cr_expect(strstr(d.text, "not a regular file") != NULL, "%s", d.text);
    free(fifo);
    free(dir);
}

Test(loader, names_the_required_operation_a_plugin_lacks)
{
    expect_refused("no_submit", "sink plugin 'nosubmit' lacks the required operation 'submit'");
}

Test(loader, refuses_wrong_magic)
{
    expect_refused("bad_magic", "wrong magic 0xdeadbeef");
}

Test(loader, refuses_another_major)
{
    char want[128];
    snprintf(want, sizeof want, "built for plugin ABI 2.%d; this metronome speaks ABI 1.x",
             MTR_ABI_MINOR);
    expect_refused("abi_major", want);
}

Test(loader, refuses_a_newer_minor)
{
    char want[128];
    snprintf(want, sizeof want, "newer than this metronome's 1.%d", MTR_ABI_MINOR);
    expect_refused("abi_minor", want);
}

Test(loader, refuses_a_short_descriptor)
{
    char want[128];
    snprintf(want, sizeof want, "descriptor is 24 bytes; ABI 1.%d needs at least 112",
             MTR_ABI_MINOR);
    expect_refused("short", want);
}

Test(loader, refuses_an_unresolved_symbol)
{
    expect_refused("undefined", "mtr_fixture_symbol_nobody_defines");
}

Test(loader, refuses_a_bad_declared_default)
{
    expect_refused("bad_default", "option 'pause' has a bad default");
}

Test(loader, refuses_two_plugins_with_one_name)
{
    char *dir = path_join(MTR_FIXTURE_DIR, "dup");
    const char *dirs[] = {dir};
    struct registry r;
    struct diag d;
    cr_expect_eq(registry_scan(&r, dirs, 1, &d), -1);
    cr_expect(strstr(d.text, "two plugins named 'twin' in one directory") != NULL, "%s", d.text);
    cr_expect(strstr(d.text, "dup_a.so") && strstr(d.text, "dup_b.so"), "%s", d.text);
    free(dir);
}

Test(loader, earlier_directories_shadow_later_ones)
{
    char *shadow = path_join(MTR_FIXTURE_DIR, "shadow");
    const char *first[] = {shadow, MTR_PLUGIN_DIR}, *last[] = {MTR_PLUGIN_DIR, shadow};
    struct registry r;
    struct diag d;
    cr_assert_eq(registry_scan(&r, first, 2, &d), 0, "%s", d.text);
    cr_expect_eq(registry_find(&r, "hourly")->desc.kind, MTR_KIND_SINK);
    registry_free(&r);
    cr_assert_eq(registry_scan(&r, last, 2, &d), 0, "%s", d.text);
    cr_expect_eq(registry_find(&r, "hourly")->desc.kind, MTR_KIND_CADENCE);
    registry_free(&r);
    free(shadow);
}

/* A pipeline whose plugin_path holds the fixture directory `dir`. */
static char *pipeline(const char *tmp, const char *dir, const char *sinks, const char *cadence)
{
    char *fixdir = path_join(MTR_FIXTURE_DIR, dir);
    char *path = path_join(tmp, "pipeline.yaml");
    char text[4096];
    snprintf(text, sizeof text,
             "version: 1\n"
             "application: {management_token: t0ken}\n"
             "plugin_path: [%s, %s]\n"
             "store: {plugin: sqlite, path: %s/db}\n"
             "sources: [{name: sim, plugin: simulated}]\n"
             "sinks:\n%s"
             "webhooks:\n"
             "  - name: w\n"
             "    callback_uri: https://example.com/hook\n"
             "    cadence: %s\n"
             "    endpoints: [/odometer]\n"
             "    sinks: [s]\n",
             fixdir, MTR_PLUGIN_DIR, tmp, sinks, cadence);
    write_file(path, text);
    free(fixdir);
    return path;
}

static void validate_expect(const char *path, int status, const char *message)
{
    const char *argv[] = {"validate", "--config", path, NULL};
    struct run_result r;
    run_metronome(argv, NULL, &r);
    cr_expect_eq(r.status, status, "exit %d, stderr: %s", r.status, r.err);
    cr_expect(strstr(r.err, message) != NULL, "got '%s', want '%s'", r.err, message);
    run_result_free(&r);
}

Test(loader, create_failure_reaches_the_user_and_leaks_nothing)
{
    char *tmp = make_tmpdir();
    char *path = pipeline(tmp, "create_fails", "  - {name: s, plugin: failing, attempts: 7}\n",
                          "{policy: hourly}");
    char where[512];
    snprintf(where, sizeof where,
             "%s:7:5: sink 's' (failing): cannot reach the moon (attempted 7 times)", path);
    /* under ASan, a leaked half-built state would fail the run with exit 1 */
    validate_expect(path, 2, where);
    free(path);
    free(tmp);
}

Test(loader, a_kind_that_does_not_fit_is_refused_at_its_node)
{
    char *tmp = make_tmpdir();
    char *path = pipeline(tmp, "good", "  - {name: s, plugin: http}\n", "{policy: fixture}");
    char where[512];
    snprintf(where, sizeof where, "%s:11:23: plugin 'fixture' (", path);
    validate_expect(path, 2, where);
    validate_expect(path, 2, "good.so) is a sink plugin, but it is used here as a cadence policy");
    free(path);
    free(tmp);
}

Test(loader, a_broken_plugin_on_the_path_fails_validate)
{
    char *tmp = make_tmpdir();
    char *path = pipeline(tmp, "bad_magic", "  - {name: s, plugin: http}\n", "{policy: hourly}");
    validate_expect(path, 2, "bad_magic.so: not a metronome plugin (wrong magic 0xdeadbeef)");
    free(path);
    free(tmp);
}

Test(loader, a_good_third_party_sink_validates)
{
    char *tmp = make_tmpdir();
    char *path =
        pipeline(tmp, "good", "  - {name: s, plugin: fixture, pause: 2s}\n", "{policy: hourly}");
    validate_expect(path, 0, "");
    free(path);
    free(tmp);
}
