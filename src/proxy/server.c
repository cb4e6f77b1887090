/* server.c - the proxy server: named proxies, their listeners and toxics, config files, the summary. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/net.h"
#include "core/rand.h"
#include "core/strparse.h"
#include "diag/portlease.h"
#include "diag/reach.h"
#include "proxy/internal.h"
#include "proxy/jin.h"

uint64_t proxy_rand(struct proxy_server *s)
{
	return rand_splitmix64(&s->rng);
}

double proxy_rand01(struct proxy_server *s)
{
	return (double)(proxy_rand(s) >> 11) / 9007199254740992.0;
}

int proxy_pipe_get(struct proxy_server *s, struct ppipe *p)
{
	if (s->npipes) {
		*p = s->pipes[--s->npipes];
		return 0;
	}
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	/* Best effort: past the user's pipe-user-pages-soft, or without the right to grow
	 * pipes, the size they have works too. */
	int cap = fcntl(p->fd[1], F_SETPIPE_SZ, PROXY_BULK);
	if (cap < 0)
		cap = fcntl(p->fd[1], F_GETPIPE_SZ);
	p->cap = cap > 0 ? (uint32_t)cap : 4096;
	return 0;
}

void proxy_pipe_put(struct proxy_server *s, struct ppipe *p)
{
	if (p->fd[0] < 0)
		return;
	if (s->npipes < PROXY_PIPE_POOL) {
		s->pipes[s->npipes++] = *p;
	} else {
		close(p->fd[0]);
		close(p->fd[1]);
	}
}

void proxy_pipe_drain(struct proxy_server *s)
{
	while (s->npipes) {
		s->npipes--;
		close(s->pipes[s->npipes].fd[0]);
		close(s->pipes[s->npipes].fd[1]);
	}
}

struct proxy *proxy_find(struct proxy_server *s, const char *name)
{
	for (size_t i = 0; i < s->nproxies; i++)
		if (!strcmp(s->proxies[i]->name, name))
			return s->proxies[i];
	return NULL;
}

/* Splits an address as strparse_hostport does, a bare port meaning 127.0.0.1 (where the
 * listen default already is); why names the address (role: "listen", "upstream"). */
static int split_hostport(const char *role, const char *text, char *host, size_t hostlen, uint16_t *port,
                          char *why, size_t whylen)
{
	char err[STRPARSE_ERR_MAX];
	if (strparse_hostport(text, PROXY_BARE_HOST, host, hostlen, port, err, sizeof err) < 0) {
		snprintf(why, whylen, "%s %s: %s", role, text, err);
		return -1;
	}
	return 0;
}

/* The upstream as the API and the output show it: as given, but a bare port as
 * PROXY_BARE_HOST:PORT (what it means). */
static void upstream_text(char out[PROXY_ADDR_MAX], const char *text)
{
	snprintf(out, PROXY_ADDR_MAX, strchr(text, ':') ? "%s" : PROXY_BARE_HOST ":%s", text);
}

/* The proxy of this server that listens on ss (a port 0 matches none), or NULL. */
static const struct proxy *proxy_listening_on(const struct proxy_server *s, const struct sockaddr_storage *ss)
{
	for (size_t i = 0; i < s->nproxies; i++) {
		const struct proxy *p = s->proxies[i];
		struct sockaddr_storage have;
		socklen_t hl = sizeof have;
		if (p->lfd >= 0 && getsockname(p->lfd, (struct sockaddr *)&have, &hl) == 0 &&
		    net_ss_same(&have, ss))
			return p;
	}
	return NULL;
}

/* A listen host meaning every interface: loopkit binds 127.0.0.1 for it unless --public. */
static int wildcard_host(const char *host)
{
	return !host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
}

