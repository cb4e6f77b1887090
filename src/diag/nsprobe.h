/* nsprobe.h - can a command get a private network namespace here; if not, which control blocks it. */
#ifndef LOOPKIT_DIAG_NSPROBE_H
#define LOOPKIT_DIAG_NSPROBE_H

#include <stddef.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/netns.h"

#define NSPROBE_TEXT   400  /* cause and fix, one line each */
#define NSPROBE_ABSENT (-1) /* a control this kernel does not have */

/* The controls that decide whether namespaces may be made, as read from /proc before
 * any namespace is entered (inside a new user namespace the limits read differently). */
struct nsprobe_controls {
	long unprivileged_userns_clone; /* kernel.unprivileged_userns_clone (Debian's patch) */
	long max_user_namespaces;       /* user.max_user_namespaces */
	long max_net_namespaces;        /* user.max_net_namespaces */
	long max_pid_namespaces;        /* user.max_pid_namespaces */
	long max_mnt_namespaces;        /* user.max_mnt_namespaces */
	long apparmor_restrict;         /* kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10+) */
	long seccomp;                   /* Seccomp: of /proc/self/status: 0 none, 1 strict, 2 filter */
	long dumpable;                  /* prctl(PR_GET_DUMPABLE): 0 when the executable is unreadable */
	unsigned euid;
	int cap_sys_admin; /* root with CAP_SYS_ADMIN needs no user namespace */
};

/* A verdict: works, or what blocked it and how to allow it. */
struct nsprobe_verdict {
	int works;
	char control[64];         /* "user.max_user_namespaces", "seccomp", ... ; "" when unknown */
	long value;               /* the control's value (NSPROBE_ABSENT when it has none) */
	char cause[NSPROBE_TEXT]; /* "STEP: strerror: why" */
	char fix[NSPROBE_TEXT];   /* the command or change that allows it */
};

/* The whole probe: controls, a trial (the same steps `loopkit isolate` takes, in a child
 * that exits), and the verdict. */
struct nsprobe {
	struct nsprobe_controls c;
	struct netns_state st; /* the trial's outcome */
	int pid1;              /* the trial's first process was pid 1 of its namespace */
	int tcp;               /* a TCP connection over 127.0.0.1 inside worked */
	double ms;             /* the trial's time */
	struct nsprobe_verdict v;
};

/* Reads the controls (a few files of /proc). Never fails: what is missing reads as
 * NSPROBE_ABSENT. */
void nsprobe_controls_read(struct nsprobe_controls *c);

/* Explains an outcome: which control blocked the failed step and the command that allows
 * it (a table of rules, most specific first); works when st->step is NETNS_OK. Pure. */
void nsprobe_explain(const struct nsprobe_controls *c, const struct netns_state *st,
                     struct nsprobe_verdict *v);

/* Reads the controls, runs the trial in a child process (nothing of it remains) and
 * explains it. Returns p->v.works. */
int nsprobe_run(struct nsprobe *p);

/* The two renderings of one probe: lines for people, and one JSON object
 * {"works","user_namespace","ipv6","proc","step","errno","blocked_by","value","cause",
 * "fix","controls":{...},"uid","cap_sys_admin","ms"}; -1 when the buffer limit was hit. */
void nsprobe_print(FILE *f, const struct nsprobe *p);
int nsprobe_json(struct buf *b, const struct nsprobe *p);

#endif
