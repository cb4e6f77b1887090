/* session.c - FTP sessions: control commands, passive/active data channels, transfers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/errors.h"
#include "core/json.h"
#include "core/log.h"
#include "core/net.h"
#include "core/sockdiag.h"
#include "ftp/ftp.h"
#include "ftp/parse.h"

#define FTP_OUT_MAX     (1 << 20)
#define FTP_LIST_MAX    (64 << 20)
#define FTP_MAX_LISTING 100000
#define FTP_CHUNK       (256 * 1024)
#define FTP_LOGIN_DELAY 500 /* ms before a failed login is answered */

enum xfer { X_NONE, X_RETR, X_STOR, X_LIST };
enum data_mode { D_NONE, D_PASV, D_PORT };

struct ftp_session {
	struct ftp_ctx *x;
	struct ftp_session *prev, *next;
	struct loop_io io;       /* control connection */
	struct loop_timer timer; /* idle timeout, delayed login reply */
	struct buf in, out;
	struct sockaddr_storage peer, local;
	char peer_str[48];
	int peer_uid;                   /* uid owning the client's control socket; -1 unknown */
	int closing;   /* close once out is flushed */
	int close_after_xfer;             /* shutting down: close when the transfer ends */
	int skip_line; /* discarding the rest of an over-long line */
	int logged_in, user_given;
	char user[64];
	char *cwd;                      /* normalised relative path, \"\" = root (heap) */
	int epsv_all;
	uint64_t rest;
	char *rnfr;                     /* RNFR's path until RNTO; NULL when none */
	int login_wait; /* a failed login waits before 530 */
	int running;    /* inside control_run: no nested runs */
	int shut;       /* closed; freed after the batch */

	/* data channel */
	enum data_mode mode;
	struct loop_io pasv_io; /* passive listener */
	struct sockaddr_storage port_addr;
	struct loop_io data_io; /* connected (or connecting) data socket */
	int data_connecting;
	struct loop_timer data_timer;

	/* transfer */
	enum xfer xfer;
	int file_fd;
	off_t file_off;
	uint64_t left;
	int upload; /* up is live */
	struct fsroot_upload up;
	struct buf list; /* listing being sent */
	uint64_t bytes;
	uint64_t t_start;
	char what[300]; /* "RETR /a.txt" for replies and the log */
};

static void session_close(struct ftp_session *s);
static void data_close(struct ftp_session *s);
static void control_run(struct ftp_session *s);

/* ---- replies and logging ---- */

static void reply(struct ftp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct ftp_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	/* A reply line never carries a bare CR or LF from a file name. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\r' || line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\r';
	line[n++] = '\n';
	if (buf_append(&s->out, line, (size_t)n) < 0)
		s->closing = 1;
}

static void access_log(struct ftp_session *s, int code)
{
	if (s->x->cfg->log == 2)
		return;
	char line[1024];
	struct timespec now;
	struct tm tm;
	char when[64];
	uint64_t us = loop_clock_us() - s->t_start;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	int n;
	if (s->x->cfg->log == 0) {
		strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S +0000", &tm);
		n = snprintf(line, sizeof(line), "%s - %s [%s] \"%s FTP\" %d %llu %llu\n", s->peer_str,
		             s->user[0] ? s->user : "-", when, s->what, code, (unsigned long long)s->bytes,
		             (unsigned long long)us);
	} else {
		struct buf b;
		struct json j;
		char ts[80];
		buf_init(&b, sizeof(line) - 2);
		json_init(&j, &b, 0);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(ts, sizeof(ts), "%s.%03ldZ", when, now.tv_nsec / 1000000);
		json_obj_begin(&j);
		json_key(&j, "time");
		json_str(&j, ts);
		json_key(&j, "remote");
		json_str(&j, s->peer_str);
		json_key(&j, "user");
		json_str(&j, s->user);
		json_key(&j, "command");
		json_str(&j, s->what);
		json_key(&j, "proto");
		json_str(&j, "FTP");
		json_key(&j, "status");
		json_int(&j, code);
		json_key(&j, "bytes");
		json_uint(&j, s->bytes);
		json_key(&j, "us");
		json_uint(&j, us);
		json_obj_end(&j);
		n = snprintf(line, sizeof(line), "%.*s\n", (int)buf_used(&b),
		             buf_start(&b) ? buf_start(&b) : "");
		buf_free(&b);
	}
	if (n > 0)
		log_sink_write(s->x->log, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* ---- paths ---- */

/* Resolves a command argument against the cwd. Returns 0, or -1 after replying. */
static int resolve(struct ftp_session *s, const char *arg, char *out, size_t outsz)
{
	if (fsroot_join(s->cwd, arg, out, outsz) < 0) {
		reply(s, "553 Path too long.");
		return -1;
	}
	return 0;
}

static void reply_err(struct ftp_session *s, int neg_errno, const char *what)
{
	const struct lk_error *e = lk_error(lk_err_from_errno(-neg_errno));
	reply(s, "%d %s: %s.", e->ftp, what, e->msg);
}

/* "/dir" for replies: quotes doubled (RFC 959 257). */
static void quote_path(const char *rel, char *out, size_t outsz)
{
	size_t o = 0;
	if (outsz < 4)
		return;
	out[o++] = '/';
	for (const char *p = rel; *p && o + 3 < outsz; p++) {
		out[o++] = *p;
		if (*p == '"')
			out[o++] = '"';
	}
	out[o] = 0;
}

/* ---- the data channel ---- */

static int same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	unsigned char x[16], y[16];
	int lx, ly;
	for (int k = 0; k < 2; k++) {
		const struct sockaddr_storage *s = k ? b : a;
		unsigned char *o = k ? y : x;
		int *l = k ? &ly : &lx;
		if (s->ss_family == AF_INET) {
			memcpy(o, &((const struct sockaddr_in *)s)->sin_addr, 4);
			*l = 4;
		} else if (s->ss_family == AF_INET6) {
			const struct in6_addr *a6 = &((const struct sockaddr_in6 *)s)->sin6_addr;
			if (IN6_IS_ADDR_V4MAPPED(a6)) {
				memcpy(o, a6->s6_addr + 12, 4);
				*l = 4;
			} else {
				memcpy(o, a6->s6_addr, 16);
				*l = 16;
			}
		} else {
			return 0;
		}
	}
	return lx == ly && !memcmp(x, y, (size_t)lx);
}

