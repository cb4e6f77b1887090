/* common.c - what every bench mode shares: clocks, waiting with progress, percentiles. */
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench.h"

#define WAIT_STEP_NS 100000000u /* bench_wait looks at ctl->stop at least this often */

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

int bench_wait(const struct bench_ctl *ctl, uint64_t start_ns, uint64_t deadline_ns, uint64_t period_ns,
               void (*tick)(void *, uint64_t), int (*done)(void *), void *arg)
{
	uint64_t next_tick = start_ns + period_ns;
	for (;;) {
		uint64_t now = bench_now_ns();
		if (now >= next_tick) { /* before the deadline test: the last period counts too */
			if (tick)
				tick(arg, now);
			next_tick += period_ns;
		}
		if (ctl->stop && *ctl->stop)
			return 1;
		if (now >= deadline_ns || (done && done(arg)))
			return 0;
		uint64_t until = deadline_ns < next_tick ? deadline_ns : next_tick;
		uint64_t step = until > now ? until - now : 0; /* behind: tick again at once */
		if (step > WAIT_STEP_NS)
			step = WAIT_STEP_NS;
		struct timespec ts = {(time_t)(step / 1000000000u), (long)(step % 1000000000u)};
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

void bench_co_record(struct hist *raw, struct hist *corrected, struct hist *lag, uint64_t due, uint64_t ready,
                     uint64_t sent, uint64_t done, uint64_t *ideal_done)
{
	uint64_t could = ready > due ? ready : due; /* the earliest it should have gone */
	uint64_t own = sent > could ? sent - could : 0;
	uint64_t took = done > sent ? done - sent : 0;
	hist_record(raw, took);
	if (corrected) {
		/* The connection's timeline with a client that is never late: this request
		 * starts when it is due or when the previous one ended there, and takes what
		 * the server took. */
		uint64_t start = due > *ideal_done ? due : *ideal_done;
		*ideal_done = start + took;
		hist_record(corrected, *ideal_done - due);
	}
	if (lag)
		hist_record(lag, own);
}
