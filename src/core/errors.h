/* errors.h - one table from internal errors to messages, HTTP statuses and FTP replies. */
#ifndef LOOPKIT_CORE_ERRORS_H
#define LOOPKIT_CORE_ERRORS_H

#include <stddef.h>

/* HTTP statuses by name: HTTP_OK, HTTP_NOT_FOUND, ... (errors.def). */
enum http_status {
#define LK_STATUS(name, code, reason) HTTP_##name = code,
#define LK_ERR(name, http, ftp, msg)
#define LK_REPLY(name, ftp, text)
#include "core/errors.def"
#undef LK_STATUS
#undef LK_ERR
#undef LK_REPLY
};

#define HTTP_STATUS_MIN 100 /* the range a status code may take (RFC 9110 15) */
#define HTTP_STATUS_MAX 599

/* Every error either protocol can answer: LK_E_ENOENT, LK_E_H_BAD_LINE, ... */
enum lk_err {
#define LK_STATUS(name, code, reason)
#define LK_ERR(name, http, ftp, msg) LK_E_##name,
#define LK_REPLY(name, ftp, text)
#include "core/errors.def"
#undef LK_STATUS
#undef LK_ERR
#undef LK_REPLY
	LK_ERR_COUNT
};

/* FTP replies that are not errors: LK_R_READY, LK_R_TRANSFER_DONE, ... */
enum lk_reply {
#define LK_STATUS(name, code, reason)
#define LK_ERR(name, http, ftp, msg)
#define LK_REPLY(name, ftp, text) LK_R_##name,
#include "core/errors.def"
#undef LK_STATUS
#undef LK_ERR
#undef LK_REPLY
	LK_REPLY_COUNT
};

struct lk_error {
	int http;        /* HTTP status; 0 when the error is not an HTTP one */
	int ftp;         /* FTP reply code; 0 when the error is not an FTP one */
	const char *msg; /* one line for bodies, replies and logs; may hold one "%s" */
};

struct lk_reply_row {
	int ftp;          /* the reply code */
	const char *text; /* may hold one "%s" */
};

/* Maps an errno value from a file-system call to the table (EXDEV and ELOOP, the ways
 * out of the root, read as ENOENT). */
enum lk_err lk_err_from_errno(int e);
/* The row for e; never NULL (out of range reads as LK_E_EIO). */
const struct lk_error *lk_error(enum lk_err e);
/* The row for r; never NULL. */
const struct lk_reply_row *lk_reply(enum lk_reply r);
/* The reason phrase of an HTTP status ("Not Found"); "Status" for codes the table
 * lacks. */
const char *lk_http_reason(int status);
/* Is status one the table names? (the /_/status endpoint accepts any 100-599). */
int lk_http_known(int status);

/* Writes text (a table message or reply text) into out with its "%s" replaced by
 * detail ("" when detail is NULL). Returns the length written (cut to fit, always
 * terminated when len > 0). */
size_t lk_text_fill(char *out, size_t len, const char *text, const char *detail);

struct buf;
/* Row e as a JSON object, {"error": its message with detail, "status": its HTTP status},
 * and a newline, appended to b (pretty as json_init's). Returns the HTTP status. Every
 * JSON API (serve's /_/, proxy's control API) answers its errors with it. */
int lk_error_json(struct buf *b, enum lk_err e, const char *detail, int pretty);

/* "16 KiB", "1 MiB", "100 bytes": a limit as messages print it. Returns out. */
char *lk_size_text(unsigned long long n, char *out, size_t len);
/* "10 s", "500 ms", "5 min": a duration in milliseconds as messages print it. */
char *lk_ms_text(unsigned long long ms, char *out, size_t len);

#endif
