/* listen.c - the port, taken alone; accepting on every worker; the FTP passive range. */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/acceptor.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/net.h"
#include "core/procfs.h"
#include "serve/internal.h"

/* In a sanitizer build (make SAN=1) ASan's allocator serves every malloc: glibc's arenas
 * are never set up, and malloc_trim() would read through their NULL top. */
#if defined(__SANITIZE_ADDRESS__)
#define LK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LK_ASAN 1
#endif
#endif

int serve_listen_open(struct serve_server *s, struct sockaddr_storage *failed, char *err, size_t errlen)
{
	/* No SO_REUSEPORT: the kernel then refuses the port to any other socket, another
	 * loopkit's included, and the workers share this one listener instead. */
	s->listen_fd = net_listen_loopback((struct sockaddr *)&s->cfg.addr, s->cfg.addrlen, 4096, &s->twin_fd,
	                                   failed, err, errlen);
	if (s->listen_fd < 0)
		return -1;
	int one = 1;
	setsockopt(s->listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->port = net_local_port(s->listen_fd);
	return 0;
}

/* Refuses a connection over --max-conns in the words of its protocol: FTP's 421 when
 * only FTP is offered, else HTTP's 503 (a client that has not spoken yet cannot be
 * told apart without the lookup this refusal exists to avoid; load that hits the
 * limit is HTTP's far more often). Best effort on a fresh socket: its send buffer is
 * empty, so this cannot block. */
static void refuse_overload(struct serve_server *s, int fd)
{
	const struct lk_error *e = lk_error(LK_E_EMAXCONNS);
	char msg[512];
	int n;
	if (s->http_idx >= 0) {
		char body[200];
		int bl =
		        snprintf(body, sizeof(body), "%d %s: %s\n", e->http, lk_http_reason(e->http), e->msg);
		n = snprintf(msg, sizeof(msg),
		             "HTTP/1.1 %d %s\r\nServer: loopkit/" LOOPKIT_VERSION "\r\n"
		             "X-Content-Type-Options: nosniff\r\nRetry-After: 1\r\nConnection: close\r\n"
		             "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
		             e->http, lk_http_reason(e->http), bl, body);
	} else {
		n = snprintf(msg, sizeof(msg), "%d %s.\r\n", e->ftp, e->msg);
	}
	ssize_t r = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)r;
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* A connection dealt to another worker, on its way there. */
struct handoff {
	struct serve_worker *w;
	int fd;
	struct sockaddr_storage peer;
};

static void handoff_cb(struct loop *l, void *data)
{
	struct handoff *h = data;
	if (h->w->stopping) {
		close(h->fd);
		atomic_fetch_sub(&h->w->srv->nconns, 1);
	} else {
		sniff_accept(h->w, h->fd, &h->peer);
	}
	free(h);
}

/* A burst of connections (hundreds of listings, uploads, slow readers) leaves its
 * buffers freed but held by malloc: in the thread arenas, under whatever was allocated
 * after them, glibc gives nothing back on its own. As the burst ends (each time the
 * connections fall to a quarter of the last count), the heap is trimmed: the server
 * returns to its idle size. Nothing runs while no burst has happened. */
void serve_trim_cb(struct loop *l, struct loop_timer *t)
{
	struct serve_worker *w = t->data;
	struct serve_server *s = w->srv;
	unsigned n = atomic_load(&s->nconns), peak = atomic_load(&s->conn_peak);
	if (n * 4 > peak) {
		if (peak >= SERVE_TRIM_PEAK) /* still in the burst */
			loop_timer_start(l, t, SERVE_TRIM_EVERY_MS);
		return;
	}
	/* Down to a quarter: trim, and follow the rest of the decay (what is freed
	 * after this trim is trimmed at the next step, down to no connection). */
	atomic_store(&s->conn_peak, n);
#ifndef LK_ASAN
	malloc_trim(0);
#endif
	if (n > 0)
		loop_timer_start(l, t, SERVE_TRIM_EVERY_MS);
}

static void note_peak(struct serve_worker *w, unsigned n)
{
	struct serve_server *s = w->srv;
	unsigned peak = atomic_load(&s->conn_peak);
	while (n > peak && !atomic_compare_exchange_weak(&s->conn_peak, &peak, n))
		;
	if (n >= SERVE_TRIM_PEAK && !loop_timer_armed(&w->trim_timer) && !w->stopping)
		loop_timer_start(w->loop, &w->trim_timer, SERVE_TRIM_EVERY_MS);
}

/* The connections w holds: sniffing, and each protocol's (w's thread only). */
static unsigned worker_load(const struct serve_worker *w)
{
	unsigned n = w->nsniff;
	for (int i = 0; i < w->srv->nproto; i++)
		n += w->srv->proto[i]->count(w->ctx[i]);
	return n;
}

static void on_conn(void *arg, int fd, const struct sockaddr_storage *peer)
{
	struct serve_worker *w = arg;
	struct serve_server *s = w->srv;
	unsigned had = atomic_fetch_add(&s->nconns, 1);
	if (had >= s->cfg.max_conns) {
		atomic_fetch_sub(&s->nconns, 1);
		refuse_overload(s, fd);
		return;
	}
	note_peak(w, had + 1);
	/* EPOLLEXCLUSIVE wakes the loops in a fixed order, so the first idle one would
	 * take every connection and a keep-alive load would run on one thread. A worker
	 * that holds more than the others' average plus a quarter of a share (at least
	 * one) deals the connection to the next other worker instead: 8 keep-alive
	 * connections on 2 threads end 4 and 4 or 5 and 3. Only then: a hand-off costs a
	 * wakeup of that thread (dealing every other one cost ab's short connections a
	 * quarter more CPU), and a busy worker is not in epoll_wait, so short connections
	 * spread by themselves. A connection stays on the worker it is given to. */
	int n = atomic_load(&s->nrunning);
	struct serve_worker *t = w;
	if (n > 1) {
		unsigned mine = worker_load(w), others = had > mine ? had - mine : 0;
		unsigned slack = (had + 1) / (SERVE_DEAL_SHARE_PART * (unsigned)n);
		if (slack < 1)
			slack = 1;
		if (mine * (unsigned)(n - 1) > others + (unsigned)(n - 1) * slack) {
			unsigned k = atomic_fetch_add(&s->next_worker, 1) % (unsigned)(n - 1);
			t = s->workers[(int)k < w->id ? (int)k : (int)k + 1];
		}
	}
	struct handoff *h;
	if (t == w || !(h = malloc(sizeof(*h)))) {
		sniff_accept(w, fd, peer);
		return;
	}
	h->w = t;
	h->fd = fd;
	h->peer = *peer;
	if (loop_post(t->loop, handoff_cb, h) < 0) {
		free(h);
		sniff_accept(w, fd, peer);
	}
}

int serve_listen_start(struct serve_worker *w)
{
	/* A small batch per wakeup: with EPOLLEXCLUSIVE the other threads wake for what
	 * is left, so a burst is spread over the workers. */
	if (acceptor_start(&w->acc, w->loop, w->srv->listen_fd, 1, SERVE_ACCEPT_BATCH, on_conn, w) < 0)
		return -1;
	acceptor_share_log(&w->acc, &w->srv->emfile_logged);
	return 0;
}

void serve_listen_stop(struct serve_worker *w)
{
	acceptor_stop(&w->acc);
}

/* The abstract socket name that stands for "this passive port is loopkit's". */
static socklen_t pasv_name(unsigned port, struct sockaddr_un *un)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	int n = snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "loopkit-ftp-pasv-%u", port);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int serve_pasv_span_check(unsigned lo, unsigned hi, char *err, size_t errlen)
{
	if (lo && hi - lo + 1 > SERVE_PASV_MAX_PORTS) {
		snprintf(err, errlen, "--pasv-ports %u-%u spans %u ports; at most %d", lo, hi, hi - lo + 1,
		         SERVE_PASV_MAX_PORTS);
		return -1;
	}
	return 0;
}

