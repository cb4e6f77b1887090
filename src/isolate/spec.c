/* spec.c - the forwards of `loopkit isolate`: read from -p/--out text, and their two renderings. */
#include "isolate/isolate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/net.h"
#include "core/strparse.h"

void isolate_config_init(struct isolate_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_conns = ISOLATE_MAX_CONNS;
}

void isolate_config_free(struct isolate_config *c)
{
	free(c->fwd);
	c->fwd = NULL;
	c->nfwd = c->cap = 0;
}

/* Room for n forwards in all (at most ISOLATE_MAX_FORWARDS): the array grows with what
 * is given, where a fixed one of 32 cost every start-up five pages to clear and copy. */
static int reserve(struct isolate_config *c, size_t n, char *err, size_t errlen)
{
	if (n <= c->cap)
		return 0;
	size_t cap = c->cap ? c->cap * 2 : 4;
	while (cap < n)
		cap *= 2;
	if (cap > ISOLATE_MAX_FORWARDS)
		cap = ISOLATE_MAX_FORWARDS;
	struct isolate_forward *f = realloc(c->fwd, cap * sizeof *f);
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->fwd = f;
	c->cap = cap;
	return 0;
}

static int port_of(const char *s, uint64_t min, const char *what, uint16_t *out, char *err, size_t errlen)
{
	uint64_t v;
	char why[STRPARSE_ERR_MAX];
	if (strparse_uint(s, min, 65535, &v, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s '%s': %s", what, s, why);
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

static void set_loopback(struct sockaddr_storage *ss, socklen_t *len, int family, uint16_t port)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(port);
		*len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(port);
		*len = sizeof *a;
	}
}

/* 0, or -1 with err when g's host end (-p) or its address (--out) is one that an earlier
 * forward already has: the second listener would fail with EADDRINUSE, naming our own
 * process as the holder. */
static int given_twice(const struct isolate_config *c, const struct isolate_forward *g, char *err,
                       size_t errlen)
{
	uint16_t port = net_ss_port(&g->host);
	if (!port)
		return 0; /* 0: a free port each */
	for (size_t i = 0; i < c->nfwd; i++) {
		const struct isolate_forward *o = &c->fwd[i];
		if (o != g && o->dir == g->dir && net_ss_same(&o->host, &g->host)) {
			snprintf(err, errlen, "%s port %u is already given by '%s'",
			         g->dir == ISOLATE_IN ? "host" : "--out", port, o->spec);
			return -1;
		}
		/* -p 18080 --out 18080: the forward in reaches the --out listener inside, which
		 * connects back to the forward's own host port, round and round */
		if (o != g && o->dir != g->dir && net_ss_same(&o->inner, &g->inner) &&
		    net_ss_same(&o->host, &g->host)) {
			snprintf(err, errlen,
			         "-p '%s' would reach --out '%s' inside, which leads back out to it: a loop",
			         g->dir == ISOLATE_IN ? g->spec : o->spec,
			         g->dir == ISOLATE_IN ? o->spec : g->spec);
			return -1;
		}
	}
	return 0;
}

/* -p [ADDR:]A-B: each port of the range forwarded to the same port inside (an FTP
 * server's passive ports: its replies name the port inside, which the client then
 * reaches on the host). f is the first forward, its address set; each port counts as a
 * forward. */
static int add_range(struct isolate_config *c, struct isolate_forward *f, const char *spec, const char *text,
                     char *err, size_t errlen)
{
	struct strparse_range r;
	char why[STRPARSE_ERR_MAX];
	if (strparse_range(text, 1, 65535, &r, why, sizeof why) < 0) {
		snprintf(err, errlen, "the range %s: %s", text, why);
		return -1;
	}
	if (r.hi - r.lo + 1 > ISOLATE_MAX_FORWARDS - c->nfwd) {
		snprintf(err, errlen,
		         "%llu ports; at most %d forwards (-p and --out together), %zu already given",
		         (unsigned long long)(r.hi - r.lo + 1), ISOLATE_MAX_FORWARDS, c->nfwd);
		return -1;
	}
	size_t first = c->nfwd, at = (size_t)(f - c->fwd);
	if (reserve(c, c->nfwd + (size_t)(r.hi - r.lo + 1), err, errlen) < 0)
		return -1;
	f = &c->fwd[at]; /* the array may have moved */
	for (uint64_t port = r.lo; port <= r.hi; port++) {
		struct isolate_forward *g = &c->fwd[c->nfwd];
		if (g != f)
			*g = *f;
		net_ss_set_port(&g->host, (uint16_t)port);
		set_loopback(&g->inner, &g->innerlen, g->host.ss_family, (uint16_t)port);
		if (given_twice(c, g, err, errlen) < 0) {
			c->nfwd = first;
			return -1;
		}
		c->nfwd++;
	}
	return 0;
}

int isolate_config_add(struct isolate_config *c, enum isolate_dir dir, const char *spec, char *err,
                       size_t errlen)
{
	char text[64], *parts[3], *p;
	size_t n = 0;
	const char *addr = NULL;

	if (c->nfwd == ISOLATE_MAX_FORWARDS) {
		snprintf(err, errlen, "more than %d forwards (-p and --out together)", ISOLATE_MAX_FORWARDS);
		return -1;
	}
	if (strlen(spec) >= sizeof text || !*spec) {
		snprintf(err, errlen, "expected %s",
		         dir == ISOLATE_IN ? "[ADDR:]HOSTPORT[:INNERPORT]" : "[ADDR:]PORT");
		return -1;
	}
	snprintf(text, sizeof text, "%s", spec);
	p = text;
	if (*p == '[') { /* [v6]:... */
		char *close = strchr(p, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "an IPv6 address is written [::1]:PORT");
			return -1;
		}
		*close = '\0';
		addr = p + 1;
		p = close + 2;
	}
	for (char *tok = p;; tok = p + 1) {
		p = strchr(tok, ':');
		if (n == 3) {
			snprintf(err, errlen, "too many ':' (IPv6 addresses go in brackets: [::1]:PORT)");
			return -1;
		}
		parts[n++] = tok;
		if (!p)
			break;
		*p = '\0';
	}
	if (dir == ISOLATE_IN && n >= 2 && strspn(parts[n - 2], "0123456789-") == strlen(parts[n - 2]) &&
	    strchr(parts[n - 2], '-')) {
		/* the fix keeps the address: -p [::1]:8000-8001 */
		size_t keep = (size_t)(parts[n - 2] - text);
		snprintf(err, errlen,
		         "a range forwards each port to the same port inside; it takes no inner port: -p "
		         "%.*s%s",
		         (int)keep, spec, parts[n - 2]);
		return -1;
	}
	/* ADDR:... when the first part is not a number (and no bracketed address came first) */
	if (!addr && n >= 2 && strspn(parts[0], "0123456789") != strlen(parts[0])) {
		addr = parts[0];
		memmove(parts, parts + 1, --n * sizeof *parts);
	} else if (!addr && n == 3) {
		addr = parts[0];
		memmove(parts, parts + 1, --n * sizeof *parts);
	}
	if ((dir == ISOLATE_OUT && n != 1) || n > 2) {
		snprintf(err, errlen, "expected %s",
		         dir == ISOLATE_IN ? "[ADDR:]HOSTPORT[:INNERPORT]" : "[ADDR:]PORT");
		return -1;
	}
	if (reserve(c, c->nfwd + 1, err, errlen) < 0)
		return -1;
	struct isolate_forward *f = &c->fwd[c->nfwd];
	memset(f, 0, sizeof *f);
	f->dir = dir;
	f->fd = f->twin = -1;
	snprintf(f->spec, sizeof f->spec, "%s", spec);
	if (addr) {
		if (net_parse_addr(addr, 0, &f->host, &f->hostlen) < 0) {
			snprintf(err, errlen, "'%s' is not an IP address", addr);
			return -1;
		}
		if (f->host.ss_family == AF_INET6 &&
		    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&f->host)->sin6_addr)) {
			snprintf(err, errlen, "%s is an IPv4 address in IPv6 form; write it as IPv4", addr);
			return -1;
		}
		if (!net_is_loopback((struct sockaddr *)&f->host)) {
			snprintf(err, errlen,
			         "%s is not a loopback address; isolate forwards only on loopback "
			         "(127.0.0.0/8, "
			         "::1)",
			         addr);
			return -1;
		}
	} else {
		set_loopback(&f->host, &f->hostlen, AF_INET, 0);
	}
	if (dir == ISOLATE_IN && n == 1 && strchr(parts[0], '-'))
		return add_range(c, f, spec, parts[0], err, errlen);
	uint16_t hp, ip;
	if (port_of(parts[0], dir == ISOLATE_IN ? 0 : 1, dir == ISOLATE_IN ? "host port" : "port", &hp, err,
	            errlen) < 0)
		return -1;
	if (n == 2) {
		if (port_of(parts[1], 1, "inner port", &ip, err, errlen) < 0)
			return -1;
	} else if (hp == 0) {
		snprintf(err, errlen,
		         "host port 0 picks a free port; say which port inside it reaches: -p 0:8080");
		return -1;
	} else {
		ip = hp;
	}
	net_ss_set_port(&f->host, hp);
	if (dir == ISOLATE_IN) {
		set_loopback(&f->inner, &f->innerlen, f->host.ss_family, ip);
	} else {
		f->inner = f->host;
		f->innerlen = f->hostlen;
	}
	if (given_twice(c, f, err, errlen) < 0)
		return -1;
	c->nfwd++;
	return 0;
}

