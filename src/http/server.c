/* server.c - HTTP/1.1 connections: accept, read, parse, dispatch, write, time out, log. */
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/dirsnap.h"
#include "core/json.h"
#include "core/log.h"
#include "core/net.h"
#include "diag/peer.h"
#include "http/conn.h"
#include "http/sniff.h"

#define ACCEPT_BATCH    64
#define EMFILE_RETRY_MS 100
#define LOG_FLUSH_AT    (32 * 1024)

static void conn_run(struct http_conn *c);
static void conn_close(struct http_conn *c);

/* FTP sessions open on this thread. */
static unsigned ftp_sessions(const struct http_worker *w)
{
	return w->ftp ? ftp_proto_ops.count(w->ftp) : 0;
}

/* Hands fd (counted in nconns) to the FTP engine. */
static void ftp_take(struct http_worker *w, int fd, const struct sockaddr_storage *addr)
{
	struct proto_peer peer = {.addr = *addr, .pid = -1};
	net_addr_str((const struct sockaddr *)addr, peer.addr_str, sizeof(peer.addr_str));
	ftp_proto_ops.start(w->ftp, fd, &peer);
}

void http_config_default(struct http_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->root = ".";
	net_parse_addr("127.0.0.1", 62893, &cfg->addr, &cfg->addrlen);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->threads = n > 0 ? (int)n : 1;
	cfg->log = HTTP_LOG_COMMON;
	cfg->max_conns = 16384;
	cfg->max_body = 1ull << 30;
	cfg->head_timeout_ms = 10000;
	cfg->idle_timeout_ms = 15000;
	cfg->body_timeout_ms = 30000;
	cfg->grace_ms = 5000;
	cfg->proto_http = cfg->proto_ftp = 1;
	cfg->sniff_ms = 50;
	ftp_config_default(&cfg->ftp);
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 418: return "I'm a teapot";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return "Status";
	}
}

/* ---- time strings, cached per second ---- */

static const char *worker_date(struct http_worker *w)
{
	time_t now = time(NULL);
	if (now != w->date_sec) {
		w->date_sec = now;
		http_date_format(now, w->date);
	}
	return w->date;
}

/* ---- responses ---- */

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

void resp_start(struct http_conn *c, int status)
{
	struct http_config *cfg = &c->w->srv->cfg;
	char line[64];
	int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, http_reason(status));
	c->status = status;
	out_put(c, line, (size_t)n);
	OUT_LIT(c, "Server: loopkit/" LOOPKIT_VERSION "\r\nDate: ");
	out_str(c, worker_date(c->w));
	OUT_LIT(c, "\r\nX-Content-Type-Options: nosniff\r\n");
	if (cfg->cors)
		OUT_LIT(c, "Access-Control-Allow-Origin: *\r\n"
		           "Access-Control-Expose-Headers: Content-Length, Content-Range, ETag, "
		           "Last-Modified, Location, Date\r\n");
	if (c->closing)
		OUT_LIT(c, "Connection: close\r\n");
	else if (c->minor == 0)
		OUT_LIT(c, "Connection: keep-alive\r\n");
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
	return !(status < 200 || status == 204 || status == 304);
}