static void pasv_close(struct ftp_session *s)
{
	if (s->pasv_io.fd >= 0) {
		int fd = s->pasv_io.fd;
		loop_io_stop(s->x->loop, &s->pasv_io);
		close(fd);
	}
}

static void data_close(struct ftp_session *s)
{
	if (s->data_io.fd >= 0) {
		int fd = s->data_io.fd;
		loop_io_stop(s->x->loop, &s->data_io);
		close(fd);
	}
	s->data_connecting = 0;
	pasv_close(s);
	loop_timer_stop(s->x->loop, &s->data_timer);
	s->mode = D_NONE;
}

static void xfer_reset(struct ftp_session *s)
{
	if (s->file_fd >= 0)
		close(s->file_fd);
	s->file_fd = -1;
	if (s->upload)
		fsroot_upload_abort(&s->up);
	s->upload = 0;
	buf_free(&s->list);
	s->xfer = X_NONE;
	s->left = 0;
	s->rest = 0;
}

static void arm_idle(struct ftp_session *s)
{
	loop_timer_start(s->x->loop, &s->timer, s->x->cfg->idle_timeout_ms);
}

/* Ends the transfer with one reply; commands held meanwhile run next. */
static void xfer_end(struct ftp_session *s, int code, const char *msg, int log_code);

static void xfer_finish(struct ftp_session *s, int code, const char *msg)
{
	xfer_end(s, code, msg, 0);
}

/* log_code: what the access log records when it differs from the reply (ABOR). */
static void xfer_end(struct ftp_session *s, int code, const char *msg, int log_code)
{
	if (s->upload && code == 226) {
		int rc = fsroot_upload_commit(&s->up);
		s->upload = 0;
		if (rc < 0) {
			const struct lk_error *e = lk_error(lk_err_from_errno(-rc));
			code = e->ftp;
			msg = e->msg;
		}
	}
	data_close(s);
	xfer_reset(s);
	reply(s, "%d %s", code, msg);
	access_log(s, log_code ? log_code : code);
	arm_idle(s);
	if (s->close_after_xfer || s->x->stopping)
		s->closing = 1;
	control_run(s);
}

static void data_cb(struct loop *l, struct loop_io *io, unsigned events);

/* The data connection is up: start moving bytes. */
static void data_go(struct ftp_session *s)
{
	unsigned mask = s->xfer == X_STOR ? LOOP_READ : LOOP_WRITE;
	if (loop_io_set(s->x->loop, &s->data_io, mask) < 0) {
		xfer_finish(s, 425, "Cannot use the data connection.");
		return;
	}
	loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
}

static void data_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct ftp_session *s = t->data;
	if (s->xfer == X_NONE) {
		data_close(s);
		return;
	}
	if (s->data_io.fd < 0 || s->data_connecting)
		xfer_finish(s, 425, "Cannot open data connection: nobody connected in time.");
	else
		xfer_finish(s, 426, "Data connection stalled; transfer aborted.");
}

static void pasv_accept_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct ftp_session *s = io->data;
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct sockdiag_sock ps;
		struct sockaddr_storage dlocal;
		socklen_t dl = sizeof(dlocal);
		int other_user = s->peer_uid >= 0 &&
		                 (getsockname(fd, (struct sockaddr *)&dlocal, &dl) < 0 ||
		                  sockdiag_peer(&dlocal, &peer, &ps) < 0 || (int)ps.uid != s->peer_uid);
		if (other_user) {
			/* On loopback every user's address is 127.0.0.1: the owner of the
			 * connecting socket tells the session's client from another user. */
			log_msg("ftp: refused a data connection from another user's socket: the session "
			        "belongs to uid %d", s->peer_uid);
			close(fd);
			continue;
		}
		if (!same_ip(&peer, &s->peer)) {
			/* vsftpd's pasv_promiscuous=NO: only the control connection's host may
			 * take the data connection, or another local user could steal files. */
			char a[64];
			log_msg("ftp: refused a data connection from %s: the session belongs to %s",
			        net_addr_str((struct sockaddr *)&peer, a, sizeof(a)), s->peer_str);
			close(fd);
			continue;
		}
		pasv_close(s);
		if (loop_io_start(l, &s->data_io, fd, 0, data_cb, s) < 0) {
			close(fd);
			if (s->xfer != X_NONE)
				xfer_finish(s, 425, "Cannot use the data connection.");
			return;
		}
		if (s->xfer != X_NONE)
			data_go(s);
		return;
	}
}

/* Opens the passive listener on the control connection's local address. */
static int pasv_open(struct ftp_session *s, uint16_t *port)
{
	struct sockaddr_storage a = s->local;
	const struct ftp_config *cfg = s->x->cfg;
	char err[256];
	data_close(s);
	unsigned lo = cfg->pasv_lo, hi = cfg->pasv_hi, span = lo ? hi - lo + 1 : 1;
	unsigned start = lo ? (unsigned)(loop_clock_us() % span) : 0;
	for (unsigned i = 0; i < span; i++) {
		uint16_t p = lo ? (uint16_t)(lo + (start + i) % span) : 0;
		if (a.ss_family == AF_INET)
			((struct sockaddr_in *)&a)->sin_port = htons(p);
		else
			((struct sockaddr_in6 *)&a)->sin6_port = htons(p);
		int fd = net_listen((struct sockaddr *)&a,
		                    a.ss_family == AF_INET ? sizeof(struct sockaddr_in)
		                                           : sizeof(struct sockaddr_in6),
		                    1, 0, err, sizeof(err));
		if (fd < 0)
			continue;
		if (loop_io_start(s->x->loop, &s->pasv_io, fd, LOOP_READ, pasv_accept_cb, s) < 0) {
			close(fd);
			return -1;
		}
		*port = net_local_port(fd);
		s->mode = D_PASV;
		return 0;
	}
	return -1;
}

