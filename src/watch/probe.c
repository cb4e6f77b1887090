/* probe.c - one probe on the event loop: tcp connect (send/expect), http, ftp login, udp. */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/net.h"
#include "core/text.h"
#include "watch/internal.h"

#define READ_CHUNK    4096
#define IN_MAX        (BENCH_RESP_MAX_HEAD + 2 * READ_CHUNK) /* bytes held before they are parsed */
#define FTP_REPLY_MAX 4096                                   /* a longer FTP reply is refused */

/* What the probe waits for (the timeout's text names it). */
enum phase { PH_CONNECT, PH_SEND, PH_ANSWER, PH_FTP_GREETING, PH_FTP_USER, PH_FTP_PASS };
static const char *const phase_text[] = {"connecting",
                                         "sending",
                                         "waiting for the answer",
                                         "waiting for the FTP greeting",
                                         "waiting for the USER reply",
                                         "waiting for the PASS reply"};

static void io_cb(struct loop *l, struct loop_io *io, unsigned events);

/* The target's port lies in the kernel's ephemeral range on loopback: the kernel may
 * give it to us as our own port (a self-connect), so connects are checked. */
static int own_port_risk(const struct watch_probe *p)
{
	const struct watch_target *t = p->t->spec;
	return t->port >= p->w->eph_lo && t->port <= p->w->eph_hi &&
	       net_is_loopback((struct sockaddr *)&t->addr);
}

static void target_text(const struct watch_target *t, char *out, size_t len)
{
	net_ss_text(&t->addr, out, len);
}

void watch_probe_end(struct watch_probe *p, int ok)
{
	struct loop *l = p->w->loop;
	const struct watch_target *t = p->t->spec;
	p->res.latency_us = loop_clock_us() - p->t0_us;
	p->res.ok = ok;
	if (ok) {
		p->res.detail[0] = 0;
	} else {
		/* The text may quote what the target said (an FTP reply, a command's output, a
		 * JSON parser's complaint about the body): control bytes and bytes that are not
		 * UTF-8 become \xHH, so a service cannot drive the terminal that shows the
		 * change lines, nor hand them raw to --on-change or the history. */
		char raw[sizeof(p->res.detail)];
		memcpy(raw, p->res.detail, sizeof(raw));
		text_escape(p->res.detail, sizeof(p->res.detail), raw, strnlen(raw, sizeof(raw)), 0);
	}
	if (ok && t->max_latency_ms && p->res.latency_us > (uint64_t)t->max_latency_ms * 1000) {
		p->res.ok = 0;
		snprintf(p->res.detail, sizeof(p->res.detail), "slower than the %u ms budget (%.1f ms)",
		         t->max_latency_ms, (double)p->res.latency_us / 1000);
	}
	loop_timer_stop(l, &p->timer);
	if (p->io.fd >= 0) {
		/* A stream we close first would sit in TIME_WAIT on our side: a watcher that
		 * probes often would use up the ephemeral ports. Reset it instead (the answer
		 * is in), unless the peer closed first. */
		if ((t->kind == WATCH_TCP || t->kind == WATCH_HTTP) && !p->eof)
			net_reset_on_close(p->io.fd);
		loop_io_close(l, &p->io);
	}
	if (p->out.fd >= 0)
		loop_io_close(l, &p->out);
	watch_probe_done(p);
}

/* Ends the probe: ok, or the reason (printf-style). */
static void finish(struct watch_probe *p, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(struct watch_probe *p, int ok, const char *fmt, ...)
{
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->res.detail, sizeof(p->res.detail), fmt, ap);
		va_end(ap);
	}
	watch_probe_end(p, ok);
}

static void fail_errno(struct watch_probe *p, int e)
{
	char where[64];
	target_text(p->t->spec, where, sizeof(where));
	if (e == ECONNREFUSED)
		finish(p, 0,
		       p->t->spec->kind == WATCH_UDP ? "port unreachable: nothing listens on %s"
		                                     : "connection refused: nothing listens on %s",
		       where);
	else if (e == ECONNRESET || e == EPIPE)
		finish(p, 0, "connection reset by %s while %s", where, phase_text[p->phase]);
	else
		finish(p, 0, "%s: %s", phase_text[p->phase], strerror(e));
}

