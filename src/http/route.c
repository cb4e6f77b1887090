/* route.c - request heads: framing checks, Host policy, login, the handler table, the log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/login.h"
#include "core/net.h"
#include "http/internal.h"
#include "http/route.h"

const struct http_route http_serve_routes[] = {
        {"/_", HTTP_BODY_MEM, api_handle, NULL, NULL},
        {"", HTTP_BODY_UPLOAD, files_handle, files_upload_begin, files_upload_finish},
        {NULL, HTTP_BODY_NONE, NULL, NULL, NULL},
};

const struct http_route *http_route_find(const struct http_route *table, struct http_slice path)
{
	for (const struct http_route *r = table; r->prefix; r++) {
		size_t n = strlen(r->prefix);
		if (path.len >= n && !memcmp(path.p, r->prefix, n) &&
		    (!n || path.len == n || path.p[n] == '/' || r->prefix[n - 1] == '/'))
			return r;
	}
	return NULL;
}

static enum http_method method_of(struct http_slice m)
{
	static const struct {
		const char *name;
		enum http_method m;
	} t[] = {
	        {"GET", M_GET},         {"HEAD", M_HEAD},       {"POST", M_POST},   {"PUT", M_PUT},
	        {"DELETE", M_DELETE},   {"OPTIONS", M_OPTIONS}, {"PATCH", M_PATCH}, {"TRACE", M_TRACE},
	        {"CONNECT", M_CONNECT}, {"MKCOL", M_MKCOL},
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

/* Is this Host (or absolute-form authority) one that names this server? IP literals
 * cannot be rebound by DNS and *.localhost never leaves the machine (RFC 6761), so
 * both are safe; any other name must be given with --allow-host. */
/* Is v a syntactically valid host[:port] (RFC 3986 reg-name, IPv4, or [IPv6])? Spaces,
 * lists and unbalanced brackets are not. */