/* Connects to the PORT/EPRT address (checked to be the control peer's). */
static int port_connect(struct ftp_session *s)
{
	struct sockaddr_storage src = s->local;
	int fd = socket(s->port_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* From the control connection's address, so the client sees the server it knows. */
	if (src.ss_family == s->port_addr.ss_family) {
		if (src.ss_family == AF_INET)
			((struct sockaddr_in *)&src)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
		bind(fd, (struct sockaddr *)&src,
		     src.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	}
	socklen_t len =
	        s->port_addr.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (connect(fd, (struct sockaddr *)&s->port_addr, len) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	if (loop_io_start(s->x->loop, &s->data_io, fd, LOOP_WRITE, data_cb, s) < 0) {
		close(fd);
		return -1;
	}
	s->data_connecting = 1;
	loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
	return 0;
}

/* Begins a transfer whose 150 reply is queued. */
static void xfer_start(struct ftp_session *s)
{
	s->t_start = loop_clock_us();
	s->bytes = 0;
	loop_timer_stop(s->x->loop, &s->timer); /* no idle timeout during a transfer */
	if (s->data_io.fd >= 0 && !s->data_connecting) {
		data_go(s);
	} else if (s->mode == D_PASV) {
		loop_timer_start(s->x->loop, &s->data_timer, s->x->cfg->data_timeout_ms);
	} else if (s->mode == D_PORT) {
		if (port_connect(s) < 0)
			xfer_finish(s, 425, "Cannot open data connection.");
	}
}

static void data_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct ftp_session *s = io->data;
	if (s->data_connecting) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			xfer_finish(s, 425, "Cannot open data connection.");
			return;
		}
		s->data_connecting = 0;
		data_go(s);
		return;
	}
	if (s->xfer == X_NONE) {
		/* Connected ahead of the command: only a hang-up matters now, and it would
		 * be reported again and again by level-triggered epoll. */
		if (events & LOOP_ERROR) {
			int fd = io->fd;
			loop_io_stop(l, io);
			close(fd);
			if (s->pasv_io.fd < 0)
				s->mode = D_NONE; /* the next transfer gets 425 at once */
		}
		return;
	}
	uint64_t budget = 16u << 20; /* per callback, so one transfer cannot starve others */
	if (s->xfer == X_RETR) {
		while (s->left && budget) {
			size_t want = s->left < FTP_CHUNK * 8 ? (size_t)s->left : FTP_CHUNK * 8;
			ssize_t n = sendfile(io->fd, s->file_fd, &s->file_off, want);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				xfer_finish(s, 426, "Connection closed; transfer aborted.");
				return;
			}
			if (n == 0) {
				xfer_finish(s, 451, "File shrank during the transfer; aborted.");
				return;
			}
			s->left -= (uint64_t)n;
			s->bytes += (uint64_t)n;
			budget = (uint64_t)n >= budget ? 0 : budget - (uint64_t)n;
		}
		if (!s->left)
			xfer_finish(s, 226, "Transfer complete.");
		else
			loop_timer_start(l, &s->data_timer, s->x->cfg->data_timeout_ms);
		return;
	}
	if (s->xfer == X_LIST) {
		while (buf_used(&s->list)) {
			ssize_t n = send(io->fd, buf_start(&s->list), buf_used(&s->list),
			                 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				xfer_finish(s, 426, "Connection closed; transfer aborted.");
				return;
			}
			buf_consume(&s->list, (size_t)n);
			s->bytes += (uint64_t)n;
		}
		if (!buf_used(&s->list))
			xfer_finish(s, 226, "Transfer complete.");
		else
			loop_timer_start(l, &s->data_timer, s->x->cfg->data_timeout_ms);
		return;
	}
	/* X_STOR */
	char chunk[64 * 1024];
	while (budget) {
		ssize_t n = recv(io->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			xfer_finish(s, 426,
			            "Connection closed; transfer aborted, the old file is untouched.");
			return;
		}
		if (n == 0) {
			xfer_finish(s, 226, "Transfer complete.");
			return;
		}
		int rc = fsroot_upload_write(&s->up, chunk, (size_t)n);
		if (rc < 0) {
			const struct lk_error *e = lk_error(lk_err_from_errno(-rc));
			char m[160];
			snprintf(m, sizeof(m), "%s; the old file is untouched.", e->msg);
			xfer_finish(s, e->ftp, m);
			return;
		}
		s->bytes += (uint64_t)n;
		budget = (uint64_t)n >= budget ? 0 : budget - (uint64_t)n;
	}
	loop_timer_start(l, &s->data_timer, s->x->cfg->data_timeout_ms);
}

/* ---- listings ---- */

static void fmt_modify(time_t t, char *out, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y%m%d%H%M%S", &tm);
}

static void mode_str(mode_t m, int is_dir, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	out[0] = is_dir ? 'd' : '-';
	for (int i = 0; i < 9; i++)
		out[i + 1] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	out[10] = 0;
}

static const char *perm_facts(const struct ftp_session *s, int is_dir)
{
	if (is_dir)
		return s->x->cfg->write ? "elcmp" : "el";
	return s->x->cfg->write ? "radfw" : "r";
}

enum list_kind { L_LIST, L_NLST, L_MLSD };

