/* match.c - the probe requests and the tables that name a service from its bytes (pure functions). */
#include "scan/match.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"

#define TLS_RECORD_HANDSHAKE 0x16
#define TLS_RECORD_ALERT     0x15
#define TLS_SERVER_HELLO     0x02
#define MONGO_OP_MSG         2013
#define MONGO_OP_REPLY       1
#define MONGO_HEADER         16
#define MYSQL_PROTOCOL_10    0x0a
#define PG_SSL_REQUEST_CODE  80877103 /* 1234 << 16 | 5679 (PostgreSQL protocol docs) */

/* ---- small helpers ---- */

static const char *memfind(const char *h, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	return k <= n ? memmem(h, n, needle, k) : NULL;
}

static int starts(const char *b, size_t n, const char *p)
{
	size_t k = strlen(p);
	return n >= k && memcmp(b, p, k) == 0;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void set(char *dst, size_t len, const char *s, size_t n)
{
	if (n >= len)
		n = len - 1;
	text_escape(dst, len, s, n, 0);
}

#define SET(field, s, n) set(field, sizeof(field), s, n)
#define SETS(field, s)   set(field, sizeof(field), s, strlen(s))

/* A version-like token at p: digits, dots, letters, '-', '_' and '+'. */
static size_t version_len(const char *p, size_t n)
{
	size_t k = 0;
	while (k < n &&
	       (p[k] == '.' || p[k] == '-' || p[k] == '_' || p[k] == '+' || (p[k] >= '0' && p[k] <= '9') ||
	        (p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z')))
		k++;
	return k;
}

char *scan_first_line(const char *b, size_t n, char *out, size_t len)
{
	size_t k = 0;
	while (k < n && b[k] != '\r' && b[k] != '\n')
		k++;
	text_escape(out, len, b, k, 0);
	return out;
}

/* ---- the probes' requests ---- */

static size_t req_http(const char *host, int v6, unsigned port, char *out, size_t len)
{
	int k = snprintf(out, len,
	                 "GET / HTTP/1.1\r\nHost: %s%s%s:%u\r\nUser-Agent: loopkit-scan/" LOOPKIT_VERSION
	                 "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
	                 v6 ? "[" : "", host, v6 ? "]" : "", port);
	return k > 0 && (size_t)k < len ? (size_t)k : 0;
}

/* A TLS 1.2 ClientHello that also offers TLS 1.3 (supported_versions): any TLS server
 * answers with a ServerHello, a HelloRetryRequest or an alert, each a TLS record. */
static size_t req_tls(char *out, size_t len)
{
	static const unsigned char suites[] = {0x13, 0x01, 0x13, 0x02, 0xc0, 0x2b, 0xc0, 0x2f,
	                                       0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9c, 0x00, 0x2f};
	static const unsigned char ext[] = {
	        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, /* groups x25519, p256 */
	        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                         /* point formats */
	        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, /* sig algs */
	        0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03, /* versions 1.3, 1.2 */
	};
	unsigned char b[256];
	size_t n = 0, body;

	b[n++] = TLS_RECORD_HANDSHAKE;
	b[n++] = 0x03;
	b[n++] = 0x01;
	n += 2;        /* record length */
	b[n++] = 0x01; /* ClientHello */
	n += 3;        /* handshake length */
	body = n;
	b[n++] = 0x03;
	b[n++] = 0x03;
	for (int i = 0; i < 32; i++)
		b[n++] = (unsigned char)(0x6c + i); /* client random: need not be secret for a probe */
	b[n++] = 0;                                 /* session id */
	b[n++] = 0;
	b[n++] = sizeof(suites);
	memcpy(b + n, suites, sizeof(suites));
	n += sizeof(suites);
	b[n++] = 1; /* compression: null */
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = sizeof(ext);
	memcpy(b + n, ext, sizeof(ext));
	n += sizeof(ext);
	size_t hs = n - body;
	b[6] = 0;
	b[7] = (unsigned char)(hs >> 8);
	b[8] = (unsigned char)hs;
	b[3] = (unsigned char)((n - 5) >> 8);
	b[4] = (unsigned char)(n - 5);
	if (n > len)
		return 0;
	memcpy(out, b, n);
	return n;
}

/* OP_MSG with one body section: { isMaster: 1, $db: "admin" } (BSON). */
static size_t req_mongo(char *out, size_t len)
{
	unsigned char b[128];
	size_t n = MONGO_HEADER;

	put_le32(b + 4, SCAN_MONGO_REQUEST_ID);
	put_le32(b + 8, 0);
	put_le32(b + 12, MONGO_OP_MSG);
	put_le32(b + n, 0); /* flagBits */
	n += 4;
	b[n++] = 0; /* section kind 0: body */
	size_t doc = n;
	n += 4;
	b[n++] = 0x10; /* int32 */
	memcpy(b + n, "isMaster", 9);
	n += 9;
	put_le32(b + n, 1);
	n += 4;
	b[n++] = 0x02; /* string */
	memcpy(b + n, "$db", 4);
	n += 4;
	put_le32(b + n, 6);
	n += 4;
	memcpy(b + n, "admin", 6);
	n += 6;
	b[n++] = 0;
	put_le32(b + doc, (uint32_t)(n - doc));
	put_le32(b, (uint32_t)n);
	if (n > len)
		return 0;
	memcpy(out, b, n);
	return n;
}

size_t scan_probe_request(enum scan_probe_id id, const char *host, int v6, unsigned port, char *out,
                          size_t len)
{
	static const unsigned char pg[8] = {0,
	                                    0,
	                                    0,
	                                    8,
	                                    PG_SSL_REQUEST_CODE >> 24 & 0xff,
	                                    PG_SSL_REQUEST_CODE >> 16 & 0xff,
	                                    PG_SSL_REQUEST_CODE >> 8 & 0xff,
	                                    PG_SSL_REQUEST_CODE & 0xff};
	switch (id) {
	case PROBE_HTTP: return req_http(host, v6, port, out, len);
	case PROBE_TLS: return req_tls(out, len);
	case PROBE_REDIS: return len > 6 ? (memcpy(out, "PING\r\n", 6), 6) : 0;
	case PROBE_MEMCACHED: return len > 9 ? (memcpy(out, "version\r\n", 9), 9) : 0;
	case PROBE_PGSQL: return len >= 8 ? (memcpy(out, pg, 8), 8) : 0;
	case PROBE_MONGO: return req_mongo(out, len);
	default: return 0;
	}
}

/* ---- when an answer is whole ---- */

static int whole_line(const char *b, size_t n)
{
	return memchr(b, '\n', n) != NULL;
}

/* A greeting: one line, or an FTP/SMTP multi-line reply up to its "NNN " line, or a
 * MySQL handshake packet (3-byte length, sequence 0). */
static int whole_greeting(const char *b, size_t n)
{
	if (n >= 5 && (unsigned char)b[3] == 0 && (unsigned char)b[4] == MYSQL_PROTOCOL_10) {
		size_t plen = le32((const unsigned char[]){(unsigned char)b[0], (unsigned char)b[1],
		                                           (unsigned char)b[2], 0});
		return n >= plen + 4;
	}
	if (n >= 4 && b[0] >= '1' && b[0] <= '5' && b[3] == '-') {
		/* multi-line: complete at a line starting with the code and a space */
		for (const char *p = b; (p = memchr(p, '\n', (size_t)(b + n - p))) != NULL;) {
			p++;
			if ((size_t)(b + n - p) >= 4 && memcmp(p, b, 3) == 0 && p[3] == ' ')
				return memchr(p, '\n', (size_t)(b + n - p)) != NULL;
		}
		return 0;
	}
	return whole_line(b, n);
}

static int whole_http(const char *b, size_t n)
{
	const char *end = memfind(b, n, "\r\n\r\n");
	char cl[24];
	if (!end)
		return 0;
	if (scan_http_header(b, n, "content-length", cl, sizeof(cl)) >= 0) {
		unsigned long long want = strtoull(cl, NULL, 10);
		return (size_t)(b + n - (end + 4)) >= want;
	}
	return 0; /* chunked or to EOF: Connection: close ends it */
}

static int whole_redis(const char *b, size_t n)
{
	if (n && b[0] == '$') {
		const char *nl = memchr(b, '\n', n);
		if (!nl)
			return 0;
		long want = strtol(b + 1, NULL, 10);
		return want < 0 || (size_t)(b + n - (nl + 1)) >= (size_t)want + 2;
	}
	return whole_line(b, n);
}

static int whole_tls(const char *b, size_t n)
{
	return n >= 5 && n >= 5 + ((size_t)(unsigned char)b[3] << 8 | (unsigned char)b[4]);
}

static int whole_mongo(const char *b, size_t n)
{
	return n >= 4 && n >= le32((const unsigned char *)b);
}

int scan_probe_complete(enum scan_probe_id id, const char *b, size_t n)
{
	if (n == 0)
		return 0;
	/* A greeting that arrives late (a server slower than the banner wait) ends any probe. */
	if (id != PROBE_NULL &&
	    ((b[0] >= '1' && b[0] <= '5' && n >= 4 && (b[3] == ' ' || b[3] == '-')) || starts(b, n, "SSH-")))
		return whole_greeting(b, n);
	switch (id) {
	case PROBE_NULL: return whole_greeting(b, n);
	case PROBE_HTTP: return whole_http(b, n);
	case PROBE_TLS: return whole_tls(b, n);
	case PROBE_REDIS:
	case PROBE_MEMCACHED: return whole_redis(b, n);
	case PROBE_PGSQL: return n >= 1;
	case PROBE_MONGO: return whole_mongo(b, n);
	default: return 1;
	}
}

const char *scan_probe_name(enum scan_probe_id id)
{
	static const char *const names[PROBE_COUNT] = {
	        "banner",           "http-get",     "tls-hello", "redis-ping", "memcached-version",
	        "pgsql-sslrequest", "mongodb-hello"};
	return id < PROBE_COUNT ? names[id] : "?";
}

/* ---- HTTP heads ---- */

int scan_http_status(const char *b, size_t n)
{
	if (n < 12 || !starts(b, n, "HTTP/1.") || b[8] != ' ')
		return 0;
	int s = 0;
	for (int i = 9; i < 12; i++) {
		if (b[i] < '0' || b[i] > '9')
			return 0;
		s = s * 10 + (b[i] - '0');
	}
	if (n > 12 && b[12] != ' ' && b[12] != '\r')
		return 0; /* "2000" is not a status */
	return s >= 100 && s <= 599 ? s : 0;
}

int scan_http_header(const char *b, size_t n, const char *name, char *out, size_t len)
{
	const char *end = memfind(b, n, "\r\n\r\n");
	size_t k = strlen(name);
	const char *p = memchr(b, '\n', n);

	if (!end || !p)
		return -1;
	for (p++; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end + 2 - p));
		if (!eol)
			break;
		if ((size_t)(eol - p) > k && strncasecmp(p, name, k) == 0 && p[k] == ':') {
			const char *v = p + k + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
				ve--;
			if (len)
				set(out, len, v, (size_t)(ve - v));
			return (int)(ve - v);
		}
		p = eol + 1;
	}
	return -1;
}

const char *scan_http_body(const char *b, size_t n, size_t *blen)
{
	const char *end = memfind(b, n, "\r\n\r\n");
	if (!end)
		return NULL;
	*blen = (size_t)(b + n - (end + 4));
	return end + 4;
}

int scan_json_str(const char *b, size_t n, const char *key, char *out, size_t len)
{
	char pat[64];
	int k = snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = b, *e = b + n;

	if (k <= 0 || (size_t)k >= sizeof(pat))
		return 0;
	while ((p = memfind(p, (size_t)(e - p), pat)) != NULL) {
		const char *q = p + k;
		while (q < e && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
			q++;
		if (q < e && *q == ':') {
			q++;
			while (q < e && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
				q++;
			if (q < e && *q == '"') {
				const char *v = ++q;
				while (q < e && *q != '"')
					q += *q == '\\' ? 2 : 1;
				if (q > e)
					q = e;
				set(out, len, v, (size_t)(q - v));
				return 1;
			}
		}
		p += k;
	}
	return 0;
}

/* Server header → product. A row names the token a header starts with; the version
 * is what follows its '/'; from_token, when set, takes the version from another token
 * instead ("SimpleHTTP/0.6 Python/3.11.2": the Python version). */
struct server_row {
	const char *token;
	const char *product;
	int app;
	const char *from_token;
};

static const struct server_row server_rows[] = {
        {"loopkit", "loopkit", SCAN_APP_LOOPKIT, NULL},
        {"nginx", "nginx", SCAN_APP_NONE, NULL},
        {"SimpleHTTP", "Python http.server", SCAN_APP_NONE, "Python/"},
        {"BaseHTTP", "Python http.server", SCAN_APP_NONE, "Python/"},
        {"Docker", "Docker Engine API", SCAN_APP_DOCKER, NULL},
        {"TornadoServer", "Tornado httpd", SCAN_APP_NONE, NULL},
        {"Apache", "Apache httpd", SCAN_APP_NONE, NULL},
        {"lighttpd", "lighttpd", SCAN_APP_NONE, NULL},
        {"Werkzeug", "Werkzeug httpd", SCAN_APP_NONE, NULL},
        {"uvicorn", "Uvicorn", SCAN_APP_NONE, NULL},
        {"gunicorn", "gunicorn", SCAN_APP_NONE, NULL},
        {"Caddy", "Caddy httpd", SCAN_APP_NONE, NULL},
        {"Jetty", "Jetty", SCAN_APP_NONE, NULL},
        {"Microsoft-HTTPAPI", "Microsoft HTTPAPI httpd", SCAN_APP_NONE, NULL},
        {NULL, NULL, 0, NULL},
};

void scan_http_server(const char *server, struct scan_service *svc)
{
	size_t n = strlen(server);
	for (const struct server_row *r = server_rows; r->token; r++) {
		size_t k = strlen(r->token);
		if (n < k || strncasecmp(server, r->token, k) != 0)
			continue;
		SETS(svc->product, r->product);
		if (r->app)
			svc->app = r->app;
		const char *v = NULL;
		if (r->from_token)
			v = strstr(server, r->from_token), v = v ? v + strlen(r->from_token) : NULL;
		else if (server[k] == '/')
			v = server + k + 1;
		if (v)
			SET(svc->version, v, version_len(v, strlen(v)));
		return;
	}
	SET(svc->product, server, strcspn(server, " /"));
	const char *slash = strchr(server, '/');
	if (slash)
		SET(svc->version, slash + 1, version_len(slash + 1, strlen(slash + 1)));
}

/* ---- the answer tables ---- */

/* FTP greeting → product: the token the text holds, and where a version may follow. */
struct greet_row {
	const char *token;
	const char *product;
	int app;
};

static const struct greet_row ftp_rows[] = {
        {"vsFTPd", "vsftpd", SCAN_APP_NONE},
        {"loopkit", "loopkit serve", SCAN_APP_LOOPKIT},
        {"ProFTPD", "ProFTPD", SCAN_APP_NONE},
        {"Pure-FTPd", "Pure-FTPd", SCAN_APP_NONE},
        {"pyftpdlib", "pyftpdlib", SCAN_APP_NONE},
        {"FileZilla", "FileZilla ftpd", SCAN_APP_NONE},
        {NULL, NULL, 0},
};

static const struct greet_row smtp_rows[] = {
        {"Postfix", "Postfix smtpd", SCAN_APP_NONE},
        {"Exim", "Exim smtpd", SCAN_APP_NONE},
        {"Sendmail", "Sendmail", SCAN_APP_NONE},
        {"OpenSMTPD", "OpenSMTPD", SCAN_APP_NONE},
        {NULL, NULL, 0},
};

static void greet_product(const struct greet_row *rows, const char *b, size_t n, struct scan_service *svc)
{
	for (const struct greet_row *r = rows; r->token; r++) {
		const char *p = memfind(b, n, r->token);
		if (!p)
			continue;
		SETS(svc->product, r->product);
		svc->app = r->app;
		p += strlen(r->token);
		while (p < b + n && (*p == ' ' || *p == '/'))
			p++;
		if (p < b + n && *p >= '0' && *p <= '9')
			SET(svc->version, p, version_len(p, (size_t)(b + n - p)));
		return;
	}
}

static void found(struct scan_service *svc, const char *name, enum scan_probe_id id)
{
	SETS(svc->name, name);
	SETS(svc->how, scan_probe_name(id));
	svc->conf = 10;
}

static int m_ssh(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	if (!starts(b, n, "SSH-"))
		return 0;
	found(svc, "ssh", id);
	/* SSH-2.0-OpenSSH_9.2p1 Debian-2 */
	const char *sw = memchr(b + 4, '-', n - 4);
	if (sw) {
		sw++;
		size_t k = 0;
		while (sw + k < b + n && sw[k] != '_' && sw[k] != ' ' && sw[k] != '\r' && sw[k] != '\n')
			k++;
		SET(svc->product, sw, k);
		if (sw + k < b + n && sw[k] == '_')
			SET(svc->version, sw + k + 1, version_len(sw + k + 1, (size_t)(b + n - sw - k - 1)));
	}
	return 1;
}

static int m_smtp_ftp(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	if (n < 4 || !starts(b, n, "220") || (b[3] != ' ' && b[3] != '-'))
		return 0;
	char line[256];
	scan_first_line(b, n, line, sizeof(line));
	if (memfind(b, n, "SMTP") || memfind(b, n, "Postfix") || memfind(b, n, "Exim")) {
		found(svc, "smtp", id);
		greet_product(smtp_rows, b, n, svc);
	} else {
		found(svc, "ftp", id);
		greet_product(ftp_rows, b, n, svc);
		if (svc->app == SCAN_APP_LOOPKIT) {
			/* One name whichever side answered first: details() asks the HTTP side. */
			SETS(svc->name, "http");
			SETS(svc->info, "HTTP and FTP on one port");
		}
	}
	return 1;
}

static int m_pop_imap(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	if (starts(b, n, "+OK")) {
		found(svc, "pop3", id);
		return 1;
	}
	if (starts(b, n, "* OK")) {
		found(svc, "imap", id);
		return 1;
	}
	return 0;
}

static int m_mysql(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	const unsigned char *u = (const unsigned char *)b;
	if (n < 6 || u[3] != 0)
		return 0;
	size_t plen = (size_t)u[0] | (size_t)u[1] << 8 | (size_t)u[2] << 16;
	if (plen < 2 || plen > n - 4 + 64)
		return 0;
	if (u[4] == MYSQL_PROTOCOL_10) {
		const char *v = b + 5;
		size_t vl = strnlen(v, n - 5);
		if (vl == n - 5 || vl == 0)
			return 0;
		found(svc, "mysql", id);
		SETS(svc->product, memfind(v, vl, "MariaDB") ? "MariaDB" : "MySQL");
		SET(svc->version, v, version_len(v, vl));
		return 1;
	}
	if (u[4] == 0xff && n >= 7) { /* an error packet: "Host ... is not allowed to connect" */
		found(svc, "mysql", id);
		SETS(svc->product, "MySQL");
		SET(svc->info, b + 7, n - 7);
		return 1;
	}
	return 0;
}

static int m_http(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	int st = scan_http_status(b, n);
	char server[128];
	if (!st)
		return 0;
	found(svc, "http", id);
	svc->http_status = st;
	if (scan_http_header(b, n, "server", server, sizeof(server)) >= 0)
		scan_http_server(server, svc);
	return 1;
}

static int m_redis(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	static const char *const tokens[] = {"+PONG",      "-NOAUTH",    "-ERR ", "-DENIED",
	                                     "-WRONGPASS", "-WRONGTYPE", NULL};
	for (int i = 0; tokens[i]; i++) {
		if (starts(b, n, tokens[i])) {
			found(svc, "redis", id);
			SETS(svc->product, "Redis");
			svc->app = SCAN_APP_REDIS;
			return 1;
		}
	}
	return 0;
}

static int m_memcached(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	if (starts(b, n, "VERSION ") || starts(b, n, "ERROR\r\n") || starts(b, n, "CLIENT_ERROR")) {
		found(svc, "memcached", id);
		SETS(svc->product, "Memcached");
		svc->app = SCAN_APP_MEMCACHED;
		if (starts(b, n, "VERSION "))
			SET(svc->version, b + 8, version_len(b + 8, n - 8));
		return 1;
	}
	return 0;
}

static int m_pgsql(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	if (id == PROBE_PGSQL && n == 1 && (b[0] == 'S' || b[0] == 'N')) {
		found(svc, "postgresql", id);
		SETS(svc->product, "PostgreSQL");
		if (b[0] == 'S')
			SETS(svc->info, "TLS offered");
		return 1;
	}
	if (n > 5 && b[0] == 'E' && memfind(b, n, "SFATAL")) {
		found(svc, "postgresql", id);
		SETS(svc->product, "PostgreSQL");
		return 1;
	}
	return 0;
}

static int m_mongo(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	const unsigned char *u = (const unsigned char *)b;
	if (n < MONGO_HEADER + 5 || le32(u + 8) != SCAN_MONGO_REQUEST_ID)
		return 0;
	uint32_t op = le32(u + 12);
	if (op != MONGO_OP_MSG && op != MONGO_OP_REPLY)
		return 0;
	found(svc, "mongodb", id);
	SETS(svc->product, "MongoDB");
	return 1;
}

/* An echo service (RFC 862, or any test server that sends back what it reads) answers
 * a probe with the probe itself: without this row, its copy of our ClientHello read as
 * a TLS server. The HTTP probe names this host, so it is not rebuilt here (an echoed GET
 * matches no row anyway). */
static int m_echo(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	char req[1024];
	if (id == PROBE_NULL || id == PROBE_HTTP)
		return 0;
	size_t rl = scan_probe_request(id, "", 0, 0, req, sizeof req);
	if (!rl || n < rl || memcmp(b, req, rl))
		return 0;
	found(svc, "echo", id);
	SETS(svc->info, "sends back what it reads");
	return 1;
}

static int m_tls(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	const unsigned char *u = (const unsigned char *)b;
	if (id != PROBE_TLS || n < 6 || (u[0] != TLS_RECORD_HANDSHAKE && u[0] != TLS_RECORD_ALERT) ||
	    u[1] != 0x03 || u[2] > 0x04)
		return 0;
	if (u[0] == TLS_RECORD_HANDSHAKE && u[5] != TLS_SERVER_HELLO)
		return 0; /* a server's first message is its hello (a retry request is one too) */
	found(svc, "ssl", id);
	svc->tls = 1;
	SETS(svc->info, u[0] == TLS_RECORD_ALERT ? "TLS (alert to our hello)" : "TLS");
	return 1;
}

/* The answer table: every row sees every answer (a late greeting can arrive after
 * any probe), in this order; the first that matches names the service. */
static int (*const matchers[])(enum scan_probe_id, const char *, size_t, struct scan_service *) = {
        m_echo,  m_http,      m_ssh,   m_smtp_ftp, m_mysql, m_pop_imap,
        m_redis, m_memcached, m_pgsql, m_mongo,    m_tls,   NULL,
};

int scan_match(enum scan_probe_id id, const char *b, size_t n, struct scan_service *svc)
{
	if (n == 0)
		return 0;
	for (int i = 0; matchers[i]; i++)
		if (matchers[i](id, b, n, svc))
			return 1;
	return 0;
}

int scan_match_elastic(const char *body, size_t n, struct scan_service *svc)
{
	char v[sizeof(svc->version)];
	if (!memfind(body, n, "You Know, for Search") && !memfind(body, n, "\"cluster_uuid\""))
		return 0;
	svc->app = SCAN_APP_ELASTIC;
	SETS(svc->product, "Elasticsearch");
	if (scan_json_str(body, n, "number", v, sizeof(v)))
		SETS(svc->version, v);
	if (svc->http_status == 200) {
		svc->noauth = 1;
		SETS(svc->noauth_evidence,
		     "GET / answered 200 with the cluster's name and version, no credentials asked");
	}
	return 1;
}
