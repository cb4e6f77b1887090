/* api.c - API-testing endpoints under /_/, modelled on httpbin. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/json.h"
#include "core/net.h"
#include "http/conn.h"

#define API_MAX_DELAY_MS  10000
#define API_MAX_BYTES     (100u * 1024 * 1024)
#define API_MAX_DRIP      (10u * 1024 * 1024)
#define API_MAX_REDIRECTS 100
#define API_MAX_ARGS      256
#define API_DRIP_TICK_MS  10

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

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const struct http_header *hdr(const struct http_reqinfo *ri, const char *name)
{
	return http_find_header(ri->req, name);
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

static void api_error(struct http_conn *c, int status, const char *msg)
{
	struct buf b;
	struct json j;
	buf_init(&b, 4096);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, "error");
	json_str(&j, msg);
	json_key(&j, "status");
	json_int(&j, status);
	json_obj_end(&j);
	send_json(c, status, &b);
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
	const struct http_header *host = hdr(ri, "host");
	char url[HTTP_MAX_URI + 512];
	const struct http_slice t = ri->req->target;
	if (t.len > 7 && !strncasecmp(t.p, "http://", 7))
		snprintf(url, sizeof(url), "%.*s", (int)t.len, t.p);
	else if (host)
		snprintf(url, sizeof(url), "http://%.*s%.*s", (int)host->value.len, host->value.p, (int)t.len,
		         t.p);
	else
		snprintf(url, sizeof(url), "http://%s:%u%.*s", c->w->srv->host, c->w->srv->port, (int)t.len,
		         t.p);
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

/* The echo answer. extra: preformatted header lines ("Name: v\r\n") or NULL. */
static void echo(struct http_conn *c, const struct http_reqinfo *ri, const struct args *a, unsigned parts,
                 int status, const char *extra)
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
	json_str(&j, c->peer_str);
	if (parts & E_PATH) {
		json_key(&j, "path");
		json_str_n(&j, ri->path.p, ri->path.len);
	}
	json_key(&j, "url");
	json_url(&j, c, ri);
	json_obj_end(&j);
	if (j.err) {
		buf_free(&b);
		api_error(c, 500, "response too large");
		return;
	}
	resp_start(c, status);
	api_headers(c);
	if (extra)
		buf_puts(resp_out(c), extra);
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
			uint64_t v = splitmix(&c->w->prng);
			memcpy(r + i, &v, 8);
		}
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
	         r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* ---- generated bodies ---- */

size_t api_gen_fill(struct http_conn *c, size_t room)
{
	struct buf *out = resp_out(c);
	size_t before = buf_used(out);
	if (c->gen_chunked) {
		if (!c->rb_left) {
			buf_puts(out, "0\r\n\r\n");
			c->gen_chunked = 0;
			return buf_used(out) - before;
		}
		size_t n = c->gen_chunk < c->rb_left ? c->gen_chunk : (size_t)c->rb_left;
		if (n > room)
			n = room;
		buf_printf(out, "%zx\r\n", n);
		size_t avail;
		char *p = buf_space(out, n + 2, &avail);
		if (!p)
			return 0;
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = splitmix(&c->gen_state);
			memcpy(p + i, &v, n - i < 8 ? n - i : 8);
		}
		memcpy(p + n, "\r\n", 2);
		out->len += n + 2;
		c->rb_left -= n;
		c->body_bytes += n;
		return buf_used(out) - before;
	}
	size_t n = room < c->rb_left ? room : (size_t)c->rb_left;
	size_t avail;
	char *p = buf_space(out, n, &avail);
	if (!p || !n)
		return 0;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&c->gen_state);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
	out->len += n;
	c->rb_left -= n;
	c->body_bytes += n;
	return n;
}

void api_drip(struct http_conn *c)
{
	/* gen_chunk counts the ticks left; spread what remains evenly over them. */
	size_t ticks = c->gen_chunk ? c->gen_chunk : 1;
	size_t n = (size_t)((c->rb_left + ticks - 1) / ticks);
	char star[4096];
	memset(star, '*', sizeof(star));
	for (size_t left = n; left;) {
		size_t k = left < sizeof(star) ? left : sizeof(star);
		buf_append(resp_out(c), star, k);
		left -= k;
	}
	c->rb_left -= n;
	c->body_bytes += n;
	if (c->gen_chunk)
		c->gen_chunk--;
	if (!c->rb_left)
		c->rb = RB_NONE;
}

/* ---- endpoints ---- */

/* Does the path (after "/_/") equal name, or start with name + "/"? On a prefix match
 * *rest points after the slash. */
