/* Opening a pack (runtime/pack_format.h): the header is read with pread and
 * validated completely (magic, version, header SHA-256, every section's
 * bounds, alignment, element type and length, overlaps) before the file is
 * mapped; then the dictionary's arrays point into one read-only shared
 * mapping: no copy of the rows, start-up O(header), pages shared between
 * processes. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/sha256.h"
#include "kernels/kernel.h"
#include "runtime/dict_internal.h"
#include "runtime/pack.h"
#include "runtime/pack_format.h"

bool pack_file_is_pack(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char m[8];
    bool r = pread(fd, m, 8, 0) == 8 && !memcmp(m, PACK_MAGIC, 8);
    close(fd);
    return r;
}

static saemon_status read_exact(int fd, void *p, size_t n, const char *path, saemon_error *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", path, strerror(errno));
        if (r == 0)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: truncated (%zu of %zu bytes)", path, got, n);
        got += (size_t)r;
    }
    return SAEMON_OK;
}

/* The length a section of `kind` must have; 0 for the variable-length kinds. */
static size_t expected_len(uint32_t kind, const pack_header *h)
{
    switch (kind) {
    case PACK_LATENTS: return (size_t)h->n_rows * 4;
    case PACK_W_ENC_ROWS: return (size_t)h->n_rows * h->d_in * 4;
    case PACK_B_DEC: return (size_t)h->d_in * 4;
    case PACK_W_DEC: return (size_t)h->d_sae * h->d_in * 4;
    case PACK_B_DEC_DOT: return (size_t)h->d_sae * 8;
    case PACK_KERNEL:
    case PACK_LABELS: return 0;
    default: return (size_t)h->d_sae * 4;
    }
}

static uint32_t elem_of(uint32_t kind)
{
    switch (kind) {
    case PACK_LATENTS: return PACK_ELEM_U32;
    case PACK_B_DEC_DOT: return PACK_ELEM_F64;
    case PACK_KERNEL:
    case PACK_LABELS: return PACK_ELEM_U8;
    default: return PACK_ELEM_F32;
    }
}

/* Validate the header bytes `hdr` (header_bytes long) of a file of `size`
 * bytes; fill sec[kind] (offset, length) for each section present. */
