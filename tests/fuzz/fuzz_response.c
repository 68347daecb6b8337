/* libFuzzer target: what a receiver answers, as metronome reads it - a
 * Retry-After header value (delta-seconds or an HTTP-date, saturated), the
 * body of a verify answer, and the whole answer as the http sink's own
 * reader takes it (plugins/sink_http/response.c), whole and in small reads.
 * Nothing crashes, a wait is never negative nor past the cap, a failure
 * always says why, and the body kept never passes its cap. */
#include "payload.h"
#include "response.h"

#include <metronome/util.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds the answer in reads of step bytes, as the sink does from a socket. */
static void read_answer(const char *text, size_t size, size_t step)
{
    struct response r;
    char *buf = malloc(size + 1);
    size_t have = 0, at = 0;
    if (!buf)
        return;
    response_begin(&r, 1900000000);
    while (at < size && r.state != RESPONSE_DONE && r.state != RESPONSE_FAILED) {
        size_t n = size - at < step ? size - at : step;
        memcpy(buf + have, text + at, n);
        have += n;
        at += n;
        size_t used = response_feed(&r, buf, have);
        if (used > have)
            abort();
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    response_eof(&r);
    if ((r.state == RESPONSE_FAILED && r.error[0] == '\0') || r.body_len > RESPONSE_MAX ||
        (r.state != RESPONSE_DONE && r.state != RESPONSE_FAILED) ||
        r.retry_after_s > MTR_RETRY_AFTER_MAX)
        abort();
    response_end(&r);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t secs;
    const char *text = (const char *)data;
    mtr_time now = 1900000000;
    if (mtr_parse_retry_after(text, size, now, &secs) == 0) {
        if (secs < 0 || secs > MTR_RETRY_AFTER_MAX)
            abort();
    } else if (secs != -1) {
        abort();
    }
    char why[256];
    static const char expected[] =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    int rc = payload_check_challenge(text, size, expected, why, sizeof why);
    if (rc != 0 && why[0] == '\0')
        abort();
    read_answer(text, size, size ? size : 1);
    read_answer(text, size, 3);
    return 0;
}
