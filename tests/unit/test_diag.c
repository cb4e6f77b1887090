/* test_diag.c - unit tests for diag/sock: sock_diag listing, /proc owners, port holders. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/net.h"
#include "core/sockdiag.h"
#include "core/procfs.h"

/* ---- helpers ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Every test must leave exactly the descriptors it found. */
static int fds_setup(void **state)
{
	*state = (void *)(intptr_t)count_fds();
	return 0;
}

static int fds_teardown(void **state)
{
	int before = (int)(intptr_t)*state, after = count_fds();

	if (before != after) {
		print_error("descriptor leak: %d open before, %d after\n", before, after);
		return -1;
	}
	return 0;
}

static uint32_t fd_inode(int fd)
{
	struct stat sb;

	assert_int_equal(fstat(fd, &sb), 0);
	return (uint32_t)sb.st_ino;
}

/* Opens a socket of type on addr (AF_INET or AF_INET6 text), port 0, listening when
 * TCP. v6only < 0 leaves IPV6_V6ONLY alone. Returns the fd and the port, or -1 when
 * the address family is not available here. */
static int open_sock(int type, const char *addr, int v6only, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, family;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		family = AF_INET;
		sl = sizeof(struct sockaddr_in);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		family = AF_INET6;
		sl = sizeof(struct sockaddr_in6);
	}
	ss.ss_family = (sa_family_t)family;
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (family == AF_INET6 && v6only >= 0)
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only), 0);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0)) {
		close(fd);
		return -1;
	}
	sl = sizeof ss;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	*port = net_ss_port(&ss);
	assert_true(*port != 0);
	return fd;
}

/* sockdiag_list that must succeed; names the error when it does not. */
static void list(int proto, uint32_t mask, struct sockdiag_sock **v, size_t *n)
{
	char err[128] = "";

	if (sockdiag_list(proto, mask, v, n, err, sizeof err) != 0)
		fail_msg("sockdiag_list(%d, %#x): %s", proto, mask, err);
}

static const struct sockdiag_sock *find_inode(const struct sockdiag_sock *v, size_t n, uint32_t inode)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].inode == inode)
			return &v[i];
	return NULL;
}

static void self_comm(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/comm", "r");

	assert_non_null(f);
	assert_non_null(fgets(buf, (int)len, f));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

static void user_of(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

/* Checks that one process owner is this process. */
static void assert_self(const struct procfs_owner *o)
{
	char comm[64], user[64];

	self_comm(comm, sizeof comm);
	user_of(geteuid(), user, sizeof user);
	assert_int_equal(o->pid, getpid());
	assert_string_equal(o->comm, comm);
	assert_int_equal(o->uid, geteuid());
	assert_string_equal(o->user, user);
	assert_non_null(strstr(o->cmdline, program_invocation_short_name));
}

/* ---- listing ---- */

static void test_list_tcp4_listener(void **state)
{
	struct sockdiag_sock *v;
	const struct sockdiag_sock *s;
	struct sockaddr_in *sin;
	char want[64], text[64];
	uint16_t port;
	size_t n;
	int fd;

	fd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	assert_true(fd >= 0);
	list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_LISTEN), &v, &n);
	s = find_inode(v, n, fd_inode(fd));
	assert_non_null(s);
	assert_int_equal(s->family, AF_INET);
	assert_int_equal(s->proto, IPPROTO_TCP);
	assert_int_equal(s->state, TCP_LISTEN);
	assert_int_equal(net_ss_port(&s->local), port);
	sin = (struct sockaddr_in *)&s->local;
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(net_ss_port(&s->remote), 0);
	assert_int_equal(s->uid, geteuid());
	assert_int_equal(s->wqueue, 16); /* the listen backlog */
	assert_int_equal(s->v6only, -1);
	snprintf(want, sizeof want, "127.0.0.1:%u", port);
	assert_string_equal(net_ss_text(&s->local, text, sizeof text), want);
	/* The kernel filtered by state: everything returned is listening. */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].state, TCP_LISTEN);
		assert_int_equal(v[i].proto, IPPROTO_TCP);
	}
	free(v);
	close(fd);
}

