/* base/read_file: every loader refuses a FIFO (or any non-regular file) at
 * once with a clear error instead of blocking in open() or read() forever
 * (issue 12, item 10). Without the fix these tests hang until meson's
 * timeout. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/read_file.h"
#include "runtime/safetensors.h"
#include "saemon/saemon.h"
#include "tests/support/support.h"

static char *tmp;

static void setup(void)
{
    tmp = test_tmpdir();
}

static void teardown(void)
{
    test_rmtree(tmp);
    free(tmp);
}

TestSuite(read_file, .init = setup, .fini = teardown);

/* dir/name as a FIFO nobody writes to; returns the malloc'd path. */
static char *make_fifo(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    cr_assert(p);
    sprintf(p, "%s/%s", dir, name);
    cr_assert_eq(mkfifo(p, 0600), 0, "mkfifo %s", p);
    return p;
}

static void expect_not_regular(saemon_status s, const saemon_error *err, const char *path)
{
    cr_assert_eq(s, SAEMON_ERR_IO, "got %s: %s", saemon_status_name(s), err->message);
    cr_assert(strstr(err->message, path), "the message names the file: %s", err->message);
    cr_assert(strstr(err->message, "not a regular file (it is a FIFO)"), "%s", err->message);
}

Test(read_file, whole_file_refuses_a_fifo)
{
    char *p = make_fifo(tmp, "rules.yaml");
    char *text = (char *)1;
    size_t len = 1;
    saemon_error err = {0};
    expect_not_regular(read_whole_file(p, 1024, "rule file", &text, &len, &err), &err, p);
    cr_assert_null(text);
    cr_assert_eq(len, 0);
    free(p);
}

Test(read_file, map_refuses_a_fifo_and_a_directory)
{
    char *p = make_fifo(tmp, "w.safetensors");
    const void *map;
    size_t len;
    saemon_error err = {0};
    expect_not_regular(file_map_regular(p, "weights file", &map, &len, &err), &err, p);
    cr_assert_eq(file_map_regular(tmp, "weights file", &map, &len, &err), SAEMON_ERR_IO);
    cr_assert(strstr(err.message, "it is a directory"), "%s", err.message);
    st_file f;
    expect_not_regular(st_open(p, &f, &err), &err, p);
    free(p);
}

Test(read_file, regular_file_and_size_cap)
{
    free(test_write_file(tmp, "a.txt", "hello", 5));
    char path[4200];
    snprintf(path, sizeof path, "%s/a.txt", tmp);
    char *text;
    size_t len;
    saemon_error err = {0};
    cr_assert_eq(read_whole_file(path, 5, "text", &text, &len, &err), SAEMON_OK, "%s", err.message);
    cr_assert_eq(len, 5);
    cr_assert_str_eq(text, "hello");
    free(text);
    cr_assert_eq(read_whole_file(path, 4, "text", &text, &len, &err), SAEMON_ERR_FORMAT);
    cr_assert(strstr(err.message, "expected at most 4"), "%s", err.message);
}

/* Through the public API: every loader a user can point at a path. */
Test(read_file, public_loaders_refuse_a_fifo)
{
    saemon_error err = {0};
    char *p = make_fifo(tmp, "acts.npy");
    saemon_npy npy;
    expect_not_regular(saemon_npy_open(p, &npy, &err), &err, p);
    free(p);

    p = make_fifo(tmp, "rules.yaml");
    saemon_ruleset *rs = NULL;
    expect_not_regular(saemon_rules_open(p, NULL, &rs, &err), &err, p);
    cr_assert_null(rs);
    free(p);

    p = make_fifo(tmp, "sinks.yaml");
    saemon_sinks *sinks = NULL;
    cr_assert_eq(saemon_sinks_create(&sinks, &err), SAEMON_OK, "%s", err.message);
    expect_not_regular(saemon_sinks_add_config(sinks, p, &err), &err, p);
    cr_assert_eq(saemon_sinks_get_count(sinks), 0);
    saemon_sinks_destroy(sinks);
    free(p);

    p = make_fifo(tmp, "params.npz");
    saemon_dict *d = NULL;
    cr_assert_neq(saemon_dict_open(p, &d, &err), SAEMON_OK);
    cr_assert_null(d);
    free(p);
}

/* A spool directory with a FIFO where a spooled alert should be. */
Test(read_file, spool_entry_fifo)
{
    char spool[4200];
    snprintf(spool, sizeof spool, "%s/spool", tmp);
    cr_assert_eq(mkdir(spool, 0700), 0);
    char name[96]; /* SEQ(20 digits)-KEY(64 hex).json */
    snprintf(name, sizeof name, "%020d-%064d.json", 1, 0);
    free(make_fifo(spool, name));
    saemon_error err = {0};
    saemon_sinks *sinks = NULL;
    cr_assert_eq(saemon_sinks_create(&sinks, &err), SAEMON_OK);
    saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = "http://127.0.0.1:9/", .spool_dir = spool};
    /* issue 12 item 13: never opened (no hang), set aside as *.bad, start-up goes on */
    saemon_status s = saemon_sinks_add(sinks, &o, &err);
    cr_assert_eq(s, SAEMON_OK, "got %s: %s", saemon_status_name(s), err.message);
    saemon_sink_stats st;
    saemon_sinks_get_stats(sinks, 0, &st);
    cr_assert_eq(st.quarantined, 1);
    cr_assert_eq(st.spooled, 0);
    saemon_sinks_destroy(sinks);
    char bad[4400];
    snprintf(bad, sizeof bad, "%s/%s.bad", spool, name);
    struct stat sb;
    cr_assert_eq(lstat(bad, &sb), 0, "the FIFO is renamed to %s", bad);
    cr_assert(S_ISFIFO(sb.st_mode));
}
