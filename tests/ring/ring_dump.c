/* Test consumer: serves one ring and prints every frame, for producers
 * written in other languages (tests/ring/test_python_producer.py).
 *   ring-dump NAME D_IN HOOK|- VERDICT_ON_EOS
 * Prints "READY", then per frame
 *   F <stream> <token> <n_rows> <gap> <eos> <dropped> <crc32 of the fp32 rows>
 * and sets the stream's verdict to VERDICT_ON_EOS (0 = none) on end-of-stream.
 * When stdin closes it prints
 *   S <tokens_received> <tokens_produced> <frames_dropped> <rejected> <refused> <model> <dtype>
 * and exits. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "saemon/ring.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: ring-dump NAME D_IN HOOK|- VERDICT_ON_EOS\n");
        return 2;
    }
    saemon_ring_options o = {.name = argv[1], .slots = 64, .max_rows_per_frame = 8,
                             .d_in = (uint32_t)atoi(argv[2]),
                             .hook = strcmp(argv[3], "-") ? argv[3] : NULL};
    int verdict = atoi(argv[4]);
    saemon_ring *r = NULL;
    saemon_error err;
    if (saemon_ring_create(&o, &r, &err) != SAEMON_OK) {
        fprintf(stderr, "ring-dump: %s\n", err.message);
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    for (;;) {
        saemon_frame f;
        int rc = saemon_ring_next(r, &f, 20, &err);
        if (rc < 0) {
            fprintf(stderr, "ring-dump: %s\n", err.message);
            return 1;
        }
        if (rc == 1) {
            uLong crc = crc32(0L, (const Bytef *)f.rows, (uInt)(f.n_rows * f.d_in * sizeof(float)));
            printf("F %llu %llu %u %d %d %llu %lu\n", (unsigned long long)f.stream,
                   (unsigned long long)f.token, f.n_rows, f.gap, f.end_of_stream,
                   (unsigned long long)f.dropped, crc);
            fflush(stdout);
            if (f.end_of_stream && verdict > 0)
                saemon_ring_set_verdict(r, f.stream, (saemon_verdict)verdict);
            saemon_ring_release(r);
            continue;
        }
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, 0) > 0) {
            char c;
            if (read(0, &c, 1) <= 0)
                break;
        }
    }
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    printf("S %llu %llu %llu %llu %llu %s %s\n", (unsigned long long)st.tokens_received,
           (unsigned long long)st.tokens_produced, (unsigned long long)st.frames_dropped,
           (unsigned long long)st.frames_rejected_total, (unsigned long long)st.producers_refused,
           st.model[0] ? st.model : "-", st.dtype[0] ? st.dtype : "-");
    saemon_ring_destroy(r);
    return 0;
}
