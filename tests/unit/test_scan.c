/* test_scan.c - the pure parts of scan and audit: port lists, probe requests, the matcher table, the audit's
 * helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scan/audit.h"
#include "scan/match.h"
#include "scan/scan.h"

struct ports_case {
	const char *in;
	int ok;
	unsigned count;
	const char *text; /* written back; or the error's fragment */
};

static void test_ports_parse(void **state)
{
	static const struct ports_case t[] = {
	        {"80", 1, 1, "80"},
	        {"1-65535", 1, 65535, "1-65535"},
	        {"22,80,8000-8002", 1, 5, "22,80,8000-8002"},
	        {"80,80,79-81", 1, 3, "79-81"},
	        {"65535", 1, 1, "65535"},
	        {"0", 0, 0, "less than 1"},
	        {"65536", 0, 0, "more than 65535"},
	        {"90-80", 0, 0, "'90-80'"},
	        {"", 0, 0, "empty port list"},
	        {"80,", 0, 0, "ends with ','"},
	        {",80", 0, 0, "empty item"},
	        {"80,,81", 0, 0, "empty item"},
	        {"http", 0, 0, "'http'"},
	        {"123456789012345678901234567890123", 0, 0, "is not a port or range"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct scan_ports p;
		char err[128] = "";
		int rc = scan_ports_parse(t[i].in, &p, err, sizeof(err));
		if ((rc == 0) != t[i].ok)
			fail_msg("row %zu '%s': rc %d err '%s'", i, t[i].in, rc, err);
		if (t[i].ok) {
			char text[256];
			if (p.count != t[i].count ||
			    strcmp(scan_ports_text(&p, text, sizeof(text)), t[i].text) != 0)
				fail_msg("row %zu '%s': count %u text '%s'", i, t[i].in, p.count, text);
		} else if (!strstr(err, t[i].text)) {
			fail_msg("row %zu '%s': err '%s' lacks '%s'", i, t[i].in, err, t[i].text);
		}
	}
}

struct match_case {
	enum scan_probe_id probe;
	const char *in;
	size_t len;
	const char *name; /* NULL: no match */
	const char *product;
	const char *version;
	int app;
};

#define S(x) x, sizeof(x) - 1

static const struct match_case matches[] = {
        /* greetings */
        {PROBE_NULL, S("220 (vsFTPd 3.0.3)\r\n"), "ftp", "vsftpd", "3.0.3", SCAN_APP_NONE},
        {PROBE_NULL, S("220 loopkit 0.1.0 FTP ready (read-only).\r\n"), "http", "loopkit serve", "0.1.0",
         SCAN_APP_LOOPKIT},
        {PROBE_NULL, S("220 ProFTPD 1.3.8 Server (Debian) [::ffff:127.0.0.1]\r\n"), "ftp", "ProFTPD", "1.3.8",
         0},
        {PROBE_NULL, S("220-Welcome\r\n220 pyftpdlib 1.5.7 ready.\r\n"), "ftp", "pyftpdlib", "1.5.7", 0},
        {PROBE_NULL, S("220 mail.example ESMTP Postfix (Debian/GNU)\r\n"), "smtp", "Postfix smtpd", "", 0},
        {PROBE_NULL, S("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"), "ssh", "OpenSSH", "9.2p1", 0},
        {PROBE_NULL, S("+OK Dovecot ready.\r\n"), "pop3", "", "", 0},
        {PROBE_NULL, S("* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"), "imap", "", "", 0},
        /* MySQL 8 handshake: length 74, sequence 0, protocol 10, "8.0.36\0" ... */
        {PROBE_NULL,
         S("\x4a\x00\x00\x00\x0a"
           "8.0.36\x00\x08\x00\x00\x00"
           "abcdefgh\x00\xff\xff"),
         "mysql", "MySQL", "8.0.36", 0},
        {PROBE_NULL,
         S("\x59\x00\x00\x00\x0a"
           "5.5.5-10.11.6-MariaDB-0+deb12u1\x00\x08\x00"),
         "mysql", "MariaDB", "5.5.5-10.11.6-MariaDB-0+deb12u1", 0},
        /* HTTP and its Server header */
        {PROBE_HTTP, S("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n"), "http", "nginx", "1.22.1", 0},
        {PROBE_HTTP, S("HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n\r\n"), "http",
         "Python http.server", "3.11.2", 0},
        {PROBE_HTTP,
         S("HTTP/1.1 404 Not Found\r\nApi-Version: 1.43\r\nServer: Docker/24.0.7 (linux)\r\n\r\n"), "http",
         "Docker Engine API", "24.0.7", SCAN_APP_DOCKER},
        {PROBE_HTTP, S("HTTP/1.1 200 OK\r\nserver: loopkit/0.1.0\r\n\r\n"), "http", "loopkit", "0.1.0",
         SCAN_APP_LOOPKIT},
        {PROBE_HTTP, S("HTTP/1.1 302 Found\r\nServer: TornadoServer/6.3.3\r\nLocation: /tree?\r\n\r\n"),
         "http", "Tornado httpd", "6.3.3", 0},
        {PROBE_HTTP, S("HTTP/1.1 200 OK\r\nServer: Foo/2.1 (x)\r\n\r\n"), "http", "Foo", "2.1", 0},
        {PROBE_HTTP, S("HTTP/1.1 200 OK\r\n\r\n"), "http", "", "", 0},
        /* Redis and Memcached answer the HTTP probe in their own words */
        {PROBE_HTTP, S("-ERR wrong number of arguments for 'get' command\r\n"), "redis", "Redis", "",
         SCAN_APP_REDIS},
        {PROBE_REDIS, S("+PONG\r\n"), "redis", "Redis", "", SCAN_APP_REDIS},
        {PROBE_REDIS, S("-NOAUTH Authentication required.\r\n"), "redis", "Redis", "", SCAN_APP_REDIS},
        {PROBE_HTTP, S("ERROR\r\n"), "memcached", "Memcached", "", SCAN_APP_MEMCACHED},
        {PROBE_MEMCACHED, S("VERSION 1.6.18\r\n"), "memcached", "Memcached", "1.6.18", SCAN_APP_MEMCACHED},
        /* PostgreSQL: one byte, only as the answer to SSLRequest */
        {PROBE_PGSQL, S("N"), "postgresql", "PostgreSQL", "", 0},
        {PROBE_PGSQL, S("S"), "postgresql", "PostgreSQL", "", 0},
        {PROBE_HTTP, S("N"), NULL, NULL, NULL, 0},
        {PROBE_NULL,
         S("E\x00\x00\x00\x50SFATAL\x00VFATAL\x00"
           "C0A000\x00Munsupported frontend protocol\x00\x00"),
         "postgresql", "PostgreSQL", "", 0},
        /* MongoDB: an OP_MSG reply naming our request id in responseTo */
        {PROBE_MONGO,
         S("\x30\x00\x00\x00\x01\x02\x00\x00\x6b\x6c\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00\x00"), "mongodb",
         "MongoDB", "", 0},
        {PROBE_MONGO,
         S("\x30\x00\x00\x00\x01\x02\x00\x00\x01\x00\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00\x00"), NULL,
         NULL, NULL, 0},
        /* TLS: a ServerHello or an alert record, only as the answer to the hello */
        {PROBE_TLS, S("\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03"), "ssl", "", "", 0},
        {PROBE_TLS, S("\x15\x03\x01\x00\x02\x02\x46"), "ssl", "", "", 0},
        {PROBE_HTTP, S("\x15\x03\x01\x00\x02\x02\x46"), NULL, NULL, NULL, 0},
        /* nothing we know */
        {PROBE_NULL, S("hello there\r\n"), NULL, NULL, NULL, 0},
        {PROBE_NULL, S("XXXXXXXX"), NULL, NULL, NULL, 0},
        {PROBE_HTTP, S("HTTP/1.1 2000 OK\r\n\r\n"), NULL, NULL, NULL, 0},
};

static void test_match_table(void **state)
{
	for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
		const struct match_case *m = &matches[i];
		struct scan_service s;
		memset(&s, 0, sizeof(s));
		int hit = scan_match(m->probe, m->in, m->len, &s);
		if (hit != (m->name != NULL))
			fail_msg("row %zu: match %d, want %s", i, hit, m->name ? m->name : "none");
		if (!hit)
			continue;
		if (strcmp(s.name, m->name) || strcmp(s.product, m->product) ||
		    strcmp(s.version, m->version) || s.app != m->app)
			fail_msg("row %zu: got %s/%s/%s app %d, want %s/%s/%s app %d", i, s.name, s.product,
			         s.version, s.app, m->name, m->product, m->version, m->app);
	}
}