/* Opens a listener for "host:port". */
static enum lk_err open_listener(struct proxy_server *s, const char *text, int *fd, int *twin, char *bound,
                                 char *why, size_t whylen)
{
	char host[PROXY_ADDR_MAX], msg[REACH_MSG_MAX];
	uint16_t port;
	struct sockaddr_storage ss;
	socklen_t len;
	if (!text[0])
		text = "127.0.0.1:0";
	if (split_hostport("listen", text, host, sizeof host, &port, why, whylen) < 0)
		return LK_E_P_BAD_ADDR;
	if (!s->o.public && wildcard_host(host)) {
		/* toxiproxy configs often say [::]:PORT or 0.0.0.0:PORT; loopback is what
		 * loopkit listens on unless told --public. 127.0.0.1 for [::] too: toxiproxy's
		 * [::] takes IPv4 as well, and its clients connect to 127.0.0.1 or localhost
		 * (which falls back to it); ::1 alone left them all refused. */
		log_msg("listen %s: binding 127.0.0.1 instead (add --public to listen on every interface)",
		        text);
		snprintf(host, sizeof host, "127.0.0.1");
	}
	int rc = reach_check_listen(NULL, host, port, s->o.public, "the proxy", &ss, &len, msg, sizeof msg);
	if (rc < 0) {
		snprintf(why, whylen, "listen %s: %s", text, msg);
		return LK_E_P_BAD_ADDR;
	}
	char err[256];
	struct sockaddr_storage failed;
	int l = portlease_listen_loopback(&ss, len, 1024, twin, &failed, err, sizeof err);
	uint16_t want = net_ss_port(&ss);
	if (l < 0 && errno == EADDRINUSE && net_ss_same(&failed, &ss)) {
		const struct proxy *o = proxy_listening_on(s, &ss);
		if (o) { /* not "held by loopkit (pid ours)": say which of ours */
			snprintf(why, whylen, "listen %s: proxy '%s' listens there", text, o->name);
			return LK_E_P_LISTEN;
		}
	}
	if (l < 0) {
		int eno = errno;
		char fix[PROXY_ADDR_MAX + 16];
		snprintf(fix, sizeof fix, ss.ss_family == AF_INET6 ? "[%s]:0" : "%s:0", host);
		reach_bind_explain((struct sockaddr *)&failed, want, eno, err, fix, msg, sizeof msg);
		snprintf(why, whylen, "listen %s: %s", text, msg);
		return LK_E_P_LISTEN;
	}
	int one = 1;
	setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* accepted sockets inherit it */
	if (net_is_loopback((struct sockaddr *)&ss)) /* ... and this (clients of --public may be remote) */
		net_relay_rcvbuf(l);
	char a[64];
	net_addr_str((struct sockaddr *)&ss, a, sizeof a);
	snprintf(bound, PROXY_ADDR_MAX, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, net_local_port(l));
	*fd = l;
	return LK_E_OK;
}