static saemon_status check_header(const char *path, const uint8_t *hdr, uint64_t size, pack_section sec[PACK_N_KINDS],
                                  const char *strs[PACK_N_STRINGS], saemon_error *err)
{
    const pack_header *h = (const pack_header *)hdr;
    /* the checksum: SHA-256 of the header with its own field zeroed */
    uint8_t *copy = malloc(h->header_bytes);
    if (!copy)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    memcpy(copy, hdr, h->header_bytes);
    memset(((pack_header *)copy)->header_sha256, 0, 64);
    char hex[65];
    const void *parts[1] = {copy};
    size_t lens[1] = {h->header_bytes};
    int bad = saemon_sha256_hex(parts, lens, 1, hex);
    free(copy);
    if (bad || memcmp(hex, h->header_sha256, 64))
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: header: checksum mismatch (the header is corrupt; re-pack the source)", path);
    if (h->file_bytes != size)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: file: %llu bytes but the header says %llu (truncated or extended; re-pack)",
                                path, (unsigned long long)size, (unsigned long long)h->file_bytes);
    size_t t;
    if (h->d_in == 0 || h->d_sae == 0 || h->d_sae > UINT32_MAX || h->d_in > UINT32_MAX || h->n_rows == 0 ||
        h->n_rows > h->d_sae || __builtin_mul_overflow((size_t)h->d_in, (size_t)h->d_sae * 4, &t))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: invalid dimensions d_in %llu, d_sae %llu, rows %llu",
                                path, (unsigned long long)h->d_in, (unsigned long long)h->d_sae,
                                (unsigned long long)h->n_rows);
    if (h->arch > SAEMON_ARCH_TOPK || h->norm > SAEMON_NORM_LAYER_NORM || h->weight_dtype > SAEMON_DTYPE_F64)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: unknown architecture, normalisation or dtype",
                                path);
    if (h->arch == SAEMON_ARCH_TOPK && (h->k == 0 || h->k > h->d_sae))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: TopK k %llu, expected 1..d_sae (%llu)", path,
                                (unsigned long long)h->k, (unsigned long long)h->d_sae);
    if (h->arch == SAEMON_ARCH_TOPK && (h->flags & PACK_F_SUBSET))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: a TopK pack must hold every latent", path);
    if (!(h->flags & PACK_F_SUBSET) && h->n_rows != h->d_sae)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: a whole pack must hold d_sae rows", path);
    if (h->data_offset < h->header_bytes || h->data_offset % PACK_ALIGN || h->data_offset > size)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: data offset %llu is invalid", path,
                                (unsigned long long)h->data_offset);
    const pack_section *table = (const pack_section *)(hdr + PACK_FIXED_BYTES);
    memset(sec, 0, PACK_N_KINDS * sizeof *sec);
    uint32_t n_kernels = 0;
    for (uint32_t i = 0; i < h->n_sections; i++) {
        const pack_section *s = &table[i];
        const char *name = pack_kind_name(s->kind);
        if (s->kind == 0 || s->kind >= PACK_N_KINDS || (h->version < 2 && s->kind >= PACK_B_DEC_DOT))
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %u: unknown kind %u", path, i, s->kind);
        if (s->kind == PACK_KERNEL ? ++n_kernels > PACK_MAX_KERNELS : sec[s->kind].kind != 0)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %s: present %s", path, name,
                                    s->kind == PACK_KERNEL ? "more than 16 times" : "twice");
        uint32_t want_elem = elem_of(s->kind);
        if (s->elem != want_elem)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %s: element type %u, expected %u", path, name,
                                    s->elem, want_elem);
        if (s->align != PACK_ALIGN || s->offset % PACK_ALIGN)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: section %s: misaligned (offset %llu, alignment %u; expected 64)", path, name,
                                    (unsigned long long)s->offset, s->align);
        if (s->offset < h->data_offset || s->offset > size || s->length > size - s->offset)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: section %s: out of bounds (offset %llu, length %llu, file %llu bytes)", path,
                                    name, (unsigned long long)s->offset, (unsigned long long)s->length,
                                    (unsigned long long)size);
        const size_t want_len = expected_len(s->kind, h);
        if (want_len ? s->length != want_len
                     : s->length < (s->kind == PACK_KERNEL ? PACK_KERNEL_DESC_BYTES + 64 : 4 + 12))
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %s: %llu bytes, expected %s%zu", path, name,
                                    (unsigned long long)s->length, want_len ? "" : "at least ",
                                    want_len ? want_len : s->kind == PACK_KERNEL ? PACK_KERNEL_DESC_BYTES + 64 : 16);
        if ((s->kind == PACK_W_DEC || s->kind == PACK_KERNEL || s->kind == PACK_B_DEC_DOT) &&
            (h->flags & PACK_F_SUBSET))
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %s: in a subset pack", path, name);
        if (s->kind == PACK_B_DEC_DOT && !(h->flags & PACK_F_APPLY_B_DEC))
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: section b_dec_dot: the dictionary does not apply b_dec to its input", path);
        for (uint32_t k = 0; k < i; k++) /* no two sections overlap */
            if (s->offset < table[k].offset + table[k].length && table[k].offset < s->offset + s->length)
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %s: overlaps section %s", path, name,
                                        pack_kind_name(table[k].kind));
        if (!sec[s->kind].kind)
            sec[s->kind] = *s; /* kernel sections: the first; the table holds them all */
    }
    uint32_t need[8], n = 0;
    need[n++] = PACK_LATENTS, need[n++] = PACK_W_ENC_ROWS, need[n++] = PACK_B_DEC;
    if (h->arch == SAEMON_ARCH_GATED)
        need[n++] = PACK_B_GATE, need[n++] = PACK_R_MAG, need[n++] = PACK_B_MAG;
    else
        need[n++] = PACK_B_ENC;
    if (h->arch == SAEMON_ARCH_JUMPRELU)
        need[n++] = PACK_THRESHOLD;
    if (h->arch == SAEMON_ARCH_TOPK && (h->flags & PACK_F_RESCALE))
        need[n++] = PACK_W_DEC; /* the decoder norms */
    for (uint32_t i = 0; i < n; i++)
        if (!sec[need[i]].kind)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %s: missing (a %s dictionary needs it)", path,
                                    pack_kind_name(need[i]), saemon_arch_name((saemon_arch)h->arch));
    const uint32_t other[] = {PACK_B_ENC, PACK_THRESHOLD, PACK_B_GATE, PACK_R_MAG, PACK_B_MAG};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        bool needed = false;
        for (uint32_t k = 0; k < n; k++)
            needed |= need[k] == other[i];
        if (!needed && sec[other[i]].kind)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section %s: not used by a %s dictionary", path,
                                    pack_kind_name(other[i]), saemon_arch_name((saemon_arch)h->arch));
    }
    /* the metadata strings: exactly PACK_N_STRINGS, NUL-terminated, within the header */
    const char *sp = (const char *)(table + h->n_sections), *end = (const char *)hdr + h->header_bytes;
    for (size_t i = 0; i < PACK_N_STRINGS; i++) {
        const char *z = memchr(sp, 0, (size_t)(end - sp));
        if (!z)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: metadata strings are cut short", path);
        strs[i] = sp;
        sp = z + 1;
    }
    if (sp != end)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: %zu stray bytes after the metadata", path,
                                (size_t)(end - sp));
    return SAEMON_OK;
}

