/* net.h - socket helpers: address parsing, loopback tests, listeners. */
#ifndef LOOPKIT_CORE_NET_H
#define LOOPKIT_CORE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* loopkit's home port: in IANA's dynamic range, outside Linux's default ephemeral one. */
#define NET_HOME_PORT 62893

/* The receive buffer of a relay's sockets whose peer is on loopback (proxy pairs,
 * isolate's forwards): SO_RCVBUF, which the kernel doubles and then no longer grows.
 * Loopback's round trip is microseconds, so a relay's read or two is all the window a
 * peer needs. Grown by the kernel as a relay drains hundreds of KiB a read, the buffers
 * of 250 pairs whose clients stopped reading held 340 MB, took the machine past
 * tcp_mem's pressure mark, and the kernel's drops then stalled pairs for seconds. */
#define NET_RELAY_RCVBUF (256 * 1024)
/* Sets it on fd, best effort; before connect(2) or listen(2), so the window scale the
 * handshake sets fits it. */
void net_relay_rcvbuf(int fd);
/* Makes the close of fd send a reset, not an orderly end (SO_LINGER 0). */
void net_reset_on_close(int fd);

/* Parses a numeric host ("127.0.0.1", "::1", "[::1]") or "localhost" (127.0.0.1)
 * with port into *ss. Returns 0, or -1 when host is not an address. */
int net_parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* True for 127.0.0.0/8, ::1 and v4-mapped 127.0.0.0/8. */
int net_is_loopback(const struct sockaddr *sa);
/* sa is exactly 127.0.0.1 or ::1: the addresses whose twin a loopback listener holds. */
int net_is_loopback_one(const struct sockaddr *sa);
/* The one rule for targets (scan, bench, ping, proxy upstreams): loopback only unless
 * --allow-remote. Returns 0 when sa is loopback or allow_remote is set; else -1 with err
 * holding the one message: "WHAT is not a loopback address; ..." (what: the target as
 * the user gave it, e.g. "10.0.0.1" or "db.local (10.0.0.1)"). */
int net_loopback_only(const struct sockaddr *sa, int allow_remote, const char *what, char *err,
                      size_t errlen);
/* True for 0.0.0.0 and ::. */
int net_is_wildcard(const struct sockaddr *sa);

/* Creates a non-blocking, close-on-exec listener bound to sa. With reuseport sets
 * SO_REUSEPORT. Returns the fd, or -1 with errno kept and "bind 127.0.0.1:80: why" in err. */
int net_listen(const struct sockaddr *sa, socklen_t len, int backlog, int reuseport, char *err,
               size_t errlen);

/* Could a listener bind to sa now? Binds once as net_listen does (SO_REUSEADDR; IPv6
 * only for an IPv6 address), without listening, and closes at once. Returns 0 or the
 * bind's errno (EADDRINUSE: something holds it, EACCES: a privileged port, ...). */
int net_try_bind(const struct sockaddr *sa, socklen_t len);
/* net_try_bind of what net_listen_loopback binds: sa, and for 127.0.0.1 or ::1 its twin
 * too (without SO_REUSEADDR, as held). Returns 0 or the errno, with *failed the address
 * that could not be bound. */
int net_try_listen_loopback(const struct sockaddr *sa, socklen_t len, struct sockaddr_storage *failed);

/* A listener on sa, as net_listen, that when sa is 127.0.0.1 or ::1 also holds the
 * other one's same port (*twin: bound, not listening, so a connection there is refused
 * and the client tries the next address of "localhost"). Without it another user could
 * listen on [::1]:PORT and take the browsers that try ::1 first for localhost:PORT,
 * with the credentials and uploads they send. Port 0 picks a port free on both (a few
 * tries). *twin is -1 when sa is another address or the machine has no such loopback
 * address. Returns the listener, or -1 with errno and err as net_listen's and *failed
 * the address that could not be bound: sa, or its twin (held by someone else). */
int net_listen_loopback(const struct sockaddr *sa, socklen_t len, int backlog, int *twin,
                        struct sockaddr_storage *failed, char *err, size_t errlen);

/* The local port of a bound socket, or 0. */
uint16_t net_local_port(int fd);
uint16_t net_addr_port(const struct sockaddr *sa);

/* Writes the address without port ("127.0.0.1", "::1") into out; returns out. */
char *net_addr_str(const struct sockaddr *sa, char *out, size_t len);

/* The port of a sockaddr_in or sockaddr_in6 in host order; 0 for others. */
uint16_t net_ss_port(const struct sockaddr_storage *sa);
/* Sets the port of an AF_INET or AF_INET6 address. */
void net_ss_set_port(struct sockaddr_storage *sa, uint16_t port);
/* A v4-mapped IPv6 address (::ffff:127.0.0.1) becomes the IPv4 one, port kept: the
 * address a server binds, and the kernel looks up, for such a socket. Others stay. */
void net_ss_unmap(struct sockaddr_storage *sa);

/* True when a and b are the same IPv4 or IPv6 address and port. */
int net_ss_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* Writes "127.0.0.1:80", "[::1]:80" or "[::ffff:127.0.0.1]:80" into buf (truncated to
 * fit, always terminated when len > 0). Returns buf. */
char *net_ss_text(const struct sockaddr_storage *sa, char *buf, size_t len);

/* Raises the soft limit of open descriptors to the hard one (a server that holds many
 * connections wants them all). Best effort: nothing changes on failure. */
void net_raise_nofile(void);

/* True when s[0..n) is an IPv4 literal or a bracketless IPv6 literal. */
int net_is_ip_literal(const char *s, size_t n);

#endif
