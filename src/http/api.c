/* api.c - API-testing endpoints under /_/, modelled on httpbin. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/json.h"
#include "core/net.h"
#include "core/rand.h"
#include "http/route.h"

#define API_MAX_DELAY_MS  10000
#define API_MAX_BYTES     (100u * 1024 * 1024)
#define API_MAX_DRIP      (10u * 1024 * 1024)
#define API_MAX_REDIRECTS 100
#define API_MAX_ARGS      256
#define API_DRIP_TICK_MS  10
#define API_MAX_CHUNK     (1u << 20)
#define API_MAX_COOKIE_BYTES 4096 /* Set-Cookie bytes one answer may carry (a browser's own cap per cookie) */

/* Headers that act beyond this server: cookies reach every app on localhost whatever
 * its port, Clear-Site-Data wipes them, WWW-Authenticate prompts in the user's name.
 * A web page must not be able to send them through us. */
static const char *const cross_site_refused[] = {"set-cookie", "clear-site-data", "www-authenticate"};


#define API_MAX_CACHE_SECS (10 * 365 * 86400ull)

/* ---- query strings ---- */

struct kv {
	const char *k, *v; /* decoded, NUL-terminated, in the arena */
};

struct args {
	struct kv kv[API_MAX_ARGS];
	size_t n;
	char arena[2 * HTTP_MAX_URI + 2 * API_MAX_ARGS];
	size_t used;
};

/* Decodes "a=1&b=2" (application/x-www-form-urlencoded). Returns 0, or -1 when
 * malformed or too big. */
static int args_parse(struct args *a, const char *s, size_t n)
{
	a->n = 0;
	a->used = 0;
	size_t i = 0;
	while (i < n) {
		size_t st = i;
		while (i < n && s[i] != '&')
			i++;
		size_t end = i++;
		if (end == st)
			continue;
		const char *eq = memchr(s + st, '=', end - st);
		size_t klen = (size_t)((eq ? eq : s + end) - (s + st));
		const char *vp = eq ? eq + 1 : s + end;
		size_t vlen = (size_t)(s + end - vp);
		if (a->n == API_MAX_ARGS)
			return -1;
		char *k = a->arena + a->used;
		ssize_t kl = http_percent_decode(s + st, klen, k, sizeof(a->arena) - a->used - 1, 1);
		if (kl < 0)
			return -1;
		k[kl] = 0;
		a->used += (size_t)kl + 1;
		char *v = a->arena + a->used;
		ssize_t vl = http_percent_decode(vp, vlen, v, sizeof(a->arena) - a->used - 1, 1);
		if (vl < 0)
			return -1;
		v[vl] = 0;
		a->used += (size_t)vl + 1;
		a->kv[a->n].k = k;
		a->kv[a->n].v = v;
		a->n++;
	}
	return 0;
}

static const char *args_get(const struct args *a, const char *k)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->kv[i].k, k))
			return a->kv[i].v;
	return NULL;
}

/* {"k":"v", "rep":["1","2"]}: repeated keys become arrays, as in httpbin. */
static void json_args(struct json *j, const struct args *a)
{
	json_obj_begin(j);
	for (size_t i = 0; i < a->n; i++) {
		size_t first = i, count = 0;
		for (size_t k = 0; k < a->n; k++) {
			if (!strcmp(a->kv[k].k, a->kv[i].k)) {
				if (!count)
					first = k;
				count++;
			}
		}
		if (first != i)
			continue;
		json_key(j, a->kv[i].k);
		if (count == 1) {
			json_str(j, a->kv[i].v);
			continue;
		}
		json_arr_begin(j);
		for (size_t k = i; k < a->n; k++)
			if (!strcmp(a->kv[k].k, a->kv[i].k))
				json_str(j, a->kv[k].v);
		json_arr_end(j);
	}
	json_obj_end(j);
}

/* ---- helpers ---- */

static const struct http_header *hdr(const struct http_reqinfo *ri, const char *name)
{
	return http_req_header(ri, name);
}

static struct http_ctx *ctx(const struct http_conn *c)
{
	return http_conn_ctx(c);
}

static void api_headers(struct http_conn *c)
{
	/* Nothing a request puts in a /_/ answer may run as a page of this origin. */
	resp_header(c, "Content-Security-Policy", "sandbox; default-src 'none'");
}

static void send_json(struct http_conn *c, int status, struct buf *b)
{
	resp_start(c, status);
	api_headers(c);
	buf_append(b, "\n", 1);
	resp_send_mem(c, "application/json", buf_start(b) ? buf_start(b) : "", buf_used(b));
	buf_free(b);
}

/* An error from the table as JSON: {"error": message, "status": N}. */
static void api_error_h(struct http_conn *c, enum lk_err e, const char *detail, const char *name, const char *value)
{
	const struct lk_error *row = lk_error(e);
	struct buf b;
	struct json j;
	char msg[512];
	lk_text_fill(msg, sizeof(msg), row->msg, detail);
	buf_init(&b, 4096);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, "error");
	json_str(&j, msg);
	json_key(&j, "status");
	json_int(&j, row->http);
	json_obj_end(&j);
	resp_start(c, row->http);
	api_headers(c);
	if (name)
		resp_header(c, name, value);
	buf_append(&b, "\n", 1);
	resp_send_mem(c, "application/json", buf_start(&b) ? buf_start(&b) : "", buf_used(&b));
	buf_free(&b);
}

static void api_error(struct http_conn *c, enum lk_err e, const char *detail)
{
	api_error_h(c, e, detail, NULL, NULL);
}

