/* parse.c - FTP command lines and PORT/EPRT arguments; no I/O, no allocation. */
#include "ftp/parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define IAC 255

int ftp_parse_command(char *buf, size_t len, struct ftp_command *cmd)
{
	size_t lim = len < FTP_MAX_LINE ? len : FTP_MAX_LINE;
	char *lf = memchr(buf, '\n', lim);
	if (!lf)
		return len >= FTP_MAX_LINE ? FTP_PARSE_TOO_LONG : FTP_PARSE_INCOMPLETE;
	size_t used = (size_t)(lf - buf) + 1;
	/* Drop telnet commands in place: IAC IAC is a literal 0xff, IAC WILL/WONT/DO/DONT
	 * take an option byte, other IAC x pairs (IP, DM, ...) are two bytes. */
	size_t o = 0;
	for (size_t i = 0; i < used - 1; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (ch == IAC && i + 1 < used - 1) {
			unsigned char nx = (unsigned char)buf[i + 1];
			if (nx == IAC) {
				buf[o++] = (char)IAC;
				i++;
			} else if (nx >= 251 && nx <= 254) {
				i += 2;
			} else {
				i++;
			}
			continue;
		}
		buf[o++] = (char)ch;
	}
	/* The line's end is CR LF; a NUL stays, wherever it is, so the argument check
	 * refuses it (501): "DELE x\0" must not act on x. */
	while (o && buf[o - 1] == '\r')
		o--;
	buf[o] = 0;
	size_t v = 0;
	while (v < o && buf[v] != ' ')
		v++;
	memset(cmd->verb, 0, sizeof(cmd->verb));
	if (v == 0 && o > 0) {
		strcpy(cmd->verb, "?"); /* text but no verb (a leading space): still answered */
	} else if (v >= sizeof(cmd->verb)) {
		strcpy(cmd->verb, "?");
	} else {
		for (size_t i = 0; i < v; i++) {
			char c = buf[i];
			if (c >= 'a' && c <= 'z')
				c = (char)(c - 32);
			if (c < 'A' || c > 'Z') {
				memset(cmd->verb, 0, sizeof(cmd->verb));
				strcpy(cmd->verb, "?");
				break;
			}
			cmd->verb[i] = c;
		}
	}
	size_t a = v < o ? v + 1 : o;
	cmd->arg = buf + a;
	cmd->arg_len = o - a;
	return (int)used;
}

int ftp_parse_port(const char *arg, struct sockaddr_storage *ss)
{
	unsigned long n[6];
	const char *p = arg;
	for (int i = 0; i < 6; i++) {
		char *end;
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return -1;
		n[i] = strtoul(p, &end, 10);
		if (n[i] > 255 || end - p > 3)
			return -1;
		p = end;
		if (i < 5) {
			if (*p != ',')
				return -1;
			p++;
		}
	}
	while (*p == ' ')
		p++;
	if (*p)
		return -1;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl((uint32_t)(n[0] << 24 | n[1] << 16 | n[2] << 8 | n[3]));
	s4->sin_port = htons((uint16_t)(n[4] << 8 | n[5]));
	return 0;
}

int ftp_parse_eprt(const char *arg, struct sockaddr_storage *ss)
{
	char d = arg[0], host[64];
	if (!d || (unsigned char)d < 33 || (unsigned char)d > 126)
		return -1;
	const char *f1 = arg + 1, *e1 = strchr(f1, d);
	if (!e1)
		return -1;
	const char *f2 = e1 + 1, *e2 = strchr(f2, d);
	if (!e2 || (size_t)(e2 - f2) >= sizeof(host))
		return -1;
	const char *f3 = e2 + 1, *e3 = strchr(f3, d);
	if (!e3 || e3[1])
		return -1;
	memcpy(host, f2, (size_t)(e2 - f2));
	host[e2 - f2] = 0;
	char *end;
	unsigned long port = strtoul(f3, &end, 10);
	if (end != e3 || port == 0 || port > 65535 || f3 == e3)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (e1 - f1 == 1 && *f1 == '1') {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (e1 - f1 == 1 && *f1 == '2') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}
