/* httpreq.c - bench http's target and request: the URL, the loopback rule, the bytes to send. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench/httpreq.h"
#include "core/net.h"

struct url {
	char host[256];
	char hostport[300];
	uint16_t port;
	char path[2048]; /* the request target: the URL's path and query, no fragment */
};

static int parse_url(const char *u, struct url *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!strncmp(u, "https://", 8)) {
		snprintf(err, errlen, "https is not supported; loopback load is plain http://");
		return -1;
	}
	if (strncmp(u, "http://", 7)) {
		snprintf(err, errlen, "URL must start with http:// (got '%.100s')", u);
		return -1;
	}
	for (const unsigned char *c = (const unsigned char *)u; *c; c++)
		if (*c <= ' ' || *c == 0x7f) { /* a request line cannot hold them */
			snprintf(err, errlen,
			         "URL has a space or control byte at offset %zu: percent-encode it (%%20)",
			         (size_t)(c - (const unsigned char *)u));
			return -1;
		}
	const char *h = u + 7, *hend = h + strcspn(h, "/?#"), *frag = strchr(h, '#');
	size_t hl = (size_t)(hend - h);
	if (!hl || hl >= sizeof(out->hostport)) {
		snprintf(err, errlen, "URL has no host: '%.100s'", u);
		return -1;
	}
	if (memchr(h, '@', hl)) {
		snprintf(err, errlen,
		         "URL has credentials (user@host): give them as a header, "
		         "-H 'Authorization: Basic ...'");
		return -1;
	}
	/* The fragment stays with the client (RFC 9110 7.1), as curl and wrk leave it; a
	 * query without a path gets the root ("http://h?q" asks for "/?q"). */
	size_t pl = (size_t)((frag ? frag : hend + strlen(hend)) - hend);
	if (pl + 2 > sizeof(out->path)) {
		snprintf(err, errlen, "URL path longer than %zu bytes", sizeof(out->path) - 2);
		return -1;
	}
	/* bytes past ASCII are percent-encoded, as a browser sends an IRI ("/aé" is "/a%C3%A9") */
	size_t o = 0;
	if (*hend != '/')
		out->path[o++] = '/';
	for (size_t i = 0; i < pl; i++) {
		unsigned char ch = (unsigned char)hend[i];
		if (o + 4 > sizeof(out->path)) {
			snprintf(err, errlen, "URL path longer than %zu bytes", sizeof(out->path) - 4);
			return -1;
		}
		if (ch >= 0x80) {
			static const char hex[] = "0123456789ABCDEF";
			out->path[o++] = '%';
			out->path[o++] = hex[ch >> 4];
			out->path[o++] = hex[ch & 15];
		} else {
			out->path[o++] = (char)ch;
		}
	}
	out->path[o] = 0;
	memcpy(out->hostport, h, hl);
	const char *hp = out->hostport, *colon;
	if (hp[0] == '[') {
		const char *rb = strchr(hp, ']');
		if (!rb) {
			snprintf(err, errlen, "unclosed '[' in URL host");
			return -1;
		}
		snprintf(out->host, sizeof(out->host), "%.*s", (int)(rb - hp - 1), hp + 1);
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (rb[1] && rb[1] != ':') {
			snprintf(err, errlen, "bad URL host '%.100s'", hp);
			return -1;
		}
	} else {
		colon = strrchr(hp, ':');
		snprintf(out->host, sizeof(out->host), "%.*s", (int)(colon ? (size_t)(colon - hp) : hl), hp);
	}
	if (!out->host[0]) {
		snprintf(err, errlen, "URL has no host: '%.100s'", u);
		return -1;
	}
	out->port = 80;
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || p < 1 || p > 65535) {
			snprintf(err, errlen, "bad port in URL '%.100s'", u);
			return -1;
		}
		out->port = (uint16_t)p;
	}
	return 0;
}

/* Resolves the URL's host. Returns 0, -1 usage (err set), or -2 resolution failed. */
static int resolve(const struct url *u, int allow_remote, struct sockaddr_storage *ss, socklen_t *len,
                   char *err, size_t errlen)
{
	if (net_parse_addr(u->host, u->port, ss, len) < 0) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
		int rc = getaddrinfo(u->host, NULL, &hints, &res);
		if (rc || !res) {
			snprintf(err, errlen, "cannot resolve '%.100s': %s", u->host, gai_strerror(rc));
			return -2;
		}
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(u->port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(u->port);
	}
	char a[64], what[200];
	snprintf(what, sizeof what, "%.100s (%s)", u->host,
	         net_addr_str((struct sockaddr *)ss, a, sizeof(a)));
	if (net_loopback_only((struct sockaddr *)ss, allow_remote, what, err, errlen) < 0)
		return -1;
	return 0;
}

/* The request, with a body of body_len bytes (body may be NULL). */
static int build_request(const struct bench_http_opts *o, const struct url *u, const char *body,
                         size_t body_len, struct buf *b)
{
	int has_host = 0;
	for (size_t i = 0; i < o->nheaders; i++)
		if (!strncasecmp(o->headers[i], "host:", 5))
			has_host = 1;
	buf_printf(b, "%s %s HTTP/1.1\r\n", o->method, u->path);
	if (!has_host)
		buf_printf(b, "Host: %s\r\n", u->hostport);
	for (size_t i = 0; i < o->nheaders; i++)
		buf_printf(b, "%s\r\n", o->headers[i]);
	if (!o->keepalive)
		buf_puts(b, "Connection: close\r\n");
	if (body)
		buf_printf(b, "Content-Length: %zu\r\n", body_len);
	if (buf_puts(b, "\r\n") < 0 || (body && buf_append(b, body, body_len) < 0))
		return -1;
	return 0;
}