saemon_status pack_read_header(const char *path, int fd, uint64_t size, uint8_t **hdr_out, pack_section sec[PACK_N_KINDS],
                               const char *strs[PACK_N_STRINGS], saemon_error *err)
{
    *hdr_out = NULL;
    pack_header h;
    if (size < PACK_FIXED_BYTES)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: truncated (%llu bytes, a pack header is %u)",
                                path, (unsigned long long)size, PACK_FIXED_BYTES);
    saemon_status st = read_exact(fd, &h, sizeof h, path, err);
    if (st)
        return st;
    if (memcmp(h.magic, PACK_MAGIC, 8))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: not a saemon pack (bad magic)", path);
    if (h.version < PACK_MIN_VERSION || h.version > PACK_VERSION)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: header: pack format version %u, this saemon reads versions %u to %u; re-pack the "
                                "source with this saemon (saemon pack SAE_DIR -o FILE)",
                                path, h.version, PACK_MIN_VERSION, PACK_VERSION);
    if (h.n_sections == 0 || h.n_sections >= PACK_N_KINDS + PACK_MAX_KERNELS ||
        h.header_bytes != (uint64_t)PACK_FIXED_BYTES + (uint64_t)h.n_sections * PACK_SECTION_BYTES + h.strings_len ||
        h.header_bytes > PACK_MAX_HEADER)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: header: inconsistent length (%u bytes, %u sections, %u bytes of strings)", path,
                                h.header_bytes, h.n_sections, h.strings_len);
    if (h.header_bytes > size)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: header: truncated (%llu bytes, the header is %u)", path,
                                (unsigned long long)size, h.header_bytes);
    uint8_t *hdr = malloc(h.header_bytes);
    if (!hdr)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    st = read_exact(fd, hdr, h.header_bytes, path, err);
    if (!st)
        st = check_header(path, hdr, size, sec, strs, err);
    if (st)
        free(hdr);
    else
        *hdr_out = hdr;
    return st;
}

static saemon_status safe_file(const char *path, const struct stat *sb, saemon_error *err)
{
    if (!S_ISREG(sb->st_mode))
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: not a regular file", path);
    /* A mapped file truncated under saemon would raise SIGBUS: only files no
     * one else can rewrite are mapped; replace a pack by rename. */
    if (sb->st_mode & (S_IWGRP | S_IWOTH))
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: writable by group or others (mode %03o); a pack is mapped, and a file "
                                "rewritten in place would crash the reader: chmod go-w it (replace packs by rename)",
                                path, (unsigned)(sb->st_mode & 0777));
    if (sb->st_uid != geteuid())
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: owned by uid %u, not by this user (uid %u); a pack is mapped, and only its "
                                "owner's files are trusted not to be rewritten in place",
                                path, (unsigned)sb->st_uid, (unsigned)geteuid());
    return SAEMON_OK;
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

/* The kernel and labels sections of a mapped pack, checked (their contents
 * live in the data, past the header checksum). */
