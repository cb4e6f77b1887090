/* hist.c - log-linear histogram: exact below 256, 128 linear buckets per octave above. */
#include "core/hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double hist_pcts[HIST_NPCT] = {50, 90, 99, 99.9, 99.99, 100};
const char *const hist_pct_names[HIST_NPCT] = {"p50", "p90", "p99", "p99_9", "p99_99", "max"};

struct hist *hist_new(void)
{
	struct hist *h = malloc(sizeof(*h));
	if (h)
		hist_reset(h);
	return h;
}

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

size_t hist_index(uint64_t v)
{
	if (v < 2 * HIST_SUB)
		return (size_t)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HIST_SUB_BITS; /* >= 1 */
	return 2 * HIST_SUB + (size_t)(shift - 1) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
}

uint64_t hist_bucket_low(size_t i)
{
	if (i < 2 * HIST_SUB)
		return i;
	size_t k = i - 2 * HIST_SUB;
	unsigned shift = (unsigned)(k / HIST_SUB) + 1;
	return (uint64_t)(k % HIST_SUB + HIST_SUB) << shift;
}

uint64_t hist_bucket_high(size_t i)
{
	if (i < 2 * HIST_SUB)
		return i;
	size_t k = i - 2 * HIST_SUB;
	unsigned shift = (unsigned)(k / HIST_SUB) + 1;
	return hist_bucket_low(i) + ((1ull << shift) - 1);
}

void hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
	if (!n)
		return;
	h->counts[hist_index(v)] += n;
	h->count += n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->sum += (double)v * (double)n;
	h->sumsq += (double)v * (double)v * (double)n;
}

void hist_record(struct hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

void hist_record_corrected(struct hist *h, uint64_t v, uint64_t interval)
{
	hist_record(h, v);
	if (!interval)
		return;
	for (uint64_t missing = v >= interval ? v - interval : 0; missing >= interval; missing -= interval)
		hist_record(h, missing);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	dst->sumsq += src->sumsq;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	if (!h->count)
		return 0;
	if (p >= 100)
		return h->max;
	if (p < 0)
		p = 0;
	/* rank = ceil(p% of count), at least 1; compared in integers to avoid 0.1 drift */
	uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count - 1e-9);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
			uint64_t v = lo + (hi - lo) / 2;
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0;
}

double hist_stddev(const struct hist *h)
{
	if (h->count < 2)
		return 0;
	double m = hist_mean(h);
	double var = h->sumsq / (double)h->count - m * m;
	return var > 0 ? sqrt(var) : 0;
}
