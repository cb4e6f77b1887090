/* portserver.c - a port server compatible with portpicker's PORTSERVER_ADDRESS, and its client. */
#include "diag/portserver.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/acceptor.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/loop.h"
#include "core/procfs.h"
#include "core/text.h"

/* Fills sun from "@name" (abstract) or a path. Returns the length or -1. */
static socklen_t unix_addr(const char *addr, struct sockaddr_un *sun)
{
	size_t n = strlen(addr);

	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof sun->sun_path)
		return (socklen_t)-1;
	memcpy(sun->sun_path, addr, n);
	if (addr[0] == '@')
		sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (addr[0] == '@' ? 0 : 1));
}

/* Reads until '\n' or PORTSERVER_LINE_MAX bytes or the deadline. Returns bytes read. */
static size_t read_line(int fd, char *buf, size_t max, int ms)
{
	size_t got = 0;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < max && (got == 0 || buf[got - 1] != '\n')) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t r = read(fd, buf + got, max - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* The uid owning /proc/PID (the process's real user), or -1. */
static long pid_uid(pid_t pid)
{
	char path[32];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	return stat(path, &st) == 0 ? (long)st.st_uid : -1;
}

uint16_t portserver_answer(struct portserver *ps, const char *line, size_t n, uid_t caller, char *err,
                           size_t errlen)
{
	char tmp[PORTSERVER_LINE_MAX + 1], *end;
	uint64_t start;
	uint16_t port;

	if (n > PORTSERVER_LINE_MAX)
		n = PORTSERVER_LINE_MAX;
	memcpy(tmp, line, n);
	tmp[n] = '\0';
	errno = 0;
	long pid = strtol(tmp, &end, 10);
	if (end == tmp || errno || (*end && strcmp(end, "\n") && strcmp(end, "\r\n"))) {
		char shown[3 * PORTSERVER_LINE_MAX + 1];
		text_escape(shown, sizeof shown, tmp, strcspn(tmp, "\r\n"), TEXT_ESC_QUOTES);
		snprintf(err, errlen, "not a pid: '%s'", shown);
		return 0;
	}
	/* pid 1 is what a caller reparented to init looks like: never tie a port to it. */
	if (pid <= 1 || pid > 0x3fffffff) {
		snprintf(err, errlen, "refused pid %ld", pid);
		return 0;
	}
	if (portlease_proc_start((pid_t)pid, &start) < 0) {
		snprintf(err, errlen, "pid %ld does not exist", pid);
		return 0;
	}
	/* A lease lives as long as its pid: only the caller's own processes may hold
	 * one, or any user could tie up the pool with pid 1's neighbours for ever. */
	long owner = pid_uid((pid_t)pid);
	if (caller != 0 && owner != (long)caller) {
		snprintf(err, errlen, "pid %ld belongs to uid %ld, not to the caller (uid %u)", pid, owner,
		         (unsigned)caller);
		return 0;
	}
	struct portlease tmpl = {.expires = 0, .pid = (pid_t)pid, .start = start};
	int k = portlease_take(ps->dir, ps->pool, ps->npool, 1, ps->need, &tmpl, &port, err, errlen);
	if (k < 0)
		return 0;
	if (k == 0) {
		snprintf(err, errlen, "no free port left in the pool");
		return 0;
	}
	return port;
}

/* ---- the server: every client on the event loop, each with its own deadline ---- */

struct ps_client {
	struct portserver *ps;
	struct ps_state *st;
	struct loop_io io;
	struct loop_timer timer;
	uid_t uid; /* SO_PEERCRED */
	char line[PORTSERVER_LINE_MAX + 1];
	size_t n;
};

struct ps_state {
	struct portserver *ps;
	struct loop *loop;
	struct acceptor acc;
	unsigned nclients;
};

static void client_free_cb(struct loop *l, void *data)
{
	free(data);
}

static void client_end(struct ps_client *c)
{
	loop_io_close(c->st->loop, &c->io);
	loop_timer_stop(c->st->loop, &c->timer);
	c->st->nclients--;
	loop_defer(c->st->loop, client_free_cb, c);
}

static void ps_log(struct portserver *ps, const char *fmt, const char *a, const char *b)
{
	char ea[256], eb[256];
	if (!ps->log)
		return;
	/* Any local user may connect: what they send is escaped before a terminal sees it. */
	text_escape(ea, sizeof ea, a, strlen(a), 0);
	text_escape(eb, sizeof eb, b ? b : "", b ? strlen(b) : 0, 0);
	fprintf(ps->log, fmt, ea, eb);
	fflush(ps->log);
}

static void client_answer(struct ps_client *c)
{
	struct portserver *ps = c->ps;
	char why[256] = "", reply[16], pidtext[PORTSERVER_LINE_MAX + 1];
	uint16_t port = c->n ? portserver_answer(ps, c->line, c->n, c->uid, why, sizeof why) : 0;
	if (!c->n)
		snprintf(why, sizeof why, "no request line within %d ms", PORTSERVER_IO_MS);
	int k = snprintf(reply, sizeof reply, "%u\n", port);
	/* A client gone before the reply leaves a lease that ends with its pid. */
	(void)!send(c->io.fd, reply, (size_t)k, MSG_NOSIGNAL | MSG_DONTWAIT);
	snprintf(pidtext, sizeof pidtext, "%.*s", (int)strcspn(c->line, "\r\n"), c->line);
	if (port) {
		ps->served++;
		char ptext[8];
		snprintf(ptext, sizeof ptext, "%u", port);
		ps_log(ps, "loopkit: port %s to pid %s\n", ptext, pidtext);
	} else {
		ps->refused++;
		ps_log(ps, "loopkit: no port: %s%s\n", why, NULL);
	}
	client_end(c);
}

static void client_timer_cb(struct loop *l, struct loop_timer *t)
{
	client_answer(t->data); /* the deadline: answer with what came (nothing: 0) */
}

static void client_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct ps_client *c = io->data;
	ssize_t r = recv(io->fd, c->line + c->n, PORTSERVER_LINE_MAX - c->n, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		if (c->n)
			client_answer(c);
		else
			client_end(c);
		return;
	}
	c->n += (size_t)r;
	c->line[c->n] = '\0';
	if (memchr(c->line, '\n', c->n) || c->n == PORTSERVER_LINE_MAX)
		client_answer(c);
}

static void on_conn(void *arg, int fd, const struct sockaddr_storage *peer)
{
	struct ps_state *st = arg;
	struct ucred cred;
	socklen_t cl = sizeof cred;
	struct ps_client *c;
	if (st->nclients >= PORTSERVER_MAX_CLIENTS || !(c = calloc(1, sizeof *c))) {
		close(fd); /* the others are served; this one may retry */
		return;
	}
	c->ps = st->ps;
	c->st = st;
	c->uid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 ? cred.uid : (uid_t)-1;
	loop_timer_init(&c->timer, client_timer_cb, c);
	if (c->uid == (uid_t)-1 || loop_io_start(st->loop, &c->io, fd, LOOP_READ, client_io_cb, c) < 0) {
		close(fd);
		free(c);
		return;
	}
	st->nclients++;
	loop_timer_start(st->loop, &c->timer, PORTSERVER_IO_MS);
}

static void ps_signal_cb(struct loop *l, int signo, void *data)
{
	loop_stop(l);
}

/* Connects to the server at addr. Returns the fd with the listener's SO_PEERCRED
 * (its creator's pid and uid) in *cred, or -1. */
static int ps_connect(const char *addr, struct ucred *cred)
{
	struct sockaddr_un sun;
	socklen_t sl = unix_addr(addr, &sun), cl = sizeof *cred;
	int fd;

	if (sl == (socklen_t)-1)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sl) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &cl) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* "python3 (pid 812) of user nobody (uid 65534)" for the server behind cred. */
