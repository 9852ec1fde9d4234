// Must compile: the pg layer's way of combining pure headers with server headers.
#include "core/verdict.hpp"
#include "pg/server_headers.hpp"
#include "core/error_fields.hpp"
