/* fuzz_ftp_command.c - ftp_parse_command, then PORT/EPRT on its argument, with round trips. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "ftp/parse.h"

static void check_port(const char *arg)
{
	struct sockaddr_storage ss, ss2;
	if (ftp_parse_port(arg, &ss) != 0)
		return;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
	FUZZ_CHECK(s4->sin_family == AF_INET, "PORT family %d", s4->sin_family);
	uint32_t a = ntohl(s4->sin_addr.s_addr);
	uint16_t port = ntohs(s4->sin_port);
	char text[64];
	snprintf(text, sizeof(text), "%u,%u,%u,%u,%u,%u", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255,
	         (unsigned)port >> 8, (unsigned)port & 255);
	FUZZ_CHECK(ftp_parse_port(text, &ss2) == 0 && memcmp(&ss, &ss2, sizeof(ss)) == 0,
	           "PORT '%s' does not round-trip", text);
}

static void check_eprt(const char *arg)
{
	struct sockaddr_storage ss, ss2;
	char host[INET6_ADDRSTRLEN], text[128];
	if (ftp_parse_eprt(arg, &ss) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		FUZZ_CHECK(s4->sin_port != 0, "EPRT port 0");
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "|1|%s|%u|", host, ntohs(s4->sin_port));
	} else {
		FUZZ_CHECK(ss.ss_family == AF_INET6, "EPRT family %d", ss.ss_family);
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		FUZZ_CHECK(s6->sin6_port != 0, "EPRT port 0");
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(text, sizeof(text), "|2|%s|%u|", host, ntohs(s6->sin6_port));
	}
	FUZZ_CHECK(ftp_parse_eprt(text, &ss2) == 0 && memcmp(&ss, &ss2, sizeof(ss)) == 0,
	           "EPRT '%s' does not round-trip", text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	char *buf = fuzz_dup(data, n);
	struct ftp_command cmd;
	int r = ftp_parse_command(buf, n, &cmd);
	size_t lim = n < FTP_MAX_LINE ? n : FTP_MAX_LINE;
	const void *lf = memchr(data, '\n', lim);

	if (!lf) {
		FUZZ_CHECK(r == (n >= FTP_MAX_LINE ? FTP_PARSE_TOO_LONG : FTP_PARSE_INCOMPLETE), "no LF: %d",
		           r);
		free(buf);
		goto args;
	}
	FUZZ_CHECK(r == (const uint8_t *)lf - data + 1, "line of %d bytes, LF at %td", r,
	           (const uint8_t *)lf - data);
	/* The verb: NUL-terminated, "", "?" or upper-case letters. */
	FUZZ_CHECK(memchr(cmd.verb, 0, sizeof(cmd.verb)) != NULL, "verb not terminated");
	if (strcmp(cmd.verb, "?"))
		for (const char *v = cmd.verb; *v; v++)
			FUZZ_CHECK(*v >= 'A' && *v <= 'Z', "verb byte 0x%02x", (unsigned char)*v);
	/* The argument: inside the line, NUL-terminated there, no CR or LF at its end. */
	FUZZ_CHECK(fuzz_within(cmd.arg, cmd.arg_len + 1, buf, (size_t)r), "argument outside the line");
	FUZZ_CHECK(cmd.arg[cmd.arg_len] == 0, "argument not terminated");
	FUZZ_CHECK(!memchr(cmd.arg, '\n', cmd.arg_len), "LF in argument");
	if (cmd.arg_len)
		FUZZ_CHECK(cmd.arg[cmd.arg_len - 1] != '\r', "CR left at the end");
	/* Split feeding: every shorter prefix of the line is incomplete. */
	if (r > 1) {
		char *pre = fuzz_dup(data, (size_t)r - 1);
		struct ftp_command c2;
		FUZZ_CHECK(ftp_parse_command(pre, (size_t)r - 1, &c2) == FTP_PARSE_INCOMPLETE,
		           "prefix complete");
		free(pre);
	}
	check_port(cmd.arg);
	check_eprt(cmd.arg);
	free(buf);
args:
	/* The whole input as an argument too, as a C string. */
	buf = fuzz_strdup(data, n);
	check_port(buf);
	check_eprt(buf);
	free(buf);
	return 0;
}