static void ps_holder_text(const struct ucred *cred, char *buf, size_t len)
{
	struct procfs_owner o;
	char who[PROCFS_COMM_MAX + 32];
	if (procfs_owner_of_pid(cred->pid, &o) == 1 && procfs_owner_text(&o, 1, who, sizeof who) > 0)
		snprintf(buf, len, "%s of user %s (uid %u)", who, o.user, (unsigned)cred->uid);
	else
		snprintf(buf, len, "pid %d of uid %u", (int)cred->pid, (unsigned)cred->uid);
}

/* Removes a stale socket file at path: only a socket, owned by this user, that nobody
 * answers on. Anything else there is left alone and named. */
static int remove_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen,
		         "%s exists and is not a socket of this user: choose another --server "
		         "address (nothing was removed)",
		         path);
		return -1;
	}
	if (portserver_request(path, 0, NULL, 0) == 0) {
		snprintf(err, errlen, "%s: another port server answers there", path);
		return -1;
	}
	unlink(path);
	return 0;
}

int portserver_run(struct portserver *ps, void (*ready)(const char *addr), char *err, size_t errlen)
{
	struct sockaddr_un sun;
	socklen_t sl = unix_addr(ps->addr, &sun);
	struct ps_state st = {.ps = ps};
	sigset_t set;
	int lfd, rc = -1;

	if (sl == (socklen_t)-1) {
		snprintf(err, errlen, "bad socket address '%s'", ps->addr);
		return -1;
	}
	if (ps->addr[0] != '@' && remove_stale(ps->addr, err, errlen) < 0)
		return -1;
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(lfd, (struct sockaddr *)&sun, sl) < 0 || listen(lfd, 128) < 0) {
		int e = errno;
		char who[300] = "another port server runs there";
		struct ucred cred;
		int hfd = e == EADDRINUSE ? ps_connect(ps->addr, &cred) : -1;
		if (hfd >= 0) {
			char h[256];
			close(hfd);
			ps_holder_text(&cred, h, sizeof h);
			snprintf(who, sizeof who, "held by %s", h);
		}
		snprintf(err, errlen, "listen on %s: %s%s%s%s", ps->addr, strerror(e),
		         e == EADDRINUSE ? " (" : "", e == EADDRINUSE ? who : "", e == EADDRINUSE ? ")" : "");
		close(lfd);
		return -1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (!(st.loop = loop_new(err, errlen)) || loop_signal_init(st.loop, &set, ps_signal_cb, &st) < 0 ||
	    acceptor_start(&st.acc, st.loop, lfd, 0, 16, on_conn, &st) < 0) {
		if (st.loop && !err[0])
			snprintf(err, errlen, "event loop: %s", strerror(errno));
		goto out;
	}
	if (ready)
		ready(ps->addr);
	rc = loop_run(st.loop) < 0 ? -1 : 0;
	if (rc < 0)
		snprintf(err, errlen, "event loop: %s", strerror(errno));
out:
	if (st.loop) {
		acceptor_stop(&st.acc);
		loop_free(st.loop);
	}
	close(lfd);
	if (ps->addr[0] != '@')
		unlink(ps->addr);
	return rc;
}

