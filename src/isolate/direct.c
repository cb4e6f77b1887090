/* direct.c - isolate --direct: a server inside that binds a forwarded port gets the host's
 * listener for it, so connections from the host reach it with no relay.
 *
 * pid 1 installs a seccomp filter that sends every bind(2) of the namespace's processes
 * to loopkit (a user notification) and passes the filter's listener to loopkit, where a
 * thread of its own answers them (the event loop never waits on a process inside). It
 * reads the address being bound; when it is a -p forward's inner end (its address or
 * the wildcard, its port and family, an unbound TCP socket in the isolate's network
 * namespace), it puts the forward's host listener in the binding process at the
 * socket's descriptor number (SECCOMP_IOCTL_NOTIF_ADDFD) and answers 0: the server
 * listens on the host's loopback from then on. loopkit keeps its own reference, so the
 * port stays held for the whole run: a server that closes it and binds again gets the
 * same listener back, and no one else can take the port meanwhile. Every other bind
 * goes on as asked (SECCOMP_USER_NOTIF_FLAG_CONTINUE), and the forward relays to it as
 * without --direct. Clients inside reach a server that holds the host listener through
 * a listener of loopkit's at its inner address, relayed to the host end. */
#include "isolate/direct.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/net.h"
#include "core/procfs.h"

#if defined(__x86_64__)
#define DIRECT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DIRECT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* ---- in pid 1 ---- */

#ifdef DIRECT_ARCH
/* The filter: bind(2) of this architecture goes to the listener, returned (or -1). */
static int install_filter(void)
{
	struct sock_filter prog[] = {
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DIRECT_ARCH, 1, 0),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* a 32-bit program: its binds stay inside */
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_bind, 0, 1),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fp = {.len = sizeof prog / sizeof prog[0], .filter = prog};
	/* no PR_SET_NO_NEW_PRIVS: pid 1 has CAP_SYS_ADMIN in its user namespace (or is root).
	 * WAIT_KILLABLE_RECV (Linux 5.19): once loopkit has read a bind, only a fatal signal
	 * interrupts it (a timer's signal would restart it after the listener was put in). */
	int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	                      SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fp);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
		                  &fp);
	return fd;
}
#else
static int install_filter(void)
{
	errno = ENOSYS; /* no filter written for this architecture */
	return -1;
}
#endif

void direct_child(int sock)
{
	int lfd = install_filter();
	int err = lfd < 0 ? errno : 0;
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (lfd >= 0) {
		memset(&u, 0, sizeof u);
		m.msg_control = u.space;
		m.msg_controllen = sizeof u.space;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &lfd, sizeof lfd);
	}
	ssize_t w = sendmsg(sock, &m, MSG_NOSIGNAL);
	(void)w;
	if (lfd >= 0)
		close(lfd);
	close(sock);
}

/* ---- in loopkit ---- */

int direct_receive(struct isolate *iso, int sock)
{
	int err = EIO, lfd = -1;
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
	struct msghdr m = {
	        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space, .msg_controllen = sizeof u.space};
	ssize_t got;
	do
		got = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); got > 0 && c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&lfd, CMSG_DATA(c), sizeof lfd);
	close(sock);
	if (lfd < 0) {
		if (got != (ssize_t)sizeof err || !err)
			err = EIO;
		errno = err;
		return -1;
	}
	struct seccomp_notif_sizes sz;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0) {
		int e = errno;
		close(lfd);
		errno = e;
		return -1;
	}
	/* the kernel's structures may be larger than this build's headers know */
	iso->notif_req_len = sz.seccomp_notif > sizeof(struct seccomp_notif) ? sz.seccomp_notif
	                                                                     : sizeof(struct seccomp_notif);
	size_t rl = sz.seccomp_notif_resp > sizeof(struct seccomp_notif_resp)
	                    ? sz.seccomp_notif_resp
	                    : sizeof(struct seccomp_notif_resp);
	/* Linux 5.5-5.8 have the filter but not ADDFD: then every bind goes on as asked
	 * (the kernel answers ENOENT to an id it does not know, EINVAL to an unknown ioctl) */
	struct seccomp_notif_addfd probe = {.srcfd = (uint32_t)lfd};
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &probe) < 0 && errno != ENOENT) {
		iso->direct_off = 1;
		fprintf(stderr, "loopkit isolate: --direct: this kernel cannot hand a descriptor over "
		                "(SECCOMP_IOCTL_NOTIF_ADDFD, Linux 5.9); the -p forwards relay\n");
	}
	iso->notif_req = calloc(1, iso->notif_req_len);
	iso->notif_resp = calloc(1, rl);
	iso->notif_resp_len = rl;
	if (!iso->notif_req || !iso->notif_resp) {
		close(lfd);
		errno = ENOMEM;
		return -1;
	}
	return lfd;
}