int isolate_ftp_note(const struct isolate_config *c, char *out, size_t len)
{
	char *const *v = c->argv;
	const char *base = v && v[0] ? strrchr(v[0], '/') : NULL;
	int in = 0;
	for (size_t k = 0; k < c->nfwd; k++)
		in |= c->fwd[k].dir == ISOLATE_IN;
	base = base ? base + 1 : v && v[0] ? v[0] : "";
	if (!in || strcmp(base, "loopkit") || !v[1] || strcmp(v[1], "serve"))
		return 0;
	for (size_t k = 2; v[k]; k++)
		if (!strncmp(v[k], "--pasv-ports", 12) || !strcmp(v[k], "--proto=http") ||
		    (!strcmp(v[k], "--proto") && v[k + 1] && !strcmp(v[k + 1], "http")))
			return 0;
	snprintf(out, len,
	         "FTP's data connections go to passive ports inside that -p does not forward; for FTP "
	         "from the host, add --pasv-ports %d-%d to serve and -p %d-%d here",
	         ISOLATE_FTP_PASV_LO, ISOLATE_FTP_PASV_LO + ISOLATE_FTP_PASV_N - 1, ISOLATE_FTP_PASV_LO,
	         ISOLATE_FTP_PASV_LO + ISOLATE_FTP_PASV_N - 1);
	return 1;
}