static enum lk_err resolve_upstream(struct proxy_server *s, const char *text, struct sockaddr_storage *ss,
                                    socklen_t *len, char *why, size_t whylen)
{
	char host[PROXY_ADDR_MAX], ps[8];
	uint16_t port;
	if (split_hostport("upstream", text, host, sizeof host, &port, why, whylen) < 0)
		return LK_E_P_BAD_ADDR;
	if (!port) {
		snprintf(why, whylen, "upstream %s: port 0 cannot be connected to", text);
		return LK_E_P_BAD_ADDR;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
	snprintf(ps, sizeof ps, "%u", port);
	int e = getaddrinfo(host[0] ? host : "127.0.0.1", ps, &hints, &res);
	if (e || !res) {
		snprintf(why, whylen, "upstream %s: %s", text, e ? gai_strerror(e) : "no address");
		return LK_E_P_BAD_ADDR;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	char what[300];
	snprintf(what, sizeof what, "upstream %.200s", text);
	if (net_loopback_only((struct sockaddr *)ss, s->o.allow_remote, what, why, whylen) < 0)
		return LK_E_P_BAD_ADDR;
	return LK_E_OK;
}

static void accept_cb(void *arg, int fd, const struct sockaddr_storage *peer)
{
	relay_accept(arg, fd, peer);
}

static void proxy_stop_listen(struct proxy *p);

/* Listens on listen: the new listener is opened first, so a failure changes nothing;
 * an old listener is then closed (connections made through it stay). */
static enum lk_err proxy_start(struct proxy *p, const char *listen, char *why, size_t whylen)
{
	int fd, twin;
	char bound[PROXY_ADDR_MAX];
	enum lk_err e = open_listener(p->srv, listen, &fd, &twin, bound, why, whylen);
	if (e != LK_E_OK)
		return e;
	proxy_stop_listen(p);
	if (acceptor_start(&p->acc, p->srv->loop, fd, 0, 64, accept_cb, p) < 0) {
		snprintf(why, whylen, "listen %s: %s", bound, strerror(errno));
		close(fd);
		if (twin >= 0)
			close(twin);
		p->enabled = 0;
		return LK_E_P_LISTEN;
	}
	p->lfd = fd;
	p->twin = twin;
	snprintf(p->listen, sizeof p->listen, "%s", bound);
	p->enabled = 1;
	return LK_E_OK;
}

static void proxy_stop_listen(struct proxy *p)
{
	if (p->lfd < 0)
		return;
	acceptor_stop(&p->acc);
	close(p->lfd);
	p->lfd = -1;
	if (p->twin >= 0)
		close(p->twin);
	p->twin = -1;
}

/* A disabled proxy's listen as enabling it will bind it (0.0.0.0 or [::] is loopback
 * unless --public), so that GET /proxies shows an address that holds. */
static void listen_text(struct proxy *p, const char *listen)
{
	char host[PROXY_ADDR_MAX], bad[PROXY_ERR_MAX];
	uint16_t port;
	snprintf(p->listen, sizeof p->listen, "%s", listen);
	if (!p->srv->o.public && listen[0] &&
	    split_hostport("listen", listen, host, sizeof host, &port, bad, sizeof bad) == 0 &&
	    wildcard_host(host))
		snprintf(p->listen, sizeof p->listen, "127.0.0.1:%u", port);
}

enum lk_err proxy_create(struct proxy_server *s, const char *name, const char *listen, const char *upstream,
                         int enabled, struct proxy **out, char *why, size_t whylen)
{
	if (proxy_name_check("proxy", name, why, whylen) < 0)
		return LK_E_P_BAD_NAME;
	if (proxy_find(s, name))
		return LK_E_P_EXISTS;
	if (s->nproxies == PROXY_MAX_PROXIES) {
		snprintf(why, whylen, "at most %d proxies", PROXY_MAX_PROXIES);
		return LK_E_P_LIMIT;
	}
	if (strlen(listen) >= PROXY_ADDR_MAX || strlen(upstream) >= PROXY_ADDR_MAX) {
		snprintf(why, whylen, "an address is at most %d bytes", PROXY_ADDR_MAX - 1);
		return LK_E_P_BAD_ADDR;
	}
	struct proxy *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, whylen, "out of memory");
		return LK_E_P_LIMIT;
	}
	p->srv = s;
	p->lfd = p->twin = -1;
	snprintf(p->name, sizeof p->name, "%s", name);
	upstream_text(p->upstream, upstream);
	listen_text(p, listen);
	enum lk_err e = resolve_upstream(s, upstream, &p->up_addr, &p->up_len, why, whylen);
	if (e == LK_E_OK && enabled)
		e = proxy_start(p, listen, why, whylen);
	if (e != LK_E_OK) {
		free(p);
		return e;
	}
	s->proxies[s->nproxies++] = p;
	if (out)
		*out = p;
	return LK_E_OK;
}

/* Does text name the address p listens on now? (port 0 asks for a new one) */
static int same_listen(const struct proxy *p, const char *text)
{
	char host[PROXY_ADDR_MAX], why[PROXY_ERR_MAX], msg[REACH_MSG_MAX];
	uint16_t port;
	struct sockaddr_storage want, have;
	socklen_t wl, hl = sizeof have;
	if (!strcmp(text, p->listen))
		return 1;
	return p->lfd >= 0 &&
	       split_hostport("listen", text, host, sizeof host, &port, why, sizeof why) == 0 && port &&
	       reach_check_listen(NULL, host, port, 1, "the proxy", &want, &wl, msg, sizeof msg) == 0 &&
	       getsockname(p->lfd, (struct sockaddr *)&have, &hl) == 0 && net_ss_same(&want, &have);
}

enum lk_err proxy_update(struct proxy *p, const char *listen, const char *upstream, int enabled, char *why,
                         size_t whylen)
{
	struct proxy_server *s = p->srv;
	char up[PROXY_ADDR_MAX];
	if (upstream)
		upstream_text(up, upstream);
	if (upstream && strcmp(up, p->upstream)) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (strlen(upstream) >= PROXY_ADDR_MAX) {
			snprintf(why, whylen, "an address is at most %d bytes", PROXY_ADDR_MAX - 1);
			return LK_E_P_BAD_ADDR;
		}
		enum lk_err e = resolve_upstream(s, upstream, &ss, &len, why, whylen);
		if (e != LK_E_OK)
			return e;
		/* Live connections keep their upstream; new ones go to the new one. */
		p->up_addr = ss;
		p->up_len = len;
		upstream_text(p->upstream, upstream);
	}
	if (!enabled) {
		if (listen && strlen(listen) < PROXY_ADDR_MAX)
			listen_text(p, listen);
		if (p->enabled) {
			proxy_stop_listen(p);
			relay_close_all(p); /* as toxiproxy: a disabled proxy drops its clients */
			p->enabled = 0;
		}
		return LK_E_OK;
	}
	if (!listen)
		listen = p->listen;
	if (p->enabled && !strcmp(listen, p->listen))
		return LK_E_OK;
	if (p->enabled && same_listen(p, listen))
		return LK_E_OK; /* "localhost:15023" is the 127.0.0.1:15023 it has */
	return proxy_start(p, listen, why, whylen);
}

