#include "core/firewall_policy.hpp"

#include <cctype>

#include "core/text_lists.hpp"

namespace rproxy {

const char* reject_reason_name(RejectReason r) {
    switch (r) {
        case RejectReason::None: return "none";
        case RejectReason::StatementKind: return "statement_kind";
        case RejectReason::Setting: return "setting";
        case RejectReason::VolatileFunction: return "volatile_function";
        case RejectReason::DeniedFunction: return "denied_function";
        case RejectReason::UnknownFunction: return "unknown_function";
        case RejectReason::SyntaxError: return "syntax_error";
        case RejectReason::FastPath: return "fast_path_call";
        case RejectReason::UnknownPreparedStatement: return "unknown_prepared_statement";
        case RejectReason::SideEffectFunction: return "side_effect_function";
        case RejectReason::StatementHook: return "statement_hook";
    }
    return "none";
}

std::set<std::string> parse_name_list(const std::string& value) {
    std::set<std::string> out;
    for (std::string name : split_names(value)) {
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.insert(std::move(name));
    }
    return out;
}

bool setting_always_denied(const std::string& name, Access access) {
    if (name == "session_authorization" || name == "role") return true;
    return access == Access::ReadOnly && (name == "default_transaction_read_only" || name == "transaction_read_only");
}

namespace {

bool listed(const std::set<std::string>& list, const FunctionRef& f) {
    if (list.count(f.name)) return true;
    return !f.schema.empty() && list.count(f.schema + "." + f.name);
}

// Built-ins whose marking (STABLE) hides an effect a read-only transaction does not stop, found by
// searching pg_catalog for stable and immutable functions (README, "The firewall").
const char* hidden_side_effect(const FunctionRef& f) {
    if (!f.schema.empty() && f.schema != "pg_catalog") return nullptr;  // another schema's function of that name
    if (f.name == "txid_current" || f.name == "pg_current_xact_id")
        return "it assigns a transaction ID (burning XIDs toward wraparound and writing a commit record)";
    if (f.name == "fmgr_c_validator")
        return "it loads the function's shared library into the upstream session, which other clients then share";
    if (f.name == "fmgr_sql_validator" || f.name == "fmgr_internal_validator")
        return "validators are for CREATE FUNCTION, not for clients";
    return nullptr;
}

// A write that is not only to rows: the relations' definitions (and so views, partitions, keys and
// triggers) may differ after it.
bool changes_definitions(const StatementFacts& st) {
    if (st.write_kind.empty()) return false;
    for (const char* dml : {"INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "SELECT", "TRUNCATE TABLE", "EXPLAIN",
                            "PREPARE TRANSACTION", "LOCK TABLE", "EXECUTE", "CALL", "DO"})
        if (st.kind == dml) return false;
    return true;
}

}  // namespace

Verdict evaluate(const ParsedQuery& parsed, const FirewallConfig& cfg, const UpstreamVolatility& lookup,
                 Access access) {
    Verdict v;
    const bool read_write = access == Access::ReadWrite;
    if (parsed.error_sqlstate && read_write) {
        // Newer syntax, an extension's grammar: the upstream judges it. Anything may happen.
        v.allowed = true;
        v.unparsed = true;
        v.writes = true;
        v.writes_unseen = true;
        v.session_state = true;  // it may set anything: its connection is never another client's
        v.state_reason = "unseen session state";
        return v;
    }
    if (parsed.error_sqlstate) {
        v.sqlstate = *parsed.error_sqlstate;
        v.message = parsed.error_message;
        v.position = parsed.error_position;
        v.reason = RejectReason::SyntaxError;
        return v;
    }
    v.allowed = true;
    v.cacheable = !parsed.statements.empty();
    auto reject = [&](StatementVerdict& sv, RejectReason r, std::string msg) {
        sv.allowed = false;
        sv.reason = msg;
        if (v.allowed) {
            v.allowed = false;
            v.reason = r;
            v.sqlstate = "25006";
            v.message = std::move(msg);
        }
    };

    for (const StatementFacts& st : parsed.statements) {
        StatementVerdict sv{st.kind, true, false, ""};
        bool deterministic = !st.time_dependent;
        if (!st.write_kind.empty() && !read_write) {
            reject(sv, RejectReason::StatementKind,
                   "Write operations are not permitted: " + st.write_kind + " statements are not allowed");
        } else if (!st.setting_error.empty()) {
            reject(sv, RejectReason::Setting, st.setting_error);
        } else if (st.read_write_transaction && !read_write) {
            reject(sv, RejectReason::Setting, "Write operations are not permitted: READ WRITE transactions are not allowed");
        }
        if (read_write) {
            v.writes = v.writes || !st.write_kind.empty() || st.unseen_write;
            v.writes_unseen = v.writes_unseen || st.unseen_write;
            v.changes_definitions = v.changes_definitions || changes_definitions(st);
            v.written.insert(v.written.end(), st.written.begin(), st.written.end());
        }
        for (const std::string& s : st.settings) {
            if (!sv.allowed) break;
            if (setting_always_denied(s, access) || cfg.denied_settings.count(s))
                reject(sv, RejectReason::Setting, "setting " + s + " cannot be changed through pg_rproxy");
        }
        for (const FunctionRef& f : st.functions) {
            if (!sv.allowed) break;
            if (listed(cfg.denied_functions, f)) {
                reject(sv, RejectReason::DeniedFunction,
                       "function " + f.display() + " is not allowed: it is listed in pg_rproxy.denied_functions");
                break;
            }
            if (const char* why = hidden_side_effect(f); why && !read_write && !listed(cfg.allowed_functions, f)) {
                reject(sv, RejectReason::SideEffectFunction, "function " + f.display() + " is not allowed: " + why);
                break;
            }
            Volatility vol = f.volatility;
            if (vol == Volatility::NotBuiltin) {
                std::optional<Volatility> up = lookup ? lookup(f) : std::optional<Volatility>(Volatility::Missing);
                if (!up) {
                    v.pending_functions.push_back(f.key());
                    deterministic = false;
                    continue;
                }
                vol = *up;
            }
            if (vol != Volatility::Immutable) deterministic = false;
            if (read_write) {
                // A volatile function may write; one of the upstream's own may write anything.
                bool own = f.volatility == Volatility::NotBuiltin;
                v.writes = v.writes || vol == Volatility::Volatile || (own && vol == Volatility::Missing);
                v.writes_unseen = v.writes_unseen || (own && (vol == Volatility::Volatile || vol == Volatility::Missing));
                continue;
            }
            if (listed(cfg.allowed_functions, f)) continue;
            if (vol == Volatility::Volatile) {
                reject(sv, RejectReason::VolatileFunction, "function " + f.display() + " is not allowed: it is volatile");
            } else if (vol == Volatility::Missing && !cfg.allow_unknown_functions) {
                reject(sv, RejectReason::UnknownFunction,
                       "function " + f.display() + " is not allowed: it is unknown to the gateway and the upstream");
            }
        }
        // A statement that changes settings must run every time: a hit would skip its effect.
        sv.cacheable = sv.allowed && deterministic && st.kind == "SELECT" && st.write_kind.empty() && !st.session_state &&
                       st.settings.empty() && st.setting_changes.empty() && !st.reset_all;
        v.cacheable = v.cacheable && sv.cacheable;
        v.session_state = v.session_state || st.session_state;
        if (v.state_reason.empty()) v.state_reason = st.state_reason;
        v.statements.push_back(std::move(sv));
    }
    if (v.writes_unseen && !v.session_state) {
        // What the text does not show (DO, CALL, a function of the upstream's) may also set a
        // role, a setting or a temporary table: the connection stays the client's, and is closed.
        v.session_state = true;
        v.state_reason = "unseen session state";
    }
    if (!v.allowed) v.pending_functions.clear();  // rejected anyway: nothing to ask the upstream
    if (!v.pending_functions.empty()) {
        // Undecided is not allowed: the caller must look the functions up and evaluate again.
        v.allowed = false;
        v.cacheable = false;
    }
    return v;
}

}  // namespace rproxy
