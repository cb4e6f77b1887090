/* strparse.c - the one parser of what people type: counts, sizes, durations, ranges, HOST:PORT. */
#include "core/strparse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads the digits at *p into *v and moves *p past them. Returns how many there were,
 * or -1 when the value does not fit in 64 bits (the digits are still skipped). */
static int scan_digits(const char **p, uint64_t *v)
{
	int n = 0, over = 0;
	uint64_t x = 0;
	for (; is_digit(**p); (*p)++, n++) {
		unsigned d = (unsigned)(**p - '0');
		if (x > (UINT64_MAX - d) / 10)
			over = 1;
		else
			x = x * 10 + d;
	}
	*v = x;
	return over ? -1 : n;
}

/* The reason for input that does not start with a digit. */
static int not_a_number(const char *s, char *err, size_t errlen)
{
	if (!*s)
		return fail(err, errlen, "empty");
	if (s[0] == '-' && (is_digit(s[1]) || s[1] == '.'))
		return fail(err, errlen, "negative");
	return fail(err, errlen, "not a number");
}

/* The reason for text after a number: "unexpected 'abc' after the number". */
static int trailing(const char *p, char *err, size_t errlen)
{
	return fail(err, errlen, "unexpected '%.24s' after the number", p);
}

static int check_bounds(uint64_t v, uint64_t min, uint64_t max, char *err, size_t errlen)
{
	if (v < min)
		return fail(err, errlen, "less than %llu", (unsigned long long)min);
	if (v > max)
		return fail(err, errlen, "more than %llu", (unsigned long long)max);
	return 0;
}

int strparse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	const char *p = s;
	uint64_t v;
	if (!is_digit(*s))
		return not_a_number(s, err, errlen);
	if (scan_digits(&p, &v) < 0) {
		if (*p)
			return trailing(p, err, errlen);
		return fail(err, errlen, "more than %llu", (unsigned long long)max);
	}
	if (*p == '.' && is_digit(p[1]))
		return fail(err, errlen, "not a whole number");
	if (*p)
		return trailing(p, err, errlen);
	if (check_bounds(v, min, max, err, errlen) < 0)
		return -1;
	*out = v;
	return 0;
}

