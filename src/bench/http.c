/* http.c - bench http: an epoll HTTP/1.1 load generator, closed-loop or constant-rate. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/resp.h"
#include "core/loop.h"
#include "core/net.h"

#define RBUF_SIZE     (64 * 1024) /* per connection read buffer */
#define SWEEP_MS      100         /* timeout check period */
#define MAX_CONNS     100000
#define MAX_THREADS   256

const char *const bench_http_err_names[HERR_N] = { "connect", "read", "write", "timeout", "parse", "closed" };

struct hthread;

enum hstate { HC_CLOSED, HC_CONNECTING, HC_OPEN };

struct hconn {
	struct hthread *t;
	struct loop_io io;
	struct loop_timer due_timer; /* -R: waits for the next scheduled send */
	enum hstate state;
	int reconnect_pending;
	struct bench_sched sched;
	struct bench_resp resp;
	unsigned inflight;  /* requests written and not answered */
	unsigned head;      /* index of the oldest in-flight request in sent_at */
	uint64_t sent_at[BENCH_HTTP_MAX_PIPELINE];
	uint64_t due_at;    /* -R: scheduled time of the in-flight request */
	size_t wpos, wlen;  /* a partial write of the request batch */
	size_t rlen;        /* unconsumed bytes in rbuf */
	char *rbuf;
};

struct hthread {
	const struct bench_http_opts *o;
	const struct sockaddr_storage *addr;
	socklen_t addrlen;
	const char *req; /* one request */
	size_t reqlen;
	const char *batch; /* pipeline copies of req */
	size_t batchlen;
	int head_only;
	struct loop *loop;
	struct loop_timer end_timer, sweep_timer;
	struct hconn *conns;
	unsigned nconns;
	unsigned open; /* connections not closed */
	uint64_t start_ns, end_ns, drain_ns, last_done_ns;
	int stopping;
	atomic_int *stop_flag;
	pthread_t tid;
	/* results, read by the main thread after join (except done) */
	_Atomic uint64_t done;
	uint64_t sent, bytes, scheduled;
	uint64_t status[600];
	uint64_t errors[HERR_N];
	uint64_t unfinished;
	struct hist *h, *hc;
};

static void conn_io_cb(struct loop *l, struct loop_io *io, unsigned ev);
static void conn_send(struct hconn *c, uint64_t now);
static void conn_next(struct hconn *c, uint64_t now);

static void conn_close(struct hconn *c)
{
	struct hthread *t = c->t;
	if (c->state == HC_CLOSED)
		return;
	int fd = c->io.fd;
	loop_io_stop(t->loop, &c->io);
	loop_timer_stop(t->loop, &c->due_timer);
	if (fd >= 0)
		close(fd);
	c->state = HC_CLOSED;
	c->inflight = 0;
	c->head = 0;
	c->rlen = 0;
	c->wpos = c->wlen = 0;
	t->open--;
}

static void maybe_finish(struct hthread *t)
{
	if (t->stopping && t->open == 0)
		loop_stop(t->loop);
}

