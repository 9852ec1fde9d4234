#include "pg/statement_parser.hpp"

#include <unordered_map>

#include "pg/pg_guard.hpp"

namespace rproxy::pg {

namespace {

// ---------------------------------------------------------------------------------------------
// Guarded part: plain C data palloc'd in the parser's context, so an ereport inside never skips a
// C++ destructor. Converted to C++ facts afterwards.

struct FuncInfo {
    char* schema;  // nullptr when unqualified
    char* name;
    int nargs;
};

struct QueryInfo {
    List* relations;  // char*
    bool reads_catalog;
    bool temp_relation;
    bool literal_read;  // a fact came from a literal's value: see ParsedQuery::literal_facts
};

QueryInfo* current_query = nullptr;  // set while one string is walked

// Every reader of a literal's value (A_Const, a DefElem's argument, a SET's arguments) calls this,
// so that no string of the same shape is ever judged by this string's facts.
void note_literal_read() {
    if (current_query) current_query->literal_read = true;
}

char* relation_name(const char* schema, const char* name);

void record_relation(RangeVar* rv) {
    if (!current_query || !rv->relname) return;
    const char* schema = rv->schemaname;
    char* name = relation_name(schema, rv->relname);
    current_query->relations = lappend(current_query->relations, name);
    if (schema && (strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0))
        current_query->reads_catalog = true;
    if (!schema && strncmp(rv->relname, "pg_", 3) == 0) current_query->reads_catalog = true;  // pg_catalog first
    if (schema && strncmp(schema, "pg_temp", 7) == 0) current_query->temp_relation = true;
}

struct SettingChange {
    char* name;   // lower case
    char* value;  // nullptr: reset
};

struct StmtInfo {
    List* changes;  // SettingChange*: trackable session-level SET/RESET
    bool reset_all;
    const char* pg_settings_name;  // SELECT ... FROM pg_settings WHERE name = '<this>' (pg_dump)
    const char* kind;
    char* write_kind;
    char* setting_error;
    List* funcs;     // FuncInfo*
    List* settings;  // char*, lower case
    bool time_dependent;
    bool session_state;
    const char* state_reason;  // why session_state: what pins the client to its connection
    bool transaction_control;
    bool read_write_transaction;  // BEGIN / SET TRANSACTION ... READ WRITE
    List* written;      // char*: relations the statement writes, as named
    bool unseen_write;  // effects the parser cannot see into (DO, CALL, DDL of other objects)
    bool deallocate_all;
    char* prepare_name;
    char* execute_name;
    char* deallocate_name;
};

StmtInfo* new_info(const char* kind) {
    auto* st = static_cast<StmtInfo*>(palloc0(sizeof(StmtInfo)));
    st->kind = kind;
    return st;
}

void set_write(StmtInfo* st, const char* kind) {
    if (!st->write_kind) st->write_kind = pstrdup(kind);
}

void keeps_state(StmtInfo* st, const char* reason) {
    st->session_state = true;
    if (!st->state_reason) st->state_reason = reason;
}

char* relation_name(const char* schema, const char* name) {
    return schema ? psprintf("%s.%s", schema, name) : pstrdup(name);
}

bool is_temporary(const RangeVar* rv) {
    return rv->relpersistence == RELPERSISTENCE_TEMP || (rv->schemaname && strncmp(rv->schemaname, "pg_temp", 7) == 0);
}

void record_written(StmtInfo* st, RangeVar* rv) {
    if (!rv || !rv->relname) return;
    st->written = lappend(st->written, relation_name(rv->schemaname, rv->relname));
}

// A relation a statement creates: written (results of a same-named one go), and a temporary one
// is session state.
void record_created(StmtInfo* st, RangeVar* rv) {
    record_written(st, rv);
    if (is_temporary(rv)) keeps_state(st, "temporary table");
}

// DROP's object names: a list of String, schema-qualified or not.
void record_written_names(StmtInfo* st, List* name) {
    int n = list_length(name);
    if (n == 0) return;
    const char* rel = strVal(llast(name));
    const char* schema = n >= 2 ? strVal(list_nth(name, n - 2)) : nullptr;
    st->written = lappend(st->written, relation_name(schema, rel));
}

void set_setting_error(StmtInfo* st, const char* message) {
    if (!st->setting_error) st->setting_error = pstrdup(message);
}

const char* locking_kind(LockClauseStrength s) {
    switch (s) {
        case LCS_FORKEYSHARE: return "SELECT FOR KEY SHARE";
        case LCS_FORSHARE: return "SELECT FOR SHARE";
        case LCS_FORNOKEYUPDATE: return "SELECT FOR NO KEY UPDATE";
        default: return "SELECT FOR UPDATE";
    }
}

// A string constant, possibly cast ('x'::text), or nullptr.
const char* const_string(Node* n) {
    note_literal_read();
    while (n && IsA(n, TypeCast)) n = reinterpret_cast<TypeCast*>(n)->arg;
    if (n && IsA(n, A_Const)) {
        auto* c = reinterpret_cast<A_Const*>(n);
        if (!c->isnull && IsA(&c->val, String)) return strVal(&c->val);
    }
    return nullptr;
}

// false for READ WRITE (transaction_read_only = false) among BEGIN / SET TRANSACTION options
bool options_read_only(List* options) {
    ListCell* lc;
    foreach (lc, options) {
        auto* opt = static_cast<DefElem*>(lfirst(lc));
        if (strcmp(opt->defname, "transaction_read_only") != 0 || !opt->arg) continue;
        note_literal_read();
        Node* arg = opt->arg;
        if (IsA(arg, A_Const)) {
            auto* c = reinterpret_cast<A_Const*>(arg);
            if (IsA(&c->val, Integer) && intVal(&c->val) == 0) return false;
            if (IsA(&c->val, Boolean) && !boolVal(&c->val)) return false;
        }
    }
    return true;
}

char* lower_copy(const char* name) {
    char* lower = pstrdup(name);
    for (char* p = lower; *p; ++p) *p = static_cast<char>(pg_tolower(static_cast<unsigned char>(*p)));
    return lower;
}

void record_setting(StmtInfo* st, const char* name) { st->settings = lappend(st->settings, lower_copy(name)); }

void record_change(StmtInfo* st, const char* name, const char* value) {
    auto* c = static_cast<SettingChange*>(palloc0(sizeof(SettingChange)));
    c->name = lower_copy(name);
    c->value = value ? pstrdup(value) : nullptr;
    st->changes = lappend(st->changes, c);
}

void record_function(StmtInfo* st, FuncCall* fc) {
    int n = list_length(fc->funcname);
    const char* name = strVal(llast(fc->funcname));
    const char* schema = n >= 2 ? strVal(list_nth(fc->funcname, n - 2)) : nullptr;
    bool builtin_schema = schema == nullptr || strcmp(schema, "pg_catalog") == 0;
    if (builtin_schema && strcmp(name, "set_config") == 0) {
        // set_config(name, value, is_local) is a SET: judged by the settings policy, not as a function.
        note_literal_read();
        Node* first = list_length(fc->args) >= 1 ? static_cast<Node*>(linitial(fc->args)) : nullptr;
        const char* setting = first ? const_string(first) : nullptr;
        // set_config(name, ...) FROM pg_settings WHERE name = 'x': the setting is x.
        if (!setting && first && IsA(first, ColumnRef) && list_length(reinterpret_cast<ColumnRef*>(first)->fields) == 1 &&
            IsA(linitial(reinterpret_cast<ColumnRef*>(first)->fields), String) &&
            strcmp(strVal(linitial(reinterpret_cast<ColumnRef*>(first)->fields)), "name") == 0)
            setting = st->pg_settings_name;
        if (!setting) {
            set_setting_error(st, "set_config() with a non-constant setting name is not allowed through pg_rproxy");
            return;
        }
        record_setting(st, setting);
        // set_config(name, 'constant', false): tracked like SET; anything else keeps the client on
        // its connection.
        const char* value = list_length(fc->args) == 3 ? const_string(static_cast<Node*>(lsecond(fc->args))) : nullptr;
        Node* local = list_length(fc->args) == 3 ? static_cast<Node*>(lthird(fc->args)) : nullptr;
        bool not_local = local && IsA(local, A_Const) && IsA(&reinterpret_cast<A_Const*>(local)->val, Boolean) &&
                         !boolVal(&reinterpret_cast<A_Const*>(local)->val);
        if (value && not_local) record_change(st, setting, value);
        else if (!(local && IsA(local, A_Const) && IsA(&reinterpret_cast<A_Const*>(local)->val, Boolean) &&
                   boolVal(&reinterpret_cast<A_Const*>(local)->val)))
            keeps_state(st, "set_config()");
        return;
    }
    // Session-level advisory locks outlive the transaction: the lock is the connection's.
    if (builtin_schema && (strcmp(name, "pg_advisory_lock") == 0 || strcmp(name, "pg_advisory_lock_shared") == 0 ||
                           strcmp(name, "pg_try_advisory_lock") == 0 || strcmp(name, "pg_try_advisory_lock_shared") == 0))
        keeps_state(st, "advisory lock");
    auto* f = static_cast<FuncInfo*>(palloc0(sizeof(FuncInfo)));
    f->schema = schema ? pstrdup(schema) : nullptr;
    f->name = pstrdup(name);
    f->nargs = list_length(fc->args);
    st->funcs = lappend(st->funcs, f);
}

// For SELECT ... FROM pg_settings WHERE name = 'x' (one relation, one equality): x, else nullptr.
const char* pg_settings_filter(SelectStmt* s) {
    if (list_length(s->fromClause) != 1 || !IsA(linitial(s->fromClause), RangeVar) || !s->whereClause) return nullptr;
    auto* rv = static_cast<RangeVar*>(linitial(s->fromClause));
    if (strcmp(rv->relname, "pg_settings") != 0 || (rv->schemaname && strcmp(rv->schemaname, "pg_catalog") != 0))
        return nullptr;
    if (!IsA(s->whereClause, A_Expr)) return nullptr;
    auto* e = reinterpret_cast<A_Expr*>(s->whereClause);
    if (e->kind != AEXPR_OP || list_length(e->name) != 1 || strcmp(strVal(linitial(e->name)), "=") != 0) return nullptr;
    if (!e->lexpr || !IsA(e->lexpr, ColumnRef)) return nullptr;
    auto* col = reinterpret_cast<ColumnRef*>(e->lexpr);
    if (list_length(col->fields) != 1 || !IsA(linitial(col->fields), String) || strcmp(strVal(linitial(col->fields)), "name") != 0)
        return nullptr;
    return const_string(e->rexpr);
}

// Expression-level walk of SELECT/DML trees; raw_expression_tree_walker raises an error for any
// node it does not know, which fails the whole string closed.
bool tree_walker(Node* node, void* context) {
    if (node == nullptr) return false;
    auto* st = static_cast<StmtInfo*>(context);
    switch (nodeTag(node)) {
        case T_SelectStmt: {
            auto* s = reinterpret_cast<SelectStmt*>(node);
            st->pg_settings_name = pg_settings_filter(s);
            if (s->intoClause) {
                set_write(st, "SELECT INTO");
                record_written(st, s->intoClause->rel);
                if (is_temporary(s->intoClause->rel)) keeps_state(st, "temporary table");
            }
            if (s->lockingClause != NIL)
                set_write(st, locking_kind(static_cast<LockingClause*>(linitial(s->lockingClause))->strength));
            break;
        }
        case T_InsertStmt:
            set_write(st, CreateCommandName(node));
            record_written(st, reinterpret_cast<InsertStmt*>(node)->relation);
            break;
        case T_UpdateStmt:
            set_write(st, CreateCommandName(node));
            record_written(st, reinterpret_cast<UpdateStmt*>(node)->relation);
            break;
        case T_DeleteStmt:
            set_write(st, CreateCommandName(node));
            record_written(st, reinterpret_cast<DeleteStmt*>(node)->relation);
            break;
        case T_MergeStmt:
            set_write(st, CreateCommandName(node));
            record_written(st, reinterpret_cast<MergeStmt*>(node)->relation);
            break;
        case T_FuncCall:
            record_function(st, reinterpret_cast<FuncCall*>(node));
            break;
        case T_SQLValueFunction:
            st->time_dependent = true;
            break;
        case T_RangeVar:
            record_relation(reinterpret_cast<RangeVar*>(node));
            break;
        default:
            break;
    }
    return raw_expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(tree_walker)), context);
}