static void list_line(struct ftp_session *s, struct buf *b, enum list_kind k, const char *name, int is_dir,
                      uint64_t size, time_t mtime, mode_t mode)
{
	char when[32];
	if (strpbrk(name, "\r\n"))
		return; /* one name would read as two lines: such a name is not listed */
	if (k == L_NLST) {
		buf_printf(b, "%s\r\n", name);
	} else if (k == L_MLSD) {
		fmt_modify(mtime, when, sizeof(when));
		buf_printf(b, "type=%s;size=%llu;modify=%s;perm=%s; %s\r\n", is_dir ? "dir" : "file",
		           (unsigned long long)size, when, perm_facts(s, is_dir), name);
	} else {
		char ms[11];
		struct tm tm;
		time_t now = time(NULL);
		gmtime_r(&mtime, &tm);
		/* ls -l: time of day within six months, else the year. */
		if (mtime > now - 180 * 86400 && mtime < now + 86400)
			strftime(when, sizeof(when), "%b %e %H:%M", &tm);
		else
			strftime(when, sizeof(when), "%b %e  %Y", &tm);
		mode_str(mode, is_dir, ms);
		buf_printf(b, "%s 1 ftp ftp %12llu %s %s\r\n", ms, (unsigned long long)size, when, name);
	}
}

/* Fills b with a listing of rel (a directory, or one file). Returns 0 or -errno. */
static int build_listing(struct ftp_session *s, struct buf *b, enum list_kind k, const char *rel)
{
	const struct fsroot *root = s->x->root;
	int fd = fsroot_open(root, rel, O_PATH);
	struct stat st;
	if (fd < 0)
		return fd;
	int ok = fstat(fd, &st) == 0;
	close(fd);
	if (!ok)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		const char *base = strrchr(rel, '/');
		list_line(s, b, k, base ? base + 1 : rel, 0, (uint64_t)st.st_size, st.st_mtim.tv_sec,
		          st.st_mode);
		return 0;
	}
	struct fsroot_dent *v;
	size_t n, more;
	int rc = fsroot_list(root, rel, FTP_MAX_LISTING, &v, &n, &more);
	if (rc < 0)
		return rc;
	if (k == L_LIST)
		buf_printf(b, "total %zu\r\n", n);
	for (size_t i = 0; i < n; i++)
		list_line(s, b, k, v[i].name, v[i].is_dir, v[i].size, v[i].mtime.tv_sec, v[i].mode);
	fsroot_list_free(v, n);
	return 0;
}

/* ---- commands ---- */

static int need_data(struct ftp_session *s)
{
	if (s->mode == D_NONE && s->data_io.fd < 0) {
		reply(s, "425 Use PASV, EPSV, PORT or EPRT first.");
		return 0;
	}
	return 1;
}

static int need_write(struct ftp_session *s)
{
	if (!s->x->cfg->write) {
		reply(s, "550 Permission denied: the server is read-only (start it with --write).");
		return 0;
	}
	return 1;
}

/* LIST/NLST arguments may start with ls options ("-la"): skip them. */
static const char *skip_ls_options(const char *arg)
{
	while (arg[0] == '-') {
		while (*arg && *arg != ' ')
			arg++;
		while (*arg == ' ')
			arg++;
	}
	return arg;
}

static void cmd_list(struct ftp_session *s, const char *verb, const char *arg, enum list_kind k)
{
	char rel[PATH_MAX];
	if (!need_data(s) || resolve(s, k == L_MLSD ? arg : skip_ls_options(arg), rel, sizeof(rel)) < 0)
		return;
	buf_init(&s->list, FTP_LIST_MAX);
	int rc = build_listing(s, &s->list, k, rel);
	if (rc < 0) {
		buf_free(&s->list);
		reply_err(s, rc, "Cannot list");
		return;
	}
	snprintf(s->what, sizeof(s->what), "%s /%.280s", verb, rel);
	s->xfer = X_LIST;
	reply(s, "150 Here comes the listing.");
	xfer_start(s);
}

static void cmd_retr(struct ftp_session *s, const char *arg)
{
	char rel[PATH_MAX];
	struct stat st;
	if (!need_data(s) || resolve(s, arg, rel, sizeof(rel)) < 0)
		return;
	int fd = fsroot_open(s->x->root, rel, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		reply_err(s, fd, "Cannot open file");
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		reply(s, "550 Not a plain file.");
		return;
	}
	if ((uint64_t)st.st_size < s->rest) {
		close(fd);
		reply(s, "551 Restart position %llu is past the end of the file.",
		      (unsigned long long)s->rest);
		s->rest = 0;
		return;
	}
	s->file_fd = fd;
	s->file_off = (off_t)s->rest;
	s->left = (uint64_t)st.st_size - s->rest;
	s->xfer = X_RETR;
	snprintf(s->what, sizeof(s->what), "RETR /%.280s", rel);
	reply(s, "150 Opening BINARY mode data connection for /%s (%llu bytes).", rel,
	      (unsigned long long)s->left);
	xfer_start(s);
}

