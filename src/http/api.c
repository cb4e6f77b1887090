/* api.c - API-testing endpoints under /_/, modelled on httpbin (and go-httpbin's additions). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/json.h"
#include "core/net.h"
#include "core/nettle_lib.h"
#include "core/rand.h"
#include "core/strparse.h"
#include "core/text.h"
#include "http/apidata.h"
#include "http/digest.h"
#include "http/encode.h"
#include "http/multipart.h"
#include "http/route.h"

#define API_MAX_DELAY_MS    10000
#define API_MAX_BYTES       (100u * 1024 * 1024)
#define API_MAX_DRIP        (10u * 1024 * 1024)
#define API_MAX_REDIRECTS   100
#define API_MAX_ARGS        256  /* query parameters */
#define API_MAX_FORM_FIELDS 1000 /* fields and files of one form body */
#define API_DRIP_TICK_MS    10
#define API_MAX_CHUNK       (1u << 20)
/* Set-Cookie bytes one answer may carry (a browser's own cap per cookie) */
#define API_MAX_COOKIE_BYTES 4096
#define API_MAX_STREAM       100    /* /_/stream/N lines, as httpbin */
#define API_MAX_RANGE        102400 /* /_/range/N bytes, as httpbin */
#define API_MAX_LINKS        200    /* /_/links/N, as httpbin */
#define API_MAX_SSE          1000   /* /_/sse?count= */
#define API_SSE_COUNT        10     /* go-httpbin's defaults */
#define API_SSE_DURATION_MS  5000
#define API_ECHO_MAX         (HTTP_API_ANSWER_RATIO * HTTP_API_MAX_BODY) /* an echo of the largest body, escaped */

/* Every /_/ answer: nothing a request puts in it may run as a page of this origin. */
#define API_CSP "sandbox; default-src 'none'"
/* /_/forms/post's page: a fixed form, which may post (to this server only). */
#define API_CSP_FORMS "sandbox allow-forms; default-src 'none'; form-action 'self'"
#define API_REALM     "loopkit" /* of Basic and Digest challenges */

/* Headers that act beyond this server: cookies reach every app on localhost whatever
 * its port, Clear-Site-Data wipes them, WWW-Authenticate prompts in the user's name.
 * A web page must not be able to send them through us. */

/* ---- name/value lists: query strings and form bodies ---- */

struct kv {
	const char *k, *v; /* NUL-terminated copies in the list's arena; v may hold NULs */
	size_t klen, vlen;
	struct http_slice type; /* a file part's Content-Type; len 0 otherwise */
};

struct kvlist {
	struct kv *kv;
	size_t n, max;
	char *arena;
	size_t used, size;
};

/* A list of at most max pairs whose copies take at most arena bytes, in one block
 * (free it with free). */
static struct kvlist *kv_new(size_t max, size_t arena)
{
	struct kvlist *l = malloc(sizeof(*l) + max * sizeof(struct kv) + arena);
	if (!l)
		return NULL;
	l->kv = (struct kv *)(l + 1);
	l->arena = (char *)(l->kv + max);
	l->n = 0;
	l->max = max;
	l->used = 0;
	l->size = arena;
	return l;
}

/* Copies s[0..n) into the arena (percent-decoded when decode, '+' as space), NUL-
 * terminated. Returns the copy and its length, or NULL (malformed, or no room). */
static const char *kv_copy(struct kvlist *l, const char *s, size_t n, int decode, size_t *len)
{
	char *o = l->arena + l->used;
	size_t room = l->size - l->used;
	if (!room)
		return NULL;
	ssize_t k;
	if (decode) {
		k = http_percent_decode(s, n, o, room - 1, 1);
	} else {
		k = n < room ? (ssize_t)n : -1;
		if (k >= 0)
			memcpy(o, s, n);
	}
	if (k < 0)
		return NULL;
	o[k] = 0;
	l->used += (size_t)k + 1;
	*len = (size_t)k;
	return o;
}

enum kv_rc { KV_OK = 0, KV_MALFORMED = -1, KV_TOO_MANY = -2 };

static enum kv_rc kv_add(struct kvlist *l, const char *k, size_t kn, const char *v, size_t vn, int decode)
{
	if (l->n == l->max)
		return KV_TOO_MANY;
	struct kv *e = &l->kv[l->n];
	memset(e, 0, sizeof(*e));
	if (!(e->k = kv_copy(l, k, kn, decode, &e->klen)) || !(e->v = kv_copy(l, v, vn, decode, &e->vlen)))
		return KV_MALFORMED;
	l->n++;
	return KV_OK;
}

/* Decodes "a=1&b=2" (application/x-www-form-urlencoded) into l. */
static enum kv_rc kv_parse(struct kvlist *l, const char *s, size_t n)
{
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
		enum kv_rc r = kv_add(l, s + st, klen, vp, (size_t)(s + end - vp), 1);
		if (r != KV_OK)
			return r;
	}
	return KV_OK;
}

static int kv_key_eq(const struct kv *a, const struct kv *b)
{
	return a->klen == b->klen && !memcmp(a->k, b->k, a->klen);
}

static const char *args_get(const struct kvlist *a, const char *k)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->kv[i].k, k))
			return a->kv[i].v;
	return NULL;
}

/* args_get for a name in any case (httpbin's redirect-to reads its args so). */
static const char *args_get_ci(const struct kvlist *a, const char *k)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcasecmp(a->kv[i].k, k))
			return a->kv[i].v;
	return NULL;
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
	resp_header(c, "Content-Security-Policy", API_CSP);
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
static void api_error_h(struct http_conn *c, enum lk_err e, const char *detail, const char *name,
                        const char *value)
{
	struct buf b;
	buf_init(&b, 4096);
	resp_start(c, lk_error_json(&b, e, detail, 1));
	api_headers(c);
	if (name)
		resp_header(c, name, value);
	resp_send_mem(c, "application/json", buf_start(&b) ? buf_start(&b) : "", buf_used(&b));
	buf_free(&b);
}

static void api_error(struct http_conn *c, enum lk_err e, const char *detail)
{
	api_error_h(c, e, detail, NULL, NULL);
}

