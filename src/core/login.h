/* login.h - the server's one login gate (--user): a constant-time credential check and
 * a budget of failed logins shared by every protocol and thread on the port. */
#ifndef LOOPKIT_CORE_LOGIN_H
#define LOOPKIT_CORE_LOGIN_H

#include <stddef.h>
#include <stdint.h>

/* The budget. Failed logins are evaluated at once up to LOGIN_FAIL_BURST; past that,
 * every login not yet proven on its connection (right or wrong credentials, any
 * protocol) waits its turn, and turns come LOGIN_FAIL_RATE a second. At most
 * LOGIN_QUEUE_MAX logins wait (LOGIN_QUEUE_MAX / LOGIN_FAIL_RATE = 5 s for the last);
 * when the queue is full, every unproven login is refused (503, 421) until the queue
 * is down to LOGIN_QUEUE_RESUME. 10 guesses a second try an 8-character random
 * password of letters and digits (62^8) in 350,000 years on average; a user who
 * mistypes a few times never waits. */
#define LOGIN_FAIL_RATE    10 /* failed logins a second, server-wide, once the burst is spent */
#define LOGIN_FAIL_BURST   10 /* failed logins answered at once before anyone waits */
#define LOGIN_QUEUE_MAX    50 /* logins waiting their turn; more are refused */
#define LOGIN_QUEUE_RESUME (LOGIN_QUEUE_MAX / 2) /* once full, refused until down to this */
#define LOGIN_REPORT_S     60                    /* a long attack is reported again this often (seconds) */

struct login_gate;

/* What the gate decides for one login attempt. */
enum login_pass {
	LOGIN_NOW,     /* answer now (the verdict is the caller's check) */
	LOGIN_WAIT,    /* answer at the turn given, with the verdict of the same check */
	LOGIN_REFUSED, /* too many logins waiting: refuse, whatever the credentials */
};

/* The counts of one burst of failed logins (from the first failure after the budget
 * was whole to the moment it is whole again). */
struct login_stats {
	int throttling;             /* logins wait their turn (or are refused) now */
	int refusing;               /* the queue was full: logins are refused now */
	unsigned long long failed;  /* wrong credentials given in this burst */
	unsigned long long waited;  /* logins that were given a turn */
	unsigned long long refused; /* logins refused because the queue was full */
};

/* Creates the gate for the login user:pass (both copied; only user is kept in clear,
 * for the access log). Returns NULL when out of memory. Free with login_gate_free. */
struct login_gate *login_gate_new(const char *user, const char *pass);

/* Logs the counts of a burst still running (the server stops) and frees g (NULL ok). */
void login_gate_free(struct login_gate *g);

/* The user name, for access logs. Valid while g lives. */
const char *login_gate_user(const struct login_gate *g);

/* Is user:pass (not NUL-terminated; any bytes) the login? The time taken depends on
 * the lengths given, never on the login nor on how much of it matched: both are
 * compared as SHA-256 digests in constant time (memeql_sec), user and password alike. Does not
 * touch the budget. Thread-safe. */
int login_gate_check(const struct login_gate *g, const char *user, size_t ulen, const char *pass,
                     size_t plen);

/* An attempt at now_us (loop_clock_us()) whose credentials are right or not (the
 * result of login_gate_check), on a connection where they are not yet proven. A
 * wrong one spends the budget; while the budget is spent, each attempt takes the next
 * turn (right ones too: their answer must not come sooner), written to *turn_us on
 * the same clock for LOGIN_WAIT; *retry_s gets the seconds until logins are queued
 * again for LOGIN_REFUSED. Logs (once per burst) when logins start waiting, and the
 * counts when the burst is over. Thread-safe. */
enum login_pass login_gate_enter(struct login_gate *g, int right, uint64_t now_us, uint64_t *turn_us,
                                 unsigned *retry_s);

/* The counts of the current burst as of now_us. Thread-safe. */
void login_gate_stats(struct login_gate *g, uint64_t now_us, struct login_stats *out);

#endif