char *isolate_end_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	return net_ss_text(ss, out, len);
}

void isolate_print(FILE *f, const struct isolate *iso)
{
	char h[64], i[64];
	for (size_t k = 0; k < iso->cfg.nfwd; k++) {
		const struct isolate_forward *w = &iso->cfg.fwd[k];
		isolate_end_text(&w->host, h, sizeof h);
		isolate_end_text(&w->inner, i, sizeof i);
		if (w->dir == ISOLATE_IN)
			fprintf(f, "loopkit isolate: %s -> %s inside%s\n", h, i,
			        iso->cfg.direct ? " (direct: handed to the server that binds it)" : "");
		else
			fprintf(f, "loopkit isolate: %s inside -> %s on the host\n", i, h);
	}
}

int isolate_json(struct buf *b, const struct isolate *iso)
{
	struct json j;
	char t[64];

	json_init(&j, b, 0);
	json_obj_begin(&j);
	json_key(&j, "forwards");
	json_arr_begin(&j);
	for (size_t k = 0; k < iso->cfg.nfwd; k++) {
		const struct isolate_forward *w = &iso->cfg.fwd[k];
		json_obj_begin(&j);
		json_kstr(&j, "dir", w->dir == ISOLATE_IN ? "in" : "out");
		json_kstr(&j, "host", isolate_end_text(&w->host, t, sizeof t));
		json_kstr(&j, "inside", isolate_end_text(&w->inner, t, sizeof t));
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_kbool(&j, "direct", iso->cfg.direct);
	json_kbool(&j, "user_namespace", iso->ns.userns);
	json_kbool(&j, "ipv6", iso->ns.ipv6);
	json_obj_end(&j);
	return j.err ? -1 : 0;
}
