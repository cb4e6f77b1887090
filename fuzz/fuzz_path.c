/* fuzz_path.c - http_path_normalize, http_percent_decode, fsroot_join, fsroot_open: never climb. */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsroot.h"
#include "http/parse.h"

#define OUTSZ 8192

/*
 * A small tree for fsroot_open, made once per process and removed at exit:
 *   base/secret                 outside the root
 *   base/root/a.txt, sub/b.txt  ordinary files
 *   base/root/.env              hidden unless dotfiles
 *   base/root/out-abs -> base/secret, out-rel -> ../secret, sub/upup -> ../..
 *   base/root/in-abs -> base/root/a.txt, sub/up -> .., dot -> .env
 * Whatever path the fuzzer makes, an open beneath the root never yields secret, and
 * without dotfiles never .env.
 */
static char base[64];
static struct fsroot root_plain, root_dots;
static ino_t secret_ino, env_ino;
static const char *const tree_files[] = {"secret", "root/a.txt", "root/sub/b.txt", "root/.env"};
static const char *const tree_links[][2] = {
        {"root/out-abs", "@/secret"},    {"root/out-rel", "../secret"}, {"root/sub/upup", "../.."},
        {"root/in-abs", "@/root/a.txt"}, {"root/sub/up", ".."},         {"root/dot", ".env"},
};

static void tree_path(char *out, size_t sz, const char *rel)
{
	snprintf(out, sz, "%s/%s", base, rel);
}

static void tree_remove(void)
{
	char p[256];
	fsroot_close(&root_plain);
	fsroot_close(&root_dots);
	for (size_t i = 0; i < sizeof(tree_links) / sizeof(tree_links[0]); i++) {
		tree_path(p, sizeof(p), tree_links[i][0]);
		unlink(p);
	}
	for (size_t i = 0; i < sizeof(tree_files) / sizeof(tree_files[0]); i++) {
		tree_path(p, sizeof(p), tree_files[i]);
		unlink(p);
	}
	tree_path(p, sizeof(p), "root/sub");
	rmdir(p);
	tree_path(p, sizeof(p), "root");
	rmdir(p);
	rmdir(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char p[256], target[256], err[256];
	struct stat st;
	const char *tmp = getenv("TMPDIR");
	snprintf(base, sizeof(base), "%s/lk-fuzz-path-XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(base))
		abort();
	atexit(tree_remove);
	tree_path(p, sizeof(p), "root");
	mkdir(p, 0755);
	tree_path(p, sizeof(p), "root/sub");
	mkdir(p, 0755);
	for (size_t i = 0; i < sizeof(tree_files) / sizeof(tree_files[0]); i++) {
		tree_path(p, sizeof(p), tree_files[i]);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, "x", 1) != 1)
			abort();
		close(fd);
	}
	for (size_t i = 0; i < sizeof(tree_links) / sizeof(tree_links[0]); i++) {
		const char *t = tree_links[i][1];
		if (t[0] == '@')
			snprintf(target, sizeof(target), "%s%s", base, t + 1);
		else
			snprintf(target, sizeof(target), "%s", t);
		tree_path(p, sizeof(p), tree_links[i][0]);
		if (symlink(target, p) < 0)
			abort();
	}
	tree_path(p, sizeof(p), "secret");
	if (stat(p, &st) < 0)
		abort();
	secret_ino = st.st_ino;
	tree_path(p, sizeof(p), "root/.env");
	if (stat(p, &st) < 0)
		abort();
	env_ino = st.st_ino;
	tree_path(p, sizeof(p), "root");
	if (fsroot_init(&root_plain, p, err, sizeof(err)) < 0 ||
	    fsroot_init(&root_dots, p, err, sizeof(err)) < 0)
		abort();
	root_dots.dotfiles = 1;
	return 0;
}

/* A normalised relative path: no leading, trailing or double slash, no "." or ".."
 * segment (bytes like "a..b" are an ordinary name). */
