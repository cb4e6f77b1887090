/* serve.c - `loopkit serve`: flags in, an HTTP and FTP server on loopback out. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "core/text.h"
#include "core/procfs.h"
#include "diag/reach.h"
#include "http/parse.h"
#include "http/resp.h"
#include "serve/serve.h"

struct serve_args {
	struct serve_config cfg; /* the library's defaults, then the table's */
	const char *host;
	unsigned port;
	int public, quiet, open, proto;
	struct cmd_list allow, origins;
	struct http_extra_header extra[CMD_LIST_MAX]; /* --header, split into name and value */
	char extra_text[CMD_LIST_MAX][1024];
	size_t nextra;
	const char *not_found;
	char not_found_rel[PATH_MAX]; /* --404, as a path under DIR */
	struct strparse_range pasv;
	char ftp_user[64];
	char pass[256];
};
#define AT(f)  CMD_AT(struct serve_args, f)
#define DAY_MS (86400 * 1000)

static const char *const log_formats[] = {"common", "json", "combined", NULL}; /* enum accesslog_mode order */
/* Indexes: both (in either order), HTTP only, FTP only. */
enum { PROTO_BOTH, PROTO_HTTP, PROTO_FTP, PROTO_BOTH_FTP_FIRST };
static const char *const protos[] = {"http,ftp", "http", "ftp", "ftp,http", NULL};

/* --user NAME:PASS (or $LOOPKIT_USER). The password is copied, then blanked where it
 * was given: the command line is readable by every user of the machine (ps, /proc). */
static int set_user(void *p, const char *val, char *err, size_t errlen)
{
	struct serve_args *a = p;
	size_t n = strcspn(val, ":");
	if (!n || !val[n] || !val[n + 1] || n >= sizeof a->ftp_user ||
	    strlen(val + n + 1) >= sizeof a->pass) {
		snprintf(err, errlen, "want NAME:PASS, both non-empty, NAME under %zu bytes, PASS under %zu",
		         sizeof a->ftp_user, sizeof a->pass);
		return -1;
	}
	for (const unsigned char *c = (const unsigned char *)val; *c; c++)
		if (*c < ' ' || *c == 0x7f) { /* FTP's USER and PASS lines cannot carry them */
			snprintf(err, errlen,
			         "%s has a control character (a tab, a newline): no FTP client could log in",
			         c < (const unsigned char *)val + n ? "NAME" : "PASS");
			return -1;
		}
	snprintf(a->ftp_user, sizeof a->ftp_user, "%.*s", (int)n, val);
	snprintf(a->pass, sizeof a->pass, "%s", val + n + 1);
	memset((char *)val + n + 1, '*', strlen(val + n + 1)); /* argv's own bytes: writable */
	a->cfg.user = a->ftp_user;
	a->cfg.pass = a->pass;
	return 0;
}

