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

/* The loop's callback for the listener: answers one bind. */
void direct_cb(struct loop *l, struct loop_io *io, unsigned events);

/* Defined by run.c: a socket in the host's namespace (from the helper thread), or -1
 * with errno; and the acceptor callback of a forward's listener inside (--direct), whose
 * connections are relayed to the forward's host end. */
int isolate_host_socket(struct isolate *iso, int family);
void isolate_on_inner_conn(void *arg, int fd, const struct sockaddr_storage *peer);

#endif
