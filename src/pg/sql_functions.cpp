// SQL-callable functions of the extension. Each body runs inside invoke_cpp (no C++ exception
// reaches PostgreSQL) and calls PostgreSQL only through pg_call or after all C++ work is done.
#include <string>
#include <vector>

#include "core/firewall_policy.hpp"
#include "core/quick_scan.hpp"
#include "pg/connection_limits.hpp"
#include "pg/gucs.hpp"
#include "pg/redis_invalidation.hpp"
#include "pg/result_cache.hpp"
#include "pg/session_table.hpp"
#include "pg/statement_parser.hpp"
#include "pg/worker_stats.hpp"
#include "pg/pg_guard.hpp"

bool pg_rproxy_loaded_via_preload();

extern "C" {
PG_FUNCTION_INFO_V1(pg_rproxy_is_preloaded);
PG_FUNCTION_INFO_V1(pg_rproxy_classify);
PG_FUNCTION_INFO_V1(pg_rproxy_scan);
PG_FUNCTION_INFO_V1(pg_rproxy_worker_stats);
PG_FUNCTION_INFO_V1(pg_rproxy_rejection_stats);
PG_FUNCTION_INFO_V1(pg_rproxy_connection_event_stats);
PG_FUNCTION_INFO_V1(pg_rproxy_session_list);
PG_FUNCTION_INFO_V1(pg_rproxy_cache_reset);
PG_FUNCTION_INFO_V1(pg_rproxy_cache_invalidate);
PG_FUNCTION_INFO_V1(pg_rproxy_cache_invalidate_key);
PG_FUNCTION_INFO_V1(pg_rproxy_cache_entries);
PG_FUNCTION_INFO_V1(pg_rproxy_cache_stats);
}

using rproxy::pg::invoke_cpp;
using rproxy::pg::pg_call;

extern "C" Datum pg_rproxy_is_preloaded(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(pg_rproxy_loaded_via_preload()); }

// pg_rproxy_classify(sql text) -> one row per statement (statement, kind, allowed, cacheable,
// sqlstate, reason, error_position); a parser error gives one row with statement NULL.
extern "C" Datum pg_rproxy_classify(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        std::string sql;
        pg_call([&] {
            char* s = text_to_cstring(PG_GETARG_TEXT_PP(0));
            sql.assign(s);
        });
        rproxy::ParsedQuery parsed = rproxy::pg::parse_statements(sql);
        rproxy::Verdict v = rproxy::evaluate(parsed, rproxy::pg::firewall_config(), nullptr);
        pg_call([&] {
            InitMaterializedSRF(fcinfo, 0);
            ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            Datum values[7];
            bool nulls[7];
            if (v.reason == rproxy::RejectReason::SyntaxError) {
                memset(nulls, true, sizeof nulls);
                nulls[2] = nulls[3] = nulls[4] = nulls[5] = false;
                values[2] = BoolGetDatum(false);
                values[3] = BoolGetDatum(false);
                values[4] = CStringGetTextDatum(v.sqlstate.c_str());
                values[5] = CStringGetTextDatum(v.message.c_str());
                if (v.position > 0) {
                    nulls[6] = false;
                    values[6] = Int32GetDatum(v.position);
                }
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
                return;
            }
            for (size_t i = 0; i < v.statements.size(); ++i) {
                const rproxy::StatementVerdict& st = v.statements[i];
                memset(nulls, false, sizeof nulls);
                values[0] = Int32GetDatum(static_cast<int32>(i + 1));
                values[1] = CStringGetTextDatum(st.kind.c_str());
                values[2] = BoolGetDatum(st.allowed);
                values[3] = BoolGetDatum(st.cacheable);
                if (st.allowed) {
                    nulls[4] = nulls[5] = true;
                } else {
                    values[4] = CStringGetTextDatum("25006");
                    values[5] = CStringGetTextDatum(st.reason.c_str());
                }
                nulls[6] = true;
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
        });
        return Datum(0);
    });
}

namespace {
// Placeholders as ?<kind>, readable in psql.
std::string printable_shape(std::string shape) {
    for (char& c : shape)
        if (c == '\x01') c = '?';
    return shape;
}
}  // namespace

// pg_rproxy_scan(sql text) -> (normalized, shape, quick_normalized, quick_shape): the server's
// scanner's forms, and the quick scanner's (NULL when it leaves the string to the server's).
extern "C" Datum pg_rproxy_scan(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        std::string sql;
        pg_call([&] {
            char* s = text_to_cstring(PG_GETARG_TEXT_PP(0));
            sql.assign(s);
        });
        rproxy::ScannedQuery server = rproxy::pg::scan_statements(sql);
        rproxy::ScannedQuery quick;
        bool quick_ok = rproxy::quick_scan(sql, quick);
        std::string texts[4] = {server.normalized, printable_shape(server.shape), quick.normalized,
                                printable_shape(quick.shape)};
        bool nulls[4] = {!server.ok, !server.ok || (server.shape.empty() && !server.normalized.empty()), !quick_ok,
                         !quick_ok};
        Datum result = 0;
        pg_call([&] {
            TupleDesc desc;
            if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
                ereport(ERROR, (errmsg("pg_rproxy_scan must return a record")));
            desc = BlessTupleDesc(desc);
            Datum values[4];
            for (int i = 0; i < 4; ++i) values[i] = nulls[i] ? Datum(0) : CStringGetTextDatum(texts[i].c_str());
            result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
        });
        return result;
    });
}

