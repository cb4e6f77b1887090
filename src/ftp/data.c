/* data.c - the FTP data channel (PASV, EPSV, PORT, EPRT), the transfer pump, and how
 * a transfer ends. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "core/sockdiag.h"
#include "ftp/cmds.h"
#include "ftp/session.h"

/* Bytes one transfer may move per event-loop turn, so that fast clients on big files
 * cannot hold the thread. Measured on a 2-core machine, --threads 1, 8 curl downloads
 * running, other clients' round trips (tests/e2e/test_ftp_fair.py): p99 55 ms at
 * 16 MiB, 25 ms at 1 MiB, 10 ms at 256 KiB, 6 ms at 64 KiB; one download's speed is
 * the same at 256 KiB as at 1 MiB (about 2 GB/s), lower at 64 KiB. */
#define FTP_TURN_BUDGET (256u * 1024)
/* ...and for a RETR whose event was alone in its batch: fewer turns (each an epoll_wait
 * and a timer) for a single download, at most ~2 ms of a newcomer's wait on loopback. */
#define FTP_TURN_BUDGET_ALONE (4u << 20)
#define FTP_RECV_CHUNK        (64 * 1024)
/* After the last byte: how often, at most, the send queue is looked at while the
 * client has not yet taken everything (from 1 ms, doubling). */
#define FTP_DRAIN_POLL_MAX_MS 50
/* Past --max-body an upload is dropped, but up to this much more is read (and thrown
 * away) so that the client finishes sending and reads the 552; beyond it the data
 * connection is cut. */
#define FTP_DISCARD_MAX   (64u << 20)
#define FTP_MIN_DATA_PORT 1024 /* PORT/EPRT below this are refused, as vsftpd does */

static void data_cb(struct loop *l, struct loop_io *io, unsigned events);
static void data_timer_cb(struct loop *l, struct loop_timer *t);

/* A data connection sends each piece at once, as the control and HTTP connections do
 * (the serve listener's TCP_NODELAY): Nagle's hold would merge a copied file's 32 KiB
 * pieces into bigger segments, which the reader takes more slowly (core/filesend.h). */
static void data_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void ftp_data_init(struct ftp_session *s)
{
	s->pasv_io.fd = s->data_io.fd = -1;
	loop_timer_init(&s->data_timer, data_timer_cb, s);
}

int ftp_data_ready(const struct ftp_session *s)
{
	return s->mode != FTP_D_NONE || s->data_io.fd >= 0;
}

/* The address bytes of a (an IPv4-mapped IPv6 address as its IPv4 four) into o; returns
 * their count, 4 or 16, or 0 for another family. */
static int ip_bytes(const struct sockaddr_storage *a, unsigned char o[16])
{
	if (a->ss_family == AF_INET) {
		memcpy(o, &((const struct sockaddr_in *)a)->sin_addr, 4);
		return 4;
	}
	if (a->ss_family != AF_INET6)
		return 0;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		memcpy(o, a6->s6_addr + 12, 4);
		return 4;
	}
	memcpy(o, a6->s6_addr, 16);
	return 16;
}

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	unsigned char x[16], y[16];
	int lx = ip_bytes(a, x), ly = ip_bytes(b, y);
	return lx && lx == ly && !memcmp(x, y, (size_t)lx);
}

static void pasv_close(struct ftp_session *s)
{
	if (s->pasv_io.fd >= 0)
		loop_io_close(s->x->loop, &s->pasv_io);
}

void ftp_data_close(struct ftp_session *s)
{
	if (s->data_io.fd >= 0)
		loop_io_close(s->x->loop, &s->data_io);
	s->data_connecting = 0;
	pasv_close(s);
	loop_timer_stop(s->x->loop, &s->data_timer);
	s->mode = FTP_D_NONE;
}

/* ---- transfer records ---- */

struct ftp_xfer *ftp_xfer_new(enum ftp_xfer_kind k, const char *verb, const char *rel)
{
	struct ftp_xfer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->kind = k;
	t->verb = verb;
	snprintf(t->target, sizeof(t->target), "/%s", rel);
	t->t_start = loop_clock_us();
	filesend_init(&t->file);
	t->up.fd = t->up.dirfd = -1;
	buf_init(&t->out, FTP_LIST_BUF);
	return t;
}