int portserver_request(const char *addr, pid_t pid, char *err, size_t errlen)
{
	char line[PORTSERVER_LINE_MAX + 1], req[24];
	struct ucred cred;
	int fd, k;

	fd = ps_connect(addr, &cred);
	if (fd < 0)
		return -1;
	if (pid == 0) { /* a probe: is anybody there? */
		close(fd);
		return 0;
	}
	/* An abstract name (portpicker's default) has no permissions: any user can bind
	 * it first and hand out a port it then takes itself. Only our own server, or
	 * root's, is asked. */
	if (cred.uid != geteuid() && cred.uid != 0) {
		char who[256];
		close(fd);
		ps_holder_text(&cred, who, sizeof who);
		snprintf(
		        err, errlen,
		        "the port server at %s belongs to another user: %s; not asking it (anyone can take a "
		        "shared name first and hand out a port it then takes). Run your own and point "
		        "PORTSERVER_ADDRESS at it (loopkit port --server $XDG_RUNTIME_DIR/ports.sock), or "
		        "unset "
		        "PORTSERVER_ADDRESS to lease ports without a server",
		        addr, who);
		return PORTSERVER_FOREIGN;
	}
	k = snprintf(req, sizeof req, "%d\n", (int)pid);
	if (send(fd, req, (size_t)k, MSG_NOSIGNAL) != k) {
		close(fd);
		return -1;
	}
	size_t n = read_line(fd, line, PORTSERVER_LINE_MAX, PORTSERVER_IO_MS);
	close(fd);
	if (n == 0)
		return -1;
	line[n] = '\0';
	char *end;
	long port = strtol(line, &end, 10);
	if (end == line || port < 0 || port > 65535)
		return -1;
	return (int)port;
}