static int host_syntax_ok(struct http_slice v)
{
	const char *name;
	size_t nlen;
	if (http_authority_host(v.p, v.len, &name, &nlen) < 0)
		return 0;
	for (size_t i = 0; i < v.len; i++) {
		unsigned char ch = (unsigned char)v.p[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
			continue;
		if (!ch || !strchr("-._~!$&'()*+,;=%:[]", ch))
			return 0;
	}
	return 1;
}

static int host_allowed(const struct http_config *cfg, const char *h, size_t n)
{
	const char *name;
	size_t nlen;
	if (http_authority_host(h, n, &name, &nlen) < 0)
		return 0;
	for (size_t i = 0; i < cfg->nallow_hosts; i++) {
		const char *a = cfg->allow_hosts[i];
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
	const struct http_header *authorization;
};

/* Checks the head against RFC 9112 framing rules and our Host policy. Returns LK_E_OK,
 * or the error to answer with. */
static enum lk_err head_check(struct http_conn *c, const struct http_request *req, struct http_reqinfo *ri,
                              struct head_facts *f)
{
	const struct http_config *cfg = c->x->cfg;
	const struct http_header *host = NULL;
	int nte = 0, conn_close_tok = 0, conn_keep = 0;
	enum lk_err policy = LK_E_OK; /* a refusal that leaves the framing sound: after the scan */
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		struct http_slice n = h->name, v = h->value;
		switch (n.len) {
		case 4:
			if (http_slice_ieq(n, "host")) {
				if (host)
					return LK_E_H_TWO_HOSTS;
				host = h;
			}
			break;
		case 6:
			if (http_slice_ieq(n, "expect")) {
				if (!http_slice_ieq(v, "100-continue"))
					policy = LK_E_H_EXPECT;
				else
					f->expect_continue = 1;
			} else if (http_slice_ieq(n, "accept")) {
				/* JSON when named and preferred to HTML: by q-value, then by being
				 * named where HTML is reached through a wildcard (axios sends JSON,
				 * text and any type). Most never name JSON: then nothing is parsed,
				 * and each type at most once. */
				int sj = 0, sh = 0, qj = -1, qh = -1, named = 0;
				for (size_t k = 0; k + 4 <= v.len && !named; k++)
					named = !strncasecmp(v.p + k, "json", 4);
				if (named)
					qj = http_accept_q(v, "application/json", &sj);
				int json_named = qj > 0 && sj == 3; /* 3: named exactly, no wildcard */
				if (json_named)
					qh = http_accept_q(v, "text/html", &sh);
				ri->accept_json = json_named && (qj > qh || (qj == qh && sj > sh));
			}
			break;
		case 10:
			if (http_slice_ieq(n, "connection")) {
				conn_close_tok |= http_list_has(v, "close");
				conn_keep |= http_list_has(v, "keep-alive");
			}
			break;
		case 13:
			if (http_slice_ieq(n, "authorization"))
				f->authorization = h;
			break;
		case 14:
			if (http_slice_ieq(n, "content-length")) {
				uint64_t x = 0;
				if (!v.len || v.len > 18)
					return LK_E_H_BAD_LENGTH;
				for (size_t k = 0; k < v.len; k++) {
					if (v.p[k] < '0' || v.p[k] > '9')
						return LK_E_H_BAD_LENGTH;
					x = x * 10 + (uint64_t)(v.p[k] - '0');
				}
				if (f->has_cl && x != f->cl)
					return LK_E_H_TWO_LENGTHS;
				f->has_cl = 1;
				f->cl = x;
			} else if (http_slice_ieq(n, "sec-fetch-site")) {
				ri->cross_site =
				        !http_slice_ieq(v, "same-origin") && !http_slice_ieq(v, "none");
			}
			break;
		case 17:
			if (http_slice_ieq(n, "transfer-encoding")) {
				nte++;
				if (!http_slice_ieq(v, "chunked"))
					return nte > 1 ? LK_E_H_TE_TWICE : LK_E_H_TE_UNKNOWN;
				f->chunked = 1;
			}
			break;
		}
	}
	if (nte > 1)
		return LK_E_H_TE_TWICE;
	if (nte && f->has_cl)
		return LK_E_H_TE_AND_LENGTH;
	if (nte && req->minor == 0)
		return LK_E_H_TE_HTTP10;
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
		if (memchr(authority.p, '@', authority.len))
			return LK_E_H_USERINFO;
		if (!authority.len)
			return LK_E_H_BAD_HOST; /* "http:///path": an http URI must name a host */
	} else if (t.len == 1 && t.p[0] == '*') {
		if (ri->method != M_OPTIONS)
			return LK_E_H_STAR_TARGET;
	} else if (ri->method == M_CONNECT) {
		return LK_E_H_CONNECT;
	} else if (!t.len || t.p[0] != '/') {
		return LK_E_H_BAD_TARGET;
	}
	if (req->minor == 1 && !host)
		return LK_E_H_NO_HOST;
	if (host && host->value.len && !host_syntax_ok(host->value))
		return LK_E_H_BAD_HOST; /* RFC 9112 3.2: an invalid Host value is a 400 */
	if (authority.p && authority.len && !host_syntax_ok(authority))
		return LK_E_H_BAD_HOST;
	if (!authority.p && host)
		authority = host->value;
	if (authority.p && !host_allowed(cfg, authority.p, authority.len))
		policy = LK_E_H_HOST_DENIED;
	if (authority.p)
		ri->authority = authority;
	const char *q = memchr(t.p, '?', t.len);
	const char *hash = memchr(t.p, '#', t.len);
	const char *pend = q ? q : (hash ? hash : t.p + t.len);
	ri->path.p = t.p;
	ri->path.len = (size_t)(pend - t.p);
	if (q) {
		ri->query.p = q + 1;
		ri->query.len = (size_t)((hash && hash > q ? hash : t.p + t.len) - q - 1);
	}
	return policy;
}

/* Refusals of a request whose framing is sound: the connection may stay open. */
static int is_policy(enum lk_err e)
{
	return e == LK_E_H_HOST_DENIED || e == LK_E_H_EXPECT;
}

/* ---- origins (CORS) ---- */