void walk_tree(Node* node, StmtInfo* st) { tree_walker(node, st); }

void merge(StmtInfo* into, StmtInfo* from) {
    if (from->write_kind) set_write(into, from->write_kind);
    if (from->setting_error) set_setting_error(into, from->setting_error);
    into->funcs = list_concat(into->funcs, from->funcs);
    into->settings = list_concat(into->settings, from->settings);
    into->time_dependent |= from->time_dependent;
    into->session_state |= from->session_state;
    if (!into->state_reason) into->state_reason = from->state_reason;
    into->written = list_concat(into->written, from->written);
    into->unseen_write |= from->unseen_write;
    if (from->execute_name && !into->execute_name) into->execute_name = from->execute_name;
    into->changes = list_concat(into->changes, from->changes);
    into->reset_all |= from->reset_all;
}

void walk_statement(Node* stmt, StmtInfo* st);

// A statement nested in EXPLAIN / DECLARE / PREPARE / COPY: judged like a top-level one, its
// verdict carried by the outer statement.
void walk_nested(Node* inner, StmtInfo* outer, bool must_be_query) {
    StmtInfo* in = new_info(nullptr);
    walk_statement(inner, in);
    if (must_be_query && !IsA(inner, SelectStmt)) set_write(in, in->kind);
    merge(outer, in);
}

