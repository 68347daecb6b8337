/* libFuzzer target: arbitrary bytes as a `subscribe --file` import, through
 * the bounded line reader and the CSV splitter. Every line read stays inside
 * its buffer, and every field it yields lies inside the line. */
#define _GNU_SOURCE /* fmemopen */
#include "csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    char line[256]; /* small, so the too-long path runs often */
    size_t len;
    int too_long, nul;
    while (csv_read_line(f, line, sizeof line, &len, &too_long, &nul) == 0) {
        if (len >= sizeof line || line[len] != '\0')
            abort();
        char *fields[3] = {NULL, NULL, NULL};
        int n = csv_split(line, fields);
        if (n > 3 || n < -2 || n == 0)
            abort();
        for (int i = 0; i < n; i++)
            if (fields[i] < line || fields[i] > line + len || strlen(fields[i]) > len)
                abort();
    }
    fclose(f);
    return 0;
}
