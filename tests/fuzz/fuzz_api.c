/* libFuzzer target: arbitrary requests to the admin API's router and JSON
 * handlers (api_handle), with a real SQLite ledger and the simulated source.
 * Input: one byte choosing the method, the request target up to a newline,
 * an Authorization line ("A": the admin token, "M": the management token,
 * anything else: that text as a bearer), then the body. No engine runs, so
 * verify, test, status and metrics answer 503; everything else reaches the
 * ledger. Any crash, leak or sanitizer report is a finding. */
#include "api.h"
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct api *api;
static struct config *config;
static struct clock clk;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/metronome-fuzz-api-XXXXXX", path[256], text[2048];
    struct diag d;
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/pipeline.yaml", dir);
    snprintf(text, sizeof text,
             "version: 1\n"
             "application: {management_token: fuzz-amt}\n"
             "plugin_path: [\"%s\"]\n"
             "store: {plugin: sqlite, path: \"%s/ledger.db\", synchronous: off}\n"
             "sources: [{name: sim, plugin: simulated}]\n"
             "sinks: [{name: callback, plugin: http}]\n"
             "webhooks:\n"
             "  - {name: fleet, callback_uri: \"http://127.0.0.1:9/x\", cadence: {policy: "
             "hourly}, endpoints: [/odometer], sinks: [callback]}\n"
             "admin: {listen: \"127.0.0.1:0\", token: fuzz-admin}\n",
             MTR_PLUGIN_DIR, dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
    clock_init_wall(&clk);
    if (config_load(path, &clk, &config, &d) != 0 || !(api = api_create(config, &clk, NULL, &d))) {
        fprintf(stderr, "fuzz_api: %s\n", d.text);
        abort();
    }
    return 0;
}

/* The next line of [*p, end) as a NUL-terminated copy. */
static char *line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *stop = nl ? nl : end;
    char *out = malloc((size_t)(stop - *p) + 1);
    memcpy(out, *p, (size_t)(stop - *p));
    out[stop - *p] = '\0';
    *p = nl ? nl + 1 : end;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"};
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1, *end = data + size;
    char *target = line(&p, end), *auth_line = line(&p, end), auth[512];
    if (strcmp(auth_line, "A") == 0)
        snprintf(auth, sizeof auth, "Bearer fuzz-admin");
    else if (strcmp(auth_line, "M") == 0)
        snprintf(auth, sizeof auth, "Bearer fuzz-amt");
    else
        snprintf(auth, sizeof auth, "%s", auth_line);
    struct api_request rq = {.method = methods[data[0] % 6],
                             .target = target,
                             .authorization = auth[0] ? auth : NULL,
                             .body = (const char *)p,
                             .body_len = (size_t)(end - p)};
    struct api_response rs;
    api_handle(api, &rq, &rs);
    if (!rs.body || rs.status < 200 || rs.status > 599)
        abort(); /* every request gets an answer */
    api_response_free(&rs);
    free(target);
    free(auth_line);
    return 0;
}