/* --cache SECS|no: max-age, 0 for no-cache, "no" for no-store. */
static int set_cache(void *p, const char *val, char *err, size_t errlen)
{
	struct serve_args *a = p;
	uint64_t secs;
	if (!strcmp(val, "no")) {
		a->cfg.http.cache_secs = HTTP_CACHE_NO_STORE;
		return 0;
	}
	char why[128];
	if (strparse_uint(val, 0, HTTP_MAX_CACHE_SECS, &secs, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s; want SECS (0-%ld) or no", why, HTTP_MAX_CACHE_SECS);
		return -1;
	}
	a->cfg.http.cache_secs = (long)secs;
	return 0;
}

/* --header 'Name: value' (repeatable): checked as /_/response-headers checks its own. */
static int set_header(void *p, const char *val, char *err, size_t errlen)
{
	struct serve_args *a = p;
	if (a->nextra == CMD_LIST_MAX) {
		snprintf(err, errlen, "given more than %d times", CMD_LIST_MAX);
		return -1;
	}
	char *h = a->extra_text[a->nextra], *colon;
	if ((size_t)snprintf(h, sizeof a->extra_text[0], "%s", val) >= sizeof a->extra_text[0] ||
	    !(colon = strchr(h, ':'))) {
		snprintf(err, errlen, "want 'NAME: VALUE', under %zu bytes", sizeof a->extra_text[0]);
		return -1;
	}
	*colon = 0;
	const char *value = colon + 1 + strspn(colon + 1, " \t");
	const char *why = http_header_refused(h, value);
	if (!why && !strcasecmp(h, "content-type"))
		why = "Content-Type is set from the file's name";
	if (!why && !strcasecmp(h, "cache-control"))
		why = "Cache-Control is set by --cache (--cache SECS, 0 or no)";
	if (why) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	a->extra[a->nextra].name = h;
	a->extra[a->nextra].value = value;
	a->nextra++;
	return 0;
}

/* clang-format off */
static const struct cmd_flag serve_flags[] = {
	{ "DIR", 0, NULL, ".", "the directory to serve", CMD_STR, AT(cfg.root), .attr = CMD_ARG },
	{ "host", 0, "ADDR", "127.0.0.1", "address to listen on: any 127.0.0.0/8 address or ::1; others need --public", CMD_STR, AT(host) },
	{ "port", 'p', "N", CMD_HOME_PORT, "port; 0 picks a free one", CMD_UINT, AT(port), .max = 65535 },
	{ "public", 0, NULL, NULL, "allow a non-loopback or wildcard --host (reachable from the network)", CMD_SWITCH, AT(public) },
	{ "write", 'w', NULL, NULL, "allow PUT (upload), DELETE and MKCOL, and FTP's STOR, APPE, DELE, MKD, RMD and RNFR/RNTO; read-only without it", CMD_SWITCH, AT(cfg.write) },
	{ "threads", 't', "N", NULL, "event-loop threads; one per CPU this process may use (see taskset) when not given", CMD_UINT, AT(cfg.threads), .min = 1, .max = PROCFS_THREADS_MAX },
	{ "open", 'o', NULL, NULL, "open the first URL in a browser ($BROWSER, else xdg-open)", CMD_SWITCH, AT(open) },
	{ "dotfiles", 0, NULL, NULL, "serve and list names starting with '.' (hidden by default)", CMD_SWITCH, AT(cfg.dotfiles) },
	{ "cors", 0, NULL, NULL, "read-only CORS for any origin: GET, HEAD and POST from any page, never writes", CMD_SWITCH, AT(cfg.http.cors) },
	{ "cors-origin", 0, "ORIGIN", NULL, "CORS for this origin (https://app.example:8443), writes included (repeatable; '*': every origin, which with --write lets any web page write, and is warned about at start)", CMD_LIST, AT(origins) },
	{ "spa", 0, NULL, NULL, "serve /index.html for missing paths without an extension", CMD_SWITCH, AT(cfg.http.spa) },
	{ "clean-urls", 0, NULL, NULL, "serve /about from about.html, and redirect /about.html to /about", CMD_SWITCH, AT(cfg.http.clean_urls) },
	{ "precompressed", 0, NULL, NULL, "serve NAME.br or NAME.gz, when present and not older, for NAME to clients that accept it (as nginx's gzip_static)", CMD_SWITCH, AT(cfg.http.precompressed) },
	{ "404", 0, "FILE", NULL, "page under DIR shown for missing files (the status stays 404)", CMD_STR, AT(not_found) },
	{ "cache", 0, "SECS|no", "0", "Cache-Control of files: max-age=SECS; 0: no-cache (browsers ask again, 304 if unchanged); no: no-store", CMD_CALL, .set = set_cache },
	{ "header", 0, "NAME:VALUE", NULL, "add this header ('Name: value') to answers of files, listings and 404 pages (repeatable)", CMD_CALL, .set = set_header },
	{ "follow-symlinks", 0, NULL, NULL, "follow symlinks that lead out of DIR (pnpm, yarn workspaces); without it they are missing, and the first is logged", CMD_SWITCH, AT(cfg.follow_symlinks) },
	{ "allow-host", 0, "NAME", NULL, "accept this Host name too (repeatable; '*' turns the check off)", CMD_LIST, AT(allow) },
	{ "log", 0, NULL, "common", "access log format on stderr: common (CLF, then the time taken in µs), combined (nginx's and Apache's: Referer and User-Agent) or json", CMD_ENUM, AT(cfg.log), .choices = log_formats },
	{ "quiet", 'q', NULL, NULL, "no access log, nor the line per client process that says which protocol its silent connections get", CMD_SWITCH, AT(quiet) },
	{ "max-conns", 0, "N", CMD_STR_OF(SERVE_DEFAULT_MAX_CONNS), "most open connections; more get 503 and are closed", CMD_UINT, AT(cfg.max_conns), .min = 1, .max = 10000000 },
	{ "max-body", 0, "SIZE", CMD_STR_OF(SERVE_DEFAULT_MAX_BODY_GIB) "G", "largest upload (HTTP PUT, FTP STOR/APPE)", CMD_SIZE, AT(cfg.max_body) },
	{ "head-timeout", 0, "SECS", CMD_STR_OF(HTTP_DEFAULT_HEAD_TIMEOUT_S), "a request head must arrive within this, or 408", CMD_MS, AT(cfg.http.head_timeout_ms), .min = 1, .max = DAY_MS },
	{ "idle-timeout", 0, "SECS", CMD_STR_OF(HTTP_DEFAULT_IDLE_TIMEOUT_S), "close keep-alive connections idle this long", CMD_MS, AT(cfg.http.idle_timeout_ms), .min = 1, .max = DAY_MS },
	{ "body-timeout", 0, "SECS", CMD_STR_OF(HTTP_DEFAULT_BODY_TIMEOUT_S), "longest stall reading a body or writing a response", CMD_MS, AT(cfg.http.body_timeout_ms), .min = 1, .max = DAY_MS },
	{ "grace", 0, "SECS", CMD_STR_OF(SERVE_DEFAULT_GRACE_S), "on SIGINT/SIGTERM, time to finish in-flight requests", CMD_MS, AT(cfg.grace_ms), .min = 1, .max = DAY_MS },
	{ "proto", 0, NULL, "http,ftp", "protocols on the port (both: told apart by sniffing)", CMD_ENUM, AT(proto), .choices = protos },
	{ "sniff-ms", 0, "MS", CMD_STR_OF(SERVE_SNIFF_MS_DEFAULT), "silence before a client that is not a known FTP client is greeted as FTP", CMD_UINT, AT(cfg.sniff_ms), .min = 1, .max = 60000 },
	{ "user", 0, "NAME:PASS", NULL, "login required for HTTP (Basic) and FTP; open when not given. PASS is blanked from the command line at start; LOOPKIT_USER=NAME:PASS in the environment, which other users cannot read, does the same", CMD_CALL, .set = set_user, .attr = CMD_SECRET },
	{ "pasv-ports", 0, "A-B", NULL, "FTP passive data ports; any free port when not given", CMD_RANGE, AT(pasv), .min = 1, .max = 65535 },
	{ "ftp-idle-timeout", 0, "SECS", CMD_STR_OF(FTP_DEFAULT_IDLE_TIMEOUT_S), "close FTP sessions idle this long, with 421", CMD_MS, AT(cfg.ftp.idle_timeout_ms), .min = 1, .max = DAY_MS },
	{ "data-timeout", 0, "SECS", CMD_STR_OF(FTP_DEFAULT_DATA_TIMEOUT_S), "FTP data connection setup or stall limit", CMD_MS, AT(cfg.ftp.data_timeout_ms), .min = 1, .max = DAY_MS },
	{ 0 },
};
/* clang-format on */

static const struct cmd_hint serve_hints[] = {
        {"-b", "the address is --host ADDR here (python -m http.server's -b/--bind)"},
        {"--bind", "the address is --host ADDR here (python -m http.server's --bind)"},
        {"-d", "the directory is the argument here: loopkit serve DIR"},
        {"--directory", "the directory is the argument here: loopkit serve DIR"},
        {0},
};

static void serve_init(void *p)
{
	serve_config_default(&((struct serve_args *)p)->cfg);
}

/* --404 FILE as a path under DIR, as a URL would name it: checked now, read at each
 * 404. Returns 1 when it names a regular file there. */
static int not_found_page(struct serve_args *a)
{
	char full[PATH_MAX + 8];
	struct stat st;
	int slash;
	char *rel = a->not_found_rel;
	snprintf(full, sizeof full, "/%s", a->not_found);
	int r = http_path_normalize(full, strlen(full), rel, sizeof a->not_found_rel, &slash);
	if (r != HTTP_PATH_OK || !rel[0] || slash)
		return 0;
	if ((size_t)snprintf(full, sizeof full, "%s/%s", a->cfg.root, a->not_found_rel) >= sizeof full ||
	    stat(full, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	a->cfg.http.not_found = a->not_found_rel;
	return 1;
}

/* Lets one process hold as many connections as the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int serve_main(void *p)
{
	struct serve_args *a = p;
	struct serve_config *cfg = &a->cfg;
	struct stat st;
	char msg[1024], urls[2 * REACH_MAX_URLS][REACH_URL_MAX];
	if (strspn(cfg->root, "0123456789") == strlen(cfg->root) && stat(cfg->root, &st) < 0) {
		fprintf(stderr, "loopkit serve: there is no directory %s; did you mean --port %s?\n",
		        cfg->root, cfg->root);
		return 2;
	}
	const char *env_user = getenv("LOOPKIT_USER");
	if (!cfg->user && env_user && *env_user && set_user(a, env_user, msg, sizeof msg) < 0) {
		fprintf(stderr, "loopkit serve: LOOPKIT_USER: %s\n", msg);
		return 2;
	}
	unsetenv("LOOPKIT_USER"); /* not passed on (to the browser of --open) */
	cfg->http.allow_hosts = a->allow.v;
	cfg->http.allow_hosts_flag = "--allow-host";
	cfg->http.nallow_hosts = a->allow.n;
	cfg->http.cors_origins = a->origins.v;
	cfg->http.ncors_origins = a->origins.n;
	for (size_t i = 0; i < a->origins.n; i++) {
		const char *o = a->origins.v[i];
		const char *h = !strncmp(o, "http://", 7) ? o + 7 : !strncmp(o, "https://", 8) ? o + 8 : NULL;
		if (strcmp(o, "*") && (!h || !*h || strchr(h, '/'))) {
			fprintf(stderr,
			        "loopkit serve: --cors-origin %s: an origin is scheme://host[:port] "
			        "(https://app.example:8443), without a path; or '*'\n",
			        o);
			return 2;
		}
		if (!strcmp(o, "*") && cfg->write)
			fprintf(stderr, "loopkit: WARNING: --cors-origin '*' with --write: ANY web page you "
			                "visit can "
			                "write and delete files in the served directory\n");
	}
	cfg->http.headers = a->extra;
	cfg->http.nheaders = a->nextra;
	if (a->not_found && !not_found_page(a)) {
		fprintf(stderr, "loopkit serve: --404 %s: not a file under %s (name it as inside DIR: %s)\n",
		        a->not_found, cfg->root, "--404 404.html");
		return 2;
	}
	cfg->log = a->quiet ? ACCESSLOG_NONE : cfg->log;
	cfg->proto_http = a->proto != PROTO_FTP;
	cfg->proto_ftp = a->proto != PROTO_HTTP;
	if (serve_pasv_span_check((unsigned)a->pasv.lo, (unsigned)a->pasv.hi, msg, sizeof msg) < 0) {
		cmd_error("serve", msg);
		return 2;
	}
	cfg->ftp.pasv_lo = (uint16_t)a->pasv.lo;
	cfg->ftp.pasv_hi = (uint16_t)a->pasv.hi;
	char abs[PATH_MAX];
	if (!realpath(cfg->root, abs))
		snprintf(abs, sizeof abs, "%s", cfg->root);
	int rc = reach_check_host(a->host, (uint16_t)a->port, a->public, abs, &cfg->addr, &cfg->addrlen, msg,
	                          sizeof msg);
	char esc[4 * sizeof msg];
	text_escape(esc, sizeof esc, msg, strlen(msg), 0); /* it quotes --host */
	if (rc)
		fprintf(stderr, "loopkit%s: %s%s%s\n", rc < 0 ? " serve" : "", rc > 0 ? "WARNING: " : "", esc,
		        rc > 0 ? (cfg->write ? ", WRITABLE by anyone who can reach it" : ", read-only") : "");
	if (rc < 0)
		return 2;

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	struct serve_bind_err be;
	struct serve_server *s = serve_new(cfg, msg, sizeof msg, &be);
	if (!s) {
		char detail[sizeof msg];
		snprintf(detail, sizeof detail, "%s", msg);
		reach_bind_error((struct sockaddr *)&be.addr, (uint16_t)a->port, be.eno, detail, msg,
		                 sizeof msg);
		cmd_error("serve", msg);
		return 1;
	}
	const struct sockaddr *sa = (const struct sockaddr *)&cfg->addr;
	size_t n = cfg->proto_http ? reach_urls(sa, serve_port(s), "http", urls, REACH_MAX_URLS) : 0;
	if (cfg->proto_ftp)
		n += reach_urls(sa, serve_port(s), "ftp", urls + n, REACH_MAX_URLS);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", urls[i]);
	fflush(stdout);
	fprintf(stderr, "loopkit: serving %s on %s port %u (%s%s, %d thread%s)\n", abs, a->host,
	        serve_port(s), cfg->write ? "writable" : "read-only", cfg->user ? ", login required" : "",
	        cfg->threads, cfg->threads == 1 ? "" : "s");
	if (a->open && reach_open(urls[0], msg, sizeof msg) < 0)
		fprintf(stderr, "loopkit: --open: %s\n", msg);
	rc = serve_run(s);
	serve_free(s);
	return rc < 0 ? 1 : 0;
}

const struct cmd_verb cmd_serve = {
        .name = "serve",
        .summary = "HTTP and FTP server for a directory, with API-testing endpoints under /_/",
        .about =
                "Serves DIR over HTTP/1.1 and FTP on the same port (127.0.0.1:" CMD_HOME_PORT " unless told\n"
                "otherwise), read-only, confined to DIR, with API-testing endpoints under /_/.\n"
                "The first lines on stdout are its URLs.\n",
        .flags = serve_flags,
        .size = sizeof(struct serve_args),
        .init = serve_init,
        .run = serve_main,
        .hints = serve_hints,
        .examples = "$ loopkit serve ./site --spa --cors\n$ loopkit serve -p 8080 --write\n"
                    "$ loopkit serve --port 0 --open\n$ loopkit serve --host 0.0.0.0 --public\n",
};
