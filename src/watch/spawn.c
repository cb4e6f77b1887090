/* spawn.c - commands on the loop: cmd probes and --on-change, reaped through pidfds. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "watch/internal.h"

extern char **environ;

int watch_spawn(char *const argv[], char *const envp[], pid_t *pid, int *out_fd, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	int pipefd[2] = {-1, -1};
	if (out_fd && pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out_fd) {
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	} else {
		/* Our stdout carries the change lines (maybe JSON): a hook writes to stderr. */
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
	}
	/* The child gets a clean signal state: nothing blocked (we block the signals our
	 * signalfd reads), default actions; and a process group of its own, so a timeout
	 * kills what it started too. */
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&dflt);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	/* spawnp: an argv array's program is found on PATH, as a shell would find it. */
	int rc = posix_spawnp(pid, argv[0], &fa, &at, argv, envp ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (rc != 0) {
		if (rc == ENOENT && !strchr(argv[0], '/'))
			snprintf(err, errlen, "cannot run %s: not found on PATH", argv[0]);
		else
			snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
		if (pipefd[0] >= 0)
			close(pipefd[0]);
		return -1;
	}
	int pfd = pidfd_open(*pid, 0);
	if (pfd < 0) {
		snprintf(err, errlen, "pidfd_open: %s (Linux 5.3 or later is needed)", strerror(errno));
		kill(-*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		if (pipefd[0] >= 0)
			close(pipefd[0]);
		return -1;
	}
	if (out_fd)
		*out_fd = pipefd[0];
	return pfd;
}

int watch_reap(int pidfd, pid_t pid, char *why, size_t whylen)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	int rc;
	do
		rc = waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		snprintf(why, whylen, "waitid: %s", strerror(errno));
		return 0;
	}
	if (si.si_code == CLD_EXITED) {
		snprintf(why, whylen, "exit status %d", si.si_status);
		return si.si_status == 0;
	}
	snprintf(why, whylen, "killed by signal %d (%s)", si.si_status, strsignal(si.si_status));
	return 0;
}

/* ---- the cmd probe ---- */

/* Keeps the first bytes of the command's output (the failure text), drops the rest. */
static void drain_output(struct watch_probe *p)
{
	char tmp[4096];
	for (;;) {
		ssize_t r = read(p->out.fd, tmp, sizeof(tmp));
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				loop_io_close(p->w->loop, &p->out);
			return;
		}
		size_t room = sizeof(p->outtext) - 1 - p->outlen, k = (size_t)r < room ? (size_t)r : room;
		memcpy(p->outtext + p->outlen, tmp, k);
		p->outlen += k;
		p->outtext[p->outlen] = 0;
	}
}

static void out_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	drain_output(io->data);
}

static void exit_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct watch_probe *p = io->data;
	char why[64];
	int ok = watch_reap(io->fd, p->pid, why, sizeof(why));
	p->pid = 0;
	if (p->out.fd >= 0)
		drain_output(p);
	if (p->killed) {
		char ms[32];
		lk_ms_text(p->t->spec->timeout_ms, ms, sizeof(ms));
		snprintf(p->res.detail, sizeof(p->res.detail), "timed out after %s (killed)", ms);
		ok = 0;
	} else if (!ok) {
		/* "exit status 2: the first line it printed" */
		size_t k = strcspn(p->outtext, "\r\n");
		snprintf(p->res.detail, sizeof(p->res.detail), "%s%s%.*s", why, k ? ": " : "", (int)k,
		         p->outtext);
	}
	watch_probe_end(p, ok);
}

void watch_probe_cmd(struct watch_probe *p)
{
	struct loop *l = p->w->loop;
	if (p->pid > 0) { /* the deadline: kill it and what it started; reaped in exit_cb */
		p->killed = 1;
		kill(-p->pid, SIGKILL);
		return;
	}
	char err[160];
	int out = -1;
	int pfd = watch_spawn(p->t->spec->argv, NULL, &p->pid, &out, err, sizeof(err));
	if (pfd < 0) {
		p->pid = 0;
		snprintf(p->res.detail, sizeof(p->res.detail), "%s", err);
		watch_probe_end(p, 0);
		return;
	}
	if (loop_io_start(l, &p->out, out, LOOP_READ, out_cb, p) < 0)
		close(out);
	if (loop_io_start(l, &p->io, pfd, LOOP_READ, exit_cb, p) < 0) {
		/* Cannot watch it: wait for it here (it is killed first). */
		kill(-p->pid, SIGKILL);
		watch_reap(pfd, p->pid, err, sizeof(err));
		close(pfd);
		p->pid = 0;
		snprintf(p->res.detail, sizeof(p->res.detail), "epoll: %s", strerror(errno));
		watch_probe_end(p, 0);
	}
}

/* ---- --on-change ---- */

struct watch_job {
	struct watch *w;
	struct loop_io io; /* the pidfd */
	struct loop_timer timer;
	pid_t pid;
	int busy;
};

struct watch_jobq {
	char **env[WATCH_JOBQ_MAX]; /* environments waiting for a free job */
	unsigned head, n;
	int dropped_logged;
};

static void env_free(char **env)
{
	for (char **e = env; e && *e; e++)
		free(*e);
	free(env);
}

