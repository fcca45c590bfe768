/* A bump allocator: a ruleset owns every string and node it parsed in one
 * arena, so error paths and saemon_rules_close() release everything at once. */
#ifndef SAEMON_BASE_ARENA_H
#define SAEMON_BASE_ARENA_H

#include <stddef.h>

typedef struct arena_block arena_block;

typedef struct arena {
    arena_block *head;
} arena;

/* Zeroed, 16-byte aligned memory for n * size bytes; NULL on overflow or OOM. */
void *arena_calloc(arena *a, size_t n, size_t size);
/* Copy len bytes and add a terminating NUL. */
char *arena_strndup(arena *a, const char *s, size_t len);
void arena_free(arena *a);

#endif
