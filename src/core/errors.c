/* errors.c - the error table shared by HTTP and FTP, built from errors.def. */
#include "core/errors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

static const struct lk_error err_table[LK_ERR_COUNT] = {
#define LK_STATUS(name, code, reason)
#define LK_ERR(name, http, ftp, msg) [LK_E_##name] = {http, ftp, msg},
#define LK_REPLY(name, ftp, text)
#include "core/errors.def"
#undef LK_STATUS
#undef LK_ERR
#undef LK_REPLY
};

static const struct lk_reply_row reply_table[LK_REPLY_COUNT] = {
#define LK_STATUS(name, code, reason)
#define LK_ERR(name, http, ftp, msg)
#define LK_REPLY(name, ftp, text) [LK_R_##name] = {ftp, text},
#include "core/errors.def"
#undef LK_STATUS
#undef LK_ERR
#undef LK_REPLY
};

static const struct {
	int code;
	const char *reason;
} status_table[] = {
#define LK_STATUS(name, code, reason) {code, reason},
#define LK_ERR(name, http, ftp, msg)
#define LK_REPLY(name, ftp, text)
#include "core/errors.def"
#undef LK_STATUS
#undef LK_ERR
#undef LK_REPLY
};

enum lk_err lk_err_from_errno(int e)
{
	switch (e) {
	case 0: return LK_E_OK;
	case ENOENT:
	case EXDEV: /* RESOLVE_BENEATH: the path leads outside the root */
	case ELOOP: return LK_E_ENOENT;
	case ENOLINK: return LK_E_ELINKOUT; /* fsroot: a write to a symlink that reads as missing */
	case EACCES:
	case EPERM:
	case EROFS: return LK_E_EACCES;
	case EEXIST: return LK_E_EEXIST;
	case ENOTEMPTY: return LK_E_ENOTEMPTY;
	case EISDIR: return LK_E_EISDIR;
	case EMEDIUMTYPE:                 /* fsroot's FSROOT_ENOTFILE: a FIFO, a socket, a device */
	case ENXIO: return LK_E_ENOTFILE; /* open(2) of a unix socket (or a FIFO without a writer) */
	case ENOTDIR: return LK_E_ENOTDIR;
	case ENOSPC:
	case EDQUOT: return LK_E_ENOSPC;
	case ENAMETOOLONG: return LK_E_ENAMETOOLONG;
	case EFBIG: return LK_E_ETOOBIG;
	case ENOMEM: return LK_E_ENOMEM;
	case EMFILE:
	case ENFILE: return LK_E_EMFILE;
	case ENOBUFS: return LK_E_ELISTFULL; /* dirsnap_get: the listings' memory limit */
	default: return LK_E_EIO;
	}
}

const struct lk_error *lk_error(enum lk_err e)
{
	if ((unsigned)e >= LK_ERR_COUNT)
		e = LK_E_EIO;
	return &err_table[e];
}

const struct lk_reply_row *lk_reply(enum lk_reply r)
{
	if ((unsigned)r >= LK_REPLY_COUNT)
		r = LK_R_NOOP_OK;
	return &reply_table[r];
}

const char *lk_http_reason(int status)
{
	/* Sorted by code in errors.def: a binary search. */
	size_t lo = 0, hi = sizeof(status_table) / sizeof(status_table[0]);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (status_table[mid].code == status)
			return status_table[mid].reason;
		if (status_table[mid].code < status)
			lo = mid + 1;
		else
			hi = mid;
	}
	return "Status";
}

int lk_http_known(int status)
{
	return strcmp(lk_http_reason(status), "Status") != 0;
}

size_t lk_text_fill(char *out, size_t len, const char *text, const char *detail)
{
	if (!len)
		return 0;
	const char *pct = strstr(text, "%s");
	int n;
	if (pct)
		n = snprintf(out, len, "%.*s%s%s", (int)(pct - text), text, detail ? detail : "", pct + 2);
	else
		n = snprintf(out, len, "%s", text);
	if (n < 0) {
		out[0] = 0;
		return 0;
	}
	return (size_t)n < len ? (size_t)n : len - 1;
}

char *lk_size_text(unsigned long long n, char *out, size_t len)
{
	static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;
	while (u + 1 < sizeof(units) / sizeof(units[0]) && n >= 1024 && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	snprintf(out, len, "%llu %s", n, u == 0 && n == 1 ? "byte" : units[u]);
	return out;
}

char *lk_ms_text(unsigned long long ms, char *out, size_t len)
{
	if (ms % 60000 == 0 && ms)
		snprintf(out, len, "%llu min", ms / 60000);
	else if (ms % 1000 == 0 && ms)
		snprintf(out, len, "%llu s", ms / 1000);
	else if (ms >= 1000)
		snprintf(out, len, "%.1f s", (double)ms / 1000);
	else
		snprintf(out, len, "%llu ms", ms);
	return out;
}

int lk_error_json(struct buf *b, enum lk_err e, const char *detail, int pretty)
{
	const struct lk_error *row = lk_error(e);
	char msg[2048];
	struct json j;
	lk_text_fill(msg, sizeof(msg), row->msg, detail);
	json_init(&j, b, pretty);
	json_obj_begin(&j);
	json_kstr(&j, "error", msg);
	json_kint(&j, "status", row->http);
	json_obj_end(&j);
	buf_append(b, "\n", 1);
	return row->http;
}
