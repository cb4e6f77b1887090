/* login.c - the login gate: SHA-256 digests compared in constant time, and a budget of
 * failed logins kept as a generic cell rate algorithm (one "theoretical arrival time"). */
#include "core/login.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/nettle_lib.h"

#define DIGEST_LEN SHA256_DIGEST_SIZE
#define TURN_US    (1000000u / LOGIN_FAIL_RATE) /* between two turns */
#define LOG_LINE   256

struct login_gate {
	char *user;                        /* for the access log */
	unsigned char user_md[DIGEST_LEN]; /* the login, as digests only */
	unsigned char pass_md[DIGEST_LEN];
	pthread_mutex_t mu; /* guards what follows */
	/* The budget: tat - now is the work queued, one TURN_US per failure not yet paid
	 * off (and per turn given). The budget is whole when tat <= now, spent when
	 * tat - now + TURN_US > LOGIN_FAIL_BURST turns. */
	uint64_t tat;
	uint64_t burst_start; /* the first failure since the budget was whole */
	uint64_t throttle_start, last_report;
	struct login_stats st;
};

static void digest(const char *p, size_t n, unsigned char md[DIGEST_LEN])
{
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	sha256_update(&ctx, n, (const uint8_t *)p);
	sha256_digest(&ctx, DIGEST_LEN, md);
}

struct login_gate *login_gate_new(const char *user, const char *pass)
{
	char why[256];
	if (nettle_need(why, sizeof why) < 0)
		return NULL; /* the caller asked nettle_need for the reason first */
	struct login_gate *g = calloc(1, sizeof(*g));
	if (!g || !(g->user = strdup(user))) {
		free(g);
		return NULL;
	}
	digest(user, strlen(user), g->user_md);
	digest(pass, strlen(pass), g->pass_md);
	pthread_mutex_init(&g->mu, NULL);
	return g;
}

/* The counts of a burst as a log line (written under the lock, logged after it):
 * "login: guessing " what " throttled for ...: counts" tail. */
static void format_counts(const struct login_gate *g, uint64_t end, const char *what, const char *tail,
                          char *line, size_t n)
{
	snprintf(line, n,
	         "login: guessing %s throttled for %.1f s: %llu failed logins, %llu waited their "
	         "turn, %llu refused (queue full)%s",
	         what, (double)(end - g->throttle_start) / 1e6, g->st.failed, g->st.waited, g->st.refused,
	         tail);
}

void login_gate_free(struct login_gate *g)
{
	if (!g)
		return;
	if (g->st.throttling) {
		char line[LOG_LINE];
		uint64_t now = loop_clock_us();
		format_counts(g, g->tat < now ? g->tat : now, "was", " until the server stopped", line,
		              sizeof(line));
		log_msg("%s", line);
	}
	pthread_mutex_destroy(&g->mu);
	free(g->user);
	free(g);
}

const char *login_gate_user(const struct login_gate *g)
{
	return g->user;
}

int login_gate_check(const struct login_gate *g, const char *user, size_t ulen, const char *pass, size_t plen)
{
	unsigned char u[DIGEST_LEN], p[DIGEST_LEN];
	digest(user, ulen, u);
	digest(pass, plen, p);
	/* Both compared, whatever the first gave: no early exit. */
	int bad_user = !memeql_sec(u, g->user_md, DIGEST_LEN);
	int bad_pass = !memeql_sec(p, g->pass_md, DIGEST_LEN);
	return !(bad_user | bad_pass);
}

/* Brings the burst up to now: over when the budget is whole again. Fills line with
 * what to log (or leaves it empty). */
static void burst_update(struct login_gate *g, uint64_t now, char *line, size_t n)
{
	if (g->tat <= now) {
		if (g->st.throttling)
			format_counts(g, g->tat, "was", "; logins are answered at once again", line, n);
		memset(&g->st, 0, sizeof(g->st));
		g->burst_start = now;
		return;
	}
	if (g->st.throttling && now - g->last_report >= (uint64_t)LOGIN_REPORT_S * 1000000u) {
		g->last_report = now;
		format_counts(g, now, "still", "", line, n);
	}
}

enum login_pass login_gate_enter(struct login_gate *g, int right, uint64_t now, uint64_t *turn_us,
                                 unsigned *retry_s)
{
	char line[LOG_LINE] = "";
	enum login_pass r;
	pthread_mutex_lock(&g->mu);
	burst_update(g, now, line, sizeof(line));
	uint64_t queued = g->tat > now ? g->tat - now : 0; /* work ahead, in µs */
	const uint64_t burst = (uint64_t)LOGIN_FAIL_BURST * TURN_US;
	const uint64_t full = (uint64_t)(LOGIN_FAIL_BURST + LOGIN_QUEUE_MAX) * TURN_US;
	const uint64_t resume = (uint64_t)(LOGIN_FAIL_BURST + LOGIN_QUEUE_RESUME) * TURN_US;
	if (g->st.refusing && queued <= resume)
		g->st.refusing = 0;
	if (queued + TURN_US <= burst && !g->st.refusing) {
		/* Budget left: answered at once, and only a failure spends it. */
		if (!right) {
			g->tat = (g->tat > now ? g->tat : now) + TURN_US;
			g->st.failed++;
		}
		r = LOGIN_NOW;
	} else {
		if (!g->st.throttling) {
			g->st.throttling = 1;
			g->throttle_start = g->last_report = now;
			snprintf(line, sizeof(line),
			         "login: %llu failed logins in %.1f s: guessing is throttled; every login "
			         "now waits its turn (%d a second, at most %d waiting)",
			         g->st.failed, (double)(now - g->burst_start) / 1e6, LOGIN_FAIL_RATE,
			         LOGIN_QUEUE_MAX);
		}
		if (g->st.refusing || queued >= full) {
			g->st.refusing = 1;
			g->st.refused++;
			*retry_s = (unsigned)((queued - resume + 999999) / 1000000);
			if (!*retry_s)
				*retry_s = 1;
			r = LOGIN_REFUSED;
		} else {
			/* The next turn: when the budget would have room for one more. The turn
			 * is spent whatever the credentials (a right login does not pay it
			 * back: that would tell who got in). */
			*turn_us = g->tat + TURN_US - burst;
			g->tat += TURN_US;
			g->st.waited++;
			g->st.failed += !right;
			r = LOGIN_WAIT;
		}
	}
	pthread_mutex_unlock(&g->mu);
	if (line[0])
		log_msg("%s", line);
	return r;
}

void login_gate_stats(struct login_gate *g, uint64_t now, struct login_stats *out)
{
	char line[LOG_LINE] = "";
	pthread_mutex_lock(&g->mu);
	burst_update(g, now, line, sizeof(line));
	*out = g->st;
	pthread_mutex_unlock(&g->mu);
	if (line[0])
		log_msg("%s", line);
}
