/* test_hist.c - unit tests of the latency histogram, CO correction and response framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/bench.h"
#include "bench/resp.h"
#include "core/hist.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The exact percentile of sorted v[0..n): the value of rank ceil(p% of n). */
static uint64_t exact_pct(const uint64_t *v, size_t n, double p)
{
	if (p >= 100)
		return v[n - 1];
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999999);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

static void check_within(const char *what, double p, uint64_t got, uint64_t want, double rel)
{
	double err = want ? ((double)got - (double)want) / (double)want : (double)got;
	if (err < 0)
		err = -err;
	if (err > rel)
		fail_msg("%s p%g: got %llu, want %llu (error %.4f > %.4f)", what, p, (unsigned long long)got,
		         (unsigned long long)want, err, rel);
}

static void test_buckets_cover_and_are_narrow(void **state)
{
	uint64_t v = 1;
	for (int i = 0; i < 200000; i++) {
		size_t b = hist_index(v);
		assert_true(b < HIST_BUCKETS);
		uint64_t lo = hist_bucket_low(b), hi = hist_bucket_high(b);
		if (lo > v || hi < v)
			fail_msg("value %llu outside its bucket %zu [%llu, %llu]", (unsigned long long)v, b,
			         (unsigned long long)lo, (unsigned long long)hi);
		if (v >= 256 && (double)(hi - lo) / (double)lo > 1.0 / 128 + 1e-12)
			fail_msg("bucket %zu of %llu too wide: [%llu, %llu]", b, (unsigned long long)v,
			         (unsigned long long)lo, (unsigned long long)hi);
		v = v + 1 + v / 997; /* walks every octave up to ~2^60 */
		if (v > (UINT64_MAX >> 2))
			break;
	}
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	for (uint64_t x = 0; x < 256; x++)
		assert_int_equal(hist_bucket_low(hist_index(x)), x);
}

/* Below 256 every value has its own bucket: percentiles are exact. */
static void test_exact_small_values(void **state)
{
	struct hist *h = hist_new();
	for (uint64_t x = 1; x <= 100; x++)
		hist_record(h, x);
	static const struct {
		double p;
		uint64_t want;
	} rows[] = {{50, 50},   {90, 90}, {99, 99}, {99.9, 100}, {99.99, 100},
	            {100, 100}, {0, 1},   {1, 1},   {1.5, 2},    {75, 75}};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t got = hist_percentile(h, rows[i].p);
		if (got != rows[i].want)
			fail_msg("row %zu: p%g = %llu, want %llu", i, rows[i].p, (unsigned long long)got,
			         (unsigned long long)rows[i].want);
	}
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 100);
	assert_true(hist_mean(h) > 50.49 && hist_mean(h) < 50.51);
	free(h);
}

/* A constant: every percentile is the value itself (clamped to min and max). */
static void test_constant(void **state)
{
	struct hist *h = hist_new();
	hist_record_n(h, 123456789, 1000);
	for (int i = 0; i < HIST_NPCT; i++)
		assert_int_equal(hist_percentile(h, hist_pcts[i]), 123456789);
	assert_true(hist_stddev(h) < 1e-3);
	free(h);
}

/* Known distributions over many octaves: within 1% (the design bound is 0.4%). */
static void test_known_distributions(void **state)
{
	enum { N = 100000 };
	uint64_t *v = malloc(N * sizeof(*v));
	struct hist *h = hist_new();
	const char *names[] = {"uniform 1us-100ms", "linear 1..N*997", "geometric"};
	for (int d = 0; d < 3; d++) {
		hist_reset(h);
		uint64_t seed = 42;
		for (size_t i = 0; i < N; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			if (d == 0)
				v[i] = 1000 + (seed >> 11) % 100000000;
			else if (d == 1)
				v[i] = (i + 1) * 997;
			else
				v[i] = (uint64_t)1 << (10 + (seed >> 33) % 30);
			hist_record(h, v[i]);
		}
		qsort(v, N, sizeof(*v), cmp_u64);
		for (int i = 0; i < HIST_NPCT; i++)
			check_within(names[d], hist_pcts[i], hist_percentile(h, hist_pcts[i]),
			             exact_pct(v, N, hist_pcts[i]), 0.01);
		assert_int_equal(hist_percentile(h, 100), v[N - 1]);
		assert_int_equal(h->min, v[0]);
	}
	free(v);
	free(h);
}

