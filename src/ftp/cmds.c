/* cmds.c - the FTP command table and its handlers (all but the data channel's, in data.c). */
#include "ftp/cmds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/login.h"
#include "ftp/session.h"

/* ---- helpers ---- */

/* Resolves a command argument against the cwd. Returns 0, or -1 after replying. */
static int resolve(struct ftp_session *s, const char *arg, char *rel, size_t relsz)
{
	if (fsroot_join(s->cwd, arg, rel, relsz) < 0) {
		ftp_reply_err(s, LK_E_ENAMETOOLONG, NULL);
		return -1;
	}
	return 0;
}

/* Whether arg names a directory by its form: it ends in a slash ("a.txt/") or its last
 * component is "." or ".." ("a.txt/."), as a path does for open(2) and an HTTP target
 * does after dot-segment removal. resolve() drops both, so the commands that want a
 * file check this (a plain file named so is refused, as GET /a.txt/ is a 404). */
static int dir_named(const char *arg)
{
	size_t n = strlen(arg);
	const char *last = arg + n;
	while (last > arg && last[-1] != '/')
		last--;
	return (n > 1 && arg[n - 1] == '/') || !strcmp(last, ".") || !strcmp(last, "..");
}

/* Resolves arg and stats it (symlinks followed, inside the root); a slash at its end
 * wants a directory. Returns 0, or -1 after replying. */
static int stat_path(struct ftp_session *s, const char *arg, char *rel, size_t relsz, struct stat *st)
{
	if (resolve(s, arg, rel, relsz) < 0)
		return -1;
	int fd = fsroot_open(s->x->site->root, rel, O_PATH);
	if (fd < 0) {
		ftp_reply_errno(s, fd);
		return -1;
	}
	int ok = fstat(fd, st) == 0;
	int e = errno;
	close(fd);
	if (!ok) {
		ftp_reply_errno(s, -e);
		return -1;
	}
	if (dir_named(arg) && !S_ISDIR(st->st_mode)) {
		ftp_reply_errno(s, -ENOTDIR);
		return -1;
	}
	return 0;
}

/* stat_path for a name to remove or rename: the root itself is refused. */
static int stat_changeable(struct ftp_session *s, const char *arg, char *rel, size_t relsz, struct stat *st)
{
	if (stat_path(s, arg, rel, relsz, st) < 0)
		return -1;
	if (!*rel) {
		ftp_reply_err(s, LK_E_EROOT, NULL);
		return -1;
	}
	return 0;
}

/* Sends text (lines separated by '\n') as the inner lines of a multi-line reply. */
static void reply_lines(struct ftp_session *s, const char *text)
{
	while (*text) {
		size_t n = strcspn(text, "\n");
		ftp_reply_more(s, text, n);
		text += n + (text[n] == '\n');
	}
}

/* An entry for the list formatter from a stat of one file. */
static struct dirsnap_ent ent_of(const char *rel, const struct stat *st)
{
	const char *base = strrchr(rel, '/');
	struct dirsnap_ent e = {
	        .name = base ? base + 1 : rel,
	        .is_dir = S_ISDIR(st->st_mode),
	        .mode = st->st_mode,
	        .uid = st->st_uid,
	        .gid = st->st_gid,
	        .size = (uint64_t)st->st_size,
	        .mtime = st->st_mtim,
	};
	return e;
}

/* ---- login and session state ---- */

static void cmd_user(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	size_t n = strlen(arg);
	/* A name too long to keep is kept as "not the login" rather than cut to one. */
	s->user_long = n >= sizeof(s->user);
	snprintf(s->user, sizeof(s->user), "%s", arg);
	s->user_given = 1;
	s->logged_in = 0;
	ftp_reply(s, LK_R_NEED_PASS, NULL);
}

/* Answers PASS: logged in, or 530 (USER again first). */
static void login_answer(struct ftp_session *s, int right)
{
	if (right) {
		s->logged_in = 1;
		s->login_proven = 1;
		/* Whether writes are allowed is said here, to who has logged in: the greeting
		 * goes to anyone who connects, before any login. */
		ftp_reply(s, LK_R_LOGGED_IN, s->x->site->write ? "writable" : "read-only");
		ftp_log(s, "PASS", NULL, lk_reply(LK_R_LOGGED_IN)->ftp, 0, loop_clock_us());
		if (s->x->hooks.note)
			s->x->hooks.note(s->x->hooks.arg, &s->peer, PROTO_NOTE_FTP_LOGIN);
		return;
	}
	s->user_given = 0;
	ftp_reply_err(s, LK_E_ELOGIN, NULL);
	ftp_log(s, "PASS", NULL, lk_error(LK_E_ELOGIN)->ftp, 0, loop_clock_us());
}