/* Reads n bytes at addr in pid's memory. */
static int peek(pid_t pid, uint64_t addr, void *out, size_t n)
{
	struct iovec local = {.iov_base = out, .iov_len = n};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = n};
	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

/* Whether sa (being bound) is where forward f's connections go inside: its family and
 * port, and its address or the wildcard. (A dual-stack server on [::] with an IPv4
 * forward is another family: turning the listener into an IPv6 one needs SO_REUSEPORT on
 * the port for a moment, and the kernel then lets any process of the user share it.) */
static int is_inner_end(const struct isolate_forward *f, const struct sockaddr_storage *sa)
{
	return f->dir == ISOLATE_IN && sa->ss_family == f->inner.ss_family &&
	       net_ss_port(sa) == net_ss_port(&f->inner) &&
	       (net_is_wildcard((const struct sockaddr *)sa) || net_ss_same(sa, &f->inner));
}

/* The start of a file under /proc into out, NUL-terminated; 0 when it cannot be read. */
static size_t proc_text(const char *path, char *out, size_t len)
{
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	ssize_t n = read(f, out, len - 1);
	close(f);
	out[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

/* Whether descriptor fd of thread tid is close-on-exec there (its fdinfo's flags). */
static int remote_cloexec(pid_t tid, int fd)
{
	char path[64], text[256];
	snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)tid, fd);
	const char *p = proc_text(path, text, sizeof text) ? strstr(text, "flags:") : NULL;
	return p && (strtoul(p + 6, NULL, 8) & O_CLOEXEC);
}

/* The process of thread tid (which may not lead it: Go binds from any thread), or -1. */
static pid_t process_of(pid_t tid)
{
	char path[64], text[512];
	snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	const char *p = proc_text(path, text, sizeof text) ? strstr(text, "\nTgid:") : NULL;
	return p ? (pid_t)strtol(p + 6, NULL, 10) : -1;
}

/* The binding thread's socket, for its type and its options (pidfd_getfd: the same open
 * file), through its process. -1 when it cannot be had. */
static int remote_socket(pid_t tid, int fd)
{
	pid_t pid = process_of(tid);
	if (pid < 0)
		return -1;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	int s = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return s;
}

/* An int socket option of fd, or -1. */
static int opt_of(int fd, int level, int name)
{
	int v;
	socklen_t l = sizeof v;
	return getsockopt(fd, level, name, &v, &l) < 0 ? -1 : v;
}

/* Options the server set before bind, which the listener uses or its accepted
 * connections inherit: they move to the socket it gets. One is set only where the two
 * differ (what the server left alone stays the kernel's default); the buffer sizes read
 * back doubled. */
