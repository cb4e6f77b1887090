/* sqlite_funcs.h - the SQLite functions watch's history calls, as an X-macro list: store.c
 * loads them on first need (core/lazylib.h), scripts/mkdeb links a stub that refers to
 * each, so that the .deb depends on a libsqlite3-0 that has them all. */
#ifndef LOOPKIT_WATCH_SQLITE_FUNCS_H
#define LOOPKIT_WATCH_SQLITE_FUNCS_H

#define SQLITE_FUNCS(X)                  \
	X(sqlite3_bind_int)              \
	X(sqlite3_bind_int64)            \
	X(sqlite3_bind_null)             \
	X(sqlite3_bind_text)             \
	X(sqlite3_busy_timeout)          \
	X(sqlite3_close)                 \
	X(sqlite3_column_int)            \
	X(sqlite3_column_int64)          \
	X(sqlite3_column_text)           \
	X(sqlite3_db_readonly)           \
	X(sqlite3_errmsg)                \
	X(sqlite3_errstr)                \
	X(sqlite3_exec)                  \
	X(sqlite3_extended_result_codes) \
	X(sqlite3_finalize)              \
	X(sqlite3_get_autocommit)        \
	X(sqlite3_libversion)            \
	X(sqlite3_libversion_number)     \
	X(sqlite3_open_v2)               \
	X(sqlite3_prepare_v2)            \
	X(sqlite3_prepare_v3)            \
	X(sqlite3_reset)                 \
	X(sqlite3_step)                  \
	X(sqlite3_system_errno)

/* RETURNING and upserts need SQLite 3.35; no symbol says so, so it is checked at open. */
#define WATCH_SQLITE_MIN      3035000
#define WATCH_SQLITE_MIN_TEXT "3.35.0"

#endif
