/* cmds.h - the FTP command table: each verb, what it needs, its handler; FEAT and HELP
 * are generated from it. */
#ifndef LOOPKIT_FTP_CMDS_H
#define LOOPKIT_FTP_CMDS_H

#include <stddef.h>

/* Only once logged in (530 before): the login allow-list is the rows without it. */
#define FTP_C_LOGIN  1u
#define FTP_C_WRITE  2u  /* only with --write (550 otherwise) */
#define FTP_C_DATA   4u  /* needs PASV, EPSV, PORT or EPRT first (425 otherwise) */
#define FTP_C_XFER   8u  /* runs while a transfer is in progress; others wait for its end */
#define FTP_C_UNIMPL 16u /* recognised but not offered (502); left out of HELP */
#define FTP_C_PATH   32u /* needs a path argument (501 without: never the working directory) */

struct ftp_session;

struct ftp_cmd {
	const char *verb; /* upper case, as the parser gives it */
	unsigned flags;   /* FTP_C_* */
	void (*fn)(struct ftp_session *s, const char *arg, const struct ftp_cmd *c);
	int arg;          /* the handler's own parameter (a listing kind, ...) */
	const char *feat; /* this command's FEAT line (RFC 2389), or NULL */
};

/* The table, sorted by verb (ftp_cmd_find searches it by bisection). */
extern const struct ftp_cmd ftp_cmds[];
extern const size_t ftp_ncmds;

/* The row for verb, or NULL. */
const struct ftp_cmd *ftp_cmd_find(const char *verb);

/* HELP's inner lines: every verb that is not FTP_C_UNIMPL, in table order, at most
 * FTP_HELP_PER_LINE per line, lines separated by '\n' (no leading space: the reply
 * adds it). Returns the length written (out terminated; cut to fit). */
#define FTP_HELP_PER_LINE 16
size_t ftp_cmds_help(char *out, size_t len);
/* FEAT's inner lines: every row's feat, in table order, separated by '\n'. */
size_t ftp_cmds_feat(char *out, size_t len);

/* Handlers that data.c holds (data channel and transfer control). */
void ftp_cmd_pasv(struct ftp_session *s, const char *arg, const struct ftp_cmd *c);
void ftp_cmd_port(struct ftp_session *s, const char *arg, const struct ftp_cmd *c);
void ftp_cmd_abor(struct ftp_session *s, const char *arg, const struct ftp_cmd *c);

#endif
