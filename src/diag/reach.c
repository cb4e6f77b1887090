/* reach.c - how people reach a local server: listen address checks, bind errors, URLs, --open. */
#include "diag/reach.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/net.h"
#include "core/sockdiag.h"
#include "core/procfs.h"

extern char **environ;

int reach_check_listen(const char *flag, const char *host, uint16_t port, int public, const char *what,
                       struct sockaddr_storage *ss, socklen_t *len, char *msg, size_t msglen)
{
	const char *f = flag ? flag : "", *sp = flag ? " " : "";
	msg[0] = '\0';
	if (net_parse_addr(host, port, ss, len) < 0) {
		const char *colon = strrchr(host, ':');
		if (flag && colon && strchr(host, ':') == colon && colon[1] &&
		    strspn(colon + 1, "0123456789") == strlen(colon + 1)) /* --host 127.0.0.1:8080 */
			snprintf(msg, msglen, "%s%s%s is not an IP address: give the port with --port %s", f,
			         sp, host, colon + 1);
		else
			snprintf(msg, msglen,
			         "%s%s%s is not an IP address (use 127.0.0.1, ::1, or another loopback "
			         "address)",
			         f, sp, host);
		return -1;
	}
	const struct sockaddr *sa = (const struct sockaddr *)ss;
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(a6)) {
		char v4[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a6->s6_addr[12], v4, sizeof v4);
		snprintf(msg, msglen,
		         "%s%s%s is an IPv4 address written as IPv6 (IPv4-mapped), which an IPv6-only "
		         "listener cannot bind; use %s%s%s",
		         f, sp, host, f, sp, v4);
		return -1;
	}
	if (net_is_loopback(sa))
		return 0;
	const char *where = net_is_wildcard(sa) ? "every interface" : "not a loopback address";
	if (!public) {
		snprintf(msg, msglen,
		         "%s%s%s is %s: anyone on the network could reach %s. Add --public if that is what "
		         "you want.",
		         f, sp, host, where, what);
		return -1;
	}
	snprintf(msg, msglen, "--public: %s is on the NETWORK at %s (%s)", what, host, where);
	return 1;
}

int reach_check_host(const char *host, uint16_t port, int public, const char *what,
                     struct sockaddr_storage *ss, socklen_t *len, char *msg, size_t msglen)
{
	return reach_check_listen("--host", host, port, public, what, ss, len, msg, msglen);
}

void reach_bind_explain(const struct sockaddr *sa, uint16_t port, int eno, const char *detail,
                        const char *free_fix, char *msg, size_t msglen)
{
	char host[64], who[512];
	net_addr_str(sa, host, sizeof host);
	if (eno == EADDRINUSE &&
	    procfs_port_blocker_text((const struct sockaddr_storage *)sa, port, who, sizeof who))
		snprintf(msg, msglen, "port %u on %s is held by %s; try %s for any free port", port, host,
		         who, free_fix);
	else if (eno == EADDRINUSE)
		snprintf(msg, msglen,
		         "port %u on %s is already in use (its owner is not visible to this user); try %s "
		         "for any "
		         "free port",
		         port, host, free_fix);
	else if (eno == EACCES && port < 1024)
		snprintf(msg, msglen, "%s: ports below 1024 need root; try %s", detail, free_fix);
	else if (eno == EADDRNOTAVAIL)
		snprintf(msg, msglen, "%s: no interface here has the address %s", detail, host);
	else
		snprintf(msg, msglen, "%s", detail);
}

void reach_bind_error(const struct sockaddr *sa, uint16_t port, int eno, const char *detail, char *msg,
                      size_t msglen)
{
	reach_bind_explain(sa, port, eno, detail, "--port 0", msg, msglen);
}