/* api_error with a detail made by printf. */
static void api_errorf(struct http_conn *c, enum lk_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void api_errorf(struct http_conn *c, enum lk_err e, const char *fmt, ...)
{
	char d[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d, sizeof(d), fmt, ap);
	va_end(ap);
	api_error(c, e, d);
}

static void json_headers(struct json *j, const struct http_request *req)
{
	json_obj_begin(j);
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		/* Canonical capitalisation, as httpbin shows them: "User-Agent". */
		char name[256];
		size_t n = h->name.len < sizeof(name) ? h->name.len : sizeof(name) - 1;
		for (size_t k = 0; k < n; k++) {
			char ch = h->name.p[k];
			name[k] = (char)((k == 0 || name[k - 1] == '-') ? toupper((unsigned char)ch)
			                                                : tolower((unsigned char)ch));
		}
		json_key_n(j, name, n);
		json_str_n(j, h->value.p, h->value.len);
	}
	json_obj_end(j);
}

static void json_url(struct json *j, struct http_conn *c, const struct http_reqinfo *ri)
{
	const struct http_config *cfg = http_ctx_config(ctx(c));
	const struct http_header *host = hdr(ri, "host");
	char url[HTTP_MAX_URI + 512];
	const struct http_slice t = ri->req->target;
	if (t.len > 7 && !strncasecmp(t.p, "http://", 7))
		snprintf(url, sizeof(url), "%.*s", (int)t.len, t.p);
	else if (host)
		snprintf(url, sizeof(url), "http://%.*s%.*s", (int)host->value.len, host->value.p, (int)t.len,
		         t.p);
	else
		snprintf(url, sizeof(url), "http://%s:%u%.*s", cfg->host, cfg->port, (int)t.len, t.p);
	json_str(j, url);
}

static int content_type_is(const struct http_reqinfo *ri, const char *what)
{
	const struct http_header *ct = hdr(ri, "content-type");
	size_t n = strlen(what);
	if (!ct)
		return 0;
	for (size_t i = 0; i + n <= ct->value.len; i++)
		if (!strncasecmp(ct->value.p + i, what, n))
			return 1;
	return 0;
}

enum echo_parts { E_METHOD = 1, E_BODY = 2, E_PATH = 4 };

/* Tags of an If-Match / If-None-Match list, compared with a quoted tag ("*" matches). */
static int etag_list_has(struct http_slice v, const char *tag)
{
	size_t tl = strlen(tag);
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] == '*')
			return 1;
		if (v.p[i] == '"') {
			const char *q = memchr(v.p + i + 1, '"', v.len - i - 1);
			if (!q)
				return 0;
			size_t len = (size_t)(q - v.p) - i + 1;
			if (len == tl && !memcmp(v.p + i, tag, tl))
				return 1;
			i = (size_t)(q - v.p);
		}
	}
	return 0;
}

/* Extra headers of an echo answer (Cache-Control, ETag, ...); name NULL ends. */
struct hdr_pair {
	const char *name, *value;
};

/* The echo answer. extra: headers to add, or NULL. */
static void echo(struct http_conn *c, const struct http_reqinfo *ri, const struct args *a, unsigned parts,
                 int status, const struct hdr_pair *extra)
{
	struct buf b;
	struct json j;
	buf_init(&b, 8 * HTTP_API_MAX_BODY);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, "args");
	json_args(&j, a);
	if (parts & E_BODY) {
		json_key(&j, "body");
		json_str_n(&j, ri->body ? ri->body : "", ri->body_len);
		json_key(&j, "form");
		struct args *form = NULL;
		if (content_type_is(ri, "application/x-www-form-urlencoded") &&
		    (form = malloc(sizeof(*form))) &&
		    args_parse(form, ri->body ? ri->body : "", ri->body_len) == 0)
			json_args(&j, form);
		else
			json_obj_begin(&j), json_obj_end(&j);
		free(form);
	}
	json_key(&j, "headers");
	json_headers(&j, ri->req);
	if (parts & E_BODY) {
		json_key(&j, "json");
		if (ri->body_len && content_type_is(ri, "json") && json_valid(ri->body, ri->body_len))
			json_raw(&j, ri->body, ri->body_len);
		else
			json_null(&j);
	}
	if (parts & E_METHOD) {
		json_key(&j, "method");
		json_str_n(&j, ri->req->method.p, ri->req->method.len);
	}
	json_key(&j, "origin");
	json_str(&j, http_conn_peer(c));
	if (parts & E_PATH) {
		json_key(&j, "path");
		json_str_n(&j, ri->path.p, ri->path.len);
	}
	json_key(&j, "url");
	json_url(&j, c, ri);
	json_obj_end(&j);
	if (j.err) {
		buf_free(&b);
		api_error(c, LK_E_H_TOO_LARGE_RESP, NULL);
		return;
	}
	resp_start(c, status);
	api_headers(c);
	for (; extra && extra->name; extra++)
		resp_header(c, extra->name, extra->value);
	buf_append(&b, "\n", 1);
	resp_send_mem(c, "application/json", buf_start(&b), buf_used(&b));
	buf_free(&b);
}

/* Parses a whole decimal number. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!n || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Seconds, fractional allowed, as milliseconds. */
static int parse_secs(const char *s, uint64_t max_ms, uint64_t *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v * 1000 > (double)max_ms)
		return -1;
	*ms = (uint64_t)(v * 1000 + 0.5);
	return 0;
}

static int b64_val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

