/* procpeer.c - the process at the other end of a loopback connection, on its own thread.
 *
 * The kernel tells the client socket's inode and owner (one exact NETLINK_SOCK_DIAG
 * request); which process holds that inode is only in /proc/PID/fd. Reading every
 * process's descriptors for every connection would stall an event loop (a browser has
 * thousands), so all of it runs here, on one thread per server, and answers are posted
 * back to the asking loop. Two passes keep the cost down:
 *   fast: for each batch of questions, the processes likely to be FTP clients (known
 *         FTP programs, processes that logged in over FTP here, processes started in the
 *         last few seconds) are searched, at most PROCPEER_FAST_LINKS links;
 *   slow: at most once per PROCPEER_SLOW_EVERY_MS, every readable process (browsers
 *         first) is searched for the questions still open, at most PROCPEER_SLOW_LINKS
 *         links; what is not found then is UNKNOWN.
 * The process table (pids, names, classes) is kept between batches: a pid seen before
 * with the same start time is not read again, except while it is young (it may still
 * exec another program). */
#include "core/procpeer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/sockdiag.h"
#include "core/vec.h"

#define PROCPEER_CMDLINE_READ 4096 /* bytes of /proc/PID/cmdline read to classify */
#define PROCPEER_WAITING_RULE                                                                        \
	"it waits for the server to speak on this connection (a thread reads it, or its event loop " \
	"waits only to read it)"
#define PROCPEER_EPOLL_INFO_MAX (256 * 1024) /* bytes of an epoll set's fdinfo read (~4,000 fds) */
#define PROCPEER_RETRY_MS       1000 /* after the lookup thread failed to start, before trying again */
#define PROCPEER_BUSY_SEEN      32   /* processes a batch of rechecks reads the threads of, once each */
#define PROCPEER_BUSY_SPAN_MS   1000 /* CPU used between samples this recent makes a process busy */
#define PROCPEER_CPU_SAMPLE_MS  100  /* ...taken at least this far apart (CPU time is in 10 ms ticks) */
#define PROCPEER_BUSY_SHARE                                            \
	4 /* ...when it is at least 1/this of the time between them: a \
	     quarter of a core (a monitor probing now and then is not  \
	     busy; a thread spinning, or one of 300 queued threads, is) */

struct req {
	struct sockaddr_storage local, peer;
	struct loop *l;
	procpeer_cb cb;
	void *arg;
	uint32_t inode; /* the client's socket; 0 until looked up */
	uint32_t uid;
	int pid;                  /* found holder; -1 while unknown */
	int fd;                   /* the holder's descriptor for the socket; -1 while unknown */
	int recheck;              /* procpeer_recheck: pid and fd are given, only the threads are read */
	const atomic_int *cancel; /* set by the asker: the answer no longer matters */
};

/* The descriptors the threads of one process wait to read (read(), recv*(), poll,
 * select), read once per batch and shared by every question about that process. */
struct readset {
	int pid;
	int *fds;
	size_t n, cap;
};

struct readsets {
	struct readset *v;
	size_t n, cap;
};

struct proc {
	int pid;
	unsigned long long start; /* start time in clock ticks after boot */
	uint32_t uid;
	char comm[16];
	enum procpeer_class cls;
	const char *rule;
	int logged;             /* an answer naming it was given: later ones are not "first" */
	uint64_t held_ms;       /* mono_ms() when a lookup last found it holding a client (0: never) */
	int seen;               /* still in /proc at the last listing */
	unsigned long long cpu; /* utime + stime (ticks) when cpu_ms was taken */
	uint64_t cpu_ms;        /* mono_ms() of that sample; 0: none yet */
	int cpu_used;           /* it used a share of a core between the last two samples */
	int loop_waits_ftp;     /* `loopkit watch`: its event loop's silent sockets wait for a greeting */
};

struct mark {
	int pid;
	unsigned long long start; /* of the process noted; 0 until the thread sees it */
	int ftp;                  /* logged in over FTP, no HTTP since */
};

struct procpeer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	int started;             /* the thread starts at the first question (lock) */
	uint64_t start_retry_ms; /* after a failed start, none is tried before this (lock) */
	struct req *pending;     /* asked, not yet taken by the thread (lock) */
	size_t npending, cappending;
	size_t nrechecks;   /* of them, rechecks (lock) */
	struct mark *marks; /* (lock) */
	size_t nmarks, capmarks;

	/* the thread's own */
	struct req *open; /* taken, not yet answered */
	size_t nopen, capopen;
	atomic_size_t nopen_seen; /* nopen, for procpeer_ask's limit (other threads) */
	struct proc *procs;       /* sorted by pid */
	size_t nprocs, capprocs;
	uint64_t last_slow_ms;
	long ticks; /* sysconf(_SC_CLK_TCK) */
};