static saemon_status map_extras(saemon_dict *d, const uint8_t *hdr, const char *path, saemon_error *err)
{
    const pack_header *h = (const pack_header *)hdr;
    const pack_section *table = (const pack_section *)(hdr + PACK_FIXED_BYTES);
    const uint8_t *base = d->map;
    for (uint32_t i = 0; i < h->n_sections; i++) {
        const pack_section *s = &table[i];
        if (s->kind == PACK_KERNEL) {
            const pack_kernel_desc *k = (const pack_kernel_desc *)(base + s->offset);
            if (!memchr(k->name, 0, sizeof k->name) || !k->name[0])
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section kernel %u: the variant name is not "
                                        "a NUL-terminated string", path, (unsigned)d->n_packed);
            if (k->d_in != h->d_in || k->d_sae == 0 || k->index_base > h->d_sae || k->d_sae > h->d_sae - k->index_base ||
                k->packed_bytes != s->length - PACK_KERNEL_DESC_BYTES)
                return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                        "%s: section kernel %s: d_in %llu, latents %llu..+%llu, %llu bytes do not fit "
                                        "the pack (d_in %llu, d_sae %llu, section %llu bytes)",
                                        path, k->name, (unsigned long long)k->d_in, (unsigned long long)k->index_base,
                                        (unsigned long long)k->d_sae, (unsigned long long)k->packed_bytes,
                                        (unsigned long long)h->d_in, (unsigned long long)h->d_sae,
                                        (unsigned long long)s->length);
            d->packed[d->n_packed++] = (dict_packed){k->name, k->layout, (size_t)k->index_base, (size_t)k->d_sae,
                                                     (size_t)k->packed_bytes, base + s->offset + PACK_KERNEL_DESC_BYTES};
        } else if (s->kind == PACK_LABELS) {
            const uint8_t *sb = base + s->offset;
            uint32_t n;
            memcpy(&n, sb, 4);
            if (n > h->d_sae || (uint64_t)n * 12 > s->length - 4)
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section labels: %u labels do not fit", path, n);
            const uint32_t *e = (const uint32_t *)(sb + 4);
            for (uint32_t k = 0; k < n; k++) {
                const uint32_t ix = e[3 * k], off = e[3 * k + 1], len = e[3 * k + 2];
                if (ix >= h->d_sae || (k && ix <= e[3 * (k - 1)]) || off < 4 + (uint64_t)n * 12 ||
                    off > s->length || len >= s->length - off || sb[off + len] != 0 || memchr(sb + off, 0, len))
                    return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                            "%s: section labels: entry %u (feature %u) is out of order, out of range "
                                            "or not a NUL-terminated text inside the section",
                                            path, k, ix);
            }
            d->labels = e;
            d->labels_base = (const char *)sb;
            d->n_labels = n;
            if (n && !(d->label_ptrs = calloc(h->d_sae, sizeof *d->label_ptrs)))
                return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory for %u labels", n);
            for (uint32_t k = 0; k < n; k++)
                d->label_ptrs[e[3 * k]] = (const char *)sb + e[3 * k + 1];
        }
    }
    return SAEMON_OK;
}

