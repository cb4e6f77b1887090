/* test_filecache.c - unit tests of the per-thread cache of small files: what it keeps,
 * and that a change is never hidden by it. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fsroot.h"
#include "core/loop.h"
#include "http/filecache.h"

struct fixture {
	char dir[64];
	struct loop *loop;
	struct fsroot root;
	struct filecache fc;
};

/* Rewrites dir/name in place (the same inode, as an editor saving over it may). */
static void put(const char *dir, const char *name, const char *text)
{
	char p[128];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int setup(void **state)
{
	char err[256];
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/loopkit-filecache-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	put(f->dir, "v.txt", "");
	f->loop = loop_new(err, sizeof err);
	assert_non_null(f->loop);
	assert_int_equal(fsroot_init(&f->root, f->dir, err, sizeof err), 0);
	assert_int_equal(filecache_init(&f->fc, f->loop, &f->root), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[128];
	filecache_free(&f->fc);
	fsroot_close(&f->root);
	loop_free(f->loop);
	snprintf(p, sizeof p, "%s/v.txt", f->dir);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The caller stats the file, then asks the cache to keep it. A write that lands between
 * the two is not reported by the watch that the store then adds: the entry would hold
 * what the stat described (here: empty) until the periodic re-check. It is not kept. */
static void test_a_file_changed_after_its_stat_is_not_kept(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	uint32_t h = filecache_hash("v.txt");
	int fd = fsroot_open(&f->root, "v.txt", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	put(f->dir, "v.txt", "v000001\n");
	assert_null(filecache_store(&f->fc, "v.txt", h, fd, &st));
	assert_null(filecache_lookup(&f->fc, "v.txt", h, 0));

	assert_int_equal(fstat(fd, &st), 0); /* as the next request's stat finds it */
	struct filecache_entry *e = filecache_store(&f->fc, "v.txt", h, fd, &st);
	assert_non_null(e);
	assert_int_equal(e->size, 8);
	assert_memory_equal(e->data, "v000001\n", 8);
	assert_ptr_equal(filecache_lookup(&f->fc, "v.txt", h, 0), e);
	close(fd);

	put(f->dir, "v.txt", "v000002\n"); /* after the store: the watch reports it */
	assert_null(filecache_lookup(&f->fc, "v.txt", h, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_a_file_changed_after_its_stat_is_not_kept, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