void ftp_xfer_free(struct ftp_ctx *x, struct ftp_xfer *t)
{
	if (!t)
		return;
	filesend_end(&t->file);
	if (t->upload)
		fsroot_upload_abort(&t->up);
	dirsnap_put(x->site->dirs, t->snap);
	buf_free(&t->out);
	free(t);
}

/* ---- how a transfer ends ---- */

/* The transfer is over and its reply queued: the data channel closes, the log gets a
 * record with code, and commands held meanwhile run. */
static void xfer_end(struct ftp_session *s, int code)
{
	struct ftp_xfer *t = s->xfer;
	ftp_data_close(s);
	ftp_log(s, t->verb, t->target, code, t->bytes, t->t_start);
	s->xfer = NULL;
	ftp_xfer_free(s->x, t);
	ftp_arm_idle(s);
	if (s->close_after_xfer || s->x->stopping)
		s->closing = 1;
	ftp_control_run(s);
}

static void xfer_fail(struct ftp_session *s, enum lk_err e, const char *detail)
{
	ftp_reply_err(s, e, detail);
	xfer_end(s, lk_error(e)->ftp);
}

static void xfer_fail_errno(struct ftp_session *s, int neg_errno)
{
	ftp_reply_errno(s, neg_errno);
	xfer_end(s, lk_error(lk_err_from_errno(-neg_errno))->ftp);
}

/* Every byte is through (or, for an upload, in): commit, and say so. */
static void xfer_done(struct ftp_session *s)
{
	struct ftp_xfer *t = s->xfer;
	if (t->over) {
		char lim[32];
		xfer_fail(s, LK_E_ETOOBIG, lk_size_text(s->x->site->max_body, lim, sizeof(lim)));
		return;
	}
	if (t->upload) {
		t->upload = 0;
		int rc = fsroot_upload_commit(&t->up);
		if (rc < 0) {
			xfer_fail_errno(s, rc);
			return;
		}
	}
	ftp_reply(s, LK_R_TRANSFER_DONE, NULL);
	xfer_end(s, lk_reply(LK_R_TRANSFER_DONE)->ftp);
}

static void xfer_lost(struct ftp_session *s)
{
	xfer_fail(s, s->xfer->upload ? LK_E_F_UPLOAD_LOST : LK_E_F_DATA_LOST, NULL);
}

static void xfer_stalled(struct ftp_session *s)
{
	char d[32];
	xfer_fail(s, LK_E_F_DATA_STALL, lk_ms_text(s->x->cfg->data_timeout_ms, d, sizeof(d)));
}

void ftp_cmd_abor(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	if (!s->xfer) {
		ftp_data_close(s);
		ftp_reply(s, LK_R_NO_TRANSFER, NULL);
		return;
	}
	/* RFC 959: 426 for the transfer, then 226 for the ABOR. An upload is dropped. */
	ftp_reply_err(s, LK_E_F_ABORTED, NULL);
	ftp_reply(s, LK_R_ABORT_DONE, NULL);
	xfer_end(s, lk_error(LK_E_F_ABORTED)->ftp);
}

/* After a send or receive on the data connection failed: 0 when it only would block
 * (wait for the next turn), 1 after ending the transfer as lost. */
static int pump_failed(struct ftp_session *s)
{
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	xfer_lost(s);
	return 1;
}

/* ---- draining: 226 only once the client has everything ---- */

/* 1: every byte and our FIN were acknowledged; 0: not yet; -1: the connection failed. */
static int drain_state(int fd)
{
	int err = 0, queued = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err)
		return -1;
	if (ioctl(fd, SIOCOUTQ, &queued) < 0)
		return 1; /* cannot tell: as without the wait */
	return queued == 0;
}

static void drain_check(struct ftp_session *s)
{
	struct ftp_xfer *t = s->xfer;
	int st = drain_state(s->data_io.fd);
	if (st > 0) {
		xfer_done(s);
		return;
	}
	if (st < 0) {
		xfer_lost(s);
		return;
	}
	if (loop_now(s->x->loop) >= t->drain_until) {
		xfer_stalled(s);
		return;
	}
	/* Wake on the client's FIN (most close the data connection after reading it
	 * all), else look again soon: no event says "the send queue is empty". A FIN
	 * already seen is not watched again (it would be reported every turn). */
	if (loop_io_set(s->x->loop, &s->data_io, t->fin_seen ? 0 : LOOP_READ) < 0) {
		xfer_lost(s);
		return;
	}
	loop_timer_start(s->x->loop, &s->data_timer, t->drain_wait);
	t->drain_wait = t->drain_wait * 2 > FTP_DRAIN_POLL_MAX_MS ? FTP_DRAIN_POLL_MAX_MS : t->drain_wait * 2;
}

