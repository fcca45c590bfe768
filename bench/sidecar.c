/* saemon-bench sidecar: what a model server pays and what it gets back when
 * `saemon serve` watches it through the shared-memory ring.
 *
 *   producer cost    per saemon_producer_publish() of one token (C), p50/p99, at
 *                    50, 500, 5,000 and 50,000 tokens/s, 1 or 16 streams per
 *                    decode step, with the verdict delay and the daemon's CPU
 *                    use at each rate, and the first token after a pause
 *   verdict delay    publish of an offending token -> its verdict visible to the
 *                    producer (a rule with `action: block`), p50/p99
 *   alert delay      the same token -> its alert line written to the JSONL file
 *   sustained rate   tokens/s the daemon keeps up with, with zero drops
 *   in-process peer  the same SAE encoded per token by PyTorch in the model's
 *                    own process (peers.py), what the sidecar saves the model
 * The dictionary is the benchmark's trained-like synthetic one (synth.c),
 * written as a SAELens directory; `saemon serve` runs as a child process,
 * encoding on another core than the producer. docs/benchmarks.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include <cjson/cJSON.h>

#include "bench.h"
#include "saemon/npy.h"
#include "saemon/producer.h"
#include "synth.h"

typedef struct sc_opts {
    size_t d_in, d_sae;
    double seconds;   /* per sustained-rate step */
    size_t trials;    /* verdict trials */
    const char *saemon, *python, *out;
    const char *encode; /* passed to saemon serve: auto (the default) or all */
    int no_peers, quick;
} sc_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: saemon bench sidecar [--shape gemma|gpt2|DINxDSAE] [--seconds S] [--trials N]\n"
               "                            [--encode auto|all] [--quick] [--no-peers] [--out FILE.json]\n"
               "Starts `saemon serve` on a synthetic trained-like JumpReLU dictionary (default the\n"
               "Gemma-2-2B shape 2304x16384) and measures the producer's cost per token, the delay\n"
               "from an offending token to its verdict and to its alert, the sustained rate with\n"
               "zero drops, and PyTorch encoding the same SAE in-process per token. --encode all makes\n"
               "the daemon encode every latent (auto: only the one the benchmark's rule watches).\n");
}

static double now_s(void)
{
    return clock_now_s();
}

static int pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

/* ---- the dictionary as a SAELens directory ---- */

