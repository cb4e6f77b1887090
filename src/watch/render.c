/* render.c - a target's row as people, scripts, browsers and Prometheus see it: one struct, five renderings.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/errors.h"
#include "core/json.h"
#include "core/text.h"
#include "watch/internal.h"

#define SPARK_W      120 /* the sparkline's size in px */
#define SPARK_H      24
#define NAME_COL_MAX 40 /* widest target column of the table */

static const char *const ansi_state[] = {"\033[90m", "\033[32m", "\033[31m"};

/* "2024-05-01T10:00:00Z" */
static char *iso_time(uint64_t ms, char *out, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

/* "0.81 ms", "12.3 ms", "1.25 s" */
static char *dur_text(uint64_t us, char *out, size_t len)
{
	if (us < 10000)
		snprintf(out, len, "%.2f ms", (double)us / 1000);
	else if (us < 1000000)
		snprintf(out, len, "%.1f ms", (double)us / 1000);
	else
		snprintf(out, len, "%.2f s", (double)us / 1e6);
	return out;
}

static char *pct_text(double ratio, char *out, size_t len)
{
	if (ratio < 0)
		snprintf(out, len, "-");
	else if (ratio >= 1)
		snprintf(out, len, "100%%");
	else { /* rounded (2 of 3 is 66.67%), but a failure never shows as 100% */
		double pct = round(ratio * 10000) / 100;
		snprintf(out, len, "%.2f%%", pct < 99.99 ? pct : 99.99);
	}
	return out;
}

/* What the last probe said, in a few words. */
static void outcome_text(const struct watch_row *r, char *out, size_t len)
{
	if (!r->has_result && r->cut_us) { /* --until-up's wait ended first */
		char ran[32];
		snprintf(out, len, "no answer yet: the probe had waited %s when the run ended",
		         dur_text(r->cut_us, ran, sizeof(ran)));
	} else if (!r->has_result)
		snprintf(out, len, "not probed yet");
	else if (!r->ok)
		snprintf(out, len, "%s", r->detail);
	else if (!strcmp(r->kind, "http"))
		snprintf(out, len, "HTTP %d %s", r->status, lk_http_reason(r->status));
	else if (!strcmp(r->kind, "ftp"))
		snprintf(out, len, "FTP %d", r->status);
	else
		snprintf(out, len, "ok");
}

/* ---- the terminal ---- */

void watch_report_print(FILE *f, const struct watch_report *r, int color)
{
	int w = 6;
	for (size_t i = 0; i < r->n; i++) {
		int k = (int)strlen(r->rows[i].name);
		w = k > w ? k : w;
	}
	w = w > NAME_COL_MAX ? NAME_COL_MAX : w;
	fprintf(f, "%-8s %-*s %10s  %s\n", "STATE", w, "TARGET", "LATENCY", "DETAIL");
	for (size_t i = 0; i < r->n; i++) {
		const struct watch_row *x = &r->rows[i];
		char lat[32] = "-", what[WATCH_DETAIL_MAX + 64];
		if (x->has_result)
			dur_text(x->latency_us, lat, sizeof(lat));
		outcome_text(x, what, sizeof(what));
		const char *st = watch_state_name(x->state);
		fprintf(f, "%s%-8s%s %-*s %10s  %s", color ? ansi_state[x->state] : "", st,
		        color ? "\033[0m" : "", w, x->name, lat, what);
		if (strcmp(x->name, x->url) != 0)
			fprintf(f, "  [%s]", x->url);
		fputc('\n', f);
	}
	fprintf(f, "%zu target%s: %zu up, %zu down, %zu pending (%.2f s)%s\n", r->n, r->n == 1 ? "" : "s",
	        r->up, r->down, r->pending, (double)r->elapsed_ms / 1000,
	        r->timed_out ? "; gave up waiting" : "");
}

int watch_event_text(struct buf *b, const struct watch_event *e, int color)
{
	const struct watch_row *x = e->row;
	char when[32], what[WATCH_DETAIL_MAX + 64];
	iso_time(x->since_ms, when, sizeof(when));
	outcome_text(x, what, sizeof(what));
	int rc = buf_printf(b, "%s  %s%-7s%s %s", when, color ? ansi_state[x->state] : "",
	                    watch_state_name(x->state), color ? "\033[0m" : "", x->name);
	if (strcmp(x->name, x->url) != 0)
		rc |= buf_printf(b, " [%s]", x->url);
	if (x->ok) {
		char lat[32];
		return rc | buf_printf(b, "  %s in %s\n", what, dur_text(x->latency_us, lat, sizeof(lat)));
	}
	return rc |
	       buf_printf(b, "  %s (%u failed probe%s in a row)\n", what, x->fails, x->fails == 1 ? "" : "s");
}

/* ---- JSON ---- */

static void json_ms(struct json *j, const char *key, uint64_t us)
{
	json_key(j, key);
	json_double(j, (double)us / 1000);
}

static void json_time(struct json *j, const char *key, uint64_t ms)
{
	json_key(j, key);
	if (ms) {
		char t[32];
		json_str(j, iso_time(ms, t, sizeof(t)));
	} else {
		json_null(j);
	}
}

void watch_row_json(struct json *j, const struct watch_row *r)
{
	json_obj_begin(j);
	json_kstr(j, "name", r->name);
	json_kstr(j, "url", r->url);
	json_kstr(j, "kind", r->kind);
	json_kstr(j, "state", watch_state_name(r->state));
	json_time(j, "since", r->since_ms);
	json_kuint(j, "consecutive_failures", r->fails);
	json_key(j, "last");
	if (r->has_result) {
		json_obj_begin(j);
		json_kbool(j, "ok", r->ok);
		json_time(j, "time", r->last_ms);
		json_ms(j, "latency_ms", r->latency_us);
		json_kuint(j, "status", (unsigned)r->status);
		json_kstr(j, "detail", r->detail);
		json_obj_end(j);
	} else {
		json_null(j);
	}
	if (r->cut_us) { /* a probe the end of the run cut short */
		json_ms(j, "unanswered_ms", r->cut_us);
	} else {
		json_key(j, "unanswered_ms");
		json_null(j);
	}
	json_key(j, "uptime");
	json_obj_begin(j);
	for (int i = 0; i < WATCH_WINDOWS; i++) {
		json_key(j, watch_window_names[i]);
		if (r->uptime[i] < 0)
			json_null(j);
		else
			json_double(j, r->uptime[i]);
	}
	json_obj_end(j);
	json_key(j, "latency_1h");
	json_obj_begin(j);
	json_kuint(j, "samples", r->npct);
	if (r->npct) {
		json_ms(j, "p50_ms", r->p50_us);
		json_ms(j, "p95_ms", r->p95_us);
	}
	json_obj_end(j);
	json_kuint(j, "probes", r->probes);
	json_kuint(j, "failures", r->failures);
	json_kuint(j, "changes", r->changes);
	json_obj_end(j);
}

int watch_report_json(struct buf *b, const struct watch_report *r)
{
	struct json j;
	json_init(&j, b, 1);
	json_obj_begin(&j);
	json_key(&j, "targets");
	json_arr_begin(&j);
	for (size_t i = 0; i < r->n; i++)
		watch_row_json(&j, &r->rows[i]);
	json_arr_end(&j);
	json_kuint(&j, "total", r->n);
	json_kuint(&j, "up", r->up);
	json_kuint(&j, "down", r->down);
	json_kuint(&j, "pending", r->pending);
	json_kuint(&j, "elapsed_ms", r->elapsed_ms);
	json_kbool(&j, "timed_out", r->timed_out);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}

int watch_event_json(struct buf *b, const struct watch_event *e)
{
	const struct watch_row *x = e->row;
	struct json j;
	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_time(&j, "time", x->since_ms);
	json_kstr(&j, "target", x->name);
	json_kstr(&j, "url", x->url);
	json_kstr(&j, "kind", x->kind);
	json_kstr(&j, "state", watch_state_name(x->state));
	json_kstr(&j, "previous", watch_state_name(e->from));
	json_ms(&j, "latency_ms", x->latency_us);
	json_kuint(&j, "status", (unsigned)x->status);
	json_kstr(&j, "detail", x->detail);
	json_kuint(&j, "consecutive_failures", x->fails);
	json_obj_end(&j);
	return j.err || buf_puts(b, "\n") < 0 ? -1 : 0;
}

/* ---- HTML ---- */

/* The last hour as an inline SVG on a light ground: mean latency per minute as a line
 * (gaps where no probe succeeded; a minute alone is a dot), a red tick under each
 * minute with failures. */
static int sparkline(struct buf *b, const struct watch_stats *s, uint64_t wall_ms)
{
	double lat[WATCH_SPARK_POINTS], fail[WATCH_SPARK_POINTS], max = 0;
	watch_stats_spark(s, wall_ms, lat, fail);
	for (int k = 0; k < WATCH_SPARK_POINTS; k++)
		max = lat[k] > max ? lat[k] : max;
	int rc = buf_printf(
	        b,
	        "<svg class=\"spark\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">"
	        "<title>last hour: mean latency per minute (top: %.1f ms); red: failed probes</title>"
	        "<rect width=\"%d\" height=\"%d\" fill=\"#f6f8fa\"/>",
	        SPARK_W, SPARK_H, SPARK_W, SPARK_H, max / 1000, SPARK_W, SPARK_H);
	double step = (double)SPARK_W / WATCH_SPARK_POINTS, top = SPARK_H - 8, y[WATCH_SPARK_POINTS];
	int pen = 0, any = 0;
	for (int k = 0; k < WATCH_SPARK_POINTS; k++) {
		if (lat[k] < 0) {
			pen = 0;
			continue;
		}
		if (!any)
			rc |= buf_puts(b, "<path fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" d=\"");
		any = 1;
		y[k] = 2 + (max > 0 ? top - lat[k] / max * top : top);
		rc |= buf_printf(b, "%c%.1f %.1f", pen ? 'L' : 'M', k * step + step / 2, y[k]);
		pen = 1;
	}
	if (any)
		rc |= buf_puts(b, "\"/>");
	for (int k = 0; k < WATCH_SPARK_POINTS; k++) {
		int alone = lat[k] >= 0 && (k == 0 || lat[k - 1] < 0) &&
		            (k + 1 == WATCH_SPARK_POINTS || lat[k + 1] < 0);
		if (alone)
			rc |= buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.8\" fill=\"#1565c0\"/>",
			                 k * step + step / 2, y[k]);
		if (fail[k] > 0)
			rc |= buf_printf(
			        b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"4\" fill=\"#c62828\"/>",
			        k * step, SPARK_H - 4, step);
	}
	return rc | buf_puts(b, "</svg>");
}