static void check_norm(const char *what, const char *p)
{
	size_t n = strlen(p);
	if (n == 0)
		return;
	FUZZ_CHECK(p[0] != '/' && p[n - 1] != '/', "%s: '%s' has an outer slash", what, p);
	FUZZ_CHECK(!strstr(p, "//"), "%s: '%s' has //", what, p);
	for (const char *s = p; s; s = strchr(s, '/') ? strchr(s, '/') + 1 : NULL) {
		size_t len = strcspn(s, "/");
		FUZZ_CHECK(!(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.'),
		           "%s: '%s' has a dot segment", what, p);
	}
}

/* Opens rel under both roots; whatever opens is inside the root and, without
 * dotfiles, not the hidden file. */
static void check_open(const char *rel)
{
	int fd = fsroot_open(&root_plain, rel, O_RDONLY);
	struct stat st;
	if (fd >= 0) {
		FUZZ_CHECK(fstat(fd, &st) == 0, "fstat");
		FUZZ_CHECK(st.st_ino != secret_ino, "'%s' opened the file outside the root", rel);
		FUZZ_CHECK(st.st_ino != env_ino, "'%s' opened a hidden file", rel);
		close(fd);
	} else {
		FUZZ_CHECK(fd != -EXDEV && fd != -ELOOP, "'%s': errno %d leaked", rel, -fd);
	}
	fd = fsroot_open(&root_dots, rel, O_RDONLY);
	if (fd >= 0) {
		FUZZ_CHECK(fstat(fd, &st) == 0, "fstat");
		FUZZ_CHECK(st.st_ino != secret_ino, "'%s' (dotfiles) opened the file outside the root", rel);
		close(fd);
	}
}

static size_t encode_all(const char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		out[3 * i] = '%';
		out[3 * i + 1] = hex[(unsigned char)in[i] >> 4];
		out[3 * i + 2] = hex[(unsigned char)in[i] & 15];
	}
	return 3 * n;
}

static char out[OUTSZ], small[OUTSZ], again[OUTSZ], joined[OUTSZ];

static void fuzz_normalize(const char *path, size_t n, uint64_t *s)
{
	int ts = -1, ts2 = -1;
	int r = http_path_normalize(path, n, out, sizeof(out), &ts);
	FUZZ_CHECK(r == HTTP_PATH_OK || r == HTTP_PATH_BAD || r == HTTP_PATH_ESCAPES ||
	                   r == HTTP_PATH_TOO_LONG,
	           "result %d", r);
	/* A NUL, raw or escaped, never gets through (an earlier error may be reported). */
	int has_nul = memchr(path, 0, n) != NULL;
	for (size_t i = 0; i + 2 < n && !has_nul; i++)
		has_nul = path[i] == '%' && path[i + 1] == '0' && path[i + 2] == '0';
	if (has_nul)
		FUZZ_CHECK(r == HTTP_PATH_BAD || r == HTTP_PATH_ESCAPES, "a NUL gave %d", r);
	if (n == 0 || path[0] != '/')
		FUZZ_CHECK(r == HTTP_PATH_BAD, "not origin-form, gave %d", r);

	/* A smaller output: the same answer, or TOO_LONG exactly when it does not fit. */
	size_t sz = (size_t)(fuzz_next(s) % (n + 2));
	int r2 = http_path_normalize(path, n, small, sz, &ts2);
	if (r == HTTP_PATH_OK && strlen(out) < sz)
		FUZZ_CHECK(r2 == HTTP_PATH_OK && strcmp(out, small) == 0 && ts == ts2, "outsz %zu: %d", sz,
		           r2);
	else if (r == HTTP_PATH_OK)
		FUZZ_CHECK(r2 == HTTP_PATH_TOO_LONG, "outsz %zu for %zu bytes: %d", sz, strlen(out), r2);
	else if (r != HTTP_PATH_TOO_LONG)
		FUZZ_CHECK(r2 == r, "outsz %zu: %d, with room %d", sz, r2, r);
	if (r != HTTP_PATH_OK)
		return;

	check_norm("normalize", out);
	FUZZ_CHECK(ts == 0 || ts == 1, "trailing %d", ts);
	if (out[0] == 0)
		FUZZ_CHECK(ts == 1, "root without trailing slash");
	check_open(out);

	/* Normalising is idempotent (when no '%' in the output would be decoded again). */
	size_t ol = strlen(out);
	if (!strchr(out, '%') && ol + 1 < sizeof(again)) {
		char p2[OUTSZ + 1];
		p2[0] = '/';
		memcpy(p2 + 1, out, ol);
		FUZZ_CHECK(http_path_normalize(p2, ol + 1, again, sizeof(again), &ts2) == HTTP_PATH_OK &&
		                   strcmp(again, out) == 0,
		           "normalising '%s' again gave '%s'", out, again);
	}
	/* Without escapes, FTP's join of the same path agrees with it. */
	if (!memchr(path, '%', n)) {
		char *cpath = fuzz_strdup(path, n);
		FUZZ_CHECK(fsroot_join("", cpath, joined, sizeof(joined)) == 0 && strcmp(joined, out) == 0,
		           "join gave '%s', normalize '%s'", joined, out);
		free(cpath);
	}
}

