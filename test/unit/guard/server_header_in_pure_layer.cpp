// Must fail to compile: a pure-layer header seen after PostgreSQL server headers.
extern "C" {
#include "postgres.h"
}
#include "core/verdict.hpp"
