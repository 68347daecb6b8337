/* Reads JSON texts, one a line, and writes each back through the canonical
 * writer: the interop test feeds it JSON.stringify's output and expects the
 * same bytes back. */
#include "jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        struct jsonw w;
        char err[256];
        jsonw_init(&w);
        if (jsonw_canonical(&w, line, (size_t)n, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            rc = 1;
        }
        char *out = jsonw_take(&w, NULL);
        printf("%s\n", out ? out : "");
        free(out);
    }
    free(line);
    return rc;
}