// As the server does, the last ANALYZE option counts: (ANALYZE false, ANALYZE true) runs the query.
bool explain_analyzes(ExplainStmt* e) {
    bool analyze = false;
    ListCell* lc;
    foreach (lc, e->options) {
        auto* opt = static_cast<DefElem*>(lfirst(lc));
        if (strcmp(opt->defname, "analyze") != 0) continue;
        note_literal_read();
        analyze = opt->arg == nullptr || defGetBoolean(opt);
    }
    return analyze;
}

void walk_set(VariableSetStmt* s, StmtInfo* st) {
    note_literal_read();  // values, role names, transaction modes
    if (s->kind == VAR_SET_MULTI) {
        // SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS TRANSACTION ..., SET TRANSACTION SNAPSHOT
        if (!options_read_only(s->args)) st->read_write_transaction = true;
        if (strcmp(s->name, "SESSION CHARACTERISTICS") == 0) keeps_state(st, "SET SESSION CHARACTERISTICS");
        return;
    }
    if (s->kind == VAR_RESET_ALL) {
        st->reset_all = true;
        return;
    }
    if (strcmp(s->name, "role") == 0) {
        // Back to the login role is harmless and what drivers send; any other role is refused.
        const char* v = s->args != NIL ? const_string(static_cast<Node*>(linitial(s->args))) : nullptr;
        if (s->kind == VAR_RESET || (s->kind == VAR_SET_VALUE && v && pg_strcasecmp(v, "none") == 0)) {
            if (!s->is_local) keeps_state(st, "RESET ROLE");
            return;
        }
    }
    record_setting(st, s->name);
    if (s->is_local) return;  // ends with the transaction
    // Session-level SET/RESET: the proxy keeps the value for the client and applies it on
    // whichever connection serves it. SET ... FROM CURRENT cannot be known here: pin instead.
    if (s->kind == VAR_SET_VALUE) record_change(st, s->name, ExtractSetVariableArgs(s));
    else if (s->kind == VAR_SET_DEFAULT || s->kind == VAR_RESET) record_change(st, s->name, nullptr);
    else keeps_state(st, "SET FROM CURRENT");
}

