/* saemon_dict_pack: write a loaded dictionary (or a subset of its latents)
 * as saemon's native pack file (runtime/pack_format.h, docs/formats.md
 * "Pack files"). The file is written beside the target and renamed over it,
 * so a process mapping the old pack keeps its pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/sha256.h"
#include "runtime/dict_internal.h"
#include "kernels/kernel.h"
#include "runtime/pack_format.h"

const char *pack_kind_name(uint32_t kind)
{
    static const char *const names[PACK_N_KINDS] = {
        "?", "latents", "W_enc_rows", "b_dec", "b_enc", "threshold", "b_gate", "r_mag", "b_mag", "W_dec",
        "log_sparsity", "b_dec_dot", "kernel", "labels"};
    return kind > 0 && kind < PACK_N_KINDS ? names[kind] : "unknown";
}

static uint64_t align64(uint64_t x) { return (x + PACK_ALIGN - 1) & ~(uint64_t)(PACK_ALIGN - 1); }

typedef struct out_section {
    uint32_t kind, elem;
    const void *data;  /* NULL for W_ENC_ROWS (gathered row by row) and KERNEL (packed in place) */
    uint64_t length;
    const saemon_kernel *kernel; /* KERNEL */
    saemon_kernel_plan plan;     /* KERNEL: what it packs */
} out_section;

/* The labels section (pack_format.h) of labels[0..d_sae), or NULL with *len 0 when none is set. */
static uint8_t *labels_blob(const char *const *labels, size_t dsae, uint64_t *len, saemon_error *err,
                            saemon_status *st)
{
    *len = 0;
    size_t n = 0, text = 0;
    for (size_t j = 0; labels && j < dsae; j++)
        if (labels[j])
            n++, text += strlen(labels[j]) + 1;
    if (!n)
        return NULL;
    if (4 + n * 12 + text > UINT32_MAX) {
        *st = saemon_error_set(err, SAEMON_ERR_ARG, "feature labels: %zu bytes of text do not fit a pack", text);
        return NULL;
    }
    uint8_t *b = calloc(1, 4 + n * 12 + text);
    if (!b) {
        *st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        return NULL;
    }
    uint32_t count = (uint32_t)n, at = (uint32_t)(4 + n * 12), k = 0;
    memcpy(b, &count, 4);
    for (size_t j = 0; j < dsae; j++) {
        if (!labels[j])
            continue;
        uint32_t e[3] = {(uint32_t)j, at, (uint32_t)strlen(labels[j])};
        memcpy(b + 4 + 12 * k++, e, 12);
        memcpy(b + at, labels[j], e[2] + 1);
        at += e[2] + 1;
    }
    *len = at;
    return b;
}

/* The variant named `name`, which must run here (its pack() may use its instruction set). */
static saemon_status find_kernel(const char *name, const saemon_kernel **out, saemon_error *err)
{
    size_t nk = 0;
    const saemon_kernel *const *all = saemon_kernels_all(&nk);
    for (size_t i = 0; i < nk; i++) {
        if (strcmp(all[i]->name, name))
            continue;
        if (saemon_kernel_missing_features(all[i]))
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                    "kernel %s does not run on this CPU, so its packed form cannot be written here "
                                    "(pack on a machine that runs it, or leave it out: it is packed at load there)",
                                    name);
        *out = all[i];
        return SAEMON_OK;
    }
    return saemon_error_set(err, SAEMON_ERR_ARG, "no kernel variant named '%s' (see `saemon inspect --kernels`)",
                            name);
}

static saemon_status write_all(int fd, const void *p, size_t n, uint64_t off, const char *path, saemon_error *err)
{
    const char *b = p;
    while (n) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return saemon_error_set(err, SAEMON_ERR_IO, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
        b += w, n -= (size_t)w, off += (uint64_t)w;
    }
    return SAEMON_OK;
}

