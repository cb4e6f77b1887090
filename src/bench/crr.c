/* crr.c - bench crr: connect, 1-byte request, 1-byte response, close, as fast as it goes. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/sockdiag.h"

#define CRR_SERVER_FD 65536 /* the server's per-descriptor table */
#define CRR_RETRY_MS  1     /* after a failed connect */
#define CRR_DRAIN_MS  2000  /* in-flight cycles may finish this long after the end */

/* ---- the server: accept, read a byte, answer a byte, close at EOF ---- */
struct crr_server {
	struct loop *loop;
	struct loop_io lio;
	struct loop_io *ios; /* indexed by fd */
	unsigned char *answered;
};

static void srv_conn_cb(struct loop *l, struct loop_io *io, unsigned ev)
{
	struct crr_server *s = io->data;
	char b[64];
	int fd = io->fd;
	ssize_t n = read(fd, b, sizeof(b));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && !s->answered[fd]) {
		s->answered[fd] = 1;
		if (write(fd, "r", 1) == 1)
			return;
	}
	if (n > 0)
		return;
	loop_io_stop(l, io);
	close(fd);
}

static void srv_accept_cb(struct loop *l, struct loop_io *io, unsigned ev)
{
	struct crr_server *s = io->data;
	for (int i = 0; i < 256; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (fd >= CRR_SERVER_FD) {
			close(fd);
			continue;
		}
		s->answered[fd] = 0;
		if (loop_io_start(l, &s->ios[fd], fd, LOOP_READ, srv_conn_cb, s) < 0)
			close(fd);
	}
}

static void srv_wake(struct loop *l, void *data)
{
	loop_stop(l);
}

static void *srv_main(void *arg)
{
	struct crr_server *s = arg;
	loop_run(s->loop);
	for (int fd = 0; fd < CRR_SERVER_FD; fd++)
		if (s->ios[fd].fd >= 0) {
			loop_io_stop(s->loop, &s->ios[fd]);
			close(fd);
		}
	return NULL;
}

/* ---- the client: conc slots, each one cycle at a time ---- */
struct crr_client;
struct slot {
	struct crr_client *c;
	struct loop_io io;
	struct loop_timer retry;
	unsigned idx;
	int state; /* 0 idle, 1 connecting, 2 waiting for the answer */
	uint64_t t0;
};

struct crr_client {
	const struct bench_crr_opts *o;
	struct loop *loop;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	struct slot *slots;
	struct loop_timer end_timer, drain_timer;
	unsigned next_source, busy;
	int stopping;
	uint64_t started; /* cycles begun */
	_Atomic uint64_t done;
	uint64_t failed;
	uint64_t end_ns; /* when the loop finished */
	uint64_t fail_errno[BENCH_MAX_ERRNO];
	struct hist *h;
	atomic_int *stop;
};

static void slot_start(struct slot *s);
static void cli_stop(struct crr_client *c);

static void slot_fail(struct slot *s, int e)
{
	struct crr_client *c = s->c;
	c->failed++;
	c->started--; /* -n counts completed cycles */
	c->fail_errno[e > 0 && e < BENCH_MAX_ERRNO ? e : 0]++;
	if (s->io.fd >= 0) {
		int fd = s->io.fd;
		loop_io_stop(c->loop, &s->io);
		close(fd);
	}
	s->state = 0;
	c->busy--;
	if (c->stopping) {
		if (!c->busy)
			loop_stop(c->loop);
		return;
	}
	loop_timer_start(c->loop, &s->retry, CRR_RETRY_MS);
}

static void slot_cb(struct loop *l, struct loop_io *io, unsigned ev)
{
	struct slot *s = io->data;
	struct crr_client *c = s->c;
	int fd = io->fd;
	if (s->state == 1) {
		if (!(ev & LOOP_WRITE))
			return;
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			slot_fail(s, err);
			return;
		}
		if (write(fd, "q", 1) != 1) {
			slot_fail(s, errno);
			return;
		}
		s->state = 2;
		loop_io_set(l, io, LOOP_READ);
		return;
	}
	char b[16];
	ssize_t n = read(fd, b, sizeof(b));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		slot_fail(s, n == 0 ? ECONNRESET : errno);
		return;
	}
	hist_record(c->h, bench_now_ns() - s->t0);
	atomic_store_explicit(&c->done, atomic_load_explicit(&c->done, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	loop_io_stop(l, io);
	close(fd);
	s->state = 0;
	c->busy--;
	if (c->stopping) {
		if (!c->busy)
			loop_stop(l);
		return;
	}
	slot_start(s);
}

static void slot_start(struct slot *s)
{
	struct crr_client *c = s->c;
	if (c->stopping || (c->o->max && c->started >= c->o->max)) {
		cli_stop(c);
		return;
	}
	c->started++;
	c->busy++;
	s->state = 1;
	s->t0 = bench_now_ns();
	int fd = socket(c->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		slot_fail(s, errno);
		return;
	}
	if (c->o->sources) {
		/* Each source address has its own ephemeral range. IP_BIND_ADDRESS_NO_PORT
		 * leaves the port to connect(), which may share a port between destinations. */
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f000001u + (c->next_source++ % c->o->sources));
		int one = 1;
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			int e = errno;
			close(fd);
			slot_fail(s, e);
			return;
		}
	}
	if (connect(fd, (struct sockaddr *)&c->dst, c->dstlen) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		slot_fail(s, e);
		return;
	}
	if (loop_io_start(c->loop, &s->io, fd, LOOP_WRITE, slot_cb, s) < 0) {
		int e = errno;
		close(fd);
		slot_fail(s, e);
	}
}