static int route(const char *p, size_t n, const char *name, const char **rest, size_t *rlen)
{
	size_t k = strlen(name);
	if (n == k && !memcmp(p, name, k)) {
		*rest = p + n;
		*rlen = 0;
		return 1;
	}
	if (n > k && !memcmp(p, name, k) && p[k] == '/') {
		*rest = p + k + 1;
		*rlen = n - k - 1;
		return 2;
	}
	return 0;
}

static int only_get(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (ri->method == M_GET || ri->method == M_HEAD)
		return 1;
	resp_start(c, 405);
	api_headers(c);
	resp_header(c, "Allow", "GET, HEAD, OPTIONS");
	static const char msg[] = "405 Method Not Allowed: this endpoint answers GET and HEAD\n";
	resp_send_mem(c, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
	return 0;
}

static void ep_status(struct http_conn *c, const struct http_reqinfo *ri, const char *s, size_t n)
{
	int codes[64];
	size_t nc = 0, i = 0;
	while (i <= n) {
		size_t st = i;
		while (i < n && s[i] != ',')
			i++;
		uint64_t v;
		if (nc == 64 || parse_u64(s + st, i - st, 999, &v) < 0 || v < 100 || v > 599) {
			api_error(c, 400,
			          "status codes are 100-599, optionally as a comma list: /_/status/200,500");
			return;
		}
		codes[nc++] = (int)v;
		i++;
	}
	int code = codes[nc > 1 ? splitmix(&c->w->prng) % nc : 0];
	if (code < 200) {
		/* An informational status is never final: send it and close, so the client
		 * sees it and does not wait for more. */
		c->closing = 1;
		resp_start(c, code);
		resp_end_headers(c, NULL, 0, 0);
		return;
	}
	resp_start(c, code);
	api_headers(c);
	if (code >= 300 && code < 400 && code != 304)
		resp_header(c, "Location", "/_/get");
	if (code == 401)
		resp_header(c, "WWW-Authenticate", "Basic realm=\"loopkit\"");
	resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
}

static void ep_bytes(struct http_conn *c, const struct http_reqinfo *ri, const struct args *a, const char *s,
                     size_t n, int stream)
{
	uint64_t len, seed, chunk = 10240;
	if (parse_u64(s, n, API_MAX_BYTES, &len) < 0) {
		api_error(c, 400, "N must be a number of bytes up to 104857600 (100 MiB)");
		return;
	}
	const char *sd = args_get(a, "seed");
	if (sd) {
		if (parse_u64(sd, strlen(sd), UINT64_MAX, &seed) < 0) {
			api_error(c, 400, "seed must be a whole number");
			return;
		}
	} else if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		seed = splitmix(&c->w->prng);
	}
	const char *cs = args_get(a, "chunk_size");
	if (cs && (parse_u64(cs, strlen(cs), 1 << 20, &chunk) < 0 || !chunk)) {
		api_error(c, 400, "chunk_size must be 1-1048576");
		return;
	}
	resp_start(c, 200);
	api_headers(c);
	resp_end_headers(c, "application/octet-stream", len, stream);
	if (c->head_only)
		return;
	c->gen_state = seed;
	c->rb_left = len;
	c->gen_chunked = stream;
	c->gen_chunk = (size_t)chunk;
	c->rb = RB_GEN;
}

static void ep_drip(struct http_conn *c, const struct http_reqinfo *ri, const struct args *a)
{
	uint64_t dur = 2000, delay = 0, num = 10, code = 200;
	const char *v;
	if ((v = args_get(a, "duration")) && parse_secs(v, API_MAX_DELAY_MS, &dur) < 0) {
		api_error(c, 400, "duration must be 0-10 seconds");
		return;
	}
	if ((v = args_get(a, "delay")) && parse_secs(v, API_MAX_DELAY_MS, &delay) < 0) {
		api_error(c, 400, "delay must be 0-10 seconds");
		return;
	}
	if (dur + delay > API_MAX_DELAY_MS) {
		api_error(c, 400, "duration + delay must be at most 10 seconds");
		return;
	}
	if ((v = args_get(a, "numbytes")) && parse_u64(v, strlen(v), API_MAX_DRIP, &num) < 0) {
		api_error(c, 400, "numbytes must be 0-10485760");
		return;
	}
	if ((v = args_get(a, "code")) &&
	    (parse_u64(v, strlen(v), 599, &code) < 0 || code < 200 || code == 204 || code == 304)) {
		/* 204 and 304 have no body: dripping one would corrupt the connection. */
		api_error(c, 400, "code must be 200-599, and not 204 or 304 (they have no body)");
		return;
	}
	resp_start(c, (int)code);
	api_headers(c);
	resp_end_headers(c, "application/octet-stream", num, 0);
	if (c->head_only || !num)
		return;
	/* One tick every API_DRIP_TICK_MS at most; bytes spread evenly over the ticks. */
	uint64_t ticks = dur / API_DRIP_TICK_MS;
	if (ticks > num)
		ticks = num;
	if (!ticks)
		ticks = 1;
	c->rb = RB_DRIP;
	c->rb_left = num;
	c->gen_chunk = (size_t)ticks;
	c->drip_interval_ms = ticks > 1 ? dur / ticks : dur;
	/* The first bytes go after the delay; the rest, one interval apart, so the last
	 * lands at delay + duration. */
	if (ticks > 1)
		conn_wait(c, delay + c->drip_interval_ms);
	else
		conn_wait(c, delay + dur);
}

