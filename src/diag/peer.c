/* peer.c - the peer socket of a loopback connection, and whether a browser holds it. */
#include "diag/peer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int peer_lookup(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                       uint32_t *inode, uint32_t *uid)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	if (local->ss_family != peer->ss_family)
		return -1;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = (uint8_t)peer->ss_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	/* The peer's socket: its source is their address, its destination ours. */
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *p = (const void *)peer, *l = (const void *)local;
		req.r.id.idiag_sport = p->sin_port;
		req.r.id.idiag_dport = l->sin_port;
		memcpy(req.r.id.idiag_src, &p->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &l->sin_addr, 4);
	} else if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const void *)peer, *l = (const void *)local;
		req.r.id.idiag_sport = p->sin6_port;
		req.r.id.idiag_dport = l->sin6_port;
		memcpy(req.r.id.idiag_src, &p->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &l->sin6_addr, 16);
	} else {
		return -1;
	}
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
	int rc = -1;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) == (ssize_t)sizeof(req)) {
		char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
		ssize_t n;
		do
			n = recv(fd, buf, sizeof(buf), 0);
		while (n < 0 && errno == EINTR);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; n > 0 && NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				break;
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			*inode = m->idiag_inode;
			*uid = m->idiag_uid;
			rc = 0;
			break;
		}
	}
	close(fd);
	return rc;
}

int diag_peer_inode(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                    uint32_t *inode)
{
	uint32_t uid;
	return peer_lookup(local, peer, inode, &uid);
}

int diag_peer_uid(const struct sockaddr_storage *local, const struct sockaddr_storage *peer,
                  uint32_t *uid)
{
	uint32_t inode;
	return peer_lookup(local, peer, &inode, uid);
}

static int is_browser_name(const char *c)
{
	static const char *names[] = {
	        "chromium", "chromium-browse", "chrome",      "google-chrome",  "headless_shell",
	        "firefox",  "firefox-esr",     "firefox-bin", "Socket Process", "msedge",
	        "brave",    "opera",           "vivaldi-bin", "epiphany",       "WebKitNetworkPr",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(c, names[i]))
			return 1;
	return 0;
}

/* Every Chromium-based program (Chrome, Edge, Electron apps such as VS Code,
 * QtWebEngine) runs its network stack in a utility process started with this
 * switch, whatever the program is called. */
static int is_network_service(const char *pid)
{
	static const char sw[] = "--utility-sub-type=network.mojom.NetworkService";
	char path[64], cmd[4096];
	snprintf(path, sizeof(path), "/proc/%.20s/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, cmd, sizeof(cmd));
	close(fd);
	return n > 0 && memmem(cmd, (size_t)n, sw, sizeof(sw) - 1) != NULL;
}

static int pid_holds(const char *pid, uint32_t inode)
{
	char path[64], link[64], want[32];
	snprintf(path, sizeof(path), "/proc/%.20s/fd", pid);
	snprintf(want, sizeof(want), "socket:[%u]", inode);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int dfd = dirfd(d), found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		ssize_t n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			found = !strcmp(link, want);
		}
	}
	closedir(d);
	return found;
}

size_t diag_browsers_refresh(struct diag_browsers *b, uint64_t now_ms, uint64_t max_age_ms)
{
	if (b->at_ms && now_ms - b->at_ms < max_age_ms)
		return b->n;
	b->at_ms = now_ms ? now_ms : 1;
	b->n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	if (!d)
		return 0;
	while (b->n < DIAG_BROWSERS_MAX && (de = readdir(d))) {
		char path[64], comm[64];
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/comm", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n <= 0)
			continue;
		comm[n] = 0;
		comm[strcspn(comm, "\n")] = 0;
		if (is_browser_name(comm) || is_network_service(de->d_name)) {
			b->pid[b->n] = (pid_t)atoi(de->d_name);
			snprintf(b->name[b->n], sizeof(b->name[0]), "%.15s", comm);
			b->n++;
		}
	}
	closedir(d);
	return b->n;
}

int diag_browsers_hold(const struct diag_browsers *b, uint32_t inode, char *name, size_t len)
{
	for (size_t i = 0; i < b->n; i++) {
		char pid[24];
		snprintf(pid, sizeof(pid), "%d", (int)b->pid[i]);
		if (pid_holds(pid, inode)) {
			snprintf(name, len, "%s", b->name[i]);
			return 1;
		}
	}
	return 0;
}

int diag_inode_is_browser(uint32_t inode, char *name, size_t len)
{
	struct diag_browsers b = { 0 };
	diag_browsers_refresh(&b, 1, 0);
	return diag_browsers_hold(&b, inode, name, len);
}
