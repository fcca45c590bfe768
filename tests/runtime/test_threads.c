/* The multi-core encoder: identical results for any number of slices and
 * threads (including more threads than 64-latent panels), TopK merged
 * correctly across slices, pinning really applied, clean placement errors. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saemon/saemon.h"

#define D_IN 37
#define N_ROWS 19

static uint64_t rng = 88172645463325252ull;
static float frand(void) /* xorshift64, uniform in [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

static saemon_dict *random_dict(saemon_arch arch, size_t d_sae, size_t k)
{
    float *w = malloc(D_IN * d_sae * sizeof(float)), *wd = malloc(D_IN * d_sae * sizeof(float));
    float *b = malloc(d_sae * sizeof(float)), *thr = malloc(d_sae * sizeof(float)), bd[D_IN];
    for (size_t i = 0; i < D_IN * d_sae; i++)
        w[i] = frand(), wd[i] = frand();
    for (size_t j = 0; j < d_sae; j++)
        b[j] = 0.5f * frand(), thr[j] = 0.5f + 0.5f * frand();
    for (size_t i = 0; i < D_IN; i++)
        bd[i] = 0.1f * frand();
    saemon_dict_arrays a = {.name = "random", .arch = arch, .d_in = D_IN, .d_sae = d_sae, .k = k,
                            .apply_b_dec_to_input = true, .W_enc = w, .W_dec = wd, .b_enc = b, .b_dec = bd,
                            .threshold = arch == SAEMON_ARCH_JUMPRELU ? thr : NULL};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    cr_assert_eq(saemon_dict_from_arrays(&a, &d, &err), SAEMON_OK, "%s", err.message);
    free(w), free(wd), free(b), free(thr);
    return d;
}

typedef struct result {
    size_t offsets[N_ROWS + 1];
    uint32_t *index;
    float *value;
} result;

static result encode_with(saemon_dict *d, const float *x, size_t threads, const char *variant)
{
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.variant = variant, .max_batch = N_ROWS, .threads = threads};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    const saemon_features *f;
    cr_assert_eq(saemon_encoder_encode(enc, x, N_ROWS, &f, &err), SAEMON_OK);
    result r;
    memcpy(r.offsets, f->offsets, sizeof r.offsets);
    size_t nnz = f->offsets[N_ROWS];
    r.index = malloc((nnz + 1) * sizeof(uint32_t));
    r.value = malloc((nnz + 1) * sizeof(float));
    memcpy(r.index, f->index, nnz * sizeof(uint32_t));
    memcpy(r.value, f->value, nnz * sizeof(float));
    /* A second call on the same encoder gives the same answer. */
    cr_assert_eq(saemon_encoder_encode(enc, x, N_ROWS, &f, &err), SAEMON_OK);
    cr_assert_eq(f->offsets[N_ROWS], nnz);
    cr_assert_eq(memcmp(f->index, r.index, nnz * sizeof(uint32_t)), 0);
    saemon_encoder_destroy(enc);
    return r;
}

static void assert_same(const result *a, const result *b, const char *what)
{
    cr_assert_eq(memcmp(a->offsets, b->offsets, sizeof a->offsets), 0, "%s: different active counts", what);
    size_t nnz = a->offsets[N_ROWS];
    cr_assert_eq(memcmp(a->index, b->index, nnz * sizeof(uint32_t)), 0, "%s: different active sets", what);
    cr_assert_eq(memcmp(a->value, b->value, nnz * sizeof(float)), 0, "%s: different values", what);
}

static void check_all_slicings(saemon_arch arch, size_t d_sae, size_t k)
{
    saemon_dict *d = random_dict(arch, d_sae, k);
    float x[N_ROWS * D_IN];
    for (size_t i = 0; i < N_ROWS * D_IN; i++)
        x[i] = frand();
    const char *variants[] = {"scalar", NULL /* best for this CPU */};
    for (size_t v = 0; v < 2; v++) {
        result base = encode_with(d, x, 0, variants[v]);
        cr_assert_gt(base.offsets[N_ROWS], 0, "the test dictionary should activate something");
        for (size_t threads = 1; threads <= 4; threads++) {
            result r = encode_with(d, x, threads, variants[v]);
            char what[96];
            snprintf(what, sizeof what, "%s d_sae %zu threads %zu", variants[v] ? variants[v] : "best", d_sae, threads);
            assert_same(&base, &r, what);
            free(r.index), free(r.value);
        }
        free(base.index), free(base.value);
    }
    saemon_dict_close(d);
}

