/* Hex SHA-256 (OpenSSL EVP) of one or more byte ranges hashed in order. */
#ifndef SAEMON_SHA256_H
#define SAEMON_SHA256_H

#include <stddef.h>

/* Hash parts[0..n) (lens[i] bytes each) as one stream into out (64 hex + NUL).
 * Returns 0 on success, -1 if OpenSSL fails. */
int saemon_sha256_hex(const void *const *parts, const size_t *lens, size_t n, char out[65]);

/* Hash the first `len` bytes of an open file with pread in chunks (nothing
 * stays resident). Returns 0 on success, -1 on a read error or short file. */
int saemon_sha256_fd_hex(int fd, unsigned long long len, char out[65]);

#endif
