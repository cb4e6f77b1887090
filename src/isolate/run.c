/* run.c - loopkit isolate at work: namespaces, the namespace's pid 1, CMD, forwards, signals, status. */
#include "isolate/isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/net.h"
#include "core/procfs.h"
#include "diag/portlease.h"
#include "diag/reach.h"
#include "isolate/direct.h"
#include "isolate/relay.h"

/* The signals passed on to CMD when someone sends them to loopkit. SIGCONT too: timeout(1)
 * sends it after its TERM, which a stopped CMD would otherwise never act on. */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT};
#define NFORWARDED (sizeof forwarded / sizeof forwarded[0])

/* How loopkit asks pid 1 to pass a signal on: a queued real-time signal carrying the
 * number (see relay_signal). */
#define RELAY_SIG (SIGRTMIN + 2)

/* What the child tells us through the note pipe (EOF alone: CMD is running). */
struct isolate_note {
	int what; /* NOTE_EXEC: CMD could not be started; NOTE_PROC: no /proc of its own */
	int err;
};
enum { NOTE_EXEC = 1, NOTE_PROC };

static void forward_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaddset(set, forwarded[i]);
}

/* A shell's exit status for a wait status. */
static int shell_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : ISOLATE_EXIT_FAILED;
}

/* pid 1 shares loopkit's memory (clone with CLONE_VM, on a stack of its own): forking
 * it copied loopkit's page tables and then took a copy-on-write fault on every page
 * either side wrote, about 1.2 ms of the start-up on a virtual machine, where a fault
 * costs tens of microseconds. Shared memory means shared thread-local storage too, and
 * with it errno: so loopkit waits, touching nothing, until CMD runs (pid 1 prepares
 * with libc's calls meanwhile), and from then on pid 1 makes its system calls through
 * pid1_sys, which returns -errno and writes no memory (nor does it call libc with a
 * value from a signal: sets are built with ksig_bit). Under AddressSanitizer (which
 * keeps its own state per thread), on architectures without pid1_sys, and where CMD could
 * write pid 1's memory (start_pid1), pid 1 is forked as before. */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(__SANITIZE_ADDRESS__)
#define PID1_SHARES_MEMORY 1
#define PID1_STACK         (256 * 1024)
#endif

static long pid1_sys(long nr, long a, long b, long c, long d)
{
#if defined(PID1_SHARES_MEMORY) && defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
	                 : "rcx", "r11", "memory");
	return ret;
#elif defined(PID1_SHARES_MEMORY) && defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory", "cc");
	return x0;
#else
	long r = syscall(nr, a, b, c, d); /* pid 1 is a forked copy: errno is its own */
	return r < 0 ? -errno : r;
#endif
}

/* The kernel's signal set is 64 bits on every architecture loopkit builds for; glibc's
 * sigset_t begins with it. */
#define KSIGSET_SIZE 8

/* sig's bit in the kernel's signal set. pid 1 builds its sets with these, not with
 * sigaddset, which writes errno for a number out of range. */
static uint64_t ksig_bit(int sig)
{
	return 1ull << (sig - 1);
}

/* Is sig one loopkit passes on? A queued RELAY_SIG can come from anyone allowed to
 * signal pid 1 (CMD too), carrying any number. */
static int forwarded_sig(int sig)
{
	for (size_t i = 0; i < NFORWARDED; i++)
		if (forwarded[i] == sig)
			return 1;
	return 0;
}

/* Consumes pid 1's pending copies of the forwarded signals: those sent to a process group
 * that pid 1 was in before CMD existed, which CMD never got (loopkit got its own and passes
 * them on). */
static void drop_pending_forwarded(void)
{
	uint64_t set = 0;
	static const struct timespec now = {0, 0};
	for (size_t i = 0; i < NFORWARDED; i++)
		set |= ksig_bit(forwarded[i]);
	while (pid1_sys(SYS_rt_sigtimedwait, (long)&set, 0, (long)&now, KSIGSET_SIZE) > 0)
		;
}

/* Whether loopkit has a controlling terminal. Then CMD stays in loopkit's process group,
 * as any command of a shell's job: Ctrl-C and Ctrl-Z reach it from the terminal, it may
 * read the terminal, and a job started with & can be brought back with fg. Without one
 * (a CI runner, cron, setsid, ssh without -t), pid 1 and CMD get a process group of
 * their own, so that a signal to loopkit's group reaches loopkit alone (and CMD's whole
 * group from there). */
