/* connect.c - the TCP connect scan: many non-blocking connects in flight on one event loop. */
#include "scan/scan.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/net.h"

#define RETRY_MS            5    /* pause after EMFILE or EADDRNOTAVAIL while nothing is in flight */
#define SCAN_INLINE_WAIT_US 1000 /* send timeout of a blocking connect (one tick, rounded up) */
#define SCAN_INLINE_MISSES  8    /* timed-out blocking connects before a shard stops blocking */
#define SCAN_STALL_MS       1000 /* beyond --connect-timeout: no socket or source port came free */
#define SCAN_THREAD_FDS     8    /* descriptors a thread needs beyond its connects (loop, spare) */

/* The ports still to try, in order, taken one at a time by every thread: a thread whose
 * connects hang (filtered ports) takes fewer, the others more. */
struct queue {
	uint16_t *ports;
	size_t n;
	atomic_size_t next;
	atomic_int abort; /* a thread failed: the others take no more */
};

struct slot {
	struct loop_io io;
	struct loop_timer timer;
	uint16_t port;
	struct cscan *cs;
};

struct cscan {
	struct loop *l;
	const struct scan_config *cfg;
	struct scan_ports *open, *filt; /* filt->count: the filtered ports */
	unsigned closed;
	struct queue *q;
	uint16_t cur;         /* the port taken from q and not yet started */
	int have;             /* cur is set */
	uint64_t stall_since; /* loop_now() when nothing was in flight and none could start; 0 */
	int stall_errno;
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

/* A connection to ourselves: with the target in the ephemeral range the kernel may
 * pick the target port as the source port, and a TCP simultaneous open "succeeds"
 * with no listener at all. */
static int self_connected(int fd, uint16_t port)
{
	return net_local_port(fd) == port;
}

/* What a connect's error says of the port: 1 open, 0 filtered, -1 closed. A reset
 * before the handshake is ECONNREFUSED; ECONNRESET and EPIPE come only after it
 * completed (a listener that accepts and resets or half-closes at once): open. */
static int connect_result(int e)
{
	switch (e) {
	case 0:
	case EISCONN:
	case ECONNRESET:
	case EPIPE: return 1;
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH: return 0;
	default: return -1;
	}
}

static void slot_done(struct cscan *cs, struct slot *s, int result)
{
	if (result > 0 && !self_connected(s->io.fd, s->port))
		scan_ports_add(cs->open, s->port);
	else if (result == 0)
		scan_ports_add(cs->filt, s->port);
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
	slot_done(s->cs, s, connect_result(e));
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

/* Takes the next port from the queue into cs->cur unless one is held; 0 when none is
 * left (or another thread failed). */
static int take_port(struct cscan *cs)
{
	if (cs->have)
		return 1;
	if (atomic_load_explicit(&cs->q->abort, memory_order_relaxed))
		return 0;
	size_t i = atomic_fetch_add_explicit(&cs->q->next, 1, memory_order_relaxed);
	if (i >= cs->q->n)
		return 0;
	cs->cur = cs->q->ports[i];
	cs->have = 1;
	return 1;
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
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			cs->stall_errno = errno;
			return 0;
		}
		snprintf(cs->err, cs->errlen, "socket: %s", strerror(errno));
		return -1;
	}
	net_ss_set_port(&ss, port);
	int rc = connect(fd, (struct sockaddr *)&ss, cs->cfg->addrlen);
	if (rc < 0 && errno == EINPROGRESS && !cs->spare_waits)
		rc = connect(fd, (struct sockaddr *)&ss, cs->cfg->addrlen); /* collect the answer */
	int e = rc == 0 ? 0 : errno;
	if (e == ECONNREFUSED) {
		cs->closed++; /* the socket is unconnected again: it stays the spare */
		return 1;
	}
	if (e == EADDRNOTAVAIL || e == EAGAIN) { /* no ephemeral port free just now */
		spare_close(cs);
		cs->stall_errno = e;
		return 0;
	}
	if (e == EINPROGRESS || e == EINTR) /* not answered within the send timeout */
		cs->misses++;
	else if (e != EALREADY) {
		int r = connect_result(e);
		int self = r > 0 && self_connected(fd, port);
		spare_close(cs);
		if (self || e == ECONNABORTED)
			cs->closed++;
		else if (r > 0)
			scan_ports_add(cs->open, port);
		else if (r == 0)
			scan_ports_add(cs->filt, port);
		else {
			snprintf(cs->err, cs->errlen, "connect to port %u: %s", port, strerror(e));
			return -1;
		}
		return 1;
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
	loop_touch(cs->l); /* the deadline counts from now, not from the turn's start */
	loop_timer_start(cs->l, &s->timer, cs->cfg->connect_ms);
	cs->inflight++;
	return 1;
}

/* Out of descriptors or source ports with nothing in flight here: retried every
 * RETRY_MS (another thread's or program's may close) for at most --connect-timeout +
 * SCAN_STALL_MS, then the scan fails, naming the port it stopped at: it never reports
 * a port it could not try, and it does not wait forever. Returns 1 when it failed. */
static int stalled(struct cscan *cs)
{
	uint64_t now = loop_now(cs->l);
	if (!cs->stall_since)
		cs->stall_since = now;
	if (now - cs->stall_since < (uint64_t)cs->cfg->connect_ms + SCAN_STALL_MS)
		return 0;
	snprintf(cs->err, cs->errlen,
	         "no %s came free in %.1f s (%s): stopped at port %u, untried ports remain; %s",
	         cs->stall_errno == EADDRNOTAVAIL || cs->stall_errno == EAGAIN ? "source port" : "descriptor",
	         (double)(now - cs->stall_since) / 1000.0, strerror(cs->stall_errno), cs->cur,
	         cs->stall_errno == EADDRNOTAVAIL || cs->stall_errno == EAGAIN
	                 ? "close connections, or widen net.ipv4.ip_local_port_range"
	                 : "raise the limit (ulimit -n) or close descriptors");
	return 1;
}

static void fill(struct cscan *cs)
{
	if (cs->fatal)
		return;
	while (cs->inflight < cs->max && take_port(cs)) {
		if (!rate_take(cs))
			return;
		int rc = start_one(cs, cs->cur);
		if (rc == 0 && cs->inflight == 0 && stalled(cs))
			rc = -1;
		if (rc < 0) {
			cs->fatal = 1;
			atomic_store(&cs->q->abort, 1);
			loop_stop(cs->l);
			return;
		}
		if (rc == 0) {
			/* Go on when a connect finishes, or after a pause when none is in flight. */
			if (cs->inflight == 0 && !loop_timer_armed(&cs->retry))
				loop_timer_start(cs->l, &cs->retry, RETRY_MS);
			if (cs->cfg->rate)
				cs->tokens += 1;
			return;
		}
		cs->have = 0;
		cs->stall_since = 0;
	}
	if (cs->inflight == 0 && !cs->have)
		loop_stop(cs->l);
}

/* The most descriptors we may use: raises the soft limit to the hard one, then counts
 * what is free of it (the descriptors already open are not ours to use), less
 * SCAN_FD_RESERVE for everything else (at least 1). */
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
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)SCAN_INFLIGHT_MAX * 2)
		return SCAN_INFLIGHT_MAX;
	unsigned used = procfs_open_fds();
	unsigned left = rl.rlim_cur > used ? (unsigned)rl.rlim_cur - used : 0;
	if (left > 2 * SCAN_FD_RESERVE)
		return left - SCAN_FD_RESERVE;
	return left / 2 ? left / 2 : 1;
}