// What a statement the read-only firewall refuses writes, for the cache's invalidation on
// read-write upstreams: the relations it names, or "unseen" when its effect on relations cannot be
// known from the text (DO, CALL, functions, privileges, policies, rules...).
void walk_write(Node* stmt, StmtInfo* st) {
    switch (nodeTag(stmt)) {
        case T_TruncateStmt: {
            auto* t = reinterpret_cast<TruncateStmt*>(stmt);
            ListCell* lc;
            foreach (lc, t->relations) record_written(st, lfirst_node(RangeVar, lc));
            // CASCADE empties every table with a foreign key to these, whatever its actions.
            if (t->behavior == DROP_CASCADE) st->unseen_write = true;
            break;
        }
        case T_AlterTableStmt:
            record_written(st, reinterpret_cast<AlterTableStmt*>(stmt)->relation);
            break;
        case T_RenameStmt: {
            auto* r = reinterpret_cast<RenameStmt*>(stmt);
            if (!r->relation) {
                st->unseen_write = true;
                break;
            }
            record_written(st, r->relation);
            if (r->renameType == OBJECT_TABLE || r->renameType == OBJECT_VIEW || r->renameType == OBJECT_MATVIEW ||
                r->renameType == OBJECT_FOREIGN_TABLE)
                st->written = lappend(st->written, relation_name(r->relation->schemaname, r->newname));
            break;
        }
        case T_DropStmt: {
            auto* d = reinterpret_cast<DropStmt*>(stmt);
            bool relations = d->removeType == OBJECT_TABLE || d->removeType == OBJECT_VIEW ||
                             d->removeType == OBJECT_MATVIEW || d->removeType == OBJECT_FOREIGN_TABLE ||
                             d->removeType == OBJECT_SEQUENCE || d->removeType == OBJECT_INDEX;
            if (!relations || d->behavior == DROP_CASCADE) st->unseen_write = true;
            if (!relations) break;
            ListCell* lc;
            foreach (lc, d->objects) record_written_names(st, static_cast<List*>(lfirst(lc)));
            break;
        }
        case T_RefreshMatViewStmt:
            record_written(st, reinterpret_cast<RefreshMatViewStmt*>(stmt)->relation);
            break;
        case T_CreateStmt:
            record_created(st, reinterpret_cast<CreateStmt*>(stmt)->relation);
            break;
        case T_CreateTableAsStmt:
            record_created(st, reinterpret_cast<CreateTableAsStmt*>(stmt)->into->rel);
            break;
        case T_ViewStmt:
            record_created(st, reinterpret_cast<ViewStmt*>(stmt)->view);
            break;
        case T_CreateSeqStmt:
            record_created(st, reinterpret_cast<CreateSeqStmt*>(stmt)->sequence);
            break;
        case T_AlterSeqStmt:
            record_written(st, reinterpret_cast<AlterSeqStmt*>(stmt)->sequence);
            break;
        // Nothing a query returns changes: locks, statistics, storage, indexes, notifications.
        case T_LockStmt: case T_VacuumStmt: case T_ClusterStmt: case T_IndexStmt: case T_ReindexStmt:
        case T_CheckPointStmt: case T_NotifyStmt: case T_CommentStmt: case T_CreateStatsStmt:
            break;
        default:
            st->unseen_write = true;
            break;
    }
}

