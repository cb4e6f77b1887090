/* audit.c - the audit: listeners from the kernel, each identified, then a table of harmless checks. */
#include "scan/audit.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/loop.h"
#include "core/net.h"
#include "core/sockdiag.h"
#include "scan/conn.h"
#include "scan/match.h"

/* clang-format off */
const struct audit_rule audit_rules[] = {
	{ "exposed", AUDIT_MEDIUM, "listening beyond loopback",
	  "The socket is bound to a wildcard or non-loopback address, so every network this machine joins (cafe Wi-Fi, a VPN, a container bridge) can connect to it, not only local programs.",
	  "bind it to 127.0.0.1 (or ::1), or put a firewall rule in front if the network must reach it" },
	{ "dns-rebinding", AUDIT_HIGH, "answers requests for any Host (DNS rebinding)",
	  "A web page on attacker.example can make its own name resolve to 127.0.0.1 and then read this server's answers as same-origin: the browser sends Host: attacker.example, and a server that answers anyway hands its data to the page (the webpack-dev-server, Vite and Jupyter CVEs).",
	  "accept only the Host names you serve (localhost, 127.0.0.1:PORT): e.g. nginx server_name plus a default server that returns 444, Vite server.allowedHosts, loopkit serve's default check" },
	{ "cors-credentials", AUDIT_HIGH, "CORS reflects any Origin with credentials",
	  "The server copies any Origin into Access-Control-Allow-Origin and adds Access-Control-Allow-Credentials: true, so every web page the user visits may read its answers with the user's cookies.",
	  "allow a fixed list of origins, and send Allow-Credentials only to those" },
	{ "private-network-access", AUDIT_MEDIUM, "private-network preflight answered for any origin",
	  "Chrome asks a local server before a public page may reach it (Access-Control-Request-Private-Network); this server says yes to any origin, which opens it to every page on the internet.",
	  "answer Access-Control-Allow-Private-Network only for origins you trust (loopkit serve: drop --cors, or name origins with --cors-origin)" },
	{ "redis-no-auth", AUDIT_HIGH, "Redis without a password",
	  "Any local process or user (and a container or VM sharing the host network) can read and write every key, and CONFIG SET/MODULE LOAD turn that into file writes and code execution.",
	  "set requirepass (or ACL users) in redis.conf, and keep bind 127.0.0.1 -::1 with protected-mode yes" },
	{ "memcached-no-auth", AUDIT_MEDIUM, "Memcached without authentication",
	  "Memcached has no access control by default: anyone who can connect can read, replace and flush every cached item (sessions, tokens).",
	  "bind it to a unix socket (-s) with tight permissions, or enable SASL (-S) or the text-protocol auth file (-Y)" },
	{ "docker-no-auth", AUDIT_CRITICAL, "Docker API over TCP without TLS",
	  "The Docker Engine API on a TCP port takes any command from any caller: starting a privileged container that mounts / is root on this machine.",
	  "use the unix socket /var/run/docker.sock only, or TLS with client certificates (dockerd --tlsverify)" },
	{ "devtools-no-auth", AUDIT_HIGH, "browser DevTools port open",
	  "The Chrome DevTools Protocol on this port lets any local process drive the browser: read cookies and pages of every site it is logged in to, and run script in them.",
	  "use --remote-debugging-pipe, or close the browser started with --remote-debugging-port when done" },
	{ "jupyter-no-auth", AUDIT_CRITICAL, "Jupyter without a token",
	  "The notebook server's API answers without a token, so any local process, and any web page that reaches it, can start a kernel and run code as you.",
	  "keep token or password authentication on (never --NotebookApp.token='' or --ServerApp.token='')" },
	{ "elasticsearch-no-auth", AUDIT_HIGH, "Elasticsearch without security",
	  "The cluster answers REST calls with no credentials: every index can be read, changed or deleted.",
	  "enable security (xpack.security.enabled: true) with passwords, or bind to a unix socket proxy" },
	{ "home-listing", AUDIT_HIGH, "directory listing of a home directory",
	  "The server lists a home directory (its .ssh, shell history, dotfiles): one request from any local program, or from a web page when the Host check is missing, reads keys and tokens.",
	  "serve a project directory, never $HOME, and hide dotfiles (loopkit serve hides them by default)" },
	{ "ftp-anonymous-write", AUDIT_HIGH, "FTP with anonymous write",
	  "Anyone may log in as anonymous and create, replace or rename files, which turns the server into a drop box for anything.",
	  "turn off anonymous write (vsftpd: anon_upload_enable=NO, anon_other_write_enable=NO; loopkit serve: no --write, or --user)" },
};
/* clang-format on */
const size_t audit_nrules = sizeof(audit_rules) / sizeof(audit_rules[0]);

