/* Environment interpolation: ${VAR}, ${VAR:-default}, $${ escapes, errors
 * that name the variable but never echo a value. */
#include "interp.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *expand_ok(const char *s)
{
    char *out = NULL, err[256];
    cr_assert_eq(interp_expand(s, &out, err, sizeof err), 0, "'%s': %s", s, err);
    return out;
}

static void expand_fails(const char *s, const char *message)
{
    char *out = NULL, err[256];
    cr_expect_eq(interp_expand(s, &out, err, sizeof err), -1, "'%s' expanded", s);
    cr_expect(strstr(err, message) != NULL, "'%s': got '%s', want '%s'", s, err, message);
    cr_expect_null(out);
}

Test(interp, expands)
{
    setenv("MTR_T_TOKEN", "s3cr3t", 1);
    unsetenv("MTR_T_MISSING");
    setenv("MTR_T_EMPTY", "", 1);
    struct {
        const char *in, *want;
    } rows[] = {
        {"plain", "plain"},
        {"${MTR_T_TOKEN}", "s3cr3t"},
        {"a-${MTR_T_TOKEN}-b", "a-s3cr3t-b"},
        {"${MTR_T_MISSING:-fallback}", "fallback"},
        {"${MTR_T_MISSING:-}", ""},
        {"${MTR_T_TOKEN:-fallback}", "s3cr3t"},
        {"${MTR_T_EMPTY:-fallback}", ""}, /* set but empty is set */
        {"$${MTR_T_TOKEN}", "${MTR_T_TOKEN}"},
        {"cost: $5", "cost: $5"},
        {"${MTR_T_MISSING:-http://x:8/y}", "http://x:8/y"},
        /* a default may hold references of its own */
        {"${MTR_T_MISSING:-${MTR_T_TOKEN}}", "s3cr3t"},
        {"${MTR_T_MISSING:-${MTR_T_MISSING:-deep}}", "deep"},
        {"${MTR_T_MISSING:-a${MTR_T_TOKEN}b}-c", "as3cr3tb-c"},
        {"${MTR_T_TOKEN:-${MTR_T_MISSING}}", "s3cr3t"}, /* a default not taken is not read */
        {"${MTR_T_MISSING:-$${x}}", "${x}"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char *got = expand_ok(rows[i].in);
        cr_expect_str_eq(got, rows[i].want, "'%s'", rows[i].in);
        free(got);
    }
}

Test(interp, errors_name_the_variable_not_a_value)
{
    unsetenv("MTR_T_MISSING");
    expand_fails("${MTR_T_MISSING}", "environment variable MTR_T_MISSING is not set");
    expand_fails("${MTR_T_TOKEN", "unterminated '${'");
    expand_fails("${}", "bad variable reference '${}'");
    expand_fails("${1X}", "bad variable reference");
    expand_fails("${A B}", "bad variable reference");
    expand_fails("${A:default}", "bad variable reference");
    expand_fails("${MTR_T_MISSING:-${MTR_T_MISSING}}",
                 "environment variable MTR_T_MISSING is not set");
    expand_fails("${MTR_T_MISSING:-${MTR_T_MISSING:-x}", "unterminated '${'");
    expand_fails("${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-x}}}}}}}}}}",
                 "nested more than 8 deep");
}

/* The edges (from the mutation pass: each kills a mutant the tests above let
 * live). */
Test(interp, edges)
{
    setenv("aZz09_X", "ok", 1);
    unsetenv("MTR_T_MISSING");
    char *got = expand_ok("${aZz09_X}");
    cr_expect_str_eq(got, "ok", "names take a-z A-Z 0-9 _ (a letter or _ first)");
    free(got);
    got = expand_ok("${MTR_T_MISSING:-a$${b}c");
    cr_expect_str_eq(got, "a${bc", "$${ inside a default opens nothing: the first } closes");
    free(got);
    got = expand_ok("a$${");
    cr_expect_str_eq(got, "a${");
    free(got);
    expand_fails("${}x", "bad variable reference '${}':");
    expand_fails("a${", "unterminated '${'");
    got = expand_ok("${MTR_T_MISSING:-$${}x}");
    cr_expect_str_eq(got, "${x}", "the } right after $${ closes the reference");
    free(got);
    got = expand_ok("${MTR_T_MISSING:-a{b}c");
    cr_expect_str_eq(got, "a{bc", "a { without $ opens nothing");
    free(got);
    char plain[200];
    memset(plain, 'p', sizeof plain - 1);
    plain[sizeof plain - 1] = '\0';
    got = expand_ok(plain); /* grows its buffer past 64 and 128 bytes, a byte at a time */
    cr_expect_str_eq(got, plain);
    free(got);
    char name[300], ref[320];
    memset(name, 'N', sizeof name);
    name[255] = '\0';
    snprintf(ref, sizeof ref, "${%s}", name);
    expand_fails(ref, "environment variable NNNN");
    name[255] = 'N';
    name[256] = '\0';
    snprintf(ref, sizeof ref, "${%s}", name);
    expand_fails(ref, "variable name too long");
    /* defaults nest 8 deep, not 9 */
    char deep[256] = "";
    for (int i = 0; i < 8; i++)
        strcat(deep, "${MTR_T_MISSING:-");
    strcat(deep, "x}}}}}}}}");
    got = expand_ok(deep);
    cr_expect_str_eq(got, "x");
    free(got);
    char deeper[256] = "${MTR_T_MISSING:-";
    strcat(deeper, deep);
    strcat(deeper, "}");
    expand_fails(deeper, "nested more than 8 deep");
}