void resp_end_headers(struct http_conn *c, const char *type, uint64_t len, int chunked)
{
	if (status_has_body(c->status)) {
		if (type) {
			OUT_LIT(c, "Content-Type: ");
			out_str(c, type);
			OUT_LIT(c, "\r\n");
		}
		if (chunked) {
			OUT_LIT(c, "Transfer-Encoding: chunked\r\n");
		} else {
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

struct buf *resp_out(struct http_conn *c)
{
	return &c->out;
}

void resp_error(struct http_conn *c, int status, const char *msg)
{
	char body[512];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_reason(status), msg);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	resp_start(c, status);
	if (status == 405) {
		resp_header(c, "Allow",
		            c->w->srv->cfg.write ? "GET, HEAD, OPTIONS, PUT, DELETE" : "GET, HEAD, OPTIONS");
	}
	resp_send_mem(c, "text/plain; charset=utf-8", body, (size_t)n);
}

void resp_error_close(struct http_conn *c, int status, const char *msg)
{
	c->closing = 1;
	c->linger = 1; /* the rest of a bad request may still be on its way */
	resp_error(c, status, msg);
}

/* ---- access log ---- */

static void log_flush(struct http_worker *w)
{
	/* Whole lines, at most 4 KiB per write, so lines from several threads never mix
	 * even on a pipe. A reader that falls behind loses lines, never stalls us. */
	size_t n = buf_used(&w->log);
	const char *p = buf_start(&w->log);
	while (n) {
		size_t chunk = n;
		if (chunk > 4096) {
			chunk = 4096;
			while (chunk > 1 && p[chunk - 1] != '\n')
				chunk--;
			if (chunk <= 1)
				chunk = 4096;
		}
		if (log_sink_write(&w->srv->log, p, chunk) < 0)
			break;
		p += chunk;
		n -= chunk;
	}
	buf_consume(&w->log, buf_used(&w->log));
	if (w->log.cap > 2 * LOG_FLUSH_AT)
		buf_free(&w->log);
}

static void log_flush_cb(struct loop *l, void *data)
{
	struct http_worker *w = data;
	w->log_flush_queued = 0;
	log_flush(w);
}

static void access_log(struct http_conn *c)
{
	struct http_worker *w = c->w;
	enum http_log_mode mode = w->srv->cfg.log;
	uint64_t us = loop_clock_us() - c->t_start;
	if (mode == HTTP_LOG_NONE)
		return;
	struct timespec now;
	struct tm tm;
	char when[64];
	clock_gettime(CLOCK_REALTIME, &now);
	if (mode != HTTP_LOG_COMMON || w->clf_sec != now.tv_sec)
		gmtime_r(&now.tv_sec, &tm);
	if (mode == HTTP_LOG_COMMON) {
		if (w->clf_sec != now.tv_sec) {
			w->clf_sec = now.tv_sec;
			strftime(w->clf, sizeof(w->clf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
		}
		buf_printf(&w->log, "%s - - [%s] \"%s\" %d %llu %llu\n", c->peer_str, w->clf, c->logreq,
		           c->status, (unsigned long long)c->body_bytes, (unsigned long long)us);
	} else {
		struct buf *b = &w->log;
		char req[256];
		snprintf(req, sizeof(req), "%s", c->logreq);
		char *sp1 = strchr(req, ' ');
		char *sp2 = sp1 ? strrchr(sp1 + 1, ' ') : NULL;
		const char *method = req, *target = "", *proto = "";
		if (sp1 && sp2 && sp2 > sp1) {
			*sp1 = 0;
			*sp2 = 0;
			target = sp1 + 1;
			proto = sp2 + 1;
		}
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		struct json j;
		json_init(&j, b, 0);
		json_obj_begin(&j);
		json_key(&j, "time");
		char ts[80];
		snprintf(ts, sizeof(ts), "%s.%03ldZ", when, now.tv_nsec / 1000000);
		json_str(&j, ts);
		json_key(&j, "remote");
		json_str(&j, c->peer_str);
		json_key(&j, "method");
		json_str(&j, method);
		json_key(&j, "target");
		json_str(&j, target);
		json_key(&j, "proto");
		json_str(&j, proto);
		json_key(&j, "status");
		json_int(&j, c->status);
		json_key(&j, "bytes");
		json_uint(&j, c->body_bytes);
		json_key(&j, "us");
		json_uint(&j, us);
		json_obj_end(&j);
		buf_append(b, "\n", 1);
	}
	if (buf_used(&w->log) >= LOG_FLUSH_AT)
		log_flush(w);
	else if (!w->log_flush_queued && loop_defer(w->loop, log_flush_cb, w) == 0)
		w->log_flush_queued = 1;
}

/* ---- deadlines ---- */

static void conn_deadline(struct http_conn *c, uint64_t ms)
{
	struct loop *l = c->w->loop;
	c->deadline = loop_now(l) + ms;
	/* The timer only moves earlier here; a later deadline is noticed when the timer
	 * fires and re-arms, so busy connections do not touch the heap per request. */
	if (!loop_timer_armed(&c->timer) || c->timer.when > c->deadline)
		loop_timer_start(l, &c->timer, ms);
}

void conn_wait(struct http_conn *c, uint64_t ms)
{
	c->state = CS_WAIT;
	conn_deadline(c, ms);
}

static void request_reset(struct http_conn *c)
{
	free(c->head);
	c->head = NULL;
	c->head_len = 0;
	buf_free(&c->body);
	c->sink = SINK_NONE;
	c->chunked = 0;
	c->body_left = c->body_total = 0;
	if (c->file_fd >= 0)
		close(c->file_fd);
	c->file_fd = -1;
	c->rb = RB_NONE;
	c->rb_left = 0;
}

/* The response to the current request is complete (queued or sent). */
static void request_done(struct http_conn *c)
{
	access_log(c);
	request_reset(c);
	c->state = CS_HEAD;
	c->status = 0;
	c->body_bytes = 0;
	if (c->w->stopping)
		c->closing = 1;
	if (!buf_used(&c->in))
		conn_deadline(c, c->w->srv->cfg.idle_timeout_ms);
	else
		conn_deadline(c, c->w->srv->cfg.head_timeout_ms);
}

static void linger_start(struct http_conn *c)
{
	shutdown(c->io.fd, SHUT_WR);
	c->state = CS_LINGER;
	buf_free(&c->in);
	buf_free(&c->out);
	c->deadline = 0;
	conn_deadline(c, c->w->stopping ? HTTP_LINGER_MS / 10 : HTTP_LINGER_MS);
	/* Only reading now: a shut-down socket is always writable, and asking for that
	 * would spin. */
	if (loop_io_set(c->w->loop, &c->io, LOOP_READ) < 0)
		conn_close(c);
}

static void conn_free_cb(struct loop *l, void *data)
{
	free(data);
}

/* Takes c off its worker: stops its timer, frees its buffers, unlinks it, and frees
 * the record after the batch (an event for it may still wait in this batch; without
 * memory even for that, leaking one record beats a use after free). The descriptor
 * is the caller's business. */
static void conn_detach(struct http_conn *c)
{
	struct http_worker *w = c->w;
	c->shut = 1;
	loop_timer_stop(w->loop, &c->timer);
	buf_free(&c->in);
	buf_free(&c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	if (loop_defer(w->loop, conn_free_cb, c) < 0)
		log_msg("out of memory: leaking one connection record");
}

static void conn_close(struct http_conn *c)
{
	struct http_worker *w = c->w;
	if (c->shut)
		return;
	if (c->sink == SINK_FILE)
		fsroot_upload_abort(&c->up);
	request_reset(c);
	loop_io_close(w->loop, &c->io);
	conn_detach(c);
	atomic_fetch_sub(&w->srv->nconns, 1);
	if (w->stopping && !w->nconns && !ftp_sessions(w))
		loop_stop(w->loop);
}

static void ftp_idle_cb(void *arg)
{
	struct http_worker *w = arg;
	if (w->stopping && !w->nconns && !ftp_sessions(w))
		loop_stop(w->loop);
}

/* What the FTP engine learned about a peer. An HTTP request after our greeting means
 * the client stayed silent past the sniff window (or FTP has the port alone). */
static void ftp_note_cb(void *arg, const struct proto_peer *peer, enum proto_note note)
{
	struct http_worker *w = arg;
	if (note != PROTO_NOTE_HTTP)
		return;
	if (w->srv->cfg.proto_http)
		log_msg("%s sent an HTTP request after the FTP greeting: it stayed silent longer than the "
		        "sniff window; raise --sniff-ms or use --proto http",
		        peer->addr_str);
	else
		log_msg("%s sent an HTTP request, but this server speaks only FTP (--proto ftp); use "
		        "--proto http,ftp to serve both",
		        peer->addr_str);
}

/* ---- request heads ---- */

static enum http_method method_of(struct http_slice m)
{
	static const struct {
		const char *name;
		enum http_method m;
	} t[] = {
	        {"GET", M_GET},     {"HEAD", M_HEAD},     {"POST", M_POST},
	        {"PUT", M_PUT},     {"DELETE", M_DELETE}, {"OPTIONS", M_OPTIONS},
	        {"PATCH", M_PATCH}, {"TRACE", M_TRACE},   {"CONNECT", M_CONNECT},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (m.len == strlen(t[i].name) && !memcmp(m.p, t[i].name, m.len))
			return t[i].m;
	return M_OTHER;
}

static int ieq_n(const char *a, size_t n, const char *b)
{
	return strlen(b) == n && !strncasecmp(a, b, n);
}

/* Does the comma-separated token list v contain tok (case-insensitive)? */
static int list_has(struct http_slice v, const char *tok)
{
	size_t i = 0;
	while (i < v.len) {
		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		size_t s = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
			e--;
		if (e > s && ieq_n(v.p + s, e - s, tok))
			return 1;
	}
	return 0;
}

/* Is this Host (or absolute-form authority) one that names this server? IP literals
 * cannot be rebound by DNS and *.localhost never leaves the machine (RFC 6761), so
 * both are safe; any other name must be given with --allow-host. */
static int host_allowed(const struct http_server *s, const char *h, size_t n)
{
	const char *name;
	size_t nlen;
	if (http_authority_host(h, n, &name, &nlen) < 0)
		return 0;
	for (size_t i = 0; i < s->cfg.nallow_hosts; i++) {
		const char *a = s->cfg.allow_hosts[i];
		if (!strcmp(a, "*") || ieq_n(name, nlen, a))
			return 1;
	}
	return net_is_ip_literal(name, nlen) || http_name_is_localhost(name, nlen);
}

struct head_facts {
	int keepalive;
	int has_cl;
	uint64_t cl;
	int chunked;
	int expect_continue;
};

/* Checks the head against RFC 9112 framing rules and our Host policy. Returns 0, or
 * an HTTP status to answer with (and then *msg says why). */
static int head_check(struct http_conn *c, const struct http_request *req, struct http_reqinfo *ri,
                      struct head_facts *f, const char **msg)
{
	struct http_server *s = c->w->srv;
	const struct http_header *host = NULL;
	int nte = 0, conn_close_tok = 0, conn_keep = 0;
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		struct http_slice n = h->name, v = h->value;
		switch (n.len) {
		case 4:
			if (http_slice_ieq(n, "host")) {
				if (host) {
					*msg = "more than one Host header";
					return 400;
				}
				host = h;
			}
			break;
		case 6:
			if (http_slice_ieq(n, "expect")) {
				if (!http_slice_ieq(v, "100-continue")) {
					*msg = "only Expect: 100-continue is supported";
					return 417;
				}
				f->expect_continue = 1;
			} else if (http_slice_ieq(n, "accept")) {
				for (size_t k = 0; k + 16 <= v.len; k++)
					if (!strncasecmp(v.p + k, "application/json", 16))
						ri->accept_json = 1;
			}
			break;
		case 10:
			if (http_slice_ieq(n, "connection")) {
				conn_close_tok |= list_has(v, "close");
				conn_keep |= list_has(v, "keep-alive");
			}
			break;
		case 14:
			if (http_slice_ieq(n, "content-length")) {
				uint64_t x = 0;
				if (!v.len || v.len > 18) {
					*msg = "invalid Content-Length";
					return 400;
				}
				for (size_t k = 0; k < v.len; k++) {
					if (v.p[k] < '0' || v.p[k] > '9') {
						*msg = "invalid Content-Length";
						return 400;
					}
					x = x * 10 + (uint64_t)(v.p[k] - '0');
				}
				if (f->has_cl && x != f->cl) {
					*msg = "conflicting Content-Length headers";
					return 400;
				}
				f->has_cl = 1;
				f->cl = x;
			}
			break;
		case 17:
			if (http_slice_ieq(n, "transfer-encoding")) {
				nte++;
				if (!http_slice_ieq(v, "chunked")) {
					*msg = "only Transfer-Encoding: chunked is supported";
					return nte > 1 ? 400 : 501;
				}
				f->chunked = 1;
			}
			break;
		}
	}
	if (nte > 1) {
		*msg = "more than one Transfer-Encoding header";
		return 400;
	}
	if (nte && f->has_cl) {
		*msg = "both Content-Length and Transfer-Encoding (request smuggling?)";
		return 400;
	}
	if (nte && req->minor == 0) {
		*msg = "Transfer-Encoding in an HTTP/1.0 request";
		return 400;
	}
	f->keepalive = req->minor ? !conn_close_tok : conn_keep && !conn_close_tok;

	/* The target: origin-form, absolute-form (proxies), or "*" for OPTIONS. */
	struct http_slice t = req->target;
	struct http_slice authority = {NULL, 0};
	if (t.len >= 7 &&
	    (!strncasecmp(t.p, "http://", 7) || (t.len >= 8 && !strncasecmp(t.p, "https://", 8)))) {
		size_t skip = t.p[4] == ':' ? 7 : 8;
		const char *a = t.p + skip, *end = t.p + t.len;
		const char *slash = memchr(a, '/', (size_t)(end - a));
		authority.p = a;
		authority.len = (size_t)((slash ? slash : end) - a);
		if (slash) {
			t.p = slash;
			t.len = (size_t)(end - slash);
		} else {
			t.p = "/";
			t.len = 1;
		}
		if (memchr(authority.p, '@', authority.len)) {
			*msg = "userinfo in the request target";
			return 400;
		}
	} else if (t.len == 1 && t.p[0] == '*') {
		if (ri->method != M_OPTIONS) {
			*msg = "'*' is only a target for OPTIONS";
			return 400;
		}
	} else if (ri->method == M_CONNECT) {
		*msg = "CONNECT: this is not a proxy";
		return 405;
	} else if (!t.len || t.p[0] != '/') {
		*msg = "malformed request target";
		return 400;
	}
	if (req->minor == 1 && !host) {
		*msg = "HTTP/1.1 request without Host";
		return 400;
	}
	if (!authority.p && host)
		authority = host->value;
	if (authority.p && !host_allowed(s, authority.p, authority.len)) {
		*msg = "Host does not name this server (DNS rebinding protection); "
		       "start loopkit with --allow-host NAME to allow it";
		return 403;
	}
	const char *q = memchr(t.p, '?', t.len);
	const char *hash = memchr(t.p, '#', t.len);
	const char *pend = q ? q : (hash ? hash : t.p + t.len);
	ri->path.p = t.p;
	ri->path.len = (size_t)(pend - t.p);
	if (q) {
		ri->query.p = q + 1;
		ri->query.len = (size_t)((hash && hash > q ? hash : t.p + t.len) - q - 1);
	}
	return 0;
}

static int is_api(const struct http_reqinfo *ri)
{
	return ri->path.len >= 2 && ri->path.p[0] == '/' && ri->path.p[1] == '_' &&
	       (ri->path.len == 2 || ri->path.p[2] == '/');
}

static void dispatch(struct http_conn *c, struct http_reqinfo *ri)
{
	if (is_api(ri))
		api_handle(c, ri);
	else
		files_handle(c, ri);
	if (c->rb == RB_FILE || c->rb == RB_GEN)
		c->state = CS_SEND;
	else if (c->state != CS_WAIT && c->rb == RB_NONE)
		request_done(c);
}

static void handle_head(struct http_conn *c, const struct http_request *req, size_t headlen)
{
	struct http_reqinfo ri;
	struct head_facts f;
	const char *msg = NULL;
	memset(&ri, 0, sizeof(ri));
	ri.req = req;
	ri.method = method_of(req->method);
	c->t_start = loop_clock_us();
	c->minor = req->minor;
	c->head_only = ri.method == M_HEAD;
	c->status = 0;
	c->body_bytes = 0;
	size_t rl = req->target.p + req->target.len - req->method.p + 9;
	if (rl > sizeof(c->logreq) - 1) {
		snprintf(c->logreq, sizeof(c->logreq), "%.*s %.*s... HTTP/1.%d", (int)req->method.len,
		         req->method.p, 200, req->target.p, req->minor);
	} else {
		snprintf(c->logreq, sizeof(c->logreq), "%.*s %.*s HTTP/1.%d", (int)req->method.len,
		         req->method.p, (int)req->target.len, req->target.p, req->minor);
	}

	int st = head_check(c, req, &ri, &f, &msg);
	if (st) {
		resp_error_close(c, st, msg);
		buf_consume(&c->in, headlen);
		request_done(c);
		return;
	}
	c->closing = !f.keepalive || c->w->stopping;
	int has_body = f.chunked || (f.has_cl && f.cl > 0);
	/* Consumed before dispatch: the slices stay valid (nothing reads into c->in
	 * until the handler returns) and request_done() sees the true leftover. */
	const char *head_start = buf_start(&c->in);
	buf_consume(&c->in, headlen);
	if (!has_body) {
		dispatch(c, &ri);
		return;
	}
	c->chunked = f.chunked;
	memset(&c->chunk, 0, sizeof(c->chunk));
	c->body_left = f.cl;
	c->body_total = 0;
	if (is_api(&ri)) {
		if (f.has_cl && f.cl > HTTP_API_MAX_BODY) {
			resp_error_close(c, 413, "request body over the 1 MiB limit of /_/ endpoints");
			request_done(c);
			return;
		}
		c->head = malloc(headlen);
		if (!c->head) {
			resp_error_close(c, 503, "out of memory");
			request_done(c);
			return;
		}
		memcpy(c->head, head_start, headlen);
		c->head_len = headlen;
		buf_init(&c->body, HTTP_API_MAX_BODY);
		c->sink = SINK_MEM;
	} else if (ri.method == M_PUT && c->w->srv->cfg.write) {
		if (f.has_cl && f.cl > c->w->srv->cfg.max_body) {
			resp_error_close(c, 413, "request body over the --max-body limit");
			request_done(c);
			return;
		}
		if (files_put_begin(c, &ri) < 0) {
			c->closing = 1; /* the body stays unread */
			c->linger = 1;
			request_done(c);
			return;
		}
		c->sink = SINK_FILE;
	} else {
		/* Nobody wants this body: answer, then close rather than read it. */
		c->closing = 1;
		c->linger = 1;
		dispatch(c, &ri);
		return;
	}
	if (f.expect_continue && c->minor == 1)
		OUT_LIT(c, "HTTP/1.1 100 Continue\r\n\r\n");
	c->state = CS_BODY;
	conn_deadline(c, c->w->srv->cfg.body_timeout_ms);
}

/* ---- request bodies ---- */

/* Called with the whole body read into c->body (SINK_MEM) or c->up (SINK_FILE). */
static void body_done(struct http_conn *c)
{
	c->state = CS_HEAD;
	if (c->sink == SINK_FILE) {
		c->sink = SINK_NONE;
		files_put_finish(c, 0);
		request_done(c);
		return;
	}
	/* Re-parse the saved head: its slices must point into memory that outlives the
	 * reads that brought the body. */
	struct http_request *req = malloc(sizeof(*req));
	struct http_reqinfo ri;
	struct head_facts f;
	const char *msg;
	if (!req) {
		resp_error_close(c, 503, "out of memory");
		request_done(c);
		return;
	}
	memset(&ri, 0, sizeof(ri));
	if (http_parse_request(c->head, c->head_len, req, 0) <= 0) {
		free(req);
		resp_error_close(c, 500, "saved request head no longer parses");
		request_done(c);
		return;
	}
	ri.req = req;
	ri.method = method_of(req->method);
	head_check(c, req, &ri, &f, &msg);
	ri.body = buf_start(&c->body);
	ri.body_len = buf_used(&c->body);
	if (!ri.body)
		ri.body = "";
	c->state = CS_HEAD;
	dispatch(c, &ri);
	free(req);
}

static int sink_data(struct http_conn *c, const char *p, size_t n)
{
	c->body_total += n;
	if (c->sink == SINK_MEM) {
		if (buf_append(&c->body, p, n) < 0) {
			resp_error_close(c, 413, "request body over the 1 MiB limit of /_/ endpoints");
			return -1;
		}
		return 0;
	}
	if (c->body_total > c->w->srv->cfg.max_body) {
		fsroot_upload_abort(&c->up);
		c->sink = SINK_NONE;
		resp_error_close(c, 413, "request body over the --max-body limit");
		return -1;
	}
	int rc = fsroot_upload_write(&c->up, p, n);
	if (rc < 0) {
		fsroot_upload_abort(&c->up);
		c->sink = SINK_NONE;
		files_put_finish(c, rc);
		c->closing = 1;
		c->linger = 1; /* the client is still sending: let the 507 reach it */
		return -1;
	}
	return 0;
}

/* Feeds buffered input to the body sink. Returns 1 when it made progress. */
static int body_feed(struct http_conn *c)
{
	size_t avail = buf_used(&c->in);
	char *p = buf_start(&c->in);
	if (!avail)
		return 0;
	if (!c->chunked) {
		size_t take = avail < c->body_left ? avail : (size_t)c->body_left;
		int rc = sink_data(c, p, take);
		buf_consume(&c->in, take);
		c->body_left -= take;
		if (rc < 0) {
			c->state = CS_HEAD;
			request_done(c);
		} else if (!c->body_left) {
			body_done(c);
		}
		return 1;
	}
	size_t len = avail;
	ssize_t r = http_chunked_decode(&c->chunk, p, &len);
	if (r == HTTP_PARSE_ERROR) {
		if (c->sink == SINK_FILE)
			fsroot_upload_abort(&c->up);
		c->sink = SINK_NONE;
		c->state = CS_HEAD;
		resp_error_close(c, 400, "malformed chunked body");
		buf_consume(&c->in, avail);
		request_done(c);
		return 1;
	}
	int rc = len ? sink_data(c, p, len) : 0;
	/* A chunk announced bigger than what may still come is refused now, not after
	 * its bytes arrive (or the body timeout passes). */
	uint64_t limit = c->sink == SINK_MEM ? HTTP_API_MAX_BODY : c->w->srv->cfg.max_body;
	if (!rc && c->chunk.remaining > limit - (c->body_total < limit ? c->body_total : limit)) {
		const char *why = c->sink == SINK_MEM ? "request body over the 1 MiB limit of /_/ endpoints"
		                                      : "request body over the --max-body limit";
		if (c->sink == SINK_FILE)
			fsroot_upload_abort(&c->up);
		c->sink = SINK_NONE;
		resp_error_close(c, 413, why);
		rc = -1;
	}
	if (r == HTTP_PARSE_INCOMPLETE) {
		buf_consume(&c->in, avail);
	} else {
		c->in.len = c->in.off + len + (size_t)r;
		buf_consume(&c->in, len);
	}
	if (rc < 0) {
		c->state = CS_HEAD;
		request_done(c);
	} else if (r >= 0) {
		body_done(c);
	}
	return 1;
}

/* ---- the connection driver ---- */

/* Handles complete requests in the input. Returns 1 when it made progress. */
static int conn_process(struct http_conn *c)
{
	int progress = 0;
	struct http_request *req = &c->w->req;
	while (!c->shut) {
		if (c->state == CS_BODY) {
			if (!body_feed(c))
				break;
			progress = 1;
			continue;
		}
		if (c->state != CS_HEAD || c->closing || !buf_used(&c->in) ||
		    buf_used(&c->out) >= HTTP_OUT_FLUSH)
			break;
		size_t used = buf_used(&c->in);
		int r = http_parse_request(buf_start(&c->in), used, req, c->last_len);
		if (r == HTTP_PARSE_INCOMPLETE) {
			if (!c->last_len)
				conn_deadline(c, c->w->srv->cfg.head_timeout_ms);
			c->last_len = used;
			c->need_input = 1;
			break;
		}
		c->last_len = 0;
		progress = 1;
		if (r == HTTP_PARSE_ERROR) {
			c->t_start = loop_clock_us();
			c->minor = 1;
			snprintf(c->logreq, sizeof(c->logreq), "-");
			resp_error_close(c, req->error_status, req->error_reason);
			buf_consume(&c->in, used);
			request_done(c);
			break;
		}
		handle_head(c, req, (size_t)r);
	}
	return progress;
}

/* /_/delay holds its finished response back until the deadline. */
static int conn_holding(const struct http_conn *c)
{
	return c->state == CS_WAIT && c->rb != RB_DRIP;
}

/* Writes what is pending. Returns 1 when everything is written, 0 when the socket is
 * full or a drip is waiting, -1 when the connection was closed. */
static int conn_flush(struct http_conn *c)
{
	if (conn_holding(c))
		return 0;
	for (;;) {
		size_t n = buf_used(&c->out);
		if (n) {
			int more = c->rb != RB_NONE ? MSG_MORE : 0;
			ssize_t w = send(c->io.fd, buf_start(&c->out), n, MSG_NOSIGNAL | MSG_DONTWAIT | more);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return 0;
				conn_close(c);
				return -1;
			}
			buf_consume(&c->out, (size_t)w);
			if ((size_t)w < n)
				return 0;
			continue;
		}
		if (c->rb == RB_FILE) {
			size_t want = c->rb_left > (1u << 21) ? (1u << 21) : (size_t)c->rb_left;
			ssize_t w = sendfile(c->io.fd, c->file_fd, &c->file_off, want);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return 0;
				conn_close(c);
				return -1;
			}
			if (w == 0) { /* the file shrank under us: the length we promised is a lie */
				conn_close(c);
				return -1;
			}
			c->rb_left -= (uint64_t)w;
			c->body_bytes += (uint64_t)w;
			if (!c->rb_left) {
				c->rb = RB_NONE;
				request_done(c);
			}
			continue;
		}
		if (c->rb == RB_GEN) {
			if (!c->rb_left && !c->gen_chunked) {
				c->rb = RB_NONE;
				request_done(c);
				continue;
			}
			size_t added = api_gen_fill(c, HTTP_OUT_FLUSH);
			if (!added) {
				c->rb = RB_NONE;
				request_done(c);
			}
			continue;
		}
		if (c->rb == RB_DRIP)
			return 0;
		return 1;
	}
}

/* Complete input is waiting to be handled (pipelined requests, body bytes). */
static int conn_has_work(const struct http_conn *c)
{
	if (c->state == CS_BODY)
		return buf_used(&c->in) != 0;
	return c->state == CS_HEAD && buf_used(&c->in) && !c->need_input && !c->closing;
}

static void conn_update_io(struct http_conn *c)
{
	unsigned mask = 0;
	int want_write = !conn_holding(c) && (buf_used(&c->out) || c->rb == RB_FILE || c->rb == RB_GEN);
	/* Work left over after a run's round limit: a writable socket reports at once,
	 * so the next turn continues it, after other connections had theirs. */
	if (want_write || conn_has_work(c))
		mask = LOOP_WRITE;
	else if (c->state == CS_HEAD || c->state == CS_BODY || c->state == CS_LINGER || c->state == CS_SNIFF)
		mask = LOOP_READ;
	if (loop_io_set(c->w->loop, &c->io, mask) < 0)
		conn_close(c);
}

static void conn_run(struct http_conn *c)
{
	for (int round = 0; round < 16 && !c->shut; round++) {
		int progress = conn_process(c);
		if (c->shut)
			return;
		int r = conn_flush(c);
		if (r < 0)
			return;
		if (r == 0) {
			/* Blocked on the socket: a write stall is bounded by the body timeout. */
			if (c->state != CS_WAIT && (buf_used(&c->out) || c->rb == RB_FILE || c->rb == RB_GEN))
				conn_deadline(c, c->w->srv->cfg.body_timeout_ms);
			break;
		}
		if (c->state == CS_HEAD && c->closing) {
			/* A clean "Connection: close" needs no lingering: the request was read
			 * whole. After an error, drain what the peer still sends, or our close
			 * would reset the connection and could destroy the answer in flight. */
			if (c->linger || buf_used(&c->in))
				linger_start(c);
			else
				conn_close(c);
			return;
		}
		(void)progress;
		if (!conn_has_work(c))
			break;
	}
	if (c->shut)
		return;
	/* Between requests a connection keeps no buffers: 10,000 idle keep-alive
	 * connections then cost their records only. */
	if (c->state == CS_HEAD && !buf_used(&c->in) && !buf_used(&c->out)) {
		buf_free(&c->in);
		buf_free(&c->out);
	}
	conn_update_io(c);
}

/* ---- protocol sniffing ---- */

/* Hands a silent connection to the FTP side: the descriptor and its slot in the
 * connection count move to an FTP session; the HTTP record is dropped. */
static void sniff_to_ftp(struct http_conn *c)
{
	struct http_worker *w = c->w;
	int fd = c->io.fd;
	loop_io_stop(w->loop, &c->io);
	conn_detach(c); /* c stays readable until the end of the batch */
	ftp_take(w, fd, &c->peer);
}

/* The sniff window passed in silence: FTP, unless the peer is a browser. Browsers
 * open connections ahead of need and leave them silent; greeting one would put
 * "220 ..." where the browser later expects an HTTP response. On loopback the peer's
 * socket is on this machine, so its owner can be asked for its name. */
static void conn_read(struct http_conn *c);

static void sniff_silent(struct http_conn *c)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	uint32_t inode;
	char name[64], b;
	/* Bytes may have arrived after this turn's epoll_wait: then it is not silence. */
	ssize_t n = recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0) {
		conn_read(c);
		return;
	}
	if (n == 0) {
		conn_close(c);
		return;
	}
	/* With no browser running (the list is refreshed at most once a second), a burst
	 * of silent connections costs no lookups at all. */
	if (net_is_loopback((struct sockaddr *)&c->peer) &&
	    diag_browsers_refresh(&c->w->browsers, loop_now(c->w->loop), 1000) &&
	    getsockname(c->io.fd, (struct sockaddr *)&local, &len) == 0 &&
	    diag_peer_inode(&local, &c->peer, &inode) == 0 &&
	    diag_browsers_hold(&c->w->browsers, inode, name, sizeof(name))) {
		c->state = CS_HEAD;
		conn_deadline(c, c->w->srv->cfg.idle_timeout_ms);
		return;
	}
	sniff_to_ftp(c);
}

/* First bytes, classified by http_sniff_classify. Returns 1 for HTTP, 0 after closing
 * the connection (or, with no bytes yet, to wait for more). */
static int sniff_bytes(struct http_conn *c)
{
	const unsigned char *p = (const unsigned char *)buf_start(&c->in);
	int kind = http_sniff_classify(p, buf_used(&c->in));
	if (kind == HTTP_SNIFF_NEED_MORE)
		return 0;
	if (kind == HTTP_SNIFF_TLS) {
		log_msg("%s sent a TLS ClientHello: TLS is not offered (yet); use http:// or ftp://",
		        c->peer_str);
		conn_close(c);
		return 0;
	}
	if (kind == HTTP_SNIFF_HTTP) {
		c->state = CS_HEAD;
		return 1;
	}
	log_msg("%s sent bytes that are neither HTTP nor FTP (first byte 0x%02x); closed", c->peer_str, p[0]);
	conn_close(c);
	return 0;
}

static void conn_read(struct http_conn *c)
{
	if (c->state == CS_LINGER) {
		char sink[4096];
		ssize_t n = recv(c->io.fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(c);
		return;
	}
	size_t avail;
	int was_empty = !buf_used(&c->in);
	char *p = buf_space(&c->in, 4096, &avail);
	if (!p)
		p = buf_space(&c->in, 1, &avail);
	if (!p) {
		/* Full: only a head can fill HTTP_IN_MAX (bodies drain as they come). */
		resp_error_close(c, 431, "request head larger than 16 KiB");
		buf_consume(&c->in, buf_used(&c->in));
		request_done(c);
		conn_run(c);
		return;
	}
	ssize_t n = recv(c->io.fd, p, avail, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c);
		return;
	}
	if (n == 0) {
		if (c->state == CS_BODY && c->sink == SINK_FILE)
			log_msg("upload of %s cut off after %llu bytes; the old file is untouched", c->logreq,
			        (unsigned long long)c->body_total);
		conn_close(c);
		return;
	}
	c->in.len += (size_t)n;
	c->need_input = 0;
	if (c->state == CS_SNIFF && !sniff_bytes(c))
		return;
	if (c->state == CS_HEAD && was_empty)
		conn_deadline(c, c->w->srv->cfg.head_timeout_ms);
	else if (c->state == CS_BODY)
		c->deadline = loop_now(c->w->loop) + c->w->srv->cfg.body_timeout_ms;
	conn_run(c);
}

static void conn_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct http_conn *c = io->data;
	if (events & LOOP_ERROR) {
		/* Reset or hung up: reported on every turn whatever we asked for, so it
		 * must end the connection now (a held /_/delay answer included). */
		conn_close(c);
		return;
	}
	if (events & LOOP_WRITE) {
		if (!conn_holding(c) && (buf_used(&c->out) || c->rb == RB_FILE || c->rb == RB_GEN))
			c->deadline = loop_now(l) + c->w->srv->cfg.body_timeout_ms;
		conn_run(c);
		return;
	}
	if (events & LOOP_READ)
		conn_read(c);
}

