/* report.c - the one renderer of bench results: a report is a sequence of fields, each
 * with its JSON key and its human format, so text and JSON never compute apart. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/report.h"
#include "core/buf.h"
#include "core/json.h"

#define REP_JSON_MAX  (16u << 20) /* largest JSON document */
#define REP_WRAP      96          /* human warnings wrap at this column */
#define REP_INDENT    14          /* where a human line's value starts */
#define REP_TITLE_MAX 512         /* a plot's title */

/* A report being written: JSON into j, or human text into f. A field with a NULL key
 * is human-only; one with a NULL format is JSON-only. */
struct bench_rep {
	struct json *j;
	FILE *f;
	int open;    /* human: a line is open */
	int entries; /* human: map entries on this line */
};

/* Human: where the text goes; the line is open from now on. */
static FILE *out(struct bench_rep *w)
{
	w->open = 1;
	return w->f;
}

/* fmt with "(s)" made "s" unless one. */
static const char *plural(const char *fmt, int one, char *out, size_t len)
{
	const char *p = strstr(fmt, "(s)");
	if (!p)
		return fmt;
	snprintf(out, len, "%.*s%s%s", (int)(p - fmt), fmt, one ? "" : "s", p + 3);
	return out;
}

/* Human: ends the open line and starts one with label ("  label      "); a NULL
 * label starts a bare line. */
static void w_line(struct bench_rep *w, const char *label)
{
	if (w->j)
		return;
	if (w->open)
		fputc('\n', w->f);
	w->entries = 0;
	if (label)
		fprintf(out(w), "  %-11s ", label);
	w->open = 1;
}

/* Human: an empty line. */
static void w_blank(struct bench_rep *w)
{
	if (w->j)
		return;
	fputs(w->open ? "\n\n" : "\n", w->f);
	w->open = 0;
}

static void w_text(struct bench_rep *w, const char *s)
{
	if (!w->j && s)
		fputs(s, out(w));
}

static void w_key(struct bench_rep *w, const char *key)
{
	json_key(w->j, key);
}

static void w_uint(struct bench_rep *w, const char *key, uint64_t v, const char *fmt)
{
	char b[128];
	if (w->j) {
		if (key)
			w_key(w, key), json_uint(w->j, v);
	} else if (fmt) {
		fprintf(out(w), plural(fmt, v == 1, b, sizeof b), (unsigned long long)v);
	}
}

static void w_int(struct bench_rep *w, const char *key, long v, const char *fmt)
{
	if (w->j) {
		if (key)
			w_key(w, key), json_int(w->j, v);
	} else if (fmt) {
		fprintf(out(w), fmt, v);
	}
}

/* A JSON number with dec decimals, null when not finite. */
static void json_num(struct json *j, double v, int dec)
{
	char t[64];
	int n = snprintf(t, sizeof t, "%.*f", dec, v);
	if (isfinite(v))
		json_raw(j, t, (size_t)n);
	else
		json_null(j);
}

/* A number: JSON with dec decimals, human with fmt of v * scale. */
static void w_num_scaled(struct bench_rep *w, const char *key, double v, int dec, const char *fmt,
                         double scale)
{
	if (w->j) {
		if (key)
			w_key(w, key), json_num(w->j, v, dec);
	} else if (fmt) {
		fprintf(out(w), fmt, v * scale);
	}
}

static void w_num(struct bench_rep *w, const char *key, double v, int dec, const char *fmt)
{
	w_num_scaled(w, key, v, dec, fmt, 1);
}

static void w_str(struct bench_rep *w, const char *key, const char *s, const char *fmt)
{
	if (w->j) {
		if (key)
			w_key(w, key), json_str(w->j, s);
	} else if (fmt) {
		fprintf(out(w), fmt, s);
	}
}

static void w_bool(struct bench_rep *w, const char *key, int v, const char *yes, const char *no)
{
	if (w->j) {
		if (key)
			w_key(w, key), json_bool(w->j, v);
	} else {
		w_text(w, v ? yes : no);
	}
}

/* JSON only: null under key. */
static void w_null(struct bench_rep *w, const char *key)
{
	if (w->j)
		w_key(w, key), json_null(w->j);
}