struct post {
	procpeer_cb cb;
	void *arg;
	struct procpeer_result r;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- classification (pure) ---- */

static const char *const browser_names[] = {
        "chromium", "chromium-browse", "chrome",          "google-chrome",  "headless_shell",
        "firefox",  "firefox-esr",     "firefox-bin",     "Socket Process", "msedge",
        "brave",    "opera",           "vivaldi-bin",     "epiphany",       "WebKitNetworkPr",
        "falkon",   "qutebrowser",     "QtWebEngineProc",
};

/* Programs that speak FTP whatever their arguments. */
static const char *const ftp_names[] = {
        "ftp",       "tnftp",    "pftp",     "netkit-ftp", "inetutils-ftp",
        "ncftp",     "ncftpget", "ncftpput", "ncftpls",    "ncftpbatch",
        "filezilla", "gftp",     "gftp-gtk", "gftp-text",  "yafc",
};

/* Programs that speak FTP when their command line names only ftp:// URLs (loopkit
 * itself: `loopkit watch ftp://...`). */
static const char *const url_names[] = {"curl", "wget", "wget2", "aria2c", "lftp", "lftpget", "loopkit"};

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

/* Counts the arguments that hold an ftp:// or an http(s):// URL. */
static void count_urls(const char *cmd, size_t n, int *ftp, int *http)
{
	*ftp = *http = 0;
	for (size_t i = 0; i < n;) {
		const char *a = cmd + i;
		size_t len = strnlen(a, n - i);
		/* The URL may follow an option ("--url=ftp://...") or stand alone. */
		for (size_t k = 0; k + 6 <= len; k++) {
			if (!strncasecmp(a + k, "ftp://", 6) || !strncasecmp(a + k, "ftps://", 7)) {
				(*ftp)++;
				break;
			}
			if (!strncasecmp(a + k, "http://", 7) || !strncasecmp(a + k, "https://", 8)) {
				(*http)++;
				break;
			}
		}
		i += len + 1;
	}
}

enum procpeer_class procpeer_classify(const char *comm, const char *cmdline, size_t n, const char **rule)
{
	static const char sw[] = "--utility-sub-type=network.mojom.NetworkService";
	if (in_list(comm, browser_names, sizeof(browser_names) / sizeof(browser_names[0]))) {
		*rule = "a browser by name";
		return PROCPEER_BROWSER;
	}
	/* Every Chromium-based program (Chrome, Edge, Electron apps such as VS Code,
	 * QtWebEngine) runs its network stack in a utility process started with this
	 * switch, whatever the program is called. */
	if (cmdline && memmem(cmdline, n, sw, sizeof(sw) - 1)) {
		*rule = "a Chromium network service";
		return PROCPEER_BROWSER;
	}
	if (in_list(comm, ftp_names, sizeof(ftp_names) / sizeof(ftp_names[0]))) {
		*rule = "an FTP client by name";
		return PROCPEER_FTP_CLIENT;
	}
	if (in_list(comm, url_names, sizeof(url_names) / sizeof(url_names[0]))) {
		int ftp, http;
		count_urls(cmdline ? cmdline : "", cmdline ? n : 0, &ftp, &http);
		if (!strcmp(comm, "lftp") && !ftp && !http) {
			/* lftp with no URL is an FTP shell more often than not, but it can open
			 * http:// too: wait for its first bytes like any other client. */
			*rule = "lftp without a URL on its command line";
			return PROCPEER_OTHER;
		}
		if (ftp && !http) {
			*rule = "its command line names only ftp:// URLs";
			return PROCPEER_FTP_CLIENT;
		}
		*rule = http ? "its command line names http:// URLs" : "its command line names no ftp:// URL";
		return PROCPEER_OTHER;
	}
	*rule = "not a known FTP client";
	return PROCPEER_OTHER;
}

const char *procpeer_class_name(enum procpeer_class c)
{
	switch (c) {
	case PROCPEER_OTHER: return "other";
	case PROCPEER_BROWSER: return "browser";
	case PROCPEER_FTP_CLIENT: return "FTP client";
	case PROCPEER_FTP_PEER: return "FTP peer";
	case PROCPEER_WAITING: return "waiting for the server";
	default: return "unknown";
	}
}

/* ---- /proc ---- */

static ssize_t read_small(int dirfd, const char *path, char *buf, size_t cap)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = read(fd, buf, cap);
	while (n < 0 && errno == EINTR);
	close(fd);
	return n;
}

/* Start time (field 22 of /proc/PID/stat; after the last ')' so a name with spaces or
 * parentheses cannot shift the fields). Returns 0 or -1. */
static int read_start(int pfd, unsigned long long *start)
{
	char b[1024];
	ssize_t n = read_small(pfd, "stat", b, sizeof(b) - 1);
	if (n <= 0)
		return -1;
	b[n] = 0;
	char *p = strrchr(b, ')');
	if (!p)
		return -1;
	p++;
	/* Fields 3.. follow; the start time is field 22, the 20th after ')'. */
	for (int f = 0; f < 19 && p; f++) {
		p = strchr(p + 1, ' ');
	}
	if (!p)
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -1;
	*start = v;
	return 0;
}

/* Reads name, owner, start and class of pid. Returns 0, or -1 when it is gone or
 * unreadable. */
