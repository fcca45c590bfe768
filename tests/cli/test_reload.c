/* Hot reload through the CLI: `saemon demo --tokens 0 --rate 2000` runs as a
 * child on a rule file that the test rewrites. A broken file must leave the
 * old rules running and name file:line:column on stderr; SIGHUP and a change
 * of the file (in place and by rename) reload; the alerts that follow obey the
 * new rules; SIGTERM ends the run with exit 0 and a complete alerts file.
 * Every wait is bounded; the child is killed on every path (fini + PDEATHSIG). */
#include <cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "tests/cli/cli_run.h"
#include "tests/support/support.h"

static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
}

static void start_demo(const char *rules, const char *alerts, const char *out, const char *err)
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
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execl(cli, cli, "demo", "--tokens", "0", "--rate", "2000", "--rules", rules, "--alerts", alerts, (char *)NULL);
        _exit(127);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void expect_alive(void)
{
    int status;
    cr_assert_eq(waitpid(child, &status, WNOHANG), 0, "saemon demo exited early (status %d)", status);
}

/* Occurrences of `needle` in the file (0 if unreadable). */
static size_t count_in(const char *path, const char *needle)
{
    char *text = slurp(path);
    size_t n = 0;
    for (const char *p = text ? strstr(text, needle) : NULL; p; p = strstr(p + 1, needle))
        n++;
    free(text);
    return n;
}

