/* session.c - FTP control connections: read, parse, reply, idle deadline, shutdown; the proto_ops. */
#include "ftp/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "core/sockdiag.h"

#define FTP_REPLY_MAX (PATH_MAX + 256) /* one reply line; longer ones are cut */

void ftp_config_default(struct ftp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->idle_timeout_ms = FTP_DEFAULT_IDLE_TIMEOUT_S * 1000;
	cfg->data_timeout_ms = FTP_DEFAULT_DATA_TIMEOUT_S * 1000;
}

/* ---- replies ---- */

/* Queues "CODE" sep text CRLF, or " " text CRLF when code is 0. A reply never carries
 * a CR or LF from a file name: they become spaces. */
static void reply_line(struct ftp_session *s, int code, char sep, const char *text, size_t len)
{
	char line[FTP_REPLY_MAX];
	int n = code ? snprintf(line, sizeof(line) - 2, "%d%c%.*s", code, sep, (int)len, text)
	             : snprintf(line, sizeof(line) - 2, " %.*s", (int)len, text);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	for (int i = 0; i < n; i++)
		if (line[i] == '\r' || line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\r';
	line[n++] = '\n';
	/* Past FTP_OUT_MAX the client has stopped reading: it loses the session. */
	if (buf_append(&s->out, line, (size_t)n) < 0)
		s->closing = 1;
}

static void reply_row(struct ftp_session *s, int code, char sep, const char *text, const char *detail)
{
	char t[FTP_REPLY_MAX];
	size_t n = lk_text_fill(t, sizeof(t), text, detail);
	reply_line(s, code, sep, t, n);
}

void ftp_reply(struct ftp_session *s, enum lk_reply r, const char *detail)
{
	const struct lk_reply_row *row = lk_reply(r);
	reply_row(s, row->ftp, ' ', row->text, detail);
}

void ftp_reply_begin(struct ftp_session *s, enum lk_reply r, const char *detail)
{
	const struct lk_reply_row *row = lk_reply(r);
	reply_row(s, row->ftp, '-', row->text, detail);
}

void ftp_reply_more(struct ftp_session *s, const char *text, size_t len)
{
	reply_line(s, 0, ' ', text, len);
}

void ftp_reply_err(struct ftp_session *s, enum lk_err e, const char *detail)
{
	const struct lk_error *row = lk_error(e);
	reply_row(s, row->ftp, ' ', row->msg, detail);
}

void ftp_reply_errno(struct ftp_session *s, int neg_errno)
{
	enum lk_err e = lk_err_from_errno(-neg_errno);
	char detail[32] = "";
	/* The two errno rows whose message names a limit. (The path is not repeated: a
	 * reply never echoes where a client tried to go.) */
	if (e == LK_E_ETOOBIG)
		lk_size_text(s->x->site->max_body, detail, sizeof(detail));
	else if (e == LK_E_ELISTFULL)
		lk_size_text(DIRSNAP_MEM_MAX, detail, sizeof(detail));
	ftp_reply_err(s, e, detail);
}

void ftp_log(struct ftp_session *s, const char *verb, const char *target, int code, uint64_t bytes,
             uint64_t t_start)
{
	struct accesslog_rec r = {
	        .remote = s->peer.addr_str,
	        .user = s->user[0] ? s->user : NULL,
	        .method = verb,
	        .target = target,
	        .proto = "FTP",
	        .status = code,
	        .bytes = bytes,
	        .us = loop_clock_us() - t_start,
	};
	accesslog_write(&s->x->log, &r);
}

void ftp_arm_idle(struct ftp_session *s)
{
	loop_timer_start(s->x->loop, &s->timer, s->x->cfg->idle_timeout_ms);
}

/* ---- STAT PATH: a listing over the control connection, sent as the client reads ---- */

void ftp_stat_listing(struct ftp_session *s, const struct dirsnap *snap)
{
	s->stat_snap = snap;
	s->stat_next = 0;
	s->stat_now = time(NULL);
}

/* Ends the STAT listing (all sent, or cut short): the last line of the reply. */
static void stat_end(struct ftp_session *s)
{
	dirsnap_put(s->x->site->dirs, s->stat_snap);
	s->stat_snap = NULL;
	ftp_reply(s, LK_R_LIST_STATUS_END, NULL);
}

/* Adds listing lines until the replies waiting pass FTP_OUT_HIGH; at the end, the
 * closing line of the reply. */
static void stat_fill(struct ftp_session *s)
{
	const struct dirsnap *d = s->stat_snap;
	char line[FTP_LIST_LINE_MAX];
	while (s->stat_next < d->n && buf_used(&s->out) < FTP_OUT_HIGH && !s->closing) {
		size_t n = ftp_list_line(line, sizeof(line), FTP_L_LIST, &d->ents[s->stat_next++],
		                         s->stat_now, s->x->site->write, 0);
		if (n)
			ftp_reply_more(s, line, n);
	}
	if (s->stat_next < d->n && !s->closing)
		return;
	stat_end(s);
}

/* ---- the control connection ---- */

static void session_free_cb(struct loop *l, void *data)
{
	free(data);
}

static void session_close(struct ftp_session *s)
{
	struct ftp_ctx *x = s->x;
	if (s->shut)
		return;
	s->shut = 1;
	if (s->xfer && s->xfer->upload)
		log_msg("ftp: %s %s from %s cut off after %llu bytes; the old file is untouched",
		        s->xfer->verb, s->xfer->target, s->peer.addr_str, (unsigned long long)s->xfer->bytes);
	ftp_data_close(s);
	if (s->xfer) {
		ftp_xfer_free(x, s->xfer);
		s->xfer = NULL;
	}
	if (s->stat_snap) {
		dirsnap_put(x->site->dirs, s->stat_snap);
		s->stat_snap = NULL;
	}
	loop_io_close(x->loop, &s->io);
	loop_timer_stop(x->loop, &s->timer);
	buf_free(&s->in);
	buf_free(&s->out);
	free(s->cwd);
	free(s->rnfr);
	s->cwd = s->rnfr = NULL;
	if (s->prev)
		s->prev->next = s->next;
	else
		x->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	x->nsessions--;
	atomic_fetch_sub(x->site->nconns, 1);
	if (loop_defer(x->loop, session_free_cb, s) < 0)
		log_msg("out of memory: leaking one FTP session record");
	if (x->stopping && !x->nsessions && x->hooks.idle)
		x->hooks.idle(x->hooks.arg);
}

/* Sends what waits. Returns -1 when the session was closed. */
static int control_flush(struct ftp_session *s)
{
	while (buf_used(&s->out)) {
		ssize_t n =
		        send(s->io.fd, buf_start(&s->out), buf_used(&s->out), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			session_close(s);
			return -1;
		}
		buf_consume(&s->out, (size_t)n);
	}
	if (!buf_used(&s->out)) {
		buf_free(&s->out); /* an idle session keeps no buffers */
		if (s->closing && !s->stat_snap) {
			session_close(s);
			return -1;
		}
	}
	return 0;
}

/* Takes one command line off the input and runs it. Returns 1 to go on, 0 to stop
 * (incomplete line, command held, or the session closed). */
static int control_step(struct ftp_session *s)
{
	char *p = buf_start(&s->in);
	size_t n = buf_used(&s->in);
	struct ftp_command c;
	if (s->skip_line) {
		char *lf = memchr(p, '\n', n);
		buf_consume(&s->in, lf ? (size_t)(lf - p) + 1 : n);
		s->skip_line = !lf;
		return 1;
	}
	int r;
	if (s->held_len) {
		c = s->held;
		c.arg = p + s->held_arg;
		r = (int)s->held_len;
		s->held_len = 0;
	} else {
		r = ftp_parse_command(p, n, &c);
	}
	if (r == FTP_PARSE_INCOMPLETE)
		return 0;
	if (r == FTP_PARSE_TOO_LONG) {
		char lim[16];
		snprintf(lim, sizeof(lim), "%d", FTP_MAX_LINE);
		ftp_reply_err(s, LK_E_F_LINE_LONG, lim);
		/* Drop the line up to its end; what follows it is the next command. */
		char *lf = memchr(p, '\n', n);
		buf_consume(&s->in, lf ? (size_t)(lf - p) + 1 : n);
		s->skip_line = !lf;
		return 1;
	}
	if (ftp_command(s, &c)) { /* held until the transfer ends */
		s->held = c;
		s->held_arg = (size_t)(c.arg - p);
		s->held_len = (size_t)r;
		return 0;
	}
	if (s->shut)
		return 0;
	buf_consume(&s->in, (size_t)r);
	if (!s->xfer && !s->login_wait)
		ftp_arm_idle(s);
	return 1;
}

/* Runs commands (and the STAT listing) until the replies waiting pass FTP_OUT_HIGH or
 * nothing more can run now. Returns 1 when it did anything. */
static int control_work(struct ftp_session *s)
{
	size_t in0 = buf_used(&s->in), out0 = buf_used(&s->out);
	for (;;) {
		if (s->stat_snap) {
			stat_fill(s);
			if (s->stat_snap)
				break; /* more once the client has read some */
		}
		/* Replies the client does not read stop the commands, so a flood of
		 * them cannot grow the output past FTP_OUT_HIGH and one reply. */
		if (s->closing || s->login_wait || !buf_used(&s->in) || buf_used(&s->out) >= FTP_OUT_HIGH)
			break;
		if (!control_step(s))
			break;
	}
	return !s->shut && (buf_used(&s->in) != in0 || buf_used(&s->out) != out0);
}

void ftp_control_run(struct ftp_session *s)
{
	if (s->running || s->shut)
		return;
	s->running = 1;
	/* Work, send, and work again while sending made room: commands still waiting
	 * in the input must not wait for more input that may never come. */
	int again;
	do {
		again = control_work(s);
		if (s->shut)
			return;
		if (control_flush(s) < 0)
			return;
	} while (again && buf_used(&s->out) < FTP_OUT_HIGH);
	s->running = 0;
	if (!buf_used(&s->in))
		buf_free(&s->in);
	/* Read while replies can go out; otherwise wait until the client reads. */
	unsigned mask = buf_used(&s->out) || s->stat_snap ? LOOP_WRITE : LOOP_READ;
	if (loop_io_set(s->x->loop, &s->io, mask) < 0)
		session_close(s);
}

static void control_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct ftp_session *s = io->data;
	if (events & LOOP_ERROR) {
		/* The control connection is gone: so is the session, and with it any
		 * upload in progress (the old file stays). */
		session_close(s);
		return;
	}
	if (events & LOOP_WRITE) {
		ftp_control_run(s);
		return;
	}
	size_t avail;
	char *p = buf_space(&s->in, 4096, &avail);
	if (!p) {
		/* A client flooding commands during a transfer: stop reading until it ends. */
		if (loop_io_set(l, io, 0) < 0)
			session_close(s);
		return;
	}
	ssize_t n = recv(io->fd, p, avail, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		session_close(s);
		return;
	}
	if (n > 0)
		s->in.len += (size_t)n;
	ftp_control_run(s);
}

