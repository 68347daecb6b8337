/* Scalar parsers shared by the pipeline loader and the command line: strict
 * integers, booleans, durations, sizes, ISO 8601 UTC instants and their
 * formatting. Each returns 0 on success and -1 on any malformed input. */
#ifndef MTR_SCALAR_H
#define MTR_SCALAR_H

#include <stddef.h>
#include <stdint.h>
#include <metronome/plugin.h>

int parse_int64(const char *s, int64_t *out);
int parse_bool(const char *s, int *out);
/* "500ms", "15s", "10m", "1h30m", "2d", "1w"; at least one unit; result in ms. */
int parse_duration_ms(const char *s, int64_t *out);
/* "1048576", "64KiB", "1MB", "2GiB", "512B"; result in bytes. */
int parse_size(const char *s, uint64_t *out);
/* "2030-03-01T15:45:00Z", "2030-03-01T15:45Z", "2030-03-01T15:45:00+00:00",
 * "2030-03-01" (midnight); fractional seconds are refused, and so is any
 * instant outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z (MTR_TIME_MIN
 * .. MTR_TIME_MAX of metronome/util.h). */
int parse_iso8601(const char *s, mtr_time *out);
/* Writes "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 32 bytes). */
void format_iso8601(mtr_time t, char *buf, size_t len);
/* Writes a duration in ms back in the shortest unit form ("1h30m", "500ms"). */
void format_duration(int64_t ms, char *buf, size_t len);

#endif
