/* relay.c - one forwarded connection: a read and a send each way (the rest in a pipe), half-closes and
 * resets. */
#include "isolate/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/net.h"

/* Closes fd so that the peer sees a reset, not an orderly end. */
static void close_reset(int fd)
{
	net_reset_on_close(fd);
	close(fd);
}

static void relay_free_cb(struct loop *l, void *data)
{
	(void)l;
	free(data);
}

void relay_close(struct relay *r, int reset)
{
	struct isolate *iso = r->iso;
	if (r->closed)
		return;
	r->closed = 1;
	for (int s = 0; s < 2; s++) {
		loop_io_stop(iso->loop, &r->io[s]);
		if (r->fd[s] >= 0) {
			if (reset)
				close_reset(r->fd[s]);
			else
				close(r->fd[s]);
		}
		for (int k = 0; k < 2; k++)
			if (r->d[s].pipe[k] >= 0)
				close(r->d[s].pipe[k]);
	}
	if (r->prev)
		r->prev->next = r->next;
	else
		iso->relays = r->next;
	if (r->next)
		r->next->prev = r->prev;
	/* the loop may still hold events of this batch for r: free it after the batch */
	if (loop_defer(iso->loop, relay_free_cb, r) < 0)
		r->leaked = 1; /* cannot happen often: a few bytes kept rather than a use after free */
	relay_gone(iso);
}

/* Every relay's reads land here (one event loop uses it; untouched, it costs no memory). */
static char bulk[ISOLATE_READ_LEN];

/* Moves direction d (side s to side 1-s): what the pipe holds goes out first; then a
 * read and a send, again while the reads come full. What side 1-s did not take waits in
 * the pipe, and side s is read only while the pipe is empty, at most what the pipe
 * holds, so the rest always fits and a failed read always means an empty socket. Why a
 * copy and not splice(2) all the way: docs/isolate.md, "How the relay behaves".
 * Returns 0, or -1 when the relay must be reset (an error on either socket). */