saemon_status pack_open(const char *path, const saemon_dict_load_options *o, saemon_dict **out, saemon_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    saemon_status st = fstat(fd, &sb) ? saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", path, strerror(errno))
                                      : safe_file(path, &sb, err);
    uint8_t *hdr = NULL;
    pack_section sec[PACK_N_KINDS];
    const char *strs[PACK_N_STRINGS];
    if (!st)
        st = pack_read_header(path, fd, (uint64_t)sb.st_size, &hdr, sec, strs, err);
    if (st) {
        close(fd);
        return st;
    }
    const pack_header *h = (const pack_header *)hdr;
    const size_t din = h->d_in, dsae = h->d_sae, n_rows = h->n_rows;
    saemon_dict *d = calloc(1, sizeof *d);
    void *m = d ? mmap(NULL, (size_t)h->file_bytes, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (!d || m == MAP_FAILED) {
        st = d ? saemon_error_set(err, SAEMON_ERR_IO, "%s: mmap: %s", path, strerror(errno))
               : saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        free(d);
        free(hdr);
        return st;
    }
    d->map = m;
    d->map_len = (size_t)h->file_bytes;
    const uint8_t *base = m;
#define SEC(K) (sec[K].kind ? (void *)(base + sec[K].offset) : NULL)
    d->info.layer = h->layer;
    d->info.arch = (saemon_arch)h->arch;
    d->info.d_in = din;
    d->info.d_sae = dsae;
    d->info.k = h->k;
    d->info.norm = (saemon_norm)h->norm;
    d->info.apply_b_dec_to_input = h->flags & PACK_F_APPLY_B_DEC;
    d->info.rescale_acts_by_decoder_norm = h->flags & PACK_F_RESCALE;
    d->info.reshape_hook_z = h->flags & PACK_F_RESHAPE_HOOK_Z;
    d->info.weight_dtype = (saemon_dtype)h->weight_dtype;
    d->info.folded_scaling_factor = h->folded_scaling_factor;
    memcpy(d->info.sha256, h->source_sha256, 64); /* the source's identity: rule pins match it */
    d->info.sha256[64] = 0;
    d->info.weights_bytes = h->file_bytes;
    d->W_enc_rows = SEC(PACK_W_ENC_ROWS);
    d->n_rows = n_rows;
    const bool norms = h->arch == SAEMON_ARCH_TOPK && (h->flags & PACK_F_RESCALE);
    d->W_dec = o->no_decoder && !norms ? NULL : SEC(PACK_W_DEC);
    d->b_dec = SEC(PACK_B_DEC);
    d->b_enc = SEC(PACK_B_ENC);
    d->threshold = SEC(PACK_THRESHOLD);
    d->b_gate = SEC(PACK_B_GATE);
    d->r_mag = SEC(PACK_R_MAG);
    d->b_mag = SEC(PACK_B_MAG);
    d->log_sparsity = SEC(PACK_LOG_SPARSITY);
    d->b_dec_dot = SEC(PACK_B_DEC_DOT);
    const uint32_t *lat = SEC(PACK_LATENTS);
#undef SEC
    bool ok = (d->path = strdup(path)) && (d->format = strdup("pack")) && (d->id.name = dup_or_empty(strs[PS_NAME])) &&
              (d->id.hook_name = dup_or_empty(strs[PS_HOOK])) && (d->id.model_name = dup_or_empty(strs[PS_MODEL])) &&
              (d->id.normalize_activations = dup_or_empty(strs[PS_NORMALIZE])) &&
              (d->id.compute_dtype = dup_or_empty(strs[PS_COMPUTE_DTYPE])) &&
              (d->id.width_tag = dup_or_empty(strs[PS_WIDTH])) && (d->id.l0_tag = dup_or_empty(strs[PS_L0]));
    if (!ok)
        st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (!st)
        st = map_extras(d, hdr, path, err);
    for (size_t j = 0; !st && d->b_dec_dot && j < dsae; j++)
        if (!isfinite(d->b_dec_dot[j]))
            st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: section b_dec_dot: a non-finite value at [%zu]", path, j);
    /* the latents: increasing, < d_sae (a whole pack: 0..d_sae-1) */
    for (size_t r = 0; !st && r < n_rows; r++)
        if (lat[r] >= dsae || (r && lat[r] <= lat[r - 1]) || (!(h->flags & PACK_F_SUBSET) && lat[r] != r))
            st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                                  "%s: section latents: entry %zu (%u) is not increasing or is >= d_sae %zu", path, r,
                                  lat[r], dsae);
    if (!st && (h->flags & PACK_F_SUBSET)) {
        d->row_latent = (uint32_t *)lat;
        if (!(d->row_slot = malloc(dsae * sizeof *d->row_slot)))
            st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        for (size_t j = 0; !st && j < dsae; j++)
            d->row_slot[j] = DICT_NO_ROW;
        for (size_t r = 0; !st && r < n_rows; r++)
            d->row_slot[lat[r]] = (uint32_t)r;
    }
    if (!st && o->subset) { /* every latent the plan needs must be in the pack */
        for (size_t i = 0; !st && i < o->n_latents; i++) {
            if (o->latents[i] >= dsae)
                st = saemon_error_set(err, SAEMON_ERR_ARG, "latent %u is out of range; expected an index < d_sae %zu",
                                      o->latents[i], dsae);
            else if (!dict_row(d, o->latents[i]))
                st = saemon_error_set(err, SAEMON_ERR_MISMATCH,
                                      "%s: latent %u is not in this pack (a subset pack of %zu latents); re-pack "
                                      "the source with it (saemon pack --latents/--rules)",
                                      path, o->latents[i], n_rows);
        }
    } else if (!st && (h->flags & PACK_F_SUBSET) && d->info.arch != SAEMON_ARCH_TOPK) {
        st = saemon_error_set(err, SAEMON_ERR_MISMATCH,
                              "%s: a subset pack of %zu latents, but this plan encodes every latent (--encode all, "
                              "capture or a health rule); use the whole pack or source",
                              path, n_rows);
    }
    if (!st)
        st = saemon_dict_finish(d, err);
    if (!st) {
        d->stats.mapped_bytes = (uint64_t)n_rows * din * 4 + (d->W_dec ? (uint64_t)dsae * din * 4 : 0);
        d->stats.resident_bytes = d->row_slot ? dsae * 4 : 0;
        d->stats.bytes_read = h->header_bytes;
    }
    free(hdr);
    if (st) {
        saemon_dict_close(d);
        return st;
    }
    *out = d;
    return SAEMON_OK;
}

