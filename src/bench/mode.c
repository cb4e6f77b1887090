/* mode.c - the bench modes as the verb drives them: run one, render its result, exit status. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/report.h"

/* The modes' typed functions behind the table's generic signatures. */
static int tcp_run(const void *o, const struct bench_ctl *c, void *r)
{
	return bench_tcp_run(o, c, r);
}
static int rr_run(const void *o, const struct bench_ctl *c, void *r)
{
	return bench_rr_run(o, c, r);
}
static void rr_free(void *r)
{
	bench_rr_free(r);
}
static int crr_run(const void *o, const struct bench_ctl *c, void *r)
{
	return bench_crr_run(o, c, r);
}
static void crr_free(void *r)
{
	bench_crr_free(r);
}
static int http_run(const void *o, const struct bench_ctl *c, void *r)
{
	return bench_http_run(o, c, r);
}
static void http_free(void *r)
{
	bench_http_free(r);
}

const struct bench_mode bench_mode_tcp = {"tcp", sizeof(struct bench_tcp_result), tcp_run, NULL,
                                          &bench_render_tcp};
const struct bench_mode bench_mode_rr = {"rr", sizeof(struct bench_rr_result), rr_run, rr_free,
                                         &bench_render_rr};
const struct bench_mode bench_mode_crr = {"crr", sizeof(struct bench_crr_result), crr_run, crr_free,
                                          &bench_render_crr};
const struct bench_mode bench_mode_http = {"http", sizeof(struct bench_http_result), http_run, http_free,
                                           &bench_render_http};

/* Whether path can be written, asked before the run (as scan does for --nmap-xml): a
 * plot that cannot be saved fails now, not after the run's work. The file is not
 * created or truncated here. Returns 0, or an errno. */
static int can_write(const char *path)
{
	struct stat st;
	if (!*path)
		return ENOENT;
	if (stat(path, &st) == 0) {
		/* a plot is a file: a FIFO would block the write after the run (and an open
		 * now would end its reader), a device is no place for it */
		if (!S_ISREG(st.st_mode))
			return S_ISDIR(st.st_mode) ? EISDIR : EMEDIUMTYPE;
		return access(path, W_OK) == 0 ? 0 : errno;
	}
	if (errno != ENOENT)
		return errno;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	return access(dir, W_OK | X_OK) == 0 ? 0 : errno;
}

int bench_mode_main(const struct bench_mode *m, const void *opts, const struct bench_ctl *ctl,
                    const struct bench_output *out)
{
	int e = out->svg ? can_write(out->svg) : 0;
	if (e) {
		fprintf(out->err, "loopkit bench %s: --svg %s: %s\n", m->name, out->svg,
		        e == EMEDIUMTYPE ? "not a plain file" : strerror(e));
		return 1;
	}
	struct bench_status *st = calloc(1, m->size); /* the result (large: per-second series) */
	if (!st) {
		fprintf(out->err, "loopkit bench %s: out of memory\n", m->name);
		return 1;
	}
	int ran = m->run(opts, ctl, st) == 0;
	int rc = st->usage ? 2 : !ran || st->failed ? 1 : 0;
	if (ran && bench_report_write(out->out, out->json, m->render, st) < 0) {
		fprintf(out->err, "loopkit bench %s: cannot write the report\n", m->name);
		rc = rc ? rc : 1;
	}
	if (ran && out->svg && m->render->svg(out->svg, st) < 0) {
		fprintf(out->err, "loopkit bench %s: cannot write %s: %s\n", m->name, out->svg,
		        strerror(errno));
		rc = rc ? rc : 1;
	}
	fflush(out->out); /* the report before the error, on a terminal too */
	if (st->error[0])
		fprintf(out->err, "loopkit bench %s: %s\n", m->name, st->error);
	if (m->free)
		m->free(st);
	free(st);
	return rc;
}