static int write_tensor_header(FILE *f, const char *const names[], const size_t shapes[][2], const int ndims[],
                               size_t n)
{
    char hdr[2048];
    size_t off = 0, len = 0;
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "{");
    for (size_t i = 0; i < n; i++) {
        size_t bytes = 4 * shapes[i][0] * (ndims[i] == 2 ? shapes[i][1] : 1);
        if (ndims[i] == 2)
            len += (size_t)snprintf(hdr + len, sizeof hdr - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", names[i], shapes[i][0], shapes[i][1], off, off + bytes);
        else
            len += (size_t)snprintf(hdr + len, sizeof hdr - len,
                                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                                    i ? "," : "", names[i], shapes[i][0], off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    uint64_t hl = len;
    return fwrite(&hl, 8, 1, f) == 1 && fwrite(hdr, 1, len, f) == len ? 0 : -1;
}

/* Tensors in name order: W_dec [d_sae,d_in], W_enc [d_in,d_sae], b_dec, b_enc, threshold. */
static int write_sae(const char *dir, const bench_synth *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"d_in\": %zu, \"d_sae\": %zu, \"dtype\": \"float32\", \"architecture\": \"jumprelu\",\n"
               " \"apply_b_dec_to_input\": false, \"normalize_activations\": \"none\",\n"
               " \"metadata\": {\"hook_name\": \"bench.hook\", \"model_name\": \"saemon-bench-synthetic\"}}\n",
            s->d_in, s->d_sae);
    if (fclose(f) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
    if (!(f = fopen(path, "wb")))
        return -1;
    const char *const names[] = {"W_dec", "W_enc", "b_dec", "b_enc", "threshold"};
    const size_t shapes[][2] = {{s->d_sae, s->d_in}, {s->d_in, s->d_sae}, {s->d_in, 0}, {s->d_sae, 0}, {s->d_sae, 0}};
    const int ndims[] = {2, 2, 1, 1, 1};
    int rc = write_tensor_header(f, names, shapes, ndims, 5);
    /* W_dec rows = the encoder rows (a tied dictionary); W_enc is their transpose. */
    if (!rc && fwrite(s->w_rows, sizeof(float), s->d_in * s->d_sae, f) != s->d_in * s->d_sae)
        rc = -1;
    float *col = malloc(s->d_sae * sizeof *col);
    for (size_t i = 0; !rc && col && i < s->d_in; i++) {
        for (size_t j = 0; j < s->d_sae; j++)
            col[j] = s->w_rows[j * s->d_in + i];
        if (fwrite(col, sizeof(float), s->d_sae, f) != s->d_sae)
            rc = -1;
    }
    if (!col)
        rc = -1;
    float *zero = calloc(s->d_in, sizeof *zero);
    if (!rc && (!zero || fwrite(zero, sizeof(float), s->d_in, f) != s->d_in))
        rc = -1;
    if (!rc && fwrite(s->b_enc, sizeof(float), s->d_sae, f) != s->d_sae)
        rc = -1;
    if (!rc && fwrite(s->threshold, sizeof(float), s->d_sae, f) != s->d_sae)
        rc = -1;
    free(col);
    free(zero);
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* ---- the daemon ---- */

static pid_t start_serve(const sc_opts *o, const char *dir, const char *ring, const char *alerts, const char *log)
{
    char sae[4096], rules[4096];
    snprintf(sae, sizeof sae, "%s", dir);
    snprintf(rules, sizeof rules, "%s/rules.yaml", dir);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
    /* The daemon encodes on CPU 1; this process publishes from CPU 0. */
    execl(o->saemon, o->saemon, "serve", "--sae", sae, "--rules", rules, "--ring", ring, "--slots", "1024",
          "--max-rows", "64", "--batch", "64", "--threads", "1", "--cpus", "1", "--alerts", alerts, "--encode",
          o->encode, (char *)NULL);
    _exit(127);
}

static int stop_serve(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- measurements ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct dist {
    double p50, p99, max;
    size_t n;
} dist;

static dist summarise(double *v, size_t n)
{
    dist d = {0};
    if (!n)
        return d;
    qsort(v, n, sizeof *v, cmp_double);
    d.p50 = bench_percentile(v, n, 50);
    d.p99 = bench_percentile(v, n, 99);
    d.max = v[n - 1];
    d.n = n;
    return d;
}

/* How late a 0.4 ms sleep (the daemon's poll of a ring in use) wakes on
 * `cpu`, with the daemon's 1 ns timer slack: the part of the verdict delay
 * that is the machine's, not saemon's (a halted vCPU waits for its host). */
typedef struct wake_probe {
    int cpu;
    size_t n;
    double *late; /* seconds past the requested 400 us */
} wake_probe;

static void *wake_probe_main(void *arg)
{
    wake_probe *w = arg;
    pin_self(w->cpu);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    struct timespec ts = {0, 400000};
    for (size_t i = 0; i < w->n; i++) {
        double a = now_s();
        nanosleep(&ts, NULL);
        w->late[i] = now_s() - a - 400e-6;
    }
    return NULL;
}

static dist probe_wakeups(int cpu, size_t n, double *late_frac)
{
    wake_probe w = {.cpu = cpu, .n = n, .late = malloc(n * sizeof(double))};
    pthread_t t;
    dist d = {0};
    *late_frac = 0;
    if (!w.late || pthread_create(&t, NULL, wake_probe_main, &w) != 0) {
        free(w.late);
        return d;
    }
    pthread_join(t, NULL);
    size_t over = 0;
    for (size_t i = 0; i < n; i++)
        over += w.late[i] > 0.6e-3;
    *late_frac = (double)over / (double)n;
    d = summarise(w.late, n);
    free(w.late);
    return d;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Publish the background rows one token per call at `rate` tokens/s (0: as
 * fast as possible) for `seconds`; per-call cost of the published calls in
 * `cost` (up to cap entries). Returns tokens offered. */
static uint64_t pump(saemon_producer *p, const bench_synth *s, double rate, double seconds, uint64_t *stream_token,
                     double *cost, size_t cap, size_t *n_cost)
{
    double t0 = now_s(), next = t0;
    uint64_t offered = 0;
    size_t nc = 0;
    while (now_s() - t0 < seconds) {
        if (rate > 0) {
            while (now_s() < next)
                ;
            next += 1.0 / rate;
        }
        const float *row = s->x + (offered % s->n_tokens) * s->d_in;
        double a = now_s();
        int rc = saemon_producer_publish(p, 1, (*stream_token)++, row, 1);
        double b = now_s();
        if (rc == SAEMON_PRODUCER_OK && nc < cap)
            cost[nc++] = b - a;
        offered++;
    }
    if (n_cost)
        *n_cost = nc;
    return offered;
}

/* CPU time of every thread of process `pid` so far (ns), from the
 * scheduler's per-task accounting; 0 if /proc is unavailable. */
static uint64_t proc_cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char f[320];
        snprintf(f, sizeof f, "/proc/%d/task/%.32s/schedstat", (int)pid, e->d_name);
        FILE *fp = fopen(f, "r");
        unsigned long long ns = 0;
        if (fp && fscanf(fp, "%llu", &ns) == 1)
            total += ns;
        if (fp)
            fclose(fp);
    }
    closedir(d);
    return total;
}

/* One row of the rate table: `batch` streams decode together (one token
 * each per step), steps paced so that `rate` tokens/s are offered. Every
 * 50 ms one of the step's tokens is the offending token on a fresh stream,
 * and the loop watches for its verdict while it waits for the next step. */
typedef struct rate_row {
    double rate;
    int batch;
    dist cost;      /* per publish (one token), seconds */
    dist verdict;   /* offending token published -> its verdict visible */
    size_t verdicts_lost;
    double cpu;     /* the daemon's CPU use, fraction of one core */
    double faults;  /* page faults of the publishing thread per token */
    double preempt; /* times the publishing thread was preempted, per token */
    double lib_cpu; /* the producer library's own thread (heartbeat, writing ahead), fraction of a core */
    uint64_t published, dropped;
} rate_row;

typedef struct rate_ctx {
    saemon_producer *p;
    const bench_synth *s;
    const float *trigger;
    float *act;             /* the "model's" output buffer each token is published from */
    pid_t serve;
    uint64_t tok[16];       /* next position of background streams 1..16 */
    uint64_t next_trigger;  /* stream id of the next offending token */
    uint64_t offered;
} rate_ctx;

/* Leave `x` in `act` as a model's forward leaves its activation: in a
 * buffer it reuses, written just now, and (as after a GPU-to-host copy) not
 * in this core's caches, so the publish reads it from memory. Publishing
 * straight from the synthetic tokens' 19 MB instead would time the first
 * reads of pages untouched for seconds, which on the VMs measured costs
 * 30-80 us per 2 MiB and no model pays (docs/benchmarks.md). */
static void model_output(float *act, const float *x, size_t d_in)
{
    memcpy(act, x, d_in * sizeof *act);
#if defined(__x86_64__)
    for (size_t o = 0; o < d_in * sizeof *act; o += 64)
        _mm_clflush((const char *)act + o);
    _mm_mfence();
#endif
}

/* User + system CPU seconds of a getrusage() reading. */
static double cpu_s(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec)
         + (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1e-6;
}

static void run_rate(rate_ctx *c, double rate, int batch, double seconds, rate_row *row)
{
    size_t cap = (size_t)(rate * seconds * 1.5) + 64, vcap = (size_t)(seconds / 0.05) + 16;
    double *cost = malloc(cap * sizeof *cost), *vd = malloc(vcap * sizeof *vd);
    size_t nc = 0, nv = 0, lost = 0;
    saemon_producer_stats a0, a1;
    saemon_producer_get_stats(c->p, &a0);
    uint64_t cpu0 = proc_cpu_ns(c->serve);
    struct rusage ru0, ru1, all0, all1;
    getrusage(RUSAGE_THREAD, &ru0);
    getrusage(RUSAGE_SELF, &all0);
    double t0 = now_s(), next = t0, step = batch / rate, trig_at = 0, last_trig = -1;
    uint64_t trig = 0;
    for (;;) {
        double t;
        for (;;) { /* wait for the step, watching the pending verdict */
            t = now_s();
            if (trig && saemon_producer_get_verdict(c->p, trig) >= 4) {
                if (nv < vcap)
                    vd[nv++] = t - trig_at;
                trig = 0;
            } else if (trig && t - trig_at > 0.5) {
                lost++;
                trig = 0;
            }
            if (t >= next)
                break;
        }
        if (t - t0 >= seconds && !trig)
            break;
        if (t - t0 >= seconds + 1.0)
            break;
        next += step;
        bool offend = !trig && t - last_trig >= 0.05 && t - t0 < seconds;
        for (int b = 0; b < batch; b++) {
            uint64_t stream, token;
            const float *x;
            if (offend && b == 0) {
                stream = c->next_trigger++;
                token = 0;
                x = c->trigger;
            } else {
                stream = 1 + (uint64_t)b;
                token = c->tok[b]++;
                x = c->s->x + (c->offered++ % c->s->n_tokens) * c->s->d_in;
            }
            model_output(c->act, x, c->s->d_in);
            double a = now_s();
            int rc = saemon_producer_publish(c->p, stream, token, c->act, 1);
            double e = now_s();
            if (rc == SAEMON_PRODUCER_OK && nc < cap)
                cost[nc++] = e - a;
            if (offend && b == 0 && rc == SAEMON_PRODUCER_OK) {
                trig = stream;
                trig_at = last_trig = a;
            }
        }
    }
    double wall = now_s() - t0;
    getrusage(RUSAGE_THREAD, &ru1);
    getrusage(RUSAGE_SELF, &all1);
    uint64_t cpu1 = proc_cpu_ns(c->serve);
    /* this process but this thread: the producer library's thread (the
     * bench has no other thread while the row runs) */
    double others = (cpu_s(&all1) - cpu_s(&all0)) - (cpu_s(&ru1) - cpu_s(&ru0));
    saemon_producer_get_stats(c->p, &a1);
    *row = (rate_row){.rate = rate, .batch = batch, .cost = summarise(cost, nc), .verdict = summarise(vd, nv),
                      .verdicts_lost = lost, .cpu = cpu1 > cpu0 ? (double)(cpu1 - cpu0) * 1e-9 / wall : 0,
                      .faults = (double)(ru1.ru_minflt - ru0.ru_minflt + ru1.ru_majflt - ru0.ru_majflt)
                              / (double)(nc ? nc : 1),
                      .preempt = (double)(ru1.ru_nivcsw - ru0.ru_nivcsw) / (double)(nc ? nc : 1),
                      .lib_cpu = others > 0 ? others / wall : 0,
                      .published = a1.tokens_published - a0.tokens_published,
                      .dropped = a1.tokens_dropped - a0.tokens_dropped};
    free(cost);
    free(vd);
}

#define COLD_PAUSE_S 2.5 /* longer than a ring stays warm after its last frame */

/* Let the daemon drain what is queued before the next measurement. */
static void settle(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- PyTorch in-process (peers.py) ---- */

typedef struct peer_lat {
    double p50, p99;
    int valid;
    char note[160];
} peer_lat;

static void run_torch_peer(const sc_opts *o, const bench_synth *s, const char *dir, peer_lat *out)
{
    memset(out, 0, sizeof *out);
    char path[3][4200];
    snprintf(path[0], sizeof path[0], "%s/W_rows.npy", dir);
    snprintf(path[1], sizeof path[1], "%s/b.npy", dir);
    snprintf(path[2], sizeof path[2], "%s/x.npy", dir);
    size_t wshape[2] = {s->d_sae, s->d_in}, bshape[1] = {s->d_sae}, xshape[2] = {s->n_tokens, s->d_in};
    saemon_error err = {0};
    if (saemon_npy_write_f32(path[0], s->w_rows, 2, wshape, &err) != SAEMON_OK ||
        saemon_npy_write_f32(path[1], s->b_enc, 1, bshape, &err) != SAEMON_OK ||
        saemon_npy_write_f32(path[2], s->x, 2, xshape, &err) != SAEMON_OK) {
        snprintf(out->note, sizeof out->note, "cannot write the peer inputs");
        return;
    }
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "OPENBLAS_NUM_THREADS=1 taskset -c 0 %s %s --dir %s --shape sidecar --theta %.9g --batches '' "
             "--threads 1 --latency-tokens %d --latency-max-time 10 --cdf-points 2 2>/dev/null",
             o->python, bench_data_file("peers.py"), dir, (double)s->theta, o->quick ? 300 : 2000);
    FILE *pp = popen(cmd, "r");
    if (!pp) {
        snprintf(out->note, sizeof out->note, "cannot run %s", o->python);
        return;
    }
    char line[65536];
    while (fgets(line, sizeof line, pp)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *peer = cJSON_GetObjectItem(j, "peer"), *kind = cJSON_GetObjectItem(j, "kind");
        if (cJSON_IsString(peer) && !strcmp(peer->valuestring, "torch") && cJSON_IsString(kind) &&
            !strcmp(kind->valuestring, "latency")) {
            out->p50 = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "p50_s"));
            out->p99 = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "p99_s"));
            out->valid = 1;
        } else if (cJSON_IsString(peer) && cJSON_GetObjectItem(j, "error")) {
            snprintf(out->note, sizeof out->note, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")));
        }
        cJSON_Delete(j);
    }
    pclose(pp);
    if (!out->valid && !out->note[0])
        snprintf(out->note, sizeof out->note, "peers.py gave no PyTorch latency");
}