// Rejections by reason over all workers, for the pg_rproxy_rejections view.
extern "C" Datum pg_rproxy_rejection_stats(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        uint64_t counts[rproxy::kRejectReasonCount];
        rproxy::pg::worker_stats_rejections(counts);
        pg_call([&] {
            InitMaterializedSRF(fcinfo, 0);
            ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            for (int r = 1; r < rproxy::kRejectReasonCount; ++r) {
                Datum values[2] = {CStringGetTextDatum(rproxy::reject_reason_name(static_cast<rproxy::RejectReason>(r))),
                                   Int64GetDatum(static_cast<int64>(counts[r]))};
                bool nulls[2] = {false, false};
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
        });
        return Datum(0);
    });
}

// Authenticated clients over all workers, for the pg_rproxy_sessions view.
extern "C" Datum pg_rproxy_session_list(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        std::vector<rproxy::pg::SessionRow> rows;
        rproxy::pg::session_table_scan([&](const rproxy::pg::SessionRow& r) { rows.push_back(r); });
        pg_call([&] {
            InitMaterializedSRF(fcinfo, 0);
            ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            auto text_or_null = [](const std::string& s, bool* null) {
                *null = s.empty();
                return s.empty() ? Datum(0) : CStringGetTextDatum(s.c_str());
            };
            for (const auto& r : rows) {
                Datum values[16];
                bool nulls[16] = {};
                values[0] = Int32GetDatum(r.slot);
                values[1] = Int32GetDatum(r.worker_pid);
                values[2] = Int32GetDatum(r.info.backend_pid);
                values[3] = text_or_null(r.info.client_address, &nulls[3]);
                values[4] = text_or_null(r.info.role, &nulls[4]);
                values[5] = text_or_null(r.info.database, &nulls[5]);
                values[6] = text_or_null(r.info.upstream_user, &nulls[6]);
                values[7] = text_or_null(r.info.auth_method, &nulls[7]);
                values[8] = BoolGetDatum(r.info.tls);
                values[9] = text_or_null(r.info.tls_version, &nulls[9]);
                values[10] = text_or_null(r.info.server_name, &nulls[10]);
                values[11] = TimestampTzGetDatum(r.connected_at);
                values[12] = text_or_null(r.info.upstream, &nulls[12]);
                values[13] = text_or_null(r.info.server, &nulls[13]);
                values[14] = Int32GetDatum(r.info.listen_port);
                nulls[14] = r.info.listen_port == 0;
                values[15] = text_or_null(r.info.pinned, &nulls[15]);
                // Before ALTER EXTENSION UPDATE to 0.7.0 (0.8.0) the descriptor has the first 12
                // (15) only, and only those are read.
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
        });
        return Datum(0);
    });
}

// Connections by what happened to them, for the pg_rproxy_connection_events view.
extern "C" Datum pg_rproxy_connection_event_stats(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        uint64_t counts[rproxy::kConnEventCount];
        rproxy::pg::read_conn_events(counts);
        pg_call([&] {
            InitMaterializedSRF(fcinfo, 0);
            ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
            for (int i = 0; i < rproxy::kConnEventCount; ++i) {
                Datum values[2] = {CStringGetTextDatum(rproxy::conn_event_name(static_cast<rproxy::ConnEvent>(i))),
                                   Int64GetDatum(static_cast<int64>(counts[i]))};
                bool nulls[2] = {false, false};
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
        });
        return Datum(0);
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
                Datum values[7];
                bool nulls[7] = {false, false, false, false, false, false, false};
                values[0] = Int32GetDatum(row.slot);
                values[1] = Int32GetDatum(row.pid);
                values[2] = Int32GetDatum(static_cast<int32>(row.counters.clients));
                values[3] = Int32GetDatum(static_cast<int32>(row.counters.upstream_busy));
                values[4] = Int32GetDatum(static_cast<int32>(row.counters.upstream_idle));
                values[5] = Int64GetDatum(static_cast<int64>(row.counters.statements));
                // parked_clients came with 0.6.0: a gateway not yet updated has six columns.
                values[6] = Int32GetDatum(static_cast<int32>(row.counters.parked_clients));
                tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
            }
        });
        return Datum(0);
    });
}

namespace {
// What an SQL function's Redis step left: nothing, or a reset this gateway's workers owe Redis
// (they read nothing from it until they paid it) and a WARNING.
void settle_redis(const std::string& unreached) {
    if (unreached.empty()) return;
    pg_call([&] {
        rproxy::pg::cache_l2_owe_reset();
        rproxy::pg::warn_redis_unreached(unreached);
    });
}
}  // namespace