/* JSON only: an object or array under key, closed by w_end. */
static void w_obj(struct bench_rep *w, const char *key)
{
	if (w->j)
		w_key(w, key), json_obj_begin(w->j);
}

static void w_arr(struct bench_rep *w, const char *key)
{
	if (w->j)
		w_key(w, key), json_arr_begin(w->j);
}

static void w_end_obj(struct bench_rep *w)
{
	if (w->j)
		json_obj_end(w->j);
}

static void w_end_arr(struct bench_rep *w)
{
	if (w->j)
		json_arr_end(w->j);
}

/* One entry of a map of counts: "key": v, or " key: v" in the text when shown. */
static void w_entry(struct bench_rep *w, const char *key, uint64_t v, int shown)
{
	if (w->j)
		w_key(w, key), json_uint(w->j, v);
	else if (shown)
		fprintf(out(w), "%s%s: %llu", w->entries++ ? "  " : "", key, (unsigned long long)v);
}

static char *fmt_us(double us, char *out, size_t len)
{
	if (us < 10)
		snprintf(out, len, "%.2f us", us);
	else if (us < 1000)
		snprintf(out, len, "%.1f us", us);
	else if (us < 1e6)
		snprintf(out, len, "%.2f ms", us / 1e3);
	else
		snprintf(out, len, "%.2f s", us / 1e6);
	return out;
}

/* Latency percentiles: a JSON object {count, min, mean, stddev, p50 ... max} in
 * microseconds, or a two-line table. */
static void w_lat(struct bench_rep *w, const char *key, const char *label, const struct bench_lat *l)
{
	static const char *const heads[HIST_NPCT] = {"p50", "p90", "p99", "p99.9", "p99.99", "max"};
	char t[32];
	if (!l->count) { /* nothing completed: no table of zeros */
		w_null(w, key);
		if (!w->j) {
			w_line(w, NULL);
			fprintf(out(w), "  %-20s no samples", label);
		}
		return;
	}
	if (w->j) {
		w_obj(w, key);
		w_uint(w, "count", l->count, NULL);
		w_num(w, "min", l->min_us, 3, NULL);
		w_num(w, "mean", l->mean_us, 3, NULL);
		w_num(w, "stddev", l->stddev_us, 3, NULL);
		for (int i = 0; i < HIST_NPCT; i++)
			w_num(w, hist_pct_names[i], l->pct_us[i], 3, NULL);
		w_end_obj(w);
		return;
	}
	w_line(w, NULL);
	fprintf(out(w), "  %-20s %10s %10s", label, "min", "mean");
	for (int i = 0; i < HIST_NPCT; i++)
		fprintf(out(w), " %10s", heads[i]);
	fprintf(out(w), "\n  %-20s %10s", "", fmt_us(l->min_us, t, sizeof t));
	fprintf(out(w), " %10s", fmt_us(l->mean_us, t, sizeof t));
	for (int i = 0; i < HIST_NPCT; i++)
		fprintf(out(w), " %10s", fmt_us(l->pct_us[i], t, sizeof t));
}

/* Values per second: a JSON array, or a table "second  unit". */
static void w_series(struct bench_rep *w, const char *key, const char *unit, const double *v, unsigned n,
                     int dec)
{
	w_arr(w, key);
	w_line(w, "second");
	w_text(w, unit);
	for (unsigned i = 0; i < n; i++) {
		if (w->j) {
			json_num(w->j, v[i], dec);
			continue;
		}
		w_line(w, NULL);
		fprintf(out(w), "  %-11u %.2f", i + 1, v[i]);
	}
	w_end_arr(w);
}

/* A warning: a string of the JSON array "warnings", or "  warning: ..." wrapped. */
static void w_warn(struct bench_rep *w, const char *text)
{
	if (w->j) {
		json_str(w->j, text);
		return;
	}
	w_line(w, "warning:");
	size_t col = REP_INDENT;
	for (const char *p = text; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (col > REP_INDENT && col + 1 + n > REP_WRAP) {
			fprintf(out(w), "\n%*s", REP_INDENT, "");
			col = REP_INDENT;
		} else if (col > REP_INDENT) {
			fputc(' ', w->f);
			col++;
		}
		fprintf(out(w), "%.*s", (int)n, p);
		col += n;
		p += n;
	}
}

