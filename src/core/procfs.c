/* procfs.c - which processes hold which sockets, read from /proc. */
#include "core/procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sched.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/net.h"
#include "core/sockdiag.h"
#include "core/vec.h"

#define DIAG_STATUS_BUF 2048 /* enough of /proc/PID/status to reach the Uid: line */
#define DIAG_PW_BUF     2048 /* getpwuid_r scratch; a larger entry falls back to the uid */
#define DIAG_TEXT_SHOWN 4    /* holders named by procfs_port_holder_text before ", ..." */
/* a listener, or a socket bound to the port without listening */
#define DIAG_LISTENER_STATES \
	(SOCKDIAG_STATE(TCP_LISTEN) | SOCKDIAG_STATE(TCP_CLOSE) | SOCKDIAG_STATE(SOCKDIAG_TCP_BOUND_INACTIVE))
#define DIAG_CONN_STATES (SOCKDIAG_STATE_ALL & ~DIAG_LISTENER_STATES) /* a connection's */

/* The state of one /proc scan while it runs. */
struct diag_scan {
	const uint32_t *want; /* sorted, unique; NULL: every socket */
	size_t nwant;
	struct procfs_owner_map *map;
	size_t owners_cap, links_cap;
	int procfd;
};

/* Turns bytes a terminal would interpret (control bytes, DEL) into '?'. */
static void diag_clean(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* ---- /proc ---- */

/* Reads up to cap bytes of the file procfd/path. Returns the count, or -1. */
static ssize_t diag_read_file(int procfd, const char *path, char *buf, size_t cap)
{
	size_t got = 0;
	int fd, e;

	fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return (ssize_t)got;
}

/* Parses "socket:[12345]" into *inode. Returns 1 on a match, else 0. */
static int diag_parse_socket_link(const char *s, uint32_t *inode)
{
	static const char prefix[] = "socket:[";
	unsigned long long v = 0;
	const char *p;

	if (strncmp(s, prefix, sizeof prefix - 1) != 0)
		return 0;
	p = s + sizeof prefix - 1;
	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > UINT32_MAX)
			return 0;
	}
	if (p[0] != ']' || p[1] != '\0')
		return 0;
	*inode = (uint32_t)v;
	return 1;
}

/* Parses a /proc entry name as a pid; 0 when it is not one. */
static pid_t diag_parse_pid(const char *s)
{
	long v = 0;

	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (*s - '0');
		if (v > 0x3fffffff) /* above PID_MAX_LIMIT */
			return 0;
	}
	return (pid_t)v;
}

static int diag_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int diag_link_cmp(const void *a, const void *b)
{
	const struct procfs_owner_link *x = a, *y = b;

	if (x->inode != y->inode)
		return (x->inode > y->inode) - (x->inode < y->inode);
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static int diag_owner_cmp(const void *a, const void *b)
{
	const struct procfs_owner *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static void diag_user_name(uint32_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[DIAG_PW_BUF];

	if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof tmp, &res) == 0 && res && res->pw_name &&
	    res->pw_name[0]) {
		snprintf(buf, len, "%s", res->pw_name);
		diag_clean(buf);
	} else {
		snprintf(buf, len, "%u", uid);
	}
}

/* Effective uid of pid from its status file, or the owner of /proc/PID. */
static int diag_proc_uid(int procfd, pid_t pid, uint32_t *uid)
{
	char path[32], st[DIAG_STATUS_BUF + 1];
	unsigned long real, eff;
	struct stat sb;
	ssize_t r;

	snprintf(path, sizeof path, "%d/status", (int)pid);
	r = diag_read_file(procfd, path, st, DIAG_STATUS_BUF);
	if (r > 0) {
		st[r] = '\0';
		const char *p = strstr(st, "\nUid:");

		if (p && sscanf(p + 5, "%lu %lu", &real, &eff) == 2) {
			*uid = (uint32_t)eff;
			return 0;
		}
	}
	snprintf(path, sizeof path, "%d", (int)pid);
	if (fstatat(procfd, path, &sb, 0) < 0)
		return -1;
	*uid = (uint32_t)sb.st_uid;
	return 0;
}

