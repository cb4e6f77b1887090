/* doctor.c - the checks of `loopkit doctor`: interface, addresses, names, round trips, ports, limits. */
#include "diag/doctor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/net.h"
#include "diag/nsprobe.h"
#include "diag/ping.h"
#include "diag/portlease.h"
#include "core/sockdiag.h"
#include "core/procfs.h"

#define C_RED    "\033[31m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"
#define C_DIM    "\033[2m"
#define C_OFF    "\033[0m"

#define FIREWALL_HINT                                                               \
	"lo is up, so a firewall rule on lo is the likely cause: look for DROP or " \
	"REJECT on lo in `nft list ruleset` or `iptables -S`"

/* What the checks learn that later checks use. */
struct doctor_ctx {
	int lo_up;    /* lo exists, UP and RUNNING */
	int ipv6;     /* IPv6 enabled on lo and ::1 present */
	int ipv6_off; /* IPv6 disabled by sysctl or absent from the kernel */
	uint16_t port;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void set(struct doctor_check *c, enum doctor_status st, const char *hint, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void set(struct doctor_check *c, enum doctor_status st, const char *hint, const char *fmt, ...)
{
	va_list ap;

	c->status = st;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof c->detail, fmt, ap);
	va_end(ap);
	snprintf(c->hint, sizeof c->hint, "%s", st == DOCTOR_PASS || !hint ? "" : hint);
}

static long read_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v;

	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

/* 1. lo exists, is UP and RUNNING; its MTU. */
static void check_lo(struct doctor_ctx *x, struct doctor_check *c)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		set(c, DOCTOR_FAIL, "the kernel has no IPv4 sockets here", "socket: %s", strerror(errno));
		return;
	}
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		set(c, DOCTOR_FAIL, "this network namespace has no loopback interface", "lo: %s",
		    strerror(errno));
		close(fd);
		return;
	}
	short fl = ifr.ifr_flags;
	int mtu = ioctl(fd, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : -1;
	close(fd);
	x->lo_up = (fl & IFF_UP) && (fl & IFF_RUNNING);
	if (!x->lo_up)
		set(c, DOCTOR_FAIL,
		    "bring it up: ip link set lo up (a new network namespace starts "
		    "with lo down)",
		    "lo is %s%s, mtu %d", fl & IFF_UP ? "UP" : "DOWN",
		    fl & IFF_RUNNING ? "" : " and not RUNNING", mtu);
	else
		set(c, DOCTOR_PASS, NULL, "lo is UP and RUNNING, mtu %d", mtu);
}

/* 2. 127.0.0.1/8 and ::1 on lo. */
static void check_addresses(struct doctor_ctx *x, struct doctor_check *c)
{
	struct ifaddrs *ifa = NULL;
	int v4 = 0, v4prefix = -1, v6 = 0;

	x->ipv6_off = read_long("/proc/sys/net/ipv6/conf/lo/disable_ipv6", 1) != 0;
	if (getifaddrs(&ifa) < 0) {
		set(c, DOCTOR_FAIL, NULL, "getifaddrs: %s", strerror(errno));
		return;
	}
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || strcmp(i->ifa_name, "lo"))
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)i->ifa_addr;
			if (a->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
				v4 = 1;
				if (i->ifa_netmask)
					v4prefix = __builtin_popcount(
					        ((const struct sockaddr_in *)i->ifa_netmask)
					                ->sin_addr.s_addr);
			}
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)i->ifa_addr;
			if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
				v6 = 1;
		}
	}
	freeifaddrs(ifa);
	x->ipv6 = v6 && !x->ipv6_off;
	if (!v4)
		set(c, DOCTOR_FAIL,
		    x->lo_up ? "add it: ip addr add 127.0.0.1/8 dev lo"
		             : "bring lo up (ip link set lo up): the kernel adds 127.0.0.1/8 itself",
		    "127.0.0.1 is not on lo%s", v6 ? " (::1 is)" : "");
	else if (!v6)
		set(c, DOCTOR_WARN,
		    x->ipv6_off ? "IPv6 is disabled on lo "
		                  "(net.ipv6.conf.lo.disable_ipv6=1): clients trying ::1 first will fail"
		                : "add it: ip addr add ::1/128 dev lo",
		    "127.0.0.1/%d on lo; ::1 missing%s", v4prefix, x->ipv6_off ? " (IPv6 disabled)" : "");
	else
		set(c, DOCTOR_PASS, NULL, "127.0.0.1/%d and ::1 on lo", v4prefix);
}

