/* The store's checkpoint thread (see checkpointer.h). */
#include "checkpointer.h"

#include <stdlib.h>
#include <string.h>

static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct checkpointer *c = arg;
    if (pages >= 4 * c->threshold) /* the thread is not keeping up: do it here */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    else if (pages >= c->threshold) {
        pthread_mutex_lock(&c->mu);
        c->wanted = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void *checkpoint_main(void *arg)
{
    struct checkpointer *c = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        sqlite3_exec(db, c->setup, NULL, NULL, NULL);
    }
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        if (!c->wanted) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        c->wanted = 0;
        pthread_mutex_unlock(&c->mu);
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    sqlite3_close(db);
    return NULL;
}

int checkpointer_start(struct checkpointer *c, sqlite3 *db, const char *path, int threshold,
                       const char *setup)
{
    memset(c, 0, sizeof *c);
    c->threshold = threshold;
    c->path = strdup(path);
    c->setup = strdup(setup);
    if (!c->path || !c->setup) {
        free(c->path);
        free(c->setup);
        return -1;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c->path);
        free(c->setup);
        c->path = c->setup = NULL;
        return -1;
    }
    c->started = 1;
    sqlite3_wal_hook(db, on_wal, c);
    return 0;
}

void checkpointer_stop(struct checkpointer *c)
{
    if (!c->started)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->path);
    free(c->setup);
    c->path = c->setup = NULL;
    c->started = 0;
}