static void copy_options(int from, int to)
{
	static const struct {
		int level, name;
	} opts[] = {
	        /* the TOS first: setting it sets the priority too */
	        {IPPROTO_IP, IP_TOS},
	        {IPPROTO_IPV6, IPV6_TCLASS},
	        {IPPROTO_IP, IP_TTL},
	        {SOL_SOCKET, SO_KEEPALIVE},
	        {SOL_SOCKET, SO_SNDBUF},
	        {SOL_SOCKET, SO_RCVBUF},
	        {SOL_SOCKET, SO_PRIORITY},
	        {SOL_SOCKET, SO_RCVLOWAT},
	        {SOL_SOCKET, SO_MARK},
	        /* a server's SO_REUSEPORT lets its user's processes share the port, as on the
	         * host; the next server without it takes that back */
	        {SOL_SOCKET, SO_REUSEPORT},
	        {IPPROTO_TCP, TCP_NODELAY},
	        {IPPROTO_TCP, TCP_MAXSEG},
	        {IPPROTO_TCP, TCP_DEFER_ACCEPT},
	        {IPPROTO_TCP, TCP_KEEPIDLE},
	        {IPPROTO_TCP, TCP_KEEPINTVL},
	        {IPPROTO_TCP, TCP_KEEPCNT},
	        {IPPROTO_TCP, TCP_USER_TIMEOUT},
	        {IPPROTO_TCP, TCP_NOTSENT_LOWAT},
	        {IPPROTO_TCP, TCP_WINDOW_CLAMP},
	        {IPPROTO_TCP, TCP_FASTOPEN},
	        {IPPROTO_TCP, TCP_SYNCNT},
	        {IPPROTO_TCP, TCP_LINGER2},
	};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		int v = opt_of(from, opts[i].level, opts[i].name);
		if (v < 0 || v == opt_of(to, opts[i].level, opts[i].name))
			continue;
		if (opts[i].level == SOL_SOCKET && (opts[i].name == SO_SNDBUF || opts[i].name == SO_RCVBUF))
			v /= 2;
		setsockopt(to, opts[i].level, opts[i].name, &v, sizeof v);
	}
	struct linger lg;
	socklen_t l = sizeof lg;
	if (getsockopt(from, SOL_SOCKET, SO_LINGER, &lg, &l) == 0)
		setsockopt(to, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	char cc[16], ours[16];
	socklen_t cl = sizeof cc, ol = sizeof ours;
	if (getsockopt(from, IPPROTO_TCP, TCP_CONGESTION, cc, &cl) == 0 &&
	    (getsockopt(to, IPPROTO_TCP, TCP_CONGESTION, ours, &ol) < 0 || cl != ol || memcmp(cc, ours, cl)))
		setsockopt(to, IPPROTO_TCP, TCP_CONGESTION, cc, cl);
}

/* Whether socket s is in the network namespace of the calling thread (the isolate's): a
 * program inside may make namespaces of its own (a nested isolate, unshare -n), whose
 * ports are not the forward's. No when it cannot be told. */
static int in_our_netns(int s)
{
	struct stat ours, its;
	int nsfd = ioctl(s, SIOCGSKNS);
	if (nsfd < 0)
		return 0;
	int same = fstat(nsfd, &its) == 0 && stat("/proc/thread-self/ns/net", &ours) == 0 &&
	           its.st_ino == ours.st_ino && its.st_dev == ours.st_dev;
	close(nsfd);
	return same;
}