/* api_error with a detail made by printf. */
static void api_errorf(struct http_conn *c, enum lk_err e, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void api_errorf(struct http_conn *c, enum lk_err e, const char *fmt, ...)
{
	char d[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d, sizeof(d), fmt, ap);
	va_end(ap);
	api_error(c, e, d);
}

/* {"k":"v", "rep":["1","2"]}: repeated keys become arrays, as in httpbin. Files (with a
 * type) are written as json_safe text. */
static void json_safe(struct json *j, const char *p, size_t n, struct http_slice type);
static void json_kvs(struct json *j, const struct kvlist *a, int files)
{
	json_obj_begin(j);
	for (size_t i = 0; a && i < a->n; i++) {
		size_t count = 0, first = i;
		for (size_t k = 0; k < a->n; k++) {
			if (kv_key_eq(&a->kv[k], &a->kv[i])) {
				if (!count)
					first = k;
				count++;
			}
		}
		if (first != i)
			continue;
		json_key_n(j, a->kv[i].k, a->kv[i].klen);
		if (count > 1)
			json_arr_begin(j);
		for (size_t k = i; k < a->n; k++) {
			const struct kv *e = &a->kv[k];
			if (!kv_key_eq(e, &a->kv[i]))
				continue;
			if (files)
				json_safe(j, e->v, e->vlen, e->type);
			else
				json_str_n(j, e->v, e->vlen);
		}
		if (count > 1)
			json_arr_end(j);
	}
	json_obj_end(j);
}

static int header_name_cmp(const struct http_slice *a, const struct http_slice *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int r = strncasecmp(a->p, b->p, n);
	return r ? r : (a->len > b->len) - (a->len < b->len);
}

/* The request's headers as httpbin shows them: canonical capitalisation
 * ("User-Agent"), sorted by name, a repeated field once with its values joined by
 * commas (RFC 9110 5.3), so the object has no duplicate keys. */
static void json_headers(struct json *j, const struct http_request *req)
{
	const struct http_header *h[HTTP_MAX_HEADERS];
	size_t n = req->nheaders < HTTP_MAX_HEADERS ? req->nheaders : HTTP_MAX_HEADERS;
	for (size_t i = 0; i < n; i++)
		h[i] = &req->headers[i];
	for (size_t i = 1; i < n; i++) /* insertion sort: stable, at most 100 */
		for (size_t k = i; k > 0 && header_name_cmp(&h[k - 1]->name, &h[k]->name) > 0; k--) {
			const struct http_header *t = h[k];
			h[k] = h[k - 1];
			h[k - 1] = t;
		}
	json_obj_begin(j);
	for (size_t i = 0; i < n;) {
		char name[256];
		size_t nl = h[i]->name.len < sizeof(name) ? h[i]->name.len : sizeof(name) - 1;
		for (size_t k = 0; k < nl; k++) {
			char ch = h[i]->name.p[k];
			name[k] = (char)((k == 0 || name[k - 1] == '-') ? toupper((unsigned char)ch)
			                                                : tolower((unsigned char)ch));
		}
		size_t end = i + 1;
		while (end < n && !header_name_cmp(&h[i]->name, &h[end]->name))
			end++;
		json_key_n(j, name, nl);
		if (end == i + 1) {
			json_str_n(j, h[i]->value.p, h[i]->value.len);
		} else {
			struct buf v;
			buf_init(&v, HTTP_MAX_HEADERS * 8192);
			for (size_t k = i; k < end; k++) {
				if (k > i)
					buf_append(&v, ",", 1);
				buf_append(&v, h[k]->value.p, h[k]->value.len);
			}
			json_str_n(j, v.data ? v.data : "", v.len);
			buf_free(&v);
		}
		i = end;
	}
	json_obj_end(j);
}

/* "http://HOST" of this request, for absolute URLs: the Host it named (checked
 * against rebinding already), else the bound address. */
static void origin_url(struct http_conn *c, const struct http_reqinfo *ri, char *out, size_t len)
{
	const struct http_config *cfg = http_ctx_config(ctx(c));
	const struct http_header *host = hdr(ri, "host");
	if (host)
		snprintf(out, len, "http://%.*s", (int)host->value.len, host->value.p);
	else
		snprintf(out, len, "http://%s:%u", cfg->host, cfg->port);
}

static void json_url(struct json *j, struct http_conn *c, const struct http_reqinfo *ri)
{
	char url[HTTP_MAX_URI + 512];
	const struct http_slice t = ri->req->target;
	if (t.len > 7 && !strncasecmp(t.p, "http://", 7)) {
		snprintf(url, sizeof(url), "%.*s", (int)t.len, t.p);
	} else {
		char base[512];
		origin_url(c, ri, base, sizeof(base));
		snprintf(url, sizeof(url), "%s%.*s", base, (int)t.len, t.p);
	}
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

static int utf8_valid(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t k = text_utf8_len((const unsigned char *)p + i, n - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

static void b64_encode(struct buf *b, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		char o[4] = {tab[v >> 18], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
		             i + 2 < n ? tab[v & 63] : '='};
		buf_append(b, o, 4);
	}
}

/* Text as it is when it is UTF-8, else a data: URL of its bytes (httpbin's json_safe:
 * JSON cannot carry arbitrary bytes). */
static void json_safe(struct json *j, const char *p, size_t n, struct http_slice type)
{
	if (utf8_valid(p, n)) {
		json_str_n(j, p, n);
		return;
	}
	struct buf u;
	buf_init(&u, 64 + 2 * n + 256);
	buf_puts(&u, "data:");
	if (type.len)
		buf_append(&u, type.p, type.len < 128 ? type.len : 128);
	else
		buf_puts(&u, "application/octet-stream");
	buf_puts(&u, ";base64,");
	b64_encode(&u, (const unsigned char *)p, n);
	json_str_n(j, buf_start(&u) ? buf_start(&u) : "", buf_used(&u));
	buf_free(&u);
}

/* Extra headers of an echo answer (Cache-Control, ETag, ...); name NULL ends. */
struct hdr_pair {
	const char *name, *value;
};

/* A request as the endpoints see it: the parsed query and what follows the
 * endpoint's name in the path ("/_/status/418" -> "418"). */
struct api_req {
	const struct http_reqinfo *ri;
	const struct kvlist *a;
	const char *rest; /* after "NAME/"; "" for an exact match */
	size_t rlen;
	int exact; /* the path was /_/NAME, without a slash after it */
	int arg;   /* the route row's argument */
};

/* ---- request bodies: forms, files, data ---- */

/* What an echo shows of the body: a form (urlencoded or multipart) fills form and
 * files and leaves data empty, as httpbin does; any other body is data. */
struct body_view {
	struct kvlist *form, *files; /* NULL: none */
	int is_form;
};

static void body_free(struct body_view *bv)
{
	free(bv->form);
	free(bv->files);
	bv->form = bv->files = NULL;
}

static int form_error(struct http_conn *c, enum kv_rc r, const char *what)
{
	if (r == KV_TOO_MANY)
		api_errorf(c, LK_E_A_BAD_PARAM, "a form body may have at most %d fields and files",
		           API_MAX_FORM_FIELDS);
	else
		api_errorf(c, LK_E_A_BAD_PARAM, "malformed %s body", what);
	return -1;
}

/* Reads the body's form, if it is one. Returns 0, or -1 after answering 400. */
static int body_read(struct http_conn *c, const struct http_reqinfo *ri, struct body_view *bv)
{
	memset(bv, 0, sizeof(*bv));
	const struct http_header *ct = hdr(ri, "content-type");
	const char *body = ri->body ? ri->body : "";
	size_t arena = ri->body_len + 2 * API_MAX_FORM_FIELDS + 2;
	if (content_type_is(ri, "application/x-www-form-urlencoded")) {
		bv->is_form = 1;
		if (!(bv->form = kv_new(API_MAX_FORM_FIELDS, arena)))
			return api_error(c, LK_E_ENOMEM, NULL), -1;
		enum kv_rc r = kv_parse(bv->form, body, ri->body_len);
		if (r != KV_OK)
			return body_free(bv), form_error(c, r, "application/x-www-form-urlencoded");
		return 0;
	}
	struct http_mp m;
	if (!ct || http_multipart_init(&m, ct->value, body, ri->body_len) < 0) {
		if (content_type_is(ri, "multipart/form-data")) {
			api_errorf(c, LK_E_A_BAD_PARAM,
			           "multipart/form-data needs a boundary of 1-%d characters",
			           HTTP_MP_MAX_BOUNDARY);
			return -1;
		}
		return 0;
	}
	bv->is_form = 1;
	bv->form = kv_new(API_MAX_FORM_FIELDS, arena);
	bv->files = kv_new(API_MAX_FORM_FIELDS, arena);
	if (!bv->form || !bv->files)
		return body_free(bv), api_error(c, LK_E_ENOMEM, NULL), -1;
	struct http_mp_part part;
	int r;
	while ((r = http_multipart_next(&m, &part)) > 0) {
		char name[1024];
		long nl = http_param_unquote(part.name, name, sizeof(name));
		struct kvlist *l = part.filename.p ? bv->files : bv->form;
		enum kv_rc kr =
		        nl < 0 ? KV_MALFORMED : kv_add(l, name, (size_t)nl, part.data.p, part.data.len, 0);
		if (kr != KV_OK)
			return body_free(bv), form_error(c, kr, "multipart/form-data");
		l->kv[l->n - 1].type = part.type;
	}
	if (r < 0)
		return body_free(bv), form_error(c, KV_MALFORMED, "multipart/form-data");
	return 0;
}

/* ---- the echo ---- */

enum echo_parts {
	E_METHOD = 1, /* "method" */
	E_FORM = 2,   /* "data", "files", "form" */
	E_JSON = 4,   /* "json": the body parsed, when it is JSON */
};

/* The echo's JSON into b (keys in httpbin's order: sorted). Returns 0, or -1 after
 * answering (a bad form, a response too large). */
static int echo_build(struct buf *b, struct http_conn *c, const struct http_reqinfo *ri,
                      const struct kvlist *a, unsigned parts, int pretty)
{
	struct body_view bv = {0};
	struct json j;
	const char *body = ri->body ? ri->body : "";
	if ((parts & (E_FORM | E_JSON)) && body_read(c, ri, &bv) < 0)
		return -1;
	json_init(&j, b, pretty);
	json_obj_begin(&j);
	json_key(&j, "args");
	json_kvs(&j, a, 0);
	if (parts & E_FORM) {
		json_key(&j, "data");
		json_safe(&j, bv.is_form ? "" : body, bv.is_form ? 0 : ri->body_len,
		          (struct http_slice){NULL, 0});
		json_key(&j, "files");
		json_kvs(&j, bv.files, 1);
		json_key(&j, "form");
		json_kvs(&j, bv.form, 0);
	}
	json_key(&j, "headers");
	json_headers(&j, ri->req);
	if (parts & E_JSON) {
		json_key(&j, "json");
		if (!bv.is_form && ri->body_len && json_valid(body, ri->body_len))
			json_raw(&j, body, ri->body_len);
		else
			json_null(&j);
	}
	if (parts & E_METHOD) {
		json_key(&j, "method");
		json_str_n(&j, ri->req->method.p, ri->req->method.len);
	}
	json_kstr(&j, "origin", http_conn_peer(c));
	json_key(&j, "url");
	json_url(&j, c, ri);
	json_obj_end(&j);
	body_free(&bv);
	if (j.err) {
		api_error(c, LK_E_H_TOO_LARGE_RESP, NULL);
		return -1;
	}
	return 0;
}

/* The echo answer. extra: headers to add, or NULL. */
static void echo(struct http_conn *c, const struct http_reqinfo *ri, const struct kvlist *a, unsigned parts,
                 int status, const struct hdr_pair *extra)
{
	struct buf b;
	buf_init(&b, API_ECHO_MAX);
	if (echo_build(&b, c, ri, a, parts, 1) < 0) {
		buf_free(&b);
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

/* ---- parsing parameters ---- */

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

/* A duration parameter: seconds ("1.5") or with a unit ("500ms", "2s"), as
 * go-httpbin's take them. */
static int parse_dur_ms(const char *s, uint64_t max_ms, uint64_t *ms)
{
	uint64_t ns;
	char err[64];
	if (strparse_duration(s, 0, max_ms * STRPARSE_NS_PER_MS, &ns, err, sizeof(err)) < 0)
		return -1;
	*ms = ns / STRPARSE_NS_PER_MS;
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

/* Splits rest ("a/b/c") into at most max percent-decoded segments, each NUL-terminated
 * in seg[i] (segsz bytes). Returns the count, or -1 when malformed, too long or more
 * than max. */
static int split_rest(const char *rest, size_t rlen, char seg[][256], int max)
{
	int n = 0;
	size_t i = 0;
	while (i <= rlen) {
		size_t st = i;
		while (i < rlen && rest[i] != '/')
			i++;
		if (n == max)
			return -1;
		ssize_t k = http_percent_decode(rest + st, i - st, seg[n], 255, 0);
		if (k < 0 || memchr(seg[n], 0, (size_t)k))
			return -1;
		seg[n++][k] = 0;
		i++;
	}
	return n;
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
			if (!(isalnum((unsigned char)ch) || ch == '-' ||
			      (ch == '.' && i && name[i - 1] != '.')))
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

static void redirect(struct http_conn *c, int status, const char *loc)
{
	resp_start(c, status);
	api_headers(c);
	resp_header(c, "Location", loc);
	resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
}

static void random_bytes(struct http_conn *c, void *p, size_t n)
{
	if (getrandom(p, n, 0) == (ssize_t)n)
		return;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = http_ctx_random(ctx(c));
		memcpy((char *)p + i, &v, n - i < 8 ? n - i : 8);
	}
}

static void uuid4(struct http_conn *c, char out[37])
{
	unsigned char r[16];
	random_bytes(c, r, sizeof(r));
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
	int ended; /* the last chunk is written */
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

/* /_/range with a duration: the bytes of [pos, last] ('a' + i % 26), a chunk per tick,
 * timed as httpbin's: duration/N per byte, so a full chunk goes out when the bytes before
 * it are due and a last, shorter one when its own last byte is (a range shorter than a
 * chunk comes whole after its share of the duration). Chunks due within the same
 * millisecond tick go out together (chunk_size=1 would need a tick per byte). */
struct gen_range {
	uint64_t pos, last, sent;
	uint64_t dur, n;
	uint64_t start_us; /* when the body began (loop_clock_us) */
	size_t chunk;
	int ended;
};

/* When the chunk after `sent` bytes is due, in ms since the body began. */
static uint64_t range_due(const struct gen_range *g)
{
	uint64_t left = g->last - g->pos + 1;
	return g->dur * (left >= g->chunk ? g->sent : g->sent + left) / g->n;
}

static void range_bytes(char *p, uint64_t from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (from + i) % 26);
}

static size_t range_fill(struct http_conn *c, void *state, struct buf *out, size_t room)
{
	struct gen_range *g = state;
	size_t added = 0;
	uint64_t now = (loop_clock_us() - g->start_us) / 1000;
	/* This tick's chunk, and every later one already due, within room. */
	while (!g->ended && (!added || range_due(g) <= now) && added < room) {
		size_t n = g->last - g->pos + 1 < g->chunk ? (size_t)(g->last - g->pos + 1) : g->chunk, avail;
		char *p = buf_space(out, n, &avail);
		if (!p)
			break;
		range_bytes(p, g->pos, n);
		out->len += n;
		g->pos += n;
		g->sent += n;
		added += n;
		g->ended = g->pos > g->last;
	}
	if (!g->ended) {
		uint64_t due = range_due(g);
		resp_gen_next_in(c, due > now ? due - now : 1);
	}
	return added;
}

static const struct resp_gen_ops range_ops = {range_fill, NULL};

/* /_/sse: "event: ping" with {"id","timestamp"}, one per tick; the last carries the
 * end of the chunked body along. */
struct gen_sse {
	unsigned id, count;
	int chunked;
};

static size_t sse_fill(struct http_conn *c, void *state, struct buf *out, size_t room)
{
	struct gen_sse *g = state;
	if (g->id >= g->count)
		return 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char ev[128];
	int n = snprintf(ev, sizeof(ev), "event: ping\ndata: {\"id\":%u,\"timestamp\":%lld}\n\n", g->id,
	                 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	size_t before = buf_used(out);
	http_chunk_put(out, g->chunked, ev, (size_t)n);
	if (++g->id == g->count && g->chunked)
		buf_puts(out, "0\r\n\r\n");
	return buf_used(out) - before;
}

static const struct resp_gen_ops sse_ops = {sse_fill, NULL};

/* ---- endpoints ---- */

static void ep_echo(struct http_conn *c, const struct api_req *q)
{
	echo(c, q->ri, q->a, (unsigned)q->arg, HTTP_OK, NULL);
}

/* A fixed body (enum api_blob_id in arg). */
static void send_blob(struct http_conn *c, int status, enum api_blob_id id)
{
	const struct api_blob *b = &api_blobs[id];
	resp_start(c, status);
	resp_header(c, "Content-Security-Policy", id == API_BLOB_FORM ? API_CSP_FORMS : API_CSP);
	resp_send_mem(c, b->type, b->data, b->len);
}

static void ep_blob(struct http_conn *c, const struct api_req *q)
{
	send_blob(c, HTTP_OK, (enum api_blob_id)q->arg);
}

/* /_/image's formats in the order they are offered; the last (any type) is not named in
 * a 406. */
static const struct image_format {
	const char *name, *type;
	enum api_blob_id id;
} image_formats[] = {
        {"webp", "image/webp", API_BLOB_WEBP}, {"svg", "image/svg+xml", API_BLOB_SVG},
        {"jpeg", "image/jpeg", API_BLOB_JPEG}, {"png", "image/png", API_BLOB_PNG},
        {"png", "image/*", API_BLOB_PNG},      {"png", "*/*", API_BLOB_PNG},
};

/* 406 as httpbin sends it (from /_/image and /_/status/406): the media types offered. */
static void send_not_acceptable(struct http_conn *c)
{
	struct buf b;
	struct json j;
	buf_init(&b, 4096);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, "accept");
	json_arr_begin(&j);
	for (size_t i = 0; i + 1 < sizeof(image_formats) / sizeof(image_formats[0]); i++)
		json_str(&j, image_formats[i].type);
	json_arr_end(&j);
	json_kstr(&j, "message", "Client did not request a supported media type.");
	json_obj_end(&j);
	send_json(c, HTTP_NOT_ACCEPTABLE, &b);
}

/* One "CODE" or "CODE:WEIGHT" of /_/status/; the weight (default 1) is a decimal >= 0. */
static int status_choice(const char *s, size_t n, int *code, double *weight)
{
	const char *colon = memchr(s, ':', n);
	size_t cl = colon ? (size_t)(colon - s) : n;
	uint64_t v;
	if (parse_u64(s, cl, HTTP_STATUS_MAX, &v) < 0 || v < HTTP_STATUS_MIN)
		return -1;
	*code = (int)v;
	*weight = 1;
	if (colon) {
		char w[32], *end;
		size_t wl = n - cl - 1;
		if (!wl || wl >= sizeof(w))
			return -1;
		memcpy(w, colon + 1, wl); /* the path is not NUL-terminated: only w is read */
		w[wl] = 0;
		/* A decimal as Python's float() reads it (no hex, nan or inf). */
		if (strspn(w, "0123456789.eE+-") < wl || !strchr("0123456789.", w[0]))
			return -1;
		*weight = strtod(w, &end);
		if (*end || !(*weight >= 0 && *weight <= 1e9))
			return -1;
	}
	return 0;
}

static void ep_status(struct http_conn *c, const struct api_req *q)
{
	int codes[64];
	double weights[64], total = 0;
	size_t nc = 0, i = 0, n = q->rlen;
	const char *s = q->rest;
	while (i <= n) {
		size_t st = i;
		while (i < n && s[i] != ',')
			i++;
		if (nc == 64 || status_choice(s + st, i - st, &codes[nc], &weights[nc]) < 0) {
			api_errorf(c, LK_E_A_BAD_PARAM,
			           "status codes are %d-%d, optionally as a comma list with weights: "
			           "/_/status/%d,%d or /_/status/%d:0.9,%d:0.1",
			           HTTP_STATUS_MIN, HTTP_STATUS_MAX, HTTP_OK, HTTP_INTERNAL_SERVER_ERROR,
			           HTTP_OK, HTTP_INTERNAL_SERVER_ERROR);
			return;
		}
		total += weights[nc++];
		i++;
	}
	if (!(total > 0)) {
		api_error(c, LK_E_A_BAD_PARAM, "the weights of /_/status/ add up to 0");
		return;
	}
	/* As httpbin: a point on [0, total), the code whose share of the line holds it. */
	double x = (double)(http_ctx_random(ctx(c)) >> 11) / 9007199254740992.0 * total;
	size_t pick = 0;
	double cum = weights[0];
	while (pick + 1 < nc && (x >= cum || !weights[pick]))
		cum += weights[++pick];
	int code = codes[pick];
	if (code < HTTP_OK) {
		/* An informational status is never final: send it and close, so the client
		 * sees it and does not wait for more. */
		resp_close_after(c);
		resp_start(c, code);
		resp_end_headers(c, NULL, 0, 0);
		return;
	}
	if (code == HTTP_IM_A_TEAPOT) {
		resp_start(c, code);
		api_headers(c);
		resp_header(c, "X-More-Info", "https://www.rfc-editor.org/rfc/rfc2324");
		const struct api_blob *b = &api_blobs[API_BLOB_TEAPOT];
		resp_send_mem(c, b->type, b->data, b->len);
		return;
	}
	if (code == HTTP_NOT_ACCEPTABLE) {
		send_not_acceptable(c);
		return;
	}
	resp_start(c, code);
	api_headers(c);
	if (code >= HTTP_MULTIPLE_CHOICES && code < HTTP_BAD_REQUEST && code != HTTP_NOT_MODIFIED)
		resp_header(c, "Location", "/_/get");
	if (code == HTTP_UNAUTHORIZED)
		resp_header(c, "WWW-Authenticate", "Basic realm=\"" API_REALM "\"");
	if (code == HTTP_PROXY_AUTH_REQUIRED)
		resp_header(c, "Proxy-Authenticate", "Basic realm=\"" API_REALM "\"");
	resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
}

static void ep_bytes(struct http_conn *c, const struct api_req *q)
{
	int stream = q->arg;
	uint64_t len, seed, chunk = 10240;
	if (parse_u64(q->rest, q->rlen, API_MAX_BYTES, &len) < 0) {
		char lim[32];
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
	} else {
		random_bytes(c, &seed, sizeof(seed));
	}
	const char *cs = args_get(q->a, "chunk_size");
	if (cs && (parse_u64(cs, strlen(cs), API_MAX_CHUNK, &chunk) < 0 || !chunk)) {
		api_errorf(c, LK_E_A_BAD_PARAM, "chunk_size must be 1-%u", API_MAX_CHUNK);
		return;
	}
	if (stream)
		resp_start_stream(c, HTTP_OK);
	else
		resp_start(c, HTTP_OK);
	api_headers(c);
	resp_end_headers(c, "application/octet-stream", len, stream);
	struct gen_bytes *g = resp_body_gen(c, &bytes_ops, sizeof(*g), 0, 0);
	g->seed = seed;
	g->left = len;
	g->chunked = stream && http_conn_can_chunk(c);
	g->chunk = (size_t)chunk;
}

static void ep_drip(struct http_conn *c, const struct api_req *q)
{
	uint64_t dur = 2000, delay = 0, num = 10, code = HTTP_OK;
	const char *v;
	const struct kvlist *a = q->a;
	if ((v = args_get(a, "duration")) && parse_secs(v, API_MAX_DELAY_MS, &dur) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "duration must be 0-%u seconds", API_MAX_DELAY_MS / 1000);
		return;
	}
	if ((v = args_get(a, "delay")) && parse_secs(v, API_MAX_DELAY_MS, &delay) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "delay must be 0-%u seconds", API_MAX_DELAY_MS / 1000);
		return;
	}
	if (dur + delay > API_MAX_DELAY_MS) {
		api_errorf(c, LK_E_A_BAD_PARAM, "duration + delay must be at most %u seconds",
		           API_MAX_DELAY_MS / 1000);
		return;
	}
	if ((v = args_get(a, "numbytes")) && (parse_u64(v, strlen(v), API_MAX_DRIP, &num) < 0 || !num)) {
		api_errorf(c, LK_E_A_BAD_PARAM, "numbytes must be 1-%u (as httpbin: 0 is a 400)",
		           API_MAX_DRIP);
		return;
	}
	if ((v = args_get(a, "code")) &&
	    (parse_u64(v, strlen(v), HTTP_STATUS_MAX, &code) < 0 || code < HTTP_OK ||
	     code == HTTP_NO_CONTENT || code == HTTP_NOT_MODIFIED)) {
		/* No Content and Not Modified have no body: dripping one would corrupt the
		 * connection. */
		api_errorf(c, LK_E_A_BAD_PARAM, "code must be %d-%d, and not %d or %d (they have no body)",
		           HTTP_OK, HTTP_STATUS_MAX, HTTP_NO_CONTENT, HTTP_NOT_MODIFIED);
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

/* /_/range/N: N bytes "abc...", with ranges, ETag and Accept-Ranges (httpbin's). */
static void ep_range(struct http_conn *c, const struct api_req *q)
{
	const struct http_reqinfo *ri = q->ri;
	uint64_t n, chunk = 10240, dur = 0, first = 0, last;
	char etag[32], cr[96];
	const char *v;
	if (parse_u64(q->rest, q->rlen, API_MAX_RANGE, &n) < 0 || !n) {
		/* 404, as httpbin: this resource does not exist. */
		api_errorf(c, LK_E_A_NOT_FOUND, "number of bytes must be 1-%d", API_MAX_RANGE);
		return;
	}
	if ((v = args_get(q->a, "chunk_size")) &&
	    (parse_u64(v, strlen(v), API_MAX_CHUNK, &chunk) < 0 || !chunk)) {
		api_errorf(c, LK_E_A_BAD_PARAM, "chunk_size must be 1-%u", API_MAX_CHUNK);
		return;
	}
	if ((v = args_get(q->a, "duration")) && parse_secs(v, API_MAX_DELAY_MS, &dur) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "duration must be 0-%u seconds", API_MAX_DELAY_MS / 1000);
		return;
	}
	last = n - 1;
	snprintf(etag, sizeof(etag), "range%llu", (unsigned long long)n);
	const struct http_header *range = hdr(ri, "range");
	enum http_range_result rr =
	        range ? http_parse_range(range->value.p, range->value.len, n, &first, &last)
	              : HTTP_RANGE_NONE;
	if (rr == HTTP_RANGE_UNSATISFIABLE) {
		snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)n);
		resp_start(c, HTTP_RANGE_NOT_SATISFIABLE);
		api_headers(c);
		resp_header(c, "ETag", etag);
		resp_header(c, "Accept-Ranges", "bytes");
		resp_header(c, "Content-Range", cr);
		resp_send_mem(c, "application/octet-stream", "", 0);
		return;
	}
	if (rr == HTTP_RANGE_NONE) {
		first = 0;
		last = n - 1;
	}
	uint64_t len = last - first + 1;
	snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
	         (unsigned long long)n);
	resp_start(c, len == n ? HTTP_OK : HTTP_PARTIAL_CONTENT);
	api_headers(c);
	resp_header(c, "ETag", etag);
	resp_header(c, "Accept-Ranges", "bytes");
	resp_header(c, "Content-Range", cr);
	if (dur) {
		resp_end_headers(c, "application/octet-stream", len, 0);
		struct gen_range tmpl = {
		        .pos = first, .last = last, .dur = dur, .n = n, .chunk = (size_t)chunk};
		tmpl.start_us = loop_clock_us();
		struct gen_range *g = resp_body_gen(c, &range_ops, sizeof(*g), range_due(&tmpl), 1);
		*g = tmpl;
		return;
	}
	char *body = malloc((size_t)len);
	if (!body) {
		resp_error_close(c, LK_E_ENOMEM, NULL);
		return;
	}
	range_bytes(body, first, (size_t)len);
	resp_send_mem(c, "application/octet-stream", body, (size_t)len);
	free(body);
}

/* /_/stream/N: N lines of JSON (the /_/get echo with an "id"), a chunk each. */
static void ep_stream(struct http_conn *c, const struct api_req *q)
{
	uint64_t n;
	if (parse_u64(q->rest, q->rlen, UINT32_MAX, &n) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "use /_/stream/N (at most %d lines are sent)",
		           API_MAX_STREAM);
		return;
	}
	if (n > API_MAX_STREAM)
		n = API_MAX_STREAM;
	struct buf line, body;
	buf_init(&line, API_ECHO_MAX);
	if (echo_build(&line, c, q->ri, q->a, 0, 0) < 0) {
		buf_free(&line);
		return;
	}
	/* {..., "url": ...} -> {..., "url": ..., "id": i} */
	buf_init(&body, API_MAX_STREAM * (buf_used(&line) + 64));
	int chunked = http_conn_can_chunk(c);
	for (uint64_t i = 0; i < n; i++) {
		char id[40];
		int k = snprintf(id, sizeof(id), ",\"id\":%llu}\n", (unsigned long long)i);
		if (chunked)
			buf_printf(&body, "%zx\r\n", buf_used(&line) - 1 + (size_t)k);
		buf_append(&body, buf_start(&line), buf_used(&line) - 1);
		buf_append(&body, id, (size_t)k);
		if (chunked)
			buf_append(&body, "\r\n", 2);
	}
	if (chunked)
		buf_puts(&body, "0\r\n\r\n");
	buf_free(&line);
	resp_start_stream(c, HTTP_OK);
	api_headers(c);
	resp_end_headers(c, "application/json", 0, 1);
	resp_body_mem(c, buf_start(&body) ? buf_start(&body) : "", buf_used(&body));
	buf_free(&body);
}

/* /_/links/N -> /_/links/N/0; /_/links/N/OFFSET: a page of N links, OFFSET not one. */
static void ep_links(struct http_conn *c, const struct api_req *q)
{
	char seg[2][256];
	uint64_t n, off = 0;
	int k = split_rest(q->rest, q->rlen, seg, 2);
	if (k < 1 || parse_u64(seg[0], strlen(seg[0]), UINT32_MAX, &n) < 0 ||
	    (k == 2 && parse_u64(seg[1], strlen(seg[1]), UINT32_MAX, &off) < 0)) {
		api_errorf(c, LK_E_A_BAD_PARAM, "use /_/links/N or /_/links/N/OFFSET (N 1-%d)",
		           API_MAX_LINKS);
		return;
	}
	n = n < 1 ? 1 : n > API_MAX_LINKS ? API_MAX_LINKS : n;
	if (k == 1) {
		char loc[64];
		snprintf(loc, sizeof(loc), "/_/links/%llu/0", (unsigned long long)n);
		redirect(c, HTTP_FOUND, loc);
		return;
	}
	struct buf b;
	buf_init(&b, 64 * 1024);
	buf_puts(&b, "<!DOCTYPE html>\n<html><head><title>Links</title></head><body>");
	for (uint64_t i = 0; i < n; i++) {
		if (i == off)
			buf_printf(&b, "%llu ", (unsigned long long)i);
		else
			buf_printf(&b, "<a href=\"/_/links/%llu/%llu\">%llu</a> ", (unsigned long long)n,
			           (unsigned long long)i, (unsigned long long)i);
	}
	buf_puts(&b, "</body></html>\n");
	resp_start(c, HTTP_OK);
	api_headers(c);
	resp_send_mem(c, "text/html; charset=utf-8", buf_start(&b), buf_used(&b));
	buf_free(&b);
}

/* /_/redirect/N, /_/relative-redirect/N, /_/absolute-redirect/N: 302s down to /_/get.
 * arg: 1 for absolute URLs (or ?absolute=true on /_/redirect). */
static void ep_redirect(struct http_conn *c, const struct api_req *q)
{
	static const char *const names[] = {NULL, "relative-redirect", "absolute-redirect"};
	uint64_t k;
	char loc[768], base[512] = "";
	if (parse_u64(q->rest, q->rlen, API_MAX_REDIRECTS, &k) < 0 || !k) {
		api_errorf(c, LK_E_A_BAD_PARAM, "redirect count is 1-%u", API_MAX_REDIRECTS);
		return;
	}
	/* /_/redirect/N goes on as relative-redirect, or with ?absolute=true as
	 * absolute-redirect: httpbin's chain. */
	const char *absq = args_get(q->a, "absolute");
	int flavour = q->arg ? q->arg : absq && !strcasecmp(absq, "true") ? 2 : 1;
	if (flavour == 2)
		origin_url(c, q->ri, base, sizeof(base));
	if (k == 1)
		snprintf(loc, sizeof(loc), "%s/_/get", base);
	else
		snprintf(loc, sizeof(loc), "%s/_/%s/%llu", base, names[flavour], (unsigned long long)(k - 1));
	redirect(c, HTTP_FOUND, loc);
}

static void ep_redirect_to(struct http_conn *c, const struct api_req *q)
{
	/* As httpbin: the parameters' names in any case, a status outside 3xx ignored. */
	const char *url = args_get_ci(q->a, "url"), *sc = args_get_ci(q->a, "status_code");
	uint64_t code = HTTP_FOUND;
	if (!url || !redirect_ok(url)) {
		api_error(c, LK_E_A_BAD_PARAM,
		          "url must be a path on this server or an http(s) URL on a loopback host");
		return;
	}
	if (sc && parse_u64(sc, strlen(sc), UINT32_MAX, &code) < 0) {
		api_errorf(c, LK_E_A_BAD_PARAM, "status_code must be a number (%d-%d redirects)",
		           HTTP_MULTIPLE_CHOICES, HTTP_BAD_REQUEST - 1);
		return;
	}
	if (code < HTTP_MULTIPLE_CHOICES || code >= HTTP_BAD_REQUEST)
		code = HTTP_FOUND;
	redirect(c, (int)code, url);
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
	           "reach every local app, whatever its port, or change how the browser treats this origin; "
	           "open the URL yourself (curl, or the address bar)",
	           what, sfs ? (int)sfs->value.len : 1, sfs ? sfs->value.p : "?");
	return 0;
}