enum rule_idx {
	R_EXPOSED,
	R_REBIND,
	R_CORS,
	R_PNA,
	R_REDIS,
	R_MEMCACHED,
	R_DOCKER,
	R_DEVTOOLS,
	R_JUPYTER,
	R_ELASTIC,
	R_HOME,
	R_FTP
};

static const char *const sev_names[AUDIT_SEV_COUNT] = {"low", "medium", "high", "critical"};

const char *audit_sev_name(enum audit_sev s)
{
	return s < AUDIT_SEV_COUNT ? sev_names[s] : "?";
}

int audit_sev_parse(const char *s)
{
	for (int i = 0; i < AUDIT_SEV_COUNT; i++)
		if (strcasecmp(s, sev_names[i]) == 0)
			return i;
	return -1;
}

void audit_config_default(struct audit_config *cfg)
{
	char err[64];
	memset(cfg, 0, sizeof(*cfg));
	scan_config_default(&cfg->scan);
	scan_ports_parse("1-65535", &cfg->ports, err, sizeof(err));
}

/* ---- pure helpers ---- */

static const char *const home_marks[] = {
        ".ssh",    ".bashrc",    ".profile",     ".bash_history",   ".gnupg",
        ".aws",    ".zshrc",     ".bash_logout", ".netrc",          ".kube",
        ".docker", ".gitconfig", ".zsh_history", ".python_history", NULL,
};

int audit_home_marks(const char *body, size_t n, char *found, size_t len)
{
	int count = 0;
	size_t used = 0;

	if (len)
		found[0] = '\0';
	for (int i = 0; home_marks[i]; i++) {
		/* a link (href=".ssh/", href=".bashrc") or a JSON listing's "name": ".ssh" */
		char pat[3][48];
		snprintf(pat[0], sizeof(pat[0]), "href=\"%s\"", home_marks[i]);
		snprintf(pat[1], sizeof(pat[1]), "href=\"%s/\"", home_marks[i]);
		snprintf(pat[2], sizeof(pat[2]), "\"%s\"", home_marks[i]);
		for (int k = 0; k < 3; k++) {
			if (memmem(body, n, pat[k], strlen(pat[k]))) {
				count++;
				int w = snprintf(found + used, len > used ? len - used : 0, "%s%s",
				                 used ? ", " : "", home_marks[i]);
				if (w > 0 && used + (size_t)w < len)
					used += (size_t)w;
				break;
			}
		}
	}
	return count;
}

int audit_mlst_writable(const char *reply, size_t n, char *perm, size_t len)
{
	const char *p = memmem(reply, n, "perm=", 5);
	if (len)
		perm[0] = '\0';
	if (!p)
		return 0;
	p += 5;
	size_t k = 0;
	while (p + k < reply + n && p[k] != ';' && p[k] != ' ' && p[k] != '\r' && p[k] != '\n')
		k++;
	snprintf(perm, len, "%.*s", (int)k, p);
	for (size_t i = 0; i < k; i++)
		if (strchr("cmaw", p[i]))
			return 1;
	return 0;
}

