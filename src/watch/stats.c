/* stats.c - a target's recent history in memory: minute and hour buckets, latencies (pure). */
#include <stdint.h>
#include <string.h>

#include "watch/internal.h"

#define MS_PER_MIN  60000ull
#define MS_PER_HOUR 3600000ull

static const unsigned window_hours[WATCH_WINDOWS] = {0, 24, WATCH_HOURS};

static struct watch_minute *minute_at(struct watch_stats *s, uint32_t idx)
{
	struct watch_minute *m = &s->min[idx % WATCH_MINUTES];
	if (m->idx != idx) { /* an older minute (or a clock that jumped): start over */
		memset(m, 0, sizeof(*m));
		m->idx = idx;
	}
	return m;
}

static struct watch_hour *hour_at(struct watch_stats *s, uint32_t idx)
{
	struct watch_hour *h = &s->hour[idx % WATCH_HOURS];
	if (h->idx != idx) {
		memset(h, 0, sizeof(*h));
		h->idx = idx;
	}
	return h;
}

void watch_stats_add_minute(struct watch_stats *s, uint32_t idx, uint32_t n, uint32_t ok, uint64_t lat_sum_us)
{
	struct watch_minute *m = minute_at(s, idx);
	m->n = (uint16_t)(m->n + n > UINT16_MAX ? UINT16_MAX : m->n + n);
	m->ok = (uint16_t)(m->ok + ok > UINT16_MAX ? UINT16_MAX : m->ok + ok);
	m->lat_sum_us += lat_sum_us;
}

void watch_stats_add_hour(struct watch_stats *s, uint32_t idx, uint32_t n, uint32_t ok)
{
	struct watch_hour *h = hour_at(s, idx);
	h->n += n;
	h->ok += ok;
}

void watch_stats_add_latency(struct watch_stats *s, uint64_t wall_ms, uint64_t lat_us)
{
	struct watch_lat *l = &s->lat[s->lat_next];
	l->t_s = (uint32_t)(wall_ms / 1000);
	l->us = lat_us > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_us;
	s->lat_next = (s->lat_next + 1) % WATCH_LAT_RING;
	if (s->nlat < WATCH_LAT_RING)
		s->nlat++;
}

void watch_stats_add(struct watch_stats *s, uint64_t wall_ms, int ok, uint64_t lat_us)
{
	watch_stats_add_minute(s, (uint32_t)(wall_ms / MS_PER_MIN), 1, ok ? 1 : 0, ok ? lat_us : 0);
	watch_stats_add_hour(s, (uint32_t)(wall_ms / MS_PER_HOUR), 1, ok ? 1 : 0);
	if (ok)
		watch_stats_add_latency(s, wall_ms, lat_us);
}

double watch_stats_uptime(const struct watch_stats *s, uint64_t wall_ms, int w)
{
	uint64_t n = 0, ok = 0;
	if (w == 0) {
		uint32_t now = (uint32_t)(wall_ms / MS_PER_MIN);
		for (unsigned i = 0; i < WATCH_MINUTES; i++) {
			const struct watch_minute *m = &s->min[i];
			if (m->idx && m->idx <= now && now - m->idx < WATCH_MINUTES) {
				n += m->n;
				ok += m->ok;
			}
		}
	} else {
		uint32_t now = (uint32_t)(wall_ms / MS_PER_HOUR);
		for (unsigned i = 0; i < WATCH_HOURS; i++) {
			const struct watch_hour *h = &s->hour[i];
			if (h->idx && h->idx <= now && now - h->idx < window_hours[w]) {
				n += h->n;
				ok += h->ok;
			}
		}
	}
	return n ? (double)ok / (double)n : -1;
}

unsigned watch_stats_pcts(const struct watch_stats *s, uint64_t wall_ms, struct hist *h, uint64_t *p50,
                          uint64_t *p95)
{
	uint32_t now = (uint32_t)(wall_ms / 1000);
	unsigned k = 0;
	for (unsigned i = 0; i < s->nlat; i++) {
		const struct watch_lat *l = &s->lat[i];
		if (l->t_s <= now && now - l->t_s < 3600) {
			hist_record(h, l->us);
			k++;
		}
	}
	*p50 = k ? hist_percentile(h, 50) : 0;
	*p95 = k ? hist_percentile(h, 95) : 0;
	/* Empty the scratch histogram by undoing only the buckets touched: a full reset
	 * would clear all of its 60 KiB for every row of every page. */
	for (unsigned i = 0; i < s->nlat; i++)
		h->counts[hist_index(s->lat[i].us)] = 0;
	h->count = h->max = 0;
	h->min = UINT64_MAX;
	h->sum = h->sumsq = 0;
	return k;
}

void watch_stats_spark(const struct watch_stats *s, uint64_t wall_ms, double lat[WATCH_SPARK_POINTS],
                       double fail[WATCH_SPARK_POINTS])
{
	uint32_t now = (uint32_t)(wall_ms / MS_PER_MIN);
	for (unsigned k = 0; k < WATCH_SPARK_POINTS; k++) {
		uint32_t idx = now - (WATCH_SPARK_POINTS - 1 - k);
		const struct watch_minute *m = &s->min[idx % WATCH_MINUTES];
		if (m->idx != idx || !m->n) {
			lat[k] = fail[k] = -1;
			continue;
		}
		lat[k] = m->ok ? (double)m->lat_sum_us / m->ok : -1;
		fail[k] = (double)(m->n - m->ok) / m->n;
	}
}
