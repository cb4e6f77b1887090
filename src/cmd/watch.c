/* watch.c - `loopkit watch`: health checks of local services with history, a status page and metrics. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/buf.h"
#include "core/errors.h"
#include "core/log.h"
#include "diag/ports.h"
#include "watch/watch.h"

#define WATCH_JSON_MAX (64u << 20) /* the --json document of 10,000 targets fits */
#define WATCH_LINE_MAX (16u << 10) /* one change line */

struct watch_args {
	struct watch_config cfg; /* the library's defaults, then the table's */
	struct cmd_list targets;
	const char *config;
	unsigned timeout_ms; /* 0: not given */
	int once, until_up, json;
	int color;           /* stdout is a terminal that takes colour */
	struct log_sink out; /* stdout for the change lines (WATCH_RUN) */
};
#define AT(f) CMD_AT(struct watch_args, f)

/* clang-format off */
static const struct cmd_flag watch_flags[] = {
	{ "TARGET", 0, NULL, NULL, "tcp://HOST:PORT, http://HOST:PORT/PATH, ftp://[USER:PASS@]HOST:PORT, udp://HOST:PORT or cmd:COMMAND (repeatable)", CMD_LIST, AT(targets), .attr = CMD_ARG },
	{ "config", 0, "FILE", NULL, "targets from a JSON file, with per-target checks (see loopkit-watch(1))", CMD_STR, AT(config) },
	{ "interval", 'i', "SECS", CMD_STR_OF(WATCH_INTERVAL_S_DEFAULT), "time between probes of a target", CMD_MS, AT(cfg.interval_ms), .min = WATCH_INTERVAL_MIN_MS, .max = WATCH_INTERVAL_MAX_MS },
	{ "timeout", 0, "SECS", NULL, "a probe slower than this fails (default " CMD_STR_OF(WATCH_TIMEOUT_S_DEFAULT) "s); with --until-up, the whole wait (default " CMD_STR_OF(WATCH_UNTIL_S_DEFAULT) "s)", CMD_MS, AT(timeout_ms), .min = WATCH_TIMEOUT_MIN_MS, .max = WATCH_TIMEOUT_MAX_MS },
	{ "retries", 0, "N", CMD_STR_OF(WATCH_RETRIES_DEFAULT), "failed probes forgiven before a target is DOWN", CMD_UINT, AT(cfg.retries), .max = WATCH_RETRIES_MAX },
	{ "db", 0, "FILE", NULL, "the history, in SQLite (without it: $XDG_STATE_HOME/loopkit/watch.db, else ~/.local/state/loopkit/watch.db)", CMD_STR, AT(cfg.db_path) },
	{ "port", 'p', "N", CMD_STR_OF(WATCH_PORT_DEFAULT), "port of the status page and /metrics on 127.0.0.1 (0: any free one)", CMD_UINT, AT(cfg.port), .max = 65535 },
	{ "once", 0, NULL, NULL, "probe every target once (retrying failures at once) and exit: 0 all up, 1 not", CMD_SWITCH, AT(once) },
	{ "until-up", 0, NULL, NULL, "wait until every target is up: exit 0 then, 1 when --timeout ends the wait", CMD_SWITCH, AT(until_up) },
	{ "json", 0, NULL, NULL, "JSON: one document with --once/--until-up, else one line per state change", CMD_SWITCH, AT(json) },
	{ "on-change", 0, "CMD", NULL, "run CMD (sh -c) on a state change, with WATCH_TARGET, WATCH_URL, WATCH_KIND, WATCH_STATE, WATCH_PREVIOUS, WATCH_DETAIL, WATCH_TIME in its environment", CMD_STR, AT(cfg.on_change) },
	{ "allow-remote", 0, NULL, NULL, "allow targets beyond loopback (watch only hosts you may)", CMD_SWITCH, AT(cfg.allow_remote) },
	{ "max-inflight", 0, "N", CMD_STR_OF(WATCH_INFLIGHT_DEFAULT), "probes in flight at once (also bound by the descriptor limit)", CMD_UINT, AT(cfg.max_inflight), .min = 1, .max = WATCH_INFLIGHT_MAX },
	{ "retention", 0, "SECS", WATCH_RETENTION_DEFAULT, "history older than this is deleted", CMD_MS, AT(cfg.retention_ms), .min = 1000, .max = 3650ull * 24 * 3600 * 1000 },
	{ "keep", 0, "N", CMD_STR_OF(WATCH_KEEP_DEFAULT), "results kept per target (older ones are deleted)", CMD_UINT, AT(cfg.retention_count), .min = 1, .max = 1000000000 },
	{ 0 },
};
/* clang-format on */