static void cmd_pass(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	struct login_gate *g = s->x->site->login;
	if (!s->user_given) {
		ftp_reply_err(s, LK_E_F_USER_FIRST, NULL);
		return;
	}
	if (!g) {
		login_answer(s, 1); /* anonymous: any name, any password */
		return;
	}
	int right = login_gate_check(g, s->user, strlen(s->user), arg, strlen(arg)) & (!s->user_long);
	/* Credentials proven on this session pass again; any others go through the
	 * gate, which answers right and wrong ones alike while guessing is throttled. */
	if (right && s->login_proven) {
		login_answer(s, 1);
		return;
	}
	uint64_t at = 0;
	unsigned retry = 0;
	switch (login_gate_enter(g, right, loop_clock_us(), &at, &retry)) {
	case LOGIN_NOW: login_answer(s, right); return;
	case LOGIN_REFUSED:
		ftp_reply_err(s, LK_E_ELOGINBUSY, NULL);
		ftp_log(s, "PASS", NULL, lk_error(LK_E_ELOGINBUSY)->ftp, 0, loop_clock_us());
		s->closing = 1; /* 421: the server closes the control connection */
		return;
	case LOGIN_WAIT: {
		uint64_t now = loop_now_us(s->x->loop);
		s->login_wait = 1; /* nothing else runs until the turn (control_work) */
		s->login_right = right;
		loop_timer_start(s->x->loop, &s->timer, at > now ? (at - now + 999) / 1000 : 0);
		return;
	}
	}
}

void ftp_control_timer(struct ftp_session *s)
{
	if (s->login_wait) {
		s->login_wait = 0;
		login_answer(s, s->login_right);
		ftp_arm_idle(s);
		ftp_control_run(s);
		return;
	}
	char d[32];
	ftp_reply_err(s, LK_E_F_IDLE, lk_ms_text(s->x->cfg->idle_timeout_ms, d, sizeof(d)));
	s->closing = 1;
	ftp_control_run(s);
}

static void cmd_quit(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	ftp_reply(s, LK_R_GOODBYE, NULL);
	s->closing = 1;
}

static void cmd_syst(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	ftp_reply(s, LK_R_SYSTEM, NULL);
}

static void cmd_noop(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	ftp_reply(s, LK_R_NOOP_OK, NULL);
}

/* FEAT (c->arg 0) and HELP (c->arg 1): their lines come from this table. */
static void cmd_about(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char text[1024];
	if (c->arg)
		ftp_cmds_help(text, sizeof(text));
	else
		ftp_cmds_feat(text, sizeof(text));
	ftp_reply_begin(s, c->arg ? LK_R_HELP_BEGIN : LK_R_FEAT_BEGIN, NULL);
	reply_lines(s, text);
	ftp_reply(s, c->arg ? LK_R_HELP_END : LK_R_FEAT_END, NULL);
}

static void cmd_auth(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	ftp_reply_err(s, LK_E_F_NO_TLS, NULL);
}

static void cmd_unimpl(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	ftp_reply_err(s, LK_E_F_NOT_IMPLEMENTED, c->verb);
}

static void cmd_opts(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	if (!strcasecmp(arg, "UTF8 ON") || !strcasecmp(arg, "UTF8"))
		ftp_reply(s, LK_R_UTF8_OK, NULL);
	else
		ftp_reply_err(s, LK_E_F_OPTS, NULL);
}

static void cmd_type(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	if (!strcasecmp(arg, "I") || !strcasecmp(arg, "L 8"))
		ftp_reply(s, LK_R_TYPE_BINARY, NULL);
	else if (!strcasecmp(arg, "A") || !strcasecmp(arg, "A N"))
		ftp_reply(s, LK_R_TYPE_ASCII, NULL);
	else
		ftp_reply_err(s, LK_E_F_TYPE, NULL);
}

static void cmd_mode(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	if (!strcasecmp(arg, "S"))
		ftp_reply(s, LK_R_MODE_OK, NULL);
	else
		ftp_reply_err(s, LK_E_F_MODE, NULL);
}

static void cmd_stru(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	if (!strcasecmp(arg, "F"))
		ftp_reply(s, LK_R_STRU_OK, NULL);
	else
		ftp_reply_err(s, LK_E_F_STRU, NULL);
}

