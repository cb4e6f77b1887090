/* run.c - the watcher: targets on timers, a bounded number of probes in flight, states, the run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "diag/portlease.h"
#include "watch/internal.h"

#define FD_RESERVE  64  /* descriptors kept for the page, the database and the hooks */
#define PROGRESS_MS 250 /* --until-up: the progress line is redrawn this often */

const char *const watch_window_names[WATCH_WINDOWS] = {"1h", "24h", "7d"};

uint64_t watch_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void watch_row_fill(struct watch *w, const struct watch_target_rt *t, uint64_t wall_ms, struct watch_row *row)
{
	const struct watch_target *s = t->spec;
	memset(row, 0, sizeof(*row));
	row->id = t->id;
	row->name = s->name;
	row->url = s->url;
	row->kind = watch_kind_name(s->kind);
	row->state = t->state;
	row->fails = t->fails;
	row->retries = (unsigned)s->retries;
	row->has_result = t->has_result;
	row->ok = t->last.ok;
	row->latency_us = t->last.latency_us;
	row->status = t->last.status;
	row->body_bytes = t->last.body_bytes;
	row->detail = t->has_result && !t->last.ok ? t->last.detail : "";
	row->last_ms = t->has_result ? t->last.wall_ms : 0;
	row->since_ms = t->since_ms;
	for (int i = 0; i < WATCH_WINDOWS; i++)
		row->uptime[i] = watch_stats_uptime(&t->stats, wall_ms, i);
	row->npct = watch_stats_pcts(&t->stats, wall_ms, w->scratch, &row->p50_us, &row->p95_us);
	row->probes = t->probes;
	row->failures = t->failures;
	row->changes = t->changes;
	row->family = s->kind == WATCH_CMD ? 0 : s->addr.ss_family;
	row->cut_us = t->cut_us;
}

/* ---- scheduling ---- */

static void fill(struct watch *w);

static void enqueue(struct watch *w, struct watch_target_rt *t)
{
	if (t->queued || t->running || t->done)
		return;
	t->queued = 1;
	t->next_ready = NULL;
	if (w->ready_tail)
		w->ready_tail->next_ready = t;
	else
		w->ready_head = t;
	w->ready_tail = t;
}

static void due_cb(struct loop *l, struct loop_timer *tm)
{
	struct watch_target_rt *t = tm->data;
	enqueue(t->w, t);
	fill(t->w);
}

/* Starts probes while slots are free. A probe may finish inside its start (a refused
 * socket) and free its slot: the loop below picks that up instead of recursing. */
static void fill(struct watch *w)
{
	if (w->filling) {
		w->refill = 1;
		return;
	}
	w->filling++;
	do {
		w->refill = 0;
		while (w->nfree && w->ready_head && !w->stopping) {
			struct watch_target_rt *t = w->ready_head;
			w->ready_head = t->next_ready;
			if (!w->ready_head)
				w->ready_tail = NULL;
			t->queued = 0;
			unsigned idx = w->free[--w->nfree];
			struct watch_probe *p = &w->slots[idx];
			memset(p, 0, sizeof(*p));
			p->w = w;
			p->t = t;
			t->running = 1;
			t->due_ms = t->due_ms ? t->due_ms : loop_now(w->loop);
			w->inflight++;
			watch_probe_start(p);
		}
	} while (w->refill);
	w->filling--;
}

static int all_done(const struct watch *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (!w->t[i].done)
			return 0;
	return 1;
}

static void change(struct watch *w, struct watch_target_rt *t, enum watch_state to, uint64_t wall_ms)
{
	enum watch_state from = t->state;
	t->state = to;
	t->since_ms = wall_ms;
	t->changes++;
	t->state_seq = ++w->state_seq;
	if (w->store) {
		struct watch_rec r = {.target = t->db_id, .ts_ms = (int64_t)wall_ms, .kind = 1, .ok = to};
		watch_store_put(w->store, &r);
	}
	struct watch_row row;
	watch_row_fill(w, t, wall_ms, &row);
	struct watch_event e = {&row, from};
	if (w->hooks.change)
		w->hooks.change(w->hooks.arg, &e);
	/* A service found up at start is no news; everything else runs the hook. */
	if (!(from == WATCH_UNKNOWN && to == WATCH_UP))
		watch_on_change(w, &row, from);
}

/* A result: counters, history, the state (DOWN after retries + 1 failures in a row). */
static void record(struct watch *w, struct watch_target_rt *t, const struct watch_result *res)
{
	const struct watch_target *s = t->spec;
	t->last = *res;
	t->has_result = 1;
	t->probes++;
	watch_stats_add(&t->stats, res->wall_ms, res->ok, res->latency_us);
	t->seq = ++w->seq;
	if (w->store) {
		struct watch_rec r = {.target = t->db_id,
		                      .ts_ms = (int64_t)res->wall_ms,
		                      .ok = res->ok,
		                      .latency_us = (int64_t)res->latency_us,
		                      .status = res->status};
		if (!res->ok)
			snprintf(r.detail, sizeof(r.detail), "%s", res->detail);
		watch_store_put(w->store, &r);
	}
	if (res->ok) {
		t->fails = 0;
		if (t->state != WATCH_UP)
			change(w, t, WATCH_UP, res->wall_ms);
	} else {
		t->failures++;
		t->fails++;
		if (t->state != WATCH_DOWN && t->fails > (unsigned)s->retries)
			change(w, t, WATCH_DOWN, res->wall_ms);
	}
}

