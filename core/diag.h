/* Diagnostics: one error message in the FILE:LINE:COLUMN: text form every
 * operator-facing error uses, plus the exit statuses of SPEC section 6. */
#ifndef MTR_DIAG_H
#define MTR_DIAG_H

#include <metronome/plugin.h>

enum exit_status {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,
    EXIT_BAD_INPUT = 2,
};

struct diag {
    char text[2048];
    char field[128]; /* the JSON field the message is about ("cadence.every"), or "" */
};

/* Formats "file:line:col: message" into d; returns -1 so callers can
 * `return diag_at(...)`. line/col are 1-based; 0 omits them. */
int diag_at(struct diag *d, const char *file, int line, int col, const char *fmt, ...)
    MTR_PRINTF(5, 6);

/* Formats a message with no position. Returns -1. */
int diag_set(struct diag *d, const char *fmt, ...) MTR_PRINTF(2, 3);

#endif