static void conn_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct http_conn *c = t->data;
	uint64_t now = loop_now(l);
	if (now < c->deadline) {
		loop_timer_start(l, t, c->deadline - now);
		return;
	}
	switch (c->state) {
	case CS_SNIFF: sniff_silent(c); return;
	case CS_HEAD:
		if (buf_used(&c->in) && !buf_used(&c->out)) {
			c->t_start = loop_clock_us();
			c->minor = 1;
			snprintf(c->logreq, sizeof(c->logreq), "-");
			resp_error_close(c, 408, "request head not received in time");
			buf_consume(&c->in, buf_used(&c->in));
			request_done(c);
			conn_run(c);
		} else {
			conn_close(c);
		}
		return;
	case CS_BODY:
		if (c->sink == SINK_FILE) {
			log_msg("upload of %s stalled after %llu bytes; the old file is untouched", c->logreq,
			        (unsigned long long)c->body_total);
			fsroot_upload_abort(&c->up);
		}
		c->sink = SINK_NONE;
		c->state = CS_HEAD;
		resp_error_close(c, 408, "request body not received in time");
		request_done(c);
		conn_run(c);
		return;
	case CS_WAIT:
		if (c->rb == RB_DRIP) {
			api_drip(c);
			if (c->rb == RB_NONE)
				request_done(c);
			else
				conn_deadline(c, c->drip_interval_ms);
		} else {
			c->state = CS_HEAD;
			request_done(c);
		}
		conn_run(c);
		return;
	case CS_SEND:
	case CS_LINGER: conn_close(c); return;
	}
}

