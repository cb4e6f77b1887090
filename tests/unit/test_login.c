/* test_login.c - the login gate (core/login): the credential check, its constant time,
 * and the budget of failed logins on a clock the test drives. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/login.h"

#define TURN (1000000ull / LOGIN_FAIL_RATE) /* µs between turns */
#define T0   1000000000ull                  /* the test clock's start, µs */

/* n bytes of s copied flush against a PROT_NONE page: reading past them faults. */
static const char *guarded(int slot, const char *s, size_t n)
{
	static char *map[2];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (!map[slot]) {
		map[slot] = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(map[slot] != MAP_FAILED);
		assert_int_equal(mprotect(map[slot] + 2 * page, page, PROT_NONE), 0);
	}
	assert_true(n <= 2 * page);
	return memcpy(map[slot] + 2 * page - n, s, n);
}

struct check_row {
	const char *user, *pass;
	size_t ulen, plen; /* 0: strlen */
	int want;
};

static void test_check_rows(void **state)
{
	static const struct check_row rows[] = {
	        {"alice", "s3cret", 0, 0, 1},
	        {"alice", "s3cre", 0, 0, 0},    /* a prefix of the password */
	        {"alice", "s3cret!", 0, 0, 0},  /* the password and more */
	        {"alice", "", 0, 0, 0},         /* empty */
	        {"alice", "S3CRET", 0, 0, 0},   /* case matters */
	        {"alic", "s3cret", 0, 0, 0},    /* a prefix of the name */
	        {"alicee", "s3cret", 0, 0, 0},  /* the name and more */
	        {"bob", "s3cret", 0, 0, 0},     /* another name, the right password */
	        {"s3cret", "alice", 0, 0, 0},   /* swapped */
	        {"alice:s3cret", "", 0, 0, 0},  /* all in the name */
	        {"alice", "s3cret\0", 0, 7, 0}, /* a NUL byte more: not C strings */
	        {"alice\0", "s3cret", 6, 0, 0}, /* the same in the name */
	        {"", "", 0, 0, 0},
	};
	struct login_gate *g = login_gate_new("alice", "s3cret");
	assert_non_null(g);
	assert_string_equal(login_gate_user(g), "alice");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct check_row *r = &rows[i];
		size_t ul = r->ulen ? r->ulen : strlen(r->user), pl = r->plen ? r->plen : strlen(r->pass);
		int got = login_gate_check(g, guarded(0, r->user, ul), ul, guarded(1, r->pass, pl), pl);
		if (got != r->want)
			fail_msg("row %zu: user \"%s\" (%zu) pass \"%s\" (%zu): got %d, want %d", i, r->user,
			         ul, r->pass, pl, got, r->want);
	}
	login_gate_free(g);
	/* A password with a colon, and any bytes at all. */
	g = login_gate_new("me", "a:b\x01\xff");
	assert_true(login_gate_check(g, "me", 2, "a:b\x01\xff", 5));
	assert_false(login_gate_check(g, "me", 2, "a:b\x01\xfe", 5));
	assert_false(login_gate_check(g, "me", 2, "a", 1));
	login_gate_free(g);
}

static uint64_t clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The time of a check does not tell how much of the login matched. With strcmp (what
 * FTP used), a 4 KiB password that differs in its first byte is refused about 100
 * times sooner than one that differs in its last; here both cost the same digest.
 * Samples of the four cases are interleaved, and the fastest of each compared: on a
 * loaded machine, others only ever add time to a sample. */
