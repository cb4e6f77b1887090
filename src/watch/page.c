/* page.c - the status page, its live updates (SSE), /metrics and /api/status on the HTTP engine. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/json.h"
#include "core/net.h"
#include "core/text.h"
#include "diag/reach.h"
#include "http/http.h"
#include "http/resp.h"
#include "http/route.h"
#include "watch/internal.h"

#define PAGE_HOST      "127.0.0.1" /* the page listens on loopback only */
#define EVENT_ROOM_MIN 512         /* a tick with less room than this sends a heartbeat only */
#define CHUNK_FRAME    16          /* "%zx\r\n" + "\r\n" around a chunk */
#define RETRY_MS       2000        /* EventSource reconnects after this */
#define RETRY_AFTER_S  "5"         /* a refused /events stream: try again after this */

/* Everything the page loads, from memory: no external asset, so a strict CSP holds. */
static const char page_css[] =
        "body{font:14px/1.45 system-ui,-apple-system,'Segoe "
        "UI',sans-serif;margin:1.5em;color:#1f2328;background:#fff}"
        "h1{font-size:1.3em;margin:0 0 .2em}header p{margin:.2em 0;color:#57606a}"
        "#conn{font-size:.85em}#conn.lost{color:#c62828}"
        "table{border-collapse:collapse;width:100%;margin-top:1em}"
        "th,td{padding:.35em .6em;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:middle}"
        "th{font-weight:600;background:#f6f8fa;white-space:nowrap}"
        "td.state{font-weight:700;color:#fff;text-align:center;text-transform:uppercase;width:6em}"
        "tr.up td.state{background:#2e7d32}tr.down td.state{background:#c62828}"
        "tr.pending td.state{background:#6e7781}tr.down{background:#fdecea}"
        "td.name "
        "small{display:block;color:#57606a}td.num,td.when{white-space:nowrap;font-variant-numeric:tabular-"
        "nums}"
        "td.detail{color:#57606a;max-width:30em}svg.spark{display:block}"
        "footer{margin-top:1em;color:#57606a;font-size:.85em}";

static const char page_js[] =
        "'use strict';\n"
        "(function () {\n"
        "  var conn = document.getElementById('conn');\n"
        "  var es = new EventSource('/events');\n"
        "  es.addEventListener('row', function (e) {\n"
        "    var d = JSON.parse(e.data), tr = document.getElementById('t' + d.id);\n"
        "    if (!tr) return;\n"
        "    tr.className = d.state;\n"
        "    tr.setAttribute('data-state', d.state);\n"
        "    tr.innerHTML = d.html;\n"
        "  });\n"
        "  es.addEventListener('summary', function (e) {\n"
        "    document.getElementById('summary').textContent = e.data;\n"
        "  });\n"
        "  es.onopen = function () { conn.textContent = 'live'; conn.className = 'live'; };\n"
        "  es.onerror = function () { conn.textContent = 'reconnecting...'; conn.className = 'lost'; };\n"
        "})();\n";

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                          "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static struct watch *watch_of(struct http_conn *c)
{
	const struct http_config *hc = http_ctx_config(http_conn_ctx(c));
	return (struct watch *)(void *)((char *)hc - offsetof(struct watch, hc));
}

static void summary(struct buf *b, struct watch *w)
{
	size_t up = 0, down = 0;
	for (size_t i = 0; i < w->n; i++) {
		up += w->t[i].state == WATCH_UP;
		down += w->t[i].state == WATCH_DOWN;
	}
	buf_printf(b, "%zu target%s: %zu up, %zu down, %zu pending", w->n, w->n == 1 ? "" : "s", up, down,
	           w->n - up - down);
}

int watch_page_html(struct buf *b, struct watch *w)
{
	uint64_t wall = watch_wall_ms();
	int rc = buf_puts(
	        b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	           "<title>loopkit watch</title><link rel=\"icon\" href=\"data:,\">"
	           "<link rel=\"stylesheet\" href=\"/watch.css\"><script src=\"/watch.js\" defer></script>"
	           "</head><body><header><h1>loopkit watch</h1><p id=\"summary\">");
	summary(b, w);
	rc |= buf_puts(
	        b,
	        "</p><p id=\"conn\">connecting...</p></header>\n<table "
	        "id=\"targets\"><thead><tr><th>state</th>"
	        "<th>target</th><th>last probe (UTC)</th><th>latency</th><th>p50 / p95, 1 h</th>"
	        "<th>uptime 1 h</th><th>24 h</th><th>7 d</th><th>last hour</th><th>detail</th></tr></thead>"
	        "<tbody>\n");
	for (size_t i = 0; i < w->n; i++) {
		struct watch_row row;
		watch_row_fill(w, &w->t[i], wall, &row);
		const char *st = watch_state_name(row.state);
		rc |= buf_printf(b, "<tr id=\"t%zu\" class=\"%s\" data-state=\"%s\">", i, st, st);
		rc |= watch_row_html(b, &row, &w->t[i].stats, wall);
		rc |= buf_puts(b, "</tr>\n");
	}
	rc |= buf_puts(b, "</tbody></table>\n<footer>");
	if (w->store) {
		rc |= buf_puts(b, "history: ");
		rc |= text_html(b, w->db_path);
		rc |= buf_puts(b, " &middot; ");
	}
	return rc |
	       buf_puts(b,
	                "<a href=\"/metrics\">/metrics</a> &middot; <a href=\"/api/status\">/api/status</a>"
	                "</footer></body></html>\n");
}

