/* hist.h - log-linear latency histogram (HdrHistogram-shaped): ≤ 0.4% relative error. */
#ifndef LOOPKIT_CORE_HIST_H
#define LOOPKIT_CORE_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Values below 2^(HIST_SUB_BITS+1) get one bucket each (exact); every higher octave
 * [2^e, 2^(e+1)) is split into 2^HIST_SUB_BITS equal buckets, so a bucket is at most
 * 1/128 of its values wide and its midpoint is within 0.4% of any value in it. */
#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (2 * HIST_SUB + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

/* Counts of uint64 values (loopkit records nanoseconds). About 60 KiB: allocate it
 * with hist_new, or embed it in a heap-allocated struct and hist_reset it. */
struct hist {
	uint64_t count; /* values recorded */
	uint64_t min, max;
	double sum, sumsq; /* for mean and standard deviation */
	uint64_t counts[HIST_BUCKETS];
};

/* The percentiles every loopkit report shows, in this order. */
#define HIST_NPCT 6
extern const double hist_pcts[HIST_NPCT];           /* 50, 90, 99, 99.9, 99.99, 100 */
extern const char *const hist_pct_names[HIST_NPCT]; /* "p50" ... "p99_99", "max" */

/* Returns a zeroed histogram the caller frees with free(), or NULL without memory. */
struct hist *hist_new(void);
void hist_reset(struct hist *h);
/* Bucket index of v, and the smallest and largest value of bucket i. */
size_t hist_index(uint64_t v);
uint64_t hist_bucket_low(size_t i);
uint64_t hist_bucket_high(size_t i);
void hist_record(struct hist *h, uint64_t v);
void hist_record_n(struct hist *h, uint64_t v, uint64_t n);
/* Records v and, as HdrHistogram's recordValueWithExpectedInterval does, the
 * samples a closed-loop client would have taken while v stalled it: v - interval,
 * v - 2 interval, ... down to interval. interval 0 records v alone. */
void hist_record_corrected(struct hist *h, uint64_t v, uint64_t interval);
/* Adds src's counts into dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at percentile p (0..100): the smallest recorded bucket holding at least
 * ceil(p% of count) values, as its midpoint, clamped to [min, max]. 100 gives max
 * exactly; values below 256 are exact. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);
double hist_stddev(const struct hist *h);

#endif
