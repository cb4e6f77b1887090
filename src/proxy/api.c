/* api.c - the control API, toxiproxy's routes and JSON, on the HTTP engine: loopback peers only. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/net.h"
#include "core/strparse.h"
#include "diag/reach.h"
#include "http/resp.h"
#include "http/route.h"
#include "proxy/internal.h"
#include "proxy/jin.h"

#define API_MAX_CONNS 64                /* control connections at once */
#define API_OUT_MAX   (4 * 1024 * 1024) /* the largest JSON answer (every proxy with every toxic) */

static struct proxy_server *server_of(struct http_conn *c)
{
	const struct http_config *hc = http_ctx_config(http_conn_ctx(c));
	return (struct proxy_server *)(void *)((char *)hc - offsetof(struct proxy_server, hc));
}

static void send_json(struct http_conn *c, int status, struct buf *b)
{
	resp_start(c, status);
	resp_send_mem(c, "application/json", buf_start(b) ? buf_start(b) : "", buf_used(b));
	buf_free(b);
}

/* An error as toxiproxy sends it: {"error": "...", "status": N}. */
static void send_err(struct http_conn *c, enum lk_err e, const char *detail)
{
	struct buf b;
	buf_init(&b, 4096);
	int status = lk_error_json(&b, e, detail, 0);
	send_json(c, status, &b);
}

static void send_no_content(struct http_conn *c)
{
	resp_start(c, HTTP_NO_CONTENT);
	resp_end_headers(c, NULL, 0, 0);
}

/* The request body as JSON (an empty body is an error, as for toxiproxy's decoder). */
static struct jin *body_json(struct http_conn *c, const struct http_reqinfo *ri)
{
	char why[256];
	if (!ri->body_len) {
		send_err(c, LK_E_P_BAD_BODY, "EOF (the body is empty)");
		return NULL;
	}
	if (jin_need(why, sizeof why) < 0) {
		send_err(c, LK_E_ENOLIB, why);
		return NULL;
	}
	struct jin *v = jin_parse(ri->body, ri->body_len, why, sizeof why);
	if (!v)
		send_err(c, LK_E_P_BAD_BODY, why);
	return v;
}

static void send_proxy(struct http_conn *c, int status, const struct proxy *p)
{
	struct buf b;
	struct json j;
	buf_init(&b, API_OUT_MAX);
	json_init(&j, &b, 0);
	proxy_json(&j, p);
	buf_puts(&b, "\n");
	send_json(c, status, &b);
}

static void send_toxic(struct http_conn *c, const struct toxic *t)
{
	struct buf b;
	struct json j;
	buf_init(&b, 64 * 1024);
	json_init(&j, &b, 0);
	toxic_json(&j, t);
	buf_puts(&b, "\n");
	send_json(c, HTTP_OK, &b);
}

/* The path's segments after the route: /proxies/NAME/toxics/TOXIC, percent-decoded. */
struct api_path {
	size_t n;
	char seg[4][PROXY_NAME_MAX * 3];
};

static int split_path(struct http_slice path, struct api_path *ap)
{
	size_t i = 0;
	ap->n = 0;
	while (i < path.len) {
		while (i < path.len && path.p[i] == '/')
			i++;
		if (i == path.len)
			break;
		size_t s = i;
		while (i < path.len && path.p[i] != '/')
			i++;
		if (ap->n == 4)
			return -1;
		ssize_t k = http_percent_decode(path.p + s, i - s, ap->seg[ap->n], sizeof ap->seg[0] - 1, 0);
		if (k < 0)
			return -1;
		ap->seg[ap->n++][k] = 0;
	}
	return 0;
}

/* ---- the handlers: one per (shape of path, method) ---- */

struct api_req {
	struct http_conn *c;
	const struct http_reqinfo *ri;
	struct proxy_server *s;
	struct proxy *p; /* /proxies/NAME... */
	struct toxic *t; /* .../toxics/TOXIC */
};