/* The end of a report's first line, which every mode shares: the duration asked for,
 * and whether (and when) the run was interrupted. */
static void w_run(struct bench_rep *w, const struct bench_status *st, double secs)
{
	w_bool(w, "interrupted", st->interrupted, NULL, NULL);
	if (st->interrupted)
		w_num(w, NULL, st->elapsed_s, 2, ", INTERRUPTED after %.2f s");
	w_num(w, "duration_s", secs, 3, st->interrupted ? " of %.1f s" : ", %.1f s");
}

int bench_report_write(FILE *f, int json, const struct bench_render *rd, const void *r)
{
	void (*body)(struct bench_rep *, const void *) = rd->body;
	struct bench_rep w = {.f = f};
	if (!json) {
		body(&w, r);
		if (w.open)
			fputc('\n', f);
		return ferror(f) ? -1 : 0;
	}
	struct buf b;
	struct json j;
	buf_init(&b, REP_JSON_MAX);
	json_init(&j, &b, 1);
	w.j = &j;
	json_obj_begin(&j);
	body(&w, r);
	json_obj_end(&j);
	int ok = !j.err && buf_puts(&b, "\n") == 0;
	if (ok)
		fwrite(buf_start(&b), 1, buf_used(&b), f);
	buf_free(&b);
	return ok && !ferror(f) ? 0 : -1;
}

static void rep_title(char *title, size_t len, void (*head)(struct bench_rep *, const void *), const void *r);

/* A latency-by-percentile plot titled with the first line of the human report. */
static int pct_svg(const char *path, void (*head)(struct bench_rep *, const void *), const void *r,
                   const struct bench_svg_series *s, size_t n)
{
	char title[REP_TITLE_MAX];
	rep_title(title, sizeof title, head, r);
	return bench_svg_percentiles(path, title, s, n);
}

/* The first line of the human report, for a plot's title. */
static void rep_title(char *title, size_t len, void (*head)(struct bench_rep *, const void *), const void *r)
{
	FILE *f = fmemopen(title, len, "w");
	title[0] = 0;
	if (!f)
		return;
	struct bench_rep w = {.f = f};
	head(&w, r);
	fclose(f);
	title[len - 1] = 0;
}

/* ---- tcp ---- */

static void tcp_head(struct bench_rep *w, const void *p)
{
	const struct bench_tcp_result *r = p;
	const struct bench_tcp_opts *o = &r->o;
	w_str(w, "mode", "tcp", "bench tcp");
	w_str(w, "address", o->v6 ? "::1" : "127.0.0.1", o->v6 ? " [%s]" : " %s");
	w_uint(w, "streams", o->streams, ": %llu stream(s)");
	w_uint(w, "length", o->len, ", %llu-byte");
	w_bool(w, "zerocopy", o->zerocopy, " sendfile", " send");
	w_run(w, &r->st, o->secs);
}

static void tcp_body(struct bench_rep *w, const void *p)
{
	const struct bench_tcp_result *r = p;
	tcp_head(w, r);
	w_blank(w);
	w_series(w, "intervals_gbit_per_s", "Gbit/s", r->series_gbps, r->nseries, 3);
	w_blank(w);
	w_line(w, "total");
	w_num(w, "gbit_per_s", r->gbps, 3, "%.2f Gbit/s");
	w_uint(w, "bytes", r->bytes, NULL);
	w_num_scaled(w, NULL, (double)r->bytes, 0, " (%.2f GB", 1e-9);
	w_num(w, "elapsed_s", r->st.elapsed_s, 3, " in %.2f s)");
	w_line(w, "CPU");
	w_num(w, "cpu_percent", r->cpu_pct, 1, "%.0f%% of one core (both ends)");
	w_line(w, "retransmits");
	w_uint(w, "retransmits", r->retransmits, "%llu");
	w_arr(w, "warnings");
	w_end_arr(w);
}