static int has_terminal(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* ---- the host-socket helper: a thread that stays in the host's network namespace ---- */

static void *helper_main(void *arg)
{
	struct isolate *iso = arg;
	int family;
	while (recv(iso->helper_fd[1], &family, sizeof family, 0) == (ssize_t)sizeof family) {
		int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int reply = fd < 0 ? -errno : fd;
		if (send(iso->helper_fd[1], &reply, sizeof reply, MSG_NOSIGNAL) != (ssize_t)sizeof reply) {
			if (fd >= 0)
				close(fd);
			break;
		}
	}
	return NULL;
}

/* A socket in the host's namespace (the calling thread is in the new one). Returns the
 * fd or -1 with errno. */
int isolate_host_socket(struct isolate *iso, int family)
{
	int reply, ok;
	pthread_mutex_lock(&iso->helper_lock); /* the loop's thread and --direct's bind thread */
	ok = send(iso->helper_fd[0], &family, sizeof family, MSG_NOSIGNAL) == (ssize_t)sizeof family &&
	     recv(iso->helper_fd[0], &reply, sizeof reply, 0) == (ssize_t)sizeof reply;
	pthread_mutex_unlock(&iso->helper_lock);
	if (!ok) {
		errno = EIO;
		return -1;
	}
	if (reply < 0) {
		errno = -reply;
		return -1;
	}
	return reply;
}

static int helper_start(struct isolate *iso, char *err, size_t errlen)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, iso->helper_fd) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	int e = pthread_create(&iso->helper, NULL, helper_main, iso);
	if (e) {
		snprintf(err, errlen, "thread for --out: %s", strerror(e));
		return -1;
	}
	iso->helper_on = 1;
	return 0;
}

/* ---- preparing ---- */

static int ns_failed(struct isolate *iso, char *err, size_t errlen)
{
	struct nsprobe_controls c;
	struct nsprobe_verdict v;
	/* read on failure alone: the seven files cost a third of a millisecond of every
	 * start-up. Inside a user namespace of loopkit's own, /proc/sys/user shows the new
	 * namespace's limits, not those of the one above that refused: those stay unsaid,
	 * and loopkit's capability is the one it had before (none: it made one). */
	nsprobe_controls_read(&c);
	if (iso->ns.userns) {
		c.cap_sys_admin = 0;
		c.max_user_namespaces = c.max_net_namespaces = NSPROBE_ABSENT;
		c.max_pid_namespaces = c.max_mnt_namespaces = NSPROBE_ABSENT;
	}
	nsprobe_explain(&c, &iso->ns, &v);
	int n = snprintf(err, errlen, "cannot isolate: %s", v.cause);
	if (v.control[0] && n >= 0 && (size_t)n < errlen) {
		n += snprintf(err + n, errlen - (size_t)n, "\n  blocked by: %s", v.control);
		if (v.value != NSPROBE_ABSENT && (size_t)n < errlen)
			n += snprintf(err + n, errlen - (size_t)n, " = %ld", v.value);
	}
	if (n >= 0 && (size_t)n < errlen)
		snprintf(err + n, errlen - (size_t)n, "\n  to allow it: %s", v.fix);
	return -1;
}

/* -p 127.0.0.1:P with -p [::1]:P: each forward's host address is the other's twin (the
 * same port on the other loopback address, which a listener holds so that nobody else
 * takes localhost:P). The other forward, when it listens already. */
static struct isolate_forward *twin_forward(const struct isolate_forward *f)
{
	const struct isolate_config *c = &f->iso->cfg;
	uint16_t port = net_ss_port(&f->host);
	if (!port || !net_is_loopback_one((const struct sockaddr *)&f->host))
		return NULL;
	for (size_t i = 0; i < c->nfwd; i++) {
		struct isolate_forward *o = &c->fwd[i];
		if (o != f && o->dir == ISOLATE_IN && o->fd >= 0 && o->host.ss_family != f->host.ss_family &&
		    net_ss_port(&o->host) == port && net_is_loopback_one((const struct sockaddr *)&o->host))
			return o;
	}
	return NULL;
}

