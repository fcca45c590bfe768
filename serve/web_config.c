#include "serve/web_config.h"

#include <crypt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/read_file.h"
#include "base/sha256.h"
#include "base/yaml_walk.h"

#define MAX_USERS 256
#define CACHE_SLOTS 16
/* Failed basic-auth checks: a client address may fail PEER_BURST times at
 * once, then PEER_RATE times a second; beyond that it gets 429 without a
 * bcrypt. At most BCRYPT_AT_ONCE checks run at a time (fewer than the HTTP
 * threads), so a flood of wrong passwords from many addresses still leaves a
 * thread for scrapes whose credentials are cached. */
#define PEER_SLOTS 256
#define PEER_BURST 10.0
#define PEER_RATE 1.0
#define BCRYPT_AT_ONCE 2

typedef struct web_user {
    char *name;
    char *hash; /* bcrypt, "$2y$10$..." */
} web_user;

typedef struct peer_budget {
    unsigned char addr[16];
    double tokens, at;
    bool used;
} peer_budget;

typedef struct cached_ok {
    char digest[65]; /* SHA-256 of user, password, hash */
    double until;
} cached_ok;

struct web_config {
    char *cert_pem, *key_pem, *client_ca_pem; /* file contents (NUL-terminated) */
    web_client_auth client_auth;
    const char *priorities; /* GnuTLS priority string for min_version */
    web_user *users;
    size_t n_users;
    pthread_mutex_t mu; /* guards cache */
    cached_ok cache[CACHE_SLOTS];
    size_t next_slot;
    peer_budget peers[PEER_SLOTS]; /* under mu */
    int bcrypts_running;           /* under mu */
    uint64_t auth_throttled;       /* refused without a check (429) */
};

static const struct {
    const char *name;
    web_client_auth value;
} client_auth_names[] = {
    {"NoClientCert", WEB_NO_CLIENT_CERT},
    {"RequestClientCert", WEB_REQUEST_CLIENT_CERT},
    {"RequireAnyClientCert", WEB_REQUIRE_ANY_CLIENT_CERT},
    {"VerifyClientCertIfGiven", WEB_VERIFY_CLIENT_CERT_IF_GIVEN},
    {"RequireAndVerifyClientCert", WEB_REQUIRE_AND_VERIFY_CLIENT_CERT},
};

