/*
 * conns.c - the connections ue-collector holds, and the deadlines libmicrohttpd does not keep.
 *
 * libmicrohttpd's timeout (--idle-timeout) is an idle time: a client that sends one byte
 * before it runs out keeps its connection for ever (slowloris: 260 sockets sending a byte
 * every 20 s held every slot of the old thread-per-connection server for minutes). So each
 * connection has a deadline of its own, kept here: its request's headers within
 * --header-timeout-ms of its opening or of its previous answer, the whole request within
 * --request-timeout-ms. A thread checks them four times a second and shuts a late connection's
 * socket down; libmicrohttpd then sees it closed and cleans up. A request being handled has
 * no deadline: its answer waits for its events (--ack-timeout-ms).
 *
 * The table is filled by libmicrohttpd's connection notifications, which come before it
 * closes a socket, so a descriptor in the table is always still the connection's.
 */
#include "collector.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
    struct conn *prev, *next;
    MHD_socket fd;
    int phase;
    int64_t since_ns;    /* when it started waiting for this request */
    int64_t deadline_ns; /* 0: none */
};

static void set_phase(collector_t *col, conn_t *c, int phase)
{
    int64_t now = mono_ns();
    if (phase == CONN_WAIT_HEADERS)
        c->since_ns = now;
    c->phase = phase;
    c->deadline_ns = phase == CONN_WAIT_HEADERS ? now + col->header_timeout_ms * 1000000
                     : phase == CONN_WAIT_BODY  ? c->since_ns + col->request_timeout_ms * 1000000
                                                : 0;
}

void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                   enum MHD_ConnectionNotificationCode toe)
{
    collector_t *col = cls;
    conn_t *c = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = ci ? calloc(1, sizeof(*c)) : NULL;
        if (!c)
            return; /* out of memory: this one goes without a deadline of its own */
        c->fd = ci->connect_fd;
        pthread_mutex_lock(&col->conns_lock);
        set_phase(col, c, CONN_WAIT_HEADERS);
        c->next = col->conns;
        if (c->next)
            c->next->prev = c;
        col->conns = c;
        pthread_mutex_unlock(&col->conns_lock);
        *socket_context = c;
        return;
    }
    if (!c)
        return;
    pthread_mutex_lock(&col->conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        col->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&col->conns_lock);
    free(c);
    *socket_context = NULL;
}

void conn_phase(collector_t *col, struct MHD_Connection *conn, int phase)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_t *c = ci ? ci->socket_context : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&col->conns_lock);
    set_phase(col, c, phase);
    pthread_mutex_unlock(&col->conns_lock);
}

static void *reaper(void *arg)
{
    collector_t *col = arg;
    while (!atomic_load(&col->stopping)) {
        int64_t now = mono_ns();
        pthread_mutex_lock(&col->conns_lock);
        for (conn_t *c = col->conns; c; c = c->next) {
            if (c->deadline_ns && now > c->deadline_ns) {
                shutdown(c->fd, SHUT_RDWR); /* libmicrohttpd reads the end and closes it */
                c->deadline_ns = 0;
                atomic_fetch_add(&col->cut, 1);
            }
        }
        pthread_mutex_unlock(&col->conns_lock);
        usleep(250 * 1000);
    }
    return NULL;
}

int conns_start(collector_t *col)
{
    pthread_mutex_init(&col->conns_lock, NULL);
    if (pthread_create(&col->reaper, NULL, reaper, col)) {
        fprintf(stderr, "ue-collector: cannot start a thread\n");
        return -1;
    }
    return 0;
}

void conns_stop(collector_t *col)
{
    atomic_store(&col->stopping, 1);
    pthread_join(col->reaper, NULL);
}
