/* libFuzzer harness: any bytes as a sinks file through saemon_sinks_check_config
 * (the YAML walker, every sink kind's keys, the http_config part: headers,
 * basic_auth, authorization, tls_config with their file checks). Nothing is
 * opened or sent. The input lives in a memfd, read back through /proc. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "saemon/sinks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-sinks.yaml", MFD_CLOEXEC);
        if (fd < 0)
            __builtin_trap();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        __builtin_trap();
    saemon_error err;
    char warnings[2048];
    size_t n = 0;
    if (saemon_sinks_check_config(path, &n, warnings, sizeof warnings, &err) != SAEMON_OK &&
        strncmp(err.message, path, strlen(path)) != 0)
        __builtin_trap(); /* every failure names the file */
    return 0;
}
