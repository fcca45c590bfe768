/* libFuzzer: arbitrary bytes as spool entries. The first byte picks what the
 * entry is (a regular file, a symlink to one, a FIFO, a directory) and how
 * many entries; the rest is the body. spool_open must never block, never
 * follow the link, quarantine every bad entry as *.bad and return every good
 * one (a JSON value of 1 byte to 4 MiB) in sequence order. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitors/sinks/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    if (d)
        closedir(d);
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        strcpy(dir, "/tmp/saemon-fuzz-spool-XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    clear_dir();
    unsigned mode = size ? data[0] : 0;
    const uint8_t *body = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0;
    const char *key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char path[256], target[256];
    /* entry 1: the fuzzed body, as a file / symlink / FIFO / directory */
    snprintf(path, sizeof path, "%s/%020u-%s.json", dir, 7u, key);
    switch (mode & 3) {
    case 0: write_file(path, body, len); break;
    case 1:
        snprintf(target, sizeof target, "%s/target", dir);
        write_file(target, body, len);
        if (symlink(target, path) != 0)
            abort();
        break;
    case 2: if (mkfifo(path, 0600) != 0) abort(); break;
    case 3: if (mkdir(path, 0700) != 0) abort(); break;
    }
    /* entry 2 (sometimes): a good one after it, and a stale .tmp- file */
    if (mode & 4) {
        snprintf(path, sizeof path, "%s/%020u-%s.json", dir, 9u, key);
        write_file(path, (const uint8_t *)"{\"ok\":1}", 8);
        snprintf(path, sizeof path, "%s/.tmp-%020u", dir, 10u);
        write_file(path, body, len);
    }
    spool sp;
    spool_entry *pending = NULL;
    size_t n = 0;
    saemon_error err = {0};
    if (spool_open(&sp, dir, &pending, &n, &err) != SAEMON_OK)
        abort(); /* bad entries are set aside, never an error */
    for (size_t i = 0; i < n; i++) {
        if (!pending[i].body || pending[i].len == 0 || pending[i].len > (4u << 20) || !pending[i].on_disk)
            abort();
        if (i && pending[i - 1].seq >= pending[i].seq)
            abort();
    }
    if ((mode & 3) != 0 && n > 1)
        abort(); /* a link, FIFO or directory is never an entry */
    if (n + sp.quarantined != 1u + ((mode & 4) != 0))
        abort(); /* every entry is either loaded or quarantined */
    for (size_t i = 0; i < n; i++)
        free(pending[i].body);
    free(pending);
    spool_close(&sp);
    return 0;
}