/* ---- the checks ---- */

struct audit_ctx {
	struct scan_config scfg; /* aimed at the target's loopback address */
	struct audit_target *t;
	struct audit_finding *out; /* room for audit_nrules findings */
	size_t nout;
};

#define EVIDENCE(ctx, ri, ...)                                             \
	do {                                                               \
		struct audit_finding *f_ = &(ctx)->out[(ctx)->nout++];     \
		f_->rule = &audit_rules[ri];                               \
		snprintf(f_->evidence, sizeof(f_->evidence), __VA_ARGS__); \
	} while (0)

static int is_http(const struct audit_target *t)
{
	return t->svc.http_status != 0;
}

static void check_exposed(struct audit_ctx *x)
{
	if (x->t->exposed)
		EVIDENCE(x, R_EXPOSED, "listening on %s", x->t->bound);
}

static void check_rebind(struct audit_ctx *x)
{
	struct scan_conn *c = malloc(sizeof(*c));
	if (!c || !is_http(x->t) || !x->t->svc.http_path[0]) {
		free(c);
		return;
	}
	int st = scan_http_request(&x->scfg, x->t->port, "GET", x->t->svc.http_path, AUDIT_ATTACKER_HOST,
	                           NULL, c);
	if (st >= 200 && st < 300)
		EVIDENCE(x, R_REBIND, "GET %s with Host: " AUDIT_ATTACKER_HOST " answered %d",
		         x->t->svc.http_path, st);
	free(c);
}

static void check_cors(struct audit_ctx *x)
{
	struct scan_conn *c = malloc(sizeof(*c));
	char acao[128] = "", acac[16] = "";
	if (!c || !is_http(x->t)) {
		free(c);
		return;
	}
	const char *path = x->t->svc.http_path[0] ? x->t->svc.http_path : "/";
	int st = scan_http_request(&x->scfg, x->t->port, "GET", path, NULL,
	                           "Origin: " AUDIT_ATTACKER_ORIGIN "\r\n", c);
	if (st && scan_http_header(c->b, c->n, "access-control-allow-origin", acao, sizeof(acao)) >= 0 &&
	    scan_http_header(c->b, c->n, "access-control-allow-credentials", acac, sizeof(acac)) >= 0 &&
	    strcmp(acao, AUDIT_ATTACKER_ORIGIN) == 0 && strcasecmp(acac, "true") == 0)
		EVIDENCE(x, R_CORS,
		         "GET %s with Origin: " AUDIT_ATTACKER_ORIGIN
		         " answered %d with Access-Control-Allow-Origin: %s "
		         "and Access-Control-Allow-Credentials: %s",
		         path, st, acao, acac);
	free(c);
}

static void check_pna(struct audit_ctx *x)
{
	struct scan_conn *c = malloc(sizeof(*c));
	char acao[128] = "", pna[16] = "";
	if (!c || !is_http(x->t)) {
		free(c);
		return;
	}
	const char *path = x->t->svc.http_path[0] ? x->t->svc.http_path : "/";
	int st = scan_http_request(&x->scfg, x->t->port, "OPTIONS", path, NULL,
	                           "Origin: " AUDIT_ATTACKER_ORIGIN
	                           "\r\nAccess-Control-Request-Method: GET\r\n"
	                           "Access-Control-Request-Private-Network: true\r\n",
	                           c);
	if (st >= 200 && st < 300 &&
	    scan_http_header(c->b, c->n, "access-control-allow-private-network", pna, sizeof(pna)) >= 0 &&
	    strcasecmp(pna, "true") == 0 &&
	    scan_http_header(c->b, c->n, "access-control-allow-origin", acao, sizeof(acao)) >= 0 &&
	    (strcmp(acao, "*") == 0 || strcmp(acao, AUDIT_ATTACKER_ORIGIN) == 0))
		EVIDENCE(x, R_PNA,
		         "OPTIONS %s preflight from " AUDIT_ATTACKER_ORIGIN
		         " asking for the private network answered "
		         "%d with Access-Control-Allow-Private-Network: true and "
		         "Access-Control-Allow-Origin: %s",
		         path, st, acao);
	free(c);
}

