/* date.c - HTTP dates (RFC 9110 5.6.7): IMF-fixdate out; IMF-fixdate, RFC 850, asctime in. */
#include "http/parse.h"

#include <string.h>

/* Our own names, not strftime's: the output must not depend on the locale. */
static const char wday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wday_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void put2(char *o, int v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
}

/* Times outside years 0000-9999 have no IMF-fixdate; they are clamped to its ends. */
size_t http_date_format(time_t t, char *out)
{
	struct tm tm;
	int year;

	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		memcpy(out, t < 0 ? "Sat, 01 Jan 0000 00:00:00 GMT" : "Fri, 31 Dec 9999 23:59:59 GMT", 30);
		return 29;
	}
	year = tm.tm_year + 1900;
	memcpy(out, wday_names[tm.tm_wday], 3);
	out[3] = ',';
	out[4] = ' ';
	put2(out + 5, tm.tm_mday);
	out[7] = ' ';
	memcpy(out + 8, month_names[tm.tm_mon], 3);
	out[11] = ' ';
	put2(out + 12, year / 100);
	put2(out + 14, year % 100);
	out[16] = ' ';
	put2(out + 17, tm.tm_hour);
	out[19] = ':';
	put2(out + 20, tm.tm_min);
	out[22] = ':';
	put2(out + 23, tm.tm_sec);
	memcpy(out + 25, " GMT", 5);
	return 29;
}

/* Reads n decimal digits; -1 unless all n are digits. */
static int digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Index of a 3-letter name (case-sensitive, as RFC 9110 says), or -1. */
static int name3(const char *s, const char (*names)[4], int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (memcmp(s, names[i], 3) == 0)
			return i;
	return -1;
}

/* "HH:MM:SS" into tm; 0 or -1. Second 60 is a leap second (timegm folds it over). */
static int time_of_day(const char *s, struct tm *tm)
{
	if (s[2] != ':' || s[5] != ':')
		return -1;
	tm->tm_hour = digits(s, 2);
	tm->tm_min = digits(s + 3, 2);
	tm->tm_sec = digits(s + 6, 2);
	if (tm->tm_hour < 0 || tm->tm_hour > 23 || tm->tm_min < 0 || tm->tm_min > 59 || tm->tm_sec < 0 ||
	    tm->tm_sec > 60)
		return -1;
	return 0;
}

static int valid_day(int year, int mon, int day)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	if (mon < 0 || day < 1)
		return 0;
	return day <= mdays[mon] + (mon == 1 && leap);
}

/*
 * The three forms (the weekday is checked for spelling, not against the date):
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"   (29 bytes)
 *   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"  (long weekday; 2-digit year)
 *   asctime      "Sun Nov  6 08:49:37 1994"        (24 bytes; day space-padded)
 * An RFC 850 year below 70 is 20YY, otherwise 19YY: a fixed pivot, not RFC 9110's
 * "50 years from now", so the result never depends on the clock (it differs only
 * for 2070-2076, which nobody sends in a 30-year-old format).
 */
int http_date_parse(const char *s, size_t len, time_t *t)
{
	struct tm tm;
	int year, mon, day, i;

	memset(&tm, 0, sizeof(tm));
	if (len == 29 && s[3] == ',') {
		if (name3(s, wday_names, 7) < 0 || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
		    s[16] != ' ' || memcmp(s + 25, " GMT", 4) != 0)
			return -1;
		day = digits(s + 5, 2);
		mon = name3(s + 8, month_names, 12);
		year = digits(s + 12, 4);
		if (time_of_day(s + 17, &tm) < 0)
			return -1;
	} else if (len == 24 && s[3] == ' ') {
		if (name3(s, wday_names, 7) < 0 || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
			return -1;
		mon = name3(s + 4, month_names, 12);
		day = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
		year = digits(s + 20, 4);
		if (time_of_day(s + 11, &tm) < 0)
			return -1;
	} else {
		const char *d;
		size_t wl;

		for (i = 0; i < 7; i++) {
			wl = strlen(wday_long[i]);
			if (len > wl && memcmp(s, wday_long[i], wl) == 0 && s[wl] == ',')
				break;
		}
		/* ", 06-Nov-94 08:49:37 GMT" follows the weekday: 24 bytes */
		if (i == 7 || len != wl + 24)
			return -1;
		d = s + wl + 2;
		if (s[wl + 1] != ' ' || d[2] != '-' || d[6] != '-' || d[9] != ' ' ||
		    memcmp(d + 18, " GMT", 4) != 0)
			return -1;
		day = digits(d, 2);
		mon = name3(d + 3, month_names, 12);
		year = digits(d + 7, 2);
		if (year >= 0)
			year += year < 70 ? 2000 : 1900;
		if (time_of_day(d + 10, &tm) < 0)
			return -1;
	}
	if (year < 0 || !valid_day(year, mon, day))
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	*t = timegm(&tm);
	return 0;
}
