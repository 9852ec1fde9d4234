#include "pg/statement_classifier.hpp"

#include "pg/pg_guard.hpp"

namespace rproxy::pg {

namespace {

// Everything in here is palloc'd in the classifier's context: plain C data only, so that an
// ereport inside the guarded section never skips a C++ destructor.
struct RawVerdict {
    bool allowed;
    List* kinds;        // char* per statement
    char* rejected;     // kind of the first rejected statement
    ErrorData* error;   // parse error
};

const char* locking_kind(LockClauseStrength s) {
    switch (s) {
        case LCS_FORKEYSHARE: return "SELECT FOR KEY SHARE";
        case LCS_FORSHARE: return "SELECT FOR SHARE";
        case LCS_FORNOKEYUPDATE: return "SELECT FOR NO KEY UPDATE";
        default: return "SELECT FOR UPDATE";
    }
}

// Returns the kind that makes a SELECT a write (INTO, a locking clause, a data-modifying CTE,
// in any branch of a set operation), or nullptr when it only reads.
const char* select_write_kind(SelectStmt* s) {
    if (s == nullptr) return nullptr;
    if (s->intoClause) return "SELECT INTO";
    if (s->lockingClause != NIL) return locking_kind(static_cast<LockingClause*>(linitial(s->lockingClause))->strength);
    if (s->withClause) {
        ListCell* lc;
        foreach (lc, s->withClause->ctes) {
            auto* cte = static_cast<CommonTableExpr*>(lfirst(lc));
            if (IsA(cte->ctequery, SelectStmt)) {
                if (const char* k = select_write_kind(reinterpret_cast<SelectStmt*>(cte->ctequery))) return k;
            } else {
                return CreateCommandName(cte->ctequery);
            }
        }
    }
    if (s->op != SETOP_NONE) {
        if (const char* k = select_write_kind(s->larg)) return k;
        return select_write_kind(s->rarg);
    }
    return nullptr;
}

bool explain_analyzes(ExplainStmt* e) {
    ListCell* lc;
    foreach (lc, e->options) {
        auto* opt = static_cast<DefElem*>(lfirst(lc));
        if (strcmp(opt->defname, "analyze") == 0) return opt->arg == nullptr || defGetBoolean(opt);
    }
    return false;
}

// Kind of the statement, and whether the minimal guard lets it through.
const char* statement_kind(Node* stmt, bool* allowed) {
    *allowed = false;
    switch (nodeTag(stmt)) {
        case T_SelectStmt: {
            if (const char* k = select_write_kind(reinterpret_cast<SelectStmt*>(stmt))) return k;
            *allowed = true;
            return "SELECT";
        }
        case T_ExplainStmt:
            if (explain_analyzes(reinterpret_cast<ExplainStmt*>(stmt))) return "EXPLAIN ANALYZE";
            *allowed = true;
            return "EXPLAIN";
        case T_VariableShowStmt:
            *allowed = true;
            return "SHOW";
        default:
            return CreateCommandName(stmt);
    }
}

void classify_raw(const char* sql, RawVerdict* out) {
    out->allowed = true;
    out->kinds = NIL;
    out->rejected = nullptr;
    out->error = nullptr;
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    {
        List* stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
        ListCell* lc;
        foreach (lc, stmts) {
            Node* stmt = lfirst_node(RawStmt, lc)->stmt;
            bool ok;
            const char* kind = statement_kind(stmt, &ok);
            out->kinds = lappend(out->kinds, pstrdup(kind));
            if (!ok && out->allowed) {
                out->allowed = false;
                out->rejected = pstrdup(kind);
            }
        }
    }
    PG_CATCH();
    {
        out->allowed = false;
        out->error = take_error(ctx);
    }
    PG_END_TRY();
}

MemoryContext classifier_context() {
    static MemoryContext ctx = nullptr;
    if (!ctx) ctx = AllocSetContextCreate(TopMemoryContext, "pg_rproxy classifier", ALLOCSET_DEFAULT_SIZES);
    return ctx;
}

}  // namespace

Verdict classify_statement(const std::string& sql) {
    MemoryContext ctx = classifier_context();
    MemoryContext old = MemoryContextSwitchTo(ctx);
    RawVerdict raw;
    classify_raw(sql.c_str(), &raw);
    MemoryContextSwitchTo(old);

    Verdict v;
    v.allowed = raw.allowed;
    ListCell* lc;
    foreach (lc, raw.kinds) v.kinds.emplace_back(static_cast<const char*>(lfirst(lc)));
    if (raw.error) {
        v.sqlstate = unpack_sql_state(raw.error->sqlerrcode);
        v.message = raw.error->message ? raw.error->message : "syntax error";
        v.position = raw.error->cursorpos;
    } else if (!raw.allowed) {
        v.sqlstate = "25006";
        v.message = std::string("Write operations are not permitted: ") + raw.rejected + " statements are not allowed";
    }
    MemoryContextReset(ctx);
    return v;
}

}  // namespace rproxy::pg
