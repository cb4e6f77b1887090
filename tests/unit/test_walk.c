/* test_walk.c - the openat2 fallback walk agrees with openat2(RESOLVE_BENEATH). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fsroot.h"

static char base[64];

static void put(const char *rel, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void link_(const char *target, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
	char p[PATH_MAX];
	snprintf(base, sizeof(base), "/tmp/lk-walk-XXXXXX");
	assert_non_null(mkdtemp(base));
	put("secret", "SECRET");
	snprintf(p, sizeof(p), "%s/root", base);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/root/sub", base);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/root/sub/deeper", base);
	mkdir(p, 0755);
	put("root/a.txt", "A");
	put("root/sub/b.txt", "B");
	put("root/sub/deeper/c.txt", "C");
	link_("a.txt", "root/link_in");
	link_("sub/deeper", "root/dirlink_in");
	link_("../a.txt", "root/sub/up");
	link_("../../a.txt", "root/sub/deeper/up2");
	link_("../../../secret", "root/sub/deeper/out3");
	link_("/etc/passwd", "root/abs_out");
	link_("../secret", "root/rel_out");
	link_("..", "root/dirlink_out");
	link_("loop", "root/loop");
	link_("chain2", "root/chain1");
	link_("chain3", "root/chain2");
	link_("sub/b.txt", "root/chain3");
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd) == 0 ? 0 : -1;
}

static int kernel_open(int dirfd, const char *rel, int nosym)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
	                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
	                                  (nosym ? RESOLVE_NO_SYMLINKS : 0)};
	long fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

static void content(int fd, char *out, size_t n)
{
	ssize_t r = pread(fd, out, n - 1, 0);
	out[r > 0 ? r : 0] = 0;
}

static void test_walk_matches_openat2(void **state)
{
	static const char *paths[] = {
	        "a.txt",
	        "sub/b.txt",
	        "sub/deeper/c.txt",
	        "link_in",
	        "dirlink_in/c.txt",
	        "sub/up",
	        "sub/deeper/up2",
	        "sub/deeper/out3",
	        "abs_out",
	        "rel_out",
	        "dirlink_out/secret",
	        "dirlink_out/root/a.txt",
	        "loop",
	        "chain1",
	        "missing",
	        "sub/missing/x",
	        "a.txt/x",
	        "sub/../a.txt",
	        "../secret",
	        "sub/../../secret",
	        "",
	        "sub",
	};
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/root", base);
	int rfd = open(root, O_PATH | O_DIRECTORY);
	assert_true(rfd >= 0);
	for (int nosym = 0; nosym < 2; nosym++) {
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			int k = kernel_open(rfd, paths[i], nosym);
			int w = fsroot_walk_beneath(rfd, paths[i], O_RDONLY, nosym);
			if ((k >= 0) != (w >= 0))
				fail_msg("%s (no_symlinks %d): openat2 %d, walk %d", paths[i], nosym, k, w);
			if (k >= 0) {
				struct stat sa, sb;
				fstat(k, &sa);
				fstat(w, &sb);
				if (sa.st_ino != sb.st_ino)
					fail_msg("%s: different files", paths[i]);
				if (S_ISREG(sa.st_mode)) {
					char a[64], b[64];
					content(k, a, sizeof(a));
					content(w, b, sizeof(b));
					assert_string_equal(a, b);
					assert_string_not_equal(b, "SECRET");
				}
				close(k);
				close(w);
			} else if (k == -EXDEV && w != -EXDEV && w != -ENOENT && w != -ELOOP) {
				fail_msg("%s: openat2 EXDEV, walk %d", paths[i], w);
			}
		}
	}
	close(rfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_walk_matches_openat2, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