static int proc_read(int procfd, int pid, struct proc *out)
{
	char path[32], comm[64], cmd[PROCPEER_CMDLINE_READ];
	struct stat st;
	snprintf(path, sizeof(path), "%d", pid);
	int pfd = openat(procfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	int rc = -1;
	ssize_t n;
	if (fstat(pfd, &st) < 0 || read_start(pfd, &out->start) < 0)
		goto out;
	n = read_small(pfd, "comm", comm, sizeof(comm) - 1);
	if (n <= 0)
		goto out;
	comm[n] = 0;
	comm[strcspn(comm, "\n")] = 0;
	ssize_t c = read_small(pfd, "cmdline", cmd, sizeof(cmd));
	out->pid = pid;
	out->uid = st.st_uid;
	snprintf(out->comm, sizeof(out->comm), "%.15s", comm);
	out->cls = procpeer_classify(out->comm, cmd, c > 0 ? (size_t)c : 0, &out->rule);
	/* argv[1] after argv[0]: "loopkit watch ..." */
	size_t a0 = c > 0 ? strnlen(cmd, (size_t)c) + 1 : 0;
	out->loop_waits_ftp = !strcmp(out->comm, "loopkit") && c > 0 && a0 + 6 <= (size_t)c &&
	                      !memcmp(cmd + a0, "watch", 6);
	rc = 0;
out:
	close(pfd);
	return rc;
}

/* Is pid's name still pr's? (One small read: the cheap test of an exec.) */
static int same_comm(int procfd, const struct proc *pr)
{
	char path[40], comm[64];
	snprintf(path, sizeof(path), "%d/comm", pr->pid);
	ssize_t n = read_small(procfd, path, comm, sizeof(comm) - 1);
	if (n <= 0)
		return 0;
	comm[n] = 0;
	comm[strcspn(comm, "\n")] = 0;
	return !strncmp(comm, pr->comm, sizeof(pr->comm) - 1);
}

static int proc_cmp(const void *a, const void *b)
{
	int x = ((const struct proc *)a)->pid, y = ((const struct proc *)b)->pid;
	return (x > y) - (x < y);
}

static struct proc *proc_find(struct procpeer *p, int pid)
{
	struct proc key = {.pid = pid};
	return p->nprocs ? bsearch(&key, p->procs, p->nprocs, sizeof(*p->procs), proc_cmp) : NULL;
}

/* Seconds since boot, in clock ticks, to tell how old a process is. */
static unsigned long long uptime_ticks(const struct procpeer *p)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec * (unsigned long long)p->ticks +
	       (unsigned long long)ts.tv_nsec * (unsigned long long)p->ticks / 1000000000ull;
}

static int proc_young(const struct procpeer *p, const struct proc *pr, unsigned long long now)
{
	return now >= pr->start &&
	       now - pr->start < (unsigned long long)PROCPEER_YOUNG_MS * (unsigned long long)p->ticks / 1000;
}

/* Lists /proc again: new pids are read, known ones kept (young ones re-read: they
 * may have exec'd since), vanished ones dropped. */
static void procs_refresh(struct procpeer *p)
{
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return;
	DIR *d = fdopendir(procfd);
	if (!d) {
		close(procfd);
		return;
	}
	unsigned long long now = uptime_ticks(p);
	for (size_t i = 0; i < p->nprocs; i++)
		p->procs[i].seen = 0;
	size_t nold = p->nprocs;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		int pid = atoi(de->d_name);
		struct proc *old = NULL;
		/* Only the part listed before this refresh is sorted. */
		struct proc key = {.pid = pid};
		old = nold ? bsearch(&key, p->procs, nold, sizeof(*p->procs), proc_cmp) : NULL;
		if (old && (!proc_young(p, old, now) || same_comm(dirfd(d), old))) {
			/* Known; a young one is read again only when its name changed (it
			 * exec'd another program). */
			old->seen = 1;
			continue;
		}
		struct proc fresh;
		memset(&fresh, 0, sizeof(fresh));
		if (proc_read(dirfd(d), pid, &fresh) < 0)
			continue;
		fresh.seen = 1;
		if (old) {
			fresh.logged = old->start == fresh.start && old->logged;
			fresh.held_ms = old->start == fresh.start ? old->held_ms : 0;
			*old = fresh;
			continue;
		}
		if (vec_grow((void **)&p->procs, &p->capprocs, p->nprocs + 1, sizeof(*p->procs)) < 0)
			break;
		p->procs[p->nprocs++] = fresh;
	}
	closedir(d);
	size_t k = 0;
	for (size_t i = 0; i < p->nprocs; i++)
		if (p->procs[i].seen)
			p->procs[k++] = p->procs[i];
	p->nprocs = k;
	if (p->nprocs)
		qsort(p->procs, p->nprocs, sizeof(*p->procs), proc_cmp);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Searches pid's descriptors for the inodes in want[0..nwant) (sorted); each found one
 * gets pid as its holder in the open questions. *budget counts links read. */
static void scan_pid(struct procpeer *p, int pid, const uint32_t *want, size_t nwant, long *budget)
{
	char path[40], link[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *de;
	while (*budget > 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		(*budget)--;
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n < 9 || memcmp(link, "socket:[", 8))
			continue;
		link[n] = 0;
		uint32_t ino = (uint32_t)strtoul(link + 8, NULL, 10);
		if (!bsearch(&ino, want, nwant, sizeof(*want), u32_cmp))
			continue;
		for (size_t i = 0; i < p->nopen; i++)
			if (p->open[i].inode == ino && p->open[i].pid < 0) {
				p->open[i].pid = pid;
				p->open[i].fd = atoi(de->d_name);
			}
	}
	closedir(d);
}

/* The inodes of open questions still without a holder, sorted; NULL when none. */
static uint32_t *wanted(struct procpeer *p, size_t *n)
{
	uint32_t *w = malloc((p->nopen + 1) * sizeof(*w));
	*n = 0;
	if (!w)
		return NULL;
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i].pid < 0 && p->open[i].inode)
			w[(*n)++] = p->open[i].inode;
	if (!*n) {
		free(w);
		return NULL;
	}
	qsort(w, *n, sizeof(*w), u32_cmp);
	return w;
}

