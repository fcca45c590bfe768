/* `saemon bench memory`: peak RSS, peak anonymous memory, bytes read and
 * start-up time of `saemon run` against the number of watched latents (1, 64,
 * 1024, all) and the dictionary size, on generated SAELens dictionaries
 * (bench/dictgen.c, F32, W_dec beside W_enc as in a release) and on their
 * packs (`saemon pack`, with the packed form of the kernel this CPU chooses).
 * Each point is a fresh process: peak RSS is the child's ru_maxrss (wait4),
 * anonymous memory the largest "Anonymous:" of /proc/PID/smaps_rollup sampled
 * every 2 ms while it runs, "ready" and "read" come from its start-up log,
 * wall is the whole run of 16 tokens. docs/benchmarks.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench/dictgen.h"
#include "saemon/saemon.h"

#define TOKENS 16

typedef struct mem_point {
    double peak_mib, anon_mib, ready_s, read_mib, wall_s;
    int ok;
} mem_point;

/* "Anonymous:" of /proc/PID/smaps_rollup in KiB, or -1. */
static long anon_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", (long)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Anonymous:", 10))
            kib = strtol(line + 10, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Generate dir (d_in x d_sae) unless a file of the right size is there. */
static int ensure_dict(const char *dir, size_t d_in, size_t d_sae)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
    struct stat sb;
    unsigned long long want = 8ull * d_in * d_sae + 8ull * d_sae + 4ull * d_in; /* + header */
    if (stat(path, &sb) == 0 && (unsigned long long)sb.st_size > want && (unsigned long long)sb.st_size < want + 4096)
        return 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -1;
    fprintf(stderr, "saemon bench memory: generating %s (%zu x %zu, %.1f GiB)\n", dir, d_in, d_sae,
            (double)want / (1 << 30));
    return dictgen_saelens(dir, d_in, d_sae, "F32", 42);
}

static int write_acts(const char *path, size_t d_in)
{
    float *x = malloc(TOKENS * d_in * sizeof *x);
    if (!x)
        return -1;
    uint64_t r = 99;
    for (size_t i = 0; i < TOKENS * d_in; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        x[i] = (float)((double)(r >> 11) * 0x1p-52 - 0.5);
    }
    size_t shape[2] = {TOKENS, d_in};
    saemon_error err = {0};
    int rc = saemon_npy_write_f32(path, x, 2, shape, &err) == SAEMON_OK ? 0 : -1;
    free(x);
    return rc;
}

/* A rule file watching n latents spread over d_sae. */
static int write_rules(const char *path, size_t n, size_t d_sae)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "lists:\n  w: [");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%zu", i ? ", " : "", i * (d_sae / n) + (d_sae / n) / 2);
    fprintf(f, "]\nrules:\n  - name: watch\n    condition: {any_of_list: w, above: 0.5}\n");
    return fclose(f) == 0 ? 0 : -1;
}

