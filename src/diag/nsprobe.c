/* nsprobe.c - can a command get a private network namespace here; if not, which control blocks it. */
#include "diag/nsprobe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/json.h"

#define NSPROBE_STATUS_MAX 4096 /* /proc/self/status is about 1.5 KB */

/* ---- the controls ---- */

static long read_long(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NSPROBE_ABSENT;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return NSPROBE_ABSENT;
	buf[n] = '\0';
	char *end;
	errno = 0;
	long v = strtol(buf, &end, 10);
	return errno || end == buf ? NSPROBE_ABSENT : v;
}

/* A "Key:\tvalue" line of /proc/self/status as a number, or NSPROBE_ABSENT. */
static long status_field(const char *text, const char *key)
{
	size_t k = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, k) && p[k] == ':') {
			char *end;
			long v = strtol(p + k + 1, &end, 10);
			return end == p + k + 1 ? NSPROBE_ABSENT : v;
		}
	return NSPROBE_ABSENT;
}

/* CapEff of /proc/self/status holds bit 21, CAP_SYS_ADMIN. */
static int status_cap_sys_admin(const char *text)
{
	const char *p = strstr(text, "\nCapEff:");
	if (!p)
		return 0;
	unsigned long long caps = strtoull(p + 8, NULL, 16);
	return (int)((caps >> 21) & 1);
}

void nsprobe_controls_read(struct nsprobe_controls *c)
{
	c->unprivileged_userns_clone = read_long("/proc/sys/kernel/unprivileged_userns_clone");
	c->max_user_namespaces = read_long("/proc/sys/user/max_user_namespaces");
	c->max_net_namespaces = read_long("/proc/sys/user/max_net_namespaces");
	c->max_pid_namespaces = read_long("/proc/sys/user/max_pid_namespaces");
	c->max_mnt_namespaces = read_long("/proc/sys/user/max_mnt_namespaces");
	c->apparmor_restrict = read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
	c->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	c->euid = (unsigned)geteuid();
	c->seccomp = NSPROBE_ABSENT;
	c->cap_sys_admin = 0;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char status[NSPROBE_STATUS_MAX];
		ssize_t n = read(fd, status, sizeof status - 1);
		close(fd);
		if (n > 0) {
			status[n] = '\0';
			c->seccomp = status_field(status, "Seccomp");
			c->cap_sys_admin = status_cap_sys_admin(status);
		}
	}
}

/* ---- the rules: which control blocked which step ---- */

static int step_is_user(enum netns_step s)
{
	return s == NETNS_USERNS || s == NETNS_SETGROUPS || s == NETNS_UIDMAP || s == NETNS_GIDMAP;
}

static int denied(int e)
{
	return e == EPERM || e == EACCES;
}

static int r_max_user(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return st->step == NETNS_USERNS && (c->max_user_namespaces == 0 || st->err == ENOSPC);
}
static int r_unpriv_clone(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return st->step == NETNS_USERNS && c->unprivileged_userns_clone == 0;
}
static int r_apparmor(const struct nsprobe_controls *c, const struct netns_state *st)
{
	/* Ubuntu lets unshare(CLONE_NEWUSER) succeed, then denies the capabilities: the
	 * maps or the network steps fail */
	return c->apparmor_restrict == 1 && st->userns && denied(st->err) &&
	       (step_is_user(st->step) || st->step == NETNS_NETNS || st->step == NETNS_LO ||
	        st->step == NETNS_PIDNS);
}
static int r_apparmor_unshare(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return c->apparmor_restrict == 1 && st->step == NETNS_USERNS && denied(st->err);
}
static int r_max_net(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return st->step == NETNS_NETNS && (c->max_net_namespaces == 0 || st->err == ENOSPC);
}
static int r_max_pid(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return st->step == NETNS_PIDNS && (c->max_pid_namespaces == 0 || st->err == ENOSPC);
}
static int r_seccomp(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return c->seccomp == 2 && st->err == EPERM &&
	       (st->step == NETNS_USERNS || st->step == NETNS_NETNS || st->step == NETNS_PIDNS);
}
static int r_root_nocap(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return c->euid == 0 && !c->cap_sys_admin && denied(st->err);
}
static int r_undumpable(const struct nsprobe_controls *c, const struct netns_state *st)
{
	/* An executable the user may run but not read makes the process non-dumpable, and
	 * its /proc/self files then belong to root: the user namespace is made, its maps
	 * cannot be written. */
	return c->dumpable == 0 && step_is_user(st->step) && st->step != NETNS_USERNS && denied(st->err);
}
static int r_nested(const struct nsprobe_controls *c, const struct netns_state *st)
{
	return st->step == NETNS_USERNS && st->err == EUSERS;
}