static int tcp_svg(const char *path, const void *p)
{
	const struct bench_tcp_result *r = p;
	char title[REP_TITLE_MAX];
	rep_title(title, sizeof title, tcp_head, r);
	return bench_svg_series(path, title, "Gbit/s", r->samples_gbps, r->nsamples,
	                        BENCH_SAMPLE_MS / 1000.0);
}

/* ---- rr ---- */

static void rr_head(struct bench_rep *w, const void *p)
{
	const struct bench_rr_result *r = p;
	const struct bench_rr_opts *o = &r->o;
	w_str(w, "mode", "rr", "bench rr");
	w_str(w, "protocol", o->udp ? "udp" : "tcp", NULL);
	w_text(w, o->udp ? " UDP" : " TCP");
	w_str(w, "address", o->v6 ? "::1" : "127.0.0.1", o->v6 ? " [%s]" : " %s");
	w_uint(w, "length", o->len, ": %llu-byte messages, one in flight");
	w_run(w, &r->st, o->secs);
}

static void rr_body(struct bench_rep *w, const void *p)
{
	const struct bench_rr_result *r = p;
	rr_head(w, r);
	w_blank(w);
	w_line(w, "round trips");
	w_uint(w, "round_trips", r->round_trips, "%llu");
	w_num(w, "elapsed_s", r->st.elapsed_s, 3, " in %.2f s");
	w_num(w, "round_trips_per_s", r->rate, 1, ": %.0f/s");
	w_uint(w, "lost", r->lost, r->o.udp ? ", %llu lost" : NULL);
	w_blank(w);
	w_lat(w, "latency_us", "round-trip time", &r->lat);
	w_blank(w);
	w_line(w, NULL);
	w_num(w, NULL, r->half_p50_us, 2,
	      "  one-way latency (what sockperf prints) is half the round trip: p50 %.2f us");
	w_arr(w, "warnings");
	w_end_arr(w);
}

static int rr_svg(const char *path, const void *p)
{
	const struct bench_rr_result *r = p;
	struct bench_svg_series s = {"round-trip time", r->hist};
	return pct_svg(path, rr_head, r, &s, 1);
}

/* ---- crr ---- */

static void crr_head(struct bench_rep *w, const void *p)
{
	const struct bench_crr_result *r = p;
	const struct bench_crr_opts *o = &r->o;
	w_str(w, "mode", "crr", "bench crr");
	w_str(w, "target", r->target, " %s");
	w_uint(w, "concurrency", o->conc, ": %llu connection(s) in flight");
	w_uint(w, "sources", o->sources, o->sources ? ", source addresses 127.0.0.1-127.0.0.%llu" : NULL);
	w_uint(w, NULL, o->max, o->max ? ", at most %llu connection(s)" : NULL);
	w_run(w, &r->st, o->secs);
}

static const char *const tw_reuse_what[] = {"off", "on", "on for loopback only"};

