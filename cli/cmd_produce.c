/* saemon produce --ring NAME --input ACTS.npy [--rate N] [--stream-per-sequence | --single-stream]
 *                [--lossless MS] [--hook NAME] [--model ID] [--first-stream N] [--rows-per-frame N]
 * Replays a recording into a running `saemon serve` through the activation
 * ring, exactly as a live model's producer would (tests, demos, load tests). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "saemon/producer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: saemon produce --ring NAME --input ACTS.npy [options]\n"
            "Publishes every row of ACTS.npy into the shared-memory ring NAME served by\n"
            "`saemon serve` (docs/ring.md). Streams follow `saemon run`: [n, d_in] is one\n"
            "stream, [batch, seq, d_in] one stream per sequence; each stream ends with an\n"
            "end-of-stream frame.\n"
            "  --rate N             publish N tokens per second (default: as fast as possible)\n"
            "  --stream-per-sequence  one stream per sequence (the default, as `saemon run`)\n"
            "  --single-stream      all rows as one stream\n"
            "  --first-stream N     id of the first stream (default 0)\n"
            "  --rows-per-frame N   rows per publish call (default 1: one frame per token)\n"
            "  --lossless MS        when the ring is full wait up to MS ms per frame (default 10000:\n"
            "                       a recording has no live model to protect, nothing is dropped)\n"
            "  --drop               never wait: drop and count when the ring is full, like a live model\n"
            "  --hook NAME          hook name to announce (default: the one saemon expects)\n"
            "  --model ID           model id to announce (default: the file name)\n"
            "  --wait MS            wait up to MS ms for saemon to serve the ring (default 5000)\n"
            "Prints published/dropped counts to stderr; exit 1 if saemon refused the producer,\n"
            "never served the ring, or (without --drop) anything was dropped.\n");
}

static bool parse_u64(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || !end || *end || end == text || text[0] == '-' || v > max) {
        fprintf(stderr, "saemon produce: %s expects an integer in 0..%" PRIu64 ", got '%s'\n", opt, max, text);
        return false;
    }
    *out = v;
    return true;
}

static void sleep_until(double t)
{
    double now = clock_now_s();
    if (t <= now)
        return;
    struct timespec ts = {(time_t)(t - now), (long)((t - now - (double)(time_t)(t - now)) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Attach and wait until saemon has answered (or the ring never appears). */
static saemon_producer *attach(const saemon_producer_options *o, uint64_t wait_ms)
{
    saemon_producer *p = NULL;
    char msg[512];
    if (saemon_producer_attach(o, &p, msg, sizeof msg) != SAEMON_PRODUCER_OK) {
        fprintf(stderr, "saemon produce: %s\n", msg);
        return NULL;
    }
    saemon_producer_stats st;
    double deadline = clock_now_s() + (double)wait_ms / 1000.0;
    for (;;) {
        saemon_producer_heartbeat(p);
        saemon_producer_get_stats(p, &st);
        if (st.refused) {
            fprintf(stderr, "saemon produce: saemon refused the producer on ring %s (see its log / "
                            "`saemon_frames_rejected_total`)\n", o->ring);
            break;
        }
        if (st.connected)
            return p;
        if (clock_now_s() >= deadline) {
            fprintf(stderr, "saemon produce: no saemon serves ring %s (waited %" PRIu64 " ms)\n", o->ring,
                    wait_ms);
            break;
        }
        sleep_until(clock_now_s() + 0.002);
    }
    saemon_producer_detach(p);
    return NULL;
}