static int has_uid(const struct procpeer *p, uint32_t uid)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i].pid < 0 && p->open[i].inode && p->open[i].uid == uid)
			return 1;
	return 0;
}

static void readset_add(struct readset *rs, int fd)
{
	if (vec_grow((void **)&rs->fds, &rs->cap, rs->n + 1, sizeof(*rs->fds)) == 0)
		rs->fds[rs->n++] = fd;
}

/* The descriptors an event loop's epoll set epfd (of pid) watches for input and not for
 * output: from /proc/PID/fdinfo/EPFD, "tfd: N events: HEX" per registered descriptor. */
static void readset_add_epoll(struct readset *rs, int pid, int epfd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, epfd);
	char *b = malloc(PROCPEER_EPOLL_INFO_MAX + 1);
	ssize_t n = b ? read_small(AT_FDCWD, path, b, PROCPEER_EPOLL_INFO_MAX) : -1;
	if (n <= 0) {
		free(b);
		return;
	}
	b[n] = 0;
	for (const char *q = b; (q = strstr(q, "tfd:"));) {
		char *end;
		long fd = strtol(q + 4, &end, 10);
		const char *ev = strstr(end, "events:");
		const char *nl = strchr(end, '\n');
		q = end;
		if (!ev || (nl && ev > nl) || fd < 0)
			continue;
		unsigned long mask = strtoul(ev + 7, NULL, 16);
		if ((mask & EPOLLIN) && !(mask & EPOLLOUT))
			readset_add(rs, (int)fd);
	}
	free(b);
}

/* Which descriptors do the threads of pid sleep waiting to read: in read/recv on one; in
 * poll/ppoll/select/pselect with it among those asked for input; or, with epoll_ok, in
 * a blocking epoll_wait on a set that watches it for input and not for output. A
 * client reading the very socket it just opened waits for the server to speak: an FTP
 * client. An event loop in general is not counted: a proxy or a load generator
 * connects ahead and writes later, its loop asleep meanwhile (bench -R and proxy's
 * http_delay were greeted as FTP). `loopkit watch`'s is (epoll_ok): its silent sockets
 * are FTP and banner probes, its HTTP probes write as soon as they connect.
 * Reading another process's system call and memory needs ptrace access (same user
 * without Yama's restriction, or root); without it the answer is 0. */
static void readset_fill(struct readset *rs, int pid, int epoll_ok)
{
	char path[64];
	rs->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int mem = open(path, O_RDONLY | O_CLOEXEC);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && ++n <= PROCPEER_MAX_THREADS) {
		char b[256];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%.20s/syscall", de->d_name);
		ssize_t k = read_small(dirfd(d), path, b, sizeof(b) - 1);
		if (k <= 0)
			continue;
		b[k] = 0;
		unsigned long long a[7] = {0};
		long nr = strtol(b, NULL, 10);
		const char *q = b;
		for (int i = 0; i < 7 && (q = strchr(q, ' ')); i++)
			a[i] = strtoull(++q, NULL, 0);
		switch (nr) {
#ifdef SYS_read
		case SYS_read:
#endif
		case SYS_recvfrom:
		case SYS_recvmsg:
		case SYS_recvmmsg:
			if (a[0] < 1u << 30)
				readset_add(rs, (int)a[0]);
			break;
#ifdef SYS_poll
		case SYS_poll:
#endif
		case SYS_ppoll: {
			struct pollfd pf[64];
			size_t cnt = a[1] < 64 ? (size_t)a[1] : 64;
			ssize_t got = mem >= 0 && cnt ? pread(mem, pf, cnt * sizeof(*pf), (off_t)a[0]) : -1;
			for (size_t i = 0; got > 0 && i < (size_t)got / sizeof(*pf); i++)
				if (pf[i].fd >= 0 && (pf[i].events & POLLIN))
					readset_add(rs, pf[i].fd);
			break;
		}
#ifdef SYS_select
		case SYS_select:
#endif
		case SYS_pselect6: {
			unsigned char set[1024 / 8];
			size_t nfds = a[0] < 1024 ? (size_t)a[0] : 1024;
			size_t len = (nfds + 7) / 8;
			if (len && a[1] && mem >= 0 && pread(mem, set, len, (off_t)a[1]) == (ssize_t)len)
				for (size_t fd = 0; fd < nfds; fd++)
					if ((set[fd / 8] >> (fd % 8)) & 1)
						readset_add(rs, (int)fd);
			break;
		}
		case SYS_epoll_wait:
#ifdef SYS_epoll_pwait
		case SYS_epoll_pwait:
#endif
			if (epoll_ok && (int)a[3] != 0 && a[0] < 1u << 30) /* blocking: no work queued */
				readset_add_epoll(rs, pid, (int)a[0]);
			break;
#ifdef SYS_epoll_pwait2
		case SYS_epoll_pwait2: {
			struct timespec ts = {1, 0}; /* NULL: no timeout, blocking */
			if (a[3] &&
			    (mem < 0 || pread(mem, &ts, sizeof(ts), (off_t)a[3]) != (ssize_t)sizeof(ts)))
				break;
			if (epoll_ok && (ts.tv_sec || ts.tv_nsec) && a[0] < 1u << 30)
				readset_add_epoll(rs, pid, (int)a[0]);
			break;
		}
#endif
		default: break;
		}
	}
	if (mem >= 0)
		close(mem);
	closedir(d);
}

