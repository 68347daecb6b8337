/* The bulk-import format: bounded lines (a longer one is flagged, not
 * grown), NUL bytes flagged, CRLF, and RFC 4180 quoting split into at most
 * three trimmed fields. */
#define _GNU_SOURCE /* fmemopen */
#include "csv.h"

#include <criterion/criterion.h>
#include <string.h>

struct split_row {
    const char *line;
    int n;
    const char *f[3];
};

Test(csv, split)
{
    static const struct split_row rows[] = {
        {"car-1", 1, {"car-1"}},
        {"", 1, {""}},
        {"  car-1  ", 1, {"car-1"}},
        {"a,b,c", 3, {"a", "b", "c"}},
        {"a, b ,c ", 3, {"a", "b", "c"}},
        {"a,,c", 3, {"a", "", "c"}},
        {"a,", 2, {"a", ""}},
        {"\"a\"", 1, {"a"}},
        {"\"a,b\",c", 2, {"a,b", "c"}},
        {"\"a\"\"b\"", 1, {"a\"b"}},
        {" \"a\" , \"b\" ", 2, {"a", "b"}},
        {"\"\"", 1, {""}},
        {"a,b,c,d", -1, {NULL}},
        {"\"a", -2, {NULL}},
        {"\"a\"b", -2, {NULL}},
        {"\"a\"\"", -2, {NULL}},
        /* from the mutation pass: blank fields and trailing tabs */
        {"a,  ,c", 3, {"a", "", "c"}},
        {"a\t,b", 2, {"a", "b"}},
        {"a \t,b", 2, {"a", "b"}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char line[64], *f[3] = {NULL, NULL, NULL};
        snprintf(line, sizeof line, "%s", rows[i].line);
        int n = csv_split(line, f);
        cr_expect_eq(n, rows[i].n, "'%s': %d fields, want %d", rows[i].line, n, rows[i].n);
        for (int k = 0; k < rows[i].n && n == rows[i].n; k++)
            cr_expect_str_eq(f[k], rows[i].f[k], "'%s' field %d", rows[i].line, k);
    }
}

Test(csv, lines_are_bounded)
{
    static const char text[] = "one\r\ntwo\n0123456789\nnul\0x\nlast";
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    cr_assert_not_null(f);
    char buf[8];
    size_t len;
    int too_long, nul;
    static const struct {
        const char *text;
        int too_long, nul;
    } want[] = {{"one", 0, 0}, {"two", 0, 0}, {"0123456", 1, 0}, {"nul", 0, 1}, {"last", 0, 0}};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(csv_read_line(f, buf, sizeof buf, &len, &too_long, &nul), 0, "line %zu", i);
        if (!want[i].nul)
            cr_expect_str_eq(buf, want[i].text, "line %zu", i);
        cr_expect_eq(len, strlen(want[i].text) + (want[i].nul ? 2 : 0), "line %zu length", i);
        cr_expect_eq(too_long, want[i].too_long, "line %zu", i);
        cr_expect_eq(nul, want[i].nul, "line %zu", i);
    }
    cr_expect_eq(csv_read_line(f, buf, sizeof buf, &len, &too_long, &nul), -1);
    fclose(f);
}