static void fuzz_decode(const char *src, size_t n, uint64_t *s)
{
	int plus = (int)(fuzz_next(s) & 1);
	char *dec = malloc(n + 1), *enc = malloc(3 * n + 1), *back = malloc(n + 1);
	ssize_t d = http_percent_decode(src, n, dec, n, plus);
	FUZZ_CHECK(d >= -1 && d <= (ssize_t)n, "decoded length %zd of %zu", d, n);
	if (d >= 0) {
		/* Exactly d bytes of room suffice; one less does not. */
		if (d > 0)
			FUZZ_CHECK(http_percent_decode(src, n, back, (size_t)d - 1, plus) == -1,
			           "fit in d-1");
		FUZZ_CHECK(http_percent_decode(src, n, back, (size_t)d, plus) == d &&
		                   !memcmp(back, dec, (size_t)d),
		           "not repeatable");
		/* Round trip: escaping every byte and decoding gives the bytes back. */
		size_t el = encode_all(dec, (size_t)d, enc);
		FUZZ_CHECK(http_percent_decode(enc, el, back, n, plus) == d && !memcmp(back, dec, (size_t)d),
		           "round trip");
		if (!memchr(src, '%', n) && !(plus && memchr(src, '+', n)))
			FUZZ_CHECK(d == (ssize_t)n && !memcmp(dec, src, n), "plain text changed");
	}
	free(dec);
	free(enc);
	free(back);
}

static void fuzz_join(const char *data, size_t n)
{
	/* "cwd\narg": both as C strings (cut at a NUL). Without '\n', cwd is "". */
	char *buf = fuzz_strdup(data, n), *cwd = "", *arg = buf;
	char *nl = memchr(buf, '\n', n);
	if (nl) {
		*nl = 0;
		cwd = buf;
		arg = nl + 1;
	}
	int r = fsroot_join(cwd, arg, joined, sizeof(joined));
	FUZZ_CHECK(r == 0 || r == -1, "result %d", r);
	if (r == 0) {
		check_norm("join", joined);
		check_open(joined);
		/* An absolute argument does not depend on the directory. */
		if (arg[0] == '/') {
			FUZZ_CHECK(fsroot_join("", arg, again, sizeof(again)) == 0 && !strcmp(again, joined),
			           "absolute '%s' depends on cwd", arg);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	uint64_t s = fuzz_seed(data, n);
	char *p = fuzz_dup(data, n);
	fuzz_normalize(p, n, &s);
	fuzz_decode(p, n, &s);
	fuzz_join(p, n);
	free(p);
	return 0;
}
