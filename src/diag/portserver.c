/* portserver.c - a port server compatible with portpicker's PORTSERVER_ADDRESS, and its client. */
#include "diag/portserver.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"

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
		struct pollfd p = { .fd = fd, .events = POLLIN };
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

uint16_t portserver_answer(struct portserver *ps, const char *line, size_t n, char *err,
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
		snprintf(err, errlen, "not a pid: '%.*s'", (int)strcspn(tmp, "\r\n"), tmp);
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
	struct portlease tmpl = { .expires = 0, .pid = (pid_t)pid, .start = start };
	int k = portlease_take(ps->dir, ps->pool, ps->npool, 1, ps->need, &tmpl, &port, err,
			errlen);
	if (k < 0)
		return 0;
	if (k == 0) {
		snprintf(err, errlen, "no free port left in the pool");
		return 0;
	}
	return port;
}

int portserver_run(struct portserver *ps, void (*ready)(const char *addr), char *err,
		size_t errlen)
{
	struct sockaddr_un sun;
	socklen_t sl = unix_addr(ps->addr, &sun);
	int lfd, sfd, rc = 0;
	sigset_t set;

	if (sl == (socklen_t)-1) {
		snprintf(err, errlen, "bad socket address '%s'", ps->addr);
		return -1;
	}
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (ps->addr[0] != '@' && portserver_request(ps->addr, 0) < 0)
		unlink(ps->addr); /* a stale socket file nobody answers on */
	if (bind(lfd, (struct sockaddr *)&sun, sl) < 0 || listen(lfd, 128) < 0) {
		int e = errno;
		snprintf(err, errlen, "listen on %s: %s%s", ps->addr, strerror(e),
				e == EADDRINUSE ? " (another port server runs there)" : "");
		close(lfd);
		return -1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		close(lfd);
		return -1;
	}
	if (ready)
		ready(ps->addr);
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue; /* EMFILE, ECONNABORTED: the next poll tries again */
		char line[PORTSERVER_LINE_MAX + 1], why[256] = "", reply[16];
		size_t n = read_line(cfd, line, PORTSERVER_LINE_MAX, PORTSERVER_IO_MS);
		uint16_t port = n ? portserver_answer(ps, line, n, why, sizeof why) : 0;
		if (!n)
			snprintf(why, sizeof why, "no request line within %d ms", PORTSERVER_IO_MS);
		int k = snprintf(reply, sizeof reply, "%u\n", port);
		/* A client gone before the reply leaves a lease that ends with its pid. */
		(void)!send(cfd, reply, (size_t)k, MSG_NOSIGNAL);
		close(cfd);
		if (port)
			ps->served++;
		else
			ps->refused++;
		if (ps->log) {
			if (port)
				fprintf(ps->log, "loopkit: port %u to pid %.*s\n", port,
						(int)strcspn(line, "\r\n"), line);
			else
				fprintf(ps->log, "loopkit: no port: %s\n", why);
			fflush(ps->log);
		}
	}
	close(sfd);
	close(lfd);
	if (ps->addr[0] != '@')
		unlink(ps->addr);
	return rc;
}

int portserver_request(const char *addr, pid_t pid)
{
	struct sockaddr_un sun;
	socklen_t sl = unix_addr(addr, &sun);
	char line[PORTSERVER_LINE_MAX + 1], req[24];
	int fd, k;

	if (sl == (socklen_t)-1)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sl) < 0) {
		close(fd);
		return -1;
	}
	if (pid == 0) { /* a probe: is anybody there? */
		close(fd);
		return 0;
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
		snprintf(err, errlen, "the pool %u-%u lies inside the kernel's ephemeral range %u-%u "
		         "(net.ipv4.ip_local_port_range); use --pool with ports outside it",
		         want.lo, want.hi, eph->lo, eph->hi);
	return n;
}

int portserver_grant(size_t count, unsigned need, struct portlease_range want, unsigned lease_secs,
		const char *server, pid_t owner, struct portserver_grant *g, char *err, size_t errlen)
{
	struct portlease_range pool[2];
	char dir[4096];
	size_t npool = portserver_pool(want, pool, &g->eph, err, errlen);
	g->n = 0;
	g->source = "lease";
	g->lease_secs = lease_secs;
	if (!npool)
		return -1;
	if (count > PORTLEASE_MAX_COUNT)
		count = PORTLEASE_MAX_COUNT;
	for (; server && server[0] && g->n < count; g->n++) {
		int p = portserver_request(server, owner);
		if (p <= 0)
			break;
		g->ports[g->n] = (uint16_t)p;
		g->source = "portserver";
	}
	if (g->n < count) {
		if (portlease_dir(dir, sizeof dir, err, errlen) < 0)
			return -1;
		struct portlease tmpl = { .expires = (int64_t)time(NULL) + (int64_t)lease_secs };
		int k = portlease_take(dir, pool, npool, count - g->n, need, &tmpl, g->ports + g->n, err, errlen);
		if (k < 0)
			return -1;
		g->n += (size_t)k;
	}
	if (g->n < count) {
		snprintf(err, errlen, "only %zu of %zu ports free in the pool; free some or widen it with --pool",
		         g->n, count);
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
	json_key(&j, "host");
	json_str(&j, "127.0.0.1");
	json_key(&j, "source");
	json_str(&j, g->source);
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