void walk_statement(Node* stmt, StmtInfo* st) {
    if (!st->kind) st->kind = CreateCommandName(stmt);
    switch (nodeTag(stmt)) {
        case T_SelectStmt:
            st->kind = "SELECT";
            walk_tree(stmt, st);
            break;
        case T_InsertStmt:
        case T_UpdateStmt:
        case T_DeleteStmt:
        case T_MergeStmt:
            // Refused on read-only upstreams as writes; on read-write ones their functions and
            // settings are judged like a SELECT's, and the walk records the relation written.
            walk_tree(stmt, st);
            break;
        case T_ExplainStmt: {
            auto* e = reinterpret_cast<ExplainStmt*>(stmt);
            if (explain_analyzes(e)) {
                // EXPLAIN ANALYZE runs the statement: it must be allowed in its own right.
                StmtInfo* in = new_info(nullptr);
                walk_statement(e->query, in);
                if (in->write_kind) in->write_kind = psprintf("EXPLAIN ANALYZE %s", in->write_kind);
                merge(st, in);
            }
            break;  // plain EXPLAIN executes nothing
        }
        case T_VariableShowStmt:
            break;
        case T_VariableSetStmt:
            walk_set(reinterpret_cast<VariableSetStmt*>(stmt), st);
            break;
        case T_TransactionStmt: {
            auto* t = reinterpret_cast<TransactionStmt*>(stmt);
            st->transaction_control = true;
            switch (t->kind) {
                case TRANS_STMT_BEGIN:
                case TRANS_STMT_START:
                    if (!options_read_only(t->options)) st->read_write_transaction = true;
                    break;
                case TRANS_STMT_PREPARE:
                    set_write(st, st->kind);
                    break;
                case TRANS_STMT_COMMIT_PREPARED:
                case TRANS_STMT_ROLLBACK_PREPARED:
                    set_write(st, st->kind);
                    st->unseen_write = true;  // another session's transaction: anything it wrote
                    break;
                default:
                    break;
            }
            break;
        }
        case T_DeclareCursorStmt: {
            auto* d = reinterpret_cast<DeclareCursorStmt*>(stmt);
            walk_nested(d->query, st, true);
            if (d->options & CURSOR_OPT_HOLD) keeps_state(st, "cursor WITH HOLD");
            break;
        }
        case T_FetchStmt:
        case T_ClosePortalStmt:
            break;
        case T_PrepareStmt: {
            auto* p = reinterpret_cast<PrepareStmt*>(stmt);
            walk_nested(p->query, st, false);
            st->prepare_name = pstrdup(p->name);
            keeps_state(st, "PREPARE");
            break;
        }
        case T_ExecuteStmt: {
            auto* x = reinterpret_cast<ExecuteStmt*>(stmt);
            st->execute_name = pstrdup(x->name);
            st->unseen_write = true;  // whatever was prepared under that name
            walk_tree(reinterpret_cast<Node*>(x->params), st);
            break;
        }
        case T_DeallocateStmt: {
            auto* d = reinterpret_cast<DeallocateStmt*>(stmt);
            if (d->name) st->deallocate_name = pstrdup(d->name);
            else st->deallocate_all = true;
            break;
        }
        case T_DiscardStmt:
            if (reinterpret_cast<DiscardStmt*>(stmt)->target == DISCARD_ALL) {
                st->deallocate_all = true;
                st->reset_all = true;  // DISCARD ALL includes RESET ALL
            }
            break;
        case T_CopyStmt: {
            auto* c = reinterpret_cast<CopyStmt*>(stmt);
            if (c->is_from) {
                set_write(st, "COPY FROM");
                record_written(st, c->relation);
            }
            else if (c->is_program) set_write(st, "COPY TO PROGRAM");
            else if (c->filename) set_write(st, "COPY TO file");
            if (c->query) walk_nested(c->query, st, true);
            if (c->relation) record_relation(c->relation);
            break;
        }
        case T_ListenStmt:
            keeps_state(st, "LISTEN");
            break;
        case T_LockStmt:
            // ACCESS SHARE only, as PostgreSQL itself allows in read-only transactions: pg_dump
            // takes it on every table it dumps. It cannot change anything.
            if (reinterpret_cast<LockStmt*>(stmt)->mode != AccessShareLock) set_write(st, st->kind);
            break;
        case T_UnlistenStmt:
            break;
        default:
            // DML, DDL, DO, CALL, LOCK, VACUUM, ... and any node kind not listed: fail closed.
            set_write(st, st->kind);
            walk_write(stmt, st);
            break;
    }
}