static void cmd_allo(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	ftp_reply(s, LK_R_SUPERFLUOUS, c->verb);
}

static void cmd_rest(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char *end, d[32];
	errno = 0;
	unsigned long long n = strtoull(arg, &end, 10);
	if (!*arg || *end || errno || arg[0] == '-') {
		ftp_reply_err(s, LK_E_F_REST_ARG, NULL);
		return;
	}
	s->rest = n;
	snprintf(d, sizeof(d), "%llu", n);
	ftp_reply(s, LK_R_REST_OK, d);
}

/* ---- directories ---- */

static void cmd_pwd(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char q[PATH_MAX * 2 + 4];
	ftp_reply(s, LK_R_PWD, ftp_list_quote(s->cwd, q, sizeof(q)));
}

/* CWD, XCWD; CDUP and XCUP (c->arg set) go to "..". */
static void cmd_cwd(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX];
	struct stat st;
	if (stat_path(s, c->arg ? ".." : arg, rel, sizeof(rel), &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		ftp_reply_errno(s, -ENOTDIR);
		return;
	}
	char *cwd = strdup(rel);
	if (!cwd) {
		ftp_reply_err(s, LK_E_ENOMEM, NULL);
		return;
	}
	free(s->cwd);
	s->cwd = cwd;
	ftp_reply(s, LK_R_CWD_OK, NULL);
}

static void cmd_mkd(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX], q[PATH_MAX * 2 + 4];
	if (resolve(s, arg, rel, sizeof(rel)) < 0)
		return;
	if (fsroot_hidden(s->x->site->root, rel)) {
		ftp_reply_err(s, LK_E_EHIDDEN, NULL);
		return;
	}
	int rc = fsroot_mkdir(s->x->site->root, rel);
	if (rc < 0) {
		ftp_reply_errno(s, rc);
		return;
	}
	ftp_reply(s, LK_R_MKD_OK, ftp_list_quote(rel, q, sizeof(q)));
}

/* DELE (c->arg 0) removes a file, RMD and XRMD (c->arg 1) an empty directory. */
static void cmd_remove(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX];
	struct stat st;
	if (stat_changeable(s, arg, rel, sizeof(rel), &st) < 0)
		return;
	if (!c->arg && S_ISDIR(st.st_mode)) {
		ftp_reply_err(s, LK_E_ENOTFILE, NULL);
		return;
	}
	if (c->arg && !S_ISDIR(st.st_mode)) {
		ftp_reply_errno(s, -ENOTDIR);
		return;
	}
	/* RMD, or a name given as a directory ("x/"): the name itself, not a link to one */
	int rc = c->arg || dir_named(arg) ? fsroot_remove_dir(s->x->site->root, rel)
	                                  : fsroot_remove(s->x->site->root, rel);
	if (rc < 0)
		ftp_reply_errno(s, rc);
	else
		ftp_reply(s, c->arg ? LK_R_RMD_OK : LK_R_DELE_OK, NULL);
}

static void cmd_rnfr(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX];
	struct stat st;
	if (stat_changeable(s, arg, rel, sizeof(rel), &st) < 0)
		return;
	free(s->rnfr);
	s->rnfr = strdup(rel);
	if (!s->rnfr) {
		ftp_reply_err(s, LK_E_ENOMEM, NULL);
		return;
	}
	ftp_reply(s, LK_R_RNFR_OK, NULL);
}

static void cmd_rnto(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX];
	const struct fsroot *root = s->x->site->root;
	char *from = s->rnfr; /* RNTO uses up the RNFR, whatever happens */
	s->rnfr = NULL;
	if (!from) {
		ftp_reply_err(s, LK_E_F_RNFR_FIRST, NULL);
		return;
	}
	if (resolve(s, arg, rel, sizeof(rel)) < 0) {
		free(from);
		return;
	}
	if (!*rel) {
		free(from);
		ftp_reply_err(s, LK_E_ENEEDNAME, NULL);
		return;
	}
	if (fsroot_hidden(root, rel)) { /* as STOR and MKD say it */
		free(from);
		ftp_reply_err(s, LK_E_EHIDDEN, NULL);
		return;
	}
	if (dir_named(arg)) { /* a new name ending in a slash is for a directory only */
		struct stat st;
		int fd = fsroot_open(root, from, O_PATH);
		int e = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
		if (fd >= 0)
			close(fd);
		if (e < 0) {
			free(from);
			ftp_reply_errno(s, e);
			return;
		}
	}
	int rc = fsroot_rename(root, from, rel);
	free(from);
	if (rc == -EINVAL)
		ftp_reply_err(s, LK_E_EINTOITSELF, NULL);
	else if (rc < 0)
		ftp_reply_errno(s, rc);
	else
		ftp_reply(s, LK_R_RNTO_OK, NULL);
}

