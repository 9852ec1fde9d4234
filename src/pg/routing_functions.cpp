// SQL-callable functions of routing: the conninfo check behind pg_rproxy_upstreams and the
// pg_rproxy_servers view.
#include <string>
#include <vector>

#include "proxy/connect_spec.hpp"
#include "pg/server_table.hpp"
#include "pg/pg_guard.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_conninfo_problem);
}

// NULL when libpq can use the conninfo as an upstream; otherwise why not (a row is refused so).
namespace {

// The conninfo argument, and a text result or NULL when empty: the two functions below differ only
// in what they make of the conninfo.
template <class Answer>
Datum text_from_conninfo(FunctionCallInfo fcinfo, Answer answer) {
    return rproxy::pg::invoke_cpp([&]() -> Datum {
        std::string conninfo;
        rproxy::pg::pg_call([&] {
            char* c = text_to_cstring(PG_GETARG_TEXT_PP(0));
            conninfo.assign(c);
            pfree(c);
        });
        std::string result = answer(conninfo);
        if (result.empty()) PG_RETURN_NULL();
        Datum out = Datum(0);
        rproxy::pg::pg_call([&] { out = PointerGetDatum(cstring_to_text(result.c_str())); });
        return out;
    });
}

}  // namespace

extern "C" Datum pg_rproxy_conninfo_problem(PG_FUNCTION_ARGS) {
    return text_from_conninfo(fcinfo, [](const std::string& conninfo) { return rproxy::conninfo_problem(conninfo); });
}

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_conninfo_user);
}

// The user keyword of a conninfo, NULL when it sets none (or does not parse).
extern "C" Datum pg_rproxy_conninfo_user(PG_FUNCTION_ARGS) {
    return text_from_conninfo(fcinfo, [](const std::string& conninfo) {
        auto pairs = rproxy::parse_conninfo(conninfo, nullptr);
        const std::string* user = pairs ? rproxy::conninfo_value(*pairs, "user") : nullptr;
        return user ? *user : std::string();
    });
}

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_server_list);
}

// The pg_rproxy_servers view.
extern "C" Datum pg_rproxy_server_list(PG_FUNCTION_ARGS) {
    return rproxy::pg::invoke_cpp([&]() -> Datum {
        std::vector<rproxy::pg::ServerRow> rows;
        rproxy::pg::server_table_scan([&](const rproxy::pg::ServerRow& r) { rows.push_back(r); });
        rproxy::pg::pg_call([&] {
            InitMaterializedSRF(fcinfo, 0);
            ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            for (const auto& r : rows) {
                Datum values[13];
                bool nulls[13] = {};
                nulls[0] = r.upstream.empty();
                values[0] = nulls[0] ? Datum(0) : CStringGetTextDatum(r.upstream.c_str());
                values[1] = CStringGetTextDatum(r.host.c_str());
                nulls[2] = r.port.empty();  // the upstream's own row
                values[2] = Int32GetDatum(atoi(r.port.c_str()));
                values[3] = CStringGetTextDatum(rproxy::server_role_name(r.check.role));
                values[4] = BoolGetDatum(r.check.healthy);
                nulls[5] = !r.checked;
                values[5] = TimestampTzGetDatum(r.last_check);
                nulls[6] = r.check.error.empty();
                values[6] = nulls[6] ? Datum(0) : CStringGetTextDatum(r.check.error.c_str());
                nulls[7] = r.check.replay_lag_ms < 0;
                if (!nulls[7]) {
                    Interval* lag = static_cast<Interval*>(palloc0(sizeof(Interval)));
                    lag->time = r.check.replay_lag_ms * 1000;
                    values[7] = IntervalPGetDatum(lag);
                }
                values[8] = Int32GetDatum(static_cast<int32>(r.busy));
                values[9] = Int32GetDatum(static_cast<int32>(r.idle));
                values[10] = Int32GetDatum(static_cast<int32>(r.clients));
                values[11] = Int64GetDatum(static_cast<int64>(r.statements));
                values[12] = Int64GetDatum(static_cast<int64>(r.cache_hits));
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
        });
        return Datum(0);
    });
}