static void check_noauth(struct audit_ctx *x)
{
	static const struct {
		int app;
		enum rule_idx rule;
	} rows[] = {
	        {SCAN_APP_REDIS, R_REDIS},     {SCAN_APP_MEMCACHED, R_MEMCACHED},
	        {SCAN_APP_DOCKER, R_DOCKER},   {SCAN_APP_DEVTOOLS, R_DEVTOOLS},
	        {SCAN_APP_JUPYTER, R_JUPYTER}, {SCAN_APP_ELASTIC, R_ELASTIC},
	};
	if (!x->t->svc.noauth)
		return;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].app == x->t->svc.app)
			EVIDENCE(x, rows[i].rule, "%s", x->t->svc.noauth_evidence);
}

static void check_home(struct audit_ctx *x)
{
	struct scan_conn *c = malloc(sizeof(*c));
	char marks[160];
	size_t blen;
	if (!c || !is_http(x->t)) {
		free(c);
		return;
	}
	int st = scan_http_request(&x->scfg, x->t->port, "GET", "/", NULL, NULL, c);
	const char *body = scan_http_body(c->b, c->n, &blen);
	if (st == 200 && body && audit_home_marks(body, blen, marks, sizeof(marks)) >= AUDIT_HOME_MARKS_MIN)
		EVIDENCE(x, R_HOME, "GET / lists %s: the served directory is a home directory", marks);
	free(c);
}

/* The number of the reply in c (three digits), or 0. */
static int reply_number(const struct scan_conn *c)
{
	if (c->n < 3 || c->b[0] < '1' || c->b[0] > '5' || c->b[1] < '0' || c->b[1] > '9' || c->b[2] < '0' ||
	    c->b[2] > '9')
		return 0;
	return (c->b[0] - '0') * 100 + (c->b[1] - '0') * 10 + (c->b[2] - '0');
}

/* The replies the FTP check reads from a server (RFC 959, RFC 3659). loopkit's own
 * replies come from src/core/errors.def; these are what any server answers. */
#define FTP_READY     220
#define FTP_FEAT_OK   211
#define FTP_LOGGED_IN 230
#define FTP_MLST_OK   250
#define FTP_NEED_PASS 331
#define FTP_RNFR_OK   350

/* Sends one command; returns the reply's number, or 0 when none came. */
static int ftp_cmd(struct scan_conn *c, const char *line, unsigned ms)
{
	char b[128];
	int k = snprintf(b, sizeof(b), "%s\r\n", line);
	if (scan_conn_send(c, b, (size_t)k, ms) < 0 || !scan_conn_read(c, scan_ftp_reply_complete, NULL, ms))
		return 0;
	return reply_number(c);
}

/* Anonymous write, found without writing: the MLST perm facts of the login directory
 * (RFC 3659: c create, m mkdir, a append, w write) where the server has MLST; else
 * RNFR /, a rename's first half, which servers such as vsftpd refuse (550) unless the
 * session may write, and which changes nothing without the RNTO we never send. */