/* Copies the first n bytes of the existing target into the upload (REST, APPE). */
static int copy_prefix(struct ftp_session *s, const char *rel, uint64_t n, int whole)
{
	int fd = fsroot_open(s->x->root, rel, O_RDONLY);
	struct stat st;
	if (fd < 0)
		return fd == -ENOENT && (whole || n == 0) ? 0 : fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	if (whole)
		n = (uint64_t)st.st_size;
	if (n > (uint64_t)st.st_size) {
		close(fd);
		return -EINVAL;
	}
	off_t in = 0, out = 0;
	while (n) {
		ssize_t c =
		        copy_file_range(fd, &in, s->up.fd, &out, n > (1u << 30) ? (1u << 30) : (size_t)n, 0);
		if (c <= 0) {
			int e = c < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		n -= (uint64_t)c;
	}
	close(fd);
	lseek(s->up.fd, out, SEEK_SET);
	return 0;
}

static void cmd_stor(struct ftp_session *s, const char *verb, const char *arg, int append)
{
	char rel[PATH_MAX];
	if (!need_write(s) || !need_data(s) || resolve(s, arg, rel, sizeof(rel)) < 0)
		return;
	if (!*rel) {
		reply(s, "553 Need a file name.");
		return;
	}
	if (fsroot_hidden(s->x->root, rel)) {
		reply(s, "550 Permission denied: names starting with '.' are hidden (start with --dotfiles).");
		return;
	}
	int rc = fsroot_upload_begin(s->x->root, rel, &s->up);
	if (rc < 0) {
		if (rc == -ENOENT || rc == -ENOTDIR)
			reply(s, "553 Cannot create /%s: no such directory.", rel);
		else
			reply_err(s, rc, "Cannot create file");
		return;
	}
	s->upload = 1;
	rc = append || s->rest ? copy_prefix(s, rel, s->rest, append) : 0;
	if (rc < 0) {
		fsroot_upload_abort(&s->up);
		s->upload = 0;
		if (rc == -EINVAL)
			reply(s, "551 Restart position is past the end of the file.");
		else
			reply_err(s, rc, "Cannot resume");
		s->rest = 0;
		return;
	}
	s->xfer = X_STOR;
	snprintf(s->what, sizeof(s->what), "%s /%.280s", verb, rel);
	reply(s, "150 Ok to send data.");
	xfer_start(s);
}

static void cmd_abor(struct ftp_session *s)
{
	if (s->xfer == X_NONE) {
		data_close(s);
		reply(s, "225 No transfer to abort.");
		return;
	}
	/* The upload is discarded: xfer_finish commits only on 226 from the data side. */
	reply(s, "426 Transfer aborted.");
	if (s->upload) {
		fsroot_upload_abort(&s->up);
		s->upload = 0;
	}
	xfer_end(s, 226, "Abort successful.", 426);
}

static void cmd_feat(struct ftp_session *s)
{
	reply(s, "211-Features:");
	static const char *feats[] = {" EPRT", " EPSV",        " MDTM", " MLST type*;size*;modify*;perm*;",
	                              " PASV", " REST STREAM", " SIZE", " TVFS",
	                              " UTF8"};
	for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++)
		reply(s, "%s", feats[i]);
	reply(s, "211 End");
}

static void cmd_help(struct ftp_session *s)
{
	reply(s, "214-The following commands are recognized:");
	reply(s, " ABOR APPE CDUP CWD DELE EPRT EPSV FEAT HELP LIST MDTM MKD MLSD MLST MODE NLST");
	reply(s, " NOOP OPTS PASS PASV PORT PWD QUIT REST RETR RMD RNFR RNTO SIZE STAT STOR STRU");
	reply(s, " SYST TYPE USER XCUP XCWD XMKD XPWD XRMD ALLO");
	reply(s, "214 Help OK.");
}

static void login_done_cb(struct loop *l, struct loop_timer *t)
{
	struct ftp_session *s = t->data;
	if (s->login_wait) {
		s->login_wait = 0;
		reply(s, "530 Login incorrect.");
		arm_idle(s);
		control_run(s);
		return;
	}
	/* idle timeout */
	reply(s, "421 Timeout: no command for %u seconds; closing.", s->x->cfg->idle_timeout_ms / 1000);
	s->closing = 1;
	control_run(s);
}

static int stat_path(struct ftp_session *s, const char *arg, char *rel, size_t relsz, struct stat *st)
{
	if (resolve(s, arg, rel, relsz) < 0)
		return -1;
	int fd = fsroot_open(s->x->root, rel, O_PATH);
	if (fd < 0) {
		reply_err(s, fd, "No access");
		return -1;
	}
	int ok = fstat(fd, st) == 0;
	close(fd);
	if (!ok) {
		reply_err(s, -errno, "No access");
		return -1;
	}
	return 0;
}