int watch_row_html(struct buf *b, const struct watch_row *r, const struct watch_stats *s, uint64_t wall_ms)
{
	char t[64], what[WATCH_DETAIL_MAX + 64];
	const char *st = watch_state_name(r->state);
	int rc = buf_printf(b, "<td class=\"state\">%s</td><td class=\"name\">", st);
	rc |= text_html(b, r->name);
	if (strcmp(r->name, r->url) != 0) {
		rc |= buf_puts(b, "<small>");
		rc |= text_html(b, r->url);
		rc |= buf_puts(b, "</small>");
	}
	rc |= buf_puts(b, "</td><td class=\"when\">");
	rc |= buf_puts(b, r->has_result ? iso_time(r->last_ms, t, sizeof(t)) + 11 : "-");
	rc |= buf_printf(b, "</td><td class=\"num\">%s</td>",
	                 r->has_result ? dur_text(r->latency_us, t, sizeof(t)) : "-");
	if (r->npct) {
		char p95[32];
		rc |= buf_printf(b, "<td class=\"num\">%s / %s</td>", dur_text(r->p50_us, t, sizeof(t)),
		                 dur_text(r->p95_us, p95, sizeof(p95)));
	} else {
		rc |= buf_puts(b, "<td class=\"num\">-</td>");
	}
	for (int i = 0; i < WATCH_WINDOWS; i++)
		rc |= buf_printf(b, "<td class=\"num up%d\">%s</td>", i,
		                 pct_text(r->uptime[i], t, sizeof(t)));
	rc |= buf_puts(b, "<td>");
	rc |= sparkline(b, s, wall_ms);
	rc |= buf_puts(b, "</td><td class=\"detail\">");
	outcome_text(r, what, sizeof(what));
	rc |= text_html(b, what);
	if (!r->ok && r->has_result && r->state != WATCH_DOWN)
		rc |= buf_printf(b, " (%u of %u failures before down)", r->fails, r->retries + 1);
	return rc | buf_puts(b, "</td>");
}

