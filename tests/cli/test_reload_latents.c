/* A reload that watches latents the start-up plan did not read (issue 19):
 * `saemon run --rate` on a SAELens folder loaded for the rules' latents only;
 * the new rules' rows are read from the file during the run and their
 * alerts follow. When the weights file was replaced since start, the reload
 * is refused, saying so, and the old rules keep running. Bounded waits; the
 * child is killed on every path. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "saemon/saemon.h"
#include "tests/cli/cli_run.h"
#include "tests/support/st_writer.h"
#include "tests/support/support.h"

enum { D_IN = 4, D_SAE = 64, TOKENS = 40000 };

static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t count_in(const char *path, const char *needle)
{
    char *text = slurp(path);
    size_t n = 0;
    for (const char *p = text ? strstr(text, needle) : NULL; p; p = strstr(p + 1, needle))
        n++;
    free(text);
    return n;
}

static void wait_for(const char *path, const char *needle)
{
    for (int i = 0; i < 400; i++) {
        if (count_in(path, needle))
            return;
        int status;
        cr_assert_eq(waitpid(child, &status, WNOHANG), 0, "saemon run exited early (status %d)", status);
        sleep_ms(20);
    }
    char *text = slurp(path);
    cr_assert_fail("no '%s' in %s after 8 s; it holds:\n%s", needle, path, text ? text : "(unreadable)");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* Standard ReLU, no biases: latent j = (j + 1) / 10 * sum(x), so every latent fires on positive rows. */
static void write_sae(const char *dir, const char *name)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"d_in\": %d, \"d_sae\": %d, \"architecture\": \"standard\"}", D_IN, D_SAE);
    free(test_write_file(dir, "cfg.json", cfg, strlen(cfg)));
    static float w_enc[D_IN * D_SAE], w_dec[D_SAE * D_IN], b_enc[D_SAE], b_dec[D_IN];
    for (size_t i = 0; i < D_IN; i++)
        for (size_t j = 0; j < D_SAE; j++)
            w_enc[i * D_SAE + j] = (float)(j + 1) / 10.0f;
    const uint64_t in_sae[2] = {D_IN, D_SAE}, sae_in[2] = {D_SAE, D_IN}, vin[1] = {D_IN}, vsae[1] = {D_SAE};
    st_writer *w = stw_new();
    stw_add_floats(w, "W_enc", "F32", in_sae, 2, w_enc);
    stw_add_floats(w, "W_dec", "F32", sae_in, 2, w_dec);
    stw_add_floats(w, "b_enc", "F32", vsae, 1, b_enc);
    stw_add_floats(w, "b_dec", "F32", vin, 1, b_dec);
    free(stw_write(w, dir, name ? name : "sae_weights.safetensors"));
    stw_free(w);
}

static void start_run(const char *sae, const char *acts, const char *rules, const char *alerts, const char *err)
{
    const char *cli = getenv("SAEMON_CLI");
    cr_assert_not_null(cli, "SAEMON_CLI is not set (run through meson test)");
    pid_t parent = getpid();
    child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int o = open("/dev/null", O_WRONLY), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execl(cli, cli, "run", "--sae", sae, "--input", acts, "--rules", rules, "--alerts", alerts, "--rate",
              "2000", "--batch", "8", (char *)NULL);
        _exit(127);
    }
}

#define WATCH(name, f) "version: 1\nrules:\n  - name: " name "\n    condition: {feature: " #f ", above: 0.1}\n"

static void setup_run(char *dir, char *sae, char *acts, char *rules, char *alerts, char *err)
{
    snprintf(sae, 4096, "%s/sae", dir);
    cr_assert_eq(mkdir(sae, 0755), 0);
    snprintf(acts, 4096, "%s/acts.npy", dir);
    snprintf(rules, 4096, "%s/rules.yaml", dir);
    snprintf(alerts, 4096, "%s/alerts.jsonl", dir);
    snprintf(err, 4096, "%s/stderr.txt", dir);
    write_sae(sae, NULL);
    float *x = malloc(TOKENS * D_IN * sizeof *x);
    for (size_t i = 0; i < TOKENS * D_IN; i++)
        x[i] = 1.0f;
    size_t shape[2] = {TOKENS, D_IN};
    saemon_error e = {0};
    cr_assert_eq(saemon_npy_write_f32(acts, x, 2, shape, &e), SAEMON_OK, "%s", e.message);
    free(x);
    write_text(rules, WATCH("first", 3));
}