static void proxy_index(struct api_req *a)
{
	struct buf b;
	struct json j;
	buf_init(&b, API_OUT_MAX);
	json_init(&j, &b, 0);
	json_obj_begin(&j);
	for (size_t i = 0; i < a->s->nproxies; i++) {
		json_key(&j, a->s->proxies[i]->name);
		proxy_json(&j, a->s->proxies[i]);
	}
	json_obj_end(&j);
	buf_puts(&b, "\n");
	send_json(a->c, HTTP_OK, &b);
}

static const char *str_field(const struct jin *o, const char *k, int *bad)
{
	const struct jin *v = jin_get(o, k);
	if (!v || jin_is_null(v))
		return NULL;
	if (!jin_is_string(v)) {
		*bad = 1;
		return NULL;
	}
	return jin_str(v);
}

static void proxy_create_h(struct api_req *a)
{
	struct jin *o = body_json(a->c, a->ri);
	char why[PROXY_ERR_MAX];
	int bad = 0;
	if (!o)
		return;
	const char *name = str_field(o, "name", &bad), *listen = str_field(o, "listen", &bad),
	           *up = str_field(o, "upstream", &bad);
	const struct jin *en = jin_get(o, "enabled");
	if (!jin_is_object(o) || bad || (en && !jin_is_bool(en))) {
		send_err(a->c, LK_E_P_BAD_BODY, "name, listen and upstream are strings, enabled a boolean");
	} else if (!name || !name[0]) {
		send_err(a->c, LK_E_P_MISSING_FIELD, "name");
	} else if (!up || !up[0]) {
		send_err(a->c, LK_E_P_MISSING_FIELD, "upstream");
	} else {
		struct proxy *p;
		enum lk_err e = proxy_create(a->s, name, listen ? listen : "", up, en ? jin_is_true(en) : 1,
		                             &p, why, sizeof why);
		if (e != LK_E_OK)
			send_err(a->c, e, why);
		else
			send_proxy(a->c, HTTP_CREATED, p);
	}
	jin_free(o);
}

static void proxy_show(struct api_req *a)
{
	send_proxy(a->c, HTTP_OK, a->p);
}

static void proxy_update_h(struct api_req *a)
{
	struct jin *o = body_json(a->c, a->ri);
	int bad = 0;
	if (!o)
		return;
	const char *listen = str_field(o, "listen", &bad), *up = str_field(o, "upstream", &bad);
	const struct jin *en = jin_get(o, "enabled");
	if (!jin_is_object(o) || bad || (en && !jin_is_bool(en))) {
		send_err(a->c, LK_E_P_BAD_BODY, "listen and upstream are strings, enabled a boolean");
	} else {
		char why[PROXY_ERR_MAX];
		enum lk_err e =
		        proxy_update(a->p, listen, up, en ? jin_is_true(en) : a->p->enabled, why, sizeof why);
		if (e != LK_E_OK)
			send_err(a->c, e, why);
		else
			send_proxy(a->c, HTTP_OK, a->p);
	}
	jin_free(o);
}

static void proxy_delete_h(struct api_req *a)
{
	proxy_delete(a->p);
	send_no_content(a->c);
}

static void toxic_index(struct api_req *a)
{
	struct buf b;
	struct json j;
	buf_init(&b, API_OUT_MAX);
	json_init(&j, &b, 0);
	json_arr_begin(&j);
	for (int d = PROXY_UP; d <= PROXY_DOWN; d++)
		for (size_t i = 0; i < a->p->ntoxics; i++)
			if ((int)a->p->toxics[i]->dir == d)
				toxic_json(&j, a->p->toxics[i]);
	json_arr_end(&j);
	buf_puts(&b, "\n");
	send_json(a->c, HTTP_OK, &b);
}