/* A request from a page of another origin (Sec-Fetch-Site neither same-origin nor
 * none) is refused, and its connection closed: such a page could otherwise hold the
 * page's connections (frames of /events under many *.localhost names) and shut out
 * Prometheus and the user. A link followed to the page itself (a top-level navigation)
 * is answered: the page shows, and its own requests are same-origin. */
static int site_ok(struct http_conn *c, const struct http_reqinfo *ri, int navigable)
{
	if (!ri->cross_site)
		return 1;
	const struct http_header *dest = http_req_header(ri, "sec-fetch-dest");
	resp_close_after(c);
	if (navigable && dest && http_slice_ieq(dest->value, "document"))
		return 1;
	const struct http_header *sfs = http_req_header(ri, "sec-fetch-site");
	char site[32];
	snprintf(site, sizeof(site), "%.*s", sfs ? (int)sfs->value.len : 0, sfs ? sfs->value.p : "");
	resp_error(c, LK_E_W_CROSS_SITE, site);
	return 0;
}

/* GET and HEAD only (the page changes nothing), from this origin or no web page. */
static int request_ok(struct http_conn *c, const struct http_reqinfo *ri, int navigable)
{
	if (!site_ok(c, ri, navigable))
		return 0;
	if (ri->method == M_GET || ri->method == M_HEAD)
		return 1;
	if (ri->method == M_OPTIONS)
		http_options(c, ri);
	else
		resp_error(c, LK_E_W_METHOD, NULL);
	return 0;
}

static int method_ok(struct http_conn *c, const struct http_reqinfo *ri)
{
	return request_ok(c, ri, 0);
}

static void send_buf(struct http_conn *c, const char *type, struct buf *b, int ok)
{
	if (!ok) {
		buf_free(b);
		resp_error(c, LK_E_ENOMEM, NULL);
		return;
	}
	resp_start(c, HTTP_OK);
	resp_header(c, "Cache-Control", "no-store");
	resp_send_mem(c, type, buf_start(b) ? buf_start(b) : "", buf_used(b));
	buf_free(b);
}

static void h_page(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!request_ok(c, ri, 1))
		return;
	if (!(ri->path.len == 1 && ri->path.p[0] == '/')) {
		resp_error(c, LK_E_W_NO_PAGE, NULL);
		return;
	}
	struct buf b;
	buf_init(&b, WATCH_OUT_MAX);
	int ok = watch_page_html(&b, watch_of(c)) == 0;
	if (ok) {
		resp_start(c, HTTP_OK);
		resp_header(c, "Content-Security-Policy", csp);
		resp_header(c, "Referrer-Policy", "no-referrer");
		resp_header(c, "Cache-Control", "no-store");
		resp_send_mem(c, "text/html; charset=utf-8", buf_start(&b), buf_used(&b));
		buf_free(&b);
		return;
	}
	send_buf(c, NULL, &b, 0);
}

static void h_asset(struct http_conn *c, const struct http_reqinfo *ri, const char *type, const char *body,
                    size_t n)
{
	if (!method_ok(c, ri))
		return;
	resp_start(c, HTTP_OK);
	resp_header(c, "Cache-Control", "no-cache");
	resp_send_mem(c, type, body, n);
}

static void h_css(struct http_conn *c, const struct http_reqinfo *ri)
{
	h_asset(c, ri, "text/css; charset=utf-8", page_css, sizeof(page_css) - 1);
}

static void h_js(struct http_conn *c, const struct http_reqinfo *ri)
{
	h_asset(c, ri, "text/javascript; charset=utf-8", page_js, sizeof(page_js) - 1);
}

static void h_metrics(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!method_ok(c, ri))
		return;
	struct buf b;
	buf_init(&b, WATCH_OUT_MAX);
	struct watch *w = watch_of(c);
	w->scrape_count++;
	send_buf(c, "text/plain; version=0.0.4; charset=utf-8", &b, watch_metrics(&b, w) == 0);
}

