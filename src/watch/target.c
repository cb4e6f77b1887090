/* target.c - the operator's targets: URLs, the JSON config file, defaults and the loopback rule. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/jansson_lib.h"
#include "core/net.h"
#include "core/strparse.h"
#include "core/vec.h"
#include "watch/internal.h"

#define FTP_PORT_DEFAULT  21
#define HTTP_PORT_DEFAULT 80
#define FTP_ANON_USER     "anonymous"
#define FTP_ANON_PASS     "loopkit-watch@"
#define PASSWORD_MASK     "xxxxx" /* a URL's password as shown (Go's url.Redacted) */

static const char *const kind_names[WATCH_KIND_COUNT] = {"tcp", "http", "ftp", "udp", "cmd"};
static const char *const state_names[] = {"pending", "up", "down"};

const char *watch_kind_name(enum watch_kind k)
{
	return k < WATCH_KIND_COUNT ? kind_names[k] : "?";
}

const char *watch_state_name(enum watch_state s)
{
	return state_names[s];
}

void watch_config_init(struct watch_config *c)
{
	memset(c, 0, sizeof(*c));
	c->interval_ms = WATCH_INTERVAL_S_DEFAULT * 1000;
	c->timeout_ms = WATCH_TIMEOUT_S_DEFAULT * 1000;
	c->retries = WATCH_RETRIES_DEFAULT;
	c->until_ms = WATCH_UNTIL_S_DEFAULT * 1000;
	c->port = WATCH_PORT_DEFAULT;
	c->max_inflight = WATCH_INFLIGHT_DEFAULT;
	c->retention_count = WATCH_KEEP_DEFAULT;
}

static void target_free(struct watch_target *t)
{
	free(t->name);
	free(t->url);
	free(t->host);
	free(t->host_header);
	free(t->path);
	free(t->user);
	free(t->pass);
	free(t->send);
	free(t->expect);
	free(t->contains);
	free(t->json_path);
	free(t->json_equals);
	for (char **a = t->argv; a && *a; a++)
		free(*a);
	free(t->argv);
	memset(t, 0, sizeof(*t));
}

