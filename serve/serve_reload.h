/* Reloads of a running `saemon serve`, on the main thread: rule files
 * (SIGHUP or a change seen by inotify), the web config (SIGHUP). New rules
 * are parsed, bound and their latents packed here, never on a consumer
 * thread; the consumer switches between two frames. serve_reload.c. */
#ifndef SAEMON_SERVE_RELOAD_H
#define SAEMON_SERVE_RELOAD_H

#include "serve/metrics_http.h"
#include "serve/serve.h"

/* inotify on the directories of the rule files (a file saved by an editor
 * or renamed into place, a ConfigMap's ..data swap) */
typedef struct serve_rule_watch {
    int fd;
} serve_rule_watch;

/* Parse d's rule file and bind it to the dictionary when it is open. */
saemon_status serve_load_rules(const serve_dict *d, saemon_ruleset **out, saemon_error *err);
void serve_watch_rule_dirs(serve *srv, serve_rule_watch *w);
/* Did a rule file change since the last call? (reads the pending events) */
bool serve_rules_changed(serve *srv, serve_rule_watch *w);
void serve_request_reload(serve *srv, const char *why);
/* Take the consumers' answers to reloads in flight; serve deferred ones. */
void serve_finish_reloads(serve *srv);
void serve_reload_web_config(const char *path, metrics_http **http, web_config **web);
/* Free rule sets the consumers have stopped using. */
void serve_free_retired(serve *srv);

#endif
