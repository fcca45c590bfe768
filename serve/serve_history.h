/* Capture on demand in `saemon serve`: the last `window` raw rows of every
 * live stream of a ring, so that when a rule with `capture:` fires, the
 * window can be encoded with every latent (cli_capture_rows). Memory is
 * bounded: at most `max_streams` streams are kept, the least recently used
 * one is forgotten first (its capture then sees fewer rows). */
#ifndef SAEMON_CLI_SERVE_HISTORY_H
#define SAEMON_CLI_SERVE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

typedef struct serve_history serve_history;

/* NULL on no memory. */
serve_history *serve_history_create(size_t d_in, uint32_t window, size_t max_streams);
/* Row `token` of `stream` (d_in floats); a token that does not follow the
 * stream's previous one starts its window afresh. */
void serve_history_push(serve_history *h, uint64_t stream, uint64_t token, const float *row);
/* Copy the stream's rows of positions (token - window, token], oldest
 * first, into out ([window][d_in]); returns how many. */
size_t serve_history_window(const serve_history *h, uint64_t stream, uint64_t token, uint32_t window, float *out);
void serve_history_forget(serve_history *h, uint64_t stream);
uint32_t serve_history_capacity(const serve_history *h); /* the window it keeps */
void serve_history_destroy(serve_history *h);

#endif