static void check_ftp(struct audit_ctx *x)
{
	const struct scan_service *s = &x->t->svc;
	struct scan_conn *c;
	unsigned ms = x->scfg.probe_ms;
	char perm[32];

	if (strcmp(s->name, "ftp") != 0 && strcmp(s->product, "loopkit serve") != 0)
		return;
	c = malloc(sizeof(*c));
	if (!c || scan_conn_open(&x->scfg, x->t->port, c) < 0) {
		free(c);
		return;
	}
	if (!scan_conn_read(c, scan_ftp_reply_complete, NULL,
	                    ms > AUDIT_FTP_GREETING_MS ? ms : AUDIT_FTP_GREETING_MS) ||
	    reply_number(c) != FTP_READY)
		goto out;
	int reply = ftp_cmd(c, "USER anonymous", ms);
	if (reply == FTP_NEED_PASS)
		reply = ftp_cmd(c, "PASS loopkit-audit@", ms);
	if (reply != FTP_LOGGED_IN)
		goto out;
	if (ftp_cmd(c, "FEAT", ms) == FTP_FEAT_OK && strstr(c->b, "MLST") && strstr(c->b, "perm")) {
		if (ftp_cmd(c, "MLST", ms) == FTP_MLST_OK &&
		    audit_mlst_writable(c->b, c->n, perm, sizeof(perm)))
			EVIDENCE(x, R_FTP,
			         "anonymous login accepted; MLST of the login directory shows perm=%s "
			         "(files may be created)",
			         perm);
	} else if (ftp_cmd(c, "RNFR /", ms) == FTP_RNFR_OK) {
		EVIDENCE(x, R_FTP,
		         "anonymous login accepted; RNFR / answered 350 (renaming is allowed, so writing "
		         "is; no RNTO was sent)");
	}
	ftp_cmd(c, "QUIT", ms);
out:
	scan_conn_close(c);
	free(c);
}

/* The checks, in the order their findings are listed for one listener. */
static void (*const checks[])(struct audit_ctx *) = {
        check_exposed, check_noauth, check_rebind, check_cors, check_pna, check_home, check_ftp, NULL,
};

/* ---- the run ---- */

struct audit_job {
	const struct audit_config *cfg;
	struct audit_result *r;
	struct audit_finding *per; /* audit_nrules per target */
	size_t *nper;
};

static void audit_one(size_t i, void *arg)
{
	struct audit_job *j = arg;
	struct audit_target *t = &j->r->targets[i];
	struct audit_ctx x = {.scfg = j->cfg->scan, .t = t, .out = j->per + i * audit_nrules};
	char err[128];

	if (t->probe[0] && scan_config_target(&x.scfg, t->probe, 1, err, sizeof(err)) == 0) {
		x.scfg.rate = j->cfg->scan.rate;
		scan_service_detect(&x.scfg, t->port, &t->svc);
	} else {
		snprintf(t->svc.name, sizeof(t->svc.name), "unknown");
		snprintf(t->svc.info, sizeof(t->svc.info),
		         "not probed: bound to a non-loopback address "
		         "(--allow-remote probes it)");
		x.t = t;
		check_exposed(&x);
		j->nper[i] = x.nout;
		return;
	}
	for (int k = 0; checks[k] && x.nout + 1 < audit_nrules; k++)
		checks[k](&x);
	j->nper[i] = x.nout;
}

static int target_cmp(const void *a, const void *b)
{
	const struct audit_target *x = a, *y = b;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return strcmp(x->bound, y->bound);
}

static int finding_cmp(const void *a, const void *b, void *arg)
{
	const struct audit_finding *x = a, *y = b;
	const struct audit_result *r = arg;
	if (x->rule->sev != y->rule->sev)
		return x->rule->sev > y->rule->sev ? -1 : 1;
	if (r->targets[x->target].port != r->targets[y->target].port)
		return r->targets[x->target].port < r->targets[y->target].port ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* The loopback address through which a listener bound to sa is reached, or "". */
static void probe_addr(const struct sockdiag_sock *s, int allow_remote, char *out, size_t len)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->local;
	out[0] = '\0';
	if (net_is_wildcard(sa))
		snprintf(out, len, "%s", s->family == AF_INET || s->v6only != 1 ? "127.0.0.1" : "::1");
	else if (net_is_loopback(sa) || allow_remote)
		net_addr_str(sa, out, len);
}