/* Whether two descriptors are the same socket. */
static int same_socket(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* Whether the server's socket theirs, being bound to an address of family fam, can take
 * the forward's host listener instead: an unbound TCP socket of that family in the
 * isolate's own network namespace. *v6only gets its IPV6_V6ONLY. */
static int can_take(int theirs, int fam, int *v6only)
{
	if (!in_our_netns(theirs) || opt_of(theirs, SOL_SOCKET, SO_TYPE) != SOCK_STREAM ||
	    opt_of(theirs, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_TCP ||
	    opt_of(theirs, SOL_SOCKET, SO_DOMAIN) != fam || net_local_port(theirs))
		return 0; /* not TCP, not this family, or bound already: the kernel answers */
	*v6only = fam == AF_INET6 ? opt_of(theirs, IPPROTO_IPV6, IPV6_V6ONLY) != 0 : 1;
	return 1;
}

static int answer(struct isolate *iso, int nfd, uint64_t id, int error, int go_on)
{
	struct seccomp_notif_resp *r = iso->notif_resp;
	memset(r, 0, iso->notif_resp_len);
	r->id = id;
	r->error = error ? -error : 0;
	r->val = 0;
	r->flags = go_on ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
	return ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, r);
}

/* A listener inside (this thread is in the isolate's namespace) bound to sa, IPV6_V6ONLY
 * as v6only. Returns it, or -1 with errno. */
static int listen_inside(const struct sockaddr_storage *sa, socklen_t len, int v6only)
{
	int one = 1, fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	if (bind(fd, (const struct sockaddr *)sa, len) < 0 || listen(fd, ISOLATE_BACKLOG) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ---- in the loop's thread, posted by the bind thread ---- */

/* The server is about to get f's listener: loopkit stops accepting on it, and says so. */
static void quiesce_cb(struct loop *l, void *data)
{
	struct isolate_forward *f = data;
	uint64_t one = 1;
	(void)l;
	acceptor_stop(&f->acc);
	f->handed = 1;
	ssize_t w = write(f->iso->direct_ack_fd, &one, sizeof one);
	(void)w;
}

/* The first hand-over failed: loopkit relays again, and its listener inside goes (it
 * would relay back to the host port, to itself). */
static void resume_cb(struct loop *l, void *data)
{
	struct isolate_forward *f = data;
	(void)l;
	acceptor_stop(&f->inner_acc);
	isolate_close_fd(&f->inner_fd);
	f->handed = 0;
	isolate_forward_resume(f, 1, 0);
}

/* A listener inside for f (inner_new) is loopkit's to accept on. */
static void inner_cb(struct loop *l, void *data)
{
	struct isolate_forward *f = data;
	(void)l;
	f->inner_fd = f->inner_new;
	isolate_forward_resume(f, 0, 1);
}

/* ---- the bind thread ---- */

/* Posts fn(f) to the loop and, with wait, waits until it ran (or loopkit stops). */
static int post(struct isolate *iso, void (*fn)(struct loop *, void *), struct isolate_forward *f, int wait)
{
	if (loop_post(iso->loop, fn, f) < 0)
		return -1;
	if (!wait)
		return 0;
	struct pollfd p[2] = {{.fd = iso->direct_ack_fd, .events = POLLIN},
	                      {.fd = iso->direct_stop_fd, .events = POLLIN}};
	uint64_t v;
	while (poll(p, 2, -1) < 0)
		if (errno != EINTR)
			return -1;
	return !p[1].revents && read(iso->direct_ack_fd, &v, sizeof v) == (ssize_t)sizeof v ? 0 : -1;
}

/* Hands forward f's host listener to the binding thread's descriptor (its socket theirs,
 * bound to sa with IPV6_V6ONLY v6only). Returns 0, -1 when the bind was abandoned (the
 * process died, or loopkit stops), or an errno for the server's bind. */
static int hand_over(struct isolate *iso, struct isolate_forward *f, const struct seccomp_notif *req,
                     int theirs, const struct sockaddr_storage *sa, socklen_t salen, int v6only)
{
	size_t i = (size_t)(f - iso->cfg.fwd);
	pid_t tid = (pid_t)req->pid;
	int sfd = (int)req->data.args[0];
	if (iso->direct_step[i] < DIRECT_INNER) { /* clients inside reach the server through loopkit */
		int fd = listen_inside(sa, salen, v6only);
		if (fd < 0)
			return errno;
		f->inner_new = fd;
		if (post(iso, inner_cb, f, 0) < 0) {
			close(fd);
			return ENOMEM;
		}
		iso->direct_step[i] = DIRECT_INNER;
	}
	if (iso->direct_step[i] < DIRECT_QUIET) { /* loopkit's acceptor stops before the flags change */
		if (post(iso, quiesce_cb, f, 1) < 0)
			return -1;
		iso->direct_step[i] = DIRECT_QUIET;
	}
	struct seccomp_notif_addfd add = {
	        .id = req->id,
	        .flags = SECCOMP_ADDFD_FLAG_SETFD,
	        .srcfd = (uint32_t)f->fd,
	        .newfd = (uint32_t)sfd,
	        .newfd_flags = remote_cloexec(tid, sfd) ? O_CLOEXEC : 0,
	};
	if (ioctl(iso->notify_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
		int e = errno;
		if (iso->direct_step[i] < DIRECT_HELD &&
		    post(iso, resume_cb, f, 0) == 0) /* never a server's */
			iso->direct_step[i] = DIRECT_NONE;
		return e == ENOENT ? -1 : e;
	}
	iso->direct_step[i] = DIRECT_HELD;
	/* Only now, the listener being the server's (one open file, the server's and
	 * loopkit's; the server waits in bind until answered): its options and blocking mode
	 * become the server's. Before, a failed hand-over left them on loopkit's relay. */
	copy_options(theirs, f->fd);
	int fl = fcntl(theirs, F_GETFL);
	if (fl >= 0)
		fcntl(f->fd, F_SETFL, (fcntl(f->fd, F_GETFL) & ~O_NONBLOCK) | (fl & O_NONBLOCK));
	if (!iso->cfg.quiet) {
		struct procfs_owner who; /* its name with control bytes masked */
		char host[64], inner[64];
		pid_t pid = process_of(tid);
		if (procfs_owner_of_pid(pid, &who) != 1 || !who.comm[0])
			snprintf(who.comm, sizeof who.comm, "?");
		fprintf(stderr, "loopkit isolate: %s handed to %s (pid %d), which bound %s inside\n",
		        isolate_end_text(&f->host, host, sizeof host), who.comm, (int)pid,
		        isolate_end_text(sa, inner, sizeof inner));
	}
	return 0;
}

/* Reads one bind and answers it. */
static void serve_bind(struct isolate *iso)
{
	struct seccomp_notif *req = iso->notif_req;
	memset(req, 0, iso->notif_req_len);
	if (ioctl(iso->notify_fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
		return; /* the binding process died, or loopkit stops (EINTR) */
	struct sockaddr_storage sa;
	socklen_t salen = (socklen_t)req->data.args[2];
	memset(&sa, 0, sizeof sa);
	int err = 0, go_on = 1;
	/* the shortest addresses the kernel takes: sockaddr_in, and sockaddr_in6 without
	 * its scope id (24 bytes, as RFC 2133 had it) */
	if (!iso->direct_off && salen >= sizeof(sa_family_t) && salen <= sizeof sa &&
	    peek((pid_t)req->pid, req->data.args[1], &sa, salen) == 0 &&
	    ioctl(iso->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) == 0 &&
	    ((sa.ss_family == AF_INET && salen >= sizeof(struct sockaddr_in)) ||
	     (sa.ss_family == AF_INET6 && salen >= offsetof(struct sockaddr_in6, sin6_scope_id)))) {
		for (size_t i = 0; i < iso->cfg.nfwd; i++) {
			struct isolate_forward *f = &iso->cfg.fwd[i];
			if (!is_inner_end(f, &sa) || f->fd < 0)
				continue;
			int theirs = remote_socket((pid_t)req->pid, (int)req->data.args[0]);
			int v6only = 1;
			if (theirs >= 0 && same_socket(theirs, f->fd)) {
				go_on = 0; /* a bind restarted after the listener was put in: done */
			} else if (theirs >= 0 && can_take(theirs, sa.ss_family, &v6only)) {
				err = hand_over(iso, f, req, theirs, &sa, salen, v6only);
				if (err < 0) {
					close(theirs);
					return;
				}
				go_on = 0;
			}
			if (theirs >= 0)
				close(theirs);
			break;
		}
	}
	answer(iso, iso->notify_fd, req->id, err, go_on);
}

static void interrupted(int sig)
{
	(void)sig; /* only to end a waiting ioctl with EINTR */
}

static void *direct_main(void *arg)
{
	struct isolate *iso = arg;
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, DIRECT_SIG);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	struct pollfd p[2] = {{.fd = iso->notify_fd, .events = POLLIN},
	                      {.fd = iso->direct_stop_fd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents || (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)))
			break; /* loopkit stops, or no process inside is left to bind */
		if (p[0].revents & POLLIN)
			serve_bind(iso);
	}
	return NULL;
}

int direct_start(struct isolate *iso, int nfd)
{
	struct sigaction sa = {.sa_handler = interrupted}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	iso->notify_fd = nfd;
	iso->direct_stop_fd = eventfd(0, EFD_CLOEXEC);
	iso->direct_ack_fd = eventfd(0, EFD_CLOEXEC);
	if (iso->direct_stop_fd < 0 || iso->direct_ack_fd < 0 || sigaction(DIRECT_SIG, &sa, NULL) < 0)
		return -1;
	int e = pthread_create(&iso->direct_thread, NULL, direct_main, iso);
	if (e) {
		errno = e;
		return -1;
	}
	iso->direct_on = 1;
	return 0;
}

void direct_stop(struct isolate *iso)
{
	if (iso->direct_on) {
		uint64_t one = 1;
		ssize_t w = write(iso->direct_stop_fd, &one, sizeof one);
		(void)w;
		for (;;) { /* a signal ends an ioctl that waits (it may come before the ioctl: again) */
			struct timespec t;
			pthread_kill(iso->direct_thread, DIRECT_SIG);
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 10 * 1000 * 1000;
			if (t.tv_nsec >= 1000000000L) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000L;
			}
			if (pthread_timedjoin_np(iso->direct_thread, NULL, &t) == 0)
				break;
		}
		iso->direct_on = 0;
	}
	isolate_close_fd(&iso->notify_fd);
	isolate_close_fd(&iso->direct_stop_fd);
	isolate_close_fd(&iso->direct_ack_fd);
}