static void test_merge_and_corrected(void **state)
{
	struct hist *a = hist_new(), *b = hist_new();
	for (uint64_t x = 1; x <= 50; x++)
		hist_record(a, x);
	for (uint64_t x = 51; x <= 100; x++)
		hist_record(b, x);
	hist_merge(a, b);
	assert_int_equal(a->count, 100);
	assert_int_equal(hist_percentile(a, 50), 50);
	assert_int_equal(hist_percentile(a, 100), 100);
	/* HdrHistogram's expected-interval correction: 100 with interval 10 adds 90..10 */
	hist_reset(b);
	hist_record_corrected(b, 100, 10);
	assert_int_equal(b->count, 10);
	assert_int_equal(hist_percentile(b, 10), 10);
	assert_int_equal(hist_percentile(b, 100), 100);
	free(a);
	free(b);
}

/* A constant-rate client (1000 req/s on one connection, 100 us service time) meets a
 * server that stalls for one second. The raw latencies hide the stall in one sample;
 * the corrected ones show what the ~1000 users scheduled during it waited. */
static void test_co_correction_synthetic_stall(void **state)
{
	enum { N = 10000 };
	const uint64_t ms = 1000000, svc = 100000, stall = 1000 * ms;
	struct bench_sched s = {.start_ns = 0, .interval_ns = ms};
	struct hist *raw = hist_new(), *cor = hist_new();
	uint64_t *want = malloc(N * sizeof(*want)), prev_done = 0, ideal = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t due = bench_sched_due(&s);
		s.k++;
		uint64_t sent = due > prev_done ? due : prev_done; /* closed loop: wait for the last answer */
		uint64_t done = sent + (due == 5000 * ms ? stall : svc);
		bench_co_record(raw, cor, NULL, due, prev_done, sent, done, &ideal);
		want[i] = done - due;
		prev_done = done;
	}
	assert_int_equal(raw->count, N);
	assert_int_equal(cor->count, N);
	/* raw: everything 100 us but the one stalled request */
	check_within("raw", 99.99, hist_percentile(raw, 99.99), svc, 0.01);
	assert_int_equal(hist_percentile(raw, 100), stall);
	/* corrected: exactly the waits of users arriving on schedule */
	qsort(want, N, sizeof(*want), cmp_u64);
	for (int i = 0; i < HIST_NPCT; i++)
		check_within("corrected", hist_pcts[i], hist_percentile(cor, hist_pcts[i]),
		             exact_pct(want, N, hist_pcts[i]), 0.01);
	assert_true(hist_percentile(cor, 99) > 800 * ms);
	assert_true(hist_percentile(cor, 90) > 50 * ms);
	assert_true(hist_percentile(raw, 99) < 200000);
	free(want);
	free(raw);
	free(cor);
}

/* The client's own lateness is not the server's: a request its connection was free to
 * send at `due` but that a coarse timer sent 0.9 ms late counts from the write (as
 * raw), and the lateness goes to the lag histogram. A request the server held past
 * its due time counts from the due time, less the client's own delay after the
 * connection came free. */
static void test_co_correction_client_lag(void **state)
{
	const uint64_t us = 1000, due = 100000 * us, svc = 120 * us;
	struct hist *raw = hist_new(), *cor = hist_new(), *lag = hist_new();
	/* free since 10 ms before due, sent 900 us late by our own timer */
	uint64_t ideal = due - 10000 * us;
	bench_co_record(raw, cor, lag, due, due - 10000 * us, due + 900 * us, due + 900 * us + svc, &ideal);
	assert_int_equal(hist_percentile(raw, 100), svc);
	assert_int_equal(hist_percentile(cor, 100), svc);
	assert_int_equal(hist_percentile(lag, 100), 900 * us);
	/* the server answered the previous request 3 ms after due; sent 50 us after that */
	hist_reset(raw);
	hist_reset(cor);
	hist_reset(lag);
	ideal = due + 3000 * us;
	bench_co_record(raw, cor, lag, due, due + 3000 * us, due + 3050 * us, due + 3050 * us + svc, &ideal);
	assert_int_equal(hist_percentile(raw, 100), svc);
	assert_int_equal(hist_percentile(cor, 100), 3000 * us + svc);
	assert_int_equal(hist_percentile(lag, 100), 50 * us);
	free(raw);
	free(cor);
	free(lag);
}

/* The client stalls (SIGSTOP, a busy loop) for 200 ms while the server answers every
 * request in 100 us: the requests scheduled during the stall go out late, back to
 * back, each when the one before is answered. None of that wait is the server's: the
 * corrected latencies stay the server's 100 us (they counted up to 200 ms), and the
 * lag histogram holds the stall. */