static void retry_cb(struct loop *l, struct loop_timer *t)
{
	slot_start(t->data);
}

static void cli_stop(struct crr_client *c)
{
	if (c->stopping)
		return;
	c->stopping = 1;
	for (unsigned i = 0; i < c->o->conc; i++)
		loop_timer_stop(c->loop, &c->slots[i].retry);
	if (!c->busy)
		loop_stop(c->loop);
	loop_timer_start(c->loop, &c->drain_timer, CRR_DRAIN_MS);
}

static void end_cb(struct loop *l, struct loop_timer *t)
{
	cli_stop(t->data);
}
static void drain_cb(struct loop *l, struct loop_timer *t)
{
	loop_stop(l);
}
static void cli_wake(struct loop *l, void *data)
{
	struct crr_client *c = data;
	if (atomic_load(c->stop))
		cli_stop(c);
}

static void *cli_main(void *arg)
{
	struct crr_client *c = arg;
	loop_timer_start(c->loop, &c->end_timer, (uint64_t)(c->o->secs * 1000));
	for (unsigned i = 0; i < c->o->conc; i++)
		slot_start(&c->slots[i]);
	loop_run(c->loop);
	for (unsigned i = 0; i < c->o->conc; i++) /* cut short by the drain limit */
		if (c->slots[i].io.fd >= 0) {
			int fd = c->slots[i].io.fd;
			loop_io_stop(c->loop, &c->slots[i].io);
			close(fd);
		}
	c->end_ns = bench_now_ns();
	atomic_store(c->stop, 2); /* finished */
	return NULL;
}

struct crr_tick {
	struct crr_client *c;
	struct bench_crr_result *r;
	const struct bench_ctl *ctl;
	uint64_t start, last;
};

static void crr_tick(void *arg, uint64_t now)
{
	struct crr_tick *t = arg;
	uint64_t d = atomic_load_explicit(&t->c->done, memory_order_relaxed);
	if (t->r->nseries < BENCH_MAX_SERIES)
		t->r->series[t->r->nseries++] = (double)(d - t->last);
	char line[128];
	snprintf(line, sizeof(line), "  %4.0f/%.0f s  %llu connections  %.0f/s",
	         (double)(now - t->start) / 1e9, t->c->o->secs, (unsigned long long)d, (double)(d - t->last));
	t->last = d;
	bench_progress(t->ctl, line, 0);
}

static int crr_done(void *arg)
{
	struct crr_tick *t = arg;
	return atomic_load(t->c->stop) == 2;
}

/* Reads a /proc/sys file's first line into b. Returns 0 or -1. */
static int read_sysctl(const char *path, char *b, size_t len)
{
	FILE *f = fopen(path, "re");
	int ok = f && fgets(b, (int)len, f);
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* The TIME_WAIT sockets the run left (on the machine, and to dst) and what bounds
 * them: the ephemeral port range per source address and tcp_tw_reuse. */
static void crr_time_wait(struct bench_crr_result *r, const struct sockaddr_storage *dst)
{
	char b[64], *end;
	r->port_lo = 32768, r->port_hi = 60999; /* the kernel's default, when unreadable */
	if (read_sysctl("/proc/sys/net/ipv4/ip_local_port_range", b, sizeof b) == 0) {
		unsigned long lo = strtoul(b, &end, 10), hi = strtoul(end, &end, 10);
		if (lo && lo <= hi && hi <= 65535)
			r->port_lo = (unsigned)lo, r->port_hi = (unsigned)hi;
	}
	r->nsources = r->o.sources ? r->o.sources : 1;
	r->ports_per_source = r->port_hi - r->port_lo + 1u;
	r->ports = r->ports_per_source * r->nsources;
	r->tw_reuse = -1;
	if (read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", b, sizeof b) == 0) {
		long v = strtol(b, &end, 10);
		if (end != b && v >= 0 && v < 100)
			r->tw_reuse = (int)v;
	}
	struct sockdiag_sock *s = NULL;
	size_t n = 0;
	if (sockdiag_list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_TIME_WAIT), &s, &n, NULL, 0) < 0)
		return;
	const struct sockaddr_in *d = (const struct sockaddr_in *)dst;
	r->time_wait = (long)n;
	r->time_wait_target = 0;
	for (size_t i = 0; i < n; i++) {
		const struct sockaddr_in *rem = (const struct sockaddr_in *)&s[i].remote;
		if (s[i].family == AF_INET && rem->sin_port == d->sin_port &&
		    rem->sin_addr.s_addr == d->sin_addr.s_addr)
			r->time_wait_target++;
	}
	free(s);
	r->time_wait_pct = r->ports ? 100.0 * (double)r->time_wait_target / (double)r->ports : 0;
}