/* ---- Prometheus ---- */

/* A label value: \\, \" and \n escaped (the exposition format). */
static int label(struct buf *b, const char *s)
{
	int rc = 0;
	for (const char *run = s;; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
		if (!esc && *s)
			continue;
		rc |= buf_append(b, run, (size_t)(s - run));
		if (!*s)
			return rc;
		rc |= buf_puts(b, esc);
		run = s + 1;
	}
}

/* One metric family: its HELP and TYPE lines. */
struct family {
	const char *name, *type, *help;
};

enum fam {
	F_SUCCESS,
	F_DURATION,
	F_HTTP_STATUS,
	F_HTTP_LENGTH,
	F_IP_PROTOCOL,
	F_UP,
	F_UPTIME,
	F_LATENCY,
	F_PROBES,
	F_FAILS,
	F_CHANGES,
	F_SINCE,
	F_COUNT
};

static const struct family families[F_COUNT] = {
        {"probe_success", "gauge", "Whether the last probe succeeded (blackbox_exporter's name)."},
        {"probe_duration_seconds", "gauge", "How long the last probe took, in seconds."},
        {"probe_http_status_code", "gauge", "HTTP status of the last answer; 0 when none came."},
        {"probe_http_content_length", "gauge", "Body bytes of the last HTTP answer."},
        {"probe_ip_protocol", "gauge", "IP version the probe used: 4 or 6."},
        {"loopkit_watch_up", "gauge",
         "1 when the target is up, 0 when down (after its retries); absent while pending."},
        {"loopkit_watch_uptime_ratio", "gauge",
         "Share of successful probes in the window (1h, 24h, 7d), from the history."},
        /* A summary (quantiles only): promtool and Prometheus take a quantile label on
         * summaries alone. */
        {"loopkit_watch_latency_seconds", "summary",
         "Latency quantiles of the successful probes of the last hour."},
        {"loopkit_watch_probes_total", "counter", "Probes since the watcher started, by result."},
        {"loopkit_watch_consecutive_failures", "gauge", "Failed probes in a row."},
        {"loopkit_watch_state_changes_total", "counter", "State changes since the watcher started."},
        {"loopkit_watch_last_change_timestamp_seconds", "gauge", "When the state last changed (Unix time)."},
};

