/* The bulk-import format of `subscribe --file`: one
 * vehicle_id[,access_token[,refresh_token]] a line, RFC 4180 quoting, lines
 * bounded. */
#ifndef MTR_CSV_H
#define MTR_CSV_H

#include <stddef.h>
#include <stdio.h>

#define CSV_LINE_MAX 16384 /* a vehicle id and two tokens fit many times over */

/* Reads one line (without its end, a final \r dropped) into buf of cap bytes;
 * a longer line is read to its end and flagged in *too_long, a NUL byte in
 * *nul. Returns 0, or -1 at the end of the file. */
int csv_read_line(FILE *f, char *buf, size_t cap, size_t *len, int *too_long, int *nul);

/* Splits a line in place into up to three unquoted, trimmed fields. Returns
 * the count, -1 for more than three fields, -2 for a quote left open or text
 * after a closing quote. */
int csv_split(char *line, char *fields[3]);

#endif
