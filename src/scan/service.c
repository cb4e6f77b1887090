/* service.c - service detection: the greeting, then safe probes, then what the named service tells about
 * itself. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/net.h"
#include "scan/conn.h"
#include "scan/match.h"
#include "scan/scan.h"

/* ---- one connection ---- */

static uint64_t now_ms(void)
{
	return loop_clock_us() / 1000;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return 0;
		struct pollfd p = {.fd = fd, .events = ev};
		int rc = poll(&p, 1, (int)(deadline - now));
		if (rc < 0 && errno == EINTR)
			continue;
		return rc;
	}
}

int scan_conn_open(const struct scan_config *cfg, uint16_t port, struct scan_conn *c)
{
	struct sockaddr_storage ss = cfg->addr;

	c->n = 0;
	c->eof = c->timedout = 0;
	c->b[0] = '\0';
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	net_ss_set_port(&ss, port);
	if (connect(c->fd, (struct sockaddr *)&ss, cfg->addrlen) == 0)
		return 0;
	if (errno == EINPROGRESS && wait_fd(c->fd, POLLOUT, now_ms() + cfg->connect_ms) > 0) {
		int e = 0;
		socklen_t len = sizeof(e);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
			return 0;
	}
	scan_conn_close(c);
	return -1;
}

int scan_conn_send(struct scan_conn *c, const void *p, size_t n, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;
	const char *q = p;
	while (n) {
		ssize_t k = send(c->fd, q, n, MSG_NOSIGNAL);
		if (k > 0) {
			q += k;
			n -= (size_t)k;
		} else if (k < 0 && errno == EINTR) {
			continue;
		} else if (k < 0 && errno == EAGAIN) {
			if (wait_fd(c->fd, POLLOUT, deadline) <= 0)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Reads on after what c already holds (see scan_conn_read). */
static size_t read_more(struct scan_conn *c, scan_complete_fn done, void *arg, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;

	c->timedout = 0;
	while (c->fd >= 0 && !c->eof && c->n < SCAN_READ_MAX) {
		ssize_t k = recv(c->fd, c->b + c->n, SCAN_READ_MAX - c->n, 0);
		if (k > 0) {
			c->n += (size_t)k;
			c->b[c->n] = '\0';
			if (done && done(c->b, c->n, arg))
				break;
		} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			c->eof = 1;
		} else if (errno == EAGAIN && wait_fd(c->fd, POLLIN, deadline) <= 0) {
			c->timedout = 1;
			break;
		}
	}
	return c->n;
}

size_t scan_conn_read(struct scan_conn *c, scan_complete_fn done, void *arg, unsigned ms)
{
	c->n = 0;
	c->b[0] = '\0';
	return read_more(c, done, arg, ms);
}

void scan_conn_close(struct scan_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int scan_ftp_reply_complete(const char *b, size_t n, void *arg)
{
	return scan_probe_complete(PROBE_NULL, b, n);
}

static int probe_done(const char *b, size_t n, void *arg)
{
	return scan_probe_complete(*(const enum scan_probe_id *)arg, b, n);
}

static int http_done(const char *b, size_t n, void *arg)
{
	return scan_probe_complete(PROBE_HTTP, b, n);
}

int scan_http_request(const struct scan_config *cfg, uint16_t port, const char *method, const char *path,
                      const char *host_hdr, const char *extra, struct scan_conn *c)
{
	char req[1024], host[96];
	int v6 = cfg->addr.ss_family == AF_INET6;

	if (!host_hdr) {
		snprintf(host, sizeof(host), "%s%s%s:%u", v6 ? "[" : "", cfg->host, v6 ? "]" : "", port);
		host_hdr = host;
	}
	int k = snprintf(req, sizeof(req),
	                 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loopkit-scan/" LOOPKIT_VERSION
	                 "\r\nAccept: */*\r\n%sConnection: close\r\n\r\n",
	                 method, path, host_hdr, extra ? extra : "");
	if (k <= 0 || (size_t)k >= sizeof(req) || scan_conn_open(cfg, port, c) < 0)
		return 0;
	int st = 0;
	if (scan_conn_send(c, req, (size_t)k, cfg->probe_ms) == 0) {
		scan_conn_read(c, http_done, NULL, cfg->probe_ms);
		st = scan_http_status(c->b, c->n);
	}
	scan_conn_close(c);
	return st;
}

/* ---- what a named service tells about itself ---- */

#define SETF(field, ...) snprintf(field, sizeof(field), __VA_ARGS__)

/* HTTP applications found by one more GET, tried in order when GET / did not name
 * the application. hint: a Location or Server fragment GET / must show first (NULL:
 * always tried). */
struct http_app_row {
	const char *path;
	const char *body_token; /* the answer must hold this */
	int app;
	const char *product;
	const char *version_key; /* JSON member with the version */
	const char *hint;
};

static const struct http_app_row http_apps[] = {
        {"/json/version", "webSocketDebuggerUrl", SCAN_APP_DEVTOOLS, "Chrome DevTools", "Browser", NULL},
        {"/version", "\"ApiVersion\"", SCAN_APP_DOCKER, "Docker Engine API", "Version", NULL},
        {"/api", "\"version\"", SCAN_APP_JUPYTER, "Jupyter", "version", "jupyter"},
        {NULL, NULL, 0, NULL, NULL, NULL},
};

/* loopkit's verbs, told apart by an endpoint only that verb has. */
struct loopkit_verb_row {
	const char *path;
	const char *product;
};

static const struct loopkit_verb_row loopkit_verbs[] = {
        {"/_/health", "loopkit serve"},
        {"/proxies", "loopkit proxy"},
        {"/api/checks", "loopkit watch"},
        {NULL, NULL},
};

static int has(const char *b, size_t n, const char *tok)
{
	size_t k = strlen(tok);
	return k <= n && memmem(b, n, tok, k) != NULL;
}

static void http_details(const struct scan_config *cfg, uint16_t port, struct scan_service *svc,
                         const struct scan_conn *first)
{
	struct scan_conn c;
	size_t blen = 0;
	const char *body = scan_http_body(first->b, first->n, &blen);
	char hints[512] = "", v[sizeof(svc->version)];

	if (svc->http_status >= 200 && svc->http_status < 300)
		SETF(svc->http_path, "/");
	if (body && scan_match_elastic(body, blen, svc))
		return;
	if (svc->app == SCAN_APP_LOOPKIT) {
		for (const struct loopkit_verb_row *r = loopkit_verbs; r->path; r++) {
			int st = scan_http_request(cfg, port, "GET", r->path, NULL, NULL, &c);
			char server[64] = "";
			scan_http_header(c.b, c.n, "server", server, sizeof(server));
			if (st == 200 && strncmp(server, "loopkit", 7) == 0) {
				SETF(svc->product, "%s", r->product);
				if (!svc->http_path[0])
					SETF(svc->http_path, "%s", r->path);
				break;
			}
		}
		return;
	}
	if (svc->app)
		return;
	scan_http_header(first->b, first->n, "location", hints, sizeof(hints) / 2);
	scan_http_header(first->b, first->n, "server", hints + strlen(hints), sizeof(hints) / 2);
	if (body)
		strncat(hints, body, blen < 120 ? blen : 120);
	for (const struct http_app_row *r = http_apps; r->path; r++) {
		if (r->hint && !strcasestr(hints, r->hint) && !strcasestr(hints, "tornado"))
			continue;
		int st = scan_http_request(cfg, port, "GET", r->path, NULL, NULL, &c);
		const char *b = scan_http_body(c.b, c.n, &blen);
		if (st != 200 || !b || !has(b, blen, r->body_token))
			continue;
		svc->app = r->app;
		SETF(svc->product, "%s", r->product);
		SETF(svc->http_path, "%s", r->path);
		if (scan_json_str(b, blen, r->version_key, v, sizeof(v))) {
			const char *slash = strchr(v, '/'); /* "HeadlessChrome/120.0.6099.224" */
			SETF(svc->version, "%s", slash ? slash + 1 : v);
		}
		break;
	}
	switch (svc->app) {
	case SCAN_APP_DEVTOOLS:
		svc->noauth = 1;
		SETF(svc->noauth_evidence, "GET /json/version answered 200 with a webSocketDebuggerUrl: "
		                           "the browser can be driven with no credentials");
		break;
	case SCAN_APP_DOCKER:
		svc->noauth = 1;
		SETF(svc->noauth_evidence, "GET /version answered 200 with the engine's ApiVersion: "
		                           "the Docker API takes commands with no credentials");
		break;
	case SCAN_APP_JUPYTER: {
		int st = scan_http_request(cfg, port, "GET", "/api/kernels", NULL, NULL, &c);
		if (st == 200) {
			svc->noauth = 1;
			SETF(svc->noauth_evidence, "GET /api/kernels answered 200 without a token: "
			                           "anyone local can run code");
		} else {
			SETF(svc->info, "token required (GET /api/kernels: %d)", st);
		}
		break;
	}
	default: break;
	}
}

static int line_done(const char *b, size_t n, void *arg)
{
	return scan_probe_complete(PROBE_REDIS, b, n);
}

static void redis_details(const struct scan_config *cfg, uint16_t port, struct scan_service *svc)
{
	struct scan_conn c;
	if (scan_conn_open(cfg, port, &c) < 0)
		return;
	if (scan_conn_send(&c, "PING\r\n", 6, cfg->probe_ms) == 0 &&
	    scan_conn_read(&c, line_done, NULL, cfg->probe_ms) > 0) {
		if (strncmp(c.b, "+PONG", 5) == 0) {
			svc->noauth = 1;
			SETF(svc->noauth_evidence, "PING answered +PONG with no AUTH: every command is open");
			if (scan_conn_send(&c, "INFO server\r\n", 13, cfg->probe_ms) == 0 &&
			    scan_conn_read(&c, line_done, NULL, cfg->probe_ms) > 0) {
				const char *v = strstr(c.b, "redis_version:");
				if (v) {
					v += 14;
					size_t k = strcspn(v, "\r\n");
					SETF(svc->version, "%.*s", (int)(k < 31 ? k : 31), v);
				}
			}
		} else if (strncmp(c.b, "-NOAUTH", 7) == 0) {
			SETF(svc->info, "password required (NOAUTH)");
		} else if (strncmp(c.b, "-DENIED", 7) == 0) {
			SETF(svc->info, "protected mode");
		}
	}
	scan_conn_close(&c);
}

static void memcached_details(const struct scan_config *cfg, uint16_t port, struct scan_service *svc)
{
	struct scan_conn c;
	if (scan_conn_open(cfg, port, &c) < 0)
		return;
	if (scan_conn_send(&c, "version\r\n", 9, cfg->probe_ms) == 0 &&
	    scan_conn_read(&c, line_done, NULL, cfg->probe_ms) > 0) {
		if (strncmp(c.b, "VERSION ", 8) == 0) {
			size_t k = strcspn(c.b + 8, "\r\n");
			SETF(svc->version, "%.*s", (int)(k < 31 ? k : 31), c.b + 8);
			svc->noauth = 1;
			SETF(svc->noauth_evidence, "'version' answered with no authentication: every "
			                           "get and set is open");
		} else {
			SETF(svc->info, "authentication required");
		}
	}
	scan_conn_close(&c);
}

static void details(const struct scan_config *cfg, uint16_t port, struct scan_service *svc,
                    const struct scan_conn *answer)
{
	struct scan_conn c;
	if (svc->app == SCAN_APP_LOOPKIT && !svc->http_status) {
		/* loopkit serve greeted us as FTP: its HTTP side answers when we speak first,
		 * and is examined as any HTTP server's (the audit's HTTP checks need it). */
		svc->http_status = scan_http_request(cfg, port, "GET", "/", NULL, NULL, &c);
		if (svc->http_status)
			http_details(cfg, port, svc, &c);
	} else if (strcmp(svc->name, "http") == 0) {
		http_details(cfg, port, svc, answer);
	} else if (svc->app == SCAN_APP_REDIS) {
		redis_details(cfg, port, svc);
	} else if (svc->app == SCAN_APP_MEMCACHED) {
		memcached_details(cfg, port, svc);
	}
}

/* The binary probes, sent at once on connections of their own once the port has
 * stayed silent to the greeting wait and to HTTP: each server answers the one it
 * speaks, or closes; a silent port costs one probe wait, not one per probe. */
static int binary_probes(const struct scan_config *cfg, uint16_t port, struct scan_service *svc)
{
	enum { FIRST = PROBE_TLS, N = PROBE_COUNT - PROBE_TLS };
	struct scan_conn *c = malloc(N * sizeof(*c));
	struct pollfd pf[N];
	int v6 = cfg->addr.ss_family == AF_INET6, matched = 0;
	uint64_t deadline;

	if (!c)
		return 0;
	for (int i = 0; i < N; i++) {
		char req[512];
		memset(&c[i], 0, sizeof(c[i]));
		c[i].fd = -1;
		size_t len = scan_probe_request((enum scan_probe_id)(FIRST + i), cfg->host, v6, port, req,
		                                sizeof(req));
		if (len && scan_conn_open(cfg, port, &c[i]) == 0 &&
		    scan_conn_send(&c[i], req, len, cfg->probe_ms) < 0)
			scan_conn_close(&c[i]);
	}
	deadline = now_ms() + cfg->probe_ms;
	int hit = -1; /* the first probe whose complete answer names the service */
	while (hit < 0) {
		int live = 0;
		for (int i = 0; i < N; i++) {
			pf[i].fd = c[i].fd;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
			live += c[i].fd >= 0;
		}
		uint64_t now = now_ms();
		if (!live || now >= deadline)
			break;
		if (poll(pf, N, (int)(deadline - now)) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < N; i++) {
			if (c[i].fd < 0 || !pf[i].revents)
				continue;
			ssize_t k = recv(c[i].fd, c[i].b + c[i].n, SCAN_READ_MAX - c[i].n, MSG_DONTWAIT);
			if (k > 0) {
				c[i].n += (size_t)k;
				c[i].b[c[i].n] = '\0';
			}
			enum scan_probe_id id = (enum scan_probe_id)(FIRST + i);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR) ||
			    c[i].n >= SCAN_READ_MAX || probe_done(c[i].b, c[i].n, &id)) {
				scan_conn_close(&c[i]);
				/* Answered: no need to wait out the probes this server ignores
				 * (Redis holds a TLS hello open until the probe wait ends). */
				if (hit < 0 && c[i].n && scan_match(id, c[i].b, c[i].n, svc))
					hit = i;
			}
		}
	}
	if (hit >= 0) {
		matched = 1;
		details(cfg, port, svc, &c[hit]);
	}
	for (int i = 0; i < N && !matched; i++) {
		if (c[i].n && scan_match((enum scan_probe_id)(FIRST + i), c[i].b, c[i].n, svc)) {
			matched = 1;
			details(cfg, port, svc, &c[i]);
		}
	}
	for (int i = 0; i < N; i++)
		scan_conn_close(&c[i]);
	free(c);
	return matched;
}

void scan_service_detect(const struct scan_config *cfg, uint16_t port, struct scan_service *svc)
{
	struct scan_conn *c = malloc(sizeof(*c));
	int v6 = cfg->addr.ss_family == AF_INET6;
	char req[512];

	memset(svc, 0, sizeof(*svc));
	SETF(svc->name, "unknown");
	if (!c)
		return;
	if (scan_conn_open(cfg, port, c) < 0) {
		SETF(svc->info, "no longer accepts connections");
		free(c);
		return;
	}
	enum scan_probe_id id = PROBE_NULL;
	scan_conn_read(c, probe_done, &id, cfg->banner_ms);
	if (c->n) {
		scan_first_line(c->b, c->n, svc->banner, sizeof(svc->banner));
		if (!c->eof && !scan_probe_complete(PROBE_NULL, c->b, c->n))
			read_more(c, probe_done, &id, cfg->probe_ms); /* a greeting under way */
		if (scan_match(PROBE_NULL, c->b, c->n, svc))
			details(cfg, port, svc, c);
		else
			SETF(svc->info, "speaks first; not recognised");
		scan_conn_close(c);
		free(c);
		return;
	}
	if (c->eof) {
		/* accepts, then closes without a word: nmap's "tcpwrapped" */
		SETF(svc->name, "tcpwrapped");
		SETF(svc->how, "banner");
		scan_conn_close(c);
		free(c);
		return;
	}
	/* Silent: HTTP on the same connection (the most common service by far), then the
	 * binary probes. */
	id = PROBE_HTTP;
	size_t len = scan_probe_request(PROBE_HTTP, cfg->host, v6, port, req, sizeof(req));
	if (scan_conn_send(c, req, len, cfg->probe_ms) == 0)
		scan_conn_read(c, probe_done, &id, cfg->probe_ms);
	scan_conn_close(c);
	if (c->n && scan_match(PROBE_HTTP, c->b, c->n, svc)) {
		details(cfg, port, svc, c);
	} else if (!binary_probes(cfg, port, svc)) {
		if (c->n)
			scan_first_line(c->b, c->n, svc->banner, sizeof(svc->banner));
		SETF(svc->info, "%s", c->n ? "answers probes; not recognised" : "silent to every probe");
	}
	free(c);
}