static int listen_host(struct isolate_forward *f, char *err, size_t errlen)
{
	char why[256];
	struct sockaddr_storage failed; /* named in why */
	struct isolate_forward *o = twin_forward(f);
	if (o) {
		/* o holds this address as its twin: it gives it up to this listener, and o's
		 * own listener is this one's twin. */
		isolate_close_fd(&o->twin);
		f->fd = net_listen((struct sockaddr *)&f->host, f->hostlen, ISOLATE_BACKLOG, 0, why,
		                   sizeof why);
		f->twin = -1;
		failed = f->host;
	} else {
		/* port 0: one outside the ephemeral range, as the proxy's */
		f->fd = portlease_listen_loopback(&f->host, f->hostlen, ISOLATE_BACKLOG, &f->twin, &failed,
		                                  why, sizeof why);
	}
	if (f->fd < 0) {
		/* said as serve and the proxy say it: who holds the port, and the fix */
		char fix[32], msg[REACH_MSG_MAX];
		snprintf(fix, sizeof fix, "-p 0:%u", net_ss_port(&f->inner));
		reach_bind_explain((struct sockaddr *)&failed, net_ss_port(&f->host), errno, why, fix, msg,
		                   sizeof msg);
		snprintf(err, errlen, "-p %s: %s", f->spec, msg);
		return -1;
	}
	socklen_t len = f->hostlen;
	getsockname(f->fd, (struct sockaddr *)&f->host, &len);
	return 0;
}

/* Every port of the namespace is CMD's, those below 1024 too, as in a rootless container:
 * a dev server keeps its usual port 80 without root. Kernels before 4.11 lack the
 * setting, and a read-only /proc/sys refuses it: then they stay root's, as before. */
static void free_low_ports(void)
{
	int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, "0", 1);
		(void)w;
		close(fd);
	}
}

int isolate_prepare(struct isolate *iso, const struct isolate_config *c, char *err, size_t errlen)
{
	sigset_t block;
	int need_helper = 0;

	memset(iso, 0, sizeof *iso);
	pthread_mutex_init(&iso->helper_lock, NULL);
	iso->cfg = *c;
	iso->helper_fd[0] = iso->helper_fd[1] = -1;
	iso->life_fd = -1;
	iso->sig_io.fd = -1;
	iso->notify_fd = iso->direct_stop_fd = iso->direct_ack_fd = -1;
	for (size_t i = 0; i < iso->cfg.nfwd; i++) {
		iso->cfg.fwd[i].fd = iso->cfg.fwd[i].twin = iso->cfg.fwd[i].inner_fd =
		        iso->cfg.fwd[i].inner_new = -1;
		iso->cfg.fwd[i].iso = iso;
	}
	iso->prepared = 1;
	/* Blocked before any thread exists, so every thread inherits it; signalfd reads
	 * them. SIGPIPE is blocked too: splice to a closed socket fails with EPIPE. */
	forward_set(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGPIPE);
	sigaddset(&block, RELAY_SIG);  /* pid 1 inherits it blocked: it is never fatal there */
	sigaddset(&block, DIRECT_SIG); /* unblocked in --direct's bind thread alone */
	sigprocmask(SIG_BLOCK, &block, &iso->oldmask);

	for (size_t i = 0; i < iso->cfg.nfwd; i++) {
		struct isolate_forward *f = &iso->cfg.fwd[i];
		if (f->dir == ISOLATE_IN && listen_host(f, err, errlen) < 0)
			return -1;
		/* --out connects to the host; so does --direct's listener inside */
		need_helper |= f->dir == ISOLATE_OUT || iso->cfg.direct;
	}
	if (netns_enter_user(&iso->ns) < 0)
		return ns_failed(iso, err, errlen);
	/* after the user namespace (which needs one thread), before the network one */
	if (need_helper && helper_start(iso, err, errlen) < 0)
		return -1;
	if (netns_enter_net(&iso->ns) < 0)
		return ns_failed(iso, err, errlen);
	free_low_ports();
	for (size_t i = 0; i < iso->cfg.nfwd; i++) {
		struct isolate_forward *f = &iso->cfg.fwd[i];
		char why[256];
		if (f->dir != ISOLATE_OUT)
			continue;
		f->fd = net_listen((struct sockaddr *)&f->inner, f->innerlen, ISOLATE_BACKLOG, 0, why,
		                   sizeof why);
		if (f->fd < 0) {
			snprintf(err, errlen, "--out %s: inside: %s", f->spec, why);
			return -1;
		}
	}
	/* room for the relays; CMD gets the limit it had */
	getrlimit(RLIMIT_NOFILE, &iso->nofile);
	struct rlimit want = iso->nofile;
	/* what is open now (the forwards' listeners and twins, the helper's socket) and a
	 * margin for the loop's own, then the relays' */
	rlim_t held = (rlim_t)procfs_open_fds() + 32;
	rlim_t need = (rlim_t)iso->cfg.max_conns * ISOLATE_FDS_PER_CONN + held;
	if (want.rlim_cur < need && want.rlim_cur != RLIM_INFINITY) {
		want.rlim_cur = want.rlim_max == RLIM_INFINITY || want.rlim_max > need ? need : want.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) < 0)
			want = iso->nofile;
		if (want.rlim_cur < need) {
			/* Past the hard limit a relay would find no descriptor and reset its
			 * client: relay what fits, and let the rest wait in the backlog. */
			unsigned fit = want.rlim_cur > held + ISOLATE_FDS_PER_CONN
			                       ? (unsigned)((want.rlim_cur - held) / ISOLATE_FDS_PER_CONN)
			                       : 1;
			fprintf(stderr,
			        "loopkit isolate: note: the descriptor limit (%llu; ulimit -Hn) holds "
			        "%u relayed connections at once, not --max-conns %u (%u descriptors "
			        "each); more wait in the backlog\n",
			        (unsigned long long)want.rlim_cur, fit, iso->cfg.max_conns,
			        (unsigned)ISOLATE_FDS_PER_CONN);
			iso->cfg.max_conns = fit;
		}
	}
	return 0;
}