static void control_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct ftp_session *s = t->data;
	ftp_control_timer(s);
	/* An idle client that does not even read its 421 is closed now. */
	if (!s->shut && s->closing && buf_used(&s->out))
		session_close(s);
}

/* ---- the protocol ---- */

static void *ctx_new(struct loop *l, const struct proto_site *site, const void *cfg,
                     const struct proto_hooks *hooks, char *err, size_t errlen)
{
	struct ftp_ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	x->loop = l;
	x->site = site;
	x->cfg = cfg;
	if (hooks)
		x->hooks = *hooks;
	accesslog_init(&x->log, site->log, site->log_sink, l);
	return x;
}

static int session_start(void *ctx, int fd, const struct proto_peer *peer, const char *first, size_t nfirst,
                         struct loop_io *watched)
{
	(void)first; /* the server speaks first: nothing was read before the greeting */
	(void)nfirst;
	struct ftp_ctx *x = ctx;
	struct ftp_session *s = calloc(1, sizeof(*s));
	socklen_t len = sizeof(s->local);
	if (!s || !(s->cwd = strdup("")) || getsockname(fd, (struct sockaddr *)&s->local, &len) < 0) {
		if (s)
			free(s->cwd);
		free(s);
		proto_drop(x->loop, watched, fd);
		atomic_fetch_sub(x->site->nconns, 1);
		return -1;
	}
	/* Telnet "synch" (RFC 959 ABOR: IAC IP, then IAC DM as urgent data) and
	 * ftplib's ABOR with an urgent LF must arrive in the stream, or ABOR is lost. */
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	s->x = x;
	s->peer = *peer;
	if (!s->peer.addr_str[0])
		net_addr_str((const struct sockaddr *)&peer->addr, s->peer.addr_str,
		             sizeof(s->peer.addr_str));
	/* On this machine every user has the same addresses (on loopback, 127.0.0.1):
	 * the owner of the client's socket tells its data connections and listeners from
	 * another user's (data.c). The sniffer has usually looked it up already; else one
	 * exact netlink request, which finds the socket of any local client, whatever
	 * address it came from (a remote one is not found: -1). */
	struct sockdiag_sock sd;
	if (peer->uid >= 0)
		s->peer_uid = (int)peer->uid;
	else
		s->peer_uid = sockdiag_peer(&s->local, &peer->addr, &sd) == 0 ? (int)sd.uid : -1;
	s->pasv_io.fd = s->data_io.fd = -1;
	buf_init(&s->in, FTP_MAX_LINE * 8);
	buf_init(&s->out, FTP_OUT_MAX);
	loop_timer_init(&s->timer, control_timer_cb, s);
	if (proto_watch(x->loop, watched, &s->io, fd, LOOP_READ, control_cb, s) < 0) {
		proto_drop(x->loop, watched, fd);
		free(s->cwd);
		free(s);
		atomic_fetch_sub(x->site->nconns, 1);
		return -1;
	}
	ftp_data_init(s);
	s->next = x->sessions;
	if (x->sessions)
		x->sessions->prev = s;
	x->sessions = s;
	x->nsessions++;
	ftp_reply(s, LK_R_READY, LOOPKIT_VERSION); /* nothing about the server before login */
	ftp_arm_idle(s);
	ftp_control_run(s);
	return 0;
}