/* `name{target="..",kind=".."` then extra labels, then `} value`. */
static int sample(struct buf *b, enum fam f, const struct watch_row *r, const char *extra, double v)
{
	int rc = buf_printf(b, "%s{target=\"", families[f].name);
	rc |= label(b, r->name);
	rc |= buf_printf(b, "\",kind=\"%s\"%s} ", r->kind, extra ? extra : "");
	if (v == floor(v) && fabs(v) < 1e15)
		rc |= buf_printf(b, "%.0f\n", v);
	else
		rc |= buf_printf(b, "%.9g\n", v);
	return rc;
}

static int family_rows(struct buf *b, enum fam f, const struct watch_row *rows, size_t n)
{
	int rc = buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
	                    families[f].name, families[f].type);
	for (size_t i = 0; i < n; i++) {
		const struct watch_row *r = &rows[i];
		int http = !strcmp(r->kind, "http");
		switch (f) {
		case F_SUCCESS:
			if (r->has_result)
				rc |= sample(b, f, r, NULL, r->ok);
			break;
		case F_DURATION:
			if (r->has_result)
				rc |= sample(b, f, r, NULL, (double)r->latency_us / 1e6);
			break;
		case F_HTTP_STATUS:
			if (r->has_result && http)
				rc |= sample(b, f, r, NULL, r->status);
			break;
		case F_HTTP_LENGTH:
			if (r->has_result && http)
				rc |= sample(b, f, r, NULL, (double)r->body_bytes);
			break;
		case F_IP_PROTOCOL:
			if (r->family)
				rc |= sample(b, f, r, NULL, r->family == AF_INET6 ? 6 : 4);
			break;
		case F_UP:
			if (r->state != WATCH_UNKNOWN)
				rc |= sample(b, f, r, NULL, r->state == WATCH_UP);
			break;
		case F_UPTIME:
			for (int k = 0; k < WATCH_WINDOWS; k++) {
				char ex[32];
				snprintf(ex, sizeof(ex), ",window=\"%s\"", watch_window_names[k]);
				if (r->uptime[k] >= 0)
					rc |= sample(b, f, r, ex, r->uptime[k]);
			}
			break;
		case F_LATENCY:
			if (r->npct) {
				rc |= sample(b, f, r, ",quantile=\"0.5\"", (double)r->p50_us / 1e6);
				rc |= sample(b, f, r, ",quantile=\"0.95\"", (double)r->p95_us / 1e6);
			}
			break;
		case F_PROBES:
			rc |= sample(b, f, r, ",result=\"success\"", (double)(r->probes - r->failures));
			rc |= sample(b, f, r, ",result=\"failure\"", (double)r->failures);
			break;
		case F_FAILS: rc |= sample(b, f, r, NULL, r->fails); break;
		case F_CHANGES: rc |= sample(b, f, r, NULL, (double)r->changes); break;
		case F_SINCE:
			if (r->since_ms)
				rc |= sample(b, f, r, NULL, (double)(r->since_ms / 1000));
			break;
		case F_COUNT: break;
		}
	}
	return rc;
}