const void *dict_find_packed(const saemon_dict *d, const char *name, uint32_t layout, size_t index_base,
                             size_t d_sae, size_t bytes)
{
    for (size_t i = 0; i < d->n_packed; i++) {
        const dict_packed *p = &d->packed[i];
        if (!strcmp(p->kernel, name) && p->layout == layout && p->index_base == index_base && p->d_sae == d_sae &&
            p->bytes == bytes)
            return p->data;
    }
    return NULL;
}

/* Open `path` and read and check its header (saemon_pack_verify, _print).
 * On success the caller closes *fd and frees *hdr. */
static saemon_status open_checked(const char *path, int *fd, uint8_t **hdr, pack_section sec[PACK_N_KINDS],
                                  const char *strs[PACK_N_STRINGS], saemon_error *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    saemon_status st = fstat(*fd, &sb) ? saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", path, strerror(errno))
                                       : pack_read_header(path, *fd, (uint64_t)sb.st_size, hdr, sec, strs, err);
    if (st) {
        free(*hdr);
        *hdr = NULL;
        close(*fd);
        *fd = -1;
    }
    return st;
}

saemon_status saemon_pack_verify(const char *path, saemon_error *err)
{
    int fd;
    uint8_t *hdr = NULL;
    pack_section sec[PACK_N_KINDS];
    const char *strs[PACK_N_STRINGS];
    saemon_status st = open_checked(path, &fd, &hdr, sec, strs, err);
    if (!st) {
        const pack_header *h = (const pack_header *)hdr;
        char hex[65];
        /* hashing from the fd reads the whole file; skip to the data first */
        void *m = mmap(NULL, (size_t)h->file_bytes, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            st = saemon_error_set(err, SAEMON_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        } else {
            const void *parts[1] = {(const uint8_t *)m + h->data_offset};
            size_t lens[1] = {(size_t)(h->file_bytes - h->data_offset)};
            if (saemon_sha256_hex(parts, lens, 1, hex))
                st = saemon_error_set(err, SAEMON_ERR_NOMEM, "SHA-256 failed");
            else if (memcmp(hex, h->data_sha256, 64))
                st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                                      "%s: data: SHA-256 mismatch (the weights changed since packing; re-pack)", path);
            munmap(m, (size_t)h->file_bytes);
        }
        free(hdr);
        close(fd);
    }
    return st;
}

bool saemon_is_pack(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && pack_file_is_pack(path);
}