/* Adds what a removed toxic did to p's tallies (see struct toxic_tally). */
static void tally_add(struct proxy *p, const char *name, const struct toxic_type *type, enum proxy_dir dir,
                      uint64_t applied)
{
	size_t named = 0;
	for (size_t i = 0; i < p->ngone; i++) {
		struct toxic_tally *g = &p->gone[i];
		if (g->type == type && g->dir == dir && !strcmp(g->name, name)) {
			g->applied += applied;
			return;
		}
		named += g->name[0] != 0;
	}
	if (name[0] && named >= PROXY_TALLY_NAMES) {
		tally_add(p, "", type, dir, applied);
		return;
	}
	struct toxic_tally *n = realloc(p->gone, (p->ngone + 1) * sizeof(*n));
	if (!n)
		return; /* out of memory: the summary lacks this one */
	p->gone = n;
	n += p->ngone++;
	snprintf(n->name, sizeof n->name, "%s", name);
	n->type = type;
	n->dir = dir;
	n->applied = applied;
}

static void proxy_free(struct proxy *p)
{
	for (size_t i = 0; i < p->ntoxics; i++)
		free(p->toxics[i]);
	free(p->gone);
	free(p);
}

/* Keeps a deleted proxy's totals for the summary: added to an earlier one of its name,
 * else listed on their own while there is room, else only counted. */
static void proxy_retire(struct proxy *p)
{
	struct proxy_server *s = p->srv;
	for (size_t i = 0; i < p->ntoxics; i++) {
		tally_add(p, p->toxics[i]->name, p->toxics[i]->type, p->toxics[i]->dir,
		          p->toxics[i]->applied);
		free(p->toxics[i]);
	}
	p->ntoxics = 0;
	for (size_t i = 0; i < s->ndeleted; i++) {
		struct proxy *d = s->deleted[i];
		if (strcmp(d->name, p->name))
			continue;
		memcpy(d->listen, p->listen, sizeof d->listen); /* the latest addresses */
		memcpy(d->upstream, p->upstream, sizeof d->upstream);
		d->conns_total += p->conns_total;
		d->refused += p->refused;
		for (int k = 0; k < 2; k++) {
			d->bytes[k] += p->bytes[k];
			d->rbytes[k] += p->rbytes[k];
		}
		for (size_t k = 0; k < p->ngone; k++)
			tally_add(d, p->gone[k].name, p->gone[k].type, p->gone[k].dir, p->gone[k].applied);
		proxy_free(p);
		return;
	}
	if (s->ndeleted < PROXY_MAX_PROXIES) {
		s->deleted[s->ndeleted++] = p;
		return;
	}
	s->deleted_unlisted++;
	proxy_free(p);
}

void proxy_delete(struct proxy *p)
{
	struct proxy_server *s = p->srv;
	proxy_stop_listen(p);
	relay_close_all(p);
	for (size_t i = 0; i < s->nproxies; i++) {
		if (s->proxies[i] == p) {
			memmove(&s->proxies[i], &s->proxies[i + 1],
			        (s->nproxies - i - 1) * sizeof(s->proxies[0]));
			s->nproxies--;
			break;
		}
	}
	proxy_retire(p);
}

struct toxic *proxy_toxic_find(struct proxy *p, const char *name)
{
	for (size_t i = 0; i < p->ntoxics; i++)
		if (!strcmp(p->toxics[i]->name, name))
			return p->toxics[i];
	return NULL;
}

enum lk_err proxy_toxic_add(struct proxy *p, const struct toxic *t, struct toxic **out)
{
	if (proxy_toxic_find(p, t->name))
		return LK_E_P_TOXIC_EXISTS;
	if (p->ntoxics == PROXY_MAX_TOXICS)
		return LK_E_P_LIMIT;
	struct toxic *n = malloc(sizeof(*n));
	if (!n)
		return LK_E_P_LIMIT;
	*n = *t;
	n->id = ++p->srv->next_toxic_id;
	n->seen = n->applied = 0;
	p->toxics[p->ntoxics++] = n;
	relay_toxics_changed(p, n);
	if (out)
		*out = n;
	return LK_E_OK;
}

