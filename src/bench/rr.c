/* rr.c - bench rr: ping-pong round trips over loopback TCP or UDP, one message in flight. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench.h"
#include "core/net.h"

#define RR_UDP_MAX_LEN 65507 /* 65535 less the IPv4 and UDP headers */

struct rr {
	const struct bench_rr_opts *o;
	int cfd, sfd; /* client end; server end (TCP accepted or the UDP socket) */
	atomic_int stop;
	_Atomic uint64_t done;
	uint64_t lost, end_ns;
	struct hist *h;
	int err;
};

static int read_full(int fd, char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = recv(fd, b + got, n - got, 0);
		if (k > 0)
			got += (size_t)k;
		else if (k == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

static int write_full(int fd, const char *b, size_t n)
{
	size_t put = 0;
	while (put < n) {
		ssize_t k = send(fd, b + put, n - put, MSG_NOSIGNAL);
		if (k > 0)
			put += (size_t)k;
		else if (k < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

static void *server_main(void *arg)
{
	struct rr *x = arg;
	size_t len = x->o->len;
	char *b = malloc(len);
	if (!b)
		return NULL;
	if (!x->o->udp) {
		while (read_full(x->sfd, b, len) == 0 && write_full(x->sfd, b, len) == 0)
			;
	} else {
		while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(x->sfd, b, len, 0, (struct sockaddr *)&from, &fl);
			if (n > 0)
				sendto(x->sfd, b, (size_t)n, 0, (struct sockaddr *)&from, fl);
		}
	}
	free(b);
	return NULL;
}

static void *client_main(void *arg)
{
	struct rr *x = arg;
	size_t len = x->o->len;
	char *b = calloc(1, len), *in = malloc(len);
	uint64_t seq = 0, done = 0;
	if (!b || !in) {
		x->err = ENOMEM;
		goto out;
	}
	for (;;) {
		uint64_t t0 = bench_now_ns();
		if (t0 >= x->end_ns || atomic_load_explicit(&x->stop, memory_order_relaxed))
			break;
		if (!x->o->udp) {
			if (write_full(x->cfd, b, len) < 0 || read_full(x->cfd, in, len) < 0) {
				x->err = errno ? errno : EPIPE;
				break;
			}
		} else {
			seq++;
			memcpy(b, &seq, sizeof(seq));
			if (send(x->cfd, b, len, 0) < 0) {
				x->err = errno;
				break;
			}
			for (;;) { /* skip late replies to lost messages */
				ssize_t n = recv(x->cfd, in, len, 0);
				uint64_t got;
				if (n < 0) {
					if (errno == EINTR)
						continue;
					x->lost++;
					break;
				}
				memcpy(&got, in, sizeof(got));
				if ((size_t)n == len && got == seq)
					break;
			}
		}
		uint64_t t1 = bench_now_ns();
		hist_record(x->h, t1 - t0);
		atomic_store_explicit(&x->done, ++done, memory_order_relaxed);
	}
out:
	free(b);
	free(in);
	return NULL;
}

struct rr_tick {
	struct rr *x;
	const struct bench_ctl *ctl;
	uint64_t start, last;
};

static void rr_tick(void *arg, uint64_t now)
{
	struct rr_tick *t = arg;
	uint64_t d = atomic_load_explicit(&t->x->done, memory_order_relaxed);
	char line[128];
	snprintf(line, sizeof(line), "  %4.0f/%.0f s  %llu round trips  %.0f/s",
	         (double)(now - t->start) / 1e9, t->x->o->secs, (unsigned long long)d, (double)(d - t->last));
	t->last = d;
	bench_progress(t->ctl, line, 0);
}

static int rr_setup(struct rr *x, char *err, size_t errlen)
{
	const struct bench_rr_opts *o = x->o;
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;
	net_parse_addr(o->v6 ? "::1" : "127.0.0.1", 0, &ss, &sl);
	if (o->udp) {
		x->sfd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (x->sfd < 0 || bind(x->sfd, (struct sockaddr *)&ss, sl) < 0)
			goto fail;
		struct timeval tv = {0, 100000}; /* the server checks the stop flag this often */
		setsockopt(x->sfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		socklen_t l = sl;
		getsockname(x->sfd, (struct sockaddr *)&ss, &l);
		x->cfd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (x->cfd < 0 || connect(x->cfd, (struct sockaddr *)&ss, sl) < 0)
			goto fail;
		struct timeval lt = {1, 0}; /* a reply later than this is lost */
		setsockopt(x->cfd, SOL_SOCKET, SO_RCVTIMEO, &lt, sizeof(lt));
		return 0;
	}
	int lfd = net_listen((struct sockaddr *)&ss, sl, 1, 0, err, errlen);
	if (lfd < 0)
		return -1;
	int nb = 0;
	ioctl(lfd, FIONBIO, &nb);
	net_parse_addr(o->v6 ? "::1" : "127.0.0.1", net_local_port(lfd), &ss, &sl);
	x->cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (x->cfd < 0 || connect(x->cfd, (struct sockaddr *)&ss, sl) < 0) {
		close(lfd);
		goto fail;
	}
	x->sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (x->sfd < 0)
		goto fail;
	setsockopt(x->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(x->sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
fail:
	snprintf(err, errlen, "socket setup: %s", strerror(errno));
	return -1;
}

int bench_rr_run(const struct bench_rr_opts *o, const struct bench_ctl *ctl, struct bench_rr_result *r)
{
	memset(r, 0, sizeof(*r));
	r->o = *o;
	size_t min = o->udp ? 8 : 1, max = o->udp ? RR_UDP_MAX_LEN : BENCH_RR_MAX_LEN;
	if (o->len < min || o->len > max) {
		snprintf(r->st.error, sizeof(r->st.error), "-l is %zu to %zu bytes%s", min, max,
		         o->udp ? " with -u (a UDP message carries an 8-byte sequence number, and an IPv4 "
		                  "datagram at most 65507 bytes)"
		                : "");
		r->st.usage = 1;
		return -1;
	}
	struct rr x = {.o = o, .cfd = -1, .sfd = -1};
	r->hist = x.h = hist_new();
	if (!x.h) {
		snprintf(r->st.error, sizeof(r->st.error), "out of memory");
		return -1;
	}
	if (rr_setup(&x, r->st.error, sizeof(r->st.error)) < 0) {
		if (x.cfd >= 0)
			close(x.cfd);
		if (x.sfd >= 0)
			close(x.sfd);
		return -1;
	}
	pthread_t st, ct;
	uint64_t start = bench_now_ns();
	x.end_ns = start + (uint64_t)(o->secs * 1e9);
	int sok = pthread_create(&st, NULL, server_main, &x) == 0;
	int cok = sok && pthread_create(&ct, NULL, client_main, &x) == 0;
	struct rr_tick tk = {&x, ctl, start, 0};
	if (cok)
		r->st.interrupted = bench_wait(ctl, start, x.end_ns, 1000000000u, rr_tick, NULL, &tk);
	atomic_store(&x.stop, 1);
	if (cok)
		pthread_join(ct, NULL);
	uint64_t end = bench_now_ns();
	shutdown(x.cfd, SHUT_RDWR); /* TCP: the server reads EOF */
	if (sok)
		pthread_join(st, NULL);
	close(x.cfd);
	close(x.sfd);
	bench_progress(ctl, "", 1);
	r->st.elapsed_s = (double)(end - start) / 1e9;
	r->round_trips = x.h->count;
	r->lost = x.lost;
	r->rate = r->st.elapsed_s > 0 ? (double)r->round_trips / r->st.elapsed_s : 0;
	bench_lat_from(&r->lat, x.h);
	r->half_p50_us = r->lat.pct_us[0] / 2;
	if (!cok) {
		snprintf(r->st.error, sizeof(r->st.error), "cannot start threads");
		return -1;
	}
	if (x.err) { /* what was measured before is still worth a report */
		snprintf(r->st.error, sizeof(r->st.error), "round trip failed: %s", strerror(x.err));
		r->st.failed = 1;
		return r->round_trips ? 0 : -1;
	}
	return 0;
}

void bench_rr_free(struct bench_rr_result *r)
{
	free(r->hist);
	r->hist = NULL;
}