static void toxic_create_h(struct api_req *a)
{
	struct jin *o = body_json(a->c, a->ri);
	char why[512] = "";
	struct toxic t, *made;
	if (!o)
		return;
	enum lk_err e = toxic_from_json(&t, o, 0, why, sizeof why);
	if (e == LK_E_OK) {
		e = proxy_toxic_add(a->p, &t, &made);
		if (e == LK_E_P_LIMIT)
			snprintf(why, sizeof why, "at most %d toxics on a proxy", PROXY_MAX_TOXICS);
	}
	if (e != LK_E_OK)
		send_err(a->c, e, why);
	else
		send_toxic(a->c, made);
	jin_free(o);
}

static void toxic_show(struct api_req *a)
{
	send_toxic(a->c, a->t);
}

static void toxic_update_h(struct api_req *a)
{
	struct jin *o = body_json(a->c, a->ri);
	char why[512] = "";
	if (!o)
		return;
	struct toxic t = *a->t;
	enum lk_err e = toxic_from_json(&t, o, 1, why, sizeof why);
	if (e != LK_E_OK) {
		send_err(a->c, e, why);
	} else {
		memcpy(a->t->num, t.num, sizeof t.num);
		memcpy(a->t->str, t.str, sizeof t.str);
		a->t->toxicity = t.toxicity;
		proxy_toxic_changed(a->p, a->t);
		send_toxic(a->c, a->t);
	}
	jin_free(o);
}

static void toxic_delete_h(struct api_req *a)
{
	proxy_toxic_remove(a->p, a->t);
	send_no_content(a->c);
}

/* Path depth (segments after /proxies), method, handler: the /proxies tree. */
struct api_row {
	size_t depth;
	enum http_method m;
	void (*fn)(struct api_req *a);
};

static const struct api_row proxy_rows[] = {
        {1, M_GET, proxy_index},     {1, M_POST, proxy_create_h},  {2, M_GET, proxy_show},
        {2, M_POST, proxy_update_h}, {2, M_PATCH, proxy_update_h}, {2, M_DELETE, proxy_delete_h},
        {3, M_GET, toxic_index},     {3, M_POST, toxic_create_h},  {4, M_GET, toxic_show},
        {4, M_POST, toxic_update_h}, {4, M_PATCH, toxic_update_h}, {4, M_DELETE, toxic_delete_h},
};

static const char *const allow_of_depth[] = {"", "GET, POST", "GET, POST, PATCH, DELETE", "GET, POST",
                                             "GET, POST, PATCH, DELETE"};

/* Refuses other local users: on loopback everyone is 127.0.0.1, and whoever drives
 * the API can point the owner's proxies (and the credentials they carry) anywhere.
 * The peer's uid was found at accept (api_conn). And, as toxiproxy does, browsers (a
 * page could otherwise drive 127.0.0.1:8474). */
static int refuse_caller(struct http_conn *c, const struct http_reqinfo *ri)
{
	long uid = http_conn_peer_uid(c);
	if (uid != 0 && uid != (long)geteuid()) {
		char d[128];
		if (uid < 0)
			snprintf(d, sizeof d,
			         "the user of your connection cannot be established (sock_diag)");
		else
			snprintf(d, sizeof d, "your connection belongs to uid %ld, the proxy runs as uid %ld",
			         uid, (long)geteuid());
		send_err(c, LK_E_P_OTHER_USER, d);
		return 1;
	}
	const struct http_header *ua = http_req_header(ri, "user-agent");
	if (ua && ua->value.len >= 8 && !memcmp(ua->value.p, "Mozilla/", 8)) {
		send_err(c, LK_E_P_BROWSER, NULL);
		return 1;
	}
	return 0;
}