/* ---- accepting ---- */

static void refuse_overload(int fd)
{
	static const char body[] = "503 Service Unavailable: connection limit (--max-conns) reached\n";
	char msg[512];
	int n = snprintf(msg, sizeof(msg),
	                 "HTTP/1.1 503 Service Unavailable\r\nServer: loopkit/" LOOPKIT_VERSION "\r\n"
	                 "X-Content-Type-Options: nosniff\r\nRetry-After: 1\r\nConnection: close\r\n"
	                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s",
	                 sizeof(body) - 1, body);
	/* Best effort on a fresh socket: its send buffer is empty, so this cannot block. */
	ssize_t r = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)r;
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void accept_cb(struct loop *l, struct loop_io *io, unsigned events);

static void accept_retry_cb(struct loop *l, struct loop_timer *t)
{
	struct http_worker *w = t->data;
	if (w->stopping || w->listen_io.fd >= 0)
		return;
	if (loop_io_start(l, &w->listen_io, w->listen_fd, LOOP_READ, accept_cb, w) < 0)
		loop_timer_start(l, t, EMFILE_RETRY_MS);
}

static void accept_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct http_worker *w = io->data;
	struct http_server *s = w->srv;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Level-triggered epoll would report the listener again at once and
				 * spin: stop watching it and retry on a timer. */
				if (!w->emfile_logged)
					log_msg("out of file descriptors (%s): pausing accept; raise the "
					        "limit "
					        "with ulimit -n",
					        strerror(errno));
				w->emfile_logged = 1;
				loop_io_stop(l, io);
				loop_timer_start(l, &w->accept_timer, EMFILE_RETRY_MS);
			}
			return;
		}
		w->emfile_logged = 0;
		if (atomic_fetch_add(&s->nconns, 1) >= s->cfg.max_conns) {
			atomic_fetch_sub(&s->nconns, 1);
			refuse_overload(fd);
			continue;
		}
		if (!s->cfg.proto_http) {
			ftp_take(w, fd, &peer);
			continue;
		}
		struct http_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			atomic_fetch_sub(&s->nconns, 1);
			close(fd);
			continue;
		}
		/* TCP_NODELAY comes from the listener: Linux copies it to accepted sockets. */
		c->w = w;
		c->file_fd = -1;
		c->up.fd = c->up.dirfd = -1;
		c->peer = peer;
		net_addr_str((struct sockaddr *)&peer, c->peer_str, sizeof(c->peer_str));
		buf_init(&c->in, HTTP_IN_MAX);
		buf_init(&c->out, HTTP_OUT_MAX);
		loop_timer_init(&c->timer, conn_timer_cb, c);
		if (loop_io_start(l, &c->io, fd, LOOP_READ, conn_io_cb, c) < 0) {
			atomic_fetch_sub(&s->nconns, 1);
			close(fd);
			free(c);
			continue;
		}
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		w->nconns++;
		if (s->cfg.proto_ftp) {
			c->state = CS_SNIFF;
			conn_deadline(c, s->cfg.sniff_ms);
		} else {
			c->state = CS_HEAD;
			conn_deadline(c, s->cfg.head_timeout_ms);
		}
	}
}

