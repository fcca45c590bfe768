/* UTF-8 checks and escapes for text that came from outside (a producer's
 * announcement, a receiver's reply) on its way to /metrics labels or logs. */
#ifndef SAEMON_BASE_UTF8_H
#define SAEMON_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s (at most n bytes), or 0
 * (truncated, overlong, a surrogate, above U+10FFFF, a stray continuation). */
size_t utf8_sequence(const unsigned char *s, size_t n);

/* s is NUL-terminated within `max` bytes, non-empty unless allow_empty, valid
 * UTF-8 and has no control character (C0, DEL, C1). */
bool utf8_printable(const char *s, size_t max, bool allow_empty);

/* A logfmt value: "..." with \" \\ escaped, control characters and bytes of
 * invalid UTF-8 as \xNN. Always NUL-terminates dst (cap >= 3); truncates
 * whole characters. Returns dst. */
char *utf8_logfmt_quote(char *dst, size_t cap, const char *s);

#endif
