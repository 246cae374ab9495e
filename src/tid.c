/*
 * tid.c - ZODB TimeStamps: the 8-byte transaction ids of the format.
 *
 * A tid is two big-endian 32-bit words. The first counts minutes since
 * 1900-01-01 00:00 UTC on a calendar where every month has 31 days:
 * ((((year-1900)*12 + month-1)*31 + day-1)*24 + hour)*60 + minute.
 * The second is the seconds within that minute scaled by 2^32/60 and
 * truncated. Everything here does its arithmetic the way ZODB's TimeStamp
 * type (persistent/_timestamp.c) does, in the same order and in doubles
 * where it uses doubles, so that our tids and times are bit-for-bit the
 * ones the original implementation computes and prints.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* One unit of the low word, in seconds: 60 / 2^32 (exact in a double). */
#define TID_SCONV (60.0 / 65536.0 / 65536.0)
#define TID_BASE_YEAR 1900
#define TID_MIN_PER_DAY 1440u
#define TID_MIN_PER_MONTH (31u * TID_MIN_PER_DAY)
#define TID_MIN_PER_YEAR (12u * TID_MIN_PER_MONTH)
/* Largest year whose minutes still fit the high word: 2^32 / minutes per
 * year is 8017.6 years after 1900. */
#define TID_MAX_YEAR (TID_BASE_YEAR + 8016)

struct tid_parts {
	int y;  /* year */
	int m;  /* month, 1..12 */
	int d;  /* day, 1..31 */
	int mi; /* minute of the day, 0..1439 */
};