Test(threads, relu_identical_for_any_slicing) { check_all_slicings(SAEMON_ARCH_STANDARD, 300, 0); }
Test(threads, jumprelu_identical_for_any_slicing) { check_all_slicings(SAEMON_ARCH_JUMPRELU, 257, 0); }
Test(threads, topk_merged_across_slices) { check_all_slicings(SAEMON_ARCH_TOPK, 300, 7); }
Test(threads, topk_k_larger_than_a_slice) { check_all_slicings(SAEMON_ARCH_TOPK, 150, 100); }
Test(threads, more_threads_than_panels) { check_all_slicings(SAEMON_ARCH_STANDARD, 50, 0); }

static int allowed_cpus(cpu_set_t *set)
{
    CPU_ZERO(set);
    cr_assert_eq(sched_getaffinity(0, sizeof *set, set), 0);
    return CPU_COUNT(set);
}

Test(threads, pinning_is_applied_and_read_back)
{
    cpu_set_t before;
    int n_cpus = allowed_cpus(&before);
    saemon_dict *d = random_dict(SAEMON_ARCH_STANDARD, 128, 0);
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.max_batch = 4, .threads = 2};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    size_t n = saemon_encoder_get_threads(enc);
    cr_assert_eq(n, n_cpus >= 2 ? 2u : 1u);
    if (n_cpus < 2)
        cr_assert_neq(saemon_encoder_get_warning(enc)[0], 0, "fewer cores than asked must warn");
    int seen[2] = {-1, -1};
    for (size_t s = 0; s < n; s++) {
        seen[s] = saemon_encoder_get_thread_cpu(enc, s);
        cr_assert_geq(seen[s], 0, "slice %zu is not pinned", s);
        cr_assert(CPU_ISSET(seen[s], &before), "slice %zu pinned outside the allowed cpuset", s);
    }
    if (n == 2)
        cr_assert_neq(seen[0], seen[1], "two slices must sit on two different cores");
    /* The calling thread (slice 0) is bound to exactly one CPU now. */
    cpu_set_t after;
    cr_assert_eq(allowed_cpus(&after), 1);
    cr_assert(CPU_ISSET(seen[0], &after));
    saemon_encoder_destroy(enc);
    saemon_dict_close(d);
}

Test(threads, more_threads_than_cores_warns_and_falls_back)
{
    cpu_set_t set;
    int n_cpus = allowed_cpus(&set);
    saemon_dict *d = random_dict(SAEMON_ARCH_STANDARD, 64, 0);
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options o = {.max_batch = 2, .threads = 64, .no_pin = 1};
    cr_assert_eq(saemon_encoder_create(d, &o, &enc, &err), SAEMON_OK, "%s", err.message);
    cr_assert_leq(saemon_encoder_get_threads(enc), (size_t)n_cpus);
    cr_assert(strstr(saemon_encoder_get_warning(enc), "only"), "warning: %s", saemon_encoder_get_warning(enc));
    saemon_encoder_destroy(enc);
    saemon_dict_close(d);
}

Test(threads, cpu_lists_are_validated)
{
    saemon_dict *d = random_dict(SAEMON_ARCH_STANDARD, 64, 0);
    saemon_encoder *enc = NULL;
    saemon_error err = {0};
    saemon_encoder_options bad = {.threads = 1, .cpus = "zero-two", .no_pin = 1};
    cr_assert_eq(saemon_encoder_create(d, &bad, &enc, &err), SAEMON_ERR_ARG);
    cr_assert(strstr(err.message, "zero-two"), "%s", err.message);
    cpu_set_t set;
    allowed_cpus(&set);
    char all[64];
    snprintf(all, sizeof all, "0-%d", CPU_SETSIZE - 1);
    saemon_encoder_options none = {.threads = 1, .exclude_cpus = all, .no_pin = 1};
    cr_assert_eq(saemon_encoder_create(d, &none, &enc, &err), SAEMON_ERR_ARG, "excluding every CPU must fail");
    cr_assert(strstr(err.message, "no allowed core"), "%s", err.message);
    saemon_dict_close(d);
}