/* Fills o for pid. Returns 0, or -1 when the process is gone. */
static int diag_owner_read(struct diag_scan *sc, pid_t pid, struct procfs_owner *o)
{
	char path[32];
	ssize_t r;

	memset(o, 0, sizeof *o);
	o->pid = pid;

	snprintf(path, sizeof path, "%d/comm", (int)pid);
	r = diag_read_file(sc->procfd, path, o->comm, sizeof o->comm - 1);
	if (r < 0)
		return -1;
	o->comm[r] = '\0';
	if (r > 0 && o->comm[r - 1] == '\n')
		o->comm[r - 1] = '\0';
	diag_clean(o->comm);

	/* Arguments are NUL-separated; kernel threads and zombies have none. */
	snprintf(path, sizeof path, "%d/cmdline", (int)pid);
	r = diag_read_file(sc->procfd, path, o->cmdline, sizeof o->cmdline - 1);
	if (r < 0)
		r = 0;
	while (r > 0 && o->cmdline[r - 1] == '\0')
		r--;
	for (ssize_t i = 0; i < r; i++)
		if (o->cmdline[i] == '\0')
			o->cmdline[i] = ' ';
	o->cmdline[r] = '\0';
	diag_clean(o->cmdline);

	if (diag_proc_uid(sc->procfd, pid, &o->uid) < 0)
		return -1;
	/* Many sockets share few users: reuse a name already looked up in this scan. */
	for (size_t i = 0; i < sc->map->nowners; i++) {
		if (sc->map->owners[i].uid == o->uid) {
			memcpy(o->user, sc->map->owners[i].user, sizeof o->user);
			return 0;
		}
	}
	diag_user_name(o->uid, o->user, sizeof o->user);
	return 0;
}

static int diag_wanted(const struct diag_scan *sc, uint32_t inode)
{
	if (!sc->want)
		return 1;
	return bsearch(&inode, sc->want, sc->nwant, sizeof *sc->want, diag_u32_cmp) != NULL;
}

/* Records the wanted sockets pid holds. Returns 0 (also when the process cannot be
 * read), -1 on out of memory. */
static int diag_scan_pid(struct diag_scan *sc, pid_t pid)
{
	struct procfs_owner_map *map = sc->map;
	size_t first = map->nlinks;
	struct dirent *de;
	char path[32];
	DIR *dir;
	int dfd;

	snprintf(path, sizeof path, "%d/fd", (int)pid);
	dfd = openat(sc->procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0; /* EACCES: someone else's process; ENOENT: it exited */
	dir = fdopendir(dfd);
	if (!dir) {
		int e = errno;

		close(dfd);
		errno = e;
		return e == ENOMEM ? -1 : 0;
	}
	while ((de = readdir(dir)) != NULL) {
		char lnk[64];
		uint32_t inode;
		ssize_t k;

		if (de->d_name[0] == '.')
			continue;
		k = readlinkat(dfd, de->d_name, lnk, sizeof lnk - 1);
		if (k <= 0)
			continue; /* closed meanwhile */
		lnk[k] = '\0';
		if (!diag_parse_socket_link(lnk, &inode) || inode == 0 || !diag_wanted(sc, inode))
			continue;
		if (vec_grow((void **)&map->links, &sc->links_cap, map->nlinks + 1, sizeof *map->links) < 0) {
			closedir(dir);
			errno = ENOMEM;
			return -1;
		}
		map->links[map->nlinks].inode = inode;
		map->links[map->nlinks].pid = pid;
		map->nlinks++;
	}
	closedir(dir);
	if (map->nlinks == first)
		return 0;

	if (vec_grow((void **)&map->owners, &sc->owners_cap, map->nowners + 1, sizeof *map->owners) < 0) {
		errno = ENOMEM;
		return -1;
	}
	if (diag_owner_read(sc, pid, &map->owners[map->nowners]) < 0) {
		map->nlinks = first; /* it exited: it holds nothing now */
		return 0;
	}
	map->nowners++;
	return 0;
}

unsigned procfs_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set); /* taskset -c 0: one */
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