/* min_version -> GnuTLS priorities: that version and every later one. */
static const struct {
    const char *name;
    const char *priorities;
} versions[] = {
    {"TLS10", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0"},
    {"TLS11", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+VERS-TLS1.1"},
    {"TLS12", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
    {"TLS13", "NORMAL:-VERS-ALL:+VERS-TLS1.3"},
};

typedef struct parse {
    walk *w;
    web_config *wc;
} parse;

/* Read the file a key names (relative to the config file) into *out. */
static saemon_status read_keyed_file(walk *w, const yaml_node_t *map, const char *key, char **out)
{
    const char *rel = NULL;
    saemon_status s = walk_get_text(w, map, NULL, key, &rel);
    if (s != SAEMON_OK || !rel)
        return s;
    char *path = path_relative_to(w->file, rel);
    if (!path)
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    saemon_error e = {0};
    size_t len;
    char what[48];
    snprintf(what, sizeof what, "%s", key);
    s = read_whole_file(path, 1u << 20, what, out, &len, &e);
    free(path);
    if (s != SAEMON_OK)
        return walk_fail_code(w, s, walk_get(w, map, key, NULL), "%s", e.message);
    return SAEMON_OK;
}

static saemon_status check_tls_material(walk *w, const yaml_node_t *tls, web_config *wc)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    saemon_status s = SAEMON_OK;
    gnutls_datum_t cert = {(unsigned char *)wc->cert_pem, (unsigned)strlen(wc->cert_pem)};
    gnutls_datum_t key = {(unsigned char *)wc->key_pem, (unsigned)strlen(wc->key_pem)};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rc < 0)
        s = walk_fail(w, walk_get(w, tls, "key_file", NULL),
                      "cert_file/key_file: %s; expected a PEM certificate and its unencrypted PEM key",
                      gnutls_strerror(rc));
    if (s == SAEMON_OK && wc->client_ca_pem) {
        gnutls_datum_t ca = {(unsigned char *)wc->client_ca_pem, (unsigned)strlen(wc->client_ca_pem)};
        rc = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (rc <= 0)
            s = walk_fail(w, walk_get(w, tls, "client_ca_file", NULL), "client_ca_file: %s",
                          rc < 0 ? gnutls_strerror(rc) : "no PEM certificate in it");
    }
    gnutls_certificate_free_credentials(cred);
    return s;
}

static saemon_status parse_tls(walk *w, const yaml_node_t *tls, web_config *wc)
{
    static const char *const keys[] = {"cert_file", "key_file", "client_auth_type", "client_ca_file",
                                       "min_version", NULL};
    saemon_status s = walk_check_map(w, tls, "'tls_server_config'", keys);
    if (s != SAEMON_OK)
        return s;
    if (!walk_get(w, tls, "cert_file", NULL) || !walk_get(w, tls, "key_file", NULL))
        return walk_fail(w, tls, "tls_server_config needs both cert_file and key_file");
    if ((s = read_keyed_file(w, tls, "cert_file", &wc->cert_pem)) != SAEMON_OK ||
        (s = read_keyed_file(w, tls, "key_file", &wc->key_pem)) != SAEMON_OK ||
        (s = read_keyed_file(w, tls, "client_ca_file", &wc->client_ca_pem)) != SAEMON_OK)
        return s;
    const char *text = NULL;
    yaml_node_t *v = walk_get(w, tls, "client_auth_type", NULL);
    if ((s = walk_get_text(w, tls, NULL, "client_auth_type", &text)) != SAEMON_OK)
        return s;
    if (text) {
        size_t i = 0, n = sizeof client_auth_names / sizeof client_auth_names[0];
        while (i < n && strcmp(text, client_auth_names[i].name))
            i++;
        if (i == n)
            return walk_fail(w, v,
                             "client_auth_type \"%.40s\" is unknown; expected NoClientCert, RequestClientCert, "
                             "RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert",
                             text);
        wc->client_auth = client_auth_names[i].value;
    }
    bool verifies = wc->client_auth == WEB_VERIFY_CLIENT_CERT_IF_GIVEN ||
                    wc->client_auth == WEB_REQUIRE_AND_VERIFY_CLIENT_CERT;
    if (verifies && !wc->client_ca_pem)
        return walk_fail(w, v, "client_auth_type %s needs client_ca_file", text);
    /* As the exporter toolkit: client CAs without a policy is a mistake. */
    if (wc->client_ca_pem && wc->client_auth == WEB_NO_CLIENT_CERT)
        return walk_fail(w, walk_get(w, tls, "client_ca_file", NULL),
                         "client_ca_file is set but client_auth_type is NoClientCert; expected e.g. "
                         "RequireAndVerifyClientCert");
    wc->priorities = versions[2].priorities;
    v = walk_get(w, tls, "min_version", NULL);
    text = NULL;
    if ((s = walk_get_text(w, tls, NULL, "min_version", &text)) != SAEMON_OK)
        return s;
    if (text) {
        size_t i = 0, n = sizeof versions / sizeof versions[0];
        while (i < n && strcmp(text, versions[i].name))
            i++;
        if (i == n)
            return walk_fail(w, v, "min_version \"%.20s\" is unknown; expected TLS10, TLS11, TLS12 or TLS13", text);
        wc->priorities = versions[i].priorities;
    }
    return check_tls_material(w, tls, wc);
}

static bool is_bcrypt(const char *hash)
{
    if (strncmp(hash, "$2a$", 4) && strncmp(hash, "$2b$", 4) && strncmp(hash, "$2y$", 4))
        return false;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *out = crypt_rn("", hash, cd, sizeof *cd);
    /* A valid setting hashes to a string of the same form. */
    bool ok = out && out[0] == '$' && strlen(out) == strlen(hash);
    free(cd);
    return ok;
}

static saemon_status parse_users(walk *w, const yaml_node_t *users, web_config *wc)
{
    if (users->type != YAML_MAPPING_NODE) {
        char d[64];
        return walk_fail(w, users, "'basic_auth_users' is %s; expected a mapping of user names to bcrypt hashes",
                         walk_describe(users, d, sizeof d));
    }
    size_t n = walk_map_len(users);
    if (n == 0 || n > MAX_USERS)
        return walk_fail(w, users, "'basic_auth_users' has %zu users; expected 1 to %d", n, MAX_USERS);
    wc->users = calloc(n, sizeof *wc->users);
    if (!wc->users)
        return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *k, *v;
        walk_map_pair(w, users, i, &k, &v);
        const char *name, *hash;
        saemon_status s;
        if ((s = walk_string(w, k, "a user name", &name)) != SAEMON_OK ||
            (s = walk_string(w, v, "a bcrypt hash", &hash)) != SAEMON_OK)
            return s;
        if (!*name || strchr(name, ':'))
            return walk_fail(w, k, "user name \"%.40s\" is empty or holds ':'", name);
        /* The hash is not a secret, but say nothing of it beyond its kind. */
        if (!is_bcrypt(hash))
            return walk_fail(w, v, "user %.40s: not a bcrypt hash; expected $2y$... (htpasswd -nBC 10 USER)", name);
        wc->users[i].name = strdup(name);
        wc->users[i].hash = strdup(hash);
        wc->n_users++;
        if (!wc->users[i].name || !wc->users[i].hash)
            return saemon_error_set(w->err, SAEMON_ERR_NOMEM, "%s: out of memory", w->file);
    }
    return SAEMON_OK;
}