struct RawResult {
    List* stmts;  // StmtInfo*
    ErrorData* error;
    QueryInfo query;
    char* normalized;
};

// An identifier as the normalized form prints it: bare when nothing else could print the same
// (lower-case letters, digits and underscores, and no keyword of any category, since a bare word
// is how keywords print), otherwise double-quoted. Unlike quote_identifier, which leaves
// unreserved keywords bare: "cube"(a) is a function call, CUBE(a) a grouping set.
void append_identifier(StringInfo out, const char* ident, bool was_quoted) {
    bool safe = (ident[0] >= 'a' && ident[0] <= 'z') || ident[0] == '_';
    for (const char* p = ident; safe && *p; ++p)
        safe = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
    // The scanner returns every keyword written without quotes as a keyword token.
    if (safe && was_quoted) safe = ScanKeywordLookup(ident, &ScanKeywords) < 0;
    if (safe) {
        appendStringInfoString(out, ident);
        return;
    }
    appendStringInfoChar(out, '"');
    for (const char* p = ident; *p; ++p) {
        if (*p == '"') appendStringInfoChar(out, '"');
        appendStringInfoChar(out, *p);
    }
    appendStringInfoChar(out, '"');
}

// Where the shape differs from the normalized form: a literal at [start, start + length) of the
// normalized form is replaced by the placeholder \x01<kind>.
struct LiteralSpan {
    int start;
    int length;
    char kind;
};

struct ScanResult {
    char* normalized;     // nullptr: the scanner raised an error
    bool has_shape;
    LiteralSpan* spans;
    int span_count;
};

// The scanner's forms of the string (ScannedQuery): the server's own scanner splits it into
// tokens; comments and whitespace disappear, keywords come out in lower case (identifiers already
// are, unless quoted), literals and quoted identifiers keep their exact value in the normalized
// form; the literals' spans make the shape. spans may be nullptr when only the normalized form is
// wanted.
void scan_forms(const char* sql, StringInfo normalized, ScanResult* spans) {
    core_yy_extra_type extra;
    core_yyscan_t scanner = scanner_init(sql, &extra, &ScanKeywords, ScanKeywordTokens);
    core_YYSTYPE val;
    YYLTYPE loc;
    int before_last = 0, last = 0;  // the two tokens before this one
    int capacity = 0;
    char digits[12];
    for (;;) {
        int tok = core_yylex(&val, &loc, scanner);
        if (tok == 0) break;
        if (normalized->len > 0) appendStringInfoChar(normalized, ' ');
        int token_start = normalized->len;
        char literal = 0;
        switch (tok) {
            case IDENT: append_identifier(normalized, val.str, extra.scanbuf[loc] == '"'); break;
            case UIDENT:
            case USCONST:
            case UESCAPE:
                // UESCAPE 'c' decides what the escapes mean: a literal can change a name.
                if (spans) spans->has_shape = false;
                if (tok == UIDENT) {
                    appendStringInfoString(normalized, "U&");
                    append_identifier(normalized, val.str, true);
                }
                else if (tok == USCONST) appendStringInfo(normalized, "U&%s", quote_literal_cstr(val.str));
                else appendStringInfoString(normalized, val.keyword);
                break;
            case SCONST: appendStringInfoString(normalized, quote_literal_cstr(val.str)); literal = 's'; break;
            case BCONST:
            case XCONST:
                appendStringInfo(normalized, "%c'%s'", val.str[0], val.str + 1);
                literal = tok == BCONST ? 'b' : 'x';
                break;
            case FCONST: appendStringInfoString(normalized, val.str); literal = 'f'; break;
            case ICONST:
                appendBinaryStringInfo(normalized, digits, pg_ltoa(val.ival, digits));
                // float(p) is float4 for p <= 24, float8 above: a name TREAT(x AS float(p)) calls.
                literal = before_last == FLOAT_P && last == '(' ? 0 : 'i';
                break;
            case Op: appendStringInfoString(normalized, val.str); break;
            case PARAM: appendStringInfo(normalized, "$%d", val.ival); break;
            case TYPECAST: appendStringInfoString(normalized, "::"); break;
            case DOT_DOT: appendStringInfoString(normalized, ".."); break;
            case COLON_EQUALS: appendStringInfoString(normalized, ":="); break;
            case EQUALS_GREATER: appendStringInfoString(normalized, "=>"); break;
            case LESS_EQUALS: appendStringInfoString(normalized, "<="); break;
            case GREATER_EQUALS: appendStringInfoString(normalized, ">="); break;
            case NOT_EQUALS: appendStringInfoString(normalized, "<>"); break;
            default:
                if (tok < 256) appendStringInfoChar(normalized, static_cast<char>(tok));
                else appendStringInfoString(normalized, val.keyword);  // keywords
                break;
        }
        if (literal && spans) {
            if (spans->span_count == capacity) {
                capacity = capacity ? capacity * 2 : 8;
                spans->spans = static_cast<LiteralSpan*>(
                    spans->spans ? repalloc(spans->spans, capacity * sizeof(LiteralSpan)) : palloc(capacity * sizeof(LiteralSpan)));
            }
            spans->spans[spans->span_count++] = LiteralSpan{token_start, normalized->len - token_start, literal};
        }
        before_last = last;
        last = tok;
    }
    scanner_finish(scanner);
}

