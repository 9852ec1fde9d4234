#include "pg/auth_catalog.hpp"

#include "pg/pg_guard.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "utils/snapmgr.h"
}

namespace rproxy::pg {

namespace {

// Plain C rows filled inside PG_TRY (no C++ objects there), turned into AuthSnapshot afterwards.
struct RawRule {
    int position;
    char* fields[6];  // connection_type, databases, roles, address, method, upstream (NULL allowed)
};

struct RawAuth {
    bool exists;
    Oid oid;
    bool can_login;
    char* secret;
    bool has_valid_until;
    int64 valid_until;
    int conn_limit;
    int ngroups;
    char** groups;
    bool rules_table;
    int nrules;
    RawRule* rules;
    char* map_user;
    char* map_password;
    bool has_mapping;
};

char* copy_value(int row, int col) {
    char* v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
    return v ? MemoryContextStrdup(TopTransactionContext, v) : nullptr;
}

void read_role(const char* role, RawAuth* out) {
    HeapTuple tup = SearchSysCache1(AUTHNAME, CStringGetDatum(role));
    if (!HeapTupleIsValid(tup)) return;
    auto* form = reinterpret_cast<Form_pg_authid>(GETSTRUCT(tup));
    out->exists = true;
    out->oid = form->oid;
    out->can_login = form->rolcanlogin;
    out->conn_limit = form->rolconnlimit;
    bool isnull = true;
    Datum d = SysCacheGetAttr(AUTHNAME, tup, Anum_pg_authid_rolpassword, &isnull);
    if (!isnull) out->secret = MemoryContextStrdup(TopTransactionContext, TextDatumGetCString(d));
    d = SysCacheGetAttr(AUTHNAME, tup, Anum_pg_authid_rolvaliduntil, &isnull);
    if (!isnull) {
        out->has_valid_until = true;
        out->valid_until = static_cast<int64>(timestamptz_to_time_t(DatumGetTimestampTz(d)));
    }
    ReleaseSysCache(tup);
}

void read_tables(const char* role, RawAuth* out) {
    Oid argtypes[1] = {TEXTOID};
    Datum args[1] = {CStringGetTextDatum(role)};
    if (SPI_execute_with_args("SELECT g.rolname::text FROM pg_roles m, pg_roles g "
                              "WHERE m.rolname = $1::name AND pg_has_role(m.oid, g.oid, 'MEMBER')", 1, argtypes,
                              args, nullptr, true, 0) == SPI_OK_SELECT) {
        out->ngroups = static_cast<int>(SPI_processed);
        out->groups = static_cast<char**>(MemoryContextAllocZero(TopTransactionContext, sizeof(char*) * (SPI_processed + 1)));
        for (uint64 i = 0; i < SPI_processed; i++) out->groups[i] = copy_value(static_cast<int>(i), 1);
    }
    if (SPI_execute("SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                    "WHERE e.extname = 'pg_rproxy'", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        return;
    char* schema = copy_value(0, 1);
    out->rules_table = true;
    StringInfoData q;
    initStringInfo(&q);
    appendStringInfo(&q, "SELECT position, connection_type, databases, roles, address, method, upstream "
                         "FROM %s.pg_rproxy_auth_rules ORDER BY position", schema);
    if (SPI_execute(q.data, true, 0) == SPI_OK_SELECT) {
        out->nrules = static_cast<int>(SPI_processed);
        out->rules = static_cast<RawRule*>(MemoryContextAllocZero(TopTransactionContext, sizeof(RawRule) * (SPI_processed + 1)));
        for (uint64 i = 0; i < SPI_processed; i++) {
            char* pos = copy_value(static_cast<int>(i), 1);
            out->rules[i].position = pos ? atoi(pos) : 0;
            for (int f = 0; f < 6; f++) out->rules[i].fields[f] = copy_value(static_cast<int>(i), f + 2);
        }
    }
    resetStringInfo(&q);
    appendStringInfo(&q, "SELECT upstream_user, upstream_password FROM %s.pg_rproxy_role_mapping "
                         "WHERE gateway_role = $1::name", schema);
    if (SPI_execute_with_args(q.data, 1, argtypes, args, nullptr, true, 1) == SPI_OK_SELECT && SPI_processed == 1) {
        out->has_mapping = true;
        out->map_user = copy_value(0, 1);
        out->map_password = copy_value(0, 2);
    }
}

// Fills raw inside a transaction; returns the error message (palloc'd in ctx) or nullptr.
char* read_guarded(const char* role, RawAuth* raw, MemoryContext ctx) {
    char* volatile failure = nullptr;
    PG_TRY();
    {
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        read_role(role, raw);
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        read_tables(role, raw);
        SPI_finish();
        PopActiveSnapshot();
        // Copies live in TopTransactionContext: the caller converts them before committing.
    }
    PG_CATCH();
    {
        ErrorData* e = take_error(ctx);
        failure = MemoryContextStrdup(ctx, e->message ? e->message : "unknown error");
        FreeErrorData(e);
        AbortCurrentTransaction();
        MemoryContextSwitchTo(ctx);
    }
    PG_END_TRY();
    return failure;
}

std::string text_or_empty(const char* s) { return s ? s : ""; }

}  // namespace

AuthSnapshot read_auth_snapshot(const std::string& role) {
    AuthSnapshot snap;
    MemoryContext ctx = CurrentMemoryContext;
    RawAuth raw;
    memset(&raw, 0, sizeof raw);
    raw.conn_limit = -1;
    if (char* failure = read_guarded(role.c_str(), &raw, ctx)) {
        snap.error = failure;
        pfree(failure);
        return snap;
    }
    snap.role.exists = raw.exists;
    snap.role.oid = raw.oid;
    snap.role.can_login = raw.can_login;
    snap.role.secret = text_or_empty(raw.secret);
    if (raw.has_valid_until) snap.role.valid_until = raw.valid_until;
    snap.role.conn_limit = raw.conn_limit;
    for (int i = 0; i < raw.ngroups; i++)
        if (raw.groups[i]) snap.member_of.insert(raw.groups[i]);
    snap.rules_table = raw.rules_table;
    for (int i = 0; i < raw.nrules; i++) {
        const RawRule& r = raw.rules[i];
        auth::AuthRule rule;
        rule.position = r.position;
        rule.connection_type = text_or_empty(r.fields[0]);
        rule.databases = text_or_empty(r.fields[1]);
        rule.roles = text_or_empty(r.fields[2]);
        rule.address = r.fields[3] ? r.fields[3] : "all";  // NULL: any address
        auto method = auth::parse_method(text_or_empty(r.fields[4]));
        rule.upstream = text_or_empty(r.fields[5]);
        auto problem = rule_error(rule);
        if (!method) problem = "unknown method \"" + text_or_empty(r.fields[4]) + "\"";
        if (problem) snap.rule_problems.push_back("rule " + std::to_string(r.position) + ": " + *problem);
        else rule.method = *method;
        snap.rules.push_back(std::move(rule));
    }
    if (raw.has_mapping) snap.mapping = UpstreamCredentials{text_or_empty(raw.map_user), text_or_empty(raw.map_password)};
    if (!commit_guarded(ctx)) {
        snap = AuthSnapshot();
        snap.error = "could not commit the catalog read";
    }
    return snap;
}

}  // namespace rproxy::pg
