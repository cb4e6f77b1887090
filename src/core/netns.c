/* netns.c - a private network namespace: user namespace and id maps, netns, lo up by rtnetlink, pidns. */
#include "core/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NETNS_NL_BUF 8192 /* the acks of three requests (each echoes its request on error) */

const char *netns_step_name(enum netns_step s)
{
	static const char *const names[NETNS_STEPS] = {
	        [NETNS_OK] = "nothing",
	        [NETNS_USERNS] = "unshare(CLONE_NEWUSER)",
	        [NETNS_SETGROUPS] = "writing /proc/self/setgroups",
	        [NETNS_UIDMAP] = "writing /proc/self/uid_map",
	        [NETNS_GIDMAP] = "writing /proc/self/gid_map",
	        [NETNS_NETNS] = "unshare(CLONE_NEWNET)",
	        [NETNS_LO] = "bringing lo up (rtnetlink)",
	        [NETNS_PIDNS] = "clone(CLONE_NEWPID)",
	        [NETNS_FORK] = "fork()",
	};
	return (unsigned)s < NETNS_STEPS ? names[s] : "?";
}

static int fail(struct netns_state *st, enum netns_step step, int err)
{
	st->step = step;
	st->err = err;
	return -1;
}

/* Does this process hold CAP_SYS_ADMIN in its user namespace? */
static int has_sys_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1;
}

/* Writes text to a file of /proc/self. Returns 0 or an errno value. */
static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	int e = w == (ssize_t)n ? 0 : w < 0 ? errno : EIO;
	close(fd);
	return e;
}

int netns_enter_user(struct netns_state *st)
{
	char map[64];
	int e;

	memset(st, 0, sizeof *st);
	st->uid = geteuid();
	st->gid = getegid();
	if (has_sys_admin())
		return 0;
	if (unshare(CLONE_NEWUSER) < 0)
		return fail(st, NETNS_USERNS, errno);
	st->userns = 1;
	/* setgroups must be denied before an unprivileged process may write gid_map; it
	 * may be absent on kernels older than 3.19. */
	if ((e = write_file("/proc/self/setgroups", "deny")) && e != ENOENT)
		return fail(st, NETNS_SETGROUPS, e);
	snprintf(map, sizeof map, "%u %u 1", (unsigned)st->uid, (unsigned)st->uid);
	if ((e = write_file("/proc/self/uid_map", map)))
		return fail(st, NETNS_UIDMAP, e);
	snprintf(map, sizeof map, "%u %u 1", (unsigned)st->gid, (unsigned)st->gid);
	if ((e = write_file("/proc/self/gid_map", map)))
		return fail(st, NETNS_GIDMAP, e);
	return 0;
}

int netns_enter_net(struct netns_state *st)
{
	char err[160];

	if (unshare(CLONE_NEWNET) < 0)
		return fail(st, NETNS_NETNS, errno);
	if (netns_lo_up(&st->ipv6, err, sizeof err) < 0)
		return fail(st, NETNS_LO, errno);
	return 0;
}

/* struct clone_args of <linux/sched.h>, whose CLONE_* macros clash with <sched.h>'s */
struct netns_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

pid_t netns_fork_pid1(void)
{
	long r = -1;
#ifdef SYS_clone3
	struct netns_clone_args a = {.flags = CLONE_NEWPID, .exit_signal = SIGCHLD};
	r = syscall(SYS_clone3, &a, sizeof a);
	if (r >= 0 || errno != ENOSYS) /* ENOSYS: an old kernel, or a seccomp profile that
	                                   sends glibc back to clone */
		return (pid_t)r;
#endif
	/* no new stack: the child goes on from here on a copy, as after fork() (the order
	 * of clone's other arguments differs between architectures; they are all 0) */
	r = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	return (pid_t)r;
}

/* ---- rtnetlink ---- */

struct nlreq {
	struct nlmsghdr nh;
	union {
		struct ifaddrmsg ifa;
		struct ifinfomsg ifi;
	} u;
	char attrs[64];
};

static void add_attr(struct nlreq *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));
	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