saemon_status saemon_pack_print(const char *path, FILE *f, saemon_error *err)
{
    int fd;
    uint8_t *hdr = NULL;
    pack_section sec[PACK_N_KINDS];
    const char *strs[PACK_N_STRINGS];
    saemon_status st = open_checked(path, &fd, &hdr, sec, strs, err);
    if (st)
        return st;
    const pack_header *h = (const pack_header *)hdr;
    fprintf(f, "path           %s\n", path);
    fprintf(f, "format         saemon pack, version %u (%s)\n", h->version,
            (h->flags & PACK_F_SUBSET) ? "subset" : "whole");
    fprintf(f, "header         %u bytes, sha256 %.64s\n", h->header_bytes, h->header_sha256);
    fprintf(f, "source         %s (%s), sha256 %.64s\n", strs[PS_SOURCE], strs[PS_FORMAT], h->source_sha256);
    fprintf(f, "name           %s\n", strs[PS_NAME]);
    fprintf(f, "architecture   %s%s\n", saemon_arch_name((saemon_arch)h->arch), h->arch == SAEMON_ARCH_TOPK ? "" : "");
    if (h->arch == SAEMON_ARCH_TOPK)
        fprintf(f, "k              %llu\n", (unsigned long long)h->k);
    fprintf(f, "d_in x d_sae   %llu x %llu\n", (unsigned long long)h->d_in, (unsigned long long)h->d_sae);
    fprintf(f, "normalisation  %s (cfg %s), apply_b_dec_to_input %s\n", saemon_norm_name((saemon_norm)h->norm),
            strs[PS_NORMALIZE], (h->flags & PACK_F_APPLY_B_DEC) ? "true" : "false");
    if (h->folded_scaling_factor > 0)
        fprintf(f, "scaling factor %g (folded into the weights)\n", h->folded_scaling_factor);
    fprintf(f, "source dtype   %s (packed as float32; cfg dtype %s)\n",
            saemon_dtype_name((saemon_dtype)h->weight_dtype), strs[PS_COMPUTE_DTYPE]);
    fprintf(f, "hook           %s\n", strs[PS_HOOK]);
    fprintf(f, "model          %s\n", strs[PS_MODEL]);
    if (h->layer >= 0 || *strs[PS_WIDTH] || *strs[PS_L0])
        fprintf(f, "release        layer %d, width %s, l0 %s\n", h->layer, strs[PS_WIDTH], strs[PS_L0]);
    fprintf(f, "file           %llu bytes, data sha256 %.64s\n", (unsigned long long)h->file_bytes, h->data_sha256);
    fprintf(f, "sections       kind            offset        length  align  element\n");
    static const char *const elems[] = {"?", "f32", "u32", "f64", "u8"};
    const pack_section *table = (const pack_section *)(hdr + PACK_FIXED_BYTES);
    for (uint32_t i = 0; i < h->n_sections; i++)
        fprintf(f, "               %-12s %10llu  %12llu  %5u  %s\n", pack_kind_name(table[i].kind),
                (unsigned long long)table[i].offset, (unsigned long long)table[i].length, table[i].align,
                elems[table[i].elem <= PACK_ELEM_U8 ? table[i].elem : 0]);
    const saemon_kernel *here = saemon_kernel_select(NULL);
    for (uint32_t i = 0; i < h->n_sections; i++) {
        pack_kernel_desc kd;
        if (table[i].kind != PACK_KERNEL ||
            pread(fd, &kd, sizeof kd, (off_t)table[i].offset) != (ssize_t)sizeof kd)
            continue;
        kd.name[sizeof kd.name - 1] = 0;
        fprintf(f, "packed kernel  %s (layout %u), latents %llu..%llu, %.1f MiB%s\n", kd.name, kd.layout,
                (unsigned long long)kd.index_base, (unsigned long long)(kd.index_base + kd.d_sae - 1),
                (double)kd.packed_bytes / 1048576.0,
                here && !strcmp(here->name, kd.name) && here->packed_layout == kd.layout
                    ? " (what this CPU chooses: used in place)"
                    : "");
    }
    if (!sec[PACK_KERNEL].kind)
        fprintf(f, "packed kernel  none (the encoder packs at load)\n");
    uint32_t n_labels = 0;
    if (sec[PACK_LABELS].kind && pread(fd, &n_labels, 4, (off_t)sec[PACK_LABELS].offset) == 4) {
        fprintf(f, "labels         %u feature%s labelled", n_labels, n_labels == 1 ? "" : "s");
        uint32_t e[3];
        char text[81] = "";
        if (n_labels && pread(fd, e, sizeof e, (off_t)sec[PACK_LABELS].offset + 4) == (ssize_t)sizeof e &&
            e[1] < sec[PACK_LABELS].length) {
            ssize_t got = pread(fd, text, sizeof text - 1, (off_t)(sec[PACK_LABELS].offset + e[1]));
            text[got > 0 ? (size_t)got : 0] = 0;
            fprintf(f, ", e.g. %u: %s%s", e[0], text, e[2] > 80 ? "..." : "");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "latents        %llu of %llu", (unsigned long long)h->n_rows, (unsigned long long)h->d_sae);
    if (h->flags & PACK_F_SUBSET) {
        size_t n = h->n_rows < 64 ? (size_t)h->n_rows : 64;
        uint32_t *lat = malloc(n * sizeof *lat);
        if (lat && pread(fd, lat, n * 4, (off_t)sec[PACK_LATENTS].offset) == (ssize_t)(n * 4))
            for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%u", i ? "," : ": ", lat[i]);
        if (n < h->n_rows)
            fprintf(f, ",... (%llu more)", (unsigned long long)(h->n_rows - n));
        free(lat);
    }
    fprintf(f, "\n");
    free(hdr);
    close(fd);
    return SAEMON_OK;
}