void watch_probe_done(struct watch_probe *p)
{
	struct watch *w = p->w;
	struct watch_target_rt *t = p->t;
	const struct watch_target *s = t->spec;
	struct watch_result res = p->res;
	watch_probe_release(p);
	t->running = 0;
	w->inflight--;
	w->free[w->nfree++] = (unsigned)(p - w->slots);
	if (w->stopping)
		return;
	record(w, t, &res);
	uint64_t now = loop_now(w->loop);
	switch (w->cfg->mode) {
	case WATCH_RUN: {
		/* Keep the target's own pace: the next probe is an interval after this one was
		 * due, or at once when it ran late (one probe per target at a time). */
		uint64_t next = t->due_ms + s->interval_ms;
		t->due_ms = next > now ? next : now;
		loop_timer_start(w->loop, &t->timer, t->due_ms - now);
		break;
	}
	case WATCH_ONCE:
		if (res.ok || t->state == WATCH_DOWN)
			t->done = 1;
		else
			enqueue(w, t); /* a retry, at once */
		break;
	case WATCH_UNTIL_UP:
		if (res.ok) {
			t->done = 1;
		} else {
			t->due_ms = now + (s->interval_ms < WATCH_POLL_MS ? s->interval_ms : WATCH_POLL_MS);
			loop_timer_start(w->loop, &t->timer, t->due_ms - now);
		}
		break;
	}
	if (w->cfg->mode != WATCH_RUN && all_done(w)) {
		w->stopping = 1;
		loop_stop(w->loop);
		return;
	}
	fill(w);
}

/* ---- the report ---- */

int watch_report_fill(struct watch *w, struct watch_report *r)
{
	memset(r, 0, sizeof(*r));
	r->rows = calloc(w->n ? w->n : 1, sizeof(*r->rows));
	if (!r->rows)
		return -1;
	uint64_t wall = watch_wall_ms();
	for (size_t i = 0; i < w->n; i++) {
		watch_row_fill(w, &w->t[i], wall, &r->rows[i]);
		if (w->t[i].state == WATCH_UP)
			r->up++;
		else if (w->t[i].state == WATCH_DOWN)
			r->down++;
		else
			r->pending++;
	}
	r->n = w->n;
	r->elapsed_ms = loop_now(w->loop) - w->started_ms;
	r->timed_out = w->timed_out;
	return 0;
}

void watch_report_free(struct watch_report *r)
{
	free(r->rows);
	r->rows = NULL;
}

static void until_cb(struct loop *l, struct loop_timer *tm)
{
	struct watch *w = tm->data;
	w->timed_out = 1;
	w->stopping = 1;
	loop_stop(l);
}

static void progress_cb(struct loop *l, struct loop_timer *tm)
{
	struct watch *w = tm->data;
	struct watch_report r;
	if (watch_report_fill(w, &r) == 0) {
		w->hooks.progress(w->hooks.arg, &r, w->cfg->until_ms);
		watch_report_free(&r);
	}
	loop_timer_start(l, tm, PROGRESS_MS);
}

static void start_cb(struct loop *l, struct loop_timer *tm)
{
	struct watch *w = tm->data;
	const struct watch_config *c = w->cfg;
	w->started_ms = loop_now(l);
	for (size_t i = 0; i < w->n; i++)
		enqueue(w, &w->t[i]);
	if (c->mode == WATCH_UNTIL_UP) {
		loop_timer_init(&w->until_timer, until_cb, w);
		loop_timer_start(l, &w->until_timer, c->until_ms);
		if (w->hooks.progress) {
			loop_timer_init(&w->progress_timer, progress_cb, w);
			loop_timer_start(l, &w->progress_timer, 0);
		}
	}
	fill(w);
}

static void signal_fn(struct loop *l, int signo, void *data)
{
	struct watch *w = data;
	w->stopping = 1;
	loop_stop(l);
}

/* ---- setup ---- */