/* The last byte is queued. A client that reads the control connection only after the
 * data connection's end must find 226 after that end, never before it (aria2c, wget
 * and ftp(1) otherwise wait for a 226 they already missed, or take it for the next
 * command's reply): shut our side, and reply once the kernel has delivered it all. */
static void xfer_drain(struct ftp_session *s)
{
	struct ftp_xfer *t = s->xfer;
	shutdown(s->data_io.fd, SHUT_WR);
	t->draining = 1;
	t->drain_until = loop_now(s->x->loop) + s->x->cfg->data_timeout_ms;
	t->drain_wait = 1;
	drain_check(s);
}

/* Readable while draining: the client's FIN, or bytes it should not send (dropped). */
static void drain_read(struct ftp_session *s, int fd)
{
	char b[4096];
	for (unsigned budget = FTP_TURN_BUDGET; budget >= sizeof(b);) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0) {
			budget -= (unsigned)n;
			continue;
		}
		if (n == 0)
			s->xfer->fin_seen = 1;
		else if (pump_failed(s))
			return;
		break;
	}
	drain_check(s);
}

/* ---- the pump ---- */

static void pump_retr(struct ftp_session *s, int fd)
{
	struct ftp_xfer *t = s->xfer;
	uint64_t budget = loop_batch_alone(s->x->loop) ? FTP_TURN_BUDGET_ALONE : FTP_TURN_BUDGET;
	while (filesend_left(&t->file) && budget) {
		ssize_t n = filesend_send(&t->file, fd, (size_t)budget);
		if (n < 0) {
			if (pump_failed(s))
				return;
			break;
		}
		if (n == 0) {
			xfer_fail(s, LK_E_ESHRANK, NULL);
			return;
		}
		t->bytes += (uint64_t)n;
		budget -= (uint64_t)n;
	}
	if (!filesend_left(&t->file))
		xfer_drain(s);
	else
		loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
}

/* Formats listing lines into t->out while a whole line still fits; the snapshot goes
 * back as soon as its last line is out. */
static void list_fill(struct ftp_session *s, struct ftp_xfer *t)
{
	const struct dirsnap *d = t->snap;
	while (d && t->next < d->n) {
		size_t avail;
		char *p = buf_space(&t->out, FTP_LIST_LINE_MAX, &avail);
		if (!p)
			return;
		t->out.len +=
		        ftp_list_line(p, avail, t->lkind, &d->ents[t->next++], t->now, s->x->site->write, 1);
	}
	dirsnap_put(s->x->site->dirs, d);
	t->snap = NULL;
}

static void pump_list(struct ftp_session *s, int fd)
{
	struct ftp_xfer *t = s->xfer;
	uint64_t budget = FTP_TURN_BUDGET;
	while (budget) {
		if (!buf_used(&t->out)) {
			list_fill(s, t);
			if (!buf_used(&t->out))
				break;
		}
		ssize_t n = send(fd, buf_start(&t->out), buf_used(&t->out), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (pump_failed(s))
				return;
			break;
		}
		buf_consume(&t->out, (size_t)n);
		t->bytes += (uint64_t)n;
		budget = (uint64_t)n >= budget ? 0 : budget - (uint64_t)n;
	}
	if (!buf_used(&t->out) && !t->snap) {
		buf_free(&t->out);
		xfer_drain(s);
	} else {
		loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
	}
}