/* Decodes standard or URL-safe base64 (padding optional). Returns the length or -1. */
static ssize_t b64_decode(const char *s, size_t n, char *out, size_t outsz)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	while (n && s[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outsz)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (bits >= 6)
		return -1; /* one dangling character cannot encode a byte */
	return (ssize_t)o;
}

/* A redirect target must stay on this machine: a path on this server, or an
 * http(s) URL naming a loopback host. No control characters, no "//host" or "/\host"
 * that browsers read as another host. */
static int redirect_ok(const char *u)
{
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f)
			return 0;
	if (u[0] == '/')
		return u[1] != '/' && u[1] != '\\';
	const char *h;
	/* A backslash ends the host for browsers but not for curl or Python, so the
	 * same URL would name two hosts: refuse it. */
	if (strchr(u, '\\'))
		return 0;
	if (!strncasecmp(u, "http://", 7))
		h = u + 7;
	else if (!strncasecmp(u, "https://", 8))
		h = u + 8;
	else
		return 0;
	size_t n = strcspn(h, "/?#\\");
	const char *name;
	size_t nlen;
	char tmp[256];
	if (memchr(h, '@', n) || http_authority_host(h, n, &name, &nlen) < 0 || !nlen || nlen >= sizeof(tmp))
		return 0;
	if (http_name_is_localhost(name, nlen)) {
		/* Only a plain host name: letters, digits, '-', and non-empty labels. */
		for (size_t i = 0; i < nlen; i++) {
			char ch = name[i];
			if (!(isalnum((unsigned char)ch) || ch == '-' || (ch == '.' && i && name[i - 1] != '.')))
				return 0;
		}
		return 1;
	}
	memcpy(tmp, name, nlen);
	tmp[nlen] = 0;
	struct sockaddr_storage ss;
	socklen_t sl;
	return net_is_ip_literal(tmp, nlen) && net_parse_addr(tmp, 0, &ss, &sl) == 0 &&
	       net_is_loopback((struct sockaddr *)&ss);
}

static int header_value_ok(const char *v)
{
	for (; *v; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			return 0;
	return 1;
}

static int header_name_ok(const char *n)
{
	if (!*n)
		return 0;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && !strchr("!#$%&'*+-.^_`|~", *n))
			return 0;
	return 1;
}

static void redirect(struct http_conn *c, int status, const char *loc)
{
	resp_start(c, status);
	api_headers(c);
	resp_header(c, "Location", loc);
	resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
}

