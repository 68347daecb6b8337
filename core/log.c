/* Logging: level filter and the line format "LEVEL origin: message". */
#include "log.h"

#include <stdio.h>

static int current_level = MTR_LOG_INFO;

void log_set_level(int level)
{
    current_level = level;
}

int log_level(void)
{
    return current_level;
}

static const char *level_name(int level)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    return level >= 0 && level <= MTR_LOG_DEBUG ? names[level] : "log";
}

void log_vmsg(int level, const char *origin, const char *fmt, va_list ap)
{
    if (level > current_level)
        return;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "metronome: %s: %s%s%s\n", level_name(level), origin ? origin : "",
            origin ? ": " : "", line);
}

void log_msg(int level, const char *origin, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, origin, fmt, ap);
    va_end(ap);
}
