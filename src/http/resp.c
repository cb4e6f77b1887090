/* resp.c - writing responses: status line, headers, in-memory bodies, files, generators. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/rand.h"
#include "http/internal.h"
#include "http/resp.h"

static void out_put(struct http_conn *c, const char *s, size_t n)
{
	if (buf_append(&c->out, s, n) < 0)
		c->closing = 1; /* cannot happen below HTTP_OUT_MAX; never send half a head */
}

#define OUT_LIT(c, s) out_put((c), (s), sizeof(s) - 1)

static void out_str(struct http_conn *c, const char *s)
{
	out_put(c, s, strlen(s));
}

static void out_u64(struct http_conn *c, uint64_t v)
{
	char t[24], *p = t + sizeof(t);
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	out_put(c, p, (size_t)(t + sizeof(t) - p));
}

const char *http_ctx_date(struct http_ctx *x)
{
	time_t now = time(NULL);
	if (now != x->date_sec) {
		x->date_sec = now;
		http_date_format(now, x->date);
	}
	return x->date;
}

void resp_start(struct http_conn *c, int status)
{
	const struct http_config *cfg = c->x->cfg;
	c->status = status;
	buf_pool_get(&c->x->pool, &c->out);
	OUT_LIT(c, "HTTP/1.1 ");
	out_u64(c, (unsigned)status);
	OUT_LIT(c, " ");
	out_str(c, lk_http_reason(status));
	OUT_LIT(c, "\r\nServer: loopkit/" LOOPKIT_VERSION "\r\nDate: ");
	out_str(c, http_ctx_date(c->x));
	OUT_LIT(c, "\r\nX-Content-Type-Options: nosniff\r\n");
	if (c->cors_origin) {
		OUT_LIT(c, "Access-Control-Allow-Origin: ");
		out_str(c, c->cors_origin);
		OUT_LIT(c, "\r\nVary: Origin\r\n");
	} else if (cfg->cors) {
		OUT_LIT(c, "Access-Control-Allow-Origin: *\r\n");
	}
	if (c->cors_origin || cfg->cors)
		OUT_LIT(c, "Access-Control-Expose-Headers: Content-Length, Content-Range, ETag, "
		           "Last-Modified, Location, Date\r\n");
	if (c->closing)
		OUT_LIT(c, "Connection: close\r\n");
	else if (c->minor == 0)
		OUT_LIT(c, "Connection: keep-alive\r\n");
}

void resp_start_stream(struct http_conn *c, int status)
{
	if (!http_conn_can_chunk(c))
		c->closing = 1;
	resp_start(c, status);
}

void resp_header(struct http_conn *c, const char *name, const char *value)
{
	out_str(c, name);
	OUT_LIT(c, ": ");
	out_str(c, value);
	OUT_LIT(c, "\r\n");
}