static void pump_stor(struct ftp_session *s, int fd)
{
	struct ftp_xfer *t = s->xfer;
	const struct proto_site *site = s->x->site;
	char chunk[FTP_RECV_CHUNK];
	uint64_t budget = FTP_TURN_BUDGET;
	while (budget) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n < 0) {
			if (pump_failed(s))
				return;
			break;
		}
		if (n == 0) {
			xfer_done(s);
			return;
		}
		t->bytes += (uint64_t)n;
		budget = (uint64_t)n >= budget ? 0 : budget - (uint64_t)n;
		if (t->over) {
			if (t->bytes - site->max_body > FTP_DISCARD_MAX) {
				xfer_done(s); /* 552, and the data connection is cut */
				return;
			}
			continue;
		}
		if (t->bytes > site->max_body) {
			/* The old file stays; the rest is read and dropped (see FTP_DISCARD_MAX). */
			fsroot_upload_abort(&t->up);
			t->upload = 0;
			t->over = 1;
			continue;
		}
		int rc = fsroot_upload_write(&t->up, chunk, (size_t)n);
		if (rc < 0) {
			xfer_fail_errno(s, rc);
			return;
		}
	}
	loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
}

/* ---- the data connection ---- */

/* The data connection is up: start moving bytes. */
static void data_go(struct ftp_session *s)
{
	unsigned mask = s->xfer->kind == FTP_X_STOR ? LOOP_READ : LOOP_WRITE;
	if (loop_io_set(s->x->loop, &s->data_io, mask) < 0) {
		xfer_fail(s, LK_E_F_DATA_OPEN, NULL);
		return;
	}
	loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
}

static void data_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct ftp_session *s = t->data;
	char d[32];
	if (!s->xfer) {
		ftp_data_close(s);
		return;
	}
	if (s->xfer->draining)
		drain_check(s);
	else if (s->data_io.fd < 0 || s->data_connecting)
		xfer_fail(s, LK_E_F_DATA_NOBODY, lk_ms_text(s->x->cfg->data_timeout_ms, d, sizeof(d)));
	else
		xfer_stalled(s);
}

static void data_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct ftp_session *s = io->data;
	struct ftp_xfer *t = s->xfer;
	if (s->data_connecting) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			xfer_fail(s, LK_E_F_DATA_OPEN, NULL);
			return;
		}
		s->data_connecting = 0;
		data_go(s);
		return;
	}
	if (!t) {
		/* Connected ahead of the command: only a hang-up matters now, and it would
		 * be reported again and again by level-triggered epoll. */
		if (events & LOOP_ERROR) {
			loop_io_close(l, io);
			if (s->pasv_io.fd < 0)
				s->mode = FTP_D_NONE; /* the next transfer gets 425 at once */
		}
		return;
	}
	if (t->draining)
		drain_read(s, io->fd);
	else if (t->kind == FTP_X_RETR)
		pump_retr(s, io->fd);
	else if (t->kind == FTP_X_LIST)
		pump_list(s, io->fd);
	else
		pump_stor(s, io->fd);
}

static void pasv_accept_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct ftp_session *s = io->data;
	for (;;) {
		struct sockaddr_storage peer, dlocal;
		socklen_t plen = sizeof(peer), dl = sizeof(dlocal);
		struct sockdiag_sock sd;
		int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* On loopback every user's address is 127.0.0.1: the owner of the
		 * connecting socket tells the session's client from another user. */
		if (s->peer_uid >= 0 &&
		    (getsockname(fd, (struct sockaddr *)&dlocal, &dl) < 0 ||
		     sockdiag_peer(&dlocal, &peer, &sd) < 0 || (int)sd.uid != s->peer_uid)) {
			log_msg("ftp: refused a data connection from another user's socket: the session "
			        "belongs to uid %d",
			        s->peer_uid);
			close(fd);
			continue;
		}
		if (!same_ip(&peer, &s->peer.addr)) {
			/* vsftpd's pasv_promiscuous=NO: only the control connection's host may
			 * take the data connection, or another machine could take the files. */
			char a[64];
			log_msg("ftp: refused a data connection from %s: the session belongs to %s",
			        net_addr_str((struct sockaddr *)&peer, a, sizeof(a)), s->peer.addr_str);
			close(fd);
			continue;
		}
		pasv_close(s);
		data_nodelay(fd);
		if (loop_io_start(l, &s->data_io, fd, 0, data_cb, s) < 0) {
			close(fd);
			if (s->xfer)
				xfer_fail(s, LK_E_F_DATA_OPEN, NULL);
			return;
		}
		if (s->xfer)
			data_go(s);
		return;
	}
}

/* Opens the passive listener on the control connection's local address, in the
 * configured range. */
