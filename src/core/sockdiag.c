/* sockdiag.c - the one NETLINK_SOCK_DIAG client: socket dumps and exact lookups. */
#include "core/sockdiag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/net.h"
#include "core/vec.h"

/* A dump reply is at most 32 KiB per datagram (the kernel's netlink dump ceiling),
 * so a buffer of that size never truncates. */
#define DIAG_NL_BUF 32768

struct diag_sockvec {
	struct sockdiag_sock *v;
	size_t n, cap;
};

/* ---- netlink ---- */

static void diag_fill_addr(struct sockaddr_storage *ss, int family, const __be32 *addr, __be16 port,
                           uint32_t ifindex)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = port;
		memcpy(&sin->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		memcpy(&sin6->sin6_addr, addr, 16);
		if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
			sin6->sin6_scope_id = ifindex;
	}
}

/* Appends the socket described by one SOCK_DIAG_BY_FAMILY message. */
static int diag_parse_msg(const struct nlmsghdr *nlh, int proto, struct diag_sockvec *vec)
{
	const struct inet_diag_msg *m = NLMSG_DATA(nlh);
	const struct rtattr *rta;
	struct sockdiag_sock *s;
	int alen;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof *m))
		return 0; /* malformed: skip rather than fail the whole listing */
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return 0;
	if (vec_grow((void **)&vec->v, &vec->cap, vec->n + 1, sizeof *vec->v) < 0)
		return -1;
	s = &vec->v[vec->n++];
	memset(s, 0, sizeof *s);
	s->family = m->idiag_family;
	s->proto = proto;
	s->state = m->idiag_state;
	diag_fill_addr(&s->local, s->family, m->id.idiag_src, m->id.idiag_sport, m->id.idiag_if);
	diag_fill_addr(&s->remote, s->family, m->id.idiag_dst, m->id.idiag_dport, m->id.idiag_if);
	s->inode = m->idiag_inode;
	s->uid = m->idiag_uid;
	s->ifindex = m->id.idiag_if;
	s->rqueue = m->idiag_rqueue;
	s->wqueue = m->idiag_wqueue;
	s->v6only = -1;

	rta = (const struct rtattr *)((const char *)m + NLMSG_ALIGN(sizeof *m));
	alen = (int)(nlh->nlmsg_len - NLMSG_LENGTH(sizeof *m));
	for (; RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
		/* The kernel sends INET_DIAG_SKV6ONLY for every AF_INET6 socket. */
		if (rta->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(rta) >= 1)
			s->v6only = *(const uint8_t *)RTA_DATA(rta) != 0;
	}
	return 0;
}

/* Runs one request on fd and appends the sockets of its reply to vec: a dump of
 * (family, proto, states) when id is NULL, else the exact lookup of the socket id.
 * buf is buflen bytes of scratch (a dump needs DIAG_NL_BUF). Returns 0, or -1 with err filled (an exact
 * lookup of a socket that does not exist fails with ENOENT). */
