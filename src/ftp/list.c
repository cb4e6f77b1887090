/* list.c - FTP listing lines and reply paths: pure functions of their arguments. */
#include "ftp/list.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void ftp_list_modify(time_t t, char out[16])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	if (!strftime(out, 16, "%Y%m%d%H%M%S", &tm))
		out[0] = 0;
}

static const char *perm_fact(int is_dir, int write)
{
	if (is_dir)
		return write ? "elcmp" : "el";
	return write ? "radfw" : "r";
}

size_t ftp_list_facts(char *out, size_t len, const struct dirsnap_ent *e, int write)
{
	char when[16];
	ftp_list_modify(e->mtime.tv_sec, when);
	/* RFC 3659 7.5.1: an OS-specific type for what is neither file nor directory, so a
	 * client does not try to RETR a FIFO or a socket */
	mode_t m = e->mode;
	const char *type = e->is_dir     ? "dir"
	                   : S_ISFIFO(m) ? "OS.unix=fifo"
	                   : S_ISSOCK(m) ? "OS.unix=socket"
	                   : S_ISCHR(m)  ? "OS.unix=chr"
	                   : S_ISBLK(m)  ? "OS.unix=blk"
	                                 : "file";
	int n = snprintf(out, len,
	                 "type=%s;size=%llu;modify=%s;perm=%s;UNIX.mode=%04o;UNIX.owner=%lu;UNIX.group=%lu; ",
	                 type, (unsigned long long)e->size, when, perm_fact(e->is_dir, write),
	                 (unsigned)(e->mode & 0777), (unsigned long)e->uid, (unsigned long)e->gid);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

/* "drwxr-xr-x" */
static void mode_text(mode_t m, int is_dir, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	/* as ls -l: a FIFO, socket or device is not shown as a plain file (RETR refuses it) */
	out[0] = is_dir        ? 'd'
	         : S_ISFIFO(m) ? 'p'
	         : S_ISSOCK(m) ? 's'
	         : S_ISCHR(m)  ? 'c'
	         : S_ISBLK(m)  ? 'b'
	                       : '-';
	for (int i = 0; i < 9; i++)
		out[i + 1] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	out[10] = 0;
}

size_t ftp_list_line(char *out, size_t len, enum ftp_list_kind k, const struct dirsnap_ent *e, time_t now,
                     int write, int crlf)
{
	const char *end = crlf ? "\r\n" : "";
	int n;
	if (!len || strpbrk(e->name, "\r\n"))
		return 0;
	if (k == FTP_L_NLST) {
		n = snprintf(out, len, "%s%s", e->name, end);
	} else if (k == FTP_L_MLSD) {
		size_t f = ftp_list_facts(out, len, e, write);
		n = snprintf(out + f, len - f, "%s%s", e->name, end);
		n = n < 0 ? n : n + (int)f;
	} else {
		char ms[11], when[32];
		struct tm tm;
		time_t t = e->mtime.tv_sec;
		gmtime_r(&t, &tm);
		/* As ls -l: the time of day within six months, else the year. */
		if (t > now - 180 * 86400 && t < now + 86400)
			strftime(when, sizeof(when), "%b %e %H:%M", &tm);
		else
			strftime(when, sizeof(when), "%b %e  %Y", &tm);
		mode_text(e->mode, e->is_dir, ms);
		n = snprintf(out, len, "%s 1 ftp ftp %12llu %s %s%s", ms, (unsigned long long)e->size, when,
		             e->name, end);
	}
	if (n < 0) {
		out[0] = 0;
		return 0;
	}
	return (size_t)n < len ? (size_t)n : len - 1;
}

char *ftp_list_quote(const char *rel, char *out, size_t outsz)
{
	size_t o = 0;
	if (!outsz)
		return out;
	if (outsz > 1)
		out[o++] = '/';
	for (const char *p = rel; *p && o + 1 < outsz; p++) {
		if (*p == '"') {
			if (o + 2 >= outsz)
				break;
			out[o++] = '"';
		}
		out[o++] = *p;
	}
	out[o] = 0;
	return out;
}

const char *ftp_list_skip_options(const char *arg)
{
	while (arg[0] == '-') {
		while (*arg && *arg != ' ')
			arg++;
		while (*arg == ' ')
			arg++;
	}
	return arg;
}