/* Does a thread of pid read fd (see above; epoll sets count with epoll_ok)? Each process
 * is read once per set. */
static int thread_reads_fd(struct readsets *sets, int pid, int fd, int epoll_ok)
{
	struct readset *rs = NULL;
	for (size_t i = 0; i < sets->n && !rs; i++)
		if (sets->v[i].pid == pid)
			rs = &sets->v[i];
	if (!rs) {
		if (vec_grow((void **)&sets->v, &sets->cap, sets->n + 1, sizeof(*sets->v)) < 0)
			return 0;
		rs = &sets->v[sets->n++];
		memset(rs, 0, sizeof(*rs));
		readset_fill(rs, pid, epoll_ok);
	}
	for (size_t i = 0; i < rs->n; i++)
		if (rs->fds[i] == fd)
			return 1;
	return 0;
}

static void readsets_free(struct readsets *sets)
{
	for (size_t i = 0; i < sets->n; i++)
		free(sets->v[i].fds);
	free(sets->v);
	memset(sets, 0, sizeof(*sets));
}

/* Is every thread of pid asleep waiting for input (poll, select, epoll, a socket or
 * pipe read)? A process that logged in over FTP and waits like that is an FTP client
 * waiting for its greeting. One with a thread running, runnable, or waiting for a
 * lock (a Python thread waiting for the GIL before it sends its HTTP request) may be
 * about to send: it waits the window like anyone else. /proc/PID/task/TID/wchan
 * needs no privilege beyond being the same user (ptrace read mode). */
static int waits_for_input(int pid)
{
	static const char *const waits[] = {
	        "poll_schedule_timeout",
	        "ep_poll",
	        "do_epoll_wait",
	        "wait_woken",
	        "sk_wait_data",
	        "__skb_wait_for_more_packets",
	        "unix_stream_read_generic",
	        "pipe_read",
	};
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int ok = 1, n = 0;
	struct dirent *de;
	while (ok && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (++n > PROCPEER_MAX_THREADS) {
			ok = 0; /* too many to read: do not guess */
			break;
		}
		char b[512], w[64];
		snprintf(path, sizeof(path), "%.20s/stat", de->d_name);
		ssize_t k = read_small(dirfd(d), path, b, sizeof(b) - 1);
		if (k <= 0) {
			ok = 0;
			break;
		}
		b[k] = 0;
		const char *st = strrchr(b, ')');
		if (!st || st[1] != ' ' || st[2] != 'S') {
			ok = 0; /* running, runnable, in uninterruptible I/O, stopped */
			break;
		}
		snprintf(path, sizeof(path), "%.20s/wchan", de->d_name);
		k = read_small(dirfd(d), path, w, sizeof(w) - 1);
		if (k <= 0) {
			ok = 0;
			break;
		}
		w[k] = 0;
		int known = 0;
		for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]) && !known; i++)
			known = !strncmp(w, waits[i], strlen(waits[i]));
		ok = known;
	}
	closedir(d);
	return ok;
}

/* ---- answers ---- */

static void post_run(struct loop *l, void *data)
{
	struct post *po = data;
	po->cb(l, po->arg, &po->r);
	free(po);
}

static void answer(struct procpeer *p, const struct req *q, enum procpeer_class cls, const char *rule,
                   struct proc *pr, int ftp_mark, struct readsets *sets)
{
	int reading = pr && sets && q->fd >= 0 && pr->cls != PROCPEER_BROWSER &&
	              pr->cls != PROCPEER_FTP_CLIENT &&
	              thread_reads_fd(sets, pr->pid, q->fd, pr->loop_waits_ftp);
	struct post *po = calloc(1, sizeof(*po));
	if (!po)
		return; /* the asker's own deadline ends its wait */
	po->cb = q->cb;
	po->arg = q->arg;
	po->r.cls = cls;
	po->r.rule = rule;
	po->r.pid = -1;
	po->r.fd = pr ? q->fd : -1;
	po->r.uid = q->inode ? q->uid : (uint32_t)-1;
	if (pr) {
		po->r.pid = pr->pid;
		snprintf(po->r.name, sizeof(po->r.name), "%s", pr->comm);
		if (reading) {
			po->r.cls = PROCPEER_WAITING;
			po->r.rule = PROCPEER_WAITING_RULE;
		} else if (ftp_mark && pr->cls != PROCPEER_BROWSER && waits_for_input(pr->pid)) {
			po->r.cls = PROCPEER_FTP_PEER;
			po->r.rule = "it logged in over FTP here, sent no HTTP since, and waits for input";
		} else if (ftp_mark && pr->cls != PROCPEER_BROWSER) {
			po->r.cls = PROCPEER_OTHER;
			po->r.rule =
			        "it logged in over FTP here, but a thread of it is busy (it may be about to "
			        "send HTTP)";
		} else {
			po->r.cls = pr->cls;
			po->r.rule = pr->rule;
		}
		po->r.first = !pr->logged;
		pr->logged = 1;
	}
	if (loop_post(q->l, post_run, po) < 0)
		free(po);
}

/* Is pr marked as an FTP peer? A mark belongs to the process that was running when it
 * was made: a later process that reuses the pid is not marked. */
