/* saemon-bench-producer: what the ring costs the model process.
 *
 *   saemon-bench-producer [--d-in N] [--tokens N] [--dtype f32|f16|bf16]
 *       C producer cost per token (one row per publish, a consumer thread
 *       draining so nothing is dropped), the cost of a dropped publish (ring
 *       full), and the ring-level verdict delay (publish -> consumer sees the
 *       frame and sets a verdict -> producer reads it), p50/p99.
 *   saemon-bench-producer --serve NAME [--d-in N]
 *       Only drain ring NAME (for producers in other languages, e.g.
 *       producers/python/bench_producer.py) until stdin closes, then print
 *       "tokens_received frames_dropped rejected".
 * Prints one "key value unit" line per figure (machine-readable). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "saemon/producer.h"
#include "saemon/ring.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

typedef struct drainer {
    saemon_ring *r;
    int stop;
    int verdict_each; /* set a verdict on every frame (verdict-delay mode) */
} drainer;

static void *drain(void *arg)
{
    drainer *d = arg;
    saemon_frame f;
    while (!__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE)) {
        if (saemon_ring_next(d->r, &f, 10, NULL) == 1 && d->verdict_each)
            saemon_ring_set_verdict(d->r, f.stream, SAEMON_VERDICT_BLOCK);
    }
    return NULL;
}

static saemon_producer *attach_while_draining(const char *name, uint32_t d_in, saemon_producer_dtype dt)
{
    saemon_producer_options o = {.ring = name, .model = "bench", .hook = "bench", .d_in = d_in,
                                 .dtype = dt, .handshake_timeout_ms = 5000};
    saemon_producer *p = NULL;
    char msg[256];
    if (saemon_producer_attach(&o, &p, msg, sizeof msg) != SAEMON_PRODUCER_OK) {
        fprintf(stderr, "attach: %s\n", msg);
        exit(1);
    }
    return p;
}

