/* An on-disk spool of pending deliveries: one file per alert, named
 * <20-digit sequence>-<idempotency key>.json, written to a temporary name,
 * fsynced and renamed (then the directory fsynced) before any delivery is
 * attempted, and unlinked once delivered. Sequence order = delivery order.
 * A lock file keeps two processes from sharing one spool. */
#ifndef SAEMON_MONITORS_SINKS_SPOOL_H
#define SAEMON_MONITORS_SINKS_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "saemon/error.h"

typedef struct spool_entry {
    uint64_t seq;
    char key[65];
    char *body;
    size_t len;
    bool on_disk; /* written to the spool (false: the write failed, memory only) */
    bool resend;  /* alertmanager re-send of an active alert: never spooled, never "lost" */
} spool_entry;

typedef struct spool {
    char *dir;
    int dir_fd, lock_fd;
    uint64_t next_seq;
    uint64_t quarantined;        /* bad entries moved aside as *.bad at open */
    char last_quarantined[160];  /* "name (why)" of the last one */
} spool;

/* Create the directory if missing (one level), take the lock and load every
 * pending entry in order into *pending (malloc'd array; bodies malloc'd).
 * Entries are not trusted: a symlink, FIFO, empty, oversized or non-JSON
 * entry is renamed to NAME.bad (counted in sp->quarantined) and skipped. */
saemon_status spool_open(spool *sp, const char *dir, spool_entry **pending, size_t *n_pending,
                         saemon_error *err);
/* Give e the next sequence number and persist it; false with errno set. */
bool spool_write(spool *sp, spool_entry *e);
/* Read e's body back from its file (entries beyond the memory bound keep
 * only their file); false if it is gone or bad. */
bool spool_read(spool *sp, spool_entry *e);
/* Delivered: unlink. Refused by the receiver: keep it aside as .rejected. */
bool spool_remove(spool *sp, const spool_entry *e);
bool spool_reject(spool *sp, const spool_entry *e);
void spool_close(spool *sp);

#endif
