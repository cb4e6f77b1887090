/* portlease.h - free ports for tests, leased through per-user files so concurrent callers never share one. */
#ifndef LOOPKIT_DIAG_PORTLEASE_H
#define LOOPKIT_DIAG_PORTLEASE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/types.h>

/* portserver's static pool: below the kernel's default ephemeral range 32768-60999. */
#define PORTLEASE_POOL_LO      15000
#define PORTLEASE_POOL_HI      24999
#define PORTLEASE_DEFAULT_SECS 60
#define PORTLEASE_LOCK_WAIT_MS 5000 /* longest wait for another caller's lock */
#define PORTLEASE_MAX_COUNT    1000 /* most ports one call hands out */

struct portlease_range {
	uint16_t lo, hi; /* inclusive; lo > hi is empty */
};

/* One lease file's content. A lease is live while expires is in the future, or, when
 * pid is set, while that process (same start time) lives. */
struct portlease {
	uint16_t port;
	int64_t expires; /* unix seconds; 0: no time limit (tied to pid) */
	pid_t pid;       /* 0: not tied to a process */
	uint64_t start;  /* the pid's start time, /proc/PID/stat field 22 */
};

/* "system" (0-1023), "user" (1024-49151) or "dynamic" (49152-65535): IANA's classes. */
const char *portlease_iana_class(uint16_t port);

/* Reads net.ipv4.ip_local_port_range. Returns 0, or -1 (r set to 32768-60999). */
int portlease_ephemeral(struct portlease_range *r);

/* The ports of want that lie outside eph, as at most two ranges in out. Returns how
 * many ranges were stored (0 when want lies inside eph). */
size_t portlease_pool(struct portlease_range want, struct portlease_range eph, struct portlease_range out[2]);

/* Parses "port expires pid start\n". Returns 0, or -1 when malformed. */
int portlease_parse(const char *s, size_t n, struct portlease *l);
/* Writes the lease as one line. Returns the length, or -1 when len is too small. */
int portlease_format(const struct portlease *l, char *buf, size_t len);
/* True when l still holds its port at time now, given the current start time of
 * l->pid (0 when that process is gone). */
int portlease_live(const struct portlease *l, int64_t now, uint64_t pid_start);
/* The expires field of a lease of secs seconds taken at now: rounded up to the next
 * whole second, so that the lease holds for at least secs (time(NULL) truncates). */
int64_t portlease_expiry(struct timespec now, unsigned secs);

/* The start time of pid (field 22 of /proc/PID/stat). Returns 0, or -1 when the
 * process does not exist. */
int portlease_proc_start(pid_t pid, uint64_t *start);

/* The per-user lease directory ($XDG_RUNTIME_DIR/loopkit/ports, or
 * /tmp/loopkit-UID/ports), created 0700 and checked to be ours. Returns 0 or -1 with
 * err filled. */
int portlease_dir(char *buf, size_t len, char *err, size_t errlen);

#define PORTLEASE_TCP 1u
#define PORTLEASE_UDP 2u
/* True when port can be bound now on 127.0.0.1 (and ::1 where IPv6 is on) for the
 * protocols in need (TCP: bind + listen with SO_REUSEADDR). */
int portlease_bindable(uint16_t port, unsigned need);
/* Is port in one of pool[0..npool)? */
int portlease_in_pool(const struct portlease_range *pool, size_t npool, uint16_t port);

/* Takes count ports from the pool ranges, under the directory's lock: ports with no
 * live lease that are bindable for need, each given a lease file (written to a
 * temporary file and renamed) with the given expiry, pid and start. Starts at a
 * random place in the pool. Stores the ports in out and returns how many it took
 * (fewer than count when the pool ran out), or -1 with err filled. */
int portlease_take(const char *dir, const struct portlease_range *pool, size_t npool, size_t count,
                   unsigned need, const struct portlease *tmpl, uint16_t *out, char *err, size_t errlen);

/* net_listen_loopback (core/net.h) on ss. Port 0 takes a free TCP port outside the
 * kernel's ephemeral range, leased to the calling process as `loopkit port` hands them
 * out (so a test's other ports never collide with it); when none could be leased, or
 * another process took it meanwhile, the kernel's pick. ss keeps the port last asked
 * for. The proxy's listeners and isolate's -p use it. */
int portlease_listen_loopback(struct sockaddr_storage *ss, socklen_t len, int backlog, int *twin,
                              struct sockaddr_storage *failed, char *err, size_t errlen);

#endif
