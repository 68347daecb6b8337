/* Test support: running the metronome binary and capturing what it prints,
 * temporary directories, and building plugin instances through the real
 * loader. Paths come from the build (see tests/CMakeLists.txt). */
#ifndef MTR_TEST_SUPPORT_H
#define MTR_TEST_SUPPORT_H

#include <stddef.h>
#include "host.h"
#include "scalar.h"

struct run_result {
    int status; /* exit status, or 128 + signal */
    char *out;  /* stdout, NUL-terminated, owned */
    char *err;  /* stderr, NUL-terminated, owned */
};

/* Runs MTR_BIN with argv (NULL-terminated, without argv[0]); env_extra is a
 * NULL-terminated list of "NAME=value" added to the environment (may be NULL). */
void run_metronome(const char *const *argv, const char *const *env_extra, struct run_result *r);
void run_result_free(struct run_result *r);

/* A fresh directory under $TMPDIR; returns a static-lifetime malloc'd path. */
char *make_tmpdir(void);
void write_file(const char *path, const char *content);
char *path_join(const char *dir, const char *name); /* malloc'd */
char *read_file(const char *path);                  /* malloc'd, NULL if missing */

/* A cadence instance of the named policy from build/plugins with options
 * written as a YAML flow mapping ("{at: '06:30'}" or NULL). Aborts the test
 * on failure. Free with test_cadence_free. */
struct test_cadence {
    struct registry reg;
    struct instance *inst;
    struct clock clock;
};
struct test_cadence *test_cadence_new(const char *policy, const char *yaml_opts);
/* Like test_cadence_new but returns NULL and the create() message in err. */
struct test_cadence *test_cadence_try(const char *policy, const char *yaml_opts, char *err,
                                      size_t errlen);
mtr_time test_cadence_next(struct test_cadence *tc, mtr_time after);
void test_cadence_free(struct test_cadence *tc);

/* Parses "YYYY-MM-DDTHH:MM:SSZ"; aborts on error. */
mtr_time iso(const char *s);

#endif