static saemon_status parse_root(walk *w, const yaml_node_t *root, web_config *wc)
{
    static const char *const keys[] = {"tls_server_config", "basic_auth_users", NULL};
    saemon_status s = walk_check_map(w, root, "the web config", keys);
    if (s != SAEMON_OK)
        return s;
    yaml_node_t *v;
    if ((v = walk_get(w, root, "tls_server_config", NULL)) && (s = parse_tls(w, v, wc)) != SAEMON_OK)
        return s;
    if ((v = walk_get(w, root, "basic_auth_users", NULL)) && (s = parse_users(w, v, wc)) != SAEMON_OK)
        return s;
    return SAEMON_OK;
}

saemon_status web_config_load(const char *path, web_config **out, saemon_error *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    saemon_status s = read_whole_file(path, 1u << 20, "web config", &text, &len, err);
    if (s == SAEMON_OK) /* deep nesting is quadratic in libyaml (a SIGHUP would stall): refuse it first */
        s = walk_check_depth(path, text, len, SAEMON_ERR_ARG, err);
    if (s != SAEMON_OK) {
        free(text);
        return s;
    }
    web_config *wc = calloc(1, sizeof *wc);
    yaml_parser_t parser;
    if (!wc || !yaml_parser_initialize(&parser)) {
        free(wc);
        free(text);
        return saemon_error_set(err, SAEMON_ERR_NOMEM, "%s: out of memory", path);
    }
    pthread_mutex_init(&wc->mu, NULL);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        s = walk_syntax_error(&parser, path, text, len, err);
    } else {
        arena mem = {0};
        walk w = {.file = path, .doc = &doc, .mem = &mem, .err = err};
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
            s = saemon_error_set(err, SAEMON_ERR_FORMAT, "%s:1:1: the web config is empty", path);
        else
            s = parse_root(&w, root, wc);
        arena_free(&mem);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    free(text);
    if (s != SAEMON_OK) {
        web_config_free(wc);
        return s;
    }
    *out = wc;
    return SAEMON_OK;
}