static void test_list_tcp6_listener(void **state)
{
	struct sockdiag_sock *v;
	const struct sockdiag_sock *s;
	char want[64], text[64];
	uint16_t port;
	size_t n;
	int fd;

	fd = open_sock(SOCK_STREAM, "::1", 1, &port);
	if (fd < 0)
		skip(); /* no IPv6 here */
	list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_LISTEN), &v, &n);
	s = find_inode(v, n, fd_inode(fd));
	assert_non_null(s);
	assert_int_equal(s->family, AF_INET6);
	assert_int_equal(s->state, TCP_LISTEN);
	assert_int_equal(net_ss_port(&s->local), port);
	assert_true(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&s->local)->sin6_addr));
	assert_int_equal(s->v6only, 1);
	snprintf(want, sizeof want, "[::1]:%u", port);
	assert_string_equal(net_ss_text(&s->local, text, sizeof text), want);
	free(v);
	close(fd);
}

/* A dual-stack socket on ::ffff:127.0.0.1 is reported as the kernel has it: AF_INET6
 * with a v4-mapped address, and it holds the IPv4 port. */
static void test_list_v4_mapped(void **state)
{
	struct procfs_owner holders[4];
	struct sockdiag_sock *v;
	const struct sockdiag_sock *s;
	uint16_t port;
	size_t n;
	int fd;

	fd = open_sock(SOCK_STREAM, "::ffff:127.0.0.1", 0, &port);
	if (fd < 0)
		skip();
	list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_LISTEN), &v, &n);
	s = find_inode(v, n, fd_inode(fd));
	assert_non_null(s);
	assert_int_equal(s->family, AF_INET6);
	assert_true(IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&s->local)->sin6_addr));
	assert_int_equal(s->v6only, 0);
	assert_int_equal(net_ss_port(&s->local), port);
	free(v);
	assert_int_equal(procfs_port_holders(IPPROTO_TCP, port, holders, 4), 1);
	assert_self(&holders[0]);
	close(fd);
}

static void test_list_udp(void **state)
{
	struct procfs_owner holders[4];
	struct sockdiag_sock *v;
	const struct sockdiag_sock *s;
	uint16_t port, port6 = 0;
	uint32_t inode;
	size_t n;
	int fd, fd6;

	fd = open_sock(SOCK_DGRAM, "127.0.0.1", -1, &port);
	assert_true(fd >= 0);
	fd6 = open_sock(SOCK_DGRAM, "::1", 1, &port6);
	inode = fd_inode(fd);

	/* state_mask 0 means every state; an unconnected UDP socket is TCP_CLOSE. */
	list(IPPROTO_UDP, 0, &v, &n);
	s = find_inode(v, n, inode);
	assert_non_null(s);
	assert_int_equal(s->family, AF_INET);
	assert_int_equal(s->proto, IPPROTO_UDP);
	assert_int_equal(s->state, TCP_CLOSE);
	assert_int_equal(net_ss_port(&s->local), port);
	assert_string_equal(sockdiag_state_name(s->state), "UNCONN");
	if (fd6 >= 0) {
		s = find_inode(v, n, fd_inode(fd6));
		assert_non_null(s);
		assert_int_equal(s->family, AF_INET6);
		assert_int_equal(net_ss_port(&s->local), port6);
	}
	free(v);

	/* The state filter reaches UDP too. */
	list(IPPROTO_UDP, SOCKDIAG_STATE(TCP_LISTEN), &v, &n);
	assert_null(find_inode(v, n, inode));
	free(v);

	/* Both protocols at once. */
	list(0, 0, &v, &n);
	assert_non_null(find_inode(v, n, inode));
	free(v);

	assert_int_equal(procfs_port_holders(IPPROTO_UDP, port, holders, 4), 1);
	assert_self(&holders[0]);
	assert_int_equal(procfs_port_holders(0, port, holders, 4), 1);
	assert_self(&holders[0]);
	close(fd);
	if (fd6 >= 0)
		close(fd6);
}

