/* portlease.c - port leases: the pool outside the ephemeral range, lease files, bind checks. */
#include "diag/portlease.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/net.h"

const char *portlease_iana_class(uint16_t port)
{
	if (port < 1024)
		return "system";
	if (port < 49152)
		return "user";
	return "dynamic";
}

int portlease_ephemeral(struct portlease_range *r)
{
	unsigned lo, hi;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	int ok = f && fscanf(f, "%u %u", &lo, &hi) == 2 && lo <= hi && hi <= 65535;

	if (f)
		fclose(f);
	if (!ok) {
		r->lo = 32768;
		r->hi = 60999;
		return -1;
	}
	r->lo = (uint16_t)lo;
	r->hi = (uint16_t)hi;
	return 0;
}

size_t portlease_pool(struct portlease_range want, struct portlease_range eph, struct portlease_range out[2])
{
	size_t n = 0;

	if (want.lo > want.hi)
		return 0;
	if (eph.lo > eph.hi || eph.hi < want.lo || eph.lo > want.hi) {
		out[n++] = want;
		return n;
	}
	if (want.lo < eph.lo)
		out[n++] = (struct portlease_range){want.lo, (uint16_t)(eph.lo - 1)};
	if (want.hi > eph.hi)
		out[n++] = (struct portlease_range){(uint16_t)(eph.hi + 1), want.hi};
	return n;
}

int portlease_parse(const char *s, size_t n, struct portlease *l)
{
	char tmp[128];
	unsigned port;
	long long expires, pid;
	unsigned long long start;
	int used = 0;

	if (n == 0 || n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (sscanf(tmp, "%u %lld %lld %llu%n", &port, &expires, &pid, &start, &used) != 4)
		return -1;
	if (port == 0 || port > 65535 || expires < 0 || pid < 0 || pid > 0x3fffffff)
		return -1;
	if (tmp[used] != '\0' && strcmp(tmp + used, "\n") != 0)
		return -1;
	l->port = (uint16_t)port;
	l->expires = expires;
	l->pid = (pid_t)pid;
	l->start = start;
	return 0;
}

int portlease_format(const struct portlease *l, char *buf, size_t len)
{
	int k = snprintf(buf, len, "%u %" PRId64 " %d %" PRIu64 "\n", l->port, l->expires, (int)l->pid,
	                 l->start);

	return k < 0 || (size_t)k >= len ? -1 : k;
}

int portlease_live(const struct portlease *l, int64_t now, uint64_t pid_start)
{
	if (l->expires > now)
		return 1;
	if (l->pid > 0 && l->expires == 0)
		return pid_start != 0 && pid_start == l->start;
	return 0;
}

int64_t portlease_expiry(struct timespec now, unsigned secs)
{
	return (int64_t)now.tv_sec + (int64_t)secs + (now.tv_nsec > 0);
}

int portlease_proc_start(pid_t pid, uint64_t *start)
{
	char path[64], buf[1024];
	ssize_t r;
	int fd;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	/* comm (field 2) may hold spaces and ')': fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	/* Now at field 3; field 22 is 19 fields further. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	char *end;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (end == p + 1)
		return -1;
	*start = v;
	return 0;
}

/* mkdir 0700 unless it exists; then it must be a directory of ours, not writable by
 * others (a symlink or someone else's directory in /tmp would let them steer us). */
static int own_dir(const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "create %s: %s", path, strerror(errno));
		return -1;
	}
	if (lstat(path, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 022)) {
		snprintf(err, errlen, "%s is not a private directory of this user; remove it", path);
		return -1;
	}
	return 0;
}

int portlease_in_pool(const struct portlease_range *pool, size_t npool, uint16_t port)
{
	for (size_t i = 0; i < npool; i++)
		if (port >= pool[i].lo && port <= pool[i].hi)
			return 1;
	return 0;
}

