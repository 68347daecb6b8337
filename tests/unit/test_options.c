/* Declared options: types, defaults, bounds, unknown keys with suggestions,
 * required values, and secrets kept out of messages. */
#include "options.h"

#include <criterion/criterion.h>
#include <string.h>

static const char *const colours[] = {"red", "green", NULL};
static const struct mtr_option decl[] = {
    {.name = "timeout", .type = MTR_OPT_DURATION, .default_value = "15s", .min = 100, .max = 60000},
    {.name = "concurrency", .type = MTR_OPT_INT, .default_value = "64", .min = 1, .max = 100},
    {.name = "verbose", .type = MTR_OPT_BOOL, .default_value = "false"},
    {.name = "limit", .type = MTR_OPT_SIZE, .default_value = "1MiB"},
    {.name = "colour", .type = MTR_OPT_ENUM, .default_value = "red", .choices = colours},
    {.name = "password", .type = MTR_OPT_SECRET, .flags = MTR_OPT_REQUIRED},
    {.name = "tags", .type = MTR_OPT_LIST, .default_value = "a,b"},
    {0},
};

static int parse(const char *text, struct optset *s, struct diag *d)
{
    struct ynode *root;
    cr_assert_eq(yaml_load_buffer("o.yaml", text, strlen(text), &root, d), 0, "%s", d->text);
    int rc = options_parse(decl, root, NULL, "o.yaml", "sink plugin 'x'", s, d);
    ynode_free(root);
    return rc;
}

static void fails(const char *text, const char *message)
{
    struct optset s;
    struct diag d;
    cr_expect_eq(parse(text, &s, &d), -1, "%s accepted", text);
    cr_expect(strstr(d.text, message) != NULL, "%s: got '%s', want '%s'", text, d.text, message);
}

Test(options, values_and_defaults)
{
    struct optset s;
    struct diag d;
    cr_assert_eq(parse("{password: hunter2, timeout: 2s, colour: green, tags: [x]}", &s, &d), 0,
                 "%s", d.text);
    cr_expect_eq(optset_find(&s, "timeout")->num, 2000);
    cr_expect_eq(optset_find(&s, "concurrency")->num, 64);
    cr_expect_eq(optset_find(&s, "concurrency")->set, 0);
    cr_expect_eq(optset_find(&s, "limit")->size, 1048576);
    cr_expect_eq(optset_find(&s, "colour")->num, 1);
    cr_expect_eq(optset_find(&s, "tags")->list_len, 1);
    cr_expect_str_eq(optset_find(&s, "password")->str, "hunter2");
    optset_free(&s);
    cr_assert_eq(parse("{password: p}", &s, &d), 0, "%s", d.text);
    cr_expect_eq(optset_find(&s, "tags")->list_len, 2); /* default list "a,b" */
    optset_free(&s);
}

Test(options, errors_point_at_the_node)
{
    fails("{password: p, timout: 1s}",
          "o.yaml:1:15: unknown option 'timout' for sink plugin 'x' (did you mean 'timeout'?)");
    fails("{password: p, timeout: 15x}", "o.yaml:1:24: 'timeout': bad duration '15x'");
    fails("{password: p, timeout: 2m}", "'timeout' must be between 100ms and 1m");
    fails("{password: p, concurrency: 0}", "'concurrency' must be between 1 and 100");
    fails("{password: p, concurrency: many}", "'concurrency' must be an integer, not 'many'");
    fails("{password: p, verbose: yes}", "'verbose' must be true or false, not 'yes'");
    fails("{password: p, colour: gren}",
          "'colour' must be one of red, green, not 'gren' (did you mean 'green'?)");
    fails("{password: p, limit: lots}", "'limit': bad size 'lots'");
    fails("{password: p, tags: x}", "'tags' must be a list, not a scalar");
    fails("{password: p, timeout: [1s]}", "'timeout' must be a duration");
    fails("{timeout: 1s}", "o.yaml:1:1: missing required option 'password' for sink plugin 'x'");
    fails("[password, p]", "o.yaml:1:1: sink plugin 'x' must be a mapping, not a list");
}

Test(options, secrets_never_appear_in_messages)
{
    struct optset s;
    struct diag d;
    cr_expect_eq(parse("{password: [hunter2]}", &s, &d), -1);
    cr_expect(strstr(d.text, "hunter2") == NULL, "%s", d.text);
    cr_expect_eq(parse("{password: ''}", &s, &d), -1);
    cr_expect(strstr(d.text, "'password' must not be empty") != NULL, "%s", d.text);
}

Test(options, declarations_are_checked)
{
    char err[256];
    static const struct mtr_option bad_default[] = {
        {.name = "n", .type = MTR_OPT_INT, .default_value = "ten"}, {0}};
    static const struct mtr_option dup[] = {
        {.name = "n", .type = MTR_OPT_INT}, {.name = "n", .type = MTR_OPT_BOOL}, {0}};
    static const struct mtr_option no_choices[] = {{.name = "e", .type = MTR_OPT_ENUM}, {0}};
    static const struct mtr_option bad_name[] = {{.name = "Bad Name", .type = MTR_OPT_INT}, {0}};
    static const struct mtr_option bad_type[] = {{.name = "t", .type = 99}, {0}};
    cr_expect_eq(options_check_decl(decl, err, sizeof err), 0, "%s", err);
    cr_expect_eq(options_check_decl(bad_default, err, sizeof err), -1);
    cr_expect(strstr(err, "bad default") != NULL, "%s", err);
    cr_expect_eq(options_check_decl(dup, err, sizeof err), -1);
    cr_expect_eq(options_check_decl(no_choices, err, sizeof err), -1);
    cr_expect_eq(options_check_decl(bad_name, err, sizeof err), -1);
    cr_expect_eq(options_check_decl(bad_type, err, sizeof err), -1);
}
