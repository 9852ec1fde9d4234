#include "pg/statement_hook.hpp"

#include "pg/pg_guard.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "parser/parse_func.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/varlena.h"
}

namespace rproxy::pg {

namespace {

char* statement_hook_name = nullptr;

// The loop waits for the hook, as it does for the router: a hook that hangs must not stall the
// worker's other clients for long.
constexpr int kHookTimeoutMs = 5000;

// The context argument as jsonb, kept from one call to the next while it is the same text (a
// client's statements share it): parsing it into jsonb was a third of a trivial hook's cost.
Datum kept_context = Datum(0);
std::string* kept_context_text = nullptr;

// Plain C, filled inside PG_TRY: no C++ object lives in that frame.
struct RawHookCall {
    const char* name;
    Oid function;  // in: the resolved function, InvalidOid to resolve name; out: what was resolved
    const char* sql;
    int sql_len;
    const char* context;
    bool reuse_context;  // kept_context is this context
    bool made_context;   // kept_context was made from this context
    bool unusable;  // name is not a function (text, jsonb) returning text
    bool isnull;
    char* result;  // in the caller's memory context
    int result_len;
    ErrorData* error;
};

// The function (text, jsonb) RETURNS text that name designates, or InvalidOid. In a transaction.
Oid resolve(const char* name) {
    List* names = stringToQualifiedNameList(name);
    Oid args[2] = {TEXTOID, JSONBOID};
    Oid fn = LookupFuncName(names, 2, args, true);
    if (!OidIsValid(fn) || get_func_rettype(fn) != TEXTOID || get_func_retset(fn) ||
        get_func_prokind(fn) != PROKIND_FUNCTION)
        return InvalidOid;
    return fn;
}

void call_guarded(RawHookCall* c, MemoryContext ctx) {
    PG_TRY();
    {
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        // Dropped (or replaced) since it was resolved: the name is looked up again.
        if (OidIsValid(c->function) && !SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(c->function)))
            c->function = InvalidOid;
        if (!OidIsValid(c->function)) {
            c->function = resolve(c->name);
            c->unusable = !OidIsValid(c->function);
        }
        if (!c->unusable) {
            FmgrInfo flinfo;
            fmgr_info(c->function, &flinfo);
            LOCAL_FCINFO(fcinfo, 2);
            InitFunctionCallInfoData(*fcinfo, &flinfo, 2, DEFAULT_COLLATION_OID, nullptr, nullptr);
            fcinfo->args[0].value = PointerGetDatum(cstring_to_text_with_len(c->sql, c->sql_len));
            fcinfo->args[0].isnull = false;
            if (!c->reuse_context) {
                if (kept_context) pfree(DatumGetPointer(kept_context));
                kept_context = Datum(0);
                MemoryContext in_transaction = MemoryContextSwitchTo(TopMemoryContext);
                Datum jsonb = DirectFunctionCall1(jsonb_in, CStringGetDatum(c->context));
                MemoryContextSwitchTo(in_transaction);
                kept_context = jsonb;
                c->made_context = true;
            }
            fcinfo->args[1].value = kept_context;
            fcinfo->args[1].isnull = false;
            enable_timeout_after(STATEMENT_TIMEOUT, kHookTimeoutMs);
            Datum result = FunctionCallInvoke(fcinfo);
            disable_timeout(STATEMENT_TIMEOUT, true);  // keeps the indicator for the check below
            if (get_timeout_indicator(STATEMENT_TIMEOUT, true)) QueryCancelPending = false;  // fired just after it returned
            c->isnull = fcinfo->isnull;
            if (!c->isnull) {
                text* t = DatumGetTextPP(result);
                c->result_len = static_cast<int>(VARSIZE_ANY_EXHDR(t));
                c->result = static_cast<char*>(MemoryContextAlloc(ctx, static_cast<Size>(c->result_len) + 1));
                memcpy(c->result, VARDATA_ANY(t), static_cast<size_t>(c->result_len));
                c->result[c->result_len] = '\0';
            }
        }
        PopActiveSnapshot();
        CommitTransactionCommand();
        MemoryContextSwitchTo(ctx);
    }
    PG_CATCH();
    {
        disable_timeout(STATEMENT_TIMEOUT, false);
        MemoryContextSwitchTo(ctx);
        c->error = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        MemoryContextSwitchTo(ctx);
    }
    PG_END_TRY();
}

ErrorFields client_error(const ErrorData* e) {
    ErrorFields f = ErrorFields::make("ERROR", unpack_sql_state(e->sqlerrcode), e->message ? e->message : "unknown error");
    if (e->detail) f.add('D', e->detail);
    if (e->hint) f.add('H', e->hint);
    return f;
}

// A schema-qualified name only: resolved with the worker's search_path, an unqualified name could
// be taken over by a same-named function in a schema searched first. (Checked when the hook is
// asked, not by a GUC check hook: at startup a refused value would fall back to '', no hook at
// all, and statements would go unfiltered.)
bool schema_qualified(const char* name) {
    char* copy = pstrdup(name);
    List* parts = nullptr;
    bool ok = SplitIdentifierString(copy, '.', &parts) && list_length(parts) == 2;
    list_free(parts);
    pfree(copy);
    return ok;
}

}  // namespace