static void timeout_cb(struct loop *l, struct loop_timer *tm)
{
	struct watch_probe *p = tm->data;
	char ms[32];
	lk_ms_text(p->t->spec->timeout_ms, ms, sizeof(ms));
	if (p->t->spec->kind == WATCH_CMD) {
		watch_probe_cmd(p); /* kills the command; it finishes when reaped */
		return;
	}
	finish(p, 0, "timed out after %s %s", ms, phase_text[p->phase]);
}

/* Writes what is left of p->tx. Returns 1 when all is sent, 0 to wait, -1 after finishing. */
static int send_rest(struct watch_probe *p)
{
	while (p->sent < p->tx_len) {
		ssize_t w = send(p->io.fd, p->tx + p->sent, p->tx_len - p->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			fail_errno(p, errno);
			return -1;
		}
		p->sent += (size_t)w;
	}
	return 1;
}

/* Reads what the socket has into p->in. Returns 0, or -1 after finishing (error). */
static int read_some(struct watch_probe *p)
{
	for (;;) {
		size_t avail;
		char *dst = buf_space(&p->in, READ_CHUNK, &avail);
		if (!dst)
			return 0; /* full: the parser decides */
		ssize_t r = recv(p->io.fd, dst, avail, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			if (errno == ECONNRESET && buf_used(&p->in)) {
				p->eof = 1;
				return 0;
			}
			fail_errno(p, errno);
			return -1;
		}
		if (r == 0) {
			p->eof = 1;
			return 0;
		}
		p->in.len += (size_t)r;
	}
}

/* ---- http ---- */

static void http_request(struct watch_probe *p)
{
	const struct watch_target *t = p->t->spec;
	int n = snprintf(p->req, sizeof(p->req),
	                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loopkit-watch/" LOOPKIT_VERSION
	                 "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
	                 t->path, t->host_header);
	p->tx = p->req;
	p->tx_len = n < 0 ? 0 : (size_t)n >= sizeof(p->req) ? sizeof(p->req) - 1 : (size_t)n;
}

static void keep_body(struct watch_probe *p, const char *b, size_t n)
{
	const struct watch_target *t = p->t->spec;
	if (!n || (!t->contains && !t->json_path) || p->body_over)
		return;
	if (buf_append(&p->body, b, n) < 0)
		p->body_over = 1;
}

/* Feeds p->in to the framing parser (bench/resp.h) a line or a stretch of payload at a
 * time, so the payload bytes can be told from the framing around them. */
static int http_feed(struct watch_probe *p, const char **why)
{
	struct bench_resp *r = &p->resp;
	for (;;) {
		const char *b = buf_start(&p->in);
		size_t n = buf_used(&p->in), lim = n, used = 0;
		int payload = 0;
		if (r->in_body && (r->body != RESP_BODY_CHUNKED || r->chunk_state == 1)) {
			payload = 1;
			if (r->body == RESP_BODY_CHUNKED && r->left < n)
				lim = (size_t)r->left;
		} else if (n > p->line_from) {
			const char *nl = memchr(b + p->line_from, '\n', n - p->line_from);
			if (nl)
				lim = (size_t)(nl - b) + 1;
		}
		if (!n && !(r->in_body && r->body == RESP_BODY_NONE))
			return BENCH_RESP_MORE;
		int rc = bench_resp_feed(r, b, lim, 0, &used, why);
		if (rc == BENCH_RESP_ERROR)
			return rc;
		if (payload)
			keep_body(p, b, used);
		if (used) {
			buf_consume(&p->in, used);
			p->line_from = 0;
		} else {
			p->line_from = lim;
		}
		if (rc == BENCH_RESP_DONE)
			return rc;
		if (lim == n && (used == n || !used))
			return BENCH_RESP_MORE;
	}
}