/* Every whole answer: complete at its last byte and not one byte before, fed as it
 * grows one byte at a time (the way a slow server sends it). */
static void test_complete_byte_by_byte(void **state)
{
	static const struct {
		enum scan_probe_id probe;
		const char *in;
		size_t len;
	} t[] = {
	        {PROBE_NULL, S("220 (vsFTPd 3.0.3)\r\n")},
	        {PROBE_NULL, S("220-Welcome\r\n220-more\r\n220 ready\r\n")},
	        {PROBE_NULL, S("SSH-2.0-OpenSSH_9.2p1\r\n")},
	        {PROBE_NULL, S("\x0b\x00\x00\x00\x0a"
	                       "8.0.36\x00\x01\x02\x03")},
	        {PROBE_HTTP, S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")},
	        {PROBE_HTTP, S("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")},
	        {PROBE_REDIS, S("+PONG\r\n")},
	        {PROBE_REDIS, S("$11\r\nredis:7.0.1\r\n")},
	        {PROBE_MEMCACHED, S("VERSION 1.6.18\r\n")},
	        {PROBE_TLS, S("\x16\x03\x03\x00\x04\x02\x00\x00\x00")},
	        {PROBE_MONGO,
	         S("\x14\x00\x00\x00\x01\x00\x00\x00\x6b\x6c\x00\x00\xdd\x07\x00\x00\x00\x00\x00\x00")},
	        {PROBE_PGSQL, S("N")},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (size_t n = 0; n < t[i].len; n++)
			if (scan_probe_complete(t[i].probe, t[i].in, n))
				fail_msg("row %zu: complete after %zu of %zu bytes", i, n, t[i].len);
		if (!scan_probe_complete(t[i].probe, t[i].in, t[i].len))
			fail_msg("row %zu: not complete at its end", i);
	}
	/* a body framed by the connection's end is never complete on its own */
	assert_false(scan_probe_complete(PROBE_HTTP, S("HTTP/1.0 200 OK\r\n\r\nall of it")));
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_probe_requests(void **state)
{
	char b[1024];
	size_t n = scan_probe_request(PROBE_HTTP, "127.0.0.1", 0, 8080, b, sizeof(b));
	b[n] = '\0';
	assert_non_null(strstr(b, "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
	assert_non_null(strstr(b, "Connection: close\r\n\r\n"));
	n = scan_probe_request(PROBE_HTTP, "::1", 1, 80, b, sizeof(b));
	b[n] = '\0';
	assert_non_null(strstr(b, "Host: [::1]:80\r\n"));
	assert_int_equal(scan_probe_request(PROBE_HTTP, "127.0.0.1", 0, 80, b, 20), 0); /* does not fit */

	/* TLS: a handshake record whose lengths add up, ClientHello, version 1.2 inside */
	const unsigned char *u = (const unsigned char *)b;
	n = scan_probe_request(PROBE_TLS, "", 0, 0, b, sizeof(b));
	assert_true(n > 9);
	assert_int_equal(u[0], 0x16);
	assert_int_equal((size_t)(u[3] << 8 | u[4]), n - 5);
	assert_int_equal(u[5], 1);
	assert_int_equal((size_t)(u[6] << 16 | u[7] << 8 | u[8]), n - 9);
	assert_int_equal(u[9], 3);
	assert_int_equal(u[10], 3);

	/* MongoDB: messageLength, our requestID, OP_MSG, and a BSON document whose length fits */
	n = scan_probe_request(PROBE_MONGO, "", 0, 0, b, sizeof(b));
	assert_int_equal(le32(u), n);
	assert_int_equal(le32(u + 4), SCAN_MONGO_REQUEST_ID);
	assert_int_equal(le32(u + 12), 2013);
	assert_int_equal(le32(u + 21), n - 21);
	assert_int_equal(u[n - 1], 0);

	/* PostgreSQL SSLRequest: length 8, code 80877103 */
	n = scan_probe_request(PROBE_PGSQL, "", 0, 0, b, sizeof(b));
	assert_int_equal(n, 8);
	assert_memory_equal(b, "\x00\x00\x00\x08\x04\xd2\x16\x2f", 8);
	assert_int_equal(scan_probe_request(PROBE_NULL, "", 0, 0, b, sizeof(b)), 0);
}

static void test_http_helpers(void **state)
{
	static const char r[] =
	        "HTTP/1.1 403 Forbidden\r\nServer: x\r\nAccess-Control-Allow-Origin:  http://a.example \r\n"
	        "X-Long: 0123456789\r\n\r\n{\"version\": \"2.1\", \"x\":\"a\\\"b\"}";
	char v[64];
	size_t blen;
	assert_int_equal(scan_http_status(S(r)), 403);
	assert_int_equal(scan_http_status(S("HTTP/1.1 99 x\r\n")), 0);
	assert_int_equal(scan_http_status(S("HTTP/2 200\r\n")), 0);
	assert_int_equal(scan_http_header(S(r), "access-control-allow-origin", v, sizeof(v)), 16);
	assert_string_equal(v, "http://a.example");
	assert_int_equal(scan_http_header(S(r), "x-long", v, 5), 10); /* cut to fit, full length returned */
	assert_string_equal(v, "0123");
	assert_int_equal(scan_http_header(S(r), "x-missing", v, sizeof(v)), -1);
	assert_int_equal(scan_http_header(S(r), "x", v, sizeof(v)),
	                 -1); /* a prefix of a name is not the name */
	const char *body = scan_http_body(S(r), &blen);
	assert_non_null(body);
	assert_int_equal(scan_json_str(body, blen, "version", v, sizeof(v)), 1);
	assert_string_equal(v, "2.1");
	assert_int_equal(scan_json_str(body, blen, "x", v, sizeof(v)), 1);
	assert_string_equal(v, "a\\\"b");
	assert_int_equal(scan_json_str(body, blen, "nope", v, sizeof(v)), 0);
	assert_null(scan_http_body(S("HTTP/1.1 200 OK\r\n"), &blen));

	/* Elasticsearch 8's answer to GET / (security off: 200) */
	static const char es[] =
	        "{\n  \"name\" : \"node-1\",\n  \"cluster_name\" : \"dev\",\n  \"cluster_uuid\" : "
	        "\"x1\",\n  \"version\" : {\n    \"number\" : \"8.11.1\"\n  },\n  \"tagline\" : "
	        "\"You Know, for Search\"\n}\n";
	struct scan_service s;
	memset(&s, 0, sizeof(s));
	s.http_status = 200;
	assert_int_equal(scan_match_elastic(S(es), &s), 1);
	assert_string_equal(s.product, "Elasticsearch");
	assert_string_equal(s.version, "8.11.1");
	assert_int_equal(s.app, SCAN_APP_ELASTIC);
	assert_int_equal(s.noauth, 1);
	memset(&s, 0, sizeof(s));
	s.http_status = 401;
	assert_int_equal(scan_match_elastic(S(es), &s), 1);
	assert_int_equal(s.noauth, 0);
	assert_int_equal(scan_match_elastic(S("{\"version\": \"1\"}"), &s), 0);
}

static void test_audit_helpers(void **state)
{
	char found[128], perm[16];
	static const char py[] =
	        "<li><a href=\".bashrc\">.bashrc</a></li><li><a href=\".ssh/\">.ssh/</a></li>"
	        "<li><a href=\"notes.txt\">notes.txt</a></li>";
	assert_int_equal(audit_home_marks(S(py), found, sizeof(found)), 2);
	assert_string_equal(found, ".ssh, .bashrc");
	static const char js[] = "[{\"name\": \"src\"}, {\"name\": \".profile\"}, {\"name\": \".gnupg\"}]";
	assert_int_equal(audit_home_marks(S(js), found, sizeof(found)), 2);
	static const char proj[] = "<a href=\"src/\">src/</a><a href=\".gitignore\">.gitignore</a>"
	                           "<a href=\"README.md\">README.md</a> text mentioning .ssh in prose";
	assert_int_equal(audit_home_marks(S(proj), found, sizeof(found)), 0);

	assert_true(audit_mlst_writable(S("250-Listing /\r\n type=dir;perm=elcmp; /\r\n250 End\r\n"), perm,
	                                sizeof(perm)));
	assert_string_equal(perm, "elcmp");
	assert_false(audit_mlst_writable(S("250-Listing /\r\n type=dir;perm=el; /\r\n250 End\r\n"), perm,
	                                 sizeof(perm)));
	assert_string_equal(perm, "el");
	assert_false(
	        audit_mlst_writable(S("250-Listing /\r\n type=dir; /\r\n250 End\r\n"), perm, sizeof(perm)));
	assert_int_equal(audit_sev_parse("HIGH"), AUDIT_HIGH);
	assert_int_equal(audit_sev_parse("severe"), -1);
	assert_string_equal(audit_sev_name(AUDIT_CRITICAL), "critical");
	/* every rule has an id, a title, its reasoning and a fix, and ids are distinct */
	for (size_t i = 0; i < audit_nrules; i++) {
		assert_true(audit_rules[i].id[0] && audit_rules[i].title[0] && audit_rules[i].why[0] &&
		            audit_rules[i].fix[0]);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(audit_rules[i].id, audit_rules[k].id);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ports_parse),           cmocka_unit_test(test_match_table),
	        cmocka_unit_test(test_complete_byte_by_byte), cmocka_unit_test(test_probe_requests),
	        cmocka_unit_test(test_http_helpers),          cmocka_unit_test(test_audit_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