int procfs_owner_map_build(struct procfs_owner_map *map, const uint32_t *inodes, size_t n, char *err,
                           size_t errlen)
{
	struct diag_scan sc = {.map = map, .procfd = -1};
	uint32_t *want = NULL;
	DIR *proc;
	int rc = 0, e = 0;

	memset(map, 0, sizeof *map);
	if (inodes) {
		size_t k = 0;

		if (n == 0)
			return 0;
		want = n <= SIZE_MAX / sizeof *want ? malloc(n * sizeof *want) : NULL;
		if (!want) {
			vec_seterr(err, errlen, "owner map", ENOMEM);
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if (inodes[i] != 0)
				want[k++] = inodes[i];
		qsort(want, k, sizeof *want, diag_u32_cmp);
		sc.nwant = 0;
		for (size_t i = 0; i < k; i++)
			if (sc.nwant == 0 || want[sc.nwant - 1] != want[i])
				want[sc.nwant++] = want[i];
		if (sc.nwant == 0) {
			free(want);
			return 0;
		}
		sc.want = want;
	}

	proc = opendir("/proc");
	if (!proc) {
		vec_seterr(err, errlen, "open /proc", errno);
		free(want);
		return -1;
	}
	sc.procfd = dirfd(proc);
	for (;;) {
		struct dirent *de;
		pid_t pid;

		errno = 0;
		de = readdir(proc);
		if (!de) {
			if (errno != 0) {
				e = errno;
				vec_seterr(err, errlen, "read /proc", e);
				rc = -1;
			}
			break;
		}
		pid = diag_parse_pid(de->d_name);
		if (pid > 0 && diag_scan_pid(&sc, pid) < 0) {
			e = errno;
			vec_seterr(err, errlen, "scan /proc", e);
			rc = -1;
			break;
		}
	}
	closedir(proc);
	free(want);
	if (rc < 0) {
		procfs_owner_map_free(map);
		errno = e;
		return -1;
	}

	if (map->nlinks == 0)
		return 0;
	qsort(map->owners, map->nowners, sizeof *map->owners, diag_owner_cmp);
	qsort(map->links, map->nlinks, sizeof *map->links, diag_link_cmp);
	/* A process holding one socket through several fds (dup, fork) counts once. */
	{
		size_t k = 1;

		for (size_t i = 1; i < map->nlinks; i++)
			if (diag_link_cmp(&map->links[k - 1], &map->links[i]) != 0)
				map->links[k++] = map->links[i];
		map->nlinks = k;
	}
	return 0;
}

/* Index of the first link for inode, or map->nlinks when none. */
static size_t diag_map_first_link(const struct procfs_owner_map *map, uint32_t inode)
{
	size_t lo = 0, hi = map->nlinks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (map->links[mid].inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < map->nlinks && map->links[lo].inode == inode ? lo : map->nlinks;
}

static const struct procfs_owner *diag_map_owner(const struct procfs_owner_map *map, pid_t pid)
{
	struct procfs_owner key = {.pid = pid};

	if (map->nowners == 0)
		return NULL;
	return bsearch(&key, map->owners, map->nowners, sizeof *map->owners, diag_owner_cmp);
}

size_t procfs_owner_map_find(const struct procfs_owner_map *map, uint32_t inode,
                             const struct procfs_owner **out, size_t max)
{
	size_t got = 0;

	for (size_t i = diag_map_first_link(map, inode);
	     i < map->nlinks && map->links[i].inode == inode && got < max; i++) {
		const struct procfs_owner *o = diag_map_owner(map, map->links[i].pid);

		if (o)
			out[got++] = o;
	}
	return got;
}

void procfs_owner_map_free(struct procfs_owner_map *map)
{
	free(map->owners);
	free(map->links);
	memset(map, 0, sizeof *map);
}

int procfs_owner_find(uint32_t inode, struct procfs_owner *out)
{
	struct procfs_owner_map map;
	const struct procfs_owner *o;
	int found;

	memset(out, 0, sizeof *out);
	if (inode == 0)
		return 0;
	if (procfs_owner_map_build(&map, &inode, 1, NULL, 0) < 0)
		return -1;
	found = procfs_owner_map_find(&map, inode, &o, 1) == 1;
	if (found)
		*out = *o;
	procfs_owner_map_free(&map);
	return found;
}

int procfs_owner_of_pid(pid_t pid, struct procfs_owner *out)
{
	struct procfs_owner_map map = {0};
	struct diag_scan sc = {.map = &map};
	int rc;

	memset(out, 0, sizeof *out);
	if (pid <= 0)
		return 0;
	sc.procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sc.procfd < 0)
		return -1;
	rc = diag_owner_read(&sc, pid, out) == 0;
	close(sc.procfd);
	if (!rc)
		memset(out, 0, sizeof *out);
	return rc;
}

/* ---- port holders ---- */

static int diag_pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Sockets on a port that no process holds: what the kernel keeps after a close. */
struct diag_kernel_held {
	int timewait; /* a connection that ended waits out TIME-WAIT */
	int closing;  /* a closed connection still finishing (its state, else -1) */
};

/* procfs_port_holders, for the TCP states in tcp_states and sockets that keep a bind to
 * at out (NULL: any): one listing per protocol, then one /proc scan for just the matching
 * inodes. Sockets no process holds (inode 0) are not holders; they are noted in *kh when
 * it is given. */
/* Does a socket bound to local keep a bind to at out (at NULL: any address)? The same
 * address does, and a wildcard on either side: [::] of the other family too, as a
 * dual-stack socket covers IPv4. */
static int diag_overlaps(const struct sockaddr_storage *at, const struct sockaddr_storage *local)
{
	if (!at)
		return 1;
	struct sockaddr_storage a = *local, b = *at;
	net_ss_unmap(&a);
	net_ss_set_port(&b, net_ss_port(&a));
	if (a.ss_family != b.ss_family)
		return a.ss_family == AF_INET6 && net_is_wildcard((const struct sockaddr *)&a);
	return net_is_wildcard((const struct sockaddr *)&a) || net_is_wildcard((const struct sockaddr *)&b) ||
	       net_ss_same(&a, &b);
}

static int diag_port_holders(int proto, uint32_t tcp_states, uint16_t port, const struct sockaddr_storage *at,
                             struct procfs_owner *out, size_t max, struct diag_kernel_held *kh)
{
	struct sockdiag_sock *tcp = NULL, *udp = NULL;
	size_t ntcp = 0, nudp = 0, nmatch = 0, npids = 0, nuids = 0, got = 0;
	struct procfs_owner_map map = {0};
	uint32_t *inodes = NULL, *uids = NULL;
	pid_t *pids = NULL;
	int rc = -1, e = 0;

	if (proto != 0 && proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		errno = EINVAL;
		return -1;
	}
	if ((proto == 0 || proto == IPPROTO_TCP) &&
	    sockdiag_list(IPPROTO_TCP, tcp_states, &tcp, &ntcp, NULL, 0) < 0)
		return -1;
	if ((proto == 0 || proto == IPPROTO_UDP) &&
	    sockdiag_list(IPPROTO_UDP, SOCKDIAG_STATE_ALL, &udp, &nudp, NULL, 0) < 0) {
		e = errno;
		goto out;
	}

	inodes = malloc((ntcp + nudp + 1) * sizeof *inodes);
	uids = malloc((ntcp + nudp + 1) * sizeof *uids);
	if (!inodes || !uids) {
		e = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ntcp + nudp; i++) {
		const struct sockdiag_sock *s = i < ntcp ? &tcp[i] : &udp[i - ntcp];

		if (net_ss_port(&s->local) != port || !diag_overlaps(at, &s->local))
			continue;
		if (!s->inode && s->proto == IPPROTO_TCP) {
			if (kh && s->state == TCP_TIME_WAIT)
				kh->timewait = 1;
			else if (kh)
				kh->closing = s->state;
			continue;
		}
		inodes[nmatch] = s->inode;
		uids[nmatch] = s->uid;
		nmatch++;
	}
	if (nmatch == 0) {
		rc = 0;
		goto out;
	}
	if (procfs_owner_map_build(&map, inodes, nmatch, NULL, 0) < 0) {
		e = errno;
		goto out;
	}

	pids = malloc((map.nlinks + 1) * sizeof *pids);
	if (!pids) {
		e = ENOMEM;
		goto out;
	}
	/* Known processes by pid; for unreadable ones keep only the distinct socket uids
	 * (reusing uids[] from the front, which the loop has already read past). */
	for (size_t i = 0; i < nmatch; i++) {
		size_t l = diag_map_first_link(&map, inodes[i]);
		uint32_t uid = uids[i];
		int dup = 0;

		if (l < map.nlinks) {
			/* npids < nlinks holds since the kernel lists each inode once. */
			for (; l < map.nlinks && map.links[l].inode == inodes[i] && npids < map.nlinks; l++)
				pids[npids++] = map.links[l].pid;
			continue;
		}
		for (size_t j = 0; j < nuids; j++)
			dup |= uids[j] == uid;
		if (!dup)
			uids[nuids++] = uid;
	}
	qsort(pids, npids, sizeof *pids, diag_pid_cmp);
	for (size_t i = 0; i < npids && got < max; i++) {
		const struct procfs_owner *o;

		if (i > 0 && pids[i] == pids[i - 1])
			continue;
		o = diag_map_owner(&map, pids[i]);
		if (o)
			out[got++] = *o;
	}
	for (size_t j = 0; j < nuids && got < max; j++) {
		struct procfs_owner *o = &out[got++];

		memset(o, 0, sizeof *o);
		o->uid = uids[j];
		diag_user_name(uids[j], o->user, sizeof o->user);
	}
	rc = (int)got;
out:
	procfs_owner_map_free(&map);
	free(pids);
	free(uids);
	free(inodes);
	free(udp);
	free(tcp);
	if (rc < 0)
		errno = e;
	return rc;
}

int procfs_port_holders(int proto, uint16_t port, struct procfs_owner *out, size_t max)
{
	/* TCP: a listener holds the port, and so does a socket bound to it that does not
	 * listen (a bind of its own fails with EADDRINUSE; kernels from 6.9 list it, as
	 * ss --bound-inactive); connections do not. UDP: any socket bound to it. */
	return diag_port_holders(proto, DIAG_LISTENER_STATES, port, NULL, out, max, NULL);
}

/* procfs_owner_text with `more` saying holders exist beyond owners[0..n). */
static size_t diag_owner_text_more(const struct procfs_owner *owners, size_t n, int more, char *buf,
                                   size_t len)
{
	size_t used = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char one[PROCFS_COMM_MAX + 32];
		const char *sep = used ? ", " : "";
		int k;

		if (owners[i].pid == 0)
			continue;
		if (owners[i].comm[0])
			k = snprintf(one, sizeof one, "%s%s (pid %d)", sep, owners[i].comm,
			             (int)owners[i].pid);
		else
			k = snprintf(one, sizeof one, "%spid %d", sep, (int)owners[i].pid);
		if (k < 0 || used + (size_t)k >= len) {
			more = 1;
			break;
		}
		memcpy(buf + used, one, (size_t)k + 1);
		used += (size_t)k;
	}
	if (more && used > 0 && used + 5 < len) {
		memcpy(buf + used, ", ...", 6);
		used += 5;
	}
	return used;
}

