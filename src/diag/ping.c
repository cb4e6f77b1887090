/* ping.c - probes (TCP connect/echo, UDP echo, ICMP echo), an echo responder thread, statistics. */
#include "diag/ping.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define PING_IO_MS 1000 /* the responder's patience with one client */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- statistics ---- */

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double ping_percentile(const double *sorted, size_t n, double q)
{
	if (n == 0)
		return 0;
	/* Nearest rank: the smallest value with at least q% of the values at or below it. */
	double want = q / 100.0 * (double)n;
	size_t rank = (size_t)want;
	if ((double)rank < want)
		rank++;
	size_t i = rank < 1 ? 0 : rank - 1;
	return sorted[i < n ? i : n - 1];
}

void ping_summarize(double *rtt, size_t n, size_t sent, struct ping_summary *s)
{
	double sum = 0, dev2 = 0;

	memset(s, 0, sizeof *s);
	s->sent = sent;
	s->received = n;
	s->loss_pct = sent ? 100.0 * (double)(sent - n) / (double)sent : 0;
	if (n == 0)
		return;
	qsort(rtt, n, sizeof *rtt, dbl_cmp);
	for (size_t i = 0; i < n; i++)
		sum += rtt[i];
	s->min = rtt[0];
	s->max = rtt[n - 1];
	s->avg = sum / (double)n;
	/* ping(8)'s mdev is sqrt(mean of squares - square of mean); the same value taken in
	 * two passes, which does not cancel to noise when the times are all alike. */
	for (size_t i = 0; i < n; i++)
		dev2 += (rtt[i] - s->avg) * (rtt[i] - s->avg);
	s->mdev = dev2 > 0 ? sqrt(dev2 / (double)n) : 0; /* inlined: no libm (Makefile) */
	s->p50 = ping_percentile(rtt, n, 50);
	s->p90 = ping_percentile(rtt, n, 90);
	s->p99 = ping_percentile(rtt, n, 99);
}

/* ---- targets ---- */

int ping_parse_target(const char *s, int need_port, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *port = NULL;
	size_t n = strlen(s);
	struct addrinfo hints, *res = NULL;

	if (n == 0 || n >= sizeof host)
		return -1;
	if (need_port && strspn(s, "0123456789") == n) { /* a bare port, as tcping takes it */
		snprintf(host, sizeof host, "127.0.0.1");
		port = s;
	} else if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			return -1;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return -1;
	} else if (need_port) {
		const char *colon = strrchr(s, ':');
		if (!colon)
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port = colon + 1;
	} else {
		memcpy(host, s, n + 1);
	}
	if (need_port != (port != NULL) || !host[0])
		return -1;
	if (port) {
		char *end;
		unsigned long v = strtoul(port, &end, 10);
		if (!*port || *end || v == 0 || v > 65535)
			return -1;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port ? port : "0", &hints, &res) != 0 || !res)
		return -1;
	memset(ss, 0, sizeof *ss);
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ---- the echo responder ---- */