#define CT_LEN     4096
#define CT_SAMPLES 63
#define CT_CALLS   64
static void test_check_time_tells_nothing(void **state)
{
	char *pass = malloc(CT_LEN), *first = malloc(CT_LEN), *last = malloc(CT_LEN);
	assert_true(pass && first && last);
	memset(pass, 'p', CT_LEN - 1);
	pass[CT_LEN - 1] = 0;
	memcpy(first, pass, CT_LEN);
	memcpy(last, pass, CT_LEN);
	first[0] = 'x';         /* wrong from the first byte */
	last[CT_LEN - 2] = 'x'; /* right up to the last byte */
	struct login_gate *g = login_gate_new("alice", pass);
	assert_non_null(g);
	const struct {
		const char *user, *pass;
	} cases[] = {{"alice", first}, {"alice", last}, {"alicx", last}, {"xlice", first}};
	enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
	uint64_t t[NCASES][CT_SAMPLES];
	int sink = 0;
	for (int s = 0; s < CT_SAMPLES; s++)
		for (int k0 = 0; k0 < NCASES; k0++) {
			int c = (k0 + s) % NCASES; /* each case first in turn */
			uint64_t t0 = clock_ns();
			for (int k = 0; k < CT_CALLS; k++)
				sink += login_gate_check(g, cases[c].user, 5, cases[c].pass, CT_LEN - 1);
			t[c][s] = clock_ns() - t0;
		}
	assert_int_equal(sink, 0);
	uint64_t best[NCASES], lo = UINT64_MAX, hi = 0;
	for (int c = 0; c < NCASES; c++) {
		qsort(t[c], CT_SAMPLES, sizeof(t[c][0]), cmp_u64);
		best[c] = t[c][0];
		lo = best[c] < lo ? best[c] : lo;
		hi = best[c] > hi ? best[c] : hi;
	}
	if (hi * 2 > lo * 3)
		fail_msg("fastest of %d checks: first byte wrong %llu ns, last byte wrong %llu ns, "
		         "name wrong at the end %llu ns, at the start %llu ns: more than 1.5 times apart",
		         CT_CALLS, (unsigned long long)best[0], (unsigned long long)best[1],
		         (unsigned long long)best[2], (unsigned long long)best[3]);
	login_gate_free(g);
	free(pass);
	free(first);
	free(last);
}

/* One attempt: what the gate says, and when the answer comes. */
static enum login_pass enter(struct login_gate *g, int right, uint64_t now, uint64_t *turn, unsigned *retry)
{
	uint64_t t = 0;
	unsigned r = 0;
	enum login_pass p = login_gate_enter(g, right, now, &t, &r);
	if (turn)
		*turn = t;
	if (retry)
		*retry = r;
	return p;
}

static void test_quiet_logins_never_wait(void **state)
{
	struct login_gate *g = login_gate_new("alice", "s3cret");
	struct login_stats st;
	/* A user who mistypes a few times, then gets it right: all answered at once. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(enter(g, 0, T0 + (uint64_t)i * 1000, NULL, NULL), LOGIN_NOW);
	assert_int_equal(enter(g, 1, T0 + 5000, NULL, NULL), LOGIN_NOW);
	/* Right logins cost nothing: a thousand at once, and the burst is still whole. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(enter(g, 1, T0 + 6000, NULL, NULL), LOGIN_NOW);
	login_gate_stats(g, T0 + 6000, &st);
	assert_int_equal(st.throttling, 0);
	assert_int_equal(st.failed, 3);
	/* The three failures are paid off after three turns: then a full burst again. */
	uint64_t later = T0 + 3 * TURN + 1000;
	for (int i = 0; i < LOGIN_FAIL_BURST; i++)
		assert_int_equal(enter(g, 0, later, NULL, NULL), LOGIN_NOW);
	login_gate_stats(g, later, &st);
	assert_int_equal(st.throttling, 0);
	assert_int_equal(st.failed, LOGIN_FAIL_BURST);
	login_gate_free(g);
}

static void test_spent_budget_makes_everyone_wait(void **state)
{
	struct login_gate *g = login_gate_new("alice", "s3cret");
	struct login_stats st;
	uint64_t turn;
	for (int i = 0; i < LOGIN_FAIL_BURST; i++)
		assert_int_equal(enter(g, 0, T0, NULL, NULL), LOGIN_NOW);
	/* Spent: the next attempts take turns, one TURN apart, right and wrong alike. */
	assert_int_equal(enter(g, 0, T0, &turn, NULL), LOGIN_WAIT);
	assert_int_equal(turn, T0 + TURN);
	assert_int_equal(enter(g, 1, T0, &turn, NULL), LOGIN_WAIT);
	assert_int_equal(turn, T0 + 2 * TURN);
	assert_int_equal(enter(g, 0, T0 + 1000, &turn, NULL), LOGIN_WAIT);
	assert_int_equal(turn, T0 + 3 * TURN);
	login_gate_stats(g, T0 + 1000, &st);
	assert_int_equal(st.throttling, 1);
	assert_int_equal(st.refusing, 0);
	assert_int_equal(st.failed, LOGIN_FAIL_BURST + 2);
	assert_int_equal(st.waited, 3);
	/* Once every turn has passed and the budget is whole, the burst is over. */
	uint64_t whole = T0 + (LOGIN_FAIL_BURST + 3) * TURN;
	login_gate_stats(g, whole, &st);
	assert_int_equal(st.throttling, 0);
	assert_int_equal(st.failed, 0);
	assert_int_equal(enter(g, 1, whole, NULL, NULL), LOGIN_NOW);
	assert_int_equal(enter(g, 0, whole, NULL, NULL), LOGIN_NOW);
	login_gate_free(g);
}

