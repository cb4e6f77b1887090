/* ports.c - sockets with their owners and exposure for `ports` and `who`, and their renderings. */
#include "diag/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/net.h"

#define C_RED   "\033[31m"
#define C_GREEN "\033[32m"
#define C_BOLD  "\033[1m"
#define C_OFF   "\033[0m"

int diag_color_ok(FILE *f)
{
	const char *nc = getenv("NO_COLOR");

	if (nc && nc[0])
		return 0;
	return isatty(fileno(f));
}

int diag_addr_exposed(const struct sockaddr_storage *sa)
{
	return !net_is_loopback((const struct sockaddr *)sa);
}

static int row_cmp(const void *a, const void *b)
{
	const struct diag_port_row *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	int c = memcmp(&x->s->local, &y->s->local, sizeof x->s->local);
	if (c)
		return c;
	c = memcmp(&x->s->remote, &y->s->remote, sizeof x->s->remote);
	return c;
}

/* Orders rows cheaply: most comparisons end here, ties fall back to the addresses. */
static uint64_t row_key(const struct sockdiag_sock *s, int listener)
{
	uint32_t a;

	if (s->family == AF_INET)
		a = ntohl(((const struct sockaddr_in *)&s->local)->sin_addr.s_addr);
	else
		memcpy(&a, ((const struct sockaddr_in6 *)&s->local)->sin6_addr.s6_addr + 12, 4);
	return (uint64_t)(s->proto == IPPROTO_UDP) << 63 | (uint64_t)!listener << 62 |
	       (uint64_t)net_ss_port(&s->local) << 46 | (uint64_t)(s->family == AF_INET6) << 45 | (uint64_t)a;
}

static int proto_idx(int proto)
{
	return proto == IPPROTO_UDP;
}

/* ss(8)'s state names (its "listening" is "listen" here, as the STATE column says). */
static const struct {
	const char *name;
	uint32_t mask;
} state_names[] = {
        {"listen", SOCKDIAG_STATE(TCP_LISTEN)},
        {"established", SOCKDIAG_STATE(TCP_ESTABLISHED)},
        {"syn-sent", SOCKDIAG_STATE(TCP_SYN_SENT)},
        {"syn-recv", SOCKDIAG_STATE(TCP_SYN_RECV) | SOCKDIAG_STATE(TCP_CLOSING + 1)},
        {"fin-wait-1", SOCKDIAG_STATE(TCP_FIN_WAIT1)},
        {"fin-wait-2", SOCKDIAG_STATE(TCP_FIN_WAIT2)},
        {"time-wait", SOCKDIAG_STATE(TCP_TIME_WAIT)},
        {"close-wait", SOCKDIAG_STATE(TCP_CLOSE_WAIT)},
        {"last-ack", SOCKDIAG_STATE(TCP_LAST_ACK)},
        {"closing", SOCKDIAG_STATE(TCP_CLOSING)},
        {"unconn", SOCKDIAG_STATE(TCP_CLOSE)},
        {"connected", SOCKDIAG_STATE_ALL & ~(SOCKDIAG_STATE(TCP_LISTEN) | SOCKDIAG_STATE(TCP_CLOSE))},
};

int diag_ports_state_parse(const char *name, uint32_t *mask, char *err, size_t errlen)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof state_names / sizeof state_names[0]; i++)
		if (!strcmp(name, state_names[i].name)) {
			*mask = state_names[i].mask;
			return 0;
		}
	n = (size_t)snprintf(err, errlen, "want one of");
	for (size_t i = 0; i < sizeof state_names / sizeof state_names[0] && n < errlen; i++)
		n += (size_t)snprintf(err + n, errlen - n, " %s", state_names[i].name);
	return -1;
}

static int collect(struct diag_ports *p, unsigned flags, uint16_t port, const struct diag_ports_filter *f,
                   char *err, size_t errlen);

int diag_ports_collect(struct diag_ports *p, unsigned flags, uint16_t port, char *err, size_t errlen)
{
	struct diag_ports_filter f = {0};

	return collect(p, flags, port, &f, err, errlen);
}

int diag_ports_collect_filtered(struct diag_ports *p, unsigned flags, const struct diag_ports_filter *f,
                                char *err, size_t errlen)
{
	return collect(p, flags, 0, f, err, errlen);
}

