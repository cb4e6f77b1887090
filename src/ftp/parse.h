/* parse.h - pure FTP parsers: command lines, PORT/EPRT arguments. */
#ifndef LOOPKIT_FTP_PARSE_H
#define LOOPKIT_FTP_PARSE_H

#include <stddef.h>
#include <sys/socket.h>

#define FTP_MAX_LINE 2048 /* a command line longer than this gets 500 and is skipped */

struct ftp_command {
	char verb[8];    /* upper-cased; "" for an empty line */
	const char *arg; /* into the caller's buffer, NUL-terminated by the parser */
	size_t arg_len;
};

#define FTP_PARSE_INCOMPLETE (-2)
#define FTP_PARSE_TOO_LONG   (-3)

/* Parses one command line from buf[0..len). Telnet IAC sequences (RFC 854: IP, DM,
 * option negotiation) are dropped, the line ends at LF (CR before it removed). The
 * argument is NUL-terminated in place (so buf must be writable). Returns the bytes
 * the line took (including LF), FTP_PARSE_INCOMPLETE, or FTP_PARSE_TOO_LONG when no
 * LF appears within FTP_MAX_LINE bytes. A verb longer than 7 characters, or one with
 * characters other than letters, gives verb "?" (answered 500). */
int ftp_parse_command(char *buf, size_t len, struct ftp_command *cmd);

/* PORT h1,h2,h3,h4,p1,p2 -> IPv4 address. Returns 0 or -1. */
int ftp_parse_port(const char *arg, struct sockaddr_storage *ss);
/* EPRT |1|a.b.c.d|port| or |2|::1|port| -> address. Returns 0 or -1. */
int ftp_parse_eprt(const char *arg, struct sockaddr_storage *ss);

#endif