/* ---- facts ---- */

/* SIZE (c->arg 0) and MDTM (c->arg 1) of a plain file. */
static void cmd_size(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX], d[32];
	struct stat st;
	if (stat_path(s, arg, rel, sizeof(rel), &st) < 0)
		return;
	if (!S_ISREG(st.st_mode)) {
		ftp_reply_err(s, LK_E_ENOTFILE, NULL);
		return;
	}
	if (c->arg)
		ftp_list_modify(st.st_mtim.tv_sec, d);
	else
		snprintf(d, sizeof(d), "%llu", (unsigned long long)st.st_size);
	ftp_reply(s, LK_R_FILE_STATUS, d);
}

/* MFMT YYYYMMDDHHMMSS[.fff] PATH (draft-somers-ftp-mfxx, as vsftpd's MDTM with two
 * arguments): sets a file's modification time (UTC), which lftp's `mirror -R` and
 * FileZilla use to keep the times of uploaded files. */
static void cmd_mfmt(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	struct tm tm = {0};
	const char *p = arg;
	long nsec = 0;
	int ok = strlen(arg) > 15;
	for (int i = 0; ok && i < 14; i++)
		ok = p[i] >= '0' && p[i] <= '9';
	if (ok) {
		tm.tm_year =
		        (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0') - 1900;
		tm.tm_mon = (p[4] - '0') * 10 + (p[5] - '0') - 1;
		tm.tm_mday = (p[6] - '0') * 10 + (p[7] - '0');
		tm.tm_hour = (p[8] - '0') * 10 + (p[9] - '0');
		tm.tm_min = (p[10] - '0') * 10 + (p[11] - '0');
		tm.tm_sec = (p[12] - '0') * 10 + (p[13] - '0');
		p += 14;
		if (*p == '.') {
			long scale = 100000000;
			for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
				nsec += (*p - '0') * scale;
		}
		ok = *p == ' ' && p[1] && tm.tm_mon >= 0 && tm.tm_mon < 12 && tm.tm_mday >= 1 &&
		     tm.tm_mday <= 31 && tm.tm_hour < 24 && tm.tm_min < 60 && tm.tm_sec <= 60;
	}
	/* timegm normalises tm (29 February 2021 would become 1 March): the time must
	 * read back as given. -1 is a time too (1969-12-31 23:59:59). */
	struct tm want = tm, back;
	time_t t = ok ? timegm(&tm) : -1;
	if (!ok || want.tm_year < 0 || !gmtime_r(&t, &back) || back.tm_year != want.tm_year ||
	    back.tm_mon != want.tm_mon || back.tm_mday != want.tm_mday || back.tm_hour != want.tm_hour ||
	    back.tm_min != want.tm_min) {
		ftp_reply_err(s, LK_E_F_MFMT_ARG, NULL);
		return;
	}
	char rel[PATH_MAX], d[16], line[PATH_MAX + 32];
	struct stat st;
	if (stat_changeable(s, p + 1, rel, sizeof(rel), &st) < 0)
		return;
	if (!S_ISREG(st.st_mode)) {
		ftp_reply_err(s, LK_E_ENOTFILE, NULL);
		return;
	}
	/* The file itself (a link inside the root leads to it, as MDTM reads it), opened
	 * beneath the root, so nothing outside it is touched whatever the links do. */
	int fd = fsroot_open(s->x->site->root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = t, .tv_nsec = nsec}};
	int rc = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EISDIR : 0;
	if (!rc && (futimens(fd, ts) < 0 || fstat(fd, &st) < 0))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		ftp_reply_errno(s, rc);
		return;
	}
	ftp_list_modify(st.st_mtim.tv_sec, d); /* what the file system kept (it may clamp) */
	snprintf(line, sizeof(line), "%s; /%s", d, rel);
	ftp_reply(s, LK_R_MODIFY_SET, line);
}

