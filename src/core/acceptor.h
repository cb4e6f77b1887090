/* acceptor.h - accepting connections on a loop: batches, EMFILE pauses, one callback. */
#ifndef LOOPKIT_CORE_ACCEPTOR_H
#define LOOPKIT_CORE_ACCEPTOR_H

#include <stdatomic.h>
#include <sys/socket.h>

#include "core/loop.h"

#define ACCEPTOR_RETRY_MS 100 /* after EMFILE, accepting resumes this much later */

/* A listening socket watched by one loop. Several loops may watch one listener with
 * exclusive set (EPOLLEXCLUSIVE: one of them wakes per connection). */
struct acceptor {
	struct loop *loop;
	int fd;        /* the listener (not owned) */
	int batch;     /* connections taken per wakeup */
	unsigned mask; /* LOOP_READ, plus LOOP_EXCLUSIVE */
	struct loop_io io;
	struct loop_timer retry;
	int emfile_logged;         /* said once per episode of descriptor exhaustion */
	atomic_int *shared_logged; /* the same, shared by the loops of one listener (or NULL) */
	/* A new connection: fd is non-blocking and close-on-exec, and the callback owns
	 * it. */
	void (*on_conn)(void *arg, int fd, const struct sockaddr_storage *peer);
	void *arg;
};

/* Starts accepting on fd. Returns 0 or -1 with errno. */
int acceptor_start(struct acceptor *a, struct loop *l, int fd, int exclusive, int batch,
                   void (*on_conn)(void *arg, int fd, const struct sockaddr_storage *peer), void *arg);
/* Several loops watching one listener say "out of file descriptors" once between
 * them: give each acceptor the same flag (after acceptor_start). */
void acceptor_share_log(struct acceptor *a, atomic_int *logged);
/* Stops accepting (the listener stays open); safe twice. */
void acceptor_stop(struct acceptor *a);

#endif