#define KERNEL_ADDRS_MAX 64 /* distinct leftover addresses who tries a bind on */

/* 127.0.0.1, ::1 or a wildcard: what servers bind, tried first. */
static int common_addr(const struct sockaddr_storage *a)
{
	return net_is_loopback_one((const struct sockaddr *)a) || net_is_wildcard((const struct sockaddr *)a);
}

/* Notes s as the leftover to name: blocks (2: a server's bind there fails; 1: loopkit's
 * twin of it does) outranks a TIME-WAIT, which outranks any other. */
static void kernel_note(struct diag_ports *p, const struct sockdiag_sock *s, const struct sockaddr_storage *a,
                        int rank, int *best)
{
	rank = rank * 2 + (s->state == TCP_TIME_WAIT);
	if (rank <= *best)
		return;
	*best = rank;
	p->kernel_state = s->state;
	p->kernel_addr = *a;
}

/* who's view of the TCP sockets on port that no process holds (what the kernel keeps of
 * closed connections): does one keep a server out? A bind as a server makes it, to each
 * distinct address of theirs (127.0.0.1, ::1 and wildcards first; at most
 * KERNEL_ADDRS_MAX), answers; and for a loopback one, the bind of loopkit's listener on
 * the other loopback address, which holds this one as its twin without SO_REUSEADDR. */
static void kernel_held(struct diag_ports *p, size_t n, uint16_t port)
{
	struct sockaddr_storage tried[KERNEL_ADDRS_MAX];
	size_t ntried = 0;
	int best = -1;
	for (int pass = 0; pass < 2 && !p->kernel_blocks; pass++) {
		for (size_t i = 0; i < n && !p->kernel_blocks; i++) {
			const struct sockdiag_sock *s = &p->socks[i];
			if (s->proto != IPPROTO_TCP || s->inode || net_ss_port(&s->local) != port)
				continue;
			struct sockaddr_storage a = s->local;
			net_ss_unmap(&a);
			if (common_addr(&a) != !pass)
				continue;
			int seen = 0;
			for (size_t t = 0; t < ntried && !seen; t++)
				seen = net_ss_same(&tried[t], &a);
			if (seen || ntried == KERNEL_ADDRS_MAX) {
				kernel_note(p, s, &a, 0, &best);
				continue;
			}
			tried[ntried++] = a;
			socklen_t len = a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
			                                        : sizeof(struct sockaddr_in);
			int rank = 0;
			if (net_try_bind((const struct sockaddr *)&a, len) == EADDRINUSE) {
				rank = 2;
				p->kernel_blocks = 1;
			} else if (net_is_loopback_one((const struct sockaddr *)&a)) {
				struct sockaddr_storage other, failed;
				socklen_t ol;
				net_parse_addr(a.ss_family == AF_INET ? "::1" : "127.0.0.1", port, &other,
				               &ol);
				if (net_try_listen_loopback((const struct sockaddr *)&other, ol, &failed) ==
				            EADDRINUSE &&
				    net_ss_same(&failed, &a)) {
					rank = 1;
					p->kernel_twin_blocks = 1;
				}
			}
			kernel_note(p, s, &a, rank, &best);
		}
	}
}

