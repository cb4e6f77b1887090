/* record.c - the traffic log: HAR 1.2 entries, a pcap of synthesized TCP packets, a live hexdump. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/net.h"
#include "core/text.h"
#include "http/encode.h"
#include "http/parse.h"
#include "proxy/internal.h"

#define PCAP_SNAPLEN  262144
#define PCAP_SEG_MAX  32768             /* payload bytes per synthesized segment */
#define HAR_ENTRY_MAX (4 * 1024 * 1024) /* one entry's JSON, bodies included */

struct record {
	int har_fd;     /* -1 when not recording HAR */
	off_t har_tail; /* where the closing "]}}" starts: the next entry goes there */
	int har_entries;
	FILE *pcap; /* NULL when not writing pcap */
	int hexdump;
	struct log_sink out; /* --hexdump: stdout, never blocking (a reader that stops loses lines) */
};

/* One connection's pcap state. */
struct rconn {
	uint32_t id;
	struct sockaddr_storage cli, srv; /* the client and the proxy's listening address */
	uint32_t seq[2];                  /* next sequence number sent by the client, by the server */
};

static const char har_tail[] = "\n]}}\n";

struct record *record_open(const struct proxy_opts *o, char *err, size_t errlen)
{
	if (!o->record && !o->pcap && !o->hexdump)
		return NULL;
	struct record *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->har_fd = -1;
	r->hexdump = o->hexdump;
	if (r->hexdump) {
		fflush(stdout);
		log_sink_open_fd(&r->out, 1);
	}
	if (o->record) {
		r->har_fd = open(o->record, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (r->har_fd < 0) {
			snprintf(err, errlen, "--record %s: %s", o->record, strerror(errno));
			record_close(r);
			return NULL;
		}
		char head[256];
		int n = snprintf(head, sizeof head,
		                 "{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"loopkit "
		                 "proxy\",\"version\":\"%s\"},"
		                 "\"pages\":[],\"entries\":[",
		                 LOOPKIT_VERSION);
		if (write(r->har_fd, head, (size_t)n) != n ||
		    write(r->har_fd, har_tail, sizeof har_tail - 1) != (ssize_t)(sizeof har_tail - 1)) {
			snprintf(err, errlen, "--record %s: %s", o->record, strerror(errno));
			record_close(r);
			return NULL;
		}
		r->har_tail = n;
	}
	if (o->pcap) {
		r->pcap = fopen(o->pcap, "wbe");
		if (!r->pcap) {
			snprintf(err, errlen, "--pcap %s: %s", o->pcap, strerror(errno));
			record_close(r);
			return NULL;
		}
		/* The classic pcap header: microsecond timestamps, Ethernet frames. */
		uint32_t h[6] = {0xa1b2c3d4, 0x00040002, 0, 0, PCAP_SNAPLEN, 1};
		fwrite(h, sizeof h, 1, r->pcap);
		fflush(r->pcap);
	}
	return r;
}

void record_close(struct record *r)
{
	if (!r)
		return;
	if (r->har_fd >= 0)
		close(r->har_fd);
	if (r->pcap)
		fclose(r->pcap);
	if (r->hexdump)
		log_sink_close(&r->out);
	free(r);
}

int record_wants_bytes(const struct record *r)
{
	return r && (r->pcap || r->hexdump);
}

int record_wants_http(const struct record *r)
{
	return r && r->har_fd >= 0;
}

/* ---- pcap ---- */

static uint32_t csum_add(uint32_t sum, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)(b[n - 1] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

/* One Ethernet/IP/TCP frame from side `from` (0 client, 1 server) of rc. */
static void pcap_packet(struct record *r, struct rconn *rc, int from, uint8_t flags, const char *data,
                        size_t n)
{
	uint8_t hdr[14 + 40 + 20];
	const struct sockaddr_storage *src = from ? &rc->srv : &rc->cli, *dst = from ? &rc->cli : &rc->srv;
	int v6 = src->ss_family == AF_INET6;
	size_t iplen = v6 ? 40 : 20, off = 14;
	memset(hdr, 0, sizeof hdr);
	hdr[5] = 1; /* made-up MACs: 00..01 and 00..02 */
	hdr[11] = 2;
	put16(hdr + 12, v6 ? 0x86dd : 0x0800);
	uint8_t *ip = hdr + off, *tcp = hdr + off + iplen;
	uint32_t sum = 0;
	if (v6) {
		const struct sockaddr_in6 *s6 = (const void *)src, *d6 = (const void *)dst;
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(20 + n));
		ip[6] = 6;
		ip[7] = 64;
		memcpy(ip + 8, &s6->sin6_addr, 16);
		memcpy(ip + 24, &d6->sin6_addr, 16);
		sum = csum_add(sum, ip + 8, 32);
		put16(tcp, ntohs(s6->sin6_port));
		put16(tcp + 2, ntohs(d6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)src, *d4 = (const void *)dst;
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + 20 + n));
		put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = 6;
		memcpy(ip + 12, &s4->sin_addr, 4);
		memcpy(ip + 16, &d4->sin_addr, 4);
		put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
		sum = csum_add(sum, ip + 12, 8);
		put16(tcp, ntohs(s4->sin_port));
		put16(tcp + 2, ntohs(d4->sin_port));
	}
	put32(tcp + 4, rc->seq[from]);
	put32(tcp + 8, (flags & TH_ACK) ? rc->seq[!from] : 0);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	put16(tcp + 14, 65535);
	sum += 6 + (uint32_t)(20 + n);
	sum = csum_add(sum, tcp, 20);
	if (n)
		sum = csum_add(sum, data, n);
	put16(tcp + 16, csum_fold(sum));
	struct timeval tv;
	gettimeofday(&tv, NULL);
	uint32_t caplen = (uint32_t)(14 + iplen + 20 + n);
	uint32_t rec[4] = {(uint32_t)tv.tv_sec, (uint32_t)tv.tv_usec, caplen, caplen};
	fwrite(rec, sizeof rec, 1, r->pcap);
	fwrite(hdr, 14 + iplen + 20, 1, r->pcap);
	if (n)
		fwrite(data, n, 1, r->pcap);
	rc->seq[from] += (uint32_t)n + ((flags & (TH_SYN | TH_FIN)) ? 1 : 0);
}