static void crr_body(struct bench_rep *w, const void *p)
{
	const struct bench_crr_result *r = p;
	crr_head(w, r);
	w_blank(w);
	w_line(w, "connections");
	w_uint(w, "connections", r->conns, "%llu");
	w_num(w, "elapsed_s", r->st.elapsed_s, 3, " in %.2f s");
	w_num(w, "connections_per_s", r->rate, 1, ": %.0f/s");
	w_line(w, "failed");
	w_uint(w, "failed", r->failed, r->failed ? "%llu  " : "%llu");
	w_obj(w, "failures");
	for (int e = 0; e < BENCH_MAX_ERRNO; e++)
		if (r->fail_errno[e]) {
			const char *name = e ? strerrorname_np(e) : NULL;
			w_entry(w, name ? name : "other", r->fail_errno[e], 1);
		}
	w_end_obj(w);
	w_line(w, "TIME_WAIT");
	if (r->time_wait_target >= 0) {
		w_int(w, "time_wait_target", r->time_wait_target, "%ld sockets to the target");
		w_num(w, "time_wait_percent", r->time_wait_pct, 1, " (%.0f%%");
		w_uint(w, "ephemeral_ports", r->ports, " of the %llu ports it can use)");
	} else {
		w_null(w, "time_wait_target");
		w_null(w, "time_wait_percent");
		w_uint(w, "ephemeral_ports", r->ports, NULL);
		w_text(w, "unknown (NETLINK_SOCK_DIAG failed)");
	}
	if (r->time_wait >= 0)
		w_int(w, "time_wait", r->time_wait, ", %ld on this machine");
	else
		w_null(w, "time_wait");
	if (r->tw_reuse >= 0)
		w_int(w, "tcp_tw_reuse", r->tw_reuse, NULL);
	else
		w_null(w, "tcp_tw_reuse");
	w_blank(w);
	w_lat(w, "latency_us", "connect to answer", &r->lat);
	w_blank(w);
	w_arr(w, "warnings");
	/* Ports ran out, or may: many are in TIME_WAIT and tcp_tw_reuse does not let connect()
	 * take them over (crr's target is loopback, which 1 and 2 both cover). */
	if (r->fail_errno[EADDRNOTAVAIL] || (r->time_wait_pct >= BENCH_CRR_TW_WARN && r->tw_reuse <= 0)) {
		char t[512];
		snprintf(
		        t, sizeof t,
		        "%ld sockets to %s are in TIME_WAIT: %.0f%% of the %llu ephemeral ports this run can "
		        "use "
		        "to it (%u-%u on %u source address%s). Each holds its port for up to %d s; when none "
		        "is left, connect() fails with EADDRNOTAVAIL (%llu times in this run).",
		        r->time_wait_target, r->target, r->time_wait_pct, (unsigned long long)r->ports,
		        r->port_lo, r->port_hi, r->nsources, r->nsources > 1 ? "es" : "", BENCH_TIME_WAIT_S,
		        (unsigned long long)r->fail_errno[EADDRNOTAVAIL]);
		w_warn(w, t);
		snprintf(
		        t, sizeof t,
		        "To avoid it: more source addresses (--sources N: N x %llu ports); keep-alive, which "
		        "reuses one connection for many requests (bench http without --no-keepalive); or "
		        "net.ipv4.tcp_tw_reuse (here %d%s%s%s), with which connect() takes over a TIME_WAIT "
		        "port to the same target once it is over a second old and TCP timestamps show the "
		        "new connection is the newer one.",
		        (unsigned long long)r->ports_per_source, r->tw_reuse,
		        r->tw_reuse >= 0 && r->tw_reuse <= 2 ? ": " : "",
		        r->tw_reuse >= 0 && r->tw_reuse <= 2 ? tw_reuse_what[r->tw_reuse] : "",
		        r->tw_reuse == 2 ? ", the kernel's default" : "");
		w_warn(w, t);
	}
	w_end_arr(w);
}

static int crr_svg(const char *path, const void *p)
{
	const struct bench_crr_result *r = p;
	struct bench_svg_series s = {"connect to answer", r->hist};
	return pct_svg(path, crr_head, r, &s, 1);
}

/* ---- http ---- */

static void http_head(struct bench_rep *w, const void *p)
{
	const struct bench_http_result *r = p;
	const struct bench_http_opts *o = &r->o;
	w_str(w, "mode", "http", "bench http");
	w_str(w, "url", o->url, " %s");
	w_str(w, "target", r->target, " (%s)");
	w_uint(w, "connections", o->conns, ": %llu connection(s)");
	w_uint(w, "threads", o->threads, ", %llu thread(s)");
	w_bool(w, "keepalive", o->keepalive, NULL, ", no keep-alive");
	w_uint(w, "pipeline", o->pipeline, o->pipeline > 1 ? ", pipeline %llu" : NULL);
	w_num(w, NULL, o->rate, 0, o->rate ? ", constant rate %.0f req/s" : NULL);
	if (o->max)
		w_uint(w, "total", o->max, ", at most %llu request(s)");
	else
		w_null(w, "total");
	w_run(w, &r->st, o->secs);
}

