/* relay.h - inside src/isolate: one forwarded connection, a read and a send each way. */
#ifndef LOOPKIT_ISOLATE_RELAY_H
#define LOOPKIT_ISOLATE_RELAY_H

#include <stddef.h>

#include "isolate/isolate.h"

/* One way: bytes from side s to side 1-s; what side 1-s did not take yet waits in the pipe. */
struct relay_dir {
	int pipe[2];
	size_t inpipe; /* bytes in the pipe */
	int eof;       /* side s sent its FIN */
	int shut;      /* ... and it was passed on: side 1-s is shut for writing */
	int grown;     /* the pipe was made ISOLATE_PIPE_BULK big */
	size_t cap;    /* bytes the pipe holds: a read takes no more */
};

struct relay {
	struct isolate *iso;
	struct relay *prev, *next; /* iso->relays */
	int fd[2];                 /* 0: the accepted socket, 1: the one we connected */
	struct loop_io io[2];
	struct relay_dir d[2]; /* d[s]: from side s to the other */
	int inner;             /* the side inside the namespace */
	int connecting;        /* the side whose connect is in progress, or -1 */
	int closed;
	int leaked;
	unsigned long long bytes; /* relayed, both ways */
};

/* Starts relaying between accepted (owned from now on) and connect_fd (a fresh
 * non-blocking socket, owned too), connecting the latter to `to`; inner is the side in
 * the namespace (0 or 1). Counts the relay in iso->nconns. Returns the relay, or NULL
 * when it ended at once (no memory or descriptors, or nobody listens at `to`: then the
 * accepted client sees a reset). */
struct relay *relay_start(struct isolate *iso, int accepted, int connect_fd,
                          const struct sockaddr_storage *to, socklen_t tolen, int inner);

/* Moves what can move now, both ways; ends the relay when both ways are done. */
void relay_pump(struct relay *r);

/* Closes both sockets (reset: the peers see a reset) and the pipes; frees r after the
 * loop's current batch; calls relay_gone. Safe twice. */
void relay_close(struct relay *r, int reset);

/* The loop's callback for both sockets of a relay. */
void relay_io_cb(struct loop *l, struct loop_io *io, unsigned events);

/* Defined by run.c: a relay has ended (resume accepting, finish draining). */
void relay_gone(struct isolate *iso);

#endif