static int marked(struct procpeer *p, const struct proc *pr)
{
	int m = 0;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nmarks; i++) {
		struct mark *mk = &p->marks[i];
		if (mk->pid != pr->pid)
			continue;
		if (!mk->start)
			mk->start = pr->start;
		m = mk->start == pr->start && mk->ftp;
	}
	pthread_mutex_unlock(&p->lock);
	return m;
}

static int cancelled(const struct req *q)
{
	return q->cancel && atomic_load_explicit(q->cancel, memory_order_relaxed);
}

/* Answers the open questions that have a holder (or can never get one); keeps the
 * rest. With final, every question is answered. */
static void answer_found(struct procpeer *p, int final)
{
	struct readsets sets = {0};
	size_t k = 0;
	for (size_t i = 0; i < p->nopen; i++) {
		struct req *q = &p->open[i];
		if (q->pid < 0 && cancelled(q)) {
			answer(p, q, PROCPEER_UNKNOWN, "it spoke meanwhile", NULL, 0, NULL);
		} else if (q->pid >= 0) {
			struct proc *pr = proc_find(p, q->pid);
			if (pr)
				pr->held_ms = mono_ms();
			if (pr)
				answer(p, q, pr->cls, pr->rule, pr, marked(p, pr), &sets);
			else
				answer(p, q, PROCPEER_UNKNOWN, "its process exited", NULL, 0, NULL);
		} else if (!q->inode) {
			answer(p, q, PROCPEER_UNKNOWN, "not a local socket", NULL, 0, NULL);
		} else if (final) {
			answer(p, q, PROCPEER_UNKNOWN, "its process could not be read (another user's?)",
			       NULL, 0, NULL);
		} else {
			p->open[k++] = *q;
		}
	}
	p->nopen = k;
	atomic_store(&p->nopen_seen, k);
	readsets_free(&sets);
}

/* The CPU time pid has used (utime + stime, in clock ticks), or 0. */
static unsigned long long proc_cpu(int pid)
{
	char path[64], b[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	ssize_t n = read_small(AT_FDCWD, path, b, sizeof(b) - 1);
	if (n <= 0)
		return 0;
	b[n] = 0;
	const char *q = strrchr(b, ')');
	/* utime and stime are fields 14 and 15: the 12th and 13th after ')'. */
	for (int f = 0; f < 12 && q; f++)
		q = strchr(q + 1, ' ');
	if (!q)
		return 0;
	char *end;
	unsigned long long ut = strtoull(q + 1, &end, 10), st = strtoull(end, NULL, 10);
	return ut + st;
}

/* Is pid busy: has it used a quarter of a core or more between the last two samples
 * (pr's), or is a thread of it running or runnable, or in uninterruptible sleep, now? Such a process may be
 * about to send: 300 Python threads queued for the GIL on a loaded machine keep one of them running while the
 * others wait their turn, for seconds. The CPU time is what tells: a sample of thread states alone can catch
 * the GIL between two threads, all of them asleep for an instant. A process whose threads all sleep (in a
 * read, poll, a lock or a condition variable) and that used little CPU is not busy. */
static int proc_busy(struct proc *pr, int pid)
{
	if (pr) {
		/* Samples at least PROCPEER_CPU_SAMPLE_MS apart (the kernel counts CPU time in
		 * ticks of 10 ms): the verdict of the last two holds until the next. */
		uint64_t now = mono_ms();
		if (!pr->cpu_ms || now - pr->cpu_ms > PROCPEER_BUSY_SPAN_MS) {
			pr->cpu = proc_cpu(pid);
			pr->cpu_ms = now;
			pr->cpu_used = 0;
		} else if (now - pr->cpu_ms >= PROCPEER_CPU_SAMPLE_MS) {
			unsigned long long cpu = proc_cpu(pid);
			long hz = sysconf(_SC_CLK_TCK);
			pr->cpu_used = hz > 0 && cpu > pr->cpu &&
			               (cpu - pr->cpu) * 1000 * PROCPEER_BUSY_SHARE >=
			                       (now - pr->cpu_ms) * (uint64_t)hz;
			pr->cpu = cpu;
			pr->cpu_ms = now;
		}
		if (pr->cpu_used)
			return 1;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int busy = 0, n = 0;
	struct dirent *de;
	while (!busy && (de = readdir(d)) && ++n <= PROCPEER_MAX_THREADS) {
		char b[512];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%.20s/stat", de->d_name);
		ssize_t k = read_small(dirfd(d), path, b, sizeof(b) - 1);
		if (k <= 0)
			continue;
		b[k] = 0;
		const char *st = strrchr(b, ')');
		busy = st && st[1] == ' ' && (st[2] == 'R' || st[2] == 'D');
	}
	closedir(d);
	return busy;
}

/* Answers rechecks: the threads of each process named are read once, for what they
 * read and for whether one is busy (5,000 silent connections of one test process
 * reach the end of their windows together: one read of its threads, not 5,000). */
static void answer_rechecks(struct procpeer *p, struct req *batch, size_t n)
{
	struct readsets sets = {0};
	struct {
		int pid, busy;
	} seen[PROCPEER_BUSY_SEEN];
	size_t nseen = 0;
	for (size_t i = 0; i < n; i++) {
		struct req *q = &batch[i];
		if (!q->recheck)
			continue;
		struct post *po = calloc(1, sizeof(*po));
		if (!po)
			continue; /* the asker's window ends its wait */
		po->cb = q->cb;
		po->arg = q->arg;
		po->r.pid = q->pid;
		po->r.fd = q->fd;
		po->r.uid = (uint32_t)-1;
		struct proc *pr = proc_find(p, q->pid);
		snprintf(po->r.name, sizeof(po->r.name), "%s", pr ? pr->comm : "");
		if (thread_reads_fd(&sets, q->pid, q->fd, pr && pr->loop_waits_ftp)) {
			po->r.cls = PROCPEER_WAITING;
			po->r.rule = PROCPEER_WAITING_RULE;
		} else {
			po->r.cls = PROCPEER_OTHER;
			po->r.rule = "no thread of it reads this connection yet";
			size_t k = 0;
			while (k < nseen && seen[k].pid != q->pid)
				k++;
			if (k == nseen) {
				k = nseen < PROCPEER_BUSY_SEEN ? nseen++ : PROCPEER_BUSY_SEEN - 1;
				seen[k].pid = q->pid;
				seen[k].busy = proc_busy(pr, q->pid);
			}
			po->r.busy = seen[k].busy;
		}
		if (loop_post(q->l, post_run, po) < 0)
			free(po);
	}
	readsets_free(&sets);
}

static int all_found(const struct procpeer *p)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open[i].pid < 0 && p->open[i].inode)
			return 0;
	return 1;
}