/* mkdir -p of path's directory (0700: the history is the user's own). */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char d[4096];
	snprintf(d, sizeof(d), "%s", path);
	for (char *p = d + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(d, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s; give --db FILE", d, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

static int open_history(struct watch *w, char *err, size_t errlen)
{
	const struct watch_config *c = w->cfg;
	if (c->db_path) {
		snprintf(w->db_path, sizeof(w->db_path), "%s", c->db_path);
	} else if (watch_db_default(w->db_path, sizeof(w->db_path), err, errlen) < 0 ||
	           make_parents(w->db_path, err, errlen) < 0) {
		return -1;
	}
	w->store = watch_store_open(w->db_path, c->retention_ms, c->retention_count, err, errlen);
	if (!w->store)
		return -1;
	uint64_t wall = watch_wall_ms();
	for (size_t i = 0; i < w->n; i++) {
		struct watch_target_rt *t = &w->t[i];
		int state;
		if (watch_store_target(w->store, t->spec, &t->db_id, &state, &t->since_ms, &t->stats, wall,
		                       err, errlen) < 0)
			return -1;
		t->state = (enum watch_state)state; /* the last known state, until the first probe */
	}
	return 0;
}

struct watch *watch_new(const struct watch_config *cfg, const struct watch_hooks *hooks, char *err,
                        size_t errlen)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cfg = cfg;
	if (hooks)
		w->hooks = *hooks;
	w->listen_fd = w->listen_twin = -1;
	struct portlease_range eph;
	portlease_ephemeral(&eph);
	w->eph_lo = (uint16_t)eph.lo;
	w->eph_hi = (uint16_t)eph.hi;
	w->n = cfg->ntargets;
	w->t = calloc(w->n, sizeof(*w->t));
	w->scratch = hist_new();
	if (!w->t || !w->scratch || !(w->loop = loop_new(err, errlen))) {
		if (!err[0])
			snprintf(err, errlen, "out of memory");
		goto fail;
	}
	loop_set_spawns(w->loop); /* cmd targets and --on-change */
	/* Probes in flight: the flag's bound, the number of targets, and what the
	 * descriptor limit allows (a cmd probe holds two). */
	struct rlimit rl;
	unsigned max = cfg->max_inflight;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		rlim_t fit = rl.rlim_cur > 2 * FD_RESERVE ? (rl.rlim_cur - FD_RESERVE) / 2 : 1;
		if (fit < max)
			max = (unsigned)fit;
	}
	if (max > w->n)
		max = (unsigned)w->n;
	w->nslots = max ? max : 1;
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	w->free = calloc(w->nslots, sizeof(*w->free));
	if (!w->slots || !w->free) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < w->nslots; i++)
		w->free[w->nfree++] = w->nslots - 1 - i;
	for (size_t i = 0; i < w->n; i++) {
		struct watch_target_rt *t = &w->t[i];
		t->spec = &cfg->targets[i];
		t->id = i;
		t->w = w;
		loop_timer_init(&t->timer, due_cb, t);
	}
	/* SIGINT and SIGTERM end the run through the loop's signalfd: blocked here, before
	 * the history's thread starts, so no thread takes them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (loop_signal_init(w->loop, &set, signal_fn, w) < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		goto fail;
	}
	if (cfg->mode == WATCH_RUN) {
		if (open_history(w, err, errlen) < 0 || watch_page_start(w, err, errlen) < 0)
			goto fail;
	}
	return w;
fail:
	watch_free(w);
	return NULL;
}

const char *watch_url(const struct watch *w)
{
	return w->url;
}

const char *watch_db_path(const struct watch *w)
{
	return w->store ? w->db_path : "";
}

/* Ends what is still in flight: sockets closed, commands killed and reaped. */
static void abandon_probes(struct watch *w)
{
	for (unsigned i = 0; i < w->nslots; i++) {
		struct watch_probe *p = &w->slots[i];
		if (!p->t || !p->t->running)
			continue;
		loop_timer_stop(w->loop, &p->timer);
		p->t->cut_us = loop_clock_us() - p->t0_us;
		if (p->pid > 0 && p->io.fd >= 0) {
			char why[64];
			kill(-p->pid, SIGKILL);
			watch_reap(p->io.fd, p->pid, why, sizeof(why));
		}
		if (p->io.fd >= 0)
			loop_io_close(w->loop, &p->io);
		if (p->out.fd >= 0)
			loop_io_close(w->loop, &p->out);
		watch_probe_release(p);
		p->t->running = 0;
	}
}

int watch_run(struct watch *w, struct watch_report *r, char *err, size_t errlen)
{
	if (w->store && watch_store_start(w->store, err, errlen) < 0)
		return -1;
	/* Everything starts in the loop's first turn, on its fresh clock (setting up the
	 * history and the page took time that must not shorten the first interval). */
	loop_timer_init(&w->start_timer, start_cb, w);
	loop_timer_start(w->loop, &w->start_timer, 0);
	int rc = 0;
	if (loop_run(w->loop) < 0) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		rc = -1;
	}
	w->stopping = 1;
	abandon_probes(w);
	if (r && watch_report_fill(w, r) < 0) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	return rc;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	watch_page_stop(w);
	if (w->loop)
		watch_jobs_stop(w);
	watch_store_close(w->store);
	if (w->loop) {
		for (size_t i = 0; w->t && i < w->n; i++)
			loop_timer_stop(w->loop, &w->t[i].timer);
		loop_free(w->loop);
	}
	free(w->slots);
	free(w->free);
	free(w->t);
	free(w->scratch);
	free(w);
}
