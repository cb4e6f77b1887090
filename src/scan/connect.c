/* connect.c - the TCP connect scan: many non-blocking connects in flight on one event loop. */
#include "scan/scan.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/net.h"

#define RETRY_MS 5 /* pause after EMFILE or EADDRNOTAVAIL while nothing is in flight */

struct slot {
	struct loop_io io;
	struct loop_timer timer;
	uint16_t port;
	struct cscan *cs;
};

struct cscan {
	struct loop *l;
	const struct scan_config *cfg;
	struct scan_ports *open;
	unsigned closed, filtered;
	unsigned next; /* the next port to try */
	unsigned inflight, max;
	struct slot *slots; /* max of them */
	unsigned *free;     /* indices of idle slots (a stack) */
	unsigned nfree;
	struct loop_timer retry; /* rate limit or a resource pause */
	double tokens;           /* --rate: connects we may start now */
	uint64_t last_ms;
	int fatal;
	int spare; /* an unconnected socket ready for the next port, or -1 */
	char *err;
	size_t errlen;
};

static void fill(struct cscan *cs);

static void mark_open(struct cscan *cs, uint16_t port)
{
	cs->open->bits[port / 64] |= UINT64_C(1) << (port % 64);
	cs->open->count++;
}

/* A connection to ourselves: with the target in the ephemeral range the kernel may
 * pick the target port as the source port, and a TCP simultaneous open "succeeds"
 * with no listener at all. */
static int self_connected(int fd, uint16_t port)
{
	return net_local_port(fd) == port;
}

static void slot_done(struct cscan *cs, struct slot *s, int result)
{
	if (result > 0 && !self_connected(s->io.fd, s->port))
		mark_open(cs, s->port);
	else if (result == 0)
		cs->filtered++;
	else
		cs->closed++;
	loop_timer_stop(cs->l, &s->timer);
	loop_io_close(cs->l, &s->io);
	cs->free[cs->nfree++] = (unsigned)(s - cs->slots);
	cs->inflight--;
	fill(cs);
}

static void slot_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct slot *s = io->data;
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	slot_done(s->cs, s, e == 0 ? 1 : (e == ETIMEDOUT || e == EHOSTUNREACH || e == ENETUNREACH) ? 0 : -1);
}

static void slot_timer_cb(struct loop *l, struct loop_timer *t)
{
	struct slot *s = t->data;
	slot_done(s->cs, s, 0);
}

static void retry_cb(struct loop *l, struct loop_timer *t)
{
	fill(t->data);
}

/* Takes a token for one connect; 0 when the rate allows none now (retry armed). */
static int rate_take(struct cscan *cs)
{
	unsigned rate = cs->cfg->rate;
	if (!rate)
		return 1;
	uint64_t now = loop_now(cs->l);
	cs->tokens += (double)(now - cs->last_ms) * rate / 1000.0;
	cs->last_ms = now;
	if (cs->tokens > rate / 10.0 + 1)
		cs->tokens = rate / 10.0 + 1; /* bursts of at most 100 ms worth */
	if (cs->tokens >= 1) {
		cs->tokens -= 1;
		return 1;
	}
	if (!loop_timer_armed(&cs->retry))
		loop_timer_start(cs->l, &cs->retry, 1 + (uint64_t)(1000 / rate));
	return 0;
}

static unsigned next_port(struct cscan *cs)
{
	while (cs->next < SCAN_PORTS && !scan_ports_has(&cs->cfg->ports, cs->next))
		cs->next++;
	return cs->next;
}

/* On loopback the kernel answers a SYN within the connect call itself: the RST (or
 * SYN-ACK) is processed before connect returns EINPROGRESS. A second connect on the
 * same socket then reports the result at once (ECONNREFUSED, or EISCONN when open)
 * and, after a refusal, leaves the socket unconnected and ready for the next port. So
 * one socket serves port after port: no socket() and close() per port, no epoll for
 * the answers that are already in. Only connects still pending (EALREADY: a remote
 * host, a full accept queue, a dropped SYN) go to the event loop, with a deadline. */
