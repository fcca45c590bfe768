/* Reading files whole, the one way every loader does it: opened with
 * O_NONBLOCK | O_CLOEXEC (a FIFO or a device would otherwise block open() or
 * read() forever), accepted only when fstat says it is a regular file, and
 * refused above a size cap before anything is allocated. */
#ifndef SAEMON_BASE_READ_FILE_H
#define SAEMON_BASE_READ_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "saemon/error.h"

/* Open a regular file for reading (relative to dir_fd, or AT_FDCWD). *fd gets
 * a blocking descriptor, *size the file's size. Anything else (FIFO, socket,
 * device, directory) is SAEMON_ERR_IO "PATH: WHAT is not a regular file (it
 * is a FIFO)". `what` names the file's role in messages ("rule file"). */
saemon_status file_open_regular(int dir_fd, const char *path, const char *what, int *fd, uint64_t *size,
                                saemon_error *err);

/* Read a regular file of at most `max` bytes into a malloc'd, NUL-terminated
 * buffer; a bigger one is SAEMON_ERR_FORMAT. */
saemon_status read_whole_file(const char *path, size_t max, const char *what, char **text, size_t *len,
                              saemon_error *err);
/* The same, relative to a directory descriptor. */
saemon_status read_whole_file_at(int dir_fd, const char *path, size_t max, const char *what, char **text,
                                 size_t *len, saemon_error *err);

/* Map a regular file read-only (MAP_PRIVATE). *map is NULL for an empty
 * file; release with file_unmap. */
saemon_status file_map_regular(const char *path, const char *what, const void **map, size_t *len,
                               saemon_error *err);
void file_unmap(const void *map, size_t len);

/* dir_of(file) + "/" + rel, or rel itself when absolute; malloc'd, NULL on OOM. */
char *path_relative_to(const char *file, const char *rel);

#endif