static int pump(struct relay *r, int s)
{
	struct relay_dir *d = &r->d[s];
	int t = 1 - s;
	for (int round = 0; round < ISOLATE_PUMP_ROUNDS; round++) {
		if (d->inpipe) {
			ssize_t out = splice(d->pipe[0], NULL, r->fd[t], NULL, d->inpipe,
			                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (out > 0) {
				d->inpipe -= (size_t)out;
				r->bytes += (size_t)out;
				r->iso->bytes += (size_t)out;
			} else if (out < 0 && errno != EAGAIN && errno != EINTR) {
				return -1;
			}
			if (d->inpipe)
				return 0; /* the peer is slow: wait until side t can take more */
		}
		if (d->eof) {
			if (!d->shut) {
				shutdown(r->fd[t], SHUT_WR); /* the half-close goes on */
				d->shut = 1;
			}
			return 0;
		}
		size_t want = sizeof bulk < d->cap ? sizeof bulk : d->cap;
		ssize_t in = read(r->fd[s], bulk, want);
		if (in == 0) {
			d->eof = 1;
			continue;
		}
		if (in < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		ssize_t w = send(r->fd[t], bulk, (size_t)in, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (w < 0)
			w = 0;
		r->bytes += (size_t)w;
		r->iso->bytes += (size_t)w;
		if (w < in) {
			ssize_t k = write(d->pipe[1], bulk + w, (size_t)(in - w));
			if (k != in - w)
				return -1; /* cannot be: the pipe was empty and holds what was read */
			d->inpipe = (size_t)k;
			return 0;
		}
		if ((size_t)in == d->cap && !d->grown) {
			/* a bulk transfer: a bigger pipe lets a read take more */
			d->grown = 1;
			int cap = fcntl(d->pipe[0], F_SETPIPE_SZ, ISOLATE_PIPE_BULK);
			if (cap > 0)
				d->cap = (size_t)cap;
		}
		if ((size_t)in < want)
			return 0; /* the socket is likely empty: epoll says when it is not */
	}
	return 0;
}

/* Watches what each side waits for: readable while its way's pipe is empty, writable
 * while the other way's pipe holds bytes. A side finished both ways is left alone
 * (epoll would report its hang-up forever). */
static int arm(struct relay *r)
{
	for (int s = 0; s < 2; s++) {
		unsigned mask = 0;
		if (r->connecting == s)
			mask = LOOP_WRITE;
		else if (r->connecting < 0)
			mask = (!r->d[s].eof && !r->d[s].inpipe ? LOOP_READ : 0) |
			       (r->d[1 - s].inpipe ? LOOP_WRITE : 0);
		if (r->d[s].eof && r->d[1 - s].shut) {
			loop_io_stop(r->iso->loop, &r->io[s]);
			continue;
		}
		int rc = r->io[s].fd < 0
		                 ? loop_io_start(r->iso->loop, &r->io[s], r->fd[s], mask, relay_io_cb, r)
		                 : loop_io_set(r->iso->loop, &r->io[s], mask);
		if (rc < 0) { /* epoll has no room: a relay nobody watches would hang, end it */
			relay_close(r, 1);
			return -1;
		}
	}
	return 0;
}

/* After pumping: the relay ends when both ways are closed, or (CMD gone) when the way
 * out of the namespace is. */
static void settle(struct relay *r)
{
	if (r->d[0].shut && r->d[1].shut) {
		relay_close(r, 0);
		return;
	}
	if (r->iso->cmd_done && r->d[r->inner].shut) {
		relay_close(r, 0);
		return;
	}
	arm(r);
}

/* Pumps the ways that events on side s concern (both when events is 0). */
static void relay_pump_events(struct relay *r, int s, unsigned events)
{
	int both = !events || (events & LOOP_ERROR);
	if ((both || (events & LOOP_READ)) && pump(r, s) < 0)
		goto reset;
	if ((both || (events & LOOP_WRITE)) && pump(r, 1 - s) < 0)
		goto reset;
	settle(r);
	return;
reset:
	relay_close(r, 1);
}

void relay_pump(struct relay *r)
{
	relay_pump_events(r, 0, 0);
}

/* Side s was reset: what it sent before is still queued, and goes on first, as far as
 * the other side takes it now; then both sides get a reset. (SO_ERROR took the error:
 * the reads after the bytes say EOF, which must not become a FIN.) */
static void reset_after_bytes(struct relay *r, int s)
{
	if (!r->d[s].eof) {
		r->d[s].shut = 1;
		pump(r, s);
	}
	if (!r->closed)
		relay_close(r, 1);
}

void relay_io_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct relay *r = io->data;
	int s = io == &r->io[0] ? 0 : 1;
	(void)l;
	if (r->closed)
		return;
	if (r->connecting == s) {
		int e = 0;
		socklen_t len = sizeof e;
		if (getsockopt(r->fd[s], SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			e = errno;
		if (e == ECONNRESET) { /* it accepted, sent and reset before this event */
			r->connecting = -1;
			reset_after_bytes(r, s);
			return;
		}
		if (e) {
			relay_close(r, 1); /* refused inside: the client sees a reset */
			return;
		}
		r->connecting = -1;
		arm(r);
		return;
	}
	if (events & LOOP_ERROR) {
		int e = 0;
		socklen_t len = sizeof e;
		getsockopt(r->fd[s], SOL_SOCKET, SO_ERROR, &e, &len);
		if (e) {
			reset_after_bytes(r, s);
			return;
		}
	}
	relay_pump_events(r, s, events);
}

struct relay *relay_start(struct isolate *iso, int accepted, int connect_fd,
                          const struct sockaddr_storage *to, socklen_t tolen, int inner)
{
	struct relay *r = calloc(1, sizeof *r);
	if (!r)
		goto fail;
	r->iso = iso;
	r->fd[0] = accepted;
	r->fd[1] = connect_fd;
	r->inner = inner;
	r->connecting = -1;
	r->io[0].fd = r->io[1].fd = -1;
	for (int s = 0; s < 2; s++)
		r->d[s].pipe[0] = r->d[s].pipe[1] = -1;
	for (int s = 0; s < 2; s++) {
		if (pipe2(r->d[s].pipe, O_NONBLOCK | O_CLOEXEC) < 0)
			goto fail_free;
		int cap = fcntl(r->d[s].pipe[0], F_GETPIPE_SZ);
		r->d[s].cap = cap > 0 ? (size_t)cap : 4096;
	}
	r->next = iso->relays;
	if (r->next)
		r->next->prev = r;
	iso->relays = r;
	iso->nconns++;
	net_relay_rcvbuf(accepted); /* both peers are on loopback */
	net_relay_rcvbuf(connect_fd);
	if (connect(connect_fd, (const struct sockaddr *)to, tolen) < 0) {
		if (errno != EINPROGRESS) {
			relay_close(r, 1); /* nobody listens there: the client sees a reset */
			return NULL;
		}
		r->connecting = 1;
	}
	return arm(r) < 0 ? NULL : r;
fail_free:
	for (int s = 0; s < 2; s++)
		for (int k = 0; k < 2; k++)
			if (r->d[s].pipe[k] >= 0)
				close(r->d[s].pipe[k]);
	free(r);
fail:
	close_reset(accepted);
	close(connect_fd);
	return NULL;
}
