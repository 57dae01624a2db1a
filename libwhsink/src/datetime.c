/*
 * datetime.c - the date and time text every backend writes (UTC, ISO-like, no locale, no
 * printf on the hot path) and the day numbers rows are partitioned by (see datetime.h).
 */
#include "datetime.h"

#include <stdio.h>

int32_t whs__day_of(int64_t ms)
{
    int64_t d = ms / 86400000;
    if (ms % 86400000 < 0)
        d--;
    return (int32_t)d;
}

/* Civil date of a day number (Howard Hinnant's days_from_civil inverse). */
static void civil(int32_t days, int *y, unsigned *m, unsigned *d)
{
    int64_t z = (int64_t)days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int whs__parse_date(const char *s, int32_t *days)
{
    int y;
    unsigned m, d;
    char tail;
    if (sscanf(s, "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *days = (int32_t)(era * 146097 + (int64_t)doe - 719468);
    return 0;
}

/* Writes @p v as exactly @p width decimal digits (hot path: no printf). */
static void digits(char *out, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void whs__fmt_date(int32_t days, char out[11])
{
    int y;
    unsigned m, d;
    civil(days, &y, &m, &d);
    digits(out, (unsigned)(y < 0 ? 0 : y), 4);
    out[4] = '-';
    digits(out + 5, m, 2);
    out[7] = '-';
    digits(out + 8, d, 2);
    out[10] = '\0';
}

void whs__fmt_timestamp(int64_t ms, char out[24])
{
    int32_t day = whs__day_of(ms);
    unsigned rem = (unsigned)(ms - (int64_t)day * 86400000);
    unsigned sec = rem / 1000;
    whs__fmt_date(day, out);
    out[10] = ' ';
    digits(out + 11, sec / 3600, 2);
    out[13] = ':';
    digits(out + 14, sec / 60 % 60, 2);
    out[16] = ':';
    digits(out + 17, sec % 60, 2);
    out[19] = '.';
    digits(out + 20, rem % 1000, 3);
    out[23] = '\0';
}
