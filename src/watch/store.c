/* store.c - the history in SQLite: WAL, batches written by a thread of their own, retention. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/lazylib.h"
#include "core/log.h"
#include "core/vec.h"
#include "watch/internal.h"

#include "watch/sqlite_funcs.h"

static struct {
	SQLITE_FUNCS(LAZYLIB_SLOT)
} sq;
static const char *const sq_names[] = {SQLITE_FUNCS(LAZYLIB_NAME)};
static struct lazylib sq_lib = LAZYLIB("libsqlite3.so.0", "libsqlite3-0", sq_names, sq);

#define BUSY_TIMEOUT_MS 2000 /* another process holding the database: wait this long */
#define CACHE_KIB       2048 /* SQLite's page cache */
#define SCHEMA_VERSION  1
#define HISTORY_MODE    0600 /* a new history file: the user's own */

struct watch_store {
	sqlite3 *db;
	char lasterr[256]; /* the writer's last failure, as SQLite said it (before the ROLLBACK) */
	int lasterrno;
	char path[4096];
	uint64_t retention_ms, retention_count;
	sqlite3_stmt *ins, *roll, *state;
	int64_t *ids; /* every target's row id (retention walks them) */
	size_t nids, capids;
	/* between the loop and the writer */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct watch_rec *q; /* queued records */
	size_t qn, qcap;
	int stop, started;
	pthread_t thread;
	struct watch_store_stats st;
	uint64_t last_prune_ms;
	int logged; /* the current failure was said once */
};

static const char *const schema =
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
        "CREATE TABLE IF NOT EXISTS targets(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, url TEXT NOT "
        "NULL,"
        " kind TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, since INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE IF NOT EXISTS results(target INTEGER NOT NULL, ts INTEGER NOT NULL, ok INTEGER NOT "
        "NULL,"
        " latency_us INTEGER NOT NULL, status INTEGER NOT NULL, error TEXT);"
        "CREATE INDEX IF NOT EXISTS results_target_ts ON results(target, ts);"
        "CREATE TABLE IF NOT EXISTS rollup(target INTEGER NOT NULL, hour INTEGER NOT NULL, n INTEGER NOT "
        "NULL,"
        " ok INTEGER NOT NULL, lat_sum_us INTEGER NOT NULL, PRIMARY KEY(target, hour)) WITHOUT ROWID;";

static uint64_t mono_ms(void)
{
	return loop_clock_us() / 1000;
}

/* The reason and the fix for a failed database operation: rc its result code, msg
 * SQLite's text (NULL: the connection's current one), eno the system errno behind it. */
static void db_error_msg(const struct watch_store *s, int rc, const char *what, const char *msg, int eno,
                         char *err, size_t errlen)
{
	if (!msg)
		msg = s->db ? sq.sqlite3_errmsg(s->db) : sq.sqlite3_errstr(rc);
	/* A write that ran out of room may come back as an I/O error: the errno tells. */
	if ((rc & 0xff) == SQLITE_IOERR && (eno == ENOSPC || eno == EFBIG || eno == EDQUOT))
		rc = SQLITE_FULL;
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		snprintf(err, errlen,
		         "history %s is damaged or not a loopkit history (%s: %s); move it away (it is left "
		         "as it is) or give another --db FILE",
		         s->path, what, msg);
		break;
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		snprintf(err, errlen,
		         "history %s cannot be written (%s: %s); fix the permissions of the file and its "
		         "directory, or give another --db FILE",
		         s->path, what, msg);
		break;
	case SQLITE_FULL:
		snprintf(err, errlen,
		         "history %s: the disk is full (%s: %s%s%s); free some space or give another --db "
		         "FILE",
		         s->path, what, msg, eno ? ", " : "", eno ? strerror(eno) : "");
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		snprintf(
		        err, errlen,
		        "history %s is locked by another process for over %d ms (%s); give another --db FILE",
		        s->path, BUSY_TIMEOUT_MS, what);
		break;
	default:
		snprintf(err, errlen, "history %s: %s: %s%s%s", s->path, what, msg, eno ? ": " : "",
		         eno ? strerror(eno) : "");
	}
}

