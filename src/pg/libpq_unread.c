/* The one file that reads libpq's private struct (internal/libpq-int.h, shipped by libpq-dev), in
 * C because that header is not C++-clean. Taking a connection over is only safe when libpq holds no
 * unconsumed bytes: PQconnectPoll drains every complete message after ReadyForQuery (fe-connect.c,
 * CONNECTION_AUTH_OK; pqParseInput3 in fe-protocol3.c), so only a partial one can be left, and
 * no public API shows it. */
#include "postgres_fe.h"

#include "libpq-fe.h"
#include "libpq-int.h"

#include "pg/libpq_unread.h"

int rproxy_libpq_unread_bytes(const PGconn* conn) {
    if (conn->sock != PQsocket(conn) || conn->be_pid != PQbackendPID(conn)) return -1;
    if (conn->inStart < 0 || conn->inEnd < conn->inStart) return -1;
    return conn->inEnd - conn->inStart;
}

int rproxy_libpq_unsent_bytes(const PGconn* conn) {
    if (conn->sock != PQsocket(conn) || conn->outCount < 0 || conn->inStart < 0 || conn->inEnd < conn->inStart) return -1;
    return conn->outCount + (conn->inEnd - conn->inStart);
}