void isolate_close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Closes a forward's listeners and its held twin (their acceptors stopped first). */
static void forward_close(struct isolate_forward *f)
{
	isolate_close_fd(&f->fd);
	isolate_close_fd(&f->inner_fd);
	isolate_close_fd(&f->twin);
}

void isolate_abandon(struct isolate *iso)
{
	if (!iso->prepared)
		return;
	for (size_t i = 0; i < iso->cfg.nfwd; i++)
		forward_close(&iso->cfg.fwd[i]);
	free(iso->notif_req);
	free(iso->notif_resp);
	iso->notif_req = iso->notif_resp = NULL;
	if (iso->helper_on) {
		shutdown(iso->helper_fd[0], SHUT_RDWR);
		pthread_join(iso->helper, NULL);
		iso->helper_on = 0;
	}
	for (int k = 0; k < 2; k++)
		if (iso->helper_fd[k] >= 0) {
			close(iso->helper_fd[k]);
			iso->helper_fd[k] = -1;
		}
	sigprocmask(SIG_SETMASK, &iso->oldmask, NULL);
	iso->prepared = 0;
}

/* ---- the namespace's pid 1 ---- */

/* Closes every descriptor above 2 except keep_a < keep_b. Failure is harmless: they are
 * all close-on-exec, so CMD never sees them. */
static void close_others(int keep_a, int keep_b)
{
	if (keep_a > 3)
		close_range(3, (unsigned)keep_a - 1, 0);
	if (keep_b > keep_a + 1)
		close_range((unsigned)keep_a + 1, (unsigned)keep_b - 1, 0);
	close_range((unsigned)keep_b + 1, ~0u, 0);
}

static void note(int fd, int what, int err)
{
	struct isolate_note n = {what, err};
	ssize_t w = write(fd, &n, sizeof n);
	(void)w;
}

/* CMD, from pid 1: vfork (no page tables copied) and exec_path with loopkit's signal mask
 * undone. Not posix_spawn: glibc's leaves its two internal signals ignored in CMD
 * (SigIgn 0x180000000), where a plain fork and exec leaves none. pid 1 has no signal
 * handlers, so the child sharing its memory until exec runs none either. Returns the
 * pid, or -1 with errno from fork or exec. */
/* execvp without its fallback: glibc's runs a file the kernel refuses (ENOEXEC: a
 * binary for another machine, a script without #!) with /bin/sh, where posix_spawnp
 * and a shell's own exec say "Exec format error". Returns the errno of the failure. */
static int exec_path(char *const argv[])
{
	const char *file = argv[0], *path = getenv("PATH");
	if (strchr(file, '/')) {
		execv(file, argv);
		return errno;
	}
	if (!path || !*path)
		path = "/bin:/usr/bin"; /* execvp's default */
	int eacces = 0;
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		char full[4096];
		size_t dl = (size_t)(end - p);
		if (dl + 1 + strlen(file) < sizeof full) {
			if (dl)
				memcpy(full, p, dl);
			else
				full[dl++] = '.'; /* an empty entry: the current directory */
			full[dl] = '/';
			strcpy(full + dl + 1, file);
			execv(full, argv);
			if (errno == EACCES)
				eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
			         errno != ETIMEDOUT)
				return errno; /* found, and it cannot run: say why */
		}
		if (!*end)
			break;
		p = end;
	}
	return eacces ? EACCES : ENOENT;
}

