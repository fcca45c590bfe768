#include "monitors/sinks/tls_check.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/read_file.h"

#define SOON_DAYS 30

void tls_check_warn(char *warn, size_t wlen, const char *fmt, ...)
{
    if (!warn || !wlen)
        return;
    size_t have = strnlen(warn, wlen);
    if (have + 1 >= wlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(warn + have, wlen - have, fmt, ap);
    va_end(ap);
    have = strnlen(warn, wlen);
    if (have + 1 < wlen) {
        warn[have] = '\n';
        warn[have + 1] = 0;
    }
}

static void asn1_date(const ASN1_TIME *t, char *out, size_t len)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(out, len, "(unreadable date)");
}

/* The file as a memory BIO: read with base/read_file (regular files only,
 * never blocking on a FIFO, at most 1 MiB). */
static BIO *open_file(const char *path, const char *what, char *msg, size_t len, char **text)
{
    size_t n = 0;
    saemon_error err = {0};
    if (read_whole_file(path, 1u << 20, what, text, &n, &err) != SAEMON_OK) {
        snprintf(msg, len, "%s", err.message);
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(*text, (int)n);
    if (!b) {
        snprintf(msg, len, "%s %s: out of memory", what, path);
        free(*text);
        *text = NULL;
    }
    return b;
}

/* 0 = valid now, <0 expired, >0 not yet valid; *soon when it ends within SOON_DAYS. */
static int validity(X509 *x, bool *soon)
{
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        return 1;
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        return -1;
    time_t later = time(NULL) + SOON_DAYS * 86400;
    *soon = X509_cmp_time(X509_get0_notAfter(x), &later) < 0;
    return 0;
}

bool tls_check_cert_file(const char *path, const char *what, bool ca, char *msg, size_t len, const char *where,
                         char *warn, size_t wlen)
{
    char *text = NULL;
    BIO *b = open_file(path, what, msg, len, &text);
    if (!b)
        return false;
    size_t n = 0, usable = 0;
    bool ok = true;
    char date[64];
    X509 *x;
    while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        bool soon = false;
        int v = validity(x, &soon);
        n++;
        if (v == 0)
            usable++;
        if (v != 0 && !ca) {
            asn1_date(v < 0 ? X509_get0_notAfter(x) : X509_get0_notBefore(x), date, sizeof date);
            snprintf(msg, len, "%s %s: the certificate %s %s", what, path, v < 0 ? "expired on" : "is not valid before",
                     date);
            ok = false;
        }
        if (soon) {
            asn1_date(X509_get0_notAfter(x), date, sizeof date);
            tls_check_warn(warn, wlen, "%s%s %s: certificate %zu expires on %s (within %d days)", where, what, path, n,
                           date, SOON_DAYS);
        }
        X509_free(x);
        if (!ca)
            break; /* the leaf; the rest of a chain is the server's business */
    }
    ERR_clear_error();
    BIO_free(b);
    free(text);
    if (!ok)
        return false;
    if (n == 0) {
        snprintf(msg, len, "%s %s: no PEM certificate in it", what, path);
        return false;
    }
    if (ca && usable == 0) {
        snprintf(msg, len, "%s %s: every certificate in it is expired or not yet valid", what, path);
        return false;
    }
    if (ca && usable < n)
        tls_check_warn(warn, wlen, "%s%s %s: %zu of its %zu certificates are expired or not yet valid", where, what,
                       path, n - usable, n);
    return true;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* never prompt: an encrypted key is an error */
}

bool tls_check_key_file(const char *key_path, const char *cert_path, char *msg, size_t len, const char *where,
                        char *warn, size_t wlen)
{
    char *text = NULL;
    BIO *b = open_file(key_path, "tls_config key_file", msg, len, &text);
    if (!b)
        return false;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    explicit_bzero(text, strlen(text));
    free(text);
    ERR_clear_error();
    if (!key) {
        snprintf(msg, len, "tls_config key_file %s: no unencrypted PEM private key in it", key_path);
        return false;
    }
    struct stat st;
    if (stat(key_path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        tls_check_warn(warn, wlen, "%stls_config key_file %s is readable by group or others; make it private (chmod 600)",
                       where, key_path);
    bool ok = false;
    X509 *x = NULL;
    char *cert_text = NULL, ignored[8];
    BIO *c = open_file(cert_path, "tls_config cert_file", ignored, sizeof ignored, &cert_text);
    if (c && (x = PEM_read_bio_X509(c, NULL, NULL, NULL)))
        ok = X509_check_private_key(x, key) == 1;
    if (!ok)
        snprintf(msg, len, "tls_config key_file %s does not match the certificate in cert_file %s", key_path,
                 cert_path);
    ERR_clear_error();
    X509_free(x);
    BIO_free(c);
    free(cert_text);
    EVP_PKEY_free(key);
    return ok;
}
