/* The HTTP client's own ceiling: a bare libcurl multi client - the library the
 * http sink is built on, driven the same way (curl_multi_perform and
 * curl_multi_poll, one easy handle per request, 64 connections) - POSTing one
 * fixed body with metronome's headers to the receiver as fast as it can,
 * with no ledger, no JSON and no signing. `bench/run.sh` runs it beside wrk
 * and metronome so the three are read against each other.
 *
 * For an https:// URL, CA_FILE is the certificate to trust (bench/https.sh
 * makes one); HTTP/2 is libcurl's default there when the receiver offers it.
 *
 *   bench_curl URL BODY_BYTES REQUESTS [CONNECTIONS [CA_FILE]] */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t discard(char *p, size_t size, size_t n, void *u)
{
    (void)p;
    (void)u;
    return size * n;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *ca_file; /* NULL: the system's */

static void start(CURLM *m, CURL *e, const char *url, const char *body, size_t len,
                  struct curl_slist *headers)
{
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_multi_add_handle(m, e);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_curl URL BODY_BYTES REQUESTS [CONNECTIONS [CA_FILE]]\n");
        return 2;
    }
    const char *url = argv[1];
    size_t len = strtoul(argv[2], NULL, 10);
    long total = strtol(argv[3], NULL, 10), conns = argc > 4 ? strtol(argv[4], NULL, 10) : 64;
    ca_file = argc > 5 ? argv[5] : NULL;
    char *body = malloc(len + 1);
    CURL **easy = calloc((size_t)conns, sizeof *easy);
    if (!body || !easy || total <= 0 || conns <= 0)
        return 2;
    memset(body, 'x', len);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, conns);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "SC-Signature: "
                             "0000000000000000000000000000000000000000000000000000000000000000");
    h = curl_slist_append(h, "User-Agent: metronome/bench");
    h = curl_slist_append(h, "Metronome-Delivery-Id: 00000000-0000-8000-8000-000000000000");
    long started = 0, done = 0, failed = 0;
    double t0 = seconds();
    for (long i = 0; i < conns && started < total; i++, started++) {
        easy[i] = curl_easy_init();
        start(m, easy[i], url, body, len, h);
    }
    while (done < total) {
        int running, msgs;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &msgs)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            failed += msg->data.result != CURLE_OK || status < 200 || status > 299;
            done++;
            CURL *e = msg->easy_handle;
            curl_multi_remove_handle(m, e);
            if (started < total) {
                start(m, e, url, body, len, h);
                started++;
            }
        }
        if (done < total)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double t = seconds() - t0;
    printf("%.0f requests/s (%ld requests, %ld failed, %.2f s)\n", (double)total / t, total, failed,
           t);
    for (long i = 0; i < conns; i++)
        if (easy[i])
            curl_easy_cleanup(easy[i]);
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    free(easy);
    free(body);
    return failed ? 1 : 0;
}
