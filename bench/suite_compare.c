/* --compare OLD.json: the same cells of an earlier run, side by side. A cell
 * is (kind, source, shape, impl, variant, threads, batch); latency cells are
 * compared on p50 and p99, throughput cells on tokens/s. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suite.h"

#define CHANGE 0.05

static const char *str(const cJSON *j, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, k));
    return s ? s : "";
}

static double num(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int same_cell(const cJSON *a, const cJSON *b)
{
    static const char *keys[] = {"kind", "source", "shape", "impl", "variant", "caches"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(str(a, keys[i]), str(b, keys[i])))
            return 0;
    return num(a, "threads") == num(b, "threads") && num(a, "batch") == num(b, "batch");
}

static cJSON *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[65536];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[len] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

/* higher_better: tokens/s; else a time. Returns -1 slower, 0 same, 1 faster. */
static int line(FILE *f, const cJSON *now, const char *metric, double old_v, double new_v, int higher_better)
{
    if (old_v <= 0 || new_v <= 0)
        return 0;
    double ratio = new_v / old_v;
    double speed = higher_better ? ratio : 1 / ratio; /* > 1: faster */
    int flag = speed > 1 + CHANGE ? 1 : speed < 1 - CHANGE ? -1 : 0;
    char cell[160];
    snprintf(cell, sizeof cell, "%s %s %s T=%.0f b=%.0f", str(now, "shape"), str(now, "impl"), str(now, "variant"),
             num(now, "threads"), num(now, "batch"));
    double scale = higher_better ? 1 : 1e3;
    fprintf(f, "%-64s %-8s %12.4g -> %12.4g %s  x%.3f  %s\n", cell, metric, old_v * scale, new_v * scale,
            higher_better ? "tok/s" : "ms   ", ratio, flag > 0 ? "FASTER" : flag < 0 ? "SLOWER" : "");
    return flag;
}

int suite_compare(cJSON *now_root, const char *old_path, FILE *f)
{
    cJSON *old_root = load(old_path);
    const cJSON *old_rows = cJSON_GetObjectItem(old_root, "results");
    if (!old_root || !cJSON_IsArray(old_rows)) {
        fprintf(stderr, "saemon bench: --compare %s: not a readable saemon bench JSON file\n", old_path);
        cJSON_Delete(old_root);
        return -1;
    }
    fprintf(f, "\n== Compared with %s (ratio = new / old; flagged beyond +-%.0f%%) ==\n", old_path, 100 * CHANGE);
    int n = 0, faster = 0, slower = 0, missing = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(now_root, "results"))
    {
        if (cJSON_GetObjectItem(row, "skipped"))
            continue;
        const cJSON *old = NULL, *o;
        cJSON_ArrayForEach(o, old_rows)
        {
            if (!cJSON_GetObjectItem(o, "skipped") && same_cell(row, o)) {
                old = o;
                break;
            }
        }
        if (!old) {
            missing++;
            continue;
        }
        int flags[2];
        if (!strcmp(str(row, "kind"), "latency")) {
            flags[0] = line(f, row, "p50", num(old, "p50_s"), num(row, "p50_s"), 0);
            flags[1] = line(f, row, "p99", num(old, "p99_s"), num(row, "p99_s"), 0);
        } else {
            flags[0] = line(f, row, "tok/s", num(old, "tokens_per_s"), num(row, "tokens_per_s"), 1);
            flags[1] = 0;
        }
        for (int i = 0; i < 2; i++) {
            faster += flags[i] > 0;
            slower += flags[i] < 0;
        }
        n++;
    }
    fprintf(f, "%d cells compared: %d figures faster, %d slower beyond +-%.0f%%; %d cells have no counterpart in "
               "%s\n",
            n, faster, slower, 100 * CHANGE, missing, old_path);
    cJSON_Delete(old_root);
    return n;
}
