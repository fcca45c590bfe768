/* Publishes into a ring served by `saemon serve` the way a decoder does (one
 * token at a time, the daemon idle in between) and brackets the measured part
 * with two marker system calls, for test_syscall_free.py, which runs this
 * under strace and counts the system calls of this thread between the
 * markers. The pacing is a busy wait on the vDSO clock (no system call).
 *
 * usage: syscall-producer RING D_IN TOKENS GAP_US
 * Window 1: TOKENS publishes GAP_US apart (a warm daemon: none expected).
 * Window 2: one publish after 600 ms of silence (the daemon went cold: at
 * most one futex wake expected). Prints "pid N" first. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saemon/producer.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void marker(const char *what)
{
    char path[128];
    snprintf(path, sizeof path, "/nonexistent-saemon-syscall-marker/%s", what);
    int fd = open(path, O_RDONLY);
    if (fd >= 0)
        close(fd);
}

static void spin_until(uint64_t t)
{
    while (now_ns() < t)
        ;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: syscall-producer RING D_IN TOKENS GAP_US\n");
        return 2;
    }
    uint32_t d_in = (uint32_t)atoi(argv[2]);
    int tokens = atoi(argv[3]);
    uint64_t gap = (uint64_t)atoll(argv[4]) * 1000u;
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    saemon_producer_options o = {.ring = argv[1], .model = "syscall-test", .d_in = d_in,
                                 .dtype = SAEMON_PRODUCER_F32, .handshake_timeout_ms = 10000};
    saemon_producer *p = NULL;
    char msg[256];
    if (saemon_producer_attach(&o, &p, msg, sizeof msg) != SAEMON_PRODUCER_OK) {
        fprintf(stderr, "attach: %s\n", msg);
        return 1;
    }
    saemon_producer_stats st;
    saemon_producer_get_stats(p, &st);
    if (!st.connected) {
        fprintf(stderr, "not connected: %s\n", msg);
        return 1;
    }
    float *row = calloc(d_in, sizeof *row);
    for (uint32_t i = 0; i < d_in; i++)
        row[i] = (float)((i * 37) % 11) * 0.01f;
    uint64_t tok = 0, t = now_ns();
    for (int k = 0; k < 20; k++) { /* warm-up: the ring is in use */
        saemon_producer_publish(p, 1, tok++, row, 1);
        spin_until(t += gap);
    }
    int verdicts = 0;
    marker("begin-warm");
    for (int k = 0; k < tokens; k++) {
        spin_until(t += gap);
        saemon_producer_publish(p, 1, tok++, row, 1);
        verdicts += saemon_producer_get_verdict(p, 1);
    }
    marker("end-warm");
    spin_until(now_ns() + 600000000u); /* the daemon goes cold */
    marker("begin-cold");
    saemon_producer_publish(p, 1, tok++, row, 1);
    marker("end-cold");
    saemon_producer_end_stream(p, 1, tok);
    saemon_producer_get_stats(p, &st);
    printf("published %llu dropped %llu verdicts %d\n", (unsigned long long)st.frames_published,
           (unsigned long long)st.frames_dropped, verdicts);
    saemon_producer_detach(p);
    free(row);
    return 0;
}
