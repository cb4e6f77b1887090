/* errors.c - the error table shared by HTTP and FTP. */
#include "core/errors.h"

#include <errno.h>

static const struct lk_error table[LK_ERR_COUNT] = {
        [LK_OK] = {200, 200, "ok"},
        [LK_ENOENT] = {404, 550, "no such file or directory"},
        [LK_EACCES] = {403, 550, "permission denied"},
        [LK_EEXIST] = {409, 550, "already exists"},
        [LK_ENOTEMPTY] = {409, 550, "directory not empty"},
        [LK_EISDIR] = {409, 550, "is a directory"},
        [LK_ENOTDIR] = {404, 550, "not a directory"},
        [LK_ENOPARENT] = {409, 553, "parent directory does not exist"},
        [LK_ENOSPC] = {507, 552, "no space left on device"},
        [LK_ENAMETOOLONG] = {414, 553, "name too long"},
        [LK_EREADONLY] = {405, 550, "server is read-only; start it with --write to allow changes"},
        [LK_ETOOBIG] = {413, 552, "too large"},
        [LK_EBADPATH] = {400, 553, "malformed path"},
        [LK_EIO] = {500, 451, "input/output error"},
        [LK_ENOMEM] = {503, 451, "out of memory"},
        [LK_EMFILE] = {503, 421, "out of file descriptors"},
};

enum lk_err lk_err_from_errno(int e)
{
	switch (e) {
	case 0: return LK_OK;
	case ENOENT:
	case EXDEV: /* RESOLVE_BENEATH: the path leads outside the root */
	case ELOOP: return LK_ENOENT;
	case EACCES:
	case EPERM:
	case EROFS: return LK_EACCES;
	case EEXIST: return LK_EEXIST;
	case ENOTEMPTY: return LK_ENOTEMPTY;
	case EISDIR: return LK_EISDIR;
	case ENOTDIR: return LK_ENOTDIR;
	case ENOSPC:
	case EDQUOT: return LK_ENOSPC;
	case ENAMETOOLONG: return LK_ENAMETOOLONG;
	case EFBIG: return LK_ETOOBIG;
	case ENOMEM: return LK_ENOMEM;
	case EMFILE:
	case ENFILE: return LK_EMFILE;
	default: return LK_EIO;
	}
}

const struct lk_error *lk_error(enum lk_err e)
{
	if ((unsigned)e >= LK_ERR_COUNT)
		e = LK_EIO;
	return &table[e];
}