void proxy_toxic_remove(struct proxy *p, struct toxic *t)
{
	for (size_t i = 0; i < p->ntoxics; i++) {
		if (p->toxics[i] == t) {
			memmove(&p->toxics[i], &p->toxics[i + 1],
			        (p->ntoxics - i - 1) * sizeof(p->toxics[0]));
			p->ntoxics--;
			break;
		}
	}
	relay_toxics_changed(p, NULL);
	tally_add(p, t->name, t->type, t->dir, t->applied);
	free(t);
}

void proxy_toxic_changed(struct proxy *p, struct toxic *t)
{
	relay_toxics_changed(p, t);
}

void proxy_json(struct json *j, const struct proxy *p)
{
	json_obj_begin(j);
	json_kstr(j, "name", p->name);
	json_kstr(j, "listen", p->listen);
	json_kstr(j, "upstream", p->upstream);
	json_kbool(j, "enabled", p->enabled);
	json_key(j, "toxics");
	json_arr_begin(j);
	/* toxiproxy lists upstream toxics first, then downstream ones. */
	for (int d = PROXY_UP; d <= PROXY_DOWN; d++)
		for (size_t i = 0; i < p->ntoxics; i++)
			if ((int)p->toxics[i]->dir == d)
				toxic_json(j, p->toxics[i]);
	json_arr_end(j);
	json_obj_end(j);
}

static const char *jstr(const struct jin *o, const char *k)
{
	return jin_str(jin_get(o, k));
}

enum lk_err proxy_populate(struct proxy_server *s, const void *arrp, struct proxy **made, size_t *nmade,
                           char *why, size_t whylen)
{
	const struct jin *arr = arrp;
	*nmade = 0;
	if (!jin_is_array(arr)) {
		snprintf(why, whylen, "a JSON array of proxies is expected");
		return LK_E_P_BAD_BODY;
	}
	size_t n = jin_len(arr);
	if (n > PROXY_MAX_PROXIES) {
		snprintf(why, whylen, "at most %d proxies", PROXY_MAX_PROXIES);
		return LK_E_P_LIMIT;
	}
	/* Everything is checked before anything is made, as toxiproxy does. */
	for (size_t i = 0; i < n; i++) {
		const struct jin *o = jin_at(arr, i);
		const struct jin *en = jin_get(o, "enabled");
		if (!jin_is_object(o)) {
			snprintf(why, whylen, "proxy %zu is not an object", i + 1);
			return LK_E_P_BAD_BODY;
		}
		if (!jstr(o, "name") || !jstr(o, "name")[0]) {
			snprintf(why, whylen, "name at proxy %zu", i + 1);
			return LK_E_P_MISSING_FIELD;
		}
		if (!jstr(o, "upstream") || !jstr(o, "upstream")[0]) {
			snprintf(why, whylen, "upstream at proxy %zu", i + 1);
			return LK_E_P_MISSING_FIELD;
		}
		if ((jin_get(o, "listen") && !jstr(o, "listen")) || (en && !jin_is_bool(en))) {
			snprintf(why, whylen, "proxy %zu: listen is a string and enabled a boolean", i + 1);
			return LK_E_P_BAD_BODY;
		}
		/* toxiproxy lets the last of two entries of one name replace the first; so do
		 * we, but say so: in a config file it is most likely a slip */
		for (size_t j = 0; j < i; j++)
			if (!strcmp(jstr(jin_at(arr, j), "name"), jstr(o, "name")))
				log_msg("proxies %zu and %zu are both named '%s': the later one is used",
				        j + 1, i + 1, jstr(o, "name"));
	}
	for (size_t i = 0; i < n; i++) {
		const struct jin *o = jin_at(arr, i);
		const char *name = jstr(o, "name"), *listen = jstr(o, "listen"), *up = jstr(o, "upstream");
		const struct jin *en = jin_get(o, "enabled");
		int enabled = en ? jin_is_true(en) : 1;
		int later = 0; /* an entry of the same name comes later: that one is made, this never
		                  (making it and then deleting it left made[] pointing at freed memory) */
		for (size_t k = i + 1; k < n && !later; k++)
			later = !strcmp(jstr(jin_at(arr, k), "name"), name);
		if (later)
			continue;
		if (!listen)
			listen = "";
		struct proxy *p = proxy_find(s, name);
		char uptext[PROXY_ADDR_MAX];
		upstream_text(uptext, up);
		if (p && !strcmp(p->upstream, uptext) && (!strcmp(p->listen, listen) || !listen[0])) {
			made[(*nmade)++] = p; /* the same proxy: left as it is */
			continue;
		}
		if (p)
			proxy_delete(p);
		enum lk_err e = proxy_create(s, name, listen, up, enabled, &p, why, whylen);
		if (e != LK_E_OK)
			return e;
		made[(*nmade)++] = p;
	}
	return LK_E_OK;
}

