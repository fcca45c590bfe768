/* Pieces shared by the saemon sub-commands. The CLI is a thin layer over the
 * public API: everything here is something a C user could do too. */
#ifndef SAEMON_CLI_H
#define SAEMON_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "saemon/saemon.h"

/* Exit codes: 0 ok, 1 the input was refused or a run failed, 2 usage error. */
/* Exit statuses (docs/sinks.md): 3 = the run finished but some alerts
 * failed delivery for good (refused, exec status != 0 or timeout). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_DELIVERY = 3 };

int cmd_inspect(int argc, char **argv);
/* Rules from data (docs/authoring.md). */
int cmd_features(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_backtest(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_test_rules(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_pack(int argc, char **argv);
/* saemon check --config / --web-config: the daemon's files (serve/serve_check.c). */
int cmd_check_serve_files(const char *config, const char *web_config);
/* saemon check --sinks FILE (cmd_check.c): CLI_OK or CLI_FAIL after a message. */
int cli_check_sinks_file(const char *path);

/* Print "saemon <what>: <message>" for a failed call; returns CLI_FAIL. */
int cli_fail(const char *what, const saemon_error *err);

/* Parse a positive size_t option value; false (after a message) if invalid. */
bool cli_parse_size(const char *opt, const char *text, size_t *out);

/* Where alerts go (library sink layer, docs/sinks.md). With no sink option
 * alerts go to stdout as JSON lines. --alerts FILE appends one line per alert,
 * written before the next is taken; a write failure (full disk) ends the run
 * with an error. */
typedef struct cli_sink_flags {
    const char *alerts, *sinks_file, *webhook, *alertmanager, *exec, *spool, *generator_url;
    /* credentials of --webhook / --alertmanager (the common case; a sinks
     * file takes every option, docs/sinks.md) */
    const char *webhook_bearer_file, *alertmanager_user, *alertmanager_password_file, *sink_ca_file;
    const char *run_id; /* --run-id; NULL: the command's default (run: the input path) */
    size_t queue;
    bool resolved; /* --resolved: the monitor also reports resolved alerts */
} cli_sink_flags;

#define CLI_SINK_LONG_OPTIONS                                                                             \
    {"alerts", required_argument, 0, 'o'}, {"sinks", required_argument, 0, 'S'},                         \
        {"webhook", required_argument, 0, 'W'}, {"alertmanager", required_argument, 0, 'M'},            \
        {"exec", required_argument, 0, 'E'}, {"spool", required_argument, 0, 'P'},                      \
        {"queue", required_argument, 0, 'Q'}, {"generator-url", required_argument, 0, 'G'},            \
        {"resolved", no_argument, 0, 'R'}, {"webhook-bearer-file", required_argument, 0, CLI_OPT_BEARER_FILE}, \
        {"alertmanager-user", required_argument, 0, CLI_OPT_AM_USER},                                    \
        {"alertmanager-password-file", required_argument, 0, CLI_OPT_AM_PASSWORD_FILE},                  \
        {"ca-file", required_argument, 0, CLI_OPT_CA_FILE}, {"run-id", required_argument, 0, 'U'}
enum { CLI_OPT_BEARER_FILE = 0x1500, CLI_OPT_AM_USER, CLI_OPT_AM_PASSWORD_FILE, CLI_OPT_CA_FILE };
#define CLI_SINK_USAGE                                                                                    \
    "  --alerts FILE        append one JSON line per alert to FILE ('-' = stdout)\n"                      \
    "  --sinks SINKS.yaml   sinks from a config file (see docs/sinks.md)\n"                                \
    "  --webhook URL        POST each alert as JSON (retries, Idempotency-Key)\n"                          \
    "  --alertmanager URL   send to Prometheus Alertmanager (URL/api/v2/alerts)\n"                         \
    "  --exec CMD           run CMD (split on spaces, no shell) with the alert JSON on stdin\n"            \
    "  --spool DIR          keep undelivered webhook/alertmanager alerts in DIR across restarts\n"         \
    "  --queue N            alerts each sink may hold before dropping (default 65536)\n"                   \
    "  --generator-url URL  generatorURL sent to Alertmanager\n"                                           \
    "  --webhook-bearer-file FILE   send 'Authorization: Bearer <the file's content>' to --webhook\n"     \
    "  --alertmanager-user USER --alertmanager-password-file FILE   basic auth for --alertmanager\n"     \
    "  --ca-file FILE       CA certificates (PEM) that --webhook/--alertmanager servers must chain to\n"  \
    "  --resolved           also send \"resolved\" alerts when a firing rule stops holding\n"          \
    "  --run-id ID          part of every Idempotency-Key: the same events under the same ID\n"        \
    "                       repeat their keys (run: default the --input path; demo: \"demo\")\n"

/* Handle one of the options above; returns 1 if `c` was one (0 if not, -1 on a bad value). */
int cli_sink_option(int c, const char *arg, cli_sink_flags *f);
/* Open every sink asked for; NULL (after a message) on failure. */
saemon_sinks *cli_sinks_open(const char *what, const cli_sink_flags *f, const char *default_run_id);
/* Deliver what is queued, close, print one counter line per sink to stderr;
 * CLI_FAIL (after a message) if a sink lost alerts, CLI_DELIVERY if alerts
 * failed delivery for good (one line per such sink says why), else CLI_OK.
 * Frees the sinks; *alerts (if not NULL) gets the number of alerts raised. */
int cli_sinks_close(const char *what, saemon_sinks *sinks, uint64_t *alerts);

/* Encode rows [first, first+n) of a recording in max_batch chunks and feed
 * every token to the monitor. Row r belongs to stream r / tokens_per_stream at
 * position r % tokens_per_stream. */
typedef struct cli_replay {
    saemon_encoder *encoder;
    saemon_monitor *monitor;
    size_t d_in;
    size_t tokens_per_stream;
    saemon_alert_fn on_alert;
    void *alert_user;
    uint64_t tokens;
    uint64_t active_features; /* sum of L0 over tokens */
} cli_replay;

saemon_status cli_replay_rows(cli_replay *rp, const float *rows, uint64_t first_row, size_t n,
                              saemon_error *err);

/* Human-readable description of a dictionary (and the encoder if given). */
void cli_print_dict(FILE *f, const saemon_dict_info *info, const saemon_encoder *enc);

/* A float as a JSON value: a number (%.9g, round-trips), or for a non-finite
 * one the string "+Inf", "-Inf" or "NaN" (bare inf/nan is not JSON). */
bool cli_write_json_float(FILE *f, float v);

/* One token's sparse features as a JSON line: {"stream":S,"token":T,"index":[…],"value":[…]},
 * with "dictionary" and "ring" first when not NULL (names must need no escaping),
 * values as cli_write_json_float writes them and "input_nonfinite":true when
 * the raw row held NaN/Inf. Shared by `encode --sparse` and `serve --features`;
 * false on a write error. */
bool cli_write_sparse_line(FILE *f, const char *dictionary, const char *ring, uint64_t stream, uint64_t token,
                           const uint32_t *idx, const float *val, size_t nnz, bool input_nonfinite);


/* --encode auto|rules|all (cli_plan.c): the encoder computes the latents the
 * rules read when that is exact, and follows rule reloads. */
typedef struct cli_plan_next {
    uint32_t *latents;
    saemon_rules_needs needs;
} cli_plan_next;

typedef struct cli_plan {
    saemon_encode_mode mode;   /* from --encode; the default is auto */
    saemon_dict *dict;         /* opened by cli_plan_open_dict: a reload reads new latents into it */
    uint32_t *latents;         /* the rules' latents (not for mode all) */
    saemon_rules_needs needs;
    cli_plan_next next;        /* prepared by cli_plan_reload, kept or dropped by cli_plan_commit */
} cli_plan;

#define CLI_PLAN_LONG_OPTION {"encode", required_argument, 0, 'N'}
#define CLI_PLAN_USAGE                                                                                    \
    "  --encode MODE        auto (default): only the latents the rules read when that is exact\n"          \
    "                       (not TopK, no L0/reconstruction rule without every:), else all;\n"             \
    "                       rules: that subset or an error; all: every latent\n"

bool cli_parse_encode_mode(const char *text, saemon_encode_mode *out);
/* Set eo's encode mode, latents, full_reason, full_every and reconstruction
 * from the rules; false (after a message) on no memory. */
bool cli_plan_apply(cli_plan *p, const saemon_ruleset *rules, saemon_encoder_options *eo);
/* "saemon <what>: encoder plan: ..." on stderr. */
void cli_plan_log(const char *what, const saemon_encoder *enc);
/* Before a monitor reload to `next`: prepare and hand the encoder the new
 * latent set (installed at its next batch); false with `err` when the new
 * rules cannot run on this plan. Then cli_plan_commit says whether the
 * monitor switched (else the old set is put back). */
bool cli_plan_reload(cli_plan *p, saemon_encoder *enc, const saemon_ruleset *next, saemon_error *err);
/* Plan before load: apply the plan (cli_plan_apply; rules may be NULL: no
 * plan, every latent), open `dir` reading only what it needs (the rules'
 * encoder rows for a subset plan; W_dec only for the reconstruction error),
 * bind the rules (hashing the weights only when a rule pins their sha256),
 * give them the dictionary's feature labels (a pack's), and log what was
 * read and held. On failure prints why and returns false. */
bool cli_plan_open_dict(cli_plan *p, const char *what, const char *dir, saemon_ruleset *rules,
                        saemon_encoder_options *eo, saemon_dict **out);
/* Off the encoding thread, before cli_plan_reload: read the encoder rows of
 * the latents `next` watches that the dictionary does not hold yet. False
 * (err says why, nothing changed) when the weights file changed since start. */
bool cli_plan_prefetch(saemon_dict *dict, const saemon_ruleset *next, saemon_error *err);
void cli_plan_commit(cli_plan *p, bool switched, saemon_encoder *enc);
void cli_plan_free(cli_plan *p);

/* Capture on demand over a recording (cli_capture.c): saemon_capture_fn for
 * saemon_monitor_set_capture. Row r is stream r / tokens_per_stream. */
typedef struct cli_capture {
    const saemon_dict *dict;
    const char *variant;        /* the run's --isa */
    const float *rows;
    size_t d_in, tokens_per_stream, n_rows;
    saemon_encoder *enc;        /* every latent; created on the first capture */
    float *best;                /* [d_sae] */
    uint32_t *touched;
    void *ranked;
    bool failed;
} cli_capture;

size_t cli_capture_fn(uint64_t stream, uint64_t token, uint32_t window, saemon_alert_feature *out, size_t cap,
                      void *user);
/* The strongest features (largest value over the rows) of n contiguous raw
 * rows encoded with every latent; c->dict, c->variant and c->d_in must be set. */
size_t cli_capture_rows(cli_capture *c, const float *rows, size_t n, saemon_alert_feature *out, size_t cap);
void cli_capture_close(cli_capture *c);

/* A dictionary, its encoder and a recorded activation file viewed as rows. */
typedef struct cli_session {
    saemon_dict *dict;
    saemon_encoder *encoder;
    saemon_npy input;
    size_t n_rows, n_streams, tokens_per_stream;
} cli_session;

/* Open everything `run` and `encode` need; on failure prints why and returns
 * false with nothing left open. */
bool cli_session_open(cli_session *s, const char *what, const char *sae_dir, const char *input_path,
                      const saemon_encoder_options *opts);
/* The same, for rules: they are bound to the dictionary before the encoder
 * is created, and `plan` (may be NULL) sets its latents from them. */
bool cli_session_open_rules(cli_session *s, const char *what, const char *sae_dir, const char *input_path,
                            saemon_encoder_options *opts, saemon_ruleset *rules, cli_plan *plan);

/* Encoder placement options shared by run/encode/demo:
 * --isa, --batch, --threads, --cpus, --exclude-cpus. */
#define CLI_ENCODER_LONG_OPTIONS                                                                          \
    {"isa", required_argument, 0, 'a'}, {"batch", required_argument, 0, 'b'},                            \
        {"threads", required_argument, 0, 'T'}, {"cpus", required_argument, 0, 'C'},                    \
        {"exclude-cpus", required_argument, 0, 'X'}
#define CLI_ENCODER_USAGE                                                                                 \
    "  --isa VARIANT        force a kernel variant (see `saemon inspect --kernels`)\n"                    \
    "  --batch N            rows per encode call (default 256)\n"                                          \
    "  --threads N          split latents across N pinned cores (default: calling thread only)\n"          \
    "  --cpus LIST          only these CPUs, e.g. 2-5\n"                                                  \
    "  --exclude-cpus LIST  never these CPUs (e.g. the model's own cores)\n"

/* Handle one of the options above; returns 1 if `c` was one (0 if not, -1 on a bad value). */
int cli_encoder_option(int c, const char *arg, saemon_encoder_options *o);
/* What run and demo share on their command lines: encoder and sink options,
 * --encode and --rate. */
typedef struct cli_live_flags {
    saemon_encoder_options eo;
    cli_sink_flags sf;
    cli_plan plan;
    double rate;
} cli_live_flags;
#define CLI_LIVE_FLAGS_INIT {.plan = {.mode = SAEMON_ENCODE_AUTO}}
/* run/demo: one of the shared options above. Returns true if `c` was one
 * with a good value; otherwise prints the usage to stderr (unknown option)
 * or the value's error, and returns false. */
bool cli_live_option(int c, const char *arg, cli_live_flags *f, void (*usage)(FILE *));
/* Print the placement warning, if any, to stderr. */
void cli_encoder_warn(const saemon_encoder *enc);
void cli_session_close(cli_session *s);

/* Live operation of run/demo (cli_live.c): signals, --rate, rule reload. */
typedef struct cli_live {
    const char *what;              /* "run" / "demo", for messages */
    const char *rules_path;        /* NULL: built-in rules, nothing to reload */
    const saemon_dict_info *dict;
    bool can_reconstruct;          /* the encoder decodes: recon rules may be added */
    saemon_encoder *encoder;       /* with plan: follows the reloaded rules' latents */
    cli_plan *plan;                /* NULL: the encoder's plan never changes */
    saemon_monitor *monitor;
    saemon_ruleset **rules;        /* the caller's current rules; replaced (old freed) on reload */
    saemon_alert_fn on_alert;      /* resolved alerts of removed rules go here */
    void *alert_user;
    double rate;                   /* tokens per second; <= 0: unpaced */
    /* set by cli_live_start */
    double t0;
    int inotify_fd;
    const char *base;
    char *watch_dir;               /* the rule file's directory (malloc'd) */
    bool watch_lost;               /* the directory was deleted or moved: re-arming */
    double next_rearm;
    /* A reload is parsed on its own thread, never on the encoding thread: a
     * big or hostile file must not stall the alerts (cli_live.c). */
    struct cli_reload_job *job;    /* running or finished, not yet applied */
    const char *pending_why;       /* another request came while it ran */
} cli_live;

/* Install SIGINT/SIGTERM (stop) and SIGHUP (reload) handlers, watch the rule
 * file's directory. */
void cli_live_start(cli_live *l);
/* Between two batches, after `tokens` in total: reload the rules if SIGHUP
 * came or the file changed (errors are logged and the old rules stay), then
 * sleep as --rate asks. */
void cli_live_between_batches(cli_live *l, uint64_t tokens);
/* Encode and evaluate one batch (cli_replay_rows), then cli_live_between_batches.
 * On failure: ends the live session, prints why and returns false. */
bool cli_live_replay_batch(cli_live *l, cli_replay *rp, const float *rows, uint64_t first_row, size_t n);
/* SIGINT or SIGTERM arrived: finish up and exit 0. */
bool cli_live_stopping(void);
void cli_live_end(cli_live *l);

/* What a run or demo replay did, for its closing line. */
typedef struct cli_run_summary {
    uint64_t tokens, alerts;
    double mean_active;    /* features per token: L0, or active watched features */
    const char *mean_what; /* "L0" or "active watched features" */
    double tokens_per_s;
} cli_run_summary;

/* The end of a run or demo replay, written once for both: ends the live
 * loop, closes the sinks (*sinks becomes NULL; a failure is reported there)
 * and fills the summary. Returns cli_sinks_close's code: CLI_OK,
 * CLI_DELIVERY when alerts failed delivery, CLI_FAIL. */
int cli_live_finish(cli_live *l, const cli_replay *rp, saemon_sinks **sinks, cli_run_summary *out);
bool cli_parse_rate(const char *text, double *out);
#define CLI_LIVE_USAGE                                                                                    \
    "  --rate TOKENS_PER_SEC  pace the input like a live feed (default: as fast as possible)\n"            \
    "SIGHUP or a change of the --rules file reloads the rules between batches (a broken\n"                \
    "file is reported and the old rules stay); SIGINT/SIGTERM stop cleanly.\n"
#endif