static void cmd_mlst(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX], q[PATH_MAX * 2 + 4], line[PATH_MAX * 2 + FTP_LIST_LINE_MAX];
	struct stat st;
	if (stat_path(s, arg, rel, sizeof(rel), &st) < 0)
		return;
	struct dirsnap_ent e = ent_of(rel, &st);
	ftp_list_quote(rel, q, sizeof(q));
	size_t n = ftp_list_facts(line, sizeof(line), &e, s->x->site->write);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s", q);
	ftp_reply_begin(s, LK_R_MLST_BEGIN, q);
	ftp_reply_more(s, line, n < sizeof(line) ? n : sizeof(line) - 1);
	ftp_reply(s, LK_R_MLST_END, NULL);
}

static void cmd_stat(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX], line[FTP_LIST_LINE_MAX + 80];
	struct ftp_xfer *t = s->xfer;
	if (t) {
		snprintf(line, sizeof(line), "%s %.*s: %llu", t->verb, (int)(sizeof(line) / 2), t->target,
		         (unsigned long long)t->bytes);
		ftp_reply(s, LK_R_XFER_STATUS, line);
		return;
	}
	if (!*arg) {
		ftp_reply_begin(s, LK_R_STATUS_BEGIN, NULL);
		int n = snprintf(line, sizeof(line), "Connected to %s", s->peer.addr_str);
		ftp_reply_more(s, line, (size_t)n);
		n = snprintf(line, sizeof(line), "Logged in as %s", s->user[0] ? s->user : "-");
		ftp_reply_more(s, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		reply_lines(s, "TYPE: BINARY, STRU: File, MODE: Stream");
		reply_lines(s, s->x->site->write ? "Writable" : "Read-only");
		ftp_reply(s, LK_R_STATUS_END, NULL);
		return;
	}
	if (resolve(s, ftp_list_skip_options(arg), rel, sizeof(rel)) < 0)
		return;
	const struct dirsnap *snap;
	struct stat st;
	char q[PATH_MAX + 2];
	snprintf(q, sizeof(q), "/%s", rel);
	int rc = dirsnap_get(s->x->site->dirs, s->x->site->root, rel, &snap);
	if (rc == -ENOTDIR) {
		/* One file: its line, then the end. */
		if (stat_path(s, ftp_list_skip_options(arg), rel, sizeof(rel), &st) < 0)
			return;
		struct dirsnap_ent e = ent_of(rel, &st);
		size_t n =
		        ftp_list_line(line, sizeof(line), FTP_L_LIST, &e, time(NULL), s->x->site->write, 0);
		ftp_reply_begin(s, LK_R_LIST_STATUS_BEGIN, q);
		if (n)
			ftp_reply_more(s, line, n);
		ftp_reply(s, LK_R_LIST_STATUS_END, NULL);
		return;
	}
	if (rc < 0) {
		ftp_reply_errno(s, rc);
		return;
	}
	ftp_reply_begin(s, LK_R_LIST_STATUS_BEGIN, q);
	ftp_stat_listing(s, snap); /* the lines follow as the client reads */
}

/* ---- transfers ---- */

/* LIST, NLST, MLSD (c->arg: the ftp_list_kind). */
static void cmd_list(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX];
	enum ftp_list_kind k = (enum ftp_list_kind)c->arg;
	const char *path = k == FTP_L_MLSD ? arg : ftp_list_skip_options(arg);
	if (resolve(s, path, rel, sizeof(rel)) < 0)
		return;
	struct ftp_xfer *t = ftp_xfer_new(FTP_X_LIST, c->verb, rel);
	if (!t) {
		ftp_reply_err(s, LK_E_ENOMEM, NULL);
		return;
	}
	t->lkind = k;
	t->now = time(NULL);
	int rc = dirsnap_get(s->x->site->dirs, s->x->site->root, rel, &t->snap);
	if (rc == -ENOTDIR && k == FTP_L_MLSD) { /* RFC 3659 7.2 */
		ftp_xfer_free(s->x, t);
		ftp_reply_err(s, LK_E_F_MLSD_FILE, NULL);
		return;
	}
	if (rc == -ENOTDIR && !dir_named(path)) {
		/* The listing of one file is its one line, formatted now. */
		struct stat st;
		int fd = fsroot_open(s->x->site->root, rel, O_PATH);
		rc = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
		if (!rc) {
			struct dirsnap_ent e = ent_of(rel, &st);
			char line[FTP_LIST_LINE_MAX];
			size_t n = ftp_list_line(line, sizeof(line), k, &e, t->now, s->x->site->write, 1);
			if (buf_append(&t->out, line, n) < 0)
				rc = -ENOMEM;
		}
	} else if (!rc && k == FTP_L_LIST && buf_printf(&t->out, "total %zu\r\n", t->snap->n) < 0) {
		rc = -ENOMEM;
	}
	if (rc < 0) {
		ftp_xfer_free(s->x, t);
		ftp_reply_errno(s, rc);
		return;
	}
	ftp_reply(s, LK_R_LISTING, NULL);
	ftp_xfer_start(s, t);
}

