/* libFuzzer target: what a receiver answers, as metronome reads it - a
 * Retry-After header value (delta-seconds or an HTTP-date, saturated) and
 * the body of a verify answer. Nothing crashes, and a wait is never negative
 * nor past the cap. */
#include "payload.h"

#include <metronome/util.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    return 0;
}
