/*
 * Small helpers shared by tests: temporary folders, files, free ports.
 * Include after <cmocka.h> prerequisites (stdarg, stddef, setjmp).
 */
#ifndef AAM_TESTS_TESTUTIL_H
#define AAM_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* mkdtemp under $TMPDIR (or /tmp) with PREFIX; returns a malloc'd path. */
char *aam_test_mkdtemp(const char *prefix);
/* rm -rf of a folder made by aam_test_mkdtemp (refuses other paths). */
void aam_test_rmtree(const char *path);
/* Writes a file; returns 0 on success. */
int aam_test_write_file(const char *path, const void *data, size_t len, int mode);
/* Reads a whole file (NUL-terminated, malloc'd), NULL on error. */
char *aam_test_read_file(const char *path, size_t *len);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int aam_test_free_port(void);
/* Path under the source tree: $AAM_SOURCE_DIR/REL (malloc'd). */
char *aam_test_source_path(const char *rel);
/* Whether an executable is on PATH. */
int aam_test_have_program(const char *name);

/*
 * Runs a shell command built from FMT (our own temp paths only, never
 * input from outside the test).  *OUT (may be NULL) gets its stdout,
 * malloc'd, at most 16 MiB.  Returns the exit status, -1 when it could not
 * run or did not exit normally.
 */
int aam_test_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