static void test_full_queue_refuses_until_half(void **state)
{
	struct login_gate *g = login_gate_new("alice", "s3cret");
	struct login_stats st;
	uint64_t turn = 0;
	unsigned retry = 0;
	for (int i = 0; i < LOGIN_FAIL_BURST; i++)
		assert_int_equal(enter(g, 0, T0, NULL, NULL), LOGIN_NOW);
	for (int i = 1; i <= LOGIN_QUEUE_MAX; i++) {
		assert_int_equal(enter(g, 0, T0, &turn, NULL), LOGIN_WAIT);
		assert_int_equal(turn, T0 + (uint64_t)i * TURN);
	}
	/* Full: refused, the right login too, with the seconds until the queue is down
	 * to LOGIN_QUEUE_RESUME. */
	assert_int_equal(enter(g, 0, T0, NULL, &retry), LOGIN_REFUSED);
	unsigned want = (unsigned)(((LOGIN_QUEUE_MAX - LOGIN_QUEUE_RESUME) * TURN + 999999) / 1000000);
	assert_int_equal(retry, want);
	assert_int_equal(enter(g, 1, T0, NULL, NULL), LOGIN_REFUSED);
	/* Refused while the queue drains, until it is down to LOGIN_QUEUE_RESUME. */
	uint64_t resume = T0 + (uint64_t)(LOGIN_QUEUE_MAX - LOGIN_QUEUE_RESUME) * TURN;
	assert_int_equal(enter(g, 1, resume - 1, NULL, NULL), LOGIN_REFUSED);
	login_gate_stats(g, resume - 1, &st);
	assert_int_equal(st.refusing, 1);
	assert_int_equal(st.refused, 3);
	assert_int_equal(st.waited, LOGIN_QUEUE_MAX);
	assert_int_equal(st.failed, LOGIN_FAIL_BURST + LOGIN_QUEUE_MAX); /* refused ones are not tried */
	assert_int_equal(enter(g, 1, resume, &turn, NULL), LOGIN_WAIT);
	assert_int_equal(turn, T0 + (uint64_t)(LOGIN_QUEUE_MAX + 1) * TURN);
	login_gate_stats(g, resume, &st);
	assert_int_equal(st.refusing, 0);
	login_gate_free(g);
}

/* An attacker trying every millisecond for 10 s gets exactly the burst plus one
 * answer per turn: the rate is the budget's, whatever the attacker's. */
static void test_rate_is_bounded(void **state)
{
	struct login_gate *g = login_gate_new("alice", "s3cret");
	const uint64_t span = 10000000; /* 10 s */
	unsigned answered = 0, refused = 0;
	for (uint64_t t = 0; t < span; t += 1000) {
		uint64_t turn;
		switch (enter(g, 0, T0 + t, &turn, NULL)) {
		case LOGIN_NOW: answered++; break;
		case LOGIN_WAIT: answered += turn <= T0 + span; break;
		case LOGIN_REFUSED: refused++; break;
		}
	}
	assert_int_equal(answered, LOGIN_FAIL_BURST + span / TURN);
	assert_true(refused > 9000);
	login_gate_free(g);
}

/* What the gate logs (on stderr, captured in a file): one line when logins start to
 * wait, the counts every LOGIN_REPORT_S while it lasts, and the counts once it ends;
 * nothing for the failures of a burst that never spends the budget. */
static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The number right after the first `after` in text. */
static unsigned long long count_after(const char *text, const char *after)
{
	const char *p = strstr(text, after);
	assert_non_null(p);
	return strtoull(p + strlen(after), NULL, 10);
}

