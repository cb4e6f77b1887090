/* fsroot.c - openat2(RESOLVE_BENEATH) confinement, uploads via O_TMPFILE + link/rename. */
#include "core/fsroot.h"

#include "core/log.h"
#include "core/text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The process's umask, from /proc (reading it with umask(2) would change it for a
 * moment under every other thread); 022 when /proc is missing. */
static mode_t read_umask(void)
{
	char line[128];
	mode_t m = 022;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return m;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Umask:", 6)) {
			m = (mode_t)strtoul(line + 6, NULL, 8) & 0777;
			break;
		}
	fclose(f);
	return m;
}

int fsroot_init(struct fsroot *r, const char *dir, char *err, size_t errlen)
{
	struct stat st;
	r->dotfiles = 0;
	r->no_tmpfile = 0;
	r->follow_links = 0;
	atomic_init(&r->links_told, 0);
	r->umask = read_umask();
	r->fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->fd < 0) {
		snprintf(err, errlen, "cannot open directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!realpath(dir, r->abs))
		r->abs[0] = 0;
	if (fstat(r->fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		close(r->fd);
		r->fd = -1;
		return -1;
	}
	/* O_PATH asks for no permission: check now that this user may list and enter dir,
	 * rather than start a server that answers 403 to everything. */
	if (faccessat(r->fd, ".", R_OK | X_OK, AT_EACCESS) < 0) {
		int owner = st.st_uid == geteuid();
		snprintf(err, errlen,
		         "cannot read directory %s: %s (this user needs read and search permission: %s)", dir,
		         strerror(errno),
		         owner ? "chmod u+rx it" : "its owner can chmod o+rx it, or serve it as its owner");
		close(r->fd);
		r->fd = -1;
		return -1;
	}
	fsroot_sweep_temps(r);
	return 0;
}

void fsroot_close(struct fsroot *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

int fsroot_hidden_name(const struct fsroot *r, const char *name)
{
	return !r->dotfiles && name[0] == '.';
}

int fsroot_hidden(const struct fsroot *r, const char *rel)
{
	if (r->dotfiles)
		return 0;
	for (const char *p = rel; *p; p++)
		if (*p == '.' && (p == rel || p[-1] == '/'))
			return 1;
	return 0;
}

#define WALK_MAX_DEPTH    256 /* directories deep */
#define WALK_MAX_SYMLINKS 40  /* as the kernel's limit */

/* Pops the next component off the front of path (a NUL-terminated buffer that the
 * walk rewrites as symlinks expand). Returns its length, 0 at the end. */
static size_t next_component(char **p, char *out, size_t outsz)
{
	while (**p == '/')
		(*p)++;
	size_t n = strcspn(*p, "/");
	if (n >= outsz)
		return (size_t)-1;
	memcpy(out, *p, n);
	out[n] = 0;
	*p += n;
	return n;
}

int fsroot_walk_beneath(int dirfd, const char *rel, int flags, int no_symlinks)
{
	char path[2 * PATH_MAX], comp[NAME_MAX + 1], link[PATH_MAX];
	int stack[WALK_MAX_DEPTH];
	size_t depth = 0;
	int links = 0, rc = 0;
	if (strlen(rel) >= sizeof(path))
		return -ENAMETOOLONG;
	strcpy(path, rel);
	char *p = path;
	int cur = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	for (;;) {
		size_t n = next_component(&p, comp, sizeof(comp));
		if (n == (size_t)-1) {
			rc = -ENAMETOOLONG;
			break;
		}
		if (n == 0) { /* the end: what we hold is the target (the root itself) */
			rc = openat(cur, ".", (flags & ~O_NOFOLLOW) | O_CLOEXEC);
			rc = rc < 0 ? -errno : rc;
			break;
		}
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			if (!depth) { /* above the root: what RESOLVE_BENEATH calls EXDEV */
				rc = -EXDEV;
				break;
			}
			close(cur);
			cur = stack[--depth];
			continue;
		}
		int last = !strchr(p, '/') || !p[strspn(p, "/")];
		struct stat st;
		int nx = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (nx < 0 || fstat(nx, &st) < 0) {
			rc = -errno;
			if (nx >= 0)
				close(nx);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			close(nx);
			ssize_t ln = readlinkat(cur, comp, link, sizeof(link) - 1);
			if (no_symlinks || ++links > WALK_MAX_SYMLINKS) {
				rc = -ELOOP;
				break;
			}
			if (ln <= 0) {
				rc = ln < 0 ? -errno : -ENOENT;
				break;
			}
			link[ln] = 0;
			if (link[0] == '/') { /* absolute: refused, as RESOLVE_BENEATH does */
				rc = -EXDEV;
				break;
			}
			/* Splice the target in front of what is left, and go on from here. */
			char rest[2 * PATH_MAX];
			if ((size_t)snprintf(rest, sizeof(rest), "%s/%s", link, p) >= sizeof(rest)) {
				rc = -ENAMETOOLONG;
				break;
			}
			strcpy(path, rest);
			p = path;
			continue;
		}
		if (last) {
			/* O_NOFOLLOW: if the name became a symlink since we looked, this fails
			 * rather than following it out. */
			rc = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC);
			rc = rc < 0 ? -errno : rc;
			close(nx);
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(nx);
			rc = -ENOTDIR;
			break;
		}
		if (depth == WALK_MAX_DEPTH) {
			close(nx);
			rc = -ENAMETOOLONG;
			break;
		}
		stack[depth++] = cur;
		cur = nx;
	}
	close(cur);
	while (depth)
		close(stack[--depth]);
	return rc;
}

static int openat2_beneath(int dirfd, const char *rel, int flags, mode_t mode, uint64_t extra)
{
	struct open_how how = {
	        .flags = (uint64_t)(flags | O_CLOEXEC),
	        .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
	        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | extra,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	if (fd < 0 && errno == ENOSYS) /* kernels before 5.6, valgrind, strict seccomp */
		return fsroot_walk_beneath(dirfd, rel, flags, !!(extra & RESOLVE_NO_SYMLINKS));
	if (fd < 0)
		return -errno;
	return (int)fd;
}

/* The part of an absolute canonical path below the root ("" for the root itself),
 * or NULL when it is outside. */
static const char *inside_root(const struct fsroot *r, const char *canon)
{
	size_t n = strlen(r->abs);
	if (!n)
		return NULL;
	if (n == 1) /* the root is "/" itself */
		return canon + 1;
	if (strncmp(canon, r->abs, n) || (canon[n] != '/' && canon[n]))
		return NULL;
	return canon[n] ? canon + n + 1 : "";
}

/* Says once per root that a symlink leading out of it was refused, and how to allow
 * it: without a word such links are just missing files (issue 12). links_told is the
 * root's one field that changes after start (the object itself is never const). */
static void note_link_out(const struct fsroot *r, const char *rel, const char *target)
{
	char erel[2 * PATH_MAX], etarget[2 * PATH_MAX];
	if (atomic_exchange((atomic_int *)&r->links_told, 1))
		return;
	text_escape(erel, sizeof(erel), rel, strlen(rel), 0);
	text_escape(etarget, sizeof(etarget), target, strlen(target), 0);
	log_msg("/%s is a symlink out of the served directory (to %s): answered as missing; start with "
	        "--follow-symlinks to serve such links (pnpm and yarn workspaces need it); said once",
	        erel, etarget);
}

static int confined_errno(int rc)
{
	return rc == -EXDEV || rc == -ELOOP ? -ENOENT : rc;
}

/* The open that follows symlinks: beneath the root, plus absolute symlinks whose
 * canonical target lies inside it. */
static int open_following(const struct fsroot *r, const char *rel, int flags)
{
	int fd = openat2_beneath(r->fd, rel, flags, 0, 0);
	if (fd != -EXDEV || !r->abs[0])
		return confined_errno(fd);
	/* EXDEV: resolution left the root, usually through an absolute symlink. Where the
	 * canonical path is inside the root after all, open that (again beneath). */
	char full[PATH_MAX], canon[PATH_MAX];
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", r->abs, rel) >= sizeof(full) ||
	    !realpath(full, canon))
		return -ENOENT;
	const char *crel = inside_root(r, canon);
	if (!crel)
		note_link_out(r, rel, canon);
	if (!crel || fsroot_hidden(r, crel))
		return -ENOENT;
	return confined_errno(openat2_beneath(r->fd, crel, flags, 0, 0));
}

/* --follow-symlinks: rel from the root, every symlink followed but /proc's magic
 * ones (rel itself has no ".."). */
static int open_anywhere(const struct fsroot *r, const char *rel, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_NO_MAGICLINKS};
	long fd;
	do
		fd = syscall(SYS_openat2, r->fd, *rel ? rel : ".", &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(r->fd, *rel ? rel : ".", flags | O_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

int fsroot_open(const struct fsroot *r, const char *rel, int flags)
{
	if (fsroot_hidden(r, rel))
		return -ENOENT;
	if (r->follow_links)
		return open_anywhere(r, rel, flags);
	if (r->dotfiles)
		return open_following(r, rel, flags);
	/* Without symlinks the name checked above is the name opened. */
	int fd = openat2_beneath(r->fd, rel, flags, 0, RESOLVE_NO_SYMLINKS);
	if (fd != -ELOOP && fd != -EXDEV)
		return confined_errno(fd);
	/* A symlink on the way: check the name it really leads to, so "link -> .env"
	 * hides .env as well as the direct path does. */
	fd = open_following(r, rel, flags);
	if (fd < 0)
		return fd;
	char proc[64], real[PATH_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, real, sizeof(real) - 1);
	const char *crel = NULL;
	if (n > 0) {
		real[n] = 0;
		crel = inside_root(r, real);
	}
	if (!crel || fsroot_hidden(r, crel)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

int fsroot_open_parent(const struct fsroot *r, const char *rel, const char **name)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(rel, '/');
	if (!*rel)
		return -EINVAL;
	if (fsroot_hidden(r, rel))
		return -ENOENT;
	*name = slash ? slash + 1 : rel;
	if (!slash)
		return confined_errno(openat2_beneath(r->fd, "", O_PATH | O_DIRECTORY, 0, 0));
	if ((size_t)(slash - rel) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, (size_t)(slash - rel));
	dir[slash - rel] = 0;
	return fsroot_open(r, dir, O_PATH | O_DIRECTORY);
}

/* The one rule for symlinks on the write paths: a symlink that reads as missing (it
 * leads out of the root, to a hidden name, or nowhere, and --follow-symlinks is off) is
 * missing for writes too, and is never replaced. Is name, an entry of dirfd (the
 * parent of rel), such a link? */
static int link_reads_missing(const struct fsroot *r, int dirfd, const char *rel, const char *name)
{
	struct stat st;
	if (r->follow_links || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
		return 0;
	int fd = fsroot_open(r, rel, O_PATH);
	if (fd < 0)
		return 1;
	close(fd);
	return 0;
}

/* ".NAME.lk-PID-XXXXXX": the temporary name of a named upload by process pid. */
static void temp_name(char *out, size_t len, const char *name, int i)
{
	uint32_t rnd;
	if (getentropy(&rnd, sizeof(rnd)) < 0)
		rnd = (uint32_t)getpid() * 2654435761u + (uint32_t)i;
	/* "." + ".lk-" + pid (at most 10 digits) + "-" + 6 hex (8 as the compiler
	 * counts), with room to spare. */
	snprintf(out, len, ".%.*s.lk-%u-%06x", NAME_MAX - 26, name, (unsigned)getpid(),
	         (unsigned)(rnd & 0xffffff));
}

int fsroot_upload_begin(const struct fsroot *r, const char *rel, struct fsroot_upload *u)
{
	const char *name;
	struct stat st;
	u->fd = -1;
	u->named = 0;
	u->guard = u->seen = 0;
	u->new_mode = 0644 & ~r->umask;
	u->dirfd = fsroot_open_parent(r, rel, &name);
	if (u->dirfd < 0)
		return u->dirfd;
	int e = 0;
	size_t len = strlen(name);
	if (len >= sizeof(u->name)) {
		close(u->dirfd);
		u->dirfd = -1;
		return -ENAMETOOLONG;
	}
	memcpy(u->name, name, len + 1);
	u->existed = 0;
	if (link_reads_missing(r, u->dirfd, rel, name)) {
		close(u->dirfd);
		u->dirfd = -1;
		return -ENOLINK;
	}
	if (fstatat(u->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			e = -EISDIR;
		else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			e = -FSROOT_ENOTFILE;
		u->existed = 1;
	}
	if (!e && !r->no_tmpfile) {
		/* 0600 until commit: then the final mode is set, before it has a name. */
		u->fd = openat(u->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		/* EOPNOTSUPP: the file system has none; EISDIR: the kernel has none. */
		if (u->fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			e = -errno;
	}
	for (int tries = 0; !e && u->fd < 0 && tries < 16; tries++) {
		temp_name(u->tmp, sizeof(u->tmp), name, tries);
		u->fd = openat(u->dirfd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (u->fd >= 0)
			u->named = 1;
		else if (errno != EEXIST)
			e = -errno;
	}
	if (!e && u->fd < 0)
		e = -EEXIST;
	if (e) {
		close(u->dirfd);
		u->dirfd = -1;
		return e;
	}
	return 0;
}

int fsroot_upload_write(struct fsroot_upload *u, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(u->fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

void fsroot_upload_abort(struct fsroot_upload *u)
{
	if (u->fd >= 0) {
		close(u->fd); /* an unnamed file is gone with its last descriptor */
		u->fd = -1;
	}
	if (u->dirfd >= 0) {
		if (u->named)
			unlinkat(u->dirfd, u->tmp, 0);
		close(u->dirfd);
		u->dirfd = -1;
	}
	u->named = 0;
}

/* The mode (and, as root, the owner) of the file being replaced, or the mode of a new
 * one. Setuid and setgid bits are not carried over: they belonged to the old content. */
static int upload_settle(struct fsroot_upload *u)
{
	struct stat st;
	mode_t mode = u->new_mode;
	if (fstatat(u->dirfd, u->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
		mode = st.st_mode & 0777;
		if (geteuid() == 0) {
			if (fchown(u->fd, st.st_uid, st.st_gid) < 0)
				return -errno;
		} else if (st.st_gid != getegid()) {
			/* A group we belong to is kept; another one cannot be. */
			if (fchown(u->fd, (uid_t)-1, st.st_gid) < 0 && errno != EPERM)
				return -errno;
		}
	}
	return fchmod(u->fd, mode) < 0 ? -errno : 0;
}

/* Gives the unnamed file u->fd the name `name`: through /proc/self/fd (any user), or
 * AT_EMPTY_PATH where /proc is missing (that needs CAP_DAC_READ_SEARCH). */
static int link_unnamed(struct fsroot_upload *u, const char *name)
{
	char proc[48];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", u->fd);
	if (linkat(AT_FDCWD, proc, u->dirfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	int e = errno;
	if (e == ENOENT && linkat(u->fd, "", u->dirfd, name, AT_EMPTY_PATH) == 0)
		return 0;
	return -e;
}

/* Puts the unnamed file in place. A new name is linked directly (linkat never
 * replaces). An existing name cannot be linked over, so the file is linked to a
 * temporary name and renamed over it: rename(2) swaps the name atomically, readers
 * see the old or the new file, never none. (RENAME_EXCHANGE would also work but would
 * then have to unlink the old file under the temporary name: one step more for the
 * same guarantee.) Only a crash between the link and the rename leaves the temporary
 * name, which the next start removes. */
void fsroot_upload_guard(struct fsroot_upload *u)
{
	struct stat st;
	u->guard = 1;
	u->seen = fstatat(u->dirfd, u->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (u->seen) {
		u->seen_ino = st.st_ino;
		u->seen_size = st.st_size;
		u->seen_mtime = st.st_mtim;
	}
}

/* For a guarded upload: is the name as it was at fsroot_upload_guard? */
static int guard_holds(const struct fsroot_upload *u)
{
	struct stat st;
	int now = fstatat(u->dirfd, u->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (now != u->seen)
		return 0;
	return !now ||
	       (st.st_ino == u->seen_ino && st.st_size == u->seen_size &&
	        st.st_mtim.tv_sec == u->seen_mtime.tv_sec && st.st_mtim.tv_nsec == u->seen_mtime.tv_nsec);
}

static int place_unnamed(struct fsroot_upload *u)
{
	int rc = link_unnamed(u, u->name);
	if (rc == -EEXIST && u->guard && !u->seen)
		return -ECANCELED; /* the name was free when the upload began */
	if (rc != -EEXIST)
		return rc;
	for (int tries = 0; tries < 16; tries++) {
		temp_name(u->tmp, sizeof(u->tmp), u->name, tries);
		rc = link_unnamed(u, u->tmp);
		if (rc != -EEXIST)
			break;
	}
	if (rc < 0)
		return rc;
	if (renameat(u->dirfd, u->tmp, u->dirfd, u->name) < 0) {
		rc = -errno;
		unlinkat(u->dirfd, u->tmp, 0);
	}
	return rc;
}

int fsroot_upload_commit(struct fsroot_upload *u)
{
	int e = 0;
	/* fdatasync before the name: after a crash the name holds either the old or the
	 * complete new content, never a truncated file. */
	if (fdatasync(u->fd) < 0 && errno != EINVAL)
		e = -errno;
	if (!e)
		e = upload_settle(u);
	if (!e && u->guard && !guard_holds(u))
		e = -ECANCELED;
	if (!e && !u->named)
		e = place_unnamed(u);
	else if (!e && renameat2(u->dirfd, u->tmp, u->dirfd, u->name,
	                         u->guard && !u->seen ? RENAME_NOREPLACE : 0) < 0)
		e = errno == EEXIST && u->guard ? -ECANCELED : -errno;
	if (e) {
		fsroot_upload_abort(u);
		return e;
	}
	if (close(u->fd) < 0 && errno != EINTR)
		e = -errno; /* the name is in place; a late write error is still reported */
	u->fd = -1;
	u->named = 0;
	close(u->dirfd);
	u->dirfd = -1;
	return e;
}

/* Is name a temporary upload name that no live upload owns? */
static int temp_is_stale(int dirfd, const char *name)
{
	const char *m = NULL, *p;
	if (name[0] != '.')
		return 0;
	for (p = name + 2; (p = strstr(p, ".lk-")); p++)
		m = p;
	if (!m)
		return 0;
	p = m + 4;
	size_t digits = strspn(p, "0123456789");
	if (digits && digits <= 10 && p[digits] == '-' && strspn(p + digits + 1, "0123456789abcdef") == 6 &&
	    !p[digits + 7]) {
		long pid = strtol(p, NULL, 10);
		/* At start no upload of ours is in flight: our own pid is a previous
		 * process's. EPERM: alive, another user's. */
		return pid == (long)getpid() || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
	}
	struct stat st;
	if (strspn(p, "0123456789abcdef") == 6 && !p[6] &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		return time(NULL) - st.st_mtime >= FSROOT_STALE_LEGACY_S;
	return 0;
}

static void sweep_dir(int fd, unsigned depth, unsigned *budget, unsigned *removed)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *de;
	while (*budget && (de = readdir(d))) {
		const char *name = de->d_name;
		(*budget)--;
		if (name[0] == '.') {
			if (temp_is_stale(fd, name) && unlinkat(fd, name, 0) == 0)
				(*removed)++;
			continue;
		}
		if (depth + 1 >= FSROOT_SWEEP_MAX_DEPTH || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			sweep_dir(sub, depth + 1, budget, removed);
	}
	closedir(d);
}

unsigned fsroot_sweep_temps(const struct fsroot *r)
{
	unsigned budget = FSROOT_SWEEP_MAX_ENTRIES, removed = 0;
	int fd = openat(r->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		sweep_dir(fd, 0, &budget, &removed);
	return removed;
}

int fsroot_mkdir(const struct fsroot *r, const char *rel)
{
	const char *name;
	if (!*rel)
		return -EEXIST;
	int dirfd = fsroot_open_parent(r, rel, &name);
	if (dirfd < 0)
		return dirfd;
	int rc = mkdirat(dirfd, name, 0755) < 0 ? -errno : 0;
	close(dirfd);
	return rc;
}

static int remove_as(const struct fsroot *r, const char *rel, int want_dir)
{
	const char *name;
	struct stat st;
	int dirfd = fsroot_open_parent(r, rel, &name);
	if (dirfd < 0)
		return dirfd;
	int rc = 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	else if (link_reads_missing(r, dirfd, rel, name))
		rc = -ENOENT;
	else if (want_dir && !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	else if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
		rc = -errno;
	close(dirfd);
	return rc;
}

int fsroot_remove(const struct fsroot *r, const char *rel)
{
	return remove_as(r, rel, 0);
}

int fsroot_remove_dir(const struct fsroot *r, const char *rel)
{
	return remove_as(r, rel, 1);
}

int fsroot_rename(const struct fsroot *r, const char *from, const char *to)
{
	const char *n1, *n2;
	struct stat st;
	if (!*from || !*to)
		return -EBUSY; /* the root itself */
	int d1 = fsroot_open_parent(r, from, &n1);
	if (d1 < 0)
		return d1;
	int d2 = fsroot_open_parent(r, to, &n2);
	int rc = d2;
	if (d2 >= 0) {
		if (fstatat(d1, n1, &st, AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		else if (link_reads_missing(r, d1, from, n1))
			rc = -ENOENT;
		else if (link_reads_missing(r, d2, to, n2))
			rc = -ENOLINK;
		else
			rc = renameat(d1, n1, d2, n2) < 0 ? -errno : 0;
		close(d2);
	}
	close(d1);
	return rc;
}

int fsroot_list_stat(const struct fsroot *r, int dirfd, const char *rel, const char *name, struct stat *st)
{
	if (!strcmp(name, ".") || !strcmp(name, "..") || fsroot_hidden_name(r, name))
		return -1;
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (S_ISLNK(st->st_mode)) {
		/* Through the confined open: a link out of the root is not listed. */
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", name) >=
		    sizeof(path))
			return -1;
		int t = fsroot_open(r, path, O_PATH);
		if (t < 0)
			return -1;
		int ok = fstat(t, st) == 0;
		close(t);
		if (!ok)
			return -1;
	}
	return S_ISREG(st->st_mode) || S_ISDIR(st->st_mode) ? 0 : -1;
}

int fsroot_join(const char *cwd, const char *arg, char *out, size_t outsz)
{
	size_t len = 0;
	const char *parts[2] = {arg[0] == '/' ? "" : cwd, arg};
	if (!outsz)
		return -1;
	out[0] = 0;
	for (int k = 0; k < 2; k++) {
		const char *p = parts[k];
		while (*p) {
			while (*p == '/')
				p++;
			const char *s = p;
			while (*p && *p != '/')
				p++;
			size_t n = (size_t)(p - s);
			if (!n || (n == 1 && s[0] == '.'))
				continue;
			if (n == 2 && s[0] == '.' && s[1] == '.') {
				char *slash = strrchr(out, '/');
				len = slash ? (size_t)(slash - out) : 0;
				out[len] = 0;
				continue;
			}
			if (len + (len ? 1 : 0) + n + 1 > outsz)
				return -1;
			if (len)
				out[len++] = '/';
			memcpy(out + len, s, n);
			len += n;
			out[len] = 0;
		}
	}
	return 0;
}