int watch_metrics(struct buf *b, struct watch *w)
{
	struct watch_report r;
	if (watch_report_fill(w, &r) < 0)
		return -1;
	int rc = 0;
	for (int f = 0; f < F_COUNT; f++)
		rc |= family_rows(b, (enum fam)f, r.rows, r.n);
	watch_report_free(&r);
	struct watch_store_stats st = {0};
	if (w->store)
		watch_store_stats(w->store, &st);
	rc |= buf_printf(
	        b,
	        "# HELP loopkit_watch_targets Targets this watcher probes.\n"
	        "# TYPE loopkit_watch_targets gauge\nloopkit_watch_targets %zu\n"
	        "# HELP loopkit_watch_probes_in_flight Probes running now.\n"
	        "# TYPE loopkit_watch_probes_in_flight gauge\nloopkit_watch_probes_in_flight %u\n"
	        "# HELP loopkit_watch_history_written_total Results and changes written to the history.\n"
	        "# TYPE loopkit_watch_history_written_total counter\nloopkit_watch_history_written_total "
	        "%llu\n"
	        "# HELP loopkit_watch_history_dropped_total Results the history could not take (disk "
	        "errors, queue full).\n"
	        "# TYPE loopkit_watch_history_dropped_total counter\nloopkit_watch_history_dropped_total "
	        "%llu\n"
	        "# HELP loopkit_watch_history_failing 1 while the history cannot be written.\n"
	        "# TYPE loopkit_watch_history_failing gauge\nloopkit_watch_history_failing %d\n"
	        "# HELP loopkit_watch_history_batch_seconds How long the last batch took to write.\n"
	        "# TYPE loopkit_watch_history_batch_seconds gauge\nloopkit_watch_history_batch_seconds %.6f\n"
	        "# HELP loopkit_watch_hooks_dropped_total State changes whose --on-change command did "
	        "not run (too many waiting).\n"
	        "# TYPE loopkit_watch_hooks_dropped_total counter\nloopkit_watch_hooks_dropped_total %llu\n",
	        w->n, w->inflight, (unsigned long long)st.written, (unsigned long long)st.dropped, st.failing,
	        st.last_batch_s, (unsigned long long)w->jobs_dropped);
	return rc;
}