/* A header /_/response-headers may set: http_header_refused's rules, and not the
 * headers that make this answer's safety (CSP), CORS (the server's decision: --cors)
 * or a redirect (Location, and Refresh: a redirect in disguise). Answers 400 and
 * returns 0 when it may not. */
static int settable_header(struct http_conn *c, const struct kv *h)
{
	const char *name = h->k;
	const char *why = http_header_refused_n(name, h->klen, h->v, h->vlen);
	if (!why && (!strncasecmp(name, "access-control-", 15) || !strcasecmp(name, "refresh") ||
	             !strcasecmp(name, "location") || !strcasecmp(name, "content-security-policy")))
		why = "CORS, CSP, Refresh and Location headers are not settable here";
	if (why)
		api_errorf(c, LK_E_A_BAD_PARAM, "%s: %s", name, why);
	return !why;
}

/* The answer's headers, echoed as JSON, Content-Length and Content-Type included (as
 * httpbin: the length counts the JSON that states it). */
static void response_headers_json(struct buf *b, const struct kvlist *a, const char *type, size_t len)
{
	struct json j;
	char cl[24];
	snprintf(cl, sizeof(cl), "%zu", len);
	b->len = b->off = 0;
	json_init(&j, b, 1);
	json_obj_begin(&j);
	json_kstr(&j, "Content-Length", cl);
	json_kstr(&j, "Content-Type", type);
	for (size_t i = 0; i < a->n; i++) {
		if (!strcasecmp(a->kv[i].k, "content-type"))
			continue;
		size_t count = 0, first = i;
		for (size_t k = 0; k < a->n; k++)
			if (kv_key_eq(&a->kv[k], &a->kv[i]) && !count++)
				first = k;
		if (first != i)
			continue;
		json_key(&j, a->kv[i].k);
		if (count > 1)
			json_arr_begin(&j);
		for (size_t k = i; k < a->n; k++)
			if (kv_key_eq(&a->kv[k], &a->kv[i]))
				json_str(&j, a->kv[k].v);
		if (count > 1)
			json_arr_end(&j);
	}
	json_obj_end(&j);
	buf_append(b, "\n", 1);
}