/* The configured --cors-origin that equals origin o, or NULL. "*" matches any. */
static const char *cors_match(const struct http_config *cfg, struct http_slice o)
{
	for (size_t i = 0; i < cfg->ncors_origins; i++) {
		const char *a = cfg->cors_origins[i];
		if (!strcmp(a, "*") || (strlen(a) == o.len && !strncasecmp(a, o.p, o.len)))
			return a;
	}
	return NULL;
}

/* Splits an authority host[:port] into its host (without brackets) and its port (80
 * when not given). Returns 0, or -1 when it is not one. */
static int authority_split(const char *h, size_t n, struct http_slice *host, unsigned *port)
{
	const char *name, *end = h + n;
	size_t nlen;
	if (http_authority_host(h, n, &name, &nlen) < 0)
		return -1;
	const char *p = name + nlen < end && name[nlen] == ']' ? name + nlen + 1 : name + nlen;
	*host = (struct http_slice){name, nlen};
	*port = 80;
	if (p == end)
		return 0;
	if (*p != ':' || end - p > 6)
		return -1;
	unsigned v = 0;
	for (p++; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > 65535)
		return -1;
	if (p[-1] != ':')
		*port = v;
	return 0;
}

/* Is origin o this server itself, a page it served? Its scheme, host and port must be
 * what this request reached the server as: the authority it names (Host, already
 * checked against rebinding). Another address with our port (127.0.0.2:PORT, [::1]:PORT,
 * a name) is another origin: another user's server may hold it. */
static int own_origin(struct http_slice o, struct http_slice authority)
{
	struct http_slice oh, ah;
	unsigned op, ap;
	if (!authority.len || o.len <= 7 || strncasecmp(o.p, "http://", 7))
		return 0;
	if (authority_split(o.p + 7, o.len - 7, &oh, &op) < 0 ||
	    authority_split(authority.p, authority.len, &ah, &ap) < 0)
		return 0;
	return op == ap && oh.len == ah.len && !strncasecmp(oh.p, ah.p, oh.len);
}

/* Sets ri->origin_ok and c->cors_origin from the request's Origin header. */
static void check_origin(struct http_conn *c, struct http_reqinfo *ri)
{
	const struct http_header *o = http_req_header(ri, "origin");
	c->cors_origin = NULL;
	if (!o || http_slice_ieq(o->value, "null")) {
		ri->origin_ok = !o; /* "null": a sandboxed page or a file:// one, never ours */
		return;
	}
	const char *m = cors_match(c->x->cfg, o->value);
	if (m) {
		/* Echo the origin itself (a "*" row matches any, but "*" is not echoed as
		 * such: the answer names the one origin that asked). */
		snprintf(c->cors_echo, sizeof(c->cors_echo), "%.*s",
		         (int)(o->value.len < 255 ? o->value.len : 255), o->value.p);
		c->cors_origin = c->cors_echo;
		ri->origin_ok = 1;
		return;
	}
	ri->origin_ok = own_origin(o->value, ri->authority);
}

/* ---- login (--user), for every request when the server requires one ---- */

static int b64_val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

enum login { LOGIN_OK, LOGIN_MISSING, LOGIN_WRONG };

/* Decodes Basic credentials and asks the gate whether they are the login (in
 * constant time; a malformed header is a wrong login, not a missing one). */