/* Wait (at most 4 s) until the file holds more than `than` copies of `needle`. */
static void wait_for(const char *path, const char *needle, size_t than)
{
    for (int i = 0; i < 200; i++) {
        if (count_in(path, needle) > than)
            return;
        expect_alive();
        sleep_ms(20);
    }
    char *text = slurp(path);
    cr_assert_fail("no '%s' in %s after 4 s; it holds:\n%s", needle, path, text ? text : "(unreadable)");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* The way many editors save: write a new file, rename it over the old one. */
static void replace_file(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    write_file(tmp, text);
    cr_assert_eq(rename(tmp, path), 0);
}

#define V1 "version: 1\nrules:\n  - name: v1\n    condition: {feature: 173, above: 1.0}\n"
#define BROKEN "version: 1\nrules:\n  - name: v1\n    condition: {feature: 173, abov: 1.0}\n"
#define V2 "version: 1\nrules:\n  - name: v2\n    condition: {feature: 41, above: 0.5}\n"

Test(reload, broken_then_valid_rules_while_running, .timeout = 30, .fini = kill_child)
{
    char *dir = test_tmpdir();
    char rules[4096], alerts[4096], out[4096], err[4096], where[4200];
    snprintf(rules, sizeof rules, "%s/rules.yaml", dir);
    snprintf(alerts, sizeof alerts, "%s/alerts.jsonl", dir);
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    write_file(rules, V1);
    start_demo(rules, alerts, out, err);

    wait_for(alerts, "\"rule\":\"v1\"", 0);
    /* --encode auto: only feature 173 is encoded (docs/ARCHITECTURE.md "Subset plans") */
    cr_expect(count_in(err, "saemon demo: encoder plan: subset of 1 of 256 latents") == 1, "%s", slurp(err));

    /* SIGHUP on an unchanged file: reloaded, the rule keeps its state. */
    kill(child, SIGHUP);
    wait_for(err, "rules reloaded: 1 rules (1 kept state, 0 changed, 0 added, 0 removed) after SIGHUP", 0);

    /* A broken file (saved by rename): reported with file:line:column, old rules stay. */
    replace_file(rules, BROKEN);
    snprintf(where, sizeof where, "%s:4:31: unknown key 'abov'", rules);
    wait_for(err, where, 0);
    cr_expect(count_in(err, "keeping the old rules") == 1, "the error must say the old rules stay");
    cr_expect(count_in(err, "Z saemon demo: rules not reloaded") == 1, "the error line carries a timestamp");
    size_t v1_before = count_in(alerts, "\"rule\":\"v1\"");
    wait_for(alerts, "\"rule\":\"v1\"", v1_before); /* still alerting on the old rules */

    /* A valid new version written in place: reloaded on the file change. */
    write_file(rules, V2);
    wait_for(err, "rules reloaded: 1 rules (0 kept state, 0 changed, 1 added, 1 removed) after a change of the file", 0);
    wait_for(alerts, "\"rule\":\"v2\"", 0);
    /* the encoder swapped its plan to feature 41: v2's alerts above prove it is watched */
    cr_expect(count_in(err, "encoder plan from the next batch: subset of 1 of 256 latents") >= 2, "%s", slurp(err));

    kill(child, SIGTERM);
    int status = -1;
    for (int i = 0; i < 250 && child > 0; i++) {
        if (waitpid(child, &status, WNOHANG) == child)
            child = -1;
        else
            sleep_ms(20);
    }
    cr_assert_eq(child, -1, "saemon demo did not stop within 5 s of SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d; stderr:\n%s", status, slurp(err));
    cr_expect(count_in(out, "summary:") == 1, "a stopped demo still prints its summary");

    /* Every line is JSON; once v2 alerts start, v1 never alerts again. */
    char *jsonl = slurp(alerts);
    cr_assert_not_null(jsonl);
    cr_assert(strlen(jsonl) > 0 && jsonl[strlen(jsonl) - 1] == '\n', "the last alert line is incomplete");
    bool seen_v2 = false;
    size_t lines = 0;
    for (char *line = strtok(jsonl, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *a = cJSON_Parse(line);
        cr_assert_not_null(a, "not JSON: %s", line);
        const char *rule = cJSON_GetStringValue(cJSON_GetObjectItem(a, "rule"));
        cr_assert_not_null(rule);
        if (!strcmp(rule, "v2"))
            seen_v2 = true;
        else
            cr_assert(!seen_v2, "a v1 alert after the reload to v2: %s", line);
        cJSON_Delete(a);
    }
    cr_expect(seen_v2);
    cr_expect_gt(lines, 2);
    free(jsonl);
    free(dir);
}

#define V3 "version: 1\nrules:\n  - name: v1\n    condition: {feature: 41, above: 0.5}\n"

/* A rule file reached through a symlink from another directory: the watch on
 * the link's directory does not see the target change, SIGHUP reloads it. */
Test(reload, sighup_reloads_a_changed_file, .timeout = 30, .fini = kill_child)
{
    char *dir = test_tmpdir();
    char target[4096], rules[4096], alerts[4096], out[4096], err[4096];
    snprintf(target, sizeof target, "%s/target.yaml", dir);
    snprintf(rules, sizeof rules, "%s/watched", dir);
    cr_assert_eq(mkdir(rules, 0755), 0);
    snprintf(rules, sizeof rules, "%s/watched/rules.yaml", dir);
    snprintf(alerts, sizeof alerts, "%s/alerts.jsonl", dir);
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    write_file(target, V1);
    cr_assert_eq(symlink(target, rules), 0);
    start_demo(rules, alerts, out, err);
    wait_for(alerts, "\"rule\":\"v1\"", 0);

    write_file(target, V3); /* same name, new condition */
    kill(child, SIGHUP);
    wait_for(err, "rules reloaded: 1 rules (0 kept state, 1 changed, 0 added, 0 removed) after SIGHUP", 0);
    /* feature 41 alerts carry it in their features list */
    wait_for(alerts, "\"index\":41", 0);

    kill(child, SIGTERM);
    int status = -1;
    for (int i = 0; i < 250 && child > 0; i++) {
        if (waitpid(child, &status, WNOHANG) == child)
            child = -1;
        else
            sleep_ms(20);
    }
    cr_assert_eq(child, -1, "saemon demo did not stop within 5 s of SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(dir);
}

/* issue 12, item 14: auto-reload silently stopped after the rules directory
 * was deleted and recreated. Now it says so and re-arms the watch. */
Test(reload, watch_survives_the_directory_being_recreated, .timeout = 30, .fini = kill_child)
{
    char *dir = test_tmpdir();
    char sub[4096], rules[4200], alerts[4096], out[4096], err[4096];
    snprintf(sub, sizeof sub, "%s/rules.d", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    snprintf(rules, sizeof rules, "%s/rules.yaml", sub);
    snprintf(alerts, sizeof alerts, "%s/alerts.jsonl", dir);
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    write_file(rules, V1);
    start_demo(rules, alerts, out, err);
    wait_for(alerts, "\"rule\":\"v1\"", 0);

    cr_assert_eq(unlink(rules), 0);
    cr_assert_eq(rmdir(sub), 0);
    wait_for(err, "file watching stopped", 0);
    cr_assert_eq(mkdir(sub, 0755), 0);
    wait_for(err, "for changes again", 0);
    write_file(rules, V2); /* no SIGHUP: the re-armed watch sees it */
    wait_for(err, "1 added, 1 removed) after a change of the file", 0);
    wait_for(alerts, "\"rule\":\"v2\"", 0);
    free(dir);
}
