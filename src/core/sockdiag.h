/* sockdiag.h - the one NETLINK_SOCK_DIAG client: TCP/UDP socket dumps and exact lookups. */
#ifndef LOOPKIT_CORE_SOCKDIAG_H
#define LOOPKIT_CORE_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* State masks for sockdiag_list: SOCKDIAG_STATE(TCP_LISTEN) | SOCKDIAG_STATE(TCP_ESTABLISHED).
 * The states are the TCP_* values of <netinet/tcp.h>; UDP sockets are TCP_CLOSE when
 * only bound and TCP_ESTABLISHED when connected. */
#define SOCKDIAG_STATE(s)  (UINT32_C(1) << (s))
#define SOCKDIAG_STATE_ALL UINT32_C(0xffffffff)
/* linux/tcp_states.h TCP_BOUND_INACTIVE (6.9): a TCP socket bound without listening */
#define SOCKDIAG_TCP_BOUND_INACTIVE 13

/* One socket as the kernel reports it. */
struct sockdiag_sock {
	int family;                     /* AF_INET or AF_INET6 (v4-mapped stay AF_INET6) */
	int proto;                      /* IPPROTO_TCP or IPPROTO_UDP */
	int state;                      /* TCP_LISTEN etc., see DIAG_STATE */
	struct sockaddr_storage local;  /* sockaddr_in or sockaddr_in6, port set */
	struct sockaddr_storage remote; /* unspecified address and port 0 when unconnected */
	uint32_t inode;                 /* socket inode, as fstat's st_ino; 0 for time-wait */
	uint32_t uid;                   /* socket owner uid */
	uint32_t ifindex;               /* bound device, 0 when none */
	uint32_t rqueue;                /* TCP_LISTEN: accept queue length; else bytes unread */
	uint32_t wqueue;                /* TCP_LISTEN: backlog limit; else bytes unsent */
	int v6only;                     /* AF_INET6: IPV6_V6ONLY is set (0/1); -1 unknown */
};

/* Lists the sockets of proto (IPPROTO_TCP, IPPROTO_UDP, or 0 for both) in the
 * families AF_INET and AF_INET6 whose state is in state_mask (DIAG_STATE bits; 0 is
 * taken as SOCKDIAG_STATE_ALL). The kernel does the state filtering. Works without
 * privileges. Sockets come in the kernel's order.
 * On success returns 0 and stores a malloc'd array the caller frees in *out (NULL
 * when *n is 0). On error returns -1 with *out NULL, *n 0, errno set and err filled
 * with "what failed: why" (err may be NULL). */
int sockdiag_list(int proto, uint32_t state_mask, struct sockdiag_sock **out, size_t *n, char *err,
                  size_t errlen);

/* Finds the socket at the other end of a TCP connection we hold (our address local,
 * theirs peer): it exists on this machine when the peer is on loopback. One exact
 * request, no dump; the reply is checked for its sequence number and for NLMSG_ERROR.
 * Returns 0 with *out filled (out->inode, out->uid, ...), or -1 with errno (ENOENT:
 * no such socket here, i.e. the peer is not local or has gone). */
int sockdiag_peer(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                  struct sockdiag_sock *out);

/* After a FIN on the TCP connection fd: did the peer only shut its sending side (and
 * may wait for an answer), or close its socket (nothing can reach it any more)? On
 * loopback its socket is on this machine, and a process holds it (an inode) only in the
 * first case. Returns 1 when it is found held; 0 when it is an orphan or gone, when the
 * peer is not on this machine, or when sock_diag cannot answer. */
int sockdiag_peer_held(int fd);

/* Finds the TCP listener that a connection to addr (address and port; a v4-mapped
 * IPv6 address is looked up as IPv4) would reach on this machine, a wildcard listener
 * included: the kernel's own lookup, one exact request. Returns 0 with *out filled
 * (out->uid owns it, out->inode names it), or -1 with errno (ENOENT: nothing listens
 * there; another value: sock_diag itself failed). */
int sockdiag_listener(const struct sockaddr_storage *addr, struct sockdiag_sock *out);

/* Returns a static name for a state as ss(8) prints it: "LISTEN", "ESTAB",
 * "TIME-WAIT", "UNCONN" (TCP_CLOSE, an unconnected UDP socket), ...; "UNKNOWN" for
 * values out of range. */
const char *sockdiag_state_name(int state);

#endif