static void ep_response_headers(struct http_conn *c, const struct api_req *q)
{
	const char *type = "application/json";
	const struct kvlist *a = q->a;
	size_t cookie_bytes = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (!settable_header(c, &a->kv[i]))
			return;
		if (http_header_cross_site_refused(a->kv[i].k) && !cross_site_ok(c, q, a->kv[i].k))
			return;
		if (!strcasecmp(a->kv[i].k, "set-cookie"))
			cookie_bytes += a->kv[i].vlen;
		if (!strcasecmp(a->kv[i].k, "content-type"))
			type = a->kv[i].v; /* the JSON escapes <, > and &, so even text/html stays inert */
	}
	if (cookie_bytes > API_MAX_COOKIE_BYTES) {
		api_errorf(c, LK_E_A_BAD_PARAM, "Set-Cookie values add up to %zu bytes; at most %d",
		           cookie_bytes, API_MAX_COOKIE_BYTES);
		return;
	}
	struct buf b;
	buf_init(&b, 64 * 1024);
	/* The length is part of what it measures: settle it (a digit more can change it once). */
	size_t len = 0;
	for (int round = 0; round < 4; round++) {
		response_headers_json(&b, a, type, len);
		if (buf_used(&b) == len)
			break;
		len = buf_used(&b);
	}
	resp_start(c, HTTP_OK);
	api_headers(c);
	for (size_t i = 0; i < a->n; i++)
		if (strcasecmp(a->kv[i].k, "content-type"))
			resp_header(c, a->kv[i].k, a->kv[i].v);
	resp_send_mem(c, type, buf_start(&b) ? buf_start(&b) : "", buf_used(&b));
	buf_free(&b);
}

