/* parse.c - HTTP/1.x request heads, chunked bodies and Range values, over caller buffers. */
#include "http/parse.h"

#include <stdio.h>
#include <string.h>

/*
 * Request heads.
 *
 * The result of http_parse_request depends only on buf[0..len), never on how the
 * bytes arrived (last_len only saves work), so feeding a head whole, byte by byte or
 * in random pieces gives the same answer (the unit tests check that for every row,
 * and a fuzzer can use it as its oracle).
 * The rules, in order:
 *  1. the request line (after any leading empty lines) is checked as soon as its
 *     bytes arrive: a bad method, target or version, a method over HTTP_MAX_METHOD
 *     (501) or a target over HTTP_MAX_URI (414) fails at once, before the head ends;
 *  2. once the blank line is within the first HTTP_MAX_HEAD bytes, the head is
 *     parsed and its first error, if any, reported;
 *  3. otherwise the head is incomplete: 431 when len >= HTTP_MAX_HEAD (it cannot
 *     complete within the limit any more), else HTTP_PARSE_INCOMPLETE.
 * Errors in header lines of an incomplete head wait until the head completes (rule
 * 2) or overflows (rule 3), which is what keeps the result independent of the split.
 */

/* RFC 9110 5.6.2 tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA. */
static const unsigned char tchar[256] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
        0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, /* 0x20  !"#$%&'()*+,-./ */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0x30 0-9 :;<=>? */
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 @A-O */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, /* 0x50 P-Z[\]^_ */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 `a-o */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, /* 0x70 p-z{|}~ DEL */
                                                        /* 0x80-0xff: 0 */
};

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Word-at-a-time byte classes (exact as yes/no answers for the whole word). */
static inline uint64_t word_has_less(uint64_t w, unsigned n) /* a byte < n, n <= 128 */
{
	return (w - ONES * n) & ~w & HIGHS;
}

static inline uint64_t word_has_more(uint64_t w, unsigned n) /* a byte > n, n <= 127 */
{
	return ((w + ONES * (127 - n)) | w) & HIGHS;
}

static inline uint64_t word_has_byte(uint64_t w, unsigned char c)
{
	return word_has_less(w ^ (ONES * c), 1);
}

/* VCHAR but '#': a fragment never goes to the server (RFC 9112 3.2), so a target with
 * one is a 400, not a path or query that silently ends there. */
static inline int is_target_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#';
}

/* Field values: HTAB, SP, VCHAR and obs-text (RFC 9110 5.5). */
static inline int is_value_byte(unsigned char c)
{
	return c >= 0x20 ? c != 0x7f : c == '\t';
}

/* Returns the first byte in [p, end) that cannot be part of a request-target. */
static const char *scan_target(const char *p, const char *end)
{
	while (end - p >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		if (word_has_less(w, 0x21) | word_has_more(w, 0x7e) | word_has_byte(w, '#'))
			break;
		p += 8;
	}
	while (p < end && is_target_byte((unsigned char)*p))
		p++;
	return p;
}

/* Returns the first byte in [p, end) that cannot be part of a field value. */
static const char *scan_value(const char *p, const char *end)
{
	for (;;) {
		/* HTAB stops the fast loop too; it is rare enough to take the slow step. */
		while (end - p >= 8) {
			uint64_t w;

			memcpy(&w, p, 8);
			if (word_has_less(w, 0x20) | word_has_byte(w, 0x7f))
				break;
			p += 8;
		}
		if (p == end || !is_value_byte((unsigned char)*p))
			return p;
		p++;
	}
}

/* Whether the blank line that ends a head ("\n\n" or "\n\r\n") starts in
 * buf[from..end); bare CRs elsewhere do not matter here, the full parse finds them. */
static int head_end_found(const char *from, const char *end)
{
	const char *p = from;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (++p == end)
			break;
		if (*p == '\n' || (*p == '\r' && end - p >= 2 && p[1] == '\n'))
			return 1;
	}
	return 0;
}

static int parse_fail(struct http_request *req, enum lk_err e)
{
	req->error = e;
	req->error_status = lk_error(e)->http;
	req->error_reason = lk_error(e)->msg;
	return HTTP_PARSE_ERROR;
}

size_t http_parse_error_detail(enum lk_err e, char *out, size_t len)
{
	if (!len)
		return 0;
	out[0] = 0;
	switch (e) {
	case LK_E_H_TARGET_LONG: lk_size_text(HTTP_MAX_URI, out, len); break;
	case LK_E_H_HEAD_LARGE: lk_size_text(HTTP_MAX_HEAD, out, len); break;
	case LK_E_H_TOO_MANY_FIELDS: snprintf(out, len, "%d", HTTP_MAX_HEADERS); break;
	default: break;
	}
	return strlen(out);
}

/* Internal results of the line parsers; errors are HTTP_PARSE_ERROR with req set. */
#define LINE_OK 0

/* Skips the empty lines a client may send before the request line (RFC 9112 2.2). */
static int skip_empty_lines(const char **pp, const char *end, struct http_request *req)
{
	const char *p = *pp;

	while (p < end) {
		if (*p == '\n') {
			p++;
		} else if (*p == '\r') {
			if (end - p < 2) {
				*pp = p;
				return HTTP_PARSE_INCOMPLETE;
			}
			if (p[1] != '\n')
				return parse_fail(req, LK_E_H_BARE_CR);
			p += 2;
		} else {
			break;
		}
	}
	*pp = p;
	return p < end ? LINE_OK : HTTP_PARSE_INCOMPLETE;
}

/* Ends a line at *pp: CRLF or LF. */
static int eat_eol(const char **pp, const char *end, struct http_request *req, enum lk_err reason)
{
	const char *p = *pp;

	if (p == end)
		return HTTP_PARSE_INCOMPLETE;
	if (*p == '\n') {
		*pp = p + 1;
		return LINE_OK;
	}
	if (*p != '\r')
		return parse_fail(req, reason);
	if (end - p < 2)
		return HTTP_PARSE_INCOMPLETE;
	if (p[1] != '\n')
		return parse_fail(req, LK_E_H_BARE_CR);
	*pp = p + 2;
	return LINE_OK;
}

/* Parses the request line at *pp; on LINE_OK *pp is past its line end. Every check
 * fires as soon as the offending byte (or the byte over a limit) is present. */
static int parse_request_line(const char **pp, const char *end, struct http_request *req)
{
	static const char http[5] = {'H', 'T', 'T', 'P', '/'};
	const char *p = *pp, *m = p, *t, *lim;
	int major, minor, i, r;

	lim = end - p > HTTP_MAX_METHOD ? p + HTTP_MAX_METHOD + 1 : end;
	while (p < lim && tchar[(unsigned char)*p])
		p++;
	if (p - m > HTTP_MAX_METHOD)
		return parse_fail(req, LK_E_H_METHOD_LONG);
	if (p == end)
		return HTTP_PARSE_INCOMPLETE;
	if (*p != ' ') {
		if (p == m || *p == '\r' || *p == '\n')
			return parse_fail(req, LK_E_H_BAD_LINE);
		return parse_fail(req, LK_E_H_BAD_METHOD);
	}
	if (p == m)
		return parse_fail(req, LK_E_H_EMPTY_METHOD);
	req->method.p = m;
	req->method.len = (size_t)(p - m);
	t = ++p;

	lim = end - t > HTTP_MAX_URI ? t + HTTP_MAX_URI + 1 : end;
	p = scan_target(t, lim);
	if (p - t > HTTP_MAX_URI)
		return parse_fail(req, LK_E_H_TARGET_LONG);
	if (p == end)
		return HTTP_PARSE_INCOMPLETE;
	if (*p != ' ') {
		if (*p == '\r' || *p == '\n')
			return parse_fail(req, LK_E_H_NO_VERSION);
		return parse_fail(req, LK_E_H_BAD_TARGET_BYTE);
	}
	if (p == t)
		return parse_fail(req, LK_E_H_EMPTY_TARGET);
	req->target.p = t;
	req->target.len = (size_t)(p - t);
	p++;

	for (i = 0; i < 5; i++, p++) {
		if (p == end)
			return HTTP_PARSE_INCOMPLETE;
		if (*p != http[i])
			return parse_fail(req, LK_E_H_BAD_VERSION);
	}
	if (p == end)
		return HTTP_PARSE_INCOMPLETE;
	if (*p < '0' || *p > '9')
		return parse_fail(req, LK_E_H_BAD_VERSION);
	major = *p++ - '0';
	if (p == end)
		return HTTP_PARSE_INCOMPLETE;
	if (*p++ != '.')
		return parse_fail(req, LK_E_H_BAD_VERSION);
	if (p == end)
		return HTTP_PARSE_INCOMPLETE;
	if (*p < '0' || *p > '9')
		return parse_fail(req, LK_E_H_BAD_VERSION);
	minor = *p++ - '0';
	r = eat_eol(&p, end, req, LK_E_H_BAD_VERSION);
	if (r != LINE_OK)
		return r;
	if (major != 1 || minor > 1)
		return parse_fail(req, LK_E_H_VERSION);
	req->minor = minor;
	*pp = p;
	return LINE_OK;
}

/* Parses the header lines and the blank line from *pp; on LINE_OK *pp is past the
 * blank line, otherwise it is at or just before where the parse stopped. An error
 * here is the head's first error only if the head is complete, which the caller
 * decides. */
static int parse_headers(const char **pp, const char *end, struct http_request *req)
{
	const char *p = *pp;

	for (;;) {
		const char *name, *value, *vend;
		int r;

		*pp = p; /* the line start: where an error is reported from */
		if (p == end)
			return HTTP_PARSE_INCOMPLETE;
		if (*p == '\r' || *p == '\n') {
			r = eat_eol(&p, end, req, LK_E_H_BARE_CR);
			if (r == LINE_OK)
				*pp = p;
			return r;
		}
		if (*p == ' ' || *p == '\t') {
			if (req->nheaders == 0)
				return parse_fail(req, LK_E_H_WS_FIRST_FIELD);
			return parse_fail(req, LK_E_H_OBS_FOLD);
		}
		if (req->nheaders == HTTP_MAX_HEADERS)
			return parse_fail(req, LK_E_H_TOO_MANY_FIELDS);

		name = p;
		while (p < end && tchar[(unsigned char)*p])
			p++;
		if (p == end)
			return HTTP_PARSE_INCOMPLETE;
		if (*p != ':') {
			*pp = p;
			if (*p == ' ' || *p == '\t')
				return parse_fail(req, LK_E_H_WS_BEFORE_COLON);
			if (*p == '\r' || *p == '\n')
				return parse_fail(req, LK_E_H_NO_COLON);
			return parse_fail(req, LK_E_H_BAD_NAME);
		}
		if (p == name) {
			*pp = p;
			return parse_fail(req, LK_E_H_EMPTY_NAME);
		}
		req->headers[req->nheaders].name.p = name;
		req->headers[req->nheaders].name.len = (size_t)(p - name);
		p++;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		value = p;
		p = scan_value(p, end);
		vend = p;
		if (p < end && *p != '\r' && *p != '\n') {
			*pp = p;
			if (*p == '\0')
				return parse_fail(req, LK_E_H_NUL_VALUE);
			return parse_fail(req, LK_E_H_CTL_VALUE);
		}
		r = eat_eol(&p, end, req, LK_E_H_BARE_CR);
		if (r != LINE_OK) {
			*pp = vend;
			return r;
		}
		while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
			vend--;
		req->headers[req->nheaders].value.p = value;
		req->headers[req->nheaders].value.len = (size_t)(vend - value);
		req->nheaders++;
	}
}

static int incomplete_head(size_t len, struct http_request *req)
{
	if (len >= HTTP_MAX_HEAD)
		return parse_fail(req, LK_E_H_HEAD_LARGE);
	return HTTP_PARSE_INCOMPLETE;
}

/* Contract in parse.h; the rules are at the top of this file. Returns the bytes
 * consumed, leading empty lines included, so the caller can step to what follows. */
int http_parse_request(const char *buf, size_t len, struct http_request *req, size_t last_len)
{
	const char *end = buf + (len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD);
	const char *p = buf, *line, *hdrs;
	int r;

	req->nheaders = 0;
	req->error = LK_E_OK;
	req->error_status = 0;
	req->error_reason = NULL;
	if (last_len > len)
		last_len = 0;

	r = skip_empty_lines(&p, end, req);
	if (r == HTTP_PARSE_ERROR)
		return r;
	if (r == HTTP_PARSE_INCOMPLETE)
		return incomplete_head(len, req);
	line = p;

	if (last_len != 0) {
		/* Resumed: look only for the blank line among the new bytes (a few before
		 * them, since its first bytes may have come earlier). */
		const char *from = buf + (last_len > 3 ? last_len - 3 : 0);
		const char *seen = buf + last_len < end ? buf + last_len : end;

		if (from < line)
			from = line;
		if (!head_end_found(from, end)) {
			/* A request line that ended before last_len passed the checks on an
			 * earlier call; one still open or ending in the new bytes is checked
			 * now, so its errors come as early as in a whole parse. */
			if (seen <= line || !memchr(line, '\n', (size_t)(seen - line))) {
				r = parse_request_line(&p, end, req);
				if (r == HTTP_PARSE_ERROR)
					return r;
			}
			return incomplete_head(len, req);
		}
	}

	r = parse_request_line(&p, end, req);
	if (r == HTTP_PARSE_ERROR)
		return r;
	if (r == HTTP_PARSE_INCOMPLETE)
		return incomplete_head(len, req);

	hdrs = p;
	r = parse_headers(&p, end, req);
	if (r == LINE_OK)
		return (int)(p - buf);
	if (r == HTTP_PARSE_ERROR) {
		/* No blank line lies before the error (the parse would have stopped
		 * there), so the head is complete iff one starts at or after it. */
		const char *from = p - hdrs > 2 ? p - 2 : hdrs;

		if (head_end_found(from, end))
			return r;
		req->error = LK_E_OK;
		req->error_status = 0;
		req->error_reason = NULL;
	}
	return incomplete_head(len, req);
}

/* Linear search: heads are short and most lookups hit the first few fields. */
const struct http_header *http_find_header_n(const struct http_request *req, const char *name, size_t len)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i].name.len == len && http_slice_ieq(req->headers[i].name, name))
			return &req->headers[i];
	return NULL;
}

static inline unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ASCII case only, independent of the locale. */
int http_slice_ieq(struct http_slice s, const char *str)
{
	size_t i;

	for (i = 0; i < s.len; i++) {
		if (str[i] == '\0')
			return 0;
		if (ascii_lower((unsigned char)s.p[i]) != ascii_lower((unsigned char)str[i]))
			return 0;
	}
	return str[i] == '\0';
}

static int is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* A qvalue (RFC 9110 12.4.2): "0", "1", "0.5", "1.000"; -1 when malformed. */
static int parse_qvalue(const char *p, size_t n)
{
	if (!n || (p[0] != '0' && p[0] != '1') || n > 5 || (n > 1 && p[1] != '.'))
		return -1;
	int q = (p[0] - '0') * 1000, scale = 100;
	for (size_t i = 2; i < n; i++, scale /= 10) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		q += (p[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/* The weight of one parameter "q=0.5" (blanks around it allowed): 0-1000, 0 for a
 * malformed weight (taken as "not acceptable"); -2 when the parameter is not q. */
static int param_q(const char *p, size_t n)
{
	while (n && is_ows(*p)) {
		p++;
		n--;
	}
	while (n && is_ows(p[n - 1]))
		n--;
	if (n < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
		return -2;
	int v = parse_qvalue(p + 2, n - 2);
	return v < 0 ? 0 : v;
}

/* How closely the range p[0..n) names type: 3 itself, 2 its major type with a wildcard
 * subtype, 1 the wildcard ("*" or "* / *" without the blanks), 0 not at all. */
static int range_specificity(const char *p, size_t n, const char *type, size_t major, size_t tlen)
{
	if (n == tlen && !strncasecmp(p, type, tlen))
		return 3;
	if (n == major + 2 && !strncasecmp(p, type, major) && p[major] == '/' && p[major + 1] == '*')
		return 2;
	if (n == 1)
		return *p == '*';
	return n == 3 && !memcmp(p, "*/*", 3);
}

int http_accept_q(struct http_slice accept, const char *type, int *spec)
{
	const char *slash = strchr(type, '/');
	size_t major = slash ? (size_t)(slash - type) : strlen(type), tlen = strlen(type);
	int best_q = -1, best = 0;
	const char *p = accept.p, *end = accept.p + accept.len;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma ? comma : end;
		const char *semi = memchr(p, ';', (size_t)(e - p)), *re = semi ? semi : e;
		while (p < re && is_ows(*p))
			p++;
		while (re > p && is_ows(re[-1]))
			re--;
		int s = range_specificity(p, (size_t)(re - p), type, major, tlen);
		if (s > best) {
			int q = 1000;
			for (const char *a = semi; a && a < e;) {
				const char *next = memchr(a + 1, ';', (size_t)(e - a - 1)),
				           *ae = next ? next : e;
				int v = param_q(a + 1, (size_t)(ae - a - 1));
				if (v != -2)
					q = v;
				a = next;
			}
			best = s;
			best_q = q;
		}
		p = comma ? comma + 1 : end;
	}
	if (spec)
		*spec = best;
	return best_q;
}

/*
 * Chunked bodies. One byte at a time outside chunk data (size lines, CRLFs,
 * trailers are short); chunk data moves down with memmove. The write position never
 * passes the read position, so decoding in place is safe.
 */

enum chunk_state {
	CH_SIZE = 0, /* hex digits of a chunk size (the zeroed state) */
	CH_SIZE_WS,  /* BWS after the digits, before ';' or the line end */
	CH_EXT,      /* inside chunk extensions, skipped */
	CH_SIZE_LF,  /* CR seen at the end of a size line */
	CH_DATA,     /* chunk data; d->remaining bytes left */
	CH_DATA_CR,  /* CRLF after chunk data */
	CH_DATA_LF,
	CH_TRAILER_START, /* at the start of a trailer line or the final blank line */
	CH_TRAILER_NAME,  /* in a trailer field's name: a token up to the colon */
	CH_TRAILER,       /* in a trailer field's value, skipped */
	CH_TRAILER_LF,
	CH_END_LF, /* CR of the final blank line seen */
	CH_DONE,
	CH_ERROR,
};

/* Trailer lines allowed after the last chunk; hex_digits counts them (it has no
 * other use once the size line of the last chunk is read). */
#define CHUNK_MAX_TRAILERS HTTP_MAX_HEADERS

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = ascii_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static inline int is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The size line ended: on to the data, or to the trailers after the last chunk. */
static void chunk_size_done(struct http_chunked *d)
{
	d->line_len = 0;
	if (d->remaining != 0) {
		d->state = CH_DATA;
	} else {
		d->hex_digits = 0;
		d->state = CH_TRAILER_START;
	}
}

static void chunk_next_size(struct http_chunked *d)
{
	d->state = CH_SIZE;
	d->line_len = 0;
	d->hex_digits = 0;
	d->remaining = 0;
}

/* Feeds one byte to the line-level state machine; returns 0, or -1 on an error.
 * Never called in CH_DATA, CH_DONE or CH_ERROR. */
static int chunk_byte(struct http_chunked *d, unsigned char c)
{
	int v;

	switch (d->state) {
	case CH_SIZE:
		v = hex_value(c);
		if (v >= 0) {
			/* 16 digits at most (even zeros), and the value stays below 2^63. */
			if (d->hex_digits == 16 || d->remaining >= (UINT64_C(1) << 59))
				return -1;
			d->remaining = d->remaining << 4 | (uint64_t)v;
			d->hex_digits++;
			d->line_len++;
			return 0;
		}
		if (d->hex_digits == 0)
			return -1;
		d->state = CH_SIZE_WS;
		/* fall through */
	case CH_SIZE_WS:
		if (c == ' ' || c == '\t')
			break;
		if (c == ';') {
			d->state = CH_EXT;
			break;
		}
		if (c == '\r') {
			d->state = CH_SIZE_LF;
			return 0;
		}
		return -1; /* a bare LF included: chunked framing ends its lines with CRLF only */
	case CH_EXT:
		if (c == '\r') {
			d->state = CH_SIZE_LF;
			return 0;
		}
		if (is_ctl(c))
			return -1;
		break;
	case CH_SIZE_LF:
		if (c != '\n')
			return -1;
		chunk_size_done(d);
		return 0;
	case CH_DATA_CR:
		if (c == '\r') {
			d->state = CH_DATA_LF;
			return 0;
		}
		return -1;
	case CH_DATA_LF:
		if (c != '\n')
			return -1;
		chunk_next_size(d);
		return 0;
	case CH_TRAILER_START:
		if (c == '\r') {
			d->state = CH_END_LF;
			return 0;
		}
		/* A trailer is a field line like a header (RFC 9112 7.1.2): name, colon. */
		if (d->hex_digits == CHUNK_MAX_TRAILERS || !tchar[c])
			return -1;
		d->hex_digits++;
		d->line_len = 0;
		d->state = CH_TRAILER_NAME;
		break;
	case CH_TRAILER_NAME:
		if (c == ':')
			d->state = CH_TRAILER;
		else if (!tchar[c])
			return -1;
		break;
	case CH_TRAILER:
		if (c == '\r') {
			d->state = CH_TRAILER_LF;
			return 0;
		}
		if (is_ctl(c))
			return -1;
		break;
	case CH_TRAILER_LF:
		if (c != '\n')
			return -1;
		d->state = CH_TRAILER_START;
		return 0;
	case CH_END_LF:
		if (c != '\n')
			return -1;
		d->state = CH_DONE;
		return 0;
	default: return -1;
	}
	/* A byte of a size line's tail or of a trailer line: bound the line. */
	if (++d->line_len > HTTP_CHUNK_MAX_LINE)
		return -1;
	return 0;
}

/* Once done, every further byte belongs to what follows the body; after an error,
 * the decoder stays failed. */
ssize_t http_chunked_decode(struct http_chunked *d, char *buf, size_t *len)
{
	size_t n = *len, r = 0, w = 0;

	if (d->state == CH_ERROR)
		return HTTP_PARSE_ERROR;
	while (r < n && d->state != CH_DONE) {
		if (d->state == CH_DATA) {
			size_t k = n - r;

			if (k > d->remaining)
				k = (size_t)d->remaining;
			if (w != r)
				memmove(buf + w, buf + r, k);
			w += k;
			r += k;
			d->remaining -= k;
			if (d->remaining == 0)
				d->state = CH_DATA_CR;
			continue;
		}
		if (chunk_byte(d, (unsigned char)buf[r++]) < 0) {
			d->state = CH_ERROR;
			*len = w;
			return HTTP_PARSE_ERROR;
		}
	}
	if (d->state != CH_DONE) {
		*len = w;
		return HTTP_PARSE_INCOMPLETE;
	}
	if (w != r && r < n)
		memmove(buf + w, buf + r, n - r);
	*len = w;
	return (ssize_t)(n - r);
}

/*
 * Range (RFC 9110 14.1.2). Being lenient is safe here: whatever is not understood
 * gives HTTP_RANGE_NONE, and the whole representation is always a valid answer.
 */

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Reads decimal digits at *pp, saturating at UINT64_MAX; returns how many. */
static size_t range_number(const char **pp, const char *end, uint64_t *out)
{
	const char *start = *pp, *p = start;
	uint64_t v = 0;

	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
		p++;
	}
	*out = v;
	*pp = p;
	return (size_t)(p - start);
}

/* Contract in parse.h. Numbers too large for 64 bits saturate, so a huge first-pos
 * is unsatisfiable and a huge last-pos is clamped. *first and *last are set only
 * on HTTP_RANGE_OK. */
enum http_range_result http_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                                        uint64_t *last)
{
	const char *p = v, *end = v + len;
	uint64_t a = 0, b = 0;
	int has_a = 0, has_b = 0, count = 0;

	p = skip_ows(p, end);
	if (end - p < 5 || !http_slice_ieq((struct http_slice){p, 5}, "bytes"))
		return HTTP_RANGE_NONE;
	p = skip_ows(p + 5, end);
	if (p == end || *p != '=')
		return HTTP_RANGE_NONE;
	p++;

	/* A list (RFC 9110 5.6.1): empty elements are allowed and ignored. */
	for (;;) {
		p = skip_ows(p, end);
		if (p == end)
			break;
		if (*p == ',') {
			p++;
			continue;
		}
		if (count == 1)
			return HTTP_RANGE_NONE; /* several ranges: send the whole thing */
		has_a = range_number(&p, end, &a) != 0;
		p = skip_ows(p, end);
		if (p == end || *p != '-')
			return HTTP_RANGE_NONE;
		p = skip_ows(p + 1, end);
		has_b = range_number(&p, end, &b) != 0;
		if (!has_a && !has_b)
			return HTTP_RANGE_NONE;
		count++;
		p = skip_ows(p, end);
		if (p != end && *p != ',')
			return HTTP_RANGE_NONE;
	}
	if (count != 1)
		return HTTP_RANGE_NONE;

	if (!has_a) {
		/* suffix-range: the last b bytes, or all of a shorter representation */
		if (b == 0 || size == 0)
			return HTTP_RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return HTTP_RANGE_OK;
	}
	if (has_b && b < a)
		return HTTP_RANGE_NONE; /* invalid, so ignored (RFC 9110 14.1.1) */
	if (a >= size)
		return HTTP_RANGE_UNSATISFIABLE;
	*first = a;
	*last = has_b && b < size - 1 ? b : size - 1;
	return HTTP_RANGE_OK;
}