size_t portserver_pool(struct portlease_range want, struct portlease_range pool[2],
                       struct portlease_range *eph, char *err, size_t errlen)
{
	portlease_ephemeral(eph);
	size_t n = portlease_pool(want, *eph, pool);
	if (n == 0)
		snprintf(err, errlen,
		         "the pool %u-%u lies inside the kernel's ephemeral range %u-%u "
		         "(net.ipv4.ip_local_port_range); use --pool with ports outside it",
		         want.lo, want.hi, eph->lo, eph->hi);
	return n;
}

int portserver_grant(size_t count, unsigned need, struct portlease_range want, unsigned lease_secs,
                     const char *server, pid_t owner, struct portserver_grant *g, char *err, size_t errlen)
{
	struct portlease_range pool[2];
	size_t npool = portserver_pool(want, pool, &g->eph, err, errlen);
	g->n = 0;
	g->source = "lease";
	g->lease_secs = lease_secs;
	if (!npool)
		return -1;
	if (count > PORTLEASE_MAX_COUNT)
		count = PORTLEASE_MAX_COUNT;
	for (; server && server[0] && g->n < count; g->n++) {
		int p = portserver_request(server, owner, err, errlen);
		if (p == PORTSERVER_FOREIGN)
			return -1;
		if (p <= 0)
			break;
		/* Whatever answers at that address is trusted with nothing: a port outside
		 * the pool, privileged, or not bindable here is not printed. */
		if (!portlease_in_pool(pool, npool, (uint16_t)p) || !portlease_bindable((uint16_t)p, need)) {
			snprintf(err, errlen, "the port server at %s answered %d, which is %s; not using it",
			         server, p,
			         !portlease_in_pool(pool, npool, (uint16_t)p) ? "outside the pool"
			                                                      : "in use");
			return -1;
		}
		g->ports[g->n] = (uint16_t)p;
		g->source = "portserver";
	}
	if (g->n < count) {
		char dir[4096];
		if (portlease_dir(dir, sizeof dir, err, errlen) < 0)
			return -1;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		struct portlease tmpl = {.expires = portlease_expiry(now, lease_secs)};
		int k = portlease_take(dir, pool, npool, count - g->n, need, &tmpl, g->ports + g->n, err,
		                       errlen);
		if (k < 0)
			return -1;
		g->n += (size_t)k;
	}
	if (g->n < count) {
		snprintf(err, errlen,
		         "only %zu of %zu ports free in the pool; free some or widen it with --pool", g->n,
		         count);
		return -1;
	}
	return 0;
}

int portserver_grant_json(struct buf *b, const struct portserver_grant *g)
{
	struct json j;
	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_key(&j, "ports");
	json_arr_begin(&j);
	for (size_t i = 0; i < g->n; i++)
		json_uint(&j, g->ports[i]);
	json_arr_end(&j);
	json_kstr(&j, "host", "127.0.0.1");
	json_kstr(&j, "source", g->source);
	json_key(&j, "lease_secs");
	if (!strcmp(g->source, "lease"))
		json_uint(&j, g->lease_secs);
	else
		json_null(&j);
	json_key(&j, "ephemeral_range");
	json_arr_begin(&j);
	json_uint(&j, g->eph.lo);
	json_uint(&j, g->eph.hi);
	json_arr_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}
