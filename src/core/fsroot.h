/* fsroot.h - safe file access under a root directory, shared by HTTP and FTP. */
#ifndef LOOPKIT_CORE_FSROOT_H
#define LOOPKIT_CORE_FSROOT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/types.h>

/* Every path below is a normalised relative path ("" is the root, "a/b.txt"), as
 * http_path_normalize produces. Resolution uses openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS) from the root's descriptor, so neither "..", absolute
 * symlinks nor symlinks climbing out can reach anything outside the root: the kernel
 * refuses (EXDEV), and callers see -ENOENT. */
struct fsroot {
	int fd;                /* O_PATH descriptor of the root directory */
	int dotfiles;          /* allow names starting with '.' */
	int no_tmpfile;        /* uploads use named temporary files (set when O_TMPFILE fails) */
	mode_t umask;          /* the process's, read once: the mode of new uploads */
	int follow_links;      /* symlinks are followed wherever they lead (serve --follow-symlinks) */
	atomic_int links_told; /* a link out of the root was refused and logged: once per root */
	char abs[PATH_MAX];    /* the root's canonical path, for absolute symlinks */
};

/* Start-up removes stale temporary upload names of ours below the root (left by a
 * crash where O_TMPFILE was missing) within this many directory entries read. */
#define FSROOT_SWEEP_MAX_ENTRIES 100000
#define FSROOT_SWEEP_MAX_DEPTH   16
/* A temporary name in the old format (no pid) counts as stale once this old. */
#define FSROOT_STALE_LEGACY_S 3600

/* The same confinement without openat2, used when the kernel (or valgrind) lacks it:
 * rel is walked one component at a time with O_PATH|O_NOFOLLOW from dirfd, symlinks
 * are expanded by hand (relative ones only; with no_symlinks, none), ".." never
 * climbs above dirfd, and the final open uses O_NOFOLLOW, so a name swapped for a
 * symlink meanwhile fails instead of leading out. Returns an fd or -errno (-EXDEV
 * for a way out, -ELOOP for a symlink with no_symlinks or a loop). */
int fsroot_walk_beneath(int dirfd, const char *rel, int flags, int no_symlinks);

/* Opens dir as the root (this user must be able to list and enter it), reads the
 * umask, and removes stale temporary upload files of ours below it
 * (fsroot_sweep_temps). Returns 0, or -1 with a reason in err. */
int fsroot_init(struct fsroot *r, const char *dir, char *err, size_t errlen);
/* Removes temporary upload names that no live upload owns: ".NAME.lk-PID-XXXXXX"
 * whose process is gone (or is this one: nothing of ours is in flight yet at start),
 * and the older ".NAME.lk-XXXXXX" once FSROOT_STALE_LEGACY_S old. Visits at most
 * FSROOT_SWEEP_MAX_ENTRIES entries, FSROOT_SWEEP_MAX_DEPTH deep, never following
 * symlinks or entering hidden directories. Returns how many it removed. */
unsigned fsroot_sweep_temps(const struct fsroot *r);
void fsroot_close(struct fsroot *r);

/* True when a segment of rel starts with '.' and dotfiles are not allowed. */
int fsroot_hidden(const struct fsroot *r, const char *rel);
/* True when the final name (no slash) is hidden. */
int fsroot_hidden_name(const struct fsroot *r, const char *name);

/* Opens rel beneath the root with open(2) flags (O_CLOEXEC added). Hidden names give
 * -ENOENT. An absolute symlink is followed when its target lies inside the root: the
 * path is canonicalised, and the canonical relative path is opened again with
 * RESOLVE_BENEATH, so the kernel still confines the open that counts. Returns the fd,
 * or -errno (-ENOENT for anything leading outside; the first such refusal of a
 * symlink is logged, naming the link, its target and --follow-symlinks). With
 * follow_links, symlinks are followed wherever they lead (outside the root, to hidden
 * names): only rel's own names are checked (magic links of /proc stay refused). */
int fsroot_open(const struct fsroot *r, const char *rel, int flags);

/* Opens the directory holding rel (O_PATH|O_DIRECTORY) and points *name at rel's last
 * component. rel must not be "" (the root has no parent here). Returns fd or -errno. */
int fsroot_open_parent(const struct fsroot *r, const char *rel, const char **name);

/* An upload in progress. Data goes to an unnamed file in the target's directory
 * (O_TMPFILE): nothing is visible, and a crash (even kill -9) leaves nothing behind.
 * Only a complete upload gets a name: linked straight to a new name, or linked to a
 * temporary name and renamed over the old file, so the name always holds the old or
 * the complete new content. The new file keeps the mode of the one it replaces (and,
 * as root, its owner and group); a new name gets 0644 less the umask. Where the file
 * system lacks O_TMPFILE a named temporary ".NAME.lk-PID-XXXXXX" (mode 0600) is
 * written instead; fsroot_sweep_temps removes what a crash leaves of those. */