enum { V_NONE, V_UNPRIV, V_MAXUSER, V_MAXNET, V_MAXPID, V_APPARMOR, V_SECCOMP, V_DUMPABLE };

/* One row: when it applies, the control to name (its value: which field), why, the fix. */
struct nsprobe_rule {
	int (*applies)(const struct nsprobe_controls *, const struct netns_state *);
	const char *control;
	int value;
	const char *why;
	const char *fix;
};

/* clang-format off */
static const struct nsprobe_rule rules[] = {
	{ r_undumpable, "dumpable", V_DUMPABLE,
	  "loopkit's executable is not readable by this user, so it runs non-dumpable and may not write its own /proc/self files",
	  "make it readable: sudo chmod a+r \"$(readlink -f \"$(command -v loopkit)\")\" (or run a copy the user can read)" },
	{ r_max_user, "user.max_user_namespaces", V_MAXUSER,
	  "no more user namespaces may be made",
	  "sudo sysctl -w user.max_user_namespaces=15000 (to keep it: echo user.max_user_namespaces=15000 | sudo tee /etc/sysctl.d/50-userns.conf)" },
	{ r_unpriv_clone, "kernel.unprivileged_userns_clone", V_UNPRIV,
	  "unprivileged user namespaces are switched off",
	  "sudo sysctl -w kernel.unprivileged_userns_clone=1 (to keep it: echo kernel.unprivileged_userns_clone=1 | sudo tee /etc/sysctl.d/50-userns.conf)" },
	{ r_apparmor_unshare, "kernel.apparmor_restrict_unprivileged_userns", V_APPARMOR,
	  "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10 and later)",
	  "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (until reboot), or an AppArmor profile for loopkit that allows userns (docs/isolate.md)" },
	{ r_apparmor, "kernel.apparmor_restrict_unprivileged_userns", V_APPARMOR,
	  "AppArmor gives an unconfined program's user namespace no capabilities (Ubuntu 23.10 and later)",
	  "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (until reboot), or an AppArmor profile for loopkit that allows userns (docs/isolate.md)" },
	{ r_max_net, "user.max_net_namespaces", V_MAXNET,
	  "no more network namespaces may be made",
	  "sudo sysctl -w user.max_net_namespaces=15000" },
	{ r_max_pid, "user.max_pid_namespaces", V_MAXPID,
	  "no more pid namespaces may be made",
	  "sudo sysctl -w user.max_pid_namespaces=15000" },
	{ r_seccomp, "seccomp", V_SECCOMP,
	  "a seccomp filter refuses unshare() (Seccomp: 2 in /proc/self/status: a container runtime's profile; Docker's default allows it only with CAP_SYS_ADMIN)",
	  "run the container with --security-opt seccomp=unconfined, or a profile that allows unshare and clone with namespace flags, or with --cap-add SYS_ADMIN" },
	{ r_root_nocap, "CAP_SYS_ADMIN", V_NONE,
	  "root without CAP_SYS_ADMIN (a container), and no user namespace could stand in for it",
	  "run the container with --cap-add SYS_ADMIN, or allow user namespaces in it" },
	{ r_nested, "user namespace depth", V_NONE,
	  "user namespaces nest at most 32 deep",
	  "run loopkit isolate from fewer nested namespaces" },
	{ NULL, NULL, V_NONE, NULL, NULL },
};
/* clang-format on */

static long control_value(const struct nsprobe_controls *c, int which)
{
	switch (which) {
	case V_UNPRIV: return c->unprivileged_userns_clone;
	case V_MAXUSER: return c->max_user_namespaces;
	case V_MAXNET: return c->max_net_namespaces;
	case V_MAXPID: return c->max_pid_namespaces;
	case V_APPARMOR: return c->apparmor_restrict;
	case V_SECCOMP: return c->seccomp;
	case V_DUMPABLE: return c->dumpable;
	default: return NSPROBE_ABSENT;
	}
}