static int spare_socket(struct cscan *cs)
{
	if (cs->spare < 0)
		cs->spare = socket(cs->cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return cs->spare;
}

static void spare_close(struct cscan *cs)
{
	if (cs->spare >= 0)
		close(cs->spare);
	cs->spare = -1;
}

/* Starts one connect to port. Returns 1 started or finished, 0 to pause (resources),
 * -1 on a fatal error (err filled). */
static int start_one(struct cscan *cs, uint16_t port)
{
	struct sockaddr_storage ss = cs->cfg->addr;
	int fd = spare_socket(cs);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			return 0;
		snprintf(cs->err, cs->errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	int rc = connect(fd, (struct sockaddr *)&ss, cs->cfg->addrlen);
	if (rc < 0 && errno == EINPROGRESS)
		rc = connect(fd, (struct sockaddr *)&ss, cs->cfg->addrlen); /* collect the answer */
	if (rc == 0 || (rc < 0 && errno == EISCONN)) {
		if (!self_connected(fd, port))
			mark_open(cs, port);
		else
			cs->closed++;
		spare_close(cs);
		return 1;
	}
	if (errno == ECONNREFUSED) {
		cs->closed++; /* the socket is unconnected again: it stays the spare */
		return 1;
	}
	if (errno == EADDRNOTAVAIL || errno == EAGAIN) { /* no ephemeral port free just now */
		spare_close(cs);
		return 0;
	}
	if (errno != EALREADY) {
		int e = errno;
		spare_close(cs);
		if (e == ENETUNREACH || e == EHOSTUNREACH || e == ETIMEDOUT) {
			cs->filtered++;
			return 1;
		}
		if (e == ECONNRESET || e == ECONNABORTED) {
			cs->closed++;
			return 1;
		}
		snprintf(cs->err, cs->errlen, "connect to port %u: %s", port, strerror(e));
		return -1;
	}
	/* Still pending: the socket goes to a slot, watched until it answers or times out. */
	cs->spare = -1;
	struct slot *s = &cs->slots[cs->free[--cs->nfree]];
	s->port = port;
	s->cs = cs;
	if (loop_io_start(cs->l, &s->io, fd, LOOP_WRITE, slot_io_cb, s) < 0) {
		snprintf(cs->err, cs->errlen, "epoll: %s", strerror(errno));
		close(fd);
		cs->nfree++;
		return -1;
	}
	loop_timer_init(&s->timer, slot_timer_cb, s);
	loop_timer_start(cs->l, &s->timer, cs->cfg->connect_ms);
	cs->inflight++;
	return 1;
}

static void fill(struct cscan *cs)
{
	if (cs->fatal)
		return;
	while (cs->inflight < cs->max && next_port(cs) < SCAN_PORTS) {
		if (!rate_take(cs))
			return;
		int rc = start_one(cs, (uint16_t)cs->next);
		if (rc < 0) {
			cs->fatal = 1;
			loop_stop(cs->l);
			return;
		}
		if (rc == 0) {
			/* Out of descriptors or source ports: go on when a connect finishes, or
			 * after a pause when none is in flight. */
			if (cs->inflight == 0 && !loop_timer_armed(&cs->retry))
				loop_timer_start(cs->l, &cs->retry, RETRY_MS);
			if (cs->cfg->rate)
				cs->tokens += 1;
			return;
		}
		cs->next++;
	}
	if (cs->inflight == 0 && next_port(cs) >= SCAN_PORTS)
		loop_stop(cs->l);
}

/* The most descriptors we may hold: raises the soft limit to the hard one. */
static unsigned fd_budget(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024 - SCAN_FD_RESERVE;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SCAN_INFLIGHT_MAX + SCAN_FD_RESERVE)
		return SCAN_INFLIGHT_MAX;
	return rl.rlim_cur > 2 * SCAN_FD_RESERVE ? (unsigned)rl.rlim_cur - SCAN_FD_RESERVE : SCAN_FD_RESERVE;
}

int scan_connect_run(const struct scan_config *cfg, struct scan_ports *open, unsigned *closed,
                     unsigned *filtered, char *err, size_t errlen)
{
	struct cscan cs = {.cfg = cfg, .open = open, .err = err, .errlen = errlen, .spare = -1};
	int rc = -1;

	memset(open, 0, sizeof(*open));
	cs.max = cfg->inflight ? cfg->inflight : SCAN_INFLIGHT_DEFAULT;
	if (cs.max > fd_budget())
		cs.max = fd_budget();
	if (cs.max > cfg->ports.count)
		cs.max = cfg->ports.count ? cfg->ports.count : 1;
	cs.l = loop_new(err, errlen);
	if (!cs.l)
		return -1;
	cs.slots = calloc(cs.max, sizeof(*cs.slots));
	cs.free = calloc(cs.max, sizeof(*cs.free));
	if (!cs.slots || !cs.free) {
		snprintf(err, errlen, "scan: out of memory for %u connects in flight", cs.max);
		goto out;
	}
	for (unsigned i = 0; i < cs.max; i++) {
		cs.slots[i].io.fd = -1;
		cs.free[i] = cs.max - 1 - i;
	}
	cs.nfree = cs.max;
	loop_timer_init(&cs.retry, retry_cb, &cs);
	cs.last_ms = loop_now(cs.l);
	cs.tokens = 1;
	fill(&cs);
	if (!cs.fatal && (cs.inflight || next_port(&cs) < SCAN_PORTS) && loop_run(cs.l) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		goto out;
	}
	if (cs.fatal)
		goto out;
	*closed = cs.closed;
	*filtered = cs.filtered;
	rc = 0;
out:
	/* After a fatal error some connects may still be in flight: close them. */
	for (unsigned i = 0; cs.slots && i < cs.max; i++) {
		if (cs.slots[i].io.fd >= 0) {
			loop_timer_stop(cs.l, &cs.slots[i].timer);
			loop_io_close(cs.l, &cs.slots[i].io);
		}
	}
	loop_timer_stop(cs.l, &cs.retry);
	spare_close(&cs);
	free(cs.slots);
	free(cs.free);
	loop_free(cs.l);
	return rc;
}
