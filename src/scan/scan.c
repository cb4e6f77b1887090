/* scan.c - a scan's configuration, port lists, the worker pool, and the run: connect scan, owners, services.
 */
#include "scan/scan.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/net.h"
#include "core/sockdiag.h"
#include "core/strparse.h"

#define SCAN_OWNERS_MAX 8 /* owners looked at per listener (the lowest pid is shown) */

int scan_ports_parse(const char *s, struct scan_ports *out, char *err, size_t errlen)
{
	struct scan_ports p;

	memset(&p, 0, sizeof(p));
	if (!*s) {
		snprintf(err, errlen, "empty port list");
		return -1;
	}
	while (*s) {
		char item[32];
		size_t n = strcspn(s, ",");
		if (n == 0 || n >= sizeof(item)) {
			if (n)
				snprintf(err, errlen, "'%.16s...' is not a port or range", s);
			else
				snprintf(err, errlen, "empty item in the list");
			return -1;
		}
		/* nmap's open ends: "-" is every port, "A-" up to the last, "-B" from the first */
		char last[8];
		snprintf(last, sizeof(last), "%u", (unsigned)(SCAN_PORTS - 1));
		snprintf(item, sizeof(item), "%s%.*s%s", s[0] == '-' ? "1" : "", (int)n, s,
		         s[n - 1] == '-' ? last : "");
		struct strparse_range r;
		char why[STRPARSE_ERR_MAX];
		if (strparse_range(item, 1, SCAN_PORTS - 1, &r, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "'%s': %s", item, why);
			return -1;
		}
		for (uint64_t port = r.lo; port <= r.hi; port++)
			scan_ports_add(&p, (unsigned)port);
		s += n;
		if (*s == ',' && !*++s) {
			snprintf(err, errlen, "list ends with ','");
			return -1;
		}
	}
	*out = p;
	return 0;
}

char *scan_ports_text(const struct scan_ports *p, char *out, size_t len)
{
	size_t n = 0;

	if (len)
		out[0] = '\0';
	for (unsigned port = 1; port < SCAN_PORTS && n < len; port++) {
		if (!scan_ports_has(p, port))
			continue;
		unsigned hi = port;
		while (hi + 1 < SCAN_PORTS && scan_ports_has(p, hi + 1))
			hi++;
		int k = hi > port ? snprintf(out + n, len - n, "%s%u-%u", n ? "," : "", port, hi)
		                  : snprintf(out + n, len - n, "%s%u", n ? "," : "", port);
		if (k < 0 || (size_t)k >= len - n) {
			out[n] = '\0'; /* whole items only */
			break;
		}
		n += (size_t)k;
		port = hi;
	}
	return out;
}

void scan_config_default(struct scan_config *cfg)
{
	char err[64];

	memset(cfg, 0, sizeof(*cfg));
	scan_ports_parse("1-65535", &cfg->ports, err, sizeof(err));
	cfg->inflight = SCAN_INFLIGHT_DEFAULT;
	cfg->connect_ms = SCAN_CONNECT_MS_DEFAULT;
	cfg->banner_ms = SCAN_BANNER_MS_DEFAULT;
	cfg->probe_ms = SCAN_PROBE_MS_DEFAULT;
	cfg->udp_ms = SCAN_UDP_MS_DEFAULT;
	cfg->parallel = SCAN_PARALLEL_DEFAULT;
	cfg->threads = procfs_cpus();
	cfg->service = 1;
	cfg->owners = 1;
	scan_config_target(cfg, "127.0.0.1", 0, err, sizeof(err));
}

int scan_config_target(struct scan_config *cfg, const char *host, int allow_remote, char *err, size_t errlen)
{
	if (net_parse_addr(host, 0, &cfg->addr, &cfg->addrlen) < 0) {
		snprintf(err, errlen,
		         "'%s' is not an IP address; give a numeric address such as 127.0.0.1 or ::1 "
		         "(names are not resolved)",
		         host);
		return -1;
	}
	if (net_loopback_only((struct sockaddr *)&cfg->addr, allow_remote, host, err, errlen) < 0)
		return -1;
	if (!net_is_loopback((struct sockaddr *)&cfg->addr)) {
		if (!cfg->rate)
			cfg->rate = SCAN_REMOTE_RATE;
	}
	net_addr_str((struct sockaddr *)&cfg->addr, cfg->host, sizeof(cfg->host));
	return 0;
}

/* ---- the worker pool ---- */

struct pool {
	pthread_mutex_t lock;
	size_t next, n;
	void (*fn)(size_t, void *);
	void *arg;
};

static void *pool_worker(void *p)
{
	struct pool *pl = p;
	for (;;) {
		pthread_mutex_lock(&pl->lock);
		size_t i = pl->next < pl->n ? pl->next++ : pl->n;
		pthread_mutex_unlock(&pl->lock);
		if (i >= pl->n)
			return NULL;
		pl->fn(i, pl->arg);
	}
}

