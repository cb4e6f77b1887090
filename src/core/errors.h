/* errors.h - one table from internal errors to messages, HTTP statuses and FTP replies. */
#ifndef LOOPKIT_CORE_ERRORS_H
#define LOOPKIT_CORE_ERRORS_H

enum lk_err {
	LK_OK = 0,
	LK_ENOENT,       /* no such file (also: hidden dotfile, escape through a symlink) */
	LK_EACCES,       /* permission denied by the file system */
	LK_EEXIST,       /* already exists */
	LK_ENOTEMPTY,    /* directory not empty */
	LK_EISDIR,       /* is a directory where a file is needed */
	LK_ENOTDIR,      /* a path component is not a directory */
	LK_ENOPARENT,    /* the parent directory of an upload does not exist */
	LK_ENOSPC,       /* disk full or quota exceeded */
	LK_ENAMETOOLONG, /* name too long */
	LK_EREADONLY,    /* server is read-only (no --write) */
	LK_ETOOBIG,      /* body or file larger than the limit */
	LK_EBADPATH,     /* malformed path */
	LK_EIO,          /* any other I/O error */
	LK_ENOMEM,       /* out of memory */
	LK_EMFILE,       /* out of file descriptors */
	LK_ERR_COUNT
};

struct lk_error {
	int http;        /* HTTP status */
	int ftp;         /* FTP reply code */
	const char *msg; /* one line, for bodies, replies and logs */
};

/* Maps an errno value from a file-system call to the table. */
enum lk_err lk_err_from_errno(int e);
/* The row for e; never NULL. */
const struct lk_error *lk_error(enum lk_err e);

#endif