/* Runs one command. Returns 0, or 1 when it must wait (held during a transfer). */
static int command(struct ftp_session *s, const struct ftp_command *c)
{
	const char *v = c->verb, *arg = c->arg;
	char rel[PATH_MAX], q[PATH_MAX * 2 + 4], when[32];
	struct stat st;
	int rc;
#define IS(x) (!strcmp(v, x))
	if (s->xfer != X_NONE) {
		if (IS("ABOR"))
			cmd_abor(s);
		else if (IS("STAT"))
			reply(s, "213 Transferring %s: %llu bytes so far.", s->what,
			      (unsigned long long)s->bytes);
		else if (IS("NOOP"))
			reply(s, "200 NOOP ok.");
		else
			return 1;
		return 0;
	}
	if (!v[0])
		return 0; /* an empty line: ignore, as vsftpd does */
	if (c->arg_len > 9 && !strncmp(c->arg + c->arg_len - 8, "HTTP/1.", 7)) {
		/* An HTTP client that stayed silent past the sniff window got our greeting
		 * and is now lost; say how to avoid it rather than answer FTP to HTTP. */
		log_msg("%s sent an HTTP request (%s) after the FTP greeting: it stayed silent longer "
		        "than the sniff window; raise --sniff-ms or use --proto http",
		        s->peer_str, v);
		s->closing = 1;
		return 0;
	}
	if (IS("?")) {
		reply(s, "500 Unknown command.");
		return 0;
	}
	if (strlen(arg) != c->arg_len) {
		/* The kernel would cut a path at the NUL: "DELE a.txt\0.bak" is not a.txt. */
		reply(s, "501 NUL bytes are not allowed in arguments.");
		return 0;
	}
	/* Before login only these. */
	if (!s->logged_in && !(IS("USER") || IS("PASS") || IS("QUIT") || IS("FEAT") || IS("SYST") ||
	                       IS("HELP") || IS("NOOP") || IS("OPTS") || IS("AUTH"))) {
		reply(s, "530 Please login with USER and PASS.");
		return 0;
	}
	if (!IS("RNTO") && !IS("RNFR")) {
		free(s->rnfr);
		s->rnfr = NULL;
	}
	if (IS("USER")) {
		snprintf(s->user, sizeof(s->user), "%s", arg);
		s->user_given = 1;
		s->logged_in = 0;
		reply(s, "331 Please specify the password.");
	} else if (IS("PASS")) {
		if (!s->user_given) {
			reply(s, "503 Login with USER first.");
			return 0;
		}
		const struct ftp_config *cfg = s->x->cfg;
		if (!cfg->user || (!strcmp(s->user, cfg->user) && !strcmp(arg, cfg->pass))) {
			s->logged_in = 1;
			reply(s, "230 Login successful.");
		} else {
			s->user_given = 0;
			s->login_wait = 1; /* answered after FTP_LOGIN_DELAY: slows down guessing */
			loop_timer_start(s->x->loop, &s->timer, FTP_LOGIN_DELAY);
		}
	} else if (IS("QUIT")) {
		reply(s, "221 Goodbye.");
		s->closing = 1;
	} else if (IS("SYST")) {
		reply(s, "215 UNIX Type: L8");
	} else if (IS("FEAT")) {
		cmd_feat(s);
	} else if (IS("HELP")) {
		cmd_help(s);
	} else if (IS("NOOP")) {
		reply(s, "200 NOOP ok.");
	} else if (IS("AUTH")) {
		reply(s, "502 TLS is not offered (yet); use plain FTP on loopback.");
	} else if (IS("OPTS")) {
		if (!strcasecmp(arg, "UTF8 ON") || !strcasecmp(arg, "UTF8"))
			reply(s, "200 Always in UTF8 mode.");
		else
			reply(s, "501 Option not understood.");
	} else if (IS("PWD") || IS("XPWD")) {
		quote_path(s->cwd, q, sizeof(q));
		reply(s, "257 \"%s\" is the current directory.", q);
	} else if (IS("CWD") || IS("XCWD") || IS("CDUP") || IS("XCUP")) {
		if (stat_path(s, IS("CDUP") || IS("XCUP") ? ".." : arg, rel, sizeof(rel), &st) < 0)
			return 0;
		if (!S_ISDIR(st.st_mode)) {
			reply(s, "550 Not a directory.");
			return 0;
		}
		char *cwd = strdup(rel);
		if (!cwd) {
			reply(s, "451 Out of memory.");
			return 0;
		}
		free(s->cwd);
		s->cwd = cwd;
		reply(s, "250 Directory successfully changed.");
	} else if (IS("TYPE")) {
		if (!strcasecmp(arg, "I") || !strcasecmp(arg, "L 8"))
			reply(s, "200 Switching to Binary mode.");
		else if (!strcasecmp(arg, "A") || !strcasecmp(arg, "A N"))
			reply(s, "200 Switching to ASCII mode.");
		else
			reply(s, "504 Only TYPE A and I.");
	} else if (IS("MODE")) {
		reply(s, !strcasecmp(arg, "S") ? "200 Mode set to S." : "504 Only MODE S.");
	} else if (IS("STRU")) {
		reply(s, !strcasecmp(arg, "F") ? "200 Structure set to F." : "504 Only STRU F.");
	} else if (IS("ALLO")) {
		reply(s, "202 ALLO is superfluous here.");
	} else if (IS("PASV") || IS("EPSV")) {
		uint16_t port;
		if (IS("EPSV") && !strcasecmp(arg, "ALL")) {
			s->epsv_all = 1;
			reply(s, "200 EPSV ALL ok.");
			return 0;
		}
		if (IS("PASV") && s->epsv_all) {
			reply(s, "503 PASV is not allowed after EPSV ALL.");
			return 0;
		}
		if (IS("PASV") && s->local.ss_family != AF_INET) {
			reply(s, "522 PASV is IPv4 only; use EPSV.");
			return 0;
		}
		if (pasv_open(s, &port) < 0) {
			reply(s, "425 Cannot open a passive listener.");
			return 0;
		}
		if (IS("EPSV")) {
			reply(s, "229 Entering Extended Passive Mode (|||%u|).", port);
		} else {
			uint32_t a = ntohl(((struct sockaddr_in *)&s->local)->sin_addr.s_addr);
			reply(s, "227 Entering Passive Mode (%u,%u,%u,%u,%u,%u).", a >> 24, (a >> 16) & 255,
			      (a >> 8) & 255, a & 255, port >> 8, port & 255);
		}
	} else if (IS("PORT") || IS("EPRT")) {
		struct sockaddr_storage a;
		if (s->epsv_all) {
			reply(s, "503 %s is not allowed after EPSV ALL.", v);
			return 0;
		}
		if ((IS("PORT") ? ftp_parse_port(arg, &a) : ftp_parse_eprt(arg, &a)) < 0) {
			reply(s, "501 Malformed %s argument.", v);
			return 0;
		}
		if (!same_ip(&a, &s->peer)) {
			char ip[64];
			log_msg("ftp: refused %s to %s from %s (FTP bounce protection)", v,
			        net_addr_str((struct sockaddr *)&a, ip, sizeof(ip)), s->peer_str);
			reply(s, "501 Rejected: data connections go only to your own address (%s).",
			      s->peer_str);
			return 0;
		}
		if (ntohs(((struct sockaddr_in *)&a)->sin_port) < 1024) {
			/* As vsftpd: no data connections to privileged ports (a local
			 * service's port is not an FTP client's). */
			reply(s, "501 Rejected: data ports below 1024 are not allowed.");
			return 0;
		}
		data_close(s);
		s->port_addr = a;
		s->mode = D_PORT;
		reply(s, "200 %s command successful. Consider using EPSV.", v);
	} else if (IS("LIST")) {
		cmd_list(s, v, arg, L_LIST);
	} else if (IS("NLST")) {
		cmd_list(s, v, arg, L_NLST);
	} else if (IS("MLSD")) {
		cmd_list(s, v, arg, L_MLSD);
	} else if (IS("MLST")) {
		if (stat_path(s, arg, rel, sizeof(rel), &st) < 0)
			return 0;
		fmt_modify(st.st_mtim.tv_sec, when, sizeof(when));
		quote_path(rel, q, sizeof(q));
		reply(s, "250-Listing %s", q);
		reply(s, " type=%s;size=%llu;modify=%s;perm=%s; %s", S_ISDIR(st.st_mode) ? "dir" : "file",
		      (unsigned long long)st.st_size, when, perm_facts(s, S_ISDIR(st.st_mode)), q);
		reply(s, "250 End");
	} else if (IS("SIZE") || IS("MDTM")) {
		if (stat_path(s, arg, rel, sizeof(rel), &st) < 0)
			return 0;
		if (!S_ISREG(st.st_mode)) {
			reply(s, "550 Not a plain file.");
			return 0;
		}
		if (IS("SIZE")) {
			reply(s, "213 %llu", (unsigned long long)st.st_size);
		} else {
			fmt_modify(st.st_mtim.tv_sec, when, sizeof(when));
			reply(s, "213 %s", when);
		}
	} else if (IS("REST")) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(arg, &end, 10);
		if (!*arg || *end || errno || arg[0] == '-') {
			reply(s, "501 REST needs a byte offset.");
			return 0;
		}
		s->rest = n;
		reply(s, "350 Restart position accepted (%llu).", n);
	} else if (IS("RETR")) {
		cmd_retr(s, arg);
	} else if (IS("STOR")) {
		cmd_stor(s, v, arg, 0);
	} else if (IS("APPE")) {
		cmd_stor(s, v, arg, 1);
	} else if (IS("DELE") || IS("RMD") || IS("XRMD")) {
		if (!need_write(s) || stat_path(s, arg, rel, sizeof(rel), &st) < 0)
			return 0;
		if (!*rel || (IS("DELE") && S_ISDIR(st.st_mode)) || (!IS("DELE") && !S_ISDIR(st.st_mode))) {
			reply(s, "550 %s.",
			      IS("DELE") ? "Not a plain file" : "Not a directory (or the root)");
			return 0;
		}
		rc = fsroot_remove(s->x->root, rel);
		if (rc < 0)
			reply_err(s, rc, "Remove failed");
		else
			reply(s, "250 %s successful.", IS("DELE") ? "Delete" : "Remove directory");
	} else if (IS("MKD") || IS("XMKD")) {
		const char *name;
		if (!need_write(s) || resolve(s, arg, rel, sizeof(rel)) < 0)
			return 0;
		int dfd = *rel ? fsroot_open_parent(s->x->root, rel, &name) : -EEXIST;
		if (dfd < 0) {
			reply_err(s, dfd, "Cannot create directory");
			return 0;
		}
		rc = mkdirat(dfd, name, 0755) < 0 ? -errno : 0;
		close(dfd);
		if (rc < 0) {
			reply_err(s, rc, "Cannot create directory");
			return 0;
		}
		quote_path(rel, q, sizeof(q));
		reply(s, "257 \"%s\" created.", q);
	} else if (IS("RNFR")) {
		if (!need_write(s) || stat_path(s, arg, rel, sizeof(rel), &st) < 0)
			return 0;
		if (!*rel) {
			reply(s, "550 The root cannot be renamed.");
			return 0;
		}
		free(s->rnfr);
		s->rnfr = strdup(rel);
		if (!s->rnfr) {
			reply(s, "451 Out of memory.");
			return 0;
		}
		reply(s, "350 Ready for RNTO.");
	} else if (IS("RNTO")) {
		const char *n1, *n2;
		char *from = s->rnfr; /* RNTO uses up the RNFR, whatever happens */
		s->rnfr = NULL;
		if (!from) {
			reply(s, "503 RNFR first.");
			return 0;
		}
		if (!need_write(s) || resolve(s, arg, rel, sizeof(rel)) < 0) {
			free(from);
			return 0;
		}
		if (!*rel) {
			free(from);
			reply(s, "553 Bad target name.");
			return 0;
		}
		int d1 = fsroot_open_parent(s->x->root, from, &n1);
		int d2 = d1 >= 0 ? fsroot_open_parent(s->x->root, rel, &n2) : -EBADF;
		rc = d1 < 0 ? d1 : d2 < 0 ? d2 : renameat(d1, n1, d2, n2) < 0 ? -errno : 0;
		if (d1 >= 0)
			close(d1);
		if (d2 >= 0)
			close(d2);
		free(from);
		if (rc < 0)
			reply_err(s, rc, "Rename failed");
		else
			reply(s, "250 Rename successful.");
	} else if (IS("STAT")) {
		if (!*arg) {
			reply(s, "211-loopkit FTP server status:");
			reply(s, " Connected to %s", s->peer_str);
			reply(s, " Logged in as %s", s->user[0] ? s->user : "-");
			reply(s, " TYPE: BINARY, STRU: File, MODE: Stream");
			reply(s, " %s", s->x->cfg->write ? "Writable" : "Read-only");
			reply(s, "211 End of status");
			return 0;
		}
		struct buf b;
		buf_init(&b, FTP_OUT_MAX / 2);
		if (resolve(s, skip_ls_options(arg), rel, sizeof(rel)) < 0)
			return 0;
		rc = build_listing(s, &b, L_LIST, rel);
		if (rc < 0) {
			buf_free(&b);
			reply_err(s, rc, "Cannot list");
			return 0;
		}
		reply(s, "213-Status of /%s:", rel);
		/* Listing lines on the control connection start with a space, so none can
		 * be read as a reply code. */
		for (char *p = buf_start(&b), *end = p + buf_used(&b); p && p < end;) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = (size_t)((nl ? nl : end) - p);
			if (len && p[len - 1] == '\r')
				len--;
			reply(s, " %.*s", (int)len, p);
			p = nl ? nl + 1 : end;
		}
		buf_free(&b);
		reply(s, "213 End of status");
	} else if (IS("ABOR")) {
		cmd_abor(s);
	} else if (IS("ACCT") || IS("SMNT") || IS("REIN") || IS("STOU") || IS("SITE")) {
		reply(s, "502 %s not implemented.", v);
	} else {
		reply(s, "500 Unknown command.");
	}
