/* Small helpers shared by the Criterion tests. */
#ifndef SAEMON_TEST_SUPPORT_H
#define SAEMON_TEST_SUPPORT_H

#include <stddef.h>

/* A fresh temporary directory (mkdtemp under $TMPDIR); caller frees the path. */
char *test_tmpdir(void);
/* Write bytes to dir/name; returns the malloc'd full path. */
char *test_write_file(const char *dir, const char *name, const void *data, size_t len);
/* Path of ../shared/<rel> if the shared data directory is present, else NULL
 * (tests then skip with a message). Caller frees. */
char *test_shared_path(const char *rel);
/* Remove a directory tree created by a test. */
void test_rmtree(const char *dir);

#endif