void scan_pool_run(size_t n, unsigned parallel, void (*fn)(size_t i, void *arg), void *arg)
{
	struct pool pl = {.next = 0, .n = n, .fn = fn, .arg = arg};
	pthread_t th[SCAN_PARALLEL_MAX];
	unsigned k = 0;

	if (parallel == 0)
		parallel = 1;
	if (parallel > SCAN_PARALLEL_MAX)
		parallel = SCAN_PARALLEL_MAX;
	if (parallel > n)
		parallel = (unsigned)n;
	pthread_mutex_init(&pl.lock, NULL);
	for (; k < parallel; k++)
		if (pthread_create(&th[k], NULL, pool_worker, &pl) != 0)
			break;
	if (k == 0)
		pool_worker(&pl); /* no thread could start: do the work here */
	for (unsigned i = 0; i < k; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&pl.lock);
}

/* ---- owners ---- */

/* Does listener s (a TCP listener or a bound UDP socket) take connections or datagrams for
 * its port on the scanned address (family, addr)? */
static int listener_covers(const struct sockdiag_sock *s, const struct sockaddr_storage *target)
{
	if (net_ss_port(&s->local) == 0)
		return 0;
	if (net_is_wildcard((const struct sockaddr *)&s->local))
		return s->family == target->ss_family || (s->family == AF_INET6 && s->v6only != 1);
	if (s->family != target->ss_family)
		return 0;
	if (s->family == AF_INET)
		return ((const struct sockaddr_in *)&s->local)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)target)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)&s->local)->sin6_addr,
	              &((const struct sockaddr_in6 *)target)->sin6_addr, 16) == 0;
}

/* Fills the owner and exposure fields of r's ports from the kernel's TCP listeners and
 * unconnected UDP sockets (TCP_CLOSE, as `loopkit ports -u` lists them). */
