/* Source `simulated`: deterministic vehicles. Everything a vehicle reports is
 * a pure function of (seed, vehicle id, time): a daily routine of two commutes
 * grows the odometer, drains the battery or tank, moves the car between home
 * and work and back, and charges it overnight; tyres, oil life, security and
 * diagnostics follow. Responses have the exact shapes of Smartcar's v2.0
 * endpoints in metric or imperial units, with sc-data-age and sc-unit-system
 * headers. Faults can be injected for tests: asleep vehicles (409
 * VEHICLE_STATE/ASLEEP), rate limits (429 RATE_LIMIT/VEHICLE) and malformed
 * data, by share or for named vehicles. */
#include <metronome/metronome.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct simulated {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    uint64_t seed;
    int64_t asleep_percent;
    int64_t rate_limited_percent;
    int64_t malformed_percent;
    int64_t asleep_for_s; /* named asleep vehicles wake this long after the tick; 0: never */
    char *buf;            /* response being built */
    size_t len, cap;
    int oom;
};

/* ---- deterministic randomness ------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = mix(h ^ (unsigned char)*s);
    return h;
}

/* A number in [0, 1) from a hash and a salt. */
static double unit(uint64_t h, uint64_t salt)
{
    return (double)(mix(h ^ (salt * 0x9e3779b97f4a7c15ULL)) >> 11) / 9007199254740992.0;
}

/* ---- output buffer ----------------------------------------------------------- */

static void out(struct simulated *s, const char *fmt, ...) MTR_PRINTF(2, 3);

static void out(struct simulated *s, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !s->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->oom = 1;
            return;
        }
        if ((size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = s->cap * 2 + (size_t)n + 256;
        char *p = realloc(s->buf, cap);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->buf = p;
        s->cap = cap;
    }
}

