/* server.c - the serve layer: configuration, protocols, worker threads, signals, grace. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dirsnap.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/login.h"
#include "core/net.h"
#include "core/nettle_lib.h"
#include "core/procfs.h"
#include "serve/internal.h"

void serve_config_default(struct serve_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->root = ".";
	net_parse_addr("127.0.0.1", NET_HOME_PORT, &cfg->addr, &cfg->addrlen);
	cfg->threads = (int)procfs_cpus();
	cfg->log = ACCESSLOG_COMMON;
	cfg->max_conns = SERVE_DEFAULT_MAX_CONNS;
	cfg->max_body = (uint64_t)SERVE_DEFAULT_MAX_BODY_GIB << 30;
	cfg->grace_ms = SERVE_DEFAULT_GRACE_S * 1000;
	cfg->proto_http = cfg->proto_ftp = 1;
	cfg->sniff_ms = SERVE_SNIFF_MS_DEFAULT;
	http_config_default(&cfg->http);
	ftp_config_default(&cfg->ftp);
}

uint16_t serve_port(const struct serve_server *s)
{
	return s->port;
}

/* ---- stopping ---- */

static unsigned worker_busy(const struct serve_worker *w)
{
	unsigned n = w->nsniff;
	for (int i = 0; i < w->srv->nproto; i++)
		if (w->ctx[i])
			n += w->srv->proto[i]->count(w->ctx[i]);
	return n;
}

/* A stopping worker ends its loop once idle (or past its grace time); the first, which
 * reads the signals, only after every other thread's loop has ended: until then a
 * second Ctrl-C must still be heard. */
void serve_worker_check_idle(struct serve_worker *w)
{
	if (!w->stopping || (!w->grace_over && worker_busy(w)))
		return;
	if (w->id == 0 && atomic_load(&w->srv->nlive) > 1)
		return; /* woken again as each of the others ends */
	loop_stop(w->loop);
}

static void proto_idle_cb(void *arg)
{
	serve_worker_check_idle(arg);
}

static void proto_note_cb(void *arg, const struct proto_peer *peer, enum proto_note note)
{
	struct serve_worker *w = arg;
	sniff_note(w->srv, peer, note);
}

static void grace_cb(struct loop *l, struct loop_timer *t)
{
	struct serve_worker *w = t->data;
	atomic_fetch_add(&w->srv->grace_cut, worker_busy(w));
	sniff_close_all(w);
	for (int i = 0; i < w->srv->nproto; i++)
		w->srv->proto[i]->close_all(w->ctx[i]);
	w->grace_over = 1;
	serve_worker_check_idle(w);
}

static void worker_stop(struct loop *l, void *data)
{
	struct serve_worker *w = data;
	if (w->stopping) {
		serve_worker_check_idle(w); /* another thread has ended */
		return;
	}
	w->stopping = 1;
	serve_listen_stop(w);
	loop_timer_stop(l, &w->trim_timer);
	/* Silent connections have not asked for anything: they go now. */
	sniff_close_all(w);
	for (int i = 0; i < w->srv->nproto; i++)
		w->srv->proto[i]->stop(w->ctx[i]);
	if (worker_busy(w))
		loop_timer_start(l, &w->grace_timer, w->srv->cfg.grace_ms);
	serve_worker_check_idle(w);
}

static void signal_cb(struct loop *l, int signo, void *data)
{
	struct serve_server *s = data;
	char ms[32];
	if (signo == SIGHUP) {
		/* As nginx: reopen the log (logrotate renamed the file), go on. */
		int err = log_sink_reopen(&s->log);
		if (err)
			log_msg("SIGHUP: cannot reopen the access log %s (%s); still serving, to the old "
			        "file",
			        s->log.path, strerror(err));
		else
			log_msg("SIGHUP: access log reopened; still serving");
		return;
	}
	if (++s->signals > 1) {
		/* A second Ctrl-C: the user does not want to wait for the grace time. Uploads
		 * in flight leave nothing behind (unnamed temporary files). */
		log_msg("%s again: exiting now", signo == SIGINT ? "interrupted" : "terminated");
		_exit(128 + signo);
	}
	atomic_store(&s->stopping, 1);
	/* The listener stops at once (shutdown on a listening socket turns it back into
	 * an unbound one, safely for the threads still watching it): new clients are
	 * refused instead of waiting in the backlog until we exit. */
	shutdown(s->listen_fd, SHUT_RD);
	for (int i = 0; i < s->nworkers; i++)
		loop_wake(s->workers[i]->loop);
	log_msg("%s: finishing in-flight requests (at most %s; Ctrl-C again to exit now)",
	        signo == SIGINT ? "interrupted" : "terminated", lk_ms_text(s->cfg.grace_ms, ms, sizeof(ms)));
}