static int owners_fill(struct scan_result *r, const struct sockaddr_storage *target, char *err, size_t errlen)
{
	struct sockdiag_sock *socks = NULL;
	size_t n = 0;
	struct procfs_owner_map map = {0};
	uint32_t *inodes;

	if (sockdiag_list(0, SOCKDIAG_STATE(TCP_LISTEN) | SOCKDIAG_STATE(TCP_CLOSE), &socks, &n, err,
	                  errlen) < 0)
		return -1;
	inodes = calloc(n + 1, sizeof(*inodes));
	if (!inodes) {
		free(socks);
		snprintf(err, errlen, "scan: out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		inodes[i] = socks[i].inode;
	if (n && procfs_owner_map_build(&map, inodes, n, err, errlen) < 0) {
		free(inodes);
		free(socks);
		return -1;
	}
	for (size_t k = 0; k < r->n; k++) {
		struct scan_port *p = &r->ports[k];
		int proto = p->udp ? IPPROTO_UDP : IPPROTO_TCP, state = p->udp ? TCP_CLOSE : TCP_LISTEN;
		for (size_t i = 0; i < n; i++) {
			const struct sockdiag_sock *s = &socks[i];
			if (s->proto != proto || s->state != state || net_ss_port(&s->local) != p->port ||
			    !listener_covers(s, target))
				continue;
			const struct procfs_owner *o[SCAN_OWNERS_MAX];
			size_t no = procfs_owner_map_find(&map, s->inode, o, SCAN_OWNERS_MAX);
			if (!p->bound[0] ||
			    (!p->exposed && !net_is_loopback((const struct sockaddr *)&s->local))) {
				net_ss_text(&s->local, p->bound, sizeof(p->bound));
				p->exposed = !net_is_loopback((const struct sockaddr *)&s->local);
			}
			if (no && !p->owner.pid) {
				p->owner = *o[0];
				p->nowners = (int)no;
			} else if (!no && !p->owner.pid) {
				p->owner.uid = s->uid;
			}
		}
	}
	procfs_owner_map_free(&map);
	free(inodes);
	free(socks);
	return 0;
}

/* ---- UDP ---- */

/* One UDP port: an empty datagram on a connected socket; ICMP port unreachable comes
 * back as ECONNREFUSED (closed), a datagram means open, silence open|filtered.
 * Returns 1 open, 2 open|filtered, 0 closed. */
static int udp_probe(const struct scan_config *cfg, uint16_t port)
{
	struct sockaddr_storage ss = cfg->addr;
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 2;
	if (fd < 0)
		return 2;
	net_ss_set_port(&ss, port);
	struct timeval tv = {.tv_sec = cfg->udp_ms / 1000, .tv_usec = (cfg->udp_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, cfg->addrlen) == 0 && send(fd, "", 0, 0) == 0) {
		char b[512];
		ssize_t k = recv(fd, b, sizeof(b), 0);
		if (k >= 0)
			rc = 1;
		else if (errno == ECONNREFUSED)
			rc = 0;
	}
	close(fd);
	return rc;
}

struct udp_job {
	const struct scan_config *cfg;
	uint16_t *ports;
	int *res;
};

static void udp_one(size_t i, void *arg)
{
	struct udp_job *j = arg;
	j->res[i] = udp_probe(j->cfg, j->ports[i]);
}

/* ---- the run ---- */

static unsigned long proc_rss_kb(void)
{
	char line[256];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtoul(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static double now_s(void)
{
	return (double)loop_clock_us() / 1e6;
}

struct svc_job {
	const struct scan_config *cfg;
	struct scan_result *r;
};

static void svc_one(size_t i, void *arg)
{
	struct svc_job *j = arg;
	struct scan_port *p = &j->r->ports[i];
	if (!p->udp && strcmp(p->state, "open") == 0)
		scan_service_detect(j->cfg, p->port, &p->svc);
}

int scan_run(const struct scan_config *cfg, struct scan_result *r, char *err, size_t errlen)
{
	struct scan_ports open, filt;
	uint16_t *uports = NULL;
	int *ures = NULL;

	memset(r, 0, sizeof(*r));
	r->started = (uint64_t)time(NULL);
	r->family = cfg->addr.ss_family;
	snprintf(r->host, sizeof(r->host), "%s", cfg->host);
	unsigned rounds = cfg->rounds ? cfg->rounds : 1;
	if (rounds > 1 && !(r->rounds = calloc(rounds, sizeof(*r->rounds)))) {
		snprintf(err, errlen, "scan: out of memory");
		return -1;
	}
	memset(&open, 0, sizeof(open));
	memset(&filt, 0, sizeof(filt));
	for (unsigned k = 0; k < rounds; k++) {
		double t0 = now_s();
		if (cfg->ports.count && scan_connect_run(cfg, &open, &filt, &r->closed, err, errlen) < 0) {
			scan_result_free(r);
			return -1;
		}
		r->filtered = filt.count;
		r->scan_s = now_s() - t0;
		if (r->rounds) {
			r->rounds[k].seconds = r->scan_s;
			r->rounds[k].fds = procfs_open_fds();
			r->rounds[k].rss_kb = proc_rss_kb();
			r->nrounds++;
		}
	}
	r->tried = cfg->ports.count;
	size_t slen = (size_t)cfg->ports.count * 6 + 1;
	if ((r->services = malloc(slen)))
		scan_ports_text(&cfg->ports, r->services, slen);
	/* Filtered ports are listed too while few: on loopback each is a listener that
	 * completes no handshake (its accept queue is full: the program stopped accepting),
	 * the hung service a user looks for; a remote host's firewall drops thousands. */
	int list_filtered = filt.count <= SCAN_FILTERED_LIST_MAX;
	r->ports = calloc((size_t)open.count + (list_filtered ? filt.count : 0) + cfg->udp.count + 1,
	                  sizeof(*r->ports));
	if (!r->ports) {
		snprintf(err, errlen, "scan: out of memory");
		return -1;
	}
	for (unsigned port = 1; port < SCAN_PORTS; port++) {
		if (scan_ports_has(&open, port)) {
			r->ports[r->n].port = (uint16_t)port;
			r->ports[r->n].state = "open";
			r->n++;
		} else if (list_filtered && scan_ports_has(&filt, port)) {
			struct scan_port *p = &r->ports[r->n++];
			p->port = (uint16_t)port;
			p->state = "filtered";
			snprintf(p->svc.info, sizeof(p->svc.info), "%s",
			         net_is_loopback((const struct sockaddr *)&cfg->addr)
			                 ? "not accepting: its accept queue is full"
			                 : "no answer within --connect-timeout");
		}
	}
	if (cfg->udp.count) {
		size_t k = 0;
		uports = calloc(cfg->udp.count, sizeof(*uports));
		ures = calloc(cfg->udp.count, sizeof(*ures));
		if (!uports || !ures) {
			free(uports);
			free(ures);
			scan_result_free(r);
			snprintf(err, errlen, "scan: out of memory");
			return -1;
		}
		for (unsigned port = 1; port < SCAN_PORTS; port++)
			if (scan_ports_has(&cfg->udp, port))
				uports[k++] = (uint16_t)port;
		struct udp_job uj = {cfg, uports, ures};
		scan_pool_run(k, cfg->parallel, udp_one, &uj);
		r->udp_tried = (unsigned)k;
		for (size_t i = 0; i < k; i++) {
			if (!ures[i]) {
				r->udp_closed++;
				continue;
			}
			struct scan_port *p = &r->ports[r->n++];
			p->port = uports[i];
			p->udp = 1;
			p->state = ures[i] == 1 ? "open" : "open|filtered";
			snprintf(p->svc.name, sizeof(p->svc.name), "unknown");
		}
		free(uports);
		free(ures);
	}
	if (cfg->owners && owners_fill(r, &cfg->addr, err, errlen) < 0) {
		scan_result_free(r);
		return -1;
	}
	if (cfg->service) {
		double t1 = now_s();
		struct svc_job sj = {cfg, r};
		scan_pool_run(r->n, cfg->parallel, svc_one, &sj);
		r->service_s = now_s() - t1;
	}
	return 0;
}

void scan_result_free(struct scan_result *r)
{
	free(r->ports);
	free(r->rounds);
	free(r->services);
	memset(r, 0, sizeof(*r));
}
