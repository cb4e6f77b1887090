/* direct.c - isolate --direct: a server inside that binds a forwarded port gets the host's
 * listener for it, so connections from the host reach it with no relay.
 *
 * pid 1 installs a seccomp filter that sends every bind(2) of the namespace's processes
 * to loopkit (a user notification) and passes the filter's listener to loopkit. loopkit
 * reads the address being bound; when it is a -p forward's inner end (its address or the
 * wildcard, its port, its family, a TCP socket), it puts the forward's host listener in
 * the binding process at the socket's descriptor number (SECCOMP_IOCTL_NOTIF_ADDFD) and
 * answers 0: the server listens on the host's loopback from then on. Every other bind
 * goes on as asked (SECCOMP_USER_NOTIF_FLAG_CONTINUE). Clients inside still reach the
 * server at the inner address through a listener of loopkit's there, relayed to the host
 * end like an --out forward. A bind loopkit does not hand over (another family, a 32-bit
 * program) is left alone, and the forward relays to it as without --direct. */
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
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/net.h"

#if defined(__x86_64__)
#define DIRECT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DIRECT_ARCH AUDIT_ARCH_AARCH64
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
	/* no PR_SET_NO_NEW_PRIVS: pid 1 has CAP_SYS_ADMIN in its user namespace (or is root) */
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fp);
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

/* Whether sa (being bound) is where forward f's connections go inside: its port, and
 * its address or the wildcard of its family; for an IPv4 forward, an IPv6 socket's
 * wildcard or the IPv4-mapped address too (a dual-stack server: checked by the caller). */
static int is_inner_end(const struct isolate_forward *f, const struct sockaddr_storage *sa)
{
	if (f->dir != ISOLATE_IN || net_ss_port(sa) != net_ss_port(&f->inner))
		return 0;
	if (f->inner.ss_family == AF_INET) {
		in_addr_t want = ((const struct sockaddr_in *)&f->inner)->sin_addr.s_addr;
		if (sa->ss_family == AF_INET) {
			in_addr_t a = ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
			return a == htonl(INADDR_ANY) || a == want;
		}
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return sa->ss_family == AF_INET6 &&
		       (IN6_IS_ADDR_UNSPECIFIED(a6) ||
		        (IN6_IS_ADDR_V4MAPPED(a6) && !memcmp(&a6->s6_addr[12], &want, 4)));
	}
	if (sa->ss_family != AF_INET6)
		return 0;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return IN6_IS_ADDR_UNSPECIFIED(a) ||
	       IN6_ARE_ADDR_EQUAL(a, &((const struct sockaddr_in6 *)&f->inner)->sin6_addr);
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

/* The binding thread's socket, for its type and its options (pidfd_getfd: the same open
 * file), through its process (the thread may not lead it: Go binds from any thread).
 * -1 when it cannot be had. */
static int remote_socket(pid_t tid, int fd)
{
	char path[64], text[512];
	snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	const char *p = proc_text(path, text, sizeof text) ? strstr(text, "\nTgid:") : NULL;
	if (!p)
		return -1;
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)strtol(p + 6, NULL, 10), 0);
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

/* Options the server set before bind that its accepted connections inherit: they move to
 * the socket it gets. */
static void copy_options(int from, int to)
{
	static const struct {
		int level, name;
	} opts[] = {
	        {SOL_SOCKET, SO_KEEPALIVE},      {IPPROTO_TCP, TCP_NODELAY},
	        {IPPROTO_TCP, TCP_DEFER_ACCEPT}, {IPPROTO_TCP, TCP_KEEPIDLE},
	        {IPPROTO_TCP, TCP_KEEPINTVL},    {IPPROTO_TCP, TCP_KEEPCNT},
	        {IPPROTO_TCP, TCP_USER_TIMEOUT},
	};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		int v = opt_of(from, opts[i].level, opts[i].name);
		if (v >= 0)
			setsockopt(to, opts[i].level, opts[i].name, &v, sizeof v);
	}
}

/* Whether the server's socket theirs, being bound to an address of family fam, can take
 * a host listener of family host_fam instead: an unbound TCP socket of that family, and
 * for an IPv4 forward an IPv6 socket only when it is dual-stack. *v6only gets its
 * IPV6_V6ONLY. */