static void ep_response_headers(struct http_conn *c, const struct http_reqinfo *ri, const struct args *a)
{
	static const char *reserved[] = {
	        "content-length",         "transfer-encoding",       "connection", "date",    "server",
	        "x-content-type-options", "content-security-policy", "keep-alive", "upgrade", "trailer"};
	const char *type = "application/json";
	for (size_t i = 0; i < a->n; i++) {
		if (!header_name_ok(a->kv[i].k) || !header_value_ok(a->kv[i].v)) {
			api_error(c, 400,
			          "header names must be tokens and values free of control characters");
			return;
		}
		/* CORS is the server's decision (--cors), and Refresh is a redirect in disguise. */
		if (!strncasecmp(a->kv[i].k, "access-control-", 15) || !strcasecmp(a->kv[i].k, "refresh") ||
		    !strcasecmp(a->kv[i].k, "location")) {
			api_error(c, 400, "CORS, Refresh and Location headers are not settable here");
			return;
		}
		for (size_t k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++) {
			if (!strcasecmp(a->kv[i].k, reserved[k])) {
				api_error(c, 400,
				          "that header is set by the server and cannot be overridden");
				return;
			}
		}
	}
	struct buf b;
	struct json j;
	buf_init(&b, 64 * 1024);
	json_init(&j, &b, 1);
	json_args(&j, a);
	buf_append(&b, "\n", 1);
	resp_start(c, 200);
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

static void ep_auth(struct http_conn *c, const struct http_reqinfo *ri, const char *rest, size_t rlen,
                    int bearer)
{
	const struct http_header *au = hdr(ri, "authorization");
	struct buf b;
	struct json j;
	char user[512], pass[512], dec[1100];
	if (!bearer) {
		const char *sl = memchr(rest, '/', rlen);
		if (!sl || memchr(sl + 1, '/', rlen - (size_t)(sl - rest) - 1) ||
		    (size_t)(sl - rest) >= sizeof(user) || rlen - (size_t)(sl - rest) - 1 >= sizeof(pass)) {
			api_error(c, 404, "use /_/basic-auth/USER/PASS");
			return;
		}
		ssize_t ul = http_percent_decode(rest, (size_t)(sl - rest), user, sizeof(user) - 1, 0);
		ssize_t pl = http_percent_decode(sl + 1, rlen - (size_t)(sl - rest) - 1, pass,
		                                 sizeof(pass) - 1, 0);
		if (ul < 0 || pl < 0) {
			api_error(c, 400, "malformed escape in USER or PASS");
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
			ok = colon && (size_t)(colon - dec) == strlen(user) &&
			     !memcmp(dec, user, strlen(user)) &&
			     (size_t)(dl - (colon - dec) - 1) == strlen(pass) &&
			     !memcmp(colon + 1, pass, strlen(pass));
		}
	}
	if (au && bearer && au->value.len > 7 && !strncasecmp(au->value.p, "Bearer ", 7))
		ok = 1;
	if (!ok) {
		resp_start(c, 401);
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
	send_json(c, 200, &b);
}

static void ep_cookies(struct http_conn *c, const struct http_reqinfo *ri)
{
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
	send_json(c, 200, &b);
}

static void ep_cookies_change(struct http_conn *c, const struct args *a, int set)
{
	for (size_t i = 0; i < a->n; i++) {
		if (!header_name_ok(a->kv[i].k) || strpbrk(a->kv[i].v, ";, \t\"\\") ||
		    !header_value_ok(a->kv[i].v)) {
			api_error(c, 400,
			          "cookie names must be tokens and values free of ; , space and quotes");
			return;
		}
	}
	resp_start(c, 302);
	api_headers(c);
	for (size_t i = 0; i < a->n; i++) {
		if (set)
			resp_headerf(c, "Set-Cookie", "%s=%s; Path=/", a->kv[i].k, a->kv[i].v);
		else
			resp_headerf(c, "Set-Cookie",
			             "%s=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
			             a->kv[i].k);
	}
	resp_header(c, "Location", "/_/cookies");
	resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
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
		resp_error(c, 503, "out of memory");
		return;
	}
	if (args_parse(a, ri->query.p ? ri->query.p : "", ri->query.len) < 0) {
		api_error(c, 400, "malformed query string");
		goto out;
	}
	if (ri->method == M_OPTIONS) {
		files_options(c, ri);
		goto out;
	}
	if (route(p, n, "anything", &rest, &rlen)) {
		echo(c, ri, a, E_METHOD | E_BODY | E_PATH, 200, NULL);
	} else if (route(p, n, "get", &rest, &rlen) == 1) {
		if (only_get(c, ri))
			echo(c, ri, a, 0, 200, NULL);
	} else if (route(p, n, "headers", &rest, &rlen) == 1 || route(p, n, "ip", &rest, &rlen) == 1 ||
	           route(p, n, "user-agent", &rest, &rlen) == 1 || route(p, n, "uuid", &rest, &rlen) == 1 ||
	           route(p, n, "health", &rest, &rlen) == 1) {
		if (!only_get(c, ri))
			goto out;
		struct buf b;
		struct json j;
		buf_init(&b, 64 * 1024);
		json_init(&j, &b, 1);
		json_obj_begin(&j);
		if (n == 7) {
			json_key(&j, "headers");
			json_headers(&j, ri->req);
		} else if (n == 2) {
			json_key(&j, "origin");
			json_str(&j, c->peer_str);
		} else if (n == 10) {
			const struct http_header *ua = hdr(ri, "user-agent");
			json_key(&j, "user-agent");
			if (ua)
				json_str_n(&j, ua->value.p, ua->value.len);
			else
				json_null(&j);
		} else if (n == 4) {
			char u[37];
			uuid4(c, u);
			json_key(&j, "uuid");
			json_str(&j, u);
		} else {
			json_key(&j, "status");
			json_str(&j, "ok");
			json_key(&j, "version");
			json_str(&j, LOOPKIT_VERSION);
		}
		json_obj_end(&j);
		send_json(c, 200, &b);
	} else if (route(p, n, "status", &rest, &rlen) == 2) {
		ep_status(c, ri, rest, rlen);
	} else if (route(p, n, "delay", &rest, &rlen) == 2) {
		char t[32];
		uint64_t ms;
		snprintf(t, sizeof(t), "%.*s", (int)(rlen < 31 ? rlen : 31), rest);
		if (rlen > 31 || parse_secs(t, API_MAX_DELAY_MS, &ms) < 0) {
			api_error(c, 400, "delay is 0-10 seconds, fractions allowed: /_/delay/0.5");
			goto out;
		}
		echo(c, ri, a, E_METHOD | E_BODY, 200, NULL);
		conn_wait(c, ms);
	} else if (route(p, n, "bytes", &rest, &rlen) == 2) {
		if (only_get(c, ri))
			ep_bytes(c, ri, a, rest, rlen, 0);
	} else if (route(p, n, "stream-bytes", &rest, &rlen) == 2) {
		if (only_get(c, ri))
			ep_bytes(c, ri, a, rest, rlen, 1);
	} else if (route(p, n, "drip", &rest, &rlen) == 1) {
		if (only_get(c, ri))
			ep_drip(c, ri, a);
	} else if (route(p, n, "redirect", &rest, &rlen) == 2) {
		uint64_t k;
		if (parse_u64(rest, rlen, API_MAX_REDIRECTS, &k) < 0 || !k) {
			api_error(c, 400, "redirect count is 1-100");
			goto out;
		}
		char loc[64];
		if (k == 1)
			snprintf(loc, sizeof(loc), "/_/get");
		else
			snprintf(loc, sizeof(loc), "/_/redirect/%llu", (unsigned long long)(k - 1));
		redirect(c, 302, loc);
	} else if (route(p, n, "redirect-to", &rest, &rlen) == 1) {
		const char *url = args_get(a, "url"), *sc = args_get(a, "status_code");
		uint64_t code = 302;
		if (!url || !redirect_ok(url)) {
			api_error(c, 400,
			          "url must be a path on this server or an http(s) URL on a loopback host");
			goto out;
		}
		if (sc && (parse_u64(sc, strlen(sc), 399, &code) < 0 || code < 300)) {
			api_error(c, 400, "status_code must be 300-399");
			goto out;
		}
		redirect(c, (int)code, url);
	} else if (route(p, n, "response-headers", &rest, &rlen) == 1) {
		ep_response_headers(c, ri, a);
	} else if (route(p, n, "basic-auth", &rest, &rlen) == 2) {
		ep_auth(c, ri, rest, rlen, 0);
	} else if (route(p, n, "bearer", &rest, &rlen) == 1) {
		ep_auth(c, ri, rest, rlen, 1);
	} else if (route(p, n, "cache", &rest, &rlen) == 1) {
		if (!only_get(c, ri))
			goto out;
		if (hdr(ri, "if-modified-since") || hdr(ri, "if-none-match")) {
			resp_start(c, 304);
			api_headers(c);
			resp_end_headers(c, NULL, 0, 0);
			goto out;
		}
		char extra[160], u[37], date[32];
		uuid4(c, u);
		http_date_format(time(NULL), date);
		snprintf(extra, sizeof(extra), "Last-Modified: %s\r\nETag: \"%s\"\r\n", date, u);
		echo(c, ri, a, 0, 200, extra);
	} else if (route(p, n, "cache", &rest, &rlen) == 2) {
		uint64_t secs;
		if (!only_get(c, ri))
			goto out;
		if (parse_u64(rest, rlen, 10 * 365 * 86400ull, &secs) < 0) {
			api_error(c, 400, "use /_/cache/SECONDS");
			goto out;
		}
		char extra[80];
		snprintf(extra, sizeof(extra), "Cache-Control: public, max-age=%llu\r\n",
		         (unsigned long long)secs);
		echo(c, ri, a, 0, 200, extra);
	} else if (route(p, n, "etag", &rest, &rlen) == 2) {
		if (!only_get(c, ri))
			goto out;
		char tag[512], extra[600];
		ssize_t tl = http_percent_decode(rest, rlen, tag, sizeof(tag) - 1, 0);
		if (tl < 0 || memchr(tag, '"', (size_t)tl) || !tl) {
			api_error(c, 400, "malformed ETAG");
			goto out;
		}
		tag[tl] = 0;
		if (!header_value_ok(tag)) {
			api_error(c, 400, "malformed ETAG");
			goto out;
		}
		snprintf(extra, sizeof(extra), "\"%s\"", tag);
		const struct http_header *inm = hdr(ri, "if-none-match"), *im = hdr(ri, "if-match");
		if (inm && etag_list_has(inm->value, extra)) {
			resp_start(c, 304);
			api_headers(c);
			resp_header(c, "ETag", extra);
			resp_end_headers(c, NULL, 0, 0);
			goto out;
		}
		if (im && !etag_list_has(im->value, extra)) {
			api_error(c, 412, "If-Match does not match the ETag");
			goto out;
		}
		snprintf(extra, sizeof(extra), "ETag: \"%s\"\r\n", tag);
		echo(c, ri, a, 0, 200, extra);
	} else if (route(p, n, "base64", &rest, &rlen) == 2) {
		if (!only_get(c, ri))
			goto out;
		char enc[HTTP_MAX_URI], dec[HTTP_MAX_URI];
		ssize_t el = http_percent_decode(rest, rlen, enc, sizeof(enc), 0);
		ssize_t dl = el < 0 ? -1 : b64_decode(enc, (size_t)el, dec, sizeof(dec));
		if (dl < 0) {
			api_error(c, 400, "not valid base64");
			goto out;
		}
		/* Always text/plain with nosniff and a sandbox: decoded bytes are the
		 * requester's, and must never become a page (httpbin #659). */
		resp_start(c, 200);
		api_headers(c);
		resp_send_mem(c, "text/plain; charset=utf-8", dec, (size_t)dl);
	} else if (route(p, n, "cookies", &rest, &rlen) == 1) {
		if (only_get(c, ri))
			ep_cookies(c, ri);
	} else if (route(p, n, "cookies/set", &rest, &rlen) == 1) {
		if (only_get(c, ri))
			ep_cookies_change(c, a, 1);
	} else if (route(p, n, "cookies/delete", &rest, &rlen) == 1) {
		if (only_get(c, ri))
			ep_cookies_change(c, a, 0);
	} else {
		api_error(c, 404, "no such endpoint under /_/; see docs/serve.md for the list");
	}
out:
	free(a);
}
