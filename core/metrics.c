/* Metrics: the counters, their lock, and the Prometheus text exposition
 * (version 0.0.4: # HELP and # TYPE lines, label values escaped, histogram
 * buckets cumulative with le="+Inf"). */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   15,  30,   60};
static const char *const class_names[N_CLASSES] = {"2xx", "3xx", "4xx", "5xx", "error"};
static const char *const fetch_names[N_FETCH_CODES] = {"transient", "failed", "malformed",
                                                       "reauthenticate"};

int metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
    return pthread_mutex_init(&m->mu, NULL) == 0 ? 0 : -1;
}

void metrics_free(struct metrics *m)
{
    free(m->wh);
    pthread_mutex_destroy(&m->mu);
}

void metrics_lock(struct metrics *m)
{
    pthread_mutex_lock(&m->mu);
}

void metrics_unlock(struct metrics *m)
{
    pthread_mutex_unlock(&m->mu);
}

struct webhook_metrics *metrics_webhook(struct metrics *m, size_t i, const char *name)
{
    if (i >= m->n_wh) {
        size_t n = i + 16;
        struct webhook_metrics *p = realloc(m->wh, n * sizeof *p);
        if (!p)
            return NULL;
        memset(p + m->n_wh, 0, (n - m->n_wh) * sizeof *p);
        m->wh = p;
        m->n_wh = n;
    }
    if (!m->wh[i].name[0])
        snprintf(m->wh[i].name, sizeof m->wh[i].name, "%s", name ? name : "?");
    return &m->wh[i];
}

void histogram_observe(struct histogram *h, double seconds)
{
    size_t b = 0;
    while (b < LATENCY_BUCKETS && seconds > bounds[b])
        b++;
    if (b < LATENCY_BUCKETS)
        h->bucket[b]++;
    h->count++;
    h->sum += seconds;
}

enum attempt_class attempt_class(int http_status)
{
    if (http_status >= 200 && http_status < 300)
        return CLASS_2XX;
    if (http_status >= 300 && http_status < 400)
        return CLASS_3XX;
    if (http_status >= 400 && http_status < 500)
        return CLASS_4XX;
    if (http_status >= 500 && http_status < 600)
        return CLASS_5XX;
    return CLASS_ERROR;
}

/* ---- exposition ------------------------------------------------------------------------ */

struct text {
    char *buf;
    size_t len, cap;
    int oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0 || t->oom) {
            t->oom = 1;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 8192) + (size_t)n;
        char *p = realloc(t->buf, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->buf = p;
        t->cap = cap;
    }
}

/* A label value: \ " and newline escaped. Webhook names are [a-z0-9._-], but
 * the escaping does not rely on it. */
static const char *label(const char *v, char *buf, size_t len)
{
    size_t k = 0;
    for (; *v && k + 3 < len; v++) {
        if (*v == '\\' || *v == '"') {
            buf[k++] = '\\';
            buf[k++] = *v;
        } else if (*v == '\n') {
            buf[k++] = '\\';
            buf[k++] = 'n';
        } else {
            buf[k++] = *v;
        }
    }
    buf[k] = '\0';
    return buf;
}

static void head(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct text *t, const char *name, const char *labels,
                      const struct histogram *h)
{
    uint64_t cum = 0;
    for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
        cum += h->bucket[b];
        put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bounds[b],
            (unsigned long long)cum);
    }
    put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
        (unsigned long long)h->count);
    put(t, "%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", h->sum);
    put(t, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
        (unsigned long long)h->count);
}

static void per_webhook(struct text *t, const struct metrics *m)
{
    char lb[160], l2[200];
    head(t, "metronome_deliveries_total", "counter",
         "Deliveries settled by this process, by webhook and outcome.");
    for (size_t i = 0; i < m->n_wh; i++)
        if (m->wh[i].name[0]) {
            label(m->wh[i].name, lb, sizeof lb);
            put(t, "metronome_deliveries_total{webhook=\"%s\",outcome=\"delivered\"} %llu\n", lb,
                (unsigned long long)m->wh[i].delivered);
            put(t, "metronome_deliveries_total{webhook=\"%s\",outcome=\"failed\"} %llu\n", lb,
                (unsigned long long)m->wh[i].failed);
        }
    head(t, "metronome_attempts_total", "counter",
         "Delivery attempts by webhook and HTTP status class (error: no HTTP answer).");
    for (size_t i = 0; i < m->n_wh; i++)
        for (int c = 0; m->wh[i].name[0] && c < N_CLASSES; c++)
            put(t, "metronome_attempts_total{webhook=\"%s\",class=\"%s\"} %llu\n",
                label(m->wh[i].name, lb, sizeof lb), class_names[c],
                (unsigned long long)m->wh[i].attempts[c]);
    head(t, "metronome_attempt_duration_seconds", "histogram",
         "Time from handing a payload to a sink to its outcome.");
    for (size_t i = 0; i < m->n_wh; i++)
        if (m->wh[i].name[0]) {
            snprintf(l2, sizeof l2, "webhook=\"%s\"", label(m->wh[i].name, lb, sizeof lb));
            histogram(t, "metronome_attempt_duration_seconds", l2, &m->wh[i].latency);
        }
}

