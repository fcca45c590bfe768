/* Run the saemon CLI binary ($SAEMON_CLI) and capture what it printed. */
#ifndef SAEMON_TEST_CLI_RUN_H
#define SAEMON_TEST_CLI_RUN_H

typedef struct cli_result {
    int exit_code;  /* -1 if it did not exit normally (crash) */
    char *out;      /* stdout, NUL-terminated, malloc'd */
    char *err;      /* stderr */
} cli_result;

/* argv-style arguments after the program name, NULL-terminated. */
cli_result cli_run(const char *const *args);
void cli_result_free(cli_result *r);

/* Read a whole file (NUL-terminated); NULL if it cannot be read. */
char *slurp(const char *path);

/* An independent model of one rule's firing logic (docs/rules.md): fires
 * when the condition has held `for_tokens` tokens, the rule is armed (the
 * condition was false since the last firing) and more than `cooldown` tokens
 * passed since the last firing. Initialise armed = 1, last_fire = -1. */
typedef struct rule_oracle {
    unsigned for_tokens, cooldown;
    unsigned held;
    int armed;
    long last_fire;
} rule_oracle;

int rule_oracle_step(rule_oracle *o, int cond, long token);

#endif