void web_config_free(web_config *wc)
{
    if (!wc)
        return;
    if (wc->key_pem) {
        explicit_bzero(wc->key_pem, strlen(wc->key_pem));
        free(wc->key_pem);
    }
    free(wc->cert_pem);
    free(wc->client_ca_pem);
    for (size_t i = 0; i < wc->n_users; i++) {
        free(wc->users[i].name);
        free(wc->users[i].hash);
    }
    free(wc->users);
    explicit_bzero(wc->cache, sizeof wc->cache);
    pthread_mutex_destroy(&wc->mu);
    free(wc);
}

bool web_config_tls(const web_config *wc)
{
    return wc && wc->cert_pem;
}

bool web_config_basic_auth(const web_config *wc)
{
    return wc && wc->n_users;
}

void web_config_mhd_options(const web_config *wc, struct MHD_OptionItem items[6], unsigned *flags)
{
    size_t n = 0;
    if (web_config_tls(wc)) {
        *flags |= MHD_USE_TLS;
        items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, wc->key_pem};
        items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, wc->cert_pem};
        items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)wc->priorities};
        /* With a trust store libmicrohttpd asks the client for a
         * certificate; whether one is required and verified is decided per
         * request in web_config_admit. */
        if (wc->client_ca_pem && wc->client_auth != WEB_NO_CLIENT_CERT)
            items[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, wc->client_ca_pem};
    }
    items[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

static bool same_bytes(const char *a, const char *b, size_t n)
{
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return diff == 0;
}

/* The user's entry (NULL: unknown), the hash to check against (an unknown
 * user is checked against the first one: it costs the same SHA-256, search
 * and bcrypt as a known one) and the credentials' digest, the key of the
 * cache of successful checks. Returns whether that cache holds it. */
static bool credential_lookup(web_config *wc, const char *user, const char *password, const web_user **u_out,
                              const char **hash_out, char digest[65], bool *digest_ok)
{
    const web_user *u = NULL;
    for (size_t i = 0; i < wc->n_users; i++)
        if (!strcmp(wc->users[i].name, user))
            u = &wc->users[i];
    const char *hash = u ? u->hash : wc->users[0].hash;
    *u_out = u;
    *hash_out = hash;
    const void *parts[] = {user, password, hash};
    size_t lens[] = {strlen(user) + 1, strlen(password) + 1, strlen(hash)};
    *digest_ok = saemon_sha256_hex(parts, lens, 3, digest) == 0;
    if (!*digest_ok)
        return false;
    double now = clock_now_s();
    bool hit = false;
    pthread_mutex_lock(&wc->mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (wc->cache[i].until > now && same_bytes(wc->cache[i].digest, digest, 64))
            hit = true;
    pthread_mutex_unlock(&wc->mu);
    return hit;
}

bool web_config_check_password(web_config *wc, const char *user, const char *password)
{
    if (!wc || !wc->n_users || !user || !password)
        return false;
    const web_user *u;
    const char *hash;
    char digest[65];
    bool digest_ok;
    bool cached = credential_lookup(wc, user, password, &u, &hash, digest, &digest_ok);
    if (!digest_ok)
        return false;
    if (cached) {
        explicit_bzero(digest, sizeof digest);
        return u != NULL;
    }
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *out = crypt_rn(password, hash, cd, sizeof *cd);
    size_t n = strlen(hash);
    bool ok = out && strlen(out) == n && same_bytes(out, hash, n) && u;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    if (ok) {
        pthread_mutex_lock(&wc->mu);
        memcpy(wc->cache[wc->next_slot].digest, digest, sizeof digest);
        wc->cache[wc->next_slot].until = clock_now_s() + WEB_AUTH_CACHE_S;
        wc->next_slot = (wc->next_slot + 1) % CACHE_SLOTS;
        pthread_mutex_unlock(&wc->mu);
    }
    explicit_bzero(digest, sizeof digest);
    return ok;
}

/* The client certificate policy, on a TLS connection. */
static bool client_cert_ok(const web_config *wc, struct MHD_Connection *conn)
{
    if (wc->client_auth == WEB_NO_CLIENT_CERT || wc->client_auth == WEB_REQUEST_CLIENT_CERT)
        return true;
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!info || !info->tls_session)
        return false;
    gnutls_session_t session = (gnutls_session_t)info->tls_session;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
    bool given = peers && n > 0;
    if (!given)
        return wc->client_auth == WEB_VERIFY_CLIENT_CERT_IF_GIVEN;
    if (wc->client_auth == WEB_REQUIRE_ANY_CLIENT_CERT)
        return true;
    unsigned status = 0;
    return gnutls_certificate_verify_peers3(session, NULL, &status) == 0 && status == 0;
}

static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned code, const char *text, bool ask_basic)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result ret = ask_basic ? MHD_queue_basic_auth_fail_response(conn, "saemon", r)
                                    : MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* The budget of failed checks of the connection's client address (under mu). */