static void ctx_stop(void *ctx)
{
	struct ftp_ctx *x = ctx;
	struct ftp_session *next;
	x->stopping = 1;
	for (struct ftp_session *s = x->sessions; s; s = next) {
		next = s->next;
		if (s->xfer) {
			s->close_after_xfer = 1; /* the transfer's end closes it */
			continue;
		}
		if (s->stat_snap)
			stat_end(s); /* the 421 must not land inside the STAT reply */
		ftp_reply_err(s, LK_E_ESHUTDOWN, NULL);
		s->closing = 1;
		ftp_control_run(s);
	}
}

static void ctx_close_all(void *ctx)
{
	struct ftp_ctx *x = ctx;
	while (x->sessions)
		session_close(x->sessions);
}

static unsigned ctx_count(const void *ctx)
{
	const struct ftp_ctx *x = ctx;
	return x->nsessions;
}

static void ctx_free(void *ctx)
{
	struct ftp_ctx *x = ctx;
	if (!x)
		return;
	ctx_close_all(x);
	accesslog_free(&x->log);
	free(x);
}

const struct proto_ops ftp_proto_ops = {
        .name = "ftp",
        .ctx_new = ctx_new,
        .start = session_start,
        .stop = ctx_stop,
        .close_all = ctx_close_all,
        .count = ctx_count,
        .ctx_free = ctx_free,
};

/* ---- for data.c and cmds.c ---- */

void ftp_session_close(struct ftp_session *s)
{
	session_close(s);
}
