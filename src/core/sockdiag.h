/* sock.h - list TCP/UDP sockets via NETLINK_SOCK_DIAG and find the processes that hold them. */
#ifndef LOOPKIT_DIAG_SOCK_H
#define LOOPKIT_DIAG_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define DIAG_COMM_MAX    64  /* diag_owner.comm, NUL included (the kernel keeps 16) */
#define DIAG_USER_MAX    64  /* diag_owner.user, NUL included */
#define DIAG_CMDLINE_MAX 256 /* diag_owner.cmdline, NUL included; longer ones are cut */

/* State masks for diag_sock_list: DIAG_STATE(TCP_LISTEN) | DIAG_STATE(TCP_ESTABLISHED).
 * The states are the TCP_* values of <netinet/tcp.h>; UDP sockets are TCP_CLOSE when
 * only bound and TCP_ESTABLISHED when connected. */
#define DIAG_STATE(s)  (UINT32_C(1) << (s))
#define DIAG_STATE_ALL UINT32_C(0xffffffff)

/* One socket as the kernel reports it. */
struct diag_sock {
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

/* A process holding a socket. pid 0 means the process could not be read (another
 * user's process without privileges, or it exited): then only uid and user are set,
 * from the socket's owner. */
struct diag_owner {
	pid_t pid;
	uint32_t uid;                   /* effective uid of the process */
	char comm[DIAG_COMM_MAX];       /* /proc/PID/comm; control bytes shown as '?' */
	char user[DIAG_USER_MAX];       /* user name, or the uid in decimal */
	char cmdline[DIAG_CMDLINE_MAX]; /* arguments joined by spaces, cut to fit */
};

/* Which process holds which socket inode: the result of one scan of /proc.
 * A socket may have several owners (fork, SCM_RIGHTS), a process many sockets. */
struct diag_owner_link {
	uint32_t inode;
	pid_t pid;
};

struct diag_owner_map {
	struct diag_owner *owners; /* distinct processes, ascending pid */
	size_t nowners;
	struct diag_owner_link *links; /* ascending inode, then pid */
	size_t nlinks;
};

/* Lists the sockets of proto (IPPROTO_TCP, IPPROTO_UDP, or 0 for both) in the
 * families AF_INET and AF_INET6 whose state is in state_mask (DIAG_STATE bits; 0 is
 * taken as DIAG_STATE_ALL). The kernel does the state filtering. Works without
 * privileges. Sockets come in the kernel's order.
 * On success returns 0 and stores a malloc'd array the caller frees in *out (NULL
 * when *n is 0). On error returns -1 with *out NULL, *n 0, errno set and err filled
 * with "what failed: why" (err may be NULL). */
int diag_sock_list(int proto, uint32_t state_mask, struct diag_sock **out, size_t *n, char *err,
                   size_t errlen);

/* Scans /proc once and records, for each socket inode in inodes[0..n), the processes
 * holding it and their comm, user and cmdline. inodes NULL records every socket found;
 * inodes need not be sorted or unique; inode 0 is ignored. Processes it may not read
 * are skipped silently. On success returns 0; the map owns its arrays, release them
 * with diag_owner_map_free. On error (no /proc, no memory) returns -1 with the map
 * empty, errno set and err filled (err may be NULL). */
int diag_owner_map_build(struct diag_owner_map *map, const uint32_t *inodes, size_t n, char *err,
                         size_t errlen);

/* Stores in out[0..max) pointers into map to the owners of inode, ascending pid.
 * Returns how many were stored (0 when the owner is unknown). */
size_t diag_owner_map_find(const struct diag_owner_map *map, uint32_t inode, const struct diag_owner **out,
                           size_t max);

/* Frees the map's arrays and empties it; safe on an empty or already freed map. */
void diag_owner_map_free(struct diag_owner_map *map);

/* Finds the process holding the socket inode with one scan of /proc; when several
 * do, the lowest pid (a forking server's parent). Returns 1 and fills *out when found,
 * 0 with *out zeroed (pid 0) when unknown, -1 with errno set on error. */
int diag_owner_find(uint32_t inode, struct diag_owner *out);

/* Finds who holds local port `port` in any address and family: processes with a
 * listening TCP socket (proto IPPROTO_TCP), any UDP socket bound to it (IPPROTO_UDP),
 * or either (0). Each process is reported once, ascending pid; sockets whose process
 * cannot be read give one pid-0 entry per socket uid, after the known ones. Stores at
 * most max entries in out and returns how many were stored: 0 when nobody holds the
 * port, -1 with errno set on error. */
int diag_port_holders(int proto, uint16_t port, struct diag_owner *out, size_t max);

/* Writes the known owners of owners[0..n) (pid 0 skipped) as "nginx (pid 812), nginx
 * (pid 813)" into buf. Only whole entries are written; when some do not fit ", ..."
 * ends the text if it fits. Returns the text's length; "" (0) when none is known. */
size_t diag_owner_text(const struct diag_owner *owners, size_t n, char *buf, size_t len);

/* Writes who listens on TCP port `port` in diag_owner_text's form, for messages like
 * "port 62893 is held by nginx (pid 812)". Returns the length; "" (0) when nobody
 * holds the port, the holder cannot be read, or on error. */
size_t diag_port_holder_text(uint16_t port, char *buf, size_t len);

/* Returns the port of a sockaddr_in or sockaddr_in6 in host order; 0 for others. */
uint16_t diag_addr_port(const struct sockaddr_storage *sa);

/* Writes "127.0.0.1:80", "[::1]:80" or "[::ffff:127.0.0.1]:80" into buf (truncated
 * to fit, always terminated when len > 0). Returns buf. */
char *diag_addr_text(const struct sockaddr_storage *sa, char *buf, size_t len);

/* Returns a static name for a state as ss(8) prints it: "LISTEN", "ESTAB",
 * "TIME-WAIT", "UNCONN" (TCP_CLOSE, an unconnected UDP socket), ...; "UNKNOWN" for
 * values out of range. */
const char *diag_state_name(int state);

#endif