int portlease_dir(char *buf, size_t len, char *err, size_t errlen)
{
	const char *rt = getenv("XDG_RUNTIME_DIR"), *home = getenv("HOME");
	char base[4096], why[512] = "";
	struct stat sb;
	int k = -1;

	/* XDG_RUNTIME_DIR is private by construction. Without it, /tmp/loopkit-UID — which
	 * another user can create first, so it must be ours and private — and, when it
	 * is not, a directory under HOME that nobody else can take. */
	if (rt && rt[0] == '/' && stat(rt, &sb) == 0 && S_ISDIR(sb.st_mode) && sb.st_uid == geteuid())
		k = snprintf(base, sizeof base, "%s/loopkit", rt);
	if (k < 0 || (size_t)k >= sizeof base || own_dir(base, why, sizeof why) < 0) {
		char tmp[64];
		snprintf(tmp, sizeof tmp, "/tmp/loopkit-%u", (unsigned)geteuid());
		snprintf(base, sizeof base, "%s", tmp); /* fits: base is far larger */
		if (own_dir(base, why, sizeof why) < 0) {
			if (!home || home[0] != '/') {
				snprintf(err, errlen, "%s, and HOME is not set for a private fallback", why);
				return -1;
			}
			k = snprintf(base, sizeof base, "%s/.cache", home);
			if (k < 0 || (size_t)k >= sizeof base || (mkdir(base, 0700) < 0 && errno != EEXIST)) {
				snprintf(err, errlen, "%s; and %s/.cache cannot be created", why, home);
				return -1;
			}
			k = snprintf(base, sizeof base, "%s/.cache/loopkit", home);
			if (k < 0 || (size_t)k >= sizeof base || own_dir(base, err, errlen) < 0)
				return -1;
			fprintf(stderr, "loopkit: %s is not this user's (%s); using %s\n", tmp, why, base);
		}
	}
	k = snprintf(buf, len, "%s/ports", base);
	if (k < 0 || (size_t)k >= len) {
		snprintf(err, errlen, "lease directory path too long");
		return -1;
	}
	return own_dir(buf, err, errlen);
}

/* 1 when bindable, 0 when in use, -1 when the family is not available. */
static int try_bind(int family, int type, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, ok;

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = in6addr_loopback;
		sl = sizeof *s6;
	}
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	ok = bind(fd, (struct sockaddr *)&ss, sl) == 0;
	if (!ok && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
		close(fd);
		return -1;
	}
	if (ok && type == SOCK_STREAM)
		ok = listen(fd, 1) == 0;
	close(fd);
	return ok;
}

int portlease_bindable(uint16_t port, unsigned need)
{
	static const int fams[] = {AF_INET, AF_INET6};

	for (size_t f = 0; f < 2; f++) {
		if ((need & PORTLEASE_TCP) && try_bind(fams[f], SOCK_STREAM, port) == 0)
			return 0;
		if ((need & PORTLEASE_UDP) && try_bind(fams[f], SOCK_DGRAM, port) == 0)
			return 0;
	}
	return 1;
}

/* Takes the directory's lock, waiting at most PORTLEASE_LOCK_WAIT_MS. Returns the fd. */
static int lock_dir(const char *dir, char *err, size_t errlen)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof path, "%s/.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	for (int waited = 0;; waited += 2) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		if (waited >= PORTLEASE_LOCK_WAIT_MS) {
			errno = ETIMEDOUT;
			break;
		}
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	snprintf(err, errlen, "lock %s: %s", path, strerror(errno));
	close(fd);
	return -1;
}

/* 1 when port has a live lease in dir; an expired lease file is removed. */
static int leased(int dfd, uint16_t port, int64_t now)
{
	char name[16], buf[128];
	struct portlease l;
	uint64_t start = 0;
	ssize_t r;
	int fd;

	snprintf(name, sizeof name, "%u", port);
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r > 0 && portlease_parse(buf, (size_t)r, &l) == 0 && l.port == port) {
		if (l.pid > 0 && portlease_proc_start(l.pid, &start) < 0)
			start = 0;
		if (portlease_live(&l, now, start))
			return 1;
	}
	unlinkat(dfd, name, 0); /* expired or unreadable: the port is free to lease again */
	return 0;
}