static enum login check_login(const struct login_gate *g, const struct http_header *au)
{
	char dec[512];
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	if (!au)
		return LOGIN_MISSING;
	struct http_slice v = au->value;
	if (v.len < 6 || strncasecmp(v.p, "Basic ", 6))
		return LOGIN_WRONG;
	for (size_t i = 6; i < v.len && v.p[i] != '='; i++) {
		int x = b64_val((unsigned char)v.p[i]);
		if (x < 0 || o >= sizeof(dec))
			return LOGIN_WRONG;
		acc = (acc << 6) | (uint32_t)x;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dec[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	const char *colon = memchr(dec, ':', o);
	if (!colon)
		return LOGIN_WRONG;
	size_t ulen = (size_t)(colon - dec);
	return login_gate_check(g, dec, ulen, colon + 1, o - ulen - 1) ? LOGIN_OK : LOGIN_WRONG;
}

/* The login of a request on a server that requires one. Returns 1 when the request
 * goes on; 0 when it was answered (401, 503) or waits for its turn at the gate (the
 * head stays in c->in and is handled again at the turn). */
static int route_login(struct http_conn *c, const struct head_facts *f, int has_body, size_t headlen,
                       int turn)
{
	struct login_gate *g = c->x->site->login;
	enum login lg = check_login(g, f->authorization);
	/* No credentials tell nothing: asked for at once. Credentials already proven on
	 * this connection pass; any others go through the gate, which answers right and
	 * wrong ones alike while guessing is throttled. */
	if (lg != LOGIN_MISSING && !turn && !(lg == LOGIN_OK && c->login_ok)) {
		uint64_t at = 0;
		unsigned retry = 0;
		enum login_pass p = login_gate_enter(g, lg == LOGIN_OK, loop_clock_us(), &at, &retry);
		if (p == LOGIN_WAIT) {
			/* Not read meanwhile; the head is parsed again at the turn, and
			 * whether the connection stays open is decided then. */
			uint64_t now = loop_now_us(c->x->loop);
			c->closing = 0;
			c->login_wait = 1;
			c->state = CS_WAIT;
			conn_deadline(c, at > now ? (at - now + 999) / 1000 : 0);
			return 0;
		}
		if (p == LOGIN_REFUSED) {
			char ra[16];
			snprintf(ra, sizeof(ra), "%u", retry);
			if (has_body)
				c->closing = c->linger = 1;
			buf_consume(&c->in, headlen);
			resp_error_h(c, LK_E_ELOGINBUSY, NULL, "Retry-After", ra);
			conn_request_done(c);
			return 0;
		}
	}
	if (lg != LOGIN_OK) {
		/* The body (if any) stays unread: answer, then close. */
		if (has_body)
			c->closing = c->linger = 1;
		buf_consume(&c->in, headlen);
		resp_error(c, lg == LOGIN_MISSING ? LK_E_ENEEDLOGIN : LK_E_ELOGIN, NULL);
		conn_request_done(c);
		return 0;
	}
	c->login_ok = 1;
	c->user = login_gate_user(g);
	return 1;
}

/* ---- dispatch ---- */

static void dispatch(struct http_conn *c, const struct http_route *route, struct http_reqinfo *ri)
{
	int mem = route->body == HTTP_BODY_MEM;
	/* An answer made in memory waits while the server holds HTTP_MEM_MAX of them (a
	 * body brought its room along: its answer is made). */
	if (mem && !c->mem_reserve && !conn_mem_room(c, 0)) {
		conn_mem_refuse(c, 0);
		conn_request_done(c);
		return;
	}
	route->handle(c, ri);
	if (c->shut)
		return;
	if (mem && buf_used(&c->out)) {
		c->mem_out = 1;
		c->mem_reserve = 0;
		conn_mem_sync(c);
	}
	if (c->rb == RB_FILE || (c->rb == RB_GEN && !c->gen_interval))
		c->state = CS_SEND;
	else if (c->state != CS_WAIT && c->rb == RB_NONE)
		conn_request_done(c);
}

/* A copy of `s` for the log, cut to fit with "..." at the cut. */
static void log_copy(char *dst, size_t size, struct http_slice s)
{
	if (s.len < size) {
		memcpy(dst, s.p, s.len);
		dst[s.len] = 0;
	} else {
		memcpy(dst, s.p, size - 4);
		memcpy(dst + size - 4, "...", 4);
	}
}

/* A header's value for the log, at most HTTP_LOG_AGENT_MAX bytes; NULL when absent. */
static char *log_header(const struct http_request *req, const char *name)
{
	const struct http_header *h = http_find_header(req, name);
	if (!h)
		return NULL;
	/* The value is not NUL-terminated (it lies in the read buffer): copied by length. */
	size_t n = h->value.len < HTTP_LOG_AGENT_MAX ? h->value.len : HTTP_LOG_AGENT_MAX;
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, h->value.p, n);
		s[n] = 0;
	}
	return s;
}