/* {"authenticated": ok, "user"|"token": who} */
static void auth_answer(struct http_conn *c, int status, int ok, const char *key, const char *who,
                        size_t wlen, const char *challenge)
{
	struct buf b;
	struct json j;
	buf_init(&b, 16384);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_kbool(&j, "authenticated", ok);
	if (ok) {
		json_key(&j, key);
		json_str_n(&j, who, wlen);
	}
	json_obj_end(&j);
	buf_append(&b, "\n", 1);
	resp_start(c, status);
	api_headers(c);
	if (challenge)
		resp_header(c, "WWW-Authenticate", challenge);
	resp_send_mem(c, "application/json", buf_start(&b), buf_used(&b));
	buf_free(&b);
}

/* Compares without an early exit, so the time taken does not tell how much matched. */
static int same_secret(const char *a, size_t an, const char *b, size_t bn)
{
	unsigned diff = (unsigned)(an != bn);
	for (size_t i = 0; i < an; i++)
		diff |= (unsigned)(unsigned char)a[i] ^ (unsigned)(unsigned char)b[bn ? i % bn : 0];
	return diff == 0;
}

/* /_/basic-auth/USER/PASS (arg 0: 401 when wrong) and /_/hidden-basic-auth (arg 1: 404). */
static void ep_basic_auth(struct http_conn *c, const struct api_req *q)
{
	const struct http_header *au = hdr(q->ri, "authorization");
	char seg[2][256];
	if (split_rest(q->rest, q->rlen, seg, 2) != 2) {
		api_error(c, LK_E_A_NO_ENDPOINT, NULL);
		return;
	}
	size_t ul = strlen(seg[0]), pl = strlen(seg[1]);
	int ok = 0;
	if (au && au->value.len > 6 && !strncasecmp(au->value.p, "Basic ", 6)) {
		char dec[1100];
		ssize_t dl = b64_decode(au->value.p + 6, au->value.len - 6, dec, sizeof(dec) - 1);
		char *colon = dl >= 0 ? memchr(dec, ':', (size_t)dl) : NULL;
		if (colon)
			ok = same_secret(dec, (size_t)(colon - dec), seg[0], ul) &
			     same_secret(colon + 1, (size_t)(dl - (colon - dec) - 1), seg[1], pl);
	}
	if (ok)
		auth_answer(c, HTTP_OK, 1, "user", seg[0], ul, NULL);
	else if (q->arg)
		api_error(c, LK_E_A_NOT_FOUND,
		          "no such resource (or wrong credentials: this endpoint never says which)");
	else
		auth_answer(c, HTTP_UNAUTHORIZED, 0, NULL, NULL, 0, "Basic realm=\"" API_REALM "\"");
}

