/* net.c - socket helpers in the style of Redis's anet: fd or -1, with a reason. */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int net_parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	char tmp[64];
	size_t n = strlen(host);
	memset(ss, 0, sizeof(*ss));
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return -1;
		memcpy(tmp, host + 1, n - 2);
		tmp[n - 2] = 0;
		host = tmp;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

int net_loopback_only(const struct sockaddr *sa, int allow_remote, const char *what, char *err, size_t errlen)
{
	if (allow_remote || net_is_loopback(sa))
		return 0;
	snprintf(err, errlen,
	         "%.200s is not a loopback address (127.0.0.0/8, ::1); add --allow-remote to reach "
	         "another machine (only one you are allowed to probe)",
	         what);
	return -1;
}

int net_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return 0;
}

int net_is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

uint16_t net_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

char *net_addr_str(const struct sockaddr *sa, char *out, size_t len)
{
	const void *a = sa->sa_family == AF_INET
	                        ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
	                        : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (!inet_ntop(sa->sa_family, a, out, (socklen_t)len))
		snprintf(out, len, "?");
	return out;
}

/* "bind 127.0.0.1:80: why" into err; errno is left as e. */
static void bind_error(char *err, size_t errlen, const char *what, const struct sockaddr *sa, int e)
{
	char host[64];
	net_addr_str(sa, host, sizeof(host));
	snprintf(err, errlen, "%s %s%s%s:%u: %s", what, sa->sa_family == AF_INET6 ? "[" : "", host,
	         sa->sa_family == AF_INET6 ? "]" : "", net_addr_port(sa), strerror(e));
	errno = e;
}

/* A TCP socket set up as every listener here is: SO_REUSEADDR, and IPv6 only for an
 * IPv6 address. Returns the fd or -1. */
static int server_socket(int family)
{
	int one = 1;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	return fd;
}

int net_try_bind(const struct sockaddr *sa, socklen_t len)
{
	int fd = server_socket(sa->sa_family);
	if (fd < 0)
		return errno;
	int e = bind(fd, sa, len) < 0 ? errno : 0;
	close(fd);
	return e;
}

int net_listen(const struct sockaddr *sa, socklen_t len, int backlog, int reuseport, char *err, size_t errlen)
{
	int one = 1;
	const char *what = "bind";
	int fd = server_socket(sa->sa_family);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		what = "SO_REUSEPORT on";
		goto fail;
	}
	if (bind(fd, sa, len) < 0)
		goto fail;
	if (listen(fd, backlog) < 0) {
		what = "listen on";
		goto fail;
	}
	return fd;
fail:;
	int e = errno;
	bind_error(err, errlen, what, sa, e);
	close(fd);
	return -1;
}

/* Binds a socket to the loopback address of the other family at port, into tw; no
 * SO_REUSEADDR, so that no one else can bind it while it is held. */
static int hold_twin(int family, uint16_t port, struct sockaddr_storage *tw)
{
	socklen_t len;
	int one = 1;
	net_parse_addr(family == AF_INET ? "::1" : "127.0.0.1", port, tw, &len);
	int fd = socket(tw->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (tw->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)tw, len) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int net_try_listen_loopback(const struct sockaddr *sa, socklen_t len, struct sockaddr_storage *failed)
{
	memset(failed, 0, sizeof *failed);
	memcpy(failed, sa, len);
	int e = net_try_bind(sa, len);
	if (e || !net_is_loopback_one(sa))
		return e;
	uint16_t port = net_ss_port((const struct sockaddr_storage *)failed);
	int tw = hold_twin(sa->sa_family, port, failed);
	if (tw < 0)
		return errno == EADDRNOTAVAIL ? 0 : errno; /* no such loopback here: none to hold */
	close(tw);
	return 0;
}

int net_is_loopback_one(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

int net_listen_loopback(const struct sockaddr *sa, socklen_t len, int backlog, int *twin,
                        struct sockaddr_storage *failed, char *err, size_t errlen)
{
	*twin = -1;
	for (int tries = 0;; tries++) {
		int fd = net_listen(sa, len, backlog, 0, err, errlen);
		if (fd < 0) {
			memcpy(failed, sa, len);
			return -1;
		}
		if (!net_is_loopback_one(sa))
			return fd;
		uint16_t port = net_local_port(fd);
		*twin = hold_twin(sa->sa_family, port, failed);
		if (*twin >= 0)
			return fd;
		int e = errno;
		if (e != EADDRINUSE) /* no such address here (IPv6 off): nothing to hold */
			return fd;
		close(fd);
		if (net_addr_port(sa) == 0 && tries < 8) /* the kernel's pick: pick again */
			continue;
		bind_error(err, errlen, "bind", (struct sockaddr *)failed, e);
		return -1;
	}
}

uint16_t net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return net_addr_port((struct sockaddr *)&ss);
}

int net_is_ip_literal(const char *s, size_t n)
{
	char tmp[64];
	unsigned char a[16];
	if (n == 0 || n >= sizeof(tmp) || memchr(s, 0, n))
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	return inet_pton(AF_INET, tmp, a) == 1 || inet_pton(AF_INET6, tmp, a) == 1;
}

uint16_t net_ss_port(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void net_ss_unmap(struct sockaddr_storage *sa)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
	if (sa->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		return;
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = a6->sin6_port};
	memcpy(&v4.sin_addr, a6->sin6_addr.s6_addr + 12, 4);
	memset(sa, 0, sizeof *sa);
	memcpy(sa, &v4, sizeof v4);
}

void net_ss_set_port(struct sockaddr_storage *sa, uint16_t port)
{
	if (sa->ss_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

int net_ss_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family || net_ss_port(a) != net_ss_port(b))
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return a->ss_family == AF_INET6 && !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	                                           &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

char *net_ss_text(const struct sockaddr_storage *sa, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	char host[INET6_ADDRSTRLEN];

	if (len == 0)
		return buf;
	if (sa->ss_family == AF_INET && inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host))
		snprintf(buf, len, "%s:%u", host, net_ss_port(sa));
	else if (sa->ss_family == AF_INET6 && inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host))
		snprintf(buf, len, "[%s]:%u", host, net_ss_port(sa));
	else
		snprintf(buf, len, "?");
	return buf;
}

void net_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

void net_relay_rcvbuf(int fd)
{
	int v = NET_RELAY_RCVBUF;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

void net_reset_on_close(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}