const char *procfs_unseen_where(void)
{
	return geteuid() == 0 ? "in another pid namespace or container" : NULL;
}

size_t procfs_owner_text(const struct procfs_owner *owners, size_t n, char *buf, size_t len)
{
	return diag_owner_text_more(owners, n, 0, buf, len);
}

/* The holders of port in the given TCP states as text ("a connection of " before it when
 * conn); 0 when none is known. */
static size_t diag_holder_text(uint16_t port, const struct sockaddr_storage *at, uint32_t tcp_states,
                               int conn, struct diag_kernel_held *kh, char *buf, size_t len)
{
	struct procfs_owner holders[DIAG_TEXT_SHOWN + 1];
	char who[512];
	int n = diag_port_holders(IPPROTO_TCP, tcp_states, port, at, holders, DIAG_TEXT_SHOWN + 1, kh);
	if (n <= 0)
		return 0;
	/* Unknown holders sort last, so a fifth entry that is unknown adds nothing. */
	if (!diag_owner_text_more(holders, n > DIAG_TEXT_SHOWN ? DIAG_TEXT_SHOWN : (size_t)n,
	                          n > DIAG_TEXT_SHOWN && holders[DIAG_TEXT_SHOWN].pid != 0, who, sizeof who))
		return 0;
	int k = snprintf(buf, len, "%s%s", conn ? "a connection of " : "", who);
	return k < 0 ? 0 : (size_t)k;
}