static void log_names(struct http_conn *c, const struct http_request *req)
{
	log_copy(c->logmethod, sizeof(c->logmethod), req->method);
	log_copy(c->logtarget, sizeof(c->logtarget), req->target);
	if (accesslog_wants_agent(c->x->log.mode)) {
		free(c->log_ref);
		free(c->log_ua);
		c->log_ref = log_header(req, "referer");
		c->log_ua = log_header(req, "user-agent");
	}
}

/* Ends a request with an error answer and closes the connection after it. */
/* The detail of a head's refusal: for a Host refused, the option that would accept it. */
static const char *refusal_detail(const struct http_conn *c, enum lk_err e, char *buf, size_t len)
{
	const char *flag = c->x->cfg->allow_hosts_flag;
	if (e != LK_E_H_HOST_DENIED || !flag)
		return NULL;
	snprintf(buf, len, " (or start the server with %s NAME)", flag);
	return buf;
}

static void head_fail(struct http_conn *c, enum lk_err e, size_t headlen)
{
	char hint[64];
	resp_error_close(c, e, refusal_detail(c, e, hint, sizeof hint));
	buf_consume(&c->in, headlen);
	conn_request_done(c);
}

int http_is_preflight(const struct http_reqinfo *ri)
{
	return ri->method == M_OPTIONS && http_req_header(ri, "origin") &&
	       http_req_header(ri, "access-control-request-method");
}