static void ep_bearer(struct http_conn *c, const struct api_req *q)
{
	const struct http_header *au = hdr(q->ri, "authorization");
	if (au && au->value.len > 7 && !strncasecmp(au->value.p, "Bearer ", 7))
		auth_answer(c, HTTP_OK, 1, "token", au->value.p + 7, au->value.len - 7, NULL);
	else
		auth_answer(c, HTTP_UNAUTHORIZED, 0, NULL, NULL, 0, "Bearer");
}

/* The 401 of Digest authentication: a fresh nonce and opaque (nothing is kept: a nonce
 * is checked only through the response it is part of, as httpbin does). */
static void digest_challenge(struct http_conn *c, const char *qop, enum http_digest_alg alg, int sess,
                             int stale)
{
	unsigned char r[32];
	char nonce[33], opaque[33], ch[512];
	random_bytes(c, r, sizeof(r));
	for (int i = 0; i < 16; i++) {
		snprintf(nonce + 2 * i, 3, "%02x", r[i]);
		snprintf(opaque + 2 * i, 3, "%02x", r[16 + i]);
	}
	snprintf(ch, sizeof(ch),
	         "Digest realm=\"" API_REALM "\", qop=\"%s\", nonce=\"%s\", opaque=\"%s\", algorithm=%s%s, "
	         "stale=%s",
	         qop ? qop : "auth, auth-int", nonce, opaque, http_digest_alg_name(alg), sess ? "-sess" : "",
	         stale ? "TRUE" : "FALSE");
	auth_answer(c, HTTP_UNAUTHORIZED, 0, NULL, NULL, 0, ch);
}

/* /_/digest-auth/QOP/USER/PASS[/ALGORITHM[/STALE_AFTER]] (RFC 7616; httpbin's paths).
 * QOP auth or auth-int (anything else offers both); ALGORITHM MD5 (default), SHA-256
 * or SHA-512, each also as -sess; STALE_AFTER: after that many uses (the client's nc)
 * a nonce is stale, and the client is asked again with stale=TRUE. */
static void ep_digest_auth(struct http_conn *c, const struct api_req *q)
{
	const struct http_reqinfo *ri = q->ri;
	char seg[5][256], expect[HTTP_DIGEST_HEX_MAX], why[256];
	if (nettle_need(why, sizeof why) < 0) {
		api_error(c, LK_E_ENOLIB, why);
		return;
	}
	enum http_digest_alg alg = HTTP_DIGEST_MD5, calg;
	int sess = 0, csess = 0;
	uint64_t stale_after = UINT64_MAX;
	int k = split_rest(q->rest, q->rlen, seg, 5);
	if (k < 3) {
		api_error(c, LK_E_A_BAD_PARAM, "use /_/digest-auth/QOP/USER/PASS[/ALGORITHM[/STALE_AFTER]]");
		return;
	}
	const char *qop = !strcmp(seg[0], "auth") || !strcmp(seg[0], "auth-int") ? seg[0] : NULL;
	const char *user = seg[1], *pass = seg[2];
	if (k >= 4 && http_digest_alg_parse(seg[3], strlen(seg[3]), &alg, &sess) < 0) {
		api_error(c, LK_E_A_BAD_PARAM, "ALGORITHM is MD5, SHA-256 or SHA-512 (each also as -sess)");
		return;
	}
	if (k == 5 && strcmp(seg[4], "never") &&
	    parse_u64(seg[4], strlen(seg[4]), UINT32_MAX, &stale_after) < 0) {
		api_error(c, LK_E_A_BAD_PARAM, "STALE_AFTER is a number of uses, or never");
		return;
	}
	const struct http_header *au = hdr(ri, "authorization");
	struct http_digest_creds cr;
	if (!au || http_digest_parse(au->value, &cr) < 0) {
		digest_challenge(c, qop, alg, sess, 0);
		return;
	}
	/* The challenge's terms: realm, algorithm (MD5 when unsaid) and qop. */
	int ok = http_slice_ieq(cr.realm, API_REALM);
	if (cr.algorithm.p)
		ok &= http_digest_alg_parse(cr.algorithm.p, cr.algorithm.len, &calg, &csess) == 0 &&
		      calg == alg && csess == sess;
	else
		ok &= alg == HTTP_DIGEST_MD5 && !sess;
	if (qop)
		ok &= cr.qop.p && http_slice_ieq(cr.qop, qop);
	else
		ok &= !cr.qop.p || http_slice_ieq(cr.qop, "auth") || http_slice_ieq(cr.qop, "auth-int");
	/* The response covers the uri the client names: it must be this request's. */
	ok &= cr.uri.len == ri->req->target.len && !memcmp(cr.uri.p, ri->req->target.p, cr.uri.len);
	if (cr.userhash) {
		char uh[HTTP_DIGEST_HEX_MAX], line[600];
		snprintf(line, sizeof(line), "%s:" API_REALM, user);
		http_digest_hash(alg, line, strlen(line), uh);
		ok &= cr.username.len == strlen(uh) && !strncasecmp(cr.username.p, uh, cr.username.len);
	} else {
		char un[256];
		long ul = http_param_unquote(cr.username, un, sizeof(un));
		ok &= ul >= 0 && same_secret(un, (size_t)ul, user, strlen(user));
	}
	ok &= http_digest_response(&cr, alg, sess, user, pass, ri->req->method, ri->body, ri->body_len,
	                           expect) == 0;
	ok &= same_secret(cr.response.p, cr.response.len, expect, strlen(expect));
	if (!ok) {
		digest_challenge(c, qop, alg, sess, 0);
		return;
	}
	/* nc: how many times the client used this nonce, in hex. */
	uint64_t nc = 0;
	for (size_t i = 0; cr.nc.p && i < cr.nc.len && i < 16; i++) {
		int ch = tolower((unsigned char)cr.nc.p[i]);
		nc = nc * 16 + (uint64_t)(isdigit(ch) ? ch - '0' : isxdigit(ch) ? ch - 'a' + 10 : 0);
	}
	if (stale_after != UINT64_MAX && nc > stale_after) {
		digest_challenge(c, qop, alg, sess, 1);
		return;
	}
	auth_answer(c, HTTP_OK, 1, "user", user, strlen(user), NULL);
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

/* /_/cookies/set?K=V, /_/cookies/set/K/V (arg 1) and /_/cookies/delete?K (arg 0). */
static void ep_cookies_change(struct http_conn *c, const struct api_req *q)
{
	int set = q->arg;
	const struct kvlist *a = q->a;
	struct kvlist *one = NULL;
	size_t bytes = 0;
	if (!q->exact) {
		char seg[2][256];
		if (!set || split_rest(q->rest, q->rlen, seg, 2) != 2 || !(one = kv_new(1, 1024))) {
			api_error(c, LK_E_A_NO_ENDPOINT, NULL);
			return;
		}
		kv_add(one, seg[0], strlen(seg[0]), seg[1], strlen(seg[1]), 0);
		a = one;
	}
	if (!cross_site_ok(c, q, "Set-Cookie")) {
		free(one);
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (http_header_refused(a->kv[i].k, a->kv[i].v) || strpbrk(a->kv[i].v, ";, \t\"\\") ||
		    a->kv[i].vlen != strlen(a->kv[i].v)) {
			api_error(c, LK_E_A_BAD_PARAM,
			          "cookie names must be tokens and values free of ; , space and quotes");
			free(one);
			return;
		}
		bytes += a->kv[i].klen + a->kv[i].vlen + 1;
	}
	if (bytes > API_MAX_COOKIE_BYTES) {
		api_errorf(c, LK_E_A_BAD_PARAM, "the cookies add up to %zu bytes; at most %d", bytes,
		           API_MAX_COOKIE_BYTES);
		free(one);
		return;
	}
	resp_start(c, HTTP_FOUND);
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
	free(one);
}

/* {"KEY": value} answers: headers, ip, user-agent, uuid, health. */
enum fact { F_HEADERS, F_IP, F_USER_AGENT, F_UUID, F_HEALTH };

static void ep_fact(struct http_conn *c, const struct api_req *q)
{
	static const char *const keys[] = {"headers", "origin", "user-agent", "uuid", "status"};
	struct buf b;
	struct json j;
	buf_init(&b, 64 * 1024);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, keys[q->arg]);
	switch ((enum fact)q->arg) {
	case F_HEADERS: json_headers(&j, q->ri->req); break;
	case F_IP: json_str(&j, http_conn_peer(c)); break;
	case F_USER_AGENT: {
		const struct http_header *ua = hdr(q->ri, "user-agent");
		if (ua)
			json_str_n(&j, ua->value.p, ua->value.len);
		else
			json_null(&j);
		break;
	}
	case F_UUID: {
		char u[37];
		uuid4(c, u);
		json_str(&j, u);
		break;
	}
	case F_HEALTH:
		json_str(&j, "ok");
		json_kstr(&j, "version", LOOPKIT_VERSION);
		break;
	}
	json_obj_end(&j);
	send_json(c, HTTP_OK, &b);
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
	echo(c, q->ri, q->a, E_FORM, HTTP_OK, NULL);
	resp_hold(c, ms);
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
	if (parse_u64(q->rest, q->rlen, (uint64_t)HTTP_MAX_CACHE_SECS, &secs) < 0) {
		api_error(c, LK_E_A_BAD_PARAM, "use /_/cache/SECONDS");
		return;
	}
	char cc[64];
	snprintf(cc, sizeof(cc), "public, max-age=%llu", (unsigned long long)secs);
	const struct hdr_pair extra[] = {{"Cache-Control", cc}, {NULL, NULL}};
	echo(c, ri, q->a, 0, HTTP_OK, extra);
}

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

