/* resp.c - response framing for bench http: status, Content-Length, chunked, close. */
#include "bench/resp.h"

#include <string.h>

#include "core/errors.h"

void bench_resp_reset(struct bench_resp *r)
{
	memset(r, 0, sizeof(*r));
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq_prefix(const char *p, size_t n, const char *name)
{
	size_t k = strlen(name);
	if (n < k)
		return 0;
	for (size_t i = 0; i < k; i++)
		if (lower((unsigned char)p[i]) != name[i])
			return 0;
	return 1;
}

/* True when the comma-separated value v[0..n) has the token tok (lower case). */
static int has_token(const char *v, size_t n, const char *tok)
{
	size_t k = strlen(tok), i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == k && ieq_prefix(v + s, k, tok))
			return 1;
	}
	return 0;
}

/* Parses a complete head buf[0..n) (ending in the blank line). */
static int parse_head(struct bench_resp *r, const char *buf, size_t n, int head_only, const char **why)
{
	const char *p = buf, *end = buf + n;
	if (n < 12 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' || p[9] < '1' ||
	    p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') {
		*why = "bad status line";
		return -1;
	}
	int minor = p[7] - '0';
	int keepalive = 0, closetok = 0;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->close = minor == 0;
	int have_len = 0, chunked = 0;
	uint64_t clen = 0;
	p = memchr(p, '\n', (size_t)(end - p));
	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		if (le == p)
			break; /* blank line */
		const char *colon = memchr(p, ':', (size_t)(le - p));
		if (!colon) {
			*why = "header line without a colon";
			return -1;
		}
		const char *v = colon + 1;
		while (v < le && (*v == ' ' || *v == '\t'))
			v++;
		size_t nl = (size_t)(colon - p), vl = (size_t)(le - v);
		if (nl == 14 && ieq_prefix(p, nl, "content-length")) {
			uint64_t x = 0;
			size_t i = 0;
			for (; i < vl && v[i] >= '0' && v[i] <= '9'; i++) {
				if (x > (UINT64_MAX - 9) / 10) {
					*why = "Content-Length too large";
					return -1;
				}
				x = x * 10 + (uint64_t)(v[i] - '0');
			}
			while (i < vl && (v[i] == ' ' || v[i] == '\t'))
				i++;
			if (!vl || i != vl || (have_len && x != clen)) {
				*why = "bad Content-Length";
				return -1;
			}
			have_len = 1;
			clen = x;
		} else if (nl == 17 && ieq_prefix(p, nl, "transfer-encoding")) {
			chunked = has_token(v, vl, "chunked");
		} else if (nl == 10 && ieq_prefix(p, nl, "connection")) {
			if (has_token(v, vl, "close"))
				closetok = 1;
			if (has_token(v, vl, "keep-alive"))
				keepalive = 1;
		}
		p = eol;
	}
	if (closetok)
		r->close = 1;
	else if (minor == 0 && keepalive)
		r->close = 0;
	if (head_only || r->status < HTTP_OK || r->status == HTTP_NO_CONTENT ||
	    r->status == HTTP_NOT_MODIFIED)
		r->body = RESP_BODY_NONE;
	else if (chunked)
		r->body = RESP_BODY_CHUNKED;
	else if (have_len)
		r->body = clen ? RESP_BODY_LENGTH : RESP_BODY_NONE;
	else {
		r->body = RESP_BODY_EOF;
		r->close = 1;
	}
	r->left = clen;
	return 0;
}