void route_head(struct http_conn *c, const struct http_request *req, size_t headlen)
{
	const struct proto_site *site = c->x->site;
	struct http_reqinfo ri;
	struct head_facts f;
	char lim[32];
	memset(&ri, 0, sizeof(ri));
	ri.req = req;
	ri.method = method_of(req->method);
	/* A head handled again at its turn at the login gate keeps its start (and the
	 * turn holds for this head only, whatever happens to it). */
	int login_turn = c->login_turn;
	c->login_turn = 0;
	if (!login_turn)
		c->t_start = loop_clock_us();
	c->minor = req->minor;
	c->head_only = ri.method == M_HEAD;
	c->status = 0;
	c->body_bytes = 0;
	log_names(c, req);
	if (c->x->hooks.note && c->peer.pid > 0) {
		/* A client that sends HTTP is not an FTP-only one (the sniffer learns). */
		c->x->hooks.note(c->x->hooks.arg, &c->peer, PROTO_NOTE_HTTP);
		c->peer.pid = -1; /* said once per connection */
	}

	enum lk_err e = head_check(c, req, &ri, &f);
	int has_body = f.chunked || (f.has_cl && f.cl > 0);
	if (e != LK_E_OK && is_policy(e) && !has_body) {
		/* A refusal of a well-framed request: the next one may follow. */
		char hint[64];
		c->closing = !f.keepalive || c->x->stopping;
		buf_consume(&c->in, headlen);
		resp_error(c, e, refusal_detail(c, e, hint, sizeof hint));
		conn_request_done(c);
		return;
	}
	if (e != LK_E_OK) {
		head_fail(c, e, headlen);
		return;
	}
	c->closing = !f.keepalive || c->x->stopping;
	check_origin(c, &ri);
	if (!ri.origin_ok && (ri.method == M_PUT || ri.method == M_DELETE || ri.method == M_MKCOL)) {
		/* A write asked by a page of another origin: never, unless that origin was
		 * named with --cors-origin (browsers preflight these, but a write must not
		 * depend on the browser doing so). */
		if (has_body)
			c->closing = c->linger = 1;
		buf_consume(&c->in, headlen);
		resp_error(c, LK_E_H_CROSS_ORIGIN_WRITE, NULL);
		conn_request_done(c);
		return;
	}
	if (site->login && !http_is_preflight(&ri) && !route_login(c, &f, has_body, headlen, login_turn))
		return;
	const struct http_route *route = http_route_find(c->x->cfg->routes, ri.path);
	/* Consumed before dispatch: the slices stay valid (nothing reads into c->in
	 * until the handler returns) and conn_request_done() sees the true leftover. */
	const char *head_start = buf_start(&c->in);
	buf_consume(&c->in, headlen);
	if (!route) {
		resp_error(c, LK_E_ENOENT, NULL);
		if (has_body)
			c->closing = c->linger = 1;
		conn_request_done(c);
		return;
	}
	if (!has_body) {
		dispatch(c, route, &ri);
		return;
	}
	c->chunked = f.chunked;
	memset(&c->chunk, 0, sizeof(c->chunk));
	c->body_left = f.cl;
	c->body_total = 0;
	c->route = route;
	int wanted = route->body == HTTP_BODY_MEM ||
	             (route->body == HTTP_BODY_UPLOAD && ri.method == M_PUT && site->write);
	if (!wanted && !f.chunked && f.cl <= HTTP_DISCARD_MAX) {
		/* Nobody wants this small body: read it and drop it, then answer, and the
		 * connection goes on. */
		c->head = malloc(headlen);
		if (!c->head) {
			resp_error_close(c, LK_E_ENOMEM, NULL);
			conn_request_done(c);
			return;
		}
		memcpy(c->head, head_start, headlen);
		c->head_len = headlen;
		c->sink = SINK_DISCARD;
	} else if (route->body == HTTP_BODY_MEM) {
		if (f.has_cl && f.cl > HTTP_API_MAX_BODY) {
			resp_error_close(c, LK_E_H_API_BODY_LARGE,
			                 lk_size_text(HTTP_API_MAX_BODY, lim, sizeof(lim)));
			conn_request_done(c);
			return;
		}
		/* Counted before it comes, with room for the answer made from it: past
		 * HTTP_MEM_MAX, a 503 now rather than a body read for nothing. */
		size_t need = (size_t)f.cl * (1 + HTTP_API_ANSWER_RATIO);
		if (f.has_cl && !conn_mem_room(c, need)) {
			conn_mem_refuse(c, 1);
			conn_request_done(c);
			return;
		}
		c->head = malloc(headlen);
		if (!c->head) {
			resp_error_close(c, LK_E_ENOMEM, NULL);
			conn_request_done(c);
			return;
		}
		memcpy(c->head, head_start, headlen);
		c->head_len = headlen;
		buf_init(&c->body, HTTP_API_MAX_BODY);
		c->sink = SINK_MEM;
		c->mem_reserve = f.has_cl ? need : 0;
		conn_mem_sync(c);
	} else if (route->body == HTTP_BODY_UPLOAD && ri.method == M_PUT && site->write) {
		if (http_find_header(req, "content-range")) {
			/* RFC 9110 14.5: a server must refuse it, not store the part as the file */
			resp_error_close(c, LK_E_H_PUT_RANGE, NULL);
			conn_request_done(c);
			return;
		}
		if (f.has_cl && f.cl > site->max_body) {
			resp_error_close(c, LK_E_ETOOBIG, lk_size_text(site->max_body, lim, sizeof(lim)));
			conn_request_done(c);
			return;
		}
		c->up = calloc(1, sizeof(*c->up));
		if (!c->up) {
			resp_error_close(c, LK_E_ENOMEM, NULL);
			conn_request_done(c);
			return;
		}
		c->up->fd = c->up->dirfd = -1;
		/* A refusal leaves the body unread: the connection closes after it, and its
		 * answer says so (Connection: close). */
		int was_closing = c->closing;
		c->closing = 1;
		if (route->upload_begin(c, &ri, c->up) < 0) {
			c->linger = 1;
			conn_request_done(c);
			return;
		}
		c->closing = was_closing;
		c->sink = SINK_FILE;
	} else {
		/* Nobody wants this body and it is large or chunked: answer, then close
		 * rather than read it. */
		c->closing = 1;
		c->linger = 1;
		dispatch(c, route, &ri);
		return;
	}
	if (f.expect_continue && c->minor == 1)
		buf_printf(&c->out, "HTTP/1.1 %d %s\r\n\r\n", HTTP_CONTINUE, lk_http_reason(HTTP_CONTINUE));
	c->state = CS_BODY;
	conn_deadline(c, c->x->cfg->body_timeout_ms);
}

