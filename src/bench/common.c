/* common.c - what every bench mode shares: clocks, waiting with progress, latency output. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench.h"
#include "core/sockdiag.h"
#include "core/procfs.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_lat_from(struct bench_lat *l, const struct hist *h)
{
	memset(l, 0, sizeof(*l));
	l->count = h->count;
	if (!h->count)
		return;
	l->min_us = (double)h->min / 1e3;
	l->mean_us = hist_mean(h) / 1e3;
	l->stddev_us = hist_stddev(h) / 1e3;
	for (int i = 0; i < HIST_NPCT; i++)
		l->pct_us[i] = (double)hist_percentile(h, hist_pcts[i]) / 1e3;
}

void bench_json_num(struct json *j, double v, int decimals)
{
	char t[64];
	if (!isfinite(v)) {
		json_null(j);
		return;
	}
	int n = snprintf(t, sizeof(t), "%.*f", decimals, v);
	json_raw(j, t, (size_t)n);
}

void bench_lat_json(struct json *j, const char *key, const struct bench_lat *l)
{
	json_key(j, key);
	json_obj_begin(j);
	json_key(j, "count");
	json_uint(j, l->count);
	json_key(j, "min");
	bench_json_num(j, l->min_us, 3);
	json_key(j, "mean");
	bench_json_num(j, l->mean_us, 3);
	json_key(j, "stddev");
	bench_json_num(j, l->stddev_us, 3);
	for (int i = 0; i < HIST_NPCT; i++) {
		json_key(j, hist_pct_names[i]);
		bench_json_num(j, l->pct_us[i], 3);
	}
	json_obj_end(j);
}

char *bench_fmt_us(double us, char *out, size_t len)
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

void bench_lat_print(FILE *f, const char *label, const struct bench_lat *l)
{
	static const char *const heads[HIST_NPCT] = { "p50", "p90", "p99", "p99.9", "p99.99", "max" };
	char t[32];
	fprintf(f, "  %-18s %10s %10s", label, "min", "mean");
	for (int i = 0; i < HIST_NPCT; i++)
		fprintf(f, " %10s", heads[i]);
	fprintf(f, "\n  %-18s", "");
	fprintf(f, " %10s", bench_fmt_us(l->min_us, t, sizeof(t)));
	fprintf(f, " %10s", bench_fmt_us(l->mean_us, t, sizeof(t)));
	for (int i = 0; i < HIST_NPCT; i++)
		fprintf(f, " %10s", bench_fmt_us(l->pct_us[i], t, sizeof(t)));
	fprintf(f, "\n");
}

void bench_wait(const struct bench_ctl *ctl, uint64_t start_ns, uint64_t deadline_ns,
                void (*tick)(void *, uint64_t), int (*done)(void *), void *arg)
{
	uint64_t next_tick = start_ns + 1000000000u;
	for (;;) {
		uint64_t now = bench_now_ns();
		if (now >= next_tick) { /* before the deadline test: the last second counts too */
			if (tick)
				tick(arg, now);
			next_tick += 1000000000u;
		}
		if (now >= deadline_ns || (ctl->stop && *ctl->stop) || (done && done(arg)))
			return;
		uint64_t until = deadline_ns < next_tick ? deadline_ns : next_tick;
		uint64_t step = until - now;
		if (step > 100000000u)
			step = 100000000u;
		struct timespec ts = { (time_t)(step / 1000000000u), (long)(step % 1000000000u) };
		nanosleep(&ts, NULL);
	}
}

void bench_progress(const struct bench_ctl *ctl, const char *text, int last)
{
	if (!ctl->progress)
		return;
	if (last)
		fprintf(ctl->progress, "\r\033[K");
	else if (ctl->color)
		fprintf(ctl->progress, "\r\033[K\033[36m%s\033[0m", text);
	else
		fprintf(ctl->progress, "\r\033[K%s", text);
	fflush(ctl->progress);
}

double bench_cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

long bench_time_wait_count(void)
{
	struct sockdiag_sock *s = NULL;
	size_t n = 0;
	if (sockdiag_list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_TIME_WAIT), &s, &n, NULL, 0) < 0)
		return -1;
	free(s);
	return (long)n;
}

void bench_co_record(struct hist *raw, struct hist *corrected, uint64_t due, uint64_t sent, uint64_t done)
{
	hist_record(raw, done > sent ? done - sent : 0);
	if (corrected)
		hist_record(corrected, done > due ? done - due : 0);
}
