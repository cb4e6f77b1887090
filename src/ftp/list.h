/* list.h - FTP listing lines (LIST, NLST, MLSD, MLST, STAT) and paths in replies: pure. */
#ifndef LOOPKIT_FTP_LIST_H
#define LOOPKIT_FTP_LIST_H

#include <limits.h>
#include <stddef.h>
#include <time.h>

#include "core/dirsnap.h"

/* Room for any one listing line of a directory entry (a name is at most NAME_MAX; the
 * longest MLSD facts, with a 20-digit size and 10-digit owner and group, take 129). */
#define FTP_LIST_LINE_MAX (NAME_MAX + 160)

/* The facts MLSD and MLST send, as FEAT's MLST line names them (RFC 3659 7.8; '*': on,
 * and OPTS MLST cannot turn them off). UNIX.mode, UNIX.owner and UNIX.group are
 * ProFTPD's names (pyftpdlib offers them too): without UNIX.mode, lftp's mirror makes
 * modes from perm alone, so a read-only server's files arrive 0444 and its
 * directories 0555. */
#define FTP_LIST_MLST_FACTS "type*;size*;modify*;perm*;UNIX.mode*;UNIX.owner*;UNIX.group*;"

enum ftp_list_kind {
	FTP_L_LIST, /* ls -l style: "-rw-r--r-- 1 ftp ftp   12 Jan  2 03:04 a.txt" */
	FTP_L_NLST, /* names only */
	FTP_L_MLSD, /* RFC 3659 facts: "type=file;size=12;modify=20250102030405;perm=r;
	               UNIX.mode=0644;UNIX.owner=1000;UNIX.group=1000; a.txt" (one line) */
};

/* Formats the line for e into out (len bytes, FTP_LIST_LINE_MAX always suffices),
 * ending in CRLF when crlf is set. now decides ls's "time of day" (within six months)
 * or "year" form; write decides MLSD's perm fact. Returns the length (out is
 * terminated), or 0 when e's name holds CR or LF: one name would read as two lines,
 * so such a name is not listed. */
size_t ftp_list_line(char *out, size_t len, enum ftp_list_kind k, const struct dirsnap_ent *e, time_t now,
                     int write, int crlf);

/* The RFC 3659 facts of e (FTP_LIST_MLST_FACTS, in that order), each ending in ';',
 * then one space: MLSD and MLST put the name or path after it. UNIX.mode is the
 * permission bits in octal ("0644"), UNIX.owner and UNIX.group the numeric ids.
 * Returns the length (out is terminated). */
size_t ftp_list_facts(char *out, size_t len, const struct dirsnap_ent *e, int write);

/* t as an RFC 3659 time-val in UTC, "YYYYMMDDHHMMSS" (MDTM, the modify fact). */
void ftp_list_modify(time_t t, char out[16]);

/* "/rel" with every '"' doubled (RFC 959 257 replies); cut to fit outsz. Returns
 * out. */
char *ftp_list_quote(const char *rel, char *out, size_t outsz);

/* LIST/NLST arguments may start with ls options ("-la", "-a -l dir"): returns arg
 * past them. */
const char *ftp_list_skip_options(const char *arg);

#endif
