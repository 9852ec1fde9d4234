// SQL-callable functions of routing: the conninfo check behind pg_rproxy_upstreams.
#include <string>

#include "proxy/connect_spec.hpp"
#include "pg/pg_guard.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_conninfo_problem);
}

// NULL when libpq can use the conninfo as an upstream; otherwise why not (a row is refused so).
extern "C" Datum pg_rproxy_conninfo_problem(PG_FUNCTION_ARGS) {
    return rproxy::pg::invoke_cpp([&]() -> Datum {
        std::string conninfo;
        rproxy::pg::pg_call([&] {
            char* c = text_to_cstring(PG_GETARG_TEXT_PP(0));
            conninfo.assign(c);
            pfree(c);
        });
        std::string problem = rproxy::conninfo_problem(conninfo);
        if (problem.empty()) PG_RETURN_NULL();
        Datum out = Datum(0);
        rproxy::pg::pg_call([&] { out = PointerGetDatum(cstring_to_text(problem.c_str())); });
        return out;
    });
}