/* ---- the server ---- */

static void on_signal(struct loop *l, int signo, void *data)
{
	loop_stop(l);
}

static int load_config(struct proxy_server *s, const char *path, char *err, size_t errlen)
{
	char why[PROXY_ERR_MAX];
	struct jin *arr = jin_load(path, PROXY_CONFIG_MAX, why, sizeof why);
	if (!arr) {
		snprintf(err, errlen, "--config %s: %s", path, why);
		return -1;
	}
	struct proxy *made[PROXY_MAX_PROXIES];
	size_t nmade;
	enum lk_err e = proxy_populate(s, arr, made, &nmade, why, sizeof why);
	jin_free(arr);
	if (e != LK_E_OK) {
		char msg[PROXY_ERR_MAX];
		lk_text_fill(msg, sizeof msg, lk_error(e)->msg, why);
		snprintf(err, errlen, "--config %s: %s", path, msg);
		return -1;
	}
	return 0;
}

/* The command-line proxy's flags, checked before anything is opened or bound (a usage
 * error is not hidden behind a busy port): --name, --preset and each --toxic, parsed into
 * *out (malloc'd; the preset's toxics first). Returns 0, or -1 with the reason in err. */
static int cli_toxics(const struct proxy_opts *o, struct toxic **out, size_t *n, char *err, size_t errlen)
{
	char why[PROXY_ERR_MAX];
	*out = NULL;
	*n = 0;
	if (!o->upstream) {
		if (!o->ntoxics && !o->preset)
			return 0;
		snprintf(err, errlen, "--toxic and --preset need an UPSTREAM to act on");
		return -1;
	}
	if (o->name && proxy_name_check("proxy", o->name, why, sizeof why) < 0) {
		snprintf(err, errlen, "--name %s: %s", o->name, why);
		return -1;
	}
	const struct proxy_preset *pr = o->preset ? proxy_preset_find(o->preset) : NULL;
	if (o->preset && !pr) {
		snprintf(err, errlen, "--preset %s: unknown; the presets are %s", o->preset,
		         proxy_preset_names());
		return -1;
	}
	struct toxic *t = calloc(PROXY_PRESET_TOXICS + o->ntoxics + 1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t k = pr ? proxy_preset_toxics(pr, t) : 0;
	for (size_t i = 0; i < o->ntoxics; i++, k++) {
		if (toxic_from_spec(&t[k], o->toxics[i], why, sizeof why) < 0) {
			snprintf(err, errlen, "--toxic %s: %s", o->toxics[i], why);
			goto fail;
		}
		for (size_t j = 0; j < k; j++) {
			if (!strcmp(t[j].name, t[k].name)) {
				snprintf(err, errlen,
				         "--toxic %s: a toxic named %s is already there (name this one "
				         "TYPE:NAME, e.g. latency:extra,...)",
				         o->toxics[i], t[k].name);
				goto fail;
			}
		}
	}
	if (k > PROXY_MAX_TOXICS) {
		snprintf(err, errlen, "at most %d toxics on a proxy", PROXY_MAX_TOXICS);
		goto fail;
	}
	*out = t;
	*n = k;
	return 0;
fail:
	free(t);
	return -1;
}

struct proxy_server *proxy_server_new(const struct proxy_opts *o, char *err, size_t errlen, int *code)
{
	struct toxic *given;
	size_t ngiven;
	*code = 2;
	if (cli_toxics(o, &given, &ngiven, err, errlen) < 0)
		return NULL;
	struct proxy_server *s = calloc(1, sizeof(*s));
	*code = 1;
	if (s && !(s->bulk = malloc(PROXY_BULK))) {
		free(s);
		s = NULL;
	}
	if (!s) {
		snprintf(err, errlen, "out of memory");
		free(given);
		return NULL;
	}
	s->o = *o;
	s->api_fd = s->api_twin = -1;
	s->rng = o->seed ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ loop_clock_us();
	s->loop = loop_new(err, errlen);
	if (!s->loop) {
		free(s->bulk);
		free(s);
		free(given);
		return NULL;
	}
	loop_set_busy_poll(s->loop, o->busy_poll_us);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	loop_signal_init(s->loop, &set, on_signal, s);
	log_sink_open(&s->sink);
	s->rec = record_open(o, err, errlen);
	if ((o->record || o->pcap || o->hexdump) && !s->rec)
		goto fail;
	int rc = o->api && o->api[0] ? proxy_api_start(s, err, errlen) : 0;
	if (rc < 0) {
		*code = rc == -2 ? 2 : 1;
		goto fail;
	}
	if (o->config && jin_need(err, errlen) < 0) { /* not the config's fault: exit 1 */
		*code = 1;
		goto fail;
	}
	if (o->config && load_config(s, o->config, err, errlen) < 0) {
		*code = 2;
		goto fail;
	}
	for (size_t i = 0; i < o->nmore; i++) {
		char name[PROXY_NAME_MAX], why[PROXY_ERR_MAX], msg[PROXY_ERR_MAX];
		const char *spec = o->more[i], *eq = strchr(spec, '='), *comma = eq ? strchr(eq, ',') : NULL;
		char listen[PROXY_ADDR_MAX] = "127.0.0.1:0";
		if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof name ||
		    (comma && (size_t)(comma - eq - 1) >= sizeof listen)) {
			snprintf(err, errlen, "--proxy %s: want NAME=[LISTEN,]UPSTREAM", spec);
			*code = 2;
			goto fail;
		}
		snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
		if (comma)
			snprintf(listen, sizeof listen, "%.*s", (int)(comma - eq - 1), eq + 1);
		enum lk_err e =
		        proxy_create(s, name, listen, comma ? comma + 1 : eq + 1, 1, NULL, why, sizeof why);
		if (e != LK_E_OK) {
			lk_text_fill(msg, sizeof msg, lk_error(e)->msg, why);
			snprintf(err, errlen, "--proxy %s: %s", spec, msg);
			*code = e == LK_E_P_LISTEN ? 1 : 2;
			goto fail;
		}
	}
	if (o->upstream) {
		char why[PROXY_ERR_MAX], msg[PROXY_ERR_MAX];
		struct proxy *p;
		enum lk_err e = proxy_create(s, o->name, o->listen ? o->listen : "127.0.0.1:0", o->upstream,
		                             1, &p, why, sizeof why);
		if (e != LK_E_OK) {
			lk_text_fill(msg, sizeof msg, lk_error(e)->msg, why);
			snprintf(err, errlen, "%s",
			         e == LK_E_P_EXISTS ? "--name: a proxy of that name is in --config" : msg);
			*code = e == LK_E_P_LISTEN ? 1 : 2;
			goto fail;
		}
		for (size_t i = 0; i < ngiven; i++)
			proxy_toxic_add(p, &given[i], NULL); /* checked: names differ, they fit */
	}
	free(given);
	return s;
fail:
	free(given);
	proxy_server_free(s);
	return NULL;
}