static void conn_open(struct hconn *c)
{
	struct hthread *t = c->t;
	int fd = socket(t->addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		t->errors[HERR_CONNECT]++;
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(fd, (const struct sockaddr *)t->addr, t->addrlen);
	if (rc < 0 && errno != EINPROGRESS) {
		t->errors[HERR_CONNECT]++;
		close(fd);
		return;
	}
	if (loop_io_start(t->loop, &c->io, fd, LOOP_WRITE, conn_io_cb, c) < 0) {
		t->errors[HERR_CONNECT]++;
		close(fd);
		return;
	}
	c->state = HC_CONNECTING;
	bench_resp_reset(&c->resp);
	t->open++;
}

/* Reopening happens after the event batch, so no stale event of the old descriptor
 * can reach the new one. */
static void reconnect_fn(struct loop *l, void *data)
{
	struct hconn *c = data;
	c->reconnect_pending = 0;
	if (c->state != HC_CLOSED || c->t->stopping)
		return;
	conn_open(c);
}

static void conn_fail(struct hconn *c, enum bench_http_err e)
{
	struct hthread *t = c->t;
	t->errors[e]++;
	conn_close(c);
	if (t->stopping) {
		maybe_finish(t);
		return;
	}
	if (!c->reconnect_pending && loop_defer(t->loop, reconnect_fn, c) == 0)
		c->reconnect_pending = 1;
}

static void conn_recycle(struct hconn *c)
{
	conn_close(c);
	if (c->t->stopping) {
		maybe_finish(c->t);
		return;
	}
	if (!c->reconnect_pending && loop_defer(c->t->loop, reconnect_fn, c) == 0)
		c->reconnect_pending = 1;
}

static void flush_write(struct hconn *c)
{
	struct hthread *t = c->t;
	while (c->wpos < c->wlen) {
		ssize_t n = write(c->io.fd, t->batch + c->wpos, c->wlen - c->wpos);
		if (n > 0) {
			c->wpos += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_io_set(t->loop, &c->io, LOOP_READ | LOOP_WRITE);
			return;
		}
		conn_fail(c, HERR_WRITE);
		return;
	}
	loop_io_set(t->loop, &c->io, LOOP_READ);
}

/* Writes the next request (or pipeline batch) now. */
static void conn_send(struct hconn *c, uint64_t now)
{
	struct hthread *t = c->t;
	unsigned n = t->o->pipeline ? t->o->pipeline : 1;
	c->wpos = 0;
	c->wlen = t->reqlen * n;
	c->head = 0;
	c->inflight = n;
	for (unsigned i = 0; i < n; i++)
		c->sent_at[i] = now;
	t->sent += n;
	flush_write(c);
}

static void due_cb(struct loop *l, struct loop_timer *tm)
{
	struct hconn *c = tm->data;
	if (c->state == HC_OPEN && !c->inflight && !c->t->stopping)
		conn_next(c, bench_now_ns());
}

/* The connection is idle and open: send now, or when the schedule says. */
static void conn_next(struct hconn *c, uint64_t now)
{
	struct hthread *t = c->t;
	if (t->stopping)
		return;
	if (!t->o->rate) {
		conn_send(c, now);
		return;
	}
	uint64_t due = bench_sched_due(&c->sched);
	if (due >= t->end_ns) { /* the schedule is over for this connection */
		return;
	}
	if (due > now + 200000) { /* more than 0.2 ms ahead: sleep (the loop's timers are in ms) */
		uint64_t ms = (due - now) / 1000000;
		loop_timer_start(t->loop, &c->due_timer, ms ? ms : 1);
		return;
	}
	while (due > now) /* within 0.2 ms: spin to the exact time */
		now = bench_now_ns();
	c->due_at = due;
	c->sched.k++;
	t->scheduled++;
	conn_send(c, now);
}

static void on_response(struct hconn *c, uint64_t now)
{
	struct hthread *t = c->t;
	t->status[c->resp.status]++;
	uint64_t sent = c->sent_at[c->head];
	if (t->o->rate)
		bench_co_record(t->h, t->hc, c->due_at, sent, now);
	else
		hist_record(t->h, now > sent ? now - sent : 0);
	atomic_store_explicit(&t->done, atomic_load_explicit(&t->done, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	t->last_done_ns = now;
	c->head++;
	c->inflight--;
	bench_resp_reset(&c->resp);
}

static void conn_read(struct hconn *c)
{
	struct hthread *t = c->t;
	for (;;) {
		size_t want = RBUF_SIZE - c->rlen;
		ssize_t n = read(c->io.fd, c->rbuf + c->rlen, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			conn_fail(c, HERR_READ);
			return;
		}
		uint64_t now = bench_now_ns();
		if (n == 0) {
			if (c->inflight && bench_resp_eof(&c->resp)) {
				on_response(c, now);
				if (c->inflight) { /* pipelined requests the server dropped */
					t->errors[HERR_CLOSED]++;
					t->unfinished += c->inflight - 1;
				}
			} else if (c->inflight || c->rlen) {
				conn_fail(c, HERR_CLOSED);
				return;
			}
			conn_recycle(c);
			return;
		}
		t->bytes += (size_t)n;
		size_t have = c->rlen + (size_t)n, pos = 0;
		while (pos < have) {
			if (!c->inflight) {
				conn_fail(c, HERR_PARSE); /* bytes nobody asked for */
				return;
			}
			size_t used;
			const char *why;
			int r = bench_resp_feed(&c->resp, c->rbuf + pos, have - pos, t->head_only, &used, &why);
			if (r == BENCH_RESP_ERROR) {
				conn_fail(c, HERR_PARSE);
				return;
			}
			if (r == BENCH_RESP_MORE) {
				pos += used; /* the parser keeps no bytes it does not need */
				break;
			}
			pos += used;
			int closing = c->resp.close;
			on_response(c, now);
			if (closing || !t->o->keepalive) {
				if (c->inflight)
					t->unfinished += c->inflight;
				conn_recycle(c);
				return;
			}
		}
		/* keep an incomplete head or chunk line */
		if (pos < have && pos > 0)
			memmove(c->rbuf, c->rbuf + pos, have - pos);
		c->rlen = have - pos;
		if (c->rlen == RBUF_SIZE) {
			conn_fail(c, HERR_PARSE);
			return;
		}
		if (!c->inflight) {
			if (t->stopping) {
				conn_close(c);
				maybe_finish(t);
				return;
			}
			conn_next(c, now);
			return;
		}
		if ((size_t)n < want)
			return; /* a short read: the socket is drained */
	}
}

static void conn_io_cb(struct loop *l, struct loop_io *io, unsigned ev)
{
	struct hconn *c = io->data;
	if (c->state == HC_CONNECTING) {
		if (!(ev & LOOP_WRITE))
			return;
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_fail(c, HERR_CONNECT);
			return;
		}
		c->state = HC_OPEN;
		loop_io_set(l, io, LOOP_READ);
		if (c->t->stopping) {
			conn_close(c);
			maybe_finish(c->t);
			return;
		}
		conn_next(c, bench_now_ns());
		return;
	}
	if (c->state != HC_OPEN)
		return;
	if ((ev & LOOP_WRITE) && c->wpos < c->wlen) {
		flush_write(c);
		if (c->state != HC_OPEN)
			return;
	}
	if (ev & LOOP_READ)
		conn_read(c);
}

static void begin_stop(struct hthread *t)
{
	if (t->stopping)
		return;
	t->stopping = 1;
	uint64_t now = bench_now_ns();
	t->drain_ns = now + (uint64_t)(t->o->timeout_s * 1e9);
	for (unsigned i = 0; i < t->nconns; i++) {
		struct hconn *c = &t->conns[i];
		if (c->state == HC_CONNECTING || (c->state == HC_OPEN && !c->inflight))
			conn_close(c);
	}
	maybe_finish(t);
}

static void end_cb(struct loop *l, struct loop_timer *tm)
{
	struct hthread *t = tm->data;
	if (bench_now_ns() < t->end_ns) { /* ms timer fired a little early */
		loop_timer_start(l, tm, 1);
		return;
	}
	begin_stop(t);
}

static void sweep_cb(struct loop *l, struct loop_timer *tm)
{
	struct hthread *t = tm->data;
	uint64_t now = bench_now_ns();
	if (atomic_load(t->stop_flag))
		begin_stop(t);
	uint64_t to = (uint64_t)(t->o->timeout_s * 1e9);
	for (unsigned i = 0; i < t->nconns; i++) {
		struct hconn *c = &t->conns[i];
		if (c->state == HC_OPEN && c->inflight && now - c->sent_at[c->head] > to) {
			t->unfinished += c->inflight - 1;
			conn_fail(c, HERR_TIMEOUT);
		}
	}
	if (t->stopping && now >= t->drain_ns) {
		for (unsigned i = 0; i < t->nconns; i++) {
			t->unfinished += t->conns[i].inflight;
			conn_close(&t->conns[i]);
		}
		loop_stop(l);
		return;
	}
	loop_timer_start(l, tm, SWEEP_MS);
}

static void wake_fn(struct loop *l, void *data)
{
	begin_stop(data);
}

static void *thread_main(void *arg)
{
	struct hthread *t = arg;
	for (unsigned i = 0; i < t->nconns; i++)
		conn_open(&t->conns[i]);
	loop_timer_start(t->loop, &t->end_timer, (t->end_ns - t->start_ns) / 1000000);
	loop_timer_start(t->loop, &t->sweep_timer, SWEEP_MS);
	loop_run(t->loop);
	for (unsigned i = 0; i < t->nconns; i++)
		conn_close(&t->conns[i]);
	return NULL;
}

struct url {
	char host[256];
	char hostport[300];
	uint16_t port;
	const char *path;
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
	const char *h = u + 7, *slash = strchr(h, '/');
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	out->path = slash ? slash : "/";
	if (!hl || hl >= sizeof(out->hostport)) {
		snprintf(err, errlen, "URL has no host: '%.100s'", u);
		return -1;
	}
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
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
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
	if (!net_is_loopback((struct sockaddr *)ss) && !allow_remote) {
		char a[64];
		snprintf(err, errlen, "%.100s (%s) is not a loopback address: loading another machine "
		         "needs --allow-remote", u->host, net_addr_str((struct sockaddr *)ss, a, sizeof(a)));
		return -1;
	}
	return 0;
}

static int build_request(const struct bench_http_opts *o, const struct url *u, struct buf *b)
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
	if (o->body)
		buf_printf(b, "Content-Length: %zu\r\n", o->body_len);
	if (buf_puts(b, "\r\n") < 0 || (o->body && buf_append(b, o->body, o->body_len) < 0))
		return -1;
	return 0;
}

struct http_run {
	struct hthread *t;
	unsigned n;
	const struct bench_ctl *ctl;
	uint64_t start, last_done;
	double secs;
};

static uint64_t total_done(const struct http_run *r)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < r->n; i++)
		s += atomic_load_explicit(&r->t[i].done, memory_order_relaxed);
	return s;
}