/* environ plus the change's WATCH_* variables (ours replace inherited ones). */
static char **env_for(const struct watch_row *row, enum watch_state from)
{
	char when[32];
	time_t now = (time_t)(row->last_ms / 1000);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const char *vars[][2] = {
	        {"WATCH_TARGET", row->name},
	        {"WATCH_URL", row->url},
	        {"WATCH_KIND", row->kind},
	        {"WATCH_STATE", watch_state_name(row->state)},
	        {"WATCH_PREVIOUS", watch_state_name(from)},
	        {"WATCH_DETAIL", row->detail},
	        {"WATCH_TIME", when},
	};
	size_t nv = sizeof(vars) / sizeof(vars[0]), ne = 0;
	while (environ[ne])
		ne++;
	char **env = calloc(ne + nv + 1, sizeof(char *));
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < ne; i++) {
		if (!strncmp(environ[i], "WATCH_", 6))
			continue;
		if (!(env[k++] = strdup(environ[i])))
			goto fail;
	}
	for (size_t i = 0; i < nv; i++) {
		size_t len = strlen(vars[i][0]) + strlen(vars[i][1]) + 2;
		if (!(env[k] = malloc(len)))
			goto fail;
		snprintf(env[k++], len, "%s=%s", vars[i][0], vars[i][1]);
	}
	return env;
fail:
	env_free(env);
	return NULL;
}

static void job_run(struct watch *w, struct watch_job *j, char **env);

static void job_exit_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct watch_job *j = io->data;
	struct watch *w = j->w;
	char why[64];
	if (!watch_reap(io->fd, j->pid, why, sizeof(why)))
		log_msg("--on-change command: %s", why);
	loop_timer_stop(l, &j->timer);
	loop_io_close(l, &j->io);
	j->busy = 0;
	w->njobs--;
	struct watch_jobq *q = w->jobq;
	if (q->n) {
		char **env = q->env[q->head];
		q->head = (q->head + 1) % WATCH_JOBQ_MAX;
		q->n--;
		job_run(w, j, env);
	}
}

static void job_timeout_cb(struct loop *l, struct loop_timer *t)
{
	struct watch_job *j = t->data;
	log_msg("--on-change command ran longer than %d s; killed", WATCH_JOB_TIMEOUT_MS / 1000);
	kill(-j->pid, SIGKILL);
}

static void job_run(struct watch *w, struct watch_job *j, char **env)
{
	char *argv[] = {"/bin/sh", "-c", (char *)w->cfg->on_change, NULL};
	char err[160];
	int pfd = watch_spawn(argv, env, &j->pid, NULL, err, sizeof(err));
	env_free(env);
	if (pfd < 0) {
		log_msg("--on-change: %s", err);
		return;
	}
	if (loop_io_start(w->loop, &j->io, pfd, LOOP_READ, job_exit_cb, j) < 0) {
		watch_reap(pfd, j->pid, err, sizeof(err));
		close(pfd);
		return;
	}
	j->busy = 1;
	w->njobs++;
	loop_timer_init(&j->timer, job_timeout_cb, j);
	loop_timer_start(w->loop, &j->timer, WATCH_JOB_TIMEOUT_MS);
}

void watch_on_change(struct watch *w, const struct watch_row *row, enum watch_state from)
{
	if (!w->cfg->on_change)
		return;
	if (!w->jobs) {
		w->jobs = calloc(WATCH_JOBS_MAX, sizeof(*w->jobs));
		w->jobq = calloc(1, sizeof(*w->jobq));
		if (!w->jobs || !w->jobq) {
			log_msg("--on-change: out of memory");
			return;
		}
		for (unsigned i = 0; i < WATCH_JOBS_MAX; i++) {
			w->jobs[i].w = w;
			w->jobs[i].io.fd = -1;
		}
	}
	char **env = env_for(row, from);
	if (!env) {
		log_msg("--on-change: out of memory");
		return;
	}
	for (unsigned i = 0; i < WATCH_JOBS_MAX; i++) {
		if (!w->jobs[i].busy) {
			job_run(w, &w->jobs[i], env);
			return;
		}
	}
	struct watch_jobq *q = w->jobq;
	if (q->n == WATCH_JOBQ_MAX) {
		env_free(env);
		w->jobs_dropped++;
		if (!q->dropped_logged)
			log_msg("--on-change: %d commands run and %d wait; further changes run no command "
			        "(counted in "
			        "loopkit_watch_hooks_dropped_total)",
			        WATCH_JOBS_MAX, WATCH_JOBQ_MAX);
		q->dropped_logged = 1;
		return;
	}
	q->env[(q->head + q->n++) % WATCH_JOBQ_MAX] = env;
}

void watch_jobs_stop(struct watch *w)
{
	if (!w->jobs)
		return;
	/* Running hooks finish on their own (their notice should go out); we stop
	 * watching them. Waiting ones are dropped. */
	for (unsigned i = 0; i < WATCH_JOBS_MAX; i++) {
		struct watch_job *j = &w->jobs[i];
		if (j->busy) {
			loop_timer_stop(w->loop, &j->timer);
			loop_io_close(w->loop, &j->io);
		}
	}
	while (w->jobq->n) {
		env_free(w->jobq->env[w->jobq->head]);
		w->jobq->head = (w->jobq->head + 1) % WATCH_JOBQ_MAX;
		w->jobq->n--;
	}
	free(w->jobs);
	free(w->jobq);
	w->jobs = NULL;
	w->jobq = NULL;
}