static void ep_etag(struct http_conn *c, const struct api_req *q)
{
	const struct http_reqinfo *ri = q->ri;
	char tag[512], quoted[600];
	ssize_t tl = http_percent_decode(q->rest, q->rlen, tag, sizeof(tag) - 1, 0);
	int bad = tl <= 0;
	for (ssize_t i = 0; i < tl; i++) { /* etagc (RFC 9110 8.8.3): no '"', space, NUL or control */
		unsigned char ch = (unsigned char)tag[i];
		bad |= ch < 0x21 || ch == '"' || ch == 0x7f;
	}
	if (tl > 0)
		tag[tl] = 0;
	if (bad || http_header_refused("ETag", tag)) {
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

/* /_/image: the format the Accept header asks for (httpbin's order); /_/image/FORMAT. */
static void ep_image(struct http_conn *c, const struct api_req *q)
{
	const struct image_format *formats = image_formats;
	const size_t nf = sizeof(image_formats) / sizeof(image_formats[0]);
	if (!q->exact) {
		for (size_t i = 0; i < nf; i++) {
			if (strlen(formats[i].name) == q->rlen &&
			    !memcmp(q->rest, formats[i].name, q->rlen)) {
				send_blob(c, HTTP_OK, formats[i].id);
				return;
			}
		}
		api_error(c, LK_E_A_NOT_FOUND, "images are /_/image/png, jpeg, webp and svg");
		return;
	}
	const struct http_header *acc = hdr(q->ri, "accept");
	if (!acc) {
		send_blob(c, HTTP_OK, API_BLOB_PNG);
		return;
	}
	for (size_t i = 0; i < nf; i++) {
		size_t tl = strlen(formats[i].type);
		for (size_t k = 0; k + tl <= acc->value.len; k++) {
			if (!strncasecmp(acc->value.p + k, formats[i].type, tl)) {
				send_blob(c, HTTP_OK, formats[i].id);
				return;
			}
		}
	}
	send_not_acceptable(c);
}

/* /_/gzip, /_/deflate, /_/brotli: {"gzipped"|..., "headers", "method", "origin"},
 * compressed with that coding whatever Accept-Encoding says (as httpbin). */
static void ep_encoded(struct http_conn *c, const struct api_req *q)
{
	static const char *const flags[] = {[HTTP_CODING_GZIP] = "gzipped",
	                                    [HTTP_CODING_DEFLATE] = "deflated",
	                                    [HTTP_CODING_BR] = "brotli"};
	enum http_coding k = (enum http_coding)q->arg;
	struct buf b, z;
	struct json j;
	buf_init(&b, 64 * 1024);
	json_init(&j, &b, 1);
	json_obj_begin(&j);
	json_key(&j, flags[k]); /* first: the keys are in sorted order, as httpbin's */
	json_bool(&j, 1);
	json_key(&j, "headers");
	json_headers(&j, q->ri->req);
	json_key(&j, "method");
	json_str_n(&j, q->ri->req->method.p, q->ri->req->method.len);
	json_kstr(&j, "origin", http_conn_peer(c));
	json_obj_end(&j);
	buf_append(&b, "\n", 1);
	buf_init(&z, 128 * 1024);
	if (j.err || http_encode(k, buf_start(&b), buf_used(&b), &z) < 0) {
		buf_free(&b);
		buf_free(&z);
		const char *missing = j.err ? NULL : http_encode_missing(k);
		api_error(c, missing ? LK_E_ENOLIB : LK_E_H_TOO_LARGE_RESP, missing);
		return;
	}
	resp_start(c, HTTP_OK);
	api_headers(c);
	resp_header(c, "Content-Encoding", http_coding_name(k));
	resp_send_mem(c, "application/json", buf_start(&z), buf_used(&z));
	buf_free(&b);
	buf_free(&z);
}

/* /_/sse?count=&duration=&delay=: server-sent events (go-httpbin's). */
static void ep_sse(struct http_conn *c, const struct api_req *q)
{
	uint64_t count = API_SSE_COUNT, dur = API_SSE_DURATION_MS, delay = 0;
	const char *v;
	if ((v = args_get(q->a, "count")) && (parse_u64(v, strlen(v), API_MAX_SSE, &count) < 0 || !count)) {
		api_errorf(c, LK_E_A_BAD_PARAM, "count must be 1-%d", API_MAX_SSE);
		return;
	}
	if (((v = args_get(q->a, "duration")) && parse_dur_ms(v, API_MAX_DELAY_MS, &dur) < 0) ||
	    ((v = args_get(q->a, "delay")) && parse_dur_ms(v, API_MAX_DELAY_MS, &delay) < 0) ||
	    dur + delay > API_MAX_DELAY_MS) {
		api_errorf(c, LK_E_A_BAD_PARAM,
		           "duration and delay are seconds (1.5) or durations (500ms), "
		           "together at most %d s",
		           API_MAX_DELAY_MS / 1000);
		return;
	}
	/* The first event after the delay, then count - 1 pauses over the duration. */
	uint64_t pause = count > 1 ? (dur + count - 2) / (count - 1) : dur;
	resp_start_stream(c, HTTP_OK);
	api_headers(c);
	resp_header(c, "Cache-Control", "no-cache");
	resp_end_headers(c, "text/event-stream", 0, 1);
	struct gen_sse *g = resp_body_gen(c, &sse_ops, sizeof(*g), delay, pause ? pause : 1);
	g->count = (unsigned)count;
	g->chunked = http_conn_can_chunk(c);
}

/* /_/trailers?K=V: the /_/anything echo, chunked, with the query as trailer fields
 * (go-httpbin's; the fields its list forbids in trailers are refused). */
static void ep_trailers(struct http_conn *c, const struct api_req *q)
{
	static const char *const forbidden[] = {"authorization",
	                                        "cache-control",
	                                        "content-encoding",
	                                        "content-length",
	                                        "content-range",
	                                        "content-type",
	                                        "host",
	                                        "max-forwards",
	                                        "set-cookie",
	                                        "te",
	                                        "trailer",
	                                        "transfer-encoding"};
	const struct kvlist *a = q->a;
	char names[1024] = "";
	for (size_t i = 0; i < a->n; i++) {
		const char *why = http_header_refused_n(a->kv[i].k, a->kv[i].klen, a->kv[i].v, a->kv[i].vlen);
		for (size_t k = 0; !why && k < sizeof(forbidden) / sizeof(forbidden[0]); k++)
			if (!strcasecmp(a->kv[i].k, forbidden[k]))
				why = "not allowed in trailers";
		if (why) {
			api_errorf(c, LK_E_A_BAD_PARAM, "trailer %s: %s", a->kv[i].k, why);
			return;
		}
		size_t used = strlen(names);
		snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", a->kv[i].k);
	}
	struct buf b, body;
	buf_init(&b, API_ECHO_MAX);
	if (echo_build(&b, c, q->ri, a, E_METHOD | E_FORM | E_JSON, 1) < 0) {
		buf_free(&b);
		return;
	}
	buf_append(&b, "\n", 1);
	int chunked = http_conn_can_chunk(c);
	buf_init(&body, buf_used(&b) + 32 + 4 * HTTP_MAX_URI);
	http_chunk_put(&body, chunked, buf_start(&b), buf_used(&b));
	if (chunked) {
		buf_puts(&body, "0\r\n");
		for (size_t i = 0; i < a->n; i++)
			buf_printf(&body, "%s: %s\r\n", a->kv[i].k, a->kv[i].v);
		buf_puts(&body, "\r\n");
	}
	buf_free(&b);
	resp_start_stream(c, HTTP_OK);
	api_headers(c);
	if (a->n && chunked)
		resp_header(c, "Trailer", names);
	resp_end_headers(c, "application/json", 0, 1);
	resp_body_mem(c, buf_start(&body), buf_used(&body));
	buf_free(&body);
}

/* /_/dump/request: the request as it came, head and body, as text (go-httpbin's). */
static void ep_dump_request(struct http_conn *c, const struct api_req *q)
{
	const struct http_request *req = q->ri->req;
	struct buf b;
	buf_init(&b, HTTP_MAX_HEAD + HTTP_API_MAX_BODY + 64);
	buf_printf(&b, "%.*s %.*s HTTP/1.%d\r\n", (int)req->method.len, req->method.p, (int)req->target.len,
	           req->target.p, req->minor);
	for (size_t i = 0; i < req->nheaders; i++)
		buf_printf(&b, "%.*s: %.*s\r\n", (int)req->headers[i].name.len, req->headers[i].name.p,
		           (int)req->headers[i].value.len, req->headers[i].value.p);
	buf_puts(&b, "\r\n");
	buf_append(&b, q->ri->body ? q->ri->body : "", q->ri->body_len);
	resp_start(c, HTTP_OK);
	api_headers(c);
	resp_send_mem(c, "text/plain; charset=utf-8", buf_start(&b), buf_used(&b));
	buf_free(&b);
}

/* ---- the table ---- */

enum api_shape {
	EXACT = 1,  /* /_/NAME */
	PREFIX = 2, /* /_/NAME/REST */
	BOTH = 3,
};

/* Methods a row answers, as a mask of enum http_method; OPTIONS always. */
#define MB(m) (1u << (m))
#define GETS  (MB(M_GET) | MB(M_HEAD))
#define ANY   (GETS | MB(M_POST) | MB(M_PUT) | MB(M_PATCH) | MB(M_DELETE) | MB(M_TRACE))

static const struct api_route {
	const char *name;
	unsigned shape;
	unsigned methods;
	void (*fn)(struct http_conn *c, const struct api_req *q);
	int arg; /* for shared handlers: echo parts, blob, flavour */
} api_routes[] = {
        {"anything", BOTH, ANY, ep_echo, E_METHOD | E_FORM | E_JSON},
        {"get", EXACT, GETS, ep_echo, 0},
        {"post", EXACT, MB(M_POST), ep_echo, E_FORM | E_JSON},
        {"put", EXACT, MB(M_PUT), ep_echo, E_FORM | E_JSON},
        {"patch", EXACT, MB(M_PATCH), ep_echo, E_FORM | E_JSON},
        {"delete", EXACT, MB(M_DELETE), ep_echo, E_FORM | E_JSON},
        {"headers", EXACT, GETS, ep_fact, F_HEADERS},
        {"ip", EXACT, GETS, ep_fact, F_IP},
        {"user-agent", EXACT, GETS, ep_fact, F_USER_AGENT},
        {"uuid", EXACT, GETS, ep_fact, F_UUID},
        {"health", EXACT, GETS, ep_fact, F_HEALTH},
        {"status", PREFIX, ANY, ep_status, 0},
        {"delay", PREFIX, ANY, ep_delay, 0},
        {"bytes", PREFIX, GETS, ep_bytes, 0},
        {"stream-bytes", PREFIX, GETS, ep_bytes, 1},
        {"stream", PREFIX, GETS, ep_stream, 0},
        {"range", PREFIX, GETS, ep_range, 0},
        {"drip", EXACT, GETS, ep_drip, 0},
        {"sse", EXACT, GETS, ep_sse, 0},
        {"links", PREFIX, GETS, ep_links, 0},
        {"redirect", PREFIX, ANY, ep_redirect, 0},
        {"relative-redirect", PREFIX, GETS, ep_redirect, 1},
        {"absolute-redirect", PREFIX, GETS, ep_redirect, 2},
        {"redirect-to", EXACT, ANY, ep_redirect_to, 0},
        {"response-headers", EXACT, GETS | MB(M_POST), ep_response_headers, 0},
        {"basic-auth", PREFIX, GETS, ep_basic_auth, 0},
        {"hidden-basic-auth", PREFIX, GETS, ep_basic_auth, 1},
        {"digest-auth", PREFIX, GETS, ep_digest_auth, 0},
        {"bearer", EXACT, GETS, ep_bearer, 0},
        {"cache", BOTH, GETS, ep_cache, 0},
        {"etag", PREFIX, GETS, ep_etag, 0},
        {"base64", PREFIX, GETS, ep_base64, 0},
        {"cookies", EXACT, GETS, ep_cookies, 0},
        {"cookies/set", BOTH, GETS, ep_cookies_change, 1},
        {"cookies/delete", EXACT, GETS, ep_cookies_change, 0},
        {"json", EXACT, GETS, ep_blob, API_BLOB_JSON},
        {"html", EXACT, GETS, ep_blob, API_BLOB_HTML},
        {"xml", EXACT, GETS, ep_blob, API_BLOB_XML},
        {"robots.txt", EXACT, GETS, ep_blob, API_BLOB_ROBOTS},
        {"deny", EXACT, GETS, ep_blob, API_BLOB_DENY},
        {"encoding/utf8", EXACT, GETS, ep_blob, API_BLOB_UTF8},
        {"forms/post", EXACT, GETS, ep_blob, API_BLOB_FORM},
        {"image", BOTH, GETS, ep_image, 0},
        {"gzip", EXACT, GETS, ep_encoded, HTTP_CODING_GZIP},
        {"deflate", EXACT, GETS, ep_encoded, HTTP_CODING_DEFLATE},
        {"brotli", EXACT, GETS, ep_encoded, HTTP_CODING_BR},
        {"trailers", EXACT, ANY, ep_trailers, 0},
        {"dump/request", EXACT, ANY, ep_dump_request, 0},
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

/* "GET, HEAD, POST, OPTIONS": the Allow of a row. */
static void allow_text(unsigned methods, char *out, size_t len)
{
	static const struct {
		enum http_method m;
		const char *name;
	} names[] = {{M_GET, "GET"},     {M_HEAD, "HEAD"},     {M_POST, "POST"},  {M_PUT, "PUT"},
	             {M_PATCH, "PATCH"}, {M_DELETE, "DELETE"}, {M_TRACE, "TRACE"}};
	size_t o = 0;
	out[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (methods & MB(names[i].m))
			o += (size_t)snprintf(out + o, len - o, "%s, ", names[i].name);
	snprintf(out + o, len - o, "OPTIONS");
}

void api_handle(struct http_conn *c, const struct http_reqinfo *ri)
{
	const char *p = ri->path.p + 2, *rest;
	size_t n = ri->path.len - 2, rlen;
	char allow[96];
	if (n && *p == '/') {
		p++;
		n--;
	}
	struct kvlist *a = kv_new(API_MAX_ARGS, ri->query.len + 2 * API_MAX_ARGS + 2);
	if (!a) {
		resp_error(c, LK_E_ENOMEM, NULL);
		return;
	}
	enum kv_rc qr = kv_parse(a, ri->query.p ? ri->query.p : "", ri->query.len);
	if (qr != KV_OK) {
		if (qr == KV_TOO_MANY)
			api_errorf(c, LK_E_A_BAD_PARAM, "at most %d query parameters", API_MAX_ARGS);
		else
			api_error(c, LK_E_A_BAD_PARAM, "malformed query string");
		free(a);
		return;
	}
	int exact = 0;
	const struct api_route *r = api_find(p, n, &rest, &rlen, &exact);
	if (r)
		allow_text(r->methods, allow, sizeof(allow));
	if (ri->method == M_OPTIONS && (r || http_is_preflight(ri))) {
		/* A preflight is the CORS answer; a plain OPTIONS says what the endpoint takes. */
		if (http_is_preflight(ri)) {
			http_options_allow(c, ri, r ? allow : http_allow(ctx(c)));
		} else {
			resp_start(c, HTTP_OK);
			api_headers(c);
			resp_header(c, "Allow", allow);
			resp_send_mem(c, "text/plain; charset=utf-8", "", 0);
		}
	} else if (!r) {
		api_error(c, LK_E_A_NO_ENDPOINT, NULL);
	} else if (!(r->methods & MB(ri->method))) {
		api_error_h(c, LK_E_A_METHOD, allow, "Allow", allow);
	} else {
		struct api_req q = {ri, a, rest, rlen, exact, r->arg};
		r->fn(c, &q);
	}
	free(a);
}