int audit_run(const struct audit_config *cfg, struct audit_result *r, char *err, size_t errlen)
{
	struct sockdiag_sock *socks = NULL;
	size_t n = 0;
	struct procfs_owner_map map = {0};
	uint32_t *inodes = NULL;
	uint64_t t0 = loop_clock_us();
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (sockdiag_list(IPPROTO_TCP, SOCKDIAG_STATE(TCP_LISTEN), &socks, &n, err, errlen) < 0)
		return -1;
	r->targets = calloc(n + 1, sizeof(*r->targets));
	inodes = calloc(n + 1, sizeof(*inodes));
	if (!r->targets || !inodes) {
		snprintf(err, errlen, "audit: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		inodes[i] = socks[i].inode;
	if (n && procfs_owner_map_build(&map, inodes, n, err, errlen) < 0)
		goto out;
	for (size_t i = 0; i < n && r->ntargets < AUDIT_TARGETS_MAX; i++) {
		const struct sockdiag_sock *s = &socks[i];
		uint16_t port = net_ss_port(&s->local);
		char probe[64];
		if (!scan_ports_has(&cfg->ports, port))
			continue;
		probe_addr(s, cfg->allow_remote, probe, sizeof(probe));
		/* one target per (port, probe address): 0.0.0.0:P and [::]:P are one service */
		struct audit_target *t = NULL;
		for (size_t k = 0; k < r->ntargets && probe[0]; k++)
			if (r->targets[k].port == port && strcmp(r->targets[k].probe, probe) == 0)
				t = &r->targets[k];
		int exposed = !net_is_loopback((const struct sockaddr *)&s->local);
		if (!t) {
			t = &r->targets[r->ntargets++];
			t->port = port;
			snprintf(t->probe, sizeof(t->probe), "%s", probe);
			net_ss_text(&s->local, t->bound, sizeof(t->bound));
		} else if (exposed && !t->exposed) {
			net_ss_text(&s->local, t->bound, sizeof(t->bound));
		}
		t->exposed |= exposed;
		const struct procfs_owner *o[1];
		if (!t->owner.pid && procfs_owner_map_find(&map, s->inode, o, 1))
			t->owner = *o[0];
	}
	qsort(r->targets, r->ntargets, sizeof(*r->targets), target_cmp);
	struct audit_job j = {.cfg = cfg, .r = r};
	j.per = calloc(r->ntargets * audit_nrules + 1, sizeof(*j.per));
	j.nper = calloc(r->ntargets + 1, sizeof(*j.nper));
	r->findings = calloc(r->ntargets * audit_nrules + 1, sizeof(*r->findings));
	if (!j.per || !j.nper || !r->findings) {
		free(j.per);
		free(j.nper);
		snprintf(err, errlen, "audit: out of memory");
		goto out;
	}
	scan_pool_run(r->ntargets, cfg->scan.parallel, audit_one, &j);
	for (size_t i = 0; i < r->ntargets; i++) {
		for (size_t k = 0; k < j.nper[i]; k++) {
			struct audit_finding *f = &r->findings[r->nfindings++];
			*f = j.per[i * audit_nrules + k];
			f->target = i;
			r->count[f->rule->sev]++;
		}
	}
	free(j.per);
	free(j.nper);
	qsort_r(r->findings, r->nfindings, sizeof(*r->findings), finding_cmp, r);
	r->seconds = (double)(loop_clock_us() - t0) / 1e6;
	rc = 0;
out:
	procfs_owner_map_free(&map);
	free(inodes);
	free(socks);
	if (rc < 0)
		audit_result_free(r);
	return rc;
}

void audit_result_free(struct audit_result *r)
{
	free(r->targets);
	free(r->findings);
	memset(r, 0, sizeof(*r));
}

int audit_failed(const struct audit_result *r, enum audit_sev level)
{
	for (int s = level; s < AUDIT_SEV_COUNT; s++)
		if (r->count[s])
			return 1;
	return 0;
}