/* ---- the run ---- */

static int parse(sc_opts *o, int argc, char **argv)
{
    *o = (sc_opts){.d_in = 2304, .d_sae = 16384, .seconds = 3, .trials = 400, .python = "/usr/bin/python3",
                   .encode = "auto"};
    o->saemon = getenv("SAEMON_EXE");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            o->quick = 1;
            o->seconds = 1;
            o->trials = 100;
        } else if (!strcmp(a, "--no-peers")) {
            o->no_peers = 1;
        } else if (!strcmp(a, "--shape") && v) {
            i++;
            if (!strcmp(v, "gemma"))
                o->d_in = 2304, o->d_sae = 16384;
            else if (!strcmp(v, "gpt2"))
                o->d_in = 768, o->d_sae = 24576;
            else if (sscanf(v, "%zux%zu", &o->d_in, &o->d_sae) != 2 || !o->d_in || !o->d_sae || o->d_in > 65536 ||
                     o->d_sae > (1u << 22)) {
                fprintf(stderr, "saemon bench sidecar: --shape %s: expected gemma, gpt2 or DINxDSAE\n", v);
                return -1;
            }
        } else if (!strcmp(a, "--seconds") && v) {
            o->seconds = atof(argv[++i]);
        } else if (!strcmp(a, "--trials") && v) {
            o->trials = (size_t)atol(argv[++i]);
        } else if (!strcmp(a, "--encode") && v && (!strcmp(v, "auto") || !strcmp(v, "all"))) {
            o->encode = argv[++i];
        } else if (!strcmp(a, "--out") && v) {
            o->out = argv[++i];
        } else if (!strcmp(a, "--saemon") && v) {
            o->saemon = argv[++i];
        } else if (!strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else {
            usage(stderr);
            return -1;
        }
    }
    if (!(o->seconds > 0) || !o->trials) {
        fprintf(stderr, "saemon bench sidecar: --seconds and --trials must be positive\n");
        return -1;
    }
    if (!o->saemon) {
        fprintf(stderr, "saemon bench sidecar: run it as `saemon bench sidecar` (or give --saemon PATH)\n");
        return -1;
    }
    return 0;
}