static int pasv_open(struct ftp_session *s, uint16_t *port)
{
	struct sockaddr_storage a = s->local;
	const struct ftp_config *cfg = s->x->cfg;
	char err[256];
	ftp_data_close(s);
	unsigned lo = cfg->pasv_lo, hi = cfg->pasv_hi, span = lo ? hi - lo + 1 : 1;
	unsigned start = lo ? (unsigned)(loop_clock_us() % span) : 0;
	socklen_t alen = a.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	for (unsigned i = 0; i < span; i++) {
		uint16_t p = lo ? (uint16_t)(lo + (start + i) % span) : 0;
		net_ss_set_port(&a, p);
		int fd = net_listen((struct sockaddr *)&a, alen, 1, 0, err, sizeof(err));
		if (fd < 0)
			continue;
		if (loop_io_start(s->x->loop, &s->pasv_io, fd, LOOP_READ, pasv_accept_cb, s) < 0) {
			close(fd);
			return -1;
		}
		*port = net_local_port(fd);
		s->mode = FTP_D_PASV;
		return 0;
	}
	return -1;
}

/* On this machine every user has the same addresses (127.0.0.1 for all on loopback),
 * so "the control peer's address" does not tell the client's listener from another
 * user's, or from the passive listener of another server of ours (a bounce into it
 * would pass that server's uid check as us). A PORT/EPRT target of a local client is
 * therefore taken only when the listener a connection to it reaches belongs to the
 * client's uid (sock_diag). A remote client keeps the address rule alone.
 * Returns 0 with the listener's inode in *inode (0 for a remote client), or -1 with
 * why in detail. */
static int port_target_check(const struct ftp_session *s, const struct sockaddr_storage *a, uint32_t *inode,
                             char *detail, size_t dlen)
{
	struct sockdiag_sock sd;
	char at[64];
	*inode = 0;
	net_ss_text(a, at, sizeof(at));
	if (s->peer_uid < 0) {
		if (!net_is_loopback((const struct sockaddr *)&s->peer.addr))
			return 0;
		snprintf(detail, dlen,
		         "the user of your connection cannot be established (sock_diag), so no "
		         "listener can be checked to be yours");
		return -1;
	}
	if (sockdiag_listener(a, &sd) < 0) {
		if (errno == ENOENT)
			snprintf(detail, dlen, "nothing listens at %s (listen before sending PORT or EPRT)",
			         at);
		else
			snprintf(detail, dlen,
			         "the owner of the listener at %s cannot be established (sock_diag: %s)", at,
			         strerror(errno));
		return -1;
	}
	if ((int)sd.uid != s->peer_uid) {
		snprintf(detail, dlen,
		         "the listener at %s belongs to another user (uid %u, you are uid %d); on "
		         "this machine every user has your address",
		         at, sd.uid, s->peer_uid);
		return -1;
	}
	*inode = sd.inode;
	return 0;
}

/* Connects to the PORT/EPRT address (checked to be the control peer's, and for a
 * local client checked again here to be the listener PORT found: one that closed
 * since may have been replaced by another user's). On failure it fails the transfer. */
static void port_connect(struct ftp_session *s)
{
	struct sockaddr_storage src = s->local;
	int fam = s->port_addr.ss_family;
	socklen_t len = fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (s->port_inode) {
		struct sockdiag_sock sd;
		if (sockdiag_listener(&s->port_addr, &sd) < 0 || sd.inode != s->port_inode) {
			char at[64], d[128];
			net_ss_text(&s->port_addr, at, sizeof(at));
			snprintf(d, sizeof(d), "the listener at %s is not the one PORT or EPRT found", at);
			log_msg("ftp: active data connection to %s for %s refused: its listener changed "
			        "since "
			        "PORT/EPRT",
			        at, s->peer.addr_str);
			xfer_fail(s, LK_E_F_PORT_GONE, d);
			return;
		}
	}
	int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		xfer_fail(s, LK_E_F_DATA_OPEN, NULL);
		return;
	}
	data_nodelay(fd);
	/* From the control connection's address, so the client sees the server it knows. */
	if (src.ss_family == fam) {
		if (fam == AF_INET)
			((struct sockaddr_in *)&src)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
		if (bind(fd, (struct sockaddr *)&src, len) < 0)
			log_msg("ftp: cannot bind the active data connection to %s: %s; the kernel picks",
			        s->peer.addr_str, strerror(errno));
	}
	if ((connect(fd, (struct sockaddr *)&s->port_addr, len) < 0 && errno != EINPROGRESS) ||
	    loop_io_start(s->x->loop, &s->data_io, fd, LOOP_WRITE, data_cb, s) < 0) {
		close(fd);
		xfer_fail(s, LK_E_F_DATA_OPEN, NULL);
		return;
	}
	s->data_connecting = 1;
	loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
}

