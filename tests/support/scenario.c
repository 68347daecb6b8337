/* End-to-end scenario helpers. */
#include "scenario.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The scenario's store: SQLite in its directory, or - with
 * $METRONOME_TEST_PG_DSN set - a schema of its own in that PostgreSQL
 * database (tests/pg/run.sh runs the end-to-end suites so). */
static void store_block(const char *dir, char *out, size_t len)
{
    const char *dsn = getenv("METRONOME_TEST_PG_DSN");
    if (!dsn || !*dsn) {
        snprintf(out, len, "{plugin: sqlite, path: \"%s/ledger.db\"}", dir);
        return;
    }
    char schema[64];
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    size_t k = (size_t)snprintf(schema, sizeof schema, "e2e_");
    for (; *base && k + 1 < sizeof schema; base++)
        schema[k++] = (*base >= 'A' && *base <= 'Z') ? (char)(*base - 'A' + 'a')
                      : ((*base >= 'a' && *base <= 'z') || (*base >= '0' && *base <= '9')) ? *base
                                                                                           : '_';
    schema[k] = '\0';
    snprintf(out, len, "{plugin: postgres, dsn: \"%s\", schema: %s}", dsn, schema);
}

/* The receiver over TLS with a certificate for 127.0.0.1 made by openssl in
 * the scenario's directory; with trusted, ca gets the sink option trusting it. */
static void start_tls_receiver(struct scenario *s, int trusted, char *ca, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem "
             "-out %s/cert.pem 2>/dev/null",
             s->dir, s->dir);
    cr_assert_eq(system(cmd), 0, "openssl makes a certificate");
    char *cert_path = path_join(s->dir, "cert.pem"), *key_path = path_join(s->dir, "key.pem");
    char *cert = read_file(cert_path), *key = read_file(key_path);
    cr_assert(cert && key);
    cr_assert_eq(receiver_start_tls(&s->r, 0, SCENARIO_TOKEN, cert, key), 0, "TLS receiver");
    if (trusted)
        snprintf(ca, size, ", ca_file: \"%s\"", cert_path);
    free(cert);
    free(key);
    free(cert_path);
    free(key_path);
}

void scenario_start(struct scenario *s, const struct scenario_opts *o)
{
    static const struct scenario_opts none = {0};
    if (!o)
        o = &none;
    memset(s, 0, sizeof *s);
    s->dir = make_tmpdir();
    char ca[1200] = "";
    if (o->tls)
        start_tls_receiver(s, o->tls == 1, ca, sizeof ca);
    else
        cr_assert_eq(receiver_start(&s->r, 0, SCENARIO_TOKEN), 0, "receiver");
    s->config = path_join(s->dir, "pipeline.yaml");
    char callback[256], text[8192], store[1024], sink_extra[2048];
    store_block(s->dir, store, sizeof store);
    snprintf(callback, sizeof callback, "%s://127.0.0.1:%u/hook", o->tls ? "https" : "http",
             s->r.port);
    snprintf(sink_extra, sizeof sink_extra, "%s%s", ca, o->sink_extra ? o->sink_extra : "");
    snprintf(text, sizeof text,
             "version: 1\n"
             "application: {management_token: %s}\n"
             "plugin_path: [\"%s\"]\n"
             "store: %s\n"
             "sources:\n  - %s%s%s\n"
             "sinks:\n"
             "  - {name: callback, plugin: http, timeout: 2s, allow_private_networks: %s%s}\n"
             "webhooks:\n"
             "  - name: fleet\n"
             "    callback_uri: %s\n"
             "    cadence: %s\n"
             "    endpoints: [/odometer, /location, /tires/pressure]\n"
             "    sinks: [callback]\n%s"
             "%s%s%s%s",
             SCENARIO_TOKEN, MTR_PLUGIN_DIR, store,
             o->source ? o->source : "{name: sim, plugin: simulated, seed: 7",
             o->source_extra ? o->source_extra : "", o->source ? "" : "}",
             o->deny_private ? "false" : "true", sink_extra, o->callback ? o->callback : callback,
             o->cadence ? o->cadence : "{policy: hourly}", o->webhook_extra ? o->webhook_extra : "",
             o->delivery ? "delivery: " : "", o->delivery ? o->delivery : "",
             o->delivery ? "\n" : "", o->extra ? o->extra : "");
    write_file(s->config, text);
}

void scenario_stop(struct scenario *s)
{
    receiver_stop(&s->r);
    free(s->config);
    free(s->dir);
}

static struct run_result vrun(struct scenario *s, const char *first, va_list ap)
{
    const char *argv[32];
    size_t n = 0;
    for (const char *a = first; a && n < 29; a = va_arg(ap, const char *))
        argv[n++] = a;
    argv[n++] = "--config";
    argv[n++] = s->config;
    argv[n] = NULL;
    static const char *const env[] = {"METRONOME_PLUGIN_PATH=", NULL};
    struct run_result r;
    run_metronome(argv, env, &r);
    return r;
}

struct run_result sc_run(struct scenario *s, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    struct run_result r = vrun(s, first, ap);
    va_end(ap);
    return r;
}

void sc_ok(struct scenario *s, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    struct run_result r = vrun(s, first, ap);
    va_end(ap);
    cr_assert_eq(r.status, 0, "metronome %s: exit %d\nstdout: %s\nstderr: %s", first, r.status,
                 r.out, r.err);
    run_result_free(&r);
}

void sc_setup(struct scenario *s, const char *now, const char *const *vehicles)
{
    sc_ok(s, "webhook", "verify", "fleet", "--now", now, NULL);
    for (size_t i = 0; vehicles && vehicles[i]; i++)
        sc_ok(s, "subscribe", "fleet", vehicles[i], "--now", now, NULL);
}

void sc_virtual(struct scenario *s, const char *from, const char *until)
{
    sc_ok(s, "run", "--clock", "virtual", "--start", from, "--until", until, NULL);
}

json_t *sc_deliveries(struct scenario *s)
{
    struct run_result r = sc_run(s, "deliveries", "--json", "--limit", "100000", NULL);
    cr_assert_eq(r.status, 0, "deliveries: %s", r.err);
    json_error_t je;
    json_t *v = json_loads(r.out, 0, &je);
    cr_assert_not_null(v, "deliveries --json is not JSON: %s", je.text);
    run_result_free(&r);
    return v;
}

size_t sc_payloads(struct scenario *s)
{
    return receiver_count_event(&s->r, "scheduled");
}
