// Included by every header of the pure layers (core, protocol, proxy). Those layers must build and
// be unit-tested without a PostgreSQL server, so pulling server headers into them is an error.
// Only files under src/pg/ may include server headers, and they do so through pg/server_headers.hpp,
// which defines PG_RPROXY_PG_LAYER first.
#pragma once

#if (defined(POSTGRES_H) || defined(C_H)) && !defined(PG_RPROXY_PG_LAYER)
#error "PostgreSQL server headers must not be included in the pure C++ layers (core/protocol/proxy)"
#endif

#define PG_RPROXY_PURE_LAYER_SEEN 1