/* The one collection: who's view when port is nonzero, else per f. */
static int collect(struct diag_ports *p, unsigned flags, uint16_t port, const struct diag_ports_filter *f,
                   char *err, size_t errlen)
{
	int proto = 0;
	uint32_t *inodes = NULL;
	size_t n = 0, k = 0;

	memset(p, 0, sizeof *p);
	if ((flags & DIAG_PORTS_TCP) && !(flags & DIAG_PORTS_UDP))
		proto = IPPROTO_TCP;
	else if ((flags & DIAG_PORTS_UDP) && !(flags & DIAG_PORTS_TCP))
		proto = IPPROTO_UDP;
	if (sockdiag_list(proto, SOCKDIAG_STATE_ALL, &p->socks, &n, err, errlen) < 0)
		return -1;
	p->rows = calloc(n + 1, sizeof *p->rows);
	inodes = calloc(n + 1, sizeof *inodes);
	if (!p->rows || !inodes) {
		snprintf(err, errlen, "ports: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sockdiag_sock *s = &p->socks[i];
		int listener = s->proto == IPPROTO_TCP ? s->state == TCP_LISTEN : s->state == TCP_CLOSE;

		if (s->state >= 0 && s->state < DIAG_PORTS_STATES)
			p->count[proto_idx(s->proto)][s->state]++;
		if (port) {
			if (net_ss_port(&s->local) != port)
				continue;
			if (s->inode == 0) {
				p->nkernel += s->proto == IPPROTO_TCP;
				continue;
			}
		} else if (f->sport && net_ss_port(&s->local) != f->sport) {
			continue;
		} else if (f->states) {
			if (!(f->states & SOCKDIAG_STATE(s->state)))
				continue;
		} else if (!listener && !(flags & DIAG_PORTS_ALL)) {
			continue;
		}
		p->rows[k].s = s;
		p->rows[k].key = row_key(s, listener);
		/* a TCP socket bound without listening (UNCONN) accepts nothing: not exposed */
		p->rows[k].exposed = diag_addr_exposed(&s->local) &&
		                     !(s->proto == IPPROTO_TCP &&
		                       (s->state == TCP_CLOSE || s->state == SOCKDIAG_TCP_BOUND_INACTIVE));
		inodes[k] = s->inode;
		k++;
	}
	p->nrows = k;
	if (port && p->nkernel)
		kernel_held(p, n, port);
	if (k && procfs_owner_map_build(&p->map, inodes, k, err, errlen) < 0)
		goto fail;
	free(inodes);
	inodes = NULL;
	qsort(p->rows, p->nrows, sizeof *p->rows, row_cmp);
	/* Every link names one (inode, pid): nlinks pointers are enough for all rows. */
	p->owner_ptrs = calloc(p->map.nlinks + 1, sizeof *p->owner_ptrs);
	if (!p->owner_ptrs) {
		snprintf(err, errlen, "ports: out of memory");
		goto fail;
	}
	size_t used = 0;
	for (size_t i = 0; i < p->nrows; i++) {
		struct diag_port_row *r = &p->rows[i];

		r->owners = p->owner_ptrs + used;
		r->nowners = r->s->inode ? procfs_owner_map_find(&p->map, r->s->inode, r->owners,
		                                                 p->map.nlinks - used)
		                         : 0;
		used += r->nowners;
	}
	return 0;
fail:
	free(inodes);
	diag_ports_free(p);
	return -1;
}

void diag_ports_free(struct diag_ports *p)
{
	free(p->rows);
	free(p->socks);
	free(p->owner_ptrs);
	procfs_owner_map_free(&p->map);
	memset(p, 0, sizeof *p);
}

static const char *proto_name(const struct sockdiag_sock *s)
{
	if (s->proto == IPPROTO_UDP)
		return s->family == AF_INET6 ? "udp6" : "udp";
	return s->family == AF_INET6 ? "tcp6" : "tcp";
}

/* Names looked up once per rendering: thousands of rows share a few uids. */
#define UID_CACHE 8
struct uid_cache {
	uint32_t uid[UID_CACHE];
	char name[UID_CACHE][PROCFS_USER_MAX];
	int n;
};

/* The user name of uid (or the uid in decimal), for sockets whose owner is unknown. */
static const char *uid_name(struct uid_cache *c, uint32_t uid)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	int i;

	for (i = 0; i < c->n; i++)
		if (c->uid[i] == uid)
			return c->name[i];
	i = c->n < UID_CACHE ? c->n++ : UID_CACHE - 1;
	c->uid[i] = uid;
	if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res && res->pw_name)
		snprintf(c->name[i], sizeof c->name[i], "%s", res->pw_name);
	else
		snprintf(c->name[i], sizeof c->name[i], "%u", uid);
	return c->name[i];
}

/* A line under construction: columns are copied and padded by hand, since printf's
 * padding dominated the time of a 40,000-socket listing. */
struct line {
	char b[1024];
	size_t n;
};

/* Appends s and pads to width (at least one space follows). */
static void col(struct line *l, const char *s, size_t width)
{
	size_t k = strlen(s);

	if (k > sizeof l->b - 64 - l->n)
		k = sizeof l->b - 64 - l->n;
	memcpy(l->b + l->n, s, k);
	l->n += k;
	do
		l->b[l->n++] = ' ';
	while (k++ < width);
}

