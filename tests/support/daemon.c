/* Background daemon and HTTP client helpers for tests. */
#include "daemon.h"
#include "support.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int poll_until(int (*fn)(void *), void *arg, int ms)
{
    int ok = 0;
    for (int waited = 0; !(ok = fn(arg)) && waited < ms; waited += 50)
        sleep_ms(50);
    return ok;
}

int daemon_logged(const struct daemon *d, const char *text)
{
    char *log = read_file(d->log);
    int found = log && strstr(log, text) != NULL;
    free(log);
    return found;
}

/* The address from "API listening on http://ADDR". */
static int find_address(void *arg)
{
    struct daemon *d = arg;
    char *log = read_file(d->log), *p;
    int found = 0;
    if (log && (p = strstr(log, "API listening on ")) != NULL) {
        p += strlen("API listening on ");
        size_t n = strcspn(p, "\n");
        snprintf(d->base, sizeof d->base, "%.*s", (int)n, p);
        found = 1;
    }
    free(log);
    return found || waitpid(d->pid, NULL, WNOHANG) != 0;
}

static int healthy(void *arg)
{
    struct http_reply r = http_call(arg, "GET", "/healthz", NULL, NULL, 0);
    int ok = r.status == 200;
    http_reply_free(&r);
    return ok;
}

static void start(struct daemon *d, const char *config, const char *token, const char *const *extra,
                  const char *ca)
{
    const char *argv[24] = {MTR_BIN, "run", "--config", config};
    size_t n = 4;
    for (size_t i = 0; extra && extra[i] && n < 22; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    memset(d, 0, sizeof *d);
    d->token = token;
    d->ca = ca;
    char *dir = make_tmpdir();
    d->log = path_join(dir, "daemon.log");
    free(dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    cr_assert_eq(posix_spawn(&d->pid, MTR_BIN, &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert(poll_until(find_address, d, 20000) && d->base[0], "the daemon never said where "
                                                                "its API listens");
    cr_assert(poll_until(healthy, d, 20000), "the API never answered /healthz");
}

void daemon_start(struct daemon *d, const char *config, const char *token, const char *const *extra)
{
    start(d, config, token, extra, NULL);
}

void daemon_start_tls(struct daemon *d, const char *config, const char *token, const char *ca)
{
    start(d, config, token, NULL, ca);
}

int daemon_stop(struct daemon *d)
{
    int status = 0;
    kill(d->pid, SIGTERM);
    for (int waited = 0; waitpid(d->pid, &status, WNOHANG) == 0; waited += 50) {
        if (waited > 30000) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            break;
        }
        sleep_ms(50);
    }
    free(d->log);
    d->log = NULL;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct buf {
    char *p;
    size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    char *p = realloc(b->p, b->len + size * n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, size * n);
    b->p = p;
    b->len += size * n;
    b->p[b->len] = '\0';
    return size * n;
}

struct http_reply http_call(const struct daemon *d, const char *method, const char *path,
                            const char *auth, const char *body, size_t body_len)
{
    struct http_reply r = {0};
    struct buf b = {0}, h = {0};
    char url[4096], hdr[1024];
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL;
    snprintf(url, sizeof url, "%s%s", d->base, path);
    if (auth) {
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", auth);
        list = curl_slist_append(list, hdr);
    }
    if (body)
        list = curl_slist_append(list, "Content-Type: application/json");
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send ../ and %2F as written */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (d->ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, d->ca);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    r.body = b.p ? b.p : strdup("");
    r.headers = h.p ? h.p : strdup("");
    r.json = json_loads(r.body, 0, NULL);
    return r;
}

void http_reply_free(struct http_reply *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}