static int diag_request(int fd, uint32_t seq, int family, int proto, uint32_t states,
                        const struct inet_diag_sockid *id, struct diag_sockvec *vec, char *buf, size_t buflen,
                        char *err, size_t errlen)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};

	memset(&msg, 0, sizeof msg);
	msg.nlh.nlmsg_len = sizeof msg;
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | (id ? 0 : NLM_F_DUMP);
	msg.nlh.nlmsg_seq = seq;
	msg.req.sdiag_family = (uint8_t)family;
	msg.req.sdiag_protocol = (uint8_t)proto;
	msg.req.idiag_states = states;
	if (id)
		msg.req.id = *id;

	while (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		if (errno != EINTR) {
			vec_seterr(err, errlen, "sock_diag send", errno);
			return -1;
		}
	}

	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = {.iov_base = buf, .iov_len = buflen};
		struct msghdr mh = {
		        .msg_name = &from,
		        .msg_namelen = sizeof from,
		        .msg_iov = &iov,
		        .msg_iovlen = 1,
		};
		const struct nlmsghdr *nlh;
		ssize_t r;
		size_t off;

		r = recvmsg(fd, &mh, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			vec_seterr(err, errlen, "sock_diag receive", errno);
			return -1;
		}
		if (r == 0) {
			vec_seterr(err, errlen, "sock_diag receive", EPROTO);
			return -1;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			vec_seterr(err, errlen, "sock_diag receive", EMSGSIZE);
			return -1;
		}
		if (from.nl_pid != 0)
			continue; /* not from the kernel */

		/* NLMSG_OK/NEXT by hand, in size_t, so a bad length cannot wrap. */
		for (off = 0; (size_t)r - off >= sizeof *nlh; off += NLMSG_ALIGN(nlh->nlmsg_len)) {
			nlh = (const struct nlmsghdr *)(buf + off);
			if (nlh->nlmsg_len < sizeof *nlh || nlh->nlmsg_len > (size_t)r - off)
				break; /* malformed: drop the rest of this datagram */
			if (nlh->nlmsg_seq != seq)
				continue; /* left over from an earlier request */
			if (nlh->nlmsg_type == NLMSG_DONE) {
				/* Since Linux 4.x DONE carries the dump's final status. */
				if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
					int status;

					memcpy(&status, NLMSG_DATA(nlh), sizeof status);
					if (status < 0) {
						vec_seterr(err, errlen, "sock_diag dump", -status);
						return -1;
					}
				}
				return 0;
			}
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);

				if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof *e)) {
					vec_seterr(err, errlen, "sock_diag reply", EPROTO);
					return -1;
				}
				if (e->error == 0)
					continue; /* an ack */
				/* No handler for this family or protocol (udp_diag not built, IPv6
				 * off): there are no such sockets to list. */
				if (e->error == -ENOENT && !id)
					return 0;
				vec_seterr(err, errlen, "sock_diag request", -e->error);
				return -1;
			}
			if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			if (diag_parse_msg(nlh, proto, vec) < 0) {
				vec_seterr(err, errlen, "sock_diag", ENOMEM);
				return -1;
			}
			if (id)
				return 0; /* an exact lookup answers with one message, no DONE */
		}
	}
}

/* Four dumps at most ({TCP, UDP} x {AF_INET, AF_INET6}) over one netlink socket. */
int sockdiag_list(int proto, uint32_t state_mask, struct sockdiag_sock **out, size_t *n, char *err,
                  size_t errlen)
{
	static const int families[] = {AF_INET, AF_INET6};
	int protos[2], nprotos = 0;
	struct diag_sockvec vec = {0};
	uint32_t seq = 0;
	char *buf;
	int fd, e, rc = 0;

	*out = NULL;
	*n = 0;
	if (proto == 0 || proto == IPPROTO_TCP)
		protos[nprotos++] = IPPROTO_TCP;
	if (proto == 0 || proto == IPPROTO_UDP)
		protos[nprotos++] = IPPROTO_UDP;
	if (nprotos == 0) {
		vec_seterr(err, errlen, "sock_diag protocol", EPROTONOSUPPORT);
		return -1;
	}
	if (state_mask == 0)
		state_mask = SOCKDIAG_STATE_ALL;

	buf = malloc(DIAG_NL_BUF);
	if (!buf) {
		vec_seterr(err, errlen, "sock_diag buffer", errno);
		return -1;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0) {
		vec_seterr(err, errlen, "sock_diag socket", errno);
		free(buf);
		return -1;
	}
	/* One dump at a time per netlink socket: each is read to its end before the next. */
	for (int i = 0; i < nprotos && rc == 0; i++)
		for (size_t f = 0; f < sizeof families / sizeof families[0] && rc == 0; f++)
			rc = diag_request(fd, ++seq, families[f], protos[i], state_mask, NULL, &vec, buf,
			                  DIAG_NL_BUF, err, errlen);
	e = errno;
	close(fd);
	free(buf);
	if (rc < 0 || vec.n == 0) {
		free(vec.v);
		vec.v = NULL;
		vec.n = 0;
	}
	*out = vec.v;
	*n = vec.n;
	if (rc < 0)
		errno = e;
	return rc;
}

