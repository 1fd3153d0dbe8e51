#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fswatch.h"
#include "tests/lib/testutil.h"

static char *
join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Sets PATH's modification time explicitly, so the test does not depend on clock granularity. */
static void
set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
test_file_changes_are_seen(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("fswatch");
	char *f = join(dir, "routes.yaml");
	assert_int_equal(aam_test_write_file(f, "a: 1\n", 5, 0600), 0);
	set_mtime(f, 1000000);
	const char *paths[] = {f, NULL};
	uint64_t a = aam_fswatch_fingerprint(paths, 2);
	assert_int_equal(a, aam_fswatch_fingerprint(paths, 2)); /* stable */

	/* Same size, new time. */
	assert_int_equal(aam_test_write_file(f, "a: 2\n", 5, 0600), 0);
	set_mtime(f, 1000000);
	uint64_t same_time = aam_fswatch_fingerprint(paths, 2);
	set_mtime(f, 1000001);
	uint64_t b = aam_fswatch_fingerprint(paths, 2);
	assert_int_not_equal(a, b);
	(void)same_time;

	/* Replaced by rename (a new inode), as editors do. */
	char *tmp = join(dir, ".routes.tmp");
	assert_int_equal(aam_test_write_file(tmp, "a: 3\n", 5, 0600), 0);
	set_mtime(tmp, 1000001);
	assert_int_equal(rename(tmp, f), 0);
	uint64_t c = aam_fswatch_fingerprint(paths, 2);
	assert_int_not_equal(b, c);

	/* Removed, then back. */
	assert_int_equal(unlink(f), 0);
	uint64_t gone = aam_fswatch_fingerprint(paths, 2);
	assert_int_not_equal(c, gone);
	assert_int_equal(gone, aam_fswatch_fingerprint(paths, 2));

	free(tmp);
	free(f);
	aam_test_rmtree(dir);
	free(dir);
}

static void
test_folder_entries_are_seen(void **state)
{
	(void)state;
	char *dir = aam_test_mkdtemp("fswatch");
	char *a = join(dir, "a.yaml");
	char *b = join(dir, "b.yaml");
	char *hidden = join(dir, ".swp");
	assert_int_equal(aam_test_write_file(a, "x", 1, 0600), 0);
	set_mtime(a, 2000000);
	const char *paths[] = {dir};
	set_mtime(dir, 2000000);
	uint64_t h1 = aam_fswatch_fingerprint(paths, 1);

	/* A new file in the folder (the folder's own time reset to isolate the entry). */
	assert_int_equal(aam_test_write_file(b, "y", 1, 0600), 0);
	set_mtime(b, 2000000);
	set_mtime(dir, 2000000);
	uint64_t h2 = aam_fswatch_fingerprint(paths, 1);
	assert_int_not_equal(h1, h2);

	/* An entry's content changes while the folder does not. */
	assert_int_equal(aam_test_write_file(b, "yy", 2, 0600), 0);
	set_mtime(b, 2000000);
	set_mtime(dir, 2000000);
	uint64_t h3 = aam_fswatch_fingerprint(paths, 1);
	assert_int_not_equal(h2, h3);

	/* Hidden files (editor swap files) do not count. */
	assert_int_equal(aam_test_write_file(hidden, "z", 1, 0600), 0);
	set_mtime(dir, 2000000);
	assert_int_equal(h3, aam_fswatch_fingerprint(paths, 1));

	/* Hostile arguments. */
	assert_int_equal(aam_fswatch_fingerprint(NULL, 3), aam_fswatch_fingerprint(NULL, 0));
	const char *nulls[] = {NULL, NULL};
	assert_int_equal(aam_fswatch_fingerprint(nulls, 2), aam_fswatch_fingerprint(NULL, 0));

	free(a);
	free(b);
	free(hidden);
	aam_test_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_file_changes_are_seen),
	        cmocka_unit_test(test_folder_entries_are_seen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