static void http_judge(struct watch_probe *p)
{
	const struct watch_target *t = p->t->spec;
	int st = p->resp.status;
	p->res.status = st;
	p->res.body_bytes = p->resp.body_bytes;
	char why[WATCH_DETAIL_MAX];
	if (!watch_status_ok(t, st)) {
		char want[64];
		snprintf(want, sizeof(want), "%d-%d", HTTP_OK, HTTP_MULTIPLE_CHOICES - 1);
		if (t->nstatus) {
			size_t o = 0;
			for (unsigned i = 0; i < t->nstatus && o < sizeof(want); i++)
				o += (size_t)snprintf(want + o, sizeof(want) - o,
				                      t->status[i].lo == t->status[i].hi ? "%s%u" : "%s%u-%u",
				                      i ? "," : "", t->status[i].lo, t->status[i].hi);
		}
		finish(p, 0, "HTTP %d %s (want %s)", st, lk_http_reason(st), want);
	} else if (t->contains &&
	           !watch_memmem(buf_start(&p->body), buf_used(&p->body), t->contains, strlen(t->contains))) {
		finish(p, 0, "the body lacks \"%.60s\"%s", t->contains,
		       p->body_over ? " (in its first 256 KiB)" : "");
	} else if (t->json_path && p->body_over) {
		finish(p, 0, "the body is over %u KiB: too large to check as JSON", WATCH_BODY_MAX >> 10);
	} else if (t->json_path && !watch_json_check(buf_start(&p->body), buf_used(&p->body), t->json_path,
	                                             t->json_equals, why, sizeof(why))) {
		finish(p, 0, "%s", why);
	} else {
		finish(p, 1, NULL);
	}
}

static void http_readable(struct watch_probe *p)
{
	const char *why = NULL;
	if (read_some(p) < 0)
		return;
	int rc = http_feed(p, &why);
	if (rc == BENCH_RESP_ERROR && own_port_risk(p) && net_local_port(p->io.fd) == p->t->spec->port) {
		finish(p, 0, "connection refused: nothing listens on port %u", p->t->spec->port);
		return;
	}
	if (rc == BENCH_RESP_ERROR) {
		finish(p, 0, "not an HTTP answer: %s", why);
		return;
	}
	if (rc == BENCH_RESP_DONE) {
		http_judge(p);
		return;
	}
	if (p->eof) {
		if (bench_resp_eof(&p->resp))
			http_judge(p);
		else
			finish(p, 0,
			       p->resp.in_body ? "the connection closed in the middle of the body"
			       : buf_used(&p->in) || p->resp.last_len
			               ? "the connection closed in the middle of the answer"
			               : "the connection closed without an answer");
	}
}

/* ---- ftp ---- */

static int ftp_code(enum lk_reply r)
{
	return lk_reply(r)->ftp;
}

/* The reply's first line, for a failure text. */
static void reply_line(const char *b, size_t n, char *out, size_t len)
{
	const char *nl = memchr(b, '\n', n);
	size_t k = nl ? (size_t)(nl - b) : n;
	while (k && (b[k - 1] == '\r' || b[k - 1] == '\n'))
		k--;
	snprintf(out, len, "%.*s", (int)(k > 100 ? 100 : k), b);
}

/* Sends one command. Returns 0, or -1 when the probe has finished (a send error). */
static int ftp_send(struct watch_probe *p, const char *cmd, const char *arg)
{
	int n = snprintf(p->req, sizeof(p->req), "%s%s%s\r\n", cmd, arg ? " " : "", arg ? arg : "");
	p->tx = p->req;
	p->tx_len = n < 0 || (size_t)n >= sizeof(p->req) ? 0 : (size_t)n;
	p->sent = 0;
	int rc = send_rest(p);
	if (rc == 0)
		loop_io_set(p->w->loop, &p->io, LOOP_READ | LOOP_WRITE);
	return rc < 0 ? -1 : 0;
}

