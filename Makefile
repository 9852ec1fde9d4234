# PGXS build of the pg_rproxy extension (C++20, Boost.Asio, libpq).
MODULE_big = pg_rproxy
EXTENSION  = pg_rproxy
DATA       = sql/pg_rproxy--0.1.0.sql sql/pg_rproxy--0.1.0--0.2.0.sql sql/pg_rproxy--0.2.0--0.3.0.sql sql/pg_rproxy--0.3.0--0.4.0.sql sql/pg_rproxy--0.4.0--0.5.0.sql sql/pg_rproxy--0.5.0--0.6.0.sql sql/pg_rproxy--0.6.0--0.7.0.sql sql/pg_rproxy--0.7.0--0.8.0.sql sql/pg_rproxy--0.8.0--0.9.0.sql sql/pg_rproxy--0.9.0--0.10.0.sql
PGFILEDESC = "pg_rproxy - read-only caching PostgreSQL proxy"

SRCS = $(sort $(wildcard src/core/*.cpp src/auth/*.cpp src/protocol/*.cpp src/proxy/*.cpp src/pg/*.cpp))
# C: the one file that reads libpq's private connection struct (pg/libpq_unread.c)
C_SRCS = $(wildcard src/pg/*.c)
OBJS = $(SRCS:.cpp=.o) $(C_SRCS:.c=.o)

# pg_regress: sql/<name>.sql against expected/<name>.out (run against a server that preloads us)
REGRESS    = classify firewall cache workers upgrade

PG_CPPFLAGS = -Isrc -I$(shell $(PG_CONFIG) --includedir)
PG_CXXFLAGS = -std=c++20 -Wall -Wno-register -Wno-missing-field-initializers
SHLIB_LINK  = -L$(shell $(PG_CONFIG) --libdir) -lpq -lhiredis -lssl -lcrypto -lstdc++ -lpthread

# JIT inlining of proxy code buys nothing; skip the clang bitcode pass for C++20 sources.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Objects depend on every header: small project, correctness over minimal rebuilds.
$(OBJS): $(wildcard src/*/*.hpp)