static pid_t spawn_cmd(struct isolate *iso)
{
	volatile int exec_err = 0;
	pid_t pid = vfork();
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &iso->oldmask, NULL);
		exec_err = exec_path(iso->cfg.argv);
		_exit(127);
	}
	if (pid > 0 && exec_err) {
		waitpid(pid, NULL, 0);
		errno = exec_err;
		return -1;
	}
	return pid;
}

/* pid 1 passes on a signal that loopkit got (every one of the forwarded set, from
 * anywhere: loopkit cannot tell a signal sent to it alone from one sent to its whole
 * process group or by the terminal). pid 1 keeps those signals blocked and never waits
 * for them, so a copy of its own stays pending: when the kernel sent sig to a process
 * group that pid 1 is in (the terminal's Ctrl-C, `kill -- -PGID`), it did so to CMD
 * too, and pid 1 got its copy before loopkit (a group is signalled newest member first),
 * so pid 1 drops that copy and passes nothing on. Otherwise: to CMD when it shares
 * loopkit's group (a terminal's job, as a shell sends `kill %1`'s signal to the job),
 * to CMD's whole group when it has its own (a runner stopping a job means all of it).
 * A signal sent to pid 1 alone, or to CMD's own group, stays pending as well and takes
 * the place of the next relay of that signal. */
static void relay_signal(const struct isolate *iso, pid_t cmd, int sig)
{
	uint64_t pending = 0, one = ksig_bit(sig);
	static const struct timespec now = {0, 0};
	if (pid1_sys(SYS_rt_sigpending, (long)&pending, KSIGSET_SIZE, 0, 0) == 0 &&
	    (pending & one)) { /* the group got it: CMD has its own */
		pid1_sys(SYS_rt_sigtimedwait, (long)&one, 0, (long)&now, KSIGSET_SIZE);
		return;
	}
	if (!iso->own_group) {
		pid1_sys(SYS_kill, cmd, sig, 0, 0);
		return;
	}
	pid1_sys(SYS_kill, 0, sig, 0, 0); /* pid 1's group: CMD and all it started */
	/* pid 1's own copy, queued by that kill */
	pid1_sys(SYS_rt_sigtimedwait, (long)&one, 0, (long)&now, KSIGSET_SIZE);
}

/* pid 1 of the new pid namespace: a fresh /proc, CMD as its child, loopkit's relayed
 * signals passed on, orphans reaped; exits with CMD's status, and the kernel then kills
 * whatever is left in the namespace. Only system calls here (the parent may have a
 * second thread): libc's until CMD runs, while loopkit waits, then pid1_sys alone (see
 * PID1_SHARES_MEMORY). */
static void __attribute__((noreturn)) init_main(struct isolate *iso, int note_fd, int life_fd, int direct_fd)
{
	siginfo_t si;
	int st;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct pollfd pfd = {.fd = life_fd, .events = POLLIN};
	if (poll(&pfd, 1, 0) > 0) /* loopkit died before PDEATHSIG was set */
		_exit(ISOLATE_EXIT_FAILED);
	if (direct_fd >= 0)
		direct_child(direct_fd); /* before CMD: it and all it starts inherit the filter */
	if (note_fd < life_fd)
		close_others(note_fd, life_fd);
	else
		close_others(life_fd, note_fd);
	if (iso->own_group)
		setpgid(0, 0); /* CMD follows: a signal to loopkit's group reaches loopkit alone */
	netns_init_mounts(&iso->ns);
	if (!iso->ns.proc)
		note(note_fd, NOTE_PROC, iso->ns.proc_err);
	setrlimit(RLIMIT_NOFILE, &iso->nofile); /* CMD gets the descriptor limit it had */
	drop_pending_forwarded();
	pid_t cmd = spawn_cmd(iso);
	if (cmd < 0) {
		int e = errno;
		note(note_fd, NOTE_EXEC, e);
		_exit(e == ENOENT || e == ENOTDIR ? ISOLATE_EXIT_NOTFOUND : ISOLATE_EXIT_NOEXEC);
	}
	/* loopkit goes on once this closes and CMD's copy is closed by its exec: from here
	 * on, only pid1_sys (see PID1_SHARES_MEMORY) */
	pid1_sys(SYS_close, note_fd, 0, 0, 0);
	uint64_t set = ksig_bit(SIGCHLD) | ksig_bit(RELAY_SIG);
	for (;;) {
		long sig = pid1_sys(SYS_rt_sigtimedwait, (long)&set, (long)&si, 0, KSIGSET_SIZE);
		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			long w;
			while ((w = pid1_sys(SYS_wait4, -1, (long)&st, WNOHANG, 0)) > 0)
				if (w == cmd)
					_exit(shell_status(st));
			continue;
		}
		if (si.si_code == SI_QUEUE && forwarded_sig(si.si_value.sival_int))
			relay_signal(iso, cmd, si.si_value.sival_int);
	}
}