static void url_of(const struct sockaddr *sa, uint16_t port, const char *scheme, char *out)
{
	char host[64];
	int v6 = sa->sa_family == AF_INET6;
	net_addr_str(sa, host, sizeof host);
	snprintf(out, REACH_URL_MAX, "%s://%s%s%s:%u/", scheme, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

size_t reach_urls(const struct sockaddr *sa, uint16_t port, const char *scheme, char (*urls)[REACH_URL_MAX],
                  size_t max)
{
	struct ifaddrs *ifs;
	size_t n = 0;
	if (!max)
		return 0;
	if (!net_is_wildcard(sa) || getifaddrs(&ifs) < 0) {
		url_of(sa, port, scheme, urls[0]);
		return 1;
	}
	/* Two passes: loopback addresses first, then the others in the kernel's order. */
	for (int pass = 0; pass < 2; pass++)
		for (struct ifaddrs *i = ifs; i && n < max; i = i->ifa_next) {
			const struct sockaddr *a = i->ifa_addr;
			if (!a || a->sa_family != sa->sa_family || !(i->ifa_flags & IFF_UP))
				continue;
			if (a->sa_family == AF_INET6 &&
			    IN6_IS_ADDR_LINKLOCAL(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr))
				continue; /* browsers cannot open a URL with a zone */
			if (net_is_loopback(a) == !pass)
				url_of(a, port, scheme, urls[n++]);
		}
	freeifaddrs(ifs);
	if (!n)
		url_of(sa, port, scheme, urls[n++]);
	return n;
}

static void *reap_cb(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return NULL;
}

/* Starts one $BROWSER entry: words split at blanks as a POSIX shell splits them (with
 * '...', "..." and backslash, as Python's shlex), "%s" replaced by the URL (appended
 * when no word holds it), "%%" a percent sign; no shell runs. Returns posix_spawnp's
 * error, E2BIG past REACH_BROWSER_ARGS words or 1 KiB, EINVAL for an open quote, or 0. */
static int spawn_browser(const char *cmd, size_t n, const char *url, pid_t *pid, char *prog, size_t progsz)
{
	char line[1024], *argv[REACH_BROWSER_ARGS + 2];
	size_t argc = 0, o = 0, ul = strlen(url);
	int has_url = 0;
	for (size_t i = 0; i < n;) {
		while (i < n && (cmd[i] == ' ' || cmd[i] == '\t'))
			i++;
		if (i == n)
			break;
		if (argc == REACH_BROWSER_ARGS)
			return E2BIG;
		argv[argc++] = line + o;
		char quote = 0;
		for (; i < n && (quote || (cmd[i] != ' ' && cmd[i] != '\t')); i++) {
			const char *add = cmd + i;
			size_t an = 1;
			if (!quote && (cmd[i] == '\'' || cmd[i] == '"')) {
				quote = cmd[i];
				continue;
			}
			if (quote && cmd[i] == quote) {
				quote = 0;
				continue;
			}
			if (cmd[i] == '\\' && quote != '\'' && i + 1 < n) {
				add = cmd + ++i;
			} else if (cmd[i] == '%' && i + 1 < n && cmd[i + 1] == 's') {
				add = url;
				an = ul;
				has_url = 1;
				i++;
			} else if (cmd[i] == '%' && i + 1 < n && cmd[i + 1] == '%') {
				i++;
			}
			if (o + an + 2 > sizeof(line))
				return E2BIG;
			memcpy(line + o, add, an);
			o += an;
		}
		if (quote)
			return EINVAL;
		line[o++] = 0;
	}
	if (!argc)
		return ENOENT;
	if (!has_url)
		argv[argc++] = (char *)url;
	argv[argc] = NULL;
	snprintf(prog, progsz, "%s", argv[0]);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

int reach_open(const char *url, char *err, size_t errlen)
{
	const char *b = getenv("BROWSER");
	char prog[256] = "xdg-open";
	pid_t pid;
	int rc = ENOENT;
	if (b && *b) {
		/* As xdg-utils and Python's webbrowser: the first entry that starts. */
		for (const char *p = b; *p && rc;) {
			size_t n = strcspn(p, ":");
			rc = spawn_browser(p, n, url, &pid, prog, sizeof prog);
			p += n + (p[n] == ':');
		}
	} else {
		rc = spawn_browser(prog, strlen(prog), url, &pid, prog, sizeof prog);
	}
	if (rc) {
		snprintf(err, errlen, "cannot start %s (%s); open %s yourself%s", b && *b ? b : prog,
		         strerror(rc), url, b && *b ? "" : ", or set $BROWSER");
		return -1;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, reap_cb, (void *)(intptr_t)pid) == 0)
		pthread_detach(t);
	return 0;
}