/* v in decimal without printf. */
static char *utoa_fast(uint32_t v, char *buf)
{
	char *p = buf + 11;

	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10));
	return p;
}

/* "127.0.0.1:80" / "[::1]:80" without printf. */
static char *addr_fast(const struct sockaddr_storage *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN], digits[8];
	const void *a = sa->ss_family == AF_INET
	                        ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
	                        : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	unsigned port = net_ss_port(sa);
	size_t n = 0, h, d = sizeof digits;

	if (len < INET6_ADDRSTRLEN + 10 || !inet_ntop(sa->ss_family, a, host, sizeof host))
		return net_ss_text(sa, buf, len);
	h = strlen(host);
	if (sa->ss_family == AF_INET6)
		buf[n++] = '[';
	memcpy(buf + n, host, h);
	n += h;
	if (sa->ss_family == AF_INET6)
		buf[n++] = ']';
	buf[n++] = ':';
	do
		digits[--d] = (char)('0' + port % 10);
	while ((port /= 10) && d > 0);
	memcpy(buf + n, digits + d, sizeof digits - d);
	n += sizeof digits - d;
	buf[n] = '\0';
	return buf;
}

void diag_ports_print(FILE *f, const struct diag_ports *p, unsigned flags, int color)
{
	int all = (flags & DIAG_PORTS_ALL) != 0;
	struct uid_cache uc = {.n = 0};

	if (all)
		fprintf(f, "%-5s %-28s %-28s %-7s %-7s %-11s %-8s %-10s %s\n", "PROTO", "LOCAL", "REMOTE",
		        "RECV-Q", "SEND-Q", "STATE", "PID", "USER", "PROCESS");
	else
		fprintf(f, "%-5s %-28s %-7s %-7s %-11s %-8s %-10s %s\n", "PROTO", "LOCAL", "RECV-Q", "SEND-Q",
		        "STATE", "PID", "USER", "PROCESS");
	for (size_t i = 0; i < p->nrows; i++) {
		const struct diag_port_row *r = &p->rows[i];
		char addr[80];
		struct line l;

		l.n = 0;
		col(&l, proto_name(r->s), 5);
		if (r->s->local.ss_family == AF_INET6 && r->s->v6only == 0 &&
		    net_is_wildcard((const struct sockaddr *)&r->s->local)) {
			/* as ss: a dual-stack wildcard (IPv4 too) is "*", a v6-only one "[::]" */
			char star[16];
			snprintf(star, sizeof star, "*:%u", net_ss_port(&r->s->local));
			col(&l, star, 28);
		} else {
			col(&l, addr_fast(&r->s->local, addr, sizeof addr), 28);
		}
		if (all) {
			if (net_ss_port(&r->s->remote) == 0 &&
			    net_is_wildcard((const struct sockaddr *)&r->s->remote))
				col(&l, "*", 28);
			else
				col(&l, addr_fast(&r->s->remote, addr, sizeof addr), 28);
		}
		char q[12];
		col(&l, utoa_fast(r->s->rqueue, q), 7); /* a listener's: accept queue, backlog */
		col(&l, utoa_fast(r->s->wqueue, q), 7);
		col(&l, sockdiag_state_name(r->s->state), 11);
		if (r->nowners) {
			const struct procfs_owner *o = r->owners[0];
			char pid[16];

			snprintf(pid, sizeof pid, "%d", (int)o->pid);
			col(&l, pid, 8);
			col(&l, o->user, 10);
			if (r->nowners > 1) {
				char proc[PROCFS_COMM_MAX + 32];
				snprintf(proc, sizeof proc, "%s (+%zu)", o->comm, r->nowners - 1);
				col(&l, proc, 0);
			} else {
				col(&l, o->comm, 0);
			}
		} else {
			col(&l, "-", 8);
			/* a TIME-WAIT (or half-open) socket has no inode and no owner: not root's */
			col(&l, r->s->inode ? uid_name(&uc, r->s->uid) : "-", 10);
			col(&l, "-", 0);
		}
		l.n--; /* the space after the last column */
		if (r->exposed) {
			const char *e = color ? "  " C_BOLD C_RED "EXPOSED" C_OFF : "  EXPOSED";
			memcpy(l.b + l.n, e, strlen(e));
			l.n += strlen(e);
		}
		l.b[l.n++] = '\n';
		fwrite(l.b, 1, l.n, f);
	}
	if (all && !(flags & DIAG_PORTS_NO_SUMMARY)) {
		fprintf(f, "\n");
		for (int pr = 0; pr < 2; pr++) {
			int any = 0;

			for (int st = 0; st < DIAG_PORTS_STATES; st++) {
				if (!p->count[pr][st])
					continue;
				fprintf(f, "%s %s %zu", any ? "," : (pr ? "udp:" : "tcp:"),
				        sockdiag_state_name(st), p->count[pr][st]);
				any = 1;
			}
			if (any)
				fputc('\n', f);
		}
	}
}

