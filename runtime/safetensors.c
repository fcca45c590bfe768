/* safetensors reader with the strict validation of docs/formats.md:
 * every size is checked against the file before it is trusted. */
#include "runtime/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/read_file.h"
#include "base/sha256.h"

static const struct {
    const char *name;
    unsigned bits;
    int float_dtype;
} dtype_table[] = {
    {"BOOL", 8, -1},         {"F4", 4, -1},           {"F6_E2M3", 6, -1},
    {"F6_E3M2", 6, -1},      {"U8", 8, -1},           {"I8", 8, -1},
    {"F8_E5M2", 8, -1},      {"F8_E4M3", 8, -1},      {"F8_E8M0", 8, -1},
    {"F8_E4M3FNUZ", 8, -1},  {"F8_E5M2FNUZ", 8, -1},  {"I16", 16, -1},
    {"U16", 16, -1},         {"F16", 16, SAEMON_DTYPE_F16},
    {"BF16", 16, SAEMON_DTYPE_BF16},                   {"I32", 32, -1},
    {"U32", 32, -1},         {"F32", 32, SAEMON_DTYPE_F32},
    {"C64", 64, -1},         {"F64", 64, SAEMON_DTYPE_F64},
    {"I64", 64, -1},         {"U64", 64, -1},
};

/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
 * Raw NUL is refused too: JSON never allows it and cJSON strings are C strings.
 * Returns the offset of the first bad byte, or len when all is well. */
static size_t utf8_bad_offset(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return i;
        if (len - i <= n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= ST_MAX_JSON_INT) || v != (double)(uint64_t)v)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int cmp_name_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Reject duplicate keys among an object's children (cJSON keeps them all). */
saemon_status st_json_unique_keys(const cJSON *obj, const char *label, const char *where,
                                  saemon_error *err)
{
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2)
        return SAEMON_OK;
    char **names = malloc(n * sizeof *names);
    if (!names)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", label);
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        names[i++] = c->string;
    qsort(names, n, sizeof *names, cmp_name_ptr);
    saemon_status st = SAEMON_OK;
    for (i = 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            st = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: duplicate key '%s' in %s", label,
                                  names[i], where);
            break;
        }
    }
    free(names);
    return st;
}

static saemon_status parse_metadata(st_file *f, const cJSON *meta, saemon_error *err)
{
    if (!cJSON_IsObject(meta))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: __metadata__ is not an object",
                                f->label);
    saemon_status st = st_json_unique_keys(meta, f->label, "__metadata__", err);
    if (st)
        return st;
    size_t n = 0;
    for (const cJSON *c = meta->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: __metadata__ value of '%s' is not a string", f->label,
                                    c->string);
        n++;
    }
    if (!n)
        return SAEMON_OK;
    f->meta_keys = calloc(n, sizeof *f->meta_keys);
    f->meta_values = calloc(n, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", f->label);
    for (const cJSON *c = meta->child; c; c = c->next) {
        f->meta_keys[f->n_meta] = strdup(c->string);
        f->meta_values[f->n_meta] = strdup(c->valuestring);
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1])
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", f->label);
    }
    return SAEMON_OK;
}