/* Receiver protection: deferrals and waits by the receiver's origin. */
static void per_origin(struct text *t, const struct metrics_gauges *g)
{
    char lb[2 * ORIGIN_LEN + 8];
    size_t n = g->origins ? g->origins->n : 0;
    head(t, "metronome_deliveries_deferred_total", "counter",
         "Deliveries a sink held back for their receiver's origin (its max_in_flight or max_rate, "
         "or its Retry-After), to be sent later without counting as an attempt.");
    for (size_t i = 0; i < n; i++)
        put(t, "metronome_deliveries_deferred_total{origin=\"%s\"} %llu\n",
            label(g->origins->v[i].origin, lb, sizeof lb),
            (unsigned long long)g->origins->v[i].deferred);
    head(t, "metronome_origin_wait_seconds", "gauge",
         "Seconds until the deliveries deferred for an origin are due again (0: none waits).");
    for (size_t i = 0; i < n; i++) {
        const struct origin_wait *w = &g->origins->v[i];
        put(t, "metronome_origin_wait_seconds{origin=\"%s\"} %lld\n",
            label(w->origin, lb, sizeof lb),
            (long long)(w->until > g->now ? w->until - g->now : 0));
    }
}

char *metrics_render(struct metrics *m, const struct metrics_gauges *g, const char *version)
{
    static const char *const job_states[] = {"due", "fetched", "sent", "missed"};
    static const char *const delivery_states[] = {"pending", "delivered", "failed"};
    static const char *const webhook_states[] = {"unverified", "active", "disabled"};
    struct text t = {0};
    head(&t, "metronome_build_info", "gauge", "The running metronome's version.");
    put(&t, "metronome_build_info{version=\"%s\"} 1\n", version);
    head(&t, "metronome_uptime_seconds", "gauge", "Seconds since the daemon started.");
    put(&t, "metronome_uptime_seconds %.0f\n", g->uptime_s);
    metrics_lock(m);
    head(&t, "metronome_ticks_fired_total", "counter", "Ticks fired by this process.");
    put(&t, "metronome_ticks_fired_total %llu\n", (unsigned long long)m->ticks);
    head(&t, "metronome_jobs_scheduled_total", "counter",
         "Jobs (webhook, vehicle, tick) written by this process, by what became of the tick.");
    put(&t, "metronome_jobs_scheduled_total{kind=\"due\"} %llu\n", (unsigned long long)m->jobs);
    put(&t, "metronome_jobs_scheduled_total{kind=\"missed\"} %llu\n",
        (unsigned long long)m->jobs_missed);
    head(&t, "metronome_fetch_errors_total", "counter",
         "Vehicles whose data could not be fetched, by what was done.");
    for (int c = 0; c < N_FETCH_CODES; c++)
        put(&t, "metronome_fetch_errors_total{code=\"%s\"} %llu\n", fetch_names[c],
            (unsigned long long)m->fetch_errors[c]);
    per_webhook(&t, m);
    head(&t, "metronome_ledger_write_duration_seconds", "histogram",
         "Time to write one batch of attempt outcomes to the ledger.");
    histogram(&t, "metronome_ledger_write_duration_seconds", "", &m->ledger_write);
    metrics_unlock(m);
    head(&t, "metronome_jobs", "gauge", "Jobs in the ledger by state.");
    for (int s = 0; s < 4; s++)
        put(&t, "metronome_jobs{state=\"%s\"} %llu\n", job_states[s],
            (unsigned long long)g->jobs[s]);
    head(&t, "metronome_ledger_deliveries", "gauge", "Deliveries in the ledger by state.");
    for (int s = 0; s < 3; s++)
        put(&t, "metronome_ledger_deliveries{state=\"%s\"} %llu\n", delivery_states[s],
            (unsigned long long)g->deliveries[s]);
    head(&t, "metronome_webhooks", "gauge", "Webhooks by state.");
    for (int s = 0; s < 3; s++)
        put(&t, "metronome_webhooks{state=\"%s\"} %llu\n", webhook_states[s],
            (unsigned long long)g->webhooks[s]);
    head(&t, "metronome_subscriptions", "gauge", "Current subscriptions.");
    put(&t, "metronome_subscriptions %llu\n", (unsigned long long)g->subscriptions);
    head(&t, "metronome_courier_in_flight", "gauge",
         "Payloads handed to sinks, waiting for their outcome.");
    put(&t, "metronome_courier_in_flight %zu\n", g->in_flight);
    head(&t, "metronome_outcomes_queued", "gauge", "Outcomes waiting to be written.");
    put(&t, "metronome_outcomes_queued %zu\n", g->queued);
    per_origin(&t, g);
    if (t.oom) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
