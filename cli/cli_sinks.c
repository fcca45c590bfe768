/* The CLI's sink options on top of the library sink layer. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

/* Set a one-of-a-kind option; a second occurrence is refused rather than
 * silently replacing the first (several sinks of a kind: use --sinks FILE). */
static int set_once(const char **slot, const char *opt, const char *arg)
{
    if (*slot) {
        fprintf(stderr, "saemon: %s given twice ('%s', then '%s'); expected it once — for several sinks of a kind "
                        "use a sinks file (--sinks, docs/sinks.md)\n", opt, *slot, arg);
        return -1;
    }
    *slot = arg;
    return 1;
}

int cli_sink_option(int c, const char *arg, cli_sink_flags *f)
{
    switch (c) {
    case 'o': return set_once(&f->alerts, "--alerts", arg);
    case 'S': return set_once(&f->sinks_file, "--sinks", arg);
    case 'W': return set_once(&f->webhook, "--webhook", arg);
    case 'M': return set_once(&f->alertmanager, "--alertmanager", arg);
    case 'E': return set_once(&f->exec, "--exec", arg);
    case 'P': return set_once(&f->spool, "--spool", arg);
    case 'G': return set_once(&f->generator_url, "--generator-url", arg);
    case 'R': f->resolved = true; return 1;
    case 'U': return set_once(&f->run_id, "--run-id", arg);
    case 'Q': return cli_parse_size("--queue", arg, &f->queue) ? 1 : -1;
    case CLI_OPT_BEARER_FILE: f->webhook_bearer_file = arg; return 1;
    case CLI_OPT_AM_USER: f->alertmanager_user = arg; return 1;
    case CLI_OPT_AM_PASSWORD_FILE: f->alertmanager_password_file = arg; return 1;
    case CLI_OPT_CA_FILE: f->sink_ca_file = arg; return 1;
    default: return 0;
    }
}

/* "cmd a b" -> {"cmd", "a", "b", NULL}; split on spaces and tabs, no quoting
 * (a sinks file takes an exact argv list). */