/* 3. localhost resolves only to loopback addresses. */
static void check_localhost(struct doctor_ctx *x, struct doctor_check *c)
{
	struct addrinfo hints, *res = NULL;
	char list[DOCTOR_TEXT] = "", bad[128] = "";
	int have6 = 0, have4 = 0, rc;
	size_t used = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo("localhost", NULL, &hints, &res);
	if (rc != 0) {
		set(c, DOCTOR_FAIL, "add '127.0.0.1 localhost' and '::1 localhost' to /etc/hosts",
		    "localhost does not resolve: %s", gai_strerror(rc));
		return;
	}
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		char h[INET6_ADDRSTRLEN];
		net_addr_str(a->ai_addr, h, sizeof h);
		if (strstr(list, h))
			continue;
		int k = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", h);
		if (k > 0 && (size_t)k < sizeof list - used)
			used += (size_t)k;
		if (!net_is_loopback(a->ai_addr) && !bad[0])
			snprintf(bad, sizeof bad, "%s", h);
		have4 |= a->ai_family == AF_INET;
		have6 |= a->ai_family == AF_INET6 && net_is_loopback(a->ai_addr);
	}
	freeaddrinfo(res);
	if (bad[0])
		set(c, DOCTOR_FAIL,
		    "localhost must mean this machine: fix /etc/hosts (or the DNS "
		    "answer) so it resolves to 127.0.0.1 and ::1 only",
		    "localhost resolves to %s, and %s is not loopback", list, bad);
	else if (!have6)
		set(c, DOCTOR_WARN,
		    x->ipv6_off ? "fine while IPv6 is off"
		                : "add '::1 localhost' to /etc/hosts so IPv6 clients reach local servers",
		    "localhost resolves to %s; ::1 missing", list);
	else if (!have4)
		set(c, DOCTOR_WARN, "add '127.0.0.1 localhost' to /etc/hosts",
		    "localhost resolves to %s; 127.0.0.1 missing", list);
	else
		set(c, DOCTOR_PASS, NULL, "localhost resolves to %s", list);
}