static void ftp_done(struct watch_probe *p, int ok, const char *fmt, const char *line)
{
	/* Say goodbye (best effort), then close. */
	if (send(p->io.fd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		p->eof = 1;
	if (fmt)
		finish(p, ok, fmt, line);
	else
		finish(p, ok, NULL);
}

static void ftp_readable(struct watch_probe *p)
{
	const struct watch_target *t = p->t->spec;
	if (read_some(p) < 0)
		return;
	for (;;) {
		int code;
		size_t len;
		char line[128];
		int rc = watch_ftp_reply(buf_start(&p->in), buf_used(&p->in), &code, &len);
		if (rc < 0) {
			reply_line(buf_start(&p->in), buf_used(&p->in), line, sizeof(line));
			finish(p, 0, "not an FTP server: it said \"%s\"", line);
			return;
		}
		if (rc == 0) {
			if (buf_used(&p->in) > FTP_REPLY_MAX)
				finish(p, 0, "an FTP reply longer than %d bytes", FTP_REPLY_MAX);
			else if (p->eof)
				finish(p, 0, "the connection closed while %s", phase_text[p->phase]);
			return;
		}
		reply_line(buf_start(&p->in), len, line, sizeof(line));
		buf_consume(&p->in, len);
		p->res.status = code;
		switch (p->phase) {
		case PH_FTP_GREETING:
			if (code / 100 == 1)
				continue; /* 120: ready in a while; the real greeting follows */
			if (code != ftp_code(LK_R_READY)) {
				ftp_done(p, 0, "FTP greeting \"%s\"", line);
				return;
			}
			if (!t->login) {
				ftp_done(p, 1, NULL, NULL);
				return;
			}
			p->phase = PH_FTP_USER;
			if (ftp_send(p, "USER", t->user) < 0)
				return;
			break;
		case PH_FTP_USER:
			if (code == ftp_code(LK_R_LOGGED_IN)) {
				ftp_done(p, 1, NULL, NULL);
				return;
			}
			if (code != ftp_code(LK_R_NEED_PASS)) {
				ftp_done(p, 0, "USER refused: \"%s\"", line);
				return;
			}
			p->phase = PH_FTP_PASS;
			if (ftp_send(p, "PASS", t->pass) < 0)
				return;
			break;
		default:
			if (code == ftp_code(LK_R_LOGGED_IN))
				ftp_done(p, 1, NULL, NULL);
			else
				ftp_done(p, 0, "login refused: \"%s\"", line);
			return;
		}
	}
}

/* ---- tcp send/expect and udp ---- */

static void answer_readable(struct watch_probe *p)
{
	const struct watch_target *t = p->t->spec;
	if (t->kind == WATCH_UDP) {
		char d[WATCH_SEND_MAX + 1];
		ssize_t r = recv(p->io.fd, d, sizeof(d), MSG_DONTWAIT);
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fail_errno(p, errno);
			return;
		}
		if (t->expect && !watch_memmem(d, (size_t)r, t->expect, t->expect_len))
			finish(p, 0, "the answer (%zd bytes) lacks \"%.60s\"", r, t->expect);
		else
			finish(p, 1, NULL);
		return;
	}
	if (read_some(p) < 0)
		return;
	if (watch_memmem(buf_start(&p->in), buf_used(&p->in), t->expect, t->expect_len))
		finish(p, 1, NULL);
	else if (p->eof)
		finish(p, 0, "the connection closed before \"%.60s\" came", t->expect);
	else if (buf_used(&p->in) >= IN_MAX - READ_CHUNK)
		finish(p, 0, "%zu bytes came without \"%.60s\"", buf_used(&p->in), t->expect);
}

/* ---- the state machine ---- */

/* The connection is up: what comes next for each kind. */
static void connected(struct watch_probe *p)
{
	const struct watch_target *t = p->t->spec;
	struct loop *l = p->w->loop;
	switch (t->kind) {
	case WATCH_HTTP: http_request(p); break;
	case WATCH_FTP:
		p->phase = PH_FTP_GREETING;
		loop_io_set(l, &p->io, LOOP_READ);
		return;
	default:
		if (!t->send && !t->expect) {
			finish(p, 1, NULL);
			return;
		}
		p->tx = t->send;
		p->tx_len = t->send_len;
		break;
	}
	p->phase = PH_SEND;
	int rc = send_rest(p);
	if (rc < 0)
		return;
	if (rc == 0) {
		loop_io_set(l, &p->io, LOOP_WRITE);
		return;
	}
	if (t->kind != WATCH_HTTP && !t->expect) {
		finish(p, 1, NULL); /* sent, nothing to wait for */
		return;
	}
	p->phase = PH_ANSWER;
	loop_io_set(l, &p->io, LOOP_READ);
}

static void io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct watch_probe *p = io->data;
	const struct watch_target *t = p->t->spec;
	if (p->phase == PH_CONNECT) {
		int e = 0;
		socklen_t len = sizeof(e);
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e) {
			fail_errno(p, e);
			return;
		}
		if (own_port_risk(p) && net_local_port(io->fd) == t->port) {
			/* With the target port in the ephemeral range the kernel may pick it as our
			 * own port: a TCP simultaneous open "succeeds" with nothing listening. */
			finish(p, 0, "connection refused: nothing listens on port %u", t->port);
			return;
		}
		connected(p);
		return;
	}
	if (p->phase == PH_SEND || (events & LOOP_WRITE)) {
		int rc = send_rest(p);
		if (rc <= 0)
			return;
		if (p->phase == PH_SEND) {
			if (t->kind != WATCH_HTTP && !t->expect) {
				finish(p, 1, NULL);
				return;
			}
			p->phase = PH_ANSWER;
		}
		loop_io_set(l, io, LOOP_READ);
		if (!(events & LOOP_READ))
			return;
	}
	if (t->kind == WATCH_HTTP)
		http_readable(p);
	else if (t->kind == WATCH_FTP)
		ftp_readable(p);
	else
		answer_readable(p);
}