/* An established pair shows under SOCKDIAG_STATE(TCP_ESTABLISHED) and not under LISTEN. */
static void test_list_state_filter(void **state)
{
	struct sockaddr_in sin;
	struct sockdiag_sock *v;
	const struct sockdiag_sock *s;
	uint16_t port;
	int lfd, cfd, afd;
	size_t n;

	lfd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	assert_true(lfd >= 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof sin), 0);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);

	list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_ESTABLISHED), &v, &n);
	assert_null(find_inode(v, n, fd_inode(lfd)));
	s = find_inode(v, n, fd_inode(afd));
	assert_non_null(s);
	assert_int_equal(s->state, TCP_ESTABLISHED);
	assert_int_equal(net_ss_port(&s->local), port);
	s = find_inode(v, n, fd_inode(cfd));
	assert_non_null(s);
	assert_int_equal(net_ss_port(&s->remote), port);
	free(v);

	list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_LISTEN), &v, &n);
	assert_non_null(find_inode(v, n, fd_inode(lfd)));
	assert_null(find_inode(v, n, fd_inode(cfd)));
	assert_null(find_inode(v, n, fd_inode(afd)));
	free(v);

	/* An accepted connection on the port does not make its process a holder twice. */
	{
		struct procfs_owner holders[4];

		assert_int_equal(procfs_port_holders(IPPROTO_TCP, port, holders, 4), 1);
		assert_self(&holders[0]);
	}
	close(afd);
	close(cfd);
	close(lfd);
}

/* Enough sockets that the dump spans several netlink datagrams (32 KiB each). */
#define MANY_SOCKS 600

static void test_list_multipart(void **state)
{
	static int fds[MANY_SOCKS];
	struct sockdiag_sock *v;
	struct rlimit rl;
	uint16_t port;
	size_t n, found = 0;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < MANY_SOCKS + 64)
		skip();
	for (int i = 0; i < MANY_SOCKS; i++) {
		fds[i] = open_sock(SOCK_DGRAM, "127.0.0.1", -1, &port);
		assert_true(fds[i] >= 0);
	}
	list(IPPROTO_UDP, 0, &v, &n);
	assert_true(n >= MANY_SOCKS);
	for (int i = 0; i < MANY_SOCKS; i++)
		found += find_inode(v, n, fd_inode(fds[i])) != NULL;
	assert_int_equal(found, MANY_SOCKS);
	free(v);
	for (int i = 0; i < MANY_SOCKS; i++)
		close(fds[i]);
}

static void test_list_bad_proto(void **state)
{
	struct sockdiag_sock *v = (struct sockdiag_sock *)1;
	struct procfs_owner o;
	char err[128] = "";
	size_t n = 7;

	assert_int_equal(sockdiag_list(IPPROTO_SCTP, 0, &v, &n, err, sizeof err), -1);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, "sock_diag protocol: "));
	assert_int_equal(procfs_port_holders(IPPROTO_SCTP, 80, &o, 1), -1);
	assert_int_equal(errno, EINVAL);
}

/* ---- owners ---- */

static void test_owner_find(void **state)
{
	struct procfs_owner o;
	uint16_t port;
	int fd;

	fd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	assert_true(fd >= 0);
	assert_int_equal(procfs_owner_find(fd_inode(fd), &o), 1);
	assert_self(&o);
	assert_int_equal(procfs_owner_find(0, &o), 0);
	assert_int_equal(o.pid, 0);
	close(fd);
}

