/* Logging: a level filter and two line formats - text ("metronome: LEVEL:
 * origin: message") for a terminal, and JSON (one object a line: time, level,
 * origin, message) for a log collector. Lines from several threads (the
 * engine, the courier, the admin API) never interleave: each is written with
 * one call on the locked stream. */
#include "log.h"
#include "jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int current_level = MTR_LOG_INFO;
static int current_format = LOG_TEXT;

void log_set_level(int level)
{
    current_level = level;
}

int log_level(void)
{
    return current_level;
}

void log_set_format(int format)
{
    current_format = format;
}

const char *log_level_name(int level)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    return level >= 0 && level <= MTR_LOG_DEBUG ? names[level] : "log";
}

int log_level_parse(const char *name)
{
    for (int i = 0; name && i <= MTR_LOG_DEBUG; i++)
        if (strcmp(name, log_level_name(i)) == 0)
            return i;
    return -1;
}

static void json_line(int level, const char *origin, const char *text)
{
    struct jsonw w;
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    jsonw_init(&w);
    jsonw_lit(&w, "{\"time\":");
    jsonw_str(&w, when);
    jsonw_lit(&w, ",\"level\":");
    jsonw_str(&w, log_level_name(level));
    jsonw_lit(&w, ",\"origin\":");
    if (origin)
        jsonw_str(&w, origin);
    else
        jsonw_lit(&w, "null");
    jsonw_lit(&w, ",\"message\":");
    jsonw_str(&w, text);
    jsonw_lit(&w, "}\n");
    char *line = jsonw_take(&w, NULL);
    if (line)
        fputs(line, stderr);
    free(line);
    jsonw_free(&w);
}

void log_vmsg(int level, const char *origin, const char *fmt, va_list ap)
{
    if (level > current_level)
        return;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    if (current_format == LOG_JSON)
        json_line(level, origin, line);
    else
        fprintf(stderr, "metronome: %s: %s%s%s\n", log_level_name(level), origin ? origin : "",
                origin ? ": " : "", line);
}

void log_msg(int level, const char *origin, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, origin, fmt, ap);
    va_end(ap);
}