static void uuid4(struct http_conn *c, char out[37])
{
	unsigned char r[16];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		for (int i = 0; i < 16; i += 8) {
			uint64_t v = http_ctx_random(ctx(c));
			memcpy(r + i, &v, 8);
		}
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
	         r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* ---- generated bodies ---- */

/* /_/bytes and /_/stream-bytes: seeded pseudo-random bytes, plain or chunked. */
struct gen_bytes {
	uint64_t seed;
	uint64_t left;
	size_t chunk; /* chunk size (stream-bytes) */
	int chunked;
	int ended;    /* the last chunk is written */
};

static void random_fill(uint64_t *seed, char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rand_splitmix64(seed);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

static size_t bytes_fill(struct http_conn *c, void *state, struct buf *out, size_t room)
{
	struct gen_bytes *g = state;
	size_t before = buf_used(out), avail;
	if (!g->chunked) {
		size_t n = room < g->left ? room : (size_t)g->left;
		char *p = n ? buf_space(out, n, &avail) : NULL;
		if (!p)
			return 0;
		random_fill(&g->seed, p, n);
		out->len += n;
		g->left -= n;
		return n;
	}
	/* As many chunks as fit: one send carries many small chunks, so chunk_size=1
	 * costs bytes on the wire, not a system call per byte. Framing by hand: this
	 * loop runs once per byte at chunk_size=1. */
	static const char hex[] = "0123456789abcdef";
	char *p = buf_space(out, room, &avail);
	size_t o = 0;
	if (!p)
		return 0;
	if (avail > room)
		avail = room;
	while (!g->ended) {
		if (!g->left) {
			if (o + 5 > avail)
				break;
			memcpy(p + o, "0\r\n\r\n", 5);
			o += 5;
			g->ended = 1;
			break;
		}
		size_t n = g->chunk < g->left ? g->chunk : (size_t)g->left;
		char line[20];
		size_t ll = 0;
		for (int shift = 60; shift >= 0; shift -= 4)
			if ((n >> shift) || ll || !shift)
				line[ll++] = hex[(n >> shift) & 15];
		if (o + ll + 2 + n + 2 > avail) {
			if (o || avail < 24)
				break; /* the next turn has more room */
			/* Not even one chunk fits: a smaller one (its size line at most 16 digits). */
			n = avail - 16 - 4;
			ll = 0;
			for (int shift = 60; shift >= 0; shift -= 4)
				if ((n >> shift) || ll || !shift)
					line[ll++] = hex[(n >> shift) & 15];
		}
		memcpy(p + o, line, ll);
		o += ll;
		p[o++] = '\r';
		p[o++] = '\n';
		random_fill(&g->seed, p + o, n);
		o += n;
		p[o++] = '\r';
		p[o++] = '\n';
		g->left -= n;
	}
	out->len += o;
	return buf_used(out) - before;
}

static const struct resp_gen_ops bytes_ops = {bytes_fill, NULL};

/* /_/drip: numbytes '*' spread over ticks. */
struct gen_drip {
	uint64_t left;
	uint64_t ticks; /* ticks left, the current one included */
};

static size_t drip_fill(struct http_conn *c, void *state, struct buf *out, size_t room)
{
	struct gen_drip *g = state;
	if (!g->left)
		return 0;
	uint64_t ticks = g->ticks ? g->ticks : 1;
	size_t n = (size_t)((g->left + ticks - 1) / ticks);
	if (n > room)
		n = room;
	size_t avail;
	char *p = buf_space(out, n, &avail);
	if (!p)
		return 0;
	memset(p, '*', n);
	out->len += n;
	g->left -= n;
	if (g->ticks)
		g->ticks--;
	return n;
}

static const struct resp_gen_ops drip_ops = {drip_fill, NULL};

/* ---- endpoints ---- */

/* A request as the endpoints see it: the parsed query and what follows the
 * endpoint's name in the path ("/_/status/418" -> "418"). */
struct api_req {
	const struct http_reqinfo *ri;
	const struct args *a;
	const char *rest; /* after "NAME/"; "" for an exact match */
	size_t rlen;
	int exact; /* the path was /_/NAME, without a slash after it */
};

static void ep_status(struct http_conn *c, const struct api_req *q)
{
	int codes[64];
	size_t nc = 0, i = 0, n = q->rlen;
	const char *s = q->rest;
	while (i <= n) {
		size_t st = i;
		while (i < n && s[i] != ',')
			i++;
		uint64_t v;
		if (nc == 64 || parse_u64(s + st, i - st, HTTP_STATUS_MAX, &v) < 0 || v < HTTP_STATUS_MIN) {
			api_errorf(c, LK_E_A_BAD_PARAM, "status codes are %d-%d, optionally as a comma list: /_/status/%d,%d",
			           HTTP_STATUS_MIN, HTTP_STATUS_MAX, HTTP_OK, HTTP_INTERNAL_SERVER_ERROR);
			return;
		}
		codes[nc++] = (int)v;
		i++;
	}
	int code = codes[nc > 1 ? http_ctx_random(ctx(c)) % nc : 0];
	if (code < HTTP_OK) {
		/* An informational status is never final: send it and close, so the client
		 * sees it and does not wait for more. */
		resp_close_after(c);
		resp_start(c, code);
		resp_end_headers(c, NULL, 0, 0);
		return;
	}
	resp_start(c, code);
	api_headers(c);
	if (code >= HTTP_MULTIPLE_CHOICES && code < HTTP_BAD_REQUEST && code != HTTP_NOT_MODIFIED)
		resp_header(c, "Location", "/_/get");
	if (code == HTTP_UNAUTHORIZED)
		resp_header(c, "WWW-Authenticate", "Basic realm=\"loopkit\"");
	resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
}

static void ep_bytes(struct http_conn *c, const struct api_req *q, int stream)
{
	uint64_t len, seed, chunk = 10240;
	char lim[32];
	if (parse_u64(q->rest, q->rlen, API_MAX_BYTES, &len) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "N must be a number of bytes up to %u (%s)", API_MAX_BYTES,
		           lk_size_text(API_MAX_BYTES, lim, sizeof(lim)));
		return;
	}
	const char *sd = args_get(q->a, "seed");
	if (sd) {
		if (parse_u64(sd, strlen(sd), UINT64_MAX, &seed) < 0) {
			api_error(c, LK_E_A_BAD_PARAM, "seed must be a whole number");
			return;
		}
	} else if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		seed = http_ctx_random(ctx(c));
	}
	const char *cs = args_get(q->a, "chunk_size");
	if (cs && (parse_u64(cs, strlen(cs), API_MAX_CHUNK, &chunk) < 0 || !chunk)) {
		api_errorf(c, LK_E_A_BAD_PARAM, "chunk_size must be 1-%u", API_MAX_CHUNK);
		return;
	}
	resp_start(c, HTTP_OK);
	api_headers(c);
	resp_end_headers(c, "application/octet-stream", len, stream);
	struct gen_bytes *g = resp_body_gen(c, &bytes_ops, sizeof(*g), 0, 0);
	g->seed = seed;
	g->left = len;
	g->chunked = stream;
	g->chunk = (size_t)chunk;
}

static void ep_drip(struct http_conn *c, const struct api_req *q)
{
	uint64_t dur = 2000, delay = 0, num = 10, code = HTTP_OK;
	const char *v;
	const struct args *a = q->a;
	if ((v = args_get(a, "duration")) && parse_secs(v, API_MAX_DELAY_MS, &dur) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "duration must be 0-%u seconds", API_MAX_DELAY_MS / 1000);
		return;
	}
	if ((v = args_get(a, "delay")) && parse_secs(v, API_MAX_DELAY_MS, &delay) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "delay must be 0-%u seconds", API_MAX_DELAY_MS / 1000);
		return;
	}
	if (dur + delay > API_MAX_DELAY_MS) {
		api_errorf(c, LK_E_A_BAD_PARAM, "duration + delay must be at most %u seconds", API_MAX_DELAY_MS / 1000);
		return;
	}
	if ((v = args_get(a, "numbytes")) && parse_u64(v, strlen(v), API_MAX_DRIP, &num) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "numbytes must be 0-%u", API_MAX_DRIP);
		return;
	}
	if ((v = args_get(a, "code")) && (parse_u64(v, strlen(v), HTTP_STATUS_MAX, &code) < 0 || code < HTTP_OK ||
	                                  code == HTTP_NO_CONTENT || code == HTTP_NOT_MODIFIED)) {
		/* No Content and Not Modified have no body: dripping one would corrupt the
		 * connection. */
		api_errorf(c, LK_E_A_BAD_PARAM, "code must be %d-%d, and not %d or %d (they have no body)", HTTP_OK,
		           HTTP_STATUS_MAX, HTTP_NO_CONTENT, HTTP_NOT_MODIFIED);
		return;
	}
	resp_start(c, (int)code);
	api_headers(c);
	resp_end_headers(c, "application/octet-stream", num, 0);
	if (!num)
		return;
	/* As httpbin: the first byte after the delay, then one tick every duration/ticks
	 * (at most one per API_DRIP_TICK_MS), bytes spread evenly over the ticks. */
	uint64_t ticks = dur / API_DRIP_TICK_MS;
	if (ticks > num)
		ticks = num;
	if (!ticks)
		ticks = 1;
	struct gen_drip *g = resp_body_gen(c, &drip_ops, sizeof(*g), delay, ticks > 1 ? dur / ticks : dur);
	g->left = num;
	g->ticks = ticks;
}