void scan_guarded(const char* sql, ScanResult* out) {
    *out = ScanResult{nullptr, true, nullptr, 0};
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    {
        StringInfoData normalized;
        initStringInfo(&normalized);
        scan_forms(sql, &normalized, out);
        out->normalized = normalized.data;
    }
    PG_CATCH();
    {
        FreeErrorData(take_error(ctx));
        *out = ScanResult{nullptr, false, nullptr, 0};
    }
    PG_END_TRY();
}

// normalize: also compute the normalized form (false when the caller scanned the string already).
void parse_guarded(const char* sql, bool normalize, RawResult* out) {
    out->stmts = NIL;
    out->error = nullptr;
    out->query = QueryInfo{NIL, false, false, false};
    out->normalized = nullptr;
    MemoryContext ctx = CurrentMemoryContext;
    current_query = &out->query;
    PG_TRY();
    {
        List* parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
        if (normalize) {
            StringInfoData normalized;
            initStringInfo(&normalized);
            scan_forms(sql, &normalized, nullptr);
            out->normalized = normalized.data;
        }
        ListCell* lc;
        foreach (lc, parsed) {
            StmtInfo* st = new_info(nullptr);
            walk_statement(lfirst_node(RawStmt, lc)->stmt, st);
            out->stmts = lappend(out->stmts, st);
        }
    }
    PG_CATCH();
    {
        out->error = take_error(ctx);
    }
    PG_END_TRY();
    current_query = nullptr;
}

// pg_proc lookup of a name in pg_catalog: worst volatility over the overloads that can take nargs
// arguments (all overloads when none can), 0 if the name is not there, -1 when the catalog could
// not be read.
int builtin_volatility_guarded(const char* name, int nargs) {
    volatile bool started = false;
    volatile int worst = 0;
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    {
        if (!IsTransactionState()) {
            StartTransactionCommand();
            started = true;
        }
        CatCList* list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(name));
        for (int pass = 0; pass < 2 && worst == 0; pass++) {
            for (int i = 0; i < list->n_members; i++) {
                auto* proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(&list->members[i]->tuple));
                if (proc->pronamespace != PG_CATALOG_NAMESPACE) continue;
                if (pass == 0 && !arity_matches(nargs, proc->pronargs, proc->pronargdefaults, proc->provariadic != InvalidOid))
                    continue;
                char v = proc->provolatile;
                if (v == PROVOLATILE_VOLATILE || (v == PROVOLATILE_STABLE && worst != PROVOLATILE_VOLATILE) || worst == 0)
                    worst = v;
            }
        }
        ReleaseSysCacheList(list);
        if (started) CommitTransactionCommand();
        MemoryContextSwitchTo(ctx);
    }
    PG_CATCH();
    {
        ErrorData* e = take_error(ctx);
        FreeErrorData(e);
        if (started) AbortCurrentTransaction();
        MemoryContextSwitchTo(ctx);
        worst = -1;
    }
    PG_END_TRY();
    return worst;
}

MemoryContext parser_context() {
    static MemoryContext ctx = nullptr;
    if (!ctx) ctx = AllocSetContextCreate(TopMemoryContext, "pg_rproxy parser", ALLOCSET_DEFAULT_SIZES);
    return ctx;
}

// ---------------------------------------------------------------------------------------------
// C++ side

std::unordered_map<std::string, Volatility>& builtin_cache() {
    static std::unordered_map<std::string, Volatility> cache;
    return cache;
}