static void *worker_main(void *arg)
{
	struct serve_worker *w = arg;
	if (loop_run(w->loop) < 0)
		log_msg("event loop of thread %d failed: %s", w->id, strerror(errno));
	if (w->id != 0) {
		atomic_fetch_sub(&w->srv->nlive, 1);
		if (atomic_load(&w->srv->stopping))
			loop_wake(w->srv->workers[0]->loop);
	}
	return NULL;
}

/* ---- setup ---- */

static void worker_free(struct serve_worker *w)
{
	if (!w)
		return;
	sniff_close_all(w);
	for (int i = 0; i < w->srv->nproto; i++)
		if (w->ctx[i])
			w->srv->proto[i]->ctx_free(w->ctx[i]);
	/* Posted lookup answers still run here (and free their records). */
	loop_free(w->loop);
	free(w);
}

static struct serve_worker *worker_new(struct serve_server *s, int id, char *err, size_t errlen)
{
	struct serve_worker *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->srv = s;
	w->id = id;
	w->prompt_us = SERVE_PROMPT_US;
	loop_timer_init(&w->grace_timer, grace_cb, w);
	loop_timer_init(&w->trim_timer, serve_trim_cb, w);
	w->loop = loop_new(err, errlen);
	if (!w->loop) {
		free(w);
		return NULL;
	}
	struct proto_hooks hooks = {proto_idle_cb, proto_note_cb, w};
	for (int i = 0; i < s->nproto; i++) {
		w->ctx[i] = s->proto[i]->ctx_new(w->loop, &s->site, s->proto_cfg[i], &hooks, err, errlen);
		if (!w->ctx[i]) {
			worker_free(w);
			return NULL;
		}
	}
	if (loop_wake_init(w->loop, worker_stop, w) < 0 || serve_listen_start(w) < 0) {
		snprintf(err, errlen, "event loop setup: %s", strerror(errno));
		worker_free(w);
		return NULL;
	}
	return w;
}