/* May this request make us send what (a header that acts beyond this server)? Answers
 * 403 and returns 0 when a web page of another site or origin asked. */
static int cross_site_ok(struct http_conn *c, const struct api_req *q, const char *what)
{
	if (!q->ri->cross_site)
		return 1;
	const struct http_header *sfs = hdr(q->ri, "sec-fetch-site");
	api_errorf(c, LK_E_A_REFUSED,
	           "%s is refused to a request from a web page (Sec-Fetch-Site: %.*s): on localhost it would "
	           "reach every local app, whatever its port; open the URL yourself (curl, or the address bar)",
	           what, sfs ? (int)sfs->value.len : 1, sfs ? sfs->value.p : "?");
	return 0;
}

static void ep_response_headers(struct http_conn *c, const struct api_req *q)
{
	static const char *reserved[] = {
	        "content-length",         "transfer-encoding",       "connection", "date",    "server",
	        "x-content-type-options", "content-security-policy", "keep-alive", "upgrade", "trailer"};
	const char *type = "application/json";
	const struct args *a = q->a;
	size_t cookie_bytes = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (!header_name_ok(a->kv[i].k) || !header_value_ok(a->kv[i].v)) {
			api_error(c, LK_E_A_BAD_PARAM, "header names must be tokens and values free of control characters");
			return;
		}
		/* CORS is the server's decision (--cors), and Refresh is a redirect in disguise. */
		if (!strncasecmp(a->kv[i].k, "access-control-", 15) || !strcasecmp(a->kv[i].k, "refresh") ||
		    !strcasecmp(a->kv[i].k, "location")) {
			api_error(c, LK_E_A_BAD_PARAM, "CORS, Refresh and Location headers are not settable here");
			return;
		}
		for (size_t k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++) {
			if (!strcasecmp(a->kv[i].k, reserved[k])) {
				api_error(c, LK_E_A_BAD_PARAM, "that header is set by the server and cannot be overridden");
				return;
			}
		}
		for (size_t k = 0; k < sizeof(cross_site_refused) / sizeof(cross_site_refused[0]); k++) {
			if (!strcasecmp(a->kv[i].k, cross_site_refused[k]) && !cross_site_ok(c, q, a->kv[i].k))
				return;
		}
		if (!strcasecmp(a->kv[i].k, "set-cookie"))
			cookie_bytes += strlen(a->kv[i].v);
	}
	if (cookie_bytes > API_MAX_COOKIE_BYTES) {
		api_errorf(c, LK_E_A_BAD_PARAM, "Set-Cookie values add up to %zu bytes; at most %d", cookie_bytes,
		           API_MAX_COOKIE_BYTES);
		return;
	}
	struct buf b;
	struct json j;
	buf_init(&b, 64 * 1024);
	json_init(&j, &b, 1);
	json_args(&j, a);
	buf_append(&b, "\n", 1);
	resp_start(c, HTTP_OK);
	api_headers(c);
	for (size_t i = 0; i < a->n; i++) {
		if (!strcasecmp(a->kv[i].k, "content-type"))
			type = a->kv[i].v; /* the JSON escapes <, > and &, so even text/html stays inert */
		else
			resp_header(c, a->kv[i].k, a->kv[i].v);
	}
	resp_send_mem(c, type, buf_start(&b) ? buf_start(&b) : "", buf_used(&b));
	buf_free(&b);
}

