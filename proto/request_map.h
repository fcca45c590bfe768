/* Map of request ids (engines' strings such as "cmpl-8f3a...")
 * to stream ids and back, for saemon_producer_begin_request() and the
 * verdict by request id. Open addressing, linear probing, backward-shift
 * deletion; grows by doubling up to REQUEST_MAP_MAX entries. Not thread-safe
 * (its owner serializes: the producer under its mutex, saemon serve on the
 * ring's consumer thread). */
#ifndef SAEMON_PROTO_REQUEST_MAP_H
#define SAEMON_PROTO_REQUEST_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/ring_wire.h"

#define REQUEST_MAP_MAX (1u << 16) /* requests tagged at once (then begin_request counts a loss) */

typedef struct request_entry {
    uint64_t key; /* stream + 1; 0 = empty */
    char id[RING_REQUEST_ID_MAX + 1];
} request_entry;

typedef struct request_table {
    request_entry *e;
    uint32_t cap, n;
    bool by_id; /* keyed by id (else by stream) */
} request_table;

typedef struct request_map {
    request_table by_stream, by_id;
} request_map;

/* `stream` is request `id` from now on (forgetting the stream's previous id
 * and the id's previous stream). False when REQUEST_MAP_MAX requests are
 * tagged already or memory ran out (nothing changed then). */
bool request_map_set(request_map *m, uint64_t stream, const char *id);
/* The request id of `stream`, or NULL. */
const char *request_map_id(const request_map *m, uint64_t stream);
/* The stream of request `id`; false if unknown. */
bool request_map_stream(const request_map *m, const char *id, uint64_t *stream);
/* The stream ended: forget its id. */
void request_map_forget(request_map *m, uint64_t stream);
/* Call fn for every (stream, id). */
void request_map_each(const request_map *m, void (*fn)(uint64_t stream, const char *id, void *user), void *user);
void request_map_free(request_map *m);

#endif
