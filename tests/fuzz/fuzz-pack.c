/* libFuzzer: a saemon pack file (runtime/pack_read.c). Byte 0 holds flags:
 * bit 0 re-seals the header checksum after the mutation (so mutations reach
 * the section and metadata checks behind it), bit 1 opens a subset of
 * latents {0, 1, 2}, bit 2 skips W_dec, bit 3 encodes with the portable
 * variant and bit 4 with the scalar one (whose packed forms the seeds store:
 * the encoder then reads a kernel section in place); the rest is the file.
 * An accepted pack is encoded (every mapped row is read), its labels read,
 * verified and printed: a validation gap shows up as an out-of-bounds read
 * of the mapping. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sha256.h"
#include "runtime/pack_format.h"
#include "saemon/saemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[96];

static void cleanup(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/saemon-fuzz-pack-%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                 (long)getpid());
        atexit(cleanup);
    }
    if (size < 1)
        return 0;
    const uint8_t flags = data[0];
    data++, size--;
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        abort();
    memcpy(b, data, size);
    if ((flags & 1) && size >= PACK_FIXED_BYTES) {
        pack_header *h = (pack_header *)b;
        if (h->header_bytes >= PACK_FIXED_BYTES && h->header_bytes <= size) {
            memset(h->header_sha256, 0, 64);
            char hex[65];
            const void *parts[1] = {b};
            size_t lens[1] = {h->header_bytes};
            if (saemon_sha256_hex(parts, lens, 1, hex) == 0)
                memcpy(h->header_sha256, hex, 64);
        }
    }
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (size && write(fd, b, size) != (ssize_t)size))
        abort();
    close(fd);
    free(b);

    uint32_t lat[3] = {0, 1, 2};
    saemon_dict_load_options lo = {.subset = flags & 2, .latents = lat, .n_latents = 3, .no_decoder = flags & 4};
    saemon_dict *d = NULL;
    saemon_error err = {0};
    FILE *null = fopen("/dev/null", "w");
    if (saemon_is_pack(path))
        saemon_pack_print(path, null, &err);
    fclose(null);
    saemon_pack_verify(path, &err);
    if (saemon_dict_open_with(path, &lo, &d, &err) != SAEMON_OK) {
        if (d || !err.message[0])
            abort();
        return 0;
    }
    const saemon_dict_info *in = saemon_dict_get_info(d);
    if (!in->d_in || !in->d_sae || in->d_in > 4096)
        goto done;
    saemon_encoder *e = NULL;
    saemon_encoder_options eo = {.max_batch = 1,
                                 .variant = (flags & 8)    ? "f32-encode-3x16-portable"
                                            : (flags & 16) ? "f32-encode-1x1-scalar"
                                                           : NULL};
    size_t label_bytes = 0;
    for (size_t j = 0; j < in->d_sae; j++) {
        const char *l = saemon_dict_get_feature_label(d, j);
        label_bytes += l ? strlen(l) : 0;
    }
    if (label_bytes > SIZE_MAX / 2)
        abort();
    if (lo.subset && in->arch != SAEMON_ARCH_TOPK)
        eo.encode = SAEMON_ENCODE_RULES, eo.latents = lat, eo.n_latents = 3;
    float *x = calloc(in->d_in, sizeof *x);
    if (x && saemon_encoder_create(d, &eo, &e, &err) == SAEMON_OK) {
        const saemon_features *f;
        x[0] = 1.0f;
        saemon_encoder_encode(e, x, 1, &f, &err);
        saemon_encoder_destroy(e);
    }
    free(x);
done:
    saemon_dict_close(d);
    return 0;
}