#undef IS
	return 0;
}

/* ---- the control connection ---- */

static void control_cb(struct loop *l, struct loop_io *io, unsigned events);

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
	if (s->upload && s->xfer == X_STOR)
		log_msg("ftp: %s from %s cut off after %llu bytes; the old file is untouched", s->what,
		        s->peer_str, (unsigned long long)s->bytes);
	data_close(s);
	xfer_reset(s);
	int fd = s->io.fd;
	loop_io_stop(x->loop, &s->io);
	if (fd >= 0)
		close(fd);
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
	atomic_fetch_sub(x->nconns, 1);
	if (loop_defer(x->loop, session_free_cb, s) < 0)
		log_msg("out of memory: leaking one FTP session record");
	if (x->stopping && !x->nsessions && x->on_idle)
		x->on_idle(x->arg);
}

/* Flushes replies. Returns -1 when the session was closed. */
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
		buf_free(&s->out);
		if (s->closing) {
			session_close(s);
			return -1;
		}
	}
	return 0;
}

static void control_run(struct ftp_session *s)
{
	if (s->running || s->shut)
		return;
	s->running = 1;
	while (!s->closing && !s->login_wait && buf_used(&s->in)) {
		struct ftp_command c;
		char *p = buf_start(&s->in);
		size_t n = buf_used(&s->in);
		if (s->skip_line) {
			char *lf = memchr(p, '\n', n);
			buf_consume(&s->in, lf ? (size_t)(lf - p) + 1 : n);
			if (lf)
				s->skip_line = 0;
			continue;
		}
		int r = ftp_parse_command(p, n, &c);
		if (r == FTP_PARSE_INCOMPLETE)
			break;
		if (r == FTP_PARSE_TOO_LONG) {
			reply(s, "500 Command line too long (over %d bytes).", FTP_MAX_LINE);
			/* Drop the line up to its end; what follows it is the next command. */
			char *lf = memchr(p, '\n', n);
			buf_consume(&s->in, lf ? (size_t)(lf - p) + 1 : n);
			s->skip_line = !lf;
			continue;
		}
		if (command(s, &c))
			break; /* held until the transfer ends; c points into s->in, untouched */
		if (s->shut)
			return;
		buf_consume(&s->in, (size_t)r);
		if (s->xfer == X_NONE && !s->login_wait)
			arm_idle(s);
	}
	s->running = 0;
	if (!buf_used(&s->in))
		buf_free(&s->in); /* an idle session keeps no read buffer */
	if (control_flush(s) < 0)
		return;
	/* Read while there is room; replies that cannot go out stop the reading. */
	unsigned mask = buf_used(&s->out) ? LOOP_WRITE : LOOP_READ;
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
		control_run(s);
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
	control_run(s);
}