/* 4-6. Round trips: ICMP, TCP, UDP on one family. */
static void check_probe(struct doctor_ctx *x, struct doctor_check *c, enum ping_mode mode, int family)
{
	struct ping_cfg cfg = {.mode = mode, .family = family, .size = 56, .timeout_ms = DOCTOR_PROBE_MS};
	const char *what = mode == PING_ICMP  ? "ICMP echo"
	                   : mode == PING_TCP ? "TCP connect + echo"
	                                      : "UDP echo";
	const char *addr = family == AF_INET6 ? "::1" : "127.0.0.1";
	struct ping p;
	char err[256], why[64] = "";
	double rtt[DOCTOR_PROBES];
	size_t got = 0;

	if (family == AF_INET6 && !x->ipv6) {
		set(c, DOCTOR_SKIP,
		    x->ipv6_off ? "IPv6 is disabled (net.ipv6.conf.lo.disable_ipv6)" : "::1 is not on lo",
		    "%s to ::1 skipped: no IPv6 on lo", what);
		return;
	}
	int rc = ping_open(&p, &cfg, err, sizeof err);
	if (rc == PING_ENOPERM) {
		set(c, DOCTOR_SKIP,
		    "allow this group ICMP sockets: sysctl -w "
		    "net.ipv4.ping_group_range='0 2147483647' (or run as root)",
		    "%s to %s skipped: no raw socket and not allowed by "
		    "net.ipv4.ping_group_range",
		    what, addr);
		return;
	}
	if (rc < 0) {
		set(c, DOCTOR_FAIL, x->lo_up ? FIREWALL_HINT : "bring lo up: ip link set lo up",
		    "%s to %s: %s", what, addr, err);
		return;
	}
	for (uint16_t seq = 1; seq <= DOCTOR_PROBES; seq++) {
		double us;
		int k = ping_probe(&p, seq, &us, why, sizeof why);
		if (k != 1)
			break;
		rtt[got++] = us / 1000.0;
	}
	const char *method = p.method;
	ping_close(&p);
	if (got < DOCTOR_PROBES) {
		set(c, DOCTOR_FAIL, x->lo_up ? FIREWALL_HINT : "bring lo up: ip link set lo up",
		    "%s to %s failed: %s (%zu of %d answered)", what, addr, why, got, DOCTOR_PROBES);
		return;
	}
	struct ping_summary s;
	ping_summarize(rtt, got, got, &s);
	set(c, DOCTOR_PASS, NULL, "%s to %s: rtt min/avg/max %.3f/%.3f/%.3f ms (%s)", what, addr, s.min,
	    s.avg, s.max, method);
}

enum doctor_status doctor_ephemeral_status(size_t used, size_t range)
{
	if (range == 0)
		return DOCTOR_FAIL;
	if (used * 10 > range * 9)
		return DOCTOR_FAIL;
	if (used * 2 > range)
		return DOCTOR_WARN;
	return DOCTOR_PASS;
}

