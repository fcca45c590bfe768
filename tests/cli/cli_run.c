#include "tests/cli/cli_run.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/support.h"

extern char **environ;

char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = 0;
    return buf;
}

cli_result cli_run(const char *const *args)
{
    const char *cli = getenv("SAEMON_CLI");
    cr_assert_not_null(cli, "SAEMON_CLI is not set (run through meson test)");
    char *dir = test_tmpdir();
    char out_path[4096], err_path[4096];
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    size_t n = 0;
    while (args[n])
        n++;
    char **argv = calloc(n + 2, sizeof *argv);
    argv[0] = (char *)cli;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, cli, &fa, NULL, argv, environ), 0, "cannot start %s", cli);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cli_result r = {.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                    .out = slurp(out_path), .err = slurp(err_path)};
    test_rmtree(dir);
    free(dir);
    free(argv);
    return r;
}

void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
}

int rule_oracle_step(rule_oracle *o, int cond, long token)
{
    if (!cond) {
        o->held = 0;
        o->armed = 1;
        return 0;
    }
    o->held++;
    if (o->held >= o->for_tokens && o->armed && (o->last_fire < 0 || token - o->last_fire > (long)o->cooldown)) {
        o->armed = 0;
        o->last_fire = token;
        return 1;
    }
    return 0;
}