/* Searches the likely holders: FTP clients, marked and young processes, and those a
 * lookup found holding a client recently (a test suite's later connections are found
 * at once, not in the slow pass; browsers excepted: they are the slow pass's). */
static void scan_likely(struct procpeer *p, long *budget)
{
	size_t nw;
	uint32_t *want = wanted(p, &nw);
	if (!want)
		return;
	unsigned long long now = uptime_ticks(p);
	uint64_t now_ms = mono_ms();
	/* Two rounds: the processes that held a client lately (a load generator's or a
	 * test suite's next connection is almost always theirs), then the other likely
	 * ones; each stops as soon as every question has its holder, so a busy machine's
	 * many young processes are not read for a client already found. */
	for (int round = 0; round < 2 && !all_found(p); round++) {
		for (size_t i = 0; i<p->nprocs && * budget> 0; i++) {
			struct proc *pr = &p->procs[i];
			if (!has_uid(p, pr->uid))
				continue;
			int recent = pr->held_ms && pr->cls != PROCPEER_BROWSER &&
			             now_ms - pr->held_ms < PROCPEER_RECENT_MS;
			int likely = round == 0 ? recent
			                        : !recent && (pr->cls == PROCPEER_FTP_CLIENT ||
			                                      proc_young(p, pr, now) || marked(p, pr));
			if (!likely)
				continue;
			scan_pid(p, pr->pid, want, nw, budget);
			if (all_found(p))
				break;
		}
	}
	free(want);
}

static void fast_pass(struct procpeer *p)
{
	long budget = PROCPEER_FAST_LINKS;
	/* The processes already known first (a client's later connections, an FTP
	 * client still running): no listing of /proc at all. Then the list again, for
	 * processes started since. */
	scan_likely(p, &budget);
	if (all_found(p))
		return;
	procs_refresh(p);
	scan_likely(p, &budget);
}

static void slow_pass(struct procpeer *p)
{
	size_t nw;
	uint32_t *want = wanted(p, &nw);
	p->last_slow_ms = mono_ms();
	if (!want)
		return;
	procs_refresh(p);
	long budget = PROCPEER_SLOW_LINKS;
	/* Browsers first: they are the ones that must never be greeted. */
	for (int browsers = 1; browsers >= 0; browsers--)
		for (size_t i = 0; i < p->nprocs && budget > 0; i++)
			if ((p->procs[i].cls == PROCPEER_BROWSER) == browsers && has_uid(p, p->procs[i].uid))
				scan_pid(p, p->procs[i].pid, want, nw, &budget);
	free(want);
}

