/* fsroot.c - openat2(RESOLVE_BENEATH) confinement, uploads via temporary file + rename. */
#include "core/fsroot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int fsroot_init(struct fsroot *r, const char *dir, char *err, size_t errlen)
{
	struct stat st;
	r->dotfiles = 0;
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

static int openat2_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	if (fd < 0)
		return -errno;
	return (int)fd;
}

static int confined_errno(int rc)
{
	return rc == -EXDEV || rc == -ELOOP ? -ENOENT : rc;
}

int fsroot_open(const struct fsroot *r, const char *rel, int flags)
{
	if (fsroot_hidden(r, rel))
		return -ENOENT;
	int fd = openat2_beneath(r->fd, rel, flags, 0);
	if (fd != -EXDEV || !r->abs[0])
		return confined_errno(fd);
	/* EXDEV: resolution left the root, usually through an absolute symlink. Where the
	 * canonical path is inside the root after all, open that (again beneath). */
	char full[PATH_MAX], canon[PATH_MAX];
	size_t n = strlen(r->abs);
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", r->abs, rel) >= sizeof(full) ||
	    !realpath(full, canon))
		return -ENOENT;
	const char *crel;
	if (n == 1) /* the root is "/" itself */
		crel = canon + 1;
	else if (!strncmp(canon, r->abs, n) && (canon[n] == '/' || !canon[n]))
		crel = canon[n] ? canon + n + 1 : "";
	else
		return -ENOENT;
	if (fsroot_hidden(r, crel))
		return -ENOENT;
	return confined_errno(openat2_beneath(r->fd, crel, flags, 0));
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
		return confined_errno(openat2_beneath(r->fd, "", O_PATH | O_DIRECTORY, 0));
	if ((size_t)(slash - rel) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, (size_t)(slash - rel));
	dir[slash - rel] = 0;
	return fsroot_open(r, dir, O_PATH | O_DIRECTORY);
}

int fsroot_upload_begin(const struct fsroot *r, const char *rel, struct fsroot_upload *u)
{
	const char *name;
	struct stat st;
	u->fd = -1;
	u->dirfd = fsroot_open_parent(r, rel, &name);
	if (u->dirfd < 0)
		return u->dirfd;
	if (strlen(name) + 12 > NAME_MAX) {
		close(u->dirfd);
		u->dirfd = -1;
		return -ENAMETOOLONG;
	}
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->existed = 0;
	if (fstatat(u->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			close(u->dirfd);
			u->dirfd = -1;
			return -EISDIR;
		}
		u->existed = 1;
	}
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rnd;
		if (getentropy(&rnd, sizeof(rnd)) < 0)
			rnd = (uint64_t)getpid() * 2654435761u + (uint64_t)tries;
		snprintf(u->tmp, sizeof(u->tmp), ".%.*s.lk-%06llx", NAME_MAX - 12, name,
		         (unsigned long long)(rnd & 0xffffff));
		u->fd = openat(u->dirfd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (u->fd >= 0 || errno != EEXIST)
			break;
	}
	if (u->fd < 0) {
		int e = errno;
		close(u->dirfd);
		u->dirfd = -1;
		return -e;
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
		close(u->fd);
		u->fd = -1;
	}
	if (u->dirfd >= 0) {
		unlinkat(u->dirfd, u->tmp, 0);
		close(u->dirfd);
		u->dirfd = -1;
	}
}

int fsroot_upload_commit(struct fsroot_upload *u)
{
	int e = 0;
	/* fdatasync before rename: after a crash the name holds either the old or the
	 * complete new content, never a truncated file. */
	if (fdatasync(u->fd) < 0 && errno != EINVAL)
		e = -errno;
	if (!e && close(u->fd) < 0 && errno != EINTR)
		e = -errno;
	u->fd = -1;
	if (!e && renameat(u->dirfd, u->tmp, u->dirfd, u->name) < 0)
		e = -errno;
	if (e) {
		fsroot_upload_abort(u);
		return e;
	}
	close(u->dirfd);
	u->dirfd = -1;
	return 0;
}

int fsroot_remove(const struct fsroot *r, const char *rel)
{
	const char *name;
	struct stat st;
	int dirfd = fsroot_open_parent(r, rel, &name);
	if (dirfd < 0)
		return dirfd;
	int rc = 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	else if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
		rc = -errno;
	close(dirfd);
	return rc;
}
