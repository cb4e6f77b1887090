/* strparse.h - the one parser of what people type: counts, sizes, durations, ranges, HOST:PORT. */
#ifndef LOOPKIT_CORE_STRPARSE_H
#define LOOPKIT_CORE_STRPARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every function here is pure: it reads the NUL-terminated string s and nothing past
 * its NUL, allocates nothing, and on failure writes a short reason into err (at most
 * errlen bytes, NUL-terminated; err may be NULL) and leaves *out untouched. The reason
 * names what is wrong without repeating the input: "more than 65535", "unknown unit 'X'
 * (use K, M, G or T)". Callers prefix it with the flag and the value.
 *
 * No sign, no spaces, no locale: "1.5" means one and a half everywhere.
 */

#define STRPARSE_ERR_MAX 96 /* every reason fits in this many bytes */

#define STRPARSE_NS_PER_MS  1000000ull
#define STRPARSE_NS_PER_SEC 1000000000ull

/* A decimal whole number in [min, max]. */
int strparse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen);

/* A size in bytes in [min, max]: a whole number with an optional binary unit, any case,
 * optionally followed by "B" or "iB": 1024, 64K, 64k, 10M, 10MiB, 2G, 1T (K = 1024). */
int strparse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen);

/* A duration in nanoseconds in [min_ns, max_ns]: a decimal number of seconds ("1.5"),
 * or a decimal number with one unit: us, ms, s, m, h ("250us", "500ms", "30s", "2m",
 * "1.5h"). Digits below a nanosecond are dropped. */
int strparse_duration(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *out_ns, char *err,
                      size_t errlen);

/* A plain decimal number in [min, max] ("2000", "0.5"); no exponent. */
int strparse_decimal(const char *s, double min, double max, double *out, char *err, size_t errlen);

/* "A-B" (A <= B) or "A" (meaning A-A), each a whole number in [min, max]: port ranges. */
struct strparse_range {
	uint64_t lo, hi;
};
int strparse_range(const char *s, uint64_t min, uint64_t max, struct strparse_range *out, char *err,
                   size_t errlen);

/* An address people type: "HOST:PORT", "[V6]:PORT", ":PORT" (host "": the caller's
 * wildcard or default) or, when bare_host is not NULL, "PORT" alone (host bare_host:
 * `loopkit proxy 8080` means 127.0.0.1:8080). HOST is copied without brackets into host
 * (hostlen bytes), unchecked (a name or an IP: the caller resolves it); an unbracketed
 * IPv6 address splits at its last ':'. PORT is 0-65535 (the caller refuses 0 when it
 * must connect). */
int strparse_hostport(const char *s, const char *bare_host, char *host, size_t hostlen, uint16_t *port,
                      char *err, size_t errlen);

/* Writes n bytes as strparse_size would read it back, in the largest unit that divides
 * it: 1073741824 -> "1G", 1536 -> "1536". Returns out. */
char *strparse_fmt_size(uint64_t n, char *out, size_t outlen);
/* Writes a duration as strparse_duration would read it back: "1h", "2m", "30s", "500ms",
 * "250us", or decimal seconds ("1.0000005"). Returns out. */
char *strparse_fmt_duration(uint64_t ns, char *out, size_t outlen);

#endif