/* Reads --body FILE (at most BENCH_HTTP_MAX_BODY bytes) into b. Returns 0 or -1 with errno. */
static int read_body(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char tmp[65536];
	size_t n;
	int rc = 0;
	while (rc == 0 && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_append(b, tmp, n) < 0)
			rc = -1, errno = EFBIG;
	if (rc == 0 && ferror(f))
		rc = -1, errno = EIO;
	fclose(f);
	return rc;
}

int bench_http_ok_parse(struct bench_http_opts *o, const char *s, char *err, size_t errlen)
{
	struct strparse_range ok[BENCH_HTTP_MAX_OK];
	unsigned n = 0;
	char one[16], why[STRPARSE_ERR_MAX];
	if (strlen(s) >= sizeof(o->ok_text)) {
		snprintf(err, errlen, "too long: at most %d ranges like 200-299, comma-separated",
		         BENCH_HTTP_MAX_OK);
		return -1;
	}
	for (const char *p = s;; p++) {
		size_t len = strcspn(p, ",");
		if (n == BENCH_HTTP_MAX_OK) {
			snprintf(err, errlen, "at most %d ranges", BENCH_HTTP_MAX_OK);
			return -1;
		}
		snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), p);
		if (len >= sizeof one || strparse_range(one, 100, 599, &ok[n], why, sizeof why) < 0) {
			snprintf(err, errlen, "'%.*s': %s (like 404, 200-399 or 200,404)",
			         (int)(len < 16 ? len : 16), p, len >= sizeof one ? "too long" : why);
			return -1;
		}
		n++;
		p += len;
		if (!*p)
			break;
	}
	memcpy(o->ok, ok, sizeof ok);
	o->nok = n;
	snprintf(o->ok_text, sizeof o->ok_text, "%s", s);
	return 0;
}

int bench_http_ok(const struct bench_http_opts *o, int status)
{
	for (unsigned i = 0; i < o->nok; i++)
		if ((uint64_t)status >= o->ok[i].lo && (uint64_t)status <= o->ok[i].hi)
			return 1;
	return 0;
}

/* Checks what the options ask for and parses the URL. Returns 0, or -1 with err set. */
static int check_opts(const struct bench_http_opts *o, struct url *u, char *err, size_t errlen)
{
	if (parse_url(o->url, u, err, errlen) < 0)
		return -1;
	if (!o->conns || o->conns > BENCH_HTTP_MAX_CONNS || !o->threads ||
	    o->threads > BENCH_HTTP_MAX_THREADS || o->threads > o->conns) {
		snprintf(err, errlen, "need 1 <= threads <= connections <= %d", BENCH_HTTP_MAX_CONNS);
		return -1;
	}
	if (o->pipeline > BENCH_HTTP_MAX_PIPELINE || (o->pipeline > 1 && o->rate)) {
		snprintf(err, errlen, "--pipeline is 1-%d and cannot be combined with -R",
		         BENCH_HTTP_MAX_PIPELINE);
		return -1;
	}
	if (o->pipeline > 1 && !o->keepalive) {
		snprintf(err, errlen, "--pipeline needs keep-alive");
		return -1;
	}
	for (size_t i = 0; i < o->nheaders; i++)
		if (!strchr(o->headers[i], ':') || strpbrk(o->headers[i], "\r\n")) {
			snprintf(err, errlen, "-H %.100s: a header is 'Name: value' on one line",
			         o->headers[i]);
			return -1;
		}
	if (!*o->method || strpbrk(o->method, " \t\r\n")) {
		snprintf(err, errlen, "-m %.100s: a method is one token, like GET or POST", o->method);
		return -1;
	}
	return 0;
}

int bench_http_prepare(const struct bench_http_opts *o, struct bench_http_target *t, struct buf *req,
                       char *err, size_t errlen, int *usage)
{
	struct url u;
	struct buf body;
	*usage = 1;
	if (check_opts(o, &u, err, errlen) < 0)
		return -1;
	buf_init(&body, BENCH_HTTP_MAX_BODY);
	if (o->body_file && read_body(o->body_file, &body) < 0) {
		int e = errno;
		snprintf(err, errlen, "--body %.100s: %s", o->body_file, strerror(e));
		if (e == EFBIG)
			snprintf(err, errlen, "--body %.100s: larger than %d MiB", o->body_file,
			         BENCH_HTTP_MAX_BODY_MIB);
		buf_free(&body);
		return -1;
	}
	int rc = resolve(&u, o->allow_remote, &t->addr, &t->addrlen, err, errlen);
	if (rc == 0) {
		*usage = 0;
		char a[64];
		net_addr_str((struct sockaddr *)&t->addr, a, sizeof(a));
		snprintf(t->name, sizeof(t->name), t->addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a,
		         u.port);
		if (build_request(o, &u, o->body_file ? buf_start(&body) : NULL, buf_used(&body), req) < 0) {
			snprintf(err, errlen, "request too large");
			rc = -1;
		}
	} else if (rc == -2) {
		*usage = 0;
	}
	buf_free(&body);
	return rc < 0 ? -1 : 0;
}
