/* multipart.c - header parameters and multipart/form-data bodies: pure, no allocation. */
#include "http/multipart.h"

#include <string.h>
#include <strings.h>

static int is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

int http_param_find(struct http_slice v, char sep, const char *name, struct http_slice *out)
{
	const char *s = v.p;
	size_t n = v.len, i = 0, nl = strlen(name);
	int first = 1;
	while (i < n) {
		while (i < n && (is_ows(s[i]) || s[i] == sep))
			i++;
		if (i >= n)
			break;
		size_t ks = i;
		while (i < n && s[i] != '=' && s[i] != sep && !is_ows(s[i]))
			i++;
		size_t ke = i;
		while (i < n && is_ows(s[i]))
			i++;
		if (i >= n || s[i] != '=') {
			/* An item without '=': only the first (a type, a scheme) may be one. */
			if (!first)
				return -1;
			first = 0;
			while (i < n && s[i] != sep)
				i++;
			continue;
		}
		first = 0;
		i++; /* '=' */
		while (i < n && is_ows(s[i]))
			i++;
		struct http_slice val;
		if (i < n && s[i] == '"') {
			size_t vs = ++i;
			while (i < n && s[i] != '"') {
				if (s[i] == '\\')
					i++;
				i++;
			}
			if (i >= n)
				return -1; /* an unterminated quoted-string */
			val.p = s + vs;
			val.len = i - vs;
			i++;
		} else {
			size_t vs = i;
			while (i < n && s[i] != sep && !is_ows(s[i]))
				i++;
			val.p = s + vs;
			val.len = i - vs;
		}
		if (ke - ks == nl && !strncasecmp(s + ks, name, nl)) {
			*out = val;
			return 0;
		}
		while (i < n && s[i] != sep) {
			if (!is_ows(s[i]))
				return -1; /* text after a value, before the separator */
			i++;
		}
	}
	return -1;
}

long http_param_unquote(struct http_slice s, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] == '\\' && i + 1 < s.len)
			i++;
		if (o >= outsz)
			return -1;
		out[o++] = s.p[i];
	}
	return (long)o;
}

int http_multipart_init(struct http_mp *m, struct http_slice ct, const char *body, size_t len)
{
	static const char type[] = "multipart/form-data";
	struct http_slice b;
	memset(m, 0, sizeof(*m));
	if (ct.len < sizeof(type) - 1 || strncasecmp(ct.p, type, sizeof(type) - 1) ||
	    (ct.len > sizeof(type) - 1 && ct.p[sizeof(type) - 1] != ';' && !is_ows(ct.p[sizeof(type) - 1])))
		return -1;
	if (http_param_find(ct, ';', "boundary", &b) < 0 || !b.len || b.len > HTTP_MP_MAX_BOUNDARY ||
	    memchr(b.p, '\\', b.len))
		return -1;
	memcpy(m->delim, "\r\n--", 4);
	memcpy(m->delim + 4, b.p, b.len);
	m->dlen = 4 + b.len;
	m->p = body;
	m->end = body + len;
	return 0;
}

/* What follows a delimiter at p: "--" closes the body (returns 0); optional padding
 * and a line end start a part (returns 1, *next past them); anything else means the
 * "delimiter" was data after all (returns -1). */
static int after_delim(const char *p, const char *end, const char **next)
{
	if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
		*next = p + 2;
		return 0;
	}
	while (p < end && is_ows(*p))
		p++;
	if (p < end && *p == '\r')
		p++;
	if (p < end && *p == '\n') {
		*next = p + 1;
		return 1;
	}
	return -1;
}

/* The next real delimiter (one followed by "--" or a line end) in [p, end) at or after
 * p, with what follows it. Returns it, or NULL. */
static const char *find_delim(const struct http_mp *m, const char *p, const char *delim, size_t dlen,
                              int *kind, const char **next)
{
	while (p < m->end) {
		const char *d = memmem(p, (size_t)(m->end - p), delim, dlen);
		if (!d)
			return NULL;
		*kind = after_delim(d + dlen, m->end, next);
		if (*kind >= 0)
			return d;
		p = d + 1;
	}
	return NULL;
}

/* Reads the part's header lines in h[0..n) into *part. Returns 0 or -1. */
static int part_headers(const char *h, size_t n, struct http_mp_part *part)
{
	int disposition = 0;
	size_t i = 0;
	while (i < n) {
		const char *eol = memchr(h + i, '\n', n - i);
		size_t le = eol ? (size_t)(eol - h) : n, next = eol ? le + 1 : n;
		if (le > i && h[le - 1] == '\r')
			le--;
		const char *colon = memchr(h + i, ':', le - i);
		if (!colon)
			return -1;
		struct http_slice name = {h + i, (size_t)(colon - (h + i))};
		struct http_slice val = {colon + 1, (size_t)(h + le - colon - 1)};
		while (val.len && is_ows(*val.p))
			val.p++, val.len--;
		while (val.len && is_ows(val.p[val.len - 1]))
			val.len--;
		if (http_slice_ieq(name, "content-disposition")) {
			if (val.len < 9 || strncasecmp(val.p, "form-data", 9) ||
			    http_param_find(val, ';', "name", &part->name) < 0)
				return -1;
			if (http_param_find(val, ';', "filename", &part->filename) < 0)
				part->filename.p = NULL;
			disposition = 1;
		} else if (http_slice_ieq(name, "content-type")) {
			part->type = val;
		}
		i = next;
	}
	return disposition ? 0 : -1;
}

int http_multipart_next(struct http_mp *m, struct http_mp_part *part)
{
	const char *next;
	int kind;
	if (m->done)
		return m->done < 0 ? -1 : 0;
	memset(part, 0, sizeof(*part));
	if (!m->started) {
		/* The first delimiter may open the body (no CRLF before it) or follow a
		 * preamble. */
		m->started = 1;
		if ((size_t)(m->end - m->p) >= m->dlen - 2 && !memcmp(m->p, m->delim + 2, m->dlen - 2) &&
		    (kind = after_delim(m->p + m->dlen - 2, m->end, &next)) >= 0) {
			m->p = next;
		} else if (find_delim(m, m->p, m->delim, m->dlen, &kind, &next)) {
			m->p = next;
		} else {
			m->done = -1;
			return -1;
		}
		if (kind == 0) {
			m->done = 1;
			return 0;
		}
	}
	const char *h = m->p, *body;
	size_t hlen;
	if (m->end - m->p >= 2 && m->p[0] == '\r' && m->p[1] == '\n') {
		hlen = 0; /* no header lines at all: rejected below (no name) */
		body = m->p + 2;
	} else {
		size_t look = (size_t)(m->end - m->p);
		if (look > HTTP_MP_MAX_HEAD + 4)
			look = HTTP_MP_MAX_HEAD + 4;
		const char *e = memmem(m->p, look, "\r\n\r\n", 4);
		if (!e) {
			m->done = -1;
			return -1;
		}
		hlen = (size_t)(e - h);
		body = e + 4;
	}
	const char *d =
	        part_headers(h, hlen, part) < 0 ? NULL : find_delim(m, body, m->delim, m->dlen, &kind, &next);
	if (!d) {
		m->done = -1;
		return -1;
	}
	part->data.p = body;
	part->data.len = (size_t)(d - body);
	m->p = next;
	m->done = kind == 0;
	return 1;
}