/* ---- running ---- */

static void on_conn(void *arg, int fd, const struct sockaddr_storage *peer);

static void accept_resume(struct isolate *iso)
{
	iso->paused = 0;
	for (size_t i = 0; i < iso->cfg.nfwd; i++)
		isolate_forward_resume(&iso->cfg.fwd[i], 1, 1);
}

void isolate_forward_resume(struct isolate_forward *f, int host, int inner)
{
	struct isolate *iso = f->iso;
	if (iso->paused || iso->cmd_done || iso->closing)
		return;
	if (host && f->fd >= 0 && !f->handed)
		acceptor_start(&f->acc, iso->loop, f->fd, 0, ISOLATE_ACCEPT_BATCH, on_conn, f);
	if (inner && f->inner_fd >= 0)
		acceptor_start(&f->inner_acc, iso->loop, f->inner_fd, 0, ISOLATE_ACCEPT_BATCH,
		               isolate_on_inner_conn, f);
}

static void accept_pause(struct isolate *iso)
{
	iso->paused = 1;
	for (size_t i = 0; i < iso->cfg.nfwd; i++) {
		acceptor_stop(&iso->cfg.fwd[i].acc);
		acceptor_stop(&iso->cfg.fwd[i].inner_acc);
	}
}

static void finish_if_drained(struct isolate *iso)
{
	if (iso->cmd_done && !iso->relays)
		loop_stop(iso->loop);
}

void relay_gone(struct isolate *iso)
{
	iso->nconns--;
	if (iso->paused && !iso->cmd_done && iso->nconns < iso->cfg.max_conns)
		accept_resume(iso);
	finish_if_drained(iso);
}

/* A connection accepted on one of f's listeners, relayed to the host's end (to_host:
 * --out, or the listener inside of --direct) or to the inner one (-p). */
static void relay_conn(struct isolate_forward *f, int fd, int to_host)
{
	struct isolate *iso = f->iso;
	int s;

	iso->accepted++;
	if (to_host)
		s = isolate_host_socket(iso, f->host.ss_family);
	else /* this thread is in the namespace */
		s = socket(f->inner.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		iso->refused++;
		net_reset_on_close(fd);
		close(fd);
		return;
	}
	if (to_host)
		relay_start(iso, fd, s, &f->host, f->hostlen, 0);
	else
		relay_start(iso, fd, s, &f->inner, f->innerlen, 1);
	if (iso->nconns >= iso->cfg.max_conns && !iso->paused)
		accept_pause(iso); /* the rest wait in the backlog */
}

/* The listeners are on loopback (and inside): every peer is local. */
static void on_conn(void *arg, int fd, const struct sockaddr_storage *peer)
{
	struct isolate_forward *f = arg;
	(void)peer;
	relay_conn(f, fd, f->dir == ISOLATE_OUT);
}

void isolate_on_inner_conn(void *arg, int fd, const struct sockaddr_storage *peer)
{
	(void)peer;
	relay_conn(arg, fd, 1);
}

static void drain_cb(struct loop *l, struct loop_timer *t)
{
	struct isolate *iso = t->data;
	if (iso->bytes != iso->drain_mark) { /* still moving: give it another period */
		iso->drain_mark = iso->bytes;
		loop_timer_start(l, t, ISOLATE_DRAIN_MS);
		return;
	}
	/* bytes still held are lost: the peer sees a reset, not an end that looks whole */
	while (iso->relays)
		relay_close(iso->relays, iso->relays->d[0].inpipe || iso->relays->d[1].inpipe);
	loop_stop(l);
}

/* CMD (and with it the namespace) is gone: no new connections; what is in flight
 * towards the host may finish. */
static void cmd_exited(struct isolate *iso, int status)
{
	direct_stop(iso); /* it uses the host listeners, closed below */
	iso->cmd_done = 1;
	iso->exit_code = shell_status(status);
	for (size_t i = 0; i < iso->cfg.nfwd; i++) {
		struct isolate_forward *f = &iso->cfg.fwd[i];
		acceptor_stop(&f->acc);
		acceptor_stop(&f->inner_acc);
		forward_close(f);
	}
	for (struct relay *r = iso->relays, *next; r; r = next) {
		next = r->next;
		relay_pump(r); /* ends those whose inner side is done */
	}
	iso->drain_mark = iso->bytes;
	loop_timer_init(&iso->drain, drain_cb, iso);
	loop_timer_start(iso->loop, &iso->drain, ISOLATE_DRAIN_MS);
	finish_if_drained(iso);
}