extern "C" Datum pg_rproxy_cache_reset(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        uint64_t n = 0;
        pg_call([&] { n = rproxy::pg::cache_reset(); });
        std::string unreached = rproxy::pg::redis_invalidate_all();
        settle_redis(unreached);
        return Int64GetDatum(static_cast<int64>(n));
    });
}

extern "C" Datum pg_rproxy_cache_invalidate(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        uint64_t n = 0;
        std::string relation;
        pg_call([&] {
            char* rel = text_to_cstring(PG_GETARG_TEXT_PP(0));
            n = rproxy::pg::cache_invalidate(rel);
            relation = rel;
        });
        std::string unreached = rproxy::pg::redis_invalidate_relation(relation);
        settle_redis(unreached);
        return Int64GetDatum(static_cast<int64>(n));
    });
}

// pg_rproxy_cache_invalidate_key(prefix text): the entries whose parameter hook CACHE_KEY starts
// with prefix, in both levels and on every gateway.
extern "C" Datum pg_rproxy_cache_invalidate_key(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        uint64_t n = 0;
        std::string prefix;
        pg_call([&] {
            char* p = text_to_cstring(PG_GETARG_TEXT_PP(0));
            if (!*p) ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("the caller key prefix must not be empty")));
            n = rproxy::pg::cache_invalidate_key(p);
            prefix = p;
        });
        std::string unreached = rproxy::pg::redis_invalidate_caller_key(prefix);
        settle_redis(unreached);
        return Int64GetDatum(static_cast<int64>(n));
    });
}

namespace {

Datum seconds_interval(double secs) {
    auto* iv = static_cast<Interval*>(palloc0(sizeof(Interval)));
    iv->time = static_cast<int64>((secs < 0 ? 0 : secs) * USECS_PER_SEC);
    return IntervalPGetDatum(iv);
}

void emit_entry(const rproxy::pg::CacheEntryView& v, void* arg) {
    auto* rsinfo = static_cast<ReturnSetInfo*>(arg);
    Datum values[9];
    bool nulls[9] = {false, false, false, false, false, false, false, false, false};
    values[0] = CStringGetTextDatum(psprintf("%016llx%016llx", static_cast<unsigned long long>(v.h1),
                                             static_cast<unsigned long long>(v.h2)));
    values[1] = CStringGetTextDatum(v.statement);
    values[2] = CStringGetTextDatum(v.role);
    values[3] = Int64GetDatum(static_cast<int64>(v.bytes));
    values[4] = Int64GetDatum(static_cast<int64>(v.rows));
    values[5] = Int64GetDatum(static_cast<int64>(v.hits));
    values[6] = seconds_interval(v.age_seconds);
    values[7] = seconds_interval(v.ttl_left_seconds);
    values[8] = DirectFunctionCall2Coll(text_to_array, C_COLLATION_OID, CStringGetTextDatum(v.relations),
                                        CStringGetTextDatum(","));
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

}  // namespace

extern "C" Datum pg_rproxy_cache_entries(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        pg_call([&] {
            InitMaterializedSRF(fcinfo, 0);
            rproxy::pg::cache_entries(emit_entry, fcinfo->resultinfo);
        });
        return Datum(0);
    });
}

extern "C" Datum pg_rproxy_cache_stats(PG_FUNCTION_ARGS) {
    return invoke_cpp([&]() -> Datum {
        rproxy::pg::CacheStats s = rproxy::pg::cache_stats();
        Datum result = 0;
        pg_call([&] {
            TupleDesc tupdesc;
            if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "return type must be a row type");
            tupdesc = BlessTupleDesc(tupdesc);
            constexpr int kFields = 10 + rproxy::kUncacheableCount + rproxy::kL2CounterCount;
            uint64_t fields[kFields] = {s.hits, s.misses, s.coalesced, s.evictions, s.expirations, s.stores,
                                        s.entries, s.max_entries, s.bytes_used, s.bytes_budget};
            for (int i = 0; i < rproxy::kUncacheableCount; ++i) fields[10 + i] = s.uncacheable[i];
            for (int i = 0; i < rproxy::kL2CounterCount; ++i) fields[10 + rproxy::kUncacheableCount + i] = s.l2[i];
            // An older install's function declares fewer columns: heap_form_tuple reads only natts.
            if (tupdesc->natts > kFields) elog(ERROR, "pg_rproxy_cache_stats_internal declares more columns than this library has");
            Datum values[kFields];
            bool nulls[kFields];
            for (int i = 0; i < kFields; ++i) {
                values[i] = Int64GetDatum(static_cast<int64>(fields[i]));
                nulls[i] = false;
            }
            result = HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
        });
        return result;
    });
}

namespace rproxy::pg {
void warn_redis_unreached(const std::string& message) {
    ereport(WARNING, (errmsg("%s", message.c_str()),
                      errdetail("This gateway's workers reset Redis once they reach it, and read nothing from it until then; "
                                "other gateways keep their shared-memory entries until that reset reaches them.")));
}
}  // namespace rproxy::pg