static double after(const char *log, const char *key)
{
    const char *p = strstr(log, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

static mem_point run_one(const char *saemon, const char *dir, const char *acts, const char *rules, int all)
{
    mem_point pt = {0};
    char logpath[] = "/tmp/saemon-bench-memory-log-XXXXXX";
    int lfd = mkstemp(logpath);
    if (lfd < 0)
        return pt;
    double t0 = now_s();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(lfd, 2);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execlp(saemon, saemon, "run", "--sae", dir, "--input", acts, "--rules", rules, "--encode",
               all ? "all" : "auto", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    pid_t got = 0;
    long anon = 0;
    while (pid > 0 && (got = wait4(pid, &status, WNOHANG, &ru)) == 0) {
        long a = anon_kib(pid);
        anon = a > anon ? a : anon;
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    if (pid <= 0)
        got = -1;
    pt.wall_s = now_s() - t0;
    char log[8192] = "";
    ssize_t n = pread(lfd, log, sizeof log - 1, 0);
    log[n > 0 ? n : 0] = 0;
    close(lfd);
    unlink(logpath);
    if (got != pid || !WIFEXITED(status) || WEXITSTATUS(status) > 1) {
        fprintf(stderr, "saemon bench memory: %s run failed:\n%s\n", saemon, log);
        return pt;
    }
    pt.peak_mib = (double)ru.ru_maxrss / 1024.0;
    pt.anon_mib = (double)anon / 1024.0;
    pt.ready_s = after(log, "ready in ");
    pt.read_mib = after(log, "dictionary: read ");
    pt.ok = 1;
    return pt;
}

/* `saemon pack DIR -o PACK` (whole, the chosen kernel's packed form) unless PACK is newer than DIR's weights. */
static int make_pack(const char *saemon, const char *dir, const char *pack)
{
    char w[4300];
    snprintf(w, sizeof w, "%s/sae_weights.safetensors", dir);
    struct stat sw, sp;
    if (stat(pack, &sp) == 0 && stat(w, &sw) == 0 && sp.st_mtime >= sw.st_mtime)
        return 0;
    fprintf(stderr, "saemon bench memory: packing %s\n", pack);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execlp(saemon, saemon, "pack", dir, "-o", pack, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "saemon bench memory: saemon pack %s failed\n", dir);
        return -1;
    }
    return 0;
}

static int parse_size(const char *s, size_t *d_in, size_t *d_sae)
{
    char *end;
    *d_in = strtoul(s, &end, 10);
    if (*end != 'x')
        return -1;
    *d_sae = strtoul(end + 1, &end, 10);
    return *d_in && *d_sae && (*end == 0 || *end == ',') ? 0 : -1;
}

int bench_memory_main(int argc, char **argv)
{
    const char *base = "/tmp/saemon-bench-memory", *sizes = "768x24576,2304x16384,4096x131072";
    const char *watched = "1,64,1024,all";
    int keep = 0;
    static const struct option longs[] = {{"dir", required_argument, 0, 'd'},
                                          {"sizes", required_argument, 0, 's'},
                                          {"watched", required_argument, 0, 'w'},
                                          {"keep", no_argument, 0, 'k'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'd': base = optarg; break;
        case 's': sizes = optarg; break;
        case 'w': watched = optarg; break;
        case 'k': keep = 1; break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: saemon bench memory [--dir DIR] [--sizes 768x24576,...] [--watched 1,64,1024,all] "
                    "[--keep]\n"
                    "  generated dictionaries go under DIR (default /tmp/saemon-bench-memory; 4096x131072 is\n"
                    "  4 GiB) and are deleted afterwards unless --keep\n");
            return c == 'h' ? 0 : 2;
        }
    }
    const char *saemon = getenv("SAEMON_EXE") ? getenv("SAEMON_EXE") : "saemon";
    if (mkdir(base, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "saemon bench memory: %s: %s\n", base, strerror(errno));
        return 1;
    }
    printf("| dictionary | W_enc | source | watched | peak RSS | peak anonymous | read at start | ready | whole run "
           "(16 tokens) |\n|---|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    for (const char *s = sizes; s && *s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
        size_t d_in, d_sae;
        if (parse_size(s, &d_in, &d_sae) != 0) {
            fprintf(stderr, "saemon bench memory: --sizes expects D_INxD_SAE,..., got '%s'\n", s);
            return 2;
        }
        char dir[4096], acts[4200], rules[4200], pack[4200];
        snprintf(dir, sizeof dir, "%s/gen-%zux%zu", base, d_in, d_sae);
        snprintf(acts, sizeof acts, "%s/acts-%zu.npy", base, d_in);
        snprintf(pack, sizeof pack, "%s/gen-%zux%zu.pack", base, d_in, d_sae);
        if (ensure_dict(dir, d_in, d_sae) != 0 || write_acts(acts, d_in) != 0) {
            fprintf(stderr, "saemon bench memory: cannot write %s: %s\n", dir, strerror(errno));
            return 1;
        }
        if (make_pack(saemon, dir, pack) != 0)
            return 1;
        for (int src = 0; src < 2; src++)
        for (const char *w = watched; w && *w; w = strchr(w, ',') ? strchr(w, ',') + 1 : NULL) {
            int all = !strncmp(w, "all", 3);
            size_t n = all ? 1 : strtoul(w, NULL, 10);
            if (!n || n > d_sae)
                continue;
            snprintf(rules, sizeof rules, "%s/rules-%zu-%zu.yaml", base, d_sae, n);
            if (write_rules(rules, n, d_sae) != 0)
                return 1;
            mem_point pt = run_one(saemon, src ? pack : dir, acts, rules, all);
            if (!pt.ok) {
                rc = 1;
                continue;
            }
            char wn[32];
            snprintf(wn, sizeof wn, "%s", all ? "all (--encode all)" : "");
            if (!all)
                snprintf(wn, sizeof wn, "%zu", n);
            printf("| %zu x %zu | %.0f MiB | %s | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.3f s | %.3f s |\n", d_in,
                   d_sae, (double)d_in * d_sae * 4 / 1048576.0, src ? "pack" : "SAELens", wn, pt.peak_mib,
                   pt.anon_mib, pt.read_mib, pt.ready_s, pt.wall_s);
            fflush(stdout);
        }
        if (!keep) {
            char p[4300];
            snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
            unlink(p);
            snprintf(p, sizeof p, "%s/cfg.json", dir);
            unlink(p);
            rmdir(dir);
            unlink(pack);
        }
    }
    return rc;
}
