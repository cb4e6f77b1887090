/* http.c - bench http: an epoll HTTP/1.1 load generator, closed-loop or constant-rate. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/httpreq.h"
#include "bench/resp.h"
#include "core/buf.h"
#include "core/errors.h"
#include "core/loop.h"
#include "core/net.h"

#define RBUF_SIZE (64 * 1024) /* per connection read buffer */
#define SWEEP_MS  100         /* timeout check period */
#define START_NS  10000000    /* the run starts this long after setup: the threads get going */

const char *const bench_http_err_names[HERR_N] = {"connect", "read", "write", "timeout", "parse", "closed"};

struct hthread;

enum hstate { HC_CLOSED, HC_CONNECTING, HC_OPEN };

struct hconn {
	struct hthread *t;
	struct loop_io io;
	enum hstate state;
	int reconnect_pending;
	struct bench_sched sched;
	struct bench_resp resp;
	unsigned inflight; /* requests written and not answered */
	unsigned head;     /* index of the oldest in-flight request in sent_at */
	uint64_t sent_at[BENCH_HTTP_MAX_PIPELINE];
	unsigned hpos;       /* -R: position in the thread's due heap + 1; 0 when not waiting */
	uint64_t ready_at;   /* -R: when the connection became free for its next request */
	uint64_t ideal_done; /* -R: when its last request ended on the timeline of a never-late client */
	uint64_t due_at;     /* -R: scheduled time of the in-flight request */
	size_t wpos, wlen;   /* a partial write of the request batch */
	size_t rlen;         /* unconsumed bytes in rbuf */
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
	/* -R: idle connections waiting for their due time, a min-heap on it, and a timerfd
	 * armed (in ns: the loop's timers count ms) for the earliest */
	struct hconn **due;
	unsigned ndue;
	int tfd;
	struct loop_io tio;
	uint64_t armed_ns;
	uint64_t start_ns, end_ns, drain_ns, last_done_ns;
	uint64_t first_sent_ns; /* closed-loop requests go as soon as connected, before start_ns */
	uint64_t stop_ns;       /* when the schedule ended: end_ns, or earlier when interrupted */
	int stopping;
	int quota_out;             /* -n: no request left to claim; the stop is deferred */
	_Atomic uint64_t *claimed; /* -n: requests claimed by every thread together */
	atomic_int finished;       /* the thread's loop has ended */
	atomic_int *stop_flag;
	pthread_t tid;
	/* results, read by the main thread after join (except done) */
	_Atomic uint64_t done;
	uint64_t sent, bytes, scheduled;
	uint64_t status[600];
	uint64_t errors[HERR_N];
	const char *parse_why; /* the first answer that did not parse: why (a static string) */
	uint64_t unfinished;
	struct hist *h, *hc, *hl;
};

static void conn_io_cb(struct loop *l, struct loop_io *io, unsigned ev);
static void conn_send(struct hconn *c, uint64_t now);
static void conn_next(struct hconn *c, uint64_t now, uint64_t ready);

/* ---- -R: the due heap ---- */

static uint64_t due_of(const struct hconn *c)
{
	return bench_sched_due(&c->sched);
}

static void due_swap(struct hthread *t, unsigned a, unsigned b)
{
	struct hconn *x = t->due[a];
	t->due[a] = t->due[b];
	t->due[b] = x;
	t->due[a]->hpos = a + 1;
	t->due[b]->hpos = b + 1;
}

