// SQL-callable functions of the extension. Each body runs inside invoke_cpp (no C++ exception
// reaches PostgreSQL) and calls PostgreSQL only through pg_call or after all C++ work is done.
#include <string>
#include <vector>

#include "pg/pg_guard.hpp"
#include "pg/statement_classifier.hpp"
#include "pg/worker_stats.hpp"

bool pg_rproxy_loaded_via_preload();

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_is_preloaded);
PG_FUNCTION_INFO_V1(pg_rproxy_classify);
PG_FUNCTION_INFO_V1(pg_rproxy_worker_stats);
}

using rproxy::pg::invoke_cpp;
using rproxy::pg::pg_call;

extern "C" Datum pg_rproxy_is_preloaded(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(pg_rproxy_loaded_via_preload()); }

// pg_rproxy_classify(sql text, OUT allowed bool, OUT kinds text[], OUT sqlstate text,
//                    OUT reason text, OUT error_position int)
extern "C" Datum pg_rproxy_classify(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        std::string sql;
        pg_call([&] {
            char* s = text_to_cstring(PG_GETARG_TEXT_PP(0));
            sql.assign(s);
        });
        rproxy::Verdict v = rproxy::pg::classify_statement(sql);

        std::vector<const char*> kinds;
        for (const auto& k : v.kinds) kinds.push_back(k.c_str());
        Datum result = 0;
        pg_call([&] {
            TupleDesc tupdesc;
            if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "return type must be a row type");
            tupdesc = BlessTupleDesc(tupdesc);
            Datum values[5];
            bool nulls[5] = {false, false, false, false, false};
            values[0] = BoolGetDatum(v.allowed);
            Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (kinds.size() + 1)));
            for (size_t i = 0; i < kinds.size(); ++i) elems[i] = CStringGetTextDatum(kinds[i]);
            values[1] = PointerGetDatum(construct_array(elems, static_cast<int>(kinds.size()), TEXTOID, -1, false, TYPALIGN_INT));
            if (v.sqlstate.empty()) nulls[2] = nulls[3] = true;
            else {
                values[2] = CStringGetTextDatum(v.sqlstate.c_str());
                values[3] = CStringGetTextDatum(v.message.c_str());
            }
            if (v.position > 0) values[4] = Int32GetDatum(v.position);
            else nulls[4] = true;
            result = HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
        });
        return result;
    });
}

// One row per running listener worker, for the pg_rproxy_workers view.
extern "C" Datum pg_rproxy_worker_stats(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        pg_call([&] {
            InitMaterializedSRF(fcinfo, 0);
            ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            for (int i = 0; i < rproxy::pg::worker_stats_slots(); ++i) {
                rproxy::pg::WorkerStatsRow row;
                if (!rproxy::pg::worker_stats_read(i, &row)) continue;
                Datum values[6];
                bool nulls[6] = {false, false, false, false, false, false};
                values[0] = Int32GetDatum(row.slot);
                values[1] = Int32GetDatum(row.pid);
                values[2] = Int32GetDatum(static_cast<int32>(row.counters.clients));
                values[3] = Int32GetDatum(static_cast<int32>(row.counters.upstream_busy));
                values[4] = Int32GetDatum(static_cast<int32>(row.counters.upstream_idle));
                values[5] = Int64GetDatum(static_cast<int64>(row.counters.statements));
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
        });
        return Datum(0);
    });
}
