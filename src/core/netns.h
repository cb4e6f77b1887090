/* netns.h - a private network namespace: user namespace and id maps, netns, lo up by rtnetlink, pidns. */
#ifndef LOOPKIT_CORE_NETNS_H
#define LOOPKIT_CORE_NETNS_H

#include <stddef.h>
#include <sys/types.h>

/* The steps, in the order they run; the one that failed names the cause. */
enum netns_step {
	NETNS_OK,        /* every step worked */
	NETNS_USERNS,    /* unshare(CLONE_NEWUSER) */
	NETNS_SETGROUPS, /* writing "deny" to /proc/self/setgroups */
	NETNS_UIDMAP,    /* writing /proc/self/uid_map */
	NETNS_GIDMAP,    /* writing /proc/self/gid_map */
	NETNS_NETNS,     /* unshare(CLONE_NEWNET) */
	NETNS_LO,        /* rtnetlink: 127.0.0.1/8 on lo, lo up */
	NETNS_PIDNS,     /* clone(CLONE_NEWPID): the pid namespace's first process */
	NETNS_FORK,      /* anything else that starts a process or a pipe */
	NETNS_STEPS
};

/* What entering did, and what failed. */
struct netns_state {
	enum netns_step step; /* NETNS_OK, or the step that failed */
	int err;              /* its errno (0 with NETNS_OK) */
	int userns;           /* a user namespace was made (not root, or root without CAP_SYS_ADMIN) */
	int ipv6;             /* ::1 is on lo (0: IPv6 is off in the namespace) */
	int proc;             /* a fresh /proc for the pid namespace is mounted (netns_init_mounts) */
	int proc_err;         /* why not, when proc is 0 (the command then sees the host's /proc) */
	uid_t uid;            /* the ids the command runs as, the same inside and outside */
	gid_t gid;
};

/* The step's text for messages: "unshare(CLONE_NEWUSER)", "writing /proc/self/uid_map". */
const char *netns_step_name(enum netns_step s);

/* First half, while the process is single-threaded: when this process lacks CAP_SYS_ADMIN
 * (not root, or root in a container), moves it into a new user namespace where it keeps
 * its own uid and gid (maps "uid uid 1", setgroups denied) and gains the capabilities the
 * next steps need. Fills st; returns 0, or -1 with st->step and st->err set. */
int netns_enter_user(struct netns_state *st);

/* Second half: moves the calling thread into a new network namespace (its other threads
 * stay where they are) and brings lo up with 127.0.0.1/8 and ::1 through rtnetlink.
 * Returns 0, or -1 with st->step and st->err set. */
int netns_enter_net(struct netns_state *st);

/* Forks the first process (pid 1) of a new pid namespace, in the caller's network
 * namespace: clone3 (or clone) with CLONE_NEWPID and fork's semantics. The caller's own
 * later children stay in its pid namespace (unshare(CLONE_NEWPID) would send them all
 * into the new one, where none can start once its pid 1 is gone). glibc's fork handlers
 * do not run: the child may use system calls and posix_spawn, not malloc or stdio.
 * Returns the child's pid in the parent, 0 in the child, -1 with errno on failure. */
pid_t netns_fork_pid1(void);

/* Brings lo of the current network namespace up: adds 127.0.0.1/8, sets IFF_UP, adds
 * ::1/128 (the kernel's own addresses are kept; IPv6 disabled is not an error: *ipv6
 * becomes 0). One rtnetlink socket, three requests, their acks. Returns 0, or -1 with
 * errno set and "what failed: why" in err. */
int netns_lo_up(int *ipv6, char *err, size_t errlen);

/* In the pid namespace's first process: a mount namespace of its own (mounts from the
 * host still propagate in, none out) with a fresh /proc, so pids read there are the
 * namespace's. Failure is not fatal: st->proc stays 0 and st->proc_err says why. Uses
 * only system calls (safe after fork in a threaded process). */
void netns_init_mounts(struct netns_state *st);

#endif