void resp_headerf(struct http_conn *c, const char *name, const char *fmt, ...)
{
	char v[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	resp_header(c, name, v);
}

static int status_has_body(int status)
{
	return !(status < HTTP_OK || status == HTTP_NO_CONTENT || status == HTTP_NOT_MODIFIED);
}

void resp_end_headers(struct http_conn *c, const char *type, uint64_t len, int chunked)
{
	int until_close = chunked && !http_conn_can_chunk(c);
	if (until_close) {
		chunked = 0;
		c->closing = 1; /* resp_start_stream said Connection: close */
	}
	if (status_has_body(c->status)) {
		if (type) {
			OUT_LIT(c, "Content-Type: ");
			out_str(c, type);
			OUT_LIT(c, "\r\n");
		}
		if (chunked) {
			OUT_LIT(c, "Transfer-Encoding: chunked\r\n");
		} else if (!until_close) {
			OUT_LIT(c, "Content-Length: ");
			out_u64(c, len);
			OUT_LIT(c, "\r\n");
		}
	}
	OUT_LIT(c, "\r\n");
}

void resp_send_mem(struct http_conn *c, const char *type, const void *p, size_t len)
{
	resp_end_headers(c, type, len, 0);
	if (!c->head_only && status_has_body(c->status)) {
		out_put(c, p, len);
		c->body_bytes += len;
	}
}

const char *http_allow(const struct http_ctx *x)
{
	return x->site->write ? "GET, HEAD, OPTIONS, PUT, DELETE, MKCOL" : "GET, HEAD, OPTIONS";
}

void resp_error(struct http_conn *c, enum lk_err e, const char *detail)
{
	resp_error_h(c, e, detail, NULL, NULL);
}

void resp_error_h(struct http_conn *c, enum lk_err e, const char *detail, const char *name, const char *value)
{
	const struct lk_error *row = lk_error(e);
	int status = row->http ? row->http : HTTP_INTERNAL_SERVER_ERROR;
	int json = c->x->cfg->json_errors && row->http;
	struct buf b;
	buf_init(&b, 4096);
	if (json) {
		lk_error_json(&b, e, detail, 0); /* one line, as the proxy API's own errors */
	} else {
		char msg[400], text[512];
		lk_text_fill(msg, sizeof(msg), row->msg, detail);
		int n = snprintf(text, sizeof(text), "%d %s: %s\n", status, lk_http_reason(status), msg);
		if (n < 0 || (size_t)n >= sizeof(text))
			n = (int)sizeof(text) - 1;
		buf_append(&b, text, (size_t)n);
	}
	resp_start(c, status);
	if (status == HTTP_METHOD_NOT_ALLOWED)
		resp_header(c, "Allow", http_allow(c->x));
	if (status == HTTP_UNAUTHORIZED)
		resp_header(c, "WWW-Authenticate", "Basic realm=\"loopkit\", charset=\"UTF-8\"");
	if (name)
		resp_header(c, name, value);
	resp_send_mem(c, json ? "application/json" : "text/plain; charset=utf-8",
	              buf_start(&b) ? buf_start(&b) : "", buf_used(&b));
	buf_free(&b);
}

void resp_text(struct http_conn *c, int status, const char *note, const char *name, const char *value)
{
	char body[512];
	int n = snprintf(body, sizeof(body), "%d %s%s%s\n", status, lk_http_reason(status), note ? ": " : "",
	                 note ? note : "");
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	resp_start(c, status);
	if (name)
		resp_header(c, name, value);
	resp_send_mem(c, "text/plain; charset=utf-8", body, (size_t)n);
}

void resp_error_close(struct http_conn *c, enum lk_err e, const char *detail)
{
	c->closing = 1;
	c->linger = 1; /* the rest of a bad request may still be on its way */
	resp_error(c, e, detail);
}

/* ---- body sources ---- */

void resp_body_mem(struct http_conn *c, const void *p, size_t len)
{
	if (c->head_only || !status_has_body(c->status))
		return;
	out_put(c, p, len);
	c->body_bytes += len;
}

void resp_body_file(struct http_conn *c, int fd, uint64_t off, uint64_t len)
{
	if (c->head_only || !len) {
		close(fd);
		return;
	}
	filesend_start(&c->file, fd, off, len, filesend_wants_copy(&c->peer.addr, len), c->x->site->copy_mem);
	c->rb = RB_FILE;
}

void *resp_body_gen(struct http_conn *c, const struct resp_gen_ops *ops, size_t state_size, uint64_t first_ms,
                    uint64_t interval_ms)
{
	memset(&c->gen_state, 0, sizeof(c->gen_state));
	/* HEAD, or a programming error (state too big): the handler's writes into the
	 * state land in scratch and no body is generated. */
	if (c->head_only || state_size > RESP_GEN_STATE_MAX)
		return c->gen_state.bytes;
	c->gen = ops;
	c->gen_interval = interval_ms;
	c->rb = RB_GEN;
	if (interval_ms) {
		c->state = CS_WAIT;
		conn_deadline(c, first_ms);
	}
	return c->gen_state.bytes;
}

void resp_gen_next_in(struct http_conn *c, uint64_t ms)
{
	if (c->gen_interval)
		c->gen_interval = ms ? ms : 1;
}

void resp_body_reset(struct http_conn *c)
{
	filesend_end(&c->file);
	if (c->rb == RB_GEN && c->gen && c->gen->done)
		c->gen->done(c->gen_state.bytes);
	c->gen = NULL;
	c->rb = RB_NONE;
}

void http_chunk_put(struct buf *b, int chunked, const void *p, size_t n)
{
	if (chunked && n)
		buf_printf(b, "%zx\r\n", n);
	buf_append(b, p, n);
	if (chunked && n)
		buf_append(b, "\r\n", 2);
}

void resp_hold(struct http_conn *c, uint64_t ms)
{
	c->state = CS_WAIT;
	conn_deadline(c, ms);
}

void resp_close_after(struct http_conn *c)
{
	c->closing = 1;
}

/* ---- facts ---- */

int http_conn_head_only(const struct http_conn *c)
{
	return c->head_only;
}

int http_conn_can_chunk(const struct http_conn *c)
{
	return c->minor >= 1;
}

const char *http_conn_peer(const struct http_conn *c)
{
	return c->peer.addr_str;
}

long http_conn_peer_uid(const struct http_conn *c)
{
	return c->peer.uid;
}

struct http_ctx *http_conn_ctx(const struct http_conn *c)
{
	return c->x;
}

int http_conn_in_batch(const struct http_conn *c)
{
	return c->in_batch;
}

const struct proto_site *http_ctx_site(const struct http_ctx *x)
{
	return x->site;
}

struct filecache *http_ctx_files(const struct http_ctx *x)
{
	return x->files;
}

const struct http_config *http_ctx_config(const struct http_ctx *x)
{
	return x->cfg;
}

uint64_t http_ctx_random(struct http_ctx *x)
{
	return rand_splitmix64(&x->prng);
}

const struct http_header *http_req_header(const struct http_reqinfo *ri, const char *name)
{
	return http_find_header(ri->req, name);
}

const char *http_header_refused(const char *name, const char *value)
{
	return http_header_refused_n(name, strlen(name), value, strlen(value));
}

const char *http_header_refused_n(const char *name, size_t nlen, const char *value, size_t vlen)
{
	static const char *const framing[] = {"content-length",
	                                      "transfer-encoding",
	                                      "connection",
	                                      "keep-alive",
	                                      "upgrade",
	                                      "trailer",
	                                      "te",
	                                      "date",
	                                      "server",
	                                      "x-content-type-options"};
	if (!nlen)
		return "a header needs a name";
	for (size_t i = 0; i < nlen; i++) {
		char ch = name[i];
		if (!ch || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		             (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch)))
			return "header names must be tokens (letters, digits and !#$%&'*+-.^_`|~)";
	}
	for (size_t i = 0; i < vlen; i++) {
		unsigned char ch = (unsigned char)value[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return "header values must be free of control characters (NUL, CR, LF, ...)";
	}
	for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
		if (!strcasecmp(name, framing[i]))
			return "that header frames the message or is set by the server, and cannot be set";
	return NULL;
}

int http_header_cross_site_refused(const char *name)
{
	/* What a page of another site could otherwise make this answer do to the browser
	 * or to the whole origin (and on localhost an origin is every local app): */
	static const char *const refused[] = {
	        /* cookies (they ignore ports) and login prompts */
	        "set-cookie", "clear-site-data", "www-authenticate", "proxy-authenticate",
	        /* a forged answer cached for the URL; framing the browser believes */
	        "cache-control", "expires", "age", "vary", "content-encoding", "content-range",
	        /* a service worker's scope; where and how the origin is reached */
	        "service-worker-allowed", "alt-svc", "strict-transport-security",
	        /* reports sent elsewhere; client hints; preloads and stylesheets */
	        "nel", "report-to", "reporting-endpoints", "accept-ch", "critical-ch", "link",
	        /* policies of the origin or of the answer */
	        "origin-agent-cluster", "permissions-policy", "timing-allow-origin", "x-frame-options",
	        "cross-origin-opener-policy", "cross-origin-embedder-policy", "cross-origin-resource-policy",
	        "document-policy", "origin-trial",
	        /* login state (FedCM), prerendering and prefetch rules, attribution and topics
	         * registrations */
	        "set-login", "supports-loading-mode", "speculation-rules", "no-vary-search",
	        "attribution-reporting-register-source", "attribution-reporting-register-trigger",
	        "observe-browsing-topics"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (!strcasecmp(name, refused[i]))
			return 1;
	return 0;
}

int http_list_has(struct http_slice v, const char *tok)
{
	size_t i = 0, tl = strlen(tok);
	while (i < v.len) {
		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		size_t s = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
			e--;
		if (e - s == tl && !strncasecmp(v.p + s, tok, tl))
			return 1;
	}
	return 0;
}