static void addr_req(struct nlreq *r, uint32_t seq, int family, const void *addr, size_t alen,
                     unsigned char prefix, int ifindex)
{
	memset(r, 0, sizeof *r);
	r->nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r->nh.nlmsg_type = RTM_NEWADDR;
	/* REPLACE: an address the kernel (or gVisor) already put there is not an error */
	r->nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	r->nh.nlmsg_seq = seq;
	r->u.ifa.ifa_family = (unsigned char)family;
	r->u.ifa.ifa_prefixlen = prefix;
	r->u.ifa.ifa_scope = RT_SCOPE_HOST;
	r->u.ifa.ifa_index = (unsigned)ifindex;
	add_attr(r, IFA_LOCAL, addr, alen);
	add_attr(r, IFA_ADDRESS, addr, alen);
}

int netns_lo_up(int *ipv6, char *err, size_t errlen)
{
	struct nlreq req[3];
	struct in_addr v4;
	struct in6_addr v6 = IN6ADDR_LOOPBACK_INIT;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct iovec iov[3];
	static const char *const what[3] = {"adding 127.0.0.1/8 to lo", "setting lo up", "adding ::1 to lo"};
	int result[3] = {1, 1, 1}; /* 1: no ack yet */
	char buf[NETNS_NL_BUF];

	*ipv6 = 0;
	int ifindex = (int)if_nametoindex("lo");
	if (!ifindex) {
		snprintf(err, errlen, "lo: %s", strerror(errno));
		return -1;
	}
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		snprintf(err, errlen, "rtnetlink socket: %s", strerror(errno));
		return -1;
	}
	v4.s_addr = htonl(INADDR_LOOPBACK);
	addr_req(&req[0], 1, AF_INET, &v4, sizeof v4, 8, ifindex);
	memset(&req[1], 0, sizeof req[1]);
	req[1].nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req[1].nh.nlmsg_type = RTM_NEWLINK;
	req[1].nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req[1].nh.nlmsg_seq = 2;
	req[1].u.ifi.ifi_family = AF_UNSPEC;
	req[1].u.ifi.ifi_index = ifindex;
	req[1].u.ifi.ifi_flags = IFF_UP;
	req[1].u.ifi.ifi_change = IFF_UP;
	addr_req(&req[2], 3, AF_INET6, &v6, sizeof v6, 128, ifindex);
	for (int i = 0; i < 3; i++)
		iov[i] = (struct iovec){.iov_base = &req[i], .iov_len = req[i].nh.nlmsg_len};
	/* One datagram, three requests: the kernel handles them in order. */
	struct msghdr mh = {
	        .msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = iov, .msg_iovlen = 3};
	while (sendmsg(fd, &mh, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "rtnetlink send: %s", strerror(errno));
			close(fd);
			return -1;
		}
	}
	int pending = 3;
	while (pending > 0) {
		ssize_t got = recv(fd, buf, sizeof buf, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "rtnetlink receive: %s", strerror(errno));
			close(fd);
			return -1;
		}
		int n = (int)got;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < 1 || h->nlmsg_seq > 3)
				continue;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (result[h->nlmsg_seq - 1] == 1) {
				result[h->nlmsg_seq - 1] = e->error;
				pending--;
			}
		}
	}
	close(fd);
	for (int i = 0; i < 2; i++)
		if (result[i] < 0) {
			errno = -result[i];
			snprintf(err, errlen, "%s: %s", what[i], strerror(errno));
			return -1;
		}
	/* ::1 fails only when IPv6 is off for the namespace (EACCES, EAFNOSUPPORT): the
	 * namespace still works on IPv4. */
	*ipv6 = result[2] == 0;
	return 0;
}

void netns_init_mounts(struct netns_state *st)
{
	st->proc = 0;
	if (unshare(CLONE_NEWNS) < 0) {
		st->proc_err = errno;
		return;
	}
	/* slave: the host's later mounts still show inside; ours never leak out */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		st->proc_err = errno;
		return;
	}
	st->proc = 1;
}