static void http_tick(void *arg, uint64_t now)
{
	struct http_run *r = arg;
	uint64_t d = total_done(r);
	char line[160];
	snprintf(line, sizeof(line), "  %4.0f/%.0f s  %llu requests  %.0f req/s", (double)(now - r->start) / 1e9,
	         r->secs, (unsigned long long)d, (double)(d - r->last_done));
	r->last_done = d;
	bench_progress(r->ctl, line, 0);
}

int bench_http_run(const struct bench_http_opts *o, const struct bench_ctl *ctl,
                   struct bench_http_result *r, int *usage)
{
	memset(r, 0, sizeof(*r));
	r->o = *o;
	*usage = 1;
	struct url u;
	if (parse_url(o->url, &u, r->error, sizeof(r->error)) < 0)
		return -1;
	if (!o->conns || o->conns > MAX_CONNS || !o->threads || o->threads > MAX_THREADS || o->threads > o->conns) {
		snprintf(r->error, sizeof(r->error), "need 1 <= threads <= connections <= %d", MAX_CONNS);
		return -1;
	}
	if (o->pipeline > BENCH_HTTP_MAX_PIPELINE || (o->pipeline > 1 && o->rate)) {
		snprintf(r->error, sizeof(r->error), "--pipeline is 1-%d and cannot be combined with -R",
		         BENCH_HTTP_MAX_PIPELINE);
		return -1;
	}
	if (o->pipeline > 1 && !o->keepalive) {
		snprintf(r->error, sizeof(r->error), "--pipeline needs keep-alive");
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sslen;
	int rc = resolve(&u, o->allow_remote, &ss, &sslen, r->error, sizeof(r->error));
	if (rc == -1)
		return -1;
	*usage = 0;
	if (rc < 0)
		return -1;
	char a[64];
	net_addr_str((struct sockaddr *)&ss, a, sizeof(a));
	snprintf(r->target, sizeof(r->target), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, u.port);

	unsigned pl = o->pipeline ? o->pipeline : 1;
	struct buf req, batch;
	buf_init(&req, 1u << 30);
	buf_init(&batch, 1u << 30);
	if (build_request(o, &u, &req) < 0) {
		snprintf(r->error, sizeof(r->error), "request too large");
		buf_free(&req);
		return -1;
	}
	for (unsigned i = 0; i < pl; i++)
		buf_append(&batch, buf_start(&req), buf_used(&req));

	struct hthread *ts = calloc(o->threads, sizeof(*ts));
	struct hconn *conns = calloc(o->conns, sizeof(*conns));
	char *rbufs = malloc((size_t)o->conns * RBUF_SIZE);
	atomic_int stop_flag = 0;
	r->hist = hist_new();
	r->hist_corrected = o->rate ? hist_new() : NULL;
	int ok = ts && conns && rbufs && r->hist && (!o->rate || r->hist_corrected);
	unsigned started = 0;
	uint64_t start = bench_now_ns() + 2000000; /* a moment for the threads to start */
	uint64_t end = start + (uint64_t)(o->secs * 1e9);
	double cpu0 = bench_cpu_s();
	unsigned next = 0;
	for (unsigned i = 0; ok && i < o->threads; i++) {
		struct hthread *t = &ts[i];
		t->o = o;
		t->addr = &ss;
		t->addrlen = sslen;
		t->req = buf_start(&req);
		t->reqlen = buf_used(&req);
		t->batch = buf_start(&batch);
		t->batchlen = buf_used(&batch);
		t->head_only = !strcmp(o->method, "HEAD");
		t->stop_flag = &stop_flag;
		t->start_ns = start;
		t->end_ns = end;
		t->nconns = o->conns / o->threads + (i < o->conns % o->threads);
		t->conns = conns + next;
		next += t->nconns;
		t->h = hist_new();
		t->hc = o->rate ? hist_new() : NULL;
		char err[128];
		t->loop = loop_new(err, sizeof(err));
		if (!t->h || (o->rate && !t->hc) || !t->loop || loop_wake_init(t->loop, wake_fn, t) < 0) {
			ok = 0;
			break;
		}
		loop_timer_init(&t->end_timer, end_cb, t);
		loop_timer_init(&t->sweep_timer, sweep_cb, t);
		uint64_t interval = o->rate ? (uint64_t)(1e9 * (double)o->conns / o->rate) : 0;
		for (unsigned k = 0; k < t->nconns; k++) {
			struct hconn *c = &t->conns[k];
			unsigned gi = (unsigned)(c - conns);
			c->t = t;
			c->io.fd = -1;
			c->rbuf = rbufs + (size_t)gi * RBUF_SIZE;
			loop_timer_init(&c->due_timer, due_cb, c);
			/* spread the connections' schedules evenly over one interval */
			c->sched.interval_ns = interval;
			c->sched.start_ns = start + (interval / o->conns) * gi;
		}
	}
	if (!ok) {
		snprintf(r->error, sizeof(r->error), "out of memory or descriptors for %u connections", o->conns);
	} else {
		for (; started < o->threads; started++)
			if (pthread_create(&ts[started].tid, NULL, thread_main, &ts[started])) {
				snprintf(r->error, sizeof(r->error), "cannot start thread %u", started + 1);
				atomic_store(&stop_flag, 1);
				ok = 0;
				break;
			}
	}
	struct http_run run = { ts, started, ctl, start, 0, o->secs };
	if (ok)
		bench_wait(ctl, start, end, http_tick, NULL, &run);
	atomic_store(&stop_flag, 1);
	for (unsigned i = 0; i < started; i++)
		loop_wake(ts[i].loop);
	for (unsigned i = 0; i < started; i++)
		pthread_join(ts[i].tid, NULL);
	bench_progress(ctl, "", 1);
	r->cpu_s = bench_cpu_s() - cpu0;

	uint64_t last = 0;
	for (unsigned i = 0; ts && i < o->threads; i++) {
		struct hthread *t = &ts[i];
		if (i < started) {
			r->requests += t->done;
			r->sent += t->sent;
			r->bytes += t->bytes;
			r->unfinished += t->unfinished;
			r->scheduled += t->scheduled;
			for (int k = 0; k < 600; k++)
				r->status[k] += t->status[k];
			for (int k = 0; k < HERR_N; k++)
				r->errors[k] += t->errors[k];
			if (t->h)
				hist_merge(r->hist, t->h);
			if (t->hc)
				hist_merge(r->hist_corrected, t->hc);
			if (t->last_done_ns > last)
				last = t->last_done_ns;
		}
		if (t->loop)
			loop_free(t->loop);
		free(t->h);
		free(t->hc);
	}
	uint64_t stop_at = bench_now_ns();
	/* elapsed: the scheduled run, or until the last response when that was later
	 * (or until the interruption when it was earlier) */
	uint64_t until = last > end ? last : end;
	if (until > stop_at)
		until = stop_at;
	r->elapsed_s = until > start ? (double)(until - start) / 1e9 : 0;
	if (r->elapsed_s > 0) {
		r->rps = (double)r->requests / r->elapsed_s;
		r->bytes_per_s = (double)r->bytes / r->elapsed_s;
	}
	if (o->rate) {
		r->achieved_rate = r->rps;
		r->rate_reached = (double)r->sent >= 0.99 * (double)r->scheduled && r->scheduled > 0 &&
		                  r->achieved_rate >= 0.95 * o->rate;
		bench_lat_from(&r->lat_corrected, r->hist_corrected);
	}
	bench_lat_from(&r->lat, r->hist);
	free(ts);
	free(conns);
	free(rbufs);
	buf_free(&req);
	buf_free(&batch);
	if (!ok)
		return -1;
	return 0;
}

void bench_http_free(struct bench_http_result *r)
{
	free(r->hist);
	free(r->hist_corrected);
	r->hist = r->hist_corrected = NULL;
}

static uint64_t total_errors(const struct bench_http_result *r)
{
	uint64_t s = 0;
	for (int k = 0; k < HERR_N; k++)
		s += r->errors[k];
	return s;
}

void bench_http_print(FILE *f, const struct bench_http_result *r)
{
	const struct bench_http_opts *o = &r->o;
	fprintf(f, "bench http %s (%s): %u connection%s, %u thread%s, %.1f s%s", o->url, r->target, o->conns,
	        o->conns == 1 ? "" : "s", o->threads, o->threads == 1 ? "" : "s", o->secs,
	        o->keepalive ? "" : ", no keep-alive");
	if (o->pipeline > 1)
		fprintf(f, ", pipeline %u", o->pipeline);
	if (o->rate)
		fprintf(f, ", constant rate %.0f req/s", o->rate);
	fprintf(f, "\n\n");
	fprintf(f, "  requests   %llu in %.2f s: %.0f req/s, %.2f MB/s read\n", (unsigned long long)r->requests,
	        r->elapsed_s, r->rps, r->bytes_per_s / 1e6);
	fprintf(f, "  statuses  ");
	int any = 0;
	for (int s = 100; s < 600; s++)
		if (r->status[s]) {
			fprintf(f, " %d: %llu", s, (unsigned long long)r->status[s]);
			any = 1;
		}
	fprintf(f, "%s\n", any ? "" : " none");
	uint64_t errs = total_errors(r);
	fprintf(f, "  errors     %llu", (unsigned long long)errs);
	for (int k = 0; k < HERR_N; k++)
		if (r->errors[k])
			fprintf(f, "  %s: %llu", bench_http_err_names[k], (unsigned long long)r->errors[k]);
	if (r->unfinished)
		fprintf(f, "  (unanswered at the end: %llu)", (unsigned long long)r->unfinished);
	fprintf(f, "\n  client CPU %.2f s (%.0f%% of one core)\n\n", r->cpu_s,
	        r->elapsed_s > 0 ? 100 * r->cpu_s / r->elapsed_s : 0);
	if (o->rate) {
		bench_lat_print(f, "latency (corrected)", &r->lat_corrected);
		bench_lat_print(f, "latency (raw)", &r->lat);
		fprintf(f, "\n  rate       asked %.0f req/s, achieved %.0f req/s (%llu of %llu scheduled sent)\n", o->rate,
		        r->achieved_rate, (unsigned long long)r->sent, (unsigned long long)r->scheduled);
		if (!r->rate_reached)
			fprintf(f, "  WARNING: the rate was not reached: the corrected latencies measure the client's "
			           "queue, not the server.\n  Lower -R or add connections (-c).\n");
		else
			fprintf(f, "  corrected = from each request's scheduled time (coordinated omission corrected);\n"
			           "  raw = from the moment it was written.\n");
	} else {
		bench_lat_print(f, "latency", &r->lat);
	}
}

void bench_http_json(struct json *j, const struct bench_http_result *r)
{
	const struct bench_http_opts *o = &r->o;
	json_obj_begin(j);
	json_key(j, "mode");
	json_str(j, "http");
	json_key(j, "url");
	json_str(j, o->url);
	json_key(j, "target");
	json_str(j, r->target);
	json_key(j, "connections");
	json_uint(j, o->conns);
	json_key(j, "threads");
	json_uint(j, o->threads);
	json_key(j, "duration_s");
	bench_json_num(j, o->secs, 3);
	json_key(j, "keepalive");
	json_bool(j, o->keepalive);
	json_key(j, "pipeline");
	json_uint(j, o->pipeline ? o->pipeline : 1);
	json_key(j, "elapsed_s");
	bench_json_num(j, r->elapsed_s, 3);
	json_key(j, "requests");
	json_uint(j, r->requests);
	json_key(j, "sent");
	json_uint(j, r->sent);
	json_key(j, "unfinished");
	json_uint(j, r->unfinished);
	json_key(j, "requests_per_s");
	bench_json_num(j, r->rps, 1);
	json_key(j, "bytes");
	json_uint(j, r->bytes);
	json_key(j, "bytes_per_s");
	bench_json_num(j, r->bytes_per_s, 0);
	json_key(j, "status");
	json_obj_begin(j);
	for (int s = 100; s < 600; s++)
		if (r->status[s]) {
			char k[8];
			snprintf(k, sizeof(k), "%d", s);
			json_key(j, k);
			json_uint(j, r->status[s]);
		}
	json_obj_end(j);
	json_key(j, "errors");
	json_obj_begin(j);
	for (int k = 0; k < HERR_N; k++) {
		json_key(j, bench_http_err_names[k]);
		json_uint(j, r->errors[k]);
	}
	json_obj_end(j);
	json_key(j, "client_cpu_s");
	bench_json_num(j, r->cpu_s, 3);
	bench_lat_json(j, "latency_us", &r->lat);
	json_key(j, "rate");
	if (o->rate) {
		json_obj_begin(j);
		json_key(j, "target");
		bench_json_num(j, o->rate, 1);
		json_key(j, "achieved");
		bench_json_num(j, r->achieved_rate, 1);
		json_key(j, "scheduled");
		json_uint(j, r->scheduled);
		json_key(j, "reached");
		json_bool(j, r->rate_reached);
		bench_lat_json(j, "corrected_latency_us", &r->lat_corrected);
		json_obj_end(j);
	} else {
		json_null(j);
	}
	json_obj_end(j);
}
