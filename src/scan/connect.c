/* connect.c - the TCP connect scan: many non-blocking connects in flight on one event loop. */
#include "scan/scan.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/net.h"

#define RETRY_MS            5    /* pause after EMFILE or EADDRNOTAVAIL while nothing is in flight */
#define SCAN_INLINE_WAIT_US 1000 /* send timeout of a blocking connect (one tick, rounded up) */
#define SCAN_INLINE_MISSES  8    /* timed-out blocking connects before a shard stops blocking */

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
	unsigned next;   /* the next port to try */
	unsigned stride; /* this shard tries next, next + stride, ... */
	unsigned inflight, max;
	struct slot *slots; /* max of them */
	unsigned *free;     /* indices of idle slots (a stack) */
	unsigned nfree;
	struct loop_timer retry; /* rate limit or a resource pause */
	double tokens;           /* --rate: connects we may start now */
	uint64_t last_ms;
	int fatal;
	int spare;       /* an unconnected socket ready for the next port, or -1 */
	int spare_waits; /* it is blocking, with a send timeout (see spare_socket) */
	int inline_ok;   /* the target is loopback: answers come within connect() */
	unsigned misses; /* blocking connects that timed out */
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
		cs->next += cs->stride;
	return cs->next < SCAN_PORTS ? cs->next : SCAN_PORTS;
}

/* On loopback the kernel answers a SYN within the connect call itself: the RST (or
 * SYN-ACK) reaches the socket while connect() still holds it, and is processed when
 * connect lets go. A non-blocking connect has already decided on EINPROGRESS by then;
 * a blocking one looks again after letting go, finds the answer in, and returns it
 * (0 when open, ECONNREFUSED when closed) without sleeping. After a refusal the socket
 * is unconnected again, so one socket serves port after port: one system call per
 * closed port, no socket() and close(), no epoll for answers that are already in.
 *
 * A connect that is not answered at once (a full accept queue drops the SYN) would
 * sleep, so the blocking socket has a send timeout of SCAN_INLINE_WAIT_US (the kernel
 * rounds it up to one tick) and then returns EINPROGRESS; after SCAN_INLINE_MISSES of
 * those the shard stops waiting at all and uses non-blocking sockets, asking a second
 * connect for the answer (EALREADY: still pending). Toward other hosts (an answer is
 * never in at once) the sockets are non-blocking from the start. Pending connects go to
 * the event loop, with a deadline. */
static int spare_socket(struct cscan *cs)
{
	if (cs->spare < 0) {
		int wait = cs->inline_ok && cs->misses < SCAN_INLINE_MISSES;
		cs->spare = socket(cs->cfg->addr.ss_family,
		                   SOCK_STREAM | (wait ? 0 : SOCK_NONBLOCK) | SOCK_CLOEXEC, 0);
		if (cs->spare >= 0 && wait) {
			struct timeval tv = {.tv_usec = SCAN_INLINE_WAIT_US};
			if (setsockopt(cs->spare, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
				close(cs->spare); /* never a blocking connect without its bound */
				cs->spare = -1;
				cs->misses = SCAN_INLINE_MISSES;
				return spare_socket(cs);
			}
		}
		cs->spare_waits = wait;
	}
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
	if (rc < 0 && errno == EINPROGRESS && !cs->spare_waits)
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
	if (errno == EINPROGRESS || errno == EINTR) /* not answered within the send timeout */
		cs->misses++;
	else if (errno != EALREADY) {
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
		cs->next += cs->stride;
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

/* One shard: the ports first, first + stride, ... of cfg, on an event loop of its own,
 * with at most max connects pending and rate connects a second (0: no limit). */
struct shard {
	const struct scan_config *cfg;
	unsigned first, stride, max, rate;
	struct scan_ports open;
	unsigned closed, filtered;
	int rc;
	char err[256];
};

static void *shard_run(void *arg)
{
	struct shard *sh = arg;
	struct scan_config cfg = *sh->cfg;
	struct cscan cs = {.cfg = &cfg,
	                   .open = &sh->open,
	                   .err = sh->err,
	                   .errlen = sizeof(sh->err),
	                   .spare = -1,
	                   .next = sh->first,
	                   .stride = sh->stride,
	                   .max = sh->max};

	sh->rc = -1;
	cfg.rate = sh->rate;
	cs.inline_ok = net_is_loopback((const struct sockaddr *)&cfg.addr);
	cs.l = loop_new(sh->err, sizeof(sh->err));
	if (!cs.l)
		return NULL;
	cs.slots = calloc(cs.max, sizeof(*cs.slots));
	cs.free = calloc(cs.max, sizeof(*cs.free));
	if (!cs.slots || !cs.free) {
		snprintf(sh->err, sizeof(sh->err), "scan: out of memory for %u connects in flight", cs.max);
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
		snprintf(sh->err, sizeof(sh->err), "event loop: %s", strerror(errno));
		goto out;
	}
	if (cs.fatal)
		goto out;
	sh->closed = cs.closed;
	sh->filtered = cs.filtered;
	sh->rc = 0;
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
	return NULL;
}

/* Loopback answers inside connect(), so a scan is CPU-bound in the kernel's TCP code:
 * the ports are dealt round-robin to one shard per thread, each with its own loop and
 * spare socket. A rate-limited scan (a remote host) runs on one thread: the limit is
 * one budget, and the network, not the CPU, is what it waits for. */
int scan_connect_run(const struct scan_config *cfg, struct scan_ports *open, unsigned *closed,
                     unsigned *filtered, char *err, size_t errlen)
{
	unsigned max = cfg->inflight ? cfg->inflight : SCAN_INFLIGHT_DEFAULT;
	unsigned n = cfg->threads ? cfg->threads : 1;
	struct shard *sh;
	pthread_t *tid;
	int rc = 0;

	memset(open, 0, sizeof(*open));
	if (max > fd_budget())
		max = fd_budget();
	if (max > cfg->ports.count)
		max = cfg->ports.count ? cfg->ports.count : 1;
	if (cfg->rate || n > max)
		n = cfg->rate ? 1 : max;
	if (n > cfg->ports.count)
		n = cfg->ports.count ? cfg->ports.count : 1;
	sh = calloc(n, sizeof(*sh));
	tid = calloc(n, sizeof(*tid));
	if (!sh || !tid) {
		free(sh);
		free(tid);
		snprintf(err, errlen, "scan: out of memory");
		return -1;
	}
	unsigned started = 1; /* shard 0 runs on this thread */
	for (unsigned k = 0; k < n; k++)
		sh[k] = (struct shard){.cfg = cfg,
		                       .first = k,
		                       .stride = n,
		                       .max = max / n + (k < max % n),
		                       .rate = cfg->rate};
	while (started < n && pthread_create(&tid[started], NULL, shard_run, &sh[started]) == 0)
		started++;
	shard_run(&sh[0]);
	for (unsigned k = 1; k < started; k++)
		pthread_join(tid[k], NULL);
	for (unsigned k = started; k < n; k++) /* a thread that could not start: its ports here */
		shard_run(&sh[k]);
	*closed = *filtered = 0;
	for (unsigned k = 0; k < n; k++) {
		if (sh[k].rc < 0) {
			if (rc == 0)
				snprintf(err, errlen, "%s", sh[k].err);
			rc = -1;
			continue;
		}
		for (unsigned w = 0; w < SCAN_PORTS / 64; w++)
			open->bits[w] |= sh[k].open.bits[w];
		open->count += sh[k].open.count;
		*closed += sh[k].closed;
		*filtered += sh[k].filtered;
	}
	free(sh);
	free(tid);
	return rc;
}