static void ep_auth(struct http_conn *c, const struct api_req *q, int bearer)
{
	const struct http_reqinfo *ri = q->ri;
	const struct http_header *au = hdr(ri, "authorization");
	const char *rest = q->rest;
	size_t rlen = q->rlen;
	struct buf b;
	struct json j;
	char user[512], pass[512], dec[1100];
	if (!bearer) {
		const char *sl = memchr(rest, '/', rlen);
		if (!sl || memchr(sl + 1, '/', rlen - (size_t)(sl - rest) - 1) || (size_t)(sl - rest) >= sizeof(user) ||
		    rlen - (size_t)(sl - rest) - 1 >= sizeof(pass)) {
			api_error(c, LK_E_A_NO_ENDPOINT, NULL);
			return;
		}
		ssize_t ul = http_percent_decode(rest, (size_t)(sl - rest), user, sizeof(user) - 1, 0);
		ssize_t pl = http_percent_decode(sl + 1, rlen - (size_t)(sl - rest) - 1, pass, sizeof(pass) - 1, 0);
		if (ul < 0 || pl < 0) {
			api_error(c, LK_E_A_BAD_PARAM, "malformed escape in USER or PASS");
			return;
		}
		user[ul] = 0;
		pass[pl] = 0;
	}
	int ok = 0;
	if (au && !bearer && au->value.len > 6 && !strncasecmp(au->value.p, "Basic ", 6)) {
		ssize_t dl = b64_decode(au->value.p + 6, au->value.len - 6, dec, sizeof(dec) - 1);
		if (dl >= 0) {
			dec[dl] = 0;
			char *colon = memchr(dec, ':', (size_t)dl);
			ok = colon && (size_t)(colon - dec) == strlen(user) && !memcmp(dec, user, strlen(user)) &&
			     (size_t)(dl - (colon - dec) - 1) == strlen(pass) && !memcmp(colon + 1, pass, strlen(pass));
		}
	}
	if (au && bearer && au->value.len > 7 && !strncasecmp(au->value.p, "Bearer ", 7))
		ok = 1;
	if (!ok) {
		resp_start(c, HTTP_UNAUTHORIZED);
		api_headers(c);
		resp_header(c, "WWW-Authenticate", bearer ? "Bearer" : "Basic realm=\"loopkit\"");
		buf_init(&b, 4096);
		json_init(&j, &b, 1);
		json_obj_begin(&j);
		json_key(&j, "authenticated");
		json_bool(&j, 0);
		json_obj_end(&j);
		buf_append(&b, "\n", 1);
		resp_send_mem(c, "application/json", buf_start(&b), buf_used(&b));
		buf_free(&b);
		return;
	}
	buf_init(&b, 16384);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, "authenticated");
	json_bool(&j, 1);
	if (bearer) {
		json_key(&j, "token");
		json_str_n(&j, au->value.p + 7, au->value.len - 7);
	} else {
		json_key(&j, "user");
		json_str(&j, user);
	}
	json_obj_end(&j);
	send_json(c, HTTP_OK, &b);
}

static void ep_basic_auth(struct http_conn *c, const struct api_req *q)
{
	ep_auth(c, q, 0);
}

static void ep_bearer(struct http_conn *c, const struct api_req *q)
{
	ep_auth(c, q, 1);
}

static void ep_cookies(struct http_conn *c, const struct api_req *q)
{
	const struct http_reqinfo *ri = q->ri;
	struct buf b;
	struct json j;
	buf_init(&b, 64 * 1024);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, "cookies");
	json_obj_begin(&j);
	for (size_t i = 0; i < ri->req->nheaders; i++) {
		const struct http_header *h = &ri->req->headers[i];
		if (!http_slice_ieq(h->name, "cookie"))
			continue;
		const char *p = h->value.p, *end = p + h->value.len;
		while (p < end) {
			while (p < end && (*p == ' ' || *p == ';'))
				p++;
			const char *st = p;
			while (p < end && *p != ';')
				p++;
			const char *eq = memchr(st, '=', (size_t)(p - st));
			if (!eq || eq == st)
				continue;
			json_key_n(&j, st, (size_t)(eq - st));
			json_str_n(&j, eq + 1, (size_t)(p - eq - 1));
		}
	}
	json_obj_end(&j);
	json_obj_end(&j);
	send_json(c, HTTP_OK, &b);
}

static void cookies_change(struct http_conn *c, const struct api_req *q, int set)
{
	const struct args *a = q->a;
	size_t bytes = 0;
	if (!cross_site_ok(c, q, "Set-Cookie"))
		return;
	for (size_t i = 0; i < a->n; i++) {
		if (!header_name_ok(a->kv[i].k) || strpbrk(a->kv[i].v, ";, \t\"\\") || !header_value_ok(a->kv[i].v)) {
			api_error(c, LK_E_A_BAD_PARAM, "cookie names must be tokens and values free of ; , space and quotes");
			return;
		}
		bytes += strlen(a->kv[i].k) + strlen(a->kv[i].v) + 1;
	}
	if (bytes > API_MAX_COOKIE_BYTES) {
		api_errorf(c, LK_E_A_BAD_PARAM, "the cookies add up to %zu bytes; at most %d", bytes, API_MAX_COOKIE_BYTES);
		return;
	}
	resp_start(c, HTTP_FOUND);
	api_headers(c);
	for (size_t i = 0; i < a->n; i++) {
		if (set)
			resp_headerf(c, "Set-Cookie", "%s=%s; Path=/", a->kv[i].k, a->kv[i].v);
		else
			resp_headerf(c, "Set-Cookie", "%s=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
			             a->kv[i].k);
	}
	resp_header(c, "Location", "/_/cookies");
	resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
}

static void ep_cookies_set(struct http_conn *c, const struct api_req *q)
{
	cookies_change(c, q, 1);
}

static void ep_cookies_delete(struct http_conn *c, const struct api_req *q)
{
	cookies_change(c, q, 0);
}

static void ep_anything(struct http_conn *c, const struct api_req *q)
{
	echo(c, q->ri, q->a, E_METHOD | E_BODY | E_PATH, HTTP_OK, NULL);
}

static void ep_get(struct http_conn *c, const struct api_req *q)
{
	echo(c, q->ri, q->a, 0, HTTP_OK, NULL);
}