void record_conn_open(struct record *r, struct pconn *c, const struct sockaddr_storage *client,
                      const struct sockaddr_storage *server)
{
	if (!r || !record_wants_bytes(r))
		return;
	struct rconn *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return;
	rc->id = c->id;
	rc->cli = *client;
	rc->srv = *server;
	c->rec = rc;
	if (r->pcap && client->ss_family == server->ss_family) {
		rc->seq[0] = 1000000u * (c->id % 4000);
		rc->seq[1] = 2000000000u + 1000u * (c->id % 1000000);
		pcap_packet(r, rc, 0, TH_SYN, "", 0);
		pcap_packet(r, rc, 1, TH_SYN | TH_ACK, "", 0);
		pcap_packet(r, rc, 0, TH_ACK, "", 0);
		fflush(r->pcap);
	}
	if (r->hexdump) {
		char a[64], b[64], line[256];
		int n = snprintf(line, sizeof line, "[%u] open %s -> %s via proxy %s\n", c->id,
		                 net_ss_text(client, a, sizeof a), net_ss_text(server, b, sizeof b),
		                 c->p->name);
		log_sink_write(&r->out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	}
}

/* One block per write, hexdump -C style, written at once (or dropped whole). */
static void hexdump(struct record *r, const struct pconn *c, int d, const char *p, size_t n)
{
	struct rconn *rc = c->rec;
	struct buf b;
	buf_init(&b, 128 + (n / 16 + 1) * 80);
	buf_printf(&b, "[%u] %s %zu bytes\n", rc->id,
	           d == PROXY_UP ? "client > upstream" : "upstream > client", n);
	for (size_t off = 0; off < n; off += 16) {
		char line[100];
		int k = snprintf(line, sizeof line, "  %08zx ", off);
		for (size_t i = 0; i < 16; i++) {
			if (off + i < n)
				k += snprintf(line + k, sizeof line - (size_t)k, " %02x",
				              (unsigned char)p[off + i]);
			else
				k += snprintf(line + k, sizeof line - (size_t)k, "   ");
			if (i == 7)
				line[k++] = ' ';
		}
		k += snprintf(line + k, sizeof line - (size_t)k, "  |");
		for (size_t i = 0; i < 16 && off + i < n; i++) {
			unsigned char ch = (unsigned char)p[off + i];
			line[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
		}
		line[k++] = '|';
		line[k++] = '\n';
		buf_append(&b, line, (size_t)k);
	}
	if (buf_used(&b))
		log_sink_write(&r->out, buf_start(&b), buf_used(&b));
	buf_free(&b);
}

void record_bytes(struct record *r, struct pconn *c, int d, const char *p, size_t n)
{
	struct rconn *rc = c->rec;
	if (!r || !rc)
		return;
	if (r->pcap && rc->cli.ss_family == rc->srv.ss_family) {
		int from = d == PROXY_UP ? 0 : 1;
		for (size_t off = 0; off < n; off += PCAP_SEG_MAX) {
			size_t k = n - off < PCAP_SEG_MAX ? n - off : PCAP_SEG_MAX;
			pcap_packet(r, rc, from, TH_ACK | TH_PSH, p + off, k);
		}
		fflush(r->pcap);
	}
	if (r->hexdump)
		hexdump(r, c, d, p, n);
}

void record_conn_close(struct record *r, struct pconn *c, int rst)
{
	struct rconn *rc = c->rec;
	if (!rc)
		return;
	if (r && r->pcap && rc->cli.ss_family == rc->srv.ss_family) {
		if (rst) { /* the proxy resets the client's connection (SO_LINGER 0) */
			pcap_packet(r, rc, 1, TH_RST | TH_ACK, "", 0);
		} else {
			pcap_packet(r, rc, 0, TH_FIN | TH_ACK, "", 0);
			pcap_packet(r, rc, 1, TH_FIN | TH_ACK, "", 0);
			pcap_packet(r, rc, 0, TH_ACK, "", 0);
		}
		fflush(r->pcap);
	}
	if (r && r->hexdump) {
		char line[128];
		int n = snprintf(line, sizeof line, "[%u] %s: %llu bytes up, %llu down\n", rc->id,
		                 rst ? "reset" : "closed", (unsigned long long)c->d[0].bytes,
		                 (unsigned long long)c->d[1].bytes);
		log_sink_write(&r->out, line, (size_t)n);
	}
	free(rc);
	c->rec = NULL;
}

/* ---- HAR ---- */

static void iso_time(uint64_t us, char *out, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, len - n, ".%03uZ", (unsigned)(us / 1000 % 1000));
}

static int is_utf8(const char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 0x80) {
			if (ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t')
				return 0;
			i++;
			continue;
		}
		size_t l = text_utf8_len((const unsigned char *)p + i, n - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

static void base64(struct buf *out, const unsigned char *p, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
		             i + 2 < n ? t[v & 63] : '='};
		buf_append(out, q, 4);
	}
}

/* A header whose value har_headers copies out: name (lowercase), where to and how much. */
struct hdr_want {
	const char *name;
	char *out;
	size_t len;
};

/* Header lines of a head (after its first line) as HAR name/value pairs; the values of
 * the wanted names (case-insensitive) are copied out. */
static void har_headers(struct json *j, const char *h, size_t n, const struct hdr_want *want, size_t nwant)
{
	const char *nl = memchr(h, '\n', n);
	size_t i = nl ? (size_t)(nl - h) + 1 : n;
	json_arr_begin(j);
	while (i < n) {
		const char *line = h + i;
		size_t ll = 0;
		while (i < n && h[i] != '\n') {
			i++;
			ll++;
		}
		i++; /* the LF */
		if (ll == 0 || (ll == 1 && line[0] == '\r'))
			break; /* the blank line */
		size_t content = line[ll - 1] == '\r' ? ll - 1 : ll;
		const char *colon = memchr(line, ':', content);
		if (!colon)
			continue;
		size_t nlen = (size_t)(colon - line);
		const char *v = colon + 1, *ve = line + content;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		json_obj_begin(j);
		json_key(j, "name");
		json_str_n(j, line, nlen);
		json_key(j, "value");
		json_str_n(j, v, (size_t)(ve - v));
		json_obj_end(j);
		for (size_t w = 0; w < nwant; w++)
			if (strlen(want[w].name) == nlen && !strncasecmp(line, want[w].name, nlen))
				snprintf(want[w].out, want[w].len, "%.*s", (int)(ve - v), v);
	}
	json_arr_end(j);
}

/* A body as HAR text (UTF-8 as is, anything else base64), marked when it was cut. For
 * a response (content), also its size: HAR wants the payload, so a whole chunked body
 * is unchunked and a whole compressed one (gzip, deflate, br) decoded, with
 * "compression" the bytes that saved. */
static void har_body(struct json *j, struct buf *tmp, const char *p, size_t n, uint64_t size, int chunked,
                     const char *coding, int content)
{
	char *dec = NULL;
	size_t dlen = n;
	struct buf plain;
	buf_init(&plain, PROXY_HAR_BODY_MAX);
	char note[160] = ""; /* the entry's comment, if any */
	int truncated = 0;
	if (chunked && n == size) {
		dec = malloc(n ? n : 1);
		if (dec) {
			memcpy(dec, p, n);
			struct http_chunked st;
			memset(&st, 0, sizeof st);
			if (http_chunked_decode(&st, dec, &dlen) >= 0) {
				p = dec;
				n = dlen;
				size = dlen;
			}
		}
	}
	enum http_coding k;
	uint64_t saved = 0;
	int coded = content && coding && coding[0] && http_coding_parse(coding, strlen(coding), &k) == 0;
	if (coded && n == size) {
		int rc = http_decode(k, p, n, &plain, PROXY_HAR_BODY_MAX);
		if (rc >= 0 && buf_start(&plain)) {
			if (rc == 0 && buf_used(&plain) > n)
				saved = buf_used(&plain) - n;
			if (rc == 1) {
				snprintf(note, sizeof note,
				         "decoded: the first %d bytes (loopkit keeps at most that many per "
				         "body)",
				         PROXY_HAR_BODY_MAX);
				truncated = 1;
			}
			size = buf_used(&plain); /* cut (rc 1): what was decoded, as the comment says */
			p = buf_start(&plain);
			n = buf_used(&plain);
		} else {
			snprintf(note, sizeof note, "the body could not be decoded; the bytes are as sent");
		}
	} else if (coded) {
		snprintf(note, sizeof note, "compressed and cut: the bytes are as sent");
		truncated = 1;
	}
	if (content) {
		json_kint(j, "size", (long long)size);
		if (saved)
			json_kint(j, "compression", (long long)saved);
	}
	if (is_utf8(p, n)) {
		json_key(j, "text");
		json_str_n(j, p, n);
	} else {
		buf_consume(tmp, buf_used(tmp));
		base64(tmp, (const unsigned char *)p, n);
		json_key(j, "text");
		json_str_n(j, buf_start(tmp) ? buf_start(tmp) : "", buf_used(tmp));
		json_kstr(j, "encoding", "base64");
	}
	if (!note[0] && size > n) {
		snprintf(note, sizeof note,
		         "truncated: the first %zu of %llu bytes (loopkit keeps at most %d per body)", n,
		         (unsigned long long)size, PROXY_HAR_BODY_MAX);
		truncated = 1;
	}
	if (note[0]) {
		json_kstr(j, "comment", note);
		json_kbool(j, "_truncated", truncated);
	}
	buf_free(&plain);
	free(dec);
}

static int is_chunked(const char *te)
{
	return strstr(te, "chunked") || strstr(te, "Chunked");
}

void record_har(struct record *r, const struct har_entry *e)
{
	if (!r || r->har_fd < 0)
		return;
	struct buf out, tmp;
	buf_init(&out, HAR_ENTRY_MAX);
	buf_init(&tmp, PROXY_HAR_BODY_MAX * 2);
	struct json j;
	json_init(&j, &out, 0);
	struct http_request *req = malloc(sizeof(*req));
	if (!req)
		return;
	if (http_parse_request(e->req_head, e->req_head_len, req, 0) <= 0) {
		free(req);
		return;
	}
	char when[40], host[PROXY_ADDR_MAX], ctype[128] = "", rctype[128] = "", rte[64] = "", rce[32] = "";
	iso_time(e->start_us, when, sizeof when);
	const struct http_header *hh = http_find_header(req, "host");
	snprintf(host, sizeof host, "%.*s", hh ? (int)hh->value.len : (int)strlen(e->host),
	         hh ? hh->value.p : e->host);
	if (r->har_entries)
		buf_puts(&out, ",\n");
	json_obj_begin(&j);
	json_kstr(&j, "startedDateTime", when);
	json_kdouble(&j, "time", (double)(e->wait_us + e->receive_us) / 1000.0);
	json_key(&j, "request");
	json_obj_begin(&j);
	json_key(&j, "method");
	json_str_n(&j, req->method.p, req->method.len);
	char url[PROXY_ADDR_MAX + HTTP_MAX_URI + 16];
	if (req->target.len && req->target.p[0] == '/')
		snprintf(url, sizeof url, "http://%s%.*s", host, (int)req->target.len, req->target.p);
	else
		snprintf(url, sizeof url, "%.*s", (int)req->target.len, req->target.p);
	json_kstr(&j, "url", url);
	json_kstr(&j, "httpVersion", req->minor ? "HTTP/1.1" : "HTTP/1.0");
	json_key(&j, "cookies");
	json_arr_begin(&j);
	json_arr_end(&j);
	json_key(&j, "headers");
	const struct hdr_want reqw[] = {{"content-type", ctype, sizeof ctype}};
	har_headers(&j, e->req_head, e->req_head_len, reqw, 1);
	json_key(&j, "queryString");
	json_arr_begin(&j);
	const char *q = memchr(req->target.p, '?', req->target.len);
	if (q) {
		const char *end = req->target.p + req->target.len, *s = q + 1;
		while (s < end) {
			const char *amp = memchr(s, '&', (size_t)(end - s));
			const char *pe = amp ? amp : end;
			const char *eq = memchr(s, '=', (size_t)(pe - s));
			json_obj_begin(&j);
			json_key(&j, "name");
			json_str_n(&j, s, (size_t)((eq ? eq : pe) - s));
			json_key(&j, "value");
			json_str_n(&j, eq ? eq + 1 : pe, eq ? (size_t)(pe - eq - 1) : 0);
			json_obj_end(&j);
			s = pe + 1;
		}
	}
	json_arr_end(&j);
	json_kint(&j, "headersSize", (long long)e->req_head_len);
	json_kint(&j, "bodySize", (long long)e->req_body_size);
	if (e->req_body_size) {
		json_key(&j, "postData");
		json_obj_begin(&j);
		json_kstr(&j, "mimeType", ctype);
		har_body(&j, &tmp, e->req_body, e->req_body_len, e->req_body_size, 0, NULL, 0);
		json_obj_end(&j);
	}
	json_obj_end(&j);

	json_key(&j, "response");
	json_obj_begin(&j);
	int status = 0;
	const char *rh = e->resp_head;
	size_t rhl = e->resp_head ? e->resp_head_len : 0;
	if (rhl >= 12)
		status = (rh[9] - '0') * 100 + (rh[10] - '0') * 10 + (rh[11] - '0');
	json_kint(&j, "status", status);
	const char *eol = rhl ? memchr(rh, '\n', rhl) : NULL;
	size_t sl = eol ? (size_t)(eol - rh) : 0;
	if (sl && rh[sl - 1] == '\r')
		sl--;
	json_key(&j, "statusText");
	json_str_n(&j, sl > 13 ? rh + 13 : "", sl > 13 ? sl - 13 : 0);
	json_key(&j, "httpVersion");
	json_str_n(&j, rhl >= 8 ? rh : "", rhl >= 8 ? 8 : 0);
	json_key(&j, "cookies");
	json_arr_begin(&j);
	json_arr_end(&j);
	json_key(&j, "headers");
	if (rhl) {
		const struct hdr_want respw[] = {{"content-type", rctype, sizeof rctype},
		                                 {"transfer-encoding", rte, sizeof rte},
		                                 {"content-encoding", rce, sizeof rce}};
		har_headers(&j, rh, rhl, respw, 3);
	} else {
		json_arr_begin(&j);
		json_arr_end(&j);
	}
	json_key(&j, "content");
	json_obj_begin(&j);
	json_kstr(&j, "mimeType", rctype);
	if (e->resp_body_size)
		har_body(&j, &tmp, e->resp_body, e->resp_body_len, e->resp_body_size, is_chunked(rte), rce,
		         1);
	else
		json_kint(&j, "size", 0);
	json_obj_end(&j);
	json_kstr(&j, "redirectURL", "");
	json_kint(&j, "headersSize", rhl ? (long long)rhl : -1);
	json_kint(&j, "bodySize", rhl ? (long long)e->resp_body_size : -1);
	json_obj_end(&j);
	json_key(&j, "cache");
	json_obj_begin(&j);
	json_obj_end(&j);
	json_key(&j, "timings");
	json_obj_begin(&j);
	json_kint(&j, "send", 0);
	json_kdouble(&j, "wait", (double)e->wait_us / 1000.0);
	json_kdouble(&j, "receive", (double)e->receive_us / 1000.0);
	json_obj_end(&j);
	if (e->comment) {
		json_kstr(&j, "comment", e->comment);
	}
	json_obj_end(&j);
	free(req);
	if (!j.err && buf_puts(&out, har_tail) == 0) {
		/* The entry overwrites the tail and ends with a new one: the file is a whole
		 * HAR document after every entry. */
		ssize_t n = pwrite(r->har_fd, buf_start(&out), buf_used(&out), r->har_tail);
		if (n == (ssize_t)buf_used(&out)) {
			r->har_tail += (off_t)(buf_used(&out) - (sizeof har_tail - 1));
			r->har_entries++;
		}
	}
	buf_free(&out);
	buf_free(&tmp);
}
