/* direct.h - inside src/isolate: --direct, the host listener handed to the server inside. */
#ifndef LOOPKIT_ISOLATE_DIRECT_H
#define LOOPKIT_ISOLATE_DIRECT_H

#include "isolate/isolate.h"

/* In pid 1, before CMD starts: installs the filter that sends every bind(2) inside to
 * loopkit, and sends its listener (or the errno of the failure) over sock, which it
 * closes. System calls only. */
void direct_child(int sock);

/* In loopkit: the listener pid 1 sent over sock (closed here), with the buffers for its
 * notifications made in iso. Returns it, or -1 with errno (the filter could not be
 * installed: the forwards relay). */
int direct_receive(struct isolate *iso, int sock);

/* The signal that ends the bind thread's wait in an ioctl (blocked in every other thread). */
#define DIRECT_SIG (SIGRTMIN + 3)

/* Starts the thread that answers the binds of listener nfd (owned from now on), in the
 * calling thread's network namespace (the isolate's). Returns 0, or -1 with errno. */
int direct_start(struct isolate *iso, int nfd);

/* Ends the thread (waiting for it) and closes the listener: before the forwards close. */
void direct_stop(struct isolate *iso);

/* Defined by run.c: a socket in the host's namespace (from the helper thread), or -1
 * with errno; the acceptor callback of a forward's listener inside (--direct), whose
 * connections are relayed to the forward's host end; and, in the loop's thread, a
 * forward's stopped acceptors (on the host listener: host, on the one inside: inner)
 * started again where they should run (not paused, CMD running, the host listener not
 * handed over). */
int isolate_host_socket(struct isolate *iso, int family);
void isolate_on_inner_conn(void *arg, int fd, const struct sockaddr_storage *peer);
void isolate_forward_resume(struct isolate_forward *f, int host, int inner);
/* Closes *fd when open, and makes it -1. */
void isolate_close_fd(int *fd);

#endif