int bench_crr_run(const struct bench_crr_opts *o, const struct bench_ctl *ctl, struct bench_crr_result *r)
{
	memset(r, 0, sizeof(*r));
	r->o = *o;
	r->time_wait = r->time_wait_target = -1;
	if (!o->conc || o->conc > BENCH_CRR_MAX_CONC || o->sources > BENCH_MAX_SOURCES) {
		snprintf(r->st.error, sizeof(r->st.error), "-C is 1-%d, --sources 0-%d", BENCH_CRR_MAX_CONC,
		         BENCH_MAX_SOURCES);
		r->st.usage = 1;
		return -1;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct crr_server srv = {0};
	struct crr_client cli = {0};
	atomic_int stop = 0;
	char err[256] = "";
	int rc = -1, lfd = -1;
	pthread_t st, ct;
	int sok = 0, cok = 0;
	r->hist = cli.h = hist_new();
	srv.ios = calloc(CRR_SERVER_FD, sizeof(*srv.ios));
	srv.answered = calloc(CRR_SERVER_FD, 1);
	cli.slots = calloc(o->conc, sizeof(*cli.slots));
	if (!cli.h || !srv.ios || !srv.answered || !cli.slots) {
		snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	for (int i = 0; i < CRR_SERVER_FD; i++)
		srv.ios[i].fd = -1;
	srv.loop = loop_new(err, sizeof(err));
	cli.loop = srv.loop ? loop_new(err, sizeof(err)) : NULL;
	if (!cli.loop)
		goto out;
	struct sockaddr_storage ss;
	socklen_t sl;
	net_parse_addr("127.0.0.1", 0, &ss, &sl);
	lfd = net_listen((struct sockaddr *)&ss, sl, 4096, 0, err, sizeof(err));
	if (lfd < 0)
		goto out;
	if (loop_io_start(srv.loop, &srv.lio, lfd, LOOP_READ, srv_accept_cb, &srv) < 0 ||
	    loop_wake_init(srv.loop, srv_wake, &srv) < 0 || loop_wake_init(cli.loop, cli_wake, &cli) < 0) {
		snprintf(err, sizeof(err), "event loop: %s", strerror(errno));
		goto out;
	}
	net_parse_addr("127.0.0.1", net_local_port(lfd), &cli.dst, &cli.dstlen);
	snprintf(r->target, sizeof(r->target), "127.0.0.1:%u", net_local_port(lfd));
	cli.o = o;
	cli.stop = &stop;
	loop_timer_init(&cli.end_timer, end_cb, &cli);
	loop_timer_init(&cli.drain_timer, drain_cb, &cli);
	for (unsigned i = 0; i < o->conc; i++) {
		cli.slots[i].c = &cli;
		cli.slots[i].idx = i;
		cli.slots[i].io.fd = -1;
		loop_timer_init(&cli.slots[i].retry, retry_cb, &cli.slots[i]);
	}
	uint64_t start = bench_now_ns();
	sok = pthread_create(&st, NULL, srv_main, &srv) == 0;
	cok = sok && pthread_create(&ct, NULL, cli_main, &cli) == 0;
	if (!cok) {
		snprintf(err, sizeof(err), "cannot start threads");
	} else {
		struct crr_tick tk = {&cli, r, ctl, start, 0};
		r->st.interrupted = bench_wait(
		        ctl, start, start + (uint64_t)(o->secs * 1e9) + (CRR_DRAIN_MS + 500) * 1000000ull,
		        1000000000u, crr_tick, crr_done, &tk);
		rc = 0;
	}
	if (cok) {
		int expect = 0;
		atomic_compare_exchange_strong(&stop, &expect, 1);
		loop_wake(cli.loop);
		pthread_join(ct, NULL);
	}
	uint64_t end = cli.end_ns ? cli.end_ns : bench_now_ns();
	if (sok) {
		loop_wake(srv.loop);
		pthread_join(st, NULL);
	}
	bench_progress(ctl, "", 1);
	r->st.elapsed_s = (double)(end - start) / 1e9;
	r->conns = cli.h->count;
	r->failed = cli.failed;
	r->st.failed = r->failed > 0 || !r->conns;
	memcpy(r->fail_errno, cli.fail_errno, sizeof(r->fail_errno));
	r->rate = r->st.elapsed_s > 0 ? (double)r->conns / r->st.elapsed_s : 0;
	bench_lat_from(&r->lat, cli.h);
	crr_time_wait(r, &cli.dst);
out:
	if (lfd >= 0) {
		if (srv.loop)
			loop_io_stop(srv.loop, &srv.lio);
		close(lfd);
	}
	loop_free(srv.loop);
	loop_free(cli.loop);
	free(srv.ios);
	free(srv.answered);
	free(cli.slots);
	if (rc < 0)
		snprintf(r->st.error, sizeof(r->st.error), "%s", err);
	return rc;
}

void bench_crr_free(struct bench_crr_result *r)
{
	free(r->hist);
	r->hist = NULL;
}