static void db_error(const struct watch_store *s, int rc, const char *what, char *err, size_t errlen)
{
	db_error_msg(s, rc, what, NULL, s->db ? sq.sqlite3_system_errno(s->db) : 0, err, errlen);
}

static int exec(struct watch_store *s, const char *sql, const char *what, char *err, size_t errlen)
{
	int rc = sq.sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		db_error(s, rc, what, err, errlen);
		return -1;
	}
	return 0;
}

static int prepare(struct watch_store *s, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	int rc = sq.sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc != SQLITE_OK) {
		db_error(s, rc, "prepare", err, errlen);
		return -1;
	}
	return 0;
}

static void store_free(struct watch_store *s)
{
	sq.sqlite3_finalize(s->ins);
	sq.sqlite3_finalize(s->roll);
	sq.sqlite3_finalize(s->state);
	if (s->db)
		sq.sqlite3_close(s->db);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->q);
	free(s->ids);
	free(s);
}

struct watch_store *watch_store_open(const char *path, uint64_t retention_ms, uint64_t retention_count,
                                     char *err, size_t errlen)
{
	if (lazylib_need(&sq_lib, err, errlen) < 0)
		return NULL;
	if (sq.sqlite3_libversion_number() < WATCH_SQLITE_MIN) {
		snprintf(err, errlen, "the history needs SQLite %s or newer; libsqlite3.so.0 is %s",
		         WATCH_SQLITE_MIN_TEXT, sq.sqlite3_libversion());
		return NULL;
	}
	struct watch_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* batches keep their pace when the clock is set */
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->retention_ms = retention_ms;
	s->retention_count = retention_count;
	/* A new history is the user's own (0600; SQLite gives its -wal and -shm files the
	 * same mode): it holds every target's URL and what failed. SQLite alone would
	 * create it 0644. An existing file is left as it is. */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, HISTORY_MODE);
	if (fd >= 0)
		close(fd);
	int rc = sq.sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		db_error(s, rc, "open", err, errlen);
		goto fail;
	}
	sq.sqlite3_extended_result_codes(s->db, 1);
	if (sq.sqlite3_db_readonly(s->db, "main") == 1) {
		db_error_msg(s, SQLITE_READONLY, "open", "the file is read-only to this user", 0, err,
		             errlen);
		goto fail;
	}
	sq.sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	char sql[128];
	snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%d", CACHE_KIB);
	if (exec(s, sql, "open", err, errlen) < 0)
		goto fail;
	/* WAL: readers (sqlite3 on the command line) never block the writer, and a
	 * commit is one append; synchronous=NORMAL syncs at checkpoints only, so a power
	 * loss may take the last commits, a kill -9 none. */
	sqlite3_stmt *st = NULL;
	rc = sq.sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sq.sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		db_error(s, rc, "journal_mode=WAL", err, errlen);
		sq.sqlite3_finalize(st);
		goto fail;
	}
	const char *mode = (const char *)sq.sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		snprintf(err, errlen,
		         "history %s cannot use write-ahead logging (journal mode stays %s); is its "
		         "directory writable? give another --db FILE",
		         s->path, mode ? mode : "?");
		sq.sqlite3_finalize(st);
		goto fail;
	}
	sq.sqlite3_finalize(st);
	if (exec(s, "PRAGMA synchronous=NORMAL", "synchronous", err, errlen) < 0 ||
	    exec(s, "BEGIN IMMEDIATE", "begin", err, errlen) < 0)
		goto fail;
	/* The schema and a first write, so a read-only, damaged or full database is told
	 * at start rather than later. */
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES('schema', %d);", SCHEMA_VERSION);
	if (exec(s, schema, "schema", err, errlen) < 0 || exec(s, sql, "write", err, errlen) < 0 ||
	    exec(s, "COMMIT", "commit", err, errlen) < 0) {
		sq.sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	if (prepare(s, "INSERT INTO results VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &s->ins, err, errlen) < 0 ||
	    prepare(s,
	            "INSERT INTO rollup VALUES(?1, ?2, 1, ?3, ?4) ON CONFLICT(target, hour) DO UPDATE SET "
	            "n = n + 1, ok = ok + excluded.ok, lat_sum_us = lat_sum_us + excluded.lat_sum_us",
	            &s->roll, err, errlen) < 0 ||
	    prepare(s, "UPDATE targets SET state = ?2, since = ?3 WHERE id = ?1", &s->state, err, errlen) < 0)
		goto fail;
	return s;
fail:
	store_free(s);
	return NULL;
}

int watch_store_target(struct watch_store *s, const struct watch_target *t, int64_t *id, int *state,
                       uint64_t *since_ms, struct watch_stats *stats, uint64_t now_ms, char *err,
                       size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *what = "targets";
	int rc = sq.sqlite3_prepare_v2(
	        s->db,
	        "INSERT INTO targets(name, url, kind) VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE "
	        "SET url = excluded.url, kind = excluded.kind RETURNING id, state, since",
	        -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sq.sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
		sq.sqlite3_bind_text(st, 2, t->url, -1, SQLITE_STATIC);
		sq.sqlite3_bind_text(st, 3, watch_kind_name(t->kind), -1, SQLITE_STATIC);
		rc = sq.sqlite3_step(st);
	}
	if (rc != SQLITE_ROW)
		goto fail;
	*id = sq.sqlite3_column_int64(st, 0);
	*state = sq.sqlite3_column_int(st, 1);
	*since_ms = (uint64_t)sq.sqlite3_column_int64(st, 2);
	if (*state < WATCH_UNKNOWN || *state > WATCH_DOWN)
		*state = WATCH_UNKNOWN;
	sq.sqlite3_finalize(st);
	st = NULL;
	if (vec_grow((void **)&s->ids, &s->capids, s->nids + 1, sizeof(*s->ids)) == 0)
		s->ids[s->nids++] = *id;
	/* The hours of the last 7 days, then the results of the last hour (minutes and
	 * latencies; their hours are in the rollup already). */
	what = "rollup";
	rc = sq.sqlite3_prepare_v2(s->db, "SELECT hour, n, ok FROM rollup WHERE target = ?1 AND hour > ?2",
	                           -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sq.sqlite3_bind_int64(st, 1, *id);
	sq.sqlite3_bind_int64(st, 2, (int64_t)(now_ms / 3600000) - WATCH_HOURS);
	while ((rc = sq.sqlite3_step(st)) == SQLITE_ROW)
		watch_stats_add_hour(stats, (uint32_t)sq.sqlite3_column_int64(st, 0),
		                     (uint32_t)sq.sqlite3_column_int64(st, 1),
		                     (uint32_t)sq.sqlite3_column_int64(st, 2));
	if (rc != SQLITE_DONE)
		goto fail;
	sq.sqlite3_finalize(st);
	what = "results";
	rc = sq.sqlite3_prepare_v2(
	        s->db, "SELECT ts, ok, latency_us FROM results WHERE target = ?1 AND ts > ?2 ORDER BY ts", -1,
	        &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sq.sqlite3_bind_int64(st, 1, *id);
	sq.sqlite3_bind_int64(st, 2, (int64_t)now_ms - 3600000);
	while ((rc = sq.sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t ts = (uint64_t)sq.sqlite3_column_int64(st, 0),
		         lat = (uint64_t)sq.sqlite3_column_int64(st, 2);
		int ok = sq.sqlite3_column_int(st, 1);
		watch_stats_add_minute(stats, (uint32_t)(ts / 60000), 1, ok ? 1 : 0, ok ? lat : 0);
		if (ok)
			watch_stats_add_latency(stats, ts, lat);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sq.sqlite3_finalize(st);
	return 0;
fail:
	db_error(s, rc, what, err, errlen);
	sq.sqlite3_finalize(st);
	return -1;
}

/* Keeps what went wrong, then undoes the transaction (whose own message would
 * replace it). */
static void rollback(struct watch_store *s)
{
	snprintf(s->lasterr, sizeof(s->lasterr), "%s", sq.sqlite3_errmsg(s->db));
	s->lasterrno = sq.sqlite3_system_errno(s->db);
	if (!sq.sqlite3_get_autocommit(s->db))
		sq.sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Writes one batch in one transaction. Returns 0, or the SQLite error. */
static int write_batch(struct watch_store *s, const struct watch_rec *r, size_t n)
{
	int rc = sq.sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_stmt *st;
		if (r[i].kind == 0) {
			st = s->ins;
			sq.sqlite3_bind_int64(st, 1, r[i].target);
			sq.sqlite3_bind_int64(st, 2, r[i].ts_ms);
			sq.sqlite3_bind_int(st, 3, r[i].ok);
			sq.sqlite3_bind_int64(st, 4, r[i].latency_us);
			sq.sqlite3_bind_int(st, 5, r[i].status);
			if (r[i].ok)
				sq.sqlite3_bind_null(st, 6);
			else
				sq.sqlite3_bind_text(st, 6, r[i].detail, -1, SQLITE_STATIC);
			rc = sq.sqlite3_step(st);
			sq.sqlite3_reset(st);
			if (rc != SQLITE_DONE)
				break;
			st = s->roll;
			sq.sqlite3_bind_int64(st, 1, r[i].target);
			sq.sqlite3_bind_int64(st, 2, r[i].ts_ms / 3600000);
			sq.sqlite3_bind_int(st, 3, r[i].ok);
			sq.sqlite3_bind_int64(st, 4, r[i].ok ? r[i].latency_us : 0);
		} else {
			st = s->state;
			sq.sqlite3_bind_int64(st, 1, r[i].target);
			sq.sqlite3_bind_int(st, 2, r[i].ok);
			sq.sqlite3_bind_int64(st, 3, r[i].ts_ms);
		}
		rc = sq.sqlite3_step(st);
		sq.sqlite3_reset(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc == SQLITE_OK)
		rc = sq.sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		rollback(s);
	return rc;
}

/* Retention: by age (results and hours), then by count per target. */
static int prune(struct watch_store *s)
{
	int64_t cutoff = (int64_t)watch_wall_ms() - (int64_t)s->retention_ms;
	sqlite3_stmt *age = NULL, *count = NULL, *hours = NULL;
	int rc = sq.sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sq.sqlite3_prepare_v2(s->db, "DELETE FROM results WHERE target = ?1 AND ts < ?2", -1,
		                           &age, NULL);
	if (rc == SQLITE_OK)
		rc = sq.sqlite3_prepare_v2(
		        s->db,
		        "DELETE FROM results WHERE target = ?1 AND ts <= (SELECT ts FROM results WHERE "
		        "target = ?1 ORDER BY ts DESC LIMIT 1 OFFSET ?2)",
		        -1, &count, NULL);
	if (rc == SQLITE_OK)
		rc = sq.sqlite3_prepare_v2(s->db, "DELETE FROM rollup WHERE hour < ?1", -1, &hours, NULL);
	for (size_t i = 0; i < s->nids && rc == SQLITE_OK; i++) {
		sq.sqlite3_bind_int64(age, 1, s->ids[i]);
		sq.sqlite3_bind_int64(age, 2, cutoff);
		rc = sq.sqlite3_step(age);
		sq.sqlite3_reset(age);
		if (rc != SQLITE_DONE)
			break;
		sq.sqlite3_bind_int64(count, 1, s->ids[i]);
		sq.sqlite3_bind_int64(count, 2, (int64_t)s->retention_count);
		rc = sq.sqlite3_step(count);
		sq.sqlite3_reset(count);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc == SQLITE_OK) {
		/* An hour is dropped once all of it is older than the cutoff. */
		sq.sqlite3_bind_int64(hours, 1, cutoff / 3600000);
		rc = sq.sqlite3_step(hours);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc == SQLITE_OK)
		rc = sq.sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		rollback(s);
	sq.sqlite3_finalize(age);
	sq.sqlite3_finalize(count);
	sq.sqlite3_finalize(hours);
	return rc;
}

/* A failure is said once per episode; so is the recovery. */
static void note(struct watch_store *s, int rc, const char *what)
{
	if (rc == SQLITE_OK) {
		if (s->logged)
			log_msg("history %s is written again", s->path);
		s->logged = 0;
		return;
	}
	if (!s->logged) {
		char err[600];
		db_error_msg(s, rc, what, s->lasterr, s->lasterrno, err, sizeof(err));
		log_msg("%s; probing goes on in memory (the page and /metrics are unaffected), and results "
		        "are not "
		        "saved until it is writable again",
		        err);
	}
	s->logged = 1;
}

static void *writer_main(void *arg)
{
	struct watch_store *s = arg;
	struct watch_rec *batch = NULL;
	size_t bcap = 0;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (!s->stop) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += WATCH_FLUSH_MS / 1000;
			until.tv_nsec += (WATCH_FLUSH_MS % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
				;
		}
		int stop = s->stop;
		/* Take the queue; the loop fills a fresh one meanwhile. */
		struct watch_rec *q = s->q;
		size_t n = s->qn, qcap = s->qcap;
		s->q = batch;
		s->qcap = bcap;
		s->qn = 0;
		batch = q;
		bcap = qcap;
		pthread_mutex_unlock(&s->mu);
		uint64_t t0 = loop_clock_us();
		int rc = n ? write_batch(s, batch, n) : SQLITE_OK;
		double dt = (double)(loop_clock_us() - t0) / 1e6;
		note(s, rc, "writing results");
		int prc = SQLITE_OK;
		if (!stop && mono_ms() - s->last_prune_ms >= WATCH_PRUNE_MS) {
			prc = prune(s);
			s->last_prune_ms = mono_ms();
			if (rc == SQLITE_OK)
				note(s, prc, "retention");
		}
		pthread_mutex_lock(&s->mu);
		if (n) {
			s->st.batches++;
			s->st.last_batch_s = dt;
			if (rc == SQLITE_OK) {
				s->st.written += n;
			} else {
				s->st.failed_batches++;
				s->st.dropped += n;
			}
		}
		s->st.failing = rc != SQLITE_OK || prc != SQLITE_OK;
		if (stop)
			break;
	}
	pthread_mutex_unlock(&s->mu);
	free(batch);
	return NULL;
}

int watch_store_start(struct watch_store *s, char *err, size_t errlen)
{
	s->last_prune_ms = 0; /* retention runs first */
	int e = pthread_create(&s->thread, NULL, writer_main, s);
	if (e) {
		snprintf(err, errlen, "cannot start the history writer: %s", strerror(e));
		return -1;
	}
	s->started = 1;
	return 0;
}

void watch_store_put(struct watch_store *s, const struct watch_rec *r)
{
	pthread_mutex_lock(&s->mu);
	if (s->qn >= WATCH_PENDING_MAX || vec_grow((void **)&s->q, &s->qcap, s->qn + 1, sizeof(*s->q)) < 0)
		s->st.dropped++;
	else
		s->q[s->qn++] = *r;
	pthread_mutex_unlock(&s->mu);
}

void watch_store_stats(struct watch_store *s, struct watch_store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	pthread_mutex_unlock(&s->mu);
}

void watch_store_close(struct watch_store *s)
{
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	store_free(s);
}
