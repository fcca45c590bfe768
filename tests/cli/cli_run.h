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

#endif