static void h_proxies(struct http_conn *c, const struct http_reqinfo *ri)
{
	struct api_path ap;
	struct api_req a = {c, ri, server_of(c), NULL, NULL};
	if (refuse_caller(c, ri))
		return;
	if (split_path(ri->path, &ap) < 0 || (ap.n == 3 && strcmp(ap.seg[2], "toxics")) ||
	    (ap.n == 4 && strcmp(ap.seg[2], "toxics"))) {
		char p[256];
		snprintf(p, sizeof p, "%.*s", (int)(ri->path.len < 200 ? ri->path.len : 200), ri->path.p);
		send_err(c, LK_E_P_NO_ROUTE, p);
		return;
	}
	const struct api_row *row = NULL;
	for (size_t i = 0; i < sizeof(proxy_rows) / sizeof(proxy_rows[0]); i++)
		if (proxy_rows[i].depth == ap.n && proxy_rows[i].m == ri->method)
			row = &proxy_rows[i];
	if (!row) {
		send_err(c, LK_E_P_METHOD, allow_of_depth[ap.n]);
		return;
	}
	if (ap.n >= 2 && !(a.p = proxy_find(a.s, ap.seg[1]))) {
		send_err(c, LK_E_P_NOT_FOUND, NULL);
		return;
	}
	if (ap.n == 4 && !(a.t = proxy_toxic_find(a.p, ap.seg[3]))) {
		send_err(c, LK_E_P_TOXIC_NOT_FOUND, NULL);
		return;
	}
	row->fn(&a);
}

static int exact(struct http_conn *c, const struct http_reqinfo *ri, enum http_method m, const char *allow)
{
	if (refuse_caller(c, ri))
		return 0;
	if (ri->method != m) {
		send_err(c, LK_E_P_METHOD, allow);
		return 0;
	}
	return 1;
}

static void h_populate(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!exact(c, ri, M_POST, "POST"))
		return;
	struct proxy_server *s = server_of(c);
	struct jin *arr = body_json(c, ri);
	if (!arr)
		return;
	struct proxy *made[PROXY_MAX_PROXIES];
	size_t nmade = 0;
	char why[PROXY_ERR_MAX] = "";
	enum lk_err e = proxy_populate(s, arr, made, &nmade, why, sizeof why);
	jin_free(arr);
	struct buf b;
	struct json j;
	buf_init(&b, API_OUT_MAX);
	json_init(&j, &b, 0);
	json_obj_begin(&j);
	if (e != LK_E_OK) {
		char msg[PROXY_ERR_MAX];
		lk_text_fill(msg, sizeof msg, lk_error(e)->msg, why);
		json_kstr(&j, "error", msg);
		json_kint(&j, "status", lk_error(e)->http);
	}
	json_key(&j, "proxies");
	json_arr_begin(&j);
	for (size_t i = 0; i < nmade; i++)
		proxy_json(&j, made[i]);
	json_arr_end(&j);
	json_obj_end(&j);
	buf_puts(&b, "\n");
	send_json(c, e == LK_E_OK ? HTTP_CREATED : lk_error(e)->http, &b);
}

static void h_reset(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!exact(c, ri, M_POST, "POST"))
		return;
	struct proxy_server *s = server_of(c);
	char why[PROXY_ERR_MAX];
	/* toxiproxy's reset: every proxy enabled again, every toxic removed. */
	for (size_t i = 0; i < s->nproxies; i++) {
		struct proxy *p = s->proxies[i];
		if (!p->enabled && proxy_update(p, p->listen, NULL, 1, why, sizeof why) != LK_E_OK) {
			send_err(c, LK_E_P_LISTEN, why);
			return;
		}
		while (p->ntoxics)
			proxy_toxic_remove(p, p->toxics[p->ntoxics - 1]);
	}
	send_no_content(c);
}

static void h_version(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!exact(c, ri, M_GET, "GET"))
		return;
	static const char body[] = "{\"version\": \"" LOOPKIT_VERSION "\", \"server\": \"loopkit proxy\"}\n";
	resp_start(c, HTTP_OK);
	resp_send_mem(c, "application/json;charset=utf-8", body, sizeof body - 1);
}

/* One label, key="value", after sep; the value escaped as the text format asks (a
 * backslash, a quote and a newline), so no name can end a label or forge one. */
static void metric_label(struct buf *b, const char *sep, const char *key, const char *value)
{
	buf_printf(b, "%s%s=\"", sep, key);
	for (const char *v = value; *v;) {
		size_t run = strcspn(v, "\\\"\n"); /* what needs no escape, in one piece */
		buf_append(b, v, run);
		v += run;
		if (*v)
			buf_puts(b, *v == '\n' ? "\\n" : *v == '"' ? "\\\"" : "\\\\");
		v += *v != 0;
	}
	buf_puts(b, "\"");
}