int cmd_produce(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ring", required_argument, 0, 'r'},         {"input", required_argument, 0, 'i'},
        {"rate", required_argument, 0, 'L'},         {"stream-per-sequence", no_argument, 0, 'p'},
        {"single-stream", no_argument, 0, '1'},      {"first-stream", required_argument, 0, 'f'},
        {"rows-per-frame", required_argument, 0, 'n'}, {"lossless", required_argument, 0, 'l'},
        {"hook", required_argument, 0, 'H'},         {"model", required_argument, 0, 'm'},
        {"wait", required_argument, 0, 'w'},         {"help", no_argument, 0, 'h'},
        {"drop", no_argument, 0, 'D'},
        {0, 0, 0, 0}};
    const char *ring = NULL, *input = NULL, *hook = NULL, *model = NULL;
    double rate = 0;
    bool single = false, drop = false, lossless_set = false;
    uint64_t first_stream = 0, per_call = 1, lossless_ms = 10000, wait_ms = 5000;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': ring = optarg; break;
        case 'i': input = optarg; break;
        case 'L': if (!cli_parse_rate(optarg, &rate)) return CLI_USAGE; break;
        case 'p': single = false; break;
        case '1': single = true; break;
        case 'f': if (!parse_u64("--first-stream", optarg, (UINT64_C(1) << 55), &first_stream)) return CLI_USAGE; break;
        case 'n': if (!parse_u64("--rows-per-frame", optarg, 1u << 20, &per_call) || !per_call) return CLI_USAGE; break;
        case 'l':
            if (!parse_u64("--lossless", optarg, 4000000, &lossless_ms))
                return CLI_USAGE;
            lossless_set = true;
            break;
        case 'D': drop = true; break;
        case 'H': hook = optarg; break;
        case 'm': model = optarg; break;
        case 'w': if (!parse_u64("--wait", optarg, 86400000, &wait_ms)) return CLI_USAGE; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (!ring || !input || optind != argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (drop && lossless_set) {
        fprintf(stderr, "saemon produce: give --drop or --lossless, not both\n");
        return CLI_USAGE;
    }
    if (drop)
        lossless_ms = 0;
    saemon_npy a;
    saemon_error err = {0};
    if (saemon_npy_open(input, &a, &err) != SAEMON_OK)
        return cli_fail("produce", &err);
    size_t d_in = a.ndim ? a.shape[a.ndim - 1] : 0, n_rows = 0, n_streams = 0, per_stream = 0;
    if (saemon_npy_as_rows(&a, d_in, false, &n_rows, &n_streams, &per_stream, &err) != SAEMON_OK) {
        saemon_npy_close(&a);
        return cli_fail("produce", &err);
    }
    if (single) {
        n_streams = 1;
        per_stream = n_rows;
    }
    const char *base = strrchr(input, '/');
    saemon_producer_options o = {
        .ring = ring,
        .model = model ? model : (base ? base + 1 : input),
        .hook = hook,
        .d_in = (uint32_t)d_in,
        .dtype = SAEMON_PRODUCER_F32,
        .lossless_wait_us = (uint32_t)(lossless_ms * 1000),
        .handshake_timeout_ms = (int)(wait_ms < 60000 ? wait_ms : 60000),
    };
    if (o.model && strlen(o.model) >= 120)
        o.model = "saemon-produce";
    saemon_producer *p = attach(&o, wait_ms);
    if (!p) {
        saemon_npy_close(&a);
        return CLI_FAIL;
    }
    double t0 = clock_now_s();
    uint64_t sent = 0;
    int rc = CLI_OK;
    for (size_t s = 0; s < n_streams && rc == CLI_OK; s++) {
        uint64_t stream = first_stream + s;
        for (size_t t = 0; t < per_stream; t += per_call) {
            uint32_t n = (uint32_t)(per_stream - t < per_call ? per_stream - t : per_call);
            if (rate > 0)
                sleep_until(t0 + (double)sent / rate);
            const float *rows = a.data + (s * per_stream + t) * d_in;
            if (saemon_producer_publish(p, stream, t, rows, n) < 0) {
                fprintf(stderr, "saemon produce: publish failed (stream %" PRIu64 ")\n", stream);
                rc = CLI_FAIL;
                break;
            }
            sent += n;
        }
        saemon_producer_end_stream(p, stream, per_stream);
    }
    saemon_producer_stats st;
    saemon_producer_get_stats(p, &st);
    double secs = clock_now_s() - t0;
    fprintf(stderr,
            "saemon produce: ring %s: %" PRIu64 " tokens in %zu stream(s), published %" PRIu64
            " tokens (%" PRIu64 " frames), dropped %" PRIu64 " tokens (%" PRIu64 " frames), %.3f s, %.0f tokens/s%s\n",
            ring, sent, n_streams, st.tokens_published, st.frames_published, st.tokens_dropped,
            st.frames_dropped, secs, secs > 0 ? (double)sent / secs : 0.0,
            st.refused ? " (refused by saemon)" : "");
    if (st.refused)
        rc = CLI_FAIL;
    if (st.frames_dropped) {
        fprintf(stderr, "saemon produce: %s: %" PRIu64 " tokens (%" PRIu64 " frames) were dropped%s\n",
                drop ? "warning" : "error", st.tokens_dropped, st.frames_dropped,
                drop ? " (--drop)" : "; saemon did not keep up within --lossless, or stopped");
        if (!drop)
            rc = CLI_FAIL;
    }
    saemon_producer_detach(p);
    saemon_npy_close(&a);
    return rc;
}