struct serve_server *serve_new(const struct serve_config *cfg, char *err, size_t errlen,
                               struct serve_bind_err *be)
{
	struct serve_server *s = calloc(1, sizeof(*s));
	be->eno = 0;
	be->addr = cfg->addr;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Signals are read from a signalfd by the first loop: blocked here, before any
	 * thread starts, so that every thread inherits the mask and none is killed. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	s->cfg = *cfg;
	s->listen_fd = s->twin_fd = -1;
	s->root.fd = -1;
	log_sink_open(&s->log);
	if (cfg->root) {
		if (fsroot_init(&s->root, cfg->root, err, errlen) < 0)
			goto fail;
		s->root.dotfiles = cfg->dotfiles;
		s->root.follow_links = cfg->follow_symlinks;
		s->site.root = &s->root;
		/* One cache of directory snapshots for every listing, HTTP and FTP, every
		 * thread: a crowd listing one large directory shares one copy. */
		if (!(s->site.dirs = dirsnap_cache_new(DIRSNAP_MEM_MAX, DIRSNAP_MAX_ENTRIES))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	s->site.write = cfg->write;
	if (cfg->user && nettle_need(err, errlen) < 0) /* the login gate's digests */
		goto fail;
	if (cfg->user && !(s->site.login = login_gate_new(cfg->user, cfg->pass))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->site.max_body = cfg->max_body;
	s->site.max_conns = cfg->max_conns;
	s->site.nconns = &s->nconns;
	s->site.mem = &s->http_mem;
	s->site.copy_mem = &s->copy_mem;
	s->site.log = cfg->log;
	s->site.log_sink = &s->log;
	s->http_idx = s->ftp_idx = -1;
	if (cfg->proto_http) {
		s->http_idx = s->nproto;
		s->proto[s->nproto] = &http_proto_ops;
		s->proto_cfg[s->nproto++] = &s->cfg.http;
	}
	if (cfg->proto_ftp) {
		s->ftp_idx = s->nproto;
		s->proto[s->nproto] = &ftp_proto_ops;
		s->proto_cfg[s->nproto++] = &s->cfg.ftp;
	}
	if (serve_listen_open(s, &be->addr, err, errlen) < 0) {
		be->eno = errno;
		goto fail;
	}
	net_addr_str((struct sockaddr *)&cfg->addr, s->host, sizeof(s->host));
	snprintf(s->cfg.http.host, sizeof(s->cfg.http.host), "%s", s->host);
	s->cfg.http.port = s->port;
	if (cfg->proto_ftp && serve_pasv_lock(s, err, errlen) < 0)
		goto fail;
	if (cfg->proto_ftp && cfg->proto_http && !(s->peers = procpeer_new(err, errlen)))
		goto fail;
	s->nworkers = cfg->threads > 0 ? cfg->threads : 1;
	s->workers = calloc((size_t)s->nworkers, sizeof(*s->workers));
	if (!s->workers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < s->nworkers; i++)
		if (!(s->workers[i] = worker_new(s, i, err, errlen)))
			goto fail;
	return s;
fail:
	serve_free(s);
	return NULL;
}

int serve_run(struct serve_server *s)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (loop_signal_init(s->workers[0]->loop, &set, signal_cb, s) < 0) {
		log_msg("signalfd: %s", strerror(errno));
		return -1;
	}
	int started = 1;
	atomic_store(&s->nrunning, 1);
	atomic_store(&s->nlive, 1);
	for (int i = 1; i < s->nworkers; i++) {
		atomic_fetch_add(&s->nlive, 1); /* before it runs: it counts itself out */
		if (pthread_create(&s->workers[i]->thread, NULL, worker_main, s->workers[i]) != 0) {
			atomic_fetch_sub(&s->nlive, 1);
			/* A worker that never runs must not keep its place at the listener:
			 * connections would wait for it. Its loop stops watching, the others
			 * serve. */
			log_msg("cannot start thread %d (%s); serving with %d", i, strerror(errno), started);
			for (int k = i; k < s->nworkers; k++)
				serve_listen_stop(s->workers[k]);
			break;
		}
		started++;
		atomic_store(&s->nrunning, started);
	}
	worker_main(s->workers[0]);
	for (int i = 1; i < started; i++)
		pthread_join(s->workers[i]->thread, NULL);
	unsigned cut = atomic_load(&s->grace_cut);
	if (cut) {
		char ms[32];
		log_msg("the grace time (%s) ran out: %u connection%s still in flight closed; --grace "
		        "gives more",
		        lk_ms_text(s->cfg.grace_ms, ms, sizeof(ms)), cut, cut == 1 ? "" : "s");
	}
	/* Threads that never started were never stopped: their loops hold nothing but
	 * idle contexts, freed with the server. */
	return 0;
}

void serve_free(struct serve_server *s)
{
	if (!s)
		return;
	/* The lookup thread first: after it, no answer can be posted to a loop. */
	procpeer_free(s->peers);
	for (int i = 0; s->workers && i < s->nworkers; i++)
		worker_free(s->workers[i]);
	free(s->workers);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->twin_fd >= 0)
		close(s->twin_fd);
	for (int i = 0; i < s->npasv_locks; i++)
		close(s->pasv_locks[i]);
	fsroot_close(&s->root);
	if (s->site.dirs)
		dirsnap_cache_free(s->site.dirs);
	login_gate_free(s->site.login);
	unsigned long dropped = atomic_load(&s->log.dropped);
	if (dropped)
		log_msg("the access log fell behind: %lu bytes of it were dropped", dropped);
	log_sink_close(&s->log);
	free(s);
}