saemon_status saemon_dict_pack(saemon_dict *d, const saemon_pack_options *opts, const char *path, saemon_error *err)
{
    static const saemon_pack_options whole = {0};
    const saemon_pack_options *o = opts ? opts : &whole;
    if (!d || !path || !*path)
        return saemon_error_set(err, SAEMON_ERR_ARG, "saemon_dict_pack: no dictionary or no output path");
    const saemon_dict_info *in = &d->info;
    const size_t din = in->d_in, dsae = in->d_sae;
    if (o->subset && in->arch == SAEMON_ARCH_TOPK)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "%s: a TopK dictionary cannot be packed as a subset (its top k needs every "
                                "latent's pre-activation); pack it whole",
                                in->path);
    /* TopK with rescale_acts_by_decoder_norm scales by the decoder norms: W_dec always goes in */
    const bool decoder = o->decoder || (in->arch == SAEMON_ARCH_TOPK && in->rescale_acts_by_decoder_norm);
    if (decoder && !d->W_dec)
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: W_dec was not loaded, so it cannot be packed", in->path);
    if (decoder && o->subset)
        return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                "a subset pack does not hold W_dec (the reconstruction error needs every latent)");
    saemon_status st = saemon_dict_compute_sha256(d, err);
    if (st)
        return st;

    uint32_t *lat = NULL;
    size_t n_rows = dsae;
    if (o->subset) {
        if ((st = dict_sorted_latents(o->latents, o->n_latents, dsae, &lat, &n_rows, err)))
            return st;
        if (n_rows == 0) {
            free(lat);
            return saemon_error_set(err, SAEMON_ERR_ARG, "a subset pack needs at least one latent");
        }
    }
    for (size_t r = 0; r < n_rows; r++)
        if (!dict_row(d, lat ? lat[r] : r)) {
            size_t j = lat ? lat[r] : r;
            free(lat);
            return saemon_error_set(err, SAEMON_ERR_ARG, "%s: latent %zu is not loaded, so it cannot be packed",
                                    in->path, j);
        }
    if (!lat && !(lat = malloc((n_rows ? n_rows : 1) * sizeof *lat)))
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    if (!o->subset)
        for (size_t r = 0; r < n_rows; r++)
            lat[r] = (uint32_t)r;

    if (o->n_kernels && o->subset)
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "kernels' packed forms are stored in whole packs only (a subset plan packs its few "
                              "rows at load in microseconds)");
    if (!st && o->n_kernels > PACK_MAX_KERNELS)
        st = saemon_error_set(err, SAEMON_ERR_ARG, "at most %u kernels' packed forms in one pack", PACK_MAX_KERNELS);
    if (!st && o->n_kernels && d->row_slot)
        st = saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                              "%s: kernels' packed forms need the dictionary loaded whole", in->path);
    uint64_t labels_len = 0;
    uint8_t *labels = st ? NULL : labels_blob(o->labels, dsae, &labels_len, err, &st);
    double *bdd = NULL; /* b_dec . W_j: folding b_dec into the biases then reads no row */
    if (!st && !o->subset && in->apply_b_dec_to_input) {
        if (!(bdd = malloc(dsae * sizeof *bdd)))
            st = saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
        for (size_t j = 0; bdd && j < dsae; j++)
            bdd[j] = dict_b_dec_dot(d, dict_row(d, j), j);
    }
    if (st) {
        free(lat);
        free(labels);
        free(bdd);
        return st;
    }
    out_section secs[PACK_N_KINDS + PACK_MAX_KERNELS];
    size_t ns = 0;
    const uint64_t vs = (uint64_t)dsae * 4, rows_bytes = (uint64_t)n_rows * din * 4;
    secs[ns++] = (out_section){PACK_LATENTS, PACK_ELEM_U32, lat, (uint64_t)n_rows * 4, NULL, {0}};
    secs[ns++] = (out_section){PACK_W_ENC_ROWS, PACK_ELEM_F32, NULL, rows_bytes, NULL, {0}};
    secs[ns++] = (out_section){PACK_B_DEC, PACK_ELEM_F32, d->b_dec, (uint64_t)din * 4, NULL, {0}};
    const struct {
        uint32_t kind;
        const float *a;
    } vecs[] = {{PACK_B_ENC, d->b_enc},   {PACK_THRESHOLD, d->threshold}, {PACK_B_GATE, d->b_gate},
                {PACK_R_MAG, d->r_mag},   {PACK_B_MAG, d->b_mag},         {PACK_LOG_SPARSITY, d->log_sparsity}};
    for (size_t v = 0; v < sizeof vecs / sizeof vecs[0]; v++)
        if (vecs[v].a)
            secs[ns++] = (out_section){vecs[v].kind, PACK_ELEM_F32, vecs[v].a, vs, NULL, {0}};
    if (decoder)
        secs[ns++] = (out_section){PACK_W_DEC, PACK_ELEM_F32, d->W_dec, (uint64_t)dsae * din * 4, NULL, {0}};
    if (bdd)
        secs[ns++] = (out_section){PACK_B_DEC_DOT, PACK_ELEM_F64, bdd, (uint64_t)dsae * 8, NULL, {0}};
    if (labels)
        secs[ns++] = (out_section){PACK_LABELS, PACK_ELEM_U8, labels, labels_len, NULL, {0}};
    for (size_t i = 0; i < o->n_kernels && !st; i++) {
        out_section *k = &secs[ns++];
        *k = (out_section){PACK_KERNEL, PACK_ELEM_U8, NULL, 0, NULL, {0}};
        k->plan = (saemon_kernel_plan){.d_in = din, .d_sae = dsae};
        if (!(st = find_kernel(o->kernels[i] ? o->kernels[i] : "", &k->kernel, err)))
            k->length = PACK_KERNEL_DESC_BYTES + k->kernel->packed_size(&k->plan);
        for (size_t j = 0; !st && j < i; j++)
            if (secs[ns - 1 - i + j].kernel == k->kernel)
                st = saemon_error_set(err, SAEMON_ERR_ARG, "kernel %s is named twice", k->kernel->name);
    }
    if (st) {
        free(lat);
        free(labels);
        free(bdd);
        return st;
    }

    const char *strs[PACK_N_STRINGS] = {in->format, in->name, in->hook_name, in->model_name,
                                        in->normalize_activations, in->compute_dtype, in->width_tag, in->l0_tag,
                                        in->path};
    size_t strings_len = 0;
    for (size_t i = 0; i < PACK_N_STRINGS; i++)
        strings_len += strlen(strs[i] ? strs[i] : "") + 1;
    const uint64_t header_bytes = PACK_FIXED_BYTES + ns * PACK_SECTION_BYTES + strings_len;
    if (header_bytes > PACK_MAX_HEADER) {
        free(lat);
        free(labels);
        free(bdd);
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: metadata strings too long for a pack header", in->path);
    }
    uint8_t *hdr = calloc(1, header_bytes);
    if (!hdr) {
        free(lat);
        free(labels);
        free(bdd);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    }
    pack_header *h = (pack_header *)hdr;
    pack_section *table = (pack_section *)(hdr + PACK_FIXED_BYTES);
    uint64_t off = align64(header_bytes);
    for (size_t i = 0; i < ns; i++) {
        table[i] = (pack_section){secs[i].kind, secs[i].elem, off, secs[i].length, PACK_ALIGN, 0};
        off = align64(off + secs[i].length);
    }
    char *sp = (char *)(table + ns);
    for (size_t i = 0; i < PACK_N_STRINGS; i++) {
        size_t l = strlen(strs[i] ? strs[i] : "") + 1;
        memcpy(sp, strs[i] ? strs[i] : "", l);
        sp += l;
    }
    memcpy(h->magic, PACK_MAGIC, 8);
    h->version = PACK_VERSION;
    h->header_bytes = (uint32_t)header_bytes;
    h->file_bytes = off;
    h->d_in = din, h->d_sae = dsae, h->k = in->k, h->n_rows = n_rows;
    h->arch = in->arch, h->norm = in->norm, h->n_sections = (uint32_t)ns;
    h->flags = (in->apply_b_dec_to_input ? PACK_F_APPLY_B_DEC : 0) |
               (in->rescale_acts_by_decoder_norm ? PACK_F_RESCALE : 0) |
               (in->reshape_hook_z ? PACK_F_RESHAPE_HOOK_Z : 0) | (o->subset ? PACK_F_SUBSET : 0);
    h->weight_dtype = in->weight_dtype;
    h->layer = in->layer;
    h->strings_len = (uint32_t)strings_len;
    h->folded_scaling_factor = in->folded_scaling_factor;
    memcpy(h->source_sha256, in->sha256, 64);
    h->data_offset = align64(header_bytes);

    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        free(hdr);
        free(lat);
        free(labels);
        free(bdd);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    }
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        st = saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!st && ftruncate(fd, (off_t)h->file_bytes) != 0)
        st = saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", tmp, strerror(errno));
    /* writable mapping of the new file: the kernels pack straight into it */
    void *m = st ? MAP_FAILED : mmap(NULL, h->file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!st && m == MAP_FAILED)
        st = saemon_error_set(err, SAEMON_ERR_IO, "%s: mmap: %s", tmp, strerror(errno));
    for (size_t i = 0; i < ns && !st; i++) {
        if (secs[i].kind == PACK_KERNEL) {
            uint8_t *at = (uint8_t *)m + table[i].offset;
            pack_kernel_desc kd = {.layout = secs[i].kernel->packed_layout, .d_in = din, .index_base = 0,
                                   .d_sae = dsae, .packed_bytes = secs[i].length - PACK_KERNEL_DESC_BYTES};
            snprintf(kd.name, sizeof kd.name, "%s", secs[i].kernel->name);
            memcpy(at, &kd, sizeof kd);
            secs[i].kernel->pack(&secs[i].plan, d->W_enc_rows, at + PACK_KERNEL_DESC_BYTES);
            continue;
        }
        if (secs[i].kind != PACK_W_ENC_ROWS) {
            st = write_all(fd, secs[i].data, secs[i].length, table[i].offset, tmp, err);
            continue;
        }
        for (size_t r = 0; r < n_rows && !st; r++)
            st = write_all(fd, dict_row(d, lat[r]), din * 4, table[i].offset + (uint64_t)r * din * 4, tmp, err);
    }
    if (!st) { /* data hash, then the header hash over the finished header */
        {
            char hex[65];
            const void *parts[1] = {(const uint8_t *)m + h->data_offset};
            size_t lens[1] = {(size_t)(h->file_bytes - h->data_offset)};
            if (saemon_sha256_hex(parts, lens, 1, hex))
                st = saemon_error_set(err, SAEMON_ERR_NOMEM, "SHA-256 failed");
            memcpy(h->data_sha256, hex, 64);
            parts[0] = hdr, lens[0] = header_bytes;
            if (!st && saemon_sha256_hex(parts, lens, 1, hex))
                st = saemon_error_set(err, SAEMON_ERR_NOMEM, "SHA-256 failed");
            memcpy(h->header_sha256, hex, 64);
        }
    }
    if (m != MAP_FAILED && munmap(m, h->file_bytes) != 0 && !st)
        st = saemon_error_set(err, SAEMON_ERR_IO, "%s: munmap: %s", tmp, strerror(errno));
    if (!st)
        st = write_all(fd, hdr, header_bytes, 0, tmp, err);
    if (!st && fsync(fd) != 0)
        st = saemon_error_set(err, SAEMON_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && !st)
        st = saemon_error_set(err, SAEMON_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = saemon_error_set(err, SAEMON_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (st && fd >= 0)
        unlink(tmp);
    free(tmp);
    free(hdr);
    free(lat);
    free(labels);
    free(bdd);
    return st;
}