static int can_take(int theirs, int fam, int host_fam, int *v6only)
{
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	if (opt_of(theirs, SOL_SOCKET, SO_TYPE) != SOCK_STREAM ||
	    opt_of(theirs, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_TCP ||
	    opt_of(theirs, SOL_SOCKET, SO_DOMAIN) != fam ||
	    getsockname(theirs, (struct sockaddr *)&bound, &bl) < 0 || net_ss_port(&bound))
		return 0; /* not TCP, not this family, or bound already: the kernel answers */
	*v6only = fam == AF_INET6 ? opt_of(theirs, IPPROTO_IPV6, IPV6_V6ONLY) != 0 : 1;
	return fam == host_fam || !*v6only;
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

/* A listener bound to sa in the calling thread's namespace (the host's when made by the
 * helper: fd given), IPV6_V6ONLY as v6only, SO_REUSEPORT as reuseport. Returns it, or -1
 * with errno. */
static int listen_at(int fd, const struct sockaddr_storage *sa, socklen_t len, int v6only, int reuseport)
{
	int one = 1;
	if (fd < 0 && (fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
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

/* A host listener for f in the family of the server's socket: the one opened at start
 * while it is still loopkit's and will do; else a fresh one on the same port, after the
 * first is closed to free it: the server closed the last one and binds again, or its
 * socket is a dual-stack IPv6 one (the listener is then on ::ffff:127.0.0.1), or it has
 * SO_REUSEPORT (several sockets share the port: each gets a listener with it). Returns
 * it, or -1 with errno. */
static int host_listener(struct isolate *iso, struct isolate_forward *f, int family, int reuseport)
{
	if (f->fd >= 0) {
		acceptor_stop(&f->acc);
		int fd = f->fd;
		f->fd = -1;
		if (family == f->host.ss_family && !reuseport)
			return fd;
		close(fd);
	}
	struct sockaddr_storage at = f->host;
	socklen_t len = f->hostlen;
	if (family != f->host.ss_family) { /* ::ffff:127.0.0.1 */
		struct sockaddr_in *v4 = (struct sockaddr_in *)&f->host;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&at;
		memset(&at, 0, sizeof at);
		v6->sin6_family = AF_INET6;
		v6->sin6_port = v4->sin_port;
		v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
		len = sizeof *v6;
	}
	int fd = isolate_host_socket(iso, family);
	return fd < 0 ? -1 : listen_at(fd, &at, len, family == f->host.ss_family, reuseport);
}

/* Hands a host listener of forward f to the binding process's descriptor (its socket
 * theirs, bound to sa with IPV6_V6ONLY v6only). Returns 0, -1 when the bind was
 * abandoned (the process died), or an errno for the server's bind. */
static int hand_over(struct isolate *iso, struct isolate_forward *f, int nfd, const struct seccomp_notif *req,
                     int theirs, const struct sockaddr_storage *sa, socklen_t salen, int v6only)
{
	pid_t pid = (pid_t)req->pid;
	int sfd = (int)req->data.args[0];
	if (f->inner_fd < 0) { /* clients inside reach the server through loopkit from now on */
		f->inner_fd = listen_at(-1, sa, salen, v6only, 0);
		if (f->inner_fd < 0)
			return errno;
		if (!iso->paused)
			acceptor_start(&f->inner_acc, iso->loop, f->inner_fd, 0, ISOLATE_ACCEPT_BATCH,
			               isolate_on_inner_conn, f);
	}
	int hfd = host_listener(iso, f, sa->ss_family, opt_of(theirs, SOL_SOCKET, SO_REUSEPORT) == 1);
	if (hfd < 0)
		return errno;
	copy_options(theirs, hfd);
	int fl = fcntl(theirs, F_GETFL);
	if (fl >= 0)
		fcntl(hfd, F_SETFL, (fcntl(hfd, F_GETFL) & ~O_NONBLOCK) | (fl & O_NONBLOCK));
	struct seccomp_notif_addfd add = {
	        .id = req->id,
	        .flags = SECCOMP_ADDFD_FLAG_SETFD,
	        .srcfd = (uint32_t)hfd,
	        .newfd = (uint32_t)sfd,
	        .newfd_flags = remote_cloexec(pid, sfd) ? O_CLOEXEC : 0,
	};
	int r = ioctl(nfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
	int e = errno;
	close(hfd); /* the server's now (or gone with a bind that was abandoned) */
	if (r < 0)
		return e == ENOENT ? -1 : e;
	f->handed++;
	return 0;
}

void direct_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct isolate *iso = io->data;
	struct seccomp_notif *req = iso->notif_req;
	(void)events;
	memset(req, 0, iso->notif_req_len);
	if (ioctl(io->fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
		if (errno != EINTR && errno != ENOENT && errno != EAGAIN)
			loop_io_close(l, io); /* the filter is gone: every process inside has exited */
		return;
	}
	struct sockaddr_storage sa;
	socklen_t salen = (socklen_t)req->data.args[2];
	memset(&sa, 0, sizeof sa);
	int err = 0, go_on = 1;
	if (!iso->direct_off && salen >= sizeof(sa_family_t) && salen <= sizeof sa &&
	    peek((pid_t)req->pid, req->data.args[1], &sa, salen) == 0 &&
	    ioctl(io->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) == 0 &&
	    ((sa.ss_family == AF_INET && salen >= sizeof(struct sockaddr_in)) ||
	     (sa.ss_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)))) {
		for (size_t i = 0; i < iso->cfg.nfwd; i++) {
			struct isolate_forward *f = &iso->cfg.fwd[i];
			if (!is_inner_end(f, &sa))
				continue;
			int theirs = remote_socket((pid_t)req->pid, (int)req->data.args[0]);
			int v6only = 1;
			if (theirs >= 0 && can_take(theirs, sa.ss_family, f->host.ss_family, &v6only)) {
				err = hand_over(iso, f, io->fd, req, theirs, &sa, salen, v6only);
				if (err < 0) { /* the bind was abandoned (the process died) */
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
	answer(iso, io->fd, req->id, err, go_on);
}