static void test_log_once_per_burst(void **state)
{
	char path[] = "/tmp/test_login_log_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	int saved = dup(2);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);

	struct login_gate *g = login_gate_new("alice", "s3cret");
	for (int i = 0; i < 3; i++) /* typos: no line */
		enter(g, 0, T0, NULL, NULL);
	uint64_t t = T0 + 10 * TURN;  /* paid off */
	for (int i = 0; i < 200; i++) /* a burst: one start line */
		enter(g, i == 100, t, NULL, NULL);
	/* Kept up for LOGIN_REPORT_S and more: one report, still no second start line. */
	uint64_t report = (uint64_t)LOGIN_REPORT_S * 1000000u;
	for (uint64_t dt = TURN; dt <= report + TURN; dt += TURN)
		enter(g, 0, t + dt, NULL, NULL);
	/* Then nothing until the budget is whole: the end, with the counts. */
	struct login_stats st;
	login_gate_stats(g, t + report + 20 * 1000000ull, &st);
	assert_int_equal(st.throttling, 0);
	login_gate_free(g); /* no burst running: no line */

	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	char text[4096];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	assert_true(n > 0);
	text[n] = 0;
	if (count_of(text, "loopkit: login: ") != 3 ||
	    count_of(text, "loopkit: login: 10 failed logins in 0.0 s: guessing is throttled; every login "
	                   "now waits its turn (10 a second, at most 50 waiting)\n") != 1 ||
	    count_of(text, "loopkit: login: guessing still throttled for 60.0 s: ") != 1 ||
	    count_of(text, "; logins are answered at once again\n") != 1)
		fail_msg("log:\n%s", text);
	/* The end counts every failure, every turn given and every refusal of the burst
	 * (the right login came when the queue was full: refused). */
	const char *end = strstr(text, "loopkit: login: guessing was throttled for ");
	assert_non_null(end);
	unsigned long long failed = count_after(end, "s: "), waited = count_after(end, "logins, "),
	                   refused = count_after(end, "their turn, ");
	unsigned long long tries = 200 + report / TURN + 1;
	assert_int_equal(failed, LOGIN_FAIL_BURST + waited);
	assert_int_equal(LOGIN_FAIL_BURST + waited + refused, tries);
}

/* Threads share one budget: every turn is given once. */
#define NTHREADS   4
#define PER_THREAD 1000
struct racer {
	struct login_gate *g;
	unsigned now, wait, refused;
	uint64_t turns[PER_THREAD];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		uint64_t turn;
		switch (enter(r->g, i % 7 == 0, T0, &turn, NULL)) {
		case LOGIN_NOW: r->now++; break;
		case LOGIN_WAIT: r->turns[r->wait++] = turn; break;
		case LOGIN_REFUSED: r->refused++; break;
		}
	}
	return NULL;
}

static void test_threads_share_one_budget(void **state)
{
	struct login_gate *g = login_gate_new("alice", "s3cret");
	static struct racer r[NTHREADS];
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].g = g;
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	unsigned wait = 0, refused = 0, now = 0;
	uint64_t all[NTHREADS * PER_THREAD] = {0};
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		now += r[i].now;
		refused += r[i].refused;
		for (unsigned k = 0; k < r[i].wait; k++)
			all[wait++] = r[i].turns[k];
	}
	/* Right logins pass at once while the burst lasts, so "now" is at least the burst. */
	assert_true(now >= LOGIN_FAIL_BURST);
	assert_int_equal(wait, LOGIN_QUEUE_MAX);
	assert_int_equal(now + wait + refused, NTHREADS * PER_THREAD);
	qsort(all, wait, sizeof(all[0]), cmp_u64);
	for (unsigned k = 0; k < wait; k++)
		assert_int_equal(all[k], T0 + (k + 1) * TURN);
	login_gate_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_check_rows),
	        cmocka_unit_test(test_check_time_tells_nothing),
	        cmocka_unit_test(test_quiet_logins_never_wait),
	        cmocka_unit_test(test_spent_budget_makes_everyone_wait),
	        cmocka_unit_test(test_full_queue_refuses_until_half),
	        cmocka_unit_test(test_rate_is_bounded),
	        cmocka_unit_test(test_log_once_per_burst),
	        cmocka_unit_test(test_threads_share_one_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