static const int tid_month_len[2][12] = {
	{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
	{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
};

/* Day of the year on which each month starts. */
static const int tid_month_start[2][12] = {
	{0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334},
	{0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335},
};

static int
tid_leap(int y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/*
 * Days before year y counted from an arbitrary origin near 1900, as
 * TimeStamp's helper counts them. Only differences of these values are
 * used (the epoch offset cancels the origin), but the same integer
 * divisions must be used for the doubles to round the same way.
 */
static double
tid_year_days(int y)
{
	double days, sign;

	y -= TID_BASE_YEAR;
	days = (double)(y - 1) * 365;
	if (y > 0) {
		sign = 1.0;
		y -= 1;
	} else {
		sign = -1.0;
		y = -y;
	}
	return days + sign * (y / 4 - y / 100 + (y + 300) / 400);
}

/* Seconds since that origin at the start of minute `minute` of day d0
 * (0-based) of month mo0 (0-based) of year y. */
static double
tid_abst(int y, int mo0, int d0, int minute)
{
	return (tid_year_days(y) + tid_month_start[tid_leap(y)][mo0] + d0) *
	       86400 + minute * 60;
}

/* tid_abst of 1970-01-01 00:00: subtracting it gives Unix time. */
static double
tid_epoch(void)
{
	return tid_abst(1970, 0, 0, 0);
}

static void
tid_unpack(ds_tid tid, struct tid_parts *p)
{
	uint32_t minutes = (uint32_t)(tid >> 32);

	p->y = (int)(minutes / TID_MIN_PER_YEAR) + TID_BASE_YEAR;
	p->m = (int)((minutes % TID_MIN_PER_YEAR) / TID_MIN_PER_MONTH) + 1;
	p->d = (int)((minutes % TID_MIN_PER_MONTH) / TID_MIN_PER_DAY) + 1;
	p->mi = (int)(minutes % TID_MIN_PER_DAY);
}

static double
tid_seconds(ds_tid tid)
{
	return TID_SCONV * (double)(uint32_t)(tid & 0xffffffffu);
}

/* Build a tid from calendar parts and seconds within the minute (which
 * TimeStamp scales and truncates; it is not range checked there either,
 * we clamp it to the low word). */
static ds_tid
tid_pack(const struct tid_parts *p, double sec)
{
	uint32_t minutes, low;
	double scaled;

	minutes = (((((uint32_t)(p->y - TID_BASE_YEAR) * 12u +
	              (uint32_t)(p->m - 1)) * 31u + (uint32_t)(p->d - 1)) *
	            24u) * 60u) + (uint32_t)p->mi;
	scaled = sec / TID_SCONV;
	if (!(scaled > 0.0))
		low = 0;
	else if (scaled >= 4294967296.0)
		low = 0xffffffffu;
	else
		low = (uint32_t)scaled; /* truncation, as TimeStamp does */
	return ((ds_tid)minutes << 32) | low;
}

/*
 * Unix time -> tid, as ZODB makes one: the calendar fields of
 * gmtime(floor(t)) and the seconds t % 60 (Python's modulo, never
 * negative). Times before 1900 give 0; times past the last year a tid can
 * hold give the largest tid.
 */
ds_tid
ds_tid_from_time(double unix_seconds)
{
	struct tm tm;
	struct tid_parts p;
	time_t whole;
	double sec, fl;

	/* -2208988800 is 1900-01-01 00:00:00 UTC */
	if (!(unix_seconds >= -2208988800.0))
		return 0;
	fl = floor(unix_seconds);
	if (fl > 253402300799.0 * 2) /* far beyond year 9999: saturate */
		return UINT64_MAX;
	whole = (time_t)fl;
	if (gmtime_r(&whole, &tm) == NULL)
		return UINT64_MAX;
	if (tm.tm_year + 1900 > TID_MAX_YEAR)
		return UINT64_MAX;
	sec = fmod(unix_seconds, 60.0);
	if (sec < 0)
		sec += 60.0;
	p.y = tm.tm_year + 1900;
	p.m = tm.tm_mon + 1;
	p.d = tm.tm_mday;
	p.mi = tm.tm_hour * 60 + tm.tm_min;
	return tid_pack(&p, sec);
}

/* tid -> Unix time, TimeStamp.timeTime(): summed in the same order. */
double
ds_tid_to_time(ds_tid tid)
{
	struct tid_parts p;

	tid_unpack(tid, &p);
	return tid_abst(p.y, p.m - 1, p.d - 1, p.mi) + tid_seconds(tid) -
	       tid_epoch();
}

/*
 * The tid for a new transaction at time `now`, which must be later than
 * `last`: TimeStamp(now).laterThan(last). When the clock has not moved
 * past `last`, the result is last plus one unit of the low word; when the
 * low word is already at its maximum, the first instant of the next
 * minute on the real calendar (carrying into day, month and year).
 */
ds_tid
ds_tid_next(ds_tid last, double now)
{
	ds_tid t = ds_tid_from_time(now);
	struct tid_parts p;

	if (t > last)
		return t;
	if ((last & 0xffffffffu) != 0xffffffffu)
		return last + 1;
	tid_unpack(last, &p);
	if (p.mi >= 1439) {
		p.mi = 0;
		/* ">=": also leaves a day that the real month does not have */
		if (p.d >= tid_month_len[tid_leap(p.y)][p.m - 1]) {
			p.d = 1;
			if (p.m == 12) {
				p.m = 1;
				p.y++;
			} else {
				p.m++;
			}
		} else {
			p.d++;
		}
	} else {
		p.mi++;
	}
	return tid_pack(&p, 0.0);
}

/* Write v (0 <= v < 10^width) as exactly `width` decimal digits. */
static char *
tid_digits(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

/*
 * "YYYY-MM-DD HH:MM:SS GMT" as the original prints tids:
 * strftime of gmtime(TimeStamp(tid).timeTime()), where Python's gmtime
 * rounds the float down to whole seconds.
 */
void
ds_tid_format(ds_tid tid, char out[24])
{
	struct tm tm;
	time_t whole = (time_t)floor(ds_tid_to_time(tid));
	char *p = out;
	int y;

	if (gmtime_r(&whole, &tm) == NULL) {
		memset(&tm, 0, sizeof(tm)); /* cannot happen for a tid's range */
		tm.tm_year = 0;
		tm.tm_mday = 1;
	}
	y = tm.tm_year + 1900;
	if (y < 0)
		y = 0;
	if (y > 9999) /* keeps the fixed width; a tid holds years to 9916 */
		y = 9999;
	p = tid_digits(p, (unsigned)y, 4);
	*p++ = '-';
	p = tid_digits(p, (unsigned)(tm.tm_mon + 1), 2);
	*p++ = '-';
	p = tid_digits(p, (unsigned)tm.tm_mday, 2);
	*p++ = ' ';
	p = tid_digits(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = tid_digits(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = tid_digits(p, (unsigned)tm.tm_sec, 2);
	memcpy(p, " GMT", 5);
}
