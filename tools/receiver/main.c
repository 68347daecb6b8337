/* metronome-receiver: a small webhook receiver for the demo. It answers
 * verify challenges, checks every payload's SC-Signature with the management
 * token, appends a JSON line per request to --log, and prints a summary when
 * stopped (SIGTERM, SIGINT, or after --for seconds). */
#include "receiver.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: metronome-receiver [--port N] [--token T] [--log FILE] "
                    "[--for SECONDS] [--flaky N]\n(--flaky N answers 503 to every N-th payload; "
                    "the token defaults to $METRONOME_MANAGEMENT_TOKEN)\n");
    return 2;
}

int main(int argc, char **argv)
{
    long port = 8845, seconds = 0, flaky = 0;
    const char *token = getenv("METRONOME_MANAGEMENT_TOKEN"), *log = NULL;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(argv[i], "--port") == 0 && v) {
            port = strtol(v, &end, 10);
            if (*end || port < 0 || port > 65535)
                return usage();
        } else if (strcmp(argv[i], "--token") == 0 && v) {
            token = v;
        } else if (strcmp(argv[i], "--log") == 0 && v) {
            log = v;
        } else if (strcmp(argv[i], "--flaky") == 0 && v) {
            flaky = strtol(v, &end, 10);
            if (*end || flaky < 0)
                return usage();
        } else if (strcmp(argv[i], "--for") == 0 && v) {
            seconds = strtol(v, &end, 10);
            if (*end || seconds < 0)
                return usage();
        } else {
            return usage();
        }
    }
    if (!token || !*token) {
        fprintf(stderr, "metronome-receiver: no management token (--token or "
                        "$METRONOME_MANAGEMENT_TOKEN)\n");
        return 2;
    }
    struct receiver r;
    if (receiver_start(&r, (unsigned short)port, token) != 0) {
        fprintf(stderr, "metronome-receiver: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    r.flaky_every = (unsigned)flaky;
    if (log && !(r.log_file = fopen(log, "a"))) {
        fprintf(stderr, "metronome-receiver: cannot open %s\n", log);
        receiver_stop(&r);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("metronome-receiver: listening on http://127.0.0.1:%u/\n", r.port);
    fflush(stdout);
    for (long waited = 0; !stop && (seconds == 0 || waited < seconds * 10); waited++) {
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    size_t n = receiver_count(&r), payloads = 0, good = 0, verify = 0;
    for (size_t i = 0; i < n; i++) {
        struct received x;
        if (receiver_get(&r, i, &x) != 0)
            continue;
        int scheduled = x.event && strcmp(x.event, "scheduled") == 0;
        payloads += scheduled;
        good += scheduled && x.signature_ok;
        verify += x.event && strcmp(x.event, "verify") == 0;
        received_free(&x);
    }
    printf("metronome-receiver: %zu requests: %zu payloads (%zu with a valid SC-Signature, %zu "
           "without), %zu verify challenges\n",
           n, payloads, good, payloads - good, verify);
    if (r.log_file)
        fclose(r.log_file);
    receiver_stop(&r);
    return payloads == good ? 0 : 1;
}
