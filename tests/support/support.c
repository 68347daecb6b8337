/* Test support implementation: posix_spawn with output redirected to files. */
#include "support.h"
#include "options.h"
#include "scalar.h"
#include "yamltree.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = path_join(base && *base ? base : "/tmp", "metronome-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp failed");
    return tmpl;
}

void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    fwrite(content, 1, strlen(content), f);
    fclose(f);
}

char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* environ plus extras, extras first so they override. */
static char **build_env(const char *const *extra)
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **env = calloc(n + m + 1, sizeof *env);
    cr_assert_not_null(env);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        env[k++] = (char *)extra[i];
    for (size_t i = 0; i < n; i++) {
        int overridden = 0;
        for (size_t j = 0; j < m; j++) {
            size_t len = strcspn(extra[j], "=");
            if (strncmp(environ[i], extra[j], len) == 0 && environ[i][len] == '=')
                overridden = 1;
        }
        if (!overridden)
            env[k++] = environ[i];
    }
    return env;
}

void run_metronome(const char *const *argv, const char *const *env_extra, struct run_result *r)
{
    char *dir = make_tmpdir();
    char *out_path = path_join(dir, "stdout"), *err_path = path_join(dir, "stderr");
    size_t argc = 0;
    while (argv[argc])
        argc++;
    char **args = calloc(argc + 2, sizeof *args);
    cr_assert_not_null(args);
    args[0] = (char *)MTR_BIN;
    for (size_t i = 0; i < argc; i++)
        args[i + 1] = (char *)argv[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char **env = build_env(env_extra);
    pid_t pid;
    int rc = posix_spawn(&pid, MTR_BIN, &fa, NULL, args, env);
    cr_assert_eq(rc, 0, "cannot spawn %s", MTR_BIN);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = read_file(out_path);
    r->err = read_file(err_path);
    posix_spawn_file_actions_destroy(&fa);
    unlink(out_path);
    unlink(err_path);
    rmdir(dir);
    free(env);
    free(args);
    free(out_path);
    free(err_path);
    free(dir);
}

void run_result_free(struct run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

mtr_time iso(const char *s)
{
    mtr_time t;
    cr_assert_eq(parse_iso8601(s, &t), 0, "bad test instant %s", s);
    return t;
}

struct test_cadence *test_cadence_try(const char *policy, const char *yaml_opts, char *err,
                                      size_t errlen)
{
    struct test_cadence *tc = calloc(1, sizeof *tc);
    struct diag d;
    const char *dirs[] = {MTR_PLUGIN_DIR};
    cr_assert_not_null(tc);
    clock_init_fixed(&tc->clock, 0);
    cr_assert_eq(registry_scan(&tc->reg, dirs, 1, &d), 0, "%s", d.text);
    const struct plugin_file *pf = registry_find(&tc->reg, policy);
    cr_assert_not_null(pf, "no plugin %s", policy);
    struct ynode *root = NULL;
    const char *text = yaml_opts ? yaml_opts : "{}";
    cr_assert_eq(yaml_load_buffer("opts", text, strlen(text), &root, &d), 0, "%s", d.text);
    struct optset opts;
    int rc = options_parse(pf->desc.options, root, NULL, "opts", "test", &opts, &d);
    ynode_free(root);
    if (rc != 0) {
        snprintf(err, errlen, "%s", d.text);
        registry_free(&tc->reg);
        free(tc);
        return NULL;
    }
    if (instance_create(pf, "test", &opts, &tc->clock, &tc->inst, err, errlen) != 0) {
        registry_free(&tc->reg);
        free(tc);
        return NULL;
    }
    return tc;
}

struct test_cadence *test_cadence_new(const char *policy, const char *yaml_opts)
{
    char err[1024];
    struct test_cadence *tc = test_cadence_try(policy, yaml_opts, err, sizeof err);
    cr_assert_not_null(tc, "cadence %s %s: %s", policy, yaml_opts ? yaml_opts : "", err);
    return tc;
}

mtr_time test_cadence_next(struct test_cadence *tc, mtr_time after)
{
    mtr_time next = 0;
    const struct mtr_cadence_ops *ops = tc->inst->ctx.pf->desc.cadence;
    cr_assert_eq(ops->next_fire(tc->inst->state, after, &next), MTR_OK);
    return next;
}

void test_cadence_free(struct test_cadence *tc)
{
    if (!tc)
        return;
    instance_destroy(tc->inst);
    registry_free(&tc->reg);
    free(tc);
}