/* ---- workers and shutdown ---- */

static void grace_cb(struct loop *l, struct loop_timer *t)
{
	struct http_worker *w = t->data;
	while (w->conns)
		conn_close(w->conns);
	ftp_proto_ops.close_all(w->ftp);
	loop_stop(l);
}

static void worker_stop(struct loop *l, void *data)
{
	struct http_worker *w = data;
	if (w->stopping)
		return;
	w->stopping = 1;
	if (w->listen_io.fd >= 0)
		loop_io_stop(l, &w->listen_io);
	/* Closed, not just unwatched: new clients get a refusal at once instead of
	 * waiting in the backlog until we exit. */
	if (w->listen_fd >= 0) {
		close(w->listen_fd);
		w->listen_fd = -1;
	}
	loop_timer_stop(l, &w->accept_timer);
	/* Idle connections go now; busy ones finish their response, then close. */
	struct http_conn *next;
	for (struct http_conn *c = w->conns; c; c = next) {
		next = c->next;
		if ((c->state == CS_HEAD || c->state == CS_SNIFF) && !buf_used(&c->in) && !buf_used(&c->out))
			conn_close(c);
		else
			c->closing = 1;
	}
	ftp_proto_ops.stop(w->ftp);
	if (!w->nconns && !ftp_sessions(w))
		loop_stop(l);
	else
		loop_timer_start(l, &w->grace_timer, w->srv->cfg.grace_ms);
}