/* Finds the end of a head (after CRLFCRLF or LFLF) in buf[from..n); 0 when absent. */
static size_t head_end(const char *buf, size_t n, size_t from)
{
	for (size_t i = from; i < n; i++) {
		if (buf[i] != '\n')
			continue;
		if (i >= 1 && buf[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

int bench_resp_feed(struct bench_resp *r, const char *buf, size_t len, int head_only, size_t *used,
                    const char **why)
{
	size_t pos = 0;
	*used = 0;
	for (;;) {
		if (!r->in_body) {
			/* Another protocol (an SSH banner, an FTP greeting) is told at its first
			 * bytes, not when the server closes without ever ending a "head". */
			size_t have = len - pos < 7 ? len - pos : 7;
			if (memcmp(buf + pos, "HTTP/1.", have)) {
				*why = "not an HTTP/1.x response";
				return BENCH_RESP_ERROR;
			}
			size_t from = r->last_len > 3 ? r->last_len - 3 : 0;
			size_t he = head_end(buf + pos, len - pos, from);
			if (!he) {
				if (len - pos > BENCH_RESP_MAX_HEAD) {
					*why = "response head too large";
					return BENCH_RESP_ERROR;
				}
				r->last_len = len - pos;
				*used = pos;
				return BENCH_RESP_MORE;
			}
			if (parse_head(r, buf + pos, he, head_only, why) < 0)
				return BENCH_RESP_ERROR;
			pos += he;
			r->last_len = 0;
			if (r->status < HTTP_OK) { /* interim: the real response follows */
				bench_resp_reset(r);
				continue;
			}
			r->in_body = 1;
		}
		switch (r->body) {
		case RESP_BODY_NONE: *used = pos; return BENCH_RESP_DONE;
		case RESP_BODY_EOF:
			r->body_bytes += len - pos;
			*used = len;
			return BENCH_RESP_MORE;
		case RESP_BODY_LENGTH: {
			uint64_t take = len - pos < r->left ? len - pos : r->left;
			r->left -= take;
			r->body_bytes += take;
			pos += (size_t)take;
			*used = pos;
			return r->left ? BENCH_RESP_MORE : BENCH_RESP_DONE;
		}
		case RESP_BODY_CHUNKED:
			for (;;) {
				if (r->chunk_state == 1) {
					uint64_t take = len - pos < r->left ? len - pos : r->left;
					r->left -= take;
					r->body_bytes += take;
					pos += (size_t)take;
					if (r->left) {
						*used = pos;
						return BENCH_RESP_MORE;
					}
					r->chunk_state = 2;
					continue;
				}
				/* states 0, 2, 3 work on whole lines */
				const char *nl = memchr(buf + pos, '\n', len - pos);
				if (!nl) {
					if (len - pos > 4096) {
						*why = "chunk line too long";
						return BENCH_RESP_ERROR;
					}
					*used = pos;
					return BENCH_RESP_MORE;
				}
				size_t ll = (size_t)(nl - (buf + pos));
				const char *line = buf + pos;
				size_t content = ll && line[ll - 1] == '\r' ? ll - 1 : ll;
				pos += ll + 1;
				if (r->chunk_state == 2) {
					if (content) {
						*why = "chunk data not followed by CRLF";
						return BENCH_RESP_ERROR;
					}
					r->chunk_state = 0;
				} else if (r->chunk_state == 3) {
					if (!content) {
						*used = pos;
						return BENCH_RESP_DONE;
					}
				} else {
					uint64_t x = 0;
					size_t i = 0;
					for (; i < content; i++) {
						int c = lower((unsigned char)line[i]), d;
						if (c >= '0' && c <= '9')
							d = c - '0';
						else if (c >= 'a' && c <= 'f')
							d = c - 'a' + 10;
						else
							break;
						if (x >> 59) {
							*why = "chunk size too large";
							return BENCH_RESP_ERROR;
						}
						x = x * 16 + (uint64_t)d;
					}
					if (!i || (i < content && line[i] != ';' && line[i] != ' ' &&
					           line[i] != '\t')) {
						*why = "bad chunk size";
						return BENCH_RESP_ERROR;
					}
					r->left = x;
					r->chunk_state = x ? 1 : 3;
				}
			}
		}
		*why = "internal";
		return BENCH_RESP_ERROR;
	}
}

int bench_resp_eof(const struct bench_resp *r)
{
	return r->in_body && r->body == RESP_BODY_EOF;
}