static saemon_status parse_tensor(st_file *f, const cJSON *entry, st_tensor *t, saemon_error *err)
{
    const char *L = f->label, *name = entry->string;
    if (!cJSON_IsObject(entry))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: tensor '%s': entry is not an object",
                                L, name);
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *c = entry->child; c; c = c->next) {
        const cJSON **slot = !strcmp(c->string, "dtype")          ? &dtype
                             : !strcmp(c->string, "shape")        ? &shape
                             : !strcmp(c->string, "data_offsets") ? &offsets
                                                                  : NULL;
        if (!slot)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: tensor '%s': unexpected key '%s' (allowed: dtype, "
                                    "shape, data_offsets)",
                                    L, name, c->string);
        if (*slot)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: tensor '%s': duplicate key '%s'",
                                    L, name, c->string);
        *slot = c;
    }
    if (!dtype || !shape || !offsets)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: tensor '%s': missing '%s'", L, name,
                                !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!cJSON_IsString(dtype))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: tensor '%s': dtype is not a string",
                                L, name);
    size_t d;
    for (d = 0; d < sizeof dtype_table / sizeof dtype_table[0]; d++)
        if (!strcmp(dtype->valuestring, dtype_table[d].name))
            break;
    if (d == sizeof dtype_table / sizeof dtype_table[0])
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'",
                                L, name, dtype->valuestring);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype_table[d].name);
    t->dtype_bits = dtype_table[d].bits;
    t->float_dtype = dtype_table[d].float_dtype;

    if (!cJSON_IsArray(shape))
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: tensor '%s': shape is not an array",
                                L, name);
    t->ndim = (size_t)cJSON_GetArraySize(shape);
    if (t->ndim) {
        t->shape = calloc(t->ndim, sizeof *t->shape);
        if (!t->shape)
            return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", L);
    }
    /* Element count and byte size with 64-bit overflow checks. */
    uint64_t nelem = 1;
    size_t i = 0;
    for (const cJSON *c = shape->child; c; c = c->next, i++) {
        if (json_uint(c, &t->shape[i]))
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: tensor '%s': shape[%zu] is not a non-negative integer", L,
                                    name, i);
        if (__builtin_mul_overflow(nelem, t->shape[i], &nelem))
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: tensor '%s': shape overflows 64 bits", L, name);
    }
    t->nelem = nelem;
    uint64_t nbits;
    if (__builtin_mul_overflow(nelem, (uint64_t)t->dtype_bits, &nbits))
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: tensor '%s': shape x dtype size overflows 64 bits", L, name);
    if (nbits % 8)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: tensor '%s': %llu elements of %s do not fill whole bytes", L,
                                name, (unsigned long long)nelem, t->dtype_name);

    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        json_uint(offsets->child, &t->begin) || json_uint(offsets->child->next, &t->end))
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: tensor '%s': data_offsets must be [BEGIN, END] with "
                                "non-negative integers",
                                L, name);
    if (t->end < t->begin)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: tensor '%s': data_offsets END %llu < BEGIN %llu", L, name,
                                (unsigned long long)t->end, (unsigned long long)t->begin);
    if (t->end - t->begin != nbits / 8) {
        char sh[96];
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: tensor '%s': data_offsets span %llu bytes but %s %s needs "
                                "%llu bytes",
                                L, name, (unsigned long long)(t->end - t->begin), t->dtype_name,
                                st_shape_str(t, sh, sizeof sh), (unsigned long long)(nbits / 8));
    }
    return SAEMON_OK;
}

/* Tensors sorted by BEGIN must tile the data section exactly: from 0, no
 * overlap, no hole, ending at end of file. */
static saemon_status check_layout(st_file *f, uint64_t data_len, saemon_error *err)
{
    if (f->n_tensors > 1)
        qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_tensor_offset);
    uint64_t pos = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        if (t->begin < pos)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: tensor '%s' (bytes %llu..%llu) overlaps tensor '%s'",
                                    f->label, t->name, (unsigned long long)t->begin,
                                    (unsigned long long)t->end, prev);
        if (t->begin > pos)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: hole of %llu bytes in the data section before tensor "
                                    "'%s' (starts at %llu, expected %llu)",
                                    f->label, (unsigned long long)(t->begin - pos), t->name,
                                    (unsigned long long)t->begin, (unsigned long long)pos);
        pos = t->end;
        prev = t->name;
    }
    if (pos > data_len)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: truncated file: tensors need %llu data bytes but only %llu "
                                "are present",
                                f->label, (unsigned long long)pos, (unsigned long long)data_len);
    if (pos < data_len)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: %llu trailing bytes after the last tensor (the data section "
                                "must be fully covered)",
                                f->label, (unsigned long long)(data_len - pos));
    return SAEMON_OK;
}

static saemon_status parse_header(st_file *f, const char *hdr, size_t n, saemon_error *err)
{
    const char *L = f->label;
    if (n == 0 || hdr[0] != '{')
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: JSON header does not start with '{'", L);
    size_t bad = utf8_bad_offset((const uint8_t *)hdr, n);
    if (bad != n)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: JSON header is not valid UTF-8 (byte %zu of the header)", L,
                                bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, n, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr && end <= hdr + n ? (size_t)(end - hdr) : 0;
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: JSON header is not valid JSON (near byte %zu of the header)",
                                L, at);
    }
    saemon_status st = SAEMON_OK;
    for (const char *p = end; p < hdr + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                                  "%s: JSON header has extra bytes after the object (byte %zu)", L,
                                  (size_t)(p - hdr));
            goto out;
        }
    }
    st = st_json_unique_keys(root, L, "the header", err);
    if (st)
        goto out;
    size_t n_tensors = 0;
    for (const cJSON *c = root->child; c; c = c->next)
        if (strcmp(c->string, "__metadata__"))
            n_tensors++;
    if (n_tensors) {
        f->tensors = calloc(n_tensors, sizeof *f->tensors);
        if (!f->tensors) {
            st = saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", L);
            goto out;
        }
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!strcmp(c->string, "__metadata__")) {
            st = parse_metadata(f, c, err);
        } else {
            st_tensor *t = &f->tensors[f->n_tensors++];
            t->name = strdup(c->string);
            st = t->name ? parse_tensor(f, c, t, err)
                         : saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", L);
        }
        if (st)
            goto out;
    }