static void sig_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct isolate *iso = io->data;
	struct signalfd_siginfo si;
	(void)l;
	(void)events;
	while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if ((int)si.ssi_signo == SIGCHLD) {
			int st;
			if (!iso->cmd_done && waitpid(iso->child, &st, WNOHANG) == iso->child)
				cmd_exited(iso, st);
			continue;
		}
		/* every one: pid 1 tells whether CMD got it too (relay_signal) */
		if (!iso->cmd_done)
			sigqueue(iso->child, RELAY_SIG, (union sigval){.sival_int = (int)si.ssi_signo});
	}
}

/* What pid 1 starts from: its ends of the pipes, and loopkit's ends, which it closes. */
struct pid1_args {
	struct isolate *iso;
	int note_fd, life_fd, direct_fd;
	int parent_fds[3];
};

static int pid1_entry(void *arg)
{
	const struct pid1_args *a = arg;
	for (int k = 0; k < 3; k++)
		if (a->parent_fds[k] >= 0)
			close(a->parent_fds[k]);
	init_main(a->iso, a->note_fd, a->life_fd, a->direct_fd);
}

/* pid 1 of a new pid namespace: returns its pid, or -1 with errno. It shares loopkit's
 * memory (PID1_SHARES_MEMORY) unless CMD could reach that memory: as root of a user
 * namespace that loopkit made (root without CAP_SYS_ADMIN, in a container), CMD holds
 * the capabilities pid 1 holds there and may write /proc/1/mem. Forked, pid 1's memory is
 * a copy, and CMD is kept from loopkit's, as before. A stack that cannot be mapped
 * means a fork too. */
static pid_t start_pid1(struct isolate *iso, struct pid1_args *a)
{
#ifdef PID1_SHARES_MEMORY
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len = PID1_STACK + page;
	char *stack = iso->ns.userns && iso->ns.uid == 0
	                      ? MAP_FAILED
	                      : mmap(NULL, len, PROT_READ | PROT_WRITE,
	                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack != MAP_FAILED) {
		mprotect(stack, page, PROT_NONE); /* a guard below it */
		pid_t pid = clone(pid1_entry, stack + len, CLONE_VM | CLONE_NEWPID | SIGCHLD, a);
		if (pid < 0) {
			int e = errno;
			munmap(stack, len);
			errno = e;
			return -1;
		}
		iso->pid1_stack = stack;
		iso->pid1_stack_len = len;
		return pid;
	}
#endif
	pid_t pid = netns_fork_pid1();
	if (pid == 0)
		pid1_entry(a);
	return pid;
}

/* Until CMD runs (it exec'd: the note pipe's last writer is gone) or could not be
 * started: pid 1 may use libc meanwhile, and with it this thread's errno, so this reads
 * the notes with pid1_sys alone and says what they tell once the pipe is done. */
static void wait_cmd_started(struct isolate *iso, int note_fd)
{
	struct isolate_note n, got[2];
	int ngot = 0;
	for (;;) {
		long r = pid1_sys(SYS_read, note_fd, (long)&n, sizeof n, 0);
		if (r == -EINTR)
			continue;
		if (r != (long)sizeof n)
			break; /* EOF: CMD runs, or pid 1 is gone */
		if (ngot < 2)
			got[ngot++] = n;
	}
	for (int k = 0; k < ngot; k++) {
		if (got[k].what == NOTE_EXEC)
			fprintf(stderr, "loopkit isolate: cannot run '%s': %s\n", iso->cfg.argv[0],
			        strerror(got[k].err));
		else if (got[k].what == NOTE_PROC && !iso->cfg.quiet)
			fprintf(stderr,
			        "loopkit isolate: warning: no mount namespace (%s): CMD sees the host's "
			        "/proc, "
			        "with the host's processes\n",
			        strerror(got[k].err));
	}
}

