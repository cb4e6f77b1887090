/* proto.c - FTP as a protocol on the shared port: its contexts behind struct proto_ops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftp/ftp.h"

struct ftp_proto_ctx {
	struct ftp_ctx x;
	struct ftp_config cfg; /* FTP's settings with the site's facts filled in */
	struct proto_hooks hooks;
};

void ftp_config_default(struct ftp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->idle_timeout_ms = FTP_DEFAULT_IDLE_TIMEOUT_S * 1000;
	cfg->data_timeout_ms = FTP_DEFAULT_DATA_TIMEOUT_S * 1000;
}

static void idle_cb(void *arg)
{
	struct ftp_proto_ctx *p = arg;
	if (p->hooks.idle)
		p->hooks.idle(p->hooks.arg);
}

static void *ftp_ctx_new(struct loop *l, const struct proto_site *site, const void *cfg,
                         const struct proto_hooks *hooks, char *err, size_t errlen)
{
	struct ftp_proto_ctx *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->cfg = *(const struct ftp_config *)cfg;
	p->cfg.write = site->write;
	p->cfg.user = site->user;
	p->cfg.pass = site->pass;
	p->cfg.log = site->log == ACCESSLOG_COMMON ? 0 : site->log == ACCESSLOG_JSON ? 1 : 2;
	p->hooks = *hooks;
	p->x.loop = l;
	p->x.root = site->root;
	p->x.cfg = &p->cfg;
	p->x.nconns = site->nconns;
	p->x.log = site->log_sink;
	p->x.on_idle = idle_cb;
	p->x.arg = p;
	return p;
}

static int ftp_start(void *ctx, int fd, const struct proto_peer *peer)
{
	struct ftp_proto_ctx *p = ctx;
	return ftp_session_start(&p->x, fd, &peer->addr);
}

static void ftp_stop(void *ctx)
{
	struct ftp_proto_ctx *p = ctx;
	ftp_ctx_stop(&p->x);
	if (!p->x.nsessions)
		idle_cb(p);
}

static void ftp_close_all(void *ctx)
{
	ftp_ctx_close_all(&((struct ftp_proto_ctx *)ctx)->x);
}

static unsigned ftp_count(const void *ctx)
{
	return ((const struct ftp_proto_ctx *)ctx)->x.nsessions;
}

static void ftp_free(void *ctx)
{
	struct ftp_proto_ctx *p = ctx;
	ftp_ctx_close_all(&p->x);
	free(p);
}

const struct proto_ops ftp_proto_ops = {
        .name = "ftp",
        .ctx_new = ftp_ctx_new,
        .start = ftp_start,
        .stop = ftp_stop,
        .close_all = ftp_close_all,
        .count = ftp_count,
        .ctx_free = ftp_free,
};