/* Appends n bytes. */
static void put_n(struct simulated *s, const char *p, size_t n)
{
    if (s->oom)
        return;
    if (n >= s->cap - s->len) {
        size_t cap = s->cap * 2 + n + 256;
        char *b = realloc(s->buf, cap);
        if (!b) {
            s->oom = 1;
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static void put(struct simulated *s, const char *text)
{
    put_n(s, text, strlen(text));
}

/* A number as JSON.stringify writes it, for the magnitudes used here (below
 * 1e15 once scaled): rounded to `decimals`, trailing zeros dropped, never
 * "-0". Written from the rounded integer k = v * 10^decimals, which is what
 * printf("%.*f") prints for k / 10^decimals, without printf's cost. */
static void num(struct simulated *s, double v, int decimals)
{
    static const double scales[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    char b[48], *p = b + sizeof b;
    double scaled = v * scales[decimals];
    long long k = llround(scaled);
    unsigned long long m = (unsigned long long)(k < 0 ? -k : k);
    int frac = decimals;
    while (frac > 0 && m % 10 == 0) { /* trailing zeros go */
        m /= 10;
        frac--;
    }
    for (int i = 0; i < frac; i++, m /= 10)
        *--p = (char)('0' + m % 10);
    if (frac)
        *--p = '.';
    do
        *--p = (char)('0' + m % 10);
    while ((m /= 10) > 0);
    if (k < 0)
        *--p = '-';
    put_n(s, p, (size_t)(b + sizeof b - p));
}

/* ---- the vehicle ----------------------------------------------------------------- */

struct model {
    const char *make, *model;
    int electric;      /* 1: battery, 0: fuel */
    double capacity;   /* kWh or litres */
    double efficiency; /* km per kWh or per litre */
};

static const struct model models[] = {
    {"TESLA", "Model 3", 1, 75, 6.4},       {"VOLKSWAGEN", "ID.4", 1, 77, 5.6},
    {"FORD", "Mustang Mach-E", 1, 88, 5.2}, {"CITROËN", "ë-C4", 1, 50, 6.8},
    {"TOYOTA", "Corolla", 0, 50, 16.0},     {"BMW", "320i", 0, 59, 14.5},
    {"HONDA", "Civic", 0, 47, 15.8},        {"KIA", "EV6", 1, 77.4, 5.9},
};

struct place {
    double lat, lon;
};

static const struct place cities[] = {
    {37.7749, -122.4194}, {40.7128, -74.006}, {51.5072, -0.1276},
    {48.8566, 2.3522},    {52.52, 13.405},    {43.6532, -79.3832},
};

struct car {
    uint64_t h;
    const struct model *m;
    int year;
    char vin[18];
    double base_km;
    double km_per_day;
    struct place home, work;
    double tyre_kpa;
    double charge_limit;
};

static void make_car(const struct simulated *s, const char *id, struct car *c)
{
    static const char vin_chars[] = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"; /* no I, O, Q */
    c->h = hash_str(mix(s->seed + 0x5eed), id);
    c->m = &models[c->h % (sizeof models / sizeof *models)];
    c->year = 2016 + (int)(unit(c->h, 1) * 10);
    for (int i = 0; i < 17; i++)
        c->vin[i] = vin_chars[(size_t)(unit(c->h, 100 + (uint64_t)i) * 33)];
    c->vin[17] = '\0';
    c->base_km = 5000 + unit(c->h, 2) * 80000;
    c->km_per_day = 15 + unit(c->h, 3) * 60;
    const struct place *city = &cities[(size_t)(unit(c->h, 4) * 6)];
    c->home.lat = city->lat + (unit(c->h, 5) - 0.5) * 0.2;
    c->home.lon = city->lon + (unit(c->h, 6) - 0.5) * 0.2;
    c->work.lat = city->lat + (unit(c->h, 7) - 0.5) * 0.1;
    c->work.lon = city->lon + (unit(c->h, 8) - 0.5) * 0.1;
    c->tyre_kpa = 230 + unit(c->h, 9) * 20;
    c->charge_limit = unit(c->h, 10) < 0.5 ? 0.8 : 0.9;
}

/* Share of the day's driving done by second-of-day sec: two commutes,
 * 07:30-08:30 and 17:00-18:00. */
static double driven_share(int sec)
{
    double a = (sec - 27000) / 3600.0, b = (sec - 61200) / 3600.0;
    a = a < 0 ? 0 : a > 1 ? 1 : a;
    b = b < 0 ? 0 : b > 1 ? 1 : b;
    return (a + b) / 2;
}

static double odometer_km(const struct car *c, mtr_time t)
{
    int64_t day = mtr_floor_div(t, 86400);
    int sec = (int)(t - day * 86400);
    return c->base_km + c->km_per_day * ((double)(day - 19000) + driven_share(sec));
}

/* State of charge (or fuel) 0..1: charged overnight (00:00-06:00) to the
 * limit, drained by the day's driving; fuel cars refill every 6 days. */
static double energy_share(const struct car *c, mtr_time t)
{
    int64_t day = mtr_floor_div(t, 86400);
    int sec = (int)(t - day * 86400);
    double per_day = c->km_per_day / (c->m->capacity * c->m->efficiency);
    if (c->m->electric) {
        double start = c->charge_limit, night = sec < 21600 ? sec / 21600.0 : 1;
        double evening = 1 - per_day; /* where yesterday ended */
        if (sec < 21600)
            return evening + (start - evening) * night;
        return start - per_day * driven_share(sec) * 2 > 0.05 ? start - per_day * driven_share(sec)
                                                              : 0.05;
    }
    double days = (double)((day + (int64_t)(c->h % 6)) % 6) + driven_share(sec);
    double v = 0.95 - per_day * days;
    return v < 0.04 ? 0.04 : v;
}

/* Where the car is: home, on the road, or at work. */
static struct place location(const struct car *c, mtr_time t)
{
    int sec = (int)(t - mtr_floor_div(t, 86400) * 86400);
    double p; /* 0 = home, 1 = work */
    if (sec < 27000 || sec >= 64800)
        p = 0;
    else if (sec < 30600)
        p = (sec - 27000) / 3600.0;
    else if (sec < 61200)
        p = 1;
    else
        p = 1 - (sec - 61200) / 3600.0;
    struct place here = {c->home.lat + (c->work.lat - c->home.lat) * p,
                         c->home.lon + (c->work.lon - c->home.lon) * p};
    return here;
}

static int charging(const struct car *c, mtr_time t)
{
    int sec = (int)(t - mtr_floor_div(t, 86400) * 86400);
    return c->m->electric && sec < 21600;
}

/* ---- responses ------------------------------------------------------------------- */

static char *two_digits(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* YYYY-MM-DDTHH:MM:SS.000Z, written by hand: snprintf here was 2.5% of the
 * engine thread on a batched tick (three timestamps a vehicle). */
static void iso_ms(char *buf, size_t len, mtr_time t)
{
    struct mtr_civil c = mtr_civil_from_time(t);
    if (len < 25 || c.year < 0 || c.year > 9999) {
        snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d.000Z", (long long)c.year, c.month,
                 c.day, c.hour, c.minute, c.second);
        return;
    }
    char *p = two_digits(two_digits(buf, (int)(c.year / 100)), (int)(c.year % 100));
    *p++ = '-';
    p = two_digits(p, c.month);
    *p++ = '-';
    p = two_digits(p, c.day);
    *p++ = 'T';
    p = two_digits(p, c.hour);
    *p++ = ':';
    p = two_digits(p, c.minute);
    *p++ = ':';
    p = two_digits(p, c.second);
    memcpy(p, ".000Z", 6);
}

static void uuid_of(uint64_t h, char out_[37])
{
    uint64_t a = mix(h), b = mix(h ^ 0xabcdef);
    snprintf(out_, 37, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
             (unsigned long long)(b & 0xffffffffffffULL));
}

static void error_element(struct simulated *s, const char *path, int code, const char *type,
                          const char *ecode, const char *description, const char *doc,
                          const char *resolution, const char *user_message, uint64_t h,
                          int retry_after)
{
    char rid[37];
    uuid_of(h, rid);
    out(s,
        "{\"path\":\"%s\",\"code\":%d,\"body\":{\"type\":\"%s\",\"code\":\"%s\","
        "\"description\":\"%s\",\"docURL\":\"https://smartcar.com/docs/errors/api-errors/%s\","
        "\"statusCode\":%d,\"requestId\":\"%s\",\"resolution\":{\"type\":\"%s\"},"
        "\"suggestedUserMessage\":\"%s\"},\"headers\":{\"content-type\":\"application/json\"",
        path, code, type, ecode, description, doc, code, rid, resolution, user_message);
    if (retry_after > 0)
        out(s, ",\"retry-after\":\"%d\"", retry_after);
    put(s, "}}");
}

static const double KM_TO_MI = 0.621371, L_TO_GAL = 0.264172, KPA_TO_PSI = 0.145038;

static void distance(struct simulated *s, double km, int imperial, int decimals)
{
    num(s, imperial ? km * KM_TO_MI : km, decimals);
}

static int body_odometer(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    put(s, "{\"distance\":");
    distance(s, odometer_km(c, t), imp, 1);
    put(s, "}");
    return 0;
}

static int body_location(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    (void)imp;
    struct place p = location(c, t);
    put(s, "{\"latitude\":");
    num(s, p.lat, 6);
    put(s, ",\"longitude\":");
    num(s, p.lon, 6);
    put(s, "}");
    return 0;
}

static double range_km(const struct car *c, mtr_time t)
{
    return energy_share(c, t) * c->m->capacity * c->m->efficiency;
}

static int body_battery(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    if (!c->m->electric)
        return 501;
    put(s, "{\"range\":");
    distance(s, range_km(c, t), imp, 2);
    put(s, ",\"percentRemaining\":");
    num(s, energy_share(c, t), 2);
    put(s, "}");
    return 0;
}

static int body_fuel(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    if (c->m->electric)
        return 501;
    double litres = energy_share(c, t) * c->m->capacity;
    put(s, "{\"range\":");
    distance(s, range_km(c, t), imp, 2);
    put(s, ",\"percentRemaining\":");
    num(s, energy_share(c, t), 2);
    put(s, ",\"amountRemaining\":");
    num(s, imp ? litres * L_TO_GAL : litres, 2);
    put(s, "}");
    return 0;
}

static int body_battery_capacity(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    (void)t;
    (void)imp;
    if (!c->m->electric)
        return 501;
    put(s, "{\"capacity\":");
    num(s, c->m->capacity, 1);
    put(s, "}");
    return 0;
}

static int body_nominal_capacity(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    (void)t;
    (void)imp;
    if (!c->m->electric)
        return 501;
    put(s, "{\"availableCapacities\":[{\"capacity\":");
    num(s, c->m->capacity, 1);
    put(s, ",\"description\":\"Standard Range\"}],\"capacity\":{\"nominal\":");
    num(s, c->m->capacity, 1);
    put(s, ",\"source\":\"SMARTCAR\"},\"url\":null}");
    return 0;
}

static int body_charge(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    (void)imp;
    if (!c->m->electric)
        return 501;
    int plugged = charging(c, t), full = plugged && energy_share(c, t) >= c->charge_limit - 0.005;
    out(s, "{\"isPluggedIn\":%s,\"state\":\"%s\"}", plugged ? "true" : "false",
        full      ? "FULLY_CHARGED"
        : plugged ? "CHARGING"
                  : "NOT_CHARGING");
    return 0;
}

static int body_charge_limit(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    (void)t;
    (void)imp;
    if (!c->m->electric)
        return 501;
    put(s, "{\"limit\":");
    num(s, c->charge_limit, 2);
    put(s, "}");
    return 0;
}

static int body_tires(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    static const char *const wheels[] = {"frontLeft", "frontRight", "backLeft", "backRight"};
    put(s, "{");
    for (int i = 0; i < 4; i++) {
        double kpa = c->tyre_kpa + (unit(c->h, (uint64_t)(t / 3600) * 4 + (uint64_t)i) - 0.5) * 6;
        out(s, "%s\"%s\":", i ? "," : "", wheels[i]);
        num(s, imp ? kpa * KPA_TO_PSI : kpa, imp ? 1 : 0);
    }
    put(s, "}");
    return 0;
}

static int body_oil(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    (void)imp;
    if (c->m->electric)
        return 501;
    double since_service = fmod(odometer_km(c, t), 15000.0);
    put(s, "{\"lifeRemaining\":");
    num(s, 1 - since_service / 15000.0, 2);
    put(s, "}");
    return 0;
}

static int body_vin(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    (void)t;
    (void)imp;
    out(s, "{\"vin\":\"%s\"}", c->vin);
    return 0;
}

static int body_attributes(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    char id[37];
    (void)t;
    (void)imp;
    uuid_of(c->h, id);
    out(s, "{\"id\":\"%s\",\"make\":\"%s\",\"model\":\"%s\",\"year\":%d}", id, c->m->make,
        c->m->model, c->year);
    return 0;
}

static void status_list(struct simulated *s, const char *name, const char *const *types, int n,
                        const char *status)
{
    out(s, ",\"%s\":[", name);
    for (int i = 0; i < n; i++)
        out(s, "%s{\"type\":\"%s\",\"status\":\"%s\"}", i ? "," : "", types[i], status);
    put(s, "]");
}

static int body_security(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    static const char *const doors[] = {"FRONT_LEFT", "FRONT_RIGHT", "BACK_LEFT", "BACK_RIGHT"};
    static const char *const storage[] = {"FRONT", "REAR"};
    static const char *const port[] = {"CHARGING_PORT"};
    (void)imp;
    int locked = location(c, t).lat != c->home.lat || unit(c->h, (uint64_t)(t / 3600)) < 0.9;
    out(s, "{\"isLocked\":%s", locked ? "true" : "false");
    status_list(s, "doors", doors, 4, "CLOSED");
    status_list(s, "windows", doors, 4, "CLOSED");
    status_list(s, "sunroof", storage, 0, "CLOSED");
    status_list(s, "storage", storage, 2, "CLOSED");
    status_list(s, "chargingPort", port, c->m->electric, charging(c, t) ? "OPEN" : "CLOSED");
    put(s, "}");
    return 0;
}

static int body_dtcs(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    char when[40];
    (void)imp;
    put(s, "{\"dtcs\":[");
    if (unit(c->h, 77) < 0.2) {
        iso_ms(when, sizeof when, t - (mtr_time)(unit(c->h, 78) * 86400 * 30));
        out(s, "{\"code\":\"P0%03d\",\"timestamp\":\"%s\"}", (int)(unit(c->h, 79) * 999), when);
    }
    put(s, "]}");
    return 0;
}

static int body_system_status(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    static const char *const systems[] = {"SYSTEM_TPMS", "SYSTEM_ABS", "SYSTEM_AIRBAG"};
    (void)imp;
    (void)t;
    put(s, "{\"systems\":[");
    for (int i = 0; i < 3; i++)
        out(s, "%s{\"systemId\":\"%s\",\"status\":\"%s\",\"description\":null}", i ? "," : "",
            systems[i], unit(c->h, 90 + (uint64_t)i) < 0.05 ? "ALERT" : "OK");
    put(s, "]}");
    return 0;
}

static int body_service_history(struct simulated *s, const struct car *c, mtr_time t, int imp)
{
    char when[40];
    double km = odometer_km(c, t);
    iso_ms(when, sizeof when, t - (mtr_time)(unit(c->h, 95) * 86400 * 180));
    out(s, "[{\"serviceId\":%d,\"serviceDate\":\"%s\",\"odometerDistance\":",
        (int)(unit(c->h, 96) * 90000) + 10000, when);
    distance(s, km - fmod(km, 15000.0), imp, 0);
    out(s, ",\"serviceTasks\":[{\"taskId\":\"1\",\"taskDescription\":\"Inspection\"}],"
           "\"serviceDetails\":[],\"serviceCost\":{\"totalCost\":");
    num(s, 80 + unit(c->h, 97) * 300, 2);
    put(s, ",\"currency\":\"USD\"}}]");
    return 0;
}

struct endpoint {
    const char *path;
    int (*body)(struct simulated *, const struct car *, mtr_time, int);
};

static const struct endpoint endpoints[] = {
    {"/", body_attributes},
    {"/vin", body_vin},
    {"/odometer", body_odometer},
    {"/location", body_location},
    {"/fuel", body_fuel},
    {"/battery", body_battery},
    {"/battery/capacity", body_battery_capacity},
    {"/battery/nominal_capacity", body_nominal_capacity},
    {"/charge", body_charge},
    {"/charge/limit", body_charge_limit},
    {"/tires/pressure", body_tires},
    {"/engine/oil", body_oil},
    {"/security", body_security},
    {"/diagnostics/dtcs", body_dtcs},
    {"/diagnostics/system_status", body_system_status},
    {"/service/history", body_service_history},
};

static void endpoint_element(struct simulated *s, const struct car *c, const char *path, mtr_time t,
                             int imperial)
{
    const struct endpoint *e = NULL;
    for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints; i++)
        if (strcmp(endpoints[i].path, path) == 0)
            e = &endpoints[i];
    size_t mark = s->len;
    out(s, "{\"path\":\"%s\",\"code\":200,\"body\":", path);
    if (!e || e->body(s, c, t, imperial) != 0) {
        s->len = mark; /* not capable: the standard 501 error */
        error_element(s, path, 501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE",
                      "The vehicle is incapable of performing your request.",
                      "compatibility-errors#vehicle-not-capable", "CONTACT_SUPPORT",
                      "Your car does not support this feature.", c->h ^ hash_str(7, path), 0);
        return;
    }
    char age[40];
    iso_ms(age, sizeof age, t - (mtr_time)(unit(c->h, (uint64_t)t) * 120));
    out(s, ",\"headers\":{\"sc-data-age\":\"%s\",\"sc-unit-system\":\"%s\"}}", age,
        imperial ? "imperial" : "metric");
}

/* ---- faults ------------------------------------------------------------------------ */

enum fault {
    FAULT_NONE,
    FAULT_ASLEEP,
    FAULT_RATE_LIMITED,
    FAULT_MALFORMED,
};

static int listed(struct simulated *s, const char *option, const char *id)
{
    size_t n = s->host->get_list_len(s->ctx, option);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->host->get_list_item(s->ctx, option, i), id) == 0)
            return 1;
    return 0;
}

/* Faults are drawn per vehicle and per 15-minute slot of the fetch time, so a
 * vehicle asleep in one slot may answer in the next. */
static enum fault pick_fault(struct simulated *s, const struct car *c, const char *id,
                             const struct mtr_fetch_request *r)
{
    if (listed(s, "malformed_vehicles", id))
        return FAULT_MALFORMED;
    if (listed(s, "asleep_vehicles", id) &&
        (s->asleep_for_s == 0 || r->now < r->tick + s->asleep_for_s))
        return FAULT_ASLEEP;
    double u = unit(c->h, 0x51 + (uint64_t)mtr_floor_div(r->now, 900)) * 100;
    if (u < s->asleep_percent)
        return FAULT_ASLEEP;
    if (u < s->asleep_percent + s->rate_limited_percent)
        return FAULT_RATE_LIMITED;
    if (u < s->asleep_percent + s->rate_limited_percent + s->malformed_percent)
        return FAULT_MALFORMED;
    return FAULT_NONE;
}

static int fault_response(struct simulated *s, const struct car *c,
                          const struct mtr_fetch_request *r, enum fault f)
{
    if (f == FAULT_MALFORMED) { /* truncated on purpose; the source believes it is fine */
        out(s, "[{\"path\":\"%s\",\"code\":200,\"body\":{\"distance\":", r->endpoints[0]);
        return MTR_OK;
    }
    put(s, "[");
    for (size_t i = 0; i < r->n_endpoints; i++) {
        uint64_t h = c->h ^ (uint64_t)r->now ^ hash_str(i, r->endpoints[i]);
        if (i)
            put(s, ",");
        if (f == FAULT_ASLEEP)
            error_element(s, r->endpoints[i], 409, "VEHICLE_STATE", "ASLEEP",
                          "The vehicle is asleep.", "vehicle-state-errors#asleep", "RETRY_LATER",
                          "Your car is asleep. Please try again later.", h, 0);
        else
            error_element(s, r->endpoints[i], 429, "RATE_LIMIT", "VEHICLE",
                          "You have reached the throttling rate limit for this vehicle.",
                          "rate-limit-errors#vehicle", "RETRY_LATER",
                          "Your car is receiving too many requests. Please try again later.", h,
                          60);
    }
    put(s, "]");
    return MTR_EAGAIN;
}

/* ---- plugin interface --------------------------------------------------------------- */

static int simulated_fetch_one(struct simulated *s, const struct mtr_fetch_request *r)
{
    struct car c;
    make_car(s, r->vehicle->id, &c);
    s->len = 0;
    s->oom = 0;
    enum fault f = pick_fault(s, &c, r->vehicle->id, r);
    if (f != FAULT_NONE)
        return fault_response(s, &c, r, f);
    put(s, "[");
    for (size_t i = 0; i < r->n_endpoints; i++) {
        if (i)
            put(s, ",");
        endpoint_element(s, &c, r->endpoints[i], r->tick, r->units == MTR_UNITS_IMPERIAL);
    }
    put(s, "]");
    return MTR_OK;
}

static int simulated_submit(void *state, const struct mtr_fetch_request *reqs, size_t n,
                            mtr_fetch_done_fn done, void *core)
{
    struct simulated *s = state;
    for (size_t i = 0; i < n; i++) {
        int rc = simulated_fetch_one(s, &reqs[i]);
        struct mtr_fetch_result res = {.status = s->oom ? MTR_ERR : rc,
                                       .data_json = s->oom ? NULL : s->buf,
                                       .data_len = s->oom ? 0 : s->len,
                                       .error = s->oom ? "out of memory" : NULL,
                                       .cookie = reqs[i].cookie};
        if (rc == MTR_EAGAIN && !s->oom)
            res.error = "the simulated vehicle did not answer (injected fault)";
        done(core, &res);
    }
    return MTR_OK;
}

static const char *simulated_mode(void *state)
{
    (void)state;
    return "simulated";
}

static int simulated_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct simulated *s = calloc(1, sizeof *s);
    if (!s || !(s->buf = malloc(4096))) {
        free(s);
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->cap = 4096;
    s->host = host;
    s->ctx = ctx;
    s->seed = (uint64_t)host->get_int(ctx, "seed");
    s->asleep_percent = host->get_int(ctx, "asleep_percent");
    s->rate_limited_percent = host->get_int(ctx, "rate_limited_percent");
    s->malformed_percent = host->get_int(ctx, "malformed_percent");
    s->asleep_for_s = host->get_duration_ms(ctx, "asleep_for") / 1000;
    *state = s;
    if (s->asleep_percent + s->rate_limited_percent + s->malformed_percent > 100) {
        host->set_error(ctx, "asleep_percent + rate_limited_percent + malformed_percent "
                             "must not exceed 100");
        return MTR_ERR;
    }
    return MTR_OK;
}

static void simulated_destroy(void *state)
{
    struct simulated *s = state;
    if (!s)
        return;
    free(s->buf);
    free(s);
}

static const struct mtr_source_ops simulated_ops = {
    .struct_size = sizeof(struct mtr_source_ops),
    .mode = simulated_mode,
    .submit = simulated_submit,
};

static const struct mtr_option simulated_options[] = {
    {.name = "seed",
     .type = MTR_OPT_INT,
     .default_value = "42",
     .help = "the same seed always yields the same vehicles"},
    {.name = "asleep_percent",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 100,
     .help = "share of vehicles asleep in a 15-minute slot (409 VEHICLE_STATE/ASLEEP)"},
    {.name = "rate_limited_percent",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 100,
     .help = "share of fetches rate limited (429 RATE_LIMIT/VEHICLE)"},
    {.name = "malformed_percent",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 100,
     .help = "share of fetches answering malformed JSON"},
    {.name = "asleep_vehicles",
     .type = MTR_OPT_LIST,
     .help = "vehicle ids that are asleep (for tests)"},
    {.name = "asleep_for",
     .type = MTR_OPT_DURATION,
     .default_value = "0s",
     .help = "asleep_vehicles wake this long after each tick; 0s: never"},
    {.name = "malformed_vehicles",
     .type = MTR_OPT_LIST,
     .help = "vehicle ids whose data is always malformed (for tests)"},
    {0},
};

static const struct mtr_plugin simulated_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SOURCE),
    .name = "simulated",
    .version = "1.0.0",
    .description = "deterministic simulated vehicles (payload mode: simulated)",
    .options = simulated_options,
    .create = simulated_create,
    .destroy = simulated_destroy,
    .source = &simulated_ops,
};

MTR_PLUGIN_DEFINE(simulated_plugin)