void define_statement_hook_guc() {
    DefineCustomStringVariable("pg_rproxy.statement_hook",
                               "Function (statement text, context jsonb) returning text, asked about every statement "
                               "before the firewall judges it: its answer is what runs; NULL refuses the statement.",
                               "Empty: none. Schema-qualified. Resolved again at each configuration reload.",
                               &statement_hook_name, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
}

bool StatementHook::set() const { return statement_hook_name && *statement_hook_name; }

// Not a usable hook: said once in the server log, and every statement refused (a hook that filters
// must not be bypassed by a typo) until the setting is reloaded.
HookAnswer StatementHook::unusable(std::string problem) {
    problem_ = std::move(problem);
    resolved_ = true;
    function_ = InvalidOid;
    std::string log = problem_;
    pg_call([&] { ereport(WARNING, (errmsg_internal("%s", log.c_str()))); });
    HookAnswer answer;
    answer.error = ErrorFields::make("ERROR", "42883", problem_);
    return answer;
}

HookAnswer StatementHook::call(const std::string& sql, const std::string& context) {
    HookAnswer answer;
    std::string name = statement_hook_name ? statement_hook_name : "";
    if (!resolved_) {
        function_ = InvalidOid;
        problem_.clear();
    }
    if (!resolved_) {
        bool qualified = false;
        pg_call([&] { qualified = schema_qualified(name.c_str()); });
        if (!qualified) return unusable("pg_rproxy.statement_hook \"" + name +
                                        "\" must name a function with its schema, as in public.my_hook");
    }
    if (resolved_ && !problem_.empty()) {
        answer.error = ErrorFields::make("ERROR", "42883", problem_);
        return answer;
    }
    MemoryContext ctx = CurrentMemoryContext;
    bool reuse = kept_context && kept_context_text && *kept_context_text == context;
    if (!reuse) {
        if (!kept_context_text) kept_context_text = new std::string;
        kept_context_text->clear();  // until the new one is made
    }
    RawHookCall c{name.c_str(), function_, sql.data(), static_cast<int>(sql.size()), context.c_str(), reuse, false,
                  false, false, nullptr, 0, nullptr};
    call_guarded(&c, ctx);
    if (c.made_context) *kept_context_text = context;
    if (c.unusable || (c.error && !resolved_ && !OidIsValid(c.function))) {
        std::string problem =
            "pg_rproxy.statement_hook \"" + name + "\" is not a function (statement text, context jsonb) returning text";
        if (c.error) {
            problem += std::string(": ") + (c.error->message ? c.error->message : "");
            FreeErrorData(c.error);
        }
        return unusable(std::move(problem));
    }
    resolved_ = true;
    function_ = c.function;
    if (c.error) {
        answer.error = client_error(c.error);
        FreeErrorData(c.error);
        return answer;
    }
    if (!c.isnull) {
        answer.statement.emplace(c.result, static_cast<std::size_t>(c.result_len));
        pfree(c.result);
    }
    return answer;
}

}  // namespace rproxy::pg