void route_body_done(struct http_conn *c)
{
	c->state = CS_HEAD;
	if (c->sink == SINK_FILE) {
		c->sink = SINK_NONE;
		c->route->upload_finish(c, c->up, 0);
		conn_request_done(c);
		return;
	}
	/* Re-parse the saved head: its slices must point into memory that outlives the
	 * reads that brought the body. */
	struct http_request *req = malloc(sizeof(*req));
	struct http_reqinfo ri;
	struct head_facts f;
	if (!req) {
		resp_error_close(c, LK_E_ENOMEM, NULL);
		conn_request_done(c);
		return;
	}
	memset(&ri, 0, sizeof(ri));
	if (http_parse_request(c->head, c->head_len, req, 0) <= 0) {
		free(req);
		resp_error_close(c, LK_E_H_SAVED_HEAD, NULL);
		conn_request_done(c);
		return;
	}
	ri.req = req;
	ri.method = method_of(req->method);
	head_check(c, req, &ri, &f);
	int discarded = c->sink == SINK_DISCARD;
	ri.body = discarded ? NULL : buf_start(&c->body);
	ri.body_len = discarded ? 0 : buf_used(&c->body);
	if (!ri.body && !discarded)
		ri.body = "";
	c->sink = SINK_NONE;
	dispatch(c, c->route, &ri);
	free(req);
}

void route_log(struct http_conn *c)
{
	struct accesslog_rec r = {
	        .remote = c->peer.addr_str,
	        .user = c->user,
	        .method = c->logmethod[0] ? c->logmethod : NULL,
	        .target = c->logtarget,
	        .proto = c->minor ? "HTTP/1.1" : "HTTP/1.0",
	        .status = c->status,
	        .bytes = c->body_bytes,
	        .us = loop_clock_us() - c->t_start,
	        .referer = c->log_ref,
	        .ua = c->log_ua,
	};
	accesslog_write(&c->x->log, &r);
}

/* ---- OPTIONS ---- */

/* Preflights. A named origin (--cors-origin) may use every method; with bare --cors any
 * origin may read (GET, HEAD, POST: /_/ echoes) and nothing else. Private-network
 * access goes to named origins, and to any origin only while nothing can be
 * written: a page on the Internet must never be let into a writable server. Behind a
 * login (--user) a preflight, which carries no credentials and so is answered without
 * them, says nothing that depends on --write: no Allow, private-network access to
 * named origins only. */
void http_options(struct http_conn *c, const struct http_reqinfo *ri)
{
	http_options_allow(c, ri, http_allow(c->x));
}

void http_options_allow(struct http_conn *c, const struct http_reqinfo *ri, const char *allow)
{
	const struct http_config *cfg = c->x->cfg;
	const struct http_header *acrm = http_req_header(ri, "access-control-request-method");
	const struct http_header *origin = http_req_header(ri, "origin");
	int named = c->cors_origin != NULL;
	int unproven = c->x->site->login && http_is_preflight(ri);
	resp_start(c, HTTP_NO_CONTENT);
	if (!unproven)
		resp_header(c, "Allow", allow);
	if ((cfg->cors || named) && acrm && origin) {
		resp_header(c, "Access-Control-Allow-Methods",
		            named ? "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE, MKCOL"
		                  : "GET, HEAD, OPTIONS, POST");
		const struct http_header *acrh = http_req_header(ri, "access-control-request-headers");
		if (acrh)
			resp_headerf(c, "Access-Control-Allow-Headers", "%.*s", (int)acrh->value.len,
			             acrh->value.p);
		resp_header(c, "Access-Control-Max-Age", "86400");
		const struct http_header *pna = http_req_header(ri, "access-control-request-private-network");
		if (pna && http_slice_ieq(pna->value, "true") && (named || (!c->x->site->write && !unproven)))
			resp_header(c, "Access-Control-Allow-Private-Network", "true");
	}
	resp_end_headers(c, NULL, 0, 0);
}
