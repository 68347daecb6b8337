/* The bulk-import format of `subscribe --file`: lines of at most
 * CSV_LINE_MAX bytes, split into up to three RFC 4180 fields. It reads input
 * from outside, so it is bounded and fuzzed (tests/fuzz/fuzz_csv.c). */
#include "csv.h"

/* Reads one line (without its end) into buf; a longer line is read to its end
 * and flagged, as is a NUL byte. Returns 0, or -1 at the end of the file. */
int csv_read_line(FILE *f, char *buf, size_t cap, size_t *len, int *too_long, int *nul)
{
    int ch;
    *len = 0;
    *too_long = *nul = 0;
    while ((ch = getc_unlocked(f)) != EOF && ch != '\n') { /* one reader: no lock per byte */
        if (ch == '\0')
            *nul = 1;
        if (*len + 1 < cap)
            buf[(*len)++] = (char)ch;
        else
            *too_long = 1;
    }
    buf[*len] = '\0';
    if (*len && buf[*len - 1] == '\r')
        buf[--(*len)] = '\0';
    return ch == EOF && *len == 0 && !*too_long ? -1 : 0;
}

/* Splits a CSV line (RFC 4180 quoting: "a,b" and "" inside quotes) into up
 * to three fields, unquoted and trimmed, in place. Returns the count, -1 for
 * more than three fields, -2 for a quote left open or text after a closing
 * quote. */
int csv_split(char *line, char *fields[3])
{
    int n = 0;
    char *p = line, *w;
    for (;;) {
        if (n == 3)
            return -1;
        while (*p == ' ' || *p == '\t')
            p++;
        fields[n++] = w = p;
        if (*p == '"') {
            for (p++;; p++) {
                if (*p == '\0')
                    return -2;
                if (*p == '"' && p[1] == '"')
                    *w++ = *p++;
                else if (*p == '"')
                    break;
                else
                    *w++ = *p;
            }
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != ',' && *p != '\0')
                return -2;
        } else {
            while (*p && *p != ',')
                *w++ = *p++;
            while (w > fields[n - 1] && (w[-1] == ' ' || w[-1] == '\t'))
                w--;
        }
        int last = *p == '\0';
        *w = '\0';
        if (last)
            return n;
        p++;
    }
}