/* 7. Ephemeral ports: the range, ports in use, TIME-WAIT. */
static void check_ephemeral(struct doctor_ctx *x, struct doctor_check *c)
{
	struct portlease_range eph;
	struct sockdiag_sock *socks = NULL;
	size_t n = 0, used = 0, tw = 0;
	char err[256];
	static const size_t words = 65536 / 64;
	uint64_t *seen;

	portlease_ephemeral(&eph);
	size_t range = eph.lo <= eph.hi ? (size_t)eph.hi - eph.lo + 1 : 0;
	if (sockdiag_list(IPPROTO_TCP, SOCKDIAG_STATE_ALL & ~SOCKDIAG_STATE(TCP_LISTEN), &socks, &n, err,
	                  sizeof err) < 0) {
		set(c, DOCTOR_SKIP, "the kernel's sock_diag interface is not available", "%s", err);
		return;
	}
	seen = calloc(words, sizeof *seen);
	if (!seen) {
		free(socks);
		set(c, DOCTOR_SKIP, NULL, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint16_t pt = net_ss_port(&socks[i].local);
		if (pt < eph.lo || pt > eph.hi)
			continue;
		if (socks[i].state == TCP_TIME_WAIT)
			tw++;
		if (!(seen[pt / 64] & (UINT64_C(1) << (pt % 64)))) {
			seen[pt / 64] |= UINT64_C(1) << (pt % 64);
			used++;
		}
	}
	free(seen);
	free(socks);
	enum doctor_status st = doctor_ephemeral_status(used, range);
	set(c, st,
	    "many short connections to one address:port exhaust the range (TIME-WAIT lasts "
	    "60 s): reuse connections, widen net.ipv4.ip_local_port_range, or set "
	    "net.ipv4.tcp_tw_reuse=1",
	    "range %u-%u (%zu ports): %zu in use (%.1f%%), %zu TCP sockets in TIME-WAIT", eph.lo, eph.hi,
	    range, used, range ? 100.0 * (double)used / (double)range : 0, tw);
	(void)x;
}

/* Whether this user can bind 127.0.0.1:port (not listening, closed at once): 0 or the
 * errno, which says what a listing cannot (a privileged port, lo down, a holder in
 * another namespace). */
/* Binds as serve's listener on 127.0.0.1 does (with its twin on ::1), and lets go at
 * once. Returns 0 or the errno, with the address that failed in failed. */
static int try_bind(uint16_t port, struct sockaddr_storage *failed)
{
	struct sockaddr_in a = {
	        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return net_try_listen_loopback((struct sockaddr *)&a, sizeof a, failed);
}

/* 8. The port: free or held, by whom; ephemeral or not; IANA class; and whether this
 * user can take it. */
static void check_port(struct doctor_ctx *x, struct doctor_check *c)
{
	struct procfs_owner holders[8];
	struct portlease_range eph;
	char who[256] = "", hint[DOCTOR_TEXT];
	int n = procfs_port_holders(0, x->port, holders, 8);

	portlease_ephemeral(&eph);
	int in_eph = x->port >= eph.lo && x->port <= eph.hi;
	char where[160];
	snprintf(where, sizeof where, "%s the ephemeral range %u-%u, IANA %s port",
	         in_eph ? "inside" : "outside", eph.lo, eph.hi, portlease_iana_class(x->port));
	const char *unseen = procfs_unseen_where();
	if (n > 0) {
		procfs_owner_text(holders, (size_t)n, who, sizeof who);
		if (!who[0] && unseen)
			snprintf(who, sizeof who, "a process of user %s %s", holders[0].user, unseen);
		else if (!who[0])
			snprintf(who, sizeof who, "a process of user %s this user cannot see",
			         holders[0].user);
	}
	int ours = n > 0 && holders[0].pid > 0 && !strcmp(holders[0].comm, "loopkit");
	struct sockaddr_storage at;
	char failed[64] = "";
	/* nobody seen holds it: can we take it? */
	int bind_err = n == 0 ? try_bind(x->port, &at) : 0;
	if (bind_err)
		net_addr_str((struct sockaddr *)&at, failed, sizeof failed);
	if (n < 0) {
		set(c, DOCTOR_SKIP, NULL, "port %u: cannot list sockets: %s", x->port, strerror(errno));
	} else if (n > 0 && !ours) {
		if (holders[0].pid > 0)
			snprintf(hint, sizeof hint,
			         "loopkit who %u shows the command line; stop it, "
			         "or use another port (loopkit serve --port 0)",
			         x->port);
		else if (unseen)
			snprintf(hint, sizeof hint,
			         "root cannot name it from here: stop it where it "
			         "runs (ss -ltnp inside that container), or use another port "
			         "(loopkit serve --port 0)");
		else
			snprintf(hint, sizeof hint,
			         "as root, loopkit who %u shows the command line; "
			         "stop it, or use another port (loopkit serve --port 0)",
			         x->port);
		set(c, DOCTOR_WARN, hint, "port %u is held by %s; %s", x->port, who, where);
	} else if (bind_err) {
		/* Nobody seen holds it, yet this user cannot take it: say why. */
		long start = read_long("/proc/sys/net/ipv4/ip_unprivileged_port_start", 1024);
		if (bind_err == EACCES)
			snprintf(hint, sizeof hint,
			         "ports below %ld need root or CAP_NET_BIND_SERVICE "
			         "(net.ipv4.ip_unprivileged_port_start=%ld): use a port from %ld up",
			         start, start, start > 1024 ? start : 1024);
		else if (bind_err == EADDRNOTAVAIL)
			snprintf(hint, sizeof hint,
			         "127.0.0.1 is not configured here: is lo up? (ip link set lo up)");
		else if (bind_err == EADDRINUSE && procfs_port_blocker_text(&at, x->port, who, sizeof who))
			snprintf(hint, sizeof hint,
			         "no listener holds it, but %s does: use another port "
			         "(loopkit serve --port 0)",
			         who);
		else if (bind_err == EADDRINUSE)
			snprintf(hint, sizeof hint,
			         "no listener holds it, but a connection's local port or a socket this "
			         "user cannot see does (loopkit who %u): use another port (loopkit serve "
			         "--port 0)",
			         x->port);
		else
			snprintf(hint, sizeof hint, "use another port (loopkit serve --port 0)");
		set(c, DOCTOR_WARN, hint, "port %u cannot be bound by this user on %s: %s; %s", x->port,
		    failed, strerror(bind_err), where);
	} else if (in_eph) {
		snprintf(hint, sizeof hint,
		         "outgoing connections may take port %u at any time: "
		         "reserve it (sysctl -w net.ipv4.ip_local_reserved_ports=%u) or narrow "
		         "net.ipv4.ip_local_port_range",
		         x->port, x->port);
		set(c, DOCTOR_WARN, hint, "port %u is %s; %s", x->port, n ? who : "free", where);
	} else if (n > 0) {
		set(c, DOCTOR_PASS, NULL, "port %u is held by %s (loopkit itself); %s", x->port, who, where);
	} else {
		set(c, DOCTOR_PASS, NULL, "port %u is free; %s", x->port, where);
	}
}

/* 9. Limits: somaxconn, open files, tcp_tw_reuse. */
static void check_limits(struct doctor_ctx *x, struct doctor_check *c)
{
	struct rlimit rl = {0, 0};
	long somax = read_long("/proc/sys/net/core/somaxconn", -1);
	long twr = read_long("/proc/sys/net/ipv4/tcp_tw_reuse", -1);
	char soft[24], hard[24], hint[DOCTOR_TEXT] = "";

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur == RLIM_INFINITY)
		snprintf(soft, sizeof soft, "unlimited");
	else
		snprintf(soft, sizeof soft, "%llu", (unsigned long long)rl.rlim_cur);
	if (rl.rlim_max == RLIM_INFINITY)
		snprintf(hard, sizeof hard, "unlimited");
	else
		snprintf(hard, sizeof hard, "%llu", (unsigned long long)rl.rlim_max);
	enum doctor_status st = DOCTOR_PASS;
	if (somax >= 0 && somax < 1024) {
		st = DOCTOR_WARN;
		snprintf(hint, sizeof hint,
		         "listen backlogs are cut to %ld: sysctl -w "
		         "net.core.somaxconn=4096",
		         somax);
	} else if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1024) {
		st = DOCTOR_WARN;
		snprintf(hint, sizeof hint,
		         "one process may open only %s files (sockets): raise it "
		         "with ulimit -n %s",
		         soft, hard);
	}
	set(c, st, hint, "somaxconn %ld, open files %s soft / %s hard, tcp_tw_reuse %ld%s", somax, soft, hard,
	    twr,
	    twr == 2   ? " (loopback only)"
	    : twr == 1 ? " (on)"
	               : "");
	(void)x;
}