out:
    cJSON_Delete(root);
    return st;
}

saemon_status st_parse(const uint8_t *bytes, size_t len, const char *label, st_file *out,
                       saemon_error *err)
{
    memset(out, 0, sizeof *out);
    out->label = strdup(label ? label : "(memory)");
    if (!out->label)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "out of memory");
    const char *L = out->label;
    saemon_status st;
    if (len < 8) {
        st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                              "%s: file is %zu bytes, too small for the 8-byte header length", L,
                              len);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | bytes[i];
    if (n > ST_MAX_HEADER_BYTES) {
        st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                              "%s: header length %llu exceeds the limit of 100000000 bytes", L,
                              (unsigned long long)n);
        goto fail;
    }
    if (n > len - 8) {
        st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                              "%s: header length %llu runs past the end of the file (%zu bytes)",
                              L, (unsigned long long)n, len);
        goto fail;
    }
    out->bytes = bytes;
    out->size = len;
    out->header_len = n;
    st = parse_header(out, (const char *)bytes + 8, (size_t)n, err);
    if (st)
        goto fail;
    st = check_layout(out, len - 8 - n, err);
    if (st)
        goto fail;
    for (size_t i = 0; i < out->n_tensors; i++)
        out->tensors[i].data = bytes + 8 + n + out->tensors[i].begin;
    return SAEMON_OK;
fail:
    st_close(out);
    return st;
}

saemon_status st_open(const char *path, st_file *out, saemon_error *err)
{
    memset(out, 0, sizeof *out);
    const void *map;
    size_t len;
    saemon_status st = file_map_regular(path, "weights file", &map, &len, err);
    if (st != SAEMON_OK)
        return st;
    static const uint8_t empty[1];
    st = st_parse(map ? map : empty, len, path, out, err);
    if (st) {
        file_unmap(map, len);
        return st;
    }
    out->map = map;
    out->map_len = len;
    /* Tensor data is read with pread (st_read), not through the mapping: only
     * what the loader asks for is read, and nothing of it stays resident. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != out->size) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        st_close(out);
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: %s", path,
                                fd < 0 ? strerror(e) : "the file changed while it was being opened");
    }
    out->has_fd = true;
    out->fd = fd;
    out->dev = (uint64_t)sb.st_dev;
    out->ino = (uint64_t)sb.st_ino;
    out->mtime_ns = (uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec;
    return SAEMON_OK;
}

saemon_status st_read(st_file *f, uint64_t offset, size_t len, void *dst, saemon_error *err)
{
    uint64_t data_len = f->size - 8 - f->header_len;
    if (offset > data_len || len > data_len - offset)
        return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: read of %zu bytes at %llu is outside the data section",
                                f->label, len, (unsigned long long)offset);
    uint64_t at = 8 + f->header_len + offset;
    f->bytes_read += len;
    if (!f->has_fd) {
        memcpy(dst, f->bytes + at, len);
        return SAEMON_OK;
    }
    for (size_t done = 0; done < len;) {
        ssize_t r = pread(f->fd, (char *)dst + done, len - done, (off_t)(at + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return saemon_error_set(err, SAEMON_ERR_IO, "%s: read at byte %llu: %s", f->label,
                                    (unsigned long long)(at + done),
                                    r < 0 ? strerror(errno) : "the file is shorter than when it was opened");
        done += (size_t)r;
    }
    return SAEMON_OK;
}

saemon_status st_sha256(st_file *f, char out[65], saemon_error *err)
{
    if (!f->has_fd) {
        const void *parts[1] = {f->bytes};
        size_t lens[1] = {(size_t)f->size};
        return saemon_sha256_hex(parts, lens, 1, out)
                   ? saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: SHA-256 failed", f->label)
                   : SAEMON_OK;
    }
    if (saemon_sha256_fd_hex(f->fd, f->size, out) != 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "%s: SHA-256 of the file failed (read error or changed size)",
                                f->label);
    return SAEMON_OK;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].shape);
    }
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    file_unmap(f->map, f->map_len);
    if (f->has_fd)
        close(f->fd);
    free(f->label);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key))
            return f->meta_values[i];
    return NULL;
}

const char *st_shape_str(const st_tensor *t, char *buf, size_t len)
{
    size_t pos = 0;
    int w = snprintf(buf, len, "[");
    pos = w > 0 ? (size_t)w : 0;
    for (size_t i = 0; i < t->ndim && pos < len; i++) {
        w = snprintf(buf + pos, len - pos, "%s%llu", i ? ", " : "",
                     (unsigned long long)t->shape[i]);
        if (w < 0)
            break;
        pos += (size_t)w;
    }
    if (pos < len)
        snprintf(buf + pos, len - pos, "]");
    return buf;
}