static char **split_command(const char *cmd)
{
    size_t n = 0, len = strlen(cmd);
    char **argv = calloc(len / 2 + 2, sizeof *argv);
    char *copy = strdup(cmd);
    if (!argv || !copy) {
        free(argv);
        free(copy);
        return NULL;
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
        argv[n++] = tok;
    if (n == 0) {
        free(argv);
        free(copy);
        return NULL;
    }
    return argv; /* argv[0] owns the copy */
}

static bool add(const char *what, saemon_sinks *s, const saemon_sink_options *o)
{
    saemon_error err = {0};
    if (saemon_sinks_add(s, o, &err) == SAEMON_OK)
        return true;
    cli_fail(what, &err);
    return false;
}

static char *spool_subdir(const char *what, const char *spool, const char *name)
{
    if (!spool)
        return NULL;
    if (mkdir(spool, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "saemon %s: cannot create spool directory %s: %s\n", what, spool, strerror(errno));
        return NULL;
    }
    char *dir = NULL;
    if (asprintf(&dir, "%s/%s", spool, name) < 0)
        return NULL;
    return dir;
}

saemon_sinks *cli_sinks_open(const char *what, const cli_sink_flags *f, const char *default_run_id)
{
    saemon_error err = {0};
    saemon_sinks *s = NULL;
    if (saemon_sinks_create(&s, &err) != SAEMON_OK ||
        saemon_sinks_set_run_id(s, f->run_id ? f->run_id : default_run_id, &err) != SAEMON_OK) {
        cli_fail(what, &err);
        saemon_sinks_destroy(s);
        return NULL;
    }
    if ((f->webhook_bearer_file && !f->webhook) || (!!f->alertmanager_user != !!f->alertmanager_password_file) ||
        (f->alertmanager_user && !f->alertmanager) || (f->sink_ca_file && !f->webhook && !f->alertmanager)) {
        fprintf(stderr, "saemon %s: --webhook-bearer-file needs --webhook; --alertmanager-user and "
                        "--alertmanager-password-file go together with --alertmanager; --ca-file needs one of them\n",
                what);
        saemon_sinks_destroy(s);
        return NULL;
    }
    bool ok = true;
    bool any = f->alerts || f->sinks_file || f->webhook || f->alertmanager || f->exec;
    if (!any || f->alerts) {
        saemon_sink_options o = {.kind = SAEMON_SINK_JSONL, .path = f->alerts ? f->alerts : "-",
                                 .queue_capacity = f->queue};
        ok = add(what, s, &o);
    }
    if (ok && f->webhook) {
        char *spool = spool_subdir(what, f->spool, "webhook");
        saemon_sink_options o = {.kind = SAEMON_SINK_WEBHOOK, .url = f->webhook, .spool_dir = spool,
                                 .queue_capacity = f->queue,
                                 .http = {.auth_credentials.file = f->webhook_bearer_file, .ca_file = f->sink_ca_file}};
        ok = (!f->spool || spool) && add(what, s, &o);
        free(spool);
    }
    if (ok && f->alertmanager) {
        char *spool = spool_subdir(what, f->spool, "alertmanager");
        saemon_sink_options o = {.kind = SAEMON_SINK_ALERTMANAGER, .url = f->alertmanager, .spool_dir = spool,
                                 .generator_url = f->generator_url, .queue_capacity = f->queue,
                                 .http = {.basic_username = f->alertmanager_user,
                                          .basic_password.file = f->alertmanager_password_file,
                                          .ca_file = f->sink_ca_file}};
        ok = (!f->spool || spool) && add(what, s, &o);
        free(spool);
    }
    if (ok && f->exec) {
        char **argv = split_command(f->exec);
        if (!argv)
            fprintf(stderr, "saemon %s: --exec needs a command\n", what);
        saemon_sink_options o = {.kind = SAEMON_SINK_EXEC, .argv = (const char *const *)argv,
                                 .queue_capacity = f->queue};
        ok = argv && add(what, s, &o);
        if (argv)
            free(argv[0]);
        free(argv);
    }
    if (ok && f->sinks_file && saemon_sinks_add_config(s, f->sinks_file, &err) != SAEMON_OK) {
        fprintf(stderr, "%s\n", err.message);
        ok = false;
    }
    if (!ok) {
        saemon_sinks_destroy(s);
        return NULL;
    }
    return s;
}

int cli_sinks_close(const char *what, saemon_sinks *sinks, uint64_t *alerts)
{
    if (alerts)
        *alerts = saemon_sinks_get_received(sinks);
    saemon_error err = {0};
    bool ok = saemon_sinks_stop(sinks, &err) == SAEMON_OK;
    uint64_t failed = 0;
    for (size_t i = 0; i < saemon_sinks_get_count(sinks); i++) {
        saemon_sink_stats st;
        saemon_sinks_get_stats(sinks, i, &st);
        fprintf(stderr,
                "saemon %s: sink %s: %" PRIu64 " delivered, %" PRIu64 " retried, %" PRIu64 " spooled, %" PRIu64
                " dropped, %" PRIu64 " failed\n",
                what, st.name, st.delivered, st.retried, st.spooled, st.dropped, st.failed);
        if (st.failed)
            fprintf(stderr, "saemon %s: sink %s: %" PRIu64 " alerts failed delivery for good (last: %s)\n", what,
                    st.name, st.failed, st.last_failure[0] ? st.last_failure : "?");
        if (st.spool_errors)
            fprintf(stderr, "saemon %s: sink %s: %" PRIu64 " alerts could not be written to the spool\n", what,
                    st.name, st.spool_errors);
        failed += st.failed;
    }
    if (!ok)
        cli_fail(what, &err);
    saemon_sinks_destroy(sinks);
    return !ok ? CLI_FAIL : failed ? CLI_DELIVERY : CLI_OK;
}
