/* Per-connection deadline of the metrics endpoint (serve/http_guard.h). */
#include "serve/http_guard.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "base/clock.h"

#define REAP_EVERY_NS (250 * 1000 * 1000)

typedef struct guarded_conn {
    struct guarded_conn *prev, *next;
    int fd;
    bool busy;       /* a request's headers are in and it is being answered */
    bool shut;
    double deadline; /* monotonic seconds */
} guarded_conn;

struct http_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t reaper;
    bool stopping;
    double timeout_s;
    guarded_conn head; /* circular list */
    uint64_t timeouts;
};

static void *reap(void *arg)
{
    http_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        double now = clock_now_s();
        for (guarded_conn *c = g->head.next; c != &g->head; c = c->next)
            if (!c->busy && !c->shut && now > c->deadline) {
                /* the fd is open: the list entry goes before MHD closes it */
                shutdown(c->fd, SHUT_RDWR);
                c->shut = true;
                __atomic_add_fetch(&g->timeouts, 1, __ATOMIC_RELAXED);
            }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += REAP_EVERY_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

http_guard *http_guard_start(double timeout_s)
{
    http_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->timeout_s = timeout_s;
    g->head.next = g->head.prev = &g->head;
    if (pthread_create(&g->reaper, NULL, reap, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    return g;
}

void http_guard_stop(http_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->reaper, NULL);
    while (g->head.next != &g->head) { /* none after MHD_stop_daemon; be safe */
        guarded_conn *c = g->head.next;
        c->prev->next = c->next;
        c->next->prev = c->prev;
        free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

uint64_t http_guard_timeouts(const http_guard *g)
{
    return g ? __atomic_load_n(&g->timeouts, __ATOMIC_RELAXED) : 0;
}

void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    http_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        guarded_conn *c = info ? calloc(1, sizeof *c) : NULL;
        *socket_context = c;
        if (!c)
            return; /* unguarded: libmicrohttpd's idle timeout still applies */
        c->fd = info->connect_fd;
        pthread_mutex_lock(&g->mu);
        c->deadline = clock_now_s() + g->timeout_s;
        c->next = g->head.next;
        c->prev = &g->head;
        g->head.next->prev = c;
        g->head.next = c;
        pthread_mutex_unlock(&g->mu);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        guarded_conn *c = *socket_context;
        pthread_mutex_lock(&g->mu);
        c->prev->next = c->next;
        c->next->prev = c->prev;
        pthread_mutex_unlock(&g->mu);
        free(c);
        *socket_context = NULL;
    }
}

static guarded_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

void http_guard_request(http_guard *g, struct MHD_Connection *conn)
{
    guarded_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->busy = true;
    pthread_mutex_unlock(&g->mu);
}

void http_guard_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)con_cls;
    (void)toe;
    http_guard *g = cls;
    guarded_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->busy = false;
    c->deadline = clock_now_s() + g->timeout_s;
    pthread_mutex_unlock(&g->mu);
}