static peer_budget *peer_of(web_config *wc, struct MHD_Connection *conn, double now)
{
    unsigned char key[16] = {0};
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info && info->client_addr) {
        const struct sockaddr *sa = info->client_addr;
        if (sa->sa_family == AF_INET)
            memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        else if (sa->sa_family == AF_INET6)
            memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
    peer_budget *oldest = &wc->peers[0];
    for (size_t i = 0; i < PEER_SLOTS; i++) {
        peer_budget *p = &wc->peers[i];
        if (p->used && !memcmp(p->addr, key, sizeof key)) {
            p->tokens += (now - p->at) * PEER_RATE;
            if (p->tokens > PEER_BURST)
                p->tokens = PEER_BURST;
            p->at = now;
            return p;
        }
        if (!p->used || (oldest->used && p->at < oldest->at))
            oldest = p;
    }
    memcpy(oldest->addr, key, sizeof key);
    oldest->tokens = PEER_BURST;
    oldest->at = now;
    oldest->used = true;
    return oldest;
}

/* A success remembered for these credentials? (cheap: one SHA-256) */
static bool cached_success(web_config *wc, const char *user, const char *password)
{
    const web_user *u;
    const char *hash;
    char digest[65];
    bool digest_ok;
    bool hit = credential_lookup(wc, user, password, &u, &hash, digest, &digest_ok);
    explicit_bzero(digest, sizeof digest);
    return hit && u; /* only a successful check of a known user is ever cached */
}

uint64_t web_config_auth_throttled(web_config *wc)
{
    return wc ? __atomic_load_n(&wc->auth_throttled, __ATOMIC_RELAXED) : 0;
}

bool web_config_admit(web_config *wc, struct MHD_Connection *conn, enum MHD_Result *result)
{
    if (!wc)
        return true;
    if (web_config_tls(wc) && !client_cert_ok(wc, conn)) {
        *result = refuse(conn, MHD_HTTP_FORBIDDEN, "a valid client certificate is required\n", false);
        return false;
    }
    if (!wc->n_users)
        return true;
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(conn, &password);
    bool ok = false, throttled = false;
    if (user && password && !(ok = cached_success(wc, user, password))) {
        pthread_mutex_lock(&wc->mu);
        peer_budget *p = peer_of(wc, conn, clock_now_s());
        throttled = p->tokens < 1.0 || wc->bcrypts_running >= BCRYPT_AT_ONCE;
        if (!throttled)
            wc->bcrypts_running++;
        pthread_mutex_unlock(&wc->mu);
        if (!throttled) {
            ok = web_config_check_password(wc, user, password);
            pthread_mutex_lock(&wc->mu);
            wc->bcrypts_running--;
            if (!ok)
                peer_of(wc, conn, clock_now_s())->tokens -= 1.0;
            pthread_mutex_unlock(&wc->mu);
        }
    }
    if (password) {
        explicit_bzero(password, strlen(password));
        MHD_free(password);
    }
    if (user)
        MHD_free(user);
    if (throttled) {
        __atomic_add_fetch(&wc->auth_throttled, 1, __ATOMIC_RELAXED);
        *result = refuse(conn, MHD_HTTP_TOO_MANY_REQUESTS, "too many failed logins; retry later\n", false);
        return false;
    }
    if (!ok)
        *result = refuse(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized\n", true);
    return ok;
}