static void json_owner(struct json *j, const struct procfs_owner *o)
{
	json_obj_begin(j);
	json_kint(j, "pid", o->pid);
	json_kstr(j, "user", o->user);
	json_kuint(j, "uid", o->uid);
	json_kstr(j, "comm", o->comm);
	json_kstr(j, "cmdline", o->cmdline);
	json_obj_end(j);
}

static void json_row(struct json *j, const struct diag_port_row *r, struct uid_cache *uc)
{
	char a[64];

	json_obj_begin(j);
	json_kstr(j, "proto", r->s->proto == IPPROTO_UDP ? "udp" : "tcp");
	json_kstr(j, "family", r->s->family == AF_INET6 ? "ipv6" : "ipv4");
	json_kstr(j, "local_addr", net_addr_str((const struct sockaddr *)&r->s->local, a, sizeof a));
	json_kuint(j, "local_port", net_ss_port(&r->s->local));
	json_kstr(j, "remote_addr", net_addr_str((const struct sockaddr *)&r->s->remote, a, sizeof a));
	json_kuint(j, "remote_port", net_ss_port(&r->s->remote));
	json_kstr(j, "state", sockdiag_state_name(r->s->state));
	json_kuint(j, "recv_q", r->s->rqueue);
	json_kuint(j, "send_q", r->s->wqueue);
	json_kbool(j, "exposed", r->exposed);
	if (r->s->family == AF_INET6) {
		json_key(j, "v6only");
		if (r->s->v6only < 0)
			json_null(j);
		else
			json_bool(j, r->s->v6only);
	}
	json_kuint(j, "inode", r->s->inode);
	if (r->s->inode) {
		json_kuint(j, "uid", r->s->uid);
		json_kstr(j, "user", uid_name(uc, r->s->uid));
	} else { /* TIME-WAIT: no socket object, no owner */
		json_key(j, "uid");
		json_null(j);
		json_key(j, "user");
		json_null(j);
	}
	json_key(j, "owners");
	json_arr_begin(j);
	for (size_t k = 0; k < r->nowners; k++)
		json_owner(j, r->owners[k]);
	json_arr_end(j);
	json_obj_end(j);
}

int diag_ports_json(struct buf *b, const struct diag_ports *p)
{
	struct uid_cache uc = {.n = 0};
	struct json j;

	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_key(&j, "sockets");
	json_arr_begin(&j);
	for (size_t i = 0; i < p->nrows; i++)
		json_row(&j, &p->rows[i], &uc);
	json_arr_end(&j);
	json_key(&j, "counts");
	json_obj_begin(&j);
	for (int pr = 0; pr < 2; pr++) {
		json_key(&j, pr ? "udp" : "tcp");
		json_obj_begin(&j);
		for (int st = 0; st < DIAG_PORTS_STATES; st++) {
			if (!p->count[pr][st])
				continue;
			json_key(&j, sockdiag_state_name(st));
			json_uint(&j, p->count[pr][st]);
		}
		json_obj_end(&j);
	}
	json_obj_end(&j);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}

/* The distinct processes of the rows, ascending pid; *n set. Caller frees. */
static const struct procfs_owner **who_procs(const struct diag_ports *p, size_t *n)
{
	const struct procfs_owner **v = calloc(p->map.nowners + 1, sizeof *v);

	*n = 0;
	if (!v)
		return NULL;
	/* map.owners holds only owners of the rows' inodes, already ascending by pid. */
	for (size_t i = 0; i < p->map.nowners; i++)
		v[(*n)++] = &p->map.owners[i];
	return v;
}