void watch_probe_start(struct watch_probe *p)
{
	const struct watch_target *t = p->t->spec;
	struct loop *l = p->w->loop;
	p->io.fd = -1;
	p->out.fd = -1;
	p->res.wall_ms = watch_wall_ms();
	p->t0_us = loop_clock_us();
	buf_init(&p->in, IN_MAX);
	buf_init(&p->body, WATCH_BODY_MAX);
	bench_resp_reset(&p->resp);
	loop_timer_init(&p->timer, timeout_cb, p);
	loop_timer_start(l, &p->timer, t->timeout_ms);
	if (t->kind == WATCH_CMD) {
		watch_probe_cmd(p);
		return;
	}
	int udp = t->kind == WATCH_UDP;
	int fd =
	        socket(t->addr.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		finish(p, 0, "socket: %s", strerror(errno));
		return;
	}
	/* On loopback the handshake happens inside connect(): the connection is up, or
	 * refused, when it returns. A probe that speaks first sends at once (an answer to
	 * its send says which); only if the send would block does it wait for writable. A
	 * plain connect check must wait: a listener with a full backlog leaves it pending.
	 * An HTTP probe connected to itself reads its own request back, which is no
	 * answer (http_readable says so); a tcp send/expect could match its own bytes. */
	int fast = t->kind == WATCH_HTTP || (t->kind == WATCH_TCP && t->send && !own_port_risk(p));
	if (loop_io_start(l, &p->io, fd, udp || fast ? LOOP_READ : LOOP_WRITE, io_cb, p) < 0) {
		close(fd);
		finish(p, 0, "epoll: %s", strerror(errno));
		return;
	}
	if (connect(fd, (struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS) {
		fail_errno(p, errno);
		return;
	}
	if (udp) {
		p->phase = PH_ANSWER;
		if (send(fd, t->send ? t->send : "", t->send_len, MSG_DONTWAIT) < 0)
			fail_errno(p, errno);
		return;
	}
	if (fast)
		connected(p);
}

void watch_probe_release(struct watch_probe *p)
{
	buf_free(&p->in);
	buf_free(&p->body);
}
