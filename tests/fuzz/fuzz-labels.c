/* libFuzzer: arbitrary bytes as a JSONL labels file (docs/authoring.md
 * "Labels") for a recording of 8 streams x 64 tokens, first stream 5.
 * Accepted labels must be spans sorted by (stream, start), non-empty, inside
 * the recording, not overlapping, and the mask must be exactly their union. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/authoring.h"

enum { STREAMS = 8, TPS = 64, FIRST = 5 };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int fd = -1, devnull = -1, err_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char tmpl[] = "/tmp/saemon-fuzz-labels-XXXXXX";
    fd = mkstemp(tmpl);
    devnull = open("/dev/null", O_WRONLY);
    err_fd = dup(STDERR_FILENO);
    if (fd < 0 || devnull < 0 || err_fd < 0)
        abort();
    unlink(tmpl); /* read back through /proc: nothing is left behind */
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    uint8_t *mask = NULL;
    auth_span *spans = NULL;
    size_t n = 0;
    /* every refusal prints a message: silenced around the parse only, so
     * libFuzzer's own reports still reach stderr */
    fflush(stderr);
    dup2(devnull, STDERR_FILENO);
    bool ok = auth_labels_load("fuzz", path, STREAMS, TPS, FIRST, &mask, &spans, &n);
    fflush(stderr);
    dup2(err_fd, STDERR_FILENO);
    if (!ok)
        return 0;
    uint8_t want[STREAMS * TPS] = {0};
    for (size_t i = 0; i < n; i++) {
        const auth_span *s = &spans[i];
        if (s->stream < FIRST || s->stream >= FIRST + STREAMS || s->start >= s->end || s->end > TPS)
            abort();
        if (i && (s->stream < spans[i - 1].stream ||
                  (s->stream == spans[i - 1].stream && s->start < spans[i - 1].end)))
            abort(); /* unsorted or overlapping */
        memset(want + (s->stream - FIRST) * TPS + s->start, 1, s->end - s->start);
    }
    if (memcmp(want, mask, sizeof want))
        abort();
    free(mask);
    free(spans);
    return 0;
}