static void metric_labels(struct buf *b, const struct proxy *p, const char *dir)
{
	metric_label(b, "{", "direction", dir);
	metric_label(b, ",", "proxy", p->name);
	metric_label(b, ",", "listener", p->listen);
	metric_label(b, ",", "upstream", p->upstream);
	buf_puts(b, "}");
}

static void h_metrics(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!exact(c, ri, M_GET, "GET"))
		return;
	struct proxy_server *s = server_of(c);
	struct buf b;
	buf_init(&b, API_OUT_MAX);
	/* toxiproxy's pair: what came in and what went out, each way */
	for (int k = 0; k < 2; k++) {
		const char *name =
		        k ? "toxiproxy_proxy_sent_bytes_total" : "toxiproxy_proxy_received_bytes_total";
		buf_printf(&b, "# HELP %s Bytes %s the proxy.\n# TYPE %s counter\n", name,
		           k ? "delivered through" : "read into", name);
		for (size_t i = 0; i < s->nproxies; i++) {
			const struct proxy *p = s->proxies[i];
			for (int d = 0; d < 2; d++) {
				buf_puts(&b, name);
				metric_labels(&b, p, proxy_stream_name(d));
				buf_printf(&b, " %llu\n",
				           (unsigned long long)(k ? p->bytes[d] : p->rbytes[d]));
			}
		}
	}
	buf_puts(&b, "# HELP loopkit_proxy_connections_total Client connections accepted.\n"
	             "# TYPE loopkit_proxy_connections_total counter\n");
	for (size_t i = 0; i < s->nproxies; i++) {
		buf_puts(&b, "loopkit_proxy_connections_total");
		metric_label(&b, "{", "proxy", s->proxies[i]->name);
		buf_printf(&b, "} %llu\n", (unsigned long long)s->proxies[i]->conns_total);
	}
	buf_puts(&b, "# HELP loopkit_proxy_connections_open Proxied connection pairs open now.\n"
	             "# TYPE loopkit_proxy_connections_open gauge\n");
	for (size_t i = 0; i < s->nproxies; i++) {
		buf_puts(&b, "loopkit_proxy_connections_open");
		metric_label(&b, "{", "proxy", s->proxies[i]->name);
		buf_printf(&b, "} %u\n", s->proxies[i]->nconns);
	}
	buf_puts(&b, "# HELP loopkit_proxy_toxic_applied_total Times a toxic acted: the connections it "
	             "was active on; http_fail and http_cut: the requests failed or cut; loss: the stalls; "
	             "corrupt: the bytes changed.\n"
	             "# TYPE loopkit_proxy_toxic_applied_total counter\n");
	for (size_t i = 0; i < s->nproxies; i++) {
		for (size_t k = 0; k < s->proxies[i]->ntoxics; k++) {
			const struct toxic *t = s->proxies[i]->toxics[k];
			buf_puts(&b, "loopkit_proxy_toxic_applied_total");
			metric_label(&b, "{", "proxy", s->proxies[i]->name);
			metric_label(&b, ",", "toxic", t->name);
			metric_label(&b, ",", "type", t->type->name);
			buf_printf(&b, "} %llu\n", (unsigned long long)t->applied);
		}
	}
	resp_start(c, HTTP_OK);
	resp_send_mem(c, "text/plain; version=0.0.4", buf_start(&b), buf_used(&b));
	buf_free(&b);
}

static void h_none(struct http_conn *c, const struct http_reqinfo *ri)
{
	char p[256];
	if (refuse_caller(c, ri))
		return;
	snprintf(p, sizeof p, "%.*s", (int)(ri->path.len < 200 ? ri->path.len : 200), ri->path.p);
	send_err(c, LK_E_P_NO_ROUTE, p);
}