/* 10. Can a command get a private network namespace here (loopkit isolate)? A WARN when
 * not: the loopback stack itself is fine, only isolation is not available. */
static void check_isolate(struct doctor_ctx *x, struct doctor_check *c)
{
	struct nsprobe p;
	char hint[2 * NSPROBE_TEXT]; /* set() cuts it to DOCTOR_TEXT */

	(void)x;
	if (nsprobe_run(&p)) {
		set(c, DOCTOR_PASS, NULL, "loopkit isolate works here (%s): a network namespace with lo up%s",
		    p.st.userns ? "in a user namespace" : "as root", p.st.ipv6 ? "" : " (IPv4 only)");
		return;
	}
	if (p.v.control[0] && p.v.value != NSPROBE_ABSENT)
		snprintf(hint, sizeof hint, "blocked by %s = %ld; to allow it: %s", p.v.control, p.v.value,
		         p.v.fix);
	else if (p.v.control[0])
		snprintf(hint, sizeof hint, "blocked by %s; to allow it: %s", p.v.control, p.v.fix);
	else
		snprintf(hint, sizeof hint, "%s", p.v.fix);
	set(c, DOCTOR_WARN, hint, "loopkit isolate cannot work here: %s", p.v.cause);
}

static void add(struct doctor_report *r, struct doctor_ctx *x, const char *name,
                void (*fn)(struct doctor_ctx *, struct doctor_check *))
{
	struct doctor_check *c = &r->checks[r->n++];
	double t0 = now_ms();

	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	fn(x, c);
	c->ms = now_ms() - t0;
	r->count[c->status]++;
}