static const struct cmd_hint watch_hints[] = {
        {"-t", "wait-for-it's -t is --until-up --timeout SECS here"},
        {0},
};

static void watch_init(void *p)
{
	watch_config_init(&((struct watch_args *)p)->cfg);
}

static void on_change(void *arg, const struct watch_event *e)
{
	struct watch_args *a = arg;
	struct buf b;
	if (a->once)
		return;
	buf_init(&b, WATCH_LINE_MAX);
	if (a->until_up) { /* the wait's log, on stderr; stdout gets the result */
		if (e->row->state == WATCH_UP && !isatty(2) && watch_event_text(&b, e, 0) == 0)
			fwrite(buf_start(&b), 1, buf_used(&b), stderr);
	} else if ((a->json ? watch_event_json(&b, e) : watch_event_text(&b, e, a->color)) == 0) {
		/* Whole lines, never blocking: a reader that stops reading loses lines (counted,
		 * said at exit), the probes go on. */
		log_sink_write(&a->out, buf_start(&b), buf_used(&b));
	}
	buf_free(&b);
}

#define WATCH_WAIT_NAMES 8 /* targets named in --until-up's first line without a terminal */

static void on_progress(void *arg, const struct watch_report *r, uint64_t until_ms)
{
	const char *first = "";
	for (size_t i = 0; i < r->n && !first[0]; i++)
		if (r->rows[i].state != WATCH_UP)
			first = r->rows[i].name;
	fprintf(stderr, "\r\033[Kwaiting %.1f/%.0f s: %zu of %zu up%s%s", (double)r->elapsed_ms / 1000,
	        (double)until_ms / 1000, r->up, r->n, first[0] ? "; waiting for " : "", first);
	fflush(stderr);
}

/* The password of an ftp://USER:PASS@ target, overwritten in argv once the target holds
 * its copy: every user of the machine can read a command line (ps), as serve's --user. */
static void blank_password(const char *url)
{
	const char *at, *scheme = strstr(url, "://");
	if (!scheme)
		return;
	const char *user = scheme + 3, *end = user + strcspn(user, "/?#");
	for (at = end; at > user && at[-1] != '@';)
		at--;
	if (at == user)
		return; /* no userinfo */
	const char *colon = memchr(user, ':', (size_t)(at - 1 - user));
	if (colon)
		memset((char *)colon + 1, '*', (size_t)(at - 1 - colon - 1)); /* argv: writable */
}

