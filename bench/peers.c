/* numpy and PyTorch peers: write the generated dictionary as .npy files, run
 * bench/peers.py with /usr/bin/python3 single-threaded, parse its JSON lines.
 *
 * OpenBLAS honours OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; some machines set
 * them (forcing the slower AVX2 path), so the peers run once with the
 * environment as set and once with both removed (once if neither is set). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int bench_write_npy(const char *path, const float *data, size_t ndim, const size_t *shape)
{
    char dims[256] = "";
    size_t total = 1, len = 0;
    for (size_t i = 0; i < ndim; i++) {
        len += (size_t)snprintf(dims + len, sizeof dims - len, "%zu%s", shape[i],
                                ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        total *= shape[i];
    }
    char header[512];
    int hl = snprintf(header, sizeof header,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    /* magic(6) + version(2) + len(2) + header + pad + '\n' is a multiple of 64 */
    size_t unpadded = 10 + (size_t)hl + 1, padded = (unpadded + 63) / 64 * 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned short hlen = (unsigned short)(padded - 10);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(header, 1, (size_t)hl, f);
    for (size_t i = unpadded; i < padded; i++)
        fputc(' ', f);
    fputc('\n', f);
    size_t wrote = fwrite(data, sizeof(float), total, f);
    int rc = (wrote == total && fclose(f) == 0) ? 0 : -1;
    if (wrote != total)
        fclose(f);
    return rc;
}

static const char *intern(const char *s)
{
    /* Peer and config names come from a fixed small set; keep static copies. */
    static const char *known[] = {"numpy", "torch", "env-as-set", "openblas-env-unset",
                                  "env-as-set (= unset here)"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i]) == 0)
            return known[i];
    return "?";
}

static void set_note(bench_results *res, const char *msg)
{
    size_t old = res->peer_note ? strlen(res->peer_note) : 0;
    char *n = realloc(res->peer_note, old + strlen(msg) + 3);
    if (!n)
        return;
    if (old)
        strcpy(n + old, "; ");
    else
        n[0] = 0;
    strcat(n, msg);
    res->peer_note = n;
}

static int run_one(bench_results *res, const bench_opts *o, const char *dir, const char *shape,
                   double theta, const char *config, int unset_openblas)
{
    char batches[128] = "";
    size_t len = 0;
    for (size_t i = 0; i < o->n_batches; i++)
        len += (size_t)snprintf(batches + len, sizeof batches - len, "%s%zu", i ? "," : "",
                                o->batches[i]);
    char *cmd = NULL;
    if (asprintf(&cmd,
                 "env %s OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 '%s' '%s' "
                 "--dir '%s' --shape %s --theta %.9g --batches %s --min-time %g --max-time %g "
                 "--min-calls %zu --config '%s'",
                 unset_openblas ? "-u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" : "", o->python,
                 o->peers_script, dir, shape, theta, batches, o->min_time, o->max_time,
                 o->min_calls, config) < 0)
        return -1;
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) {
        set_note(res, "could not start peers.py");
        return -1;
    }
    char line[4096];
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            continue;
        const cJSON *err = cJSON_GetObjectItem(j, "error");
        const cJSON *peer = cJSON_GetObjectItem(j, "peer");
        if (cJSON_IsString(err)) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s: %s", cJSON_IsString(peer) ? peer->valuestring : "peer",
                     err->valuestring);
            if (!res->peer_note || !strstr(res->peer_note, msg))
                set_note(res, msg);
        } else if (cJSON_IsString(peer)) {
            bench_peer_row *r = bench_results_add_peer(res);
            if (r) {
                r->peer = intern(peer->valuestring);
                r->config = intern(config);
                r->shape = shape;
                r->batch = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "batch"));
                r->median_s = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "median_s"));
                r->p99_s = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "p99_s"));
                r->calls = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "calls"));
                r->mean_l0 = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "mean_l0"));
                got++;
            }
        }
        cJSON_Delete(j);
    }
    int status = pclose(p);
    if (status != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "peers.py (%s, %s) exited with status %d", shape, config, status);
        set_note(res, msg);
    }
    return got > 0 ? 0 : -1;
}

int bench_run_peers(bench_results *res, const bench_opts *o, const char *dir, const char *shape,
                    double theta)
{
    int any_set = getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE");
    int rc = run_one(res, o, dir, shape, theta, any_set ? "env-as-set" : "env-as-set (= unset here)",
                     0);
    if (any_set)
        rc |= run_one(res, o, dir, shape, theta, "openblas-env-unset", 1);
    return rc;
}