void nsprobe_explain(const struct nsprobe_controls *c, const struct netns_state *st,
                     struct nsprobe_verdict *v)
{
	memset(v, 0, sizeof *v);
	v->value = NSPROBE_ABSENT;
	if (st->step == NETNS_OK) {
		v->works = 1;
		return;
	}
	for (const struct nsprobe_rule *r = rules; r->applies; r++) {
		if (!r->applies(c, st))
			continue;
		snprintf(v->control, sizeof v->control, "%s", r->control);
		v->value = control_value(c, r->value);
		snprintf(v->cause, sizeof v->cause, "%s: %s: %s", netns_step_name(st->step),
		         strerror(st->err), r->why);
		snprintf(v->fix, sizeof v->fix, "%s", r->fix);
		return;
	}
	snprintf(v->cause, sizeof v->cause, "%s: %s", netns_step_name(st->step), strerror(st->err));
	snprintf(v->fix, sizeof v->fix,
	         "no known control explains it; `loopkit isolate --check --json` lists them "
	         "(docs/isolate.md)");
}

/* ---- the trial ---- */

struct trial {
	struct netns_state st;
	int pid1, tcp;
};

/* A listener on 127.0.0.1 and a connection to it: lo works inside. */
static int tcp_selftest(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int ok = 0, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, s = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 &&
	    getsockname(l, (struct sockaddr *)&a, &len) == 0 &&
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
	    connect(c, (struct sockaddr *)&a, sizeof a) == 0 &&
	    (s = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		ok = send(c, "x", 1, 0) == 1 && recv(s, &a, 1, 0) == 1;
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	return ok;
}

static void report(int fd, const struct trial *t)
{
	ssize_t w = write(fd, t, sizeof *t);
	(void)w;
	_exit(0);
}

/* The child: the same steps as loopkit isolate, then a first process in the new pid
 * namespace that mounts /proc and talks TCP over lo. Never returns. */
static void trial_child(int fd)
{
	struct trial t;

	memset(&t, 0, sizeof t);
	if (netns_enter_user(&t.st) < 0 || netns_enter_net(&t.st) < 0)
		report(fd, &t);
	pid_t g = netns_fork_pid1();
	if (g < 0) {
		t.st.step = NETNS_PIDNS;
		t.st.err = errno;
		report(fd, &t);
	}
	if (g == 0) {
		netns_init_mounts(&t.st);
		t.pid1 = getpid() == 1;
		t.tcp = tcp_selftest();
		report(fd, &t);
	}
	close(fd);
	int status;
	while (waitpid(g, &status, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int nsprobe_run(struct nsprobe *p)
{
	struct trial t;
	int fds[2];
	double t0 = now_ms();

	memset(p, 0, sizeof *p);
	memset(&t, 0, sizeof t);
	nsprobe_controls_read(&p->c);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		p->st.step = NETNS_FORK;
		p->st.err = errno;
	} else {
		fflush(NULL); /* the child exits with _exit, but be safe with shared buffers */
		pid_t c = fork();
		if (c == 0) {
			close(fds[0]);
			trial_child(fds[1]);
		}
		close(fds[1]);
		if (c < 0) {
			t.st.step = NETNS_FORK;
			t.st.err = errno;
		} else {
			ssize_t n;
			while ((n = read(fds[0], &t, sizeof t)) < 0 && errno == EINTR)
				;
			if (n != (ssize_t)sizeof t) {
				memset(&t, 0, sizeof t);
				t.st.step = NETNS_FORK;
				t.st.err = ECHILD; /* the trial died without a word */
			}
			int status;
			while (waitpid(c, &status, 0) < 0 && errno == EINTR)
				;
		}
		close(fds[0]);
		p->st = t.st;
		p->pid1 = t.pid1;
		p->tcp = t.tcp;
	}
	if (p->st.step == NETNS_OK && !(p->pid1 && p->tcp)) {
		/* every call worked but lo does not carry TCP: say so rather than pass */
		p->st.step = NETNS_LO;
		p->st.err = ENETUNREACH;
	}
	p->ms = now_ms() - t0;
	nsprobe_explain(&p->c, &p->st, &p->v);
	return p->v.works;
}

/* ---- renderings ---- */

static const char *how(const struct nsprobe *p)
{
	return p->st.userns ? "in a user namespace" : "as root";
}

/* The controls in one table, so print and json name them alike. */
struct control_row {
	const char *name;
	size_t off;
};
/* clang-format off */
#define CONTROL(n, f) {n, offsetof(struct nsprobe_controls, f)}
static const struct control_row control_rows[] = {
        CONTROL("kernel.unprivileged_userns_clone", unprivileged_userns_clone),
        CONTROL("user.max_user_namespaces", max_user_namespaces),
        CONTROL("user.max_net_namespaces", max_net_namespaces),
        CONTROL("user.max_pid_namespaces", max_pid_namespaces),
        CONTROL("user.max_mnt_namespaces", max_mnt_namespaces),
        CONTROL("kernel.apparmor_restrict_unprivileged_userns", apparmor_restrict),
        CONTROL("seccomp", seccomp),
        CONTROL("dumpable", dumpable),
        {NULL, 0},
};
/* clang-format on */

static long control_at(const struct nsprobe_controls *c, const struct control_row *r)
{
	long v;
	memcpy(&v, (const char *)c + r->off, sizeof v);
	return v;
}

void nsprobe_print(FILE *f, const struct nsprobe *p)
{
	if (p->v.works)
		fprintf(f,
		        "isolation works here (%s): network and pid namespaces, lo up with 127.0.0.1/8%s, %s "
		        " "
		        "(%.1f ms)\n",
		        how(p), p->st.ipv6 ? " and ::1" : " (IPv6 is off)",
		        p->st.proc ? "a /proc of its own" : "the host's /proc (no mount namespace)", p->ms);
	else
		fprintf(f, "isolation does NOT work here: %s\n", p->v.cause);
	if (!p->v.works && p->v.control[0]) {
		fprintf(f, "  blocked by: %s", p->v.control);
		if (p->v.value != NSPROBE_ABSENT)
			fprintf(f, " = %ld", p->v.value);
		fputc('\n', f);
	}
	if (!p->v.works)
		fprintf(f, "  to allow it: %s\n", p->v.fix);
	fprintf(f, "controls:\n");
	for (const struct control_row *r = control_rows; r->name; r++) {
		long v = control_at(&p->c, r);
		if (v == NSPROBE_ABSENT)
			fprintf(f, "  %-46s (not in this kernel)\n", r->name);
		else
			fprintf(f, "  %-46s %ld\n", r->name, v);
	}
	fprintf(f, "  %-46s %u%s\n", "uid", p->c.euid,
	        p->c.euid == 0
	                ? (p->c.cap_sys_admin ? " (root, CAP_SYS_ADMIN)" : " (root without CAP_SYS_ADMIN)")
	                : "");
}

int nsprobe_json(struct buf *b, const struct nsprobe *p)
{
	struct json j;
	const char *ename = p->st.err ? strerrorname_np(p->st.err) : NULL;

	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_kbool(&j, "works", p->v.works);
	json_kbool(&j, "user_namespace", p->st.userns);
	json_kbool(&j, "ipv6", p->st.ipv6);
	json_kbool(&j, "proc", p->st.proc);
	json_key(&j, "step");
	if (p->v.works)
		json_null(&j);
	else
		json_str(&j, netns_step_name(p->st.step));
	json_key(&j, "errno");
	if (ename)
		json_str(&j, ename);
	else
		json_null(&j);
	json_key(&j, "blocked_by");
	if (p->v.control[0])
		json_str(&j, p->v.control);
	else
		json_null(&j);
	json_key(&j, "value");
	if (p->v.value != NSPROBE_ABSENT)
		json_int(&j, p->v.value);
	else
		json_null(&j);
	json_kstr(&j, "cause", p->v.cause);
	json_kstr(&j, "fix", p->v.fix);
	json_key(&j, "controls");
	json_obj_begin(&j);
	for (const struct control_row *r = control_rows; r->name; r++) {
		long v = control_at(&p->c, r);
		json_key(&j, r->name);
		if (v == NSPROBE_ABSENT)
			json_null(&j);
		else
			json_int(&j, v);
	}
	json_obj_end(&j);
	json_kuint(&j, "uid", p->c.euid);
	json_kbool(&j, "cap_sys_admin", p->c.cap_sys_admin);
	json_kdouble(&j, "ms", (double)(long long)(p->ms * 1000 + 0.5) / 1000);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}