int isolate_run(struct isolate *iso)
{
	int note_p[2] = {-1, -1}, life_p[2] = {-1, -1}, direct_p[2] = {-1, -1}, nfd = -1;
	char err[160], msg[ISOLATE_ERR];
	sigset_t set;

	iso->exit_code = ISOLATE_EXIT_FAILED;
	if (pipe2(note_p, O_CLOEXEC) < 0 || pipe2(life_p, O_CLOEXEC) < 0 ||
	    (iso->cfg.direct && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, direct_p) < 0)) {
		fprintf(stderr, "loopkit isolate: pipe: %s\n", strerror(errno));
		goto out;
	}
	fflush(NULL);
	iso->own_group = !has_terminal();
	struct pid1_args pa = {iso, note_p[1], life_p[0], direct_p[1], {note_p[0], life_p[1], direct_p[0]}};
	iso->child = start_pid1(iso, &pa);
	if (iso->child < 0) {
		iso->ns.step = NETNS_PIDNS;
		iso->ns.err = errno;
		ns_failed(iso, msg, sizeof msg);
		fprintf(stderr, "loopkit isolate: %s\n", msg);
		goto out;
	}
	close(note_p[1]);
	close(life_p[0]);
	note_p[1] = life_p[0] = -1;
	iso->life_fd = life_p[1];
	wait_cmd_started(iso, note_p[0]);
	close(note_p[0]);
	note_p[0] = -1;
	if (direct_p[0] >= 0) {
		close(direct_p[1]);
		nfd = direct_receive(iso, direct_p[0]);
		direct_p[0] = direct_p[1] = -1;
		if (nfd < 0)
			fprintf(stderr,
			        "loopkit isolate: --direct: cannot watch the binds inside (seccomp: %s); the "
			        "-p forwards relay\n",
			        strerror(errno));
	}

	if (!(iso->loop = loop_new(err, sizeof err))) {
		fprintf(stderr, "loopkit isolate: %s\n", err);
		kill(iso->child, SIGKILL);
		waitpid(iso->child, NULL, 0);
		goto out;
	}
	forward_set(&set);
	sigaddset(&set, SIGCHLD);
	int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0 || loop_io_start(iso->loop, &iso->sig_io, sfd, LOOP_READ, sig_cb, iso) < 0) {
		fprintf(stderr, "loopkit isolate: signalfd: %s\n", strerror(errno));
		if (sfd >= 0 && iso->sig_io.fd < 0)
			close(sfd);
		kill(iso->child, SIGKILL);
		waitpid(iso->child, NULL, 0);
		goto out;
	}
	if (nfd >= 0 && direct_start(iso, nfd) < 0) {
		fprintf(stderr, "loopkit isolate: --direct: thread: %s\n", strerror(errno));
		nfd = -1;                  /* direct_stop closes it */
		kill(iso->child, SIGKILL); /* unanswered, every bind inside would block */
		waitpid(iso->child, NULL, 0);
		goto out;
	}
	nfd = -1; /* the bind thread's now */
	for (size_t i = 0; i < iso->cfg.nfwd; i++) {
		struct isolate_forward *f = &iso->cfg.fwd[i];
		if (acceptor_start(&f->acc, iso->loop, f->fd, 0, ISOLATE_ACCEPT_BATCH, on_conn, f) < 0)
			fprintf(stderr, "loopkit isolate: %s: cannot watch the listener: %s\n", f->spec,
			        strerror(errno));
	}
	/* a SIGCHLD that came before the signalfd is still pending: it is read at once */
	if (loop_run(iso->loop) < 0)
		fprintf(stderr, "loopkit isolate: event loop: %s\n", strerror(errno));
	if (!iso->cmd_done) { /* the loop failed: do not leave the namespace behind */
		int st;
		kill(iso->child, SIGKILL);
		waitpid(iso->child, &st, 0);
	}
out:
	iso->closing = 1; /* what the bind thread posted last may run in loop_free */
	direct_stop(iso); /* before the forwards close and the loop goes */
	if (iso->loop) {
		while (iso->relays)
			relay_close(iso->relays, 0);
		loop_timer_stop(iso->loop, &iso->drain);
		if (iso->sig_io.fd >= 0)
			loop_io_close(iso->loop, &iso->sig_io);
		for (size_t i = 0; i < iso->cfg.nfwd; i++) {
			acceptor_stop(&iso->cfg.fwd[i].acc);
			acceptor_stop(&iso->cfg.fwd[i].inner_acc);
		}
		loop_free(iso->loop);
		iso->loop = NULL;
	}
	for (int k = 0; k < 2; k++) {
		if (note_p[k] >= 0)
			close(note_p[k]);
		if (life_p[k] >= 0)
			close(life_p[k]);
		if (direct_p[k] >= 0)
			close(direct_p[k]);
	}
	if (nfd >= 0)
		close(nfd);
	if (iso->pid1_stack) /* pid 1 is reaped on every way here */
		munmap(iso->pid1_stack, iso->pid1_stack_len);
	iso->pid1_stack = NULL;
	isolate_abandon(iso);
	return iso->exit_code;
}