/* One thread's share: ports from the queue, on an event loop of its own, with at most
 * max connects pending and rate connects a second (0: no limit). */
struct shard {
	const struct scan_config *cfg;
	struct queue *q;
	unsigned max, rate;
	struct scan_ports open, filt;
	unsigned closed;
	int rc;
	char err[256];
};

static void *shard_run(void *arg)
{
	struct shard *sh = arg;
	struct scan_config cfg = *sh->cfg;
	struct cscan cs = {.cfg = &cfg,
	                   .open = &sh->open,
	                   .filt = &sh->filt,
	                   .err = sh->err,
	                   .errlen = sizeof(sh->err),
	                   .spare = -1,
	                   .q = sh->q,
	                   .max = sh->max};

	sh->rc = -1;
	cfg.rate = sh->rate;
	cs.inline_ok = net_is_loopback((const struct sockaddr *)&cfg.addr);
	cs.l = loop_new(sh->err, sizeof(sh->err));
	if (!cs.l) {
		atomic_store(&sh->q->abort, 1);
		return NULL;
	}
	cs.slots = calloc(cs.max, sizeof(*cs.slots));
	cs.free = calloc(cs.max, sizeof(*cs.free));
	if (!cs.slots || !cs.free) {
		snprintf(sh->err, sizeof(sh->err), "scan: out of memory for %u connects in flight", cs.max);
		atomic_store(&sh->q->abort, 1);
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
	if (!cs.fatal && (cs.inflight || cs.have) && loop_run(cs.l) < 0) {
		snprintf(sh->err, sizeof(sh->err), "event loop: %s", strerror(errno));
		atomic_store(&sh->q->abort, 1);
		goto out;
	}
	if (cs.fatal)
		goto out;
	sh->closed = cs.closed;
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
 * one thread per CPU (cfg->threads) takes ports from one queue, each with its own loop
 * and spare socket, and --max-inflight shared among them. A rate-limited scan (a remote
 * host) runs on one thread: the limit is one budget, and the network, not the CPU, is
 * what it waits for. Fewer threads when descriptors are short (each needs a few), and a
 * thread that cannot start leaves its share of connects to the caller's. */
int scan_connect_run(const struct scan_config *cfg, struct scan_ports *open, struct scan_ports *filt,
                     unsigned *closed, char *err, size_t errlen)
{
	unsigned max = cfg->inflight ? cfg->inflight : SCAN_INFLIGHT_DEFAULT;
	unsigned n = cfg->threads ? cfg->threads : 1;
	unsigned budget = fd_budget();
	struct queue q = {0};
	struct shard *sh = NULL;
	pthread_t *tid = NULL;
	int rc = -1;

	memset(open, 0, sizeof(*open));
	memset(filt, 0, sizeof(*filt));
	*closed = 0;
	if (max > budget)
		max = budget;
	if (max > cfg->ports.count)
		max = cfg->ports.count ? cfg->ports.count : 1;
	if (cfg->rate)
		n = 1;
	if (n > max)
		n = max;
	if (n > 1 && (size_t)n * SCAN_THREAD_FDS > budget - max / 2)
		n = budget > max / 2 + SCAN_THREAD_FDS ? (budget - max / 2) / SCAN_THREAD_FDS : 1;
	if (n == 0)
		n = 1;
	q.ports = malloc((cfg->ports.count + 1) * sizeof(*q.ports));
	sh = calloc(n, sizeof(*sh));
	tid = calloc(n, sizeof(*tid));
	if (!q.ports || !sh || !tid) {
		snprintf(err, errlen, "scan: out of memory");
		goto out;
	}
	for (unsigned port = 1; port < SCAN_PORTS; port++)
		if (scan_ports_has(&cfg->ports, port))
			q.ports[q.n++] = (uint16_t)port;
	atomic_init(&q.next, 0);
	atomic_init(&q.abort, 0);
	for (unsigned k = 0; k < n; k++)
		sh[k] = (struct shard){
		        .cfg = cfg, .q = &q, .max = max / n + (k < max % n), .rate = cfg->rate};
	unsigned started = 1; /* shard 0 runs on this thread */
	while (started < n && pthread_create(&tid[started], NULL, shard_run, &sh[started]) == 0)
		started++;
	for (unsigned k = started; k < n; k++) /* not started: their connects are the caller's */
		sh[0].max += sh[k].max;
	shard_run(&sh[0]);
	for (unsigned k = 1; k < started; k++)
		pthread_join(tid[k], NULL);
	rc = 0;
	for (unsigned k = 0; k < started; k++) {
		if (sh[k].rc < 0) {
			if (rc == 0)
				snprintf(err, errlen, "%s", sh[k].err);
			rc = -1;
			continue;
		}
		for (unsigned w = 0; w < SCAN_PORTS / 64; w++) {
			open->bits[w] |= sh[k].open.bits[w];
			filt->bits[w] |= sh[k].filt.bits[w];
		}
		open->count += sh[k].open.count;
		filt->count += sh[k].filt.count;
		*closed += sh[k].closed;
	}
out:
	free(q.ports);
	free(sh);
	free(tid);
	return rc;
}