void ftp_xfer_start(struct ftp_session *s, struct ftp_xfer *t)
{
	s->xfer = t;
	loop_timer_stop(s->x->loop, &s->timer); /* no idle timeout during a transfer */
	if (s->data_io.fd >= 0 && !s->data_connecting)
		data_go(s);
	else if (s->mode == FTP_D_PASV)
		loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
	else
		port_connect(s);
}

/* ---- commands ---- */

/* PASV (c->arg 0) and EPSV (c->arg 1; "EPSV ALL" forbids the others). */
void ftp_cmd_pasv(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char d[64];
	uint16_t port;
	if (c->arg && !strcasecmp(arg, "ALL")) {
		s->epsv_all = 1;
		ftp_reply(s, LK_R_EPSV_ALL_OK, NULL);
		return;
	}
	if (!c->arg && s->epsv_all) {
		ftp_reply_err(s, LK_E_F_EPSV_ALL, c->verb);
		return;
	}
	if (!c->arg && s->local.ss_family != AF_INET) {
		ftp_reply_err(s, LK_E_F_PASV_V4, NULL);
		return;
	}
	if (c->arg && *arg) { /* EPSV 1 or 2 (RFC 2428 3): the control connection's family only */
		const char *want = s->local.ss_family == AF_INET ? "1" : "2";
		if (strcmp(arg, "1") && strcmp(arg, "2")) {
			ftp_reply_err(s, LK_E_F_EPSV_ARG, NULL);
			return;
		}
		if (strcmp(arg, want)) {
			ftp_reply_err(s, LK_E_F_EPSV_PROTO, want);
			return;
		}
	}
	if (pasv_open(s, &port) < 0) {
		ftp_reply_err(s, LK_E_F_NO_LISTENER, NULL);
		return;
	}
	if (c->arg) {
		snprintf(d, sizeof(d), "%u", port);
		ftp_reply(s, LK_R_EPSV, d);
		return;
	}
	uint32_t a = ntohl(((struct sockaddr_in *)&s->local)->sin_addr.s_addr);
	snprintf(d, sizeof(d), "%u,%u,%u,%u,%u,%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255,
	         (unsigned)port >> 8, (unsigned)port & 255);
	ftp_reply(s, LK_R_PASV, d);
}

/* PORT (c->arg 0) and EPRT (c->arg 1). */
void ftp_cmd_port(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	struct sockaddr_storage a;
	if (s->epsv_all) {
		ftp_reply_err(s, LK_E_F_EPSV_ALL, c->verb);
		return;
	}
	if ((c->arg ? ftp_parse_eprt(arg, &a) : ftp_parse_port(arg, &a)) < 0) {
		ftp_reply_err(s, LK_E_F_BAD_ADDR, c->verb);
		return;
	}
	if (!same_ip(&a, &s->peer.addr)) {
		char ip[64];
		log_msg("ftp: refused %s to %s from %s (FTP bounce protection)", c->verb,
		        net_addr_str((struct sockaddr *)&a, ip, sizeof(ip)), s->peer.addr_str);
		ftp_reply_err(s, LK_E_F_BOUNCE, s->peer.addr_str);
		return;
	}
	if (net_ss_port(&a) < FTP_MIN_DATA_PORT) {
		/* A local service's port is not an FTP client's. */
		char d[16];
		snprintf(d, sizeof(d), "%d", FTP_MIN_DATA_PORT);
		ftp_reply_err(s, LK_E_F_LOW_PORT, d);
		return;
	}
	uint32_t inode;
	char why[256];
	if (port_target_check(s, &a, &inode, why, sizeof(why)) < 0) {
		log_msg("ftp: refused %s from %s: %s", c->verb, s->peer.addr_str, why);
		ftp_reply_err(s, LK_E_F_PORT_REFUSED, why);
		return;
	}
	ftp_data_close(s);
	s->port_inode = inode;
	s->port_addr = a;
	s->mode = FTP_D_PORT;
	ftp_reply(s, LK_R_PORT_OK, c->verb);
}
