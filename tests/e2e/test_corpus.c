/* The invalid-pipeline corpus: every file in tests/corpus starts with
 * "# expect: LINE:COL: message"; `metronome validate` must print exactly
 * "FILE:LINE:COL: message" as its only line, exit with status 2, and never
 * print the secret the file takes from the environment. Three more cases are
 * generated here because they are too large to keep in the repository. */
#include "support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "corpus-secret-value-5f1e"

static const char *const corpus_env[] = {"METRONOME_PLUGIN_PATH=" MTR_PLUGIN_DIR,
                                         "MTR_CORPUS_TOKEN=" SECRET, NULL};

/* "@PLUGIN_DIR@" in an expectation stands for the build's plugin directory. */
static void expand_placeholder(const char *in, char *out, size_t len)
{
    const char *at = strstr(in, "@PLUGIN_DIR@");
    if (!at) {
        snprintf(out, len, "%s", in);
        return;
    }
    snprintf(out, len, "%.*s%s%s", (int)(at - in), in, MTR_PLUGIN_DIR, at + 12);
}

static void expect_validate(const char *path, const char *expected)
{
    const char *argv[] = {"validate", "--config", path, NULL};
    struct run_result r;
    run_metronome(argv, corpus_env, &r);
    char want[4096];
    snprintf(want, sizeof want, "%s:%s\n", path, expected);
    cr_expect_eq(r.status, 2, "%s: exit %d", path, r.status);
    cr_expect_str_eq(r.err, want, "%s:\n got: %s want: %s", path, r.err, want);
    cr_expect_str_eq(r.out, "", "%s printed on stdout: %s", path, r.out);
    cr_expect(strstr(r.err, SECRET) == NULL, "%s: the secret leaked", path);
    run_result_free(&r);
}

Test(corpus, every_file_gets_its_message, .timeout = 300)
{
    DIR *d = opendir(MTR_CORPUS_DIR);
    cr_assert_not_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        char *path = path_join(MTR_CORPUS_DIR, e->d_name);
        char *text = read_file(path);
        cr_assert_not_null(text);
        cr_assert(strncmp(text, "# expect: ", 10) == 0, "%s has no expectation", path);
        char line[2048], expected[4096];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(text + 10, "\n"), text + 10);
        expand_placeholder(line, expected, sizeof expected);
        expect_validate(path, expected);
        free(text);
        free(path);
        files++;
    }
    closedir(d);
    cr_expect_geq(files, 30, "only %d corpus files", files);
}

Test(corpus, a_10_mb_file)
{
    char *dir = make_tmpdir(), *path = path_join(dir, "huge.yaml");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("version: 1\ncomment: \"", f);
    for (int i = 0; i < 10 * 1024; i++) {
        char block[1024];
        memset(block, 'x', sizeof block);
        fwrite(block, 1, sizeof block, f);
    }
    fputs("\"\n", f);
    fclose(f);
    expect_validate(path, "1:1: file is too large (a pipeline file is at most 1048576 bytes)");
    remove(path);
    free(path);
    free(dir);
}

/* Writes text to a fresh file and expects validate to refuse it so. */
static void expect_generated(const char *name, const char *text, const char *expected)
{
    char *dir = make_tmpdir(), *path = path_join(dir, name);
    write_file(path, text);
    expect_validate(path, expected);
    remove(path);
    free(path);
    free(dir);
}

Test(corpus, nesting_ten_thousand_deep)
{
    size_t depth = 10000;
    char *text = malloc(depth * 4 + 32);
    cr_assert_not_null(text);
    size_t n = (size_t)snprintf(text, 32, "version: 1\nx: ");
    for (size_t i = 0; i < depth; i++)
        text[n++] = '{', text[n++] = 'a', text[n++] = ':', text[n++] = ' ';
    text[n] = '\0';
    /* the key of the 63rd mapping is the 65th level */
    expect_generated("deep.yaml", text, "2:253: nesting deeper than 64 levels");
    free(text);
}

Test(corpus, a_mapping_with_too_many_keys)
{
    size_t keys = 5000;
    char *text = malloc(keys * 16 + 32);
    cr_assert_not_null(text);
    size_t n = (size_t)snprintf(text, 32, "version: 1\nx:\n");
    for (size_t i = 0; i < keys; i++)
        n += (size_t)snprintf(text + n, 16, "  k%zu: 1\n", i);
    expect_generated("wide.yaml", text, "4099:3: more than 4096 keys in one mapping");
    free(text);
}