static void add_probe(struct doctor_report *r, struct doctor_ctx *x, const char *name, enum ping_mode mode,
                      int family)
{
	struct doctor_check *c = &r->checks[r->n++];
	double t0 = now_ms();

	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", name);
	check_probe(x, c, mode, family);
	c->ms = now_ms() - t0;
	r->count[c->status]++;
}

void doctor_run(uint16_t port, struct doctor_report *r)
{
	struct doctor_ctx x = {.port = port};

	memset(r, 0, sizeof *r);
	add(r, &x, "lo", check_lo);
	add(r, &x, "addresses", check_addresses);
	add(r, &x, "localhost", check_localhost);
	add_probe(r, &x, "icmp4", PING_ICMP, AF_INET);
	add_probe(r, &x, "icmp6", PING_ICMP, AF_INET6);
	add_probe(r, &x, "tcp4", PING_TCP, AF_INET);
	add_probe(r, &x, "tcp6", PING_TCP, AF_INET6);
	add_probe(r, &x, "udp4", PING_UDP, AF_INET);
	add_probe(r, &x, "udp6", PING_UDP, AF_INET6);
	add(r, &x, "ephemeral", check_ephemeral);
	add(r, &x, "port", check_port);
	add(r, &x, "limits", check_limits);
	add(r, &x, "isolate", check_isolate);
}

const char *doctor_status_name(enum doctor_status s)
{
	static const char *const names[] = {"PASS", "WARN", "FAIL", "SKIP"};

	return (unsigned)s < 4 ? names[s] : "?";
}

void doctor_print(FILE *f, const struct doctor_report *r, int color)
{
	static const char *const colors[] = {C_GREEN, C_YELLOW, C_RED, C_DIM};

	for (size_t i = 0; i < r->n; i++) {
		const struct doctor_check *c = &r->checks[i];
		fprintf(f, "%s%s%s  %-10s %s  (%.1f ms)\n", color ? colors[c->status] : "",
		        doctor_status_name(c->status), color ? C_OFF : "", c->name, c->detail, c->ms);
		if (c->hint[0])
			fprintf(f, "      %-10s hint: %s\n", "", c->hint);
	}
	fprintf(f, "\n%zu pass, %zu warn, %zu fail, %zu skip: %s\n", r->count[DOCTOR_PASS],
	        r->count[DOCTOR_WARN], r->count[DOCTOR_FAIL], r->count[DOCTOR_SKIP],
	        r->count[DOCTOR_FAIL] ? "the loopback stack is NOT healthy"
	                              : "the loopback stack is healthy");
}

int doctor_json(struct buf *b, const struct doctor_report *r)
{
	static const char *const keys[] = {"pass", "warn", "fail", "skip"};
	struct json j;

	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_key(&j, "checks");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->n; i++) {
		const struct doctor_check *c = &r->checks[i];
		json_obj_begin(&j);
		json_kstr(&j, "name", c->name);
		json_kstr(&j, "status", doctor_status_name(c->status));
		json_kstr(&j, "detail", c->detail);
		json_kstr(&j, "hint", c->hint);
		json_kdouble(&j, "ms", (double)(long long)(c->ms * 1000 + 0.5) / 1000);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_key(&j, "summary");
	json_obj_begin(&j);
	for (int s = 0; s < 4; s++) {
		json_key(&j, keys[s]);
		json_uint(&j, r->count[s]);
	}
	json_obj_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}
