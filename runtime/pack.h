/* Pack files inside runtime/: detection and the mapped open (runtime/pack_read.c). */
#ifndef SAEMON_RUNTIME_PACK_H
#define SAEMON_RUNTIME_PACK_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/pack_format.h"
#include "saemon/dict.h"

/* True when `path` starts with the pack magic. */
bool pack_file_is_pack(const char *path);

saemon_status pack_open(const char *path, const saemon_dict_load_options *o, saemon_dict **out, saemon_error *err);

/* Read and validate the header of an open pack of `size` bytes: *hdr
 * (malloc'd, header_bytes long), the sections by kind, the metadata strings
 * (pointing into *hdr). */
saemon_status pack_read_header(const char *path, int fd, uint64_t size, uint8_t **hdr,
                               pack_section sec[PACK_N_KINDS], const char *strs[PACK_N_STRINGS], saemon_error *err);

#endif