Test(reload_latents, new_latents_are_read_from_the_file, .timeout = 60, .fini = kill_child)
{
    char *dir = test_tmpdir();
    char sae[4096], acts[4096], rules[4096], alerts[4096], err[4096];
    setup_run(dir, sae, acts, rules, alerts, err);
    start_run(sae, acts, rules, alerts, err);
    wait_for(err, "holds");
    cr_assert(count_in(err, "1 of 64 encoder rows (the rules' latents), W_dec not read"), "%s", slurp(err));
    wait_for(alerts, "\"rule\":\"first\"");
    write_text(rules, WATCH("second", 50));
    kill(child, SIGHUP);
    wait_for(err, "rules reloaded");
    wait_for(alerts, "\"rule\":\"second\"");
    kill_child();
    test_rmtree(dir);
    free(dir);
}

Test(reload_latents, a_replaced_weights_file_refuses_the_reload, .timeout = 60, .fini = kill_child)
{
    char *dir = test_tmpdir();
    char sae[4096], acts[4096], rules[4096], alerts[4096], err[4096];
    setup_run(dir, sae, acts, rules, alerts, err);
    start_run(sae, acts, rules, alerts, err);
    wait_for(alerts, "\"rule\":\"first\"");
    /* a new file renamed over the old one: another inode */
    char tmp[4200], dst[4200];
    write_sae(sae, "new.safetensors");
    snprintf(tmp, sizeof tmp, "%s/new.safetensors", sae);
    snprintf(dst, sizeof dst, "%s/sae_weights.safetensors", sae);
    cr_assert_eq(rename(tmp, dst), 0);
    write_text(rules, WATCH("second", 50));
    kill(child, SIGHUP);
    wait_for(err, "rules not reloaded");
    cr_assert(count_in(err, "changed since saemon loaded it (it was replaced (another inode))"), "%s", slurp(err));
    cr_assert(count_in(err, "keeping the old rules"), "%s", slurp(err));
    kill_child();
    cr_assert_eq(count_in(alerts, "\"rule\":\"second\""), 0);
    test_rmtree(dir);
    free(dir);
}

/* The SHA-256 of the weights is not computed at start-up (it costs seconds
 * on a multi-GiB file) unless a rule file pins it: then the pin still holds. */
Test(reload_latents, a_sha256_pin_is_checked_when_the_hash_is_deferred, .timeout = 60)
{
    char *dir = test_tmpdir();
    char sae[4096], acts[4096], rules[4096], alerts[4096], err[4096];
    setup_run(dir, sae, acts, rules, alerts, err);
    saemon_dict *d = NULL;
    saemon_error e = {0};
    cr_assert_eq(saemon_dict_open(sae, &d, &e), SAEMON_OK, "%s", e.message);
    char text[512];
    snprintf(text, sizeof text, "dictionary:\n  sha256: \"%s\"\n" WATCH("first", 3), saemon_dict_get_info(d)->sha256);
    saemon_dict_close(d);
    write_text(rules, text);
    const char *args[] = {"run", "--sae", sae, "--rules", rules, "--input", acts, "--alerts", alerts, NULL};
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    cr_assert_gt(count_in(alerts, "\"rule\":\"first\""), 0);
    snprintf(text, sizeof text, "dictionary:\n  sha256: \"%064d\"\n" WATCH("first", 3), 7);
    write_text(rules, text);
    r = cli_run(args);
    cr_assert_eq(r.exit_code, 1, "%s", r.err);
    cr_assert(strstr(r.err, "expects weights sha256"), "%s", r.err);
    cli_result_free(&r);
    test_rmtree(dir);
    free(dir);
}

/* Capture on demand encodes every latent: a reload that adds it to a run that
 * read only the rules' rows is refused, saying why, and the old rules stay. */
Test(reload_latents, capture_needs_a_restart_after_a_subset_start, .timeout = 60, .fini = kill_child)
{
    char *dir = test_tmpdir();
    char sae[4096], acts[4096], rules[4096], alerts[4096], err[4096];
    setup_run(dir, sae, acts, rules, alerts, err);
    start_run(sae, acts, rules, alerts, err);
    wait_for(alerts, "\"rule\":\"first\"");
    write_text(rules, WATCH("second", 50) "    capture: {features: top, count: 4, window: 8}\n");
    kill(child, SIGHUP);
    wait_for(err, "rules not reloaded");
    cr_assert(count_in(err, "captures features on demand, which encodes every latent, but this run holds only 1 of "
                            "the 64 latents"),
              "%s", slurp(err));
    kill_child();
    test_rmtree(dir);
    free(dir);
}