int serve_pasv_lock(struct serve_server *s, char *err, size_t errlen)
{
	unsigned lo = s->cfg.ftp.pasv_lo, hi = s->cfg.ftp.pasv_hi;
	if (!lo)
		return 0;
	if (serve_pasv_span_check(lo, hi, err, errlen) < 0)
		return -1;
	for (unsigned p = lo; p <= hi; p++) {
		char who[256];
		/* A listener there belongs to someone else: say who. */
		if (procfs_port_holder_text((uint16_t)p, who, sizeof(who))) {
			snprintf(err, errlen, "--pasv-ports: port %u is held by %s; choose another range", p,
			         who);
			return -1;
		}
		/* Two loopkits must not share a range either, idle or not: each port is
		 * owned through an abstract socket only one process can bind. */
		struct sockaddr_un un;
		socklen_t ul = pasv_name(p, &un);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&un, ul) < 0 || listen(fd, 1) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			if (e == EADDRINUSE) {
				char holder[256] = "";
				procfs_unix_holder_text(un.sun_path + 1, holder, sizeof(holder));
				snprintf(err, errlen,
				         "--pasv-ports: port %u is already in the passive range of %s; "
				         "choose another range",
				         p, holder[0] ? holder : "another loopkit");
			} else {
				snprintf(err, errlen, "--pasv-ports: cannot reserve port %u: %s", p,
				         strerror(e));
			}
			return -1;
		}
		s->pasv_locks[s->npasv_locks++] = fd;
	}
	return 0;
}