Volatility builtin_volatility(const FunctionRef& f) {
    if (!f.schema.empty() && f.schema != "pg_catalog") return Volatility::NotBuiltin;
    auto& cache = builtin_cache();
    std::string key = f.name + "/" + std::to_string(f.nargs);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    int v = builtin_volatility_guarded(f.name.c_str(), f.nargs);
    if (v < 0) return Volatility::NotBuiltin;  // unreadable now: let the upstream answer, do not cache
    Volatility vol = v == 0 ? Volatility::NotBuiltin : static_cast<Volatility>(v);
    cache.emplace(std::move(key), vol);
    return vol;
}

std::string str_or_empty(const char* s) { return s ? std::string(s) : std::string(); }

}  // namespace

void forget_builtin_functions() { builtin_cache().clear(); }

ScannedQuery scan_statements(const std::string& sql) {
    MemoryContext ctx = parser_context();
    MemoryContext old = MemoryContextSwitchTo(ctx);
    ScanResult raw;
    scan_guarded(sql.c_str(), &raw);
    MemoryContextSwitchTo(old);
    ScannedQuery out;
    out.ok = raw.normalized != nullptr;
    if (out.ok) {
        out.normalized = raw.normalized;
        if (raw.has_shape) {
            out.shape.reserve(out.normalized.size());
            std::size_t from = 0;
            for (int i = 0; i < raw.span_count; ++i) {
                const LiteralSpan& span = raw.spans[i];
                out.shape.append(out.normalized, from, span.start - from);
                out.shape += '\x01';
                out.shape += span.kind;
                from = span.start + span.length;
            }
            out.shape.append(out.normalized, from, std::string::npos);
        }
    }
    MemoryContextReset(ctx);
    return out;
}

ParsedQuery parse_statements(const std::string& sql, std::string* normalized) {
    MemoryContext ctx = parser_context();
    MemoryContext old = MemoryContextSwitchTo(ctx);
    RawResult raw;
    parse_guarded(sql.c_str(), normalized == nullptr, &raw);
    MemoryContextSwitchTo(old);

    ParsedQuery out;
    std::vector<StatementFacts> statements;
    if (raw.error) {
        out.error_sqlstate = unpack_sql_state(raw.error->sqlerrcode);
        out.error_message = str_or_empty(raw.error->message);
        out.error_position = raw.error->cursorpos;
    } else {
        out.normalized = normalized ? std::move(*normalized) : str_or_empty(raw.normalized);
        out.literal_facts = raw.query.literal_read;
        out.reads_catalog = raw.query.reads_catalog;
        out.temp_relation = raw.query.temp_relation;
        ListCell* rc;
        foreach (rc, raw.query.relations) out.relations.emplace_back(static_cast<const char*>(lfirst(rc)));
        ListCell* lc;
        foreach (lc, raw.stmts) {
            auto* st = static_cast<StmtInfo*>(lfirst(lc));
            StatementFacts f;
            f.kind = str_or_empty(st->kind);
            f.write_kind = str_or_empty(st->write_kind);
            f.setting_error = str_or_empty(st->setting_error);
            f.time_dependent = st->time_dependent;
            f.session_state = st->session_state;
            f.state_reason = str_or_empty(st->state_reason);
            f.read_write_transaction = st->read_write_transaction;
            f.unseen_write = st->unseen_write;
            ListCell* wc;
            foreach (wc, st->written) f.written.emplace_back(static_cast<const char*>(lfirst(wc)));
            f.transaction_control = st->transaction_control;
            f.deallocate_all = st->deallocate_all;
            f.prepare_name = str_or_empty(st->prepare_name);
            f.execute_name = str_or_empty(st->execute_name);
            f.deallocate_name = str_or_empty(st->deallocate_name);
            f.reset_all = st->reset_all;
            ListCell* cc;
            foreach (cc, st->changes) {
                auto* c = static_cast<SettingChange*>(lfirst(cc));
                f.setting_changes.emplace_back(c->name, c->value ? std::optional<std::string>(c->value) : std::nullopt);
            }
            ListCell* sc;
            foreach (sc, st->settings) f.settings.emplace_back(static_cast<const char*>(lfirst(sc)));
            ListCell* fc;
            foreach (fc, st->funcs) {
                auto* fi = static_cast<FuncInfo*>(lfirst(fc));
                FunctionRef ref;
                ref.schema = str_or_empty(fi->schema);
                ref.name = fi->name;
                ref.nargs = fi->nargs;
                f.functions.push_back(std::move(ref));
            }
            statements.push_back(std::move(f));
        }
    }
    MemoryContextReset(ctx);
    // Catalog lookups after the parse tree is gone: they may start a transaction of their own.
    for (auto& st : statements)
        for (auto& f : st.functions) f.volatility = builtin_volatility(f);
    out.statements = SharedList<StatementFacts>(std::move(statements));
    return out;
}

}  // namespace rproxy::pg