static void cmd_retr(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX], d[PATH_MAX + 48];
	struct stat st;
	uint64_t rest = s->rest;
	s->rest = 0; /* REST holds for the next transfer only */
	if (resolve(s, arg, rel, sizeof(rel)) < 0)
		return;
	int fd = fsroot_open(s->x->site->root, rel, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		ftp_reply_errno(s, fd);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		ftp_reply_err(s, LK_E_ENOTFILE, NULL);
		return;
	}
	if (dir_named(arg)) {
		close(fd);
		ftp_reply_errno(s, -ENOTDIR);
		return;
	}
	if ((uint64_t)st.st_size < rest) {
		close(fd);
		snprintf(d, sizeof(d), "%llu", (unsigned long long)rest);
		ftp_reply_err(s, LK_E_F_REST_PAST_END, d);
		return;
	}
	struct ftp_xfer *t = ftp_xfer_new(FTP_X_RETR, c->verb, rel);
	if (!t) {
		close(fd);
		ftp_reply_err(s, LK_E_ENOMEM, NULL);
		return;
	}
	uint64_t len = (uint64_t)st.st_size - rest;
	filesend_start(&t->file, fd, rest, len, filesend_wants_copy(&s->peer.addr, len),
	               s->x->site->copy_mem);
	snprintf(d, sizeof(d), "/%s (%llu bytes)", rel, (unsigned long long)len);
	ftp_reply(s, LK_R_OPENING_BINARY, d);
	ftp_xfer_start(s, t);
}

/* Copies the first n bytes of the existing target into the upload (REST, APPE: with
 * whole, all of it). Returns 0 or -errno (-EINVAL: n is past the end). */
