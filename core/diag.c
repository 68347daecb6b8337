/* Diagnostics: formatting of positioned error messages. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>

int diag_at(struct diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    int n;
    d->field[0] = '\0';
    if (line > 0)
        n = snprintf(d->text, sizeof d->text, "%s:%d:%d: ", file, line, col);
    else
        n = snprintf(d->text, sizeof d->text, "%s: ", file);
    if (n < 0 || (size_t)n >= sizeof d->text)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->text + n, sizeof d->text - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

int diag_set(struct diag *d, const char *fmt, ...)
{
    va_list ap;
    d->field[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(d->text, sizeof d->text, fmt, ap);
    va_end(ap);
    return -1;
}