/* {"KEY": value} answers: headers, ip, user-agent, uuid, health. */
static void ep_fact(struct http_conn *c, const struct api_req *q, const char *key)
{
	struct buf b;
	struct json j;
	buf_init(&b, 64 * 1024);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, key);
	if (!strcmp(key, "headers")) {
		json_headers(&j, q->ri->req);
	} else if (!strcmp(key, "origin")) {
		json_str(&j, http_conn_peer(c));
	} else if (!strcmp(key, "user-agent")) {
		const struct http_header *ua = hdr(q->ri, "user-agent");
		if (ua)
			json_str_n(&j, ua->value.p, ua->value.len);
		else
			json_null(&j);
	} else if (!strcmp(key, "uuid")) {
		char u[37];
		uuid4(c, u);
		json_str(&j, u);
	} else {
		json_str(&j, "ok");
		json_key(&j, "version");
		json_str(&j, LOOPKIT_VERSION);
	}
	json_obj_end(&j);
	send_json(c, HTTP_OK, &b);
}

static void ep_headers(struct http_conn *c, const struct api_req *q)
{
	ep_fact(c, q, "headers");
}

static void ep_ip(struct http_conn *c, const struct api_req *q)
{
	ep_fact(c, q, "origin");
}

static void ep_user_agent(struct http_conn *c, const struct api_req *q)
{
	ep_fact(c, q, "user-agent");
}

static void ep_uuid(struct http_conn *c, const struct api_req *q)
{
	ep_fact(c, q, "uuid");
}

static void ep_health(struct http_conn *c, const struct api_req *q)
{
	ep_fact(c, q, "status");
}

static void ep_delay(struct http_conn *c, const struct api_req *q)
{
	char t[32];
	uint64_t ms;
	snprintf(t, sizeof(t), "%.*s", (int)(q->rlen < 31 ? q->rlen : 31), q->rest);
	if (q->rlen > 31 || parse_secs(t, API_MAX_DELAY_MS, &ms) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "delay is 0-%u seconds, fractions allowed: /_/delay/0.5",
		           API_MAX_DELAY_MS / 1000);
		return;
	}
	echo(c, q->ri, q->a, E_METHOD | E_BODY, HTTP_OK, NULL);
	resp_hold(c, ms);
}

static void ep_bytes_plain(struct http_conn *c, const struct api_req *q)
{
	ep_bytes(c, q, 0);
}

static void ep_stream_bytes(struct http_conn *c, const struct api_req *q)
{
	ep_bytes(c, q, 1);
}

static void ep_redirect(struct http_conn *c, const struct api_req *q)
{
	uint64_t k;
	char loc[64];
	if (parse_u64(q->rest, q->rlen, API_MAX_REDIRECTS, &k) < 0 || !k) {
		api_errorf(c, LK_E_A_BAD_PARAM, "redirect count is 1-%u", API_MAX_REDIRECTS);
		return;
	}
	if (k == 1)
		snprintf(loc, sizeof(loc), "/_/get");
	else
		snprintf(loc, sizeof(loc), "/_/redirect/%llu", (unsigned long long)(k - 1));
	redirect(c, HTTP_FOUND, loc);
}

static void ep_redirect_to(struct http_conn *c, const struct api_req *q)
{
	const char *url = args_get(q->a, "url"), *sc = args_get(q->a, "status_code");
	uint64_t code = HTTP_FOUND;
	if (!url || !redirect_ok(url)) {
		api_error(c, LK_E_A_BAD_PARAM, "url must be a path on this server or an http(s) URL on a loopback host");
		return;
	}
	if (sc && (parse_u64(sc, strlen(sc), HTTP_BAD_REQUEST - 1, &code) < 0 || code < HTTP_MULTIPLE_CHOICES)) {
		api_errorf(c, LK_E_A_BAD_PARAM, "status_code must be %d-%d", HTTP_MULTIPLE_CHOICES, HTTP_BAD_REQUEST - 1);
		return;
	}
	redirect(c, (int)code, url);
}

static void ep_cache(struct http_conn *c, const struct api_req *q)
{
	const struct http_reqinfo *ri = q->ri;
	if (q->exact) {
		if (hdr(ri, "if-modified-since") || hdr(ri, "if-none-match")) {
			resp_start(c, HTTP_NOT_MODIFIED);
			api_headers(c);
			resp_end_headers(c, NULL, 0, 0);
			return;
		}
		char u[37], tag[40], date[32];
		uuid4(c, u);
		snprintf(tag, sizeof(tag), "\"%s\"", u);
		http_date_format(time(NULL), date);
		const struct hdr_pair extra[] = {{"Last-Modified", date}, {"ETag", tag}, {NULL, NULL}};
		echo(c, ri, q->a, 0, HTTP_OK, extra);
		return;
	}
	uint64_t secs;
	if (parse_u64(q->rest, q->rlen, API_MAX_CACHE_SECS, &secs) < 0) {
		api_error(c, LK_E_A_BAD_PARAM, "use /_/cache/SECONDS");
		return;
	}
	char cc[64];
	snprintf(cc, sizeof(cc), "public, max-age=%llu", (unsigned long long)secs);
	const struct hdr_pair extra[] = {{"Cache-Control", cc}, {NULL, NULL}};
	echo(c, ri, q->a, 0, HTTP_OK, extra);
}