static int write_lease(int dfd, const struct portlease *l)
{
	char name[16], tmp[48], line[128];
	int fd, k = portlease_format(l, line, sizeof line), ok;

	snprintf(name, sizeof name, "%u", l->port);
	snprintf(tmp, sizeof tmp, ".%u.%d.tmp", l->port, (int)getpid());
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || k < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ok = write(fd, line, (size_t)k) == k;
	ok &= close(fd) == 0;
	if (!ok || renameat(dfd, tmp, dfd, name) < 0) {
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	return 0;
}

int portlease_take(const char *dir, const struct portlease_range *pool, size_t npool, size_t count,
                   unsigned need, const struct portlease *tmpl, uint16_t *out, char *err, size_t errlen)
{
	size_t total = 0, got = 0;
	uint32_t rnd = 0;
	int dfd, lfd;

	for (size_t i = 0; i < npool; i++)
		if (pool[i].lo <= pool[i].hi)
			total += (size_t)pool[i].hi - pool[i].lo + 1;
	if (total == 0 || count == 0)
		return 0;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		snprintf(err, errlen, "open %s: %s", dir, strerror(errno));
		return -1;
	}
	lfd = lock_dir(dir, err, errlen);
	if (lfd < 0) {
		close(dfd);
		return -1;
	}
	if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
		rnd = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
	int64_t now = (int64_t)time(NULL);
	/* Each pool port is looked at once at most: the loop is bounded by the pool. */
	for (size_t step = 0; step < total && got < count; step++) {
		size_t idx = (rnd + step) % total;
		uint16_t port = 0;

		for (size_t i = 0; i < npool; i++) {
			size_t sz = pool[i].lo <= pool[i].hi ? (size_t)pool[i].hi - pool[i].lo + 1 : 0;
			if (idx < sz) {
				port = (uint16_t)(pool[i].lo + idx);
				break;
			}
			idx -= sz;
		}
		if (port == 0 || leased(dfd, port, now) || !portlease_bindable(port, need))
			continue;
		struct portlease l = *tmpl;
		l.port = port;
		if (write_lease(dfd, &l) < 0) {
			snprintf(err, errlen, "write lease in %s: %s", dir, strerror(errno));
			got = (size_t)-1;
			break;
		}
		out[got++] = port;
	}
	close(lfd); /* releases the lock */
	close(dfd);
	return got == (size_t)-1 ? -1 : (int)got;
}

/* One leased port for a listener asked for port 0; 0 when none could be leased. */
static uint16_t pick_one(void)
{
	char dir[512], err[256];
	struct portlease_range eph, pool[2], want = {PORTLEASE_POOL_LO, PORTLEASE_POOL_HI};
	uint16_t port = 0;
	if (portlease_dir(dir, sizeof dir, err, sizeof err) < 0)
		return 0;
	portlease_ephemeral(&eph);
	size_t np = portlease_pool(want, eph, pool);
	struct portlease tmpl = {.pid = getpid()};
	portlease_proc_start(getpid(), &tmpl.start);
	if (!np || portlease_take(dir, pool, np, 1, PORTLEASE_TCP, &tmpl, &port, err, sizeof err) != 1)
		return 0;
	return port;
}

int portlease_listen_loopback(struct sockaddr_storage *ss, socklen_t len, int backlog, int *twin,
                              struct sockaddr_storage *failed, char *err, size_t errlen)
{
	uint16_t pick = net_ss_port(ss) ? 0 : pick_one();
	if (pick)
		net_ss_set_port(ss, pick);
	int fd = net_listen_loopback((struct sockaddr *)ss, len, backlog, twin, failed, err, errlen);
	if (fd < 0 && pick && errno == EADDRINUSE) {
		net_ss_set_port(ss, 0);
		fd = net_listen_loopback((struct sockaddr *)ss, len, backlog, twin, failed, err, errlen);
	}
	return fd;
}