const char *sockdiag_state_name(int state)
{
	/* The names ss(8) uses; TCP_CLOSE is what an unconnected UDP socket reports. */
	static const char *const names[] = {
	        [TCP_ESTABLISHED] = "ESTAB",    [TCP_SYN_SENT] = "SYN-SENT",
	        [TCP_SYN_RECV] = "SYN-RECV",    [TCP_FIN_WAIT1] = "FIN-WAIT-1",
	        [TCP_FIN_WAIT2] = "FIN-WAIT-2", [TCP_TIME_WAIT] = "TIME-WAIT",
	        [TCP_CLOSE] = "UNCONN",         [TCP_CLOSE_WAIT] = "CLOSE-WAIT",
	        [TCP_LAST_ACK] = "LAST-ACK",    [TCP_LISTEN] = "LISTEN",
	        [TCP_CLOSING] = "CLOSING",      [TCP_CLOSING + 1] = "SYN-RECV",
	};

	if (state < 0 || (size_t)state >= sizeof names / sizeof names[0] || !names[state])
		return "UNKNOWN";
	return names[state];
}

/* Fills id with a (as the source: a socket's own end) and b (the destination); the
 * family is a's. Returns 0, or -1 with errno EAFNOSUPPORT. */
static int diag_fill_id(struct inet_diag_sockid *id, const struct sockaddr_storage *a,
                        const struct sockaddr_storage *b)
{
	memset(id, 0, sizeof *id);
	id->idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		id->idiag_sport = x->sin_port;
		memcpy(id->idiag_src, &x->sin_addr, 4);
		if (y) {
			id->idiag_dport = y->sin_port;
			memcpy(id->idiag_dst, &y->sin_addr, 4);
		}
		return 0;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		id->idiag_sport = x->sin6_port;
		memcpy(id->idiag_src, &x->sin6_addr, 16);
		if (y) {
			id->idiag_dport = y->sin6_port;
			memcpy(id->idiag_dst, &y->sin6_addr, 16);
		}
		return 0;
	}
	errno = EAFNOSUPPORT;
	return -1;
}

/* One exact lookup of the TCP socket id in family: 0 with *out, or -1 with errno
 * (ENOENT: no such socket). */
static int diag_lookup(int family, const struct inet_diag_sockid *id, struct sockdiag_sock *out)
{
	struct diag_sockvec vec = {0};
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	int rc, e;

	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	/* One small reply: a stack buffer; a truncated datagram is an error anyway. */
	rc = diag_request(fd, 1, family, IPPROTO_TCP, SOCKDIAG_STATE_ALL, id, &vec, buf, sizeof buf, NULL, 0);
	e = errno;
	close(fd);
	if (rc == 0 && vec.n == 1) {
		*out = vec.v[0];
		free(vec.v);
		return 0;
	}
	free(vec.v);
	errno = rc < 0 ? e : ENOENT;
	return -1;
}

int sockdiag_peer(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                  struct sockdiag_sock *out)
{
	struct inet_diag_sockid id;

	if (local->ss_family != peer->ss_family) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	/* The peer's own socket: its source is their address, its destination ours. */
	if (diag_fill_id(&id, peer, local) < 0)
		return -1;
	return diag_lookup(peer->ss_family, &id, out);
}

int sockdiag_listener(const struct sockaddr_storage *addr, struct sockdiag_sock *out)
{
	struct sockaddr_storage a = *addr;
	struct inet_diag_sockid id;

	/* The kernel looks up a v4-mapped address as IPv6 only when both ends are mapped:
	 * ask in IPv4, where a dual-stack listener is found too. */
	net_ss_unmap(&a);
	/* With no remote end, the kernel's exact lookup is the one a new connection to
	 * addr makes: an established socket never matches port 0 of 0.0.0.0, so the answer
	 * is the listener that would accept it (a wildcard one included). */
	if (diag_fill_id(&id, &a, NULL) < 0)
		return -1;
	if (diag_lookup(a.ss_family, &id, out) < 0)
		return -1;
	if (out->state != TCP_LISTEN) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

int sockdiag_peer_held(int fd)
{
	struct sockaddr_storage local, peer;
	socklen_t ll = sizeof local, pl = sizeof peer;
	struct sockdiag_sock sd;
	if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
		return 0;
	return sockdiag_peer(&local, &peer, &sd) == 0 && sd.inode != 0;
}