static void set_timeouts(int fd, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Serves until stopfd becomes readable: TCP reads `size` bytes and echoes them, then
 * closes; UDP echoes every datagram. Each wait is bounded by PING_IO_MS. */
static void *responder_cb(void *arg)
{
	struct ping *p = arg;
	/* UDP echoes any datagram whole (a probe is at least 2 bytes, whatever -s says). */
	size_t cap = p->cfg.mode == PING_UDP ? 65536 : p->cfg.size ? p->cfg.size : 1;
	unsigned char *b = malloc(cap);

	if (!b)
		return NULL;
	for (;;) {
		struct pollfd pf[2] = {{.fd = p->lfd, .events = POLLIN}, {.fd = p->stopfd, .events = POLLIN}};
		if (poll(pf, 2, PING_IO_MS) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		if (p->cfg.mode == PING_UDP) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof from;
			ssize_t r = recvfrom(p->lfd, b, cap, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
			if (r >= 0)
				sendto(p->lfd, b, (size_t)r, MSG_DONTWAIT, (struct sockaddr *)&from, fl);
			continue;
		}
		int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		set_timeouts(c, PING_IO_MS);
		size_t got = 0;
		while (got < p->cfg.size) {
			ssize_t r = recv(c, b + got, p->cfg.size - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		for (size_t off = 0; off < got;) {
			ssize_t w = send(c, b + off, got - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		close(c);
	}
	free(b);
	return NULL;
}

static void loopback_addr(int family, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		*len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof *s4;
	}
}

static int start_responder(struct ping *p, char *err, size_t errlen)
{
	int type = p->cfg.mode == PING_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int family = p->cfg.family == AF_INET6 ? AF_INET6 : AF_INET;
	char a[INET6_ADDRSTRLEN];

	loopback_addr(family, &p->dst, &p->dst_len);
	inet_ntop(family,
	          family == AF_INET6 ? (void *)&((struct sockaddr_in6 *)&p->dst)->sin6_addr
	                             : (void *)&((struct sockaddr_in *)&p->dst)->sin_addr,
	          a, sizeof a);
	p->lfd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&p->dst, p->dst_len) < 0 ||
	    (type == SOCK_STREAM && listen(p->lfd, 16) < 0) ||
	    getsockname(p->lfd, (struct sockaddr *)&p->dst, &p->dst_len) < 0) {
		snprintf(err, errlen, "responder on %s: %s", a, strerror(errno));
		return -1;
	}
	p->stopfd = eventfd(0, EFD_CLOEXEC);
	if (p->stopfd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	int e = pthread_create(&p->thread, NULL, responder_cb, p);
	if (e) {
		snprintf(err, errlen, "responder thread: %s", strerror(e));
		return -1;
	}
	p->have_thread = 1;
	p->method = "own responder";
	return 0;
}

/* ---- ICMP ---- */

static uint16_t inet_csum(const void *data, size_t n)
{
	const unsigned char *b = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)b[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static int open_icmp(struct ping *p, char *err, size_t errlen)
{
	int fam = p->dst.ss_family, proto = fam == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;

	p->icmp_fd = socket(fam, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (p->icmp_fd >= 0) {
		p->icmp_raw = 1;
		p->method = "raw socket";
		p->echo_id = (uint16_t)getpid();
		return 0;
	}
	int raw_errno = errno;
	p->icmp_fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, proto);
	if (p->icmp_fd >= 0) {
		p->icmp_raw = 0;
		p->method = "datagram socket";
		return 0;
	}
	if ((raw_errno == EPERM || raw_errno == EACCES) && (errno == EACCES || errno == EPERM)) {
		snprintf(err, errlen,
		         "ICMP needs a raw socket (CAP_NET_RAW) or a group in "
		         "net.ipv4.ping_group_range (now excludes gid %u): sysctl -w "
		         "net.ipv4.ping_group_range='0 2147483647'",
		         (unsigned)getgid());
		return PING_ENOPERM;
	}
	snprintf(err, errlen, "ICMP socket: %s", strerror(errno));
	return -1;
}

/* 1 when pkt[0..n) is the echo reply to seq. */
static int icmp_match(const struct ping *p, const unsigned char *pkt, size_t n, uint16_t seq)
{
	if (p->dst.ss_family == AF_INET) {
		if (p->icmp_raw) {
			if (n < sizeof(struct iphdr))
				return 0;
			size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
			if (ihl < sizeof(struct iphdr) || n < ihl)
				return 0;
			pkt += ihl;
			n -= ihl;
		}
		if (n < sizeof(struct icmphdr))
			return 0;
		struct icmphdr h;
		memcpy(&h, pkt, sizeof h);
		return h.type == ICMP_ECHOREPLY && ntohs(h.un.echo.sequence) == seq &&
		       (!p->icmp_raw || ntohs(h.un.echo.id) == p->echo_id);
	}
	if (n < sizeof(struct icmp6_hdr))
		return 0;
	struct icmp6_hdr h6;
	memcpy(&h6, pkt, sizeof h6);
	return h6.icmp6_type == ICMP6_ECHO_REPLY && ntohs(h6.icmp6_seq) == seq &&
	       (!p->icmp_raw || ntohs(h6.icmp6_id) == p->echo_id);
}

static int probe_icmp(struct ping *p, uint16_t seq, double *rtt, char *why, size_t wl)
{
	size_t hl = p->dst.ss_family == AF_INET ? sizeof(struct icmphdr) : sizeof(struct icmp6_hdr);
	size_t n = hl + p->cfg.size;
	unsigned char *pkt = p->buf;

	memset(pkt, 0, hl);
	for (size_t i = 0; i < p->cfg.size; i++)
		pkt[hl + i] = (unsigned char)(0x10 + i);
	if (p->dst.ss_family == AF_INET) {
		struct icmphdr h = {.type = ICMP_ECHO};
		h.un.echo.id = htons(p->echo_id);
		h.un.echo.sequence = htons(seq);
		memcpy(pkt, &h, sizeof h);
		h.checksum = inet_csum(pkt, n);
		memcpy(pkt, &h, sizeof h);
	} else {
		struct icmp6_hdr h6 = {.icmp6_type = ICMP6_ECHO_REQUEST};
		h6.icmp6_id = htons(p->echo_id);
		h6.icmp6_seq = htons(seq);
		memcpy(pkt, &h6, sizeof h6);
	}
	double t0 = now_us(), deadline = t0 + p->cfg.timeout_ms * 1000.0;
	if (sendto(p->icmp_fd, pkt, n, 0, (struct sockaddr *)&p->dst, p->dst_len) < 0) {
		snprintf(why, wl, "send: %s", strerror(errno));
		return errno == ENETUNREACH || errno == EHOSTUNREACH || errno == EPERM ? 0 : -1;
	}
	for (;;) {
		double left = deadline - now_us();
		struct pollfd pf = {.fd = p->icmp_fd, .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, (int)(left / 1000) + 1) == 0) {
			snprintf(why, wl, "timeout");
			return 0;
		}
		ssize_t r = recv(p->icmp_fd, p->buf, p->buflen, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (now_us() >= deadline) {
					snprintf(why, wl, "timeout");
					return 0;
				}
				continue;
			}
			snprintf(why, wl, "%s", strerror(errno));
			return 0;
		}
		if (icmp_match(p, p->buf, (size_t)r, seq)) {
			*rtt = now_us() - t0;
			return 1;
		}
	}
}

/* ---- TCP and UDP probes ---- */

/* Waits for events on fd until deadline (µs). Returns 1 ready, 0 timeout. */
static int wait_fd(int fd, short ev, double deadline)
{
	for (;;) {
		double left = deadline - now_us();
		struct pollfd pf = {.fd = fd, .events = ev};
		if (left <= 0)
			return 0;
		int k = poll(&pf, 1, (int)(left / 1000) + 1);
		if (k > 0)
			return 1;
		if (k < 0 && errno != EINTR)
			return 0;
	}
}

static int probe_tcp(struct ping *p, uint16_t seq, double *rtt, char *why, size_t wl)
{
	int fd = socket(p->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	double t0 = now_us(), deadline = t0 + p->cfg.timeout_ms * 1000.0;
	int rc = 0, e = 0;
	socklen_t el = sizeof e;

	if (fd < 0) {
		snprintf(why, wl, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&p->dst, p->dst_len) < 0 && errno != EINPROGRESS) {
		e = errno;
	} else if (!wait_fd(fd, POLLOUT, deadline)) {
		snprintf(why, wl, "timeout");
		goto out;
	} else {
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
	}
	if (e) {
		snprintf(why, wl, "%s", e == ECONNREFUSED ? "connection refused" : strerror(e));
		rc = e == EMFILE || e == ENFILE || e == EADDRNOTAVAIL ? -1 : 0;
		goto out;
	}
	if (p->cfg.has_target) { /* tcping: the handshake is the round trip */
		*rtt = now_us() - t0;
		rc = 1;
		goto out;
	}
	size_t n = p->cfg.size;
	for (size_t i = 0; i < n; i++)
		p->buf[i] = (unsigned char)(seq + i);
	for (size_t off = 0; off < n;) {
		if (!wait_fd(fd, POLLOUT, deadline)) {
			snprintf(why, wl, "timeout");
			goto out;
		}
		ssize_t w = send(fd, p->buf + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(why, wl, "send: %s", strerror(errno));
			goto out;
		}
		off += w > 0 ? (size_t)w : 0;
	}
	for (size_t got = 0; got < n;) {
		if (!wait_fd(fd, POLLIN, deadline)) {
			snprintf(why, wl, "timeout");
			goto out;
		}
		ssize_t r = recv(fd, p->buf + n + got, n - got, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			snprintf(why, wl, "echo cut short");
			goto out;
		}
		got += r > 0 ? (size_t)r : 0;
	}
	if (memcmp(p->buf, p->buf + n, n)) {
		snprintf(why, wl, "echo differs");
		goto out;
	}
	*rtt = now_us() - t0;
	rc = 1;
out:
	close(fd);
	return rc;
}

static int probe_udp(struct ping *p, uint16_t seq, double *rtt, char *why, size_t wl)
{
	int fd = socket(p->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	size_t n = p->cfg.size < 2 ? 2 : p->cfg.size;
	double t0, deadline;
	int rc = 0;

	if (fd < 0) {
		snprintf(why, wl, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&p->dst, p->dst_len) < 0) {
		snprintf(why, wl, "%s", strerror(errno));
		close(fd);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		p->buf[i] = (unsigned char)(i + 7);
	p->buf[0] = (unsigned char)(seq >> 8);
	p->buf[1] = (unsigned char)seq;
	t0 = now_us();
	deadline = t0 + p->cfg.timeout_ms * 1000.0;
	if (send(fd, p->buf, n, 0) < 0) {
		snprintf(why, wl, "%s", errno == ECONNREFUSED ? "port unreachable" : strerror(errno));
		goto out;
	}
	for (;;) {
		if (!wait_fd(fd, POLLIN, deadline)) {
			snprintf(why, wl, "timeout");
			goto out;
		}
		ssize_t r = recv(fd, p->buf + n, n, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			snprintf(why, wl, "%s", errno == ECONNREFUSED ? "port unreachable" : strerror(errno));
			goto out;
		}
		/* A late answer to an earlier probe carries another sequence number. */
		if ((size_t)r == n && !memcmp(p->buf, p->buf + n, n)) {
			*rtt = now_us() - t0;
			rc = 1;
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}

/* ---- session ---- */

int ping_open(struct ping *p, const struct ping_cfg *cfg, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->cfg = *cfg;
	p->icmp_fd = p->lfd = p->stopfd = -1;
	if (!p->cfg.timeout_ms)
		p->cfg.timeout_ms = PING_TIMEOUT_MS;
	if (p->cfg.size > PING_MAX_SIZE)
		p->cfg.size = PING_MAX_SIZE;
	p->buflen = 2 * (p->cfg.size + 2) + 128; /* probe, echo, and ICMP/IP headers */
	p->buf = malloc(p->buflen);
	if (!p->buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0;
	if (cfg->has_target) {
		memcpy(&p->dst, &cfg->target, sizeof p->dst);
		p->dst_len = cfg->target_len;
		p->method = "target";
	} else if (cfg->mode == PING_ICMP) {
		loopback_addr(cfg->family == AF_INET6 ? AF_INET6 : AF_INET, &p->dst, &p->dst_len);
	} else {
		rc = start_responder(p, err, errlen);
	}
	if (rc == 0 && cfg->mode == PING_ICMP)
		rc = open_icmp(p, err, errlen);
	if (rc < 0)
		ping_close(p);
	return rc;
}

int ping_probe(struct ping *p, uint16_t seq, double *rtt_us, char *why, size_t whylen)
{
	why[0] = '\0';
	if (p->cfg.mode == PING_ICMP)
		return probe_icmp(p, seq, rtt_us, why, whylen);
	if (p->cfg.mode == PING_UDP)
		return probe_udp(p, seq, rtt_us, why, whylen);
	return probe_tcp(p, seq, rtt_us, why, whylen);
}

void ping_close(struct ping *p)
{
	if (p->have_thread) {
		uint64_t one = 1;
		(void)!write(p->stopfd, &one, sizeof one);
		pthread_join(p->thread, NULL);
		p->have_thread = 0;
	}
	if (p->stopfd >= 0)
		close(p->stopfd);
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->icmp_fd >= 0)
		close(p->icmp_fd);
	free(p->buf);
	p->buf = NULL;
	p->stopfd = p->lfd = p->icmp_fd = -1;
}