static void test_co_correction_client_stall(void **state)
{
	enum { N = 2000 };
	const uint64_t ms = 1000000, svc = 100000, stall_at = 1000 * ms, stall = 200 * ms;
	struct bench_sched s = {.start_ns = 0, .interval_ns = ms};
	struct hist *raw = hist_new(), *cor = hist_new(), *lag = hist_new();
	uint64_t prev_done = 0, ideal = 0;
	for (size_t i = 0; i < N; i++) {
		uint64_t due = bench_sched_due(&s);
		s.k++;
		uint64_t sent = due > prev_done ? due : prev_done;
		if (sent >= stall_at && sent < stall_at + stall)
			sent = stall_at + stall; /* the client runs again */
		uint64_t done = sent + svc;
		bench_co_record(raw, cor, lag, due, prev_done, sent, done, &ideal);
		prev_done = done;
	}
	assert_int_equal(cor->count, N);
	assert_int_equal(hist_percentile(raw, 100), svc);
	assert_int_equal(hist_percentile(cor, 100), svc);
	assert_true(hist_percentile(lag, 100) >= stall - ms);
	free(raw);
	free(cor);
	free(lag);
}

/* ---- response framing, whole and one byte at a time ---- */

/* Feeds in pieces of `step` bytes, keeping unconsumed bytes like bench/http.c.
 * Returns responses completed, or -1 on error; *eof_done when EOF completed one. */
static int feed_all(const char *in, size_t len, size_t step, int head_only, uint64_t *body)
{
	char buf[4096];
	size_t have = 0, off = 0;
	int done = 0;
	struct bench_resp r;
	bench_resp_reset(&r);
	*body = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		memcpy(buf + have, in + off, n);
		off += n;
		have += n;
		size_t pos = 0;
		while (pos < have) {
			size_t used;
			const char *why;
			int rc = bench_resp_feed(&r, buf + pos, have - pos, head_only, &used, &why);
			if (rc == BENCH_RESP_ERROR)
				return -1;
			if (rc == BENCH_RESP_MORE) {
				pos += used;
				break;
			}
			pos += used;
			*body += r.body_bytes;
			done++;
			bench_resp_reset(&r);
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
	}
	if (bench_resp_eof(&r)) {
		*body += r.body_bytes;
		done++;
	}
	return done;
}

static void test_resp_table(void **state)
{
	static const struct {
		const char *in;
		int head_only;
		int want; /* responses, -1 error */
		uint64_t body;
	} rows[] = {
	        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, 1, 5},
	        {"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiHTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n",
	         0, 2, 2},
	        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: "
	         "1\r\n\r\n",
	         0, 1, 8},
	        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 0, 1, 1},
	        {"HTTP/1.1 204 No Content\r\n\r\n", 0, 1, 0},
	        {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 0, 1, 0},
	        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 1, 1, 0},
	        {"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nto the end", 0, 1, 10},
	        {"HTTP/1.1 200 OK\nContent-Length: 1\n\nz", 0, 1, 1},
	        {"HTTP/2 200\r\n\r\n", 0, -1, 0},
	        {"HTTP/1.1 20 OK\r\n\r\n", 0, -1, 0},
	        {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 0, -1, 0},
	        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, -1, 0},
	        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, -1, 0},
	        {"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0, -1, 0},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t len = strlen(rows[i].in);
		size_t steps[] = {len, 1, 3};
		for (size_t s = 0; s < 3; s++) {
			uint64_t body;
			int got = feed_all(rows[i].in, len, steps[s], rows[i].head_only, &body);
			if (got != rows[i].want || (got >= 0 && body != rows[i].body))
				fail_msg("row %zu step %zu: %d responses, %llu body bytes; want %d, %llu", i,
				         steps[s], got, (unsigned long long)body, rows[i].want,
				         (unsigned long long)rows[i].body);
		}
	}
}

static void test_resp_close_flags(void **state)
{
	struct bench_resp r;
	size_t used;
	const char *why;
	static const struct {
		const char *in;
		int close;
	} rows[] = {
	        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
	        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 1},
	        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 1},
	        {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 0},
	        {"HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 0\r\n\r\n", 1},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bench_resp_reset(&r);
		int rc = bench_resp_feed(&r, rows[i].in, strlen(rows[i].in), 0, &used, &why);
		if (rc != BENCH_RESP_DONE || r.close != rows[i].close)
			fail_msg("row %zu: rc %d close %d, want close %d", i, rc, r.close, rows[i].close);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buckets_cover_and_are_narrow),
	        cmocka_unit_test(test_exact_small_values),
	        cmocka_unit_test(test_constant),
	        cmocka_unit_test(test_known_distributions),
	        cmocka_unit_test(test_merge_and_corrected),
	        cmocka_unit_test(test_co_correction_synthetic_stall),
	        cmocka_unit_test(test_co_correction_client_lag),
	        cmocka_unit_test(test_co_correction_client_stall),
	        cmocka_unit_test(test_resp_table),
	        cmocka_unit_test(test_resp_close_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