struct fsroot_upload {
	int dirfd;       /* O_PATH fd of the target's directory */
	int fd;          /* the file being written */
	int existed;     /* the target existed when the upload began */
	int named;       /* fallback: the file is called tmp from the start */
	mode_t new_mode; /* for a new name: 0644 less the umask */
	int guard;       /* fsroot_upload_guard: commit only onto the name as it was then */
	int seen;        /* ...the name was there (then seen_*) */
	ino_t seen_ino;
	off_t seen_size;
	struct timespec seen_mtime;
	char tmp[NAME_MAX + 1];
	char name[NAME_MAX + 1];
};

/* Symlinks on the write paths follow one rule: a symlink that reads as missing
 * (fsroot_open refuses it: it leads out of the root, to a hidden name, or nowhere;
 * without follow_links) is missing for writes too and never replaced. Removing or
 * renaming it gives -ENOENT, as reading it does; uploading or renaming onto its name
 * gives -ENOLINK (LK_E_ELINKOUT), and the link stays. */

/* The errno fsroot gives for a name that is neither a plain file nor a directory (a
 * FIFO, a socket, a device): lk_err_from_errno maps it to LK_E_ENOTFILE. An upload
 * never replaces one, and nothing opens one to read (a FIFO without a writer would
 * block the event loop). */
#define FSROOT_ENOTFILE EMEDIUMTYPE

/* Starts an upload to rel. Returns 0, or -errno: -ENOENT for a hidden name,
 * -ENOENT when the parent does not exist (callers report LK_ENOPARENT), -EISDIR
 * when rel is a directory, -FSROOT_ENOTFILE when it is another kind of non-file,
 * -ENOLINK when rel is a symlink that reads as missing, -ENAMETOOLONG. */
int fsroot_upload_begin(const struct fsroot *r, const char *rel, struct fsroot_upload *u);
/* Records the target name's state now (after preconditions held on it): the commit then
 * puts the file in place only if the name still holds the same file (same inode, size
 * and modification time), or is still free, and else fails with -ECANCELED, so two
 * conditional uploads that overlap cannot both win. A free name is taken without
 * replacing what may have appeared (no-replace rename). */
void fsroot_upload_guard(struct fsroot_upload *u);
/* Writes n bytes; returns 0 or -errno (e.g. -ENOSPC). */
int fsroot_upload_write(struct fsroot_upload *u, const void *p, size_t n);
/* Flushes to disk, sets mode and owner, and puts the file in place. Returns 0 or
 * -errno; on error the upload is aborted (the old file stays). Closes everything
 * either way. */
int fsroot_upload_commit(struct fsroot_upload *u);
/* Drops the upload (an unnamed file simply goes; a named one is removed) and closes
 * everything. Safe to call twice. */
void fsroot_upload_abort(struct fsroot_upload *u);

/* Should name, an entry of the directory rel open as dirfd, be listed? Hidden names,
 * "." and "..", symlinks that lead outside the root (or nowhere) and everything but
 * regular files and directories are not. Returns 0 with *st filled (a symlink's
 * target), or -1. */
int fsroot_list_stat(const struct fsroot *r, int dirfd, const char *rel, const char *name, struct stat *st);

/* Resolves an FTP-style path: arg absolute ("/a/b") or relative to cwd (a normalised
 * relative path), joined and normalised ("." dropped, ".." climbing at most to the
 * root, as a chroot would). out gets a normalised relative path ("" for the root).
 * Returns 0, or -1 when it does not fit in outsz. */
int fsroot_join(const char *cwd, const char *arg, char *out, size_t outsz);

/* Makes directory rel (mode 0755, the umask applies); its parent must exist.
 * Returns 0 or -errno (-EEXIST, -ENOENT for a missing parent, ...). */
int fsroot_mkdir(const struct fsroot *r, const char *rel);
/* Removes a file, or an empty directory. Returns 0 or -errno (-ENOENT for a symlink
 * that reads as missing). */
int fsroot_remove(const struct fsroot *r, const char *rel);
/* fsroot_remove of a name that must itself be a directory (RMD, "dir/"): a symlink to
 * one is -ENOTDIR, as rmdir(2) says, and is left in place. */
int fsroot_remove_dir(const struct fsroot *r, const char *rel);
/* Renames from to to (both not ""; -EBUSY for the root). Returns 0 or -errno: -ENOENT
 * when from is missing or a symlink that reads as missing, -ENOLINK when to is such a
 * symlink, -EINVAL when to is inside from (a directory moved into itself), -ENOTEMPTY,
 * -EISDIR, -ENOTDIR as rename(2). */
int fsroot_rename(const struct fsroot *r, const char *from, const char *to);

#endif