int bench_sidecar_main(int argc, char **argv)
{
    sc_opts o;
    int prc = parse(&o, argc, argv);
    if (prc)
        return prc > 0 ? 0 : 2;
    char dir[] = "/tmp/saemon-bench-sidecar-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "saemon bench sidecar: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    int rc = 1;
    bench_synth s = {0};
    pid_t serve = -1;
    saemon_producer *p = NULL;
    char ring[64], alerts[4200], log[4200], rules[4200];
    snprintf(ring, sizeof ring, "bench-sidecar-%d", (int)getpid());
    snprintf(alerts, sizeof alerts, "%s/alerts.jsonl", dir);
    snprintf(log, sizeof log, "%s/serve.log", dir);
    snprintf(rules, sizeof rules, "%s/rules.yaml", dir);
    fprintf(stderr, "sidecar: building a %zux%zu trained-like JumpReLU dictionary...\n", o.d_in, o.d_sae);
    if (bench_synth_make(&s, o.d_in, o.d_sae, 2048, 256, 64, 42, saemon_kernel_select(NULL)) != 0 ||
        write_sae(dir, &s) != 0) {
        fprintf(stderr, "saemon bench sidecar: cannot build the dictionary in %s\n", dir);
        goto out;
    }
    /* The trigger: a background token moved along latent 0's encoder
     * direction until latent 0 is far above its threshold; the other latents
     * stay near their background values (the rows are nearly orthogonal), so
     * the token costs what a real offending token costs. */
    const uint32_t trig = 0;
    const float *w0 = s.w_rows, *bg = s.x;
    double nn = 0, pre0 = s.b_enc[trig];
    for (size_t i = 0; i < s.d_in; i++) {
        nn += (double)w0[i] * w0[i];
        pre0 += (double)bg[i] * w0[i];
    }
    float level = s.theta + 20.0f;
    float *trigger = malloc(s.d_in * sizeof *trigger);
    double alpha = ((double)level + 5.0 - pre0) / nn;
    for (size_t i = 0; i < s.d_in; i++)
        trigger[i] = (float)(bg[i] + alpha * w0[i]);
    FILE *rf = fopen(rules, "w");
    if (!rf || fprintf(rf, "version: 1\nrules:\n  - name: bench-trigger\n    severity: critical\n"
                           "    action: block\n    condition: {feature: %u, above: %.9g}\n",
                       trig, (double)level) < 0 || fclose(rf) != 0) {
        fprintf(stderr, "saemon bench sidecar: cannot write %s\n", rules);
        free(trigger);
        goto out;
    }
    serve = start_serve(&o, dir, ring, alerts, log);
    pin_self(0); /* after the fork: the daemon must not inherit this mask */
    /* Attach as soon as the daemon has created the ring. */
    char msg[256] = "";
    saemon_producer_options po = {.ring = ring, .model = "saemon-bench", .hook = "bench.hook",
                                  .d_in = (uint32_t)s.d_in, .dtype = SAEMON_PRODUCER_F32,
                                  .handshake_timeout_ms = 2000};
    for (double t0 = now_s(); now_s() - t0 < 120;) {
        char shm[128];
        snprintf(shm, sizeof shm, "/dev/shm/saemon-ring.%s", ring);
        if (access(shm, F_OK) == 0 && saemon_producer_attach(&po, &p, msg, sizeof msg) == SAEMON_PRODUCER_OK) {
            saemon_producer_stats ps;
            saemon_producer_get_stats(p, &ps);
            if (ps.connected)
                break;
            saemon_producer_detach(p);
            p = NULL;
        }
        if (waitpid(serve, NULL, WNOHANG) == serve) {
            fprintf(stderr, "saemon bench sidecar: saemon serve exited; its log:\n");
            FILE *lf = fopen(log, "r");
            char l[1024];
            while (lf && fgets(l, sizeof l, lf))
                fputs(l, stderr);
            if (lf)
                fclose(lf);
            serve = -1;
            free(trigger);
            goto out;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!p) {
        fprintf(stderr, "saemon bench sidecar: could not attach to the ring: %s\n", msg);
        free(trigger);
        goto out;
    }
    uint64_t tok = 0;

    /* 1. Producer cost per token at each rate, 1 and 16 streams per step,
     * with the verdict delay and the daemon's CPU use. */
    pump(p, &s, 200, 0.5, &tok, NULL, 0, NULL); /* warm-up */
    float *act = aligned_alloc(64, (s.d_in * sizeof *act + 63) / 64 * 64);
    if (!act) {
        fprintf(stderr, "saemon bench sidecar: out of memory\n");
        rc = 1;
        free(trigger);
        goto out;
    }
    rate_ctx rc_ = {.p = p, .s = &s, .trigger = trigger, .act = act, .serve = serve, .next_trigger = 2000000};
    /* The run's first offending token opens the alert path (the first alert
     * and verdict of the process): timed apart, so the rows show the steady
     * state. */
    double first_vd = -1;
    {
        uint64_t stream = rc_.next_trigger++;
        double a = now_s();
        if (saemon_producer_publish(p, stream, 0, trigger, 1) == SAEMON_PRODUCER_OK)
            while (now_s() - a < 1.0)
                if (saemon_producer_get_verdict(p, stream) >= 4) {
                    first_vd = now_s() - a;
                    break;
                }
        settle(0.1);
    }
    static const double rates[] = {50, 500, 5000, 50000};
    static const int batches[] = {1, 16};
    rate_row rows[8];
    size_t n_rows = 0;
    for (size_t bi = 0; bi < 2; bi++)
        for (size_t ri = 0; ri < 4; ri++) {
            /* --quick: at least ~200 tokens, at most 4 s; otherwise 16 s, ~300
             * verdict trials (one per 50 ms at most), so their p99 is not a maximum */
            double secs = 200.0 / rates[ri];
            secs = !o.quick ? 16 : secs < o.seconds ? o.seconds : secs > 4 ? 4 : secs;
            fprintf(stderr, "sidecar: %.0f tokens/s, %d per step, %.1f s...\n", rates[ri], batches[bi], secs);
            run_rate(&rc_, rates[ri], batches[bi], secs, &rows[n_rows++]);
            settle(0.3);
        }
    tok = rc_.tok[0];

    /* The first token after a pause longer than a ring stays warm (up to 2 s
     * after frames: runtime/ring_wait.c): the daemon went cold (sleeps on
     * the futex) and this publish pays the wake-up. */
    size_t n_cold = o.quick ? 4 : 10, nvc = 0;
    double cold_cost[10], cold_vd[10];
    for (size_t t = 0; t < n_cold; t++) {
        settle(COLD_PAUSE_S);
        uint64_t stream = rc_.next_trigger++;
        double a = now_s();
        int prc2 = saemon_producer_publish(p, stream, 0, trigger, 1);
        double b = now_s();
        cold_cost[t] = b - a;
        while (prc2 == SAEMON_PRODUCER_OK && now_s() - a < 1.0)
            if (saemon_producer_get_verdict(p, stream) >= 4) {
                cold_vd[nvc++] = now_s() - a;
                break;
            }
    }
    dist cold_pub = summarise(cold_cost, n_cold), cold_del = summarise(cold_vd, nvc);

    /* The daemon with nothing to do (its rings cold). */
    settle(COLD_PAUSE_S);
    uint64_t idle0 = proc_cpu_ns(serve);
    double idle_t0 = now_s();
    settle(o.quick ? 2.0 : 4.0);
    uint64_t idle1 = proc_cpu_ns(serve);
    double idle_cpu = idle1 > idle0 ? (double)(idle1 - idle0) * 1e-9 / (now_s() - idle_t0) : 0;
    double wake_late_frac = 0;
    dist wake_late = probe_wakeups(1, o.quick ? 5000 : 20000, &wake_late_frac);

    /* 2. Sustained rate: as fast as possible, then paced at 90 % of what was
     * encoded, lowering the rate until a whole step drops nothing. */
    saemon_producer_stats a0, a1;
    saemon_producer_get_stats(p, &a0);
    double t0 = now_s();
    uint64_t offered = pump(p, &s, 0, o.seconds, &tok, NULL, 0, NULL);
    double dt = now_s() - t0;
    saemon_producer_get_stats(p, &a1);
    double flood_offered = (double)offered / dt;
    double flood_kept = (double)(a1.tokens_published - a0.tokens_published) / dt;
    settle(1.0);
    double rate = flood_kept * 0.9, zero_drop_rate = 0;
    for (int step = 0; step < 6 && rate > 10; step++, rate *= 0.85) {
        saemon_producer_get_stats(p, &a0);
        pump(p, &s, rate, o.seconds, &tok, NULL, 0, NULL);
        saemon_producer_get_stats(p, &a1);
        settle(0.5);
        if (a1.tokens_dropped == a0.tokens_dropped) {
            zero_drop_rate = rate;
            break;
        }
    }

    /* 3. Verdict and alert delay from an idle daemon: first let it drain
     * whatever the rate steps left queued (up to a full ring). */
    settle(2.0);
    double *vd = malloc(o.trials * sizeof *vd), *ad = malloc(o.trials * sizeof *ad);
    size_t nv = 0, na = 0, lost = 0;
    for (size_t t = 0; t < o.trials; t++) {
        struct timespec idle = {0, 3 * 1000 * 1000};
        nanosleep(&idle, NULL); /* the consumer goes back to sleep on its futex */
        uint64_t stream = 1000000 + t;
        off_t size0 = file_size(alerts);
        double a = now_s();
        if (saemon_producer_publish(p, stream, 0, trigger, 1) != SAEMON_PRODUCER_OK) {
            lost++;
            continue;
        }
        double seen = 0;
        while (now_s() - a < 2.0) {
            if (!seen && saemon_producer_get_verdict(p, stream) >= 4)
                seen = now_s();
            if (seen && file_size(alerts) > size0) {
                ad[na++] = now_s() - a;
                break;
            }
        }
        if (seen)
            vd[nv++] = seen - a;
        else
            lost++;
        saemon_producer_end_stream(p, stream, 1);
    }
    dist vdel = summarise(vd, nv), adel = summarise(ad, na);
    saemon_producer_stats fin;
    saemon_producer_get_stats(p, &fin);
    saemon_producer_detach(p);
    p = NULL;
    int serve_rc = stop_serve(serve);
    serve = -1;

    peer_lat torch = {0};
    if (!o.no_peers)
        run_torch_peer(&o, &s, dir, &torch);
    else
        snprintf(torch.note, sizeof torch.note, "--no-peers");

    char cpu[128] = "unknown CPU";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (ci && fgets(line, sizeof line, ci))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c)
                snprintf(cpu, sizeof cpu, "%s", c + 2);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (ci)
        fclose(ci);
    printf("saemon bench sidecar — %s, dictionary %zux%zu JumpReLU (mean L0 %.0f), producer on CPU 0, "
           "serve on CPU 1 (kernel: the daemon's default), --encode %s\n",
           cpu, s.d_in, s.d_sae, s.calib_l0, o.encode);
    printf("  C producer per token (saemon_producer_publish of 1 row), while the daemon runs beside it:\n"
           "    tokens/s  streams/step  publish p50 / p99 us   verdict p50 / p99 us (n)   daemon CPU  dropped  faults/token  preempted/token  library thread CPU\n");
    for (size_t i = 0; i < n_rows; i++)
        printf("    %8.0f  %12d  %7.2f / %-9.2f   %8.1f / %-8.1f (%3zu)   %8.1f%%  %7" PRIu64 "  %12.3f  %15.3f  %17.2f%%\n",
               rows[i].rate, rows[i].batch, rows[i].cost.p50 * 1e6, rows[i].cost.p99 * 1e6, rows[i].verdict.p50 * 1e6,
               rows[i].verdict.p99 * 1e6, rows[i].verdict.n, rows[i].cpu * 100, rows[i].dropped, rows[i].faults,
               rows[i].preempt, rows[i].lib_cpu * 100);
    printf("  first token after 2.5 s of silence  publish p50 %.1f us  max %.1f us; verdict p50 %.1f us  max %.1f us "
           "(%zu trials: the daemon sleeps on the futex, this publish wakes it)\n",
           cold_pub.p50 * 1e6, cold_pub.max * 1e6, cold_del.p50 * 1e6, cold_del.max * 1e6, cold_pub.n);
    if (first_vd >= 0)
        printf("  the run's first offending token     verdict %.1f us (the process's first alert; not in the rows)\n",
               first_vd * 1e6);
    else
        printf("  the run's first offending token     no verdict within 1 s\n");
    printf("  a 0.4 ms sleep on CPU 1 wakes late by p50 %.0f us, p99 %.0f us, max %.0f us; %.2f %% of %zu "
           "wake-ups more than 0.6 ms late (the machine's share of the verdict delay)\n",
           wake_late.p50 * 1e6, wake_late.p99 * 1e6, wake_late.max * 1e6, wake_late_frac * 100, wake_late.n);
    printf("  daemon idle (no tokens)             %.2f%% of a core\n", idle_cpu * 100);
    printf("  flood: offered %.0f tokens/s, kept %.0f tokens/s (the rest dropped and counted)\n", flood_offered,
           flood_kept);
    if (zero_drop_rate > 0)
        printf("  sustained with zero drops           %.0f tokens/s (1 token per frame, %.0f s step)\n",
               zero_drop_rate, o.seconds);
    else
        printf("  sustained with zero drops           not found in 6 steps\n");
    printf("  offending token -> verdict visible  p50 %.1f us  p99 %.1f us  max %.1f us  (%zu trials, idle daemon)\n",
           vdel.p50 * 1e6, vdel.p99 * 1e6, vdel.max * 1e6, vdel.n);
    printf("  offending token -> alert written    p50 %.1f us  p99 %.1f us  (%zu trials)\n", adel.p50 * 1e6,
           adel.p99 * 1e6, adel.n);
    if (torch.valid)
        printf("  PyTorch in-process encode, 1 token  p50 %.1f us  p99 %.1f us  (the model's own thread)\n",
               torch.p50 * 1e6, torch.p99 * 1e6);
    else
        printf("  PyTorch in-process encode           not measured: %s\n", torch.note);
    printf("  producer totals: %" PRIu64 " tokens published, %" PRIu64 " dropped; verdict trials lost %zu; "
           "serve exit %d\n",
           fin.tokens_published, fin.tokens_dropped, lost, serve_rc);
    if (o.out) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "cpu", cpu);
        cJSON_AddNumberToObject(j, "d_in", (double)s.d_in);
        cJSON_AddNumberToObject(j, "d_sae", (double)s.d_sae);
        cJSON *ra = cJSON_AddArrayToObject(j, "rates");
        for (size_t i = 0; i < n_rows; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "tokens_per_s", rows[i].rate);
            cJSON_AddNumberToObject(r, "streams_per_step", rows[i].batch);
            cJSON_AddNumberToObject(r, "publish_p50_s", rows[i].cost.p50);
            cJSON_AddNumberToObject(r, "publish_p99_s", rows[i].cost.p99);
            cJSON_AddNumberToObject(r, "verdict_p50_s", rows[i].verdict.p50);
            cJSON_AddNumberToObject(r, "verdict_p99_s", rows[i].verdict.p99);
            cJSON_AddNumberToObject(r, "verdict_trials", (double)rows[i].verdict.n);
            cJSON_AddNumberToObject(r, "verdicts_lost", (double)rows[i].verdicts_lost);
            cJSON_AddNumberToObject(r, "daemon_cpu_cores", rows[i].cpu);
            cJSON_AddNumberToObject(r, "tokens_dropped", (double)rows[i].dropped);
            cJSON_AddNumberToObject(r, "page_faults_per_token", rows[i].faults);
            cJSON_AddNumberToObject(r, "preemptions_per_token", rows[i].preempt);
            cJSON_AddNumberToObject(r, "library_thread_cpu_cores", rows[i].lib_cpu);
            cJSON_AddItemToArray(ra, r);
        }
        cJSON_AddNumberToObject(j, "first_verdict_s", first_vd);
        cJSON_AddNumberToObject(j, "cold_publish_p50_s", cold_pub.p50);
        cJSON_AddNumberToObject(j, "cold_verdict_p50_s", cold_del.p50);
        cJSON_AddNumberToObject(j, "daemon_idle_cpu_cores", idle_cpu);
        cJSON_AddNumberToObject(j, "wake_late_p50_s", wake_late.p50);
        cJSON_AddNumberToObject(j, "wake_late_p99_s", wake_late.p99);
        cJSON_AddNumberToObject(j, "wake_late_max_s", wake_late.max);
        cJSON_AddNumberToObject(j, "wake_late_over_0_6ms_fraction", wake_late_frac);
        cJSON_AddNumberToObject(j, "flood_offered_tps", flood_offered);
        cJSON_AddNumberToObject(j, "flood_kept_tps", flood_kept);
        cJSON_AddNumberToObject(j, "zero_drop_tps", zero_drop_rate);
        cJSON_AddNumberToObject(j, "verdict_p50_s", vdel.p50);
        cJSON_AddNumberToObject(j, "verdict_p99_s", vdel.p99);
        cJSON_AddNumberToObject(j, "alert_p50_s", adel.p50);
        cJSON_AddNumberToObject(j, "alert_p99_s", adel.p99);
        if (torch.valid) {
            cJSON_AddNumberToObject(j, "torch_inprocess_p50_s", torch.p50);
            cJSON_AddNumberToObject(j, "torch_inprocess_p99_s", torch.p99);
        }
        char *text = cJSON_Print(j);
        FILE *of = fopen(o.out, "w");
        if (!of || !text || fputs(text, of) < 0 || fclose(of) != 0)
            fprintf(stderr, "saemon bench sidecar: cannot write %s\n", o.out);
        free(text);
        cJSON_Delete(j);
    }
    free(vd);
    free(ad);
    free(trigger);
    free(act);
    rc = serve_rc == 0 && vdel.n > 0 ? 0 : 1;
out:
    if (p)
        saemon_producer_detach(p);
    if (serve > 0)
        stop_serve(serve);
    bench_synth_free(&s);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "saemon bench sidecar: could not remove %s\n", dir);
    return rc;
}