/* Create ring `name` (1024 slots) and start a thread draining it into *d. */
static saemon_ring *start_drainer(const char *name, uint32_t d_in, uint32_t rows, drainer *d, pthread_t *t)
{
    saemon_ring_options o = {.name = name, .slots = 1024, .max_rows_per_frame = rows, .d_in = d_in};
    saemon_ring *r = NULL;
    saemon_error err;
    if (saemon_ring_create(&o, &r, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    *d = (drainer){.r = r};
    pthread_create(t, NULL, drain, d);
    return r;
}

static int serve(const char *name, uint32_t d_in)
{
    drainer d;
    pthread_t t;
    saemon_ring *r = start_drainer(name, d_in, 4, &d, &t);
    printf("READY\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    __atomic_store_n(&d.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    printf("%llu %llu %llu", (unsigned long long)st.tokens_received,
           (unsigned long long)st.frames_dropped, (unsigned long long)st.frames_rejected_total);
    for (int i = 0; i < SAEMON_RING_REJECT_COUNT; i++)
        if (st.frames_rejected[i])
            printf(" %s=%llu", saemon_ring_reject_name((saemon_ring_reject)i),
                   (unsigned long long)st.frames_rejected[i]);
    printf("\n");
    saemon_ring_destroy(r);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t d_in = 2304;
    long tokens = 200000;
    const char *serve_name = NULL;
    saemon_producer_dtype dt = SAEMON_PRODUCER_F32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--d-in") && i + 1 < argc)
            d_in = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            tokens = atol(argv[++i]);
        else if (!strcmp(argv[i], "--serve") && i + 1 < argc)
            serve_name = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            i++;
            dt = !strcmp(argv[i], "f16") ? SAEMON_PRODUCER_F16 : !strcmp(argv[i], "bf16") ? SAEMON_PRODUCER_BF16
                                                                                          : SAEMON_PRODUCER_F32;
        } else {
            fprintf(stderr, "usage: saemon-bench-producer [--d-in N] [--tokens N] [--dtype f32|f16|bf16] | "
                            "--serve NAME [--d-in N]\n");
            return 2;
        }
    }
    if (serve_name)
        return serve(serve_name, d_in);
    if (d_in == 0 || tokens < 100)
        return 2;

    char name[64];
    snprintf(name, sizeof name, "bench%ld", (long)getpid());
    drainer d;
    pthread_t t;
    saemon_ring *r = start_drainer(name, d_in, 1, &d, &t);
    saemon_producer *p = attach_while_draining(name, d_in, dt);

    size_t row_bytes = (size_t)d_in * (dt == SAEMON_PRODUCER_F32 ? 4 : 2);
    uint8_t *row = malloc(row_bytes);
    for (size_t i = 0; i < row_bytes; i++)
        row[i] = (uint8_t)(i * 7 + 1);
    if (dt == SAEMON_PRODUCER_F32)
        for (uint32_t i = 0; i < d_in; i++)
            ((float *)row)[i] = (float)i * 0.001f;
    double *lat = malloc((size_t)tokens * sizeof *lat);

    /* 1. publish cost per token. Timed in bursts that fit the ring, with an
     *    untimed pause for the consumer to drain between bursts, so every
     *    timed publish is a real one (not the cheaper drop path). */
    for (long k = 0; k < 1000; k++) /* warm-up */
        saemon_producer_publish(p, 1, (uint64_t)k, row, 1);
    long dropped = 0;
    double total = 0, cpu = 0;
    const long burst = 512;
    saemon_ring_stats st;
    for (long k0 = 0; k0 < tokens; k0 += burst) {
        do { /* wait until the consumer caught up */
            saemon_ring_get_stats(r, &st);
        } while (st.consumer_seq + 1 < st.producer_seq);
        long end = k0 + burst < tokens ? k0 + burst : tokens;
        double b0 = clock_now_s(), c0 = clock_thread_cpu_s();
        for (long k = k0; k < end; k++) {
            double a = clock_now_s();
            dropped += saemon_producer_publish(p, 2, (uint64_t)k, row, 1) != SAEMON_PRODUCER_OK;
            lat[k] = clock_now_s() - a;
        }
        total += clock_now_s() - b0;
        cpu += clock_thread_cpu_s() - c0;
    }
    printf("c_publish_mean %.3f us\n", total / (double)tokens * 1e6);
    printf("c_publish_cpu_mean %.3f us (thread CPU time, includes 2 clock reads per call)\n",
           cpu / (double)tokens * 1e6);
    printf("c_publish_p50 %.3f us\n", pct(lat, (size_t)tokens, 0.50) * 1e6);
    printf("c_publish_p99 %.3f us\n", pct(lat, (size_t)tokens, 0.99) * 1e6);
    printf("c_publish_dropped %ld frames\n", dropped);

    /* 2. verdict delay: frame published -> consumer thread sets a verdict ->
     *    the producer reads it (ring + wake-up path, no encoding) */
    d.verdict_each = 1;
    long n_v = tokens / 100 < 2000 ? tokens / 100 : 2000;
    for (long k = 0; k < n_v; k++) {
        uint64_t stream = 1000 + (uint64_t)k;
        double a = clock_now_s();
        saemon_producer_publish(p, stream, 0, row, 1);
        while (saemon_producer_get_verdict(p, stream) == 0) {
        }
        lat[k] = clock_now_s() - a;
        struct timespec ts = {0, 200000}; /* let the consumer go idle (futex sleep) */
        nanosleep(&ts, NULL);
    }
    printf("verdict_delay_p50 %.2f us\n", pct(lat, (size_t)n_v, 0.50) * 1e6);
    printf("verdict_delay_p99 %.2f us\n", pct(lat, (size_t)n_v, 0.99) * 1e6);

    /* 3. cost of a dropped publish: stop the consumer, fill the ring */
    __atomic_store_n(&d.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    for (int k = 0; k < 1100; k++)
        saemon_producer_publish(p, 3, (uint64_t)k, row, 1);
    long n_d = tokens < 100000 ? tokens : 100000;
    double t0 = clock_now_s();
    for (long k = 0; k < n_d; k++)
        saemon_producer_publish(p, 3, (uint64_t)k, row, 1);
    printf("c_drop_mean %.3f us\n", (clock_now_s() - t0) / (double)n_d * 1e6);

    saemon_producer_detach(p);
    saemon_ring_destroy(r);
    free(row);
    free(lat);
    return 0;
}
