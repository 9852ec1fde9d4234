/* Bytes libpq has received on a connection and not yet consumed (a partial message), read from
 * libpq's private connection struct: no public API shows them. -1 when the struct does not look
 * like the one this was built against (sanity-checked against public accessors). */
#pragma once
#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif
int rproxy_libpq_unread_bytes(const PGconn* conn);
/* Bytes libpq holds to send (its output buffer), -1 as above: a connection taken over while
 * the server asks for authentication must have sent its whole startup packet. */
int rproxy_libpq_unsent_bytes(const PGconn* conn);
#ifdef __cplusplus
}
#endif