void proxy_server_describe(const struct proxy_server *s, int json, struct buf *out)
{
	if (json) {
		struct json j;
		json_init(&j, out, 0);
		json_obj_begin(&j);
		json_key(&j, "proxies");
		json_arr_begin(&j);
		for (size_t i = 0; i < s->nproxies; i++) {
			const struct proxy *p = s->proxies[i];
			json_obj_begin(&j);
			json_kstr(&j, "name", p->name);
			json_kstr(&j, "listen", p->listen);
			json_kstr(&j, "upstream", p->upstream);
			json_kbool(&j, "enabled", p->enabled);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_key(&j, "api");
		if (s->api_fd >= 0) {
			char url[sizeof s->api_addr + 16];
			snprintf(url, sizeof url, "http://%s/", s->api_addr);
			json_str(&j, url);
		} else {
			json_null(&j);
		}
		json_obj_end(&j);
		buf_puts(out, "\n");
		return;
	}
	for (size_t i = 0; i < s->nproxies; i++) {
		const struct proxy *p = s->proxies[i];
		buf_printf(out, "%s  %s -> %s%s\n", p->name, p->listen, p->upstream,
		           p->enabled ? "" : "  (disabled)");
	}
	if (s->api_fd >= 0)
		buf_printf(out, "api  http://%s/\n", s->api_addr);
}

int proxy_server_run(struct proxy_server *s)
{
	return loop_run(s->loop);
}

/* "s" for a count other than one: "1 connection", "2 connections". */
static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

/* One toxic's line of the summary: live (removed 0) or a removed one's tally. */
static void summary_toxic(struct json *j, int json, struct buf *out, const char *name,
                          const struct toxic_type *type, enum proxy_dir dir, uint64_t applied, int removed)
{
	if (!json) {
		buf_printf(out, "  %s%s (%s, %s%s): applied %llu time%s\n", name[0] ? "toxic " : "toxics",
		           name[0] ? name : " under other names", type->name, proxy_stream_name(dir),
		           removed ? ", removed" : "", (unsigned long long)applied, plural(applied));
		return;
	}
	json_obj_begin(j);
	json_key(j, "name");
	if (name[0])
		json_str(j, name);
	else
		json_null(j); /* past PROXY_TALLY_NAMES names */
	json_kstr(j, "type", type->name);
	json_kstr(j, "stream", proxy_stream_name(dir));
	json_kuint(j, "applied", applied);
	json_kbool(j, "removed", removed);
	json_obj_end(j);
}

static void summary_proxy(struct json *j, int json, struct buf *out, const struct proxy *p, int deleted)
{
	if (!json) {
		buf_printf(out, "%s%s: %llu connection%s (%llu refused), %llu bytes up, %llu bytes down\n",
		           p->name, deleted ? " (deleted)" : "", (unsigned long long)p->conns_total,
		           plural(p->conns_total), (unsigned long long)p->refused,
		           (unsigned long long)p->bytes[PROXY_UP], (unsigned long long)p->bytes[PROXY_DOWN]);
	} else {
		json_obj_begin(j);
		json_kstr(j, "name", p->name);
		json_kstr(j, "listen", p->listen);
		json_kstr(j, "upstream", p->upstream);
		json_kbool(j, "deleted", deleted);
		json_kuint(j, "connections", p->conns_total);
		json_kuint(j, "refused", p->refused);
		json_kuint(j, "bytes_up", p->bytes[PROXY_UP]);
		json_kuint(j, "bytes_down", p->bytes[PROXY_DOWN]);
		json_key(j, "toxics");
		json_arr_begin(j);
	}
	for (size_t k = 0; k < p->ntoxics; k++)
		summary_toxic(j, json, out, p->toxics[k]->name, p->toxics[k]->type, p->toxics[k]->dir,
		              p->toxics[k]->applied, 0);
	for (size_t k = 0; k < p->ngone; k++)
		summary_toxic(j, json, out, p->gone[k].name, p->gone[k].type, p->gone[k].dir,
		              p->gone[k].applied, 1);
	if (json) {
		json_arr_end(j);
		json_obj_end(j);
	}
}

void proxy_server_summary(const struct proxy_server *s, int json, struct buf *out)
{
	struct json j;
	json_init(&j, out, 0); /* one line: stdout holds JSON lines */
	if (json) {
		json_obj_begin(&j);
		json_key(&j, "proxies");
		json_arr_begin(&j);
	}
	for (size_t i = 0; i < s->nproxies; i++)
		summary_proxy(&j, json, out, s->proxies[i], 0);
	for (size_t i = 0; i < s->ndeleted; i++)
		summary_proxy(&j, json, out, s->deleted[i], 1);
	if (!json) {
		if (s->deleted_unlisted)
			buf_printf(out, "%llu more deleted prox%s, not listed\n",
			           (unsigned long long)s->deleted_unlisted,
			           s->deleted_unlisted == 1 ? "y" : "ies");
		return;
	}
	json_arr_end(&j);
	json_kuint(&j, "deleted_unlisted", s->deleted_unlisted);
	json_obj_end(&j);
	buf_puts(out, "\n");
}

void proxy_server_free(struct proxy_server *s)
{
	if (!s)
		return;
	while (s->nproxies)
		proxy_delete(s->proxies[s->nproxies - 1]);
	for (size_t i = 0; i < s->ndeleted; i++)
		proxy_free(s->deleted[i]);
	proxy_api_stop(s);
	proxy_pipe_drain(s);
	free(s->bulk);
	record_close(s->rec);
	if (s->loop)
		loop_free(s->loop);
	log_sink_close(&s->sink);
	free(s);
}