static void *procpeer_main(void *arg)
{
	struct procpeer *p = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);         /* signals are the server's business */
	pthread_setname_np(pthread_self(), "lk-peers"); /* as ps, top and the tests show it */
	procs_refresh(p);                               /* the table the first question is searched in */
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && !p->npending) {
			if (!p->nopen) {
				pthread_cond_wait(&p->cond, &p->lock);
				continue;
			}
			uint64_t due = p->last_slow_ms + PROCPEER_SLOW_EVERY_MS, now = mono_ms();
			if (now >= due)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + (due - now) * 1000000ull;
			ts.tv_sec += (time_t)(ns / 1000000000ull);
			ts.tv_nsec = (long)(ns % 1000000000ull);
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		}
		if (p->stop)
			break;
		struct req *batch = p->pending;
		size_t n = p->npending;
		p->pending = NULL;
		p->npending = p->cappending = p->nrechecks = 0;
		pthread_mutex_unlock(&p->lock);

		answer_rechecks(p, batch, n);
		size_t fresh_from = p->nopen;
		for (size_t i = 0; i < n; i++) {
			if (batch[i].recheck)
				continue;
			if (cancelled(&batch[i])) {
				answer(p, &batch[i], PROCPEER_UNKNOWN, "it spoke meanwhile", NULL, 0, NULL);
				continue;
			}
			if (vec_grow((void **)&p->open, &p->capopen, p->nopen + 1, sizeof(*p->open)) < 0) {
				answer(p, &batch[i], PROCPEER_UNKNOWN, "out of memory", NULL, 0, NULL);
				continue;
			}
			struct req *q = &p->open[p->nopen++];
			*q = batch[i];
			q->pid = -1;
			struct sockdiag_sock s;
			if (sockdiag_peer(&q->local, &q->peer, &s) == 0 && s.inode) {
				q->inode = s.inode;
				q->uid = s.uid;
			}
		}
		free(batch);
		if (p->nopen > fresh_from) {
			answer_found(p, 0); /* the cancelled ones first: no scan for them */
			fast_pass(p);
		}
		answer_found(p, 0);
		if (p->nopen && mono_ms() >= p->last_slow_ms + PROCPEER_SLOW_EVERY_MS) {
			slow_pass(p);
			answer_found(p, 1);
		}
		pthread_mutex_lock(&p->lock);
	}
	/* Stopping: every question gets its answer, so no asker waits for ever. */
	struct req *batch = p->pending;
	size_t n = p->npending;
	p->pending = NULL;
	p->npending = 0;
	pthread_mutex_unlock(&p->lock);
	answer_rechecks(p, batch, n); /* cheap, and every asker gets its answer */
	for (size_t i = 0; i < n; i++)
		if (!batch[i].recheck)
			answer(p, &batch[i], PROCPEER_UNKNOWN, "the server is stopping", NULL, 0, NULL);
	free(batch);
	for (size_t i = 0; i < p->nopen; i++)
		answer(p, &p->open[i], PROCPEER_UNKNOWN, "the server is stopping", NULL, 0, NULL);
	p->nopen = 0;
	return NULL;
}

struct procpeer *procpeer_new(char *err, size_t errlen)
{
	struct procpeer *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->ticks = sysconf(_SC_CLK_TCK);
	if (p->ticks <= 0)
		p->ticks = 100;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

/* The thread starts at the first question, not with the server: a server whose clients
 * all speak at once (HTTP) never needs it. The first silent client waits for its
 * reading of /proc (a few milliseconds) that would otherwise have been made at start.
 * Called with the lock held. A failure is logged, the question is refused (the asker
 * greets by the window alone) and no start is tried for PROCPEER_RETRY_MS. */
static int thread_up(struct procpeer *p)
{
	if (p->started)
		return 0;
	uint64_t now = mono_ms();
	if (now < p->start_retry_ms)
		return -1;
	int e = pthread_create(&p->thread, NULL, procpeer_main, p);
	if (e) {
		p->start_retry_ms = now + PROCPEER_RETRY_MS;
		log_msg("cannot start the peer lookup thread: %s; silent clients are greeted after the "
		        "window for now",
		        strerror(e));
		return -1;
	}
	p->started = 1;
	return 0;
}

void procpeer_free(struct procpeer *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_signal(&p->cond);
	int started = p->started;
	pthread_mutex_unlock(&p->lock);
	if (started)
		pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->pending);
	free(p->open);
	free(p->procs);
	free(p->marks);
	free(p);
}

int procpeer_ask(struct procpeer *p, struct loop *l, const struct sockaddr_storage *local,
                 const struct sockaddr_storage *peer, procpeer_cb cb, void *arg, const atomic_int *cancel)
{
	int rc = -1;
	pthread_mutex_lock(&p->lock);
	if (!p->stop && p->npending + atomic_load(&p->nopen_seen) < PROCPEER_MAX_PENDING &&
	    thread_up(p) == 0 &&
	    vec_grow((void **)&p->pending, &p->cappending, p->npending + 1, sizeof(*p->pending)) == 0) {
		struct req *q = &p->pending[p->npending++];
		memset(q, 0, sizeof(*q));
		q->local = *local;
		q->peer = *peer;
		q->l = l;
		q->cb = cb;
		q->arg = arg;
		q->pid = -1;
		q->fd = -1;
		q->cancel = cancel;
		pthread_cond_signal(&p->cond);
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int procpeer_recheck(struct procpeer *p, struct loop *l, int pid, int fd, procpeer_cb cb, void *arg)
{
	int rc = -1;
	if (pid <= 0 || fd < 0)
		return -1;
	pthread_mutex_lock(&p->lock);
	if (!p->stop && p->nrechecks < PROCPEER_MAX_RECHECKS && thread_up(p) == 0 &&
	    vec_grow((void **)&p->pending, &p->cappending, p->npending + 1, sizeof(*p->pending)) == 0) {
		struct req *q = &p->pending[p->npending++];
		memset(q, 0, sizeof(*q));
		q->l = l;
		q->cb = cb;
		q->arg = arg;
		q->pid = pid;
		q->fd = fd;
		q->recheck = 1;
		p->nrechecks++;
		pthread_cond_signal(&p->cond);
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void procpeer_note(struct procpeer *p, int pid, int ftp_login)
{
	if (pid <= 0)
		return;
	pthread_mutex_lock(&p->lock);
	size_t i;
	for (i = 0; i < p->nmarks && p->marks[i].pid != pid; i++)
		;
	if (i == p->nmarks && ftp_login &&
	    vec_grow((void **)&p->marks, &p->capmarks, p->nmarks + 1, sizeof(*p->marks)) == 0) {
		p->marks[p->nmarks].pid = pid;
		p->marks[p->nmarks++].start = 0;
	}
	if (i < p->nmarks)
		p->marks[i].ftp = ftp_login;
	pthread_mutex_unlock(&p->lock);
}
