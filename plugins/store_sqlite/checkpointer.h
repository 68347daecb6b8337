/* Checkpoints on a thread of their own. In WAL mode every commit appends its
 * pages to the log, and a checkpoint copies them back into the database file
 * and syncs it; SQLite's automatic checkpoint does that inside whichever
 * commit crosses the threshold, on the thread that is delivering. Here the
 * writer's WAL hook only signals, and a second connection checkpoints
 * (PASSIVE: it never blocks the writer) while the writer goes on. Should the
 * log grow to four thresholds regardless, the writer checkpoints itself. */
#ifndef STORE_SQLITE_CHECKPOINTER_H
#define STORE_SQLITE_CHECKPOINTER_H

#include <pthread.h>
#include <sqlite3.h>

struct checkpointer {
    char *path;
    char *setup;   /* SQL run on the thread's connection: the writer's synchronous mode */
    int threshold; /* WAL pages */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wanted, stopping, started;
};

/* Hooks db's WAL and starts the thread; -1 if the thread cannot start (SQLite's
 * own automatic checkpoint then stays in place). */
int checkpointer_start(struct checkpointer *c, sqlite3 *db, const char *path, int threshold,
                       const char *setup);
/* Stops and joins the thread (it finishes a checkpoint under way). */
void checkpointer_stop(struct checkpointer *c);

#endif