void watch_config_free(struct watch_config *c)
{
	for (size_t i = 0; i < c->ntargets; i++)
		target_free(&c->targets[i]);
	free(c->targets);
	c->targets = NULL;
	c->ntargets = c->cap = 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* A new, zeroed target at the end of c (its settings unset), or NULL with err. */
static struct watch_target *target_new(struct watch_config *c, char *err, size_t errlen)
{
	if (c->ntargets >= WATCH_TARGETS_MAX) {
		seterr(err, errlen, "more than %d targets; split them over several watchers",
		       WATCH_TARGETS_MAX);
		return NULL;
	}
	if (vec_grow((void **)&c->targets, &c->cap, c->ntargets + 1, sizeof(*c->targets)) < 0) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	struct watch_target *t = &c->targets[c->ntargets++];
	memset(t, 0, sizeof(*t));
	t->retries = -1;
	t->login = 1;
	return t;
}

static void target_drop_last(struct watch_config *c)
{
	target_free(&c->targets[--c->ntargets]);
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* s[0..n) with %XX decoded (URL userinfo), or NULL when malformed or out of memory. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
		int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = 0;
	return out;
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
	char tmp[8];
	uint64_t v;
	if (!n || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	if (strparse_uint(tmp, 1, 65535, &v, NULL, 0) < 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Splits "[userinfo@]host[:port]" of t's URL. */
static int parse_authority(struct watch_target *t, const char *a, size_t n, uint16_t defport, char *err,
                           size_t errlen)
{
	const char *at = memrchr(a, '@', n);
	if (at) {
		if (t->kind != WATCH_FTP) {
			seterr(err, errlen, "%s: credentials in a %s URL are not supported", t->url,
			       watch_kind_name(t->kind));
			return -1;
		}
		const char *colon = memchr(a, ':', (size_t)(at - a));
		size_t ul = colon ? (size_t)(colon - a) : (size_t)(at - a);
		t->user = pct_decode(a, ul);
		t->pass = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : NULL;
		if (!t->user || (colon && !t->pass)) {
			seterr(err, errlen, "%s: malformed user or password (a %% must start %%XX)", t->url);
			return -1;
		}
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	const char *hs = a, *he, *rest;
	if (n && a[0] == '[') {
		const char *rb = memchr(a, ']', n);
		if (!rb) {
			seterr(err, errlen, "%s: an IPv6 address needs its closing ']'", t->url);
			return -1;
		}
		hs = a + 1;
		he = rb;
		rest = rb + 1;
	} else {
		he = memchr(a, ':', n);
		if (!he)
			he = a + n;
		rest = he;
	}
	size_t restn = (size_t)(a + n - rest);
	if (he == hs) {
		seterr(err, errlen, "%s: no host; write it as %s://127.0.0.1:PORT", t->url,
		       watch_kind_name(t->kind));
		return -1;
	}
	t->host = dup_n(hs, (size_t)(he - hs));
	t->port = defport;
	if (restn) {
		if (rest[0] != ':' || parse_port(rest + 1, restn - 1, &t->port) < 0) {
			seterr(err, errlen, "%s: the port must be 1-65535", t->url);
			return -1;
		}
	} else if (!defport) {
		seterr(err, errlen, "%s: a %s target needs a port (%s://127.0.0.1:PORT)", t->url,
		       watch_kind_name(t->kind), watch_kind_name(t->kind));
		return -1;
	}
	if (!t->host) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	if (net_parse_addr(t->host, t->port, &t->addr, &t->addrlen) < 0)
		t->addrlen = 0; /* a name: resolved by watch_config_finish */
	return 0;
}

/* A password in the URL (ftp://user:PASS@host) becomes PASSWORD_MASK in t->url, which
 * the page, /metrics, /api/status, the history and the change lines show (and the
 * name defaults to): any local user can read the page. The probe logs in with t->pass.
 * from and alen: the authority within t->url. Returns 0 or -1 with err. */
static int redact_password(struct watch_target *t, size_t from, size_t alen, char *err, size_t errlen)
{
	const char *a = t->url + from, *at = memrchr(a, '@', alen);
	const char *colon = at ? memchr(a, ':', (size_t)(at - a)) : NULL;
	if (!colon)
		return 0;
	size_t head = (size_t)(colon + 1 - t->url), len = head + strlen(PASSWORD_MASK) + strlen(at) + 1;
	char *shown = malloc(len);
	if (!shown) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	snprintf(shown, len, "%.*s%s%s", (int)head, t->url, PASSWORD_MASK, at);
	free(t->url);
	t->url = shown;
	return 0;
}

static int set_url(struct watch_target *t, const char *url, char *err, size_t errlen)
{
	static const struct {
		const char *scheme;
		enum watch_kind kind;
		uint16_t port;
	} schemes[] = {
	        {"tcp://", WATCH_TCP, 0},
	        {"http://", WATCH_HTTP, HTTP_PORT_DEFAULT},
	        {"ftp://", WATCH_FTP, FTP_PORT_DEFAULT},
	        {"udp://", WATCH_UDP, 0},
	};
	size_t n = strlen(url);
	if (n > WATCH_URL_MAX) {
		seterr(err, errlen, "a URL longer than %d bytes", WATCH_URL_MAX);
		return -1;
	}
	if (!(t->url = strdup(url))) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	if (!strncmp(url, "cmd:", 4)) {
		const char *text = url + 4;
		while (*text == ' ')
			text++;
		if (!*text) {
			seterr(err, errlen, "%s: no command; write cmd:COMMAND (run by /bin/sh -c)", url);
			return -1;
		}
		t->kind = WATCH_CMD;
		t->argv = calloc(4, sizeof(char *));
		if (!t->argv || !(t->argv[0] = strdup("/bin/sh")) || !(t->argv[1] = strdup("-c")) ||
		    !(t->argv[2] = strdup(text))) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	const char *p = url;
	uint16_t defport = 0;
	t->kind = WATCH_TCP;
	const char *sep = strstr(url, "://");
	if (sep) {
		size_t i;
		for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
			if (!strncasecmp(url, schemes[i].scheme, strlen(schemes[i].scheme)))
				break;
		if (i == sizeof(schemes) / sizeof(schemes[0])) {
			if (!strncasecmp(url, "https://", 8))
				seterr(err, errlen,
				       "%s: https targets are not supported yet; check the port with "
				       "tcp://HOST:PORT",
				       url);
			else
				seterr(err, errlen,
				       "%s: unknown kind of target; use tcp://, http://, ftp://, udp:// or "
				       "cmd:COMMAND",
				       url);
			return -1;
		}
		t->kind = schemes[i].kind;
		defport = schemes[i].port;
		p = url + strlen(schemes[i].scheme);
	} else if (!strchr(url, ':')) {
		seterr(err, errlen,
		       "%s: not a target; write tcp://HOST:PORT, http://HOST:PORT/PATH, ftp://HOST:PORT, "
		       "udp://HOST:PORT or cmd:COMMAND",
		       url);
		return -1;
	}
	const char *slash = strpbrk(p, "/?#");
	size_t alen = slash ? (size_t)(slash - p) : strlen(p);
	if (parse_authority(t, p, alen, defport, err, errlen) < 0 ||
	    redact_password(t, (size_t)(p - url), alen, err, errlen) < 0)
		return -1;
	const char *path = p + alen;
	if (t->kind == WATCH_HTTP) {
		const char *hash = strchr(path, '#');
		size_t pl = hash ? (size_t)(hash - path) : strlen(path);
		if (!pl || path[0] != '/') {
			t->path = malloc(pl + 2);
			if (t->path) {
				t->path[0] = '/';
				memcpy(t->path + 1, path, pl);
				t->path[pl + 1] = 0;
			}
		} else {
			t->path = dup_n(path, pl);
		}
		/* Host: as written, with the port when it is not the default. */
		size_t hl = strlen(t->host) + 16;
		t->host_header = malloc(hl);
		if (t->host_header) {
			int v6 = strchr(t->host, ':') != NULL;
			if (t->port == HTTP_PORT_DEFAULT)
				snprintf(t->host_header, hl, v6 ? "[%s]" : "%s", t->host);
			else
				snprintf(t->host_header, hl, v6 ? "[%s]:%u" : "%s:%u", t->host, t->port);
		}
		if (!t->path || !t->host_header) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		for (const char *c = t->path; *c; c++) {
			if ((unsigned char)*c <= ' ' || *c == 0x7f) {
				seterr(err, errlen,
				       "%s: the path holds a space or a control byte; percent-encode it",
				       url);
				return -1;
			}
		}
	} else if (*path && strcmp(path, "/") != 0) {
		seterr(err, errlen, "%s: a %s target has no path", url, watch_kind_name(t->kind));
		return -1;
	}
	return 0;
}

int watch_config_add_url(struct watch_config *c, const char *url, char *err, size_t errlen)
{
	struct watch_target *t = target_new(c, err, errlen);
	if (!t)
		return -1;
	if (set_url(t, url, err, errlen) < 0 || !(t->name = strdup(t->url))) {
		if (!t->name && !err[0])
			seterr(err, errlen, "out of memory");
		target_drop_last(c);
		return -1;
	}
	return 0;
}

/* ---- the config file ---- */

/* Where a config error is: "watch.json: targets[3] (api)". */
struct where {
	const char *file;
	size_t index;
	const char *name;
};

static void cerr(char *err, size_t errlen, const struct where *w, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void cerr(char *err, size_t errlen, const struct where *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->name)
		seterr(err, errlen, "%s: targets[%zu] (%s): %s", w->file, w->index, w->name, msg);
	else
		seterr(err, errlen, "%s: targets[%zu]: %s", w->file, w->index, msg);
}

/* A duration: a number of seconds or text ("500ms", "2m"). */
static int get_ms(const json_t *v, uint64_t min_ms, uint64_t max_ms, uint32_t *out, char *why, size_t whylen)
{
	uint64_t ns;
	char e[STRPARSE_ERR_MAX];
	if (json_is_number(v)) {
		double s = json_number_value(v);
		if (!(s * 1000 >= (double)min_ms && s * 1000 <= (double)max_ms)) {
			snprintf(why, whylen, "%g s is outside %llu ms-%llu s", s, (unsigned long long)min_ms,
			         (unsigned long long)max_ms / 1000);
			return -1;
		}
		*out = (uint32_t)(s * 1000 + 0.5);
		return 0;
	}
	if (!json_is_string(v)) {
		snprintf(why, whylen, "want a duration: seconds (2.5) or text (\"500ms\", \"2m\")");
		return -1;
	}
	if (strparse_duration(json_string_value(v), min_ms * STRPARSE_NS_PER_MS, max_ms * STRPARSE_NS_PER_MS,
	                      &ns, e, sizeof(e)) < 0) {
		snprintf(why, whylen, "\"%s\": %s", json_string_value(v), e);
		return -1;
	}
	*out = (uint32_t)(ns / STRPARSE_NS_PER_MS);
	return 0;
}

/* One accepted status: 200, "2xx", "200-399". */
static int get_status(const json_t *v, struct watch_range *r)
{
	if (json_is_integer(v)) {
		json_int_t s = json_integer_value(v);
		if (s < HTTP_STATUS_MIN || s > HTTP_STATUS_MAX)
			return -1;
		r->lo = r->hi = (uint16_t)s;
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] | 0x20) == 'x' && (s[2] | 0x20) == 'x') {
		r->lo = (uint16_t)((s[0] - '0') * 100);
		r->hi = (uint16_t)(r->lo + 99);
		return 0;
	}
	struct strparse_range rg;
	if (strparse_range(s, HTTP_STATUS_MIN, HTTP_STATUS_MAX, &rg, NULL, 0) < 0)
		return -1;
	r->lo = (uint16_t)rg.lo;
	r->hi = (uint16_t)rg.hi;
	return 0;
}

static char *get_text(const json_t *v, size_t max, size_t *len)
{
	if (!json_is_string(v) || json_string_length(v) > max)
		return NULL;
	if (len)
		*len = json_string_length(v);
	return dup_n(json_string_value(v), json_string_length(v));
}

/* The keys a target may have, and which kinds take them (bit per kind; all: ~0). */
#define ALL       0xffu
#define K(kind)   (1u << (kind))
#define SOCK_KIND (K(WATCH_TCP) | K(WATCH_UDP))
static const struct {
	const char *key;
	unsigned kinds;
} target_keys[] = {
        {"name", ALL},
        {"url", ALL},
        {"cmd", ALL},
        {"interval", ALL},
        {"timeout", ALL},
        {"retries", ALL},
        {"max_latency", ALL},
        {"status", K(WATCH_HTTP)},
        {"contains", K(WATCH_HTTP)},
        {"json", K(WATCH_HTTP)},
        {"send", SOCK_KIND},
        {"expect", SOCK_KIND},
        {"login", K(WATCH_FTP)},
        {"user", K(WATCH_FTP)},
        {"password", K(WATCH_FTP)},
};
#define NKEYS (sizeof(target_keys) / sizeof(target_keys[0]))

static int check_keys(json_t *o, enum watch_kind kind, const struct where *w, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		size_t i;
		for (i = 0; i < NKEYS && strcmp(key, target_keys[i].key); i++)
			;
		if (i == NKEYS) {
			cerr(err, errlen, w,
			     "unknown key \"%s\" (a target takes name, url or cmd, interval, timeout, "
			     "retries, "
			     "max_latency; http: status, contains, json; tcp/udp: send, expect; ftp: login, "
			     "user, "
			     "password)",
			     key);
			return -1;
		}
		if (!(target_keys[i].kinds & K(kind))) {
			cerr(err, errlen, w, "\"%s\" does not apply to a %s target", key,
			     watch_kind_name(kind));
			return -1;
		}
	}
	return 0;
}

static int set_cmd(struct watch_target *t, json_t *v, const struct where *w, char *err, size_t errlen)
{
	size_t n = json_is_array(v) ? json_array_size(v) : 1;
	if (!(json_is_string(v) && json_string_length(v)) && !(json_is_array(v) && n)) {
		cerr(err, errlen, w,
		     "\"cmd\" is a command line (run by /bin/sh -c) or a non-empty array of strings");
		return -1;
	}
	t->kind = WATCH_CMD;
	if (json_is_string(v)) {
		size_t ul = strlen("cmd:") + json_string_length(v) + 1;
		char *url = malloc(ul);
		if (!url) {
			cerr(err, errlen, w, "out of memory");
			return -1;
		}
		snprintf(url, ul, "cmd:%s", json_string_value(v));
		int rc = set_url(t, url, err, errlen);
		free(url);
		return rc;
	}
	t->argv = calloc(n + 1, sizeof(char *));
	size_t ul = sizeof("cmd:");
	for (size_t i = 0; t->argv && i < n; i++) {
		json_t *a = json_array_get(v, i);
		if (!(t->argv[i] = get_text(a, WATCH_URL_MAX, NULL))) {
			cerr(err, errlen, w, "cmd[%zu] must be a string of at most %d bytes", i,
			     WATCH_URL_MAX);
			return -1;
		}
		ul += strlen(t->argv[i]) + 1;
	}
	if (!t->argv || ul > WATCH_URL_MAX || !(t->url = malloc(ul))) {
		cerr(err, errlen, w,
		     t->argv && ul > WATCH_URL_MAX ? "the command is too long" : "out of memory");
		return -1;
	}
	size_t off = (size_t)snprintf(t->url, ul, "cmd:");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(t->url + off, ul - off, "%s%s", i ? " " : "", t->argv[i]);
	return 0;
}

static int parse_target(struct watch_config *c, json_t *o, size_t index, const char *file, char *err,
                        size_t errlen)
{
	struct where w = {file, index, NULL};
	char why[256];
	if (!json_is_object(o)) {
		cerr(err, errlen, &w, "a target is an object: {\"url\": \"http://127.0.0.1:3000/health\"}");
		return -1;
	}
	json_t *name = json_object_get(o, "name"), *url = json_object_get(o, "url"),
	       *cmd = json_object_get(o, "cmd");
	if (name && (!json_is_string(name) || !json_string_length(name) ||
	             json_string_length(name) > WATCH_NAME_MAX)) {
		cerr(err, errlen, &w, "\"name\" is a non-empty string of at most %d bytes", WATCH_NAME_MAX);
		return -1;
	}
	if (name)
		w.name = json_string_value(name);
	if (!url == !cmd) {
		cerr(err, errlen, &w, "give either \"url\" or \"cmd\"");
		return -1;
	}
	struct watch_target *t = target_new(c, err, errlen);
	if (!t)
		return -1;
	if (url) {
		if (!json_is_string(url)) {
			cerr(err, errlen, &w, "\"url\" is a string");
			return -1;
		}
		if (set_url(t, json_string_value(url), why, sizeof(why)) < 0) {
			cerr(err, errlen, &w, "%s", why);
			return -1;
		}
	} else if (set_cmd(t, cmd, &w, err, errlen) < 0) {
		return -1;
	}
	if (check_keys(o, t->kind, &w, err, errlen) < 0)
		return -1;
	if (!(t->name = strdup(name ? json_string_value(name) : t->url))) {
		cerr(err, errlen, &w, "out of memory");
		return -1;
	}
	json_t *v;
	if ((v = json_object_get(o, "interval")) &&
	    get_ms(v, WATCH_INTERVAL_MIN_MS, WATCH_INTERVAL_MAX_MS, &t->interval_ms, why, sizeof(why)) < 0) {
		cerr(err, errlen, &w, "interval: %s", why);
		return -1;
	}
	if ((v = json_object_get(o, "timeout")) &&
	    get_ms(v, WATCH_TIMEOUT_MIN_MS, WATCH_TIMEOUT_MAX_MS, &t->timeout_ms, why, sizeof(why)) < 0) {
		cerr(err, errlen, &w, "timeout: %s", why);
		return -1;
	}
	if ((v = json_object_get(o, "max_latency")) &&
	    get_ms(v, 1, WATCH_TIMEOUT_MAX_MS, &t->max_latency_ms, why, sizeof(why)) < 0) {
		cerr(err, errlen, &w, "max_latency: %s", why);
		return -1;
	}
	if ((v = json_object_get(o, "retries"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > WATCH_RETRIES_MAX) {
			cerr(err, errlen, &w, "retries is a whole number 0-%d", WATCH_RETRIES_MAX);
			return -1;
		}
		t->retries = (int)json_integer_value(v);
	}
	if ((v = json_object_get(o, "status"))) {
		size_t n = json_is_array(v) ? json_array_size(v) : 1;
		if (!n || n > WATCH_STATUS_RANGES) {
			cerr(err, errlen, &w, "status takes 1-%d values", WATCH_STATUS_RANGES);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (get_status(json_is_array(v) ? json_array_get(v, i) : v, &t->status[i]) < 0) {
				cerr(err, errlen, &w,
				     "status: want a code (200), a class (\"2xx\") or a range (\"200-399\"), "
				     "or an array of them; codes are %d-%d",
				     HTTP_STATUS_MIN, HTTP_STATUS_MAX);
				return -1;
			}
		}
		t->nstatus = (unsigned)n;
	}
	if ((v = json_object_get(o, "contains")) && !(t->contains = get_text(v, WATCH_SEND_MAX, NULL))) {
		cerr(err, errlen, &w, "contains is a string of at most %d bytes", WATCH_SEND_MAX);
		return -1;
	}
	if ((v = json_object_get(o, "json"))) {
		json_t *path = json_object_get(v, "path"), *eq = json_object_get(v, "equals");
		if (!json_is_object(v) || !json_is_string(path) || json_object_size(v) != 1u + (eq != NULL)) {
			cerr(err, errlen, &w,
			     "json is {\"path\": \"status\", \"equals\": \"ok\"} (equals optional: "
			     "then the field must exist)");
			return -1;
		}
		t->json_path = get_text(path, WATCH_NAME_MAX, NULL);
		if (eq)
			t->json_equals = json_dumps(eq, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!t->json_path || (eq && !t->json_equals)) {
			cerr(err, errlen, &w, "out of memory");
			return -1;
		}
	}
	if ((v = json_object_get(o, "send")) && !(t->send = get_text(v, WATCH_SEND_MAX, &t->send_len))) {
		cerr(err, errlen, &w, "send is a string of at most %d bytes", WATCH_SEND_MAX);
		return -1;
	}
	if ((v = json_object_get(o, "expect")) &&
	    !(t->expect = get_text(v, WATCH_SEND_MAX, &t->expect_len))) {
		cerr(err, errlen, &w, "expect is a string of at most %d bytes", WATCH_SEND_MAX);
		return -1;
	}
	if ((v = json_object_get(o, "login"))) {
		if (!json_is_boolean(v)) {
			cerr(err, errlen, &w, "login is true or false");
			return -1;
		}
		t->login = json_is_true(v);
	}
	if ((v = json_object_get(o, "user"))) {
		free(t->user);
		if (!(t->user = get_text(v, WATCH_NAME_MAX, NULL))) {
			cerr(err, errlen, &w, "user is a string");
			return -1;
		}
	}
	if ((v = json_object_get(o, "password"))) {
		free(t->pass);
		if (!(t->pass = get_text(v, WATCH_NAME_MAX, NULL))) {
			cerr(err, errlen, &w, "password is a string");
			return -1;
		}
	}
	return 0;
}

int watch_config_parse(struct watch_config *c, const char *text, size_t len, const char *name, char *err,
                       size_t errlen)
{
	json_error_t e;
	if (jansson_need(err, errlen) < 0)
		return -1;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		seterr(err, errlen, "%s: malformed JSON at line %d, column %d: %s", name, e.line, e.column,
		       e.text);
		return -1;
	}
	int rc = -1;
	const char *key;
	json_t *v, *targets = json_object_get(root, "targets");
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "targets") != 0) {
			seterr(err, errlen,
			       "%s: unknown key \"%s\" at the top; the file is {\"targets\": [...]}", name,
			       key);
			goto out;
		}
	}
	if (!json_is_array(targets)) {
		seterr(err, errlen,
		       "%s: want an object with a \"targets\" array: {\"targets\": [{\"url\": "
		       "\"tcp://127.0.0.1:5432\"}]}",
		       name);
		goto out;
	}
	size_t start = c->ntargets;
	for (size_t i = 0; i < json_array_size(targets); i++) {
		if (parse_target(c, json_array_get(targets, i), i, name, err, errlen) < 0) {
			while (c->ntargets > start)
				target_drop_last(c);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int watch_config_need(char *err, size_t errlen)
{
	return jansson_need(err, errlen);
}

int watch_config_load(struct watch_config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f) {
		seterr(err, errlen, "--config %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > WATCH_CONFIG_MAX) {
		seterr(err, errlen, "--config %s: not a regular file of at most %u MiB", path,
		       WATCH_CONFIG_MAX >> 20);
		fclose(f);
		return -1;
	}
	char *text = malloc((size_t)st.st_size + 1);
	size_t n = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
	int rc = -1;
	if (!text)
		seterr(err, errlen, "--config %s: out of memory", path);
	else if (ferror(f))
		seterr(err, errlen, "--config %s: %s", path, strerror(errno));
	else
		rc = watch_config_parse(c, text, n, path, err, errlen);
	free(text);
	fclose(f);
	return rc;
}

/* ---- finishing: defaults, names, addresses ---- */

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return 1;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	const struct watch_target *x = *(struct watch_target *const *)a,
	                          *y = *(struct watch_target *const *)b;
	return strcmp(x->name, y->name);
}

/* Resolves t's host (a name only with allow_remote: looked up once, here) and applies
 * the loopback rule. Returns 0, or -1 with err. */
static int resolve(struct watch_target *t, int allow_remote, char *err, size_t errlen)
{
	if (!t->addrlen && allow_remote) {
		struct addrinfo hints = {.ai_socktype = t->kind == WATCH_UDP ? SOCK_DGRAM : SOCK_STREAM}, *ai;
		char port[8];
		snprintf(port, sizeof(port), "%u", t->port);
		int rc = getaddrinfo(t->host, port, &hints, &ai);
		if (rc != 0) {
			seterr(err, errlen, "%s: cannot resolve %s: %s", t->name, t->host, gai_strerror(rc));
			return -1;
		}
		memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
		t->addrlen = ai->ai_addrlen;
		freeaddrinfo(ai);
	}
	/* Without --allow-remote a name is refused before any lookup. */
	if (!allow_remote && (!t->addrlen || !net_is_loopback((struct sockaddr *)&t->addr))) {
		seterr(err, errlen,
		       "%s: %s is not a loopback address; only 127.0.0.0/8, ::1 and localhost are watched "
		       "unless --allow-remote",
		       t->name, t->host);
		return -1;
	}
	return 0;
}

int watch_config_finish(struct watch_config *c, char *err, size_t errlen)
{
	if (!c->ntargets) {
		seterr(err, errlen,
		       "no targets: give URLs (loopkit watch tcp://127.0.0.1:5432) or --config FILE");
		return -1;
	}
	for (size_t i = 0; i < c->ntargets; i++) {
		struct watch_target *t = &c->targets[i];
		if (!t->interval_ms)
			t->interval_ms = c->interval_ms;
		if (!t->timeout_ms)
			t->timeout_ms = c->timeout_ms;
		if (t->retries < 0)
			t->retries = (int)c->retries;
		if (t->kind == WATCH_FTP && !t->user) {
			t->user = strdup(FTP_ANON_USER);
			if (!t->user) {
				seterr(err, errlen, "out of memory");
				return -1;
			}
		}
		if (t->kind == WATCH_FTP && !t->pass && !(t->pass = strdup(FTP_ANON_PASS))) {
			seterr(err, errlen, "out of memory");
			return -1;
		}
		if (t->kind == WATCH_FTP && (has_ctl(t->user) || has_ctl(t->pass))) {
			/* they go into USER and PASS lines: a CR or LF would add commands */
			seterr(err, errlen, "%s: the FTP user or password holds a control byte (CR, LF, ...)",
			       t->name);
			return -1;
		}
		if (t->kind != WATCH_CMD && resolve(t, c->allow_remote, err, errlen) < 0)
			return -1;
	}
	struct watch_target **byname = malloc(c->ntargets * sizeof(*byname));
	if (!byname) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->ntargets; i++)
		byname[i] = &c->targets[i];
	qsort(byname, c->ntargets, sizeof(*byname), cmp_name);
	int rc = 0;
	for (size_t i = 1; i < c->ntargets && !rc; i++) {
		if (!strcmp(byname[i - 1]->name, byname[i]->name)) {
			seterr(err, errlen,
			       "two targets named \"%s\"; give each its own \"name\" (the name keys its "
			       "history)",
			       byname[i]->name);
			rc = -1;
		}
	}
	free(byname);
	return rc;
}

int watch_db_default(char *out, size_t len, char *err, size_t errlen)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;
	/* XDG: a relative path in $XDG_STATE_HOME is invalid and is ignored. */
	if (state && state[0] == '/')
		n = snprintf(out, len, "%s/loopkit/watch.db", state);
	else if (home && home[0] == '/')
		n = snprintf(out, len, "%s/.local/state/loopkit/watch.db", home);
	else {
		seterr(err, errlen, "neither XDG_STATE_HOME nor HOME is set; give --db FILE");
		return -1;
	}
	if (n < 0 || (size_t)n >= len) {
		seterr(err, errlen, "the state directory's path is too long; give --db FILE");
		return -1;
	}
	return 0;
}