static void h_status(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!method_ok(c, ri))
		return;
	struct buf b;
	struct watch_report r;
	buf_init(&b, WATCH_OUT_MAX);
	int ok = watch_report_fill(watch_of(c), &r) == 0;
	if (ok) {
		ok = watch_report_json(&b, &r) == 0 && buf_puts(&b, "\n") == 0;
		watch_report_free(&r);
	}
	send_buf(c, "application/json", &b, ok);
}

/* ---- live updates: Server-Sent Events ---- */

/* A page's view of the targets: what it was last sent of each. */
struct sse {
	struct watch *w;
	uint64_t *sent_seq, *sent_state; /* per target: the seq and state_seq last sent */
	size_t cursor;                   /* where the round of data updates goes on */
	uint64_t summary_seq;
	int started, ending;
};

static void sse_done(void *state)
{
	struct sse *s = state;
	if (s->w)
		s->w->nstreams--;
	free(s->sent_seq);
	free(s->sent_state);
}

/* Appends one "row" event to ev. Returns 0, or -1 when it does not fit (ev unchanged). */
static int row_event(struct buf *ev, struct watch *w, size_t i, uint64_t wall)
{
	size_t mark = ev->len;
	struct watch_row row;
	struct buf html;
	struct json j;
	buf_init(&html, ev->max);
	watch_row_fill(w, &w->t[i], wall, &row);
	int rc = watch_row_html(&html, &row, &w->t[i].stats, wall);
	rc |= buf_puts(ev, "event: row\ndata: ");
	json_init(&j, ev, 0);
	json_obj_begin(&j);
	json_kuint(&j, "id", i);
	json_kstr(&j, "state", watch_state_name(row.state));
	json_key(&j, "html");
	json_str_n(&j, buf_start(&html) ? buf_start(&html) : "", buf_used(&html));
	json_obj_end(&j);
	rc |= j.err ? -1 : 0;
	rc |= buf_puts(ev, "\n\n");
	buf_free(&html);
	if (rc) {
		ev->len = mark;
		return -1;
	}
	return 0;
}

static size_t sse_fill(struct http_conn *c, void *state, struct buf *out, size_t room)
{
	struct sse *s = state;
	struct watch *w = s->w;
	if (s->ending)
		return 0;
	size_t before = buf_used(out);
	if (before > WATCH_SSE_BACKLOG) {
		/* The page does not read: end the stream (it reconnects when it can). */
		s->ending = 1;
		return buf_puts(out, "0\r\n\r\n") == 0 ? 5 : 0;
	}
	struct buf ev;
	buf_init(&ev, room > CHUNK_FRAME + EVENT_ROOM_MIN ? room - CHUNK_FRAME : EVENT_ROOM_MIN);
	uint64_t wall = watch_wall_ms();
	if (!s->started) {
		buf_printf(&ev, "retry: %d\n\n", RETRY_MS);
		s->started = 1;
	}
	/* State changes first, then the other updates in a round, as room allows. */
	for (size_t i = 0; i < w->n; i++) {
		const struct watch_target_rt *t = &w->t[i];
		if (s->sent_state[i] == t->state_seq || row_event(&ev, w, i, wall) < 0)
			continue;
		s->sent_state[i] = t->state_seq;
		s->sent_seq[i] = t->seq;
	}
	for (size_t k = 0; k < w->n; k++) {
		size_t i = (s->cursor + k) % w->n;
		if (s->sent_seq[i] == w->t[i].seq)
			continue;
		if (row_event(&ev, w, i, wall) < 0) {
			s->cursor = i;
			break;
		}
		s->sent_seq[i] = w->t[i].seq;
	}
	if (s->summary_seq != w->seq) {
		size_t mark = ev.len;
		int rc = buf_puts(&ev, "event: summary\ndata: ");
		summary(&ev, w);
		if (rc || buf_puts(&ev, "\n\n") < 0)
			ev.len = mark;
		else
			s->summary_seq = w->seq;
	}
	if (!buf_used(&ev))
		buf_puts(&ev, ":\n\n"); /* a heartbeat: proxies and the browser see a live stream */
	int rc = buf_printf(out, "%zx\r\n", buf_used(&ev));
	rc |= buf_append(out, buf_start(&ev), buf_used(&ev));
	rc |= buf_puts(out, "\r\n");
	buf_free(&ev);
	return rc ? 0 : buf_used(out) - before;
}

static const struct resp_gen_ops sse_ops = {sse_fill, sse_done};