static int copy_prefix(const struct fsroot *root, const char *rel, struct fsroot_upload *up, uint64_t n,
                       int whole)
{
	/* O_NONBLOCK: a FIFO without a writer would block the event loop in open(2). */
	int fd = fsroot_open(root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	if (fd < 0)
		return fd == -ENOENT && (whole || n == 0) ? 0 : fd;
	int bad = fstat(fd, &st) < 0     ? -errno
	          : S_ISDIR(st.st_mode)  ? -EISDIR
	          : !S_ISREG(st.st_mode) ? -FSROOT_ENOTFILE
	                                 : 0;
	if (bad) {
		close(fd);
		return bad;
	}
	if (whole)
		n = (uint64_t)st.st_size;
	if (n > (uint64_t)st.st_size) {
		close(fd);
		return -EINVAL;
	}
	off_t in = 0, out = 0;
	while (n) {
		ssize_t k =
		        copy_file_range(fd, &in, up->fd, &out, n > (1u << 30) ? (1u << 30) : (size_t)n, 0);
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		n -= (uint64_t)k;
	}
	close(fd);
	lseek(up->fd, out, SEEK_SET);
	return 0;
}

/* STOR (c->arg 0) and APPE (c->arg 1). */
static void cmd_stor(struct ftp_session *s, const char *arg, const struct ftp_cmd *c)
{
	char rel[PATH_MAX], q[PATH_MAX + 2];
	const struct fsroot *root = s->x->site->root;
	uint64_t rest = s->rest;
	s->rest = 0;
	if (resolve(s, arg, rel, sizeof(rel)) < 0)
		return;
	if (!*rel || dir_named(arg)) { /* as HTTP's PUT /b.txt/ */
		ftp_reply_err(s, LK_E_ENEEDNAME, NULL);
		return;
	}
	if (fsroot_hidden(root, rel)) {
		ftp_reply_err(s, LK_E_EHIDDEN, NULL);
		return;
	}
	struct ftp_xfer *t = ftp_xfer_new(FTP_X_STOR, c->verb, rel);
	if (!t) {
		ftp_reply_err(s, LK_E_ENOMEM, NULL);
		return;
	}
	int rc = fsroot_upload_begin(root, rel, &t->up);
	if (rc < 0) {
		ftp_xfer_free(s->x, t);
		snprintf(q, sizeof(q), "/%s", rel);
		if (rc == -ENOENT || rc == -ENOTDIR)
			ftp_reply_err(s, LK_E_F_NO_DIR, q);
		else
			ftp_reply_errno(s, rc);
		return;
	}
	t->upload = 1;
	rc = c->arg || rest ? copy_prefix(root, rel, &t->up, rest, c->arg) : 0;
	if (rc < 0) {
		ftp_xfer_free(s->x, t);
		snprintf(q, sizeof(q), "%llu", (unsigned long long)rest);
		if (rc == -EINVAL)
			ftp_reply_err(s, LK_E_F_REST_PAST_END, q);
		else
			ftp_reply_errno(s, rc);
		return;
	}
	ftp_reply(s, LK_R_OK_TO_SEND, NULL);
	ftp_xfer_start(s, t);
}

/* ---- the table ---- */

#define L FTP_C_LOGIN
#define W FTP_C_WRITE
#define D FTP_C_DATA
#define X FTP_C_XFER
#define U FTP_C_UNIMPL
#define P FTP_C_PATH

/* Sorted by verb. */
const struct ftp_cmd ftp_cmds[] = {
        {"ABOR", L | X, ftp_cmd_abor, 0, NULL},
        {"ACCT", L | U, cmd_unimpl, 0, NULL},
        {"ALLO", L, cmd_allo, 0, NULL},
        {"APPE", L | W | D | P, cmd_stor, 1, NULL},
        {"AUTH", U, cmd_auth, 0, NULL},
        {"CDUP", L, cmd_cwd, 1, NULL},
        {"CWD", L | P, cmd_cwd, 0, "TVFS"},
        {"DELE", L | W | P, cmd_remove, 0, NULL},
        {"EPRT", L, ftp_cmd_port, 1, "EPRT"},
        {"EPSV", L, ftp_cmd_pasv, 1, "EPSV"},
        {"FEAT", 0, cmd_about, 0, NULL},
        {"HELP", 0, cmd_about, 1, NULL},
        {"LIST", L | D, cmd_list, FTP_L_LIST, NULL},
        {"MDTM", L | P, cmd_size, 1, "MDTM"},
        {"MFMT", L | W, cmd_mfmt, 0, "MFMT"},
        {"MKD", L | W | P, cmd_mkd, 0, NULL},
        {"MLSD", L | D, cmd_list, FTP_L_MLSD, NULL},
        {"MLST", L, cmd_mlst, 0, "MLST " FTP_LIST_MLST_FACTS},
        {"MODE", L, cmd_mode, 0, NULL},
        {"NLST", L | D, cmd_list, FTP_L_NLST, NULL},
        {"NOOP", X, cmd_noop, 0, NULL},
        {"OPTS", 0, cmd_opts, 0, "UTF8"},
        {"PASS", 0, cmd_pass, 0, NULL},
        {"PASV", L, ftp_cmd_pasv, 0, "PASV"},
        {"PORT", L, ftp_cmd_port, 0, NULL},
        {"PWD", L, cmd_pwd, 0, NULL},
        {"QUIT", 0, cmd_quit, 0, NULL},
        {"REIN", L | U, cmd_unimpl, 0, NULL},
        {"REST", L, cmd_rest, 0, "REST STREAM"},
        {"RETR", L | D | P, cmd_retr, 0, NULL},
        {"RMD", L | W | P, cmd_remove, 1, NULL},
        {"RNFR", L | W | P, cmd_rnfr, 0, NULL},
        {"RNTO", L | W | P, cmd_rnto, 0, NULL},
        {"SITE", L | U, cmd_unimpl, 0, NULL},
        {"SIZE", L | P, cmd_size, 0, "SIZE"},
        {"SMNT", L | U, cmd_unimpl, 0, NULL},
        {"STAT", L | X, cmd_stat, 0, NULL},
        {"STOR", L | W | D | P, cmd_stor, 0, NULL},
        {"STOU", L | U, cmd_unimpl, 0, NULL},
        {"STRU", L, cmd_stru, 0, NULL},
        {"SYST", 0, cmd_syst, 0, NULL},
        {"TYPE", L, cmd_type, 0, NULL},
        {"USER", 0, cmd_user, 0, NULL},
        {"XCUP", L, cmd_cwd, 1, NULL},
        {"XCWD", L | P, cmd_cwd, 0, NULL},
        {"XMKD", L | W | P, cmd_mkd, 0, NULL},
        {"XPWD", L, cmd_pwd, 0, NULL},
        {"XRMD", L | W | P, cmd_remove, 1, NULL},
};
const size_t ftp_ncmds = sizeof(ftp_cmds) / sizeof(ftp_cmds[0]);

#undef L
#undef W
#undef D
#undef X
#undef U
#undef P

static int cmd_cmp(const void *key, const void *row)
{
	return strcmp(key, ((const struct ftp_cmd *)row)->verb);
}

const struct ftp_cmd *ftp_cmd_find(const char *verb)
{
	return bsearch(verb, ftp_cmds, ftp_ncmds, sizeof(ftp_cmds[0]), cmd_cmp);
}

size_t ftp_cmds_help(char *out, size_t len)
{
	size_t o = 0, on_line = 0;
	if (!len)
		return 0;
	out[0] = 0;
	for (size_t i = 0; i < ftp_ncmds; i++) {
		if (ftp_cmds[i].flags & FTP_C_UNIMPL)
			continue;
		const char *sep = !o ? "" : on_line == FTP_HELP_PER_LINE ? "\n" : " ";
		int n = snprintf(out + o, len - o, "%s%s", sep, ftp_cmds[i].verb);
		if (n < 0 || (size_t)n >= len - o) {
			out[o] = 0;
			break;
		}
		on_line = on_line == FTP_HELP_PER_LINE ? 1 : on_line + 1;
		o += (size_t)n;
	}
	return o;
}

size_t ftp_cmds_feat(char *out, size_t len)
{
	size_t o = 0;
	if (!len)
		return 0;
	out[0] = 0;
	for (size_t i = 0; i < ftp_ncmds; i++) {
		if (!ftp_cmds[i].feat)
			continue;
		int n = snprintf(out + o, len - o, "%s%s", o ? "\n" : "", ftp_cmds[i].feat);
		if (n < 0 || (size_t)n >= len - o) {
			out[o] = 0;
			break;
		}
		o += (size_t)n;
	}
	return o;
}

/* ---- dispatch ---- */

/* "GET / HTTP/1.1": an HTTP client that stayed silent past the sniff window and got
 * our greeting. */
static int is_http_request(const struct ftp_command *c)
{
	return c->arg_len > 9 && !strncmp(c->arg + c->arg_len - 8, "HTTP/1.", 7);
}

int ftp_command(struct ftp_session *s, const struct ftp_command *c)
{
	const struct ftp_cmd *row = ftp_cmd_find(c->verb);
	if (s->xfer) {
		if (!row || !(row->flags & FTP_C_XFER))
			return 1;
		row->fn(s, c->arg, row);
		return 0;
	}
	if (!c->verb[0])
		return 0; /* an empty line: ignored, as vsftpd does */
	if (is_http_request(c)) {
		/* Not ours to explain: the server knows whether sniffing was on. */
		if (s->x->hooks.note)
			s->x->hooks.note(s->x->hooks.arg, &s->peer, PROTO_NOTE_HTTP_AFTER_GREETING);
		s->closing = 1;
		return 0;
	}
	if (!row) {
		ftp_reply_err(s, LK_E_F_UNKNOWN, NULL);
		return 0;
	}
	if (strlen(c->arg) != c->arg_len) {
		/* The kernel would cut a path at the NUL: "DELE a.txt\0.bak" is not a.txt. */
		ftp_reply_err(s, LK_E_F_NUL_ARG, NULL);
		return 0;
	}
	if ((row->flags & FTP_C_LOGIN) && !s->logged_in) {
		ftp_reply_err(s, LK_E_F_LOGIN_FIRST, NULL);
		return 0;
	}
	if (row->fn != cmd_rnto) {
		free(s->rnfr); /* RNFR holds for the very next command only */
		s->rnfr = NULL;
	}
	if ((row->flags & FTP_C_PATH) && !c->arg_len) { /* "MKD" alone is not "MKD ." */
		ftp_reply_err(s, LK_E_F_NEED_PATH, row->verb);
		return 0;
	}
	if ((row->flags & FTP_C_WRITE) && !s->x->site->write) {
		ftp_reply_err(s, LK_E_EREADONLY, NULL);
		return 0;
	}
	if ((row->flags & FTP_C_DATA) && !ftp_data_ready(s)) {
		ftp_reply_err(s, LK_E_F_NEED_DATA, NULL);
		return 0;
	}
	row->fn(s, c->arg, row);
	return 0;
}