static void due_sift(struct hthread *t, unsigned i)
{
	while (i && due_of(t->due[(i - 1) / 2]) > due_of(t->due[i])) {
		due_swap(t, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		unsigned l = 2 * i + 1, m = i;
		if (l < t->ndue && due_of(t->due[l]) < due_of(t->due[m]))
			m = l;
		if (l + 1 < t->ndue && due_of(t->due[l + 1]) < due_of(t->due[m]))
			m = l + 1;
		if (m == i)
			return;
		due_swap(t, i, m);
		i = m;
	}
}

static void due_push(struct hthread *t, struct hconn *c)
{
	t->due[t->ndue] = c;
	c->hpos = ++t->ndue;
	due_sift(t, t->ndue - 1);
}

static void due_remove(struct hthread *t, struct hconn *c)
{
	unsigned i = c->hpos - 1;
	c->hpos = 0;
	if (i == --t->ndue)
		return;
	t->due[i] = t->due[t->ndue];
	t->due[i]->hpos = i + 1;
	due_sift(t, i);
}

/* Arms the timerfd for the earliest waiting connection (disarms it when none). */
static void due_arm(struct hthread *t)
{
	uint64_t when = t->ndue ? due_of(t->due[0]) : 0;
	if (when == t->armed_ns)
		return;
	struct itimerspec its = {.it_value = {(time_t)(when / 1000000000u), (long)(when % 1000000000u)}};
	timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	t->armed_ns = when;
}

static void conn_close(struct hconn *c)
{
	struct hthread *t = c->t;
	if (c->state == HC_CLOSED)
		return;
	int fd = c->io.fd;
	loop_io_stop(t->loop, &c->io);
	if (c->hpos)
		due_remove(t, c);
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
	if (t->o->rate) /* receive times from the kernel: see conn_recv */
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
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

static void wake_fn(struct loop *l, void *data);

/* -n: claims up to want of the run's requests for one batch; 0 when none is left. */
static unsigned quota_claim(struct hthread *t, unsigned want)
{
	if (!t->o->max)
		return want;
	uint64_t old = atomic_fetch_add(t->claimed, want);
	return old >= t->o->max ? 0 : old + want > t->o->max ? (unsigned)(t->o->max - old) : want;
}

/* Writes the next request (or pipeline batch) now; with -n spent, stops the thread
 * once this batch of events is done (what is in flight is still answered). */
static void conn_send(struct hconn *c, uint64_t now)
{
	struct hthread *t = c->t;
	unsigned n = quota_claim(t, t->o->pipeline);
	if (!n) {
		if (!t->quota_out && loop_defer(t->loop, wake_fn, t) == 0)
			t->quota_out = 1;
		return;
	}
	c->wpos = 0;
	c->wlen = t->reqlen * n;
	c->head = 0;
	c->inflight = n;
	for (unsigned i = 0; i < n; i++)
		c->sent_at[i] = now;
	if (!t->sent)
		t->first_sent_ns = now;
	t->sent += n;
	flush_write(c);
}

/* Sends the request the schedule has due now. */
static void conn_send_due(struct hconn *c, uint64_t now)
{
	c->due_at = bench_sched_due(&c->sched);
	c->sched.k++;
	conn_send(c, now);
}

/* Sends every waiting request due by `until`, then arms the timerfd for the next. */
static void due_run(struct hthread *t, uint64_t until)
{
	while (t->ndue && due_of(t->due[0]) <= until) {
		struct hconn *c = t->due[0];
		due_remove(t, c);
		conn_send_due(c, bench_now_ns());
	}
	due_arm(t);
}

static void due_io_cb(struct loop *l, struct loop_io *io, unsigned ev)
{
	struct hthread *t = io->data;
	uint64_t expirations;
	if (read(t->tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
		return;
	t->armed_ns = 0; /* a one-shot timer that fired */
	if (!t->stopping)
		due_run(t, bench_now_ns());
}

/* The connection is idle and open: send now, or when the schedule says. */
static void conn_next(struct hconn *c, uint64_t now, uint64_t ready)
{
	struct hthread *t = c->t;
	if (t->stopping)
		return;
	if (!t->o->rate) {
		conn_send(c, now);
		return;
	}
	c->ready_at = ready;
	uint64_t due = bench_sched_due(&c->sched);
	if (due >= t->end_ns) /* the schedule is over for this connection */
		return;
	if (due > now) { /* never early: wait on the timerfd, to the nanosecond */
		due_push(t, c);
		due_arm(t);
		return;
	}
	conn_send_due(c, now); /* late: the server held the connection past its time */
}

static void on_response(struct hconn *c, uint64_t now)
{
	struct hthread *t = c->t;
	t->status[c->resp.status]++;
	uint64_t sent = c->sent_at[c->head];
	if (t->o->rate)
		bench_co_record(t->h, t->hc, t->hl, c->due_at, c->ready_at, sent, now, &c->ideal_done);
	else
		hist_record(t->h, now > sent ? now - sent : 0);
	atomic_store_explicit(&t->done, atomic_load_explicit(&t->done, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	t->last_done_ns = now;
	c->head++;
	c->inflight--;
	bench_resp_reset(&c->resp);
}

/* Reads into the connection's buffer. With -R, *at is when the kernel received the
 * bytes (SO_TIMESTAMPNS, taken to CLOCK_MONOTONIC), so that a client that read them
 * late (a paused process, a busy loop) does not count its own delay as the server's;
 * else, and when no stamp came, now. */
static ssize_t conn_recv(struct hconn *c, size_t want, uint64_t *now, uint64_t *at)
{
	if (!c->t->o->rate) {
		ssize_t n = read(c->io.fd, c->rbuf + c->rlen, want);
		*now = *at = bench_now_ns();
		return n;
	}
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = c->rbuf + c->rlen, .iov_len = want};
	struct msghdr m = {
	        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
	ssize_t n = recvmsg(c->io.fd, &m, 0);
	*now = *at = bench_now_ns();
	struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&m) : NULL;
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_TIMESTAMPNS) {
		struct timespec ts, rt;
		memcpy(&ts, CMSG_DATA(h), sizeof ts);
		clock_gettime(CLOCK_REALTIME, &rt);
		int64_t ago = ((int64_t)rt.tv_sec - ts.tv_sec) * 1000000000LL + (rt.tv_nsec - ts.tv_nsec);
		if (ago > 0 && (uint64_t)ago < *now)
			*at = *now - (uint64_t)ago;
	}
	return n;
}

static void conn_read(struct hconn *c)
{
	struct hthread *t = c->t;
	for (;;) {
		size_t want = RBUF_SIZE - c->rlen;
		uint64_t now, at;
		ssize_t n = conn_recv(c, want, &now, &at);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			conn_fail(c, HERR_READ);
			return;
		}
		if (n == 0) {
			if (c->inflight && bench_resp_eof(&c->resp)) {
				on_response(c, at);
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
			int r = bench_resp_feed(&c->resp, c->rbuf + pos, have - pos, t->head_only, &used,
			                        &why);
			if (r == BENCH_RESP_ERROR) {
				if (!t->parse_why)
					t->parse_why = why;
				conn_fail(c, HERR_PARSE);
				return;
			}
			if (r == BENCH_RESP_MORE) {
				pos += used; /* the parser keeps no bytes it does not need */
				break;
			}
			pos += used;
			int closing = c->resp.close;
			on_response(c, at);
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
			conn_next(c, now, at);
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
		uint64_t now = bench_now_ns();
		conn_next(c, now, now);
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
	uint64_t now = bench_now_ns();
	t->stop_ns = now < t->end_ns ? now : t->end_ns;
	if (t->o->rate) /* what was due before the end goes, even if its timer is behind */
		due_run(t, t->stop_ns - 1);
	t->stopping = 1;
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
	atomic_store(&t->finished, 1);
	for (unsigned i = 0; i < t->nconns; i++) {
		struct hconn *c = &t->conns[i];
		conn_close(c);
		/* the schedule's requests due before the end: sent or not */
		if (t->o->rate && t->stop_ns > c->sched.start_ns)
			t->scheduled += (t->stop_ns - c->sched.start_ns - 1) / c->sched.interval_ns + 1;
	}
	return NULL;
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

/* -n: every thread has ended (its share of the requests answered or failed). */
static int http_all_finished(void *arg)
{
	struct http_run *r = arg;
	for (unsigned i = 0; i < r->n; i++)
		if (!atomic_load(&r->t[i].finished))
			return 0;
	return 1;
}

static void http_tick(void *arg, uint64_t now)
{
	struct http_run *r = arg;
	uint64_t d = total_done(r);
	char line[160];
	snprintf(line, sizeof(line), "  %4.0f/%.0f s  %llu requests  %.0f req/s",
	         (double)(now - r->start) / 1e9, r->secs, (unsigned long long)d, (double)(d - r->last_done));
	r->last_done = d;
	bench_progress(r->ctl, line, 0);
}

/* Everything a run holds, freed by run_free. */
struct http_mem {
	struct hthread *ts;
	struct hconn *conns;
	struct hconn **due;
	char *rbufs;
	struct buf req, batch;
};

/* Sets up thread t of the run. Returns 0 or -1. */
static int thread_init(struct hthread *t, struct bench_http_result *r, struct http_mem *m, unsigned first,
                       const struct sockaddr_storage *ss, socklen_t sslen, atomic_int *stop_flag,
                       _Atomic uint64_t *claimed, uint64_t start, uint64_t end)
{
	const struct bench_http_opts *o = &r->o;
	t->o = o;
	t->addr = ss;
	t->addrlen = sslen;
	t->req = buf_start(&m->req);
	t->reqlen = buf_used(&m->req);
	t->batch = buf_start(&m->batch);
	t->batchlen = buf_used(&m->batch);
	t->head_only = !strcmp(o->method, "HEAD");
	t->stop_flag = stop_flag;
	t->claimed = claimed;
	t->start_ns = start;
	t->end_ns = end;
	t->conns = m->conns + first;
	t->due = m->due + first;
	t->tfd = -1;
	t->tio.fd = -1;
	t->h = hist_new();
	if (o->rate) {
		t->hc = hist_new();
		t->hl = hist_new();
	}
	char err[128];
	t->loop = loop_new(err, sizeof(err));
	if (!t->h || (o->rate && (!t->hc || !t->hl)) || !t->loop || loop_wake_init(t->loop, wake_fn, t) < 0)
		return -1;
	if (o->rate) {
		t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (t->tfd < 0 || loop_io_start(t->loop, &t->tio, t->tfd, LOOP_READ, due_io_cb, t) < 0)
			return -1;
	}
	loop_timer_init(&t->end_timer, end_cb, t);
	loop_timer_init(&t->sweep_timer, sweep_cb, t);
	/* connection i of c sends at start + i/R + k c/R: the schedules spread evenly */
	uint64_t interval = o->rate ? (uint64_t)(1e9 * (double)o->conns / o->rate) : 0;
	for (unsigned k = 0; k < t->nconns; k++) {
		struct hconn *c = &t->conns[k];
		unsigned gi = first + k;
		c->t = t;
		c->io.fd = -1;
		c->rbuf = m->rbufs + (size_t)gi * RBUF_SIZE;
		c->sched.interval_ns = interval;
		c->sched.start_ns = start + (interval / o->conns) * gi;
	}
	return 0;
}

/* Adds the threads' counts into r. Returns the time of the last response; *first is
 * lowered to the first request's time when that came earlier. */
static uint64_t collect(struct bench_http_result *r, struct hthread *ts, unsigned started, uint64_t *first)
{
	uint64_t last = 0;
	for (unsigned i = 0; i < started; i++) {
		struct hthread *t = &ts[i];
		r->requests += t->done;
		r->sent += t->sent;
		r->bytes += t->bytes;
		r->unfinished += t->unfinished;
		r->scheduled += t->scheduled;
		for (int k = 0; k < 600; k++)
			r->status[k] += t->status[k];
		for (int k = 0; k < HERR_N; k++)
			r->errors[k] += t->errors[k];
		if (!r->parse_why)
			r->parse_why = t->parse_why;
		hist_merge(r->hist, t->h);
		if (t->hc)
			hist_merge(r->hist_corrected, t->hc);
		if (t->hl)
			hist_merge(r->hist_lag, t->hl);
		if (t->last_done_ns > last)
			last = t->last_done_ns;
		if (t->sent && t->first_sent_ns < *first)
			*first = t->first_sent_ns;
	}
	for (int s = 100; s < 600; s++)
		if (!bench_http_ok(&r->o, s))
			r->unexpected += r->status[s];
	for (int k = 0; k < HERR_N; k++)
		r->nerrors += r->errors[k];
	return last;
}

static void run_free(struct http_mem *m, unsigned nthreads)
{
	for (unsigned i = 0; m->ts && i < nthreads; i++) {
		struct hthread *t = &m->ts[i];
		if (t->loop) {
			loop_io_stop(t->loop, &t->tio);
			loop_free(t->loop);
		}
		if (t->tfd >= 0)
			close(t->tfd);
		free(t->h);
		free(t->hc);
		free(t->hl);
	}
	free(m->ts);
	free(m->conns);
	free(m->due);
	free(m->rbufs);
	buf_free(&m->req);
	buf_free(&m->batch);
}

/* One connection before the run, as wrk makes its first: a target that refuses or never
 * accepts is named now with the reason, not counted as connect errors for the whole of
 * -d at full speed. Returns 0, or -1 with err. */
static int preflight(const struct bench_http_target *tg, double timeout_s, char *err, size_t errlen)
{
	int fd = socket(tg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int e = connect(fd, (const struct sockaddr *)&tg->addr, tg->addrlen) == 0 ? 0 : errno;
	if (e == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int n;
		while ((n = poll(&p, 1, (int)(timeout_s * 1000))) < 0 && errno == EINTR)
			;
		socklen_t len = sizeof e;
		if (n == 0)
			e = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
	}
	close(fd);
	if (e == ETIMEDOUT) {
		char ms[32];
		snprintf(err, errlen,
		         "cannot connect to %s: not accepted within %s (--timeout); its accept queue may be "
		         "full (loopkit scan tells)",
		         tg->name, lk_ms_text((unsigned long long)(timeout_s * 1000), ms, sizeof ms));
	} else if (e) {
		snprintf(err, errlen, "cannot connect to %s: %s%s", tg->name, strerror(e),
		         e == ECONNREFUSED ? " (is a server listening there?)" : "");
	}
	return e ? -1 : 0;
}

int bench_http_run(const struct bench_http_opts *o, const struct bench_ctl *ctl, struct bench_http_result *r)
{
	memset(r, 0, sizeof(*r));
	r->o = *o;
	o = &r->o; /* the threads read the copy, with the defaults filled in */
	if (!r->o.pipeline)
		r->o.pipeline = 1;
	struct http_mem m = {0};
	struct bench_http_target tg;
	buf_init(&m.req, 1u << 30);
	buf_init(&m.batch, 1u << 30);
	char *err = r->st.error;
	size_t errlen = sizeof(r->st.error);
	r->st.usage = 1;
	if ((!r->o.nok && bench_http_ok_parse(&r->o, BENCH_HTTP_OK_DEFAULT, err, errlen) < 0) ||
	    bench_http_prepare(o, &tg, &m.req, err, errlen, &r->st.usage) < 0)
		goto fail;
	snprintf(r->target, sizeof(r->target), "%s", tg.name);
	if (preflight(&tg, o->timeout_s, err, errlen) < 0)
		goto fail;
	for (unsigned i = 0; i < o->pipeline; i++)
		buf_append(&m.batch, buf_start(&m.req), buf_used(&m.req));

	m.ts = calloc(o->threads, sizeof(*m.ts));
	m.conns = calloc(o->conns, sizeof(*m.conns));
	m.due = calloc(o->conns, sizeof(*m.due));
	m.rbufs = malloc((size_t)o->conns * RBUF_SIZE);
	atomic_int stop_flag = 0;
	_Atomic uint64_t claimed = 0;
	r->hist = hist_new();
	r->hist_corrected = o->rate ? hist_new() : NULL;
	r->hist_lag = o->rate ? hist_new() : NULL;
	int ok = m.ts && m.conns && m.due && m.rbufs && r->hist &&
	         (!o->rate || (r->hist_corrected && r->hist_lag));
	unsigned started = 0, inited = 0;
	uint64_t start = bench_now_ns() + START_NS;
	uint64_t end = start + (uint64_t)(o->secs * 1e9);
	double cpu0 = bench_cpu_s();
	for (unsigned first = 0; ok && inited < o->threads; inited++) {
		struct hthread *t = &m.ts[inited];
		t->nconns = o->conns / o->threads + (inited < o->conns % o->threads);
		ok = thread_init(t, r, &m, first, &tg.addr, tg.addrlen, &stop_flag, &claimed, start, end) ==
		     0;
		first += t->nconns;
	}
	if (!ok)
		snprintf(err, errlen, "out of memory or descriptors for %u connections", o->conns);
	for (; ok && started < o->threads; started++)
		if (pthread_create(&m.ts[started].tid, NULL, thread_main, &m.ts[started])) {
			snprintf(err, errlen, "cannot start thread %u", started + 1);
			ok = 0;
		}
	struct http_run run = {m.ts, started, ctl, start, 0, o->secs};
	if (ok)
		r->st.interrupted = bench_wait(ctl, start, end, 1000000000u, http_tick,
		                               o->max ? http_all_finished : NULL, &run);
	/* -n done early: the run ends with its last response */
	int early = ok && !r->st.interrupted && o->max && http_all_finished(&run);
	uint64_t stopped = r->st.interrupted ? bench_now_ns() : early ? 0 : end;
	atomic_store(&stop_flag, 1);
	for (unsigned i = 0; i < started; i++)
		loop_wake(m.ts[i].loop);
	for (unsigned i = 0; i < started; i++)
		pthread_join(m.ts[i].tid, NULL);
	bench_progress(ctl, "", 1);
	r->cpu_s = bench_cpu_s() - cpu0;
	uint64_t begin = start;
	uint64_t last = collect(r, m.ts, started, &begin);
	run_free(&m, inited);
	if (!ok)
		return -1;
	/* elapsed: from the first request (or the start) to the end of the run, the
	 * interruption, or the last response when that came later */
	uint64_t until = last > stopped ? last : stopped;
	r->st.elapsed_s = until > begin ? (double)(until - begin) / 1e9 : 0;
	if (r->st.elapsed_s > 0) {
		r->rps = (double)r->requests / r->st.elapsed_s;
		r->bytes_per_s = (double)r->bytes / r->st.elapsed_s;
		r->cpu_pct = 100 * r->cpu_s / r->st.elapsed_s;
	}
	bench_lat_from(&r->lat, r->hist);
	if (o->max && r->scheduled > o->max)
		r->scheduled = o->max; /* the schedule of -n N has N requests, however late the last */
	if (o->rate) {
		r->achieved_rate = r->rps;
		r->rate_reached = (double)r->sent >= 0.99 * (double)r->scheduled && r->scheduled > 0 &&
		                  r->achieved_rate >= 0.95 * o->rate;
		bench_lat_from(&r->lat_corrected, r->hist_corrected);
		bench_lat_from(&r->lat_lag, r->hist_lag);
	}
	r->st.failed = r->nerrors || r->unexpected || !r->requests;
	if (!r->requests && r->errors[HERR_PARSE] && r->parse_why)
		snprintf(err, errlen, "no request completed (the answers could not be read: %s)",
		         r->parse_why);
	else if (!r->requests)
		snprintf(err, errlen, "no request completed%s",
		         r->errors[HERR_CONNECT] ? " (is a server listening there?)" : "");
	return 0;
fail:
	run_free(&m, 0);
	return -1;
}

void bench_http_free(struct bench_http_result *r)
{
	free(r->hist);
	free(r->hist_corrected);
	free(r->hist_lag);
	r->hist = r->hist_corrected = r->hist_lag = NULL;
}
