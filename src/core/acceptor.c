/* acceptor.c - the accept loop every listening verb shares. */
#include "core/acceptor.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"

static void accept_cb(struct loop *l, struct loop_io *io, unsigned events);

static void retry_cb(struct loop *l, struct loop_timer *t)
{
	struct acceptor *a = t->data;
	if (a->io.fd >= 0 || a->fd < 0)
		return;
	if (loop_io_start(l, &a->io, a->fd, a->mask, accept_cb, a) < 0)
		loop_timer_start(l, t, ACCEPTOR_RETRY_MS);
}

static void accept_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct acceptor *a = io->data;
	for (int i = 0; i < a->batch && a->io.fd >= 0; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Level-triggered epoll would report the listener again at once and
				 * spin: stop watching it and retry on a timer. */
				int said = a->shared_logged ? atomic_exchange(a->shared_logged, 1)
				                            : a->emfile_logged;
				if (!said)
					log_msg("out of file descriptors (%s): pausing accept; raise the "
					        "limit with "
					        "ulimit -n",
					        strerror(errno));
				a->emfile_logged = 1;
				loop_io_stop(l, &a->io);
				loop_timer_start(l, &a->retry, ACCEPTOR_RETRY_MS);
			}
			return;
		}
		if (a->emfile_logged && a->shared_logged)
			atomic_store(a->shared_logged, 0);
		a->emfile_logged = 0;
		a->on_conn(a->arg, fd, &peer);
	}
}

int acceptor_start(struct acceptor *a, struct loop *l, int fd, int exclusive, int batch,
                   void (*on_conn)(void *arg, int fd, const struct sockaddr_storage *peer), void *arg)
{
	memset(a, 0, sizeof(*a));
	a->loop = l;
	a->fd = fd;
	a->batch = batch > 0 ? batch : 1;
	a->mask = LOOP_READ | (exclusive ? LOOP_EXCLUSIVE : 0);
	a->on_conn = on_conn;
	a->arg = arg;
	a->io.fd = -1;
	loop_timer_init(&a->retry, retry_cb, a);
	return loop_io_start(l, &a->io, fd, a->mask, accept_cb, a);
}

void acceptor_share_log(struct acceptor *a, atomic_int *logged)
{
	a->shared_logged = logged;
}

void acceptor_stop(struct acceptor *a)
{
	if (!a->loop)
		return;
	loop_io_stop(a->loop, &a->io);
	loop_timer_stop(a->loop, &a->retry);
	a->fd = -1;
}
