/* Origins: per-receiver deferral counts and waits, for status and metrics. */
#include "origins.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void origin_of(const char *uri, char *out, size_t len)
{
    const char *sep = uri ? strstr(uri, "://") : NULL;
    out[0] = '\0';
    if (!sep || len == 0)
        return;
    const char *host = sep + 3, *end = host + strcspn(host, "/?#");
    for (const char *p = host; p < end; p++)
        if (*p == '@')
            host = p + 1; /* user information is not part of the origin */
    size_t n = 0;
    for (const char *p = uri; p < sep + 3 && n + 1 < len; p++)
        out[n++] = (char)tolower((unsigned char)*p);
    for (const char *p = host; p < end && n + 1 < len; p++)
        out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
}

static struct origin_wait *entry(struct origins *o, const char *origin)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->v[i].origin, origin) == 0)
            return &o->v[i];
    if (o->n < ORIGINS_MAX - 1 || (o->n < ORIGINS_MAX && strcmp(origin, "other") == 0)) {
        struct origin_wait *w = &o->v[o->n++];
        memset(w, 0, sizeof *w);
        snprintf(w->origin, sizeof w->origin, "%s", origin);
        return w;
    }
    return strcmp(origin, "other") == 0 ? NULL : entry(o, "other");
}

void origins_note(struct origins *o, const char *origin, mtr_time until, int last_status)
{
    struct origin_wait *w = entry(o, origin[0] ? origin : "other");
    if (!w)
        return;
    w->deferred++;
    if (until > w->until)
        w->until = until;
    if (last_status)
        w->last_status = last_status;
}
