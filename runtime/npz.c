/* .npz members through libzip (see npz.h). libzip finds each entry's data
 * from its LOCAL header's own name/extra lengths, which is what np.savez
 * files need: their local headers carry a ZIP64 extra field that the central
 * directory entries do not. */
#include <string.h>
#include <zip.h>

#include "base/error.h"
#include "runtime/npz.h"

/* Deflate cannot expand data by more than ~1032:1 (one 258-byte match per
 * 2 bits at best); a declared size beyond that is a lie, so it is refused
 * before anything is inflated. */
#define DEFLATE_MAX_RATIO 1032u

static saemon_status zip_fail(zip_error_t *ze, const char *label, const char *what,
                              saemon_error *err)
{
    int code = zip_error_code_zip(ze);
    saemon_status st = saemon_error_set(
        err, code == ZIP_ER_MEMORY ? SAEMON_ERR_NOMEM : SAEMON_ERR_FORMAT,
        "%s: %s: %s (not a valid .npz/zip archive?)", label, what, zip_error_strerror(ze));
    return st;
}

static saemon_status list_members(npz_archive *a, saemon_error *err)
{
    zip_int64_t n = zip_get_num_entries(a->zip, 0);
    if (n < 0 || n > NPZ_MAX_ENTRIES)
        return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                "%s: %lld entries in the archive; a params.npz holds a handful "
                                "(limit %d)",
                                a->label, (long long)n, NPZ_MAX_ENTRIES);
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t sb;
        zip_stat_init(&sb);
        if (zip_stat_index(a->zip, (zip_uint64_t)i, 0, &sb) != 0)
            return zip_fail(zip_get_error(a->zip), a->label, "cannot read an entry", err);
        const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE |
                                  ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
        if ((sb.valid & need) != need || !sb.name)
            return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: entry %lld is incomplete",
                                    a->label, (long long)i);
        size_t nl = strlen(sb.name);
        if (nl == 0 || nl >= NPZ_MAX_NAME)
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: entry %lld has an empty or over-long name", a->label,
                                    (long long)i);
        if (sb.encryption_method != ZIP_EM_NONE)
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED, "%s: entry '%s' is encrypted",
                                    a->label, sb.name);
        if (sb.comp_method != ZIP_CM_STORE && sb.comp_method != ZIP_CM_DEFLATE)
            return saemon_error_set(err, SAEMON_ERR_UNSUPPORTED,
                                    "%s: entry '%s' uses zip compression method %d; saemon "
                                    "reads stored (np.savez) and deflate (np.savez_compressed)",
                                    a->label, sb.name, (int)sb.comp_method);
        if ((sb.comp_method == ZIP_CM_STORE && sb.size != sb.comp_size) ||
            (sb.comp_method == ZIP_CM_DEFLATE && sb.size / DEFLATE_MAX_RATIO > sb.comp_size))
            return saemon_error_set(err, SAEMON_ERR_FORMAT,
                                    "%s: entry '%s' declares %llu uncompressed bytes from %llu "
                                    "compressed ones, more than %s can produce (zip bomb or "
                                    "corrupt directory)",
                                    a->label, sb.name, (unsigned long long)sb.size,
                                    (unsigned long long)sb.comp_size,
                                    sb.comp_method == ZIP_CM_STORE ? "storing" : "deflate");
        for (size_t j = 0; j < a->n_members; j++)
            if (!strcmp(a->members[j].name, sb.name))
                return saemon_error_set(err, SAEMON_ERR_FORMAT, "%s: entry '%s' appears twice",
                                        a->label, sb.name);
        npz_member *m = &a->members[a->n_members++];
        memcpy(m->name, sb.name, nl + 1);
        m->index = (uint64_t)i;
        m->size = sb.size;
        m->comp_size = sb.comp_size;
        m->method = sb.comp_method;
    }
    return SAEMON_OK;
}

saemon_status npz_open(const void *bytes, size_t len, const char *label, npz_archive *out,
                       saemon_error *err)
{
    memset(out, 0, sizeof *out);
    out->label = label;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(len ? bytes : "", len, 0, &ze);
    if (!src) {
        saemon_status st = zip_fail(&ze, label, "cannot open", err);
        zip_error_fini(&ze);
        return st;
    }
    /* CHECKCONS: every local header must agree with its central entry. */
    out->zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!out->zip) {
        zip_source_free(src);
        saemon_status st = zip_fail(&ze, label, "cannot read the zip central directory", err);
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    saemon_status st = list_members(out, err);
    if (st)
        npz_close(out);
    return st;
}

/* Read up to len bytes of an open entry into buf; returns bytes read or -1. */
static zip_int64_t read_some(zip_file_t *zf, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        zip_int64_t r = zip_fread(zf, (char *)buf + got, len - got);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (zip_int64_t)got;
}

static saemon_status read_entry(npz_archive *a, const npz_member *m, void *buf, size_t len,
                                int whole, saemon_error *err)
{
    if (len > m->size)
        return saemon_error_set(err, SAEMON_ERR_ARG, "%s: entry '%s': read beyond its size",
                                a->label, m->name);
    zip_file_t *zf = zip_fopen_index(a->zip, m->index, 0);
    if (!zf)
        return zip_fail(zip_get_error(a->zip), a->label, m->name, err);
    saemon_status st = SAEMON_OK;
    zip_int64_t got = read_some(zf, buf, len);
    char extra;
    if (got < 0)
        st = zip_fail(zip_file_get_error(zf), a->label, m->name, err);
    else if ((size_t)got != len)
        st = saemon_error_set(err, SAEMON_ERR_FORMAT,
                              "%s: entry '%s' is truncated: %lld of %llu declared bytes", a->label,
                              m->name, (long long)got, (unsigned long long)m->size);
    else if (whole && (got = zip_fread(zf, &extra, 1)) != 0)
        /* Reading to the end makes libzip check the CRC-32. */
        st = got < 0 ? zip_fail(zip_file_get_error(zf), a->label, m->name, err)
                     : saemon_error_set(err, SAEMON_ERR_FORMAT,
                                        "%s: entry '%s' holds more than its declared %llu bytes",
                                        a->label, m->name, (unsigned long long)m->size);
    zip_fclose(zf);
    return st;
}

saemon_status npz_read_prefix(npz_archive *a, const npz_member *m, void *buf, size_t len,
                              saemon_error *err)
{
    return read_entry(a, m, buf, len, 0, err);
}

saemon_status npz_read_all(npz_archive *a, const npz_member *m, void *buf, saemon_error *err)
{
    if (m->size > SIZE_MAX)
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: entry '%s' is too large", a->label,
                                m->name);
    return read_entry(a, m, buf, (size_t)m->size, 1, err);
}

void npz_close(npz_archive *a)
{
    if (a->zip)
        zip_discard(a->zip);
    a->zip = NULL;
    a->n_members = 0;
}