/* Binary units for sizes, largest first (strparse_fmt_size picks the first that divides). */
static const struct {
	char letter;
	unsigned shift;
} size_units[] = {{'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}};
#define NSIZE_UNITS (sizeof(size_units) / sizeof(size_units[0]))

static int size_bound(const char *what, uint64_t v, char *err, size_t errlen)
{
	char t[32];
	return fail(err, errlen, "%s %s", what, strparse_fmt_size(v, t, sizeof t));
}

int strparse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	const char *p = s;
	uint64_t v;
	if (!is_digit(*s))
		return not_a_number(s, err, errlen);
	int over = scan_digits(&p, &v) < 0;
	if (*p == '.' && is_digit(p[1]))
		return fail(err, errlen, "sizes are whole numbers (1536M, not 1.5G)");
	unsigned shift = 0;
	const char *unit = p;
	if (*p) {
		char c = (char)(*p & ~0x20); /* upper case */
		for (size_t i = 0; i < NSIZE_UNITS; i++)
			if (c == size_units[i].letter) {
				shift = size_units[i].shift;
				p++;
				break;
			}
		if (shift && (p[0] == 'i' || p[0] == 'I') && (p[1] == 'B' || p[1] == 'b'))
			p += 2;
		else if (p[0] == 'B' || p[0] == 'b')
			p++;
		if (*p)
			return fail(err, errlen, "unknown unit '%.16s' (use K, M, G or T)", unit);
	}
	if (over || (shift && v > (UINT64_MAX >> shift)))
		return size_bound("more than", max, err, errlen);
	v <<= shift;
	if (v < min)
		return size_bound("less than", min, err, errlen);
	if (v > max)
		return size_bound("more than", max, err, errlen);
	*out = v;
	return 0;
}

/* Reads "I", "I.F" or ".F" at *p: the whole part in *whole, the fraction's digits
 * starting at *frac (NULL when none). Returns 0, or -1 with a reason. */
static int scan_decimal(const char **p, uint64_t *whole, const char **frac, char *err, size_t errlen)
{
	const char *s = *p;
	int n = 0;
	*whole = 0;
	*frac = NULL;
	if (is_digit(**p) && (n = scan_digits(p, whole)) < 0)
		return fail(err, errlen, "too large");
	if (**p == '.' && is_digit((*p)[1])) {
		*frac = ++*p;
		while (is_digit(**p))
			++*p;
	} else if (!n) {
		return not_a_number(s, err, errlen);
	}
	return 0;
}

static const struct {
	const char *name;
	uint64_t ns;
} dur_units[] = {
        {"h", 3600 * STRPARSE_NS_PER_SEC},
        {"m", 60 * STRPARSE_NS_PER_SEC},
        {"s", STRPARSE_NS_PER_SEC},
        {"ms", STRPARSE_NS_PER_MS},
        {"us", 1000},
};
#define NDUR_UNITS (sizeof(dur_units) / sizeof(dur_units[0]))

static int duration_bound(const char *what, uint64_t v, char *err, size_t errlen)
{
	char t[40];
	return fail(err, errlen, "%s %s", what, strparse_fmt_duration(v, t, sizeof t));
}

int strparse_duration(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *out_ns, char *err,
                      size_t errlen)
{
	const char *p = s, *frac;
	uint64_t whole;
	if (scan_decimal(&p, &whole, &frac, err, errlen) < 0)
		return -1;
	uint64_t unit = *p ? 0 : STRPARSE_NS_PER_SEC; /* a number alone is seconds */
	for (size_t i = 0; i < NDUR_UNITS && !unit; i++)
		if (!strcmp(p, dur_units[i].name))
			unit = dur_units[i].ns;
	if (!unit)
		return fail(err, errlen,
		            "unknown unit '%.16s' (use us, ms, s, m or h; a number alone is seconds)", p);
	if (whole > UINT64_MAX / unit)
		return duration_bound("more than", max_ns, err, errlen);
	uint64_t v = whole * unit, step = unit;
	/* Each fraction digit is worth a tenth of the one before; below 1 ns they stop counting. */
	for (const char *f = frac; f && is_digit(*f) && step >= 10; f++) {
		step /= 10;
		v += (uint64_t)(*f - '0') * step; /* cannot overflow: less than one more unit */
	}
	if (v < whole * unit)
		return duration_bound("more than", max_ns, err, errlen);
	if (v < min_ns)
		return duration_bound("less than", min_ns, err, errlen);
	if (v > max_ns)
		return duration_bound("more than", max_ns, err, errlen);
	*out_ns = v;
	return 0;
}

int strparse_decimal(const char *s, double min, double max, double *out, char *err, size_t errlen)
{
	const char *p = s, *frac;
	uint64_t whole;
	if (scan_decimal(&p, &whole, &frac, err, errlen) < 0)
		return -1;
	if (*p)
		return trailing(p, err, errlen);
	double v = (double)whole, scale = 0.1;
	for (const char *f = frac; f && is_digit(*f); f++, scale /= 10)
		v += (*f - '0') * scale;
	if (v < min)
		return fail(err, errlen, "less than %.15g", min);
	if (v > max)
		return fail(err, errlen, "more than %.15g", max);
	*out = v;
	return 0;
}

int strparse_range(const char *s, uint64_t min, uint64_t max, struct strparse_range *out, char *err,
                   size_t errlen)
{
	const char *p = s;
	uint64_t lo, hi;
	/* the example is the allowed span itself: ports and HTTP statuses share this parser */
	if (!is_digit(*s))
		return *s ? fail(err, errlen, "want N or A-B within %llu-%llu", (unsigned long long)min,
		                 (unsigned long long)max)
		          : fail(err, errlen, "empty");
	int over = scan_digits(&p, &lo) < 0;
	hi = lo;
	if (*p == '-') {
		p++;
		if (!is_digit(*p))
			return fail(err, errlen, "want N or A-B within %llu-%llu", (unsigned long long)min,
			            (unsigned long long)max);
		over |= scan_digits(&p, &hi) < 0;
	}
	if (*p)
		return fail(err, errlen, "want N or A-B within %llu-%llu", (unsigned long long)min,
		            (unsigned long long)max);
	if (over)
		return fail(err, errlen, "more than %llu", (unsigned long long)max);
	if (check_bounds(lo, min, max, err, errlen) < 0 || check_bounds(hi, min, max, err, errlen) < 0)
		return -1;
	if (lo > hi)
		return fail(err, errlen, "the first number is larger than the second");
	out->lo = lo;
	out->hi = hi;
	return 0;
}

int strparse_hostport(const char *s, const char *bare_host, char *host, size_t hostlen, uint16_t *port,
                      char *err, size_t errlen)
{
	const char *colon = strrchr(s, ':'), *h = s, *ps;
	size_t n;
	if (!*s)
		return fail(err, errlen, "empty");
	if (!colon) {
		if (!bare_host || !is_digit(*s))
			return fail(err, errlen, "want HOST:PORT, like 127.0.0.1:8080");
		h = bare_host;
		n = strlen(bare_host);
		ps = s;
	} else {
		n = (size_t)(colon - s);
		ps = colon + 1;
		if (s[0] == '[') {
			if (n < 2 || s[n - 1] != ']')
				return fail(err, errlen, "want [IPv6]:PORT, like [::1]:8080");
			h = s + 1;
			n -= 2;
		}
	}
	uint64_t v;
	char why[STRPARSE_ERR_MAX];
	if (strparse_uint(ps, 0, 65535, &v, why, sizeof why) < 0)
		return fail(err, errlen, "the port: %s", why);
	if (n >= hostlen)
		return fail(err, errlen, "the host is longer than %zu bytes", hostlen ? hostlen - 1 : 0);
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint16_t)v;
	return 0;
}

char *strparse_fmt_size(uint64_t n, char *out, size_t outlen)
{
	for (size_t i = 0; i < NSIZE_UNITS; i++) {
		uint64_t u = 1ull << size_units[i].shift;
		if (n && n % u == 0) {
			snprintf(out, outlen, "%llu%c", (unsigned long long)(n / u), size_units[i].letter);
			return out;
		}
	}
	snprintf(out, outlen, "%llu", (unsigned long long)n);
	return out;
}

char *strparse_fmt_duration(uint64_t ns, char *out, size_t outlen)
{
	if (!ns) {
		snprintf(out, outlen, "0");
		return out;
	}
	for (size_t i = 0; i < NDUR_UNITS; i++) {
		if (ns % dur_units[i].ns == 0) {
			snprintf(out, outlen, "%llu%s", (unsigned long long)(ns / dur_units[i].ns),
			         dur_units[i].name);
			return out;
		}
	}
	char frac[16];
	snprintf(frac, sizeof frac, "%09llu", (unsigned long long)(ns % STRPARSE_NS_PER_SEC));
	for (size_t k = strlen(frac); k > 1 && frac[k - 1] == '0'; k--)
		frac[k - 1] = '\0';
	snprintf(out, outlen, "%llu.%s", (unsigned long long)(ns / STRPARSE_NS_PER_SEC), frac);
	return out;
}