static void test_owner_map(void **state)
{
	struct procfs_owner_map map;
	const struct procfs_owner *o[4];
	uint32_t inodes[6];
	uint16_t port;
	int fd[3];

	fd[0] = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	fd[1] = open_sock(SOCK_DGRAM, "127.0.0.1", -1, &port);
	fd[2] = dup(fd[0]); /* one socket through two fds: still one owner */
	assert_true(fd[0] >= 0 && fd[1] >= 0 && fd[2] >= 0);
	/* Unsorted, repeated and 0 entries are all fine. */
	inodes[0] = fd_inode(fd[1]);
	inodes[1] = 0;
	inodes[2] = fd_inode(fd[0]);
	inodes[3] = fd_inode(fd[1]);
	inodes[4] = fd_inode(fd[2]);
	inodes[5] = 0;
	assert_int_equal(procfs_owner_map_build(&map, inodes, 6, NULL, 0), 0);
	assert_int_equal(map.nowners, 1);
	assert_int_equal(map.nlinks, 2);
	assert_int_equal(procfs_owner_map_find(&map, fd_inode(fd[0]), o, 4), 1);
	assert_self(o[0]);
	assert_int_equal(procfs_owner_map_find(&map, fd_inode(fd[1]), o, 4), 1);
	assert_ptr_equal(o[0], &map.owners[0]);
	assert_int_equal(procfs_owner_map_find(&map, fd_inode(fd[1]), o, 0), 0);
	assert_int_equal(procfs_owner_map_find(&map, 0, o, 4), 0);
	procfs_owner_map_free(&map);
	procfs_owner_map_free(&map); /* twice is harmless */

	/* NULL: every socket of every readable process. */
	assert_int_equal(procfs_owner_map_build(&map, NULL, 0, NULL, 0), 0);
	assert_int_equal(procfs_owner_map_find(&map, fd_inode(fd[0]), o, 4), 1);
	assert_int_equal(o[0]->pid, getpid());
	assert_int_equal(procfs_owner_map_find(&map, fd_inode(fd[1]), o, 4), 1);
	procfs_owner_map_free(&map);

	/* An empty list scans nothing. */
	assert_int_equal(procfs_owner_map_build(&map, inodes, 0, NULL, 0), 0);
	assert_int_equal(map.nowners, 0);
	assert_int_equal(map.nlinks, 0);
	procfs_owner_map_free(&map);

	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/* ---- port holders ---- */

static void test_port_holders_tcp(void **state)
{
	struct procfs_owner holders[4];
	char text[256], comm[64], want[256];
	uint16_t port;
	int fd;

	fd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	assert_true(fd >= 0);
	assert_int_equal(procfs_port_holders(IPPROTO_TCP, port, holders, 4), 1);
	assert_self(&holders[0]);
	assert_int_equal(procfs_port_holders(IPPROTO_TCP, port, holders, 0), 0);

	self_comm(comm, sizeof comm);
	snprintf(want, sizeof want, "%s (pid %d)", comm, (int)getpid());
	assert_int_equal(procfs_port_holder_text(port, text, sizeof text), strlen(want));
	assert_string_equal(text, want);
	close(fd);
}

/* A forked child shares the listener: two holders, ascending pid. */
static void test_port_holders_forked(void **state)
{
	struct procfs_owner holders[4];
	char text[256], comm[64], want[256];
	uint16_t port;
	int fd, pfd[2], status;
	pid_t child;

	fd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	assert_true(fd >= 0);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char c;

		close(pfd[1]);
		while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(pfd[0]);

	assert_int_equal(procfs_port_holders(IPPROTO_TCP, port, holders, 4), 2);
	assert_int_equal(holders[0].pid, getpid() < child ? getpid() : child);
	assert_int_equal(holders[1].pid, getpid() < child ? child : getpid());
	self_comm(comm, sizeof comm);
	assert_string_equal(holders[0].comm, comm);
	assert_string_equal(holders[1].comm, comm);
	assert_int_equal(procfs_port_holders(IPPROTO_TCP, port, holders, 1), 1);

	snprintf(want, sizeof want, "%s (pid %d), %s (pid %d)", comm, (int)holders[0].pid, comm,
	         (int)(holders[0].pid == getpid() ? child : getpid()));
	procfs_port_holder_text(port, text, sizeof text);
	assert_string_equal(text, want);

	/* The lowest pid is the one procfs_owner_find names. */
	assert_int_equal(procfs_owner_find(fd_inode(fd), &holders[0]), 1);
	assert_int_equal(holders[0].pid, getpid() < child ? getpid() : child);

	close(pfd[1]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
}

static void test_port_holders_free_port(void **state)
{
	struct procfs_owner holders[4];
	char text[64] = "x";
	uint16_t port;
	int fd;

	/* A port the kernel just handed out and that is closed again is free. */
	fd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(procfs_port_holders(IPPROTO_TCP, port, holders, 4), 0);
	assert_int_equal(procfs_port_holder_text(port, text, sizeof text), 0);
	assert_string_equal(text, "");
}

/* Without privileges another user's process is unknown: pid 0, the socket's user. */
static void test_port_holders_unprivileged(void **state)
{
	uint16_t port;
	int fd, status;
	pid_t child;

	if (geteuid() != 0)
		skip(); /* needs root to have a process another user cannot read */
	fd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	assert_true(fd >= 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct procfs_owner h[4], o;
		struct sockdiag_sock *v;
		size_t n;
		char text[64], err[128];
		uint32_t inode = fd_inode(fd);

		close(fd); /* else this child would hold the socket itself */
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		if (sockdiag_list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_LISTEN), &v, &n, err, sizeof err) < 0)
			_exit(11);
		if (!find_inode(v, n, inode) || find_inode(v, n, inode)->uid != 0)
			_exit(12);
		free(v);
		if (procfs_port_holders(IPPROTO_TCP, port, h, 4) != 1)
			_exit(13);
		if (h[0].pid != 0 || h[0].uid != 0 || h[0].comm[0] != '\0')
			_exit(14);
		if (strcmp(h[0].user, getpwuid(0) ? "root" : "0") != 0)
			_exit(15);
		if (procfs_owner_find(inode, &o) != 0 || o.pid != 0)
			_exit(16);
		if (procfs_port_holder_text(port, text, sizeof text) != 0 || text[0] != '\0')
			_exit(17);
		_exit(0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		print_error("unprivileged child: status %d (exit code names the failed check)\n", status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(fd);
}

/* ---- formatting ---- */

static void test_owner_text(void **state)
{
	struct procfs_owner o[3];
	static const struct {
		size_t n;   /* owners used */
		size_t len; /* buffer size */
		const char *want;
	} rows[] = {
	        {0, 64, ""},
	        {1, 64, "nginx (pid 812)"},
	        {2, 64, "nginx (pid 812)"}, /* pid 0: unknown, skipped */
	        {3, 64, "nginx (pid 812), pid 813"},
	        {3, 16, "nginx (pid 812)"},      /* exactly fits; no room for ", ..." */
	        {3, 21, "nginx (pid 812), ..."}, /* second does not fit */
	        {3, 10, ""},                     /* not even the first */
	        {1, 0, NULL},
	};
	char buf[64];

	memset(o, 0, sizeof o);
	o[0].pid = 812;
	snprintf(o[0].comm, sizeof o[0].comm, "nginx");
	o[1].pid = 0;
	snprintf(o[1].user, sizeof o[1].user, "www");
	o[2].pid = 813; /* comm unknown: exited between reads */
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t got;

		memset(buf, 'Z', sizeof buf);
		got = procfs_owner_text(o, rows[i].n, buf, rows[i].len);
		if (!rows[i].want) {
			if (got != 0 || buf[0] != 'Z')
				fail_msg("row %zu: wrote into a zero-length buffer", i);
			continue;
		}
		if (got != strlen(rows[i].want) || strcmp(buf, rows[i].want) != 0)
			fail_msg("row %zu: got \"%s\" (%zu), want \"%s\"", i, buf, got, rows[i].want);
	}
}

static void test_addr_and_state_text(void **state)
{
	static const struct {
		const char *addr;
		uint16_t port;
		const char *want;
	} rows[] = {
	        {"127.0.0.1", 80, "127.0.0.1:80"},
	        {"0.0.0.0", 0, "0.0.0.0:0"},
	        {"::1", 62893, "[::1]:62893"},
	        {"::", 8080, "[::]:8080"},
	        {"::ffff:127.0.0.1", 21, "[::ffff:127.0.0.1]:21"},
	};
	struct sockaddr_storage ss;
	char buf[64];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		memset(&ss, 0, sizeof ss);
		if (inet_pton(AF_INET, rows[i].addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
			ss.ss_family = AF_INET;
			((struct sockaddr_in *)&ss)->sin_port = htons(rows[i].port);
		} else {
			assert_int_equal(
			        inet_pton(AF_INET6, rows[i].addr, &((struct sockaddr_in6 *)&ss)->sin6_addr),
			        1);
			ss.ss_family = AF_INET6;
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(rows[i].port);
		}
		if (net_ss_port(&ss) != rows[i].port ||
		    strcmp(net_ss_text(&ss, buf, sizeof buf), rows[i].want) != 0)
			fail_msg("row %zu: got \"%s\" port %u, want \"%s\"", i, buf, net_ss_port(&ss),
			         rows[i].want);
	}
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	assert_int_equal(net_ss_port(&ss), 0);
	assert_string_equal(net_ss_text(&ss, buf, sizeof buf), "?");
	ss.ss_family = AF_INET;
	assert_string_equal(net_ss_text(&ss, buf, 5), "0.0.");

	assert_string_equal(sockdiag_state_name(TCP_LISTEN), "LISTEN");
	assert_string_equal(sockdiag_state_name(TCP_ESTABLISHED), "ESTAB");
	assert_string_equal(sockdiag_state_name(TCP_TIME_WAIT), "TIME-WAIT");
	assert_string_equal(sockdiag_state_name(0), "UNKNOWN");
	assert_string_equal(sockdiag_state_name(-1), "UNKNOWN");
	assert_string_equal(sockdiag_state_name(99), "UNKNOWN");
}

/* ---- the listener a connection would reach ---- */

static void ss_of(const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	socklen_t len;

	assert_int_equal(net_parse_addr(addr, port, ss, &len), 0);
}

/* Table-driven: where the listener is, where the lookup asks, what it finds. */
static void test_listener_lookup(void **state)
{
	static const struct {
		const char *listen; /* bound address */
		int v6only;
		const char *ask; /* looked-up address, same port */
		int found;
	} rows[] = {
	        {"127.0.0.1", -1, "127.0.0.1", 1},
	        {"0.0.0.0", -1, "127.0.0.1", 1}, /* a wildcard listener takes it */
	        {"127.0.0.1", -1, "127.0.0.2", 0},
	        {"127.0.0.1", -1, "::ffff:127.0.0.1", 1}, /* asked as IPv4 */
	        {"::1", 1, "::1", 1},
	        {"::", 0, "127.0.0.1", 1}, /* dual-stack */
	        {"::1", 1, "127.0.0.1", 0},
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct sockaddr_storage ss;
		struct sockdiag_sock sd;
		uint16_t port;
		int fd = open_sock(SOCK_STREAM, rows[i].listen, rows[i].v6only, &port);
		int rc;

		if (fd < 0)
			continue; /* no IPv6 here */
		ss_of(rows[i].ask, port, &ss);
		rc = sockdiag_listener(&ss, &sd);
		if (rows[i].found) {
			if (rc != 0)
				fail_msg("row %zu: listener on %s not found at %s: %s", i, rows[i].listen,
				         rows[i].ask, strerror(errno));
			assert_int_equal(sd.inode, fd_inode(fd));
			assert_int_equal(sd.uid, geteuid());
			assert_int_equal(sd.state, TCP_LISTEN);
		} else if (rc == 0 || errno != ENOENT) {
			fail_msg("row %zu: %s found a listener on %s (rc %d, %s)", i, rows[i].ask,
			         rows[i].listen, rc, strerror(errno));
		}
		close(fd);
		/* Closed: nothing listens there any more. */
		errno = 0;
		assert_int_equal(sockdiag_listener(&ss, &sd), -1);
		assert_int_equal(errno, ENOENT);
	}
}

/* A connected socket on the port is not a listener: only the listener is named, and
 * with none left (an accepted connection outlives it), nothing is. */
static void test_listener_not_established(void **state)
{
	struct sockaddr_storage ss;
	struct sockdiag_sock sd;
	uint16_t port;
	int lfd = open_sock(SOCK_STREAM, "127.0.0.1", -1, &port);
	int cfd, afd;

	assert_true(lfd >= 0);
	ss_of("127.0.0.1", port, &ss);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_int_equal(sockdiag_listener(&ss, &sd), 0);
	assert_int_equal(sd.inode, fd_inode(lfd));
	close(lfd);
	assert_int_equal(sockdiag_listener(&ss, &sd), -1);
	assert_int_equal(errno, ENOENT);
	close(afd);
	close(cfd);
}

/* A test that must close every descriptor it opens. */
#define FD_TEST(f) cmocka_unit_test_setup_teardown(f, fds_setup, fds_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        FD_TEST(test_list_tcp4_listener),
	        FD_TEST(test_list_tcp6_listener),
	        FD_TEST(test_list_v4_mapped),
	        FD_TEST(test_list_udp),
	        FD_TEST(test_list_state_filter),
	        FD_TEST(test_list_multipart),
	        FD_TEST(test_list_bad_proto),
	        FD_TEST(test_listener_lookup),
	        FD_TEST(test_listener_not_established),
	        FD_TEST(test_owner_find),
	        FD_TEST(test_owner_map),
	        FD_TEST(test_port_holders_tcp),
	        FD_TEST(test_port_holders_forked),
	        FD_TEST(test_port_holders_free_port),
	        FD_TEST(test_port_holders_unprivileged),
	        cmocka_unit_test(test_owner_text),
	        cmocka_unit_test(test_addr_and_state_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