static void ep_etag(struct http_conn *c, const struct api_req *q)
{
	const struct http_reqinfo *ri = q->ri;
	char tag[512], quoted[600];
	ssize_t tl = http_percent_decode(q->rest, q->rlen, tag, sizeof(tag) - 1, 0);
	if (tl < 0 || memchr(tag, '"', (size_t)tl) || !tl) {
		api_error(c, LK_E_A_BAD_PARAM, "malformed ETAG");
		return;
	}
	tag[tl] = 0;
	if (!header_value_ok(tag)) {
		api_error(c, LK_E_A_BAD_PARAM, "malformed ETAG");
		return;
	}
	snprintf(quoted, sizeof(quoted), "\"%s\"", tag);
	const struct http_header *inm = hdr(ri, "if-none-match"), *im = hdr(ri, "if-match");
	if (inm && etag_list_has(inm->value, quoted)) {
		resp_start(c, HTTP_NOT_MODIFIED);
		api_headers(c);
		resp_header(c, "ETag", quoted);
		resp_end_headers(c, NULL, 0, 0);
		return;
	}
	if (im && !etag_list_has(im->value, quoted)) {
		api_error(c, LK_E_H_PRECONDITION, "If-Match");
		return;
	}
	const struct hdr_pair extra[] = {{"ETag", quoted}, {NULL, NULL}};
	echo(c, ri, q->a, 0, HTTP_OK, extra);
}

static void ep_base64(struct http_conn *c, const struct api_req *q)
{
	char enc[HTTP_MAX_URI], dec[HTTP_MAX_URI];
	ssize_t el = http_percent_decode(q->rest, q->rlen, enc, sizeof(enc), 0);
	ssize_t dl = el < 0 ? -1 : b64_decode(enc, (size_t)el, dec, sizeof(dec));
	if (dl < 0) {
		api_error(c, LK_E_A_BAD_PARAM, "not valid base64");
		return;
	}
	/* Always text/plain with nosniff and a sandbox: decoded bytes are the
	 * requester's, and must never become a page (httpbin #659). */
	resp_start(c, HTTP_OK);
	api_headers(c);
	resp_send_mem(c, "text/plain; charset=utf-8", dec, (size_t)dl);
}

/* ---- the table ---- */

enum api_shape {
	EXACT = 1,  /* /_/NAME */
	PREFIX = 2, /* /_/NAME/REST */
	BOTH = 3,
};

#define ANY_METHOD 1 /* else GET and HEAD only */

static const struct api_route {
	const char *name;
	unsigned shape;
	unsigned flags;
	void (*fn)(struct http_conn *c, const struct api_req *q);
} api_routes[] = {
        {"anything", BOTH, ANY_METHOD, ep_anything},
        {"get", EXACT, 0, ep_get},
        {"headers", EXACT, 0, ep_headers},
        {"ip", EXACT, 0, ep_ip},
        {"user-agent", EXACT, 0, ep_user_agent},
        {"uuid", EXACT, 0, ep_uuid},
        {"health", EXACT, 0, ep_health},
        {"status", PREFIX, ANY_METHOD, ep_status},
        {"delay", PREFIX, ANY_METHOD, ep_delay},
        {"bytes", PREFIX, 0, ep_bytes_plain},
        {"stream-bytes", PREFIX, 0, ep_stream_bytes},
        {"drip", EXACT, 0, ep_drip},
        {"redirect", PREFIX, ANY_METHOD, ep_redirect},
        {"redirect-to", EXACT, ANY_METHOD, ep_redirect_to},
        {"response-headers", EXACT, ANY_METHOD, ep_response_headers},
        {"basic-auth", PREFIX, ANY_METHOD, ep_basic_auth},
        {"bearer", EXACT, ANY_METHOD, ep_bearer},
        {"cache", BOTH, 0, ep_cache},
        {"etag", PREFIX, 0, ep_etag},
        {"base64", PREFIX, 0, ep_base64},
        {"cookies", EXACT, 0, ep_cookies},
        {"cookies/set", EXACT, 0, ep_cookies_set},
        {"cookies/delete", EXACT, 0, ep_cookies_delete},
};

/* The row for the path after the prefix, and in rest and rlen what follows its name. */
static const struct api_route *api_find(const char *p, size_t n, const char **rest, size_t *rlen, int *exact)
{
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
		const struct api_route *r = &api_routes[i];
		size_t k = strlen(r->name);
		if (n < k || memcmp(p, r->name, k))
			continue;
		if (n == k && (r->shape & EXACT)) {
			*rest = p + n;
			*rlen = 0;
			*exact = 1;
			return r;
		}
		if (n > k && p[k] == '/' && (r->shape & PREFIX)) {
			*rest = p + k + 1;
			*rlen = n - k - 1;
			*exact = 0;
			return r;
		}
	}
	return NULL;
}

void api_handle(struct http_conn *c, const struct http_reqinfo *ri)
{
	struct args *a = malloc(sizeof(*a));
	const char *p = ri->path.p + 2, *rest;
	size_t n = ri->path.len - 2, rlen;
	if (n && *p == '/') {
		p++;
		n--;
	}
	if (!a) {
		resp_error(c, LK_E_ENOMEM, NULL);
		return;
	}
	if (args_parse(a, ri->query.p ? ri->query.p : "", ri->query.len) < 0) {
		api_error(c, LK_E_A_BAD_PARAM, "malformed query string");
		free(a);
		return;
	}
	if (ri->method == M_OPTIONS) {
		http_options(c, ri);
		free(a);
		return;
	}
	int exact = 0;
	const struct api_route *r = api_find(p, n, &rest, &rlen, &exact);
	if (!r) {
		api_error(c, LK_E_A_NO_ENDPOINT, NULL);
	} else if (!(r->flags & ANY_METHOD) && ri->method != M_GET && ri->method != M_HEAD) {
		api_error_h(c, LK_E_A_METHOD, "GET and HEAD", "Allow", "GET, HEAD, OPTIONS");
	} else {
		struct api_req q = {ri, a, rest, rlen, exact};
		r->fn(c, &q);
	}
	free(a);
}