static void http_body(struct bench_rep *w, const void *p)
{
	const struct bench_http_result *r = p;
	const struct bench_http_opts *o = &r->o;
	char k[8];
	http_head(w, r);
	w_blank(w);
	w_line(w, "requests");
	w_uint(w, "requests", r->requests, "%llu");
	w_num(w, "elapsed_s", r->st.elapsed_s, 3, " in %.2f s");
	w_num(w, "requests_per_s", r->rps, 1, ": %.0f req/s");
	w_num(w, "bytes_per_s", r->bytes_per_s, 0, NULL);
	w_num_scaled(w, NULL, r->bytes_per_s, 0, ", %.2f MB/s read", 1e-6);
	w_uint(w, "bytes", r->bytes, NULL);
	w_uint(w, "sent", r->sent, NULL);
	w_line(w, "statuses");
	w_obj(w, "status");
	for (int s = 100; s < 600; s++)
		if (r->status[s])
			snprintf(k, sizeof k, "%d", s), w_entry(w, k, r->status[s], 1);
	w_end_obj(w);
	w_text(w, r->requests ? NULL : "none");
	w_str(w, "ok_status", o->ok_text, NULL);
	if (r->unexpected)
		w_line(w, "unexpected");
	w_uint(w, "unexpected_status", r->unexpected,
	       r->unexpected ? "%llu response(s) with a status outside --ok-status " : NULL);
	w_str(w, NULL, o->ok_text, r->unexpected ? "%s: the run fails" : NULL);
	w_line(w, "errors");
	w_uint(w, NULL, r->nerrors, r->nerrors ? "%llu  " : "%llu");
	w_obj(w, "errors");
	for (int e = 0; e < HERR_N; e++)
		w_entry(w, bench_http_err_names[e], r->errors[e], r->errors[e] > 0);
	w_end_obj(w);
	w_uint(w, "unfinished", r->unfinished, r->unfinished ? " (unanswered at the end: %llu)" : NULL);
	w_line(w, "client CPU");
	w_num(w, "client_cpu_s", r->cpu_s, 3, "%.2f s");
	w_num(w, NULL, r->cpu_pct, 0, " (%.0f%% of one core)");
	w_blank(w);
	w_lat(w, "latency_us", o->rate ? "latency (raw)" : "latency", &r->lat);
	if (!o->rate) {
		w_null(w, "rate");
	} else {
		w_obj(w, "rate");
		w_lat(w, "corrected_latency_us", "latency (corrected)", &r->lat_corrected);
		w_lat(w, "client_lag_us", "client's own lag", &r->lat_lag);
		w_blank(w);
		w_line(w, "rate");
		w_num(w, "target", o->rate, 1, "asked %.0f req/s");
		w_num(w, "achieved", r->achieved_rate, 1, ", achieved %.0f req/s");
		w_uint(w, NULL, r->sent, " (%llu of ");
		w_uint(w, "scheduled", r->scheduled, "%llu scheduled sent)");
		w_bool(w, "reached", r->rate_reached, NULL, NULL);
		w_end_obj(w);
		w_line(w, NULL);
		w_text(w,
		       "  raw = from the write; corrected = from the scheduled time when the server held "
		       "the\n"
		       "  connection past it (coordinated omission), else from the write; client's own lag "
		       "=\n"
		       "  how late this client sent requests it was free to send (not counted as latency).");
	}
	w_blank(w);
	w_arr(w, "warnings");
	if (o->rate && !r->rate_reached)
		w_warn(w, "the rate was not reached: the corrected latencies measure the client's queue, not "
		          "the server. Lower -R or add connections (-C).");
	w_end_arr(w);
}

static int http_svg(const char *path, const void *p)
{
	const struct bench_http_result *r = p;
	struct bench_svg_series s[2] = {{"corrected (from the scheduled time)", r->hist_corrected},
	                                {"raw (from the write)", r->hist}};
	if (!r->o.rate)
		s[0] = (struct bench_svg_series){"response time", r->hist};
	return pct_svg(path, http_head, r, s, r->o.rate ? 2 : 1);
}

const struct bench_render bench_render_tcp = {tcp_body, tcp_svg};
const struct bench_render bench_render_rr = {rr_body, rr_svg};
const struct bench_render bench_render_crr = {crr_body, crr_svg};
const struct bench_render bench_render_http = {http_body, http_svg};