void diag_who_print(FILE *f, const struct diag_ports *p, uint16_t port, int color)
{
	size_t n;
	const struct procfs_owner **procs;
	int unknown = 0;

	char held[160], addr[64], other[64];
	if (p->nkernel) {
		procfs_kernel_held_text(p->kernel_state, held, sizeof held);
		net_addr_str((const struct sockaddr *)&p->kernel_addr, addr, sizeof addr);
		snprintf(other, sizeof other, "%s",
		         p->kernel_addr.ss_family == AF_INET ? "::1" : "127.0.0.1");
	}
	if (p->nrows == 0) {
		if (!p->nkernel)
			fprintf(f, "port %u: free (no socket holds it)\n", port);
		else if (p->kernel_blocks)
			fprintf(f,
			        "port %u on %s is held by %s; no process holds it, yet a server's bind there "
			        "fails "
			        "until then\n",
			        port, addr, held);
		else if (p->kernel_twin_blocks)
			fprintf(f,
			        "port %u: free for a server (servers bind with SO_REUSEADDR); left on %s: "
			        "%s. It "
			        "keeps out loopkit's listeners on %s until then: they hold %s too, without "
			        "that "
			        "option\n",
			        port, addr, held, other, addr);
		else
			fprintf(f,
			        "port %u: free for a server (servers bind with SO_REUSEADDR); left on %s: "
			        "%s\n",
			        port, addr, held);
		return;
	}
	procs = who_procs(p, &n);
	fprintf(f, "port %u is held by:\n", port);
	for (size_t i = 0; procs && i < n; i++)
		fprintf(f, "  %s%s%s (pid %d, user %s): %s\n", color ? C_BOLD : "", procs[i]->comm,
		        color ? C_OFF : "", (int)procs[i]->pid, procs[i]->user,
		        procs[i]->cmdline[0] ? procs[i]->cmdline : "-");
	for (size_t i = 0; i < p->nrows; i++)
		unknown |= p->rows[i].nowners == 0;
	if (unknown && procfs_unseen_where())
		fprintf(f,
		        "  (some sockets belong to a process %s, which root cannot see from "
		        "here; look for it there)\n",
		        procfs_unseen_where());
	else if (unknown)
		fprintf(f, "  (some sockets belong to processes this user cannot see; run as root "
		           "to name them)\n");
	free(procs);
	if (p->kernel_blocks)
		fprintf(f, "  and on %s, with no process: %s\n", addr, held);
	fprintf(f, "\n");
	/* Only the port's sockets: the machine's counts per state would read as the
	 * port's own. */
	diag_ports_print(f, p, DIAG_PORTS_ALL | DIAG_PORTS_NO_SUMMARY, color);
}

int diag_who_json(struct buf *b, const struct diag_ports *p, uint16_t port)
{
	struct uid_cache uc = {.n = 0};
	struct json j;
	size_t n = 0;
	const struct procfs_owner **procs = who_procs(p, &n);

	if (!procs)
		return -1;
	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_kuint(&j, "port", port);
	json_kbool(&j, "free", p->nrows == 0 && !p->kernel_blocks);
	json_key(&j, "kernel"); /* sockets no process holds: what is left of closed connections */
	if (p->nkernel) {
		json_obj_begin(&j);
		char addr[64];
		net_addr_str((const struct sockaddr *)&p->kernel_addr, addr, sizeof addr);
		json_kuint(&j, "sockets", p->nkernel);
		json_kstr(&j, "address", addr);
		json_kstr(&j, "state", sockdiag_state_name(p->kernel_state));
		json_kbool(&j, "blocks_bind", p->kernel_blocks);
		json_kbool(&j, "blocks_twin", p->kernel_twin_blocks);
		json_obj_end(&j);
	} else {
		json_null(&j);
	}
	json_key(&j, "processes");
	json_arr_begin(&j);
	for (size_t i = 0; i < n; i++)
		json_owner(&j, procs[i]);
	json_arr_end(&j);
	json_key(&j, "sockets");
	json_arr_begin(&j);
	for (size_t i = 0; i < p->nrows; i++)
		json_row(&j, &p->rows[i], &uc);
	json_arr_end(&j);
	json_obj_end(&j);
	free(procs);
	return j.err ? -1 : 0;
}
