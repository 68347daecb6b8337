/* Logging to stderr, one line a message, with a level filter. Callers never
 * pass secret values here; secret options are not even readable by name
 * through anything that logs. */
#ifndef MTR_LOG_H
#define MTR_LOG_H

#include <stdarg.h>
#include <metronome/plugin.h>

enum log_format {
    LOG_TEXT = 0,
    LOG_JSON = 1,
};

void log_set_level(int level);   /* enum mtr_log_level; default MTR_LOG_INFO */
void log_set_format(int format); /* enum log_format; default LOG_TEXT */
/* "error", "warn", "info", "debug" <-> enum mtr_log_level (-1: not a level) */
const char *log_level_name(int level);
int log_level_parse(const char *name);
int log_level(void);
void log_msg(int level, const char *origin, const char *fmt, ...) MTR_PRINTF(3, 4);
void log_vmsg(int level, const char *origin, const char *fmt, va_list ap);

#endif