static const struct http_route api_routes[] = {
        {"/proxies", HTTP_BODY_MEM, h_proxies, NULL, NULL},
        {"/populate", HTTP_BODY_MEM, h_populate, NULL, NULL},
        {"/reset", HTTP_BODY_MEM, h_reset, NULL, NULL},
        {"/version", HTTP_BODY_MEM, h_version, NULL, NULL},
        {"/metrics", HTTP_BODY_MEM, h_metrics, NULL, NULL},
        {"", HTTP_BODY_MEM, h_none, NULL, NULL},
        {NULL, HTTP_BODY_NONE, NULL, NULL, NULL},
};

static void api_idle(void *arg)
{
}

static void api_conn(void *arg, int fd, const struct sockaddr_storage *peer)
{
	struct proxy_server *s = arg;
	/* The owner of the client's socket, for refuse_caller. */
	http_embed_conn(s->http_ctx, fd, peer, &s->api_nconns, API_MAX_CONNS, 0, 1);
}

int proxy_api_start(struct proxy_server *s, char *err, size_t errlen)
{
	char host[PROXY_ADDR_MAX], msg[REACH_MSG_MAX];
	struct sockaddr_storage ss;
	socklen_t len;
	uint16_t port;
	if (strparse_hostport(s->o.api, PROXY_BARE_HOST, host, sizeof host, &port, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "--api %s: %s (like %s, or 'off')", s->o.api, msg, PROXY_API_DEFAULT);
		return -2;
	}
	if (reach_check_listen(NULL, host, port, 0, "the control API", &ss, &len, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "--api %s: %s", s->o.api, msg);
		return -2;
	}
	struct sockaddr_storage failed;
	s->api_fd =
	        net_listen_loopback((struct sockaddr *)&ss, len, 128, &s->api_twin, &failed, msg, sizeof msg);
	if (s->api_fd < 0) {
		int eno = errno;
		char detail[REACH_MSG_MAX], fix[PROXY_ADDR_MAX + 16];
		snprintf(detail, sizeof detail, "%s", msg);
		snprintf(fix, sizeof fix, ss.ss_family == AF_INET6 ? "--api [%s]:0" : "--api %s:0", host);
		reach_bind_explain((struct sockaddr *)&failed, port, eno, detail, fix, msg, sizeof msg);
		snprintf(err, errlen, "--api %s: %s", s->o.api, msg);
		return -1;
	}
	char a[64];
	net_addr_str((struct sockaddr *)&ss, a, sizeof a);
	snprintf(s->api_addr, sizeof s->api_addr, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a,
	         net_local_port(s->api_fd));
	http_config_default(&s->hc);
	s->hc.routes = api_routes;
	s->hc.json_errors = 1;
	snprintf(s->hc.host, sizeof s->hc.host, "%s", a);
	s->hc.port = net_local_port(s->api_fd);
	s->site.max_conns = API_MAX_CONNS;
	s->site.nconns = &s->api_nconns;
	s->site.max_body = HTTP_API_MAX_BODY;
	s->site.log = ACCESSLOG_NONE;
	s->site.log_sink = &s->sink;
	struct proto_hooks hooks = {.idle = api_idle, .arg = s};
	s->http_ctx = http_proto_ops.ctx_new(s->loop, &s->site, &s->hc, &hooks, err, errlen);
	if (!s->http_ctx || acceptor_start(&s->api_acc, s->loop, s->api_fd, 0, 16, api_conn, s) < 0) {
		if (s->http_ctx)
			snprintf(err, errlen, "--api: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void proxy_api_stop(struct proxy_server *s)
{
	if (s->api_fd >= 0) {
		acceptor_stop(&s->api_acc);
		close(s->api_fd);
		s->api_fd = -1;
	}
	if (s->api_twin >= 0) {
		close(s->api_twin);
		s->api_twin = -1;
	}
	if (s->http_ctx) {
		http_proto_ops.ctx_free(s->http_ctx);
		s->http_ctx = NULL;
	}
}
