/* tcp.c - bench tcp: bulk TCP throughput over loopback, sender and receiver threads per stream. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "core/net.h"

struct tstream {
	int sfd, rfd; /* sending and receiving end */
	int memfd;    /* --zerocopy source */
	char *sbuf, *rbuf;
	size_t len;
	atomic_int *stop;
	_Atomic uint64_t rbytes;
	uint64_t retrans;
	pthread_t st, rt;
	int st_ok, rt_ok;
};

static void *sender_main(void *arg)
{
	struct tstream *s = arg;
	while (!atomic_load_explicit(s->stop, memory_order_relaxed)) {
		ssize_t n;
		if (s->memfd >= 0) {
			off_t off = 0;
			n = sendfile(s->sfd, s->memfd, &off, s->len);
		} else {
			n = send(s->sfd, s->sbuf, s->len, MSG_NOSIGNAL);
		}
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			break;
	}
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	if (getsockopt(s->sfd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
		s->retrans = ti.tcpi_total_retrans;
	shutdown(s->sfd, SHUT_WR);
	return NULL;
}

static void *receiver_main(void *arg)
{
	struct tstream *s = arg;
	for (;;) {
		ssize_t n = recv(s->rfd, s->rbuf, s->len, 0);
		if (n > 0)
			atomic_fetch_add_explicit(&s->rbytes, (uint64_t)n, memory_order_relaxed);
		else if (n == 0 || (errno != EINTR && errno != EAGAIN))
			break;
	}
	return NULL;
}

struct tcp_run {
	struct tstream *s;
	unsigned n;
	const struct bench_ctl *ctl;
	struct bench_tcp_result *r;
	uint64_t last_bytes, second_bytes; /* at the last sample; at the last whole second */
	uint64_t start, last_ns;           /* when it began; the last sample */
	unsigned ticks;
};

static uint64_t tcp_bytes(const struct tcp_run *t)
{
	uint64_t b = 0;
	for (unsigned i = 0; i < t->n; i++)
		b += atomic_load_explicit(&t->s[i].rbytes, memory_order_relaxed);
	return b;
}

/* Every BENCH_SAMPLE_MS: a sample for the plot; every second, one for the report. */
static void tcp_tick(void *arg, uint64_t now)
{
	struct tcp_run *t = arg;
	struct bench_tcp_result *r = t->r;
	uint64_t b = tcp_bytes(t);
	if (r->nsamples < BENCH_MAX_SAMPLES && now > t->last_ns) /* per real, not nominal, interval */
		r->samples_gbps[r->nsamples++] = (double)(b - t->last_bytes) * 8 / (double)(now - t->last_ns);
	t->last_bytes = b;
	t->last_ns = now;
	if (++t->ticks % (1000 / BENCH_SAMPLE_MS))
		return;
	double g = (double)(b - t->second_bytes) * 8 / 1e9;
	t->second_bytes = b;
	if (r->nseries < BENCH_MAX_SERIES)
		r->series_gbps[r->nseries++] = g;
	char line[128];
	snprintf(line, sizeof(line), "  %4.0f/%.0f s  %.2f Gbit/s", (double)(now - t->start) / 1e9,
	         t->r->o.secs, g);
	bench_progress(t->ctl, line, 0);
}

/* Connects one stream: a blocking pair over the listener. */
static int stream_open(struct tstream *s, int lfd, const struct sockaddr *sa, socklen_t salen, char *err,
                       size_t errlen)
{
	s->sfd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->sfd < 0 || connect(s->sfd, sa, salen) < 0) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		return -1;
	}
	s->rfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s->rfd < 0) {
		snprintf(err, errlen, "accept: %s", strerror(errno));
		return -1;
	}
	struct timeval tv = {2, 0}; /* a stuck peer cannot hold a thread forever */
	setsockopt(s->sfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(s->rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	s->sbuf = malloc(s->len);
	s->rbuf = malloc(s->len);
	if (!s->sbuf || !s->rbuf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->len; i++)
		s->sbuf[i] = (char)(i * 7);
	return 0;
}

int bench_tcp_run(const struct bench_tcp_opts *o, const struct bench_ctl *ctl, struct bench_tcp_result *r)
{
	memset(r, 0, sizeof(*r));
	r->o = *o;
	if (!o->streams || o->streams > BENCH_TCP_MAX_STREAMS || !o->len || o->len > BENCH_TCP_MAX_LEN) {
		snprintf(r->st.error, sizeof(r->st.error), "streams are 1-%d, -l is 1 byte to %u",
		         BENCH_TCP_MAX_STREAMS, BENCH_TCP_MAX_LEN);
		r->st.usage = 1;
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	net_parse_addr(o->v6 ? "::1" : "127.0.0.1", 0, &ss, &sl);
	int lfd = net_listen((struct sockaddr *)&ss, sl, 256, 0, r->st.error, sizeof(r->st.error));
	if (lfd < 0)
		return -1;
	/* accept4 below blocks: clear net_listen's O_NONBLOCK */
	int nb = 0;
	ioctl(lfd, FIONBIO, &nb);
	net_parse_addr(o->v6 ? "::1" : "127.0.0.1", net_local_port(lfd), &ss, &sl);
	atomic_int stop = 0;
	struct tstream *s = calloc(o->streams, sizeof(*s));
	int rc = s ? 0 : -1;
	if (!s)
		snprintf(r->st.error, sizeof(r->st.error), "out of memory");
	for (unsigned i = 0; s && i < o->streams; i++)
		s[i].sfd = s[i].rfd = s[i].memfd = -1;
	for (unsigned i = 0; rc == 0 && i < o->streams; i++) {
		s[i].len = o->len;
		s[i].stop = &stop;
		rc = stream_open(&s[i], lfd, (struct sockaddr *)&ss, sl, r->st.error, sizeof(r->st.error));
		if (rc == 0 && o->zerocopy) {
			s[i].memfd = memfd_create("loopkit-bench", MFD_CLOEXEC);
			if (s[i].memfd < 0 || write(s[i].memfd, s[i].sbuf, o->len) != (ssize_t)o->len) {
				snprintf(r->st.error, sizeof(r->st.error), "memfd for --zerocopy: %s",
				         strerror(errno));
				rc = -1;
			}
		}
	}
	struct tcp_run run = {s, o->streams, ctl, r, 0, 0, 0, 0, 0};
	double cpu0 = bench_cpu_s();
	uint64_t start = bench_now_ns();
	run.start = run.last_ns = start;
	for (unsigned i = 0; rc == 0 && i < o->streams; i++) {
		s[i].rt_ok = pthread_create(&s[i].rt, NULL, receiver_main, &s[i]) == 0;
		s[i].st_ok = pthread_create(&s[i].st, NULL, sender_main, &s[i]) == 0;
		if (!s[i].rt_ok || !s[i].st_ok) {
			snprintf(r->st.error, sizeof(r->st.error), "cannot start threads");
			rc = -1;
		}
	}
	if (rc == 0)
		r->st.interrupted = bench_wait(ctl, start, start + (uint64_t)(o->secs * 1e9),
		                               BENCH_SAMPLE_MS * 1000000ull, tcp_tick, NULL, &run);
	uint64_t end = bench_now_ns();
	r->bytes = s ? tcp_bytes(&run) : 0;
	double cpu1 = bench_cpu_s();
	atomic_store(&stop, 1);
	for (unsigned i = 0; s && i < o->streams; i++) {
		if (s[i].st_ok)
			pthread_join(s[i].st, NULL);
		if (s[i].rt_ok)
			pthread_join(s[i].rt, NULL);
		r->retransmits += s[i].retrans;
		if (s[i].sfd >= 0)
			close(s[i].sfd);
		if (s[i].rfd >= 0)
			close(s[i].rfd);
		if (s[i].memfd >= 0)
			close(s[i].memfd);
		free(s[i].sbuf);
		free(s[i].rbuf);
	}
	free(s);
	close(lfd);
	bench_progress(ctl, "", 1);
	r->st.elapsed_s = (double)(end - start) / 1e9;
	if (r->st.elapsed_s > 0) {
		r->gbps = (double)r->bytes * 8 / r->st.elapsed_s / 1e9;
		r->cpu_pct = 100 * (cpu1 - cpu0) / r->st.elapsed_s;
	}
	return rc;
}