static void signal_cb(struct loop *l, int signo, void *data)
{
	struct http_server *s = data;
	if (atomic_exchange(&s->stopping, 1))
		return;
	log_msg("%s: finishing in-flight requests (at most %u ms), then exiting",
	        signo == SIGINT ? "interrupted" : "terminated", s->cfg.grace_ms);
	for (int i = 0; i < s->nworkers; i++)
		loop_wake(s->workers[i]->loop);
}

static void *worker_main(void *arg)
{
	struct http_worker *w = arg;
	if (loop_run(w->loop) < 0)
		log_msg("event loop of thread %d failed: %s", w->id, strerror(errno));
	log_flush(w);
	return NULL;
}

static void worker_free(struct http_worker *w)
{
	if (!w)
		return;
	while (w->conns)
		conn_close(w->conns);
	if (w->ftp)
		ftp_proto_ops.ctx_free(w->ftp);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	files_cache_clear(w);
	buf_free(&w->log);
	loop_free(w->loop);
	free(w);
}

struct http_server *http_server_new(const struct http_config *cfg, char *err, size_t errlen, int *err_errno)
{
	struct http_server *s = calloc(1, sizeof(*s));
	*err_errno = 0;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	log_sink_open(&s->log);
	s->root.fd = -1;
	if (fsroot_init(&s->root, cfg->root, err, errlen) < 0)
		goto fail;
	s->root.dotfiles = cfg->dotfiles;
	s->dirs = dirsnap_cache_new(DIRSNAP_MEM_MAX, DIRSNAP_MAX_ENTRIES);
	if (!s->dirs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->site = (struct proto_site){
	        .root = &s->root,
	        .write = cfg->write,
	        .user = cfg->user,
	        .pass = cfg->pass,
	        .max_body = cfg->max_body,
	        .max_conns = cfg->max_conns,
	        .nconns = &s->nconns,
	        .log = cfg->log == HTTP_LOG_COMMON ? ACCESSLOG_COMMON
	               : cfg->log == HTTP_LOG_JSON ? ACCESSLOG_JSON
	                                           : ACCESSLOG_NONE,
	        .log_sink = &s->log,
	        .dirs = s->dirs,
	};
	s->nworkers = cfg->threads > 0 ? cfg->threads : 1;
	s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers));
	if (!s->workers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	struct sockaddr_storage addr = cfg->addr;
	for (int i = 0; i < s->nworkers; i++) {
		struct http_worker *w = calloc(1, sizeof(*w));
		if (!w) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		s->workers[i] = w;
		w->ino_io.fd = -1;
		w->srv = s;
		w->id = i;
		w->listen_fd = -1;
		w->listen_io.fd = -1;
		w->prng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) ^ (uint64_t)time(NULL);
		buf_init(&w->log, 1 << 20);
		loop_timer_init(&w->accept_timer, accept_retry_cb, w);
		loop_timer_init(&w->grace_timer, grace_cb, w);
		w->loop = loop_new(err, errlen);
		if (!w->loop)
			goto fail;
		files_cache_init(w);
		struct proto_hooks hooks = {.idle = ftp_idle_cb, .note = ftp_note_cb, .arg = w};
		w->ftp = ftp_proto_ops.ctx_new(w->loop, &s->site, &s->cfg.ftp, &hooks, err, errlen);
		if (!w->ftp)
			goto fail;
		w->listen_fd = net_listen((struct sockaddr *)&addr, cfg->addrlen, 4096, s->nworkers > 1, err,
		                          errlen);
		if (w->listen_fd < 0) {
			*err_errno = errno;
			goto fail;
		}
		int one = 1;
		setsockopt(w->listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (i == 0) {
			/* Port 0: the kernel chose; the other threads join that same port. */
			s->port = net_local_port(w->listen_fd);
			if (addr.ss_family == AF_INET)
				((struct sockaddr_in *)&addr)->sin_port = htons(s->port);
			else
				((struct sockaddr_in6 *)&addr)->sin6_port = htons(s->port);
		}
		if (loop_io_start(w->loop, &w->listen_io, w->listen_fd, LOOP_READ, accept_cb, w) < 0 ||
		    loop_wake_init(w->loop, worker_stop, w) < 0) {
			snprintf(err, errlen, "event loop setup: %s", strerror(errno));
			goto fail;
		}
	}
	net_addr_str((struct sockaddr *)&cfg->addr, s->host, sizeof(s->host));
	return s;
fail:
	http_server_free(s);
	return NULL;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

int http_server_run(struct http_server *s)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (loop_signal_init(s->workers[0]->loop, &set, signal_cb, s) < 0) {
		log_msg("signalfd: %s", strerror(errno));
		return -1;
	}
	int started = 1;
	for (int i = 1; i < s->nworkers; i++) {
		if (pthread_create(&s->workers[i]->thread, NULL, worker_main, s->workers[i]) != 0) {
			log_msg("cannot start thread %d; serving with %d", i, started);
			break;
		}
		started++;
	}
	worker_main(s->workers[0]);
	for (int i = 1; i < started; i++)
		pthread_join(s->workers[i]->thread, NULL);
	return 0;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	for (int i = 0; s->workers && i < s->nworkers; i++)
		worker_free(s->workers[i]);
	free(s->workers);
	fsroot_close(&s->root);
	dirsnap_cache_free(s->dirs);
	if (s->log.dropped)
		log_msg("the access log fell behind: %lu bytes of it were dropped", s->log.dropped);
	log_sink_close(&s->log);
	free(s);
}