size_t procfs_port_holder_text(uint16_t port, char *buf, size_t len)
{
	if (len > 0)
		buf[0] = '\0';
	return diag_holder_text(port, NULL, DIAG_LISTENER_STATES, 0, NULL, buf, len);
}

size_t procfs_port_blocker_text(const struct sockaddr_storage *at, uint16_t port, char *buf, size_t len)
{
	struct diag_kernel_held kh = {.closing = -1};
	size_t k;

	if (len > 0)
		buf[0] = '\0';
	if ((k = diag_holder_text(port, at, DIAG_LISTENER_STATES, 0, NULL, buf, len)) ||
	    (k = diag_holder_text(port, at, DIAG_CONN_STATES, 1, &kh, buf, len)))
		return k;
	if (!kh.timewait && kh.closing < 0)
		return 0;
	return procfs_kernel_held_text(kh.timewait ? TCP_TIME_WAIT : kh.closing, buf, len);
}

size_t procfs_kernel_held_text(int state, char *buf, size_t len)
{
	int n;
	if (state == TCP_TIME_WAIT) {
		n = snprintf(buf, len,
		             "a connection that ended, in TIME-WAIT (the kernel frees the port within %d s)",
		             PROCFS_TIME_WAIT_S);
	} else if (state == TCP_FIN_WAIT2) {
		/* closed first; its peer has not closed its end: the kernel waits tcp_fin_timeout */
		char t[32] = "";
		int fd = open("/proc/sys/net/ipv4/tcp_fin_timeout", O_RDONLY | O_CLOEXEC);
		ssize_t r = fd >= 0 ? read(fd, t, sizeof t - 1) : -1;
		if (fd >= 0)
			close(fd);
		long secs = r > 0 ? strtol(t, NULL, 10) : 0;
		n = snprintf(buf, len,
		             "a closed connection the kernel is still ending (FIN-WAIT-2: its peer has not "
		             "closed its end; freed within %ld s, net.ipv4.tcp_fin_timeout)",
		             secs > 0 ? secs : PROCFS_TIME_WAIT_S);
	} else {
		n = snprintf(buf, len, "a closed connection the kernel is still ending (%s)",
		             sockdiag_state_name(state));
	}
	return n < 0 ? 0 : (size_t)n;
}

size_t procfs_unix_holder_text(const char *name, char *buf, size_t len)
{
	char line[512];
	unsigned long inode = 0;
	if (len)
		buf[0] = 0;
	FILE *f = fopen("/proc/net/unix", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		/* Num RefCount Protocol Flags Type St Inode Path */
		char *path = strchr(line, '@');
		if (!path)
			continue;
		path[strcspn(path, "\n")] = 0;
		if (strcmp(path + 1, name))
			continue;
		char *p = line;
		for (int field = 0; field < 6 && p; field++) {
			p = strchr(p, ' ');
			while (p && *p == ' ')
				p++;
		}
		if (p)
			inode = strtoul(p, NULL, 10);
		break;
	}
	fclose(f);
	struct procfs_owner o;
	if (!inode || procfs_owner_find((uint32_t)inode, &o) != 1)
		return 0;
	return procfs_owner_text(&o, 1, buf, len);
}

unsigned procfs_open_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n > 2 ? n - 2 : 0; /* "." and ".." */
}