static void h_events(struct http_conn *c, const struct http_reqinfo *ri)
{
	if (!method_ok(c, ri))
		return;
	struct watch *w = watch_of(c);
	if (w->nstreams >= WATCH_SSE_MAX) {
		char n[16];
		snprintf(n, sizeof(n), "%d", WATCH_SSE_MAX);
		resp_close_after(c);
		resp_error_h(c, LK_E_W_STREAMS_FULL, n, "Retry-After", RETRY_AFTER_S);
		return;
	}
	resp_close_after(c);
	resp_start(c, HTTP_OK);
	resp_header(c, "Cache-Control", "no-store");
	resp_end_headers(c, "text/event-stream", 0, 1);
	if (http_conn_head_only(c))
		return;
	struct sse *s = resp_body_gen(c, &sse_ops, sizeof(*s), 0, WATCH_SSE_TICK_MS);
	s->w = w;
	w->nstreams++;
	s->sent_seq = calloc(w->n, sizeof(*s->sent_seq));
	s->sent_state = calloc(w->n, sizeof(*s->sent_state));
	if (!s->sent_seq || !s->sent_state)
		s->ending = 1; /* no memory: the stream ends at once */
}

/* clang-format off */
static const struct http_route page_routes[] = {
	{"/events", HTTP_BODY_NONE, h_events, NULL, NULL},
	/* Answers made in memory (10,000 targets: ~15 MB of /metrics) count against
	 * HTTP_MEM_MAX, as serve's /_/ answers do: clients that never read them get 503
	 * with Retry-After past it, not a gigabyte held. */
	{"/metrics", HTTP_BODY_MEM, h_metrics, NULL, NULL},
	{"/api/status", HTTP_BODY_MEM, h_status, NULL, NULL},
	{"/watch.css", HTTP_BODY_NONE, h_css, NULL, NULL},
	{"/watch.js", HTTP_BODY_NONE, h_js, NULL, NULL},
	{"", HTTP_BODY_MEM, h_page, NULL, NULL},
	{NULL, HTTP_BODY_NONE, NULL, NULL, NULL},
};
/* clang-format on */

static void page_idle(void *arg)
{
}

static void page_conn(void *arg, int fd, const struct sockaddr_storage *peer)
{
	struct watch *w = arg;
	/* A page that stops reading holds a bounded kernel buffer (not the autotuned
	 * megabytes), so its backlog reaches WATCH_SSE_BACKLOG and the stream ends. */
	http_embed_conn(w->http_ctx, fd, peer, &w->nconns, WATCH_PAGE_CONNS, WATCH_PAGE_SNDBUF, 0);
}

int watch_page_start(struct watch *w, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char msg[512];
	net_parse_addr(PAGE_HOST, w->cfg->port, &ss, &len);
	struct sockaddr_storage failed;
	w->listen_fd = net_listen_loopback((struct sockaddr *)&ss, len, 128, &w->listen_twin, &failed, msg,
	                                   sizeof(msg));
	if (w->listen_fd < 0) {
		int eno = errno;
		char detail[512];
		snprintf(detail, sizeof(detail), "%s", msg);
		/* Its message names the holder and --port 0 already. */
		reach_bind_error((struct sockaddr *)&failed, w->cfg->port, eno, detail, msg, sizeof(msg));
		snprintf(err, errlen, "the status page: %s", msg);
		return -1;
	}
	uint16_t port = net_local_port(w->listen_fd);
	snprintf(w->url, sizeof(w->url), "http://%s:%u/", PAGE_HOST, port);
	http_config_default(&w->hc);
	w->hc.routes = page_routes;
	snprintf(w->hc.host, sizeof(w->hc.host), "%s", PAGE_HOST);
	w->hc.port = port;
	w->site.max_conns = WATCH_PAGE_CONNS;
	w->site.nconns = &w->nconns;
	w->site.max_body = 0;
	w->site.log = ACCESSLOG_NONE;
	log_sink_open(&w->sink);
	w->site.log_sink = &w->sink;
	struct proto_hooks hooks = {.idle = page_idle, .arg = w};
	w->http_ctx = http_proto_ops.ctx_new(w->loop, &w->site, &w->hc, &hooks, err, errlen);
	if (!w->http_ctx)
		return -1;
	if (acceptor_start(&w->acc, w->loop, w->listen_fd, 0, 16, page_conn, w) < 0) {
		snprintf(err, errlen, "the status page: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void watch_page_stop(struct watch *w)
{
	if (w->listen_fd >= 0) {
		acceptor_stop(&w->acc);
		close(w->listen_fd);
		w->listen_fd = -1;
	}
	if (w->listen_twin >= 0) {
		close(w->listen_twin);
		w->listen_twin = -1;
	}
	if (w->http_ctx) {
		http_proto_ops.close_all(w->http_ctx);
		http_proto_ops.ctx_free(w->http_ctx);
		w->http_ctx = NULL;
		log_sink_close(&w->sink);
	}
}