int ftp_session_start(struct ftp_ctx *x, int fd, const struct sockaddr_storage *peer)
{
	struct ftp_session *s = calloc(1, sizeof(*s));
	socklen_t len = sizeof(s->local);
	if (!s || !(s->cwd = strdup("")) || getsockname(fd, (struct sockaddr *)&s->local, &len) < 0) {
		if (s)
			free(s->cwd);
		free(s);
		close(fd);
		atomic_fetch_sub(x->nconns, 1);
		return -1;
	}
	/* Telnet "synch" (RFC 959 ABOR: IAC IP, then IAC DM as urgent data) and
	 * ftplib's ABOR with an urgent LF must arrive in the stream, or ABOR is lost. */
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	s->x = x;
	s->peer = *peer;
	struct sockdiag_sock ps;
	s->peer_uid = net_is_loopback((const struct sockaddr *)peer) && sockdiag_peer(&s->local, peer, &ps) == 0
	                      ? (int)ps.uid
	                      : -1;
	net_addr_str((const struct sockaddr *)peer, s->peer_str, sizeof(s->peer_str));
	s->file_fd = -1;
	s->pasv_io.fd = s->data_io.fd = -1;
	s->up.fd = s->up.dirfd = -1;
	buf_init(&s->in, FTP_MAX_LINE * 8);
	buf_init(&s->out, FTP_OUT_MAX);
	buf_init(&s->list, FTP_LIST_MAX);
	loop_timer_init(&s->timer, login_done_cb, s);
	loop_timer_init(&s->data_timer, data_timer_cb, s);
	if (loop_io_start(x->loop, &s->io, fd, LOOP_READ, control_cb, s) < 0) {
		close(fd);
		free(s->cwd);
		free(s);
		atomic_fetch_sub(x->nconns, 1);
		return -1;
	}
	s->next = x->sessions;
	if (x->sessions)
		x->sessions->prev = s;
	x->sessions = s;
	x->nsessions++;
	reply(s, "220 loopkit %s FTP ready%s.", LOOPKIT_VERSION,
	      x->cfg->write ? " (writable)" : " (read-only)");
	arm_idle(s);
	control_run(s);
	return 0;
}

void ftp_ctx_stop(struct ftp_ctx *x)
{
	struct ftp_session *next;
	x->stopping = 1;
	for (struct ftp_session *s = x->sessions; s; s = next) {
		next = s->next;
		if (s->xfer != X_NONE) {
			s->close_after_xfer = 1; /* xfer_end closes it; commands meanwhile are fine */
			continue;
		}
		reply(s, "421 Server shutting down.");
		s->closing = 1;
		control_run(s);
	}
}

void ftp_ctx_close_all(struct ftp_ctx *x)
{
	while (x->sessions)
		session_close(x->sessions);
}