static int watch_main(void *p)
{
	struct watch_args *a = p;
	struct watch_config *c = &a->cfg;
	char err[1024] = "";
	int rc = 2;
	if (a->once && a->until_up) {
		fprintf(stderr, "loopkit watch: give --once or --until-up, not both\n");
		return 2;
	}
	c->mode = a->once ? WATCH_ONCE : a->until_up ? WATCH_UNTIL_UP : WATCH_RUN;
	if (a->timeout_ms && a->until_up)
		c->until_ms = a->timeout_ms;
	else if (a->timeout_ms)
		c->timeout_ms = a->timeout_ms;
	for (size_t i = 0; i < a->targets.n; i++) {
		if (watch_config_add_url(c, a->targets.v[i], err, sizeof(err)) < 0)
			goto out;
		blank_password(a->targets.v[i]);
	}
	if (a->config && watch_config_need(err, sizeof(err)) < 0) {
		rc = 1;
		goto out;
	}
	if ((a->config && watch_config_load(c, a->config, err, sizeof(err)) < 0) ||
	    watch_config_finish(c, err, sizeof(err)) < 0)
		goto out;
	a->color = diag_color_ok(stdout);
	struct watch_hooks hooks = {.change = on_change, .arg = a};
	if (a->until_up && isatty(2))
		hooks.progress = on_progress;
	rc = 1;
	struct watch *w = watch_new(c, &hooks, err, sizeof(err));
	if (!w)
		goto out;
	if (a->until_up && !hooks.progress) {
		/* A CI log says at once what it waits for (as wait-for-it does); the targets
		 * that come up follow, one line each. */
		char ms[32];
		fprintf(stderr, "loopkit watch: waiting up to %s for %zu target%s:",
		        lk_ms_text(c->until_ms, ms, sizeof(ms)), c->ntargets, c->ntargets == 1 ? "" : "s");
		for (size_t i = 0; i < c->ntargets && i < WATCH_WAIT_NAMES; i++)
			fprintf(stderr, "%s %s", i ? "," : "", c->targets[i].name);
		fprintf(stderr, "%s\n", c->ntargets > WATCH_WAIT_NAMES ? ", ..." : "");
	}
	if (c->mode == WATCH_RUN) {
		/* The page's URL is the first line, for scripts and for people. */
		if (a->json)
			printf("{\"url\":\"%s\",\"targets\":%zu}\n", watch_url(w), c->ntargets);
		else
			printf("%s\n", watch_url(w));
		fflush(stdout);
		log_sink_open_fd(&a->out, 1);
	}
	struct watch_report r = {0};
	if (watch_run(w, c->mode == WATCH_RUN ? NULL : &r, err, sizeof(err)) == 0) {
		rc = 0;
		if (c->mode != WATCH_RUN) {
			if (hooks.progress)
				fputs("\r\033[K", stderr);
			if (a->json) {
				struct buf b;
				buf_init(&b, WATCH_JSON_MAX);
				if (watch_report_json(&b, &r) == 0)
					printf("%.*s\n", (int)buf_used(&b), buf_start(&b));
				buf_free(&b);
			} else {
				watch_report_print(stdout, &r, a->color);
			}
			rc = r.up == r.n ? 0 : 1;
		}
		watch_report_free(&r);
	}
	watch_free(w);
	if (c->mode == WATCH_RUN) {
		unsigned long lost = atomic_load(&a->out.dropped);
		if (lost)
			fprintf(stderr,
			        "loopkit watch: %lu bytes of change lines were dropped: stdout was not "
			        "read\n",
			        lost);
		log_sink_close(&a->out);
	}
out:
	if (err[0])
		cmd_error("watch", err);
	watch_config_free(c);
	return fflush(stdout) != 0 ? 1 : rc;
}

const struct cmd_verb cmd_watch = {
        .name = "watch",
        .summary = "health checks of local services: history, status page, Prometheus metrics",
        .about = "Probes local services (tcp connect, http status/body/JSON, ftp login, udp answer,\n"
                 "a command's exit status) every --interval, keeps every result in SQLite, and serves\n"
                 "a live status page and /metrics on 127.0.0.1. Only the targets given here or in\n"
                 "--config are probed: no request can add one. --once and --until-up are for CI.\n",
        .flags = watch_flags,
        .size = sizeof(struct watch_args),
        .init = watch_init,
        .run = watch_main,
        .hints = watch_hints,
        .examples = "$ loopkit watch tcp://127.0.0.1:5432 http://127.0.0.1:3000/health\n"
                    "$ loopkit watch --config watch.json --port 0\n"
                    "$ loopkit watch --once --json http://127.0.0.1:8080/\n"
                    "$ loopkit watch --until-up --timeout 30s tcp://127.0.0.1:5432 && make test\n",
};
