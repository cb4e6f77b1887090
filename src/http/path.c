/* path.c - request paths: percent-decoding and normalisation to a safe relative path. */
#include "http/parse.h"

#include <string.h>
#include <strings.h>

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes "%XY" at s[0..left); the byte, or -1 when malformed. */
static int decode_escape(const char *s, size_t left)
{
	int hi, lo;

	if (left < 3)
		return -1;
	hi = hex_digit((unsigned char)s[1]);
	lo = hex_digit((unsigned char)s[2]);
	if (hi < 0 || lo < 0)
		return -1;
	return hi << 4 | lo;
}

/*
 * One pass over the input, segment by segment (RFC 3986 5.2.4 remove_dot_segments,
 * on the decoded bytes, so "%2e%2e" is "..": the file system sees decoded names).
 * Segments are written to out as they come, joined by '/'; "." is dropped and ".."
 * removes the segment before it. A segment that does not fit is not written but
 * counted in `lost`, so a later ".." can still remove it and the result is
 * HTTP_PATH_TOO_LONG only if the final path does not fit; errors in the input
 * (HTTP_PATH_BAD, HTTP_PATH_ESCAPES) take precedence over it. A final "." or ".."
 * segment leaves a trailing slash, as in RFC 3986 ("/a/.." is the root).
 */
int http_path_normalize(const char *path, size_t len, char *out, size_t outsz, int *trailing_slash)
{
	size_t i = 0, o = 0, seg_start = 0, seg_len = 0, lost = 0;
	int seg_dots = 1, seg_over = 0, trailing = 1;

	if (len == 0 || path[0] != '/')
		return HTTP_PATH_BAD;

	for (;;) {
		int c, at_end = i == len;

		if (at_end) {
			c = '/'; /* the end closes the last segment like a separator */
		} else if (path[i] == '%') {
			c = decode_escape(path + i, len - i);
			if (c <= 0)
				return HTTP_PATH_BAD; /* malformed, or a NUL byte */
			i += 3;
		} else {
			c = (unsigned char)path[i++];
			if (c == 0)
				return HTTP_PATH_BAD;
		}

		if (c != '/') {
			if (seg_len == 0)
				seg_start = o;
			seg_len++;
			seg_dots = seg_dots && c == '.';
			/* Room for the separator (when not first), this byte and the NUL. */
			if (!seg_over && lost == 0) {
				size_t need = (seg_len == 1 && o > 0) + 2;

				if (outsz - o < need) {
					seg_over = 1;
					o = seg_start;
				} else {
					if (seg_len == 1 && o > 0)
						out[o++] = '/';
					out[o++] = (char)c;
				}
			}
			continue;
		}

		/* A separator, or the end: close the segment. */
		if (seg_len == 0) {
			trailing = 1;
		} else if (seg_dots && seg_len <= 2) {
			/* Nothing of a dot segment stays in out. */
			if (!seg_over && lost == 0)
				o = seg_start;
			if (seg_len == 2) {
				if (lost > 0) {
					lost--;
				} else if (o == 0) {
					return HTTP_PATH_ESCAPES;
				} else {
					while (o > 0 && out[o - 1] != '/')
						o--;
					if (o > 0)
						o--; /* and its separator */
				}
			}
			trailing = 1;
		} else {
			if (seg_over || lost > 0)
				lost++;
			trailing = 0;
		}
		seg_len = 0;
		seg_dots = 1;
		seg_over = 0;
		if (at_end)
			break;
	}
	if (lost > 0 || o >= outsz) /* o >= outsz only when outsz is 0 */
		return HTTP_PATH_TOO_LONG;
	out[o] = '\0';
	*trailing_slash = trailing || o == 0;
	return HTTP_PATH_OK;
}

/* Works on any '/'-separated path; "..." and "..x" count too. */
int http_path_has_dot_segment(const char *norm)
{
	const char *p = norm;

	if (*p == '.')
		return 1;
	while ((p = strchr(p, '/')) != NULL) {
		p++;
		if (*p == '.')
			return 1;
	}
	return 0;
}

/* A decoded NUL is returned like any byte; the caller decides what it means. An
 * escaped '+' (%2B) stays '+' even when plus_is_space. */
ssize_t http_percent_decode(const char *src, size_t len, char *out, size_t outsz, int plus_is_space)
{
	size_t i = 0, o = 0;

	while (i < len) {
		int c = (unsigned char)src[i];

		if (c == '%') {
			c = decode_escape(src + i, len - i);
			if (c < 0)
				return -1;
			i += 3;
		} else {
			if (c == '+' && plus_is_space)
				c = ' ';
			i++;
		}
		if (o == outsz)
			return -1;
		out[o++] = (char)c;
	}
	return (ssize_t)o;
}

int http_authority_host(const char *h, size_t n, const char **name, size_t *nlen)
{
	const char *port = NULL;
	if (n && h[0] == '[') {
		const char *rb = memchr(h, ']', n);
		if (!rb)
			return -1;
		*name = h + 1;
		*nlen = (size_t)(rb - h - 1);
		if (rb + 1 < h + n) {
			if (rb[1] != ':')
				return -1;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(h, ':', n);
		*name = h;
		*nlen = colon ? (size_t)(colon - h) : n;
		port = colon ? colon + 1 : NULL;
		if (*nlen && h[*nlen - 1] == '.')
			(*nlen)--; /* "localhost." is the same name */
	}
	unsigned long v = 0;
	for (const char *p = port; p && p < h + n; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535) /* no TCP port: "Host: 127.0.0.1:99999" is a 400 */
			return -1;
	}
	return 0;
}

int http_name_is_localhost(const char *name, size_t n)
{
	if (n == 9 && !strncasecmp(name, "localhost", 9))
		return 1;
	return n > 10 && !strncasecmp(name + n - 10, ".localhost", 10);
}
