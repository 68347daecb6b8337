/* Civil (proleptic Gregorian, UTC) calendar arithmetic for plugins, header-only
 * and pure: days <-> year/month/day after Howard Hinnant's algorithms, valid for
 * any year a 64-bit instant can hold. Cadence plugins build on these. */
#ifndef METRONOME_CIVIL_H
#define METRONOME_CIVIL_H

#include <metronome/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mtr_civil {
    int64_t year;
    int month;  /* 1..12 */
    int day;    /* 1..31 */
    int hour;   /* 0..23 */
    int minute; /* 0..59 */
    int second; /* 0..59 */
    int wday;   /* 0 = Sunday .. 6 = Saturday */
};

static inline int64_t mtr_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Days since 1970-01-01 of a civil date. */
static inline int64_t mtr_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = mtr_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static inline void mtr_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = mtr_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static inline int mtr_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline int mtr_days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && mtr_is_leap(y) ? 29 : days[m - 1];
}

static inline struct mtr_civil mtr_civil_from_time(mtr_time t)
{
    struct mtr_civil c;
    int64_t days = mtr_floor_div(t, 86400);
    int64_t secs = t - days * 86400;
    mtr_civil_from_days(days, &c.year, &c.month, &c.day);
    c.hour = (int)(secs / 3600);
    c.minute = (int)(secs / 60 % 60);
    c.second = (int)(secs % 60);
    c.wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    return c;
}

static inline mtr_time mtr_time_from_civil(int64_t y, int m, int d, int hh, int mm, int ss)
{
    return mtr_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

/* Parses a time of day "HH:MM" (00:00 to 23:59) into seconds after midnight.
 * Returns 0, or -1 for anything else (NULL included). */
static inline int mtr_parse_hhmm(const char *s, int *seconds)
{
    if (!s || s[0] < '0' || s[0] > '2' || s[1] < '0' || s[1] > '9' || s[2] != ':' || s[3] < '0' ||
        s[3] > '5' || s[4] < '0' || s[4] > '9' || s[5] != '\0')
        return -1;
    int hh = (s[0] - '0') * 10 + (s[1] - '0');
    if (hh > 23)
        return -1;
    *seconds = hh * 3600 + ((s[3] - '0') * 10 + (s[4] - '0')) * 60;
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif
